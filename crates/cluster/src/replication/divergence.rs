//! Log divergence between a leader and a follower (KIP-101, KIP-279, KIP-320): the epoch-cache
//! lookup both sides use, the leader's check of a Fetch's last fetched epoch, and the offset a
//! follower truncates to when the leader answers with a diverging epoch.
//!
//! An epoch cache is Kafka's `LeaderEpochFileCache` (`strom_log::LeaderEpochCache`):
//! `(epoch, start_offset)` pairs, ascending in both, one per leader epoch that wrote (or, for a
//! leader, began) at that offset.

/// The epoch-cache lookup both sides use (Kafka's `LeaderEpochFileCache.endOffsetFor`): one
/// implementation, the log's, over a cache's entries or a model's `(epoch, start)` pairs.
pub use strom_log::{end_offset_for_epoch, UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET};

/// The leader's check of a follower's Fetch (KIP-320): given the follower's fetch offset, the
/// epoch of its last record (`last_fetched_epoch`, negative when its log is empty) and the
/// leader's `end_offset_for_epoch(last_fetched_epoch)`, the diverging epoch to answer with, or
/// `None` when the follower's log is a prefix of the leader's up to `fetch_offset`.
///
/// The logs diverge when the leader has no such epoch (it answers a smaller one) or when the
/// leader's copy of that epoch ends before the follower's fetch offset.
pub fn diverging_epoch(
    fetch_offset: i64,
    last_fetched_epoch: i32,
    leader_end_offset_for: (i32, i64),
) -> Option<(i32, i64)> {
    if last_fetched_epoch < 0 {
        return None;
    }
    let (epoch, end) = leader_end_offset_for;
    (epoch < last_fetched_epoch || end < fetch_offset).then_some(leader_end_offset_for)
}

/// The offset a follower truncates its log to when a Fetch response carries the diverging epoch
/// `leader_diverging = (epoch, end_offset)` (Kafka's `AbstractFetcherThread`
/// `getOffsetTruncationState`). `follower_end_offset_for(e)` is the follower's
/// `end_offset_for_epoch(e)`.
///
/// - The follower has the leader's epoch: both logs agree up to where the shorter copy of that
///   epoch ends, so truncate to the smaller end offset.
/// - The follower's largest epoch below it is smaller: everything it holds after that epoch ends
///   belongs to epochs the leader never had, so truncate there. Kafka truncates to that offset
///   alone and lets the next Fetch find any further divergence; it is also bounded by the
///   leader's end offset here, because the leader's records from that offset on carry epochs
///   above the diverging one, which the follower's records there cannot have.
/// - The follower knows no epoch that old (undefined): truncate to the leader's end offset.
///
/// The result never exceeds `follower_log_end` and is never negative (an undefined leader end
/// offset means the leader has nothing to keep).
pub fn truncation_offset(
    leader_diverging: (i32, i64),
    follower_end_offset_for: impl Fn(i32) -> (i32, i64),
    follower_log_end: i64,
) -> i64 {
    let (leader_epoch, leader_end) = leader_diverging;
    let (follower_epoch, follower_end) = follower_end_offset_for(leader_epoch);
    let offset = if follower_end == UNDEFINED_EPOCH_OFFSET || follower_epoch == UNDEFINED_EPOCH {
        leader_end
    } else {
        // Equal epochs or a smaller follower epoch: the same bound, for the reasons above.
        follower_end.min(leader_end)
    };
    offset.min(follower_log_end).max(0)
}

#[cfg(test)]
#[path = "divergence_tests.rs"]
mod tests;
