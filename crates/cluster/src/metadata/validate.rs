//! What a metadata record may hold on its own: Kafka's rules for topic names, partitions and ids,
//! and Strom's documented limits. Checked when a record is proposed (`Quorum::propose` refuses the
//! proposal) and again when it is applied (the entry is skipped with an error log), so a forged or
//! old entry can never put a name like `../x` into an image the broker makes directories from.
//!
//! The broker's CreateTopics/CreatePartitions check the same constants before building records,
//! so a client gets Kafka's error code rather than a refused proposal. Rules that need the image
//! (does the topic exist, cluster-wide counts) are in `check`.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::record::{ConfigResourceType, MetadataRecord};
use super::scram::{scram_key_len, scram_mechanism_of_type, StoredScramCredential};

/// Kafka's longest topic name (`Topic.MAX_NAME_LENGTH`).
pub const MAX_TOPIC_NAME_LEN: usize = 249;
/// The metadata topic: Kafka refuses to create a topic of that name.
pub const CLUSTER_METADATA_TOPIC: &str = "__cluster_metadata";
/// Most partitions one topic may have; partition ids are `0..MAX_PARTITIONS_PER_TOPIC`. Kafka has
/// no hard cap; ours keeps one topic's creation (about 170 bytes of JSON per partition) inside
/// one proposal (`quorum::MAX_PROPOSAL_BYTES`), which is split across entries but applied at once.
pub const MAX_PARTITIONS_PER_TOPIC: i32 = 100_000;
/// Most partitions in the cluster. Every node holds the whole image in memory (and copies it per
/// applied batch of entries), so this bounds each node's memory, not only the log.
pub const MAX_PARTITIONS_PER_CLUSTER: usize = 1_000_000;
/// Most topics in the cluster (a topic has at least one partition, so the same bound).
pub const MAX_TOPICS: usize = MAX_PARTITIONS_PER_CLUSTER;
/// Most replicas of one partition. Kafka's replication factor is an INT16 on the wire with no
/// smaller cap; ours keeps a partition record (replicas and ISR) inside one metadata entry
/// (`quorum::MAX_ENTRY_BYTES`).
pub const MAX_REPLICATION_FACTOR: usize = 1000;
/// Most registered brokers. Registration is open to any peer (as in Kafka without
/// authentication), and each broker-only registration adds a Raft learner, so it is capped.
pub const MAX_BROKERS: usize = 10_000;
/// Longest advertised host or controller address host (a DNS name is at most 253).
pub const MAX_HOST_LEN: usize = 255;
/// Longest rack id.
pub const MAX_RACK_LEN: usize = 255;
/// Most listeners one broker registers. Kafka has no cap; real brokers have a handful, and the
/// cap keeps a registration inside one metadata entry (`quorum::MAX_ENTRY_BYTES`).
pub const MAX_LISTENERS_PER_BROKER: usize = 32;
/// Longest listener name.
pub const MAX_LISTENER_NAME_LEN: usize = 255;
/// Longest config name.
pub const MAX_CONFIG_NAME_LEN: usize = 255;
/// Longest config value, in bytes. Kafka has no cap; ours keeps a config record inside one
/// metadata entry (`quorum::MAX_ENTRY_BYTES`) even with every byte escaped in JSON, which is why
/// values may hold no control characters but tab, newline and carriage return.
pub const MAX_CONFIG_VALUE_LEN: usize = 16 << 10;

/// Longest SCRAM user name, in characters.
pub const MAX_SCRAM_USER_NAME_LEN: usize = 255;
/// Longest SCRAM salt. Kafka has no cap; clients draw 16 to 64 random bytes.
pub const MAX_SCRAM_SALT_LEN: usize = 1024;
/// Most SCRAM credentials (user × mechanism) in the cluster. Kafka has no cap; every node keeps
/// them in its image, so this bounds each node's memory (a credential is a few hundred bytes).
pub const MAX_SCRAM_CREDENTIALS: usize = 100_000;

