//! Fuzz targets over what strangers and disks hand the log: record batches (the validator and
//! the bounded record reader) and the on-disk files (indexes, checkpoints, snapshots,
//! transaction indexes, segments). Built for this crate's tests and, with the `fuzzing`
//! feature, for the cargo-fuzz harness in `crates/log/fuzz`; not part of the broker's API.
//!
//! A target must never panic, whatever the bytes: a panic is the bug the fuzzer reports.

mod seeds;

pub use seeds::{compress, encode, raw_record, record_batch_seeds, RawBatch};
