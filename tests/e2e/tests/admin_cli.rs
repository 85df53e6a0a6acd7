//! The admin CLI against a running gateway, in-process: `login` and contexts, `cluster …`
//! against a simulated apiserver, `token …` (a read-only token that can list but not delete),
//! `instances`, `leader`, `audit`, `version`, and the error classes (exit codes) of refusals.
//! Flags and variables are parsed as the binary parses them, from a map (never the process
//! environment); the config file lives in a temporary folder.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use cli_support::{Portico, ca_file, header, row};
use kube_sim::KubeSim;
use portico::cli::OutputFormat;
use portico::commands::{CommandError, exit};
use portico_e2e::gateway::TestGateway;
use serde_json::Value;

mod cli_support;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_contexts_clusters_and_tokens() {
    let gw = TestGateway::builder().start().await;
    let sim = KubeSim::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("home/.config/portico/config.yaml");
    let ca = ca_file(&gw, dir.path());
    let admin = gw.admin_token.clone().unwrap();
    let cli = Portico::new(&config);

    // Not logged in yet: a clear error, exit 4.
    let err = cli.err(&["cluster", "list"]).await;
    assert_eq!(err.exit_code(), exit::UNAUTHENTICATED, "{err}");
    assert!(err.to_string().contains("portico login"), "{err}");

    // Login checks the token, then writes a private config file with the context.
    let bad = cli
        .err(&[
            "login",
            "--server",
            &gw.url,
            "--token",
            "pt_wrong",
            "--ca-file",
            ca.to_str().unwrap(),
        ])
        .await;
    assert_eq!(bad.exit_code(), exit::UNAUTHENTICATED, "{bad}");
    assert!(
        bad.to_string().contains("401") && bad.to_string().contains(&gw.url),
        "{bad}"
    );
    assert!(!config.exists(), "a refused login stores nothing");
    let login = cli
        .ok(&[
            "login",
            "--server",
            &gw.url,
            "--token",
            &admin,
            "--ca-file",
            ca.to_str().unwrap(),
            "--context",
            "local",
            "-o",
            "json",
        ])
        .await;
    assert_eq!(login.value()["context"], "local");
    assert_eq!(login.value()["clustersVisible"], 0);
    assert_eq!(mode(&config), 0o600);
    assert_eq!(mode(config.parent().unwrap()), 0o700);
    let stored = std::fs::read_to_string(&config).unwrap();
    assert!(stored.contains("currentContext: local"), "{stored}");
    assert!(
        stored.contains(&admin) && stored.contains("BEGIN CERTIFICATE"),
        "{stored}"
    );

    // A later command uses the context: add the simulator and connect it.
    let kubeconfig = dir.path().join("sim.kubeconfig");
    sim.write_kubeconfig(&kubeconfig).unwrap();
    let added = cli
        .ok(&[
            "cluster",
            "add",
            "sim",
            "-f",
            kubeconfig.to_str().unwrap(),
            "--kube-context",
            "kube-sim",
            "--name",
            "Simulator",
            "-l",
            "env=test",
            "--connect",
        ])
        .await;
    assert_eq!(added.value()["state"], "connected", "{}", added.json());
    let shown = added.table();
    assert!(
        shown.contains("state:") && shown.contains("connected"),
        "{shown}"
    );

    // List: a table with a row per cluster; the same as JSON and YAML.
    let listed = cli.ok(&["cluster", "list"]).await;
    assert_eq!(
        header(&listed.table()),
        [
            "ID", "NAME", "SERVER", "DESIRED", "STATE", "REPLICAS", "VERSION", "LABELS"
        ]
    );
    let cells = row(&listed.table(), "sim");
    assert_eq!(cells[1], "Simulator");
    assert_eq!(cells[2], sim.url());
    assert_eq!(cells[3..5], ["connected", "connected"]);
    // Standalone: this replica is the only one, and it is connected.
    assert_eq!(cells[5], "1/1 connected");
    assert_eq!(cells[7], "env=test");
    let json = cli.ok(&["cluster", "list", "-o", "json"]).await;
    assert_eq!(json.format(), OutputFormat::Json);
    let parsed: Value = serde_json::from_str(&json.render()).unwrap();
    assert_eq!(parsed["items"][0]["id"], "sim");
    let yaml = cli
        .ok(&["cluster", "get", "sim", "-o", "yaml"])
        .await
        .render();
    assert!(
        yaml.contains("id: sim") && yaml.contains("state: connected"),
        "{yaml}"
    );

