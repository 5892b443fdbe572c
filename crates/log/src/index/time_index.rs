//! `TimeIndex`: the `.timeindex` file, 12-byte entries of (timestamp: i64, offset − base: u32).
//!
//! Entry i says "no batch before relative offset `o` has a max timestamp above `t`"; timestamps
//! only grow. A lookup for T returns the last entry with timestamp ≤ T... the scan for the first
//! batch whose max timestamp ≥ T starts from the entry before.

use parking_lot::RwLock;

const ENTRY_SIZE: usize = 12;

/// A (timestamp, relative offset) pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimestampOffset {
    pub(crate) timestamp: i64,
    pub(crate) relative_offset: u32,
}

/// In-memory time index of one segment.
#[derive(Debug)]
pub(crate) struct TimeIndex {
    entries: RwLock<Vec<TimestampOffset>>,
    max_entries: usize,
}

impl TimeIndex {
    pub(crate) fn new(max_bytes: u64) -> Self {
        TimeIndex {
            entries: RwLock::new(Vec::new()),
            max_entries: (max_bytes as usize / ENTRY_SIZE).max(1),
        }
    }

    /// Parses a file's bytes, `None` when they fail the sanity check.
    pub(crate) fn parse(bytes: &[u8], max_bytes: u64) -> Option<Self> {
        if !bytes.len().is_multiple_of(ENTRY_SIZE) {
            return None;
        }
        let mut entries: Vec<TimestampOffset> = Vec::with_capacity(bytes.len() / ENTRY_SIZE);
        for c in bytes.chunks_exact(ENTRY_SIZE) {
            let mut ts = [0u8; 8];
            ts.copy_from_slice(&c[0..8]);
            let e = TimestampOffset {
                timestamp: i64::from_be_bytes(ts),
                relative_offset: u32::from_be_bytes([c[8], c[9], c[10], c[11]]),
            };
            if let Some(p) = entries.last() {
                if e.timestamp < p.timestamp || e.relative_offset < p.relative_offset {
                    return None;
                }
            }
            entries.push(e);
        }
        let idx = TimeIndex::new(max_bytes);
        *idx.entries.write() = entries;
        Some(idx)
    }

    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let entries = self.entries.read();
        let mut out = Vec::with_capacity(entries.len() * ENTRY_SIZE);
        for e in entries.iter() {
            out.extend_from_slice(&e.timestamp.to_be_bytes());
            out.extend_from_slice(&e.relative_offset.to_be_bytes());
        }
        out
    }

    /// Adds an entry when `timestamp` is above the last one (Kafka's `maybeAppend`).
    pub(crate) fn maybe_append(&self, timestamp: i64, relative_offset: u32) {
        let mut entries = self.entries.write();
        if entries.last().is_none_or(|l| timestamp > l.timestamp) {
            entries.push(TimestampOffset {
                timestamp,
                relative_offset,
            });
        }
    }

    /// Relative offset to start scanning from when looking for the first timestamp ≥ `target`:
    /// the offset of the last entry whose timestamp is < `target`, or 0.
    pub(crate) fn lookup(&self, target: i64) -> u32 {
        let entries = self.entries.read();
        let i = entries.partition_point(|e| e.timestamp < target);
        if i == 0 {
            0
        } else {
            entries[i - 1].relative_offset
        }
    }

    pub(crate) fn last(&self) -> Option<TimestampOffset> {
        self.entries.read().last().copied()
    }

    pub(crate) fn is_full(&self) -> bool {
        self.entries.read().len() >= self.max_entries
    }

    /// Drops entries at or past `relative_offset` (log truncation).
    pub(crate) fn truncate_to_offset(&self, relative_offset: u32) {
        self.entries
            .write()
            .retain(|e| e.relative_offset < relative_offset);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_and_round_trip() {
        let idx = TimeIndex::new(1 << 20);
        idx.maybe_append(100, 5);
        idx.maybe_append(100, 7);
        idx.maybe_append(200, 9);
        assert_eq!(idx.lookup(50), 0);
        assert_eq!(idx.lookup(100), 0);
        assert_eq!(idx.lookup(150), 5);
        assert_eq!(idx.lookup(500), 9);
        let p = TimeIndex::parse(&idx.to_bytes(), 1 << 20).expect("sane");
        assert_eq!(p.lookup(150), 5);
        assert!(TimeIndex::parse(&[1u8; 13], 1 << 20).is_none());
    }
}
