//! [`EventRef`]: an event whose fields are borrowed, for the push path that allocates nothing.
//!
//! An [`Event`](crate::Event) owns its strings: building one allocates the actor, the trace id
//! and the details' JSON, and pushing it copies them into the envelope. An `EventRef` borrows
//! them from the caller, and its details are any [`Serialize`] value, serialized by the push
//! straight into the envelope (in the queue slot, for an event that fits one). Both encode to
//! the same body (`docs/FORMAT.md` §6), byte for byte.

use std::fmt;
use std::time::SystemTime;

use serde::Serialize;
use serde_json::value::RawValue;

use crate::format::event::{EventError, Head, system_time_nanos};

/// An audit event that borrows its fields: pushing it with
/// [`Producer::push_ref`](crate::Producer::push_ref) allocates nothing for an event that fits a
/// queue slot (an envelope of up to 232 bytes; larger ones go to the heap, as with
/// [`Event`](crate::Event)).
///
/// The details are any `Serialize` value (`D`), serialized as JSON during the push; JSON text
/// already checked can be given as a [`RawValue`], which is written as is.
///
/// ```
/// use auditring::EventRef;
///
/// #[derive(serde::Serialize)]
/// struct Plan {
///     plan: u64,
///     changes: u32,
/// }
///
/// let details = Plan { plan: 42, changes: 3 };
/// let event = EventRef::new("plan.applied")
///     .with_actor("user:alice@example.com")
///     .with_trace_id("4bf92f3577b34da6a3ce929d0e0e4736")
///     .with_timestamp_nanos(1_767_225_600_123_456_789)
///     .with_details(&details);
/// assert_eq!(event.kind(), "plan.applied");
/// assert_eq!(event.actor(), Some("user:alice@example.com"));
/// assert_eq!(event.details().map(|d| d.plan), Some(42));
/// ```
#[must_use]
pub struct EventRef<'a, D: ?Sized = RawValue> {
    kind: &'a str,
    actor: Option<&'a str>,
    trace_id: Option<&'a str>,
    timestamp: Option<i64>,
    details: Option<&'a D>,
}

impl<'a> EventRef<'a> {
    /// An event of the given kind, with no other field set.
    pub fn new(kind: &'a str) -> EventRef<'a> {
        EventRef {
            kind,
            actor: None,
            trace_id: None,
            timestamp: None,
            details: None,
        }
    }
}

impl<'a, D: ?Sized> EventRef<'a, D> {
    /// Sets the identity of whoever caused the event.
    pub fn with_actor(mut self, actor: &'a str) -> Self {
        self.actor = Some(actor);
        self
    }

    /// Sets the trace (or request) id the event belongs to.
    pub fn with_trace_id(mut self, trace_id: &'a str) -> Self {
        self.trace_id = Some(trace_id);
        self
    }

    /// Sets the origin timestamp, in nanoseconds since the Unix epoch (UTC). When not set, the
    /// time of the push is used.
    pub fn with_timestamp_nanos(mut self, nanos: i64) -> Self {
        self.timestamp = Some(nanos);
        self
    }

    /// Sets the origin timestamp from a [`SystemTime`]; fails outside the years 1677–2262,
    /// which nanoseconds in an `i64` cannot represent.
    pub fn with_timestamp(self, time: SystemTime) -> Result<Self, EventError> {
        Ok(self.with_timestamp_nanos(system_time_nanos(time)?))
    }

    /// Sets the details: any serializable value, serialized as JSON when the event is pushed.
    pub fn with_details<E: Serialize + ?Sized>(self, details: &'a E) -> EventRef<'a, E> {
        EventRef {
            kind: self.kind,
            actor: self.actor,
            trace_id: self.trace_id,
            timestamp: self.timestamp,
            details: Some(details),
        }
    }

    /// The event's kind.
    pub fn kind(&self) -> &'a str {
        self.kind
    }

    /// The actor, if set.
    pub fn actor(&self) -> Option<&'a str> {
        self.actor
    }

    /// The trace id, if set.
    pub fn trace_id(&self) -> Option<&'a str> {
        self.trace_id
    }

    /// The origin timestamp in nanoseconds, if set.
    pub fn timestamp_nanos(&self) -> Option<i64> {
        self.timestamp
    }

    /// The details, if set (not yet serialized).
    pub fn details(&self) -> Option<&'a D> {
        self.details
    }

    /// The fields before the details, as the envelope's encoder takes them.
    pub(crate) fn head(&self) -> Head<'a> {
        Head {
            kind: self.kind,
            actor: self.actor,
            trace_id: self.trace_id,
            timestamp: self.timestamp,
            system: false,
        }
    }
}

// By hand: a derive would require `D: Clone` (and `D: Copy`), which a reference does not need.
impl<D: ?Sized> Clone for EventRef<'_, D> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<D: ?Sized> Copy for EventRef<'_, D> {}

impl<D: ?Sized + Serialize> fmt::Debug for EventRef<'_, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let details = self
            .details
            .map(|d| serde_json::to_string(d).unwrap_or_else(|e| format!("<{e}>")));
        f.debug_struct("EventRef")
            .field("kind", &self.kind)
            .field("actor", &self.actor)
            .field("trace_id", &self.trace_id)
            .field("timestamp", &self.timestamp)
            .field("details", &details)
            .finish()
    }
}
