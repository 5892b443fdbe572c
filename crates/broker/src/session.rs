//! `Session`: who is on the other end of one connection — the authenticated principal, the
//! listener the connection came in on (its name and security protocol), and the peer's address.
//! Every request handled on the connection carries it (`RequestContext::session`);
//! authorization and quotas read it there. A PLAINTEXT listener's clients are
//! `User:ANONYMOUS`, an SSL listener's the mapped certificate subject (or ANONYMOUS without a
//! client certificate), a SASL listener's the SASL identity once authenticated — as Kafka's.

use std::net::SocketAddr;

pub(crate) use strom_security::KafkaPrincipal as Principal;
use strom_security::SecurityProtocol;

/// One connection's identity.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub(crate) principal: Principal,
    /// The listener's name (`PLAINTEXT` for `--listen`).
    pub(crate) listener: String,
    /// The listener's security protocol.
    pub(crate) protocol: SecurityProtocol,
    pub(crate) peer: SocketAddr,
}

impl Session {
    /// Whether the listener authenticates with SASL (ApiVersions then advertises
    /// SaslHandshake and SaslAuthenticate, as Kafka does only there).
    pub(crate) fn sasl(&self) -> bool {
        self.protocol.uses_sasl()
    }
}
