//! The floor under a plugin call: wasmtime's own pooled instantiate + call of the same
//! component (`connect-logger`'s `on-disconnect`), without the gateway's plugin host: the
//! same engine configuration (`portico::plugin::engine_config`, pooling allocator included),
//! an `InstancePre` made once, and per call only what any embedding needs: a fresh store with
//! a default WASI context, instantiation and the call, on the calling thread. The imports do
//! the least the call needs: `log` keeps the line, `config` returns `{}`, `kube` and `http`
//! answer `unavailable`. No registry, no limits, no log budget, no thread hop.
//!
//! Variants, each timed the same way, show what single choices cost:
//! - `sync`: the floor itself (synchronous instantiate and call);
//! - `async`: the same on a fiber (`instantiate_async`, `call_async`), as the host calls;
//! - `syncPoolDefaults`: `sync` with the pooling allocator's default reset of a memory slot
//!   (`madvise` of every page the call touched, then page faults on the next call), as the
//!   host was configured before.

use std::path::Path;
use std::time::{Duration, Instant};

use portico::plugin::{HostSettings, engine_config, pool_sizes};
use serde_json::{Value, json};
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::stats::summary;

mod sync_bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "lifecycle-hook",
    });
}

mod async_bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "lifecycle-hook",
        with: {
            "portico:plugin/types": super::sync_bindings::portico::plugin::types,
            "portico:plugin/kube": super::sync_bindings::portico::plugin::kube,
            "portico:plugin/log": super::sync_bindings::portico::plugin::log,
            "portico:plugin/config": super::sync_bindings::portico::plugin::config,
            "portico:plugin/http": super::sync_bindings::portico::plugin::http,
        },
        exports: { default: async },
    });
}

use sync_bindings::portico::plugin::{config, http, kube, log, types};

/// The store's data: WASI, and the one log line.
struct Floor {
    wasi: WasiCtx,
    table: ResourceTable,
    logs: Vec<String>,
}

impl Floor {
    fn new() -> Self {
        Self {
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
            logs: Vec::new(),
        }
    }
}

impl WasiView for Floor {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

fn unavailable() -> types::Error {
    types::Error {
        kind: types::ErrorKind::Unavailable,
        message: "not in the floor benchmark".to_owned(),
    }
}

impl types::Host for Floor {}

impl log::Host for Floor {
    fn log(&mut self, _level: log::Level, message: String) -> Result<(), types::Error> {
        self.logs.push(message);
        Ok(())
    }
}

impl config::Host for Floor {
    fn get(&mut self) -> Result<String, types::Error> {
        Ok("{}".to_owned())
    }
}

impl kube::Host for Floor {
    fn get(
        &mut self,
        _api_version: String,
        _kind: String,
        _namespace: Option<String>,
        _name: String,
    ) -> Result<Option<String>, types::Error> {
        Err(unavailable())
    }

    fn list(
        &mut self,
        _api_version: String,
        _kind: String,
        _options: kube::ListOptions,
    ) -> Result<Vec<String>, types::Error> {
        Err(unavailable())
    }

