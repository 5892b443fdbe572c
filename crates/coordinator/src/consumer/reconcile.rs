//! Incremental reconciliation of one member towards its target assignment (KIP-848; Kafka's
//! `CurrentAssignmentBuilder`). Pure: the caller passes the member's current state, the target
//! assignment and its epoch, what the member reports it owns, and who else holds each partition.
//!
//! The rule is revoke before assign: a member first gives up the partitions that left its target
//! (state `UnrevokedPartitions`, member epoch unchanged); only once its heartbeat reports them no
//! longer owned does it move to the target epoch. A partition of its target that another member
//! still holds (assigned, or pending revocation) is withheld (`UnreleasedPartitions`) until that
//! member releases it, so no partition is ever assigned to two members at once.

use std::collections::BTreeSet;

use uuid::Uuid;

use super::assignor::Assignment;

/// Reconciliation state of a member (Kafka's `MemberState`; the value is stored in records).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MemberState {
    /// The member has its target (or all of it that is free).
    #[default]
    Stable,
    /// The member must revoke partitions before getting anything new.
    UnrevokedPartitions,
    /// The member waits for partitions other members still hold.
    UnreleasedPartitions,
}

impl MemberState {
    pub(crate) fn to_i8(self) -> i8 {
        match self {
            MemberState::Stable => 0,
            MemberState::UnrevokedPartitions => 1,
            MemberState::UnreleasedPartitions => 2,
        }
    }
    pub(crate) fn from_i8(v: i8) -> MemberState {
        match v {
            1 => MemberState::UnrevokedPartitions,
            2 => MemberState::UnreleasedPartitions,
            _ => MemberState::Stable,
        }
    }
    /// Kafka's name (ConsumerGroupDescribe does not carry it; logs and tests do).
    pub fn as_str(self) -> &'static str {
        match self {
            MemberState::Stable => "stable",
            MemberState::UnrevokedPartitions => "unrevoked_partitions",
            MemberState::UnreleasedPartitions => "unreleased_partitions",
        }
    }
}

/// The part of a member that reconciliation changes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct CurrentAssignment {
    pub(crate) state: MemberState,
    pub(crate) member_epoch: i32,
    pub(crate) previous_member_epoch: i32,
    pub(crate) assigned: Assignment,
    pub(crate) pending_revocation: Assignment,
}

/// Moves `current` one step towards `target` (epoch `target_epoch`). `owned` is what the member
/// reported in this heartbeat (`None`: not reported, assume unchanged); `held_by_other(topic, p)`
/// says whether another member still holds the partition.
pub(crate) fn reconcile(
    current: &CurrentAssignment,
    target_epoch: i32,
    target: &Assignment,
    owned: Option<&Assignment>,
    held_by_other: &dyn Fn(&Uuid, i32) -> bool,
) -> CurrentAssignment {
    match current.state {
        MemberState::Stable if current.member_epoch == target_epoch => current.clone(),
        MemberState::UnrevokedPartitions => {
            let still_owns = owned.is_none_or(|o| intersects(o, &current.pending_revocation));
            if still_owns {
                current.clone()
            } else {
                next(current, target_epoch, target, owned, held_by_other)
            }
        }
        _ => next(current, target_epoch, target, owned, held_by_other),
    }
}

fn next(
    current: &CurrentAssignment,
    target_epoch: i32,
    target: &Assignment,
    owned: Option<&Assignment>,
    held_by_other: &dyn Fn(&Uuid, i32) -> bool,
) -> CurrentAssignment {
    let mut assigned = Assignment::new();
    let mut revoke = Assignment::new();
    let mut pending_assign = Assignment::new();
    let mut unreleased = false;
    let empty = BTreeSet::new();
    let topics: BTreeSet<&Uuid> = target.keys().chain(current.assigned.keys()).collect();
    for topic in topics {
        let want = target.get(topic).unwrap_or(&empty);
        let have = current.assigned.get(topic).unwrap_or(&empty);
        let keep: BTreeSet<i32> = have.intersection(want).copied().collect();
        let gone: BTreeSet<i32> = have.difference(&keep).copied().collect();
        let mut add = BTreeSet::new();
        for p in want.difference(&keep) {
            if held_by_other(topic, *p) {
                unreleased = true;
            } else {
                add.insert(*p);
            }
        }
        if !keep.is_empty() {
            assigned.insert(*topic, keep);
        }
        if !gone.is_empty() {
            revoke.insert(*topic, gone);
        }
        if !add.is_empty() {
            pending_assign.insert(*topic, add);
        }
    }
    let owns_revoked = !revoke.is_empty() && owned.is_none_or(|o| intersects(o, &revoke));
    if owns_revoked {
        return CurrentAssignment {
            state: MemberState::UnrevokedPartitions,
            member_epoch: current.member_epoch,
            previous_member_epoch: current.previous_member_epoch,
            assigned,
            pending_revocation: revoke,
        };
    }
    for (topic, ps) in pending_assign {
        assigned.entry(topic).or_default().extend(ps);
    }
    CurrentAssignment {
        state: if unreleased {
            MemberState::UnreleasedPartitions
        } else {
            MemberState::Stable
        },
        member_epoch: target_epoch,
        previous_member_epoch: current.member_epoch,
        assigned,
        pending_revocation: Assignment::new(),
    }
}

