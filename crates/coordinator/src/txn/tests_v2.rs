//! Transactions V2 (KIP-890 part 2) in the transaction coordinator: the epoch is bumped at
//! every EndTxn, retries and overflow, fencing, restart, implicit adds; and the epoch limit of a
//! V1 producer. Same fakes as `tests.rs`.
//!
//! Test-only: declared under #[cfg(test)] by its parent module.

use super::*;

/// Every state record of `id` as (state, producer id, epoch, value version).
fn history(
    writer: &InMemoryWriter,
    c: &TransactionCoordinator,
    id: &str,
) -> Vec<(TxnState, i64, i16, u8)> {
    writer
        .records(c.partition_for(id))
        .iter()
        .filter_map(|r| {
            let version = r.value.as_ref()?.get(1).copied()?;
            let (rid, m) = record::decode(r).ok()?;
            let m = m.filter(|_| rid == id)?;
            Some((m.state, m.producer_id, m.producer_epoch, version))
        })
        .collect()
}

/// Sets the in-memory epoch of `id` (to reach the overflow without 32k transactions).
async fn set_epoch(c: &TransactionCoordinator, id: &str, epoch: i16) {
    let t = c.get(id).expect("known id");
    t.lock().await.producer_epoch = epoch;
}

/// V1: a producer at the last usable epoch is fenced by an abort at `i16::MAX` (its markers
/// fence it in the partitions), and the next InitProducerId moves to a new producer id.
/// A V2 producer of id "t" with an open transaction on a-0 (added the V2 way): its id and epoch.
async fn open_v2(c: &TransactionCoordinator) -> (i64, i16) {
    let (pid, e0) = c.init_producer_id("t", 60_000, None).await.expect("init");
    c.add_partitions_v2("t", pid, e0, &[tp("a", 0)])
        .await
        .expect("add");
    (pid, e0)
}

#[tokio::test]
async fn a_producer_at_the_last_epoch_is_fenced_and_moves_to_a_new_id() {
    let markers = Arc::new(Markers::default());
    let c = coordinator(InMemoryWriter::new(), markers.clone(), Default::default());
    let (pid, _) = c.init_producer_id("t", 60_000, None).await.expect("init");
    set_epoch(&c, "t", i16::MAX - 1).await;
    c.add_partitions("t", pid, i16::MAX - 1, &[tp("a", 0)], false)
        .await
        .expect("add");
    let (next, epoch) = c.init_producer_id("t", 60_000, None).await.expect("fence");
    assert_eq!(markers.written.lock()[0].producer_epoch, i16::MAX);
    assert_ne!(next, pid);
    assert_eq!(epoch, 0);
}

#[tokio::test]
async fn v1_end_txn_answers_the_unchanged_id_and_epoch_and_writes_v0_records() {
    let writer = InMemoryWriter::new();
    let markers = Arc::new(Markers::default());
    let c = coordinator(writer.clone(), markers.clone(), Default::default());
    let (pid, epoch) = c.init_producer_id("t", 60_000, None).await.expect("init");
    c.add_partitions("t", pid, epoch, &[tp("a", 0)], false)
        .await
        .expect("add");
    assert_eq!(
        c.end_txn("t", pid, epoch, true, false)
            .await
            .expect("commit"),
        (pid, epoch)
    );
    assert_eq!(markers.written.lock()[0].producer_epoch, epoch);
    let d = c.describe_transaction("t").await.expect("d");
    assert_eq!(d.client_transaction_version, 0);
    assert!(history(&writer, &c, "t").iter().all(|h| h.3 == 0), "all v0");
}

