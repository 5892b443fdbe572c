//! What one client may take of the broker: connections (`max.connections`,
//! `max.connections.per.ip` and its overrides) and the bytes of requests read but not yet
//! answered (`queued.max.request.bytes` broker-wide, `socket.request.max.bytes` per connection).
//!
//! Connections over a limit are closed as soon as they are accepted, with a log line, as Kafka
//! closes connections over `max.connections.per.ip`. `max.connections` is also capped below the
//! process's open-file limit, so a flood of connections can never leave the broker without file
//! descriptors for its own log segments.
//!
//! Request bytes are reserved all at once, before a frame's body is read (Kafka's memory pool):
//! reserving piecemeal as bytes arrive would let several half-read large frames each wait for
//! the others' bytes. The reservation is held until the response is written. A client that
//! announces a large frame and then stalls holds its reservation only until the frame deadline
//! (`connections.max.idle.ms` after its first byte), and holds no memory: the read buffer grows
//! with the bytes that actually arrive.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// File descriptors kept out of `max.connections` for logs, indexes, checkpoints and sockets to
/// other brokers.
const FD_RESERVE: u64 = 1024;

/// Connection counts, broker-wide and per address.
#[derive(Debug)]
pub(crate) struct ConnectionLimits {
    max: usize,
    per_ip: usize,
    overrides: HashMap<IpAddr, usize>,
    open: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    by_ip: HashMap<IpAddr, usize>,
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refused {
    #[error("max.connections ({0}) reached")]
    Total(usize),
    #[error("max.connections.per.ip ({0}) reached for this address")]
    PerIp(usize),
}

/// One admitted connection; dropping it frees its place.
#[derive(Debug)]
pub(crate) struct ConnectionPermit {
    limits: Arc<ConnectionLimits>,
    ip: IpAddr,
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        let mut c = self.limits.open.lock();
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.by_ip.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                c.by_ip.remove(&self.ip);
            }
        }
    }
}

impl ConnectionLimits {
    /// `max` capped by the open-file limit; `overrides` is Kafka's `ip:count,ip:count` (host
    /// names are not resolved: an entry that is not an IP address is an error).
    pub(crate) fn new(max: usize, per_ip: usize, overrides: &str) -> Result<Self, String> {
        let mut parsed = HashMap::new();
        for entry in overrides
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            let (ip, n) = entry
                .rsplit_once(':')
                .ok_or_else(|| format!("expected ip:count, got {entry:?}"))?;
            let ip: IpAddr = ip
                .trim_matches(['[', ']'])
                .parse()
                .map_err(|_| format!("{ip:?} is not an IP address"))?;
            let n: usize = n
                .parse()
                .map_err(|_| format!("{n:?} is not a connection count"))?;
            parsed.insert(ip, n);
        }
        let max = match open_file_limit() {
            Some(fds) => {
                let room = usize::try_from(fds.saturating_sub(FD_RESERVE).max(16)).unwrap_or(max);
                if room < max {
                    tracing::info!(
                        max.connections = max,
                        open_file_limit = fds,
                        effective = room,
                        "max.connections capped below the open-file limit"
                    );
                }
                max.min(room)
            }
            None => max,
        };
        Ok(ConnectionLimits {
            max,
            per_ip,
            overrides: parsed,
            open: Mutex::default(),
        })
    }

    /// Admits a connection from `ip`, or says which limit it would break.
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<ConnectionPermit, Refused> {
        let mut c = self.open.lock();
        if c.total >= self.max {
            return Err(Refused::Total(self.max));
        }
        let limit = self.overrides.get(&ip).copied().unwrap_or(self.per_ip);
        let n = c.by_ip.entry(ip).or_default();
        if *n >= limit {
            return Err(Refused::PerIp(limit));
        }
        *n += 1;
        c.total += 1;
        Ok(ConnectionPermit {
            limits: self.clone(),
            ip,
        })
    }
}

/// The process's soft limit on open files, where the platform has one.
fn open_file_limit() -> Option<u64> {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the struct we own; no other memory is touched.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) };
    (rc == 0 && l.rlim_cur != libc::RLIM_INFINITY).then_some(l.rlim_cur)
}

/// The bytes of requests read and not yet answered: broker-wide, and per connection.
#[derive(Debug, Clone)]
pub(crate) struct RequestMemory {
    broker: Option<Arc<Semaphore>>,
}

/// A frame's reservation; released when dropped (after its response is written).
#[derive(Debug)]
pub(crate) struct Reserved {
    _connection: Option<OwnedSemaphorePermit>,
    _broker: Option<OwnedSemaphorePermit>,
}

impl RequestMemory {
    /// `queued.max.request.bytes` (< 0: no broker-wide limit), never below one largest frame.
    pub(crate) fn new(queued_max: i64, frame_max: usize) -> Self {
        let broker = usize::try_from(queued_max)
            .ok()
            .map(|q| Arc::new(Semaphore::new(q.max(frame_max).min(Semaphore::MAX_PERMITS))));
        RequestMemory { broker }
    }

    /// A connection's own pool: one largest frame's worth of requests in flight.
    pub(crate) fn connection_pool(frame_max: usize) -> Arc<Semaphore> {
        Arc::new(Semaphore::new(frame_max.min(Semaphore::MAX_PERMITS)))
    }

    /// Reserves `size` bytes from the connection's pool, then the broker's; waits for room.
    pub(crate) async fn reserve(&self, connection: &Arc<Semaphore>, size: usize) -> Reserved {
        let n = u32::try_from(size).unwrap_or(u32::MAX);
        // Neither semaphore is ever closed (`ok()` only names that case).
        let connection = connection.clone().acquire_many_owned(n).await.ok();
        let broker = match &self.broker {
            Some(b) => b.clone().acquire_many_owned(n).await.ok(),
            None => None,
        };
        Reserved {
            _connection: connection,
            _broker: broker,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_ip_limits_and_overrides_apply_and_free_on_drop() {
        let l = Arc::new(ConnectionLimits::new(3, 1, "10.0.0.2:2").expect("valid"));
        let a: IpAddr = "10.0.0.1".parse().expect("ip");
        let b: IpAddr = "10.0.0.2".parse().expect("ip");
        let first = l.admit(a).expect("first from a");
        assert_eq!(l.admit(a).unwrap_err(), Refused::PerIp(1));
        let _b1 = l.admit(b).expect("override allows two");
        let _b2 = l.admit(b).expect("override allows two");
        assert_eq!(
            l.admit("10.0.0.3".parse().expect("ip")).unwrap_err(),
            Refused::Total(3)
        );
        drop(first);
        assert!(l.admit(a).is_ok(), "a dropped connection frees its place");
    }

    #[test]
    fn overrides_must_be_addresses() {
        assert!(ConnectionLimits::new(10, 10, "somehost:3").is_err());
        assert!(ConnectionLimits::new(10, 10, "::1:3").is_ok());
        assert!(ConnectionLimits::new(10, 10, "[::1]:3").is_ok());
    }

    #[tokio::test]
    async fn a_reservation_waits_for_room_and_frees_it_when_dropped() {
        let mem = RequestMemory::new(100, 60);
        let c1 = RequestMemory::connection_pool(60);
        let c2 = RequestMemory::connection_pool(60);
        let held = mem.reserve(&c1, 60).await;
        let waiting = tokio::spawn({
            let mem = mem.clone();
            async move {
                let _r = mem.reserve(&c2, 60).await;
            }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "40 bytes left broker-wide");
        drop(held);
        waiting.await.expect("room after the first response");
    }
}
