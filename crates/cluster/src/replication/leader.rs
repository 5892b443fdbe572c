//! `LeaderState`: what a partition leader knows about its followers, and the decisions it draws
//! from that (Kafka's `Partition` + `Replica` bookkeeping): the high-watermark bound, when a
//! follower is caught up, when to shrink or expand the ISR.
//!
//! Pure and clock-free (callers pass `now_ms`), so the broker's data plane and the deterministic
//! simulation run the same code.
//!
//! ISR changes go through the controller (AlterPartition) and take a round trip to commit. While
//! one is in flight the leader uses the *maximal* ISR (committed ∪ proposed), as Kafka does since
//! KIP-497: a follower being added already counts for the high watermark (it is caught up), and a
//! follower being removed still counts until the controller confirms, so the high watermark never
//! covers a record that the committed ISR does not hold.

use std::collections::BTreeMap;

use crate::metadata::PartitionImage;

/// One follower's progress as seen by the leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowerProgress {
    /// The follower's log end offset (its last fetch offset); -1 until it fetches.
    pub log_end: i64,
    /// When it last fetched.
    pub last_fetch_ms: i64,
    /// The last time it was caught up with the leader's log end.
    pub last_caught_up_ms: i64,
    /// The leader's log end offset at the follower's previous fetch.
    last_fetch_leader_log_end: i64,
}

/// What a follower fetch changed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FollowerFetchOutcome {
    /// The follower caught up and is not in the ISR: propose this ISR to the controller.
    pub expand_isr: Option<Vec<i32>>,
}

/// A partition leader's view of its replicas.
#[derive(Debug, Clone)]
pub struct LeaderState {
    me: i32,
    leader_epoch: i32,
    partition_epoch: i32,
    replicas: Vec<i32>,
    /// The ISR the controller committed.
    isr: Vec<i32>,
    /// An ISR sent to the controller and not yet confirmed.
    pending_isr: Option<Vec<i32>>,
    /// First offset written in this leader epoch: a follower must reach it to join the ISR (it
    /// then holds everything earlier leaders committed).
    epoch_start_offset: i64,
    /// The highest `min(bound, leader log end)` seen: at or above the high watermark, and never
    /// falling. A follower joins the ISR only at or above it. (The bound itself can fall: a
    /// delayed fetch may report an old log end; comparing against it admitted followers that
    /// lacked committed records — found by the simulation, seed 349.)
    hw_floor: i64,
    followers: BTreeMap<i32, FollowerProgress>,
}

impl LeaderState {
    /// State for a broker that just became leader of `p` with its log ending at
    /// `leader_log_end`. Followers start as caught up `now_ms`, so the ISR is not shrunk before
    /// they had `replica.lag.time.max.ms` to fetch from the new leader.
    pub fn new(
        me: i32,
        p: &PartitionImage,
        leader_log_end: i64,
        epoch_start_offset: i64,
        now_ms: i64,
    ) -> LeaderState {
        let followers = p
            .replicas
            .iter()
            .filter(|&&r| r != me)
            .map(|&r| {
                (
                    r,
                    FollowerProgress {
                        log_end: -1,
                        last_fetch_ms: now_ms,
                        last_caught_up_ms: now_ms,
                        last_fetch_leader_log_end: leader_log_end,
                    },
                )
            })
            .collect();
        LeaderState {
            me,
            leader_epoch: p.leader_epoch,
            partition_epoch: p.partition_epoch,
            replicas: p.replicas.clone(),
            isr: p.isr.clone(),
            pending_isr: None,
            epoch_start_offset,
            hw_floor: -1,
            followers,
        }
    }

