//! The records the coordinator writes to `__consumer_offsets`, in Kafka's own schemas so any
//! Kafka tool can read the topic (`kafka-console-consumer --formatter …OffsetsMessageFormatter`):
//!
//! ```text
//! OffsetCommitKey v1     version:i16=1 group:string topic:string partition:i32
//! OffsetCommitValue v3   version:i16=3 offset:i64 leader_epoch:i32 metadata:string commit_timestamp:i64
//! GroupMetadataKey v2    version:i16=2 group:string
//! GroupMetadataValue v3  version:i16=3 protocol_type:string generation:i32 protocol:nullable_string
//!                        leader:nullable_string current_state_timestamp:i64
//!                        members:[member_id:string group_instance_id:nullable_string client_id:string
//!                                 client_host:string rebalance_timeout:i32 session_timeout:i32
//!                                 subscription:bytes assignment:bytes]
//! ```
//!
//! Strings are an i16 length and UTF-8 (-1 = null), bytes an i32 length, arrays an i32 count: the
//! classic (non-flexible) encoding. A `None` value is a tombstone (offset deleted or group deleted).
//! Decoding accepts OffsetCommitValue v0–v3 and GroupMetadataValue v0–v3 (older brokers' data).
//! Also here: the group → partition function, which must match Kafka's exactly.

use bytes::{BufMut, Bytes, BytesMut};

/// One key/value record of `__consumer_offsets` (a `None` value is a tombstone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Record key.
    pub key: Option<Bytes>,
    /// Record value; `None` deletes the key.
    pub value: Option<Bytes>,
}

/// A committed offset as stored and as returned by OffsetFetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetAndMetadata {
    /// The next offset to consume.
    pub offset: i64,
    /// Leader epoch of the last consumed record, -1 if unknown.
    pub leader_epoch: i32,
    /// Client metadata string, round-tripped.
    pub metadata: String,
    /// When the commit was accepted (ms since the epoch).
    pub commit_timestamp_ms: i64,
}

/// One member inside a stored group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MemberValue {
    pub(crate) member_id: String,
    pub(crate) group_instance_id: Option<String>,
    pub(crate) client_id: String,
    pub(crate) client_host: String,
    pub(crate) rebalance_timeout_ms: i32,
    pub(crate) session_timeout_ms: i32,
    pub(crate) subscription: Bytes,
    pub(crate) assignment: Bytes,
}

/// A stored group (GroupMetadataValue).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GroupValue {
    pub(crate) protocol_type: String,
    pub(crate) generation: i32,
    pub(crate) protocol: Option<String>,
    pub(crate) leader: Option<String>,
    pub(crate) current_state_timestamp_ms: i64,
    pub(crate) members: Vec<MemberValue>,
}

/// A decoded record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CoordinatorRecord {
    OffsetCommit {
        group: String,
        topic: String,
        partition: i32,
        value: Option<OffsetAndMetadata>,
    },
    GroupMetadata {
        group: String,
        value: Option<GroupValue>,
    },
}

/// Kafka's `Utils.abs(groupId.hashCode()) % partitions`: Java's `String.hashCode` over UTF-16
/// code units, and an `abs` that maps `i32::MIN` to 0.
pub fn partition_for(group_id: &str, partitions: i32) -> i32 {
    let mut h: i32 = 0;
    for unit in group_id.encode_utf16() {
        h = h.wrapping_mul(31).wrapping_add(i32::from(unit));
    }
    let abs = if h == i32::MIN { 0 } else { h.abs() };
    abs % partitions.max(1)
}

fn put_str(b: &mut BytesMut, s: &str) {
    // Group ids, topics and member ids are bounded well below i16::MAX by the request codec.
    let len = i16::try_from(s.len()).unwrap_or(i16::MAX);
    b.put_i16(len);
    b.put_slice(&s.as_bytes()[..len as usize]);
}

fn put_nullable_str(b: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => put_str(b, s),
        None => b.put_i16(-1),
    }
}

fn put_bytes(b: &mut BytesMut, v: &[u8]) {
    b.put_i32(i32::try_from(v.len()).unwrap_or(i32::MAX));
    b.put_slice(v);
}

