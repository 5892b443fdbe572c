//! `SaslAuthenticator`: the client side of Kafka's SASL exchange (Kafka's
//! `SaslClientAuthenticator`) as a sans-IO state machine: it builds each request and judges each
//! response, and the connection's writer task does the I/O (`wire.rs`).
//!
//! The exchange, after ApiVersions: SaslHandshake v1 naming the mechanism (the broker answers
//! UNSUPPORTED_SASL_MECHANISM with the mechanisms it enables), then SaslAuthenticate rounds
//! carrying the mechanism's bytes, driven by a strom-security [`SaslClient`], until the client
//! state machine is done. A response with an error code ends it with the broker's
//! `error_message` (SASL_AUTHENTICATION_FAILED: "Authentication failed: Invalid username or
//! password" and the like). SaslHandshake v0, where the mechanism bytes travel as raw frames,
//! is not spoken: every broker since Kafka 1.0 has v1.
//!
//! KIP-368: a SaslAuthenticate v1+ response with `session_lifetime_ms > 0` asks for
//! re-authentication before the session ends. Like Kafka's clients, this one re-authenticates
//! after a random 85–95% of the lifetime (85% leaves room for latency and clock drift, the
//! jitter keeps many connections from re-authenticating at the same instant).

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::{
    ApiKey, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
    SaslHandshakeResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use strom_security::{ClientStep, Mechanism, SaslClient};

use crate::error::ClientError;
use crate::security::SaslLogin;
use crate::versions::ApiVersionTable;

/// More rounds than any mechanism here needs (PLAIN 1, SCRAM 2, OAUTHBEARER at most 2): a broker
/// that keeps challenging is refused instead of answered forever.
const MAX_ROUNDS: u32 = 8;

/// The SASL API versions negotiated for one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SaslVersions {
    pub(crate) handshake: i16,
    pub(crate) authenticate: i16,
}

impl SaslVersions {
    /// The versions to use with a broker, or which API it lacks.
    pub(crate) fn negotiated(versions: &ApiVersionTable, addr: &str) -> Result<Self, ClientError> {
        let get = |api| {
            versions
                .get(api)
                .ok_or_else(|| ClientError::UnsupportedApi {
                    api,
                    addr: addr.to_owned(),
                })
        };
        Ok(SaslVersions {
            handshake: get(ApiKey::SaslHandshake)?,
            authenticate: get(ApiKey::SaslAuthenticate)?,
        })
    }
}

/// What to do after a SaslAuthenticate response. `Debug` leaves the bytes out: PLAIN's carry
/// the password.
pub(crate) enum SaslNext {
    /// Send this next.
    Send(SaslAuthenticateRequest),
    /// Authenticated; re-authenticate after this long (KIP-368), if the broker asked to.
    Done {
        reauthenticate_after: Option<Duration>,
    },
}

impl std::fmt::Debug for SaslNext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SaslNext::Send(r) => write!(f, "Send({} bytes)", r.auth_bytes.len()),
            SaslNext::Done {
                reauthenticate_after,
            } => f
                .debug_struct("Done")
                .field("reauthenticate_after", reauthenticate_after)
                .finish(),
        }
    }
}

/// One SASL exchange.
#[derive(Debug)]
pub(crate) struct SaslAuthenticator {
    client: Box<dyn SaslClient>,
    mechanism: Mechanism,
    /// "SASL/SCRAM-SHA-512 authentication to host:port", the context of every error.
    context: String,
    rounds: u32,
}

impl SaslAuthenticator {
    pub(crate) fn new(login: &SaslLogin, addr: &str) -> Self {
        let mechanism = login.mechanism();
        SaslAuthenticator {
            client: login.client(),
            mechanism,
            context: format!("SASL/{mechanism} authentication to {addr}"),
            rounds: 0,
        }
    }

    /// The SaslHandshake request.
    pub(crate) fn handshake(&self) -> SaslHandshakeRequest {
        SaslHandshakeRequest::default()
            .with_mechanism(StrBytes::from_static_str(self.mechanism.name()))
    }

