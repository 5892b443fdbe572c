//! The replication data plane on this broker: each hosted `Partition`'s role (leader or
//! follower), the `ReplicaFetcherManager` that copies followed partitions from their leaders,
//! and the ISR changes a leader sends the controller. The policy (high watermark bound, when a
//! follower is in sync) is `strom_cluster::replication`, shared with the simulation tests.

mod fetcher;
mod isr;
mod partition;

pub(crate) use fetcher::{BrokerAddress, FetcherConfig, ReplicaFetcherManager};
pub(crate) use isr::{send_isr_change, start_isr_expiration};
pub(crate) use partition::{AppendError, Partition, PendingAppend, Transition, TxnVerification};
