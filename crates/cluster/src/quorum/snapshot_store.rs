//! `SnapshotStore`: the state machine's snapshots on disk, `snapshots/<end>-<term>.checkpoint`
//! (`end` = last included index + 1, Kafka's naming), one current file, older ones deleted.
//!
//! File format: `STROMSNAP1\n`, a big-endian u32 length, the openraft `SnapshotMeta` as JSON, then
//! the snapshot data (a JSON `SnapshotPayload`), which is also exactly what is sent to followers.
//! Files are written to `.tmp`, fsync'd, renamed and the directory fsync'd, so a crash leaves the
//! previous snapshot intact; a `.tmp` left by a crash is removed at open. The directory itself is
//! created durably (its entry fsync'd in the parent): the log before a snapshot is purged once
//! the snapshot is saved, so losing the directory in a crash would lose the metadata. Saving never replaces a newer snapshot with an older one (a build that
//! finishes after an install must not win).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use openraft::SnapshotMeta;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::staging::StagedProposals;
use super::state_file::create_dir_durable;
use super::types::NodeId;
use crate::metadata::MetadataImage;

const MAGIC: &[u8] = b"STROMSNAP1\n";

/// Snapshot metadata of the quorum.
pub(crate) type Meta = SnapshotMeta<NodeId, openraft::BasicNode>;

/// The state a snapshot restores.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SnapshotPayload {
    /// The image at the snapshot's last entry.
    pub(crate) image: MetadataImage,
    /// `last_modified` of the state machine (optimistic concurrency; see `Proposal`).
    pub(crate) last_modified: i64,
    /// Parts of split proposals waiting for their last part (absent in older snapshots).
    #[serde(default)]
    pub(crate) staged: StagedProposals,
}

/// The snapshot directory.
#[derive(Debug)]
pub(crate) struct SnapshotStore {
    dir: PathBuf,
    /// The current snapshot's meta and path; the lock orders saves.
    current: Mutex<Option<(Meta, PathBuf)>>,
}

fn end_of(meta: &Meta) -> u64 {
    meta.last_log_id.map_or(0, |l| l.index + 1)
}

fn io_err(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string())
}

impl SnapshotStore {
    /// Opens `dir`, keeping the newest readable snapshot as current.
    pub(crate) fn open(dir: &Path) -> std::io::Result<SnapshotStore> {
        create_dir_durable(dir)?;
        let all: Vec<PathBuf> = fs::read_dir(dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        for tmp in all
            .iter()
            .filter(|p| p.extension().is_some_and(|x| x == "tmp"))
        {
            tracing::info!(file = %tmp.display(), "removing an unfinished snapshot");
            let _ = fs::remove_file(tmp);
        }
        let mut files: Vec<PathBuf> = all
            .into_iter()
            .filter(|p| p.extension().is_some_and(|x| x == "checkpoint"))
            .collect();
        files.sort();
        let mut current = None;
        if let Some(path) = files.last() {
            let (meta, _) = read_file(path)?;
            current = Some((meta, path.clone()));
        }
        for p in files.iter().rev().skip(1) {
            let _ = fs::remove_file(p);
        }
        Ok(SnapshotStore {
            dir: dir.to_path_buf(),
            current: Mutex::new(current),
        })
    }

    /// The current snapshot's meta and data.
    pub(crate) fn current(&self) -> std::io::Result<Option<(Meta, Vec<u8>)>> {
        let path = match &*self.current.lock() {
            Some((_, p)) => p.clone(),
            None => return Ok(None),
        };
        read_file(&path).map(Some)
    }

    /// The current snapshot's meta.
    #[cfg(test)]
    pub(crate) fn current_meta(&self) -> Option<Meta> {
        self.current.lock().as_ref().map(|(m, _)| m.clone())
    }

    /// Stores a snapshot durably and makes it current, unless a newer one is already current.
    pub(crate) fn save(&self, meta: &Meta, data: &[u8]) -> std::io::Result<()> {
        let mut current = self.current.lock();
        if current
            .as_ref()
            .is_some_and(|(m, _)| end_of(m) > end_of(meta))
        {
            return Ok(());
        }
        let term = meta.last_log_id.map_or(0, |l| l.leader_id.term);
        let name = format!("{:020}-{:010}.checkpoint", end_of(meta), term);
        let path = self.dir.join(name);
        let write = || -> std::io::Result<()> {
            let meta_json = serde_json::to_vec(meta).map_err(io_err)?;
            let len = u32::try_from(meta_json.len()).map_err(io_err)?;
            let tmp = path.with_extension("checkpoint.tmp");
            {
                let mut f = fs::File::create(&tmp)?;
                f.write_all(MAGIC)?;
                f.write_all(&len.to_be_bytes())?;
                f.write_all(&meta_json)?;
                f.write_all(data)?;
                f.sync_all()?;
            }
            fs::rename(&tmp, &path)?;
            fs::File::open(&self.dir)?.sync_all()
        };
        write()?;
        if let Some((_, old)) = current.replace((meta.clone(), path.clone())) {
            if old != path {
                let _ = fs::remove_file(old);
            }
        }
        Ok(())
    }
}

fn read_file(path: &Path) -> std::io::Result<(Meta, Vec<u8>)> {
    let bytes = fs::read(path)?;
    let rest = bytes
        .strip_prefix(MAGIC)
        .ok_or_else(|| io_err(format!("{}: not a snapshot", path.display())))?;
    let (len, rest) = rest
        .split_first_chunk::<4>()
        .ok_or_else(|| io_err(format!("{}: truncated", path.display())))?;
    let len = usize::try_from(u32::from_be_bytes(*len)).map_err(io_err)?;
    if rest.len() < len {
        return Err(io_err(format!("{}: truncated", path.display())));
    }
    let (meta, data) = rest.split_at(len);
    let meta: Meta = serde_json::from_slice(meta).map_err(io_err)?;
    Ok((meta, data.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::{CommittedLeaderId, LogId};

    fn meta(index: u64) -> Meta {
        Meta {
            last_log_id: Some(LogId::new(CommittedLeaderId::new(2, 1), index)),
            last_membership: Default::default(),
            snapshot_id: format!("s{index}"),
        }
    }

    #[test]
    fn newest_snapshot_wins_and_survives_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SnapshotStore::open(dir.path()).expect("open");
        store.save(&meta(10), b"ten").expect("save");
        store
            .save(&meta(5), b"five")
            .expect("older save is ignored");
        store.save(&meta(20), b"twenty").expect("save");
        let (m, data) = store.current().expect("read").expect("some");
        assert_eq!(m, meta(20));
        assert_eq!(data, b"twenty");
        drop(store);
        let store = SnapshotStore::open(dir.path()).expect("reopen");
        assert_eq!(store.current_meta(), Some(meta(20)));
        let files = fs::read_dir(dir.path()).expect("ls").count();
        assert_eq!(files, 1);
    }

    #[test]
    fn an_unfinished_snapshot_is_removed_at_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SnapshotStore::open(dir.path()).expect("open");
        store.save(&meta(10), b"ten").expect("save");
        drop(store);
        let tmp = dir
            .path()
            .join("00000000000000000020-0000000002.checkpoint.tmp");
        fs::write(&tmp, b"STROMSNAP1\n\0\0").expect("a crash mid-save");
        let store = SnapshotStore::open(dir.path()).expect("reopen");
        assert_eq!(store.current_meta(), Some(meta(10)));
        assert!(!tmp.exists());
    }
}
