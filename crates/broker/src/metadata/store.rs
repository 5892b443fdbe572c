//! `MetadataStore`: the durable metadata log and its published image.
//!
//! Writes go through [`MetadataStore::propose`]: under one writer lock, a closure checks the
//! current image and returns the records to add; the store appends them as one record batch to
//! `__cluster_metadata-0` (fdatasync'd before anything is answered), replays them into a new image
//! and publishes it. Readers take `image()`, an `Arc` snapshot, and never wait for a writer.

use std::path::Path;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use parking_lot::RwLock;
use strom_log::{
    now_ms, validate_batches, Batches, LogConfig, LogError, LogManager, LogManagerConfig,
    PartitionLog, ReadBound, TopicPartition,
};

use super::{MetadataImage, MetadataRecord};

/// Why a metadata write failed.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// The metadata log could not be written or read.
    #[error("metadata log: {0}")]
    Log(#[from] LogError),
    /// A stored record did not decode.
    #[error("corrupt metadata record at offset {offset}: {reason}")]
    Corrupt {
        /// Offset of the batch.
        offset: i64,
        /// What failed.
        reason: String,
    },
}

/// The metadata log and image of this node.
#[derive(Debug)]
pub struct MetadataStore {
    logs: Arc<LogManager>,
    log: Arc<PartitionLog>,
    image: RwLock<Arc<MetadataImage>>,
    writer: tokio::sync::Mutex<()>,
    node_id: i32,
}

const METADATA_TOPIC: &str = "__cluster_metadata";

impl MetadataStore {
    /// Opens (or creates) the metadata log under `<dir>/metadata` and replays it.
    pub fn open(dir: &Path, node_id: i32) -> Result<MetadataStore, MetadataError> {
        let config = Arc::new(LogConfig::default());
        let c = config.clone();
        let logs = LogManager::open(LogManagerConfig::new(dir.join("metadata")), &move |_| {
            c.clone()
        })?;
        let log = logs.get_or_create(&TopicPartition::new(METADATA_TOPIC, 0), config)?;
        let mut image = MetadataImage::default();
        replay(&log, &mut image)?;
        Ok(MetadataStore {
            logs,
            log,
            image: RwLock::new(Arc::new(image)),
            writer: tokio::sync::Mutex::new(()),
            node_id,
        })
    }

    /// The active controller (one node: this one).
    pub fn controller_leader(&self) -> Option<i32> {
        Some(self.node_id)
    }

    /// Applies an ISR change a partition leader asks for, if the controller's rules allow it.
    pub async fn alter_partition(
        &self,
        topic_id: uuid::Uuid,
        partition: i32,
        req: strom_cluster::replication::AlterPartitionRequest,
    ) -> Result<
        Result<crate::metadata::PartitionImage, strom_cluster::replication::AlterPartitionError>,
        MetadataError,
    > {
        let (r, _) = self
            .propose(|image| {
                let Some(p) = image
                    .topic_by_id(&topic_id)
                    .and_then(|t| t.partitions.get(&partition))
                else {
                    return (
                        Vec::new(),
                        Err(strom_cluster::replication::AlterPartitionError::NotLeaderOrFollower),
                    );
                };
                match strom_cluster::replication::alter_partition(p, &req, &|_| true) {
                    Ok(next) if next == *p => (Vec::new(), Ok(next)),
                    Ok(next) => (
                        vec![MetadataRecord::Partition {
                            topic_id,
                            partition,
                            replicas: next.replicas.clone(),
                            isr: next.isr.clone(),
                            leader: next.leader,
                            leader_epoch: next.leader_epoch,
                            partition_epoch: next.partition_epoch,
                        }],
                        Ok(next),
                    ),
                    Err(e) => (Vec::new(), Err(e)),
                }
            })
            .await?;
        Ok(r)
    }

    /// The current image.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.image.read().clone()
    }

    /// Runs `decide` against the current image under the writer lock; appends the records it
    /// returns durably, publishes the new image, and returns the closure's value with it.
    pub async fn propose<T>(
        &self,
        decide: impl FnOnce(&MetadataImage) -> (Vec<MetadataRecord>, T),
    ) -> Result<(T, Arc<MetadataImage>), MetadataError> {
        let _w = self.writer.lock().await;
        let current = self.image();
        let (records, value) = decide(&current);
        if records.is_empty() {
            return Ok((value, current));
        }
        let batch = encode(&records)?;
        let validated = validate_batches(batch, &self.log.config(), now_ms()).map_err(|e| {
            MetadataError::Corrupt {
                offset: -1,
                reason: e.to_string(),
            }
        })?;
        let info = self.log.append(&validated, 0)?;
        self.log.wait_durable(info.last_offset + 1).await?;
        let mut next = (*current).clone();
        for r in &records {
            next.apply(r);
        }
        next.offset = info.last_offset + 1;
        let next = Arc::new(next);
        *self.image.write() = next.clone();
        Ok((value, next))
    }

    /// Clean shutdown of the metadata log.
    pub fn shutdown(&self) -> Result<(), MetadataError> {
        Ok(self.logs.shutdown()?)
    }
}

fn encode(records: &[MetadataRecord]) -> Result<Bytes, MetadataError> {
    let now = now_ms();
    let mut out = Vec::with_capacity(records.len());
    for (i, r) in records.iter().enumerate() {
        let value = serde_json::to_vec(r).map_err(|e| MetadataError::Corrupt {
            offset: -1,
            reason: e.to_string(),
        })?;
        let i = i as i32;
        out.push(Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i64::from(i),
            // The codec starts a new batch whenever offset - sequence changes; keep it constant.
            sequence: i - 1,
            timestamp: now,
            key: None,
            value: Some(Bytes::from(value)),
            headers: Default::default(),
        });
    }
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &out,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .map_err(|e| MetadataError::Corrupt {
        offset: -1,
        reason: e.to_string(),
    })?;
    Ok(buf.freeze())
}

fn replay(log: &PartitionLog, image: &mut MetadataImage) -> Result<(), MetadataError> {
    let mut from = log.log_start_offset();
    loop {
        let info = log.read(from, 1 << 20, ReadBound::LogEnd, true)?;
        let Some(slice) = info.records else { break };
        let bytes = slice.read_to_vec()?;
        let mut progressed = false;
        for b in Batches::new(&bytes) {
            let Ok(b) = b else { break };
            let offset = b.base_offset();
            let mut raw = Bytes::copy_from_slice(b.as_bytes());
            let set = RecordBatchDecoder::decode(&mut raw).map_err(|e| MetadataError::Corrupt {
                offset,
                reason: e.to_string(),
            })?;
            for r in &set.records {
                let value = r.value.as_deref().unwrap_or_default();
                let rec: MetadataRecord =
                    serde_json::from_slice(value).map_err(|e| MetadataError::Corrupt {
                        offset: r.offset,
                        reason: e.to_string(),
                    })?;
                image.apply(&rec);
            }
            from = b.last_offset() + 1;
            image.offset = from;
            progressed = true;
        }
        if !progressed {
            break;
        }
    }
    Ok(())
}
