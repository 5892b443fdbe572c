//! `ProducerIdManager`: hands out producer ids for InitProducerId (idempotent producers here,
//! transactional ones through the transaction coordinator, to which it is the
//! `ProducerIdSource`), never the same one twice, even across restarts.
//!
//! Ids are reserved in blocks of [`PRODUCER_ID_BLOCK_SIZE`] by a durable metadata record
//! (`MetadataRecord::ProducerIds`, Kafka's `ProducerIdsRecord`) naming the first id after the block;
//! the image keeps the highest such bound, so the next block starts after every id ever handed
//! out. Ids of a block not used before a restart are skipped, as in Kafka. The block in memory is
//! behind an async mutex: concurrent InitProducerId requests share one metadata write.

use std::sync::Arc;

use strom_coordinator::txn::{ProducerIdSource, SeamFuture, TxnError};
use tokio::sync::Mutex;

use crate::metadata::{MetadataRecord, Quorum, QuorumError};

/// Ids reserved per metadata write (Kafka's `ProducerIdsBlock.PRODUCER_ID_BLOCK_SIZE`).
pub const PRODUCER_ID_BLOCK_SIZE: i64 = 1000;

/// Why no producer id could be handed out.
#[derive(Debug, thiserror::Error)]
pub enum ProducerIdError {
    /// The reservation could not be made durable.
    #[error(transparent)]
    Metadata(#[from] QuorumError),
    /// Every id up to `i64::MAX` was handed out.
    #[error("producer ids exhausted")]
    Exhausted,
}

#[derive(Debug, Default)]
struct Block {
    next: i64,
    end: i64,
}

/// This broker's producer id allocator, over the metadata quorum.
#[derive(Debug)]
pub struct ProducerIdManager {
    quorum: Arc<Quorum>,
    broker_id: i32,
    block: Mutex<Block>,
}

impl ProducerIdManager {
    /// An allocator reserving blocks in `quorum`'s metadata log in the name of `broker_id`.
    pub fn new(quorum: Arc<Quorum>, broker_id: i32) -> Self {
        ProducerIdManager {
            quorum,
            broker_id,
            block: Mutex::default(),
        }
    }

    /// A fresh producer id; reserves a new block in the metadata log when the current one is used up.
    pub async fn generate(&self) -> Result<i64, ProducerIdError> {
        let broker_id = self.broker_id;
        let mut block = self.block.lock().await;
        if block.next >= block.end {
            let (reserved, _) = self
                .quorum
                .propose(|image| {
                    let start = image.next_producer_id.max(0);
                    match start.checked_add(PRODUCER_ID_BLOCK_SIZE) {
                        Some(end) => (
                            vec![MetadataRecord::ProducerIds {
                                broker_id,
                                next_producer_id: end,
                            }],
                            Some((start, end)),
                        ),
                        None => (Vec::new(), None),
                    }
                })
                .await?;
            let (start, end) = reserved.ok_or(ProducerIdError::Exhausted)?;
            tracing::info!(broker_id, start, end, "reserved a block of producer ids");
            *block = Block { next: start, end };
        }
        let id = block.next;
        block.next += 1;
        Ok(id)
    }
}

impl ProducerIdSource for ProducerIdManager {
    fn next_producer_id(&self) -> SeamFuture<'_, Result<i64, TxnError>> {
        Box::pin(async move {
            self.generate()
                .await
                .map_err(|e| TxnError::ProducerIdUnavailable(e.to_string()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ids_are_unique_across_blocks_and_restarts() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut seen = std::collections::BTreeSet::new();
        {
            let store = Quorum::start(crate::metadata::QuorumConfig::new(1, dir.path()))
                .await
                .expect("open");
            let ids = ProducerIdManager::new(store.clone(), 1);
            for _ in 0..(PRODUCER_ID_BLOCK_SIZE + 5) {
                assert!(seen.insert(ids.generate().await.expect("id")));
            }
            assert_eq!(store.image().next_producer_id, 2 * PRODUCER_ID_BLOCK_SIZE);
            // No clean shutdown of the log: the reservation must already be durable.
            store.shutdown().await;
        }
        let store = Quorum::start(crate::metadata::QuorumConfig::new(1, dir.path()))
            .await
            .expect("reopen");
        let ids = ProducerIdManager::new(store.clone(), 1);
        let next = ids.generate().await.expect("id");
        assert_eq!(next, 2 * PRODUCER_ID_BLOCK_SIZE);
        assert!(seen.iter().all(|s| *s < next));
    }
}
