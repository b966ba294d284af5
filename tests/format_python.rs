//! Proves `docs/FORMAT.md` complete: `tools/verify_log.py`, an independent verifier written from
//! the document alone, must agree with the crate's own [`auditring::verify`] on valid logs, on a
//! log copied while its writer is open, on pruned logs (§9 "Pruned logs", §14), on a directory
//! holding the export marker (§1), on damaged copies, on the stored Merkle tree, on signed and
//! cosigned checkpoints (§15) and on sealed logs (§16).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use auditring::{
    Checkpoints, Durability, Error, Event, ExportOptions, PRUNED_KIND, Reader, Reason, Retention,
    Ring, SEALED_KIND, SealKey, SignedCheckpoint, SigningKey, Unexported, VerifierKey,
    VerifyOptions, cosign, verify,
};
use auditring_testkit::python::{Report, python, run_tool, tool};
use auditring_testkit::rechain::{
    Thief, find, hex, log_id_of, rechain, rechain_resealing, rechain_with, rewrite_with_stolen_key,
    seal_epoch_key, seal_fields, seal_mac, segment_files, write_back,
};
use auditring_testkit::sealing::{push_numbered, sealing_ring, write_pruned_sealed, write_sealed};
use auditring_testkit::slots::{self, copy_dir};
use serde_json::Value;

const SEGMENT_SIZE: u64 = 64 * 1024;
const FIRST_SEGMENT: &str = "0000000000000001.seg";
/// A string that appears once in the whole log: in the details of one event in the middle of the
/// first segment.
const MARKER: &str = "tamper-marker-7f3a9c1e";

fn run_py(dir: &Path, extra: &[&str]) -> Report {
    run_tool("verify_log.py", dir, extra)
}

fn segment_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| {
            std::path::Path::new(n)
                .extension()
                .is_some_and(|e| e == "seg")
                && !n.starts_with('.')
        })
        .collect();
    names.sort();
    names
}

/// Copies the files of a log whose writer is still open: a file that goes between the listing
/// and the copy (a segment prepared ahead of time, renamed from its temporary name) is skipped.
fn copy_dir_live(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            match std::fs::copy(entry.path(), to.join(entry.file_name())) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => panic!("copying {}: {e}", entry.path().display()),
            }
        }
    }
}

/// Runs the Python verifier on `dir`, which prints no report on a usage error (exit 2).
fn run_py_any(dir: &Path, extra: &[&str]) -> Report {
    let out = std::process::Command::new(python())
        .arg(tool("verify_log.py"))
        .arg(dir)
        .args(extra)
        .output()
        .unwrap_or_else(|e| panic!("running python3 tools/verify_log.py: {e}"));
    Report::read("verify_log.py", &out, false)
}

/// The checkpoints of a report as `auditring verify --json` prints them, and the Python
/// verifier too.
fn checkpoints_json(report: &auditring::VerifyReport) -> Value {
    report
        .checkpoints
        .iter()
        .map(|c| {
            serde_json::json!({
                "size": c.size,
                "root": c.root.to_hex(),
                "signed_by": c.signed_by,
                "consistent": c.consistent,
            })
        })
        .collect()
}

/// Asserts that the Python report agrees with the crate's on what §15 adds: the tree's root
/// (null for a pruned log or after a failure) and the checkpoints compared.
fn assert_same_tree(py: &Report, rust: &auditring::VerifyReport) {
    assert_eq!(
        py.json["tree_root"].as_str(),
        rust.tree_root.map(|h| h.to_hex()).as_deref(),
        "tree_root: {}",
        py.json
    );
    assert_eq!(
        py.json["checkpoints"],
        checkpoints_json(rust),
        "checkpoints: {}",
        py.json
    );
}

/// Asserts that the Python report agrees with the crate's on what §16 adds: the seals checked,
/// with a sealing key (null without one), as `SealReport` serializes them.
fn assert_same_seals(py: &Report, rust: &auditring::VerifyReport) {
    assert_eq!(
        py.json["seals"],
        serde_json::to_value(&rust.seals).unwrap(),
        "seals: {}",
        py.json
    );
}

/// Asserts that both verifiers reject `dir` at the same `(seq, file, offset)`; returns the
/// crate's failure and the Python report.
fn assert_agree_fail(dir: &Path) -> (auditring::IntegrityError, Report) {
    assert_agree_fail_with(dir, VerifyOptions::default(), &[])
}

/// [`assert_agree_fail`], the crate given `options` and the Python verifier `extra` arguments
/// (the same checkpoints and keys).
fn assert_agree_fail_with(
    dir: &Path,
    options: VerifyOptions<'_>,
    extra: &[&str],
) -> (auditring::IntegrityError, Report) {
    let rust = verify(dir, options).unwrap();
    let failure = rust
        .failure
        .clone()
        .unwrap_or_else(|| panic!("the crate accepts {}", dir.display()));
    let py = run_py(dir, extra);
    assert_eq!(
        py.code,
        1,
        "verify_log.py should fail on {} ({failure}): {}\n{}",
        dir.display(),
        py.json,
        py.stderr
    );
    assert_eq!(py.json["ok"], Value::Bool(false), "{}", py.json);
    let err = &py.json["error"];
    assert_eq!(err["seq"].as_u64(), failure.seq, "seq: {err} / {failure}");
    assert_eq!(
        err["file"].as_str().map(Path::new),
        Some(failure.file.as_path()),
        "file: {err} / {failure}"
    );
    assert_eq!(
        err["offset"].as_u64(),
        Some(failure.offset),
        "offset: {err} / {failure}"
    );
    assert_same_tree(&py, &rust);
    assert_same_seals(&py, &rust);
    (failure, py)
}

/// Asserts that the Python verifier accepts `dir` and agrees with the crate on it.
fn assert_agree_ok(dir: &Path) -> auditring::VerifyReport {
    assert_agree_ok_with(dir, VerifyOptions::default(), &[])
}

/// [`assert_agree_ok`], the crate given `options` and the Python verifier `extra` arguments.
fn assert_agree_ok_with(
    dir: &Path,
    options: VerifyOptions<'_>,
    extra: &[&str],
) -> auditring::VerifyReport {
    let rust = verify(dir, options).unwrap();
    assert!(rust.is_ok(), "crate verify failed: {:?}", rust.failure);
    let py = run_py(dir, extra);
    assert_eq!(
        py.code, 0,
        "verify_log.py exit {}: {}\n{}",
        py.code, py.json, py.stderr
    );
    assert_eq!(py.json["ok"], Value::Bool(true), "{}", py.json);
    assert_eq!(py.json["error"], Value::Null);
    assert_eq!(py.json["events"].as_u64(), Some(rust.events), "{}", py.json);
    assert_eq!(py.json["first_seq"].as_u64(), Some(rust.first_seq));
    assert_eq!(py.json["last_seq"].as_u64(), Some(rust.last_seq));
    assert_eq!(
        py.json["head_hash"].as_str(),
        Some(rust.head.to_hex().as_str())
    );
    assert_eq!(py.json["segments"].as_u64(), Some(rust.segments));
    assert_eq!(
        py.json["foreign_files"],
        serde_json::json!(rust.foreign_files),
        "{}",
        py.json
    );
    assert_same_tree(&py, &rust);
    assert_same_seals(&py, &rust);
    rust
}

/// Events of every shape: with and without actor, trace id and details, empty strings, unicode,
/// negative and explicit timestamps.
fn event(i: u64) -> Event {
    let mut e = Event::new(match i % 4 {
        0 => "user.login",
        1 => "plan.applied",
        2 => "file.read",
        _ => "ключ.изменён",
    });
    if !i.is_multiple_of(3) {
        e = e.with_actor(format!("user-{i}@example.com"));
    }
    if i.is_multiple_of(5) {
        e = e.with_trace_id(format!("{i:032x}"));
    }
    if i.is_multiple_of(7) {
        e = e.with_actor("");
    }
    if i.is_multiple_of(2) {
        e = e
            .with_details(
                &serde_json::json!({ "i": i, "tags": ["a", "b"], "ok": i.is_multiple_of(4) }),
            )
            .unwrap();
    }
    if i.is_multiple_of(11) {
        e = e.with_details_json("{ \"spaced\" : [1, 2 ,3] }").unwrap();
    }
    if i.is_multiple_of(13) {
        e = e.with_timestamp_nanos(-1_000_000_000 * i as i64);
    } else if !i.is_multiple_of(2) {
        e = e.with_timestamp_nanos(1_700_000_000_000_000_000 + i as i64);
    }
    e
}

/// Builds a multi-segment log over three sessions (reopened twice, under three durability
/// policies). Returns the seq of the marked event and the last receipt's seq and chain hash.
fn build_log(dir: &Path) -> (u64, u64, String) {
    // Session 1: default durability; the marked event lands in the middle of segment 1.
    let ring = Ring::builder(dir)
        .segment_size(SEGMENT_SIZE)
        .open()
        .unwrap();
    assert!(ring.recovery().created);
    let mut marked = 0;
    for i in 0..300u64 {
        if i == 120 {
            let r = ring
                .push_receipt(
                    Event::new("marked")
                        .with_actor("mallory")
                        .with_details(&serde_json::json!({ "note": MARKER }))
                        .unwrap(),
                )
                .unwrap();
            marked = r.seq;
        }
        ring.push(event(i)).unwrap();
    }
    ring.close().unwrap();

    // Session 2: group commit, some large details.
    let ring = Ring::builder(dir)
        .segment_size(SEGMENT_SIZE)
        .durability(Durability::Batch)
        .open()
        .unwrap();
    assert!(ring.recovery().clean, "{:?}", ring.recovery());
    for i in 300..700u64 {
        ring.push(event(i)).unwrap();
        if i % 100 == 50 {
            let blob = "x".repeat(20_000 + i as usize * 40);
            ring.push(
                Event::new("blob.stored")
                    .with_actor("archiver")
                    .with_trace_id("t-blob")
                    .with_details(&serde_json::json!({ "blob": blob }))
                    .unwrap(),
            )
            .unwrap();
        }
    }
    ring.close().unwrap();

    // Session 3: periodic syncs; the largest event the segment size allows, nearly.
    let ring = Ring::builder(dir)
        .segment_size(SEGMENT_SIZE)
        .durability(Durability::Periodic(std::time::Duration::from_millis(5)))
        .open()
        .unwrap();
    ring.push(
        Event::new("blob.huge")
            .with_details(&serde_json::json!({ "blob": "y".repeat(57_000) }))
            .unwrap(),
    )
    .unwrap();
    for i in 700..900u64 {
        ring.push(event(i)).unwrap();
    }
    let last = ring.push_receipt(Event::new("session.end")).unwrap();
    ring.close().unwrap();
    (marked, last.seq, last.chain.to_hex())
}

