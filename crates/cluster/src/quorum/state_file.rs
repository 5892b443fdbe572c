//! `quorum-state`: the durable Raft vote and the id of the last purged log entry, and
//! `quorum-committed`, a best-effort hint of the committed log id.
//!
//! `quorum-state` is JSON, replaced atomically (write `quorum-state.tmp`, fsync, rename, fsync the
//! directory), so a crash leaves either the old or the new state, never a torn one. The vote must
//! be durable before a vote answer leaves the node; `last_purged` must be durable before any log
//! entry is deleted (the log start is derived from it at open).
//!
//! `quorum-committed` is written without fsync on every commit: losing it only means a restarted
//! node replays less of its log at start-up and waits for the leader for the rest (openraft
//! treats the committed id as optional). It is clamped to the local log at open. Written in
//! place, a crash can tear it into a mix of two values that reads as a third, higher one, which
//! would make the node apply entries that were never committed; so it carries a checksum
//! (`<16 hex digits of FNV-1a-64> <json>`), and anything that does not check out (a torn write,
//! the old format without a checksum) reads as no hint.
//!
//! Directories the node's state lives in are created with [`create_dir_durable`]: a new
//! directory's entry is fsync'd in its parent, so a file made durable inside it stays reachable
//! after a crash.

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

/// Size of the `quorum-committed` record: checksum and JSON, space-padded, rewritten in place so
/// the file never changes size (no metadata to journal on each commit).
const COMMITTED_LEN: usize = 256;

/// FNV-1a, 64 bits: detects a torn record (not an adversary; the file is local).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Creates `dir` and any missing parents, fsyncing each new directory's parent, so the new
/// entries survive a crash.
pub(crate) fn create_dir_durable(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    create_dir_durable(&parent)?;
    match fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(e),
    }
    fs::File::open(&parent)?.sync_all()
}

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

    /// The committed hint, if readable and its checksum checks out.
    pub(crate) fn load_committed(&self) -> Option<LogId> {
        let bytes = fs::read(self.committed_path()).ok()?;
        let text = std::str::from_utf8(&bytes).ok()?.trim_end_matches(' ');
        let (sum, json) = text.split_once(' ')?;
        if u64::from_str_radix(sum, 16).ok()? != fnv1a(json.as_bytes()) {
            tracing::info!("quorum-committed does not check out (torn or old); ignored");
            return None;
        }
        serde_json::from_str::<Option<LogId>>(json).ok()?
    }

    /// Writes the committed hint (no fsync: see the module docs).
    pub(crate) fn store_committed(&self, committed: &Option<LogId>) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        let json = serde_json::to_vec(committed).map_err(std::io::Error::other)?;
        let mut bytes = format!("{:016x} ", fnv1a(&json)).into_bytes();
        bytes.extend_from_slice(&json);
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

    #[test]
    fn a_torn_or_old_committed_hint_reads_as_none() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = StateFiles::new(dir.path());
        let id = |index| Some(LogId::new(openraft::CommittedLeaderId::new(3, 2), index));
        files.store_committed(&id(1199)).expect("store");
        assert_eq!(files.load_committed(), id(1199));
        // Half of a later write landed: the digits now read 1299, above both real values.
        let path = dir.path().join("quorum-committed");
        let text = fs::read_to_string(&path).expect("read");
        let torn = text.replacen("1199", "1299", 1);
        assert_ne!(torn, text);
        fs::write(&path, torn).expect("write");
        assert_eq!(files.load_committed(), None);
        // The format before the checksum: plain JSON.
        let old = serde_json::to_vec(&id(1199)).expect("json");
        fs::write(&path, old).expect("write");
        assert_eq!(files.load_committed(), None);
    }

    #[test]
    fn new_directories_are_created_with_their_parents() {
        let dir = tempfile::tempdir().expect("tempdir");
        let deep = dir.path().join("a").join("b").join("c");
        create_dir_durable(&deep).expect("create");
        assert!(deep.is_dir());
        create_dir_durable(&deep).expect("again");
    }
}
