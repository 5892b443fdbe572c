//! `LogStore`: openraft's `RaftLogStorage` over the `__cluster_metadata-0` partition log.
//!
//! Layout under the quorum's metadata directory: the strom-log partition directory
//! `__cluster_metadata-0/` (one record batch per entry, see `entry_codec`) and `quorum-state`
//! (vote, last purged id). Raft index = log offset + `base`: `base` is 0 for a log that started
//! at the cluster's first entry, and changes only when a snapshot lands past the end of the local
//! log (the log is then recreated empty, starting at the snapshot's next index). It is derived at
//! open from the first stored entry, or from `last_purged` when the log is empty, so it is never
//! stored.
//!
//! Every entry after `last_purged` is also kept in memory: the metadata log is small (snapshots
//! purge it), and replication reads then never touch the disk. The disk copy is for restarts.
//!
//! Sizes: an entry is one batch of at most `max.message.bytes` (`METADATA_MAX_BATCH_BYTES`), and
//! one append call of strom-log at most that much too (well under `segment.bytes`). openraft
//! treats any append error as fatal and stops, so a too-large entry must never get here: the
//! leader refuses an entry over `MAX_ENTRY_BYTES` before `client_write`, a follower refuses an
//! AppendEntries holding one over `MAX_STORED_ENTRY_BYTES` (`server`), and the margin below
//! `max.message.bytes` covers the entry's own JSON and the batch header. Many entries are
//! written in several appends.
//!
//! Durability: `append` returns once the batches are written (readable); its callback fires after
//! strom-log's group-commit fdatasync. Purging persists `last_purged` before deleting anything.
//! Concurrency: openraft serialises the write methods (`&mut self`); readers (replication tasks)
//! share the same `Inner` behind a mutex that is never held across an await.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::Arc;

use bytes::BytesMut;
use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{LogId, LogState, OptionalSend, RaftLogReader, StorageError, StorageIOError, Vote};
use parking_lot::Mutex;
use strom_log::{
    now_ms, validate_batches, Batches, LogConfig, LogManager, LogManagerConfig, PartitionLog,
    ReadBound, TopicPartition,
};

use super::entry_codec::{self, Entry};
use super::state_file::{create_dir_durable, QuorumState, StateFiles};
use super::types::{NodeId, TypeConfig};
use super::QuorumError;

/// The metadata topic, as in Kafka.
pub(crate) const METADATA_TOPIC: &str = "__cluster_metadata";

/// `max.message.bytes` of the metadata log: the largest batch, so the largest entry. New
/// entries are far smaller (`MAX_ENTRY_BYTES`); this keeps logs written before proposals were
/// split (entries up to this size) readable and replicable.
const METADATA_MAX_BATCH_BYTES: usize = 32 << 20;

/// The largest entry (its proposal's JSON) this log can store: `max.message.bytes` less room for
/// the entry's log id and the batch header (a few hundred bytes; 64 KiB is spare). A follower
/// refuses an AppendEntries holding a larger one rather than fail the append.
pub(crate) const MAX_STORED_ENTRY_BYTES: usize = METADATA_MAX_BATCH_BYTES - (64 << 10);

type SResult<T> = Result<T, StorageError<NodeId>>;

/// The Raft log and vote of one node. Cheap to clone (shared state).
#[derive(Clone)]
pub(crate) struct LogStore {
    inner: Arc<Mutex<Inner>>,
}

impl Debug for LogStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let i = self.inner.lock();
        f.debug_struct("LogStore")
            .field("base", &i.base)
            .field("entries", &i.entries.len())
            .field("state", &i.state)
            .finish()
    }
}

struct Inner {
    logs: Arc<LogManager>,
    log: Arc<PartitionLog>,
    config: Arc<LogConfig>,
    /// Raft index of log offset 0.
    base: i64,
    /// Every entry after `state.last_purged`, in index order.
    entries: VecDeque<Entry>,
    state: QuorumState,
    files: StateFiles,
}

