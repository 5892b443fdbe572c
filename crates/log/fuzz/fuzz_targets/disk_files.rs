//! On-disk formats parsed in memory: indexes, snapshots, checkpoints, transaction index.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| strom_log::fuzzing::disk_files(data));
