//! SCRAM credential admin on [`Client`] (KIP-554): AlterUserScramCredentials (API 51) and
//! DescribeUserScramCredentials (API 50), as Kafka's admin client does them.
//!
//! The password never leaves this process: an upsertion carries the salt, the iteration count
//! and the *salted* password `Hi(password, salt, i)` (PBKDF2-HMAC over the mechanism's hash,
//! RFC 5802), which the controller turns into StoredKey/ServerKey. strom-security keeps its PBKDF2
//! crate-private, so it is computed here; a test checks it against strom-security's own
//! `ScramCredential` derivation. As in Kafka's admin client, an empty user name or password is
//! refused before sending (that user's alterations are left out of the request); iterations
//! outside Kafka's 4096..=16384 are refused here too, so the hash is never run for a count the
//! controller would reject. Alterations go to the controller, descriptions to any broker.

use std::collections::BTreeMap;

use bytes::Bytes;
use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, ApiKey, DescribeUserScramCredentialsRequest,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use sha2::{Sha256, Sha512};
use strom_security::{Password, ScramMechanism};

use crate::client::Client;
use crate::error::ClientError;

/// A change to one user's SCRAM credential (Kafka's `UserScramCredentialAlteration`).
#[derive(Debug, Clone)]
pub enum UserScramCredentialAlteration {
    /// Creates or replaces the user's credential for `mechanism` (Kafka's
    /// `UserScramCredentialUpsertion`).
    Upsertion {
        /// The user name.
        user: String,
        /// Which SCRAM.
        mechanism: ScramMechanism,
        /// The PBKDF2 iteration count (Kafka: 4096..=16384; kafka-configs defaults to 4096).
        iterations: u32,
        /// The password; never shown by `Debug`, never sent.
        password: Password,
        /// The salt; `None` draws 32 random bytes.
        salt: Option<Vec<u8>>,
    },
    /// Removes the user's credential for `mechanism` (Kafka's `UserScramCredentialDeletion`).
    Deletion {
        /// The user name.
        user: String,
        /// Which SCRAM.
        mechanism: ScramMechanism,
    },
}

impl UserScramCredentialAlteration {
    /// The user this alteration is for.
    pub fn user(&self) -> &str {
        match self {
            UserScramCredentialAlteration::Upsertion { user, .. }
            | UserScramCredentialAlteration::Deletion { user, .. } => user,
        }
    }
}

/// One credential of a user as DescribeUserScramCredentials reports it (never the secret).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScramCredentialInfo {
    /// Which SCRAM.
    pub mechanism: ScramMechanism,
    /// The PBKDF2 iteration count.
    pub iterations: i32,
}

/// Per-user outcomes, by user name.
pub type PerUser<T> = BTreeMap<String, Result<T, ClientError>>;

impl Client {
    /// Describes the SCRAM credentials of `users` (`None`: every user that has one). A named user
    /// without credentials gets RESOURCE_NOT_FOUND in its entry; a request-level failure is `Err`.
    pub async fn describe_user_scram_credentials(
        &self,
        users: Option<&[&str]>,
    ) -> Result<PerUser<Vec<ScramCredentialInfo>>, ClientError> {
        let conn = self.any_connection().await?;
        let version = conn.version(ApiKey::DescribeUserScramCredentials)?;
        let request = DescribeUserScramCredentialsRequest::default().with_users(users.map(|u| {
            u.iter()
                .map(|name| {
                    UserName::default().with_name(StrBytes::from_string((*name).to_owned()))
                })
                .collect()
        }));
        let response = conn.send(version, &request).await?;
        if response.error_code != 0 {
            return Err(ClientError::broker(
                "describe SCRAM credentials",
                response.error_code,
                response.error_message.as_deref(),
            ));
        }
        let mut out = BTreeMap::new();
        for r in response.results {
            let user = r.user.to_string();
            let result = if r.error_code != 0 {
                Err(ClientError::broker(
                    format!("describe SCRAM credentials of {user}"),
                    r.error_code,
                    r.error_message.as_deref(),
                ))
            } else {
                Ok(r.credential_infos
                    .iter()
                    .filter_map(|c| {
                        // A mechanism newer than this client cannot be named; it is left out.
                        let mechanism = mechanism_from_type(c.mechanism)?;
                        Some(ScramCredentialInfo {
                            mechanism,
                            iterations: c.iterations,
                        })
                    })
                    .collect())
            };
            out.insert(user, result);
        }
        Ok(out)
    }

