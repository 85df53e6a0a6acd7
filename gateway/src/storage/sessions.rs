//! Console sessions, by the hash of their id.

use sqlx::FromRow;

use super::{Db, Result, StorageError};
use crate::records::console::{ConsoleSession, SessionSubject};

#[derive(FromRow)]
struct SessionRow {
    id_hash: String,
    kind: String,
    token_id: Option<String>,
    username: Option<String>,
    groups_json: Option<String>,
    identity_expires_at: Option<i64>,
    sealed_secret: Option<Vec<u8>>,
    csrf: String,
    created_at: i64,
    expires_at: i64,
    last_seen_at: i64,
}

impl TryFrom<SessionRow> for ConsoleSession {
    type Error = StorageError;

    fn try_from(row: SessionRow) -> Result<Self> {
        let corrupt = |what: &str| StorageError::Corrupt(format!("console_sessions.{what}"));
        let subject = match (row.kind.as_str(), row.token_id, row.username) {
            ("token", Some(token_id), _) => SessionSubject::Token { token_id },
            ("oidc", _, Some(username)) => SessionSubject::Person {
                username,
                groups: match &row.groups_json {
                    Some(json) => serde_json::from_str(json).map_err(|_| corrupt("groups_json"))?,
                    None => Vec::new(),
                },
                identity_expires_at: row
                    .identity_expires_at
                    .ok_or_else(|| corrupt("identity_expires_at"))?,
            },
            _ => return Err(corrupt("kind")),
        };
        Ok(ConsoleSession {
            id_hash: row.id_hash,
            subject,
            sealed_secret: row.sealed_secret,
            csrf: row.csrf,
            created_at: row.created_at,
            expires_at: row.expires_at,
            last_seen_at: row.last_seen_at,
        })
    }
}

impl Db {
    pub async fn insert_session(&self, session: &ConsoleSession) -> Result<()> {
        let (kind, token_id, username, groups, identity_expires_at) = match &session.subject {
            SessionSubject::Token { token_id } => {
                ("token", Some(token_id.as_str()), None, None, None)
            }
            SessionSubject::Person {
                username,
                groups,
                identity_expires_at,
            } => (
                "oidc",
                None,
                Some(username.as_str()),
                Some(serde_json::to_string(groups).expect("strings serialize")),
                Some(*identity_expires_at),
            ),
        };
        sqlx::query(
            "INSERT INTO console_sessions (id_hash, kind, token_id, username, groups_json, \
             identity_expires_at, sealed_secret, csrf, created_at, expires_at, last_seen_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&session.id_hash)
        .bind(kind)
        .bind(token_id)
        .bind(username)
        .bind(groups)
        .bind(identity_expires_at)
        .bind(&session.sealed_secret)
        .bind(&session.csrf)
        .bind(session.created_at)
        .bind(session.expires_at)
        .bind(session.last_seen_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The session whose id hashes to `id_hash`, if it exists (expired ones included: the
    /// caller judges expiry).
    pub async fn session(&self, id_hash: &str) -> Result<Option<ConsoleSession>> {
        let row: Option<SessionRow> = sqlx::query_as(
            "SELECT id_hash, kind, token_id, username, groups_json, identity_expires_at, \
             sealed_secret, csrf, created_at, expires_at, last_seen_at FROM console_sessions \
             WHERE id_hash = $1",
        )
        .bind(id_hash)
        .fetch_optional(self.pool())
        .await?;
        row.map(ConsoleSession::try_from).transpose()
    }

    /// Records activity (idle expiry counts from here).
    pub async fn touch_session(&self, id_hash: &str, at: i64) -> Result<()> {
        sqlx::query("UPDATE console_sessions SET last_seen_at = $1 WHERE id_hash = $2")
            .bind(at)
            .bind(id_hash)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Stores a person's renewed identity, if the session still holds the identity that
    /// expired at `renewed_from` (another request may have renewed it first): returns whether
    /// it did.
    pub async fn renew_person_session(
        &self,
        id_hash: &str,
        renewed_from: i64,
        groups: &[String],
        identity_expires_at: i64,
        sealed_secret: Option<&[u8]>,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE console_sessions SET groups_json = $1, identity_expires_at = $2, \
             sealed_secret = $3 WHERE id_hash = $4 AND kind = 'oidc' \
             AND identity_expires_at = $5",
        )
        .bind(serde_json::to_string(groups).expect("strings serialize"))
        .bind(identity_expires_at)
        .bind(sealed_secret)
        .bind(id_hash)
        .bind(renewed_from)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn delete_session(&self, id_hash: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM console_sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Ends every session of a token (it was revoked).
    pub async fn delete_token_sessions(&self, token_id: &str) -> Result<u64> {
        let done = sqlx::query("DELETE FROM console_sessions WHERE token_id = $1")
            .bind(token_id)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected())
    }

    /// Deletes sessions past their absolute end or idle since before `idle_before`.
    pub async fn delete_expired_sessions(&self, now: i64, idle_before: i64) -> Result<u64> {
        let done =
            sqlx::query("DELETE FROM console_sessions WHERE expires_at <= $1 OR last_seen_at < $2")
                .bind(now)
                .bind(idle_before)
                .execute(self.pool())
                .await?;
        Ok(done.rows_affected())
    }
}
