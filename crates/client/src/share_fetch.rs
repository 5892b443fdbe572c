//! The logic of the share consumer's fetch path, kept apart from the network so it can be tested
//! alone: which decoded records a ShareFetch delivered (only offsets inside its
//! `acquired_records` ranges; the broker returns whole batches, so a batch may hold records that
//! another member acquired or that were already acknowledged), the acknowledgements waiting to be
//! sent as wire batches, and a share session's epoch and partitions (KIP-932, like KIP-227 fetch
//! sessions: epoch 0 opens a session with its partitions, each later request carries the next
//! epoch and only the partitions added or forgotten, -1 closes it).
//!
//! Offsets that a broker acquired for us but that hold no record we can deliver (control records,
//! compacted-away offsets) are acknowledged as GAP, as Kafka's consumer does, so they do not come
//! back after the lock expires.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use crate::fetch::ConsumerRecord;

/// How a record delivered to a share consumer is acknowledged (Kafka's `AcknowledgeType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcknowledgeType {
    /// Processed: the record is never delivered again.
    Accept,
    /// Not processed: the record becomes available to the group again (with its delivery count).
    Release,
    /// Unprocessable: the record is archived, never delivered again.
    Reject,
}

impl AcknowledgeType {
    /// Kafka's wire id.
    pub fn id(self) -> i8 {
        match self {
            AcknowledgeType::Accept => 1,
            AcknowledgeType::Release => 2,
            AcknowledgeType::Reject => 3,
        }
    }
}

/// Kafka's wire id of GAP: an acquired offset without a deliverable record.
pub(crate) const GAP: i8 = 0;

/// A (topic id, partition) pair: how share requests name partitions.
pub(crate) type TopicIdPartition = (Uuid, i32);

/// A record delivered to a share-group member, to be acknowledged with
/// [`ShareConsumer::acknowledge`](crate::ShareConsumer::acknowledge).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareRecord {
    /// The record.
    pub record: ConsumerRecord,
    /// How many times it has been delivered (1 the first time).
    pub delivery_count: i16,
    /// Its topic's id, which acknowledgements are sent under.
    pub(crate) topic_id: Uuid,
}

/// One acquired range of a ShareFetch response: first offset, last offset, delivery count.
pub(crate) type AcquiredRange = (i64, i64, i16);

/// The records of `records` inside an acquired range (each with its range's delivery count), and
/// the acquired offsets with no record, as inclusive ranges (to acknowledge as GAP). Ranges with
/// `first > last` are ignored: they acquire nothing. Only offsets below `data_end` (the offset
/// after the last complete batch decoded, `None` if none was) can be gaps: an offset past the
/// data was not seen, and a GAP would archive a record nobody read.
pub(crate) fn acquired_records(
    topic_id: Uuid,
    records: Vec<ConsumerRecord>,
    data_end: Option<i64>,
    ranges: &[AcquiredRange],
) -> (Vec<ShareRecord>, Vec<(i64, i64)>) {
    let mut ranges: Vec<AcquiredRange> = ranges.iter().copied().filter(|r| r.0 <= r.1).collect();
    ranges.sort_unstable();
    let mut by_offset: BTreeMap<i64, ConsumerRecord> =
        records.into_iter().map(|r| (r.offset, r)).collect();
    let mut out = Vec::new();
    let mut gaps = Vec::new();
    for (first, last, delivery_count) in ranges {
        // The next offset of the range not yet covered by a record or a gap.
        let mut next = first;
        let inside: Vec<i64> = by_offset.range(first..=last).map(|(o, _)| *o).collect();
        for offset in inside {
            let Some(record) = by_offset.remove(&offset) else {
                continue;
            };
            if offset > next {
                gaps.push((next, offset - 1));
            }
            next = offset.saturating_add(1);
            out.push(ShareRecord {
                record,
                delivery_count,
                topic_id,
            });
        }
        if next <= last {
            gaps.push((next, last));
        }
    }
    let end = data_end.unwrap_or(i64::MIN);
    let gaps = gaps
        .into_iter()
        .filter(|&(first, _)| first < end)
        .map(|(first, last)| (first, last.min(end - 1)))
        .collect();
    (out, gaps)
}

