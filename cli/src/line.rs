//! One line of `auditring append`'s input: a JSON object, parsed into an event; and the reader
//! that splits the input into lines without ever holding more than one bounded line.
//!
//! Kept apart from the command, in the library of this package, so that the fuzz harness
//! (`auditring_testkit::fuzz`) runs this very code on hostile input; it depends only on the
//! library, serde and [`crate::timearg`].
//!
//! Input rules, beyond JSON itself (`auditring append --help` says them too):
//!
//! * A line is at most [`max_line_len`] bytes: [`LINE_LEN_FACTOR`] times the ring's maximum event
//!   size, plus [`LINE_LEN_SLACK`]. A JSON line is longer than the event it encodes (escapes:
//!   `\u0001` is six bytes for one; whitespace, member names), so the bound leaves room for any
//!   plausible line, while a longer one is refused as soon as the bound is passed, without being
//!   read further: input with no newline at all costs bounded memory.
//! * A UTF-8 byte order mark (U+FEFF) at the very start of the input is skipped (some editors
//!   and shells write one); anywhere else it is an error.
//! * A `\u` escape of a lone UTF-16 surrogate (`\ud800` not followed by a low surrogate, or a low
//!   one alone) is refused anywhere in a line, details included: it stands for no character, so
//!   the text is not Unicode, and JSON parsers disagree on what to make of it.

use std::fmt;
use std::io::{self, BufRead};

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::timearg::parse_rfc3339;

/// A line may be this many times the ring's maximum event size (see [`max_line_len`]).
pub const LINE_LEN_FACTOR: usize = 6;
/// Bytes a line may have beyond [`LINE_LEN_FACTOR`] times the maximum event size.
pub const LINE_LEN_SLACK: usize = 4096;

/// The longest line read for a ring whose largest event is `max_event_size` bytes.
pub fn max_line_len(max_event_size: usize) -> usize {
    max_event_size
        .saturating_mul(LINE_LEN_FACTOR)
        .saturating_add(LINE_LEN_SLACK)
}

/// Why a line could not be read.
#[derive(Debug)]
pub enum LineError {
    /// The line is longer than the bound; it was not read past it.
    TooLong {
        /// The bound, in bytes.
        max: usize,
    },
    /// The line is not UTF-8.
    NotUtf8 {
        /// The byte offset in the line of the first byte that is not.
        at: usize,
    },
    /// Reading failed.
    Io(io::Error),
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LineError::TooLong { max } => write!(
                f,
                "the line is longer than {max} bytes, the most a line may have \
                 ({LINE_LEN_FACTOR} times the maximum event size, plus {LINE_LEN_SLACK})"
            ),
            LineError::NotUtf8 { at } => {
                write!(
                    f,
                    "the line is not valid UTF-8 (byte {} of the line)",
                    at + 1
                )
            }
            LineError::Io(e) => write!(f, "reading the line: {e}"),
        }
    }
}

/// Lines of `input`, numbered from 1, each without its `\n` (or `\r\n`); at most `max` bytes
/// each. Stops after the first error.
pub struct Lines<R> {
    input: R,
    max: usize,
    number: usize,
    /// The line being read; never longer than `max`.
    buf: Vec<u8>,
    done: bool,
}

impl<R: BufRead> Lines<R> {
    /// Lines of `input`, of at most `max` bytes each.
    pub fn new(input: R, max: usize) -> Lines<R> {
        Lines {
            input,
            max,
            number: 0,
            buf: Vec::new(),
            done: false,
        }
    }

    /// The next line and its number, or `None` at the end of the input (or after an error).
    pub fn next_line(&mut self) -> Option<(usize, Result<String, LineError>)> {
        if self.done {
            return None;
        }
        self.number += 1;
        let line = self.read_line();
        if line.is_err() {
            self.done = true;
        }
        match line {
            Ok(None) => {
                self.done = true;
                None
            }
            Ok(Some(text)) => Some((self.number, Ok(text))),
            Err(e) => Some((self.number, Err(e))),
        }
    }

    fn read_line(&mut self) -> Result<Option<String>, LineError> {
        self.buf.clear();
        let mut any = false;
        loop {
            let available = match self.input.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(LineError::Io(e)),
            };
            if available.is_empty() {
                if !any {
                    return Ok(None);
                }
                break;
            }
            any = true;
            let newline = available.iter().position(|&b| b == b'\n');
            let content = newline.unwrap_or(available.len());
            if content > self.max - self.buf.len() {
                return Err(LineError::TooLong { max: self.max });
            }
            self.buf.extend_from_slice(&available[..content]);
            let used = newline.map_or(content, |at| at + 1);
            self.input.consume(used);
            if newline.is_some() {
                break;
            }
        }
        if self.buf.last() == Some(&b'\r') {
            self.buf.pop();
        }
        let mut text = &self.buf[..];
        if self.number == 1 {
            text = text.strip_prefix("\u{feff}".as_bytes()).unwrap_or(text);
        }
        match std::str::from_utf8(text) {
            Ok(s) => Ok(Some(s.to_owned())),
            Err(e) => Err(LineError::NotUtf8 {
                at: e.valid_up_to() + (self.buf.len() - text.len()),
            }),
        }
    }
}

