//! A `log::Log` backend that records chosen `log` records into a ring.
//!
//! A record is chosen when its target is the configured one (default `audit`) or lies under it
//! (`audit::login`), and its level is at least the configured one. It becomes an [`Event`]:
//!
//! * kind: the record's `kind` key-value, or else its target;
//! * actor: the key-value named by [`AuditLoggerBuilder::actor_key`] (default `actor`);
//! * trace id: the `trace_id` key-value;
//! * details: a JSON object of the message (`message`), every other key-value (integers,
//!   floats and booleans as themselves, anything else as its text), `level` and `target`,
//!   unless key-values of those names are set.
//!
//! Records it does not choose go to the logger it was given to pass them on to, if any, so a
//! service keeps its ordinary logging. The queue-full policy is [`Overflow`]'s, as for the
//! tracing layer.

use std::sync::Arc;

use ::log::kv::{Key, Value as KvValue, VisitSource};
use ::log::{Level, LevelFilter, Log, Metadata, Record};
use serde_json::Value;

use crate::error::Error;
use crate::integrate::sink::{AuditGuard, DEFAULT_TARGET, Fields, Overflow, Sink, under_target};
use crate::write::ring::Ring;

/// A `log::Log` backend that records chosen records into a ring (see the module
/// documentation, and the README). Install it with [`AuditLogger::init`] or
/// `log::set_boxed_logger`.
///
/// ```no_run
/// # let dir = tempfile::tempdir().unwrap();
/// let ring = auditring::Ring::builder(dir.path().join("log")).open()?;
/// let guard = auditring::AuditLogger::builder(ring).init()?;
/// log::info!(target: "audit", kind = "user.login", actor = "alice"; "login");
/// guard.close()?; // flushes and closes the ring
/// # Ok::<(), auditring::Error>(())
/// ```
pub struct AuditLogger {
    sink: Arc<Sink>,
    target: String,
    level: Level,
    actor_key: String,
    /// Where the records it does not choose go.
    next: Option<Box<dyn Log>>,
}

/// Builds an [`AuditLogger`] ([`AuditLogger::builder`]).
#[must_use]
pub struct AuditLoggerBuilder {
    ring: Ring,
    target: String,
    level: Level,
    actor_key: String,
    overflow: Overflow,
    next: Option<Box<dyn Log>>,
}

impl AuditLogger {
    /// A logger recording into `ring`, which its guard flushes and closes.
    pub fn builder(ring: Ring) -> AuditLoggerBuilder {
        AuditLoggerBuilder {
            ring,
            target: DEFAULT_TARGET.to_owned(),
            level: Level::Trace,
            actor_key: "actor".to_owned(),
            overflow: Overflow::Wait,
            next: None,
        }
    }

    fn chooses(&self, meta: &Metadata<'_>) -> bool {
        meta.level() <= self.level && under_target(meta.target(), &self.target)
    }
}

impl AuditLoggerBuilder {
    /// Records the records whose target is `target` or lies under it (default `audit`).
    pub fn target(mut self, target: impl Into<String>) -> AuditLoggerBuilder {
        self.target = target.into();
        self
    }

    /// Records only records of `level` or more severe (default: every level).
    pub fn level(mut self, level: Level) -> AuditLoggerBuilder {
        self.level = level;
        self
    }

    /// The key-value that names the actor (default `actor`).
    pub fn actor_key(mut self, key: impl Into<String>) -> AuditLoggerBuilder {
        self.actor_key = key.into();
        self
    }

    /// What to do with a record that finds the queue full (default [`Overflow::Wait`]).
    pub fn overflow(mut self, overflow: Overflow) -> AuditLoggerBuilder {
        self.overflow = overflow;
        self
    }

    /// Passes the records it does not record to `logger` (the service's usual logger).
    pub fn then(mut self, logger: Box<dyn Log>) -> AuditLoggerBuilder {
        self.next = Some(logger);
        self
    }

    /// The logger, and the guard that flushes and closes the ring when dropped.
    pub fn build(self) -> (AuditLogger, AuditGuard) {
        let sink = Arc::new(Sink::new(self.ring.producer(), self.overflow));
        let logger = AuditLogger {
            sink: sink.clone(),
            target: self.target,
            level: self.level,
            actor_key: self.actor_key,
            next: self.next,
        };
        (logger, AuditGuard::new(self.ring, sink))
    }

    /// Builds the logger and installs it as the process's `log` logger, letting every level
    /// through (`log::set_max_level`), and returns the guard. Fails with [`Error::Config`] if
    /// a logger is installed already (the ring is closed then).
    pub fn init(self) -> Result<AuditGuard, Error> {
        let (logger, guard) = self.build();
        ::log::set_boxed_logger(Box::new(logger))
            .map_err(|e| Error::Config(format!("installing the audit logger: {e}")))?;
        ::log::set_max_level(LevelFilter::Trace);
        Ok(guard)
    }
}

/// Collects a record's key-values.
struct KvVisitor<'a>(Fields<'a>);

impl<'kvs> VisitSource<'kvs> for KvVisitor<'_> {
    fn visit_pair(&mut self, key: Key<'kvs>, value: KvValue<'kvs>) -> Result<(), ::log::kv::Error> {
        self.0.put(key.as_str(), json_value(&value));
        Ok(())
    }
}

/// A key-value's value as JSON: numbers and booleans as themselves, anything else as text.
fn json_value(value: &KvValue<'_>) -> Value {
    if let Some(b) = value.to_bool() {
        Value::from(b)
    } else if let Some(i) = value.to_i64() {
        Value::from(i)
    } else if let Some(u) = value.to_u64() {
        Value::from(u)
    } else if let Some(n) = value.to_f64().and_then(serde_json::Number::from_f64) {
        Value::Number(n)
    } else {
        Value::from(value.to_string())
    }
}

impl Log for AuditLogger {
    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        self.chooses(meta) || self.next.as_ref().is_some_and(|n| n.enabled(meta))
    }

    fn log(&self, record: &Record<'_>) {
        if !self.chooses(record.metadata()) {
            if let Some(next) = &self.next {
                next.log(record);
            }
            return;
        }
        let mut v = KvVisitor(Fields::new(&self.actor_key));
        // A visitor that never fails: every key-value is taken.
        let _ = record.key_values().visit(&mut v);
        let mut fields = v.0;
        fields.default_detail("message", record.args().to_string());
        match fields.into_event(record.target(), record.level().as_str()) {
            Ok(e) => self.sink.record(e),
            Err(e) => self.sink.fail(e.into()),
        }
    }

    /// Flushes the logger it passes records on to. (The ring is flushed by the guard.)
    fn flush(&self) {
        if let Some(next) = &self.next {
            next.flush();
        }
    }
}

impl std::fmt::Debug for AuditLogger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLogger")
            .field("target", &self.target)
            .field("level", &self.level)
            .field("actor_key", &self.actor_key)
            .finish_non_exhaustive()
    }
}
