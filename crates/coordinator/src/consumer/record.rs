//! The records of KIP-848 consumer groups in `__consumer_offsets`, and their replay.
//!
//! Keys use Kafka's key types and layouts (`version:i16` is the record type, then the classic
//! non-flexible encoding of the key fields), so keys — and therefore compaction — line up with
//! Kafka's. Values are Strom's own compact encoding (a leading `version:i16=0`, then classic
//! big-endian primitives: strings are i16 length + UTF-8 with -1 = null, arrays an i32 count, a
//! uuid 16 bytes); Kafka's flexible value schemas are not reproduced:
//!
//! ```text
//! 3 ConsumerGroupMetadata        key: group            value: epoch:i32 assignor:string
//!                                                             topics:[id:uuid name:string partitions:i32]
//! 5 ConsumerGroupMemberMetadata  key: group member     value: instance_id:nstring rack_id:nstring
//!                                                             client_id:string client_host:string
//!                                                             topic_names:[string] regex:nstring
//!                                                             server_assignor:nstring rebalance_timeout_ms:i32
//! 6 ConsumerGroupTargetAssignmentMetadata  key: group  value: assignment_epoch:i32
//! 7 ConsumerGroupTargetAssignmentMember    key: group member  value: partitions
//! 8 ConsumerGroupCurrentMemberAssignment   key: group member  value: member_epoch:i32
//!                                                             previous_member_epoch:i32 state:i8
//!                                                             assigned:partitions pending_revocation:partitions
//! partitions = [topic_id:uuid partitions:[i32]]
//! ```
//!
//! Kafka's type 4 (ConsumerGroupPartitionMetadata) is folded into type 3 (`topics`). A `None`
//! value is a tombstone: for 5/7/8 the member is gone, for 3 the group is deleted.

use std::collections::HashMap;

use bytes::{BufMut, BytesMut};
use tokio::time::Instant;
use uuid::Uuid;

use super::assignor::Assignment;
use super::group::{ConsumerGroup, ConsumerMember};
use super::reconcile::{CurrentAssignment, MemberState};
use crate::record::Record;

const GROUP_METADATA: i16 = 3;
const MEMBER_METADATA: i16 = 5;
const TARGET_METADATA: i16 = 6;
const TARGET_MEMBER: i16 = 7;
const CURRENT_ASSIGNMENT: i16 = 8;

/// Whether a stored record belongs to a consumer group (key types 3–8); the classic replay skips
/// these.
pub(crate) fn is_consumer_record(r: &Record) -> bool {
    r.key
        .as_ref()
        .and_then(|k| k.get(..2))
        .is_some_and(|b| (3..=8).contains(&i16::from_be_bytes([b[0], b[1]])))
}

