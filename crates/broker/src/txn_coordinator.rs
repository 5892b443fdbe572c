//! The broker's side of the transaction coordinator: [`LogMarkerWriter`] writes COMMIT/ABORT
//! control batches into the local partition logs, [`BrokerProducerIds`] lends the durable
//! producer-id allocator, and [`start_transaction_coordinator`] creates `__transaction_state`
//! (`transaction.state.log.num.partitions`, compacted) on first start and replays it.
//!
//! A marker is one control batch in Kafka's format: attributes transactional + control, the
//! producer's id and epoch, base sequence -1, one record whose key is (version 0: i16, type: i16
//! — 0 ABORT, 1 COMMIT) and whose value is (version 0: i16, coordinator epoch: i32). It goes
//! through the same validation, producer-state check (a marker with an older epoch is refused),
//! append and group commit as a Produce; `write_markers` completes once every marker is durable.
//! Single node: the coordinator calls the append path directly, no WriteTxnMarkers round trip.

use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record as KafkaRecord, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use strom_coordinator::txn::{
    ProducerIdSource, SeamFuture, TransactionCoordinatorConfig, TxnError, TxnMarker,
    TxnMarkerWriter, TRANSACTION_STATE_TOPIC,
};
use strom_coordinator::WriteError;
use strom_log::{now_ms, validate_control_batches, LogManager, TopicPartition};

use crate::broker::Broker;
use crate::config::{BrokerConfig, BROKER_CONFIGS};

/// Writes transaction markers into the local logs.
#[derive(Debug)]
pub(crate) struct LogMarkerWriter {
    logs: Arc<LogManager>,
}

impl LogMarkerWriter {
    pub(crate) fn new(logs: Arc<LogManager>) -> Self {
        LogMarkerWriter { logs }
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

impl LogMarkerWriter {
    /// Appends the marker to each partition, then waits until all are durable. Partitions not
    /// hosted here (deleted topics) are skipped.
    pub(crate) async fn write(&self, marker: &TxnMarker) -> Result<(), WriteError> {
        let batch = encode_marker(
            marker.producer_id,
            marker.producer_epoch,
            marker.coordinator_epoch,
            marker.commit,
        )?;
        let mut waits = Vec::new();
        for (topic, partition) in &marker.partitions {
            let Some(log) = self
                .logs
                .get(&TopicPartition::new(topic.clone(), *partition))
            else {
                tracing::warn!(
                    topic,
                    partition,
                    "skipping a transaction marker for a partition not hosted here"
                );
                continue;
            };
            let validated = validate_control_batches(batch.clone(), &log.config(), now_ms())
                .map_err(storage)?;
            let info = log.append(&validated, 0).map_err(storage)?;
            if info.needs_flush {
                waits.push((log, info.last_offset + 1));
            }
        }
        for (log, offset) in waits {
            log.wait_durable(offset).await.map_err(storage)?;
        }
        Ok(())
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

/// Creates `__transaction_state` if missing, then replays it into the coordinator.
pub(crate) async fn start_transaction_coordinator(broker: &Broker) -> Result<(), WriteError> {
    let partitions = broker.txn.config().partitions;
    if broker
        .ensure_internal_topic(TRANSACTION_STATE_TOPIC, partitions)
        .await
        .is_none()
    {
        return Err(WriteError::NotAvailable(0));
    }
    broker.txn.load()
}

#[cfg(test)]
mod tests {
    use super::*;
    use strom_log::{control_type, BatchView, ControlType};

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
        let a = encode_marker(42, 3, 0, false).expect("encode");
        assert_eq!(control_type(&a), Some(ControlType::Abort));
    }
}
