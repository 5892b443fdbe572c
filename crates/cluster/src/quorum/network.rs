//! The client side of the controller RPC: `Peers`, a pool of idle connections per address
//! (plain TCP, or TLS with this node's certificate: `transport::Connector`), and openraft's
//! `RaftNetworkFactory`/`RaftNetwork` on top of it. Every outbound controller call, Raft's and
//! the requests to the active controller (`routing`), goes through `Peers::call`.
//!
//! A new connection first says `Hello` with this node's id (see `peer`); a refused hello comes
//! back as that refusal (`Response::Error`), so a caller sees why rather than a transport error.
//! openraft gives each AppendEntries only the heartbeat interval to complete, and does not send
//! fewer entries after a timeout; so an AppendEntries whose entries come to more than
//! `MAX_APPEND_BYTES` (estimated without encoding them) is answered with openraft's
//! `PayloadTooLarge` at once, and the leader resends fewer entries at a time. A request over one
//! frame is refused before connecting the same way.
//!
//! A call takes a connection out of the pool (or connects), sends one frame, reads one frame and
//! puts the connection back only on success; a call abandoned midway (openraft drops RPC futures
//! past their TTL) drops its connection, so a late answer can never be read by the next call.
//! Every transport failure is reported to openraft as `Unreachable`, which backs off before
//! retrying that peer.

use std::collections::HashMap;
use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, PayloadTooLarge, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{Backoff, RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::BasicNode;
use parking_lot::Mutex;

use super::entry_codec::approx_entry_len;
use super::transport::{Connector, ControllerStream};
use super::types::{NodeId, TypeConfig};
use super::wire::{
    encode_frame, read_frame, write_encoded, FrameError, Request, Response, MAX_FRAME,
};

/// Idle connections kept per address.
const MAX_IDLE: usize = 4;

/// The entries one AppendEntries carries, estimated: enough to catch a follower up quickly, small
/// enough to travel, decode and be stored within a heartbeat interval (as `MAX_ENTRY_BYTES`).
const MAX_APPEND_BYTES: usize = 128 << 10;

/// Why a call failed in transport.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CallError {
    /// Connecting, writing or reading failed.
    #[error("{addr}: {source}")]
    Io {
        /// Peer address.
        addr: String,
        /// The failure.
        source: std::io::Error,
    },
    /// No answer within the deadline.
    #[error("{addr}: no answer within {timeout:?}")]
    Timeout {
        /// Peer address.
        addr: String,
        /// The deadline.
        timeout: Duration,
    },
    /// The peer closed the connection without answering.
    #[error("{0}: connection closed")]
    Closed(String),
    /// The request does not fit in one frame.
    #[error("request does not fit in a frame: {0}")]
    TooLarge(FrameError),
}

/// Pooled connections to quorum peers.
#[derive(Debug)]
pub(crate) struct Peers {
    /// This node's id, said in every connection's hello.
    node_id: i32,
    /// How connections are made (plain or TLS).
    connector: Connector,
    idle: Mutex<HashMap<String, Vec<ControllerStream>>>,
}

impl Peers {
    pub(crate) fn new(node_id: i32, connector: Connector) -> Peers {
        Peers {
            node_id,
            connector,
            idle: Mutex::new(HashMap::new()),
        }
    }

    /// Sends `req` to `addr` and returns its answer, within `timeout`. A refused hello is
    /// returned as the peer's answer.
    pub(crate) async fn call(
        &self,
        addr: &str,
        req: &Request,
        timeout: Duration,
    ) -> Result<Response, CallError> {
        let frame = encode_frame(req).map_err(CallError::TooLarge)?;
        let pooled = self.idle.lock().get_mut(addr).and_then(Vec::pop);
        let fut = async {
            if let Some(conn) = pooled {
                // A pooled connection may have died with its peer (restart): one fresh retry.
                match self.exchange(addr, conn, &frame).await {
                    Ok(r) => return Ok(r),
                    Err(e) => tracing::debug!(error = %e, "pooled connection failed, reconnecting"),
                }
            }
            let io = |source| CallError::Io {
                addr: addr.to_string(),
                source,
            };
            let mut conn = self.connector.connect(addr).await.map_err(io)?;
            let hello = encode_frame(&Request::Hello {
                node_id: self.node_id,
            })
            .map_err(CallError::TooLarge)?;
            write_encoded(&mut conn, &hello).await.map_err(io)?;
            match read_frame::<_, Response>(&mut conn, MAX_FRAME)
                .await
                .map_err(io)?
            {
                Some(Response::Hello) => {}
                Some(refused) => return Ok(refused),
                None => return Err(CallError::Closed(addr.to_string())),
            }
            self.exchange(addr, conn, &frame).await
        };
        tokio::time::timeout(timeout, fut)
            .await
            .map_err(|_| CallError::Timeout {
                addr: addr.to_string(),
                timeout,
            })?
    }

