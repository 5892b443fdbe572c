//! The request decoder as the fuzz harness sees it (`crates/broker/fuzz`): a frame body (no size
//! prefix) routed by its header and decoded by its API's decoder, exactly as the connection does
//! before a handler runs. No broker is needed, so a fuzzer runs every decoder of every version
//! at full speed; a panic, or an allocation sized by the input (the fuzzer's `-malloc_limit_mb`),
//! is a finding. `mutated_seeds_never_panic` below is the short deterministic run CI makes.

use bytes::Bytes;

use crate::server::{route, Route};

/// Routes and decodes one request frame; `Err` is what closes a connection (never a panic).
pub fn decode_request(frame: &[u8]) -> Result<(), String> {
    let mut frame = Bytes::copy_from_slice(frame);
    match route(&mut frame)? {
        Route::UnsupportedApiVersions { .. } => Ok(()),
        Route::Handler {
            handler, version, ..
        } => (handler.decode_only)(version, frame).map_err(|e| e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (xorshift64*), so the run is the same everywhere.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    /// One mutation of `seed`: flipped bits, a byte set to an extreme, a 4-byte count replaced
    /// by a huge one, bytes cut or inserted.
    fn mutate(seed: &[u8], rng: &mut Rng) -> Vec<u8> {
        let mut v = seed.to_vec();
        for _ in 0..=rng.below(4) {
            if v.is_empty() {
                v.push(0);
            }
            let at = rng.below(v.len());
            match rng.below(6) {
                0 => v[at] ^= 1 << rng.below(8),
                1 => v[at] = [0x00, 0x7f, 0x80, 0xff][rng.below(4)],
                2 => {
                    let end = (at + 4).min(v.len());
                    let huge = [0x7f, 0xff, 0xff, 0xff];
                    v[at..end].copy_from_slice(&huge[..end - at]);
                }
                3 => v.truncate(at),
                4 => v.insert(at, rng.next() as u8),
                _ => {
                    let n = rng.below(8).min(v.len() - at);
                    v.drain(at..at + n);
                }
            }
        }
        v
    }

    fn seeds() -> Vec<Vec<u8>> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/requests");
        let mut out: Vec<Vec<u8>> = std::fs::read_dir(&dir)
            .map(|d| {
                d.filter_map(|e| std::fs::read(e.ok()?.path()).ok())
                    .collect()
            })
            .unwrap_or_default();
        out.sort();
        out
    }

    #[test]
    fn the_seed_corpus_holds_real_requests_that_decode() {
        let seeds = seeds();
        assert!(seeds.len() >= 20, "{} seeds", seeds.len());
        let decoded = seeds.iter().filter(|s| decode_request(s).is_ok()).count();
        assert!(
            decoded * 10 >= seeds.len() * 9,
            "{decoded} of {}",
            seeds.len()
        );
    }

    #[test]
    fn mutated_seeds_never_panic() {
        let seeds = seeds();
        let iterations: usize = std::env::var("STROM_FUZZ_ITERATIONS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(100_000);
        let mut rng = Rng(0x005E_ED0F_57A0);
        for _ in 0..iterations {
            let seed = &seeds[rng.below(seeds.len())];
            let _ = decode_request(&mutate(seed, &mut rng));
        }
    }
}
