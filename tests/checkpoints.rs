//! Signed checkpoints (`docs/FORMAT.md` §15.4, `docs/SECURITY.md`): a ring signs them at
//! multiples of a count, at every sealed segment and at close; `verify` proves a log consistent
//! with them, and catches the two changes a plain chain cannot show (a cut at a record
//! boundary, a consistent rewrite), saying where.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use auditring::{
    CHECKPOINT_HISTORY_FILE, Checkpoint, Checkpoints, Durability, Error, Event,
    LATEST_CHECKPOINT_FILE, Reader, Reason, Ring, SignedCheckpoint, SigningKey, VerifyOptions,
    open_note, verify,
};
use auditring_testkit::rechain::rechain;

const SEGMENT_SIZE: u64 = 64 * 1024;

/// Writes `events` events into `dir` with checkpoints every `every` events signed by `key`,
/// into `sink` and collected; returns them in the order they were signed.
fn write_log(
    dir: &Path,
    events: u64,
    every: u64,
    key: &str,
    sink: &Path,
    durability: Durability,
) -> Vec<SignedCheckpoint> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let collect = seen.clone();
    let ring = Ring::builder(dir)
        .segment_size(SEGMENT_SIZE)
        .durability(durability)
        .checkpoints(
            Checkpoints::new(key.parse().unwrap())
                .every_events(every)
                .to_dir(sink)
                .to_callback(move |c| {
                    collect.lock().unwrap().push(c.clone());
                    Ok(())
                }),
        )
        .open()
        .unwrap();
    let p = ring.producer();
    for i in 0..events {
        p.push(
            Event::new("checkpoint.test")
                .with_details_json(format!("{{\"i\":{i}}}"))
                .unwrap(),
        )
        .unwrap();
    }
    ring.close().unwrap();
    seen.lock().unwrap().clone()
}

/// 3,000 events in `tmp/log`, with a checkpoint every 500: the log, its key, the checkpoints.
fn signed_log(tmp: &Path) -> (std::path::PathBuf, SigningKey, Vec<SignedCheckpoint>) {
    let (dir, sink) = (tmp.join("log"), tmp.join("checkpoints"));
    let key = key();
    let signed = write_log(
        &dir,
        3_000,
        500,
        &key.expose_secret(),
        &sink,
        Durability::Batch,
    );
    (dir, key, signed)
}

fn key() -> SigningKey {
    SigningKey::generate("audit.example/test").unwrap()
}

fn options(notes: &[&SignedCheckpoint], key: &SigningKey) -> VerifyOptions<'static> {
    notes
        .iter()
        .fold(VerifyOptions::new().trusted_key(key.verifier()), |o, c| {
            o.checkpoint(c.note())
        })
}

#[test]
fn checkpoints_come_at_each_count_each_seal_and_close_and_prove_the_log() {
    for durability in [Durability::None, Durability::Batch] {
        let tmp = tempfile::tempdir().unwrap();
        let (dir, sink) = (tmp.path().join("log"), tmp.path().join("checkpoints"));
        let key = key();
        let signed = write_log(&dir, 5_500, 1_000, &key.expose_secret(), &sink, durability);
        let sizes: Vec<u64> = signed.iter().map(|c| c.checkpoint().size()).collect();
        assert!(sizes.windows(2).all(|w| w[0] < w[1]), "{sizes:?}");
        for n in [1_000, 2_000, 3_000, 4_000, 5_000, 5_500] {
            assert!(sizes.contains(&n), "{n} not in {sizes:?}");
        }
        // One at the end of every sealed segment.
        let snap = Reader::open(&dir).unwrap().snapshot().unwrap();
        let segments = snap.segments().unwrap();
        assert!(segments.len() > 3);
        for s in &segments[..segments.len() - 1] {
            assert!(
                sizes.contains(&s.last_seq),
                "{} not in {sizes:?}",
                s.last_seq
            );
        }
        for c in &signed {
            let opened = open_note(c.note(), &[key.verifier()]).unwrap();
            let body = Checkpoint::parse(opened.text()).unwrap();
            assert_eq!(&body, c.checkpoint());
            assert_eq!(
                body.origin(),
                format!("auditring/{}", snap.log_id()),
                "the default origin"
            );
            assert_eq!(body.root(), snap.root_at(body.size()).unwrap());
        }
        // The directory sink: the latest, and every one.
        let latest = std::fs::read_to_string(sink.join(LATEST_CHECKPOINT_FILE)).unwrap();
        assert_eq!(latest, signed.last().unwrap().note());
        let history = std::fs::read_to_string(sink.join(CHECKPOINT_HISTORY_FILE)).unwrap();
        let lines: Vec<serde_json::Value> = history
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), signed.len());
        for (line, c) in lines.iter().zip(&signed) {
            assert_eq!(line["size"], c.checkpoint().size());
            assert_eq!(line["note"], c.note());
        }
        // The log is consistent with all of them.
        let all: Vec<&SignedCheckpoint> = signed.iter().collect();
        let report = verify(&dir, options(&all, &key)).unwrap();
        assert!(report.is_ok(), "{:?}", report.failure);
        assert_eq!(report.checkpoints.len(), signed.len());
        assert!(report.checkpoints.iter().all(|c| c.consistent));
        assert_eq!(report.checkpoints[0].signed_by, vec!["audit.example/test"]);
    }
}

