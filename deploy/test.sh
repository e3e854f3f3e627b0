#!/usr/bin/env bash
# The test command of the README: set-up, formatting, lints, unit and integration tests.
set -euo pipefail
cd "$(dirname "$0")/.."
# CI builds once from scratch: incremental caches would only cost disk (gigabytes of it).
export CARGO_INCREMENTAL=0
df -h . | tail -1

deploy/setup-debian.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# The shipped config must be what `berthd config default` prints.
cargo run --quiet --locked -p berth-services --bin berthd -- config default | diff -u deploy/config.toml -
# The integration tests drive the berthctl and shim binaries too (they live in other packages).
cargo build --locked -p berthctl -p berth-shim
cargo test --workspace --locked
# Fault injection, the CI subset (~4 min): crashes, a corrupt or vanishing registry, a full
# disk, load and bad clients against a private berthd. It runs the debug binaries built above:
# a release build would add ~7 min and ~2 GB of disk (run `tests/faults` alone for release).
tests/faults --quick --bin-dir target/debug
df -h . | tail -1
