//! `LeaderEpochCache` semantics (the cases of Kafka's `LeaderEpochFileCacheTest`), the checkpoint
//! file, and a property test against a model that remembers the epoch of every offset.
//!
//! Test-only: declared under #[cfg(test)] by its parent module.

use proptest::prelude::*;

use super::*;

fn cache(entries: &[(i32, i64)]) -> LeaderEpochCache {
    let mut c = LeaderEpochCache::new(Path::new("/nonexistent"));
    for (e, o) in entries {
        assert!(c.assign(*e, *o), "assign({e}, {o})");
    }
    c
}

fn pairs(c: &LeaderEpochCache) -> Vec<(i32, i64)> {
    c.entries()
        .iter()
        .map(|e| (e.epoch, e.start_offset))
        .collect()
}

#[test]
fn end_offset_for_latest_epoch_is_the_log_end() {
    let c = cache(&[(2, 6), (3, 8), (4, 9)]);
    assert_eq!(c.end_offset_for(4, 42), (4, 42));
}

#[test]
fn end_offset_for_undefined_or_untracked_epochs() {
    let empty = cache(&[]);
    assert_eq!(empty.end_offset_for(UNDEFINED_EPOCH, 0), (-1, -1));
    assert_eq!(empty.end_offset_for(5, 0), (-1, -1));
    let c = cache(&[(2, 100)]);
    assert_eq!(c.end_offset_for(3, 100), (-1, -1), "above the latest epoch");
    assert_eq!(c.end_offset_for(UNDEFINED_EPOCH, 100), (-1, -1));
}

#[test]
fn end_offset_for_below_the_first_epoch_is_the_first_start_offset() {
    let c = cache(&[(5, 11), (6, 12)]);
    assert_eq!(c.end_offset_for(4, 0), (4, 11));
}

#[test]
fn end_offset_for_an_earlier_epoch_is_the_next_epochs_start() {
    let mut c = cache(&[(1, 11), (2, 13), (3, 15)]);
    assert!(!c.assign(1, 12) && !c.assign(2, 14) && !c.assign(3, 16));
    assert_eq!(c.end_offset_for(2, 100), (2, 15));
    assert_eq!(c.end_offset_for(1, 100), (1, 13));
    // No exact epoch: the floor epoch and the start of the next one.
    let gaps = cache(&[(0, 10), (2, 13), (4, 17)]);
    assert_eq!(gaps.end_offset_for(1, 100), (0, 13));
    assert_eq!(gaps.end_offset_for(3, 100), (2, 17));
}

#[test]
fn assign_keeps_the_first_start_of_an_epoch_and_ignores_older_epochs() {
    let mut c = cache(&[(2, 6)]);
    assert!(!c.assign(2, 7), "same epoch, later offset");
    assert!(!c.assign(1, 8), "older epoch");
    assert!(!c.assign(-1, 9) && !c.assign(3, -1), "undefined values");
    assert_eq!(pairs(&c), vec![(2, 6)]);
    // Same epoch, earlier offset: moves the start down (Kafka does the same).
    assert!(c.assign(2, 5));
    assert_eq!(pairs(&c), vec![(2, 5)]);
}

#[test]
fn assign_drops_entries_a_newer_epoch_overwrites() {
    let mut c = cache(&[(2, 6), (3, 8)]);
    assert!(c.assign(4, 7));
    assert_eq!(pairs(&c), vec![(2, 6), (4, 7)]);
    assert!(c.assign(5, 6));
    assert_eq!(pairs(&c), vec![(5, 6)]);
}

#[test]
fn truncate_from_end_drops_entries_at_or_past_the_new_end() {
    let mut c = cache(&[(2, 6), (3, 8), (4, 11)]);
    assert!(!c.truncate_from_end(12));
    assert!(!c.truncate_from_end(UNDEFINED_EPOCH_OFFSET));
    assert!(c.truncate_from_end(9));
    assert_eq!(pairs(&c), vec![(2, 6), (3, 8)]);
    assert!(c.truncate_from_end(8));
    assert_eq!(pairs(&c), vec![(2, 6)]);
    assert!(c.truncate_from_end(0));
    assert_eq!(c.latest_epoch(), None);
}

#[test]
fn truncate_from_start_moves_the_spanning_entry_up() {
    let base = cache(&[(2, 6), (3, 8), (4, 11)]);
    let after = |start: i64| {
        let mut c = base.clone();
        c.truncate_from_start(start);
        pairs(&c)
    };
    assert_eq!(after(5), vec![(2, 6), (3, 8), (4, 11)]);
    assert_eq!(after(6), vec![(2, 6), (3, 8), (4, 11)]);
    assert_eq!(after(8), vec![(3, 8), (4, 11)]);
    assert_eq!(after(9), vec![(3, 9), (4, 11)]);
    assert_eq!(after(11), vec![(4, 11)]);
    assert_eq!(after(12), vec![(4, 12)]);
}

#[test]
fn epoch_for_offset_and_latest() {
    let c = cache(&[(1, 5), (3, 10), (4, 15)]);
    assert_eq!(c.epoch_for_offset(4), None);
    assert_eq!(c.epoch_for_offset(5), Some(1));
    assert_eq!(c.epoch_for_offset(9), Some(1));
    assert_eq!(c.epoch_for_offset(10), Some(3));
    assert_eq!(c.epoch_for_offset(1000), Some(4));
    assert_eq!(c.latest_epoch(), Some(4));
    assert_eq!(
        c.earliest_entry(),
        Some(EpochEntry {
            epoch: 1,
            start_offset: 5
        })
    );
}

