//! The Messages tab: browse a topic's records from an offset or a timestamp, in one partition or
//! all, with a plain [`Consumer`] (assigned partitions, no group, nothing committed).
//!
//! The browse is bounded three ways so a page never hangs or floods: the log end of each partition
//! is read first and nothing at or above it is returned (records arriving meanwhile wait for the
//! next query), each partition returns at most `limit` records, and the whole read stops after
//! [`BROWSE_DEADLINE`]. Records of all partitions are merged by timestamp, then cut to `limit`.

use std::collections::HashMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use strom_client::{
    Client, ClientError, Consumer, ConsumerConfig, ConsumerRecord, OffsetReset, OffsetSpec,
    StartOffset, TopicPartition,
};

use crate::render::{render, Payload};

/// How long one browse may read.
const BROWSE_DEADLINE: Duration = Duration::from_secs(3);
/// The default and the largest `limit`.
const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 500;

/// Where a browse starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub(crate) enum StartFrom {
    /// The log start.
    #[default]
    Earliest,
    /// The last `limit` records of each partition.
    Latest,
    /// The `offset` parameter.
    Offset,
    /// The first record at or after the `timestamp` parameter (ms since the epoch).
    Timestamp,
}

/// The query string of `GET /api/topics/{topic}/messages`.
#[derive(Debug, Clone, Deserialize, Default)]
pub(crate) struct BrowseQuery {
    /// One partition; all when absent.
    pub(crate) partition: Option<i32>,
    #[serde(default)]
    pub(crate) from: StartFrom,
    pub(crate) offset: Option<i64>,
    pub(crate) timestamp: Option<i64>,
    pub(crate) limit: Option<usize>,
}

/// One record as the page shows it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Message {
    partition: i32,
    offset: i64,
    timestamp: i64,
    timestamp_type: &'static str,
    key: Option<Payload>,
    value: Option<Payload>,
    headers: Vec<Header>,
}

#[derive(Debug, Clone, Serialize)]
struct Header {
    key: String,
    value: Option<Payload>,
}

impl Message {
    fn of(r: &ConsumerRecord) -> Self {
        Message {
            partition: r.partition,
            offset: r.offset,
            timestamp: r.timestamp,
            timestamp_type: match r.timestamp_type {
                strom_client::TimestampType::Creation => "CreateTime",
                strom_client::TimestampType::LogAppend => "LogAppendTime",
            },
            key: r.key.as_deref().map(render),
            value: r.value.as_deref().map(render),
            headers: r
                .headers
                .iter()
                .map(|(k, v)| Header {
                    key: k.clone(),
                    value: v.as_deref().map(render),
                })
                .collect(),
        }
    }
}

/// Where to start reading one partition whose log is `[log_start, log_end)` (`log_end`: nothing
/// to read); `looked_up` is the ListOffsets answer for a timestamp (-1: no record that late).
pub(crate) fn start_offset(
    query: &BrowseQuery,
    limit: usize,
    log_start: i64,
    log_end: i64,
    looked_up: Option<i64>,
) -> i64 {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let start = match query.from {
        StartFrom::Earliest => log_start,
        StartFrom::Latest => log_end.saturating_sub(limit),
        StartFrom::Offset => query.offset.unwrap_or(log_start),
        StartFrom::Timestamp => match looked_up {
            Some(o) if o >= 0 => o,
            _ => log_end,
        },
    };
    start.clamp(log_start, log_end.max(log_start))
}