    /// The leader epoch this state belongs to.
    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch
    }

    /// The partition epoch of the last committed state (AlterPartition requests carry it).
    pub fn partition_epoch(&self) -> i32 {
        self.partition_epoch
    }

    /// The committed ISR.
    pub fn isr(&self) -> &[i32] {
        &self.isr
    }

    /// True while an ISR change is waiting for the controller.
    pub fn isr_change_pending(&self) -> bool {
        self.pending_isr.is_some()
    }

    /// Committed ISR ∪ pending ISR: the replicas that count for the high watermark and for
    /// `min.insync.replicas`.
    pub fn maximal_isr(&self) -> Vec<i32> {
        let mut out = self.isr.clone();
        if let Some(p) = &self.pending_isr {
            for r in p {
                if !out.contains(r) {
                    out.push(*r);
                }
            }
        }
        out
    }

    /// A follower's progress, if it is a replica.
    pub fn follower(&self, id: i32) -> Option<&FollowerProgress> {
        self.followers.get(&id)
    }

    /// Records a fetch from `follower` at `fetch_offset` (its log end) while the leader's log
    /// ends at `leader_log_end`. Returns an ISR expansion when the follower has caught up.
    pub fn on_follower_fetch(
        &mut self,
        follower: i32,
        fetch_offset: i64,
        leader_log_end: i64,
        now_ms: i64,
    ) -> FollowerFetchOutcome {
        self.hw_floor = self
            .hw_floor
            .max(self.high_watermark_bound().min(leader_log_end));
        let Some(f) = self.followers.get_mut(&follower) else {
            return FollowerFetchOutcome::default();
        };
        // Kafka's Replica.updateFetchState: caught up now if it has everything the leader has;
        // caught up as of its previous fetch if it has what the leader had then.
        if fetch_offset >= leader_log_end {
            f.last_caught_up_ms = f.last_caught_up_ms.max(now_ms);
        } else if fetch_offset >= f.last_fetch_leader_log_end {
            f.last_caught_up_ms = f.last_caught_up_ms.max(f.last_fetch_ms);
        }
        f.log_end = fetch_offset;
        f.last_fetch_leader_log_end = leader_log_end;
        f.last_fetch_ms = now_ms;
        let log_end = f.log_end;
        let mut outcome = FollowerFetchOutcome::default();
        let maximal = self.maximal_isr();
        if !maximal.contains(&follower) && self.pending_isr.is_none() {
            // Caught up: holds everything the high watermark covers and everything this leader
            // epoch wrote before it, so adding it never lowers the high watermark.
            if log_end >= self.hw_floor && log_end >= self.epoch_start_offset {
                let mut isr = self.isr.clone();
                isr.push(follower);
                outcome.expand_isr = Some(isr);
            }
        }
        outcome
    }

    /// The highest offset the high watermark may reach on replication grounds: the smallest log
    /// end among the (maximal) ISR's followers; `i64::MAX` when the leader is alone in the ISR
    /// (its own durable end is the only limit). An ISR follower that has not fetched from this
    /// leader yet counts as `-1`: the bound holds the high watermark where it is (the log never
    /// moves it backwards) until that follower reports.
    pub fn high_watermark_bound(&self) -> i64 {
        self.maximal_isr()
            .iter()
            .filter(|&&r| r != self.me)
            .map(|r| self.followers.get(r).map_or(-1, |f| f.log_end))
            .min()
            .unwrap_or(i64::MAX)
    }

    /// The ISR without followers that have not caught up within `lag_max_ms`, when that differs
    /// from the committed ISR and no change is pending. The leader never removes itself.
    pub fn maybe_shrink_isr(&self, now_ms: i64, lag_max_ms: i64) -> Option<Vec<i32>> {
        if self.pending_isr.is_some() {
            return None;
        }
        let keep: Vec<i32> = self
            .isr
            .iter()
            .copied()
            .filter(|&r| {
                r == self.me
                    || self
                        .followers
                        .get(&r)
                        .is_some_and(|f| now_ms - f.last_caught_up_ms <= lag_max_ms)
            })
            .collect();
        (keep.len() != self.isr.len()).then_some(keep)
    }

    /// An AlterPartition with `new_isr` was sent to the controller.
    pub fn isr_change_sent(&mut self, new_isr: Vec<i32>) {
        self.pending_isr = Some(new_isr);
    }

    /// The controller refused the change as INELIGIBLE_REPLICA: forget it (the next fetch or
    /// shrink check proposes again from the committed state). Call it for nothing else: after a
    /// timeout or another error the change may have been applied, and forgetting an applied
    /// expansion would let the high watermark pass a member of the committed ISR.
    pub fn isr_change_failed(&mut self) {
        self.pending_isr = None;
    }

    /// A new committed partition state with the same leader epoch (ISR or replicas changed).
    pub fn on_partition_change(&mut self, p: &PartitionImage) {
        self.partition_epoch = p.partition_epoch;
        self.isr = p.isr.clone();
        self.pending_isr = None;
        self.replicas = p.replicas.clone();
        let now_followers: Vec<i32> = p
            .replicas
            .iter()
            .copied()
            .filter(|&r| r != self.me)
            .collect();
        self.followers.retain(|id, _| now_followers.contains(id));
        for r in now_followers {
            self.followers.entry(r).or_insert(FollowerProgress {
                log_end: -1,
                last_fetch_ms: 0,
                last_caught_up_ms: 0,
                last_fetch_leader_log_end: 0,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(isr: &[i32]) -> PartitionImage {
        PartitionImage {
            replicas: vec![1, 2, 3],
            isr: isr.to_vec(),
            leader: 1,
            leader_epoch: 5,
            partition_epoch: 9,
        }
    }

    #[test]
    fn bound_is_min_follower_end_over_isr_and_max_when_alone() {
        let mut s = LeaderState::new(1, &part(&[1, 2, 3]), 100, 100, 0);
        assert_eq!(s.high_watermark_bound(), -1, "followers not fetched yet");
        s.on_follower_fetch(2, 100, 120, 1);
        s.on_follower_fetch(3, 110, 120, 1);
        assert_eq!(s.high_watermark_bound(), 100);
        let alone = LeaderState::new(1, &part(&[1]), 100, 100, 0);
        assert_eq!(alone.high_watermark_bound(), i64::MAX);
    }

    #[test]
    fn lagging_follower_is_shrunk_after_lag_time_and_counts_until_confirmed() {
        let mut s = LeaderState::new(1, &part(&[1, 2, 3]), 100, 100, 0);
        s.on_follower_fetch(2, 100, 100, 1_000);
        s.on_follower_fetch(3, 50, 100, 1_000);
        // 3 was caught up at construction (t=0) and never since.
        assert_eq!(s.maybe_shrink_isr(20_000, 30_000), None);
        s.on_follower_fetch(2, 100, 100, 30_500);
        let shrunk = s.maybe_shrink_isr(30_500, 30_000).expect("shrink");
        assert_eq!(shrunk, vec![1, 2]);
        s.isr_change_sent(shrunk.clone());
        // Until the controller confirms, 3 still holds the bound down.
        assert_eq!(s.high_watermark_bound(), 50);
        assert_eq!(
            s.maybe_shrink_isr(31_000, 30_000),
            None,
            "one change at a time"
        );
        s.on_partition_change(&PartitionImage {
            isr: shrunk,
            partition_epoch: 10,
            ..part(&[])
        });
        assert_eq!(s.high_watermark_bound(), 100);
        assert_eq!(s.partition_epoch(), 10);
    }

    #[test]
    fn follower_that_keeps_up_with_the_previous_fetch_stays_caught_up() {
        let mut s = LeaderState::new(1, &part(&[1, 2]), 0, 0, 0);
        // The leader keeps appending; the follower always has what the leader had at its
        // previous fetch: it is never "at the end" yet never lagging.
        for t in 1..100 {
            s.on_follower_fetch(2, (t - 1) * 10, t * 10, t * 1_000);
        }
        assert_eq!(s.maybe_shrink_isr(99_000, 30_000), None);
        assert!(s.follower(2).expect("f").last_caught_up_ms >= 97_000);
    }

    #[test]
    fn out_of_sync_follower_rejoins_when_it_reaches_hw_and_epoch_start() {
        let mut s = LeaderState::new(1, &part(&[1, 2]), 200, 150, 0);
        s.on_follower_fetch(2, 200, 200, 1);
        // 3 is behind the bound (200): not yet.
        assert_eq!(s.on_follower_fetch(3, 120, 200, 1).expand_isr, None);
        let out = s.on_follower_fetch(3, 200, 210, 2);
        assert_eq!(out.expand_isr, Some(vec![1, 2, 3]));
        s.isr_change_sent(vec![1, 2, 3]);
        // Maximal ISR: 3 counts at once.
        assert_eq!(s.maximal_isr(), vec![1, 2, 3]);
        assert_eq!(s.on_follower_fetch(3, 210, 210, 3).expand_isr, None);
    }

    #[test]
    fn follower_below_epoch_start_does_not_join() {
        let mut s = LeaderState::new(1, &part(&[1]), 300, 300, 0);
        // Alone in the ISR, the bound is MAX; the floor is the leader's log end, then the epoch start.
        assert_eq!(s.on_follower_fetch(2, 250, 300, 1).expand_isr, None);
        assert_eq!(
            s.on_follower_fetch(2, 300, 300, 2).expand_isr,
            Some(vec![1, 2])
        );
    }
}
