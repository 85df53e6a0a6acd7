//! `portico login`, `logout` and `context list|use|delete`: the contexts of the config file.

use std::io::{IsTerminal, Read};

use reqwest::Url;
use serde_json::{Value, json};

use super::contexts::{
    Context, Credential, Target, load, no_context, path, read_pem, same_server, save,
};
use super::output::{Output, fields, table};
use super::{CommandError, GatewayClient};
use crate::cli::{
    ContextCommand, ContextListArgs, ContextNameArgs, GatewayArgs, LoginArgs, LogoutArgs,
};

/// A context name from a server URL: its host and port.
pub(super) fn name_for(server: &str) -> String {
    Url::parse(server)
        .ok()
        .and_then(|url| {
            let host = url.host_str()?.to_owned();
            Some(match url.port() {
                Some(port) => format!("{host}:{port}"),
                None => host,
            })
        })
        .unwrap_or_else(|| server.to_owned())
}

/// The token of `login`: the flag or variable, else standard input when it is not a terminal.
fn login_token(args: &GatewayArgs) -> Result<String, CommandError> {
    if let Some(token) = &args.token {
        return Ok(token.clone());
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Err(CommandError::Usage(
            "no token: pass --token, set PORTICO_TOKEN, or pipe it on standard input".to_owned(),
        ));
    }
    let mut text = String::new();
    stdin
        .lock()
        .read_to_string(&mut text)
        .map_err(|e| CommandError::Read("standard input".to_owned(), e))?;
    let token = text.trim().to_owned();
    if token.is_empty() {
        return Err(CommandError::Usage("no token on standard input".to_owned()));
    }
    Ok(token)
}

/// `portico login`: checks the token with `GET /api/v1/clusters?limit=1` (any valid token may call
/// it), then stores the context and makes it current. With `--sso`: [`super::sso::login`].
pub async fn login(args: &LoginArgs) -> Result<Output, CommandError> {
    let gateway = &args.gateway;
    let path = path(&gateway.config)?;
    let mut config = load(&path)?;
    let existing_name = gateway.context.clone().or_else(|| {
        gateway
            .server()
            .is_none()
            .then(|| config.current_context.clone())
            .flatten()
    });
    let existing = existing_name
        .as_deref()
        .and_then(|n| config.get(n))
        .cloned();
    let server = match (gateway.server(), &existing) {
        (Some(server), _) => server.to_owned(),
        (None, Some(context)) => context.server.clone(),
        (None, None) => {
            return Err(CommandError::Usage(
                "login needs --server (or PORTICO_SERVER) for a new context".to_owned(),
            ));
        }
    };
    let name = gateway
        .context
        .clone()
        .or_else(|| existing.as_ref().map(|c| c.name.clone()))
        .unwrap_or_else(|| name_for(&server));
    // Without --ca-file: the CA this context, else another context of the server, trusts.
    let certificate_authority = match &gateway.ca_file {
        Some(file) => Some(read_pem(file)?),
        None => existing
            .iter()
            .chain(&config.contexts)
            .filter(|c| same_server(&c.server, &server))
            .find_map(|c| c.certificate_authority.clone()),
    };
    if args.sso {
        let target = Target {
            server,
            token: None,
            ca_pem: certificate_authority,
        };
        return super::sso::login(args, &path, name, target).await;
    }
    let token = login_token(gateway)?;
    let client = GatewayClient::connect(Target {
        server: server.clone(),
        token: Some(token.clone()),
        ca_pem: certificate_authority.clone(),
    })?;
    // One item is enough to check the token; `total` counts every cluster it may see (a
    // gateway without paging answers the whole list, and its length is the count).
    let mut url = client.url(&["clusters"]);
    url.set_query(Some("limit=1"));
    let clusters = client.json(reqwest::Method::GET, url, None).await?;
    let visible = clusters["total"].as_u64().map_or_else(
        || clusters["items"].as_array().map_or(0, Vec::len),
        |n| n as usize,
    );
    let context = Context {
        name: name.clone(),
        server: server.clone(),
        certificate_authority,
        credential: Some(Credential::Token { token }),
    };
    match config.get_mut(&name) {
        Some(slot) => *slot = context,
        None => config.contexts.push(context),
    }
    config.current_context = Some(name.clone());
    save(&path, &config)?;
    let value = json!({
        "context": name, "server": server, "clustersVisible": visible,
        "configFile": path.display().to_string(),
    });
    let text = format!(
        "Logged in to {server} as context `{name}` (now the current context; {visible} \
         clusters visible).\nStored in {}.\n",
        path.display()
    );
    Ok(Output::new(value, text, args.output))
}

