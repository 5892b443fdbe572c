//! `ScramServer`: Kafka's `ScramSaslServer` as a state machine. client-first → server-first
//! (`r=<client nonce><server nonce>,s=<salt>,i=<iterations>`) → client-final (channel binding,
//! nonce, proof) → server-final (`v=<ServerSignature>`).
//!
//! Kafka's checks and messages: an unknown user fails at once ("Authentication failed: Invalid
//! user credentials"); an authzid other than the user is refused; credentials below the
//! mechanism's minimum iterations are refused; the final nonce must be the server's (or librdkafka's old doubled form, as Kafka 3.9 accepts); the proof
//! is checked by recomputing StoredKey, compared in constant time. Beyond Kafka (which ignores
//! it) the channel binding must be the base64 of the gs2 header, as RFC 5802 requires. The
//! AuthMessage uses the messages exactly as received, per the RFC.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use subtle::ConstantTimeEq;

use crate::error::AuthError;
use crate::principal::kafka_principal::KafkaPrincipal;
use crate::sasl::scram::credential::{ScramCredential, ScramCredentialStore};
use crate::sasl::scram::messages::{ClientFinal, ClientFirst, ServerFirst};
use crate::sasl::scram::{random_nonce, xor, ScramMechanism};
use crate::sasl::{after_end, phase_after, Authenticated, Mechanism, Phase, SaslServer, Step};

#[derive(Debug)]
enum State {
    ReceiveClientFirst,
    ReceiveClientFinal(Box<Exchange>),
    Ended(Phase),
}

/// What the first round established (dropped once the exchange ends, as Kafka clears it).
#[derive(Debug)]
struct Exchange {
    client_first: ClientFirst,
    server_first: String,
    nonce: String,
    credential: ScramCredential,
    principal: KafkaPrincipal,
    expiry_ms: Option<i64>,
}

/// The server side of one SCRAM exchange.
#[derive(Debug)]
pub struct ScramServer {
    mechanism: ScramMechanism,
    store: Arc<dyn ScramCredentialStore>,
    state: State,
    /// Set by tests to reproduce RFC vectors; random otherwise.
    fixed_server_nonce: Option<String>,
}

impl ScramServer {
    /// A server looking credentials up in `store`.
    pub fn new(mechanism: ScramMechanism, store: Arc<dyn ScramCredentialStore>) -> Self {
        ScramServer {
            mechanism,
            store,
            state: State::ReceiveClientFirst,
            fixed_server_nonce: None,
        }
    }

    #[cfg(test)]
    pub(crate) fn with_server_nonce(mut self, nonce: &str) -> Self {
        self.fixed_server_nonce = Some(nonce.to_string());
        self
    }

    fn client_first(&mut self, bytes: &[u8]) -> Result<Step, AuthError> {
        let client_first = ClientFirst::parse(bytes)?;
        let token_auth = client_first
            .extensions
            .get("tokenauth")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let (credential, principal, expiry_ms) = if token_auth {
            let token = self
                .store
                .delegation_token(self.mechanism, &client_first.username)
                .ok_or_else(|| {
                    AuthError::protocol(format!(
                        "Token Authentication failed: Invalid tokenId : {}",
                        client_first.username
                    ))
                })?;
            let mut principal = KafkaPrincipal::user(token.owner);
            principal.token_authenticated = true;
            (token.credential, principal, Some(token.expiry_timestamp_ms))
        } else {
            let credential = self
                .store
                .credential(self.mechanism, &client_first.username)
                .ok_or_else(|| {
                    AuthError::protocol("Authentication failed: Invalid user credentials").with_log_detail(format!(
                        "Authentication failed: Invalid user credentials (no {} credential for user {})",
                        self.mechanism.name(),
                        client_first.username
                    ))
                })?;
            (
                credential,
                KafkaPrincipal::user(client_first.username.clone()),
                None,
            )
        };
        if !client_first.authzid.is_empty() && client_first.authzid != client_first.username {
            return Err(AuthError::authentication(
                "Authentication failed: Client requested an authorization id that is different from username",
            ));
        }
        if credential.iterations < ScramMechanism::MIN_ITERATIONS {
            return Err(AuthError::protocol(format!(
                "Iterations {} is less than the minimum {} for {}",
                credential.iterations,
                ScramMechanism::MIN_ITERATIONS,
                self.mechanism.name()
            )));
        }
        let server_nonce = self.fixed_server_nonce.clone().unwrap_or_else(random_nonce);
        let nonce = format!("{}{server_nonce}", client_first.nonce);
        let server_first = ServerFirst {
            nonce: nonce.clone(),
            salt: credential.salt.clone(),
            iterations: credential.iterations,
        }
        .to_message();
        let reply = server_first.clone().into_bytes();
        self.state = State::ReceiveClientFinal(Box::new(Exchange {
            client_first,
            server_first,
            nonce,
            credential,
            principal,
            expiry_ms,
        }));
        Ok(Step::Continue(reply))
    }

