//! `TestPki`: a throw-away CA in a temp dir, issuing a server certificate for
//! localhost/127.0.0.1/::1 and client certificates with a given subject DN. For each identity it
//! writes Kafka's PEM keystore (PKCS#8 key followed by the chain, plain or encrypted for
//! `ssl.key.password`), and librdkafka's separate certificate and key files; `ca.pem` is the
//! truststore (`ssl.truststore.location`, `ssl.ca.location`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType,
};

/// The files of one identity.
#[derive(Debug, Clone)]
pub struct CertFiles {
    /// Kafka's `ssl.keystore.location` (type PEM): unencrypted PKCS#8 key, then the certificate.
    pub keystore: PathBuf,
    /// librdkafka's `ssl.certificate.location`: the certificate.
    pub certificate: PathBuf,
    /// librdkafka's `ssl.key.location`: the PKCS#8 key.
    pub key: PathBuf,
    /// The certificate, PEM (`ssl.keystore.certificate.chain`).
    pub certificate_pem: String,
    /// The key, PEM (`ssl.keystore.key`).
    pub key_pem: String,
    key_der: Vec<u8>,
}

impl CertFiles {
    /// Writes a Kafka keystore whose key is encrypted (PBES2: PBKDF2-HMAC-SHA256, AES-256-CBC,
    /// what `openssl pkcs8 -topk8 -v2 aes256` makes and Java reads) and returns its path.
    pub fn write_encrypted_keystore(&self, password: &str) -> PathBuf {
        let salt: [u8; 16] = rand::random();
        let iv: [u8; 16] = rand::random();
        let params = pkcs8::pkcs5::pbes2::Parameters::pbkdf2_sha256_aes256cbc(2048, &salt, &iv)
            .expect("pbes2 parameters");
        let info =
            pkcs8::PrivateKeyInfo::try_from(self.key_der.as_slice()).expect("our own PKCS#8 key");
        let encrypted = info
            .encrypt_with_params(params, password)
            .expect("encrypt key");
        let b64 = base64::engine::general_purpose::STANDARD.encode(encrypted.as_bytes());
        let mut pem = String::from("-----BEGIN ENCRYPTED PRIVATE KEY-----\n");
        for line in b64.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
            pem.push('\n');
        }
        pem.push_str("-----END ENCRYPTED PRIVATE KEY-----\n");
        pem.push_str(&self.certificate_pem);
        let path = self.keystore.with_extension("encrypted.pem");
        std::fs::write(&path, pem).expect("write encrypted keystore");
        path
    }
}

/// A CA and the directory its files go to (deleted on drop).
pub struct TestPki {
    dir: tempfile::TempDir,
    ca_cert: Certificate,
    ca_key: KeyPair,
    ca_path: PathBuf,
    issued: std::sync::atomic::AtomicUsize,
}

impl std::fmt::Debug for TestPki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestPki")
            .field("dir", &self.dir.path())
            .finish_non_exhaustive()
    }
}

impl Default for TestPki {
    fn default() -> Self {
        Self::new()
    }
}

/// Parses `CN=a,OU=b,O=c,C=US` (no escapes, no repeated attribute: rcgen keeps one value per
/// attribute type) into rcgen's DN, encoded so that its RFC 2253 form
/// is the same text (RFC 2253 lists the last RDN first).
fn distinguished_name(dn: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    for part in dn.split(',').rev() {
        let (k, v) = part
            .split_once('=')
            .unwrap_or_else(|| panic!("bad DN part {part:?}"));
        let t = match k.trim().to_ascii_uppercase().as_str() {
            "CN" => DnType::CommonName,
            "OU" => DnType::OrganizationalUnitName,
            "O" => DnType::OrganizationName,
            "L" => DnType::LocalityName,
            "ST" => DnType::StateOrProvinceName,
            "C" => DnType::CountryName,
            "DC" => DnType::CustomDnType(vec![0, 9, 2342, 19200300, 100, 1, 25]),
            "UID" => DnType::CustomDnType(vec![0, 9, 2342, 19200300, 100, 1, 1]),
            other => panic!("unsupported DN attribute {other}"),
        };
        name.push(t, v.trim());
    }
    name
}

impl TestPki {
    /// A new CA, `CN=Strom Test CA,O=Strom`.
    pub fn new() -> TestPki {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut params = CertificateParams::default();
        params.distinguished_name = distinguished_name("CN=Strom Test CA,O=Strom");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_key = KeyPair::generate().expect("CA key");
        let ca_cert = params.self_signed(&ca_key).expect("CA certificate");
        let ca_path = dir.path().join("ca.pem");
        std::fs::write(&ca_path, ca_cert.pem()).expect("write ca.pem");
        TestPki {
            dir,
            ca_cert,
            ca_key,
            ca_path,
            issued: Default::default(),
        }
    }

    /// The directory holding every file.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `ca.pem`: the truststore.
    pub fn ca_path(&self) -> &Path {
        &self.ca_path
    }

    /// The CA certificate, PEM (`ssl.truststore.certificates`).
    pub fn ca_pem(&self) -> String {
        self.ca_cert.pem()
    }

    /// A server certificate `CN=<name>,O=Strom` for localhost, 127.0.0.1 and ::1, usable for client
    /// auth too (a broker's keystore serves both directions).
    pub fn server(&self, name: &str) -> CertFiles {
        let mut params = CertificateParams::default();
        params.distinguished_name = distinguished_name(&format!("CN={name},O=Strom"));
        params.subject_alt_names = vec![
            SanType::DnsName("localhost".try_into().expect("dns name")),
            SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            SanType::IpAddress(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        self.issue(name, params)
    }

    /// A client certificate whose subject is `dn` (e.g. `CN=alice,OU=eng,O=Example,C=US`); its
    /// files are named after `file_stem`.
    pub fn client(&self, file_stem: &str, dn: &str) -> CertFiles {
        let mut params = CertificateParams::default();
        params.distinguished_name = distinguished_name(dn);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(file_stem, params)
    }

    fn issue(&self, stem: &str, mut params: CertificateParams) -> CertFiles {
        // Every identity gets its own files, even when names repeat (a rotated certificate).
        let n = self
            .issued
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let stem = format!("{stem}-{n}");
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        let key = KeyPair::generate().expect("key");
        let cert = params
            .signed_by(&key, &self.ca_cert, &self.ca_key)
            .expect("sign certificate");
        let certificate_pem = cert.pem();
        let key_pem = key.serialize_pem();
        let keystore = self.dir.path().join(format!("{stem}.keystore.pem"));
        let certificate = self.dir.path().join(format!("{stem}.crt"));
        let key_path = self.dir.path().join(format!("{stem}.key"));
        std::fs::write(&keystore, format!("{key_pem}{certificate_pem}")).expect("write keystore");
        std::fs::write(&certificate, &certificate_pem).expect("write certificate");
        std::fs::write(&key_path, &key_pem).expect("write key");
        CertFiles {
            keystore,
            certificate,
            key: key_path,
            certificate_pem,
            key_pem,
            key_der: key.serialize_der(),
        }
    }
}
