//! The crate's errors: [`QuorumError`], what a quorum operation answers, and [`RemoteError`]
//! (with [`PeerRefusal`]), why the node a request went to did not serve it, as it travels on the
//! controller RPC (JSON).
//!
//! A leaf both `quorum` and `controller` use: the controller's handlers fail with the errors of
//! the proposals they make through their host and answer with `RemoteError`, so these types live
//! below both rather than in either (the controller must not import the quorum, which hosts it).
//! Their public paths stay `strom_cluster::quorum::{QuorumError, RemoteError, PeerRefusal}` and
//! `strom_cluster::QuorumError`. `Raft` carries openraft's error for the quorum's node id type
//! (`quorum::types::NodeId`, a `u64`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::metadata::InvalidRecord;

/// Why a quorum operation failed.
#[derive(Debug, thiserror::Error)]
pub enum QuorumError {
    /// The configuration is inconsistent.
    #[error("invalid quorum config: {0}")]
    Config(String),
    /// A file could not be read or written.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// The metadata log failed.
    #[error("metadata log: {0}")]
    Log(#[from] strom_log::LogError),
    /// Stored metadata does not decode.
    #[error("corrupt metadata: {0}")]
    Corrupt(String),
    /// The controller listener's TLS material could not be read or used.
    #[error("controller listener TLS: {0}")]
    Tls(#[from] strom_security::ConfigError),
    /// The controller listener could not be bound.
    #[error("binding the controller listener {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The failure.
        source: std::io::Error,
    },
    /// openraft stopped (storage failure, panic, shutdown).
    #[error("raft: {0}")]
    Raft(Box<openraft::error::Fatal<u64>>),
    /// No active controller answered within the request timeout.
    #[error("no active controller answered within {0:?}")]
    NoController(Duration),
    /// An operation did not finish within the request timeout (it may still take effect later:
    /// a proposal that reached the leader can commit after its proposer gave up).
    #[error("{what} did not complete within {after:?}")]
    TimedOut {
        /// What was waited for.
        what: &'static str,
        /// The time allowed.
        after: Duration,
    },
    /// A proposal lost the optimistic-concurrency race too many times.
    #[error("the proposal conflicted with concurrent writes {0} times")]
    Conflict(usize),
    /// The proposed records break the metadata rules; nothing was written.
    #[error("invalid metadata records: {0}")]
    Invalid(#[from] InvalidRecord),
    /// The proposal is larger than `MAX_PROPOSAL_BYTES`, or holds one record larger than an
    /// entry (`MAX_ENTRY_BYTES`); nothing was written.
    #[error("the proposal is {bytes} bytes; the limit is {limit}")]
    TooLarge {
        /// Its size as JSON.
        bytes: usize,
        /// The limit it broke.
        limit: usize,
    },
    /// The entry was skipped when applied (it broke the rules on the image it met).
    #[error("the proposal was refused when applied at index {0}")]
    RefusedOnApply(u64),
    /// The local image did not reach an applied entry in time.
    #[error("the metadata image did not reach offset {0} in time")]
    CatchUp(i64),
    /// The active controller refused the request.
    #[error(transparent)]
    Remote(#[from] RemoteError),
    /// A peer answered with something that does not fit the request.
    #[error("unexpected answer from the controller: {0}")]
    Protocol(String),
    /// The quorum is shut down.
    #[error("the quorum is shut down")]
    Stopped,
}

impl From<openraft::error::Fatal<u64>> for QuorumError {
    fn from(e: openraft::error::Fatal<u64>) -> QuorumError {
        QuorumError::Raft(Box::new(e))
    }
}

impl QuorumError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> QuorumError {
        QuorumError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Why a peer's request was refused before it was served (see `peer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerRefusal {
    /// The first request of a connection was not a `Hello`, or a second one came.
    NoHello,
    /// The hello named a negative id, or this node's own.
    BadNodeId,
    /// The id is a voter's, but the connection does not come from that voter's address.
    AddressMismatch,
    /// Raft RPCs come from voters only.
    NotAVoter,
    /// Neither a voter nor a broker registered from this address: only `RegisterBroker`.
    NotRegistered,
    /// The request speaks for another node than the one that said hello.
    WrongSender,
    /// The transport proved another identity than the hello claims.
    IdentityMismatch,
    /// Registering, fencing or unfencing brokers is the controller's: a broker may not propose
    /// such records.
    ControllerOnly,
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
    /// The peer may not send this request.
    #[error("node {node_id} may not send this request: {reason:?}")]
    Unauthorized {
        /// The node id the peer claimed.
        node_id: i32,
        /// Why.
        reason: PeerRefusal,
    },
    /// The records break the metadata rules.
    #[error("invalid metadata records: {0}")]
    Invalid(InvalidRecord),
    /// A proposal's `based_on` is not an offset the leader has applied (or is negative).
    #[error("proposal based on offset {based_on}, but the leader's image is at {applied}")]
    InvalidBasedOn {
        /// The proposal's `based_on`.
        based_on: i64,
        /// The leader's image offset.
        applied: i64,
    },
    /// An entry larger than one metadata log entry may be.
    #[error("proposal of {bytes} bytes exceeds the limit of {limit} bytes")]
    ProposalTooLarge {
        /// Its JSON size.
        bytes: usize,
        /// The limit it broke (`MAX_ENTRY_BYTES` for one entry).
        limit: usize,
    },
    /// Another incarnation of the broker is registered, unfenced and its session alive (Kafka's
    /// DUPLICATE_BROKER_REGISTRATION): retry once that session expires.
    #[error("broker {broker_id} is registered by another live incarnation")]
    DuplicateBrokerRegistration {
        /// The broker.
        broker_id: i32,
    },
    /// Anything else, with the remote node's description.
    #[error("remote failure: {0}")]
    Failed(String),
}