/// The metadata log's config: never deleted by time or size (only below the purge point),
/// fdatasync'd on every append, and segments small enough that purging frees space.
fn metadata_log_config() -> Result<LogConfig, QuorumError> {
    let max_batch = METADATA_MAX_BATCH_BYTES.to_string();
    let topic = BTreeMap::from(
        [
            ("retention.ms", "-1"),
            ("retention.bytes", "-1"),
            ("cleanup.policy", "delete"),
            ("flush.messages", "1"),
            ("segment.bytes", "67108864"),
            ("max.message.bytes", max_batch.as_str()),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    Ok(LogConfig::build(&BTreeMap::new(), &topic)?)
}

fn tp() -> TopicPartition {
    TopicPartition::new(METADATA_TOPIC, 0)
}

fn next_index(id: &Option<LogId<NodeId>>) -> u64 {
    id.as_ref().map_or(0, |l| l.index + 1)
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl LogStore {
    /// Opens (or creates) the log and state under `dir`, loading every unpurged entry.
    pub(crate) fn open(dir: &Path) -> Result<LogStore, QuorumError> {
        create_dir_durable(dir).map_err(|e| QuorumError::io(dir, e))?;
        let files = StateFiles::new(dir);
        let state = files.load().map_err(|e| QuorumError::io(dir, e))?;
        let config = Arc::new(metadata_log_config()?);
        let mut mgr_config = LogManagerConfig::new(dir);
        mgr_config.cleaner.enabled = false;
        let c = config.clone();
        let logs = LogManager::open(mgr_config, &move |_| c.clone())?;
        let log = logs.get_or_create(&tp(), config.clone())?;
        let Stored {
            first: first_stored,
            entries: all,
        } = read_all(&log)?;
        let after_purge = next_index(&state.last_purged);
        let mut base = match first_stored {
            Some((offset, index)) => to_i64(index) - offset,
            None => to_i64(after_purge) - log.log_end_offset(),
        };
        let mut entries: VecDeque<Entry> = all
            .into_iter()
            .filter(|e| e.log_id.index >= after_purge)
            .collect();
        if let Some(first) = entries.front() {
            if first.log_id.index != after_purge {
                return Err(QuorumError::Corrupt(format!(
                    "metadata log starts at index {} but the last purged entry is {:?}",
                    first.log_id.index, state.last_purged
                )));
            }
        }
        let mut log = log;
        if log.log_end_offset() + base < to_i64(after_purge) {
            // A snapshot was installed past the end of this log and the restart came before the
            // log was recreated: finish that now.
            tracing::info!(after_purge, "recreating the metadata log after a snapshot");
            logs.delete(&tp())?;
            log = logs.get_or_create(&tp(), config.clone())?;
            base = to_i64(after_purge);
            entries.clear();
        }
        tracing::info!(
            entries = entries.len(),
            base,
            last_purged = ?state.last_purged,
            vote = ?state.vote,
            "opened the metadata log"
        );
        Ok(LogStore {
            inner: Arc::new(Mutex::new(Inner {
                logs,
                log,
                config,
                base,
                entries,
                state,
                files,
            })),
        })
    }

    /// Clean shutdown of the partition log (indexes, checkpoints, clean-shutdown marker).
    pub(crate) fn shutdown(&self) {
        let logs = self.inner.lock().logs.clone();
        if let Err(e) = logs.shutdown() {
            tracing::warn!(error = %e, "closing the metadata log failed");
        }
    }
}

/// Every entry stored in a partition log.
struct Stored {
    /// (offset, Raft index) of the first batch.
    first: Option<(i64, u64)>,
    entries: Vec<Entry>,
}

/// Decodes every batch of the log.
fn read_all(log: &PartitionLog) -> Result<Stored, QuorumError> {
    let mut from = log.log_start_offset();
    let mut first = None;
    let mut out = Vec::new();
    loop {
        let info = log.read(from, 1 << 20, ReadBound::LogEnd, true)?;
        let Some(slice) = info.records else { break };
        let bytes = slice.read_to_vec()?;
        let mut progressed = false;
        for b in Batches::new(&bytes) {
            // A batch cut by the read limit ends this chunk; the next read starts at it.
            let Ok(b) = b else { break };
            let entry = entry_codec::decode(b.as_bytes()).map_err(|e| {
                QuorumError::Corrupt(format!(
                    "metadata log batch at offset {}: {e} (a log written before the quorum \
                     cannot be opened by it)",
                    b.base_offset()
                ))
            })?;
            let offset = b.base_offset();
            match first {
                None => first = Some((offset, entry.log_id.index)),
                Some((o, i)) => {
                    if to_i64(entry.log_id.index) - offset != to_i64(i) - o {
                        return Err(QuorumError::Corrupt(format!(
                            "metadata log offset {offset} holds index {}",
                            entry.log_id.index
                        )));
                    }
                }
            }
            out.push(entry);
            from = b.next_offset();
            progressed = true;
        }
        if !progressed {
            break;
        }
    }
    Ok(Stored {
        first,
        entries: out,
    })
}

impl Inner {
    fn first_index(&self) -> u64 {
        next_index(&self.state.last_purged)
    }

    fn last_log_id(&self) -> Option<LogId<NodeId>> {
        self.entries
            .back()
            .map(|e| e.log_id)
            .or(self.state.last_purged)
    }

    /// Persists `state` (fsync) and adopts it.
    fn store_state(&mut self, state: QuorumState) -> std::io::Result<()> {
        self.files.store(&state)?;
        self.state = state;
        Ok(())
    }

    /// Writes `group` (consecutive entries of one term), in appends of at most
    /// `METADATA_MAX_BATCH_BYTES` each (a single entry is never larger: see the module docs);
    /// returns the end offset.
    fn append_group(&mut self, group: &[Entry]) -> std::io::Result<i64> {
        let Some(first) = group.first() else {
            return Ok(self.log.log_end_offset());
        };
        let expected = to_i64(first.log_id.index) - self.base;
        let end = self.log.log_end_offset();
        if end != expected {
            return Err(std::io::Error::other(format!(
                "metadata log end offset {end} but entry {} maps to offset {expected}",
                first.log_id
            )));
        }
        let term = i32::try_from(first.log_id.leader_id.term).unwrap_or(i32::MAX);
        let now = now_ms();
        let mut buf = BytesMut::new();
        let mut end = end;
        for e in group {
            let batch = entry_codec::encode(e, now).map_err(std::io::Error::other)?;
            if batch.len() > METADATA_MAX_BATCH_BYTES {
                return Err(std::io::Error::other(format!(
                    "metadata entry {} is {} bytes, over the {METADATA_MAX_BATCH_BYTES} limit",
                    e.log_id,
                    batch.len()
                )));
            }
            if !buf.is_empty() && buf.len() + batch.len() > METADATA_MAX_BATCH_BYTES {
                end = self.append_batches(std::mem::take(&mut buf), term, now)?;
            }
            buf.extend_from_slice(&batch);
        }
        if !buf.is_empty() {
            end = self.append_batches(buf, term, now)?;
        }
        Ok(end)
    }

    /// One strom-log append of whole encoded entries; returns the end offset.
    fn append_batches(&mut self, buf: BytesMut, term: i32, now: i64) -> std::io::Result<i64> {
        let validated =
            validate_batches(buf.freeze(), &self.config, now).map_err(std::io::Error::other)?;
        let info = self
            .log
            .append(&validated, term)
            .map_err(std::io::Error::other)?;
        Ok(info.last_offset + 1)
    }
}

#[cfg(test)]
impl LogStore {
    /// Writes entries (consecutive, one term, continuing the log) as if openraft appended them:
    /// for tests that need a log no checked proposer would write.
    pub(crate) async fn append_for_test(&self, entries: Vec<Entry>) -> std::io::Result<()> {
        let (log, upto) = {
            let mut inner = self.inner.lock();
            let upto = inner.append_group(&entries)?;
            inner.entries.extend(entries);
            (inner.log.clone(), upto)
        };
        log.wait_durable(upto)
            .await
            .map_err(std::io::Error::other)?;
        Ok(())
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> SResult<Vec<Entry>> {
        let inner = self.inner.lock();
        let first = inner.first_index();
        let start = match range.start_bound() {
            Bound::Included(&s) => s,
            Bound::Excluded(&s) => s.saturating_add(1),
            Bound::Unbounded => first,
        };
        let end = match range.end_bound() {
            Bound::Included(&e) => e.saturating_add(1),
            Bound::Excluded(&e) => e,
            Bound::Unbounded => u64::MAX,
        };
        let lo = usize::try_from(start.saturating_sub(first)).unwrap_or(usize::MAX);
        let hi = usize::try_from(end.saturating_sub(first)).unwrap_or(usize::MAX);
        let hi = hi.min(inner.entries.len());
        if lo >= hi {
            return Ok(Vec::new());
        }
        Ok(inner.entries.range(lo..hi).cloned().collect())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> SResult<LogState<TypeConfig>> {
        let inner = self.inner.lock();
        Ok(LogState {
            last_purged_log_id: inner.state.last_purged,
            last_log_id: inner.last_log_id(),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> SResult<()> {
        let mut inner = self.inner.lock();
        let state = QuorumState {
            vote: Some(*vote),
            ..inner.state.clone()
        };
        inner
            .store_state(state)
            .map_err(|e| StorageIOError::write_vote(&e).into())
    }

    async fn read_vote(&mut self) -> SResult<Option<Vote<NodeId>>> {
        Ok(self.inner.lock().state.vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> SResult<()> {
        let inner = self.inner.lock();
        if let Err(e) = inner.files.store_committed(&committed) {
            // Only a start-up hint: see state_file.
            tracing::debug!(error = %e, "writing quorum-committed failed");
        }
        Ok(())
    }

    async fn read_committed(&mut self) -> SResult<Option<LogId<NodeId>>> {
        let inner = self.inner.lock();
        let Some(c) = inner.files.load_committed() else {
            return Ok(None);
        };
        // Entries past the durable end may have been lost in a crash; what is left up to the
        // hint was committed (committed entries are never truncated).
        let last = inner.last_log_id();
        Ok(match last {
            Some(l) if l.index < c.index => Some(l),
            None => None,
            _ => Some(c),
        })
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> SResult<()>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        let (log, upto) = {
            let mut inner = self.inner.lock();
            let mut upto = inner.log.log_end_offset();
            let mut start = 0;
            while start < entries.len() {
                let term = entries[start].log_id.leader_id.term;
                let len = entries[start..]
                    .iter()
                    .take_while(|e| e.log_id.leader_id.term == term)
                    .count();
                upto = inner
                    .append_group(&entries[start..start + len])
                    .map_err(|e| StorageIOError::write_logs(&e))?;
                start += len;
            }
            inner.entries.extend(entries);
            (inner.log.clone(), upto)
        };
        tokio::spawn(async move {
            let r = log.wait_durable(upto).await;
            callback.log_io_completed(r.map_err(std::io::Error::other));
        });
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> SResult<()> {
        let mut inner = self.inner.lock();
        let first = inner.first_index();
        let keep = usize::try_from(log_id.index.saturating_sub(first)).unwrap_or(usize::MAX);
        inner.entries.truncate(keep);
        let offset = to_i64(log_id.index) - inner.base;
        tracing::info!(%log_id, offset, "truncating the metadata log");
        inner
            .log
            .truncate_to(offset)
            .map_err(|e| StorageIOError::write_logs(&e))?;
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> SResult<()> {
        let (log, upto) = {
            let mut inner = self.inner.lock();
            if inner
                .state
                .last_purged
                .is_some_and(|p| p.index >= log_id.index)
            {
                return Ok(());
            }
            let state = QuorumState {
                last_purged: Some(log_id),
                ..inner.state.clone()
            };
            inner
                .store_state(state)
                .map_err(|e| StorageIOError::write_logs(&e))?;
            let log_end_index = inner.log.log_end_offset() + inner.base;
            if to_i64(log_id.index) >= log_end_index {
                // The snapshot is past everything stored: start an empty log at its next index.
                inner.entries.clear();
                let mgr = inner.logs.clone();
                mgr.delete(&tp())
                    .map_err(|e| StorageIOError::write_logs(&e))?;
                inner.log = mgr
                    .get_or_create(&tp(), inner.config.clone())
                    .map_err(|e| StorageIOError::write_logs(&e))?;
                inner.base = to_i64(log_id.index) + 1 - inner.log.log_end_offset();
                tracing::info!(%log_id, "metadata log recreated after a snapshot");
                return Ok(());
            }
            while inner
                .entries
                .front()
                .is_some_and(|e| e.log_id.index <= log_id.index)
            {
                inner.entries.pop_front();
            }
            (inner.log.clone(), to_i64(log_id.index) + 1 - inner.base)
        };
        // Purged entries are applied, so durable on any sane timeline; waiting makes sure the
        // log start never passes the high watermark strom-log checks against.
        log.wait_durable(upto)
            .await
            .map_err(|e| StorageIOError::write_logs(&e))?;
        log.delete_records_before(upto)
            .map_err(|e| StorageIOError::write_logs(&e))?;
        log.delete_old_segments(now_ms())
            .map_err(|e| StorageIOError::write_logs(&e))?;
        Ok(())
    }
}
