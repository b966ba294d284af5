//! Exports: self-verifying, atomic, linked; and every way one can be wrong.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};

use auditring::ManifestError;
use auditring::{
    Encoding, Error, Event, ExportError, ExportOptions, Reason, Ring, Selection,
    VerifyExportOptions, verify_export,
};
use auditring_testkit::rechain;

fn event(i: u64) -> Event {
    let mut e = Event::new(["login", "logout", "plan.applied"][(i % 3) as usize])
        .with_timestamp_nanos(1_000_000 + i as i64 * 10);
    if i.is_multiple_of(2) {
        e = e.with_actor(format!("user-{}", i % 7));
    }
    if i.is_multiple_of(3) {
        e = e.with_trace_id(format!("trace-{i}"));
    }
    match i % 5 {
        0 => e,
        1 => e.with_details_json("{ \"spaced\" : [1, 2] }").unwrap(),
        2 => e.with_details_json("{\"multi\":\n  \"line\"}").unwrap(),
        3 => e.with_details_json("null").unwrap(),
        _ => e
            .with_details(&serde_json::json!({ "i": i, "text": "é ✓ \"quoted\"" }))
            .unwrap(),
    }
}

fn log(dir: &Path, n: u64) -> Ring {
    let ring = Ring::builder(dir).segment_size(64 * 1024).open().unwrap();
    for i in 0..n {
        ring.push(event(i)).unwrap();
    }
    ring.flush().unwrap();
    ring
}

fn options(encoding: Encoding, selection: Selection) -> ExportOptions<'static> {
    ExportOptions::new().selection(selection).encoding(encoding)
}

