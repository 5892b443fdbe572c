//! `ConsoleConfig` and the state behind the handlers: Kafka sessions, each one `strom-client`
//! [`Client`] (cheap to clone; metadata cache and one connection per broker) plus the produce
//! form's producer, dialed on first use so the console serves pages even while the cluster is
//! still coming up, and redialed after a failed bootstrap.
//!
//! Without [`ConsoleConfig::login`] every request shares one session with the configured
//! security. With it, every request must carry HTTP basic credentials, and each user gets a
//! session whose SASL login is those credentials: the broker authenticates them when the session
//! connects and its authorizer decides, per request, what that user may see and do.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use sha2::{Digest, Sha256};
use strom_client::{
    Client, ClientConfig, ClientError, Mechanism, Password, Producer, ProducerConfig,
    SaslCredentials, SaslLogin, Security,
};
use tokio::sync::Mutex;

use crate::api::ApiError;

/// How many users' sessions are kept; past it the cache starts over (sessions redial lazily).
const MAX_SESSIONS: usize = 256;

/// How the console reaches the cluster and what its host server offers besides.
#[derive(Debug, Clone)]
pub struct ConsoleConfig {
    /// The bootstrap address and security (TLS, and the SASL login when `login` is `None`) of
    /// the console's Kafka connections.
    pub client: ClientConfig,
    /// Whether the server the router is mounted in also serves Prometheus `/metrics` at the same
    /// origin (`strom serve` will; `strom console` only behind a proxy that adds it). The front
    /// end reads the throughput sparkline from it only then, so it never requests a 404.
    pub metrics_at_origin: bool,
    /// Ask every visitor for HTTP basic credentials and log in to the cluster with them, with
    /// this SASL mechanism (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512), over `client`'s transport.
    pub login: Option<Mechanism>,
}

impl ConsoleConfig {
    /// A console of the cluster at `bootstrap_servers` (plaintext), without `/metrics`.
    pub fn new(bootstrap_servers: impl Into<String>) -> Self {
        ConsoleConfig {
            client: ClientConfig::new(bootstrap_servers),
            metrics_at_origin: false,
            login: None,
        }
    }
}

/// One identity's connections to the cluster.
pub(crate) struct Session {
    config: ClientConfig,
    /// `None` until the first successful bootstrap. Held while dialing, so concurrent requests
    /// wait for one connection instead of each opening their own.
    client: Mutex<Option<Client>>,
    /// The producer of the "produce a test record" form, made on first use (it runs a sender task).
    producer: Mutex<Option<Producer>>,
}

impl Session {
    fn new(config: ClientConfig) -> Arc<Self> {
        Arc::new(Session {
            config,
            client: Mutex::new(None),
            producer: Mutex::new(None),
        })
    }

    /// The client, bootstrapping it if this is the first use (or the last bootstrap failed).
    pub(crate) async fn client(&self) -> Result<Client, ClientError> {
        let mut slot = self.client.lock().await;
        if let Some(client) = slot.as_ref() {
            return Ok(client.clone());
        }
        let mut config = self.config.clone();
        // A page waits on this: fail fast and let the next poll try again.
        config.retries = config.retries.min(2);
        let client = Client::with_config(config).await?;
        *slot = Some(client.clone());
        Ok(client)
    }

    /// The session's producer (acks=all, so a produced test record is really there when the
    /// form says so).
    pub(crate) async fn producer(&self) -> Result<Producer, ClientError> {
        let client = self.client().await?;
        let mut slot = self.producer.lock().await;
        if let Some(p) = slot.as_ref() {
            return Ok(p.clone());
        }
        let producer = Producer::new(client, ProducerConfig::default());
        *slot = Some(producer.clone());
        Ok(producer)
    }
}

/// A user name and the SHA-256 of a password.
type LoginKey = (String, [u8; 32]);

/// The handlers' state: cheap to clone (one `Arc`).
#[derive(Clone)]
pub(crate) struct Console {
    inner: Arc<Inner>,
}

struct Inner {
    config: ConsoleConfig,
    /// The session of every request when there is no `login`.
    shared: Arc<Session>,
    /// With `login`: sessions by user and SHA-256 of the password, so a different password
    /// never reuses a session another one authenticated.
    sessions: parking_lot::Mutex<HashMap<LoginKey, Arc<Session>>>,
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console")
            .field(
                "bootstrap_servers",
                &self.inner.config.client.bootstrap_servers,
            )
            .field("login", &self.inner.config.login)
            .finish()
    }
}

