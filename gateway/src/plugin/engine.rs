//! The wasmtime engine: configuration, the epoch ticker, compilation (once per digest, by a
//! throwaway engine, cached on disk by wasmtime's own cache) and pre-instantiation. The
//! host-wide settings are in `engine/settings.rs`, the call path in `engine/call.rs`.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::{OnceCell, Semaphore};
use wasmtime::component::{Component, Linker, types::ComponentItem};
use wasmtime::{
    Cache, CacheConfig, Config, Enabled, Engine, InstanceAllocationStrategy,
    PoolingAllocationConfig,
};

use super::bindings::{self, config_checker, inspector, lifecycle_hook, repo_sync};
use super::host::HostState;
use super::http::{AddressPolicy, HttpClients};
use super::manifest::World;
use super::{Error, Result};

mod call;
mod settings;

pub use settings::HostSettings;

/// Runs plugin components. Cheap to clone.
#[derive(Clone)]
pub struct PluginHost {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for PluginHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginHost")
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

struct Inner {
    engine: Engine,
    linker: Linker<HostState>,
    settings: HostSettings,
    /// The compile cache as the compiling engine sees it (its hits and misses are the ones
    /// reported).
    cache: Option<Cache>,
    /// With a compile cache: the configuration of the throwaway engine that compiles into it
    /// (see [`PluginHost::compile`]).
    compiler: Option<Config>,
    /// Pre-instantiated components by `digest:world`.
    prepared: Mutex<HashMap<String, Arc<OnceCell<Arc<Prepared>>>>>,
    /// How long this replica took to compile (or load from the disk cache) each component, in
    /// milliseconds, by digest: the plugins API shows it.
    compile_ms: Mutex<HashMap<String, u64>>,
    /// One background compile at a time: a large component takes over half a GiB to compile.
    background: Arc<Semaphore>,
    permits: Arc<Semaphore>,
    http: reqwest::Client,
    http_policy: AddressPolicy,
    _ticker: EpochTicker,
}

/// A compiled, linked component, ready to instantiate in a fresh store.
pub(super) struct Prepared {
    /// Its world's exports.
    pub(super) world: WorldPre,
    /// The optional `config-check` export, when the component has it.
    pub(super) config_check: Option<config_checker::ConfigCheckerPre<HostState>>,
}

/// A component's world's exports.
pub(super) enum WorldPre {
    Inspector(inspector::InspectorPre<HostState>),
    RepoSync(repo_sync::RepoSyncPre<HostState>),
    LifecycleHook(lifecycle_hook::LifecycleHookPre<HostState>),
}

/// The name of the optional `config-check` export in a component.
const CONFIG_CHECK_EXPORT: &str = "portico:plugin/config-check@0.1.0";

impl PluginHost {
    /// Builds the engine, the linker with every import, and starts the epoch ticker.
    pub fn new(settings: HostSettings) -> Result<Self> {
        let host_err = |what: &str, e: wasmtime::Error| Error::Host(format!("{what}: {e:#}"));
        let mut config = engine_config(&settings);
        let n = settings.max_concurrent_calls.max(1);
        let (cache, compiler) = match &settings.cache_dir {
            Some(dir) => {
                crate::files::own_dir(dir).map_err(|e| {
                    Error::Host(format!("compile cache folder {}: {e}", dir.display()))
                })?;
                let cache = |dir| {
                    let mut cache_config = CacheConfig::new();
                    cache_config.with_directory(dir);
                    Cache::new(cache_config).map_err(|e| host_err("compile cache", e))
                };
                config.cache(Some(cache(dir)?));
                // The same configuration (the cache key covers the compiler's settings, the
                // tunables and the features), compiling on the calling thread only.
                let compiling = cache(dir)?;
                let mut compiler = engine_config(&settings);
                compiler
                    .parallel_compilation(false)
                    .cache(Some(compiling.clone()));
                (Some(compiling), Some(compiler))
            }
            None => (None, None),
        };
        let engine = Engine::new(&config).map_err(|e| host_err("wasmtime engine", e))?;

        let mut linker = Linker::<HostState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|e| host_err("WASI", e))?;
        type Data = wasmtime::component::HasSelf<HostState>;
        bindings::types::add_to_linker::<HostState, Data>(&mut linker, |s| s)
            .map_err(|e| host_err("types", e))?;
        bindings::kube::add_to_linker::<HostState, Data>(&mut linker, |s| s)
            .map_err(|e| host_err("kube", e))?;
        bindings::log::add_to_linker::<HostState, Data>(&mut linker, |s| s)
            .map_err(|e| host_err("log", e))?;
        bindings::config::add_to_linker::<HostState, Data>(&mut linker, |s| s)
            .map_err(|e| host_err("config", e))?;
        bindings::http::add_to_linker::<HostState, Data>(&mut linker, |s| s)
            .map_err(|e| host_err("http", e))?;