/// Why a topic name is not a Kafka topic name. The messages are Kafka's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum TopicNameError {
    /// Empty.
    #[error("Topic name is illegal, it can't be empty")]
    Empty,
    /// Longer than [`MAX_TOPIC_NAME_LEN`].
    #[error("Topic name is illegal, it can't be longer than {MAX_TOPIC_NAME_LEN} characters (it has {len})")]
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// `.` or `..`.
    #[error("Topic name cannot be \".\" or \"..\"")]
    DotOrDotDot,
    /// Some character outside `[a-zA-Z0-9._-]`.
    #[error("Topic name {name:?} is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'")]
    IllegalCharacter {
        /// The name.
        name: String,
    },
}

/// Kafka's topic name rule: 1–249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`. Such a name
/// is also a safe directory name component (no separator, never a parent reference).
pub fn validate_topic_name(name: &str) -> Result<(), TopicNameError> {
    if name.is_empty() {
        return Err(TopicNameError::Empty);
    }
    if name.len() > MAX_TOPIC_NAME_LEN {
        return Err(TopicNameError::TooLong { len: name.len() });
    }
    if name == "." || name == ".." {
        return Err(TopicNameError::DotOrDotDot);
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        // Bounded by the length check above: the message never grows with the peer's input.
        return Err(TopicNameError::IllegalCharacter {
            name: name.to_string(),
        });
    }
    Ok(())
}

/// What is wrong with a partition's replica state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReplicaProblem {
    /// No replicas.
    NoReplicas,
    /// More than [`MAX_REPLICATION_FACTOR`] replicas.
    TooManyReplicas,
    /// A negative broker id among the replicas.
    NegativeReplica,
    /// A broker listed twice among the replicas.
    DuplicateReplica,
    /// An ISR member that is not a replica, or listed twice.
    IsrNotSubsetOfReplicas,
    /// The leader is neither -1 nor a replica.
    LeaderNotReplica,
    /// A negative leader or partition epoch.
    NegativeEpoch,
}

/// What is wrong with a broker registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RegistrationProblem {
    /// Broker ids are never negative.
    NegativeId,
    /// The nil uuid is not an incarnation.
    NilIncarnation,
    /// The advertised host is empty, too long or has characters no host name or IP has.
    Host,
    /// The port is outside 1..=65535.
    Port,
    /// The rack id is too long or has control characters.
    Rack,
    /// The controller address is not `host:port`.
    ControllerAddr,
    /// More than [`MAX_LISTENERS_PER_BROKER`] endpoints.
    TooManyListeners,
    /// A listener name that is empty, longer than [`MAX_LISTENER_NAME_LEN`] or not printable
    /// ASCII.
    ListenerName,
    /// Two endpoints of the same listener name (compared case-insensitively).
    DuplicateListener,
    /// An endpoint's host, by the rule of the advertised host.
    ListenerHost,
    /// An endpoint's port is outside 1..=65535.
    ListenerPort,
    /// An endpoint's security protocol id is none of Kafka's.
    SecurityProtocol,
    /// Only a configured voter registers as one.
    NotAVoter,
}

/// What is wrong with a SCRAM credential record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ScramProblem {
    /// The user name is empty, longer than [`MAX_SCRAM_USER_NAME_LEN`] characters or holds
    /// control characters.
    UserName,
    /// The mechanism type is neither 1 (SCRAM-SHA-256) nor 2 (SCRAM-SHA-512).
    Mechanism,
    /// The iteration count is outside Kafka's 4096..=16384.
    Iterations,
    /// The salt is empty or longer than [`MAX_SCRAM_SALT_LEN`].
    Salt,
    /// StoredKey or ServerKey is not as long as the mechanism's hash output.
    KeyLength,
}

