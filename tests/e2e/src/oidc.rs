//! A real OpenID provider for the tests: panva's certified `oidc-provider` (npm, pinned in
//! `tests/oidc-provider/package.json`), run by Node as a child process.
//!
//! [`OidcProvider::start`] installs it on first use (`tests/tools/install-oidc-provider`, under
//! a lock so parallel test binaries install once), makes a throwaway CA and a server
//! certificate for 127.0.0.1 (the gateway, like kube-apiserver, accepts only `https` issuers),
//! writes the configuration (clients, users, ID token lifetime) and starts
//! `tests/oidc-provider/provider.mjs` on port 0. The child is killed when the value drops.
//!
//! Sign-in and consent are oidc-provider's development interactions: plain HTML forms that
//! [`OidcProvider::complete_login`] and [`OidcProvider::approve_device`] post the way a browser
//! would. [`OidcProvider::tokens_for`] runs a whole authorization-code flow with PKCE and
//! returns real tokens, for tests that need an ID token without the CLI.
//!
//! The binary is `$PORTICO_E2E_NODE` when set, else `node` from `PATH`, else the Node that
//! `.ci/run` puts into `target/plugin-tools/node/bin`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, Result, bail, ensure};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use reqwest::Url;
use serde_json::{Value, json};
use sha2::Digest as _;
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{Mutex, mpsc};

/// The public client the CLI uses (PKCE, device code, refresh tokens; loopback redirects on
/// any port of `http://127.0.0.1/callback`).
pub const CLI_CLIENT_ID: &str = "portico-cli";
/// The confidential client for the console's server-side code flow.
pub const CONSOLE_CLIENT_ID: &str = "portico-console";
/// The console client's secret.
pub const CONSOLE_CLIENT_SECRET: &str = "portico-console-secret";
/// The CLI client's registered loopback redirect (oidc-provider accepts any port for a native
/// client's loopback redirect, RFC 8252 section 7.3).
pub const CLI_REDIRECT_URI: &str = "http://127.0.0.1/callback";

/// A test user: the login name is `id`; the ID token carries the other fields as claims.
#[derive(Clone, Debug)]
pub struct OidcUser {
    /// The account id (`sub`, and what the login form takes).
    pub id: String,
    /// `email`.
    pub email: String,
    /// `email_verified`.
    pub email_verified: bool,
    /// `groups`.
    pub groups: Vec<String>,
}

impl OidcUser {
    /// A user `id` with the address `id@example.com` (verified) in `groups`.
    pub fn new(id: &str, groups: &[&str]) -> Self {
        Self {
            id: id.to_string(),
            email: format!("{id}@example.com"),
            email_verified: true,
            groups: groups.iter().map(|g| (*g).to_string()).collect(),
        }
    }
}

/// How to start the provider.
#[derive(Clone, Debug)]
pub struct OidcOptions {
    /// Serve HTTPS with a throwaway CA (default); plain HTTP when false.
    pub tls: bool,
    /// Lifetime of ID tokens (and access tokens); whole seconds, at least 1.
    pub id_token_ttl: Duration,
    /// The users who may sign in.
    pub users: Vec<OidcUser>,
    /// Redirect URIs of the console client (a web client: exact match). Can be changed later
    /// with [`OidcProvider::set_redirect_uris`], once the gateway's address is known.
    pub console_redirect_uris: Vec<String>,
}

impl Default for OidcOptions {
    /// HTTPS, ID tokens for 10 minutes, `alice` (groups `dev`, `ops`), `bob` (`dev`) and
    /// `carol` (no groups, address not verified).
    fn default() -> Self {
        let mut carol = OidcUser::new("carol", &[]);
        carol.email_verified = false;
        Self {
            tls: true,
            id_token_ttl: Duration::from_secs(600),
            users: vec![
                OidcUser::new("alice", &["dev", "ops"]),
                OidcUser::new("bob", &["dev"]),
                carol,
            ],
            console_redirect_uris: vec!["http://127.0.0.1/ui/oidc/callback".to_string()],
        }
    }
}

