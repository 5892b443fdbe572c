//! The TLS side of a listener: [`TlsServerSettings`] read from the listener's keys
//! (`listener.name.<l>.ssl.*` before `ssl.*`), turned into a `rustls::ServerConfig`.
//!
//! `ssl.client.auth` is `none` (default), `requested` or `required`. On SASL_SSL listeners
//! Kafka reads it only with the listener prefix (KIP-684), because there the client is
//! authenticated by SASL; this does the same. Client certificates are checked against the
//! truststore, or the system's CAs when none is configured.

use std::sync::Arc;

use rustls::server::WebPkiClientVerifier;
use rustls::ServerConfig;
use x509_cert::der::Decode;

use crate::config::listener::SecurityProtocol;
use crate::config::listener_props::ListenerProps;
use crate::error::ConfigError;
use crate::principal::dn::name_rfc2253;
use crate::tls::stores::{crypto_provider, protocol_versions, Stores};

/// `ssl.client.auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// Ask for no certificate.
    None,
    /// Ask for one and verify it when sent; accept clients without one.
    Requested,
    /// Refuse clients without a valid certificate.
    Required,
}

/// What a listener's TLS is made of, read from config but not from disk yet (so it can be
/// re-read by [`crate::TlsAcceptorHandle::reload`]).
#[derive(Debug, Clone)]
pub struct TlsServerSettings {
    stores: Stores,
    client_auth: ClientAuth,
    props: Vec<(String, String)>,
    allow_dn_changes: bool,
    allow_san_changes: bool,
}

/// The identity a keystore presents, compared across dynamic updates as Kafka does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CertIdentity {
    pub(crate) subject: String,
    pub(crate) subject_alt_names: Option<Vec<u8>>,
}

/// A built server config and the identity of its certificate.
#[derive(Debug, Clone)]
pub(crate) struct BuiltServer {
    pub(crate) config: Arc<ServerConfig>,
    pub(crate) identity: CertIdentity,
    pub(crate) keystore_key: String,
}

/// A snapshot of the keys used, so `build` can run again later without the original `Properties`.
fn snapshot(l: &ListenerProps<'_>) -> Vec<(String, String)> {
    ["ssl.enabled.protocols", "ssl.cipher.suites"]
        .iter()
        .filter_map(|k| l.lookup(k).map(|s| (k.to_string(), s.value.to_string())))
        .collect()
}

impl TlsServerSettings {
    /// Reads a listener's TLS keys. `protocol` must use TLS.
    pub fn from_listener(
        l: &ListenerProps<'_>,
        protocol: SecurityProtocol,
    ) -> Result<Self, ConfigError> {
        let stores = Stores::from_lookup(l)?;
        if stores.keystore.is_none() {
            return Err(ConfigError::missing(
                l.prefixed_key("ssl.keystore.location"),
                format!("for {protocol} listener {} (or ssl.keystore.certificate.chain and ssl.keystore.key)", l.listener_name()),
            ));
        }
        let auth_setting = if protocol == SecurityProtocol::SaslSsl {
            l.lookup_prefixed_only("ssl.client.auth")
        } else {
            l.lookup("ssl.client.auth")
        };
        let client_auth = match auth_setting.map(|s| (s.key, s.value.trim().to_ascii_lowercase())) {
            None => ClientAuth::None,
            Some((_, v)) if v == "none" || v.is_empty() => ClientAuth::None,
            Some((_, v)) if v == "requested" => ClientAuth::Requested,
            Some((_, v)) if v == "required" => ClientAuth::Required,
            Some((k, v)) => {
                return Err(ConfigError::invalid(
                    k,
                    format!("invalid value {v:?} (expected required, requested or none)"),
                ))
            }
        };
        let flag = |key: &str| -> Result<bool, ConfigError> {
            match l.lookup(key).map(|s| (s.key, s.value.trim())) {
                None => Ok(false),
                Some((_, v)) if v.eq_ignore_ascii_case("true") => Ok(true),
                Some((_, v)) if v.eq_ignore_ascii_case("false") || v.is_empty() => Ok(false),
                Some((k, v)) => Err(ConfigError::invalid(
                    k,
                    format!("expected true or false, got {v:?}"),
                )),
            }
        };
        let settings = TlsServerSettings {
            stores,
            client_auth,
            props: snapshot(l),
            allow_dn_changes: flag("ssl.allow.dn.changes")?,
            allow_san_changes: flag("ssl.allow.san.changes")?,
        };
        // Validate the protocol and suite keys now, so errors surface before any file is read.
        protocol_versions(&settings.lookup_props())?;
        crypto_provider(&settings.lookup_props())?;
        Ok(settings)
    }

