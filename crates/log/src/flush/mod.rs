//! `FlushScheduler`: group commit. One flusher thread per log directory (one disk) turns many
//! concurrent appends into few fdatasync rounds.
//!
//! An append writes its bytes to the page cache, marks its log dirty and queues the log here. The
//! flusher takes everything queued, fdatasyncs every touched file (and directory, for new
//! segments) in parallel, then publishes each log's new durable offset, which wakes the appenders
//! waiting to acknowledge. Appends that arrive during a round wait for the next one, so a busy
//! broker makes one round per fsync latency and an idle one answers at once: no timer involved.
//!
//! Gathering: appenders released by one round come back almost together, but the next round
//! starts as soon as the previous ends, so under steady load the appenders split into two
//! alternating halves and each fsync carries half of them. When a round just ended, the next one
//! waits until as many appends are waiting as were active around the last round (those it
//! released plus those that queued during it), or at most half the last round's fsync time
//! (capped at 500 µs). An idle broker never waits: the rule only applies right after a busy round.
//!
//! A failed fsync is fatal for the directory (the fsyncgate lesson: the kernel may have dropped
//! the dirty pages, so retrying proves nothing). The directory goes offline and every waiter gets
//! `LogDirOffline`; nothing on it is acknowledged again.

use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::thread;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

mod sync_pool;
use sync_pool::SyncPool;

/// fsync threads per log directory (beyond the flusher itself).
const SYNC_THREADS: usize = 7;

/// Shared state of one log directory.
#[derive(Debug)]
pub struct LogDir {
    path: PathBuf,
    offline: AtomicBool,
}

impl LogDir {
    pub(crate) fn new(path: PathBuf) -> Self {
        LogDir {
            path,
            offline: AtomicBool::new(false),
        }
    }
    /// The directory.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
    /// True once a write or fsync failed here.
    pub fn is_offline(&self) -> bool {
        self.offline.load(Ordering::Acquire)
    }
    pub(crate) fn mark_offline(&self, why: &dyn std::fmt::Display) {
        if !self.offline.swap(true, Ordering::AcqRel) {
            tracing::error!(dir = %self.path.display(), error = %why, "log directory taken offline: no further writes are acknowledged");
        }
    }
}

/// What a flush round needs of a dirty log (`PartitionLog` implements it): its files written
/// since the last round, then the outcome. The flusher knows logs only through this, so the
/// dependency points one way: logs queue themselves here, this never reaches into a log's state.
pub(crate) trait Flushable: Send + Sync + std::fmt::Debug {
    /// Moves the files to sync into `work` and remembers what they make durable; false when
    /// nothing is dirty (a round already took it).
    fn take_dirty(&self, work: &mut FlushWork) -> bool;
    /// The files taken were synced: publish the new durable end.
    fn publish_durable(&self);
    /// Syncing failed (the directory goes offline): fail the waiters.
    fn publish_failure(&self);
}

#[derive(Debug, Default)]
struct Queue {
    logs: Vec<Arc<dyn Flushable>>,
    shutdown: bool,
    /// Appends waiting for the next round (every sync append counts, queued log or not).
    waiters: u64,
    /// True while the flusher gathers: appends then notify it.
    gathering: bool,
}

/// What the previous round did, for gathering.
#[derive(Debug, Clone, Copy)]
struct LastRound {
    ended: Instant,
    /// Appends the round released plus those that queued while it ran.
    active: u64,
    fsync: Duration,
}

/// The group-commit flusher of one log directory.
#[derive(Debug)]
pub struct FlushScheduler {
    dir: Arc<LogDir>,
    queue: Mutex<Queue>,
    wake: Condvar,
    /// Rounds completed, for tests and metrics.
    rounds: std::sync::atomic::AtomicU64,
    pool: SyncPool,
    /// Each round's duration and appends, for `/metrics` (atomics: the round holds no lock).
    metrics: Arc<strom_metrics::FlushMetrics>,
}

/// Files a log hands to a flush round.
#[derive(Debug, Default)]
pub(crate) struct FlushWork {
    pub(crate) files: Vec<Arc<File>>,
    pub(crate) dirs: Vec<PathBuf>,
}

