//! `__transaction_state` records in Kafka's own schemas (`TransactionLogKey` v0,
//! `TransactionLogValue` v0 and v1), so Kafka's tools can read a Strom log and the other way round.
//!
//! ```text
//! key:      version: i16 (= 0), transactional_id: string (i16 length + UTF-8)
//! value v0: version: i16 (= 0), producer_id: i64, producer_epoch: i16, timeout_ms: i32,
//!           status: i8, partitions: nullable array (i32 count) of
//!             { topic: string, partition_ids: array (i32 count) of i32 },
//!           last_update_ms: i64, start_ms: i64
//! value v1: the same fields, flexible: arrays and strings compact (unsigned varint length + 1,
//!           0 = null), a tagged-field section after each partition entry and after the value;
//!           the value's tags (each written only when not its default):
//!             0: previous_producer_id i64 (-1), 1: next_producer_id i64 (-1),
//!             2: client_transaction_version i16 (0)
//! ```
//!
//! A state is written as v0 whenever v0 holds it exactly (the three tagged fields at their
//! defaults — every Transactions V1 state), so V1 logs stay readable by Kafka before 4.0 and
//! byte-for-byte what they were; a Transactions V2 state (or one remembering a previous/next
//! producer id) is written as v1. Both versions are read, v1 with its tags; unknown tags are
//! skipped. A null value (tombstone) removes the transactional id.

use std::collections::BTreeSet;

use bytes::{BufMut, Bytes, BytesMut};

use super::state::{TxnMetadata, TxnState};
use crate::writer::PartitionWriter;
use crate::Record;

/// A decoded record: the id and its metadata (`None` = tombstone).
pub(crate) type TxnRecord = (String, Option<TxnMetadata>);

fn put_str(b: &mut BytesMut, s: &str) {
    let len = i16::try_from(s.len()).unwrap_or(i16::MAX);
    b.put_i16(len);
    b.put_slice(&s.as_bytes()[..len as usize]);
}

