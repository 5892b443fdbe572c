//! `LocalLeaders`: where a partition's leader is as this broker sees it (this node at the leader
//! epoch its replica manager applied, another broker's endpoint, or nobody), and the leader's own
//! write for the broker's internal writers: the coordinators' records in `__consumer_offsets` and
//! `__transaction_state`, and transaction markers (EndTxn here, WriteTxnMarkers from another
//! coordinator). The append itself is `Partition::append_as_leader`; this adds the image lookup
//! and the `min.insync.replicas` check every internal writer needs, so they agree on who leads
//! what.
//!
//! A single node registers no broker for itself before its quorum applies the registration: a
//! leader id equal to this node's `node.id` is this node, with its own endpoints, whether
//! registered or not.

use std::sync::Arc;

use strom_log::{PartitionLog, TopicPartition, ValidatedBatches};

use crate::endpoints::Endpoints;
use crate::metadata::{MetadataImage, Quorum};
use crate::replica_manager::ReplicaManager;
use crate::replication::{AppendError, Partition, PendingAppend, TxnVerification};

/// The leader of one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Leader {
    /// This node, at the leader epoch of the role its replica manager took.
    Here { epoch: i32 },
    /// Another broker (its endpoint: [`LocalLeaders::endpoint`] on the caller's listener).
    Remote { id: i32 },
    /// No leader right now, or its broker is fenced or unknown: try again later.
    Unavailable,
    /// The topic or partition does not exist.
    Unknown,
}

/// Why an internal write to a partition did not happen or did not complete.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LeaderWriteError<E> {
    /// The partition is led elsewhere, by nobody, or does not exist.
    #[error("not led here: {0:?}")]
    NotHere(Leader),
    /// The batches could not be built or were refused by validation.
    #[error("{0}")]
    Build(E),
    /// The append was refused or did not complete.
    #[error(transparent)]
    Append(#[from] AppendError),
}

/// This broker's view of partition leadership, and its internal writes as leader.
#[derive(Debug)]
pub(crate) struct LocalLeaders {
    replicas: Arc<ReplicaManager>,
    quorum: Arc<Quorum>,
    node_id: i32,
    endpoints: Endpoints,
    /// TLS and SASL of this broker's connections to the others.
    inter_broker: Arc<strom_client::Security>,
}

impl LocalLeaders {
    pub(crate) fn new(
        replicas: Arc<ReplicaManager>,
        quorum: Arc<Quorum>,
        node_id: i32,
        endpoints: Endpoints,
        inter_broker: Arc<strom_client::Security>,
    ) -> Self {
        LocalLeaders {
            replicas,
            quorum,
            node_id,
            endpoints,
            inter_broker,
        }
    }

    /// The current metadata image.
    pub(crate) fn image(&self) -> Arc<MetadataImage> {
        self.quorum.image()
    }

    /// The log of a partition hosted here (leader or not).
    pub(crate) fn log(&self, topic: &str, partition: i32) -> Option<Arc<PartitionLog>> {
        self.replicas.log(&TopicPartition::new(topic, partition))
    }

    /// This node's id.
    pub(crate) fn node_id(&self) -> i32 {
        self.node_id
    }

    /// Who leads `topic`-`partition` in `image`.
    pub(crate) fn leader_of(&self, image: &MetadataImage, topic: &str, partition: i32) -> Leader {
        let Some(part) = image
            .topic(topic)
            .and_then(|t| t.partitions.get(&partition))
        else {
            return Leader::Unknown;
        };
        if part.leader == self.node_id {
            // The role the replica manager applied, not the image: appends need its leader state.
            let role = self
                .replicas
                .partition(&TopicPartition::new(topic, partition))
                .and_then(|p| p.leader_epoch());
            return match role {
                Some(epoch) => Leader::Here { epoch },
                // Not applied yet (or no local replica): leadership is on its way here.
                None => Leader::Unavailable,
            };
        }
        if part.leader < 0 {
            return Leader::Unavailable;
        }
        match image.brokers.get(&part.leader) {
            Some(b) if !b.fenced => Leader::Remote { id: part.leader },
            _ => Leader::Unavailable,
        }
    }

    /// The endpoint of broker `id` on `listener`: registered and unfenced in `image`, or this
    /// node.
    pub(crate) fn endpoint(
        &self,
        image: &MetadataImage,
        id: i32,
        listener: &str,
    ) -> Option<(String, i32)> {
        match image.brokers.get(&id) {
            Some(b) if !b.fenced => Some(self.endpoints.of(b, listener)),
            Some(_) => None,
            None if id == self.node_id => Some(self.endpoints.own_on(listener)),
            None => None,
        }
    }

    /// The TLS and SASL of this broker's connections to the others.
    pub(crate) fn inter_broker_security(&self) -> Arc<strom_client::Security> {
        self.inter_broker.clone()
    }

    /// `inter.broker.listener.name`: how this broker reaches the others.
    pub(crate) fn inter_broker_listener(&self) -> &str {
        self.endpoints.inter_broker_listener()
    }

    /// The local partition of `topic`-`partition` when `image` says this node leads it.
    pub(crate) fn leading(
        &self,
        image: &MetadataImage,
        topic: &str,
        partition: i32,
    ) -> Result<Arc<Partition>, Leader> {
        match self.leader_of(image, topic, partition) {
            Leader::Here { .. } => self
                .replicas
                .partition(&TopicPartition::new(topic, partition))
                .ok_or(Leader::Unavailable),
            other => Err(other),
        }
    }

    /// An internal write as leader: when this node leads `topic`-`partition` in `image` and its
    /// ISR is at least `min.insync.replicas`, `build` makes the batches from the partition's log
    /// (its config, a producer's next sequence), and they are appended without transaction
    /// verification (internal writers are trusted). Await `wait_replicated` on the result.
    pub(crate) fn append_as_leader<E>(
        &self,
        image: &MetadataImage,
        topic: &str,
        partition: i32,
        build: impl FnOnce(&PartitionLog) -> Result<ValidatedBatches, E>,
    ) -> Result<PendingAppend, LeaderWriteError<E>> {
        let p = self
            .leading(image, topic, partition)
            .map_err(LeaderWriteError::NotHere)?;
        p.check_min_insync()?;
        let batches = build(&p.log).map_err(LeaderWriteError::Build)?;
        Ok(p.append_as_leader(&batches, TxnVerification::Off)?)
    }
}
