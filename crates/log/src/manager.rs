//! `LogManager`: owns every partition log under `log.dirs`; opens them at start-up (recovering
//! after a crash), creates and deletes them, and runs the background work: retention, time-based
//! flushes and recovery-point checkpoints.
//!
//! Start-up cost: after a clean shutdown (the `.kafka_cleanshutdown` marker) no segment is read
//! beyond the tail of the active one. After a crash only segments past each partition's recovery
//! point (from `recovery-point-offset-checkpoint`) are re-validated; older ones were fsync'd.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};

use crate::checkpoint;
use crate::cleaner::{CleanerConfig, CleanerStats, LogCleaner};
use crate::clock::now_ms;
use crate::config::LogConfig;
use crate::durable_file::fsync_dir;
use crate::error::{LogError, Result};
use crate::flush::{FlushScheduler, LogDir};
use crate::partition_log::{HighWatermarkPolicy, LoadedLog, PartitionLog};
use crate::segment::{parse_file_stem, LogSegment};
use crate::TopicPartition;

const CLEAN_SHUTDOWN_FILE: &str = ".kafka_cleanshutdown";
const RECOVERY_POINT_FILE: &str = "recovery-point-offset-checkpoint";
const LOG_START_FILE: &str = "log-start-offset-checkpoint";

/// Broker-level settings of the log manager (Kafka's names in the field docs).
#[derive(Debug, Clone)]
pub struct LogManagerConfig {
    /// `log.dirs`.
    pub log_dirs: Vec<PathBuf>,
    /// `log.retention.check.interval.ms`.
    pub retention_check_interval: Duration,
    /// `log.flush.offset.checkpoint.interval.ms`.
    pub checkpoint_interval: Duration,
    /// `log.flush.scheduler.interval.ms`: how often `flush.ms` is checked.
    pub flush_check_interval: Duration,
    /// Who moves high watermarks.
    pub high_watermark_policy: HighWatermarkPolicy,
    /// The log cleaner (compaction) settings.
    pub cleaner: CleanerConfig,
    /// `producer.id.expiration.ms`: idempotent producers idle this long are forgotten.
    pub producer_id_expiration_ms: i64,
    /// `producer.id.expiration.check.interval.ms`.
    pub producer_id_expiration_check_interval: Duration,
    /// Where every directory's flusher records its rounds (the broker's `/metrics`).
    pub flush_metrics: Arc<strom_metrics::FlushMetrics>,
}

impl LogManagerConfig {
    /// Kafka's defaults for one directory.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        LogManagerConfig {
            log_dirs: vec![dir.into()],
            retention_check_interval: Duration::from_millis(300_000),
            checkpoint_interval: Duration::from_millis(60_000),
            flush_check_interval: Duration::from_millis(100),
            high_watermark_policy: HighWatermarkPolicy::FollowLocal,
            cleaner: CleanerConfig::default(),
            producer_id_expiration_ms: crate::producer_state::DEFAULT_PRODUCER_ID_EXPIRATION_MS,
            producer_id_expiration_check_interval: Duration::from_millis(600_000),
            flush_metrics: Arc::default(),
        }
    }
}

struct DirHandle {
    dir: Arc<LogDir>,
    flusher: Arc<FlushScheduler>,
}

/// All partition logs of this broker.
pub struct LogManager {
    config: LogManagerConfig,
    dirs: Vec<DirHandle>,
    logs: RwLock<HashMap<TopicPartition, (usize, Arc<PartitionLog>)>>,
    create_lock: Mutex<()>,
    stopping: Arc<AtomicBool>,
    background: Mutex<Option<std::thread::JoinHandle<()>>>,
    cleaner: Mutex<Option<LogCleaner>>,
}

impl std::fmt::Debug for LogManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogManager")
            .field("log_dirs", &self.config.log_dirs)
            .field("logs", &self.logs.read().len())
            .finish()
    }
}

