//! Strom's security: everything between "a socket was accepted" and "this connection is
//! `User:alice`", with Kafka's config names and semantics as the contract.
//!
//! - [`ListenerConfig`]: `listeners`, `advertised.listeners`, `listener.security.protocol.map`,
//!   `inter.broker.listener.name`, `controller.listener.names`; [`ListenerProps`] looks keys up
//!   as `listener.name.<name>.<key>` before `<key>`.
//! - TLS ([`TlsServerSettings`] → [`TlsAcceptorHandle`], reloadable; [`TlsClientSettings`]).
//! - Principals ([`KafkaPrincipal`], RFC 2253 subject DNs, [`SslPrincipalMapper`]).
//! - SASL servers as sans-IO state machines driven with SaslAuthenticate bytes (PLAIN,
//!   SCRAM-SHA-256/512, OAUTHBEARER with JWKS), created by a per-listener [`SaslServerFactory`],
//!   and the matching clients.
//! - [`ClientSecurity`]: a client's `--command-config` (Kafka and librdkafka keys), and the
//!   broker's own inter-broker/controller logins.
//! - [`ListenerSecurity`]: the above assembled for one bound listener, in one call.
//! - `test_support` (feature `test-support`): CA, certificates, keystores, JWKS and JWTs made at test time.
//!
//! Dependency rule: this crate depends on no other strom crate; the broker and the client
//! depend on it. It does no socket I/O of its own except fetching an https JWKS.

mod client_security;
mod config;
mod error;
mod listener_security;
mod principal;
mod sasl;
mod tls;

#[cfg(feature = "test-support")]
pub mod test_support;

pub use client_security::{ClientSecurity, SaslCredentials};
pub use config::jaas::{
    ControlFlag, JaasConfig, JaasEntry, JaasError, OAUTHBEARER_LOGIN_MODULE, PLAIN_LOGIN_MODULE,
    SCRAM_LOGIN_MODULE,
};
pub use config::listener::{
    Listener, ListenerConfig, ListenerName, ProcessRoles, SecurityProtocol,
};
pub use config::listener_props::{ListenerProps, Setting};
pub use config::properties::{Password, Properties};
pub use error::{AuthError, AuthErrorKind, ConfigError};
pub use listener_security::ListenerSecurity;
pub use principal::dn::{subject_dn_rfc2253, DnError};
pub use principal::kafka_principal::{KafkaPrincipal, PrincipalError, SslPrincipalBuilder};
pub use principal::mapper::{InvalidRule, NoMatchingRule, SslPrincipalMapper};
pub use sasl::factory::{SaslServerFactory, UnsupportedMechanism};
pub use sasl::failed_login::FailedLoginLog;
pub use sasl::oauthbearer::jwks::{
    JwksCache, JwksError, JwksLocation, JwksRefresher, JwksSettings,
};
pub use sasl::oauthbearer::server::{OAuthBearerClient, OAuthBearerServer};
pub use sasl::oauthbearer::validator::{OAuthBearerValidator, ValidatedToken, ValidatorSettings};
pub use sasl::plain::{PlainClient, PlainServer, PlainUsers};
pub use sasl::scram::bootstrap::BootstrapScramCredential;
pub use sasl::scram::client::ScramClient;
pub use sasl::scram::credential::{
    DelegationTokenCredential, InMemoryScramCredentialStore, InvalidCredential, ScramCredential,
    ScramCredentialStore,
};
pub use sasl::scram::server::ScramServer;
pub use sasl::scram::ScramMechanism;
pub use sasl::{Authenticated, ClientStep, Mechanism, SaslClient, SaslServer, Step};
pub use tls::acceptor::{PreparedTls, TlsAcceptorHandle};
pub use tls::client::{server_name, ServerVerification, TlsClientSettings};
pub use tls::server::{ClientAuth, TlsServerSettings};
pub use tls::{is_dynamic_tls_key, DYNAMIC_TLS_KEYS};
