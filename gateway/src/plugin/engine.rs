//! The wasmtime engine: configuration, the epoch ticker, compilation (once per digest, cached
//! on disk by wasmtime's own cache), pre-instantiation and the call path.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::{OnceCell, Semaphore};
use tokio_util::sync::CancellationToken;
use wasmtime::component::{Component, Linker, types::ComponentItem};
use wasmtime::{
    Cache, CacheConfig, Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store,
    Trap, UpdateDeadline,
};
use wasmtime_wasi::WasiCtxBuilder;

use super::bindings::{self, inspector, lifecycle_hook, repo_sync, types};
use super::host::{CallContext, CallReport, HostState, LogBudget, StdioPipe, error_kind};
use super::http::{AddressPolicy, HttpClients};
use super::manifest::{LimitCeilings, World};
use super::{Error, Result, TrapReason};

/// Host-wide settings: the ceilings manifests are held to and the size of the instance pool.
#[derive(Debug, Clone)]
pub struct HostSettings {
    /// Calls running at once (the pooling allocator's instance count); more wait.
    pub max_concurrent_calls: u32,
    /// The most memory a manifest may ask for (and the pool's per-memory size).
    pub max_memory_mib: u64,
    /// The longest call timeout (and host-call timeout) a manifest may ask for.
    pub max_timeout: Duration,
    /// The largest `max-output-bytes` a manifest may ask for.
    pub max_output_bytes: usize,
    /// The largest `max-log-bytes` a manifest may ask for.
    pub max_log_bytes: usize,
    /// The largest `max-http-response-bytes` a manifest may ask for.
    pub max_http_response_bytes: usize,
    /// The largest `max-kube-response-bytes` a manifest may ask for.
    pub max_kube_response_bytes: usize,
    /// Let plugin HTTP reach loopback, link-local and unspecified addresses
    /// (`--plugin-http-allow-local`); refused by default.
    pub http_allow_local: bool,
    /// How often the engine's epoch advances (the granularity of deadlines).
    pub epoch_tick: Duration,
    /// Where compiled components are cached across restarts; `None`: no disk cache.
    pub cache_dir: Option<PathBuf>,
}

impl Default for HostSettings {
    fn default() -> Self {
        Self {
            max_concurrent_calls: 16,
            max_memory_mib: 512,
            max_timeout: Duration::from_secs(600),
            // Ceilings on what one call may move through the host (docs/plugins.md, "Limits"):
            // each is a few times the default and above what the built-in plugins need, and
            // none exceeds a quarter of the memory ceiling, so a call's host-side buffers stay
            // of the order of the guest's own memory.
            max_output_bytes: 64 << 20,
            max_log_bytes: 1 << 20,
            max_http_response_bytes: 64 << 20,
            max_kube_response_bytes: 128 << 20,
            http_allow_local: false,
            epoch_tick: Duration::from_millis(10),
            cache_dir: None,
        }
    }
}

impl HostSettings {
    /// The defaults, with the compile cache in the data folder (SQLite) or the system's
    /// temporary folder (PostgreSQL: no data folder).
    pub fn for_config(config: &crate::config::Config) -> Self {
        Self {
            http_allow_local: config.plugin_http_allow_local,
            ..Self::for_database(&config.database)
        }
    }

    /// The defaults, with the compile cache beside `database` as [`HostSettings::for_config`]
    /// puts it.
    pub fn for_database(database: &crate::config::DatabaseUrl) -> Self {
        let cache_dir = match database.data_dir() {
            Some(dir) => dir.join("plugin-cache"),
            None => std::env::temp_dir().join("portico-plugin-cache"),
        };
        // wasmtime's cache wants an absolute path; the default data folder is relative.
        let cache_dir = std::path::absolute(&cache_dir).unwrap_or(cache_dir);
        Self {
            cache_dir: Some(cache_dir),
            ..Self::default()
        }
    }

    pub(super) fn ceilings(&self) -> LimitCeilings {
        LimitCeilings {
            max_memory_mib: self.max_memory_mib,
            max_timeout: self.max_timeout,
            max_output_bytes: self.max_output_bytes,
            max_log_bytes: self.max_log_bytes,
            max_http_response_bytes: self.max_http_response_bytes,
            max_kube_response_bytes: self.max_kube_response_bytes,
        }
    }
}

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
    cache: Option<Cache>,
    /// Pre-instantiated components by `digest:world`.
    prepared: Mutex<HashMap<String, Arc<OnceCell<Arc<Prepared>>>>>,
    permits: Arc<Semaphore>,
    http: reqwest::Client,
    http_policy: AddressPolicy,
    _ticker: EpochTicker,
}

