//! The `http` capability: GET and POST to allow-listed hosts, redirects followed only to
//! allow-listed hosts, response bodies capped. Requests trust the web PKI roots; a call may
//! add a private CA for one host (a Helm repository's `caPem`, for that repository's host).

use reqwest::Url;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

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

/// Checks one allow-list entry: `*`, `host`, `host:port`, `*.domain`, `*.domain:port`,
/// `[v6]`, `[v6]:port`.
pub(super) fn validate_pattern(pattern: &str) -> Result<(), String> {
    parse_pattern(pattern).map(|_| ()).ok_or_else(|| {
        format!("capabilities.http: `{pattern}` is not `host`, `host:port`, `*.domain` or `*`")
    })
}

fn parse_pattern(pattern: &str) -> Option<(String, Option<u16>)> {
    if pattern == "*" {
        return Some(("*".to_owned(), None));
    }
    if pattern.is_empty() || pattern.contains("://") || pattern.contains('/') {
        return None;
    }
    let (host, port) = if let Some(rest) = pattern.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse().ok()?),
            None if after.is_empty() => None,
            None => return None,
        };
        (format!("[{v6}]"), port)
    } else {
        match pattern.rsplit_once(':') {
            Some((host, port)) => (host.to_owned(), Some(port.parse().ok()?)),
            None => (pattern.to_owned(), None),
        }
    };
    let bare = host.strip_prefix("*.").unwrap_or(&host);
    let ok = !bare.is_empty()
        && !bare.contains('*')
        && bare
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '[' | ']' | ':'));
    ok.then(|| (host.to_ascii_lowercase(), port))
}

/// Whether `url` may be reached under `patterns`.
pub(super) fn allowed(patterns: &[String], url: &Url) -> bool {
    let Some(host) = url.host_str().map(str::to_ascii_lowercase) else {
        return false;
    };
    let port = url.port_or_known_default();
    patterns
        .iter()
        .filter_map(|p| parse_pattern(p))
        .any(|(pattern, pattern_port)| {
            let host_ok = if pattern == "*" {
                true
            } else if let Some(domain) = pattern.strip_prefix("*.") {
                host.len() > domain.len() + 1 && host.ends_with(&format!(".{domain}"))
            } else {
                host == pattern
            };
            host_ok && pattern_port.is_none_or(|p| Some(p) == port)
        })
}

/// Parses `pem` as the CA certificates of a private PKI: at least one certificate, each usable
/// as a trust anchor.
pub fn parse_ca_pem(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not valid PEM: {e}"))?;
    if certs.is_empty() {
        return Err("no PEM certificate (-----BEGIN CERTIFICATE-----) found".to_owned());
    }
    for (i, cert) in certs.iter().enumerate() {
        rustls::RootCertStore::empty()
            .add(cert.clone())
            .map_err(|e| format!("certificate {} is not a usable CA certificate: {e}", i + 1))?;
    }
    Ok(certs)
}

/// The client plugin requests go through, trusting the web PKI roots and `extra_roots`.
/// Redirects are not followed by the client: [`send`] follows them after checking each hop.
pub(super) fn client(extra_roots: &[CertificateDer<'static>]) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("portico-plugin/", env!("CARGO_PKG_VERSION")));
    for root in extra_roots {
        let cert = reqwest::Certificate::from_der(root).map_err(|e| e.to_string())?;
        builder = builder.add_root_certificate(cert);
    }
    builder.build().map_err(|e| format!("HTTP client: {e}"))
}

/// The clients one call's requests go through: the host's shared one, and for one origin (a
/// repository's host and port) one that also trusts that origin's private CA.
#[derive(Clone)]
pub(super) struct HttpClients {
    pub shared: reqwest::Client,
    pub scoped: Option<ScopedTrust>,
}

/// A client trusting extra roots, used only for requests to `host`:`port`.
#[derive(Clone)]
pub(super) struct ScopedTrust {
    host: String,
    port: Option<u16>,
    client: reqwest::Client,
}

impl ScopedTrust {
    /// A client trusting `roots` for the host and port of `url`.
    pub fn new(url: &str, roots: &[CertificateDer<'static>]) -> Result<Self, String> {
        let url = Url::parse(url).map_err(|e| format!("URL `{url}`: {e}"))?;
        let host = url
            .host_str()
            .ok_or_else(|| format!("URL `{url}` has no host"))?
            .to_ascii_lowercase();
        Ok(Self {
            host,
            port: url.port_or_known_default(),
            client: client(roots)?,
        })
    }
}

impl HttpClients {
    /// The client for a request to `url`.
    pub fn for_url(&self, url: &Url) -> &reqwest::Client {
        match &self.scoped {
            Some(scoped)
                if url
                    .host_str()
                    .is_some_and(|h| h.eq_ignore_ascii_case(&scoped.host))
                    && url.port_or_known_default() == scoped.port =>
            {
                &scoped.client
            }
            _ => &self.shared,
        }
    }
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
        let mut response = builder
            .send()
            .await
            .map_err(|e| HttpError::Unavailable(format!("{url}: {}", error_chain(&e))))?;
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
