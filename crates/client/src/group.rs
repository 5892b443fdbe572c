//! `GroupConsumer`: a [`Consumer`] whose partitions come from a classic consumer group.
//!
//! Membership is Kafka's classic protocol as the Java consumer runs it: FindCoordinator (on a
//! connection of its own, so a JoinGroup waiting out a rebalance never delays fetches), JoinGroup
//! (KIP-394: a MEMBER_ID_REQUIRED answer carries the id to rejoin with), the leader computing a
//! `range` assignment (`assignor.rs`) for SyncGroup, then OffsetFetch to resume each assigned
//! partition after its committed offset (else `auto.offset.reset`). A heartbeat task keeps the
//! session alive and flags a rejoin on REBALANCE_IN_PROGRESS, ILLEGAL_GENERATION or
//! UNKNOWN_MEMBER_ID; the next `poll` commits (with auto-commit), rejoins and reassigns.
//! Offsets are committed on `commit`, every `auto_commit_interval` inside `poll`, and on
//! `close`, which also sends LeaveGroup so the group rebalances at once.
//!
//! Concurrency: the heartbeat task shares only [`Membership`] (a mutex never held across
//! `.await`); it is paused while a join is in flight, and a heartbeat answer only counts if the
//! generation it was sent with is still current, so a stale answer cannot force a second join.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ApiKey, GroupId, HeartbeatRequest, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest,
    SyncGroupRequest,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use parking_lot::Mutex;

use crate::assignor::{self, PROTOCOL_TYPE, RANGE};
use crate::client::Client;
use crate::connection::Connection;
use crate::consumer::{Consumer, ConsumerConfig, ConsumerRecord, OffsetReset, StartOffset};
use crate::error::ClientError;
use crate::group_admin::{
    commit_offsets_on, fetch_offsets_on, needs_new_coordinator, CommitIdentity,
};
use crate::metadata::TopicPartition;

/// Group settings (Kafka consumer config names in the docs).
#[derive(Debug, Clone)]
pub struct GroupConfig {
    /// group.id
    pub group_id: String,
    /// group.instance.id (KIP-345 static membership).
    pub group_instance_id: Option<String>,
    /// session.timeout.ms
    pub session_timeout: Duration,
    /// max.poll.interval.ms (the JoinGroup rebalance timeout). Kept under the connection's
    /// request timeout, because a JoinGroup may wait this long.
    pub rebalance_timeout: Duration,
    /// heartbeat.interval.ms
    pub heartbeat_interval: Duration,
    /// auto.commit.interval.ms; `None` = enable.auto.commit=false.
    pub auto_commit_interval: Option<Duration>,
}

impl GroupConfig {
    /// Defaults for `group_id` (auto-commit every 5 s, as Kafka).
    pub fn new(group_id: impl Into<String>) -> Self {
        GroupConfig {
            group_id: group_id.into(),
            group_instance_id: None,
            session_timeout: Duration::from_secs(10),
            rebalance_timeout: Duration::from_secs(25),
            heartbeat_interval: Duration::from_secs(3),
            auto_commit_interval: Some(Duration::from_secs(5)),
        }
    }
}

/// This member's identity in the group, shared with the heartbeat task.
#[derive(Debug, Default)]
struct Membership {
    member_id: String,
    generation: i32,
    /// A join is in flight: heartbeats pause.
    joining: bool,
    /// The heartbeat task saw the group move on: rejoin before the next fetch.
    rejoin: bool,
    /// The coordinator forgot us (UNKNOWN_MEMBER_ID): rejoin with an empty member id.
    reset_member: bool,
}

/// A consumer in a consumer group. Call [`GroupConsumer::close`] to commit and leave.
#[derive(Debug)]
pub struct GroupConsumer {
    client: Client,
    consumer: Consumer,
    config: GroupConfig,
    topics: Vec<String>,
    membership: Arc<Mutex<Membership>>,
    coordinator: Option<Connection>,
    heartbeat: Option<tokio::task::JoinHandle<()>>,
    joined: bool,
    last_commit: Instant,
    committed: BTreeMap<TopicPartition, i64>,
}

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

fn is_code(e: &ClientError, r: ResponseError) -> bool {
    e.kafka_code() == Some(r.code())
}

impl GroupConsumer {
    /// A member of `config.group_id` that has not joined yet (it joins in the first `poll`).
    pub fn new(client: Client, consumer: ConsumerConfig, config: GroupConfig) -> GroupConsumer {
        GroupConsumer {
            consumer: Consumer::new(client.clone(), consumer),
            client,
            config,
            topics: Vec::new(),
            membership: Arc::new(Mutex::new(Membership::default())),
            coordinator: None,
            heartbeat: None,
            joined: false,
            last_commit: Instant::now(),
            committed: BTreeMap::new(),
        }
    }

