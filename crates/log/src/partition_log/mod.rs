//! `PartitionLog`: one partition's ordered, append-only log (Kafka's `UnifiedLog`, local half).
//!
//! Offsets: `log_start_offset` ≤ `high_watermark` ≤ `durable` ≤ `log_end_offset`. The log end is
//! the dirty end (written to the page cache); `durable` advances after a group-commit fdatasync;
//! the high watermark is what consumers may read. In [`HighWatermarkPolicy::FollowLocal`] the
//! log moves the high watermark itself to the acknowledged end, capped by a bound the replication
//! layer sets (`high_watermark.rs`); a single node leaves the bound at `i64::MAX`.
//!
//! Leader appends, rolls and the hand-off to the flusher live in `append.rs`, follower appends
//! and full truncation in `replica.rs`, the leader epoch cache in `leader_epochs.rs`; the
//! flusher's side of durability here.
//!
//! Concurrency: appends, rolls and truncation are serialised by `appender`; readers never take
//! it. Readers take the `segments` read lock only to clone an `Arc`, then do their I/O lock-free.
//! Lock order: appender → producer_state → txn_index; appender → leader_epochs;
//! high_watermark → (durable_meta | log_end).

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::{Mutex, RwLock};
use tokio::sync::watch;

use crate::clock::now_ms;
use crate::config::LogConfig;
use crate::error::{LogError, Result};
use crate::flush::{FlushScheduler, FlushWork, Flushable};
use crate::leader_epoch::LeaderEpochCache;
use crate::producer_state::ProducerStateManager;
use crate::segment::LogSegment;
use crate::TopicPartition;

mod append;
mod compaction;
mod high_watermark;
mod leader_epochs;
mod producer;
mod read;
mod replica;
mod retention;
mod txn;
mod verification;

pub use verification::VerificationGuard;

/// An offset with the segment and byte position where it starts (Kafka's `LogOffsetMetadata`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogOffsetMetadata {
    /// The offset.
    pub offset: i64,
    /// Base offset of the segment holding it.
    pub segment_base: i64,
    /// Byte position in that segment.
    pub position: u64,
}