impl CoordinatorRecord {
    /// Encodes into a key/value record.
    pub(crate) fn encode(&self) -> Record {
        match self {
            CoordinatorRecord::OffsetCommit {
                group,
                topic,
                partition,
                value,
            } => {
                let mut k = BytesMut::new();
                k.put_i16(1);
                put_str(&mut k, group);
                put_str(&mut k, topic);
                k.put_i32(*partition);
                let value = value.as_ref().map(|v| {
                    let mut b = BytesMut::new();
                    b.put_i16(3);
                    b.put_i64(v.offset);
                    b.put_i32(v.leader_epoch);
                    put_str(&mut b, &v.metadata);
                    b.put_i64(v.commit_timestamp_ms);
                    b.freeze()
                });
                Record {
                    key: Some(k.freeze()),
                    value,
                }
            }
            CoordinatorRecord::GroupMetadata { group, value } => {
                let mut k = BytesMut::new();
                k.put_i16(2);
                put_str(&mut k, group);
                let value = value.as_ref().map(|g| {
                    let mut b = BytesMut::new();
                    b.put_i16(3);
                    put_str(&mut b, &g.protocol_type);
                    b.put_i32(g.generation);
                    put_nullable_str(&mut b, g.protocol.as_deref());
                    put_nullable_str(&mut b, g.leader.as_deref());
                    b.put_i64(g.current_state_timestamp_ms);
                    b.put_i32(i32::try_from(g.members.len()).unwrap_or(i32::MAX));
                    for m in &g.members {
                        put_str(&mut b, &m.member_id);
                        put_nullable_str(&mut b, m.group_instance_id.as_deref());
                        put_str(&mut b, &m.client_id);
                        put_str(&mut b, &m.client_host);
                        b.put_i32(m.rebalance_timeout_ms);
                        b.put_i32(m.session_timeout_ms);
                        put_bytes(&mut b, &m.subscription);
                        put_bytes(&mut b, &m.assignment);
                    }
                    b.freeze()
                });
                Record {
                    key: Some(k.freeze()),
                    value,
                }
            }
        }
    }

    /// Decodes a stored record; `Err` names what was malformed.
    pub(crate) fn decode(record: &Record) -> Result<CoordinatorRecord, &'static str> {
        let key = record.key.as_ref().ok_or("record without a key")?;
        let mut k = Reader(key);
        match k.i16()? {
            0 | 1 => {
                let group = k.string()?;
                let topic = k.string()?;
                let partition = k.i32()?;
                let value = match &record.value {
                    None => None,
                    Some(v) => Some(decode_offset_value(v)?),
                };
                Ok(CoordinatorRecord::OffsetCommit {
                    group,
                    topic,
                    partition,
                    value,
                })
            }
            2 => {
                let group = k.string()?;
                let value = match &record.value {
                    None => None,
                    Some(v) => Some(decode_group_value(v)?),
                };
                Ok(CoordinatorRecord::GroupMetadata { group, value })
            }
            _ => Err("unknown key version"),
        }
    }
}

fn decode_offset_value(v: &[u8]) -> Result<OffsetAndMetadata, &'static str> {
    let mut r = Reader(v);
    let version = r.i16()?;
    let offset = r.i64()?;
    let leader_epoch = if version >= 3 { r.i32()? } else { -1 };
    let metadata = r.string()?;
    let commit_timestamp_ms = r.i64()?;
    match version {
        0..=3 => Ok(OffsetAndMetadata {
            offset,
            leader_epoch,
            metadata,
            commit_timestamp_ms,
        }),
        _ => Err("unsupported OffsetCommitValue version"),
    }
}

fn decode_group_value(v: &[u8]) -> Result<GroupValue, &'static str> {
    let mut r = Reader(v);
    let version = r.i16()?;
    if !(0..=3).contains(&version) {
        return Err("unsupported GroupMetadataValue version");
    }
    let protocol_type = r.string()?;
    let generation = r.i32()?;
    let protocol = r.nullable_string()?;
    let leader = r.nullable_string()?;
    let current_state_timestamp_ms = if version >= 2 { r.i64()? } else { -1 };
    let n = r.i32()?;
    let mut members = Vec::new();
    for _ in 0..n.max(0) {
        let member_id = r.string()?;
        let group_instance_id = if version >= 3 {
            r.nullable_string()?
        } else {
            None
        };
        let client_id = r.string()?;
        let client_host = r.string()?;
        let rebalance_timeout_ms = if version >= 1 { r.i32()? } else { -1 };
        let session_timeout_ms = r.i32()?;
        let subscription = Bytes::copy_from_slice(r.bytes()?);
        let assignment = Bytes::copy_from_slice(r.bytes()?);
        members.push(MemberValue {
            member_id,
            group_instance_id,
            client_id,
            client_host,
            rebalance_timeout_ms: if rebalance_timeout_ms < 0 {
                session_timeout_ms
            } else {
                rebalance_timeout_ms
            },
            session_timeout_ms,
            subscription,
            assignment,
        });
    }
    Ok(GroupValue {
        protocol_type,
        generation,
        protocol,
        leader,
        current_state_timestamp_ms,
        members,
    })
}

