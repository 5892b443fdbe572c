//! Scenarios on one share partition through the public API, with a simulated log: what a share
//! consumer sees (delivery counts, redelivery, archiving) and what a broker must persist.

use std::collections::BTreeMap;

use strom_share::{
    AcknowledgeType, AcknowledgementBatch, AutoOffsetReset, FetchedBatch, PersisterStateBatch,
    RecordState, ShareAcquiredRecords, SharePartition, SharePartitionConfig, ShareSnapshot,
    StateChanges, INVALID_RECORD_STATE, INVALID_REQUEST,
};

use AcknowledgeType::{Accept, Gap, Reject, Release, Renew};

const LOCK_MS: u64 = 30_000;

fn config() -> SharePartitionConfig {
    SharePartitionConfig::default()
}

/// A log of batches; a read at an offset returns every batch ending at or after it.
struct Log(Vec<(i64, i64)>);

impl Log {
    /// `count` batches of `size` records from offset 0.
    fn uniform(count: i64, size: i64) -> Log {
        Log((0..count)
            .map(|i| (i * size, i * size + size - 1))
            .collect())
    }

    fn read(&self, offset: i64) -> Vec<FetchedBatch> {
        self.0
            .iter()
            .filter(|(_, last)| *last >= offset)
            .map(|&(first_offset, last_offset)| FetchedBatch {
                first_offset,
                last_offset,
                aborted: false,
            })
            .collect()
    }

    fn fetch(
        &self,
        partition: &mut SharePartition,
        member: &str,
        max_records: u32,
        now: u64,
    ) -> ShareAcquiredRecords {
        let offset = partition.next_fetch_offset();
        partition.acquire(member, offset, &self.read(offset), max_records, now)
    }
}

fn ack(first: i64, last: i64, ack_type: AcknowledgeType) -> AcknowledgementBatch {
    AcknowledgementBatch {
        first_offset: first,
        last_offset: last,
        ack_types: vec![ack_type],
    }
}

fn offsets(acquired: &ShareAcquiredRecords) -> Vec<(i64, i16)> {
    acquired
        .records
        .iter()
        .flat_map(|r| (r.first_offset..=r.last_offset).map(move |o| (o, r.delivery_count)))
        .collect()
}

fn state_of(partition: &SharePartition, offset: i64) -> Option<(RecordState, i16)> {
    partition
        .record(offset)
        .map(|r| (r.state, r.delivery_count))
}

fn persisted(first: i64, last: i64, state: RecordState, count: i16) -> PersisterStateBatch {
    PersisterStateBatch {
        first_offset: first,
        last_offset: last,
        delivery_state: state,
        delivery_count: count,
    }
}

#[test]
fn acquire_then_accept_moves_the_start_offset_and_forgets_the_batch() {
    let log = Log::uniform(2, 5);
    let mut p = SharePartition::new(config(), 0, 0, 0);
    let got = log.fetch(&mut p, "m", 5, 0);
    assert_eq!(offsets(&got).len(), 5, "{got:?}");
    assert!(got.changes.is_empty(), "acquisition is not durable");
    assert_eq!(p.end_offset(), 5);
    assert_eq!(p.record(2).and_then(|r| r.member_id), Some("m"));
    assert_eq!(p.record(2).and_then(|r| r.lock_deadline_ms), Some(LOCK_MS));
    assert_eq!(p.next_lock_deadline(), Some(LOCK_MS));

    let changes = p
        .acknowledge("m", &[ack(0, 4, Accept)], 10)
        .expect("accept");
    assert_eq!(p.start_offset(), 5);
    assert_eq!(p.records().count(), 0, "done records are dropped");
    assert_eq!(changes.start_offset, 5);
    assert!(changes.start_offset_moved());
    assert!(
        changes.state_batches.is_empty(),
        "all below the start offset"
    );
    assert_eq!(p.next_lock_deadline(), None);
}

