//! Plugin calls through the gateway's real plugin host ([`Plugins`]), in one process: a
//! SQLite database and wasmtime's compile cache in a scratch folder, the plugin directory the
//! e2e harness builds (`portico_e2e::plugins::plugin_dir()`, release-built components).
//!
//! 1. **Trivial call**: `connect-logger`'s `on-disconnect` (no configuration: it logs one
//!    line), `--trivial-calls` times in a row after a warm-up call. Each sample is the whole
//!    `Plugins::lifecycle` await: registry lookup, fresh store, instantiation, the call and the
//!    host's bookkeeping. Calls in a row find the plugin's row in the registry's cache (read
//!    at most every 2 s); what a cache miss adds (the database read and the manifest parse)
//!    and a hop to the blocking pool (which short calls no longer take) are timed on their own
//!    as well. The floor beside it (`plugins/floor.rs`): wasmtime's own pooled instantiate +
//!    call of the same component with the same engine configuration and no host, timed the
//!    same way right after.
//! 2. **Inspection** (only with `--sim-url`): `builtin-checks` over a simulator (the driver
//!    starts `kube-sim --pods 10000 --nodes 50`), read through `RestKubeApi` (reqwest) wrapped
//!    in a meter. Host time is the wall time spent inside `KubeApi::get` (round trip and body);
//!    plugin time is the rest of the call, so it includes the host's own conversion of each
//!    list body into per-item JSON. For comparison, the way the host converted lists before
//!    (parse, clone, print each item) is timed separately on the largest list.
//! 3. **Helm index**: `helm-index` syncing a generated `index.yaml` of about `--index-mb` MB
//!    served on 127.0.0.1 (axum) (with an ETag, answering 304 to a
//!    matching `If-None-Match`), then a conditional sync with that ETag. If the full size
//!    fails, the error is kept; a copy of `helm-index` with only `memory-mib` raised is
//!    installed (as an upload, in the scratch database) to find the memory the full size needs
//!    and its sync time; and the size is halved until the real plugin's sync works, then
//!    bisected, to find the largest size that works under the shipped limits.
//!
//! Output (times in the unit their key names; `summary` is [`crate::stats::summary`]:
//! `{"p50", "p99", "mean", "n"}` in µs):
//!
//! ```text
//! {
//!   "trivialCall": { summary of the timed calls (µs),
//!     "plugin": "connect-logger", "hook": "on-disconnect",
//!     "firstCallUs",                      // the warm-up call, compile included
//!     "compileCacheMisses", "compileCacheHits",
//!     "floor": { summary (µs), "engine", "pagemapScan",   // see plugins/floor.rs
//!       "variants": {"sync", "async", "syncPoolDefaults"} },  // summaries
//!     "p50VsFloor",                       // p50 of the call / p50 of the floor
//!     "portico": {                        // Portico's own work around wasmtime, timed alone
//!       "dbPluginRead": summary,          //   Db::plugin(name): the row a cache miss reads
//!       "registryGet": summary,           //   Plugins::get: that read + manifest TOML parse,
//!                                         //   about what a row-cache miss adds to a call
//!       "spawnBlocking": summary,         //   an empty spawn_blocking round trip
//!       "manifestParseEstimateUs"         //   median of paired (registryGet − dbPluginRead)
//!     } },
//!   "inspection": {                       // absent without --sim-url
//!     "plugin": "builtin-checks", "kubeApi": "RestKubeApi (reqwest)", "simUrl", "runs",
//!     "limits": the manifest's limits,
//!     "firstCallMs",                      // the warm-up inspection, compile included
//!     "totalMs", "hostMs", "pluginMs",    // medians over the runs (pluginMs = total − host)
//!     "runsDetail": [{"totalMs", "hostMs", "pluginMs", "gets", "bytes"}],
//!     "kubeGets", "kubeBytes",            // of the last run
//!     "findings", "failedFindings", "failedByCheck": {check: count},
//!     "outputBytes",                      // findings as the host counts them (max-output-bytes)
//!     "gets": [{"path", "status", "bytes", "ms"}],          // the last run's GETs
//!     "largestList": {"path", "bytes", "items",
//!       "hostReencodeMs",                 // what turning the largest list into items costs
//!       "hostReencodeParseMs",            // the way the host did it before it kept items as
//!       "hostReencodeCloneMs",            // raw JSON (parse into a Value, clone, print each
//!       "hostReencodeSerialiseMs"}        // item), for comparison; not part of pluginMs now
//!   }
//!   // or, when a call fails: {"plugin", "kubeApi", "limits", "error", "gets", ...}
//!   "helmIndex": {
//!     "plugin": "helm-index", "limits": the manifest's limits,
//!     "firstCallMs",                      // warm-up sync of a tiny index, compile included
//!     "indexBytes", "indexMb", "charts", "chartVersionsInIndex",
//!     // when the full syncs work:
//!     "syncs", "syncMs", "syncMsRuns": [...],  // full syncs (200, parsed), median
//!     "chartVersions", "outputBytes",     // returned; outputBytes as the host counts it
//!     // always: the conditional sync (the ETag of a full sync that worked, else the
//!     // server's), `syncs` times with the real plugin
//!     "etag", "conditionalSyncMs", "conditionalStatus", "conditional304s",
//!     // when the full size failed:
//!     "error", "errorAfterMs",
//!     "raisedMemory": { "plugin": "helm-index-raised-memory", "hostCeilingMib",
//!       "memoryMibNeeded",                // the first of 256/384/512 that worked, or null
//!       "attempts": [{"memoryMib", "ok", "error"?, "errorAfterMs"?, "syncs", "syncMs",
//!                     "syncMsRuns", "chartVersions", "outputBytes"}] },
//!     "limitSearch": {                    // the real plugin, index sizes halved then bisected
//!       "attempts": [{"indexMb", "indexBytes", "chartVersionsInIndex", "ok", "ms",
//!                     "chartVersions"?, "outputBytes"?, "error"?}],
//!       "largestWorkingMb", "smallestFailingMb" }
//!   }
//! }
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use bytes::Bytes;
use portico::config::DatabaseUrl;
use portico::plugin::{
    ClusterInfo, DisconnectedKubeApi, Finding, HostSettings, KubeApi, KubeFuture, Plugins,
    RepositoryInfo, RestKubeApi, SyncOutcome,
};
use portico::testing::Db;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::stats::{percentile_us, summary};