#[tokio::test]
async fn v2_commit_bumps_the_epoch_markers_carry_it_and_the_next_transaction_uses_it() {
    let writer = InMemoryWriter::new();
    let markers = Arc::new(Markers::default());
    let c = coordinator(writer.clone(), markers.clone(), Default::default());
    let (pid, e0) = c.init_producer_id("t", 60_000, None).await.expect("init");
    c.add_partitions_v2("t", pid, e0, &[tp("a", 0), tp("b", 1)])
        .await
        .expect("add");
    let (pid1, e1) = c.end_txn("t", pid, e0, true, true).await.expect("commit");
    assert_eq!((pid1, e1), (pid, e0 + 1));
    {
        let m = markers.written.lock();
        assert_eq!(m.len(), 1);
        assert!(m[0].commit);
        assert_eq!((m[0].producer_id, m[0].producer_epoch), (pid, e0 + 1));
        assert_eq!(m[0].partitions, vec![tp("a", 0), tp("b", 1)]);
    }
    let d = c.describe_transaction("t").await.expect("d");
    assert_eq!(d.state, TxnState::CompleteCommit);
    assert_eq!((d.producer_epoch, d.client_transaction_version), (e1, 2));

    // The next transaction starts from CompleteCommit with the returned epoch.
    c.add_partitions_v2("t", pid, e1, &[tp("c", 0)])
        .await
        .expect("add with the bumped epoch");
    let (_, e2) = c.end_txn("t", pid, e1, true, true).await.expect("commit 2");
    assert_eq!(e2, e1 + 1);
    assert_eq!(markers.written.lock()[1].producer_epoch, e2);
    assert_eq!(markers.written.lock()[1].partitions, vec![tp("c", 0)]);

    assert_eq!(
        history(&writer, &c, "t"),
        vec![
            (TxnState::Empty, pid, 0, 0),
            (TxnState::Ongoing, pid, 0, 1),
            (TxnState::PrepareCommit, pid, 1, 1),
            (TxnState::CompleteCommit, pid, 1, 1),
            (TxnState::Ongoing, pid, 1, 1),
            (TxnState::PrepareCommit, pid, 2, 1),
            (TxnState::CompleteCommit, pid, 2, 1),
        ]
    );
}

#[tokio::test]
async fn v2_abort_bumps_the_epoch_and_the_next_transaction_uses_it() {
    let markers = Arc::new(Markers::default());
    let c = coordinator(InMemoryWriter::new(), markers.clone(), Default::default());
    let (pid, e0) = open_v2(&c).await;
    let (_, e1) = c.end_txn("t", pid, e0, false, true).await.expect("abort");
    assert_eq!(e1, e0 + 1);
    {
        let m = markers.written.lock();
        assert!(!m[0].commit);
        assert_eq!(m[0].producer_epoch, e1);
    }
    assert_eq!(
        c.describe_transaction("t").await.expect("d").state,
        TxnState::CompleteAbort
    );
    c.add_partitions_v2("t", pid, e1, &[tp("a", 0)])
        .await
        .expect("add after abort");
    assert_eq!(
        c.end_txn("t", pid, e1, false, true).await.expect("abort 2"),
        (pid, e1 + 1)
    );
}

#[tokio::test]
async fn a_retried_v2_end_txn_after_completion_answers_the_current_epoch() {
    let writer = InMemoryWriter::new();
    let markers = Arc::new(Markers::default());
    let c = coordinator(writer.clone(), markers.clone(), Default::default());
    let (pid, e0) = open_v2(&c).await;
    let (_, e1) = c.end_txn("t", pid, e0, true, true).await.expect("commit");
    let records = writer.records(c.partition_for("t")).len();
    // The answer was lost: the retry carries the old epoch and gets the current one.
    assert_eq!(
        c.end_txn("t", pid, e0, true, true).await.expect("retry"),
        (pid, e1)
    );
    assert_eq!(
        writer.records(c.partition_for("t")).len(),
        records,
        "no write"
    );
    assert_eq!(markers.written.lock().len(), 1, "no second marker");
    // The wrong kind of retry.
    assert!(matches!(
        c.end_txn("t", pid, e0, false, true).await,
        Err(TxnError::InvalidTxnState(_))
    ));
    // Commit with the current epoch: no transaction is open.
    assert!(matches!(
        c.end_txn("t", pid, e1, true, true).await,
        Err(TxnError::InvalidTxnState(_))
    ));
    // An epoch neither current nor the one before it.
    assert!(matches!(
        c.end_txn("t", pid, e1 + 1, true, true).await,
        Err(TxnError::ProducerFenced)
    ));
    assert!(matches!(
        c.end_txn("t", pid + 1, e0, true, true).await,
        Err(TxnError::InvalidProducerIdMapping)
    ));
    assert_eq!(
        c.describe_transaction("t").await.expect("d").producer_epoch,
        e1
    );
}

