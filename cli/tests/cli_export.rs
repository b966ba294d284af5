//! The command-line contract of `export`, `verify-export` and `append --json`: exit codes, the
//! one line an error prints on stderr, the JSON fields scripts read, and that a failed export
//! leaves nothing behind.
//!
//! Exit codes: 0 ok, 1 integrity failure, 2 usage or bad input, 3 locked, 4 other I/O, 5 the
//! output of an export exists.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use auditring_testkit::cli::{Cli, json};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The binary under test.
const AUDITRING: Cli = Cli::new(env!("CARGO_BIN_EXE_auditring"));

/// Events in the test log.
const EVENTS: u64 = 2_000;
/// 2026-01-01T00:00:00Z. Event `i` (seq `i + 1`) has the origin time `T0 + i` seconds.
const T0: i64 = 1_767_225_600_000_000_000;
const SECOND: i64 = 1_000_000_000;

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Asserts the exit code, showing both outputs when it is not the one expected.
#[track_caller]
fn expect_code(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        stdout(out),
        stderr(out)
    );
}

/// The error line: stderr must be exactly one line, starting `auditring:`.
#[track_caller]
fn one_line(out: &Output) -> String {
    let err = stderr(out);
    assert!(
        err.starts_with("auditring:") && err.ends_with('\n') && err.lines().count() == 1,
        "not one `auditring:` line on stderr: {err:?}"
    );
    err.trim_end().to_owned()
}

/// Nothing on stdout but, with `--json`, the JSON error object of the failure: `ok` false, the
/// exit code, and the message stderr has.
#[track_caller]
fn no_output(out: &Output) {
    if out.stdout.is_empty() {
        return;
    }
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not one JSON error object ({e}): {}", stdout(out)));
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(
        v["exit_code"].as_i64().map(|c| c as i32),
        out.status.code(),
        "{v}"
    );
    let message = v["error"].as_str().unwrap_or_else(|| panic!("{v}"));
    assert!(stderr(out).contains(message), "{v} / {}", stderr(out));
}