#[test]
fn python_verifier_agrees_with_the_crate() {
    python();
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("log");
    let (marked, last_seq, last_chain) = build_log(&log);
    let segments = segment_names(&log);
    assert!(
        segments.len() >= 4,
        "expected several segments: {segments:?}"
    );

    // A valid log: both verifiers agree on events and head.
    let rust = assert_agree_ok(&log);
    assert_eq!(rust.last_seq, last_seq);
    assert_eq!(rust.head.to_hex(), last_chain);
    assert_eq!(rust.events, last_seq);

    // A receipt obtained out of band checks out.
    let receipt = format!("{last_seq}:{last_chain}");
    let py = run_py(&log, &["--receipt", &receipt]);
    assert_eq!(py.code, 0, "{}", py.json);

    // Tampering: one byte of one body, in the middle of the first segment.
    let tampered = tmp.path().join("tampered");
    copy_dir(&log, &tampered);
    let seg1 = tampered.join(FIRST_SEGMENT);
    let mut bytes = std::fs::read(&seg1).unwrap();
    let at = find_unique(&bytes, MARKER.as_bytes(), &log);
    assert!(
        at > 8192 && at < bytes.len() / 2 + 16 * 1024,
        "the marker should be in the middle of segment 1, found at {at}"
    );
    bytes[at + 3] ^= 0x01;
    std::fs::write(&seg1, &bytes).unwrap();

    let py = run_py(&tampered, &[]);
    assert_eq!(py.code, 1, "{}\n{}", py.json, py.stderr);
    assert_eq!(py.json["ok"], Value::Bool(false));
    let err = &py.json["error"];
    assert_eq!(err["seq"].as_u64(), Some(marked), "{err}");
    assert_eq!(file_name(err["file"].as_str().unwrap()), FIRST_SEGMENT);
    assert!(err["reason"].as_str().unwrap().contains("leaf"), "{err}");
    let rust = verify(&tampered, auditring::VerifyOptions::default()).unwrap();
    let failure = rust.failure.expect("the crate must find the tampering");
    assert_eq!(failure.seq, Some(marked));
    assert_eq!(
        failure.file.file_name().unwrap().to_string_lossy(),
        FIRST_SEGMENT
    );
    assert_eq!(err["offset"].as_u64(), Some(failure.offset));

    // Truncation below the committed length of a sealed segment.
    let cut = tmp.path().join("cut");
    copy_dir(&log, &cut);
    let seg1 = std::fs::OpenOptions::new()
        .write(true)
        .open(cut.join(FIRST_SEGMENT))
        .unwrap();
    seg1.set_len(12_288).unwrap();
    drop(seg1);
    let py = run_py(&cut, &[]);
    assert_eq!(py.code, 1, "{}\n{}", py.json, py.stderr);
    assert_eq!(py.json["ok"], Value::Bool(false));
    let err = &py.json["error"];
    assert_eq!(file_name(err["file"].as_str().unwrap()), FIRST_SEGMENT);
    assert!(
        err["reason"].as_str().unwrap().contains("cut short"),
        "{err}"
    );
    let rust = verify(&cut, auditring::VerifyOptions::default()).unwrap();
    let failure = rust.failure.expect("the crate must find the cut");
    assert_eq!(
        failure.file.file_name().unwrap().to_string_lossy(),
        FIRST_SEGMENT
    );
    assert_eq!(err["offset"].as_u64(), Some(failure.offset));

    // Truncation of the header itself: a failure too, never a crash.
    let short = tmp.path().join("short");
    copy_dir(&log, &short);
    let last_name = segments.last().unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(short.join(last_name))
        .unwrap()
        .set_len(100)
        .unwrap();
    let py = run_py(&short, &[]);
    assert_eq!(py.code, 1, "{}\n{}", py.json, py.stderr);
    let rust = verify(&short, auditring::VerifyOptions::default()).unwrap();
    assert!(rust.failure.is_some());

    // A cut at a segment boundary leaves a valid, shorter log; only the receipt shows it.
    let shorter = tmp.path().join("shorter");
    copy_dir(&log, &shorter);
    std::fs::remove_file(shorter.join(last_name)).unwrap();
    let rust = assert_agree_ok(&shorter);
    assert!(rust.last_seq < last_seq);
    let py = run_py(&shorter, &["--receipt", &receipt]);
    assert_eq!(py.code, 1, "{}", py.json);
    assert_eq!(py.json["error"]["seq"].as_u64(), Some(last_seq));
}

/// A copy taken while the writer is open (after a flush, under group commit): the newest records
/// lie past the committed length of the active segment, found by following the chain.
#[test]
fn python_verifier_follows_uncommitted_records() {
    python();
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("log");
    let ring = Ring::builder(&log)
        .segment_size(SEGMENT_SIZE)
        .durability(Durability::Batch)
        .open()
        .unwrap();
    let mut pushed = 0u64;
    let mut batch = |n: u64| {
        for _ in 0..n {
            ring.push(event(pushed)).unwrap();
            pushed += 1;
        }
        ring.flush().unwrap();
    };
    while ring.snapshot().segment_count() < 3 {
        batch(20);
    }
    // A few more syncs into the third segment, which stays less than half full (so no segment
    // is being prepared after it): each sync commits the one before, the last one is committed
    // by none.
    for _ in 0..3 {
        batch(20);
    }
    let head = ring.snapshot().head();
    let live = tmp.path().join("live");
    copy_dir(&log, &live);
    std::fs::write(live.join("notes.txt"), b"not part of the log").unwrap();
    assert_eq!(segment_names(&live).len(), 3);
    let rust = assert_agree_ok(&live);
    assert_eq!(rust.head, head);
    assert_eq!(rust.events, pushed);
    let py = run_py(&live, &[]);
    assert_eq!(py.json["foreign_files"], serde_json::json!(["notes.txt"]));
    assert_eq!(py.json["torn_tail"], Value::Null);
    assert!(
        py.json["uncommitted"].as_u64().unwrap() > 0,
        "the last sync's records should lie past the committed length: {}",
        py.json
    );

    ring.close().unwrap();
    assert_agree_ok(&log);
}

/// The worked example of FORMAT.md section 7.1, computed by the crate.
#[test]
fn worked_example_matches_the_document() {
    python();
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("log");
    let ring = Ring::builder(&log)
        .segment_size(SEGMENT_SIZE)
        .open()
        .unwrap();
    let r = ring
        .push_receipt(
            Event::new("user.login")
                .with_actor("alice")
                .with_timestamp_nanos(1_700_000_000_000_000_000),
        )
        .unwrap();
    ring.close().unwrap();
    let chain = "a665120ad9ebdb1450a0c10dd162c87d12bd0a9a8df7163749c53aaeedfb8d8f";
    let leaf = "3af98cd0a0818a1edb7fb98f0f805a86f086087a9963aea6596f1deb03b4fbed";
    let body = "01010a000500000000002a36fe9c971700000000757365722e6c6f67696e616c696365";
    assert_eq!(r.seq, 1);
    assert_eq!(r.chain.to_hex(), chain);
    let seg = std::fs::read(log.join(FIRST_SEGMENT)).unwrap();
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    assert_eq!(&seg[8192..8196], b"AREC");
    assert_eq!(hex(&seg[8192 + 16..8192 + 48]), leaf);
    assert_eq!(hex(&seg[8192 + 48..8192 + 80]), chain);
    assert_eq!(hex(&seg[8192 + 80..8192 + 115]), body);
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/FORMAT.md"))
        .unwrap();
    for value in [chain, leaf, body] {
        assert!(doc.contains(value), "FORMAT.md lacks {value}");
    }
    let rust = assert_agree_ok(&log);
    assert_eq!(rust.head.to_hex(), chain);
}

/// An event of about 200 bytes.
fn sized_event(i: u64) -> Event {
    Event::new("plan.applied")
        .with_actor(format!("user-{}", i % 13))
        .with_trace_id(format!("{i:032x}"))
        .with_details(&serde_json::json!({ "i": i, "plan": "x".repeat(100) }))
        .unwrap()
}

/// Keeps at most two sealed segments, removing what no export covers.
fn keep_two() -> Retention {
    Retention::new()
        .max_segments(2)
        .unexported(Unexported::Remove)
}

/// The seq and the offset of the current commit slot of a segment file (FORMAT.md §3.2), read
/// independently of both verifiers: the Valid slot with the highest generation.
fn current_slot(path: &Path) -> Option<(u64, u64)> {
    let bytes = std::fs::read(path).unwrap();
    let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
    [512usize, 1024]
        .into_iter()
        .filter(|&at| bytes[at..at + 136].iter().any(|&b| b != 0))
        .map(|at| (u64_at(at), u64_at(at + 8), at as u64))
        .max()
        .map(|(_generation, first_seq, at)| (first_seq, at))
}

/// Asserts that both verifiers reject `dir` because its start is not justified by a prune
/// record, at the log's first seq, its first segment and that segment's current commit slot.
fn assert_unpruned(dir: &Path) {
    let (failure, py) = assert_agree_fail(dir);
    assert!(
        matches!(failure.reason, Reason::Unpruned { .. }),
        "{failure}"
    );
    let reason = py.json["error"]["reason"].as_str().unwrap();
    assert!(reason.contains("unpruned"), "{}", py.json);
    let first = dir.join(&segment_names(dir)[0]);
    assert_eq!(failure.file, first);
    let (first_seq, slot) = current_slot(&first).expect("the first segment has a commit slot");
    assert!(first_seq > 1);
    assert_eq!(failure.seq, Some(first_seq));
    assert_eq!(failure.offset, slot);
}

/// A log pruned by retention verifies in both (the prune record justifies its start); with its
/// first segment removed by hand it fails in both, at the same place.
#[test]
fn python_verifier_agrees_on_pruned_logs() {
    python();
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("log");
    let ring = Ring::builder(&log)
        .segment_size(SEGMENT_SIZE)
        .retention(keep_two())
        .open()
        .unwrap();
    for i in 0..3000 {
        ring.push(sized_event(i)).unwrap();
    }
    ring.flush().unwrap();
    ring.apply_retention().unwrap();
    let first_seq = ring.snapshot().first_seq();
    ring.close().unwrap();
    assert_ne!(segment_names(&log)[0], FIRST_SEGMENT, "nothing was pruned");
    let rust = assert_agree_ok(&log);
    assert!(rust.first_seq > 1);
    assert_eq!(rust.first_seq, first_seq);
    assert!(
        rust.last_seq > 3000,
        "prune records are records of the chain"
    );

    // The oldest segment left, removed by hand: no prune record says where the log now starts.
    let cut = tmp.path().join("cut");
    copy_dir(&log, &cut);
    std::fs::remove_file(cut.join(&segment_names(&cut)[0])).unwrap();
    assert_unpruned(&cut);
}

/// A closed log of 2,000 sized events on small segments (four or more).
fn closed_log_of_2000(log: &Path) {
    let ring = Ring::builder(log)
        .segment_size(SEGMENT_SIZE)
        .open()
        .unwrap();
    for i in 0..2000 {
        ring.push(sized_event(i)).unwrap();
    }
    ring.close().unwrap();
}

