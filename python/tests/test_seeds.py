"""The user stories' scenarios (../shared/seeds/ in the project's history): what each service
needed of its audit log, through the Python package."""

import os
import subprocess
import sys
import threading

import auditring


def test_002_a_hundred_threads_record_ten_events_each_all_present_and_gapless(log_dir):
    threads, each = 100, 10
    start = threading.Barrier(threads)
    with auditring.Ring(log_dir, durability="none") as ring:
        def work(t):
            start.wait()
            for i in range(each):
                ring.record("story.002", actor="thread-%d" % t, details={"thread": t, "i": i})

        workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        ring.flush()
        records = ring.snapshot().records()
    assert [r["seq"] for r in records] == list(range(1, threads * each + 1))
    nxt = [0] * threads
    for r in records:
        t, i = r["details"]["thread"], r["details"]["i"]
        assert i == nxt[t], "thread %d: out of order or duplicated" % t
        nxt[t] += 1
    assert nxt == [each] * threads
    assert auditring.verify(log_dir)["ok"]


CHILD = """
import sys, auditring
n = int(sys.argv[2])
with auditring.Ring(sys.argv[1], wait_for_lock=True) as ring:
    for i in range(20):
        ring.record("story.001", actor="process-%d" % n, details={"process": n, "i": i})
"""


def test_001_four_processes_append_twenty_events_each_through_the_writer_lock(log_dir):
    # Like the CLI of story 001, run by several processes at once: each waits for the writer
    # lock, appends, and closes. One chain, never forked: 80 events, verified.
    children = [
        subprocess.Popen([sys.executable, "-c", CHILD, str(log_dir), str(n)])
        for n in range(4)
    ]
    assert [c.wait() for c in children] == [0, 0, 0, 0]
    report = auditring.verify(log_dir)
    assert report["ok"], report["failure"]
    assert report["events"] == 80
    records = auditring.open_snapshot(log_dir).records()
    for n in range(4):
        mine = [r["details"]["i"] for r in records if r["details"]["process"] == n]
        assert mine == list(range(20)), n


def test_003_a_write_behind_load_loses_nothing_at_close(log_dir):
    # Story 003 wanted the audit write off the request path without losing events at
    # shutdown: record without waiting for durability, close, and every event is there.
    n = 20_000
    ring = auditring.Ring(log_dir, durability="batch")
    for i in range(n):
        ring.record("story.003", details={"i": i})
    ring.close()
    report = auditring.verify(log_dir)
    assert report["ok"] and report["events"] == n
    records = auditring.open_snapshot(log_dir).records(first=n - 1)
    assert [r["details"]["i"] for r in records] == [n - 2, n - 1]
    assert os.path.isdir(log_dir)
