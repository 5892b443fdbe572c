//! The rebalance machinery shared by the classic protocol's requests and timers: starting a
//! rebalance, completing its join and sync phases, removing members, and the timer tasks
//! (session expiry, KIP-394 pending-member expiry, rebalance timeout and
//! `group.initial.rebalance.delay.ms`, extended as Kafka's InitialDelayedJoin does). Everything
//! here runs with the group's mutex held and does in-memory work only.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use crate::api::{JoinGroupResponse, SyncGroupResult};
use strom_log::now_ms;

use crate::api::GroupState;
use crate::coordinator::Inner;
use crate::error::GroupError;
use crate::group::{ClassicGroup, GroupRef, Member};
use crate::record::CoordinatorRecord;

pub(crate) fn ms(v: i32) -> Duration {
    Duration::from_millis(u64::try_from(v).unwrap_or(0))
}

/// Starts a rebalance if the group can rebalance (Empty, CompletingRebalance or Stable).
pub(crate) fn prepare_rebalance(inner: &Arc<Inner>, group: &GroupRef, g: &mut ClassicGroup) {
    if !matches!(
        g.state,
        GroupState::Empty | GroupState::CompletingRebalance | GroupState::Stable
    ) {
        return;
    }
    if g.state == GroupState::CompletingRebalance {
        reset_and_propagate_assignment_error(g, &GroupError::RebalanceInProgress);
    }
    let initial = g.state == GroupState::Empty;
    g.sync_in_flight = None;
    g.transition(GroupState::PreparingRebalance, now_ms());
    g.rebalance_token += 1;
    let token = g.rebalance_token;
    let timeout = g.max_rebalance_timeout_ms();
    if initial {
        let configured =
            u64::try_from(inner.config.initial_rebalance_delay.as_millis()).unwrap_or(u64::MAX);
        let delay = configured.min(timeout);
        g.initial_delay_remaining_ms = Some(timeout.saturating_sub(delay));
        g.new_member_added = false;
        spawn_rebalance_timer(inner, group, token, delay);
    } else {
        g.initial_delay_remaining_ms = None;
        spawn_rebalance_timer(inner, group, token, timeout);
        try_complete_join(inner, group, g);
    }
}

pub(crate) fn try_complete_join(inner: &Arc<Inner>, group: &GroupRef, g: &mut ClassicGroup) {
    if g.state == GroupState::PreparingRebalance
        && g.initial_delay_remaining_ms.is_none()
        && g.all_members_joined()
    {
        complete_join(inner, group, g);
    }
}

/// Ends the join phase: drops dynamic members that did not rejoin, starts the next generation
/// and answers every waiting JoinGroup (the leader with all members' metadata).
fn complete_join(inner: &Arc<Inner>, group: &GroupRef, g: &mut ClassicGroup) {
    if g.state != GroupState::PreparingRebalance {
        return;
    }
    let gone: Vec<String> = g
        .members
        .values()
        .filter(|m| m.join_waiter.is_none() && m.group_instance_id.is_none())
        .map(|m| m.member_id.clone())
        .collect();
    for id in gone {
        tracing::info!(group = %g.group_id, member = %id, "member did not rejoin in time; removed");
        remove_member_state(g, &id);
    }
    g.initial_delay_remaining_ms = None;
    g.new_member_added = false;
    if g.members.is_empty() {
        g.generation_id += 1;
        g.protocol_name = None;
        g.leader_id = None;
        g.transition(GroupState::Empty, now_ms());
        g.has_metadata = true;
        let record = CoordinatorRecord::GroupMetadata {
            group: g.group_id.clone(),
            value: Some(g.to_value(None)),
        };
        // Nobody waits for this record; a failure is logged by the appender.
        drop(inner.enqueue(g.partition, &[record]));
        return;
    }
    let leader_joined = g
        .leader_id
        .as_ref()
        .and_then(|l| g.members.get(l))
        .is_some_and(|m| m.join_waiter.is_some());
    if !leader_joined {
        match g.members.values().find(|m| m.join_waiter.is_some()) {
            Some(m) => g.leader_id = Some(m.member_id.clone()),
            None => {
                // Only static members that have not rejoined: wait for them or their expiry.
                g.rebalance_token += 1;
                let token = g.rebalance_token;
                spawn_rebalance_timer(inner, group, token, g.max_rebalance_timeout_ms());
                return;
            }
        }
    }
    g.generation_id += 1;
    g.protocol_name = g.select_protocol();
    g.transition(GroupState::CompletingRebalance, now_ms());
    tracing::info!(group = %g.group_id, generation = g.generation_id, protocol = ?g.protocol_name, members = g.members.len(), "rebalance: join complete");
    let ids: Vec<String> = g.members.keys().cloned().collect();
    for id in ids {
        let resp = g.join_response(&id, true);
        if let Some(m) = g.members.get_mut(&id) {
            m.deadline = Instant::now() + ms(m.session_timeout_ms);
            if let Some(w) = m.join_waiter.take() {
                let _ = w.send(resp);
            }
        }
    }
}

