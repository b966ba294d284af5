#!/usr/bin/env bash
# The shipping tests against a real S3 API (ship/tests/s3.rs): installs moto's S3-compatible
# server from PyPI into a virtualenv (target/moto-venv), starts it on a free port of 127.0.0.1,
# creates a bucket, runs the tests with the endpoint and credentials in the environment (as
# object_store reads them), and stops the server, whatever happens.
#
#   scripts/s3-tests.sh              # the tests
#   scripts/s3-tests.sh COMMAND...   # COMMAND instead, with the server and its environment
#   scripts/s3-tests.sh --serve      # only start the server and print its environment
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/moto-venv
if [ ! -x "$venv/bin/moto_server" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check 'moto[server]'
fi

port=$("$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p target
"$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >target/moto.log 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true' EXIT

# Waits until the server answers (it starts in about a second; a guard of a minute), then
# creates the bucket.
"$venv/bin/python" - "$port" <<'EOF'
import sys, time, urllib.request
port = sys.argv[1]
deadline = time.monotonic() + 60
while True:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read()
        break
    except Exception:
        if time.monotonic() > deadline:
            sys.exit(f"the S3 server on port {port} did not answer (target/moto.log)")
        time.sleep(0.1)
request = urllib.request.Request(f"http://127.0.0.1:{port}/auditring-test", method="PUT")
urllib.request.urlopen(request, timeout=10).read()
EOF

export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
export AWS_ENDPOINT="http://127.0.0.1:$port" AWS_ALLOW_HTTP=true AWS_CONDITIONAL_PUT=etag
export AUDITRING_TEST_S3=s3://auditring-test

if [ "${1:-}" = "--serve" ]; then
    env | grep -E '^(AWS_|AUDITRING_TEST_S3)' | sed 's/^/export /'
    echo "# serving until interrupted (target/moto.log)" >&2
    wait "$server"
    exit 0
fi
if [ $# -gt 0 ]; then
    "$@"
else
    cargo test --release -p auditring-ship --test s3 -- --ignored
fi
