//! `ConsumerGroup`: the in-memory state of one KIP-848 consumer group — group epoch, target
//! assignment (and its epoch), the subscribed topics' metadata the target was computed from, and
//! each member's subscription and current assignment. Not thread-safe: it lives behind its
//! group's mutex, held only for in-memory work (see `coordinator.rs`).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use tokio::time::Instant;
use uuid::Uuid;

use super::assignor::Assignment;
use super::reconcile::CurrentAssignment;

/// A subscribed topic as last seen: (name, partition count), by topic id.
pub(crate) type SubscribedTopics = BTreeMap<Uuid, (String, i32)>;

/// One member.
#[derive(Debug, Clone)]
pub(crate) struct ConsumerMember {
    pub(crate) member_id: String,
    pub(crate) instance_id: Option<String>,
    pub(crate) rack_id: Option<String>,
    pub(crate) client_id: String,
    pub(crate) client_host: String,
    pub(crate) subscribed_topic_names: Vec<String>,
    pub(crate) subscribed_topic_regex: Option<String>,
    pub(crate) compiled_regex: Option<regex::Regex>,
    pub(crate) server_assignor: Option<String>,
    pub(crate) rebalance_timeout_ms: i32,
    pub(crate) current: CurrentAssignment,
    /// Session expiry.
    pub(crate) deadline: Instant,
    /// Set while the member must revoke: fenced if still unrevoked by then.
    pub(crate) revocation_deadline: Option<Instant>,
    /// A static member that left with epoch -2: kept (with its partitions) for its instance to
    /// come back within the session timeout.
    pub(crate) left_static: bool,
}

impl ConsumerMember {
    pub(crate) fn new(member_id: String, deadline: Instant) -> Self {
        ConsumerMember {
            member_id,
            instance_id: None,
            rack_id: None,
            client_id: String::new(),
            client_host: String::new(),
            subscribed_topic_names: Vec::new(),
            subscribed_topic_regex: None,
            compiled_regex: None,
            server_assignor: None,
            rebalance_timeout_ms: -1,
            current: CurrentAssignment::default(),
            deadline,
            revocation_deadline: None,
            left_static: false,
        }
    }

    /// Whether this member subscribes to `name`.
    pub(crate) fn subscribes(&self, name: &str, unresolved: &BTreeSet<String>) -> bool {
        self.subscribed_topic_names.iter().any(|t| t == name)
            || self.regex_matches(name, unresolved)
    }

    /// Whether the member's regex matches `name`; a regex the group has not resolved yet
    /// matches nothing.
    fn regex_matches(&self, name: &str, unresolved: &BTreeSet<String>) -> bool {
        let resolved = self
            .subscribed_topic_regex
            .as_ref()
            .is_some_and(|r| !unresolved.contains(r));
        resolved
            && self
                .compiled_regex
                .as_ref()
                .is_some_and(|r| !name.starts_with("__") && r.is_match(name))
    }
}

/// One consumer group.
#[derive(Debug)]
pub(crate) struct ConsumerGroup {
    pub(crate) group_id: String,
    /// Partition of `__consumer_offsets` holding the group.
    pub(crate) partition: i32,
    pub(crate) group_epoch: i32,
    pub(crate) assignment_epoch: i32,
    /// The assignor that computed the target.
    pub(crate) assignor: String,
    /// Topic metadata the current group epoch was computed against.
    pub(crate) subscribed: SubscribedTopics,
    pub(crate) members: BTreeMap<String, ConsumerMember>,
    /// instance id → member id.
    pub(crate) static_members: HashMap<String, String>,
    pub(crate) target: BTreeMap<String, Assignment>,
    /// Regexes new to the group at the last heartbeat, not resolved against the topics yet.
    /// Kafka resolves a new regex asynchronously, so the heartbeat that brings it answers with
    /// the literal topics only and a later one adds the matches (librdkafka's 0045 expects that
    /// order); here the next heartbeat of the group resolves them. In memory only: a group
    /// loaded from its records has every regex resolved.
    pub(crate) unresolved_regexes: BTreeSet<String>,
    /// Deleted (DeleteGroups / converted to classic): the next user creates a fresh group.
    pub(crate) dead: bool,
}

