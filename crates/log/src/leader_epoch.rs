//! `LeaderEpochCache`: which leader epoch wrote which offsets (Kafka's `LeaderEpochFileCache`).
//!
//! Followers use it to find where their log diverges from a new leader's (`OffsetsForLeaderEpoch`
//! → [`LeaderEpochCache::end_offset_for`]), consumers to detect truncation. Entries
//! `(epoch, start_offset)` are strictly increasing in both fields: epoch `e` wrote the offsets
//! from its start offset up to the next entry's start offset (or the log end, for the latest).
//!
//! On disk: `leader-epoch-checkpoint` in the partition directory, Kafka's format byte for byte:
//!
//! ```text
//! 0              version
//! 2              number of entries
//! 0 0            epoch startOffset
//! 3 1200
//! ```
//!
//! Replaced atomically (temporary file, fsync, rename, directory fsync). The file is written
//! before the batches it describes, so after a crash it may run ahead of the recovered log (the
//! loader truncates it to the log end), never behind. A missing or unreadable file is rebuilt
//! from the batches' `partitionLeaderEpoch` fields.
//!
//! Thread-safety: none of its own; `PartitionLog` keeps it behind a mutex taken after `appender`.

use std::path::{Path, PathBuf};

use crate::checkpoint;
use crate::error::Result;

/// The file name in a partition directory.
pub(crate) const LEADER_EPOCH_CHECKPOINT_FILE: &str = "leader-epoch-checkpoint";
/// Kafka's `UNDEFINED_EPOCH`.
pub const UNDEFINED_EPOCH: i32 = -1;
/// Kafka's `UNDEFINED_EPOCH_OFFSET`.
pub const UNDEFINED_EPOCH_OFFSET: i64 = -1;

/// One leader epoch and the first offset it wrote (Kafka's `EpochEntry`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEntry {
    /// The leader epoch.
    pub epoch: i32,
    /// The first offset written in it.
    pub start_offset: i64,
}

impl From<EpochEntry> for (i32, i64) {
    fn from(e: EpochEntry) -> Self {
        (e.epoch, e.start_offset)
    }
}

/// Kafka's `LeaderEpochFileCache.endOffsetFor` over `(epoch, start_offset)` entries ascending in
/// both (a cache's entries, or a model's in the simulation tests): see
/// [`LeaderEpochCache::end_offset_for`]. A negative request is undefined.
pub fn end_offset_for_epoch<E: Copy + Into<(i32, i64)>>(
    entries: &[E],
    requested_epoch: i32,
    log_end_offset: i64,
) -> (i32, i64) {
    const UNDEFINED: (i32, i64) = (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET);
    if requested_epoch < 0 {
        return UNDEFINED;
    }
    let pair = |e: &E| -> (i32, i64) { (*e).into() };
    if entries.last().map(|e| pair(e).0) == Some(requested_epoch) {
        return (requested_epoch, log_end_offset);
    }
    let Some((_, higher_start)) = entries.iter().map(pair).find(|(e, _)| *e > requested_epoch)
    else {
        return UNDEFINED;
    };
    match entries
        .iter()
        .rev()
        .map(pair)
        .find(|(e, _)| *e <= requested_epoch)
    {
        Some((floor, _)) => (floor, higher_start),
        None => (requested_epoch, higher_start),
    }
}

/// The leader epochs of one partition log. See the module docs.
#[derive(Debug, Clone)]
pub struct LeaderEpochCache {
    path: PathBuf,
    /// Strictly increasing in both epoch and start offset.
    entries: Vec<EpochEntry>,
}

impl LeaderEpochCache {
    /// An empty cache for the partition directory `dir`; nothing is written yet.
    pub fn new(dir: &Path) -> Self {
        LeaderEpochCache {
            path: dir.join(LEADER_EPOCH_CHECKPOINT_FILE),
            entries: Vec::new(),
        }
    }

    /// Reads `dir/leader-epoch-checkpoint`. `None` when it is missing or unreadable (wrong
    /// version or count, a malformed line, entries out of order): the caller rebuilds it.
    pub fn load(dir: &Path) -> Option<Self> {
        let mut cache = LeaderEpochCache::new(dir);
        let text = std::fs::read_to_string(&cache.path).ok()?;
        match parse(&text) {
            Some(entries) => {
                cache.entries = entries;
                Some(cache)
            }
            None => {
                tracing::warn!(file = %cache.path.display(), "unreadable leader epoch checkpoint; rebuilding it");
                None
            }
        }
    }

    /// Atomically replaces the checkpoint file with the current entries.
    pub fn write_checkpoint(&self) -> Result<()> {
        let lines: Vec<String> = self
            .entries
            .iter()
            .map(|e| format!("{} {}", e.epoch, e.start_offset))
            .collect();
        checkpoint::write_lines(&self.path, &lines)
    }

    /// Every entry, oldest first.
    pub fn entries(&self) -> &[EpochEntry] {
        &self.entries
    }

