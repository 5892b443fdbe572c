//! Turning one partition's Fetch `records` bytes into consumer records.
//!
//! The bytes are a sequence of v2 record batches, and the last one may be cut short (the broker
//! stops at `partition_max_bytes` without splitting cleanly), so this module walks the batch
//! headers itself — base offset at byte 0, length at byte 8, magic at 16, last offset delta at
//! 23 — and hands each complete batch to kafka-protocol's `RecordBatchDecoder`. A fetch from the
//! middle of a batch returns the whole batch, so records before the fetch offset are dropped;
//! control batches (transaction markers) are skipped but still advance the position.

use std::sync::Arc;

use bytes::{Buf, Bytes};
use kafka_protocol::records::{RecordBatchDecoder, TimestampType};

use crate::error::ClientError;

/// A record as returned by the consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRecord {
    /// Topic.
    pub topic: Arc<str>,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Timestamp in milliseconds since the epoch.
    pub timestamp: i64,
    /// Whether the timestamp is the producer's (CreateTime) or the broker's (LogAppendTime).
    pub timestamp_type: TimestampType,
    /// Key.
    pub key: Option<Bytes>,
    /// Value.
    pub value: Option<Bytes>,
    /// Headers, in order.
    pub headers: Vec<(String, Option<Bytes>)>,
}

/// What went wrong decoding fetched bytes.
#[derive(Debug)]
pub(crate) enum FetchDecodeError {
    /// Something not a v2 batch, or a batch the codec rejected (bad CRC, bad compression).
    Corrupt(Box<dyn std::error::Error + Send + Sync>),
    /// Data was returned but no complete batch: the batch is bigger than the fetch size.
    BatchTooLarge,
}

/// Records decoded from one partition's fetch data.
#[derive(Debug, Default)]
pub(crate) struct Decoded {
    pub(crate) records: Vec<ConsumerRecord>,
    /// The offset to fetch next, when at least one complete batch was seen.
    pub(crate) next_offset: Option<i64>,
}

const HEADER_PREFIX: usize = 12; // base offset (8) + batch length (4)
const MAGIC_AT: usize = 16;
const LAST_OFFSET_DELTA_AT: usize = 23;
const MIN_BATCH_HEADER: usize = 61;

/// Decodes every complete batch in `data`, keeping records at or after `fetch_offset`.
pub(crate) fn decode_partition(
    topic: &Arc<str>,
    partition: i32,
    data: &Bytes,
    fetch_offset: i64,
) -> Result<Decoded, FetchDecodeError> {
    let mut out = Decoded::default();
    let mut pos = 0usize;
    while data.len() - pos >= HEADER_PREFIX {
        let mut header = &data[pos..];
        let base_offset = header.get_i64();
        let Ok(batch_len) = usize::try_from(header.get_i32()) else {
            return Err(corrupt("negative batch length"));
        };
        let total = HEADER_PREFIX + batch_len;
        if total < MIN_BATCH_HEADER {
            return Err(corrupt("batch shorter than its header"));
        }
        if data.len() - pos < total {
            break; // the trailing partial batch
        }
        let batch = data.slice(pos..pos + total);
        pos += total;
        if batch[MAGIC_AT] != 2 {
            return Err(corrupt("unsupported message format (magic != 2)"));
        }
        let mut delta = &batch[LAST_OFFSET_DELTA_AT..LAST_OFFSET_DELTA_AT + 4];
        let last_offset = base_offset + i64::from(delta.get_i32());
        out.next_offset = Some(last_offset + 1);
        if last_offset < fetch_offset {
            continue; // wholly before the position: no need to decompress it
        }
        let set = RecordBatchDecoder::decode(&mut batch.clone())
            .map_err(|e| FetchDecodeError::Corrupt(e.into()))?;
        for r in set.records {
            if r.control || r.offset < fetch_offset {
                continue;
            }
            out.records.push(ConsumerRecord {
                topic: topic.clone(),
                partition,
                offset: r.offset,
                timestamp: r.timestamp,
                timestamp_type: r.timestamp_type,
                key: r.key,
                value: r.value,
                headers: r
                    .headers
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect(),
            });
        }
    }
    if out.next_offset.is_none() && !data.is_empty() {
        return Err(FetchDecodeError::BatchTooLarge);
    }
    Ok(out)
}

