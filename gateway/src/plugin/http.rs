//! The `http` capability: GET and POST to allow-listed hosts, redirects followed only to
//! allow-listed hosts, response bodies capped. Requests trust the web PKI roots; a call may
//! add a private CA for one host (a Helm repository's `caPem`, for that repository's host).
//!
//! Unless the gateway runs with `--plugin-http-allow-local`, requests never connect to a
//! loopback, link-local (cloud metadata services included) or unspecified address, nor to the
//! IPv4-mapped (and NAT64) forms of those: IP literals are checked before each hop, and names
//! through a resolver that drops such addresses, so the check applies to the addresses
//! actually connected to (DNS rebinding cannot get around it) and to every redirect.
//!
//! This file sends a request and follows its redirects; the allow-list patterns are in
//! `http/allow_list.rs`, the address policy and resolvers in `http/address.rs`, the clients
//! and their trust in `http/clients.rs`.

use std::net::IpAddr;

use reqwest::Url;

mod address;
mod allow_list;
mod clients;

pub(super) use address::AddressPolicy;
use address::LocalAddressRefused;
pub(super) use allow_list::{allowed, validate_pattern};
pub use clients::{CaPemError, parse_ca_pem};
pub(super) use clients::{HttpClients, ScopedTrust, client};

/// How many redirects one request may follow.
const MAX_REDIRECTS: usize = 5;

/// A guest-visible failure of an HTTP call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum HttpError {
    Denied(String),
    Invalid(String),
    TooLarge(String),
    Unavailable(String),
}

/// A request as the guest made it.
pub(super) struct OutboundRequest {
    pub post: bool,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
}

/// A response as the guest gets it.
pub(super) struct InboundResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Sends `request`, following redirects to allowed hosts, reading at most `max_body` bytes.
pub(super) async fn send(
    clients: &HttpClients,
    patterns: &[String],
    request: OutboundRequest,
    max_body: usize,
) -> Result<InboundResponse, HttpError> {
    let mut url = Url::parse(&request.url)
        .map_err(|e| HttpError::Invalid(format!("URL `{}`: {e}", request.url)))?;
    let mut post = request.post;
    let mut body = request.body;
    let mut headers = reqwest::header::HeaderMap::new();
    for (name, value) in &request.headers {
        let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| HttpError::Invalid(format!("header name `{name}` is not valid")))?;
        let value = reqwest::header::HeaderValue::from_str(value)
            .map_err(|_| HttpError::Invalid(format!("header `{name}` has an invalid value")))?;
        headers.append(name, value);
    }
    for _ in 0..=MAX_REDIRECTS {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(HttpError::Invalid(format!(
                "URL `{url}`: only http and https are allowed"
            )));
        }
        if !allowed(patterns, &url) {
            return Err(HttpError::Denied(format!(
                "host `{}` is not in the plugin's http allow-list",
                url.host_str().unwrap_or_default()
            )));
        }
        // Names are checked by the client's resolver when it connects; literals never reach it.
        // (The URL parser writes every IPv4 spelling, `2130706433` included, as dotted quads.)
        let host = url.host_str().unwrap_or_default();
        let literal = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .ok();
        if let Some(ip) = literal
            && let Some(kind) = clients.policy.refusal(ip)
        {
            let host = host.to_owned();
            return Err(HttpError::Denied(
                LocalAddressRefused { host, ip, kind }.to_string(),
            ));
        }
        let client = clients.for_url(&url);
        let mut builder = if post {
            client.post(url.clone())
        } else {
            client.get(url.clone())
        };
        builder = builder.headers(headers.clone());
        if let Some(body) = &body {
            builder = builder.body(body.clone());
        }
        let mut response = builder.send().await.map_err(|e| match refused(&e) {
            Some(refused) => HttpError::Denied(refused.to_string()),
            None => HttpError::Unavailable(format!("{url}: {}", error_chain(&e))),
        })?;
        let status = response.status();
        if status.is_redirection()
            && let Some(location) = response.headers().get(reqwest::header::LOCATION)
        {
            let location = location
                .to_str()
                .map_err(|_| HttpError::Unavailable(format!("{url}: invalid redirect")))?;
            url = url
                .join(location)
                .map_err(|e| HttpError::Unavailable(format!("{url}: invalid redirect: {e}")))?;
            // 301-303 turn a POST into a GET, 307/308 repeat it.
            if matches!(status.as_u16(), 301..=303) {
                post = false;
                body = None;
            }
            continue;
        }
        let response_headers = response
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        if response
            .content_length()
            .is_some_and(|len| len > max_body as u64)
        {
            return Err(too_large(&url, max_body));
        }
        let mut data = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| HttpError::Unavailable(format!("{url}: {}", error_chain(&e))))?
        {
            if data.len() + chunk.len() > max_body {
                return Err(too_large(&url, max_body));
            }
            data.extend_from_slice(&chunk);
        }
        return Ok(InboundResponse {
            status: status.as_u16(),
            headers: response_headers,
            body: data,
        });
    }
    Err(HttpError::Unavailable(format!(
        "{url}: more than {MAX_REDIRECTS} redirects"
    )))
}

fn too_large(url: &Url, max: usize) -> HttpError {
    HttpError::TooLarge(format!(
        "{url}: response body exceeds the plugin's limit of {max} bytes"
    ))
}

/// The resolver's refusal, if that is why `e` happened.
fn refused<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a LocalAddressRefused> {
    let mut cause = Some(e);
    while let Some(error) = cause {
        if let Some(refused) = error.downcast_ref::<LocalAddressRefused>() {
            return Some(refused);
        }
        cause = error.source();
    }
    None
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

// The plugin module's unit tests check these directly.
#[cfg(test)]
pub(super) use address::{guarded_resolver, local_address};
#[cfg(test)]
pub(super) use clients::client_with_resolver;
