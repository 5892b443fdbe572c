//! `Consumer`: reads assigned partitions from chosen start positions (`group.rs` drives it for
//! consumer groups).
//!
//! Each `poll` resolves unknown positions with ListOffsets, sends one Fetch per partition leader
//! (all queued before any is awaited, so brokers work in parallel), decodes the batches
//! (`fetch.rs`) and advances positions. OFFSET_OUT_OF_RANGE resets the position per
//! `auto_offset_reset`; stale-leader errors refresh metadata and are retried on the next poll, up
//! to the client's `retries` in a row per partition. Group membership will add itself around
//! `assign`: the fetch path does not care who chose the partitions.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{ApiKey, FetchRequest, FetchResponse};
use kafka_protocol::ResponseError;

use crate::admin::OffsetSpec;
use crate::client::Client;
use crate::error::{is_stale_metadata_code, ClientError};
use crate::fetch::decode_partition;
use crate::metadata::topic_name;
use crate::metadata::TopicPartition;
use crate::PendingResponse;

pub use crate::fetch::ConsumerRecord;

/// Where to start reading an assigned partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartOffset {
    /// The log start offset.
    Earliest,
    /// The log end offset: only records produced from now on.
    Latest,
    /// An explicit offset.
    Offset(i64),
}

/// What to do when the position is outside the log (Kafka: auto.offset.reset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetReset {
    /// Jump to the log start.
    Earliest,
    /// Jump to the log end.
    Latest,
    /// Return OFFSET_OUT_OF_RANGE from `poll`.
    None,
}

/// Consumer settings (Kafka consumer config names in the docs).
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// fetch.max.wait.ms
    pub max_wait: Duration,
    /// fetch.min.bytes
    pub min_bytes: i32,
    /// fetch.max.bytes
    pub max_bytes: i32,
    /// max.partition.fetch.bytes
    pub partition_max_bytes: i32,
    /// auto.offset.reset
    pub auto_offset_reset: OffsetReset,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            max_wait: Duration::from_millis(500),
            min_bytes: 1,
            max_bytes: 50 * 1024 * 1024,
            partition_max_bytes: 1024 * 1024,
            auto_offset_reset: OffsetReset::Latest,
        }
    }
}

/// A Fetch queued on a connection: its version and the response to await.
type StartedFetch = Result<(i16, PendingResponse<FetchResponse>), ClientError>;

#[derive(Debug)]
struct Assignment {
    topic: Arc<str>,
    partition: i32,
    /// Next offset to fetch; `None` until resolved from `start`.
    position: Option<i64>,
    start: StartOffset,
    /// Consecutive retriable failures.
    failures: u32,
}

/// A consumer of explicitly assigned partitions.
#[derive(Debug)]
pub struct Consumer {
    client: Client,
    config: ConsumerConfig,
    assignments: Vec<Assignment>,
    buffered: VecDeque<ConsumerRecord>,
}

impl Consumer {
    /// A consumer with no assignment yet.
    pub fn new(client: Client, config: ConsumerConfig) -> Consumer {
        Consumer {
            client,
            config,
            assignments: Vec::new(),
            buffered: VecDeque::new(),
        }
    }

    /// The client this consumer fetches through.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The settings this consumer was built with.
    pub fn config(&self) -> &ConsumerConfig {
        &self.config
    }

    /// Drops every assigned partition and buffered record (a group rebalance).
    pub fn unassign_all(&mut self) {
        self.assignments.clear();
        self.buffered.clear();
    }

    /// Adds (or re-positions) one partition.
    pub fn assign(&mut self, topic: &str, partition: i32, start: StartOffset) {
        self.assignments
            .retain(|a| !(&*a.topic == topic && a.partition == partition));
        self.buffered
            .retain(|r| !(&*r.topic == topic && r.partition == partition));
        let position = match start {
            StartOffset::Offset(o) => Some(o),
            _ => None,
        };
        self.assignments.push(Assignment {
            topic: Arc::from(topic),
            partition,
            position,
            start,
            failures: 0,
        });
    }

    /// Assigns every partition of `topic`.
    pub async fn assign_topic(
        &mut self,
        topic: &str,
        start: StartOffset,
    ) -> Result<(), ClientError> {
        let meta = self.client.topic_metadata(topic, false).await?;
        for p in &meta.partitions {
            self.assign(topic, p.partition, start);
        }
        Ok(())
    }

