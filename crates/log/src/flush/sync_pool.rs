//! `SyncPool`: long-lived threads that fdatasync files in parallel for the flusher, so a round
//! touching many files costs one fsync latency, without spawning threads per round.

use std::fs::File;
use std::io;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread;

use parking_lot::Mutex;

struct Job {
    file: Arc<File>,
    done: Sender<io::Result<()>>,
}

/// A fixed set of fsync threads; they end when the pool is dropped.
pub(crate) struct SyncPool {
    jobs: Mutex<Sender<Job>>,
}

impl std::fmt::Debug for SyncPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncPool").finish_non_exhaustive()
    }
}

impl SyncPool {
    pub(crate) fn new(threads: usize) -> SyncPool {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads {
            let rx: Arc<Mutex<Receiver<Job>>> = rx.clone();
            let spawned = thread::Builder::new()
                .name(format!("strom-fsync-{i}"))
                .spawn(move || loop {
                    let job = rx.lock().recv();
                    let Ok(job) = job else { return };
                    let _ = job.done.send(job.file.sync_data());
                });
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "could not start an fsync thread; syncing with fewer");
            }
        }
        SyncPool {
            jobs: Mutex::new(tx),
        }
    }

    /// fdatasyncs every file, in parallel; the first error wins (all are still attempted).
    pub(crate) fn sync_all(&self, files: &[Arc<File>]) -> io::Result<()> {
        let Some((first, rest)) = files.split_first() else {
            return Ok(());
        };
        let (done, results) = mpsc::channel();
        let mut sent = 0;
        let mut result = Ok(());
        {
            let jobs = self.jobs.lock();
            for f in rest {
                let job = Job {
                    file: f.clone(),
                    done: done.clone(),
                };
                match jobs.send(job) {
                    Ok(()) => sent += 1,
                    // No pool threads: do it here.
                    Err(mpsc::SendError(job)) => result = result.and(job.file.sync_data()),
                }
            }
        }
        drop(done);
        result = result.and(first.sync_data());
        for _ in 0..sent {
            let r = results
                .recv()
                .unwrap_or_else(|_| Err(io::Error::other("fsync thread ended")));
            result = result.and(r);
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syncs_many_files() {
        let dir = tempfile::tempdir().expect("tmp");
        let files: Vec<Arc<File>> = (0..5)
            .map(|i| Arc::new(File::create(dir.path().join(format!("f{i}"))).expect("create")))
            .collect();
        let pool = SyncPool::new(3);
        pool.sync_all(&files).expect("sync");
        pool.sync_all(&[]).expect("empty");
    }
}
