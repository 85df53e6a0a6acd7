//! Connection upgrades for the streaming subresources: WebSocket (RFC 6455, subprotocols as
//! `k8s.io/apimachinery/pkg/util/wsstream` negotiates them) and SPDY/3.1 with the
//! `X-Stream-Protocol-Version` handshake of `k8s.io/apimachinery/pkg/util/httpstream`.

use bytes::Bytes;
use http::{HeaderMap, Response};

use crate::server::{Body, full};
use crate::status::{ApiError, Result};

/// `X-Stream-Protocol-Version`: offered (one header per protocol) and chosen.
pub const PROTOCOL_HEADER: &str = "x-stream-protocol-version";
/// Sent with a 403 when no offered protocol is served.
pub const ACCEPTED_HEADER: &str = "x-accepted-stream-protocol-versions";

fn header_tokens<'a>(headers: &'a HeaderMap, name: &str) -> impl Iterator<Item = String> + 'a {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
}

fn upgrade_is(headers: &HeaderMap, what: &str) -> bool {
    headers
        .get(http::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(what))
        && header_tokens(headers, "connection").any(|t| t.eq_ignore_ascii_case("upgrade"))
}

/// A WebSocket upgrade request.
pub fn is_websocket(headers: &HeaderMap) -> bool {
    upgrade_is(headers, "websocket")
}

/// A SPDY/3.1 upgrade request.
pub fn is_spdy(headers: &HeaderMap) -> bool {
    upgrade_is(headers, crate::spdy::UPGRADE)
}

/// The WebSocket handshake: the first offered subprotocol that is served (in the client's
/// order, as wsstream does). With `allow_none`, a client offering none gets the connection
/// without a subprotocol (wsstream's `""` entry).
pub fn websocket(
    headers: &HeaderMap,
    served: &[&str],
    allow_none: bool,
) -> Result<(Response<Body>, String)> {
    let key = headers
        .get("sec-websocket-key")
        .ok_or_else(|| ApiError::bad_request("missing Sec-WebSocket-Key"))?;
    let offered: Vec<String> = header_tokens(headers, "sec-websocket-protocol").collect();
    let protocol = match offered.iter().find(|p| served.contains(&p.as_str())) {
        Some(p) => p.clone(),
        None if offered.is_empty() && allow_none => String::new(),
        None => {
            return Err(ApiError::bad_request(format!(
                "unable to upgrade: no supported subprotocol offered ({}); supported: {}",
                offered.join(", "),
                served.join(", ")
            )));
        }
    };
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    let mut b = Response::builder()
        .status(101)
        .header(http::header::CONNECTION, "Upgrade")
        .header(http::header::UPGRADE, "websocket")
        .header("sec-websocket-accept", accept);
    if !protocol.is_empty() {
        b = b.header("sec-websocket-protocol", protocol.as_str());
    }
    Ok((
        b.body(full(Bytes::new())).expect("valid response"),
        protocol,
    ))
}

/// The SPDY handshake: negotiates `X-Stream-Protocol-Version` (the first client protocol the
/// server serves) and answers `101` with `Upgrade: SPDY/3.1`. Errors are the plain-text
/// responses `httpstream.Handshake` writes: 400 without the header, 403 (listing the served
/// versions) when nothing matches.
#[allow(
    clippy::result_large_err,
    reason = "the error is the response to send, built once"
)]
pub fn spdy(
    headers: &HeaderMap,
    served: &[&str],
) -> std::result::Result<(Response<Body>, String), Response<Body>> {
    let offered: Vec<String> = header_tokens(headers, PROTOCOL_HEADER).collect();
    if offered.is_empty() {
        return Err(crate::server::text_response(
            400,
            "unable to upgrade: X-Stream-Protocol-Version is required\n",
        ));
    }
    let Some(protocol) = offered.iter().find(|p| served.contains(&p.as_str())) else {
        let mut r = crate::server::text_response(
            403,
            &format!(
                "unable to upgrade: unable to negotiate protocol: client supports {:?}, server accepts {:?}\n",
                offered, served
            ),
        );
        for s in served {
            r.headers_mut().append(
                ACCEPTED_HEADER,
                http::HeaderValue::from_str(s).expect("protocol names are header-safe"),
            );
        }
        return Err(r);
    };
    let resp = Response::builder()
        .status(101)
        .header(http::header::CONNECTION, "Upgrade")
        .header(http::header::UPGRADE, crate::spdy::UPGRADE)
        .header(PROTOCOL_HEADER, protocol.as_str())
        .body(full(Bytes::new()))
        .expect("valid response");
    Ok((resp, protocol.clone()))
}

/// The answer to a streaming request that asks for no upgrade (`httpstream`'s wording).
pub fn missing() -> ApiError {
    ApiError::bad_request("Upgrade request required")
}