/// One KIP-848 record (value `None` = tombstone).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ConsumerRecord {
    Group {
        group: String,
        value: Option<GroupValue>,
    },
    Member {
        group: String,
        member: String,
        value: Option<MemberValue>,
    },
    TargetEpoch {
        group: String,
        epoch: Option<i32>,
    },
    Target {
        group: String,
        member: String,
        value: Option<Assignment>,
    },
    Current {
        group: String,
        member: String,
        value: Option<CurrentAssignment>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct GroupValue {
    pub(crate) epoch: i32,
    pub(crate) assignor: String,
    pub(crate) topics: Vec<(Uuid, String, i32)>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MemberValue {
    pub(crate) instance_id: Option<String>,
    pub(crate) rack_id: Option<String>,
    pub(crate) client_id: String,
    pub(crate) client_host: String,
    pub(crate) topic_names: Vec<String>,
    pub(crate) regex: Option<String>,
    pub(crate) server_assignor: Option<String>,
    pub(crate) rebalance_timeout_ms: i32,
}

impl MemberValue {
    pub(crate) fn of(m: &ConsumerMember) -> Self {
        MemberValue {
            instance_id: m.instance_id.clone(),
            rack_id: m.rack_id.clone(),
            client_id: m.client_id.clone(),
            client_host: m.client_host.clone(),
            topic_names: m.subscribed_topic_names.clone(),
            regex: m.subscribed_topic_regex.clone(),
            server_assignor: m.server_assignor.clone(),
            rebalance_timeout_ms: m.rebalance_timeout_ms,
        }
    }
}

fn put_str(b: &mut BytesMut, s: &str) {
    let len = i16::try_from(s.len()).unwrap_or(i16::MAX);
    b.put_i16(len);
    b.put_slice(s.as_bytes().get(..len.max(0) as usize).unwrap_or_default());
}

fn put_nstr(b: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => put_str(b, s),
        None => b.put_i16(-1),
    }
}

fn put_len(b: &mut BytesMut, n: usize) {
    b.put_i32(i32::try_from(n).unwrap_or(i32::MAX));
}

fn put_assignment(b: &mut BytesMut, a: &Assignment) {
    put_len(b, a.len());
    for (t, ps) in a {
        b.put_slice(t.as_bytes());
        put_len(b, ps.len());
        for p in ps {
            b.put_i32(*p);
        }
    }
}

impl ConsumerRecord {
    pub(crate) fn encode(&self) -> Record {
        let mut k = BytesMut::new();
        let mut v = BytesMut::new();
        v.put_i16(0);
        let present = match self {
            ConsumerRecord::Group { group, value } => {
                k.put_i16(GROUP_METADATA);
                put_str(&mut k, group);
                value.as_ref().map(|g| {
                    v.put_i32(g.epoch);
                    put_str(&mut v, &g.assignor);
                    put_len(&mut v, g.topics.len());
                    for (id, name, n) in &g.topics {
                        v.put_slice(id.as_bytes());
                        put_str(&mut v, name);
                        v.put_i32(*n);
                    }
                })
            }
            ConsumerRecord::Member {
                group,
                member,
                value,
            } => {
                k.put_i16(MEMBER_METADATA);
                put_str(&mut k, group);
                put_str(&mut k, member);
                value.as_ref().map(|m| {
                    put_nstr(&mut v, m.instance_id.as_deref());
                    put_nstr(&mut v, m.rack_id.as_deref());
                    put_str(&mut v, &m.client_id);
                    put_str(&mut v, &m.client_host);
                    put_len(&mut v, m.topic_names.len());
                    for t in &m.topic_names {
                        put_str(&mut v, t);
                    }
                    put_nstr(&mut v, m.regex.as_deref());
                    put_nstr(&mut v, m.server_assignor.as_deref());
                    v.put_i32(m.rebalance_timeout_ms);
                })
            }
            ConsumerRecord::TargetEpoch { group, epoch } => {
                k.put_i16(TARGET_METADATA);
                put_str(&mut k, group);
                epoch.map(|e| v.put_i32(e))
            }
            ConsumerRecord::Target {
                group,
                member,
                value,
            } => {
                k.put_i16(TARGET_MEMBER);
                put_str(&mut k, group);
                put_str(&mut k, member);
                value.as_ref().map(|a| put_assignment(&mut v, a))
            }
            ConsumerRecord::Current {
                group,
                member,
                value,
            } => {
                k.put_i16(CURRENT_ASSIGNMENT);
                put_str(&mut k, group);
                put_str(&mut k, member);
                value.as_ref().map(|c| {
                    v.put_i32(c.member_epoch);
                    v.put_i32(c.previous_member_epoch);
                    v.put_i8(c.state.to_i8());
                    put_assignment(&mut v, &c.assigned);
                    put_assignment(&mut v, &c.pending_revocation);
                })
            }
        };
        Record {
            key: Some(k.freeze()),
            value: present.map(|()| v.freeze()),
        }
    }

    pub(crate) fn decode(r: &Record) -> Result<ConsumerRecord, &'static str> {
        let key = r.key.as_ref().ok_or("record without a key")?;
        let mut k = Reader(key);
        let kind = k.i16()?;
        let group = k.string()?;
        let mut value = match &r.value {
            None => None,
            Some(v) => {
                let mut rd = Reader(v);
                if rd.i16()? != 0 {
                    return Err("unsupported consumer group value version");
                }
                Some(rd)
            }
        };
        let rec = match kind {
            GROUP_METADATA => ConsumerRecord::Group {
                group,
                value: match value.as_mut() {
                    None => None,
                    Some(v) => {
                        let epoch = v.i32()?;
                        let assignor = v.string()?;
                        let mut topics = Vec::new();
                        for _ in 0..v.len()? {
                            topics.push((v.uuid()?, v.string()?, v.i32()?));
                        }
                        Some(GroupValue {
                            epoch,
                            assignor,
                            topics,
                        })
                    }
                },
            },
            MEMBER_METADATA => {
                let member = k.string()?;
                let value = match value.as_mut() {
                    None => None,
                    Some(v) => Some(MemberValue {
                        instance_id: v.nstring()?,
                        rack_id: v.nstring()?,
                        client_id: v.string()?,
                        client_host: v.string()?,
                        topic_names: {
                            let mut ts = Vec::new();
                            for _ in 0..v.len()? {
                                ts.push(v.string()?);
                            }
                            ts
                        },
                        regex: v.nstring()?,
                        server_assignor: v.nstring()?,
                        rebalance_timeout_ms: v.i32()?,
                    }),
                };
                ConsumerRecord::Member {
                    group,
                    member,
                    value,
                }
            }
            TARGET_METADATA => ConsumerRecord::TargetEpoch {
                group,
                epoch: match value.as_mut() {
                    None => None,
                    Some(v) => Some(v.i32()?),
                },
            },
            TARGET_MEMBER => ConsumerRecord::Target {
                member: k.string()?,
                group,
                value: match value.as_mut() {
                    None => None,
                    Some(v) => Some(v.assignment()?),
                },
            },
            CURRENT_ASSIGNMENT => ConsumerRecord::Current {
                member: k.string()?,
                group,
                value: match value.as_mut() {
                    None => None,
                    Some(v) => Some(CurrentAssignment {
                        member_epoch: v.i32()?,
                        previous_member_epoch: v.i32()?,
                        state: MemberState::from_i8(v.i8()?),
                        assigned: v.assignment()?,
                        pending_revocation: v.assignment()?,
                    }),
                },
            },
            _ => return Err("not a consumer group record"),
        };
        Ok(rec)
    }
}