    /// The assigned partitions with their next offsets (`None` until resolved).
    pub fn assignment(&self) -> Vec<(TopicPartition, Option<i64>)> {
        self.assignments
            .iter()
            .map(|a| (TopicPartition::new(&*a.topic, a.partition), a.position))
            .collect()
    }

    /// Resolves `Earliest`/`Latest` start positions now (ListOffsets). `poll` does this itself;
    /// calling it first pins "latest" before, say, a test producer starts writing.
    pub async fn resolve_positions(&mut self) -> Result<(), ClientError> {
        let todo: Vec<(TopicPartition, OffsetSpec)> = self
            .assignments
            .iter()
            .filter(|a| a.position.is_none())
            .map(|a| {
                let spec = match a.start {
                    StartOffset::Earliest => OffsetSpec::Earliest,
                    _ => OffsetSpec::Latest,
                };
                (TopicPartition::new(&*a.topic, a.partition), spec)
            })
            .collect();
        if todo.is_empty() {
            return Ok(());
        }
        let offsets = self.client.list_offsets(&todo).await?;
        for a in &mut self.assignments {
            if a.position.is_none() {
                let tp = TopicPartition::new(&*a.topic, a.partition);
                a.position = offsets.get(&tp).map(|o| o.offset);
            }
        }
        Ok(())
    }

    /// The next record, fetching as needed (waits until one arrives).
    pub async fn next(&mut self) -> Result<ConsumerRecord, ClientError> {
        loop {
            if let Some(r) = self.buffered.pop_front() {
                return Ok(r);
            }
            let records = self.poll().await?;
            self.buffered.extend(records);
        }
    }

    /// One round of fetches to all leaders; may return nothing after `max_wait`.
    pub async fn poll(&mut self) -> Result<Vec<ConsumerRecord>, ClientError> {
        if !self.buffered.is_empty() {
            return Ok(self.buffered.drain(..).collect());
        }
        if self.assignments.is_empty() {
            tokio::time::sleep(self.config.max_wait).await;
            return Ok(Vec::new());
        }
        self.resolve_positions().await?;
        let meta = self.client.metadata();
        let mut refresh = false;

        // Group assignment indexes by leader.
        let mut by_leader: Vec<(i32, Vec<usize>)> = Vec::new();
        for (i, a) in self.assignments.iter().enumerate() {
            match meta.leader(&a.topic, a.partition) {
                Some(l) => match by_leader.iter_mut().find(|(x, _)| *x == l) {
                    Some((_, v)) => v.push(i),
                    None => by_leader.push((l, vec![i])),
                },
                None => refresh = true,
            }
        }

        // Queue every Fetch, then await them: brokers long-poll in parallel.
        let mut pending: Vec<(Vec<usize>, StartedFetch)> = Vec::new();
        for (leader, idxs) in by_leader {
            let started = async {
                let conn = self.client.connection(leader).await?;
                let mut version = conn.version(ApiKey::Fetch)?;
                let request = self.fetch_request(&idxs, &mut version);
                Ok::<_, ClientError>((version, conn.start(version, &request)?))
            }
            .await;
            pending.push((idxs, started));
        }

        let mut out = Vec::new();
        for (idxs, started) in pending {
            let (version, response) = match started {
                Ok((version, p)) => (version, p.wait().await),
                Err(e) => (0, Err(e)),
            };
            match response {
                Ok(response) => {
                    if response.error_code != 0 {
                        return Err(ClientError::broker("fetch", response.error_code, None));
                    }
                    refresh |= self.apply_response(&idxs, version, response, &mut out)?;
                }
                Err(e) if e.is_retriable() => {
                    tracing::debug!(error = %e, "fetch failed; will retry");
                    for &i in &idxs {
                        self.note_failure(i, &e)?;
                    }
                    refresh = true;
                }
                Err(e) => return Err(e),
            }
        }
        if refresh {
            let topics: Vec<&str> = self.assignments.iter().map(|a| &*a.topic).collect();
            self.client.refresh_metadata(Some(&topics), false).await?;
            if out.is_empty() {
                // Nothing fetched: do not spin while a leader is being elected.
                self.client.backoff(1).await;
            }
        }
        Ok(out)
    }

