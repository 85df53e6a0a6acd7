//! The client on the other end of a request's connection.

use std::net::SocketAddr;

/// The TCP peer of the request's connection, inserted as a request extension by the listener
/// (behind a load balancer: the balancer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub SocketAddr);
