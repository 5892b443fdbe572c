//! `MetadataPublisher`: applies a metadata image to this broker (Kafka's
//! `BrokerMetadataPublisher`): the replica manager brings local logs and replication roles in
//! line, then the coordinators load or unload the internal partitions whose leadership moved.
//! Every image goes through here — the quorum's published images (`lifecycle`), and the image a
//! topic change produced (`TopicAdmin`), so the change is live before its client hears back.

use std::sync::Arc;

use crate::coordinators::Coordinators;
use crate::metadata::{MetadataImage, Quorum};
use crate::replica_manager::ReplicaManager;

/// Applies images to the replica manager, then the coordinators.
#[derive(Debug)]
pub(crate) struct MetadataPublisher {
    quorum: Arc<Quorum>,
    replicas: Arc<ReplicaManager>,
    coordinators: Arc<Coordinators>,
}

impl MetadataPublisher {
    pub(crate) fn new(
        quorum: Arc<Quorum>,
        replicas: Arc<ReplicaManager>,
        coordinators: Arc<Coordinators>,
    ) -> Self {
        MetadataPublisher {
            quorum,
            replicas,
            coordinators,
        }
    }

    /// Applies `image`: local logs and roles, then the coordinators' partitions. Local logs
    /// the image does not name are deleted only once the quorum confirmed the image current.
    pub(crate) fn publish(&self, image: &Arc<MetadataImage>) {
        match self.replicas.sync(image, self.quorum.caught_up()) {
            Ok(changes) => self.coordinators.apply(changes),
            Err(e) => tracing::error!(error = %e, "applying metadata to local partitions failed"),
        }
    }
}
