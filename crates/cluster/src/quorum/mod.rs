//! The controller quorum: the metadata log replicated with openraft (Kafka 4's KRaft in spirit).
//!
//! Every voter keeps `__cluster_metadata-0` and a `MetadataImage`; the Raft leader is the active
//! controller. Broker-only nodes follow the log as Raft learners. A node of a one-node cluster
//! (no voters configured) runs Raft with itself as the only voter and no listener: a write costs
//! one fsync and the node leads from start-up on.
//!
//! Writes are [`Quorum::propose`]: `decide` runs on this node's image, the records travel to the
//! Raft leader (over the controller RPC when this node is not it) as one entry tagged with the
//! image offset they were decided on, and the state machine applies them only if nothing changed
//! the image since (optimistic concurrency; see [`types::Proposal`]). Controller requests
//! (registration, heartbeats, AlterPartition, elections) go to the leader's [`Controller`], which
//! the quorum starts, hosts (it implements the controller's `ControllerHost`) and stops; the
//! controller never refers back to the quorum (see `leadership`).
//!
//! Modules: `types` (openraft types), `log_store` + `entry_codec` + `state_file` (the durable Raft
//! log and vote), `state_machine` + `snapshot_store` (image and snapshots), `wire` + `network` +
//! `server` + `peer` (the RPC and who may use it), `transport` + `tls` (plain TCP or mTLS proving
//! node ids, both directions; `QuorumConfig::tls`), `admit` (the leader's checks on proposals),
//! `routing` (finding the leader, read index), `propose`, `leadership` (the active controller's
//! start, stop, clock and host), `api` (controller requests). The error types are the crate's
//! (`crate::error`), re-exported here.
//!
//! Start-up and the image: [`Quorum::start`] returns once the image is confirmed current or after
//! `startup_timeout_ms`, so the image it leaves may be older than the node's partition logs.
//! [`Quorum::caught_up`] / [`Quorum::wait_caught_up`] say when it has been confirmed current (it
//! then stays so); anything that deletes local data because the image lacks it must wait for
//! that first.
//!
//! Every operation ends within `request_timeout_ms` (a proposal, a controller request, a learner
//! change), also when this node leads and serves it in-process: a leader that lost its quorum
//! would otherwise wait for a commit forever, holding the propose lock.
//!
//! [`Controller`]: crate::controller::Controller

mod admit;
mod api;
mod config;
mod entry_codec;
mod leadership;
mod log_store;
mod network;
mod peer;
mod propose;
mod routing;
mod server;
mod snapshot_store;
mod staging;
mod state_file;
mod state_machine;
mod tls;
mod transport;
pub mod types;
pub(crate) mod wire;

#[cfg(test)]
mod bounded_tests;
#[cfg(test)]
mod replay_tests;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use openraft::{BasicNode, Raft, ServerState};
use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use crate::controller::requests::HeartbeatReply;
pub use crate::error::{PeerRefusal, QuorumError, RemoteError};
pub use crate::metadata::BrokerRegistration;
use crate::metadata::MetadataImage;
pub use config::QuorumConfig;
use leadership::ActiveController;
use log_store::LogStore;
use network::{Network, Peers};
use snapshot_store::SnapshotStore;
use state_machine::StateMachine;
pub use tls::{node_principal_name, ControllerTls, NODE_PRINCIPAL_PREFIX};
use types::{kafka_id, raft_id, TypeConfig};
pub use types::{MAX_ENTRY_BYTES, MAX_PROPOSAL_BYTES, MAX_PROPOSAL_PARTS};

/// This node's membership in the controller quorum. Shared as `Arc<Quorum>`.
pub struct Quorum {
    cfg: QuorumConfig,
    raft: Raft<TypeConfig>,
    log_store: LogStore,
    image_tx: Arc<watch::Sender<Arc<MetadataImage>>>,
    peers: Arc<Peers>,
    /// The listener's bound address (the configured one, with the real port when it was 0).
    listen_addr: Option<SocketAddr>,
    /// Serialises this node's proposals, so they never conflict with each other.
    propose_lock: tokio::sync::Mutex<()>,
    /// The active controller and its clock, while this node is the Raft leader (`leadership`).
    controller: Mutex<Option<ActiveController>>,
    /// Set once the image has been confirmed to hold everything committed (see `caught_up`).
    caught_up: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    stopped: watch::Sender<bool>,
}

impl std::fmt::Debug for Quorum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Quorum")
            .field("node_id", &self.cfg.node_id)
            .field("listen_addr", &self.listen_addr)
            .field("offset", &self.image().offset)
            .finish()
    }
}

