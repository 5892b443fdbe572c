//! `LogCleaner`: log compaction for topics with `cleanup.policy` containing `compact`.
//!
//! `log.cleaner.threads` background threads (started by the `LogManager`) repeatedly pick the
//! filthiest compacted log — the largest share of dirty bytes (closed segments at or past the
//! first dirty offset) above `min.cleanable.dirty.ratio`, or any log with a dirty record older than
//! `max.compaction.lag.ms` or a tombstone due for removal — and clean it ([`clean`]). With nothing
//! to do a thread sleeps `log.cleaner.backoff.ms`. Tombstone deadlines are kept in memory, so
//! every compacted log gets one pass after start-up (Kafka keeps them in batch headers, KIP-534). Only closed segments below the high watermark
//! and older than `min.compaction.lag.ms` are ever read; the active segment never is, nor
//! anything at or above the last stable offset (transactions: see `txn.rs`).
//!
//! The first dirty offset of each log is kept in `cleaner-offset-checkpoint` in its log
//! directory (Kafka's file and format); a lost checkpoint only makes the next pass re-read more.
//! I/O is throttled by `log.cleaner.io.max.bytes.per.second` across all threads ([`Throttler`]).
//! Interrupted swaps are finished at start-up by [`complete_swaps`].
//!
//! Thread-safety: the shared state is one mutex held for bookkeeping only; a log is cleaned by at
//! most one thread at a time (the `in_progress` set). Appends and reads are never blocked: see
//! `partition_log/compaction.rs` for the swap.

mod clean;
mod offset_map;
mod recovery;
#[cfg(test)]
mod tests;
mod throttle;
mod txn;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::checkpoint;
use crate::clock::now_ms;
use crate::partition_log::PartitionLog;
use crate::TopicPartition;

pub(crate) use recovery::complete_swaps;
use throttle::Throttler;

const CHECKPOINT_FILE: &str = "cleaner-offset-checkpoint";

/// Broker-level cleaner settings (Kafka's names in the field docs).
#[derive(Debug, Clone)]
pub struct CleanerConfig {
    /// `log.cleaner.enable`.
    pub enabled: bool,
    /// `log.cleaner.threads`.
    pub threads: usize,
    /// `log.cleaner.backoff.ms`: sleep when no log needs cleaning.
    pub backoff: Duration,
    /// `log.cleaner.io.max.bytes.per.second` (read + write, all threads).
    pub io_max_bytes_per_second: f64,
    /// `log.cleaner.dedupe.buffer.size`: offset map memory, shared by all threads.
    pub dedupe_buffer_size: u64,
}

impl Default for CleanerConfig {
    /// Kafka's defaults.
    fn default() -> Self {
        CleanerConfig {
            enabled: true,
            threads: 1,
            backoff: Duration::from_millis(15_000),
            io_max_bytes_per_second: f64::MAX,
            dedupe_buffer_size: 128 << 20,
        }
    }
}

/// Counters of the cleaner's work since start (benchmarks and logs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanerStats {
    /// Completed passes.
    pub passes: u64,
    /// Bytes read by completed and abandoned passes (the rewrite phase).
    pub bytes_read: u64,
    /// Bytes written to cleaned segments.
    pub bytes_written: u64,
    /// Time spent cleaning.
    pub busy: Duration,
}

#[derive(Debug, Default)]
struct State {
    in_progress: HashSet<TopicPartition>,
    /// First dirty offset per log.
    first_dirty: HashMap<TopicPartition, i64>,
    /// When a retained tombstone or transaction marker may next be dropped.
    tombstone_deadline: HashMap<TopicPartition, i64>,
    /// Logs with a completed pass since start. Tombstone deadlines live in memory only, so each
    /// compacted log gets one pass after start to drop expired tombstones and learn the next.
    passed: HashSet<TopicPartition>,
}

/// Every log the cleaner may pick from (the log manager's, read afresh each pass); `None` once
/// the manager is gone, which stops the threads. A function rather than the manager itself, so
/// the cleaner does not depend on the manager that starts it.
pub(crate) type AllLogs = Box<dyn Fn() -> Option<Vec<Arc<PartitionLog>>> + Send + Sync>;

