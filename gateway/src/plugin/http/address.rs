//! Which addresses plugin requests may connect to: the local-address policy, and the resolver
//! that drops refused addresses so the check holds at connect time.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Which addresses plugin requests may connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AddressPolicy {
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
pub(crate) fn local_address(ip: IpAddr) -> Option<&'static str> {
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
    pub(super) host: String,
    pub(super) ip: IpAddr,
    pub(super) kind: &'static str,
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
pub(crate) fn guarded_resolver(policy: AddressPolicy, inner: Arc<dyn Resolve>) -> impl Resolve {
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
pub(super) struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs = tokio::net::lookup_host((host.as_str(), 0)).await?;
            Ok::<_, BoxError>(Box::new(addrs.collect::<Vec<_>>().into_iter()) as Addrs)
        })
    }
}