#[test]
fn exports_in_both_encodings_verify_and_hold_the_range() {
    let dir = tempfile::tempdir().unwrap();
    let ring = log(&dir.path().join("log"), 1_000);
    let snap = ring.snapshot();
    for encoding in [Encoding::Jsonl, Encoding::Bundle] {
        let out = dir.path().join(format!("{encoding:?}"));
        let m = snap
            .export(
                &out,
                options(
                    encoding,
                    Selection::Seqs {
                        from: Some(101),
                        to: Some(900),
                    },
                ),
            )
            .unwrap();
        assert_eq!((m.first_seq, m.last_seq, m.count), (101, 900, 800));
        assert_eq!(m.anchor, snap.get(100).unwrap().unwrap().chain);
        assert_eq!(m.head, snap.get(900).unwrap().unwrap().chain);
        assert_eq!(m.log_id, snap.log_id());
        let report = verify_export(&out, VerifyExportOptions::default()).unwrap();
        assert!(report.is_ok(), "{encoding:?}: {:?}", report.failure);
        assert_eq!(report.events, 800);
        assert_eq!(report.head, m.head);
        // Only the export, nothing left behind.
        let names: Vec<_> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2);
    }
    // The JSONL lines are the records, readable as JSON.
    let text = std::fs::read_to_string(dir.path().join("Jsonl/events.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 800);
    let r = snap.get(101).unwrap().unwrap();
    assert_eq!(lines[0]["seq"], 101);
    assert_eq!(lines[0]["kind"], r.kind.as_str());
    assert_eq!(lines[0]["chain"], r.chain.to_hex());
    // Seq 101 is event 100: no details; then the spaced details, then the multi-line ones.
    assert!(lines[0].get("details").is_none() && lines[0].get("details_raw").is_none());
    assert_eq!(lines[1]["details"]["spaced"][1], 2);
    assert_eq!(lines[2]["details_raw"], "{\"multi\":\n  \"line\"}");
    assert!(lines[3]["details"].is_null() && lines[3].get("details").is_some());
    ring.close().unwrap();
}

#[test]
fn selections() {
    let dir = tempfile::tempdir().unwrap();
    let ring = log(&dir.path().join("log"), 300);
    let snap = ring.snapshot();
    assert_eq!(snap.select(&Selection::All).unwrap(), (1, 300));
    assert_eq!(snap.select(&Selection::Last(10)).unwrap(), (291, 300));
    assert_eq!(snap.select(&Selection::Last(1000)).unwrap(), (1, 300));
    assert_eq!(
        snap.select(&Selection::Seqs {
            from: Some(5),
            to: None
        })
        .unwrap(),
        (5, 300)
    );
    // Timestamps are 1_000_000 + 10 * i for seq i + 1.
    let t = |seq: i64| 1_000_000 + (seq - 1) * 10;
    let time = Selection::Time {
        since: Some(t(20)),
        until: Some(t(30)),
    };
    assert_eq!(snap.select(&time).unwrap(), (20, 29));
    for bad in [
        Selection::Last(0),
        Selection::Seqs {
            from: Some(10),
            to: Some(9),
        },
        Selection::Time {
            since: Some(0),
            until: Some(10),
        },
    ] {
        assert!(
            matches!(
                snap.select(&bad),
                Err(Error::Export(ExportError::EmptyRange { .. }))
            ),
            "{bad:?}"
        );
    }
    assert!(matches!(
        snap.select(&Selection::Seqs {
            from: Some(0),
            to: Some(5)
        }),
        Err(Error::Export(ExportError::OutsideLog {
            first: 1,
            last: 300,
            ..
        }))
    ));
    assert!(matches!(
        snap.select(&Selection::Seqs {
            from: Some(250),
            to: Some(301)
        }),
        Err(Error::Export(ExportError::OutsideLog { .. }))
    ));
    ring.close().unwrap();
}

#[test]
fn consecutive_exports_link_up() {
    let dir = tempfile::tempdir().unwrap();
    let ring = log(&dir.path().join("log"), 500);
    let snap = ring.snapshot();
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    let ma = snap
        .export(
            &a,
            options(
                Encoding::Bundle,
                Selection::Seqs {
                    from: None,
                    to: Some(200),
                },
            ),
        )
        .unwrap();
    let mb = snap
        .export(
            &b,
            options(
                Encoding::Jsonl,
                Selection::Seqs {
                    from: Some(201),
                    to: None,
                },
            ),
        )
        .unwrap();
    assert_eq!(mb.anchor, ma.head);
    let after = |m: &auditring::Manifest| VerifyExportOptions::new().after(m.clone());
    assert!(verify_export(&b, after(&ma)).unwrap().is_ok());
    // Out of order, or not adjacent: refused with the reason.
    let f = verify_export(&a, after(&mb)).unwrap().failure.unwrap();
    assert!(matches!(f.reason, Reason::After(_)), "{f}");
    // Pinned to a head obtained out of band.
    let pinned = |head| VerifyExportOptions::new().expect_head(head);
    assert!(verify_export(&b, pinned(snap.head())).unwrap().is_ok());
    let f = verify_export(&b, pinned(ma.head)).unwrap().failure.unwrap();
    assert!(matches!(f.reason, Reason::Head { .. }), "{f}");
    ring.close().unwrap();
}

#[test]
fn tampering_is_found_and_located() {
    let dir = tempfile::tempdir().unwrap();
    let ring = log(&dir.path().join("log"), 400);
    let snap = ring.snapshot();
    for encoding in [Encoding::Jsonl, Encoding::Bundle] {
        let out = dir.path().join(format!("{encoding:?}"));
        snap.export(&out, options(encoding, Selection::All))
            .unwrap();
        let data = out.join(encoding.file_name());
        let original = std::fs::read(&data).unwrap();
        // Change a byte inside the details of seq 100.
        let needle = b"\"i\":99,";
        let at = original
            .windows(needle.len())
            .position(|w| w == needle)
            .unwrap();
        let mut bytes = original.clone();
        bytes[at + 5] = b'8';
        std::fs::write(&data, &bytes).unwrap();
        let f = verify_export(&out, VerifyExportOptions::default())
            .unwrap()
            .failure
            .unwrap();
        assert_eq!(f.seq, Some(100), "{encoding:?}: {f}");
        assert_eq!(f.file, data);
        assert!(f.offset <= at as u64, "{f}");
        assert!(matches!(f.reason, Reason::Leaf { .. }), "{f}");
        // A change no record hash covers (the file's last byte, after the last record's
        // content) is caught by the file digest.
        let mut bytes = original.clone();
        bytes.push(b'\n');
        std::fs::write(&data, &bytes).unwrap();
        let f = verify_export(&out, VerifyExportOptions::default())
            .unwrap()
            .failure
            .unwrap();
        assert!(
            matches!(
                f.reason,
                Reason::FileLength { .. }
                    | Reason::FileDigest { .. }
                    | Reason::Line(_)
                    | Reason::RecordMagic
            ),
            "{encoding:?}: {f}"
        );
        // A cut at a record boundary: the count and the head say so.
        let half = &original[..original.len() / 2];
        let cut = match encoding {
            Encoding::Jsonl => half.len() - half.iter().rev().position(|&b| b == b'\n').unwrap(),
            Encoding::Bundle => {
                let m = auditring::Manifest::read(&out).unwrap();
                let _ = m;
                half.len()
            }
        };
        std::fs::write(&data, &original[..cut]).unwrap();
        assert!(
            verify_export(&out, VerifyExportOptions::default())
                .unwrap()
                .failure
                .is_some()
        );
        std::fs::write(&data, &original).unwrap();
        assert!(
            verify_export(&out, VerifyExportOptions::default())
                .unwrap()
                .is_ok()
        );
    }
    ring.close().unwrap();
}

#[test]
fn bad_exports_and_bad_requests_get_their_own_errors() {
    let dir = tempfile::tempdir().unwrap();
    let ring = log(&dir.path().join("log"), 100);
    let snap = ring.snapshot();
    let out = dir.path().join("out");
    snap.export(&out, options(Encoding::Jsonl, Selection::All))
        .unwrap();
    // An existing output is not replaced without force; with force it is, atomically.
    let err = snap
        .export(&out, options(Encoding::Bundle, Selection::Last(5)))
        .unwrap_err();
    assert!(
        matches!(err, Error::Export(ExportError::OutputExists { .. })),
        "{err}"
    );
    assert_eq!(auditring::Manifest::read(&out).unwrap().count, 100);
    let forced = || options(Encoding::Bundle, Selection::Last(5)).force(true);
    snap.export(&out, forced()).unwrap();
    let m = auditring::Manifest::read(&out).unwrap();
    assert_eq!((m.count, m.encoding), (5, Encoding::Bundle));
    assert!(
        verify_export(&out, VerifyExportOptions::default())
            .unwrap()
            .is_ok()
    );
    // Empty and outside ranges write nothing.
    let nothing = dir.path().join("nothing");
    assert!(
        snap.export(&nothing, options(Encoding::Jsonl, Selection::Last(0)))
            .is_err()
    );
    assert!(
        snap.export(
            &nothing,
            options(
                Encoding::Jsonl,
                Selection::Seqs {
                    from: Some(50),
                    to: Some(500)
                }
            )
        )
        .is_err()
    );
    assert!(!nothing.exists());
    // A start past the log's end is outside it, not merely empty.
    assert!(matches!(
        snap.select(&Selection::Seqs {
            from: Some(101),
            to: None
        }),
        Err(Error::Export(ExportError::OutsideLog { .. }))
    ));
    // Force replaces an earlier export, nothing else: not a file, not another directory, not
    // the log itself.
    let file = dir.path().join("file");
    std::fs::write(&file, "keep").unwrap();
    let log_dir = dir.path().join("log");
    for target in [&file, &log_dir, &dir.path().to_path_buf()] {
        let err = snap.export(target, forced()).unwrap_err();
        assert!(
            matches!(err, Error::Export(ExportError::NotReplaceable { .. })),
            "{err}"
        );
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep");
    assert!(
        auditring::verify(&log_dir, auditring::VerifyOptions::default())
            .unwrap()
            .is_ok()
    );
    // A directory without a manifest is not an export; a damaged manifest is a failure.
    let err = verify_export(dir.path(), VerifyExportOptions::default()).unwrap_err();
    assert!(matches!(
        err,
        Error::Export(ExportError::NotAnExport {
            reason: ManifestError::Missing,
            ..
        })
    ));
    let manifest = out.join("manifest.json");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, text.replace("\"count\": 5", "\"count\": 6")).unwrap();
    let f = verify_export(&out, VerifyExportOptions::default())
        .unwrap()
        .failure
        .unwrap();
    assert!(matches!(f.reason, Reason::Manifest(_)), "{f}");
    assert_eq!(f.file, manifest);
    std::fs::write(&manifest, "{ not json").unwrap();
    let f = verify_export(&out, VerifyExportOptions::default())
        .unwrap()
        .failure
        .unwrap();
    assert!(matches!(f.reason, Reason::Manifest(_)), "{f}");
    // A digest that does not match.
    std::fs::write(&manifest, &text).unwrap();
    let m: serde_json::Value = serde_json::from_str(&text).unwrap();
    let wrong = text.replace(m["files"][0]["sha256"].as_str().unwrap(), &"0".repeat(64));
    std::fs::write(&manifest, wrong).unwrap();
    let f = verify_export(&out, VerifyExportOptions::default())
        .unwrap()
        .failure
        .unwrap();
    assert!(matches!(f.reason, Reason::FileDigest { .. }), "{f}");
    // No temporary directory was left anywhere.
    for e in std::fs::read_dir(dir.path()).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.contains(".tmp-"), "{name}");
    }
    ring.close().unwrap();
}

