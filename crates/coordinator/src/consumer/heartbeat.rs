//! The ConsumerGroupHeartbeat transition of one group (KIP-848), run under the group's mutex:
//! join / leave / static replacement, subscription and topic-metadata changes (each bumps the
//! group epoch), target assignment when the group epoch is ahead of it, then one reconciliation
//! step of the calling member. Returns the response and the records that make the change durable.

use std::collections::BTreeMap;

use tokio::time::{Duration, Instant};

use super::api::{ConsumerGroupConfig, HeartbeatRequest, HeartbeatResponse, TopicMetadata};
use super::assignor::{assign, Assignment, MemberSubscription};
use super::group::{from_list, to_list, ConsumerGroup, ConsumerMember, SubscribedTopics};
use super::reconcile::{reconcile, CurrentAssignment, MemberState};
use super::record::{ConsumerRecord, GroupValue, MemberValue};
use crate::error::GroupError;

/// Member epoch of a leave request.
pub(crate) const LEAVE_EPOCH: i32 = -1;
/// Member epoch of a static member's temporary leave.
pub(crate) const LEAVE_STATIC_EPOCH: i32 = -2;

/// What a heartbeat transition needs besides the group.
pub(crate) struct Env<'a> {
    pub(crate) config: &'a ConsumerGroupConfig,
    pub(crate) topics: &'a dyn TopicMetadata,
    pub(crate) now: Instant,
}

type Outcome = Result<(HeartbeatResponse, Vec<ConsumerRecord>), GroupError>;

fn ms(v: i32) -> Duration {
    Duration::from_millis(u64::try_from(v).unwrap_or(0))
}

/// Compiles a subscription regex with Kafka's whole-name match semantics (RE2/J `matches()`).
pub(crate) fn compile_regex(r: &str) -> Result<regex::Regex, GroupError> {
    regex::Regex::new(&format!("^(?:{r})$")).map_err(|_| GroupError::InvalidRegularExpression)
}

