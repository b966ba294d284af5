//! The reading commands of the command line: `query`, `tail` (and `--follow`) and `segments`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use auditring::{Event, Query, Reader, Record, RecordRef, Ring};
use serde_json::Value;

/// 2026-01-01T00:00:00Z.
const T0: i64 = 1_767_225_600_000_000_000;
const KINDS: [&str; 3] = ["user.login", "plan.applied", "user.logout"];

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_auditring"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn stdout(out: &Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// The seq each output line starts with.
fn seqs(text: &str) -> Vec<u64> {
    text.lines()
        .map(|l| l.split_once("  ").unwrap().0.parse().unwrap())
        .collect()
}

/// The seqs of JSON lines, checking that each line is one JSON object.
fn json_seqs(text: &str) -> Vec<u64> {
    text.lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["seq"].as_u64().unwrap()
        })
        .collect()
}

/// The event pushed `i`-th (seq `i + 1`): kinds, actors and traces cycle at different periods,
/// some are absent, and origin times are not in seq order.
fn event(i: u64) -> Event {
    let mut e = Event::new(KINDS[(i % 3) as usize])
        .with_timestamp_nanos(time_of(i))
        .with_details(&serde_json::json!({ "i": i, "pad": "x".repeat(40) }))
        .unwrap();
    if let Some(a) = actor_of(i) {
        e = e.with_actor(a);
    }
    if let Some(t) = trace_of(i) {
        e = e.with_trace_id(t);
    }
    e
}

fn time_of(i: u64) -> i64 {
    // A permutation of 0..200 seconds, plus a few nanoseconds.
    T0 + ((i * 37) % 200) as i64 * 1_000_000_000 + (i % 3) as i64
}

fn actor_of(i: u64) -> Option<&'static str> {
    (!i.is_multiple_of(5)).then_some(["alice", "bob"][(i % 2) as usize])
}

fn trace_of(i: u64) -> Option<String> {
    (!i.is_multiple_of(7)).then(|| format!("trace-{}", i % 4))
}

/// A closed log of `n` events made by [`event`].
fn make_log(path: &Path, n: u64, segment_size: u64) {
    let ring = Ring::builder(path)
        .segment_size(segment_size)
        .open()
        .unwrap();
    for i in 0..n {
        ring.push(event(i)).unwrap();
    }
    ring.close().unwrap();
}

/// Opens the log for writing again. Waits for the lock: the last writer released it by closing
/// its file, and the lock stays held while a child process that other tests spawn meanwhile
/// (from this process) has a copy of that file, between its fork and its exec.
fn reopen(path: &Path) -> Ring {
    Ring::builder(path)
        .segment_size(64 * 1024)
        .wait_for_lock(true)
        .open()
        .unwrap()
}

fn json_line(r: &Record) -> String {
    let r = RecordRef {
        seq: r.seq,
        timestamp: r.timestamp,
        kind: &r.kind,
        actor: r.actor.as_deref(),
        trace_id: r.trace_id.as_deref(),
        details: r.details.as_deref(),
        leaf: r.leaf,
        chain: r.chain,
    };
    let mut out = Vec::new();
    r.write_json_line(&mut out);
    String::from_utf8(out).unwrap()
}