/// Tokens from the token endpoint.
#[derive(Clone, Debug)]
pub struct Tokens {
    /// The ID token (a signed JWT).
    pub id_token: String,
    /// The access token.
    pub access_token: String,
    /// The refresh token, when one was issued.
    pub refresh_token: Option<String>,
    /// The whole response.
    pub raw: Value,
}

impl Tokens {
    fn from_response(raw: Value) -> Result<Self> {
        let field = |name: &str| raw.get(name).and_then(Value::as_str).map(str::to_string);
        Ok(Self {
            id_token: field("id_token").with_context(|| format!("no id_token in {raw}"))?,
            access_token: field("access_token")
                .with_context(|| format!("no access_token in {raw}"))?,
            refresh_token: field("refresh_token"),
            raw,
        })
    }
}

/// The claims of a JWT, decoded without any verification (for assertions in tests).
pub fn jwt_claims(jwt: &str) -> Result<Value> {
    let payload = jwt.split('.').nth(1).context("not a JWT")?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).context("JWT payload")?;
    serde_json::from_slice(&bytes).context("JWT payload JSON")
}

/// The header of a JWT, decoded without any verification.
pub fn jwt_header(jwt: &str) -> Result<Value> {
    let header = jwt.split('.').next().context("not a JWT")?;
    let bytes = URL_SAFE_NO_PAD.decode(header).context("JWT header")?;
    serde_json::from_slice(&bytes).context("JWT header JSON")
}

/// A PKCE verifier and its S256 challenge.
pub fn pkce_pair() -> (String, String) {
    let verifier = format!("{}{}", random_hex(), random_hex());
    let challenge = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

fn random_hex() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// Where the provider program lives.
pub fn provider_dir() -> PathBuf {
    crate::python::workspace_root().join("tests/oidc-provider")
}

/// The Node binary to run.
pub fn node_binary() -> PathBuf {
    if let Some(node) = std::env::var_os("PORTICO_E2E_NODE") {
        return PathBuf::from(node);
    }
    let on_path = std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join("node").is_file()));
    let tools = crate::python::target_dir().join("plugin-tools/node/bin/node");
    if !on_path && tools.is_file() {
        return tools;
    }
    PathBuf::from("node")
}

