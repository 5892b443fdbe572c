//! ApiVersions (v0–v4): advertises exactly the registered handlers' version ranges.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};

use super::{decode, ready, ApiHandler, HANDLERS};

pub(crate) const HANDLER: ApiHandler = ApiHandler {
    api_key: ApiKey::ApiVersions,
    min_version: 0,
    max_version: 4,
    min_served: 0,
    handle: |ctx, body| {
        // The request body carries client software name/version (v3+); nothing in it changes the answer.
        let _req: ApiVersionsRequest = decode(ApiKey::ApiVersions, ctx.api_version, body)?;
        Ok(ready(response(0)))
    },
};

fn response(error_code: i16) -> ApiVersionsResponse {
    let api_keys = HANDLERS
        .iter()
        .map(|h| {
            ApiVersion::default()
                .with_api_key(h.api_key as i16)
                .with_min_version(h.min_version)
                .with_max_version(h.max_version)
        })
        .collect();
    ApiVersionsResponse::default()
        .with_error_code(error_code)
        .with_api_keys(api_keys)
        .with_finalized_features_epoch(-1)
}

/// The KIP-511 answer to an ApiVersions request at a version we do not know: v0, error 35.
pub(crate) fn unsupported_version_response() -> ApiVersionsResponse {
    response(ResponseError::UnsupportedVersion.code())
}
