//! TLS and SASL for the mock broker, behaving as a Kafka SASL_SSL / SASL_PLAINTEXT listener does:
//! a TLS acceptor with a `TestPki` server certificate, and a per-connection [`SaslGate`] that
//! answers SaslHandshake/SaslAuthenticate with strom-security's servers, sets KIP-368's
//! `session_lifetime_ms`, and — like Kafka's broker — closes the connection on any other request
//! before authentication, during a re-authentication, or after the session expired. Each such
//! refusal is recorded as a violation, so a test can assert the client never caused one.
//!
//! AlterUserScramCredentials and DescribeUserScramCredentials work on the same credential store
//! the SCRAM server reads, so a user created through the client can log in at once.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use hmac::{Hmac, Mac};
use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, StrBytes};
use parking_lot::Mutex;
use sha2::{Digest, Sha256, Sha512};
use strom_security::test_support::TestPki;
use strom_security::{
    InMemoryScramCredentialStore, ListenerName, ListenerProps, Mechanism, OAuthBearerServer,
    OAuthBearerValidator, PlainServer, PlainUsers, Properties, SaslServer, ScramCredential,
    ScramCredentialStore, ScramMechanism, ScramServer, SecurityProtocol, Step, TlsAcceptorHandle,
    TlsServerSettings,
};
use tokio::time::Instant;

use super::encode;

/// The SASL side of a mock listener.
pub struct MockSasl {
    /// What SaslHandshake accepts.
    pub enabled: Vec<Mechanism>,
    /// SCRAM users (also what the credential admin APIs change).
    pub scram: Arc<InMemoryScramCredentialStore>,
    /// PLAIN users.
    pub plain: Arc<PlainUsers>,
    /// OAUTHBEARER token validation, when enabled.
    pub oauth: Option<Arc<OAuthBearerValidator>>,
    /// `connections.max.reauth.ms`.
    pub max_reauth_ms: Option<i64>,
    /// What happened, for assertions.
    pub log: Mutex<SaslLog>,
}

/// Outcomes seen by the mock.
#[derive(Debug, Default)]
pub struct SaslLog {
    /// Successful exchanges (first logins and re-authentications).
    pub authentications: usize,
    /// The error messages sent in failed SaslAuthenticate responses.
    pub failures: Vec<String>,
    /// Requests Kafka's broker would have refused (the connection was closed instead).
    pub violations: Vec<String>,
}

impl MockSasl {
    /// SCRAM-SHA-256/512 with `alice`/`alice-secret` for both, PLAIN with `bob`/`bob-secret`.
    pub fn with_users(max_reauth_ms: Option<i64>) -> MockSasl {
        let scram = Arc::new(InMemoryScramCredentialStore::new());
        for m in [ScramMechanism::Sha256, ScramMechanism::Sha512] {
            let credential = ScramCredential::generate("alice-secret", m, 4096, None).unwrap();
            scram.insert(m, "alice", credential);
        }
        let mut plain = PlainUsers::default();
        plain.insert("bob", &strom_security::Password::new("bob-secret"));
        MockSasl {
            enabled: vec![
                Mechanism::Plain,
                Mechanism::ScramSha256,
                Mechanism::ScramSha512,
            ],
            scram,
            plain: Arc::new(plain),
            oauth: None,
            max_reauth_ms,
            log: Mutex::default(),
        }
    }

    fn server(&self, m: Mechanism) -> Option<Box<dyn SaslServer>> {
        if !self.enabled.contains(&m) {
            return None;
        }
        Some(match m {
            Mechanism::Plain => Box::new(PlainServer::new(self.plain.clone())),
            Mechanism::OAuthBearer => Box::new(OAuthBearerServer::new(self.oauth.clone()?)),
            scram => Box::new(ScramServer::new(
                ScramMechanism::from_mechanism(scram)?,
                self.scram.clone(),
            )),
        })
    }

    fn violation(&self, what: String) {
        self.log.lock().violations.push(what);
    }
}

