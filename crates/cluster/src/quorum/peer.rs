//! Who is on the other end of a controller connection, and what it may ask.
//!
//! A connection starts with a `Hello` naming the sender's node id; the id is then checked against
//! what the cluster knows and against the connection's source address:
//! - a voter's id (`controller.quorum.voters`) is accepted only from an address the voter's
//!   configured host resolves to; otherwise the connection is refused;
//! - a registered broker's id counts as that broker only from an address its current
//!   registration names (controller address host, advertised host or a listener's host); from
//!   anywhere else the
//!   peer is a newcomer;
//! - anyone else is a newcomer, who may only register itself.
//!
//! Per request: Raft RPCs only from voters, speaking for themselves (the vote's leader id is the
//! sender); `Propose`, `ProposeGroup`, `ReadIndex` and `ElectLeaders` from voters and
//! registered brokers (a broker's proposals may not register, fence or unfence brokers: that is
//! the controller's);
//! `Heartbeat`, `AlterPartition` and `RegisterBroker` only for the sender's own broker id, and a
//! registration only with an address the connection comes from (a voter's is known already).
//!
//! On a plaintext controller listener a peer proves nothing. Anyone able to send from a
//! voter's or a broker's address (the same host, a network that allows spoofed sources, a NAT
//! in front of the cluster) can claim its id, and anyone may register an id whose previous
//! incarnation is fenced or whose session expired, as in Kafka without authentication.
//! Addresses fence off mistakes and remote strangers, not attackers on the path.
//! `QuorumConfig::check_peer_addresses` turns the address check off where source addresses are
//! rewritten (NAT, service virtual IPs).
//!
//! On a TLS controller listener (`QuorumConfig::tls`) the acceptor proves the node id from the
//! peer's client certificate (`tls`: the mapped principal must be `broker-<id>`), so the hello
//! must name that id (`IdentityMismatch` otherwise), the address checks are skipped, and the
//! per-request rules stay as they are.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use openraft::Vote;
use uuid::Uuid;

use super::transport::host_of;
use super::types::{raft_id, NodeId};
use super::wire::Request;
use super::{PeerRefusal, Quorum};
use crate::metadata::{BrokerRegistration, MetadataRecord};

/// How long resolving a peer's host name may take before the check fails.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(2);

/// What a peer counts as for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// A configured voter, from its address.
    Voter,
    /// A registered broker, from an address its registration names.
    Broker,
    /// Anyone else: may only register.
    Newcomer,
}

/// The peer of one connection, after its hello.
#[derive(Debug)]
pub(crate) struct Peer {
    /// The node id it said hello with.
    pub(crate) node_id: i32,
    /// Where it connects from.
    pub(crate) from: SocketAddr,
    voter: bool,
    /// The transport proved `node_id`.
    proven: bool,
    /// The broker incarnation whose registered addresses this connection matched (checked again
    /// when the registration changes).
    verified_incarnation: Option<Uuid>,
}

/// A broker proposes what its admin requests decide (topics, partitions, configs, producer
/// ids); broker registrations and fencing are the controller's. A voter may forward those (its
/// controller lost leadership mid-proposal).
fn proposable(role: Role, records: &[MetadataRecord]) -> Result<(), PeerRefusal> {
    let controllers = |r: &MetadataRecord| {
        matches!(
            r,
            MetadataRecord::RegisterBroker { .. }
                | MetadataRecord::FenceBroker { .. }
                | MetadataRecord::UnfenceBroker { .. }
        )
    };
    match role != Role::Voter && records.iter().any(controllers) {
        true => Err(PeerRefusal::ControllerOnly),
        false => Ok(()),
    }
}

fn same_ip(a: IpAddr, b: IpAddr) -> bool {
    a.to_canonical() == b.to_canonical()
}

impl Quorum {
    /// The configured voters' ids (this node alone when none are configured).
    pub(crate) fn is_voter_id(&self, id: i32) -> bool {
        if self.cfg.voters.is_empty() {
            return id == self.cfg.node_id;
        }
        self.cfg.voters.iter().any(|(v, _)| *v == id)
    }

