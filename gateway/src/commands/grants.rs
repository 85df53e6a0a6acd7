//! `portico grant …`: grants for people and groups from the identity provider, through the
//! admin API.

use reqwest::Method;
use serde_json::{Value, json};

use super::clusters::deleted;
use super::output::{Output, fields, items, shown, table, time};
use super::{CommandError, GatewayClient};
use crate::cli::{GrantCommand, GrantCreateArgs};

/// Runs one `portico grant` subcommand.
pub async fn grant(command: &GrantCommand) -> Result<Output, CommandError> {
    match command {
        GrantCommand::List(args) => {
            let client = GatewayClient::new(&args.gateway)?;
            let grants = client
                .json(Method::GET, client.url(&["grants"]), None)
                .await?;
            let rows = items(&grants)
                .iter()
                .map(|g| {
                    vec![
                        shown(&g["id"]),
                        subject(g),
                        clusters(g),
                        access(g),
                        time(&g["createdAt"]),
                    ]
                })
                .collect();
            let text = table(&["ID", "SUBJECT", "CLUSTERS", "ACCESS", "CREATED"], rows);
            Ok(Output::new(grants, text, args.output))
        }
        GrantCommand::Create(args) => create(args).await,
        GrantCommand::Delete(args) => {
            let client = GatewayClient::new(&args.remote.gateway)?;
            client
                .send(Method::DELETE, client.url(&["grants", &args.id]), None)
                .await?;
            Ok(deleted("grant", &args.id, &args.id, args.remote.output))
        }
    }
}

/// `group:devs`, `user:alice@example.com`.
fn subject(g: &Value) -> String {
    format!(
        "{}:{}",
        shown(&g["subject"]["kind"]),
        shown(&g["subject"]["name"])
    )
}

/// The cluster id or `*`, or the selector.
fn clusters(g: &Value) -> String {
    match g["selector"].as_str() {
        Some(selector) => format!("selector {selector}"),
        None => shown(&g["cluster"]),
    }
}

/// `write`, `read+impersonate`.
fn access(g: &Value) -> String {
    let impersonate = if g["impersonate"] == true {
        "+impersonate"
    } else {
        ""
    };
    format!("{}{impersonate}", shown(&g["access"]))
}

/// The request body of `portico grant create`.
fn body(args: &GrantCreateArgs) -> Value {
    let subject = match (&args.user, &args.group) {
        (Some(user), _) => json!({"kind": "user", "name": user}),
        (None, group) => json!({"kind": "group", "name": group}),
    };
    let mut body = json!({
        "subject": subject,
        "access": args.access,
        "impersonate": args.impersonate,
    });
    match (&args.cluster, &args.selector) {
        (Some(cluster), _) => body["cluster"] = json!(cluster),
        (None, selector) => body["selector"] = json!(selector),
    }
    body
}

async fn create(args: &GrantCreateArgs) -> Result<Output, CommandError> {
    let client = GatewayClient::new(&args.remote.gateway)?;
    let grant = client
        .json(Method::POST, client.url(&["grants"]), Some(&body(args)))
        .await?;
    let text = fields(&[
        ("id", shown(&grant["id"])),
        ("subject", subject(&grant)),
        ("clusters", clusters(&grant)),
        ("access", access(&grant)),
        ("created", time(&grant["createdAt"])),
    ]);
    Ok(Output::new(grant, text, args.remote.output))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn parsed(args: &[&str]) -> Result<GrantCreateArgs, clap::Error> {
        let argv = ["portico", "grant", "create"].iter().chain(args);
        match Cli::try_parse_from(argv)?.command {
            Command::Grant(GrantCommand::Create(args)) => Ok(args),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn create_sends_one_subject_and_one_cluster_scope() {
        let args = parsed(&["--group", "devs", "--cluster", "dev", "--access", "write"]).unwrap();
        assert_eq!(
            body(&args),
            json!({"subject": {"kind": "group", "name": "devs"}, "cluster": "dev",
                   "access": "write", "impersonate": false})
        );
        let args = parsed(&[
            "--user",
            "alice@example.com",
            "--selector",
            "env=prod",
            "--access",
            "read",
            "--impersonate",
        ])
        .unwrap();
        assert_eq!(
            body(&args),
            json!({"subject": {"kind": "user", "name": "alice@example.com"},
                   "selector": "env=prod", "access": "read", "impersonate": true})
        );
        for bad in [
            &["--cluster", "dev", "--access", "read"][..],
            &[
                "--user",
                "a",
                "--group",
                "b",
                "--cluster",
                "dev",
                "--access",
                "read",
            ],
            &["--user", "a", "--access", "read"],
            &[
                "--user",
                "a",
                "--cluster",
                "x",
                "--selector",
                "e=p",
                "--access",
                "read",
            ],
            &["--user", "a", "--cluster", "x", "--access", "root"],
        ] {
            assert!(parsed(bad).is_err(), "{bad:?}");
        }
    }
}
