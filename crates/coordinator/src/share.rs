//! `ShareGroupCoordinator`: share groups (KIP-932) of the loaded `__consumer_offsets`
//! partitions — ShareGroupHeartbeat membership with server-side assignment, describe, list,
//! delete — over `strom_share::ShareGroup`, which holds the rules.
//!
//! A share group id lives in the one group namespace (a classic or consumer group of that id
//! refuses it, and the other way round, as Kafka). Membership is kept in memory: after a
//! coordinator failover members rejoin on UNKNOWN_MEMBER_ID, which every share consumer does
//! (Kafka persists share group metadata in `__consumer_offsets`; Strom does not yet). Expired
//! sessions are swept whenever the group is touched and on every listing.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use strom_share::{HeartbeatOutcome, ShareGroup, ShareGroupConfig, ShareGroupError};

use crate::api::GroupState;
use crate::consumer::ConsumerGroupCoordinator;
use crate::coordinator::GroupCoordinator;
use crate::error::GroupError;

type ShareGroupRef = Arc<Mutex<ShareGroup>>;

/// Why a share group request failed: the coordinator's error (not loaded here, wrong kind of
/// group) or the group's (Kafka's heartbeat errors).
#[derive(Debug, thiserror::Error)]
pub enum ShareGroupFailure {
    /// Coordinator-level error (NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS, ...).
    #[error(transparent)]
    Coordinator(#[from] GroupError),
    /// The group refused the request.
    #[error(transparent)]
    Group(#[from] ShareGroupError),
}

/// One member as ShareGroupDescribe reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareMemberDescription {
    /// Member id.
    pub member_id: String,
    /// Its epoch.
    pub member_epoch: i32,
    /// Subscribed topic names.
    pub subscribed_topic_names: Vec<String>,
    /// Assigned partitions by topic name.
    pub assignment: Vec<(String, Vec<i32>)>,
}

/// A share group as ShareGroupDescribe reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareGroupDescription {
    /// `Empty` or `Stable`.
    pub state: &'static str,
    /// Group epoch.
    pub group_epoch: i32,
    /// Assignment epoch.
    pub assignment_epoch: i32,
    /// Members.
    pub members: Vec<ShareMemberDescription>,
}

/// Share groups of this node. Cheap to clone; thread-safe.
#[derive(Debug, Clone)]
pub struct ShareGroupCoordinator {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: ShareGroupConfig,
    classic: GroupCoordinator,
    consumers: ConsumerGroupCoordinator,
    groups: RwLock<HashMap<String, ShareGroupRef>>,
}

fn state_name(g: &ShareGroup) -> &'static str {
    match g.state() {
        strom_share::ShareGroupState::Empty => "Empty",
        strom_share::ShareGroupState::Stable => "Stable",
    }
}

impl ShareGroupCoordinator {
    /// Share groups beside the classic and consumer groups of the same partitions.
    pub fn new(
        config: ShareGroupConfig,
        classic: GroupCoordinator,
        consumers: ConsumerGroupCoordinator,
    ) -> ShareGroupCoordinator {
        ShareGroupCoordinator {
            inner: Arc::new(Inner {
                config,
                classic,
                consumers,
                groups: RwLock::new(HashMap::new()),
            }),
        }
    }

    fn group(&self, group_id: &str) -> Option<ShareGroupRef> {
        self.inner.groups.read().get(group_id).cloned()
    }

    /// Whether `group_id` is a share group here.
    pub fn is_share_group(&self, group_id: &str) -> bool {
        self.group(group_id).is_some()
    }

    /// Whether another kind of group holds `group_id` (one namespace).
    fn taken_by_another_kind(&self, group_id: &str) -> bool {
        let classic = self
            .inner
            .classic
            .describe_group(group_id)
            .is_ok_and(|d| d.state != GroupState::Dead);
        classic || self.inner.consumers.is_consumer_group(group_id)
    }

