//! The `http` capability: GET and POST to allow-listed hosts, redirects followed only to
//! allow-listed hosts, response bodies capped. Requests trust the web PKI roots; a call may
//! add a private CA for one host (a Helm repository's `caPem`, for that repository's host).
//!
//! Unless the gateway runs with `--plugin-http-allow-local`, requests never connect to a
//! loopback, link-local (cloud metadata services included) or unspecified address, nor to the
//! IPv4-mapped (and NAT64) forms of those: IP literals are checked before each hop, and names
//! through a resolver that drops such addresses, so the check applies to the addresses
//! actually connected to (DNS rebinding cannot get around it) and to every redirect.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
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

/// Which addresses plugin requests may connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum AddressPolicy {
    /// Any address (`--plugin-http-allow-local`).
    AllowAll,
    /// Not loopback, link-local or unspecified addresses (see [`local_address`]).
    RefuseLocal,
    /// Tests: refuse exactly these addresses, so a test can serve an "outside" host on one
    /// loopback address and show what happens to requests for another.
    #[cfg(test)]
    Refuse(Vec<IpAddr>),
}

impl AddressPolicy {
    pub fn new(allow_local: bool) -> Self {
        if allow_local {
            Self::AllowAll
        } else {
            Self::RefuseLocal
        }
    }

    /// What kind of address `ip` is, when requests may not connect to it.
    pub fn refusal(&self, ip: IpAddr) -> Option<&'static str> {
        match self {
            Self::AllowAll => None,
            Self::RefuseLocal => local_address(ip),
            #[cfg(test)]
            Self::Refuse(refused) => refused
                .contains(&ip)
                .then_some("an address refused by the test"),
        }
    }
}

/// What kind of local address `ip` is: loopback (127.0.0.0/8, ::1), link-local
/// (169.254.0.0/16, where cloud metadata services answer, and fe80::/10), unspecified
/// (0.0.0.0/8, ::), or one of those in an IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible
/// (::a.b.c.d) or NAT64 (64:ff9b::a.b.c.d) IPv6 address. `None` for any other address.
pub(super) fn local_address(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => local_v4(v4),
        IpAddr::V6(v6) => {
            let segments = v6.segments();
            if v6.is_loopback() {
                Some("a loopback address")
            } else if v6.is_unspecified() {
                Some("an unspecified address")
            } else if segments[0] & 0xffc0 == 0xfe80 {
                Some("a link-local address")
            } else if let Some(v4) = v6.to_ipv4_mapped() {
                local_v4(v4).map(|_| "an IPv4-mapped local address")
            } else if segments[..6].iter().all(|s| *s == 0)
                || segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0]
            {
                local_v4(embedded_v4(v6)).map(|_| "an IPv6 address embedding a local IPv4 address")
            } else {
                None
            }
        }
    }
}

fn local_v4(v4: Ipv4Addr) -> Option<&'static str> {
    if v4.is_loopback() {
        Some("a loopback address")
    } else if v4.is_link_local() {
        Some("a link-local address (cloud metadata services answer there)")
    } else if v4.octets()[0] == 0 {
        Some("an unspecified address")
    } else {
        None
    }
}

fn embedded_v4(v6: Ipv6Addr) -> Ipv4Addr {
    let octets = v6.octets();
    Ipv4Addr::new(octets[12], octets[13], octets[14], octets[15])
}

/// A request refused because of the address it would connect to.
#[derive(Debug)]
pub(super) struct LocalAddressRefused {
    /// The URL's host as written.
    host: String,
    ip: IpAddr,
    kind: &'static str,
}

impl std::fmt::Display for LocalAddressRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ip = self.ip;
        let literal = self.host.trim_start_matches('[').trim_end_matches(']');
        if literal.parse::<IpAddr>().is_ok_and(|written| written == ip) {
            write!(f, "`{ip}` is {}", self.kind)?;
        } else {
            write!(f, "host `{}` resolves to {ip}, {}", self.host, self.kind)?;
        }
        f.write_str(
            ": plugin HTTP to loopback, link-local and unspecified addresses is refused \
             (the gateway's --plugin-http-allow-local allows it)",
        )
    }
}