#[test]
fn checkpoint_round_trip_in_kafkas_format() {
    let dir = tempfile::tempdir().expect("tmp");
    assert!(LeaderEpochCache::load(dir.path()).is_none(), "missing file");
    let mut c = LeaderEpochCache::new(dir.path());
    c.assign(0, 0);
    c.assign(3, 1200);
    c.write_checkpoint().expect("write");
    let text = std::fs::read_to_string(dir.path().join("leader-epoch-checkpoint")).expect("read");
    assert_eq!(text, "0\n2\n0 0\n3 1200\n");
    let back = LeaderEpochCache::load(dir.path()).expect("load");
    assert_eq!(back.entries(), c.entries());
    assert!(!dir.path().join("leader-epoch-checkpoint.tmp").exists());
}

#[test]
fn unreadable_checkpoints_read_as_missing() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("leader-epoch-checkpoint");
    for bad in [
        "1\n1\n0 0\n",        // unknown version
        "0\n2\n0 0\n",        // count mismatch
        "0\n1\n0 x\n",        // not a number
        "0\n2\n3 10\n2 20\n", // epochs out of order
        "0\n2\n2 10\n3 10\n", // offsets not increasing
        "0\n1\n0 0 extra\n",  // extra field
        "",                   // empty
    ] {
        std::fs::write(&path, bad).expect("write");
        assert!(LeaderEpochCache::load(dir.path()).is_none(), "{bad:?}");
    }
    std::fs::write(&path, "0\n0\n").expect("write");
    let empty = LeaderEpochCache::load(dir.path()).expect("empty is fine");
    assert!(empty.entries().is_empty());
}

/// What happens to a log, from the cache's point of view.
#[derive(Debug, Clone)]
enum Op {
    /// The leader appends `n` records in the latest epoch plus `bump`.
    Append { bump: i32, n: i64 },
    /// A new leader epoch starts at the log end without data yet.
    BecomeLeader { bump: i32 },
    /// The log is truncated to `end - back` (a follower's divergent tail).
    TruncateEnd { back: i64 },
    /// The log start moves up by `up` (retention, DeleteRecords).
    TruncateStart { up: i64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..3i32, 1..5i64).prop_map(|(bump, n)| Op::Append { bump, n }),
        1 => (1..3i32).prop_map(|bump| Op::BecomeLeader { bump }),
        1 => (1..8i64).prop_map(|back| Op::TruncateEnd { back }),
        1 => (0..8i64).prop_map(|up| Op::TruncateStart { up }),
    ]
}

/// The model: the epoch of every offset in `[start, start + epochs.len())`, and the latest epoch
/// (which may have written nothing yet).
#[derive(Debug, Default)]
struct Model {
    start: i64,
    epochs: Vec<i32>,
    latest: Option<i32>,
}

impl Model {
    fn end(&self) -> i64 {
        self.start + self.epochs.len() as i64
    }
    fn epoch_at(&self, offset: i64) -> Option<i32> {
        usize::try_from(offset - self.start)
            .ok()
            .and_then(|i| self.epochs.get(i).copied())
    }
    /// `endOffsetFor` computed from every offset's epoch.
    fn end_offset_for(&self, requested: i32) -> (i32, i64) {
        if requested == UNDEFINED_EPOCH {
            return (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET);
        }
        if self.latest == Some(requested) {
            return (requested, self.end());
        }
        let higher = (self.start..self.end())
            .find(|o| self.epoch_at(*o).is_some_and(|e| e > requested))
            .or_else(|| self.latest.filter(|l| *l > requested).map(|_| self.end()));
        let Some(higher) = higher else {
            return (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET);
        };
        let floor = self
            .epochs
            .iter()
            .copied()
            .chain(self.latest)
            .filter(|e| *e <= requested)
            .max();
        (floor.unwrap_or(requested), higher)
    }
}

proptest! {
    #[test]
    fn prop_cache_matches_a_per_offset_model(ops in proptest::collection::vec(op(), 1..40)) {
        let mut c = LeaderEpochCache::new(Path::new("/nonexistent"));
        let mut m = Model::default();
        for op in ops {
            match op {
                Op::Append { bump, n } => {
                    let epoch = m.latest.unwrap_or(0) + bump;
                    c.assign(epoch, m.end());
                    m.epochs.extend(std::iter::repeat_n(epoch, n as usize));
                    m.latest = Some(epoch);
                }
                Op::BecomeLeader { bump } => {
                    let epoch = m.latest.unwrap_or(0) + bump;
                    c.assign(epoch, m.end());
                    m.latest = Some(epoch);
                }
                Op::TruncateEnd { back } => {
                    let to = (m.end() - back).max(m.start);
                    if to < m.end() {
                        c.truncate_from_end(to);
                        m.epochs.truncate((to - m.start) as usize);
                        m.latest = m.epochs.last().copied();
                    }
                }
                Op::TruncateStart { up } => {
                    let to = (m.start + up).min(m.end());
                    c.truncate_from_start(to);
                    m.epochs.drain(..(to - m.start) as usize);
                    m.start = to;
                }
            }
            let e = c.entries();
            prop_assert!(e.windows(2).all(|w| w[0].epoch < w[1].epoch && w[0].start_offset < w[1].start_offset), "{e:?}");
            prop_assert_eq!(c.latest_epoch(), m.latest);
            for o in m.start..m.end() {
                prop_assert_eq!(c.epoch_for_offset(o), m.epoch_at(o), "offset {}", o);
            }
            for req in -1..m.latest.unwrap_or(0) + 2 {
                prop_assert_eq!(c.end_offset_for(req, m.end()), m.end_offset_for(req), "epoch {} in {:?}", req, e);
            }
        }
    }
}
