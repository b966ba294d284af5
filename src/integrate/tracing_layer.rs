//! A `tracing_subscriber::Layer` that records chosen `tracing` events into a ring.
//!
//! An event is chosen when its target is the configured one (default `audit`) or lies under it
//! (`audit::login`), or when it has a field `audit` (any value but `false`), and its level is
//! at least the configured one. It becomes an [`Event`]:
//!
//! * kind: the event's `kind` field, or else its target;
//! * actor: the field named by [`AuditLayerBuilder::actor_field`] (default `actor`) on the
//!   event, or else on the nearest enclosing span that has it;
//! * trace id: the event's `trace_id` field, or else the nearest enclosing span's;
//! * details: a JSON object of every other field of the event (`message` included; strings,
//!   integers, floats and booleans as themselves, anything else as its `Debug` text), with
//!   `level` and `target`, unless fields of those names are set.
//!
//! What happens when the ring's queue is full is [`Overflow`]'s choice: wait (the default), or
//! drop and write the count into the chain. Nothing is dropped silently.

use std::sync::Arc;

use ::tracing::field::{Field, Visit};
use ::tracing::span::{Attributes, Id, Record};
use ::tracing::{Event as TracingEvent, Level, Subscriber};
use serde_json::Value;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use crate::integrate::sink::{AuditGuard, DEFAULT_TARGET, Fields, Overflow, Sink, under_target};
use crate::write::ring::Ring;

/// The name of the field that chooses an event whatever its target.
const AUDIT_FIELD: &str = "audit";

/// A `tracing_subscriber::Layer` that records chosen events into a ring (see the module
/// documentation of the crate's `integrate` layer, and the README).
///
/// ```
/// use tracing_subscriber::layer::SubscriberExt;
///
/// # let dir = tempfile::tempdir().unwrap();
/// let ring = auditring::Ring::builder(dir.path().join("log")).open()?;
/// let (layer, guard) = auditring::AuditLayer::builder(ring).build();
/// let subscriber = tracing_subscriber::registry().with(layer);
/// tracing::subscriber::with_default(subscriber, || {
///     tracing::info!(target: "audit", kind = "user.login", actor = "alice", ip = "10.0.0.7", "login");
/// });
/// guard.close()?; // flushes and closes the ring
/// # Ok::<(), auditring::Error>(())
/// ```
pub struct AuditLayer {
    sink: Arc<Sink>,
    target: String,
    level: Level,
    actor_field: String,
}

/// Builds an [`AuditLayer`] ([`AuditLayer::builder`]).
#[must_use]
pub struct AuditLayerBuilder {
    ring: Ring,
    target: String,
    level: Level,
    actor_field: String,
    overflow: Overflow,
}

impl AuditLayer {
    /// A layer recording into `ring`, which its guard flushes and closes.
    pub fn builder(ring: Ring) -> AuditLayerBuilder {
        AuditLayerBuilder {
            ring,
            target: DEFAULT_TARGET.to_owned(),
            level: Level::TRACE,
            actor_field: "actor".to_owned(),
            overflow: Overflow::Wait,
        }
    }

    /// Whether the layer records an event of these metadata (its fields are not looked at
    /// yet: an `audit` field that is `false` is found when they are).
    fn chooses(&self, meta: &::tracing::Metadata<'_>) -> bool {
        *meta.level() <= self.level
            && (under_target(meta.target(), &self.target)
                || meta.fields().field(AUDIT_FIELD).is_some())
    }
}

impl AuditLayerBuilder {
    /// Records the events whose target is `target` or lies under it (default `audit`), and
    /// any event with an `audit` field.
    pub fn target(mut self, target: impl Into<String>) -> AuditLayerBuilder {
        self.target = target.into();
        self
    }

    /// Records only events of `level` or more severe (default: every level).
    pub fn level(mut self, level: Level) -> AuditLayerBuilder {
        self.level = level;
        self
    }

    /// The field that names the actor (default `actor`), on the event or an enclosing span.
    pub fn actor_field(mut self, name: impl Into<String>) -> AuditLayerBuilder {
        self.actor_field = name.into();
        self
    }

    /// What to do with an event that finds the queue full (default [`Overflow::Wait`]).
    pub fn overflow(mut self, overflow: Overflow) -> AuditLayerBuilder {
        self.overflow = overflow;
        self
    }

