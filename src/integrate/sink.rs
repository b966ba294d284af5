//! How the integrations put events into a ring: waiting for room, or dropping and saying so in
//! the chain; and the guard that flushes and closes the ring.
//!
//! A logging call cannot hand an event back to its caller, so neither policy loses one
//! silently. [`Overflow::Wait`] waits for room, as [`Producer::push`] does. With
//! [`Overflow::DropAndRecord`] an event that finds the queue full is dropped, counted, and
//! the count goes into the chain as a record of kind [`DROPPED_KIND`] before the next event
//! that gets in (and at the latest when the guard flushes or closes): how many, when the
//! first and the last were dropped, and the head seq when the first was. An event the ring
//! refuses for any other reason (closed, poisoned, invalid) is counted as failed, and the
//! guard's [`AuditGuard::close`] reports it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use serde::Serialize;

use crate::error::{Error, PushError};
use crate::format::event::{Event, system_time_nanos};
use crate::write::producer::Producer;
use crate::write::ring::Ring;

/// The kind of the record that says how many events an integration dropped
/// ([`Overflow::DropAndRecord`]); its details are `{"dropped": n, "first_at": t1,
/// "last_at": t2, "after_seq": s}` (times in nanoseconds since the Unix epoch; `s` the last
/// seq sequenced when the first was dropped, so every event dropped came after it).
pub const DROPPED_KIND: &str = "auditring.dropped";

/// The default target of the events and records the integrations choose.
pub(crate) const DEFAULT_TARGET: &str = "audit";

/// Whether `target` is `prefix` or lies under it (`prefix::…`).
pub(crate) fn under_target(target: &str, prefix: &str) -> bool {
    target
        .strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
}

/// What a logging event carries, sorted out: the kind, actor and trace id it names, and the
/// rest, which becomes the details.
pub(crate) struct Fields<'a> {
    /// The name of the field or key-value that names the actor.
    actor_name: &'a str,
    kind: Option<String>,
    pub(crate) actor: Option<String>,
    pub(crate) trace_id: Option<String>,
    details: serde_json::Map<String, serde_json::Value>,
}

impl<'a> Fields<'a> {
    pub(crate) fn new(actor_name: &'a str) -> Fields<'a> {
        Fields {
            actor_name,
            kind: None,
            actor: None,
            trace_id: None,
            details: serde_json::Map::new(),
        }
    }

    /// Takes the field `name`: `kind`, the actor's, `trace_id`, or a detail.
    pub(crate) fn put(&mut self, name: &str, value: serde_json::Value) {
        let text = || match &value {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        if name == "kind" {
            self.kind = Some(text());
        } else if name == self.actor_name {
            self.actor = Some(text());
        } else if name == "trace_id" {
            self.trace_id = Some(text());
        } else {
            self.details.insert(name.to_owned(), value);
        }
    }

    /// Sets the detail `name` unless a field of that name set it.
    pub(crate) fn default_detail(&mut self, name: &str, value: impl Into<serde_json::Value>) {
        self.details.entry(name).or_insert_with(|| value.into());
    }

    /// The event: of kind `kind` if no field named one, with `level` and `target` among the
    /// details unless fields of those names are set.
    pub(crate) fn into_event(
        mut self,
        target: &str,
        level: &str,
    ) -> Result<Event, crate::format::event::EventError> {
        self.default_detail("level", level);
        self.default_detail("target", target);
        let mut e = Event::new(self.kind.unwrap_or_else(|| target.to_owned()));
        if let Some(actor) = self.actor {
            e = e.with_actor(actor);
        }
        if let Some(trace_id) = self.trace_id {
            e = e.with_trace_id(trace_id);
        }
        e.with_details(&self.details)
    }
}

/// What an integration does with an event that finds the ring's queue full.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Overflow {
    /// Wait for room (the default): the logging call returns once the event is queued.
    #[default]
    Wait,
    /// Drop the event, count it, and write the count into the chain as a record of kind
    /// [`DROPPED_KIND`] before the next event that gets in.
    DropAndRecord,
}

/// Events dropped since the last drop record was queued.
#[derive(Clone, Copy, Debug, Serialize)]
struct Drops {
    dropped: u64,
    first_at: i64,
    last_at: i64,
    after_seq: u64,
}

/// The ring's end of an integration.
pub(crate) struct Sink {
    producer: Producer,
    overflow: Overflow,
    /// Set while `drops` holds a count not yet queued: one relaxed load on the lossy path.
    dropping: AtomicBool,
    drops: Mutex<Option<Drops>>,
    /// Events the ring refused (not dropped for room).
    failed: AtomicU64,
    /// The first reason one was refused.
    first_failure: Mutex<Option<Error>>,
}

impl Sink {
    pub(crate) fn new(producer: Producer, overflow: Overflow) -> Sink {
        Sink {
            producer,
            overflow,
            dropping: AtomicBool::new(false),
            drops: Mutex::new(None),
            failed: AtomicU64::new(0),
            first_failure: Mutex::new(None),
        }
    }

