//! Unit and property tests of `ProducerStateManager` and its snapshot format.
//!
//! Test-only: declared under #[cfg(test)] by its parent module.

use proptest::prelude::*;

use super::*;
use crate::producer_snapshot::{decode, encode, SnapshotError};

fn batch(pid: i64, epoch: i16, seq: i32, count: i32) -> ProducerBatch {
    ProducerBatch {
        producer_id: pid,
        epoch,
        base_sequence: seq,
        last_offset_delta: count - 1,
        max_timestamp: 1_000,
        transactional: false,
        control: None,
        coordinator_epoch: -1,
    }
}

/// A transaction marker of `pid` written by a coordinator in `coordinator_epoch`.
fn marker(pid: i64, epoch: i16, commit: bool, coordinator_epoch: i32) -> ProducerBatch {
    ProducerBatch {
        transactional: true,
        control: Some(if commit {
            ControlType::Commit
        } else {
            ControlType::Abort
        }),
        coordinator_epoch,
        base_sequence: -1,
        last_offset_delta: 0,
        ..batch(pid, epoch, -1, 1)
    }
}

/// Checks and, when accepted, applies one batch at `offset`; returns the check.
fn append(
    m: &mut ProducerStateManager,
    b: ProducerBatch,
    offset: i64,
) -> Result<AppendCheck, ProducerStateError> {
    let c = m.check_append(&[b], offset)?;
    if let AppendCheck::Append(p) = &c {
        m.apply(p.clone());
    }
    Ok(c)
}

fn is_append(c: &Result<AppendCheck, ProducerStateError>) -> bool {
    matches!(c, Ok(AppendCheck::Append(_)))
}

#[test]
fn sequences_continue_and_retries_of_the_last_five_are_duplicates() {
    let mut m = ProducerStateManager::default();
    let mut offset = 0;
    let mut sent = Vec::new();
    for i in 0..8 {
        let b = batch(7, 0, i * 2, 2);
        assert!(is_append(&append(&mut m, b, offset)), "batch {i}");
        sent.push((b, offset));
        offset += 2;
    }
    assert_eq!(
        m.entry(7).map(|e| e.batches.len()),
        Some(NUM_BATCHES_TO_RETAIN)
    );
    for (b, first) in &sent[3..] {
        match m.check_append(&[*b], offset) {
            Ok(AppendCheck::Duplicate(d)) => {
                assert_eq!((d.first_offset, d.last_offset), (*first, first + 1));
                assert_eq!(
                    (d.first_seq, d.last_seq),
                    (b.base_sequence, b.base_sequence + 1)
                );
            }
            other => panic!("expected a duplicate, got {other:?}"),
        }
    }
    // Older than the window: not recognised, and not in sequence.
    assert!(matches!(
        m.check_append(&[sent[2].0], offset),
        Err(ProducerStateError::OutOfOrderSequence {
            found: 4,
            expected: 16,
            ..
        })
    ));
    // Same first sequence but a different range is not a duplicate.
    assert!(matches!(
        m.check_append(&[batch(7, 0, 14, 1)], offset),
        Err(ProducerStateError::OutOfOrderSequence { .. })
    ));
}

