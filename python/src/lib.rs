//! The native module of the `auditring` Python package (`auditring._native`): the ring,
//! its receipts, snapshots and queries, verification and exports, with the crate's errors as
//! Python exceptions.
//!
//! Everything that can wait or take long (a push waiting for room, a receipt, a flush, a
//! close, a verification, an export) runs with the GIL released, so Python threads record in
//! parallel with each other and with the ring's own threads. The Python side
//! (`py/auditring/__init__.py`) adds the context manager sugar, datetimes and the
//! `logging.Handler`.

// PyO3 hands Python arguments over by value (`PathBuf`, `String`), whether or not the function
// keeps them.
#![allow(clippy::needless_pass_by_value)]

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use auditring::{
    DaemonClient, Durability, Encoding, Error, Event, ExportOptions, Producer, Query, Reader,
    Record, Ring, Selection, Snapshot, VerifyExportOptions, VerifyOptions,
};
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

create_exception!(
    _native,
    AuditringError,
    PyException,
    "Any error of auditring."
);
create_exception!(_native, ClosedError, AuditringError, "The ring is closed.");
create_exception!(
    _native,
    QueueFullError,
    AuditringError,
    "The queue is full and the call was not to wait."
);
create_exception!(
    _native,
    LockedError,
    AuditringError,
    "Another writer holds the log's lock."
);
create_exception!(
    _native,
    ConfigError,
    AuditringError,
    "An option or argument is invalid."
);
create_exception!(
    _native,
    EventError,
    AuditringError,
    "The event is invalid (reserved kind, too large, details not JSON)."
);
create_exception!(
    _native,
    PoisonedError,
    AuditringError,
    "The ring can no longer write (a sync failed, a thread panicked): what was acknowledged is kept."
);
create_exception!(
    _native,
    IntegrityError,
    AuditringError,
    "A log or export is not what its hashes say: an edit, a cut or a tear."
);
create_exception!(
    _native,
    StorageError,
    AuditringError,
    "A file could not be read or written (missing directory, full disk, permissions)."
);

/// The crate's error as the Python exception of its class.
fn py_err(e: Error) -> PyErr {
    let text = e.to_string();
    match e {
        Error::Closed | Error::Forked { .. } => ClosedError::new_err(text),
        Error::QueueFull => QueueFullError::new_err(text),
        Error::Locked { .. } => LockedError::new_err(text),
        Error::Config(_) | Error::Checkpoint(_) | Error::Sealing(_) => ConfigError::new_err(text),
        Error::Event(_)
        | Error::Refused {
            class: auditring::DaemonErrorClass::InvalidEvent,
            ..
        } => EventError::new_err(text),
        Error::Poisoned { .. } | Error::Unwritten { .. } => PoisonedError::new_err(text),
        Error::Integrity(_) => IntegrityError::new_err(text),
        Error::Io { .. } | Error::NotALog { .. } => StorageError::new_err(text),
        _ => AuditringError::new_err(text),
    }
}

/// Where an event landed in the chain.
#[pyclass(frozen, module = "auditring._native")]
struct Receipt {
    /// The event's sequence number.
    #[pyo3(get)]
    seq: u64,
    /// The chain hash after the event, as 64 hex digits.
    #[pyo3(get)]
    chain: String,
    /// Whether the event was synced before the receipt was issued.
    #[pyo3(get)]
    durable: bool,
}

#[pymethods]
impl Receipt {
    fn __repr__(&self) -> String {
        format!(
            "Receipt(seq={}, chain='{}', durable={})",
            self.seq,
            self.chain,
            if self.durable { "True" } else { "False" }
        )
    }
}

impl From<auditring::Receipt> for Receipt {
    fn from(r: auditring::Receipt) -> Receipt {
        Receipt {
            seq: r.seq,
            chain: r.chain.to_hex(),
            durable: r.durable,
        }
    }
}

/// A ring: the writer of one log directory.
#[pyclass(module = "auditring._native")]
struct NativeRing {
    /// `None` once closed.
    ring: Mutex<Option<Ring>>,
    /// A producer, to push without taking the lock above.
    producer: Producer,
}

/// The durability policy a string names.
fn durability(name: &str, interval_ms: u64) -> PyResult<Durability> {
    match name {
        "none" => Ok(Durability::None),
        "batch" => Ok(Durability::Batch),
        "periodic" => Ok(Durability::Periodic(Duration::from_millis(interval_ms))),
        other => Err(ConfigError::new_err(format!(
            "durability {other:?}: expected \"none\", \"batch\" or \"periodic\""
        ))),
    }
}

