//! The client side of TLS: a `rustls::ClientConfig` from client properties — Kafka's keys
//! (`ssl.truststore.*`, `ssl.keystore.*`, `ssl.key.password`, `ssl.endpoint.identification.algorithm`,
//! `ssl.enabled.protocols`, `ssl.cipher.suites`) and librdkafka's (`ssl.ca.location`,
//! `ssl.ca.pem`, `ssl.certificate.location`, `ssl.key.location`, `ssl.certificate.pem`,
//! `ssl.key.pem`, `enable.ssl.certificate.verification`) — for the `strom` CLI and for the
//! broker's own inter-broker and controller connections (built from the listener's keys).
//!
//! `ssl.endpoint.identification.algorithm` defaults to `https` (verify the host name, Kafka's
//! default since 2.0); an empty value keeps chain verification but skips the name check.
//! Without a truststore the system's CAs are trusted, as a JVM trusts its default truststore.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use crate::config::listener_props::ListenerProps;
use crate::config::properties::Properties;
use crate::error::ConfigError;
use crate::tls::stores::{
    crypto_provider, protocol_versions, KeystoreSource, Lookup, Stores, TruststoreSource,
};

/// Server certificate checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerVerification {
    /// Chain and host name (`ssl.endpoint.identification.algorithm=https`).
    Full,
    /// Chain only (`ssl.endpoint.identification.algorithm=`).
    NoHostname,
    /// Nothing (librdkafka's `enable.ssl.certificate.verification=false`): for tests only.
    None,
}

/// A client's TLS settings, not yet read from disk.
#[derive(Debug, Clone)]
pub struct TlsClientSettings {
    stores: Stores,
    verification: ServerVerification,
    protocols_and_suites: Properties,
}

impl TlsClientSettings {
    /// From client properties (`--command-config`).
    pub fn from_properties(props: &Properties) -> Result<Self, ConfigError> {
        Self::from_lookup(props)
    }

    /// From a listener's keys, for the broker's outgoing connections on that listener.
    pub fn from_listener(l: &ListenerProps<'_>) -> Result<Self, ConfigError> {
        Self::from_lookup(l)
    }

    fn from_lookup(l: &dyn Lookup) -> Result<Self, ConfigError> {
        let mut stores = Stores::from_lookup(l)?;
        if stores.truststore.is_none() {
            stores.truststore = match (l.setting("ssl.ca.location"), l.setting("ssl.ca.pem")) {
                (Some((key, path)), _) => Some(TruststoreSource::File { key, path }),
                (None, Some((key, pem))) => Some(TruststoreSource::Inline { key, pem }),
                (None, None) => None,
            };
        }
        if stores.keystore.is_none() {
            stores.keystore = match (
                l.setting("ssl.certificate.location"),
                l.setting("ssl.key.location"),
                l.setting("ssl.certificate.pem"),
                l.setting("ssl.key.pem"),
            ) {
                (Some((chain_key, chain_path)), Some((key_key, key_path)), _, _) => {
                    Some(KeystoreSource::Files { chain_key, chain_path, key_key, key_path })
                }
                (None, None, Some((chain_key, chain)), Some((key_key, pk))) => Some(KeystoreSource::Inline {
                    chain_key,
                    chain,
                    key_key,
                    private_key: crate::config::properties::Password::new(pk),
                }),
                (Some((k, _)), None, _, _) | (None, None, Some((k, _)), None) => {
                    return Err(ConfigError::invalid(k, "a client certificate needs its private key (ssl.key.location / ssl.key.pem)"))
                }
                (None, Some((k, _)), _, _) | (None, None, None, Some((k, _))) => {
                    return Err(ConfigError::invalid(k, "a private key needs its certificate (ssl.certificate.location / ssl.certificate.pem)"))
                }
                (None, None, None, None) => None,
            };
        }
        let verify = match l.setting("enable.ssl.certificate.verification") {
            Some((_, v)) if v.eq_ignore_ascii_case("false") => false,
            Some((_, v)) if v.eq_ignore_ascii_case("true") => true,
            Some((k, v)) => {
                return Err(ConfigError::invalid(
                    k,
                    format!("expected true or false, got {v:?}"),
                ))
            }
            None => true,
        };
        let verification = if !verify {
            ServerVerification::None
        } else {
            match l
                .lookup("ssl.endpoint.identification.algorithm")
                .map(|s| (s.key, s.value.trim()))
            {
                None => ServerVerification::Full,
                Some((_, v)) if v.eq_ignore_ascii_case("https") => ServerVerification::Full,
                Some((_, v)) if v.is_empty() || v.eq_ignore_ascii_case("none") => {
                    ServerVerification::NoHostname
                }
                Some((k, v)) => {
                    return Err(ConfigError::invalid(
                        k,
                        format!("unsupported algorithm {v:?} (expected https or empty)"),
                    ))
                }
            }
        };
        let mut protocols_and_suites = Properties::new();
        for key in ["ssl.enabled.protocols", "ssl.cipher.suites"] {
            if let Some((_, v)) = l.setting(key) {
                protocols_and_suites.insert(key, v);
            }
        }
        protocol_versions(&protocols_and_suites)?;
        crypto_provider(&protocols_and_suites)?;
        Ok(TlsClientSettings {
            stores,
            verification,
            protocols_and_suites,
        })
    }

    /// How the server's certificate will be checked.
    pub fn verification(&self) -> ServerVerification {
        self.verification
    }

    /// Reads the files and builds the config.
    pub fn build(&self) -> Result<Arc<ClientConfig>, ConfigError> {
        let provider = crypto_provider(&self.protocols_and_suites)?;
        let versions = protocol_versions(&self.protocols_and_suites)?;
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&versions)
            .map_err(|source| ConfigError::Tls {
                key: "ssl.enabled.protocols".into(),
                source,
            })?;
        let trust_key = self.stores.truststore_key();
        let builder = match self.verification {
            ServerVerification::None => {
                tracing::warn!("TLS server certificate verification is disabled (enable.ssl.certificate.verification=false)");
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(AcceptAnyServerCert(provider)))
            }
            verification => {
                let roots = self.stores.trust_roots()?;
                let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                    .build()
                    .map_err(|e| {
                        ConfigError::invalid(trust_key, format!("cannot verify servers: {e}"))
                    })?;
                if verification == ServerVerification::Full {
                    builder.with_webpki_verifier(webpki)
                } else {
                    builder
                        .dangerous()
                        .with_custom_certificate_verifier(Arc::new(SkipHostnameVerifier(webpki)))
                }
            }
        };
        let config =
            match self.stores.load_keystore()? {
                Some((chain, key, keystore_key)) => builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|source| ConfigError::Tls {
                        key: keystore_key,
                        source,
                    })?,
                None => builder.with_no_client_auth(),
            };
        Ok(Arc::new(config))
    }
}

/// The `ServerName` to connect to `host` with (a DNS name or an IP address).
pub fn server_name(host: &str) -> Result<ServerName<'static>, ConfigError> {
    ServerName::try_from(
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
    )
    .map_err(|e| {
        ConfigError::invalid(
            "bootstrap.servers",
            format!("invalid TLS server name {host:?}: {e}"),
        )
    })
}

/// Full chain verification, but a certificate for another name is accepted.
#[derive(Debug)]
struct SkipHostnameVerifier(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for SkipHostnameVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// No verification at all (the handshake signatures are still checked, so the peer holds the key
/// of the certificate it sent).
#[derive(Debug)]
struct AcceptAnyServerCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