mod floor;

const HOOK: &str = "connect-logger";
const INSPECTOR: &str = "builtin-checks";
const HELM: &str = "helm-index";
const KUBE_API: &str = "RestKubeApi (reqwest)";
/// Versions per chart in the generated index (large public repositories have hundreds).
const VERSIONS_PER_CHART: usize = 100;
/// Bisection steps after halving found a size that works.
const BISECT_STEPS: usize = 3;
/// Below this, the limit search gives up.
const SMALLEST_INDEX_MB: f64 = 0.05;
/// `memory-mib` values tried for a copy of `helm-index` when its own limit is too small for
/// the full index (up to the host's ceiling).
const RAISED_MEMORY_MIB: &[u64] = &[256, 384, 512];
/// The name of that copy.
const RAISED: &str = "helm-index-raised-memory";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Trivial lifecycle calls to time after the warm-up.
    #[arg(long, default_value_t = 2000)]
    trivial_calls: usize,
    /// The simulator's base URL (plain HTTP); without it the inspection is skipped.
    #[arg(long)]
    sim_url: Option<String>,
    /// The simulator's bearer token.
    #[arg(long)]
    sim_token: Option<String>,
    /// Timed inspections (after a warm-up one).
    #[arg(long, default_value_t = 5)]
    inspections: usize,
    /// Size of the generated Helm `index.yaml`, in MB (10^6 bytes).
    #[arg(long, default_value_t = 20.0)]
    index_mb: f64,
    /// Timed Helm index syncs (after a warm-up one on a tiny index).
    #[arg(long, default_value_t = 3)]
    syncs: usize,
}

pub async fn run(args: Args) -> anyhow::Result<Value> {
    let scratch = Scratch::new()?;
    let database = DatabaseUrl::Sqlite(scratch.path().join("plugins.db"));
    let db = Db::connect(&database)
        .await
        .context("opening the scratch SQLite database")?;
    // The compile cache goes beside the database, as in the gateway: here, the scratch folder.
    // The Helm repository is served on 127.0.0.1, which plugin HTTP may reach only when allowed.
    let settings = HostSettings {
        http_allow_local: true,
        ..HostSettings::for_database(&database)
    };
    let shutdown = CancellationToken::new();
    let dir = portico_e2e::plugins::plugin_dir();
    let plugins = Plugins::start(settings, db.clone(), &dir, shutdown.clone())
        .await
        .with_context(|| format!("loading the plugin directory {}", dir.display()))?;
    for name in [HOOK, INSPECTOR, HELM] {
        plugins
            .get(name)
            .await
            .with_context(|| format!("plugin `{name}` in {}", dir.display()))?;
    }

    let mut output = serde_json::Map::new();
    output.insert(
        "trivialCall".to_owned(),
        trivial_call(&plugins, &db, args.trivial_calls).await?,
    );
    if let Some(url) = &args.sim_url {
        output.insert(
            "inspection".to_owned(),
            inspection(&plugins, url, args.sim_token.as_deref(), args.inspections).await?,
        );
    }
    output.insert(
        "helmIndex".to_owned(),
        helm_index(&plugins, args.index_mb, args.syncs).await?,
    );
    shutdown.cancel();
    db.close().await;
    Ok(Value::Object(output))
}