/// A usage error found by the argument parser: exit code 2, nothing on stdout, and stderr
/// names every flag involved. (The parser's message is several lines long and does not start
/// `auditring:`; see `usage_errors_are_one_auditring_line`.)
#[track_caller]
fn usage_error(out: &Output, flags: &[&str]) {
    expect_code(out, 2);
    no_output(out);
    let err = stderr(out);
    assert!(err.starts_with("auditring: usage: "), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    for flag in flags {
        assert!(err.contains(flag), "{flag} not named: {err}");
    }
}

/// The names in a directory.
fn entries(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect()
}

/// Asserts that a failed command left `dir` as it was: no new entry, no temporary directory.
#[track_caller]
fn nothing_left(dir: &Path, before: &BTreeSet<String>) {
    let now = entries(dir);
    assert_eq!(&now, before, "entries of {} changed", dir.display());
    assert!(
        now.iter().all(|n| !n.contains(".tmp")),
        "temporary entries left: {now:?}"
    );
}

/// Every file of a directory with its contents.
fn contents(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    entries(dir)
        .into_iter()
        .map(|n| {
            let bytes = fs::read(dir.join(&n)).unwrap();
            (n, bytes)
        })
        .collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn data_file(format: &str) -> &'static str {
    match format {
        "jsonl" => "events.jsonl",
        "bundle" => "records.bin",
        other => panic!("no format {other}"),
    }
}

/// The stdin line of event `i`: every optional field present or not, timestamps as integers or
/// RFC 3339 text, details of every kind (absent, `null`, with spaces and non-ASCII, holding a
/// carriage return: exported as `details_raw`).
fn input_line(i: u64) -> String {
    let kind = ["user.login", "user.logout", "plan.applied"][(i % 3) as usize];
    let timestamp = if i.is_multiple_of(10) {
        format!("\"2026-01-01T00:{:02}:{:02}Z\"", i / 60, i % 60)
    } else {
        (T0 + i as i64 * SECOND).to_string()
    };
    let mut line = format!(r#"{{"kind":"{kind}","timestamp":{timestamp}"#);
    if i.is_multiple_of(2) {
        write!(line, r#","actor":"user-{}""#, i % 7).unwrap();
    }
    if i.is_multiple_of(3) {
        write!(line, r#","trace_id":"trace-{i}""#).unwrap();
    }
    match i % 5 {
        0 => {}
        1 => write!(line, r#","details":{{"i": {i}, "text": "é ✓ \"q\""}}"#).unwrap(),
        2 => line += ",\"details\":{\"cr\":\r[1, 2]}",
        3 => line += ",\"details\":null",
        _ => write!(
            line,
            r#","details":{{"i":{i},"pad":"{}"}}"#,
            "x".repeat(100)
        )
        .unwrap(),
    }
    line.push('}');
    line
}

/// A log of [`EVENTS`] events in 64 KiB segments, written by `auditring append`.
struct Log {
    _tmp: tempfile::TempDir,
    /// Where exports go (beside the log).
    root: PathBuf,
    #[allow(clippy::struct_field_names)] // the log's directory
    log: PathBuf,
    /// `chains[seq]`: the chain hash after record `seq`, from the receipts (`chains[0]`: zeros).
    chains: Vec<String>,
    /// The first seq of every segment.
    segment_starts: Vec<u64>,
}

impl Log {
    fn new() -> Log {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let log = root.join("log");
        let input: String = (0..EVENTS).map(|i| input_line(i) + "\n").collect();
        let out = AUDITRING.run(
            &[
                "append",
                s(&log),
                "--segment-size",
                "65536",
                "--receipts",
                "--json",
            ],
            &input,
        );
        expect_code(&out, 0);
        let lines: Vec<Value> = stdout(&out)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len() as u64, EVENTS + 1);
        let mut chains = vec!["0".repeat(64)];
        for (k, receipt) in lines[..EVENTS as usize].iter().enumerate() {
            assert_eq!(receipt["seq"], k as u64 + 1);
            chains.push(receipt["head_hash"].as_str().unwrap().to_owned());
        }
        assert_eq!(lines[EVENTS as usize]["head_seq"], EVENTS);
        let segments = json(&AUDITRING.run(&["segments", s(&log), "--json"], ""));
        let segment_starts: Vec<u64> = segments
            .as_array()
            .unwrap()
            .iter()
            .map(|seg| seg["first_seq"].as_u64().unwrap())
            .collect();
        assert!(segment_starts.len() >= 4, "{segments}");
        Log {
            _tmp: tmp,
            root,
            log,
            chains,
            segment_starts,
        }
    }

    /// Runs `auditring export LOG --format FORMAT --out OUT EXTRA...`.
    fn export(&self, format: &str, out: &Path, extra: &[&str]) -> Output {
        let mut args = vec!["export", s(&self.log), "--format", format, "--out", s(out)];
        args.extend_from_slice(extra);
        AUDITRING.run(&args, "")
    }

    /// Exports, expecting success; returns the manifest printed by `--json`.
    #[track_caller]
    fn export_ok(&self, format: &str, out: &Path, extra: &[&str]) -> Value {
        let mut args = extra.to_vec();
        args.push("--json");
        let result = self.export(format, out, &args);
        expect_code(&result, 0);
        assert!(result.stderr.is_empty(), "{}", stderr(&result));
        json(&result)
    }

    /// Whether records `from..=to` come from more than one segment.
    fn crosses_segments(&self, from: u64, to: u64) -> bool {
        self.segment_starts.iter().any(|&b| from < b && b <= to)
    }
}

fn verify_export(path: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["verify-export", s(path)];
    args.extend_from_slice(extra);
    AUDITRING.run(&args, "")
}

/// Verifies an export with `--json`, expecting a failure: returns the `error` object after
/// checking the exit code, `ok`, and the stderr line (which names the file at fault).
#[track_caller]
fn verify_fails(path: &Path, extra: &[&str]) -> Value {
    let mut args = extra.to_vec();
    args.push("--json");
    let out = verify_export(path, &args);
    expect_code(&out, 1);
    let v = json(&out);
    assert_eq!(v["ok"], false, "{v}");
    let error = v["error"].clone();
    let line = one_line(&out);
    assert!(line.starts_with("auditring: integrity failure: "), "{line}");
    assert!(
        line.contains(error["file"].as_str().unwrap()),
        "{line} does not name {}",
        error["file"]
    );
    error
}

/// Checks the manifest `export --json` printed, the export directory, and `verify-export`.
#[track_caller]
fn check_export(log: &Log, out: &Path, format: &str, m: &Value, from: u64, to: u64) {
    let name = data_file(format);
    assert_eq!(m["format"], "auditring-export", "{m}");
    assert_eq!(m["version"], 1);
    assert_eq!(m["encoding"], format);
    assert_eq!(m["chain"], "sha256");
    assert_eq!(
        (&m["first_seq"], &m["last_seq"], &m["count"]),
        (
            &Value::from(from),
            &Value::from(to),
            &Value::from(to - from + 1)
        ),
        "{m}"
    );
    assert_eq!(m["anchor"], log.chains[from as usize - 1].as_str());
    assert_eq!(m["head"], log.chains[to as usize].as_str());
    let files = m["files"].as_array().unwrap();
    assert_eq!(files.len(), 1);
    let data = fs::read(out.join(name)).unwrap();
    assert_eq!(files[0]["name"], name);
    assert_eq!(files[0]["bytes"], data.len() as u64);
    assert_eq!(files[0]["sha256"], sha256_hex(&data));
    // The manifest printed is the one written, and the directory holds nothing else.
    let written: Value =
        serde_json::from_slice(&fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(&written, m);
    assert_eq!(
        entries(out),
        BTreeSet::from(["manifest.json".to_owned(), name.to_owned()])
    );

    let result = verify_export(out, &["--json"]);
    expect_code(&result, 0);
    assert!(result.stderr.is_empty(), "{}", stderr(&result));
    let v = json(&result);
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["events"], to - from + 1);
    assert_eq!(v["first_seq"], from);
    assert_eq!(v["last_seq"], to);
    assert_eq!(v["head_hash"], m["head"]);
    assert_eq!(&v["manifest"], m);
    assert!(v["error"].is_null(), "{v}");
}

#[test]
fn exports_of_every_selection_in_both_formats_verify() {
    let log = Log::new();
    let ns = |seconds: i64| (T0 + seconds * SECOND).to_string();
    // (flags, first seq, last seq). Event i has seq i + 1 and time T0 + i s; --since is
    // inclusive, --until exclusive.
    let selections: Vec<(Vec<String>, u64, u64)> = vec![
        (vec![], 1, EVENTS),
        (
            vec!["--from".into(), "101".into(), "--to".into(), "1900".into()],
            101,
            1900,
        ),
        (vec!["--from".into(), "1500".into()], 1500, EVENTS),
        (vec!["--to".into(), "300".into()], 1, 300),
        (
            vec![
                "--since".into(),
                "2026-01-01T00:01:40Z".into(),
                "--until".into(),
                "2026-01-01T00:10:00Z".into(),
            ],
            101,
            600,
        ),
        (
            vec![
                "--since".into(),
                "2026-01-01T01:01:40+01:00".into(),
                "--until".into(),
                "2025-12-31T19:40:00-04:30".into(),
            ],
            101,
            600,
        ),
        (
            vec!["--since".into(), ns(100), "--until".into(), ns(600)],
            101,
            600,
        ),
        (
            vec!["--since".into(), "2026-01-01T00:30:00Z".into()],
            1801,
            EVENTS,
        ),
        (vec!["--until".into(), (T0 + SECOND / 2).to_string()], 1, 1),
        (vec!["--last".into(), "250".into()], 1751, EVENTS),
        (vec!["--last".into(), "5000".into()], 1, EVENTS),
    ];
    assert!(log.crosses_segments(101, 600));
    for format in ["jsonl", "bundle"] {
        for (k, (flags, from, to)) in selections.iter().enumerate() {
            let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
            let out = log.root.join(format!("{format}-{k}"));
            let mut before = entries(&log.root);
            let m = log.export_ok(format, &out, &flags);
            check_export(&log, &out, format, &m, *from, *to);
            // The export appeared whole, and nothing else did.
            before.insert(format!("{format}-{k}"));
            nothing_left(&log.root, &before);
        }
    }
}

#[test]
fn text_output_names_the_range_the_output_and_the_head() {
    let log = Log::new();
    let out = log.root.join("q");
    let result = log.export("bundle", &out, &["--from", "101", "--to", "1900"]);
    expect_code(&result, 0);
    let text = stdout(&result);
    assert!(
        text.starts_with(&format!(
            "exported seq 101..1900 (1800 records) to {}\n",
            out.display()
        )),
        "{text}"
    );
    assert!(text.contains(&log.chains[100]), "{text}");
    assert!(text.contains(&log.chains[1900]), "{text}");
    let result = verify_export(&out, &[]);
    expect_code(&result, 0);
    assert_eq!(
        stdout(&result),
        format!(
            "ok: 1800 records, seq 101..1900, head {}\n",
            log.chains[1900]
        )
    );
}

#[test]
#[allow(clippy::many_single_char_names)] // exports a to e, in order
fn consecutive_exports_link_and_a_gap_or_overlap_does_not() {
    let log = Log::new();
    let a = log.root.join("a");
    let b = log.root.join("b");
    let c = log.root.join("c");
    log.export_ok("jsonl", &a, &["--from", "1", "--to", "700"]);
    log.export_ok("bundle", &b, &["--from", "701", "--to", "1400"]);
    log.export_ok("jsonl", &c, &["--from", "1401"]);
    let manifest_of_a = a.join("manifest.json");
    for (export, after) in [(&b, &a), (&c, &b), (&b, &manifest_of_a)] {
        let out = verify_export(export, &["--after", s(after), "--json"]);
        expect_code(&out, 0);
        let v = json(&out);
        assert_eq!(v["ok"], true, "{v}");
        assert!(v["error"].is_null());
    }

    // A gap: c does not follow a.
    let error = verify_fails(&c, &["--after", s(&a)]);
    let reason = error["reason"].as_str().unwrap();
    assert!(
        reason.contains("does not continue the previous one") && reason.contains("first seq"),
        "{error}"
    );
    assert_eq!(error["seq"], 1401);
    assert_eq!(error["file"], s(&c.join("manifest.json")));
    assert_eq!(error["offset"], 0);
    // An overlap: d starts at a's last seq.
    let d = log.root.join("d");
    log.export_ok("bundle", &d, &["--from", "700", "--to", "800"]);
    let error = verify_fails(&d, &["--after", s(&a)]);
    assert!(
        error["reason"].as_str().unwrap().contains("first seq"),
        "{error}"
    );
    assert_eq!(error["seq"], 700);
    // The same seqs of another log.
    let other = log.root.join("other");
    let out = AUDITRING.run(
        &["append", s(&other)],
        "{\"kind\":\"a\"}\n{\"kind\":\"b\"}\n{\"kind\":\"c\"}\n",
    );
    expect_code(&out, 0);
    let other_export = log.root.join("other-export");
    let out = AUDITRING.run(
        &[
            "export",
            s(&other),
            "--format",
            "jsonl",
            "--out",
            s(&other_export),
        ],
        "",
    );
    expect_code(&out, 0);
    let e = log.root.join("e");
    log.export_ok("jsonl", &e, &["--from", "4", "--to", "10"]);
    let error = verify_fails(&e, &["--after", s(&other_export)]);
    assert!(
        error["reason"].as_str().unwrap().contains("another log"),
        "{error}"
    );
}

#[test]
fn expect_head_pins_the_head() {
    let log = Log::new();
    let b = log.root.join("b");
    log.export_ok("bundle", &b, &["--from", "701", "--to", "1400"]);
    let right = log.chains[1400].as_str();
    let out = verify_export(&b, &["--expect-head", right, "--json"]);
    expect_code(&out, 0);
    assert_eq!(json(&out)["head_hash"], right);
    // Hex digits in either case.
    let out = verify_export(&b, &["--expect-head", &right.to_uppercase()]);
    expect_code(&out, 0);

    // The head of another seq: the export is not the one expected.
    let wrong = log.chains[1399].as_str();
    let error = verify_fails(&b, &["--expect-head", wrong]);
    assert_eq!(error["seq"], 1400);
    assert_eq!(error["file"], s(&b.join("records.bin")));
    let size = fs::metadata(b.join("records.bin")).unwrap().len();
    assert_eq!(error["offset"], size);
    let reason = error["reason"].as_str().unwrap();
    assert!(reason.contains(right) && reason.contains(wrong), "{reason}");
    // The text form says FAILED on stdout, and the same one line on stderr.
    let out = verify_export(&b, &["--expect-head", wrong]);
    expect_code(&out, 1);
    assert!(stdout(&out).starts_with("FAILED: "), "{}", stdout(&out));
    one_line(&out);

    // Not 64 hex digits: a usage error, before anything is read.
    let sixty_three = &right[..63];
    let sixty_five = format!("{right}0");
    let not_hex = "g".repeat(64);
    for bad in [
        "",
        "abc",
        sixty_three,
        sixty_five.as_str(),
        not_hex.as_str(),
    ] {
        let out = verify_export(&b, &["--expect-head", bad, "--json"]);
        usage_error(&out, &["--expect-head"]);
    }
}

#[test]
fn after_must_be_a_readable_export() {
    let log = Log::new();
    let b = log.root.join("b");
    log.export_ok("jsonl", &b, &["--from", "701", "--to", "800"]);
    let plain = log.root.join("plain");
    fs::create_dir(&plain).unwrap();
    let damaged = log.root.join("damaged");
    log.export_ok("jsonl", &damaged, &["--to", "700"]);
    fs::write(damaged.join("manifest.json"), "{\"format\":").unwrap();
    let nowhere = log.root.join("nowhere");
    for (after, names) in [
        (&plain, "manifest.json"),
        (&damaged, "manifest.json"),
        (&nowhere, "nowhere"),
    ] {
        let out = verify_export(&b, &["--after", s(after), "--json"]);
        expect_code(&out, 2);
        no_output(&out);
        let line = one_line(&out);
        assert!(
            line.contains(&format!("--after {}", after.display())) && line.contains(names),
            "{line}"
        );
    }
}

#[test]
fn an_existing_output_is_kept_without_force_and_replaced_with_it() {
    let log = Log::new();
    let out = log.root.join("export");
    log.export_ok("jsonl", &out, &["--to", "100"]);
    let kept = contents(&out);
    let before = entries(&log.root);
    for json_flag in [&[][..], &["--json"][..]] {
        let mut flags = vec!["--last", "10"];
        flags.extend_from_slice(json_flag);
        let result = log.export("bundle", &out, &flags);
        expect_code(&result, 5);
        no_output(&result);
        let line = one_line(&result);
        assert!(
            line.contains(s(&out)) && line.contains("already exists") && line.contains("--force"),
            "{line}"
        );
        assert_eq!(contents(&out), kept, "the existing export changed");
        nothing_left(&log.root, &before);
    }

    // --force replaces it, whole: the old data file is gone.
    let m = log.export_ok("bundle", &out, &["--last", "10", "--force"]);
    check_export(&log, &out, "bundle", &m, EVENTS - 9, EVENTS);
    nothing_left(&log.root, &before);
}

#[test]
fn an_existing_file_is_not_replaced_without_force() {
    let log = Log::new();
    let out = log.root.join("precious.txt");
    fs::write(&out, "keep me").unwrap();
    let before = entries(&log.root);
    let result = log.export("jsonl", &out, &["--last", "10"]);
    expect_code(&result, 5);
    assert!(one_line(&result).contains(s(&out)));
    assert_eq!(fs::read_to_string(&out).unwrap(), "keep me");
    nothing_left(&log.root, &before);
}

#[test]
fn an_empty_selection_exits_2() {
    let log = Log::new();
    let out = log.root.join("out");
    let before = entries(&log.root);
    let after_every_event = (T0 + EVENTS as i64 * SECOND).to_string();
    let cases: [&[&str]; 6] = [
        &["--last", "0"],
        &["--since", "2026-01-01T00:33:20Z"],
        &["--since", after_every_event.as_str()],
        &["--until", "2026-01-01T00:00:00Z"],
        &[
            "--since",
            "2026-01-01T00:01:00Z",
            "--until",
            "2026-01-01T00:01:00Z",
        ],
        &["--from", "5", "--to", "4"],
    ];
    for format in ["jsonl", "bundle"] {
        for flags in cases {
            let result = log.export(format, &out, flags);
            expect_code(&result, 2);
            no_output(&result);
            let line = one_line(&result);
            assert!(line.contains("holds no record"), "{flags:?}: {line}");
            assert!(!out.exists());
            nothing_left(&log.root, &before);
        }
    }
}

#[test]
fn a_range_outside_the_log_exits_2() {
    let log = Log::new();
    let out = log.root.join("out");
    let before = entries(&log.root);
    let cases: [(&[&str], &str); 4] = [
        (&["--to", "2001"], "1..=2001"),
        (&["--from", "0"], "0..=2000"),
        (&["--from", "0", "--to", "10"], "0..=10"),
        (&["--from", "1999", "--to", "2500"], "1999..=2500"),
    ];
    for (flags, range) in cases {
        let result = log.export("bundle", &out, flags);
        expect_code(&result, 2);
        no_output(&result);
        let line = one_line(&result);
        assert!(
            line.contains(range) && line.contains("1..=2000"),
            "{flags:?}: {line}"
        );
        assert!(!out.exists());
        nothing_left(&log.root, &before);
    }
    // A first seq past the head: an empty range.
    let result = log.export("bundle", &out, &["--from", "2001"]);
    expect_code(&result, 2);
    one_line(&result);
    nothing_left(&log.root, &before);
}

#[test]
fn conflicting_or_missing_flags_exit_2() {
    let log = Log::new();
    let out = log.root.join("out");
    let before = entries(&log.root);
    let cases: [&[&str]; 7] = [
        &["--from", "1", "--last", "5"],
        &["--to", "9", "--last", "5"],
        &["--since", "0", "--last", "5"],
        &["--until", "0", "--last", "5"],
        &["--from", "1", "--since", "0"],
        &["--to", "9", "--until", "0"],
        &["--from", "1", "--until", "0"],
    ];
    for flags in cases {
        let result = log.export("jsonl", &out, flags);
        let named: Vec<&str> = flags
            .iter()
            .copied()
            .filter(|f| f.starts_with("--"))
            .collect();
        usage_error(&result, &named);
        nothing_left(&log.root, &before);
    }
    for (args, flag) in [
        (vec!["export", s(&log.log), "--out", s(&out)], "--format"),
        (vec!["export", s(&log.log), "--format", "jsonl"], "--out"),
        (
            vec!["export", s(&log.log), "--format", "csv", "--out", s(&out)],
            "--format",
        ),
        (
            vec![
                "export",
                s(&log.log),
                "--format",
                "jsonl",
                "--out",
                s(&out),
                "--since",
                "yesterday",
            ],
            "--since",
        ),
        (
            vec![
                "export",
                s(&log.log),
                "--format",
                "jsonl",
                "--out",
                s(&out),
                "--last",
                "-1",
            ],
            "-1",
        ),
    ] {
        usage_error(&AUDITRING.run(&args, ""), &[flag]);
        nothing_left(&log.root, &before);
    }
}

#[test]
fn a_directory_without_a_manifest_is_not_an_export() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain");
    fs::create_dir(&plain).unwrap();
    fs::write(plain.join("events.jsonl"), "{}\n").unwrap();
    for extra in [&[][..], &["--json"][..]] {
        let out = verify_export(&plain, extra);
        expect_code(&out, 2);
        no_output(&out);
        let line = one_line(&out);
        assert!(
            line.contains(s(&plain)) && line.contains("manifest.json"),
            "{line}"
        );
    }
    assert_eq!(entries(&plain), BTreeSet::from(["events.jsonl".to_owned()]));
}

#[test]
fn nonexistent_paths_exit_2() {
    let log = Log::new();
    let before = entries(&log.root);
    // An export that is not there.
    let nowhere = log.root.join("nowhere");
    let out = verify_export(&nowhere, &["--json"]);
    expect_code(&out, 2);
    no_output(&out);
    assert!(one_line(&out).contains(s(&nowhere)));
    // A file where the export should be.
    let file = log.root.join("file");
    fs::write(&file, "x").unwrap();
    let out = verify_export(&file, &[]);
    expect_code(&out, 2);
    assert!(one_line(&out).contains(s(&file)));
    fs::remove_file(&file).unwrap();
    // A log that is not there: neither it nor the output is created.
    let out_dir = log.root.join("out");
    let out = AUDITRING.run(
        &[
            "export",
            s(&nowhere),
            "--format",
            "jsonl",
            "--out",
            s(&out_dir),
        ],
        "",
    );
    expect_code(&out, 2);
    no_output(&out);
    assert!(one_line(&out).contains(s(&nowhere)));
    nothing_left(&log.root, &before);
    // An output whose parent is not there.
    let deep = log.root.join("no").join("such").join("out");
    let out = log.export("jsonl", &deep, &["--last", "3"]);
    expect_code(&out, 2);
    assert!(one_line(&out).contains(s(&deep)));
    nothing_left(&log.root, &before);
}

/// A copy of an export, in a new directory beside it.
fn copy_export(from: &Path, name: &str) -> PathBuf {
    let to = from.parent().unwrap().join(name);
    fs::create_dir(&to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
    to
}

/// Edits the manifest as JSON.
fn edit_manifest(dir: &Path, edit: impl FnOnce(&mut Value)) {
    let path = dir.join("manifest.json");
    let mut m: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    edit(&mut m);
    fs::write(&path, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
}

/// Makes the manifest state the data file's current size and digest, so that only the checks
/// of its records can fail.
fn restate_data_file(dir: &Path, name: &str) {
    let data = fs::read(dir.join(name)).unwrap();
    edit_manifest(dir, |m| {
        m["files"][0]["bytes"] = Value::from(data.len() as u64);
        m["files"][0]["sha256"] = Value::from(sha256_hex(&data));
    });
}

/// A way to damage an export.
type Damage<'a> = &'a dyn Fn(&Path);

#[test]
fn a_damaged_manifest_is_an_integrity_failure() {
    let log = Log::new();
    let good = log.root.join("good");
    log.export_ok("jsonl", &good, &["--from", "1001", "--to", "1500"]);
    let cases: [(&str, Damage, &str); 5] = [
        (
            "invalid-json",
            &|d: &Path| {
                fs::write(
                    d.join("manifest.json"),
                    "{\"format\": \"auditring-export\",",
                )
                .unwrap();
            },
            "damaged manifest",
        ),
        (
            "count",
            &|d: &Path| edit_manifest(d, |m| m["count"] = Value::from(499)),
            "count 499",
        ),
        (
            "upper-case-head",
            &|d: &Path| {
                edit_manifest(d, |m| {
                    m["head"] = Value::from(m["head"].as_str().unwrap().to_uppercase());
                });
            },
            "damaged manifest",
        ),
        (
            "unknown-member",
            &|d: &Path| edit_manifest(d, |m| m["signed_by"] = Value::from("me")),
            "signed_by",
        ),
        (
            "wrong-data-file",
            &|d: &Path| edit_manifest(d, |m| m["files"][0]["name"] = Value::from("records.bin")),
            "events.jsonl",
        ),
    ];
    for (name, damage, says) in cases {
        let dir = copy_export(&good, name);
        damage(&dir);
        let error = verify_fails(&dir, &[]);
        assert!(
            Path::new(error["file"].as_str().unwrap()).ends_with("manifest.json"),
            "{name}: {error}"
        );
        assert_eq!(error["file"], s(&dir.join("manifest.json")), "{name}");
        assert!(error["seq"].is_null(), "{name}: {error}");
        assert_eq!(error["offset"], 0, "{name}");
        let reason = error["reason"].as_str().unwrap();
        assert!(reason.contains(says), "{name}: {reason}");
        // The text form: FAILED on stdout, the one line on stderr.
        let out = verify_export(&dir, &[]);
        expect_code(&out, 1);
        assert!(stdout(&out).starts_with("FAILED: "), "{}", stdout(&out));
        assert!(one_line(&out).contains("manifest.json"));
    }
}

#[test]
fn a_changed_data_file_is_an_integrity_failure_of_that_file() {
    let log = Log::new();
    for format in ["jsonl", "bundle"] {
        let name = data_file(format);
        let good = log.root.join(format);
        log.export_ok(format, &good, &["--from", "1001", "--to", "1500"]);
        let size = fs::metadata(good.join(name)).unwrap().len();

        // One byte flipped in the middle.
        let flipped = copy_export(&good, &format!("{format}-flipped"));
        let mut data = fs::read(flipped.join(name)).unwrap();
        let middle = data.len() / 2;
        data[middle] ^= 0x01;
        fs::write(flipped.join(name), &data).unwrap();
        let error = verify_fails(&flipped, &[]);
        assert_eq!(error["file"], s(&flipped.join(name)), "{error}");
        let seq = error["seq"].as_u64().unwrap();
        assert!((1001..=1500).contains(&seq), "{error}");
        assert!(
            error["offset"].as_u64().unwrap() <= middle as u64,
            "{error}"
        );

        // The manifest states another digest: the file's SHA-256 is checked.
        let digest = copy_export(&good, &format!("{format}-digest"));
        edit_manifest(&digest, |m| {
            m["files"][0]["sha256"] = Value::from(sha256_hex(b"something else"));
        });
        let error = verify_fails(&digest, &[]);
        assert_eq!(error["file"], s(&digest.join(name)), "{error}");
        assert!(error["seq"].is_null(), "{error}");
        assert_eq!(error["offset"], 0);
        assert!(
            error["reason"].as_str().unwrap().contains("SHA-256"),
            "{error}"
        );

        // The manifest states another size.
        let length = copy_export(&good, &format!("{format}-length"));
        edit_manifest(&length, |m| m["files"][0]["bytes"] = Value::from(size + 8));
        let error = verify_fails(&length, &[]);
        assert_eq!(error["file"], s(&length.join(name)), "{error}");
        assert_eq!(error["offset"], size, "{error}");

        // The data file was deleted.
        let deleted = copy_export(&good, &format!("{format}-deleted"));
        fs::remove_file(deleted.join(name)).unwrap();
        let error = verify_fails(&deleted, &["--expect-head", log.chains[1500].as_str()]);
        assert_eq!(error["file"], s(&deleted.join(name)), "{error}");
        assert!(error["seq"].is_null(), "{error}");
        assert_eq!(error["offset"], 0);
        assert!(
            error["reason"].as_str().unwrap().contains("missing"),
            "{error}"
        );
        let out = verify_export(&deleted, &["--json"]);
        assert_eq!(json(&out)["manifest"]["files"][0]["name"], name);
    }
}

/// The offset at which each line of a JSONL file starts.
fn line_starts(data: &[u8]) -> Vec<u64> {
    let mut starts = vec![0u64];
    for (i, b) in data.iter().enumerate() {
        if *b == b'\n' && i + 1 < data.len() {
            starts.push(i as u64 + 1);
        }
    }
    starts
}

/// The offset at which each record of a bundle starts.
fn record_starts(data: &[u8]) -> Vec<u64> {
    let mut starts = Vec::new();
    let mut at = 0usize;
    while at < data.len() {
        assert_eq!(&data[at..at + 4], b"AREC");
        starts.push(at as u64);
        let body = u32::from_le_bytes(data[at + 4..at + 8].try_into().unwrap()) as usize;
        at += (80 + body + 7) & !7;
    }
    starts
}

#[test]
fn an_edited_record_is_named_by_seq_and_offset() {
    let log = Log::new();
    let seq = 1234u64;
    let jsonl = log.root.join("jsonl");
    log.export_ok("jsonl", &jsonl, &["--from", "1001", "--to", "1500"]);
    let data = fs::read(jsonl.join("events.jsonl")).unwrap();
    let starts = line_starts(&data);
    assert_eq!(starts.len(), 500);
    let k = (seq - 1001) as usize;
    let start = starts[k] as usize;
    let end = starts[k + 1] as usize;
    let line = std::str::from_utf8(&data[start..end]).unwrap();
    assert!(line.starts_with(&format!("{{\"seq\":{seq},")), "{line}");

    // A value changed (a later timestamp): the line is well formed, but its leaf is wrong.
    let edited = copy_export(&jsonl, "timestamp");
    let stamp = format!("\"timestamp\":{}", T0 + (seq as i64 - 1) * SECOND);
    assert!(line.contains(&stamp), "{line}");
    let new_line = line.replace(
        &stamp,
        &format!("\"timestamp\":{}", T0 + (seq as i64 - 1) * SECOND + 1),
    );
    let mut new_data = data.clone();
    new_data.splice(start..end, new_line.bytes());
    fs::write(edited.join("events.jsonl"), &new_data).unwrap();
    restate_data_file(&edited, "events.jsonl");
    let error = verify_fails(&edited, &[]);
    assert_eq!(error["seq"], seq, "{error}");
    assert_eq!(error["offset"], start as u64, "{error}");
    assert_eq!(error["file"], s(&edited.join("events.jsonl")));
    assert!(
        error["reason"].as_str().unwrap().contains("leaf"),
        "{error}"
    );
    let out = verify_export(&edited, &[]);
    assert!(one_line(&out).contains(&format!("seq {seq}")));

    // The same values written another way (a space after the first member): the offset is the
    // first byte that differs.
    let spaced = copy_export(&jsonl, "spaced");
    let at = line.find(',').unwrap() + 1;
    let new_line = format!("{} {}", &line[..at], &line[at..]);
    let mut new_data = data.clone();
    new_data.splice(start..end, new_line.bytes());
    fs::write(spaced.join("events.jsonl"), &new_data).unwrap();
    restate_data_file(&spaced, "events.jsonl");
    let error = verify_fails(&spaced, &[]);
    assert_eq!(error["seq"], seq, "{error}");
    assert_eq!(error["offset"], (start + at) as u64, "{error}");
    assert!(
        error["reason"]
            .as_str()
            .unwrap()
            .contains("not a record line"),
        "{error}"
    );

    // A bundle record with one byte of its body changed: the offset is where it starts.
    let bundle = log.root.join("bundle");
    log.export_ok("bundle", &bundle, &["--from", "1001", "--to", "1500"]);
    let edited = copy_export(&bundle, "bundle-edited");
    let mut data = fs::read(edited.join("records.bin")).unwrap();
    let starts = record_starts(&data);
    assert_eq!(starts.len(), 500);
    let record = starts[k] as usize;
    assert_eq!(
        u64::from_le_bytes(data[record + 8..record + 16].try_into().unwrap()),
        seq
    );
    // The last byte of the kind ("user.login", "user.logout" or "plan.applied").
    let kind_len = u16::from_le_bytes(data[record + 82..record + 84].try_into().unwrap()) as usize;
    data[record + 80 + 20 + kind_len - 1] ^= 0x01;
    fs::write(edited.join("records.bin"), &data).unwrap();
    restate_data_file(&edited, "records.bin");
    let error = verify_fails(&edited, &[]);
    assert_eq!(error["seq"], seq, "{error}");
    assert_eq!(error["offset"], record as u64, "{error}");
    assert_eq!(error["file"], s(&edited.join("records.bin")));
    assert!(
        error["reason"].as_str().unwrap().contains("leaf"),
        "{error}"
    );
}

#[test]
fn append_json_prints_a_summary_and_receipts() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let head_of = |log: &Path| {
        let v = json(&AUDITRING.run(&["verify", s(log), "--json"], ""));
        assert_eq!(v["ok"], true, "{v}");
        v["head_hash"].as_str().unwrap().to_owned()
    };
    let keys = |v: &Value| -> BTreeSet<String> { v.as_object().unwrap().keys().cloned().collect() };
    let summary_keys: BTreeSet<String> = ["appended", "head_seq", "head_hash"]
        .map(String::from)
        .into();
    let receipt_keys: BTreeSet<String> = ["seq", "head_hash"].map(String::from).into();

    // Without receipts: one line, the summary.
    let out = AUDITRING.run(
        &["append", s(&log), "--json"],
        "{\"kind\":\"a\"}\n\n{\"kind\":\"b\",\"actor\":\"alice\"}\n{\"kind\":\"c\"}\n",
    );
    expect_code(&out, 0);
    assert!(out.stderr.is_empty(), "{}", stderr(&out));
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 1, "{text}");
    let summary: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(keys(&summary), summary_keys);
    assert_eq!(summary["appended"], 3);
    assert_eq!(summary["head_seq"], 3);
    let head = summary["head_hash"].as_str().unwrap();
    assert!(
        head.len() == 64
            && head
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "{head}"
    );
    assert_eq!(head, head_of(&log));

    // With receipts: one line per event, in seq order, then the summary.
    let out = AUDITRING.run(
        &["append", s(&log), "--receipts", "--json"],
        "{\"kind\":\"d\"}\n{\"kind\":\"e\",\"timestamp\":\"2026-01-01T00:00:00Z\"}\n",
    );
    expect_code(&out, 0);
    assert!(out.stderr.is_empty(), "{}", stderr(&out));
    let lines: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{}", stdout(&out));
    for (k, receipt) in lines[..2].iter().enumerate() {
        assert_eq!(keys(receipt), receipt_keys, "{receipt}");
        assert_eq!(receipt["seq"], 4 + k as u64);
    }
    assert_ne!(lines[0]["head_hash"], lines[1]["head_hash"]);
    let summary = &lines[2];
    assert_eq!(keys(summary), summary_keys);
    assert_eq!(summary["appended"], 2);
    assert_eq!(summary["head_seq"], 5);
    assert_eq!(summary["head_hash"], lines[1]["head_hash"]);
    assert_eq!(summary["head_hash"], head_of(&log).as_str());

    // Nothing to append: the summary still says where the head is.
    let out = AUDITRING.run(&["append", s(&log), "--receipts", "--json"], "");
    expect_code(&out, 0);
    let summary = json(&out);
    assert_eq!(summary["appended"], 0);
    assert_eq!(summary["head_seq"], 5);
    assert_eq!(summary["head_hash"], head_of(&log).as_str());

    // A bad line: the lines before it are written and have their receipts; the error is one
    // line naming the bad one.
    let out = AUDITRING.run(
        &["append", s(&log), "--receipts", "--json"],
        "{\"kind\":\"f\"}\nnot json\n{\"kind\":\"g\"}\n",
    );
    expect_code(&out, 2);
    assert!(one_line(&out).contains("line 2"));
    let receipts: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v.get("seq").is_some())
        .collect();
    assert_eq!(receipts.len(), 1, "{}", stdout(&out));
    assert_eq!(receipts[0]["seq"], 6);
    assert_eq!(receipts[0]["head_hash"], head_of(&log).as_str());
}

#[test]
fn export_and_verify_export_help_have_an_example() {
    for command in ["export", "verify-export"] {
        let out = AUDITRING.run(&[command, "--help"], "");
        expect_code(&out, 0);
        let text = stdout(&out);
        let example = text
            .lines()
            .find(|l| l.starts_with("Example: "))
            .unwrap_or("");
        assert!(
            example.contains(&format!("auditring {command} ")),
            "{command}: {text}"
        );
    }
}

/// The contract says every error is one line on stderr starting `auditring:`; the argument
/// parser's errors are several lines (the error, a usage line, a hint) starting `error:`.
#[test]
fn usage_errors_are_one_auditring_line() {
    let log = Log::new();
    let out = log.root.join("out");
    let result = log.export("jsonl", &out, &["--from", "1", "--last", "5"]);
    expect_code(&result, 2);
    one_line(&result);
    let result = verify_export(&log.root, &["--expect-head", "abc"]);
    expect_code(&result, 2);
    one_line(&result);
}

/// `--force` replaces only an earlier export: a regular file, another directory or the log
/// itself is refused (exit 5) and left as it was.
#[test]
fn force_replaces_only_an_earlier_export() {
    let log = Log::new();
    let out = log.root.join("precious.txt");
    fs::write(&out, "keep me").unwrap();
    let before = entries(&log.root);
    for target in [&out, &log.log, &log.root] {
        let result = log.export("jsonl", target, &["--last", "10", "--force"]);
        expect_code(&result, 5);
        one_line(&result);
        assert!(
            stderr(&result).contains("not an auditring export"),
            "{}",
            stderr(&result)
        );
        nothing_left(&log.root, &before);
    }
    assert_eq!(fs::read_to_string(&out).unwrap(), "keep me");
    let verify = Command::new(env!("CARGO_BIN_EXE_auditring"))
        .args(["verify", s(&log.log)])
        .output()
        .unwrap();
    assert_eq!(verify.status.code(), Some(0));
}

/// An export killed with SIGKILL leaves its temporary directory (`.NAME.tmp-PID-N`, with what it
/// had written) behind; the next export beside it removes it, since no live process holds its
/// lock, and leaves the rest alone.
#[test]
fn temporaries_of_a_killed_export_are_removed_by_the_next_one() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("log");
    {
        let ring = auditring::Ring::builder(&log).open().unwrap();
        for i in 0..300_000u64 {
            ring.push(
                auditring::Event::new("kill.test")
                    .with_actor(format!("user-{}", i % 97))
                    .with_details(&serde_json::json!({ "i": i, "pad": "p".repeat(64) }))
                    .unwrap(),
            )
            .unwrap();
        }
        ring.close().unwrap();
    }
    let exports = tmp.path().join("exports");
    fs::create_dir(&exports).unwrap();
    // Someone else's directory of the same form, holding a file an export never writes: kept.
    let foreign = exports.join(".mine.tmp-999999999-1");
    fs::create_dir(&foreign).unwrap();
    fs::write(foreign.join("notes.txt"), "mine").unwrap();

    // Kill an export while it writes: once its temporary directory exists, before it is
    // published. (If an attempt publishes before the kill lands, it is tried again.)
    let mut left = None;
    for attempt in 0..20 {
        let out = exports.join(format!("killed-{attempt}"));
        let mut child = Command::new(env!("CARGO_BIN_EXE_auditring"))
            .args(["export", s(&log), "--format", "jsonl", "--out", s(&out)])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let prefix = format!(".killed-{attempt}.tmp-{}-", child.id());
        let guard = std::time::Instant::now();
        let seen = loop {
            let found = entries(&exports)
                .into_iter()
                .any(|n| n.starts_with(&prefix));
            if found || child.try_wait().unwrap().is_some() {
                break found;
            }
            assert!(
                guard.elapsed() < std::time::Duration::from_secs(120),
                "the export neither started nor finished"
            );
            std::thread::yield_now();
        };
        let _ = child.kill();
        child.wait().unwrap();
        let temporaries: Vec<String> = entries(&exports)
            .into_iter()
            .filter(|n| n.starts_with(&prefix))
            .collect();
        if seen && !out.exists() && temporaries.len() == 1 {
            left = Some(exports.join(&temporaries[0]));
            break;
        }
        if out.exists() {
            fs::remove_dir_all(&out).unwrap();
        }
    }
    let left = left.expect("no export was killed while writing in 20 attempts");
    assert!(left.is_dir());

    // The next export beside it (of another name) removes it, and verifies.
    let next = exports.join("next");
    let result = AUDITRING.run(
        &[
            "export",
            s(&log),
            "--format",
            "bundle",
            "--out",
            s(&next),
            "--last",
            "10",
        ],
        "",
    );
    expect_code(&result, 0);
    assert!(!left.exists(), "{} is still there", left.display());
    expect_code(&verify_export(&next, &[]), 0);
    assert_eq!(
        entries(&exports),
        BTreeSet::from([".mine.tmp-999999999-1".to_owned(), "next".to_owned()])
    );
    assert_eq!(
        fs::read_to_string(foreign.join("notes.txt")).unwrap(),
        "mine"
    );
}