impl std::error::Error for LocalAddressRefused {}

/// Resolves names with `inner`, dropping the addresses `policy` refuses.
pub(super) fn guarded_resolver(policy: AddressPolicy, inner: Arc<dyn Resolve>) -> impl Resolve {
    GuardedResolver { policy, inner }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Resolves names for plugin requests, dropping the addresses `policy` refuses: what the
/// client connects to is what this returns, so the check holds at connect time.
struct GuardedResolver {
    policy: AddressPolicy,
    inner: Arc<dyn Resolve>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_owned();
        let resolving = self.inner.resolve(name);
        Box::pin(async move {
            let mut refused = None;
            let allowed: Vec<SocketAddr> = resolving
                .await?
                .filter(|addr| match policy.refusal(addr.ip()) {
                    Some(kind) => {
                        refused.get_or_insert((addr.ip(), kind));
                        false
                    }
                    None => true,
                })
                .collect();
            match refused {
                Some((ip, kind)) if allowed.is_empty() => {
                    Err(Box::new(LocalAddressRefused { host, ip, kind }) as BoxError)
                }
                _ => Ok(Box::new(allowed.into_iter()) as Addrs),
            }
        })
    }
}

/// The system's resolver (`getaddrinfo` on the blocking pool).
struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs = tokio::net::lookup_host((host.as_str(), 0)).await?;
            Ok::<_, BoxError>(Box::new(addrs.collect::<Vec<_>>().into_iter()) as Addrs)
        })
    }
}

/// The client plugin requests go through, trusting the web PKI roots and `extra_roots`,
/// connecting only to addresses `policy` allows. Redirects are not followed by the client:
/// [`send`] follows them after checking each hop.
pub(super) fn client(
    extra_roots: &[CertificateDer<'static>],
    policy: &AddressPolicy,
) -> Result<reqwest::Client, String> {
    client_with_resolver(extra_roots, policy, Arc::new(SystemResolver))
}

/// [`client`] resolving names with `resolver` (before the policy's filter).
pub(super) fn client_with_resolver(
    extra_roots: &[CertificateDer<'static>],
    policy: &AddressPolicy,
    resolver: Arc<dyn Resolve>,
) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("portico-plugin/", env!("CARGO_PKG_VERSION")));
    if *policy != AddressPolicy::AllowAll {
        builder = builder.dns_resolver(Arc::new(guarded_resolver(policy.clone(), resolver)));
    }
    for root in extra_roots {
        let cert = reqwest::Certificate::from_der(root).map_err(|e| e.to_string())?;
        builder = builder.add_root_certificate(cert);
    }
    builder.build().map_err(|e| format!("HTTP client: {e}"))
}

/// The clients one call's requests go through: the host's shared one, and for one origin (a
/// repository's host and port) one that also trusts that origin's private CA; both built
/// under `policy`, which [`send`] also applies to IP-literal URLs.
#[derive(Clone)]
pub(super) struct HttpClients {
    pub shared: reqwest::Client,
    pub scoped: Option<ScopedTrust>,
    pub policy: AddressPolicy,
}

/// A client trusting extra roots, used only for requests to `host`:`port`.
#[derive(Clone)]
pub(super) struct ScopedTrust {
    host: String,
    port: Option<u16>,
    client: reqwest::Client,
}

impl ScopedTrust {
    /// A client trusting `roots` for the host and port of `url`, connecting where `policy`
    /// allows.
    pub fn new(
        url: &str,
        roots: &[CertificateDer<'static>],
        policy: &AddressPolicy,
    ) -> Result<Self, String> {
        let url = Url::parse(url).map_err(|e| format!("URL `{url}`: {e}"))?;
        let host = url
            .host_str()
            .ok_or_else(|| format!("URL `{url}` has no host"))?
            .to_ascii_lowercase();
        Ok(Self {
            host,
            port: url.port_or_known_default(),
            client: client(roots, policy)?,
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
