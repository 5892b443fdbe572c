//! SASL as sans-IO state machines. The broker feeds each SaslAuthenticate request's
//! `auth_bytes` to [`SaslServer::step`] and answers with the bytes it returns; a mechanism hands
//! out a principal only in [`Step::Done`], so nothing is authenticated before the exchange
//! succeeds. Clients ([`SaslClient`]) are the mirror image, for the broker's own outgoing
//! connections and the `strom` CLI.
//!
//! After `Done` or an error, any further `step` is an `IllegalState` error: one instance serves
//! one exchange (KIP-368 re-authentication creates a new one).

use std::collections::BTreeMap;
use std::fmt;

use crate::error::AuthError;
use crate::principal::kafka_principal::KafkaPrincipal;

pub(crate) mod factory;
pub(crate) mod failed_login;
pub(crate) mod oauthbearer;
pub(crate) mod plain;
pub(crate) mod scram;

/// The mechanisms this crate implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Mechanism {
    /// RFC 4616.
    Plain,
    /// RFC 7677.
    ScramSha256,
    /// RFC 5802 with SHA-512, as Kafka.
    ScramSha512,
    /// RFC 7628.
    OAuthBearer,
}

impl Mechanism {
    /// Every mechanism, in the order Kafka's docs list them.
    pub const ALL: [Mechanism; 4] = [
        Mechanism::Plain,
        Mechanism::ScramSha256,
        Mechanism::ScramSha512,
        Mechanism::OAuthBearer,
    ];

    /// The IANA/Kafka name.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha512 => "SCRAM-SHA-512",
            Mechanism::OAuthBearer => "OAUTHBEARER",
        }
    }

    /// Parses a name (exact, upper case, as SaslHandshake carries it).
    pub fn parse(name: &str) -> Option<Mechanism> {
        Mechanism::ALL.into_iter().find(|m| m.name() == name)
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A successful exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    /// Who the client is.
    pub principal: KafkaPrincipal,
    /// The last bytes to send back (SCRAM's server-final message; empty for PLAIN and OAUTHBEARER).
    pub server_bytes: Vec<u8>,
    /// When the credential expires (epoch ms): the token's `exp` for OAUTHBEARER, the delegation
    /// token's expiry for SCRAM `tokenauth`; `None` for passwords.
    pub credential_expiry_ms: Option<i64>,
    /// SASL extensions the client sent (OAUTHBEARER key/values, SCRAM `tokenauth`).
    pub extensions: BTreeMap<String, String>,
}

impl Authenticated {
    /// SaslAuthenticateResponse's `session_lifetime_ms` as Kafka computes it (KIP-368): the
    /// smaller of the credential's remaining life and `connections.max.reauth.ms` (when > 0),
    /// never negative; 0 when neither applies (no re-authentication required).
    pub fn session_lifetime_ms(&self, connections_max_reauth_ms: Option<i64>, now_ms: i64) -> i64 {
        let max_reauth = connections_max_reauth_ms.filter(|ms| *ms > 0);
        let remaining = self
            .credential_expiry_ms
            .map(|exp| exp.saturating_sub(now_ms));
        let lifetime = match (remaining, max_reauth) {
            (None, None) => 0,
            (Some(r), None) => r,
            (None, Some(m)) => m,
            (Some(r), Some(m)) => r.min(m),
        };
        lifetime.max(0)
    }
}

/// What the server answers to one client message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send these bytes (a challenge) and wait for the client's next message.
    Continue(Vec<u8>),
    /// The client is authenticated; send `server_bytes`.
    Done(Authenticated),
}

/// A mechanism's server side for one exchange.
pub trait SaslServer: Send + fmt::Debug {
    /// Which mechanism this is.
    fn mechanism(&self) -> Mechanism;

    /// Consumes one client message.
    fn step(&mut self, client_bytes: &[u8]) -> Result<Step, AuthError>;
}

/// What the client does with one server message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientStep {
    /// Send these bytes in the next SaslAuthenticate request.
    Send(Vec<u8>),
    /// The exchange is complete on the client's side.
    Done,
}

/// A mechanism's client side for one exchange: send `initial_response()`, then feed each
/// SaslAuthenticate response's `auth_bytes` to `step` until `Done` (or an error code).
pub trait SaslClient: Send + fmt::Debug {
    /// Which mechanism this is (for SaslHandshake).
    fn mechanism(&self) -> Mechanism;

    /// The first message.
    fn initial_response(&mut self) -> Result<Vec<u8>, AuthError>;

    /// Consumes one server message.
    fn step(&mut self, server_bytes: &[u8]) -> Result<ClientStep, AuthError>;
}

/// The exchange's position, shared by the mechanisms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Complete,
    Failed,
}

/// Where an exchange stands after a step's result: ended (complete or failed) or still going.
pub(crate) fn phase_after(result: &Result<Step, AuthError>) -> Option<Phase> {
    match result {
        Ok(Step::Done(_)) => Some(Phase::Complete),
        Ok(Step::Continue(_)) => None,
        Err(_) => Some(Phase::Failed),
    }
}

pub(crate) fn after_end(phase: Phase) -> AuthError {
    let state = match phase {
        Phase::Complete => "COMPLETE",
        Phase::Failed => "FAILED",
    };
    AuthError::illegal_state(format!("Unexpected challenge in Sasl server state {state}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(expiry: Option<i64>) -> Authenticated {
        Authenticated {
            principal: KafkaPrincipal::user("a"),
            server_bytes: vec![],
            credential_expiry_ms: expiry,
            extensions: BTreeMap::new(),
        }
    }

    #[test]
    fn session_lifetime_follows_kip_368() {
        assert_eq!(done(None).session_lifetime_ms(None, 1000), 0);
        assert_eq!(done(None).session_lifetime_ms(Some(0), 1000), 0);
        assert_eq!(done(None).session_lifetime_ms(Some(5000), 1000), 5000);
        assert_eq!(done(Some(61_000)).session_lifetime_ms(None, 1000), 60_000);
        assert_eq!(
            done(Some(61_000)).session_lifetime_ms(Some(5000), 1000),
            5000
        );
        assert_eq!(done(Some(500)).session_lifetime_ms(Some(5000), 1000), 0);
        for m in Mechanism::ALL {
            assert_eq!(Mechanism::parse(m.name()), Some(m));
        }
        assert_eq!(Mechanism::parse("plain"), None);
    }
}
