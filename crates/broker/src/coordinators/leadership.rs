//! Coordinators follow leadership: [`Coordinators::apply`] is the one entry point through which
//! the metadata publisher (every image the replica manager applies) tells the group
//! coordinators (`__consumer_offsets`), the transaction coordinator (`__transaction_state`) and
//! the share coordinator (`__share_group_state`) that this node became, or stopped being, the leader of one of their partitions.
//!
//! Becoming leader marks the partition loading at once (its keys answer
//! COORDINATOR_LOAD_IN_PROGRESS) and spawns the load: the log is read on a blocking thread, then
//! installed. Losing leadership unloads at once (NOT_COORDINATOR). Changes are ordered per
//! partition by leader epoch: one older than the newest seen is ignored, and a load installs only
//! if no change came after it (a generation checked under the same lock that unloads take), so a
//! slow load for an old epoch never resurrects a partition a newer unload took away. As Kafka's
//! coordinator runtime does, a newer epoch for a partition already loaded or loading here only
//! records the epoch. A failed read is retried with backoff while the load is still wanted.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use strom_coordinator::txn::{LoadedTxns, TRANSACTION_STATE_TOPIC};
use strom_coordinator::{
    LoadedConsumerGroups, LoadedGroups, LoadedShareStates, WriteError, OFFSETS_TOPIC,
    SHARE_STATE_TOPIC,
};
use tokio::sync::watch;

use super::Coordinators;
use crate::replica_manager::LeadershipChange;

const RETRY_MIN: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);

/// Which coordinator an internal topic feeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Internal {
    Offsets,
    TxnState,
    ShareState,
}

impl Internal {
    fn of(topic: &str) -> Option<Internal> {
        match topic {
            OFFSETS_TOPIC => Some(Internal::Offsets),
            TRANSACTION_STATE_TOPIC => Some(Internal::TxnState),
            SHARE_STATE_TOPIC => Some(Internal::ShareState),
            _ => None,
        }
    }
}

/// The newest change seen for one partition.
#[derive(Debug, Clone, Copy)]
struct Slot {
    epoch: i32,
    leader: bool,
    /// Set anew by every change acted on; a load installs only under its own generation.
    generation: u64,
}

/// Every partition's slot, and the next generation (never reused, even for a slot forgotten
/// and created again).
#[derive(Debug, Default)]
struct Ledger {
    slots: HashMap<(Internal, i32), Slot>,
    next_generation: u64,
}

/// What a change asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    Ignore,
    Load(u64),
    Unload,
}

/// The per-partition ledger of leadership changes, and the loads in flight.
#[derive(Debug)]
pub(crate) struct Leadership {
    ledger: Mutex<Ledger>,
    loads: watch::Sender<usize>,
}

impl Default for Leadership {
    fn default() -> Self {
        Leadership {
            ledger: Mutex::new(Ledger::default()),
            loads: watch::Sender::new(0),
        }
    }
}

/// Applies one change to the ledger. A resignation with no epoch (-1: the partition was
/// deleted) unloads whatever the history, and forgets it: a topic created again starts its
/// epochs over.
fn decide(ledger: &mut Ledger, key: (Internal, i32), epoch: i32, leader: bool) -> Decision {
    if epoch < 0 && !leader {
        return match ledger.slots.remove(&key) {
            Some(s) if s.leader => Decision::Unload,
            _ => Decision::Ignore,
        };
    }
    let slot = ledger.slots.entry(key).or_insert(Slot {
        epoch,
        leader: false,
        generation: 0,
    });
    if epoch < slot.epoch {
        return Decision::Ignore;
    }
    slot.epoch = epoch;
    if leader == slot.leader {
        return Decision::Ignore;
    }
    slot.leader = leader;
    ledger.next_generation += 1;
    slot.generation = ledger.next_generation;
    if leader {
        Decision::Load(slot.generation)
    } else {
        Decision::Unload
    }
}

fn is_current(ledger: &Ledger, key: (Internal, i32), gen: u64) -> bool {
    ledger
        .slots
        .get(&key)
        .is_some_and(|s| s.leader && s.generation == gen)
}

impl Coordinators {
    /// Leadership changes from the replica manager, in image order.
    pub(crate) fn apply(self: &Arc<Self>, changes: Vec<LeadershipChange>) {
        for c in changes {
            self.on_leadership_change(&c.tp.topic, c.tp.partition, c.leader_epoch, c.is_leader);
        }
    }

    /// This node became (`is_leader`) or stopped being the leader of `topic`-`partition` at
    /// `leader_epoch`. Topics other than the coordinators' internal ones are ignored. Never
    /// blocks: the load runs on the current tokio runtime (call from inside one).
    pub(crate) fn on_leadership_change(
        self: &Arc<Self>,
        topic: &str,
        partition: i32,
        leader_epoch: i32,
        is_leader: bool,
    ) {
        let Some(kind) = Internal::of(topic) else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::error!(
                topic,
                partition,
                "coordinator leadership change outside a tokio runtime; ignored"
            );
            return;
        };
        let key = (kind, partition);
        let mut ledger = self.leadership.ledger.lock();
        match decide(&mut ledger, key, leader_epoch, is_leader) {
            Decision::Ignore => {}
            Decision::Unload => {
                tracing::info!(
                    topic,
                    partition,
                    leader_epoch,
                    "unloading coordinator partition"
                );
                match kind {
                    Internal::Offsets => {
                        self.groups.unload_partition(partition);
                        self.consumer_groups.unload_partition(partition);
                    }
                    Internal::TxnState => self.txn.unload_partition(partition),
                    Internal::ShareState => self.share_state.unload_partition(partition),
                }
            }
            Decision::Load(generation) => {
                match kind {
                    Internal::Offsets => {
                        self.consumer_groups.unload_partition(partition);
                        self.groups.begin_load(partition);
                    }
                    Internal::TxnState => self.txn.begin_load(partition),
                    Internal::ShareState => self.share_state.begin_load(partition),
                }
                self.leadership.loads.send_modify(|n| *n += 1);
                let load = Load {
                    coordinators: self.clone(),
                    kind,
                    partition,
                    epoch: leader_epoch,
                    generation,
                };
                runtime.spawn(load.run());
            }
        }
    }

    /// Waits until no load is in flight (start-up), at most `timeout`; false if it passed.
    pub(crate) async fn wait_loaded(&self, timeout: Duration) -> bool {
        let mut rx = self.leadership.loads.subscribe();
        let idle = tokio::time::timeout(timeout, rx.wait_for(|n| *n == 0)).await;
        idle.is_ok()
    }
}