impl Quorum {
    /// Binds the controller listener (if any), opens the metadata log, starts Raft, forms the
    /// cluster on a fresh voter set, and returns once this node's image is confirmed current
    /// (caught up with the leader's commit index), or after `startup_timeout_ms` with a warning
    /// (Raft and the confirmation keep trying in the background; see [`Quorum::caught_up`]).
    /// A broker-only node that is not in the quorum yet returns at once: it joins when its
    /// broker registers, and only then can catch up.
    pub async fn start(cfg: QuorumConfig) -> Result<Arc<Quorum>, QuorumError> {
        cfg.validate()?;
        // The key material is read before anything is bound or opened, so a bad keystore fails
        // the start with the key to fix.
        let (acceptor, connector) = match &cfg.tls {
            Some(tls) => {
                let (acceptor, connector) = tls.build()?;
                (Some(acceptor), connector)
            }
            None => (None, transport::Connector::Plain),
        };
        let listener = match cfg.controller_listen {
            Some(addr) => Some(
                tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|source| QuorumError::Bind { addr, source })?,
            ),
            None => None,
        };
        let listen_addr = match &listener {
            Some(l) => Some(l.local_addr().map_err(|source| {
                QuorumError::Bind {
                    addr: cfg
                        .controller_listen
                        .unwrap_or_else(|| ([0, 0, 0, 0], 0).into()),
                    source,
                }
            })?),
            None => None,
        };
        let dir = cfg.dir.join("metadata");
        let log_store = LogStore::open(&dir)?;
        let snap_dir = dir.join("snapshots");
        let snapshots =
            Arc::new(SnapshotStore::open(&snap_dir).map_err(|e| QuorumError::io(&snap_dir, e))?);
        let image_tx = Arc::new(watch::channel(Arc::new(MetadataImage::default())).0);
        let sm = StateMachine::open(snapshots, image_tx.clone())
            .map_err(|e| QuorumError::io(&snap_dir, e))?;
        let peers = Arc::new(Peers::new(cfg.node_id, connector));
        let raft = Raft::new(
            raft_id(cfg.node_id),
            Arc::new(cfg.raft_config()?),
            Network {
                peers: peers.clone(),
            },
            log_store.clone(),
            sm,
        )
        .await?;
        let quorum = Arc::new(Quorum {
            cfg,
            raft,
            log_store,
            image_tx,
            peers,
            listen_addr,
            propose_lock: tokio::sync::Mutex::new(()),
            controller: Mutex::new(None),
            caught_up: watch::channel(false).0,
            tasks: Mutex::new(Vec::new()),
            stopped: watch::channel(false).0,
        });
        if let Some(l) = listener {
            let serve = server::serve_listener(l, acceptor, Arc::downgrade(&quorum));
            quorum.tasks.lock().push(tokio::spawn(serve));
        }
        let t = tokio::spawn(leadership::watch_leadership(Arc::downgrade(&quorum)));
        quorum.tasks.lock().push(t);
        quorum.form_cluster().await?;
        let t = tokio::spawn(routing::confirm_caught_up(Arc::downgrade(&quorum)));
        quorum.tasks.lock().push(t);
        if !quorum.can_catch_up() {
            tracing::info!("broker-only node not in the metadata quorum yet: it catches up once its broker registers");
            return Ok(quorum);
        }
        let timeout = Duration::from_millis(quorum.cfg.startup_timeout_ms);
        if let Err(e) = quorum.wait_caught_up(timeout).await {
            tracing::warn!(error = %e, "metadata image not confirmed current at start-up; continuing (Quorum::caught_up stays false until it is)");
        }
        Ok(quorum)
    }

    /// True once this node's image has been confirmed to hold everything the quorum had committed
    /// at some moment after start-up. It then stays true: such an image is at least as new as any
    /// metadata this node's local data was written under before it started. Until then the image
    /// may be older than the local logs (a node restarted without a quorum, a lagging learner),
    /// so nothing may be deleted for being absent from it.
    pub fn caught_up(&self) -> bool {
        *self.caught_up.borrow()
    }

    /// A watch of [`Quorum::caught_up`] (false, then true once).
    pub fn subscribe_caught_up(&self) -> watch::Receiver<bool> {
        self.caught_up.subscribe()
    }

    /// Waits until [`Quorum::caught_up`] is true, for at most `timeout`, and returns the image
    /// then current (confirmed current, or newer). `TimedOut` after `timeout`; `Stopped` if the
    /// quorum stops first.
    pub async fn wait_caught_up(
        &self,
        timeout: Duration,
    ) -> Result<Arc<MetadataImage>, QuorumError> {
        let mut rx = self.caught_up.subscribe();
        let mut stopped = self.stopped.subscribe();
        let wait = async {
            tokio::select! {
                r = rx.wait_for(|c| *c) => r.map(|_| ()).map_err(|_| QuorumError::Stopped),
                _ = stopped.wait_for(|s| *s) => Err(QuorumError::Stopped),
            }
        };
        match tokio::time::timeout(timeout, wait).await {
            Ok(Ok(())) => Ok(self.image()),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(QuorumError::TimedOut {
                what: "confirming the metadata image is current",
                after: timeout,
            }),
        }
    }

    /// A fresh voter initializes Raft with the configured voters (all voters may do so with the
    /// same membership); a node with any Raft state, and a learner, never does (a broker-only
    /// node is added as a learner when its broker registers).
    async fn form_cluster(self: &Arc<Self>) -> Result<(), QuorumError> {
        if !self.cfg.voter {
            return Ok(());
        }
        if self.raft.is_initialized().await? {
            return Ok(());
        }
        let members: BTreeMap<u64, BasicNode> = if self.cfg.voters.is_empty() {
            let addr = self.listen_addr.map(|a| a.to_string()).unwrap_or_default();
            BTreeMap::from([(raft_id(self.cfg.node_id), BasicNode { addr })])
        } else {
            self.cfg
                .voters
                .iter()
                .map(|(id, addr)| (raft_id(*id), BasicNode { addr: addr.clone() }))
                .collect()
        };
        tracing::info!(?members, "initializing the metadata quorum");
        match self.raft.initialize(members).await {
            Ok(()) => Ok(()),
            // Another voter got there first and replicated the same membership: fine.
            Err(openraft::error::RaftError::APIError(e)) => {
                tracing::info!(error = %e, "metadata quorum already initialized");
                Ok(())
            }
            Err(openraft::error::RaftError::Fatal(f)) => Err(f.into()),
        }
    }

    /// This node's id.
    pub fn node_id(&self) -> i32 {
        self.cfg.node_id
    }

    /// The controller listener's bound address.
    pub fn controller_addr(&self) -> Option<SocketAddr> {
        self.listen_addr
    }

    /// The latest applied image.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.image_tx.borrow().clone()
    }

    /// A watch of the applied image.
    pub fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.image_tx.subscribe()
    }

    /// The current Raft leader (the active controller), as far as this node knows.
    pub fn controller_leader(&self) -> Option<i32> {
        self.raft.metrics().borrow().current_leader.map(kafka_id)
    }

    /// True while this node is the Raft leader.
    pub fn is_leader(&self) -> bool {
        self.raft.metrics().borrow().state == ServerState::Leader
    }

    /// How long a request to the active controller may take (`request_timeout_ms`).
    pub(crate) fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.cfg.request_timeout_ms)
    }

    /// The offset just past this node's Raft log (Raft's metrics, which can lag the image).
    pub(crate) fn log_end(&self) -> i64 {
        self.raft
            .metrics()
            .borrow()
            .last_log_index
            .map_or(0, |i| i64::try_from(i + 1).unwrap_or(i64::MAX))
    }

    fn is_stopped(&self) -> bool {
        *self.stopped.borrow()
    }

    /// Stops the controller, the listener and Raft, and closes the metadata log cleanly.
    pub async fn shutdown(&self) {
        if self.stopped.send_replace(true) {
            return;
        }
        if let Some(c) = self.controller.lock().take() {
            c.stop();
        }
        for t in self.tasks.lock().drain(..) {
            t.abort();
        }
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(error = %e, "raft shutdown");
        }
        self.peers.clear();
        self.log_store.shutdown();
        tracing::info!(node = self.cfg.node_id, "metadata quorum stopped");
    }
}

/// SCRAM logins read the newest applied image, so a credential altered through the quorum
/// (AlterUserScramCredentials) is used by the next login, on every node. Cheap and non-blocking,
/// as the trait asks: one `Arc` clone and two map lookups.
impl strom_security::ScramCredentialStore for Quorum {
    fn credential(
        &self,
        mechanism: strom_security::ScramMechanism,
        username: &str,
    ) -> Option<strom_security::ScramCredential> {
        self.image().scram_credential(mechanism, username)
    }
}
