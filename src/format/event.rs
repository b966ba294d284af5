//! The audit event and its canonical binary envelope (the record *body*).
//!
//! An [`Event`] is what a caller pushes: a kind, and optionally an actor identity, a trace id,
//! the origin timestamp and structured details. On push it is encoded, on the caller's thread,
//! into a body whose SHA-256 is the record's leaf hash, so every field is covered by the chain.
//!
//! The body layout (all integers little-endian, see `docs/FORMAT.md`):
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 1 | envelope version, `1` |
//! | 1 | 1 | flags: bit 0 actor present, bit 1 trace id present, bit 2 details present |
//! | 2 | 2 | kind length `K` (1 ..= 65535) |
//! | 4 | 2 | actor length `A` (0 when absent) |
//! | 6 | 2 | trace id length `T` (0 when absent) |
//! | 8 | 8 | origin timestamp, signed nanoseconds since the Unix epoch, UTC |
//! | 16 | 4 | details length `D` (0 when absent) |
//! | 20 | K | kind, UTF-8 |
//! | 20+K | A | actor, UTF-8 |
//! | 20+K+A | T | trace id, UTF-8 |
//! | 20+K+A+T | D | details, UTF-8 JSON text exactly as given |
//!
//! JSON is used for the details only; the envelope is fixed-width binary so that a reader never
//! parses JSON to find the kind, actor, trace id or time of an event.

use std::borrow::Cow;
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use crate::format::hash::Hash;

/// Version byte of the envelope described in the module docs.
pub(crate) const BODY_VERSION: u8 = 1;
// The fixed part of the envelope (`docs/FORMAT.md` §6): where each field starts.
/// `version`: `u8`, [`BODY_VERSION`].
const BODY_VERSION_AT: usize = 0;
/// `flags`: `u8`.
const BODY_FLAGS_AT: usize = 1;
/// `K`: `u16`, the kind's length.
const BODY_KIND_LEN_AT: usize = 2;
/// `A`: `u16`, the actor's length.
const BODY_ACTOR_LEN_AT: usize = 4;
/// `T`: `u16`, the trace id's length.
const BODY_TRACE_LEN_AT: usize = 6;
/// `timestamp`: `i64`.
const BODY_TIMESTAMP_AT: usize = 8;
/// `D`: `u32`, the details' length.
const BODY_DETAILS_LEN_AT: usize = 16;
/// Length of the fixed part of the envelope; the kind, actor, trace id and details follow.
pub(crate) const BODY_FIXED_LEN: usize = 20;
const FLAG_ACTOR: u8 = 1;
const FLAG_TRACE: u8 = 2;
const FLAG_DETAILS: u8 = 4;
const KNOWN_FLAGS: u8 = FLAG_ACTOR | FLAG_TRACE | FLAG_DETAILS;

/// Kinds starting with this prefix are reserved for records the library writes itself.
pub const RESERVED_KIND_PREFIX: &str = "auditring.";

/// One audit event: who did what, when, in which trace, with which details.
///
/// Only the kind is required. The timestamp is the *origin* time as the caller gives it, in
/// nanoseconds since the Unix epoch (UTC); when not given, the time of the push is used. It is
/// stored exactly, never rounded.
///
/// ```
/// use auditring::Event;
/// # fn main() -> Result<(), auditring::EventError> {
/// let event = Event::new("plan.applied")
///     .with_actor("user:alice@example.com")
///     .with_trace_id("4bf92f3577b34da6a3ce929d0e0e4736")
///     .with_timestamp_nanos(1_767_225_600_123_456_789)
///     .with_details(&serde_json::json!({ "plan": 42, "changes": 3 }))?;
/// assert_eq!(event.kind(), "plan.applied");
/// assert_eq!(event.actor(), Some("user:alice@example.com"));
/// assert_eq!(event.details_json(), Some(r#"{"changes":3,"plan":42}"#));
/// # Ok(()) }
/// ```
#[must_use]
#[derive(Clone, PartialEq, Eq)]
pub struct Event {
    kind: Cow<'static, str>,
    actor: Option<String>,
    trace_id: Option<String>,
    timestamp: Option<i64>,
    /// Always valid JSON text: checked (or produced by `serde_json`) when it was set.
    details: Option<String>,
    /// Written by the library itself: may use the reserved kind prefix.
    system: bool,
}