/// Runs `tests/tools/install-oidc-provider` once for all test binaries (a lock file keeps
/// concurrent tests from installing at the same time; the script keeps an installed package).
fn install_blocking() -> Result<()> {
    let installed = provider_dir().join("node_modules/oidc-provider/package.json");
    let target = crate::python::target_dir();
    std::fs::create_dir_all(&target)?;
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(target.join("oidc-provider.lock"))?;
    lock.lock()?;
    let out = std::process::Command::new(
        crate::python::workspace_root().join("tests/tools/install-oidc-provider"),
    )
    .env("CARGO_TARGET_DIR", &target)
    .output()
    .context("running tests/tools/install-oidc-provider")?;
    ensure!(
        out.status.success() && installed.is_file(),
        "tests/tools/install-oidc-provider failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// A throwaway CA and a server certificate for 127.0.0.1 and localhost, all PEM.
struct Certificates {
    ca: String,
    cert: String,
    key: String,
}

fn certificates() -> Result<Certificates> {
    let validity = |p: &mut CertificateParams| {
        p.not_before = rcgen::date_time_ymd(2020, 1, 1);
        p.not_after = rcgen::date_time_ymd(2099, 1, 1);
    };
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.distinguished_name = rcgen::DistinguishedName::new();
    ca.distinguished_name
        .push(DnType::CommonName, "oidc-provider test CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    validity(&mut ca);
    let ca_cert = ca.self_signed(&ca_key)?;
    let key = KeyPair::generate()?;
    let mut server =
        CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])?;
    server.distinguished_name = rcgen::DistinguishedName::new();
    server
        .distinguished_name
        .push(DnType::CommonName, "oidc-provider");
    server.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    server.use_authority_key_identifier_extension = true;
    validity(&mut server);
    let cert = server.signed_by(&key, &ca_cert, &ca_key)?;
    Ok(Certificates {
        ca: ca_cert.pem(),
        cert: cert.pem(),
        key: key.serialize_pem(),
    })
}

/// What a browser ends up with after following the provider's pages.
#[derive(Clone, Debug)]
pub enum Landing {
    /// A redirect away from the provider (to the client's redirect URI), not followed.
    Redirect(String),
    /// A page of the provider with nothing left to submit (for example the device flow's
    /// "Sign-in Success").
    Page(String),
}

/// The running provider.
pub struct OidcProvider {
    child: Child,
    stdin: Mutex<ChildStdin>,
    lines: Mutex<mpsc::UnboundedReceiver<String>>,
    issuer: String,
    ca_file: Option<PathBuf>,
    ca_pem: Option<String>,
    config_file: PathBuf,
    config: Mutex<Value>,
    http: reqwest::Client,
    _dir: TempDir,
}

impl std::fmt::Debug for OidcProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcProvider")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl OidcProvider {
    /// Installs (first use), configures and starts the provider; returns once it serves.
    ///
    /// In the full suite a Node start has been seen to print nothing for a minute (about one
    /// start in five, never when the test binary runs alone): a start silent for 20 s is
    /// killed and tried again, three times at most, and each try is reported on stderr.
    pub async fn start(opts: OidcOptions) -> Result<Self> {
        let mut last = None;
        for attempt in 1..=3 {
            match Self::start_once(opts.clone()).await {
                Ok(provider) => return Ok(provider),
                Err(e) if e.to_string().contains("did not start within") => {
                    eprintln!("oidc-provider start {attempt} of 3 was silent for 20 s; retrying");
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.expect("three attempts"))
    }

    async fn start_once(opts: OidcOptions) -> Result<Self> {
        tokio::task::spawn_blocking(install_blocking)
            .await
            .context("install task panicked")??;
        let dir = tempfile::tempdir().context("temporary folder for the provider")?;
        let (tls, ca_file, ca_pem) = if opts.tls {
            let certs = certificates()?;
            let (ca, cert, key) = (
                dir.path().join("ca.pem"),
                dir.path().join("cert.pem"),
                dir.path().join("key.pem"),
            );
            std::fs::write(&ca, &certs.ca)?;
            std::fs::write(&cert, &certs.cert)?;
            std::fs::write(&key, &certs.key)?;
            (json!({"cert": cert, "key": key}), Some(ca), Some(certs.ca))
        } else {
            (Value::Null, None, None)
        };
        let ttl = opts.id_token_ttl.as_secs().max(1);
        let users: Vec<Value> = opts
            .users
            .iter()
            .map(|u| {
                json!({"id": u.id, "email": u.email, "email_verified": u.email_verified,
                       "groups": u.groups})
            })
            .collect();
        let config = json!({
            "tls": tls,
            "idTokenTtl": ttl,
            "users": users,
            "clients": [
                {
                    "client_id": CLI_CLIENT_ID,
                    "application_type": "native",
                    "token_endpoint_auth_method": "none",
                    "grant_types": ["authorization_code", "refresh_token",
                                    "urn:ietf:params:oauth:grant-type:device_code"],
                    "response_types": ["code"],
                    "redirect_uris": [CLI_REDIRECT_URI],
                },
                {
                    "client_id": CONSOLE_CLIENT_ID,
                    "client_secret": CONSOLE_CLIENT_SECRET,
                    "grant_types": ["authorization_code", "refresh_token"],
                    "response_types": ["code"],
                    "redirect_uris": opts.console_redirect_uris,
                },
            ],
        });
        let config_file = dir.path().join("config.json");
        std::fs::write(&config_file, serde_json::to_vec_pretty(&config)?)?;

        let node = node_binary();
        let mut child = Command::new(&node)
            .arg(provider_dir().join("provider.mjs"))
            .arg(&config_file)
            .current_dir(provider_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {} (is Node installed?)", node.display()))?;
        let stdin = child.stdin.take().context("provider stdin")?;
        let stdout = child.stdout.take().context("provider stdout")?;
        let stderr = child.stderr.take().context("provider stderr")?;
        let (tx, mut rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                // The development-mode warnings are expected; everything else goes to the
                // test's output.
                if !line.contains("WARNING") {
                    eprintln!("[oidc-provider] {line}");
                }
            }
        });
        let first = tokio::time::timeout(Duration::from_secs(20), next_answer(&mut rx))
            .await
            .context("oidc-provider did not start within 20 s")?;
        let Some(first) = first else {
            let status = child.wait().await?;
            bail!("oidc-provider exited before serving: {status}");
        };
        let issuer = first
            .strip_prefix("issuer ")
            .with_context(|| format!("unexpected first line from oidc-provider: {first}"))?
            .to_string();

        let mut http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30));
        if let Some(pem) = &ca_pem {
            http = http.add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes())?);
        }
        Ok(Self {
            child,
            stdin: Mutex::new(stdin),
            lines: Mutex::new(rx),
            issuer,
            ca_file,
            ca_pem,
            config_file,
            config: Mutex::new(config),
            http: http.build()?,
            _dir: dir,
        })
    }

    /// The issuer URL (`https://127.0.0.1:PORT`, no trailing slash).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The CA certificate file that verifies the provider's server certificate (HTTPS only).
    pub fn ca_file(&self) -> Option<&Path> {
        self.ca_file.as_deref()
    }

    /// The flags of a gateway that accepts this provider's ID tokens issued to the CLI client,
    /// with group names prefixed `oidc:` (HTTPS only).
    pub fn gateway_args(&self) -> Vec<String> {
        let ca = self.ca_file().expect("the provider serves HTTPS");
        [
            "--oidc-issuer-url",
            self.issuer(),
            "--oidc-client-id",
            CLI_CLIENT_ID,
            "--oidc-groups-prefix",
            "oidc:",
            "--oidc-ca-file",
            &ca.display().to_string(),
        ]
        .map(str::to_owned)
        .to_vec()
    }

    /// The CA certificate, PEM (HTTPS only).
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// An HTTP client that trusts the provider and does not follow redirects.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The discovery document.
    pub async fn discovery(&self) -> Result<Value> {
        let resp = self
            .http
            .get(format!("{}/.well-known/openid-configuration", self.issuer))
            .send()
            .await?;
        ensure!(resp.status().is_success(), "discovery: {}", resp.status());
        Ok(resp.json().await?)
    }

    /// The published signing keys.
    pub async fn jwks(&self) -> Result<Value> {
        let disco = self.discovery().await?;
        let uri = disco["jwks_uri"].as_str().context("jwks_uri")?;
        Ok(self.http.get(uri).send().await?.json().await?)
    }

    async fn command(&self, command: &str, reply_prefix: &str) -> Result<String> {
        let mut lines = self.lines.lock().await;
        {
            let mut stdin = self.stdin.lock().await;
            stdin.write_all(format!("{command}\n").as_bytes()).await?;
            stdin.flush().await?;
        }
        let line = tokio::time::timeout(Duration::from_secs(30), next_answer(&mut lines))
            .await
            .with_context(|| format!("no answer to {command:?} within 30 s"))?
            .context("oidc-provider exited")?;
        line.strip_prefix(reply_prefix)
            .map(str::to_string)
            .with_context(|| format!("unexpected answer to {command:?}: {line}"))
    }

    /// Adds a new signing key first in the JWKS (new tokens are signed with it; the old keys
    /// stay published). Returns the new key's `kid`.
    pub async fn rotate_keys(&self) -> Result<String> {
        self.command("rotate", "rotated ").await
    }

    /// Replaces every signing key with a new one (the old ones leave the JWKS). Returns the
    /// new key's `kid`.
    pub async fn replace_keys(&self) -> Result<String> {
        self.command("rotate-only", "rotated ").await
    }

    /// Sets the redirect URIs of client `client_id` (for the console client once the
    /// gateway's address is known): the configuration file is rewritten and the provider
    /// reloads its clients (same issuer, keys, sessions and grants).
    pub async fn set_redirect_uris(&self, client_id: &str, uris: &[&str]) -> Result<()> {
        let mut config = self.config.lock().await;
        let clients = config["clients"]
            .as_array_mut()
            .context("clients in the configuration")?;
        let client = clients
            .iter_mut()
            .find(|c| c["client_id"] == client_id)
            .with_context(|| format!("no client {client_id}"))?;
        client["redirect_uris"] = json!(uris);
        std::fs::write(&self.config_file, serde_json::to_vec_pretty(&*config)?)?;
        self.command("reload-clients", "reloaded").await?;
        Ok(())
    }

    /// Stops the provider (the same happens on drop); afterwards requests to it fail.
    pub async fn stop(mut self) -> Result<()> {
        self.halt().await
    }

    /// Stops the provider but keeps this value (for "provider down" tests).
    pub async fn halt(&mut self) -> Result<()> {
        let _ = self.command_no_reply("stop").await;
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .is_err()
        {
            self.child.kill().await.context("killing oidc-provider")?;
        }
        Ok(())
    }

    async fn command_no_reply(&self, command: &str) -> Result<()> {
        let mut stdin = self.stdin.lock().await;
        stdin.write_all(format!("{command}\n").as_bytes()).await?;
        stdin.flush().await?;
        Ok(())
    }

    fn resolve(&self, location: &str) -> Result<Url> {
        Url::parse(&self.issuer)?
            .join(location)
            .with_context(|| format!("bad location {location}"))
    }

    fn on_issuer(&self, url: &Url) -> bool {
        Url::parse(&self.issuer).is_ok_and(|issuer| issuer.origin() == url.origin())
    }

    /// Follows the provider's pages from `start` the way a browser would, signing in as
    /// `user` and approving consent, until it redirects elsewhere or shows a page with
    /// nothing to submit.
    pub async fn browse(&self, start: &str, user: &str) -> Result<Landing> {
        let mut jar: BTreeMap<String, String> = BTreeMap::new();
        let mut request = self.http.get(start);
        let mut url = Url::parse(start).with_context(|| format!("bad URL {start}"))?;
        for _ in 0..20 {
            let cookies: Vec<String> = jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
            if !cookies.is_empty() {
                request = request.header(reqwest::header::COOKIE, cookies.join("; "));
            }
            let resp = request
                .send()
                .await
                .with_context(|| format!("requesting {url}"))?;
            for set in resp.headers().get_all(reqwest::header::SET_COOKIE) {
                let set = set.to_str().unwrap_or_default();
                let pair = set.split(';').next().unwrap_or_default();
                if let Some((name, value)) = pair.split_once('=') {
                    if value.is_empty() {
                        jar.remove(name.trim());
                    } else {
                        jar.insert(name.trim().to_string(), value.to_string());
                    }
                }
            }
            let status = resp.status();
            if status.is_redirection() {
                let location = resp
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .context("redirect without Location")?
                    .to_string();
                let next = self.resolve(&location)?;
                if !self.on_issuer(&next) {
                    return Ok(Landing::Redirect(next.to_string()));
                }
                url = next;
                request = self.http.get(url.clone());
                continue;
            }
            let body = resp.text().await?;
            ensure!(
                status.is_success(),
                "{url} answered {status}:\n{}",
                body.chars().take(2000).collect::<String>()
            );
            let Some(form) = Form::parse(&body) else {
                return Ok(Landing::Page(body));
            };
            let mut fields = form.hidden.clone();
            match fields.get("prompt").map(String::as_str) {
                Some("login") => {
                    fields.insert("login".into(), user.to_string());
                    fields.insert("password".into(), "test".into());
                }
                Some("consent") => {}
                Some(other) => bail!("unexpected prompt {other} at {url}"),
                None if fields.contains_key("user_code") => {}
                None => return Ok(Landing::Page(body)),
            }
            url = url.join(&form.action)?;
            request = self.http.post(url.clone()).form(&fields);
        }
        bail!("no end after 20 pages from {start}")
    }

    /// Completes a sign-in that started at `authorize_url` (what a CLI prints) as `user`, and
    /// returns the redirect to the client (`…?code=…&state=…`, or an `error`), not followed.
    pub async fn complete_login(&self, authorize_url: &str, user: &str) -> Result<String> {
        match self.browse(authorize_url, user).await? {
            Landing::Redirect(to) => Ok(to),
            Landing::Page(body) => bail!(
                "the sign-in ended on a provider page, not a redirect:\n{}",
                body.chars().take(2000).collect::<String>()
            ),
        }
    }

    /// Enters `user_code` on the device verification page, signs in as `user` and approves.
    pub async fn approve_device(&self, user_code: &str, user: &str) -> Result<()> {
        let mut start = Url::parse(&format!("{}/device", self.issuer))?;
        start.query_pairs_mut().append_pair("user_code", user_code);
        match self.browse(start.as_str(), user).await? {
            Landing::Page(body) if body.contains("Sign-in Success") => Ok(()),
            Landing::Page(body) => bail!(
                "the device approval did not succeed:\n{}",
                body.chars().take(2000).collect::<String>()
            ),
            Landing::Redirect(to) => bail!("the device approval redirected to {to}"),
        }
    }

    /// Runs a whole authorization-code flow with PKCE for the CLI client as `user` and
    /// returns its tokens (with a refresh token: `offline_access` is asked for).
    pub async fn tokens_for(&self, user: &str) -> Result<Tokens> {
        let disco = self.discovery().await?;
        let (verifier, challenge) = pkce_pair();
        let state = random_hex();
        let redirect_uri = "http://127.0.0.1:9/callback";
        let mut authorize = Url::parse(
            disco["authorization_endpoint"]
                .as_str()
                .context("authorization_endpoint")?,
        )?;
        authorize
            .query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", CLI_CLIENT_ID)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", "openid email profile groups offline_access")
            .append_pair("state", &state)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        let back = Url::parse(&self.complete_login(authorize.as_str(), user).await?)?;
        let query: BTreeMap<String, String> = back.query_pairs().into_owned().collect();
        ensure!(
            query.get("state") == Some(&state),
            "state mismatch in {back}"
        );
        let code = query
            .get("code")
            .with_context(|| format!("no code in {back}"))?;
        let token_endpoint = disco["token_endpoint"].as_str().context("token_endpoint")?;
        let resp = self
            .http
            .post(token_endpoint)
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", redirect_uri),
                ("client_id", CLI_CLIENT_ID),
                ("code_verifier", &verifier),
            ])
            .send()
            .await?;
        let status = resp.status();
        let body: Value = resp.json().await?;
        ensure!(status.is_success(), "token endpoint: {status} {body}");
        Tokens::from_response(body)
    }

    /// Trades `refresh_token` for new tokens at the token endpoint (CLI client).
    pub async fn refresh(&self, refresh_token: &str) -> Result<Tokens> {
        let disco = self.discovery().await?;
        let token_endpoint = disco["token_endpoint"].as_str().context("token_endpoint")?;
        let resp = self
            .http
            .post(token_endpoint)
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
                ("client_id", CLI_CLIENT_ID),
            ])
            .send()
            .await?;
        let status = resp.status();
        let body: Value = resp.json().await?;
        ensure!(status.is_success(), "token endpoint: {status} {body}");
        Tokens::from_response(body)
    }
}