pub(crate) fn complete_sync(g: &mut ClassicGroup, assignments: &HashMap<String, Bytes>) {
    let protocol_type = g.protocol_type.clone();
    let protocol_name = g.protocol_name.clone();
    for m in g.members.values_mut() {
        m.assignment = assignments.get(&m.member_id).cloned().unwrap_or_default();
        m.deadline = Instant::now() + ms(m.session_timeout_ms);
        if let Some(w) = m.sync_waiter.take() {
            let _ = w.send(Ok(SyncGroupResult {
                protocol_type: protocol_type.clone(),
                protocol_name: protocol_name.clone(),
                assignment: m.assignment.clone(),
            }));
        }
    }
    g.transition(GroupState::Stable, now_ms());
    tracing::info!(group = %g.group_id, generation = g.generation_id, "rebalance: stable");
}

pub(crate) fn reset_and_propagate_assignment_error(g: &mut ClassicGroup, e: &GroupError) {
    g.sync_in_flight = None;
    for m in g.members.values_mut() {
        m.assignment = Bytes::new();
        if let Some(w) = m.sync_waiter.take() {
            let _ = w.send(Err(e.clone()));
        }
    }
}

fn remove_member_state(g: &mut ClassicGroup, member_id: &str) -> Option<Member> {
    let m = g.members.shift_remove(member_id)?;
    if let Some(i) = &m.group_instance_id {
        if g.static_members.get(i).map(String::as_str) == Some(member_id) {
            g.static_members.remove(i);
        }
    }
    if g.is_leader(member_id) {
        g.leader_id = g.members.keys().next().cloned();
    }
    Some(m)
}

/// Removes a member (left or expired) and moves the group on: rebalance, or finish a join.
pub(crate) fn remove_member_and_update(
    inner: &Arc<Inner>,
    group: &GroupRef,
    g: &mut ClassicGroup,
    member_id: &str,
) {
    if let Some(mut m) = remove_member_state(g, member_id) {
        if let Some(w) = m.join_waiter.take() {
            let _ = w.send(JoinGroupResponse::error(
                GroupError::UnknownMemberId,
                member_id.to_string(),
            ));
        }
        if let Some(w) = m.sync_waiter.take() {
            let _ = w.send(Err(GroupError::UnknownMemberId));
        }
    }
    match g.state {
        GroupState::Stable | GroupState::CompletingRebalance => prepare_rebalance(inner, group, g),
        GroupState::PreparingRebalance => try_complete_join(inner, group, g),
        GroupState::Empty | GroupState::Dead => {}
    }
}

/// Expires `member_id` once its session deadline passes without a heartbeat (members waiting in
/// JoinGroup or SyncGroup are not expired, as in Kafka). One task per member incarnation.
pub(crate) fn spawn_session_watch(
    inner: &Arc<Inner>,
    group: &GroupRef,
    member_id: String,
    token: u64,
) {
    let weak = inner.weak();
    let group = group.clone();
    tokio::spawn(async move {
        let mut next = Instant::now();
        loop {
            tokio::time::sleep_until(next).await;
            let Some(inner) = weak.upgrade() else { return };
            let mut guard = group.lock();
            let g = &mut *guard;
            let Some(m) = g.members.get(&member_id) else {
                return;
            };
            if m.watch != token || g.state == GroupState::Dead {
                return;
            }
            let now = Instant::now();
            if m.join_waiter.is_some() || m.sync_waiter.is_some() {
                next = now + ms(m.session_timeout_ms);
            } else if now < m.deadline {
                next = m.deadline;
            } else {
                tracing::info!(group = %g.group_id, member = %member_id, "session timeout; member removed");
                remove_member_and_update(&inner, &group, g, &member_id);
                return;
            }
        }
    });
}

pub(crate) fn spawn_pending_expiry(
    inner: &Arc<Inner>,
    group: &GroupRef,
    member_id: String,
    token: u64,
    after: Duration,
) {
    let weak = inner.weak();
    let group = group.clone();
    tokio::spawn(async move {
        tokio::time::sleep(after).await;
        let Some(inner) = weak.upgrade() else { return };
        let mut guard = group.lock();
        let g = &mut *guard;
        if g.pending_members.get(&member_id) == Some(&token) {
            g.pending_members.remove(&member_id);
            try_complete_join(&inner, &group, g);
        }
    });
}

/// The rebalance timer: ends the initial delay (extending it while new members keep arriving,
/// as Kafka's InitialDelayedJoin) or the rebalance timeout.
fn spawn_rebalance_timer(inner: &Arc<Inner>, group: &GroupRef, token: u64, after_ms: u64) {
    let weak = inner.weak();
    let group = group.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(after_ms)).await;
        let Some(inner) = weak.upgrade() else { return };
        let mut guard = group.lock();
        let g = &mut *guard;
        if g.rebalance_token != token || g.state != GroupState::PreparingRebalance {
            return;
        }
        if let Some(remaining) = g.initial_delay_remaining_ms {
            if g.new_member_added && remaining > 0 {
                let configured = u64::try_from(inner.config.initial_rebalance_delay.as_millis())
                    .unwrap_or(u64::MAX);
                let delay = configured.min(remaining);
                g.new_member_added = false;
                g.initial_delay_remaining_ms = Some(remaining - delay);
                spawn_rebalance_timer(&inner, &group, token, delay);
                return;
            }
        }
        complete_join(&inner, &group, g);
    });
}
