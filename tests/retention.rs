//! Retention: a log kept to a number of segments, bytes or an age, pruned audibly, never
//! silently while no export covers what it removes (unless asked), and verifiable afterwards.

use std::path::Path;
use std::time::Duration;

use auditring::{
    Encoding, Event, ExportOptions, PRUNED_KIND, PushError, Query, Reason, Retention, Ring,
    Selection, Unexported, VerifyExportOptions, verify, verify_export,
};

const SEGMENT: u64 = 64 * 1024;

fn event(i: u64) -> Event {
    Event::new("plan.applied")
        .with_actor(format!("user-{}", i % 13))
        .with_trace_id(format!("{i:032x}"))
        .with_details(&serde_json::json!({ "i": i, "plan": "x".repeat(100) }))
        .unwrap()
}

fn ring(dir: &Path, retention: Retention) -> Ring {
    Ring::builder(dir)
        .segment_size(SEGMENT)
        .retention(retention)
        .open()
        .unwrap()
}

/// Every record of the log, with the user's events (seq, `i`) and the prune records apart.
fn contents(ring: &Ring) -> (Vec<u64>, Vec<serde_json::Value>) {
    let snap = ring.snapshot();
    let (mut events, mut prunes) = (Vec::new(), Vec::new());
    for (seq, r) in (snap.first_seq()..).zip(snap.iter()) {
        let r = r.unwrap();
        assert_eq!(r.seq, seq, "gapless");
        let details: serde_json::Value =
            serde_json::from_str(r.details.as_deref().unwrap()).unwrap();
        if r.kind == PRUNED_KIND {
            prunes.push(details);
        } else {
            events.push(details["i"].as_u64().unwrap());
        }
    }
    (events, prunes)
}

fn segment_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| {
            std::path::Path::new(n)
                .extension()
                .is_some_and(|e| e == "seg")
        })
        .collect();
    names.sort();
    names
}

#[test]
fn remove_keeps_at_most_n_sealed_segments_and_the_log_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let ring = ring(
        dir.path(),
        Retention::new()
            .max_segments(2)
            .unexported(Unexported::Remove),
    );
    for i in 0..1000 {
        ring.push(event(i)).unwrap();
    }
    ring.flush().unwrap();
    // A reader's view taken now keeps reading what is pruned after it.
    let old = ring.snapshot();
    let old_records: Vec<_> = old.iter().map(Result::unwrap).collect();
    for i in 1000..5000 {
        ring.push(event(i)).unwrap();
    }
    ring.flush().unwrap();
    let pass = ring.apply_retention().unwrap();
    assert!(!pass.held);

    let snap = ring.snapshot();
    let segments = snap.segments().unwrap();
    assert!(
        segments.iter().filter(|s| s.sealed).count() <= 2,
        "{segments:?}"
    );
    // The files: those of the view, and perhaps the next segment, prepared ahead of time.
    let files = segment_files(dir.path());
    let first_file = segments[0].path.file_name().unwrap().to_string_lossy();
    assert_eq!(files[0], first_file);
    assert!(files.len() <= segments.len() + 1, "{files:?}");
    assert!(
        snap.first_seq() > old.first_seq() + 500,
        "pruned past the old view"
    );
    // The old view still reads everything it held, from files now removed.
    let again: Vec<_> = old.iter().map(Result::unwrap).collect();
    assert_eq!(again, old_records);
    assert_eq!(
        old.get(old.first_seq()).unwrap(),
        old_records.first().cloned()
    );

    // The prune records say what went, and the log starts where the last one says.
    let (events, prunes) = contents(&ring);
    assert!(!prunes.is_empty());
    let last = prunes.last().unwrap();
    assert_eq!(last["last_seq"].as_u64().unwrap() + 1, snap.first_seq());
    assert_eq!(last["head"].as_str().unwrap(), snap.anchor().to_string());
    assert_eq!(last["reason"], "max_segments");
    assert!(last["exported_to"].is_null());
    for p in &prunes {
        assert!(!p["segments"].as_array().unwrap().is_empty());
    }
    // The user's events that are left are the newest, all of them, in order.
    let first_kept = *events.first().unwrap();
    assert_eq!(events, (first_kept..5000).collect::<Vec<_>>());

    ring.close().unwrap();
    let report = verify(dir.path(), auditring::VerifyOptions::default()).unwrap();
    assert!(report.is_ok(), "{:?}", report.failure);
    assert_eq!(report.first_seq, snap.first_seq());

    // Reopened, the log goes on from where it was.
    let ring = Ring::builder(dir.path())
        .segment_size(SEGMENT)
        .open()
        .unwrap();
    assert_eq!(ring.snapshot().first_seq(), snap.first_seq());
    let r = ring.push_receipt(event(5000)).unwrap();
    assert_eq!(r.seq, snap.head_seq() + 1);
    ring.close().unwrap();
    assert!(
        verify(dir.path(), auditring::VerifyOptions::default())
            .unwrap()
            .is_ok()
    );
}

