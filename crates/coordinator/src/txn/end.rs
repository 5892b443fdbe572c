//! Ending transactions: EndTxn in Transactions V1 and V2 (KIP-890 part 2: the epoch is bumped at
//! every end), the fencing abort (new producer, timeout), and completion — markers into every
//! partition, the groups' pending offsets, then the Complete record — also of a transaction a
//! restart found prepared. Same locking and persist-then-install rule as `ops.rs`.

use super::ops::MAX_EPOCH;
use super::state::{TxnError, TxnMarker, TxnMetadata, TxnState, TXN_V2};
use super::TransactionCoordinator;
use crate::OFFSETS_TOPIC;
use strom_log::now_ms;

impl TransactionCoordinator {
    /// EndTxn: commit or abort the open transaction; completes once markers and the Complete
    /// record are durable, then answers the producer id and epoch the producer uses next.
    /// `transaction_v2` is EndTxn v5+ (KIP-890 part 2; rules at `end_txn_v2`). V1: the id and
    /// epoch do not change, a retry of a finished EndTxn succeeds.
    pub async fn end_txn(
        &self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        commit: bool,
        transaction_v2: bool,
    ) -> Result<(i64, i16), TxnError> {
        if transaction_v2 {
            return self
                .end_txn_v2(transactional_id, producer_id, epoch, commit)
                .await;
        }
        let mut m = self.locked(transactional_id, producer_id, epoch).await?;
        match (m.state, commit) {
            (TxnState::Ongoing, _) => {
                let mut next = m.clone();
                next.state = if commit {
                    TxnState::PrepareCommit
                } else {
                    TxnState::PrepareAbort
                };
                // No epoch bump: the V2 retry rules must not read this epoch as a bumped one.
                next.client_transaction_version = 0;
                next.last_update_ms = now_ms();
                self.persist(&next).await?;
                *m = next;
                self.complete(&mut m, commit).await?;
            }
            (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => {
                self.complete(&mut m, commit).await?;
            }
            (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => {}
            (TxnState::PrepareCommit | TxnState::PrepareAbort, _) => {
                return Err(TxnError::ConcurrentTransactions)
            }
            _ => {
                return Err(TxnError::InvalidTxnState(
                    "no open transaction to end that way",
                ))
            }
        }
        Ok((m.producer_id, m.producer_epoch))
    }

    /// EndTxn v5+ (Transactions V2, Kafka 4.0's rules). Ending a transaction bumps the epoch:
    /// the Prepare record and the markers carry the bumped epoch, so the markers fence any late
    /// write of the old one, and the producer continues with it. From `MAX_EPOCH` the bump
    /// reaches `i16::MAX` and a new producer id is allocated (`next_producer_id`): the producer
    /// continues with that id and epoch 0 once the markers are written.
    ///
    /// Because the epoch moves, "same epoch" means the next EndTxn, and a retry carries the epoch
    /// before the bump — accepted only if a V2 EndTxn made that bump (not a coordinator abort).
    /// Against the state (`retry` = epoch + 1 is the current one, or the previous producer id at
    /// `MAX_EPOCH` after an overflow; `current` = the current id and epoch; anything else is
    /// PRODUCER_FENCED, or INVALID_PRODUCER_ID_MAPPING for an unknown id):
    ///
    /// ```text
    ///                  abort: retry  current   commit: retry  current
    /// Ongoing                 PF     bump              PF     bump
    /// Empty                   PF     bump (*)          PF     ITS
    /// CompleteAbort           done   bump (*)          ITS    ITS
    /// CompleteCommit          ITS    bump (*)          done   ITS
    /// Prepare of the same kind: retry finishes it; of the other kind: ITS
    /// ```
    ///
    /// `done` answers the current id and epoch without writing; (*) aborts an empty transaction
    /// (a producer whose writes never reached the coordinator still gets its epoch bumped).
    async fn end_txn_v2(
        &self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        commit: bool,
    ) -> Result<(i64, i16), TxnError> {
        self.check_owned(transactional_id)?;
        let t = self
            .get(transactional_id)
            .ok_or(TxnError::InvalidProducerIdMapping)?;
        let mut m = t.lock_owned().await;
        if m.state == TxnState::Dead {
            return Err(TxnError::InvalidProducerIdMapping);
        }
        let completing = matches!(m.state, TxnState::PrepareCommit | TxnState::PrepareAbort);
        let completed = matches!(m.state, TxnState::CompleteCommit | TxnState::CompleteAbort);
        // The current epoch was bumped by a V2 EndTxn (not by a timeout or fencing abort, which
        // record version 0): then `epoch + 1` is the producer's own EndTxn, retried.
        let bumped_by_end_txn = m.is_v2() && (completing || completed);
        let retry_on_bump = bumped_by_end_txn
            && producer_id == m.producer_id
            && i32::from(m.producer_epoch) == i32::from(epoch) + 1;
        let retry_on_overflow = bumped_by_end_txn
            && completed
            && producer_id != m.producer_id
            && producer_id == m.previous_producer_id
            && epoch == MAX_EPOCH
            && m.producer_epoch == 0;
        if producer_id != m.producer_id && !retry_on_overflow {
            return Err(TxnError::InvalidProducerIdMapping);
        }
        let retry = retry_on_bump || retry_on_overflow;
        let current = epoch == m.producer_epoch && producer_id == m.producer_id;
        let valid = if completing {
            retry_on_bump
        } else if completed {
            retry || current
        } else {
            current
        };
        if !valid {
            return Err(TxnError::ProducerFenced);
        }
        match (m.state, commit) {
            (TxnState::Ongoing, _) => self.prepare_v2(&mut m, commit).await?,
            (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => {
                // Only after a failed completion (markers not written) or before the load's
                // resume got the lock: finish it, as V1 does.
                self.complete(&mut m, commit).await?
            }
            (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) if retry => {
                tracing::debug!(
                    transactional_id,
                    producer_id,
                    epoch,
                    "retried V2 EndTxn of a completed transaction"
                );
            }
            (TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort, false)
                if !retry =>
            {
                self.prepare_v2(&mut m, false).await?
            }
            _ => {
                return Err(TxnError::InvalidTxnState(
                    "no open transaction to end that way",
                ))
            }
        }
        Ok((m.producer_id, m.producer_epoch))
    }

    /// V2: writes PrepareCommit/PrepareAbort with the epoch bumped (and, from `MAX_EPOCH`, the
    /// next producer id), then completes. An abort outside Ongoing aborts an empty transaction.
    async fn prepare_v2(&self, m: &mut TxnMetadata, commit: bool) -> Result<(), TxnError> {
        // A producer never holds `i16::MAX` (it is reached only on the way to a new id).
        let bumped = m
            .producer_epoch
            .checked_add(1)
            .ok_or(TxnError::InvalidTxnState("producer epoch exhausted"))?;
        let next_producer_id = if m.producer_epoch >= MAX_EPOCH {
            self.inner.ids.next_producer_id().await?
        } else {
            -1
        };
        let now = now_ms();
        let mut next = m.clone();
        next.state = if commit {
            TxnState::PrepareCommit
        } else {
            TxnState::PrepareAbort
        };
        if m.state != TxnState::Ongoing {
            // An empty abort: nothing to mark; it starts (and ends) now.
            next.partitions.clear();
            next.start_ms = now;
        }
        next.last_producer_epoch = m.producer_epoch;
        next.producer_epoch = bumped;
        next.next_producer_id = next_producer_id;
        next.client_transaction_version = TXN_V2;
        next.last_update_ms = now;
        self.persist(&next).await?;
        *m = next;
        self.complete(m, commit).await
    }

    /// Writes PrepareAbort with the epoch bumped (fencing the current producer). The epoch may
    /// go up to `i16::MAX`, kept for exactly this (a producer holds at most `MAX_EPOCH`), so a
    /// producer at `MAX_EPOCH` is fenced by the markers too (as Kafka). The record says version
    /// 0: this bump is not the producer's EndTxn, so its old epoch is fenced, not taken for a V2
    /// retry.
    pub(super) async fn prepare_abort_fenced(&self, m: &mut TxnMetadata) -> Result<(), TxnError> {
        let mut next = m.clone();
        // Up to `i16::MAX`, kept for the coordinator: a producer at `MAX_EPOCH` is fenced too
        // (its next InitProducerId moves to a new producer id).
        next.producer_epoch = next.producer_epoch.saturating_add(1);
        next.client_transaction_version = 0;
        next.next_producer_id = -1;
        next.last_producer_epoch = -1;
        next.state = TxnState::PrepareAbort;
        next.last_update_ms = now_ms();
        self.persist(&next).await?;
        *m = next;
        Ok(())
    }

    /// From a Prepare state: markers (with the Prepare's id and epoch — V2: the bumped epoch),
    /// offsets, then the Complete record (V2 overflow: on the next producer id, epoch 0).
    pub(super) async fn complete(&self, m: &mut TxnMetadata, commit: bool) -> Result<(), TxnError> {
        let marker = TxnMarker {
            transactional_id: m.transactional_id.clone(),
            producer_id: m.producer_id,
            producer_epoch: m.producer_epoch,
            coordinator_epoch: m.coordinator_epoch,
            commit,
            partitions: m.partitions.iter().cloned().collect(),
        };
        self.write_markers(marker).await?;
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
        if m.is_v2() && m.next_producer_id >= 0 {
            // The V2 bump overflowed: the markers (with the old id at `i16::MAX`) are durable,
            // the producer continues with the new id.
            next.previous_producer_id = m.producer_id;
            next.producer_id = m.next_producer_id;
            next.producer_epoch = 0;
        }
        next.next_producer_id = -1;
        self.persist(&next).await?;
        *m = next;
        tracing::debug!(transactional_id = %m.transactional_id, producer_id = m.producer_id, epoch = m.producer_epoch, commit, "transaction completed");
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
}
