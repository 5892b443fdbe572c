//! PEM material for TLS: certificate chains, private keys (PKCS#8, PKCS#1, SEC1; PKCS#8
//! encrypted with PBES2 as Kafka's PEM keystores require) and trust anchors, from files or
//! inline config values. Every error names the config key that pointed at the material.

use std::path::Path;

use base64::Engine as _;
use pkcs8::der::Decode as _;
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::config::properties::Password;
use crate::error::ConfigError;

pub(crate) fn read_file(key: &str, path: &str) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(Path::new(path)).map_err(|source| ConfigError::Io {
        key: key.to_string(),
        path: path.into(),
        source,
    })
}

/// Every certificate in `pem`, in order; at least one.
pub(crate) fn certificates(
    key: &str,
    pem: &[u8],
) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ConfigError::invalid(key, format!("invalid PEM certificate: {e}")))?;
    if certs.is_empty() {
        return Err(ConfigError::invalid(
            key,
            "no PEM certificate (-----BEGIN CERTIFICATE-----) found",
        ));
    }
    Ok(certs)
}

const ENCRYPTED_BEGIN: &str = "-----BEGIN ENCRYPTED PRIVATE KEY-----";
const ENCRYPTED_END: &str = "-----END ENCRYPTED PRIVATE KEY-----";

/// The private key in `pem`: an encrypted PKCS#8 key is decrypted with `password`
/// (`ssl.key.password`); a plain key is used as is.
pub(crate) fn private_key(
    key: &str,
    pem: &[u8],
    password: Option<&Password>,
    password_key: &str,
) -> Result<PrivateKeyDer<'static>, ConfigError> {
    let text = String::from_utf8_lossy(pem);
    if let Some(start) = text.find(ENCRYPTED_BEGIN) {
        let body = &text[start + ENCRYPTED_BEGIN.len()..];
        let end = body
            .find(ENCRYPTED_END)
            .ok_or_else(|| ConfigError::invalid(key, "unterminated ENCRYPTED PRIVATE KEY block"))?;
        let b64: String = body[..end].chars().filter(|c| !c.is_whitespace()).collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| {
                ConfigError::invalid(key, format!("invalid base64 in ENCRYPTED PRIVATE KEY: {e}"))
            })?;
        let password = password.ok_or_else(|| {
            ConfigError::missing(
                password_key,
                format!("to decrypt the encrypted private key in {key}"),
            )
        })?;
        let info = pkcs8::EncryptedPrivateKeyInfo::from_der(&der)
            .map_err(|e| ConfigError::invalid(key, format!("invalid encrypted PKCS#8 key: {e}")))?;
        let plain = info.decrypt(password.expose()).map_err(|e| {
            ConfigError::invalid(
                password_key,
                format!("cannot decrypt the private key in {key} (wrong password, or an encryption other than PBES2 with PBKDF2/scrypt and AES-CBC): {e}"),
            )
        })?;
        return Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            plain.as_bytes().to_vec(),
        )));
    }
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| {
        ConfigError::invalid(
            key,
            format!("no usable PEM private key (PKCS#8, PKCS#1 or SEC1) found: {e}"),
        )
    })
}

/// Trust anchors from `pem`.
pub(crate) fn root_store(key: &str, pem: &[u8]) -> Result<RootCertStore, ConfigError> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(key, pem)? {
        roots
            .add(cert)
            .map_err(|e| ConfigError::invalid(key, format!("unusable CA certificate: {e}")))?;
    }
    Ok(roots)
}

/// The operating system's trust anchors (used when no truststore is configured, as a JVM uses
/// its default truststore).
pub(crate) fn native_roots(key: &str) -> Result<RootCertStore, ConfigError> {
    let loaded = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(loaded.certs);
    if added == 0 {
        return Err(ConfigError::missing(
            key,
            "because the system trust store holds no usable CA certificate",
        ));
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_key() {
        let e = certificates("ssl.truststore.certificates", b"nothing").unwrap_err();
        assert_eq!(e.key(), "ssl.truststore.certificates");
        let e = private_key("ssl.keystore.key", b"nothing", None, "ssl.key.password").unwrap_err();
        assert_eq!(e.key(), "ssl.keystore.key");
        let enc = format!("{ENCRYPTED_BEGIN}\nAAAA\n{ENCRYPTED_END}\n");
        let e = private_key(
            "ssl.keystore.location",
            enc.as_bytes(),
            None,
            "ssl.key.password",
        )
        .unwrap_err();
        assert_eq!(e.key(), "ssl.key.password");
        let e = read_file("ssl.keystore.location", "/nonexistent/x.pem").unwrap_err();
        assert!(e
            .to_string()
            .starts_with("ssl.keystore.location: cannot read /nonexistent/x.pem"));
    }
}
