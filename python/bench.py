"""Python threads recording audit events: auditring against what the user stories wrote.

    target/python-venv/bin/python python/bench.py [EVENTS] [THREADS]

(after scripts/python-tests.sh has installed the package there). Every design records the same
events (a kind, an actor, a details dict) from the same number of threads, in one run:

* auditring, durability "none" and "batch" (a sync per batch, before its receipts);
* story 001's design: a process-wide lock, json.dumps, a SHA-256 chain over the previous hash
  (kept in memory, as a careful version would), and an append to a file under fcntl.flock,
  per event (no fsync);
* story 003's design: SQLite, one INSERT and COMMIT per event (synchronous=FULL, the default);
* the same, batched: a write-behind thread that commits every 256 events (what the story
  asked to evaluate), with the callers handing events over through a queue.

Prints events/s for each, and auditring's ratio to each.
"""

import fcntl
import hashlib
import json
import os
import queue
import sqlite3
import sys
import tempfile
import threading
import time

import auditring

EVENTS = int(sys.argv[1]) if len(sys.argv) > 1 else 40_000
THREADS = int(sys.argv[2]) if len(sys.argv) > 2 else 4


def event(t, i):
    return "user.login", "user-%d@example.com" % t, {"thread": t, "i": i, "ip": "10.0.0.7"}


def run_threads(record):
    """Runs THREADS threads that call record(t, i) for EVENTS events between them; returns the
    seconds taken."""
    start = threading.Barrier(THREADS + 1)

    def work(t):
        start.wait()
        for i in range(EVENTS // THREADS):
            record(t, i)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
    for w in workers:
        w.start()
    start.wait()
    t0 = time.perf_counter()
    for w in workers:
        w.join()
    return t0


def bench_auditring(tmp, durability):
    with auditring.Ring(os.path.join(tmp, "ring-" + durability), durability=durability) as ring:
        def record(t, i):
            kind, actor, details = event(t, i)
            ring.record(kind, actor=actor, details=details)

        t0 = run_threads(record)
        ring.flush()
        return time.perf_counter() - t0


def bench_flock_chain(tmp):
    path = os.path.join(tmp, "audit.jsonl")
    lock = threading.Lock()
    state = {"prev": "0" * 64}
    f = open(path, "a", encoding="utf-8")

    def record(t, i):
        kind, actor, details = event(t, i)
        with lock:
            body = json.dumps({"kind": kind, "actor": actor, "details": details,
                               "ts": time.time_ns(), "prev": state["prev"]}, sort_keys=True)
            h = hashlib.sha256((state["prev"] + body).encode()).hexdigest()
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                f.write(json.dumps({"event": body, "hash": h}) + "\n")
                f.flush()
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)
            state["prev"] = h

    t0 = run_threads(record)
    elapsed = time.perf_counter() - t0
    f.close()
    return elapsed


def sqlite_connection(path):
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    db.execute("CREATE TABLE IF NOT EXISTS audit (id INTEGER PRIMARY KEY, ts INTEGER, kind TEXT,"
               " actor TEXT, details TEXT)")
    return db


def bench_sqlite_per_event(tmp):
    db = sqlite_connection(os.path.join(tmp, "per-event.db"))
    lock = threading.Lock()

    def record(t, i):
        kind, actor, details = event(t, i)
        with lock:
            db.execute("BEGIN")
            db.execute("INSERT INTO audit (ts, kind, actor, details) VALUES (?, ?, ?, ?)",
                       (time.time_ns(), kind, actor, json.dumps(details)))
            db.execute("COMMIT")

    t0 = run_threads(record)
    elapsed = time.perf_counter() - t0
    db.close()
    return elapsed


def bench_sqlite_batched(tmp):
    db = sqlite_connection(os.path.join(tmp, "batched.db"))
    q = queue.Queue(maxsize=16_384)
    done = object()

    def writer():
        batch = []
        while True:
            item = q.get()
            if item is not done:
                batch.append(item)
            if batch and (item is done or len(batch) >= 256 or q.empty()):
                db.execute("BEGIN")
                db.executemany("INSERT INTO audit (ts, kind, actor, details) VALUES (?, ?, ?, ?)",
                               batch)
                db.execute("COMMIT")
                batch = []
            if item is done:
                return

    w = threading.Thread(target=writer)
    w.start()

    def record(t, i):
        kind, actor, details = event(t, i)
        q.put((time.time_ns(), kind, actor, json.dumps(details)))

    t0 = run_threads(record)
    q.put(done)
    w.join()
    elapsed = time.perf_counter() - t0
    db.close()
    return elapsed


def main():
    with tempfile.TemporaryDirectory() as tmp:
        results = [
            ("auditring, durability none", bench_auditring(tmp, "none")),
            ("auditring, durability batch", bench_auditring(tmp, "batch")),
            ("story 001: lock + json + sha256 chain + flock append", bench_flock_chain(tmp)),
            ("story 003: SQLite, a commit per event", bench_sqlite_per_event(tmp)),
            ("story 003: SQLite, write-behind, a commit per 256", bench_sqlite_batched(tmp)),
        ]
    print("%d events from %d Python threads" % (EVENTS, THREADS))
    best = {d: EVENTS / s for d, s in results[:2]}
    for name, seconds in results:
        rate = EVENTS / seconds
        line = "%-55s %10.0f events/s" % (name, rate)
        if not name.startswith("auditring"):
            line += "   auditring none %.1fx, batch %.1fx" % (
                best["auditring, durability none"] / rate,
                best["auditring, durability batch"] / rate)
        print(line)


if __name__ == "__main__":
    main()
