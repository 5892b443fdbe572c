//! Placeholder until the coordinators follow leadership (branch wt-coord replaces this file).

use std::sync::Arc;

use crate::broker::Broker;

/// Called when this broker gains or loses leadership of a partition.
pub(crate) fn on_leadership_change(
    _broker: &Arc<Broker>,
    _topic: &str,
    _partition: i32,
    _leader_epoch: i32,
    _is_leader: bool,
) {
}
