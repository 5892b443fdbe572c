//! The consumer's side of the classic protocol's embedded "consumer" protocol: Kafka's
//! `ConsumerProtocolSubscription` / `ConsumerProtocolAssignment` bytes (an i16 version, then the
//! struct at that version) and the `range` assignor the group leader runs.
//!
//! Range, as Kafka's `RangeAssignor`: per topic, the members subscribing to it sorted by member
//! id; with `n` partitions and `c` members, each gets `n / c` consecutive partitions and the first
//! `n % c` members one more. Pure functions, no I/O.

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedTopic;
use kafka_protocol::messages::{ConsumerProtocolAssignment, ConsumerProtocolSubscription};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use crate::error::ClientError;
use crate::metadata::topic_name;

/// The protocol type of consumer groups.
pub(crate) const PROTOCOL_TYPE: &str = "consumer";
/// The assignor this client offers.
pub(crate) const RANGE: &str = "range";

/// Version written for both structs (v1 adds owned partitions; every client reads it).
const WRITE_VERSION: i16 = 1;

/// Per member id, per topic: the assigned partitions.
pub(crate) type GroupAssignment = BTreeMap<String, BTreeMap<String, Vec<i32>>>;

/// Encodes a subscription to `topics`.
pub(crate) fn encode_subscription(topics: &[String]) -> Result<Bytes, ClientError> {
    let sub = ConsumerProtocolSubscription::default().with_topics(
        topics
            .iter()
            .map(|t| StrBytes::from_string(t.clone()))
            .collect(),
    );
    encode_versioned(&sub)
}

/// The topics of a member's subscription bytes.
pub(crate) fn decode_subscription(mut data: Bytes) -> Result<Vec<String>, ClientError> {
    let version = read_version(&mut data, "subscription")?;
    let sub = ConsumerProtocolSubscription::decode(&mut data, version.min(3))
        .map_err(|e| ClientError::codec("decode consumer subscription", e))?;
    Ok(sub.topics.iter().map(|t| t.to_string()).collect())
}

/// Encodes one member's assignment.
pub(crate) fn encode_assignment(parts: &BTreeMap<String, Vec<i32>>) -> Result<Bytes, ClientError> {
    let a = ConsumerProtocolAssignment::default().with_assigned_partitions(
        parts
            .iter()
            .map(|(t, ps)| {
                AssignedTopic::default()
                    .with_topic(topic_name(t))
                    .with_partitions(ps.clone())
            })
            .collect(),
    );
    encode_versioned(&a)
}

/// The (topic, partition) list of assignment bytes; empty bytes are an empty assignment.
pub(crate) fn decode_assignment(mut data: Bytes) -> Result<Vec<(String, i32)>, ClientError> {
    if data.is_empty() {
        return Ok(Vec::new());
    }
    let version = read_version(&mut data, "assignment")?;
    let a = ConsumerProtocolAssignment::decode(&mut data, version.min(3))
        .map_err(|e| ClientError::codec("decode consumer assignment", e))?;
    Ok(a.assigned_partitions
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.topic.0.to_string(), *p)))
        .collect())
}

fn encode_versioned<M: Encodable>(m: &M) -> Result<Bytes, ClientError> {
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&WRITE_VERSION.to_be_bytes());
    m.encode(&mut buf, WRITE_VERSION)
        .map_err(|e| ClientError::codec("encode consumer protocol", e))?;
    Ok(buf.freeze())
}

fn read_version(data: &mut Bytes, what: &'static str) -> Result<i16, ClientError> {
    if data.len() < 2 {
        return Err(ClientError::codec(what, "shorter than its version field"));
    }
    let v = i16::from_be_bytes([data[0], data[1]]);
    let _ = data.split_to(2);
    if v < 0 {
        return Err(ClientError::codec(what, "negative version"));
    }
    Ok(v)
}

/// Kafka's range assignment of `partitions` (topic → partition count) to `members`
/// (member id → subscribed topics). Every member appears in the result, possibly empty.
pub(crate) fn range_assign(
    members: &BTreeMap<String, Vec<String>>,
    partitions: &BTreeMap<String, i32>,
) -> GroupAssignment {
    let mut out: GroupAssignment = members
        .keys()
        .map(|m| (m.clone(), BTreeMap::new()))
        .collect();
    for (topic, &count) in partitions {
        let subscribers: Vec<&String> = members
            .iter()
            .filter(|(_, topics)| topics.contains(topic))
            .map(|(m, _)| m)
            .collect();
        if subscribers.is_empty() || count <= 0 {
            continue;
        }
        let c = i32::try_from(subscribers.len()).unwrap_or(i32::MAX);
        let (per, extra) = (count / c, count % c);
        for (i, m) in (0..).zip(subscribers) {
            let start = i * per + i.min(extra);
            let len = per + i32::from(i < extra);
            if len > 0 {
                if let Some(a) = out.get_mut(m) {
                    a.insert(topic.clone(), (start..start + len).collect());
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_splits_like_kafka() {
        let members: BTreeMap<String, Vec<String>> = ["c", "a", "b"]
            .iter()
            .map(|m| (m.to_string(), vec!["t".to_string(), "u".to_string()]))
            .collect();
        let parts = BTreeMap::from([("t".to_string(), 7), ("u".to_string(), 2)]);
        let a = range_assign(&members, &parts);
        assert_eq!(a["a"]["t"], vec![0, 1, 2]);
        assert_eq!(a["b"]["t"], vec![3, 4]);
        assert_eq!(a["c"]["t"], vec![5, 6]);
        assert_eq!(a["a"]["u"], vec![0]);
        assert_eq!(a["b"]["u"], vec![1]);
        assert!(!a["c"].contains_key("u"));
    }

    #[test]
    fn protocol_bytes_round_trip_and_garbage_is_an_error() {
        let s = encode_subscription(&["x".into(), "y".into()]).unwrap();
        assert_eq!(decode_subscription(s).unwrap(), vec!["x", "y"]);
        let a = encode_assignment(&BTreeMap::from([("x".to_string(), vec![0, 2])])).unwrap();
        assert_eq!(
            decode_assignment(a).unwrap(),
            vec![("x".to_string(), 0), ("x".to_string(), 2)]
        );
        assert!(decode_assignment(Bytes::from_static(&[0, 1, 0])).is_err());
        assert!(decode_subscription(Bytes::from_static(&[0xff, 0xff])).is_err());
    }
}