    fn client_final(&self, exchange: Exchange, bytes: &[u8]) -> Result<Step, AuthError> {
        let client_final = ClientFinal::parse(bytes)?;
        if !nonce_matches(&client_final.nonce, &exchange) {
            return Err(AuthError::protocol(
                "Invalid client nonce in the final client message.",
            ));
        }
        if client_final.channel_binding != exchange.client_first.gs2_header.as_bytes() {
            return Err(AuthError::protocol(
                "Invalid channel binding in the final client message.",
            ));
        }
        let auth_message = format!(
            "{},{},{}",
            exchange.client_first.bare, exchange.server_first, client_final.without_proof
        );
        let m = self.mechanism;
        let client_signature = m.hmac(&exchange.credential.stored_key, auth_message.as_bytes());
        let client_key = xor(&client_final.proof, &client_signature);
        let computed = m.hash(&client_key);
        let matches: bool = client_final.proof.len() == client_signature.len()
            && bool::from(computed.ct_eq(&exchange.credential.stored_key));
        if !matches {
            return Err(
                AuthError::protocol("Invalid client credentials").with_log_detail(format!(
                    "Invalid client credentials (user {})",
                    exchange.client_first.username
                )),
            );
        }
        let server_signature = m.hmac(&exchange.credential.server_key, auth_message.as_bytes());
        Ok(Step::Done(Authenticated {
            principal: exchange.principal,
            server_bytes: format!("v={}", STANDARD.encode(server_signature)).into_bytes(),
            credential_expiry_ms: exchange.expiry_ms,
            extensions: exchange
                .client_first
                .extensions
                .into_iter()
                .filter(|(k, _)| k == "tokenauth")
                .collect::<BTreeMap<_, _>>(),
        }))
    }
}

impl SaslServer for ScramServer {
    fn mechanism(&self) -> Mechanism {
        self.mechanism.mechanism()
    }

    fn step(&mut self, client_bytes: &[u8]) -> Result<Step, AuthError> {
        let state = std::mem::replace(&mut self.state, State::Ended(Phase::Failed));
        let result = match state {
            State::ReceiveClientFirst => self.client_first(client_bytes),
            State::ReceiveClientFinal(exchange) => self.client_final(*exchange, client_bytes),
            State::Ended(phase) => {
                self.state = State::Ended(phase);
                return Err(after_end(phase));
            }
        };
        if let Some(phase) = phase_after(&result) {
            self.state = State::Ended(phase);
        }
        result
    }
}

fn nonce_matches(sent: &str, exchange: &Exchange) -> bool {
    // RFC 5802: the client echoes the nonce of server-first. librdkafka before 2.6.1
    // (Debian's kcat among them) prefixes its own nonce once more (librdkafka#4895);
    // Kafka 3.8.1-3.9 accept that form, and so do we: the server nonce is still all
    // there, so a replayed exchange still fails.
    sent == exchange.nonce
        || sent
            .strip_prefix(exchange.client_first.nonce.as_str())
            .is_some_and(|rest| rest == exchange.nonce)
}