    /// Applies `alterations` in one AlterUserScramCredentials request to the controller. Each user
    /// named gets an entry: `Ok` when all its alterations applied, else the first error (Kafka's
    /// UNACCEPTABLE_CREDENTIAL, RESOURCE_NOT_FOUND for deleting a missing credential, ...).
    pub async fn alter_user_scram_credentials(
        &self,
        alterations: &[UserScramCredentialAlteration],
    ) -> Result<PerUser<()>, ClientError> {
        let mut refused: PerUser<()> = BTreeMap::new();
        for a in alterations {
            if let Err(reason) = check(a) {
                let context = format!("alter SCRAM credentials of {}", a.user());
                let code = ResponseError::UnacceptableCredential.code();
                refused
                    .entry(a.user().to_owned())
                    .or_insert_with(|| Err(ClientError::broker(context, code, Some(reason))));
            }
        }
        let mut request = AlterUserScramCredentialsRequest::default();
        for a in alterations
            .iter()
            .filter(|a| !refused.contains_key(a.user()))
        {
            match a {
                UserScramCredentialAlteration::Deletion { user, mechanism } => {
                    request.deletions.push(
                        ScramCredentialDeletion::default()
                            .with_name(StrBytes::from_string(user.clone()))
                            .with_mechanism(mechanism_type(*mechanism)),
                    );
                }
                UserScramCredentialAlteration::Upsertion {
                    user,
                    mechanism,
                    iterations,
                    password,
                    salt,
                } => {
                    let salt = salt
                        .clone()
                        .unwrap_or_else(|| rand::random::<[u8; 32]>().to_vec());
                    // A few milliseconds of PBKDF2 per upsertion, inline: admin requests are rare.
                    let salted = salted_password(*mechanism, password, &salt, *iterations);
                    request.upsertions.push(
                        ScramCredentialUpsertion::default()
                            .with_name(StrBytes::from_string(user.clone()))
                            .with_mechanism(mechanism_type(*mechanism))
                            .with_iterations(i32::try_from(*iterations).unwrap_or(i32::MAX))
                            .with_salt(Bytes::from(salt))
                            .with_salted_password(Bytes::from(salted)),
                    );
                }
            }
        }
        let mut out = refused;
        if request.deletions.is_empty() && request.upsertions.is_empty() {
            return Ok(out);
        }
        let expected: Vec<String> = alterations
            .iter()
            .map(|a| a.user().to_owned())
            .filter(|u| !out.contains_key(u))
            .collect();
        let results = self
            .with_controller_retry(
                "alter SCRAM credentials",
                |conn, version| {
                    let request = &request;
                    async move {
                        let response = conn.send(version, request).await?;
                        // A controller that moved answers NOT_CONTROLLER per user: retry it all.
                        let moved = ResponseError::NotController.code();
                        if let Some(r) = response.results.iter().find(|r| r.error_code == moved) {
                            return Err(ClientError::broker(
                                "alter SCRAM credentials",
                                moved,
                                r.error_message.as_deref(),
                            ));
                        }
                        Ok(response.results)
                    }
                },
                ApiKey::AlterUserScramCredentials,
            )
            .await?;
        for r in results {
            let user = r.user.to_string();
            let result = if r.error_code == 0 {
                Ok(())
            } else {
                Err(ClientError::broker(
                    format!("alter SCRAM credentials of {user}"),
                    r.error_code,
                    r.error_message.as_deref(),
                ))
            };
            out.insert(user, result);
        }
        for user in expected {
            out.entry(user.clone()).or_insert_with(|| {
                Err(ClientError::broker(
                    format!("alter SCRAM credentials of {user}"),
                    ResponseError::UnknownServerError.code(),
                    Some("the user is missing from the response"),
                ))
            });
        }
        Ok(out)
    }
}