/// Topics named in a `consumer` protocol subscription (ConsumerProtocolSubscription v0+ all start
/// with `version:i16 topics:[string]`); `None` if it does not parse.
pub(crate) fn subscribed_topics(metadata: &[u8]) -> Option<Vec<String>> {
    let mut r = Reader(metadata);
    r.i16().ok()?;
    let n = r.i32().ok()?;
    let mut out = Vec::new();
    for _ in 0..n.max(0) {
        out.push(r.string().ok()?);
    }
    Some(out)
}

/// A bounds-checked big-endian reader over stored bytes.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        if self.0.len() < n {
            return Err("truncated record");
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
    fn i16(&mut self) -> Result<i16, &'static str> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }
    fn i32(&mut self) -> Result<i32, &'static str> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn i64(&mut self) -> Result<i64, &'static str> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }
    fn nullable_string(&mut self) -> Result<Option<String>, &'static str> {
        let len = self.i16()?;
        if len < 0 {
            return Ok(None);
        }
        let b = self.take(len as usize)?;
        String::from_utf8(b.to_vec())
            .map(Some)
            .map_err(|_| "string is not UTF-8")
    }
    fn string(&mut self) -> Result<String, &'static str> {
        self.nullable_string()?.ok_or("null string")
    }
    fn bytes(&mut self) -> Result<&'a [u8], &'static str> {
        let len = self.i32()?;
        if len < 0 {
            return Ok(&[]);
        }
        self.take(len as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_matches_kafka() {
        // Java: Math.abs("my-group".hashCode()) % 50; "my-group".hashCode() == 1230866484... computed
        // by the same formula; check a few fixed points of String.hashCode instead.
        assert_eq!(partition_for("", 50), 0);
        // "a".hashCode() = 97
        assert_eq!(partition_for("a", 50), 97 % 50);
        // "Aa" and "BB" collide in Java (2112).
        assert_eq!(partition_for("Aa", 50), partition_for("BB", 50));
        assert_eq!(partition_for("Aa", 5000), 2112);
        // "polygenelubricants".hashCode() == Integer.MIN_VALUE → Utils.abs gives 0.
        assert_eq!(partition_for("polygenelubricants", 50), 0);
        // "console-consumer-12345".hashCode() is negative; abs then modulo.
        let mut h: i32 = 0;
        for c in "console-consumer-12345".chars() {
            h = h.wrapping_mul(31).wrapping_add(c as i32);
        }
        assert_eq!(partition_for("console-consumer-12345", 50), h.abs() % 50);
    }

    #[test]
    fn round_trip() {
        let recs = vec![
            CoordinatorRecord::OffsetCommit {
                group: "g".into(),
                topic: "t".into(),
                partition: 3,
                value: Some(OffsetAndMetadata {
                    offset: 42,
                    leader_epoch: 7,
                    metadata: "meta".into(),
                    commit_timestamp_ms: 1_700_000_000_000,
                }),
            },
            CoordinatorRecord::OffsetCommit {
                group: "g".into(),
                topic: "t".into(),
                partition: 3,
                value: None,
            },
            CoordinatorRecord::GroupMetadata {
                group: "g".into(),
                value: Some(GroupValue {
                    protocol_type: "consumer".into(),
                    generation: 5,
                    protocol: Some("range".into()),
                    leader: Some("m1".into()),
                    current_state_timestamp_ms: 9,
                    members: vec![MemberValue {
                        member_id: "m1".into(),
                        group_instance_id: Some("i1".into()),
                        client_id: "c".into(),
                        client_host: "/127.0.0.1".into(),
                        rebalance_timeout_ms: 300_000,
                        session_timeout_ms: 45_000,
                        subscription: Bytes::from_static(b"sub"),
                        assignment: Bytes::from_static(b"asg"),
                    }],
                }),
            },
            CoordinatorRecord::GroupMetadata {
                group: "g".into(),
                value: None,
            },
        ];
        for r in recs {
            assert_eq!(CoordinatorRecord::decode(&r.encode()), Ok(r));
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for key in [&b""[..], b"\x00", b"\x00\x01\x00\x05ab", b"\x00\x09"] {
            let r = Record {
                key: Some(Bytes::copy_from_slice(key)),
                value: Some(Bytes::from_static(b"\x00\x03\x00")),
            };
            assert!(CoordinatorRecord::decode(&r).is_err());
        }
    }

    #[test]
    fn consumer_subscription_topics() {
        let mut b = BytesMut::new();
        b.put_i16(1);
        b.put_i32(2);
        put_str(&mut b, "t1");
        put_str(&mut b, "t2");
        b.put_i32(-1);
        assert_eq!(
            subscribed_topics(&b),
            Some(vec!["t1".to_string(), "t2".to_string()])
        );
        assert_eq!(subscribed_topics(b"\x00"), None);
    }
}
