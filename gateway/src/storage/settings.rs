//! Deployment-wide key/value settings.

use super::{Db, Result};

impl Db {
    /// The value of a setting, if set.
    pub async fn setting(&self, key: &str) -> Result<Option<String>> {
        let value: Option<(String,)> = sqlx::query_as("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_optional(self.pool())
            .await?;
        Ok(value.map(|(v,)| v))
    }

    /// Stores a setting unless it exists; returns whether this call stored it. Safe when several
    /// replicas race: exactly one wins.
    pub async fn insert_setting_if_absent(&self, key: &str, value: &str) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(value)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
