//! Damaged and hostile logs: every change is found and located, bad input gets a typed error,
//! nothing crashes.

use std::path::Path;
use std::process::Command;

use auditring::storage::MemStorage;
use auditring::{Error, Event, Reader, Reason, Ring};
use auditring_testkit::slots::records;

/// A cleanly closed log of a few segments in memory; returns the storage and its segment names.
fn small_log() -> (MemStorage, Vec<String>) {
    let mem = MemStorage::new("tamper");
    for round in 0..2 {
        let ring = Ring::with_storage(mem.clone())
            .segment_size(64 * 1024)
            .open()
            .unwrap();
        for i in 0..300u32 {
            let mut e = Event::new("test.event").with_timestamp_nanos(i64::from(i));
            if i % 2 == 0 {
                e = e.with_actor(format!("actor-{round}-{i}"));
            }
            if i % 3 == 0 {
                e = e.with_trace_id("trace");
            }
            if i % 5 != 0 {
                e = e
                    .with_details(
                        &serde_json::json!({ "i": i, "pad": "p".repeat(i as usize % 90) }),
                    )
                    .unwrap();
            }
            ring.push(e).unwrap();
        }
        ring.close().unwrap();
    }
    let mut names: Vec<String> = auditring::storage::Storage::list(&mem)
        .unwrap()
        .into_iter()
        .filter(|n| {
            std::path::Path::new(n)
                .extension()
                .is_some_and(|e| e == "seg")
        })
        .collect();
    names.sort();
    assert!(names.len() >= 2, "{names:?}");
    (mem, names)
}

#[test]
fn every_byte_of_a_closed_log_is_covered() {
    let (mem, names) = small_log();
    let base = auditring::verify_storage(&mem, auditring::VerifyOptions::default()).unwrap();
    assert!(base.is_ok(), "{:?}", base.failure);
    let mut checked = 0;
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    for name in &names {
        let original = mem.read_file(name).unwrap();
        let recs = records(&original);
        let data_end = recs.last().map_or(0, |r| r.0 + r.1);
        // Every byte of the header's prefix and slots, of the used index entries, of every
        // record, and the first bytes after them; plus a sample of the rest.
        let mut offsets: Vec<usize> = (0..1200).chain(4096..4096 + 64).collect();
        offsets.extend(recs.first().map_or(0, |r| r.0)..(data_end + 128).min(original.len()));
        for _ in 0..300 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            offsets.push((rng % original.len() as u64) as usize);
        }
        for &at in &offsets {
            let mut bytes = original.clone();
            bytes[at] ^= 0x20;
            mem.write_file(name, bytes);
            let report =
                auditring::verify_storage(&mem, auditring::VerifyOptions::default()).unwrap();
            let failure = report
                .failure
                .unwrap_or_else(|| panic!("flip at byte {at} of {name} went unnoticed"));
            assert!(failure.file.ends_with(name), "{failure}");
            if let Some(&(_, _, seq)) = recs.iter().find(|r| at >= r.0 && at < r.0 + r.1) {
                assert_eq!(failure.seq, Some(seq), "flip at byte {at}: {failure}");
            }
            checked += 1;
        }
        mem.write_file(name, original);
    }
    assert!(
        auditring::verify_storage(&mem, auditring::VerifyOptions::default())
            .unwrap()
            .is_ok()
    );
    assert!(checked > 20_000, "{checked}");
}

fn fs_log(dir: &Path) -> auditring::Hash {
    let ring = Ring::builder(dir).segment_size(64 * 1024).open().unwrap();
    for i in 0..1000u32 {
        ring.push(
            Event::new("test.event")
                .with_actor("alice")
                .with_details(&serde_json::json!({ "marker": format!("needle-{i:04}") }))
                .unwrap(),
        )
        .unwrap();
    }
    let head = ring.snapshot().head();
    ring.close().unwrap();
    head
}

fn segment(dir: &Path, n: u64) -> std::path::PathBuf {
    dir.join(format!("{n:016x}.seg"))
}

fn cli_verify(dir: &Path) -> (Option<i32>, serde_json::Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_auditring"))
        .arg("verify")
        .arg(dir)
        .arg("--json")
        .output()
        .unwrap();
    let v = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out.status.code(), v)
}

