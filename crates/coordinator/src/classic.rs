//! The classic rebalance protocol on a [`ClassicGroup`]: JoinGroup, SyncGroup, Heartbeat,
//! LeaveGroup, static membership (KIP-345), KIP-394 member ids, and the timers that drive them
//! (timers and phase completion live in `rebalance.rs`).
//!
//! Every transition runs with the group's mutex held and does only in-memory work: it answers
//! waiting requests through oneshot channels, spawns timer tasks, and queues records on the
//! partition's appender. JoinGroup and SyncGroup requests wait on their oneshot with no lock
//! held; SyncGroup answers only after the GroupMetadata record with the assignment is durable.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::api::GroupState;
use crate::api::{
    JoinGroupRequest, JoinGroupResponse, MemberIdentity, SyncGroupRequest, SyncGroupResult,
};
use crate::coordinator::{GroupCoordinator, Inner};
use crate::error::GroupError;
use crate::group::{ClassicGroup, GroupRef, Member};
use crate::rebalance::{
    complete_sync, ms, prepare_rebalance, remove_member_and_update,
    reset_and_propagate_assignment_error, spawn_pending_expiry, spawn_session_watch,
    try_complete_join,
};
use crate::record::CoordinatorRecord;
use crate::writer::wait;

fn new_member_id(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4())
}

impl GroupCoordinator {
    /// JoinGroup: completes when the rebalance does (or at once for an error, KIP-394's
    /// MEMBER_ID_REQUIRED, or a rejoin that changes nothing).
    pub async fn join_group(&self, req: JoinGroupRequest) -> JoinGroupResponse {
        let member_id = req.member_id.clone();
        match self.join_inner(req) {
            Ok(rx) => rx.await.unwrap_or_else(|_| {
                JoinGroupResponse::error(GroupError::NotCoordinator, member_id)
            }),
            Err(e) => JoinGroupResponse::error(e, member_id),
        }
    }

    fn join_inner(
        &self,
        req: JoinGroupRequest,
    ) -> Result<oneshot::Receiver<JoinGroupResponse>, GroupError> {
        let inner = &self.inner;
        if req.group_id.is_empty() {
            return Err(GroupError::InvalidGroupId);
        }
        if req.session_timeout_ms < inner.config.min_session_timeout_ms
            || req.session_timeout_ms > inner.config.max_session_timeout_ms
        {
            return Err(GroupError::InvalidSessionTimeout);
        }
        let group = if req.member_id.is_empty() {
            inner.get_or_create(&req.group_id)?
        } else {
            self.check_owned(&req.group_id)?;
            inner
                .group(&req.group_id)
                .ok_or(GroupError::UnknownMemberId)?
        };
        let (tx, rx) = oneshot::channel();
        let mut guard = group.lock();
        let g = &mut *guard;
        if g.state == GroupState::Dead {
            return Err(GroupError::CoordinatorNotAvailable);
        }
        let instance = req.group_instance_id.clone();
        if req.member_id.is_empty() {
            if !g.supports(&req.protocol_type, &req.protocols, None) {
                return Err(GroupError::InconsistentGroupProtocol);
            }
            let replaces_static = instance
                .as_ref()
                .is_some_and(|i| g.static_members.contains_key(i));
            if !replaces_static
                && g.members.len() + g.pending_members.len() >= inner.config.max_size
            {
                return Err(GroupError::GroupMaxSizeReached);
            }
            match instance {
                Some(i) => match g.static_members.get(&i).cloned() {
                    Some(old) => replace_static_member(inner, &group, g, &old, req, tx),
                    None => {
                        let id = new_member_id(&i);
                        add_member(inner, &group, g, id, req, tx);
                    }
                },
                None => {
                    let id = new_member_id(&req.client_id);
                    if req.require_known_member_id {
                        let token = g.token();
                        g.pending_members.insert(id.clone(), token);
                        spawn_pending_expiry(
                            inner,
                            &group,
                            id.clone(),
                            token,
                            ms(req.session_timeout_ms),
                        );
                        let _ = tx.send(JoinGroupResponse::error(GroupError::MemberIdRequired, id));
                    } else {
                        add_member(inner, &group, g, id, req, tx);
                    }
                }
            }
            return Ok(rx);
        }
        let member_id = req.member_id.clone();
        if g.pending_members.remove(&member_id).is_some() {
            if !g.supports(&req.protocol_type, &req.protocols, None) {
                return Err(GroupError::InconsistentGroupProtocol);
            }
            add_member(inner, &group, g, member_id, req, tx);
            return Ok(rx);
        }
        if g.is_fenced(instance.as_deref(), &member_id) {
            return Err(GroupError::FencedInstanceId);
        }
        if !g.members.contains_key(&member_id) {
            return Err(GroupError::UnknownMemberId);
        }
        if !g.supports(&req.protocol_type, &req.protocols, Some(&member_id)) {
            return Err(GroupError::InconsistentGroupProtocol);
        }
        let unchanged = g
            .members
            .get(&member_id)
            .is_some_and(|m| m.protocols == req.protocols);
        match g.state {
            GroupState::PreparingRebalance => {
                update_member(g, &member_id, &req, Some(tx));
                try_complete_join(inner, &group, g);
            }
            GroupState::CompletingRebalance if unchanged => {
                let _ = tx.send(g.join_response(&member_id, true));
            }
            GroupState::Stable if unchanged && !g.is_leader(&member_id) => {
                refresh(g, &member_id);
                let _ = tx.send(g.join_response(&member_id, false));
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                update_member(g, &member_id, &req, Some(tx));
                prepare_rebalance(inner, &group, g);
            }
            GroupState::Empty | GroupState::Dead => return Err(GroupError::UnknownMemberId),
        }
        Ok(rx)
    }

