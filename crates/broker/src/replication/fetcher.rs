//! `ReplicaFetcherManager`: one fetcher task (`run`, Kafka's `ReplicaFetcherThread`) per leader
//! broker this broker follows partitions of. A fetcher sends the leader Fetch requests as a
//! replica (Fetch v12+: current leader epoch and last fetched epoch per partition), appends what
//! comes back to the local logs exactly as the leader has it, and truncates a divergent tail when
//! the leader answers with a diverging epoch (KIP-320).
//!
//! The next fetch offset tells the leader what this replica holds, and the leader counts it for
//! the high watermark: so a fetcher only asks for more once the previous append is durable here.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ReplicaState};
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::{ApiKey, BrokerId, FetchRequest, FetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use parking_lot::Mutex;
use strom_client::{Connection, ConnectionConfig};
use strom_cluster::replication::divergence::truncation_offset;
use strom_log::{PartitionLog, TopicPartition};
use tokio::sync::Notify;
use uuid::Uuid;

/// How a fetcher reaches a broker: its `host:port` by id, from the current metadata image.
pub(crate) type BrokerAddress = Arc<dyn Fn(i32) -> Option<String> + Send + Sync>;

/// Settings of all fetchers.
#[derive(Debug, Clone)]
pub(crate) struct FetcherConfig {
    pub(crate) node_id: i32,
    /// This broker's epoch (KIP-903), sent with every fetch: the leader serves a replica fetch
    /// only when it matches the registration it knows for `node_id`.
    pub(crate) broker_epoch: i64,
    /// TLS and SASL of the inter-broker listener.
    pub(crate) security: Arc<strom_client::Security>,
    pub(crate) max_wait_ms: i32,
    pub(crate) max_bytes_per_partition: i32,
    pub(crate) backoff: Duration,
}

/// One partition a fetcher copies.
#[derive(Debug, Clone)]
struct Fetching {
    topic_id: Uuid,
    log: Arc<PartitionLog>,
    leader_epoch: i32,
}

/// The partitions one fetcher copies from one leader; changed by the manager, read by the task.
#[derive(Debug, Default)]
struct Assignment {
    partitions: Mutex<BTreeMap<TopicPartition, Fetching>>,
    changed: Notify,
}

#[derive(Debug)]
struct FetcherHandle {
    assignment: Arc<Assignment>,
    task: tokio::task::JoinHandle<()>,
}

/// All fetchers of this broker.
pub(crate) struct ReplicaFetcherManager {
    config: FetcherConfig,
    address: BrokerAddress,
    fetchers: Mutex<BTreeMap<i32, FetcherHandle>>,
}

impl std::fmt::Debug for ReplicaFetcherManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicaFetcherManager")
            .field("leaders", &self.fetchers.lock().keys().collect::<Vec<_>>())
            .finish()
    }
}

impl ReplicaFetcherManager {
    pub(crate) fn new(config: FetcherConfig, address: BrokerAddress) -> Self {
        ReplicaFetcherManager {
            config,
            address,
            fetchers: Mutex::new(BTreeMap::new()),
        }
    }

    /// Follow `tp` from `leader` at `leader_epoch` (moving it off any other fetcher).
    pub(crate) fn add(
        &self,
        tp: TopicPartition,
        topic_id: Uuid,
        log: Arc<PartitionLog>,
        leader: i32,
        leader_epoch: i32,
    ) {
        self.remove(&tp);
        let mut fetchers = self.fetchers.lock();
        let handle = fetchers.entry(leader).or_insert_with(|| {
            let assignment = Arc::new(Assignment::default());
            let task = tokio::spawn(run(
                self.config.clone(),
                leader,
                self.address.clone(),
                assignment.clone(),
            ));
            FetcherHandle { assignment, task }
        });
        handle.assignment.partitions.lock().insert(
            tp,
            Fetching {
                topic_id,
                log,
                leader_epoch,
            },
        );
        handle.assignment.changed.notify_one();
    }

