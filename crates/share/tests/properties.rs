//! Random acquire / acknowledge / expire / release / failover sequences against one share
//! partition, checked against a small model of who holds what, and against the durable records
//! replayed the way the broker will (write → JSON → replay → reload).
//!
//! Invariants: a record is never acquired by two members at once and never ACKNOWLEDGED twice, not
//! even across a failover; SPSO never moves back and everything below it is done; delivery counts
//! grow by one per delivery and never pass the limit; snapshot → reload keeps terminal states and
//! counts; the replayed records equal the live state's durable form after every operation.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use strom_share::{
    merge_state_batches, AcknowledgeType, AcknowledgementBatch, FetchedBatch, RecordState,
    SharePartition, SharePartitionConfig, ShareStateLog, ShareStateRecord, StateChanges,
    INVALID_RECORD_STATE, INVALID_REQUEST,
};

const LOCK_MS: u64 = 1_000;
const MEMBERS: [&str; 3] = ["a", "b", "c"];

#[derive(Debug, Clone)]
enum Op {
    Fetch {
        member: usize,
        max: u32,
    },
    /// Acknowledge the `pick`-th range the member holds with one type, or per offset.
    Ack {
        member: usize,
        pick: usize,
        types: Vec<u8>,
    },
    /// Acknowledge an arbitrary range: must fail unless the model says it holds.
    AckAny {
        member: usize,
        first: i64,
        len: i64,
        ty: u8,
    },
    Tick {
        ms: u64,
    },
    Leave {
        member: usize,
    },
    Failover,
    LogStart {
        delta: i64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..3usize, 1..8u32).prop_map(|(member, max)| Op::Fetch { member, max }),
        6 => (0..3usize, 0..4usize, prop::collection::vec(0..8u8, 1..5))
            .prop_map(|(member, pick, types)| Op::Ack { member, pick, types }),
        2 => (0..3usize, 0..45i64, 1..6i64, 0..8u8)
            .prop_map(|(member, first, len, ty)| Op::AckAny { member, first, len, ty }),
        3 => (0..1_500u64).prop_map(|ms| Op::Tick { ms }),
        1 => (0..3usize).prop_map(|member| Op::Leave { member }),
        1 => Just(Op::Failover),
        1 => (1..4i64).prop_map(|delta| Op::LogStart { delta }),
    ]
}

/// Log batches: (size, aborted) from offset 0.
fn log_batches() -> impl Strategy<Value = Vec<(i64, bool)>> {
    prop::collection::vec((1..5i64, prop::bool::weighted(0.1)), 5..15)
}

/// Accept weighs 3/8, so runs get somewhere.
fn ack_type(id: u8) -> AcknowledgeType {
    match id {
        0 => AcknowledgeType::Gap,
        1 | 5 | 6 => AcknowledgeType::Accept,
        2 | 7 => AcknowledgeType::Release,
        3 => AcknowledgeType::Reject,
        _ => AcknowledgeType::Renew,
    }
}

struct Harness {
    config: SharePartitionConfig,
    log: Vec<FetchedBatch>,
    log_start: i64,
    partition: SharePartition,
    durable: ShareStateLog,
    leader_epoch: i32,
    now: u64,
    /// offset → (member, lock deadline), as the model sees the locks.
    held: BTreeMap<i64, (usize, u64)>,
    /// offset → delivery count of its last delivery.
    delivered: BTreeMap<i64, i16>,
    accepted: BTreeSet<i64>,
    max_start: i64,
}