/// The segment files of `dir`, by name.
fn segment_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| Path::new(n).extension().is_some_and(|e| e == "seg"))
        .map(|n| (n.clone(), std::fs::read(dir.join(&n)).unwrap()))
        .collect()
}

#[test]
fn a_cut_and_a_rewrite_that_the_chain_alone_misses_are_caught_and_located() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, key, signed) = signed_log(tmp.path());
    let last = signed.last().unwrap();
    assert_eq!(last.checkpoint().size(), 3_000);

    // 1. A cut at a record boundary: the newest segment removed. The chain alone accepts it.
    let cut = tmp.path().join("cut");
    auditring_testkit::slots::copy_dir(&dir, &cut);
    let files = segment_files(&cut);
    let (newest, _) = files.iter().next_back().unwrap();
    std::fs::remove_file(cut.join(newest)).unwrap();
    let alone = verify(&cut, VerifyOptions::default()).unwrap();
    assert!(alone.is_ok(), "{:?}", alone.failure);
    let last_seq = alone.last_seq;
    assert!(last_seq < 3_000);
    let failure = verify(&cut, options(&[last], &key))
        .unwrap()
        .failure
        .expect("the cut is caught");
    assert_eq!(
        failure.reason,
        Reason::CheckpointCut {
            size: 3_000,
            last_seq,
            first_missing: last_seq + 1
        }
    );
    assert_eq!(failure.seq, Some(last_seq + 1));
    assert!(failure.file.starts_with(&cut), "{}", failure.file.display());

    // 2. A consistent rewrite of one record, every hash recomputed, the stored tree removed
    //    (as the one who rewrote would). The chain alone accepts it.
    let rewritten = tmp.path().join("rewritten");
    auditring_testkit::slots::copy_dir(&dir, &rewritten);
    let target = 1_234u64;
    rewrite_consistently(&rewritten, target - 1);
    let alone = verify(&rewritten, VerifyOptions::default()).unwrap();
    assert!(alone.is_ok(), "{:?}", alone.failure);
    let all: Vec<&SignedCheckpoint> = signed.iter().collect();
    let report = verify(&rewritten, options(&all, &key)).unwrap();
    let failure = report.failure.expect("the rewrite is caught");
    // Located between the checkpoints around seq 1234: the last one before it agrees, the
    // first one after it does not (one every 500 events, and one at each sealed segment).
    let sizes: Vec<u64> = signed.iter().map(|c| c.checkpoint().size()).collect();
    let before = *sizes.iter().filter(|&&s| s < target).max().unwrap();
    let after = *sizes.iter().find(|&&s| s >= target).unwrap();
    match failure.reason {
        Reason::CheckpointRoot {
            size,
            after: agreed,
            ..
        } => {
            assert_eq!((agreed, size), (before, after), "{failure}");
        }
        other => panic!("{other}"),
    }
    assert_eq!(failure.seq, Some(before + 1));
    let consistent: Vec<u64> = report
        .checkpoints
        .iter()
        .filter(|c| c.consistent)
        .map(|c| c.size)
        .collect();
    assert!(consistent.iter().all(|&s| s < target), "{consistent:?}");
    assert!(consistent.contains(&before), "{consistent:?}");
}