    /// SyncGroup: the leader's assignment is written durably, then every member gets its own
    /// bytes exactly as the leader sent them.
    pub async fn sync_group(&self, req: SyncGroupRequest) -> Result<SyncGroupResult, GroupError> {
        let rx = self.sync_inner(req)?;
        rx.await.unwrap_or(Err(GroupError::NotCoordinator))
    }

    fn sync_inner(
        &self,
        req: SyncGroupRequest,
    ) -> Result<oneshot::Receiver<Result<SyncGroupResult, GroupError>>, GroupError> {
        let inner = &self.inner;
        if req.group_id.is_empty() {
            return Err(GroupError::InvalidGroupId);
        }
        self.check_owned(&req.group_id)?;
        let group = inner
            .group(&req.group_id)
            .ok_or(GroupError::UnknownMemberId)?;
        let (tx, rx) = oneshot::channel();
        let mut guard = group.lock();
        let g = &mut *guard;
        check_member(
            g,
            &req.member_id,
            req.group_instance_id.as_deref(),
            req.generation_id,
        )?;
        if req.protocol_type.is_some() && req.protocol_type != g.protocol_type
            || req.protocol_name.is_some() && req.protocol_name != g.protocol_name
        {
            return Err(GroupError::InconsistentGroupProtocol);
        }
        match g.state {
            GroupState::Empty | GroupState::Dead => return Err(GroupError::UnknownMemberId),
            GroupState::PreparingRebalance => return Err(GroupError::RebalanceInProgress),
            GroupState::Stable => {
                refresh(g, &req.member_id);
                let assignment = g
                    .members
                    .get(&req.member_id)
                    .map(|m| m.assignment.clone())
                    .unwrap_or_default();
                let _ = tx.send(Ok(SyncGroupResult {
                    protocol_type: g.protocol_type.clone(),
                    protocol_name: g.protocol_name.clone(),
                    assignment,
                }));
            }
            GroupState::CompletingRebalance => {
                if let Some(m) = g.members.get_mut(&req.member_id) {
                    m.sync_waiter = Some(tx);
                }
                let generation = g.generation_id;
                if g.is_leader(&req.member_id) && g.sync_in_flight != Some(generation) {
                    let given: HashMap<String, Bytes> = req.assignments.into_iter().collect();
                    let assignments: HashMap<String, Bytes> = g
                        .members
                        .keys()
                        .map(|id| (id.clone(), given.get(id).cloned().unwrap_or_default()))
                        .collect();
                    g.sync_in_flight = Some(generation);
                    g.has_metadata = true;
                    let record = CoordinatorRecord::GroupMetadata {
                        group: g.group_id.clone(),
                        value: Some(g.to_value(Some(&assignments))),
                    };
                    let pending = inner.enqueue(g.partition, &[record]);
                    let weak = inner.weak();
                    let group = group.clone();
                    tokio::spawn(async move {
                        let result = wait(pending).await;
                        let Some(inner) = weak.upgrade() else { return };
                        let mut guard = group.lock();
                        let g = &mut *guard;
                        if g.state != GroupState::CompletingRebalance
                            || g.generation_id != generation
                        {
                            return;
                        }
                        g.sync_in_flight = None;
                        match result {
                            Ok(()) => complete_sync(g, &assignments),
                            Err(e) => {
                                reset_and_propagate_assignment_error(g, &e);
                                prepare_rebalance(&inner, &group, g);
                            }
                        }
                    });
                }
            }
        }
        Ok(rx)
    }