/// Why a metadata record, or a set of records proposed together, is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum InvalidRecord {
    /// A topic name breaks Kafka's rule.
    #[error(transparent)]
    TopicName(#[from] TopicNameError),
    /// `__cluster_metadata` (Kafka: "Creation of internal topic __cluster_metadata is prohibited").
    #[error("Creation of internal topic {CLUSTER_METADATA_TOPIC} is prohibited.")]
    ReservedTopic,
    /// The nil uuid is Kafka's "no topic id".
    #[error("the nil uuid is not a topic id")]
    NilTopicId,
    /// A topic of that name exists.
    #[error("topic {0:?} already exists")]
    TopicExists(String),
    /// A topic with that id exists.
    #[error("topic id {0} already exists")]
    TopicIdExists(Uuid),
    /// A partition id outside `0..MAX_PARTITIONS_PER_TOPIC`.
    #[error("partition id {0} is outside 0..{MAX_PARTITIONS_PER_TOPIC}")]
    PartitionId(i32),
    /// A partition's replicas, ISR, leader or epochs.
    #[error("partition {partition}: {problem:?}")]
    Replicas {
        /// The partition id.
        partition: i32,
        /// What is wrong.
        problem: ReplicaProblem,
    },
    /// The cluster would hold more than [`MAX_PARTITIONS_PER_CLUSTER`] partitions.
    #[error(
        "the cluster would have {count} partitions; the limit is {MAX_PARTITIONS_PER_CLUSTER}"
    )]
    TooManyPartitions {
        /// Partitions after the records.
        count: usize,
    },
    /// The cluster would hold more than [`MAX_TOPICS`] topics.
    #[error("the cluster would have {count} topics; the limit is {MAX_TOPICS}")]
    TooManyTopics {
        /// Topics after the records.
        count: usize,
    },
    /// A broker registration.
    #[error("broker {broker_id} registration: {problem:?}")]
    Registration {
        /// The broker id.
        broker_id: i32,
        /// What is wrong.
        problem: RegistrationProblem,
    },
    /// More than [`MAX_BROKERS`] registered brokers.
    #[error("more than {MAX_BROKERS} registered brokers")]
    TooManyBrokers,
    /// A negative broker id in a fence, unfence or producer-id record.
    #[error("broker id {0} is negative")]
    BrokerId(i32),
    /// A config name that is empty, too long or not printable ASCII.
    #[error(
        "config name of {len} bytes is empty, longer than {MAX_CONFIG_NAME_LEN} or not printable"
    )]
    ConfigName {
        /// Its length.
        len: usize,
    },
    /// A config value longer than [`MAX_CONFIG_VALUE_LEN`], or with control characters other
    /// than tab, newline and carriage return.
    #[error("config value of {len} bytes is longer than {MAX_CONFIG_VALUE_LEN} or has control characters")]
    ConfigValue {
        /// Its length.
        len: usize,
    },
    /// A broker config for something that is neither "" (cluster default) nor a broker id.
    #[error("broker config resource {0:?} is neither \"\" nor a broker id")]
    ConfigResource(String),
    /// A negative next producer id.
    #[error("next producer id {0} is negative")]
    ProducerId(i64),
    /// A SCRAM credential record (the user name is not repeated: it is the peer's input).
    #[error("SCRAM credential: {0:?}")]
    ScramCredential(ScramProblem),
    /// More than [`MAX_SCRAM_CREDENTIALS`] SCRAM credentials.
    #[error("more than {MAX_SCRAM_CREDENTIALS} SCRAM credentials")]
    TooManyScramCredentials,
    /// An ACL binding CreateAcls would refuse (Kafka's message), or the nil id.
    #[error("invalid ACL: {0}")]
    Acl(String),
    /// More than [`MAX_ACLS`] ACLs.
    #[error("more than {MAX_ACLS} ACLs")]
    TooManyAcls,
    /// A client quota record Kafka would refuse.
    #[error("invalid client quota: {0}")]
    ClientQuota(String),
    /// More than [`MAX_QUOTA_ENTITIES`] entities with quotas.
    #[error("more than {MAX_QUOTA_ENTITIES} client quota entities")]
    TooManyQuotaEntities,
    /// More than [`MAX_CONFIGURED_GROUPS`] groups with dynamic configs.
    #[error("more than {MAX_CONFIGURED_GROUPS} groups with dynamic configs")]
    TooManyConfiguredGroups,
}

