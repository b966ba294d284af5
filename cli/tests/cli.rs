//! The command-line contract that scripts rely on: output shapes and exit codes.

use std::path::Path;
use std::process::Output;

use auditring_testkit::cli::{Cli, json};

/// The binary under test.
const AUDITRING: Cli = Cli::new(env!("CARGO_BIN_EXE_auditring"));

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn demo_writes_verifies_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("demo");
    for durability in ["none", "batch", "periodic"] {
        let out = AUDITRING.run(
            &[
                "demo",
                "--dir",
                s(&log),
                "--events",
                "20000",
                "--producers",
                "3",
                "--durability",
                durability,
                "--segment-size",
                "1048576",
                "--json",
            ],
            "",
        );
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let v = json(&out);
        for key in [
            "events",
            "seconds",
            "events_per_sec",
            "p99_push_ns",
            "head_seq",
            "head_hash",
            "verified",
            "p50_push_ns",
            "p999_push_ns",
        ] {
            assert!(v.get(key).is_some(), "missing {key}: {v}");
        }
        assert_eq!(v["events"], 20000);
        assert_eq!(v["head_seq"], 20000);
        assert_eq!(v["verified"], true);
        assert!(v["events_per_sec"].as_f64().unwrap() > 0.0);
        // The head it reports is the head of the log it left.
        let verify = json(&AUDITRING.run(&["verify", s(&log), "--json"], ""));
        assert_eq!(verify["head_hash"], v["head_hash"]);
    }
    // Bigger events.
    let out = AUDITRING.run(
        &[
            "demo",
            "--dir",
            s(&log),
            "--events",
            "2000",
            "--event-size",
            "2048",
            "--json",
        ],
        "",
    );
    assert_eq!(json(&out)["verified"], true);
    let stat = json(&AUDITRING.run(&["stat", s(&log), "--json"], ""));
    let per_event = stat["record_bytes"].as_u64().unwrap() / 2000;
    assert!((2048..2048 + 100).contains(&per_event), "{per_event}");
}

#[test]
fn bench_compares_the_designs_and_cleans_up() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("bench");
    let out = AUDITRING.run(
        &[
            "bench",
            "--dir",
            s(&work),
            "--events",
            "3000",
            "--runs",
            "2",
            "--producers",
            "1,3",
            "--json",
        ],
        "",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let v = json(&out);
    assert_eq!(v["events"], 3000);
    assert_eq!(v["runs"], 2);
    let results = v["results"].as_array().unwrap();
    assert_eq!(
        results
            .iter()
            .map(|r| r["producers"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [1, 3]
    );
    for r in results {
        for design in [
            "auditring",
            "mutex + BufWriter",
            "write-behind",
            "mutex, encoded outside",
            "ready bytes to a writer",
        ] {
            let d = &r["designs"][design];
            assert_eq!(
                d["events_per_sec_runs"].as_array().unwrap().len(),
                2,
                "{design}"
            );
            assert!(
                d["events_per_sec_median"].as_f64().unwrap() > 0.0,
                "{design}"
            );
            assert!(d["p999_push_ns"].as_u64().unwrap() >= d["p50_push_ns"].as_u64().unwrap());
        }
        for key in [
            "ratio_vs_mutex",
            "ratio_vs_write_behind",
            "ratio_vs_mutex_encoded_outside",
            "ratio_vs_ready_bytes",
            "ratio_vs_strongest",
        ] {
            let ratio = r[key].as_f64().unwrap();
            assert!(ratio.is_finite() && ratio > 0.0, "{key}: {ratio}");
        }
        // The strongest is taken run by run, so it is at most every single ratio.
        let strongest = r["ratio_vs_strongest"].as_f64().unwrap();
        assert!(r["strongest_rival"].as_str().is_some());
        assert!(strongest <= r["ratio_vs_mutex"].as_f64().unwrap() * (1.0 + 1e-9));
    }
    assert!(!work.exists(), "the bench's logs are removed afterwards");

    // An existing directory is never written into or removed.
    std::fs::create_dir(&work).unwrap();
    std::fs::write(work.join("precious"), b"x").unwrap();
    let out = AUDITRING.run(&["bench", "--dir", s(&work), "--events", "10"], "");
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));
    assert_eq!(std::fs::read(work.join("precious")).unwrap(), b"x");

    let out = AUDITRING.run(&["bench", "--producers", "0"], "");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn demo_refuses_to_replace_a_directory_that_is_not_a_log() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("precious.txt"), "keep me").unwrap();
    let out = AUDITRING.run(&["demo", "--dir", s(dir.path()), "--events", "10"], "");
    // Exit 5: the output exists (issue 12, item 1).
    assert_eq!(out.status.code(), Some(5));
    assert!(stderr(&out).contains("precious.txt"), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("precious.txt")).unwrap(),
        "keep me"
    );
}

