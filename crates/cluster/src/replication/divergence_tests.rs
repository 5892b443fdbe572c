//! Unit tests for `divergence`: the epoch-cache lookup, the leader's check, the follower's
//! truncation, and a randomized leader/follower reconciliation loop.

use super::*;

#[test]
fn end_offset_for_epoch_follows_kafkas_epoch_cache() {
    let cache = [(1, 0), (3, 5), (6, 12)];
    assert_eq!(
        end_offset_for_epoch(&cache, 6, 20),
        (6, 20),
        "latest ends at log end"
    );
    assert_eq!(end_offset_for_epoch(&cache, 3, 20), (3, 12));
    assert_eq!(end_offset_for_epoch(&cache, 1, 20), (1, 5));
    assert_eq!(end_offset_for_epoch(&cache, 4, 20), (3, 12), "floor epoch");
    assert_eq!(
        end_offset_for_epoch(&cache, 0, 20),
        (0, 0),
        "below every epoch"
    );
    let undefined = (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET);
    assert_eq!(
        end_offset_for_epoch(&cache, 7, 20),
        undefined,
        "past the latest"
    );
    assert_eq!(end_offset_for_epoch(&cache, -1, 20), undefined);
    assert_eq!(end_offset_for_epoch::<(i32, i64)>(&[], 2, 0), undefined);
}

#[test]
fn leader_reports_divergence_only_when_the_follower_is_not_a_prefix() {
    // Same epoch, leader's copy reaches the fetch offset: no divergence.
    assert_eq!(diverging_epoch(10, 3, (3, 10)), None);
    assert_eq!(diverging_epoch(10, 3, (3, 15)), None);
    // Leader's copy of epoch 3 ends before the follower's fetch offset.
    assert_eq!(diverging_epoch(12, 3, (3, 10)), Some((3, 10)));
    // Leader never had epoch 3.
    assert_eq!(diverging_epoch(12, 3, (2, 20)), Some((2, 20)));
    // An empty follower log cannot diverge.
    assert_eq!(diverging_epoch(0, UNDEFINED_EPOCH, (0, 0)), None);
}

fn follower(cache: &'static [(i32, i64)], log_end: i64) -> impl Fn(i32) -> (i32, i64) {
    move |e| end_offset_for_epoch(cache, e, log_end)
}

#[test]
fn same_epoch_truncates_to_the_shorter_copy() {
    // Follower has more of epoch 3 than the leader.
    assert_eq!(
        truncation_offset((3, 10), follower(&[(1, 0), (3, 4)], 15), 15),
        10
    );
    // Leader has more of epoch 3; the follower moved on to epoch 4 at 8.
    assert_eq!(
        truncation_offset((3, 10), follower(&[(3, 0), (4, 8)], 12), 12),
        8
    );
}

#[test]
fn smaller_follower_epoch_truncates_where_it_ends() {
    // Leader's diverging epoch 4 is unknown to the follower; its epoch 3 ends at 12.
    let f = follower(&[(1, 0), (3, 5), (5, 12)], 18);
    assert_eq!(truncation_offset((4, 20), &f, 18), 12);
}

#[test]
fn smaller_follower_epoch_is_bounded_by_the_leaders_end_offset() {
    let f = follower(&[(1, 0), (3, 5), (5, 12)], 18);
    assert_eq!(truncation_offset((4, 7), &f, 18), 7);
}

#[test]
fn follower_without_that_epoch_truncates_to_the_leaders_end_offset() {
    assert_eq!(truncation_offset((2, 6), follower(&[], 9), 9), 6);
    assert_eq!(truncation_offset((2, 6), follower(&[], 4), 4), 4);
}

#[test]
fn truncation_never_exceeds_the_log_end_nor_goes_negative() {
    assert_eq!(truncation_offset((3, 100), |_| (3, 100), 50), 50);
    assert_eq!(
        truncation_offset(
            (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET),
            follower(&[], 5),
            5
        ),
        0
    );
}

/// Epoch cache of a log given as one epoch per record, plus a leader's own epoch begun at its
/// log end (Kafka caches it on election, before any record of it).
fn cache_of(log: &[i32], current: Option<i32>) -> Vec<(i32, i64)> {
    let mut cache: Vec<(i32, i64)> = Vec::new();
    for (offset, &e) in log.iter().enumerate() {
        if cache.last().map(|&(last, _)| last) != Some(e) {
            cache.push((e, offset as i64));
        }
    }
    if let Some(e) = current {
        if cache.last().map(|&(last, _)| last) != Some(e) {
            cache.push((e, log.len() as i64));
        }
    }
    cache
}

