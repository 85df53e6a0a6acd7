//! Webhooks, their deliveries, and the events and scopes hooks subscribe to.

use serde::{Deserialize, Serialize};

/// The events a hook can subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    Connected,
    Disconnected,
    /// A job run finished (sent to the webhooks the job names, not by subscription).
    #[serde(rename = "run.finished")]
    RunFinished,
}

impl EventKind {
    /// Every event, the default subscription.
    pub const ALL: [Self; 2] = [Self::Connected, Self::Disconnected];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connected => "connected",
            Self::Disconnected => "disconnected",
            Self::RunFinished => "run.finished",
        }
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a lifecycle hook runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HookScope {
    /// Once per change, on the replica that changed the cluster's lease (standalone: always).
    #[default]
    Cluster,
    /// On every replica's own connect and disconnect.
    Replica,
}

/// A configured webhook. The secret stays sealed until a delivery opens it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    pub id: String,
    pub name: String,
    pub url: String,
    /// The signing secret, sealed with the gateway's key and bound to the id; never shown.
    #[serde(skip)]
    pub sealed_secret: Vec<u8>,
    pub events: Vec<EventKind>,
    pub scope: HookScope,
    /// Only these clusters; `None`: every cluster.
    pub clusters: Option<Vec<String>>,
    pub enabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    /// Attempts are still being made.
    Pending,
    Delivered,
    Failed,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }
}

/// One delivery of one event to one webhook, with all its attempts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryRecord {
    pub id: String,
    pub webhook_id: String,
    pub event: EventKind,
    pub cluster_id: String,
    /// The replica that delivered it.
    pub instance_id: String,
    pub attempts: u32,
    pub state: DeliveryState,
    /// The HTTP status of the last answer.
    pub last_status: Option<u16>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub finished_at: Option<i64>,
}
