//! Transactional consumer offsets through the transaction coordinator: TxnOffsetCommit's
//! pending offsets reach the group only on commit, block deletion and expiry while pending,
//! survive a restart and follow their markers, and are checked against the group's member and
//! generation. Same fakes as `tests.rs`.
//!
//! Test-only: declared under #[cfg(test)] by its parent module.

use super::*;

#[tokio::test]
async fn txn_offsets_reach_the_group_only_on_commit() {
    let markers = Arc::new(Markers::default());
    let c = coordinator(InMemoryWriter::new(), markers, Default::default());
    let (pid, epoch) = c.init_producer_id("t", 60_000, None).await.expect("init");
    let commit = in_commit;
    let m = no_member();
    assert!(c
        .txn_offset_commit("t", "g", pid, epoch, &m, vec![commit(5)])
        .await
        .is_err());
    c.add_offsets("t", pid, epoch, "g")
        .await
        .expect("add offsets");
    c.txn_offset_commit("t", "g", pid, epoch, &m, vec![commit(5)])
        .await
        .expect("txn commit");
    c.end_txn("t", pid, epoch, false, false)
        .await
        .expect("abort");
    let fetched = |c: &TransactionCoordinator| fetched(&c.inner.groups, "g");
    assert!(fetched(&c).is_empty());
    c.add_offsets("t", pid, epoch, "g")
        .await
        .expect("add offsets");
    c.txn_offset_commit("t", "g", pid, epoch, &m, vec![commit(7)])
        .await
        .expect("txn commit");
    c.end_txn("t", pid, epoch, true, false)
        .await
        .expect("commit");
    assert_eq!(fetched(&c), vec![7]);
}

/// A group with offsets an open transaction will commit is not deleted (NON_EMPTY_GROUP, as
/// Kafka) and its committed offset for that partition does not expire; once the transaction
/// commits, its offset is the group's.
#[tokio::test]
async fn pending_txn_offsets_block_group_deletion_and_expiry() {
    let markers = Arc::new(Markers::default());
    let c = coordinator(InMemoryWriter::new(), markers, Default::default());
    let groups = &c.inner.groups;
    // A simple (manual) commit makes an Empty group with an offset.
    groups
        .commit_offsets(crate::OffsetCommitRequest {
            group_id: "g".into(),
            generation_id: -1,
            member_id: String::new(),
            group_instance_id: None,
            offsets: vec![in_commit(3)],
        })
        .await
        .expect("commit");
    let (pid, epoch) = c.init_producer_id("t", 60_000, None).await.expect("init");
    c.add_offsets("t", pid, epoch, "g")
        .await
        .expect("add offsets");
    c.txn_offset_commit("t", "g", pid, epoch, &no_member(), vec![in_commit(5)])
        .await
        .expect("txn commit");
    assert_eq!(groups.inner.pending_txn_partitions("g").len(), 1);
    let deleted = groups.delete_groups(&["g".to_string()]).await;
    assert!(
        matches!(deleted[0], Err(crate::GroupError::NonEmptyGroup)),
        "{:?}",
        deleted[0]
    );
    assert_eq!(groups.expire_offsets(i64::MAX / 2), 0, "nothing expires");
    assert_eq!(fetched(groups, "g"), vec![3]);
    c.end_txn("t", pid, epoch, true, false)
        .await
        .expect("commit");
    assert_eq!(
        fetched(groups, "g"),
        vec![5],
        "the committed offset arrived"
    );
    assert!(groups.inner.pending_txn_partitions("g").is_empty());
    assert!(groups.delete_groups(&["g".to_string()]).await[0].is_ok());
}