// ---------------------------------------------------------------------------------------------
// 1. Instantiate + trivial call

async fn trivial_call(plugins: &Plugins, db: &Db, calls: usize) -> anyhow::Result<Value> {
    let cluster = ClusterInfo {
        id: "bench".to_owned(),
        name: "bench (not connected)".to_owned(),
        labels: BTreeMap::new(),
    };
    let kube: Arc<dyn KubeApi> = Arc::new(DisconnectedKubeApi::new("bench"));

    let started = Instant::now();
    let first = plugins
        .lifecycle(HOOK, false, &cluster, kube.clone())
        .await
        .context("the first (compiling) trivial call")?;
    let first_call = started.elapsed();
    anyhow::ensure!(
        first.logs.len() == 1,
        "`{HOOK}` on-disconnect logged {:?}, expected one line",
        first.logs
    );

    let mut samples = Vec::with_capacity(calls);
    for _ in 0..calls {
        let started = Instant::now();
        plugins
            .lifecycle(HOOK, false, &cluster, kube.clone())
            .await
            .context("a trivial call")?;
        samples.push(started.elapsed());
    }

    // What `resolve` (on a row-cache miss) and `PluginHost::call` do around wasmtime, each on
    // its own.
    let rounds = calls.clamp(1, 2000);
    let mut db_reads = Vec::with_capacity(rounds);
    let mut registry_gets = Vec::with_capacity(rounds);
    // Paired: the same moment's database read and `Plugins::get`, so the difference (the
    // manifest parse and the record's conversion) is not lost in the read's own spread.
    let mut differences = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let started = Instant::now();
        db.plugin(HOOK).await.context("reading the plugin row")?;
        let read = started.elapsed();
        let started = Instant::now();
        plugins.get(HOOK).await.context("Plugins::get")?;
        let get = started.elapsed();
        db_reads.push(read);
        registry_gets.push(get);
        differences.push(micros(get) - micros(read));
    }
    differences.sort_by(f64::total_cmp);
    let manifest_parse = differences[differences.len() / 2];
    let mut hops = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let started = Instant::now();
        tokio::task::spawn_blocking(|| ()).await?;
        hops.push(started.elapsed());
    }
    let p50 = |samples: &[Duration]| percentile_us(samples, 50.0);
    let floor = floor::run(&portico_e2e::plugins::plugin_dir(), calls).await?;
    let vs_floor = p50(&samples) / floor["p50"].as_f64().unwrap_or(f64::NAN);

    let mut result = summary(&samples);
    let object = result.as_object_mut().expect("summary is an object");
    object.insert("plugin".to_owned(), json!(HOOK));
    object.insert("hook".to_owned(), json!("on-disconnect"));
    object.insert("firstCallUs".to_owned(), json!(micros(first_call)));
    object.insert("floor".to_owned(), floor);
    object.insert("p50VsFloor".to_owned(), json!(vs_floor));
    object.insert(
        "compileCacheMisses".to_owned(),
        json!(plugins.host().cache_misses()),
    );
    object.insert(
        "compileCacheHits".to_owned(),
        json!(plugins.host().cache_hits()),
    );
    object.insert(
        "portico".to_owned(),
        json!({
            "dbPluginRead": summary(&db_reads),
            "registryGet": summary(&registry_gets),
            "spawnBlocking": summary(&hops),
            "manifestParseEstimateUs": manifest_parse,
        }),
    );
    Ok(result)
}

// ---------------------------------------------------------------------------------------------
// 2. Inspection over the simulator

/// One `KubeApi::get` as the meter saw it.
#[derive(Debug, Clone)]
struct Get {
    path: String,
    status: Option<u16>,
    bytes: usize,
    elapsed: Duration,
}

/// The GETs of the current run, and the largest body seen (for the re-encoding estimate).
#[derive(Debug, Default)]
struct Meter {
    gets: Vec<Get>,
    largest: Option<(String, Bytes)>,
}

impl Meter {
    fn host_time(&self) -> Duration {
        self.gets.iter().map(|g| g.elapsed).sum()
    }

    fn bytes(&self) -> usize {
        self.gets.iter().map(|g| g.bytes).sum()
    }

    fn gets_json(&self) -> Value {
        self.gets
            .iter()
            .map(|g| {
                json!({
                    "path": g.path,
                    "status": g.status,
                    "bytes": g.bytes,
                    "ms": millis(g.elapsed),
                })
            })
            .collect()
    }
}

/// A [`KubeApi`] that times each GET around the real one.
#[derive(Debug, Clone)]
struct MeteredKubeApi {
    inner: RestKubeApi,
    meter: Arc<Mutex<Meter>>,
}