/// One input line.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Line {
    kind: String,
    #[serde(default)]
    actor: Option<String>,
    #[serde(default)]
    trace_id: Option<String>,
    /// Kept as written, to name it exactly when it is not a time (`1e30`, `1.5`, `null`).
    #[serde(default, deserialize_with = "present_raw")]
    timestamp: Option<Box<RawValue>>,
    /// Present (even as `null`) or absent, as in an export line.
    #[serde(default, deserialize_with = "present_raw")]
    details: Option<Box<RawValue>>,
}

/// A member that is there, whatever its value: `"details":null` is details that are `null`.
fn present_raw<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Box<RawValue>>, D::Error> {
    Box::<RawValue>::deserialize(d).map(Some)
}

/// Parses one JSON line into an event.
pub fn parse_line(text: &str) -> Result<auditring::Event, String> {
    if text.starts_with('\u{feff}') {
        return Err(
            "the line starts with a byte order mark (U+FEFF), which is skipped only at \
                    the very start of the input"
                .into(),
        );
    }
    // A derived struct also deserializes from a JSON array of its fields in order; a line must be
    // an object (found by fuzzing: `["k"]` was appended as an event of kind "k").
    if !text
        .trim_start_matches([' ', '\t', '\n', '\r'])
        .starts_with('{')
    {
        return Err("a line must be a JSON object".into());
    }
    if let Some((column, escape)) = lone_surrogate(text) {
        return Err(format!(
            "{escape} at column {column} is a lone UTF-16 surrogate, which stands for no \
             character (a \\ud800-\\udbff escape must be followed by a \\udc00-\\udfff one)"
        ));
    }
    let line: Line = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let mut event = auditring::Event::new(line.kind);
    if let Some(a) = line.actor {
        event = event.with_actor(a);
    }
    if let Some(t) = line.trace_id {
        event = event.with_trace_id(t);
    }
    if let Some(t) = line.timestamp {
        event = event.with_timestamp_nanos(parse_timestamp(t.get())?);
    }
    if let Some(d) = line.details {
        event = event.with_details_raw(d);
    }
    Ok(event)
}

/// The `timestamp` member, given as JSON text: an integer of nanoseconds since the Unix epoch,
/// or a string of RFC 3339 text. A string of digits is not taken for nanoseconds (it may as well
/// be seconds), only a JSON integer is.
fn parse_timestamp(json: &str) -> Result<i64, String> {
    if json.starts_with('"') {
        let text: String = serde_json::from_str(json).map_err(|e| format!("timestamp: {e}"))?;
        return parse_rfc3339(&text).map_err(|e| format!("timestamp: {e}"));
    }
    let is_number = json.starts_with(|c: char| c == '-' || c.is_ascii_digit());
    if is_number && json.bytes().all(|b| b == b'-' || b.is_ascii_digit()) {
        return json.parse().map_err(|_| {
            format!(
                "timestamp: {json} is out of range: integer nanoseconds since the Unix epoch \
                 must fit an i64 (the years 1677-2262)"
            )
        });
    }
    let mut shown: String = json.chars().take(40).collect();
    if shown.len() < json.len() {
        shown.push('…');
    }
    Err(format!(
        "timestamp: {shown} is not an integer number of nanoseconds since the Unix epoch \
         (or RFC 3339 text)"
    ))
}

