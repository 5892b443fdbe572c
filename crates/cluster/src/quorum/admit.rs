//! The leader's side of a proposal: what it checks before openraft sees an entry, and how it
//! appends a whole proposal (`Propose`) or the parts of a split one (`ProposeGroup`).
//!
//! Checked for every entry, whoever sent it (a peer or this node): at most `MAX_ENTRY_BYTES`
//! (a larger entry could not be replicated within openraft's heartbeat-bound AppendEntries), a
//! part's index and count in range and consistent with its group, each record's own rules, and
//! `based_on` a real offset (not negative, not past this leader's log, and applied here, waiting
//! a little for entries it has but has not applied yet). What depends on the image is checked
//! when the entry is applied (`state_machine`).
//!
//! A group's parts are handed to openraft one after the other without waiting for each to
//! commit (`client_write_ff`), so replication carries several per AppendEntries; the answer is
//! the entry that decided the proposal (the last part, or the first that did not stage).

use openraft::error::{ClientWriteError, RaftError};
use openraft::BasicNode;
use tokio::time::Instant;

use super::types::{ApplyOutcome, Proposal, MAX_ENTRY_BYTES, MAX_PROPOSAL_PARTS};
use super::wire::{forward, json_len, Response};
use super::{Quorum, RemoteError};

/// A proposal's size as an entry carries it (its JSON).
pub(crate) fn entry_bytes(p: &Proposal) -> Result<usize, RemoteError> {
    json_len(p).map_err(|e| RemoteError::Failed(e.to_string()))
}

/// Checks what an entry holds on its own: size, part range, records.
fn check_entry(p: &Proposal) -> Result<(), RemoteError> {
    let bytes = entry_bytes(p)?;
    if bytes > MAX_ENTRY_BYTES {
        return Err(RemoteError::ProposalTooLarge {
            bytes,
            limit: MAX_ENTRY_BYTES,
        });
    }
    if let Some(part) = &p.part {
        if part.count < 2 || part.count > MAX_PROPOSAL_PARTS || part.index >= part.count {
            return Err(RemoteError::Failed(format!(
                "part {} of {} is out of range",
                part.index, part.count
            )));
        }
    }
    p.records
        .iter()
        .try_for_each(|r| r.validate().map_err(RemoteError::Invalid))
}

/// Checks that `parts` are one split proposal, whole and in order.
fn check_group(parts: &[Proposal]) -> Result<(), RemoteError> {
    let bad = |why: &str| Err(RemoteError::Failed(format!("not a split proposal: {why}")));
    let Some(first) = parts.first().and_then(|p| p.part) else {
        return bad("no first part");
    };
    let count = u32::try_from(parts.len()).unwrap_or(u32::MAX);
    for (index, p) in (0..).zip(parts) {
        match p.part {
            Some(part)
                if part.group == first.group
                    && part.index == index
                    && part.count == count
                    && p.based_on == parts[0].based_on => {}
            _ => return bad("parts out of order or of different proposals"),
        }
    }
    parts.iter().try_for_each(check_entry)
}

impl Quorum {
    /// Checks `based_on` (see the module docs).
    async fn check_based_on(&self, based_on: i64, deadline: Instant) -> Result<(), RemoteError> {
        let applied = self.image().offset;
        let refused = RemoteError::InvalidBasedOn { based_on, applied };
        if based_on < 0 {
            return Err(refused);
        }
        if based_on <= applied {
            return Ok(());
        }
        // Raft's metrics are published after the state machine's image, so they can lag it;
        // only an offset past both is certainly not in this leader's log.
        if based_on > self.log_end() {
            return Err(refused);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        self.wait_for_offset(based_on, left)
            .await
            .map(|_| ())
            .map_err(|_| refused)
    }

    /// Appends one proposal and answers with its entry and outcome.
    pub(crate) async fn serve_propose(&self, p: Proposal) -> Response {
        // Bounded: a leader that lost its quorum waits for a commit that may never come, and a
        // remote proposer has given up by then anyway.
        let timeout = self.request_timeout();
        let deadline = Instant::now() + timeout;
        let checked = match check_entry(&p) {
            Ok(()) => self.check_based_on(p.based_on, deadline).await,
            Err(e) => Err(e),
        };
        if let Err(refusal) = checked {
            tracing::warn!(error = %refusal, "proposal refused");
            return Response::Error(refusal);
        }
        match tokio::time::timeout_at(deadline, self.raft.client_write(p)).await {
            Ok(Ok(r)) => Response::Proposed {
                index: r.log_id.index,
                outcome: r.data,
            },
            Ok(Err(e)) => forward::<ClientWriteError<u64, BasicNode>>(e),
            Err(_) => not_committed(timeout),
        }
    }

    /// Appends the parts of a split proposal in order and answers with the entry that decided
    /// it.
    pub(crate) async fn serve_propose_group(&self, parts: Vec<Proposal>) -> Response {
        let timeout = self.request_timeout();
        let deadline = Instant::now() + timeout;
        let checked = match (check_group(&parts), parts.first()) {
            (Ok(()), Some(first)) => self.check_based_on(first.based_on, deadline).await,
            (Err(e), _) => Err(e),
            (Ok(()), None) => Err(RemoteError::Failed("an empty proposal".into())),
        };
        if let Err(refusal) = checked {
            tracing::warn!(error = %refusal, "split proposal refused");
            return Response::Error(refusal);
        }
        let mut pending = Vec::with_capacity(parts.len());
        for p in parts {
            match self.raft.client_write_ff(p).await {
                Ok(rx) => pending.push(rx),
                Err(fatal) => {
                    return forward::<ClientWriteError<u64, BasicNode>>(RaftError::Fatal(fatal))
                }
            }
        }
        let mut decided = None;
        for rx in pending {
            match tokio::time::timeout_at(deadline, rx).await {
                Ok(Ok(Ok(r))) => {
                    decided = Some((r.log_id.index, r.data));
                    if r.data != ApplyOutcome::Staged {
                        break;
                    }
                }
                Ok(Ok(Err(e))) => return forward(RaftError::APIError(e)),
                Ok(Err(_)) => return Response::Error(RemoteError::Stopped),
                Err(_) => return not_committed(timeout),
            }
        }
        match decided {
            Some((index, outcome)) => Response::Proposed { index, outcome },
            None => Response::Error(RemoteError::Failed("an empty proposal".into())),
        }
    }
}

fn not_committed(timeout: std::time::Duration) -> Response {
    tracing::warn!(?timeout, "proposal not committed in time");
    Response::Error(RemoteError::Failed(format!(
        "proposal not committed within {timeout:?}"
    )))
}