/// Acknowledgements not yet sent, per partition, as inclusive offset ranges of one type each.
#[derive(Debug, Default)]
pub(crate) struct Acknowledgements {
    /// Per partition: first offset → (last offset, type id).
    pending: BTreeMap<TopicIdPartition, BTreeMap<i64, (i64, i8)>>,
}

impl Acknowledgements {
    /// Records `type_id` for `first..=last` of `tp` (a later acknowledgement of the same first
    /// offset replaces an earlier one).
    pub(crate) fn add(&mut self, tp: TopicIdPartition, first: i64, last: i64, type_id: i8) {
        self.pending
            .entry(tp)
            .or_default()
            .insert(first, (last, type_id));
    }

    /// The partitions with acknowledgements.
    pub(crate) fn partitions(&self) -> impl Iterator<Item = &TopicIdPartition> {
        self.pending.keys()
    }

    /// Takes the acknowledgements of the partitions `keep` says yes to.
    pub(crate) fn take_where(
        &mut self,
        mut keep: impl FnMut(&TopicIdPartition) -> bool,
    ) -> Acknowledgements {
        let (taken, left) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|(tp, _)| keep(tp));
        self.pending = left;
        Acknowledgements { pending: taken }
    }

    /// Puts back acknowledgements that could not be sent (they are sent with the next request).
    pub(crate) fn restore(&mut self, other: Acknowledgements) {
        for (tp, ranges) in other.pending {
            let mine = self.pending.entry(tp).or_default();
            for (first, v) in ranges {
                mine.entry(first).or_insert(v);
            }
        }
    }

    /// The wire batches of `tp`: adjacent ranges of the same type merged into one batch with a
    /// single type (Kafka's compact form), `(first, last, [type])`.
    pub(crate) fn batches(&self, tp: &TopicIdPartition) -> Vec<(i64, i64, Vec<i8>)> {
        let mut out: Vec<(i64, i64, Vec<i8>)> = Vec::new();
        for (&first, &(last, type_id)) in self.pending.get(tp).into_iter().flatten() {
            match out.last_mut() {
                Some((_, prev_last, types))
                    if prev_last.checked_add(1) == Some(first) && types[..] == [type_id] =>
                {
                    *prev_last = last;
                }
                _ => out.push((first, last, vec![type_id])),
            }
        }
        out
    }
}

/// What one ShareFetch of a session carries: the epoch, the partitions to name in `topics`
/// (added to the session, or carrying acknowledgements) and those to forget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SessionRequest {
    pub(crate) epoch: i32,
    pub(crate) topics: BTreeSet<TopicIdPartition>,
    pub(crate) forget: BTreeSet<TopicIdPartition>,
}

/// This client's side of one share session with one partition leader.
#[derive(Debug, Default)]
pub(crate) struct ShareSession {
    /// The epoch of the next request; 0 = no open session.
    epoch: i32,
    /// The partitions the broker holds in the session.
    partitions: BTreeSet<TopicIdPartition>,
}

/// Kafka's `ShareRequestMetadata.nextEpoch`: after `i32::MAX` comes 1 (0 would reopen).
pub(crate) fn next_epoch(epoch: i32) -> i32 {
    if epoch == i32::MAX {
        1
    } else {
        epoch + 1
    }
}

impl ShareSession {
    /// Whether the broker holds a session (a request with epoch 0 succeeded).
    pub(crate) fn is_open(&self) -> bool {
        self.epoch > 0
    }

    /// The epoch the next request carries.
    pub(crate) fn epoch(&self) -> i32 {
        self.epoch
    }

    /// Whether the session holds partitions that are not `wanted` (they must be forgotten).
    pub(crate) fn has_unwanted(&self, wanted: &BTreeSet<TopicIdPartition>) -> bool {
        !self.partitions.is_subset(wanted)
    }

