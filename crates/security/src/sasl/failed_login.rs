//! `FailedLoginLog`: logs failed authentications (Kafka's "Failed authentication with /`ip`
//! (`reason`)" at INFO) at most `burst` lines per peer address per `window`, then one summary of
//! how many were suppressed — so a client retrying a wrong password, or a scanner, cannot flood
//! the log. Only `AuthError::detail()` is printed, which never holds a password, proof or token.
//!
//! Concurrency: one mutex around a map bounded to `max_peers` addresses (stale windows are
//! evicted first; when every tracked peer is recent, new peers are not logged rather than letting
//! the map grow without bound).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::error::AuthError;

#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    logged: u32,
    suppressed: u64,
}

/// Rate-limited logging of failed logins, per peer address.
#[derive(Debug)]
pub struct FailedLoginLog {
    window: Duration,
    burst: u32,
    max_peers: usize,
    peers: Mutex<HashMap<IpAddr, Window>>,
}

impl Default for FailedLoginLog {
    /// 5 lines per peer per minute, 10 000 peers tracked.
    fn default() -> Self {
        FailedLoginLog::new(Duration::from_secs(60), 5, 10_000)
    }
}

impl FailedLoginLog {
    /// At most `burst` lines per peer per `window`, tracking up to `max_peers` peers.
    pub fn new(window: Duration, burst: u32, max_peers: usize) -> Self {
        FailedLoginLog {
            window,
            burst,
            max_peers,
            peers: Mutex::new(HashMap::new()),
        }
    }

    /// Records a failure of `mechanism` from `peer`; returns whether a line was logged.
    pub fn record(&self, peer: IpAddr, mechanism: &str, error: &AuthError) -> bool {
        self.record_at(Instant::now(), peer, mechanism, error)
    }

    pub(crate) fn record_at(
        &self,
        now: Instant,
        peer: IpAddr,
        mechanism: &str,
        error: &AuthError,
    ) -> bool {
        let mut peers = self.peers.lock();
        if !peers.contains_key(&peer) && peers.len() >= self.max_peers {
            let window = self.window;
            peers.retain(|_, w| now.saturating_duration_since(w.start) < window);
            if peers.len() >= self.max_peers {
                return false;
            }
        }
        let w = peers.entry(peer).or_insert(Window {
            start: now,
            logged: 0,
            suppressed: 0,
        });
        if now.saturating_duration_since(w.start) >= self.window {
            if w.suppressed > 0 {
                tracing::info!(peer = %peer, suppressed = w.suppressed, "{} more failed authentications from /{peer} were not logged", w.suppressed);
            }
            *w = Window {
                start: now,
                logged: 0,
                suppressed: 0,
            };
        }
        if w.logged < self.burst {
            w.logged += 1;
            tracing::info!(peer = %peer, mechanism, "Failed authentication with /{peer} ({})", error.detail());
            true
        } else {
            w.suppressed += 1;
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_lines_per_peer_and_window() {
        let log = FailedLoginLog::new(Duration::from_secs(60), 2, 2);
        let e = AuthError::authentication("Authentication failed: Invalid username or password");
        let t0 = Instant::now();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let c: IpAddr = "10.0.0.3".parse().unwrap();
        assert!(log.record_at(t0, a, "PLAIN", &e));
        assert!(log.record_at(t0, a, "PLAIN", &e));
        assert!(!log.record_at(t0, a, "PLAIN", &e));
        assert!(log.record_at(t0, b, "PLAIN", &e));
        // The map is full of recent peers: a third is not tracked (nor logged).
        assert!(!log.record_at(t0 + Duration::from_secs(1), c, "PLAIN", &e));
        // After the window, peers start again and stale ones make room.
        let later = t0 + Duration::from_secs(61);
        assert!(log.record_at(later, a, "PLAIN", &e));
        assert!(log.record_at(later, c, "PLAIN", &e));
    }
}
