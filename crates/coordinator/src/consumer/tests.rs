//! Consumer-group (KIP-848) tests against an in-memory `__consumer_offsets`: joins, incremental
//!
//! Test-only: declared under #[cfg(test)] by its parent module.
//! reconciliation with its no-double-ownership invariant, leave, fencing, static members, regex
//! subscriptions, replay after a restart, offset commits by member epoch, and the shared
//! namespace with classic groups.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use parking_lot::Mutex;
use uuid::Uuid;

use super::*;
use crate::{
    GroupCoordinator, GroupCoordinatorConfig, GroupError, InMemoryWriter, OffsetCommitRequest,
    PartitionCommit,
};

#[derive(Debug, Default)]
struct Topics(Mutex<BTreeMap<String, TopicInfo>>);

impl Topics {
    fn add(&self, name: &str, partitions: i32) -> Uuid {
        let mut t = self.0.lock();
        let id = t.get(name).map_or_else(Uuid::new_v4, |x| x.id);
        t.insert(
            name.into(),
            TopicInfo {
                name: name.into(),
                id,
                partitions,
            },
        );
        id
    }
}

impl TopicMetadata for Topics {
    fn topic(&self, name: &str) -> Option<TopicInfo> {
        self.0.lock().get(name).cloned()
    }
    fn topic_names(&self) -> Vec<String> {
        self.0.lock().keys().cloned().collect()
    }
}

struct Harness {
    writer: Arc<InMemoryWriter>,
    classic: GroupCoordinator,
    consumer: ConsumerGroupCoordinator,
    topics: Topics,
}

fn config() -> GroupCoordinatorConfig {
    GroupCoordinatorConfig {
        offsets_topic_partitions: 1,
        ..Default::default()
    }
}

impl Harness {
    fn new() -> Harness {
        Harness::on(InMemoryWriter::new())
    }
    fn on(writer: Arc<InMemoryWriter>) -> Harness {
        let classic = GroupCoordinator::new(config(), writer.clone());
        classic.load_partition(0).expect("load classic");
        let consumer = ConsumerGroupCoordinator::new(
            ConsumerGroupConfig::default(),
            classic.clone(),
            writer.clone(),
        );
        consumer.load_partition(0).expect("load consumer");
        Harness {
            writer,
            classic,
            consumer,
            topics: Topics::default(),
        }
    }
    async fn hb(&self, req: HeartbeatRequest) -> Result<HeartbeatResponse, GroupError> {
        self.consumer.heartbeat(req, &self.topics).await
    }
}

/// A simulated member: owns what its last response assigned (revoking at once).
#[derive(Debug, Clone)]
struct Client {
    id: String,
    epoch: i32,
    owned: BTreeMap<Uuid, BTreeSet<i32>>,
    topics: Vec<String>,
    regex: Option<String>,
    instance: Option<String>,
}

impl Client {
    fn new(id: &str, topics: &[&str]) -> Client {
        Client {
            id: id.into(),
            epoch: 0,
            owned: BTreeMap::new(),
            topics: topics.iter().map(|t| t.to_string()).collect(),
            regex: None,
            instance: None,
        }
    }
    fn request(&self) -> HeartbeatRequest {
        HeartbeatRequest {
            group_id: "g".into(),
            member_id: self.id.clone(),
            member_epoch: self.epoch,
            instance_id: self.instance.clone(),
            rebalance_timeout_ms: 60_000,
            subscribed_topic_names: Some(self.topics.clone()),
            subscribed_topic_regex: self.regex.clone(),
            owned_partitions: Some(
                self.owned
                    .iter()
                    .map(|(t, ps)| (*t, ps.iter().copied().collect()))
                    .collect(),
            ),
            ..Default::default()
        }
    }
    async fn beat(&mut self, h: &Harness) -> HeartbeatResponse {
        let r = h.hb(self.request()).await.expect("heartbeat");
        self.epoch = r.member_epoch;
        if let Some(a) = &r.assignment {
            self.owned = a
                .iter()
                .map(|(t, ps)| (*t, ps.iter().copied().collect()))
                .collect();
            self.owned.retain(|_, ps| !ps.is_empty());
        }
        r
    }
    fn count(&self) -> usize {
        self.owned.values().map(BTreeSet::len).sum()
    }
}