impl KubeApi for MeteredKubeApi {
    fn get(&self, path_and_query: String) -> KubeFuture {
        let started = Instant::now();
        let future = self.inner.get(path_and_query.clone());
        let meter = self.meter.clone();
        Box::pin(async move {
            let result = future.await;
            let elapsed = started.elapsed();
            let mut meter = meter.lock().expect("lock");
            let (status, body) = match &result {
                Ok((status, body)) => (Some(*status), Some(body.clone())),
                Err(_) => (None, None),
            };
            let bytes = body.as_ref().map_or(0, Bytes::len);
            if let Some(body) = body
                && meter
                    .largest
                    .as_ref()
                    .is_none_or(|(_, b)| b.len() < body.len())
            {
                meter.largest = Some((path_and_query.clone(), body));
            }
            meter.gets.push(Get {
                path: path_and_query,
                status,
                bytes,
                elapsed,
            });
            result
        })
    }
}

async fn inspection(
    plugins: &Plugins,
    sim_url: &str,
    token: Option<&str>,
    runs: usize,
) -> anyhow::Result<Value> {
    let limits = serde_json::to_value(plugins.get(INSPECTOR).await?.limits)?;
    let meter = Arc::new(Mutex::new(Meter::default()));
    let kube: Arc<dyn KubeApi> = Arc::new(MeteredKubeApi {
        inner: RestKubeApi::new(sim_url, None, token)?,
        meter: meter.clone(),
    });
    let cluster = ClusterInfo {
        id: "sim".to_owned(),
        name: "kube-sim".to_owned(),
        labels: BTreeMap::new(),
    };
    let failed = |error: String, meter: &Meter| {
        json!({
            "plugin": INSPECTOR,
            "kubeApi": KUBE_API,
            "simUrl": sim_url,
            "limits": limits,
            "error": error,
            "kubeGets": meter.gets.len(),
            "kubeBytes": meter.bytes(),
            "gets": meter.gets_json(),
        })
    };

    let started = Instant::now();
    if let Err(e) = plugins.inspect(INSPECTOR, &cluster, kube.clone()).await {
        return Ok(failed(e.to_string(), &meter.lock().expect("lock")));
    }
    let first_call = started.elapsed();

    let mut totals = Vec::new();
    let mut hosts = Vec::new();
    let mut plugin_times = Vec::new();
    let mut details = Vec::new();
    let mut last = None;
    for _ in 0..runs.max(1) {
        *meter.lock().expect("lock") = Meter::default();
        let started = Instant::now();
        let result = plugins.inspect(INSPECTOR, &cluster, kube.clone()).await;
        let total = started.elapsed();
        let meter = meter.lock().expect("lock");
        let report = match result {
            Ok(report) => report,
            Err(e) => return Ok(failed(e.to_string(), &meter)),
        };
        let host = meter.host_time();
        let plugin = total.saturating_sub(host);
        totals.push(total);
        hosts.push(host);
        plugin_times.push(plugin);
        details.push(json!({
            "totalMs": millis(total),
            "hostMs": millis(host),
            "pluginMs": millis(plugin),
            "gets": meter.gets.len(),
            "bytes": meter.bytes(),
        }));
        last = Some(report.value);
    }
    let findings = last.unwrap_or_default();
    let mut failed_by_check: BTreeMap<&str, usize> = BTreeMap::new();
    for f in findings.iter().filter(|f| !f.passed) {
        *failed_by_check.entry(f.check_id.as_str()).or_default() += 1;
    }
    let meter = meter.lock().expect("lock");
    let largest = match &meter.largest {
        Some((path, body)) => {
            let reencode = reencode_list(body)?;
            json!({
                "path": path,
                "bytes": body.len(),
                "items": reencode.items,
                "hostReencodeMs": millis(reencode.total),
                "hostReencodeParseMs": millis(reencode.parse),
                "hostReencodeCloneMs": millis(reencode.clone),
                "hostReencodeSerialiseMs": millis(reencode.serialise),
            })
        }
        None => Value::Null,
    };
    Ok(json!({
        "plugin": INSPECTOR,
        "kubeApi": KUBE_API,
        "simUrl": sim_url,
        "runs": totals.len(),
        "limits": limits,
        "firstCallMs": millis(first_call),
        "totalMs": median_ms(&totals),
        "hostMs": median_ms(&hosts),
        "pluginMs": median_ms(&plugin_times),
        "runsDetail": details,
        "kubeGets": meter.gets.len(),
        "kubeBytes": meter.bytes(),
        "findings": findings.len(),
        "outputBytes": findings_output_bytes(&findings),
        "failedFindings": findings.iter().filter(|f| !f.passed).count(),
        "failedByCheck": failed_by_check,
        "gets": meter.gets_json(),
        "largestList": largest,
    }))
}

