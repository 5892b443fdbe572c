//! One client connection: reads frames in order, dispatches each to its handler (phase one, in
//! order), and writes responses in request order as they complete (phase two). Pipelined clients
//! (up to `MAX_IN_FLIGHT` requests) are served without reordering.
//!
//! Bad input never panics and never affects other connections: an oversized or negative frame,
//! a frame not complete within `connections.max.idle.ms`, an unknown API key, an unsupported
//! version or an undecodable request closes this connection with a log line; ApiVersions at an
//! unknown version gets Kafka's v0 error answer (KIP-511). Each frame's bytes are reserved in
//! the request memory pools (`limits.rs`) before its body is read and released once its
//! response is written, so neither one connection's pipeline nor all connections together can
//! queue more than their limits.

use std::net::SocketAddr;
use std::sync::atomic::AtomicI64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::ApiKey;
use strom_security::FailedLoginLog;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

use super::codec::{
    decode_header, encode_response, peek_header, read_frame_body, read_frame_size, FrameError,
};
use super::limits::{ConnectionPermit, RequestMemory, Reserved};
use super::listener::BoundListener;
use super::sasl::{Answer, Authenticator, Outcome};
use super::transport::{self, Writer};
use crate::broker::Broker;
use crate::handler::{self, ApiHandler, HandlerFuture, Mute, RequestContext};
use crate::session::Session;

const MAX_IN_FLIGHT: usize = 64;

/// What the writer task sends for one request.
enum Reply {
    /// A Kafka response, completed by the handler's future.
    Response {
        api_key: ApiKey,
        version: i16,
        correlation_id: i32,
        response: HandlerFuture,
        /// When the request was dispatched (its duration ends when the response is ready).
        started: Instant,
    },
    /// A raw SASL token (after a SaslHandshake v0): its size, then its bytes.
    Raw(Bytes),
}

struct Pending {
    reply: Reply,
    /// The request's bytes in the memory pools, released with this after the response.
    _reserved: Reserved,
}

/// What a connection shares with the others of its listener.
#[derive(Debug, Clone)]
pub(super) struct ConnectionContext {
    pub(super) broker: Arc<Broker>,
    pub(super) listener: Arc<BoundListener>,
    pub(super) memory: RequestMemory,
    pub(super) failed_logins: Arc<FailedLoginLog>,
    /// The listener's `strom_connections` gauge.
    pub(super) connections: Arc<AtomicI64>,
}

