#!/usr/bin/env bash
# The deterministic fuzz run for CI (about 20 s on 2 cores): every target over its seeds and a
# fixed sequence of mutations of them, as a plain `cargo test` on stable.
set -euo pipefail
cd "$(dirname "$0")/../../.."
STROM_FUZZ_ITERATIONS="${STROM_FUZZ_ITERATIONS:-120000}" \
  cargo test -p strom-log --lib fuzzing:: -- --test-threads 3
