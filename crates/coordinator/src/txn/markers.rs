//! Writing a transaction's markers until every partition has its COMMIT/ABORT (Kafka's
//! TransactionMarkerChannelManager's retry policy). The broker's `TxnMarkerWriter` does one
//! round and names the partitions it could not write (leader unknown, moved, not ready or
//! unreachable); they are tried again against fresh metadata with backoff until written, until
//! this node no longer coordinates the transaction (NOT_COORDINATOR: the new coordinator
//! completes it), or until [`MARKER_RETRY_TIMEOUT`] passes (the transaction stays prepared; the
//! producer's EndTxn retry or the next load completes it).

use std::time::Duration;

use super::state::{TxnError, TxnMarker};
use super::TransactionCoordinator;
use crate::error::WriteError;

/// How long one completion keeps retrying partitions whose leader is away.
pub(crate) const MARKER_RETRY_TIMEOUT: Duration = Duration::from_secs(30);
const BACKOFF_MIN: Duration = Duration::from_millis(20);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

impl TransactionCoordinator {
    /// Writes `marker` into every one of its partitions (see the module docs for retries).
    pub(super) async fn write_markers(&self, mut marker: TxnMarker) -> Result<(), TxnError> {
        let started = tokio::time::Instant::now();
        let mut backoff = BACKOFF_MIN;
        loop {
            let retry = self.inner.markers.write_markers(marker.clone()).await?;
            if retry.is_empty() {
                return Ok(());
            }
            let partition = self.partition_for(&marker.transactional_id);
            if self.check_owned(&marker.transactional_id).is_err() {
                return Err(WriteError::NotCoordinator(partition).into());
            }
            if started.elapsed() >= MARKER_RETRY_TIMEOUT {
                tracing::warn!(transactional_id = %marker.transactional_id, partitions = ?retry, "transaction markers not written in time; the transaction stays prepared");
                return Err(WriteError::NotAvailable(partition).into());
            }
            tracing::debug!(transactional_id = %marker.transactional_id, partitions = ?retry, "retrying transaction markers");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(BACKOFF_MAX);
            marker.partitions = retry;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::*;
    use crate::txn::{ProducerIdSource, SeamFuture, TxnMarkerWriter};
    use crate::{GroupCoordinator, GroupCoordinatorConfig, InMemoryWriter};

    /// Names the marker's first partition for a retry in the first `refusals` rounds.
    #[derive(Debug)]
    struct Refusing {
        refusals: usize,
        rounds: AtomicUsize,
        partitions: parking_lot::Mutex<Vec<Vec<(String, i32)>>>,
    }

    impl TxnMarkerWriter for Refusing {
        fn write_markers(
            &self,
            marker: TxnMarker,
        ) -> SeamFuture<'_, Result<Vec<(String, i32)>, WriteError>> {
            let round = self.rounds.fetch_add(1, Ordering::SeqCst);
            self.partitions.lock().push(marker.partitions.clone());
            let retry = if round < self.refusals {
                marker.partitions.into_iter().take(1).collect()
            } else {
                Vec::new()
            };
            Box::pin(async move { Ok(retry) })
        }
    }

    #[derive(Debug)]
    struct OneId;

    impl ProducerIdSource for OneId {
        fn next_producer_id(&self) -> SeamFuture<'_, Result<i64, TxnError>> {
            Box::pin(async { Ok(7) })
        }
    }

    fn coordinator(markers: Arc<Refusing>) -> TransactionCoordinator {
        let groups = GroupCoordinator::new(
            GroupCoordinatorConfig {
                offsets_topic_partitions: 1,
                ..Default::default()
            },
            InMemoryWriter::new(),
        );
        groups.load_partition(0).expect("load groups");
        let c = TransactionCoordinator::new(
            Default::default(),
            InMemoryWriter::new(),
            markers,
            Arc::new(OneId),
            groups,
        );
        c.load().expect("load");
        c
    }

    /// A coordinator over `markers` with producer "t"'s transaction open on `parts`.
    async fn open(
        markers: &Arc<Refusing>,
        parts: &[(String, i32)],
    ) -> (TransactionCoordinator, i64, i16) {
        let c = coordinator(markers.clone());
        let (pid, epoch) = c.init_producer_id("t", 60_000, None).await.expect("init");
        c.add_partitions("t", pid, epoch, parts, false)
            .await
            .expect("add");
        (c, pid, epoch)
    }

    fn refusing(refusals: usize) -> Arc<Refusing> {
        Arc::new(Refusing {
            refusals,
            rounds: AtomicUsize::new(0),
            partitions: Default::default(),
        })
    }

    #[tokio::test(start_paused = true)]
    async fn partitions_a_round_could_not_write_are_retried_until_written() {
        let markers = refusing(3);
        let parts = [("a".to_string(), 0), ("b".to_string(), 1)];
        let (c, pid, epoch) = open(&markers, &parts).await;
        c.end_txn("t", pid, epoch, true, false)
            .await
            .expect("committed once every marker is written");
        let rounds = markers.partitions.lock().clone();
        assert_eq!(rounds.len(), 4, "{rounds:?}");
        assert_eq!(rounds[0], parts.to_vec());
        // Only what a round could not write is sent again.
        assert!(rounds[1..].iter().all(|r| r == &vec![("a".to_string(), 0)]));
    }

    #[tokio::test(start_paused = true)]
    async fn retrying_stops_when_the_transaction_is_coordinated_elsewhere() {
        let markers = refusing(usize::MAX);
        let (c, pid, epoch) = open(&markers, &[("a".to_string(), 0)]).await;
        let ending = tokio::spawn({
            let c = c.clone();
            async move { c.end_txn("t", pid, epoch, true, false).await }
        });
        while markers.rounds.load(Ordering::SeqCst) < 2 {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        c.unload_partition(c.partition_for("t"));
        let r = ending.await.expect("joined");
        assert!(
            matches!(r, Err(TxnError::Write(WriteError::NotCoordinator(_)))),
            "{r:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn retrying_gives_up_after_the_timeout() {
        let markers = refusing(usize::MAX);
        let (c, pid, epoch) = open(&markers, &[("a".to_string(), 0)]).await;
        let r = c.end_txn("t", pid, epoch, true, false).await;
        assert!(
            matches!(r, Err(TxnError::Write(WriteError::NotAvailable(_)))),
            "{r:?}"
        );
        let rounds = markers.rounds.load(Ordering::SeqCst);
        // Backoff doubles from 20 ms to 1 s: some tens of rounds in 30 s, not thousands.
        assert!((20..100).contains(&rounds), "{rounds}");
    }
}
