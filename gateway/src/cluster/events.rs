//! Connect and disconnect events of this replica: what hooks (webhooks, lifecycle plugins)
//! react to, and the broadcast channel that publishes them.

use serde::Serialize;

use crate::clock;

/// A local connect or disconnect: what hooks (webhooks, lifecycle plugins) react to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterEvent {
    pub cluster_id: String,
    pub kind: ClusterEventKind,
    /// This replica made the change (the API call or lease change happened here, or the
    /// gateway runs standalone): `cluster`-scoped hooks fire only where this is true, so once
    /// per change; `replica`-scoped hooks fire on every replica's own local change.
    pub initiator: bool,
    /// The replica the event happened on.
    pub instance_id: String,
    /// Unix milliseconds.
    pub at: i64,
    /// The apiserver's version (connects only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_version: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClusterEventKind {
    Connected,
    Disconnected,
}

/// Publishes [`ClusterEvent`]s; subscribers that lag lose the oldest events (logged).
#[derive(Debug, Clone)]
pub struct ClusterEvents {
    sender: tokio::sync::broadcast::Sender<ClusterEvent>,
    instance_id: String,
}

impl ClusterEvents {
    pub fn new(instance_id: &str) -> Self {
        Self {
            sender: tokio::sync::broadcast::channel(1024).0,
            instance_id: instance_id.to_owned(),
        }
    }

    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<ClusterEvent> {
        self.sender.subscribe()
    }

    pub(super) fn send(
        &self,
        cluster_id: &str,
        kind: ClusterEventKind,
        initiator: bool,
        version: Option<String>,
    ) {
        // No subscriber is fine: nothing to notify.
        let _ = self.sender.send(ClusterEvent {
            cluster_id: cluster_id.to_owned(),
            kind,
            initiator,
            instance_id: self.instance_id.clone(),
            at: clock::now_millis(),
            server_version: version,
        });
    }
}