impl Event {
    /// An event of the given kind, with no other field set.
    pub fn new(kind: impl Into<Cow<'static, str>>) -> Event {
        Event {
            kind: kind.into(),
            actor: None,
            trace_id: None,
            timestamp: None,
            details: None,
            system: false,
        }
    }

    /// The event as one JSON line, newline included, in the form `auditring append` reads:
    /// `{"kind":..,"actor":..,"trace_id":..,"timestamp":..,"details":..}`, absent fields left
    /// out, the timestamp in nanoseconds. The details are the event's JSON text, with any line
    /// break in it (whitespace between JSON tokens) written as a space.
    pub fn to_json_line(&self) -> String {
        let mut out = String::from("{\"kind\":");
        let string = |out: &mut String, s: &str| {
            out.push_str(&serde_json::to_string(s).expect("a string serializes"));
        };
        string(&mut out, &self.kind);
        for (name, value) in [("actor", &self.actor), ("trace_id", &self.trace_id)] {
            if let Some(v) = value {
                out.push_str(",\"");
                out.push_str(name);
                out.push_str("\":");
                string(&mut out, v);
            }
        }
        if let Some(t) = self.timestamp {
            out.push_str(",\"timestamp\":");
            out.push_str(&t.to_string());
        }
        if let Some(d) = &self.details {
            out.push_str(",\"details\":");
            out.extend(
                d.chars()
                    .map(|c| if matches!(c, '\n' | '\r') { ' ' } else { c }),
            );
        }
        out.push_str("}\n");
        out
    }

    /// The event a body encodes, with the timestamp it was given (or stamped with). For bodies
    /// this library encoded, which always decode; anything else becomes an event of kind
    /// `auditring.undecodable` with the bytes in hex, so that nothing is dropped.
    pub(crate) fn from_body(body: &[u8]) -> Event {
        if let Ok(env) = decode_body(body) {
            Event {
                kind: Cow::Owned(env.kind.to_owned()),
                actor: env.actor.map(str::to_owned),
                trace_id: env.trace_id.map(str::to_owned),
                timestamp: Some(env.timestamp),
                details: env.details.map(str::to_owned),
                system: false,
            }
        } else {
            let hex: String = body.iter().map(|b| format!("{b:02x}")).collect();
            Event::system("auditring.undecodable", format!("\"{hex}\""))
        }
    }

    /// A record the library writes about the log itself, with a reserved kind.
    pub(crate) fn system(kind: &'static str, details: String) -> Event {
        debug_assert!(kind.starts_with(RESERVED_KIND_PREFIX));
        Event {
            details: Some(details),
            system: true,
            ..Event::new(kind)
        }
    }

    /// Sets the identity of whoever caused the event.
    pub fn with_actor(mut self, actor: impl Into<String>) -> Event {
        self.actor = Some(actor.into());
        self
    }

    /// Sets the trace (or correlation) id the event belongs to.
    pub fn with_trace_id(mut self, trace_id: impl Into<String>) -> Event {
        self.trace_id = Some(trace_id.into());
        self
    }

    /// Sets the origin timestamp, in nanoseconds since the Unix epoch (UTC).
    pub fn with_timestamp_nanos(mut self, nanos: i64) -> Event {
        self.timestamp = Some(nanos);
        self
    }

