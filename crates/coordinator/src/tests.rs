//! State-machine tests: a coordinator over an [`InMemoryWriter`] on a paused tokio clock, so
//!
//! Test-only: declared under #[cfg(test)] by its parent module.
//! every timer (initial delay, rebalance and session timeouts) fires deterministically.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::*;

const P: i32 = 4;

fn config() -> GroupCoordinatorConfig {
    GroupCoordinatorConfig {
        offsets_topic_partitions: P,
        initial_rebalance_delay: Duration::from_millis(100),
        ..Default::default()
    }
}

pub(crate) fn coordinator(writer: &Arc<InMemoryWriter>) -> GroupCoordinator {
    let c = GroupCoordinator::new(config(), writer.clone());
    for p in 0..P {
        c.load_partition(p).unwrap();
    }
    c
}

fn protocols(names: &[&str]) -> Vec<Protocol> {
    names
        .iter()
        .map(|n| Protocol {
            name: (*n).into(),
            metadata: Bytes::from(format!("meta-{n}")),
        })
        .collect()
}

pub(crate) fn join_req(
    group: &str,
    member: &str,
    instance: Option<&str>,
    protos: &[&str],
) -> JoinGroupRequest {
    JoinGroupRequest {
        group_id: group.into(),
        member_id: member.into(),
        group_instance_id: instance.map(String::from),
        protocol_type: "consumer".into(),
        protocols: protocols(protos),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 30_000,
        client_id: "client".into(),
        client_host: "/127.0.0.1".into(),
        require_known_member_id: true,
    }
}

pub(crate) fn spawn_join(
    c: &GroupCoordinator,
    req: JoinGroupRequest,
) -> tokio::task::JoinHandle<JoinGroupResponse> {
    let c = c.clone();
    tokio::spawn(async move { c.join_group(req).await })
}

/// KIP-394 first round trip, then the real join; returns the pending second join.
pub(crate) async fn join_new(
    c: &GroupCoordinator,
    group: &str,
    protos: &[&str],
) -> tokio::task::JoinHandle<JoinGroupResponse> {
    let first = c.join_group(join_req(group, "", None, protos)).await;
    assert!(matches!(first.error, Some(GroupError::MemberIdRequired)));
    assert!(!first.member_id.is_empty());
    spawn_join(c, join_req(group, &first.member_id, None, protos))
}

pub(crate) fn sync_req(
    group: &str,
    generation: i32,
    member: &str,
    assignments: Vec<(String, Bytes)>,
) -> SyncGroupRequest {
    SyncGroupRequest {
        group_id: group.into(),
        generation_id: generation,
        member_id: member.into(),
        group_instance_id: None,
        protocol_type: Some("consumer".into()),
        protocol_name: None,
        assignments,
    }
}

/// Runs a full rebalance of `joins`; the leader assigns "assignment-<member>" to each.
pub(crate) async fn rebalance(
    c: &GroupCoordinator,
    group: &str,
    joins: Vec<tokio::task::JoinHandle<JoinGroupResponse>>,
) -> Vec<JoinGroupResponse> {
    let mut resps = Vec::new();
    for j in joins {
        let r = j.await.unwrap();
        assert!(r.error.is_none(), "join failed: {:?}", r.error);
        resps.push(r);
    }
    let generation = resps[0].generation_id;
    assert!(resps.iter().all(|r| r.generation_id == generation));
    let leader = resps
        .iter()
        .find(|r| r.member_id == r.leader)
        .expect("a leader");
    let assignments: Vec<(String, Bytes)> = leader
        .members
        .iter()
        .map(|m| {
            (
                m.member_id.clone(),
                Bytes::from(format!("assignment-{}", m.member_id)),
            )
        })
        .collect();
    let mut syncs = Vec::new();
    for r in &resps {
        let c = c.clone();
        let req = sync_req(
            group,
            generation,
            &r.member_id,
            if r.member_id == r.leader {
                assignments.clone()
            } else {
                vec![]
            },
        );
        syncs.push(tokio::spawn(async move { c.sync_group(req).await }));
    }
    for (s, r) in syncs.into_iter().zip(&resps) {
        let got = s.await.unwrap().expect("sync");
        assert_eq!(
            got.assignment,
            Bytes::from(format!("assignment-{}", r.member_id))
        );
    }
    resps
}

