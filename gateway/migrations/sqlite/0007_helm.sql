-- Helm repositories and the chart versions their last sync found.
CREATE TABLE helm_repositories (
    id               TEXT PRIMARY KEY,
    name             TEXT NOT NULL UNIQUE,
    url              TEXT NOT NULL,                -- http(s) base; the index is <url>/index.yaml
    sealed_auth      BLOB,                          -- JSON basic/bearer credentials, sealed with the secret key (bound to the id)
    auth_type        TEXT,                         -- basic | bearer | NULL (shown; the credentials never are)
    ca_pem           TEXT,                         -- a CA for the repository's TLS
    etag             TEXT,                         -- the index's ETag at the last successful sync
    last_sync_run    TEXT,                         -- the job run of the last sync attempt
    last_change_run  TEXT,                         -- the last sync run that found the index changed
    last_sync_at     INTEGER,
    last_sync_status TEXT,                         -- success | unchanged | failed
    last_error       TEXT,
    created_at       INTEGER NOT NULL,                 -- unix milliseconds
    updated_at       INTEGER NOT NULL
);

CREATE TABLE helm_chart_versions (
    repository_id  TEXT NOT NULL,
    name           TEXT NOT NULL,
    version        TEXT NOT NULL,
    app_version    TEXT,
    description    TEXT,
    digest         TEXT,
    urls           TEXT NOT NULL,                  -- JSON array
    created        TEXT,                           -- as the index gives it
    deprecated     TEXT NOT NULL,                  -- true | false
    icon           TEXT,
    keywords       TEXT,                           -- JSON array
    first_seen_run TEXT NOT NULL,                  -- the sync run that first found this version
    first_seen_at  INTEGER NOT NULL,
    PRIMARY KEY (repository_id, name, version)
);