        let http_policy = AddressPolicy::new(settings.http_allow_local);
        let http =
            super::http::client(&[], &http_policy).map_err(|e| Error::Host(e.to_string()))?;
        let ticker = EpochTicker::start(engine.clone(), settings.epoch_tick)?;
        Ok(Self {
            inner: Arc::new(Inner {
                engine,
                linker,
                cache,
                compiler,
                prepared: Mutex::new(HashMap::new()),
                compile_ms: Mutex::new(HashMap::new()),
                background: Arc::new(Semaphore::new(1)),
                permits: Arc::new(Semaphore::new(n as usize)),
                http,
                http_policy,
                settings,
                _ticker: ticker,
            }),
        })
    }

    /// The settings the host was built with.
    pub fn settings(&self) -> &HostSettings {
        &self.inner.settings
    }

    /// The clients outbound plugin HTTP goes through (redirects are followed by hand), with
    /// no call-specific trust yet.
    pub(super) fn http_clients(&self) -> HttpClients {
        HttpClients {
            shared: self.inner.http.clone(),
            scoped: None,
            policy: self.inner.http_policy.clone(),
        }
    }

    /// Compilations served from the disk cache since start (0 without a cache).
    pub fn cache_hits(&self) -> usize {
        self.inner.cache.as_ref().map_or(0, Cache::cache_hits)
    }

    /// Compilations that missed the disk cache since start.
    pub fn cache_misses(&self) -> usize {
        self.inner.cache.as_ref().map_or(0, Cache::cache_misses)
    }

    /// Compiles (or finds) the component with `digest` and checks it implements `world`.
    pub(super) async fn prepare(
        &self,
        digest: &str,
        world: World,
        wasm: impl Future<Output = Result<bytes::Bytes>>,
    ) -> Result<Arc<Prepared>> {
        let key = format!("{digest}:{world}");
        // One cell per component and world: concurrent first calls compile once.
        let cell = self.inner.prepared.lock().entry(key).or_default().clone();
        let prepared = cell
            .get_or_try_init(|| async {
                let wasm = wasm.await?;
                let host = self.clone();
                let started = std::time::Instant::now();
                let prepared = tokio::task::spawn_blocking(move || host.compile(&wasm, world))
                    .await
                    .map_err(|e| Error::Host(format!("compile task: {e}")))??;
                let elapsed = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                self.inner
                    .compile_ms
                    .lock()
                    .insert(digest.to_owned(), elapsed);
                Ok::<_, Error>(Arc::new(prepared))
            })
            .await?;
        Ok(prepared.clone())
    }

    /// How long this replica took to compile the component with `digest` (from the disk
    /// cache: the time to load it), in milliseconds; `None` until it has been compiled here.
    pub fn compiled_in_ms(&self, digest: &str) -> Option<u64> {
        self.inner.compile_ms.lock().get(digest).copied()
    }

