//! The replication data plane on this broker: each hosted `Partition`'s role (leader or
//! follower), the `ReplicaFetcherManager` that copies followed partitions from their leaders,
//! and the ISR changes a leader sends the controller. The policy (high watermark bound, when a
//! follower is in sync) is `strom_cluster::replication`, shared with the simulation tests.

mod fetcher;
mod isr;
mod partition;

pub(crate) use fetcher::{BrokerAddress, FetcherConfig, ReplicaFetcherManager};

/// The broker epoch of a registration (KIP-903's `replica_epoch`): derived from its random
/// incarnation, so it changes at every start and a client cannot guess it to pose as a follower
/// (it is never sent to clients). Non-negative, as Kafka's broker epochs.
pub(crate) fn broker_epoch(incarnation: &uuid::Uuid) -> i64 {
    let b = incarnation.as_bytes();
    i64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) & i64::MAX
}
pub(crate) use isr::{send_isr_change, start_isr_expiration};
pub(crate) use partition::{AppendError, Partition, PendingAppend, Transition, TxnVerification};
