//! `OffsetMap`: key → latest offset over a log's dirty section (Kafka's `SkimpyOffsetMap`).
//!
//! Kafka stores 16-byte MD5 digests of keys in a fixed buffer and accepts the (tiny) chance of a
//! collision dropping a record. Strom stores the keys themselves, so two keys never alias; the
//! memory bound (`log.cleaner.dedupe.buffer.size` per thread) is enforced by counting key bytes
//! plus a per-entry overhead, and the cleaner stops the dirty section at the segment where the
//! map fills (the next pass cleans the rest). Not thread-safe: one cleaner thread owns one map.

use std::collections::HashMap;

/// Approximate bytes per entry beyond the key: hash slot, box header, offset.
const ENTRY_OVERHEAD: u64 = 48;

/// Latest offset per key.
#[derive(Debug)]
pub(crate) struct OffsetMap {
    map: HashMap<Box<[u8]>, i64>,
    bytes: u64,
    limit: u64,
}

impl OffsetMap {
    /// An empty map that reports full past `limit` bytes.
    pub(crate) fn new(limit: u64) -> Self {
        OffsetMap {
            map: HashMap::new(),
            bytes: 0,
            limit,
        }
    }

    /// Records `offset` for `key` if it is later than what the map holds.
    pub(crate) fn put(&mut self, key: &[u8], offset: i64) {
        if let Some(v) = self.map.get_mut(key) {
            if offset > *v {
                *v = offset;
            }
            return;
        }
        self.bytes += key.len() as u64 + ENTRY_OVERHEAD;
        self.map.insert(key.into(), offset);
    }

    /// The latest offset seen for `key`.
    pub(crate) fn get(&self, key: &[u8]) -> Option<i64> {
        self.map.get(key).copied()
    }

    /// True once the map uses its memory budget.
    pub(crate) fn is_full(&self) -> bool {
        self.bytes >= self.limit
    }

    /// Number of distinct keys.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_latest_offset_and_counts_memory() {
        let mut m = OffsetMap::new(200);
        m.put(b"a", 5);
        m.put(b"a", 3);
        m.put(b"b", 7);
        assert_eq!(m.get(b"a"), Some(5));
        assert_eq!(m.get(b"b"), Some(7));
        assert_eq!(m.get(b"c"), None);
        assert_eq!(m.len(), 2);
        assert!(!m.is_full());
        m.put(
            b"cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc",
            9,
        );
        assert!(m.is_full());
    }
}
