//! The controller RPC protocol spoken on `controller.listen`: Raft's own RPCs plus the requests
//! brokers and other quorum nodes send to the active controller.
//!
//! Framing: a big-endian u32 length, then that many bytes of JSON (one `Request` or one
//! `Response`). One request at a time per connection, answered in order. The first request of a
//! connection is a `Hello` naming the sender's node id (see `peer`), read under
//! `MAX_HELLO_FRAME`; later frames under `MAX_FRAME`. A length over the limit closes the
//! connection before anything is allocated, and a body is read as it arrives (the buffer grows
//! with the bytes received, not with the length the peer announced). JSON keeps the protocol
//! debuggable and needs no schema crate; the metadata traffic is small next to the data plane.
//!
//! The controller's own requests and replies (`controller::requests`) and the errors
//! (`crate::error`) are defined below this module and carried in `Request`/`Response` as they
//! are. `forward` (and `raft_refusal`, its error alone) turns a refused Raft call into the answer
//! a requester gets (a leader hint), for every part of the quorum that serves one (`server`,
//! `admit`, `leadership`).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use uuid::Uuid;

use openraft::error::{ForwardToLeader, InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::BasicNode;

use super::types::{kafka_id, ApplyOutcome, NodeId, Proposal, TypeConfig};
use crate::controller::requests::{AlterPartition, Heartbeat, HeartbeatReply};
use crate::error::RemoteError;
use crate::metadata::{BrokerRegistration, PartitionImage};

/// Largest frame accepted after the hello. New entries are small (`MAX_ENTRY_BYTES`), but a
/// `ProposeGroup` carries a whole split proposal (`MAX_PROPOSAL_BYTES`, 32 MiB), and a log
/// written before proposals were split may hold entries up to the metadata log's 32 MiB batch
/// limit, which an AppendEntries must still carry one at a time. Snapshot chunks are 1 MiB
/// before JSON's ~4x. Bodies are read as they arrive, so the limit is not an allocation.
pub(crate) const MAX_FRAME: u32 = 64 << 20;

/// Largest first frame (the hello) of a connection: a stranger costs at most this much memory.
pub(crate) const MAX_HELLO_FRAME: u32 = 1024;

/// A request to a quorum node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Request {
    /// The first request of every connection: who is calling. Checked against the voters and the
    /// registered brokers and the connection's address (see `peer`).
    Hello {
        /// The sender's node id.
        node_id: i32,
    },
    /// Raft: replicate entries / heartbeat.
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    /// Raft: request a vote.
    Vote(VoteRequest<NodeId>),
    /// Raft: one snapshot chunk.
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
    /// Append a proposal (to the Raft leader).
    Propose(Proposal),
    /// Append the parts of a split proposal, in order, without waiting for each to commit (to
    /// the Raft leader); answered like `Propose` for the entry that decided it.
    ProposeGroup(Vec<Proposal>),
    /// The applied index a reader must reach to see everything committed (to the Raft leader).
    ReadIndex,
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
            Request::Hello { .. } => "Hello",
            Request::AppendEntries(_) => "AppendEntries",
            Request::Vote(_) => "Vote",
            Request::InstallSnapshot(_) => "InstallSnapshot",
            Request::Propose(_) => "Propose",
            Request::ProposeGroup(_) => "ProposeGroup",
            Request::ReadIndex => "ReadIndex",
            Request::RegisterBroker(_) => "RegisterBroker",
            Request::Heartbeat(_) => "Heartbeat",
            Request::AlterPartition(_) => "AlterPartition",
            Request::ElectLeaders { .. } => "ElectLeaders",
        }
    }
}

