//! `OffsetWrites`: a group's offset changes queued for `__consumer_offsets` but not yet durable,
//! sequenced per partition so a slow older write never overwrites a newer one in memory.

use std::collections::HashMap;

/// The offset changes of one group that are queued but not yet applied (lives in its
/// `ClassicGroup`, under the group mutex).
#[derive(Debug, Default)]
pub(crate) struct OffsetWrites {
    next_seq: u64,
    /// Per partition: the sequence number of the newest change applied to memory.
    applied: HashMap<(String, i32), u64>,
    /// Per partition: how many queued changes have not completed yet.
    in_flight: HashMap<(String, i32), u32>,
}

impl OffsetWrites {
    /// Registers a change of `key` about to be queued; returns its sequence number.
    pub(crate) fn begin(&mut self, key: &(String, i32)) -> u64 {
        self.next_seq += 1;
        *self.in_flight.entry(key.clone()).or_default() += 1;
        self.next_seq
    }

    /// Completes change `seq` of `key`; true if it is durable and must be applied (no later
    /// change of `key` was applied before it).
    pub(crate) fn finish(&mut self, key: &(String, i32), seq: u64, durable: bool) -> bool {
        if let Some(n) = self.in_flight.get_mut(key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.in_flight.remove(key);
            }
        }
        if !durable || self.applied.get(key).is_some_and(|s| *s > seq) {
            return false;
        }
        self.applied.insert(key.clone(), seq);
        true
    }

    /// Whether a change of `key` is queued and not yet complete.
    pub(crate) fn is_pending(&self, key: &(String, i32)) -> bool {
        self.in_flight.contains_key(key)
    }

    /// Partitions with a change in flight (DeleteGroups tombstones them too).
    pub(crate) fn pending_keys(&self) -> impl Iterator<Item = &(String, i32)> {
        self.in_flight.keys()
    }
}
