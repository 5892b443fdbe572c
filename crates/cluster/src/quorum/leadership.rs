//! The quorum as the active controller's host: starting the [`Controller`] when this node becomes
//! the Raft leader and stopping it when it no longer is (Kafka's QuorumController activates on
//! `handleLeaderChange`), running its clock, and [`ControllerHost`] for [`Quorum`].
//!
//! Ownership points one way. The quorum owns an [`ActiveController`]: the controller and the
//! task that runs its clock. The controller holds nothing of the quorum; each request and each
//! tick lends it the quorum as its host (`&Quorum`). Leadership lost or `shutdown` drops the
//! controller and aborts its clock, so no controller work outlives its term. Like the quorum's
//! other tasks (`watch_leadership`, the listener, `confirm_caught_up`), the clock task holds a
//! `Weak` of the quorum itself and not a strong one, so a quorum dropped without `shutdown` is
//! still freed and the task ends; that `Weak` is a task's handle on its owner, not a reference
//! between parts.

use std::sync::{Arc, Weak};

use openraft::error::ClientWriteError;
use openraft::{BasicNode, ServerState};
use tokio::task::JoinHandle;

use super::types::{raft_id, NodeId};
use super::wire::raft_refusal;
use super::{Quorum, QuorumError, RemoteError};
use crate::controller::host::{ControllerHost, ControllerSettings};
use crate::controller::Controller;
use crate::metadata::{MetadataImage, MetadataRecord};

/// The controller of this node's current term of leadership and the task running its clock.
#[derive(Debug)]
pub(super) struct ActiveController {
    controller: Arc<Controller>,
    clock: JoinHandle<()>,
}

impl ActiveController {
    /// Activates a controller on the new Raft leader and starts its clock.
    fn start(quorum: &Arc<Quorum>) -> ActiveController {
        let controller = Arc::new(Controller::start(quorum.log_end()));
        let clock = tokio::spawn(run_clock(Arc::downgrade(quorum), controller.clone()));
        ActiveController { controller, clock }
    }

    /// Deactivates (leadership lost, or shutdown): the clock stops; requests already being
    /// served finish with the quorum's answers (`NotController` once it no longer leads).
    pub(super) fn stop(self) {
        self.clock.abort();
    }
}

impl Quorum {
    /// The active controller, while this node is the Raft leader.
    pub(crate) fn controller(&self) -> Option<Arc<Controller>> {
        self.controller
            .lock()
            .as_ref()
            .map(|a| a.controller.clone())
    }
}

/// Starts the controller when this node becomes the Raft leader and stops it when it no longer
/// is.
pub(super) async fn watch_leadership(quorum: Weak<Quorum>) {
    let mut rx = match quorum.upgrade() {
        Some(q) => q.raft.metrics(),
        None => return,
    };
    loop {
        let leading = rx.borrow_and_update().state == ServerState::Leader;
        {
            let Some(q) = quorum.upgrade() else { return };
            let mut slot = q.controller.lock();
            // Checked under the lock: `shutdown` sets `stopped` before it empties the slot, so
            // no controller can be started after it.
            if q.is_stopped() {
                return;
            }
            match (leading, slot.is_some()) {
                (true, false) => {
                    tracing::info!(node = q.cfg.node_id, "became the active controller");
                    *slot = Some(ActiveController::start(&q));
                }
                (false, true) => {
                    tracing::info!(node = q.cfg.node_id, "no longer the active controller");
                    if let Some(c) = slot.take() {
                        c.stop();
                    }
                }
                _ => {}
            }
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// The controller's clock: a [`Controller::tick`] every [`Controller::tick_period`] until it is
/// aborted (`ActiveController::stop`) or the quorum is gone.
async fn run_clock(quorum: Weak<Quorum>, controller: Arc<Controller>) {
    loop {
        let period = match quorum.upgrade() {
            Some(q) => Controller::tick_period(&q.settings()),
            None => return,
        };
        tokio::time::sleep(period).await;
        let Some(q) = quorum.upgrade() else { return };
        controller.tick(q.as_ref()).await;
    }
}

impl ControllerHost for Quorum {
    fn propose<T: Send>(
        &self,
        decide: impl FnMut(&MetadataImage) -> (Vec<MetadataRecord>, T) + Send,
    ) -> impl std::future::Future<Output = Result<(T, Arc<MetadataImage>), QuorumError>> + Send
    {
        Quorum::propose(self, decide)
    }

    fn image(&self) -> Arc<MetadataImage> {
        Quorum::image(self)
    }

    fn settings(&self) -> ControllerSettings {
        ControllerSettings {
            session_timeout_ms: self.cfg.session_timeout_ms,
            leader_imbalance_check_interval_ms: self.cfg.leader_imbalance_check_interval_ms,
            auto_leader_rebalance: self.cfg.auto_leader_rebalance,
            unclean_leader_election_default: self.cfg.unclean_leader_election_default,
        }
    }

    fn is_leader(&self) -> bool {
        Quorum::is_leader(self)
    }

    fn controller_leader(&self) -> Option<i32> {
        Quorum::controller_leader(self)
    }

    fn is_voter_id(&self, id: i32) -> bool {
        Quorum::is_voter_id(self, id)
    }

    /// Adds `node_id` as a Raft learner at `addr` unless the membership already has it there
    /// (called by the controller for a registered broker-only node, whose registration proved
    /// the address). Only the leader can change membership; others answer `NotController`.
    async fn ensure_learner(&self, node_id: i32, addr: &str) -> Result<(), RemoteError> {
        let id = raft_id(node_id);
        let (present, same_addr, voter) = {
            let m = self.raft.metrics();
            let m = m.borrow();
            let membership = m.membership_config.membership();
            let node = membership.get_node(&id);
            (
                node.is_some(),
                node.is_some_and(|n| n.addr == addr),
                membership.voter_ids().any(|v| v == id),
            )
        };
        if present && (same_addr || voter) {
            return Ok(());
        }
        let node = BasicNode {
            addr: addr.to_string(),
        };
        let change = async {
            if present {
                // A learner that moved: replacing a learner's address cannot split a quorum.
                let nodes = std::collections::BTreeMap::from([(id, node)]);
                self.raft
                    .change_membership(openraft::ChangeMembers::SetNodes(nodes), true)
                    .await
            } else {
                self.raft.add_learner(id, node, false).await
            }
        };
        // Bounded like a proposal: the membership entry needs a quorum to commit.
        let timeout = self.request_timeout();
        match tokio::time::timeout(timeout, change).await {
            Ok(Ok(_)) => {
                tracing::info!(node_id, addr, "added a metadata learner");
                Ok(())
            }
            Ok(Err(e)) => Err(raft_refusal::<ClientWriteError<NodeId, BasicNode>>(e)),
            Err(_) => {
                tracing::warn!(
                    node_id,
                    addr,
                    ?timeout,
                    "adding a metadata learner did not commit in time"
                );
                Err(RemoteError::Failed(format!(
                    "learner change not committed within {timeout:?}"
                )))
            }
        }
    }
}
