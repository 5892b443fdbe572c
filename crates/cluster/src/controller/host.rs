//! [`ControllerHost`]: what the active controller needs of the node it runs on (the seam between
//! `controller` and `quorum`, in the manner of TiKV's `engine_traits`).
//!
//! The controller decides; its host writes and reads. The host proposes records decided on its
//! current image (optimistic concurrency: `decide` may run again after a conflicting write), reads
//! that image, says whether this node still leads and who does, knows the configured voters, adds
//! a broker-only node as a Raft learner, and hands over the settings the controller's decisions
//! and clock use ([`ControllerSettings`]). `Quorum` implements it (`quorum::leadership`); a test
//! can implement it over an in-memory image.
//!
//! The host is lent to each call (`&impl ControllerHost`), never stored: the quorum owns the
//! controller, so a stored host would be a reference back to the owner. Generic rather than
//! `dyn`, so `propose` keeps its typed `decide` value; futures are `Send` because the quorum
//! serves controller requests on RPC tasks.

use std::future::Future;
use std::sync::Arc;

use crate::error::{QuorumError, RemoteError};
use crate::metadata::{MetadataImage, MetadataRecord};

/// The settings the controller runs with (the quorum's `QuorumConfig` fields of the same
/// names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ControllerSettings {
    /// `broker.session.timeout.ms`.
    pub(crate) session_timeout_ms: u64,
    /// `leader.imbalance.check.interval.seconds` in ms.
    pub(crate) leader_imbalance_check_interval_ms: u64,
    /// `auto.leader.rebalance.enable`.
    pub(crate) auto_leader_rebalance: bool,
    /// `unclean.leader.election.enable` default for topics without an override.
    pub(crate) unclean_leader_election_default: bool,
}

/// The node the active controller runs on. See the module docs.
pub(crate) trait ControllerHost: Sync {
    /// Runs `decide` on the current image and writes the records it returns as one proposal,
    /// deciding again if another write got in first; returns `decide`'s last value and an image
    /// that holds the result (`Quorum::propose`).
    fn propose<T: Send>(
        &self,
        decide: impl FnMut(&MetadataImage) -> (Vec<MetadataRecord>, T) + Send,
    ) -> impl Future<Output = Result<(T, Arc<MetadataImage>), QuorumError>> + Send;

    /// The latest applied image.
    fn image(&self) -> Arc<MetadataImage>;

    /// The settings the controller runs with.
    fn settings(&self) -> ControllerSettings;

    /// True while this node is the Raft leader (the active controller).
    fn is_leader(&self) -> bool;

    /// The Raft leader as far as this node knows (the hint of a `NotController` answer).
    fn controller_leader(&self) -> Option<i32>;

    /// True when `id` is a configured voter.
    fn is_voter_id(&self, id: i32) -> bool;

    /// Adds `node_id` as a Raft learner at `addr` unless the membership has it there already.
    fn ensure_learner(
        &self,
        node_id: i32,
        addr: &str,
    ) -> impl Future<Output = Result<(), RemoteError>> + Send;
}
