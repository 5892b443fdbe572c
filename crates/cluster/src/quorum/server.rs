//! The server side of the controller RPC: the accept loop on `controller.listen` (plain TCP, or
//! TLS proving the peer's node id: `transport`, `tls`), each connection's hello and per-request checks (`peer`), and `handle_request`, which serves one
//! request whether it came over TCP or from this node itself (`call_leader` short-circuits to it
//! when this node leads; those are trusted).
//!
//! Raft RPCs go straight to openraft; proposals and read-index requests need this node to be the
//! Raft leader (served by `admit`); broker requests need the active controller, which is lent
//! this quorum as its host and whose typed answers become `Response`s here. Anything that needs
//! the leader gets `NotController` with a hint elsewhere.
//!
//! Bounds on what a peer costs: at most `MAX_CONNECTIONS` connections, a hello within
//! `HELLO_TIMEOUT` under `MAX_HELLO_FRAME`, frames under `MAX_FRAME` read as they arrive. A
//! proposal is checked before openraft sees it (`admit`), and the entries of an AppendEntries
//! here, so nothing a peer sends can make this node's log append fail (which would stop
//! openraft). A refused request is answered with the reason and logged.

use std::sync::{Arc, Weak};
use std::time::Duration;

use openraft::EntryPayload;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::admit::entry_bytes;
use super::entry_codec::approx_entry_len;
use super::log_store::MAX_STORED_ENTRY_BYTES;
use super::peer::Peer;
use super::tls::TlsNodeAcceptor;
use super::transport::{Accepted, Acceptor, PlainTcp};
use super::wire::{
    forward, read_frame, write_frame, Request, Response, MAX_FRAME, MAX_HELLO_FRAME,
};
use super::{PeerRefusal, Quorum, RemoteError};
use crate::controller::requests::Decided;

/// Most connections served at once; more are closed at accept (each pooled peer keeps a few).
const MAX_CONNECTIONS: usize = 1024;
/// How long a new connection has for its transport handshake and hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves the controller listener, over TLS when the quorum has an acceptor for it.
pub(crate) async fn serve_listener(
    listener: TcpListener,
    tls: Option<TlsNodeAcceptor>,
    quorum: Weak<Quorum>,
) {
    match tls {
        Some(acceptor) => serve(listener, acceptor, quorum).await,
        None => serve(listener, PlainTcp, quorum).await,
    }
}

/// Accepts connections until the quorum is dropped or its task aborted (shutdown).
async fn serve<A: Acceptor>(listener: TcpListener, acceptor: A, quorum: Weak<Quorum>) {
    let acceptor = Arc::new(acceptor);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (stream, from) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "controller listener accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if quorum.strong_count() == 0 {
            return;
        }
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%from, limit = MAX_CONNECTIONS, "controller connection refused: too many");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let acceptor = acceptor.clone();
        let quorum = quorum.clone();
        tokio::spawn(async move {
            let _slot = slot;
            match tokio::time::timeout(HELLO_TIMEOUT, acceptor.accept(stream, from)).await {
                Ok(Ok(accepted)) => connection(accepted, from, quorum).await,
                Ok(Err(e)) => {
                    tracing::warn!(%from, error = %e, "controller handshake failed; closed")
                }
                Err(_) => tracing::info!(%from, "controller handshake timed out"),
            }
        });
    }
}

/// Reads the hello and checks it; answers and returns the peer, or refuses (logged).
async fn hello<S>(
    stream: &mut S,
    from: std::net::SocketAddr,
    proven_node: Option<i32>,
    quorum: &Weak<Quorum>,
) -> Option<Peer>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let first = tokio::time::timeout(
        HELLO_TIMEOUT,
        read_frame::<_, Request>(stream, MAX_HELLO_FRAME),
    );
    let node_id = match first.await {
        Ok(Ok(Some(Request::Hello { node_id }))) => node_id,
        Ok(Ok(Some(other))) => {
            tracing::warn!(%from, request = other.kind(), "controller request before a hello; closed");
            let refusal = RemoteError::Unauthorized {
                node_id: -1,
                reason: PeerRefusal::NoHello,
            };
            let _ = write_frame(stream, &Response::Error(refusal)).await;
            return None;
        }
        Ok(Ok(None)) => return None,
        Ok(Err(e)) => {
            tracing::info!(%from, error = %e, "unreadable controller hello; closed");
            return None;
        }
        Err(_) => {
            tracing::info!(%from, "no controller hello in time; closed");
            return None;
        }
    };
    let checked = match quorum.upgrade() {
        Some(q) => q.hello(node_id, from, proven_node).await,
        None => return None,
    };
    match checked {
        Ok(peer) => {
            tracing::debug!(%from, node_id, "controller peer said hello");
            write_frame(stream, &Response::Hello).await.ok()?;
            Some(peer)
        }
        Err(reason) => {
            tracing::warn!(%from, node_id, ?reason, "controller hello refused; closed");
            let refusal = RemoteError::Unauthorized { node_id, reason };
            let _ = write_frame(stream, &Response::Error(refusal)).await;
            None
        }
    }
}