    /// Sets the origin timestamp from a [`SystemTime`]; fails outside the years 1677–2262,
    /// which nanoseconds in an `i64` cannot represent.
    pub fn with_timestamp(self, time: SystemTime) -> Result<Event, EventError> {
        Ok(self.with_timestamp_nanos(system_time_nanos(time)?))
    }

    /// Sets the details to any serializable value, encoded as JSON.
    pub fn with_details<T: Serialize + ?Sized>(mut self, details: &T) -> Result<Event, EventError> {
        self.details = Some(serde_json::to_string(details).map_err(EventError::Details)?);
        Ok(self)
    }

    /// Sets the details to JSON text, which is checked and then stored byte for byte.
    pub fn with_details_json(mut self, json: impl Into<String>) -> Result<Event, EventError> {
        let json = json.into();
        serde_json::from_str::<serde::de::IgnoredAny>(&json).map_err(EventError::Details)?;
        self.details = Some(json);
        Ok(self)
    }

    /// Sets the details to an already parsed raw JSON value.
    pub fn with_details_raw(mut self, json: Box<RawValue>) -> Event {
        self.details = Some(String::from(Box::<str>::from(json)));
        self
    }

    /// The event's kind.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The actor identity, if set.
    pub fn actor(&self) -> Option<&str> {
        self.actor.as_deref()
    }

    /// The trace id, if set.
    pub fn trace_id(&self) -> Option<&str> {
        self.trace_id.as_deref()
    }

    /// The origin timestamp in nanoseconds, if set (otherwise the push time is used).
    pub fn timestamp_nanos(&self) -> Option<i64> {
        self.timestamp
    }

    /// The details as JSON text, if set.
    pub fn details_json(&self) -> Option<&str> {
        self.details.as_deref()
    }

    /// Length of the encoded body.
    pub(crate) fn body_len(&self) -> usize {
        BODY_FIXED_LEN
            + self.kind.len()
            + self.actor.as_ref().map_or(0, String::len)
            + self.trace_id.as_ref().map_or(0, String::len)
            + self.details.as_ref().map_or(0, String::len)
    }

    /// The fields before the details, as the envelope's encoder takes them.
    fn head(&self) -> Head<'_> {
        Head {
            kind: &self.kind,
            actor: self.actor.as_deref(),
            trace_id: self.trace_id.as_deref(),
            timestamp: self.timestamp,
            system: self.system,
        }
    }

    /// Checks the field lengths against the envelope's limits and `max_body`.
    pub(crate) fn check(&self, max_body: usize) -> Result<usize, EventError> {
        self.head().check()?;
        let len = self.body_len();
        if len > max_body {
            return Err(EventError::TooLarge { len, max: max_body });
        }
        Ok(len)
    }

    /// Writes the body into `out`, which must be exactly `self.body_len()` bytes, using
    /// `default_time` when no origin timestamp was given.
    pub(crate) fn encode_into(&self, default_time: i64, out: &mut [u8]) {
        debug_assert_eq!(out.len(), self.body_len());
        let at = self.head().write(default_time, out);
        if let Some(details) = &self.details {
            out[at..].copy_from_slice(details.as_bytes());
            set_details(out, details.len());
        }
    }
}

/// The fields of an event before its details: what [`Event`] and
/// [`EventRef`](crate::EventRef) both encode the same way.
pub(crate) struct Head<'a> {
    pub(crate) kind: &'a str,
    pub(crate) actor: Option<&'a str>,
    pub(crate) trace_id: Option<&'a str>,
    pub(crate) timestamp: Option<i64>,
    /// Written by the library itself: may use the reserved kind prefix.
    pub(crate) system: bool,
}