/// A TLS acceptor presenting a `localhost` certificate issued by `pki`.
pub fn tls_acceptor(pki: &TestPki) -> TlsAcceptorHandle {
    let server = pki.server("broker");
    let props: Properties = [
        ("ssl.keystore.type", "PEM"),
        ("ssl.keystore.location", server.keystore.to_str().unwrap()),
    ]
    .into_iter()
    .collect();
    let l = ListenerProps::new(&props, &ListenerName::new("SASL_SSL"));
    TlsAcceptorHandle::new(TlsServerSettings::from_listener(&l, SecurityProtocol::SaslSsl).unwrap())
        .unwrap()
}

/// What the gate decided about one request.
pub enum Verdict {
    /// Not a SASL request, and the connection may make it: handle it normally.
    Pass,
    /// Send this response body.
    Answer(Bytes),
    /// Send this response body, then close (a failed authentication).
    AnswerThenClose(Bytes),
    /// Close without answering.
    Close,
}

/// One connection's authentication state.
#[derive(Default)]
pub struct SaslGate {
    exchange: Option<Box<dyn SaslServer>>,
    authenticated: bool,
    expires_at: Option<Instant>,
}

impl SaslGate {
    /// Judges a request (its header already read from `body`).
    pub fn check(&mut self, sasl: &MockSasl, api: ApiKey, v: i16, body: &mut Bytes) -> Verdict {
        match api {
            ApiKey::ApiVersions => Verdict::Pass,
            ApiKey::SaslHandshake => {
                let req = SaslHandshakeRequest::decode(body, v).unwrap();
                let enabled: Vec<StrBytes> = sasl
                    .enabled
                    .iter()
                    .map(|m| StrBytes::from_static_str(m.name()))
                    .collect();
                let server = Mechanism::parse(req.mechanism.as_str()).and_then(|m| sasl.server(m));
                let mut resp = SaslHandshakeResponse::default().with_mechanisms(enabled);
                match server {
                    Some(server) => self.exchange = Some(server),
                    None => resp = resp.with_error_code(33), // UNSUPPORTED_SASL_MECHANISM
                }
                Verdict::Answer(encode(&resp, v))
            }
            ApiKey::SaslAuthenticate => {
                let req = SaslAuthenticateRequest::decode(body, v).unwrap();
                let Some(server) = self.exchange.as_mut() else {
                    sasl.violation("SaslAuthenticate without SaslHandshake".into());
                    return Verdict::Close;
                };
                match server.step(&req.auth_bytes) {
                    Ok(Step::Continue(bytes)) => Verdict::Answer(encode(
                        &SaslAuthenticateResponse::default().with_auth_bytes(Bytes::from(bytes)),
                        v,
                    )),
                    Ok(Step::Done(done)) => {
                        self.exchange = None;
                        self.authenticated = true;
                        let now_ms = strom_now_ms();
                        let lifetime = done.session_lifetime_ms(sasl.max_reauth_ms, now_ms);
                        self.expires_at = (lifetime > 0).then(|| {
                            Instant::now() + std::time::Duration::from_millis(lifetime as u64)
                        });
                        sasl.log.lock().authentications += 1;
                        let resp = SaslAuthenticateResponse::default()
                            .with_auth_bytes(Bytes::from(done.server_bytes))
                            .with_session_lifetime_ms(if v >= 1 { lifetime } else { 0 });
                        Verdict::Answer(encode(&resp, v))
                    }
                    Err(e) => {
                        let message = e.client_message(server.mechanism().name());
                        sasl.log.lock().failures.push(message.clone());
                        let resp = SaslAuthenticateResponse::default()
                            .with_error_code(58) // SASL_AUTHENTICATION_FAILED
                            .with_error_message(Some(StrBytes::from_string(message)));
                        Verdict::AnswerThenClose(encode(&resp, v))
                    }
                }
            }
            other => {
                let refused = if !self.authenticated {
                    Some("before authentication")
                } else if self.exchange.is_some() {
                    Some("during re-authentication")
                } else if self.expires_at.is_some_and(|at| Instant::now() > at) {
                    Some("after the session expired")
                } else {
                    None
                };
                match refused {
                    Some(when) => {
                        sasl.violation(format!("{other:?} {when}"));
                        Verdict::Close
                    }
                    None => Verdict::Pass,
                }
            }
        }
    }
}

