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
    /// Whether this replica made the change: `cluster`-scoped hooks fire only for
    /// [`Initiator::ThisReplica`], so once per change; `replica`-scoped hooks fire on every
    /// replica's own local change. Serialized as a bool (`true`: this replica).
    #[serde(serialize_with = "initiator_as_bool")]
    pub initiator: Initiator,
    /// The replica the event happened on.
    pub instance_id: String,
    /// Unix milliseconds.
    pub at: i64,
    /// The apiserver's version (connects only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_version: Option<String>,
}

/// Who made a local connect or disconnect happen, as the replica it happened on sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Initiator {
    /// This replica made the change: the API call or the lease change happened here (a
    /// takeover of an expired lease included), or the gateway runs standalone.
    ThisReplica,
    /// This replica followed a change another replica made (it saw the cluster lease appear,
    /// change or go), or only refreshed its own connection (a reload, `portico plugin run`).
    OtherReplica,
}

/// `initiator` on the wire: `true` for [`Initiator::ThisReplica`].
fn initiator_as_bool<S: serde::Serializer>(
    initiator: &Initiator,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_bool(*initiator == Initiator::ThisReplica)
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
        initiator: Initiator,
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