#[test]
fn segments_removed_by_hand_are_detected() {
    let dir = tempfile::tempdir().unwrap();
    let ring = ring(dir.path(), Retention::new());
    for i in 0..2000 {
        ring.push(event(i)).unwrap();
    }
    ring.close().unwrap();
    let files = segment_files(dir.path());
    assert!(files.len() >= 4);
    // Without retention, the oldest segment cut away: no prune record justifies the start.
    std::fs::remove_file(dir.path().join(&files[0])).unwrap();
    let report = verify(dir.path(), auditring::VerifyOptions::default()).unwrap();
    let failure = report.failure.expect("detected");
    assert!(
        matches!(failure.reason, Reason::Unpruned { .. }),
        "{failure}"
    );
    assert_eq!(failure.file, dir.path().join(&files[1]));
    assert_eq!(failure.seq, Some(report.first_seq));
    assert!(report.first_seq > 1);
}

#[test]
fn removing_more_than_retention_did_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let ring = ring(
        dir.path(),
        Retention::new()
            .max_segments(2)
            .unexported(Unexported::Remove),
    );
    for i in 0..3000 {
        ring.push(event(i)).unwrap();
    }
    ring.flush().unwrap();
    ring.apply_retention().unwrap();
    ring.close().unwrap();
    assert!(
        verify(dir.path(), auditring::VerifyOptions::default())
            .unwrap()
            .is_ok()
    );
    let files = segment_files(dir.path());
    std::fs::remove_file(dir.path().join(&files[0])).unwrap();
    let failure = verify(dir.path(), auditring::VerifyOptions::default())
        .unwrap()
        .failure
        .expect("detected");
    assert!(
        matches!(failure.reason, Reason::Unpruned { .. }),
        "{failure}"
    );
}

#[test]
fn export_to_archives_each_pruned_range_as_a_linked_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let archive = dir.path().join("archive");
    let ring = ring(
        &log,
        Retention::new()
            .max_segments(1)
            .unexported(Unexported::ExportTo(archive.clone())),
    );
    for i in 0..4000 {
        ring.push(event(i)).unwrap();
    }
    ring.flush().unwrap();
    let pass = ring.apply_retention().unwrap();
    let snap = ring.snapshot();
    assert!(snap.first_seq() > 1);
    assert!(!pass.held);

    let mut bundles: Vec<_> = std::fs::read_dir(&archive)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    bundles.sort();
    assert!(!bundles.is_empty());
    // The bundles are a chain: from the log's origin to the pruned log's anchor, no gap.
    let mut next = (1, auditring::Hash::ZERO);
    for b in &bundles {
        let report = verify_export(b, VerifyExportOptions::default()).unwrap();
        assert!(report.is_ok(), "{}: {:?}", b.display(), report.failure);
        let m = report.manifest.unwrap();
        assert_eq!((m.first_seq, m.anchor), next);
        assert_eq!(m.encoding, Encoding::Bundle);
        next = (m.last_seq + 1, m.head);
    }
    assert_eq!(next, (snap.first_seq(), snap.anchor()));
    let (_, prunes) = contents(&ring);
    assert!(prunes.iter().all(|p| p["exported_to"].is_string()));
    ring.close().unwrap();
    assert!(
        verify(&log, auditring::VerifyOptions::default())
            .unwrap()
            .is_ok()
    );
}

