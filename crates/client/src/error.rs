//! `ClientError`: the one error type of the client crate, and the mapping of Kafka error codes to
//! Kafka's own error names (`TOPIC_ALREADY_EXISTS`), which is what operators search for.

use std::fmt;
use std::sync::Arc;

use kafka_protocol::messages::ApiKey;
use kafka_protocol::ResponseError;

/// Everything that can go wrong talking to a Kafka-compatible cluster.
///
/// `Clone` because one produce failure is handed to every record of the batch; causes are kept in
/// `Arc`s for that reason. Causes are part of the message (not `source()`), so a failed send
/// printed with `{}` says why, and `{:#}` chains in the CLI do not repeat it.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// A socket error (connect, read, write).
    #[error("I/O error talking to {addr}: {cause}")]
    Io {
        /// The broker address involved.
        addr: String,
        /// The underlying error.
        cause: Arc<std::io::Error>,
    },
    /// The address could not be parsed or resolved.
    #[error("invalid broker address {0:?} (expected HOST:PORT)")]
    InvalidAddress(String),
    /// The connection closed (or failed) before the response arrived.
    #[error("connection to {addr} closed")]
    ConnectionClosed {
        /// The broker address.
        addr: String,
    },
    /// No response within the request timeout.
    #[error("{api:?} request to {addr} timed out")]
    Timeout {
        /// The request's API.
        api: ApiKey,
        /// The broker address.
        addr: String,
    },
    /// kafka-protocol refused to encode a request or decode a response.
    #[error("{what}: {cause}")]
    Codec {
        /// What was being encoded or decoded.
        what: &'static str,
        /// The codec's error.
        cause: Arc<dyn std::error::Error + Send + Sync>,
    },
    /// The broker sent bytes that do not form a valid frame.
    #[error("malformed response from {addr}: {reason}")]
    MalformedResponse {
        /// The broker address.
        addr: String,
        /// What was wrong.
        reason: &'static str,
    },
    /// The TLS handshake failed: an untrusted or mismatched certificate, no common protocol version.
    #[error("TLS handshake with {addr} failed: {cause}")]
    Tls {
        /// The broker address.
        addr: String,
        /// rustls' reason, as tokio-rustls reports it.
        cause: Arc<std::io::Error>,
    },
    /// This client ended a SASL exchange: the broker's answer did not verify (a SCRAM server
    /// signature), or it kept challenging. Errors the broker reports are [`ClientError::Broker`].
    #[error("{context}: {reason}")]
    Authentication {
        /// `SASL/<mechanism> authentication to <addr>`.
        context: String,
        /// Why the client refused.
        reason: String,
    },
    /// The broker and this client share no version of an API.
    #[error("broker {addr} does not support a version of {api:?} that this client speaks")]
    UnsupportedApi {
        /// The API.
        api: ApiKey,
        /// The broker address.
        addr: String,
    },
    /// The broker answered with a Kafka error code.
    #[error("{context}: {}{}", KafkaErrorName(*.code), .message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Broker {
        /// What the error applies to (`create topic foo`, `produce foo-0`).
        context: String,
        /// The Kafka error code.
        code: i16,
        /// The broker's error message, when it sent one.
        message: Option<String>,
    },
    /// The topic is not in the cluster metadata.
    #[error("unknown topic {0}")]
    UnknownTopic(String),
    /// The partition does not exist in the topic.
    #[error("unknown partition {topic}-{partition}")]
    UnknownPartition {
        /// The topic.
        topic: String,
        /// The partition index.
        partition: i32,
    },
    /// No broker could be reached (bootstrap failed, or every known broker is down).
    #[error("no broker available: {0}")]
    NoBrokerAvailable(String),
    /// The producer was dropped or its background task stopped before the record was acknowledged.
    #[error("producer closed")]
    ProducerClosed,
    /// A record could not be encoded into a batch, or a fetched batch could not be decoded.
    #[error("record batch for {topic}-{partition}: {cause}")]
    RecordBatch {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The codec's error.
        cause: Arc<dyn std::error::Error + Send + Sync>,
    },
    /// `Producer::flush` found failed sends since the previous flush.
    #[error("{failed} record(s) failed; first error: {first}")]
    SendFailed {
        /// How many records failed.
        failed: u64,
        /// The first failure.
        first: Box<ClientError>,
    },
}

