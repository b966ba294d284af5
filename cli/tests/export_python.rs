//! Proves `docs/FORMAT.md` §13 complete: `tools/verify_export.py`, an independent verifier of
//! exports written from the document alone, must accept every export the CLI makes (JSONL and
//! bundle, several ranges), agree with `auditring verify-export --json` on what it verified, link
//! consecutive exports, and reject damaged copies at the same record as the crate: lines not in
//! their one form (§13.3), and every row of the verification table (§13.4), each failure at the
//! seq, file and byte offset the table gives. Given keys to trust (§13.6), both compare an export
//! with signed checkpoints alike: the one its `tree.json` carries or those given, each reported
//! with whether it matched; a `tree.json` that cannot be used (T1, T2), or records, a prefix or a
//! proof that do not lead to a checkpoint's root (T3), fail at the same place for the same
//! reason; a checkpoint that cannot be used, or nothing to compare with, is a usage error.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use auditring::{Event, Ring};
use auditring_testkit::python::{Report, python, run_tool, tool};
use auditring_testkit::slots::copy_dir;
use serde_json::Value;
use sha2::{Digest, Sha256};

const SEGMENT_SIZE: u64 = 64 * 1024;
/// Appears once in the log: in the details of one event written by `append`.
const MARKER: &str = "tamper-marker-4b1d";
/// Appears once in the log: the kind of one event written by `append`.
const KIND_TO_CHANGE: &str = "kind.to.change";
/// Appears once in the log: in the (large) details of one event written with the library.
const BUNDLE_MARKER: &str = "bundle-marker-9c2e";

fn script() -> PathBuf {
    tool("verify_export.py")
}

fn auditring() -> Command {
    Command::new(env!("CARGO_BIN_EXE_auditring"))
}

/// `python3 tools/verify_export.py DIR EXTRA..`: always prints one JSON object.
fn py_verify(dir: &Path, extra: &[&str]) -> Report {
    run_tool("verify_export.py", dir, extra)
}

/// `auditring verify-export DIR --json EXTRA..`: prints JSON unless the path is not an export.
fn crate_verify(dir: &Path, extra: &[&str]) -> Report {
    let out = auditring()
        .arg("verify-export")
        .arg(dir)
        .arg("--json")
        .args(extra)
        .output()
        .expect("running auditring verify-export");
    let code = out.status.code();
    Report::read("auditring verify-export", &out, code != Some(2))
}

/// `auditring append DIR` with `lines` on stdin.
fn append(dir: &Path, lines: &str) {
    append_with(dir, &[], lines);
}