#[test]
fn gaps_unknown_producers_and_epochs() {
    let mut m = ProducerStateManager::default();
    assert_eq!(
        m.check_append(&[batch(1, 0, 5, 1)], 0),
        Err(ProducerStateError::UnknownProducerId {
            producer_id: 1,
            sequence: 5
        })
    );
    assert!(is_append(&append(&mut m, batch(1, 0, 0, 3), 0)));
    assert_eq!(
        m.check_append(&[batch(1, 0, 4, 1)], 3),
        Err(ProducerStateError::OutOfOrderSequence {
            producer_id: 1,
            epoch: 0,
            found: 4,
            expected: 3
        })
    );
    // A newer epoch must start at 0, and then the old epoch is fenced.
    assert!(matches!(
        m.check_append(&[batch(1, 1, 3, 1)], 3),
        Err(ProducerStateError::OutOfOrderSequence { expected: 0, .. })
    ));
    assert!(is_append(&append(&mut m, batch(1, 1, 0, 1), 3)));
    assert_eq!(m.entry(1).map(|e| (e.epoch, e.batches.len())), Some((1, 1)));
    assert_eq!(
        m.check_append(&[batch(1, 0, 3, 1)], 4),
        Err(ProducerStateError::InvalidProducerEpoch {
            producer_id: 1,
            epoch: 0,
            current: 1
        })
    );
    // A retry from the old epoch is not a duplicate either.
    assert!(matches!(
        m.check_append(&[batch(1, 0, 0, 3)], 4),
        Err(ProducerStateError::InvalidProducerEpoch { .. })
    ));
    // Non-idempotent batches pass untouched.
    let c = m.check_append(&[batch(-1, -1, -1, 4)], 4);
    assert_eq!(c, Ok(AppendCheck::Append(PendingProducerState::default())));
}

#[test]
fn a_marker_from_an_older_coordinator_epoch_is_fenced_and_snapshots_keep_the_epoch() {
    let mut m = ProducerStateManager::default();
    let txn = |seq| ProducerBatch {
        transactional: true,
        ..batch(7, 0, seq, 1)
    };
    assert!(is_append(&append(&mut m, txn(0), 0)));
    assert!(is_append(&append(&mut m, marker(7, 0, true, 3), 1)));
    assert_eq!(m.entry(7).map(|e| e.coordinator_epoch), Some(3));
    // The next transaction; a zombie coordinator (epoch 2) tries to end it.
    assert!(is_append(&append(&mut m, txn(1), 2)));
    assert!(matches!(
        append(&mut m, marker(7, 0, false, 2), 3),
        Err(ProducerStateError::TransactionCoordinatorFenced {
            coordinator_epoch: 2,
            current: 3,
            ..
        })
    ));
    assert!(m.ongoing_txns().contains_key(&7), "still open");
    // The same or a newer coordinator epoch ends it.
    assert!(is_append(&append(&mut m, marker(7, 0, false, 3), 3)));
    assert!(m.ongoing_txns().is_empty());
    // Replay (recovery) takes the marker's epoch too, and snapshots keep it.
    let mut replayed = ProducerStateManager::default();
    replayed.replay(&txn(0), 0);
    replayed.replay(&marker(7, 0, true, 3), 1);
    assert_eq!(replayed.entry(7).map(|e| e.coordinator_epoch), Some(3));
    let (_, decoded) = decode(&encode(10, &m), m.expiration_ms()).expect("decode");
    assert_eq!(decoded, m);
}

#[test]
fn sequence_numbers_wrap_at_i32_max() {
    assert_eq!(increment_sequence(i32::MAX, 1), 0);
    assert_eq!(increment_sequence(i32::MAX - 1, 3), 1);
    assert_eq!(increment_sequence(5, 3), 8);
    let mut m = ProducerStateManager::default();
    m.replay(&batch(3, 0, i32::MAX - 4, 3), 0); // last seq MAX - 2
    assert!(is_append(&append(&mut m, batch(3, 0, i32::MAX - 1, 4), 3)));
    assert_eq!(m.entry(3).and_then(|e| e.last_seq()), Some(1));
    assert!(matches!(
        m.check_append(&[batch(3, 0, i32::MAX - 1, 4)], 7),
        Ok(AppendCheck::Duplicate(BatchMetadata {
            first_offset: 3,
            last_offset: 6,
            ..
        }))
    ));
    assert!(is_append(&append(&mut m, batch(3, 0, 2, 1), 7)));
    let mut m = ProducerStateManager::default();
    m.replay(&batch(3, 0, i32::MAX, 1), 0);
    assert!(is_append(&append(&mut m, batch(3, 0, 0, 1), 1)));
}