/// Kafka 4.0: a V2 abort with the current epoch and no open transaction (its writes never
/// reached the coordinator) still bumps the epoch; from Empty too. Commit there is refused.
#[tokio::test]
async fn a_v2_abort_without_a_transaction_bumps_the_epoch() {
    let markers = Arc::new(Markers::default());
    let c = coordinator(InMemoryWriter::new(), markers.clone(), Default::default());
    let (pid, e0) = c.init_producer_id("t", 60_000, None).await.expect("init");
    assert!(matches!(
        c.end_txn("t", pid, e0, true, true).await,
        Err(TxnError::InvalidTxnState(_))
    ));
    let (_, e1) = c.end_txn("t", pid, e0, false, true).await.expect("abort");
    assert_eq!(e1, e0 + 1);
    assert_eq!(markers.written.lock()[0].partitions, vec![]);
    assert_eq!(markers.written.lock()[0].producer_epoch, e1);
    // Its retry answers the same; the previous epoch's commit does not fit.
    assert_eq!(
        c.end_txn("t", pid, e0, false, true).await.expect("retry"),
        (pid, e1)
    );
    assert!(matches!(
        c.end_txn("t", pid, e0, true, true).await,
        Err(TxnError::InvalidTxnState(_))
    ));
    // From CompleteAbort with the current epoch: another bump.
    assert_eq!(
        c.end_txn("t", pid, e1, false, true).await.expect("abort 2"),
        (pid, e1 + 1)
    );
    assert!(matches!(
        c.end_txn("t", pid, e0, false, true).await,
        Err(TxnError::ProducerFenced)
    ));
}

#[tokio::test]
async fn a_stale_producer_with_the_old_epoch_is_fenced_after_a_v2_end_txn() {
    let c = coordinator(
        InMemoryWriter::new(),
        Arc::new(Markers::default()),
        Default::default(),
    );
    let (pid, e0) = open_v2(&c).await;
    let (_, e1) = c.end_txn("t", pid, e0, true, true).await.expect("commit");
    // A late write of the committed transaction: its leader adds the partition with e0.
    assert!(matches!(
        c.add_partitions_v2("t", pid, e0, &[tp("a", 0)]).await,
        Err(TxnError::ProducerFenced)
    ));
    assert!(matches!(
        c.add_partitions("t", pid, e0, &[tp("a", 0)], true).await,
        Err(TxnError::ProducerFenced)
    ));
    c.add_partitions_v2("t", pid, e1, &[tp("b", 0)])
        .await
        .expect("the current epoch");
    // Within the open transaction too; and the old epoch cannot end it.
    assert!(matches!(
        c.add_partitions_v2("t", pid, e0, &[tp("a", 0)]).await,
        Err(TxnError::ProducerFenced)
    ));
    assert!(matches!(
        c.end_txn("t", pid, e0, true, true).await,
        Err(TxnError::ProducerFenced)
    ));
    let d = c.describe_transaction("t").await.expect("d");
    assert_eq!(d.state, TxnState::Ongoing);
    assert_eq!(
        d.partitions.into_iter().collect::<Vec<_>>(),
        vec![tp("b", 0)]
    );
}

#[tokio::test]
async fn a_v2_epoch_overflow_moves_the_producer_to_a_new_id() {
    let writer = InMemoryWriter::new();
    let markers = Arc::new(Markers::default());
    let c = coordinator(writer.clone(), markers.clone(), Default::default());
    let (pid, _) = c.init_producer_id("t", 60_000, None).await.expect("init");
    let last = i16::MAX - 1;
    set_epoch(&c, "t", last).await;
    c.add_partitions_v2("t", pid, last, &[tp("a", 0)])
        .await
        .expect("add");
    let (pid2, e) = c.end_txn("t", pid, last, true, true).await.expect("commit");
    assert_ne!(pid2, pid);
    assert_eq!(e, 0);
    // The markers fence the old id at the epoch no producer holds.
    {
        let m = markers.written.lock();
        assert_eq!((m[0].producer_id, m[0].producer_epoch), (pid, i16::MAX));
    }
    let h = history(&writer, &c, "t");
    assert_eq!(
        &h[h.len() - 2..],
        &[
            (TxnState::PrepareCommit, pid, i16::MAX, 1),
            (TxnState::CompleteCommit, pid2, 0, 1)
        ]
    );
    let d = c.describe_transaction("t").await.expect("d");
    assert_eq!((d.previous_producer_id, d.next_producer_id), (pid, -1));

    // The retry with the old id and epoch gets the new ones; the wrong kind does not.
    assert_eq!(
        c.end_txn("t", pid, last, true, true).await.expect("retry"),
        (pid2, 0)
    );
    assert!(matches!(
        c.end_txn("t", pid, last, false, true).await,
        Err(TxnError::InvalidTxnState(_))
    ));
    // The old id is gone for anything else.
    assert!(matches!(
        c.add_partitions_v2("t", pid, last, &[tp("a", 0)]).await,
        Err(TxnError::InvalidProducerIdMapping)
    ));
    // A producer that missed the answer and re-initialises with the old id and epoch gets the
    // new id, unbumped (Kafka 4.0).
    assert_eq!(
        c.init_producer_id("t", 60_000, Some((pid, last)))
            .await
            .expect("re-init"),
        (pid2, 0)
    );
    c.add_partitions_v2("t", pid2, 0, &[tp("a", 0)])
        .await
        .expect("add on the new id");
    assert_eq!(
        c.end_txn("t", pid2, 0, true, true).await.expect("commit"),
        (pid2, 1)
    );
}

