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
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::ApiKey;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

use super::codec::{
    decode_header, encode_response, peek_header, read_frame_body, read_frame_size, EncodedResponse,
    FrameError,
};
use super::limits::{ConnectionPermit, RequestMemory, Reserved};
use crate::broker::Broker;
use crate::handler::{self, HandlerFuture, RequestContext};
use crate::session::{Principal, Session};

const MAX_IN_FLIGHT: usize = 64;

struct Pending {
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    response: HandlerFuture,
    /// The request's bytes in the memory pools, released with this after the response.
    _reserved: Reserved,
}

pub(super) async fn serve(
    broker: Arc<Broker>,
    stream: TcpStream,
    peer: SocketAddr,
    mut stop: watch::Receiver<bool>,
    memory: RequestMemory,
    _admitted: ConnectionPermit,
) {
    let (mut rd, mut wr) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<Pending>(MAX_IN_FLIGHT);
    let writer = tokio::spawn(async move {
        while let Some(p) = rx.recv().await {
            let Some(body) = p.response.await else {
                continue;
            };
            let frame = match encode_response(p.api_key, p.version, p.correlation_id, body.as_ref())
            {
                Ok(f) => f,
                Err(e) => {
                    tracing::error!(%peer, api = ?p.api_key, error = %e, "encoding response failed; closing connection");
                    break;
                }
            };
            if let Err(e) = write_response(&mut wr, &frame).await {
                tracing::debug!(%peer, error = %e, "write failed; closing connection");
                break;
            }
            tracing::trace!(%peer, api = ?p.api_key, correlation = p.correlation_id, "response written");
        }
        let _ = wr.shutdown().await;
    });
    let session = Arc::new(Session {
        principal: Principal::anonymous(),
        listener: "PLAINTEXT".into(),
        peer,
    });
    let max = broker.config.socket_request_max_bytes;
    let idle = Duration::from_millis(broker.config.connections_max_idle_ms);
    let own_pool = RequestMemory::connection_pool(max);
    loop {
        let size = tokio::select! {
            _ = stop.changed() => break,
            s = read_frame_size(&mut rd, max, idle) => s,
        };
        let frame = match size {
            Ok(size) => {
                let reserved = tokio::select! {
                    _ = stop.changed() => break,
                    r = memory.reserve(&own_pool, size) => r,
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
                tracing::warn!(%peer, listener = %session.listener, principal = %session.principal, error = %e, "bad frame; closing connection");
                break;
            }
        };
        match dispatch(&broker, frame, &session, reserved) {
            Ok((p, hold)) => {
                if tx.send(p).await.is_err() {
                    break;
                }
                if let Some(hold) = hold {
                    // The handler's ordered part is still running (`hold_connection`); a
                    // dropped sender releases too.
                    let _ = hold.await;
                }
            }
            Err(reason) => {
                tracing::warn!(%peer, listener = %session.listener, principal = %session.principal, %reason, "closing connection");
                break;
            }
        }
    }
    drop(tx);
    let _ = writer.await;
}

/// Writes encoded bytes, sending spliced file ranges with sendfile between them.
async fn write_response(
    wr: &mut tokio::net::tcp::OwnedWriteHalf,
    frame: &EncodedResponse,
) -> std::io::Result<()> {
    let mut at = 0;
    for (offset, file) in &frame.splices {
        wr.write_all(&frame.bytes[at..*offset]).await?;
        super::sendfile::send_file(wr.as_ref(), file.file(), file.position(), file.len()).await?;
        at = *offset;
    }
    wr.write_all(&frame.bytes[at..]).await
}

/// Phase one: route the frame and run the handler's ordered part; with the receiver to await
/// before reading the next request when that part is not finished yet.
fn dispatch(
    broker: &Arc<Broker>,
    mut frame: Bytes,
    session: &Arc<Session>,
    reserved: Reserved,
) -> Result<(Pending, Option<tokio::sync::oneshot::Receiver<()>>), String> {
    let prefix = peek_header(&frame).ok_or("frame shorter than a request header")?;
    let Ok(api_key) = ApiKey::try_from(prefix.api_key) else {
        return Err(format!("unknown API key {}", prefix.api_key));
    };
    let Some(h) = handler::lookup(prefix.api_key) else {
        return Err(format!("unsupported API {api_key:?}"));
    };
    let version = prefix.api_version;
    if version < h.min_served || version > h.max_version {
        if api_key == ApiKey::ApiVersions {
            // KIP-511: answer at v0 with UNSUPPORTED_VERSION and our ranges.
            let p = Pending {
                api_key,
                version: 0,
                correlation_id: prefix.correlation_id,
                response: handler::ready(handler::unsupported_version_response()),
                _reserved: reserved,
            };
            return Ok((p, None));
        }
        return Err(format!(
            "{api_key:?} v{version} is not supported (served {}..={})",
            h.min_served, h.max_version
        ));
    }
    let header = decode_header(api_key, version, &mut frame)
        .map_err(|e| format!("malformed {api_key:?} v{version} request header: {e}"))?;
    tracing::trace!(peer = %session.peer, principal = %session.principal, client = ?header.client_id, api = ?api_key, version, correlation = prefix.correlation_id, "request");
    let ctx = RequestContext {
        broker: broker.clone(),
        api_version: version,
        client_id: header.client_id,
        session: session.clone(),
        hold: Default::default(),
    };
    let hold = ctx.hold.clone();
    let response = (h.handle)(ctx, frame).map_err(|e| e.to_string())?;
    let p = Pending {
        api_key,
        version,
        correlation_id: prefix.correlation_id,
        response,
        _reserved: reserved,
    };
    let hold = hold.lock().take();
    Ok((p, hold))
}