#[test]
fn query_filters_select_what_was_written() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let n = 200;
    make_log(&log, n, 1 << 20);
    let snap = Reader::open(&log).unwrap().snapshot().unwrap();
    let since = time_of(50);
    let until = time_of(120);
    // Each case: the command's filter arguments, the query the library runs for them, and which
    // of the events written they must select.
    type Case = (Vec<String>, Query, Box<dyn Fn(u64) -> bool>);
    let cases: Vec<Case> = vec![
        (vec![], Query::new(), Box::new(|_| true)),
        (
            vec!["--kind".into(), "plan.applied".into()],
            Query::new().kind("plan.applied"),
            Box::new(|i| i % 3 == 1),
        ),
        (
            vec!["--actor".into(), "alice".into()],
            Query::new().actor("alice"),
            Box::new(|i| actor_of(i) == Some("alice")),
        ),
        (
            vec!["--trace".into(), "trace-2".into()],
            Query::new().trace_id("trace-2"),
            Box::new(|i| trace_of(i).as_deref() == Some("trace-2")),
        ),
        (
            // Inclusive since, exclusive until; nanoseconds.
            vec![
                "--since".into(),
                since.to_string(),
                "--until".into(),
                until.to_string(),
            ],
            Query::new().since(since).until(until),
            Box::new(move |i| (since..until).contains(&time_of(i))),
        ),
        (
            // The same instants in RFC 3339, in two other offsets.
            vec![
                "--since".into(),
                rfc3339(since, 2 * 3600 + 1800),
                "--until".into(),
                rfc3339(until, -7 * 3600),
            ],
            Query::new().since(since).until(until),
            Box::new(move |i| (since..until).contains(&time_of(i))),
        ),
        (
            vec![
                "--kind".into(),
                "user.login".into(),
                "--actor".into(),
                "bob".into(),
                "--since".into(),
                since.to_string(),
            ],
            Query::new().kind("user.login").actor("bob").since(since),
            Box::new(move |i: u64| {
                i.is_multiple_of(3) && actor_of(i) == Some("bob") && time_of(i) >= since
            }),
        ),
        (
            vec!["--actor".into(), "nobody".into()],
            Query::new().actor("nobody"),
            Box::new(|_| false),
        ),
    ];
    for (filters, query, selects) in cases {
        let want: Vec<u64> = (0..n).filter(|&i| selects(i)).map(|i| i + 1).collect();
        assert!(want.len() < n as usize || filters.is_empty(), "{filters:?}");
        for limit in [None, Some(0), Some(1), Some(3), Some(1000)] {
            let mut args = vec!["query".to_string(), s(&log).to_string()];
            args.extend(filters.iter().cloned());
            if let Some(l) = limit {
                args.extend(["--limit".to_string(), l.to_string()]);
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let expected = match limit {
                None => &want[..],
                Some(l) => &want[want.len().saturating_sub(l)..],
            };
            let text = stdout(&run(&args));
            assert_eq!(seqs(&text), expected, "{args:?}");

            // --json: the export's lines, exactly as the library's own query gives them.
            let mut json_args = args.clone();
            json_args.push("--json");
            let text = stdout(&run(&json_args));
            assert_eq!(json_seqs(&text), expected, "{json_args:?}");
            let query = match limit {
                Some(l) => query.clone().last(l),
                None => query.clone(),
            };
            let from_library: String = snap.query(&query).unwrap().iter().map(json_line).collect();
            assert_eq!(text, from_library, "{json_args:?}");
        }
    }
}

/// `nanos` in RFC 3339 at an offset of `offset` seconds.
fn rfc3339(nanos: i64, offset: i32) -> String {
    use time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos.into())
        .unwrap()
        .to_offset(time::UtcOffset::from_whole_seconds(offset).unwrap())
        .format(&Rfc3339)
        .unwrap()
}

#[test]
fn records_print_as_one_line_each_with_their_fields() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let ring = Ring::builder(&log).segment_size(1 << 20).open().unwrap();
    ring.push(
        Event::new("user.login")
            .with_actor("alice")
            .with_trace_id("4bf92f3577b34da6a3ce929d0e0e4736")
            .with_timestamp_nanos(T0 + 123_456_789)
            .with_details_json("{\"ip\": \"10.0.0.1\",\n \"ok\": true}")
            .unwrap(),
    )
    .unwrap();
    ring.push(Event::new("plan.applied").with_timestamp_nanos(T0 + 3_600_000_000_000))
        .unwrap();
    ring.push(
        Event::new("odd")
            .with_actor("eve\n\u{1b}[31mroot")
            .with_trace_id("")
            .with_timestamp_nanos(T0),
    )
    .unwrap();
    ring.close().unwrap();

    let text = stdout(&run(&["query", s(&log)]));
    assert_eq!(
        text,
        concat!(
            "1  2026-01-01T00:00:00.123456789Z  user.login  actor=alice  trace=4bf92f3577b34da6a3ce929d0e0e4736  {\"ip\": \"10.0.0.1\",  \"ok\": true}\n",
            "2  2026-01-01T01:00:00Z  plan.applied\n",
            "3  2026-01-01T00:00:00Z  odd  actor=\"eve\\n\\u{1b}[31mroot\"  trace=\"\"\n",
        )
    );
    let text = stdout(&run(&["query", s(&log), "--json"]));
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    let first = &lines[0];
    assert_eq!(first["seq"], 1);
    assert_eq!(first["timestamp"], T0 + 123_456_789);
    assert_eq!(first["kind"], "user.login");
    assert_eq!(first["actor"], "alice");
    assert_eq!(first["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    // Details with a line break travel as text, to keep one line a record.
    assert_eq!(
        first["details_raw"],
        "{\"ip\": \"10.0.0.1\",\n \"ok\": true}"
    );
    assert_eq!(first["leaf"].as_str().unwrap().len(), 64);
    let snap = Reader::open(&log).unwrap().snapshot().unwrap();
    assert_eq!(lines[2]["chain"], snap.head().to_hex());
    assert_eq!(lines[1]["actor"], Value::Null);
    assert!(lines[1].get("details").is_none());
    assert_eq!(lines[2]["actor"], "eve\n\u{1b}[31mroot");
    assert_eq!(lines[2]["trace_id"], "");
}

#[test]
fn tail_prints_the_last_records() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    make_log(&log, 30, 64 * 1024);
    let all = stdout(&run(&["query", s(&log)]));
    let all: Vec<&str> = all.lines().collect();
    for (args, count) in [
        (vec![], 10),
        (vec!["-n", "3"], 3),
        (vec!["--lines", "1"], 1),
        (vec!["-n", "0"], 0),
        (vec!["-n", "1000"], 30),
    ] {
        let mut full = vec!["tail", s(&log)];
        full.extend(&args);
        let text = stdout(&run(&full));
        // The same lines as query prints.
        assert_eq!(
            text.lines().collect::<Vec<_>>(),
            all[30 - count..],
            "{args:?}"
        );
        full.push("--json");
        let text = stdout(&run(&full));
        let want: Vec<u64> = (31 - count as u64..=30).collect();
        assert_eq!(json_seqs(&text), want, "{args:?}");
    }
}

