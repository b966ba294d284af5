//! `query`: the records of a log that match filters, and the one line a record prints as (which
//! `tail` shares).

use std::collections::VecDeque;
use std::io::{self, Write};
use std::path::PathBuf;

use auditring::{Query, RecordRef};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::timearg::parse_time;
use crate::views::{Visit, note_missed, scan};
use crate::{Failure, dir_arg};

/// Arguments of `auditring query`.
#[derive(clap::Args)]
pub struct Args {
    /// The log directory.
    #[arg(value_parser = dir_arg)]
    dir: PathBuf,
    /// Only events of this kind.
    #[arg(long, value_name = "KIND")]
    kind: Option<String>,
    /// Only events by this actor.
    #[arg(long, value_name = "ACTOR")]
    actor: Option<String>,
    /// Only events of this trace id.
    #[arg(long, value_name = "TRACE_ID")]
    trace: Option<String>,
    /// Only events whose origin time is at or after TIME (RFC 3339, or integer nanoseconds
    /// since the Unix epoch).
    #[arg(long, value_name = "TIME", allow_negative_numbers = true)]
    since: Option<String>,
    /// Only events whose origin time is before TIME (RFC 3339, or integer nanoseconds since the
    /// Unix epoch).
    #[arg(long, value_name = "TIME", allow_negative_numbers = true)]
    until: Option<String>,
    /// Only the N most recent matches (still printed oldest first).
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
    /// Print each record as one JSON line, as an export writes it.
    #[arg(long)]
    json: bool,
}

/// Output is handed to stdout in chunks of about this many bytes.
const CHUNK: usize = 64 * 1024;

/// Runs `auditring query`.
pub fn run(args: Args) -> Result<u8, Failure> {
    let time = |name: &str, arg: &Option<String>| {
        arg.as_deref()
            .map(parse_time)
            .transpose()
            .map_err(|e| Failure::input(format!("--{name}: {e}")))
    };
    let since = time("since", &args.since)?;
    let until = time("until", &args.until)?;
    let mut query = Query::new();
    let mut filtered = false;
    if let Some(k) = args.kind {
        query = query.kind(k);
        filtered = true;
    }
    if let Some(a) = args.actor {
        query = query.actor(a);
        filtered = true;
    }
    if let Some(t) = args.trace {
        query = query.trace_id(t);
        filtered = true;
    }
    if let Some(s) = since {
        query = query.since(s);
        filtered = true;
    }
    if let Some(u) = until {
        query = query.until(u);
        filtered = true;
    }

    // Retention may remove records while they are read: the query goes on in a newer view,
    // and says which records it could not read (see `crate::views`).
    let reader = crate::ship::open_reader(&args.dir)?;
    let snap = reader.snapshot()?;
    let head = snap.head_seq();
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let mut buf = Vec::with_capacity(CHUNK + 4096);
    let Some(limit) = args.limit else {
        // Every match, printed as it is found.
        let scanned = scan(&reader, snap, None, head, |visit| {
            match visit {
                Visit::Record(r) if query.matches(r) => write_record(&mut buf, r, args.json),
                Visit::Record(_) => {}
                Visit::Missed { first, last } => {
                    note_missed(&mut buf, first, last, args.json);
                }
            }
            if buf.len() >= CHUNK {
                if !emit(&mut out, &buf)? {
                    return Ok(false);
                }
                buf.clear();
            }
            Ok(true)
        });
        // What was found before a failure is printed, then the failure.
        if !matches!(scanned, Ok(false)) {
            emit(&mut out, &buf)?;
        }
        return scanned.map(|_| 0);
    };
    if limit == 0 {
        return Ok(0);
    }
    // The last `limit` matches: keep their lines, reusing the buffer of the line that drops out.
    // Without filters they are simply the last `limit` records.
    let from = if filtered {
        None
    } else {
        Some(
            (head + 1)
                .saturating_sub(limit as u64)
                .max(snap.first_seq()),
        )
    };
    let mut lines: VecDeque<Vec<u8>> = VecDeque::with_capacity(limit.min(1 << 16));
    scan(&reader, snap, from, head, |visit| {
        match visit {
            Visit::Record(r) if query.matches(r) => {
                let mut line = if lines.len() == limit {
                    let mut old = lines.pop_front().expect("limit > 0");
                    old.clear();
                    old
                } else {
                    Vec::new()
                };
                write_record(&mut line, r, args.json);
                lines.push_back(line);
            }
            Visit::Record(_) => {}
            // Only said on stderr: the lines kept are the last matches read.
            Visit::Missed { first, last } => note_missed(&mut Vec::new(), first, last, false),
        }
        Ok(true)
    })?;
    for line in lines {
        buf.extend_from_slice(&line);
        if buf.len() >= CHUNK {
            if !emit(&mut out, &buf)? {
                return Ok(0);
            }
            buf.clear();
        }
    }
    emit(&mut out, &buf)?;
    Ok(0)
}

/// Writes `bytes` to `out` and flushes it. `Ok(false)` when whoever read the output has gone
/// (a broken pipe, as when piped into `head`): the command then stops, successfully.
pub fn emit(out: &mut impl Write, bytes: &[u8]) -> Result<bool, Failure> {
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(Failure {
            code: 4,
            message: format!("writing to stdout: {e}"),
        }),
    }
}

