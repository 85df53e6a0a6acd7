-- Grants for people signed in through OIDC: the subject is a user or a group (names after the
-- configured prefixes); the clusters are one id, `*`, or a label selector.
CREATE TABLE subject_grants (
    id           TEXT PRIMARY KEY,
    subject_kind TEXT NOT NULL,           -- user | group
    subject_name TEXT NOT NULL,
    cluster      TEXT,                    -- a cluster id or `*`; NULL when `selector` is set
    selector     TEXT,                    -- a cluster label selector; NULL when `cluster` is set
    access       TEXT NOT NULL,           -- read | write | admin
    impersonate  TEXT NOT NULL DEFAULT 'false', -- 'true' | 'false'
    created_at   BIGINT NOT NULL          -- unix milliseconds
);
CREATE INDEX subject_grants_subject ON subject_grants (subject_kind, subject_name);
