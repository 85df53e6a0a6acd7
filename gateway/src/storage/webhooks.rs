//! Webhooks (their secrets sealed) and the log of their deliveries.

use sqlx::FromRow;

use super::{Db, Result, StorageError, conflict};
use crate::records::hooks::{DeliveryRecord, DeliveryState, EventKind, HookScope, Webhook};

#[derive(FromRow)]
struct WebhookRow {
    id: String,
    name: String,
    url: String,
    sealed_secret: Vec<u8>,
    events: String,
    scope: String,
    clusters: Option<String>,
    enabled: String,
    created_at: i64,
    updated_at: i64,
}

macro_rules! webhook_columns {
    () => {
        "id, name, url, sealed_secret, events, scope, clusters, enabled, created_at, updated_at"
    };
}

impl TryFrom<WebhookRow> for Webhook {
    type Error = StorageError;

    fn try_from(row: WebhookRow) -> Result<Self> {
        let corrupt = |what: &str| StorageError::Corrupt(format!("webhooks.{what} of {}", row.id));
        let events: Vec<EventKind> =
            serde_json::from_str(&row.events).map_err(|_| corrupt("events"))?;
        let scope = match row.scope.as_str() {
            "cluster" => HookScope::Cluster,
            "replica" => HookScope::Replica,
            _ => return Err(corrupt("scope")),
        };
        let clusters: Option<Vec<String>> = match &row.clusters {
            Some(text) => Some(serde_json::from_str(text).map_err(|_| corrupt("clusters"))?),
            None => None,
        };
        let enabled = match row.enabled.as_str() {
            "true" => true,
            "false" => false,
            _ => return Err(corrupt("enabled")),
        };
        Ok(Webhook {
            id: row.id,
            name: row.name,
            url: row.url,
            sealed_secret: row.sealed_secret,
            events,
            scope,
            clusters,
            enabled,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

#[derive(FromRow)]
struct DeliveryRow {
    id: String,
    webhook_id: String,
    event: String,
    cluster_id: String,
    instance_id: String,
    attempts: i64,
    state: String,
    last_status: Option<i64>,
    last_error: Option<String>,
    created_at: i64,
    updated_at: i64,
    finished_at: Option<i64>,
}

impl TryFrom<DeliveryRow> for DeliveryRecord {
    type Error = StorageError;

    fn try_from(row: DeliveryRow) -> Result<Self> {
        let corrupt =
            |what: &str| StorageError::Corrupt(format!("webhook_deliveries.{what} of {}", row.id));
        let event = match row.event.as_str() {
            "connected" => EventKind::Connected,
            "disconnected" => EventKind::Disconnected,
            "run.finished" => EventKind::RunFinished,
            _ => return Err(corrupt("event")),
        };
        let state = match row.state.as_str() {
            "pending" => DeliveryState::Pending,
            "delivered" => DeliveryState::Delivered,
            "failed" => DeliveryState::Failed,
            _ => return Err(corrupt("state")),
        };
        let attempts = u32::try_from(row.attempts).map_err(|_| corrupt("attempts"))?;
        Ok(DeliveryRecord {
            id: row.id,
            webhook_id: row.webhook_id,
            event,
            cluster_id: row.cluster_id,
            instance_id: row.instance_id,
            attempts,
            state,
            last_status: row.last_status.and_then(|s| u16::try_from(s).ok()),
            last_error: row.last_error,
            created_at: row.created_at,
            updated_at: row.updated_at,
            finished_at: row.finished_at,
        })
    }
}

fn scope_str(scope: HookScope) -> &'static str {
    match scope {
        HookScope::Cluster => "cluster",
        HookScope::Replica => "replica",
    }
}

fn flag(value: bool) -> &'static str {
    if value { "true" } else { "false" }
}

fn events_json(events: &[EventKind]) -> String {
    serde_json::to_string(events).expect("events serialize")
}

fn clusters_json(clusters: Option<&Vec<String>>) -> Option<String> {
    clusters.map(|ids| serde_json::to_string(ids).expect("strings serialize"))
}

impl Db {
    /// Stores a new webhook; a name in use is a conflict.
    pub async fn insert_webhook(&self, webhook: &Webhook) -> Result<()> {
        let name = webhook.name.clone();
        sqlx::query(
            "INSERT INTO webhooks (id, name, url, sealed_secret, events, scope, clusters, \
             enabled, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&webhook.id)
        .bind(&webhook.name)
        .bind(&webhook.url)
        .bind(&webhook.sealed_secret)
        .bind(events_json(&webhook.events))
        .bind(scope_str(webhook.scope))
        .bind(clusters_json(webhook.clusters.as_ref()))
        .bind(flag(webhook.enabled))
        .bind(webhook.created_at)
        .bind(webhook.updated_at)
        .execute(self.pool())
        .await
        .map_err(conflict(|| format!("a webhook named `{name}`")))?;
        Ok(())
    }

    /// Replaces a webhook's settings (not its id or creation time); returns whether it exists.
    pub async fn update_webhook(&self, webhook: &Webhook) -> Result<bool> {
        let name = webhook.name.clone();
        let done = sqlx::query(
            "UPDATE webhooks SET name = $2, url = $3, sealed_secret = $4, events = $5, \
             scope = $6, clusters = $7, enabled = $8, updated_at = $9 WHERE id = $1",
        )
        .bind(&webhook.id)
        .bind(&webhook.name)
        .bind(&webhook.url)
        .bind(&webhook.sealed_secret)
        .bind(events_json(&webhook.events))
        .bind(scope_str(webhook.scope))
        .bind(clusters_json(webhook.clusters.as_ref()))
        .bind(flag(webhook.enabled))
        .bind(webhook.updated_at)
        .execute(self.pool())
        .await
        .map_err(conflict(|| format!("a webhook named `{name}`")))?;
        Ok(done.rows_affected() == 1)
    }

    /// One webhook by id.
    pub async fn webhook(&self, id: &str) -> Result<Option<Webhook>> {
        const SQL: &str = concat!(
            "SELECT ",
            webhook_columns!(),
            " FROM webhooks WHERE id = $1"
        );
        let row: Option<WebhookRow> = sqlx::query_as(SQL)
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.map(Webhook::try_from).transpose()
    }

    /// Every webhook, by name.
    pub async fn webhooks(&self) -> Result<Vec<Webhook>> {
        const SQL: &str = concat!(
            "SELECT ",
            webhook_columns!(),
            " FROM webhooks ORDER BY name"
        );
        let rows: Vec<WebhookRow> = sqlx::query_as(SQL).fetch_all(self.pool()).await?;
        rows.into_iter().map(Webhook::try_from).collect()
    }

    /// Deletes a webhook and its delivery log; returns whether it existed.
    pub async fn delete_webhook(&self, id: &str) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM webhook_deliveries WHERE webhook_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("DELETE FROM webhooks WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// Logs a new delivery.
    pub async fn insert_delivery(&self, delivery: &DeliveryRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO webhook_deliveries (id, webhook_id, event, cluster_id, instance_id, \
             attempts, state, last_status, last_error, created_at, updated_at, finished_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(&delivery.id)
        .bind(&delivery.webhook_id)
        .bind(delivery.event.as_str())
        .bind(&delivery.cluster_id)
        .bind(&delivery.instance_id)
        .bind(i64::from(delivery.attempts))
        .bind(delivery.state.as_str())
        .bind(delivery.last_status.map(i64::from))
        .bind(&delivery.last_error)
        .bind(delivery.created_at)
        .bind(delivery.updated_at)
        .bind(delivery.finished_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Records a delivery's attempts and state.
    pub async fn update_delivery(&self, delivery: &DeliveryRecord) -> Result<()> {
        sqlx::query(
            "UPDATE webhook_deliveries SET attempts = $2, state = $3, last_status = $4, \
             last_error = $5, updated_at = $6, finished_at = $7 WHERE id = $1",
        )
        .bind(&delivery.id)
        .bind(i64::from(delivery.attempts))
        .bind(delivery.state.as_str())
        .bind(delivery.last_status.map(i64::from))
        .bind(&delivery.last_error)
        .bind(delivery.updated_at)
        .bind(delivery.finished_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// A webhook's deliveries, newest first.
    pub async fn deliveries(&self, webhook_id: &str, limit: i64) -> Result<Vec<DeliveryRecord>> {
        let rows: Vec<DeliveryRow> = sqlx::query_as(
            "SELECT id, webhook_id, event, cluster_id, instance_id, attempts, state, \
             last_status, last_error, created_at, updated_at, finished_at \
             FROM webhook_deliveries WHERE webhook_id = $1 \
             ORDER BY created_at DESC, id DESC LIMIT $2",
        )
        .bind(webhook_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter().map(DeliveryRecord::try_from).collect()
    }

    /// Keeps only the newest `keep` deliveries of a webhook.
    pub async fn prune_deliveries(&self, webhook_id: &str, keep: i64) -> Result<()> {
        sqlx::query(
            "DELETE FROM webhook_deliveries WHERE webhook_id = $1 AND id NOT IN \
             (SELECT id FROM webhook_deliveries WHERE webhook_id = $1 \
             ORDER BY created_at DESC, id DESC LIMIT $2)",
        )
        .bind(webhook_id)
        .bind(keep)
        .execute(self.pool())
        .await?;
        Ok(())
    }
}
