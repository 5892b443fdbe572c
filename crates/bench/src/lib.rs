//! Workloads shared by Strom's benchmarks (`benches/`), kept out of the criterion harness so a
//! later broker benchmark (through `strom-client`) can reuse the same batches and baselines.
//!
//! Every durable-write figure is meaningful only next to the disk's own limit, measured in the
//! same run on the same filesystem: [`RawSyncFile`] writes the very bytes the log appends, in the
//! same chunk size, each chunk followed by `fdatasync`. See `docs/BENCHMARKS.md`.
//!
//! Dependency rule: bench → {log, client}; nothing depends on this crate.

mod log_workload;

pub use log_workload::{
    append_durable, bench_root, prefill, read_all, record_batch, BenchError, LogFixture,
    RawSyncFile,
};
