//! API tokens. Only the SHA-256 hash of a token is stored.

use sqlx::FromRow;

use super::{Db, Result, StorageError, conflict};
use crate::records::auth::{Grant, Role, Token};

#[derive(FromRow)]
struct TokenRow {
    id: String,
    name: String,
    role: String,
    grants: String,
    impersonate_user: Option<String>,
    impersonate_groups: Option<String>,
    created_at: i64,
    expires_at: Option<i64>,
}

macro_rules! token_columns {
    () => {
        "id, name, role, grants, impersonate_user, impersonate_groups, created_at, expires_at"
    };
}

impl TryFrom<TokenRow> for Token {
    type Error = StorageError;

    fn try_from(row: TokenRow) -> Result<Self> {
        let corrupt =
            |what: &str| StorageError::Corrupt(format!("api_tokens.{what} of {}", row.id));
        let role: Role = row.role.parse().map_err(|_| corrupt("role"))?;
        let grants: Vec<Grant> =
            serde_json::from_str(&row.grants).map_err(|_| corrupt("grants"))?;
        let impersonate_groups: Vec<String> = match &row.impersonate_groups {
            Some(groups) => {
                serde_json::from_str(groups).map_err(|_| corrupt("impersonate_groups"))?
            }
            None => Vec::new(),
        };
        Ok(Token {
            id: row.id,
            name: row.name,
            role,
            grants,
            impersonate_user: row.impersonate_user,
            impersonate_groups,
            created_at: row.created_at,
            expires_at: row.expires_at,
        })
    }
}

impl Db {
    /// Stores a new token under `hash`; a duplicate name or id is a conflict.
    pub async fn insert_token(&self, token: &Token, hash: &str) -> Result<()> {
        let name = token.name.clone();
        sqlx::query(
            "INSERT INTO api_tokens (id, name, role, grants, token_hash, impersonate_user, \
             impersonate_groups, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&token.id)
        .bind(&token.name)
        .bind(token.role.as_str())
        .bind(serde_json::to_string(&token.grants).expect("grants serialize"))
        .bind(hash)
        .bind(&token.impersonate_user)
        .bind(groups_json(&token.impersonate_groups))
        .bind(token.created_at)
        .bind(token.expires_at)
        .execute(self.pool())
        .await
        .map_err(conflict(|| format!("a token named `{name}`")))?;
        Ok(())
    }

    /// Inserts the token, or, when its id exists, replaces its hash (the bootstrap admin token
    /// follows `--admin-token`). Returns whether a row was inserted.
    pub async fn upsert_token_hash(&self, token: &Token, hash: &str) -> Result<bool> {
        let updated = sqlx::query("UPDATE api_tokens SET token_hash = $1 WHERE id = $2")
            .bind(hash)
            .bind(&token.id)
            .execute(self.pool())
            .await?;
        if updated.rows_affected() == 1 {
            return Ok(false);
        }
        match self.insert_token(token, hash).await {
            Ok(()) => Ok(true),
            // A concurrent start inserted it; make its hash ours.
            Err(StorageError::Conflict(_)) => {
                sqlx::query("UPDATE api_tokens SET token_hash = $1 WHERE id = $2")
                    .bind(hash)
                    .bind(&token.id)
                    .execute(self.pool())
                    .await?;
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Inserts the token unless its id exists; returns whether this call inserted it.
    pub async fn insert_token_if_absent(&self, token: &Token, hash: &str) -> Result<bool> {
        if self.token(&token.id).await?.is_some() {
            return Ok(false);
        }
        match self.insert_token(token, hash).await {
            Ok(()) => Ok(true),
            Err(StorageError::Conflict(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The token whose hash is `hash`.
    pub async fn token_by_hash(&self, hash: &str) -> Result<Option<Token>> {
        const SQL: &str = concat!(
            "SELECT ",
            token_columns!(),
            " FROM api_tokens WHERE token_hash = $1"
        );
        let row: Option<TokenRow> = sqlx::query_as(SQL)
            .bind(hash)
            .fetch_optional(self.pool())
            .await?;
        row.map(Token::try_from).transpose()
    }

    /// One token by id.
    pub async fn token(&self, id: &str) -> Result<Option<Token>> {
        const SQL: &str = concat!(
            "SELECT ",
            token_columns!(),
            " FROM api_tokens WHERE id = $1"
        );
        let row: Option<TokenRow> = sqlx::query_as(SQL)
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.map(Token::try_from).transpose()
    }

    /// Every token, oldest first.
    pub async fn tokens(&self) -> Result<Vec<Token>> {
        const SQL: &str = concat!(
            "SELECT ",
            token_columns!(),
            " FROM api_tokens ORDER BY created_at, id"
        );
        let rows: Vec<TokenRow> = sqlx::query_as(SQL).fetch_all(self.pool()).await?;
        rows.into_iter().map(Token::try_from).collect()
    }

    /// Deletes a token; returns whether it existed.
    pub async fn delete_token(&self, id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM api_tokens WHERE id = $1")
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }
}

fn groups_json(groups: &[String]) -> Option<String> {
    (!groups.is_empty()).then(|| serde_json::to_string(groups).expect("strings serialize"))
}