fn strom_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// AlterUserScramCredentials against the store: the credential is derived from the salted
/// password as Kafka's controller does (StoredKey = H(HMAC(salted, "Client Key"))).
pub fn alter_scram(
    sasl: &MockSasl,
    req: AlterUserScramCredentialsRequest,
) -> AlterUserScramCredentialsResponse {
    let mut results: BTreeMap<String, i16> = BTreeMap::new();
    for d in req.deletions {
        let m = mechanism(d.mechanism);
        let code = if sasl.scram.credential(m, &d.name).is_some() {
            sasl.scram.remove(m, &d.name);
            0
        } else {
            91 // RESOURCE_NOT_FOUND
        };
        results.insert(d.name.to_string(), code);
    }
    for u in req.upsertions {
        let m = mechanism(u.mechanism);
        let client_key = hmac(m, &u.salted_password, b"Client Key");
        let server_key = hmac(m, &u.salted_password, b"Server Key");
        let stored_key = match m {
            ScramMechanism::Sha256 => Sha256::digest(&client_key).to_vec(),
            ScramMechanism::Sha512 => Sha512::digest(&client_key).to_vec(),
        };
        let credential = ScramCredential {
            salt: u.salt.to_vec(),
            stored_key,
            server_key,
            iterations: u.iterations as u32,
        };
        sasl.scram.insert(m, &u.name, credential);
        results.entry(u.name.to_string()).or_insert(0);
    }
    AlterUserScramCredentialsResponse::default().with_results(
        results
            .into_iter()
            .map(|(user, code)| {
                AlterUserScramCredentialsResult::default()
                    .with_user(StrBytes::from_string(user))
                    .with_error_code(code)
            })
            .collect(),
    )
}

/// DescribeUserScramCredentials for named users (the store cannot list, so "all" is unsupported).
pub fn describe_scram(
    sasl: &MockSasl,
    req: DescribeUserScramCredentialsRequest,
) -> DescribeUserScramCredentialsResponse {
    let results = req
        .users
        .unwrap_or_default()
        .into_iter()
        .map(|u| {
            let infos: Vec<CredentialInfo> = [ScramMechanism::Sha256, ScramMechanism::Sha512]
                .into_iter()
                .filter_map(|m| {
                    let c = sasl.scram.credential(m, &u.name)?;
                    Some(
                        CredentialInfo::default()
                            .with_mechanism(if m == ScramMechanism::Sha256 { 1 } else { 2 })
                            .with_iterations(c.iterations as i32),
                    )
                })
                .collect();
            let r = DescribeUserScramCredentialsResult::default().with_user(u.name.clone());
            if infos.is_empty() {
                r.with_error_code(91)
                    .with_error_message(Some(StrBytes::from_string(format!(
                        "Attempt to describe a user credential that does not exist: {}",
                        u.name
                    ))))
            } else {
                r.with_credential_infos(infos)
            }
        })
        .collect();
    DescribeUserScramCredentialsResponse::default().with_results(results)
}

fn mechanism(t: i8) -> ScramMechanism {
    if t == 1 {
        ScramMechanism::Sha256
    } else {
        ScramMechanism::Sha512
    }
}

fn hmac(m: ScramMechanism, key: &[u8], data: &[u8]) -> Vec<u8> {
    match m {
        ScramMechanism::Sha256 => {
            let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
        ScramMechanism::Sha512 => {
            let mut mac = Hmac::<Sha512>::new_from_slice(key).unwrap();
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
    }
}