/// Bytes of findings as the plugin host counts them against `max-output-bytes` (`extra` as
/// the guest sent it is approximated by its re-serialisation; absent `extra` counts 0).
fn findings_output_bytes(findings: &[Finding]) -> usize {
    findings
        .iter()
        .map(|f| {
            let extra = if f.extra.is_null() {
                0
            } else {
                f.extra.to_string().len()
            };
            let target = f.target.as_ref().map_or(0, |t| {
                t.kind.len() + t.namespace.as_ref().map_or(0, String::len) + t.name.len()
            });
            16 + f.check_id.len() + f.message.len() + extra + target
        })
        .sum()
}

/// The plugin host's own work on a list body, repeated here step by step as `list_items` in
/// `gateway/src/plugin/kube.rs` does it: parse the list, clone its items, give each item
/// `apiVersion` and `kind` and serialise it (the guest gets one JSON string per item).
#[derive(Debug)]
struct Reencode {
    items: usize,
    parse: Duration,
    clone: Duration,
    serialise: Duration,
    total: Duration,
}

fn reencode_list(body: &[u8]) -> anyhow::Result<Reencode> {
    let started = Instant::now();
    let list: Value = serde_json::from_slice(body).context("the largest list is not JSON")?;
    let parsed = Instant::now();
    let Some(Value::Array(items)) = list.get("items").cloned() else {
        anyhow::bail!("the largest list has no `items`");
    };
    let cloned = Instant::now();
    let count = items.len();
    let encoded: Vec<String> = items
        .into_iter()
        .map(|mut item| {
            if let Value::Object(map) = &mut item {
                map.entry("apiVersion").or_insert_with(|| json!("v1"));
                map.entry("kind").or_insert_with(|| json!("Pod"));
            }
            item.to_string()
        })
        .collect();
    let serialised = Instant::now();
    drop(list);
    let total = started.elapsed();
    drop(encoded);
    Ok(Reencode {
        items: count,
        parse: parsed - started,
        clone: cloned - parsed,
        serialise: serialised - cloned,
        total,
    })
}

// ---------------------------------------------------------------------------------------------
// 3. Helm index sync

/// The index the server serves.
#[derive(Debug)]
struct Served {
    body: Bytes,
    etag: String,
}

/// Serves `…/charts/index.yaml` with an `ETag`, answering `304 Not Modified` to a matching
/// `If-None-Match`, and counts those 304s.
#[derive(Debug, Clone)]
struct IndexServer {
    served: Arc<Mutex<Arc<Served>>>,
    not_modified: Arc<AtomicUsize>,
    url: String,
}

impl IndexServer {
    async fn start(shutdown: CancellationToken) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let server = Self {
            served: Arc::new(Mutex::new(Arc::new(Served {
                body: Bytes::new(),
                etag: "\"empty\"".to_owned(),
            }))),
            not_modified: Arc::default(),
            url: format!("http://{}/charts", listener.local_addr()?),
        };
        let app = axum::Router::new()
            .route("/charts/index.yaml", axum::routing::get(Self::answer))
            .with_state(server.clone());
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown.cancelled_owned())
                .await
        });
        Ok(server)
    }

    fn set(&self, body: String, generation: usize) {
        *self.served.lock().expect("lock") = Arc::new(Served {
            etag: format!("\"index-{generation}-{}\"", body.len()),
            body: Bytes::from(body),
        });
    }

    fn not_modified(&self) -> usize {
        self.not_modified.load(Ordering::Relaxed)
    }

    async fn answer(
        State(server): State<Self>,
        headers: HeaderMap,
    ) -> (StatusCode, [(header::HeaderName, String); 2], Bytes) {
        let served = server.served.lock().expect("lock").clone();
        let etag = served.etag.clone();
        if headers
            .get(header::IF_NONE_MATCH)
            .is_some_and(|value| value.as_bytes() == etag.as_bytes())
        {
            server.not_modified.fetch_add(1, Ordering::Relaxed);
            return (
                StatusCode::NOT_MODIFIED,
                [
                    (header::ETAG, etag),
                    (header::CONTENT_TYPE, "application/x-yaml".to_owned()),
                ],
                Bytes::new(),
            );
        }
        (
            StatusCode::OK,
            [
                (header::ETAG, etag),
                (header::CONTENT_TYPE, "application/x-yaml".to_owned()),
            ],
            served.body.clone(),
        )
    }
}