#[test]
fn append_then_verify_and_stat() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let input = concat!(
        "{\"kind\":\"user.login\",\"actor\":\"alice\",\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\",",
        "\"timestamp\":\"2026-11-23T10:00:00.123456789Z\",\"details\":{\"ip\":\"10.0.0.1\", \"ok\": true}}\n",
        "\n",
        "{\"kind\":\"plan.applied\",\"timestamp\":1795000000000000001}\n",
        "{\"kind\":\"user.logout\",\"actor\":\"alice\"}\n",
    );
    let out = AUDITRING.run(&["append", s(&log), "--receipts"], input);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let receipts: Vec<(u64, String)> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (seq, hash) = l.split_once(' ').unwrap();
            assert_eq!(hash.len(), 64);
            (seq.parse().unwrap(), hash.to_string())
        })
        .collect();
    assert_eq!(
        receipts.iter().map(|r| r.0).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );

    let verify = AUDITRING.run(&["verify", s(&log), "--json"], "");
    assert_eq!(verify.status.code(), Some(0));
    let v = json(&verify);
    assert_eq!(v["ok"], true);
    assert_eq!(v["events"], 3);
    assert_eq!(v["first_seq"], 1);
    assert_eq!(v["last_seq"], 3);
    assert_eq!(v["head_hash"], receipts[2].1.as_str());
    assert!(v["error"].is_null());

    let text = AUDITRING.run(&["verify", s(&log)], "");
    assert_eq!(text.status.code(), Some(0));
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(
        text.contains("3 events") && text.contains(&receipts[2].1),
        "{text}"
    );

    let stat = json(&AUDITRING.run(&["stat", s(&log), "--json"], ""));
    assert_eq!(stat["events"], 3);
    assert_eq!(stat["segments"], 1);
    assert_eq!(stat["first_seq"], 1);
    assert_eq!(stat["last_seq"], 3);
    assert_eq!(stat["first_time"], "2026-11-23T10:00:00.123456789Z");
    assert_eq!(stat["head_hash"], receipts[2].1.as_str());

    // The origin timestamps and details are kept exactly.
    let snap = auditring::Reader::open(&log).unwrap().snapshot().unwrap();
    let first = snap.get(1).unwrap().unwrap();
    assert_eq!(
        first.details.as_deref(),
        Some("{\"ip\":\"10.0.0.1\", \"ok\": true}")
    );
    assert_eq!(
        first.trace_id.as_deref(),
        Some("4bf92f3577b34da6a3ce929d0e0e4736")
    );
    assert_eq!(
        snap.get(2).unwrap().unwrap().timestamp,
        1_795_000_000_000_000_001
    );
}

#[test]
fn bad_input_and_usage_exit_with_2_and_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let cases = [
        (
            "{\"kind\":\"ok\"}\n{\"kind\":\"k\",\"timestamp\":\"yesterday\"}\n",
            "line 2",
        ),
        (
            "{\"kind\":\"ok\"}\n{\"kind\":\"ok\"}\n{\"knd\":\"typo\"}\n",
            "line 3",
        ),
        ("{\"kind\":\"\"}\n", "line 1"),
        ("{\"kind\":\"auditring.fake\"}\n", "line 1"),
        ("not json\n", "line 1"),
    ];
    for (input, line) in cases {
        let out = AUDITRING.run(&["append", s(&log)], input);
        assert_eq!(out.status.code(), Some(2), "{input}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains(line), "{input}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    }
    // Only the good lines before each bad one were written.
    let v = json(&AUDITRING.run(&["verify", s(&log), "--json"], ""));
    assert_eq!(v["events"], 3);

    for args in [
        vec!["verify"],
        vec!["frobnicate"],
        vec!["demo", "--events", "many"],
        vec!["append", s(&log), "--durability", "sometimes"],
    ] {
        let out = AUDITRING.run(&args, "");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
    let out = AUDITRING.run(&["stat", s(&dir.path().join("nowhere"))], "");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stderr(&out).trim_end().lines().count(), 1);
}

