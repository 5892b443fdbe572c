//! `Quorum::propose`: decide on the local image, append through the Raft leader, retry on an
//! optimistic-concurrency conflict, and answer with the local image that holds the result.
//!
//! Checked before anything is sent: the records pass `MetadataImage::check` on the image they
//! were decided on, and the proposal fits one metadata log entry (`MAX_PROPOSAL_BYTES`). Records
//! are never split across entries: a proposal is what readers see appear at once (a topic with
//! all its partitions), so one too large is refused with `TooLarge`, not cut.

use std::sync::Arc;

use tokio::time::Instant;

use super::server::check_proposal_size;
use super::types::{ApplyOutcome, Proposal};
use super::wire::{Request, Response};
use super::{Quorum, QuorumError, RemoteError};
use crate::metadata::{MetadataImage, MetadataRecord};

/// How many times a proposal is re-decided after losing a race before giving up. Each loss means
/// another write landed, so this bounds starvation, not progress.
const MAX_ATTEMPTS: usize = 32;

impl Quorum {
    /// Runs `decide` against this node's current image and writes the records it returns as one
    /// entry, applied atomically. Records that break the metadata rules are refused with
    /// `Invalid`, a proposal over `MAX_PROPOSAL_BYTES` with `TooLarge`, before anything is
    /// written. If another write changed the image first, waits for this node
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
            image.check(&records)?;
            let proposal = Proposal {
                based_on: image.offset,
                records,
            };
            if let Err(RemoteError::ProposalTooLarge { bytes, limit }) =
                check_proposal_size(&proposal)
            {
                tracing::warn!(
                    bytes,
                    limit,
                    "proposal too large for one metadata entry; refused"
                );
                return Err(QuorumError::TooLarge { bytes, limit });
            }
            let answer = self
                .call_leader_until(Request::Propose(proposal), deadline)
                .await
                .map_err(|e| match e {
                    QuorumError::Remote(RemoteError::Invalid(r)) => QuorumError::Invalid(r),
                    QuorumError::Remote(RemoteError::ProposalTooLarge { bytes, limit }) => {
                        QuorumError::TooLarge { bytes, limit }
                    }
                    other => other,
                })?;
            let (index, outcome) = match answer {
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
                ApplyOutcome::Invalid => {
                    tracing::warn!(index, "proposal refused when applied");
                    return Err(QuorumError::RefusedOnApply(index));
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
