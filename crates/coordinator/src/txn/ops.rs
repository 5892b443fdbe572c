//! The transaction coordinator's requests up to a transaction's end: InitProducerId,
//! AddPartitionsToTxn (V1, V2, verify-only), AddOffsetsToTxn, and the timers (timeout abort, id
//! expiration); ending a transaction is in `end.rs`. Each holds the id's lock for its whole run
//! and persists the next state before installing it (see the module docs of `txn`).

use std::collections::BTreeSet;
use std::sync::Arc;

use super::record;
use super::state::{TxnError, TxnMetadata, TxnState, TXN_V2};
use super::{TransactionCoordinator, TxnRef};
use crate::OFFSETS_TOPIC;
use strom_log::now_ms;

/// Kafka's highest usable epoch (`Short.MAX_VALUE - 1`); past it a new producer id is issued.
/// `i16::MAX` itself is kept for the coordinator, so it can always fence a producer (a V2 EndTxn
/// from `MAX_EPOCH` writes its markers with `i16::MAX`, then moves to a new producer id).
pub(super) const MAX_EPOCH: i16 = i16::MAX - 1;

impl TransactionCoordinator {
    /// InitProducerId with a transactional id: a new producer id (first use), or the same id with
    /// the epoch bumped, which fences every older producer of this id. An open transaction is
    /// aborted first. `expected` is KIP-360's (producer id, epoch) of a producer re-initialising:
    /// it must be the current one, else PRODUCER_FENCED — except, as Kafka 4.0, the epoch a V2
    /// producer held before an EndTxn whose answer it missed (with the previous producer id if
    /// that EndTxn overflowed the epoch): it gets the current id and epoch without a bump.
    /// V2 producers need nothing else here: their epoch bumps come from EndTxn.
    pub async fn init_producer_id(
        &self,
        transactional_id: &str,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
    ) -> Result<(i64, i16), TxnError> {
        if transactional_id.is_empty() {
            return Err(TxnError::InvalidRequest("empty transactional id"));
        }
        let coordinator_epoch = self.check_owned(transactional_id)?;
        if timeout_ms <= 0 || timeout_ms > self.inner.config.max_timeout_ms {
            return Err(TxnError::InvalidTransactionTimeout);
        }
        let mut m = self
            .lock_or_create(transactional_id, timeout_ms, coordinator_epoch)
            .await;
        if m.producer_id < 0 || m.state == TxnState::Dead {
            return self.first_producer_id(&mut m, timeout_ms).await;
        }
        if m.state.is_preparing() {
            let commit = m.state == TxnState::PrepareCommit;
            self.complete(&mut m, commit)
                .await
                .map_err(|_| TxnError::ConcurrentTransactions)?;
        }
        if let Some((pid, epoch)) = expected.filter(|(pid, _)| *pid >= 0) {
            if pid == m.producer_id && epoch == m.producer_epoch {
                // The current producer re-initialising: bumped below like any InitProducerId.
            } else if missed_v2_end_txn(&m, pid, epoch) {
                // Kafka's "retry of a successful call": the producer missed the answer of the
                // V2 EndTxn that bumped its epoch (or moved it to a new producer id). It gets the
                // id and epoch it would have been told, unbumped — nobody else holds them, since
                // a new producer's InitProducerId forgets `last_producer_epoch`.
                let next = emptied(&m, timeout_ms);
                self.persist(&next).await?;
                *m = next;
                return Ok((m.producer_id, m.producer_epoch));
            } else {
                return Err(TxnError::ProducerFenced);
            }
        }
        if m.state == TxnState::Ongoing {
            // Fence the old producer: abort its transaction with a bumped epoch.
            self.prepare_abort_fenced(&mut m).await?;
            self.complete(&mut m, false).await?;
        }
        self.bump_producer(&mut m, timeout_ms).await
    }

