//! SASL/PLAIN (RFC 4616) as Kafka's `PlainSaslServer`: one message `authzid NUL authcid NUL
//! passwd`; the authzid must be empty or equal the user; users and passwords are the
//! `user_<name>="<password>"` options of the listener's `PlainLoginModule` JAAS entry.
//!
//! Passwords are compared in constant time over their SHA-256 digests (so neither content nor
//! length leaks through timing), and an unknown user costs the same comparison as a known one.

use std::collections::BTreeMap;
use std::fmt;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::jaas::JaasEntry;
use crate::config::properties::Password;
use crate::error::AuthError;
use crate::principal::kafka_principal::KafkaPrincipal;
use crate::sasl::{
    after_end, Authenticated, ClientStep, Mechanism, Phase, SaslClient, SaslServer, Step,
};

/// The PLAIN users of a listener, as password digests.
#[derive(Clone, Default)]
pub struct PlainUsers {
    digests: BTreeMap<String, [u8; 32]>,
}

impl fmt::Debug for PlainUsers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlainUsers")
            .field("users", &self.digests.keys().collect::<Vec<_>>())
            .finish()
    }
}

fn digest(password: &[u8]) -> [u8; 32] {
    Sha256::digest(password).into()
}

impl PlainUsers {
    /// The `user_<name>` options of a JAAS entry.
    pub fn from_jaas(entry: &JaasEntry) -> Self {
        let digests = entry
            .options()
            .filter_map(|(k, v)| {
                k.strip_prefix("user_")
                    .map(|user| (user.to_string(), digest(v.as_bytes())))
            })
            .collect();
        PlainUsers { digests }
    }

    /// Adds or replaces a user.
    pub fn insert(&mut self, user: &str, password: &Password) {
        self.digests
            .insert(user.to_string(), digest(password.expose().as_bytes()));
    }

    /// Whether `password` is `user`'s.
    pub fn verify(&self, user: &str, password: &[u8]) -> bool {
        let given = digest(password);
        // Compare against a fixed digest for unknown users so the time taken does not tell.
        let (expected, known) = match self.digests.get(user) {
            Some(d) => (*d, true),
            None => ([0u8; 32], false),
        };
        let equal: bool = expected.ct_eq(&given).into();
        equal && known
    }
}

/// The server side of one PLAIN exchange.
#[derive(Debug)]
pub struct PlainServer {
    users: std::sync::Arc<PlainUsers>,
    ended: Option<Phase>,
}

impl PlainServer {
    /// A server checking against `users`.
    pub fn new(users: std::sync::Arc<PlainUsers>) -> Self {
        PlainServer { users, ended: None }
    }

    fn authenticate(&self, client_bytes: &[u8]) -> Result<Step, AuthError> {
        let text = String::from_utf8_lossy(client_bytes);
        let tokens: Vec<&str> = text.splitn(4, '\0').collect();
        if tokens.len() != 3 {
            return Err(AuthError::protocol(format!(
                "Invalid SASL/PLAIN response: expected 3 tokens, got {}",
                tokens.len()
            )));
        }
        let (authzid, username, password) = (tokens[0], tokens[1], tokens[2]);
        if username.is_empty() {
            return Err(AuthError::authentication(
                "Authentication failed: username not specified",
            ));
        }
        if password.is_empty() {
            return Err(AuthError::authentication(
                "Authentication failed: password not specified",
            ));
        }
        if !self.users.verify(username, password.as_bytes()) {
            return Err(AuthError::authentication(
                "Authentication failed: Invalid username or password",
            )
            .with_log_detail(format!(
                "Authentication failed: Invalid username or password (user {username})"
            )));
        }
        if !authzid.is_empty() && authzid != username {
            return Err(AuthError::authentication(
                "Authentication failed: Client requested an authorization id that is different from username",
            ));
        }
        Ok(Step::Done(Authenticated {
            principal: KafkaPrincipal::user(username),
            server_bytes: Vec::new(),
            credential_expiry_ms: None,
            extensions: BTreeMap::new(),
        }))
    }
}

impl SaslServer for PlainServer {
    fn mechanism(&self) -> Mechanism {
        Mechanism::Plain
    }

    fn step(&mut self, client_bytes: &[u8]) -> Result<Step, AuthError> {
        if let Some(phase) = self.ended {
            return Err(after_end(phase));
        }
        let result = self.authenticate(client_bytes);
        self.ended = Some(if result.is_ok() {
            Phase::Complete
        } else {
            Phase::Failed
        });
        result
    }
}

