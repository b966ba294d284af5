"""auditring: a lock-free, tamper-evident audit log.

Many threads record audit events; one sequencer thread gives each a gapless sequence number
and a SHA-256 chain hash, and writes it into memory-mapped segment files. Snapshots are
consistent views taken without stopping the writers; `verify` says exactly where a log was
edited, cut or torn.

    import auditring

    with auditring.Ring("/var/lib/audit", durability="batch") as ring:
        receipt = ring.record("user.login", actor="alice", details={"mfa": True}, receipt=True)
        print(receipt.seq, receipt.chain)
        for r in ring.snapshot().query(actor="alice"):
            print(r["seq"], r["kind"], r["details"])
    assert auditring.verify("/var/lib/audit")["ok"]

Every call that can wait (recording into a full queue, waiting for a receipt, flushing,
closing, verifying, exporting) releases the GIL.
"""

import datetime as _datetime
import json as _json
import logging as _logging

from . import _native
from ._native import (
    AuditringError,
    ClosedError,
    ConfigError,
    EventError,
    IntegrityError,
    LockedError,
    PoisonedError,
    QueueFullError,
    Receipt,
    StorageError,
)

__all__ = [
    "AuditHandler",
    "AuditringError",
    "ClosedError",
    "ConfigError",
    "DaemonClient",
    "EventError",
    "IntegrityError",
    "LockedError",
    "PoisonedError",
    "QueueFullError",
    "Receipt",
    "Ring",
    "Snapshot",
    "StorageError",
    "export",
    "open_snapshot",
    "verify",
    "verify_export",
]

_EPOCH = _datetime.datetime(1970, 1, 1, tzinfo=_datetime.timezone.utc)


def _nanos(ts):
    """A timestamp as nanoseconds since the Unix epoch: a datetime (naive means local time, as
    `datetime.timestamp` takes it), or an int of nanoseconds, or None."""
    if ts is None or isinstance(ts, int):
        return ts
    if isinstance(ts, _datetime.datetime):
        if ts.tzinfo is None:
            ts = ts.astimezone()
        delta = ts - _EPOCH
        return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000
    raise TypeError("timestamp must be a datetime, an int of nanoseconds, or None")


