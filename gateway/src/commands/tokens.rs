//! `portico token …` through the admin API.

use reqwest::Method;
use serde_json::{Value, json};

use super::clusters::deleted;
use super::output::{Output, fields, items, list_or_dash, shown, table, time};
use super::{CommandError, GatewayClient};
use crate::cli::{TokenCommand, TokenCreateArgs};

/// Runs one `portico token` subcommand.
pub async fn token(command: &TokenCommand) -> Result<Output, CommandError> {
    match command {
        TokenCommand::Create(args) => create_token(args).await,
        TokenCommand::List(args) => {
            let client = GatewayClient::new(&args.gateway)?;
            let tokens = client
                .json(Method::GET, client.url(&["tokens"]), None)
                .await?;
            let rows = items(&tokens)
                .iter()
                .map(|t| {
                    vec![
                        shown(&t["id"]),
                        shown(&t["name"]),
                        shown(&t["role"]),
                        grants(&t["grants"]),
                        time(&t["expiresAt"]),
                        time(&t["createdAt"]),
                    ]
                })
                .collect();
            let text = table(
                &["ID", "NAME", "ROLE", "GRANTS", "EXPIRES", "CREATED"],
                rows,
            );
            Ok(Output::new(tokens, text, args.output))
        }
        TokenCommand::Get(args) => {
            let client = GatewayClient::new(&args.remote.gateway)?;
            let (_, token) = client.find("tokens", &args.id).await?;
            let text = token_fields(&token);
            Ok(Output::new(token, text, args.remote.output))
        }
        TokenCommand::Revoke(args) => {
            let client = GatewayClient::new(&args.remote.gateway)?;
            let (id, token) = client.find("tokens", &args.id).await?;
            client
                .send(Method::DELETE, client.url(&["tokens", &id]), None)
                .await?;
            let name = shown(&token["name"]);
            Ok(deleted("token", &id, &name, args.remote.output))
        }
    }
}

/// `dev=read,*=write+impersonate`.
fn grants(value: &Value) -> String {
    let grants: Vec<String> = value
        .as_array()
        .into_iter()
        .flatten()
        .map(|g| {
            let impersonate = if g["impersonate"] == true {
                "+impersonate"
            } else {
                ""
            };
            format!(
                "{}={}{impersonate}",
                shown(&g["cluster"]),
                shown(&g["access"])
            )
        })
        .collect();
    if grants.is_empty() {
        "-".to_owned()
    } else {
        grants.join(",")
    }
}

fn token_fields(t: &Value) -> String {
    fields(&[
        ("id", shown(&t["id"])),
        ("name", shown(&t["name"])),
        ("role", shown(&t["role"])),
        ("grants", grants(&t["grants"])),
        ("impersonate user", shown(&t["impersonateUser"])),
        ("impersonate groups", list_or_dash(&t["impersonateGroups"])),
        ("expires", time(&t["expiresAt"])),
        ("created", time(&t["createdAt"])),
    ])
}

/// `CLUSTER=read|write[,impersonate]`.
fn parse_grant(grant: &str) -> Result<Value, CommandError> {
    let bad = || {
        CommandError::Usage(format!(
            "grant `{grant}` is not CLUSTER=read|write[,impersonate]"
        ))
    };
    let (cluster, rest) = grant.split_once('=').ok_or_else(bad)?;
    let mut parts = rest.split([',', '+']);
    let access = parts.next().filter(|a| matches!(*a, "read" | "write"));
    let access = access.ok_or_else(bad)?;
    let mut impersonate = false;
    for part in parts {
        if part != "impersonate" {
            return Err(bad());
        }
        impersonate = true;
    }
    if cluster.is_empty() {
        return Err(bad());
    }
    Ok(json!({"cluster": cluster, "access": access, "impersonate": impersonate}))
}

/// Seconds from `3600`, `90s`, `15m`, `24h` or `90d`.
fn parse_ttl(ttl: &str) -> Result<u64, CommandError> {
    let bad = || {
        CommandError::Usage(format!(
            "--ttl `{ttl}` is not a number of seconds or a number with s, m, h or d"
        ))
    };
    let ttl = ttl.trim();
    let (number, unit) = match ttl.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((at, _)) => ttl.split_at(at),
        None => (ttl, "s"),
    };
    let number: u64 = number.parse().map_err(|_| bad())?;
    let factor = match unit.trim() {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    number
        .checked_mul(factor)
        .filter(|s| *s > 0)
        .ok_or_else(bad)
}

async fn create_token(args: &TokenCreateArgs) -> Result<Output, CommandError> {
    let grants: Vec<Value> = args
        .grants
        .iter()
        .map(|g| parse_grant(g))
        .collect::<Result<_, _>>()?;
    let mut body = json!({"name": args.name, "role": args.role, "grants": grants});
    if let Some(ttl) = &args.ttl {
        body["ttlSeconds"] = json!(parse_ttl(ttl)?);
    }
    if let Some(at) = &args.expires_at {
        body["expiresAt"] = json!(at);
    }
    if let Some(user) = &args.impersonate_user {
        body["impersonateUser"] = json!(user);
    }
    if !args.impersonate_groups.is_empty() {
        body["impersonateGroups"] = json!(args.impersonate_groups);
    }
    let client = GatewayClient::new(&args.remote.gateway)?;
    let token = client
        .json(Method::POST, client.url(&["tokens"]), Some(&body))
        .await?;
    let mut text = token_fields(&token);
    text.push_str(&format!(
        "\ntoken (shown only now; store it): {}\n",
        shown(&token["token"])
    ));
    Ok(Output::new(token, text, args.remote.output))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_parse_with_access_and_impersonation() {
        assert_eq!(
            parse_grant("dev=read").unwrap(),
            json!({"cluster": "dev", "access": "read", "impersonate": false})
        );
        assert_eq!(
            parse_grant("*=write,impersonate").unwrap(),
            json!({"cluster": "*", "access": "write", "impersonate": true})
        );
        for bad in ["dev", "dev=admin", "=read", "dev=read,sudo"] {
            let err = parse_grant(bad).unwrap_err();
            assert_eq!(err.exit_code(), super::super::exit::USAGE, "{bad}");
        }
        assert_eq!(
            grants(&json!([{"cluster": "a", "access": "write",
                                   "impersonate": true}])),
            "a=write+impersonate"
        );
    }

    #[test]
    fn lifetimes_take_units() {
        assert_eq!(parse_ttl("3600").unwrap(), 3600);
        assert_eq!(parse_ttl("15m").unwrap(), 900);
        assert_eq!(parse_ttl("24h").unwrap(), 86_400);
        assert_eq!(parse_ttl("90d").unwrap(), 90 * 86_400);
        for bad in ["", "0", "1w", "h", "-5", "99999999999999999999d"] {
            assert!(parse_ttl(bad).is_err(), "{bad}");
        }
    }
}
