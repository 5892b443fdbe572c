//! ISR changes a leader asks the controller for (Kafka's AlterPartition): expansions found while
//! serving follower fetches, and shrinks found by a periodic check of follower lag
//! (`replica.lag.time.max.ms`, checked every half of it, as Kafka does).

use std::sync::{Arc, Weak};
use std::time::Duration;

use strom_cluster::replication::{AlterPartitionError, AlterPartitionRequest};
use strom_log::now_ms;

use super::Partition;
use crate::metadata::Quorum;
use crate::replica_manager::ReplicaManager;

/// Sends `req` for `partition` to the controller in the background, retrying transport
/// failures until the partition's leadership moves on. The committed change comes back through
/// the metadata image. Only INELIGIBLE_REPLICA clears the pending change: after any other answer
/// (or none) the change may have been applied, and the next image settles it (Kafka's rule).
pub(crate) fn send_isr_change(
    quorum: &Arc<Quorum>,
    partition: Arc<Partition>,
    req: AlterPartitionRequest,
) {
    let quorum = quorum.clone();
    tokio::spawn(async move {
        let tp = partition.tp.clone();
        tracing::info!(partition = %tp, isr = ?req.new_isr, leader_epoch = req.leader_epoch, "proposing ISR change");
        let epoch = req.leader_epoch;
        loop {
            if partition.leader_epoch() != Some(epoch) {
                return;
            }
            match quorum
                .alter_partition(partition.topic_id, tp.partition, req.clone())
                .await
            {
                Ok(Ok(_)) => return,
                Ok(Err(AlterPartitionError::IneligibleReplica)) => {
                    tracing::info!(partition = %tp, "controller refused ISR change: ineligible replica");
                    partition.isr_change_failed(epoch);
                    return;
                }
                Ok(Err(e)) => {
                    tracing::info!(partition = %tp, error = ?e, "controller refused ISR change; waiting for metadata");
                    return;
                }
                Err(e) => {
                    tracing::warn!(partition = %tp, error = %e, "ISR change not delivered; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    });
}

/// Checks led partitions for lagging followers every `lag_max_ms / 2` until the replica manager
/// is gone.
pub(crate) fn start_isr_expiration(
    replicas: Weak<ReplicaManager>,
    quorum: Arc<Quorum>,
    lag_max_ms: i64,
) {
    let period = Duration::from_millis((lag_max_ms / 2).max(10) as u64);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(replicas) = replicas.upgrade() else {
                return;
            };
            let now = now_ms();
            for p in replicas.all_partitions() {
                if let Some(req) = p.maybe_shrink_isr(now, lag_max_ms) {
                    send_isr_change(&quorum, p, req);
                }
            }
        }
    });
}