    /// Stop following `tp`. A fetcher left with nothing to do stops.
    pub(crate) fn remove(&self, tp: &TopicPartition) {
        let mut fetchers = self.fetchers.lock();
        let mut idle = Vec::new();
        for (leader, h) in fetchers.iter() {
            let mut parts = h.assignment.partitions.lock();
            if parts.remove(tp).is_some() && parts.is_empty() {
                idle.push(*leader);
            }
        }
        for leader in idle {
            if let Some(h) = fetchers.remove(&leader) {
                h.task.abort();
            }
        }
    }

    /// Stops every fetcher (shutdown).
    pub(crate) fn shutdown(&self) {
        for (_, h) in std::mem::take(&mut *self.fetchers.lock()) {
            h.task.abort();
        }
    }
}

/// The fetch loop against one leader.
async fn run(
    config: FetcherConfig,
    leader: i32,
    address: BrokerAddress,
    assignment: Arc<Assignment>,
) {
    let mut conn: Option<Connection> = None;
    loop {
        let parts: Vec<(TopicPartition, Fetching)> = assignment
            .partitions
            .lock()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if parts.is_empty() {
            assignment.changed.notified().await;
            continue;
        }
        let c = match &conn {
            Some(c) if !c.is_closed() => c.clone(),
            _ => match connect(&config, leader, &address).await {
                Some(c) => {
                    conn = Some(c.clone());
                    c
                }
                None => {
                    tokio::time::sleep(config.backoff).await;
                    continue;
                }
            },
        };
        let version = c.version(ApiKey::Fetch).unwrap_or(0).min(16);
        if version < 12 {
            tracing::warn!(
                leader,
                version,
                "leader does not support Fetch v12; cannot replicate"
            );
            conn = None;
            tokio::time::sleep(config.backoff).await;
            continue;
        }
        let req = build_request(&config, version, &parts);
        // Never abandon a fetch in flight when the assignment changes: the leader still serves
        // it, in order, long-polling up to max_wait_ms before it even looks at the next request
        // on this connection, and it counts follower progress only as it serves a fetch. A burst
        // of assignment changes (a topic's partitions arriving one by one) queued seconds of such
        // empty polls, so the leader saw no fetch for the newest partitions for longer than
        // replica.lag.time.max.ms and shrank their ISRs to itself. As in Kafka's fetcher, new
        // partitions join the next request, at most max_wait_ms later; answers for partitions
        // that moved meanwhile are dropped below.
        let response = c.send(version, &req).await;
        let response: FetchResponse = match response {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(leader, error = %e, "replica fetch failed");
                conn = None;
                tokio::time::sleep(config.backoff).await;
                continue;
            }
        };
        let mut backoff = false;
        for t in response.responses {
            for p in t.partitions {
                let found = parts.iter().find(|(tp, f)| {
                    tp.partition == p.partition_index
                        && if version >= 13 {
                            f.topic_id == t.topic_id
                        } else {
                            tp.topic == t.topic.0.as_str()
                        }
                });
                let Some((tp, f)) = found else { continue };
                // The assignment may have moved on while the request was out.
                let still = assignment
                    .partitions
                    .lock()
                    .get(tp)
                    .is_some_and(|cur| cur.leader_epoch == f.leader_epoch);
                if !still {
                    continue;
                }
                if let Err(e) = handle_partition(tp, f, p).await {
                    tracing::debug!(partition = %tp, leader, error = %e, "replica fetch partition error");
                    backoff = true;
                }
            }
        }
        if backoff {
            tokio::time::sleep(config.backoff.min(Duration::from_millis(200))).await;
        }
    }
}

async fn connect(
    config: &FetcherConfig,
    leader: i32,
    address: &BrokerAddress,
) -> Option<Connection> {
    let addr = address(leader)?;
    let cc = ConnectionConfig {
        client_id: format!("strom-replica-fetcher-{}", config.node_id),
        request_timeout: Duration::from_millis(config.max_wait_ms.max(0) as u64 + 30_000),
        connect_timeout: Duration::from_secs(5),
    };
    match Connection::connect_with_security(&addr, &cc, &config.security).await {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::debug!(leader, addr, error = %e, "connecting to leader failed");
            None
        }
    }
}