/// The answer to a `Request`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Response {
    AppendEntries(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    InstallSnapshot(
        Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>,
    ),
    /// The hello was accepted.
    Hello,
    /// The proposal's entry index and what applying it did (for a group: the last part, or the
    /// first that did not stage).
    Proposed {
        index: u64,
        outcome: ApplyOutcome,
    },
    /// Wait for the local image offset to reach this.
    ReadIndex {
        offset: i64,
    },
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

/// Why a Raft call was refused, as the requester is told: a leader hint, or why it failed.
pub(crate) fn raft_refusal<E>(e: RaftError<NodeId, E>) -> RemoteError
where
    E: std::fmt::Display + openraft::TryAsRef<ForwardToLeader<NodeId, BasicNode>>,
{
    match e {
        RaftError::APIError(api) => match api.try_as_ref() {
            Some(f) => RemoteError::NotController {
                leader: f.leader_id.map(kafka_id),
            },
            None => RemoteError::Failed(api.to_string()),
        },
        RaftError::Fatal(f) => {
            tracing::warn!(error = %f, "raft stopped");
            RemoteError::Stopped
        }
    }
}

/// The answer for a refused Raft call (see [`raft_refusal`]).
pub(crate) fn forward<E>(e: RaftError<NodeId, E>) -> Response
where
    E: std::fmt::Display + openraft::TryAsRef<ForwardToLeader<NodeId, BasicNode>>,
{
    Response::Error(raft_refusal(e))
}

/// Why a message could not be framed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FrameError {
    /// JSON encoding failed.
    #[error("encoding a frame: {0}")]
    Json(#[from] serde_json::Error),
    /// The message is larger than `MAX_FRAME`.
    #[error("frame of {0} bytes exceeds {MAX_FRAME}")]
    TooLarge(usize),
}

/// Encodes one frame (length prefix included), refusing one over `MAX_FRAME`.
pub(crate) fn encode_frame<T: Serialize>(msg: &T) -> Result<Vec<u8>, FrameError> {
    let mut buf = vec![0u8; 4];
    serde_json::to_writer(&mut buf, msg)?;
    let body = buf.len() - 4;
    let len = u32::try_from(body)
        .ok()
        .filter(|l| *l <= MAX_FRAME)
        .ok_or(FrameError::TooLarge(body))?;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    Ok(buf)
}

/// Writes one frame.
pub(crate) async fn write_frame<W, T>(w: &mut W, msg: &T) -> std::io::Result<()>
where
    W: AsyncWrite + Unpin,
    T: Serialize,
{
    let buf = encode_frame(msg).map_err(std::io::Error::other)?;
    write_encoded(w, &buf).await
}

/// Writes a frame made by `encode_frame`.
pub(crate) async fn write_encoded<W: AsyncWrite + Unpin>(
    w: &mut W,
    frame: &[u8],
) -> std::io::Result<()> {
    w.write_all(frame).await?;
    w.flush().await
}

/// Reads one frame of at most `max` bytes; `None` on a clean end of stream before a frame
/// starts. The body buffer grows as bytes arrive, so a peer announcing `max` and sending little
/// costs little.
pub(crate) async fn read_frame<R, T>(r: &mut R, max: u32) -> std::io::Result<Option<T>>
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
    if len > max {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("frame of {len} bytes exceeds {max}"),
        ));
    }
    const FIRST_CHUNK: u32 = 64 << 10;
    let mut body = Vec::with_capacity(usize::try_from(len.min(FIRST_CHUNK)).unwrap_or(0));
    let read = (&mut *r)
        .take(u64::from(len))
        .read_to_end(&mut body)
        .await?;
    if read != usize::try_from(len).unwrap_or(usize::MAX) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("frame cut at {read} of {len} bytes"),
        ));
    }
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// The size of `value` as JSON, without building it.
pub(crate) fn json_len<T: Serialize>(value: &T) -> Result<usize, serde_json::Error> {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Count(0);
    serde_json::to_writer(&mut c, value)?;
    Ok(c.0)
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
        let got: Option<Request> = read_frame(&mut b, MAX_FRAME).await.expect("read");
        assert!(matches!(got, Some(Request::ReadIndex)));
        a.write_all(&(MAX_FRAME + 1).to_be_bytes())
            .await
            .expect("write");
        let err = read_frame::<_, Request>(&mut b, MAX_FRAME)
            .await
            .expect_err("too big");
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
        drop(a);
        let end: Option<Request> = read_frame(&mut b, MAX_FRAME).await.expect("eof");
        assert!(end.is_none());
    }

    #[tokio::test]
    async fn a_hello_sized_limit_and_a_short_body_are_refused() {
        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        write_frame(&mut a, &Request::Hello { node_id: 7 })
            .await
            .expect("write");
        let got: Option<Request> = read_frame(&mut b, MAX_HELLO_FRAME).await.expect("read");
        assert!(matches!(got, Some(Request::Hello { node_id: 7 })));
        // A frame over the hello limit is refused from its length alone.
        a.write_all(&(MAX_HELLO_FRAME + 1).to_be_bytes())
            .await
            .expect("write");
        let err = read_frame::<_, Request>(&mut b, MAX_HELLO_FRAME)
            .await
            .expect_err("over the hello limit");
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
        // A body that ends before its announced length is an error, not a hang or a panic.
        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        a.write_all(&(MAX_FRAME).to_be_bytes()).await.expect("len");
        a.write_all(b"{\"Hello\":").await.expect("body");
        drop(a);
        let err = read_frame::<_, Request>(&mut b, MAX_FRAME)
            .await
            .expect_err("cut");
        assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn oversized_messages_are_not_framed() {
        let big = Request::ElectLeaders {
            partitions: vec![(Uuid::nil(), 0); usize::try_from(MAX_FRAME / 40).expect("fits")],
        };
        assert!(matches!(encode_frame(&big), Err(FrameError::TooLarge(_))));
        let small = encode_frame(&Request::ReadIndex).expect("small");
        assert_eq!(json_len(&Request::ReadIndex).expect("len") + 4, small.len());
    }
}
