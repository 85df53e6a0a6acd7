-- Scheduled jobs (run by the leader only), their runs, per-cluster results and findings.
CREATE TABLE jobs (
    id                     TEXT PRIMARY KEY,
    name                   TEXT NOT NULL UNIQUE,
    kind                   TEXT NOT NULL,          -- inspection | repo-sync
    plugins                TEXT NOT NULL,          -- JSON array of plugin names
    cron                   TEXT NOT NULL,          -- 5 fields (or 6, seconds first)
    targets                TEXT NOT NULL,          -- JSON: "all" | {"clusters": [..]} | {"selector": ".."}
    enabled                TEXT NOT NULL DEFAULT 'true',
    timeout_seconds        BIGINT NOT NULL,
    webhooks               TEXT NOT NULL,          -- JSON array of webhook ids to notify
    notify_only_on_failure TEXT NOT NULL DEFAULT 'false',
    revision               BIGINT NOT NULL,           -- bumped on every edit; the scheduler re-plans
    created_at             BIGINT NOT NULL,           -- unix milliseconds
    updated_at             BIGINT NOT NULL
);

-- A run is claimed here before it starts: (job_id, scheduled_at) is unique, so a scheduled
-- occurrence runs at most once across all replicas and leader changes. Manual runs have no
-- scheduled time (NULLs never collide).
CREATE TABLE job_runs (
    id               TEXT PRIMARY KEY,
    job_id           TEXT NOT NULL,
    scheduled_at     BIGINT,                          -- the cron occurrence (ms); NULL: manual
    trigger_kind     TEXT NOT NULL,                -- schedule | manual
    instance_id      TEXT NOT NULL,                -- the replica that ran it
    fencing_token    BIGINT,                          -- leaseTransitions of the leader's term
    status           TEXT NOT NULL,                -- running | success | failed | skipped
    clusters_total   BIGINT NOT NULL DEFAULT 0,
    clusters_skipped BIGINT NOT NULL DEFAULT 0,
    clusters_failed  BIGINT NOT NULL DEFAULT 0,
    findings_total   BIGINT NOT NULL DEFAULT 0,
    findings_failed  BIGINT NOT NULL DEFAULT 0,
    error            TEXT,
    started_at       BIGINT NOT NULL,
    finished_at      BIGINT,
    UNIQUE (job_id, scheduled_at)
);
CREATE INDEX job_runs_started ON job_runs (started_at);

-- One row per (run, cluster).
CREATE TABLE run_targets (
    run_id          TEXT NOT NULL,
    cluster_id      TEXT NOT NULL,
    status          TEXT NOT NULL,                 -- success | failed | skipped
    findings_total  BIGINT NOT NULL,
    findings_failed BIGINT NOT NULL,
    error           TEXT,
    finished_at     BIGINT NOT NULL,
    PRIMARY KEY (run_id, cluster_id)
);
CREATE INDEX run_targets_cluster ON run_targets (cluster_id, finished_at);

CREATE TABLE findings (
    id         TEXT PRIMARY KEY,
    run_id     TEXT NOT NULL,
    job_id     TEXT NOT NULL,
    cluster_id TEXT NOT NULL,
    plugin     TEXT NOT NULL,
    check_id   TEXT NOT NULL,
    severity   TEXT NOT NULL,                      -- info | low | medium | high | critical
    passed     TEXT NOT NULL,                      -- true | false
    message    TEXT NOT NULL,
    target     TEXT,                               -- JSON object reference
    extra      TEXT NOT NULL,                      -- JSON
    created_at BIGINT NOT NULL
);
CREATE INDEX findings_run ON findings (run_id);
CREATE INDEX findings_cluster ON findings (cluster_id, created_at);
