//! Keystore and truststore settings as Kafka names them, shared by the server side (per
//! listener) and the client side (client properties): `ssl.keystore.type=PEM` with
//! `ssl.keystore.location` (one PEM file: private key and certificate chain) or
//! `ssl.keystore.certificate.chain` + `ssl.keystore.key` (inline PEM), `ssl.key.password`;
//! `ssl.truststore.type=PEM` with `ssl.truststore.location` or `ssl.truststore.certificates`;
//! `ssl.enabled.protocols`, `ssl.cipher.suites`. Kafka's consistency rules and messages apply
//! (both a location and inline material, a store password with PEM, ...).
//!
//! Only PEM stores exist here (no JKS/PKCS12: there is no JVM). An unset `ssl.keystore.type`
//! (Kafka's default is JKS) is read as PEM. Kafka insists that a PEM keystore *file* hold an
//! encrypted key and that `ssl.key.password` be set; this crate also accepts an unencrypted key
//! there, since refusing it protects nothing.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::{RootCertStore, SupportedProtocolVersion};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::listener_props::{ListenerProps, Setting};
use crate::config::properties::{split_list, Password, Properties};
use crate::error::ConfigError;
use crate::tls::pem;

/// Where keys are read from: a listener's view (prefixed keys first) or plain properties.
pub(crate) trait Lookup {
    fn lookup(&self, key: &str) -> Option<Setting<'_>>;

    /// The trimmed non-empty value and the key that held it.
    fn setting(&self, key: &str) -> Option<(String, String)> {
        self.lookup(key).and_then(|s| {
            let v = s.value.trim();
            (!v.is_empty()).then(|| (s.key.to_string(), v.to_string()))
        })
    }
}

impl Lookup for ListenerProps<'_> {
    fn lookup(&self, key: &str) -> Option<Setting<'_>> {
        ListenerProps::lookup(self, key)
    }
}

impl Lookup for Properties {
    fn lookup(&self, key: &str) -> Option<Setting<'_>> {
        self.iter()
            .find(|(k, _)| *k == key)
            .map(|(key, value)| Setting { key, value })
    }
}

/// Where the certificate chain and private key come from.
#[derive(Debug, Clone)]
pub(crate) enum KeystoreSource {
    File {
        key: String,
        path: String,
    },
    Inline {
        chain_key: String,
        chain: String,
        key_key: String,
        private_key: Password,
    },
    /// librdkafka's separate files (`ssl.certificate.location`, `ssl.key.location`).
    Files {
        chain_key: String,
        chain_path: String,
        key_key: String,
        key_path: String,
    },
}

/// Where trust anchors come from.
#[derive(Debug, Clone)]
pub(crate) enum TruststoreSource {
    File { key: String, path: String },
    Inline { key: String, pem: String },
}

/// The key material of one side of a connection, not yet read.
#[derive(Debug, Clone)]
pub(crate) struct Stores {
    pub(crate) keystore: Option<KeystoreSource>,
    pub(crate) key_password: Option<(String, Password)>,
    pub(crate) truststore: Option<TruststoreSource>,
}

fn check_pem_type(l: &dyn Lookup, key: &str) -> Result<(), ConfigError> {
    match l.setting(key) {
        Some((k, v)) if !v.eq_ignore_ascii_case("PEM") => Err(ConfigError::invalid(
            k,
            format!("store type {v} is not supported; only PEM is (there is no JVM keystore here)"),
        )),
        _ => Ok(()),
    }
}

