-- Installed plugins. Uploaded components are stored here, so every replica gets them;
-- plugin-directory plugins keep only their state here (`component` is NULL: each replica reads
-- the file from its own plugin directory and checks the digest).
CREATE TABLE plugins (
    name       TEXT PRIMARY KEY,
    version    TEXT NOT NULL,
    world      TEXT NOT NULL,          -- inspector | repo-sync | lifecycle-hook
    manifest   TEXT NOT NULL,          -- the manifest as written (TOML)
    component  BLOB,                   -- the wasm component; NULL for plugin-directory plugins
    digest     TEXT NOT NULL,          -- hex sha256 of the component
    size       INTEGER NOT NULL,       -- bytes of the component
    source     TEXT NOT NULL,          -- upload | directory
    enabled    TEXT NOT NULL DEFAULT 'true',
    config     TEXT,                   -- JSON configuration replacing the manifest's default
    created_at INTEGER NOT NULL,       -- unix milliseconds
    updated_at INTEGER NOT NULL
);