    /// ShareGroupHeartbeat: join (epoch 0), heartbeat, or leave (epoch -1).
    /// `partition_count` resolves a subscribed topic to its partition count.
    pub fn heartbeat(
        &self,
        group_id: &str,
        member_id: &str,
        member_epoch: i32,
        subscribed_topic_names: Option<&[String]>,
        now_ms: u64,
        partition_count: impl Fn(&str) -> Option<u32>,
    ) -> Result<HeartbeatOutcome, ShareGroupFailure> {
        if group_id.is_empty() {
            return Err(GroupError::InvalidRequest("empty group id").into());
        }
        self.inner.classic.check_owned(group_id)?;
        let group = match self.group(group_id) {
            Some(g) => g,
            None if self.taken_by_another_kind(group_id) => {
                return Err(GroupError::GroupIdNotFound.into());
            }
            None => self
                .inner
                .groups
                .write()
                .entry(group_id.to_string())
                .or_insert_with(|| {
                    Arc::new(Mutex::new(ShareGroup::new(group_id, self.inner.config)))
                })
                .clone(),
        };
        let mut g = group.lock();
        for expired in g.expire_sessions(now_ms) {
            tracing::info!(group = group_id, member = %expired, "share group member expired");
        }
        Ok(g.heartbeat(
            member_id,
            member_epoch,
            subscribed_topic_names,
            now_ms,
            partition_count,
        )?)
    }

    /// ShareGroupDescribe of one group.
    pub fn describe(
        &self,
        group_id: &str,
        now_ms: u64,
    ) -> Result<ShareGroupDescription, GroupError> {
        self.inner.classic.check_owned(group_id)?;
        let group = self.group(group_id).ok_or(GroupError::GroupIdNotFound)?;
        let mut g = group.lock();
        g.expire_sessions(now_ms);
        let members = g
            .members()
            .values()
            .map(|m| ShareMemberDescription {
                member_id: m.member_id.clone(),
                member_epoch: m.member_epoch,
                subscribed_topic_names: m.subscribed_topic_names.iter().cloned().collect(),
                assignment: m
                    .assigned_partitions
                    .iter()
                    .map(|(t, ps)| (t.clone(), ps.iter().copied().collect()))
                    .collect(),
            })
            .collect();
        Ok(ShareGroupDescription {
            state: state_name(&g),
            group_epoch: g.group_epoch(),
            assignment_epoch: g.assignment_epoch(),
            members,
        })
    }

    /// Every share group here with its state, sorted by id.
    pub fn list_groups(&self, now_ms: u64) -> Vec<(String, &'static str)> {
        let groups: Vec<ShareGroupRef> = self.inner.groups.read().values().cloned().collect();
        let mut out: Vec<(String, &'static str)> = groups
            .iter()
            .map(|g| {
                let mut g = g.lock();
                g.expire_sessions(now_ms);
                (g.group_id().to_string(), state_name(&g))
            })
            .collect();
        out.sort();
        out
    }

    /// The admin share-group offset APIs (Alter/DeleteShareGroupOffsets) need an empty group:
    /// NON_EMPTY_GROUP while it has members; another kind of group of that id is
    /// GROUP_ID_NOT_FOUND; a share group unknown here (never joined, or not since this node took
    /// over) is empty.
    pub fn check_empty(&self, group_id: &str, now_ms: u64) -> Result<(), GroupError> {
        self.inner.classic.check_owned(group_id)?;
        match self.group(group_id) {
            Some(group) => {
                let mut g = group.lock();
                g.expire_sessions(now_ms);
                if g.members().is_empty() {
                    Ok(())
                } else {
                    Err(GroupError::NonEmptyGroup)
                }
            }
            None if self.taken_by_another_kind(group_id) => Err(GroupError::GroupIdNotFound),
            None => Ok(()),
        }
    }

    /// Whether `group_id` is owned here (NOT_COORDINATOR, LOAD_IN_PROGRESS otherwise).
    pub fn check_owned(&self, group_id: &str) -> Result<(), GroupError> {
        self.inner.classic.check_owned(group_id)
    }

    /// DeleteGroups of a share group: only an empty one (NON_EMPTY_GROUP otherwise).
    pub fn delete_group(&self, group_id: &str, now_ms: u64) -> Result<(), GroupError> {
        self.inner.classic.check_owned(group_id)?;
        let group = self.group(group_id).ok_or(GroupError::GroupIdNotFound)?;
        let empty = {
            let mut g = group.lock();
            g.expire_sessions(now_ms);
            g.members().is_empty()
        };
        if !empty {
            return Err(GroupError::NonEmptyGroup);
        }
        self.inner.groups.write().remove(group_id);
        Ok(())
    }
}