    /// The id's state, locked; created (Empty, no producer yet) when the id is new.
    async fn lock_or_create(
        &self,
        transactional_id: &str,
        timeout_ms: i32,
        coordinator_epoch: i32,
    ) -> tokio::sync::OwnedMutexGuard<TxnMetadata> {
        loop {
            let t: TxnRef = self
                .inner
                .txns
                .lock()
                .entry(transactional_id.to_string())
                .or_insert_with(|| {
                    Arc::new(tokio::sync::Mutex::new(TxnMetadata {
                        transactional_id: transactional_id.to_string(),
                        producer_id: -1,
                        producer_epoch: -1,
                        timeout_ms,
                        state: TxnState::Empty,
                        partitions: BTreeSet::new(),
                        last_update_ms: now_ms(),
                        start_ms: -1,
                        coordinator_epoch,
                        client_transaction_version: 0,
                        previous_producer_id: -1,
                        next_producer_id: -1,
                        last_producer_epoch: -1,
                    }))
                })
                .clone();
            let m = t.clone().lock_owned().await;
            // Expired (and removed from the map) while we waited: start over with a fresh entry.
            if m.state != TxnState::Dead || self.is_current(transactional_id, &t) {
                return m;
            }
        }
    }

    /// A new (or expired) id's first producer: a fresh producer id at epoch 0.
    async fn first_producer_id(
        &self,
        m: &mut TxnMetadata,
        timeout_ms: i32,
    ) -> Result<(i64, i16), TxnError> {
        let pid = self.inner.ids.next_producer_id().await?;
        let next = TxnMetadata {
            producer_id: pid,
            producer_epoch: 0,
            client_transaction_version: 0,
            previous_producer_id: -1,
            last_producer_epoch: -1,
            ..emptied(m, timeout_ms)
        };
        self.persist(&next).await?;
        *m = next;
        Ok((pid, 0))
    }

    /// The next epoch of the id's producer (a new producer id once the epoch is exhausted).
    async fn bump_producer(
        &self,
        m: &mut TxnMetadata,
        timeout_ms: i32,
    ) -> Result<(i64, i16), TxnError> {
        let (pid, epoch) = if m.producer_epoch >= MAX_EPOCH {
            (self.inner.ids.next_producer_id().await?, 0)
        } else {
            (m.producer_id, m.producer_epoch + 1)
        };
        let next = TxnMetadata {
            producer_id: pid,
            producer_epoch: epoch,
            // A new producer (or a re-initialised one) starts afresh: no retry of an older
            // producer's EndTxn or InitProducerId is recognised any more. The client's
            // transaction version is kept (Kafka 4.0), though only the next request's counts.
            previous_producer_id: -1,
            last_producer_epoch: -1,
            ..emptied(m, timeout_ms)
        };
        self.persist(&next).await?;
        *m = next;
        tracing::debug!(
            transactional_id = %m.transactional_id,
            producer_id = pid,
            epoch,
            "initialised transactional producer"
        );
        Ok((pid, epoch))
    }

    /// Locks an id and checks the producer's id and epoch against it.
    pub(super) async fn locked(
        &self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
    ) -> Result<tokio::sync::OwnedMutexGuard<TxnMetadata>, TxnError> {
        self.check_owned(transactional_id)?;
        let t = self
            .get(transactional_id)
            .ok_or(TxnError::InvalidProducerIdMapping)?;
        let m = t.lock_owned().await;
        if m.producer_id != producer_id || m.state == TxnState::Dead {
            return Err(TxnError::InvalidProducerIdMapping);
        }
        if epoch != m.producer_epoch {
            return Err(TxnError::ProducerFenced);
        }
        Ok(m)
    }

    /// AddPartitionsToTxn (and AddOffsetsToTxn's offsets partition), Transactions V1. With
    /// `verify_only` (KIP-890 part 1) nothing is added: the call fails unless every partition is
    /// already in the open transaction.
    pub async fn add_partitions(
        &self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &[(String, i32)],
        verify_only: bool,
    ) -> Result<(), TxnError> {
        let mut m = self.locked(transactional_id, producer_id, epoch).await?;
        if m.state.is_preparing() {
            return Err(TxnError::ConcurrentTransactions);
        }
        let all_in = partitions.iter().all(|p| m.partitions.contains(p));
        if verify_only {
            return if m.state == TxnState::Ongoing && all_in {
                Ok(())
            } else {
                Err(TxnError::InvalidTxnState(
                    "partition is not in the transaction",
                ))
            };
        }
        if m.state == TxnState::Ongoing && all_in {
            return Ok(());
        }
        self.add_to_transaction(&mut m, partitions, 0).await
    }