    /// Checks the handshake's answer and returns the first SaslAuthenticate request.
    pub(crate) fn on_handshake(
        &mut self,
        response: &SaslHandshakeResponse,
    ) -> Result<SaslAuthenticateRequest, ClientError> {
        let code = response.error_code;
        if code != 0 {
            let enabled = response
                .mechanisms
                .iter()
                .map(|m| m.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            let mechanism = self.mechanism;
            // Kafka's wording (SaslClientAuthenticator.handleSaslHandshakeResponse).
            let message = if code == ResponseError::UnsupportedSaslMechanism.code() {
                format!("Client SASL mechanism '{mechanism}' not enabled in the server, enabled mechanisms are [{enabled}]")
            } else if code == ResponseError::IllegalSaslState.code() {
                format!("Unexpected handshake request with client mechanism {mechanism}, enabled mechanisms are [{enabled}]")
            } else {
                format!("client mechanism is {mechanism}, enabled mechanisms are [{enabled}]")
            };
            return Err(ClientError::broker(&self.context, code, Some(&message)));
        }
        let first = self
            .client
            .initial_response()
            .map_err(|e| self.refused(e))?;
        Ok(authenticate_request(first))
    }

    /// Feeds a SaslAuthenticate response to the mechanism.
    pub(crate) fn on_authenticate(
        &mut self,
        response: &SaslAuthenticateResponse,
    ) -> Result<SaslNext, ClientError> {
        if response.error_code != 0 {
            return Err(ClientError::broker(
                &self.context,
                response.error_code,
                response.error_message.as_deref(),
            ));
        }
        self.rounds += 1;
        if self.rounds > MAX_ROUNDS {
            return Err(ClientError::Authentication {
                context: self.context.clone(),
                reason: format!("the broker sent more than {MAX_ROUNDS} challenges"),
            });
        }
        match self
            .client
            .step(&response.auth_bytes)
            .map_err(|e| self.refused(e))?
        {
            ClientStep::Send(bytes) => Ok(SaslNext::Send(authenticate_request(bytes))),
            ClientStep::Done => Ok(SaslNext::Done {
                reauthenticate_after: reauthenticate_after(
                    response.session_lifetime_ms,
                    rand::random::<f64>(),
                ),
            }),
        }
    }

    /// The mechanism refused what the broker sent (a SCRAM server signature that does not
    /// verify, a nonce that is not ours): the broker is not who it claims, or is broken.
    fn refused(&self, e: strom_security::AuthError) -> ClientError {
        ClientError::Authentication {
            context: self.context.clone(),
            reason: e.to_string(),
        }
    }
}

fn authenticate_request(bytes: Vec<u8>) -> SaslAuthenticateRequest {
    SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(bytes))
}

