//! `QuorumConfig`: what a node needs to join the controller quorum, with Kafka's names and
//! defaults where Kafka has one, and its validation.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::tls::ControllerTls;
use super::QuorumError;

/// Settings of one quorum node.
#[derive(Debug, Clone)]
pub struct QuorumConfig {
    /// `node.id`.
    pub node_id: i32,
    /// Data directory; the metadata log, vote and snapshots live in `<dir>/metadata`.
    pub dir: PathBuf,
    /// Where the controller RPC listens (`controller.listener`); `None` for a lone node.
    pub controller_listen: Option<SocketAddr>,
    /// `controller.quorum.voters` as (id, `host:port`); empty = a one-node cluster of itself.
    pub voters: Vec<(i32, String)>,
    /// True when this node votes (`process.roles` has `controller`); false for a broker-only node,
    /// which follows the log as a Raft learner.
    pub voter: bool,
    /// `broker.session.timeout.ms` (Kafka: 9000).
    pub session_timeout_ms: u64,
    /// `leader.imbalance.check.interval.seconds` in ms (Kafka: 300 s).
    pub leader_imbalance_check_interval_ms: u64,
    /// `auto.leader.rebalance.enable` (Kafka: true).
    pub auto_leader_rebalance: bool,
    /// `unclean.leader.election.enable` default for topics without an override (Kafka: false).
    pub unclean_leader_election_default: bool,
    /// Raft leader heartbeat interval.
    pub heartbeat_interval_ms: u64,
    /// Lower bound of the randomized election timeout (`controller.quorum.election.timeout.ms`).
    pub election_timeout_min_ms: u64,
    /// Upper bound of the randomized election timeout.
    pub election_timeout_max_ms: u64,
    /// A snapshot is taken after this many entries since the last one.
    pub snapshot_every_entries: u64,
    /// Entries kept in the log behind the snapshot (so a briefly lagging follower needs no
    /// snapshot).
    pub snapshot_keep_entries: u64,
    /// How long `start` waits to catch up with the committed log before returning anyway.
    pub startup_timeout_ms: u64,
    /// How long a request to the active controller (propose, heartbeat...) may take, retries
    /// across leader changes included.
    pub request_timeout_ms: u64,
    /// Check that a peer connects from the address its node id is known by (a voter's
    /// configured host, a broker's registered hosts). On by default; turn it off only where
    /// source addresses are rewritten (NAT, service virtual IPs). See `quorum::peer`: without
    /// TLS this is a fence against mistakes and strangers, not authentication.
    pub check_peer_addresses: bool,
    /// The controller listener's security: `None` keeps it plaintext (as Kafka's PLAINTEXT);
    /// `Some` makes the listener TLS with required client certificates that prove each peer's
    /// node id, and every outbound controller connection TLS with this node's certificate.
    /// The broker builds it from the controller listener's keys ([`ControllerTls::from_listener`]).
    pub tls: Option<ControllerTls>,
}

impl QuorumConfig {
    /// A voter with Kafka's defaults and no peers (a one-node cluster).
    pub fn new(node_id: i32, dir: impl Into<PathBuf>) -> QuorumConfig {
        QuorumConfig {
            node_id,
            dir: dir.into(),
            controller_listen: None,
            voters: Vec::new(),
            voter: true,
            session_timeout_ms: 9000,
            leader_imbalance_check_interval_ms: 300_000,
            auto_leader_rebalance: true,
            unclean_leader_election_default: false,
            heartbeat_interval_ms: 100,
            election_timeout_min_ms: 500,
            election_timeout_max_ms: 1000,
            snapshot_every_entries: 10_000,
            snapshot_keep_entries: 1000,
            startup_timeout_ms: 5000,
            request_timeout_ms: 10_000,
            check_peer_addresses: true,
            tls: None,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), QuorumError> {
        let bad = |m: String| Err(QuorumError::Config(m));
        if self.node_id < 0 {
            return bad(format!("node id {} is negative", self.node_id));
        }
        if !self.voter && (self.voters.is_empty() || self.controller_listen.is_none()) {
            return bad(
                "a broker-only node needs the voters and its own controller listener".into(),
            );
        }
        if self.voter && !self.voters.is_empty() {
            if !self.voters.iter().any(|(id, _)| *id == self.node_id) {
                return bad(format!(
                    "node {} is a voter but not in the voters list",
                    self.node_id
                ));
            }
            if self.voters.len() > 1 && self.controller_listen.is_none() {
                return bad("a voter of a multi-node quorum needs a controller listener".into());
            }
        }
        if let Some(Err(e)) = self.tls.as_ref().map(ControllerTls::validate) {
            return bad(e);
        }
        if self.voters.iter().any(|(id, _)| *id < 0) {
            return bad("voter ids must not be negative".into());
        }
        if self.election_timeout_min_ms <= self.heartbeat_interval_ms
            || self.election_timeout_max_ms <= self.election_timeout_min_ms
        {
            return bad("need heartbeat < election timeout min < max".into());
        }
        Ok(())
    }

    /// The openraft config these settings make.
    pub(crate) fn raft_config(&self) -> Result<openraft::Config, QuorumError> {
        let c = openraft::Config {
            cluster_name: "strom-metadata".into(),
            heartbeat_interval: self.heartbeat_interval_ms,
            election_timeout_min: self.election_timeout_min_ms,
            election_timeout_max: self.election_timeout_max_ms,
            // JSON snapshot chunks of 1 MiB stay well inside a frame; installs are not hurried.
            snapshot_max_chunk_size: 1 << 20,
            install_snapshot_timeout: 5000,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(
                self.snapshot_every_entries.max(1),
            ),
            max_in_snapshot_log_to_keep: self.snapshot_keep_entries,
            // Purging persists the purge point (an fsync): do it in chunks, not per entry.
            purge_batch_size: (self.snapshot_every_entries / 4).max(1),
            ..Default::default()
        };
        c.validate()
            .map_err(|e| QuorumError::Config(format!("raft config: {e}")))
    }
}