/// The client side of PLAIN.
#[derive(Debug, Clone)]
pub struct PlainClient {
    username: String,
    password: Password,
    sent: bool,
}

impl PlainClient {
    /// Logs in as `username`.
    pub fn new(username: impl Into<String>, password: Password) -> Self {
        PlainClient {
            username: username.into(),
            password,
            sent: false,
        }
    }
}

impl SaslClient for PlainClient {
    fn mechanism(&self) -> Mechanism {
        Mechanism::Plain
    }

    fn initial_response(&mut self) -> Result<Vec<u8>, AuthError> {
        self.sent = true;
        Ok(format!("\0{}\0{}", self.username, self.password.expose()).into_bytes())
    }

    fn step(&mut self, _server_bytes: &[u8]) -> Result<ClientStep, AuthError> {
        if !self.sent {
            return Err(AuthError::illegal_state(
                "PLAIN: initial response not sent yet",
            ));
        }
        Ok(ClientStep::Done)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::config::jaas::JaasConfig;
    use crate::AuthErrorKind;

    fn server() -> PlainServer {
        let entry = JaasConfig::parse_single(
            "org.apache.kafka.common.security.plain.PlainLoginModule required username=\"admin\" password=\"admin-secret\" user_admin=\"admin-secret\" user_alice=\"alice-secret\";",
        )
        .unwrap();
        PlainServer::new(Arc::new(PlainUsers::from_jaas(&entry)))
    }

    fn principal(step: Step) -> KafkaPrincipal {
        match step {
            Step::Done(a) => a.principal,
            Step::Continue(_) => panic!("PLAIN has one message"),
        }
    }

    #[test]
    fn good_password_with_and_without_authzid() {
        assert_eq!(
            principal(server().step(b"\0alice\0alice-secret").unwrap()),
            KafkaPrincipal::user("alice")
        );
        assert_eq!(
            principal(server().step(b"alice\0alice\0alice-secret").unwrap()),
            KafkaPrincipal::user("alice")
        );
        let mut client = PlainClient::new("admin", Password::new("admin-secret"));
        let mut s = server();
        assert_eq!(
            principal(s.step(&client.initial_response().unwrap()).unwrap()),
            KafkaPrincipal::user("admin")
        );
        assert_eq!(client.step(b"").unwrap(), ClientStep::Done);
    }

    #[test]
    fn failures_carry_kafkas_messages() {
        let cases: [(&[u8], &str); 7] = [
            (b"\0alice\0wrong", "Authentication failed: Invalid username or password"),
            (b"\0bob\0alice-secret", "Authentication failed: Invalid username or password"),
            (b"\0alice\0alice-secret-longer", "Authentication failed: Invalid username or password"),
            (b"admin\0alice\0alice-secret", "Authentication failed: Client requested an authorization id that is different from username"),
            (b"\0\0pw", "Authentication failed: username not specified"),
            (b"\0alice\0", "Authentication failed: password not specified"),
            (b"\0alice\0alice-secret\0extra", "Invalid SASL/PLAIN response: expected 3 tokens, got 4"),
        ];
        for (input, message) in cases {
            let err = server().step(input).unwrap_err();
            assert_eq!(
                err.detail().split(" (user").next(),
                Some(message),
                "{input:?}"
            );
            assert!(!err.detail().contains("secret"), "{err:?}");
        }
        let err = server().step(b"garbage").unwrap_err();
        assert_eq!(err.kind(), AuthErrorKind::Protocol);
        assert_eq!(
            err.detail(),
            "Invalid SASL/PLAIN response: expected 3 tokens, got 1"
        );
    }

    #[test]
    fn one_exchange_per_instance() {
        let mut s = server();
        s.step(b"\0alice\0alice-secret").unwrap();
        assert_eq!(
            s.step(b"\0alice\0alice-secret").unwrap_err().kind(),
            AuthErrorKind::IllegalState
        );
        let mut s = server();
        assert!(s.step(b"\0alice\0bad").is_err());
        assert_eq!(
            s.step(b"\0alice\0alice-secret").unwrap_err().kind(),
            AuthErrorKind::IllegalState
        );
    }

    #[test]
    fn debug_shows_no_password() {
        let s = format!("{:?}", server());
        assert!(s.contains("alice") && !s.contains("secret"), "{s}");
        let c = format!("{:?}", PlainClient::new("u", Password::new("hunter2")));
        assert!(!c.contains("hunter2"), "{c}");
    }
}
