//! The controller RPC protocol spoken on `controller.listen`: Raft's own RPCs plus the requests
//! brokers and other quorum nodes send to the active controller.
//!
//! Framing: a big-endian u32 length, then that many bytes of JSON (one `Request` or one
//! `Response`). One request at a time per connection, answered in order; the length is checked
//! against `MAX_FRAME` before anything is allocated. JSON keeps the protocol debuggable and needs
//! no schema crate; the metadata traffic is small next to the data plane.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use uuid::Uuid;

use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};

use super::types::{ApplyOutcome, NodeId, Proposal, TypeConfig};
use super::{BrokerRegistration, HeartbeatReply};
use crate::metadata::PartitionImage;

/// Largest frame accepted (snapshot chunks are 1 MiB before JSON's ~4x).
pub(crate) const MAX_FRAME: u32 = 64 << 20;

/// A broker heartbeat (Kafka's `BrokerHeartbeatRequest`, the parts Strom uses).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Heartbeat {
    pub(crate) broker_id: i32,
    pub(crate) incarnation: Uuid,
    pub(crate) metadata_offset: i64,
    pub(crate) want_shutdown: bool,
}

/// An AlterPartition request on the wire (mirrors `election::AlterPartitionRequest`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct AlterPartition {
    pub(crate) topic_id: Uuid,
    pub(crate) partition: i32,
    pub(crate) broker: i32,
    pub(crate) leader_epoch: i32,
    pub(crate) partition_epoch: i32,
    pub(crate) new_isr: Vec<i32>,
}

/// A request to a quorum node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Request {
    /// Raft: replicate entries / heartbeat.
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    /// Raft: request a vote.
    Vote(VoteRequest<NodeId>),
    /// Raft: one snapshot chunk.
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
    /// Append a proposal (to the Raft leader).
    Propose(Proposal),
    /// The applied index a reader must reach to see everything committed (to the Raft leader).
    ReadIndex,
    /// Add the sender as a Raft learner (broker-only node), to the Raft leader.
    JoinLearner {
        /// Kafka node id.
        node_id: i32,
        /// Its controller listener `host:port`.
        addr: String,
    },
    /// Broker registration, to the active controller.
    RegisterBroker(BrokerRegistration),
    /// Broker heartbeat, to the active controller.
    Heartbeat(Heartbeat),
    /// ISR change, to the active controller.
    AlterPartition(AlterPartition),
    /// Preferred leader election, to the active controller.
    ElectLeaders {
        /// (topic id, partition) pairs.
        partitions: Vec<(Uuid, i32)>,
    },
}

impl Request {
    /// The request's name, for logs (the payloads can be large).
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Request::AppendEntries(_) => "AppendEntries",
            Request::Vote(_) => "Vote",
            Request::InstallSnapshot(_) => "InstallSnapshot",
            Request::Propose(_) => "Propose",
            Request::ReadIndex => "ReadIndex",
            Request::JoinLearner { .. } => "JoinLearner",
            Request::RegisterBroker(_) => "RegisterBroker",
            Request::Heartbeat(_) => "Heartbeat",
            Request::AlterPartition(_) => "AlterPartition",
            Request::ElectLeaders { .. } => "ElectLeaders",
        }
    }
}

/// Why a request was not served.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
pub enum RemoteError {
    /// This node is not the Raft leader / active controller; `leader` is its best guess.
    #[error("not the active controller (leader hint {leader:?})")]
    NotController {
        /// The leader this node knows of.
        leader: Option<i32>,
    },
    /// The broker's registration is unknown or has another incarnation.
    #[error("broker {broker_id} is not registered with this incarnation")]
    StaleBroker {
        /// The broker.
        broker_id: i32,
    },
    /// The node is shutting down.
    #[error("the quorum node is shutting down")]
    Stopped,
    /// Anything else, with the remote node's description.
    #[error("remote failure: {0}")]
    Failed(String),
}

/// The answer to a `Request`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Response {
    AppendEntries(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    InstallSnapshot(
        Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>,
    ),
    /// The proposal's entry index and what applying it did.
    Proposed {
        index: u64,
        outcome: ApplyOutcome,
    },
    /// Wait for the local image offset to reach this.
    ReadIndex {
        offset: i64,
    },
    Joined,
    /// The registration is in the log; the image shows it from this offset on.
    Registered {
        offset: i64,
    },
    // Controller answers carry the image offset that shows their effect, so the caller can
    // wait for its own image to get there before answering its client.
    Heartbeat {
        reply: HeartbeatReply,
        offset: i64,
    },
    /// The new partition state, or the refusal's Kafka error code.
    AlterPartition {
        result: Result<PartitionImage, i16>,
        offset: i64,
    },
    ElectLeaders {
        results: Vec<Result<(), i16>>,
        offset: i64,
    },
    Error(RemoteError),
}

/// Writes one frame.
pub(crate) async fn write_frame<W, T>(w: &mut W, msg: &T) -> std::io::Result<()>
where
    W: AsyncWrite + Unpin,
    T: Serialize,
{
    let body = serde_json::to_vec(msg).map_err(std::io::Error::other)?;
    let len = u32::try_from(body.len())
        .ok()
        .filter(|l| *l <= MAX_FRAME)
        .ok_or_else(|| std::io::Error::other(format!("frame of {} bytes", body.len())))?;
    let mut buf = Vec::with_capacity(4 + body.len());
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(&body);
    w.write_all(&buf).await?;
    w.flush().await
}

/// Reads one frame; `None` on a clean end of stream before a frame starts.
pub(crate) async fn read_frame<R, T>(r: &mut R) -> std::io::Result<Option<T>>
where
    R: AsyncRead + Unpin,
    T: DeserializeOwned,
{
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len);
    if len > MAX_FRAME {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("frame of {len} bytes exceeds {MAX_FRAME}"),
        ));
    }
    let mut body = vec![0u8; len as usize];
    r.read_exact(&mut body).await?;
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip_and_oversize_is_refused() {
        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        write_frame(&mut a, &Request::ReadIndex)
            .await
            .expect("write");
        let got: Option<Request> = read_frame(&mut b).await.expect("read");
        assert!(matches!(got, Some(Request::ReadIndex)));
        a.write_all(&(MAX_FRAME + 1).to_be_bytes())
            .await
            .expect("write");
        let err = read_frame::<_, Request>(&mut b).await.expect_err("too big");
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
        drop(a);
        let end: Option<Request> = read_frame(&mut b).await.expect("eof");
        assert!(end.is_none());
    }
}