#[test]
fn checkpoints_that_cannot_be_trusted_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, sink) = (tmp.path().join("log"), tmp.path().join("checkpoints"));
    let key = key();
    let signed = write_log(
        &dir,
        600,
        250,
        &key.expose_secret(),
        &sink,
        Durability::None,
    );
    let last = signed.last().unwrap();
    let refused = |options: VerifyOptions<'static>| match verify(&dir, options) {
        Err(Error::Checkpoint(why)) => why,
        other => panic!("{other:?}"),
    };
    // Another key.
    let other = SigningKey::generate("audit.example/test").unwrap();
    let why = refused(
        VerifyOptions::new()
            .trusted_key(other.verifier())
            .checkpoint(last.note()),
    );
    assert!(why.contains("checkpoint 1"), "{why}");
    // No key at all.
    let why = refused(VerifyOptions::new().checkpoint(last.note()));
    assert!(why.contains("no key to trust"), "{why}");
    // A forged size under the real signature.
    let forged = last.note().replacen("\n600\n", "\n599\n", 1);
    assert_ne!(forged, last.note());
    refused(
        VerifyOptions::new()
            .trusted_key(key.verifier())
            .checkpoint(forged),
    );
    // A checkpoint of another log, signed by the trusted key.
    let other_log = tmp.path().join("other");
    let elsewhere = write_log(
        &other_log,
        10,
        5,
        &key.expose_secret(),
        &tmp.path().join("other-checkpoints"),
        Durability::None,
    );
    let why = refused(
        VerifyOptions::new()
            .trusted_key(key.verifier())
            .checkpoint(elsewhere[0].note()),
    );
    assert!(why.contains("not this one"), "{why}");
}

#[test]
fn a_rotated_key_signs_beside_the_old_one() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let (old, new) = (
        SigningKey::generate("audit.example/2025").unwrap(),
        SigningKey::generate("audit.example/2026").unwrap(),
    );
    let seen = Arc::new(Mutex::new(Vec::new()));
    let collect = seen.clone();
    let ring = Ring::builder(&dir)
        .checkpoints(
            Checkpoints::new(old.expose_secret().parse().unwrap())
                .also_signed_by(new.expose_secret().parse().unwrap())
                .origin("audit.example/payments")
                .to_callback(move |c| {
                    collect.lock().unwrap().push(c.clone());
                    Ok(())
                }),
        )
        .open()
        .unwrap();
    ring.push(Event::new("rotated")).unwrap();
    ring.close().unwrap();
    let note = seen.lock().unwrap().last().unwrap().note().to_owned();
    for key in [&old, &new] {
        let report = verify(
            &dir,
            VerifyOptions::new()
                .trusted_key(key.verifier())
                .origin("audit.example/payments")
                .checkpoint(&note),
        )
        .unwrap();
        assert!(report.is_ok(), "{:?}", report.failure);
        assert_eq!(report.checkpoints[0].signed_by, vec![key.name().to_owned()]);
    }
    // The default origin is not this one.
    assert!(matches!(
        verify(
            &dir,
            VerifyOptions::new()
                .trusted_key(new.verifier())
                .checkpoint(&note)
        ),
        Err(Error::Checkpoint(_))
    ));
}

#[test]
fn a_failing_sink_is_reported_at_close_and_the_log_is_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let ring = Ring::builder(&dir)
        .checkpoints(
            Checkpoints::new(key())
                .every_events(2)
                .to_callback(|c| Err(format!("no room for {}", c.checkpoint().size())))
                .to_callback(|_| panic!("a callback that panics")),
        )
        .open()
        .unwrap();
    for _ in 0..5 {
        ring.push(Event::new("sink.fails")).unwrap();
    }
    let err = ring.close().unwrap_err().to_string();
    assert!(err.contains("no room for"), "{err}");
    assert!(verify(&dir, VerifyOptions::default()).unwrap().is_ok());
    // Checkpoints need a sink, and counts that are not zero.
    for bad in [
        Checkpoints::new(key()),
        Checkpoints::new(key()).every_events(0).to_dir(tmp.path()),
        Checkpoints::new(key())
            .every(std::time::Duration::ZERO)
            .to_dir(tmp.path()),
    ] {
        assert!(matches!(
            Ring::builder(tmp.path().join("bad"))
                .checkpoints(bad)
                .open(),
            Err(Error::Config(_))
        ));
    }
}

