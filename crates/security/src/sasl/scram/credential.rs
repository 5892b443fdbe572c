//! What the broker stores per SCRAM user: salt, StoredKey, ServerKey, iterations — never the
//! password (Kafka's `ScramCredential`, kept in the metadata log as UserScramCredentialRecord)
//! — and the lookup trait the broker implements over its metadata image.

use std::collections::HashMap;
use std::fmt;

use parking_lot::RwLock;

use crate::sasl::scram::ScramMechanism;

/// A SCRAM credential.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramCredential {
    /// The salt.
    pub salt: Vec<u8>,
    /// `H(ClientKey)`.
    pub stored_key: Vec<u8>,
    /// `HMAC(SaltedPassword, "Server Key")`.
    pub server_key: Vec<u8>,
    /// The PBKDF2 iteration count.
    pub iterations: u32,
}

impl fmt::Debug for ScramCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramCredential")
            .field("salt_len", &self.salt.len())
            .field("stored_key", &"[hidden]")
            .field("server_key", &"[hidden]")
            .field("iterations", &self.iterations)
            .finish()
    }
}

/// A credential that cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidCredential(String);

impl InvalidCredential {
    pub(crate) fn new(why: impl Into<String>) -> Self {
        InvalidCredential(why.into())
    }
}

impl ScramCredential {
    /// Derives the credential for `password` (Kafka's `ScramFormatter.generateCredential`).
    /// `iterations` must be within Kafka's bounds (4096..=16384); without a salt a random
    /// 32-byte one is drawn.
    pub fn generate(
        password: &str,
        mechanism: ScramMechanism,
        iterations: u32,
        salt: Option<&[u8]>,
    ) -> Result<ScramCredential, InvalidCredential> {
        if !(ScramMechanism::MIN_ITERATIONS..=ScramMechanism::MAX_ITERATIONS).contains(&iterations)
        {
            return Err(InvalidCredential(format!(
                "Iterations {iterations} not within the range {}..{} for {}",
                ScramMechanism::MIN_ITERATIONS,
                ScramMechanism::MAX_ITERATIONS,
                mechanism.name()
            )));
        }
        let salt = match salt {
            Some([]) => return Err(InvalidCredential("the salt must not be empty".into())),
            Some(s) => s.to_vec(),
            None => rand::random::<[u8; 32]>().to_vec(),
        };
        Ok(Self::derive(
            password.as_bytes(),
            mechanism,
            iterations,
            salt,
        ))
    }

    pub(crate) fn derive(
        password: &[u8],
        mechanism: ScramMechanism,
        iterations: u32,
        salt: Vec<u8>,
    ) -> Self {
        let salted = mechanism.salted_password(password, &salt, iterations);
        Self::from_salted_password(mechanism, &salted, iterations, salt)
    }

    /// The credential of an already salted password: what AlterUserScramCredentials carries
    /// (the client runs PBKDF2, so the password itself never reaches the broker). The caller
    /// checks the iteration count and salt (Kafka's bounds).
    pub fn from_salted_password(
        mechanism: ScramMechanism,
        salted_password: &[u8],
        iterations: u32,
        salt: Vec<u8>,
    ) -> Self {
        let client_key = mechanism.client_key(salted_password);
        ScramCredential {
            stored_key: mechanism.hash(&client_key),
            server_key: mechanism.server_key(salted_password),
            salt,
            iterations,
        }
    }
}

/// A delegation token's SCRAM credential (SCRAM with `tokenauth=true`: the user name is the token id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DelegationTokenCredential {
    /// The HMAC-derived credential of the token.
    pub credential: ScramCredential,
    /// The owner's user name: the principal of connections authenticated with the token.
    pub owner: String,
    /// When the token expires (epoch ms); re-authentication is due then.
    pub expiry_timestamp_ms: i64,
}

/// Where SCRAM credentials come from. The broker implements it over its metadata image, so
/// credentials created with AlterUserScramCredentials (metadata records) are used at once.
/// Implementations must be cheap and must not block: `step` calls them on the connection's task.
pub trait ScramCredentialStore: Send + Sync + fmt::Debug {
    /// The user's credential for `mechanism`.
    fn credential(&self, mechanism: ScramMechanism, username: &str) -> Option<ScramCredential>;

    /// A delegation token's credential; none by default (tokens unsupported).
    fn delegation_token(
        &self,
        _mechanism: ScramMechanism,
        _token_id: &str,
    ) -> Option<DelegationTokenCredential> {
        None
    }
}

/// A store in memory, for tests and for brokers seeding users from config.
#[derive(Debug, Default)]
pub struct InMemoryScramCredentialStore {
    credentials: RwLock<HashMap<(ScramMechanism, String), ScramCredential>>,
    tokens: RwLock<HashMap<(ScramMechanism, String), DelegationTokenCredential>>,
}

impl InMemoryScramCredentialStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets a user's credential.
    pub fn insert(&self, mechanism: ScramMechanism, username: &str, credential: ScramCredential) {
        self.credentials
            .write()
            .insert((mechanism, username.to_string()), credential);
    }

    /// Removes a user's credential.
    pub fn remove(&self, mechanism: ScramMechanism, username: &str) {
        self.credentials
            .write()
            .remove(&(mechanism, username.to_string()));
    }

    /// Sets a delegation token.
    pub fn insert_token(
        &self,
        mechanism: ScramMechanism,
        token_id: &str,
        token: DelegationTokenCredential,
    ) {
        self.tokens
            .write()
            .insert((mechanism, token_id.to_string()), token);
    }
}

impl ScramCredentialStore for InMemoryScramCredentialStore {
    fn credential(&self, mechanism: ScramMechanism, username: &str) -> Option<ScramCredential> {
        self.credentials
            .read()
            .get(&(mechanism, username.to_string()))
            .cloned()
    }

    fn delegation_token(
        &self,
        mechanism: ScramMechanism,
        token_id: &str,
    ) -> Option<DelegationTokenCredential> {
        self.tokens
            .read()
            .get(&(mechanism, token_id.to_string()))
            .cloned()
    }
}