fn build_request(
    config: &FetcherConfig,
    version: i16,
    parts: &[(TopicPartition, Fetching)],
) -> FetchRequest {
    let mut topics: Vec<FetchTopic> = Vec::new();
    for (tp, f) in parts {
        let partition = FetchPartition::default()
            .with_partition(tp.partition)
            .with_current_leader_epoch(f.leader_epoch)
            .with_fetch_offset(f.log.log_end_offset())
            .with_last_fetched_epoch(f.log.latest_leader_epoch().unwrap_or(-1))
            .with_log_start_offset(f.log.log_start_offset())
            .with_partition_max_bytes(config.max_bytes_per_partition);
        let same = |t: &FetchTopic| {
            if version >= 13 {
                t.topic_id == f.topic_id
            } else {
                t.topic.0.as_str() == tp.topic
            }
        };
        match topics.iter_mut().find(|t| same(t)) {
            Some(t) => t.partitions.push(partition),
            None => {
                let t = FetchTopic::default().with_partitions(vec![partition]);
                topics.push(if version >= 13 {
                    t.with_topic_id(f.topic_id)
                } else {
                    t.with_topic(TopicName(StrBytes::from_string(tp.topic.clone())))
                });
            }
        }
    }
    let req = FetchRequest::default()
        .with_max_wait_ms(config.max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(i32::MAX)
        .with_isolation_level(0)
        .with_session_id(0)
        .with_session_epoch(-1)
        .with_topics(topics);
    if version >= 15 {
        req.with_replica_state(
            ReplicaState::default()
                .with_replica_id(BrokerId(config.node_id))
                .with_replica_epoch(config.broker_epoch),
        )
    } else {
        req.with_replica_id(BrokerId(config.node_id))
    }
}

/// Why a partition's fetch did not advance.
#[derive(Debug, thiserror::Error)]
enum PartitionFetchError {
    #[error("leader answered {0:?}")]
    Leader(ResponseError),
    #[error("leader answered unknown error code {0}")]
    Code(i16),
    #[error(transparent)]
    Log(#[from] strom_log::LogError),
}

async fn handle_partition(
    tp: &TopicPartition,
    f: &Fetching,
    p: PartitionData,
) -> Result<(), PartitionFetchError> {
    let log = &f.log;
    if p.error_code != 0 {
        let err = ResponseError::try_from_code(p.error_code);
        return match err {
            Some(ResponseError::OffsetOutOfRange) => {
                // Only reachable when the leader's log starts after our end (retention moved it
                // while we were away): start over at its log start.
                if p.log_start_offset > log.log_end_offset() {
                    tracing::info!(partition = %tp, start = p.log_start_offset, "follower behind the leader's log start; starting over there");
                    log.truncate_fully_and_start_at(p.log_start_offset)?;
                    Ok(())
                } else {
                    Err(PartitionFetchError::Leader(ResponseError::OffsetOutOfRange))
                }
            }
            Some(e) => Err(PartitionFetchError::Leader(e)),
            None => Err(PartitionFetchError::Code(p.error_code)),
        };
    }
    if p.diverging_epoch.epoch >= 0 || p.diverging_epoch.end_offset >= 0 {
        let end = log.log_end_offset();
        let to = truncation_offset(
            (p.diverging_epoch.epoch, p.diverging_epoch.end_offset),
            |e| log.end_offset_for_leader_epoch(e),
            end,
        );
        tracing::info!(partition = %tp, from = end, to, leader_epoch = p.diverging_epoch.epoch, "truncating divergent tail");
        log.truncate_to(to)?;
        return Ok(());
    }
    if let Some(records) = p.records.filter(|r| !r.is_empty()) {
        if let Some(info) = log.append_as_follower(records)? {
            log.wait_durable(info.last_offset + 1).await?;
        }
    }
    // A follower's high watermark is the leader's, capped by what it holds itself.
    log.set_high_watermark_bound(p.high_watermark);
    Ok(())
}