/// Reads the records `query` asks for from `topic`.
pub(crate) async fn browse(
    client: &Client,
    topic: &str,
    query: &BrowseQuery,
) -> Result<Vec<Message>, ClientError> {
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    let meta = client.topic_metadata(topic, false).await?;
    let tps: Vec<TopicPartition> = meta
        .topic_partitions()
        .filter(|tp| query.partition.is_none_or(|q| q == tp.partition))
        .collect();
    if tps.is_empty() {
        return Err(ClientError::UnknownPartition {
            topic: topic.to_owned(),
            partition: query.partition.unwrap_or(-1),
        });
    }
    let (starts, ends) = log_ranges(client, &tps).await?;
    let looked_up = match (query.from, query.timestamp) {
        (StartFrom::Timestamp, Some(ts)) => list(client, &tps, OffsetSpec::Timestamp(ts)).await?,
        _ => HashMap::new(),
    };

    let mut consumer = Consumer::new(
        client.clone(),
        ConsumerConfig {
            max_wait: Duration::from_millis(100),
            auto_offset_reset: OffsetReset::Earliest,
            ..ConsumerConfig::default()
        },
    );
    let mut wanted: HashMap<i32, (i64, usize)> = HashMap::new();
    for tp in &tps {
        let log_start = starts.get(tp).copied().unwrap_or(0);
        let log_end = ends.get(tp).copied().unwrap_or(0);
        let from = start_offset(query, limit, log_start, log_end, looked_up.get(tp).copied());
        if from < log_end {
            consumer.assign(topic, tp.partition, StartOffset::Offset(from));
            wanted.insert(tp.partition, (log_end, 0));
        }
    }

    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + BROWSE_DEADLINE;
    while !wanted.is_empty() {
        let Ok(polled) = tokio::time::timeout_at(deadline, consumer.poll()).await else {
            break;
        };
        for r in polled? {
            let Some((end, taken)) = wanted.get_mut(&r.partition) else {
                continue;
            };
            if r.offset < *end && *taken < limit {
                *taken += 1;
                out.push(Message::of(&r));
            }
        }
        // A partition is done once its position passed the end read first (transaction
        // markers and compacted gaps leave offsets without records) or it gave `limit` records.
        for (tp, position) in consumer.assignment() {
            let done = match wanted.get(&tp.partition) {
                Some((end, taken)) => *taken >= limit || position.is_some_and(|p| p >= *end),
                None => false,
            };
            if done {
                wanted.remove(&tp.partition);
            }
        }
        if tokio::time::Instant::now() >= deadline {
            break;
        }
    }
    out.sort_by_key(|m| (m.timestamp, m.partition, m.offset));
    if query.from == StartFrom::Latest {
        // The newest `limit` across partitions.
        let skip = out.len().saturating_sub(limit);
        out.drain(..skip);
    } else {
        out.truncate(limit);
    }
    Ok(out)
}

/// The log start and end offsets of `tps`.
pub(crate) async fn log_ranges(
    client: &Client,
    tps: &[TopicPartition],
) -> Result<(HashMap<TopicPartition, i64>, HashMap<TopicPartition, i64>), ClientError> {
    let starts = list(client, tps, OffsetSpec::Earliest).await?;
    let ends = list(client, tps, OffsetSpec::Latest).await?;
    Ok((starts, ends))
}

/// ListOffsets of `tps` as plain offsets.
pub(crate) async fn list(
    client: &Client,
    tps: &[TopicPartition],
    spec: OffsetSpec,
) -> Result<HashMap<TopicPartition, i64>, ClientError> {
    let requests: Vec<(TopicPartition, OffsetSpec)> =
        tps.iter().map(|tp| (tp.clone(), spec)).collect();
    if requests.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(client
        .list_offsets(&requests)
        .await?
        .into_iter()
        .map(|(tp, listed)| (tp, listed.offset))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(from: StartFrom, offset: Option<i64>) -> BrowseQuery {
        BrowseQuery {
            from,
            offset,
            ..BrowseQuery::default()
        }
    }

    #[test]
    fn start_offsets() {
        // Log [5, 20), limit 10.
        assert_eq!(
            start_offset(&q(StartFrom::Earliest, None), 10, 5, 20, None),
            5
        );
        assert_eq!(
            start_offset(&q(StartFrom::Latest, None), 10, 5, 20, None),
            10
        );
        assert_eq!(
            start_offset(&q(StartFrom::Latest, None), 100, 5, 20, None),
            5
        );
        assert_eq!(
            start_offset(&q(StartFrom::Offset, Some(12)), 10, 5, 20, None),
            12
        );
        // Out of range offsets are clamped into the log.
        assert_eq!(
            start_offset(&q(StartFrom::Offset, Some(1)), 10, 5, 20, None),
            5
        );
        assert_eq!(
            start_offset(&q(StartFrom::Offset, Some(99)), 10, 5, 20, None),
            20
        );
        assert_eq!(
            start_offset(&q(StartFrom::Timestamp, None), 10, 5, 20, Some(7)),
            7
        );
        // No record at or after the timestamp: nothing to read.
        assert_eq!(
            start_offset(&q(StartFrom::Timestamp, None), 10, 5, 20, Some(-1)),
            20
        );
    }

    #[test]
    fn empty_log_reads_nothing() {
        assert_eq!(start_offset(&q(StartFrom::Latest, None), 10, 0, 0, None), 0);
        assert_eq!(
            start_offset(&q(StartFrom::Offset, Some(3)), 10, 0, 0, None),
            0
        );
    }
}
