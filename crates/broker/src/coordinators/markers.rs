//! The broker's side of the transaction coordinator: [`LogMarkerWriter`] writes COMMIT/ABORT
//! control batches into the partitions of a transaction (appended here to the partitions this
//! node leads, sent as WriteTxnMarkers to the leaders of the others by `txn_marker_channel`),
//! [`append_marker`] is the local append WriteTxnMarkers shares, and [`BrokerProducerIds`] lends
//! the durable producer-id allocator.
//!
//! A marker is one control batch in Kafka's format: attributes transactional + control, the
//! producer's id and epoch, base sequence -1, one record whose key is (version 0: i16, type: i16
//! — 0 ABORT, 1 COMMIT) and whose value is (version 0: i16, coordinator epoch: i32). It goes
//! through the same validation, producer-state check (a marker with an older epoch is refused),
//! append and group commit as a Produce, stamped with the partition's leader epoch;
//! `write_markers` completes once every marker is durable and replicated.
//!
//! Retries follow Kafka's TransactionMarkerChannelManager: a partition whose leader is unknown,
//! moved (NOT_LEADER_OR_FOLLOWER) or unreachable is looked up again in a fresh image and retried
//! with backoff, until every marker is written, its topic is gone (skipped, as Kafka does), this
//! node stops coordinating the transaction (NOT_COORDINATOR: the new coordinator completes it),
//! or [`MARKER_RETRY_TIMEOUT`] passes (the transaction stays prepared; the producer's EndTxn
//! retry or the next load completes it).

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::records::{
    Compression, Record as KafkaRecord, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use strom_coordinator::txn::{
    ProducerIdSource, SeamFuture, TransactionCoordinatorConfig, TxnError, TxnMarker,
    TxnMarkerWriter,
};
use strom_coordinator::WriteError;
use strom_log::{now_ms, validate_control_batches, LogError, PartitionLog, TopicPartition};

use crate::broker::Broker;
use crate::config::{BrokerConfig, BROKER_CONFIGS};
use crate::handler::errors::{log_error_code, validation_error_code};
use crate::leaders::{check_in_sync, leader_of, wait_replicated, Incomplete, Leader};
use crate::metadata::MetadataImage;
use crate::txn_marker_channel::MarkerChannel;

/// How long one `write_markers` keeps retrying partitions whose leader is away.
pub(crate) const MARKER_RETRY_TIMEOUT: Duration = Duration::from_secs(30);
const BACKOFF_MIN: Duration = Duration::from_millis(20);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Writes transaction markers: locally where this node leads, by WriteTxnMarkers elsewhere.
#[derive(Debug)]
pub(crate) struct LogMarkerWriter {
    broker: Weak<Broker>,
    channel: MarkerChannel,
}

impl LogMarkerWriter {
    pub(crate) fn new(broker: Weak<Broker>, node_id: i32) -> Self {
        LogMarkerWriter {
            broker,
            channel: MarkerChannel::new(node_id),
        }
    }
}

fn storage(e: impl std::error::Error + Send + Sync + 'static) -> WriteError {
    WriteError::Storage(Arc::new(e))
}

/// One control batch: the marker of `m` for one partition.
pub(crate) fn encode_marker(
    producer_id: i64,
    producer_epoch: i16,
    coordinator_epoch: i32,
    commit: bool,
) -> Result<Bytes, WriteError> {
    let mut key = BytesMut::with_capacity(4);
    key.put_i16(0);
    key.put_i16(i16::from(commit));
    let mut value = BytesMut::with_capacity(6);
    value.put_i16(0);
    value.put_i32(coordinator_epoch);
    let record = KafkaRecord {
        transactional: true,
        control: true,
        delete_horizon: false,
        partition_leader_epoch: 0,
        producer_id,
        producer_epoch,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: now_ms(),
        key: Some(key.freeze()),
        value: Some(value.freeze()),
        headers: Default::default(),
    };
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        [&record],
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .map_err(|e| storage(std::io::Error::other(e.to_string())))?;
    Ok(buf.freeze())
}

/// Why a marker could not be appended here.
#[derive(Debug, thiserror::Error)]
pub(crate) enum MarkerAppendError {
    /// This node does not lead the partition.
    #[error("not the leader of the partition")]
    NotLeader,
    /// The topic or partition does not exist.
    #[error("unknown topic or partition")]
    Unknown,
    /// The control batch was refused by validation.
    #[error(transparent)]
    Invalid(#[from] strom_log::ValidationError),
    /// The log refused the append (producer fenced, storage).
    #[error(transparent)]
    Log(#[from] LogError),
    /// Too few in-sync replicas to take it.
    #[error("fewer in-sync replicas than min.insync.replicas")]
    NotEnoughReplicas,
}

impl MarkerAppendError {
    /// Kafka's error code for WriteTxnMarkers.
    pub(crate) fn code(&self) -> i16 {
        match self {
            MarkerAppendError::NotLeader => ResponseError::NotLeaderOrFollower.code(),
            MarkerAppendError::Unknown => ResponseError::UnknownTopicOrPartition.code(),
            MarkerAppendError::Invalid(e) => validation_error_code(e),
            MarkerAppendError::Log(e) => log_error_code(e),
            MarkerAppendError::NotEnoughReplicas => ResponseError::NotEnoughReplicas.code(),
        }
    }
}

/// A marker appended here, not yet complete.
#[derive(Debug)]
pub(crate) struct PendingMarker {
    log: Arc<PartitionLog>,
    end: i64,
    needs_flush: bool,
}

impl PendingMarker {
    /// Waits until the marker is durable and replicated (acks=all).
    pub(crate) async fn wait(self, broker: &Broker) -> Result<(), Incomplete> {
        wait_replicated(broker, &self.log, self.end, self.needs_flush).await
    }
}

/// Appends the control batch `batch` to `topic`-`partition` if this node leads it in `image`,
/// with the partition's leader epoch. Runs in request order (phase one); await the result.
pub(crate) fn append_marker(
    broker: &Broker,
    image: &MetadataImage,
    topic: &str,
    partition: i32,
    batch: &Bytes,
) -> Result<PendingMarker, MarkerAppendError> {
    let epoch = match leader_of(broker, image, topic, partition) {
        Leader::Here { epoch } => epoch,
        Leader::Unknown => return Err(MarkerAppendError::Unknown),
        Leader::Remote { .. } | Leader::Unavailable => return Err(MarkerAppendError::NotLeader),
    };
    let log = broker
        .replicas
        .log(&TopicPartition::new(topic, partition))
        .ok_or(MarkerAppendError::NotLeader)?;
    check_in_sync(broker, &log).map_err(|_| MarkerAppendError::NotEnoughReplicas)?;
    let validated = validate_control_batches(batch.clone(), &log.config(), now_ms())?;
    let info = log.append(&validated, epoch)?;
    Ok(PendingMarker {
        log,
        end: info.last_offset + 1,
        needs_flush: info.needs_flush,
    })
}

impl LogMarkerWriter {
    /// Writes the marker to every partition of `marker` (see the module docs for retries).
    pub(crate) async fn write(&self, marker: &TxnMarker) -> Result<(), WriteError> {
        let batch = encode_marker(
            marker.producer_id,
            marker.producer_epoch,
            marker.coordinator_epoch,
            marker.commit,
        )?;
        let started = tokio::time::Instant::now();
        let mut backoff = BACKOFF_MIN;
        let mut todo = marker.partitions.clone();
        loop {
            let broker = self.broker.upgrade().ok_or(WriteError::Closed)?;
            let retry = self.write_once(&broker, marker, &batch, todo).await?;
            if retry.is_empty() {
                return Ok(());
            }
            let txn_partition = broker.txn.partition_for(&marker.transactional_id);
            if broker.txn.check_owned(&marker.transactional_id).is_err() {
                return Err(WriteError::NotCoordinator(txn_partition));
            }
            if started.elapsed() >= MARKER_RETRY_TIMEOUT {
                tracing::warn!(transactional_id = %marker.transactional_id, partitions = ?retry, "transaction markers not written in time; the transaction stays prepared");
                return Err(WriteError::NotAvailable(txn_partition));
            }
            drop(broker);
            tracing::debug!(transactional_id = %marker.transactional_id, partitions = ?retry, "retrying transaction markers");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(BACKOFF_MAX);
            todo = retry;
        }
    }

    /// One round over `todo` against the current image; returns the partitions to retry.
    async fn write_once(
        &self,
        broker: &Broker,
        marker: &TxnMarker,
        batch: &Bytes,
        todo: Vec<(String, i32)>,
    ) -> Result<Vec<(String, i32)>, WriteError> {
        let image = broker.metadata.image();
        let mut retry = Vec::new();
        let mut local = Vec::new();
        let mut remote: BTreeMap<i32, (String, Vec<(String, i32)>)> = BTreeMap::new();
        for (topic, partition) in todo {
            match leader_of(broker, &image, &topic, partition) {
                Leader::Unknown => {
                    tracing::warn!(
                        topic,
                        partition,
                        "skipping a transaction marker for a partition that no longer exists"
                    );
                }
                Leader::Unavailable => retry.push((topic, partition)),
                Leader::Here { .. } => {
                    match append_marker(broker, &image, &topic, partition, batch) {
                        Ok(p) => local.push(((topic, partition), p)),
                        // Leadership or the topic changed since the image was read.
                        Err(
                            MarkerAppendError::NotLeader
                            | MarkerAppendError::Unknown
                            | MarkerAppendError::NotEnoughReplicas
                            | MarkerAppendError::Log(LogError::Closed(_)),
                        ) => retry.push((topic, partition)),
                        Err(e) => return Err(storage(e)),
                    }
                }
                Leader::Remote { id, host, port } => remote
                    .entry(id)
                    .or_insert_with(|| (format!("{host}:{port}"), Vec::new()))
                    .1
                    .push((topic, partition)),
            }
        }
        // The local appends are flushing while the remote leaders answer.
        retry.extend(self.channel.send(marker, remote).await?);
        for (tp, p) in local {
            match p.wait(broker).await {
                Ok(()) => {}
                Err(Incomplete::Log(e)) => return Err(storage(e)),
                // Slow or shrunken ISR, or leadership moved meanwhile: look again.
                Err(_) => retry.push(tp),
            }
        }
        Ok(retry)
    }
}

impl TxnMarkerWriter for LogMarkerWriter {
    fn write_markers(&self, marker: TxnMarker) -> SeamFuture<'_, Result<(), WriteError>> {
        Box::pin(async move { self.write(&marker).await })
    }
}

/// The broker's producer-id allocator, for the coordinator (a weak handle: the broker owns the
/// coordinator).
#[derive(Debug)]
pub(crate) struct BrokerProducerIds(pub(crate) Weak<Broker>);

impl ProducerIdSource for BrokerProducerIds {
    fn next_producer_id(&self) -> SeamFuture<'_, Result<i64, TxnError>> {
        Box::pin(async move {
            let broker = self.0.upgrade().ok_or(TxnError::CoordinatorNotAvailable)?;
            broker
                .producer_ids
                .generate(&broker.metadata, broker.config.node_id)
                .await
                .map_err(|e| TxnError::ProducerIdUnavailable(e.to_string()))
        })
    }
}

/// The coordinator's settings from the broker's config table.
pub(crate) fn txn_config(config: &BrokerConfig) -> TransactionCoordinatorConfig {
    let get = |k: &str| -> Option<i64> {
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
    };
    let d = TransactionCoordinatorConfig::default();
    TransactionCoordinatorConfig {
        partitions: get("transaction.state.log.num.partitions")
            .and_then(|v| i32::try_from(v).ok())
            .unwrap_or(d.partitions)
            .max(1),
        max_timeout_ms: get("transaction.max.timeout.ms")
            .and_then(|v| i32::try_from(v).ok())
            .unwrap_or(d.max_timeout_ms),
        abort_check_interval: get("transaction.abort.timed.out.transaction.cleanup.interval.ms")
            .and_then(|v| u64::try_from(v).ok())
            .map_or(d.abort_check_interval, |ms| {
                Duration::from_millis(ms.max(1))
            }),
        transactional_id_expiration_ms: get("transactional.id.expiration.ms")
            .unwrap_or(d.transactional_id_expiration_ms)
            .max(1),
    }
}

#[cfg(test)]
#[path = "txn_marker_tests.rs"]
mod marker_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use strom_log::{control_type, BatchView, ControlType, ProducerBatch};

    #[test]
    fn markers_are_control_batches_in_kafka_format() {
        let b = encode_marker(42, 3, 0, true).expect("encode");
        let v = BatchView::parse(&b).expect("parse");
        assert!(v.is_control() && v.is_transactional());
        assert_eq!(
            (v.producer_id(), v.producer_epoch(), v.base_sequence()),
            (42, 3, -1)
        );
        assert_eq!(control_type(&b), Some(ControlType::Commit));
        let a = encode_marker(42, 3, 7, false).expect("encode");
        assert_eq!(control_type(&a), Some(ControlType::Abort));
        // The coordinator epoch in the marker's value is what partitions fence zombies by.
        let p = ProducerBatch::from_view(&BatchView::parse(&a).expect("parse"));
        assert_eq!(
            (p.control, p.coordinator_epoch),
            (Some(ControlType::Abort), 7)
        );
    }
}
