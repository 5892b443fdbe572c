//! `Coordinators`: this broker's group coordinators (classic groups and KIP-848 consumer groups,
//! sharing committed offsets in `__consumer_offsets`) and its transaction coordinator
//! (`__transaction_state`), built over the parts they need and nothing else: `LocalLeaders` for
//! their own writes ([`InternalTopicWriter`]) and the transaction markers ([`MarkerWriter`]), and
//! a `ProducerIdSource`. They follow the leadership of their partitions through
//! [`Coordinators::apply`] (`leadership.rs`).

mod config;
mod leadership;
mod log_writer;
mod marker_channel;
mod markers;

use std::sync::Arc;

use strom_coordinator::txn::{ProducerIdSource, TransactionCoordinator, TRANSACTION_STATE_TOPIC};
use strom_coordinator::{
    ConsumerGroupCoordinator, GroupCoordinator, ShareCoordinator, ShareGroupCoordinator, TopicInfo,
    TopicMetadata, OFFSETS_TOPIC, SHARE_STATE_TOPIC,
};

use crate::config::BrokerConfig;
use crate::local_leaders::LocalLeaders;
use crate::metadata::MetadataImage;

pub(crate) use log_writer::REPLICATION_TIMEOUT;
pub(crate) use markers::{append_marker, encode_marker};

use leadership::Leadership;
use log_writer::InternalTopicWriter;
use markers::MarkerWriter;

/// The coordinators of this broker.
#[derive(Debug)]
pub struct Coordinators {
    /// Classic consumer groups and committed offsets (`__consumer_offsets`).
    pub groups: GroupCoordinator,
    /// KIP-848 consumer groups (beside `groups`, sharing its offsets and appenders).
    pub consumer_groups: ConsumerGroupCoordinator,
    /// Share groups (KIP-932; membership, beside `groups` in the same namespace).
    pub share_groups: ShareGroupCoordinator,
    /// Transactions (`__transaction_state`).
    pub txn: TransactionCoordinator,
    /// Share-partition state (`__share_group_state`), read and written by share-partition
    /// leaders through `SharePersister`.
    pub share_state: ShareCoordinator,
    /// Which coordinator partitions this node leads, and the loads in flight.
    leadership: Leadership,
}

impl Coordinators {
    /// Builds the coordinators; they serve nothing until [`Coordinators::apply`] hands them the
    /// partitions this node leads.
    pub(crate) fn new(
        config: &BrokerConfig,
        leaders: &Arc<LocalLeaders>,
        producer_ids: Arc<dyn ProducerIdSource>,
    ) -> Arc<Coordinators> {
        let offsets_writer = Arc::new(InternalTopicWriter::new(leaders.clone(), OFFSETS_TOPIC));
        let groups =
            GroupCoordinator::new(config::group_coordinator(config), offsets_writer.clone());
        let consumer_groups = ConsumerGroupCoordinator::new(
            config::consumer_groups(config),
            groups.clone(),
            offsets_writer,
        );
        let share_groups = ShareGroupCoordinator::new(
            config::share_groups(config),
            groups.clone(),
            consumer_groups.clone(),
        );
        let txn = TransactionCoordinator::new(
            config::transactions(config),
            Arc::new(InternalTopicWriter::new(
                leaders.clone(),
                TRANSACTION_STATE_TOPIC,
            )),
            Arc::new(MarkerWriter::new(leaders.clone())),
            producer_ids,
            groups.clone(),
        );
        let share_state = ShareCoordinator::new(
            Arc::new(InternalTopicWriter::new(leaders.clone(), SHARE_STATE_TOPIC)),
            config::share_state_partitions(config),
            config
                .parsed("share.coordinator.snapshot.update.records.per.snapshot")
                .unwrap_or(strom_share::UPDATE_RECORDS_PER_SNAPSHOT_DEFAULT),
        );
        Arc::new(Coordinators {
            groups,
            consumer_groups,
            share_groups,
            txn,
            share_state,
            leadership: Leadership::default(),
        })
    }

    /// Stops the group coordinators' timers (clean shutdown).
    pub(crate) fn shutdown(&self) {
        self.consumer_groups.shutdown();
        self.groups.shutdown();
    }
}

/// A metadata image as the consumer-group coordinator's topic view: a snapshot taken per
/// heartbeat, so a new topic or more partitions are seen on the members' next heartbeat.
#[derive(Debug)]
pub(crate) struct ImageTopics(pub(crate) Arc<MetadataImage>);

impl TopicMetadata for ImageTopics {
    fn topic(&self, name: &str) -> Option<TopicInfo> {
        self.0.topic(name).map(|t| TopicInfo {
            name: t.name.clone(),
            id: t.id,
            partitions: i32::try_from(t.partitions.len()).unwrap_or(i32::MAX),
        })
    }

    fn topic_names(&self) -> Vec<String> {
        self.0
            .topics()
            .filter(|t| !strom_coordinator::is_internal_topic(&t.name))
            .map(|t| t.name.clone())
            .collect()
    }
}