#[test]
fn wait_holds_the_log_until_an_export_covers_it_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let ring = Ring::builder(&log)
        .segment_size(SEGMENT)
        .queue_capacity(64)
        .retention(Retention::new().max_segments(1))
        .open()
        .unwrap();
    let mut pushed = 0u64;
    let held_at = fill_until_held(&ring, &mut pushed);
    // Held: once the queue is full again, not one more segment was started.
    fill(&ring, &mut pushed);
    let snap = ring.snapshot();
    assert!(
        snap.segment_count() <= held_at + 1,
        "{} > {held_at} + 1",
        snap.segment_count()
    );
    assert!(ring.apply_retention().unwrap().held);
    assert_eq!(snap.first_seq(), 1, "nothing pruned without an export");

    // An export of everything so far releases it; the covered segments are pruned.
    snap.export(dir.path().join("export"), ExportOptions::default())
        .unwrap();
    ring.apply_retention().unwrap();
    assert!(ring.snapshot().first_seq() > 1);
    // Producers move again: push more than fits, through further holds and exports.
    let producer = ring.producer();
    let total = pushed + 3000;
    let writer = std::thread::spawn(move || {
        for i in pushed..total {
            producer.push(event(i)).unwrap();
        }
    });
    let mut exports = 0;
    while !writer.is_finished() || ring.retention_held() {
        let pass = ring.apply_retention().unwrap();
        if pass.held {
            let snap = ring.snapshot();
            let out = dir.path().join(format!("export-{exports}"));
            let options = ExportOptions::new().selection(Selection::Seqs {
                from: Some(snap.first_seq()),
                to: None,
            });
            snap.export(&out, options).unwrap();
            exports += 1;
        }
    }
    writer.join().unwrap();
    ring.flush().unwrap();
    // Every event is in the log or in an export, in order, once.
    let (kept, prunes) = contents(&ring);
    assert!(!prunes.is_empty());
    let first_kept = kept[0];
    assert_eq!(kept, (first_kept..total).collect::<Vec<_>>());
    // A prune record names the export that covers its range, where one export does (the
    // last one here spans several, and names none).
    let exports_dir = dir.path().to_str().unwrap();
    assert!(
        prunes.iter().all(|p| p["exported_to"].is_null()
            || p["exported_to"]
                .as_str()
                .is_some_and(|to| to.starts_with(exports_dir) && !to.ends_with("log"))),
        "{prunes:?}"
    );
    ring.close().unwrap();
    assert!(
        verify(&log, auditring::VerifyOptions::default())
            .unwrap()
            .is_ok()
    );
}

/// Pushes until the queue is full.
fn fill(ring: &Ring, pushed: &mut u64) {
    loop {
        match ring.try_push(event(*pushed)) {
            Ok(()) => *pushed += 1,
            Err(PushError::Full(_)) => return,
            Err(e) => panic!("{e}"),
        }
        assert!(*pushed < 20_000, "never held: the log grew past its limit");
    }
}

/// Pushes until retention holds the log; returns its segment count then.
fn fill_until_held(ring: &Ring, pushed: &mut u64) -> usize {
    loop {
        fill(ring, pushed);
        if ring.apply_retention().unwrap().held {
            assert!(ring.retention_held());
            return ring.snapshot().segment_count();
        }
    }
}

#[test]
fn close_while_held_drains_everything() {
    let dir = tempfile::tempdir().unwrap();
    let ring = Ring::builder(dir.path())
        .segment_size(SEGMENT)
        .queue_capacity(32)
        .retention(Retention::new().max_segments(0))
        .open()
        .unwrap();
    let mut pushed = 0u64;
    fill_until_held(&ring, &mut pushed);
    fill(&ring, &mut pushed);
    ring.close().unwrap();
    let report = verify(dir.path(), auditring::VerifyOptions::default()).unwrap();
    assert!(report.is_ok());
    assert_eq!((report.first_seq, report.events), (1, pushed));
}

