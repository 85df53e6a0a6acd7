//! Start-up steps beside the wiring: settling the secret key against the database, the names
//! of a generated serving certificate, registering the pod's own cluster.

use std::net::SocketAddr;

use super::StartError;
use crate::app::App;
use crate::cluster::spec;
use crate::config::{Config, DatabaseUrl};
use crate::crypto::SecretKey;
use crate::storage::Db;

/// Name of the generated key file in the data folder (standalone SQLite).
pub const SECRET_KEY_FILE: &str = "secret.key";
const KEY_CHECK_SETTING: &str = "secret_key_check";
const KEY_CHECK_PLAINTEXT: &[u8] = b"portico secret key check";

/// Uses the configured key or, standalone, the key file in the data folder (created on first
/// start), and checks it against the value the database was set up with, so a wrong key stops
/// the gateway at start instead of failing on every cluster later.
pub async fn settle_secret_key(
    database: &DatabaseUrl,
    given: Option<&SecretKey>,
    db: &Db,
) -> Result<SecretKey, StartError> {
    let key = match (given, database.data_dir()) {
        (Some(key), _) => key.clone(),
        (None, Some(dir)) => {
            let path = dir.join(SECRET_KEY_FILE);
            let (key, created) = SecretKey::load_or_create(&path)?;
            if created {
                tracing::info!(path = %path.display(), "generated a secret key (mode 0600)");
            }
            key
        }
        (None, None) => {
            return Err(StartError::NoDataFolder(
                "a generated secret key",
                "--secret-key (SECRET_KEY)",
            ));
        }
    };
    let check = key.seal(KEY_CHECK_SETTING.as_bytes(), KEY_CHECK_PLAINTEXT);
    let check = hex::encode(check);
    if !db
        .insert_setting_if_absent(KEY_CHECK_SETTING, &check)
        .await?
    {
        let stored = db.setting(KEY_CHECK_SETTING).await?.unwrap_or_default();
        let opens = hex::decode(&stored)
            .ok()
            .and_then(|sealed| key.open(KEY_CHECK_SETTING.as_bytes(), &sealed).ok())
            .is_some_and(|plain| plain == KEY_CHECK_PLAINTEXT);
        if !opens {
            let hint = match database.data_dir() {
                Some(dir) if given.is_some() => format!(
                    " (or remove --secret-key to use {})",
                    dir.join(SECRET_KEY_FILE).display()
                ),
                _ => String::new(),
            };
            return Err(StartError::WrongKey(hint));
        }
    }
    Ok(key)
}

/// Names the generated serving certificate covers: loopback, the host name, and the host of
/// the advertised and public addresses.
pub(super) fn certificate_names(config: &Config) -> Vec<String> {
    let mut names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    if let Ok(host) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        names.push(host.trim().to_owned());
    }
    let host_of = |addr: &str| {
        let rest = addr.split("://").last().unwrap_or(addr);
        let authority = rest.split('/').next().unwrap_or(rest);
        match authority.parse::<SocketAddr>() {
            Ok(socket) => socket.ip().to_string(),
            Err(_) => authority
                .rsplit_once(':')
                .map_or(authority, |(h, _)| h)
                .to_owned(),
        }
    };
    names.push(host_of(&config.advertise_address));
    if let Some(url) = &config.public_url {
        names.push(host_of(url));
    }
    names.retain(|n| !n.is_empty() && n != "0.0.0.0" && n != "::");
    names.dedup();
    names
}

/// With `--in-cluster`, the cluster this pod runs in registers itself as `in-cluster`.
pub(super) async fn register_in_cluster(app: &App) {
    let result = match spec::this_pods_cluster() {
        Ok(spec) => {
            app.clusters
                .upsert_spec("in-cluster", "in-cluster", &spec)
                .await
        }
        Err(e) => Err(e.into()),
    };
    match result {
        Ok(()) => tracing::info!("registered this pod's cluster as `in-cluster`"),
        Err(e) => tracing::warn!(error = %e, "--in-cluster: cannot register this pod's cluster"),
    }
}