/// The first `\u` escape in `text` that is a lone UTF-16 surrogate, as its 1-based column (in
/// bytes) and its text. Only escapes inside strings count; `text` is otherwise unchecked.
fn lone_surrogate(text: &str) -> Option<(usize, &str)> {
    let b = text.as_bytes();
    let unit = |at: usize| -> Option<u16> {
        let hex = text.get(at + 2..at + 6)?;
        (b.get(at + 1) == Some(&b'u') && b[at] == b'\\')
            .then(|| u16::from_str_radix(hex, 16).ok())
            .flatten()
    };
    let mut in_string = false;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => in_string = !in_string,
            b'\\' if in_string => {
                let Some(u) = unit(i) else {
                    // Another escape (or a malformed one, for the parser to name): skip it.
                    i += 2;
                    continue;
                };
                match u {
                    0xd800..=0xdbff if matches!(unit(i + 6), Some(0xdc00..=0xdfff)) => i += 12,
                    0xd800..=0xdfff => return Some((i + 1, &text[i..i + 6])),
                    _ => i += 6,
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8], max: usize) -> Vec<(usize, Result<String, String>)> {
        let mut lines = Lines::new(input, max);
        std::iter::from_fn(|| lines.next_line())
            .map(|(n, l)| (n, l.map_err(|e| e.to_string())))
            .collect()
    }

    #[test]
    fn splits_lines_as_bufread_does_within_the_bound() {
        assert_eq!(
            lines(b"a\r\nbb\n\nccc", 3),
            [
                (1, Ok("a".into())),
                (2, Ok("bb".into())),
                (3, Ok(String::new())),
                (4, Ok("ccc".into()))
            ]
        );
        assert!(lines(b"", 3).is_empty());
        assert_eq!(lines(b"\n", 3), [(1, Ok(String::new()))]);
        // The bound counts the line without its newline.
        assert_eq!(lines(b"abc\n", 3), [(1, Ok("abc".into()))]);
    }

    #[test]
    fn a_long_line_stops_the_reader_at_the_bound() {
        let got = lines(b"ok\nabcd\nnever read\n", 3);
        assert_eq!(got.len(), 2, "{got:?}");
        let err = got[1].1.as_ref().unwrap_err();
        assert_eq!(got[1].0, 2);
        assert!(err.contains("longer than 3 bytes"), "{err}");
        // Without a newline at all, from a reader that never ends: the bound still holds.
        let mut endless = Lines::new(io::BufReader::new(io::repeat(b'x')), 1 << 16);
        let (n, line) = endless.next_line().unwrap();
        assert_eq!(n, 1);
        assert!(matches!(line, Err(LineError::TooLong { max: 65536 })));
        assert!(endless.next_line().is_none());
    }

    #[test]
    fn a_bom_is_skipped_at_the_start_of_the_input_only() {
        let got = lines("\u{feff}{}\n\u{feff}{}\n".as_bytes(), 100);
        assert_eq!(got[0].1, Ok("{}".into()));
        assert_eq!(got[1].1, Ok("\u{feff}{}".into()));
        let err = parse_line("\u{feff}{\"kind\":\"k\"}").unwrap_err();
        assert!(err.contains("byte order mark"), "{err}");
    }

    #[test]
    fn invalid_utf8_is_named_with_its_offset() {
        let got = lines(b"ok\nab\xffc\n", 100);
        assert_eq!(got[1].0, 2);
        assert!(got[1].1.as_ref().unwrap_err().contains("byte 3"), "{got:?}");
    }

    #[test]
    fn lone_surrogates_are_found_in_strings_only() {
        assert_eq!(lone_surrogate(r#"{"a":"\ud800"}"#), Some((7, r"\ud800")));
        assert_eq!(lone_surrogate(r#"{"a":"x\udc00"}"#), Some((8, r"\udc00")));
        assert_eq!(
            lone_surrogate(r#"{"a":"\ud800\u0041"}"#),
            Some((7, r"\ud800"))
        );
        assert_eq!(lone_surrogate(r#"{"a":"\ud83d\ude00"}"#), None);
        assert_eq!(lone_surrogate(r#"{"a":"\\ud800"}"#), None);
        assert_eq!(lone_surrogate(r#"{"a":"\"\ud800"}"#), Some((9, r"\ud800")));
        let err = parse_line(r#"{"kind":"k","details":{"x":"\uDBFF"}}"#).unwrap_err();
        assert!(
            err.contains(r"\uDBFF at column 29 is a lone UTF-16 surrogate"),
            "{err}"
        );
    }

    #[test]
    fn timestamps_that_are_not_times_are_named() {
        for (json, says) in [
            ("1e30", "1e30 is not an integer number of nanoseconds"),
            ("1.5", "1.5 is not an integer number of nanoseconds"),
            ("null", "null is not an integer number of nanoseconds"),
            ("[1]", "[1] is not an integer number of nanoseconds"),
            ("9223372036854775808", "9223372036854775808 is out of range"),
            (
                "-9223372036854775809",
                "-9223372036854775809 is out of range",
            ),
            (
                r#""yesterday""#,
                r#"timestamp: "yesterday" is not an RFC 3339 time"#,
            ),
        ] {
            let err = parse_line(&format!(r#"{{"kind":"k","timestamp":{json}}}"#)).unwrap_err();
            assert!(err.contains(says), "{json}: {err}");
        }
        let ok = |json: &str| {
            parse_line(&format!(r#"{{"kind":"k","timestamp":{json}}}"#))
                .unwrap()
                .timestamp_nanos()
        };
        assert_eq!(ok("-9223372036854775808"), Some(i64::MIN));
        assert_eq!(ok("9223372036854775807"), Some(i64::MAX));
        assert_eq!(ok("-0"), Some(0));
    }
}