    /// The next ShareFetch to fetch `wanted` and send the acknowledgements of `acked`. A session
    /// is opened (epoch 0) with every wanted partition and no acknowledgements (Kafka refuses
    /// them in an opening request; they wait for the next one).
    pub(crate) fn request(
        &self,
        wanted: &BTreeSet<TopicIdPartition>,
        acked: &BTreeSet<TopicIdPartition>,
    ) -> SessionRequest {
        if !self.is_open() {
            return SessionRequest {
                epoch: 0,
                topics: wanted.clone(),
                forget: BTreeSet::new(),
            };
        }
        let topics = wanted
            .difference(&self.partitions)
            .chain(acked.iter())
            .copied()
            .collect();
        // A partition named only for its acknowledgements is forgotten in the same request
        // (the broker adds before it forgets), so it is not fetched.
        let forget = self
            .partitions
            .iter()
            .chain(acked.iter())
            .filter(|tp| !wanted.contains(tp))
            .copied()
            .collect();
        SessionRequest {
            epoch: self.epoch,
            topics,
            forget,
        }
    }

    /// The broker accepted `sent`: the session now holds its partitions, at the next epoch.
    pub(crate) fn accepted(&mut self, sent: &SessionRequest) {
        if sent.epoch == 0 {
            self.partitions = sent.topics.clone();
        } else {
            self.partitions.extend(sent.topics.iter().copied());
            for tp in &sent.forget {
                self.partitions.remove(tp);
            }
        }
        self.epoch = next_epoch(sent.epoch);
    }

    /// A ShareAcknowledge was accepted: it moves the epoch as a fetch does.
    pub(crate) fn acknowledged(&mut self) {
        self.epoch = next_epoch(self.epoch);
    }