/// What a load read, waiting to be installed.
enum Loaded {
    Groups(LoadedGroups, LoadedConsumerGroups),
    Txns(LoadedTxns),
    ShareStates(LoadedShareStates),
}

/// One spawned load.
struct Load {
    coordinators: Arc<Coordinators>,
    kind: Internal,
    partition: i32,
    epoch: i32,
    generation: u64,
}

impl Load {
    fn read(c: &Coordinators, kind: Internal, partition: i32) -> Result<Loaded, WriteError> {
        Ok(match kind {
            Internal::Offsets => {
                let entries = c.groups.read_partition(partition)?;
                Loaded::Groups(
                    c.groups.replay(partition, &entries),
                    c.consumer_groups.replay(partition, &entries),
                )
            }
            Internal::TxnState => Loaded::Txns(c.txn.read_partition(partition)?),
            Internal::ShareState => Loaded::ShareStates(c.share_state.read_partition(partition)?),
        })
    }

    async fn run(self) {
        let key = (self.kind, self.partition);
        let mut backoff = RETRY_MIN;
        loop {
            let (c, kind, partition) = (self.coordinators.clone(), self.kind, self.partition);
            let read = tokio::task::spawn_blocking(move || Load::read(&c, kind, partition))
                .await
                .unwrap_or_else(|e| Err(WriteError::Storage(Arc::new(e))));
            let done = {
                let ledger = self.coordinators.leadership.ledger.lock();
                if !is_current(&ledger, key, self.generation) {
                    tracing::debug!(
                        partition,
                        epoch = self.epoch,
                        "discarding a load overtaken by a newer leadership change"
                    );
                    true
                } else {
                    match read {
                        Ok(loaded) => {
                            self.install(loaded);
                            true
                        }
                        Err(e) => {
                            tracing::warn!(partition, epoch = self.epoch, error = %e, "loading a coordinator partition failed; retrying");
                            false
                        }
                    }
                }
            };
            if done {
                break;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(RETRY_MAX);
        }
        self.coordinators
            .leadership
            .loads
            .send_modify(|n| *n = n.saturating_sub(1));
    }

    /// Starts serving what was read (call with the ledger locked, the load current).
    fn install(&self, loaded: Loaded) {
        let b = &self.coordinators;
        match loaded {
            Loaded::Groups(classic, consumer) => {
                // Consumer groups first: the classic install is what starts serving requests.
                b.consumer_groups.install(consumer);
                b.groups.install(classic);
            }
            Loaded::Txns(txns) => b.txn.install(txns, self.epoch),
            Loaded::ShareStates(states) => b.share_state.install(states),
        }
        tracing::debug!(partition = self.partition, epoch = self.epoch, kind = ?self.kind, "coordinator partition loaded");
    }
}

#[cfg(test)]
#[path = "leadership_tests.rs"]
mod broker_tests;

#[cfg(test)]
mod tests {
    use super::*;

    const K: (Internal, i32) = (Internal::Offsets, 3);

    #[test]
    fn changes_are_ordered_by_epoch() {
        let mut s = Ledger::default();
        let Decision::Load(g1) = decide(&mut s, K, 5, true) else {
            panic!("first leadership loads")
        };
        // Already leader: a newer epoch only records it.
        assert_eq!(decide(&mut s, K, 6, true), Decision::Ignore);
        // An older resignation arrives late: ignored.
        assert_eq!(decide(&mut s, K, 5, false), Decision::Ignore);
        assert!(is_current(&s, K, g1));
        assert_eq!(decide(&mut s, K, 7, false), Decision::Unload);
        // The load of epoch 5 finishing now must not install.
        assert!(!is_current(&s, K, g1));
        // A stale election (epoch 6) after the unload at 7 is ignored too.
        assert_eq!(decide(&mut s, K, 6, true), Decision::Ignore);
        let Decision::Load(g2) = decide(&mut s, K, 8, true) else {
            panic!("re-election loads")
        };
        assert!(is_current(&s, K, g2) && g2 != g1);
        // Followers that never led: nothing to unload.
        assert_eq!(
            decide(&mut s, (Internal::TxnState, 0), 2, false),
            Decision::Ignore
        );
        // Deleted (epoch -1): unloaded, and a new topic's epoch 0 loads again.
        assert_eq!(decide(&mut s, K, -1, false), Decision::Unload);
        assert!(!is_current(&s, K, g2));
        assert!(matches!(decide(&mut s, K, 0, true), Decision::Load(_)));
    }
}
