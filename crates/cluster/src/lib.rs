//! Strom's cluster layer.
//!
//! `metadata` holds the records of `__cluster_metadata` and the image they build; `quorum` runs
//! the controller quorum on openraft (every voter keeps the metadata log, the Raft leader is the
//! active controller); `controller` decides what records to write (broker registration and
//! fencing, leader election from the ISR, ISR changes); `replication` is the pure policy a
//! partition leader applies (follower progress, ISR shrink/expand, high watermark), shared by the
//! broker's data plane and the deterministic simulation tests.
//!
//! Inside, dependencies point one way: `quorum` → `controller` → {`replication`, `metadata`},
//! and all of them → `error` (the crate's error types). The controller reaches the quorum only
//! through the `ControllerHost` trait it defines and the quorum implements, so no module imports
//! one that imports it back.
//!
//! This crate does not depend on crates/broker: the broker drives it.

pub mod controller;
mod error;
pub mod metadata;
pub mod quorum;
pub mod replication;

pub use quorum::{BrokerRegistration, HeartbeatReply, Quorum, QuorumConfig, QuorumError};
