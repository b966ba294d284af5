"""The Python API: recording, receipts, snapshots and queries as plain dicts, verification,
exports, the exceptions, and the logging handler."""

import datetime
import json
import logging
import threading

import pytest

import auditring


def test_a_ring_records_and_a_snapshot_reads_back_plain_dicts(log_dir):
    when = datetime.datetime(2026, 3, 1, 12, 0, tzinfo=datetime.timezone.utc)
    with auditring.Ring(log_dir) as ring:
        assert ring.record("user.login", actor="alice", details={"mfa": True}) is None
        receipt = ring.record(
            "plan.applied",
            actor="bob",
            trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
            timestamp=when,
            details={"plan": 42, "changes": [1, 2]},
            receipt=True,
        )
        assert (receipt.seq, receipt.durable) == (2, True)
        assert len(receipt.chain) == 64
        snap = ring.snapshot()
        assert (snap.first_seq, snap.head_seq, len(snap)) == (1, 2, 2)
        assert snap.head == receipt.chain
        bob = snap.query(actor="bob")
        assert len(bob) == 1
        r = bob[0]
        assert r["seq"] == 2 and r["kind"] == "plan.applied"
        assert r["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
        assert r["details"] == {"plan": 42, "changes": [1, 2]}
        assert r["timestamp"] == when
        assert r["chain"] == receipt.chain
        assert [x["seq"] for x in snap.query(kind="user.login")] == [1]
        # Origin timestamps: the first record's is now, the second's `when`, months before.
        assert [x["seq"] for x in snap.query(until=when + datetime.timedelta(seconds=1))] == [2]
        assert [x["seq"] for x in snap.query(since=when + datetime.timedelta(days=1))] == [1]
        assert [x["seq"] for x in snap.records()] == [1, 2]
    assert ring.closed
    report = auditring.verify(log_dir)
    assert report["ok"] and report["events"] == 2 and report["failure"] is None
    assert report["head"] == receipt.chain


def test_errors_are_the_exceptions_of_their_class(log_dir, tmp_path):
    with auditring.Ring(log_dir) as ring:
        with pytest.raises(auditring.EventError):
            ring.record("auditring.forged")
        # Another writer of the same directory, without waiting for the lock.
        with pytest.raises(auditring.LockedError):
            auditring.Ring(log_dir)
        with pytest.raises(auditring.ConfigError):
            auditring.Ring(tmp_path / "other", durability="sometimes")
    with pytest.raises(auditring.ClosedError):
        ring.record("after.close")
    with pytest.raises(auditring.ClosedError):
        ring.snapshot()
    ring.close()  # twice: nothing
    assert issubclass(auditring.IntegrityError, auditring.AuditringError)
    with pytest.raises(auditring.StorageError):
        auditring.verify(tmp_path / "no-such-log")


def test_verify_says_where_a_log_was_edited(log_dir):
    with auditring.Ring(log_dir) as ring:
        for i in range(100):
            ring.record("e", details={"i": i})
    segment = sorted(log_dir.glob("*.seg"))[0]
    data = bytearray(segment.read_bytes())
    at = data.find(b'{"i": 50}')
    assert at > 0
    data[at + 6] ^= 1  # "50" becomes "40"
    segment.write_bytes(bytes(data))
    report = auditring.verify(log_dir)
    assert not report["ok"]
    failure = report["failure"]
    assert failure["seq"] == 51
    assert failure["file"] == str(segment)
    assert 0 < failure["offset"] <= at


def test_an_export_verifies_offline_and_a_changed_one_does_not(log_dir, tmp_path):
    with auditring.Ring(log_dir) as ring:
        for i in range(50):
            ring.record("e", details={"i": i})
        ring.flush()
        manifest = ring.snapshot().export(tmp_path / "out", first=11, last_seq=40)
    assert manifest["first_seq"] == 11 and manifest["last_seq"] == 40
    report = auditring.verify_export(tmp_path / "out")
    assert report["ok"] and report["events"] == 30
    lines = (tmp_path / "out" / "events.jsonl").read_text().splitlines()
    edited = lines[3].replace('"i": 13', '"i": 99')
    assert edited != lines[3]
    lines[3] = edited
    (tmp_path / "out" / "events.jsonl").write_text("\n".join(lines) + "\n")
    assert not auditring.verify_export(tmp_path / "out")["ok"]
    # From the directory alone, as a tool that exports a log it does not write would.
    manifest = auditring.export(log_dir, tmp_path / "bundle", encoding="bundle")
    assert (manifest["first_seq"], manifest["last_seq"]) == (1, 50)
    assert auditring.verify_export(tmp_path / "bundle")["events"] == 50


def test_a_reader_in_another_process_sees_a_consistent_snapshot(log_dir):
    with auditring.Ring(log_dir) as ring:
        for i in range(10):
            ring.record("e", details={"i": i})
        ring.flush()
        snap = auditring.open_snapshot(log_dir)
        assert snap.head_seq == 10
        ring.record("later")
        assert snap.head_seq == 10, "a snapshot does not move"


def test_the_logging_handler_sends_an_audit_logger_to_a_ring(log_dir):
    logger = logging.getLogger("audit.test")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    with auditring.Ring(log_dir) as ring:
        handler = auditring.AuditHandler(ring)
        logger.addHandler(handler)
        try:
            logger.info("login from %s", "10.0.0.7",
                        extra={"actor": "alice", "kind": "user.login", "mfa": True,
                               "when": datetime.date(2026, 1, 2)})
            logger.warning("no kind given")
        finally:
            logger.removeHandler(handler)
        ring.flush()
        records = ring.snapshot().records()
    assert [r["kind"] for r in records] == ["user.login", "audit.test"]
    first = records[0]
    assert first["actor"] == "alice"
    assert first["details"]["message"] == "login from 10.0.0.7"
    assert first["details"]["level"] == "INFO"
    assert first["details"]["mfa"] is True
    assert first["details"]["when"] == "2026-01-02"
    assert records[1]["details"]["level"] == "WARNING"


def test_a_full_queue_raises_only_when_told_not_to_wait(log_dir):
    # A queue of one slot: without waiting, records of a burst may find it full (QueueFullError,
    # the record not taken); waiting, none is refused. Exactly the records accepted are in the
    # log, in order.
    accepted, refused = [], 0
    with auditring.Ring(log_dir, durability="none", queue_capacity=1) as ring:
        for i in range(2000):
            try:
                ring.record("burst", details={"i": i}, wait=False)
                accepted.append(i)
            except auditring.QueueFullError:
                refused += 1
        for i in range(2000, 2100):
            ring.record("burst", details={"i": i})
            accepted.append(i)
        ring.flush()
        records = ring.snapshot().records()
    assert [r["details"]["i"] for r in records] == accepted
    assert refused + len(accepted) == 2100
    assert auditring.verify(log_dir)["events"] == len(accepted)


def test_a_writer_waiting_for_the_lock_lets_other_threads_run(log_dir):
    # The second ring waits for the first one's lock with the GIL released: this thread goes
    # on, and closes the first ring, which lets the second open. (Were the GIL held while
    # waiting, this thread could never close the first ring.)
    first = auditring.Ring(log_dir)
    first.record("first")
    opened = []
    started = threading.Event()

    def second_writer():
        started.set()
        with auditring.Ring(log_dir, wait_for_lock=True) as second:
            second.record("second")
            opened.append(True)

    t = threading.Thread(target=second_writer)
    t.start()
    started.wait()
    first.close()
    t.join()
    assert opened == [True]
    assert [r["kind"] for r in auditring.open_snapshot(log_dir).records()] == ["first", "second"]
