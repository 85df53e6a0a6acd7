//! `--oidc-*`: the identity provider whose ID tokens are accepted, with kube-apiserver's flag
//! names and meanings.

use crate::cli::ServeArgs;

use super::{ConfigError, Result};

/// Signing algorithms an ID token may use: asymmetric ones only. HMAC (`HS*`) would let anyone
/// who knows the issuer's public key sign tokens; `none` is no signature at all.
pub const SIGNING_ALGS: &[&str] = &[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

/// A validated OIDC configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcConfig {
    /// `https://…`, exactly as ID tokens carry it in `iss`.
    pub issuer_url: String,
    /// The `aud` ID tokens must contain.
    pub client_id: String,
    pub username_claim: String,
    /// Resolved: empty for none (`-`, or the default with the `email` claim), else the prefix.
    pub username_prefix: String,
    pub groups_claim: String,
    pub groups_prefix: String,
    /// PEM certificates trusted for the issuer's TLS (`--oidc-ca-file`), else the web roots.
    pub ca_pem: Option<Vec<u8>>,
    /// Claims that must be present with exactly these string values.
    pub required_claims: Vec<(String, String)>,
    /// Names from [`SIGNING_ALGS`].
    pub signing_algs: Vec<String>,
}

fn bad(message: impl Into<String>) -> ConfigError {
    ConfigError::Oidc(message.into())
}

/// `None` without `--oidc-issuer-url`; an error for OIDC flags that cannot work.
pub(super) fn oidc_config(args: &ServeArgs) -> Result<Option<OidcConfig>> {
    let Some(issuer_url) = args.oidc_issuer_url.clone().filter(|u| !u.is_empty()) else {
        if args
            .oidc_client_id
            .as_deref()
            .is_some_and(|c| !c.is_empty())
        {
            return Err(bad("--oidc-client-id needs --oidc-issuer-url"));
        }
        return Ok(None);
    };
    let parsed = reqwest::Url::parse(&issuer_url).map_err(|e| {
        bad(format!(
            "--oidc-issuer-url `{issuer_url}` is not a URL: {e}"
        ))
    })?;
    if parsed.scheme() != "https" {
        return Err(bad(format!(
            "--oidc-issuer-url `{issuer_url}` must be https:// (the issuer's keys are fetched \
             from it)"
        )));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(bad(format!(
            "--oidc-issuer-url `{issuer_url}` must not have a query or fragment"
        )));
    }
    let client_id = args
        .oidc_client_id
        .clone()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| bad("--oidc-client-id is required with --oidc-issuer-url"))?;
    if args.oidc_username_claim.is_empty() || args.oidc_groups_claim.is_empty() {
        return Err(bad(
            "--oidc-username-claim and --oidc-groups-claim must not be empty",
        ));
    }
    // kube-apiserver: claims other than `email` are prefixed with the issuer URL unless a
    // prefix is given; `-` means no prefix.
    let username_prefix = match args.oidc_username_prefix.as_deref() {
        Some("-") => String::new(),
        Some(prefix) if !prefix.is_empty() => prefix.to_owned(),
        _ if args.oidc_username_claim == "email" => String::new(),
        _ => format!("{issuer_url}#"),
    };
    let ca_pem = match &args.oidc_ca_file {
        Some(path) => {
            let pem = std::fs::read(path).map_err(|e| {
                bad(format!(
                    "--oidc-ca-file `{}` cannot be read: {e}",
                    path.display()
                ))
            })?;
            Some(pem)
        }
        None => None,
    };
    let mut required_claims = Vec::new();
    for pair in args.oidc_required_claims.iter().filter(|p| !p.is_empty()) {
        let (key, value) = pair
            .split_once('=')
            .filter(|(k, _)| !k.is_empty())
            .ok_or_else(|| bad(format!("--oidc-required-claim `{pair}` is not key=value")))?;
        required_claims.push((key.to_owned(), value.to_owned()));
    }
    let mut signing_algs = Vec::new();
    for alg in args
        .oidc_signing_algs
        .iter()
        .map(|a| a.trim())
        .filter(|a| !a.is_empty())
    {
        if !SIGNING_ALGS.contains(&alg) {
            return Err(bad(format!(
                "--oidc-signing-algs: `{alg}` is not accepted (use {})",
                SIGNING_ALGS.join(", ")
            )));
        }
        if !signing_algs.iter().any(|a| a == alg) {
            signing_algs.push(alg.to_owned());
        }
    }
    if signing_algs.is_empty() {
        return Err(bad("--oidc-signing-algs names no algorithm"));
    }
    Ok(Some(OidcConfig {
        issuer_url,
        client_id,
        username_claim: args.oidc_username_claim.clone(),
        username_prefix,
        groups_claim: args.oidc_groups_claim.clone(),
        groups_prefix: args.oidc_groups_prefix.clone(),
        ca_pem,
        required_claims,
        signing_algs,
    }))
}

/// The console's sign-in client: `--console-oidc-client-id` (default `--oidc-client-id`) and
/// the secret read from `--console-oidc-client-secret-file`; `None` without an issuer.
pub(super) fn console_sso(
    args: &ServeArgs,
    oidc: Option<&OidcConfig>,
) -> Result<Option<super::ConsoleSso>> {
    let Some(oidc) = oidc else {
        if args.console_oidc_client_id.is_some() || args.console_oidc_client_secret_file.is_some() {
            return Err(bad(
                "--console-oidc-client-id and --console-oidc-client-secret-file need \
                 --oidc-issuer-url",
            ));
        }
        return Ok(None);
    };
    let client_id = match args.console_oidc_client_id.as_deref().map(str::trim) {
        Some("") => return Err(bad("--console-oidc-client-id is empty")),
        Some(id) => id.to_owned(),
        None => oidc.client_id.clone(),
    };
    let client_secret = match &args.console_oidc_client_secret_file {
        None => None,
        Some(path) => {
            let secret = std::fs::read_to_string(path).map_err(|e| {
                bad(format!(
                    "--console-oidc-client-secret-file `{}` cannot be read: {e}",
                    path.display()
                ))
            })?;
            let secret = secret.trim();
            if secret.is_empty() {
                return Err(bad(format!(
                    "--console-oidc-client-secret-file `{}` is empty",
                    path.display()
                )));
            }
            Some(secrecy::SecretString::from(secret.to_owned()))
        }
    };
    Ok(Some(super::ConsoleSso {
        client_id,
        client_secret,
    }))
}