impl LogManager {
    /// Opens every log under the configured directories. `config_for` gives each topic's config.
    pub fn open(
        config: LogManagerConfig,
        config_for: &dyn Fn(&str) -> Arc<LogConfig>,
    ) -> Result<Arc<LogManager>> {
        let mut dirs = Vec::new();
        let mut logs = HashMap::new();
        for (i, path) in config.log_dirs.iter().enumerate() {
            fs::create_dir_all(path).map_err(|e| LogError::io(path, e))?;
            let dir = Arc::new(LogDir::new(path.clone()));
            let flusher = FlushScheduler::start(dir.clone(), config.flush_metrics.clone());
            let marker = path.join(CLEAN_SHUTDOWN_FILE);
            let clean = marker.exists();
            let recovery = checkpoint::read(&path.join(RECOVERY_POINT_FILE));
            let starts = checkpoint::read(&path.join(LOG_START_FILE));
            let started = Instant::now();
            let mut count = 0;
            for entry in fs::read_dir(path).map_err(|e| LogError::io(path, e))? {
                let entry = entry.map_err(|e| LogError::io(path, e))?;
                let name = entry.file_name().to_string_lossy().to_string();
                if !entry.path().is_dir() {
                    continue;
                }
                if name.ends_with("-delete") {
                    let p = entry.path();
                    std::thread::spawn(move || {
                        let _ = fs::remove_dir_all(&p);
                    });
                    continue;
                }
                let Some(tp) = TopicPartition::from_dir_name(&name) else {
                    continue;
                };
                let cfg = config_for(&tp.topic);
                let log = load_log(
                    &entry.path(),
                    tp.clone(),
                    cfg,
                    clean,
                    recovery.get(&tp).copied().unwrap_or(0),
                    starts.get(&tp).copied().unwrap_or(0),
                    flusher.clone(),
                    config.high_watermark_policy,
                    config.producer_id_expiration_ms,
                )?;
                log.load_producer_state(now_ms())?;
                log.load_leader_epoch_cache()?;
                logs.insert(tp, (i, log));
                count += 1;
            }
            if clean {
                fs::remove_file(&marker).map_err(|e| LogError::io(&marker, e))?;
                fsync_dir(path)?;
            }
            tracing::info!(dir = %path.display(), partitions = count, clean, elapsed_ms = started.elapsed().as_millis() as u64, "loaded logs");
            dirs.push(DirHandle { dir, flusher });
        }
        let mgr = Arc::new(LogManager {
            config,
            dirs,
            logs: RwLock::new(logs),
            create_lock: Mutex::new(()),
            stopping: Arc::new(AtomicBool::new(false)),
            background: Mutex::new(None),
            cleaner: Mutex::new(None),
        });
        mgr.start_background();
        if mgr.config.cleaner.enabled {
            let weak = Arc::downgrade(&mgr);
            *mgr.cleaner.lock() = Some(LogCleaner::start(
                mgr.config.cleaner.clone(),
                Box::new(move || weak.upgrade().map(|m| m.all_logs())),
                &mgr.config.log_dirs,
            ));
        }
        Ok(mgr)
    }

    fn start_background(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        let stopping = self.stopping.clone();
        let handle = std::thread::Builder::new()
            .name("strom-log-bg".into())
            .spawn(move || {
                let mut last_retention = Instant::now();
                let mut last_checkpoint = Instant::now();
                let mut last_expiration = Instant::now();
                loop {
                    let Some(mgr) = weak.upgrade() else { return };
                    let tick = mgr
                        .config
                        .flush_check_interval
                        .min(Duration::from_millis(500));
                    drop(mgr);
                    std::thread::sleep(tick);
                    if stopping.load(Ordering::Acquire) {
                        return;
                    }
                    let Some(mgr) = weak.upgrade() else { return };
                    for log in mgr.all_logs() {
                        log.maybe_flush_by_time();
                    }
                    if last_retention.elapsed() >= mgr.config.retention_check_interval {
                        last_retention = Instant::now();
                        mgr.run_retention();
                    }
                    if last_expiration.elapsed() >= mgr.config.producer_id_expiration_check_interval
                    {
                        last_expiration = Instant::now();
                        let now = now_ms();
                        for log in mgr.all_logs() {
                            log.remove_expired_producers(now);
                        }
                    }
                    if last_checkpoint.elapsed() >= mgr.config.checkpoint_interval {
                        last_checkpoint = Instant::now();
                        if let Err(e) = mgr.write_checkpoints() {
                            tracing::warn!(error = %e, "writing offset checkpoints failed");
                        }
                    }
                }
            });
        match handle {
            Ok(h) => *self.background.lock() = Some(h),
            Err(e) => tracing::error!(error = %e, "could not start the log background thread"),
        }
    }

    /// The log of a partition, if this broker has it.
    pub fn get(&self, tp: &TopicPartition) -> Option<Arc<PartitionLog>> {
        self.logs.read().get(tp).map(|(_, l)| l.clone())
    }

    /// Every log.
    pub fn all_logs(&self) -> Vec<Arc<PartitionLog>> {
        self.logs.read().values().map(|(_, l)| l.clone()).collect()
    }

    /// The log directories and whether each is online.
    pub fn log_dirs(&self) -> Vec<(PathBuf, bool)> {
        self.dirs
            .iter()
            .map(|d| (d.dir.path().to_path_buf(), !d.dir.is_offline()))
            .collect()
    }

