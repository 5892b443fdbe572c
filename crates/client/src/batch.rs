//! `ProducerBatch`: the records bound for one partition that go out as one v2 record batch, and
//! the completion every record's [`DeliveryFuture`] waits on.
//!
//! Records are kept as kafka-protocol `Record`s (key/value are refcounted `Bytes`, an empty header
//! map does not allocate) and encoded with `RecordBatchEncoder` only when the batch is sent. One
//! `watch` channel per batch carries the outcome to all its records, so a send allocates nothing
//! per record beyond its slot in the batch's `Vec`.

use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use indexmap::IndexMap;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    NO_PARTITION_LEADER_EPOCH, NO_PRODUCER_EPOCH, NO_PRODUCER_ID,
};
use tokio::sync::watch;

use crate::error::ClientError;

/// Fixed v2 batch header size; counted so `batch_size` bounds the encoded batch, as in Java.
pub(crate) const BATCH_OVERHEAD: usize = 61;

/// Outcome of a batch: the base offset (-1 with acks=0) or the error.
type Outcome = Option<Result<i64, ClientError>>;

/// Where a record was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMetadata {
    /// Topic.
    pub topic: Arc<str>,
    /// Partition.
    pub partition: i32,
    /// The record's offset; -1 with acks=0 (the broker does not answer).
    pub offset: i64,
    /// The record's timestamp as sent (CreateTime).
    pub timestamp: i64,
}

/// Resolves when the record's batch is acknowledged; see [`crate::Producer::send`].
#[derive(Debug)]
pub struct DeliveryFuture {
    rx: watch::Receiver<Outcome>,
    topic: Arc<str>,
    partition: i32,
    index: i64,
    timestamp: i64,
}

impl DeliveryFuture {
    /// Waits for the batch's outcome.
    pub async fn wait(mut self) -> Result<RecordMetadata, ClientError> {
        let outcome = match self.rx.wait_for(Option::is_some).await {
            Ok(outcome) => outcome.clone(),
            // The batch was dropped unsent: the producer is gone.
            Err(_) => return Err(ClientError::ProducerClosed),
        };
        match outcome {
            Some(Ok(base)) => Ok(RecordMetadata {
                topic: self.topic,
                partition: self.partition,
                offset: if base >= 0 { base + self.index } else { -1 },
                timestamp: self.timestamp,
            }),
            Some(Err(e)) => Err(e),
            None => Err(ClientError::ProducerClosed),
        }
    }
}

/// One record as handed to `send`.
#[derive(Debug)]
pub(crate) struct PendingRecord {
    pub(crate) key: Option<Bytes>,
    pub(crate) value: Option<Bytes>,
    pub(crate) headers: Vec<(String, Option<Bytes>)>,
    pub(crate) timestamp: i64,
}

impl PendingRecord {
    /// Upper-bound estimate of the encoded size (varint lengths and deltas at most 5 bytes each,
    /// plus attributes), cheap enough to compute per record.
    pub(crate) fn estimated_size(&self) -> usize {
        let key = self.key.as_ref().map_or(0, Bytes::len);
        let value = self.value.as_ref().map_or(0, Bytes::len);
        let headers: usize = self
            .headers
            .iter()
            .map(|(k, v)| 10 + k.len() + v.as_ref().map_or(0, Bytes::len))
            .sum();
        21 + 5 + key + 5 + value + 5 + headers
    }
}

/// Records for one partition, in send order.
#[derive(Debug)]
pub(crate) struct ProducerBatch {
    pub(crate) topic: Arc<str>,
    pub(crate) partition: i32,
    records: Vec<Record>,
    size: usize,
    pub(crate) created: Instant,
    /// Send attempts so far (retries after stale-leader errors).
    pub(crate) attempts: u32,
    done: watch::Sender<Outcome>,
}

impl ProducerBatch {
    #[cfg(test)]
    pub(crate) fn new(topic: Arc<str>, partition: i32) -> Self {
        Self::with_capacity(topic, partition, 0)
    }

    /// A batch with room for `records` records before its record list reallocates.
    pub(crate) fn with_capacity(topic: Arc<str>, partition: i32, records: usize) -> Self {
        let (done, _) = watch::channel(None);
        ProducerBatch {
            topic,
            partition,
            records: Vec::with_capacity(records),
            size: BATCH_OVERHEAD,
            created: Instant::now(),
            attempts: 0,
            done,
        }
    }

    /// Estimated encoded size so far.
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    pub(crate) fn record_count(&self) -> usize {
        self.records.len()
    }

    /// Whether a record of `record_size` fits under `batch_size`. An empty batch takes any record,
    /// so an oversized record still goes out (the broker judges it against max.message.bytes).
    pub(crate) fn has_room(&self, record_size: usize, batch_size: usize) -> bool {
        self.records.is_empty() || self.size + record_size <= batch_size
    }

