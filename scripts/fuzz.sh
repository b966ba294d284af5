#!/usr/bin/env bash
# Runs every cargo-fuzz target for a while, starting from the checked-in seed corpus.
#
#   scripts/fuzz.sh                    # every target, 60 s each
#   FUZZ_SECONDS=600 scripts/fuzz.sh mutated_log
#
# Environment:
#   FUZZ_SECONDS   seconds per target (default 60)
#   FUZZ_RSS_MB    memory limit per target in MiB (default 2048), also the largest single
#                  allocation allowed (so a length field read from the input cannot ask for more)
#   FUZZ_TIMEOUT   seconds one input may take before it counts as a hang (default 30)
# New inputs the fuzzer finds go to fuzz/target/corpus/<target>/ (ignored by git), so the
# checked-in corpus stays small; crashes, hangs and out-of-memory inputs go to
# fuzz/artifacts/<target>/. Exits non-zero if any target found one. To keep a crash as a
# regression input: cargo +nightly fuzz tmin <target> <artifact>, then copy the minimized file
# into fuzz/corpus/<target>/ as regress-<what>, where tests/fuzz_corpus.rs replays it on every cargo test.
set -euo pipefail

cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-60}"
rss_mb="${FUZZ_RSS_MB:-2048}"
timeout="${FUZZ_TIMEOUT:-30}"
all_targets=(raw_directory mutated_log jsonl_event segment_file export_data export_manifest append_line)
if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    targets=("${all_targets[@]}")
fi

if ! rustup toolchain list | grep -q '^nightly'; then
    echo "installing the nightly toolchain (cargo-fuzz needs it)"
    rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

# Only glibc's thread-local destructor bookkeeping is suppressed (see fuzz/lsan.supp).
export LSAN_OPTIONS="suppressions=$PWD/fuzz/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"

failed=()
for target in "${targets[@]}"; do
    if [ ! -d "fuzz/corpus/$target" ]; then
        echo "unknown target $target (expected one of: ${all_targets[*]})" >&2
        exit 2
    fi
    seeds="fuzz/corpus/$target"
    work="fuzz/target/corpus/$target"
    artifacts="fuzz/artifacts/$target"
    mkdir -p "$work" "$artifacts"
    before="$(find "$artifacts" -type f | sort)"
    echo "=== $target: ${seconds}s"
    status=0
    # The first directory receives new inputs; the second is only read.
    cargo +nightly fuzz run "$target" "$work" "$seeds" -- \
        -max_total_time="$seconds" -rss_limit_mb="$rss_mb" -malloc_limit_mb="$rss_mb" \
        -timeout="$timeout" \
        -print_final_stats=1 || status=$?
    new="$(comm -13 <(echo "$before") <(find "$artifacts" -type f | sort) | sed '/^$/d')"
    if [ "$status" -ne 0 ] || [ -n "$new" ]; then
        echo "=== $target: FAILED (exit status $status)" >&2
        if [ -n "$new" ]; then
            echo "new artifacts:" >&2
            echo "$new" | sed 's/^/  /' >&2
        fi
        failed+=("$target")
    else
        echo "=== $target: no crash"
    fi
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "targets that found a crash: ${failed[*]}" >&2
    exit 1
fi
echo "all targets ran without a crash: ${targets[*]}"