pub(super) async fn serve(
    cx: ConnectionContext,
    stream: TcpStream,
    peer: SocketAddr,
    mut stop: watch::Receiver<bool>,
    _admitted: ConnectionPermit,
) {
    let accepted = tokio::select! {
        _ = stop.changed() => return,
        a = transport::accept(&cx.listener, stream, peer) => a,
    };
    let accepted = match accepted {
        Ok(a) => a,
        Err(reason) => {
            // Handshake failures are a client's (a plaintext client on a TLS port, an untrusted
            // certificate): logged once per peer and minute at most.
            tracing::debug!(%peer, listener = %cx.listener.name, %reason, "connection refused");
            return;
        }
    };
    let _counted = strom_metrics::ConnectionGauge::open(&cx.connections);
    let mut session = Arc::new(Session::new(
        accepted.principal,
        cx.listener.name.clone(),
        cx.listener.protocol,
        peer,
    ));
    let mut auth = cx.listener.security.sasl.as_ref().map(|factory| {
        Authenticator::new(
            factory.clone(),
            cx.failed_logins.clone(),
            peer.ip(),
            cx.broker.config.connections_max_reauth_ms,
        )
    });
    let (tx, rx) = mpsc::channel::<Pending>(MAX_IN_FLIGHT);
    let log = RequestLog {
        metrics: cx.broker.metrics.clone(),
        slow: (cx.broker.config.request_log_slow_ms > 0)
            .then(|| Duration::from_millis(cx.broker.config.request_log_slow_ms)),
    };
    let writer = tokio::spawn(write_replies(rx, accepted.writer, peer, log));
    let mut rd = accepted.reader;
    let broker = &cx.broker;
    let max = broker.config.socket_request_max_bytes;
    let idle = Duration::from_millis(broker.config.connections_max_idle_ms);
    let own_pool = RequestMemory::connection_pool(max);
    let mute = Mute::default();
    loop {
        // A throttled client's next request waits out its throttle time (KIP-219).
        if let Some(until) = mute.until() {
            tokio::select! {
                _ = stop.changed() => break,
                _ = tokio::time::sleep_until(until) => {}
            }
        }
        let size = tokio::select! {
            _ = stop.changed() => break,
            s = read_frame_size(&mut rd, max, idle) => s,
        };
        let frame = match size {
            Ok(size) => {
                let reserved = tokio::select! {
                    _ = stop.changed() => break,
                    r = cx.memory.reserve(&own_pool, size) => r,
                };
                read_frame_body(&mut rd, size, idle)
                    .await
                    .map(|f| (f, reserved))
            }
            Err(e) => Err(e),
        };
        let (frame, reserved) = match frame {
            Ok(f) => f,
            Err(FrameError::Closed) => break,
            Err(FrameError::Idle) => {
                tracing::debug!(%peer, listener = %session.listener, "closing idle connection (connections.max.idle.ms)");
                break;
            }
            Err(e) => {
                tracing::warn!(%peer, listener = %session.listener, principal = %session.principal_text(), error = %e, "bad frame; closing connection");
                break;
            }
        };
        let step = match auth.as_mut() {
            Some(a) => authenticate(a, &mut session, frame, reserved),
            None => Step::Dispatch(frame, reserved),
        };
        let (p, close) = match step {
            Step::Dispatch(frame, reserved) => {
                match dispatch(broker, frame, &session, reserved, &mute) {
                    Ok((p, hold)) => {
                        if tx.send(p).await.is_err() {
                            break;
                        }
                        if let Some(hold) = hold {
                            // The handler's ordered part is still running (`hold_connection`); a
                            // dropped sender releases too.
                            let _ = hold.await;
                        }
                        continue;
                    }
                    Err(reason) => (None, Some(reason)),
                }
            }
            Step::Reply(p, close) => (Some(p), close),
            Step::Close(reason) => (None, Some(reason)),
        };
        if let Some(p) = p {
            if tx.send(p).await.is_err() {
                break;
            }
        }
        if let Some(reason) = close {
            tracing::warn!(%peer, listener = %session.listener, principal = %session.principal_text(), %reason, "closing connection");
            break;
        }
    }
    drop(tx);
    let _ = writer.await;
}

/// What the writer records of each answered request.
struct RequestLog {
    metrics: Arc<strom_metrics::BrokerMetrics>,
    /// `request.log.slow.ms` (none: 0, off): requests slower than this are logged at info.
    slow: Option<Duration>,
}

impl RequestLog {
    /// Counts an answered request and its duration; logs it when slow.
    fn answered(
        &self,
        peer: SocketAddr,
        api: ApiKey,
        version: i16,
        correlation: i32,
        started: Instant,
    ) {
        let elapsed = started.elapsed();
        let requests = &self.metrics.requests;
        requests.record(api as i16, version, strom_metrics::RequestOutcome::Answered);
        requests.observe_duration(api as i16, elapsed);
        if self.slow.is_some_and(|slow| elapsed >= slow) {
            tracing::info!(%peer, ?api, version, correlation, elapsed_ms = elapsed.as_millis() as u64, "slow request (request.log.slow.ms)");
        }
    }
}

