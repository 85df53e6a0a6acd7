//! The official Python `kubernetes` client against the simulator over HTTPS.

use kube_sim::KubeSim;
use portico_e2e::python::PythonEnv;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_client_lists_watches_creates_and_gets_conflicts() -> anyhow::Result<()> {
    let py = PythonEnv::ensure().await?;
    // A short history so a watch from version 1 is too old.
    let sim = KubeSim::builder().watch_history(10).start().await?;
    sim.seed_pods("default", 3, 1);
    sim.seed_pods("other", 20, 1);
    let dir = tempfile::tempdir()?;
    let kubeconfig = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig)?;
    assert!(sim.kubeconfig().contains("certificate-authority-data"));

    let out = py
        .run_script(
            "kube_client_checks.py",
            &["default"],
            &[("KUBECONFIG", kubeconfig.to_str().unwrap())],
        )
        .await?
        .success()?;
    let report = out.json()?;

    assert_eq!(
        report["pods"],
        json!(["pod-00000", "pod-00001", "pod-00002"])
    );
    assert_eq!(
        report["all_pods"], 3,
        "app=app-1 across namespaces: {report}"
    );
    assert_eq!(report["created"]["name"], "py-cm");
    assert_eq!(report["create_again"]["status"], 409);
    assert_eq!(report["create_again"]["reason"], "AlreadyExists");
    assert_eq!(report["replaced_data"], json!({"k": "2"}));
    assert_eq!(report["stale_replace"]["status"], 409);
    assert_eq!(report["stale_replace"]["reason"], "Conflict");
    assert_eq!(report["lease_unconditional"]["status"], 422);
    assert_eq!(report["lease_unconditional"]["reason"], "Invalid");
    assert_eq!(
        report["watch"],
        json!([["ADDED", "w1"], ["ADDED", "w2"], ["DELETED", "w1"]]),
        "{report}"
    );
    assert_eq!(report["old_watch"]["status"], 410, "{report}");

    // The simulator saw the Python client's requests.
    let agents: Vec<String> = sim
        .requests()
        .iter()
        .filter_map(|r| r.header("user-agent").map(str::to_string))
        .collect();
    assert!(
        agents.iter().any(|a| a.starts_with("OpenAPI-Generator")),
        "{agents:?}"
    );
    Ok(())
}