impl Console {
    pub(crate) fn new(config: ConsoleConfig) -> Self {
        Console {
            inner: Arc::new(Inner {
                shared: Session::new(config.client.clone()),
                config,
                sessions: parking_lot::Mutex::new(HashMap::new()),
            }),
        }
    }

    pub(crate) fn config(&self) -> &ConsoleConfig {
        &self.inner.config
    }

    /// The session a request with these headers acts as; 401 when a login is required and the
    /// request has no usable basic credentials.
    pub(crate) fn session(&self, headers: &HeaderMap) -> Result<Arc<Session>, ApiError> {
        let Some(mechanism) = self.inner.config.login else {
            return Ok(self.inner.shared.clone());
        };
        let (user, password) = basic_credentials(headers)
            .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "log in with a Kafka user"))?;
        let key = (user.clone(), Sha256::digest(password.as_bytes()).into());
        let mut sessions = self.inner.sessions.lock();
        if let Some(s) = sessions.get(&key) {
            return Ok(s.clone());
        }
        let login = SaslCredentials::password_login(mechanism, user, Password::new(password))
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("the console cannot log in with {mechanism}"),
                )
            })?;
        let base = &self.inner.config.client;
        let mut config = base.clone();
        config.security = Security::new(
            base.security.tls().cloned(),
            Some(SaslLogin::Password(login)),
        );
        if sessions.len() >= MAX_SESSIONS {
            sessions.clear();
        }
        let session = Session::new(config);
        sessions.insert(key, session.clone());
        Ok(session)
    }
}

/// `Authorization: Basic base64(user:password)`, decoded.
pub(crate) fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    (!user.is_empty()).then(|| (user.to_owned(), password.to_owned()))
}

/// With a `login`: every route (the pages too, so the browser asks at once) needs basic
/// credentials, and a 401 (none given, or the broker refused them) carries the challenge that
/// makes the browser ask again. The broker, not this layer, checks the password.
pub(crate) async fn require_login(
    State(console): State<Console>,
    request: Request,
    next: Next,
) -> Response {
    if console.config().login.is_none() {
        return next.run(request).await;
    }
    let mut response = if basic_credentials(request.headers()).is_none() {
        ApiError::new(StatusCode::UNAUTHORIZED, "log in with a Kafka user").into_response()
    } else {
        next.run(request).await
    };
    if response.status() == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"Strom console\", charset=\"UTF-8\""),
        );
    }
    response
}

/// The extractor handlers take: the request's Kafka session.
pub(crate) struct Kafka(pub(crate) Arc<Session>);

impl FromRequestParts<Console> for Kafka {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, console: &Console) -> Result<Self, ApiError> {
        console.session(&parts.headers).map(Kafka)
    }
}

impl std::ops::Deref for Kafka {
    type Target = Session;
    fn deref(&self) -> &Session {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_auth(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn basic_credentials_are_decoded() {
        // "alice:s3:cret" (a colon in the password is part of it).
        let h = with_auth("Basic YWxpY2U6czM6Y3JldA==");
        assert_eq!(
            basic_credentials(&h),
            Some(("alice".into(), "s3:cret".into()))
        );
        assert_eq!(basic_credentials(&with_auth("Bearer abc")), None);
        assert_eq!(basic_credentials(&with_auth("Basic !!!")), None);
        // ":pw": no user.
        assert_eq!(basic_credentials(&with_auth("Basic OnB3")), None);
        assert_eq!(basic_credentials(&HeaderMap::new()), None);
    }

    #[test]
    fn login_sessions_are_per_user_and_password() {
        let mut config = ConsoleConfig::new("127.0.0.1:1");
        config.login = Some(Mechanism::ScramSha512);
        let console = Console::new(config);
        assert!(console.session(&HeaderMap::new()).is_err());
        let a1 = console.session(&with_auth("Basic YTpwdzE=")).unwrap(); // a:pw1
        let a1_again = console.session(&with_auth("Basic YTpwdzE=")).unwrap();
        let a2 = console.session(&with_auth("Basic YTpwdzI=")).unwrap(); // a:pw2
        assert!(Arc::ptr_eq(&a1, &a1_again));
        assert!(!Arc::ptr_eq(&a1, &a2));
        let login = a1.config.security.sasl().map(|l| l.mechanism());
        assert_eq!(login, Some(Mechanism::ScramSha512));
    }
}