impl Stores {
    pub(crate) fn from_lookup(l: &dyn Lookup) -> Result<Stores, ConfigError> {
        check_pem_type(l, "ssl.keystore.type")?;
        check_pem_type(l, "ssl.truststore.type")?;
        let location = l.setting("ssl.keystore.location");
        let chain = l.setting("ssl.keystore.certificate.chain");
        let private_key = l.setting("ssl.keystore.key");
        if let Some((k, _)) = l.setting("ssl.keystore.password") {
            return Err(ConfigError::invalid(k, "SSL key store password cannot be specified with PEM format, only key password may be specified"));
        }
        let keystore = match (location, chain, private_key) {
            (Some((k, _)), _, Some(_)) => {
                return Err(ConfigError::invalid(
                    k,
                    "Both SSL key store location and separate private key are specified.",
                ))
            }
            (Some((key, path)), None, None) => Some(KeystoreSource::File { key, path }),
            (Some((k, _)), Some(_), None) => {
                return Err(ConfigError::invalid(
                    k,
                    "Both SSL key store location and separate certificate chain are specified.",
                ))
            }
            (None, Some((chain_key, chain)), Some((key_key, pk))) => Some(KeystoreSource::Inline {
                chain_key,
                chain,
                key_key,
                private_key: Password::new(pk),
            }),
            (None, Some((k, _)), None) => {
                return Err(ConfigError::invalid(
                    k,
                    "SSL certificate chain is specified, but private key is not specified",
                ))
            }
            (None, None, Some((k, _))) => {
                return Err(ConfigError::invalid(
                    k,
                    "SSL private key is specified, but certificate chain is not specified",
                ))
            }
            (None, None, None) => None,
        };
        let key_password = l
            .setting("ssl.key.password")
            .map(|(k, v)| (k, Password::new(v)));
        if let Some((k, _)) = l.setting("ssl.truststore.password") {
            return Err(ConfigError::invalid(
                k,
                "SSL trust store password cannot be specified for PEM format.",
            ));
        }
        let truststore =
            match (
                l.setting("ssl.truststore.location"),
                l.setting("ssl.truststore.certificates"),
            ) {
                (Some((k, _)), Some(_)) => return Err(ConfigError::invalid(
                    k,
                    "Both SSL trust store location and separate trust certificates are specified.",
                )),
                (Some((key, path)), None) => Some(TruststoreSource::File { key, path }),
                (None, Some((key, pem))) => Some(TruststoreSource::Inline { key, pem }),
                (None, None) => None,
            };
        Ok(Stores {
            keystore,
            key_password,
            truststore,
        })
    }

    /// Reads the keystore: (chain, key, the config key to blame for a bad pair).
    pub(crate) fn load_keystore(
        &self,
    ) -> Result<Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>, String)>, ConfigError>
    {
        let (pw_key, password) = match &self.key_password {
            Some((k, p)) => (k.as_str(), Some(p)),
            None => ("ssl.key.password", None),
        };
        match &self.keystore {
            None => Ok(None),
            Some(KeystoreSource::File { key, path }) => {
                let bytes = pem::read_file(key, path)?;
                let chain = pem::certificates(key, &bytes)?;
                let private_key = pem::private_key(key, &bytes, password, pw_key)?;
                Ok(Some((chain, private_key, key.clone())))
            }
            Some(KeystoreSource::Files {
                chain_key,
                chain_path,
                key_key,
                key_path,
            }) => {
                let chain = pem::certificates(chain_key, &pem::read_file(chain_key, chain_path)?)?;
                let private_key = pem::private_key(
                    key_key,
                    &pem::read_file(key_key, key_path)?,
                    password,
                    pw_key,
                )?;
                Ok(Some((chain, private_key, key_key.clone())))
            }
            Some(KeystoreSource::Inline {
                chain_key,
                chain,
                key_key,
                private_key,
            }) => {
                let chain = pem::certificates(chain_key, chain.as_bytes())?;
                let private_key =
                    pem::private_key(key_key, private_key.expose().as_bytes(), password, pw_key)?;
                Ok(Some((chain, private_key, key_key.clone())))
            }
        }
    }

    /// The key that names the truststore, for errors.
    pub(crate) fn truststore_key(&self) -> String {
        match &self.truststore {
            Some(TruststoreSource::File { key, .. })
            | Some(TruststoreSource::Inline { key, .. }) => key.clone(),
            None => "ssl.truststore.location".to_string(),
        }
    }

    /// The configured truststore, else the system's CAs (as a JVM falls back to its default truststore).
    pub(crate) fn trust_roots(&self) -> Result<RootCertStore, ConfigError> {
        match self.load_truststore()? {
            Some(roots) => Ok(roots),
            None => pem::native_roots(&self.truststore_key()),
        }
    }

    /// Reads the truststore, if one is configured.
    pub(crate) fn load_truststore(&self) -> Result<Option<RootCertStore>, ConfigError> {
        match &self.truststore {
            None => Ok(None),
            Some(TruststoreSource::File { key, path }) => {
                let bytes = pem::read_file(key, path)?;
                pem::root_store(key, &bytes).map(Some)
            }
            Some(TruststoreSource::Inline { key, pem: text }) => {
                pem::root_store(key, text.as_bytes()).map(Some)
            }
        }
    }
}

/// `ssl.enabled.protocols` (default `TLSv1.2,TLSv1.3`). Protocols older than TLS 1.2 do not
/// exist in rustls; they are skipped with a warning, and a list with nothing else is refused.
pub(crate) fn protocol_versions(
    l: &dyn Lookup,
) -> Result<Vec<&'static SupportedProtocolVersion>, ConfigError> {
    let Some((key, value)) = l.setting("ssl.enabled.protocols") else {
        return Ok(vec![&rustls::version::TLS13, &rustls::version::TLS12]);
    };
    let mut versions = Vec::new();
    for name in split_list(&value) {
        match name.as_str() {
            "TLSv1.3" => versions.push(&rustls::version::TLS13),
            "TLSv1.2" => versions.push(&rustls::version::TLS12),
            "TLSv1.1" | "TLSv1" | "SSLv3" | "SSLv2Hello" => {
                tracing::warn!(key = %key, protocol = %name, "ignoring a TLS protocol older than TLSv1.2 (not supported)")
            }
            _ => {
                return Err(ConfigError::invalid(
                    key,
                    format!("unknown protocol {name} (expected TLSv1.2 and/or TLSv1.3)"),
                ))
            }
        }
    }
    if versions.is_empty() {
        return Err(ConfigError::invalid(
            key,
            "no supported protocol enabled (TLSv1.2, TLSv1.3)",
        ));
    }
    Ok(versions)
}

