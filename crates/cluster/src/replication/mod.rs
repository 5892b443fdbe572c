//! Replication policy, pure and clock-free: what a partition leader decides from its followers'
//! fetches (`leader`). The broker's data plane and the simulation tests share it.

pub mod leader;

pub use leader::{FollowerFetchOutcome, FollowerProgress, LeaderState};
