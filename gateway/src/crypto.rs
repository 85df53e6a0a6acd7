//! Encryption of cluster credentials at rest (AES-256-GCM) and hashing of API tokens.
//!
//! A sealed value is `version (1) ‖ nonce (12) ‖ ciphertext+tag`, and the associated data binds
//! it to its row (the cluster id), so a ciphertext copied to another row fails to open instead of
//! lending its credentials to another cluster.

use std::fmt;
use std::io::Write;
use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rand::RngCore;
use sha2::{Digest, Sha256};

const SEALED_VERSION: u8 = 1;
const NONCE_LEN: usize = 12;

/// A secret key that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Neither base64 nor hex of 32 bytes.
    #[error(
        "expected 32 bytes as base64 (44 characters) or hex (64 characters), got {0} characters \
         that decode to neither"
    )]
    Format(usize),
    /// The key file could not be read or written.
    #[error("secret key file `{path}`: {source}")]
    File {
        /// The key file.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// A sealed value that does not open.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Too short or of an unknown version: not something this gateway wrote.
    #[error("not a sealed value of this gateway (unknown format)")]
    Format,
    /// Authentication failed: another key, or the value was tampered with.
    #[error(
        "decryption failed: the secret key differs from the one the value was encrypted with, \
         or the value was altered"
    )]
    WrongKey,
}

/// The 256-bit key that encrypts credentials. Its `Debug` output never shows the key.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey([u8; 32]);

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

impl SecretKey {
    /// Decodes a key given as base64 (standard or URL-safe) or 64 hex digits.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let text = text.trim();
        let decoded = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(text).ok()
        } else {
            STANDARD
                .decode(text)
                .or_else(|_| URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')))
                .ok()
        };
        decoded
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
            .map(Self)
            .ok_or(KeyError::Format(text.len()))
    }

    /// A fresh random key.
    pub fn generate() -> Self {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        Self(key)
    }

    /// The key as base64, the form [`SecretKey::parse`] reads.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }

    /// Reads the key file, or creates it (mode 0600) with a fresh key when it does not exist.
    /// Returns the key and whether it was created.
    pub fn load_or_create(path: &Path) -> Result<(Self, bool), KeyError> {
        let file_error = |source| KeyError::File {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => {
                crate::files::tighten_file(path).map_err(file_error)?;
                return Ok((Self::parse(&text)?, false));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(file_error(e)),
        }
        let key = Self::generate();
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        match options.open(path) {
            Ok(mut file) => {
                // Exactly 0600 whatever the umask took away.
                crate::files::private_file(path).map_err(file_error)?;
                writeln!(file, "{}", key.to_base64()).map_err(file_error)?;
                file.sync_all().map_err(file_error)?;
                Ok((key, true))
            }
            // Another process created it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let text = std::fs::read_to_string(path).map_err(file_error)?;
                Ok((Self::parse(&text)?, false))
            }
            Err(e) => Err(file_error(e)),
        }
    }

    /// Encrypts `plaintext`, bound to `context` (e.g. the owning row's id).
    pub fn seal(&self, context: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let cipher = Aes256Gcm::new_from_slice(&self.0).expect("32-byte key");
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let ciphertext = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: context,
                },
            )
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        let mut sealed = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        sealed.push(SEALED_VERSION);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        sealed
    }

    /// Decrypts a value produced by [`SecretKey::seal`] with the same `context`.
    pub fn open(&self, context: &[u8], sealed: &[u8]) -> Result<Vec<u8>, OpenError> {
        if sealed.len() < 1 + NONCE_LEN + 16 || sealed[0] != SEALED_VERSION {
            return Err(OpenError::Format);
        }
        let (nonce, ciphertext) = sealed[1..].split_at(NONCE_LEN);
        let cipher = Aes256Gcm::new_from_slice(&self.0).expect("32-byte key");
        cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context,
                },
            )
            .map_err(|_| OpenError::WrongKey)
    }
}

/// SHA-256 of a token, hex. Tokens are 256-bit random strings, so a fast hash is enough: there
/// is nothing to brute-force.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A new API token: `pt_` and 32 random bytes in URL-safe base64.
pub fn generate_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("pt_{}", URL_SAFE_NO_PAD.encode(bytes))
}

#[cfg(test)]
mod tests;
