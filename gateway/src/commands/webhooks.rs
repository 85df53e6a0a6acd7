//! `portico webhook …` through the admin API.

use reqwest::Method;
use serde_json::{Value, json};

use super::clusters::deleted;
use super::output::{Output, fields, items, list_or_dash, shown, table, time, yes_no};
use super::{CommandError, GatewayClient};
use crate::cli::{WebhookCommand, WebhookCreateArgs, WebhookFields, WebhookUpdateArgs};

/// Runs one `portico webhook` subcommand.
pub async fn webhook(command: &WebhookCommand) -> Result<Output, CommandError> {
    match command {
        WebhookCommand::Create(args) => create(args).await,
        WebhookCommand::List(args) => {
            let client = GatewayClient::new(&args.gateway)?;
            let hooks = client
                .json(Method::GET, client.url(&["webhooks"]), None)
                .await?;
            let rows = items(&hooks)
                .iter()
                .map(|w| {
                    vec![
                        shown(&w["id"]),
                        shown(&w["name"]),
                        shown(&w["url"]),
                        list_or_dash(&w["events"]),
                        shown(&w["scope"]),
                        clusters(&w["clusters"]),
                        yes_no(&w["enabled"]),
                    ]
                })
                .collect();
            let text = table(
                &[
                    "ID", "NAME", "URL", "EVENTS", "SCOPE", "CLUSTERS", "ENABLED",
                ],
                rows,
            );
            Ok(Output::new(hooks, text, args.output))
        }
        WebhookCommand::Get(args) => {
            let client = GatewayClient::new(&args.remote.gateway)?;
            let (_, hook) = client.find("webhooks", &args.id).await?;
            let text = webhook_fields(&hook);
            Ok(Output::new(hook, text, args.remote.output))
        }
        WebhookCommand::Update(args) => update(args).await,
        WebhookCommand::Delete(args) => {
            let client = GatewayClient::new(&args.remote.gateway)?;
            let (id, hook) = client.find("webhooks", &args.id).await?;
            client
                .send(Method::DELETE, client.url(&["webhooks", &id]), None)
                .await?;
            Ok(deleted(
                "webhook",
                &id,
                &shown(&hook["name"]),
                args.remote.output,
            ))
        }
        WebhookCommand::Deliveries(args) => {
            let client = GatewayClient::new(&args.remote.gateway)?;
            let (id, _) = client.find("webhooks", &args.id).await?;
            let mut url = client.url(&["webhooks", &id, "deliveries"]);
            if let Some(limit) = args.limit {
                url.set_query(Some(&format!("limit={limit}")));
            }
            let deliveries = client.json(Method::GET, url, None).await?;
            let rows = items(&deliveries)
                .iter()
                .map(|d| {
                    vec![
                        shown(&d["id"]),
                        shown(&d["event"]),
                        shown(&d["clusterId"]),
                        shown(&d["state"]),
                        shown(&d["attempts"]),
                        shown(&d["lastStatus"]),
                        time(&d["createdAt"]),
                        shown(&d["lastError"]),
                    ]
                })
                .collect();
            let text = table(
                &[
                    "ID", "EVENT", "CLUSTER", "STATE", "ATTEMPTS", "STATUS", "CREATED", "ERROR",
                ],
                rows,
            );
            Ok(Output::new(deliveries, text, args.remote.output))
        }
    }
}

/// `all`, or the cluster ids.
fn clusters(value: &Value) -> String {
    if value.as_array().is_none_or(Vec::is_empty) {
        "all".to_owned()
    } else {
        list_or_dash(value)
    }
}

fn webhook_fields(w: &Value) -> String {
    fields(&[
        ("id", shown(&w["id"])),
        ("name", shown(&w["name"])),
        ("url", shown(&w["url"])),
        ("events", list_or_dash(&w["events"])),
        ("scope", shown(&w["scope"])),
        ("clusters", clusters(&w["clusters"])),
        ("enabled", yes_no(&w["enabled"])),
        ("created", time(&w["createdAt"])),
        ("updated", time(&w["updatedAt"])),
    ])
}

/// The shared fields of a create or update body.
fn add_fields(body: &mut Value, fields: &WebhookFields) {
    if let Some(secret) = &fields.secret {
        body["secret"] = json!(secret);
    }
    if !fields.events.is_empty() {
        body["events"] = json!(fields.events);
    }
    if let Some(scope) = &fields.scope {
        body["scope"] = json!(scope);
    }
    if !fields.clusters.is_empty() {
        body["clusters"] = json!(fields.clusters);
    }
}

async fn create(args: &WebhookCreateArgs) -> Result<Output, CommandError> {
    if args.fields.secret.is_none() {
        return Err(CommandError::Usage(
            "a webhook needs --secret (or PORTICO_WEBHOOK_SECRET): receivers check its \
             signature with it"
                .to_owned(),
        ));
    }
    let mut body = json!({"name": args.name, "url": args.url, "enabled": !args.disabled});
    add_fields(&mut body, &args.fields);
    let client = GatewayClient::new(&args.remote.gateway)?;
    let hook = client
        .json(Method::POST, client.url(&["webhooks"]), Some(&body))
        .await?;
    let text = webhook_fields(&hook);
    Ok(Output::new(hook, text, args.remote.output))
}

async fn update(args: &WebhookUpdateArgs) -> Result<Output, CommandError> {
    let mut body = json!({});
    if let Some(name) = &args.name {
        body["name"] = json!(name);
    }
    if let Some(url) = &args.url {
        body["url"] = json!(url);
    }
    add_fields(&mut body, &args.fields);
    if args.all_clusters {
        body["clusters"] = Value::Null;
    }
    if args.enable || args.disable {
        body["enabled"] = json!(args.enable);
    }
    if body.as_object().is_none_or(serde_json::Map::is_empty) {
        return Err(CommandError::Usage("nothing to change".to_owned()));
    }
    let client = GatewayClient::new(&args.remote.gateway)?;
    let (id, _) = client.find("webhooks", &args.id).await?;
    let hook = client
        .json(Method::PUT, client.url(&["webhooks", &id]), Some(&body))
        .await?;
    let text = webhook_fields(&hook);
    Ok(Output::new(hook, text, args.remote.output))
}
