//! The controller's partition decisions, as pure functions of a `PartitionImage`: leader
//! election when a broker is fenced or unfenced, AlterPartition (ISR change) validation,
//! preferred leader election and replica placement for new topics.
//!
//! This follows Kafka's KRaft controller (`ReplicationControlManager` + `PartitionChangeBuilder`)
//! without Eligible Leader Replicas (KIP-966) and without reassignment. Every function returns
//! the next image (or `None` when nothing changes); the caller writes it as a `Partition` record.

use crate::metadata::PartitionImage;

/// Leader id of a partition that has no leader (Kafka's `LeaderConstants.NO_LEADER`).
pub const NO_LEADER: i32 = -1;

/// The next image after broker `broker` is fenced (heartbeats lapsed, or shut down).
///
/// The broker leaves the ISR, except when it is the last member: Kafka never empties an ISR, so
/// the last member stays (it is the only replica known to hold every committed record) and the
/// partition goes leaderless until it returns. If `broker` led, the new leader is the first
/// replica in `replicas` order that is in the ISR and live; failing that, with `unclean`, the
/// first live replica, which becomes the whole ISR (data may be lost: that is what unclean
/// election means). `broker` is never chosen, whatever `is_live` says about it.
pub fn on_broker_fenced(
    p: &PartitionImage,
    broker: i32,
    is_live: &dyn Fn(i32) -> bool,
    unclean: bool,
) -> Option<PartitionImage> {
    if !p.isr.contains(&broker) && p.leader != broker {
        return None;
    }
    let without: Vec<i32> = p.isr.iter().copied().filter(|&r| r != broker).collect();
    let target_isr = if without.is_empty() {
        p.isr.clone()
    } else {
        without
    };
    let acceptable = |r: i32| r != broker && is_live(r);
    let (leader, isr) = elect(p, target_isr, &acceptable, unclean);
    change(p, leader, isr)
}

/// The next image after broker `broker` is unfenced (heartbeats again).
///
/// Only a leaderless partition changes: it gets the first replica (in `replicas` order) that is
/// in the ISR and live, `broker` counting as live; normally that is `broker` itself, the last ISR
/// member that was fenced. With `unclean`, failing an ISR member, the first live replica leads
/// and becomes the whole ISR.
pub fn on_broker_unfenced(
    p: &PartitionImage,
    broker: i32,
    is_live: &dyn Fn(i32) -> bool,
    unclean: bool,
) -> Option<PartitionImage> {
    if p.leader != NO_LEADER || !p.replicas.contains(&broker) {
        return None;
    }
    let acceptable = |r: i32| r == broker || is_live(r);
    let (leader, isr) = elect(p, p.isr.clone(), &acceptable, unclean);
    change(p, leader, isr)
}

/// An ISR change asked for by a partition leader (Kafka's `AlterPartition` request, one
/// partition).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlterPartitionRequest {
    /// The sending broker (it must be the leader).
    pub broker: i32,
    /// The leader epoch the sender leads in.
    pub leader_epoch: i32,
    /// The partition epoch the sender's ISR view was built from.
    pub partition_epoch: i32,
    /// The ISR the leader asks for.
    pub new_isr: Vec<i32>,
}

/// Why the controller refused an `AlterPartitionRequest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AlterPartitionError {
    /// The sender does not lead the partition.
    #[error("the sender is not the partition leader")]
    NotLeaderOrFollower,
    /// The sender's leader epoch is not the current one.
    #[error("the leader epoch is not the current one")]
    FencedLeaderEpoch,
    /// The request was built from an older partition state.
    #[error("the partition epoch is not the current one")]
    InvalidUpdateVersion,
    /// The new ISR holds a fenced or unknown broker.
    #[error("the new ISR holds an ineligible replica")]
    IneligibleReplica,
    /// The new ISR is malformed: a non-replica, a duplicate, or no leader.
    #[error("the new ISR is invalid")]
    InvalidRequest,
}

impl AlterPartitionError {
    /// The Kafka protocol error code.
    pub fn kafka_code(&self) -> i16 {
        match self {
            Self::NotLeaderOrFollower => 6,
            Self::FencedLeaderEpoch => 74,
            Self::InvalidUpdateVersion => 95,
            Self::IneligibleReplica => 107,
            Self::InvalidRequest => 42,
        }
    }
}