/// The next line of the provider's own protocol; oidc-provider's notices (it prints some on
/// standard output) go to the test's output.
async fn next_answer(lines: &mut mpsc::UnboundedReceiver<String>) -> Option<String> {
    loop {
        let line = lines.recv().await?;
        if line.starts_with("oidc-provider ") {
            eprintln!("[oidc-provider] {line}");
            continue;
        }
        return Some(line);
    }
}

/// The first form of a page: where it posts and its hidden fields.
#[derive(Debug)]
struct Form {
    action: String,
    hidden: BTreeMap<String, String>,
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let needle = format!("{name}=\"");
    let start = tag.find(&needle)? + needle.len();
    let end = tag[start..].find('"')? + start;
    Some(unescape(&tag[start..end]))
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

impl Form {
    fn parse(html: &str) -> Option<Self> {
        let start = html.find("<form")?;
        let end = html[start..].find("</form>")? + start;
        let form = &html[start..end];
        let open_end = form.find('>')?;
        let action = attribute(&form[..open_end], "action")?;
        let mut hidden = BTreeMap::new();
        let mut rest = form;
        while let Some(at) = rest.find("<input") {
            let tag_end = rest[at..].find('>').map_or(rest.len(), |e| e + at);
            let tag = &rest[at..tag_end];
            if attribute(tag, "type").as_deref() == Some("hidden")
                && let (Some(name), Some(value)) = (attribute(tag, "name"), attribute(tag, "value"))
            {
                hidden.insert(name, value);
            }
            rest = &rest[tag_end..];
        }
        Some(Self { action, hidden })
    }
}
