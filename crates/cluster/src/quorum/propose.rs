//! `Quorum::propose`: decide on the local image, append through the Raft leader, retry on an
//! optimistic-concurrency conflict, and answer with the local image that holds the result.

use std::sync::Arc;

use tokio::time::Instant;

use super::types::{ApplyOutcome, Proposal};
use super::wire::{Request, Response};
use super::{Quorum, QuorumError};
use crate::metadata::{MetadataImage, MetadataRecord};

/// How many times a proposal is re-decided after losing a race before giving up. Each loss means
/// another write landed, so this bounds starvation, not progress.
const MAX_ATTEMPTS: usize = 32;

impl Quorum {
    /// Runs `decide` against this node's current image and writes the records it returns as one
    /// entry, applied atomically. If another write changed the image first, waits for this node
    /// to see it and runs `decide` again (bounded). Returns `decide`'s value and this node's
    /// image once the entry is applied here. An empty record list returns at once, unwritten.
    ///
    /// The whole call, waiting for this node's earlier proposals included, takes at most the
    /// request timeout; past it the proposal fails with `TimedOut` or `NoController` (logged),
    /// though an entry that reached the leader may still commit (a retry then decides on an
    /// image that shows it).
    pub async fn propose<T>(
        &self,
        mut decide: impl FnMut(&MetadataImage) -> (Vec<MetadataRecord>, T),
    ) -> Result<(T, Arc<MetadataImage>), QuorumError> {
        let timeout = self.request_timeout();
        let deadline = Instant::now() + timeout;
        let Ok(_one_at_a_time) = tokio::time::timeout_at(deadline, self.propose_lock.lock()).await
        else {
            tracing::warn!(
                ?timeout,
                "proposal gave up waiting for this node's earlier proposals"
            );
            return Err(QuorumError::TimedOut {
                what: "waiting for earlier proposals",
                after: timeout,
            });
        };
        for attempt in 1..=MAX_ATTEMPTS {
            if self.is_stopped() {
                return Err(QuorumError::Stopped);
            }
            let image = self.image();
            let (records, value) = decide(&image);
            if records.is_empty() {
                return Ok((value, image));
            }
            let proposal = Proposal {
                based_on: image.offset,
                records,
            };
            let (index, outcome) = match self
                .call_leader_until(Request::Propose(proposal), deadline)
                .await?
            {
                Response::Proposed { index, outcome } => (index, outcome),
                other => return Err(QuorumError::Protocol(format!("{other:?}"))),
            };
            let offset = i64::try_from(index + 1).unwrap_or(i64::MAX);
            // Applied or not, the entry's offset is where this node's image shows the outcome:
            // the records, or the write that beat them.
            let left = deadline.saturating_duration_since(Instant::now());
            let image = match self.wait_for_offset(offset, left).await {
                Ok(image) => image,
                Err(e) => {
                    tracing::warn!(index, error = %e, "proposal committed but not applied here in time");
                    return Err(e);
                }
            };
            match outcome {
                ApplyOutcome::Applied => return Ok((value, image)),
                ApplyOutcome::Conflict => {
                    tracing::debug!(attempt, index, "proposal conflicted; deciding again");
                }
                ApplyOutcome::NotProposal => {
                    return Err(QuorumError::Protocol(
                        "proposal applied as no proposal".into(),
                    ))
                }
            }
        }
        Err(QuorumError::Conflict(MAX_ATTEMPTS))
    }
}
