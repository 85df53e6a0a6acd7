//! Webhooks: a signed JSON `POST` of each event to a URL the admin configured.
//!
//! Body: the [`ClusterEvent`] plus `delivery` (one id for all attempts of a delivery), `attempt`
//! and `webhookId`. Headers: `X-Portico-Signature: sha256=<hex HMAC-SHA256 of the body with the
//! webhook's secret>`, `X-Portico-Event`, `X-Portico-Delivery`. A 2xx answer delivers; network
//! errors, timeouts, 5xx and 429 are retried with exponential backoff; any other answer fails
//! at once. Every delivery is logged in `webhook_deliveries`.
//!
//! The URL is not restricted beyond http(s): a webhook reaches wherever the admin points it,
//! internal addresses included. Redirects are not followed.

use std::sync::Arc;

use futures::future::BoxFuture;
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::{DeliveryOptions, HookError, HookSink, Outcome, Planned, Result};
use crate::clock::now_millis;
use crate::cluster::ClusterEvent;
use crate::crypto::SecretKey;
use crate::ids::random_id;
use crate::records::hooks::{DeliveryRecord, DeliveryState, EventKind, Webhook};
use crate::storage::Db;

/// Requests in flight at once across all webhooks; more wait their turn.
const MAX_CONCURRENT_REQUESTS: usize = 32;
/// Deliveries kept in the log per webhook.
const KEEP_DELIVERIES: i64 = 200;
/// How much of a failed answer's body goes into the delivery log.
const ERROR_BODY_SNIPPET: usize = 200;

impl Webhook {
    /// Whether the webhook subscribes to `event` (its scope aside).
    pub fn wants(&self, event: &ClusterEvent) -> bool {
        self.enabled
            && self.events.contains(&EventKind::from(event.kind))
            && self
                .clusters
                .as_ref()
                .is_none_or(|ids| ids.contains(&event.cluster_id))
    }

    /// Seals `secret` for the webhook with id `id`.
    pub fn seal_secret(key: &SecretKey, id: &str, secret: &str) -> Vec<u8> {
        key.seal(&secret_context(id), secret.as_bytes())
    }

    /// The signing secret.
    pub fn open_secret(&self, key: &SecretKey) -> Result<Vec<u8>> {
        key.open(&secret_context(&self.id), &self.sealed_secret)
            .map_err(|e| HookError::Sealed(self.id.clone(), e))
    }
}

/// Associated data of a sealed secret: binds it to its webhook.
fn secret_context(id: &str) -> Vec<u8> {
    format!("webhook:{id}").into_bytes()
}

/// `sha256=<hex HMAC-SHA256 of body with secret>`, the `X-Portico-Signature` value.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// What one delivery sends: its event kind and cluster (for the `X-Portico-Event` header and
/// the delivery log), and the JSON object whose fields the body carries beside `delivery`,
/// `attempt` and `webhookId`. Cluster events and job-run notifications both go through it.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub event: EventKind,
    /// The cluster it is about (`*` when about several).
    pub cluster_id: String,
    /// The replica that sends it.
    pub instance_id: String,
    /// A JSON object.
    pub body: serde_json::Value,
}

impl From<&ClusterEvent> for Message {
    fn from(event: &ClusterEvent) -> Self {
        Self {
            event: event.kind.into(),
            cluster_id: event.cluster_id.clone(),
            instance_id: event.instance_id.clone(),
            body: serde_json::to_value(event).expect("a cluster event serializes"),
        }
    }
}

/// What the receiver gets.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Payload<'a> {
    delivery: &'a str,
    attempt: u32,
    webhook_id: &'a str,
    #[serde(flatten)]
    body: &'a serde_json::Value,
}

/// Webhooks as a [`HookSink`].
#[derive(Debug, Clone)]
pub struct WebhookSink {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    db: Db,
    key: SecretKey,
    options: DeliveryOptions,
    client: reqwest::Client,
    permits: Semaphore,
    shutdown: CancellationToken,
}

impl WebhookSink {
    pub fn new(
        db: Db,
        key: SecretKey,
        options: DeliveryOptions,
        shutdown: CancellationToken,
    ) -> Result<Self> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(options.timeout)
            .connect_timeout(options.timeout)
            .user_agent(concat!("portico-webhook/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| HookError::Client(e.to_string()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                db,
                key,
                options: DeliveryOptions {
                    max_attempts: options.max_attempts.max(1),
                    ..options
                },
                client,
                permits: Semaphore::new(MAX_CONCURRENT_REQUESTS),
                shutdown,
            }),
        })
    }
}

impl WebhookSink {
    /// Delivers `message` to `webhook` now: signed, retried and logged like cluster events
    /// (job-run notifications use it).
    pub async fn send(&self, webhook: Webhook, message: Message) -> Outcome {
        self.inner.clone().deliver(webhook, message).await
    }
}

impl HookSink for WebhookSink {
    fn kind(&self) -> &'static str {
        "webhook"
    }

    fn plan<'a>(&'a self, event: &'a ClusterEvent) -> BoxFuture<'a, Result<Vec<Planned>>> {
        Box::pin(async move {
            let webhooks = self.inner.db.webhooks().await?;
            Ok(webhooks
                .into_iter()
                .filter(|w| w.wants(event))
                .map(|webhook| Planned {
                    hook: webhook.name.clone(),
                    scope: webhook.scope,
                    run: Box::pin(self.inner.clone().deliver(webhook, Message::from(event))),
                })
                .collect())
        })
    }
}

/// How one attempt went.
enum Attempt {
    Answered { status: u16, snippet: String },
    Error(String),
}