/// Kafka's client-side checks (KafkaAdminClient.alterUserScramCredentials), plus the iteration range.
fn check(a: &UserScramCredentialAlteration) -> Result<(), &'static str> {
    if a.user().is_empty() {
        return Err("Username must not be empty");
    }
    if let UserScramCredentialAlteration::Upsertion {
        iterations,
        password,
        salt,
        ..
    } = a
    {
        if password.expose().is_empty() {
            return Err("Password must not be empty");
        }
        if *iterations < ScramMechanism::MIN_ITERATIONS {
            return Err("Too few iterations");
        }
        if *iterations > ScramMechanism::MAX_ITERATIONS {
            return Err("Too many iterations");
        }
        if salt.as_ref().is_some_and(Vec::is_empty) {
            return Err("Salt must not be empty");
        }
    }
    Ok(())
}

/// Kafka's `ScramMechanism.type()` on the wire.
fn mechanism_type(m: ScramMechanism) -> i8 {
    match m {
        ScramMechanism::Sha256 => 1,
        ScramMechanism::Sha512 => 2,
    }
}

fn mechanism_from_type(t: i8) -> Option<ScramMechanism> {
    match t {
        1 => Some(ScramMechanism::Sha256),
        2 => Some(ScramMechanism::Sha512),
        _ => None,
    }
}

/// `Hi(password, salt, i)` = PBKDF2-HMAC-SHA-256/512 with the hash's output length (RFC 5802).
fn salted_password(
    m: ScramMechanism,
    password: &Password,
    salt: &[u8],
    iterations: u32,
) -> Vec<u8> {
    let password = password.expose().as_bytes();
    match m {
        ScramMechanism::Sha256 => {
            pbkdf2::pbkdf2_hmac_array::<Sha256, 32>(password, salt, iterations).to_vec()
        }
        ScramMechanism::Sha512 => {
            pbkdf2::pbkdf2_hmac_array::<Sha512, 64>(password, salt, iterations).to_vec()
        }
    }
}

#[cfg(test)]
mod tests {
    use hmac::{Hmac, Mac};
    use strom_security::ScramCredential;

    use super::*;

    fn server_key(m: ScramMechanism, salted: &[u8]) -> Vec<u8> {
        match m {
            ScramMechanism::Sha256 => {
                let mut mac = Hmac::<Sha256>::new_from_slice(salted).unwrap();
                mac.update(b"Server Key");
                mac.finalize().into_bytes().to_vec()
            }
            ScramMechanism::Sha512 => {
                let mut mac = Hmac::<Sha512>::new_from_slice(salted).unwrap();
                mac.update(b"Server Key");
                mac.finalize().into_bytes().to_vec()
            }
        }
    }

    #[test]
    fn salted_password_matches_strom_security_derivation() {
        let salt = b"0123456789abcdef";
        let pw = Password::new("alice-secret");
        for m in [ScramMechanism::Sha256, ScramMechanism::Sha512] {
            let salted = salted_password(m, &pw, salt, 4096);
            let expected = ScramCredential::generate("alice-secret", m, 4096, Some(salt)).unwrap();
            assert_eq!(server_key(m, &salted), expected.server_key, "{m:?}");
        }
    }

    #[test]
    fn kafka_client_side_checks() {
        let up = |user: &str, pw: &str, iterations| UserScramCredentialAlteration::Upsertion {
            user: user.into(),
            mechanism: ScramMechanism::Sha256,
            iterations,
            password: Password::new(pw),
            salt: None,
        };
        assert_eq!(check(&up("", "p", 4096)), Err("Username must not be empty"));
        assert_eq!(check(&up("a", "", 4096)), Err("Password must not be empty"));
        assert_eq!(check(&up("a", "p", 4095)), Err("Too few iterations"));
        assert_eq!(check(&up("a", "p", 16385)), Err("Too many iterations"));
        assert_eq!(check(&up("a", "p", 8192)), Ok(()));
        let shown = format!("{:?}", up("a", "hunter2", 4096));
        assert!(!shown.contains("hunter2"), "{shown}");
        for m in [ScramMechanism::Sha256, ScramMechanism::Sha512] {
            assert_eq!(mechanism_from_type(mechanism_type(m)), Some(m));
        }
        assert_eq!(mechanism_from_type(0), None);
    }
}