    /// AddPartitionsToTxn for a Transactions V2 producer (KIP-890 part 2): the partition leader
    /// adds a partition on the producer's behalf when its first transactional write arrives
    /// (AddPartitionsToTxn v5 from a broker, not verify-only; and TxnOffsetCommit v5 for the
    /// group's `__consumer_offsets` partition, V2 clients sending no AddOffsetsToTxn). `epoch`
    /// is the producer's current one — after a V2 EndTxn, the bumped epoch it returned; an
    /// older epoch is fenced (PRODUCER_FENCED), so a late write of the previous transaction
    /// cannot reopen one. Starts a transaction from Empty/CompleteCommit/CompleteAbort and
    /// records the transaction as V2 (the state machine is V1's otherwise).
    ///
    /// A separate method rather than a flag on [`TransactionCoordinator::add_partitions`]: its
    /// callers are exactly the V2 request paths, `verify_only` means nothing for them, and the
    /// V1 callers stay as they are.
    pub async fn add_partitions_v2(
        &self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &[(String, i32)],
    ) -> Result<(), TxnError> {
        let mut m = self.locked(transactional_id, producer_id, epoch).await?;
        if m.state.is_preparing() {
            return Err(TxnError::ConcurrentTransactions);
        }
        let all_in = partitions.iter().all(|p| m.partitions.contains(p));
        if m.state == TxnState::Ongoing && all_in && m.is_v2() {
            return Ok(());
        }
        self.add_to_transaction(&mut m, partitions, TXN_V2).await
    }

    /// Persists `m` Ongoing with `partitions` added, as a transition of a request of
    /// `client_transaction_version` (a new transaction starts now).
    async fn add_to_transaction(
        &self,
        m: &mut TxnMetadata,
        partitions: &[(String, i32)],
        client_transaction_version: i16,
    ) -> Result<(), TxnError> {
        let now = now_ms();
        let mut next = m.clone();
        next.partitions.extend(partitions.iter().cloned());
        if next.state != TxnState::Ongoing {
            next.state = TxnState::Ongoing;
            next.start_ms = now;
        }
        next.client_transaction_version = client_transaction_version;
        next.last_update_ms = now;
        self.persist(&next).await?;
        *m = next;
        Ok(())
    }

    /// AddOffsetsToTxn: the group's `__consumer_offsets` partition joins the transaction.
    pub async fn add_offsets(
        &self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        group_id: &str,
    ) -> Result<(), TxnError> {
        if group_id.is_empty() {
            return Err(TxnError::InvalidRequest("empty group id"));
        }
        let p = (
            OFFSETS_TOPIC.to_string(),
            self.inner.groups.partition_for(group_id),
        );
        self.add_partitions(transactional_id, producer_id, epoch, &[p], false)
            .await
    }

    /// TxnOffsetCommit as the broker serves it (on the group's coordinator, which may be
    /// another node: `strom-broker`'s `txn_verifier`): verify that the group's
    /// `__consumer_offsets` partition is in the producer's open transaction (which also fences
    /// an old epoch), then write the offsets inside the transaction
    /// ([`GroupCoordinator::store_transactional_offsets`](crate::GroupCoordinator)). Both on
    /// this node, for the tests of the whole flow.
    #[cfg(test)]
    pub(crate) async fn txn_offset_commit(
        &self,
        transactional_id: &str,
        group_id: &str,
        producer_id: i64,
        epoch: i16,
        member: &super::TxnCommitMember,
        offsets: Vec<crate::api::PartitionCommit>,
    ) -> Result<(), TxnError> {
        let offsets_partition = (
            OFFSETS_TOPIC.to_string(),
            self.inner.groups.partition_for(group_id),
        );
        self.add_partitions(
            transactional_id,
            producer_id,
            epoch,
            &[offsets_partition],
            true,
        )
        .await?;
        self.inner
            .groups
            .store_transactional_offsets(group_id, (producer_id, epoch), member, &offsets)
            .await?;
        Ok(())
    }

