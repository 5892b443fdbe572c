//! `Quorum::propose`: decide on the local image, append through the Raft leader, retry on an
//! optimistic-concurrency conflict, and answer with the local image that holds the result.
//!
//! Checked before anything is sent: the records pass `MetadataImage::check` on the image they
//! were decided on, and the proposal is at most `MAX_PROPOSAL_BYTES` (else `TooLarge`). One over
//! `MAX_ENTRY_BYTES` is sent as several entries of one group (`ProposalPart`), in order, in one
//! `ProposeGroup` request; the state machine applies them together at the last one (`staging`),
//! so the image readers see never holds part of a proposal (a topic without some of its
//! partitions).

use std::sync::Arc;

use tokio::time::Instant;
use uuid::Uuid;

use super::types::{
    ApplyOutcome, Proposal, ProposalPart, MAX_ENTRY_BYTES, MAX_PROPOSAL_BYTES, MAX_PROPOSAL_PARTS,
};
use super::wire::{json_len, Request, Response};
use super::{Quorum, QuorumError, RemoteError};
use crate::metadata::{MetadataImage, MetadataRecord};

/// How many times a proposal is re-decided after losing a race before giving up. Each loss means
/// another write landed, so this bounds starvation, not progress.
const MAX_ATTEMPTS: usize = 32;

/// Room in an entry for what surrounds the records (`based_on`, the part, brackets).
const ENTRY_OVERHEAD: usize = 256;

/// The records in entry-sized chunks, in order; `TooLarge` when they exceed
/// `MAX_PROPOSAL_BYTES` or one record cannot fit an entry.
fn split(records: Vec<MetadataRecord>) -> Result<Vec<Vec<MetadataRecord>>, QuorumError> {
    let budget = MAX_ENTRY_BYTES - ENTRY_OVERHEAD;
    let mut chunks = Vec::new();
    let mut chunk = Vec::new();
    let (mut used, mut total) = (0usize, 0usize);
    for r in records {
        let bytes = json_len(&r).map_err(|e| QuorumError::Protocol(e.to_string()))? + 1;
        total += bytes;
        if total > MAX_PROPOSAL_BYTES {
            return Err(QuorumError::TooLarge {
                bytes: total,
                limit: MAX_PROPOSAL_BYTES,
            });
        }
        if bytes > budget {
            return Err(QuorumError::TooLarge {
                bytes,
                limit: budget,
            });
        }
        if used + bytes > budget {
            chunks.push(std::mem::take(&mut chunk));
            used = 0;
        }
        used += bytes;
        chunk.push(r);
    }
    chunks.push(chunk);
    Ok(chunks)
}

/// Errors the leader answers that mean the same as the local checks.
fn local_kind(e: QuorumError) -> QuorumError {
    match e {
        QuorumError::Remote(RemoteError::Invalid(r)) => QuorumError::Invalid(r),
        QuorumError::Remote(RemoteError::ProposalTooLarge { bytes, limit }) => {
            QuorumError::TooLarge { bytes, limit }
        }
        other => other,
    }
}

impl Quorum {
    /// Runs `decide` against this node's current image and writes the records it returns as one
    /// proposal, applied atomically. Records that break the metadata rules are refused with
    /// `Invalid`, a proposal over `MAX_PROPOSAL_BYTES` with `TooLarge`, before anything is
    /// written. If another write changed the image first, waits for this node to see it and runs
    /// `decide` again (bounded). Returns `decide`'s value and this node's image once the
    /// proposal is applied here. An empty record list returns at once, unwritten.
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
            let chunks = split(records).inspect_err(|e| {
                tracing::warn!(error = %e, "proposal too large; refused");
            })?;
            let (index, outcome) = self.send_parts(image.offset, chunks, deadline).await?;
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
                ApplyOutcome::Staged | ApplyOutcome::NotProposal => {
                    return Err(QuorumError::Protocol(format!(
                        "proposal answered {outcome:?}"
                    )))
                }
            }
        }
        Err(QuorumError::Conflict(MAX_ATTEMPTS))
    }

    /// Sends one proposal's chunks (one entry, or a split proposal's parts in one request) and
    /// returns the index and outcome of the entry that decided it.
    async fn send_parts(
        &self,
        based_on: i64,
        chunks: Vec<Vec<MetadataRecord>>,
        deadline: Instant,
    ) -> Result<(u64, ApplyOutcome), QuorumError> {
        let count = u32::try_from(chunks.len()).unwrap_or(u32::MAX);
        if count > MAX_PROPOSAL_PARTS {
            return Err(QuorumError::TooLarge {
                bytes: chunks.len().saturating_mul(MAX_ENTRY_BYTES),
                limit: MAX_PROPOSAL_BYTES,
            });
        }
        let group = Uuid::new_v4();
        let mut parts: Vec<Proposal> = (0..count)
            .zip(chunks)
            .map(|(index, records)| Proposal {
                based_on,
                records,
                part: Some(ProposalPart {
                    group,
                    index,
                    count,
                }),
            })
            .collect();
        let req = match parts.pop() {
            Some(mut whole) if parts.is_empty() => {
                whole.part = None;
                Request::Propose(whole)
            }
            Some(last) => {
                parts.push(last);
                tracing::debug!(count, "proposal split across entries");
                Request::ProposeGroup(parts)
            }
            None => return Err(QuorumError::Protocol("a proposal without records".into())),
        };
        match self
            .call_leader_until(req, deadline)
            .await
            .map_err(local_kind)?
        {
            Response::Proposed { index, outcome } => Ok((index, outcome)),
            other => Err(QuorumError::Protocol(format!("{other:?}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(len: usize) -> MetadataRecord {
        MetadataRecord::Config {
            resource_type: crate::metadata::ConfigResourceType::Topic,
            resource_name: "t".into(),
            name: "k".into(),
            value: Some("v".repeat(len)),
        }
    }

    use crate::quorum::admit::entry_bytes;

    #[test]
    fn records_are_split_into_entries_in_order() {
        let records: Vec<MetadataRecord> = (0..40).map(|_| config(10_000)).collect();
        let chunks = split(records.clone()).expect("fits");
        assert!(chunks.len() > 1);
        for c in &chunks {
            let p = Proposal {
                based_on: i64::MAX,
                records: c.clone(),
                part: Some(ProposalPart {
                    group: Uuid::new_v4(),
                    index: MAX_PROPOSAL_PARTS,
                    count: MAX_PROPOSAL_PARTS,
                }),
            };
            assert!(entry_bytes(&p).expect("size") <= MAX_ENTRY_BYTES);
        }
        assert_eq!(chunks.concat(), records);
        assert_eq!(split(vec![config(5)]).expect("one").len(), 1);
    }

    #[test]
    fn too_much_is_refused_before_sending() {
        let huge: Vec<MetadataRecord> = (0..700).map(|_| config(60_000)).collect();
        assert!(matches!(
            split(huge),
            Err(QuorumError::TooLarge {
                limit: MAX_PROPOSAL_BYTES,
                ..
            })
        ));
        assert!(matches!(
            split(vec![config(MAX_ENTRY_BYTES)]),
            Err(QuorumError::TooLarge { .. })
        ));
    }
}
