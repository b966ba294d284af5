//! The bad-input catalogue (`docs/BAD_INPUT.md`): one test per class of bad input that no other
//! test covers with its exact error, location and CLI exit code.
//!
//! Each test damages a log (or an export, or the input of `append`) in one way and checks the
//! exact variant, the seq, file and byte offset of the failure, and the exit code of the command
//! line tool.

use std::path::{Path, PathBuf};

use auditring::{Error, Event, EventError, HeaderError, PushError, Reader, Reason, Ring};
use auditring_testkit::cli::Cli;
use auditring_testkit::slots::{
    activated_past_lost_records, current_slot, data_offset, edit_slot, fix_slot_digest, records,
    remove_from, segment, unseal,
};

/// The binary under test.
const AUDITRING: Cli = Cli::new(env!("CARGO_BIN_EXE_auditring"));

const SEGMENT: u64 = 64 * 1024;

/// A closed log of 1000 events on 64 KiB segments (several segments).
fn make_log(dir: &Path) {
    let ring = Ring::builder(dir).segment_size(SEGMENT).open().unwrap();
    for i in 0..1000u32 {
        ring.push(
            Event::new("test.event")
                .with_actor("alice")
                .with_timestamp_nanos(i64::from(i))
                .with_details(&serde_json::json!({ "i": i }))
                .unwrap(),
        )
        .unwrap();
    }
    ring.close().unwrap();
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Verifies `dir` with the library and the CLI; checks that both report the failure at
/// `(seq, file, offset)` with exit code 1, and returns the reason.
fn failure_at(dir: &Path, seq: Option<u64>, file: &Path, offset: u64) -> Reason {
    let report = auditring::verify(dir, auditring::VerifyOptions::default()).unwrap();
    let f = report.failure.expect("a failure");
    assert_eq!(
        (f.seq, f.file.as_path(), f.offset),
        (seq, file, offset),
        "{f}"
    );
    let out = AUDITRING.run(&["verify", s(dir), "--json"], "");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["error"]["seq"], serde_json::json!(seq));
    assert_eq!(v["error"]["file"], s(file));
    assert_eq!(v["error"]["offset"], offset);
    f.reason
}

/// A damaged header, in the first segment (where the walk does not know the seq yet) and in a
/// later one: the header's variant at offset 0, exit 1, and readers and writers refuse the log.
#[test]
fn bad_headers_fail_at_offset_0_with_their_variant_and_exit_1() {
    type Damage = fn(&mut Vec<u8>);
    let cases: [(&str, Damage, HeaderError); 3] = [
        ("bad magic", |b| b[0] = b'X', HeaderError::BadMagic),
        (
            "unsupported version",
            |b| b[8] = 2,
            HeaderError::UnsupportedVersion(2),
        ),
        (
            "truncated header",
            |b| b.truncate(4095),
            HeaderError::Truncated { len: 4095 },
        ),
    ];
    for (what, damage, expected) in cases {
        for n in [1, 2] {
            let dir = tempfile::tempdir().unwrap();
            make_log(dir.path());
            let path = segment(dir.path(), n);
            // The seq the walk expects at segment 2: the one after segment 1's last.
            let next = (n == 2).then(|| {
                records(&std::fs::read(segment(dir.path(), 1)).unwrap())
                    .last()
                    .unwrap()
                    .2
                    + 1
            });
            let mut bytes = std::fs::read(&path).unwrap();
            damage(&mut bytes);
            std::fs::write(&path, &bytes).unwrap();
            let reason = failure_at(dir.path(), next, &path, 0);
            assert_eq!(reason, Reason::Header(expected), "{what}, {n}");
            // Reading and writing refuse the log with an integrity error too (exit 1).
            assert!(
                matches!(Ring::open(dir.path()), Err(Error::Integrity(_))),
                "{what}, {n}"
            );
            assert!(
                Reader::open(dir.path()).unwrap().snapshot().is_err(),
                "{what}, {n}"
            );
            let out = AUDITRING.run(&["append", s(dir.path())], "");
            assert_eq!(out.status.code(), Some(1), "{what}, {n}");
        }
    }
}

