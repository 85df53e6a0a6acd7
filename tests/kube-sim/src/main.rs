//! `kube-sim`: run the Kubernetes API simulator by hand or for benchmarks.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use kube_sim::KubeSim;

/// A Kubernetes API server simulator.
#[derive(Debug, Parser)]
#[command(name = "kube-sim", version)]
struct Args {
    /// Address to listen on (port 0: any free port).
    #[arg(long, env = "KUBE_SIM_LISTEN", default_value = "127.0.0.1:6443")]
    listen: SocketAddr,
    /// Serve plain HTTP instead of HTTPS.
    #[arg(long)]
    plain_http: bool,
    /// Bearer token to accept (default: random, printed at start).
    #[arg(long, env = "KUBE_SIM_TOKEN")]
    token: Option<String>,
    /// Also accept client certificates signed by the simulator's CA.
    #[arg(long)]
    client_cert_auth: bool,
    /// Write a kubeconfig pointing at the simulator to this file.
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Write the CA certificate (PEM) to this file.
    #[arg(long)]
    ca_out: Option<PathBuf>,
    /// Load objects from this multi-document YAML file (repeatable).
    #[arg(long = "seed")]
    seed: Vec<PathBuf>,
    /// Generate this many running pods.
    #[arg(long, default_value_t = 0)]
    pods: usize,
    /// Namespace of generated pods.
    #[arg(long, default_value = "default")]
    pod_namespace: String,
    /// Generate this many ready nodes (pods are spread over them).
    #[arg(long, default_value_t = 0)]
    nodes: usize,
    /// Interval between watch bookmarks, in milliseconds.
    #[arg(long, default_value_t = 60_000)]
    bookmark_interval_ms: u64,
    /// Change events kept for watches; older resourceVersions get 410 Expired.
    #[arg(long, default_value_t = 10_000)]
    watch_history: usize,
    /// Latency added to every request, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Fraction of requests (0.0-1.0) to fail with --failure-code.
    #[arg(long, default_value_t = 0.0)]
    failure_rate: f64,
    /// HTTP code of injected failures.
    #[arg(long, default_value_t = 500)]
    failure_code: u16,
    /// Serve only legacy discovery documents (no apidiscovery.k8s.io/v2).
    #[arg(long)]
    no_aggregated_discovery: bool,
    /// Keep full JSON lists encoded while nothing changes (for benchmarks of proxies in
    /// front: the simulator's own share stays small; clients get the same bytes).
    #[arg(long)]
    cache_lists: bool,
    /// Log filter (tracing syntax).
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    log: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&args.log))
        .with_writer(std::io::stderr)
        .init();
    let mut builder = KubeSim::builder()
        .listen(args.listen)
        .tls(!args.plain_http)
        .client_cert_auth(args.client_cert_auth)
        .bookmark_interval(Duration::from_millis(args.bookmark_interval_ms))
        .watch_history(args.watch_history)
        .aggregated_discovery(!args.no_aggregated_discovery)
        .cache_lists(args.cache_lists);
    if let Some(t) = &args.token {
        builder = builder.token(t.clone());
    }
    let sim = builder.start().await.context("starting kube-sim")?;
    for file in &args.seed {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let n = sim
            .load_yaml(&text)
            .with_context(|| format!("loading {}", file.display()))?;
        tracing::info!(file = %file.display(), objects = n, "seeded");
    }
    if args.nodes > 0 {
        sim.seed_nodes(args.nodes);
    }
    if args.pods > 0 {
        let started = std::time::Instant::now();
        sim.seed_pods(&args.pod_namespace, args.pods, args.nodes.max(1));
        tracing::info!(pods = args.pods, elapsed = ?started.elapsed(), "generated pods");
    }
    sim.faults()
        .set_latency(Duration::from_millis(args.latency_ms));
    sim.faults()
        .set_failure_rate(args.failure_rate, args.failure_code);
    if let Some(path) = &args.kubeconfig {
        sim.write_kubeconfig(path)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let (Some(path), Some(ca)) = (&args.ca_out, sim.ca_pem()) {
        std::fs::write(path, ca).with_context(|| format!("writing {}", path.display()))?;
    }
    println!("kube-sim listening on {}", sim.url());
    println!("token: {}", sim.token());
    if let Some(path) = &args.kubeconfig {
        println!("kubeconfig: {}", path.display());
    }
    tokio::signal::ctrl_c()
        .await
        .context("waiting for ctrl-c")?;
    Ok(())
}
