//! `TransactionIndex`: the aborted transactions of a partition, so a `read_committed` fetch can
//! tell the consumer which producers' batches to drop (Kafka's class of the same name).
//!
//! On disk, one `<segment base, 20 digits>.txnindex` file per segment that holds an ABORT marker,
//! in Kafka's format: a sequence of 34-byte entries, all integers big-endian:
//!
//! ```text
//! version: i16 (= 0)
//! producer_id: i64
//! first_offset: i64         first offset of the aborted transaction's data in this partition
//! last_offset: i64          offset of the ABORT marker
//! last_stable_offset: i64   the partition's LSO once this transaction was closed
//! ```
//!
//! An entry is appended when its marker is appended (same appender lock) and its file joins the
//! marker's group-commit round. The index is derived data: at start-up every file is read
//! (a torn trailing entry is ignored), entries at or past the log end are dropped, and the
//! producer-state rebuild re-adds entries for markers in the replayed tail
//! ([`TransactionIndex::append`] ignores an entry it already has). All entries are also kept in
//! memory (aborts are rare), sorted by marker offset.
//!
//! Thread-safety: none inside; `PartitionLog` keeps it behind a mutex, changed under its
//! appender lock.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{LogError, Result};
use crate::segment::parse_file_stem;

const ENTRY_LEN: usize = 34;
const VERSION: i16 = 0;
const SUFFIX: &str = "txnindex";

/// One aborted transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    /// Producer id.
    pub producer_id: i64,
    /// First offset of its data in this partition.
    pub first_offset: i64,
    /// Offset of its ABORT marker.
    pub last_offset: i64,
    /// The partition's last stable offset after it was closed.
    pub last_stable_offset: i64,
}

impl AbortedTxn {
    pub(crate) fn encode(&self) -> [u8; ENTRY_LEN] {
        let mut b = [0u8; ENTRY_LEN];
        b[0..2].copy_from_slice(&VERSION.to_be_bytes());
        b[2..10].copy_from_slice(&self.producer_id.to_be_bytes());
        b[10..18].copy_from_slice(&self.first_offset.to_be_bytes());
        b[18..26].copy_from_slice(&self.last_offset.to_be_bytes());
        b[26..34].copy_from_slice(&self.last_stable_offset.to_be_bytes());
        b
    }

    pub(crate) fn decode(b: &[u8]) -> Option<AbortedTxn> {
        let i64_at = |at: usize| -> Option<i64> {
            Some(i64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
        };
        let version = i16::from_be_bytes(b.get(0..2)?.try_into().ok()?);
        if version != VERSION {
            return None;
        }
        let e = AbortedTxn {
            producer_id: i64_at(2)?,
            first_offset: i64_at(10)?,
            last_offset: i64_at(18)?,
            last_stable_offset: i64_at(26)?,
        };
        (e.producer_id >= 0 && e.first_offset >= 0 && e.first_offset <= e.last_offset).then_some(e)
    }
}

/// Path of the transaction index of the segment at `base`.
pub(crate) fn txn_index_path(dir: &Path, base: i64) -> PathBuf {
    dir.join(format!("{base:020}.{SUFFIX}"))
}

/// The aborted transactions of one partition. See the module docs.
#[derive(Debug)]
pub(crate) struct TransactionIndex {
    dir: PathBuf,
    /// (segment base, entry), sorted by `last_offset`.
    entries: Vec<(i64, AbortedTxn)>,
}

impl TransactionIndex {
    /// An empty index over `dir` (a new partition).
    pub(crate) fn new(dir: &Path) -> TransactionIndex {
        TransactionIndex {
            dir: dir.to_path_buf(),
            entries: Vec::new(),
        }
    }