#[pymethods]
impl NativeRing {
    #[new]
    #[pyo3(signature = (path, durability="batch", sync_interval_ms=100, segment_size=None, queue_capacity=None, wait_for_lock=false))]
    fn new(
        py: Python<'_>,
        path: PathBuf,
        durability: &str,
        sync_interval_ms: u64,
        segment_size: Option<u64>,
        queue_capacity: Option<usize>,
        wait_for_lock: bool,
    ) -> PyResult<NativeRing> {
        let policy = self::durability(durability, sync_interval_ms)?;
        let mut builder = Ring::builder(path)
            .durability(policy)
            .wait_for_lock(wait_for_lock);
        if let Some(size) = segment_size {
            builder = builder.segment_size(size);
        }
        if let Some(cap) = queue_capacity {
            builder = builder.queue_capacity(cap);
        }
        // Waiting for another writer's lock can take as long as that writer keeps it.
        let ring = py.allow_threads(|| builder.open()).map_err(py_err)?;
        let producer = ring.producer();
        Ok(NativeRing {
            ring: Mutex::new(Some(ring)),
            producer,
        })
    }

    /// Records an event; with `receipt`, waits until it is sequenced (and synced, under a
    /// durable policy) and returns its receipt. `timestamp_ns` is nanoseconds since the Unix
    /// epoch; `details_json` a JSON text.
    #[pyo3(signature = (kind, actor=None, trace_id=None, timestamp_ns=None, details_json=None, receipt=false, wait=true))]
    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        py: Python<'_>,
        kind: String,
        actor: Option<String>,
        trace_id: Option<String>,
        timestamp_ns: Option<i64>,
        details_json: Option<String>,
        receipt: bool,
        wait: bool,
    ) -> PyResult<Option<Receipt>> {
        let event = make_event(kind, actor, trace_id, timestamp_ns, details_json)?;
        let producer = &self.producer;
        py.allow_threads(|| {
            if receipt {
                return producer.push_receipt(event).map(|r| Some(r.into()));
            }
            let pushed = if wait {
                producer.push(event)
            } else {
                producer.try_push(event)
            };
            pushed.map(|()| None).map_err(Error::from)
        })
        .map_err(py_err)
    }

    /// Waits until every event recorded before the call is sequenced and, under a durable
    /// policy, synced.
    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        let producer = &self.producer;
        py.allow_threads(|| producer.flush()).map_err(py_err)
    }

    /// A consistent view of the log as it is now.
    fn snapshot(&self) -> PyResult<NativeSnapshot> {
        let ring = self
            .ring
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match &*ring {
            Some(ring) => Ok(NativeSnapshot {
                snapshot: ring.snapshot(),
            }),
            None => Err(ClosedError::new_err("the ring is closed")),
        }
    }

    /// Drains the queue, syncs, and releases the writer lock. Closing twice does nothing.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let ring = self
            .ring
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        match ring {
            Some(ring) => py.allow_threads(|| ring.close()).map_err(py_err),
            None => Ok(()),
        }
    }

    /// Whether the ring is closed.
    #[getter]
    fn closed(&self) -> bool {
        self.ring
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_none()
    }
}

/// The event the arguments of `record` describe.
fn make_event(
    kind: String,
    actor: Option<String>,
    trace_id: Option<String>,
    timestamp_ns: Option<i64>,
    details_json: Option<String>,
) -> PyResult<Event> {
    let mut event = Event::new(kind);
    if let Some(actor) = actor {
        event = event.with_actor(actor);
    }
    if let Some(trace_id) = trace_id {
        event = event.with_trace_id(trace_id);
    }
    if let Some(ns) = timestamp_ns {
        event = event.with_timestamp_nanos(ns);
    }
    if let Some(json) = details_json {
        event = event
            .with_details_json(json)
            .map_err(|e| py_err(e.into()))?;
    }
    Ok(event)
}

/// A connection to a daemon (`auditring serve`) that holds a log for many processes.
#[pyclass(module = "auditring._native")]
struct NativeDaemonClient {
    client: Mutex<DaemonClient>,
}

#[pymethods]
impl NativeDaemonClient {
    #[new]
    fn new(py: Python<'_>, socket: PathBuf) -> PyResult<NativeDaemonClient> {
        let client = py
            .allow_threads(|| DaemonClient::connect(&socket))
            .map_err(py_err)?;
        Ok(NativeDaemonClient {
            client: Mutex::new(client),
        })
    }

