//! Memory follows the log: a change whose `__consumer_offsets` write fails is never visible
//!
//! Test-only: declared under #[cfg(test)] by its parent module.
//! (OffsetFetch, membership), using the [`InMemoryWriter`]'s fault injection.

use crate::tests::{coordinator, join_new, join_req, rebalance};
use crate::*;

fn commit(group: &str, generation: i32, member: &str, offset: i64) -> OffsetCommitRequest {
    OffsetCommitRequest {
        group_id: group.into(),
        generation_id: generation,
        member_id: member.into(),
        group_instance_id: None,
        offsets: vec![PartitionCommit {
            topic: "t".into(),
            partition: 0,
            offset,
            leader_epoch: -1,
            metadata: format!("meta-{offset}"),
        }],
    }
}

fn fetched(c: &GroupCoordinator, group: &str) -> Option<i64> {
    let got = c
        .fetch_offsets(group, Some(&[("t".into(), vec![0])]))
        .unwrap();
    got[0].1[0].1.as_ref().map(|v| v.offset)
}

#[tokio::test(start_paused = true)]
async fn failed_commit_is_not_returned_by_offset_fetch() {
    let w = InMemoryWriter::new();
    let c = coordinator(&w);
    // First commit ever fails: nothing to fetch.
    w.set_failing(true);
    let r = c.commit_offsets(commit("g", -1, "", 3)).await.unwrap();
    assert!(matches!(r[0], Err(GroupError::Write(_))));
    assert_eq!(fetched(&c, "g"), None);
    // A durable commit, then a failed one: OffsetFetch keeps the durable one.
    w.set_failing(false);
    assert!(c.commit_offsets(commit("g", -1, "", 5)).await.unwrap()[0].is_ok());
    w.set_failing(true);
    let r = c.commit_offsets(commit("g", -1, "", 9)).await.unwrap();
    assert!(matches!(r[0], Err(GroupError::Write(_))));
    assert_eq!(fetched(&c, "g"), Some(5));
    let all = c.fetch_offsets("g", None).unwrap();
    assert_eq!(
        all[0].1[0].1.as_ref().map(|v| v.metadata.as_str()),
        Some("meta-5")
    );
    // A failed OffsetDelete leaves the offset in place too.
    let del = c
        .delete_offsets("g", &[("t".into(), vec![0])])
        .await
        .unwrap();
    assert!(matches!(del[0].1[0].1, Err(GroupError::Write(_))));
    assert_eq!(fetched(&c, "g"), Some(5));
    // Memory and the log agree: a restart sees the same offset.
    w.set_failing(false);
    c.shutdown();
    let c2 = coordinator(&w);
    assert_eq!(fetched(&c2, "g"), Some(5));
    // A durable delete is applied.
    let del = c2
        .delete_offsets("g", &[("t".into(), vec![0])])
        .await
        .unwrap();
    assert!(del[0].1[0].1.is_ok());
    assert_eq!(fetched(&c2, "g"), None);
}

#[tokio::test(start_paused = true)]
async fn concurrent_commits_settle_as_the_log_does() {
    let w = InMemoryWriter::new();
    let c = coordinator(&w);
    let mut tasks = Vec::new();
    for offset in 0..64 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            c.commit_offsets(commit("g", -1, "", offset)).await
        }));
    }
    for t in tasks {
        assert!(t.await.unwrap().unwrap()[0].is_ok());
    }
    let live = fetched(&c, "g");
    c.shutdown();
    let replayed = fetched(&coordinator(&w), "g");
    assert!(live.is_some());
    assert_eq!(live, replayed, "memory must equal the log's last commit");
}

#[tokio::test(start_paused = true)]
async fn failed_static_rejoin_is_reverted() {
    let w = InMemoryWriter::new();
    let c = coordinator(&w);
    let s = crate::tests::spawn_join(&c, join_req("g", "", Some("inst-1"), &["range"]));
    let d = join_new(&c, "g", &["range"]).await;
    let r = rebalance(&c, "g", vec![s, d]).await;
    let old_static = r[0].member_id.clone();
    let dynamic = r[1].member_id.clone();
    w.set_failing(true);
    let again = c
        .join_group(join_req("g", "", Some("inst-1"), &["range"]))
        .await;
    assert!(
        matches!(again.error, Some(GroupError::Write(_))),
        "{:?}",
        again.error
    );
    // The old incarnation is still the member (not fenced), the group still Stable.
    c.heartbeat("g", 1, &old_static, Some("inst-1")).unwrap();
    c.heartbeat("g", 1, &dynamic, None).unwrap();
    let g = c.describe_group("g").unwrap();
    assert_eq!(g.state, GroupState::Stable);
    let ids: Vec<&str> = g.members.iter().map(|m| m.member_id.as_str()).collect();
    assert!(ids.contains(&old_static.as_str()), "{ids:?}");
    // Once writes work again the restart goes through.
    w.set_failing(false);
    let again = c
        .join_group(join_req("g", "", Some("inst-1"), &["range"]))
        .await;
    assert!(again.error.is_none(), "{:?}", again.error);
    assert!(matches!(
        c.heartbeat("g", 1, &old_static, Some("inst-1")),
        Err(GroupError::FencedInstanceId)
    ));
}
