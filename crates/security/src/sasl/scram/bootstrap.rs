//! The first SCRAM credential of a secured cluster, given on the command line before any admin
//! can log in to make one: Kafka's `kafka-storage format --add-scram` argument,
//! `SCRAM-SHA-256=[name=admin,password=admin-secret]` (also `iterations=` and `salt=`), which
//! `strom serve --add-scram` takes as is.

use std::fmt;

use crate::sasl::scram::credential::{InvalidCredential, ScramCredential};
use crate::sasl::scram::ScramMechanism;

/// One parsed `--add-scram` argument: a user's credential for one mechanism. `Debug` shows the
/// user and mechanism only.
#[derive(Clone)]
pub struct BootstrapScramCredential {
    /// The mechanism.
    pub mechanism: ScramMechanism,
    /// The user name.
    pub user: String,
    /// The derived credential (the password is dropped once hashed).
    pub credential: ScramCredential,
}

impl fmt::Debug for BootstrapScramCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BootstrapScramCredential")
            .field("mechanism", &self.mechanism.name())
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

fn invalid(why: impl Into<String>) -> InvalidCredential {
    InvalidCredential::new(why)
}

/// A value without the double quotes Kafka's examples put around it.
fn unquote(v: &str) -> &str {
    let v = v.trim();
    v.strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(v)
}

impl BootstrapScramCredential {
    /// Parses `MECHANISM=[name=N,password=P(,iterations=I)(,salt=S)]`. Iterations default to
    /// Kafka's 4096; without a salt a random one is drawn. The password may not hold a comma or
    /// `]` (Kafka's own limit for this argument).
    pub fn parse(spec: &str) -> Result<Self, InvalidCredential> {
        let (mech, rest) = spec
            .split_once('=')
            .ok_or_else(|| invalid("expected MECHANISM=[name=...,password=...]"))?;
        let mechanism = match mech.trim() {
            "SCRAM-SHA-256" => ScramMechanism::Sha256,
            "SCRAM-SHA-512" => ScramMechanism::Sha512,
            other => return Err(invalid(format!("unknown SCRAM mechanism {other:?}"))),
        };
        let body = rest
            .trim()
            .strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
            .ok_or_else(|| {
                invalid("the credential must be in brackets: [name=...,password=...]")
            })?;
        let (mut user, mut password, mut iterations, mut salt) = (None, None, None, None);
        for field in body.split(',').filter(|f| !f.trim().is_empty()) {
            let (k, v) = field
                .split_once('=')
                .ok_or_else(|| invalid(format!("expected key=value, got {:?}", field.trim())))?;
            let v = unquote(v);
            match k.trim() {
                "name" => user = Some(v.to_string()),
                "password" => password = Some(v.to_string()),
                "iterations" => {
                    iterations = Some(
                        v.parse::<u32>()
                            .map_err(|_| invalid(format!("iterations {v:?} is not a number")))?,
                    )
                }
                "salt" => salt = Some(v.as_bytes().to_vec()),
                other => return Err(invalid(format!("unknown field {other:?}"))),
            }
        }
        let user = user
            .filter(|u| !u.is_empty())
            .ok_or_else(|| invalid("name= is required"))?;
        let password = password.ok_or_else(|| invalid("password= is required"))?;
        let iterations = iterations.unwrap_or(ScramMechanism::MIN_ITERATIONS);
        let credential =
            ScramCredential::generate(&password, mechanism, iterations, salt.as_deref())?;
        Ok(BootstrapScramCredential {
            mechanism,
            user,
            credential,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kafkas_form_and_derives_a_credential_that_logs_in() {
        let c = BootstrapScramCredential::parse(
            "SCRAM-SHA-512=[name=alice,password=\"alice-secret\",iterations=8192]",
        )
        .unwrap();
        assert_eq!(c.mechanism, ScramMechanism::Sha512);
        assert_eq!(c.user, "alice");
        assert_eq!(c.credential.iterations, 8192);
        let again = ScramCredential::generate(
            "alice-secret",
            ScramMechanism::Sha512,
            8192,
            Some(&c.credential.salt),
        )
        .unwrap();
        assert_eq!(again, c.credential);
        assert!(!format!("{c:?}").contains("secret"));
    }

    #[test]
    fn refuses_what_kafka_refuses() {
        for bad in [
            "SCRAM-SHA-1=[name=a,password=b]",
            "SCRAM-SHA-256=name=a,password=b",
            "SCRAM-SHA-256=[password=b]",
            "SCRAM-SHA-256=[name=a]",
            "SCRAM-SHA-256=[name=a,password=b,iterations=10]",
            "SCRAM-SHA-256=[name=a,password=b,colour=red]",
        ] {
            assert!(BootstrapScramCredential::parse(bad).is_err(), "{bad}");
        }
    }
}
