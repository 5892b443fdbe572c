//! `BrokerEndpoint`: one listener a broker advertises in its registration (Kafka's
//! `RegisterBrokerRecord.endPoints` entry), and Kafka's ids for security protocols. A leaf of
//! `metadata`: the record and the registration both hold endpoints; their rules are checked with
//! the registration's (`broker`).

use serde::{Deserialize, Serialize};
use strom_security::SecurityProtocol;

/// Kafka's `SecurityProtocol` ids, as `RegisterBrokerRecord` stores them: PLAINTEXT, SSL,
/// SASL_PLAINTEXT, SASL_SSL.
const SECURITY_PROTOCOL_IDS: [(i16, SecurityProtocol); 4] = [
    (0, SecurityProtocol::Plaintext),
    (1, SecurityProtocol::Ssl),
    (2, SecurityProtocol::SaslPlaintext),
    (3, SecurityProtocol::SaslSsl),
];

/// One listener a broker advertises (an entry of Kafka's `RegisterBrokerRecord.endPoints`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerEndpoint {
    /// The listener name (`PLAINTEXT`, `INTERNAL`...); looked up case-insensitively, as Kafka
    /// upper-cases listener names.
    pub name: String,
    /// Host advertised on this listener.
    pub host: String,
    /// Port advertised on this listener.
    pub port: i32,
    /// Kafka's security protocol id (0 PLAINTEXT, 1 SSL, 2 SASL_PLAINTEXT, 3 SASL_SSL). Kept as
    /// the id so a record with an id this version does not know still decodes (and is refused by
    /// validation rather than breaking the log).
    pub security_protocol: i16,
}

impl BrokerEndpoint {
    /// An endpoint for `protocol`.
    pub fn new(
        name: impl Into<String>,
        host: impl Into<String>,
        port: i32,
        protocol: SecurityProtocol,
    ) -> Self {
        BrokerEndpoint {
            name: name.into(),
            host: host.into(),
            port,
            security_protocol: security_protocol_id(protocol),
        }
    }

    /// The security protocol, if the id is one Kafka defines.
    pub fn protocol(&self) -> Option<SecurityProtocol> {
        SECURITY_PROTOCOL_IDS
            .iter()
            .find(|(id, _)| *id == self.security_protocol)
            .map(|(_, p)| *p)
    }
}

/// Kafka's id of `protocol`.
pub fn security_protocol_id(protocol: SecurityProtocol) -> i16 {
    SECURITY_PROTOCOL_IDS
        .iter()
        .find(|(_, p)| *p == protocol)
        .map_or(-1, |(id, _)| *id)
}
