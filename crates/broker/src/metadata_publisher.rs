//! `MetadataPublisher`: applies a metadata image to this broker (Kafka's
//! `BrokerMetadataPublisher`): the replica manager brings local logs and replication roles in
//! line, then the coordinators load or unload the internal partitions whose leadership moved;
//! the authorizer and the quota managers pick up changed ACLs and quotas first.
//! Every image goes through here — the quorum's published images (`lifecycle`), and the image a
//! topic change produced (`TopicAdmin`), so the change is live before its client hears back.

use std::sync::Arc;

use crate::authorization::Authorization;
use crate::coordinators::Coordinators;
use crate::metadata::{MetadataImage, Quorum};
use crate::quota_managers::QuotaManagers;
use crate::replica_manager::ReplicaManager;

/// Applies images to the replica manager, then the coordinators.
#[derive(Debug)]
pub(crate) struct MetadataPublisher {
    quorum: Arc<Quorum>,
    replicas: Arc<ReplicaManager>,
    coordinators: Arc<Coordinators>,
    authorization: Arc<Authorization>,
    quotas: Arc<QuotaManagers>,
}

impl MetadataPublisher {
    pub(crate) fn new(
        quorum: Arc<Quorum>,
        replicas: Arc<ReplicaManager>,
        coordinators: Arc<Coordinators>,
        authorization: Arc<Authorization>,
        quotas: Arc<QuotaManagers>,
    ) -> Self {
        MetadataPublisher {
            quorum,
            replicas,
            coordinators,
            authorization,
            quotas,
        }
    }

    /// Applies `image`: local logs and roles, then the coordinators' partitions. Local logs
    /// the image does not name are deleted only once the quorum confirmed the image current.
    pub(crate) fn publish(&self, image: &Arc<MetadataImage>) {
        self.authorization.on_image(image);
        self.quotas.on_image(image);
        match self.replicas.sync(image, self.quorum.caught_up()) {
            Ok(changes) => self.coordinators.apply(changes),
            Err(e) => tracing::error!(error = %e, "applying metadata to local partitions failed"),
        }
    }
}