#[test]
fn a_file_shorter_than_its_committed_length_is_cut_short() {
    let dir = tempfile::tempdir().unwrap();
    make_log(dir.path());
    let path = segment(dir.path(), 1);
    let bytes = std::fs::read(&path).unwrap();
    let committed = {
        let at = current_slot(&bytes);
        u64::from_le_bytes(bytes[at + 16..at + 24].try_into().unwrap())
    };
    let cut = committed - 100;
    std::fs::write(&path, &bytes[..cut as usize]).unwrap();
    let reason = failure_at(dir.path(), None, &path, cut);
    assert_eq!(
        reason,
        Reason::CutShort {
            committed,
            actual: cut
        }
    );
    // Readers refuse with the same kind of error, not a SIGBUS.
    assert!(matches!(
        Reader::open(dir.path()).unwrap().snapshot(),
        Err(Error::Integrity(_))
    ));
}

#[test]
fn a_zero_filled_page_among_the_records_fails_at_the_record_it_hits() {
    let dir = tempfile::tempdir().unwrap();
    make_log(dir.path());
    let path = segment(dir.path(), 1);
    let mut bytes = std::fs::read(&path).unwrap();
    let recs = records(&bytes);
    // The fourth page of the file: zeroed, it fails at the record holding its first byte.
    let page = 3 * 4096;
    let &(offset, _, seq) = recs
        .iter()
        .find(|r| page >= r.0 && page < r.0 + r.1)
        .unwrap();
    bytes[page..page + 4096].fill(0);
    std::fs::write(&path, &bytes).unwrap();
    let reason = failure_at(dir.path(), Some(seq), &path, offset as u64);
    if page == offset {
        // The page starts with the record: no record header there.
        assert_eq!(reason, Reason::RecordMagic);
    } else if page >= offset + 80 {
        // The page starts in the record's body: the body no longer hashes to its leaf.
        assert!(matches!(reason, Reason::Leaf { .. }), "{reason}");
    }
}

