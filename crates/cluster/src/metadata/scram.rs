//! SCRAM credentials as the metadata holds them (KIP-554: Kafka's `UserScramCredentialRecord`
//! and `RemoveUserScramCredentialRecord`): per user and mechanism the salt, StoredKey, ServerKey
//! and iteration count, never a password. [`ScramCredentials`] is the image's part (user →
//! mechanism → credential); the broker serves SCRAM logins and DescribeUserScramCredentials from
//! it through `MetadataImage`'s lookups.
//!
//! Mechanisms travel as Kafka's `ScramMechanism` type ids (1 SCRAM-SHA-256, 2 SCRAM-SHA-512), kept
//! as the raw `i8` in records so an id this version does not know still decodes and is refused by
//! validation instead of breaking the log.
//!
//! Secrets: the key bytes are [`SecretBytes`], whose `Debug` prints only a length, so no log line
//! that prints a record, a request or the image (`?record`) can leak them. In JSON they are
//! base64 (the metadata log stays readable text).
//!
//! A leaf of `metadata`: the record, the rules (`validate`) and the image use it; it uses none of
//! them.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use strom_security::{ScramCredential, ScramMechanism};

/// Kafka's `ScramMechanism` type ids (`UNKNOWN` is 0 and never stored).
const MECHANISM_TYPES: [(i8, ScramMechanism); 2] =
    [(1, ScramMechanism::Sha256), (2, ScramMechanism::Sha512)];

/// Kafka's type id of `mechanism` (1 SCRAM-SHA-256, 2 SCRAM-SHA-512).
pub fn scram_mechanism_type(mechanism: ScramMechanism) -> i8 {
    MECHANISM_TYPES
        .iter()
        .find(|(_, m)| *m == mechanism)
        .map_or(0, |(t, _)| *t)
}

/// The mechanism of a Kafka type id, if it names one.
pub fn scram_mechanism_of_type(mechanism_type: i8) -> Option<ScramMechanism> {
    MECHANISM_TYPES
        .iter()
        .find(|(t, _)| *t == mechanism_type)
        .map(|(_, m)| *m)
}

/// The length of StoredKey and ServerKey for a mechanism: its hash's output.
pub(crate) fn scram_key_len(mechanism: ScramMechanism) -> usize {
    match mechanism {
        ScramMechanism::Sha256 => 32,
        ScramMechanism::Sha512 => 64,
    }
}

/// Bytes that are never printed: `Debug` shows the length only. JSON: a base64 string.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct SecretBytes(pub Vec<u8>);

impl SecretBytes {
    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }
}

impl From<Vec<u8>> for SecretBytes {
    fn from(bytes: Vec<u8>) -> Self {
        SecretBytes(bytes)
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} bytes hidden>", self.0.len())
    }
}

impl Serialize for SecretBytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for SecretBytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            // The error names no byte of the input: it may be a key.
            .map_err(|_| serde::de::Error::custom("invalid base64 in a SCRAM credential"))
            .map(SecretBytes)
    }
}

/// One stored credential: what a `UserScramCredential` record carries besides the user and the
/// mechanism, which key it. Never the password: what the server needs to check a login,
/// derived from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredScramCredential {
    /// The salt.
    pub salt: SecretBytes,
    /// `H(ClientKey)`.
    pub stored_key: SecretBytes,
    /// `HMAC(SaltedPassword, "Server Key")`.
    pub server_key: SecretBytes,
    /// The PBKDF2 iteration count.
    pub iterations: i32,
}

impl StoredScramCredential {
    /// What the metadata stores of `credential`.
    pub fn new(credential: &ScramCredential) -> Self {
        StoredScramCredential {
            salt: credential.salt.clone().into(),
            stored_key: credential.stored_key.clone().into(),
            server_key: credential.server_key.clone().into(),
            // Beyond i32 is beyond Kafka's maximum too: validation refuses it.
            iterations: i32::try_from(credential.iterations).unwrap_or(i32::MAX),
        }
    }

