//! Produce-path bytes: the validator and the bounded record reader (`strom_log::fuzzing`).
#![no_main]

use libfuzzer_sys::{fuzz_mutator, fuzz_target, fuzzer_mutate};

fuzz_target!(|data: &[u8]| strom_log::fuzzing::record_batches(data));

// Half the mutants get their batch CRCs fixed, so mutations reach the records behind the CRC.
fuzz_mutator!(|data: &mut [u8], size: usize, max_size: usize, seed: u32| {
    let size = fuzzer_mutate(data, size, max_size);
    if seed % 2 == 0 {
        strom_log::fuzzing::fix_crcs(&mut data[..size]);
    }
    size
});