/// Most groups with dynamic configs (Kafka has no cap; the same reason as [`MAX_ACLS`]).
pub const MAX_CONFIGURED_GROUPS: usize = 100_000;

/// Most ACLs in the cluster. Kafka has no cap; every node holds them (and the authorizer's
/// index of them) in memory, so this bounds each node's memory.
pub const MAX_ACLS: usize = 1_000_000;
/// Most client entities with quotas (Kafka has no cap; the same reason as [`MAX_ACLS`]).
pub const MAX_QUOTA_ENTITIES: usize = 100_000;
/// Longest quota entity name or ACL principal/resource name, in bytes.
pub const MAX_SECURITY_NAME_LEN: usize = 1024;

/// An ACL record's own rules: Kafka's CreateAcls checks, bounded names.
fn check_acl(id: &Uuid, binding: &strom_authorizer::AclBinding) -> Result<(), InvalidRecord> {
    if id.is_nil() {
        return Err(InvalidRecord::Acl("the nil uuid is not an ACL id".into()));
    }
    if binding.pattern.name.len() > MAX_SECURITY_NAME_LEN
        || binding.entry.principal.len() > MAX_SECURITY_NAME_LEN
        || binding.entry.host.len() > MAX_SECURITY_NAME_LEN
    {
        return Err(InvalidRecord::Acl(format!(
            "names are at most {MAX_SECURITY_NAME_LEN} bytes"
        )));
    }
    binding.validate().map_err(InvalidRecord::Acl)
}

/// A client quota record's own rules (Kafka's AlterClientQuotas checks).
fn check_client_quota(
    entity: &[super::client_quotas::QuotaEntityPart],
    key: &str,
    value: f64,
    remove: bool,
) -> Result<(), InvalidRecord> {
    let bad = |m: String| Err(InvalidRecord::ClientQuota(m));
    if entity.is_empty() {
        return bad("an entity needs at least one part".into());
    }
    for (i, part) in entity.iter().enumerate() {
        if !super::client_quotas::QUOTA_ENTITY_TYPES.contains(&part.entity_type.as_str()) {
            return bad(format!("unknown entity type {:?}", part.entity_type));
        }
        if entity[..i]
            .iter()
            .any(|p| p.entity_type == part.entity_type)
        {
            return bad(format!("duplicate entity type {:?}", part.entity_type));
        }
        if part
            .entity_name
            .as_ref()
            .is_some_and(|n| n.len() > MAX_SECURITY_NAME_LEN)
        {
            return bad(format!(
                "entity names are at most {MAX_SECURITY_NAME_LEN} bytes"
            ));
        }
    }
    if key.is_empty() || key.len() > MAX_CONFIG_NAME_LEN {
        return bad("bad quota key".into());
    }
    let positive = value.is_finite() && value > 0.0;
    if !remove && !positive {
        return bad(format!(
            "quota {key} must be a positive number, not {value}"
        ));
    }
    Ok(())
}

/// A host name or IP literal, as advertised: 1..=255 bytes of letters, digits, `.-_:%[]`
/// (IPv6 and zone ids), not starting with `-`. Rejects separators, spaces and control bytes.
pub fn valid_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= MAX_HOST_LEN
        && !host.starts_with('-')
        && host.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':' | b'%' | b'[' | b']')
        })
}

/// A TCP port a client can connect to.
pub fn valid_port(port: i32) -> bool {
    (1..=65535).contains(&port)
}

/// `host:port` with a valid host (brackets around an IPv6 literal allowed) and port.
pub fn valid_host_port(addr: &str) -> bool {
    let Some((host, port)) = addr.rsplit_once(':') else {
        return false;
    };
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    valid_host(host) && port.parse::<i32>().is_ok_and(valid_port)
}