/// Sets the seq stored in the header of record `index` of segment 1 and returns
/// `(path, offset, expected seq)`.
fn rewrite_seq(dir: &Path, index: usize, seq: impl Fn(u64) -> u64) -> (PathBuf, u64, u64) {
    let path = segment(dir, 1);
    let mut bytes = std::fs::read(&path).unwrap();
    let (at, _, expected) = records(&bytes)[index];
    bytes[at + 8..at + 16].copy_from_slice(&seq(expected).to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();
    (path, at as u64, expected)
}

#[test]
fn a_seq_gap_is_a_seq_failure_where_the_seq_should_be() {
    let dir = tempfile::tempdir().unwrap();
    make_log(dir.path());
    let (path, offset, expected) = rewrite_seq(dir.path(), 40, |s| s + 1);
    let reason = failure_at(dir.path(), Some(expected), &path, offset);
    assert_eq!(
        reason,
        Reason::Seq {
            expected,
            found: expected + 1
        }
    );
}

#[test]
fn a_seq_regression_or_duplicate_is_a_seq_failure() {
    for back in [1, 2] {
        let dir = tempfile::tempdir().unwrap();
        make_log(dir.path());
        let (path, offset, expected) = rewrite_seq(dir.path(), 40, |s| s - back);
        let reason = failure_at(dir.path(), Some(expected), &path, offset);
        assert_eq!(
            reason,
            Reason::Seq {
                expected,
                found: expected - back
            }
        );
    }
}

#[test]
fn a_segment_that_does_not_continue_the_chain_fails_at_its_slot() {
    let dir = tempfile::tempdir().unwrap();
    make_log(dir.path());
    let path = segment(dir.path(), 2);
    let mut bytes = std::fs::read(&path).unwrap();
    let first = records(&bytes)[0].2;
    // Another anchor in both slots, with valid digests: only the chain says it is wrong.
    for at in [512, 1024] {
        if bytes[at..at + 136].iter().any(|&b| b != 0) {
            bytes[at + 40] ^= 1;
            fix_slot_digest(&mut bytes, at);
        }
    }
    std::fs::write(&path, &bytes).unwrap();
    let slot = current_slot(&bytes) as u64;
    let reason = failure_at(dir.path(), Some(first), &path, slot);
    assert!(matches!(reason, Reason::Continuity(_)), "{reason}");
}

/// A log whose first two segments are unsealed, as after a crash during the sealing of the
/// first, and whose later segments are gone. Returns the first record of segment 2.
fn crashed_while_sealing(dir: &Path) -> u64 {
    make_log(dir);
    assert!(
        remove_from(dir, 3) > 0,
        "make_log writes at least three segments"
    );
    edit_slot(dir, 1, unseal);
    edit_slot(dir, 2, unseal);
    records(&std::fs::read(segment(dir, 2)).unwrap())[0].2
}

/// A segment after an unsealed one may be past a tear (a crash lost the records it was
/// activated after), but only while it holds nothing committed: one whose commit slot names
/// records does not start where the chain is, and that is a failure at its slot.
#[test]
fn after_an_unsealed_segment_a_break_with_committed_records_fails_at_the_slot() {
    let dir = tempfile::tempdir().unwrap();
    let first = crashed_while_sealing(dir.path());
    assert!(
        auditring::verify(dir.path(), auditring::VerifyOptions::default())
            .unwrap()
            .is_ok()
    );
    let (path, at) = edit_slot(dir.path(), 2, |slot| slot[40] ^= 1);
    let reason = failure_at(dir.path(), Some(first), &path, at);
    assert!(matches!(reason, Reason::Continuity(_)), "{reason}");
}

/// Past a tear, nothing may be committed: a segment with committed records after a segment
/// that holds nothing past the tear fails at its slot.
#[test]
fn committed_records_after_a_segment_past_a_tear_fail_at_their_slot() {
    let dir = tempfile::tempdir().unwrap();
    make_log(dir.path());
    #[allow(clippy::maybe_infinite_iter)] // the log has a few segments
    let last = (4..).find(|&n| !segment(dir.path(), n).exists()).unwrap() - 1;
    for n in 1..=last {
        edit_slot(dir.path(), n, unseal);
    }
    let data = data_offset(dir.path(), 2);
    edit_slot(dir.path(), 2, activated_past_lost_records(data));
    let first3 = records(&std::fs::read(segment(dir.path(), 3)).unwrap())[0].2;
    let path3 = segment(dir.path(), 3);
    let at3 = current_slot(&std::fs::read(&path3).unwrap()) as u64;
    let reason = failure_at(dir.path(), Some(first3), &path3, at3);
    assert_eq!(
        reason,
        Reason::Continuity("committed records follow a break in the chain")
    );
    // Without segment 3, the log verifies, with segment 2 noted as past a tear.
    remove_from(dir.path(), 3);
    let report = auditring::verify(dir.path(), auditring::VerifyOptions::default()).unwrap();
    assert!(report.is_ok(), "{:?}", report.failure);
    assert!(
        report.notes.iter().any(|n| n.contains("past a tear")),
        "{:?}",
        report.notes
    );
}

#[test]
fn a_segment_missing_in_the_middle_fails_at_the_next_one() {
    let dir = tempfile::tempdir().unwrap();
    make_log(dir.path());
    let next = records(&std::fs::read(segment(dir.path(), 1)).unwrap())
        .last()
        .unwrap()
        .2
        + 1;
    std::fs::remove_file(segment(dir.path(), 2)).unwrap();
    let reason = failure_at(dir.path(), Some(next), &segment(dir.path(), 3), 0);
    assert_eq!(reason, Reason::MissingSegment(2));
    assert!(matches!(Ring::open(dir.path()), Err(Error::Integrity(_))));
}

#[test]
fn a_foreign_file_is_listed_not_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    make_log(dir.path());
    for name in ["notes.txt", "0000000000000009.SEG", "0000000000000000.seg"] {
        std::fs::write(dir.path().join(name), b"not a segment").unwrap();
    }
    let report = auditring::verify(dir.path(), auditring::VerifyOptions::default()).unwrap();
    assert!(report.is_ok(), "{:?}", report.failure);
    let mut foreign = report.foreign_files.clone();
    foreign.sort();
    assert_eq!(
        foreign,
        ["0000000000000000.seg", "0000000000000009.SEG", "notes.txt"]
    );
    let out = AUDITRING.run(&["verify", s(dir.path()), "--json"], "");
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["foreign_files"].as_array().unwrap().len(), 3);
    // The writer leaves them alone and keeps writing.
    let ring = Ring::open(dir.path()).unwrap();
    ring.push(Event::new("after")).unwrap();
    ring.close().unwrap();
    assert!(dir.path().join("notes.txt").exists());
    assert!(
        auditring::verify(dir.path(), auditring::VerifyOptions::default())
            .unwrap()
            .is_ok()
    );
    // A directory of foreign files only is not a log: exit 2.
    let other = tempfile::tempdir().unwrap();
    std::fs::write(other.path().join("notes.txt"), b"x").unwrap();
    assert!(matches!(
        auditring::verify(other.path(), auditring::VerifyOptions::default()),
        Err(Error::NotALog { .. })
    ));
    assert_eq!(
        AUDITRING
            .run(&["verify", s(other.path())], "")
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn an_oversized_length_field_is_a_record_length_failure_not_an_allocation() {
    let dir = tempfile::tempdir().unwrap();
    make_log(dir.path());
    let path = segment(dir.path(), 1);
    let mut bytes = std::fs::read(&path).unwrap();
    let (at, _, seq) = records(&bytes)[7];
    let committed = {
        let slot = current_slot(&bytes);
        u64::from_le_bytes(bytes[slot + 16..slot + 24].try_into().unwrap())
    };
    bytes[at + 4..at + 8].copy_from_slice(&u32::MAX.to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();
    let reason = failure_at(dir.path(), Some(seq), &path, at as u64);
    assert_eq!(
        reason,
        Reason::RecordLength {
            len: u64::from(u32::MAX),
            end: committed
        }
    );
}

#[test]
fn an_oversized_length_field_in_a_bundle_fails_where_the_record_starts() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    make_log(&log);
    let out = dir.path().join("export");
    let ex = AUDITRING.run(
        &[
            "export",
            s(&log),
            "--format",
            "bundle",
            "--out",
            s(&out),
            "--from",
            "1",
            "--to",
            "20",
        ],
        "",
    );
    assert_eq!(
        ex.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ex.stderr)
    );
    let data = out.join("records.bin");
    let mut bytes = std::fs::read(&data).unwrap();
    let (at, len, seq) = {
        let mut at = 0;
        let mut k = 0;
        loop {
            let body = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
            let len = (80 + body + 7) & !7;
            if k == 5 {
                break (
                    at,
                    len,
                    u64::from_le_bytes(bytes[at + 8..at + 16].try_into().unwrap()),
                );
            }
            at += len;
            k += 1;
        }
    };
    assert!(len > 0);
    bytes[at + 4..at + 8].copy_from_slice(&u32::MAX.to_le_bytes());
    std::fs::write(&data, &bytes).unwrap();
    let report = auditring::verify_export(&out, auditring::VerifyExportOptions::default()).unwrap();
    let f = report.failure.expect("a failure");
    assert_eq!(
        (f.seq, f.file.as_path(), f.offset),
        (Some(seq), data.as_path(), at as u64),
        "{f}"
    );
    assert!(matches!(f.reason, Reason::RecordLength { .. }), "{f}");
    let v = AUDITRING.run(&["verify-export", s(&out)], "");
    assert_eq!(v.status.code(), Some(1));
}