/// KIP-368: re-authenticate after 85% + `jitter` (0..1) × 10% of a positive session lifetime.
fn reauthenticate_after(session_lifetime_ms: i64, jitter: f64) -> Option<Duration> {
    let lifetime = u64::try_from(session_lifetime_ms)
        .ok()
        .filter(|ms| *ms > 0)?;
    let fraction = 0.85 + 0.10 * jitter.clamp(0.0, 1.0);
    Some(Duration::from_millis(lifetime).mul_f64(fraction))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use strom_security::{
        ClientSecurity, InMemoryScramCredentialStore, Properties, SaslServer, ScramCredential,
        ScramMechanism, ScramServer, Step,
    };

    use super::*;

    fn login(mechanism: &str, user: &str, password: &str) -> SaslLogin {
        let props: Properties = [
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", mechanism),
            ("sasl.username", user),
            ("sasl.password", password),
        ]
        .into_iter()
        .collect();
        let sasl = ClientSecurity::from_properties(&props)
            .unwrap()
            .sasl
            .unwrap();
        SaslLogin::Password(sasl)
    }

    /// A broker's side of the exchange: the strom-security server, answering as Kafka does.
    fn answer(
        server: &mut dyn SaslServer,
        request: &SaslAuthenticateRequest,
        lifetime: i64,
    ) -> SaslAuthenticateResponse {
        match server.step(&request.auth_bytes) {
            Ok(Step::Continue(bytes)) => {
                SaslAuthenticateResponse::default().with_auth_bytes(Bytes::from(bytes))
            }
            Ok(Step::Done(done)) => SaslAuthenticateResponse::default()
                .with_auth_bytes(Bytes::from(done.server_bytes))
                .with_session_lifetime_ms(lifetime),
            Err(e) => SaslAuthenticateResponse::default()
                .with_error_code(ResponseError::SaslAuthenticationFailed.code())
                .with_error_message(Some(StrBytes::from_string(
                    e.client_message(server.mechanism().name()),
                ))),
        }
    }

    fn scram_server(m: ScramMechanism) -> ScramServer {
        let store = InMemoryScramCredentialStore::new();
        store.insert(
            m,
            "alice",
            ScramCredential::generate("alice-secret", m, 4096, None).unwrap(),
        );
        ScramServer::new(m, Arc::new(store))
    }

    /// Runs a whole exchange; the result of the last step.
    fn run(
        auth: &mut SaslAuthenticator,
        server: &mut dyn SaslServer,
        lifetime: i64,
    ) -> Result<SaslNext, ClientError> {
        let mut request = auth.on_handshake(&SaslHandshakeResponse::default())?;
        loop {
            match auth.on_authenticate(&answer(server, &request, lifetime))? {
                SaslNext::Send(next) => request = next,
                done => return Ok(done),
            }
        }
    }

    #[test]
    fn scram_login_completes_and_schedules_reauthentication() {
        for m in [ScramMechanism::Sha256, ScramMechanism::Sha512] {
            let mut auth =
                SaslAuthenticator::new(&login(m.name(), "alice", "alice-secret"), "b:9092");
            assert_eq!(auth.handshake().mechanism.as_str(), m.name());
            let done = run(&mut auth, &mut scram_server(m), 10_000).unwrap();
            let SaslNext::Done {
                reauthenticate_after: Some(after),
            } = done
            else {
                panic!("{done:?}");
            };
            assert!((8_500..=9_500).contains(&after.as_millis()), "{after:?}");
        }
    }

    #[test]
    fn wrong_password_fails_with_the_brokers_message() {
        let mut auth = SaslAuthenticator::new(&login("SCRAM-SHA-256", "alice", "wrong"), "b:9092");
        let err = run(&mut auth, &mut scram_server(ScramMechanism::Sha256), 0).unwrap_err();
        assert_eq!(
            err.kafka_code(),
            Some(ResponseError::SaslAuthenticationFailed.code())
        );
        let shown = err.to_string();
        assert!(
            shown.starts_with(
                "SASL/SCRAM-SHA-256 authentication to b:9092: SASL_AUTHENTICATION_FAILED: "
            ),
            "{shown}"
        );
        assert!(
            shown.contains("invalid credentials with SASL mechanism SCRAM-SHA-256"),
            "{shown}"
        );
        assert!(!shown.contains("wrong"), "no secret in errors: {shown}");
    }

    #[test]
    fn unsupported_mechanism_lists_the_enabled_ones() {
        let mut auth = SaslAuthenticator::new(&login("PLAIN", "alice", "p"), "b:9092");
        let response = SaslHandshakeResponse::default()
            .with_error_code(ResponseError::UnsupportedSaslMechanism.code())
            .with_mechanisms(vec![
                StrBytes::from_static_str("SCRAM-SHA-256"),
                StrBytes::from_static_str("SCRAM-SHA-512"),
            ]);
        let err = auth.on_handshake(&response).unwrap_err();
        assert_eq!(
            err.to_string(),
            "SASL/PLAIN authentication to b:9092: UNSUPPORTED_SASL_MECHANISM: Client SASL mechanism 'PLAIN' not enabled in the server, enabled mechanisms are [SCRAM-SHA-256, SCRAM-SHA-512]"
        );
    }

    #[test]
    fn a_forged_server_signature_is_refused_by_the_client() {
        let mut auth =
            SaslAuthenticator::new(&login("SCRAM-SHA-256", "alice", "alice-secret"), "b:9092");
        let mut server = scram_server(ScramMechanism::Sha256);
        let mut request = auth
            .on_handshake(&SaslHandshakeResponse::default())
            .unwrap();
        let first = answer(&mut server, &request, 0);
        let SaslNext::Send(next) = auth.on_authenticate(&first).unwrap() else {
            panic!()
        };
        request = next;
        let _ = answer(&mut server, &request, 0);
        // A server that does not know the password cannot produce ServerSignature.
        let forged =
            SaslAuthenticateResponse::default().with_auth_bytes(Bytes::from_static(b"v=AAAA"));
        let err = auth.on_authenticate(&forged).unwrap_err();
        assert!(matches!(err, ClientError::Authentication { .. }), "{err}");
    }

    #[test]
    fn endless_challenges_are_refused() {
        let token = SaslLogin::OAuthBearer {
            token: strom_security::Password::new("t"),
            extensions: Default::default(),
        };
        let mut auth = SaslAuthenticator::new(&token, "b:9092");
        auth.on_handshake(&SaslHandshakeResponse::default())
            .unwrap();
        let challenge =
            SaslAuthenticateResponse::default().with_auth_bytes(Bytes::from_static(b"{}"));
        let mut result = Ok(SaslNext::Done {
            reauthenticate_after: None,
        });
        for _ in 0..=MAX_ROUNDS {
            result = auth.on_authenticate(&challenge);
        }
        assert!(
            matches!(result, Err(ClientError::Authentication { .. })),
            "{result:?}"
        );
    }

    #[test]
    fn debug_leaves_the_mechanism_bytes_out() {
        let mut auth = SaslAuthenticator::new(&login("PLAIN", "bob", "bob-secret"), "b:9092");
        let first = auth
            .on_handshake(&SaslHandshakeResponse::default())
            .unwrap();
        assert!(first.auth_bytes.ends_with(b"bob-secret"));
        let shown = format!("{:?} {auth:?}", SaslNext::Send(first));
        assert!(!shown.contains("bob-secret"), "{shown}");
    }

    #[test]
    fn reauthentication_window_is_85_to_95_percent() {
        assert_eq!(reauthenticate_after(0, 0.5), None);
        assert_eq!(reauthenticate_after(-5, 0.5), None);
        assert_eq!(
            reauthenticate_after(1000, 0.0),
            Some(Duration::from_millis(850))
        );
        assert_eq!(
            reauthenticate_after(1000, 1.0),
            Some(Duration::from_millis(950))
        );
        assert_eq!(
            reauthenticate_after(1000, 7.0),
            Some(Duration::from_millis(950))
        );
    }
}