#[test]
fn a_torn_tail_is_reported_but_is_not_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let out = AUDITRING.run(&["append", s(&log)], "{\"kind\":\"a\"}\n{\"kind\":\"b\"}\n");
    assert_eq!(out.status.code(), Some(0));
    let seg = log.join("0000000000000001.seg");
    let mut bytes = std::fs::read(&seg).unwrap();
    let data = u64::from_le_bytes(bytes[32..40].try_into().unwrap()) as usize;
    let mut end = data;
    while &bytes[end..end + 4] == b"AREC" {
        let body = u32::from_le_bytes(bytes[end + 4..end + 8].try_into().unwrap()) as usize;
        end += (80 + body + 7) & !7;
    }
    // Half a record after the last one, and the clean flag gone (as if the writer had died):
    // rewrite the newest slot as the older one says.
    bytes[end..end + 40].fill(0xab);
    std::fs::write(&seg, &bytes).unwrap();
    let v = json(&AUDITRING.run(&["verify", s(&log), "--json"], ""));
    // A cleanly closed segment has nothing after its records: this is a failure...
    assert_eq!(v["ok"], false, "{v}");
    // ...but the same bytes in a log whose writer died are a torn tail. Make it so: copy the log
    // while a writer has it open, then add the torn bytes.
    let live = dir.path().join("live");
    std::fs::remove_dir_all(&log).unwrap();
    let writer = auditring::Ring::open(&log).unwrap();
    writer.push(auditring::Event::new("a")).unwrap();
    writer.push(auditring::Event::new("b")).unwrap();
    writer.flush().unwrap();
    std::fs::create_dir(&live).unwrap();
    std::fs::copy(&seg, live.join("0000000000000001.seg")).unwrap();
    writer.close().unwrap();
    let seg = live.join("0000000000000001.seg");
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes[end..end + 40].fill(0xab);
    std::fs::write(&seg, &bytes).unwrap();
    let out = AUDITRING.run(&["verify", s(&live), "--json"], "");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let v = json(&out);
    assert_eq!(v["ok"], true);
    assert_eq!(v["events"], 2);
    assert_eq!(v["torn_tail"]["offset"], end);
    assert_eq!(v["torn_tail"]["len"], 40);
    let text = String::from_utf8(AUDITRING.run(&["verify", s(&live)], "").stdout).unwrap();
    assert!(text.contains("torn tail"), "{text}");
}

#[test]
fn every_command_has_help_with_an_example() {
    for command in [
        "demo", "bench", "append", "verify", "stat", "query", "tail", "segments",
    ] {
        let out = AUDITRING.run(&[command, "--help"], "");
        assert_eq!(out.status.code(), Some(0), "{command}");
        let text = String::from_utf8(out.stdout).unwrap();
        let example = text
            .lines()
            .find(|l| l.starts_with("Example: "))
            .unwrap_or("");
        assert!(
            example.contains(&format!("auditring {command}")),
            "{command}: {text}"
        );
    }
    let out = AUDITRING.run(&["--help"], "");
    assert_eq!(out.status.code(), Some(0));
}