    /// The layer, and the guard that flushes and closes the ring when dropped.
    pub fn build(self) -> (AuditLayer, AuditGuard) {
        let sink = Arc::new(Sink::new(self.ring.producer(), self.overflow));
        let layer = AuditLayer {
            sink: sink.clone(),
            target: self.target,
            level: self.level,
            actor_field: self.actor_field,
        };
        (layer, AuditGuard::new(self.ring, sink))
    }
}

/// The actor and trace id a span carries, kept in its extensions.
#[derive(Clone, Debug, Default)]
struct SpanFields {
    actor: Option<String>,
    trace_id: Option<String>,
}

/// Collects the actor and trace id of a span.
struct SpanVisitor<'a> {
    actor_field: &'a str,
    fields: &'a mut SpanFields,
}

impl Visit for SpanVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.set(field, value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.set(field, format!("{value:?}"));
    }
}

impl SpanVisitor<'_> {
    fn set(&mut self, field: &Field, value: String) {
        if field.name() == self.actor_field {
            self.fields.actor = Some(value);
        } else if field.name() == "trace_id" {
            self.fields.trace_id = Some(value);
        }
    }
}

/// Collects an event's fields.
struct EventVisitor<'a> {
    fields: Fields<'a>,
    /// Whether it has an `audit` field that is not `false`.
    audit: bool,
}

impl EventVisitor<'_> {
    fn put(&mut self, field: &Field, value: Value) {
        if field.name() == AUDIT_FIELD {
            self.audit = value != Value::Bool(false);
        } else {
            self.fields.put(field.name(), value);
        }
    }
}

impl Visit for EventVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::from(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Value::from(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        // NaN and infinities have no JSON number: their text.
        let v = serde_json::Number::from_f64(value)
            .map_or_else(|| Value::from(value.to_string()), Value::Number);
        self.put(field, v);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Value::from(value));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, Value::from(value.to_string()));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.put(field, Value::from(format!("{value:?}")));
    }
}

impl<S> Layer<S> for AuditLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = SpanFields::default();
        attrs.record(&mut SpanVisitor {
            actor_field: &self.actor_field,
            fields: &mut fields,
        });
        if (fields.actor.is_some() || fields.trace_id.is_some())
            && let Some(span) = ctx.span(id)
        {
            span.extensions_mut().insert(fields);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        let mut extensions = span.extensions_mut();
        let mut fields = extensions
            .get_mut::<SpanFields>()
            .cloned()
            .unwrap_or_default();
        values.record(&mut SpanVisitor {
            actor_field: &self.actor_field,
            fields: &mut fields,
        });
        if fields.actor.is_some() || fields.trace_id.is_some() {
            extensions.replace(fields);
        }
    }

    fn on_event(&self, event: &TracingEvent<'_>, ctx: Context<'_, S>) {
        let meta = event.metadata();
        if !self.chooses(meta) {
            return;
        }
        let mut v = EventVisitor {
            fields: Fields::new(&self.actor_field),
            audit: false,
        };
        event.record(&mut v);
        if !v.audit && !under_target(meta.target(), &self.target) {
            return;
        }
        let mut fields = v.fields;
        // The nearest enclosing spans that carry what the event does not.
        if (fields.actor.is_none() || fields.trace_id.is_none())
            && let Some(scope) = ctx.event_scope(event)
        {
            for span in scope {
                if let Some(f) = span.extensions().get::<SpanFields>() {
                    if fields.actor.is_none() {
                        fields.actor.clone_from(&f.actor);
                    }
                    if fields.trace_id.is_none() {
                        fields.trace_id.clone_from(&f.trace_id);
                    }
                }
                if fields.actor.is_some() && fields.trace_id.is_some() {
                    break;
                }
            }
        }
        match fields.into_event(meta.target(), meta.level().as_str()) {
            Ok(e) => self.sink.record(e),
            Err(e) => self.sink.fail(e.into()),
        }
    }
}

impl std::fmt::Debug for AuditLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLayer")
            .field("target", &self.target)
            .field("level", &self.level)
            .field("actor_field", &self.actor_field)
            .finish_non_exhaustive()
    }
}
