//! The wall clock every part of Strom stamps records and measures ages with: milliseconds since
//! the Unix epoch, as Kafka's timestamps. One definition, so tests and the coordinators agree.

/// Milliseconds since the Unix epoch (0 before it; saturating far after it).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// [`now_ms`] as the unsigned milliseconds the quota and share-group rules take (never negative).
pub fn now_ms_unsigned() -> u64 {
    u64::try_from(now_ms()).unwrap_or(0)
}