    /// Returns the partition's log, creating it (durably: directory fsync'd) if missing.
    pub fn get_or_create(
        &self,
        tp: &TopicPartition,
        config: Arc<LogConfig>,
    ) -> Result<Arc<PartitionLog>> {
        if let Some(l) = self.get(tp) {
            return Ok(l);
        }
        let _g = self.create_lock.lock();
        if let Some(l) = self.get(tp) {
            return Ok(l);
        }
        // The online directory with the fewest partitions.
        let counts = {
            let logs = self.logs.read();
            let mut c = vec![0usize; self.dirs.len()];
            for (i, _) in logs.values() {
                c[*i] += 1;
            }
            c
        };
        let i = (0..self.dirs.len())
            .filter(|i| !self.dirs[*i].dir.is_offline())
            .min_by_key(|i| counts[*i])
            .ok_or_else(|| {
                LogError::LogDirOffline(self.config.log_dirs.first().cloned().unwrap_or_default())
            })?;
        let d = &self.dirs[i];
        let path = d.dir.path().join(tp.dir_name());
        fs::create_dir_all(&path).map_err(|e| LogError::io(&path, e))?;
        let seg = LogSegment::create(&path, 0, &config)?;
        fsync_dir(&path)?;
        fsync_dir(d.dir.path())?;
        let log = PartitionLog::from_loaded(LoadedLog {
            tp: tp.clone(),
            dir: path,
            config,
            segments: BTreeMap::from([(0, Arc::new(seg))]),
            log_start_offset: 0,
            flusher: d.flusher.clone(),
            hw_policy: self.config.high_watermark_policy,
            producer_id_expiration_ms: self.config.producer_id_expiration_ms,
        })?;
        self.logs.write().insert(tp.clone(), (i, log.clone()));
        Ok(log)
    }

    /// Deletes a partition's log: renamed to `<dir>.<uuid>-delete` (durably), then removed in
    /// the background, as Kafka does.
    pub fn delete(&self, tp: &TopicPartition) -> Result<()> {
        let Some((i, log)) = self.logs.write().remove(tp) else {
            return Ok(());
        };
        log.mark_closed();
        let from = log.dir().to_path_buf();
        let to = self.dirs[i].dir.path().join(format!(
            "{}.{}-delete",
            tp.dir_name(),
            uuid::Uuid::new_v4().simple()
        ));
        fs::rename(&from, &to).map_err(|e| LogError::io(&from, e))?;
        fsync_dir(self.dirs[i].dir.path())?;
        std::thread::spawn(move || {
            if let Err(e) = fs::remove_dir_all(&to) {
                tracing::warn!(dir = %to.display(), error = %e, "removing deleted log failed");
            }
        });
        Ok(())
    }

    /// One retention pass over every log.
    pub fn run_retention(&self) {
        let now = now_ms();
        for log in self.all_logs() {
            if let Err(e) = log.delete_old_segments(now) {
                tracing::warn!(partition = %log.topic_partition(), error = %e, "retention failed");
            }
        }
        if let Err(e) = self.write_log_start_checkpoints() {
            tracing::warn!(error = %e, "writing log start checkpoint failed");
        }
    }

    fn entries(&self, i: usize, f: impl Fn(&PartitionLog) -> i64) -> BTreeMap<TopicPartition, i64> {
        self.logs
            .read()
            .iter()
            .filter(|(_, (d, _))| *d == i)
            .map(|(tp, (_, l))| (tp.clone(), f(l)))
            .collect()
    }

    /// Writes recovery points (durable offsets) and log start offsets of every directory.
    pub fn write_checkpoints(&self) -> Result<()> {
        for (i, d) in self.dirs.iter().enumerate() {
            if d.dir.is_offline() {
                continue;
            }
            checkpoint::write(
                &d.dir.path().join(RECOVERY_POINT_FILE),
                &self.entries(i, |l| l.durable_offset()),
            )?;
        }
        self.write_log_start_checkpoints()
    }

    /// Persists log start offsets (call after DeleteRecords before acknowledging it).
    pub fn write_log_start_checkpoints(&self) -> Result<()> {
        for (i, d) in self.dirs.iter().enumerate() {
            if d.dir.is_offline() {
                continue;
            }
            checkpoint::write(
                &d.dir.path().join(LOG_START_FILE),
                &self.entries(i, |l| l.log_start_offset()),
            )?;
        }
        Ok(())
    }

