#!/usr/bin/env bash
# Regenerates the committed seed corpus (corpus/<target>/seed-NN) from strom_log::fuzzing's seeds.
set -euo pipefail
cd "$(dirname "$0")/../../.."
cargo test -p strom-log --lib fuzzing::tests::write_seed_corpus -- --ignored --exact
