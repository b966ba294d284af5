#!/usr/bin/env bash
# The Python package's tests: installs it from this checkout into a virtualenv of its own
# (target/python-venv), the way the README says (`pip install ./python`, which builds the
# extension with maturin), then runs its pytest suite. Installs pip's maturin and pytest into
# that virtualenv if missing; needs python3 with venv, and network access to the package index
# the first time.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/python-venv
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet "maturin>=1.5,<2" pytest
# Without build isolation the virtualenv's maturin builds it (found on the PATH), so nothing is
# fetched again.
export PATH="$PWD/$venv/bin:$PATH"
"$venv/bin/python" -m pip install --quiet --no-build-isolation --force-reinstall ./python
# The daemon's tests start `auditring serve`: the command-line tool of this checkout.
cargo build --release -p auditring-cli
cd python
"../$venv/bin/python" -m pytest -q tests "$@"
