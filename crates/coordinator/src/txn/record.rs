//! `__transaction_state` records in Kafka's own schemas (`TransactionLogKey` v0,
//! `TransactionLogValue` v0), so Kafka's tools can read a Strom log and the other way round.
//!
//! ```text
//! key:   version: i16 (= 0), transactional_id: string (i16 length + UTF-8)
//! value: version: i16 (= 0), producer_id: i64, producer_epoch: i16, timeout_ms: i32,
//!        status: i8, partitions: nullable array (i32 count) of
//!          { topic: string, partition_ids: array (i32 count) of i32 },
//!        last_update_ms: i64, start_ms: i64
//! ```
//!
//! A null value (tombstone) removes the transactional id. Version 1 values (flexible, tagged
//! previous/next producer ids) are read by skipping the tagged fields.

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

/// Encodes the state of one transactional id.
pub(crate) fn encode(m: &TxnMetadata) -> Record {
    let mut k = BytesMut::new();
    k.put_i16(0);
    put_str(&mut k, &m.transactional_id);
    let mut v = BytesMut::new();
    v.put_i16(0);
    v.put_i64(m.producer_id);
    v.put_i16(m.producer_epoch);
    v.put_i32(m.timeout_ms);
    v.put_i8(m.state.code());
    let mut by_topic: Vec<(&str, Vec<i32>)> = Vec::new();
    for (t, p) in &m.partitions {
        match by_topic.last_mut() {
            Some((last, ps)) if *last == t.as_str() => ps.push(*p),
            _ => by_topic.push((t.as_str(), vec![*p])),
        }
    }
    v.put_i32(i32::try_from(by_topic.len()).unwrap_or(i32::MAX));
    for (t, ps) in by_topic {
        put_str(&mut v, t);
        v.put_i32(i32::try_from(ps.len()).unwrap_or(i32::MAX));
        for p in ps {
            v.put_i32(p);
        }
    }
    v.put_i64(m.last_update_ms);
    v.put_i64(m.start_ms);
    Record {
        key: Some(k.freeze()),
        value: Some(v.freeze()),
    }
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

impl Reader<'_> {
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
    fn bytes(&mut self, n: usize) -> Result<&[u8], &'static str> {
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
    fn skip_tags(&mut self) -> Result<(), &'static str> {
        let n = self.uvarint()?;
        for _ in 0..n {
            let _tag = self.uvarint()?;
            let len = usize::try_from(self.uvarint()?).map_err(|_| "tag too large")?;
            self.bytes(len)?;
        }
        Ok(())
    }
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
            v.skip_tags()?;
        }
    }
    let last_update_ms = v.i64()?;
    let start_ms = v.i64()?;
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

    #[test]
    fn round_trips_in_kafka_v0_layout() {
        let m = TxnMetadata {
            transactional_id: "tx-1".into(),
            producer_id: 7,
            producer_epoch: 3,
            timeout_ms: 60_000,
            state: TxnState::Ongoing,
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
        };
        let r = encode(&m);
        let v = r.value.clone().expect("value");
        // version, pid, epoch, timeout, status
        assert_eq!(&v[0..2], &[0, 0]);
        assert_eq!(v[16], 1);
        let (id, back) = decode(&r).expect("decode");
        assert_eq!(id, "tx-1");
        assert_eq!(back, Some(m));
    }
}