#[test]
fn an_event_too_large_is_handed_back_and_append_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let ring = Ring::builder(dir.path())
        .segment_size(SEGMENT)
        .max_event_size(1024)
        .open()
        .unwrap();
    let big = Event::new("big")
        .with_details_json(format!("\"{}\"", "x".repeat(2000)))
        .unwrap();
    match ring.push(big.clone()) {
        Err(PushError::Invalid {
            event,
            source: EventError::TooLarge { len, max },
        }) => {
            assert_eq!(event, big);
            assert_eq!(max, 1024);
            assert_eq!(len, 20 + 3 + 2002);
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    ring.push(Event::new("small")).unwrap();
    ring.close().unwrap();
    assert_eq!(
        auditring::verify(dir.path(), auditring::VerifyOptions::default())
            .unwrap()
            .events,
        1
    );
    // Through the CLI: an event larger than the largest record a segment can hold.
    let log = dir.path().join("cli");
    let line = format!(
        "{{\"kind\":\"ok\"}}\n{{\"kind\":\"big\",\"details\":\"{}\"}}\n",
        "x".repeat(70_000)
    );
    let out = AUDITRING.run(&["append", s(&log), "--segment-size", "65536"], &line);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 2") && err.contains("maximum event size"),
        "{err}"
    );
    assert_eq!(
        auditring::verify(&log, auditring::VerifyOptions::default())
            .unwrap()
            .events,
        1
    );
}