/// A partition's own rules (shared with the snapshot clean-up in `image`).
pub(crate) fn check_partition(
    partition: i32,
    replicas: &[i32],
    isr: &[i32],
    leader: i32,
    epochs: [i32; 2],
) -> Result<(), InvalidRecord> {
    if !(0..MAX_PARTITIONS_PER_TOPIC).contains(&partition) {
        return Err(InvalidRecord::PartitionId(partition));
    }
    let bad = |problem| Err(InvalidRecord::Replicas { partition, problem });
    if replicas.is_empty() {
        return bad(ReplicaProblem::NoReplicas);
    }
    if replicas.len() > MAX_REPLICATION_FACTOR {
        return bad(ReplicaProblem::TooManyReplicas);
    }
    if replicas.iter().any(|r| *r < 0) {
        return bad(ReplicaProblem::NegativeReplica);
    }
    let mut sorted = replicas.to_vec();
    sorted.sort_unstable();
    if sorted.windows(2).any(|w| w[0] == w[1]) {
        return bad(ReplicaProblem::DuplicateReplica);
    }
    let mut in_sync = isr.to_vec();
    in_sync.sort_unstable();
    if in_sync.windows(2).any(|w| w[0] == w[1])
        || in_sync.iter().any(|r| sorted.binary_search(r).is_err())
    {
        return bad(ReplicaProblem::IsrNotSubsetOfReplicas);
    }
    if leader != -1 && sorted.binary_search(&leader).is_err() {
        return bad(ReplicaProblem::LeaderNotReplica);
    }
    if epochs.iter().any(|e| *e < 0) {
        return bad(ReplicaProblem::NegativeEpoch);
    }
    Ok(())
}

fn check_config(
    resource_type: ConfigResourceType,
    resource_name: &str,
    name: &str,
    value: Option<&str>,
) -> Result<(), InvalidRecord> {
    match resource_type {
        ConfigResourceType::Topic => validate_topic_name(resource_name)?,
        ConfigResourceType::Broker => {
            let is_id = resource_name.parse::<i32>().is_ok_and(|id| id >= 0);
            if !resource_name.is_empty() && !is_id {
                return Err(InvalidRecord::ConfigResource(
                    resource_name.chars().take(64).collect(),
                ));
            }
        }
        ConfigResourceType::Group => {
            if resource_name.is_empty()
                || resource_name.len() > MAX_SECURITY_NAME_LEN
                || resource_name.chars().any(char::is_control)
            {
                return Err(InvalidRecord::ConfigResource(
                    resource_name.chars().take(64).collect(),
                ));
            }
        }
    }
    if name.is_empty()
        || name.len() > MAX_CONFIG_NAME_LEN
        || !name.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(InvalidRecord::ConfigName { len: name.len() });
    }
    let control = |c: char| c.is_control() && !matches!(c, '\t' | '\n' | '\r');
    match value {
        Some(v) if v.len() > MAX_CONFIG_VALUE_LEN || v.chars().any(control) => {
            Err(InvalidRecord::ConfigValue { len: v.len() })
        }
        _ => Ok(()),
    }
}

/// A SCRAM record's user and mechanism (both records).
fn check_scram_user(name: &str, mechanism: i8) -> Result<(), InvalidRecord> {
    let bad = |p| Err(InvalidRecord::ScramCredential(p));
    // Bytes bound the characters from above: a long name is refused before it is walked.
    if name.is_empty()
        || name.len() > 4 * MAX_SCRAM_USER_NAME_LEN
        || name.chars().count() > MAX_SCRAM_USER_NAME_LEN
        || name.chars().any(char::is_control)
    {
        return bad(ScramProblem::UserName);
    }
    match scram_mechanism_of_type(mechanism) {
        Some(_) => Ok(()),
        None => bad(ScramProblem::Mechanism),
    }
}