#[test]
fn checkpoints_are_signed_while_the_ring_runs_under_every_policy() {
    // Not only at close: the tree worker follows the records as they are committed (written,
    // under `Durability::None`), so a checkpoint at 1,000 comes while the ring is open.
    for durability in [Durability::None, Durability::Batch] {
        let tmp = tempfile::tempdir().unwrap();
        let (tx, rx) = crossbeam::channel::unbounded();
        let ring = Ring::builder(tmp.path().join("log"))
            .durability(durability)
            .checkpoints(
                Checkpoints::new(key())
                    .every_events(1_000)
                    .to_callback(move |c| {
                        let _ = tx.send(c.checkpoint().size());
                        Ok(())
                    }),
            )
            .open()
            .unwrap();
        for i in 0..1_500u64 {
            ring.push(
                Event::new("while.open")
                    .with_details_json(format!("{i}"))
                    .unwrap(),
            )
            .unwrap();
        }
        ring.flush().unwrap();
        // A hang guard only: the checkpoint comes within milliseconds.
        let size = rx
            .recv_timeout(std::time::Duration::from_secs(120))
            .expect("a checkpoint while the ring is open");
        assert_eq!(size, 1_000, "{durability:?}");
        assert!(ring.snapshot().len() == 1_500);
        ring.close().unwrap();
        assert_eq!(rx.iter().collect::<Vec<_>>(), vec![1_500], "{durability:?}");
    }
}

/// Rewrites the log in `dir` consistently (one record changed, every hash recomputed, the
/// stored tree removed), as someone who can write the files would.
fn rewrite_consistently(dir: &Path, event: u64) {
    let mut files = segment_files(dir);
    let needle = format!("\"i\":{event}}}");
    let bytes = files
        .values_mut()
        .find(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
        .unwrap();
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle.as_bytes())
        .unwrap();
    bytes[at + 4] = if bytes[at + 4] == b'9' { b'8' } else { b'9' };
    rechain(&mut files);
    for (n, b) in &files {
        std::fs::write(dir.join(n), b).unwrap();
    }
    for e in std::fs::read_dir(dir).unwrap() {
        let n = e.unwrap().file_name().into_string().unwrap();
        if n.contains(".t") {
            std::fs::remove_file(dir.join(n)).unwrap();
        }
    }
}