fn put_uvarint(b: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        b.put_u8((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    b.put_u8(v as u8);
}

/// A compact (v1) length: `len + 1`.
fn put_compact_len(b: &mut BytesMut, len: usize) {
    put_uvarint(b, u64::try_from(len).unwrap_or(u64::MAX - 1) + 1);
}

fn put_compact_str(b: &mut BytesMut, s: &str) {
    // Same bound as `put_str`: topic names are far shorter.
    let len = s.len().min(i16::MAX as usize);
    put_compact_len(b, len);
    b.put_slice(&s.as_bytes()[..len]);
}

/// True if `m` needs value v1: one of the fields only v1 carries is not at its default.
fn needs_v1(m: &TxnMetadata) -> bool {
    m.client_transaction_version != 0 || m.previous_producer_id != -1 || m.next_producer_id != -1
}

/// Encodes the state of one transactional id (value v0 if that holds it exactly, else v1).
pub(crate) fn encode(m: &TxnMetadata) -> Record {
    let mut k = BytesMut::new();
    k.put_i16(0);
    put_str(&mut k, &m.transactional_id);
    let v = if needs_v1(m) {
        encode_v1(m)
    } else {
        encode_v0(m)
    };
    Record {
        key: Some(k.freeze()),
        value: Some(v.freeze()),
    }
}

/// The partitions grouped by topic (the set is sorted, so each topic's run is contiguous).
fn by_topic(m: &TxnMetadata) -> Vec<(&str, Vec<i32>)> {
    let mut by_topic: Vec<(&str, Vec<i32>)> = Vec::new();
    for (t, p) in &m.partitions {
        match by_topic.last_mut() {
            Some((last, ps)) if *last == t.as_str() => ps.push(*p),
            _ => by_topic.push((t.as_str(), vec![*p])),
        }
    }
    by_topic
}

fn encode_v0(m: &TxnMetadata) -> BytesMut {
    let mut v = BytesMut::new();
    v.put_i16(0);
    v.put_i64(m.producer_id);
    v.put_i16(m.producer_epoch);
    v.put_i32(m.timeout_ms);
    v.put_i8(m.state.code());
    let topics = by_topic(m);
    v.put_i32(i32::try_from(topics.len()).unwrap_or(i32::MAX));
    for (t, ps) in topics {
        put_str(&mut v, t);
        v.put_i32(i32::try_from(ps.len()).unwrap_or(i32::MAX));
        for p in ps {
            v.put_i32(p);
        }
    }
    v.put_i64(m.last_update_ms);
    v.put_i64(m.start_ms);
    v
}

fn encode_v1(m: &TxnMetadata) -> BytesMut {
    let mut v = BytesMut::new();
    v.put_i16(1);
    v.put_i64(m.producer_id);
    v.put_i16(m.producer_epoch);
    v.put_i32(m.timeout_ms);
    v.put_i8(m.state.code());
    let topics = by_topic(m);
    put_compact_len(&mut v, topics.len());
    for (t, ps) in topics {
        put_compact_str(&mut v, t);
        put_compact_len(&mut v, ps.len());
        for p in ps {
            v.put_i32(p);
        }
        put_uvarint(&mut v, 0); // the entry's tagged fields: none
    }
    v.put_i64(m.last_update_ms);
    v.put_i64(m.start_ms);
    // Tagged fields in ascending tag order, each only when not its default (as Kafka writes).
    let mut tags: Vec<(u64, BytesMut)> = Vec::new();
    if m.previous_producer_id != -1 {
        let mut d = BytesMut::new();
        d.put_i64(m.previous_producer_id);
        tags.push((0, d));
    }
    if m.next_producer_id != -1 {
        let mut d = BytesMut::new();
        d.put_i64(m.next_producer_id);
        tags.push((1, d));
    }
    if m.client_transaction_version != 0 {
        let mut d = BytesMut::new();
        d.put_i16(m.client_transaction_version);
        tags.push((2, d));
    }
    put_uvarint(&mut v, tags.len() as u64);
    for (tag, d) in tags {
        put_uvarint(&mut v, tag);
        put_uvarint(&mut v, d.len() as u64);
        v.put_slice(&d);
    }
    v
}

/// The tombstone (null value) removing a transactional id.
pub(crate) fn tombstone(transactional_id: &str) -> Record {
    let mut k = BytesMut::new();
    k.put_i16(0);
    put_str(&mut k, transactional_id);
    Record {
        key: Some(k.freeze()),
        value: None,
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], &'static str> {
        let (h, rest) = self.0.split_first_chunk::<N>().ok_or("truncated")?;
        self.0 = rest;
        Ok(*h)
    }
    fn i8(&mut self) -> Result<i8, &'static str> {
        Ok(i8::from_be_bytes(self.take()?))
    }
    fn i16(&mut self) -> Result<i16, &'static str> {
        Ok(i16::from_be_bytes(self.take()?))
    }
    fn i32(&mut self) -> Result<i32, &'static str> {
        Ok(i32::from_be_bytes(self.take()?))
    }
    fn i64(&mut self) -> Result<i64, &'static str> {
        Ok(i64::from_be_bytes(self.take()?))
    }
    fn bytes(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        if self.0.len() < n {
            return Err("truncated");
        }
        let (h, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(h)
    }
    fn string(&mut self) -> Result<String, &'static str> {
        let n = usize::try_from(self.i16()?).map_err(|_| "negative string length")?;
        String::from_utf8(self.bytes(n)?.to_vec()).map_err(|_| "string is not UTF-8")
    }
    fn uvarint(&mut self) -> Result<u64, &'static str> {
        let mut v = 0u64;
        for i in 0..10 {
            let b = self.i8()? as u8;
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("varint too long")
    }
    fn compact_len(&mut self) -> Result<Option<usize>, &'static str> {
        let n = self.uvarint()?;
        if n == 0 {
            return Ok(None);
        }
        usize::try_from(n - 1)
            .map(Some)
            .map_err(|_| "length too large")
    }
    fn compact_string(&mut self) -> Result<String, &'static str> {
        let n = self.compact_len()?.ok_or("null string")?;
        String::from_utf8(self.bytes(n)?.to_vec()).map_err(|_| "string is not UTF-8")
    }
    /// A tagged-field section: every (tag, data) in it.
    fn tags(&mut self) -> Result<Vec<(u64, &'a [u8])>, &'static str> {
        let n = self.uvarint()?;
        let mut out = Vec::new();
        for _ in 0..n {
            let tag = self.uvarint()?;
            let len = usize::try_from(self.uvarint()?).map_err(|_| "tag too large")?;
            out.push((tag, self.bytes(len)?));
        }
        Ok(out)
    }
}

/// The whole of a tagged field's data as one fixed-size value.
fn exact<const N: usize>(data: &[u8]) -> Result<[u8; N], &'static str> {
    <[u8; N]>::try_from(data).map_err(|_| "tagged field of the wrong size")
}

