//! `ClassicGroup`: the in-memory state of one classic consumer group (members, generation,
//! protocol, leader, committed offsets) and the pure helpers its transitions use (protocol
//! selection, join completeness, the record image of the group). Not thread-safe: it lives
//! behind its group's mutex ([`GroupRef`]), which is only ever held for in-memory work.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use bytes::Bytes;
use indexmap::IndexMap;
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::api::{GroupState, JoinGroupResponse, JoinedMember, Protocol, SyncGroupResult};
use crate::error::GroupError;
use crate::offset_writes::OffsetWrites;
use crate::record::{subscribed_topics, GroupValue, MemberValue, OffsetAndMetadata};

/// A shared, locked group.
pub(crate) type GroupRef = Arc<parking_lot::Mutex<ClassicGroup>>;

pub(crate) type JoinWaiter = oneshot::Sender<JoinGroupResponse>;
pub(crate) type SyncWaiter = oneshot::Sender<Result<SyncGroupResult, GroupError>>;

/// One member.
#[derive(Debug)]
pub(crate) struct Member {
    pub(crate) member_id: String,
    pub(crate) group_instance_id: Option<String>,
    pub(crate) client_id: String,
    pub(crate) client_host: String,
    pub(crate) rebalance_timeout_ms: i32,
    pub(crate) session_timeout_ms: i32,
    pub(crate) protocols: Vec<Protocol>,
    pub(crate) assignment: Bytes,
    /// Set while a JoinGroup waits for the rebalance to complete.
    pub(crate) join_waiter: Option<JoinWaiter>,
    /// Set while a SyncGroup waits for the leader's assignment.
    pub(crate) sync_waiter: Option<SyncWaiter>,
    /// Expired by its session watch once past this (unless awaiting join or sync).
    pub(crate) deadline: Instant,
    /// Identifies the session-watch task of this incarnation.
    pub(crate) watch: u64,
}

impl Member {
    pub(crate) fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|p| p.name == protocol)
            .map(|p| p.metadata.clone())
            .unwrap_or_default()
    }
}

/// The state of one group. Fields are public to the crate; the transitions live in `classic.rs`
/// (membership) and `offsets.rs` (commits).
#[derive(Debug)]
pub(crate) struct ClassicGroup {
    pub(crate) group_id: String,
    /// Partition of `__consumer_offsets` holding this group.
    pub(crate) partition: i32,
    pub(crate) state: GroupState,
    /// When the state last changed (ms since the epoch); offsets of an Empty group expire from it.
    pub(crate) state_timestamp_ms: i64,
    pub(crate) protocol_type: Option<String>,
    pub(crate) protocol_name: Option<String>,
    pub(crate) generation_id: i32,
    pub(crate) leader_id: Option<String>,
    /// Members in join order (the first joined becomes leader).
    pub(crate) members: IndexMap<String, Member>,
    /// KIP-394: ids handed out with MEMBER_ID_REQUIRED, awaiting the second join (id → token).
    pub(crate) pending_members: HashMap<String, u64>,
    /// KIP-345: group.instance.id → member id.
    pub(crate) static_members: HashMap<String, String>,
    /// Durable committed offsets only (see `offsets.rs`).
    pub(crate) offsets: BTreeMap<(String, i32), OffsetAndMetadata>,
    /// Offset changes queued but not yet durable.
    pub(crate) offset_writes: OffsetWrites,
    /// Identifies the current rebalance timer; bumped on every new one.
    pub(crate) rebalance_token: u64,
    /// Inside `group.initial.rebalance.delay.ms` (the group was Empty when the rebalance began).
    pub(crate) initial_delay_remaining_ms: Option<u64>,
    /// A member joined during the initial delay (extends it, as Kafka's InitialDelayedJoin).
    pub(crate) new_member_added: bool,
    /// The generation whose leader assignment is being written.
    pub(crate) sync_in_flight: Option<i32>,
    /// Whether a GroupMetadata record exists for the group (not only offsets).
    pub(crate) has_metadata: bool,
    /// Source of watch / pending tokens.
    pub(crate) next_token: u64,
}