    /// Reads every `.txnindex` file of `dir`, keeping entries whose marker is below `log_end`.
    pub(crate) fn load(dir: &Path, log_end: i64) -> Result<TransactionIndex> {
        let mut idx = TransactionIndex::new(dir);
        let mut rewrite = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|e| LogError::io(dir, e))? {
            let entry = entry.map_err(|e| LogError::io(dir, e))?;
            let name = entry.file_name();
            let Some((stem, ext)) = name.to_str().and_then(|n| n.split_once('.')) else {
                continue;
            };
            let Some(base) = parse_file_stem(stem) else {
                continue;
            };
            if ext != SUFFIX {
                continue;
            }
            let path = entry.path();
            let bytes = std::fs::read(&path).map_err(|e| LogError::io(&path, e))?;
            let mut dropped = bytes.len() % ENTRY_LEN != 0;
            for chunk in bytes.chunks_exact(ENTRY_LEN) {
                match AbortedTxn::decode(chunk) {
                    Some(e) if e.last_offset < log_end => idx.entries.push((base, e)),
                    _ => dropped = true,
                }
            }
            if dropped {
                rewrite.push(base);
            }
        }
        // Sorted, then de-duplicated in one pass: files may repeat entries (a crash during a
        // cleaner swap), and checking each against all before it was quadratic in the files'
        // length.
        idx.entries
            .sort_by_key(|(_, e)| (e.last_offset, e.producer_id));
        idx.entries
            .dedup_by_key(|(_, e)| (e.last_offset, e.producer_id));
        for base in rewrite {
            idx.rewrite(base)?;
        }
        Ok(idx)
    }

    fn push(&mut self, base: i64, e: AbortedTxn) -> bool {
        let dup = self
            .entries
            .iter()
            .any(|(_, x)| x.producer_id == e.producer_id && x.last_offset == e.last_offset);
        if !dup {
            self.entries.push((base, e));
        }
        !dup
    }

    /// Appends an entry to the file of the segment at `base`; returns the file to fdatasync, or
    /// `None` when the entry was already indexed.
    pub(crate) fn append(&mut self, base: i64, e: AbortedTxn) -> Result<Option<File>> {
        if !self.push(base, e) {
            return Ok(None);
        }
        self.entries.sort_by_key(|(_, x)| x.last_offset);
        let path = txn_index_path(&self.dir, base);
        let io = |err| LogError::io(&path, err);
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io)?;
        f.write_all(&e.encode()).map_err(io)?;
        Ok(Some(f))
    }

    /// Aborted transactions that may hold data in `[from, upper)`: marker at or after `from`,
    /// first offset below `upper`.
    pub(crate) fn collect(&self, from: i64, upper: i64) -> Vec<AbortedTxn> {
        self.entries
            .iter()
            .filter(|(_, e)| e.last_offset >= from && e.first_offset < upper)
            .map(|(_, e)| *e)
            .collect()
    }

    /// Every entry, oldest marker first.
    pub(crate) fn all(&self) -> Vec<AbortedTxn> {
        self.entries.iter().map(|(_, e)| *e).collect()
    }

    /// Forgets the files of segments below `base` (retention deleted them).
    pub(crate) fn delete_below(&mut self, base: i64) -> Result<()> {
        let mut gone: Vec<i64> = self
            .entries
            .iter()
            .filter(|(b, _)| *b < base)
            .map(|(b, _)| *b)
            .collect();
        gone.dedup();
        self.entries.retain(|(b, _)| *b >= base);
        for b in gone {
            remove(&txn_index_path(&self.dir, b))?;
        }
        Ok(())
    }

    /// Drops entries whose marker is at or past `offset` (the log was truncated there).
    pub(crate) fn truncate_to(&mut self, offset: i64) -> Result<()> {
        let mut touched: Vec<i64> = self
            .entries
            .iter()
            .filter(|(_, e)| e.last_offset >= offset)
            .map(|(b, _)| *b)
            .collect();
        touched.dedup();
        self.entries.retain(|(_, e)| e.last_offset < offset);
        for b in touched {
            self.rewrite(b)?;
        }
        Ok(())
    }

    /// The cleaner swapped the segments at `old` for one at `new_base`: their entries are replaced
    /// by `kept` (filed under `new_base`). The new file is written first (temporary + rename), so a
    /// crash leaves at most extra entries in the old files, which load de-duplicates.
    pub(crate) fn replace_segments(
        &mut self,
        old: &[i64],
        new_base: i64,
        kept: Vec<AbortedTxn>,
    ) -> Result<()> {
        let before = self.entries.len();
        self.entries
            .retain(|(b, _)| !old.contains(b) && *b != new_base);
        if kept.is_empty() && before == self.entries.len() {
            return Ok(());
        }
        for e in kept {
            self.push(new_base, e);
        }
        self.entries.sort_by_key(|(_, e)| e.last_offset);
        let path = txn_index_path(&self.dir, new_base);
        let bytes: Vec<u8> = self
            .entries
            .iter()
            .filter(|(b, _)| *b == new_base)
            .flat_map(|(_, e)| e.encode())
            .collect();
        if bytes.is_empty() {
            remove(&path)?;
        } else {
            let tmp = path.with_extension("txnindex.cleaned");
            let io = |err| LogError::io(&tmp, err);
            let mut f = File::create(&tmp).map_err(io)?;
            f.write_all(&bytes).map_err(io)?;
            f.sync_data().map_err(io)?;
            std::fs::rename(&tmp, &path).map_err(|e| LogError::io(&path, e))?;
        }
        for b in old.iter().filter(|b| **b != new_base) {
            remove(&txn_index_path(&self.dir, *b))?;
        }
        Ok(())
    }

    /// Rewrites the file of segment `base` from memory (deleted when it has no entry left).
    fn rewrite(&self, base: i64) -> Result<()> {
        let path = txn_index_path(&self.dir, base);
        let bytes: Vec<u8> = self
            .entries
            .iter()
            .filter(|(b, _)| *b == base)
            .flat_map(|(_, e)| e.encode())
            .collect();
        if bytes.is_empty() {
            return remove(&path);
        }
        let io = |err| LogError::io(&path, err);
        let mut f = File::create(&path).map_err(io)?;
        f.write_all(&bytes).map_err(io)?;
        f.sync_data().map_err(io)
    }
}

