//! Fuzz target: any bytes as a request frame body, routed and decoded as the connection does
//! (`strom_broker::fuzzing::decode_request`). Must never panic, nor allocate by a count in the
//! input (run with `-malloc_limit_mb`).
#![no_main]

libfuzzer_sys::fuzz_target!(|frame: &[u8]| {
    let _ = strom_broker::fuzzing::decode_request(frame);
});
