-- Webhooks fired on cluster connect and disconnect. Stored here so every replica has them.
CREATE TABLE webhooks (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    url           TEXT NOT NULL,          -- http:// or https://
    sealed_secret BYTEA NOT NULL,         -- the signing secret, sealed with the secret key (bound to the id)
    events        TEXT NOT NULL,          -- JSON array: "connected", "disconnected"
    scope         TEXT NOT NULL,          -- cluster | replica
    clusters      TEXT,                   -- JSON array of cluster ids; NULL: every cluster
    enabled       TEXT NOT NULL DEFAULT 'true',
    created_at    BIGINT NOT NULL,        -- unix milliseconds
    updated_at    BIGINT NOT NULL
);

-- One row per delivery (all its attempts); the newest few hundred per webhook are kept.
CREATE TABLE webhook_deliveries (
    id          TEXT PRIMARY KEY,
    webhook_id  TEXT NOT NULL,
    event       TEXT NOT NULL,            -- connected | disconnected
    cluster_id  TEXT NOT NULL,
    instance_id TEXT NOT NULL,            -- the replica that delivered it
    attempts    BIGINT NOT NULL,
    state       TEXT NOT NULL,            -- pending | delivered | failed
    last_status BIGINT,                   -- HTTP status of the last answer
    last_error  TEXT,                     -- why the last attempt failed
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    finished_at BIGINT
);
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (webhook_id, created_at);