/// Runs one heartbeat against `g`.
pub(crate) fn heartbeat(g: &mut ConsumerGroup, req: &HeartbeatRequest, env: &Env<'_>) -> Outcome {
    let mut records = Vec::new();
    match req.member_epoch {
        LEAVE_EPOCH | LEAVE_STATIC_EPOCH => return leave(g, req, env),
        e if e < LEAVE_STATIC_EPOCH => return Err(GroupError::InvalidRequest("bad member epoch")),
        _ => {}
    }
    if let Some(a) = &req.server_assignor {
        if !env.config.assignors.iter().any(|x| x == a) {
            return Err(GroupError::UnsupportedAssignor);
        }
    }
    let regex = match req.subscribed_topic_regex.as_deref() {
        Some(r) if !r.is_empty() => Some(compile_regex(r)?),
        _ => None,
    };
    let joining = req.member_epoch == 0;
    let member_id = if req.member_id.is_empty() {
        if !joining {
            return Err(GroupError::UnknownMemberId);
        }
        uuid::Uuid::new_v4().to_string()
    } else {
        req.member_id.clone()
    };
    let mut bump = false;
    if joining {
        if req.subscribed_topic_names.is_none() && req.subscribed_topic_regex.is_none() {
            return Err(GroupError::InvalidRequest(
                "a joining member must subscribe",
            ));
        }
        bump |= join(g, req, &member_id, env, &mut records)?;
    } else {
        let m = g
            .members
            .get(&member_id)
            .ok_or(GroupError::UnknownMemberId)?;
        check_epoch(m, req)?;
    }
    let Some(m) = g.members.get_mut(&member_id) else {
        return Err(GroupError::UnknownMemberId);
    };
    m.deadline = env.now + ms(env.config.session_timeout_ms);
    // Regexes new at an earlier heartbeat are resolved now (`refresh_metadata` below).
    g.unresolved_regexes.clear();
    let Some(m) = g.members.get_mut(&member_id) else {
        return Err(GroupError::UnknownMemberId);
    };
    // Subscription changes (None = unchanged).
    let before = MemberValue::of(m);
    if let Some(names) = &req.subscribed_topic_names {
        let mut names = names.clone();
        names.sort();
        names.dedup();
        m.subscribed_topic_names = names;
    }
    if let Some(r) = &req.subscribed_topic_regex {
        m.subscribed_topic_regex = Some(r.clone()).filter(|r| !r.is_empty());
        m.compiled_regex = regex;
    }
    if req.server_assignor.is_some() {
        m.server_assignor = req.server_assignor.clone();
    }
    if req.rebalance_timeout_ms >= 0 {
        m.rebalance_timeout_ms = req.rebalance_timeout_ms;
    }
    if req.rack_id.is_some() {
        m.rack_id = req.rack_id.clone();
    }
    if !req.client_id.is_empty() {
        m.client_id = req.client_id.clone();
        m.client_host = req.client_host.clone();
    }
    let after = MemberValue::of(m);
    // A regex no other member subscribes to is new to the group: resolved at a later heartbeat.
    if let Some(r) = after
        .regex
        .as_ref()
        .filter(|r| before.regex.as_ref() != Some(r))
    {
        let known = g
            .members
            .iter()
            .any(|(id, o)| *id != member_id && o.subscribed_topic_regex.as_ref() == Some(r));
        if !known {
            g.unresolved_regexes.insert(r.clone());
        }
    }
    if after != before || joining {
        let subscription_changed = after.topic_names != before.topic_names
            || after.regex != before.regex
            || after.server_assignor != before.server_assignor;
        bump |= subscription_changed;
        records.push(ConsumerRecord::Member {
            group: g.group_id.clone(),
            member: member_id.clone(),
            value: Some(after),
        });
    }
    bump |= refresh_metadata(g, env.topics);
    if bump {
        g.group_epoch += 1;
        records.push(group_record(g));
    }
    if g.group_epoch > g.assignment_epoch {
        compute_target(g, env.config, &mut records);
    }
    let assignment = reconcile_member(g, &member_id, req, env, &mut records);
    let epoch = g
        .members
        .get(&member_id)
        .map_or(0, |m| m.current.member_epoch);
    Ok((
        HeartbeatResponse {
            member_id,
            member_epoch: epoch,
            heartbeat_interval_ms: env.config.heartbeat_interval_ms,
            assignment,
        },
        records,
    ))
}

/// Kafka's epoch check: a newer epoch is fenced; an older one only if it is the previous epoch and
/// the member owns nothing outside its assignment (its last response was lost).
fn check_epoch(m: &ConsumerMember, req: &HeartbeatRequest) -> Result<(), GroupError> {
    let cur = &m.current;
    if m.left_static || req.member_epoch > cur.member_epoch {
        return Err(GroupError::FencedMemberEpoch);
    }
    if req.member_epoch < cur.member_epoch {
        let owned = req.owned_partitions.as_deref().map(from_list);
        let subset = owned.is_some_and(|o| {
            o.iter()
                .all(|(t, ps)| cur.assigned.get(t).is_some_and(|a| ps.is_subset(a)))
        });
        if req.member_epoch != cur.previous_member_epoch || !subset {
            return Err(GroupError::FencedMemberEpoch);
        }
    }
    Ok(())
}

