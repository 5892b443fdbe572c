//! `Session`: who is on the other end of one connection — the authenticated principal, the
//! listener the connection came in on, and the peer's address. Every request handled on the
//! connection carries it (`RequestContext::session`); authorization and quotas read it there.
//! Until a listener is configured with a security protocol, every client is `User:ANONYMOUS`,
//! as on Kafka's PLAINTEXT listeners.

use std::fmt;
use std::net::SocketAddr;

/// A principal in Kafka's `Type:name` form (Kafka's `KafkaPrincipal`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Principal {
    pub(crate) principal_type: String,
    pub(crate) name: String,
}

impl Principal {
    /// `User:ANONYMOUS`: the principal of an unauthenticated connection.
    pub(crate) fn anonymous() -> Self {
        Principal {
            principal_type: "User".into(),
            name: "ANONYMOUS".into(),
        }
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.principal_type, self.name)
    }
}

/// One connection's identity.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub(crate) principal: Principal,
    /// The listener's name (`PLAINTEXT` for `--listen`).
    pub(crate) listener: String,
    pub(crate) peer: SocketAddr,
}