impl Head<'_> {
    /// Bytes of the envelope up to the details.
    pub(crate) fn len(&self) -> usize {
        BODY_FIXED_LEN
            + self.kind.len()
            + self.actor.map_or(0, str::len)
            + self.trace_id.map_or(0, str::len)
    }

    /// Checks the kind and the field lengths against the envelope's limits.
    pub(crate) fn check(&self) -> Result<(), EventError> {
        if self.kind.is_empty() {
            return Err(EventError::EmptyKind);
        }
        if self.kind.starts_with(RESERVED_KIND_PREFIX) && !self.system {
            return Err(EventError::ReservedKind(self.kind.to_string()));
        }
        for (field, len) in [
            ("kind", self.kind.len()),
            ("actor", self.actor.map_or(0, str::len)),
            ("trace_id", self.trace_id.map_or(0, str::len)),
        ] {
            if len > usize::from(u16::MAX) {
                return Err(EventError::FieldTooLong {
                    field,
                    len,
                    max: usize::from(u16::MAX),
                });
            }
        }
        Ok(())
    }

    /// Writes the envelope up to the details into the start of `out` (at least
    /// [`Head::len`] bytes), with no details (flag clear, length 0; see [`set_details`]), using
    /// `default_time` when no origin timestamp was given. Returns [`Head::len`]. The fields
    /// must have passed [`Head::check`].
    pub(crate) fn write(&self, default_time: i64, out: &mut [u8]) -> usize {
        let mut flags = 0u8;
        if self.actor.is_some() {
            flags |= FLAG_ACTOR;
        }
        if self.trace_id.is_some() {
            flags |= FLAG_TRACE;
        }
        let actor = self.actor.unwrap_or("");
        let trace = self.trace_id.unwrap_or("");
        let mut put = |at: usize, bytes: &[u8]| out[at..at + bytes.len()].copy_from_slice(bytes);
        put(BODY_VERSION_AT, &[BODY_VERSION]);
        put(BODY_FLAGS_AT, &[flags]);
        // The casts are exact: `check` bounded these lengths by u16::MAX.
        put(BODY_KIND_LEN_AT, &(self.kind.len() as u16).to_le_bytes());
        put(BODY_ACTOR_LEN_AT, &(actor.len() as u16).to_le_bytes());
        put(BODY_TRACE_LEN_AT, &(trace.len() as u16).to_le_bytes());
        put(
            BODY_TIMESTAMP_AT,
            &self.timestamp.unwrap_or(default_time).to_le_bytes(),
        );
        put(BODY_DETAILS_LEN_AT, &0u32.to_le_bytes());
        let mut at = BODY_FIXED_LEN;
        for part in [self.kind.as_bytes(), actor.as_bytes(), trace.as_bytes()] {
            out[at..at + part.len()].copy_from_slice(part);
            at += part.len();
        }
        debug_assert_eq!(at, self.len());
        at
    }
}

/// Marks the details present in an envelope written by [`Head::write`], and records their
/// length `len` (at most `u32::MAX`: the maximum event size bounds it far below).
pub(crate) fn set_details(body: &mut [u8], len: usize) {
    debug_assert!(u32::try_from(len).is_ok());
    body[BODY_FLAGS_AT] |= FLAG_DETAILS;
    body[BODY_DETAILS_LEN_AT..BODY_DETAILS_LEN_AT + 4].copy_from_slice(&(len as u32).to_le_bytes());
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("kind", &self.kind)
            .field("actor", &self.actor)
            .field("trace_id", &self.trace_id)
            .field("timestamp", &self.timestamp)
            .field("details", &self.details)
            .finish()
    }
}

/// Nanoseconds since the Unix epoch of `time`, if an `i64` can hold them.
pub(crate) fn system_time_nanos(time: SystemTime) -> Result<i64, EventError> {
    let nanos = match time.duration_since(UNIX_EPOCH) {
        Ok(d) => i128::try_from(d.as_nanos()).ok(),
        Err(e) => i128::try_from(e.duration().as_nanos()).ok().map(|n| -n),
    };
    nanos
        .and_then(|n| i64::try_from(n).ok())
        .ok_or(EventError::TimestampOutOfRange)
}