/// `auditring append DIR EXTRA..` with `lines` on stdin.
fn append_with(dir: &Path, extra: &[&str], lines: &str) {
    let mut child = auditring()
        .arg("append")
        .arg(dir)
        .args(["--segment-size", &SEGMENT_SIZE.to_string()])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running auditring append");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(lines.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "auditring append failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `auditring export LOG --format FORMAT --out OUT RANGE..`; returns the manifest.
fn export(log: &Path, out: &Path, format: &str, range: &[&str]) -> Value {
    let o = auditring()
        .arg("export")
        .arg(log)
        .args(["--format", format, "--out"])
        .arg(out)
        .args(range)
        .arg("--json")
        .output()
        .expect("running auditring export");
    assert!(
        o.status.success(),
        "auditring export {format} {range:?} failed: {}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let text = std::fs::read_to_string(out.join("manifest.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The first events, written by `append`: every shape the JSON-lines input can express.
fn first_batch() -> String {
    let mut lines: Vec<String> = vec![
        r#"{"kind":"user.login","actor":"alice","timestamp":1700000000000000000}"#.into(),
        r#"{"kind":"bare"}"#.into(),
        r#"{"kind":"empty.strings","actor":"","trace_id":""}"#.into(),
        r#"{"kind":"null.details","actor":"bob","details":null}"#.into(),
        r#"{"kind":"unicode.é✓😀","actor":"zoë ✓","trace_id":"trace-😀","details":{"msg":"héllo ✓ 😀","ключ":"значение"}}"#.into(),
        r#"{"kind":"quotes \"and\" back\\slashes","actor":"a\"b\\c","trace_id":"\\","details":{"q":"say \"hi\"","path":"C:\\dir\\file","tab":"a\tb"}}"#.into(),
        r#"{"kind":"number","details":42}"#.into(),
        r#"{"kind":"float","details":-1.5e-3}"#.into(),
        r#"{"kind":"string.details","details":"just a string with } and ,\"details\": inside"}"#.into(),
        r#"{"kind":"nested","trace_id":"t-1","details":{"a":{"b":[1,{"c":null,"d":[true,false]}]},"e":{}}}"#.into(),
        r#"{"kind":"spaced","details":{ "a" : [1, 2] }}"#.into(),
        r#"{"kind":"spaced.deep","details":{ "outer" : { "inner" : [ 1 , 2 , { "x" : "y" } ] } }}"#.into(),
        r#"{"kind":"escaped","details":{"esc":"\u00e9\u2713\ud83d\ude00","nl":"line\nbreak"}}"#.into(),
        format!(r#"{{"kind":"marked","actor":"mallory","details":{{"note":"{MARKER}"}}}}"#),
        format!(r#"{{"kind":"{KIND_TO_CHANGE}","actor":"carol","trace_id":"t-2"}}"#),
        r#"{"kind":"negative.time","timestamp":-1000000000}"#.into(),
        r#"{"kind":"rfc3339.time","timestamp":"2024-02-29T12:34:56.789Z"}"#.into(),
        r#"{"kind":"array.details","details":[1,"two",{"three":3},[],null]}"#.into(),
        r#"{"kind":"empty.object","actor":"","details":{}}"#.into(),
        r#"{"kind":"string.empty.details","details":""}"#.into(),
    ];
    for i in 0..30 {
        lines.push(format!(
            r#"{{"kind":"filler.{}","actor":"user-{i}","timestamp":{},"details":{{"i":{i},"tags":["a","b"]}}}}"#,
            i % 4,
            1_700_000_000_000_000_000i64 + i
        ));
    }
    lines.join("\n") + "\n"
}

/// The events only the library can write: details with line breaks (exported as
/// `details_raw`), present `null` details, and large details that fill segments. Returns how
/// many events it wrote.
fn library_batch(dir: &Path) -> usize {
    let ring = Ring::builder(dir)
        .segment_size(SEGMENT_SIZE)
        .open()
        .unwrap();
    let events = vec![
        Event::new("raw.lf")
            .with_actor("lib")
            .with_details_json("{\"x\":\n 1}")
            .unwrap(),
        Event::new("raw.crlf")
            .with_trace_id("t-crlf")
            .with_details_json("{\"y\":\r\n  [1,\r\n 2]}")
            .unwrap(),
        Event::new("raw.cr")
            .with_details_json("{\"z\":\r\"é ✓ 😀\"}")
            .unwrap(),
        Event::new("raw.leading")
            .with_actor("")
            .with_trace_id("")
            .with_details_json("\n{\"w\" : \"quote \\\" and backslash \\\\\"}\n")
            .unwrap(),
        Event::new("null.present")
            .with_details_json("null")
            .unwrap(),
        Event::new("null.present.actor")
            .with_actor("dave")
            .with_details_json("null")
            .unwrap(),
        Event::new("escaped.newline")
            .with_details_json("{\"s\":\"a\\nb\\r\\nc\"}")
            .unwrap(),
        Event::new("timestamp.min")
            .with_timestamp_nanos(i64::MIN)
            .with_details_json("[]")
            .unwrap(),
        Event::new("timestamp.max").with_timestamp_nanos(i64::MAX),
        // Deeper than a recursive JSON parser goes by default.
        Event::new("deep")
            .with_details_json(format!("{}{{}}{}", "[".repeat(3000), "]".repeat(3000)))
            .unwrap(),
    ];
    let mut written = events.len();
    for e in events {
        ring.push(e).unwrap();
    }
    for i in 0..4usize {
        let blob = "ab✓".repeat(9_000 + 300 * i);
        let note = if i == 2 { BUNDLE_MARKER } else { "plain" };
        let details = if i == 1 {
            // Large, and with line breaks: a large `details_raw`.
            format!("{{\"note\":\"{note}\",\n\"blob\":\"{blob}\"\n}}")
        } else {
            format!("{{\"note\":\"{note}\",\"blob\":\"{blob}\"}}")
        };
        ring.push(
            Event::new("large")
                .with_actor("archiver")
                .with_trace_id(format!("blob-{i}"))
                .with_details_json(details)
                .unwrap(),
        )
        .unwrap();
        written += 1;
    }
    ring.close().unwrap();
    written
}

/// The last events, written by `append` again after the library session.
fn last_batch() -> String {
    (0..40)
        .map(|i| {
            format!(
                r#"{{"kind":"tail.{}","actor":"user-{i}","trace_id":"tr-{i}","details":{{ "n" : {i} }}}}"#,
                i % 3
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// Builds the log; returns its last seq.
fn build_log(dir: &Path) -> u64 {
    append(dir, &first_batch());
    let from_library = library_batch(dir);
    append(dir, &last_batch());
    let out = auditring().arg("verify").arg(dir).output().unwrap();
    assert!(
        out.status.success(),
        "the log does not verify: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let segments = std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            let name = name.to_string_lossy();
            name.ends_with(".seg") && !name.starts_with('.')
        })
        .count();
    assert!(
        segments >= 3,
        "the log should span several segments, it has {segments}"
    );
    (first_batch().lines().count() + from_library + last_batch().lines().count()) as u64
}

/// Both verifiers accept `dir` and agree on what they verified; returns the crate's report.
fn assert_both_ok(dir: &Path, manifest: &Value, extra: &[&str]) -> Report {
    let rust = crate_verify(dir, extra);
    assert_eq!(rust.code, 0, "crate: {}", rust.describe());
    assert_eq!(
        rust.json["ok"],
        Value::Bool(true),
        "crate: {}",
        rust.describe()
    );
    let py = py_verify(dir, extra);
    assert_eq!(py.code, 0, "verify_export.py: {}", py.describe());
    assert_eq!(py.json["ok"], Value::Bool(true), "{}", py.describe());
    assert_eq!(py.json["error"], Value::Null, "{}", py.describe());
    for key in ["events", "first_seq", "last_seq", "head_hash"] {
        assert_eq!(
            py.json[key],
            rust.json[key],
            "{key} differs on {}:\npython: {}\ncrate: {}",
            dir.display(),
            py.json,
            rust.json
        );
    }
    assert_eq!(py.json["events"], manifest["count"]);
    assert_eq!(py.json["first_seq"], manifest["first_seq"]);
    assert_eq!(py.json["last_seq"], manifest["last_seq"]);
    assert_eq!(py.json["head_hash"], manifest["head"]);
    rust
}

/// Both verifiers report an integrity failure (exit 1) on `dir`; returns (crate, python).
fn assert_both_fail(dir: &Path, extra: &[&str]) -> (Report, Report) {
    let rust = crate_verify(dir, extra);
    assert_eq!(
        rust.code,
        1,
        "crate should fail on {}: {}",
        dir.display(),
        rust.describe()
    );
    assert_eq!(rust.json["ok"], Value::Bool(false), "{}", rust.describe());
    let py = py_verify(dir, extra);
    assert_eq!(
        py.code,
        1,
        "verify_export.py should fail on {}: {}",
        dir.display(),
        py.describe()
    );
    assert_eq!(py.json["ok"], Value::Bool(false), "{}", py.describe());
    assert!(py.json["error"].is_object(), "{}", py.describe());
    assert!(
        py.json["error"]["reason"]
            .as_str()
            .is_some_and(|r| !r.is_empty()),
        "{}",
        py.describe()
    );
    (rust, py)
}

/// Both verifiers fail at the same `(seq, file, offset)`, and that is `expected`.
fn assert_fail_at(dir: &Path, file: &Path, seq: u64, offset: u64) {
    assert_fail_at_with(dir, &[], Some(seq), file, offset);
}

/// Both verifiers, given `extra` arguments, fail at the same `(seq, file, offset)`, and that is
/// `expected` (`seq` `None`: a failure about no record).
fn assert_fail_at_with(dir: &Path, extra: &[&str], seq: Option<u64>, file: &Path, offset: u64) {
    let (rust, py) = assert_both_fail(dir, extra);
    let expected = (
        seq.map_or(Value::Null, Value::from),
        Value::from(file.to_str().unwrap()),
        Value::from(offset),
    );
    assert_eq!(
        py.error_at(),
        rust.error_at(),
        "the verifiers disagree on where {} fails:\npython: {}\ncrate: {}",
        dir.display(),
        py.json,
        rust.json
    );
    assert_eq!(py.error_at(), expected, "{}", py.describe());
}

/// `(start offset, seq, bytes without the line feed)` of every line of `events.jsonl`.
fn jsonl_lines(path: &Path) -> Vec<(u64, u64, Vec<u8>)> {
    let data = std::fs::read(path).unwrap();
    assert_eq!(data.last(), Some(&b'\n'));
    let mut out = Vec::new();
    let mut start = 0usize;
    for line in data[..data.len() - 1].split(|&b| b == b'\n') {
        // `{"seq":S,...`: read S without parsing the whole line (details may nest deeply).
        let rest = line.strip_prefix(b"{\"seq\":").unwrap();
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        let seq = std::str::from_utf8(&rest[..digits])
            .unwrap()
            .parse()
            .unwrap();
        out.push((start as u64, seq, line.to_vec()));
        start += line.len() + 1;
    }
    out
}

/// `(start offset, seq, body range)` of every record of `records.bin` (FORMAT.md §5).
fn bundle_records(path: &Path) -> Vec<(u64, u64, std::ops::Range<usize>)> {
    let data = std::fs::read(path).unwrap();
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos < data.len() {
        assert_eq!(&data[pos..pos + 4], b"AREC");
        let body_len = u32::from_le_bytes(data[pos + 4..pos + 8].try_into().unwrap()) as usize;
        let seq = u64::from_le_bytes(data[pos + 8..pos + 16].try_into().unwrap());
        out.push((pos as u64, seq, pos + 80..pos + 80 + body_len));
        pos += (80 + body_len + 7) & !7;
    }
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[test]
fn python_verifier_agrees_with_the_crate_on_exports() {
    python();
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("log");
    let last = build_log(&log);
    let ex = |name: &str| tmp.path().join(name);

    // Exports of several ranges, in both encodings.
    let mut made = Vec::new();
    for format in ["jsonl", "bundle"] {
        let ranges: [(&str, &[&str]); 3] = [
            ("all", &[]),
            ("mid", &["--from", "10", "--to", "60"]),
            ("last", &["--last", "25"]),
        ];
        for (name, range) in ranges {
            let out = ex(&format!("{format}-{name}"));
            let manifest = export(&log, &out, format, range);
            made.push((out, manifest));
        }
    }
    for (dir, manifest) in &made {
        assert_both_ok(dir, manifest, &[]);
    }
    let (whole_jsonl, whole_manifest) = &made[0];
    assert_eq!(whole_manifest["count"], Value::from(last));
    assert_eq!(made[2].1["first_seq"], Value::from(last - 24));

    // The whole JSONL export exercises every form of §13.3.
    let text = std::fs::read_to_string(whole_jsonl.join("events.jsonl")).unwrap();
    assert!(text.matches("\"details_raw\":").count() >= 5, "{text}");
    assert!(text.contains(",\"details\":null}"), "{text}");
    assert!(text.contains(",\"details\":{ \"a\" : [1, 2] }}"), "{text}");
    assert!(text.contains(",\"details\":\"\"}"), "{text}");
    assert!(text.contains("\"actor\":\"\",\"trace_id\":\"\""), "{text}");
    assert!(text.contains("\"actor\":null,\"trace_id\":null"), "{text}");
    // `append` reads `"details":null` as details that are `null`, as an export line does.
    let null_line = text
        .lines()
        .find(|l| l.contains("\"kind\":\"null.details\""))
        .unwrap();
    assert!(null_line.ends_with(",\"details\":null}"), "{null_line}");

    // --expect-head: the right head passes, another fails.
    let head = whole_manifest["head"].as_str().unwrap();
    assert_both_ok(whole_jsonl, whole_manifest, &["--expect-head", head]);
    let wrong = format!(
        "{}{}",
        if head.starts_with('0') { "1" } else { "0" },
        &head[1..]
    );
    let (rust, py) = assert_both_fail(whole_jsonl, &["--expect-head", &wrong]);
    assert_eq!(py.json["error"]["seq"], rust.json["error"]["seq"]);

    // Two consecutive exports (one of each encoding) link; a non-consecutive pair does not.
    let first = ex("first");
    let first_m = export(&log, &first, "jsonl", &["--from", "1", "--to", "70"]);
    let second = ex("second");
    let second_m = export(&log, &second, "bundle", &["--from", "71"]);
    assert_eq!(second_m["anchor"], first_m["head"]);
    assert_both_ok(&first, &first_m, &[]);
    let first_dir = first.to_str().unwrap();
    let first_manifest = first.join("manifest.json");
    let first_manifest = first_manifest.to_str().unwrap();
    assert_both_ok(&second, &second_m, &["--after", first_dir]);
    assert_both_ok(&second, &second_m, &["--after", first_manifest]);
    let gap = ex("gap");
    let gap_m = export(&log, &gap, "jsonl", &["--from", "75", "--to", "90"]);
    assert_both_ok(&gap, &gap_m, &[]);
    for after in [first_dir, first_manifest] {
        let (rust, py) = assert_both_fail(&gap, &["--after", after]);
        assert_eq!(py.json["error"]["seq"], Value::from(75));
        assert_eq!(py.json["error"]["seq"], rust.json["error"]["seq"]);
    }
    // Reversed, the pair does not link either.
    let second_dir = second.to_str().unwrap();
    assert_both_fail(&first, &["--after", second_dir]);

    // Damaged copies, the groups in parallel (each verifier run is a process).
    let whole_bundle = &made[3].0;
    std::thread::scope(|s| {
        s.spawn(|| tamper_jsonl(tmp.path(), whole_jsonl));
        s.spawn(|| tamper_bundle(tmp.path(), whole_bundle));
        s.spawn(|| tamper_manifest(tmp.path(), whole_jsonl, true));
        s.spawn(|| tamper_manifest(tmp.path(), whole_bundle, false));
    });
}

/// Damaged copies of a JSONL export.
fn tamper_jsonl(tmp: &Path, export: &Path) {
    let lines = jsonl_lines(&export.join("events.jsonl"));

    // One byte flipped inside a line's details.
    let dir = tmp.join("t-jsonl-details");
    copy_dir(export, &dir);
    let data_file = dir.join("events.jsonl");
    let (start, seq, line) = lines
        .iter()
        .find(|(_, _, l)| find(l, MARKER.as_bytes()).is_some())
        .unwrap();
    let details_at = find(line, b",\"details\":").unwrap();
    let marker_at = find(line, MARKER.as_bytes()).unwrap();
    assert!(marker_at > details_at);
    let mut data = std::fs::read(&data_file).unwrap();
    data[*start as usize + marker_at] ^= 0x20; // 't' -> 'T': still valid JSON
    std::fs::write(&data_file, &data).unwrap();
    assert_fail_at(&dir, &data_file, *seq, *start);

    // A kind changed.
    let dir = tmp.join("t-jsonl-kind");
    copy_dir(export, &dir);
    let data_file = dir.join("events.jsonl");
    let needle = format!("\"kind\":\"{KIND_TO_CHANGE}\"");
    let (start, seq, _) = lines
        .iter()
        .find(|(_, _, l)| find(l, needle.as_bytes()).is_some())
        .unwrap();
    let text = std::fs::read_to_string(&data_file).unwrap();
    assert_eq!(text.matches(&needle).count(), 1);
    let text = text.replace(&needle, "\"kind\":\"kind.changed\"");
    std::fs::write(&data_file, text).unwrap();
    assert_fail_at(&dir, &data_file, *seq, *start);

    // A line deleted from the middle: the next line is found where it started.
    let dir = tmp.join("t-jsonl-delete");
    copy_dir(export, &dir);
    let data_file = dir.join("events.jsonl");
    let (start, seq, line) = &lines[lines.len() / 2];
    let mut data = std::fs::read(&data_file).unwrap();
    data.drain((*start as usize)..=(*start as usize + line.len()));
    std::fs::write(&data_file, &data).unwrap();
    assert_fail_at(&dir, &data_file, *seq, *start);

    // The last line deleted: every remaining line is valid; size and count are not.
    let dir = tmp.join("t-jsonl-delete-last");
    copy_dir(export, &dir);
    let data_file = dir.join("events.jsonl");
    let (start, _, _) = lines.last().unwrap();
    let data = std::fs::read(&data_file).unwrap();
    std::fs::write(&data_file, &data[..*start as usize]).unwrap();
    assert_both_fail(&dir, &[]);

    // Truncated in the middle of a line.
    let dir = tmp.join("t-jsonl-truncate");
    copy_dir(export, &dir);
    let data_file = dir.join("events.jsonl");
    let len = std::fs::metadata(&data_file).unwrap().len();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&data_file)
        .unwrap();
    f.set_len(len - 10).unwrap();
    drop(f);
    let (start, seq, _) = lines.last().unwrap();
    assert_fail_at(&dir, &data_file, *seq, *start);
}

/// Damaged copies of a bundle export.
fn tamper_bundle(tmp: &Path, export: &Path) {
    let records = bundle_records(&export.join("records.bin"));
    let data = std::fs::read(export.join("records.bin")).unwrap();

    // One byte flipped in a record's body.
    let dir = tmp.join("t-bundle-body");
    copy_dir(export, &dir);
    let data_file = dir.join("records.bin");
    let (start, seq, body) = records
        .iter()
        .find(|(_, _, b)| find(&data[b.clone()], BUNDLE_MARKER.as_bytes()).is_some())
        .unwrap()
        .clone();
    let at = body.start + find(&data[body.clone()], BUNDLE_MARKER.as_bytes()).unwrap();
    let mut damaged = data.clone();
    damaged[at] ^= 0x01;
    std::fs::write(&data_file, &damaged).unwrap();
    assert_fail_at(&dir, &data_file, seq, start);

    // A byte flipped in a small record's body, the first one's kind.
    let dir = tmp.join("t-bundle-first");
    copy_dir(export, &dir);
    let data_file = dir.join("records.bin");
    let (start, seq, body) = records[0].clone();
    let mut damaged = data.clone();
    damaged[body.start + 20] ^= 0x01;
    std::fs::write(&data_file, &damaged).unwrap();
    assert_fail_at(&dir, &data_file, seq, start);

    // A padding byte that must be zero, set.
    let dir = tmp.join("t-bundle-padding");
    copy_dir(export, &dir);
    let data_file = dir.join("records.bin");
    let (start, seq, body) = records
        .iter()
        .find(|(_, _, b)| !b.len().is_multiple_of(8))
        .unwrap()
        .clone();
    let mut damaged = data.clone();
    damaged[body.end] = 0x01;
    std::fs::write(&data_file, &damaged).unwrap();
    assert_fail_at(&dir, &data_file, seq, start);

    // Truncated inside the last record, and at a record boundary.
    let (last_start, last_seq, _) = records.last().unwrap().clone();
    let dir = tmp.join("t-bundle-truncate");
    copy_dir(export, &dir);
    let data_file = dir.join("records.bin");
    std::fs::write(&data_file, &data[..data.len() - 8]).unwrap();
    assert_fail_at(&dir, &data_file, last_seq, last_start);
    let dir = tmp.join("t-bundle-truncate-record");
    copy_dir(export, &dir);
    let data_file = dir.join("records.bin");
    std::fs::write(&data_file, &data[..last_start as usize]).unwrap();
    assert_both_fail(&dir, &[]);
}

/// Damaged and missing manifests: every kind of damage when `all`, else a few.
fn tamper_manifest(tmp: &Path, export: &Path, all: bool) {
    let name = export.file_name().unwrap().to_string_lossy().into_owned();
    let original = std::fs::read(export.join("manifest.json")).unwrap();
    let text = String::from_utf8(original.clone()).unwrap();
    let manifest: Value = serde_json::from_str(&text).unwrap();
    let mut damages: Vec<(&str, Vec<u8>)> = vec![
        ("truncated", original[..original.len() / 2].to_vec()),
        ("not-json", b"not json at all".to_vec()),
    ];
    // A byte flipped inside the first structural quote mark.
    let mut flipped = original.clone();
    let quote = flipped.iter().position(|&b| b == b'"').unwrap();
    flipped[quote] ^= 0x01;
    damages.push(("flipped", flipped));
    let mut edit = |what: &'static str, f: &dyn Fn(&mut Value)| {
        let mut m = manifest.clone();
        f(&mut m);
        damages.push((what, serde_json::to_vec_pretty(&m).unwrap()));
    };
    edit("count", &|m| {
        m["count"] = Value::from(m["count"].as_u64().unwrap() + 1);
    });
    edit("unknown-member", &|m| m["extra"] = Value::from(1));
    edit("format", &|m| {
        m["format"] = Value::from("auditring-exports");
    });
    edit("version", &|m| m["version"] = Value::from(2));
    edit("chain", &|m| m["chain"] = Value::from("sha512"));
    edit("encoding", &|m| {
        let other = if m["encoding"] == "jsonl" {
            "bundle"
        } else {
            "jsonl"
        };
        m["encoding"] = Value::from(other);
    });
    edit("first-seq-zero", &|m| {
        m["first_seq"] = Value::from(0);
        m["count"] = Value::from(m["last_seq"].as_u64().unwrap() + 1);
    });
    edit("file-bytes", &|m| {
        m["files"][0]["bytes"] = Value::from(m["files"][0]["bytes"].as_u64().unwrap() + 1);
    });
    edit("file-sha256", &|m| {
        m["files"][0]["sha256"] = Value::from("0".repeat(64));
    });
    edit("head", &|m| m["head"] = Value::from("0".repeat(64)));
    edit("anchor", &|m| m["anchor"] = Value::from("1".repeat(64)));
    edit("last-seq", &|m| {
        m["last_seq"] = Value::from(m["last_seq"].as_u64().unwrap() - 1);
        m["count"] = Value::from(m["count"].as_u64().unwrap() - 1);
    });
    edit("last-seq-more", &|m| {
        m["last_seq"] = Value::from(m["last_seq"].as_u64().unwrap() + 1);
        m["count"] = Value::from(m["count"].as_u64().unwrap() + 1);
    });
    edit("file-bytes-less", &|m| {
        m["files"][0]["bytes"] = Value::from(m["files"][0]["bytes"].as_u64().unwrap() - 1);
    });
    // Hashes are written in lowercase only.
    edit("upper-head", &|m| {
        m["head"] = Value::from(m["head"].as_str().unwrap().to_ascii_uppercase());
    });
    edit("upper-sha256", &|m| {
        let upper = m["files"][0]["sha256"]
            .as_str()
            .unwrap()
            .to_ascii_uppercase();
        m["files"][0]["sha256"] = Value::from(upper);
    });
    edit("upper-log-id", &|m| {
        m["log_id"] = Value::from(m["log_id"].as_str().unwrap().to_ascii_uppercase());
    });
    if !all {
        damages.retain(|(what, _)| {
            [
                "flipped",
                "encoding",
                "file-sha256",
                "file-bytes",
                "head",
                "last-seq",
                "last-seq-more",
                "upper-head",
            ]
            .contains(what)
        });
    }
    // Where §13.4 says each damage fails.
    let data_name = manifest["files"][0]["name"].as_str().unwrap();
    let size = manifest["files"][0]["bytes"].as_u64().unwrap();
    let last_seq = manifest["last_seq"].as_u64().unwrap();
    assert_eq!(manifest["first_seq"], Value::from(1));
    let last_start = if data_name == "events.jsonl" {
        jsonl_lines(&export.join(data_name)).last().unwrap().0
    } else {
        bundle_records(&export.join(data_name)).last().unwrap().0
    };
    for (what, bytes) in damages {
        let dir = tmp.join(format!("t-manifest-{name}-{what}"));
        copy_dir(export, &dir);
        std::fs::write(dir.join("manifest.json"), bytes).unwrap();
        let data = dir.join(data_name);
        let (seq, file, offset) = match what {
            // Check 5: the size, at the smaller of the two.
            "file-bytes" => (None, data, size),
            "file-bytes-less" => (None, data, size - 1),
            // Check 6: the digest.
            "file-sha256" => (None, data, 0),
            // Check 4: the last record is past last_seq.
            "last-seq" => (Some(last_seq), data, last_start),
            // Check 7: a record missing at the end.
            "last-seq-more" => (Some(last_seq + 1), data, size),
            // Check 8: the chain does not end at the head.
            "head" => (Some(last_seq), data, size),
            // Check 2: the manifest itself (the anchor of an export from seq 1 is all zeros).
            _ => (None, dir.join("manifest.json"), 0),
        };
        assert_fail_at_with(&dir, &[], seq, &file, offset);
    }

    // No manifest: not an export (exit 2) for both.
    let dir = tmp.join(format!("t-manifest-{name}-missing"));
    copy_dir(export, &dir);
    std::fs::remove_file(dir.join("manifest.json")).unwrap();
    let rust = crate_verify(&dir, &[]);
    assert_eq!(rust.code, 2, "crate: {}", rust.describe());
    let py = py_verify(&dir, &[]);
    assert_eq!(py.code, 2, "verify_export.py: {}", py.describe());
    assert_eq!(py.json["ok"], Value::Bool(false));
}

/// The index of the first byte where `a` and `b` differ (the shorter length if one is a prefix
/// of the other).
fn first_diff(a: &[u8], b: &[u8]) -> usize {
    a.iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()))
}

/// `text` with the one occurrence of `from` replaced by `to`.
fn replace_once(text: &[u8], from: &str, to: &str) -> Vec<u8> {
    let at = find(text, from.as_bytes()).unwrap_or_else(|| {
        panic!(
            "{from:?} is not in {:?}",
            String::from_utf8_lossy(text).into_owned()
        )
    });
    assert!(
        find(&text[at + 1..], from.as_bytes()).is_none(),
        "{from:?} occurs twice"
    );
    [&text[..at], to.as_bytes(), &text[at + from.len()..]].concat()
}

fn read_manifest(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap()
}

fn write_manifest(dir: &Path, manifest: &Value) {
    std::fs::write(
        dir.join("manifest.json"),
        serde_json::to_vec_pretty(manifest).unwrap(),
    )
    .unwrap();
}

/// Writes `data` as the export's data file and states its size and SHA-256 in the manifest, so
/// that what fails is the check of the records, not the digest.
fn rewrite_data(dir: &Path, data: &[u8]) {
    let mut manifest = read_manifest(dir);
    let name = manifest["files"][0]["name"].as_str().unwrap().to_owned();
    std::fs::write(dir.join(&name), data).unwrap();
    let digest: String = Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    manifest["files"][0]["bytes"] = Value::from(data.len() as u64);
    manifest["files"][0]["sha256"] = Value::from(digest);
    write_manifest(dir, &manifest);
}

/// A small log written with the library: lines with details, without anything, with a
/// timestamp of 0, with details holding a line break.
fn small_log(dir: &Path) {
    let ring = Ring::builder(dir)
        .segment_size(SEGMENT_SIZE)
        .open()
        .unwrap();
    ring.push(
        Event::new("user.login")
            .with_actor("alice")
            .with_timestamp_nanos(1_700_000_000_000_000_000)
            .with_details_json("{\"k\":[1,\"v\"]}")
            .unwrap(),
    )
    .unwrap();
    ring.push(Event::new("bare").with_timestamp_nanos(0))
        .unwrap();
    ring.push(
        Event::new("with.raw")
            .with_trace_id("t-1")
            .with_details_json("{\"x\":\n 1}")
            .unwrap(),
    )
    .unwrap();
    for i in 0..40u64 {
        ring.push(
            Event::new("filler")
                .with_actor(format!("user-{i}"))
                .with_timestamp_nanos(1_700_000_000_000_000_000 + i as i64)
                .with_details(&serde_json::json!({ "i": i }))
                .unwrap(),
        )
        .unwrap();
    }
    ring.close().unwrap();
}

/// Where a non-canonical line fails (FORMAT.md §13.3, §13.4 check 4).
#[derive(Clone, Copy, Debug)]
enum At {
    /// The line parses: it is written again from its values and compared, and fails at the
    /// first byte that differs.
    FirstDiff,
    /// The line is not one JSON object: it fails where it starts.
    LineStart,
}

/// §13.3 "One record, one line": a line holding the right values and hashes but not written in
/// its one form fails, in both verifiers, at the first byte that differs from that form.
#[test]
fn python_verifier_agrees_on_one_record_one_line() {
    python();
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("log");
    small_log(&log);
    let export_dir = tmp.path().join("export");
    export(&log, &export_dir, "jsonl", &[]);
    let lines = jsonl_lines(&export_dir.join("events.jsonl"));
    let line_of = |kind: &str| {
        let needle = format!("\"kind\":\"{kind}\"");
        lines
            .iter()
            .find(|(_, _, l)| find(l, needle.as_bytes()).is_some())
            .unwrap()
            .clone()
    };
    let upper_leaf = |l: &[u8]| {
        let at = find(l, b"\"leaf\":\"").unwrap() + 8;
        let mut out = l.to_vec();
        out[at..at + 64].make_ascii_uppercase();
        assert_ne!(out, l, "a leaf without a letter");
        out
    };
    type Edit = Box<dyn Fn(&[u8]) -> Vec<u8>>;
    let cases: Vec<(&str, &str, Edit, At)> = vec![
        (
            "space",
            "user.login",
            Box::new(|l| replace_once(l, "\"kind\":\"", "\"kind\": \"")),
            At::FirstDiff,
        ),
        (
            "reordered",
            "user.login",
            Box::new(|l| {
                replace_once(
                    l,
                    "\"actor\":\"alice\",\"trace_id\":null",
                    "\"trace_id\":null,\"actor\":\"alice\"",
                )
            }),
            At::FirstDiff,
        ),
        (
            "upper-case-hex",
            "bare",
            Box::new(upper_leaf),
            At::FirstDiff,
        ),
        (
            "crlf",
            "bare",
            Box::new(|l| [l, b"\r"].concat()),
            At::FirstDiff,
        ),
        (
            "crlf-details",
            "user.login",
            Box::new(|l| [l, b"\r"].concat()),
            At::FirstDiff,
        ),
        (
            "trailing-space",
            "bare",
            Box::new(|l| [l, b" "].concat()),
            At::FirstDiff,
        ),
        (
            "trailing-bytes",
            "bare",
            Box::new(|l| [l, b"{}"].concat()),
            At::LineStart,
        ),
        (
            "trailing-bytes-details",
            "user.login",
            Box::new(|l| [l, b"x"].concat()),
            At::LineStart,
        ),
        (
            "details-raw-without-line-break",
            "user.login",
            Box::new(|l| {
                replace_once(
                    l,
                    r#","details":{"k":[1,"v"]}}"#,
                    r#","details_raw":"{\"k\":[1,\"v\"]}"}"#,
                )
            }),
            At::FirstDiff,
        ),
        (
            "details-with-line-break",
            "with.raw",
            Box::new(|l| {
                replace_once(
                    l,
                    r#","details_raw":"{\"x\":\n 1}"}"#,
                    ",\"details\":{\"x\":\r 1}}",
                )
            }),
            At::FirstDiff,
        ),
        (
            "details-raw-null",
            "bare",
            Box::new(|l| [&l[..l.len() - 1], b",\"details_raw\":null}"].concat()),
            At::FirstDiff,
        ),
        (
            "negative-zero",
            "bare",
            Box::new(|l| replace_once(l, "\"timestamp\":0,", "\"timestamp\":-0,")),
            At::FirstDiff,
        ),
        (
            "missing-actor",
            "bare",
            Box::new(|l| replace_once(l, "\"actor\":null,", "")),
            At::FirstDiff,
        ),
        (
            "escaped-another-way",
            "user.login",
            Box::new(|l| replace_once(l, "\"alice\"", "\"\\u0061lice\"")),
            At::FirstDiff,
        ),
    ];
    for (name, kind, edit, at) in cases {
        let (start, seq, line) = line_of(kind);
        let edited = edit(&line);
        // The line, edited, with its line feed.
        let edited = [&edited[..], b"\n"].concat();
        let dir = tmp.path().join(format!("line-{name}"));
        copy_dir(&export_dir, &dir);
        let data_file = dir.join("events.jsonl");
        let data = std::fs::read(&data_file).unwrap();
        let start_usize = start as usize;
        let new_data = [
            &data[..start_usize],
            &edited[..],
            &data[start_usize + line.len() + 1..],
        ]
        .concat();
        rewrite_data(&dir, &new_data);
        // Written again from its values, the edited line gives back the original one (but for
        // "details-with-line-break", whose rewrite keeps the original up to past where the edit
        // starts): where it differs from the original is where it differs from its one form.
        let offset = start
            + match at {
                At::FirstDiff => first_diff(&[&line[..], b"\n"].concat(), &edited) as u64,
                At::LineStart => 0,
            };
        let (rust, py) = assert_both_fail(&dir, &[]);
        let expected = (
            Value::from(seq),
            Value::from(data_file.to_str().unwrap()),
            Value::from(offset),
        );
        assert_eq!(py.error_at(), expected, "{name}: {}", py.describe());
        let (rust_seq, rust_file, rust_offset) = rust.error_at();
        assert_eq!(
            (&rust_seq, &rust_file),
            (&expected.0, &expected.1),
            "{name}"
        );
        assert_eq!(
            rust_offset, expected.2,
            "{name}: the verifiers disagree:\npython: {}\ncrate: {}",
            py.json, rust.json
        );
    }
}

/// The rows of FORMAT.md §13.4 beyond a single line: each failure at the seq, file and offset
/// the table gives, in both verifiers, in both encodings.
#[test]
fn python_verifier_agrees_on_the_verification_table() {
    python();
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("log");
    small_log(&log);
    let ex = |name: &str| tmp.path().join(name);
    for (format, data_name) in [("jsonl", "events.jsonl"), ("bundle", "records.bin")] {
        let short = ex(&format!("{format}-1-20"));
        let short_m = export(&log, &short, format, &["--from", "1", "--to", "20"]);
        let long = ex(&format!("{format}-1-21"));
        let long_m = export(&log, &long, format, &["--from", "1", "--to", "21"]);
        let short_size = short_m["files"][0]["bytes"].as_u64().unwrap();

        // Files beside the manifest and its data file are not part of the export.
        let extra = ex(&format!("{format}-extra-files"));
        copy_dir(&short, &extra);
        std::fs::write(extra.join("notes.txt"), b"not part of the export").unwrap();
        let other_data = if format == "jsonl" {
            "records.bin"
        } else {
            "events.jsonl"
        };
        std::fs::write(extra.join(other_data), b"garbage").unwrap();
        std::fs::create_dir(extra.join("sub")).unwrap();
        assert_both_ok(&extra, &short_m, &[]);

        // Check 3: the data file is missing: an integrity failure, not "not an export".
        let missing = ex(&format!("{format}-missing-data"));
        copy_dir(&short, &missing);
        std::fs::remove_file(missing.join(data_name)).unwrap();
        assert_fail_at_with(&missing, &[], None, &missing.join(data_name), 0);

        // Check 4: a record past last_seq, valid in every other way (the records of 1..=21 under
        // the manifest of 1..=20), fails where it starts.
        let past = ex(&format!("{format}-record-past-last"));
        copy_dir(&long, &past);
        let mut m = short_m.clone();
        m["files"] = long_m["files"].clone();
        write_manifest(&past, &m);
        assert_fail_at_with(&past, &[], Some(21), &past.join(data_name), short_size);

        // Check 7: fewer records than the manifest says (1..=20 under the manifest of 1..=21):
        // the first missing seq, at the end of the file.
        let fewer = ex(&format!("{format}-fewer-records"));
        copy_dir(&short, &fewer);
        let mut m = long_m.clone();
        m["files"] = short_m["files"].clone();
        write_manifest(&fewer, &m);
        assert_fail_at_with(&fewer, &[], Some(21), &fewer.join(data_name), short_size);

        // Check 8: the chain does not end at the manifest's head.
        let wrong_head = ex(&format!("{format}-wrong-head"));
        copy_dir(&short, &wrong_head);
        let mut m = short_m.clone();
        m["head"] = long_m["head"].clone();
        write_manifest(&wrong_head, &m);
        assert_fail_at_with(
            &wrong_head,
            &[],
            Some(20),
            &wrong_head.join(data_name),
            short_size,
        );

        // Check 9: a head obtained out of band differs.
        let head = long_m["head"].as_str().unwrap();
        assert_fail_at_with(
            &short,
            &["--expect-head", head],
            Some(20),
            &short.join(data_name),
            short_size,
        );

        // Check 5: the size differs, reported at the smaller of the two sizes.
        for (what, delta) in [("more", 1i64), ("less", -1)] {
            let dir = ex(&format!("{format}-size-{what}"));
            copy_dir(&short, &dir);
            let mut m = short_m.clone();
            m["files"][0]["bytes"] = Value::from(short_size.checked_add_signed(delta).unwrap());
            write_manifest(&dir, &m);
            let at = short_size.min(short_size.checked_add_signed(delta).unwrap());
            assert_fail_at_with(&dir, &[], None, &dir.join(data_name), at);
        }

        // Check 2: an export from seq 1 anchored elsewhere than at zeros is damaged.
        let anchored = ex(&format!("{format}-anchor-at-seq-1"));
        copy_dir(&short, &anchored);
        let mut m = short_m.clone();
        m["anchor"] = long_m["head"].clone();
        write_manifest(&anchored, &m);
        assert_fail_at_with(&anchored, &[], None, &anchored.join("manifest.json"), 0);

        // Check 2: an upper-case hash in the manifest.
        let upper = ex(&format!("{format}-upper-case-manifest"));
        copy_dir(&short, &upper);
        let mut m = short_m.clone();
        m["files"][0]["sha256"] = Value::from(
            m["files"][0]["sha256"]
                .as_str()
                .unwrap()
                .to_ascii_uppercase(),
        );
        assert_ne!(m, short_m);
        write_manifest(&upper, &m);
        assert_fail_at_with(&upper, &[], None, &upper.join("manifest.json"), 0);
    }

    // Check 10: --after a previous export of another log, even one that otherwise links, fails
    // at this export's first seq, in its manifest.
    let first = ex("link-first");
    let first_m = export(&log, &first, "jsonl", &["--from", "1", "--to", "20"]);
    let second = ex("link-second");
    let second_m = export(&log, &second, "bundle", &["--from", "21"]);
    assert_both_ok(&second, &second_m, &["--after", first.to_str().unwrap()]);
    let stranger = ex("link-other-log");
    copy_dir(&first, &stranger);
    let mut m = first_m.clone();
    let id = m["log_id"].as_str().unwrap();
    let other_id = format!(
        "{}{}",
        if id.starts_with('0') { "1" } else { "0" },
        &id[1..]
    );
    m["log_id"] = Value::from(other_id);
    write_manifest(&stranger, &m);
    assert_both_ok(&stranger, &m, &[]);
    let (rust, py) = assert_both_fail(&second, &["--after", stranger.to_str().unwrap()]);
    assert!(
        rust.stderr.contains("another log") || rust.stdout.contains("another log"),
        "{}",
        rust.describe()
    );
    assert!(
        py.json["error"]["reason"]
            .as_str()
            .unwrap()
            .contains("another log"),
        "{}",
        py.describe()
    );
    assert_fail_at_with(
        &second,
        &["--after", stranger.to_str().unwrap()],
        Some(21),
        &second.join("manifest.json"),
        0,
    );
    // And an export of a log that really is another one.
    let log2 = ex("log2");
    small_log(&log2);
    let other_first = ex("other-log-first");
    export(&log2, &other_first, "jsonl", &["--from", "1", "--to", "20"]);
    assert_fail_at_with(
        &second,
        &["--after", other_first.to_str().unwrap()],
        Some(21),
        &second.join("manifest.json"),
        0,
    );
}

/// Runs `cmd` as a child limited to `max_memory` bytes of address space (`RLIMIT_AS`), with a
/// guard against a hang: a child still running after two minutes is killed and the test fails.
/// (A FIFO would hang a verifier that opened it to read; a whole-file read of a huge file would
/// fail the limit.)
fn bounded(what: &str, mut cmd: Command, max_memory: u64) -> std::process::Output {
    use std::os::unix::process::CommandExt;
    // SAFETY: setrlimit is async-signal-safe, and the closure touches nothing else.
    unsafe {
        cmd.pre_exec(move || {
            let limit = libc::rlimit {
                rlim_cur: max_memory,
                rlim_max: max_memory,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &raw const limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("running {what}: {e}"));
    let pid = child.id() as libc::pid_t;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    if let Ok(out) = rx.recv_timeout(std::time::Duration::from_secs(120)) {
        out.unwrap()
    } else {
        // SAFETY: signals the child this test started, which has not been waited for.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        panic!("{what} hung (killed after two minutes)");
    }
}

/// Both verifiers on `dir`, each under a memory limit and a hang guard: (crate, python).
fn both_bounded(dir: &Path) -> (Report, Report) {
    const LIMIT: u64 = 1 << 30;
    let mut c = auditring();
    c.arg("verify-export").arg(dir).arg("--json");
    let rust = Report::read(
        "auditring verify-export",
        &bounded("auditring", c, LIMIT),
        false,
    );
    let mut p = Command::new(python());
    p.arg(script()).arg(dir);
    let py = Report::read(
        "verify_export.py",
        &bounded("verify_export.py", p, LIMIT),
        true,
    );
    (rust, py)
}

/// §13 "Bounds": what the verifiers read is bounded by what the format allows, whatever the files
/// hold. Each case runs both verifiers as children limited to 1 GiB of address space and guarded
/// against a hang; both must report the same failure, promptly: a manifest or data file that is
/// a symbolic link (to `/dev/zero`), a FIFO or a directory is not read; a sparse 3 GB manifest is
/// damaged without being read; a 3 GB record or line fails where it starts; a 10 MB line is
/// checked in bounded memory (it cost `verify_export.py` 1.2 GB).
#[test]
fn both_verifiers_do_bounded_work_on_hostile_files() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("log");
    small_log(&log);
    let jsonl = tmp.path().join("jsonl");
    let bundle = tmp.path().join("bundle");
    export(&log, &jsonl, "jsonl", &[]);
    export(&log, &bundle, "bundle", &[]);
    let mut n = 0;
    let mut case = |from: &Path, edit: &dyn Fn(&Path)| {
        n += 1;
        let dir = tmp.path().join(format!("case-{n}"));
        copy_dir(from, &dir);
        edit(&dir);
        dir
    };
    let fifo = |p: &Path| {
        std::fs::remove_file(p).unwrap();
        let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
        // SAFETY: a NUL-terminated path that outlives the call.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    };
    let to_zero = |p: &Path| {
        std::fs::remove_file(p).unwrap();
        std::os::unix::fs::symlink("/dev/zero", p).unwrap();
    };
    let dir_instead = |p: &Path| {
        std::fs::remove_file(p).unwrap();
        std::fs::create_dir(p).unwrap();
    };
    let sparse = |p: &Path, len: u64| {
        std::fs::OpenOptions::new()
            .write(true)
            .open(p)
            .unwrap()
            .set_len(len)
            .unwrap();
    };

    // Not an export (exit 2): the manifest is not a regular file.
    for (edit, what) in [
        (&to_zero as &dyn Fn(&Path), "a symbolic link"),
        (&fifo, "a FIFO"),
        (&dir_instead, "a directory"),
    ] {
        let dir = case(&jsonl, &|d| edit(&d.join("manifest.json")));
        let (rust, py) = both_bounded(&dir);
        for r in [&rust, &py] {
            assert_eq!(r.code, 2, "{what}: {}", r.describe());
            assert!(r.stderr.contains(what), "{what}: {}", r.describe());
        }
    }
    // A damaged manifest (exit 1), not read: 3 GB, sparse.
    let dir = case(&jsonl, &|d| sparse(&d.join("manifest.json"), 3 << 30));
    let (rust, py) = both_bounded(&dir);
    let manifest = Value::from(dir.join("manifest.json").to_str().unwrap());
    for r in [&rust, &py] {
        assert_eq!(r.code, 1, "{}", r.describe());
        assert_eq!(r.error_at(), (Value::Null, manifest.clone(), 0.into()));
        assert!(
            r.json["error"]["reason"]
                .as_str()
                .unwrap()
                .contains("3221225472 bytes, more than a manifest may be (65536)"),
            "{}",
            r.describe()
        );
    }

    // An integrity failure of the data file (exit 1), at its start: not a regular file.
    for (from, name) in [(&jsonl, "events.jsonl"), (&bundle, "records.bin")] {
        for (edit, what) in [
            (&to_zero as &dyn Fn(&Path), "a symbolic link"),
            (&fifo, "a FIFO"),
            (&dir_instead, "a directory"),
        ] {
            let dir = case(from, &|d| edit(&d.join(name)));
            let (rust, py) = both_bounded(&dir);
            let file = Value::from(dir.join(name).to_str().unwrap());
            for r in [&rust, &py] {
                assert_eq!(r.code, 1, "{name} {what}: {}", r.describe());
                assert_eq!(r.error_at(), (Value::Null, file.clone(), 0.into()));
                let reason = r.json["error"]["reason"].as_str().unwrap();
                assert!(reason.contains(what), "{reason}");
            }
        }
    }

    // A bundle whose first record claims a body of 3 GB, in a sparse file of that size that the
    // manifest vouches for: it fails where the record starts, unread.
    let dir = case(&bundle, &|d| {
        let p = d.join("records.bin");
        let mut data = std::fs::read(&p).unwrap();
        data[4..8].copy_from_slice(&((3u32 << 30) - 200).to_le_bytes());
        rewrite_data(d, &data);
        sparse(&p, 3 << 30);
        let mut m = read_manifest(d);
        m["files"][0]["bytes"] = Value::from(3u64 << 30);
        write_manifest(d, &m);
    });
    let (rust, py) = both_bounded(&dir);
    let file = Value::from(dir.join("records.bin").to_str().unwrap());
    for r in [&rust, &py] {
        assert_eq!(r.code, 1, "{}", r.describe());
        assert_eq!(r.error_at(), (Value::from(1), file.clone(), 0.into()));
        let reason = r.json["error"]["reason"].as_str().unwrap();
        assert!(
            reason.contains("larger than an export's records may be (67108864)"),
            "{reason}"
        );
    }

    // A JSONL export followed by 3 GB of zeros with no line feed: the line fails where it starts,
    // after 64 MiB of it were read.
    let lines = std::fs::metadata(jsonl.join("events.jsonl")).unwrap().len();
    let dir = case(&jsonl, &|d| {
        sparse(&d.join("events.jsonl"), 3 << 30);
        let mut m = read_manifest(d);
        m["files"][0]["bytes"] = Value::from(3u64 << 30);
        write_manifest(d, &m);
    });
    let (rust, py) = both_bounded(&dir);
    let file = Value::from(dir.join("events.jsonl").to_str().unwrap());
    let events = read_manifest(&jsonl)["count"].as_u64().unwrap();
    for r in [&rust, &py] {
        assert_eq!(r.code, 1, "{}", r.describe());
        assert_eq!(
            r.error_at(),
            (Value::from(events + 1), file.clone(), lines.into())
        );
        let reason = r.json["error"]["reason"].as_str().unwrap();
        assert!(
            reason.contains("a line longer than 67108864 bytes"),
            "{reason}"
        );
    }

    // A 10 MB line (a 10 MB kind, in an otherwise well-formed line) is read and checked in
    // bounded memory, and fails for what it is.
    let dir = case(&jsonl, &|d| {
        let p = d.join("events.jsonl");
        let data = std::fs::read(&p).unwrap();
        let first_end = data.iter().position(|&b| b == b'\n').unwrap() + 1;
        let line = &data[..first_end];
        let kind_at = find(line, b"\"kind\":\"").unwrap() + 8;
        let kind_end = kind_at + line[kind_at..].iter().position(|&b| b == b'"').unwrap();
        let mut long = line[..kind_at].to_vec();
        long.extend(std::iter::repeat_n(b'k', 10 << 20));
        long.extend_from_slice(&line[kind_end..]);
        long.extend_from_slice(&data[first_end..]);
        rewrite_data(d, &long);
    });
    let (rust, py) = both_bounded(&dir);
    let file = Value::from(dir.join("events.jsonl").to_str().unwrap());
    for r in [&rust, &py] {
        assert_eq!(r.code, 1, "{}", r.describe());
        assert_eq!(r.error_at(), (Value::from(1), file.clone(), 0.into()));
        let reason = r.json["error"]["reason"].as_str().unwrap();
        assert!(reason.contains("kind"), "{reason}");
    }
}

// ---------------------------------------------------------------------------------------------
// §13.6: exports tied to signed checkpoints.

/// The start of every reason a `tree.json` that cannot be used gives (`Reason::ExportTree`);
/// what follows it may be a JSON parser's own words, which differ between the two verifiers.
const EXPORT_TREE: &str = "the export's tree.json cannot be used: ";

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `auditring keygen NAME` in `dir`: (the secret key file, a file holding the verifier key).
fn keygen(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let secret = dir.join(format!("{name}.key"));
    let o = auditring()
        .args(["keygen", name, "--out"])
        .arg(&secret)
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    let public = dir.join(format!("{name}.pub"));
    std::fs::write(&public, &o.stdout).unwrap();
    (secret, public)
}

/// A log of 1,000 events with a checkpoint signed every 100 (`append --checkpoint-every`) and at
/// each segment sealed, as an auditor has it: the log's verifier key, and each checkpoint in a
/// file of its own.
struct SignedLog {
    tmp: PathBuf,
    log: PathBuf,
    /// The file holding the log's verifier key.
    key: PathBuf,
    /// `checkpoints.jsonl`: every checkpoint signed.
    history: PathBuf,
    /// Their sizes, in order: every 100 records, and where a segment was sealed.
    sizes: Vec<u64>,
}

impl SignedLog {
    fn new(tmp: &Path) -> SignedLog {
        let (log, cps) = (tmp.join("log"), tmp.join("cps"));
        let (secret, key) = keygen(tmp, "log");
        let events: String = (0..1_000)
            .map(|i| format!("{{\"kind\":\"tied\",\"details\":{{\"i\":{i}}}}}\n"))
            .collect();
        let signing = format!("--checkpoint-key={}", s(&secret));
        let sink = format!("--checkpoint-dir={}", s(&cps));
        append_with(&log, &[&signing, &sink, "--checkpoint-every=100"], &events);
        let history = cps.join("checkpoints.jsonl");
        let mut sizes = Vec::new();
        for line in std::fs::read_to_string(&history).unwrap().lines() {
            let v: Value = serde_json::from_str(line).unwrap();
            let note = v["note"].as_str().unwrap();
            std::fs::write(tmp.join(format!("cp{}", v["size"])), note).unwrap();
            sizes.push(v["size"].as_u64().unwrap());
        }
        assert!(sizes.len() > 10 && sizes.is_sorted(), "{sizes:?}");
        SignedLog {
            tmp: tmp.to_path_buf(),
            log,
            key,
            history,
            sizes,
        }
    }

    /// The file holding the checkpoint of size `n`.
    fn checkpoint(&self, n: u64) -> String {
        let path = self.tmp.join(format!("cp{n}"));
        assert!(path.is_file(), "no checkpoint of size {n}");
        path.to_str().unwrap().to_owned()
    }

    /// Exports seqs `from..=to` as `format` to `name`, tied to the checkpoint of size `n`.
    fn export_tied(&self, name: &str, format: &str, (from, to): (u64, u64), n: u64) -> PathBuf {
        let out = self.tmp.join(name);
        let (from, to, cp) = (from.to_string(), to.to_string(), self.checkpoint(n));
        let range = ["--from", &from, "--to", &to, "--checkpoint", &cp];
        export(&self.log, &out, format, &range);
        assert!(out.join("tree.json").is_file());
        out
    }
}

/// Both verifiers, given `extra`, exit with `code` on `dir`. Short of a usage error (2), they
/// report the same records and the same checkpoints, each with whether it matched, and the same
/// failure: at the same seq, file and offset, for the same reason (for a `tree.json` that cannot
/// be used, both say so). Returns the crate's report.
fn assert_agree(dir: &Path, extra: &[&str], code: i32) -> Report {
    let (rust, py) = (crate_verify(dir, extra), py_verify(dir, extra));
    let both = || {
        format!(
            "{extra:?} on {}:\ncrate: {}\npython: {}",
            dir.display(),
            rust.describe(),
            py.describe()
        )
    };
    assert_eq!((rust.code, py.code), (code, code), "{}", both());
    if code == 2 {
        return rust;
    }
    for key in ["ok", "events", "last_seq", "head_hash", "checkpoints"] {
        assert_eq!(py.json[key], rust.json[key], "{key}: {}", both());
    }
    if code == 0 {
        assert!(py.json["error"].is_null(), "{}", both());
        return rust;
    }
    assert_eq!(py.error_at(), rust.error_at(), "{}", both());
    let (r, p) = (reason(&rust), reason(&py));
    if r.starts_with(EXPORT_TREE) {
        assert!(p.starts_with(EXPORT_TREE), "{}", both());
    } else {
        assert_eq!(p, r, "{}", both());
    }
    rust
}

fn reason(r: &Report) -> &str {
    r.json["error"]["reason"].as_str().unwrap()
}

/// `(size, consistent)` of every checkpoint a report lists.
fn compared(r: &Report) -> Vec<(u64, bool)> {
    let list = r.json["checkpoints"].as_array().unwrap();
    let one = |c: &Value| (c["size"].as_u64().unwrap(), c["consistent"] == true);
    list.iter().map(one).collect()
}

/// `(seq, file, offset)` as a report has them.
fn at(seq: Option<u64>, file: &Path, offset: u64) -> (Value, Value, Value) {
    (seq.into(), s(file).into(), offset.into())
}

/// §13.6 T3 as both verifiers run it: an export tied to the checkpoint after it is proved with
/// the checkpoint it carries, and with checkpoints given from its first seq − 1 to its last
/// seq; one before it cannot be checked, one past it at another size than its proof's is beyond
/// it. Witnesses' cosignatures count alike.
#[test]
fn python_verifier_agrees_on_exports_tied_to_checkpoints() {
    let tmp = tempfile::tempdir().unwrap();
    let signed = SignedLog::new(tmp.path());
    let key = s(&signed.key);
    let tied = signed.export_tied("tied", "bundle", (201, 600), 1_000);
    let data = tied.join("records.bin");
    let with = |sizes: &[u64]| -> Vec<String> {
        let mut args = vec!["--key".to_owned(), key.to_owned()];
        for &n in sizes {
            args.extend(["--checkpoint".to_owned(), signed.checkpoint(n)]);
        }
        args
    };
    let agree = |dir: &Path, args: &[String], code| {
        assert_agree(
            dir,
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
            code,
        )
    };

    // The checkpoint the export carries (size 1,000), through its consistency proof.
    assert_eq!(compared(&agree(&tied, &with(&[]), 0)), [(1_000, true)]);
    // Within its reach, from the root of its prefix (200) to its last seq (600).
    for sizes in [&[200][..], &[600], &[500, 300]] {
        let mut expected: Vec<(u64, bool)> = sizes.iter().map(|&n| (n, true)).collect();
        expected.sort_unstable();
        assert_eq!(compared(&agree(&tied, &with(sizes), 0)), expected);
    }
    // Before it, or past it without a proof to that size: neither can be compared.
    let r = agree(&tied, &with(&[100]), 1);
    assert_eq!(r.error_at(), at(Some(201), &data, 0));
    assert!(
        reason(&r).contains("fewer than the 200 before the export"),
        "{}",
        reason(&r)
    );
    let r = agree(&tied, &with(&[700, 1_000]), 1);
    assert_eq!(r.error_at(), at(Some(201), &data, 0));
    assert!(reason(&r).contains("(only to 1000)"), "{}", reason(&r));
    assert_eq!(compared(&r), [(700, false), (1_000, true)]);
    // The whole history: each reported, the first that fails being the failure.
    let history = [
        with(&[]),
        vec!["--checkpoint".into(), s(&signed.history).into()],
    ]
    .concat();
    let r = agree(&tied, &history, 1);
    let within = |n: &u64| (200..=600).contains(n) || *n == 1_000;
    let expected: Vec<(u64, bool)> = signed.sizes.iter().map(|n| (*n, within(n))).collect();
    assert_eq!(compared(&r), expected);
    assert!(reason(&r).contains("first 100 records"), "{}", reason(&r));

    // From seq 1 (an empty prefix), as JSONL, tied to a checkpoint at its last seq.
    let first = signed.export_tied("first", "jsonl", (1, 600), 600);
    assert_eq!(compared(&agree(&first, &with(&[]), 0)), [(600, true)]);
    assert_eq!(
        compared(&agree(&first, &with(&[100, 600]), 0)),
        [(100, true), (600, true)]
    );
    let r = agree(&first, &with(&[1_000]), 1);
    assert_eq!(r.error_at(), at(Some(1), &first.join("events.jsonl"), 0));
    assert!(reason(&r).contains("(only to 600)"), "{}", reason(&r));

    // A witness cosigns the checkpoint of size 1,000; a quorum of it is met, one of two is not.
    let (witness, witness_key) = keygen(tmp.path(), "witness");
    let (_, other_witness) = keygen(tmp.path(), "other-witness");
    let o = auditring()
        .args(["witness", "--key", s(&witness), "--log-key", key, "--state"])
        .arg(tmp.path().join("witness-state"))
        .arg(signed.checkpoint(1_000))
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    let cosigned = tmp.path().join("cosigned");
    std::fs::write(&cosigned, &o.stdout).unwrap();
    let quorum = |k: &str| {
        let mut args = with(&[]);
        args.extend(["--checkpoint", s(&cosigned), "--witness", s(&witness_key)].map(String::from));
        args.extend(["--witness", s(&other_witness), "--quorum", k].map(String::from));
        args
    };
    assert_eq!(compared(&agree(&tied, &quorum("1"), 0)), [(1_000, true)]);
    agree(&tied, &quorum("2"), 2);
}

/// §13.6 T1 to T3 on a `tree.json` tampered with: a prefix or a proof that no longer leads to
/// the checkpoint's root fails at the export's first seq; a file that is not a tree file (another
/// range, malformed, a member more or less, upper-case hex, numbers in other forms, a prefix of
/// the wrong length, a symbolic link, a directory, over 256 KiB) fails at `tree.json`. Without a
/// key to trust, `tree.json` is not read.
#[test]
fn python_verifier_agrees_on_tampered_tree_files() {
    let tmp = tempfile::tempdir().unwrap();
    let signed = SignedLog::new(tmp.path());
    let tied = signed.export_tied("tied", "bundle", (201, 600), 1_000);
    let trusting = ["--key", s(&signed.key)];
    let text = std::fs::read(tied.join("tree.json")).unwrap();
    let tree: Value = serde_json::from_slice(&text).unwrap();
    let hash = |member: &str| tree[member][0].as_str().unwrap().to_owned();
    let flip = |h: &str| format!("{}{}", &h[..63], if h.ends_with('0') { "1" } else { "0" });
    let edit = |f: &dyn Fn(&mut Value)| {
        let mut t = tree.clone();
        f(&mut t);
        serde_json::to_vec_pretty(&t).unwrap()
    };
    let text_str = |b: &[u8]| String::from_utf8(b.to_vec()).unwrap();
    let padded = |len: usize| [&text[..], &vec![b' '; len - text.len()]].concat();
    let (prefix, proof) = (hash("prefix"), hash("consistency"));

    // T3: the prefix or the proof no longer leads to the root of the checkpoint.
    let leads_elsewhere = [
        replace_once(&text, &prefix, &flip(&prefix)),
        replace_once(&text, &proof, &flip(&proof)),
        edit(&|t| t["consistency"] = Value::Array(vec![])),
    ];
    // T1 and T2: not a tree file for this export.
    let not_a_tree_file = [
        edit(&|t| t["first_seq"] = 202.into()),
        text[..text.len() / 2].to_vec(),
        edit(&|t| t["extra"] = 1.into()),
        edit(&|t| drop(t.as_object_mut().unwrap().remove("consistency"))),
        replace_once(&text, &prefix, &prefix.to_uppercase()),
        replace_once(&text, "\"version\": 1,", "\"version\": 1,\"version\": 1,"),
        replace_once(&text, "\"version\": 1,", "\"version\": 1.0,"),
        replace_once(&text, "\"version\": 1,", "\"version\": -0,"),
        replace_once(&text, "\"first_seq\": 201,", "\"first_seq\": 2.01e2,"),
        edit(&|t| t["format"] = "auditring-export".into()),
        edit(&|t| t["version"] = 2.into()),
        edit(&|t| drop(t["prefix"].as_array_mut().unwrap().remove(0))),
        padded(256 * 1024 + 1),
    ];
    let mut n = 0;
    let mut case = |put: &dyn Fn(&Path)| {
        n += 1;
        let dir = tmp.path().join(format!("tree-{n}"));
        copy_dir(&tied, &dir);
        let path = dir.join("tree.json");
        std::fs::remove_file(&path).unwrap();
        put(&path);
        dir
    };
    for content in &leads_elsewhere {
        let dir = case(&|p| std::fs::write(p, content).unwrap());
        let r = assert_agree(&dir, &trusting, 1);
        assert_eq!(r.error_at(), at(Some(201), &dir.join("records.bin"), 0));
        let rewritten = "records after seq 200 and up to seq 1000 were rewritten";
        assert!(reason(&r).contains(rewritten), "{}", text_str(content));
        // Without a key it is an export like any other.
        assert_agree(&dir, &[], 0);
    }
    let link_to_the_real_one = |p: &Path| std::os::unix::fs::symlink(tied.join("tree.json"), p);
    let mut unusable: Vec<PathBuf> = not_a_tree_file
        .iter()
        .map(|content| case(&|p| std::fs::write(p, content).unwrap()))
        .collect();
    unusable.push(case(&|p| link_to_the_real_one(p).unwrap()));
    unusable.push(case(&|p| std::fs::create_dir(p).unwrap()));
    for dir in &unusable {
        let r = assert_agree(dir, &trusting, 1);
        assert_eq!(r.error_at(), at(None, &dir.join("tree.json"), 0));
        assert!(reason(&r).starts_with(EXPORT_TREE), "{}", reason(&r));
        assert_agree(dir, &[], 0);
    }
    // At most 256 KiB, exactly: one of that size is read.
    let dir = case(&|p| std::fs::write(p, padded(256 * 1024)).unwrap());
    assert_eq!(compared(&assert_agree(&dir, &trusting, 0)), [(1_000, true)]);
}

/// §13.6 against a rewrite that the chain alone misses: a log whose record 451 was changed and
/// every hash after it recomputed exports (from seq 1, without `tree.json`) as a valid export;
/// both verifiers find it consistent with the real checkpoints before the change and refuse it
/// against those after, as records rewritten after seq 0 (`after` is the export's first seq
/// − 1, §13.6).
#[test]
fn python_verifier_agrees_on_a_rewritten_log_against_real_checkpoints() {
    let tmp = tempfile::tempdir().unwrap();
    let signed = SignedLog::new(tmp.path());
    let rewritten = tmp.path().join("rewritten");
    copy_dir(&signed.log, &rewritten);
    let mut segments = std::collections::BTreeMap::new();
    for entry in std::fs::read_dir(&rewritten).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let path = rewritten.join(&name);
        match path.extension().and_then(|e| e.to_str()) {
            Some("seg") => drop(segments.insert(name, std::fs::read(&path).unwrap())),
            // The tree's stored hashes (§15.2), no longer those of the records.
            Some(e) if e.starts_with('t') => std::fs::remove_file(&path).unwrap(),
            _ => {}
        }
    }
    let needle = b"\"i\":450}";
    let changed = segments
        .values_mut()
        .filter_map(|b| find(b, needle).map(|at| (b, at)))
        .map(|(b, at)| b[at + 4] = b'9')
        .count();
    assert_eq!(changed, 1);
    auditring_testkit::rechain::rechain(&mut segments);
    for (name, bytes) in &segments {
        std::fs::write(rewritten.join(name), bytes).unwrap();
    }
    let plain = tmp.path().join("plain");
    export(&rewritten, &plain, "jsonl", &[]);
    assert!(!plain.join("tree.json").exists());
    assert_agree(&plain, &[], 0);

    let key = s(&signed.key);
    let (cp400, cp500) = (signed.checkpoint(400), signed.checkpoint(500));
    let r = assert_agree(&plain, &["--key", key, "--checkpoint", &cp400], 0);
    assert_eq!(compared(&r), [(400, true)]);
    let r = assert_agree(&plain, &["--key", key, "--checkpoint", &cp500], 1);
    assert_eq!(r.error_at(), at(Some(1), &plain.join("events.jsonl"), 0));
    let rewritten = "records after seq 0 and up to seq 500 were rewritten";
    assert!(reason(&r).contains(rewritten), "{}", reason(&r));
    let r = assert_agree(
        &plain,
        &["--key", key, "--checkpoint", s(&signed.history)],
        1,
    );
    let expected: Vec<(u64, bool)> = signed.sizes.iter().map(|&n| (n, n <= 450)).collect();
    assert_eq!(compared(&r), expected);
    let first_refused = signed.sizes.iter().find(|&&n| n > 450).unwrap();
    let up_to = format!("after seq 0 and up to seq {first_refused} were");
    assert!(reason(&r).contains(&up_to), "{}", reason(&r));
}

/// §13.6: what leaves nothing to compare, or cannot be used, is a usage error (exit 2) for
/// both: a checkpoint without a key, a key that signed none of them, another log's origin, an
/// export from seq > 1 without `tree.json`, one from seq 1 without it and no checkpoint given,
/// a history line that is not one.
#[test]
fn python_verifier_agrees_on_unusable_checkpoints() {
    let tmp = tempfile::tempdir().unwrap();
    let signed = SignedLog::new(tmp.path());
    let tied = signed.export_tied("tied", "bundle", (201, 600), 1_000);
    let key = s(&signed.key);
    let (_, other) = keygen(tmp.path(), "other");
    let cp600 = signed.checkpoint(600);
    let not_history = tmp.path().join("not-history");
    std::fs::write(&not_history, "{\"size\":1}\n").unwrap();
    let untied = tmp.path().join("untied");
    copy_dir(&tied, &untied);
    std::fs::remove_file(untied.join("tree.json")).unwrap();
    let plain = tmp.path().join("plain");
    export(&signed.log, &plain, "bundle", &["--to", "600"]);

    // Each export verifies on its own, and the tied one with its key.
    for dir in [&tied, &untied, &plain] {
        assert_agree(dir, &[], 0);
    }
    assert_agree(&tied, &["--key", key], 0);
    let other = s(&other);
    for (dir, extra) in [
        (&tied, &["--checkpoint", &cp600][..]),
        (&tied, &["--key", other]),
        (&tied, &["--key", other, "--checkpoint", &cp600]),
        (&tied, &["--key", key, "--origin", "auditring/another-log"]),
        (&tied, &["--key", key, "--checkpoint", s(&not_history)]),
        (&untied, &["--key", key]),
        (&untied, &["--key", key, "--checkpoint", &cp600]),
        (&plain, &["--key", key]),
    ] {
        assert_agree(dir, extra, 2);
    }
}