/// Whether `a` and `b` share a (topic, partition).
pub(crate) fn intersects(a: &Assignment, b: &Assignment) -> bool {
    a.iter()
        .any(|(t, ps)| b.get(t).is_some_and(|qs| !ps.is_disjoint(qs)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> Uuid {
        Uuid::from_bytes([7; 16])
    }
    fn a(ps: &[i32]) -> Assignment {
        if ps.is_empty() {
            return Assignment::new();
        }
        Assignment::from([(t(), ps.iter().copied().collect())])
    }
    fn stable(epoch: i32, ps: &[i32]) -> CurrentAssignment {
        CurrentAssignment {
            state: MemberState::Stable,
            member_epoch: epoch,
            previous_member_epoch: epoch - 1,
            assigned: a(ps),
            pending_revocation: Assignment::new(),
        }
    }
    const FREE: &dyn Fn(&Uuid, i32) -> bool = &|_, _| false;

    #[test]
    fn new_member_gets_free_partitions_and_the_target_epoch() {
        let r = reconcile(&stable(0, &[]), 3, &a(&[0, 1]), Some(&a(&[])), FREE);
        assert_eq!(r.state, MemberState::Stable);
        assert_eq!(r.member_epoch, 3);
        assert_eq!(r.previous_member_epoch, 0);
        assert_eq!(r.assigned, a(&[0, 1]));
    }

    #[test]
    fn revoke_before_assign() {
        // Owns 0,1,2; target is 0,3: must first revoke 1,2 and gets nothing new yet.
        let cur = stable(2, &[0, 1, 2]);
        let r = reconcile(&cur, 3, &a(&[0, 3]), Some(&a(&[0, 1, 2])), FREE);
        assert_eq!(r.state, MemberState::UnrevokedPartitions);
        assert_eq!(r.member_epoch, 2, "epoch unchanged until revoked");
        assert_eq!(r.assigned, a(&[0]));
        assert_eq!(r.pending_revocation, a(&[1, 2]));
        // A heartbeat still reporting 1 owned: no progress.
        let r2 = reconcile(&r, 3, &a(&[0, 3]), Some(&a(&[0, 1])), FREE);
        assert_eq!(r2, r);
        // Not reporting owned partitions at all: no progress either.
        assert_eq!(reconcile(&r, 3, &a(&[0, 3]), None, FREE), r);
        // Revoked: moves to the target epoch and gets 3.
        let r3 = reconcile(&r, 3, &a(&[0, 3]), Some(&a(&[0])), FREE);
        assert_eq!(r3.state, MemberState::Stable);
        assert_eq!(r3.member_epoch, 3);
        assert_eq!(r3.previous_member_epoch, 2);
        assert_eq!(r3.assigned, a(&[0, 3]));
        assert!(r3.pending_revocation.is_empty());
    }

    #[test]
    fn partitions_held_by_others_are_withheld_until_released() {
        let held = std::cell::Cell::new(true);
        let by_other = |_: &Uuid, p: i32| p == 4 && held.get();
        let r = reconcile(&stable(1, &[0]), 2, &a(&[0, 4]), Some(&a(&[0])), &by_other);
        assert_eq!(r.state, MemberState::UnreleasedPartitions);
        assert_eq!(r.member_epoch, 2);
        assert_eq!(r.assigned, a(&[0]));
        let again = reconcile(&r, 2, &a(&[0, 4]), None, &by_other);
        assert_eq!(again.assigned, a(&[0]));
        held.set(false);
        let done = reconcile(&r, 2, &a(&[0, 4]), None, &by_other);
        assert_eq!(done.state, MemberState::Stable);
        assert_eq!(done.assigned, a(&[0, 4]));
    }

    #[test]
    fn nothing_to_revoke_if_the_member_no_longer_owns_it() {
        let r = reconcile(&stable(1, &[0, 1]), 2, &a(&[0]), Some(&a(&[0])), FREE);
        assert_eq!(r.state, MemberState::Stable);
        assert_eq!(r.member_epoch, 2);
        assert_eq!(r.assigned, a(&[0]));
    }

    #[test]
    fn stable_member_at_target_epoch_is_unchanged() {
        let cur = stable(5, &[1]);
        assert_eq!(reconcile(&cur, 5, &a(&[1, 2]), None, FREE), cur);
    }
}
