//! `Partition`: a hosted partition's log plus its replication role (Kafka's `Partition`): leader
//! (with the follower bookkeeping of `strom_cluster::replication::LeaderState`), follower of
//! some broker, or neither. Role changes come from the metadata image; requests consult the role
//! to serve a replica fetch or refuse with NOT_LEADER_OR_FOLLOWER.
//!
//! The leader's write path is here and only here: [`Partition::append_as_leader`] appends when
//! this broker leads, stamped with its leader epoch, and hands back a [`PendingAppend`] whose
//! [`PendingAppend::wait_replicated`] is the one acks=all wait (durable here, covered by the
//! high watermark, ISR still at least `min.insync.replicas`). Produce, the coordinators' writes
//! to internal topics, transaction markers and WriteTxnMarkers all use it.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use parking_lot::Mutex;
use strom_cluster::metadata::PartitionImage;
use strom_cluster::replication::election::AlterPartitionRequest;
use strom_cluster::replication::LeaderState;
use strom_log::{
    LogAppendInfo, LogError, PartitionLog, TopicPartition, ValidatedBatches, VerificationGuard,
};
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

/// Why a leader's append was refused, or did not complete as acks=all asks.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AppendError {
    /// This broker does not lead the partition (any more).
    #[error("not the leader of the partition")]
    NotLeader,
    /// The local append or flush failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// Fewer in-sync replicas than `min.insync.replicas` (before the append).
    #[error("fewer in-sync replicas than min.insync.replicas")]
    NotEnoughReplicas,
    /// Written, but the in-sync replicas shrank below `min.insync.replicas` meanwhile.
    #[error("written, but fewer in-sync replicas than min.insync.replicas now")]
    NotEnoughReplicasAfterAppend,
    /// Not covered by the high watermark in time.
    #[error("not replicated to the in-sync replicas in time")]
    TimedOut,
}

/// KIP-890 part 1 for one append: off (a trusted writer: coordinators, markers, or
/// `transaction.partition.verification.enable=false`), or a client's produce, which needs the
/// guard of a confirmed verification to open a transaction here.
#[derive(Debug)]
pub(crate) enum TxnVerification {
    Off,
    Guarded(Option<VerificationGuard>),
}

/// A leader's append, written to the log, not yet complete.
#[derive(Debug)]
pub(crate) struct PendingAppend {
    partition: Arc<Partition>,
    info: LogAppendInfo,
}

impl PendingAppend {
    /// Offsets and times the log assigned.
    pub(crate) fn info(&self) -> &LogAppendInfo {
        &self.info
    }

    /// acks=1: waits until the append is durable here (when the log flushes before acks).
    pub(crate) async fn wait_durable(&self) -> Result<(), LogError> {
        if self.info.needs_flush {
            self.partition
                .log
                .wait_durable(self.info.last_offset + 1)
                .await?;
        }
        Ok(())
    }

    /// acks=all: durable here, then covered by the high watermark within `timeout` (every ISR
    /// member holds it durably), with the ISR still at least `min.insync.replicas`. A timeout
    /// after leadership moved away is [`AppendError::NotLeader`].
    pub(crate) async fn wait_replicated(&self, timeout: Duration) -> Result<(), AppendError> {
        self.wait_durable().await?;
        let log = &self.partition.log;
        if tokio::time::timeout(timeout, log.wait_high_watermark(self.info.last_offset + 1))
            .await
            .is_err()
        {
            return Err(if self.partition.is_leader() {
                AppendError::TimedOut
            } else {
                AppendError::NotLeader
            });
        }
        // Written and replicated to the ISR, but an ISR now too small means the client cannot
        // know the write is safe: it is told (Kafka's NOT_ENOUGH_REPLICAS_AFTER_APPEND).
        self.partition
            .check_min_insync()
            .map_err(|_| AppendError::NotEnoughReplicasAfterAppend)
    }
}

/// One hosted partition.
#[derive(Debug)]
pub(crate) struct Partition {
    pub(crate) tp: TopicPartition,
    pub(crate) topic_id: Uuid,
    pub(crate) log: Arc<PartitionLog>,
    me: i32,
    role: Mutex<Role>,
    /// The topic's produce/fetch counters, held here so the hot paths bump them without a
    /// lookup.
    pub(crate) topic_metrics: Arc<strom_metrics::TopicCounters>,
    /// The process's counters (ISR changes).
    pub(crate) metrics: Arc<strom_metrics::BrokerMetrics>,
}

impl Partition {
    pub(crate) fn new(
        tp: TopicPartition,
        topic_id: Uuid,
        log: Arc<PartitionLog>,
        me: i32,
        metrics: Arc<strom_metrics::BrokerMetrics>,
    ) -> Self {
        Partition {
            topic_metrics: metrics.topics.topic(&tp.topic),
            metrics,
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
                    self.count_isr_change(s.isr().len(), p.isr.len());
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

    /// Counts a committed ISR change of a partition this broker leads (whoever asked for it:
    /// this leader's AlterPartition, or the controller fencing or shutting down a follower).
    fn count_isr_change(&self, old_len: usize, new_len: usize) {
        use std::sync::atomic::Ordering;
        if new_len < old_len {
            self.metrics.isr_shrinks.fetch_add(1, Ordering::Relaxed);
        } else if new_len > old_len {
            self.metrics.isr_expands.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Refuses (NOT_ENOUGH_REPLICAS) when the ISR is smaller than `min.insync.replicas`: what
    /// acks=all writes check before appending.
    pub(crate) fn check_min_insync(&self) -> Result<(), AppendError> {
        let min = usize::try_from(self.log.config().min_insync_replicas).unwrap_or(1);
        if self.in_sync_replicas() >= min {
            Ok(())
        } else {
            Err(AppendError::NotEnoughReplicas)
        }
    }

    /// Appends validated batches if this broker leads, stamped with its leader epoch; the
    /// returned [`PendingAppend`] completes acks=1 or acks=all.
    pub(crate) fn append_as_leader(
        self: &Arc<Self>,
        batches: &ValidatedBatches,
        verification: TxnVerification,
    ) -> Result<PendingAppend, AppendError> {
        let epoch = self.leader_epoch().ok_or(AppendError::NotLeader)?;
        let info = match verification {
            TxnVerification::Off => self.log.append(batches, epoch)?,
            TxnVerification::Guarded(guard) => self.log.append_verified(batches, epoch, guard)?,
        };
        Ok(PendingAppend {
            partition: self.clone(),
            info,
        })
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
