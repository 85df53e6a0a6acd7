-- Console (`/ui`) sessions. A browser holds a random session id in a cookie; only its SHA-256
-- hash is stored, so a database dump signs nobody in. Any replica can read any session.
CREATE TABLE console_sessions (
    id_hash       TEXT PRIMARY KEY,
    -- 'token': signed in with a Portico token; 'oidc': signed in through the identity provider.
    kind          TEXT NOT NULL,
    -- kind 'token': the token's id (the session ends when the token is revoked or expires).
    token_id      TEXT,
    -- kind 'oidc': the person's username and groups (JSON array), as the provider asserted them.
    username      TEXT,
    groups_json   TEXT,
    -- The credential the session signed in with (a token, or a refresh token), sealed with the
    -- secret key and bound to the session: kubeconfig downloads need it, nothing else reads it.
    sealed_secret BLOB,
    -- The session's CSRF token: every form posts it back.
    csrf          TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    -- Absolute end (unix milliseconds); idle sessions end earlier (last_seen_at).
    expires_at    BIGINT NOT NULL,
    last_seen_at  BIGINT NOT NULL
);
CREATE INDEX console_sessions_expires_at ON console_sessions (expires_at);
