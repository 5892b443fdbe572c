//! `TestJwtKeys`: an RSA (RS256) and an EC P-256 (ES256) signing key, their JWKS, and JWTs signed
//! with given claims, for OAUTHBEARER tests. The 2048-bit RSA key is generated once per process
//! (it takes a while) and shared by every `TestJwtKeys`; the EC key is fresh each time.

use std::path::Path;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;
use serde_json::{json, Value};

/// The signing algorithm of a test token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtAlg {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// ECDSA P-256 with SHA-256.
    Es256,
}

struct RsaMaterial {
    pkcs1_der: Vec<u8>,
    n: Vec<u8>,
    e: Vec<u8>,
}

fn rsa_material() -> &'static RsaMaterial {
    static RSA: OnceLock<RsaMaterial> = OnceLock::new();
    RSA.get_or_init(|| {
        let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("RSA key");
        RsaMaterial {
            pkcs1_der: key.to_pkcs1_der().expect("PKCS#1").as_bytes().to_vec(),
            n: key.n().to_bytes_be(),
            e: key.e().to_bytes_be(),
        }
    })
}

/// Signing keys with key ids, their JWKS, and a signer.
#[derive(Debug)]
pub struct TestJwtKeys {
    /// The RSA key's `kid`.
    pub rsa_kid: String,
    /// The EC key's `kid`.
    pub ec_kid: String,
    ec_pkcs8: Vec<u8>,
    ec_x: Vec<u8>,
    ec_y: Vec<u8>,
}

impl Default for TestJwtKeys {
    fn default() -> Self {
        Self::new()
    }
}

impl TestJwtKeys {
    /// Keys with ids `rsa-1` and `ec-1`.
    pub fn new() -> Self {
        Self::with_kids("rsa-1", "ec-1")
    }

    /// Keys with the given ids (a fresh EC key; the process-wide RSA key).
    pub fn with_kids(rsa_kid: &str, ec_kid: &str) -> Self {
        let ec = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("EC key");
        let raw = ec.public_key_raw().to_vec(); // 0x04 || X || Y
        TestJwtKeys {
            rsa_kid: rsa_kid.to_string(),
            ec_kid: ec_kid.to_string(),
            ec_pkcs8: ec.serialize_der(),
            ec_x: raw.get(1..33).expect("P-256 point").to_vec(),
            ec_y: raw.get(33..65).expect("P-256 point").to_vec(),
        }
    }

    /// The JWKS (`{"keys":[...]}`) with both public keys.
    pub fn jwks(&self) -> Value {
        let rsa = rsa_material();
        json!({ "keys": [
            { "kty": "RSA", "kid": self.rsa_kid, "use": "sig", "alg": "RS256",
              "n": URL_SAFE_NO_PAD.encode(&rsa.n), "e": URL_SAFE_NO_PAD.encode(&rsa.e) },
            { "kty": "EC", "kid": self.ec_kid, "use": "sig", "alg": "ES256", "crv": "P-256",
              "x": URL_SAFE_NO_PAD.encode(&self.ec_x), "y": URL_SAFE_NO_PAD.encode(&self.ec_y) },
        ]})
    }

    /// Writes the JWKS to `path` (for `sasl.oauthbearer.jwks.endpoint.url=file://...`).
    pub fn write_jwks(&self, path: &Path) {
        std::fs::write(path, self.jwks().to_string()).expect("write JWKS");
    }

    /// A token signed with `alg` under that key's `kid`.
    pub fn sign(&self, alg: JwtAlg, claims: &Value) -> String {
        let kid = match alg {
            JwtAlg::Rs256 => self.rsa_kid.clone(),
            JwtAlg::Es256 => self.ec_kid.clone(),
        };
        self.sign_with_kid(alg, Some(&kid), claims)
    }

    /// A token signed with `alg` but carrying `kid` (or none) in its header.
    pub fn sign_with_kid(&self, alg: JwtAlg, kid: Option<&str>, claims: &Value) -> String {
        let (algorithm, key) = match alg {
            JwtAlg::Rs256 => (
                Algorithm::RS256,
                EncodingKey::from_rsa_der(&rsa_material().pkcs1_der),
            ),
            JwtAlg::Es256 => (Algorithm::ES256, EncodingKey::from_ec_der(&self.ec_pkcs8)),
        };
        let mut header = Header::new(algorithm);
        header.kid = kid.map(str::to_string);
        jsonwebtoken::encode(&header, claims, &key).expect("sign JWT")
    }
}

/// Claims with `sub`, `iss`, `aud`, `iat` now and `exp` `expires_in_secs` from now (negative
/// for an expired token), plus `scope`.
pub fn claims(sub: &str, iss: &str, aud: &str, expires_in_secs: i64) -> Value {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    json!({ "sub": sub, "iss": iss, "aud": aud, "iat": now, "exp": now + expires_in_secs, "scope": "kafka read" })
}