#[test]
fn max_bytes_bounds_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let limit = 5 * SEGMENT;
    let ring = ring(
        dir.path(),
        Retention::new()
            .max_bytes(limit)
            .unexported(Unexported::Remove),
    );
    for i in 0..6000 {
        ring.push(event(i)).unwrap();
    }
    ring.flush().unwrap();
    ring.apply_retention().unwrap();
    let segments = ring.snapshot().segments().unwrap();
    let bytes: u64 = segments.iter().map(|s| s.file_bytes).sum();
    assert!(bytes <= limit, "{bytes} > {limit}");
    assert!(segments.len() >= 4, "keeps what the limit allows");
    let (_, prunes) = contents(&ring);
    assert_eq!(prunes.last().unwrap()["reason"], "max_bytes");
    ring.close().unwrap();
    assert!(
        verify(dir.path(), auditring::VerifyOptions::default())
            .unwrap()
            .is_ok()
    );
}

#[test]
fn max_age_prunes_segments_whose_events_are_all_older() {
    let dir = tempfile::tempdir().unwrap();
    let ring = ring(
        dir.path(),
        Retention::new()
            .max_age(Duration::from_secs(3600))
            .unexported(Unexported::Remove),
    );
    let two_hours_ago = std::time::SystemTime::now() - Duration::from_secs(7200);
    for i in 0..2000 {
        ring.push(event(i).with_timestamp(two_hours_ago).unwrap())
            .unwrap();
    }
    for i in 2000..3000 {
        ring.push(event(i)).unwrap();
    }
    ring.flush().unwrap();
    ring.apply_retention().unwrap();
    // What is left: at most one segment's worth of old events, then every recent one.
    let (kept, prunes) = contents(&ring);
    assert_eq!(prunes.last().unwrap()["reason"], "max_age");
    assert!(kept[0] > 1000 && kept[0] <= 2000, "{}", kept[0]);
    let last_pruned = prunes.last().unwrap()["last_seq"].as_u64().unwrap();
    assert!(last_pruned < 2000);
    assert_eq!(*kept.last().unwrap(), 2999);
    let young = ring.snapshot().query(
        &Query::new().since(
            (std::time::SystemTime::now() - Duration::from_secs(3600))
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as i64,
        ),
    );
    assert_eq!(
        young
            .unwrap()
            .iter()
            .filter(|r| r.kind != PRUNED_KIND)
            .count(),
        1000
    );
    ring.close().unwrap();
    assert!(
        verify(dir.path(), auditring::VerifyOptions::default())
            .unwrap()
            .is_ok()
    );
}

#[test]
fn a_removal_interrupted_by_a_crash_still_verifies_and_is_finished_later() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let first = ring(&log, Retention::new());
    for i in 0..2000 {
        first.push(event(i)).unwrap();
    }
    first.close().unwrap();
    let backup = dir.path().join("backup");
    std::fs::create_dir(&backup).unwrap();
    for name in segment_files(&log) {
        std::fs::copy(log.join(&name), backup.join(&name)).unwrap();
    }
    // Reopened with a limit: everything is past it but nothing exported, so the log is held.
    let held = ring(&log, Retention::new().max_segments(1));
    assert!(held.apply_retention().unwrap().held);
    held.snapshot()
        .export(dir.path().join("export"), ExportOptions::default())
        .unwrap();
    let pass = held.apply_retention().unwrap();
    assert!(pass.pruned_segments >= 3, "{pass:?}");
    let (_, prunes) = contents(&held);
    let removed: Vec<String> = serde_json::from_value(prunes[0]["segments"].clone()).unwrap();
    held.close().unwrap();
    assert!(
        verify(&log, auditring::VerifyOptions::default())
            .unwrap()
            .is_ok()
    );

    // The crash left the newest files of the prune: the log starts at one of them, verifies,
    // and the next writer prunes them.
    let restore = |names: &[String]| {
        for n in names {
            std::fs::copy(backup.join(n), log.join(n)).unwrap();
        }
    };
    restore(&removed[removed.len() - 2..]);
    let report = verify(&log, auditring::VerifyOptions::default()).unwrap();
    assert!(report.is_ok(), "{:?}", report.failure);
    // Not a suffix of the removal: a gap, detected.
    std::fs::remove_file(log.join(&removed[removed.len() - 1])).unwrap();
    let failure = verify(&log, auditring::VerifyOptions::default())
        .unwrap()
        .failure
        .expect("a gap");
    assert!(
        matches!(failure.reason, Reason::MissingSegment(_)),
        "{failure}"
    );
    restore(&removed[removed.len() - 1..]);

    let last = ring(
        &log,
        Retention::new()
            .max_segments(1)
            .unexported(Unexported::Remove),
    );
    last.apply_retention().unwrap();
    let files = segment_files(&log);
    assert!(removed.iter().all(|n| !files.contains(n)), "{files:?}");
    last.close().unwrap();
    assert!(
        verify(&log, auditring::VerifyOptions::default())
            .unwrap()
            .is_ok()
    );
}

