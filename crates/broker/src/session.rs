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
    principal: Principal,
    /// `principal` as ACLs and quotas name it (`User:alice`), made once per authentication
    /// rather than per authorization.
    principal_text: String,
    /// The listener's name (`PLAINTEXT` for `--listen`).
    pub(crate) listener: String,
    /// The listener's security protocol.
    pub(crate) protocol: SecurityProtocol,
    pub(crate) peer: SocketAddr,
}

impl Session {
    pub(crate) fn new(
        principal: Principal,
        listener: String,
        protocol: SecurityProtocol,
        peer: SocketAddr,
    ) -> Session {
        Session {
            principal_text: principal.to_string(),
            principal,
            listener,
            protocol,
            peer,
        }
    }

    /// The same connection after (re-)authentication as `principal`.
    pub(crate) fn authenticated_as(&self, principal: Principal) -> Session {
        Session::new(principal, self.listener.clone(), self.protocol, self.peer)
    }

    /// Who is on the other end.
    pub(crate) fn principal(&self) -> &Principal {
        &self.principal
    }

    /// The principal as `Type:name`.
    pub(crate) fn principal_text(&self) -> &str {
        &self.principal_text
    }

    /// Whether the listener authenticates with SASL (ApiVersions then advertises
    /// SaslHandshake and SaslAuthenticate, as Kafka does only there).
    pub(crate) fn sasl(&self) -> bool {
        self.protocol.uses_sasl()
    }
}