#[tokio::test(start_paused = true)]
async fn three_members_join_sync_and_leader_sees_everyone() {
    let w = InMemoryWriter::new();
    let c = coordinator(&w);
    let mut joins = Vec::new();
    for _ in 0..3 {
        joins.push(join_new(&c, "g", &["range", "roundrobin"]).await);
    }
    let resps = rebalance(&c, "g", joins).await;
    assert_eq!(resps[0].generation_id, 1);
    assert_eq!(resps[0].protocol_name.as_deref(), Some("range"));
    let leader = resps.iter().find(|r| r.member_id == r.leader).unwrap();
    assert_eq!(leader.members.len(), 3);
    assert!(leader.members.iter().all(|m| m.metadata == "meta-range"));
    assert_eq!(resps.iter().filter(|r| !r.members.is_empty()).count(), 1);
    let d = c.describe_group("g").unwrap();
    assert_eq!(d.state, GroupState::Stable);
    assert_eq!(d.members.len(), 3);
    // The assignment is durable as a GroupMetadata record.
    let p = partition_for("g", P);
    assert!(!w.records(p).is_empty());
    for r in &resps {
        c.heartbeat("g", 1, &r.member_id, None).unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn heartbeat_errors_and_leave_triggers_rebalance() {
    let w = InMemoryWriter::new();
    let c = coordinator(&w);
    let a = join_new(&c, "g", &["range"]).await;
    let b = join_new(&c, "g", &["range"]).await;
    let r = rebalance(&c, "g", vec![a, b]).await;
    let (a, b) = (&r[0].member_id, &r[1].member_id);
    assert!(matches!(
        c.heartbeat("g", 1, "nobody", None),
        Err(GroupError::UnknownMemberId)
    ));
    assert!(matches!(
        c.heartbeat("g", 7, a, None),
        Err(GroupError::IllegalGeneration)
    ));
    assert!(matches!(
        c.heartbeat("nogroup", 1, a, None),
        Err(GroupError::UnknownMemberId)
    ));
    let left = c
        .leave_group(
            "g",
            &[MemberIdentity {
                member_id: b.clone(),
                group_instance_id: None,
            }],
        )
        .unwrap();
    assert!(left[0].is_ok());
    assert!(matches!(
        c.heartbeat("g", 1, a, None),
        Err(GroupError::RebalanceInProgress)
    ));
    assert!(matches!(
        c.sync_group(sync_req("g", 1, a, vec![])).await,
        Err(GroupError::RebalanceInProgress)
    ));
    let r2 = rebalance(
        &c,
        "g",
        vec![spawn_join(&c, join_req("g", a, None, &["range"]))],
    )
    .await;
    assert_eq!(r2[0].generation_id, 2);
    assert_eq!(&r2[0].leader, a);
    // Last member leaves: Empty, and a durable empty GroupMetadata.
    c.leave_group(
        "g",
        &[MemberIdentity {
            member_id: a.clone(),
            group_instance_id: None,
        }],
    )
    .unwrap();
    assert_eq!(c.describe_group("g").unwrap().state, GroupState::Empty);
}

#[tokio::test(start_paused = true)]
async fn session_timeout_expires_a_silent_member() {
    let w = InMemoryWriter::new();
    let c = coordinator(&w);
    let a = join_new(&c, "g", &["range"]).await;
    let b = join_new(&c, "g", &["range"]).await;
    let r = rebalance(&c, "g", vec![a, b]).await;
    let (a, b) = (r[0].member_id.clone(), r[1].member_id.clone());
    // a heartbeats, b does not.
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_secs(3)).await;
        if c.heartbeat("g", 1, &a, None).is_err() {
            break;
        }
    }
    assert!(matches!(
        c.heartbeat("g", 1, &a, None),
        Err(GroupError::RebalanceInProgress)
    ));
    let r2 = rebalance(
        &c,
        "g",
        vec![spawn_join(&c, join_req("g", &a, None, &["range"]))],
    )
    .await;
    assert_eq!(r2[0].leader, a);
    assert!(matches!(
        c.heartbeat("g", 2, &b, None),
        Err(GroupError::UnknownMemberId)
    ));
}

