//! Wasm plugins for tests: the components `build.rs` built, a plugin directory, uploads, and
//! a [`KubeApi`] over a simulator.

use std::path::PathBuf;
use std::sync::Arc;

use kube_sim::KubeSim;
use portico::plugin::{ClusterInfo, KubeApi, RestKubeApi};

use crate::gateway::{TestGateway, TestGatewayBuilder};

/// The component `build.rs` built from crate `crate_name` (`-` or `_`).
pub fn wasm(crate_name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("PORTICO_PLUGIN_WASM_DIR"))
        .join(format!("{}.wasm", crate_name.replace('-', "_")));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A gateway whose SQLite database is `<test>.db` in a folder all plugin tests share, so they
/// share the compile cache wasmtime keeps beside it: a component is compiled once, not once per
/// test. `test` must be unique among the tests.
pub fn gateway_builder(test: &str) -> TestGatewayBuilder {
    let dir = PathBuf::from(env!("PORTICO_PLUGIN_TEST_DATA"));
    std::fs::create_dir_all(&dir).expect("create the test data folder");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(dir.join(format!("{test}.db{suffix}")));
    }
    let url = format!("sqlite://{}/{test}.db", dir.display());
    TestGateway::builder().args(["--database-url".to_owned(), url])
}

/// A plugin directory with the example plugins (`--plugin-dir`); the built-in ones are in the
/// binary.
pub fn plugin_dir() -> PathBuf {
    PathBuf::from(env!("PORTICO_PLUGIN_DIR"))
}

/// `POST /api/v1/plugins` with `manifest` and `component` parts.
pub async fn upload(
    gateway: &TestGateway,
    manifest: &str,
    component: Vec<u8>,
) -> reqwest::Response {
    upload_to(gateway, "/api/v1/plugins", manifest, component).await
}

/// A multipart upload to `path` (e.g. with `?replace=true`).
pub async fn upload_to(
    gateway: &TestGateway,
    path: &str,
    manifest: &str,
    component: Vec<u8>,
) -> reqwest::Response {
    let form = reqwest::multipart::Form::new()
        .text("manifest", manifest.to_owned())
        .part(
            "component",
            reqwest::multipart::Part::bytes(component).file_name("plugin.wasm"),
        );
    gateway
        .as_admin(reqwest::Method::POST, path)
        .multipart(form)
        .send()
        .await
        .expect("upload request")
}

/// Reads `sim` with its CA and token.
pub fn kube_api(sim: &KubeSim) -> Arc<dyn KubeApi> {
    Arc::new(
        RestKubeApi::new(&sim.url(), sim.ca_pem().as_deref(), Some(sim.token()))
            .expect("a client for the simulator"),
    )
}

/// A cluster description for calls.
pub fn cluster(id: &str) -> ClusterInfo {
    ClusterInfo {
        id: id.to_owned(),
        name: format!("{id} (simulated)"),
        labels: Default::default(),
    }
}