impl ClientError {
    /// Wraps a kafka-protocol codec error (they are `anyhow::Error`s, which this crate does not name).
    pub(crate) fn codec(
        what: &'static str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        ClientError::Codec {
            what,
            cause: Arc::from(source.into()),
        }
    }

    pub(crate) fn io(addr: &str, source: std::io::Error) -> Self {
        ClientError::Io {
            addr: addr.to_owned(),
            cause: Arc::new(source),
        }
    }

    pub(crate) fn broker(context: impl Into<String>, code: i16, message: Option<&str>) -> Self {
        ClientError::Broker {
            context: context.into(),
            code,
            message: message.filter(|m| !m.is_empty()).map(str::to_owned),
        }
    }

    /// The Kafka error code, when the broker sent one.
    pub fn kafka_code(&self) -> Option<i16> {
        match self {
            ClientError::Broker { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Whether this is a failure to establish who is who — TLS, SASL (SASL_AUTHENTICATION_FAILED,
    /// UNSUPPORTED_SASL_MECHANISM, ILLEGAL_SASL_STATE) — which no retry fixes.
    pub fn is_authentication(&self) -> bool {
        match self {
            ClientError::Tls { .. } | ClientError::Authentication { .. } => true,
            ClientError::Broker { code, .. } => matches!(
                ResponseError::try_from_code(*code),
                Some(
                    ResponseError::SaslAuthenticationFailed
                        | ResponseError::UnsupportedSaslMechanism
                        | ResponseError::IllegalSaslState
                )
            ),
            _ => false,
        }
    }

    /// Whether retrying after a metadata refresh may succeed: a stale leader, a topic not yet
    /// propagated, or a connection that went away.
    pub fn is_retriable(&self) -> bool {
        match self {
            ClientError::Broker { code, .. } => is_retriable_code(*code),
            ClientError::Io { .. }
            | ClientError::ConnectionClosed { .. }
            | ClientError::Timeout { .. } => true,
            _ => false,
        }
    }
}

/// Codes after which the client refreshes metadata and tries again (bounded by the caller).
pub(crate) fn is_retriable_code(code: i16) -> bool {
    is_stale_metadata_code(code)
        || matches!(
            ResponseError::try_from_code(code),
            Some(
                ResponseError::RequestTimedOut
                    | ResponseError::NotEnoughReplicas
                    | ResponseError::NotEnoughReplicasAfterAppend
            )
        )
}

/// Codes that mean our idea of the leader or the topic list is out of date.
pub(crate) fn is_stale_metadata_code(code: i16) -> bool {
    matches!(
        ResponseError::try_from_code(code),
        Some(
            ResponseError::NotLeaderOrFollower
                | ResponseError::UnknownTopicOrPartition
                | ResponseError::LeaderNotAvailable
                | ResponseError::FencedLeaderEpoch
                | ResponseError::UnknownLeaderEpoch
                | ResponseError::NotController
        )
    )
}

/// Displays a Kafka error code as Kafka spells it (`NOT_LEADER_OR_FOLLOWER`); kafka-protocol's
/// `Display` gives the Rust variant name (`NotLeaderOrFollower`), which nobody searches for.
#[derive(Debug, Clone, Copy)]
pub struct KafkaErrorName(pub i16);

impl fmt::Display for KafkaErrorName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(err) = ResponseError::try_from_code(self.0) else {
            return f.write_str("NONE");
        };
        if let ResponseError::Unknown(code) = err {
            return write!(f, "UNKNOWN_ERROR_CODE({code})");
        }
        let camel = format!("{err:?}");
        for (i, c) in camel.chars().enumerate() {
            if c.is_ascii_uppercase() && i > 0 {
                f.write_str("_")?;
            }
            write!(f, "{}", c.to_ascii_uppercase())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_error_names_match_kafka_spelling() {
        assert_eq!(KafkaErrorName(36).to_string(), "TOPIC_ALREADY_EXISTS");
        assert_eq!(KafkaErrorName(6).to_string(), "NOT_LEADER_OR_FOLLOWER");
        assert_eq!(KafkaErrorName(-1).to_string(), "UNKNOWN_SERVER_ERROR");
        assert_eq!(KafkaErrorName(0).to_string(), "NONE");
        assert_eq!(KafkaErrorName(9999).to_string(), "UNKNOWN_ERROR_CODE(9999)");
    }

    #[test]
    fn broker_error_message_names_the_error() {
        let e = ClientError::broker("create topic foo", 36, Some("Topic 'foo' already exists."));
        assert_eq!(
            e.to_string(),
            "create topic foo: TOPIC_ALREADY_EXISTS: Topic 'foo' already exists."
        );
        let e = ClientError::broker("delete topic bar", 3, None);
        assert_eq!(
            e.to_string(),
            "delete topic bar: UNKNOWN_TOPIC_OR_PARTITION"
        );
        assert!(e.is_retriable());
    }
}
