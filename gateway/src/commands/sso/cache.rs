//! The ID and refresh token cache of `portico login --sso` and `portico credential`.
//!
//! One JSON file per provider and client (`<sha256(issuer, client id)>.json`) in a folder made
//! 0700; every file is 0600. Several `kubectl` runs may call `portico credential` at once, and
//! a provider may rotate refresh tokens on use (a second use of an old one revokes the
//! sign-in), so a refresh happens under an exclusive lock on `<file>.lock`, and whoever gets
//! the lock reads the cache again first. A file is written whole to a temporary file beside it
//! and renamed over it: a reader never sees half a file.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use crate::commands::CommandError;

/// What the cache keeps for one provider and client.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CachedTokens {
    /// The issuer the tokens came from.
    pub issuer_url: String,
    /// The client they were issued to.
    pub client_id: String,
    /// The ID token (the bearer token kubectl sends).
    pub id_token: String,
    /// The refresh token, when the provider gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// The ID token's `exp`, unix seconds.
    pub expiry: i64,
}

impl std::fmt::Debug for CachedTokens {
    // Tokens stay out of logs and panics.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedTokens")
            .field("issuer_url", &self.issuer_url)
            .field("client_id", &self.client_id)
            .field("expiry", &self.expiry)
            .finish_non_exhaustive()
    }
}

/// The cache folder.
#[derive(Debug, Clone)]
pub struct TokenCache {
    dir: PathBuf,
}

/// Held while a process reads, refreshes and writes one entry; dropping it unlocks.
#[derive(Debug)]
pub struct CacheLock {
    _file: std::fs::File,
}

fn failed(path: &Path, e: impl std::fmt::Display) -> CommandError {
    CommandError::Failed(format!("token cache {}: {e}", path.display()))
}

impl TokenCache {
    /// The cache in `dir` (made on first write).
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of one provider and client.
    pub fn file(&self, issuer_url: &str, client_id: &str) -> PathBuf {
        let mut hash = sha2::Sha256::new();
        hash.update(issuer_url.as_bytes());
        hash.update([0]);
        hash.update(client_id.as_bytes());
        let name = hex::encode(&hash.finalize()[..16]);
        self.dir.join(format!("{name}.json"))
    }

    /// Makes the folder (0700) when it is missing. An existing folder keeps its mode: it may
    /// be one the person chose with `--token-cache-dir`.
    fn ensure_dir(&self) -> Result<(), CommandError> {
        if self.dir.is_dir() {
            return Ok(());
        }
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .create(&self.dir)
            .map_err(|e| failed(&self.dir, e))?;
        #[cfg(unix)]
        std::fs::set_permissions(
            &self.dir,
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .map_err(|e| failed(&self.dir, e))?;
        Ok(())
    }

    /// Waits for the exclusive lock of one entry.
    pub async fn lock(&self, issuer_url: &str, client_id: &str) -> Result<CacheLock, CommandError> {
        self.ensure_dir()?;
        let mut path = self.file(issuer_url, client_id).into_os_string();
        path.push(".lock");
        let path = PathBuf::from(path);
        tokio::task::spawn_blocking(move || {
            let mut options = std::fs::OpenOptions::new();
            options.create(true).truncate(false).write(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let file = options.open(&path).map_err(|e| failed(&path, e))?;
            file.lock().map_err(|e| failed(&path, e))?;
            Ok(CacheLock { _file: file })
        })
        .await
        .map_err(|e| CommandError::Failed(format!("locking the token cache: {e}")))?
    }

    /// The entry of one provider and client; `None` when there is none, or when it cannot be
    /// read as one (it is then replaced by the next write).
    pub fn read(&self, issuer_url: &str, client_id: &str) -> Option<CachedTokens> {
        let text = std::fs::read(self.file(issuer_url, client_id)).ok()?;
        let tokens: CachedTokens = serde_json::from_slice(&text).ok()?;
        (tokens.issuer_url == issuer_url && tokens.client_id == client_id).then_some(tokens)
    }

    /// Writes an entry whole: a 0600 temporary file beside it, renamed over it.
    pub fn write(&self, tokens: &CachedTokens) -> Result<(), CommandError> {
        self.ensure_dir()?;
        let path = self.file(&tokens.issuer_url, &tokens.client_id);
        let text = serde_json::to_vec_pretty(tokens).expect("plain strings serialize");
        let mut file = tempfile::NamedTempFile::new_in(&self.dir).map_err(|e| failed(&path, e))?;
        #[cfg(unix)]
        std::fs::set_permissions(
            file.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .map_err(|e| failed(&path, e))?;
        file.write_all(&text).map_err(|e| failed(&path, e))?;
        file.as_file().sync_all().map_err(|e| failed(&path, e))?;
        file.persist(&path).map_err(|e| failed(&path, e.error))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(id: &str) -> CachedTokens {
        CachedTokens {
            issuer_url: "https://idp.example".to_owned(),
            client_id: "cli".to_owned(),
            id_token: id.to_owned(),
            refresh_token: Some("r".to_owned()),
            expiry: 1,
        }
    }

    #[test]
    fn entries_round_trip_and_are_private() {
        let root = tempfile::tempdir().unwrap();
        let cache = TokenCache::new(root.path().join("a/b"));
        assert!(cache.read("https://idp.example", "cli").is_none());
        cache.write(&tokens("one")).unwrap();
        cache.write(&tokens("two")).unwrap();
        let read = cache.read("https://idp.example", "cli").unwrap();
        assert_eq!(read.id_token, "two");
        // Another client of the same provider has its own entry.
        assert!(cache.read("https://idp.example", "other").is_none());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(cache.dir()), 0o700);
            assert_eq!(mode(&cache.file("https://idp.example", "cli")), 0o600);
        }
        // Only the entry is left: no temporary files.
        assert_eq!(std::fs::read_dir(cache.dir()).unwrap().count(), 1);
    }

    #[test]
    fn a_damaged_entry_reads_as_none() {
        let root = tempfile::tempdir().unwrap();
        let cache = TokenCache::new(root.path().to_path_buf());
        std::fs::write(cache.file("https://idp.example", "cli"), b"{not json").unwrap();
        assert!(cache.read("https://idp.example", "cli").is_none());
    }
}