struct Shared {
    config: CleanerConfig,
    logs: AllLogs,
    stopping: AtomicBool,
    stop_lock: Mutex<()>,
    wake: Condvar,
    state: Mutex<State>,
    throttler: Throttler,
    passes: AtomicU64,
    bytes_read: AtomicU64,
    bytes_written: AtomicU64,
    busy_nanos: AtomicU64,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("config", &self.config)
            .field("passes", &self.passes)
            .finish_non_exhaustive()
    }
}

/// The cleaner threads of one `LogManager`.
#[derive(Debug)]
pub(crate) struct LogCleaner {
    shared: Arc<Shared>,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

/// A log chosen for cleaning.
struct Candidate {
    log: Arc<PartitionLog>,
    segments: Vec<Arc<crate::segment::LogSegment>>,
    first_dirty: i64,
    ratio: f64,
}

impl LogCleaner {
    /// Reads the cleaner checkpoints of `dirs` and starts the threads.
    pub(crate) fn start(config: CleanerConfig, logs: AllLogs, dirs: &[PathBuf]) -> Self {
        let mut state = State::default();
        for d in dirs {
            state
                .first_dirty
                .extend(checkpoint::read(&d.join(CHECKPOINT_FILE)));
        }
        let shared = Arc::new(Shared {
            throttler: Throttler::new(config.io_max_bytes_per_second),
            config,
            logs,
            stopping: AtomicBool::new(false),
            stop_lock: Mutex::new(()),
            wake: Condvar::new(),
            state: Mutex::new(state),
            passes: AtomicU64::new(0),
            bytes_read: AtomicU64::new(0),
            bytes_written: AtomicU64::new(0),
            busy_nanos: AtomicU64::new(0),
        });
        let mut threads = Vec::new();
        for i in 0..shared.config.threads.max(1) {
            let s = shared.clone();
            match std::thread::Builder::new()
                .name(format!("strom-cleaner-{i}"))
                .spawn(move || s.run())
            {
                Ok(h) => threads.push(h),
                Err(e) => tracing::error!(error = %e, "could not start a log cleaner thread"),
            }
        }
        LogCleaner {
            shared,
            threads: Mutex::new(threads),
        }
    }

    /// Stops the threads (a pass in progress is abandoned between batches) and waits for them.
    pub(crate) fn shutdown(&self) {
        {
            let _g = self.shared.stop_lock.lock();
            self.shared.stopping.store(true, Ordering::Release);
            self.shared.wake.notify_all();
        }
        for h in self.threads.lock().drain(..) {
            let _ = h.join();
        }
    }

    /// Work counters.
    pub(crate) fn stats(&self) -> CleanerStats {
        let s = &self.shared;
        CleanerStats {
            passes: s.passes.load(Ordering::Relaxed),
            bytes_read: s.bytes_read.load(Ordering::Relaxed),
            bytes_written: s.bytes_written.load(Ordering::Relaxed),
            busy: Duration::from_nanos(s.busy_nanos.load(Ordering::Relaxed)),
        }
    }
}

impl Shared {
    fn run(self: Arc<Self>) {
        while !self.stopping.load(Ordering::Acquire) {
            let candidate = match (self.logs)() {
                Some(all) => self.grab_filthiest(&all),
                None => return,
            };
            match candidate {
                Some(c) => self.clean_one(c),
                None => {
                    let mut g = self.stop_lock.lock();
                    if !self.stopping.load(Ordering::Acquire) {
                        self.wake.wait_for(&mut g, self.config.backoff);
                    }
                }
            }
        }
    }

