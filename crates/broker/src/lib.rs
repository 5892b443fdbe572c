//! Strom's broker: the Kafka wire-protocol server and its request handlers.
//!
//! `server` reads frames and writes responses in order; `handler` holds one module per API family
//! registered in one table; `ReplicaManager` maps partitions to `strom_log` logs; `metadata` is the
//! durable record log of topics and configs. See `docs/ARCHITECTURE.md` for how a Produce and a
//! Fetch travel through these modules.
//!
//! This crate may depend on crates/log, never the other way round. It talks to other brokers
//! (WriteTxnMarkers) through crates/client's `Connection`.

mod admin_ops;
mod broker;
mod config;
mod consumer_groups;
mod coordinator_leadership;
mod group_writer;
mod handler;
mod inter_broker;
mod internal_topics;
mod leaders;
mod lifecycle;
pub mod metadata;
mod producer_ids;
mod replica_manager;
mod replication;
mod server;
#[cfg(test)]
mod test_broker;
mod txn_coordinator;
mod txn_marker_channel;
mod txn_verifier;

pub use admin_ops::{ConfigAlteration, ConfigOp};
pub use broker::{validate_topic_name, Broker, NewTopic, StartError, TopicError};
pub use config::{
    broker_config_kind, parse_properties, BrokerConfig, BrokerConfigDef, ConfigError,
    ACCEPTED_WITHOUT_EFFECT, BROKER_CONFIGS,
};
pub use producer_ids::{ProducerIdError, ProducerIdManager, PRODUCER_ID_BLOCK_SIZE};
pub use replica_manager::ReplicaManager;
pub use server::BrokerServer;