#[test]
fn an_export_of_a_live_log_does_not_stop_the_producers() {
    let dir = tempfile::tempdir().unwrap();
    let ring = log(&dir.path().join("log"), 20_000);
    let stop = Arc::new(AtomicBool::new(false));
    let start = Arc::new(Barrier::new(2));
    let writer = {
        let producer = ring.producer();
        let (stop, start) = (stop.clone(), start.clone());
        std::thread::spawn(move || {
            start.wait();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                producer.push(event(n)).unwrap();
                n += 1;
            }
            n
        })
    };
    start.wait();
    let snap = ring.snapshot();
    let out = dir.path().join("live");
    let m = snap
        .export(&out, options(Encoding::Bundle, Selection::All))
        .unwrap();
    stop.store(true, Ordering::Relaxed);
    let pushed_meanwhile = writer.join().unwrap();
    assert_eq!(m.head, snap.head());
    assert!(
        verify_export(&out, VerifyExportOptions::default())
            .unwrap()
            .is_ok()
    );
    ring.flush().unwrap();
    assert_eq!(ring.snapshot().head_seq(), 20_000 + pushed_meanwhile);
    ring.close().unwrap();
}

/// The segment files of a closed log of 1,200 events in 64 KiB segments, in memory.
fn mem_log() -> std::collections::BTreeMap<String, Vec<u8>> {
    use auditring::storage::{MemStorage, Storage};
    let mem = MemStorage::new("export-check");
    let ring = Ring::with_storage(mem.clone())
        .segment_size(64 * 1024)
        .open()
        .unwrap();
    for i in 0..1_200u64 {
        ring.push(
            Event::new("k")
                .with_timestamp_nanos(i as i64)
                .with_details_json(format!("{{\"marker\":\"{i:06}\"}}"))
                .unwrap(),
        )
        .unwrap();
    }
    ring.close().unwrap();
    let files: std::collections::BTreeMap<_, _> = mem
        .list()
        .unwrap()
        .into_iter()
        .filter(|n| {
            std::path::Path::new(n)
                .extension()
                .is_some_and(|e| e == "seg")
        })
        .map(|n| {
            let b = mem.read_file(&n).unwrap();
            (n, b)
        })
        .collect();
    assert!(files.len() >= 2);
    files
}

