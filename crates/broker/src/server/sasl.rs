//! `Authenticator`: one SASL connection's authentication, Kafka's SaslServerAuthenticator as a
//! state machine the connection's read loop drives with SaslHandshake (v0–1) and
//! SaslAuthenticate (v0–2) requests — or, after a v0 handshake, with raw SASL tokens in the
//! frames themselves.
//!
//! Until a client is authenticated only ApiVersions and the SASL requests are served; anything
//! else closes the connection (Kafka: "Unexpected Kafka request ... during SASL handshake"). A
//! failed exchange is answered SASL_AUTHENTICATION_FAILED with Kafka's message, then the
//! connection is closed (KIP-152); failures are logged per peer, rate-limited, never with a
//! secret. KIP-368: SaslAuthenticate v1+ tells the client its session lifetime (the credential's
//! remaining life and `connections.max.reauth.ms`, the smaller); it re-authenticates on the same
//! connection with a new handshake, as the same principal, before the lifetime ends; a request
//! after the end closes the connection.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    ApiKey, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
    SaslHandshakeResponse,
};
use kafka_protocol::protocol::StrBytes;
use strom_security::{FailedLoginLog, SaslServer, SaslServerFactory, Step};
use tokio::time::Instant;

use crate::handler::{decode, DecodeError};
use crate::session::Principal;

/// Where one connection's authentication is.
#[derive(Debug)]
enum State {
    /// No handshake yet (or none since the last session, for re-authentication).
    AwaitHandshake,
    /// A mechanism was chosen; SaslAuthenticate requests (or raw tokens after a v0 handshake)
    /// carry its messages.
    Exchanging {
        server: Box<dyn SaslServer>,
        mechanism: &'static str,
        raw: bool,
    },
}

/// What the connection does after a SASL request.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Send this response (a Kafka response, or raw bytes after a v0 handshake) and go on.
    Answer(Answer),
    /// Send this response, then close the connection.
    AnswerAndClose(Answer, String),
    /// The client is authenticated as this principal: send the response, serve the client.
    Authenticated(Answer, Principal),
    /// Close the connection without an answer (a failed exchange after a v0 handshake).
    Close(String),
}

/// A response to a SASL request.
#[derive(Debug)]
pub(crate) enum Answer {
    Handshake(SaslHandshakeResponse),
    Authenticate(SaslAuthenticateResponse),
    /// A raw SASL token, framed only by its size (after a v0 handshake).
    Raw(Bytes),
}

/// One connection's SASL state.
#[derive(Debug)]
pub(crate) struct Authenticator {
    factory: Arc<SaslServerFactory>,
    failed: Arc<FailedLoginLog>,
    peer: IpAddr,
    reauth_ms: i64,
    state: State,
    /// The authenticated principal and when its session ends (`None`: never).
    session: Option<(Principal, Option<Instant>)>,
}

impl Authenticator {
    pub(crate) fn new(
        factory: Arc<SaslServerFactory>,
        failed: Arc<FailedLoginLog>,
        peer: IpAddr,
        reauth_ms: i64,
    ) -> Self {
        Authenticator {
            factory,
            failed,
            peer,
            reauth_ms,
            state: State::AwaitHandshake,
            session: None,
        }
    }

    /// Whether a request of `api` may be served now; `Err` is why the connection closes.
    pub(crate) fn admit(&self, api: ApiKey) -> Result<(), String> {
        match &self.session {
            None if api == ApiKey::ApiVersions => Ok(()),
            None => Err(format!(
                "unexpected {api:?} request before SASL authentication completed"
            )),
            Some((_, Some(end))) if Instant::now() >= *end => Err(
                "the SASL session expired (connections.max.reauth.ms or the credential's lifetime); the client did not re-authenticate"
                    .into(),
            ),
            Some(_) => Ok(()),
        }
    }

    /// Whether the next frame is a raw SASL token (after a v0 handshake), not a request.
    pub(crate) fn expects_raw_token(&self) -> bool {
        matches!(self.state, State::Exchanging { raw: true, .. })
    }

    /// SaslHandshake: picks the mechanism.
    pub(crate) fn handshake(&mut self, version: i16, body: Bytes) -> Result<Outcome, DecodeError> {
        let req: SaslHandshakeRequest = decode(ApiKey::SaslHandshake, version, body)?;
        let enabled: Vec<StrBytes> = self
            .factory
            .enabled_mechanism_names()
            .into_iter()
            .map(StrBytes::from_static_str)
            .collect();
        let answer = |code: i16| {
            Answer::Handshake(
                SaslHandshakeResponse::default()
                    .with_error_code(code)
                    .with_mechanisms(enabled.clone()),
            )
        };
        if matches!(self.state, State::Exchanging { .. }) {
            return Ok(Outcome::AnswerAndClose(
                answer(ResponseError::IllegalSaslState.code()),
                "a second SaslHandshake during an exchange".into(),
            ));
        }
        if version == 0 && self.session.is_some() {
            return Ok(Outcome::AnswerAndClose(
                answer(ResponseError::IllegalSaslState.code()),
                "re-authentication needs SaslHandshake v1".into(),
            ));
        }
        match self.factory.create(req.mechanism.as_str()) {
            Ok(server) => {
                let mechanism = server.mechanism().name();
                self.state = State::Exchanging {
                    server,
                    mechanism,
                    raw: version == 0,
                };
                Ok(Outcome::Answer(answer(0)))
            }
            Err(e) => Ok(Outcome::AnswerAndClose(
                answer(ResponseError::UnsupportedSaslMechanism.code()),
                e.to_string(),
            )),
        }
    }

