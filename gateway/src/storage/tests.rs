use crate::records::audit::{AuditEntry, AuditKind};
use crate::records::helm::Repository;
use crate::records::plugin::Chart;

use super::*;

fn chart(version: usize) -> Chart {
    Chart {
        name: "app".into(),
        version: format!("1.0.{version}"),
        app_version: None,
        description: None,
        digest: None,
        urls: vec![],
        created: None,
        deprecated: false,
        icon: None,
        keywords: vec![],
    }
}

fn audit_entry(at: i64) -> AuditEntry {
    AuditEntry {
        at,
        kind: AuditKind::Api,
        token_id: String::new(),
        token_name: String::new(),
        cluster: String::new(),
        verb: "post".into(),
        path: "/api/v1/x".into(),
        status: 200,
        source: String::new(),
    }
}

/// A transaction that reads and then writes (a Helm sync replacing chart versions) while
/// other connections keep committing (the audit writer): on SQLite a plain `BEGIN` fails such
/// a transaction at once with "database is locked"; `begin_write` waits for the lock instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_transactions_that_read_then_write_survive_concurrent_writers() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::connect(&DatabaseUrl::Sqlite(dir.path().join("portico.db")))
        .await
        .unwrap();
    let repository = Repository {
        id: "r1".into(),
        name: "r1".into(),
        url: "https://charts.example/".into(),
        sealed_auth: None,
        auth_type: None,
        ca_pem: None,
        etag: None,
        last_sync_run: None,
        last_change_run: None,
        last_sync_at: None,
        last_sync_status: None,
        last_error: None,
        created_at: 0,
        updated_at: 0,
    };
    db.insert_helm_repository(&repository).await.unwrap();

    let writer = {
        let db = db.clone();
        tokio::spawn(async move {
            for at in 0..300 {
                db.insert_audit(&[audit_entry(at)]).await?;
            }
            Ok::<_, StorageError>(())
        })
    };
    for round in 0..150 {
        let charts: Vec<Chart> = (0..=round % 7).map(chart).collect();
        db.replace_chart_versions("r1", &format!("run-{round}"), &charts)
            .await
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
    }
    writer.await.unwrap().unwrap();
}
