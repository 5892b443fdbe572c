//! Value objects for the coordinator's operations: what a handler passes in, what it gets back.
//! They mirror the Kafka request/response fields the coordinator needs, with no wire types.

use bytes::Bytes;

use crate::error::GroupError;

/// Kafka's classic group states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupState {
    /// No members (offsets may remain).
    Empty,
    /// Waiting for members to (re)join.
    PreparingRebalance,
    /// Joined; waiting for the leader's assignment.
    CompletingRebalance,
    /// Every member has its assignment.
    Stable,
    /// Deleted.
    Dead,
}

impl GroupState {
    /// Kafka's name for the state (ListGroups / DescribeGroups).
    pub fn as_str(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }

    /// Parses a state name, case-insensitively (ListGroups filters).
    pub fn parse(s: &str) -> Option<GroupState> {
        [
            GroupState::Empty,
            GroupState::PreparingRebalance,
            GroupState::CompletingRebalance,
            GroupState::Stable,
            GroupState::Dead,
        ]
        .into_iter()
        .find(|st| st.as_str().eq_ignore_ascii_case(s))
    }
}

/// One protocol a member supports (name, opaque metadata), in the member's preference order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Protocol {
    /// Protocol (assignor) name, e.g. `range`.
    pub name: String,
    /// Opaque metadata (for `consumer`: the subscription).
    pub metadata: Bytes,
}

/// A JoinGroup request.
#[derive(Debug, Clone)]
pub struct JoinGroupRequest {
    /// Group id.
    pub group_id: String,
    /// Member id; empty on the first join.
    pub member_id: String,
    /// KIP-345 static member id.
    pub group_instance_id: Option<String>,
    /// Protocol type, e.g. `consumer`.
    pub protocol_type: String,
    /// Supported protocols in preference order.
    pub protocols: Vec<Protocol>,
    /// Session timeout.
    pub session_timeout_ms: i32,
    /// Rebalance timeout (v0: the session timeout).
    pub rebalance_timeout_ms: i32,
    /// Client id from the request header.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// KIP-394 (JoinGroup v4+): a new member must first be given an id.
    pub require_known_member_id: bool,
}

/// One member as the leader sees it in a JoinGroup response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinedMember {
    /// Member id.
    pub member_id: String,
    /// Static member id.
    pub group_instance_id: Option<String>,
    /// Metadata for the selected protocol.
    pub metadata: Bytes,
}

/// A JoinGroup response.
#[derive(Debug, Clone)]
pub struct JoinGroupResponse {
    /// The error, if any (MemberIdRequired still carries `member_id`).
    pub error: Option<GroupError>,
    /// Generation; -1 on error.
    pub generation_id: i32,
    /// Group protocol type.
    pub protocol_type: Option<String>,
    /// Selected protocol.
    pub protocol_name: Option<String>,
    /// Leader's member id.
    pub leader: String,
    /// The member's id.
    pub member_id: String,
    /// All members, for the leader only.
    pub members: Vec<JoinedMember>,
}

impl JoinGroupResponse {
    pub(crate) fn error(e: GroupError, member_id: String) -> Self {
        JoinGroupResponse {
            error: Some(e),
            generation_id: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            member_id,
            members: Vec::new(),
        }
    }
}

/// A SyncGroup request.
#[derive(Debug, Clone)]
pub struct SyncGroupRequest {
    /// Group id.
    pub group_id: String,
    /// Generation.
    pub generation_id: i32,
    /// Member id.
    pub member_id: String,
    /// Static member id.
    pub group_instance_id: Option<String>,
    /// v5+: must match the group's, if given.
    pub protocol_type: Option<String>,
    /// v5+: must match the group's, if given.
    pub protocol_name: Option<String>,
    /// The leader's assignment (member id, bytes); empty for followers.
    pub assignments: Vec<(String, Bytes)>,
}

/// A successful SyncGroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncGroupResult {
    /// Group protocol type.
    pub protocol_type: Option<String>,
    /// Selected protocol.
    pub protocol_name: Option<String>,
    /// This member's assignment, exactly as the leader sent it.
    pub assignment: Bytes,
}

/// Who is leaving (LeaveGroup v3+ batches several).
#[derive(Debug, Clone)]
pub struct MemberIdentity {
    /// Member id (may be empty for a static member).
    pub member_id: String,
    /// Static member id.
    pub group_instance_id: Option<String>,
}

/// An OffsetCommit request.
#[derive(Debug, Clone)]
pub struct OffsetCommitRequest {
    /// Group id.
    pub group_id: String,
    /// Generation, -1 for a simple (manual) commit.
    pub generation_id: i32,
    /// Member id, empty for a simple commit.
    pub member_id: String,
    /// Static member id.
    pub group_instance_id: Option<String>,
    /// (topic, partition, offset, leader epoch, metadata).
    pub offsets: Vec<PartitionCommit>,
}

/// One partition's commit.
#[derive(Debug, Clone)]
pub struct PartitionCommit {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Next offset to consume.
    pub offset: i64,
    /// Leader epoch or -1.
    pub leader_epoch: i32,
    /// Metadata string (null is stored as empty).
    pub metadata: String,
}

/// A listed group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    /// Group id.
    pub group_id: String,
    /// Protocol type ("" for a simple group).
    pub protocol_type: String,
    /// State.
    pub state: GroupState,
}

/// A described member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    /// Member id.
    pub member_id: String,
    /// Static member id.
    pub group_instance_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Metadata for the selected protocol (Stable groups only).
    pub metadata: Bytes,
    /// Assignment (Stable groups only).
    pub assignment: Bytes,
}

/// A described group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    /// State.
    pub state: GroupState,
    /// Protocol type.
    pub protocol_type: String,
    /// Selected protocol (Stable groups only, else empty).
    pub protocol_name: String,
    /// Members.
    pub members: Vec<MemberDescription>,
}