    /// As the SASL server takes it.
    fn to_credential(&self) -> ScramCredential {
        ScramCredential {
            salt: self.salt.0.clone(),
            stored_key: self.stored_key.0.clone(),
            server_key: self.server_key.0.clone(),
            // Validated as 4096..=16384 before it was stored.
            iterations: u32::try_from(self.iterations).unwrap_or(0),
        }
    }
}

/// What DescribeUserScramCredentials answers per credential (Kafka's `CredentialInfo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScramCredentialInfo {
    /// The mechanism.
    pub mechanism: ScramMechanism,
    /// Its iteration count.
    pub iterations: i32,
}

/// Every user's SCRAM credentials: user → mechanism type → credential. Users without any
/// credential are not kept.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct ScramCredentials(BTreeMap<String, BTreeMap<i8, StoredScramCredential>>);

impl ScramCredentials {
    /// Sets (creates or replaces) a user's credential for one mechanism.
    pub(crate) fn upsert(&mut self, user: &str, mechanism: i8, credential: StoredScramCredential) {
        self.0
            .entry(user.to_string())
            .or_default()
            .insert(mechanism, credential);
    }

    /// Removes a user's credential for one mechanism (nothing if absent).
    pub(crate) fn remove(&mut self, user: &str, mechanism: i8) {
        if let Some(by_mechanism) = self.0.get_mut(user) {
            by_mechanism.remove(&mechanism);
            if by_mechanism.is_empty() {
                self.0.remove(user);
            }
        }
    }

    /// True when the user has a credential for the mechanism.
    pub(crate) fn contains(&self, user: &str, mechanism: i8) -> bool {
        self.0.get(user).is_some_and(|m| m.contains_key(&mechanism))
    }

    /// How many (user, mechanism) credentials there are (walks the users).
    pub(crate) fn len(&self) -> usize {
        self.0.values().map(BTreeMap::len).sum()
    }

    /// The credential the SASL server needs.
    pub(crate) fn credential(
        &self,
        mechanism: ScramMechanism,
        user: &str,
    ) -> Option<ScramCredential> {
        self.0
            .get(user)?
            .get(&scram_mechanism_type(mechanism))
            .map(StoredScramCredential::to_credential)
    }

    /// The users that have a credential, sorted.
    pub(crate) fn users(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// A user's credentials as DescribeUserScramCredentials reports them (empty when none).
    pub(crate) fn infos(&self, user: &str) -> impl Iterator<Item = ScramCredentialInfo> + '_ {
        self.0.get(user).into_iter().flatten().filter_map(|(t, c)| {
            Some(ScramCredentialInfo {
                mechanism: scram_mechanism_of_type(*t)?,
                iterations: c.iterations,
            })
        })
    }

    /// Keeps only what `keep(user, mechanism, credential)` accepts; returns how many were dropped.
    pub(crate) fn retain(
        &mut self,
        mut keep: impl FnMut(&str, i8, &StoredScramCredential) -> bool,
    ) -> usize {
        let before = self.len();
        for (user, by_mechanism) in self.0.iter_mut() {
            by_mechanism.retain(|t, c| keep(user, *t, c));
        }
        self.0.retain(|_, m| !m.is_empty());
        before - self.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mechanism_types_are_kafkas() {
        assert_eq!(scram_mechanism_type(ScramMechanism::Sha256), 1);
        assert_eq!(scram_mechanism_type(ScramMechanism::Sha512), 2);
        assert_eq!(scram_mechanism_of_type(2), Some(ScramMechanism::Sha512));
        assert_eq!(scram_mechanism_of_type(0), None);
        assert_eq!(scram_mechanism_of_type(3), None);
    }

    #[test]
    fn secret_bytes_are_base64_and_never_printed() {
        let s = SecretBytes(vec![0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(format!("{s:?}"), "<4 bytes hidden>");
        let json = serde_json::to_string(&s).expect("encode");
        assert_eq!(json, "\"3q2+7w==\"");
        assert_eq!(
            serde_json::from_str::<SecretBytes>(&json).expect("decode"),
            s
        );
        let err = serde_json::from_str::<SecretBytes>("\"not base64!\"").expect_err("bad");
        assert!(!err.to_string().contains("not base64"));
    }
}
