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

/// KIP-599: `partitions` created or deleted by this request's principal against its
/// `controller_mutation_rate`. Strict (CreateTopics v6+, CreatePartitions v3+, DeleteTopics
/// v5+): `Err(throttle ms)` when the quota is already exceeded — the topic answers
/// THROTTLING_QUOTA_EXCEEDED and nothing is recorded. Permissive (older versions): recorded, and
/// `Ok(throttle ms)` for the response and the connection's mute.
pub(crate) fn controller_mutation(
    ctx: &crate::handler::RequestContext,
    partitions: usize,
    strict: bool,
) -> Result<u64, u64> {
    let quota = &ctx.broker.quotas.controller_mutation;
    if !quota.quotas_enabled() {
        return Ok(0);
    }
    let user = crate::quota_managers::quota_user(&ctx.session);
    let client_id = ctx.client_id.as_ref().map_or("", |c| c.as_str());
    let now = strom_log::now_ms_unsigned();
    if strict {
        return match quota.check_strict(user, client_id, partitions as f64, now) {
            Ok(()) => Ok(0),
            Err(strom_quota::QuotaError::ThrottlingQuotaExceeded { throttle_time_ms }) => {
                Err(throttle_time_ms)
            }
            Err(_) => Ok(0),
        };
    }
    Ok(quota.record(user, client_id, partitions as f64, now))
}
