//! Log divergence between a leader and a follower (KIP-101, KIP-279, KIP-320): the epoch-cache
//! lookup both sides use, the leader's check of a Fetch's last fetched epoch, and the offset a
//! follower truncates to when the leader answers with a diverging epoch.
//!
//! An epoch cache is Kafka's `LeaderEpochFileCache`: `(epoch, start_offset)` pairs, ascending in
//! both, one per leader epoch that wrote (or, for a leader, began) at that offset.

/// Kafka's `UNDEFINED_EPOCH`: no epoch is known.
pub const UNDEFINED_EPOCH: i32 = -1;
/// Kafka's `UNDEFINED_EPOCH_OFFSET`: no end offset is known.
pub const UNDEFINED_EPOCH_OFFSET: i64 = -1;

/// The largest epoch `<= requested` in `epochs` and the offset where it ends (the start of the
/// next cached epoch, or `log_end` for the latest), as Kafka's `LeaderEpochFileCache.endOffsetFor`.
///
/// A requested epoch below every cached one answers `(requested, start of the first epoch)`:
/// nothing in this log belongs to it, so it "ends" where the log's epochs begin. An unknown
/// (negative) request, an empty cache, or a request past the latest cached epoch answers
/// `(UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET)`; the last cannot happen on a leader, whose cache
/// always holds its own epoch, the largest in the partition.
pub fn end_offset_for_epoch(epochs: &[(i32, i64)], requested: i32, log_end: i64) -> (i32, i64) {
    let undefined = (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET);
    if requested < 0 {
        return undefined;
    }
    match epochs.last() {
        None => undefined,
        Some(&(latest, _)) if latest == requested => (requested, log_end),
        Some(_) => {
            let Some(higher) = epochs.iter().position(|&(e, _)| e > requested) else {
                return undefined;
            };
            let end = epochs[higher].1;
            match higher.checked_sub(1) {
                Some(floor) => (epochs[floor].0, end),
                None => (requested, end),
            }
        }
    }
}

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