/// Applies one record to the groups being loaded (`partition` is the group's offsets partition;
/// `deadline` the session expiry given to loaded members).
pub(crate) fn replay(
    groups: &mut HashMap<String, ConsumerGroup>,
    partition: i32,
    rec: ConsumerRecord,
    deadline: Instant,
) {
    let group_id = match &rec {
        ConsumerRecord::Group { group, .. }
        | ConsumerRecord::Member { group, .. }
        | ConsumerRecord::TargetEpoch { group, .. }
        | ConsumerRecord::Target { group, .. }
        | ConsumerRecord::Current { group, .. } => group.clone(),
    };
    let g = groups
        .entry(group_id.clone())
        .or_insert_with(|| ConsumerGroup::new(group_id.clone(), partition));
    match rec {
        ConsumerRecord::Group { value: None, .. } => {
            groups.remove(&group_id);
        }
        ConsumerRecord::Group { value: Some(v), .. } => {
            g.group_epoch = v.epoch;
            g.assignor = v.assignor;
            g.subscribed = v
                .topics
                .into_iter()
                .map(|(id, n, c)| (id, (n, c)))
                .collect();
        }
        ConsumerRecord::Member { member, value, .. } => match value {
            None => {
                if let Some(m) = g.members.remove(&member) {
                    if let Some(i) = m.instance_id {
                        g.static_members.remove(&i);
                    }
                }
            }
            Some(v) => {
                let m = g
                    .members
                    .entry(member.clone())
                    .or_insert_with(|| ConsumerMember::new(member.clone(), deadline));
                m.compiled_regex = v.regex.as_deref().and_then(|r| regex::Regex::new(r).ok());
                m.instance_id = v.instance_id;
                m.rack_id = v.rack_id;
                m.client_id = v.client_id;
                m.client_host = v.client_host;
                m.subscribed_topic_names = v.topic_names;
                m.subscribed_topic_regex = v.regex;
                m.server_assignor = v.server_assignor;
                m.rebalance_timeout_ms = v.rebalance_timeout_ms;
                if let Some(i) = &m.instance_id {
                    g.static_members.insert(i.clone(), member);
                }
            }
        },
        ConsumerRecord::TargetEpoch { epoch, .. } => g.assignment_epoch = epoch.unwrap_or(0),
        ConsumerRecord::Target { member, value, .. } => match value {
            None => {
                g.target.remove(&member);
            }
            Some(a) => {
                g.target.insert(member, a);
            }
        },
        ConsumerRecord::Current { member, value, .. } => {
            if let (Some(m), Some(c)) = (g.members.get_mut(&member), value) {
                m.left_static = c.member_epoch == -2;
                m.current = c;
            }
        }
    }
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
    fn i8(&mut self) -> Result<i8, &'static str> {
        Ok(i8::from_be_bytes([self.take(1)?[0]]))
    }
    fn i16(&mut self) -> Result<i16, &'static str> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }
    fn i32(&mut self) -> Result<i32, &'static str> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn len(&mut self) -> Result<usize, &'static str> {
        let n = self.i32()?;
        let n = usize::try_from(n.max(0)).map_err(|_| "bad length")?;
        // Every element takes at least 2 bytes: reject counts the rest cannot hold.
        if n > self.0.len() {
            return Err("array count exceeds record");
        }
        Ok(n)
    }
    fn uuid(&mut self) -> Result<Uuid, &'static str> {
        let b = self.take(16)?;
        Uuid::from_slice(b).map_err(|_| "bad uuid")
    }
    fn nstring(&mut self) -> Result<Option<String>, &'static str> {
        let len = self.i16()?;
        if len < 0 {
            return Ok(None);
        }
        let b = self.take(usize::try_from(len).map_err(|_| "bad length")?)?;
        String::from_utf8(b.to_vec())
            .map(Some)
            .map_err(|_| "string is not UTF-8")
    }
    fn string(&mut self) -> Result<String, &'static str> {
        self.nstring()?.ok_or("null string")
    }
    fn assignment(&mut self) -> Result<Assignment, &'static str> {
        let mut a = Assignment::new();
        for _ in 0..self.len()? {
            let t = self.uuid()?;
            let ps = a.entry(t).or_default();
            for _ in 0..self.len()? {
                ps.insert(self.i32()?);
            }
        }
        Ok(a)
    }
}

