//! `Partition`: a hosted partition's log plus its replication role (Kafka's `Partition`): leader
//! (with the follower bookkeeping of `strom_cluster::replication::LeaderState`), follower of
//! some broker, or neither. Role changes come from the metadata image; requests consult the role
//! to accept a write, serve a replica fetch, or refuse with NOT_LEADER_OR_FOLLOWER.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use parking_lot::Mutex;
use strom_cluster::metadata::PartitionImage;
use strom_cluster::replication::election::AlterPartitionRequest;
use strom_cluster::replication::LeaderState;
use strom_log::{PartitionLog, TopicPartition};
use uuid::Uuid;

/// What this broker is for a partition.
#[derive(Debug)]
enum Role {
    /// This broker leads; follower progress and the ISR view.
    Leader(LeaderState),
    /// Another broker leads (`leader` = -1: nobody does right now).
    Follower { leader: i32, leader_epoch: i32 },
}

/// How a metadata change moved this broker's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transition {
    /// Nothing that matters to the data plane changed.
    Unchanged,
    /// This broker became leader at this epoch.
    BecameLeader(i32),
    /// This broker follows `leader` (-1: none) at this epoch.
    BecameFollower { leader: i32, leader_epoch: i32 },
    /// Still leader; the ISR or replicas changed.
    LeaderUpdated,
}

/// One hosted partition.
#[derive(Debug)]
pub(crate) struct Partition {
    pub(crate) tp: TopicPartition,
    pub(crate) topic_id: Uuid,
    pub(crate) log: Arc<PartitionLog>,
    me: i32,
    role: Mutex<Role>,
}

impl Partition {
    pub(crate) fn new(tp: TopicPartition, topic_id: Uuid, log: Arc<PartitionLog>, me: i32) -> Self {
        Partition {
            tp,
            topic_id,
            log,
            me,
            role: Mutex::new(Role::Follower {
                leader: -1,
                leader_epoch: -1,
            }),
        }
    }

    /// Applies the partition's state from a new metadata image.
    pub(crate) fn apply(&self, p: &PartitionImage, now_ms: i64) -> Transition {
        let mut role = self.role.lock();
        if p.leader == self.me {
            if let Role::Leader(s) = &mut *role {
                if s.leader_epoch() == p.leader_epoch {
                    if s.partition_epoch() == p.partition_epoch {
                        return Transition::Unchanged;
                    }
                    s.on_partition_change(p);
                    self.update_high_watermark_bound(s);
                    return Transition::LeaderUpdated;
                }
            }
            // A new leader epoch starts at our log end: everything earlier belongs to earlier
            // leaders, and followers are truncated against this boundary.
            self.log.assign_leader_epoch(p.leader_epoch);
            let end = self.log.log_end_offset();
            let s = LeaderState::new(self.me, p, end, end, now_ms);
            self.update_high_watermark_bound(&s);
            *role = Role::Leader(s);
            return Transition::BecameLeader(p.leader_epoch);
        }
        if let Role::Follower {
            leader,
            leader_epoch,
        } = &*role
        {
            if *leader == p.leader && *leader_epoch == p.leader_epoch {
                return Transition::Unchanged;
            }
        }
        *role = Role::Follower {
            leader: p.leader,
            leader_epoch: p.leader_epoch,
        };
        Transition::BecameFollower {
            leader: p.leader,
            leader_epoch: p.leader_epoch,
        }
    }

    /// The leader epoch to stamp on appends, when this broker leads.
    pub(crate) fn leader_epoch(&self) -> Option<i32> {
        match &*self.role.lock() {
            Role::Leader(s) => Some(s.leader_epoch()),
            Role::Follower { .. } => None,
        }
    }

    /// True when this broker leads.
    pub(crate) fn is_leader(&self) -> bool {
        self.leader_epoch().is_some()
    }

    /// The size of the maximal ISR (what `min.insync.replicas` is checked against); 0 when not
    /// leader.
    pub(crate) fn in_sync_replicas(&self) -> usize {
        match &*self.role.lock() {
            Role::Leader(s) => s.maximal_isr().len(),
            Role::Follower { .. } => 0,
        }
    }

    /// Checks a request's `current_leader_epoch` (-1 = not given) against this leader's epoch,
    /// with Kafka's codes: FENCED_LEADER_EPOCH when the requester is behind, UNKNOWN_LEADER_EPOCH
    /// when it is ahead (our metadata is behind), NOT_LEADER_OR_FOLLOWER when we do not lead.
    pub(crate) fn check_leader_epoch(
        &self,
        current_leader_epoch: i32,
    ) -> Result<i32, ResponseError> {
        let Some(epoch) = self.leader_epoch() else {
            return Err(ResponseError::NotLeaderOrFollower);
        };
        if current_leader_epoch >= 0 && current_leader_epoch < epoch {
            return Err(ResponseError::FencedLeaderEpoch);
        }
        if current_leader_epoch > epoch {
            return Err(ResponseError::UnknownLeaderEpoch);
        }
        Ok(epoch)
    }

    /// Records a follower's fetch at `fetch_offset`; moves the high watermark bound. Returns an
    /// ISR expansion to send to the controller (already marked pending).
    pub(crate) fn on_follower_fetch(
        &self,
        follower: i32,
        fetch_offset: i64,
        now_ms: i64,
    ) -> Option<AlterPartitionRequest> {
        let mut role = self.role.lock();
        let Role::Leader(s) = &mut *role else {
            return None;
        };
        let outcome =
            s.on_follower_fetch(follower, fetch_offset, self.log.log_end_offset(), now_ms);
        self.update_high_watermark_bound(s);
        let new_isr = outcome.expand_isr?;
        Some(Self::isr_change(s, self.me, new_isr))
    }

    /// An ISR shrink to send to the controller when followers lag (already marked pending).
    pub(crate) fn maybe_shrink_isr(
        &self,
        now_ms: i64,
        lag_max_ms: i64,
    ) -> Option<AlterPartitionRequest> {
        let mut role = self.role.lock();
        let Role::Leader(s) = &mut *role else {
            return None;
        };
        let new_isr = s.maybe_shrink_isr(now_ms, lag_max_ms)?;
        Some(Self::isr_change(s, self.me, new_isr))
    }

    /// The controller did not take an ISR change sent at `leader_epoch`.
    pub(crate) fn isr_change_failed(&self, leader_epoch: i32) {
        if let Role::Leader(s) = &mut *self.role.lock() {
            if s.leader_epoch() == leader_epoch {
                s.isr_change_failed();
            }
        }
    }

    fn isr_change(s: &mut LeaderState, me: i32, new_isr: Vec<i32>) -> AlterPartitionRequest {
        s.isr_change_sent(new_isr.clone());
        AlterPartitionRequest {
            broker: me,
            leader_epoch: s.leader_epoch(),
            partition_epoch: s.partition_epoch(),
            new_isr,
        }
    }

    fn update_high_watermark_bound(&self, s: &LeaderState) {
        self.log.set_high_watermark_bound(s.high_watermark_bound());
    }
}
