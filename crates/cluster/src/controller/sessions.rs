//! `BrokerSessions`: the active controller's in-memory view of broker heartbeats (Kafka's
//! `BrokerHeartbeatManager`). Not replicated: a new controller starts every registered broker
//! with a fresh grace period from its activation, as Kafka does.

use std::collections::HashMap;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
struct Session {
    last_heartbeat: Instant,
    /// The image offset just after the broker's registration: it must have caught up to here
    /// before it is unfenced.
    registered_offset: i64,
    shutting_down: bool,
}

/// Heartbeat times and controlled-shutdown state per broker.
#[derive(Debug)]
pub(crate) struct BrokerSessions {
    sessions: HashMap<i32, Session>,
    /// Activation time: the grace period of brokers not heard from since.
    activated: Instant,
    /// The log end at activation: every registration before it is at or below.
    activation_offset: i64,
}

impl BrokerSessions {
    pub(crate) fn new(activated: Instant, activation_offset: i64) -> BrokerSessions {
        BrokerSessions {
            sessions: HashMap::new(),
            activated,
            activation_offset,
        }
    }

    /// A (re-)registration applied at `offset`: a new session, not shutting down.
    pub(crate) fn registered(&mut self, broker: i32, offset: i64, now: Instant) {
        self.sessions.insert(
            broker,
            Session {
                last_heartbeat: now,
                registered_offset: offset,
                shutting_down: false,
            },
        );
    }

    /// A heartbeat arrived.
    pub(crate) fn touch(&mut self, broker: i32, now: Instant) {
        let offset = self.activation_offset;
        self.sessions
            .entry(broker)
            .or_insert(Session {
                last_heartbeat: now,
                registered_offset: offset,
                shutting_down: false,
            })
            .last_heartbeat = now;
    }

    /// The broker asked for a controlled shutdown.
    pub(crate) fn begin_shutdown(&mut self, broker: i32) {
        if let Some(s) = self.sessions.get_mut(&broker) {
            s.shutting_down = true;
        }
    }

    pub(crate) fn is_shutting_down(&self, broker: i32) -> bool {
        self.sessions.get(&broker).is_some_and(|s| s.shutting_down)
    }

    /// The offset the broker must reach before it may be unfenced.
    pub(crate) fn registered_offset(&self, broker: i32) -> i64 {
        self.sessions
            .get(&broker)
            .map_or(self.activation_offset, |s| s.registered_offset)
    }

    /// True when nothing was heard from `broker` for longer than `timeout`.
    pub(crate) fn expired(&self, broker: i32, now: Instant, timeout: Duration) -> bool {
        let last = self
            .sessions
            .get(&broker)
            .map_or(self.activated, |s| s.last_heartbeat);
        now.saturating_duration_since(last) > timeout
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_brokers_get_the_activation_grace_period() {
        let t0 = Instant::now();
        let mut s = BrokerSessions::new(t0, 40);
        let timeout = Duration::from_millis(100);
        assert!(!s.expired(1, t0 + Duration::from_millis(50), timeout));
        assert!(s.expired(1, t0 + Duration::from_millis(150), timeout));
        assert_eq!(s.registered_offset(1), 40);
        s.touch(1, t0 + Duration::from_millis(120));
        assert!(!s.expired(1, t0 + Duration::from_millis(150), timeout));
        s.registered(2, 55, t0);
        assert_eq!(s.registered_offset(2), 55);
        s.begin_shutdown(2);
        assert!(s.is_shutting_down(2));
        s.registered(2, 60, t0);
        assert!(!s.is_shutting_down(2));
    }
}