    /// Heartbeat: keeps the session alive; REBALANCE_IN_PROGRESS tells the member to rejoin.
    pub fn heartbeat(
        &self,
        group_id: &str,
        generation_id: i32,
        member_id: &str,
        group_instance_id: Option<&str>,
    ) -> Result<(), GroupError> {
        if group_id.is_empty() {
            return Err(GroupError::InvalidGroupId);
        }
        self.check_owned(group_id)?;
        let group = self
            .inner
            .group(group_id)
            .ok_or(GroupError::UnknownMemberId)?;
        let mut g = group.lock();
        check_member(&g, member_id, group_instance_id, generation_id)?;
        match g.state {
            GroupState::Empty | GroupState::Dead => Err(GroupError::UnknownMemberId),
            GroupState::PreparingRebalance => {
                refresh(&mut g, member_id);
                Err(GroupError::RebalanceInProgress)
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                refresh(&mut g, member_id);
                Ok(())
            }
        }
    }

    /// LeaveGroup: one result per member (v3+ batches); a group-level error fails them all.
    pub fn leave_group(
        &self,
        group_id: &str,
        members: &[MemberIdentity],
    ) -> Result<Vec<Result<(), GroupError>>, GroupError> {
        if group_id.is_empty() {
            return Err(GroupError::InvalidGroupId);
        }
        self.check_owned(group_id)?;
        let Some(group) = self.inner.group(group_id) else {
            return Ok(members
                .iter()
                .map(|_| Err(GroupError::UnknownMemberId))
                .collect());
        };
        let mut guard = group.lock();
        let g = &mut *guard;
        if g.state == GroupState::Dead {
            return Err(GroupError::CoordinatorNotAvailable);
        }
        let mut out = Vec::with_capacity(members.len());
        for who in members {
            let instance = who.group_instance_id.as_deref();
            let member_id = if who.member_id.is_empty() {
                match instance.and_then(|i| g.static_members.get(i)) {
                    Some(m) => m.clone(),
                    None => {
                        out.push(Err(GroupError::UnknownMemberId));
                        continue;
                    }
                }
            } else if g.is_fenced(instance, &who.member_id) {
                out.push(Err(GroupError::FencedInstanceId));
                continue;
            } else {
                who.member_id.clone()
            };
            if g.pending_members.remove(&member_id).is_some() {
                try_complete_join(&self.inner, &group, g);
                out.push(Ok(()));
            } else if g.members.contains_key(&member_id) {
                tracing::info!(group = %g.group_id, member = %member_id, "member left");
                remove_member_and_update(&self.inner, &group, g, &member_id);
                out.push(Ok(()));
            } else {
                out.push(Err(GroupError::UnknownMemberId));
            }
        }
        Ok(out)
    }
}

/// The checks shared by SyncGroup, Heartbeat and OffsetCommit-by-members, in Kafka's order.
fn check_member(
    g: &ClassicGroup,
    member_id: &str,
    instance: Option<&str>,
    generation_id: i32,
) -> Result<(), GroupError> {
    if g.state == GroupState::Dead {
        return Err(GroupError::CoordinatorNotAvailable);
    }
    if g.is_fenced(instance, member_id) {
        return Err(GroupError::FencedInstanceId);
    }
    if !g.members.contains_key(member_id) {
        return Err(GroupError::UnknownMemberId);
    }
    if generation_id != g.generation_id {
        return Err(GroupError::IllegalGeneration);
    }
    Ok(())
}