/// `portico logout`: forgets the context's credential, keeps its server and CA.
pub fn logout(args: &LogoutArgs) -> Result<Output, CommandError> {
    let path = path(&args.config)?;
    let mut config = load(&path)?;
    let name = match args
        .context
        .clone()
        .or_else(|| config.current_context.clone())
    {
        Some(name) => name,
        None => {
            return Err(CommandError::Usage(
                "no current context; name one with --context".to_owned(),
            ));
        }
    };
    let context = config
        .get_mut(&name)
        .ok_or_else(|| no_context(&name, &path))?;
    let had = context.credential.take().is_some();
    save(&path, &config)?;
    let text = if had {
        format!("Logged out of context `{name}`; its token is forgotten here, not revoked.\n")
    } else {
        format!("Context `{name}` held no credential.\n")
    };
    Ok(Output::new(
        json!({"context": name, "loggedOut": had}),
        text,
        args.output,
    ))
}

/// `portico context list|use|delete`.
pub fn context(command: &ContextCommand) -> Result<Output, CommandError> {
    match command {
        ContextCommand::List(args) => list(args),
        ContextCommand::Use(args) => use_context(args),
        ContextCommand::Delete(args) => delete(args),
    }
}

fn list(args: &ContextListArgs) -> Result<Output, CommandError> {
    let path = path(&args.config)?;
    let config = load(&path)?;
    let current = config.current_context.as_deref();
    let items: Vec<Value> = config
        .contexts
        .iter()
        .map(|c| {
            json!({
                "name": c.name, "server": c.server, "current": current == Some(c.name.as_str()),
                "credential": c.credential.as_ref().map(Credential::kind),
                "certificateAuthority": c.certificate_authority.is_some(),
            })
        })
        .collect();
    let rows = config
        .contexts
        .iter()
        .map(|c| {
            vec![
                if current == Some(c.name.as_str()) {
                    "*"
                } else {
                    ""
                }
                .to_owned(),
                c.name.clone(),
                c.server.clone(),
                c.credential
                    .as_ref()
                    .map_or_else(|| "none".to_owned(), Credential::kind),
                if c.certificate_authority.is_some() {
                    "yes"
                } else {
                    "no"
                }
                .to_owned(),
            ]
        })
        .collect();
    let text = table(&["CURRENT", "NAME", "SERVER", "CREDENTIAL", "CA"], rows);
    Ok(Output::new(
        json!({"currentContext": current, "configFile": path.display().to_string(),
               "items": items}),
        text,
        args.output,
    ))
}

fn use_context(args: &ContextNameArgs) -> Result<Output, CommandError> {
    let path = path(&args.config)?;
    let mut config = load(&path)?;
    let context = config
        .get(&args.name)
        .ok_or_else(|| no_context(&args.name, &path))?
        .clone();
    config.current_context = Some(args.name.clone());
    save(&path, &config)?;
    Ok(Output::new(
        json!({"currentContext": args.name, "server": context.server}),
        fields(&[
            ("current context", args.name.clone()),
            ("server", context.server),
        ]),
        args.output,
    ))
}

fn delete(args: &ContextNameArgs) -> Result<Output, CommandError> {
    let path = path(&args.config)?;
    let mut config = load(&path)?;
    let before = config.contexts.len();
    config.contexts.retain(|c| c.name != args.name);
    if config.contexts.len() == before {
        return Err(no_context(&args.name, &path));
    }
    if config.current_context.as_deref() == Some(args.name.as_str()) {
        config.current_context = None;
    }
    save(&path, &config)?;
    Ok(Output::new(
        json!({"deleted": args.name}),
        format!("Context `{}` deleted.\n", args.name),
        args.output,
    ))
}