/// A Helm repository `index.yaml` of at least `target_bytes` (stopping at the first chart
/// version past it), as `helm repo index` writes it: charts by name, newest version first.
/// Returns the text, the number of charts and of chart versions.
fn generate_index(target_bytes: usize) -> (String, usize, usize) {
    const CATEGORIES: &[&str] = &[
        "Database",
        "Infrastructure",
        "Analytics",
        "DeveloperTools",
        "Monitoring",
        "Networking",
        "Security",
    ];
    let mut out = String::with_capacity(target_bytes + 4096);
    out.push_str("apiVersion: v1\nentries:\n");
    let mut charts = 0;
    let mut versions = 0;
    while out.len() < target_bytes {
        let chart = format!("app-{charts:04}");
        let category = CATEGORIES[charts % CATEGORIES.len()];
        out.push_str(&format!("  {chart}:\n"));
        for v in 0..VERSIONS_PER_CHART {
            if out.len() >= target_bytes {
                break;
            }
            // Newest first: v = 0 is the highest version.
            let n = VERSIONS_PER_CHART - v;
            let version = format!("{}.{}.{}", n / 25 + 1, (n / 5) % 5, n % 5);
            let app_version = format!("{}.{}.{}", n / 10 + 2, n % 10, (charts + n) % 7);
            let digest = hex_digest((charts * VERSIONS_PER_CHART + v) as u64);
            let day = 1 + (n % 28);
            let month = 1 + (n / 28) % 12;
            out.push_str(&format!(
                "  - annotations:\n      category: {category}\n      licenses: Apache-2.0\n\
                 \x20   apiVersion: v2\n\
                 \x20   appVersion: {app_version}\n\
                 \x20   created: \"2024-{month:02}-{day:02}T10:{min:02}:{sec:02}.{nanos:09}Z\"\n\
                 \x20   dependencies:\n\
                 \x20   - name: common\n\
                 \x20     repository: oci://registry.example.com/charts\n\
                 \x20     tags:\n\
                 \x20     - example-common\n\
                 \x20     version: 2.x.x\n\
                 \x20   description: {chart} packages the {category} application for Kubernetes, \
                 with sensible defaults for ingress, persistence, metrics and high availability.\n\
                 \x20   digest: {digest}\n\
                 \x20   home: https://example.com/charts/{chart}\n\
                 \x20   icon: https://example.com/charts/{chart}/icon.svg\n\
                 \x20   keywords:\n\
                 \x20   - {chart}\n\
                 \x20   - {keyword}\n\
                 \x20   - kubernetes\n\
                 \x20   maintainers:\n\
                 \x20   - name: Example Charts\n\
                 \x20     url: https://github.com/example/charts\n\
                 \x20   name: {chart}\n\
                 \x20   sources:\n\
                 \x20   - https://github.com/example/charts/tree/main/example/{chart}\n\
                 \x20   - https://github.com/example/{chart}\n\
                 \x20   urls:\n\
                 \x20   - https://charts.example.com/{chart}-{version}.tgz\n\
                 \x20   version: {version}\n",
                min = n % 60,
                sec = (n * 7) % 60,
                nanos = (n as u64 * 7_919_993) % 1_000_000_000,
                keyword = category.to_ascii_lowercase(),
            ));
            versions += 1;
        }
        charts += 1;
    }
    out.push_str("generated: \"2024-12-01T00:00:00.000000000Z\"\n");
    (out, charts, versions)
}

/// 64 hex digits derived from `seed` (splitmix64), standing in for a sha256.
fn hex_digest(seed: u64) -> String {
    let mut state = seed;
    (0..4)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            format!("{:016x}", z ^ (z >> 31))
        })
        .collect()
}

/// One sync, as the benchmark sees it.
#[derive(Debug)]
struct SyncRun {
    elapsed: Duration,
    outcome: Result<SyncOutcome, String>,
}

async fn sync(plugins: &Plugins, name: &str, url: &str, etag: Option<String>) -> SyncRun {
    let repository = RepositoryInfo {
        name: "bench".to_owned(),
        url: url.to_owned(),
        auth: None,
        etag,
        ca_pem: None,
    };
    let started = Instant::now();
    let result = plugins.sync_repository(name, &repository).await;
    SyncRun {
        elapsed: started.elapsed(),
        outcome: result.map(|report| report.value).map_err(|e| e.to_string()),
    }
}

/// Bytes of a sync's output as the plugin host counts them against `max-output-bytes`.
fn output_bytes(outcome: &SyncOutcome) -> usize {
    let SyncOutcome::Updated(index) = outcome else {
        return 0;
    };
    let opt = |s: &Option<String>| s.as_ref().map_or(0, String::len);
    opt(&index.etag)
        + index
            .charts
            .iter()
            .map(|c| {
                16 + c.name.len()
                    + c.version.len()
                    + opt(&c.app_version)
                    + opt(&c.description)
                    + opt(&c.digest)
                    + opt(&c.created)
                    + opt(&c.icon)
                    + c.urls
                        .iter()
                        .chain(&c.keywords)
                        .map(String::len)
                        .sum::<usize>()
            })
            .sum::<usize>()
}

fn chart_versions(outcome: &SyncOutcome) -> Option<usize> {
    match outcome {
        SyncOutcome::Updated(index) => Some(index.charts.len()),
        SyncOutcome::Unchanged => None,
    }
}