/// Pending transactional offsets are durable in `__consumer_offsets` and resolved on replay:
/// committed ones (marker in the log) are applied, aborted ones dropped, and ones whose
/// transaction was only prepared when the broker died stay pending (invisible) until the
/// transaction coordinator's recovery completes the commit, then become visible.
#[tokio::test]
async fn pending_txn_offsets_survive_a_restart_and_follow_their_markers() {
    let txn_log = InMemoryWriter::new();
    let offsets_log = InMemoryWriter::new();
    let markers = Arc::new(Markers {
        offsets: Some(offsets_log.clone()),
        ..Default::default()
    });
    let c = coordinator(txn_log.clone(), markers.clone(), Default::default());
    let m = no_member();
    let mut pids = Vec::new();
    for (id, group, offset) in [("t1", "g1", 10), ("t2", "g2", 20), ("t3", "g3", 30)] {
        let (pid, epoch) = c.init_producer_id(id, 60_000, None).await.expect("init");
        c.add_offsets(id, pid, epoch, group)
            .await
            .expect("add offsets");
        c.txn_offset_commit(id, group, pid, epoch, &m, vec![in_commit(offset)])
            .await
            .expect("txn offset commit");
        // Durable (in the log, inside the transaction) but not visible yet.
        assert!(fetched(&c.inner.groups, group).is_empty());
        pids.push((pid, epoch));
    }
    c.end_txn("t1", pids[0].0, pids[0].1, true, false)
        .await
        .expect("commit");
    c.end_txn("t2", pids[1].0, pids[1].1, false, false)
        .await
        .expect("abort");
    assert_eq!(fetched(&c.inner.groups, "g1"), vec![10]);
    assert!(fetched(&c.inner.groups, "g2").is_empty());
    // t3: the broker dies right after PrepareCommit is durable (no marker yet).
    let mut t3 = c.describe_transaction("t3").await.expect("describe");
    t3.state = TxnState::PrepareCommit;
    c.persist(&t3).await.expect("persist");
    drop(c);

    // Restart: replay __consumer_offsets first (as the broker does).
    let groups = groups_over(offsets_log.clone());
    assert_eq!(fetched(&groups, "g1"), vec![10], "commit marker applies");
    assert!(fetched(&groups, "g2").is_empty(), "abort marker drops");
    assert!(fetched(&groups, "g3").is_empty(), "no marker yet: pending");
    assert!(groups.has_pending_transactional_offsets(pids[2].0));
    assert!(!groups.has_pending_transactional_offsets(pids[1].0));
    let markers2 = Arc::new(Markers {
        offsets: Some(offsets_log.clone()),
        ..Default::default()
    });
    let c2 = over(txn_log, markers2, groups.clone(), Default::default());
    for _ in 0..200 {
        if c2.describe_transaction("t3").await.expect("d").state == TxnState::CompleteCommit {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        c2.describe_transaction("t3").await.expect("d").state,
        TxnState::CompleteCommit
    );
    assert_eq!(
        fetched(&groups, "g3"),
        vec![30],
        "recovery completes the commit"
    );
    assert!(!groups.has_pending_transactional_offsets(pids[2].0));

    // And a second restart replays the marker recovery wrote.
    let groups = groups_over(offsets_log);
    assert_eq!(fetched(&groups, "g1"), vec![10]);
    assert!(fetched(&groups, "g2").is_empty());
    assert_eq!(fetched(&groups, "g3"), vec![30]);
}

/// TxnOffsetCommit v3+ is checked against a classic group's member and generation.
#[tokio::test]
async fn txn_offset_commit_checks_the_group_member_and_generation() {
    let markers = Arc::new(Markers::default());
    let c = coordinator(InMemoryWriter::new(), markers, Default::default());
    let (pid, epoch) = c.init_producer_id("t", 60_000, None).await.expect("init");
    c.add_offsets("t", pid, epoch, "g")
        .await
        .expect("add offsets");
    {
        let group = c.inner.groups.inner.get_or_create("g").expect("group");
        let mut g = group.lock();
        g.protocol_type = Some("consumer".into());
        g.generation_id = 3;
    }
    let member = |id: &str, generation: i32| TxnCommitMember {
        member_id: id.into(),
        generation_id: generation,
        group_instance_id: None,
    };
    assert!(matches!(
        c.txn_offset_commit(
            "t",
            "g",
            pid,
            epoch,
            &member("nobody", 3),
            vec![in_commit(1)]
        )
        .await,
        Err(TxnError::Group(crate::GroupError::UnknownMemberId))
    ));
    assert!(matches!(
        c.txn_offset_commit("t", "g", pid, epoch, &member("", 2), vec![in_commit(1)])
            .await,
        Err(TxnError::Group(crate::GroupError::IllegalGeneration))
    ));
    c.txn_offset_commit("t", "g", pid, epoch, &member("", 3), vec![in_commit(1)])
        .await
        .expect("right generation");
}