    /// Compiles in the background, one component at a time (see [`Inner::background`]).
    pub(super) async fn prepare_in_background(
        &self,
        digest: &str,
        world: World,
        wasm: impl Future<Output = Result<bytes::Bytes>>,
    ) -> Result<Arc<Prepared>> {
        let _permit = self
            .inner
            .background
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| Error::Host(format!("background compile: {e}")))?;
        self.prepare(digest, world, wasm).await
    }

    /// Drops pre-instantiated components no longer wanted (their digests are not in `keep`).
    pub(super) fn retain(&self, keep: &[String]) {
        self.inner
            .prepared
            .lock()
            .retain(|key, _| keep.iter().any(|d| key.starts_with(d.as_str())));
        self.inner
            .compile_ms
            .lock()
            .retain(|digest, _| keep.contains(digest));
    }

    fn compile(&self, wasm: &[u8], world: World) -> Result<Prepared> {
        if !wasm.starts_with(b"\0asm") {
            return Err(Error::NotAComponent(
                "the file has no WebAssembly header".to_owned(),
            ));
        }
        // Bytes 4..8 are the version and layer: `01 00 00 00` for a core module, layer 1 for a
        // component.
        if wasm.get(6..8) != Some(&[1, 0]) {
            return Err(Error::NotAComponent(
                "this is a core WebAssembly module; build for wasm32-wasip2 (or wrap it with \
                 `wasm-tools component new`)"
                    .to_owned(),
            ));
        }
        let engine = &self.inner.engine;
        let not_a_component = |e: wasmtime::Error| Error::NotAComponent(format!("{e:#}"));
        // With a cache, a throwaway engine compiles into it and the serving engine loads the
        // result. Cranelift keeps its compile contexts, sized for the largest function it has
        // seen, for as long as its engine lives, and the compiler's garbage stays with the
        // threads that made it: compiled in the serving engine on the runtime's threads, the
        // built-in plugins left 260-390 MiB resident for good (`bench/README.md`).
        if let Some(compiler) = &self.inner.compiler {
            let scratch =
                Engine::new(compiler).map_err(|e| Error::Host(format!("compile engine: {e:#}")))?;
            Component::new(&scratch, wasm).map_err(not_a_component)?;
        }
        let component = Component::new(engine, wasm).map_err(not_a_component)?;

        // Name what is missing before the typed check, whose message is terser.
        let exports: Vec<String> = component
            .component_type()
            .exports(engine)
            .filter(|(_, item)| matches!(item.ty, ComponentItem::ComponentFunc(_)))
            .map(|(name, _)| name.to_owned())
            .collect();
        let missing: Vec<&str> = world
            .exports()
            .iter()
            .copied()
            .filter(|e| !exports.iter().any(|x| x == e))
            .collect();
        if !missing.is_empty() {
            return Err(Error::WrongWorld {
                world,
                detail: format!(
                    "it lacks {} (it exports: {})",
                    missing
                        .iter()
                        .map(|m| format!("`{m}`"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    if exports.is_empty() {
                        "nothing".to_owned()
                    } else {
                        exports.join(", ")
                    }
                ),
            });
        }
        let pre = self
            .inner
            .linker
            .instantiate_pre(&component)
            .map_err(|e| Error::UnsupportedImport(format!("{e:#}")))?;
        let wrong = |e: wasmtime::Error| Error::WrongWorld {
            world,
            detail: format!("{e:#}"),
        };
        // Optional: a component without it (every one built before it existed) has its
        // configurations stored unchecked. One with it must have the right types.
        let config_check = if component
            .component_type()
            .exports(engine)
            .any(|(name, item)| {
                name == CONFIG_CHECK_EXPORT
                    && matches!(item.ty, ComponentItem::ComponentInstance(_))
            }) {
            Some(
                config_checker::ConfigCheckerPre::new(pre.clone()).map_err(|e| {
                    Error::WrongWorld {
                        world,
                        detail: format!("its `{CONFIG_CHECK_EXPORT}` export: {e:#}"),
                    }
                })?,
            )
        } else {
            None
        };
        let world = match world {
            World::Inspector => {
                WorldPre::Inspector(inspector::InspectorPre::new(pre).map_err(wrong)?)
            }
            World::RepoSync => WorldPre::RepoSync(repo_sync::RepoSyncPre::new(pre).map_err(wrong)?),
            World::LifecycleHook => {
                WorldPre::LifecycleHook(lifecycle_hook::LifecycleHookPre::new(pre).map_err(wrong)?)
            }
        };
        Ok(Prepared {
            world,
            config_check,
        })
    }
}

/// The engine's configuration for `settings`: the component model, epoch interruption (the
/// deadline, cancellation and the yield that moves a long call off the runtime's threads), a
/// 1 MiB wasm stack on a 4 MiB fiber stack, and the pooling allocator sized for
/// `max_concurrent_calls` instances with memories capped at `max_memory_mib`.
///
/// Between calls a memory slot is reset to the module's image. Where the kernel has
/// `PAGEMAP_SCAN` (Linux 6.7+), only the pages the last call wrote are copied back, up to
/// 2 MiB per slot, and stay mapped: no `madvise` and no page faults on the next call.
/// Elsewhere the allocator's default applies (`madvise` of the slot), since resetting
/// 2 MiB with `memset` on every call costs more than it saves. Either way
/// every call starts from the pristine image; only the cost of the reset changes.
pub fn engine_config(settings: &HostSettings) -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    config.parallel_compilation(true);
    config.max_wasm_stack(1 << 20);
    // Calls run on a fiber (async): the guest's 1 MiB plus room for the host's imports.
    config.async_stack_size(4 << 20);
    let mut pool = pool_sizes(settings);
    if PoolingAllocationConfig::is_pagemap_scan_available() {
        pool.linear_memory_keep_resident(KEEP_RESIDENT)
            .table_keep_resident(KEEP_RESIDENT)
            .pagemap_scan(Enabled::Yes);
    }
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    config
}

/// The pooling allocator sized for `settings`: `max_concurrent_calls` component instances,
/// memories capped at `max_memory_mib`; the allocator's defaults for everything else.
pub fn pool_sizes(settings: &HostSettings) -> PoolingAllocationConfig {
    let n = settings.max_concurrent_calls.max(1);
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(n)
        .total_core_instances(n * 16)
        .total_memories(n * 4)
        .total_tables(n * 8)
        .total_stacks(n * 2)
        .max_memory_size((settings.max_memory_mib as usize) << 20);
    pool
}

/// Bytes of a linear memory (and of a table) a pool slot keeps resident between calls.
const KEEP_RESIDENT: usize = 2 << 20;

/// Advances the engine's epoch every tick until dropped.
struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    fn start(engine: Engine, tick: Duration) -> Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("plugin-epoch".to_owned())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(tick);
                    engine.increment_epoch();
                }
            })
            .map_err(|e| Error::Host(format!("epoch ticker thread: {e}")))?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

// The plugin module's unit tests check it directly.
#[cfg(test)]
pub(super) use call::panic_message;