/// §9 step 3, past a tear: after an unsealed segment, a segment activated past records a crash
/// lost (nothing committed) is noted, not a failure, in both; committed records after it fail in
/// both, at the same place.
#[test]
fn python_verifier_agrees_on_a_segment_past_a_tear() {
    python();
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("log");
    closed_log_of_2000(&log);
    let segments = segment_names(&log).len() as u64;
    assert!(segments >= 4);
    for n in 1..=segments {
        slots::edit_slot(&log, n, slots::unseal);
    }
    let data = slots::data_offset(&log, 2);
    slots::edit_slot(&log, 2, slots::activated_past_lost_records(data));
    let (failure, _) = assert_agree_fail(&log);
    assert_eq!(
        failure.reason,
        Reason::Continuity("committed records follow a break in the chain")
    );
    slots::remove_from(&log, 3);
    let rust = assert_agree_ok(&log);
    let py = run_py(&log, &[]);
    let notes: Vec<&str> = py.json["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert_eq!(notes, rust.notes, "notes");
    assert!(notes.iter().any(|n| n.contains("past a tear")), "{notes:?}");
    assert_eq!(
        py.json["torn_tail"]["file"].as_str().map(Path::new),
        rust.torn_tail.as_ref().map(|t| t.file.as_path())
    );
    assert_eq!(
        py.json["torn_tail"]["offset"].as_u64(),
        rust.torn_tail.as_ref().map(|t| t.offset)
    );
    assert_eq!(
        py.json["torn_tail"]["len"].as_u64(),
        rust.torn_tail.as_ref().map(|t| t.len)
    );
}

/// Without retention, a log whose first segment file was deleted fails in both, at the same
/// place.
#[test]
fn python_verifier_agrees_on_a_log_cut_by_hand() {
    python();
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("log");
    closed_log_of_2000(&log);
    assert_agree_ok(&log);
    assert!(segment_names(&log).len() >= 4);
    std::fs::remove_file(log.join(FIRST_SEGMENT)).unwrap();
    assert_unpruned(&log);
}

/// §9 and §14.2: the prune record counts where it lies past the committed length (a copy taken
/// while the writer is open, before any commit names it), and a removal a crash interrupted (the
/// newest pruned file left) is justified by the prune record's range.
#[test]
fn python_verifier_agrees_on_uncommitted_prunes_and_interrupted_removals() {
    python();
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("log");
    let backup = tmp.path().join("backup");

    // Session 1, without retention: several sealed segments, all kept.
    let ring = Ring::builder(&log)
        .segment_size(SEGMENT_SIZE)
        .open()
        .unwrap();
    for i in 0..2500 {
        ring.push(sized_event(i)).unwrap();
    }
    ring.close().unwrap();
    let before = segment_names(&log);
    assert!(before.len() >= 6, "{before:?}");
    copy_dir(&log, &backup);

    // Session 2, keeping two sealed segments and syncing only when it must: one prune record
    // removes the oldest segments, and no commit slot names it yet.
    let ring = Ring::builder(&log)
        .segment_size(SEGMENT_SIZE)
        .durability(Durability::None)
        .retention(keep_two())
        .open()
        .unwrap();
    ring.apply_retention().unwrap();
    let snap = ring.snapshot();
    let prunes = snap
        .iter()
        .map(Result::unwrap)
        .filter(|r| r.kind == PRUNED_KIND)
        .count();
    assert_eq!(prunes, 1, "one pass, one prune record");
    let live = tmp.path().join("live");
    copy_dir_live(&log, &live);
    let rust = assert_agree_ok(&live);
    assert_eq!(rust.first_seq, snap.first_seq());
    assert!(rust.first_seq > 1);
    let py = run_py(&live, &[]);
    assert_eq!(
        py.json["uncommitted"].as_u64(),
        Some(1),
        "the prune record should lie past the committed length: {}",
        py.json
    );
    ring.close().unwrap();
    assert_agree_ok(&log);

    // A crash after the prune record was synced but before every file went: the newest pruned
    // file is still there (files go oldest first). The log starts one segment earlier, at a seq
    // inside the prune record's range.
    let after = segment_names(&log);
    let pruned: Vec<&String> = before.iter().filter(|n| !after.contains(n)).collect();
    assert!(pruned.len() >= 2, "{before:?} -> {after:?}");
    let newest_pruned = pruned.last().unwrap();
    let crashed = tmp.path().join("crashed");
    copy_dir(&log, &crashed);
    std::fs::copy(backup.join(newest_pruned), crashed.join(newest_pruned)).unwrap();
    let rust = assert_agree_ok(&crashed);
    assert!(rust.first_seq < snap.first_seq() && rust.first_seq > 1);

    // With an older pruned file back instead, a segment is missing: both fail alike.
    let gap = tmp.path().join("gap");
    copy_dir(&log, &gap);
    std::fs::copy(backup.join(pruned[0]), gap.join(pruned[0])).unwrap();
    let (failure, _) = assert_agree_fail(&gap);
    assert!(
        matches!(failure.reason, Reason::MissingSegment(_)),
        "{failure}"
    );
}

/// §1: the export marker (`EXPORTED`, written into the log directory by an export) and its
/// replacements in progress (`.EXPORTED.tmp-…`) are not foreign files; other files are.
#[test]
fn python_verifier_does_not_list_the_export_marker_as_foreign() {
    python();
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("log");
    let ring = Ring::builder(&log)
        .segment_size(SEGMENT_SIZE)
        .open()
        .unwrap();
    for i in 0..100 {
        ring.push(event(i)).unwrap();
    }
    ring.flush().unwrap();
    ring.snapshot()
        .export(tmp.path().join("export"), ExportOptions::default())
        .unwrap();
    ring.close().unwrap();
    assert!(log.join("EXPORTED").is_file(), "the export wrote no marker");
    let rust = assert_agree_ok(&log);
    assert!(rust.foreign_files.is_empty(), "{:?}", rust.foreign_files);
    let py = run_py(&log, &[]);
    assert_eq!(
        py.json["foreign_files"],
        serde_json::json!([]),
        "{}",
        py.json
    );

    std::fs::write(log.join(".EXPORTED.tmp-4242"), b"{}").unwrap();
    std::fs::write(log.join("notes.txt"), b"not part of the log").unwrap();
    std::fs::write(log.join("EXPORTED.bak"), b"{}").unwrap();
    let rust = assert_agree_ok(&log);
    let py = run_py(&log, &[]);
    assert_eq!(
        rust.foreign_files,
        vec!["EXPORTED.bak".to_string(), "notes.txt".to_string()]
    );
    assert_eq!(
        py.json["foreign_files"],
        serde_json::json!(rust.foreign_files),
        "{}",
        py.json
    );
}

fn find_unique(haystack: &[u8], needle: &[u8], log: &Path) -> usize {
    let hits: Vec<usize> = haystack
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(hits.len(), 1, "marker not unique in {}", log.display());
    hits[0]
}

fn file_name(path: &str) -> String {
    Path::new(path)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// Rewrites the body of the log's last record (seq `seq`, in the newest segment) to `body`, of
/// the same length, and every hash that covers it: its leaf and chain, and each commit slot
/// field that held its old chain hash (FORMAT.md §5, §7, §3.2). The log stays consistent: a
/// forgery only the chain's head, known out of band, could reveal.
fn forge_last_record(log: &Path, seq: u64, body: &[u8]) {
    use sha2::{Digest, Sha256};
    let names = segment_names(log);
    let path = log.join(names.last().unwrap());
    let mut bytes = std::fs::read(&path).unwrap();
    let u32_at = |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
    let u64_at = |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap());
    let mut at = u64_at(&bytes, 32) as usize;
    while u64_at(&bytes, at + 8) != seq {
        assert_eq!(&bytes[at..at + 4], b"AREC", "walked off the records");
        at += (80 + u32_at(&bytes, at + 4) as usize + 7) & !7;
    }
    assert_eq!(u32_at(&bytes, at + 4) as usize, body.len(), "same length");
    let prev: [u8; 32] = if at == u64_at(&bytes, 32) as usize {
        let slot = slots::current_slot(&bytes);
        bytes[slot + 40..slot + 72].try_into().unwrap()
    } else {
        let mut p = u64_at(&bytes, 32) as usize;
        loop {
            let next = p + ((80 + u32_at(&bytes, p + 4) as usize + 7) & !7);
            if next == at {
                break bytes[p + 48..p + 80].try_into().unwrap();
            }
            p = next;
        }
    };
    let old_chain: [u8; 32] = bytes[at + 48..at + 80].try_into().unwrap();
    let leaf: [u8; 32] = Sha256::digest(body).into();
    let mut h = Sha256::new();
    h.update(prev);
    h.update(seq.to_le_bytes());
    h.update(leaf);
    let chain: [u8; 32] = h.finalize().into();
    bytes[at + 80..at + 80 + body.len()].copy_from_slice(body);
    bytes[at + 16..at + 48].copy_from_slice(&leaf);
    bytes[at + 48..at + 80].copy_from_slice(&chain);
    std::fs::write(&path, &bytes).unwrap();
    // Every slot of every segment that names the old head (the newest segment's, and the
    // anchor of a segment created ahead of it).
    for name in &names {
        let path = log.join(name);
        let mut bytes = std::fs::read(&path).unwrap();
        for slot in [512, 1024] {
            let mut changed = false;
            for field in [slot + 40, slot + 72] {
                if bytes[field..field + 32] == old_chain {
                    bytes[field..field + 32].copy_from_slice(&chain);
                    changed = true;
                }
            }
            if changed {
                slots::fix_slot_digest(&mut bytes, slot);
            }
        }
        std::fs::write(&path, &bytes).unwrap();
    }
}

/// The body of a record of kind `kind` (FORMAT.md §6: `auditring.pruned`, `auditring.sealed`),
/// without actor or trace id, with `details`, padded with JSON whitespace to `len` bytes.
fn system_body(kind: &str, details: &str, len: usize) -> Vec<u8> {
    let kind = kind.as_bytes();
    let d = len - 20 - kind.len();
    assert!(
        details.len() <= d,
        "details too long for the record: {details}"
    );
    let mut body = vec![1u8, 4];
    body.extend_from_slice(&(kind.len() as u16).to_le_bytes());
    body.extend_from_slice(&[0; 4]);
    body.extend_from_slice(&0i64.to_le_bytes());
    body.extend_from_slice(&(d as u32).to_le_bytes());
    body.extend_from_slice(kind);
    body.extend_from_slice(details.as_bytes());
    body.resize(len, b' ');
    body
}

/// §14.1 read exactly, by both verifiers: a log whose first segment was removed by hand, and
/// whose last record is forged into a prune record meant to justify its start. Each forgery
/// (every member missing, of a wrong type, out of range, given twice, an extra member, ...)
/// justifies the start or not exactly as FORMAT.md §14.1 says, in the crate and in
/// `tools/verify_log.py` alike.
#[test]
fn python_verifier_agrees_on_forged_prune_records() {
    python();
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("log");
    let ring = Ring::builder(&log)
        .segment_size(SEGMENT_SIZE)
        .open()
        .unwrap();
    for i in 0..1000 {
        ring.push(sized_event(i)).unwrap();
    }
    // The record to forge: room for the longest details below.
    let filler = format!("\"{}\"", "p".repeat(700));
    ring.push(Event::new("x").with_details_json(filler).unwrap())
        .unwrap();
    ring.close().unwrap();
    let len = 20 + 1 + 702;
    std::fs::remove_file(log.join(FIRST_SEGMENT)).unwrap();
    let before = verify(&log, auditring::VerifyOptions::default()).unwrap();
    let failure = before.failure.expect("a start removed by hand");
    assert!(
        matches!(failure.reason, Reason::Unpruned { .. }),
        "{failure}"
    );
    let Reason::Unpruned { first_seq, anchor } = failure.reason else {
        unreachable!()
    };
    let last = first_seq - 1;
    let own = before.last_seq;
    let head = anchor.to_hex();
    let upper = head.to_uppercase();
    let seg = r#""segments":["0000000000000001.seg"]"#;
    let rest = r#""reason":"max_segments","exported_to":null"#;
    let base = format!(r#""first_seq":1,"last_seq":{last},"head":"{head}""#);
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    // (what, details, whether §14.1 makes it a prune record that justifies the start)
    let cases: Vec<(&str, String, bool)> = vec![
        (
            "as the writer writes it",
            format!("{{{base},{seg},{rest}}}"),
            true,
        ),
        (
            "members in another order, JSON whitespace",
            format!(
                "\n {{ \"exported_to\" : null , {seg} , \"reason\":\"max_age\", \"head\":\"{head}\",\"last_seq\":{last},\"first_seq\":1 }}\t"
            ),
            true,
        ),
        (
            "a member name escaped",
            format!(r#"{{"first\u005fseq":1,"last_seq":{last},"head":"{head}",{seg},{rest}}}"#),
            true,
        ),
        (
            "exported_to a string, reason any string, no segments",
            format!(r#"{{{base},"segments":[],"reason":"manual","exported_to":"/backups/q1"}}"#),
            true,
        ),
        (
            "an empty range (first_seq = last_seq + 1)",
            format!(
                r#"{{"first_seq":{first_seq},"last_seq":{last},"head":"{head}",{seg},{rest}}}"#
            ),
            true,
        ),
        (
            "first_seq missing",
            format!(r#"{{"last_seq":{last},"head":"{head}",{seg},{rest}}}"#),
            false,
        ),
        (
            "last_seq missing",
            format!(r#"{{"first_seq":1,"head":"{head}",{seg},{rest}}}"#),
            false,
        ),
        (
            "head missing",
            format!(r#"{{"first_seq":1,"last_seq":{last},{seg},{rest}}}"#),
            false,
        ),
        ("segments missing", format!("{{{base},{rest}}}"), false),
        (
            "reason missing",
            format!(r#"{{{base},{seg},"exported_to":null}}"#),
            false,
        ),
        (
            "exported_to missing",
            format!(r#"{{{base},{seg},"reason":"max_segments"}}"#),
            false,
        ),
        (
            "first_seq a string",
            format!(r#"{{"first_seq":"1","last_seq":{last},"head":"{head}",{seg},{rest}}}"#),
            false,
        ),
        (
            "first_seq 1.0",
            format!(r#"{{"first_seq":1.0,"last_seq":{last},"head":"{head}",{seg},{rest}}}"#),
            false,
        ),
        (
            "first_seq 1e0",
            format!(r#"{{"first_seq":1e0,"last_seq":{last},"head":"{head}",{seg},{rest}}}"#),
            false,
        ),
        (
            "first_seq true",
            format!(r#"{{"first_seq":true,"last_seq":{last},"head":"{head}",{seg},{rest}}}"#),
            false,
        ),
        (
            "first_seq null",
            format!(r#"{{"first_seq":null,"last_seq":{last},"head":"{head}",{seg},{rest}}}"#),
            false,
        ),
        (
            "first_seq 0",
            format!(r#"{{"first_seq":0,"last_seq":{last},"head":"{head}",{seg},{rest}}}"#),
            false,
        ),
        (
            "first_seq -0",
            format!(r#"{{"first_seq":-0,"last_seq":{last},"head":"{head}",{seg},{rest}}}"#),
            false,
        ),
        (
            "first_seq negative",
            format!(r#"{{"first_seq":-1,"last_seq":{last},"head":"{head}",{seg},{rest}}}"#),
            false,
        ),
        (
            "first_seq past last_seq + 1",
            format!(
                r#"{{"first_seq":{},"last_seq":{last},"head":"{head}",{seg},{rest}}}"#,
                first_seq + 1
            ),
            false,
        ),
        (
            "last_seq at the prune record's own seq (a range holding the start)",
            format!(r#"{{"first_seq":1,"last_seq":{own},"head":"{head}",{seg},{rest}}}"#),
            false,
        ),
        (
            "last_seq past a u64",
            format!(
                r#"{{"first_seq":1,"last_seq":18446744073709551616,"head":"{head}",{seg},{rest}}}"#
            ),
            false,
        ),
        (
            "head in uppercase",
            format!(r#"{{"first_seq":1,"last_seq":{last},"head":"{upper}",{seg},{rest}}}"#),
            false,
        ),
        (
            "head of 63 digits",
            format!(
                r#"{{"first_seq":1,"last_seq":{last},"head":"{}",{seg},{rest}}}"#,
                &head[1..]
            ),
            false,
        ),
        (
            "head not a string",
            format!(r#"{{"first_seq":1,"last_seq":{last},"head":null,{seg},{rest}}}"#),
            false,
        ),
        (
            "segments a string",
            format!(r#"{{{base},"segments":"0000000000000001.seg",{rest}}}"#),
            false,
        ),
        (
            "segments holding a number",
            format!(r#"{{{base},"segments":[1],{rest}}}"#),
            false,
        ),
        (
            "segments holding a lone surrogate",
            format!(r#"{{{base},"segments":["\ud800"],{rest}}}"#),
            false,
        ),
        (
            "reason a number",
            format!(r#"{{{base},{seg},"reason":5,"exported_to":null}}"#),
            false,
        ),
        (
            "reason null",
            format!(r#"{{{base},{seg},"reason":null,"exported_to":null}}"#),
            false,
        ),
        (
            "exported_to a number",
            format!(r#"{{{base},{seg},"reason":"max_age","exported_to":5}}"#),
            false,
        ),
        (
            "an extra member",
            format!(r#"{{{base},{seg},{rest},"note":1}}"#),
            false,
        ),
        (
            "an extra member, deeply nested",
            format!(r#"{{{base},{seg},{rest},"note":{deep}}}"#),
            false,
        ),
        (
            "an extra member named with a lone surrogate",
            format!(r#"{{{base},{seg},{rest},"\udc00":1}}"#),
            false,
        ),
        (
            "first_seq twice, same value",
            format!(r#"{{{base},{seg},{rest},"first_seq":1}}"#),
            false,
        ),
        (
            "exported_to twice",
            format!(r#"{{{base},{seg},{rest},"exported_to":null}}"#),
            false,
        ),
        (
            "an array of the members",
            format!(r#"[1,{last},"{head}",[],"max_age",null]"#),
            false,
        ),
        ("not JSON", format!("{{{base},{seg},{rest}"), false),
        (
            "NaN",
            format!(r#"{{"first_seq":NaN,"last_seq":{last},"head":"{head}",{seg},{rest}}}"#),
            false,
        ),
    ];
    for (what, details, justifies) in cases {
        let dir = tmp.path().join("forged");
        let _ = std::fs::remove_dir_all(&dir);
        copy_dir(&log, &dir);
        forge_last_record(&dir, own, &system_body(PRUNED_KIND, &details, len));
        if justifies {
            let rust = assert_agree_ok(&dir);
            assert_eq!(rust.first_seq, first_seq, "{what}");
        } else {
            // The forged record is a valid record all the same: the failure is the start.
            let (failure, _) = assert_agree_fail(&dir);
            assert!(
                matches!(failure.reason, Reason::Unpruned { .. }),
                "{what}: {failure}"
            );
        }
    }
}

/// §3.2, §9 step 2: two Valid commit slots of one generation (one copied over the other) are
/// the failure *same generation* at 1024 in both verifiers.
#[test]
fn python_verifier_agrees_on_two_slots_of_one_generation() {
    python();
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("log");
    closed_log_of_2000(&log);
    let path = slots::segment(&log, 2);
    let mut bytes = std::fs::read(&path).unwrap();
    let at = slots::current_slot(&bytes);
    let other = if at == 512 { 1024 } else { 512 };
    bytes.copy_within(at..at + 136, other);
    std::fs::write(&path, &bytes).unwrap();
    let (failure, py) = assert_agree_fail(&log);
    assert!(
        matches!(
            failure.reason,
            Reason::Header(auditring::HeaderError::SameGeneration { .. })
        ),
        "{failure}"
    );
    assert_eq!(failure.offset, 1024);
    let reason = py.json["error"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("both commit slots claim generation"),
        "{reason}"
    );
}

/// `verify_log.py` reads a record longer than its read chunk (1 MiB) chunk by chunk, not whole
/// (its memory is bounded whatever a length field claims): it agrees with the crate on a log of
/// large records, and on one whose large record's details were changed, or made invalid UTF-8,
/// with its hashes left alone.
#[test]
fn python_verifier_streams_large_records() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("log");
    let ring = Ring::builder(&log)
        .segment_size(16 << 20)
        .max_event_size(4 << 20)
        .open()
        .unwrap();
    for i in 0..5u64 {
        let pad = format!("{MARKER}{i}").repeat(((3 << 20) + i as usize * 1000) / 24);
        ring.push(
            Event::new("large")
                .with_details(&serde_json::json!({ "i": i, "pad": pad }))
                .unwrap(),
        )
        .unwrap();
        ring.push(Event::new("small")).unwrap();
    }
    ring.close().unwrap();
    assert_agree_ok(&log);

    let segment = log.join(FIRST_SEGMENT);
    let bytes = std::fs::read(&segment).unwrap();
    let needle = format!("{MARKER}2");
    let at = bytes
        .windows(needle.len())
        .rposition(|w| w == needle.as_bytes())
        .unwrap();
    for (name, replacement) in [("changed", b'x'), ("not-utf8", 0xff)] {
        let copy = tmp.path().join(name);
        copy_dir(&log, &copy);
        let mut b = bytes.clone();
        b[at] = replacement;
        std::fs::write(copy.join(FIRST_SEGMENT), &b).unwrap();
        let (failure, _) = assert_agree_fail(&copy);
        assert!(
            matches!(failure.reason, Reason::Leaf { .. }),
            "{name}: {failure}"
        );
    }
}

/// Chunk 0 of stratum `stratum` of the log in `dir` (§15.2).
fn chunk(dir: &Path, stratum: u8) -> PathBuf {
    dir.join(format!("0000000000000000.t{stratum}"))
}

/// Applies `edit` to the bytes of the file at `path`.
fn edit_file(path: &Path, edit: impl FnOnce(&mut Vec<u8>)) {
    let mut bytes = std::fs::read(path).unwrap();
    edit(&mut bytes);
    std::fs::write(path, &bytes).unwrap();
}

/// A closed log of `events` small events on segments of `segment_size` bytes.
fn small_events_log(dir: &Path, events: u64, segment_size: u64) {
    let ring = Ring::builder(dir)
        .segment_size(segment_size)
        .open()
        .unwrap();
    let p = ring.producer();
    for i in 0..events {
        p.push(
            Event::new("tree.test")
                .with_details_json(format!("{{\"i\":{i}}}"))
                .unwrap(),
        )
        .unwrap();
    }
    ring.close().unwrap();
}

/// §1 and §15: tree chunk files are part of the log (not foreign; their temporaries are
/// temporaries; a chunk name taken by a symlink makes the directory not a log), both verifiers
/// rebuild the same tree, and a stored hash that is not the records' is reported at the same
/// place: the first node completed, in the order the records complete them (children before
/// parents), whatever the file or the level.
#[test]
fn python_verifier_agrees_on_the_stored_tree() {
    python();
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("log");
    // Past one complete node of level 16 (65,536 records): two strata are written.
    small_events_log(&log, 70_000, 1 << 20);
    assert!(chunk(&log, 1).is_file() && chunk(&log, 2).is_file());
    let rust = assert_agree_ok(&log);
    let snap = Reader::open(&log).unwrap().snapshot().unwrap();
    assert_eq!(rust.tree_root, Some(snap.tree_root().unwrap()));
    assert!(rust.foreign_files.is_empty(), "{:?}", rust.foreign_files);

    // A chunk's temporary is no foreign file; near misses of a chunk's name are.
    let near_misses = [
        "0000000000000000.T1",
        "0000000000000000.t8",
        "000000000000000.t1",
    ];
    std::fs::write(log.join(".0000000000000001.t1.tmp"), [7u8; 32]).unwrap();
    for name in near_misses {
        std::fs::write(log.join(name), b"").unwrap();
    }
    let rust = assert_agree_ok(&log);
    assert_eq!(
        rust.foreign_files,
        vec![
            "000000000000000.t1".to_string(),
            "0000000000000000.T1".to_string(),
            "0000000000000000.t8".to_string(),
        ]
    );
    for name in near_misses {
        std::fs::remove_file(log.join(name)).unwrap();
    }

    // A chunk's name taken by a symlink (even to a valid chunk): not a log, for both.
    let linked = tmp.path().join("linked");
    copy_dir(&log, &linked);
    std::fs::rename(chunk(&linked, 2), linked.join("t2.real")).unwrap();
    std::os::unix::fs::symlink("t2.real", chunk(&linked, 2)).unwrap();
    match verify(&linked, VerifyOptions::default()) {
        Err(Error::NotALog { reason, .. }) => {
            assert!(reason.contains("0000000000000000.t2"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    let py = run_py_any(&linked, &[]);
    assert_eq!(py.code, 2, "{}", py.describe());
    assert!(
        py.stderr.contains("0000000000000000.t2 is a symlink"),
        "{}",
        py.describe()
    );

    // Node (16, 0) completes at record 65,536, node (8, 256) at record 65,792: the first is
    // reported, though its file sorts after. (Entry 1 of stratum 2 is made to look written, so
    // that entry 0 is compared.)
    let tampered = tmp.path().join("tampered");
    copy_dir(&log, &tampered);
    edit_file(&chunk(&tampered, 1), |b| b[256 * 32] ^= 1);
    edit_file(&chunk(&tampered, 2), |b| {
        b[0] ^= 1;
        b[32..64].fill(0xAB);
    });
    let (failure, _) = assert_agree_fail(&tampered);
    assert_eq!(failure.file, chunk(&tampered, 2));
    assert_eq!((failure.seq, failure.offset), (None, 0));
    assert!(
        matches!(
            failure.reason,
            Reason::TreeEntry {
                level: 16,
                index: 0,
                ..
            }
        ),
        "{failure}"
    );
    // Node (8, 255) completes at record 65,536 too, before its parents.
    edit_file(&chunk(&tampered, 1), |b| b[255 * 32 + 31] ^= 0x80);
    let (failure, _) = assert_agree_fail(&tampered);
    assert_eq!(failure.file, chunk(&tampered, 1));
    assert_eq!(failure.offset, 255 * 32);
    assert!(
        matches!(
            failure.reason,
            Reason::TreeEntry {
                level: 8,
                index: 255,
                ..
            }
        ),
        "{failure}"
    );
}

/// §15.2: a stored hash is compared only when the next entry of its stratum is written too, and
/// a chunk that is not 131,072 bytes holds nothing written: both verifiers accept such wrong
/// hashes alike (they are never used in place of the records), and fail alike, at the same
/// place, on one that is compared. A failure before (a damaged record) is reported instead.
#[test]
fn python_verifier_agrees_on_which_stored_hashes_are_compared() {
    python();
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("log");
    small_events_log(&log, 4_000, SEGMENT_SIZE);
    let root = assert_agree_ok(&log).tree_root.expect("a log from seq 1");
    let t1 = std::fs::read(chunk(&log, 1)).unwrap();
    let written = t1.chunks(32).take_while(|e| *e != [0; 32]).count();
    assert_eq!(written, 4_000 / 256);

    // A wrong hash in a chunk of the right size, followed by a written one: a failure.
    let tampered = tmp.path().join("tampered");
    copy_dir(&log, &tampered);
    edit_file(&chunk(&tampered, 1), |b| b[3 * 32 + 5] ^= 1);
    let (failure, py) = assert_agree_fail(&tampered);
    assert_eq!(failure.file, chunk(&tampered, 1));
    assert_eq!((failure.seq, failure.offset), (None, 3 * 32));
    assert!(
        matches!(
            failure.reason,
            Reason::TreeEntry {
                level: 8,
                index: 3,
                ..
            }
        ),
        "{failure}"
    );
    assert!(
        py.json["error"]["reason"]
            .as_str()
            .unwrap()
            .contains("(level 8, index 3)"),
        "{}",
        py.json
    );

    // The same chunk one byte longer, or shorter: as if it were missing.
    for len in [t1.len() + 1, t1.len() - 1] {
        let odd = tmp.path().join(format!("odd-{len}"));
        copy_dir(&tampered, &odd);
        edit_file(&chunk(&odd, 1), |b| b.resize(len, 0));
        let rust = assert_agree_ok(&odd);
        assert_eq!(rust.tree_root, Some(root));
    }

    // The last written entry, which no written entry follows: not compared, wrong as it is.
    let last = tmp.path().join("last");
    copy_dir(&log, &last);
    edit_file(&chunk(&last, 1), |b| b[(written - 1) * 32] ^= 1);
    let rust = assert_agree_ok(&last);
    assert_eq!(rust.tree_root, Some(root));

    // No chunk at all: nothing to compare.
    let none = tmp.path().join("none");
    copy_dir(&log, &none);
    std::fs::remove_file(chunk(&none, 1)).unwrap();
    assert_eq!(assert_agree_ok(&none).tree_root, Some(root));

    // A damaged record before: that failure, not the tree's (nor a root).
    let seg1 = tampered.join(FIRST_SEGMENT);
    edit_file(&seg1, |b| {
        let at = slots::data_offset(&tampered, 1) as usize + 100;
        b[at] ^= 1;
    });
    let (failure, py) = assert_agree_fail(&tampered);
    assert_eq!(failure.file, seg1);
    assert_eq!(py.json["tree_root"], Value::Null);
}

/// A log written with signed checkpoints into `sink` (every 500 events, at each sealed segment
/// and at close), by `key`; returns them in the order they were signed.
fn checkpointed_log(
    dir: &Path,
    events: u64,
    key: &SigningKey,
    sink: &Path,
    retention: Option<Retention>,
) -> Vec<SignedCheckpoint> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let collect = seen.clone();
    let prune = retention.is_some();
    let mut builder = Ring::builder(dir).segment_size(SEGMENT_SIZE).checkpoints(
        Checkpoints::new(key.expose_secret().parse().unwrap())
            .every_events(500)
            .to_dir(sink)
            .to_callback(move |c| {
                collect.lock().unwrap().push(c.clone());
                Ok(())
            }),
    );
    if let Some(retention) = retention {
        builder = builder.retention(retention);
    }
    let ring = builder.open().unwrap();
    for i in 0..events {
        ring.push(sized_event(i)).unwrap();
    }
    if prune {
        ring.flush().unwrap();
        ring.apply_retention().unwrap();
    }
    ring.close().unwrap();
    seen.lock().unwrap().clone()
}

/// The sizes of the checkpoints a Python report lists, in its order.
fn report_sizes(py: &Report) -> Vec<u64> {
    py.json["checkpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["size"].as_u64().unwrap())
        .collect()
}

/// The crate's options for `notes`, trusting `key`.
fn with_checkpoints<'a>(notes: &[&str], key: &SigningKey) -> VerifyOptions<'a> {
    notes.iter().fold(
        VerifyOptions::new().trusted_key(key.verifier()),
        |o, note| o.checkpoint(*note),
    )
}

/// §15.4: checkpoints, given to both verifiers (a history file, or one note, with the verifier
/// key or a file holding it): a log consistent with them passes in both, reporting the same
/// comparisons; a cut (the newest segment removed) and a consistent rewrite (every hash
/// recomputed, the stored tree removed) that the chain alone accepts fail in both, at the same
/// place; with the stored tree left, the rewrite shows there first. A checkpoint that cannot be
/// used (forged, another key, another origin, no key) is refused by both.
#[test]
fn python_verifier_agrees_on_checkpoints() {
    python();
    let tmp = tempfile::tempdir().unwrap();
    let (log, sink) = (tmp.path().join("log"), tmp.path().join("checkpoints"));
    let key = SigningKey::generate("audit.example/test").unwrap();
    let signed = checkpointed_log(&log, 3_000, &key, &sink, None);
    let notes: Vec<&str> = signed.iter().map(SignedCheckpoint::note).collect();
    let last = *notes.last().unwrap();
    assert_eq!(signed.last().unwrap().checkpoint().size(), 3_000);
    let verifier = key.verifier().to_string();
    let history = sink.join(auditring::CHECKPOINT_HISTORY_FILE);
    let latest = sink.join(auditring::LATEST_CHECKPOINT_FILE);
    let key_file = tmp.path().join("key.pub");
    std::fs::write(&key_file, format!("{verifier}\n")).unwrap();
    let (history_arg, latest_arg) = (history.to_str().unwrap(), latest.to_str().unwrap());
    let all_args = ["--checkpoint", history_arg, "--key", &verifier];
    let last_args = [
        "--checkpoint",
        latest_arg,
        "--key",
        key_file.to_str().unwrap(),
    ];

    // Consistent.
    let rust = assert_agree_ok_with(&log, with_checkpoints(&notes, &key), &all_args);
    assert_eq!(rust.checkpoints.len(), signed.len());
    assert!(rust.checkpoints.iter().all(|c| c.consistent));
    assert_eq!(rust.checkpoints[0].signed_by, vec!["audit.example/test"]);
    let rust = assert_agree_ok_with(&log, with_checkpoints(&[last], &key), &last_args);
    assert_eq!(rust.checkpoints.len(), 1);
    assert_eq!(Some(rust.checkpoints[0].root), rust.tree_root);

    // A cut at a record boundary: the newest segment removed.
    let cut = tmp.path().join("cut");
    copy_dir(&log, &cut);
    let segments = segment_names(&cut);
    std::fs::remove_file(cut.join(segments.last().unwrap())).unwrap();
    let alone = assert_agree_ok(&cut);
    let (failure, _) = assert_agree_fail_with(&cut, with_checkpoints(&[last], &key), &last_args);
    assert_eq!(
        failure.reason,
        Reason::CheckpointCut {
            size: 3_000,
            last_seq: alone.last_seq,
            first_missing: alone.last_seq + 1
        }
    );
    assert_eq!(failure.file, cut.join(&segments[segments.len() - 2]));
    assert!(failure.offset > 0);
    // With the whole history, every checkpoint the cut log still holds agrees.
    let (failure, py) = assert_agree_fail_with(&cut, with_checkpoints(&notes, &key), &all_args);
    assert!(
        matches!(failure.reason, Reason::CheckpointCut { .. }),
        "{failure}"
    );
    assert_eq!(
        py.json["checkpoints"][0]["consistent"],
        Value::Bool(true),
        "{}",
        py.json
    );

    // A consistent rewrite of record 1234, the stored tree removed.
    let rewritten = tmp.path().join("rewritten");
    copy_dir(&log, &rewritten);
    let mut files: std::collections::BTreeMap<String, Vec<u8>> = segment_names(&rewritten)
        .into_iter()
        .map(|n| {
            let b = std::fs::read(rewritten.join(&n)).unwrap();
            (n, b)
        })
        .collect();
    let needle = b"{\"i\":1233,";
    let (name, bytes) = files
        .iter_mut()
        .find(|(_, b)| b.windows(needle.len()).any(|w| w == needle))
        .unwrap();
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap();
    bytes[at + 5] = b'9';
    let name = name.clone();
    rechain(&mut files);
    for (n, b) in &files {
        std::fs::write(rewritten.join(n), b).unwrap();
    }
    let with_tree = tmp.path().join("rewritten-with-tree");
    copy_dir(&rewritten, &with_tree);
    for stratum in 1..=7 {
        let _ = std::fs::remove_file(chunk(&rewritten, stratum));
    }
    assert_agree_ok(&rewritten);
    // The newest checkpoint given first: checkpoints are compared smallest first.
    let newest_first: Vec<&str> = std::iter::once(last).chain(notes.iter().copied()).collect();
    let newest_first_args = [
        "--checkpoint",
        latest_arg,
        "--checkpoint",
        history_arg,
        "--key",
        &verifier,
    ];
    let (failure, py) = assert_agree_fail_with(
        &rewritten,
        with_checkpoints(&newest_first, &key),
        &newest_first_args,
    );
    let sizes: Vec<u64> = signed.iter().map(|c| c.checkpoint().size()).collect();
    let before = *sizes.iter().filter(|&&s| s < 1_234).max().unwrap();
    let after = *sizes.iter().find(|&&s| s >= 1_234).unwrap();
    match failure.reason {
        Reason::CheckpointRoot {
            size,
            after: agreed,
            ..
        } => assert_eq!((agreed, size), (before, after), "{name}: {failure}"),
        ref other => panic!("{other}"),
    }
    assert_eq!(
        (failure.seq, failure.file.as_path(), failure.offset),
        (Some(before + 1), rewritten.as_path(), 0)
    );
    let consistent = py.json["checkpoints"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["consistent"] == Value::Bool(true))
        .count();
    assert_eq!(consistent, sizes.iter().filter(|&&s| s < 1_234).count());
    assert_eq!(report_sizes(&py), {
        let mut all = sizes.clone();
        all.push(3_000);
        all.sort_unstable();
        all
    });
    // The stored tree left as it was: its hash over records 1025..=1280 is found wrong first.
    let (failure, py) =
        assert_agree_fail_with(&with_tree, with_checkpoints(&notes, &key), &all_args);
    assert_eq!(failure.file, chunk(&with_tree, 1));
    assert_eq!(failure.offset, 4 * 32);
    assert_eq!(py.json["checkpoints"], serde_json::json!([]));

    // Checkpoints that cannot be used: a usage error in Python, Error::Checkpoint in the crate.
    let forged = tmp.path().join("forged");
    std::fs::write(&forged, last.replacen("\n3000\n", "\n2999\n", 1)).unwrap();
    let other = SigningKey::generate("audit.example/test").unwrap();
    let other_verifier = other.verifier().to_string();
    // The log's own key in its cosigner form (type 0x04): a witness's kind of key, which must
    // not stand in for the log's signature.
    let cosigner = key.verifier().cosigner();
    let cosigner_text = cosigner.to_string();
    let forged_arg = forged.to_str().unwrap();
    let refused: Vec<(&str, VerifyOptions<'_>, Vec<&str>)> = vec![
        (
            "a forged size",
            with_checkpoints(&[&std::fs::read_to_string(&forged).unwrap()], &key),
            vec!["--checkpoint", forged_arg, "--key", &verifier],
        ),
        (
            "another key",
            VerifyOptions::new()
                .trusted_key(other.verifier())
                .checkpoint(last),
            vec!["--checkpoint", latest_arg, "--key", &other_verifier],
        ),
        (
            "another origin",
            with_checkpoints(&[last], &key).origin("audit.example/other"),
            vec![
                "--checkpoint",
                latest_arg,
                "--key",
                &verifier,
                "--origin",
                "audit.example/other",
            ],
        ),
        (
            "no key",
            VerifyOptions::new().checkpoint(last),
            vec!["--checkpoint", latest_arg],
        ),
        (
            "a cosigner key as the log's key",
            VerifyOptions::new()
                .trusted_key(cosigner.clone())
                .checkpoint(last),
            vec!["--checkpoint", latest_arg, "--key", &cosigner_text],
        ),
    ];
    assert_ne!(std::fs::read_to_string(&forged).unwrap(), last);
    assert_checkpoints_refused(&log, refused);
}

/// Asserts that both verifiers refuse each `(what, crate options, Python arguments)` as
/// checkpoints that cannot be used: `Error::Checkpoint` in the crate, a usage error (exit 2, no
/// report) in Python.
fn assert_checkpoints_refused<S: AsRef<str>>(
    log: &Path,
    refused: Vec<(&str, VerifyOptions<'_>, Vec<S>)>,
) {
    for (what, options, args) in refused {
        let args: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
        assert!(
            matches!(verify(log, options), Err(Error::Checkpoint(_))),
            "{what}"
        );
        let py = run_py_any(log, &args);
        assert_eq!(py.code, 2, "{what}: {}", py.describe());
        assert_eq!(py.json, Value::Null, "{what}: {}", py.describe());
    }
}

/// §15.5: a pruned log rebuilds its tree from the stored hashes and the tree base of what it
/// lost: both verifiers report the same root, compare the checkpoints from its first record
/// on and refuse the older ones at the same place; a changed base shows against the
/// checkpoints, and a missing one leaves no tree. The library's roots and proofs reach down to
/// the base's first leaf.
#[test]
fn python_verifier_agrees_on_a_pruned_log_with_a_tree() {
    python();
    let tmp = tempfile::tempdir().unwrap();
    let (log, sink) = (tmp.path().join("log"), tmp.path().join("checkpoints"));
    let key = SigningKey::generate("audit.example/test").unwrap();
    let signed = checkpointed_log(&log, 3_000, &key, &sink, Some(keep_two()));
    assert_ne!(segment_names(&log)[0], FIRST_SEGMENT, "nothing was pruned");
    assert!(chunk(&log, 1).is_file());
    let rust = assert_agree_ok(&log);
    let pruned = rust.first_seq - 1;
    assert!(pruned > 256, "{pruned}");
    // §15.5: the tree over every record since seq 1 is rebuilt from the stored hashes and the
    // tree base of the pruned records.
    let snapshot = Reader::open(&log).unwrap().snapshot().unwrap();
    assert_eq!(rust.tree_root, Some(snapshot.tree_root().unwrap()));
    let base = log.join(format!("{pruned:016x}.tb"));
    let base_start = (pruned - pruned % 256).saturating_sub(256);
    assert_eq!(
        std::fs::metadata(&base).unwrap().len(),
        (pruned - base_start) * 32
    );

    let history = sink.join(auditring::CHECKPOINT_HISTORY_FILE);
    let verifier = key.verifier().to_string();
    let py_args = [
        "--checkpoint",
        history.to_str().unwrap(),
        "--key",
        &verifier,
    ];
    let notes: Vec<&str> = signed.iter().map(SignedCheckpoint::note).collect();
    // Checkpoints of the pruned records' sizes have no root in the rebuilt tree.
    let (failure, py) = assert_agree_fail_with(&log, with_checkpoints(&notes, &key), &py_args);
    let smallest = signed.iter().map(|c| c.checkpoint().size()).min().unwrap();
    assert!(smallest < pruned);
    assert_eq!(
        failure.reason,
        Reason::CheckpointUncheckable {
            size: smallest,
            first_seq: rust.first_seq
        }
    );
    assert_eq!(
        (failure.seq, failure.file.as_path(), failure.offset),
        (Some(rust.first_seq), log.as_path(), 0)
    );
    let checked = py.json["checkpoints"].as_array().unwrap();
    assert_eq!(checked.len(), signed.len());
    for (c, s) in checked.iter().zip(&signed) {
        assert_eq!(c["size"], s.checkpoint().size());
        assert_eq!(c["consistent"], s.checkpoint().size() >= pruned, "{c}");
    }

    // The ones from the first record kept on are consistent with the log, in both; the
    // library's proofs reach down to the base's first leaf.
    let kept: Vec<&SignedCheckpoint> = signed
        .iter()
        .filter(|c| c.checkpoint().size() >= pruned)
        .collect();
    assert!(kept.len() >= 2, "{kept:?}");
    let kept_notes: Vec<&str> = kept.iter().map(|c| c.note()).collect();
    let kept_file = tmp.path().join("kept");
    let lines: String = kept_notes
        .iter()
        .map(|n| format!("{}\n", serde_json::json!({ "note": n })))
        .collect();
    std::fs::write(&kept_file, lines).unwrap();
    let kept_args = [
        "--checkpoint",
        kept_file.to_str().unwrap(),
        "--key",
        &verifier,
    ];
    let report = assert_agree_ok_with(&log, with_checkpoints(&kept_notes, &key), &kept_args);
    assert!(report.checkpoints.iter().all(|c| c.consistent));
    let head = snapshot.head_seq();
    for c in &signed {
        let size = c.checkpoint().size();
        if size >= base_start {
            assert_eq!(snapshot.root_at(size).unwrap(), c.checkpoint().root());
            let proof = snapshot.consistency_proof(size, head).unwrap();
            proof
                .verify(&c.checkpoint().root(), &rust.tree_root.unwrap())
                .unwrap();
        } else {
            assert!(snapshot.root_at(size).is_err(), "{size}");
        }
    }
    for seq in [pruned + 1, pruned + 2, head] {
        let record = snapshot.get(seq).unwrap().unwrap();
        let proof = snapshot.inclusion_proof(seq, head).unwrap();
        proof
            .verify(&record.leaf, &rust.tree_root.unwrap())
            .unwrap();
    }

    // A changed tree base changes the node over the first record's tile, which the stored
    // hash of that tile contradicts, in both. (Its last leaf: the tile before is complete, and
    // its stored hash stands for it.)
    assert_ne!(pruned % 256, 0);
    let saved = std::fs::read(&base).unwrap();
    edit_file(&base, |b| *b.last_mut().unwrap() ^= 1);
    let (failure, _) = assert_agree_fail(&log);
    assert!(
        matches!(failure.reason, Reason::TreeEntry { level: 8, index, .. } if index == pruned / 256),
        "{failure}"
    );
    assert_eq!(failure.file, chunk(&log, 1));
    std::fs::write(&base, saved).unwrap();
    assert_agree_ok_with(&log, with_checkpoints(&kept_notes, &key), &kept_args);
    // Without it there is no tree, and the checkpoints cannot be checked.
    std::fs::remove_file(&base).unwrap();
    assert_eq!(assert_agree_ok(&log).tree_root, None);
    let (failure, _) =
        assert_agree_fail_with(&log, with_checkpoints(&kept_notes, &key), &kept_args);
    assert!(
        matches!(failure.reason, Reason::CheckpointUncheckable { .. }),
        "{failure}"
    );
}

/// The initial sealing key of the sealed logs below (FORMAT.md §16.2).
const SEAL_KEY: [u8; 32] = [0x5a; 32];

/// The sealing key file made from [`SEAL_KEY`] in `tmp` (made once), and a new state file
/// `NAME.state` beside it, for a ring to seal with.
fn seal_files(tmp: &Path, name: &str) -> (PathBuf, PathBuf) {
    let key = tmp.join("seal.key");
    if !key.exists() {
        SealKey::from_bytes(SEAL_KEY).write_new(&key).unwrap();
    }
    let state = tmp.join(format!("{name}.state"));
    SealKey::from_bytes(SEAL_KEY).write_state(&state).unwrap();
    (key, state)
}

/// A log of 1500 events sealed every 100 with [`SEAL_KEY`] in `tmp` (`log`, three segments and
/// more), and the key file.
fn sealed_log(tmp: &Path) -> (PathBuf, PathBuf) {
    let (key, state) = seal_files(tmp, "log");
    let log = tmp.join("log");
    write_sealed(&log, &state, 0, 1_500, 100);
    (log, key)
}

/// The crate's options checking seals against [`SEAL_KEY`].
fn with_seal_key<'a>() -> VerifyOptions<'a> {
    VerifyOptions::new().seal_key(SealKey::from_bytes(SEAL_KEY))
}

/// The Python verifier's arguments checking seals against the key file `key`, then `more`.
fn seal_args<'a>(key: &'a Path, more: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["--seal-key", key.to_str().unwrap()];
    args.extend_from_slice(more);
    args
}

/// Asserts that the Python verifier gives the crate's reason for `failure`, word for word.
fn assert_same_words(failure: &auditring::IntegrityError, py: &Report) {
    assert_eq!(
        py.json["error"]["reason"].as_str(),
        Some(failure.reason.to_string().as_str()),
        "{}",
        py.json
    );
}

/// §16.4, §9 "Seals": both verifiers, given the initial sealing key, report the same seals of a
/// sealed log (how many, the first and last epochs, how far it is sealed, the records after
/// the last seal, when it was sealed), with or without an epoch the auditor saw; without the
/// key, none; so they do of a pruned log, whose first seal kept is of a later epoch. Records
/// appended without the key are unsealed in both. In a copy taken while the writer is open, a
/// seal after the last commit is checked as a committed one is: forged, it fails in both at the
/// same place.
#[test]
fn python_verifier_agrees_on_sealed_logs() {
    python();
    let tmp = tempfile::tempdir().unwrap();
    let (log, key) = sealed_log(tmp.path());
    let rust = assert_agree_ok_with(&log, with_seal_key(), &seal_args(&key, &[]));
    let seals = rust.seals.clone().unwrap();
    assert!(rust.segments >= 3, "{rust:?}");
    assert!(seals.seals >= 15, "{seals:?}");
    assert_eq!(
        (seals.first_epoch, seals.last_epoch),
        (Some(0), Some(seals.seals - 1))
    );
    assert_eq!((seals.sealed_through, seals.unsealed), (rust.last_seq, 0));
    assert!(seals.last_sealed_at.is_some());
    assert_eq!(assert_agree_ok(&log).seals, None);
    let last = seals.last_epoch.unwrap();
    for seen in [0, last] {
        let seen_text = seen.to_string();
        assert_agree_ok_with(
            &log,
            with_seal_key().expect_epoch(seen),
            &seal_args(&key, &["--expect-epoch", &seen_text]),
        );
    }

    // Pruned: the first seal kept is of a later epoch (below its seq), in both.
    let (_, pruned_state) = seal_files(tmp.path(), "pruned");
    let pruned = tmp.path().join("pruned");
    write_pruned_sealed(&pruned, &pruned_state);
    let rust = assert_agree_ok_with(&pruned, with_seal_key(), &seal_args(&key, &[]));
    assert!(rust.first_seq > 1);
    assert!(rust.seals.unwrap().first_epoch.unwrap() > 0);

    // Appended by a writer without the key: a valid chain, and unsealed in both.
    let appended = tmp.path().join("appended");
    copy_dir(&log, &appended);
    let ring = Ring::open(&appended).unwrap();
    push_numbered(&ring, 1_500, 7);
    ring.close().unwrap();
    let rust = assert_agree_ok_with(&appended, with_seal_key(), &seal_args(&key, &[]));
    assert_eq!(rust.seals.unwrap().unsealed, 7);

    // A copy taken while the writer is open, after a flush under group commit: the last
    // flush's records, seals among them, lie past the committed length.
    let (_, live_state) = seal_files(tmp.path(), "open");
    let open = tmp.path().join("open");
    let ring = sealing_ring(&open, &live_state, 10);
    let mut pushed = 0;
    let mut batch = |n: u64| {
        push_numbered(&ring, pushed, n);
        pushed += n;
        ring.flush().unwrap();
    };
    while ring.snapshot().segment_count() < 2 {
        batch(25);
    }
    for _ in 0..3 {
        batch(25);
    }
    let live = tmp.path().join("live");
    copy_dir(&open, &live);
    let rust = assert_agree_ok_with(&live, with_seal_key(), &seal_args(&key, &[]));
    let py = run_py(&live, &seal_args(&key, &[]));
    let uncommitted = py.json["uncommitted"].as_u64().unwrap();
    let sealed_through = rust.seals.unwrap().sealed_through;
    assert!(
        sealed_through > rust.last_seq - uncommitted,
        "no seal past the committed length: {}",
        py.json
    );
    let forged = tmp.path().join("live-forged");
    copy_dir(&live, &forged);
    let mut files = segment_files(&forged);
    rechain_resealing(&mut files, log_id_of(&live), |seq, epoch| {
        (seq == sealed_through).then_some((epoch, [1; 32]))
    });
    write_back(&forged, &files);
    let (failure, py) = assert_agree_fail_with(&forged, with_seal_key(), &seal_args(&key, &[]));
    assert!(
        matches!(failure.reason, Reason::SealMac { .. }),
        "{failure}"
    );
    assert_eq!(failure.seq, Some(sealed_through));
    assert_same_words(&failure, &py);
    ring.close().unwrap();
    assert_agree_ok_with(&open, with_seal_key(), &seal_args(&key, &[]));
}

/// §16.4 against a thief of the host's current key: event 1200 changed and every hash after
/// it recomputed (which the chain alone accepts, in both), the seals after it resealed with
/// the stolen key, keeping their epochs (a seal MAC failure) or claiming the stolen epoch (a
/// seal epoch failure): both verifiers fail at the same seal, in the same words.
#[test]
fn python_verifier_agrees_on_a_rewrite_resealed_with_a_stolen_key() {
    python();
    let tmp = tempfile::tempdir().unwrap();
    let (log, key) = sealed_log(tmp.path());
    let seals = verify(&log, with_seal_key()).unwrap().seals.unwrap();
    // The state file holds the key of the epoch after the last seal.
    let stolen_epoch = seals.last_epoch.unwrap() + 1;
    let stolen = seal_epoch_key(&SEAL_KEY, stolen_epoch);
    // Events 1200 to 1299 are sealed by the seal of epoch 12 (two digits, as the stolen one).
    let (first_resealed, previous) = (12, 11);
    for thief in Thief::both(stolen_epoch, stolen) {
        let claim_stolen_epoch = thief.claims_its_epoch;
        let copy = tmp.path().join(format!("rewrite-{claim_stolen_epoch}"));
        rewrite_with_stolen_key((&log, &copy), 1_200, &thief, |_, e| e >= first_resealed);
        assert_agree_ok(&copy);
        let (failure, py) = assert_agree_fail_with(&copy, with_seal_key(), &seal_args(&key, &[]));
        let expected = if claim_stolen_epoch {
            Reason::SealEpoch {
                previous: Some(previous),
                found: stolen_epoch,
            }
        } else {
            Reason::SealMac {
                epoch: first_resealed,
            }
        };
        assert_eq!(failure.reason, expected);
        assert_same_words(&failure, &py);
        assert_ne!(failure.file, copy.join(FIRST_SEGMENT), "{failure}");
    }
}

/// §16.1 read exactly, by both verifiers: an event of a sealed log forged into a seal record
/// by a holder of the key (the right epoch and MAC, every later seal made again), its details
/// written each way below. Those
/// that follow the member rules of §14.1 are a valid seal in both; every other is a seal
/// record failure in both, at the forged record; without the key, an ordinary record.
#[test]
fn python_verifier_agrees_on_forged_seal_records() {
    python();
    let tmp = tempfile::tempdir().unwrap();
    let (key, state) = seal_files(tmp.path(), "log");
    let log = tmp.path().join("log");
    let ring = sealing_ring(&log, &state, 100);
    push_numbered(&ring, 0, 250);
    let filler = format!("\"{}\"", "p".repeat(300));
    ring.push(Event::new("x").with_details_json(filler).unwrap())
        .unwrap();
    push_numbered(&ring, 250, 150);
    ring.close().unwrap();
    let len = 20 + 1 + 302;
    let id = log_id_of(&log);
    let sealed = verify(&log, with_seal_key()).unwrap().seals.unwrap();
    type Details = fn(u64, &str) -> String;
    let variants: Vec<(&str, Details, bool)> = vec![
        (
            "as a ring writes them",
            |e, m| format!(r#"{{"epoch":{e},"mac":"{m}"}}"#),
            true,
        ),
        (
            "the other order, white space",
            |e, m| format!("\n {{ \"mac\" : \"{m}\" ,\t\"epoch\":{e} }}\r\n"),
            true,
        ),
        (
            "names escaped",
            |e, m| format!(r#"{{"\u0065poch":{e},"m\u0061c":"{m}"}}"#),
            true,
        ),
        ("mac missing", |e, _| format!(r#"{{"epoch":{e}}}"#), false),
        ("epoch missing", |_, m| format!(r#"{{"mac":"{m}"}}"#), false),
        (
            "an extra member",
            |e, m| format!(r#"{{"epoch":{e},"mac":"{m}","note":null}}"#),
            false,
        ),
        (
            "uppercase hex",
            |e, m| format!(r#"{{"epoch":{e},"mac":"{}"}}"#, m.to_uppercase()),
            false,
        ),
        (
            "epoch twice",
            |e, m| format!(r#"{{"epoch":{e},"epoch":{e},"mac":"{m}"}}"#),
            false,
        ),
        (
            "epoch twice, once escaped",
            |e, m| format!(r#"{{"epoch":{e},"mac":"{m}","\u0065poch":{e}}}"#),
            false,
        ),
        (
            "epoch a string",
            |e, m| format!(r#"{{"epoch":"{e}","mac":"{m}"}}"#),
            false,
        ),
        (
            "epoch with a fraction",
            |e, m| format!(r#"{{"epoch":{e}.0,"mac":"{m}"}}"#),
            false,
        ),
        (
            "epoch with an exponent",
            |e, m| format!(r#"{{"epoch":{e}e0,"mac":"{m}"}}"#),
            false,
        ),
        (
            "mac short",
            |e, m| format!(r#"{{"epoch":{e},"mac":"{}"}}"#, &m[..62]),
            false,
        ),
        ("an array", |e, m| format!(r#"[{e},"{m}"]"#), false),
        (
            "not JSON",
            |e, m| format!(r#"{{"epoch":{e},"mac":"{m}""#),
            false,
        ),
    ];
    for (i, (what, details, accepted)) in variants.into_iter().enumerate() {
        let copy = tmp.path().join(format!("forged-{i}"));
        copy_dir(&log, &copy);
        let mut files = segment_files(&copy);
        let (mut last_epoch, mut forged_at) = (None, None);
        rechain_with(&mut files, |seq, prev, body| {
            if find(body, SEALED_KIND.as_bytes()).is_some() {
                last_epoch = seal_fields(body).map(|(e, _)| e);
            } else if find(body, b"ppppp").is_some() {
                let e = last_epoch.unwrap();
                let mac = seal_mac(&seal_epoch_key(&SEAL_KEY, e), &id, e, seq, prev);
                body.copy_from_slice(&system_body(SEALED_KIND, &details(e, &hex(&mac)), len));
                forged_at = Some(seq);
            }
        });
        let forged_at = forged_at.expect("the event to forge");
        // The chain changed from the forged record on: every later seal made again.
        rechain_resealing(&mut files, id, |seq, epoch| {
            (seq > forged_at).then(|| (epoch, seal_epoch_key(&SEAL_KEY, epoch)))
        });
        write_back(&copy, &files);
        let args = seal_args(&key, &[]);
        if accepted {
            let rust = assert_agree_ok_with(&copy, with_seal_key(), &args);
            assert_eq!(rust.seals.unwrap().seals, sealed.seals + 1, "{what}");
            continue;
        }
        let (failure, py) = assert_agree_fail_with(&copy, with_seal_key(), &args);
        assert!(
            matches!(failure.reason, Reason::SealRecord(_)),
            "{what}: {failure}"
        );
        assert_eq!(failure.seq, Some(forged_at), "{what}");
        let reason = py.json["error"]["reason"].as_str().unwrap();
        assert!(
            reason.starts_with("a seal record whose details are not those of a seal: "),
            "{what}: {reason}"
        );
        assert_agree_ok(&copy);
    }
}

/// §16.4, "seal missing": given an epoch the auditor saw sealed, both verifiers fail, at the
/// same place and in the same words, a log whose newest segment was removed (a cut the seals
/// alone miss) and a log that was never sealed (every record unsealed, in both).
#[test]
fn python_verifier_agrees_on_missing_seals() {
    python();
    let tmp = tempfile::tempdir().unwrap();
    let (log, key) = sealed_log(tmp.path());
    let last = verify(&log, with_seal_key())
        .unwrap()
        .seals
        .unwrap()
        .last_epoch
        .unwrap();
    let last_text = last.to_string();

    let cut = tmp.path().join("cut");
    copy_dir(&log, &cut);
    let names = segment_names(&cut);
    std::fs::remove_file(cut.join(names.last().unwrap())).unwrap();
    let alone = assert_agree_ok_with(&cut, with_seal_key(), &seal_args(&key, &[]));
    let left = alone.seals.unwrap();
    let (failure, py) = assert_agree_fail_with(
        &cut,
        with_seal_key().expect_epoch(last),
        &seal_args(&key, &["--expect-epoch", &last_text]),
    );
    assert_eq!(
        failure.reason,
        Reason::SealMissing {
            expected: last,
            last: left.last_epoch
        }
    );
    assert!(left.last_epoch.unwrap() < last);
    assert_eq!(failure.seq, Some(left.sealed_through + 1));
    assert_eq!(failure.file, cut.join(&names[names.len() - 2]));
    assert_same_words(&failure, &py);

    let plain = tmp.path().join("plain");
    let ring = Ring::builder(&plain)
        .segment_size(SEGMENT_SIZE)
        .open()
        .unwrap();
    push_numbered(&ring, 0, 700);
    ring.close().unwrap();
    let rust = assert_agree_ok_with(&plain, with_seal_key(), &seal_args(&key, &[]));
    let none = rust.seals.unwrap();
    assert_eq!(
        (
            none.seals,
            none.last_epoch,
            none.sealed_through,
            none.unsealed
        ),
        (0, None, 0, 700)
    );
    let (failure, py) = assert_agree_fail_with(
        &plain,
        with_seal_key().expect_epoch(0),
        &seal_args(&key, &["--expect-epoch", "0"]),
    );
    assert_eq!(
        failure.reason,
        Reason::SealMissing {
            expected: 0,
            last: None
        }
    );
    assert_eq!(failure.seq, Some(1));
    assert_same_words(&failure, &py);
}

/// §16.2: another initial key fails at the first seal in both, in the same words. A file that
/// is not a sealing key (the crate's `SealKey::read` refuses it) is a usage error of the
/// script, as are an expected epoch without a key and an epoch that is not a number.
#[test]
fn python_verifier_agrees_on_a_wrong_sealing_key() {
    python();
    let tmp = tempfile::tempdir().unwrap();
    let (log, key) = sealed_log(tmp.path());
    let other = tmp.path().join("other.key");
    SealKey::from_bytes([1; 32]).write_new(&other).unwrap();
    let (failure, py) = assert_agree_fail_with(
        &log,
        VerifyOptions::new().seal_key(SealKey::from_bytes([1; 32])),
        &seal_args(&other, &[]),
    );
    assert_eq!(failure.reason, Reason::SealMac { epoch: 0 });
    assert_eq!(failure.seq, Some(101), "the first seal follows 100 events");
    assert_same_words(&failure, &py);

    let digits = hex(&SEAL_KEY);
    let unterminated = tmp.path().join("unterminated.key");
    std::fs::write(&unterminated, format!("auditring-seal-key-v1 {digits}")).unwrap();
    assert!(SealKey::read(&unterminated).is_ok());
    assert_agree_ok_with(&log, with_seal_key(), &seal_args(&unterminated, &[]));
    let mut refused: Vec<PathBuf> = [
        format!("auditring-seal-key-v1 {}\n", digits.to_uppercase()),
        format!("auditring-seal-key-v1 {digits}\n\n"),
        format!("auditring-seal-key-v1 {digits}\r\n"),
        format!("auditring-seal-key-v1  {digits}\n"),
        format!("auditring-seal-key-v2 {digits}\n"),
        format!("auditring-seal-key-v1 {}\n", &digits[..62]),
        format!("{digits}\n"),
        String::new(),
    ]
    .iter()
    .enumerate()
    .map(|(i, text)| {
        let path = tmp.path().join(format!("bad-{i}.key"));
        std::fs::write(&path, text).unwrap();
        path
    })
    .collect();
    refused.extend([tmp.path().join("missing.key"), tmp.path().to_path_buf()]);
    for path in &refused {
        assert!(SealKey::read(path).is_err(), "{}", path.display());
        let py = run_py_any(&log, &seal_args(path, &[]));
        assert_eq!(py.code, 2, "{}: {}", path.display(), py.describe());
        assert_eq!(py.json, Value::Null, "{}", py.describe());
    }
    for args in [
        vec!["--expect-epoch", "3"],
        seal_args(&key, &["--expect-epoch", "three"]),
        seal_args(&key, &["--expect-epoch", "-1"]),
        seal_args(&key, &["--seal-key", key.to_str().unwrap()]),
    ] {
        let py = run_py_any(&log, &args);
        assert_eq!(py.code, 2, "{args:?}: {}", py.describe());
    }
}

/// §15.4 with witnesses (C2SP tlog-cosignature): a checkpoint cosigned by two of three
/// witnesses. With a quorum both verifiers accept it when enough of the witnesses given
/// cosigned it (a witness given by its note key or its cosigner key alike), and refuse it
/// (unusable, not an integrity failure) when too few did, when more are required than were
/// given, when a cosignature by a witness given does not verify, and when a witness's key is
/// given as the log's.
#[test]
fn python_verifier_agrees_on_witness_cosignatures() {
    python();
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("log");
    let key = SigningKey::generate("audit.example/test").unwrap();
    let signed = checkpointed_log(&log, 1_000, &key, &tmp.path().join("sink"), None);
    let (first, newest) = (&signed[0], signed.last().unwrap());
    let body = newest.checkpoint().to_body();
    let witnesses: Vec<SigningKey> = (1..=3)
        .map(|i| SigningKey::generate(&format!("witness.example/w{i}")).unwrap())
        .collect();
    let cosigned_by = |extra: &str| {
        format!(
            "{}{}{}{extra}",
            newest.note(),
            cosign(&body, &witnesses[0], 1_700_000_000).unwrap(),
            cosign(&body, &witnesses[1], 1_700_000_100).unwrap(),
        )
    };
    let note = cosigned_by("");
    // A third line by the first witness, over another checkpoint: it does not verify here.
    let bad_note = cosigned_by(&cosign(&first.checkpoint().to_body(), &witnesses[0], 1).unwrap());
    let (note_file, bad_file) = (tmp.path().join("cosigned"), tmp.path().join("bad"));
    std::fs::write(&note_file, &note).unwrap();
    std::fs::write(&bad_file, &bad_note).unwrap();
    let w: Vec<VerifierKey> = witnesses.iter().map(SigningKey::verifier).collect();
    let texts: Vec<String> = w.iter().map(ToString::to_string).collect();
    let (w1_cosigner, w2_cosigner) = (w[0].cosigner(), w[1].cosigner());
    let cosigner_texts = [w1_cosigner.to_string(), w2_cosigner.to_string()];
    let w1_file = tmp.path().join("w1.pub");
    std::fs::write(&w1_file, format!("{}\n", w[0])).unwrap();
    let log_key = key.verifier();
    let log_text = log_key.to_string();
    let trusted = [(&log_key, log_text.as_str())];
    let w1 = (&w[0], texts[0].as_str());
    let w1_in_file = (&w[0], w1_file.to_str().unwrap());
    let w1_as_cosigner = (&w1_cosigner, cosigner_texts[0].as_str());
    let w2 = (&w2_cosigner, cosigner_texts[1].as_str());
    let w3 = (&w[2], texts[2].as_str());
    let good = (note.as_str(), note_file.as_path());
    let bad = (bad_note.as_str(), bad_file.as_path());

    for (witnesses, quorum) in [
        (vec![w1, w2], 2),
        (vec![w1_in_file, w2, w3], 2),
        (vec![w3, w1], 1),
        (vec![w3], 0),
    ] {
        let (options, args) = witnessed(good, &trusted, &witnesses, quorum);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let rust = assert_agree_ok_with(&log, options, &args);
        assert_eq!(rust.checkpoints.len(), 1);
        assert!(rust.checkpoints[0].consistent);
    }

    let cases = [
        (
            "one of the two required cosigned",
            good,
            &trusted,
            vec![w1, w3],
            2,
        ),
        ("more required than given", good, &trusted, vec![w1, w2], 3),
        (
            "one witness by both its keys",
            good,
            &trusted,
            vec![w1, w1_as_cosigner],
            2,
        ),
        ("none of those given cosigned", good, &trusted, vec![w3], 1),
        (
            "a cosignature that does not verify",
            bad,
            &trusted,
            vec![w1, w2],
            1,
        ),
        (
            "a witness's cosigner key as the log's",
            good,
            &[w2],
            vec![w1],
            1,
        ),
        (
            "a witness's note key as the log's",
            good,
            &[w1],
            vec![w2],
            1,
        ),
    ];
    let refused = cases
        .into_iter()
        .map(|(what, note, trusted, witnesses, quorum)| {
            let (options, args) = witnessed(note, trusted, &witnesses, quorum);
            (what, options, args)
        })
        .collect();
    assert_checkpoints_refused(&log, refused);

    // As the command line has them: a witness goes with a quorum, a quorum with checkpoints.
    for args in [
        vec![
            "--checkpoint",
            note_file.to_str().unwrap(),
            "--key",
            &log_text,
            "--witness",
            &texts[0],
        ],
        vec!["--key", &log_text, "--witness", &texts[0], "--quorum", "1"],
    ] {
        let py = run_py_any(&log, &args);
        assert_eq!(py.code, 2, "{args:?}: {}", py.describe());
    }
}

/// The crate's options and the script's arguments that check the checkpoint `note` (held by
/// the file `file`) trusting the keys `trusted`, with the `witnesses` and the `quorum`: each
/// key with its argument (the key's text, or a file holding it).
fn witnessed<'a>(
    (note, file): (&str, &Path),
    trusted: &[(&VerifierKey, &str)],
    witnesses: &[(&VerifierKey, &str)],
    quorum: usize,
) -> (VerifyOptions<'a>, Vec<String>) {
    let mut options = VerifyOptions::new().checkpoint(note).quorum(quorum);
    let mut args = vec!["--checkpoint".to_owned(), file.to_str().unwrap().to_owned()];
    for (k, arg) in trusted {
        options = options.trusted_key((*k).clone());
        args.extend(["--key".to_owned(), (*arg).to_owned()]);
    }
    for (k, arg) in witnesses {
        options = options.witness((*k).clone());
        args.extend(["--witness".to_owned(), (*arg).to_owned()]);
    }
    args.extend(["--quorum".to_owned(), quorum.to_string()]);
    (options, args)
}