/// Epoch 0: a new member, a member rejoining after being fenced (it owns nothing any more), or a
/// static member replacing its previous incarnation. Returns whether the group epoch must move.
fn join(
    g: &mut ConsumerGroup,
    req: &HeartbeatRequest,
    member_id: &str,
    env: &Env<'_>,
    records: &mut Vec<ConsumerRecord>,
) -> Result<bool, GroupError> {
    let deadline = env.now + ms(env.config.session_timeout_ms);
    if let Some(instance) = &req.instance_id {
        if let Some(old_id) = g.static_members.get(instance).cloned() {
            if old_id != member_id {
                let old_left = g.members.get(&old_id).is_none_or(|m| m.left_static);
                if !old_left {
                    return Err(GroupError::UnreleasedInstanceId);
                }
                // The new incarnation takes over the old one's partitions and epoch.
                if let Some(mut m) = g.members.remove(&old_id) {
                    records.extend(member_tombstones(&g.group_id, &old_id));
                    let target = g.target.remove(&old_id).unwrap_or_default();
                    m.member_id = member_id.to_string();
                    m.left_static = false;
                    // It owns nothing yet: reconciliation hands the kept partitions back.
                    m.current.member_epoch = 0;
                    m.current.state = MemberState::Stable;
                    m.current.pending_revocation.clear();
                    m.deadline = deadline;
                    records.push(ConsumerRecord::Target {
                        group: g.group_id.clone(),
                        member: member_id.to_string(),
                        value: Some(target.clone()),
                    });
                    records.push(current_record(&g.group_id, member_id, &m.current));
                    g.target.insert(member_id.to_string(), target);
                    g.members.insert(member_id.to_string(), m);
                }
                g.static_members
                    .insert(instance.clone(), member_id.to_string());
                return Ok(false);
            }
        }
    }
    match g.members.get_mut(member_id) {
        Some(m) => {
            // Rejoining with epoch 0: the member dropped everything it owned.
            m.left_static = false;
            if m.current != CurrentAssignment::default() {
                m.current = CurrentAssignment::default();
                records.push(current_record(&g.group_id, member_id, &m.current));
            }
            Ok(false)
        }
        None => {
            if g.members.len() >= env.config.max_size {
                return Err(GroupError::GroupMaxSizeReached);
            }
            let mut m = ConsumerMember::new(member_id.to_string(), deadline);
            m.instance_id = req.instance_id.clone();
            if let Some(i) = &req.instance_id {
                g.static_members.insert(i.clone(), member_id.to_string());
            }
            g.members.insert(member_id.to_string(), m);
            Ok(true)
        }
    }
}

/// Epoch -1 (leave) or -2 (a static member's temporary leave).
fn leave(g: &mut ConsumerGroup, req: &HeartbeatRequest, env: &Env<'_>) -> Outcome {
    let static_leave = req.member_epoch == LEAVE_STATIC_EPOCH;
    let member_id = if req.member_id.is_empty() {
        req.instance_id
            .as_ref()
            .and_then(|i| g.static_members.get(i).cloned())
            .unwrap_or_default()
    } else {
        req.member_id.clone()
    };
    let mut records = Vec::new();
    match g.members.get_mut(&member_id) {
        None => return Err(GroupError::UnknownMemberId),
        Some(m) if static_leave && m.instance_id.is_some() => {
            m.left_static = true;
            m.current.member_epoch = LEAVE_STATIC_EPOCH;
            m.deadline = env.now + ms(env.config.session_timeout_ms);
            records.push(current_record(&g.group_id, &member_id, &m.current));
        }
        Some(_) => records.extend(remove_member(g, &member_id)),
    }
    Ok((
        HeartbeatResponse {
            member_id,
            member_epoch: req.member_epoch,
            heartbeat_interval_ms: 0,
            assignment: None,
        },
        records,
    ))
}

/// Removes a member (leave, session expiry, overdue revocation) and bumps the group epoch.
pub(crate) fn remove_member(g: &mut ConsumerGroup, member_id: &str) -> Vec<ConsumerRecord> {
    let Some(m) = g.members.remove(member_id) else {
        return Vec::new();
    };
    if let Some(i) = &m.instance_id {
        if g.static_members.get(i).is_some_and(|id| id == member_id) {
            g.static_members.remove(i);
        }
    }
    g.target.remove(member_id);
    let mut records = member_tombstones(&g.group_id, member_id);
    g.group_epoch += 1;
    records.push(group_record(g));
    records
}

fn member_tombstones(group: &str, member: &str) -> Vec<ConsumerRecord> {
    vec![
        ConsumerRecord::Current {
            group: group.into(),
            member: member.into(),
            value: None,
        },
        ConsumerRecord::Target {
            group: group.into(),
            member: member.into(),
            value: None,
        },
        ConsumerRecord::Member {
            group: group.into(),
            member: member.into(),
            value: None,
        },
    ]
}

fn current_record(group: &str, member: &str, c: &CurrentAssignment) -> ConsumerRecord {
    ConsumerRecord::Current {
        group: group.into(),
        member: member.into(),
        value: Some(c.clone()),
    }
}