impl FlushScheduler {
    /// Starts the flusher thread for `dir`.
    pub(crate) fn start(
        dir: Arc<LogDir>,
        metrics: Arc<strom_metrics::FlushMetrics>,
    ) -> Arc<FlushScheduler> {
        let s = Arc::new(FlushScheduler {
            dir,
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
            rounds: std::sync::atomic::AtomicU64::new(0),
            pool: SyncPool::new(SYNC_THREADS),
            metrics,
        });
        let weak = Arc::downgrade(&s);
        let name = format!("strom-flush-{}", s.dir.path.display());
        let spawned = thread::Builder::new()
            .name(name.chars().take(15).collect())
            .spawn(move || run(weak));
        if let Err(e) = spawned {
            s.dir.mark_offline(&e);
        }
        s
    }

    /// The directory this scheduler flushes.
    pub fn log_dir(&self) -> &Arc<LogDir> {
        &self.dir
    }

    /// Flush rounds completed so far.
    pub fn rounds(&self) -> u64 {
        self.rounds.load(Ordering::Relaxed)
    }

    /// Queues a dirty log for the next round.
    pub(crate) fn request(&self, log: Arc<dyn Flushable>) {
        let mut q = self.queue.lock();
        q.logs.push(log);
        q.waiters += 1;
        self.wake.notify_one();
    }

    /// Counts one more append waiting on a log that is already queued.
    pub(crate) fn note_waiter(&self) {
        let mut q = self.queue.lock();
        q.waiters += 1;
        if q.gathering {
            self.wake.notify_one();
        }
    }

    /// Stops the thread after the queued work is done.
    pub(crate) fn shutdown(&self) {
        self.queue.lock().shutdown = true;
        self.wake.notify_one();
    }
}

const MAX_GATHER: Duration = Duration::from_micros(500);

fn run(weak: Weak<FlushScheduler>) {
    let mut last: Option<LastRound> = None;
    loop {
        let Some(s) = weak.upgrade() else { return };
        let (logs, appends) = {
            let mut q = s.queue.lock();
            while q.logs.is_empty() && !q.shutdown {
                // Wake now and then so a dropped scheduler lets the thread end.
                s.wake.wait_for(&mut q, Duration::from_millis(500));
                if q.logs.is_empty() && !q.shutdown && Arc::strong_count(&s) == 1 {
                    return;
                }
            }
            if q.logs.is_empty() && q.shutdown {
                return;
            }
            if let Some(l) =
                last.filter(|l| l.active > 1 && l.ended.elapsed() < Duration::from_millis(1))
            {
                let deadline = l.ended + (l.fsync / 2).min(MAX_GATHER);
                q.gathering = true;
                while q.waiters < l.active && !q.shutdown && Instant::now() < deadline {
                    s.wake.wait_until(&mut q, deadline);
                }
                q.gathering = false;
            }
            (std::mem::take(&mut q.logs), std::mem::take(&mut q.waiters))
        };
        let started = Instant::now();
        if s.flush_round(logs) {
            s.metrics.duration.observe_duration(started.elapsed());
            s.metrics.batches_per_round.observe_units(appends);
        }
        let queued_meanwhile = s.queue.lock().waiters;
        last = Some(LastRound {
            ended: Instant::now(),
            active: appends + queued_meanwhile,
            fsync: started.elapsed(),
        });
    }
}

impl FlushScheduler {
    /// Flushes the logs' dirty files; false when none had anything to flush.
    fn flush_round(&self, mut logs: Vec<Arc<dyn Flushable>>) -> bool {
        logs.sort_by_key(|l| Arc::as_ptr(l).cast::<()>() as usize);
        logs.dedup_by(|a, b| Arc::ptr_eq(a, b));
        // Take each log's dirty state: the files and the offset they make durable.
        let mut taken = Vec::with_capacity(logs.len());
        let mut work = FlushWork::default();
        for log in logs {
            if log.take_dirty(&mut work) {
                taken.push(log);
            }
        }
        if taken.is_empty() {
            return false;
        }
        let result = if self.dir.is_offline() {
            Err(std::io::Error::other("log directory offline"))
        } else {
            sync_all(&self.pool, &work)
        };
        self.rounds.fetch_add(1, Ordering::Relaxed);
        match result {
            Ok(()) => {
                for log in taken {
                    log.publish_durable();
                }
            }
            Err(e) => {
                self.dir.mark_offline(&e);
                for log in taken {
                    log.publish_failure();
                }
            }
        }
        true
    }
}

/// fdatasyncs every file and directory of a round, in parallel on the pool.
fn sync_all(pool: &SyncPool, work: &FlushWork) -> std::io::Result<()> {
    let mut files = work.files.clone();
    for d in &work.dirs {
        files.push(Arc::new(File::open(d)?));
    }
    pool.sync_all(&files)
}