fn mem_snapshot(files: &std::collections::BTreeMap<String, Vec<u8>>) -> auditring::Snapshot {
    let mem = auditring::storage::MemStorage::new("export-check");
    for (n, b) in files {
        mem.write_file(n, b.clone());
    }
    auditring::Reader::with_storage(mem).snapshot().unwrap()
}

/// Replaces `from` (which must occur once in the first, sealed, segment) by `to`, of the same
/// length.
fn replace_in(files: &mut std::collections::BTreeMap<String, Vec<u8>>, from: &[u8], to: &[u8]) {
    assert_eq!(from.len(), to.len());
    let b = files.values_mut().next().unwrap();
    let at = b.windows(from.len()).position(|w| w == from).unwrap();
    assert!(!b[at + 1..].windows(from.len()).any(|w| w == from));
    b[at..at + from.len()].copy_from_slice(to);
}

/// Nothing at `out`, and nothing left beside it.
#[track_caller]
fn nothing_written(root: &Path, out: &Path) {
    assert!(!out.exists(), "{} was written", out.display());
    let left: Vec<_> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// An export either verifies or is not written: the JSONL encoding checks every record as the
/// bundle does (both hashes, the body, the seq), and refuses a record it cannot write as a line
/// that reads back as that record, here details that are valid UTF-8 (all that the envelope
/// requires, §6) but not JSON, in a log rewritten consistently, which verifies.
#[test]
fn an_export_either_verifies_or_is_not_written() {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("out");
    let jsonl = || options(Encoding::Jsonl, Selection::All);
    let bundle = || options(Encoding::Bundle, Selection::All);

    // A damaged record in a sealed segment (which opening the log does not read): one byte of
    // its details changed, the hashes left alone.
    let mut damaged = mem_log();
    replace_in(&mut damaged, b"000017", b"000071");
    let snap = mem_snapshot(&damaged);
    for o in [jsonl, bundle] {
        match snap.export(&out, o()) {
            Err(Error::Integrity(e)) => {
                assert_eq!(e.seq, Some(18), "{e}");
                assert!(matches!(e.reason, Reason::Leaf { .. }), "{e}");
            }
            other => panic!("{:?}: a damaged log exported: {other:?}", o().encoding),
        }
        nothing_written(root.path(), &out);
    }

    // Details that are not JSON, in a log whose hashes all agree.
    let mut rewritten = mem_log();
    replace_in(
        &mut rewritten,
        b"{\"marker\":\"000017\"}",
        b"not json at all!!!!",
    );
    rechain::rechain(&mut rewritten);
    let snap = mem_snapshot(&rewritten);
    let mem = auditring::storage::MemStorage::new("export-check");
    for (n, b) in &rewritten {
        mem.write_file(n, b.clone());
    }
    let report = auditring::verify_storage(&mem, auditring::VerifyOptions::default()).unwrap();
    assert!(report.is_ok(), "{:?}", report.failure);
    match snap.export(&out, jsonl()) {
        Err(Error::Export(e @ ExportError::Unrepresentable { seq: 18, .. })) => {
            let text = e.to_string();
            assert!(text.contains("not JSON"), "{text}");
            assert!(text.contains("the bundle encoding"), "{text}");
        }
        other => panic!("details that are not JSON exported as JSONL: {other:?}"),
    }
    nothing_written(root.path(), &out);
    // A bundle holds them, and verifies.
    snap.export(&out, bundle()).unwrap();
    let r = verify_export(&out, VerifyExportOptions::default()).unwrap();
    assert!(r.is_ok(), "{:?}", r.failure);
    assert_eq!(r.events, 1_200);
}
