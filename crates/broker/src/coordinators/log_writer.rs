//! [`InternalTopicWriter`]: the coordinators' `strom_coordinator::PartitionWriter` over the local
//! logs of one internal topic — `__consumer_offsets` for the group coordinators,
//! `__transaction_state` for the transaction coordinator. Which partitions are loaded is
//! `leadership`'s business.
//!
//! Records are written as one uncompressed v2 batch per append, through the same validation and
//! group commit as a Produce, as the partition's leader (`LocalLeaders::append_as_leader`: refused
//! once this node no longer leads it, NOT_COORDINATOR), and complete as an acks=all produce does
//! (`PendingAppend::wait_replicated`; a slow or shrunken ISR is COORDINATOR_NOT_AVAILABLE, as in
//! Kafka). TxnOffsetCommit's pending offsets are a transactional batch of the producer (its id
//! and epoch, the next sequence of that producer in the partition), resolved by the COMMIT/ABORT
//! marker the transaction coordinator writes there; replay reports both (`LogEntry`).

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record as KafkaRecord, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use strom_coordinator::{AppendFuture, LogEntry, PartitionWriter, Record, WriteError};
use strom_log::{
    now_ms, validate_batches, BatchRecords, BatchView, Batches, LogError, PartitionLog, ReadBound,
    RecordError,
};

use crate::local_leaders::{LeaderWriteError, LocalLeaders};
use crate::replication::AppendError;

/// How long a coordinator's own write waits for the in-sync replicas: Kafka's
/// `offsets.commit.timeout.ms` default.
pub(crate) const REPLICATION_TIMEOUT: Duration = Duration::from_secs(5);

/// `PartitionWriter` over the local logs of one internal topic.
#[derive(Debug)]
pub(crate) struct InternalTopicWriter {
    leaders: Arc<LocalLeaders>,
    topic: &'static str,
}

impl InternalTopicWriter {
    pub(crate) fn new(leaders: Arc<LocalLeaders>, topic: &'static str) -> Self {
        InternalTopicWriter { leaders, topic }
    }

    fn log(&self, partition: i32) -> Result<Arc<PartitionLog>, WriteError> {
        self.leaders
            .log(self.topic, partition)
            .ok_or(WriteError::NotAvailable(partition))
    }
}

fn storage(e: LogError) -> WriteError {
    match e {
        LogError::BatchTooLarge { .. } => WriteError::TooLarge,
        e => WriteError::Storage(Arc::new(e)),
    }
}

/// The producer of a transactional batch: id, epoch, first sequence.
type TxnProducer = (i64, i16, i32);

fn encode(records: Vec<Record>, txn: Option<TxnProducer>) -> Result<Bytes, WriteError> {
    let now = now_ms();
    let out: Vec<KafkaRecord> = records
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            let i = i32::try_from(i).unwrap_or(i32::MAX);
            let (producer_id, producer_epoch, sequence) = match txn {
                Some((pid, epoch, base)) => (pid, epoch, base.wrapping_add(i)),
                // The codec starts a new batch whenever offset - sequence changes; keep it
                // constant.
                None => (-1, -1, i - 1),
            };
            KafkaRecord {
                transactional: txn.is_some(),
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id,
                producer_epoch,
                timestamp_type: TimestampType::Creation,
                offset: i64::from(i),
                sequence,
                timestamp: now,
                key: r.key,
                value: r.value,
                headers: Default::default(),
            }
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &out,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .map_err(|e| WriteError::Storage(Arc::new(std::io::Error::other(e.to_string()))))?;
    Ok(buf.freeze())
}

impl InternalTopicWriter {
    async fn append_batch(
        &self,
        partition: i32,
        records: Vec<Record>,
        txn: Option<(i64, i16)>,
    ) -> Result<i64, WriteError> {
        let image = self.leaders.image();
        let build = |log: &PartitionLog| {
            // A transactional batch continues the producer's sequence in this partition (its
            // appends here are serial: one appender per partition, under the transaction's lock).
            let txn = txn.map(|(pid, epoch)| {
                let next = log
                    .producer_entry(pid)
                    .filter(|e| e.epoch == epoch)
                    .and_then(|e| e.last_seq())
                    .map_or(0, |s| strom_log::increment_sequence(s, 1));
                (pid, epoch, next)
            });
            let batch = encode(records, txn)?;
            validate_batches(batch, &log.config(), now_ms())
                .map_err(|e| WriteError::Storage(Arc::new(e)))
        };
        let pending = match self
            .leaders
            .append_as_leader(&image, self.topic, partition, build)
        {
            Ok(p) => p,
            Err(
                LeaderWriteError::NotHere(_) | LeaderWriteError::Append(AppendError::NotLeader),
            ) => return Err(WriteError::NotCoordinator(partition)),
            Err(LeaderWriteError::Build(e)) => return Err(e),
            Err(LeaderWriteError::Append(AppendError::Log(e))) => return Err(storage(e)),
            Err(LeaderWriteError::Append(_)) => return Err(WriteError::NotAvailable(partition)),
        };
        match pending.wait_replicated(REPLICATION_TIMEOUT).await {
            Ok(()) => Ok(pending.info().last_offset),
            Err(AppendError::Log(e)) => Err(storage(e)),
            // Kafka's mapping: a lost leadership is NOT_COORDINATOR, a slow or shrunken ISR
            // COORDINATOR_NOT_AVAILABLE.
            Err(AppendError::NotLeader) => Err(WriteError::NotCoordinator(partition)),
            Err(_) => Err(WriteError::NotAvailable(partition)),
        }
    }