/// rustls' `ring` provider. rustls 0.23.48 deprecates it because ring has no post-quantum key
/// exchange (X25519MLKEM768) and points to aws-lc-rs; the project chose ring so the build needs
/// no cmake or C library beyond what `cc` compiles. Classical X25519/P-256/P-384 remain, which is
/// what Kafka's JVM clients negotiate anyway. This is the one place that names it.
#[allow(deprecated)]
pub(crate) fn ring_provider() -> CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// The `ring` provider, its cipher suites restricted by `ssl.cipher.suites` when set (Java/IANA
/// names; TLS 1.3 suites as `TLS_AES_128_GCM_SHA256`).
pub(crate) fn crypto_provider(l: &dyn Lookup) -> Result<Arc<CryptoProvider>, ConfigError> {
    let mut provider = ring_provider();
    if let Some((key, value)) = l.setting("ssl.cipher.suites") {
        let wanted = split_list(&value);
        provider.cipher_suites.retain(|s| {
            let name = s.suite().as_str().unwrap_or_default();
            let iana = name.replacen("TLS13_", "TLS_", 1);
            wanted.iter().any(|w| w == name || *w == iana)
        });
        if provider.cipher_suites.is_empty() {
            return Err(ConfigError::invalid(
                key,
                format!("none of the cipher suites {value} is supported"),
            ));
        }
    }
    Ok(Arc::new(provider))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (config pairs, the key the error must name, a fragment of its message)
    type Case = (
        &'static [(&'static str, &'static str)],
        &'static str,
        &'static str,
    );

    fn props(pairs: &[(&str, &str)]) -> Properties {
        pairs.iter().copied().collect()
    }

    #[test]
    fn kafka_consistency_rules() {
        let cases: &[Case] = &[
            (
                &[("ssl.keystore.type", "JKS")],
                "ssl.keystore.type",
                "only PEM",
            ),
            (
                &[
                    ("ssl.keystore.location", "a"),
                    ("ssl.keystore.password", "p"),
                ],
                "ssl.keystore.password",
                "cannot be specified with PEM",
            ),
            (
                &[("ssl.keystore.location", "a"), ("ssl.keystore.key", "k")],
                "ssl.keystore.location",
                "Both SSL key store location",
            ),
            (
                &[("ssl.keystore.certificate.chain", "c")],
                "ssl.keystore.certificate.chain",
                "private key is not specified",
            ),
            (
                &[("ssl.keystore.key", "k")],
                "ssl.keystore.key",
                "certificate chain is not specified",
            ),
            (
                &[
                    ("ssl.truststore.location", "a"),
                    ("ssl.truststore.certificates", "c"),
                ],
                "ssl.truststore.location",
                "Both SSL trust store",
            ),
            (
                &[("ssl.truststore.password", "p")],
                "ssl.truststore.password",
                "cannot be specified for PEM",
            ),
        ];
        for (pairs, key, needle) in cases {
            let e = Stores::from_lookup(&props(pairs)).unwrap_err();
            assert_eq!(e.key(), *key, "{e}");
            assert!(e.to_string().contains(needle), "{e}");
        }
    }

    #[test]
    fn protocols_and_suites() {
        assert_eq!(protocol_versions(&props(&[])).unwrap().len(), 2);
        let v = protocol_versions(&props(&[("ssl.enabled.protocols", "TLSv1.2,TLSv1.1")])).unwrap();
        assert_eq!(v.len(), 1);
        assert!(protocol_versions(&props(&[("ssl.enabled.protocols", "TLSv1")])).is_err());
        assert!(protocol_versions(&props(&[("ssl.enabled.protocols", "TLSv9")])).is_err());
        let p = crypto_provider(&props(&[(
            "ssl.cipher.suites",
            "TLS_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        )]))
        .unwrap();
        assert_eq!(p.cipher_suites.len(), 2);
        assert_eq!(
            crypto_provider(&props(&[("ssl.cipher.suites", "NOPE")]))
                .unwrap_err()
                .key(),
            "ssl.cipher.suites"
        );
    }
}