/// Pushes a member's session deadline out by its session timeout.
pub(crate) fn refresh(g: &mut ClassicGroup, member_id: &str) {
    if let Some(m) = g.members.get_mut(member_id) {
        m.deadline = Instant::now() + ms(m.session_timeout_ms);
    }
}

fn update_member(
    g: &mut ClassicGroup,
    member_id: &str,
    req: &JoinGroupRequest,
    waiter: Option<crate::group::JoinWaiter>,
) {
    if let Some(m) = g.members.get_mut(member_id) {
        m.protocols = req.protocols.clone();
        m.session_timeout_ms = req.session_timeout_ms;
        m.rebalance_timeout_ms = req.rebalance_timeout_ms;
        m.client_id = req.client_id.clone();
        m.client_host = req.client_host.clone();
        m.deadline = Instant::now() + ms(req.session_timeout_ms);
        if let Some(w) = waiter {
            m.join_waiter = Some(w);
        }
    }
}

fn add_member(
    inner: &Arc<Inner>,
    group: &GroupRef,
    g: &mut ClassicGroup,
    member_id: String,
    req: JoinGroupRequest,
    tx: crate::group::JoinWaiter,
) {
    let token = g.token();
    if g.members.is_empty() {
        g.protocol_type = Some(req.protocol_type.clone());
    }
    if let Some(i) = &req.group_instance_id {
        g.static_members.insert(i.clone(), member_id.clone());
    }
    if g.leader_id.is_none() {
        g.leader_id = Some(member_id.clone());
    }
    g.members.insert(
        member_id.clone(),
        Member {
            member_id: member_id.clone(),
            group_instance_id: req.group_instance_id,
            client_id: req.client_id,
            client_host: req.client_host,
            rebalance_timeout_ms: req.rebalance_timeout_ms,
            session_timeout_ms: req.session_timeout_ms,
            protocols: req.protocols,
            assignment: Bytes::new(),
            join_waiter: Some(tx),
            sync_waiter: None,
            deadline: Instant::now() + ms(req.session_timeout_ms),
            watch: token,
        },
    );
    if g.state == GroupState::PreparingRebalance && g.initial_delay_remaining_ms.is_some() {
        g.new_member_added = true;
    }
    spawn_session_watch(inner, group, member_id, token);
    if g.state == GroupState::PreparingRebalance {
        try_complete_join(inner, group, g);
    } else {
        prepare_rebalance(inner, group, g);
    }
}

/// KIP-345: a static member restarted (empty member id, known instance id) takes over the old
/// member's place under a new member id; a Stable group whose protocol choice and this member's
/// metadata are unchanged does not rebalance: the new id is persisted and the member is told
/// the current generation (with the *old* leader id, so a restarted leader does not reassign).
fn replace_static_member(
    inner: &Arc<Inner>,
    group: &GroupRef,
    g: &mut ClassicGroup,
    old_id: &str,
    req: JoinGroupRequest,
    tx: crate::group::JoinWaiter,
) {
    let Some(instance) = req.group_instance_id.clone() else {
        return;
    };
    let Some(mut m) = g.members.shift_remove(old_id) else {
        return;
    };
    let new_id = new_member_id(&instance);
    let old_leader = g.leader_id.clone().unwrap_or_default();
    if let Some(w) = m.join_waiter.take() {
        let _ = w.send(JoinGroupResponse::error(
            GroupError::FencedInstanceId,
            old_id.to_string(),
        ));
    }
    if let Some(w) = m.sync_waiter.take() {
        let _ = w.send(Err(GroupError::FencedInstanceId));
    }
    let selected = g.protocol_name.clone().unwrap_or_default();
    let old_metadata = m.metadata_for(&selected);
    let saved = SavedMember::of(&m);
    let token = g.token();
    m.member_id = new_id.clone();
    m.watch = token;
    g.members.insert(new_id.clone(), m);
    g.static_members.insert(instance.clone(), new_id.clone());
    if g.is_leader(old_id) {
        g.leader_id = Some(new_id.clone());
    }
    update_member(g, &new_id, &req, None);
    spawn_session_watch(inner, group, new_id.clone(), token);
    tracing::info!(group = %g.group_id, old = %old_id, new = %new_id, "static member rejoined");
    let metadata_unchanged = g
        .members
        .get(&new_id)
        .is_some_and(|m| m.metadata_for(&selected) == old_metadata);
    match g.state {
        GroupState::Stable
            if metadata_unchanged && g.select_protocol().as_deref() == Some(selected.as_str()) =>
        {
            let record = CoordinatorRecord::GroupMetadata {
                group: g.group_id.clone(),
                value: Some(g.to_value(None)),
            };
            let pending = inner.enqueue(g.partition, &[record]);
            let mut resp = g.join_response(&new_id, false);
            resp.leader = old_leader;
            let weak = inner.weak();
            let group = group.clone();
            let old_id = old_id.to_string();
            tokio::spawn(async move {
                let out = match wait(pending).await {
                    Ok(()) => resp,
                    Err(e) => {
                        if let Some(inner) = weak.upgrade() {
                            let mut guard = group.lock();
                            let revert = RevertStatic {
                                instance: &instance,
                                new_id: &new_id,
                                old_id,
                                saved,
                            };
                            revert_static_member(&inner, &group, &mut guard, revert);
                        }
                        JoinGroupResponse::error(e, String::new())
                    }
                };
                let _ = tx.send(out);
            });
        }
        GroupState::PreparingRebalance => {
            if let Some(m) = g.members.get_mut(&new_id) {
                m.join_waiter = Some(tx);
            }
            try_complete_join(inner, group, g);
        }
        _ => {
            if let Some(m) = g.members.get_mut(&new_id) {
                m.join_waiter = Some(tx);
            }
            prepare_rebalance(inner, group, g);
        }
    }
}