def _record(raw):
    """A record as the native module gives it, with its details parsed and a datetime."""
    details = raw.pop("details_json")
    raw["details"] = None if details is None else _json.loads(details)
    ns = raw["timestamp_ns"]
    raw["timestamp"] = _EPOCH + _datetime.timedelta(microseconds=ns // 1_000)
    return raw


class Snapshot:
    """A consistent, read-only view of a log at one head."""

    def __init__(self, native):
        self._native = native

    @property
    def first_seq(self):
        """Seq of the first record (1 unless older ones were pruned)."""
        return self._native.first_seq

    @property
    def head_seq(self):
        """Seq of the last record (first_seq - 1 when empty)."""
        return self._native.head_seq

    @property
    def head(self):
        """The chain hash after the last record, as 64 hex digits."""
        return self._native.head

    def __len__(self):
        return self.head_seq - self.first_seq + 1

    def query(self, kind=None, actor=None, trace_id=None, since=None, until=None,
              first=None, last_seq=None, limit=None, last=None):
        """The records matching every criterion given, in seq order, as dicts (`seq`,
        `timestamp`, `timestamp_ns`, `kind`, `actor`, `trace_id`, `details`, `chain`).
        `since`/`until` bound the origin timestamps (datetimes or nanoseconds); `first` and
        `last_seq` the seqs; `limit` keeps the first n matches, `last` the last n."""
        raw = self._native.query(kind, actor, trace_id, _nanos(since), _nanos(until),
                                 first, last_seq, limit, last)
        return [_record(r) for r in raw]

    def records(self, first=None, last_seq=None):
        """Every record with a seq in first..=last_seq (default: all), as dicts."""
        return self.query(first=first, last_seq=last_seq)

    def export(self, out, first=None, last_seq=None, encoding="jsonl"):
        """Exports records first..=last_seq (default: all) to the new directory `out` as a
        self-verifying bundle ("jsonl" or "bundle"); returns its manifest as a dict."""
        return self._native.export(str(out), first, last_seq, encoding)


class Ring:
    """The single writer of one log directory. A context manager: leaving the block closes
    it (draining the queue, syncing, releasing the writer lock).

    durability: "none" (page cache only), "batch" (a sync per batch, before its receipts) or
    "periodic" (a sync every sync_interval_ms). wait_for_lock: wait for another writer (in
    this or another process) to close, rather than fail with LockedError."""

    def __init__(self, path, durability="batch", sync_interval_ms=100, segment_size=None,
                 queue_capacity=None, wait_for_lock=False):
        self._native = _native.NativeRing(str(path), durability, sync_interval_ms,
                                          segment_size, queue_capacity, wait_for_lock)

    def record(self, kind, actor=None, trace_id=None, timestamp=None, details=None,
               receipt=False, wait=True):
        """Records an event. `details` is anything `json.dumps` takes (a dict, usually);
        `timestamp` a datetime or nanoseconds since the epoch (default: now). Returns None, or
        with receipt=True waits for the event to be sequenced (and synced, under a durable
        policy) and returns its Receipt. With wait=False, raises QueueFullError rather than
        wait for room."""
        details_json = None if details is None else _json.dumps(details)
        return self._native.record(kind, actor, trace_id, _nanos(timestamp), details_json,
                                   receipt, wait)

    def flush(self):
        """Waits until every event recorded before the call is sequenced and, under a durable
        policy, synced."""
        self._native.flush()

    def snapshot(self):
        """A consistent view of the log as it is now."""
        return Snapshot(self._native.snapshot())

    def close(self):
        """Closes the ring: every event recorded is in the log. Closing twice does nothing."""
        self._native.close()

    @property
    def closed(self):
        """Whether the ring is closed."""
        return self._native.closed

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class DaemonClient:
    """A connection to a daemon (`auditring serve DIR --socket PATH`) that holds a log for
    many processes: records go through it as through a Ring, with the same receipts.

        with auditring.DaemonClient("/run/audit.sock") as client:
            client.record("job.done", actor="cron", details={"job": "backup"})

    Records sent without a receipt are batched; one the daemon refuses is reported by the
    next call that waits (a receipt, flush, or leaving the block)."""

    def __init__(self, socket):
        self._native = _native.NativeDaemonClient(str(socket))

    def record(self, kind, actor=None, trace_id=None, timestamp=None, details=None,
               receipt=False):
        """Records an event, as Ring.record does."""
        details_json = None if details is None else _json.dumps(details)
        return self._native.record(kind, actor, trace_id, _nanos(timestamp), details_json,
                                   receipt)

    def flush(self):
        """Waits until every event sent is sequenced (and synced, per the daemon's policy)."""
        self._native.flush()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        if exc_type is None:
            self.flush()
        return False


def open_snapshot(path):
    """The latest snapshot of the log in `path`, which another process may be writing."""
    return Snapshot(_native.open_snapshot(str(path)))


def verify(path):
    """Verifies the log in `path`: a dict with `ok`, `events`, `first_seq`, `last_seq`, `head`,
    `segments`, `tree_root` and `failure` (None, or `seq`, `file`, `offset`, `reason`,
    `message`: exactly where the log was edited, cut or torn, and why)."""
    return _native.verify(str(path))


def export(path, out, first=None, last_seq=None, encoding="jsonl"):
    """Exports records first..=last_seq (default: all) of the log in `path` (which another
    process may be writing) to the new directory `out`; returns the manifest as a dict."""
    return open_snapshot(path).export(out, first, last_seq, encoding)


def verify_export(path):
    """Verifies an export offline, as `verify` does a log."""
    return _native.verify_export(str(path))


class AuditHandler(_logging.Handler):
    """A logging.Handler that records every log record it is given into a ring.

        logging.getLogger("audit").addHandler(auditring.AuditHandler(ring))
        logging.getLogger("audit").info("login", extra={"actor": "alice", "mfa": True})

    The kind is the record's `kind` attribute (pass it in `extra`) or else the logger's name;
    the actor and trace id its `actor` and `trace_id` attributes; the details its message,
    level, and every other attribute passed in `extra`."""

    # The attributes every LogRecord has: anything else came from `extra`.
    _STANDARD = frozenset(vars(_logging.LogRecord("", 0, "", 0, "", (), None))) | {
        "message", "asctime", "taskName"}

    def __init__(self, ring, level=_logging.NOTSET):
        super().__init__(level)
        self.ring = ring

    def emit(self, record):
        try:
            details = {"message": record.getMessage(), "level": record.levelname,
                       "logger": record.name}
            for key, value in vars(record).items():
                if key not in self._STANDARD and key not in ("kind", "actor", "trace_id"):
                    details[key] = value
            # Values json cannot take go in as their text rather than fail the record.
            self.ring._native.record(
                getattr(record, "kind", None) or record.name,
                getattr(record, "actor", None),
                getattr(record, "trace_id", None),
                int(record.created * 1_000_000_000),
                _json.dumps(details, default=str),
                False,
                True,
            )
        except Exception:  # noqa: BLE001 - logging handlers report, they do not raise
            self.handleError(record)