    /// The latest epoch, if any.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.entries.last().map(|e| e.epoch)
    }

    /// The latest entry, if any.
    pub fn latest_entry(&self) -> Option<EpochEntry> {
        self.entries.last().copied()
    }

    /// The earliest entry, if any.
    pub fn earliest_entry(&self) -> Option<EpochEntry> {
        self.entries.first().copied()
    }

    /// Records that `epoch` starts writing at `start_offset`. Returns true when the cache changed.
    ///
    /// A newer epoch is added after removing the entries at or past `start_offset` (Kafka's
    /// `maybeTruncateNonMonotonicEntries`: they describe offsets the new epoch overwrites). The
    /// latest epoch with a lower start offset moves its start down, as Kafka's does. Older epochs,
    /// negative epochs and negative offsets are ignored: only a leader's newer epoch can add one.
    pub fn assign(&mut self, epoch: i32, start_offset: i64) -> bool {
        if epoch < 0 || start_offset < 0 {
            return false;
        }
        let update = match self.entries.last() {
            None => true,
            Some(last) if epoch > last.epoch => true,
            Some(last) => epoch == last.epoch && start_offset < last.start_offset,
        };
        if !update {
            return false;
        }
        let removed = self.remove_from_end(|e| e.epoch >= epoch || e.start_offset >= start_offset);
        if removed > 1 {
            tracing::warn!(file = %self.path.display(), epoch, start_offset, removed, "new leader epoch replaced non-monotonic entries");
        }
        self.entries.push(EpochEntry {
            epoch,
            start_offset,
        });
        true
    }

    /// The log was truncated to `end_offset` (its new end): entries starting at or past it go.
    pub fn truncate_from_end(&mut self, end_offset: i64) -> bool {
        if end_offset < 0 {
            return false;
        }
        self.remove_from_end(|e| e.start_offset >= end_offset) > 0
    }

    /// The log start moved to `start_offset`: entries wholly below it go, and the one spanning it
    /// starts there (Kafka's `truncateFromStart`).
    pub fn truncate_from_start(&mut self, start_offset: i64) -> bool {
        let below = self
            .entries
            .iter()
            .take_while(|e| e.start_offset <= start_offset)
            .count();
        let Some(spanning) = below.checked_sub(1).map(|i| self.entries[i]) else {
            return false;
        };
        if below == 1 && spanning.start_offset == start_offset {
            return false;
        }
        self.entries.drain(..below);
        self.entries.insert(
            0,
            EpochEntry {
                epoch: spanning.epoch,
                start_offset,
            },
        );
        true
    }

    /// Removes every entry (the log was emptied and restarted elsewhere).
    pub fn clear(&mut self) -> bool {
        let changed = !self.entries.is_empty();
        self.entries.clear();
        changed
    }

    /// Kafka's `endOffsetFor`: the largest epoch ≤ `requested_epoch` and the offset where it
    /// ended (the start of the next epoch; `log_end_offset` for the latest epoch).
    ///
    /// - `requested_epoch` is the latest epoch: `(latest, log_end_offset)`;
    /// - undefined, above every epoch, or no entries: `(UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET)`;
    /// - below the first epoch: `(requested_epoch, first start offset)`: the data before it was
    ///   deleted, and the follower must not keep anything past where the leader's log starts;
    /// - otherwise `(floor epoch, start offset of the next higher epoch)`.
    pub fn end_offset_for(&self, requested_epoch: i32, log_end_offset: i64) -> (i32, i64) {
        end_offset_for_epoch(&self.entries, requested_epoch, log_end_offset)
    }

    /// The epoch that wrote `offset` (Kafka's `epochForOffset`): the latest entry starting at or
    /// below it. `None` below the first entry.
    pub fn epoch_for_offset(&self, offset: i64) -> Option<i32> {
        self.entries
            .iter()
            .take_while(|e| e.start_offset <= offset)
            .last()
            .map(|e| e.epoch)
    }

    fn remove_from_end(&mut self, doomed: impl Fn(&EpochEntry) -> bool) -> usize {
        let keep = self
            .entries
            .iter()
            .rposition(|e| !doomed(e))
            .map_or(0, |i| i + 1);
        let removed = self.entries.len() - keep;
        self.entries.truncate(keep);
        removed
    }
}

/// Parses the checkpoint text; `None` when anything is off.
pub(crate) fn parse(text: &str) -> Option<Vec<EpochEntry>> {
    let mut lines = text.lines();
    if lines.next()?.trim() != "0" {
        return None;
    }
    let count: usize = lines.next()?.trim().parse().ok()?;
    let mut entries: Vec<EpochEntry> = Vec::with_capacity(count.min(1024));
    for line in lines {
        if line.trim().is_empty() {
            continue;
        }
        let mut parts = line.split_whitespace();
        let epoch: i32 = parts.next()?.parse().ok()?;
        let start_offset: i64 = parts.next()?.parse().ok()?;
        if parts.next().is_some() || epoch < 0 || start_offset < 0 {
            return None;
        }
        if let Some(last) = entries.last() {
            if epoch <= last.epoch || start_offset <= last.start_offset {
                return None;
            }
        }
        entries.push(EpochEntry {
            epoch,
            start_offset,
        });
    }
    (entries.len() == count).then_some(entries)
}

#[cfg(test)]
#[path = "leader_epoch_tests.rs"]
mod tests;