    /// Picks the log most in need of cleaning and marks it in progress.
    fn grab_filthiest(&self, all: &[Arc<PartitionLog>]) -> Option<Candidate> {
        let now = now_ms();
        let mut state = self.state.lock();
        let mut best: Option<Candidate> = None;
        for log in all {
            let tp = log.topic_partition().clone();
            let config = log.config();
            if !config.compact_enabled || log.is_closed() || state.in_progress.contains(&tp) {
                continue;
            }
            let view = match log.cleanable_view(now) {
                Ok(mut v) => {
                    // Never at or above the last stable offset (open transactions).
                    let lso = log.last_stable_offset();
                    if let Some(i) = v.segments.iter().position(|s| s.next_offset() > lso) {
                        v.end = v.segments[i].base_offset();
                        v.segments.truncate(i);
                    }
                    v
                }
                Err(e) => {
                    tracing::warn!(partition = %tp, error = %e, "cannot inspect log for cleaning");
                    continue;
                }
            };
            let mut first_dirty = state
                .first_dirty
                .get(&tp)
                .copied()
                .unwrap_or(0)
                .max(log.log_start_offset());
            if first_dirty > log.log_end_offset() {
                first_dirty = log.log_start_offset(); // the log was truncated below it
            }
            let (mut clean_bytes, mut dirty_bytes) = (0u64, 0u64);
            let mut oldest_dirty_ts = i64::MAX;
            for (i, s) in view.segments.iter().enumerate() {
                let end = view
                    .segments
                    .get(i + 1)
                    .map_or(view.end, |n| n.base_offset());
                if end <= first_dirty {
                    clean_bytes += s.size();
                } else {
                    dirty_bytes += s.size();
                    if s.max_timestamp() >= 0 {
                        oldest_dirty_ts = oldest_dirty_ts.min(s.max_timestamp());
                    }
                }
            }
            let total = clean_bytes + dirty_bytes;
            let ratio = if total == 0 {
                0.0
            } else {
                dirty_bytes as f64 / total as f64
            };
            let lag = config.max_compaction_lag_ms();
            let forced =
                (dirty_bytes > 0 && lag < i64::MAX && oldest_dirty_ts < now.saturating_sub(lag))
                    || state.tombstone_deadline.get(&tp).is_some_and(|d| now >= *d)
                    || !state.passed.contains(&tp);
            let eligible =
                (dirty_bytes > 0 && ratio >= config.min_cleanable_dirty_ratio()) || forced;
            if !eligible || view.segments.is_empty() {
                continue;
            }
            let ratio = if forced { ratio + 1.0 } else { ratio };
            if best.as_ref().is_none_or(|b| ratio > b.ratio) {
                best = Some(Candidate {
                    log: log.clone(),
                    segments: view.segments,
                    first_dirty,
                    ratio,
                });
            }
        }
        if let Some(c) = &best {
            state.in_progress.insert(c.log.topic_partition().clone());
        }
        best
    }

    fn clean_one(&self, c: Candidate) {
        let tp = c.log.topic_partition().clone();
        let started = Instant::now();
        let threads = self.config.threads.max(1) as u64;
        let result = clean::clean(&clean::CleanParams {
            log: &c.log,
            segments: &c.segments,
            first_dirty: c.first_dirty,
            now: now_ms(),
            map_limit: self.config.dedupe_buffer_size / threads,
            throttler: &self.throttler,
            stopping: &self.stopping,
        });
        self.busy_nanos
            .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
        let mut state = self.state.lock();
        state.in_progress.remove(&tp);
        match result {
            Ok(r) => {
                self.bytes_read.fetch_add(r.bytes_read, Ordering::Relaxed);
                self.bytes_written
                    .fetch_add(r.bytes_written, Ordering::Relaxed);
                if !r.completed {
                    return;
                }
                self.passes.fetch_add(1, Ordering::Relaxed);
                state.passed.insert(tp.clone());
                state.first_dirty.insert(tp.clone(), r.next_dirty);
                if r.tombstone_deadline < i64::MAX {
                    state
                        .tombstone_deadline
                        .insert(tp.clone(), r.tombstone_deadline);
                } else {
                    state.tombstone_deadline.remove(&tp);
                }
                tracing::info!(partition = %tp, read = r.bytes_read, written = r.bytes_written,
                    elapsed_ms = started.elapsed().as_millis() as u64, "cleaned log");
                let dir = c.log.dir().parent().map(Path::to_path_buf);
                let entries = state.first_dirty.clone();
                drop(state);
                if let (Some(dir), Some(all)) = (dir, (self.logs)()) {
                    self.write_checkpoint(&all, &dir, &entries);
                }
            }
            Err(e) => {
                tracing::warn!(partition = %tp, error = %e, "cleaning failed; will retry");
            }
        }
    }

    fn write_checkpoint(
        &self,
        logs: &[Arc<PartitionLog>],
        dir: &Path,
        all: &HashMap<TopicPartition, i64>,
    ) {
        let entries: BTreeMap<TopicPartition, i64> = logs
            .iter()
            .filter(|l| l.dir().parent() == Some(dir))
            .filter_map(|l| {
                let tp = l.topic_partition();
                all.get(tp).map(|o| (tp.clone(), *o))
            })
            .collect();
        if let Err(e) = checkpoint::write(&dir.join(CHECKPOINT_FILE), &entries) {
            tracing::warn!(error = %e, "writing the cleaner checkpoint failed");
        }
    }
}
