//! Admin APIs: topics and partitions, configs, records deletion, log dirs, cluster description,
//! ACLs, SCRAM credentials.

pub(crate) mod acls;
pub(crate) mod alter_configs;
pub(crate) mod client_quotas;
pub(crate) mod create_partitions;
pub(crate) mod create_topics;
pub(crate) mod delete_records;
pub(crate) mod delete_topics;
pub(crate) mod describe_cluster;
pub(crate) mod describe_configs;
pub(crate) mod describe_log_dirs;
pub(crate) mod describe_topic_partitions;
pub(crate) mod elect_leaders;
pub(crate) mod scram_credentials;

/// The code and message a refused or failed metadata proposal answers with (ACLs, client
/// quotas): a record the quorum refuses is the client's INVALID_REQUEST.
pub(crate) fn proposal_refusal(
    e: &strom_cluster::QuorumError,
    what: &str,
) -> (kafka_protocol::error::ResponseError, String) {
    use kafka_protocol::error::ResponseError;
    use strom_cluster::QuorumError;
    let code = match e {
        QuorumError::Invalid(_) | QuorumError::TooLarge { .. } => ResponseError::InvalidRequest,
        QuorumError::NoController(_) => ResponseError::NotController,
        QuorumError::TimedOut { .. } => ResponseError::RequestTimedOut,
        _ => {
            tracing::error!(error = %e, what, "metadata change not written");
            ResponseError::UnknownServerError
        }
    };
    (code, e.to_string())
}
