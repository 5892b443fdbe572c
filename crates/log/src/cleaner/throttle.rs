//! `Throttler`: caps the cleaner's I/O at `log.cleaner.io.max.bytes.per.second`, shared by all
//! cleaner threads (Kafka's `Throttler`). Each thread reports the bytes it read or wrote; when the
//! rate over the current window is above the cap, the reporting thread sleeps until it is not.
//! Thread-safe (one mutex held only for arithmetic, never while sleeping).

use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// The window restarts after this long under the cap, so an idle spell is not saved up.
const WINDOW: Duration = Duration::from_secs(1);

/// A byte-rate limiter.
#[derive(Debug)]
pub(crate) struct Throttler {
    max_per_second: f64,
    window: Mutex<(Instant, u64)>,
}

impl Throttler {
    /// A limiter at `max_per_second` bytes/s (infinite or non-positive disables it).
    pub(crate) fn new(max_per_second: f64) -> Self {
        Throttler {
            max_per_second,
            window: Mutex::new((Instant::now(), 0)),
        }
    }

    fn enabled(&self) -> bool {
        self.max_per_second.is_finite() && self.max_per_second > 0.0
    }

    /// Accounts `bytes` and sleeps if the rate since the window start is above the cap.
    pub(crate) fn maybe_throttle(&self, bytes: u64) {
        if !self.enabled() {
            return;
        }
        let sleep = {
            let mut w = self.window.lock();
            w.1 += bytes;
            let elapsed = w.0.elapsed().as_secs_f64();
            let needed = w.1 as f64 / self.max_per_second;
            if needed > elapsed {
                Some(Duration::from_secs_f64(needed - elapsed))
            } else {
                if elapsed > WINDOW.as_secs_f64() {
                    *w = (Instant::now(), 0);
                }
                None
            }
        };
        if let Some(d) = sleep {
            std::thread::sleep(d);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_the_rate_near_the_cap() {
        let t = Throttler::new(1_000_000.0);
        let start = Instant::now();
        for _ in 0..30 {
            t.maybe_throttle(10_000);
        }
        // 300 kB at 1 MB/s: about 0.3 s.
        assert!(
            start.elapsed() >= Duration::from_millis(250),
            "{:?}",
            start.elapsed()
        );
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
        let free = Throttler::new(f64::INFINITY);
        let start = Instant::now();
        free.maybe_throttle(u64::MAX / 2);
        assert!(start.elapsed() < Duration::from_millis(50));
    }
}