#[test]
fn a_flipped_byte_in_a_record_is_named_by_seq_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    fs_log(dir.path());
    let path = segment(dir.path(), 1);
    let mut bytes = std::fs::read(&path).unwrap();
    let needle = b"needle-0123";
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap();
    bytes[at + 7] = b'9';
    std::fs::write(&path, &bytes).unwrap();
    let record_start = records(&bytes)
        .into_iter()
        .find(|r| at >= r.0 && at < r.0 + r.1)
        .unwrap();
    assert_eq!(record_start.2, 124);

    let report = auditring::verify(dir.path(), auditring::VerifyOptions::default()).unwrap();
    let f = report.failure.unwrap();
    assert_eq!(f.seq, Some(124));
    assert_eq!(f.file, path);
    assert_eq!(f.offset, record_start.0 as u64);
    assert!(matches!(f.reason, Reason::Leaf { .. }), "{f}");

    let (code, v) = cli_verify(dir.path());
    assert_eq!(code, Some(1));
    assert_eq!(v["ok"], false);
    assert_eq!(v["error"]["seq"], 124);
    assert_eq!(v["error"]["offset"], record_start.0);
    assert_eq!(v["error"]["file"], path.display().to_string());
    assert!(v["error"]["reason"].as_str().unwrap().contains("leaf hash"));
}

#[test]
fn a_segment_cut_short_is_an_error_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    fs_log(dir.path());
    let path = segment(dir.path(), 1);
    let len = std::fs::metadata(&path).unwrap().len();
    // Below the committed length, then below the header.
    for cut in [len / 2, 100, 0] {
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(cut).unwrap();
        drop(f);
        let (code, v) = cli_verify(dir.path());
        assert_eq!(code, Some(1), "cut to {cut}: {v}");
        let reason = v["error"]["reason"].as_str().unwrap().to_string();
        if cut >= 4096 {
            assert!(reason.contains("cut short"), "{reason}");
        } else {
            assert!(reason.contains("truncated header"), "{reason}");
        }
        let failure = auditring::verify(dir.path(), auditring::VerifyOptions::default())
            .unwrap()
            .failure
            .unwrap();
        assert_eq!(failure.file, path);
        // Reading and writing refuse with an error, not a SIGBUS.
        assert!(matches!(
            Reader::open(dir.path()).unwrap().snapshot(),
            Err(Error::Integrity(_))
        ));
        assert!(matches!(Ring::open(dir.path()), Err(Error::Integrity(_))));
    }
}

#[test]
fn damage_in_the_committed_region_refuses_to_open_with_the_error_verify_gives() {
    let dir = tempfile::tempdir().unwrap();
    fs_log(dir.path());
    let last = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(std::result::Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".seg"))
        .count() as u64;
    let path = segment(dir.path(), last);
    let mut bytes = std::fs::read(&path).unwrap();
    // The last committed record: what opening checks.
    let (at, len, seq) = *records(&bytes).last().unwrap();
    bytes[at + len - 12] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let from_verify = auditring::verify(dir.path(), auditring::VerifyOptions::default())
        .unwrap()
        .failure
        .unwrap();
    assert_eq!(from_verify.seq, Some(seq));
    match Ring::open(dir.path()) {
        Err(Error::Integrity(e)) => assert_eq!(*e, from_verify),
        other => panic!("expected an integrity error, got {other:?}"),
    }
    // The CLI's writer refuses too, with the integrity exit code.
    let out = Command::new(env!("CARGO_BIN_EXE_auditring"))
        .arg("append")
        .arg(dir.path())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("seq {seq}")));
}

#[test]
fn directories_that_are_not_logs_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "hello").unwrap();
    assert!(matches!(Ring::open(dir.path()), Err(Error::NotALog { .. })));
    assert!(matches!(
        auditring::verify(dir.path(), auditring::VerifyOptions::default()),
        Err(Error::NotALog { .. })
    ));
    let (code, _) = cli_verify(dir.path());
    assert_eq!(code, Some(2));
    let file = dir.path().join("notes.txt");
    assert!(matches!(Ring::open(&file), Err(Error::NotALog { .. })));
    let missing = dir.path().join("missing");
    let (code, _) = cli_verify(&missing);
    assert_eq!(code, Some(2));
    // The files that were there are untouched.
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "hello");
}

#[test]
fn a_missing_or_foreign_segment_breaks_the_chain_where_it_is() {
    let dir = tempfile::tempdir().unwrap();
    fs_log(dir.path());
    let other = tempfile::tempdir().unwrap();
    fs_log(other.path());
    // A segment from another log in place of segment 2.
    std::fs::copy(segment(other.path(), 2), segment(dir.path(), 2)).unwrap();
    let f = auditring::verify(dir.path(), auditring::VerifyOptions::default())
        .unwrap()
        .failure
        .unwrap();
    assert_eq!(f.file, segment(dir.path(), 2));
    assert_eq!(f.reason, Reason::LogId);
    // Segment 2 missing.
    std::fs::remove_file(segment(dir.path(), 2)).unwrap();
    let f = auditring::verify(dir.path(), auditring::VerifyOptions::default())
        .unwrap()
        .failure
        .unwrap();
    assert_eq!(f.reason, Reason::MissingSegment(2));
    assert!(matches!(Ring::open(dir.path()), Err(Error::Integrity(_))));
}