impl FetchDecodeError {
    /// The client error for bytes of `topic`-`partition` that could not be decoded.
    pub(crate) fn into_client_error(self, topic: &str, partition: i32) -> ClientError {
        let cause: Arc<dyn std::error::Error + Send + Sync> = match self {
            FetchDecodeError::Corrupt(e) => Arc::from(e),
            FetchDecodeError::BatchTooLarge => {
                Arc::from(Box::<dyn std::error::Error + Send + Sync>::from(
                    "record batch larger than max.partition.fetch.bytes",
                ))
            }
        };
        ClientError::RecordBatch {
            topic: topic.to_owned(),
            partition,
            cause,
        }
    }
}

fn corrupt(reason: &'static str) -> FetchDecodeError {
    FetchDecodeError::Corrupt(reason.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use indexmap::IndexMap;
    use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions};

    fn records(base: i64, n: i64, control: bool) -> Vec<Record> {
        (0..n)
            .map(|i| Record {
                transactional: control,
                control,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: if control { 7 } else { -1 },
                producer_epoch: if control { 0 } else { -1 },
                timestamp_type: TimestampType::Creation,
                offset: base + i,
                sequence: (i as i32) - 1,
                timestamp: 1_000 + i,
                key: None,
                value: Some(Bytes::from(format!("v{}", base + i))),
                headers: IndexMap::new(),
            })
            .collect()
    }

    fn encode(buf: &mut BytesMut, recs: &[Record], compression: Compression) {
        RecordBatchEncoder::encode(
            buf,
            recs,
            &RecordEncodeOptions {
                version: 2,
                compression,
            },
        )
        .unwrap();
    }

    #[test]
    fn skips_records_before_fetch_offset_and_stops_at_partial_batch() {
        let mut buf = BytesMut::new();
        encode(&mut buf, &records(10, 6, false), Compression::Lz4); // 10..=15
        encode(&mut buf, &records(16, 2, true), Compression::None); // control 16..=17
        encode(&mut buf, &records(18, 3, false), Compression::None); // 18..=20
        let complete = buf.len();
        encode(&mut buf, &records(21, 3, false), Compression::None);
        let data = buf.freeze().slice(..complete + 20); // last batch cut short
        let topic: Arc<str> = Arc::from("t");
        let d = decode_partition(&topic, 0, &data, 12).unwrap();
        let offsets: Vec<i64> = d.records.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, vec![12, 13, 14, 15, 18, 19, 20]);
        assert_eq!(d.next_offset, Some(21));
        assert_eq!(d.records[0].value.as_deref(), Some(&b"v12"[..]));
    }

    #[test]
    fn batch_wholly_before_position_only_advances() {
        let mut buf = BytesMut::new();
        encode(&mut buf, &records(0, 3, false), Compression::Gzip);
        let d = decode_partition(&Arc::from("t"), 0, &buf.freeze(), 5).unwrap();
        assert!(d.records.is_empty());
        assert_eq!(d.next_offset, Some(3));
    }

    #[test]
    fn empty_partial_and_corrupt_data() {
        let t: Arc<str> = Arc::from("t");
        let d = decode_partition(&t, 0, &Bytes::new(), 0).unwrap();
        assert!(d.records.is_empty() && d.next_offset.is_none());

        let mut buf = BytesMut::new();
        encode(&mut buf, &records(0, 3, false), Compression::None);
        let whole = buf.freeze();
        assert!(matches!(
            decode_partition(&t, 0, &whole.slice(..30), 0),
            Err(FetchDecodeError::BatchTooLarge)
        ));

        let mut bad = BytesMut::from(&whole[..]);
        bad[MAGIC_AT] = 1;
        assert!(matches!(
            decode_partition(&t, 0, &bad.freeze(), 0),
            Err(FetchDecodeError::Corrupt(_))
        ));

        let mut crc = BytesMut::from(&whole[..]);
        let last = crc.len() - 1;
        crc[last] ^= 0xff;
        assert!(
            decode_partition(&t, 0, &crc.freeze(), 0).is_err(),
            "CRC mismatch is detected"
        );
    }
}
