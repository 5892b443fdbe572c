//! `MetadataRecord`: one change to cluster metadata. Stored as the JSON value of a Kafka record,
//! so the metadata log is readable with any Kafka tool that can dump a segment.

use serde::{Deserialize, Serialize};
use strom_security::{ScramCredential, ScramMechanism};
use uuid::Uuid;

use strom_authorizer::AclBinding;

use super::client_quotas::QuotaEntityPart;
use super::endpoint::BrokerEndpoint;
use super::scram::{scram_mechanism_type, StoredScramCredential};

/// What a config record applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConfigResourceType {
    /// A topic's config.
    Topic,
    /// A broker's dynamic config ("" = cluster default).
    Broker,
    /// A group's dynamic config (KIP-848 / KIP-932 group configs: `consumer.*`, `share.*`).
    Group,
}

/// One metadata change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum MetadataRecord {
    /// A topic exists with this id (Kafka's `TopicRecord`).
    Topic {
        /// Topic name.
        name: String,
        /// Topic id.
        topic_id: Uuid,
    },
    /// A partition and its replica state (Kafka's `PartitionRecord`).
    Partition {
        /// Owning topic.
        topic_id: Uuid,
        /// Partition index.
        partition: i32,
        /// Replica broker ids.
        replicas: Vec<i32>,
        /// In-sync replicas.
        isr: Vec<i32>,
        /// Leader broker id.
        leader: i32,
        /// Leader epoch: bumped whenever the leader changes.
        leader_epoch: i32,
        /// Partition epoch: bumped on every change (leader, ISR, replicas), so an AlterPartition
        /// built from an older state is refused (Kafka's `partitionEpoch`).
        #[serde(default)]
        partition_epoch: i32,
    },
    /// A config set (`value: Some`) or deleted (`None`) (Kafka's `ConfigRecord`).
    Config {
        /// Resource type.
        resource_type: ConfigResourceType,
        /// Resource name (topic name, broker id).
        resource_name: String,
        /// Config key.
        name: String,
        /// Value, or `None` to remove the override.
        value: Option<String>,
    },
    /// A topic and its partitions are gone (Kafka's `RemoveTopicRecord`).
    RemoveTopic {
        /// The topic id.
        topic_id: Uuid,
    },
    /// A broker registered (or re-registered after a restart) with its listener (Kafka's
    /// `RegisterBrokerRecord`). A registered broker starts fenced until its first heartbeat.
    RegisterBroker {
        /// Broker id (`node.id`).
        broker_id: i32,
        /// Incarnation: a new value each process start, so a stale registration is told apart.
        incarnation: Uuid,
        /// Host advertised to clients.
        host: String,
        /// Port advertised to clients.
        port: i32,
        /// Rack, if configured.
        rack: Option<String>,
        /// Controller quorum address (`host:port`) when the broker also runs a controller or
        /// needs to be reached by the quorum; empty otherwise.
        controller_addr: String,
        /// True when the node votes in the quorum (combined mode); false for broker-only nodes.
        voter: bool,
        /// One endpoint per advertised listener (Kafka's `endPoints`); absent in records written
        /// before listeners were recorded, and not written when empty.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        endpoints: Vec<BrokerEndpoint>,
    },
    /// A broker's heartbeats lapsed (or it shut down): it leads nothing and is left out of
    /// Metadata responses (Kafka's `FenceBrokerRecord`).
    FenceBroker {
        /// Broker id.
        broker_id: i32,
    },
    /// A fenced broker heartbeats again and may lead and join ISRs (Kafka's `UnfenceBrokerRecord`).
    UnfenceBroker {
        /// Broker id.
        broker_id: i32,
    },
    /// A block of producer ids was handed to a broker (Kafka's `ProducerIdsRecord`): every id
    /// below `next_producer_id` may be in use, the next block starts there.
    ProducerIds {
        /// The broker that reserved the block.
        broker_id: i32,
        /// First id after the reserved block.
        next_producer_id: i64,
    },
    /// A user's SCRAM credential for one mechanism, created or replaced (Kafka's
    /// `UserScramCredentialRecord`, KIP-554). Never the password: what the server needs to check
    /// a login, derived from it.
    UserScramCredential {
        /// The user name.
        name: String,
        /// Kafka's `ScramMechanism` type: 1 SCRAM-SHA-256, 2 SCRAM-SHA-512.
        mechanism: i8,
        /// Salt, keys and iterations, in the record's own object (Kafka's flat fields).
        #[serde(flatten)]
        credential: StoredScramCredential,
    },
    /// A user's SCRAM credential for one mechanism is gone (Kafka's
    /// `RemoveUserScramCredentialRecord`).
    RemoveUserScramCredential {
        /// The user name.
        name: String,
        /// Kafka's `ScramMechanism` type.
        mechanism: i8,
    },
    /// An ACL exists under `id` (Kafka's `AccessControlEntryRecord`).
    AccessControlEntry {
        /// The ACL's id (DeleteAcls removes by it).
        id: Uuid,
        /// Resource pattern, principal, host, operation, permission.
        binding: AclBinding,
    },
    /// The ACL `id` is gone (Kafka's `RemoveAccessControlEntryRecord`).
    RemoveAccessControlEntry {
        /// The ACL's id.
        id: Uuid,
    },
    /// One quota value of a client entity set or removed (Kafka's `ClientQuotaRecord`).
    ClientQuota {
        /// The entity: user, client-id and/or ip parts (a `None` name is the default entity).
        entity: Vec<QuotaEntityPart>,
        /// `producer_byte_rate`, `consumer_byte_rate`, `request_percentage`,
        /// `controller_mutation_rate`.
        key: String,
        /// The quota (ignored when `remove`).
        value: f64,
        /// True: the key is removed from the entity.
        remove: bool,
    },
}

impl MetadataRecord {
    /// The `UserScramCredential` record that stores `credential` as `user`'s for `mechanism`
    /// (what AlterUserScramCredentials proposes for an upsertion).
    pub fn user_scram_credential(
        user: &str,
        mechanism: ScramMechanism,
        credential: &ScramCredential,
    ) -> MetadataRecord {
        MetadataRecord::UserScramCredential {
            name: user.to_string(),
            mechanism: scram_mechanism_type(mechanism),
            credential: StoredScramCredential::new(credential),
        }
    }
}