pub(crate) fn group_record(g: &ConsumerGroup) -> ConsumerRecord {
    ConsumerRecord::Group {
        group: g.group_id.clone(),
        value: Some(GroupValue {
            epoch: g.group_epoch,
            assignor: g.assignor.clone(),
            topics: g
                .subscribed
                .iter()
                .map(|(id, (n, c))| (*id, n.clone(), *c))
                .collect(),
        }),
    }
}

/// Re-resolves the subscribed topics (names and regexes) against the cluster's topics; true if
/// the set or a partition count changed.
fn refresh_metadata(g: &mut ConsumerGroup, topics: &dyn TopicMetadata) -> bool {
    let any_regex = g.members.values().any(|m| m.compiled_regex.is_some());
    let all = if any_regex {
        topics.topic_names()
    } else {
        Vec::new()
    };
    let mut now = SubscribedTopics::new();
    for name in g.subscribed_names(&all) {
        if let Some(t) = topics.topic(&name) {
            now.insert(t.id, (t.name, t.partitions));
        }
    }
    if now != g.subscribed {
        g.subscribed = now;
        true
    } else {
        false
    }
}

/// Recomputes the target assignment at the group epoch.
fn compute_target(
    g: &mut ConsumerGroup,
    config: &ConsumerGroupConfig,
    records: &mut Vec<ConsumerRecord>,
) {
    let default = config.assignors.first().map_or("uniform", String::as_str);
    let assignor = g.preferred_assignor(default);
    let subs: BTreeMap<String, MemberSubscription> = g
        .members
        .iter()
        .map(|(id, m)| {
            let topics = g
                .subscribed
                .iter()
                .filter(|(_, (name, _))| m.subscribes(name, &g.unresolved_regexes))
                .map(|(tid, _)| *tid)
                .collect();
            (id.clone(), MemberSubscription { topics })
        })
        .collect();
    let partitions: BTreeMap<uuid::Uuid, i32> =
        g.subscribed.iter().map(|(id, (_, n))| (*id, *n)).collect();
    let target = assign(&assignor, &subs, &partitions, &g.target);
    for (m, a) in &target {
        if g.target.get(m) != Some(a) {
            records.push(ConsumerRecord::Target {
                group: g.group_id.clone(),
                member: m.clone(),
                value: Some(a.clone()),
            });
        }
    }
    g.target = target;
    g.assignment_epoch = g.group_epoch;
    if g.assignor != assignor {
        g.assignor = assignor;
        records.push(group_record(g));
    }
    records.push(ConsumerRecord::TargetEpoch {
        group: g.group_id.clone(),
        epoch: Some(g.assignment_epoch),
    });
}

/// One reconciliation step of `member_id`; returns the assignment to send, if it must be sent.
fn reconcile_member(
    g: &mut ConsumerGroup,
    member_id: &str,
    req: &HeartbeatRequest,
    env: &Env<'_>,
    records: &mut Vec<ConsumerRecord>,
) -> Option<Vec<(uuid::Uuid, Vec<i32>)>> {
    let owned = req.owned_partitions.as_deref().map(from_list);
    let empty = Assignment::new();
    let target = g.target.get(member_id).unwrap_or(&empty);
    let current = g.members.get(member_id)?.current.clone();
    let held = |t: &uuid::Uuid, p: i32| g.held_by_other(member_id, t, p);
    let next = reconcile(&current, g.assignment_epoch, target, owned.as_ref(), &held);
    let m = g.members.get_mut(member_id)?;
    if next != current {
        records.push(current_record(&g.group_id, member_id, &next));
        m.revocation_deadline = (next.state == MemberState::UnrevokedPartitions).then(|| {
            let timeout = if m.rebalance_timeout_ms > 0 {
                m.rebalance_timeout_ms
            } else {
                env.config.session_timeout_ms
            };
            env.now + ms(timeout)
        });
        m.current = next;
    }
    let send = req.member_epoch == 0
        || m.current.assigned != current.assigned
        || owned.as_ref().is_some_and(|o| *o != m.current.assigned);
    send.then(|| to_list(&m.current.assigned))
}
