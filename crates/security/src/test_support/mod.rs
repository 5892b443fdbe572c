//! Test material made at test time (feature `test-support`): a CA with server and client
//! certificates written as the PEM files Kafka, librdkafka/kcat and this crate read, and RSA/EC
//! keys with their JWKS and signed JWTs. Nothing here is committed key material; everything is
//! generated per run. Not for production: keys sit unencrypted in a temp dir.

mod jwt;
mod pki;

pub use jwt::{claims, JwtAlg, TestJwtKeys};
pub use pki::{CertFiles, TestPki};