    /// The broker lost the session (or the connection failed): the next request opens a new one.
    pub(crate) fn reset(&mut self) {
        *self = ShareSession::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use kafka_protocol::records::TimestampType;
    use std::sync::Arc;

    fn record(offset: i64) -> ConsumerRecord {
        ConsumerRecord {
            topic: Arc::from("t"),
            partition: 0,
            offset,
            timestamp: 0,
            timestamp_type: TimestampType::Creation,
            key: None,
            value: Some(Bytes::from(format!("v{offset}"))),
            headers: Vec::new(),
        }
    }

    fn offsets(rs: &[ShareRecord]) -> Vec<(i64, i16)> {
        rs.iter()
            .map(|r| (r.record.offset, r.delivery_count))
            .collect()
    }

    #[test]
    fn only_acquired_offsets_are_delivered_with_their_delivery_count() {
        let id = Uuid::from_u128(7);
        let records = (10..20).map(record).collect();
        // 10..=12 acquired by someone else or acknowledged: not ours.
        let (got, gaps) = acquired_records(id, records, Some(20), &[(16, 19, 2), (13, 14, 1)]);
        assert_eq!(
            offsets(&got),
            vec![(13, 1), (14, 1), (16, 2), (17, 2), (18, 2), (19, 2)]
        );
        assert!(gaps.is_empty());
        assert!(got.iter().all(|r| r.topic_id == id));
    }

    #[test]
    fn acquired_offsets_without_records_are_gaps() {
        // 3 and 6..=7 are control records or compacted away; 9 is a control record ending
        // the data.
        let records = || [0, 1, 2, 4, 5, 8].into_iter().map(record).collect();
        let (got, gaps) = acquired_records(Uuid::nil(), records(), Some(10), &[(1, 9, 1)]);
        assert_eq!(
            got.iter().map(|r| r.record.offset).collect::<Vec<_>>(),
            vec![1, 2, 4, 5, 8]
        );
        assert_eq!(gaps, vec![(3, 3), (6, 7), (9, 9)]);

        // Acquired offsets past the decoded data (a batch cut short) were not seen: no GAP.
        let (_, gaps) = acquired_records(Uuid::nil(), records(), Some(7), &[(1, 12, 1)]);
        assert_eq!(gaps, vec![(3, 3), (6, 6)]);
        let (_, gaps) = acquired_records(Uuid::nil(), Vec::new(), None, &[(1, 12, 1)]);
        assert!(gaps.is_empty());
    }

    #[test]
    fn nonsense_ranges_deliver_nothing() {
        let records = (0..3).map(record).collect();
        let (got, gaps) = acquired_records(Uuid::nil(), records, Some(3), &[(2, 1, 1)]);
        assert!(got.is_empty() && gaps.is_empty());
        let (got, _) = acquired_records(Uuid::nil(), Vec::new(), None, &[]);
        assert!(got.is_empty());
    }

    #[test]
    fn acknowledgements_merge_adjacent_ranges_of_one_type() {
        let tp = (Uuid::from_u128(1), 0);
        let mut acks = Acknowledgements::default();
        for o in [5, 6, 7] {
            acks.add(tp, o, o, AcknowledgeType::Accept.id());
        }
        acks.add(tp, 8, 9, GAP);
        acks.add(tp, 10, 10, AcknowledgeType::Accept.id());
        acks.add(tp, 12, 12, AcknowledgeType::Accept.id()); // not adjacent
        acks.add(tp, 13, 13, AcknowledgeType::Release.id());
        assert_eq!(
            acks.batches(&tp),
            vec![
                (5, 7, vec![1]),
                (8, 9, vec![0]),
                (10, 10, vec![1]),
                (12, 12, vec![1]),
                (13, 13, vec![2]),
            ]
        );
        assert!(acks.batches(&(Uuid::nil(), 1)).is_empty());
    }

    #[test]
    fn acknowledgements_are_taken_per_partition_and_restored() {
        let (a, b) = ((Uuid::from_u128(1), 0), (Uuid::from_u128(1), 1));
        let mut acks = Acknowledgements::default();
        acks.add(a, 1, 1, 1);
        acks.add(b, 2, 2, 3);
        let taken = acks.take_where(|tp| *tp == a);
        assert_eq!(taken.batches(&a), vec![(1, 1, vec![1])]);
        assert!(taken.batches(&b).is_empty());
        assert_eq!(acks.partitions().collect::<Vec<_>>(), vec![&b]);
        acks.restore(taken);
        assert_eq!(acks.partitions().count(), 2);
    }

    #[test]
    fn session_opens_then_steps_adds_and_forgets() {
        let (a, b, c) = (
            (Uuid::from_u128(1), 0),
            (Uuid::from_u128(1), 1),
            (Uuid::from_u128(2), 0),
        );
        let mut s = ShareSession::default();
        assert!(!s.is_open());
        let wanted: BTreeSet<_> = [a, b].into();
        // Opening: every partition, no acknowledgements even if some are pending.
        let open = s.request(&wanted, &[a].into());
        assert_eq!(open.epoch, 0);
        assert_eq!(open.topics, wanted);
        assert!(open.forget.is_empty());
        s.accepted(&open);
        assert_eq!(s.epoch(), 1);

        // Nothing changed: an empty request at epoch 1.
        let same = s.request(&wanted, &BTreeSet::new());
        assert_eq!(
            (same.epoch, same.topics.len(), same.forget.len()),
            (1, 0, 0)
        );
        s.accepted(&same);

        // b leaves, c comes; acknowledgements of b are still sent, and b is forgotten.
        let next: BTreeSet<_> = [a, c].into();
        let step = s.request(&next, &[a, b].into());
        assert_eq!(step.epoch, 2);
        assert_eq!(step.topics, [a, b, c].into());
        assert_eq!(step.forget, [b].into());
        s.accepted(&step);
        assert_eq!(s.epoch(), 3);
        assert!(!s.has_unwanted(&next));
        assert!(s.has_unwanted(&[a].into()));

        s.acknowledged();
        assert_eq!(s.epoch(), 4);
        s.reset();
        assert_eq!(s.request(&next, &BTreeSet::new()).epoch, 0);
    }

    #[test]
    fn epochs_wrap_to_one_never_zero() {
        assert_eq!(next_epoch(0), 1);
        assert_eq!(next_epoch(41), 42);
        assert_eq!(next_epoch(i32::MAX), 1);
    }
}
