//! [`QuotaError`]: everything this crate refuses, with Kafka's messages, and [`ErrorKind`]: the
//! Kafka error code each refusal becomes.
//!
//! The messages are Kafka's own (`ClientQuotaControlManager`, `ClientQuotasImage`) because clients
//! and `kafka-configs.sh` print them verbatim and operators search for them. The broker maps
//! [`QuotaError::kind`] to an `ErrorCode` in its handler layer; this crate knows no wire types.

/// Which Kafka error code a [`QuotaError`] becomes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// `INVALID_REQUEST` (42).
    InvalidRequest,
    /// `UNSUPPORTED_VERSION` (35): Kafka's answer to an unknown entity type in a describe filter.
    UnsupportedVersion,
    /// `THROTTLING_QUOTA_EXCEEDED` (89), KIP-599.
    ThrottlingQuotaExceeded,
    /// `INVALID_CONFIG` (40): a broker setting (`quota.window.*`) out of range.
    InvalidConfig,
}

/// A quota entity, alteration, filter or setting that cannot be used, or a strict controller
/// mutation quota that is exhausted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QuotaError {
    /// An entity with no entity type at all.
    #[error("Invalid empty client quota entity")]
    EmptyEntity,
    /// The same entity type twice in one entity.
    #[error("Invalid client quota entity, duplicate entity entry {0}")]
    DuplicateEntityType(String),
    /// An entity type other than `user`, `client-id` or `ip` in an alteration.
    #[error("Unhandled client quota entity type: {0}")]
    UnknownEntityType(String),
    /// A named (not default) entity whose name is the empty string.
    #[error("Empty {0} not supported")]
    EmptyEntityName(&'static str),
    /// `ip` together with `user` or `client-id`.
    #[error(
        "Invalid quota entity combination, IP entity should not be combined with User or ClientId"
    )]
    IpCombinedWithClient,
    /// An `ip` entity whose name is not an IP address.
    #[error("{0} is not a valid IP or resolvable host.")]
    InvalidIp(String),
    /// A key Kafka does not know, or one that does not apply to the entity's type
    /// (`connection_creation_rate` on a user, `producer_byte_rate` on an ip).
    #[error("Invalid configuration key {0}")]
    InvalidKey(String),
    /// The same key twice in one alteration.
    #[error("Duplicate quota key {key} not updating quota for this entity {entity}")]
    DuplicateKey {
        /// The repeated key.
        key: String,
        /// The entity, as displayed.
        entity: String,
    },
    /// A value that is zero or negative: Kafka requires every quota to be positive.
    #[error("Quota {0} must be greater than 0")]
    NotPositive(&'static str),
    /// NaN or infinity. Kafka lets NaN through its checks (every comparison is false); we refuse it
    /// because a NaN bound would disable throttling in a way nobody can see.
    #[error("Quota {0} must be a finite number")]
    NotFinite(&'static str),
    /// A fractional value for a long or int key (`producer_byte_rate` is a long in Kafka).
    #[error("{0} cannot be a fractional value.")]
    Fractional(&'static str),
    /// A value beyond the key's integral type.
    #[error("Proposed value for {key} is too large for {type_name}.")]
    TooLarge {
        /// The key.
        key: &'static str,
        /// Its type, with an article ("a long").
        type_name: &'static str,
    },
    /// A describe filter component with an empty entity type.
    #[error("Invalid empty entity type.")]
    EmptyFilterEntityType,
    /// A describe filter naming one entity type twice.
    #[error("Entity type {0} cannot appear more than once in the filter.")]
    DuplicateFilterEntityType(String),
    /// A describe filter naming an entity type Kafka does not know (`UNSUPPORTED_VERSION`, as Kafka).
    #[error("Unsupported entity type {0}")]
    UnsupportedFilterEntityType(String),
    /// A describe filter's match type and match string disagree, or the match type is unknown.
    #[error("{0}")]
    InvalidFilterMatch(&'static str),
    /// A describe filter match type other than 0, 1, 2.
    #[error("Unknown match type {0}")]
    UnknownMatchType(i8),
    /// A describe filter combining `ip` with `user` or `client-id`.
    #[error(
        "Invalid entity filter component combination. IP filter component should not be used with user or clientId filter component."
    )]
    IpFilterCombinedWithClient,
    /// KIP-599 strict mode: the controller mutation token bucket is negative, so the mutation is
    /// refused; the client should retry after `throttle_time_ms`.
    #[error("The throttling quota has been exceeded.")]
    ThrottlingQuotaExceeded {
        /// Time until the bucket is back at zero.
        throttle_time_ms: u64,
    },
    /// A broker quota setting out of range (`quota.window.num`, `quota.window.size.seconds`).
    #[error("{key}: must be at least 1")]
    InvalidWindowConfig {
        /// The Kafka config key.
        key: &'static str,
    },
}

impl QuotaError {
    /// The Kafka error code this refusal is sent as.
    pub fn kind(&self) -> ErrorKind {
        match self {
            QuotaError::UnsupportedFilterEntityType(_) => ErrorKind::UnsupportedVersion,
            QuotaError::ThrottlingQuotaExceeded { .. } => ErrorKind::ThrottlingQuotaExceeded,
            QuotaError::InvalidWindowConfig { .. } => ErrorKind::InvalidConfig,
            _ => ErrorKind::InvalidRequest,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_kafkas() {
        assert_eq!(
            QuotaError::Fractional("producer_byte_rate").to_string(),
            "producer_byte_rate cannot be a fractional value."
        );
        assert_eq!(
            QuotaError::TooLarge {
                key: "connection_creation_rate",
                type_name: "an INT"
            }
            .to_string(),
            "Proposed value for connection_creation_rate is too large for an INT."
        );
        assert_eq!(
            QuotaError::EmptyEntityName("client-id").to_string(),
            "Empty client-id not supported"
        );
    }

    #[test]
    fn kinds_map_as_kafka() {
        assert_eq!(
            QuotaError::UnsupportedFilterEntityType("x".into()).kind(),
            ErrorKind::UnsupportedVersion
        );
        assert_eq!(QuotaError::EmptyEntity.kind(), ErrorKind::InvalidRequest);
        assert_eq!(
            QuotaError::ThrottlingQuotaExceeded {
                throttle_time_ms: 1
            }
            .kind(),
            ErrorKind::ThrottlingQuotaExceeded
        );
    }
}
