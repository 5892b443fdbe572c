//! A whole partition directory of fuzzed files, loaded as at start-up.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| strom_log::fuzzing::partition_dir(data));
