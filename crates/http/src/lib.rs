//! The broker's HTTP endpoint (`http.listeners`, `strom serve --http-listen`): `GET /health`
//! (200 while the process serves), `GET /ready` (200 once the broker is registered, unfenced
//! and has its logs loaded; 503 before), `GET /metrics` (Prometheus text, or OpenMetrics when
//! the `Accept` header asks for it), and whatever routes the caller merges in (the console).
//! It runs on the broker's tokio runtime and reads the broker only through
//! [`strom_broker::BrokerCollector`] and `Broker::is_ready`.
//!
//! The server starts before the broker so probes answer during start-up: the broker is handed
//! over with [`HttpState::set_broker`] once `BrokerServer::start` returns; until then only
//! `/health` answers 200 (everything else 503). When the Kafka listeners take passwords
//! (SASL PLAIN or SCRAM), every route but `/health` needs HTTP basic auth with such a user
//! (`basic_auth.rs`).
//!
//! Dependencies: http → {broker, metrics, security}; nothing depends on http but the binary.

mod basic_auth;
mod listen;
mod routes;

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use strom_broker::Broker;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use basic_auth::BasicAuth;
pub use listen::{HttpListen, DEFAULT_HTTP_LISTEN};

/// Start-up failures of the HTTP endpoint.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// `http.listeners` is neither `none` nor one `HOST:PORT`.
    #[error("http.listeners: {0}")]
    Config(String),
    /// An address given explicitly could not be bound.
    #[error("binding the HTTP endpoint to {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// What the routes read: the broker once it exists, and the login it requires.
#[derive(Debug, Clone, Default)]
pub struct HttpState {
    broker: Arc<OnceLock<Arc<Broker>>>,
    /// Set with the broker: `Some(None)` open, `Some(Some(_))` basic auth required.
    auth: Arc<OnceLock<Option<BasicAuth>>>,
}

impl HttpState {
    /// Hands the started broker to the routes, with the basic auth its listeners imply
    /// ([`BasicAuth::new`] over `BrokerServer::sasl_servers`). The first call wins.
    pub fn set_broker(&self, broker: Arc<Broker>, auth: Option<BasicAuth>) {
        let _ = self.auth.set(auth);
        let _ = self.broker.set(broker);
    }

    /// The login requirement, once the broker has started.
    pub(crate) fn auth(&self) -> Option<&Option<BasicAuth>> {
        self.auth.get()
    }

    /// The broker, once started.
    pub fn broker(&self) -> Option<&Arc<Broker>> {
        self.broker.get()
    }
}

/// A running HTTP endpoint.
#[derive(Debug)]
pub struct HttpServer {
    local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl HttpServer {
    /// Serves `/health`, `/ready`, `/metrics` and the `extra` routes (e.g. the console's
    /// `Router`) on `listener`. Must run inside a tokio runtime.
    pub fn start(listener: TcpListener, state: HttpState, extra: axum::Router) -> HttpServer {
        let local_addr = listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        let app =
            routes::router(state.clone())
                .merge(extra)
                .layer(axum::middleware::from_fn_with_state(
                    state,
                    basic_auth::require,
                ));
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.wait_for(|s| *s).await;
            };
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::warn!(error = %e, "HTTP endpoint stopped");
            }
        });
        tracing::info!(addr = %local_addr, "HTTP endpoint (/health, /ready, /metrics) started");
        HttpServer {
            local_addr,
            stop,
            task,
        }
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting and lets in-flight requests finish.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn status(addr: SocketAddr, path: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.expect("write");
        let mut out = String::new();
        s.read_to_string(&mut out).await.expect("read");
        out.lines().next().unwrap_or_default().to_string()
    }

    #[tokio::test]
    async fn before_the_broker_starts_only_health_answers_and_extra_routes_are_merged() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let extra = axum::Router::new().route("/console", axum::routing::get(|| async { "hi" }));
        let server = HttpServer::start(listener, HttpState::default(), extra);
        let addr = server.local_addr();
        assert_eq!(status(addr, "/health").await, "HTTP/1.1 200 OK");
        for path in ["/ready", "/metrics", "/console", "/nothing"] {
            assert_eq!(
                status(addr, path).await,
                "HTTP/1.1 503 Service Unavailable",
                "{path}"
            );
        }
        server.shutdown().await;
    }

    #[tokio::test]
    async fn without_a_login_requirement_the_merged_routes_answer() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let extra = axum::Router::new().route("/console", axum::routing::get(|| async { "hi" }));
        let state = HttpState::default();
        // Open (no password listener); the broker itself is not needed by these routes.
        let _ = state.auth.set(None);
        let server = HttpServer::start(listener, state, extra);
        let addr = server.local_addr();
        assert_eq!(status(addr, "/console").await, "HTTP/1.1 200 OK");
        assert_eq!(
            status(addr, "/ready").await,
            "HTTP/1.1 503 Service Unavailable"
        );
        assert_eq!(status(addr, "/metrics").await, "HTTP/1.1 200 OK");
        assert_eq!(status(addr, "/nothing").await, "HTTP/1.1 404 Not Found");
        server.shutdown().await;
    }
}