    /// Records an event through the daemon; with `receipt`, waits for its receipt.
    #[pyo3(signature = (kind, actor=None, trace_id=None, timestamp_ns=None, details_json=None, receipt=false))]
    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        py: Python<'_>,
        kind: String,
        actor: Option<String>,
        trace_id: Option<String>,
        timestamp_ns: Option<i64>,
        details_json: Option<String>,
        receipt: bool,
    ) -> PyResult<Option<Receipt>> {
        let event = make_event(kind, actor, trace_id, timestamp_ns, details_json)?;
        let client = &self.client;
        py.allow_threads(|| {
            let mut c = client
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if receipt {
                c.record_receipt(&event).map(|r| Some(r.into()))
            } else {
                c.record(&event).map(|()| None)
            }
        })
        .map_err(py_err)
    }

    /// Waits until every event sent so far is sequenced (and synced, per the daemon's policy).
    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        let client = &self.client;
        py.allow_threads(|| {
            client
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .flush()
        })
        .map_err(py_err)
    }
}

/// A consistent, read-only view of a log.
#[pyclass(module = "auditring._native")]
struct NativeSnapshot {
    snapshot: Snapshot,
}

/// A record as a plain dict.
fn record_dict<'py>(py: Python<'py>, r: &Record) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("seq", r.seq)?;
    d.set_item("timestamp_ns", r.timestamp)?;
    d.set_item("kind", &r.kind)?;
    d.set_item("actor", r.actor.as_deref())?;
    d.set_item("trace_id", r.trace_id.as_deref())?;
    d.set_item("details_json", r.details.as_deref())?;
    d.set_item("chain", r.chain.to_hex())?;
    Ok(d)
}

#[pymethods]
impl NativeSnapshot {
    /// Seq of the first record (1 unless older ones were pruned).
    #[getter]
    fn first_seq(&self) -> u64 {
        self.snapshot.first_seq()
    }

    /// Seq of the last record.
    #[getter]
    fn head_seq(&self) -> u64 {
        self.snapshot.head_seq()
    }

    /// The chain hash after the last record, as hex.
    #[getter]
    fn head(&self) -> String {
        self.snapshot.head().to_hex()
    }

    /// The records matching the query, in seq order, as dicts.
    #[pyo3(signature = (kind=None, actor=None, trace_id=None, since_ns=None, until_ns=None, first=None, last_seq=None, limit=None, last=None))]
    #[allow(clippy::too_many_arguments)]
    fn query<'py>(
        &self,
        py: Python<'py>,
        kind: Option<String>,
        actor: Option<String>,
        trace_id: Option<String>,
        since_ns: Option<i64>,
        until_ns: Option<i64>,
        first: Option<u64>,
        last_seq: Option<u64>,
        limit: Option<usize>,
        last: Option<usize>,
    ) -> PyResult<Bound<'py, PyList>> {
        let mut q = Query::new();
        if let Some(k) = kind {
            q = q.kind(k);
        }
        if let Some(a) = actor {
            q = q.actor(a);
        }
        if let Some(t) = trace_id {
            q = q.trace_id(t);
        }
        if let Some(s) = since_ns {
            q = q.since(s);
        }
        if let Some(u) = until_ns {
            q = q.until(u);
        }
        q = q.seqs(first.unwrap_or(0)..=last_seq.unwrap_or(u64::MAX));
        if let Some(n) = limit {
            q = q.limit(n);
        }
        if let Some(n) = last {
            q = q.last(n);
        }
        let snapshot = &self.snapshot;
        let records = py.allow_threads(|| snapshot.query(&q)).map_err(py_err)?;
        let list = PyList::empty(py);
        for r in &records {
            list.append(record_dict(py, r)?)?;
        }
        Ok(list)
    }

    /// Exports the records `first..=last` (default: all) to the new directory `out`, as
    /// `"jsonl"` or `"bundle"`; returns the manifest as a dict.
    #[pyo3(signature = (out, first=None, last=None, encoding="jsonl"))]
    fn export(
        &self,
        py: Python<'_>,
        out: PathBuf,
        first: Option<u64>,
        last: Option<u64>,
        encoding: &str,
    ) -> PyResult<PyObject> {
        let encoding = match encoding {
            "jsonl" => Encoding::Jsonl,
            "bundle" => Encoding::Bundle,
            other => {
                return Err(ConfigError::new_err(format!(
                    "encoding {other:?}: expected \"jsonl\" or \"bundle\""
                )));
            }
        };
        let snapshot = &self.snapshot;
        let manifest = py
            .allow_threads(|| {
                let options = ExportOptions::new()
                    .encoding(encoding)
                    .selection(Selection::Seqs {
                        from: first,
                        to: last,
                    });
                snapshot
                    .export(&out, options)
                    .map(|m| serde_json::to_string(&m).unwrap_or_default())
            })
            .map_err(py_err)?;
        json_loads(py, &manifest)
    }
}