/// Decodes a stored record of `__transaction_state`.
pub(crate) fn decode(r: &Record) -> Result<TxnRecord, &'static str> {
    let key = r.key.as_ref().ok_or("record without a key")?;
    let mut k = Reader(key);
    if k.i16()? != 0 {
        return Err("unknown key version");
    }
    let id = k.string()?;
    let Some(value) = &r.value else {
        return Ok((id, None));
    };
    Ok((id.clone(), Some(decode_value(id, value)?)))
}

fn decode_value(transactional_id: String, value: &Bytes) -> Result<TxnMetadata, &'static str> {
    let mut v = Reader(value);
    let version = v.i16()?;
    if !(0..=1).contains(&version) {
        return Err("unknown value version");
    }
    let flexible = version >= 1;
    let producer_id = v.i64()?;
    let producer_epoch = v.i16()?;
    let timeout_ms = v.i32()?;
    let state = TxnState::from_code(v.i8()?).ok_or("unknown transaction status")?;
    let mut partitions = BTreeSet::new();
    let topics = if flexible {
        v.compact_len()?
    } else {
        usize::try_from(v.i32()?).ok()
    };
    for _ in 0..topics.unwrap_or(0) {
        let topic = if flexible {
            v.compact_string()?
        } else {
            v.string()?
        };
        let n = if flexible {
            v.compact_len()?.unwrap_or(0)
        } else {
            usize::try_from(v.i32()?).map_err(|_| "negative partition count")?
        };
        for _ in 0..n {
            partitions.insert((topic.clone(), v.i32()?));
        }
        if flexible {
            v.tags()?; // the entry's tagged fields: none known
        }
    }
    let last_update_ms = v.i64()?;
    let start_ms = v.i64()?;
    // v0 has no tags: the defaults. v1: the known tags; unknown ones are skipped.
    let mut previous_producer_id = -1;
    let mut next_producer_id = -1;
    let mut client_transaction_version = 0;
    if flexible {
        for (tag, data) in v.tags()? {
            match tag {
                0 => previous_producer_id = i64::from_be_bytes(exact(data)?),
                1 => next_producer_id = i64::from_be_bytes(exact(data)?),
                2 => client_transaction_version = i16::from_be_bytes(exact(data)?),
                _ => {}
            }
        }
    }
    Ok(TxnMetadata {
        transactional_id,
        producer_id,
        producer_epoch,
        timeout_ms,
        state,
        partitions,
        last_update_ms,
        start_ms,
        // Set by the coordinator when it installs the loaded partition.
        coordinator_epoch: 0,
        client_transaction_version,
        previous_producer_id,
        next_producer_id,
        // Not stored (as Kafka's lastProducerEpoch).
        last_producer_epoch: -1,
    })
}