#[test]
fn more_consumers_than_partitions_share_without_double_acceptance() {
    let log = Log::uniform(30, 4);
    let mut p = SharePartition::new(config(), 0, 0, 0);
    let members = ["a", "b", "c", "d", "e"];
    let mut accepted: BTreeMap<i64, &str> = BTreeMap::new();
    let mut per_member: BTreeMap<&str, usize> = BTreeMap::new();
    let mut now = 0;
    for round in 0..40 {
        // Everyone fetches before anyone acknowledges: they hold records at the same time.
        let mut held = Vec::new();
        for member in members {
            now += 1;
            let got = log.fetch(&mut p, member, 4, now);
            held.push((member, got));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (_, got) in &held {
            for (offset, _) in offsets(got) {
                assert!(
                    seen.insert(offset),
                    "offset {offset} acquired twice at once"
                );
            }
        }
        for (member, got) in held {
            for r in &got.records {
                // Every other round one member releases instead: redelivered to someone else.
                let kind = if round % 2 == 1 && member == "c" {
                    Release
                } else {
                    Accept
                };
                p.acknowledge(member, &[ack(r.first_offset, r.last_offset, kind)], now)
                    .expect("ack");
                if kind == Accept {
                    for offset in r.first_offset..=r.last_offset {
                        assert!(accepted.insert(offset, member).is_none(), "{offset} twice");
                        *per_member.entry(member).or_default() += 1;
                    }
                }
            }
        }
    }
    assert_eq!(accepted.len(), 120, "every record accepted once");
    assert_eq!(p.start_offset(), 120);
    assert!(per_member.len() >= 4, "the work was shared: {per_member:?}");
}

#[test]
fn release_redelivers_with_delivery_count_two() {
    let log = Log::uniform(1, 3);
    let mut p = SharePartition::new(config(), 0, 0, 0);
    let first = log.fetch(&mut p, "a", 10, 0);
    assert_eq!(offsets(&first), vec![(0, 1), (1, 1), (2, 1)]);
    let changes = p
        .acknowledge("a", &[ack(0, 2, Release)], 5)
        .expect("release");
    assert_eq!(
        changes.state_batches,
        vec![persisted(0, 2, RecordState::Available, 1)],
        "the delivery count is durable"
    );
    assert_eq!(p.next_fetch_offset(), 0);
    let second = log.fetch(&mut p, "b", 10, 6);
    assert_eq!(offsets(&second), vec![(0, 2), (1, 2), (2, 2)]);
    assert_eq!(p.record(0).and_then(|r| r.member_id), Some("b"));
}

#[test]
fn rejected_records_are_never_delivered_again() {
    let log = Log::uniform(2, 3);
    let mut p = SharePartition::new(config(), 0, 0, 0);
    let got = log.fetch(&mut p, "a", 3, 0);
    assert_eq!(offsets(&got).len(), 3);
    let changes = p
        .acknowledge(
            "a",
            &[AcknowledgementBatch {
                first_offset: 0,
                last_offset: 2,
                ack_types: vec![Accept, Reject, Release],
            }],
            1,
        )
        .expect("ack");
    assert_eq!(p.start_offset(), 2, "0 accepted, 1 rejected: both done");
    assert_eq!(
        changes.state_batches,
        vec![persisted(2, 2, RecordState::Available, 1)]
    );
    let again = log.fetch(&mut p, "b", 10, 2);
    let delivered: Vec<i64> = offsets(&again).into_iter().map(|(o, _)| o).collect();
    assert_eq!(delivered, vec![2, 3, 4, 5]);
    assert!(!delivered.contains(&1));
}

#[test]
fn an_expired_lock_makes_the_records_available_to_another_member() {
    let log = Log::uniform(1, 2);
    let mut p = SharePartition::new(config(), 0, 0, 0);
    log.fetch(&mut p, "a", 10, 1_000);
    assert_eq!(p.next_lock_deadline(), Some(1_000 + LOCK_MS));

    // Before the sweep, the expired lock already refuses the holder's acknowledgement.
    let late = p.acknowledge("a", &[ack(0, 1, Accept)], 1_000 + LOCK_MS);
    assert_eq!(late.map_err(|e| e.code()), Err(INVALID_RECORD_STATE));

    let nothing = p.expire_locks(1_000 + LOCK_MS - 1);
    assert!(nothing.is_empty());
    let expired = p.expire_locks(1_000 + LOCK_MS);
    assert_eq!(
        expired.state_batches,
        vec![persisted(0, 1, RecordState::Available, 1)]
    );
    let got = log.fetch(&mut p, "b", 10, 40_000);
    assert_eq!(offsets(&got), vec![(0, 2), (1, 2)]);
    let stale = p.acknowledge("a", &[ack(0, 1, Accept)], 40_001);
    assert_eq!(stale.map_err(|e| e.code()), Err(INVALID_RECORD_STATE));
    assert!(p.acknowledge("b", &[ack(0, 1, Accept)], 40_001).is_ok());
    assert_eq!(p.start_offset(), 2);
}

#[test]
fn five_failed_deliveries_archive_the_record() {
    let log = Log::uniform(1, 1);
    let mut p = SharePartition::new(config(), 0, 0, 0);
    let mut now = 0;
    for delivery in 1..=5i16 {
        let got = log.fetch(&mut p, "m", 10, now);
        assert_eq!(offsets(&got), vec![(0, delivery)]);
        if delivery % 2 == 0 {
            now += LOCK_MS;
            p.expire_locks(now);
        } else {
            p.acknowledge("m", &[ack(0, 0, Release)], now)
                .expect("release");
        }
        now += 1;
    }
    assert_eq!(p.start_offset(), 1, "archived: done");
    assert!(offsets(&log.fetch(&mut p, "m", 10, now)).is_empty());
}

#[test]
fn the_delivery_limit_archives_at_expiry_and_is_durable() {
    let log = Log::uniform(1, 2);
    let mut p = SharePartition::new(
        SharePartitionConfig {
            delivery_count_limit: 2,
            ..config()
        },
        0,
        0,
        0,
    );
    log.fetch(&mut p, "m", 10, 0);
    p.expire_locks(LOCK_MS);
    log.fetch(&mut p, "m", 10, LOCK_MS);
    let changes = p.expire_locks(2 * LOCK_MS);
    assert_eq!(p.start_offset(), 2);
    assert_eq!(changes.start_offset, 2);
    assert!(changes.start_offset_moved());
}

#[test]
fn acknowledgement_errors_are_kafkas_and_apply_nothing() {
    let log = Log::uniform(2, 5);
    let mut p = SharePartition::new(config(), 0, 0, 0);
    log.fetch(&mut p, "a", 5, 0);
    log.fetch(&mut p, "b", 5, 0);
    let code = |r: Result<StateChanges, strom_share::ShareError>| r.map_err(|e| e.code());

    assert_eq!(
        code(p.acknowledge("b", &[ack(0, 4, Accept)], 1)),
        Err(INVALID_RECORD_STATE),
        "another member's records"
    );
    assert_eq!(
        code(p.acknowledge("a", &[ack(0, 4, Accept), ack(5, 9, Accept)], 1)),
        Err(INVALID_RECORD_STATE),
        "the second batch is b's: the first is not applied either"
    );
    assert_eq!(state_of(&p, 0), Some((RecordState::Acquired, 1)));
    assert_eq!(
        code(p.acknowledge("a", &[ack(8, 12, Accept)], 1)),
        Err(INVALID_REQUEST),
        "past the acquired records"
    );
    assert_eq!(
        code(p.acknowledge("a", &[ack(20, 21, Accept)], 1)),
        Err(INVALID_REQUEST)
    );
    assert_eq!(
        code(p.acknowledge(
            "a",
            &[AcknowledgementBatch {
                first_offset: 0,
                last_offset: 4,
                ack_types: vec![Accept, Accept],
            }],
            1
        )),
        Err(INVALID_REQUEST),
        "two types for five offsets"
    );
    assert_eq!(
        code(p.acknowledge("a", &[ack(3, 4, Accept), ack(0, 3, Accept)], 1)),
        Err(INVALID_REQUEST),
        "overlapping batches"
    );
    assert_eq!(
        code(p.acknowledge("a", &[ack(4, 3, Accept)], 1)),
        Err(INVALID_REQUEST)
    );
    assert_eq!(p.start_offset(), 0);
    assert!(p.acknowledge("a", &[ack(0, 4, Accept)], 1).is_ok());
    // Acknowledging below the start offset is ignored, as Kafka.
    let again = p
        .acknowledge("a", &[ack(0, 4, Accept)], 2)
        .expect("ignored");
    assert!(again.is_empty());
}

#[test]
fn acknowledging_a_never_acquired_record_is_invalid_record_state() {
    let mut p = SharePartition::new(config(), 0, 0, 0);
    let result = p.acknowledge("a", &[ack(0, 0, Accept)], 0);
    assert_eq!(result.map_err(|e| e.code()), Err(INVALID_RECORD_STATE));
    let log = Log::uniform(1, 3);
    log.fetch(&mut p, "a", 10, 0);
    p.acknowledge("a", &[ack(1, 1, Release)], 0)
        .expect("release");
    let result = p.acknowledge("a", &[ack(1, 1, Accept)], 0);
    assert_eq!(
        result.map_err(|e| e.code()),
        Err(INVALID_RECORD_STATE),
        "released: no longer acquired"
    );
}

#[test]
fn per_offset_acknowledgements_split_the_batch_and_gaps_are_archived() {
    let log = Log::uniform(1, 6);
    let mut p = SharePartition::new(config(), 0, 0, 0);
    log.fetch(&mut p, "a", 10, 0);
    let changes = p
        .acknowledge(
            "a",
            &[AcknowledgementBatch {
                first_offset: 0,
                last_offset: 5,
                ack_types: vec![Accept, Gap, Accept, Release, Reject, Accept],
            }],
            1,
        )
        .expect("ack");
    assert_eq!(p.start_offset(), 3);
    assert_eq!(
        changes.state_batches,
        vec![
            persisted(3, 3, RecordState::Available, 1),
            persisted(4, 4, RecordState::Archived, 1),
            persisted(5, 5, RecordState::Acknowledged, 1),
        ]
    );
    let got = log.fetch(&mut p, "b", 10, 2);
    assert_eq!(offsets(&got), vec![(3, 2)]);
    p.acknowledge("b", &[ack(3, 3, Accept)], 3).expect("accept");
    assert_eq!(p.start_offset(), 6);
    assert_eq!(p.records().count(), 0);
}

#[test]
fn a_sub_range_acknowledgement_leaves_the_rest_acquired() {
    let log = Log::uniform(1, 10);
    let mut p = SharePartition::new(config(), 0, 0, 0);
    log.fetch(&mut p, "a", 10, 0);
    p.acknowledge("a", &[ack(2, 4, Accept)], 1).expect("accept");
    assert_eq!(p.start_offset(), 0);
    assert_eq!(state_of(&p, 3), Some((RecordState::Acknowledged, 1)));
    assert_eq!(state_of(&p, 5), Some((RecordState::Acquired, 1)));
    p.acknowledge("a", &[ack(0, 1, Accept), ack(5, 9, Accept)], 2)
        .expect("accept");
    assert_eq!(p.start_offset(), 10);
}

#[test]
fn renew_extends_the_lock_and_writes_nothing() {
    let log = Log::uniform(1, 4);
    let mut p = SharePartition::new(config(), 0, 0, 0);
    log.fetch(&mut p, "a", 10, 0);
    let renewed = p
        .acknowledge(
            "a",
            &[AcknowledgementBatch {
                first_offset: 0,
                last_offset: 3,
                ack_types: vec![Renew, Renew, Accept, Renew],
            }],
            20_000,
        )
        .expect("renew");
    assert_eq!(
        renewed.state_batches,
        vec![persisted(2, 2, RecordState::Acknowledged, 1)]
    );
    assert_eq!(
        p.record(0).and_then(|r| r.lock_deadline_ms),
        Some(20_000 + LOCK_MS)
    );
    assert!(
        p.expire_locks(LOCK_MS).is_empty(),
        "the renewed lock still runs"
    );
    assert!(p
        .acknowledge("a", &[ack(0, 1, Accept)], LOCK_MS + 1)
        .is_ok());

    let only_renew = p
        .acknowledge("a", &[ack(3, 3, Renew)], LOCK_MS + 2)
        .expect("renew");
    assert!(only_renew.is_empty());

    let mut off = p.clone();
    off.set_config(SharePartitionConfig {
        renew_acknowledge_enable: false,
        ..config()
    });
    let refused = off.acknowledge("a", &[ack(3, 3, Renew)], LOCK_MS + 3);
    assert_eq!(refused.map_err(|e| e.code()), Err(INVALID_RECORD_STATE));
}

#[test]
fn record_locks_bound_new_records_but_not_redelivery() {
    let log = Log::uniform(10, 5);
    let mut p = SharePartition::new(
        SharePartitionConfig {
            max_in_flight_records: 10,
            ..config()
        },
        0,
        0,
        0,
    );
    assert_eq!(offsets(&log.fetch(&mut p, "a", 100, 0)).len(), 10);
    assert!(!p.can_acquire_records());
    assert!(offsets(&log.fetch(&mut p, "b", 100, 0)).is_empty());
    p.acknowledge("a", &[ack(7, 7, Release)], 1)
        .expect("release");
    assert!(p.can_acquire_records());
    assert_eq!(offsets(&log.fetch(&mut p, "b", 100, 2)), vec![(7, 2)]);
    p.acknowledge("a", &[ack(0, 4, Accept)], 3).expect("accept");
    assert_eq!(p.in_flight_count(), 5);
    let got = log.fetch(&mut p, "b", 100, 4);
    assert_eq!(offsets(&got).first(), Some(&(10, 1)));
    assert_eq!(offsets(&got).len(), 5);
}

#[test]
fn max_records_is_soft_at_log_batch_boundaries() {
    let log = Log::uniform(4, 5);
    let mut p = SharePartition::new(config(), 0, 0, 0);
    let got = log.fetch(&mut p, "a", 7, 0);
    assert_eq!(
        got.count, 10,
        "the batch holding the 7th record is taken whole"
    );
    assert_eq!(got.records.len(), 1);
}

#[test]
fn a_member_leaving_releases_its_records() {
    let log = Log::uniform(2, 3);
    let mut p = SharePartition::new(config(), 0, 0, 0);
    log.fetch(&mut p, "a", 3, 0);
    log.fetch(&mut p, "b", 3, 0);
    let changes = p.release_member("a");
    assert_eq!(
        changes.state_batches,
        vec![persisted(0, 2, RecordState::Available, 1)]
    );
    assert_eq!(state_of(&p, 4), Some((RecordState::Acquired, 1)));
    assert!(p.release_member("nobody").is_empty());
    assert_eq!(
        offsets(&log.fetch(&mut p, "c", 10, 1)),
        vec![(0, 2), (1, 2), (2, 2)]
    );
}

#[test]
fn records_gone_from_the_log_are_archived() {
    let mut p = SharePartition::new(config(), 0, 0, 0);
    let log = Log(vec![(0, 4), (5, 9)]);
    log.fetch(&mut p, "a", 100, 0);
    p.acknowledge("a", &[ack(0, 9, Release)], 1)
        .expect("release");
    // Compaction removed the first batch: the read at 0 starts at 5.
    let compacted = Log(vec![(5, 9)]);
    let got = compacted.fetch(&mut p, "a", 100, 2);
    assert_eq!(offsets(&got).first(), Some(&(5, 2)));
    assert_eq!(p.start_offset(), 5, "0..=4 archived, hence done");
    assert!(got.changes.start_offset_moved());
    assert_eq!(got.changes.start_offset, 5);
}

#[test]
fn aborted_transactions_are_archived_not_delivered() {
    let mut p = SharePartition::new(config(), 0, 0, 0);
    let fetched = [
        FetchedBatch {
            first_offset: 0,
            last_offset: 2,
            aborted: false,
        },
        FetchedBatch {
            first_offset: 3,
            last_offset: 5,
            aborted: true,
        },
        FetchedBatch {
            first_offset: 6,
            last_offset: 6,
            aborted: true,
        },
        FetchedBatch {
            first_offset: 7,
            last_offset: 8,
            aborted: false,
        },
    ];
    let got = p.acquire("a", 0, &fetched, 100, 0);
    let delivered: Vec<i64> = offsets(&got).into_iter().map(|(o, _)| o).collect();
    assert_eq!(delivered, vec![0, 1, 2, 7, 8]);
    assert_eq!(got.count, 5);
    assert_eq!(
        got.changes.state_batches,
        vec![persisted(3, 6, RecordState::Archived, 1)]
    );
    p.acknowledge("a", &[ack(0, 2, Accept), ack(7, 8, Accept)], 1)
        .expect("accept");
    assert_eq!(p.start_offset(), 9);
}

#[test]
fn a_poison_record_is_isolated_before_it_is_archived() {
    // A consumer that fails (releases) every delivery containing offset 3.
    let log = Log::uniform(1, 10);
    let mut p = SharePartition::new(config(), 0, 0, 0);
    let mut accepted = std::collections::BTreeSet::new();
    let mut deliveries_of_3 = Vec::new();
    for now in 1..=30 {
        let got = log.fetch(&mut p, "m", 500, now);
        if got.records.is_empty() {
            break;
        }
        let delivered = offsets(&got);
        if let Some((_, count)) = delivered.iter().find(|(o, _)| *o == 3) {
            deliveries_of_3.push((*count, delivered.len()));
        }
        let poisoned = delivered.iter().any(|(o, _)| *o == 3);
        let kind = if poisoned { Release } else { Accept };
        let batches: Vec<AcknowledgementBatch> = got
            .records
            .iter()
            .map(|r| ack(r.first_offset, r.last_offset, kind))
            .collect();
        p.acknowledge("m", &batches, now).expect("ack");
        if !poisoned {
            accepted.extend(delivered.iter().map(|(o, _)| *o));
        }
    }
    assert_eq!(p.start_offset(), 10, "everything is done");
    let expected: std::collections::BTreeSet<i64> = (0..10).filter(|o| *o != 3).collect();
    assert_eq!(
        accepted, expected,
        "only the poison record was not processed"
    );
    // Whole batch twice, then halves, then alone on its last attempt (Kafka's throttling).
    assert_eq!(
        deliveries_of_3,
        vec![(1, 10), (2, 10), (3, 10), (4, 5), (5, 1)]
    );
}

#[test]
fn a_snapshot_keeps_terminal_states_and_counts_and_frees_acquired_records() {
    let log = Log::uniform(1, 8);
    let mut p = SharePartition::new(config(), 3, 2, 0);
    log.fetch(&mut p, "a", 10, 0);
    p.acknowledge(
        "a",
        &[AcknowledgementBatch {
            first_offset: 0,
            last_offset: 7,
            ack_types: vec![
                Release, Accept, Reject, Release, Release, Accept, Release, Release,
            ],
        }],
        1,
    )
    .expect("ack");
    // 0 is redelivered (count 2) and still held; 3, 4 stay available at count 1.
    let got = log.fetch(&mut p, "b", 1, 2);
    assert_eq!(offsets(&got), vec![(0, 2)]);

    let snapshot = p.snapshot();
    assert_eq!(snapshot.state_epoch, 2);
    assert_eq!(snapshot.leader_epoch, 3);
    assert_eq!(
        snapshot.state_batches,
        vec![
            persisted(0, 0, RecordState::Available, 1),
            persisted(1, 1, RecordState::Acknowledged, 1),
            persisted(2, 2, RecordState::Archived, 1),
            persisted(3, 4, RecordState::Available, 1),
            persisted(5, 5, RecordState::Acknowledged, 1),
            persisted(6, 7, RecordState::Available, 1),
        ]
    );

    let mut q = SharePartition::from_snapshot(config(), 4, &snapshot).expect("load");
    assert_eq!(q.start_offset(), 0);
    assert_eq!(state_of(&q, 0), Some((RecordState::Available, 1)));
    assert_eq!(state_of(&q, 1), Some((RecordState::Acknowledged, 1)));
    assert_eq!(q.snapshot().state_batches, snapshot.state_batches);
    let got = log.fetch(&mut q, "c", 100, 10);
    assert_eq!(
        offsets(&got),
        vec![(0, 2), (3, 2), (4, 2), (6, 2), (7, 2)],
        "acquired records come back, terminal ones never"
    );
}

#[test]
fn loading_fills_the_gaps_with_never_delivered_records() {
    // Offsets 10..=14 were acquired and never answered for: no durable trace.
    let snapshot = ShareSnapshot {
        state_batches: vec![
            persisted(15, 19, RecordState::Acknowledged, 1),
            persisted(20, 21, RecordState::Available, 1),
        ],
        ..ShareSnapshot::new(0, 0, 10)
    };
    let mut p = SharePartition::from_snapshot(config(), 0, &snapshot).expect("load");
    assert_eq!(p.start_offset(), 10);
    assert_eq!(p.end_offset(), 22);
    assert_eq!(p.next_fetch_offset(), 10);
    let log = Log(vec![(8, 12), (13, 17), (18, 25)]);
    let got = log.fetch(&mut p, "a", 100, 0);
    assert_eq!(
        offsets(&got),
        vec![
            (10, 1),
            (11, 1),
            (12, 1),
            (13, 1),
            (14, 1),
            (20, 2),
            (21, 2),
            (22, 1),
            (23, 1),
            (24, 1),
            (25, 1)
        ]
    );
}

#[test]
fn initialize_from_the_reset_strategy_or_the_durable_state() {
    let latest = SharePartition::initialize(config(), 0, None, AutoOffsetReset::Latest, 5, 50)
        .expect("init");
    assert_eq!(latest.start_offset(), 50);
    let earliest = SharePartition::initialize(config(), 0, None, AutoOffsetReset::Earliest, 5, 50)
        .expect("init");
    assert_eq!(earliest.start_offset(), 5);
    assert_eq!(
        AutoOffsetReset::parse("EARLIEST"),
        Some(AutoOffsetReset::Earliest)
    );
    assert_eq!(AutoOffsetReset::parse("by_duration:PT1H"), None);

    let uninitialized = ShareSnapshot::new(0, 0, -1);
    let p = SharePartition::initialize(
        config(),
        0,
        Some(&uninitialized),
        AutoOffsetReset::Earliest,
        7,
        9,
    )
    .expect("init");
    assert_eq!(p.start_offset(), 7);

    let snapshot = ShareSnapshot {
        state_batches: vec![persisted(12, 15, RecordState::Available, 2)],
        ..ShareSnapshot::new(1, 0, 10)
    };
    let mut p = SharePartition::initialize(
        config(),
        0,
        Some(&snapshot),
        AutoOffsetReset::Latest,
        13,
        100,
    )
    .expect("init");
    assert_eq!(p.start_offset(), 13, "retention ran past the durable start");
    assert_eq!(p.state_epoch(), 1);
    let changes = p.expire_locks(0);
    assert!(
        changes.start_offset_moved(),
        "the move is written with the next change"
    );
    assert_eq!(changes.start_offset, 13);
}

#[test]
fn the_log_start_offset_archives_what_it_passes() {
    let log = Log::uniform(2, 5);
    let mut p = SharePartition::new(config(), 0, 0, 0);
    log.fetch(&mut p, "a", 10, 0);
    p.acknowledge("a", &[ack(5, 9, Release)], 1)
        .expect("release");
    let changes = p.update_log_start_offset(7);
    assert_eq!(p.start_offset(), 7);
    assert_eq!(changes.start_offset, 7);
    assert_eq!(
        changes.state_batches,
        Vec::<PersisterStateBatch>::new(),
        "nothing above the start offset changed"
    );
    assert_eq!(p.next_fetch_offset(), 7);
    // The holder of 0..=4 acknowledges after the fact: ignored.
    assert!(p.acknowledge("a", &[ack(0, 4, Accept)], 2).is_ok());
    assert!(p.update_log_start_offset(3).is_empty());
}

#[test]
fn reset_to_starts_a_new_state_epoch() {
    let log = Log::uniform(2, 5);
    let mut p = SharePartition::new(config(), 0, 4, 0);
    log.fetch(&mut p, "a", 10, 0);
    let snapshot = p.reset_to(100);
    assert_eq!(snapshot.state_epoch, 5);
    assert_eq!(snapshot.start_offset, 100);
    assert!(snapshot.state_batches.is_empty());
    assert_eq!(p.records().count(), 0);
    assert_eq!(p.next_fetch_offset(), 100);
    let stale = p.acknowledge("a", &[ack(0, 4, Accept)], 1);
    assert!(stale.is_ok(), "below the new start offset: ignored");
}

#[test]
fn a_lowered_delivery_limit_archives_at_acquisition() {
    let log = Log::uniform(1, 3);
    let mut p = SharePartition::new(config(), 0, 0, 0);
    log.fetch(&mut p, "a", 10, 0);
    p.acknowledge("a", &[ack(0, 2, Release)], 1)
        .expect("release");
    log.fetch(&mut p, "a", 10, 2);
    p.acknowledge("a", &[ack(0, 2, Release)], 3)
        .expect("release");
    p.set_config(SharePartitionConfig {
        delivery_count_limit: 2,
        ..config()
    });
    let got = log.fetch(&mut p, "a", 10, 4);
    assert!(got.records.is_empty());
    assert_eq!(p.start_offset(), 3);
    assert!(got.changes.start_offset_moved());
}