impl Harness {
    fn new(sizes: &[(i64, bool)], limit: i16, locks: u32) -> Harness {
        let mut log = Vec::new();
        let mut next = 0;
        for &(size, aborted) in sizes {
            log.push(FetchedBatch {
                first_offset: next,
                last_offset: next + size - 1,
                aborted,
            });
            next += size;
        }
        let config = SharePartitionConfig {
            delivery_count_limit: limit,
            max_in_flight_records: locks,
            record_lock_duration_ms: LOCK_MS,
            renew_acknowledge_enable: true,
        };
        let partition = SharePartition::new(config, 0, 0, 0);
        let mut durable = ShareStateLog::new(3);
        let first = durable.initialize(partition.snapshot());
        durable.replay(&first).expect("initial snapshot");
        Harness {
            config,
            log,
            log_start: 0,
            partition,
            durable,
            leader_epoch: 0,
            now: 0,
            held: BTreeMap::new(),
            delivered: BTreeMap::new(),
            accepted: BTreeSet::new(),
            max_start: 0,
        }
    }

    fn persist(&mut self, changes: &StateChanges) -> Result<(), TestCaseError> {
        if changes.is_empty() {
            return Ok(());
        }
        let record = self
            .durable
            .write(changes)
            .map_err(|e| TestCaseError::fail(format!("write refused: {e}")))?;
        let json = record
            .to_json()
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let back =
            ShareStateRecord::from_json(&json).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&back, &record);
        self.durable
            .replay(&back)
            .map_err(|e| TestCaseError::fail(format!("replay refused: {e}")))?;
        Ok(())
    }

    fn apply(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match op {
            Op::Fetch { member, max } => self.fetch(*member, *max),
            Op::Ack {
                member,
                pick,
                types,
            } => self.ack_held(*member, *pick, types),
            Op::AckAny {
                member,
                first,
                len,
                ty,
            } => self.ack_any(*member, *first, *len, *ty),
            Op::Tick { ms } => {
                self.now += ms;
                let changes = self.partition.expire_locks(self.now);
                let now = self.now;
                self.held.retain(|_, (_, deadline)| *deadline > now);
                self.persist(&changes)
            }
            Op::Leave { member } => {
                let changes = self.partition.release_member(MEMBERS[*member]);
                self.held.retain(|_, (m, _)| m != member);
                self.persist(&changes)
            }
            Op::Failover => self.failover(),
            Op::LogStart { delta } => {
                self.log_start += delta;
                let changes = self.partition.update_log_start_offset(self.log_start);
                let start = self.partition.start_offset();
                self.held.retain(|offset, _| *offset >= start);
                self.persist(&changes)
            }
        }
    }

    fn fetch(&mut self, member: usize, max: u32) -> Result<(), TestCaseError> {
        let offset = self.partition.next_fetch_offset();
        // A read returns at most four batches from the one holding `offset`.
        let read: Vec<FetchedBatch> = self
            .log
            .iter()
            .filter(|b| b.last_offset >= offset.max(self.log_start))
            .take(4)
            .copied()
            .collect();
        let got = self
            .partition
            .acquire(MEMBERS[member], offset, &read, max, self.now);
        let mut count = 0;
        for r in &got.records {
            for o in r.first_offset..=r.last_offset {
                count += 1;
                prop_assert!(
                    !self.held.contains_key(&o),
                    "{} acquired while held: {:?}",
                    o,
                    self.held.get(&o)
                );
                prop_assert!(
                    !self.accepted.contains(&o),
                    "{} acquired after being accepted",
                    o
                );
                prop_assert!(
                    o >= self.max_start,
                    "{} acquired below a past start offset",
                    o
                );
                prop_assert!(o >= self.log_start);
                let previous = self.delivered.get(&o).copied().unwrap_or(0);
                prop_assert_eq!(r.delivery_count, previous + 1, "delivery count of {}", o);
                prop_assert!(r.delivery_count <= self.config.delivery_count_limit);
                prop_assert!(read
                    .iter()
                    .any(|b| b.first_offset <= o && o <= b.last_offset && !b.aborted));
                self.delivered.insert(o, r.delivery_count);
                self.held.insert(o, (member, self.now + LOCK_MS));
            }
        }
        prop_assert_eq!(got.count, count);
        self.persist(&got.changes)
    }

    fn ack_held(&mut self, member: usize, pick: usize, types: &[u8]) -> Result<(), TestCaseError> {
        let now = self.now;
        let mine: Vec<i64> = self
            .held
            .iter()
            .filter(|(_, (m, deadline))| *m == member && *deadline > now)
            .map(|(o, _)| *o)
            .collect();
        // Contiguous runs of held offsets.
        let mut runs: Vec<(i64, i64)> = Vec::new();
        for o in mine {
            match runs.last_mut() {
                Some((_, last)) if *last + 1 == o => *last = o,
                _ => runs.push((o, o)),
            }
        }
        let Some(&(first, last)) = runs.get(pick % runs.len().max(1)) else {
            return Ok(());
        };
        let span = usize::try_from(last - first + 1).unwrap_or(0);
        let ack_types: Vec<AcknowledgeType> = if types.len() == 1 || span == 1 {
            vec![ack_type(types[0])]
        } else {
            (0..span)
                .map(|i| ack_type(types[i % types.len()]))
                .collect()
        };
        let batch = AcknowledgementBatch {
            first_offset: first,
            last_offset: last,
            ack_types: ack_types.clone(),
        };
        let changes = self
            .partition
            .acknowledge(MEMBERS[member], &[batch], now)
            .map_err(|e| TestCaseError::fail(format!("valid ack refused: {e}")))?;
        for (i, o) in (first..=last).enumerate() {
            let ty = if ack_types.len() == 1 {
                ack_types[0]
            } else {
                ack_types[i]
            };
            match ty {
                AcknowledgeType::Renew => {
                    self.held.insert(o, (member, now + LOCK_MS));
                }
                AcknowledgeType::Accept => {
                    prop_assert!(self.accepted.insert(o), "{} accepted twice", o);
                    self.held.remove(&o);
                }
                _ => {
                    self.held.remove(&o);
                }
            }
        }
        self.persist(&changes)
    }

    fn ack_any(
        &mut self,
        member: usize,
        first: i64,
        len: i64,
        ty: u8,
    ) -> Result<(), TestCaseError> {
        let last = first + len - 1;
        let start = self.partition.start_offset();
        let before = self.partition.snapshot();
        let batch = AcknowledgementBatch {
            first_offset: first,
            last_offset: last,
            ack_types: vec![ack_type(ty)],
        };
        let result = self
            .partition
            .acknowledge(MEMBERS[member], &[batch], self.now);
        let now = self.now;
        let holds_all = (first.max(start)..=last).all(
            |o| matches!(self.held.get(&o), Some((m, deadline)) if *m == member && *deadline > now),
        );
        match result {
            Ok(changes) => {
                prop_assert!(
                    holds_all || last < start,
                    "ack of {}..={} by {} accepted without holding",
                    first,
                    last,
                    member
                );
                for o in first.max(start)..=last {
                    if ack_type(ty) == AcknowledgeType::Renew {
                        self.held.insert(o, (member, now + LOCK_MS));
                    } else {
                        if ack_type(ty) == AcknowledgeType::Accept {
                            prop_assert!(self.accepted.insert(o), "{} accepted twice", o);
                        }
                        self.held.remove(&o);
                    }
                }
                self.persist(&changes)
            }
            Err(e) => {
                prop_assert!(e.code() == INVALID_RECORD_STATE || e.code() == INVALID_REQUEST);
                prop_assert!(!holds_all && last >= start, "held range refused: {}", e);
                prop_assert_eq!(
                    self.partition.snapshot(),
                    before,
                    "a refused ack changed the state"
                );
                Ok(())
            }
        }
    }

    /// The leader moves: a new one loads the durable state. Acquisitions are lost, so a record
    /// that was held comes back with its last durable delivery count.
    fn failover(&mut self) -> Result<(), TestCaseError> {
        self.leader_epoch += 1;
        let state = self
            .durable
            .state()
            .cloned()
            .ok_or_else(|| TestCaseError::fail("no state"))?;
        self.partition = SharePartition::from_snapshot(self.config, self.leader_epoch, &state)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        for (offset, _) in std::mem::take(&mut self.held) {
            if let Some(count) = self.delivered.get_mut(&offset) {
                *count -= 1;
            }
        }
        prop_assert!(self.partition.start_offset() >= state.start_offset);
        Ok(())
    }

    fn check(&mut self) -> Result<(), TestCaseError> {
        let p = &self.partition;
        let start = p.start_offset();
        prop_assert!(
            start >= self.max_start,
            "start offset moved back: {} < {}",
            start,
            self.max_start
        );
        for o in self.max_start..start {
            if let Some(r) = p.record(o) {
                prop_assert!(
                    r.state.is_terminal(),
                    "{} below the start offset is {:?}",
                    o,
                    r.state
                );
            }
        }
        self.max_start = start;
        for o in &self.accepted {
            if *o >= start {
                prop_assert_eq!(
                    p.record(*o).map(|r| r.state),
                    Some(RecordState::Acknowledged)
                );
            }
        }
        for r in p.records() {
            prop_assert!(r.delivery_count <= self.config.delivery_count_limit);
            prop_assert!(r.delivery_count >= 0);
            if r.state == RecordState::Available {
                prop_assert!(
                    r.delivery_count < self.config.delivery_count_limit,
                    "{} available at the limit",
                    r.offset
                );
            }
            let model = self.held.get(&r.offset).map(|(m, d)| (MEMBERS[*m], *d));
            let live = r.member_id.zip(r.lock_deadline_ms);
            prop_assert_eq!(live, model, "lock of {}", r.offset);
            prop_assert_eq!(r.state == RecordState::Acquired, live.is_some());
            match self.delivered.get(&r.offset) {
                Some(count) => prop_assert_eq!(r.delivery_count, *count, "count of {}", r.offset),
                // Never delivered: untouched, or archived at acquisition (aborted transactions).
                None => prop_assert!(
                    (r.state == RecordState::Available && r.delivery_count == 0)
                        || r.state == RecordState::Archived,
                    "{} never delivered but {:?}",
                    r.offset,
                    r.state
                ),
            }
        }
        prop_assert!(p.end_offset() >= start);

        // The durable records, replayed, are the live state's durable form.
        let snapshot = p.snapshot();
        let durable = self
            .durable
            .state()
            .cloned()
            .ok_or_else(|| TestCaseError::fail("no state"))?;
        prop_assert!(durable.start_offset <= start);
        for b in &durable.state_batches {
            if b.first_offset < start {
                prop_assert!(
                    b.delivery_state.is_terminal(),
                    "durable {:?} below the start offset",
                    b
                );
            }
        }
        let clipped = merge_state_batches(&durable.state_batches, &[], start)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(
            &clipped,
            &snapshot.state_batches,
            "durable records differ from the live state"
        );

        // Snapshot → reload keeps terminal states, counts and the start offset.
        let reloaded = SharePartition::from_snapshot(self.config, self.leader_epoch, &snapshot)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(reloaded.start_offset(), start);
        prop_assert_eq!(
            reloaded.snapshot().state_batches,
            snapshot.state_batches.clone()
        );
        for r in p.records() {
            let back = reloaded
                .record(r.offset)
                .map(|b| (b.state, b.delivery_count));
            let expected = match r.state {
                RecordState::Acquired => (RecordState::Available, r.delivery_count - 1),
                other => (other, r.delivery_count),
            };
            if back.is_some() || expected.1 > 0 || expected.0.is_terminal() {
                prop_assert_eq!(back, Some(expected), "reloaded {}", r.offset);
            }
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn share_partition_invariants(
        sizes in log_batches(),
        limit in 2..6i16,
        locks in 4..25u32,
        ops in prop::collection::vec(op(), 1..120),
    ) {
        let mut h = Harness::new(&sizes, limit, locks);
        for op in &ops {
            h.apply(op)?;
            h.check()?;
        }
    }
}