/// `json.loads(text)`.
fn json_loads(py: Python<'_>, text: &str) -> PyResult<PyObject> {
    Ok(py.import("json")?.call_method1("loads", (text,))?.unbind())
}

/// The latest snapshot of the log in `path`, read while another process may write it.
#[pyfunction]
fn open_snapshot(py: Python<'_>, path: PathBuf) -> PyResult<NativeSnapshot> {
    let snapshot = py
        .allow_threads(|| Reader::open(&path).and_then(|r| r.snapshot()))
        .map_err(py_err)?;
    Ok(NativeSnapshot { snapshot })
}

/// Verifies the log in `path`; returns the report as a dict (`ok`, `events`, `first_seq`,
/// `last_seq`, `head`, `failure`: None, or a dict with `seq`, `file`, `offset`, `reason`).
#[pyfunction]
fn verify(py: Python<'_>, path: PathBuf) -> PyResult<PyObject> {
    let report = py
        .allow_threads(|| auditring::verify(&path, VerifyOptions::default()))
        .map_err(py_err)?;
    let d = PyDict::new(py);
    d.set_item("ok", report.is_ok())?;
    d.set_item("events", report.events)?;
    d.set_item("first_seq", report.first_seq)?;
    d.set_item("last_seq", report.last_seq)?;
    d.set_item("head", report.head.to_hex())?;
    d.set_item("segments", report.segments)?;
    d.set_item("tree_root", report.tree_root.map(|h| h.to_hex()))?;
    d.set_item("failure", failure_dict(py, report.failure.as_ref())?)?;
    Ok(d.into_any().unbind())
}

/// Verifies the export in `path` offline; returns the report as a dict, as [`verify`] does.
#[pyfunction]
fn verify_export(py: Python<'_>, path: PathBuf) -> PyResult<PyObject> {
    let report = py
        .allow_threads(|| auditring::verify_export(&path, VerifyExportOptions::default()))
        .map_err(py_err)?;
    let d = PyDict::new(py);
    d.set_item("ok", report.failure.is_none())?;
    d.set_item("events", report.events)?;
    d.set_item("first_seq", report.first_seq)?;
    d.set_item("last_seq", report.last_seq)?;
    d.set_item("head", report.head.to_hex())?;
    d.set_item("failure", failure_dict(py, report.failure.as_ref())?)?;
    Ok(d.into_any().unbind())
}

/// An integrity failure as a dict, or None.
fn failure_dict(py: Python<'_>, f: Option<&auditring::IntegrityError>) -> PyResult<PyObject> {
    let Some(f) = f else {
        return Ok(py.None());
    };
    let d = PyDict::new(py);
    d.set_item("seq", f.seq)?;
    d.set_item("file", f.file.display().to_string())?;
    d.set_item("offset", f.offset)?;
    d.set_item("reason", f.reason.to_string())?;
    d.set_item("message", f.to_string())?;
    Ok(d.into_any().unbind())
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_class::<NativeRing>()?;
    m.add_class::<NativeSnapshot>()?;
    m.add_class::<Receipt>()?;
    m.add_class::<NativeDaemonClient>()?;
    m.add_function(wrap_pyfunction!(open_snapshot, m)?)?;
    m.add_function(wrap_pyfunction!(verify, m)?)?;
    m.add_function(wrap_pyfunction!(verify_export, m)?)?;
    m.add("AuditringError", py.get_type::<AuditringError>())?;
    m.add("ClosedError", py.get_type::<ClosedError>())?;
    m.add("QueueFullError", py.get_type::<QueueFullError>())?;
    m.add("LockedError", py.get_type::<LockedError>())?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    m.add("EventError", py.get_type::<EventError>())?;
    m.add("PoisonedError", py.get_type::<PoisonedError>())?;
    m.add("IntegrityError", py.get_type::<IntegrityError>())?;
    m.add("StorageError", py.get_type::<StorageError>())?;
    Ok(())
}
