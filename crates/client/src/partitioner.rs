//! Choosing a partition for a record, compatible with the Java client: keyed records go to
//! `toPositive(murmur2(key)) % partitions` (so the same key lands on the same partition whichever
//! client wrote it); records without a key stick to one partition until about a batch's worth of
//! bytes went there, then move round-robin to the next (KIP-794's uniform sticky partitioning,
//! with round-robin instead of random choice).

/// Kafka's murmur2 (`org.apache.kafka.common.utils.Utils.murmur2`), bit for bit.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    // Java takes `seed ^ length` with length as an int; truncation matches for arrays < 2 GiB.
    let mut h: u32 = SEED ^ (data.len() as u32);
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    // Java's switch falls through from case 3 to case 1.
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// Java's `Utils.toPositive`: clears the sign bit (not `abs`, which overflows on `i32::MIN`).
pub fn to_positive(n: i32) -> i32 {
    n & 0x7fff_ffff
}

/// The partition of a keyed record, as the Java client's `BuiltInPartitioner.partitionForKey`.
/// `num_partitions` must be positive.
pub fn partition_for_key(key: &[u8], num_partitions: i32) -> i32 {
    to_positive(murmur2(key)) % num_partitions.max(1)
}

/// Sticky choice for records without a key, one per topic.
#[derive(Debug, Default)]
pub(crate) struct StickyPartitioner {
    current: Option<i32>,
    bytes_in_current: usize,
    next: u32,
}

impl StickyPartitioner {
    /// The partition for a keyless record of `record_bytes`; moves on once `batch_size` bytes have
    /// gone to the current partition, so batches fill up instead of trickling across partitions.
    pub(crate) fn partition(
        &mut self,
        num_partitions: i32,
        record_bytes: usize,
        batch_size: usize,
    ) -> i32 {
        let n = num_partitions.max(1);
        let current = match self.current {
            Some(p) if p < n && self.bytes_in_current < batch_size => p,
            _ => {
                let p = (self.next % n.unsigned_abs()) as i32;
                self.next = self.next.wrapping_add(1);
                self.current = Some(p);
                self.bytes_in_current = 0;
                p
            }
        };
        self.bytes_in_current += record_bytes;
        current
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_java() {
        // From Kafka's UtilsTest.testMurmur2.
        let cases: &[(&[u8], i32)] = &[
            (b"21", -973932308),
            (b"foobar", -790332482),
            (b"a-little-bit-long-string", -985981536),
            (b"a-little-bit-longer-string", -1486304829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58897971,
            ),
            (b"abc", 479470107),
        ];
        for (input, expected) in cases {
            assert_eq!(
                murmur2(input),
                *expected,
                "murmur2({:?})",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn keyed_partition_is_positive_and_stable() {
        assert_eq!(to_positive(i32::MIN), 0);
        assert_eq!(to_positive(-1), i32::MAX);
        // -973932308 & 0x7fffffff = 1173551340; % 3 = 0
        assert_eq!(partition_for_key(b"21", 3), 1_173_551_340 % 3);
        for n in 1..20 {
            let p = partition_for_key(b"foobar", n);
            assert!((0..n).contains(&p));
            assert_eq!(p, partition_for_key(b"foobar", n));
        }
    }

    #[test]
    fn sticky_switches_after_a_batch_worth() {
        let mut s = StickyPartitioner::default();
        let first = s.partition(3, 100, 250);
        assert_eq!(s.partition(3, 100, 250), first);
        assert_eq!(
            s.partition(3, 100, 250),
            first,
            "200 < 250 before this record"
        );
        let second = s.partition(3, 100, 250);
        assert_ne!(second, first);
        // Round-robin covers all partitions.
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..30 {
            seen.insert(s.partition(3, 1000, 250));
        }
        assert_eq!(seen.len(), 3);
    }
}
