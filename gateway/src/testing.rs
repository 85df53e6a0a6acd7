//! What the workspace's end-to-end tests and benchmarks reach below the HTTP API and the CLI,
//! named one by one: seeding state the API cannot create (expired tokens, old audit rows,
//! stored plugins that skip the upload checks), reading coordination state, and storage round
//! trips against a real PostgreSQL. Only with the `testing` feature, never in releases.

pub use crate::app::App;
pub use crate::clock::now_millis;
pub use crate::cluster::{ClusterEventKind, Connection};
pub use crate::crypto::{OpenError, SecretKey, generate_token, token_hash};
pub use crate::storage::clusters::{ClusterRecord, DesiredState};
pub use crate::storage::plugins::PluginRow;
pub use crate::storage::replica_states::{PublishedState, ReplicaState};
pub use crate::storage::{ACQUIRE_TIMEOUT, Db, StorageError};
pub use crate::tls::ServerTls;