/// Heartbeats every client in turn until nothing changes, checking after every step that no
/// partition is owned by two clients.
async fn converge(h: &Harness, clients: &mut [Client]) {
    for _ in 0..20 {
        let before: Vec<_> = clients.iter().map(|c| (c.epoch, c.owned.clone())).collect();
        for i in 0..clients.len() {
            clients[i].beat(h).await;
            let mut seen = BTreeSet::new();
            for c in clients.iter() {
                for (t, ps) in &c.owned {
                    for p in ps {
                        assert!(seen.insert((*t, *p)), "{t}/{p} owned twice: {clients:?}");
                    }
                }
            }
            h.consumer
                .with_group("g", |g| assert!(g.holders().values().all(|m| m.len() == 1)))
                .expect("group");
        }
        let after: Vec<_> = clients.iter().map(|c| (c.epoch, c.owned.clone())).collect();
        if before == after {
            return;
        }
    }
    panic!("did not converge: {clients:?}");
}

#[tokio::test]
async fn three_members_get_two_partitions_each() {
    let h = Harness::new();
    h.topics.add("t", 6);
    let mut cs = vec![
        Client::new("a", &["t"]),
        Client::new("b", &["t"]),
        Client::new("c", &["t"]),
    ];
    converge(&h, &mut cs).await;
    assert!(cs.iter().all(|c| c.count() == 2), "{cs:?}");
    let d = h.consumer.describe_group("g").expect("describe");
    assert_eq!(d.state, "Stable");
    assert_eq!(d.assignor_name, "uniform");
    assert_eq!(d.group_epoch, 3);
    assert!(cs.iter().all(|c| c.epoch == 3));
}

#[tokio::test]
async fn join_revokes_before_assigning() {
    let h = Harness::new();
    h.topics.add("t", 4);
    let mut a = Client::new("a", &["t"]);
    a.beat(&h).await;
    assert_eq!(a.count(), 4);
    let epoch_a = a.epoch;
    // b joins: its target has 2 of a's partitions, which a still owns.
    let mut b = Client::new("b", &["t"]);
    let rb = b.beat(&h).await;
    assert_eq!(b.count(), 0, "nothing until a revokes: {rb:?}");
    assert_eq!(
        h.consumer.member_state("g", "b"),
        Some(MemberState::UnreleasedPartitions)
    );
    // a is told to keep 2 (epoch unchanged while revoking).
    let ra = a.beat(&h).await;
    assert_eq!(a.count(), 2);
    assert_eq!(ra.member_epoch, epoch_a);
    assert_eq!(
        h.consumer.member_state("g", "a"),
        Some(MemberState::UnrevokedPartitions)
    );
    // a acknowledges the revocation: moves to the new epoch.
    let ra = a.beat(&h).await;
    assert!(ra.member_epoch > epoch_a);
    assert_eq!(h.consumer.member_state("g", "a"), Some(MemberState::Stable));
    // b now gets the released partitions.
    b.beat(&h).await;
    assert_eq!(b.count(), 2);
    assert!(a
        .owned
        .values()
        .flatten()
        .all(|p| !b.owned.values().flatten().any(|q| q == p)));
}

#[tokio::test]
async fn leave_hands_partitions_to_the_rest() {
    let h = Harness::new();
    h.topics.add("t", 6);
    let mut cs = vec![
        Client::new("a", &["t"]),
        Client::new("b", &["t"]),
        Client::new("c", &["t"]),
    ];
    converge(&h, &mut cs).await;
    let mut leaving = cs.pop().expect("c");
    leaving.epoch = -1;
    let r = h.hb(leaving.request()).await.expect("leave");
    assert_eq!(r.member_epoch, -1);
    converge(&h, &mut cs).await;
    assert_eq!(cs.iter().map(Client::count).sum::<usize>(), 6);
    assert!(cs.iter().all(|c| c.count() == 3));
}

#[tokio::test]
async fn fencing_and_unknown_members() {
    let h = Harness::new();
    h.topics.add("t", 2);
    let mut a = Client::new("a", &["t"]);
    a.beat(&h).await;
    let mut stale = a.request();
    stale.member_epoch = a.epoch + 5;
    assert!(matches!(
        h.hb(stale).await,
        Err(GroupError::FencedMemberEpoch)
    ));
    let mut unknown = a.request();
    unknown.member_id = "nobody".into();
    assert!(matches!(
        h.hb(unknown).await,
        Err(GroupError::UnknownMemberId)
    ));
    let mut bad = a.request();
    bad.server_assignor = Some("sticky".into());
    assert!(matches!(
        h.hb(bad).await,
        Err(GroupError::UnsupportedAssignor)
    ));
    let mut bad = a.request();
    bad.subscribed_topic_regex = Some("(".into());
    assert!(matches!(
        h.hb(bad).await,
        Err(GroupError::InvalidRegularExpression)
    ));
    // An empty member id on join gets one generated.
    let mut req = Client::new("", &["t"]).request();
    req.owned_partitions = None;
    let r = h.hb(req).await.expect("join");
    assert!(!r.member_id.is_empty());
}