    /// Every record and marker of a partition, oldest first.
    fn read_entries(&self, partition: i32) -> Result<Vec<LogEntry>, WriteError> {
        let log = self.log(partition)?;
        let mut out = Vec::new();
        let mut from = log.log_start_offset();
        loop {
            let info = log
                .read(from, 8 << 20, ReadBound::LogEnd, true)
                .map_err(storage)?;
            let Some(slice) = info.records else { break };
            let bytes = slice.read_to_vec().map_err(storage)?;
            let mut progressed = false;
            let limit = log.config().max_decompressed_bytes();
            for b in Batches::new(&bytes) {
                let Ok(b) = b else { break };
                if let Err(e) = entries_of(&b, from, limit, &mut out) {
                    // One bad batch must not cost every group of the partition: skip it, as
                    // Kafka's coordinator loader skips records it cannot read.
                    tracing::error!(topic = self.topic, partition, offset = b.base_offset(), error = %e, "skipping a coordinator batch that does not decode");
                }
                from = b.last_offset() + 1;
                progressed = true;
            }
            if !progressed {
                break;
            }
        }
        Ok(out)
    }
}

/// The records and transaction markers of one batch at or above `from`, appended to `out`; a
/// batch that does not decode adds nothing.
fn entries_of(
    b: &BatchView<'_>,
    from: i64,
    limit: usize,
    out: &mut Vec<LogEntry>,
) -> Result<(), RecordError> {
    let records = BatchRecords::new(*b, limit)?;
    let mut entries = Vec::new();
    for r in &records {
        let r = r?;
        if r.offset < from {
            continue;
        }
        if b.is_control() {
            // Key: version (i16), type (i16: 0 ABORT, 1 COMMIT).
            let kind = r
                .key
                .filter(|k| k.len() >= 4)
                .map(|k| i16::from_be_bytes([k[2], k[3]]));
            if let Some(kind @ (0 | 1)) = kind {
                entries.push(LogEntry::Marker {
                    producer_id: b.producer_id(),
                    commit: kind == 1,
                });
            }
            continue;
        }
        entries.push(LogEntry::Record {
            offset: r.offset,
            producer_id: (b.is_transactional() && b.producer_id() >= 0).then_some(b.producer_id()),
            record: Record {
                key: r.key.map(Bytes::copy_from_slice),
                value: r.value.map(Bytes::copy_from_slice),
            },
        });
    }
    out.append(&mut entries);
    Ok(())
}

impl PartitionWriter for InternalTopicWriter {
    fn append(&self, partition: i32, records: Vec<Record>) -> AppendFuture<'_> {
        Box::pin(self.append_batch(partition, records, None))
    }

    fn append_transactional(
        &self,
        partition: i32,
        producer_id: i64,
        producer_epoch: i16,
        records: Vec<Record>,
    ) -> AppendFuture<'_> {
        Box::pin(self.append_batch(partition, records, Some((producer_id, producer_epoch))))
    }

    fn read_all(&self, partition: i32) -> Result<Vec<Record>, WriteError> {
        Ok(self
            .read_entries(partition)?
            .into_iter()
            .filter_map(|e| match e {
                LogEntry::Record { record, .. } => Some(record),
                LogEntry::Marker { .. } => None,
            })
            .collect())
    }

    fn read_log(&self, partition: i32) -> Result<Vec<LogEntry>, WriteError> {
        self.read_entries(partition)
    }

    fn read_records(&self, partition: i32) -> Result<Vec<(i64, Record)>, WriteError> {
        Ok(self
            .read_entries(partition)?
            .into_iter()
            .filter_map(|e| match e {
                LogEntry::Record { record, offset, .. } => Some((offset, record)),
                LogEntry::Marker { .. } => None,
            })
            .collect())
    }

    /// Advances the log start offset (as DeleteRecords does; not checkpointed at once: a start
    /// offset lost to a crash only means a longer replay, never a wrong one).
    fn prune_before(&self, partition: i32, offset: i64) -> Result<(), WriteError> {
        self.log(partition)?
            .delete_records_before(offset)
            .map(drop)
            .map_err(storage)
    }
}
