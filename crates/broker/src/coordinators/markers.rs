//! [`MarkerWriter`]: the broker's side of the transaction coordinator's markers — one round of
//! COMMIT/ABORT control batches into the partitions of a transaction: appended here to the
//! partitions this node leads, sent as WriteTxnMarkers to the leaders of the others by
//! `marker_channel`. [`append_marker`] is the local append, shared with WriteTxnMarkers.
//!
//! A marker is one control batch in Kafka's format: attributes transactional + control, the
//! producer's id and epoch, base sequence -1, one record whose key is (version 0: i16, type: i16
//! — 0 ABORT, 1 COMMIT) and whose value is (version 0: i16, coordinator epoch: i32). It goes
//! through the same validation, producer-state check (a marker with an older epoch is refused),
//! append and group commit as a Produce, as the partition's leader; a round completes once every
//! marker it wrote is durable and replicated.
//!
//! A round answers which partitions to try again (leader unknown, moved, not ready, or
//! unreachable); a partition whose topic is gone is skipped, as Kafka does. The retrying —
//! backoff, giving up when this node stops coordinating the transaction — is the coordinator's
//! (`strom_coordinator::txn`), as Kafka's TransactionMarkerChannelManager is.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record as KafkaRecord, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use strom_coordinator::txn::{SeamFuture, TxnMarker, TxnMarkerWriter};
use strom_coordinator::WriteError;
use strom_log::{now_ms, validate_control_batches, LogError, ValidationError};

use super::log_writer::REPLICATION_TIMEOUT;
use super::marker_channel::MarkerChannel;
use crate::local_leaders::{Leader, LeaderWriteError, LocalLeaders};
use crate::metadata::MetadataImage;
use crate::replication::{AppendError, PendingAppend};

/// Writes transaction markers: locally where this node leads, by WriteTxnMarkers elsewhere.
#[derive(Debug)]
pub(crate) struct MarkerWriter {
    leaders: Arc<LocalLeaders>,
    channel: MarkerChannel,
}

impl MarkerWriter {
    pub(crate) fn new(leaders: Arc<LocalLeaders>) -> Self {
        let channel = MarkerChannel::new(leaders.node_id(), leaders.inter_broker_security());
        MarkerWriter { leaders, channel }
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

/// Appends the control batch `batch` to `topic`-`partition` if this node leads it in `image`.
/// Runs in request order (phase one); await `wait_replicated` on the result.
pub(crate) fn append_marker(
    leaders: &LocalLeaders,
    image: &MetadataImage,
    topic: &str,
    partition: i32,
    batch: &Bytes,
) -> Result<PendingAppend, LeaderWriteError<ValidationError>> {
    leaders.append_as_leader(image, topic, partition, |log| {
        validate_control_batches(batch.clone(), &log.config(), now_ms())
    })
}

impl MarkerWriter {
    /// One round over `marker.partitions` against the current image; returns the partitions
    /// to try again.
    pub(crate) async fn write_round(
        &self,
        marker: &TxnMarker,
    ) -> Result<Vec<(String, i32)>, WriteError> {
        let batch = encode_marker(
            marker.producer_id,
            marker.producer_epoch,
            marker.coordinator_epoch,
            marker.commit,
        )?;
        let image = self.leaders.image();
        let mut retry = Vec::new();
        let mut local = Vec::new();
        let mut remote: BTreeMap<i32, (String, Vec<(String, i32)>)> = BTreeMap::new();
        for (topic, partition) in marker.partitions.iter().cloned() {
            match self.leaders.leader_of(&image, &topic, partition) {
                Leader::Unknown => {
                    tracing::warn!(
                        topic,
                        partition,
                        "skipping a transaction marker for a partition that no longer exists"
                    );
                }
                Leader::Unavailable => retry.push((topic, partition)),
                Leader::Here { .. } => {
                    match append_marker(&self.leaders, &image, &topic, partition, &batch) {
                        Ok(p) => local.push(((topic, partition), p)),
                        // Leadership or the topic changed since the image was read, or the ISR
                        // is too small for now.
                        Err(
                            LeaderWriteError::NotHere(_)
                            | LeaderWriteError::Append(
                                AppendError::NotLeader
                                | AppendError::NotEnoughReplicas
                                | AppendError::Log(LogError::Closed(_)),
                            ),
                        ) => retry.push((topic, partition)),
                        Err(e) => return Err(storage(e)),
                    }
                }
                Leader::Remote { id } => {
                    let listener = self.leaders.inter_broker_listener();
                    match self.leaders.endpoint(&image, id, listener) {
                        Some((host, port)) => remote
                            .entry(id)
                            .or_insert_with(|| (format!("{host}:{port}"), Vec::new()))
                            .1
                            .push((topic, partition)),
                        None => retry.push((topic, partition)),
                    }
                }
            }
        }
        // The local appends are flushing while the remote leaders answer.
        retry.extend(self.channel.send(marker, remote).await?);
        for (tp, p) in local {
            match p.wait_replicated(REPLICATION_TIMEOUT).await {
                Ok(()) => {}
                Err(AppendError::Log(e)) => return Err(storage(e)),
                // Slow or shrunken ISR, or leadership moved meanwhile: look again.
                Err(_) => retry.push(tp),
            }
        }
        Ok(retry)
    }
}

impl TxnMarkerWriter for MarkerWriter {
    fn write_markers(
        &self,
        marker: TxnMarker,
    ) -> SeamFuture<'_, Result<Vec<(String, i32)>, WriteError>> {
        Box::pin(async move { self.write_round(&marker).await })
    }
}

#[cfg(test)]
#[path = "marker_tests.rs"]
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
