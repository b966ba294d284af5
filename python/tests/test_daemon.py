"""The daemon's Python client: processes that record through `auditring serve`."""

import os
import subprocess
import sys

import pytest

import auditring

# The command-line tool of this checkout (scripts/python-tests.sh builds it first).
AUDITRING = os.path.join(os.path.dirname(__file__), "..", "..", "target", "release", "auditring")

CHILD = """
import sys, auditring
n = int(sys.argv[2])
with auditring.DaemonClient(sys.argv[1]) as client:
    for i in range(500):
        client.record("story.001", actor="process-%d" % n, details={"process": n, "i": i})
    print(client.record("story.001.done", actor="process-%d" % n, receipt=True).seq)
"""


def test_processes_record_at_once_through_the_daemon(tmp_path):
    log, socket = tmp_path / "log", tmp_path / "audit.sock"
    daemon = subprocess.Popen([AUDITRING, "serve", str(log), "--socket", str(socket)],
                              stderr=subprocess.PIPE, text=True)
    try:
        assert "serving" in daemon.stderr.readline()
        children = [subprocess.Popen([sys.executable, "-c", CHILD, str(socket), str(n)],
                                     stdout=subprocess.PIPE, text=True) for n in range(4)]
        seqs = [int(c.communicate()[0]) for c in children]
        assert all(c.returncode == 0 for c in children)
        assert sorted(seqs)[-1] <= 4 * 501
        with auditring.DaemonClient(socket) as client:
            with pytest.raises(auditring.EventError):
                client.record("auditring.forged", receipt=True)
    finally:
        daemon.terminate()
        daemon.wait()
    assert daemon.returncode == 0
    report = auditring.verify(log)
    assert report["ok"] and report["events"] == 4 * 501
    records = auditring.open_snapshot(log).records()
    for n in range(4):
        mine = [r["details"]["i"] for r in records
                if r["kind"] == "story.001" and r["details"]["process"] == n]
        assert mine == list(range(500))
