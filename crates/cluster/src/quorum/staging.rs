//! `StagedProposals`: the parts of split proposals waiting for their last part.
//!
//! A proposal over `MAX_ENTRY_BYTES` (a topic with many partitions) is written as several
//! entries of one group, in order, all based on the same image offset. The state machine keeps
//! each part's records here and changes nothing in the image until the last part, which applies
//! them all through `MetadataImage::apply_records`, so readers never see half a topic. The group
//! follows the single entry's optimistic concurrency: if another entry changed the image after
//! `based_on`, the group is dropped (`Conflict`) and the proposer decides again.
//!
//! A group whose first part arrives again starts over (its proposer resent it whole after a
//! leader change); a repeated later part is recognised and not added twice.
//!
//! Bounds, since a proposer can die between parts: a group is dropped as soon as the image
//! changes past its `based_on` (it could only conflict), at most `MAX_STAGED_GROUPS` are kept
//! (the oldest goes), and a group has at most `MAX_PROPOSAL_PARTS` parts of at most one entry
//! each. Staged parts are part of the snapshot, so every replica stages alike.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::types::{ProposalPart, MAX_PROPOSAL_PARTS};
use crate::metadata::MetadataRecord;

/// Split proposals staged at once; a new one beyond this drops the oldest.
const MAX_STAGED_GROUPS: usize = 4;

/// One split proposal's parts so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Staged {
    based_on: i64,
    count: u32,
    /// The next part expected.
    next: u32,
    /// Raft index of the first part (the oldest group is dropped first).
    first_index: u64,
    records: Vec<MetadataRecord>,
}

/// What adding a part did.
#[derive(Debug, PartialEq)]
pub(crate) enum Staging {
    /// Kept; more parts to come.
    Staged,
    /// The last part: every record of the group, in order, to apply now.
    Complete(Vec<MetadataRecord>),
    /// Out of order, a different `based_on` or count, or a bad index: the group is dropped.
    Invalid(&'static str),
}

/// The staged split proposals of one state machine (serialized into its snapshots).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct StagedProposals {
    groups: BTreeMap<Uuid, Staged>,
}

impl StagedProposals {
    /// Adds part `part` (entry `index`, decided on `based_on`) with its records. The caller has
    /// checked `based_on` against the image (a stale group is a conflict, not staged).
    pub(crate) fn add(
        &mut self,
        index: u64,
        based_on: i64,
        part: ProposalPart,
        records: Vec<MetadataRecord>,
    ) -> Staging {
        if part.count < 2 || part.count > MAX_PROPOSAL_PARTS || part.index >= part.count {
            self.groups.remove(&part.group);
            return Staging::Invalid("part index or count out of range");
        }
        if part.index == 0 {
            // A group starting again is its proposer resending it whole (the leader changed
            // mid-way): it starts over.
            self.groups.remove(&part.group);
            if self.groups.len() >= MAX_STAGED_GROUPS {
                let oldest = self
                    .groups
                    .iter()
                    .min_by_key(|(_, g)| g.first_index)
                    .map(|(id, _)| *id);
                if let Some(id) = oldest {
                    tracing::warn!(group = %id, "dropping an unfinished split proposal");
                    self.groups.remove(&id);
                }
            }
            self.groups.insert(
                part.group,
                Staged {
                    based_on,
                    count: part.count,
                    next: 0,
                    first_index: index,
                    records: Vec::new(),
                },
            );
        }
        let Some(g) = self.groups.get_mut(&part.group) else {
            return Staging::Invalid("a part of an unknown or dropped group");
        };
        if g.count == part.count && g.based_on == based_on && part.index + 1 == g.next {
            // The same part again (a proposer's retry after a lost answer): already staged.
            return Staging::Staged;
        }
        if g.next != part.index || g.count != part.count || g.based_on != based_on {
            self.groups.remove(&part.group);
            return Staging::Invalid("a part out of order or of another proposal");
        }
        g.records.extend(records);
        g.next += 1;
        if g.next < g.count {
            return Staging::Staged;
        }
        match self.groups.remove(&part.group) {
            Some(g) => Staging::Complete(g.records),
            None => Staging::Invalid("a part of an unknown group"),
        }
    }