    /// The client authentication this listener asks for.
    pub fn client_auth(&self) -> ClientAuth {
        self.client_auth
    }

    fn lookup_props(&self) -> crate::config::properties::Properties {
        self.props
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    /// Reads the files and builds the config.
    pub fn build(&self) -> Result<Arc<ServerConfig>, ConfigError> {
        Ok(self.build_server()?.config)
    }

    pub(crate) fn build_server(&self) -> Result<BuiltServer, ConfigError> {
        let props = self.lookup_props();
        let provider = crypto_provider(&props)?;
        let versions = protocol_versions(&props)?;
        let Some((chain, key, keystore_key)) = self.stores.load_keystore()? else {
            return Err(ConfigError::missing(
                "ssl.keystore.location",
                "for a TLS listener",
            ));
        };
        let identity = identity(&keystore_key, &chain)?;
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&versions)
            .map_err(|source| ConfigError::Tls {
                key: "ssl.enabled.protocols".into(),
                source,
            })?;
        let builder = match self.client_auth {
            ClientAuth::None => builder.with_no_client_auth(),
            auth => {
                let trust_key = self.stores.truststore_key();
                let roots = self.stores.trust_roots()?;
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
                let verifier = if auth == ClientAuth::Requested {
                    verifier.allow_unauthenticated()
                } else {
                    verifier
                };
                let verifier = verifier.build().map_err(|e| {
                    ConfigError::invalid(
                        trust_key,
                        format!("cannot verify client certificates: {e}"),
                    )
                })?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let config = builder
            .with_single_cert(chain, key)
            .map_err(|source| ConfigError::Tls {
                key: keystore_key.clone(),
                source,
            })?;
        Ok(BuiltServer {
            config: Arc::new(config),
            identity,
            keystore_key,
        })
    }

    /// Kafka's rule for a dynamic keystore update: the new certificate keeps the subject DN and
    /// the subject alternative names, unless `ssl.allow.dn.changes` / `ssl.allow.san.changes`.
    pub(crate) fn check_compatible(
        &self,
        old: &CertIdentity,
        new: &BuiltServer,
    ) -> Result<(), ConfigError> {
        if !self.allow_dn_changes && old.subject != new.identity.subject {
            return Err(ConfigError::invalid(
                new.keystore_key.clone(),
                format!(
                    "Keystore DistinguishedName does not match: existing={}, new={}",
                    old.subject, new.identity.subject
                ),
            ));
        }
        if !self.allow_san_changes && old.subject_alt_names != new.identity.subject_alt_names {
            return Err(ConfigError::invalid(
                new.keystore_key.clone(),
                "Keystore SubjectAltNames do not match",
            ));
        }
        Ok(())
    }
}

const SUBJECT_ALT_NAME: &str = "2.5.29.17";

fn identity(
    key: &str,
    chain: &[rustls_pki_types::CertificateDer<'_>],
) -> Result<CertIdentity, ConfigError> {
    let leaf = chain
        .first()
        .ok_or_else(|| ConfigError::invalid(key, "empty certificate chain"))?;
    let cert = x509_cert::Certificate::from_der(leaf.as_ref())
        .map_err(|e| ConfigError::invalid(key, format!("unreadable certificate: {e}")))?;
    let tbs = &cert.tbs_certificate;
    let subject_alt_names = tbs.extensions.as_ref().and_then(|exts| {
        exts.iter()
            .find(|e| e.extn_id.to_string() == SUBJECT_ALT_NAME)
            .map(|e| e.extn_value.as_bytes().to_vec())
    });
    Ok(CertIdentity {
        subject: name_rfc2253(&tbs.subject),
        subject_alt_names,
    })
}
