//! The demo's workload: realistic audit events of a chosen size, the same for auditring and for
//! the designs it is compared with.
//!
//! Each producer thread has a [`Generator`] that prepares what an application would already hold
//! (the actor's identity, the filler) once, and builds each event with its own trace id and
//! details, as an efficient application would: no formatting machinery, no needless copies.

use std::sync::Arc;

use serde::{Serialize, Serializer};

/// The structured details of a demo event.
///
/// Serialized without a tag: the compact form is `{"plan_id":N}`.
#[derive(Serialize, Clone, Debug)]
#[serde(untagged)]
pub enum Details {
    /// What the demo records by default.
    Full {
        /// The event's number in its producer's sequence.
        plan_id: u64,
        /// One of a few project names, in turn.
        project: &'static str,
        /// `production` or `staging`, in turn.
        environment: &'static str,
        /// A small number that varies from event to event.
        changes: u32,
        /// Always the same approver.
        approved_by: &'static str,
        /// Filler that brings the event to the requested size; omitted when empty.
        #[serde(skip_serializing_if = "is_empty", serialize_with = "as_str")]
        note: Arc<str>,
    },
    /// The smallest events (about 64 bytes encoded).
    Compact {
        /// The event's number in its producer's sequence.
        plan_id: u64,
    },
}

fn is_empty(s: &Arc<str>) -> bool {
    s.is_empty()
}

fn as_str<S: Serializer>(s: &Arc<str>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(s)
}

/// One demo event, as its fields (what every design under test is handed).
#[derive(Serialize, Clone, Debug)]
pub struct AuditEvent {
    /// Always `plan.applied`.
    pub kind: &'static str,
    /// The producer's user.
    pub actor: String,
    /// Hex of the producer and the event's number (of the number alone in compact events).
    pub trace_id: String,
    /// Origin time, in nanoseconds since the Unix epoch (the same for every event of a run).
    pub timestamp: i64,
    /// The structured details.
    pub details: Details,
}

const KIND: &str = "plan.applied";
const PROJECTS: [&str; 4] = ["payments-api", "ledger", "search", "identity"];
const ENVIRONMENTS: [&str; 2] = ["production", "staging"];

/// Builds the events of one producer.
pub struct Generator {
    producer: usize,
    actor: String,
    note: Arc<str>,
    timestamp: i64,
    /// Short actor and trace id, details with only the plan id: events of about 64 bytes.
    compact: bool,
}

impl Generator {
    /// Events of producer `producer` whose auditring body is about `size` bytes, with origin
    /// time `timestamp`. `size` 0 gives the natural demo event (about 200 bytes); a size below
    /// that gives compact events of about 64 bytes; a larger one pads the details.
    pub fn new(producer: usize, size: usize, timestamp: i64) -> Generator {
        let mut g = Generator {
            producer,
            actor: format!("user:dev{:02}@example.com", producer % 100),
            note: Arc::from(""),
            timestamp,
            compact: false,
        };
        let base = body_len(&g.event(0));
        if size != 0 && size < base {
            g.compact = true;
            g.actor = format!("dev{:02}", producer % 100);
        } else if size > base + 10 {
            // `,"note":""` costs 10 bytes.
            g.note = Arc::from("x".repeat(size - base - 10));
        }
        g
    }

    /// Event number `i`.
    pub fn event(&self, i: u64) -> AuditEvent {
        if self.compact {
            return AuditEvent {
                kind: KIND,
                actor: self.actor.clone(),
                trace_id: hex_u32(i as u32),
                timestamp: self.timestamp,
                details: Details::Compact { plan_id: i },
            };
        }
        AuditEvent {
            kind: KIND,
            actor: self.actor.clone(),
            trace_id: trace_id(self.producer as u64 + 1, i),
            timestamp: self.timestamp,
            details: Details::Full {
                plan_id: i,
                project: PROJECTS[i as usize % PROJECTS.len()],
                environment: ENVIRONMENTS[i as usize % ENVIRONMENTS.len()],
                changes: (i % 17) as u32,
                approved_by: "user:lead@example.com",
                note: self.note.clone(),
            },
        }
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// 8 lowercase hex digits.
fn hex_u32(v: u32) -> String {
    (0..8)
        .rev()
        .map(|shift| HEX[((v >> (shift * 4)) & 0xf) as usize] as char)
        .collect()
}

/// 32 lowercase hex digits: `hi` then `lo`, 16 digits each.
fn trace_id(hi: u64, lo: u64) -> String {
    let mut out = String::with_capacity(32);
    for word in [hi, lo] {
        for shift in (0..16).rev() {
            out.push(HEX[((word >> (shift * 4)) & 0xf) as usize] as char);
        }
    }
    out
}

/// Size of the encoded auditring body of `e`.
pub fn body_len(e: &AuditEvent) -> usize {
    20 + e.kind.len()
        + e.actor.len()
        + e.trace_id.len()
        + serde_json::to_string(&e.details).map_or(0, |s| s.len())
}

/// The auditring event for a workload event, taking its strings over. Serializes the details as
/// JSON: part of the producer's work, as it is for the other designs.
pub fn into_event(e: AuditEvent) -> auditring::Event {
    auditring::Event::new(e.kind)
        .with_actor(e.actor)
        .with_trace_id(e.trace_id)
        .with_timestamp_nanos(e.timestamp)
        .with_details(&e.details)
        .expect("demo details serialize")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_event_is_about_200_bytes_and_sizes_are_honoured() {
        let e = Generator::new(1, 0, 1).event(12345);
        let len = body_len(&e);
        assert!((180..=230).contains(&len), "{len}");
        assert_eq!(e.trace_id, "00000000000000020000000000003039");
        let compact = Generator::new(0, 64, 1);
        for i in [0, 1000, 999_999] {
            let len = body_len(&compact.event(i));
            assert!((56..=70).contains(&len), "{len}");
        }
        for size in [256, 1024, 4096] {
            let g = Generator::new(3, size, 1);
            assert_eq!(body_len(&g.event(0)), size);
            // Numbers and names vary a little from event to event.
            let e = g.event(7);
            assert!(body_len(&e).abs_diff(size) <= 8, "{}", body_len(&e));
            let event = into_event(e);
            assert_eq!(event.kind(), KIND);
        }
    }
}
