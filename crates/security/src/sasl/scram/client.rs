//! `ScramClient`: the client side (Kafka's `ScramSaslClient`), for the broker's inter-broker
//! and controller connections and the `strom` CLI: client-first `n,,n=<user>,r=<nonce>`
//! (`,tokenauth=true` for delegation tokens), the proof in client-final, and the server's
//! signature checked before the exchange counts as done.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use subtle::ConstantTimeEq;

use crate::config::properties::Password;
use crate::error::AuthError;
use crate::sasl::scram::messages::{ServerFinal, ServerFirst};
use crate::sasl::scram::{encode_saslname, random_nonce, xor, ScramMechanism};
use crate::sasl::{ClientStep, Mechanism, SaslClient};

#[derive(Debug)]
enum State {
    Initial,
    SentClientFirst { bare: String },
    SentClientFinal { server_signature: Vec<u8> },
    Done,
}

/// The client side of one SCRAM exchange.
#[derive(Debug)]
pub struct ScramClient {
    mechanism: ScramMechanism,
    username: String,
    password: Password,
    token_auth: bool,
    nonce: String,
    state: State,
}

impl ScramClient {
    /// Logs in as `username` (or, with `token_auth`, with a delegation token id and its HMAC).
    pub fn new(
        mechanism: ScramMechanism,
        username: impl Into<String>,
        password: Password,
        token_auth: bool,
    ) -> Self {
        ScramClient {
            mechanism,
            username: username.into(),
            password,
            token_auth,
            nonce: random_nonce(),
            state: State::Initial,
        }
    }

    #[cfg(test)]
    pub(crate) fn with_nonce(mut self, nonce: &str) -> Self {
        self.nonce = nonce.to_string();
        self
    }

    fn server_first(&mut self, bare: String, bytes: &[u8]) -> Result<ClientStep, AuthError> {
        let m = self.mechanism;
        let first = ServerFirst::parse(bytes)?;
        if !first.nonce.starts_with(&self.nonce) || first.nonce.len() == self.nonce.len() {
            return Err(AuthError::protocol(
                "Invalid server nonce: does not start with client nonce",
            ));
        }
        if first.iterations < ScramMechanism::MIN_ITERATIONS {
            return Err(AuthError::protocol(format!(
                "Requested iterations {} is less than the minimum {} for {}",
                first.iterations,
                ScramMechanism::MIN_ITERATIONS,
                m.name()
            )));
        }
        let salted = m.salted_password(
            self.password.expose().as_bytes(),
            &first.salt,
            first.iterations,
        );
        let client_key = m.client_key(&salted);
        let stored_key = m.hash(&client_key);
        let without_proof = format!("c={},r={}", STANDARD.encode("n,,"), first.nonce);
        let auth_message = format!("{bare},{},{without_proof}", String::from_utf8_lossy(bytes));
        let client_signature = m.hmac(&stored_key, auth_message.as_bytes());
        let proof = xor(&client_key, &client_signature);
        let server_signature = m.hmac(&m.server_key(&salted), auth_message.as_bytes());
        self.state = State::SentClientFinal { server_signature };
        Ok(ClientStep::Send(
            format!("{without_proof},p={}", STANDARD.encode(proof)).into_bytes(),
        ))
    }
}

impl SaslClient for ScramClient {
    fn mechanism(&self) -> Mechanism {
        self.mechanism.mechanism()
    }

    fn initial_response(&mut self) -> Result<Vec<u8>, AuthError> {
        let mut bare = format!("n={},r={}", encode_saslname(&self.username), self.nonce);
        if self.token_auth {
            bare.push_str(",tokenauth=true");
        }
        let message = format!("n,,{bare}").into_bytes();
        self.state = State::SentClientFirst { bare };
        Ok(message)
    }

    fn step(&mut self, server_bytes: &[u8]) -> Result<ClientStep, AuthError> {
        match std::mem::replace(&mut self.state, State::Done) {
            State::SentClientFirst { bare } => self.server_first(bare, server_bytes),
            State::SentClientFinal { server_signature } => {
                match ServerFinal::parse(server_bytes)? {
                    ServerFinal::Error(e) => Err(AuthError::authentication(format!(
                        "Sasl authentication using {} failed with error: {e}",
                        self.mechanism.name()
                    ))),
                    ServerFinal::Verifier(v) if bool::from(v.ct_eq(&server_signature)) => {
                        Ok(ClientStep::Done)
                    }
                    ServerFinal::Verifier(_) => Err(AuthError::protocol(
                        "Invalid server signature in server final message",
                    )),
                }
            }
            State::Initial | State::Done => Err(AuthError::illegal_state(
                "Unexpected challenge in Sasl client state",
            )),
        }
    }
}
