//! Kafka client quotas, with Kafka's names and semantics: what is configured, which quota
//! applies to a connection, how fast it goes, and how long to throttle it.
//!
//! - [`QuotaEntity`], [`QuotaKey`]: the key and the config names of a quota (`ClientQuotaEntity`;
//!   `producer_byte_rate`, `consumer_byte_rate`, `request_percentage`, `controller_mutation_rate`,
//!   and `connection_creation_rate` for `ip` entities).
//! - [`QuotaStore`]: the configured quotas, altered as AlterClientQuotas and described with a
//!   [`QuotaFilter`] as DescribeClientQuotas (KIP-546).
//! - [`QuotaTable`]: one key's quotas with KIP-55's eight-level precedence and the sensor tags
//!   that decide which connections share a rate.
//! - [`Rate`] and [`TokenBucket`]: Kafka's windowed rate (KIP-13) and token bucket (KIP-599).
//! - [`QuotaManager`]: per quota type (Produce, Fetch, Request as KIP-124, ControllerMutation),
//!   records each request and returns the throttle time the broker sends back and waits out
//!   (KIP-219).
//!
//! Dependency rule: a pure crate. No strom crate, no I/O, no clock (every time is passed in, in
//! milliseconds), no wire types: the broker maps [`QuotaError::kind`] to error codes and turns
//! [`ValidatedAlteration`] into metadata records.

mod config;
mod entity;
mod error;
mod filter;
mod key;
mod manager;
mod rate;
mod resolve;
mod sensor;
mod store;
mod token_bucket;

pub use config::ClientQuotaManagerConfig;
pub use entity::{EntityName, EntityType, QuotaEntity};
pub use error::{ErrorKind, QuotaError};
pub use filter::{
    EntityMatch, FilterComponent, QuotaFilter, MATCH_TYPE_DEFAULT, MATCH_TYPE_EXACT,
    MATCH_TYPE_SPECIFIED,
};
pub use key::{QuotaKey, ValueType};
pub use manager::{nanos_to_percentage, QuotaManager, QuotaType, INACTIVE_SENSOR_EXPIRATION_MS};
pub use rate::Rate;
pub use resolve::{QuotaLevel, QuotaTable, Resolution, SensorTags};
pub use store::{DescribedQuotas, QuotaChange, QuotaOp, QuotaStore, ValidatedAlteration};
pub use token_bucket::TokenBucket;
