//! The JSON API under `/api`: one module per page family, one error type that turns a Kafka
//! error into an HTTP status the page can explain (403 for the authorizer's refusals, 404 for a
//! missing topic or group, 502 when the cluster cannot be reached).

mod cluster;
mod groups;
mod security;
mod topics;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use strom_client::{ClientError, KafkaErrorName};

use crate::state::Console;

pub(crate) fn routes() -> Router<Console> {
    Router::new()
        .route("/config", get(cluster::config))
        .route("/overview", get(cluster::overview))
        .route("/brokers/{id}/configs", get(cluster::broker_configs))
        .route("/topics", get(topics::list))
        .route("/topics/{topic}", get(topics::describe))
        .route("/topics/{topic}/messages", get(topics::messages))
        .route("/topics/{topic}/produce", post(topics::produce))
        .route("/topics/{topic}/configs", post(topics::alter_config))
        .route("/groups", get(groups::list))
        .route("/groups/{group}", get(groups::describe))
        .route("/groups/{group}/reset-offsets", post(groups::reset_offsets))
        .route("/share-groups", get(groups::list_share))
        .route("/share-groups/{group}", get(groups::describe_share))
        .route("/acls", get(security::acls))
        .route("/users", get(security::users))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such API") })
}

/// An API failure: a status and a message the page shows as is.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(ErrorBody {
                error: &self.message,
            }),
        )
            .into_response()
    }
}

impl From<ClientError> for ApiError {
    fn from(e: ClientError) -> Self {
        ApiError::new(status_of(&e), e.to_string())
    }
}

/// The HTTP status of a client error.
fn status_of(e: &ClientError) -> StatusCode {
    if e.is_authentication() {
        return StatusCode::UNAUTHORIZED;
    }
    match e {
        ClientError::UnknownTopic(_) | ClientError::UnknownPartition { .. } => {
            StatusCode::NOT_FOUND
        }
        ClientError::Broker { code, .. } => {
            let name = KafkaErrorName(*code).to_string();
            if name.ends_with("_AUTHORIZATION_FAILED") {
                StatusCode::FORBIDDEN
            } else if matches!(
                name.as_str(),
                "UNKNOWN_TOPIC_OR_PARTITION" | "GROUP_ID_NOT_FOUND" | "UNKNOWN_TOPIC_ID"
            ) {
                StatusCode::NOT_FOUND
            } else if e.is_retriable() {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::BAD_REQUEST
            }
        }
        _ if e.is_retriable() => StatusCode::BAD_GATEWAY,
        ClientError::NoBrokerAvailable(_) | ClientError::InvalidAddress(_) => {
            StatusCode::BAD_GATEWAY
        }
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// What every handler returns.
pub(crate) type ApiResult<T> = Result<Json<T>, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    fn broker(code: i16) -> ClientError {
        // The public constructor path: a broker error as the client reports it.
        ClientError::Broker {
            context: "test".into(),
            code,
            message: None,
        }
    }

    #[test]
    fn kafka_errors_map_to_statuses() {
        assert_eq!(status_of(&broker(29)), StatusCode::FORBIDDEN); // TOPIC_AUTHORIZATION_FAILED
        assert_eq!(status_of(&broker(30)), StatusCode::FORBIDDEN); // GROUP_AUTHORIZATION_FAILED
        assert_eq!(status_of(&broker(3)), StatusCode::NOT_FOUND); // UNKNOWN_TOPIC_OR_PARTITION
        assert_eq!(status_of(&broker(58)), StatusCode::UNAUTHORIZED); // SASL_AUTHENTICATION_FAILED
        assert_eq!(status_of(&broker(68)), StatusCode::BAD_REQUEST); // NON_EMPTY_GROUP
        assert_eq!(
            status_of(&ClientError::NoBrokerAvailable("x".into())),
            StatusCode::BAD_GATEWAY
        );
    }
}