impl ClassicGroup {
    pub(crate) fn new(group_id: String, partition: i32, now_ms: i64) -> Self {
        ClassicGroup {
            group_id,
            partition,
            state: GroupState::Empty,
            state_timestamp_ms: now_ms,
            protocol_type: None,
            protocol_name: None,
            generation_id: 0,
            leader_id: None,
            members: IndexMap::new(),
            pending_members: HashMap::new(),
            static_members: HashMap::new(),
            offsets: BTreeMap::new(),
            offset_writes: OffsetWrites::default(),
            rebalance_token: 0,
            initial_delay_remaining_ms: None,
            new_member_added: false,
            sync_in_flight: None,
            has_metadata: false,
            next_token: 0,
        }
    }

    pub(crate) fn token(&mut self) -> u64 {
        self.next_token += 1;
        self.next_token
    }

    pub(crate) fn transition(&mut self, to: GroupState, now_ms: i64) {
        tracing::debug!(group = %self.group_id, from = self.state.as_str(), to = to.as_str(), generation = self.generation_id, "group state");
        self.state = to;
        self.state_timestamp_ms = now_ms;
    }

    pub(crate) fn is_leader(&self, member_id: &str) -> bool {
        self.leader_id.as_deref() == Some(member_id)
    }

    /// KIP-345: a request naming `instance` but a different member id is from a fenced instance.
    pub(crate) fn is_fenced(&self, instance: Option<&str>, member_id: &str) -> bool {
        match instance.and_then(|i| self.static_members.get(i)) {
            Some(current) => current != member_id,
            None => false,
        }
    }

    /// Whether a member with these protocols may join: same protocol type, and at least one
    /// protocol every other member supports. `except` is the joining member itself, if known.
    pub(crate) fn supports(
        &self,
        protocol_type: &str,
        protocols: &[Protocol],
        except: Option<&str>,
    ) -> bool {
        if protocol_type.is_empty() || protocols.is_empty() {
            return false;
        }
        let others: Vec<&Member> = self
            .members
            .values()
            .filter(|m| Some(m.member_id.as_str()) != except)
            .collect();
        if others.is_empty() {
            return self.state == GroupState::Empty
                || self
                    .protocol_type
                    .as_deref()
                    .is_none_or(|t| t == protocol_type);
        }
        if self.protocol_type.as_deref() != Some(protocol_type) {
            return false;
        }
        protocols.iter().any(|p| {
            others
                .iter()
                .all(|m| m.protocols.iter().any(|q| q.name == p.name))
        })
    }

