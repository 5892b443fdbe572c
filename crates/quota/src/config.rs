//! [`ClientQuotaManagerConfig`]: the window settings of one quota manager, Kafka's
//! `ClientQuotaManagerConfig`.
//!
//! Produce, fetch and request quotas read `quota.window.num` (default 11) and
//! `quota.window.size.seconds` (default 1); controller mutation quotas read
//! `controller.quota.window.num` and `controller.quota.window.size.seconds` (same defaults).
//! Kafka requires both to be at least 1.

use crate::error::QuotaError;

/// Samples and window size of a quota manager's sensors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientQuotaManagerConfig {
    num_quota_samples: u32,
    quota_window_size_ms: u64,
}

impl ClientQuotaManagerConfig {
    /// Kafka's default `quota.window.num`.
    pub const DEFAULT_NUM_QUOTA_SAMPLES: u32 = 11;
    /// Kafka's default `quota.window.size.seconds`.
    pub const DEFAULT_QUOTA_WINDOW_SIZE_SECONDS: u32 = 1;

    /// `num_quota_samples` windows of `quota_window_size_seconds`; both must be at least 1.
    pub fn new(
        num_quota_samples: u32,
        quota_window_size_seconds: u32,
    ) -> Result<ClientQuotaManagerConfig, QuotaError> {
        if num_quota_samples == 0 {
            return Err(QuotaError::InvalidWindowConfig {
                key: "quota.window.num",
            });
        }
        if quota_window_size_seconds == 0 {
            return Err(QuotaError::InvalidWindowConfig {
                key: "quota.window.size.seconds",
            });
        }
        Ok(ClientQuotaManagerConfig {
            num_quota_samples,
            quota_window_size_ms: u64::from(quota_window_size_seconds) * 1000,
        })
    }

    /// `quota.window.num`.
    pub fn num_quota_samples(&self) -> u32 {
        self.num_quota_samples
    }

    /// `quota.window.size.seconds`, in milliseconds.
    pub fn quota_window_size_ms(&self) -> u64 {
        self.quota_window_size_ms
    }
}

impl Default for ClientQuotaManagerConfig {
    fn default() -> ClientQuotaManagerConfig {
        ClientQuotaManagerConfig {
            num_quota_samples: Self::DEFAULT_NUM_QUOTA_SAMPLES,
            quota_window_size_ms: u64::from(Self::DEFAULT_QUOTA_WINDOW_SIZE_SECONDS) * 1000,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_range() {
        let c = ClientQuotaManagerConfig::default();
        assert_eq!(
            (c.num_quota_samples(), c.quota_window_size_ms()),
            (11, 1000)
        );
        assert_eq!(ClientQuotaManagerConfig::new(11, 1), Ok(c));
        assert!(ClientQuotaManagerConfig::new(0, 1).is_err());
        assert!(ClientQuotaManagerConfig::new(1, 0).is_err());
    }
}