    /// Appends a record and returns its future.
    pub(crate) fn append(&mut self, record: PendingRecord, record_size: usize) -> DeliveryFuture {
        let index = self.records.len() as i64;
        let headers: IndexMap<StrBytes, Option<Bytes>> = record
            .headers
            .into_iter()
            .map(|(k, v)| (StrBytes::from_string(k), v))
            .collect();
        self.records.push(Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
            producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            timestamp_type: TimestampType::Creation,
            offset: index,
            // The encoder cuts a new batch whenever `offset - sequence` changes, and derives the
            // batch's base sequence from the first record: `index - 1` keeps one batch and gives
            // the base sequence -1 (NO_SEQUENCE) of a non-idempotent producer.
            sequence: (index as i32).wrapping_sub(1),
            timestamp: record.timestamp,
            key: record.key,
            value: record.value,
            headers,
        });
        self.size += record_size;
        DeliveryFuture {
            rx: self.done.subscribe(),
            topic: self.topic.clone(),
            partition: self.partition,
            index,
            timestamp: record.timestamp,
        }
    }

    /// Encodes the records as one v2 record batch.
    pub(crate) fn encode(&self, compression: Compression) -> Result<Bytes, ClientError> {
        let mut buf = BytesMut::with_capacity(self.size);
        RecordBatchEncoder::encode(
            &mut buf,
            &self.records,
            &RecordEncodeOptions {
                version: 2,
                compression,
            },
        )
        .map_err(|e| ClientError::RecordBatch {
            topic: self.topic.to_string(),
            partition: self.partition,
            cause: Arc::from(Box::<dyn std::error::Error + Send + Sync>::from(e)),
        })?;
        Ok(buf.freeze())
    }

    /// Hands the outcome to every record's future.
    pub(crate) fn complete(self, outcome: Result<i64, ClientError>) {
        // No receivers left is fine: nobody kept the futures.
        let _ = self.done.send(Some(outcome));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::records::RecordBatchDecoder;

    fn record(value: &'static [u8]) -> PendingRecord {
        PendingRecord {
            key: None,
            value: Some(Bytes::from_static(value)),
            headers: Vec::new(),
            timestamp: 1_000,
        }
    }

    #[test]
    fn encodes_one_batch_with_no_sequence_and_decodes_back() {
        let mut batch = ProducerBatch::new(Arc::from("t"), 0);
        for i in 0..10 {
            let mut r = record(b"value");
            r.key = Some(Bytes::from(format!("k{i}")));
            r.timestamp = 1_000 + i;
            if i == 3 {
                r.headers = vec![("h".to_owned(), Some(Bytes::from_static(b"v")))];
            }
            let size = r.estimated_size();
            batch.append(r, size);
        }
        for compression in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let bytes = batch.encode(compression).unwrap();
            let info = RecordBatchDecoder::decode_batch_info(&mut bytes.clone()).unwrap();
            assert_eq!(info.len(), 1, "exactly one batch ({compression:?})");
            assert_eq!(info[0].record_count, 10);
            assert_eq!(info[0].base_sequence, -1);
            assert_eq!(info[0].producer_id, -1);
            assert_eq!(info[0].compression, compression);
            let set = RecordBatchDecoder::decode(&mut bytes.clone()).unwrap();
            assert_eq!(set.records.len(), 10);
            assert_eq!(set.records[9].offset, 9);
            assert_eq!(set.records[9].timestamp, 1_009);
            assert_eq!(set.records[3].key.as_deref(), Some(&b"k3"[..]));
            assert_eq!(set.records[3].headers.len(), 1);
            if compression == Compression::None {
                assert!(
                    bytes.len() <= batch.size(),
                    "estimate {} is an upper bound of {}",
                    batch.size(),
                    bytes.len()
                );
            }
        }
    }

    #[test]
    fn room_check_respects_batch_size_but_takes_a_first_oversized_record() {
        let mut batch = ProducerBatch::new(Arc::from("t"), 0);
        assert!(batch.has_room(1_000_000, 100), "empty batch takes anything");
        batch.append(record(b"x"), 50);
        assert!(!batch.has_room(50, 100), "61 + 50 + 50 > 100");
        assert!(batch.has_room(10, 200));
    }

    #[tokio::test]
    async fn futures_get_base_offset_plus_index_or_the_error() {
        let mut batch = ProducerBatch::new(Arc::from("t"), 2);
        let a = batch.append(record(b"a"), 10);
        let b = batch.append(record(b"b"), 10);
        batch.complete(Ok(100));
        assert_eq!(a.wait().await.unwrap().offset, 100);
        let b = b.wait().await.unwrap();
        assert_eq!((b.partition, b.offset), (2, 101));

        let mut batch = ProducerBatch::new(Arc::from("t"), 0);
        let c = batch.append(record(b"c"), 10);
        batch.complete(Err(ClientError::ProducerClosed));
        assert!(c.wait().await.is_err());

        let mut batch = ProducerBatch::new(Arc::from("t"), 0);
        let d = batch.append(record(b"d"), 10);
        drop(batch);
        assert!(matches!(d.wait().await, Err(ClientError::ProducerClosed)));

        let mut batch = ProducerBatch::new(Arc::from("t"), 0);
        let e = batch.append(record(b"e"), 10);
        batch.complete(Ok(-1));
        assert_eq!(e.wait().await.unwrap().offset, -1, "acks=0");
    }
}