/// Fetches until the follower's log is a prefix of the leader's, then copies the rest. Returns
/// the follower's log and the lowest offset it ever truncated to.
fn reconcile(leader: &[i32], leader_epoch: i32, mut f: Vec<i32>) -> (Vec<i32>, i64) {
    let leader_cache = cache_of(leader, Some(leader_epoch));
    let leader_end = leader.len() as i64;
    let mut lowest = f.len() as i64;
    for _round in 0..64 {
        let last = f.last().copied().unwrap_or(UNDEFINED_EPOCH);
        let answer = end_offset_for_epoch(&leader_cache, last, leader_end);
        match diverging_epoch(f.len() as i64, last, answer) {
            None => {
                f.extend_from_slice(&leader[f.len()..]);
                return (f, lowest);
            }
            Some(div) => {
                let fc = cache_of(&f, None);
                let end = f.len() as i64;
                let to = truncation_offset(div, |e| end_offset_for_epoch(&fc, e, end), end);
                lowest = lowest.min(to);
                f.truncate(to as usize);
            }
        }
    }
    panic!("no convergence: leader {leader:?} follower {f:?}");
}

#[test]
fn kip_279_scenario_converges() {
    // The follower got epoch 2 records the leader (epoch 3) never had.
    let (f, lowest) = reconcile(&[0, 0, 1, 1, 3, 3, 3], 3, vec![0, 0, 1, 2, 2]);
    assert_eq!(f, vec![0, 0, 1, 1, 3, 3, 3]);
    assert_eq!(lowest, 3);
}

/// xorshift64*: deterministic randomness without a dependency.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

/// A log of `len` records whose epochs rise from `first` through `epochs` (ascending).
fn tail(rng: &mut Rng, first: Option<i32>, epochs: &[i32], len: u64) -> Vec<i32> {
    let mut out = Vec::new();
    let mut choices: Vec<i32> = first.into_iter().chain(epochs.iter().copied()).collect();
    for _ in 0..len {
        if choices.len() > 1 && rng.below(3) == 0 {
            choices.remove(0);
        }
        if let Some(&e) = choices.first() {
            out.push(e);
        }
    }
    out
}

#[test]
fn random_divergent_logs_converge_without_losing_the_common_prefix() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for case in 0..5_000 {
        // Common prefix with nondecreasing epochs 0..=e.
        let prefix_len = rng.below(6);
        let mut prefix = Vec::new();
        let mut e = 0;
        for _ in 0..prefix_len {
            e += rng.below(2) as i32;
            prefix.push(e);
        }
        // Epochs after e go to the leader or to the follower, never both: one leader per epoch.
        let (mut mine, mut theirs) = (Vec::new(), Vec::new());
        for epoch in e + 1..e + 6 {
            if rng.below(2) == 0 {
                mine.push(epoch)
            } else {
                theirs.push(epoch)
            }
        }
        // At most one side continues epoch e past the common prefix.
        let continues = if prefix.is_empty() { 2 } else { rng.below(3) };
        let (leader_len, follower_len) = (rng.below(6), rng.below(5));
        let leader_tail = tail(&mut rng, (continues == 0).then_some(e), &mine, leader_len);
        let follower_tail = tail(
            &mut rng,
            (continues == 1).then_some(e),
            &theirs,
            follower_len,
        );
        let leader: Vec<i32> = prefix.iter().chain(&leader_tail).copied().collect();
        let f: Vec<i32> = prefix.iter().chain(&follower_tail).copied().collect();
        let leader_epoch = e + 6;
        let (got, lowest) = reconcile(&leader, leader_epoch, f.clone());
        assert_eq!(got, leader, "case {case}: leader {leader:?} follower {f:?}");
        let common = leader.iter().zip(&f).take_while(|(a, b)| a == b).count() as i64;
        assert!(
            lowest >= common.min(f.len() as i64),
            "case {case}: truncated to {lowest} below the common prefix {common}: \
             leader {leader:?} follower {f:?}"
        );
    }
}