/// A compiled, linked component, ready to instantiate in a fresh store.
pub(super) enum Prepared {
    Inspector(inspector::InspectorPre<HostState>),
    RepoSync(repo_sync::RepoSyncPre<HostState>),
    LifecycleHook(lifecycle_hook::LifecycleHookPre<HostState>),
}

/// Why the epoch callback stopped a guest.
#[derive(Debug, thiserror::Error)]
enum Interrupt {
    #[error("deadline exceeded")]
    Deadline,
    #[error("cancelled")]
    Cancelled,
}

impl PluginHost {
    /// Builds the engine, the linker with every import, and starts the epoch ticker.
    pub fn new(settings: HostSettings) -> Result<Self> {
        let host_err = |what: &str, e: wasmtime::Error| Error::Host(format!("{what}: {e:#}"));
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        config.parallel_compilation(true);
        config.max_wasm_stack(1 << 20);
        let n = settings.max_concurrent_calls.max(1);
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(n)
            .total_core_instances(n * 16)
            .total_memories(n * 4)
            .total_tables(n * 8)
            .max_memory_size((settings.max_memory_mib as usize) << 20);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let cache = match &settings.cache_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| {
                    Error::Host(format!("compile cache folder {}: {e}", dir.display()))
                })?;
                let mut cache_config = CacheConfig::new();
                cache_config.with_directory(dir);
                let cache = Cache::new(cache_config).map_err(|e| host_err("compile cache", e))?;
                config.cache(Some(cache.clone()));
                Some(cache)
            }
            None => None,
        };
        let engine = Engine::new(&config).map_err(|e| host_err("wasmtime engine", e))?;

        let mut linker = Linker::<HostState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(|e| host_err("WASI", e))?;
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
        let http = super::http::client(&[], &http_policy).map_err(Error::Host)?;
        let ticker = EpochTicker::start(engine.clone(), settings.epoch_tick)?;
        Ok(Self {
            inner: Arc::new(Inner {
                engine,
                linker,
                cache,
                prepared: Mutex::new(HashMap::new()),
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
                let prepared = tokio::task::spawn_blocking(move || host.compile(&wasm, world))
                    .await
                    .map_err(|e| Error::Host(format!("compile task: {e}")))??;
                Ok::<_, Error>(Arc::new(prepared))
            })
            .await?;
        Ok(prepared.clone())
    }

    /// Drops pre-instantiated components no longer wanted (their digests are not in `keep`).
    pub(super) fn retain(&self, keep: &[String]) {
        self.inner
            .prepared
            .lock()
            .retain(|key, _| keep.iter().any(|d| key.starts_with(d.as_str())));
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
        let component =
            Component::new(engine, wasm).map_err(|e| Error::NotAComponent(format!("{e:#}")))?;

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
        Ok(match world {
            World::Inspector => {
                Prepared::Inspector(inspector::InspectorPre::new(pre).map_err(wrong)?)
            }
            World::RepoSync => Prepared::RepoSync(repo_sync::RepoSyncPre::new(pre).map_err(wrong)?),
            World::LifecycleHook => {
                Prepared::LifecycleHook(lifecycle_hook::LifecycleHookPre::new(pre).map_err(wrong)?)
            }
        })
    }

    /// Runs `f` against a fresh instance on the blocking pool, under the call's limits.
    pub(super) async fn call<R, F>(
        &self,
        prepared: Arc<Prepared>,
        mut context: CallContext,
        cancel: CancellationToken,
        f: F,
    ) -> Result<CallReport<R>>
    where
        R: Send + 'static,
        F: FnOnce(
                &mut Store<HostState>,
                &Prepared,
            ) -> wasmtime::Result<std::result::Result<R, types::Error>>
            + Send
            + 'static,
    {
        // Held by the blocking task: an abandoned call keeps its pool slot until the guest
        // has stopped (at the next epoch tick).
        let permit = self
            .inner
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::Host("the plugin host is shutting down".to_owned()))?;
        let started = Instant::now();
        let limits = context.limits.clone();
        context.deadline = started + limits.timeout();
        let plugin = context.plugin.clone();
        let engine = self.inner.engine.clone();
        let guard = cancel.clone().drop_guard();
        let outcome = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            // Log lines, stdout and stderr share the call's `max-log-bytes`.
            let log_budget = LogBudget::new(limits.max_log_bytes);
            let stdio = StdioPipe::new(log_budget.clone());
            let wasi = WasiCtxBuilder::new()
                .stdout(stdio.clone())
                .stderr(stdio.clone())
                .build();
            let deadline = context.deadline;
            let mut store = Store::new(&engine, HostState::new(context, wasi, log_budget));
            store.limiter(|state| &mut state.limiter);
            store.set_epoch_deadline(1);
            store.epoch_deadline_callback(move |_| {
                if cancel.is_cancelled() {
                    Err(Interrupt::Cancelled.into())
                } else if Instant::now() >= deadline {
                    Err(Interrupt::Deadline.into())
                } else {
                    Ok(UpdateDeadline::Continue(1))
                }
            });
            let result = f(&mut store, &prepared);
            let state = store.into_data();
            (result, state, stdio.contents())
        })
        .await;
        guard.disarm();
        let (result, mut state, stdio) =
            outcome.map_err(|e| Error::Host(format!("plugin call task: {e}")))?;
        let stdio = String::from_utf8_lossy(&stdio).into_owned();
        if result.is_ok() && state.log_budget.exceeded() {
            // Every write past the budget traps; this only guards against one that did not.
            let reason = TrapReason::LogLimit(state.log_budget.limit());
            tracing::warn!(plugin, %reason, "plugin call failed");
            return Err(Error::Trap { plugin, reason });
        }
        let value = match result {
            Ok(Ok(value)) => value,
            Ok(Err(guest)) => {
                return Err(Error::Guest {
                    plugin,
                    kind: error_kind(guest.kind).to_owned(),
                    message: guest.message,
                });
            }
            Err(trap) => {
                let reason = trap_reason(&trap, &state, &stdio, &limits);
                tracing::warn!(plugin, %reason, "plugin call trapped");
                return Err(Error::Trap { plugin, reason });
            }
        };
        for line in stdio.lines().filter(|l| !l.trim().is_empty()) {
            state.push_log("stdio", line);
        }
        Ok(CallReport {
            value,
            logs: std::mem::take(&mut state.logs),
            elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        })
    }
}