async fn helm_index(plugins: &Plugins, index_mb: f64, syncs: usize) -> anyhow::Result<Value> {
    let limits = serde_json::to_value(plugins.get(HELM).await?.limits)?;
    let shutdown = CancellationToken::new();
    let _stop = shutdown.clone().drop_guard();
    let server = IndexServer::start(shutdown).await?;
    let mut generation = 0;

    // Warm-up on a tiny index: the compile is not part of any timed sync.
    let (tiny, _, _) = generate_index(4 << 10);
    server.set(tiny, generation);
    let first = sync(plugins, HELM, &server.url, None).await;
    if let Err(e) = &first.outcome {
        return Ok(json!({"plugin": HELM, "limits": limits, "error": e}));
    }

    generation += 1;
    let target = (index_mb * 1e6) as usize;
    let (index, charts, versions_in_index) = generate_index(target);
    let index_bytes = index.len();
    server.set(index, generation);
    let mut result = serde_json::Map::new();
    result.insert("plugin".to_owned(), json!(HELM));
    result.insert("limits".to_owned(), limits);
    result.insert("firstCallMs".to_owned(), json!(millis(first.elapsed)));
    result.insert("indexBytes".to_owned(), json!(index_bytes));
    result.insert("indexMb".to_owned(), json!(index_bytes as f64 / 1e6));
    result.insert("charts".to_owned(), json!(charts));
    result.insert("chartVersionsInIndex".to_owned(), json!(versions_in_index));

    let full = full_syncs(plugins, HELM, &server, syncs).await;
    let etag = match &full.error {
        None => {
            insert_all(&mut result, full.json());
            full.etag.clone()
        }
        Some((error, elapsed)) => {
            result.insert("error".to_owned(), json!(error));
            result.insert("errorAfterMs".to_owned(), json!(millis(*elapsed)));
            let (raised, raised_etag) = raised_memory(plugins, &server, syncs).await?;
            result.insert("raisedMemory".to_owned(), raised);
            raised_etag
        }
    };

    // The second, conditional sync: the ETag of a full sync (or, when none worked, the one
    // the server gives this index), which the server answers 304.
    let etag = etag.unwrap_or_else(|| server.served.lock().expect("lock").etag.clone());
    let before = server.not_modified();
    let mut conditional = Vec::new();
    let mut status = "unchanged".to_owned();
    for _ in 0..syncs.max(1) {
        let run = sync(plugins, HELM, &server.url, Some(etag.clone())).await;
        match run.outcome {
            Ok(SyncOutcome::Unchanged) => conditional.push(run.elapsed),
            Ok(SyncOutcome::Updated(_)) => {
                status = "updated (the ETag was not used)".to_owned();
                conditional.push(run.elapsed);
            }
            Err(e) => {
                status = format!("error: {e}");
                break;
            }
        }
    }
    let answered_304 = server.not_modified() - before;
    result.insert("etag".to_owned(), json!(etag));
    result.insert(
        "conditionalSyncMs".to_owned(),
        json!(median_ms(&conditional)),
    );
    result.insert("conditionalStatus".to_owned(), json!(status));
    result.insert("conditional304s".to_owned(), json!(answered_304));

    if result.contains_key("error") {
        let search = limit_search(plugins, &server, &mut generation, target).await;
        result.insert("limitSearch".to_owned(), search);
    }
    Ok(Value::Object(result))
}

fn insert_all(into: &mut serde_json::Map<String, Value>, from: Value) {
    if let Value::Object(map) = from {
        into.extend(map);
    }
}

/// Full (unconditional) syncs of the index being served, stopping at the first error.
#[derive(Debug, Default)]
struct FullSyncs {
    times: Vec<Duration>,
    chart_versions: Option<usize>,
    output_bytes: usize,
    etag: Option<String>,
    error: Option<(String, Duration)>,
}

impl FullSyncs {
    fn json(&self) -> Value {
        json!({
            "syncs": self.times.len(),
            "syncMs": median_ms(&self.times),
            "syncMsRuns": self.times.iter().map(|t| millis(*t)).collect::<Vec<_>>(),
            "chartVersions": self.chart_versions,
            "outputBytes": self.output_bytes,
        })
    }
}

async fn full_syncs(
    plugins: &Plugins,
    name: &str,
    server: &IndexServer,
    syncs: usize,
) -> FullSyncs {
    let mut full = FullSyncs::default();
    for _ in 0..syncs.max(1) {
        let run = sync(plugins, name, &server.url, None).await;
        match run.outcome {
            Ok(outcome) => {
                full.times.push(run.elapsed);
                full.chart_versions = chart_versions(&outcome);
                full.output_bytes = output_bytes(&outcome);
                if let SyncOutcome::Updated(index) = outcome {
                    full.etag = index.etag;
                }
            }
            Err(e) => {
                full.error = Some((e, run.elapsed));
                break;
            }
        }
    }
    full
}

