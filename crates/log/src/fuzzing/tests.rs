//! A short deterministic run of every fuzz target, for CI: the seeds, then seeded mutations of
//! them (byte flips, boundary values, cut and spliced ranges; CRCs fixed on half the batch
//! inputs so mutations reach the records). Same inputs on every run: a failure names its
//! iteration, and `STROM_FUZZ_ITERATIONS` scales the run (`crates/log/fuzz/smoke.sh` runs about
//! 20 s of it). `write_seed_corpus` (ignored) writes the seeds as the cargo-fuzz corpus.

use super::*;

/// xorshift64*: deterministic and dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const INTERESTING: [u8; 8] = [0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff, 0x0f, 0x3f];

/// One to four mutations of `input`, sometimes spliced with `other`.
fn mutate(rng: &mut Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(out.len() + 1);
        match rng.below(6) {
            0 if at < out.len() => out[at] ^= 1 << rng.below(8),
            1 if at < out.len() => out[at] = INTERESTING[rng.below(INTERESTING.len())],
            2 => {
                let end = (at + rng.below(16)).min(out.len());
                out.drain(at..end);
            }
            3 => {
                let from = rng.below(other.len() + 1);
                let end = (from + rng.below(64)).min(other.len());
                out.splice(at..at, other[from..end].iter().copied());
            }
            4 => out.truncate(at),
            _ => {
                let from = rng.below(out.len() + 1);
                let end = (from + rng.below(32)).min(out.len());
                let copy: Vec<u8> = out[from..end].to_vec();
                out.splice(at..at, copy);
            }
        }
    }
    out
}

fn iterations(default: usize) -> usize {
    std::env::var("STROM_FUZZ_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn run(seeds: &[Vec<u8>], count: usize, seed: u64, fix: bool, target: fn(&[u8])) {
    assert!(!seeds.is_empty());
    for s in seeds {
        target(s);
    }
    let mut rng = Rng(seed);
    for i in 0..count {
        let a = &seeds[rng.below(seeds.len())];
        let b = &seeds[rng.below(seeds.len())];
        let mut input = mutate(&mut rng, a, b);
        if fix && i % 2 == 0 {
            fix_crcs(&mut input);
        }
        target(&input);
    }
}

#[test]
fn record_batches_survive_mutations() {
    run(
        &record_batch_seeds(),
        iterations(30_000),
        0x5eed_0001,
        true,
        record_batches,
    );
}

#[test]
fn disk_files_survive_mutations() {
    run(
        &disk_file_seeds(),
        iterations(100_000),
        0x5eed_0002,
        false,
        disk_files,
    );
}

#[test]
fn partition_dirs_survive_mutations() {
    run(
        &partition_dir_seeds(),
        iterations(8_000) / 2,
        0x5eed_0003,
        false,
        partition_dir,
    );
}

#[test]
fn the_seeds_are_what_they_claim() {
    let (plain, _) = configs();
    for seed in record_batch_seeds() {
        let bytes = Bytes::from(seed);
        let valid = if BatchView::parse(&bytes).is_ok_and(|v| v.is_control()) {
            validate_control_batches(bytes, plain, NOW_MS)
        } else {
            validate_batches(bytes, plain, NOW_MS)
        };
        assert!(valid.is_ok(), "{valid:?}");
    }
    for seed in disk_file_seeds() {
        assert!(seed.len() > 1);
    }
    for seed in partition_dir_seeds() {
        let loaded = load_partition_dir(&seed).expect("the seed directory loads");
        let log = &loaded.log;
        assert_eq!(log.segment_count(), 2);
        assert!(log.log_end_offset() > 10, "{}", log.log_end_offset());
        assert!(log.producer_entry(42).is_some());
    }
}

/// Writes the seeds to `crates/log/fuzz/corpus/<target>/` (run by `crates/log/fuzz/seed.sh`).
#[test]
#[ignore = "writes the committed seed corpus"]
fn write_seed_corpus() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    for (target, seeds) in [
        ("record_batches", record_batch_seeds()),
        ("disk_files", disk_file_seeds()),
        ("partition_dir", partition_dir_seeds()),
    ] {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).expect("corpus dir");
        for (i, seed) in seeds.iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i:02}")), seed).expect("seed");
        }
    }
}
