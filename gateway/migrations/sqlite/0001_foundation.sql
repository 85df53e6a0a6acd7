-- Key/value settings of the deployment (e.g. the secret-key check value).
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- API tokens: only a SHA-256 hash of the token is stored.
CREATE TABLE api_tokens (
    id                 TEXT PRIMARY KEY,
    name               TEXT NOT NULL UNIQUE,
    role               TEXT NOT NULL,
    grants             TEXT NOT NULL,          -- JSON array of {cluster, access, impersonate}
    token_hash         TEXT NOT NULL UNIQUE,
    impersonate_user   TEXT,
    impersonate_groups TEXT,                   -- JSON array of strings
    created_at         INTEGER NOT NULL,       -- unix milliseconds
    expires_at         INTEGER                 -- unix milliseconds, NULL = never
);

-- Managed clusters. `credentials` is the sealed (AES-256-GCM) kubeconfig of the cluster.
CREATE TABLE clusters (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    server          TEXT NOT NULL,
    context         TEXT,
    credentials     BLOB NOT NULL,
    labels          TEXT NOT NULL DEFAULT '{}', -- JSON object
    desired_state   TEXT NOT NULL DEFAULT 'disconnected',
    config_revision INTEGER NOT NULL DEFAULT 1,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