/// Explains a trap: our own interrupts first, then the memory cap, then the log cap, then a
/// panic message.
fn trap_reason(
    trap: &wasmtime::Error,
    state: &HostState,
    stdio: &str,
    limits: &super::Limits,
) -> TrapReason {
    for cause in trap.chain() {
        match cause.downcast_ref::<Interrupt>() {
            Some(Interrupt::Deadline) => return TrapReason::Timeout(limits.timeout()),
            Some(Interrupt::Cancelled) => return TrapReason::Cancelled,
            None => {}
        }
    }
    if state.limiter.exceeded {
        return TrapReason::Memory(state.limiter.limit());
    }
    // A full log budget also stops the panic message or allocation failure that may have been
    // on its way to stderr: that write is what trapped.
    if state.log_budget.exceeded() {
        return TrapReason::LogLimit(state.log_budget.limit());
    }
    if stdio.contains("memory allocation of") {
        return TrapReason::Memory(state.limiter.limit());
    }
    if let Some(message) = panic_message(stdio) {
        return TrapReason::Panic(message);
    }
    let message = match trap.downcast_ref::<Trap>() {
        Some(trap) => trap.to_string(),
        None => format!("{trap:#}"),
    };
    let tail: String = stdio.lines().rev().take(5).collect::<Vec<_>>().join(" | ");
    if tail.is_empty() {
        TrapReason::Other(message)
    } else {
        TrapReason::Other(format!("{message} (output: {tail})"))
    }
}

/// The message of a Rust panic as std prints it to stderr:
/// `thread '…' panicked at src/lib.rs:1:2:\nmessage\nnote: …`.
pub(super) fn panic_message(stdio: &str) -> Option<String> {
    let start = stdio.find("panicked at ")?;
    let rest = &stdio[start + "panicked at ".len()..];
    let (location, rest) = rest.split_once('\n').unwrap_or((rest, ""));
    let message: Vec<&str> = rest
        .lines()
        .take_while(|l| !l.starts_with("note: "))
        .collect();
    let mut message = message.join("\n").trim().to_owned();
    if message.len() > 1024 {
        let mut end = 1024;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
    }
    Some(format!(
        "{message} (at {})",
        location.trim_end_matches(':').trim()
    ))
}

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
