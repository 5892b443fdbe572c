//! Cluster metadata: the records of `__cluster_metadata`, the rules they must follow, and the
//! immutable image they build.

mod acls;
mod broker;
mod check;
mod client_quotas;
mod endpoint;
mod image;
mod record;
mod scram;
mod validate;

#[cfg(test)]
mod scram_tests;

pub use acls::Acls;
pub use broker::{BrokerImage, BrokerRegistration};
pub use client_quotas::{ClientQuotas, QuotaEntity, QuotaEntityPart, QUOTA_ENTITY_TYPES};
pub use endpoint::{security_protocol_id, BrokerEndpoint};
pub use image::{MetadataImage, PartitionImage, TopicImage};
pub use record::{ConfigResourceType, MetadataRecord};
pub use scram::{
    scram_mechanism_of_type, scram_mechanism_type, ScramCredentialInfo, SecretBytes,
    StoredScramCredential,
};
pub use validate::{
    valid_host, valid_host_port, valid_port, validate_topic_name, InvalidRecord,
    RegistrationProblem, ReplicaProblem, ScramProblem, TopicNameError, CLUSTER_METADATA_TOPIC,
    MAX_ACLS, MAX_BROKERS, MAX_CONFIGURED_GROUPS, MAX_CONFIG_NAME_LEN, MAX_CONFIG_VALUE_LEN,
    MAX_HOST_LEN, MAX_LISTENERS_PER_BROKER, MAX_LISTENER_NAME_LEN, MAX_PARTITIONS_PER_CLUSTER,
    MAX_PARTITIONS_PER_TOPIC, MAX_QUOTA_ENTITIES, MAX_RACK_LEN, MAX_REPLICATION_FACTOR,
    MAX_SCRAM_CREDENTIALS, MAX_SCRAM_SALT_LEN, MAX_SCRAM_USER_NAME_LEN, MAX_SECURITY_NAME_LEN,
    MAX_TOPICS, MAX_TOPIC_NAME_LEN,
};