/// Every record of one partition of `__transaction_state`, decoded; undecodable ones are
/// skipped with a warning (one bad record must not stop the coordinator).
pub(crate) fn read_partition(
    writer: &dyn PartitionWriter,
    partition: i32,
) -> Result<Vec<TxnRecord>, crate::WriteError> {
    let mut out = Vec::new();
    for r in writer.read_all(partition)? {
        match decode(&r) {
            Ok(x) => out.push(x),
            Err(reason) => {
                tracing::warn!(
                    partition,
                    reason,
                    "skipping undecodable __transaction_state record"
                )
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(state: TxnState) -> TxnMetadata {
        TxnMetadata {
            transactional_id: "tx-1".into(),
            producer_id: 7,
            producer_epoch: 3,
            timeout_ms: 60_000,
            state,
            partitions: [
                ("a".to_string(), 0),
                ("a".to_string(), 2),
                ("b".to_string(), 1),
            ]
            .into_iter()
            .collect(),
            last_update_ms: 10,
            start_ms: 5,
            coordinator_epoch: 0,
            client_transaction_version: 0,
            previous_producer_id: -1,
            next_producer_id: -1,
            last_producer_epoch: -1,
        }
    }

    #[test]
    fn round_trips_in_kafka_v0_layout() {
        let m = sample(TxnState::Ongoing);
        let r = encode(&m);
        let v = r.value.clone().expect("value");
        // version, pid, epoch, timeout, status
        assert_eq!(&v[0..2], &[0, 0]);
        assert_eq!(v[16], 1);
        let (id, back) = decode(&r).expect("decode");
        assert_eq!(id, "tx-1");
        assert_eq!(back, Some(m));
    }

    /// A V2 state is written as v1 with its three tags and read back whole.
    #[test]
    fn round_trips_v2_state_in_kafka_v1_layout() {
        let mut m = sample(TxnState::PrepareCommit);
        m.client_transaction_version = 2;
        m.previous_producer_id = 6;
        m.next_producer_id = 8;
        let r = encode(&m);
        let v = r.value.clone().expect("value");
        assert_eq!(&v[0..2], &[0, 1], "value version 1");
        let (id, back) = decode(&r).expect("decode");
        assert_eq!(id, "tx-1");
        assert_eq!(back, Some(m.clone()));

        // Tags at their defaults are left out but the rest still needs v1.
        m.previous_producer_id = -1;
        m.next_producer_id = -1;
        m.state = TxnState::CompleteCommit;
        m.partitions.clear();
        let r = encode(&m);
        let v = r.value.clone().expect("value");
        assert_eq!(&v[0..2], &[0, 1]);
        // ... status, empty compact array (1), last update, start, then one tag: 2, 2 bytes, 2.
        assert_eq!(&v[v.len() - 5..], &[1, 2, 2, 0, 2]);
        assert_eq!(decode(&r).expect("decode").1, Some(m));
    }

    /// The memory-only fields are not stored: they come back as -1 / 0.
    #[test]
    fn memory_only_fields_are_not_stored() {
        let mut m = sample(TxnState::CompleteAbort);
        m.client_transaction_version = 2;
        m.last_producer_epoch = 2;
        m.coordinator_epoch = 9;
        let back = decode(&encode(&m)).expect("decode").1.expect("value");
        assert_eq!(back.last_producer_epoch, -1);
        assert_eq!(back.coordinator_epoch, 0);
        assert_eq!(back.client_transaction_version, 2);
    }

    /// A v1 value laid out by hand from Kafka's `TransactionLogValue.json` (not by `encode`),
    /// optionally with a tag unknown to us after the known ones.
    fn kafka_v1_value(unknown_tag: bool) -> Bytes {
        let mut v = BytesMut::new();
        v.put_i16(1);
        v.put_i64(42);
        v.put_i16(5);
        v.put_i32(1_000);
        v.put_i8(2); // PrepareCommit
        v.put_u8(2); // one topic
        v.put_u8(2); // "t"
        v.put_slice(b"t");
        v.put_u8(3); // two partitions
        v.put_i32(0);
        v.put_i32(3);
        v.put_u8(0); // the entry's tags
        v.put_i64(10);
        v.put_i64(9);
        v.put_u8(if unknown_tag { 4 } else { 3 });
        v.put_u8(0); // PreviousProducerId
        v.put_u8(8);
        v.put_i64(41);
        v.put_u8(1); // NextProducerId
        v.put_u8(8);
        v.put_i64(43);
        v.put_u8(2); // ClientTransactionVersion
        v.put_u8(2);
        v.put_i16(2);
        if unknown_tag {
            v.put_u8(7);
            v.put_u8(1);
            v.put_u8(0xff);
        }
        v.freeze()
    }

    #[test]
    fn decodes_a_kafka_v1_value_with_tags_and_writes_the_same_bytes() {
        let mut k = BytesMut::new();
        k.put_i16(0);
        put_str(&mut k, "x");
        let r = Record {
            key: Some(k.freeze()),
            value: Some(kafka_v1_value(true)),
        };
        let (id, m) = decode(&r).expect("decode");
        let m = m.expect("value");
        assert_eq!(id, "x");
        assert_eq!(
            (m.producer_id, m.producer_epoch, m.timeout_ms),
            (42, 5, 1_000)
        );
        assert_eq!(m.state, TxnState::PrepareCommit);
        let parts: Vec<(String, i32)> = m.partitions.iter().cloned().collect();
        assert_eq!(parts, vec![("t".to_string(), 0), ("t".to_string(), 3)]);
        assert_eq!((m.last_update_ms, m.start_ms), (10, 9));
        assert_eq!(m.previous_producer_id, 41);
        assert_eq!(m.next_producer_id, 43);
        assert_eq!(m.client_transaction_version, 2);
        // The unknown tag is not kept; everything else is written back byte for byte.
        let ours = encode(&m).value.expect("value");
        assert_eq!(ours, kafka_v1_value(false));
    }

    #[test]
    fn a_v1_tag_of_the_wrong_size_is_an_error() {
        let mut m = sample(TxnState::Ongoing);
        m.client_transaction_version = 2;
        let r = encode(&m);
        let mut v = BytesMut::from(&r.value.expect("value")[..]);
        // Last tag is 2 (len 2, i16 2): claim length 1 and drop a byte.
        let n = v.len();
        v[n - 3] = 1;
        v.truncate(n - 1);
        let bad = Record {
            key: r.key,
            value: Some(v.freeze()),
        };
        assert!(decode(&bad).is_err());
    }
}