#[tokio::test]
async fn init_producer_id_after_a_missed_v2_end_txn_answer_returns_the_current_epoch() {
    let c = coordinator(
        InMemoryWriter::new(),
        Arc::new(Markers::default()),
        Default::default(),
    );
    let (pid, e0) = open_v2(&c).await;
    let (_, e1) = c.end_txn("t", pid, e0, true, true).await.expect("commit");
    assert_eq!(
        c.init_producer_id("t", 60_000, Some((pid, e0)))
            .await
            .expect("re-init with the epoch before the bump"),
        (pid, e1)
    );
    assert_eq!(
        c.describe_transaction("t").await.expect("d").state,
        TxnState::Empty
    );
    // With the current epoch: a normal bump, after which the old epoch is fenced.
    assert_eq!(
        c.init_producer_id("t", 60_000, Some((pid, e1)))
            .await
            .expect("re-init"),
        (pid, e1 + 1)
    );
    assert!(matches!(
        c.init_producer_id("t", 60_000, Some((pid, e0))).await,
        Err(TxnError::ProducerFenced)
    ));
}

/// A new producer fences an open V2 transaction: aborted with a bumped epoch; the old
/// producer's EndTxn with its epoch is fenced, not taken for a retry.
#[tokio::test]
async fn init_producer_id_fences_an_open_v2_transaction() {
    let markers = Arc::new(Markers::default());
    let c = coordinator(InMemoryWriter::new(), markers.clone(), Default::default());
    let (pid, e0) = open_v2(&c).await;
    let (pid2, e2) = c.init_producer_id("t", 60_000, None).await.expect("init 2");
    assert_eq!((pid2, e2), (pid, e0 + 2));
    {
        let m = markers.written.lock();
        assert!(!m[0].commit);
        assert_eq!(m[0].producer_epoch, e0 + 1);
    }
    for commit in [true, false] {
        assert!(matches!(
            c.end_txn("t", pid, e0, commit, true).await,
            Err(TxnError::ProducerFenced)
        ));
    }
}

/// The timeout abort of a V2 transaction bumps the epoch (markers fence late writes) and the
/// timed-out producer's EndTxn is fenced rather than taken for a retry of its own.
#[tokio::test]
async fn a_timed_out_v2_transaction_is_aborted_and_its_producer_fenced() {
    let markers = Arc::new(Markers::default());
    let c = coordinator(InMemoryWriter::new(), markers.clone(), Default::default());
    let (pid, e0) = open_v2(&c).await;
    let (_, e1) = c.end_txn("t", pid, e0, true, true).await.expect("commit");
    c.add_partitions_v2("t", pid, e1, &[tp("a", 0)])
        .await
        .expect("add");
    c.abort_timed_out(i64::MAX / 2).await;
    let d = c.describe_transaction("t").await.expect("d");
    assert_eq!(d.state, TxnState::CompleteAbort);
    assert_eq!(d.producer_epoch, e1 + 1);
    assert_eq!(markers.written.lock()[1].producer_epoch, e1 + 1);
    for commit in [true, false] {
        assert!(matches!(
            c.end_txn("t", pid, e1, commit, true).await,
            Err(TxnError::ProducerFenced)
        ));
    }
    assert!(matches!(
        c.add_partitions_v2("t", pid, e1, &[tp("a", 0)]).await,
        Err(TxnError::ProducerFenced)
    ));
    // At the last usable epoch the fence still bumps (to i16::MAX); InitProducerId then
    // moves to a new producer id.
    set_epoch(&c, "t", i16::MAX - 1).await;
    c.add_partitions_v2("t", pid, i16::MAX - 1, &[tp("a", 0)])
        .await
        .expect("add");
    c.abort_timed_out(i64::MAX / 2).await;
    assert_eq!(markers.written.lock()[2].producer_epoch, i16::MAX);
    let (pid3, e3) = c.init_producer_id("t", 60_000, None).await.expect("init");
    assert_ne!(pid3, pid);
    assert_eq!(e3, 0);
}