fn remove(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(LogError::io(path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(pid: i64, first: i64, last: i64) -> AbortedTxn {
        AbortedTxn {
            producer_id: pid,
            first_offset: first,
            last_offset: last,
            last_stable_offset: last + 1,
        }
    }

    #[test]
    fn entries_survive_reload_and_truncation_drops_the_tail() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut idx = TransactionIndex::load(dir.path(), 100).expect("load");
        assert!(idx.append(0, e(1, 0, 5)).expect("append").is_some());
        assert!(idx.append(0, e(1, 0, 5)).expect("dup").is_none());
        idx.append(10, e(2, 8, 12)).expect("append");
        idx.append(10, e(3, 11, 20)).expect("append");
        let bytes = std::fs::read(txn_index_path(dir.path(), 10)).expect("read");
        assert_eq!(bytes.len(), 2 * ENTRY_LEN);
        assert_eq!(&bytes[0..2], &[0, 0]);
        let idx = TransactionIndex::load(dir.path(), 15).expect("reload");
        assert_eq!(idx.all(), vec![e(1, 0, 5), e(2, 8, 12)]);
        assert_eq!(idx.collect(6, 100), vec![e(2, 8, 12)]);
        assert_eq!(idx.collect(0, 8), vec![e(1, 0, 5)]);
        let mut idx = idx;
        idx.truncate_to(10).expect("truncate");
        assert!(!txn_index_path(dir.path(), 10).exists());
        idx.delete_below(10).expect("delete");
        assert!(idx.all().is_empty());
        assert!(!txn_index_path(dir.path(), 0).exists());
    }

    #[test]
    fn a_torn_trailing_entry_is_ignored() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut idx = TransactionIndex::load(dir.path(), 100).expect("load");
        idx.append(0, e(1, 0, 5)).expect("append");
        let path = txn_index_path(dir.path(), 0);
        let mut bytes = std::fs::read(&path).expect("read");
        bytes.extend_from_slice(&[0, 0, 1, 2]);
        std::fs::write(&path, bytes).expect("write");
        let idx = TransactionIndex::load(dir.path(), 100).expect("reload");
        assert_eq!(idx.all(), vec![e(1, 0, 5)]);
    }

    #[test]
    fn entries_repeated_across_files_load_once_in_marker_order() {
        let dir = tempfile::tempdir().expect("tmp");
        // Many entries, in descending order in one file, each repeated in a second file.
        let n = 20_000i64;
        let entries: Vec<u8> = (0..n).rev().flat_map(|i| e(i, i, i).encode()).collect();
        std::fs::write(txn_index_path(dir.path(), 0), &entries).expect("write");
        std::fs::write(txn_index_path(dir.path(), 5), &entries).expect("write");
        let idx = TransactionIndex::load(dir.path(), n).expect("load");
        let all = idx.all();
        assert_eq!(all.len(), n as usize);
        assert!(all.windows(2).all(|w| w[0].last_offset < w[1].last_offset));
    }
}
