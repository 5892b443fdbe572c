//! Admin APIs: topic creation and deletion, configs, cluster description.

pub(crate) mod create_topics;
pub(crate) mod delete_topics;
pub(crate) mod describe_cluster;
pub(crate) mod describe_configs;