/// A copy of `helm-index` with only `memory-mib` raised, installed as an upload for this run,
/// syncing the full index: the memory the full size needs and how long its sync takes.
/// Returns the report and the ETag of a sync that worked.
async fn raised_memory(
    plugins: &Plugins,
    server: &IndexServer,
    syncs: usize,
) -> anyhow::Result<(Value, Option<String>)> {
    let dir = portico_e2e::plugins::plugin_dir();
    let manifest = std::fs::read_to_string(dir.join(format!("{HELM}.toml")))?;
    let wasm = std::fs::read(dir.join(format!("{HELM}.wasm")))?;
    let ceiling = plugins.host().settings().max_memory_mib;
    let mut attempts = Vec::new();
    for &mib in RAISED_MEMORY_MIB.iter().filter(|&&m| m <= ceiling) {
        let text: String = manifest
            .lines()
            .map(|line| {
                if line.starts_with("name =") {
                    format!("name = \"{RAISED}\"\n")
                } else if line.starts_with("memory-mib =") {
                    format!("memory-mib = {mib}\n")
                } else {
                    format!("{line}\n")
                }
            })
            .collect();
        if let Err(e) = plugins.install(&text, wasm.clone(), true).await {
            attempts.push(json!({"memoryMib": mib, "ok": false, "error": e.to_string()}));
            continue;
        }
        let full = full_syncs(plugins, RAISED, server, syncs).await;
        let mut attempt = full.json();
        attempt["memoryMib"] = json!(mib);
        attempt["ok"] = json!(full.error.is_none());
        if let Some((error, elapsed)) = &full.error {
            attempt["error"] = json!(error);
            attempt["errorAfterMs"] = json!(millis(*elapsed));
        }
        attempts.push(attempt);
        if full.error.is_none() {
            let report = json!({
                "plugin": RAISED,
                "hostCeilingMib": ceiling,
                "memoryMibNeeded": mib,
                "attempts": attempts,
            });
            return Ok((report, full.etag));
        }
    }
    let report = json!({
        "plugin": RAISED,
        "hostCeilingMib": ceiling,
        "memoryMibNeeded": null,
        "attempts": attempts,
    });
    Ok((report, None))
}

/// Halves the index until a sync works, then bisects between the sizes that work and fail.
async fn limit_search(
    plugins: &Plugins,
    server: &IndexServer,
    generation: &mut usize,
    failing: usize,
) -> Value {
    let mut attempts = Vec::new();
    let mut fails = failing;
    let mut works = None;
    let mut size = failing / 2;
    while works.is_none() && size as f64 >= SMALLEST_INDEX_MB * 1e6 {
        let (ok, attempt) = attempt_size(plugins, server, generation, size).await;
        attempts.push(attempt);
        if ok {
            works = Some(size);
        } else {
            fails = size;
            size /= 2;
        }
    }
    if let Some(mut good) = works {
        for _ in 0..BISECT_STEPS {
            let size = (good + fails) / 2;
            let (ok, attempt) = attempt_size(plugins, server, generation, size).await;
            attempts.push(attempt);
            if ok {
                good = size;
            } else {
                fails = size;
            }
        }
        works = Some(good);
    }
    json!({
        "attempts": attempts,
        "largestWorkingMb": works.map(|b| b as f64 / 1e6),
        "smallestFailingMb": fails as f64 / 1e6,
    })
}

async fn attempt_size(
    plugins: &Plugins,
    server: &IndexServer,
    generation: &mut usize,
    target: usize,
) -> (bool, Value) {
    *generation += 1;
    let (index, _, versions) = generate_index(target);
    let bytes = index.len();
    server.set(index, *generation);
    let run = sync(plugins, HELM, &server.url, None).await;
    let mut attempt = json!({
        "indexMb": bytes as f64 / 1e6,
        "indexBytes": bytes,
        "chartVersionsInIndex": versions,
        "ms": millis(run.elapsed),
        "ok": run.outcome.is_ok(),
    });
    match &run.outcome {
        Ok(outcome) => {
            attempt["chartVersions"] = json!(chart_versions(outcome));
            attempt["outputBytes"] = json!(output_bytes(outcome));
        }
        Err(e) => attempt["error"] = json!(e),
    }
    (run.outcome.is_ok(), attempt)
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The median (nearest rank) in milliseconds; 0 when empty.
fn median_ms(samples: &[Duration]) -> f64 {
    percentile_us(samples, 50.0) / 1e3
}

/// A scratch folder for the database and the compile cache, removed when dropped.
#[derive(Debug)]
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> anyhow::Result<Self> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let path = std::env::temp_dir().join(format!(
            "portico-bench-plugins-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Self(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