#[tokio::test]
async fn session_expiry_removes_the_member() {
    let writer = InMemoryWriter::new();
    let classic = GroupCoordinator::new(config(), writer.clone());
    classic.load_partition(0).expect("load");
    let cfg = ConsumerGroupConfig {
        session_timeout_ms: 100,
        timer_tick: std::time::Duration::from_millis(10),
        ..Default::default()
    };
    let consumer = ConsumerGroupCoordinator::new(cfg, classic.clone(), writer.clone());
    let topics = Topics::default();
    topics.add("t", 2);
    consumer
        .heartbeat(Client::new("a", &["t"]).request(), &topics)
        .await
        .expect("join");
    assert!(consumer.has_members("g"));
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert!(!consumer.has_members("g"));
    assert!(consumer.is_consumer_group("g"));
}

#[tokio::test]
async fn regex_subscription_picks_up_new_topics() {
    let h = Harness::new();
    h.topics.add("prefix-1", 2);
    h.topics.add("other", 2);
    let mut a = Client::new("a", &[]);
    a.regex = Some("^prefix.*".into());
    a.beat(&h).await;
    assert_eq!(
        a.count(),
        0,
        "a new regex is resolved after the heartbeat that brings it"
    );
    a.beat(&h).await;
    assert_eq!(a.count(), 2);
    let t2 = h.topics.add("prefix-2", 3);
    h.topics.add("prefix-1", 4); // and a partition count change
    a.beat(&h).await;
    assert_eq!(a.count(), 7);
    assert_eq!(a.owned[&t2].len(), 3);
}

/// Kafka resolves a new regex asynchronously: the heartbeat that subscribes to a regex and a
/// topic name gets the named topic, a later one the regex's matches too (librdkafka 0045's
/// KIP-848 expectation); a regex another member already resolved applies at once.
#[tokio::test]
async fn a_new_regex_is_assigned_after_the_literal_topics() {
    let h = Harness::new();
    let named = h.topics.add("named", 2);
    h.topics.add("rx-1", 4);
    h.topics.add("rx-2", 4);
    let mut a = Client::new("a", &["named"]);
    a.regex = Some("^rx-.*".into());
    a.beat(&h).await;
    assert_eq!(a.owned.keys().collect::<Vec<_>>(), [&named]);
    assert_eq!(a.count(), 2);
    a.beat(&h).await;
    assert_eq!(a.count(), 10);
    let mut b = Client::new("b", &[]);
    b.regex = Some("^rx-.*".into());
    let mut cs = vec![a, b];
    converge(&h, &mut cs).await;
    assert_eq!(cs[0].count() + cs[1].count(), 10);
    assert!(cs[1].count() > 0);
}

#[tokio::test]
async fn range_assignor_on_request() {
    let h = Harness::new();
    h.topics.add("t", 5);
    let mut cs = vec![Client::new("a", &["t"]), Client::new("b", &["t"])];
    for c in &mut cs {
        let mut req = c.request();
        req.server_assignor = Some("range".into());
        let r = h.hb(req).await.expect("join");
        c.epoch = r.member_epoch;
        if let Some(a) = r.assignment {
            c.owned = a
                .into_iter()
                .map(|(t, ps)| (t, ps.into_iter().collect()))
                .collect();
            c.owned.retain(|_, ps| !ps.is_empty());
        }
    }
    converge(&h, &mut cs).await;
    let d = h.consumer.describe_group("g").expect("describe");
    assert_eq!(d.assignor_name, "range");
    let t = cs[0].owned.keys().next().copied().expect("topic");
    assert_eq!(cs[0].owned[&t], BTreeSet::from([0, 1, 2]));
    assert_eq!(cs[1].owned[&t], BTreeSet::from([3, 4]));
}

#[tokio::test]
async fn static_member_replaced_after_temporary_leave() {
    let h = Harness::new();
    h.topics.add("t", 4);
    let mut a = Client::new("a1", &["t"]);
    a.instance = Some("i".into());
    let mut b = Client::new("b", &["t"]);
    let mut cs = vec![a, b.clone()];
    converge(&h, &mut cs).await;
    let epoch = h.consumer.describe_group("g").expect("d").group_epoch;
    let mut leave = cs[0].request();
    leave.member_epoch = -2;
    assert_eq!(h.hb(leave).await.expect("leave").member_epoch, -2);
    // Same instance, new member id: takes over without a new group epoch.
    let mut a2 = Client::new("a2", &["t"]);
    a2.instance = Some("i".into());
    a2.beat(&h).await;
    assert_eq!(a2.owned, cs[0].owned);
    assert_eq!(
        h.consumer.describe_group("g").expect("d").group_epoch,
        epoch
    );
    // While a2 is active, another incarnation is refused.
    let mut a3 = Client::new("a3", &["t"]);
    a3.instance = Some("i".into());
    assert!(matches!(
        h.hb(a3.request()).await,
        Err(GroupError::UnreleasedInstanceId)
    ));
    b.beat(&h).await;
}

