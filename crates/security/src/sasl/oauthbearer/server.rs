//! `OAuthBearerServer`: Kafka's `OAuthBearerSaslServer`. One client message carries the token;
//! a valid one completes the exchange at once (empty server message, the token's expiry as the
//! credential lifetime for KIP-368). An invalid one is answered, as RFC 7628 and Kafka do, with
//! the challenge `{"status":"invalid_token"}`; the client must reply with a single `0x01`, and
//! the exchange then fails with that JSON as the error message (the real reason goes only to
//! the server's log). `OAuthBearerClient` is the other side, for a token the caller already has.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::properties::Password;
use crate::error::AuthError;
use crate::principal::kafka_principal::KafkaPrincipal;
use crate::sasl::oauthbearer::initial_response::InitialResponse;
use crate::sasl::oauthbearer::validator::OAuthBearerValidator;
use crate::sasl::{
    after_end, phase_after, Authenticated, ClientStep, Mechanism, Phase, SaslClient, SaslServer,
    Step,
};

const INVALID_TOKEN: &str = r#"{"status":"invalid_token"}"#;

#[derive(Debug)]
enum State {
    Initial,
    ErrorSent { reason: String },
    Ended(Phase),
}

/// The server side of one OAUTHBEARER exchange.
#[derive(Debug)]
pub struct OAuthBearerServer {
    validator: Arc<OAuthBearerValidator>,
    state: State,
}

impl OAuthBearerServer {
    /// A server checking tokens with `validator`.
    pub fn new(validator: Arc<OAuthBearerValidator>) -> Self {
        OAuthBearerServer {
            validator,
            state: State::Initial,
        }
    }

    fn initial(&mut self, bytes: &[u8]) -> Result<Step, AuthError> {
        let response = InitialResponse::parse(bytes)?;
        let token = match self.validator.validate(&response.token) {
            Ok(t) => t,
            Err(reason) => {
                self.state = State::ErrorSent { reason };
                return Ok(Step::Continue(INVALID_TOKEN.as_bytes().to_vec()));
            }
        };
        if !response.authzid.is_empty() && response.authzid != token.principal_name {
            return Err(AuthError::authentication(format!(
                "Authentication failed: Client requested an authorization id ({}) that is different from the token's principal name ({})",
                response.authzid, token.principal_name
            )));
        }
        Ok(Step::Done(Authenticated {
            principal: KafkaPrincipal::user(token.principal_name),
            server_bytes: Vec::new(),
            credential_expiry_ms: Some(token.expiry_ms),
            extensions: response.extensions,
        }))
    }
}

impl SaslServer for OAuthBearerServer {
    fn mechanism(&self) -> Mechanism {
        Mechanism::OAuthBearer
    }

    fn step(&mut self, client_bytes: &[u8]) -> Result<Step, AuthError> {
        let result = match std::mem::replace(&mut self.state, State::Ended(Phase::Failed)) {
            State::Initial => self.initial(client_bytes),
            State::ErrorSent { reason } if client_bytes == [0x01] => {
                Err(AuthError::authentication(INVALID_TOKEN).with_log_detail(reason))
            }
            State::ErrorSent { reason } => Err(AuthError::protocol(
                "Invalid OAUTHBEARER client message after the server's error (expected %x01)",
            )
            .with_log_detail(reason)),
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

/// The client side of OAUTHBEARER, with a token obtained elsewhere.
#[derive(Debug, Clone)]
pub struct OAuthBearerClient {
    token: Password,
    extensions: BTreeMap<String, String>,
}

impl OAuthBearerClient {
    /// Sends `token` (a JWT) with Kafka's SASL extensions, if any.
    pub fn new(token: Password, extensions: BTreeMap<String, String>) -> Self {
        OAuthBearerClient { token, extensions }
    }
}

impl SaslClient for OAuthBearerClient {
    fn mechanism(&self) -> Mechanism {
        Mechanism::OAuthBearer
    }

    fn initial_response(&mut self) -> Result<Vec<u8>, AuthError> {
        Ok(InitialResponse::format(
            self.token.expose(),
            &self.extensions,
        ))
    }

    fn step(&mut self, server_bytes: &[u8]) -> Result<ClientStep, AuthError> {
        if server_bytes.is_empty() {
            Ok(ClientStep::Done)
        } else {
            // The server's error challenge: acknowledge, and the server fails the exchange.
            Ok(ClientStep::Send(vec![0x01]))
        }
    }
}