    /// SaslAuthenticate: one message of the exchange.
    pub(crate) fn authenticate(
        &mut self,
        version: i16,
        body: Bytes,
    ) -> Result<Outcome, DecodeError> {
        let req: SaslAuthenticateRequest = decode(ApiKey::SaslAuthenticate, version, body)?;
        let refuse = |code: ResponseError, message: String| {
            Answer::Authenticate(
                SaslAuthenticateResponse::default()
                    .with_error_code(code.code())
                    .with_error_message(Some(StrBytes::from_string(message))),
            )
        };
        if !matches!(self.state, State::Exchanging { raw: false, .. }) {
            let why = "SaslAuthenticate without a SaslHandshake v1 before it".to_string();
            return Ok(Outcome::AnswerAndClose(
                refuse(ResponseError::IllegalSaslState, why.clone()),
                why,
            ));
        }
        Ok(match self.step(&req.auth_bytes) {
            Ok(Stepped::Continue(bytes)) => Outcome::Answer(Answer::Authenticate(
                SaslAuthenticateResponse::default().with_auth_bytes(Bytes::from(bytes)),
            )),
            Ok(Stepped::Done {
                principal,
                server_bytes,
                lifetime_ms,
            }) => {
                let mut resp =
                    SaslAuthenticateResponse::default().with_auth_bytes(Bytes::from(server_bytes));
                if version >= 1 {
                    resp = resp.with_session_lifetime_ms(lifetime_ms);
                }
                Outcome::Authenticated(Answer::Authenticate(resp), principal)
            }
            Err(message) => Outcome::AnswerAndClose(
                refuse(ResponseError::SaslAuthenticationFailed, message.clone()),
                message,
            ),
        })
    }

    /// A raw SASL token after a v0 handshake.
    pub(crate) fn raw_token(&mut self, token: &[u8]) -> Outcome {
        match self.step(token) {
            Ok(Stepped::Continue(bytes)) => Outcome::Answer(Answer::Raw(Bytes::from(bytes))),
            Ok(Stepped::Done {
                principal,
                server_bytes,
                ..
            }) => Outcome::Authenticated(Answer::Raw(Bytes::from(server_bytes)), principal),
            // v0 has no error response: the connection closes.
            Err(message) => Outcome::Close(message),
        }
    }

    fn step(&mut self, bytes: &[u8]) -> Result<Stepped, String> {
        let State::Exchanging {
            server, mechanism, ..
        } = &mut self.state
        else {
            return Err("no SASL exchange in progress".into());
        };
        let mechanism = *mechanism;
        match server.step(bytes) {
            Ok(Step::Continue(bytes)) => Ok(Stepped::Continue(bytes)),
            Ok(Step::Done(done)) => {
                self.state = State::AwaitHandshake;
                if let Some((before, _)) = &self.session {
                    if *before != done.principal {
                        // KIP-368: a session cannot change hands.
                        let why = format!(
                            "re-authentication as {} on a connection of {before}",
                            done.principal
                        );
                        tracing::warn!(peer = %self.peer, mechanism, "{why}");
                        return Err("Cannot change principals during re-authentication".to_string());
                    }
                }
                let now = strom_log::now_ms();
                let reauth = (self.reauth_ms > 0).then_some(self.reauth_ms);
                let lifetime_ms = done.session_lifetime_ms(reauth, now);
                let end = (lifetime_ms > 0).then(|| {
                    Instant::now() + Duration::from_millis(u64::try_from(lifetime_ms).unwrap_or(0))
                });
                self.session = Some((done.principal.clone(), end));
                tracing::debug!(peer = %self.peer, mechanism, principal = %done.principal, "SASL authenticated");
                Ok(Stepped::Done {
                    principal: done.principal,
                    server_bytes: done.server_bytes,
                    lifetime_ms,
                })
            }
            Err(e) => {
                self.state = State::AwaitHandshake;
                if self.failed.record(self.peer, mechanism, &e) {
                    tracing::warn!(peer = %self.peer, mechanism, reason = e.detail(), "failed authentication");
                }
                Err(e.client_message(mechanism))
            }
        }
    }
}

/// One step of an exchange, as the requests answer it.
enum Stepped {
    Continue(Vec<u8>),
    Done {
        principal: Principal,
        server_bytes: Vec<u8>,
        lifetime_ms: i64,
    },
}
