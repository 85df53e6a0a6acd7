//! Watch latency: the time from a change on the simulator to its event at a watcher, for a
//! watcher connected to the simulator directly and one watching through Portico, both open at
//! once in this process (one clock).
//!
//! Each sample patches a ConfigMap on the simulator (directly, never through Portico), starting
//! the clock just before the PATCH is sent, and stops each watcher's clock when its stream
//! yields the MODIFIED event carrying that sample's value. The added latency of a sample is
//! Portico's time minus the direct time.
//!
//! Output: `{"samples", "direct": summary, "portico": summary, "added": summary}`, summaries as
//! [`crate::stats::summary`] (µs). `added` percentiles are of per-sample differences.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use tokio::sync::mpsc;

use crate::stats::summary;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The simulator's base URL.
    #[arg(long)]
    sim_url: String,
    /// The simulator's CA certificate (PEM), for an HTTPS simulator.
    #[arg(long)]
    sim_ca: Option<std::path::PathBuf>,
    /// The simulator's bearer token.
    #[arg(long)]
    sim_token: String,
    /// Portico's base URL (plain HTTP, or HTTPS with a CA `--sim-ca` also trusts).
    #[arg(long)]
    gateway_url: String,
    /// A Portico token with read access to the cluster.
    #[arg(long)]
    gateway_token: String,
    /// The cluster's id in Portico (registered for the simulator).
    #[arg(long)]
    cluster: String,
    /// Changes to time.
    #[arg(long, default_value_t = 500)]
    samples: usize,
    /// Pause between changes, in milliseconds.
    #[arg(long, default_value_t = 2)]
    pause_ms: u64,
}

const NAME: &str = "portico-bench-watch";
const COLLECTION: &str = "/api/v1/namespaces/default/configmaps";

pub async fn run(args: Args) -> anyhow::Result<serde_json::Value> {
    let mut builder = reqwest::Client::builder().no_proxy().tcp_nodelay(true);
    if let Some(path) = &args.sim_ca {
        let pem = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
        builder = builder.add_root_certificate(reqwest::Certificate::from_pem(&pem)?);
    }
    let client = builder.build()?;
    let sim = args.sim_url.trim_end_matches('/');
    let gateway = format!(
        "{}/k8s/clusters/{}",
        args.gateway_url.trim_end_matches('/'),
        args.cluster
    );

    // A fresh object, and the resourceVersion to watch from.
    let _ = client
        .delete(format!("{sim}{COLLECTION}/{NAME}"))
        .bearer_auth(&args.sim_token)
        .send()
        .await?;
    let created: serde_json::Value = client
        .post(format!("{sim}{COLLECTION}"))
        .bearer_auth(&args.sim_token)
        .json(&serde_json::json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": NAME}, "data": {"seq": "-1"}
        }))
        .send()
        .await?
        .error_for_status()
        .context("create the ConfigMap on the simulator")?
        .json()
        .await?;
    let rv = created["metadata"]["resourceVersion"]
        .as_str()
        .context("created object without resourceVersion")?
        .to_owned();

    let query = format!(
        "?watch=true&resourceVersion={rv}&fieldSelector=metadata.name%3D{NAME}&timeoutSeconds=3600"
    );
    let (direct_task, mut direct_rx) = watch(
        &client,
        format!("{sim}{COLLECTION}{query}"),
        &args.sim_token,
        "the simulator directly",
    )
    .await?;
    let (portico_task, mut portico_rx) = watch(
        &client,
        format!("{gateway}{COLLECTION}{query}"),
        &args.gateway_token,
        "through Portico",
    )
    .await?;

    let mut direct_samples = Vec::with_capacity(args.samples);
    let mut portico_samples = Vec::with_capacity(args.samples);
    let mut added = Vec::with_capacity(args.samples);
    // Sample 0 is a warm-up: both watchers are proven live before the clock counts.
    for seq in 0..=args.samples as i64 {
        let patch = serde_json::json!({"data": {"seq": seq.to_string()}});
        let started = Instant::now();
        client
            .patch(format!("{sim}{COLLECTION}/{NAME}"))
            .bearer_auth(&args.sim_token)
            .header("content-type", "application/merge-patch+json")
            .body(patch.to_string())
            .send()
            .await?
            .error_for_status()
            .context("patch the ConfigMap")?;
        let direct_at = wait_for(&mut direct_rx, seq, "direct").await?;
        let portico_at = wait_for(&mut portico_rx, seq, "through Portico").await?;
        if seq > 0 {
            let d = direct_at.saturating_duration_since(started);
            let p = portico_at.saturating_duration_since(started);
            direct_samples.push(d);
            portico_samples.push(p);
            added.push(p.saturating_sub(d));
        }
        tokio::time::sleep(Duration::from_millis(args.pause_ms)).await;
    }
    direct_task.abort();
    portico_task.abort();
    let _ = client
        .delete(format!("{sim}{COLLECTION}/{NAME}"))
        .bearer_auth(&args.sim_token)
        .send()
        .await;

    Ok(serde_json::json!({
        "samples": args.samples,
        "direct": summary(&direct_samples),
        "portico": summary(&portico_samples),
        "added": summary(&added),
    }))
}

/// Opens a watch at `url` and follows it in a task that reports each change's arrival.
async fn watch(
    client: &reqwest::Client,
    url: String,
    token: &str,
    which: &str,
) -> anyhow::Result<(
    tokio::task::JoinHandle<()>,
    mpsc::UnboundedReceiver<(i64, Instant)>,
)> {
    let response = client
        .get(url)
        .bearer_auth(token)
        .send()
        .await?
        .error_for_status()
        .with_context(|| format!("watch {which}"))?;
    let (tx, rx) = mpsc::unbounded_channel();
    Ok((tokio::spawn(follow(response, tx)), rx))
}

/// Waits (at most 10 s) for the event carrying `seq`.
async fn wait_for(
    rx: &mut mpsc::UnboundedReceiver<(i64, Instant)>,
    seq: i64,
    which: &str,
) -> anyhow::Result<Instant> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some((got, at))) if got == seq => return Ok(at),
            Ok(Some(_)) => continue,
            Ok(None) => bail!("the watch {which} ended"),
            Err(_) => bail!("no event for change {seq} {which} within 10 s"),
        }
    }
}

/// Reads a watch stream, sending `(seq, arrival)` for every MODIFIED event as soon as its line
/// is complete.
async fn follow(response: reqwest::Response, tx: mpsc::UnboundedSender<(i64, Instant)>) {
    let mut stream = response.bytes_stream();
    let mut buffer: Vec<u8> = Vec::new();
    while let Some(Ok(chunk)) = stream.next().await {
        let arrived = Instant::now();
        buffer.extend_from_slice(&chunk);
        while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buffer.drain(..=end).collect();
            let Ok(event) = serde_json::from_slice::<serde_json::Value>(&line) else {
                continue;
            };
            if event["type"] != "MODIFIED" {
                continue;
            }
            if let Some(seq) = event["object"]["data"]["seq"]
                .as_str()
                .and_then(|s| s.parse().ok())
                && tx.send((seq, arrived)).is_err()
            {
                return;
            }
        }
    }
}