    /// Puts `event` into the ring as the policy says.
    pub(crate) fn record(&self, event: Event) {
        match self.overflow {
            Overflow::Wait => {
                if let Err(e) = self.producer.push(event) {
                    self.fail(e.into());
                }
            }
            Overflow::DropAndRecord => {
                if self.dropping.load(Ordering::Relaxed) && !self.queue_drops(false) {
                    self.drop_one(&event);
                    return;
                }
                match self.producer.try_push(event) {
                    Ok(()) => {}
                    Err(PushError::Full(event)) => self.drop_one(&event),
                    Err(e) => self.fail(e.into()),
                }
            }
        }
    }

    /// Counts `event` as dropped.
    fn drop_one(&self, event: &Event) {
        let at = event
            .timestamp_nanos()
            .unwrap_or_else(|| system_time_nanos(std::time::SystemTime::now()).unwrap_or_default());
        let mut drops = self.drops.lock().unwrap_or_else(PoisonError::into_inner);
        let d = drops.get_or_insert_with(|| Drops {
            dropped: 0,
            first_at: at,
            last_at: at,
            after_seq: self.producer.shared.published.load().head_seq,
        });
        d.dropped += 1;
        d.first_at = d.first_at.min(at);
        d.last_at = d.last_at.max(at);
        self.dropping.store(true, Ordering::Relaxed);
    }

    /// Queues the drop record, if events were dropped, waiting for room if `wait`; returns
    /// whether no count is left to queue.
    fn queue_drops(&self, wait: bool) -> bool {
        let mut drops = self.drops.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(d) = *drops else {
            return true;
        };
        let details = serde_json::to_string(&d).expect("drop counts serialize");
        let record = Event::system(DROPPED_KIND, details);
        let pushed = if wait {
            self.producer.push(record)
        } else {
            self.producer.try_push(record)
        };
        match pushed {
            Ok(()) => {}
            Err(PushError::Full(_)) => return false,
            Err(e) => self.fail(e.into()),
        }
        *drops = None;
        self.dropping.store(false, Ordering::Relaxed);
        true
    }

    /// Counts an event the ring refused, or that could not be made into one.
    pub(crate) fn fail(&self, e: Error) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        let mut first = self
            .first_failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if first.is_none() {
            *first = Some(e);
        }
    }

    /// The events refused so far, and the first reason.
    fn failures(&self) -> Result<(), Error> {
        let n = self.failed.load(Ordering::Relaxed);
        if n == 0 {
            return Ok(());
        }
        let first = self
            .first_failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .unwrap_or(Error::Closed);
        Err(Error::Integration(format!(
            "{n} event(s) could not be recorded; the first because: {first}"
        )))
    }
}

/// Flushes and closes the ring behind an integration when dropped (or with
/// [`AuditGuard::close`], which reports what went wrong). Keep it alive for as long as the
/// layer or logger is installed: events recorded after the ring is closed are refused, and
/// counted as failed.
#[must_use = "dropping the guard closes the ring"]
pub struct AuditGuard {
    ring: Option<Ring>,
    sink: Arc<Sink>,
}

impl AuditGuard {
    pub(crate) fn new(ring: Ring, sink: Arc<Sink>) -> AuditGuard {
        AuditGuard {
            ring: Some(ring),
            sink,
        }
    }

    /// The ring, to push, flush or take snapshots directly.
    pub fn ring(&self) -> &Ring {
        self.ring
            .as_ref()
            .expect("the ring is open until the guard goes")
    }

    /// Queues the record of dropped events, if any (waiting for room), then waits until every
    /// event recorded before the call is sequenced and, under a durable policy, synced.
    pub fn flush(&self) -> Result<(), Error> {
        self.sink.queue_drops(true);
        self.ring().flush()?;
        self.sink.failures()
    }

    /// Queues the record of dropped events, if any, and closes the ring: every event recorded
    /// is in the log. Fails with the ring's error, or with [`Error::Integration`] if events
    /// were refused (the ring was closed or poisoned, or an event was invalid).
    pub fn close(mut self) -> Result<(), Error> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), Error> {
        let Some(ring) = self.ring.take() else {
            return Ok(());
        };
        self.sink.queue_drops(true);
        ring.close()?;
        self.sink.failures()
    }
}

impl Drop for AuditGuard {
    /// Closes the ring as [`AuditGuard::close`] does; a failure is written to standard error.
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            eprintln!("auditring: closing the audit log: {e}");
        }
    }
}

impl std::fmt::Debug for AuditGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditGuard")
            .field("ring", &self.ring)
            .finish_non_exhaustive()
    }
}
