//! [`QuotaKey`]: the quota config keys Kafka knows, which entities take them, and what values each
//! accepts.
//!
//! The wire carries every quota value as a double, but Kafka declares some keys as integral
//! (`producer_byte_rate` is a LONG, `connection_creation_rate` an INT) and refuses fractional
//! values for them, so a config set here reads back the same from a Java broker's `describe`.

use std::fmt;

use crate::error::QuotaError;

/// One quota config key (Kafka's `QuotaConfig`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum QuotaKey {
    /// `producer_byte_rate`: bytes per second a user/client-id may produce (KIP-13, KIP-55).
    ProducerByteRate,
    /// `consumer_byte_rate`: bytes per second a user/client-id may fetch.
    ConsumerByteRate,
    /// `request_percentage`: percent of one request handler thread's time, per window (KIP-124).
    RequestPercentage,
    /// `controller_mutation_rate`: partitions created or deleted per second (KIP-599).
    ControllerMutationRate,
    /// `connection_creation_rate`: connections per second from one IP (KIP-612). Stored and
    /// described here; enforcing it belongs to the listener's connection limits.
    ConnectionCreationRate,
}

/// The type Kafka declares for a key; integral types refuse fractional values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    /// Java `long`.
    Long,
    /// Java `int`.
    Int,
    /// Java `double`.
    Double,
}

impl ValueType {
    /// Kafka's wording in "too large for a LONG." / "too large for an INT.".
    pub(crate) fn article_name(self) -> &'static str {
        match self {
            ValueType::Long => "a LONG",
            ValueType::Int => "an INT",
            ValueType::Double => "a DOUBLE",
        }
    }
}

impl QuotaKey {
    /// Every key, in a fixed order.
    pub const ALL: [QuotaKey; 5] = [
        QuotaKey::ProducerByteRate,
        QuotaKey::ConsumerByteRate,
        QuotaKey::RequestPercentage,
        QuotaKey::ControllerMutationRate,
        QuotaKey::ConnectionCreationRate,
    ];

    /// Kafka's name for the key.
    pub fn name(self) -> &'static str {
        match self {
            QuotaKey::ProducerByteRate => "producer_byte_rate",
            QuotaKey::ConsumerByteRate => "consumer_byte_rate",
            QuotaKey::RequestPercentage => "request_percentage",
            QuotaKey::ControllerMutationRate => "controller_mutation_rate",
            QuotaKey::ConnectionCreationRate => "connection_creation_rate",
        }
    }

    /// The key named `name`; an unknown name is refused with Kafka's message.
    pub fn parse(name: &str) -> Result<QuotaKey, QuotaError> {
        QuotaKey::ALL
            .into_iter()
            .find(|key| key.name() == name)
            .ok_or_else(|| QuotaError::InvalidKey(name.to_owned()))
    }

    /// The type Kafka declares for the key.
    pub fn value_type(self) -> ValueType {
        match self {
            QuotaKey::ProducerByteRate | QuotaKey::ConsumerByteRate => ValueType::Long,
            QuotaKey::RequestPercentage | QuotaKey::ControllerMutationRate => ValueType::Double,
            QuotaKey::ConnectionCreationRate => ValueType::Int,
        }
    }

    /// Whether the key applies to `ip` entities (only `connection_creation_rate`) rather than to
    /// user/client-id entities (all others).
    pub fn is_ip_key(self) -> bool {
        self == QuotaKey::ConnectionCreationRate
    }

    /// Checks `value` as Kafka's `validateQuotaKeyValue` does: positive, and integral within range
    /// for integral keys (a remainder up to 1e-6 is tolerated, as Kafka). Also refuses NaN and
    /// infinities, which Kafka lets through.
    pub fn validate_value(self, value: f64) -> Result<f64, QuotaError> {
        if !value.is_finite() {
            return Err(QuotaError::NotFinite(self.name()));
        }
        if value <= 0.0 {
            return Err(QuotaError::NotPositive(self.name()));
        }
        let too_large = match self.value_type() {
            ValueType::Double => return Ok(value),
            // 2^63 is the first double past i64::MAX (Kafka compares with `>` and lets 2^63 through).
            ValueType::Long => value >= 9_223_372_036_854_775_808.0,
            ValueType::Int => value > f64::from(i32::MAX),
        };
        if too_large {
            return Err(QuotaError::TooLarge {
                key: self.name(),
                type_name: self.value_type().article_name(),
            });
        }
        if (value % 1.0).abs() > 1e-6 {
            return Err(QuotaError::Fractional(self.name()));
        }
        Ok(value)
    }
}

impl fmt::Display for QuotaKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for key in QuotaKey::ALL {
            assert_eq!(QuotaKey::parse(key.name()), Ok(key));
        }
        assert_eq!(
            QuotaKey::parse("producer_byte_rat"),
            Err(QuotaError::InvalidKey("producer_byte_rat".into()))
        );
    }

    #[test]
    fn byte_rates_are_positive_longs() {
        let key = QuotaKey::ProducerByteRate;
        assert_eq!(key.validate_value(1024.0), Ok(1024.0));
        assert_eq!(
            key.validate_value(1024.5),
            Err(QuotaError::Fractional(key.name()))
        );
        assert_eq!(
            key.validate_value(0.0),
            Err(QuotaError::NotPositive(key.name()))
        );
        assert_eq!(
            key.validate_value(-5.0),
            Err(QuotaError::NotPositive(key.name()))
        );
        assert_eq!(
            key.validate_value(1e19),
            Err(QuotaError::TooLarge {
                key: key.name(),
                type_name: key.value_type().article_name()
            })
        );
        assert_eq!(
            key.validate_value(f64::NAN),
            Err(QuotaError::NotFinite(key.name()))
        );
        // Kafka's tolerance: a remainder of at most 1e-6 counts as integral.
        assert!(key.validate_value(1_000.000_000_1).is_ok());
    }

    #[test]
    fn doubles_accept_fractions_but_not_zero() {
        let key = QuotaKey::RequestPercentage;
        assert_eq!(key.validate_value(12.5), Ok(12.5));
        assert_eq!(
            key.validate_value(0.0),
            Err(QuotaError::NotPositive(key.name()))
        );
        let key = QuotaKey::ControllerMutationRate;
        assert_eq!(key.validate_value(0.5), Ok(0.5));
        assert_eq!(
            key.validate_value(f64::INFINITY),
            Err(QuotaError::NotFinite(key.name()))
        );
    }

    #[test]
    fn connection_rate_is_an_int() {
        let key = QuotaKey::ConnectionCreationRate;
        assert_eq!(key.validate_value(100.0), Ok(100.0));
        assert_eq!(
            key.validate_value(3e9),
            Err(QuotaError::TooLarge {
                key: key.name(),
                type_name: key.value_type().article_name()
            })
        );
        assert!(key.is_ip_key());
        assert!(!QuotaKey::ProducerByteRate.is_ip_key());
    }
}
