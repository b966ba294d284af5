#!/usr/bin/env bash
# Runs `auditring demo --json` several times and prints the median, minimum and maximum of its
# figures: one run on a shared machine is noise, the median of ten is a measurement.
#
#   scripts/demo-series.sh 10 --compare
#   scripts/demo-series.sh 5 --durability batch --producers 8
#
# The first argument is the number of runs; the rest go to `auditring demo`.
set -euo pipefail
cd "$(dirname "$0")/.."

runs="${1:-10}"
shift || true
cargo build --release --quiet
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
for _ in $(seq "$runs"); do
    ./target/release/auditring demo --json --dir "$dir/log" "$@"
done > "$dir/runs.jsonl"

python3 - "$dir/runs.jsonl" "$*" <<'EOF'
import json, statistics, sys

rows = [json.loads(line) for line in open(sys.argv[1])]
args = sys.argv[2]
assert all(r["verified"] for r in rows), "a run did not verify"

def show(name, values, unit, scale=1.0, digits=2):
    vs = [v / scale for v in values]
    print(f"{name:<34} median {statistics.median(vs):>9.{digits}f} {unit}"
          f"   min {min(vs):>9.{digits}f}   max {max(vs):>9.{digits}f}")

print(f"{len(rows)} runs of: auditring demo {args}".rstrip())
print(f"({rows[0]['events']} events, {rows[0]['producers']} producers, durability {rows[0]['durability']})")
show("auditring events/s", [r["events_per_sec"] for r in rows], "M", 1e6)
show("auditring push p50", [r["p50_push_ns"] for r in rows], "ns", digits=0)
show("auditring push p99", [r["p99_push_ns"] for r in rows], "ns", digits=0)
show("auditring push p99.9", [r["p999_push_ns"] for r in rows], "ns", digits=0)
if "compare" in rows[0]:
    for key, name in [("locked", "mutex + BufWriter"), ("write_behind", "write-behind channel")]:
        show(f"{name} events/s", [r["compare"][key]["events_per_sec"] for r in rows], "M", 1e6)
        show(f"{name} push p99", [r["compare"][key]["p99_push_ns"] for r in rows], "ns", digits=0)
        show(f"auditring / {name}", [r["compare"][f"ratio_vs_{key}"] for r in rows], "x")
EOF
