//! Logs (tracing, text or JSON) and Prometheus metrics.

use parking_lot::Mutex;
use std::borrow::Cow;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tracing_subscriber::EnvFilter;

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// A `--log` / `RUST_LOG` filter that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("--log / RUST_LOG: {0}")]
pub struct BadLogFilter(#[from] tracing_subscriber::filter::ParseError);

/// Installs the global tracing subscriber. Fails on a filter that does not parse.
pub fn init_tracing(filter: &str, format: LogFormat) -> Result<(), BadLogFilter> {
    let filter = EnvFilter::try_new(filter)?;
    use std::io::IsTerminal;
    // Logs go to stderr: stdout carries what the user must see once (the admin token).
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let result = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    // A subscriber already installed (tests start several gateways in one process) is fine.
    let _ = result;
    Ok(())
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: Cow<'static, str>,
    method: &'static str,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: Cow<'static, str>,
}

/// Every metric the gateway exports, registered once.
#[derive(Debug)]
pub struct Metrics {
    registry: Mutex<Registry>,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: Family<RouteLabels, Histogram>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("portico");
        let http_requests = Family::<HttpLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests served, by route template, method and status",
            http_requests.clone(),
        );
        let http_duration = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            // 100 µs … ~52 s
            Histogram::new(exponential_buckets(0.0001, 2.0, 20))
        });
        registry.register(
            "http_request_duration_seconds",
            "Time to the response head, by route template",
            http_duration.clone(),
        );
        Self {
            registry: Mutex::new(registry),
            http_requests,
            http_duration,
        }
    }

    /// Lets other modules register their metrics.
    pub fn register(&self, f: impl FnOnce(&mut Registry)) {
        f(&mut self.registry.lock());
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry.lock())
            .expect("writing to a String cannot fail");
        out
    }

    /// Counts and times one request by its route template (never the raw path, which would
    /// make a series per object).
    pub fn observe(
        &self,
        route: Cow<'static, str>,
        method: &http::Method,
        status: u16,
        started: Instant,
    ) {
        let method = match method.as_str() {
            "GET" => "GET",
            "HEAD" => "HEAD",
            "POST" => "POST",
            "PUT" => "PUT",
            "PATCH" => "PATCH",
            "DELETE" => "DELETE",
            "OPTIONS" => "OPTIONS",
            _ => "other",
        };
        self.http_duration
            .get_or_create(&RouteLabels {
                route: route.clone(),
            })
            .observe(started.elapsed().as_secs_f64());
        self.http_requests
            .get_or_create(&HttpLabels {
                route,
                method,
                status,
            })
            .inc();
    }
}

/// Middleware: counts every request by its route template and times it to the response head.
pub async fn track_http(
    State(metrics): State<std::sync::Arc<Metrics>>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(Cow::Borrowed("unmatched"), |p| {
            Cow::Owned(p.as_str().to_owned())
        });
    let method = request.method().clone();
    let start = Instant::now();
    let response = next.run(request).await;
    metrics.observe(route, &method, response.status().as_u16(), start);
    response
}