#[tokio::test]
async fn state_survives_a_restart() {
    let h = Harness::new();
    h.topics.add("t", 6);
    let mut cs = vec![
        Client::new("a", &["t"]),
        Client::new("b", &["t"]),
        Client::new("c", &["t"]),
    ];
    converge(&h, &mut cs).await;
    let before = h.consumer.describe_group("g").expect("d");
    let mut b = cs[1].request();
    b.member_epoch = -1;
    h.hb(b).await.expect("leave");
    let before_leave = before;
    let after_leave = h.consumer.describe_group("g").expect("d");
    h.consumer.shutdown();
    h.classic.shutdown();
    let h2 = Harness::on(h.writer.clone());
    h2.topics.add("t", 6);
    let reloaded = h2.consumer.describe_group("g").expect("reloaded");
    assert_eq!(reloaded, after_leave);
    assert_ne!(reloaded.group_epoch, before_leave.group_epoch);
    // The surviving members carry on with their epochs.
    let mut rest = vec![cs[0].clone(), cs[2].clone()];
    for c in &mut rest {
        c.beat(&h2).await;
    }
    converge(&h2, &mut rest).await;
    assert!(rest.iter().all(|c| c.count() == 3));
}

#[tokio::test]
async fn offset_commits_check_member_epoch() {
    let h = Harness::new();
    h.topics.add("t", 1);
    let mut a = Client::new("a", &["t"]);
    a.beat(&h).await;
    let commit = |member: &str, epoch: i32| OffsetCommitRequest {
        group_id: "g".into(),
        generation_id: epoch,
        member_id: member.into(),
        group_instance_id: None,
        offsets: vec![PartitionCommit {
            topic: "t".into(),
            partition: 0,
            offset: 42,
            leader_epoch: -1,
            metadata: String::new(),
        }],
    };
    let ok = h
        .consumer
        .commit_offsets(commit("a", a.epoch))
        .await
        .expect("commit");
    assert!(ok.iter().all(Result::is_ok));
    assert!(matches!(
        h.consumer.commit_offsets(commit("a", a.epoch + 1)).await,
        Err(GroupError::StaleMemberEpoch)
    ));
    assert!(matches!(
        h.consumer.commit_offsets(commit("zz", a.epoch)).await,
        Err(GroupError::UnknownMemberId)
    ));
    let fetched = h.classic.fetch_offsets("g", None).expect("fetch");
    assert_eq!(fetched[0].1[0].1.as_ref().map(|o| o.offset), Some(42));
    // The offsets survive a restart with the group.
    h.consumer.shutdown();
    let h2 = Harness::on(h.writer.clone());
    let fetched = h2.classic.fetch_offsets("g", None).expect("fetch");
    assert_eq!(fetched[0].1[0].1.as_ref().map(|o| o.offset), Some(42));
    assert!(h2.consumer.is_consumer_group("g"));
}

#[tokio::test]
async fn classic_and_consumer_groups_share_one_namespace() {
    let h = Harness::new();
    h.topics.add("t", 1);
    let join = crate::JoinGroupRequest {
        group_id: "classic".into(),
        member_id: String::new(),
        group_instance_id: None,
        protocol_type: "consumer".into(),
        protocols: vec![crate::Protocol {
            name: "range".into(),
            metadata: Default::default(),
        }],
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 10_000,
        client_id: String::new(),
        client_host: String::new(),
        require_known_member_id: false,
    };
    let classic = h.classic.clone();
    let joined = tokio::spawn(async move { classic.join_group(join).await });
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let mut req = Client::new("x", &["t"]).request();
    req.group_id = "classic".into();
    assert!(matches!(h.hb(req).await, Err(GroupError::GroupIdNotFound)));
    joined.abort();
    // An empty consumer group can be deleted (or taken over by a classic join).
    let mut a = Client::new("a", &["t"]);
    a.beat(&h).await;
    assert!(matches!(
        h.consumer.delete_group("g").await,
        Err(GroupError::NonEmptyGroup)
    ));
    a.epoch = -1;
    h.hb(a.request()).await.expect("leave");
    h.consumer.delete_group("g").await.expect("delete");
    assert!(!h.consumer.is_consumer_group("g"));
    let h2 = Harness::on(h.writer.clone());
    assert!(!h2.consumer.is_consumer_group("g"));
}