    /// Builds the Fetch for the given assignments. Fetch v13 names topics by id; if a topic has no
    /// id (an old broker), `version` is lowered to 12, which every broker with v13 also speaks.
    fn fetch_request(&self, idxs: &[usize], version: &mut i16) -> FetchRequest {
        let meta = self.client.metadata();
        if *version >= 13
            && idxs.iter().any(|&i| {
                meta.topic(&self.assignments[i].topic)
                    .is_none_or(|t| t.id.is_nil())
            })
        {
            *version = 12;
        }
        let mut topics: Vec<FetchTopic> = Vec::new();
        for &i in idxs {
            let a = &self.assignments[i];
            let partition = FetchPartition::default()
                .with_partition(a.partition)
                .with_fetch_offset(a.position.unwrap_or(0))
                .with_partition_max_bytes(self.config.partition_max_bytes);
            let id = meta.topic(&a.topic).map(|t| t.id).unwrap_or_default();
            let existing = topics.iter_mut().find(|t| {
                if *version >= 13 {
                    t.topic_id == id
                } else {
                    t.topic.0.as_str() == &*a.topic
                }
            });
            match existing {
                Some(t) => t.partitions.push(partition),
                None => {
                    let t = FetchTopic::default().with_partitions(vec![partition]);
                    topics.push(if *version >= 13 {
                        t.with_topic_id(id)
                    } else {
                        t.with_topic(topic_name(&a.topic))
                    });
                }
            }
        }
        FetchRequest::default()
            .with_max_wait_ms(i32::try_from(self.config.max_wait.as_millis()).unwrap_or(i32::MAX))
            .with_min_bytes(self.config.min_bytes)
            .with_max_bytes(self.config.max_bytes)
            .with_isolation_level(0) // read_uncommitted
            .with_topics(topics)
    }

    /// Applies one response; returns whether metadata should be refreshed.
    fn apply_response(
        &mut self,
        idxs: &[usize],
        version: i16,
        response: FetchResponse,
        out: &mut Vec<ConsumerRecord>,
    ) -> Result<bool, ClientError> {
        let meta = self.client.metadata();
        let mut refresh = false;
        for topic in response.responses {
            let name: &str = if version >= 13 {
                match meta.topic_name_by_id(topic.topic_id) {
                    Some(n) => n,
                    None => continue,
                }
            } else {
                topic.topic.0.as_str()
            };
            for p in topic.partitions {
                let Some(&i) = idxs.iter().find(|&&i| {
                    &*self.assignments[i].topic == name
                        && self.assignments[i].partition == p.partition_index
                }) else {
                    continue;
                };
                let (topic_name, partition) = (
                    self.assignments[i].topic.clone(),
                    self.assignments[i].partition,
                );
                // Only formatted on the error paths.
                let tp = || format!("fetch {topic_name}-{partition}");
                match p.error_code {
                    0 => {}
                    code if code == ResponseError::OffsetOutOfRange.code() => {
                        let a = &mut self.assignments[i];
                        a.start = match self.config.auto_offset_reset {
                            OffsetReset::Earliest => StartOffset::Earliest,
                            OffsetReset::Latest => StartOffset::Latest,
                            OffsetReset::None => return Err(ClientError::broker(tp(), code, None)),
                        };
                        tracing::info!(topic = %a.topic, partition = a.partition, position = ?a.position, "offset out of range; resetting");
                        a.position = None;
                        continue;
                    }
                    code if is_stale_metadata_code(code) => {
                        let e = ClientError::broker(tp(), code, None);
                        self.note_failure(i, &e)?;
                        refresh = true;
                        continue;
                    }
                    code => return Err(ClientError::broker(tp(), code, None)),
                }
                let a = &mut self.assignments[i];
                a.failures = 0;
                let (Some(position), Some(data)) = (a.position, p.records.as_ref()) else {
                    continue;
                };
                match decode_partition(&a.topic, a.partition, data, position) {
                    Ok(decoded) => {
                        if let Some(next) = decoded.next_offset {
                            a.position = Some(next.max(position));
                        }
                        out.extend(decoded.records);
                    }
                    Err(e) => return Err(e.into_client_error(&a.topic, a.partition)),
                }
            }
        }
        Ok(refresh)
    }

    fn note_failure(&mut self, i: usize, e: &ClientError) -> Result<(), ClientError> {
        let a = &mut self.assignments[i];
        a.failures += 1;
        if a.failures > self.client.config().retries {
            return Err(e.clone());
        }
        Ok(())
    }
}