/// The details of a record the library writes (`docs/FORMAT.md` §14.1, §16.1), of kind `kind`,
/// read as the JSON object `T`; or why they are not: another kind, no details, or details that
/// are not such an object.
pub(crate) fn system_details<T: serde::de::DeserializeOwned>(
    body: &[u8],
    kind: &str,
) -> Result<T, String> {
    let envelope = decode_body(body).map_err(|e| e.to_string())?;
    if envelope.kind != kind {
        return Err(format!("a record of kind {:?}", envelope.kind));
    }
    let text = envelope.details.ok_or("no details")?;
    // An object (serde would take an array of the members in order too).
    if !text
        .trim_start_matches([' ', '\t', '\n', '\r'])
        .starts_with('{')
    {
        return Err("the details are not a JSON object".into());
    }
    serde_json::from_str(text).map_err(|e| e.to_string())
}

/// The current time in nanoseconds since the Unix epoch.
pub(crate) fn now_nanos() -> i64 {
    // The clock is after 1970 and before 2262 on any machine this runs on; saturate otherwise.
    system_time_nanos(SystemTime::now()).unwrap_or(i64::MAX)
}

/// Why an event could not be built or encoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    /// The kind is the empty string.
    #[error("the event kind is empty")]
    EmptyKind,
    /// The kind uses the prefix reserved for the library's own records.
    #[error("the event kind {0:?} uses the reserved prefix \"auditring.\"")]
    ReservedKind(String),
    /// A string field is longer than the envelope allows.
    #[error("the {field} is {len} bytes long; at most {max} are allowed")]
    FieldTooLong {
        /// Which field.
        field: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The encoded event is larger than the ring's maximum event size.
    #[error("the encoded event is {len} bytes; the maximum event size is {max}")]
    TooLarge {
        /// Encoded size in bytes.
        len: usize,
        /// The configured maximum.
        max: usize,
    },
    /// The details could not be serialized, or the given text is not JSON.
    #[error("invalid event details: {0}")]
    Details(#[source] serde_json::Error),
    /// The timestamp cannot be represented as nanoseconds in an `i64`.
    #[error("the timestamp is outside the years 1677-2262 that nanoseconds in an i64 can hold")]
    TimestampOutOfRange,
}

/// A record read back from a log, borrowing its strings from a read buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordRef<'a> {
    /// Sequence number, gapless from the log's first seq.
    pub seq: u64,
    /// Origin timestamp, nanoseconds since the Unix epoch (UTC).
    pub timestamp: i64,
    /// The event kind.
    pub kind: &'a str,
    /// The actor identity, if one was given.
    pub actor: Option<&'a str>,
    /// The trace id, if one was given.
    pub trace_id: Option<&'a str>,
    /// The details as the JSON text that was pushed, if any.
    pub details: Option<&'a str>,
    /// `SHA-256(body)`.
    pub leaf: Hash,
    /// The chain hash after this record.
    pub chain: Hash,
}