/// Who moves the high watermark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HighWatermarkPolicy {
    /// The high watermark follows the acknowledged end (durable end, or log end when
    /// `flush.messages` > 1), up to [`PartitionLog::set_high_watermark_bound`] (unbounded by
    /// default: a single node). Replication uses this policy too and sets the bound.
    FollowLocal,
    /// Only [`PartitionLog::set_high_watermark`] moves it.
    External,
}

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogAppendInfo {
    /// First offset assigned.
    pub first_offset: i64,
    /// Last offset assigned.
    pub last_offset: i64,
    /// Broker time of the append when the topic uses LogAppendTime, else -1.
    pub log_append_time: i64,
    /// Log start offset after the append.
    pub log_start_offset: i64,
    /// True when the caller must await [`PartitionLog::wait_durable`] before acknowledging.
    pub needs_flush: bool,
    /// True when the batches were a retry of batches already in the log (idempotent producer):
    /// nothing was appended and the offsets are the original ones.
    pub duplicate: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Durable {
    offset: i64,
    failed: bool,
}

/// Files and offsets written but not yet fdatasync'd.
#[derive(Debug)]
struct Dirty {
    files: Vec<Arc<File>>,
    dir: bool,
    upto: Option<LogOffsetMetadata>,
    messages: i64,
    since: Option<Instant>,
    queued: bool,
    /// `PartitionLog::truncations` when a flush round took `upto`: a round that straddles a
    /// truncation must not publish its (stale) offset.
    taken_at: u64,
    /// What the round in progress makes durable (taken from `upto`; one round at a time per
    /// log, as its directory has one flusher).
    in_flight: Option<LogOffsetMetadata>,
}

/// One partition's log.
#[derive(Debug)]
pub struct PartitionLog {
    tp: TopicPartition,
    dir: PathBuf,
    config: RwLock<Arc<LogConfig>>,
    segments: RwLock<BTreeMap<i64, Arc<LogSegment>>>,
    appender: Mutex<()>,
    /// Idempotent producers' sequences and open transactions; changed only under `appender`.
    producer_state: Mutex<ProducerStateManager>,
    /// Pending KIP-890 verifications (`verification.rs`); spent under `appender`.
    verifications: Mutex<verification::Verifications>,
    /// Aborted transactions (`.txnindex` files); changed only under `appender`.
    txn_index: Mutex<crate::txn_index::TransactionIndex>,
    /// Serialises changes to the set of closed segments (retention, truncation, the cleaner's
    /// swap); appends and reads never take it.
    segment_swap: Mutex<()>,
    log_end: Mutex<LogOffsetMetadata>,
    log_start_offset: AtomicI64,
    high_watermark: Mutex<LogOffsetMetadata>,
    durable_meta: Mutex<LogOffsetMetadata>,
    durable_tx: watch::Sender<Durable>,
    /// Broadcasts the high watermark so waiting fetches wake on appends, not timers.
    hw_tx: watch::Sender<i64>,
    dirty: Mutex<Dirty>,
    flusher: Arc<FlushScheduler>,
    hw_policy: HighWatermarkPolicy,
    /// The high watermark never passes it (the replicated end); `i64::MAX` on a single node.
    hw_bound: AtomicI64,
    /// Broadcasts the log end offset so replica fetches wake on appends and truncations.
    log_end_tx: watch::Sender<i64>,
    /// Leader epochs of the batches (`leader-epoch-checkpoint`); changed under `appender`,
    /// except by log start moves, which take it alone.
    leader_epochs: Mutex<LeaderEpochCache>,
    /// Bumped (under `dirty`) by each truncation; see `Dirty::taken_at`.
    truncations: AtomicU64,
    closed: AtomicBool,
    /// Clock used for segment.ms and LogAppendTime: wall clock millis.
    clock: fn() -> i64,
}

pub(crate) struct LoadedLog {
    pub(crate) tp: TopicPartition,
    pub(crate) dir: PathBuf,
    pub(crate) config: Arc<LogConfig>,
    pub(crate) segments: BTreeMap<i64, Arc<LogSegment>>,
    pub(crate) log_start_offset: i64,
    pub(crate) flusher: Arc<FlushScheduler>,
    pub(crate) hw_policy: HighWatermarkPolicy,
    /// `producer.id.expiration.ms`.
    pub(crate) producer_id_expiration_ms: i64,
}

impl PartitionLog {
    pub(crate) fn from_loaded(l: LoadedLog) -> Result<Arc<PartitionLog>> {
        let last = l
            .segments
            .values()
            .next_back()
            .cloned()
            .ok_or_else(|| LogError::Closed(l.tp.to_string()))?;
        let end = LogOffsetMetadata {
            offset: last.next_offset(),
            segment_base: last.base_offset(),
            position: last.size(),
        };
        let first_base = l.segments.keys().next().copied().unwrap_or(0);
        let start = l.log_start_offset.max(first_base).min(end.offset);
        let (durable_tx, _) = watch::channel(Durable {
            offset: end.offset,
            failed: false,
        });
        let (hw_tx, _) = watch::channel(end.offset);
        let (log_end_tx, _) = watch::channel(end.offset);
        let txn_index = crate::txn_index::TransactionIndex::new(&l.dir);
        Ok(Arc::new(PartitionLog {
            hw_tx,
            log_end_tx,
            leader_epochs: Mutex::new(LeaderEpochCache::new(&l.dir)),
            hw_bound: AtomicI64::new(i64::MAX),
            truncations: AtomicU64::new(0),
            tp: l.tp,
            dir: l.dir,
            config: RwLock::new(l.config),
            segments: RwLock::new(l.segments),
            appender: Mutex::new(()),
            producer_state: Mutex::new(ProducerStateManager::new(l.producer_id_expiration_ms)),
            txn_index: Mutex::new(txn_index),
            verifications: Mutex::new(Default::default()),
            segment_swap: Mutex::new(()),
            log_end: Mutex::new(end),
            log_start_offset: AtomicI64::new(start),
            high_watermark: Mutex::new(end),
            durable_meta: Mutex::new(end),
            durable_tx,
            dirty: Mutex::new(Dirty {
                files: Vec::new(),
                dir: false,
                upto: None,
                messages: 0,
                since: None,
                queued: false,
                taken_at: 0,
                in_flight: None,
            }),
            flusher: l.flusher,
            hw_policy: l.hw_policy,
            closed: AtomicBool::new(false),
            clock: now_ms,
        }))
    }

    /// The partition.
    pub fn topic_partition(&self) -> &TopicPartition {
        &self.tp
    }
    /// The partition's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    /// The current config.
    pub fn config(&self) -> Arc<LogConfig> {
        self.config.read().clone()
    }
    /// Applies a new config (retention, segment size, flush policy...) from the next operation on.
    pub fn set_config(&self, config: Arc<LogConfig>) {
        *self.config.write() = config;
    }
    /// First offset still in the log.
    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset.load(Ordering::Acquire)
    }
    /// The offset the next append gets.
    pub fn log_end_offset(&self) -> i64 {
        self.log_end.lock().offset
    }
    /// The offset below which everything is fdatasync'd.
    pub fn durable_offset(&self) -> i64 {
        self.durable_tx.borrow().offset
    }
    /// The high watermark: consumers read below it.
    pub fn high_watermark(&self) -> i64 {
        self.high_watermark.lock().offset
    }
    /// Total bytes of all segments.
    pub fn size_bytes(&self) -> u64 {
        self.segments.read().values().map(|s| s.size()).sum()
    }
    /// Number of segments.
    pub fn segment_count(&self) -> usize {
        self.segments.read().len()
    }
    /// Base offsets of all segments, oldest first.
    pub fn segment_base_offsets(&self) -> Vec<i64> {
        self.segments.read().keys().copied().collect()
    }

    fn active_segment(&self) -> Result<Arc<LogSegment>> {
        self.segments
            .read()
            .values()
            .next_back()
            .cloned()
            .ok_or_else(|| LogError::Closed(self.tp.to_string()))
    }

    fn check_writable(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(LogError::Closed(self.tp.to_string()));
        }
        if self.flusher.log_dir().is_offline() {
            return Err(LogError::LogDirOffline(
                self.flusher.log_dir().path().to_path_buf(),
            ));
        }
        Ok(())
    }
}