/// Reads a child's stdout lines on a thread of its own: the test blocks on the channel, with a
/// generous timeout only as a safety net against a hang.
fn lines_of(child: &mut Child) -> mpsc::Receiver<String> {
    let out = BufReader::new(child.stdout.take().unwrap());
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in out.lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    rx
}

const PATIENCE: Duration = Duration::from_secs(60);

fn next_seq(rx: &mpsc::Receiver<String>) -> u64 {
    let line = rx
        .recv_timeout(PATIENCE)
        .expect("a line from tail --follow");
    let v: Value = serde_json::from_str(&line).unwrap();
    v["seq"].as_u64().unwrap()
}

fn follow(log: &Path, extra: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_auditring"))
        .args(["tail", s(log), "--follow", "--json"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn tail_follow_prints_records_as_another_writer_commits_them() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    make_log(&log, 5, 64 * 1024);
    let mut child = follow(&log, &["-n", "2"]);
    let rx = lines_of(&mut child);
    assert_eq!(next_seq(&rx), 4);
    assert_eq!(next_seq(&rx), 5);

    // A writer appends while tail runs: in bursts, across several segment rotations.
    let ring = reopen(&log);
    let mut expected = 6;
    for burst in [1, 10, 1000, 1, 2000] {
        for _ in 0..burst {
            ring.push(event(expected - 1)).unwrap();
            expected += 1;
        }
        ring.flush().unwrap();
        // Everything up to the end of the burst arrives, once each and in order.
        let mut seq = 0;
        while seq < expected - 1 {
            let got = next_seq(&rx);
            assert!(got > seq, "{got} after {seq}");
            if seq == 0 {
                assert_eq!(got, expected - burst);
            } else {
                assert_eq!(got, seq + 1);
            }
            seq = got;
        }
    }
    ring.close().unwrap();
    let segments = Reader::open(&log)
        .unwrap()
        .snapshot()
        .unwrap()
        .segment_count();
    assert!(segments > 3, "{segments} segments");

    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn tail_follow_stops_cleanly_when_its_output_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    make_log(&log, 3, 64 * 1024);
    let mut child = follow(&log, &["-n", "1"]);
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(line.starts_with("{\"seq\":3,"), "{line}");
    // Whoever read the output goes away while no record comes: tail notices by itself.
    drop(out);
    let (tx, rx) = mpsc::channel();
    let waiter = thread::spawn(move || {
        let out = child.wait_with_output().unwrap();
        let _ = tx.send(());
        out
    });
    assert!(
        rx.recv_timeout(PATIENCE).is_ok(),
        "tail --follow kept running after its output was closed"
    );
    let out = waiter.join().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // And while records come: a writer keeps appending after the reader has gone.
    let mut child = follow(&log, &["-n", "1"]);
    let mut out = BufReader::new(child.stdout.take().unwrap());
    out.read_line(&mut line).unwrap();
    drop(out);
    let ring = reopen(&log);
    let (tx, rx) = mpsc::channel();
    let waiter = thread::spawn(move || {
        let out = child.wait_with_output().unwrap();
        let _ = tx.send(());
        out
    });
    let mut i = 0;
    while rx.try_recv().is_err() {
        ring.push(event(i)).unwrap();
        ring.flush().unwrap();
        i += 1;
        assert!(i < 1_000_000, "tail --follow kept running");
    }
    ring.close().unwrap();
    let out = waiter.join().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn segments_lists_every_file_of_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let n = 6000;
    make_log(&log, n, 64 * 1024);
    let snap = Reader::open(&log).unwrap().snapshot().unwrap();
    // More than 16, so that names (hex) and numbers (decimal) differ.
    assert!(snap.segment_count() > 16, "{}", snap.segment_count());

    let v: Value = serde_json::from_str(&stdout(&run(&["segments", s(&log), "--json"]))).unwrap();
    let segs = v.as_array().unwrap();
    assert_eq!(segs.len(), snap.segment_count());
    let mut next = 1;
    let mut record_bytes = 0;
    for (k, seg) in segs.iter().enumerate() {
        let file = format!("{:016x}.seg", k + 1);
        assert_eq!(seg["number"], k as u64 + 1);
        assert_eq!(seg["file"], file.as_str());
        assert_eq!(
            Path::new(seg["path"].as_str().unwrap()),
            log.join(&file).as_path()
        );
        assert_eq!(seg["first_seq"], next);
        let last = seg["last_seq"].as_u64().unwrap();
        assert_eq!(seg["events"], last + 1 - next);
        next = last + 1;
        assert_eq!(seg["sealed"], k + 1 < segs.len(), "{seg}");
        let file_bytes = std::fs::metadata(log.join(&file)).unwrap().len();
        assert_eq!(seg["file_bytes"], file_bytes);
        let rb = seg["record_bytes"].as_u64().unwrap();
        assert!(rb > 0 && rb < file_bytes, "{seg}");
        record_bytes += rb;
    }
    assert_eq!(next, n + 1);
    let stat: Value = serde_json::from_str(&stdout(&run(&["stat", s(&log), "--json"]))).unwrap();
    assert_eq!(stat["record_bytes"], record_bytes);

    let text = stdout(&run(&["segments", s(&log)]));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), segs.len());
    for (line, seg) in lines.iter().zip(segs) {
        let want = format!(
            "{}  {}  seq {}..{}  {} / {} bytes  {}",
            seg["number"],
            seg["file"].as_str().unwrap(),
            seg["first_seq"],
            seg["last_seq"],
            seg["record_bytes"],
            seg["file_bytes"],
            if seg["sealed"] == true {
                "sealed"
            } else {
                "active"
            }
        );
        assert_eq!(*line, want);
    }
}