    /// Kafka's protocol selection: among protocols every member supports, each member votes for
    /// its most preferred; most votes wins, ties go to the leader's preference order.
    pub(crate) fn select_protocol(&self) -> Option<String> {
        let first = self.members.values().next()?;
        let leader = self
            .leader_id
            .as_ref()
            .and_then(|l| self.members.get(l))
            .unwrap_or(first);
        let candidates: Vec<&str> = leader
            .protocols
            .iter()
            .map(|p| p.name.as_str())
            .filter(|name| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|q| q.name == *name))
            })
            .collect();
        let mut votes: HashMap<&str, usize> = HashMap::new();
        for m in self.members.values() {
            if let Some(p) = m
                .protocols
                .iter()
                .find(|p| candidates.contains(&p.name.as_str()))
            {
                *votes.entry(p.name.as_str()).or_default() += 1;
            }
        }
        let best = votes.values().copied().max()?;
        candidates
            .into_iter()
            .find(|c| votes.get(c) == Some(&best))
            .map(String::from)
    }

    /// Every member is waiting in JoinGroup and no KIP-394 member is still to come back.
    pub(crate) fn all_members_joined(&self) -> bool {
        self.pending_members.is_empty() && self.members.values().all(|m| m.join_waiter.is_some())
    }

    pub(crate) fn max_rebalance_timeout_ms(&self) -> u64 {
        self.members
            .values()
            .map(|m| u64::try_from(m.rebalance_timeout_ms).unwrap_or(0))
            .max()
            .unwrap_or(0)
    }

    /// The JoinGroup answer for `member_id` in the current generation (the leader gets everyone).
    pub(crate) fn join_response(&self, member_id: &str, leader_view: bool) -> JoinGroupResponse {
        let protocol = self.protocol_name.clone().unwrap_or_default();
        let members = if leader_view && self.is_leader(member_id) {
            self.members
                .values()
                .map(|m| JoinedMember {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    metadata: m.metadata_for(&protocol),
                })
                .collect()
        } else {
            Vec::new()
        };
        JoinGroupResponse {
            error: None,
            generation_id: self.generation_id,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader: self.leader_id.clone().unwrap_or_default(),
            member_id: member_id.to_string(),
            members,
        }
    }

    /// The GroupMetadataValue of the group, with `assignments` overriding members' current ones.
    pub(crate) fn to_value(&self, assignments: Option<&HashMap<String, Bytes>>) -> GroupValue {
        let protocol = self.protocol_name.clone().unwrap_or_default();
        GroupValue {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation_id,
            protocol: self.protocol_name.clone(),
            leader: self.leader_id.clone(),
            current_state_timestamp_ms: self.state_timestamp_ms,
            members: self
                .members
                .values()
                .map(|m| MemberValue {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    session_timeout_ms: m.session_timeout_ms,
                    subscription: m.metadata_for(&protocol),
                    assignment: assignments
                        .and_then(|a| a.get(&m.member_id).cloned())
                        .unwrap_or_else(|| m.assignment.clone()),
                })
                .collect(),
        }
    }

    /// Topics the members of a `consumer` group subscribe to; `None` if not a consumer group or a
    /// subscription does not parse (callers then treat every topic as subscribed).
    pub(crate) fn subscribed_topics(&self) -> Option<BTreeSet<String>> {
        if self.protocol_type.as_deref() != Some("consumer") {
            return None;
        }
        let protocol = self.protocol_name.as_deref()?;
        let mut out = BTreeSet::new();
        for m in self.members.values() {
            out.extend(subscribed_topics(&m.metadata_for(protocol))?);
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, protocols: &[&str]) -> Member {
        Member {
            member_id: id.into(),
            group_instance_id: None,
            client_id: String::new(),
            client_host: String::new(),
            rebalance_timeout_ms: 1000,
            session_timeout_ms: 1000,
            protocols: protocols
                .iter()
                .map(|p| Protocol {
                    name: (*p).into(),
                    metadata: Bytes::new(),
                })
                .collect(),
            assignment: Bytes::new(),
            join_waiter: None,
            sync_waiter: None,
            deadline: Instant::now(),
            watch: 0,
        }
    }

    #[test]
    fn protocol_selection_by_votes_then_leader_order() {
        let mut g = ClassicGroup::new("g".into(), 0, 0);
        g.protocol_type = Some("consumer".into());
        g.members
            .insert("a".into(), member("a", &["range", "roundrobin"]));
        g.members
            .insert("b".into(), member("b", &["roundrobin", "range", "sticky"]));
        g.leader_id = Some("a".into());
        // One vote each: the leader's order wins the tie.
        assert_eq!(g.select_protocol().as_deref(), Some("range"));
        g.members
            .insert("c".into(), member("c", &["roundrobin", "range"]));
        assert_eq!(g.select_protocol().as_deref(), Some("roundrobin"));
        // "sticky" is not supported by everyone.
        assert!(!g.supports("consumer", &member("d", &["sticky"]).protocols, None));
        assert!(g.supports(
            "consumer",
            &member("d", &["sticky", "range"]).protocols,
            None
        ));
        assert!(!g.supports("other", &member("d", &["range"]).protocols, None));
    }
}
