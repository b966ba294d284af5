#!/usr/bin/env bash
# Runs the loom models of the queue (handoff, parking, close) and of the publication of the
# head (src/loom_models.rs) against the real queue, built on loom's primitives.
#
#   scripts/loom.sh                          # every model
#   LOOM_MAX_PREEMPTIONS=3 scripts/loom.sh loom_close
#
# Environment:
#   LOOM_MAX_PREEMPTIONS   preemptions loom explores per execution (default 2: every model in
#                          a couple of minutes on two cores; 3 explores more interleavings)
#   CARGO_TARGET_DIR       as usual; the loom build goes to its subdirectory loom/, so that the
#                          --cfg loom flag never invalidates the normal build
# Extra arguments are test-name filters (default: loom_models).
set -euo pipefail
cd "$(dirname "$0")/.."

export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-2}"
export RUSTFLAGS="${RUSTFLAGS:-} --cfg loom"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}/loom"
filters=("$@")
if [ "${#filters[@]}" -eq 0 ]; then
    filters=(loom_models)
fi
start=$(date +%s)
# The library package alone (not the CLI, the benchmarks or the test helpers of the workspace),
# release mode: loom runs millions of steps.
cargo test --release -p auditring --lib -- --test-threads=2 --nocapture "${filters[@]}"
echo "loom models passed in $(($(date +%s) - start)) s (LOOM_MAX_PREEMPTIONS=$LOOM_MAX_PREEMPTIONS)"