/// A stored SCRAM credential's own rules (shared with the snapshot clean-up in `image`).
pub(crate) fn check_scram_credential(
    name: &str,
    mechanism: i8,
    credential: &StoredScramCredential,
) -> Result<(), InvalidRecord> {
    let StoredScramCredential {
        salt,
        stored_key,
        server_key,
        iterations,
    } = credential;
    check_scram_user(name, mechanism)?;
    let bad = |p| Err(InvalidRecord::ScramCredential(p));
    let min = i64::from(strom_security::ScramMechanism::MIN_ITERATIONS);
    let max = i64::from(strom_security::ScramMechanism::MAX_ITERATIONS);
    if !(min..=max).contains(&i64::from(*iterations)) {
        return bad(ScramProblem::Iterations);
    }
    if salt.as_slice().is_empty() || salt.as_slice().len() > MAX_SCRAM_SALT_LEN {
        return bad(ScramProblem::Salt);
    }
    let key_len = scram_mechanism_of_type(mechanism).map_or(0, scram_key_len);
    if [stored_key, server_key]
        .iter()
        .any(|k| k.as_slice().len() != key_len)
    {
        return bad(ScramProblem::KeyLength);
    }
    Ok(())
}

impl MetadataRecord {
    /// Checks what the record says on its own (names, ids, replica lists, sizes); what depends on
    /// the image is checked by [`MetadataImage::check`](super::MetadataImage::check).
    pub fn validate(&self) -> Result<(), InvalidRecord> {
        match self {
            MetadataRecord::Topic { name, topic_id } => {
                validate_topic_name(name)?;
                if name == CLUSTER_METADATA_TOPIC {
                    return Err(InvalidRecord::ReservedTopic);
                }
                if topic_id.is_nil() {
                    return Err(InvalidRecord::NilTopicId);
                }
                Ok(())
            }
            MetadataRecord::Partition {
                topic_id,
                partition,
                replicas,
                isr,
                leader,
                leader_epoch,
                partition_epoch,
            } => {
                if topic_id.is_nil() {
                    return Err(InvalidRecord::NilTopicId);
                }
                check_partition(
                    *partition,
                    replicas,
                    isr,
                    *leader,
                    [*leader_epoch, *partition_epoch],
                )
            }
            MetadataRecord::Config {
                resource_type,
                resource_name,
                name,
                value,
            } => check_config(*resource_type, resource_name, name, value.as_deref()),
            MetadataRecord::RemoveTopic { topic_id } => match topic_id.is_nil() {
                true => Err(InvalidRecord::NilTopicId),
                false => Ok(()),
            },
            MetadataRecord::RegisterBroker { .. } => match self.registration() {
                Some(reg) => reg.validate(),
                None => Ok(()),
            },
            MetadataRecord::FenceBroker { broker_id }
            | MetadataRecord::UnfenceBroker { broker_id } => match *broker_id < 0 {
                true => Err(InvalidRecord::BrokerId(*broker_id)),
                false => Ok(()),
            },
            MetadataRecord::ProducerIds {
                broker_id,
                next_producer_id,
            } => {
                if *broker_id < 0 {
                    return Err(InvalidRecord::BrokerId(*broker_id));
                }
                if *next_producer_id < 0 {
                    return Err(InvalidRecord::ProducerId(*next_producer_id));
                }
                Ok(())
            }
            MetadataRecord::UserScramCredential {
                name,
                mechanism,
                credential,
            } => check_scram_credential(name, *mechanism, credential),
            MetadataRecord::RemoveUserScramCredential { name, mechanism } => {
                check_scram_user(name, *mechanism)
            }
            MetadataRecord::AccessControlEntry { id, binding } => check_acl(id, binding),
            MetadataRecord::RemoveAccessControlEntry { .. } => Ok(()),
            MetadataRecord::ClientQuota {
                entity,
                key,
                value,
                remove,
            } => check_client_quota(entity, key, *value, *remove),
        }
    }
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;
