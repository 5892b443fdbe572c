//! `Quorum::propose`: decide on the local image, append through the Raft leader, retry on an
//! optimistic-concurrency conflict, and answer with the local image that holds the result.

use std::sync::Arc;
use std::time::Duration;

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
    pub async fn propose<T>(
        &self,
        mut decide: impl FnMut(&MetadataImage) -> (Vec<MetadataRecord>, T),
    ) -> Result<(T, Arc<MetadataImage>), QuorumError> {
        let _one_at_a_time = self.propose_lock.lock().await;
        let timeout = Duration::from_millis(self.cfg.request_timeout_ms);
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
            let (index, outcome) = match self.call_leader(Request::Propose(proposal)).await? {
                Response::Proposed { index, outcome } => (index, outcome),
                other => return Err(QuorumError::Protocol(format!("{other:?}"))),
            };
            let offset = i64::try_from(index + 1).unwrap_or(i64::MAX);
            // Applied or not, the entry's offset is where this node's image shows the outcome:
            // the records, or the write that beat them.
            let image = self.wait_for_offset(offset, timeout).await?;
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