#[test]
fn several_batches_of_one_request_are_checked_in_order() {
    let mut m = ProducerStateManager::default();
    let bs = [batch(9, 0, 0, 2), batch(9, 0, 2, 3), batch(4, 0, 0, 1)];
    let Ok(AppendCheck::Append(p)) = m.check_append(&bs, 100) else {
        panic!("accepted")
    };
    // Nothing changes before apply.
    assert!(m.is_empty());
    m.apply(p);
    let e = m.entry(9).expect("entry");
    assert_eq!(e.batches[1].first_offset, 102);
    assert_eq!(e.batches[1].last_offset, 104);
    assert_eq!(m.entry(4).map(|e| e.batches[0].first_offset), Some(105));
    // A gap in the second batch refuses the whole request.
    assert!(m
        .check_append(&[batch(9, 0, 5, 1), batch(9, 0, 7, 1)], 106)
        .is_err());
    assert_eq!(m.entry(9).and_then(|e| e.last_seq()), Some(4));
}

#[test]
fn idle_producers_expire() {
    let mut m = ProducerStateManager::new(1_000);
    let mut a = batch(1, 0, 0, 1);
    a.max_timestamp = 10_000;
    let mut b = batch(2, 0, 0, 1);
    b.max_timestamp = 10_800;
    append(&mut m, a, 0).expect("a");
    append(&mut m, b, 1).expect("b");
    assert_eq!(m.remove_expired(10_999), 0);
    assert_eq!(m.remove_expired(11_000), 1);
    assert!(m.entry(1).is_none() && m.entry(2).is_some());
    // The expired producer now gets UNKNOWN_PRODUCER_ID for a continuing sequence.
    assert!(matches!(
        m.check_append(&[batch(1, 0, 1, 1)], 2),
        Err(ProducerStateError::UnknownProducerId { .. })
    ));
}

#[test]
fn snapshot_round_trip_and_damage() {
    let mut m = ProducerStateManager::new(5_000);
    let mut offset = 0;
    for pid in 0..4 {
        for i in 0..(pid + 3) as i32 {
            append(&mut m, batch(pid, pid as i16, i, 1), offset).expect("append");
            offset += 1;
        }
    }
    let bytes = encode(offset, &m);
    let (o, back) = decode(&bytes, 5_000).expect("decode");
    assert_eq!(o, offset);
    assert_eq!(back, m);
    let empty = encode(0, &ProducerStateManager::default());
    assert_eq!(decode(&empty, 5).expect("empty").1.len(), 0);
    for i in 0..bytes.len() {
        let mut bad = bytes.clone();
        bad[i] ^= 0x40;
        assert!(decode(&bad, 5_000).is_err(), "flipped byte {i} accepted");
    }
    assert_eq!(
        decode(&bytes[..bytes.len() - 1], 5_000),
        Err(SnapshotError::Crc)
    );
    assert!(decode(&bytes[..3], 5_000).is_err());
    // Offsets past the snapshot offset are refused even with a valid CRC.
    let lying = encode(1, &m);
    assert!(matches!(
        decode(&lying, 5_000),
        Err(SnapshotError::Invalid(_))
    ));
}

/// What a client does next in the property test.
#[derive(Debug, Clone)]
enum Op {
    /// A new batch of `count` records from producer `pid`.
    Send { pid: i64, count: i32 },
    /// A retry of the batch sent `back` batches ago (0 = the last one) in any epoch.
    Retry { pid: i64, back: usize },
    /// A batch skipping `skip` sequence numbers.
    Gap { pid: i64, skip: i32 },
    /// The producer bumps its epoch and restarts at sequence 0.
    Bump { pid: i64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0i64..3, 1i32..5).prop_map(|(pid, count)| Op::Send { pid, count }),
        3 => (0i64..3, 0usize..8).prop_map(|(pid, back)| Op::Retry { pid, back }),
        1 => (0i64..3, 1i32..4).prop_map(|(pid, skip)| Op::Gap { pid, skip }),
        1 => (0i64..3).prop_map(|pid| Op::Bump { pid }),
    ]
}