/// Appends the line `r` prints as, newline included.
///
/// With `json`, the line of a JSONL export ([`RecordRef::write_json_line`]). Otherwise
/// `SEQ  TIME  KIND  actor=ACTOR  trace=TRACE  DETAILS`, the time in RFC 3339 (UTC), absent
/// fields left out. The line is one line whatever the record holds: kind, actor and trace are
/// quoted when empty or holding spaces, quotes or characters that move the cursor or change the
/// text's direction, which are escaped; line breaks in the details (only ever whitespace between
/// JSON tokens) print as spaces.
pub fn write_record(out: &mut Vec<u8>, r: &RecordRef<'_>, json: bool) {
    if json {
        r.write_json_line(out);
        return;
    }
    // Writing into a Vec cannot fail.
    let _ = write!(out, "{}  ", r.seq);
    let formatted = OffsetDateTime::from_unix_timestamp_nanos(i128::from(r.timestamp))
        .map_err(|_| ())
        .and_then(|t| t.format_into(&mut *out, &Rfc3339).map_err(|_| ()));
    if formatted.is_err() {
        let _ = write!(out, "{}ns", r.timestamp);
    }
    out.extend_from_slice(b"  ");
    write_word(out, r.kind);
    if let Some(a) = r.actor {
        out.extend_from_slice(b"  actor=");
        write_word(out, a);
    }
    if let Some(t) = r.trace_id {
        out.extend_from_slice(b"  trace=");
        write_word(out, t);
    }
    if let Some(d) = r.details {
        out.extend_from_slice(b"  ");
        for c in d.chars() {
            match c {
                '\n' | '\r' | '\t' => out.push(b' '),
                c if unprintable(c) => escape(out, c),
                c => push_char(out, c),
            }
        }
    }
    out.push(b'\n');
}

/// Appends `s` as is, or in double quotes with escapes if it is empty or could be misread.
fn write_word(out: &mut Vec<u8>, s: &str) {
    let plain = !s.is_empty()
        && !s
            .chars()
            .any(|c| c.is_whitespace() || c == '"' || unprintable(c));
    if plain {
        out.extend_from_slice(s.as_bytes());
        return;
    }
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if unprintable(c) => escape(out, c),
            c => push_char(out, c),
        }
    }
    out.push(b'"');
}

/// Control characters, and the invisible ones that break lines, join or hide text or reorder
/// it on a terminal (zero widths, line and paragraph separators, bidirectional overrides and
/// isolates, the byte order mark).
fn unprintable(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{200B}'..='\u{200F}'
            | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}')
}

fn escape(out: &mut Vec<u8>, c: char) {
    let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
}

fn push_char(out: &mut Vec<u8>, c: char) {
    let mut utf8 = [0; 4];
    out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use auditring::Hash;

    fn line(r: RecordRef<'_>, json: bool) -> String {
        let mut out = Vec::new();
        write_record(&mut out, &r, json);
        String::from_utf8(out).unwrap()
    }

    fn record<'a>(
        kind: &'a str,
        actor: Option<&'a str>,
        trace_id: Option<&'a str>,
        details: Option<&'a str>,
    ) -> RecordRef<'a> {
        RecordRef {
            seq: 42,
            timestamp: 1_767_225_600_123_456_789,
            kind,
            actor,
            trace_id,
            details,
            leaf: Hash([1; 32]),
            chain: Hash([2; 32]),
        }
    }

    #[test]
    fn text_lines() {
        let r = record(
            "user.login",
            Some("alice"),
            Some("4bf9"),
            Some(r#"{"ip": "10.0.0.1"}"#),
        );
        assert_eq!(
            line(r, false),
            "42  2026-01-01T00:00:00.123456789Z  user.login  actor=alice  trace=4bf9  {\"ip\": \"10.0.0.1\"}\n"
        );
        let r = record("k", None, None, None);
        assert_eq!(line(r, false), "42  2026-01-01T00:00:00.123456789Z  k\n");
        let r = record("k", None, Some("t"), None);
        assert_eq!(
            line(r, false),
            "42  2026-01-01T00:00:00.123456789Z  k  trace=t\n"
        );
    }

    #[test]
    fn text_lines_stay_one_line_and_unambiguous() {
        let r = record(
            "a kind",
            Some(""),
            Some("x\n\u{1b}[2J\u{202e}\"q\"\\"),
            Some("{\n\t\"a\": \"\u{202e}\u{7f}\"\r\n}"),
        );
        let l = line(r, false);
        assert_eq!(
            l,
            "42  2026-01-01T00:00:00.123456789Z  \"a kind\"  actor=\"\"  trace=\"x\\n\\u{1b}[2J\\u{202e}\\\"q\\\"\\\\\"  {  \"a\": \"\\u{202e}\\u{7f}\"  }\n"
        );
        // Plain text, and text beyond ASCII, is left as it is.
        let r = record(
            "k",
            Some(r"DOMAIN\zoë"),
            Some("日本"),
            Some("[\"e\u{301}\"]"),
        );
        assert_eq!(
            line(r, false),
            "42  2026-01-01T00:00:00.123456789Z  k  actor=DOMAIN\\zoë  trace=日本  [\"e\u{301}\"]\n"
        );
    }

    #[test]
    fn json_lines_are_export_lines() {
        let r = record("k", Some("a"), None, Some("{\"x\":1}"));
        let mut expected = Vec::new();
        r.write_json_line(&mut expected);
        assert_eq!(line(r, true).into_bytes(), expected);
    }

    #[test]
    fn emit_reports_a_closed_reader() {
        struct Closed;
        impl Write for Closed {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        struct Full;
        impl Write for Full {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::from_raw_os_error(28))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        assert!(matches!(emit(&mut Closed, b"x\n"), Ok(false)));
        assert!(matches!(emit(&mut Full, b"x\n"), Err(f) if f.code == 4));
        let mut v = Vec::new();
        assert!(matches!(emit(&mut v, b"x\n"), Ok(true)));
        assert_eq!(v, b"x\n");
    }
}