    /// Drops `group` (its part conflicted or was invalid).
    pub(crate) fn drop_group(&mut self, group: &Uuid) {
        self.groups.remove(group);
    }

    /// Drops every group decided on an image older than `last_modified`: each would conflict at
    /// its next part, and its proposer may be gone.
    pub(crate) fn drop_stale(&mut self, last_modified: i64) {
        self.groups.retain(|_, g| g.based_on >= last_modified);
    }

    /// How many groups are staged.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.groups.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fence(id: i32) -> Vec<MetadataRecord> {
        vec![MetadataRecord::FenceBroker { broker_id: id }]
    }

    fn part(group: Uuid, index: u32, count: u32) -> ProposalPart {
        ProposalPart {
            group,
            index,
            count,
        }
    }

    #[test]
    fn parts_in_order_complete_with_every_record() {
        let mut s = StagedProposals::default();
        let g = Uuid::new_v4();
        assert_eq!(s.add(10, 5, part(g, 0, 3), fence(1)), Staging::Staged);
        assert_eq!(s.add(11, 5, part(g, 1, 3), fence(2)), Staging::Staged);
        // A retried part is recognised, not added twice.
        assert_eq!(s.add(12, 5, part(g, 1, 3), fence(2)), Staging::Staged);
        let done = s.add(13, 5, part(g, 2, 3), fence(3));
        assert_eq!(
            done,
            Staging::Complete([fence(1), fence(2), fence(3)].concat())
        );
        assert_eq!(s.len(), 0);
    }

    #[test]
    fn out_of_order_or_mismatched_parts_drop_the_group() {
        let mut s = StagedProposals::default();
        let g = Uuid::new_v4();
        assert_eq!(s.add(1, 5, part(g, 0, 3), fence(1)), Staging::Staged);
        assert!(matches!(
            s.add(2, 5, part(g, 2, 3), fence(2)),
            Staging::Invalid(_)
        ));
        assert_eq!(s.len(), 0);
        assert!(matches!(
            s.add(3, 5, part(g, 1, 3), fence(2)),
            Staging::Invalid(_)
        ));
        let h = Uuid::new_v4();
        assert_eq!(s.add(4, 5, part(h, 0, 2), fence(1)), Staging::Staged);
        assert!(matches!(
            s.add(5, 6, part(h, 1, 2), fence(2)),
            Staging::Invalid(_)
        ));
        for bad in [
            part(h, 0, 1),
            part(h, 3, 2),
            part(h, 0, MAX_PROPOSAL_PARTS + 1),
        ] {
            assert!(matches!(s.add(6, 5, bad, fence(1)), Staging::Invalid(_)));
        }
        assert_eq!(s.len(), 0);
    }

    #[test]
    fn abandoned_groups_are_bounded_and_dropped_when_stale() {
        let mut s = StagedProposals::default();
        let groups: Vec<Uuid> = (0..MAX_STAGED_GROUPS + 2).map(|_| Uuid::new_v4()).collect();
        for (i, g) in (0u64..).zip(&groups) {
            assert_eq!(s.add(i, 7, part(*g, 0, 2), fence(1)), Staging::Staged);
        }
        assert_eq!(s.len(), MAX_STAGED_GROUPS);
        // The oldest went first: its next part finds nothing.
        assert!(matches!(
            s.add(20, 7, part(groups[0], 1, 2), fence(2)),
            Staging::Invalid(_)
        ));
        let newest = groups[groups.len() - 1];
        assert!(matches!(
            s.add(21, 7, part(newest, 1, 2), fence(2)),
            Staging::Complete(_)
        ));
        s.drop_stale(8);
        assert_eq!(s.len(), 0);
    }
}
