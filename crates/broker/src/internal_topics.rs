//! `__consumer_offsets`, `__transaction_state` and `__share_group_state` (made on the first
//! ShareGroupHeartbeat, so a broker whose clients use no share group never has it): their shape (partition count and replication
//! factor from the broker config) and their creation, at start-up on a single node and otherwise
//! on the first FindCoordinator that needs one (Kafka creates them lazily the same way).
//!
//! The replication factor is `offsets.topic.replication.factor` (or
//! `transaction.state.log.replication.factor`) capped by the number of controller voters, so a
//! one-node cluster gets 1 and a three-voter cluster the configured 3. Creation waits until that
//! many brokers are live; until then FindCoordinator answers COORDINATOR_NOT_AVAILABLE and the
//! next request tries again.

use std::time::Duration;

use strom_coordinator::txn::TRANSACTION_STATE_TOPIC;
use strom_coordinator::{OFFSETS_TOPIC, SHARE_STATE_TOPIC};

use crate::config::BrokerConfig;
use crate::coordinators::Coordinators;
use crate::topic_admin::TopicAdmin;

/// How long start-up waits for the coordinators' first loads.
const START_LOAD_TIMEOUT: Duration = Duration::from_secs(60);

/// One internal topic as this broker would create it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InternalTopic {
    pub(crate) name: &'static str,
    pub(crate) partitions: i32,
    pub(crate) replication_factor: i16,
}

/// The configured factor capped by the controller voters (none configured: one, this node).
pub(crate) fn replication_factor(configured: i16, voters: usize) -> i16 {
    let voters = i16::try_from(voters.max(1)).unwrap_or(i16::MAX);
    configured.clamp(1, voters)
}

/// `__consumer_offsets`.
pub(crate) fn offsets(config: &BrokerConfig, coordinators: &Coordinators) -> InternalTopic {
    InternalTopic {
        name: OFFSETS_TOPIC,
        partitions: coordinators.groups.config().offsets_topic_partitions,
        replication_factor: replication_factor(
            config.offsets_topic_replication_factor,
            config.voters.len(),
        ),
    }
}

/// `__transaction_state`.
pub(crate) fn transaction_state(
    config: &BrokerConfig,
    coordinators: &Coordinators,
) -> InternalTopic {
    InternalTopic {
        name: TRANSACTION_STATE_TOPIC,
        partitions: coordinators.txn.config().partitions,
        replication_factor: replication_factor(
            config.transaction_state_replication_factor,
            config.voters.len(),
        ),
    }
}

/// `__share_group_state`.
pub(crate) fn share_state(config: &BrokerConfig, coordinators: &Coordinators) -> InternalTopic {
    InternalTopic {
        name: SHARE_STATE_TOPIC,
        partitions: coordinators.share_state.partitions(),
        replication_factor: replication_factor(
            config
                .parsed("share.coordinator.state.topic.replication.factor")
                .unwrap_or(3),
            config.voters.len(),
        ),
    }
}

/// Whether share groups are served (`group.share.enable`, on by default).
pub(crate) fn share_groups_enabled(config: &BrokerConfig) -> bool {
    config
        .value("group.share.enable")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// Creates `topic` if it is missing and enough brokers are live; true if it exists now. The
/// new partitions reach the coordinators through the replica manager's leadership changes.
pub(crate) async fn ensure(admin: &TopicAdmin, topic: &InternalTopic) -> bool {
    admin
        .ensure_internal_topic(topic.name, topic.partitions, topic.replication_factor)
        .await
}

/// Start-up: a single node (no other voters) creates both topics now; a cluster leaves that to
/// the first FindCoordinator, once the brokers have registered. Then waits (bounded) for the
/// loads of the partitions this node leads, so the first requests find the coordinators ready.
pub(crate) async fn start(config: &BrokerConfig, admin: &TopicAdmin, coordinators: &Coordinators) {
    let single_node = config.voters.len() <= 1;
    for topic in [
        offsets(config, coordinators),
        transaction_state(config, coordinators),
    ] {
        if single_node && !ensure(admin, &topic).await {
            tracing::info!(
                topic = topic.name,
                replication_factor = topic.replication_factor,
                "internal topic not created yet: too few live brokers; FindCoordinator retries"
            );
        }
    }
    if !coordinators.wait_loaded(START_LOAD_TIMEOUT).await {
        tracing::warn!("coordinator partitions still loading after start-up; serving meanwhile");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replication_factor_is_capped_by_the_voters() {
        assert_eq!(replication_factor(3, 0), 1);
        assert_eq!(replication_factor(3, 1), 1);
        assert_eq!(replication_factor(3, 3), 3);
        assert_eq!(replication_factor(3, 5), 3);
        assert_eq!(replication_factor(1, 3), 1);
    }
}
