//! `KafkaPrincipal`: who a connection is, in Kafka's `Type:name` form, and how a listener's
//! protocol decides it (Kafka's `DefaultKafkaPrincipalBuilder`): `User:ANONYMOUS` on PLAINTEXT
//! and on SSL without a client certificate, the mapped certificate subject on SSL, the SASL
//! identity on SASL_PLAINTEXT and SASL_SSL.

use std::fmt;

use rustls_pki_types::CertificateDer;

use crate::principal::dn::{subject_dn_rfc2253, DnError};
use crate::principal::mapper::{NoMatchingRule, SslPrincipalMapper};

/// A principal as Kafka names it in ACLs (`User:alice`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KafkaPrincipal {
    /// Always `User` for principals this crate builds.
    pub principal_type: String,
    /// The name (`ANONYMOUS`, a SASL user, a mapped certificate DN, a token's subject).
    pub name: String,
    /// Whether the credential was a delegation token (SCRAM `tokenauth=true`).
    pub token_authenticated: bool,
}

impl KafkaPrincipal {
    /// Kafka's `KafkaPrincipal.USER_TYPE`.
    pub const USER_TYPE: &'static str = "User";

    /// `User:<name>`.
    pub fn user(name: impl Into<String>) -> Self {
        KafkaPrincipal {
            principal_type: Self::USER_TYPE.to_string(),
            name: name.into(),
            token_authenticated: false,
        }
    }

    /// `User:ANONYMOUS`, Kafka's principal for unauthenticated connections.
    pub fn anonymous() -> Self {
        Self::user("ANONYMOUS")
    }

    /// Parses `Type:name` (as in `super.users` and ACLs).
    pub fn parse(text: &str) -> Option<Self> {
        let (principal_type, name) = text.split_once(':')?;
        if principal_type.is_empty() {
            return None;
        }
        Some(KafkaPrincipal {
            principal_type: principal_type.to_string(),
            name: name.to_string(),
            token_authenticated: false,
        })
    }
}

impl fmt::Display for KafkaPrincipal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.principal_type, self.name)
    }
}

/// Why an SSL principal could not be built; Kafka fails the connection's authentication then.
#[derive(Debug, thiserror::Error)]
pub enum PrincipalError {
    /// The peer certificate's subject could not be read.
    #[error(transparent)]
    Certificate(#[from] DnError),
    /// `ssl.principal.mapping.rules` has no rule for the DN.
    #[error(transparent)]
    NoMatchingRule(#[from] NoMatchingRule),
}

/// Builds the principal of an SSL connection from its peer certificate chain.
#[derive(Debug, Clone)]
pub struct SslPrincipalBuilder {
    mapper: SslPrincipalMapper,
}

impl SslPrincipalBuilder {
    /// A builder applying `mapper` (from `ssl.principal.mapping.rules`).
    pub fn new(mapper: SslPrincipalMapper) -> Self {
        SslPrincipalBuilder { mapper }
    }

    /// The principal for a completed handshake: `User:ANONYMOUS` without a client certificate
    /// (`ssl.client.auth=none|requested`), else the end-entity subject DN (RFC 2253) mapped by
    /// the rules. Pass `tokio_rustls::server::TlsStream::get_ref().1.peer_certificates()`.
    pub fn principal(
        &self,
        peer_certificates: Option<&[CertificateDer<'_>]>,
    ) -> Result<KafkaPrincipal, PrincipalError> {
        match peer_certificates.and_then(|chain| chain.first()) {
            None => Ok(KafkaPrincipal::anonymous()),
            Some(end_entity) => {
                let dn = subject_dn_rfc2253(end_entity.as_ref())?;
                Ok(KafkaPrincipal::user(self.mapper.name(&dn)?))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_parse() {
        assert_eq!(KafkaPrincipal::anonymous().to_string(), "User:ANONYMOUS");
        let p = KafkaPrincipal::parse("User:CN=a,O=b").unwrap();
        assert_eq!(p, KafkaPrincipal::user("CN=a,O=b"));
        assert!(KafkaPrincipal::parse("nocolon").is_none());
    }

    #[test]
    fn no_certificate_is_anonymous() {
        let b = SslPrincipalBuilder::new(SslPrincipalMapper::default());
        assert_eq!(b.principal(None).unwrap(), KafkaPrincipal::anonymous());
        assert_eq!(b.principal(Some(&[])).unwrap(), KafkaPrincipal::anonymous());
    }
}