async fn connection<S>(accepted: Accepted<S>, from: std::net::SocketAddr, quorum: Weak<Quorum>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let Accepted {
        mut stream,
        proven_node,
    } = accepted;
    // Connections end with the node: a stopped node must look like a dead peer (peers then
    // back off and reconnect to whatever listens next), not like one answering `Stopped`.
    let mut stopped = match quorum.upgrade() {
        Some(q) => q.stopped.subscribe(),
        None => return,
    };
    let Some(mut peer) = hello(&mut stream, from, proven_node, &quorum).await else {
        return;
    };
    loop {
        let req: Request = tokio::select! {
            r = read_frame(&mut stream, MAX_FRAME) => match r {
                Ok(Some(r)) => r,
                Ok(None) => return,
                Err(e) => {
                    tracing::info!(%from, node_id = peer.node_id, error = %e, "controller connection closed");
                    return;
                }
            },
            _ = stopped.wait_for(|s| *s) => return,
        };
        let resp = match quorum.upgrade() {
            Some(q) if !q.is_stopped() => match q.authorize(&mut peer, &req).await {
                Ok(()) => q.serve_peer(req).await,
                Err(reason) => {
                    tracing::warn!(%from, node_id = peer.node_id, request = req.kind(), ?reason, "controller request refused");
                    Response::Error(RemoteError::Unauthorized {
                        node_id: peer.node_id,
                        reason,
                    })
                }
            },
            _ => return,
        };
        if let Err(e) = write_frame(&mut stream, &resp).await {
            tracing::debug!(error = %e, "controller connection write failed");
            return;
        }
    }
}

/// A controller decision as the RPC answers it.
fn decided<T>(
    d: Result<Decided<T>, RemoteError>,
    answer: impl FnOnce(T, i64) -> Response,
) -> Response {
    match d {
        Ok(Decided { value, offset }) => answer(value, offset),
        Err(e) => Response::Error(e),
    }
}

impl Quorum {
    /// Serves a peer's request that passed `authorize`: entries of an AppendEntries are
    /// checked against the size this node's log can store before openraft sees them.
    async fn serve_peer(&self, req: Request) -> Response {
        if let Request::AppendEntries(r) = &req {
            for e in &r.entries {
                // The exact size only when the cheap upper estimate is in doubt.
                if approx_entry_len(e) <= MAX_STORED_ENTRY_BYTES {
                    continue;
                }
                if let EntryPayload::Normal(p) = &e.payload {
                    let bytes = match entry_bytes(p) {
                        Ok(b) => b,
                        Err(refusal) => return Response::Error(refusal),
                    };
                    if bytes > MAX_STORED_ENTRY_BYTES {
                        let refusal = RemoteError::ProposalTooLarge {
                            bytes,
                            limit: MAX_STORED_ENTRY_BYTES,
                        };
                        tracing::error!(log_id = %e.log_id, error = %refusal, "refusing an entry too large for the metadata log");
                        return Response::Error(refusal);
                    }
                }
            }
        }
        self.handle_request(req).await
    }

    /// Serves one request (see the module docs).
    pub(crate) async fn handle_request(&self, req: Request) -> Response {
        match req {
            Request::Hello { .. } => Response::Error(RemoteError::Unauthorized {
                node_id: -1,
                reason: PeerRefusal::NoHello,
            }),
            Request::AppendEntries(r) => Response::AppendEntries(self.raft.append_entries(r).await),
            Request::Vote(r) => Response::Vote(self.raft.vote(r).await),
            Request::InstallSnapshot(r) => {
                Response::InstallSnapshot(self.raft.install_snapshot(r).await)
            }
            Request::Propose(p) => self.serve_propose(p).await,
            Request::ProposeGroup(parts) => self.serve_propose_group(parts).await,
            Request::ReadIndex => match self.raft.get_read_log_id().await {
                Ok((read, _)) => Response::ReadIndex {
                    offset: read.map_or(0, |l| i64::try_from(l.index + 1).unwrap_or(i64::MAX)),
                },
                Err(e) => forward(e),
            },
            Request::RegisterBroker(reg) => match self.controller() {
                Some(c) => decided(c.register_broker(self, reg).await, |(), offset| {
                    Response::Registered { offset }
                }),
                None => self.not_controller(),
            },
            Request::Heartbeat(h) => match self.controller() {
                Some(c) => decided(c.heartbeat(self, h).await, |reply, offset| {
                    Response::Heartbeat { reply, offset }
                }),
                None => self.not_controller(),
            },
            Request::AlterPartition(a) => match self.controller() {
                Some(c) => decided(c.alter_partition(self, a).await, |result, offset| {
                    Response::AlterPartition { result, offset }
                }),
                None => self.not_controller(),
            },
            Request::ElectLeaders { partitions } => match self.controller() {
                Some(c) => decided(
                    c.elect_leaders(self, partitions).await,
                    |results, offset| Response::ElectLeaders { results, offset },
                ),
                None => self.not_controller(),
            },
        }
    }

    pub(crate) fn not_controller(&self) -> Response {
        Response::Error(RemoteError::NotController {
            leader: self.controller_leader(),
        })
    }
}
