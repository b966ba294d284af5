//! The demo's workload: realistic audit events of a chosen size, the same for auditring and for
//! the designs it is compared with.

use serde::Serialize;

/// The structured details of a demo event.
#[derive(Serialize, Clone, Debug)]
pub struct Details {
    pub plan_id: u64,
    pub project: &'static str,
    pub environment: &'static str,
    pub changes: u32,
    pub approved_by: &'static str,
    /// Filler that brings the event to the requested size; omitted when empty.
    #[serde(skip_serializing_if = "str::is_empty")]
    pub note: String,
}

/// One demo event, as its fields (what every design under test is handed).
#[derive(Serialize, Clone, Debug)]
pub struct AuditEvent {
    pub kind: &'static str,
    pub actor: String,
    pub trace_id: String,
    pub timestamp: i64,
    pub details: Details,
}

const KIND: &str = "plan.applied";
const PROJECTS: [&str; 4] = ["payments-api", "ledger", "search", "identity"];
const ENVIRONMENTS: [&str; 2] = ["production", "staging"];

/// Size of the encoded auditring body of an event with an empty note.
fn base_body_len(e: &AuditEvent) -> usize {
    20 + e.kind.len()
        + e.actor.len()
        + e.trace_id.len()
        + serde_json::to_string(&e.details).map_or(0, |s| s.len())
}

/// Event number `i` of producer `producer`, padded so that its auditring body is about `size`
/// bytes (never less than the natural ~200).
pub fn event(producer: usize, i: u64, size: usize, timestamp: i64) -> AuditEvent {
    let mut e = AuditEvent {
        kind: KIND,
        actor: format!("user:dev{:02}@example.com", producer % 100),
        trace_id: format!("{:016x}{:016x}", producer as u64 + 1, i),
        timestamp,
        details: Details {
            plan_id: i,
            project: PROJECTS[i as usize % PROJECTS.len()],
            environment: ENVIRONMENTS[i as usize % ENVIRONMENTS.len()],
            changes: (i % 17) as u32,
            approved_by: "user:lead@example.com",
            note: String::new(),
        },
    };
    let base = base_body_len(&e);
    if size > base + 10 {
        // `,"note":""` costs 10 bytes.
        e.details.note = "x".repeat(size - base - 10);
    }
    e
}

/// The auditring event for a workload event. Serializes the details as JSON: part of the
/// producer's work, as it is for the other designs.
pub fn to_event(e: &AuditEvent) -> auditring::Event {
    auditring::Event::new(e.kind)
        .actor(e.actor.clone())
        .trace_id(e.trace_id.clone())
        .timestamp_nanos(e.timestamp)
        .details(&e.details)
        .expect("demo details serialize")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_event_is_about_200_bytes_and_sizes_are_honoured() {
        let e = event(1, 12345, 0, 1);
        let len = base_body_len(&e);
        assert!((180..=230).contains(&len), "{len}");
        for size in [256, 1024, 4096] {
            let e = event(3, 7, size, 1);
            let body = 20
                + e.kind.len()
                + e.actor.len()
                + e.trace_id.len()
                + serde_json::to_string(&e.details).unwrap().len();
            assert_eq!(body, size);
        }
    }
}