    async fn exchange(
        &self,
        addr: &str,
        mut conn: ControllerStream,
        frame: &[u8],
    ) -> Result<Response, CallError> {
        let io = |source| CallError::Io {
            addr: addr.to_string(),
            source,
        };
        write_encoded(&mut conn, frame).await.map_err(io)?;
        let resp: Response = read_frame(&mut conn, MAX_FRAME)
            .await
            .map_err(io)?
            .ok_or_else(|| CallError::Closed(addr.to_string()))?;
        let mut idle = self.idle.lock();
        let list = idle.entry(addr.to_string()).or_default();
        if list.len() < MAX_IDLE {
            list.push(conn);
        }
        Ok(resp)
    }

    /// Drops every idle connection (shutdown).
    pub(crate) fn clear(&self) {
        self.idle.lock().clear();
    }
}

/// openraft's connection factory: one `PeerClient` per replication target.
#[derive(Debug, Clone)]
pub(crate) struct Network {
    pub(crate) peers: std::sync::Arc<Peers>,
}

/// Sends Raft RPCs to one peer.
#[derive(Debug)]
pub(crate) struct PeerClient {
    peers: std::sync::Arc<Peers>,
    target: NodeId,
    addr: String,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> PeerClient {
        PeerClient {
            peers: self.peers.clone(),
            target,
            addr: node.addr.clone(),
        }
    }
}

type RpcResult<T, E = RaftError<NodeId>> = Result<T, RPCError<NodeId, BasicNode, E>>;

fn unreachable<E: std::error::Error>(e: &CallError) -> RPCError<NodeId, BasicNode, E> {
    RPCError::Unreachable(Unreachable::new(e))
}

/// Any other answer (a peer shutting down says `Stopped`): back off like for a dead peer, rather
/// than retrying at once.
fn unexpected<E: std::error::Error>(resp: &Response) -> RPCError<NodeId, BasicNode, E> {
    let e = std::io::Error::other(format!("unexpected answer {resp:?}"));
    RPCError::Unreachable(Unreachable::new(&e))
}

impl PeerClient {
    async fn call(&self, req: Request, option: &RPCOption) -> Result<Response, CallError> {
        self.peers.call(&self.addr, &req, option.hard_ttl()).await
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>> {
        let entries = u64::try_from(rpc.entries.len()).unwrap_or(u64::MAX);
        let estimate: usize = rpc.entries.iter().map(approx_entry_len).sum();
        if entries > 1 && estimate > MAX_APPEND_BYTES {
            // Proportionally fewer, at least one: a single entry is at most MAX_ENTRY_BYTES.
            let to_u64 = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
            let fit = entries.saturating_mul(to_u64(MAX_APPEND_BYTES)) / to_u64(estimate.max(1));
            tracing::debug!(entries, estimate, fit, "AppendEntries too large; splitting");
            return Err(RPCError::PayloadTooLarge(
                PayloadTooLarge::new_entries_hint(fit.clamp(1, entries - 1)),
            ));
        }
        match self.call(Request::AppendEntries(rpc), &option).await {
            Ok(Response::AppendEntries(Ok(r))) => Ok(r),
            Ok(Response::AppendEntries(Err(e))) => {
                Err(RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            Ok(other) => Err(unexpected(&other)),
            // Several entries over one frame: openraft resends with at most the hinted number.
            // A single entry always fits (MAX_STORED_ENTRY_BYTES < MAX_FRAME), so this ends.
            Err(CallError::TooLarge(e)) if entries > 1 => {
                tracing::debug!(entries, error = %e, "AppendEntries too large; splitting");
                Err(RPCError::PayloadTooLarge(
                    PayloadTooLarge::new_entries_hint(entries / 2).with_source_error(&e),
                ))
            }
            Err(e) => Err(unreachable(&e)),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>> {
        match self.call(Request::InstallSnapshot(rpc), &option).await {
            Ok(Response::InstallSnapshot(Ok(r))) => Ok(r),
            Ok(Response::InstallSnapshot(Err(e))) => {
                Err(RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            Ok(other) => Err(unexpected(&other)),
            Err(e) => Err(unreachable(&e)),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>> {
        match self.call(Request::Vote(rpc), &option).await {
            Ok(Response::Vote(Ok(r))) => Ok(r),
            Ok(Response::Vote(Err(e))) => {
                Err(RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            Ok(other) => Err(unexpected(&other)),
            Err(e) => Err(unreachable(&e)),
        }
    }

    fn backoff(&self) -> Backoff {
        // openraft's default is 500 ms; a restarted peer should rejoin faster than that.
        Backoff::new(std::iter::repeat(Duration::from_millis(100)))
    }
}