/// Issue 12 item 22: with `--json`, every command that fails prints one JSON error object on
/// stdout (as well as its one-line message on stderr), usage errors included.
#[test]
fn every_json_command_prints_a_json_error_object_on_failure() {
    let dir = tempfile::tempdir().unwrap();
    let not_a_log = dir.path().join("empty");
    std::fs::create_dir(&not_a_log).unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, "x").unwrap();
    let out_dir = dir.path().join("out");
    let cases: Vec<(Vec<&str>, u8)> = vec![
        (vec!["verify", s(&not_a_log), "--json"], 2),
        (vec!["stat", s(&not_a_log), "--json"], 2),
        (vec!["segments", s(&not_a_log), "--json"], 2),
        (vec!["query", s(&not_a_log), "--json"], 2),
        (vec!["tail", s(&not_a_log), "--json"], 2),
        (
            vec![
                "export",
                s(&not_a_log),
                "--format",
                "jsonl",
                "--out",
                s(&out_dir),
                "--json",
            ],
            2,
        ),
        (vec!["verify-export", s(&not_a_log), "--json"], 2),
        (vec!["append", s(&file), "--json"], 2),
        // Usage errors: a missing argument, a bad value.
        (vec!["verify", "--json"], 2),
        (
            vec![
                "verify-export",
                s(&not_a_log),
                "--expect-head",
                "00",
                "--json",
            ],
            2,
        ),
    ];
    for (args, code) in cases {
        let out = AUDITRING.run(&args, "");
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(i32::from(code)), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        let v = json(&out);
        assert_eq!(v["ok"], false, "{args:?}: {v}");
        assert_eq!(v["exit_code"], code, "{args:?}: {v}");
        let message = v["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{args:?}: {v}"));
        assert!(
            !message.is_empty() && err.contains(message),
            "{args:?}: {v} / {err}"
        );
        // Without --json, nothing on stdout.
        let plain: Vec<&str> = args.iter().copied().filter(|a| *a != "--json").collect();
        assert!(AUDITRING.run(&plain, "").stdout.is_empty(), "{plain:?}");
    }
}

/// Issue 12 item 22: `--expect-head` says what a head is when given something else.
#[test]
fn expect_head_says_it_wants_64_hex_digits() {
    let dir = tempfile::tempdir().unwrap();
    for (head, says) in [
        (
            "00",
            "expected 64 hex digits (a SHA-256 hash), got 2 digits",
        ),
        (
            &"0".repeat(65)[..],
            "expected 64 hex digits (a SHA-256 hash), got 65 digits",
        ),
        (
            &format!("{}g", "0".repeat(63))[..],
            "expected 64 hex digits (a SHA-256 hash), but character 64 is 'g', not a hex digit",
        ),
    ] {
        let out = AUDITRING.run(&["verify-export", s(dir.path()), "--expect-head", head], "");
        assert_eq!(out.status.code(), Some(2));
        let err = stderr(&out);
        assert!(err.contains(says), "{head}: {err}");
    }
}

/// Issue 12 item 22: negative nanoseconds are times, not flags; out of range ones say so.
#[test]
fn time_arguments_take_negative_nanoseconds() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let input = "{\"kind\":\"before\",\"timestamp\":-5}\n{\"kind\":\"after\",\"timestamp\":5}\n";
    assert_eq!(
        AUDITRING.run(&["append", s(&log)], input).status.code(),
        Some(0)
    );
    let out = AUDITRING.run(&["query", s(&log), "--since", "-9223372036854775808"], "");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 2);
    let out = AUDITRING.run(&["query", s(&log), "--since", "-6", "--until", "-4"], "");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("before") && !text.contains("after"), "{text}");
    for args in [
        &["query", s(&log), "--since", "-9223372036854775809"][..],
        &["query", s(&log), "--until", "-9223372036854775809"],
    ] {
        let out = AUDITRING.run(args, "");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = stderr(&out);
        assert!(
            err.contains("\"-9223372036854775809\" is outside the nanoseconds an i64 holds (the years 1677-2262)"),
            "{err}"
        );
    }
    let out_dir = dir.path().join("export");
    let out = AUDITRING.run(
        &[
            "export",
            s(&log),
            "--format",
            "jsonl",
            "--out",
            s(&out_dir),
            "--until",
            "-4",
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = AUDITRING.run(
        &[
            "export",
            s(&log),
            "--format",
            "jsonl",
            "--out",
            s(&out_dir),
            "--since",
            "-9223372036854775809",
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("1677-2262"), "{}", stderr(&out));
}
