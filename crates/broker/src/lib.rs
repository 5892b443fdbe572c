//! Strom's broker: the Kafka wire-protocol server and its request handlers.
//!
//! `server` reads frames and writes responses in order; `handler` holds one module per API family
//! registered in one table; `Broker` wires the parts the handlers use: `ReplicaManager` (logs and
//! replication roles), `LocalLeaders` (who leads, the leader's internal writes), `Coordinators`
//! (groups, transactions), `MetadataPublisher` and `TopicAdmin` (the metadata image and changes
//! to it). See `docs/ARCHITECTURE.md` for how a Produce and a Fetch travel through these modules.
//!
//! This crate may depend on crates/log, never the other way round. It talks to other brokers
//! (replica fetches, WriteTxnMarkers, verification) through crates/client's `Connection`.

mod authorization;
mod broker;
mod config;
mod coordinators;
mod endpoints;
pub mod fuzzing;
mod handler;
mod inter_broker;
mod internal_topics;
mod lifecycle;
mod listener_tls;
mod local_leaders;
mod meta_properties;
pub mod metadata;
mod metadata_publisher;
mod metrics_collector;
mod producer_ids;
mod quota_managers;
mod replica_manager;
mod replication;
mod scram_bootstrap;
mod server;
mod session;
mod share_partitions;
mod share_persister;
#[cfg(test)]
mod test_broker;
mod topic_admin;
mod txn_verifier;

pub use broker::{Broker, StartError};
pub use config::{
    broker_config_kind, parse_properties, BrokerConfig, BrokerConfigDef, ConfigError,
    ACCEPTED_WITHOUT_EFFECT, BROKER_CONFIGS, STANDARD_AUTHORIZER,
};
pub use coordinators::Coordinators;
pub use metrics_collector::BrokerCollector;
pub use producer_ids::{ProducerIdError, ProducerIdManager, PRODUCER_ID_BLOCK_SIZE};
pub use replica_manager::ReplicaManager;
pub use scram_bootstrap::add_scram_if_absent;
pub use server::BrokerServer;
pub use topic_admin::{
    validate_topic_name, ConfigAlteration, ConfigOp, NewTopic, TopicAdmin, TopicError,
};