/// Writes each reply in request order as its response completes.
async fn write_replies(
    mut rx: mpsc::Receiver<Pending>,
    mut wr: Writer,
    peer: SocketAddr,
    log: RequestLog,
) {
    while let Some(p) = rx.recv().await {
        let written = match p.reply {
            Reply::Raw(token) => {
                let mut framed = BytesMut::with_capacity(4 + token.len());
                framed.put_i32(i32::try_from(token.len()).unwrap_or(i32::MAX));
                framed.put_slice(&token);
                wr.write_raw(&framed).await
            }
            Reply::Response {
                api_key,
                version,
                correlation_id,
                response,
                started,
            } => {
                let body = response.await;
                log.answered(peer, api_key, version, correlation_id, started);
                let Some(body) = body else {
                    continue;
                };
                let frame = match encode_response(api_key, version, correlation_id, body.as_ref()) {
                    Ok(f) => f,
                    Err(e) => {
                        tracing::error!(%peer, api = ?api_key, error = %e, "encoding response failed; closing connection");
                        break;
                    }
                };
                let r = wr.write_response(&frame).await;
                tracing::trace!(%peer, api = ?api_key, correlation = correlation_id, "response written");
                r
            }
        };
        if let Err(e) = written {
            tracing::debug!(%peer, error = %e, "write failed; closing connection");
            break;
        }
    }
    wr.shutdown().await;
}

/// What a frame on a SASL listener leads to.
enum Step {
    /// A request the client may make now: dispatch it.
    Dispatch(Bytes, Reserved),
    /// A SASL answer, and a reason to close after it when there is one.
    Reply(Pending, Option<String>),
    /// Close the connection without an answer.
    Close(String),
}

/// The SASL gate of one frame: SASL requests (and raw tokens after a v0 handshake) are answered
/// here and may authenticate the session; other requests pass only once authenticated.
fn authenticate(
    auth: &mut Authenticator,
    session: &mut Arc<Session>,
    frame: Bytes,
    reserved: Reserved,
) -> Step {
    let (outcome, correlation_id, version) = match sasl_step(auth, frame) {
        Gate::Pass(frame) => return Step::Dispatch(frame, reserved),
        Gate::Close(reason) => return Step::Close(reason),
        Gate::Sasl(outcome, correlation_id, version) => (outcome, correlation_id, version),
    };
    let reply = |answer: Answer, close: Option<String>| {
        let reply = match answer {
            Answer::Raw(token) => Reply::Raw(token),
            Answer::Handshake(r) => Reply::Response {
                api_key: ApiKey::SaslHandshake,
                version,
                correlation_id,
                response: handler::ready(r),
                started: Instant::now(),
            },
            Answer::Authenticate(r) => Reply::Response {
                api_key: ApiKey::SaslAuthenticate,
                version,
                correlation_id,
                response: handler::ready(r),
                started: Instant::now(),
            },
        };
        Step::Reply(
            Pending {
                reply,
                _reserved: reserved,
            },
            close,
        )
    };
    match outcome {
        Outcome::Answer(a) => reply(a, None),
        Outcome::AnswerAndClose(a, why) => reply(a, Some(why)),
        Outcome::Close(why) => Step::Close(why),
        Outcome::Authenticated(a, principal) => {
            *session = Arc::new(session.authenticated_as(principal));
            reply(a, None)
        }
    }
}

/// A frame on a SASL listener, as the authenticator sees it.
enum Gate {
    /// A request the client may make now.
    Pass(Bytes),
    Close(String),
    /// A SASL step's outcome, with the request's correlation id and version.
    Sasl(Outcome, i32, i16),
}

fn sasl_step(auth: &mut Authenticator, mut frame: Bytes) -> Gate {
    if auth.expects_raw_token() {
        return Gate::Sasl(auth.raw_token(&frame), 0, 0);
    }
    let Some(prefix) = peek_header(&frame) else {
        return Gate::Close("frame shorter than a request header".into());
    };
    let api = ApiKey::try_from(prefix.api_key).ok();
    if !matches!(
        api,
        Some(ApiKey::SaslHandshake) | Some(ApiKey::SaslAuthenticate)
    ) {
        return match auth.admit(api.unwrap_or(ApiKey::ApiVersions)) {
            Ok(()) => Gate::Pass(frame),
            Err(reason) => Gate::Close(reason),
        };
    }
    let version = prefix.api_version;
    let served = match api {
        Some(ApiKey::SaslHandshake) => (0..=1).contains(&version),
        _ => (0..=2).contains(&version),
    };
    let header_ok = served && api.is_some_and(|a| decode_header(a, version, &mut frame).is_ok());
    if !header_ok {
        return Gate::Close(format!(
            "malformed or unsupported {api:?} v{version} request"
        ));
    }
    let decoded = match api {
        Some(ApiKey::SaslHandshake) => auth.handshake(version, frame),
        _ => auth.authenticate(version, frame),
    };
    match decoded {
        Ok(o) => Gate::Sasl(o, prefix.correlation_id, version),
        Err(e) => Gate::Close(e.to_string()),
    }
}

