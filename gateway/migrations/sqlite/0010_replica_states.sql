-- Each replica's local connection state per cluster, published so that every replica can show
-- every replica's view (GET /api/v1/clusters `replicas`). Written only by the replica named in
-- instance_id; rows of replicas whose heartbeat is old are shown stale, then deleted by the leader.
CREATE TABLE replica_states (
    instance_id TEXT NOT NULL,
    cluster_id  TEXT NOT NULL,
    state       TEXT NOT NULL,      -- connecting | connected | failed | disconnected
    last_error  TEXT,
    since       INTEGER NOT NULL,   -- unix milliseconds of the last state change (replica clock)
    updated_at  INTEGER NOT NULL,   -- unix milliseconds of the last write (replica clock)
    PRIMARY KEY (instance_id, cluster_id)
);
CREATE INDEX replica_states_cluster ON replica_states (cluster_id);

-- One row per publishing replica; heartbeat_at is the database's clock, so staleness never
-- compares two machines' wall clocks.
CREATE TABLE replica_heartbeats (
    instance_id  TEXT PRIMARY KEY,
    heartbeat_at INTEGER NOT NULL   -- unix milliseconds, database clock
);