    /// True when `host` (a name or an IP literal) resolves to `ip`; always true with the address
    /// check turned off.
    async fn host_is(&self, host: &str, ip: IpAddr) -> bool {
        if !self.cfg.check_peer_addresses {
            return true;
        }
        if host.is_empty() {
            return false;
        }
        if let Ok(literal) = host.parse::<IpAddr>() {
            return same_ip(literal, ip);
        }
        match tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((host, 0))).await {
            Ok(Ok(mut addrs)) => addrs.any(|a| same_ip(a.ip(), ip)),
            Ok(Err(e)) => {
                tracing::warn!(host, error = %e, "resolving a peer's host failed");
                false
            }
            Err(_) => {
                tracing::warn!(host, "resolving a peer's host timed out");
                false
            }
        }
    }

    /// True when the connection comes from an address `reg` names: its controller address, its
    /// default host or the host of one of its listeners (each distinct host looked up once; a
    /// registration has at most `MAX_LISTENERS_PER_BROKER` of them).
    pub(crate) async fn registration_is_from(&self, reg: &BrokerRegistration, ip: IpAddr) -> bool {
        let controller = (!reg.controller_addr.is_empty()).then(|| host_of(&reg.controller_addr));
        let mut hosts: Vec<&str> = Vec::new();
        let listeners = reg.endpoints.iter().map(|e| e.host.as_str());
        for host in controller
            .into_iter()
            .chain([reg.host.as_str()])
            .chain(listeners)
        {
            if hosts.contains(&host) {
                continue;
            }
            hosts.push(host);
            if self.host_is(host, ip).await {
                return true;
            }
        }
        false
    }

    /// Checks a hello: the id and, for a voter, the address. A broker's address is checked per
    /// request (its registration can change during a connection).
    pub(crate) async fn hello(
        &self,
        node_id: i32,
        from: SocketAddr,
        proven_node: Option<i32>,
    ) -> Result<Peer, PeerRefusal> {
        if proven_node.is_some_and(|p| p != node_id) {
            return Err(PeerRefusal::IdentityMismatch);
        }
        if node_id < 0 || node_id == self.cfg.node_id {
            return Err(PeerRefusal::BadNodeId);
        }
        let voter = self.is_voter_id(node_id);
        if voter && proven_node.is_none() {
            let membership_addr = self
                .raft
                .metrics()
                .borrow()
                .membership_config
                .membership()
                .get_node(&raft_id(node_id))
                .map(|n| n.addr.clone());
            let configured = self
                .cfg
                .voters
                .iter()
                .filter(|(id, _)| *id == node_id)
                .map(|(_, a)| a.clone());
            let mut matched = false;
            for addr in configured.chain(membership_addr) {
                if self.host_is(host_of(&addr), from.ip()).await {
                    matched = true;
                    break;
                }
            }
            if !matched {
                return Err(PeerRefusal::AddressMismatch);
            }
        }
        Ok(Peer {
            node_id,
            from,
            voter,
            proven: proven_node.is_some(),
            verified_incarnation: None,
        })
    }

    /// What `peer` counts as now.
    pub(crate) async fn role(&self, peer: &mut Peer) -> Role {
        if peer.voter {
            return Role::Voter;
        }
        let image = self.image();
        let Some(b) = image.brokers.get(&peer.node_id) else {
            return Role::Newcomer;
        };
        let inc = b.registration.incarnation;
        if peer.proven || peer.verified_incarnation == Some(inc) {
            return Role::Broker;
        }
        if self
            .registration_is_from(&b.registration, peer.from.ip())
            .await
        {
            peer.verified_incarnation = Some(inc);
            return Role::Broker;
        }
        Role::Newcomer
    }

    /// May `peer` send `req`? (The rules are in the module docs.)
    pub(crate) async fn authorize(
        &self,
        peer: &mut Peer,
        req: &Request,
    ) -> Result<(), PeerRefusal> {
        let role = self.role(peer).await;
        let me = peer.node_id;
        let known = || match role {
            Role::Voter | Role::Broker => Ok(()),
            Role::Newcomer => Err(PeerRefusal::NotRegistered),
        };
        let own = |id: i32| match id == me {
            true => Ok(()),
            false => Err(PeerRefusal::WrongSender),
        };
        let raft_rpc = |vote: &Vote<NodeId>| {
            if role != Role::Voter {
                return Err(PeerRefusal::NotAVoter);
            }
            match vote.leader_id().voted_for() == Some(raft_id(me)) {
                true => Ok(()),
                false => Err(PeerRefusal::WrongSender),
            }
        };
        match req {
            Request::Hello { .. } => Err(PeerRefusal::NoHello),
            Request::AppendEntries(r) => raft_rpc(&r.vote),
            Request::Vote(r) => raft_rpc(&r.vote),
            Request::InstallSnapshot(r) => raft_rpc(&r.vote),
            Request::Propose(p) => known().and(proposable(role, &p.records)),
            Request::ProposeGroup(parts) => {
                known().and(parts.iter().try_for_each(|p| proposable(role, &p.records)))
            }
            Request::ReadIndex | Request::ElectLeaders { .. } => known(),
            Request::Heartbeat(h) => known().and(own(h.broker_id)),
            Request::AlterPartition(a) => known().and(own(a.broker)),
            Request::RegisterBroker(reg) => {
                own(reg.broker_id)?;
                // An invalid registration goes on to the controller, which refuses it with the
                // reason; its host is never looked up.
                if role == Role::Voter || peer.proven || reg.validate().is_err() {
                    return Ok(());
                }
                match self.registration_is_from(reg, peer.from.ip()).await {
                    true => Ok(()),
                    false => Err(PeerRefusal::AddressMismatch),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_ipv4_is_the_same_ip() {
        let v4: IpAddr = "127.0.0.1".parse().expect("ip");
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().expect("ip");
        assert!(same_ip(v4, mapped));
    }
}
