//! Transaction verification at the partition (KIP-890 part 1, Kafka's `VerificationGuard`).
//!
//! Why: a transactional producer's late or retried batch could land after its transaction was
//! aborted and open a transaction here that the coordinator never hears of ("hanging
//! transaction": the last stable offset stops forever). So before a producer's *first*
//! transactional batch in this partition (no open transaction of its own here), the leader asks
//! the transaction coordinator whether the partition is in the producer's open transaction, and
//! appends only with proof of that answer.
//!
//! The proof is a [`VerificationGuard`]: [`PartitionLog::start_txn_verification`] hands one out
//! (the same one while a verification is pending), the caller verifies with the coordinator,
//! then appends with [`PartitionLog::append_verified`] passing the guard back. Any
//! transactional batch written for that producer, data or COMMIT/ABORT marker (leader or
//! follower append), spends the guard. So an abort marker that lands between the coordinator's
//! "yes" and the append invalidates the answer, and a fresh transaction cannot reuse a stale
//! one (the ABA case in Kafka's design). Guards live in memory only: after a restart or a
//! leadership change the next first batch simply verifies again.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use super::PartitionLog;
use crate::error::{LogError, Result};
use crate::producer_state::{PendingProducerState, ProducerStateError};

/// Proof that a verification was started for a producer in one partition (opaque, unique).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VerificationGuard(u64);

impl VerificationGuard {
    fn next() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        VerificationGuard(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// Pending verifications of one partition: producer id → guard and when it was handed out.
#[derive(Debug, Default)]
pub(super) struct Verifications {
    pending: HashMap<i64, (VerificationGuard, i64)>,
}

impl PartitionLog {
    /// Starts (or joins) the verification of `producer_id`'s first transactional batch here.
    /// `None` when the producer already has an open transaction in this partition: its
    /// batches need no verification.
    pub fn start_txn_verification(&self, producer_id: i64) -> Option<VerificationGuard> {
        let state = self.producer_state.lock();
        if state.ongoing_txns().contains_key(&producer_id) {
            return None;
        }
        let now = (self.clock)();
        let mut v = self.verifications.lock();
        Some(
            v.pending
                .entry(producer_id)
                .or_insert_with(|| (VerificationGuard::next(), now))
                .0,
        )
    }

    /// The KIP-890 check of a client append: every transaction this append would open must
    /// carry the producer's pending guard. Caller holds the appender lock.
    pub(super) fn check_verified(
        &self,
        pending: &PendingProducerState,
        guard: Option<VerificationGuard>,
    ) -> Result<()> {
        let v = self.verifications.lock();
        for producer_id in pending.started_transactions() {
            let ok = guard.is_some_and(|g| v.pending.get(&producer_id).is_some_and(|e| e.0 == g));
            if !ok {
                tracing::debug!(partition = %self.tp, producer_id, "refused an unverified first transactional batch");
                return Err(LogError::Producer(
                    ProducerStateError::UnverifiedTransaction { producer_id },
                ));
            }
        }
        Ok(())
    }

    /// Spends the guards of producers that just wrote a transactional batch. Caller holds
    /// the appender lock.
    pub(super) fn spend_verifications(&self, producers: &[i64]) {
        if producers.is_empty() {
            return;
        }
        let mut v = self.verifications.lock();
        for p in producers {
            v.pending.remove(p);
        }
    }

    /// Drops guards older than `max_age_ms` (verifications that never led to an append).
    pub(super) fn expire_verifications(&self, now: i64, max_age_ms: i64) {
        self.verifications
            .lock()
            .pending
            .retain(|_, (_, since)| now.saturating_sub(*since) < max_age_ms);
    }
}

#[cfg(test)]
#[path = "verification_tests.rs"]
mod tests;