impl Inner {
    async fn deliver(self: Arc<Self>, webhook: Webhook, event: Message) -> Outcome {
        let now = now_millis();
        let mut record = DeliveryRecord {
            id: random_id(),
            webhook_id: webhook.id.clone(),
            event: event.event,
            cluster_id: event.cluster_id.clone(),
            instance_id: event.instance_id.clone(),
            attempts: 0,
            state: DeliveryState::Pending,
            last_status: None,
            last_error: None,
            created_at: now,
            updated_at: now,
            finished_at: None,
        };
        if let Err(e) = self.db.insert_delivery(&record).await {
            tracing::warn!(webhook = %webhook.name, error = %e, "cannot log a webhook delivery");
        }
        let secret = match webhook.open_secret(&self.key) {
            Ok(secret) => secret,
            Err(e) => {
                tracing::error!(webhook = %webhook.name, error = %e, "webhook not delivered");
                record.last_error = Some(e.to_string());
                return self.finish(&webhook, record, DeliveryState::Failed).await;
            }
        };
        let max = self.options.max_attempts;
        for attempt in 1..=max {
            if attempt > 1 {
                let wait = self.options.backoff(attempt - 1);
                tokio::select! {
                    () = self.shutdown.cancelled() => return self.stopped(&webhook, record).await,
                    () = tokio::time::sleep(wait) => {}
                }
            }
            let result = tokio::select! {
                () = self.shutdown.cancelled() => return self.stopped(&webhook, record).await,
                result = self.attempt(&webhook, &secret, &event, &record.id, attempt) => result,
            };
            record.attempts = attempt;
            record.updated_at = now_millis();
            let retry = match result {
                Attempt::Answered { status, .. } if (200..300).contains(&status) => {
                    record.last_status = Some(status);
                    record.last_error = None;
                    tracing::debug!(webhook = %webhook.name, attempt, status, "webhook delivered");
                    return self
                        .finish(&webhook, record, DeliveryState::Delivered)
                        .await;
                }
                Attempt::Answered { status, snippet } => {
                    record.last_status = Some(status);
                    record.last_error = Some(if snippet.is_empty() {
                        format!("HTTP {status}")
                    } else {
                        format!("HTTP {status}: {snippet}")
                    });
                    status >= 500 || status == 429
                }
                Attempt::Error(message) => {
                    record.last_status = None;
                    record.last_error = Some(message);
                    true
                }
            };
            tracing::warn!(
                webhook = %webhook.name,
                cluster = %event.cluster_id,
                attempt,
                of = max,
                error = record.last_error.as_deref().unwrap_or_default(),
                "webhook attempt failed"
            );
            if !retry || attempt == max {
                break;
            }
            if let Err(e) = self.db.update_delivery(&record).await {
                tracing::warn!(webhook = %webhook.name, error = %e, "cannot log a webhook delivery");
            }
        }
        self.finish(&webhook, record, DeliveryState::Failed).await
    }

    /// One POST, within the request timeout.
    async fn attempt(
        &self,
        webhook: &Webhook,
        secret: &[u8],
        event: &Message,
        delivery: &str,
        attempt: u32,
    ) -> Attempt {
        let Ok(_permit) = self.permits.acquire().await else {
            return Attempt::Error("the gateway is stopping".to_owned());
        };
        let body = serde_json::to_vec(&Payload {
            delivery,
            attempt,
            webhook_id: &webhook.id,
            body: &event.body,
        })
        .expect("the payload serializes");
        let sent = self
            .client
            .post(&webhook.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("x-portico-signature", signature(secret, &body))
            .header("x-portico-event", event.event.as_str())
            .header("x-portico-delivery", delivery)
            .body(body)
            .send()
            .await;
        match sent {
            Ok(mut response) => {
                let status = response.status().as_u16();
                let mut snippet = Vec::new();
                if !response.status().is_success() {
                    while snippet.len() < ERROR_BODY_SNIPPET {
                        match response.chunk().await {
                            Ok(Some(chunk)) => snippet.extend_from_slice(&chunk),
                            _ => break,
                        }
                    }
                }
                let snippet: String = String::from_utf8_lossy(&snippet)
                    .chars()
                    .take(ERROR_BODY_SNIPPET)
                    .collect();
                Attempt::Answered {
                    status,
                    snippet: snippet.trim().to_owned(),
                }
            }
            Err(e) if e.is_timeout() => Attempt::Error(format!(
                "no answer within {} ms",
                self.options.timeout.as_millis()
            )),
            Err(e) => Attempt::Error(crate::cluster::upstream::error_chain(&e)),
        }
    }

    async fn stopped(&self, webhook: &Webhook, mut record: DeliveryRecord) -> Outcome {
        record.last_error = Some("the gateway stopped before the delivery completed".to_owned());
        self.finish(webhook, record, DeliveryState::Failed).await;
        Outcome::Cancelled
    }

    /// Records the final state; prunes the webhook's old deliveries.
    async fn finish(
        &self,
        webhook: &Webhook,
        mut record: DeliveryRecord,
        state: DeliveryState,
    ) -> Outcome {
        let now = now_millis();
        record.state = state;
        record.updated_at = now;
        record.finished_at = Some(now);
        if let Err(e) = self.db.update_delivery(&record).await {
            tracing::warn!(webhook = %webhook.name, error = %e, "cannot log a webhook delivery");
        }
        if let Err(e) = self.db.prune_deliveries(&webhook.id, KEEP_DELIVERIES).await {
            tracing::debug!(webhook = %webhook.name, error = %e, "cannot prune deliveries");
        }
        if state == DeliveryState::Delivered {
            return Outcome::Delivered;
        }
        tracing::warn!(
            webhook = %webhook.name,
            cluster = %record.cluster_id,
            attempts = record.attempts,
            error = record.last_error.as_deref().unwrap_or_default(),
            "webhook delivery failed"
        );
        Outcome::Failed
    }
}