    // Update merges labels (`KEY-` removes one); disconnect and connect.
    let updated = cli
        .ok(&[
            "cluster", "update", "sim", "-l", "tier=web", "-l", "env-", "-o", "json",
        ])
        .await;
    assert_eq!(
        updated.value()["labels"],
        serde_json::json!({"tier": "web"})
    );
    let off = cli
        .ok(&["cluster", "disconnect", "sim", "-o", "json"])
        .await;
    assert_eq!(off.value()["state"], "disconnected");
    assert_eq!(off.value()["desiredState"], "disconnected");
    let on = cli.ok(&["cluster", "connect", "sim", "-o", "json"]).await;
    assert_eq!(on.value()["state"], "connected");

    // The kubeconfig export, raw YAML.
    let exported = cli.ok(&["cluster", "kubeconfig", "sim"]).await.render();
    assert!(exported.contains("/k8s/clusters/sim"), "{exported}");
    assert!(exported.contains(&admin), "{exported}");

    // A second cluster (registered only): logging in again counts both, from one item of the
    // list and its `total`.
    cli.ok(&[
        "cluster",
        "add",
        "sim-2",
        "-f",
        kubeconfig.to_str().unwrap(),
    ])
    .await;
    let again = cli
        .ok(&[
            "login",
            "--server",
            &gw.url,
            "--token",
            &admin,
            "--ca-file",
            ca.to_str().unwrap(),
            "--context",
            "local",
            "-o",
            "json",
        ])
        .await;
    assert_eq!(again.value()["clustersVisible"], 2, "{}", again.json());

    // A read-only token: created with `token create`, shown once, listed without its secret.
    let created = cli
        .ok(&[
            "token", "create", "viewer", "--grant", "sim=read", "--ttl", "1d", "-o", "json",
        ])
        .await;
    let secret = created.value()["token"].as_str().unwrap().to_owned();
    let token_id = created.value()["id"].as_str().unwrap().to_owned();
    let tokens = cli.ok(&["token", "list"]).await.table();
    assert_eq!(
        header(&tokens),
        ["ID", "NAME", "ROLE", "GRANTS", "EXPIRES", "CREATED"]
    );
    let cells = row(&tokens, &token_id);
    assert_eq!(cells[1..4], ["viewer", "user", "sim=read"]);
    assert!(!tokens.contains(&secret));
    let shown = cli.ok(&["token", "get", "viewer"]).await.table();
    assert!(shown.contains(&token_id), "{shown}");

    // Log in with it as a second context (now current): it lists, it cannot delete.
    let viewer = cli
        .ok(&[
            "login",
            "--server",
            &gw.url,
            "--token",
            &secret,
            "--context",
            "viewer",
            "-o",
            "json",
        ])
        .await;
    assert_eq!(viewer.value()["clustersVisible"], 1, "{}", viewer.json());
    let contexts = cli.ok(&["context", "list"]).await.table();
    assert_eq!(
        header(&contexts),
        ["CURRENT", "NAME", "SERVER", "CREDENTIAL", "CA"]
    );
    assert_eq!(
        row(&contexts, "*")[1..],
        ["viewer", gw.url.as_str(), "token", "yes"]
    );
    assert_eq!(
        row(&contexts, "local")[1..],
        [gw.url.as_str(), "token", "yes"]
    );
    let visible = cli.ok(&["cluster", "list", "-o", "json"]).await;
    assert_eq!(visible.value()["items"][0]["id"], "sim");
    let denied = cli.err(&["cluster", "delete", "sim"]).await;
    assert_eq!(denied.exit_code(), exit::FORBIDDEN, "{denied}");
    assert_eq!(denied.status(), Some(403));
    let message = denied.to_string();
    assert!(
        message.contains("lacks the admin role") && message.contains(&gw.url),
        "{message}"
    );
    let denied = cli.err(&["token", "list", "--context", "viewer"]).await;
    assert_eq!(denied.exit_code(), exit::FORBIDDEN, "{denied}");