/// A retention thread far behind (a ring reopened with a limit over a large log; a tree worker
/// or an export that held it on a busy machine) prunes the backlog with several prune records.
/// One record naming them all would be larger than a segment: this many names did not fit in
/// one, and it was written past the segment's end.
#[test]
fn a_backlog_of_thousands_of_segments_is_pruned_in_records_that_fit_a_segment() {
    let dir = tempfile::tempdir().unwrap();
    const SEGMENTS: u64 = 2600;
    {
        let ring = Ring::builder(dir.path())
            .segment_size(SEGMENT)
            .durability(auditring::Durability::None)
            .open()
            .unwrap();
        let mut i = 0;
        while segment_files(dir.path()).len() < SEGMENTS as usize {
            for _ in 0..10_000 {
                ring.push(event(i)).unwrap();
                i += 1;
            }
        }
        ring.close().unwrap();
    }
    let ring = ring(
        dir.path(),
        Retention::new()
            .max_segments(3)
            .unexported(Unexported::Remove),
    );
    ring.apply_retention().unwrap();
    ring.flush().unwrap();
    let snap = ring.snapshot();
    let segments = snap.segments().unwrap();
    assert!(
        segments.iter().filter(|s| s.sealed).count() <= 3,
        "{} segments left",
        segments.len()
    );
    let (_, prunes) = contents(&ring);
    let named: Vec<usize> = prunes
        .iter()
        .map(|p| p["segments"].as_array().unwrap().len())
        .collect();
    assert!(named.iter().all(|&n| n <= 256), "{named:?}");
    assert!(named.len() >= 10, "{named:?}");
    let report = verify(dir.path(), auditring::VerifyOptions::default()).unwrap();
    assert!(report.is_ok(), "{report:?}");
}

/// Records kept elsewhere by other means (shipped to object storage, archived) are marked so
/// from a reader: a ring that waits for exports prunes them, and its prune records name where
/// they are.
#[test]
fn records_marked_as_kept_elsewhere_are_pruned_naming_where() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let ring = Ring::builder(&log)
        .segment_size(SEGMENT)
        .queue_capacity(64)
        .retention(Retention::new().max_segments(1))
        .open()
        .unwrap();
    let mut pushed = 0u64;
    fill_until_held(&ring, &mut pushed);
    let reader = auditring::Reader::open(&log).unwrap();
    let snap = reader.snapshot().unwrap();
    let sealed: Vec<_> = snap
        .segments()
        .unwrap()
        .into_iter()
        .filter(|s| s.sealed)
        .collect();
    let last = sealed.last().unwrap().last_seq;
    // A range that would leave a gap is not recorded: still held.
    snap.mark_exported(2, last, "s3://audit/host-a").unwrap();
    assert!(ring.apply_retention().unwrap().held);
    snap.mark_exported(1, last, "s3://audit/host-a").unwrap();
    // (The retention thread may prune before this pass does.)
    ring.apply_retention().unwrap();
    ring.flush().unwrap();
    assert!(ring.snapshot().first_seq() > 1);
    let (_, prunes) = contents(&ring);
    assert!(!prunes.is_empty());
    for p in &prunes {
        assert_eq!(p["exported_to"], "s3://audit/host-a", "{p}");
        assert!(p["last_seq"].as_u64().unwrap() <= last);
    }
    // Outside the snapshot: an error naming the range, not a silent no-op.
    assert!(
        snap.mark_exported(1, snap.head_seq() + 1, "s3://x")
            .is_err()
    );
    ring.close().unwrap();
    assert!(
        verify(&log, auditring::VerifyOptions::default())
            .unwrap()
            .is_ok()
    );
}