#[tokio::test]
async fn v2_state_survives_a_restart() {
    let writer = InMemoryWriter::new();
    let c = coordinator(
        writer.clone(),
        Arc::new(Markers::default()),
        Default::default(),
    );
    let (pid, e0) = open_v2(&c).await;
    let (_, e1) = c.end_txn("t", pid, e0, true, true).await.expect("commit");
    // "o": an epoch overflow, the broker dies right after its PrepareCommit is durable.
    let (opid, _) = c.init_producer_id("o", 60_000, None).await.expect("init");
    set_epoch(&c, "o", i16::MAX - 1).await;
    c.add_partitions_v2("o", opid, i16::MAX - 1, &[tp("b", 0)])
        .await
        .expect("add");
    let mut o = c.describe_transaction("o").await.expect("describe");
    o.state = TxnState::PrepareCommit;
    o.producer_epoch = i16::MAX;
    o.last_producer_epoch = i16::MAX - 1;
    o.next_producer_id = 4242;
    c.persist(&o).await.expect("persist");
    drop(c);

    let markers2 = Arc::new(Markers::default());
    let c2 = coordinator(writer.clone(), markers2.clone(), Default::default());
    let d = c2.describe_transaction("t").await.expect("d");
    assert_eq!((d.state, d.producer_epoch), (TxnState::CompleteCommit, e1));
    assert_eq!(d.client_transaction_version, 2);
    // The retry rule still holds after the replay, and the next transaction goes on.
    assert_eq!(
        c2.end_txn("t", pid, e0, true, true).await.expect("retry"),
        (pid, e1)
    );
    c2.add_partitions_v2("t", pid, e1, &[tp("a", 0)])
        .await
        .expect("add");
    assert_eq!(
        c2.end_txn("t", pid, e1, false, true).await.expect("abort"),
        (pid, e1 + 1)
    );

    // The prepared overflow completes on load, onto the stored next producer id.
    for _ in 0..100 {
        if c2.describe_transaction("o").await.expect("d").state == TxnState::CompleteCommit {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let o = c2.describe_transaction("o").await.expect("d");
    assert_eq!(
        (o.state, o.producer_id, o.producer_epoch),
        (TxnState::CompleteCommit, 4242, 0)
    );
    assert_eq!(o.previous_producer_id, opid);
    let m = markers2
        .written
        .lock()
        .iter()
        .find(|m| m.transactional_id == "o")
        .cloned()
        .expect("o's markers");
    assert_eq!((m.producer_id, m.producer_epoch), (opid, i16::MAX));
    assert_eq!(
        c2.end_txn("o", opid, i16::MAX - 1, true, true)
            .await
            .expect("retry of the overflowed commit"),
        (4242, 0)
    );
}

/// V2 producers send no AddOffsetsToTxn: TxnOffsetCommit v5's broker adds the group's
/// `__consumer_offsets` partition through `add_partitions_v2`; the offsets commit with the
/// transaction as before.
#[tokio::test]
async fn v2_txn_offsets_after_an_implicit_add_reach_the_group_on_commit() {
    let c = coordinator(
        InMemoryWriter::new(),
        Arc::new(Markers::default()),
        Default::default(),
    );
    let (pid, e0) = c.init_producer_id("t", 60_000, None).await.expect("init");
    let offsets_partition = (
        crate::OFFSETS_TOPIC.to_string(),
        c.inner.groups.partition_for("g"),
    );
    c.add_partitions_v2("t", pid, e0, std::slice::from_ref(&offsets_partition))
        .await
        .expect("implicit add");
    c.txn_offset_commit("t", "g", pid, e0, &no_member(), vec![in_commit(5)])
        .await
        .expect("txn offset commit");
    let (_, e1) = c.end_txn("t", pid, e0, true, true).await.expect("commit");
    assert_eq!(fetched(&c.inner.groups, "g"), vec![5]);
    // The next transaction with the bumped epoch.
    c.add_partitions_v2("t", pid, e1, &[offsets_partition])
        .await
        .expect("implicit add 2");
    c.txn_offset_commit("t", "g", pid, e1, &no_member(), vec![in_commit(9)])
        .await
        .expect("txn offset commit 2");
    c.end_txn("t", pid, e1, false, true).await.expect("abort");
    assert_eq!(fetched(&c.inner.groups, "g"), vec![5]);
}
