//! A small async Kafka client on kafka-protocol, used by the `strom` CLI, tests and benches.
//!
//! - [`Connection`]: one broker, ApiVersions negotiation, pipelined requests; TLS and SASL
//!   (PLAIN, SCRAM, OAUTHBEARER) with KIP-368 re-authentication as [`Security`] says.
//! - [`Client`]: bootstrap, metadata, a connection per broker, leader routing with bounded
//!   retries; also the admin operations (topics, configs, ListOffsets, DescribeCluster).
//! - [`Producer`]: Java-compatible partitioning, batching with linger, compression, acks.
//! - [`Consumer`]: assigned partitions, Fetch, offset reset.
//! - [`GroupConsumer`]: a consumer-group member (classic protocol, range assignor, commits);
//!   group admin (list, describe, delete, offsets) on [`Client`].
//! - [`ShareConsumer`]: a share-group member (KIP-932): records acquired under a lock and
//!   acknowledged one by one (ACCEPT, RELEASE, REJECT).
//! - Log directories and replica sizes (DescribeLogDirs) on [`Client`].
//! - Transaction admin (ListTransactions, DescribeTransactions, DescribeProducers) on [`Client`].
//! - SCRAM credential admin (AlterUserScramCredentials, DescribeUserScramCredentials) on [`Client`].
//! - ACL admin (CreateAcls, DescribeAcls, DeleteAcls) in strom-authorizer's types, and client
//!   quota admin (DescribeClientQuotas, AlterClientQuotas), on [`Client`].
//!
//! Every request/response struct and the record-batch codec come from `kafka-protocol`; this crate
//! owns framing, version choice, routing and batching. It must not depend on the broker crates:
//! it is what tests use to check the broker from the outside.

// Tests may unwrap: a panic there is a test failure, not a crash on network input.
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod accumulator;
mod acl_admin;
mod admin;
mod admin_configs;
mod assignor;
mod batch;
mod client;
mod codec;
mod connection;
mod consumer;
mod error;
mod fetch;
mod group;
mod group_admin;
mod log_dir_admin;
mod metadata;
mod partitioner;
mod producer;
mod producer_config;
mod quota_admin;
mod sasl_authenticator;
mod scram_admin;
mod security;
mod sender;
mod share_consumer;
mod share_fetch;
mod share_group_admin;
mod share_membership;
mod transport;
mod txn_admin;
mod versions;
mod wire;

pub use admin::{ClusterDescription, ListedOffset, OffsetSpec};
pub use admin_configs::{AlterConfigOp, ConfigEntry, ConfigResource, ConfigSource};
pub use batch::{DeliveryFuture, RecordMetadata};
pub use client::{Client, ClientConfig};
pub use connection::{Connection, PendingResponse};
pub use consumer::{Consumer, ConsumerConfig, ConsumerRecord, OffsetReset, StartOffset};
pub use error::{ClientError, KafkaErrorName};
pub use group::{GroupConfig, GroupConsumer};
pub use group_admin::{GroupDescription, GroupListing, GroupMemberDescription};
pub use kafka_protocol::records::{Compression, TimestampType};
pub use log_dir_admin::LogDirDescription;
pub use metadata::{BrokerInfo, ClusterMetadata, PartitionMetadata, TopicMetadata, TopicPartition};
pub use partitioner::{murmur2, partition_for_key, to_positive};
pub use producer::{Acks, Producer, ProducerConfig};
pub use quota_admin::{
    entity_text, ClientQuotaAlteration, ClientQuotaEntity, ClientQuotaFilterComponent,
    ClientQuotaMatch, ClientQuotas, QUOTA_ENTITY_CLIENT_ID, QUOTA_ENTITY_IP, QUOTA_ENTITY_USER,
};
pub use scram_admin::{PerUser, ScramCredentialInfo, UserScramCredentialAlteration};
pub use security::{SaslLogin, Security};
pub use share_consumer::{ShareConsumer, ShareConsumerConfig};
pub use share_fetch::{AcknowledgeType, ShareRecord};
pub use share_group_admin::{ShareGroupDescription, ShareMemberDescription};
pub use transport::ConnectionConfig;
// The ACL types of the ACL admin calls, so callers need not depend on strom-authorizer.
pub use strom_authorizer::{
    parse_principal, AccessControlEntry, AclBinding, AclBindingFilter, AclOperation,
    AclPermissionType, ParseEnumError, PatternType, ResourcePattern, ResourceType,
    CLUSTER_RESOURCE_NAME, WILDCARD, WILDCARD_PRINCIPAL,
};
// The security types callers configure connections with, so they need not depend on strom-security.
pub use strom_security::{
    ClientSecurity, ConfigError, Mechanism, Password, SaslCredentials, ScramMechanism,
    SecurityProtocol,
};
pub use txn_admin::{ProducerDescription, TransactionDescription, TransactionListing};
