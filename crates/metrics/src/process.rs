//! Process metrics read from `/proc/self` at scrape time, with the names Prometheus client
//! libraries use (`process_resident_memory_bytes`, `process_open_fds`,
//! `process_cpu_seconds_total`), so stock dashboards work. Off Linux nothing is written.

use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::encoding::EncodeMetric;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;

/// Clock ticks per second of `/proc/<pid>/stat` times: USER_HZ, 100 on every Linux ABI Strom
/// builds for (reading `sysconf(_SC_CLK_TCK)` would need `unsafe`).
const TICKS_PER_SECOND: f64 = 100.0;

/// What `/proc/self` says now; `None` fields could not be read.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct ProcessStats {
    /// Resident set size in bytes (`VmRSS`).
    pub resident_bytes: Option<u64>,
    /// Open file descriptors.
    pub open_fds: Option<u64>,
    /// User plus system CPU time in seconds.
    pub cpu_seconds: Option<f64>,
}

impl ProcessStats {
    /// Reads `/proc/self/status`, `/proc/self/fd` and `/proc/self/stat`.
    pub fn read() -> ProcessStats {
        let resident_bytes = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| parse_vm_rss(&s));
        let open_fds = std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|d| d.count() as u64);
        let cpu_seconds = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|s| parse_cpu_ticks(&s))
            .map(|t| t as f64 / TICKS_PER_SECOND);
        ProcessStats {
            resident_bytes,
            open_fds,
            cpu_seconds,
        }
    }

    /// Writes the stats that could be read.
    pub fn encode(&self, encoder: &mut DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let gauges = [
            (
                "process_resident_memory_bytes",
                "resident memory size in bytes",
                self.resident_bytes,
            ),
            ("process_open_fds", "open file descriptors", self.open_fds),
        ];
        for (name, help, value) in gauges {
            let Some(v) = value else { continue };
            let e = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            ConstGauge::new(i64::try_from(v).unwrap_or(i64::MAX)).encode(e)?;
        }
        if let Some(v) = self.cpu_seconds {
            let e = encoder.encode_descriptor(
                "process_cpu_seconds",
                "user and system CPU time spent, in seconds",
                None,
                MetricType::Counter,
            )?;
            ConstCounter::new(v).encode(e)?;
        }
        Ok(())
    }
}

/// `VmRSS:   1234 kB` → bytes.
fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kb.checked_mul(1024)
}

/// utime + stime (fields 14 and 15) of `/proc/<pid>/stat`. The command name (field 2) may hold
/// spaces and parentheses, so fields are counted after its last `)`.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    // `rest` starts at field 3 (state): utime is the 12th field after it.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    utime.checked_add(stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_formats() {
        assert_eq!(
            parse_vm_rss("Name:\tstrom\nVmRSS:\t    2048 kB\n"),
            Some(2048 * 1024)
        );
        let stat = "42 (str om) (x)) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 8 0";
        assert_eq!(parse_cpu_ticks(stat), Some(300));
        assert_eq!(parse_cpu_ticks("garbage"), None);
    }

    #[test]
    fn reads_this_process() {
        let s = ProcessStats::read();
        if cfg!(target_os = "linux") {
            assert!(s.resident_bytes.unwrap_or(0) > 0);
            assert!(s.open_fds.unwrap_or(0) > 0);
            assert!(s.cpu_seconds.is_some());
        }
    }
}