    /// True if `t` is still the map's entry for `id` (not removed by expiration).
    fn is_current(&self, id: &str, t: &TxnRef) -> bool {
        self.inner
            .txns
            .lock()
            .get(id)
            .is_some_and(|c| Arc::ptr_eq(c, t))
    }

    /// `transactional.id.expiration.ms`: removes every id that is Empty/CompleteCommit/
    /// CompleteAbort and unchanged for longer than that — a tombstone in `__transaction_state`
    /// first, then the entry leaves memory (marked Dead for anyone still holding it). Ongoing and
    /// Prepare states never expire by this rule (the transaction timeout handles them). Ids busy
    /// with a request are skipped until the next round.
    pub(super) async fn expire_transactional_ids(&self, now: i64) {
        let ttl = self.inner.config.transactional_id_expiration_ms;
        let entries: Vec<(String, TxnRef)> = self
            .inner
            .txns
            .lock()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (id, t) in entries {
            let Ok(mut m) = t.try_lock() else { continue };
            if !matches!(
                m.state,
                TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
            ) || now.saturating_sub(m.last_update_ms) <= ttl
            {
                continue;
            }
            if let Err(e) = self.append(&id, record::tombstone(&id)).await {
                tracing::warn!(transactional_id = %id, error = %e, "expiring a transactional id failed; retrying next round");
                continue;
            }
            tracing::info!(transactional_id = %id, producer_id = m.producer_id, "transactional id expired (transactional.id.expiration.ms)");
            m.state = TxnState::Dead;
            let mut txns = self.inner.txns.lock();
            if txns.get(&id).is_some_and(|c| Arc::ptr_eq(c, &t)) {
                txns.remove(&id);
            }
        }
    }

    /// Aborts (with an epoch bump) every open transaction older than its timeout. Ids busy with
    /// a request are skipped until the next round.
    pub(super) async fn abort_timed_out(&self, now: i64) {
        for t in self.all() {
            let Ok(mut m) = t.try_lock() else { continue };
            if m.state != TxnState::Ongoing
                || m.start_ms < 0
                || now.saturating_sub(m.start_ms) <= i64::from(m.timeout_ms)
            {
                continue;
            }
            tracing::info!(transactional_id = %m.transactional_id, producer_id = m.producer_id, "aborting a transaction past transaction.timeout.ms");
            let r = match self.prepare_abort_fenced(&mut m).await {
                Ok(()) => self.complete(&mut m, false).await,
                Err(e) => Err(e),
            };
            if let Err(e) = r {
                tracing::warn!(transactional_id = %m.transactional_id, error = %e, "timeout abort failed; retrying next round");
            }
        }
    }
}

/// True if `(producer_id, epoch)` is what a V2 producer held before the EndTxn that brought the
/// id to its current (finished) state: the producer missed that EndTxn's answer.
fn missed_v2_end_txn(m: &TxnMetadata, producer_id: i64, epoch: i16) -> bool {
    let finished = matches!(
        m.state,
        TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
    );
    // The previous producer id counts only with an exhausted epoch (the overflow case).
    let same_producer = producer_id == m.producer_id
        || (m.previous_producer_id >= 0
            && producer_id == m.previous_producer_id
            && epoch >= MAX_EPOCH);
    finished && same_producer && m.last_producer_epoch >= 0 && epoch == m.last_producer_epoch
}

/// `m` with no transaction open: Empty, no partitions, the given timeout, no pending overflow.
fn emptied(m: &TxnMetadata, timeout_ms: i32) -> TxnMetadata {
    TxnMetadata {
        timeout_ms,
        state: TxnState::Empty,
        partitions: BTreeSet::new(),
        last_update_ms: now_ms(),
        start_ms: -1,
        next_producer_id: -1,
        ..m.clone()
    }
}