impl ConsumerGroup {
    pub(crate) fn new(group_id: String, partition: i32) -> Self {
        ConsumerGroup {
            group_id,
            partition,
            group_epoch: 0,
            assignment_epoch: 0,
            assignor: String::new(),
            subscribed: SubscribedTopics::new(),
            members: BTreeMap::new(),
            static_members: HashMap::new(),
            target: BTreeMap::new(),
            unresolved_regexes: BTreeSet::new(),
            dead: false,
        }
    }

    /// Kafka's consumer group state names.
    pub(crate) fn state(&self) -> &'static str {
        if self.members.is_empty() {
            "Empty"
        } else if self.group_epoch > self.assignment_epoch {
            "Assigning"
        } else if self.members.values().any(|m| {
            m.current.member_epoch != self.assignment_epoch
                || m.current.state != super::reconcile::MemberState::Stable
        }) {
            "Reconciling"
        } else {
            "Stable"
        }
    }

    /// Whether a member other than `except` holds (assigned or pending revocation) the partition.
    pub(crate) fn held_by_other(&self, except: &str, topic: &Uuid, p: i32) -> bool {
        self.members.iter().any(|(id, m)| {
            id != except
                && (m
                    .current
                    .assigned
                    .get(topic)
                    .is_some_and(|s| s.contains(&p))
                    || m.current
                        .pending_revocation
                        .get(topic)
                        .is_some_and(|s| s.contains(&p)))
        })
    }

    /// Every (topic, partition) held by some member: at most once each (the invariant tests check).
    #[cfg(test)]
    pub(crate) fn holders(&self) -> BTreeMap<(Uuid, i32), BTreeSet<String>> {
        let mut out: BTreeMap<(Uuid, i32), BTreeSet<String>> = BTreeMap::new();
        for (id, m) in &self.members {
            for a in [&m.current.assigned, &m.current.pending_revocation] {
                for (t, ps) in a {
                    for p in ps {
                        out.entry((*t, *p)).or_default().insert(id.clone());
                    }
                }
            }
        }
        out
    }

    /// The topic names any member subscribes to, resolved against `names` (all topics).
    pub(crate) fn subscribed_names(&self, names: &[String]) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for m in self.members.values() {
            out.extend(m.subscribed_topic_names.iter().cloned());
            if m.compiled_regex.is_some() {
                out.extend(
                    names
                        .iter()
                        .filter(|n| m.regex_matches(n, &self.unresolved_regexes))
                        .cloned(),
                );
            }
        }
        out
    }

    /// The assignor the members prefer most (ties by name), else `default`.
    pub(crate) fn preferred_assignor(&self, default: &str) -> String {
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for m in self.members.values() {
            if let Some(a) = &m.server_assignor {
                *votes.entry(a.as_str()).or_default() += 1;
            }
        }
        votes
            .into_iter()
            .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(a.0)))
            .map_or_else(|| default.to_string(), |(a, _)| a.to_string())
    }
}

/// An assignment as wire-ready (topic id, sorted partitions) pairs.
pub(crate) fn to_list(a: &Assignment) -> Vec<(Uuid, Vec<i32>)> {
    a.iter()
        .map(|(t, ps)| (*t, ps.iter().copied().collect()))
        .collect()
}

/// The inverse of [`to_list`] (duplicates collapse).
pub(crate) fn from_list(list: &[(Uuid, Vec<i32>)]) -> Assignment {
    let mut a = Assignment::new();
    for (t, ps) in list {
        if !ps.is_empty() {
            a.entry(*t).or_default().extend(ps.iter().copied());
        }
    }
    a
}