/// The flusher's view of a log: hand over the dirty files, then hear how the fsync went.
impl Flushable for PartitionLog {
    fn take_dirty(&self, work: &mut FlushWork) -> bool {
        let mut d = self.dirty.lock();
        d.queued = false;
        let Some(upto) = d.upto.take() else {
            return false;
        };
        d.taken_at = self.truncations.load(Ordering::Acquire);
        d.in_flight = Some(upto);
        work.files.append(&mut d.files);
        if std::mem::take(&mut d.dir) {
            work.dirs.push(self.dir.clone());
        }
        d.messages = 0;
        d.since = None;
        true
    }

    fn publish_durable(&self) {
        let upto = {
            // Under `dirty`, which truncation holds while bumping the counter.
            let mut d = self.dirty.lock();
            let Some(upto) = d.in_flight.take() else {
                return;
            };
            if d.taken_at != self.truncations.load(Ordering::Acquire) {
                return; // the log was truncated since: `upto` may describe cut data
            }
            let mut m = self.durable_meta.lock();
            if upto.offset > m.offset {
                *m = upto;
            }
            upto
        };
        // The durable end is recorded before the high watermark reads it (a concurrent
        // `set_high_watermark_bound` then sees one or the other), and the high watermark moves
        // before the durable watch fires, so a woken waiter already sees it.
        if self.hw_policy == HighWatermarkPolicy::FollowLocal {
            self.advance_high_watermark(upto);
        }
        self.durable_tx.send_if_modified(|d| {
            if upto.offset > d.offset {
                d.offset = upto.offset;
                true
            } else {
                false
            }
        });
    }

    fn publish_failure(&self) {
        self.dirty.lock().in_flight = None;
        self.durable_tx.send_modify(|d| d.failed = true);
    }
}

impl PartitionLog {
    /// Waits until everything below `offset` is durable, or the log directory failed.
    pub async fn wait_durable(&self, offset: i64) -> Result<()> {
        let mut rx = self.durable_tx.subscribe();
        let r = rx
            .wait_for(|d| d.failed || d.offset >= offset)
            .await
            .map(|d| *d);
        match r {
            Ok(d) if !d.failed => Ok(()),
            _ => Err(LogError::LogDirOffline(
                self.flusher.log_dir().path().to_path_buf(),
            )),
        }
    }

    /// Flushes now and waits for it (shutdown, tests).
    pub async fn flush(self: &Arc<Self>) -> Result<()> {
        let end = self.log_end_offset();
        let queue = {
            let mut d = self.dirty.lock();
            let q = d.upto.is_some() && !d.queued;
            if q {
                d.queued = true;
            }
            q
        };
        if queue {
            self.flusher.request(self.clone());
        }
        self.wait_durable(end).await
    }

    /// Queues a flush when `flush.ms` has passed since the oldest unflushed append.
    pub(crate) fn maybe_flush_by_time(self: &Arc<Self>) {
        let config = self.config();
        let queue = {
            let mut d = self.dirty.lock();
            let due = d
                .since
                .is_some_and(|s| s.elapsed().as_millis() as i64 >= config.flush_ms);
            let q = due && d.upto.is_some() && !d.queued;
            if q {
                d.queued = true;
            }
            q
        };
        if queue {
            self.flusher.request(self.clone());
        }
    }

    /// Writes the active segment's indexes (clean shutdown) and marks the log closed. Everything
    /// the next start trusts without recovery — the segments, the active segment's indexes, the
    /// producer snapshot and their directory entries — is fsync'd before the caller writes the
    /// clean-shutdown marker, as Kafka does: a power cut after the marker must not leave an index
    /// or snapshot older than the marker claims.
    pub(crate) fn close(&self) -> Result<()> {
        let _g = self.appender.lock();
        self.closed.store(true, Ordering::Release);
        let seg = self.active_segment()?;
        let idx = seg.indexes()?;
        if seg.max_timestamp() >= 0 {
            idx.time.maybe_append(
                seg.max_timestamp(),
                (seg.offset_of_max_timestamp() - seg.base_offset()).clamp(0, i64::from(u32::MAX))
                    as u32,
            );
        }
        for index in seg.write_indexes(idx)? {
            index
                .sync_data()
                .map_err(|e| LogError::io(seg.log_path(), e))?;
        }
        // Next start loads this and scans nothing.
        self.write_producer_snapshot(self.log_end_offset(), true)?;
        for s in self.segments_snapshot() {
            s.file()
                .sync_data()
                .map_err(|e| LogError::io(s.log_path(), e))?;
        }
        crate::durable_file::fsync_dir(self.dir())
    }

    pub(crate) fn mark_closed(&self) {
        self.closed.store(true, Ordering::Release);
    }
}