/// What a static member's replacement overwrote, kept to undo it if the write fails.
struct SavedMember {
    protocols: Vec<crate::api::Protocol>,
    session_timeout_ms: i32,
    rebalance_timeout_ms: i32,
    client_id: String,
    client_host: String,
}

impl SavedMember {
    fn of(m: &Member) -> SavedMember {
        SavedMember {
            protocols: m.protocols.clone(),
            session_timeout_ms: m.session_timeout_ms,
            rebalance_timeout_ms: m.rebalance_timeout_ms,
            client_id: m.client_id.clone(),
            client_host: m.client_host.clone(),
        }
    }
}

struct RevertStatic<'a> {
    instance: &'a str,
    new_id: &'a str,
    old_id: String,
    saved: SavedMember,
}

/// The GroupMetadata record naming a restarted static member's new id failed to be written:
/// give the member back its old id and settings (Kafka's `replaceStaticMember` back), so memory
/// matches the log again and the old incarnation keeps working. Does nothing if the group has
/// moved on (the new id is no longer that instance's member).
fn revert_static_member(
    inner: &Arc<Inner>,
    group: &GroupRef,
    g: &mut ClassicGroup,
    r: RevertStatic<'_>,
) {
    if g.state == GroupState::Dead
        || g.static_members.get(r.instance).map(String::as_str) != Some(r.new_id)
    {
        return;
    }
    let Some(mut m) = g.members.shift_remove(r.new_id) else {
        return;
    };
    if let Some(w) = m.join_waiter.take() {
        let _ = w.send(JoinGroupResponse::error(
            GroupError::FencedInstanceId,
            r.new_id.to_string(),
        ));
    }
    if let Some(w) = m.sync_waiter.take() {
        let _ = w.send(Err(GroupError::FencedInstanceId));
    }
    let token = g.token();
    m.member_id = r.old_id.clone();
    m.watch = token;
    m.protocols = r.saved.protocols;
    m.session_timeout_ms = r.saved.session_timeout_ms;
    m.rebalance_timeout_ms = r.saved.rebalance_timeout_ms;
    m.client_id = r.saved.client_id;
    m.client_host = r.saved.client_host;
    m.deadline = Instant::now() + ms(m.session_timeout_ms);
    g.members.insert(r.old_id.clone(), m);
    g.static_members
        .insert(r.instance.to_string(), r.old_id.clone());
    if g.is_leader(r.new_id) {
        g.leader_id = Some(r.old_id.clone());
    }
    tracing::warn!(group = %g.group_id, old = %r.old_id, new = %r.new_id, "static member rejoin not persisted; reverted");
    spawn_session_watch(inner, group, r.old_id, token);
}