/// Validates and applies an ISR change from the partition leader.
///
/// Checks run in Kafka's order (`validateAlterPartitionData`): leader epoch, then sender, then
/// partition epoch, then the ISR's shape, then the eligibility of its members. Kafka answers
/// NOT_CONTROLLER for an epoch newer than the controller's (the sender knows of a newer
/// controller); with one authoritative image that cannot be legitimate, so it is fenced too.
/// Kafka answers INVALID_REQUEST to a sender that is not the leader; Strom says
/// NOT_LEADER_OR_FOLLOWER, which tells the sender the same thing (refresh metadata) more
/// precisely. An unchanged ISR returns the image unchanged (no record to write).
pub fn alter_partition(
    p: &PartitionImage,
    req: &AlterPartitionRequest,
    is_live: &dyn Fn(i32) -> bool,
) -> Result<PartitionImage, AlterPartitionError> {
    if req.leader_epoch != p.leader_epoch {
        return Err(AlterPartitionError::FencedLeaderEpoch);
    }
    if req.broker != p.leader {
        return Err(AlterPartitionError::NotLeaderOrFollower);
    }
    if req.partition_epoch != p.partition_epoch {
        return Err(AlterPartitionError::InvalidUpdateVersion);
    }
    let mut seen = Vec::with_capacity(req.new_isr.len());
    for &r in &req.new_isr {
        if !p.replicas.contains(&r) || seen.contains(&r) {
            return Err(AlterPartitionError::InvalidRequest);
        }
        seen.push(r);
    }
    if !req.new_isr.contains(&p.leader) {
        return Err(AlterPartitionError::InvalidRequest);
    }
    if req.new_isr.iter().any(|&r| !is_live(r)) {
        return Err(AlterPartitionError::IneligibleReplica);
    }
    Ok(change(p, p.leader, req.new_isr.clone()).unwrap_or_else(|| p.clone()))
}

/// Moves leadership to the preferred replica (`replicas[0]`) when it is live, in the ISR and
/// not already leading (Kafka's preferred leader election, run by auto leader rebalance).
pub fn elect_preferred(
    p: &PartitionImage,
    is_live: &dyn Fn(i32) -> bool,
) -> Option<PartitionImage> {
    let preferred = *p.replicas.first()?;
    if preferred == p.leader || !p.isr.contains(&preferred) || !is_live(preferred) {
        return None;
    }
    change(p, preferred, p.isr.clone())
}

/// Kafka's rack-unaware replica assignment (`assignReplicasToBrokersRackUnaware` with a fixed
/// start index): partition `i`'s first replica is `brokers[(i + start) % n]`, so preferred
/// leaders go round robin; the followers sit at a shift from it that grows by one every `n`
/// partitions, so a broker's followers are spread over the others instead of always being its
/// neighbours. The caller checks `replication_factor <= brokers.len()` and passes brokers in a
/// stable order (Kafka sorts them by id).
pub fn place_replicas(
    partitions: i32,
    replication_factor: usize,
    brokers: &[i32],
    start: usize,
) -> Vec<Vec<i32>> {
    let n = brokers.len();
    let count = usize::try_from(partitions).unwrap_or(0);
    if n == 0 {
        return vec![Vec::new(); count];
    }
    let mut shift = start;
    (0..count)
        .map(|i| {
            if i > 0 && i % n == 0 {
                shift += 1;
            }
            let first = (i + start) % n;
            let mut replicas = Vec::with_capacity(replication_factor);
            replicas.push(brokers[first]);
            for j in 0..replication_factor.saturating_sub(1).min(n - 1) {
                let offset = 1 + (shift + j) % (n - 1);
                replicas.push(brokers[(first + offset) % n]);
            }
            replicas
        })
        .collect()
}

/// Kafka's `PartitionChangeBuilder` election: keep the current leader if it is still in the
/// target ISR and acceptable; else the first acceptable ISR member in `replicas` order; else,
/// with `unclean`, the first acceptable replica with the ISR reset to it; else no leader.
fn elect(
    p: &PartitionImage,
    target_isr: Vec<i32>,
    acceptable: &dyn Fn(i32) -> bool,
    unclean: bool,
) -> (i32, Vec<i32>) {
    if p.leader != NO_LEADER && target_isr.contains(&p.leader) && acceptable(p.leader) {
        return (p.leader, target_isr);
    }
    if let Some(&r) = p
        .replicas
        .iter()
        .find(|&&r| target_isr.contains(&r) && acceptable(r))
    {
        return (r, target_isr);
    }
    if unclean {
        if let Some(&r) = p.replicas.iter().find(|&&r| acceptable(r)) {
            return (r, vec![r]);
        }
    }
    (NO_LEADER, target_isr)
}

/// The image with `leader` and `isr`, epochs bumped, or `None` if neither changed. A new leader
/// bumps the leader epoch (fencing the old leader's requests and fetches); any change bumps the
/// partition epoch (fencing AlterPartition requests built from the old state).
fn change(p: &PartitionImage, leader: i32, isr: Vec<i32>) -> Option<PartitionImage> {
    if leader == p.leader && isr == p.isr {
        return None;
    }
    let mut next = p.clone();
    if leader != p.leader {
        next.leader = leader;
        next.leader_epoch += 1;
    }
    next.isr = isr;
    next.partition_epoch += 1;
    Some(next)
}

#[cfg(test)]
#[path = "election_tests.rs"]
mod tests;