#[test]
fn a_line_that_is_not_a_json_object_is_refused_by_append() {
    // Found by fuzzing (fuzz/corpus/append_line/regress-array-line): serde reads a struct from an
    // array of its fields too, so `["k"]` was appended as an event of kind "k".
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    for (input, line) in [
        ("{\"kind\":\"ok\"}\n[\"k\"]\n", "line 2"),
        ("[\"k\",\"alice\",null,5,{\"x\":1}]\n", "line 1"),
        ("\"k\"\n", "line 1"),
    ] {
        let out = AUDITRING.run(&["append", s(&log)], input);
        assert_eq!(out.status.code(), Some(2), "{input}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(line) && err.contains("JSON object"),
            "{input}: {err}"
        );
    }
    assert_eq!(
        auditring::verify(&log, auditring::VerifyOptions::default())
            .unwrap()
            .events,
        1
    );
}

/// Issue 12 item 11: a line with no end was read whole into memory (a 1 GiB allocation
/// aborted the process). Lines are bounded by 6 times the maximum event size plus 4 KiB; a
/// longer one is refused with exit 2, naming the line and the bound, without being read on.
#[test]
fn a_line_longer_than_the_bound_is_refused_without_being_read_whole() {
    let dir = tempfile::tempdir().unwrap();
    // The defaults: a 1 MiB maximum event, so 6 MiB + 4 KiB; 16 MiB with no newline at all.
    let log = dir.path().join("default");
    let mut input = b"{\"kind\":\"ok\"}\n".to_vec();
    input.resize(input.len() + (16 << 20), b'x');
    let out = AUDITRING.run_partial_stdin(&["append", s(&log)], input);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("line 2: the line is longer than 6295552 bytes"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(
        auditring::verify(&log, auditring::VerifyOptions::default())
            .unwrap()
            .events,
        1
    );

    // The bound follows the ring's maximum event size: far less on 64 KiB segments.
    let log = dir.path().join("small");
    let line = format!(
        "{{\"kind\":\"k\",\"details\":\"{}\"}}\n",
        "y".repeat(500_000)
    );
    let out =
        AUDITRING.run_partial_stdin(&["append", s(&log), "--segment-size", "65536"], line.into());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let bound: usize = err
        .split("longer than ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no bound in {err}"));
    assert!((6 * 32_768..6 * 65_536 + 4096).contains(&bound), "{err}");
    assert!(err.contains("line 1"), "{err}");
}