    fn pod_logs(
        &mut self,
        _namespace: String,
        _name: String,
        _container: Option<String>,
        _tail_lines: Option<u32>,
    ) -> Result<String, types::Error> {
        Err(unavailable())
    }
}

impl http::Host for Floor {
    fn send(&mut self, _request: http::Request) -> Result<http::Response, types::Error> {
        Err(unavailable())
    }
}

fn linker(engine: &Engine, sync: bool) -> wasmtime::Result<Linker<Floor>> {
    let mut linker = Linker::<Floor>::new(engine);
    if sync {
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    } else {
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    }
    sync_bindings::LifecycleHook::add_to_linker::<Floor, HasSelf<Floor>>(&mut linker, |s| s)?;
    Ok(linker)
}

fn store(engine: &Engine) -> Store<Floor> {
    let mut store = Store::new(engine, Floor::new());
    // The engine interrupts on epochs (as the host's); nothing advances this one.
    store.set_epoch_deadline(1);
    store
}

fn cluster() -> types::Cluster {
    types::Cluster {
        id: "bench".to_owned(),
        name: "bench (not connected)".to_owned(),
        labels: Vec::new(),
    }
}

/// Times `calls` synchronous instantiate + call on `engine`, after one warm-up call.
fn time_sync(engine: &Engine, component: &Component, calls: usize) -> wasmtime::Result<Value> {
    let pre =
        sync_bindings::LifecycleHookPre::new(linker(engine, true)?.instantiate_pre(component)?)?;
    let target = cluster();
    let call = || -> wasmtime::Result<Duration> {
        let started = Instant::now();
        let mut store = store(engine);
        let instance = pre.instantiate(&mut store)?;
        instance
            .call_on_disconnect(&mut store, &target)?
            .map_err(|e| wasmtime::format_err!("on-disconnect: {}", e.message))?;
        let logs = store.into_data().logs;
        let elapsed = started.elapsed();
        wasmtime::ensure!(logs.len() == 1, "expected one log line, got {logs:?}");
        Ok(elapsed)
    };
    call()?;
    let samples = (0..calls)
        .map(|_| call())
        .collect::<wasmtime::Result<Vec<_>>>()?;
    Ok(summary(&samples))
}

/// Times `calls` async instantiate + call on `engine` (polled on this thread).
async fn time_async(
    engine: &Engine,
    component: &Component,
    calls: usize,
) -> wasmtime::Result<Value> {
    let pre =
        async_bindings::LifecycleHookPre::new(linker(engine, false)?.instantiate_pre(component)?)?;
    let target = cluster();
    let mut samples = Vec::with_capacity(calls + 1);
    for _ in 0..=calls {
        let started = Instant::now();
        let mut store = store(engine);
        let instance = pre.instantiate_async(&mut store).await?;
        instance
            .call_on_disconnect(&mut store, &target)
            .await?
            .map_err(|e| wasmtime::format_err!("on-disconnect: {}", e.message))?;
        let logs = store.into_data().logs;
        samples.push(started.elapsed());
        wasmtime::ensure!(logs.len() == 1, "expected one log line, got {logs:?}");
    }
    samples.remove(0); // the warm-up call
    Ok(summary(&samples))
}

/// The floor and its variants for `connect-logger.wasm` in `plugin_dir`.
pub async fn run(plugin_dir: &Path, calls: usize) -> anyhow::Result<Value> {
    measure(plugin_dir, calls)
        .await
        .map_err(|e| anyhow::anyhow!("the floor benchmark: {e:#}"))
}

async fn measure(plugin_dir: &Path, calls: usize) -> wasmtime::Result<Value> {
    let path = plugin_dir.join("connect-logger.wasm");
    let settings = HostSettings::default();
    let engine = Engine::new(&engine_config(&settings))?;
    let component = Component::from_file(&engine, &path)?;
    let floor = time_sync(&engine, &component, calls)?;
    let on_fiber = time_async(&engine, &component, calls).await?;

    // The host's pool as it was: the same sizes, the allocator's default slot reset.
    let pool = pool_sizes(&settings);
    let mut config = engine_config(&settings);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    let defaults = Engine::new(&config)?;
    let component_defaults = Component::from_file(&defaults, &path)?;
    let pool_defaults = time_sync(&defaults, &component_defaults, calls)?;

    let mut result = floor.clone();
    let object = result.as_object_mut().expect("summary is an object");
    object.insert(
        "engine".to_owned(),
        json!("portico::plugin::engine_config (the host's)"),
    );
    object.insert(
        "pagemapScan".to_owned(),
        json!(PoolingAllocationConfig::is_pagemap_scan_available()),
    );
    object.insert(
        "variants".to_owned(),
        json!({
            "sync": floor,
            "async": on_fiber,
            "syncPoolDefaults": pool_defaults,
        }),
    );
    Ok(result)
}