#[test]
fn an_empty_log_prints_nothing_or_says_empty() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    make_log(&log, 0, 64 * 1024);
    assert_eq!(stdout(&run(&["query", s(&log)])), "");
    assert_eq!(stdout(&run(&["query", s(&log), "--limit", "5"])), "");
    assert_eq!(stdout(&run(&["tail", s(&log)])), "");
    let text = stdout(&run(&["segments", s(&log)]));
    assert_eq!(text.lines().count(), 1);
    assert!(text.contains("  empty  "), "{text}");
    let v: Value = serde_json::from_str(&stdout(&run(&["segments", s(&log), "--json"]))).unwrap();
    assert_eq!(v[0]["events"], 0);
    assert_eq!(v[0]["record_bytes"], 0);
}

#[test]
fn bad_input_exits_with_2_and_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    make_log(&log, 3, 64 * 1024);
    let nowhere = dir.path().join("nowhere");
    let not_a_log = dir.path().join("empty");
    std::fs::create_dir(&not_a_log).unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["query", s(&nowhere)], "nowhere"),
        (vec!["tail", s(&nowhere)], "nowhere"),
        (vec!["tail", s(&nowhere), "--follow"], "nowhere"),
        (vec!["segments", s(&nowhere)], "nowhere"),
        (vec!["query", s(&not_a_log)], "empty"),
        (vec!["tail", s(&not_a_log), "--follow"], "empty"),
        (vec!["segments", s(&not_a_log), "--json"], "empty"),
        (vec!["query", s(&log), "--since", "yesterday"], "yesterday"),
        (
            vec!["query", s(&log), "--until", "2026-01-01"],
            "2026-01-01",
        ),
        (
            vec!["query", s(&log), "--since", "2026-01-01T00:00:00"],
            "2026-01-01T00:00:00",
        ),
        (
            vec!["query", s(&log), "--until", "99999999999999999999"],
            "99999999999999999999",
        ),
    ];
    for (args, mention) in cases {
        let out = run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("auditring: error: "), "{args:?}: {err}");
        assert!(err.contains(mention), "{args:?}: {err}");
        if args.contains(&"--json") {
            // With --json, the same message as a JSON error object (issue 12 item 22).
            let v: Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(v["ok"], false, "{args:?}: {v}");
            assert_eq!(v["exit_code"], 2, "{args:?}: {v}");
            assert!(err.contains(v["error"].as_str().unwrap()), "{args:?}: {v}");
        } else {
            assert!(out.stdout.is_empty(), "{args:?}");
        }
    }
    for args in [
        vec!["query"],
        vec!["query", s(&log), "--limit", "-1"],
        vec!["query", s(&log), "--colour"],
        vec!["tail", s(&log), "-n", "ten"],
        vec!["segments"],
    ] {
        assert_eq!(run(&args).status.code(), Some(2), "{args:?}");
    }
}
