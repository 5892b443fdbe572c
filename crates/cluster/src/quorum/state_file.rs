//! `quorum-state`: the durable Raft vote and the id of the last purged log entry, and
//! `quorum-committed`, a best-effort hint of the committed log id.
//!
//! `quorum-state` is JSON, replaced atomically (write `quorum-state.tmp`, fsync, rename, fsync the
//! directory), so a crash leaves either the old or the new state, never a torn one. The vote must
//! be durable before a vote answer leaves the node; `last_purged` must be durable before any log
//! entry is deleted (the log start is derived from it at open).
//!
//! `quorum-committed` is written without fsync on every commit: losing or garbling it only means
//! a restarted node replays less of its log at start-up and waits for the leader for the rest
//! (openraft treats the committed id as optional). It is clamped to the local log at open.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::types::NodeId;

type Vote = openraft::Vote<NodeId>;
type LogId = openraft::LogId<NodeId>;

/// The contents of `quorum-state`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct QuorumState {
    /// The last vote this node gave or holds.
    pub(crate) vote: Option<Vote>,
    /// Log entries up to and including this one are gone (in a snapshot).
    pub(crate) last_purged: Option<LogId>,
}

/// Size of the `quorum-committed` record: the JSON, space-padded, rewritten in place so the
/// file never changes size (no metadata to journal on each commit).
const COMMITTED_LEN: usize = 128;

/// Reads and writes the state files in one directory.
#[derive(Debug)]
pub(crate) struct StateFiles {
    dir: PathBuf,
    committed: parking_lot::Mutex<Option<fs::File>>,
}

impl StateFiles {
    pub(crate) fn new(dir: &Path) -> StateFiles {
        StateFiles {
            dir: dir.to_path_buf(),
            committed: parking_lot::Mutex::new(None),
        }
    }

    fn state_path(&self) -> PathBuf {
        self.dir.join("quorum-state")
    }

    fn committed_path(&self) -> PathBuf {
        self.dir.join("quorum-committed")
    }

    /// The stored state; default when the file does not exist yet (a fresh node).
    pub(crate) fn load(&self) -> std::io::Result<QuorumState> {
        let path = self.state_path();
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: {e}", path.display()),
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(QuorumState::default()),
            Err(e) => Err(e),
        }
    }

    /// Replaces the state durably.
    pub(crate) fn store(&self, state: &QuorumState) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(state).map_err(std::io::Error::other)?;
        let tmp = self.dir.join("quorum-state.tmp");
        {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
        }
        fs::rename(&tmp, self.state_path())?;
        fs::File::open(&self.dir)?.sync_all()
    }

    /// The committed hint, if readable.
    pub(crate) fn load_committed(&self) -> Option<LogId> {
        let bytes = fs::read(self.committed_path()).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Writes the committed hint (no fsync: see the module docs).
    pub(crate) fn store_committed(&self, committed: &Option<LogId>) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        let mut bytes = serde_json::to_vec(committed).map_err(std::io::Error::other)?;
        if bytes.len() > COMMITTED_LEN {
            return Err(std::io::Error::other("committed log id too long"));
        }
        bytes.resize(COMMITTED_LEN, b' ');
        let mut file = self.committed.lock();
        if file.is_none() {
            *file = Some(
                fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(self.committed_path())?,
            );
        }
        match file.as_ref() {
            Some(f) => f.write_all_at(&bytes, 0),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_defaults_when_missing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = StateFiles::new(dir.path());
        assert_eq!(files.load().expect("load"), QuorumState::default());
        let state = QuorumState {
            vote: Some(Vote::new(3, 2)),
            last_purged: Some(LogId::new(openraft::CommittedLeaderId::new(3, 2), 17)),
        };
        files.store(&state).expect("store");
        assert_eq!(files.load().expect("load"), state);
        assert_eq!(files.load_committed(), None);
        files
            .store_committed(&state.last_purged)
            .expect("committed");
        assert_eq!(files.load_committed(), state.last_purged);
    }
}