/// Issue 12 item 22: lines `append` refuses say what is wrong with them, and where.
#[test]
fn append_names_bad_timestamps_lone_surrogates_and_misplaced_byte_order_marks() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    for (input, says) in [
        (
            "{\"kind\":\"ok\"}\n{\"kind\":\"k\",\"timestamp\":1e30}\n",
            "line 2: timestamp: 1e30 is not an integer number of nanoseconds since the Unix \
             epoch (or RFC 3339 text)",
        ),
        (
            "{\"kind\":\"k\",\"timestamp\":1.5}\n",
            "line 1: timestamp: 1.5 is not an integer number of nanoseconds",
        ),
        (
            "{\"kind\":\"k\",\"timestamp\":9223372036854775808}\n",
            "line 1: timestamp: 9223372036854775808 is out of range: integer nanoseconds since \
             the Unix epoch must fit an i64 (the years 1677-2262)",
        ),
        (
            "{\"kind\":\"k\",\"timestamp\":\"2263-01-01T00:00:00Z\"}\n",
            "line 1: timestamp: \"2263-01-01T00:00:00Z\" is outside the years 1677-2262",
        ),
        (
            "{\"kind\":\"k\",\"actor\":\"\\ud800\"}\n",
            "line 1: \\ud800 at column 22 is a lone UTF-16 surrogate",
        ),
        (
            "{\"kind\":\"k\",\"details\":{\"x\":\"a\\udc00\"}}\n",
            "line 1: \\udc00 at column 30 is a lone UTF-16 surrogate",
        ),
        (
            "{\"kind\":\"k\"}\n\u{feff}{\"kind\":\"k\"}\n",
            "line 2: the line starts with a byte order mark (U+FEFF)",
        ),
    ] {
        let out = AUDITRING.run(&["append", s(&log)], input);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{input:?}: {err}");
        assert!(err.contains(says), "{input:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    // A byte order mark at the very start of the input is skipped (`append --help` says so).
    let before = auditring::verify(&log, auditring::VerifyOptions::default())
        .unwrap()
        .events;
    let out = AUDITRING.run(&["append", s(&log)], "\u{feff}{\"kind\":\"bom\"}\n");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        auditring::verify(&log, auditring::VerifyOptions::default())
            .unwrap()
            .events,
        before + 1
    );
    let help = AUDITRING.run(&["append", "--help"], "");
    assert!(String::from_utf8_lossy(&help.stdout).contains("byte order mark"));
}

/// Issue 12 item 22: two Valid commit slots with the same generation (one copied over the
/// other) were "damaged or missing" to verify, while readers and a writer took slot 1 as current
/// and a writer then overwrote the evidence. Now every one of them names the problem, at 1024.
#[test]
fn two_slots_of_one_generation_are_named_by_verify_readers_and_writers() {
    let dir = tempfile::tempdir().unwrap();
    make_log(dir.path());
    let seg = segment(dir.path(), 1);
    let mut bytes = std::fs::read(&seg).unwrap();
    let at = current_slot(&bytes);
    let other = if at == 512 { 1024 } else { 512 };
    let generation = u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
    bytes.copy_within(at..at + 136, other);
    std::fs::write(&seg, &bytes).unwrap();
    let reason = failure_at(dir.path(), None, &seg, 1024);
    assert_eq!(
        reason,
        Reason::Header(HeaderError::SameGeneration { generation })
    );
    let says = format!("both commit slots claim generation {generation}");
    assert!(reason.to_string().contains(&says), "{reason}");
    // Readers and writers refuse the log with the same failure, and leave it as it is.
    match Reader::open(dir.path()).and_then(|r| r.snapshot()) {
        Err(Error::Integrity(e)) => {
            assert_eq!((e.file.as_path(), e.offset), (seg.as_path(), 1024));
            assert_eq!(e.reason, reason);
        }
        other => panic!("a reader took it: {:?}", other.map(|s| s.head_seq())),
    }
    for args in [
        &["stat", s(dir.path())][..],
        &["query", s(dir.path())],
        &["append", s(dir.path())],
    ] {
        let out = AUDITRING.run_partial_stdin(args, b"{\"kind\":\"k\"}\n".to_vec());
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains(&says) && err.contains("at byte 1024"),
            "{args:?}: {err}"
        );
    }
    assert_eq!(std::fs::read(&seg).unwrap(), bytes, "the evidence is kept");
}