/// Where a frame goes: its handler, version and header, the body left in `frame`.
pub(crate) enum Route {
    Handler {
        handler: &'static ApiHandler,
        api_key: ApiKey,
        version: i16,
        correlation_id: i32,
        header: kafka_protocol::messages::RequestHeader,
    },
    /// KIP-511: ApiVersions at a version we do not know gets our ranges at v0.
    UnsupportedApiVersions { correlation_id: i32 },
}

/// Routes a frame by its header (the part of dispatch that reads only the frame): an unknown
/// API key, an unsupported version or a malformed header is the reason to close the connection.
pub(crate) fn route(frame: &mut Bytes) -> Result<Route, String> {
    let prefix = peek_header(frame).ok_or("frame shorter than a request header")?;
    let Ok(api_key) = ApiKey::try_from(prefix.api_key) else {
        return Err(format!("unknown API key {}", prefix.api_key));
    };
    let Some(h) = handler::lookup(prefix.api_key) else {
        return Err(format!("unsupported API {api_key:?}"));
    };
    let version = prefix.api_version;
    if version < h.min_served || version > h.max_version {
        if api_key == ApiKey::ApiVersions {
            return Ok(Route::UnsupportedApiVersions {
                correlation_id: prefix.correlation_id,
            });
        }
        return Err(format!(
            "{api_key:?} v{version} is not supported (served {}..={})",
            h.min_served, h.max_version
        ));
    }
    let header = decode_header(api_key, version, frame)
        .map_err(|e| format!("malformed {api_key:?} v{version} request header: {e}"))?;
    Ok(Route::Handler {
        handler: h,
        api_key,
        version,
        correlation_id: prefix.correlation_id,
        header,
    })
}

fn dispatch(
    broker: &Arc<Broker>,
    mut frame: Bytes,
    session: &Arc<Session>,
    reserved: Reserved,
    mute: &Mute,
) -> Result<(Pending, Option<tokio::sync::oneshot::Receiver<()>>), String> {
    let started = Instant::now();
    let (h, api_key, version, correlation_id, header) = match route(&mut frame)? {
        Route::UnsupportedApiVersions { correlation_id } => {
            let p = Pending {
                reply: Reply::Response {
                    api_key: ApiKey::ApiVersions,
                    version: 0,
                    correlation_id,
                    response: handler::ready(handler::unsupported_version_response(session.sasl())),
                    started,
                },
                _reserved: reserved,
            };
            return Ok((p, None));
        }
        Route::Handler {
            handler,
            api_key,
            version,
            correlation_id,
            header,
        } => (handler, api_key, version, correlation_id, header),
    };
    tracing::trace!(peer = %session.peer, principal = %session.principal_text(), client = ?header.client_id, api = ?api_key, version, correlation = correlation_id, "request");
    let ctx = RequestContext {
        broker: broker.clone(),
        api_version: version,
        client_id: header.client_id,
        session: session.clone(),
        hold: Default::default(),
        mute: mute.clone(),
    };
    let hold = ctx.hold.clone();
    let response = if broker.quotas.request.quotas_enabled() {
        handler::under_request_quota(h, ctx, frame)
    } else {
        (h.handle)(ctx, frame)
    };
    let response = response.map_err(|e| {
        let failed = strom_metrics::RequestOutcome::Failed;
        broker
            .metrics
            .requests
            .record(api_key as i16, version, failed);
        e.to_string()
    })?;
    let p = Pending {
        reply: Reply::Response {
            api_key,
            version,
            correlation_id,
            response,
            started,
        },
        _reserved: reserved,
    };
    let hold = hold.lock().take();
    Ok((p, hold))
}
