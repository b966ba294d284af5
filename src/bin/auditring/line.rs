//! One line of `auditring append`'s input: a JSON object, parsed into an event.
//!
//! Kept apart from the command so that the fuzz harness (`tests/fuzz_harness/`) runs this very
//! code on hostile input; it depends only on the library, serde and `super::timearg`.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::timearg::parse_rfc3339;

/// One input line.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Line {
    kind: String,
    #[serde(default)]
    actor: Option<String>,
    #[serde(default)]
    trace_id: Option<String>,
    #[serde(default)]
    timestamp: Option<Timestamp>,
    /// Present (even as `null`) or absent, as in an export line.
    #[serde(default, deserialize_with = "present_raw")]
    details: Option<Box<RawValue>>,
}

/// A member that is there, whatever its value: `"details":null` is details that are `null`.
fn present_raw<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Box<RawValue>>, D::Error> {
    Box::<RawValue>::deserialize(d).map(Some)
}

/// A timestamp as integer nanoseconds or RFC 3339 text.
#[derive(Deserialize)]
#[serde(untagged)]
enum Timestamp {
    Nanos(i64),
    Text(String),
}

/// Parses one JSON line into an event.
pub fn parse_line(text: &str) -> Result<auditring::Event, String> {
    // A derived struct also deserializes from a JSON array of its fields in order; a line must be
    // an object (found by fuzzing: `["k"]` was appended as an event of kind "k").
    if !text
        .trim_start_matches([' ', '\t', '\n', '\r'])
        .starts_with('{')
    {
        return Err("a line must be a JSON object".into());
    }
    let line: Line = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let mut event = auditring::Event::new(line.kind);
    if let Some(a) = line.actor {
        event = event.actor(a);
    }
    if let Some(t) = line.trace_id {
        event = event.trace_id(t);
    }
    match line.timestamp {
        Some(Timestamp::Nanos(n)) => event = event.timestamp_nanos(n),
        // Text must be RFC 3339: a string of digits is not taken for nanoseconds (it may as well
        // be seconds), only a JSON integer is.
        Some(Timestamp::Text(s)) => {
            let n = parse_rfc3339(&s).map_err(|e| format!("timestamp {e}"))?;
            event = event.timestamp_nanos(n);
        }
        None => {}
    }
    if let Some(d) = line.details {
        event = event.details_raw(d);
    }
    Ok(event)
}
