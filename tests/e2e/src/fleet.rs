//! Helpers for tests with several coordinated replicas: a shared database, a simulator as the
//! host cluster, and short lease timings (3 s leases renewed every second, leader 3/2/1 s,
//! resync 5 s, expired-lease cleanup every second).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kube_sim::KubeSim;

use crate::gateway::{TestGateway, TestGatewayBuilder};
use crate::postgres::TestPostgres;

/// The secret key every replica of a test fleet shares.
pub const FLEET_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// A replica named `name` on `db_url` (PostgreSQL), coordinating through the leases of the
/// cluster in `host_kubeconfig`, with `admin_token`. Add flags or variables, then `start()`.
pub fn replica(
    db_url: &str,
    host_kubeconfig: &Path,
    name: &str,
    admin_token: &str,
) -> TestGatewayBuilder {
    TestGateway::builder()
        .env("DATABASE_URL", db_url)
        .env("SECRET_KEY", FLEET_KEY)
        .env("ADMIN_TOKEN", admin_token)
        .env("PLAIN_HTTP", "true")
        .env(
            "HOST_KUBECONFIG",
            host_kubeconfig.to_str().expect("UTF-8 path"),
        )
        .env("INSTANCE_ID", name)
        .env("LEASE_NAMESPACE", "default")
        .env("LEASE_DURATION_SECONDS", "3")
        .env("LEASE_RENEW_INTERVAL_SECONDS", "1")
        .env("LEADER_LEASE_DURATION_SECONDS", "3")
        .env("LEADER_RENEW_DEADLINE_SECONDS", "2")
        .env("LEADER_RETRY_PERIOD_SECONDS", "1")
        .env("RESYNC_PERIOD_SECONDS", "5")
        .env("LEASE_CLEANUP_INTERVAL_SECONDS", "1")
}

/// What a fleet shares: a throwaway PostgreSQL database, a simulator as the host cluster (its
/// kubeconfig written to a temporary folder) and a second simulator as the managed cluster.
#[derive(Debug)]
pub struct Fleet {
    _pg: TestPostgres,
    pub db_url: String,
    pub host: KubeSim,
    pub managed: KubeSim,
    dir: tempfile::TempDir,
}

impl Fleet {
    /// Starts it, or returns `None` where [`TestPostgres::start_or_skip`] skips `test`.
    pub async fn start(test: &str) -> Option<Self> {
        let pg = TestPostgres::start_or_skip(test)?;
        let db_url = pg.create_database("fleet").unwrap();
        let host = KubeSim::start().await.unwrap();
        let managed = KubeSim::start().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        host.write_kubeconfig(dir.path().join("host.kubeconfig"))
            .unwrap();
        Some(Self {
            _pg: pg,
            db_url,
            host,
            managed,
            dir,
        })
    }

    /// The host cluster's kubeconfig.
    pub fn host_kubeconfig(&self) -> PathBuf {
        self.dir.path().join("host.kubeconfig")
    }

    /// [`replica`] on this fleet.
    pub fn replica(&self, name: &str, admin_token: &str) -> TestGatewayBuilder {
        replica(&self.db_url, &self.host_kubeconfig(), name, admin_token)
    }
}

/// Whether this replica leads right now.
pub fn is_leader(gw: &TestGateway) -> bool {
    gw.gateway().app().coord.leadership().borrow().is_leader
}

/// Polls `check` every 100 ms until it returns `Some`; panics with `what` after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