#[test]
fn an_export_carries_the_proof_that_ties_it_to_a_checkpoint() {
    use auditring::{
        ExportOptions, Reader, Selection, TREE_FILE, VerifyExportOptions, verify_export,
    };
    let tmp = tempfile::tempdir().unwrap();
    let (dir, key, signed) = signed_log(tmp.path());
    let by_size = |n: u64| {
        signed
            .iter()
            .find(|c| c.checkpoint().size() == n)
            .unwrap()
            .note()
            .to_owned()
    };
    let snapshot = Reader::open(&dir).unwrap().snapshot().unwrap();
    let range = Selection::Seqs {
        from: Some(1_001),
        to: Some(2_000),
    };
    let export = |name: &str, note: &str| {
        let out = tmp.path().join(name);
        snapshot
            .export(&out, ExportOptions::new().selection(range).checkpoint(note))
            .map(|_| out)
    };
    let trusting = || VerifyExportOptions::new().trusted_key(key.verifier());

    // Tied to the last checkpoint (size 3000, past the export): the export carries the
    // consistency proof, and the checkpoint it carries is used when none is given.
    let tied = export("tied", &by_size(3_000)).unwrap();
    assert!(tied.join(TREE_FILE).is_file());
    let report = verify_export(&tied, trusting()).unwrap();
    assert!(report.is_ok(), "{:?}", report.failure);
    assert_eq!(report.checkpoints.len(), 1);
    assert!(report.checkpoints[0].consistent && report.checkpoints[0].size == 3_000);
    // Checkpoints within its reach (first seq − 1 to last seq) are checked from its records.
    for n in [1_000, 1_500, 2_000] {
        let report = verify_export(&tied, trusting().checkpoint(by_size(n))).unwrap();
        assert!(report.is_ok(), "{n}: {:?}", report.failure);
    }
    // Out of its reach: before it, or past it without a proof to that size.
    let failure = |options: VerifyExportOptions<'_>| {
        verify_export(&tied, options)
            .unwrap()
            .failure
            .expect("fails")
    };
    assert_eq!(
        failure(trusting().checkpoint(by_size(500))).reason,
        Reason::CheckpointBeforeExport {
            size: 500,
            first_seq: 1_001
        }
    );
    assert_eq!(
        failure(trusting().checkpoint(by_size(2_500))).reason,
        Reason::CheckpointBeyondExport {
            size: 2_500,
            last_seq: 2_000,
            proved: Some(3_000)
        }
    );

    // A tree file tampered with: its prefix, or its proof, no longer leads to the root.
    let text = std::fs::read_to_string(tied.join(TREE_FILE)).unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    for member in ["prefix", "consistency"] {
        let hash = value[member][0].as_str().unwrap();
        let flipped = format!(
            "{}{}",
            &hash[..63],
            if hash.ends_with('0') { "1" } else { "0" }
        );
        std::fs::write(tied.join(TREE_FILE), text.replace(hash, &flipped)).unwrap();
        let f = failure(trusting());
        assert!(
            matches!(
                f.reason,
                Reason::CheckpointRoot {
                    size: 3_000,
                    after: 1_000,
                    ..
                }
            ),
            "{member}: {f}"
        );
        assert_eq!(f.seq, Some(1_001));
    }
    std::fs::write(tied.join(TREE_FILE), &text).unwrap();
    // A tree file for another range, or not a tree file.
    std::fs::write(tied.join(TREE_FILE), text.replace("1001", "1002")).unwrap();
    assert!(matches!(failure(trusting()).reason, Reason::ExportTree(_)));
    std::fs::write(tied.join(TREE_FILE), "{}").unwrap();
    assert!(matches!(failure(trusting()).reason, Reason::ExportTree(_)));
    std::fs::remove_file(tied.join(TREE_FILE)).unwrap();
    let e = verify_export(&tied, trusting()).unwrap_err();
    assert!(matches!(e, auditring::Error::Checkpoint(_)), "{e}");

    // An untrusted key, or a checkpoint of another size the exporter cannot tie.
    let other = SigningKey::generate("audit.example/other").unwrap();
    let e = verify_export(
        export("other-key", &by_size(3_000)).unwrap(),
        VerifyExportOptions::new().trusted_key(other.verifier()),
    )
    .unwrap_err();
    assert!(matches!(e, auditring::Error::Checkpoint(_)), "{e}");
    let e = export("too-small", &by_size(500)).unwrap_err();
    assert!(matches!(e, auditring::Error::Checkpoint(_)), "{e}");

    // A log rewritten consistently: its exporter cannot tie it to the real checkpoint, and an
    // export of it (from seq 1, which needs no tree file) fails against that checkpoint.
    let rewritten = tmp.path().join("rewritten");
    auditring_testkit::slots::copy_dir(&dir, &rewritten);
    rewrite_consistently(&rewritten, 1_233);
    let snapshot = Reader::open(&rewritten).unwrap().snapshot().unwrap();
    let e = snapshot
        .export(
            tmp.path().join("refused"),
            ExportOptions::new().checkpoint(by_size(3_000)),
        )
        .unwrap_err();
    assert!(matches!(e, auditring::Error::Checkpoint(_)), "{e}");
    let plain = tmp.path().join("plain");
    snapshot.export(&plain, ExportOptions::new()).unwrap();
    assert!(
        verify_export(&plain, VerifyExportOptions::new())
            .unwrap()
            .is_ok()
    );
    let f = verify_export(&plain, trusting().checkpoint(by_size(1_000))).unwrap();
    assert!(
        f.is_ok(),
        "the records before the change agree: {:?}",
        f.failure
    );
    let f = verify_export(&plain, trusting().checkpoint(by_size(1_500)))
        .unwrap()
        .failure
        .expect("the rewrite is caught");
    assert!(
        matches!(
            f.reason,
            Reason::CheckpointRoot {
                size: 1_500,
                after: 0,
                ..
            }
        ),
        "{f}"
    );
}