impl RecordRef<'_> {
    /// Appends the record as one line of JSON (the line of a JSONL export, see
    /// `docs/FORMAT.md`), newline included:
    ///
    /// ```text
    /// {"seq":7,"timestamp":1700000000000000000,"kind":"user.login","actor":"alice","trace_id":null,"leaf":"…","chain":"…","details":{"ip":"10.0.0.1"}}
    /// ```
    ///
    /// The fields come in this order; `actor` and `trace_id` are `null` when absent; `details`
    /// is last and is the event's JSON text byte for byte (so the exact bytes that were hashed
    /// can be read back from the line), or, if that text has a line break in it, `details_raw`
    /// holds it as a JSON string instead; neither appears when the event has no details.
    pub fn write_json_line(&self, out: &mut Vec<u8>) {
        use std::io::Write as _;
        let string = |out: &mut Vec<u8>, s: &str| {
            // Writing JSON into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut *out, s);
        };
        let optional = |out: &mut Vec<u8>, s: Option<&str>| match s {
            Some(s) => string(out, s),
            None => out.extend_from_slice(b"null"),
        };
        let _ = write!(
            out,
            "{{\"seq\":{},\"timestamp\":{},\"kind\":",
            self.seq, self.timestamp
        );
        string(out, self.kind);
        out.extend_from_slice(b",\"actor\":");
        optional(out, self.actor);
        out.extend_from_slice(b",\"trace_id\":");
        optional(out, self.trace_id);
        let _ = write!(
            out,
            ",\"leaf\":\"{}\",\"chain\":\"{}\"",
            self.leaf, self.chain
        );
        match self.details {
            Some(d) if d.contains(['\n', '\r']) => {
                out.extend_from_slice(b",\"details_raw\":");
                string(out, d);
            }
            Some(d) => {
                out.extend_from_slice(b",\"details\":");
                out.extend_from_slice(d.as_bytes());
            }
            None => {}
        }
        out.extend_from_slice(b"}\n");
    }

    /// Copies the record out of the read buffer.
    pub fn to_record(&self) -> Record {
        Record {
            seq: self.seq,
            timestamp: self.timestamp,
            kind: self.kind.to_owned(),
            actor: self.actor.map(str::to_owned),
            trace_id: self.trace_id.map(str::to_owned),
            details: self.details.map(str::to_owned),
            leaf: self.leaf,
            chain: self.chain,
        }
    }
}

/// A record read back from a log.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Record {
    /// Sequence number, gapless from the log's first seq.
    pub seq: u64,
    /// Origin timestamp, nanoseconds since the Unix epoch (UTC).
    pub timestamp: i64,
    /// The event kind.
    pub kind: String,
    /// The actor identity, if one was given.
    pub actor: Option<String>,
    /// The trace id, if one was given.
    pub trace_id: Option<String>,
    /// The details as the JSON text that was pushed, if any.
    pub details: Option<String>,
    /// `SHA-256(body)`.
    pub leaf: Hash,
    /// The chain hash after this record.
    pub chain: Hash,
}

impl Record {
    /// Deserializes the details into `T`; `Ok(None)` when the event had none.
    pub fn details_as<T: DeserializeOwned>(&self) -> Result<Option<T>, serde_json::Error> {
        self.details
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
    }

    /// The event this record holds, with its origin timestamp.
    pub fn to_event(&self) -> Event {
        Event {
            kind: Cow::Owned(self.kind.clone()),
            actor: self.actor.clone(),
            trace_id: self.trace_id.clone(),
            timestamp: Some(self.timestamp),
            details: self.details.clone(),
            system: false,
        }
    }
}

/// What is wrong with a body that does not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BodyError {
    /// Shorter than the fixed part of the envelope.
    #[error("event body is {0} bytes, shorter than the 20-byte envelope")]
    Short(usize),
    /// Unknown envelope version.
    #[error("unknown event envelope version {0}")]
    Version(u8),
    /// Reserved flag bits set, or a length given for an absent field.
    #[error("invalid envelope flags {0:#04x}")]
    Flags(u8),
    /// The kind is empty.
    #[error("event kind is empty")]
    EmptyKind,
    /// The field lengths do not add up to the body length.
    #[error("field lengths add up to {fields} bytes but the body is {body}")]
    Lengths {
        /// Sum of the fixed part and the declared field lengths.
        fields: usize,
        /// The body's length.
        body: usize,
    },
    /// A string field is not UTF-8.
    #[error("the {0} is not valid UTF-8")]
    Utf8(&'static str),
}

/// The decoded envelope of a body, borrowing its strings.
pub(crate) struct Envelope<'a> {
    pub(crate) timestamp: i64,
    pub(crate) kind: &'a str,
    pub(crate) actor: Option<&'a str>,
    pub(crate) trace_id: Option<&'a str>,
    pub(crate) details: Option<&'a str>,
}

