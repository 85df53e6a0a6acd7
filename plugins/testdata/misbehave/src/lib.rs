//! A test inspector that misbehaves on purpose, as its configuration's `mode` says. The
//! gateway's tests check that each misbehaviour fails only its own call, with a clear error.

use std::hint::black_box;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use portico_plugin_sdk::http::Request;
use portico_plugin_sdk::k8s::api::core::v1::Pod;
use portico_plugin_sdk::prelude::*;

#[derive(serde::Deserialize)]
struct Config {
    mode: String,
    #[serde(default)]
    url: Option<String>,
}

struct Misbehave;

/// Calls this instance has seen: a global in the module's data and one on its heap. A fresh
/// instance per call starts both from the module's image, so every call sees itself as the
/// first.
static CALLS: AtomicU64 = AtomicU64::new(0);
static SEEN: Mutex<Vec<String>> = Mutex::new(Vec::new());

impl Inspector for Misbehave {
    fn inspect(cluster: Cluster) -> Result<Vec<Finding>, Error> {
        let config: Config = config::get()?;
        match config.mode.as_str() {
            // Behaves: one finding, so a test can show the host still works.
            "ok" => Ok(vec![Finding::pass(
                "misbehave-ok",
                format!("hello {}", cluster.id),
            )]),
            // Reports what earlier calls left in this instance's memory.
            "count" => {
                let calls = CALLS.fetch_add(1, Ordering::Relaxed) + 1;
                let mut seen = SEEN.lock().map_err(|_| Error::invalid("poisoned"))?;
                seen.push(cluster.id.clone());
                Ok(vec![Finding::pass(
                    "misbehave-count",
                    format!("call {calls}, clusters seen {}", seen.join(",")),
                )])
            }
            "loop" => {
                let mut i = 0u64;
                loop {
                    i = black_box(i.wrapping_add(1));
                }
            }
            "memory-bomb" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(black_box(vec![1u8; 1 << 20]));
                }
            }
            "panic" => panic!("misbehave: deliberate panic"),
            "big-output" => Ok((0..10_000)
                .map(|i| Finding::fail("big", Severity::Info, format!("{i:0>1000}")))
                .collect()),
            "log-flood" => {
                for i in 0..10_000 {
                    log::info(format!("line {i} {}", "x".repeat(100)));
                }
                Ok(vec![Finding::pass("log-flood", "logged 10000 lines")])
            }
            // The same volume as `log-flood`, on stdout and on stderr.
            "stdout-flood" => {
                for i in 0..10_000 {
                    println!("line {i} {}", "x".repeat(100));
                }
                Ok(vec![Finding::pass("stdout-flood", "printed 10000 lines")])
            }
            "stderr-flood" => {
                for i in 0..10_000 {
                    eprintln!("line {i} {}", "x".repeat(100));
                }
                Ok(vec![Finding::pass("stderr-flood", "printed 10000 lines")])
            }
            // Needs the `kube` capability; the test manifest leaves it out.
            "kube" => {
                let pods: Vec<Pod> = kube::list_all()?;
                Ok(vec![Finding::pass("kube", format!("{} pods", pods.len()))])
            }
            // Calls a URL whose host the manifest does not allow.
            "http" => {
                let url = config
                    .url
                    .unwrap_or_else(|| "http://example.invalid/".to_owned());
                let response = Request::get(url).send()?;
                Ok(vec![Finding::pass(
                    "http",
                    format!("HTTP {}", response.status),
                )])
            }
            other => Err(Error::invalid(format!("unknown mode {other:?}"))),
        }
    }
}

portico_plugin_sdk::export_inspector!(Misbehave);