    /// Sets the subscription; a change makes the next `poll` rejoin.
    pub fn subscribe(&mut self, topics: &[&str]) {
        let mut topics: Vec<String> = topics.iter().map(|t| (*t).to_owned()).collect();
        topics.sort();
        topics.dedup();
        if topics != self.topics {
            self.topics = topics;
            self.membership.lock().rejoin = true;
        }
    }

    /// The partitions this member currently owns.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.consumer
            .assignment()
            .into_iter()
            .map(|(tp, _)| tp)
            .collect()
    }

    /// The generation and member id of the last completed join.
    pub fn generation(&self) -> (i32, String) {
        let m = self.membership.lock();
        (m.generation, m.member_id.clone())
    }

    /// Joins (or rejoins) if needed, auto-commits when due, then fetches once.
    pub async fn poll(&mut self) -> Result<Vec<ConsumerRecord>, ClientError> {
        self.ensure_joined().await?;
        if let Some(every) = self.config.auto_commit_interval {
            if self.last_commit.elapsed() >= every {
                self.try_commit().await;
            }
        }
        self.consumer.poll().await
    }

    /// Commits the position of every owned partition (the offset after the last record
    /// returned by `poll`).
    pub async fn commit(&mut self) -> Result<(), ClientError> {
        let positions: BTreeMap<TopicPartition, i64> = self
            .consumer
            .assignment()
            .into_iter()
            .filter_map(|(tp, pos)| pos.map(|p| (tp, p)))
            .collect();
        self.commit_offsets(positions).await
    }

    /// Commits explicit offsets (the next offset to read, per partition). Partitions this member
    /// no longer owns are skipped, and so are offsets already committed.
    pub async fn commit_offsets(
        &mut self,
        offsets: BTreeMap<TopicPartition, i64>,
    ) -> Result<(), ClientError> {
        self.last_commit = Instant::now();
        let owned = self.assignment();
        let positions: BTreeMap<TopicPartition, i64> = offsets
            .into_iter()
            .filter(|(tp, p)| owned.contains(tp) && self.committed.get(tp) != Some(p))
            .collect();
        if positions.is_empty() || !self.joined {
            return Ok(());
        }
        let id = {
            let m = self.membership.lock();
            CommitIdentity {
                generation: m.generation,
                member_id: m.member_id.clone(),
                group_instance_id: self.config.group_instance_id.clone(),
            }
        };
        let conn = self.coordinator().await?;
        let result = commit_offsets_on(&conn, &self.config.group_id, &id, &positions).await;
        if let Err(e) = &result {
            if needs_new_coordinator(e) {
                self.coordinator = None;
            }
            if is_code(e, ResponseError::RebalanceInProgress)
                || is_code(e, ResponseError::IllegalGeneration)
                || is_code(e, ResponseError::UnknownMemberId)
            {
                self.membership.lock().rejoin = true;
            }
        } else {
            self.committed.extend(positions);
        }
        result
    }

    async fn try_commit(&mut self) {
        if let Err(e) = self.commit().await {
            tracing::warn!(group = %self.config.group_id, error = %e, "offset commit failed");
        }
    }

    /// Commits (with auto-commit), leaves the group and stops heartbeating.
    pub async fn close(mut self) -> Result<(), ClientError> {
        let committed = if self.config.auto_commit_interval.is_some() {
            self.commit().await
        } else {
            Ok(())
        };
        if let Some(h) = self.heartbeat.take() {
            h.abort();
        }
        let member_id = self.membership.lock().member_id.clone();
        if self.joined && !member_id.is_empty() {
            let conn = self.coordinator().await?;
            let version = conn.version(ApiKey::LeaveGroup)?;
            let mut req =
                LeaveGroupRequest::default().with_group_id(GroupId(text(&self.config.group_id)));
            if version >= 3 {
                req = req.with_members(vec![MemberIdentity::default()
                    .with_member_id(text(&member_id))
                    .with_group_instance_id(self.config.group_instance_id.as_deref().map(text))]);
            } else {
                req = req.with_member_id(text(&member_id));
            }
            if let Err(e) = conn.send(version, &req).await {
                tracing::debug!(error = %e, "LeaveGroup failed");
            }
        }
        committed
    }

    async fn coordinator(&mut self) -> Result<Connection, ClientError> {
        if let Some(c) = self.coordinator.as_ref().filter(|c| !c.is_closed()) {
            return Ok(c.clone());
        }
        let c = self
            .client
            .dedicated_coordinator(&self.config.group_id)
            .await?;
        self.coordinator = Some(c.clone());
        Ok(c)
    }

    async fn ensure_joined(&mut self) -> Result<(), ClientError> {
        let mut attempts = 0;
        loop {
            let rejoin = {
                let mut m = self.membership.lock();
                if m.reset_member {
                    m.reset_member = false;
                    m.member_id.clear();
                }
                std::mem::take(&mut m.rejoin)
            };
            if self.joined && !rejoin {
                return Ok(());
            }
            if self.joined && self.config.auto_commit_interval.is_some() {
                self.try_commit().await;
            }
            self.joined = false;
            self.membership.lock().joining = true;
            let result = self.join_and_sync().await;
            self.membership.lock().joining = false;
            match result {
                Ok(()) => {
                    self.joined = true;
                    self.start_heartbeat();
                    return Ok(());
                }
                Err(e) if attempts < 20 && Self::rejoinable(&e) => {
                    attempts += 1;
                    tracing::debug!(group = %self.config.group_id, error = %e, "rejoining");
                    if needs_new_coordinator(&e) {
                        self.coordinator = None;
                        self.client.backoff(1).await;
                    }
                    if is_code(&e, ResponseError::UnknownMemberId) {
                        self.membership.lock().member_id.clear();
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn rejoinable(e: &ClientError) -> bool {
        needs_new_coordinator(e)
            || is_code(e, ResponseError::RebalanceInProgress)
            || is_code(e, ResponseError::IllegalGeneration)
            || is_code(e, ResponseError::UnknownMemberId)
            || is_code(e, ResponseError::MemberIdRequired)
    }

    /// One JoinGroup (+ the KIP-394 second one) and SyncGroup, then the new assignment.
    async fn join_and_sync(&mut self) -> Result<(), ClientError> {
        let conn = self.coordinator().await?;
        let group = self.config.group_id.clone();
        let mut join = self.send_join(&conn).await?;
        if join.error_code == ResponseError::MemberIdRequired.code() {
            self.membership.lock().member_id = join.member_id.to_string();
            join = self.send_join(&conn).await?;
        }
        if join.error_code != 0 {
            return Err(ClientError::broker(
                format!("join group {group}"),
                join.error_code,
                None,
            ));
        }
        let member_id = join.member_id.to_string();
        {
            let mut m = self.membership.lock();
            m.member_id = member_id.clone();
            m.generation = join.generation_id;
        }
        let assignments = if join.leader == join.member_id {
            self.leader_assign(&join).await?
        } else {
            Vec::new()
        };
        let version = conn.version(ApiKey::SyncGroup)?;
        let req = SyncGroupRequest::default()
            .with_group_id(GroupId(text(&group)))
            .with_generation_id(join.generation_id)
            .with_member_id(text(&member_id))
            .with_group_instance_id(self.config.group_instance_id.as_deref().map(text))
            .with_protocol_type(Some(text(PROTOCOL_TYPE)))
            .with_protocol_name(Some(text(RANGE)))
            .with_assignments(assignments);
        let sync = conn.send(version, &req).await?;
        if sync.error_code != 0 {
            return Err(ClientError::broker(
                format!("sync group {group}"),
                sync.error_code,
                None,
            ));
        }
        let owned = assignor::decode_assignment(sync.assignment)?;
        self.take_assignment(&conn, owned).await
    }

    async fn send_join(&self, conn: &Connection) -> Result<JoinGroupResponse, ClientError> {
        let version = conn.version(ApiKey::JoinGroup)?;
        let ms = |d: Duration| i32::try_from(d.as_millis()).unwrap_or(i32::MAX);
        let member_id = self.membership.lock().member_id.clone();
        let req = JoinGroupRequest::default()
            .with_group_id(GroupId(text(&self.config.group_id)))
            .with_session_timeout_ms(ms(self.config.session_timeout))
            .with_rebalance_timeout_ms(ms(self.config.rebalance_timeout))
            .with_member_id(text(&member_id))
            .with_group_instance_id(self.config.group_instance_id.as_deref().map(text))
            .with_protocol_type(text(PROTOCOL_TYPE))
            .with_protocols(vec![JoinGroupRequestProtocol::default()
                .with_name(text(RANGE))
                .with_metadata(assignor::encode_subscription(&self.topics)?)]);
        conn.send(version, &req).await
    }

    /// The leader's range assignment over every member's subscription.
    async fn leader_assign(
        &self,
        join: &JoinGroupResponse,
    ) -> Result<Vec<SyncGroupRequestAssignment>, ClientError> {
        let mut members: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for m in &join.members {
            let topics = assignor::decode_subscription(m.metadata.clone())?;
            members.insert(m.member_id.to_string(), topics);
        }
        let mut partitions: BTreeMap<String, i32> = BTreeMap::new();
        for topic in members.values().flatten() {
            if partitions.contains_key(topic) {
                continue;
            }
            match self.client.topic_metadata(topic, false).await {
                Ok(t) => {
                    let n = i32::try_from(t.partitions.len()).unwrap_or(i32::MAX);
                    partitions.insert(topic.clone(), n);
                }
                Err(ClientError::UnknownTopic(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let plan = assignor::range_assign(&members, &partitions);
        plan.iter()
            .map(|(member, parts)| {
                Ok(SyncGroupRequestAssignment::default()
                    .with_member_id(text(member))
                    .with_assignment(assignor::encode_assignment(parts)?))
            })
            .collect()
    }

    /// Replaces the consumer's partitions, each resumed after its committed offset.
    async fn take_assignment(
        &mut self,
        conn: &Connection,
        owned: Vec<(String, i32)>,
    ) -> Result<(), ClientError> {
        let mut by_topic: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for (t, p) in &owned {
            by_topic.entry(t.clone()).or_default().push(*p);
        }
        let query: Vec<(String, Vec<i32>)> = by_topic.into_iter().collect();
        let committed = if query.is_empty() {
            BTreeMap::new()
        } else {
            fetch_offsets_on(conn, &self.config.group_id, Some(&query)).await?
        };
        let reset = match self.consumer.config().auto_offset_reset {
            OffsetReset::Earliest => StartOffset::Earliest,
            _ => StartOffset::Latest,
        };
        self.consumer.unassign_all();
        for (t, p) in owned {
            let tp = TopicPartition::new(t.clone(), p);
            let start = committed
                .get(&tp)
                .map_or(reset, |o| StartOffset::Offset(*o));
            self.consumer.assign(&t, p, start);
        }
        self.committed = committed;
        tracing::info!(group = %self.config.group_id, partitions = ?self.assignment(), "assigned");
        Ok(())
    }

    fn start_heartbeat(&mut self) {
        if self.heartbeat.as_ref().is_some_and(|h| !h.is_finished()) {
            return;
        }
        let client = self.client.clone();
        let membership = self.membership.clone();
        let group = self.config.group_id.clone();
        let instance = self.config.group_instance_id.clone();
        let interval = self.config.heartbeat_interval;
        self.heartbeat = Some(tokio::spawn(async move {
            let mut conn: Option<Connection> = None;
            loop {
                tokio::time::sleep(interval).await;
                let (member_id, generation) = {
                    let m = membership.lock();
                    if m.joining || m.rejoin || m.member_id.is_empty() {
                        continue;
                    }
                    (m.member_id.clone(), m.generation)
                };
                let c = match conn.as_ref().filter(|c| !c.is_closed()) {
                    Some(c) => c.clone(),
                    None => match client.dedicated_coordinator(&group).await {
                        Ok(c) => {
                            conn = Some(c.clone());
                            c
                        }
                        Err(e) => {
                            tracing::debug!(error = %e, "heartbeat: no coordinator");
                            continue;
                        }
                    },
                };
                let code = heartbeat_once(&c, &group, generation, &member_id, instance.as_deref())
                    .await
                    .unwrap_or_else(|e| e.kafka_code().unwrap_or(-1));
                let mut m = membership.lock();
                if m.joining || m.generation != generation || m.member_id != member_id {
                    continue;
                }
                match ResponseError::try_from_code(code) {
                    None => {}
                    Some(ResponseError::RebalanceInProgress | ResponseError::IllegalGeneration) => {
                        m.rejoin = true
                    }
                    Some(ResponseError::UnknownMemberId | ResponseError::FencedInstanceId) => {
                        m.rejoin = true;
                        m.reset_member = true;
                    }
                    Some(_) => conn = None,
                }
            }
        }));
    }
}

async fn heartbeat_once(
    conn: &Connection,
    group: &str,
    generation: i32,
    member_id: &str,
    instance: Option<&str>,
) -> Result<i16, ClientError> {
    let version = conn.version(ApiKey::Heartbeat)?;
    let req = HeartbeatRequest::default()
        .with_group_id(GroupId(text(group)))
        .with_generation_id(generation)
        .with_member_id(text(member_id))
        .with_group_instance_id(instance.map(text));
    Ok(conn.send(version, &req).await?.error_code)
}

impl Drop for GroupConsumer {
    fn drop(&mut self) {
        if let Some(h) = self.heartbeat.take() {
            h.abort();
        }
    }
}
