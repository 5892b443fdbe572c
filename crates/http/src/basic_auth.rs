//! HTTP basic auth for the endpoint when the Kafka listeners authenticate with passwords:
//! every route but `/health` (probes) needs `Authorization: Basic` with a user the listeners
//! would let in. The password is checked by running the listeners' own SASL servers
//! (`strom_security`): PLAIN with the JAAS users, SCRAM as a complete in-memory exchange with
//! `ScramClient` against the credentials in the metadata image. No SCRAM maths here.
//!
//! Each check costs a SCRAM exchange (PBKDF2 at the credential's iterations), so it runs on a
//! blocking thread; a scraper every few seconds is cheap, a password guesser is slow.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use strom_security::{
    ClientStep, KafkaPrincipal, Mechanism, Password, SaslClient, SaslServerFactory, ScramClient,
    ScramMechanism, Step,
};

use crate::HttpState;

/// The password-checking SASL servers of the Kafka listeners.
#[derive(Debug, Clone)]
pub struct BasicAuth {
    servers: Vec<Arc<SaslServerFactory>>,
}

impl BasicAuth {
    /// Basic auth against `servers`; `None` when there are none (no listener takes passwords:
    /// the endpoint stays open, as the Kafka listeners are).
    pub fn new(servers: &[Arc<SaslServerFactory>]) -> Option<BasicAuth> {
        let servers: Vec<_> = servers
            .iter()
            .filter(|f| {
                f.enabled_mechanisms()
                    .iter()
                    .any(|m| *m != Mechanism::OAuthBearer)
            })
            .cloned()
            .collect();
        (!servers.is_empty()).then_some(BasicAuth { servers })
    }

    /// The principal of `user` when `password` is right for any listener's PLAIN or SCRAM.
    pub fn verify(&self, user: &str, password: &str) -> Option<KafkaPrincipal> {
        self.servers.iter().find_map(|f| {
            f.enabled_mechanisms()
                .iter()
                .find_map(|m| login(f, *m, user, password))
        })
    }
}

/// One SASL login as `user` with `mechanism`, client and server in memory.
fn login(
    f: &SaslServerFactory,
    m: Mechanism,
    user: &str,
    password: &str,
) -> Option<KafkaPrincipal> {
    let mut server = f.create(m.name()).ok()?;
    let mut client: Box<dyn SaslClient> = match m {
        Mechanism::Plain => Box::new(strom_security::PlainClient::new(
            user,
            Password::new(password),
        )),
        Mechanism::ScramSha256 | Mechanism::ScramSha512 => Box::new(ScramClient::new(
            ScramMechanism::from_mechanism(m)?,
            user,
            Password::new(password),
            false,
        )),
        Mechanism::OAuthBearer => return None,
    };
    let mut message = client.initial_response().ok()?;
    // PLAIN takes one message, SCRAM two; a bound keeps a misbehaving mechanism finite.
    for _ in 0..4 {
        match server.step(&message).ok()? {
            Step::Continue(challenge) => match client.step(&challenge).ok()? {
                ClientStep::Send(next) => message = next,
                ClientStep::Done => return None,
            },
            Step::Done(done) => {
                // SCRAM: the client checks the server's signature too.
                if m != Mechanism::Plain {
                    client.step(&done.server_bytes).ok()?;
                }
                return Some(done.principal);
            }
        }
    }
    None
}

/// `Authorization: Basic base64(user:password)`.
fn credentials(req: &Request) -> Option<(String, String)> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Basic realm=\"strom\"")],
        "unauthorized\n",
    )
        .into_response()
}

/// The middleware: `/health` open; everything else needs a login once the broker requires
/// one (before the broker has started, only `/health` answers).
pub(crate) async fn require(State(state): State<HttpState>, req: Request, next: Next) -> Response {
    if req.uri().path() == "/health" {
        return next.run(req).await;
    }
    let Some(auth) = state.auth() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "starting\n").into_response();
    };
    let Some(auth) = auth.clone() else {
        return next.run(req).await;
    };
    let Some((user, password)) = credentials(&req) else {
        return unauthorized();
    };
    let verified = tokio::task::spawn_blocking(move || auth.verify(&user, &password)).await;
    match verified {
        Ok(Some(_principal)) => next.run(req).await,
        _ => unauthorized(),
    }
}
