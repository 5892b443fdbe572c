//! The transaction coordinator's requests: InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn,
//! TxnOffsetCommit, EndTxn, and the timeout abort. Each holds the id's lock for its whole run and
//! persists the next state before installing it (see the module docs of `txn`).

use std::collections::BTreeSet;
use std::sync::Arc;

use super::record;
use super::state::{TxnError, TxnMarker, TxnMetadata, TxnState};
use super::{TransactionCoordinator, TxnCommitMember, TxnRef};
use crate::api::PartitionCommit;
use crate::coordinator::now_ms;
use crate::OFFSETS_TOPIC;

/// Kafka's highest usable epoch (`Short.MAX_VALUE - 1`); past it a new producer id is issued.
const MAX_EPOCH: i16 = i16::MAX - 1;

impl TransactionCoordinator {
    /// InitProducerId with a transactional id: a new producer id (first use), or the same id with
    /// the epoch bumped, which fences every older producer of this id. An open transaction is
    /// aborted first. `expected` is KIP-360's (producer id, epoch) of a producer re-initialising:
    /// it must be the current one, else PRODUCER_FENCED.
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
        let mut m = loop {
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
                    }))
                })
                .clone();
            let m = t.clone().lock_owned().await;
            // Expired (and removed from the map) while we waited: start over with a fresh entry.
            if m.state != TxnState::Dead || self.is_current(transactional_id, &t) {
                break m;
            }
        };
        if m.producer_id < 0 || m.state == TxnState::Dead {
            let pid = self.inner.ids.next_producer_id().await?;
            let next = TxnMetadata {
                producer_id: pid,
                producer_epoch: 0,
                timeout_ms,
                state: TxnState::Empty,
                partitions: BTreeSet::new(),
                last_update_ms: now_ms(),
                start_ms: -1,
                ..m.clone()
            };
            self.persist(&next).await?;
            *m = next;
            return Ok((pid, 0));
        }
        if m.state.is_preparing() {
            let commit = m.state == TxnState::PrepareCommit;
            self.complete(&mut m, commit)
                .await
                .map_err(|_| TxnError::ConcurrentTransactions)?;
        }
        if let Some((pid, epoch)) = expected.filter(|(pid, _)| *pid >= 0) {
            if pid != m.producer_id || epoch != m.producer_epoch {
                return Err(TxnError::ProducerFenced);
            }
        }
        if m.state == TxnState::Ongoing {
            // Fence the old producer: abort its transaction with a bumped epoch.
            self.prepare_abort_fenced(&mut m).await?;
            self.complete(&mut m, false).await?;
        }
        let (pid, epoch) = if m.producer_epoch >= MAX_EPOCH {
            (self.inner.ids.next_producer_id().await?, 0)
        } else {
            (m.producer_id, m.producer_epoch + 1)
        };
        let next = TxnMetadata {
            producer_id: pid,
            producer_epoch: epoch,
            timeout_ms,
            state: TxnState::Empty,
            partitions: BTreeSet::new(),
            last_update_ms: now_ms(),
            start_ms: -1,
            ..m.clone()
        };
        self.persist(&next).await?;
        *m = next;
        tracing::debug!(
            transactional_id,
            producer_id = pid,
            epoch,
            "initialised transactional producer"
        );
        Ok((pid, epoch))
    }

    /// Locks an id and checks the producer's id and epoch against it.
    async fn locked(
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

    /// AddPartitionsToTxn (and AddOffsetsToTxn's offsets partition). With `verify_only`
    /// (KIP-890 part 1) nothing is added: the call fails unless every partition is already in
    /// the open transaction.
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
        let now = now_ms();
        let mut next = m.clone();
        next.partitions.extend(partitions.iter().cloned());
        if next.state != TxnState::Ongoing {
            next.state = TxnState::Ongoing;
            next.start_ms = now;
        }
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

    /// TxnOffsetCommit: the offsets are written to the group's `__consumer_offsets` partition
    /// inside the producer's transaction (durable before this returns) and become the group's
    /// offsets when the transaction commits, dropped if it aborts. Checked against the
    /// transactional id's current producer (zombies are fenced) and, v3+, against the group's
    /// member and generation.
    pub async fn txn_offset_commit(
        &self,
        transactional_id: &str,
        group_id: &str,
        producer_id: i64,
        epoch: i16,
        member: &TxnCommitMember,
        offsets: Vec<PartitionCommit>,
    ) -> Result<(), TxnError> {
        if group_id.is_empty() {
            return Err(TxnError::InvalidRequest("empty group id"));
        }
        let m = self.locked(transactional_id, producer_id, epoch).await?;
        let offsets_partition = (
            OFFSETS_TOPIC.to_string(),
            self.inner.groups.partition_for(group_id),
        );
        if m.state != TxnState::Ongoing || !m.partitions.contains(&offsets_partition) {
            return Err(TxnError::InvalidTxnState(
                "AddOffsetsToTxn must precede TxnOffsetCommit",
            ));
        }
        self.inner
            .groups
            .store_transactional_offsets(group_id, (producer_id, epoch), member, &offsets)
            .await?;
        drop(m);
        Ok(())
    }

    /// EndTxn: commit or abort the open transaction; completes once markers and the Complete
    /// record are durable. A retry of a finished EndTxn succeeds.
    pub async fn end_txn(
        &self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        commit: bool,
    ) -> Result<(), TxnError> {
        let mut m = self.locked(transactional_id, producer_id, epoch).await?;
        match (m.state, commit) {
            (TxnState::Ongoing, _) => {
                let mut next = m.clone();
                next.state = if commit {
                    TxnState::PrepareCommit
                } else {
                    TxnState::PrepareAbort
                };
                next.last_update_ms = now_ms();
                self.persist(&next).await?;
                *m = next;
                self.complete(&mut m, commit).await
            }
            (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => {
                self.complete(&mut m, commit).await
            }
            (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => Ok(()),
            (TxnState::PrepareCommit | TxnState::PrepareAbort, _) => {
                Err(TxnError::ConcurrentTransactions)
            }
            _ => Err(TxnError::InvalidTxnState(
                "no open transaction to end that way",
            )),
        }
    }

    /// Writes PrepareAbort with the epoch bumped (fencing the current producer).
    async fn prepare_abort_fenced(&self, m: &mut TxnMetadata) -> Result<(), TxnError> {
        let mut next = m.clone();
        if next.producer_epoch < MAX_EPOCH {
            next.producer_epoch += 1;
        }
        next.state = TxnState::PrepareAbort;
        next.last_update_ms = now_ms();
        self.persist(&next).await?;
        *m = next;
        Ok(())
    }

    /// From a Prepare state: markers, offsets, then the Complete record.
    pub(super) async fn complete(&self, m: &mut TxnMetadata, commit: bool) -> Result<(), TxnError> {
        let marker = TxnMarker {
            transactional_id: m.transactional_id.clone(),
            producer_id: m.producer_id,
            producer_epoch: m.producer_epoch,
            coordinator_epoch: m.coordinator_epoch,
            commit,
            partitions: m.partitions.iter().cloned().collect(),
        };
        self.inner.markers.write_markers(marker).await?;
        // The markers are durable in the groups' `__consumer_offsets` partitions too: their
        // pending transactional offsets become visible (commit) or are dropped (abort).
        for (_, p) in m.partitions.iter().filter(|(t, _)| t == OFFSETS_TOPIC) {
            self.inner
                .groups
                .complete_transactional_offsets(*p, m.producer_id, commit)
                .await?;
        }
        let mut next = m.clone();
        next.state = if commit {
            TxnState::CompleteCommit
        } else {
            TxnState::CompleteAbort
        };
        next.partitions.clear();
        next.start_ms = -1;
        next.last_update_ms = now_ms();
        self.persist(&next).await?;
        *m = next;
        tracing::debug!(transactional_id = %m.transactional_id, producer_id = m.producer_id, commit, "transaction completed");
        Ok(())
    }

    /// Completes a transaction left in a Prepare state (start-up).
    pub(super) async fn resume(&self, id: &str) -> Result<(), TxnError> {
        let Some(t) = self.get(id) else { return Ok(()) };
        let mut m = t.lock().await;
        if m.state.is_preparing() {
            let commit = m.state == TxnState::PrepareCommit;
            self.complete(&mut m, commit).await?;
        }
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
