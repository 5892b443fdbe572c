//! `OffsetIndex`: the `.index` file, 8-byte entries of (offset − base: u32, position: u32), big-endian.
//!
//! Entry i says "the batch whose last offset is `base + relative` starts at byte `position`". A
//! lookup returns the greatest entry at or below the target; the reader scans forward from there.

use parking_lot::RwLock;

const ENTRY_SIZE: usize = 8;

/// A (relative offset, file position) pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OffsetPosition {
    /// Offset relative to the segment's base offset.
    pub(crate) relative_offset: u32,
    /// Byte position of the batch in the segment file.
    pub(crate) position: u32,
}

/// In-memory offset index of one segment.
#[derive(Debug)]
pub(crate) struct OffsetIndex {
    entries: RwLock<Vec<OffsetPosition>>,
    max_entries: usize,
}

impl OffsetIndex {
    pub(crate) fn new(max_bytes: u64) -> Self {
        OffsetIndex {
            entries: RwLock::new(Vec::new()),
            max_entries: (max_bytes as usize / ENTRY_SIZE).max(1),
        }
    }

    /// Parses a file's bytes, returning `None` when they fail the sanity check (bad length,
    /// entries out of order, or a position at or past `segment_size`).
    pub(crate) fn parse(bytes: &[u8], max_bytes: u64, segment_size: u64) -> Option<Self> {
        if !bytes.len().is_multiple_of(ENTRY_SIZE) {
            return None;
        }
        let mut entries = Vec::with_capacity(bytes.len() / ENTRY_SIZE);
        let mut prev: Option<OffsetPosition> = None;
        for chunk in bytes.chunks_exact(ENTRY_SIZE) {
            let e = OffsetPosition {
                relative_offset: u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]),
                position: u32::from_be_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]),
            };
            if u64::from(e.position) >= segment_size {
                return None;
            }
            if let Some(p) = prev {
                if e.relative_offset <= p.relative_offset || e.position <= p.position {
                    return None;
                }
            }
            prev = Some(e);
            entries.push(e);
        }
        let idx = OffsetIndex::new(max_bytes);
        *idx.entries.write() = entries;
        Some(idx)
    }

    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let entries = self.entries.read();
        let mut out = Vec::with_capacity(entries.len() * ENTRY_SIZE);
        for e in entries.iter() {
            out.extend_from_slice(&e.relative_offset.to_be_bytes());
            out.extend_from_slice(&e.position.to_be_bytes());
        }
        out
    }

    pub(crate) fn append(&self, relative_offset: u32, position: u32) {
        let mut entries = self.entries.write();
        if entries
            .last()
            .is_none_or(|l| relative_offset > l.relative_offset && position > l.position)
        {
            entries.push(OffsetPosition {
                relative_offset,
                position,
            });
        }
    }

    /// Greatest entry with `relative_offset <= target`, or position 0.
    pub(crate) fn lookup(&self, target_relative: u32) -> OffsetPosition {
        let entries = self.entries.read();
        let i = entries.partition_point(|e| e.relative_offset <= target_relative);
        if i == 0 {
            OffsetPosition {
                relative_offset: 0,
                position: 0,
            }
        } else {
            entries[i - 1]
        }
    }

    pub(crate) fn is_full(&self) -> bool {
        self.entries.read().len() >= self.max_entries
    }

    /// Drops entries at or past `position` (log truncation).
    pub(crate) fn truncate_to_position(&self, position: u32) {
        self.entries.write().retain(|e| e.position < position);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_is_floor() {
        let idx = OffsetIndex::new(1 << 20);
        idx.append(3, 100);
        idx.append(9, 400);
        idx.append(20, 900);
        assert_eq!(idx.lookup(0).position, 0);
        assert_eq!(idx.lookup(3).position, 100);
        assert_eq!(idx.lookup(8).position, 100);
        assert_eq!(idx.lookup(25).position, 900);
        let parsed = OffsetIndex::parse(&idx.to_bytes(), 1 << 20, 1000).expect("sane");
        assert_eq!(parsed.lookup(10).position, 400);
        assert!(OffsetIndex::parse(&idx.to_bytes(), 1 << 20, 800).is_none());
        assert!(OffsetIndex::parse(&[0u8; 7], 1 << 20, 800).is_none());
    }
}
