//! The broker's side of the group coordinator: [`OffsetsTopicWriter`] implements
//! `strom_coordinator::PartitionWriter` over the partition logs of `__consumer_offsets` (and of
//! `__transaction_state` for the transaction coordinator), and [`coordinator_config`] reads the
//! coordinator's settings. Which partitions are loaded is `coordinator_leadership`'s business.
//!
//! Records are written as one uncompressed v2 batch per append, through the same validation and
//! group commit as a Produce, stamped with the partition's current leader epoch; an append is
//! refused (NOT_COORDINATOR) once this node no longer leads the partition, and completes as an
//! acks=all produce does (`leaders::wait_replicated`: durable, under the high watermark; a slow
//! or shrunken ISR is COORDINATOR_NOT_AVAILABLE, as in Kafka). TxnOffsetCommit's
//! pending offsets are a transactional batch of the producer (its id and epoch, the next
//! sequence of that producer in the partition), resolved by the COMMIT/ABORT marker the
//! transaction coordinator writes there; replay reports both (`LogEntry`).

use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record as KafkaRecord, RecordBatchDecoder, RecordBatchEncoder,
    RecordEncodeOptions, TimestampType,
};
use strom_coordinator::{
    AppendFuture, GroupCoordinatorConfig, LogEntry, PartitionWriter, Record, WriteError,
    OFFSETS_TOPIC,
};
use strom_log::{
    now_ms, validate_batches, Batches, LogError, PartitionLog, ReadBound, TopicPartition,
};

use crate::broker::Broker;
use crate::config::{BrokerConfig, BROKER_CONFIGS};
use crate::leaders::{check_in_sync, leader_of, wait_replicated, Incomplete, Leader};

/// `PartitionWriter` over the local logs of `__consumer_offsets` (or, built with
/// [`OffsetsTopicWriter::for_topic`], of another internal topic: `__transaction_state`). Holds
/// the broker weakly: the broker owns the coordinators that own this writer.
#[derive(Debug)]
pub(crate) struct OffsetsTopicWriter {
    broker: Weak<Broker>,
    topic: &'static str,
}

impl OffsetsTopicWriter {
    pub(crate) fn new(broker: Weak<Broker>) -> Self {
        Self::for_topic(broker, OFFSETS_TOPIC)
    }

    pub(crate) fn for_topic(broker: Weak<Broker>, topic: &'static str) -> Self {
        OffsetsTopicWriter { broker, topic }
    }

    fn broker(&self) -> Result<Arc<Broker>, WriteError> {
        self.broker.upgrade().ok_or(WriteError::Closed)
    }

    fn log(&self, broker: &Broker, partition: i32) -> Result<Arc<PartitionLog>, WriteError> {
        broker
            .replicas
            .log(&TopicPartition::new(self.topic, partition))
            .ok_or(WriteError::NotAvailable(partition))
    }

    /// The leader epoch to stamp, or NOT_COORDINATOR when this node no longer leads.
    fn leader_epoch(&self, broker: &Broker, partition: i32) -> Result<i32, WriteError> {
        let image = broker.metadata.image();
        match leader_of(broker, &image, self.topic, partition) {
            Leader::Here { epoch } => Ok(epoch),
            _ => Err(WriteError::NotCoordinator(partition)),
        }
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

impl OffsetsTopicWriter {
    async fn append_batch(
        &self,
        partition: i32,
        records: Vec<Record>,
        txn: Option<(i64, i16)>,
    ) -> Result<i64, WriteError> {
        let broker = self.broker()?;
        let leader_epoch = self.leader_epoch(&broker, partition)?;
        let log = self.log(&broker, partition)?;
        check_in_sync(&broker, &log).map_err(|_| WriteError::NotAvailable(partition))?;
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
        let validated = validate_batches(batch, &log.config(), now_ms())
            .map_err(|e| WriteError::Storage(Arc::new(e)))?;
        let info = log.append(&validated, leader_epoch).map_err(storage)?;
        match wait_replicated(&broker, &log, info.last_offset + 1, info.needs_flush).await {
            Ok(()) => Ok(info.last_offset),
            Err(Incomplete::Log(e)) => Err(storage(e)),
            // Kafka's mapping: a lost leadership is NOT_COORDINATOR, a slow or shrunken ISR
            // COORDINATOR_NOT_AVAILABLE.
            Err(_) => match self.leader_epoch(&broker, partition) {
                Ok(_) => Err(WriteError::NotAvailable(partition)),
                Err(e) => Err(e),
            },
        }
    }

    /// Every record and marker of a partition, oldest first.
    fn read_entries(&self, partition: i32) -> Result<Vec<LogEntry>, WriteError> {
        let log = self.log(&*self.broker()?, partition)?;
        let mut out = Vec::new();
        let mut from = log.log_start_offset();
        loop {
            let info = log
                .read(from, 8 << 20, ReadBound::LogEnd, true)
                .map_err(storage)?;
            let Some(slice) = info.records else { break };
            let bytes = slice.read_to_vec().map_err(storage)?;
            let mut progressed = false;
            for b in Batches::new(&bytes) {
                let Ok(b) = b else { break };
                let offset = b.base_offset();
                let mut raw = Bytes::copy_from_slice(b.as_bytes());
                let set =
                    RecordBatchDecoder::decode(&mut raw).map_err(|_| WriteError::Corrupt {
                        partition,
                        offset,
                        reason: "record batch does not decode",
                    })?;
                for r in set.records {
                    if r.offset < from {
                        continue;
                    }
                    if r.control {
                        // Key: version (i16), type (i16: 0 ABORT, 1 COMMIT).
                        let kind = r
                            .key
                            .as_ref()
                            .filter(|k| k.len() >= 4)
                            .map(|k| i16::from_be_bytes([k[2], k[3]]));
                        if let Some(kind @ (0 | 1)) = kind {
                            out.push(LogEntry::Marker {
                                producer_id: r.producer_id,
                                commit: kind == 1,
                            });
                        }
                        continue;
                    }
                    out.push(LogEntry::Record {
                        producer_id: (r.transactional && r.producer_id >= 0)
                            .then_some(r.producer_id),
                        record: Record {
                            key: r.key,
                            value: r.value,
                        },
                    });
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

impl PartitionWriter for OffsetsTopicWriter {
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
}

/// The coordinator's settings from the broker's config table.
pub(crate) fn coordinator_config(config: &BrokerConfig) -> GroupCoordinatorConfig {
    let get = |k: &str| -> i64 {
        config
            .explicit
            .get(k)
            .map(String::as_str)
            .or_else(|| {
                BROKER_CONFIGS
                    .iter()
                    .find(|d| d.name == k)
                    .and_then(|d| d.default)
            })
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    let ms = |v: i64| Duration::from_millis(u64::try_from(v).unwrap_or(0));
    GroupCoordinatorConfig {
        offsets_topic_partitions: i32::try_from(get("offsets.topic.num.partitions"))
            .unwrap_or(50)
            .max(1),
        offsets_retention: ms(get("offsets.retention.minutes").saturating_mul(60_000)),
        offsets_retention_check_interval: ms(get("offsets.retention.check.interval.ms").max(1)),
        initial_rebalance_delay: ms(get("group.initial.rebalance.delay.ms")),
        min_session_timeout_ms: i32::try_from(get("group.min.session.timeout.ms")).unwrap_or(6000),
        max_session_timeout_ms: i32::try_from(get("group.max.session.timeout.ms"))
            .unwrap_or(1_800_000),
        offset_metadata_max_bytes: usize::try_from(get("offset.metadata.max.bytes"))
            .unwrap_or(4096),
    }
}