#[derive(Debug, Default, Clone)]
struct Client {
    epoch: i16,
    next_seq: i32,
    /// Accepted batches with their offsets, oldest first (all epochs).
    sent: Vec<(ProducerBatch, i64)>,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// A model client against the manager: every new in-sequence batch is appended once, a retry of
    /// one of the last five batches of the current epoch is a duplicate with the original offsets,
    /// anything else is refused with the right error; state replayed from the accepted batches
    /// (recovery) and state read back from a snapshot both equal the live state.
    #[test]
    fn prop_model_client(ops in proptest::collection::vec(op(), 1..120), near_wrap in any::<bool>()) {
        let mut m = ProducerStateManager::default();
        let mut clients: Vec<Client> = vec![Client::default(); 3];
        let mut log: Vec<(ProducerBatch, i64)> = Vec::new();
        let mut end = 0i64;
        if near_wrap {
            // Seed every producer a few sequences below i32::MAX (as if from a snapshot).
            for (pid, c) in clients.iter_mut().enumerate() {
                let seed = batch(pid as i64, 0, i32::MAX - 6, 1);
                m.replay(&seed, end);
                log.push((seed, end));
                c.sent.push((seed, end));
                c.next_seq = i32::MAX - 5;
                end += 1;
            }
        }
        for op in ops {
            match op {
                Op::Send { pid, count } => {
                    let c = &mut clients[pid as usize];
                    let b = batch(pid, c.epoch, c.next_seq, count);
                    let known = m.entry(pid).is_some();
                    let r = append(&mut m, b, end);
                    if !known && c.next_seq != 0 {
                        prop_assert!(matches!(r, Err(ProducerStateError::UnknownProducerId { .. })), "{:?}", r);
                        continue;
                    }
                    prop_assert!(is_append(&r), "{:?}", r);
                    c.sent.push((b, end));
                    log.push((b, end));
                    c.next_seq = increment_sequence(c.next_seq, count);
                    end += i64::from(count);
                }
                Op::Retry { pid, back } => {
                    let c = &clients[pid as usize];
                    let Some(&(b, first)) = c.sent.iter().rev().nth(back) else { continue };
                    // The broker knows the epoch of the last accepted batch, not the client's.
                    let current = m.entry(pid).map_or(-1, |e| e.epoch);
                    let window = c.sent.iter().rev().take(NUM_BATCHES_TO_RETAIN)
                        .filter(|(s, _)| s.epoch == current).count();
                    let r = m.check_append(&[b], end);
                    if b.epoch < current {
                        prop_assert!(matches!(r, Err(ProducerStateError::InvalidProducerEpoch { .. })), "{:?}", r);
                    } else if back < window {
                        match r {
                            Ok(AppendCheck::Duplicate(d)) => {
                                prop_assert_eq!(d.first_offset, first);
                                prop_assert_eq!(d.last_offset, first + i64::from(b.last_offset_delta));
                            }
                            other => prop_assert!(false, "expected duplicate, got {:?}", other),
                        }
                    } else {
                        prop_assert!(matches!(r, Err(ProducerStateError::OutOfOrderSequence { .. })), "{:?}", r);
                    }
                }
                Op::Gap { pid, skip } => {
                    let c = &clients[pid as usize];
                    let b = batch(pid, c.epoch, increment_sequence(c.next_seq, skip), 1);
                    let r = m.check_append(&[b], end);
                    if m.entry(pid).is_none() {
                        prop_assert!(matches!(r, Err(ProducerStateError::UnknownProducerId { .. })), "{:?}", r);
                    } else {
                        prop_assert!(matches!(r, Err(ProducerStateError::OutOfOrderSequence { .. })), "{:?}", r);
                    }
                }
                Op::Bump { pid } => {
                    let c = &mut clients[pid as usize];
                    c.epoch += 1;
                    c.next_seq = 0;
                }
            }
        }
        let mut replayed = ProducerStateManager::default();
        for (b, first) in &log {
            replayed.replay(b, *first);
        }
        prop_assert_eq!(&replayed, &m);
        let (_, back) = decode(&encode(end, &m), m.expiration_ms()).expect("snapshot decodes");
        prop_assert_eq!(&back, &m);
    }
}
