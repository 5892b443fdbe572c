//! ApiVersions (v0–v4): advertises exactly the registered handlers' version ranges, and (v3+,
//! KIP-584) the cluster's features: `share.version` 1 with share groups on, and
//! `transaction.version` 2, which is what makes a client use
//! Transactions V2 (KIP-890 part 2) with EndTxn v5 and Produce v12.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::api_versions_response::{
    ApiVersion, FinalizedFeatureKey, SupportedFeatureKey,
};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::protocol::StrBytes;

use super::{RequestContext, HANDLERS};

/// ApiVersions answers the same whatever the request says (its v3+ client name and version).
pub(crate) fn handle(ctx: &RequestContext, _req: ApiVersionsRequest) -> ApiVersionsResponse {
    response(
        0,
        ctx.session.sasl(),
        super::group::share_group::enabled(ctx),
    )
}

/// The share group APIs (KIP-932), advertised only with `group.share.enable`, as Kafka does.
const SHARE_APIS: [ApiKey; 12] = [
    ApiKey::ShareGroupHeartbeat,
    ApiKey::ShareGroupDescribe,
    ApiKey::ShareFetch,
    ApiKey::ShareAcknowledge,
    ApiKey::InitializeShareGroupState,
    ApiKey::ReadShareGroupState,
    ApiKey::WriteShareGroupState,
    ApiKey::DeleteShareGroupState,
    ApiKey::ReadShareGroupStateSummary,
    ApiKey::DescribeShareGroupOffsets,
    ApiKey::AlterShareGroupOffsets,
    ApiKey::DeleteShareGroupOffsets,
];

/// The SASL APIs, served by the connection itself (`server/sasl.rs`) and advertised only on
/// SASL listeners, as Kafka does.
const SASL_APIS: [(ApiKey, i16, i16); 2] = [
    (ApiKey::SaslHandshake, 0, 1),
    (ApiKey::SaslAuthenticate, 0, 2),
];

fn response(error_code: i16, sasl: bool, share: bool) -> ApiVersionsResponse {
    let sasl_apis = SASL_APIS.iter().filter(|_| sasl).copied();
    let api_keys = HANDLERS
        .iter()
        .filter(|h| share || !SHARE_APIS.contains(&h.api_key))
        .map(|h| (h.api_key, h.min_version, h.max_version))
        .chain(sasl_apis)
        .map(|(key, min, max)| {
            ApiVersion::default()
                .with_api_key(key as i16)
                .with_min_version(min)
                .with_max_version(max)
        })
        .collect();
    ApiVersionsResponse::default()
        .with_error_code(error_code)
        .with_api_keys(api_keys)
        .with_supported_features(
            features(share)
                .map(|(name, level)| {
                    SupportedFeatureKey::default()
                        .with_name(StrBytes::from_static_str(name))
                        .with_min_version(0)
                        .with_max_version(level)
                })
                .collect(),
        )
        .with_finalized_features(
            features(share)
                .map(|(name, level)| {
                    FinalizedFeatureKey::default()
                        .with_name(StrBytes::from_static_str(name))
                        .with_min_version_level(level)
                        .with_max_version_level(level)
                })
                .collect(),
        )
        // Clients take finalized features only from an epoch >= 0; ours never change.
        .with_finalized_features_epoch(FEATURES_EPOCH)
}

/// The features finalized here (KIP-584): Transactions V2 always, `share.version` 1 (KIP-932:
/// share groups, as Kafka 4.2 finalizes it) while share groups are on.
fn features(share: bool) -> impl Iterator<Item = (&'static str, i16)> {
    [
        Some((TRANSACTION_VERSION, TRANSACTION_VERSION_LEVEL)),
        share.then_some((SHARE_VERSION, 1)),
    ]
    .into_iter()
    .flatten()
}

/// Kafka's feature name for the share-group protocol level.
const SHARE_VERSION: &str = "share.version";

/// Kafka's feature name for the transaction protocol level.
const TRANSACTION_VERSION: &str = "transaction.version";
/// Level 2: Transactions V2 (epoch bump per transaction, implicit AddPartitionsToTxn).
const TRANSACTION_VERSION_LEVEL: i16 = 2;
const FEATURES_EPOCH: i64 = 0;

/// The KIP-511 answer to an ApiVersions request at a version we do not know: v0, error 35.
pub(crate) fn unsupported_version_response(sasl: bool) -> ApiVersionsResponse {
    response(ResponseError::UnsupportedVersion.code(), sasl, false)
}
