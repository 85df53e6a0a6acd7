//! Per-cluster proxy metrics. Only registered clusters get a label of their own.

use std::sync::atomic::AtomicI64;

use http::StatusCode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct CodeLabels {
    pub(super) cluster: String,
    code: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct ClusterLabel {
    pub(super) cluster: String,
}

/// Per-cluster proxy metrics.
#[derive(Debug)]
pub struct ProxyMetrics {
    pub(super) requests: Family<CodeLabels, Counter>,
    pub(super) upstream_latency: Family<ClusterLabel, Histogram>,
    pub(super) in_flight: Family<ClusterLabel, Gauge<i64, AtomicI64>>,
    pub(super) open_upgrades: Family<ClusterLabel, Gauge<i64, AtomicI64>>,
}

impl ProxyMetrics {
    pub fn new(metrics: &crate::telemetry::Metrics) -> Self {
        let this = Self {
            requests: Family::default(),
            upstream_latency: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.0001, 2.0, 20))
            }),
            in_flight: Family::default(),
            open_upgrades: Family::default(),
        };
        metrics.register(|registry| {
            registry.register(
                "proxy_requests",
                "Proxied requests by cluster and status code (Portico's own errors included)",
                this.requests.clone(),
            );
            registry.register(
                "proxy_upstream_duration_seconds",
                "Time from sending upstream to the response head, by cluster",
                this.upstream_latency.clone(),
            );
            registry.register(
                "proxy_in_flight_requests",
                "Proxied requests whose response is still streaming, by cluster",
                this.in_flight.clone(),
            );
            registry.register(
                "proxy_open_upgrades",
                "Spliced upgraded connections (exec, attach, port-forward), by cluster",
                this.open_upgrades.clone(),
            );
        });
        this
    }

    pub(super) fn count(&self, cluster: &str, code: StatusCode) {
        self.requests
            .get_or_create(&CodeLabels {
                cluster: cluster.to_owned(),
                code: code.as_u16(),
            })
            .inc();
    }
}

/// Decrements a gauge when dropped.
pub(super) struct GaugeGuard(pub(super) Gauge<i64, AtomicI64>);

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}