    // Back to the admin context; revoke the viewer token by name: refused at once.
    cli.ok(&["context", "use", "local"]).await;
    let revoked = cli.ok(&["token", "revoke", "viewer", "-o", "json"]).await;
    assert_eq!(revoked.value()["id"], token_id.as_str());
    let refused = cli.err(&["cluster", "list", "--context", "viewer"]).await;
    assert_eq!(refused.exit_code(), exit::UNAUTHENTICATED, "{refused}");
    let gone = cli.err(&["token", "get", &token_id]).await;
    assert_eq!(gone.exit_code(), exit::NOT_FOUND, "{gone}");
    cli.ok(&["context", "delete", "viewer"]).await;
    let err = cli.err(&["context", "use", "viewer"]).await;
    assert_eq!(err.exit_code(), exit::USAGE, "{err}");

    // Replicas, leader, audit and versions.
    let instances = cli.ok(&["instances"]).await.table();
    assert_eq!(
        header(&instances),
        [
            "ID", "ADDRESS", "VERSION", "STARTED", "LEADER", "CLUSTERS", "ALIVE"
        ]
    );
    let instance = gw.gateway().app().config.instance_id.clone();
    assert_eq!(row(&instances, &instance)[4], "yes", "{instances}");
    let leader = cli.ok(&["leader"]).await.table();
    assert!(
        leader.contains("standalone") && leader.contains(&instance),
        "{leader}"
    );
    let audit =
        portico_e2e::fleet::eventually("the audit log", Duration::from_secs(30), || async {
            let audit = cli.ok(&["audit", "--kind", "api", "--limit", "50"]).await;
            let table = audit.table();
            table
                .contains("/api/v1/clusters/sim/disconnect")
                .then_some(table)
        })
        .await;
    assert_eq!(
        header(&audit),
        [
            "TIME", "KIND", "TOKEN", "CLUSTER", "VERB", "STATUS", "SOURCE", "PATH"
        ]
    );
    assert!(
        audit
            .lines()
            .any(|l| l.contains("delete") && l.contains("403") && l.contains("viewer")),
        "the refused delete is audited:\n{audit}"
    );
    let version = cli.ok(&["version", "-o", "json"]).await;
    assert_eq!(version.value()["client"], version.value()["server"]);
    assert_eq!(
        version.value()["server"]["version"],
        env!("CARGO_PKG_VERSION")
    );
    assert!(
        version.value()["server"]["wit"]
            .as_str()
            .unwrap()
            .starts_with("portico:plugin@")
    );
    let open = gw
        .request(reqwest::Method::GET, "/version")
        .send()
        .await
        .unwrap();
    assert_eq!(open.status(), 200, "no token needed");
    let open: Value = open.json().await.unwrap();
    for key in ["version", "commit", "wasmtime", "wit"] {
        assert!(open[key].is_string(), "{open}");
    }

    // Logout forgets the token; a flag still works; delete, then 404.
    let out = cli.ok(&["logout"]).await.table();
    assert!(out.contains("local"), "{out}");
    assert!(!std::fs::read_to_string(&config).unwrap().contains(&admin));
    let err = cli.err(&["cluster", "list"]).await;
    assert!(matches!(err, CommandError::NotLoggedIn { .. }), "{err}");
    let contexts = cli.ok(&["context", "list", "-o", "json"]).await;
    assert_eq!(contexts.value()["items"][0]["credential"], Value::Null);
    let deleted = cli
        .ok(&["cluster", "delete", "sim", "--token", &admin])
        .await;
    assert_eq!(deleted.table(), "Cluster `sim` deleted\n");
    let missing = cli.err(&["cluster", "get", "sim", "--token", &admin]).await;
    assert_eq!(missing.exit_code(), exit::NOT_FOUND, "{missing}");
    assert!(missing.to_string().contains("404 Not Found"), "{missing}");

    // A gateway that is not there: exit 3, naming the server.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let nowhere = format!("https://{}", closed.local_addr().unwrap());
    drop(closed);
    let err = cli
        .err(&["cluster", "list", "--server", &nowhere, "--token", "t"])
        .await;
    assert_eq!(err.exit_code(), exit::UNREACHABLE, "{err}");
    assert!(err.to_string().contains(&nowhere), "{err}");
    gw.stop().await;
}