#[tokio::test(start_paused = true)]
async fn bad_joins_get_kafka_errors() {
    let w = InMemoryWriter::new();
    let c = coordinator(&w);
    let a = join_new(&c, "g", &["range"]).await;
    rebalance(&c, "g", vec![a]).await;
    let unknown = c.join_group(join_req("g", "ghost", None, &["range"])).await;
    assert!(matches!(unknown.error, Some(GroupError::UnknownMemberId)));
    let mut other_type = join_req("g", "", None, &["range"]);
    other_type.protocol_type = "connect".into();
    other_type.require_known_member_id = false;
    assert!(matches!(
        c.join_group(other_type).await.error,
        Some(GroupError::InconsistentGroupProtocol)
    ));
    let mut no_common = join_req("g", "", None, &["sticky"]);
    no_common.require_known_member_id = false;
    assert!(matches!(
        c.join_group(no_common).await.error,
        Some(GroupError::InconsistentGroupProtocol)
    ));
    let mut bad_session = join_req("g2", "", None, &["range"]);
    bad_session.session_timeout_ms = 1;
    assert!(matches!(
        c.join_group(bad_session).await.error,
        Some(GroupError::InvalidSessionTimeout)
    ));
    assert!(matches!(
        c.join_group(join_req("", "", None, &["range"])).await.error,
        Some(GroupError::InvalidGroupId)
    ));
    let mut empty = join_req("g3", "", None, &[]);
    empty.require_known_member_id = false;
    assert!(matches!(
        c.join_group(empty).await.error,
        Some(GroupError::InconsistentGroupProtocol)
    ));
}

#[tokio::test(start_paused = true)]
async fn static_member_restart_does_not_rebalance() {
    let w = InMemoryWriter::new();
    let c = coordinator(&w);
    let s = spawn_join(&c, join_req("g", "", Some("inst-1"), &["range"]));
    let d = join_new(&c, "g", &["range"]).await;
    let r = rebalance(&c, "g", vec![s, d]).await;
    let old_static = r[0].member_id.clone();
    let dynamic = r[1].member_id.clone();
    // Restart: empty member id, same instance id, same metadata.
    let again = c
        .join_group(join_req("g", "", Some("inst-1"), &["range"]))
        .await;
    assert!(again.error.is_none(), "{:?}", again.error);
    assert_eq!(again.generation_id, 1, "no new generation");
    assert_ne!(again.member_id, old_static);
    // The group stays Stable: the other member sees no rebalance.
    c.heartbeat("g", 1, &dynamic, None).unwrap();
    let sync = c
        .sync_group(SyncGroupRequest {
            group_instance_id: Some("inst-1".into()),
            ..sync_req("g", 1, &again.member_id, vec![])
        })
        .await
        .unwrap();
    assert_eq!(
        sync.assignment,
        Bytes::from(format!("assignment-{old_static}"))
    );
    // The old incarnation is fenced.
    assert!(matches!(
        c.heartbeat("g", 1, &old_static, Some("inst-1")),
        Err(GroupError::FencedInstanceId)
    ));
    // Changed metadata does rebalance.
    let mut changed = join_req("g", "", Some("inst-1"), &["range"]);
    changed.protocols[0].metadata = Bytes::from_static(b"new-subscription");
    let changed = spawn_join(&c, changed);
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert!(matches!(
        c.heartbeat("g", 1, &dynamic, None),
        Err(GroupError::RebalanceInProgress)
    ));
    let r2 = rebalance(
        &c,
        "g",
        vec![
            changed,
            spawn_join(&c, join_req("g", &dynamic, None, &["range"])),
        ],
    )
    .await;
    assert_eq!(r2[0].generation_id, 2);
}

