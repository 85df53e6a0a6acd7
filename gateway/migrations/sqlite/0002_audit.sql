-- Mutating requests proxied to clusters.
CREATE TABLE audit_log (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         INTEGER NOT NULL,   -- unix milliseconds
    token_id   TEXT NOT NULL,
    token_name TEXT NOT NULL,
    cluster    TEXT NOT NULL,
    verb       TEXT NOT NULL,
    path       TEXT NOT NULL,
    status     INTEGER NOT NULL
);
CREATE INDEX audit_log_cluster_at ON audit_log (cluster, at);
CREATE INDEX audit_log_at ON audit_log (at);