impl<'a> Envelope<'a> {
    /// The record this envelope is the body of, at `seq`, with its hashes.
    pub(crate) fn record(&self, seq: u64, leaf: Hash, chain: Hash) -> RecordRef<'a> {
        RecordRef {
            seq,
            timestamp: self.timestamp,
            kind: self.kind,
            actor: self.actor,
            trace_id: self.trace_id,
            details: self.details,
            leaf,
            chain,
        }
    }
}

/// Decodes and checks a body; never panics, whatever the bytes.
pub(crate) fn decode_body(body: &[u8]) -> Result<Envelope<'_>, BodyError> {
    if body.len() < BODY_FIXED_LEN {
        return Err(BodyError::Short(body.len()));
    }
    if body[BODY_VERSION_AT] != BODY_VERSION {
        return Err(BodyError::Version(body[BODY_VERSION_AT]));
    }
    let flags = body[BODY_FLAGS_AT];
    let u16_at = |at: usize| usize::from(u16::from_le_bytes([body[at], body[at + 1]]));
    let kind_len = u16_at(BODY_KIND_LEN_AT);
    let actor_len = u16_at(BODY_ACTOR_LEN_AT);
    let trace_len = u16_at(BODY_TRACE_LEN_AT);
    let timestamp = i64::from_le_bytes(
        body[BODY_TIMESTAMP_AT..BODY_TIMESTAMP_AT + 8]
            .try_into()
            .expect("8 bytes"),
    );
    let details_len = u32::from_le_bytes(
        body[BODY_DETAILS_LEN_AT..BODY_DETAILS_LEN_AT + 4]
            .try_into()
            .expect("4 bytes"),
    ) as usize;
    let absent_with_len = (flags & FLAG_ACTOR == 0 && actor_len != 0)
        || (flags & FLAG_TRACE == 0 && trace_len != 0)
        || (flags & FLAG_DETAILS == 0 && details_len != 0);
    if flags & !KNOWN_FLAGS != 0 || absent_with_len {
        return Err(BodyError::Flags(flags));
    }
    if kind_len == 0 {
        return Err(BodyError::EmptyKind);
    }
    let fields = BODY_FIXED_LEN + kind_len + actor_len + trace_len + details_len;
    if fields != body.len() {
        return Err(BodyError::Lengths {
            fields,
            body: body.len(),
        });
    }
    let mut at = BODY_FIXED_LEN;
    let mut take = |len: usize, name: &'static str| {
        let s = std::str::from_utf8(&body[at..at + len]).map_err(|_| BodyError::Utf8(name));
        at += len;
        s
    };
    let kind = take(kind_len, "kind")?;
    let actor = take(actor_len, "actor")?;
    let trace = take(trace_len, "trace id")?;
    let details = take(details_len, "details")?;
    Ok(Envelope {
        timestamp,
        kind,
        actor: (flags & FLAG_ACTOR != 0).then_some(actor),
        trace_id: (flags & FLAG_TRACE != 0).then_some(trace),
        details: (flags & FLAG_DETAILS != 0).then_some(details),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(e: &Event, t: i64) -> Vec<u8> {
        let mut out = vec![0; e.body_len()];
        e.encode_into(t, &mut out);
        out
    }

    #[test]
    fn round_trip_all_fields() {
        let e = Event::new("plan.applied")
            .with_actor("alice")
            .with_trace_id("t-1")
            .with_timestamp_nanos(-5)
            .with_details(&serde_json::json!({"a": [1, 2]}))
            .unwrap();
        let body = encode(&e, 99);
        let env = decode_body(&body).unwrap();
        assert_eq!(env.kind, "plan.applied");
        assert_eq!(env.actor, Some("alice"));
        assert_eq!(env.trace_id, Some("t-1"));
        assert_eq!(env.timestamp, -5);
        assert_eq!(env.details, Some(r#"{"a":[1,2]}"#));
    }

    #[test]
    fn absent_and_empty_are_distinct() {
        let absent = encode(&Event::new("k"), 1);
        let empty = encode(&Event::new("k").with_actor(""), 1);
        assert_ne!(absent, empty);
        assert_eq!(decode_body(&absent).unwrap().actor, None);
        assert_eq!(decode_body(&empty).unwrap().actor, Some(""));
        assert_eq!(decode_body(&absent).unwrap().timestamp, 1);
    }

    #[test]
    fn details_json_is_checked_and_kept_verbatim() {
        assert!(Event::new("k").with_details_json("{nope").is_err());
        let e = Event::new("k").with_details_json("{ \"x\" : 1 }").unwrap();
        assert_eq!(e.details_json(), Some("{ \"x\" : 1 }"));
    }

    #[test]
    fn json_lines_keep_the_hashed_bytes() {
        let leaf = Hash([1; 32]);
        let chain = Hash([2; 32]);
        let rec = |actor, trace, details| RecordRef {
            seq: 7,
            timestamp: -3,
            kind: "k\"ind",
            actor,
            trace_id: trace,
            details,
            leaf,
            chain,
        };
        let line = |r: RecordRef<'_>| {
            let mut out = Vec::new();
            r.write_json_line(&mut out);
            String::from_utf8(out).unwrap()
        };
        let l = line(rec(Some("alice"), None, Some("{ \"a\" : [1, 2] }")));
        assert_eq!(
            l,
            format!(
                "{{\"seq\":7,\"timestamp\":-3,\"kind\":\"k\\\"ind\",\"actor\":\"alice\",\"trace_id\":null,\"leaf\":\"{leaf}\",\"chain\":\"{chain}\",\"details\":{{ \"a\" : [1, 2] }}}}\n"
            )
        );
        let v: serde_json::Value = serde_json::from_str(&l).unwrap();
        assert_eq!(v["details"]["a"][1], 2);
        let l = line(rec(None, Some(""), Some("{\n}")));
        let v: serde_json::Value = serde_json::from_str(&l).unwrap();
        assert_eq!(v["details_raw"], "{\n}");
        assert_eq!(v["trace_id"], "");
        assert!(v.get("details").is_none());
        assert_eq!(l.matches('\n').count(), 1);
        let l = line(rec(None, None, None));
        assert!(l.ends_with(&format!("\"chain\":\"{chain}\"}}\n")));
    }

    #[test]
    fn limits() {
        assert!(matches!(
            Event::new("").check(1000),
            Err(EventError::EmptyKind)
        ));
        assert!(matches!(
            Event::new("auditring.pruned").check(1000),
            Err(EventError::ReservedKind(_))
        ));
        assert!(matches!(
            Event::new("k")
                .with_actor("x".repeat(70_000))
                .check(1 << 20),
            Err(EventError::FieldTooLong { field: "actor", .. })
        ));
        assert!(matches!(
            Event::new("k").with_actor("x".repeat(100)).check(50),
            Err(EventError::TooLarge { .. })
        ));
    }

    #[test]
    fn decode_rejects_garbage_without_panicking() {
        let good = encode(
            &Event::new("kind")
                .with_actor("a")
                .with_details_json("1")
                .unwrap(),
            3,
        );
        for len in 0..good.len() {
            assert!(decode_body(&good[..len]).is_err());
        }
        for i in 0..good.len() {
            for bit in 0..8 {
                let mut bad = good.clone();
                bad[i] ^= 1 << bit;
                // Either rejected or decoded to something different; never a panic.
                if let Ok(env) = decode_body(&bad) {
                    let changed = env.timestamp != 3
                        || env.kind != "kind"
                        || env.actor != Some("a")
                        || env.trace_id.is_some()
                        || env.details != Some("1");
                    assert!(changed, "flip of byte {i} bit {bit} went unnoticed");
                }
            }
        }
    }
}
