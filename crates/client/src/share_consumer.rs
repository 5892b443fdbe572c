//! `ShareConsumer`: a member of a share group (KIP-932, "queues for Kafka"). Unlike a
//! consumer-group member it owns no partition: the coordinator may assign a partition to several
//! members, and each record is acquired by one of them under a time-limited lock, delivered with
//! its delivery count, and acknowledged one by one (ACCEPT, RELEASE, REJECT).
//!
//! Membership is `share_membership.rs` (ShareGroupHeartbeat from a tokio task). Each `poll` sends
//! one ShareFetch per leader of the assigned partitions, all queued before any is awaited, in a
//! share session per leader (`share_fetch.rs`); it carries the acknowledgements given since the
//! last one, and only records inside the response's acquired ranges are returned. `commit` sends
//! pending acknowledgements at once with ShareAcknowledge; `close` sends them with epoch -1, which
//! also closes each session (the broker releases what this member still holds), then leaves.
//!
//! Acknowledgement is explicit: a record that is never acknowledged comes back to the group when
//! its lock expires (`share.record.lock.duration.ms`), counted as a further delivery.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::share_acknowledge_request::{
    AcknowledgePartition, AcknowledgeTopic, AcknowledgementBatch as AckRequestBatch,
};
use kafka_protocol::messages::share_fetch_request::{
    AcknowledgementBatch, FetchPartition, FetchTopic, ForgottenTopic,
};
use kafka_protocol::messages::{
    ApiKey, ShareAcknowledgeRequest, ShareAcknowledgeResponse, ShareFetchRequest,
    ShareFetchResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use parking_lot::Mutex;

use crate::client::Client;
use crate::error::{is_retriable_code, ClientError};
use crate::fetch::decode_partition;
use crate::group_admin::{gid, is_coordinator_moved};
use crate::metadata::ClusterMetadata;
use crate::share_fetch::{
    acquired_records, Acknowledgements, AcquiredRange, SessionRequest, ShareSession,
    TopicIdPartition, GAP,
};
use crate::share_membership::{self, ShareMembership};
use crate::{AcknowledgeType, PendingResponse, ShareRecord};

/// Kafka's share session epoch that closes a session.
const FINAL_EPOCH: i32 = -1;

/// Share consumer settings (Kafka consumer config names in the docs).
#[derive(Debug, Clone)]
pub struct ShareConsumerConfig {
    /// group.id
    pub group_id: String,
    /// fetch.max.wait.ms
    pub max_wait: Duration,
    /// fetch.min.bytes
    pub min_bytes: i32,
    /// fetch.max.bytes
    pub max_bytes: i32,
    /// max.poll.records: the most records one ShareFetch acquires.
    pub max_records: i32,
}

impl ShareConsumerConfig {
    /// Kafka's defaults for `group_id`.
    pub fn new(group_id: impl Into<String>) -> Self {
        ShareConsumerConfig {
            group_id: group_id.into(),
            max_wait: Duration::from_millis(500),
            min_bytes: 1,
            max_bytes: 50 * 1024 * 1024,
            max_records: 500,
        }
    }
}

/// A request queued to one leader, with what it carried.
struct InFlight<R> {
    leader: i32,
    sent: SessionRequest,
    acks: Acknowledgements,
    response: Result<PendingResponse<R>, ClientError>,
}

/// A share-group member. Call [`ShareConsumer::close`] to acknowledge, close sessions and leave.
#[derive(Debug)]
pub struct ShareConsumer {
    client: Client,
    config: ShareConsumerConfig,
    membership: Arc<Mutex<ShareMembership>>,
    heartbeat: Option<tokio::task::JoinHandle<()>>,
    /// Share sessions by leader id.
    sessions: BTreeMap<i32, ShareSession>,
    /// Acknowledgements not yet sent.
    acks: Acknowledgements,
}

fn leader_of(meta: &ClusterMetadata, (id, partition): &TopicIdPartition) -> Option<i32> {
    meta.leader(meta.topic_name_by_id(*id)?, *partition)
}

/// `partitions` grouped by topic id, in order.
fn by_topic(
    partitions: impl IntoIterator<Item = TopicIdPartition>,
) -> BTreeMap<uuid::Uuid, Vec<i32>> {
    let mut out: BTreeMap<uuid::Uuid, Vec<i32>> = BTreeMap::new();
    for (id, p) in partitions {
        out.entry(id).or_default().push(p);
    }
    out
}

fn is_session_error(code: i16) -> bool {
    code == ResponseError::ShareSessionNotFound.code()
        || code == ResponseError::InvalidShareSessionEpoch.code()
}

impl ShareConsumer {
    /// A member of `config.group_id` that has not joined yet (it joins in the first `poll`).
    pub fn new(client: Client, config: ShareConsumerConfig) -> ShareConsumer {
        let membership = ShareMembership::new(&config.group_id);
        ShareConsumer {
            client,
            config,
            membership: Arc::new(Mutex::new(membership)),
            heartbeat: None,
            sessions: BTreeMap::new(),
            acks: Acknowledgements::default(),
        }
    }

    /// Sets the subscription (sent with the next heartbeat).
    pub fn subscribe(&mut self, topics: &[&str]) {
        let mut topics: Vec<String> = topics.iter().map(|t| (*t).to_owned()).collect();
        topics.sort();
        topics.dedup();
        self.membership.lock().subscribe(topics);
    }

    /// This member's id (made by the client, as Kafka 4's) and current epoch.
    pub fn member(&self) -> (String, i32) {
        let m = self.membership.lock();
        (m.member_id.clone(), m.epoch)
    }

    /// Joins if needed, then fetches once from every leader of the assigned partitions; may
    /// return nothing after `max_wait`. Sends the acknowledgements given since the last call.
    ///
    /// Not cancel-safe: a poll dropped while its fetches are in flight loses the
    /// acknowledgements they carried (and the records they acquired stay locked until the lock
    /// expires), so let a started poll finish; it waits at most `max_wait` for records.
    pub async fn poll(&mut self) -> Result<Vec<ShareRecord>, ClientError> {
        self.ensure_joined().await?;
        let assignment = self.membership.lock().assignment.clone();
        let mut meta = self.client.metadata();
        if assignment.iter().any(|tp| leader_of(&meta, tp).is_none()) {
            meta = self.refresh_metadata().await?;
        }
        let mut wanted: BTreeMap<i32, BTreeSet<TopicIdPartition>> = BTreeMap::new();
        for tp in &assignment {
            if let Some(leader) = leader_of(&meta, tp) {
                wanted.entry(leader).or_default().insert(*tp);
            }
        }
        let mut acked: BTreeMap<i32, BTreeSet<TopicIdPartition>> = BTreeMap::new();
        for tp in self.acks.partitions() {
            if let Some(leader) = leader_of(&meta, tp) {
                acked.entry(leader).or_default().insert(*tp);
            }
        }
        let leaders: BTreeSet<i32> = wanted
            .keys()
            .chain(acked.keys())
            .chain(self.sessions.keys())
            .copied()
            .collect();

        // Queue every ShareFetch, then await them: leaders long-poll in parallel.
        let mut in_flight = Vec::new();
        for leader in leaders {
            let wanted = wanted.remove(&leader).unwrap_or_default();
            let acked = acked.remove(&leader).unwrap_or_default();
            let session = self.sessions.entry(leader).or_default();
            let idle = wanted.is_empty() && !session.has_unwanted(&wanted) && acked.is_empty();
            if idle || (wanted.is_empty() && !session.is_open()) {
                continue;
            }
            let sent = session.request(&wanted, &acked);
            // An opening request carries no acknowledgements; they wait for the next one.
            let acks = if sent.epoch == 0 {
                Acknowledgements::default()
            } else {
                self.acks.take_where(|tp| acked.contains(tp))
            };
            let request = self.fetch_request(&sent, &acks, !wanted.is_empty());
            let response = match self.client.connection(leader).await {
                Ok(conn) => conn
                    .version(ApiKey::ShareFetch)
                    .and_then(|v| conn.start(v, &request)),
                Err(e) => Err(e),
            };
            in_flight.push(InFlight {
                leader,
                sent,
                acks,
                response,
            });
        }
        if in_flight.is_empty() {
            tokio::time::sleep(self.config.max_wait).await;
            return Ok(Vec::new());
        }

        let mut out = Vec::new();
        let mut refresh = false;
        let mut failure = None;
        for f in in_flight {
            let response = match f.response {
                Ok(pending) => pending.wait().await,
                Err(e) => Err(e),
            };
            match self.apply_fetch(f.leader, &f.sent, f.acks, response, &meta, &mut out) {
                Ok(r) => refresh |= r,
                Err(e) if e.is_retriable() => refresh = true,
                Err(e) => failure = failure.or(Some(e)),
            }
        }
        if let Some(e) = failure {
            return Err(e);
        }
        if refresh {
            self.refresh_metadata().await?;
            if out.is_empty() {
                // Nothing fetched: do not spin while a leader is being elected.
                self.client.backoff(1).await;
            }
        }
        Ok(out)
    }

    /// Acknowledges `record` (sent with the next ShareFetch to its leader, or by `commit`).
    /// A later acknowledgement of the same record before it is sent replaces this one.
    pub fn acknowledge(&mut self, record: &ShareRecord, kind: AcknowledgeType) {
        let offset = record.record.offset;
        let tp = (record.topic_id, record.record.partition);
        self.acks.add(tp, offset, offset, kind.id());
    }

    /// Sends the pending acknowledgements now (ShareAcknowledge to each leader with an open
    /// session) and waits until the brokers made them durable.
    pub async fn commit(&mut self) -> Result<(), ClientError> {
        self.send_acknowledgements(false).await
    }

    /// Sends the pending acknowledgements and closes every share session (epoch -1: records
    /// still held go back to the group at once), then leaves the group.
    pub async fn close(mut self) -> Result<(), ClientError> {
        if let Some(h) = self.heartbeat.take() {
            h.abort();
        }
        let acknowledged = self.send_acknowledgements(true).await;
        share_membership::leave(&self.client, &self.membership).await;
        acknowledged
    }

    async fn ensure_joined(&mut self) -> Result<(), ClientError> {
        if let Some(e) = self.membership.lock().fatal.take() {
            self.heartbeat = None; // the task ended; the next poll joins again
            return Err(e);
        }
        if self.heartbeat.is_some() {
            return Ok(());
        }
        if self.membership.lock().topics().is_empty() {
            return Err(ClientError::broker(
                format!("share group {}", self.config.group_id),
                ResponseError::InvalidRequest.code(),
                Some("subscribe to a topic before polling"),
            ));
        }
        self.refresh_metadata().await?;
        share_membership::join(&self.client, &self.membership).await?;
        self.heartbeat = Some(share_membership::spawn_heartbeat(
            self.client.clone(),
            self.membership.clone(),
        ));
        Ok(())
    }

    async fn refresh_metadata(&self) -> Result<Arc<ClusterMetadata>, ClientError> {
        let topics = self.membership.lock().topics().to_vec();
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        self.client.refresh_metadata(Some(&names), false).await
    }

    fn fetch_request(
        &self,
        sent: &SessionRequest,
        acks: &Acknowledgements,
        fetching: bool,
    ) -> ShareFetchRequest {
        let (member_id, group) = {
            let m = self.membership.lock();
            (m.member_id.clone(), m.group_id.clone())
        };
        let topics = by_topic(sent.topics.iter().copied())
            .into_iter()
            .map(|(id, partitions)| {
                FetchTopic::default().with_topic_id(id).with_partitions(
                    partitions
                        .into_iter()
                        .map(|p| {
                            let batches = acks.batches(&(id, p)).into_iter().map(|(f, l, t)| {
                                AcknowledgementBatch::default()
                                    .with_first_offset(f)
                                    .with_last_offset(l)
                                    .with_acknowledge_types(t)
                            });
                            FetchPartition::default()
                                .with_partition_index(p)
                                .with_acknowledgement_batches(batches.collect())
                        })
                        .collect(),
                )
            })
            .collect();
        let forgotten = by_topic(sent.forget.iter().copied())
            .into_iter()
            .map(|(id, partitions)| {
                ForgottenTopic::default()
                    .with_topic_id(id)
                    .with_partitions(partitions)
            })
            .collect();
        // A request that only forgets or acknowledges must not wait for records.
        let max_wait = if fetching {
            i32::try_from(self.config.max_wait.as_millis()).unwrap_or(i32::MAX)
        } else {
            0
        };
        ShareFetchRequest::default()
            .with_group_id(Some(gid(&group)))
            .with_member_id(Some(StrBytes::from_string(member_id)))
            .with_share_session_epoch(sent.epoch)
            .with_max_wait_ms(max_wait)
            .with_min_bytes(self.config.min_bytes)
            .with_max_bytes(self.config.max_bytes)
            .with_max_records(self.config.max_records)
            .with_batch_size(self.config.max_records)
            .with_topics(topics)
            .with_forgotten_topics_data(forgotten)
    }

    /// Applies one leader's ShareFetch answer: the session steps, acquired records go to `out`,
    /// acquired offsets without a record are acknowledged as GAP. Returns whether metadata is
    /// stale. A request that failed as a whole resets the session and keeps its acknowledgements.
    fn apply_fetch(
        &mut self,
        leader: i32,
        sent: &SessionRequest,
        acks: Acknowledgements,
        response: Result<ShareFetchResponse, ClientError>,
        meta: &ClusterMetadata,
        out: &mut Vec<ShareRecord>,
    ) -> Result<bool, ClientError> {
        let session = self.sessions.entry(leader).or_default();
        let response = match response {
            Ok(r) if r.error_code == 0 => r,
            other => {
                session.reset();
                self.acks.restore(acks);
                return match other {
                    Ok(r) if is_session_error(r.error_code) => Ok(false),
                    Ok(r) => Err(ClientError::broker(
                        format!("share fetch from broker {leader}"),
                        r.error_code,
                        r.error_message.as_deref(),
                    )),
                    Err(e) => Err(e),
                };
            }
        };
        session.accepted(sent);
        let mut refresh = false;
        for topic in response.responses {
            let Some(name) = meta.topic_name_by_id(topic.topic_id) else {
                refresh = true;
                continue;
            };
            let name: Arc<str> = Arc::from(name);
            for p in topic.partitions {
                let tp = (topic.topic_id, p.partition_index);
                if p.acknowledge_error_code != 0 {
                    tracing::warn!(topic = %name, partition = tp.1, error = %ClientError::broker("acknowledge", p.acknowledge_error_code, p.acknowledge_error_message.as_deref()), "acknowledgement failed; the records will be delivered again");
                }
                match p.error_code {
                    0 => {}
                    // A moved leader, or share-partition state the leader cannot load yet
                    // (its share coordinator moving or loading): try again next poll.
                    code if is_retriable_code(code) || is_coordinator_moved(code) => {
                        tracing::debug!(topic = %name, partition = tp.1, error = %ClientError::broker("share fetch", code, None), "retrying");
                        refresh = true;
                        continue;
                    }
                    code => {
                        return Err(ClientError::broker(
                            format!("share fetch {name}-{}", tp.1),
                            code,
                            p.error_message.as_deref(),
                        ))
                    }
                }
                let Some(data) = p.records.as_ref() else {
                    continue;
                };
                let decoded = decode_partition(&name, tp.1, data, i64::MIN)
                    .map_err(|e| e.into_client_error(&name, tp.1))?;
                let ranges: Vec<AcquiredRange> = p
                    .acquired_records
                    .iter()
                    .map(|r| (r.first_offset, r.last_offset, r.delivery_count))
                    .collect();
                let (records, gaps) = acquired_records(
                    topic.topic_id,
                    decoded.records,
                    decoded.next_offset,
                    &ranges,
                );
                for (first, last) in gaps {
                    self.acks.add(tp, first, last, GAP);
                }
                out.extend(records);
            }
        }
        Ok(refresh)
    }

    /// ShareAcknowledge to each leader with an open session and acknowledgements, or with
    /// `closing` to every open session (epoch -1). The first failure is returned after all.
    async fn send_acknowledgements(&mut self, closing: bool) -> Result<(), ClientError> {
        let meta = self.client.metadata();
        let mut acked: BTreeMap<i32, BTreeSet<TopicIdPartition>> = BTreeMap::new();
        for tp in self.acks.partitions() {
            if let Some(leader) = leader_of(&meta, tp) {
                acked.entry(leader).or_default().insert(*tp);
            }
        }
        let mut in_flight = Vec::new();
        for (&leader, session) in &self.sessions {
            let partitions = acked.remove(&leader).unwrap_or_default();
            if !session.is_open() || (partitions.is_empty() && !closing) {
                continue;
            }
            let acks = self.acks.take_where(|tp| partitions.contains(tp));
            let epoch = if closing {
                FINAL_EPOCH
            } else {
                session.epoch()
            };
            let request = self.acknowledge_request(epoch, &partitions, &acks);
            let response = match self.client.connection(leader).await {
                Ok(conn) => conn
                    .version(ApiKey::ShareAcknowledge)
                    .and_then(|v| conn.start(v, &request)),
                Err(e) => Err(e),
            };
            let sent = SessionRequest {
                epoch,
                topics: partitions,
                forget: BTreeSet::new(),
            };
            in_flight.push(InFlight {
                leader,
                sent,
                acks,
                response,
            });
        }
        let mut failure = None;
        for f in in_flight {
            let InFlight {
                leader,
                sent,
                acks,
                response,
            } = f;
            let response = match response {
                Ok(pending) => pending.wait().await,
                Err(e) => Err(e),
            };
            if let Err(e) = self.apply_acknowledge(leader, sent.epoch, acks, response) {
                failure = failure.or(Some(e));
            }
        }
        failure.map_or(Ok(()), Err)
    }

    fn acknowledge_request(
        &self,
        epoch: i32,
        partitions: &BTreeSet<TopicIdPartition>,
        acks: &Acknowledgements,
    ) -> ShareAcknowledgeRequest {
        let (member_id, group) = {
            let m = self.membership.lock();
            (m.member_id.clone(), m.group_id.clone())
        };
        let topics = by_topic(partitions.iter().copied())
            .into_iter()
            .map(|(id, ps)| {
                AcknowledgeTopic::default()
                    .with_topic_id(id)
                    .with_partitions(
                        ps.into_iter()
                            .map(|p| {
                                let batches =
                                    acks.batches(&(id, p)).into_iter().map(|(f, l, t)| {
                                        AckRequestBatch::default()
                                            .with_first_offset(f)
                                            .with_last_offset(l)
                                            .with_acknowledge_types(t)
                                    });
                                AcknowledgePartition::default()
                                    .with_partition_index(p)
                                    .with_acknowledgement_batches(batches.collect())
                            })
                            .collect(),
                    )
            })
            .collect();
        ShareAcknowledgeRequest::default()
            .with_group_id(Some(gid(&group)))
            .with_member_id(Some(StrBytes::from_string(member_id)))
            .with_share_session_epoch(epoch)
            .with_topics(topics)
    }

    /// Applies one leader's ShareAcknowledge answer. A request refused as a whole resets the
    /// session and keeps its acknowledgements for the next fetch.
    fn apply_acknowledge(
        &mut self,
        leader: i32,
        epoch: i32,
        acks: Acknowledgements,
        response: Result<ShareAcknowledgeResponse, ClientError>,
    ) -> Result<(), ClientError> {
        let session = self.sessions.entry(leader).or_default();
        let context = || format!("share acknowledge to broker {leader}");
        let response = match response {
            Ok(r) if r.error_code == 0 => r,
            other => {
                session.reset();
                self.acks.restore(acks);
                return Err(match other {
                    Ok(r) => {
                        ClientError::broker(context(), r.error_code, r.error_message.as_deref())
                    }
                    Err(e) => e,
                });
            }
        };
        if epoch == FINAL_EPOCH {
            session.reset();
        } else {
            session.acknowledged();
        }
        let failed = response
            .responses
            .iter()
            .flat_map(|t| t.partitions.iter())
            .find(|p| p.error_code != 0);
        match failed {
            Some(p) => Err(ClientError::broker(
                context(),
                p.error_code,
                p.error_message.as_deref(),
            )),
            None => Ok(()),
        }
    }
}

impl Drop for ShareConsumer {
    fn drop(&mut self) {
        if let Some(h) = self.heartbeat.take() {
            h.abort();
        }
    }
}
