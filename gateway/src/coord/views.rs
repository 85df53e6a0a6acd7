//! What `GET /api/v1/leader` and `GET /api/v1/instances` show: this replica's view of the
//! leader lease and of the instance leases.

use serde::Serialize;

use super::lease::{annotation, holder};
use super::{CoordError, Coordinator, names};

/// One row of `GET /api/v1/instances`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceView {
    pub id: String,
    pub address: Option<String>,
    pub version: Option<String>,
    pub started: Option<String>,
    pub leader: bool,
    pub clusters_held: usize,
    /// Renewed recently, as this replica sees it.
    pub alive: bool,
    /// The instance lease's last renewal (RFC 3339) by the instance's own clock; `None`
    /// standalone. How old it is depends on the clocks agreeing; `alive` does not.
    pub renew_time: Option<String>,
}

/// `GET /api/v1/leader`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LeaderView {
    pub mode: &'static str,
    pub lease: Option<String>,
    pub holder: Option<String>,
    /// This replica leads.
    pub is_leader: bool,
    /// `leaseTransitions`: the fencing token of the current term.
    pub transitions: Option<i64>,
    pub acquire_time: Option<String>,
    pub renew_time: Option<String>,
    pub instance_id: String,
    /// Why the lease could not be read just now (host apiserver unreachable): `holder` is then
    /// the holder as last seen and `isLeader` this replica's own view, which is what matters
    /// during an outage (a leader that cannot renew steps down on its own).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease_error: Option<String>,
}

impl Coordinator {
    pub async fn leader(&self) -> Result<LeaderView, CoordError> {
        let state = self.leadership.borrow().clone();
        let Some(c) = &self.coordinated else {
            return Ok(LeaderView {
                mode: "standalone",
                lease: None,
                holder: Some(self.instance_id.clone()),
                is_leader: true,
                transitions: None,
                acquire_time: None,
                renew_time: None,
                instance_id: self.instance_id.clone(),
                lease_error: None,
            });
        };
        let lease = match c.elector.lease().await {
            Ok(lease) => lease,
            Err(e) => {
                // The host apiserver is down or frozen: this replica's own view still answers.
                return Ok(LeaderView {
                    mode: "leases",
                    lease: Some(c.elector.name().to_owned()),
                    holder: state.holder,
                    is_leader: state.is_leader,
                    transitions: state.term,
                    acquire_time: None,
                    renew_time: None,
                    instance_id: self.instance_id.clone(),
                    lease_error: Some(e.to_string()),
                });
            }
        };
        let spec = lease
            .as_ref()
            .and_then(|l| l.spec.clone())
            .unwrap_or_default();
        Ok(LeaderView {
            mode: "leases",
            lease: Some(c.elector.name().to_owned()),
            holder: spec.holder_identity.filter(|h| !h.is_empty()),
            is_leader: state.is_leader,
            transitions: spec.lease_transitions.map(i64::from),
            acquire_time: spec.acquire_time.map(|t| t.0.to_string()),
            renew_time: spec.renew_time.map(|t| t.0.to_string()),
            instance_id: self.instance_id.clone(),
            lease_error: None,
        })
    }

    pub async fn instances(&self, local_clusters: usize) -> Result<Vec<InstanceView>, CoordError> {
        let Some(c) = &self.coordinated else {
            return Ok(vec![InstanceView {
                id: self.instance_id.clone(),
                address: None,
                version: Some(env!("CARGO_PKG_VERSION").to_owned()),
                started: None,
                leader: true,
                clusters_held: local_clusters,
                alive: true,
                renew_time: None,
            }]);
        };
        let leader = c
            .elector
            .lease()
            .await?
            .as_ref()
            .and_then(|l| holder(l).map(str::to_owned));
        let counts = c.sync.held_counts();
        let mut rows: Vec<InstanceView> = c
            .sync
            .instances()
            .await?
            .into_iter()
            .filter_map(|(lease, alive)| {
                let id = holder(&lease)?.to_owned();
                Some(InstanceView {
                    address: annotation(&lease, names::ADDRESS_ANNOTATION).map(str::to_owned),
                    version: annotation(&lease, names::VERSION_ANNOTATION).map(str::to_owned),
                    started: annotation(&lease, names::STARTED_ANNOTATION).map(str::to_owned),
                    leader: leader.as_deref() == Some(id.as_str()),
                    clusters_held: counts.get(&id).copied().unwrap_or(0),
                    alive,
                    renew_time: lease
                        .spec
                        .as_ref()
                        .and_then(|s| s.renew_time.as_ref())
                        .map(|t| t.0.to_string()),
                    id,
                })
            })
            .collect();
        rows.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(rows)
    }
}