    /// Clean shutdown: flush every log, write indexes and checkpoints, then the marker that lets
    /// the next start skip recovery.
    pub fn shutdown(&self) -> Result<()> {
        self.stopping.store(true, Ordering::Release);
        if let Some(c) = self.cleaner.lock().take() {
            c.shutdown();
        }
        if let Some(h) = self.background.lock().take() {
            let _ = h.join();
        }
        for log in self.all_logs() {
            log.close()?;
        }
        for (i, d) in self.dirs.iter().enumerate() {
            d.flusher.shutdown();
            if d.dir.is_offline() {
                continue;
            }
            checkpoint::write(
                &d.dir.path().join(RECOVERY_POINT_FILE),
                &self.entries(i, |l| l.log_end_offset()),
            )?;
            checkpoint::write(
                &d.dir.path().join(LOG_START_FILE),
                &self.entries(i, |l| l.log_start_offset()),
            )?;
            let marker = d.dir.path().join(CLEAN_SHUTDOWN_FILE);
            fs::File::create(&marker)
                .and_then(|f| f.sync_all())
                .map_err(|e| LogError::io(&marker, e))?;
            fsync_dir(d.dir.path())?;
        }
        Ok(())
    }

    /// What the log cleaner has done since start (zero when it is disabled).
    pub fn cleaner_stats(&self) -> CleanerStats {
        self.cleaner
            .lock()
            .as_ref()
            .map(LogCleaner::stats)
            .unwrap_or_default()
    }

    /// The group-commit flusher of the first directory (benchmarks read its round count).
    pub fn flush_rounds(&self) -> u64 {
        self.dirs.iter().map(|d| d.flusher.rounds()).sum()
    }
}

/// Opens one partition directory: lists segments, removes leftovers, recovers if needed.
#[allow(clippy::too_many_arguments)]
pub(crate) fn load_log(
    path: &Path,
    tp: TopicPartition,
    config: Arc<LogConfig>,
    clean: bool,
    recovery_point: i64,
    log_start: i64,
    flusher: Arc<FlushScheduler>,
    hw_policy: HighWatermarkPolicy,
    producer_id_expiration_ms: i64,
) -> Result<Arc<PartitionLog>> {
    // Finish (or roll back) a cleaner swap interrupted by a crash before listing segments.
    crate::cleaner::complete_swaps(path, &config)?;
    let mut bases = Vec::new();
    for entry in fs::read_dir(path).map_err(|e| LogError::io(path, e))? {
        let entry = entry.map_err(|e| LogError::io(path, e))?;
        let name = entry.file_name().to_string_lossy().to_string();
        let Some((stem, ext)) = name.split_once('.') else {
            continue;
        };
        match ext {
            "log" => match parse_file_stem(stem) {
                Some(b) => bases.push(b),
                None => {
                    tracing::warn!(file = %entry.path().display(), "ignoring a segment file not named by its base offset")
                }
            },
            "index" | "timeindex" if !path.join(format!("{stem}.log")).exists() => {
                let _ = fs::remove_file(entry.path());
            }
            e if e.ends_with("deleted") || e.ends_with("cleaned") || e.ends_with("tmp") => {
                let _ = fs::remove_file(entry.path());
            }
            _ => {}
        }
    }
    bases.sort_unstable();
    let mut segments: BTreeMap<i64, Arc<LogSegment>> = BTreeMap::new();
    for b in &bases {
        segments.insert(*b, Arc::new(LogSegment::open(path, *b, &config)?));
    }
    if segments.is_empty() {
        let base = log_start.max(0);
        segments.insert(base, Arc::new(LogSegment::create(path, base, &config)?));
        fsync_dir(path)?;
    }
    let keys: Vec<i64> = segments.keys().copied().collect();
    if clean {
        if let Some(last) = segments.values().next_back() {
            last.load_tail_state()?;
        }
    } else {
        // Recover every segment that may hold offsets at or past the recovery point.
        let first = keys
            .iter()
            .rev()
            .find(|b| **b <= recovery_point)
            .copied()
            .unwrap_or(keys[0]);
        let mut cut_at: Option<i64> = None;
        for b in keys.iter().filter(|b| **b >= first) {
            if cut_at.is_some() {
                break;
            }
            let seg = &segments[b];
            let cut = seg.recover(config.index_interval_bytes)?;
            if cut > 0 {
                tracing::warn!(partition = %tp, segment = b, bytes = cut, "truncated a torn or corrupt tail");
                cut_at = Some(*b);
            }
        }
        if let Some(b) = cut_at {
            let later: Vec<i64> = keys.iter().filter(|k| **k > b).copied().collect();
            for k in later {
                if let Some(s) = segments.remove(&k) {
                    tracing::warn!(partition = %tp, segment = k, "deleting segment after corruption");
                    s.delete_files()?;
                }
            }
            fsync_dir(path)?;
        }
    }
    PartitionLog::from_loaded(LoadedLog {
        tp,
        dir: path.to_path_buf(),
        config,
        segments,
        log_start_offset: log_start,
        flusher,
        hw_policy,
        producer_id_expiration_ms,
    })
}