/// Wraps bytes for tests.
#[cfg(test)]
pub(crate) fn raw(key: &[u8], value: Option<&[u8]>) -> Record {
    use bytes::Bytes;
    Record {
        key: Some(Bytes::copy_from_slice(key)),
        value: value.map(Bytes::copy_from_slice),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn round_trip_and_classification() {
        let t = Uuid::from_bytes([3; 16]);
        let a = Assignment::from([(t, BTreeSet::from([0, 2]))]);
        let recs = vec![
            ConsumerRecord::Group {
                group: "g".into(),
                value: Some(GroupValue {
                    epoch: 4,
                    assignor: "uniform".into(),
                    topics: vec![(t, "orders".into(), 6)],
                }),
            },
            ConsumerRecord::Member {
                group: "g".into(),
                member: "m".into(),
                value: Some(MemberValue {
                    instance_id: Some("i".into()),
                    rack_id: None,
                    client_id: "c".into(),
                    client_host: "/127.0.0.1".into(),
                    topic_names: vec!["orders".into()],
                    regex: Some("^ord.*".into()),
                    server_assignor: Some("range".into()),
                    rebalance_timeout_ms: 300_000,
                }),
            },
            ConsumerRecord::TargetEpoch {
                group: "g".into(),
                epoch: Some(4),
            },
            ConsumerRecord::Target {
                group: "g".into(),
                member: "m".into(),
                value: Some(a.clone()),
            },
            ConsumerRecord::Current {
                group: "g".into(),
                member: "m".into(),
                value: Some(CurrentAssignment {
                    state: MemberState::UnrevokedPartitions,
                    member_epoch: 3,
                    previous_member_epoch: 2,
                    assigned: a.clone(),
                    pending_revocation: a,
                }),
            },
            ConsumerRecord::Current {
                group: "g".into(),
                member: "m".into(),
                value: None,
            },
            ConsumerRecord::Group {
                group: "g".into(),
                value: None,
            },
        ];
        for r in recs {
            let enc = r.encode();
            assert!(is_consumer_record(&enc));
            assert_eq!(ConsumerRecord::decode(&enc), Ok(r));
        }
        assert!(!is_consumer_record(&raw(b"\x00\x01", None)));
        assert!(!is_consumer_record(&raw(b"\x00\x02", None)));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for (k, v) in [
            (&b"\x00\x03"[..], Some(&b"\x00\x00"[..])),
            (
                b"\x00\x07\x00\x01g\x00\x01m",
                Some(b"\x00\x00\x7f\xff\xff\xff"),
            ),
            (b"\x00\x05\x00\x01g\x00\x01m", Some(b"\x00\x00\x00")),
            (b"\x00\x08\x00\x01g\x00\x01m", Some(b"\x00\x01")),
            (b"\x00\x09\x00\x01g", None),
        ] {
            assert!(ConsumerRecord::decode(&raw(k, v)).is_err());
        }
    }
}