#[tokio::test(start_paused = true)]
async fn offsets_commit_fetch_replay_delete_and_expire() {
    let w = InMemoryWriter::new();
    let c = coordinator(&w);
    let commit = |group: &str, generation: i32, member: &str, offset: i64| OffsetCommitRequest {
        group_id: group.into(),
        generation_id: generation,
        member_id: member.into(),
        group_instance_id: None,
        offsets: vec![PartitionCommit {
            topic: "t".into(),
            partition: 0,
            offset,
            leader_epoch: 3,
            metadata: "m".into(),
        }],
    };
    // Simple commit to a group with no members.
    let r = c
        .commit_offsets(commit("simple", -1, "", 10))
        .await
        .unwrap();
    assert!(r[0].is_ok());
    // Group members must match generation and member id.
    let a = join_new(&c, "g", &["range"]).await;
    let m = rebalance(&c, "g", vec![a]).await[0].member_id.clone();
    assert!(matches!(
        c.commit_offsets(commit("g", 9, &m, 5)).await,
        Err(GroupError::IllegalGeneration)
    ));
    assert!(matches!(
        c.commit_offsets(commit("g", 1, "x", 5)).await,
        Err(GroupError::UnknownMemberId)
    ));
    assert!(matches!(
        c.commit_offsets(commit("g", -1, "", 5)).await,
        Err(GroupError::UnknownMemberId)
    ));
    assert!(matches!(
        c.commit_offsets(commit("nope", 3, "x", 5)).await,
        Err(GroupError::IllegalGeneration)
    ));
    c.commit_offsets(commit("g", 1, &m, 42)).await.unwrap();
    let mut big = commit("g", 1, &m, 43);
    big.offsets[0].metadata = "x".repeat(5000);
    assert!(matches!(
        c.commit_offsets(big).await.unwrap()[0],
        Err(GroupError::OffsetMetadataTooLarge)
    ));
    let got = c.fetch_offsets("g", None).unwrap();
    assert_eq!(got[0].1[0].1.as_ref().unwrap().offset, 42);
    assert_eq!(got[0].1[0].1.as_ref().unwrap().metadata, "m");
    let none = c
        .fetch_offsets("unknown", Some(&[("t".into(), vec![0])]))
        .unwrap();
    assert!(none[0].1[0].1.is_none());

    // Replay into a fresh coordinator: offsets and the Stable group come back.
    c.shutdown();
    let c2 = coordinator(&w);
    assert_eq!(
        c2.fetch_offsets("g", None).unwrap()[0].1[0]
            .1
            .as_ref()
            .unwrap()
            .offset,
        42
    );
    assert_eq!(
        c2.fetch_offsets("simple", None).unwrap()[0].1[0]
            .1
            .as_ref()
            .unwrap()
            .offset,
        10
    );
    assert_eq!(c2.describe_group("g").unwrap().state, GroupState::Stable);
    c2.heartbeat("g", 1, &m, None).unwrap();
    assert!(matches!(
        c2.delete_groups(&["g".into()]).await[0],
        Err(GroupError::NonEmptyGroup)
    ));
    // OffsetDelete refuses a subscribed topic only if the metadata parses as a consumer
    // subscription; ours is opaque, so the group is treated as non-empty.
    assert!(matches!(
        c2.delete_offsets("g", &[("t".into(), vec![0])]).await,
        Err(GroupError::NonEmptyGroup)
    ));
    c2.leave_group(
        "g",
        &[MemberIdentity {
            member_id: m.clone(),
            group_instance_id: None,
        }],
    )
    .unwrap();
    let del = c2
        .delete_offsets("g", &[("t".into(), vec![0])])
        .await
        .unwrap();
    assert!(del[0].1[0].1.is_ok());
    assert!(c2.delete_groups(&["g".into()]).await[0].is_ok());
    assert!(matches!(
        c2.describe_group("g"),
        Err(GroupError::GroupIdNotFound)
    ));
    let listed: Vec<String> = c2
        .list_groups(&[])
        .into_iter()
        .map(|g| g.group_id)
        .collect();
    assert_eq!(listed, vec!["simple".to_string()]);

    // Expiry: the simple group's commit is older than the retention.
    let later = strom_log::now_ms() + 8 * 24 * 3600 * 1000;
    assert_eq!(c2.expire_offsets(later), 1);
    assert!(c2.list_groups(&[]).is_empty());
    // Expiry writes are not awaited by anyone; let the appender run.
    tokio::time::sleep(Duration::from_millis(1)).await;
    c2.shutdown();
    let c3 = coordinator(&w);
    assert!(c3.list_groups(&[]).is_empty());
    assert!(c3.fetch_offsets("simple", None).unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn failed_write_fails_the_commit() {
    let w = InMemoryWriter::new();
    let c = coordinator(&w);
    w.set_failing(true);
    let r = c
        .commit_offsets(OffsetCommitRequest {
            group_id: "g".into(),
            generation_id: -1,
            member_id: String::new(),
            group_instance_id: None,
            offsets: vec![PartitionCommit {
                topic: "t".into(),
                partition: 0,
                offset: 1,
                leader_epoch: -1,
                metadata: String::new(),
            }],
        })
        .await
        .unwrap();
    assert!(matches!(r[0], Err(GroupError::Write(_))));
}

#[tokio::test(start_paused = true)]
async fn list_groups_filters_by_state() {
    let w = InMemoryWriter::new();
    let c = coordinator(&w);
    let a = join_new(&c, "stable", &["range"]).await;
    rebalance(&c, "stable", vec![a]).await;
    let _pending = join_new(&c, "preparing", &["range"]).await;
    tokio::time::sleep(Duration::from_millis(1)).await;
    let stable = c.list_groups(&[GroupState::Stable]);
    assert_eq!(stable.len(), 1);
    assert_eq!(stable[0].group_id, "stable");
    assert_eq!(stable[0].protocol_type, "consumer");
    assert_eq!(c.list_groups(&[]).len(), 2);
    assert_eq!(
        GroupState::parse("preparingrebalance"),
        Some(GroupState::PreparingRebalance)
    );
}

#[tokio::test(start_paused = true)]
async fn not_loaded_partition_is_not_coordinator() {
    let w = InMemoryWriter::new();
    let c = GroupCoordinator::new(config(), w.clone());
    let r = c.join_group(join_req("g", "", None, &["range"])).await;
    assert!(matches!(r.error, Some(GroupError::NotCoordinator)));
}

fn simple_commit(group: &str, offset: i64) -> OffsetCommitRequest {
    OffsetCommitRequest {
        group_id: group.into(),
        generation_id: -1,
        member_id: String::new(),
        group_instance_id: None,
        offsets: vec![PartitionCommit {
            topic: "t".into(),
            partition: 0,
            offset,
            leader_epoch: -1,
            metadata: String::new(),
        }],
    }
}

#[tokio::test(start_paused = true)]
async fn a_partition_is_loading_then_served_then_unloaded_then_reloaded() {
    let w = InMemoryWriter::new();
    let c = GroupCoordinator::new(config(), w.clone());
    let p = c.partition_for("g");
    c.begin_load(p);
    assert!(matches!(
        c.check_owned("g"),
        Err(GroupError::CoordinatorLoadInProgress)
    ));
    assert!(c.load_in_progress());
    let entries = c.read_partition(p).unwrap();
    c.install(c.replay(p, &entries));
    assert!(c.is_loaded(p) && !c.load_in_progress());
    let r = c.commit_offsets(simple_commit("g", 7)).await.unwrap();
    assert!(r[0].is_ok());
    c.unload_partition(p);
    assert!(matches!(
        c.check_owned("g"),
        Err(GroupError::NotCoordinator)
    ));
    assert!(matches!(
        c.commit_offsets(simple_commit("g", 8)).await,
        Err(GroupError::NotCoordinator)
    ));
    assert!(c.list_groups(&[]).is_empty());
    // Leadership comes back: the log has everything.
    c.load_partition(p).unwrap();
    let fetched = c.fetch_offsets("g", None).unwrap();
    assert_eq!(fetched[0].1[0].1.as_ref().map(|o| o.offset), Some(7));
}

#[tokio::test(start_paused = true)]
async fn a_write_queued_before_an_unload_fails_not_coordinator() {
    let w = InMemoryWriter::new();
    let c = coordinator(&w);
    let p = c.partition_for("g");
    let pending = c.inner.enqueue_records(p, Vec::new());
    c.unload_partition(p);
    // Queued before: the appender drains what it has. After: refused.
    assert!(pending.await.unwrap().is_ok());
    let after = c.inner.enqueue_records(p, Vec::new()).await.unwrap();
    assert!(matches!(
        after.map_err(|e| (*e).clone()),
        Err(WriteError::NotCoordinator(q)) if q == p
    ));
}

#[tokio::test(start_paused = true)]
async fn a_group_stops_growing_at_group_max_size_pending_members_counted() {
    let w = InMemoryWriter::new();
    let c = GroupCoordinator::new(
        GroupCoordinatorConfig {
            max_size: 3,
            ..config()
        },
        w.clone(),
    );
    for p in 0..P {
        c.load_partition(p).unwrap();
    }
    // Three first JoinGroups (KIP-394): three pending members, nobody joined yet.
    for _ in 0..3 {
        let r = c.join_group(join_req("g", "", None, &["range"])).await;
        assert!(
            matches!(r.error, Some(GroupError::MemberIdRequired)),
            "{:?}",
            r.error
        );
    }
    let r = c.join_group(join_req("g", "", None, &["range"])).await;
    assert!(
        matches!(r.error, Some(GroupError::GroupMaxSizeReached)),
        "{:?}",
        r.error
    );
    // Once the pending members expire (their session timeout), there is room again.
    tokio::time::sleep(Duration::from_secs(11)).await;
    let r = c.join_group(join_req("g", "", None, &["range"])).await;
    assert!(
        matches!(r.error, Some(GroupError::MemberIdRequired)),
        "{:?}",
        r.error
    );
}
