//! Crashes, torn tails, failed syncs, a full disk, and what reopening costs.

use std::sync::atomic::Ordering;

use auditring::storage::{MemStorage, Storage};
use auditring::{
    Durability, Error, Event, EventError, PushError, Reader, Receipt, RecordWrites, Ring,
};
use auditring_testkit::faults::{Faults, FaultyStorage};

fn event(i: u64) -> Event {
    Event::new("test.event")
        .with_actor(format!("actor-{}", i % 7))
        .with_details(&serde_json::json!({ "i": i, "pad": "x".repeat((i % 50) as usize) }))
        .unwrap()
}

fn check_receipts(storage: &MemStorage, receipts: &[Receipt]) {
    let snap = Reader::with_storage(storage.clone()).snapshot().unwrap();
    for r in receipts {
        let got = snap
            .get(r.seq)
            .unwrap()
            .unwrap_or_else(|| panic!("seq {} lost", r.seq));
        assert_eq!(got.chain, r.chain, "seq {}", r.seq);
    }
}

#[test]
fn every_crash_image_keeps_every_receipted_event() {
    let mem = MemStorage::new("crash");
    let ring = Ring::with_storage(mem.clone())
        .segment_size(64 * 1024)
        .durability(Durability::Batch)
        .open()
        .unwrap();
    let mut receipts = Vec::new();
    for i in 0..600 {
        receipts.push(ring.push_receipt(event(i)).unwrap());
        assert!(receipts[i as usize].durable);
        // What the disk holds right now, had the power gone off.
        if i % 7 == 0 {
            let image = mem.crash_image();
            let report =
                auditring::verify_storage(&image, auditring::VerifyOptions::default()).unwrap();
            assert!(report.is_ok(), "after {i}: {:?}", report.failure);
            check_receipts(&image, &receipts);
            // Recovery opens it, keeps everything, and the chain goes on.
            let reopened = Ring::with_storage(image.clone()).open().unwrap();
            let next = reopened.push_receipt(event(10_000)).unwrap();
            assert_eq!(next.seq, reopened.snapshot().head_seq());
            reopened.close().unwrap();
            assert!(
                auditring::verify_storage(&image, auditring::VerifyOptions::default())
                    .unwrap()
                    .is_ok()
            );
            check_receipts(&image, &receipts);
        }
    }
    ring.close().unwrap();
}

#[test]
fn sequencing_goes_on_while_a_group_commit_syncs() {
    let mem = MemStorage::new("overlap");
    let faults = Faults::new();
    let (entered_tx, entered) = crossbeam::channel::unbounded();
    let (release, release_rx) = crossbeam::channel::unbounded();
    let ring = Ring::with_storage(FaultyStorage::new(mem, faults.clone()))
        .durability(Durability::Batch)
        .open()
        .unwrap();
    // From now on (opening syncs too), every sync waits for `release`.
    *faults.sync_gate.lock().unwrap() = Some((entered_tx, release_rx));
    let first = ring.push_tracked(event(0)).unwrap();
    // The committer is now inside the sync of the first batch, held there.
    entered.recv().unwrap();
    let pending: Vec<_> = (1..=100)
        .map(|i| ring.push_tracked(event(i)).unwrap())
        .collect();
    // Wait until the sequencer has sequenced all of them: it does not wait for the sync.
    while ring.snapshot().head_seq() < 101 {
        std::thread::yield_now();
    }
    assert!(
        first.try_get().is_none(),
        "no receipt before its sync completes"
    );
    assert!(pending.iter().all(|p| p.try_get().is_none()));
    // Let every sync through.
    *faults.sync_gate.lock().unwrap() = None;
    release.send(()).unwrap();
    let r = first.wait().unwrap();
    assert!(r.durable && r.seq == 1);
    for (i, p) in pending.into_iter().enumerate() {
        let r = p.wait().unwrap();
        assert_eq!(r.seq, i as u64 + 2);
        assert!(r.durable);
    }
    ring.close().unwrap();
}

#[test]
fn a_torn_tail_is_reported_by_verify_and_trimmed_by_recovery() {
    let mem = MemStorage::new("torn");
    let ring = Ring::with_storage(mem.clone())
        .durability(Durability::Batch)
        .open()
        .unwrap();
    let receipts: Vec<Receipt> = (0..50)
        .map(|i| ring.push_receipt(event(i)).unwrap())
        .collect();
    let image = mem.crash_image();
    ring.close().unwrap();
    // Half a record after the last durable one, as a crash in the middle of a write leaves it.
    let name = "0000000000000001.seg";
    let mut bytes = image.read_file(name).unwrap();
    assert_eq!(
        Reader::with_storage(image.clone())
            .snapshot()
            .unwrap()
            .head_seq(),
        50
    );
    let mut end = u64::from_le_bytes(bytes[32..40].try_into().unwrap()) as usize;
    while &bytes[end..end + 4] == b"AREC" {
        let body = u32::from_le_bytes(bytes[end + 4..end + 8].try_into().unwrap()) as usize;
        end += (80 + body + 7) & !7;
    }
    bytes[end..end + 4].copy_from_slice(b"AREC");
    bytes[end + 4..end + 60].fill(0x5a);
    image.write_file(name, bytes);

    let report = auditring::verify_storage(&image, auditring::VerifyOptions::default()).unwrap();
    assert!(
        report.is_ok(),
        "a torn tail is not a failure: {:?}",
        report.failure
    );
    let torn = report.torn_tail.expect("reported");
    assert_eq!(torn.offset, end as u64);
    assert_eq!(torn.len, 60);
    assert_eq!(torn.after_seq, 50);

    let ring = Ring::with_storage(image.clone()).open().unwrap();
    let rec = ring.recovery().clone();
    assert_eq!(rec.torn_tail.as_ref().map(|t| t.offset), Some(end as u64));
    assert!(!rec.clean);
    let next = ring.push_receipt(event(99)).unwrap();
    assert_eq!(next.seq, 51);
    ring.close().unwrap();
    let report = auditring::verify_storage(&image, auditring::VerifyOptions::default()).unwrap();
    assert!(report.is_ok() && report.torn_tail.is_none(), "{report:?}");
    check_receipts(&image, &receipts);
}

#[test]
fn records_written_after_the_last_commit_are_recovered() {
    let mem = MemStorage::new("uncommitted");
    let ring = Ring::with_storage(mem.clone()).open().unwrap();
    for i in 0..1000 {
        ring.push(event(i)).unwrap();
    }
    ring.flush().unwrap();
    // The process dies here: what it wrote is in the page cache (the live bytes), but no commit
    // slot names it.
    let live = MemStorage::new("after-kill");
    for name in mem.list().unwrap() {
        live.write_file(&name, mem.read_file(&name).unwrap());
    }
    std::mem::forget(ring);
    let ring = Ring::with_storage(live.clone()).open().unwrap();
    assert_eq!(ring.recovery().recovered, 1000);
    assert!(!ring.recovery().clean);
    assert_eq!(ring.snapshot().head_seq(), 1000);
    ring.close().unwrap();
    // Reopened after a clean close: nothing to examine past the commit.
    let ring = Ring::with_storage(live.clone()).open().unwrap();
    assert!(ring.recovery().clean);
    assert_eq!(ring.recovery().recovered, 0);
    ring.close().unwrap();
    assert!(
        auditring::verify_storage(&live, auditring::VerifyOptions::default())
            .unwrap()
            .is_ok()
    );
}

#[test]
fn a_log_copied_while_its_writer_runs_verifies_and_reopens() {
    let mem = MemStorage::new("live");
    // Batch: a flush returns once the full segments are sealed too, so nothing changes while
    // the files are copied one by one (under None the committer seals in the background, and a
    // copy could take one segment before its seal and the next after its own).
    let ring = Ring::with_storage(mem.clone())
        .segment_size(64 * 1024)
        .durability(Durability::Batch)
        .open()
        .unwrap();
    // Into the fourth segment, past its half: the fifth is created ahead of time.
    let mut pushed = 0;
    while mem.list().unwrap().len() < 5 {
        ring.push(event(pushed)).unwrap();
        pushed += 1;
        if pushed % 100 == 0 {
            ring.flush().unwrap();
        }
    }
    ring.flush().unwrap();
    // What a killed writer leaves: the live bytes of every file.
    let copy = MemStorage::new("copy");
    for name in mem.list().unwrap() {
        copy.write_file(&name, mem.read_file(&name).unwrap());
    }
    let report = auditring::verify_storage(&copy, auditring::VerifyOptions::default()).unwrap();
    assert!(report.is_ok(), "{:?}", report.failure);
    assert_eq!(report.events, pushed);
    assert_eq!(
        Reader::with_storage(copy.clone()).snapshot().unwrap().len(),
        pushed
    );
    let reopened = Ring::with_storage(copy.clone()).open().unwrap();
    assert_eq!(reopened.snapshot().head_seq(), pushed);
    reopened.close().unwrap();
    assert!(
        auditring::verify_storage(&copy, auditring::VerifyOptions::default())
            .unwrap()
            .is_ok()
    );
    ring.close().unwrap();
}

#[test]
fn a_failed_sync_poisons_the_ring() {
    let mem = MemStorage::new("poison");
    let faults = Faults::new();
    let ring = Ring::with_storage(FaultyStorage::new(mem.clone(), faults.clone()))
        .durability(Durability::Batch)
        .open()
        .unwrap();
    let mut receipts = Vec::new();
    for i in 0..20 {
        receipts.push(ring.push_receipt(event(i)).unwrap());
    }
    faults.syncs_until_failure.store(0, Ordering::SeqCst);
    let failed = ring.push_receipt(event(20));
    assert!(matches!(failed, Err(Error::Poisoned { .. })), "{failed:?}");
    // From now on, everything fails, and pushes hand the event back.
    match ring.push(event(21)) {
        Err(PushError::Failed {
            event: e,
            source: Error::Poisoned { .. },
        }) => {
            assert_eq!(e, event(21));
        }
        other => panic!("expected a poisoned push, got {other:?}"),
    }
    assert!(matches!(ring.flush(), Err(Error::Poisoned { .. })));
    assert!(matches!(ring.close(), Err(Error::Poisoned { .. })));
    // What was acknowledged as durable is there.
    let image = mem.crash_image();
    assert!(
        auditring::verify_storage(&image, auditring::VerifyOptions::default())
            .unwrap()
            .is_ok()
    );
    check_receipts(&image, &receipts);
    let reopened = Ring::with_storage(image).open().unwrap();
    assert!(reopened.snapshot().head_seq() >= 20);
    reopened.close().unwrap();
}

#[test]
fn a_full_disk_stalls_the_ring_and_hands_events_back_without_losing_any() {
    let mem = MemStorage::new("full-disk");
    let faults = Faults::new();
    let ring = Ring::with_storage(FaultyStorage::new(mem.clone(), faults.clone()))
        .segment_size(64 * 1024)
        .open()
        .unwrap();
    faults.disk_full.store(true, Ordering::SeqCst);
    let mut accepted = 0u64;
    let refused = loop {
        match ring.push(event(accepted)) {
            Ok(()) => accepted += 1,
            Err(PushError::Failed {
                event: e,
                source: Error::Io { source, context },
            }) => {
                assert_eq!(source.raw_os_error(), Some(28), "{context}");
                assert!(context.contains("creating"), "{context}");
                break e;
            }
            Err(e) => panic!("unexpected {e}"),
        }
        assert!(accepted < 1_000_000, "never stalled");
    };
    assert_eq!(refused, event(accepted));
    assert!(
        matches!(ring.flush(), Err(Error::Io { .. })),
        "flush reports the stall"
    );
    // Space comes back: the ring resumes on its next retry, and the events accepted before are
    // all written.
    faults.disk_full.store(false, Ordering::SeqCst);
    while let Err(e) = ring.flush() {
        assert!(matches!(e, Error::Io { .. }), "{e}");
        std::thread::yield_now();
    }
    ring.push(refused).unwrap();
    accepted += 1;
    ring.close().unwrap();
    let snap = Reader::with_storage(mem.clone()).snapshot().unwrap();
    assert_eq!(snap.len(), accepted);
    for (i, r) in snap.iter().enumerate() {
        let r = r.unwrap();
        assert_eq!(r.details, event(i as u64).details_json().map(str::to_owned));
    }
    assert!(
        auditring::verify_storage(&mem, auditring::VerifyOptions::default())
            .unwrap()
            .is_ok()
    );
}

#[test]
fn invalid_events_are_handed_back() {
    let mem = MemStorage::new("invalid");
    let ring = Ring::with_storage(mem).max_event_size(1024).open().unwrap();
    let big = Event::new("big").with_details(&"x".repeat(2000)).unwrap();
    match ring.push(big.clone()) {
        Err(PushError::Invalid {
            event,
            source: EventError::TooLarge { len, max },
        }) => {
            assert_eq!(event, big);
            assert!(len > 2000);
            assert_eq!(max, 1024);
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    for bad in [Event::new(""), Event::new("auditring.pruned")] {
        let err = ring.try_push(bad.clone()).unwrap_err();
        assert!(matches!(err, PushError::Invalid { .. }), "{err}");
        assert_eq!(err.into_event(), bad);
    }
    assert_eq!(ring.snapshot().len(), 0);
    ring.close().unwrap();
}

/// Bytes read while opening a cleanly closed log of `events` events, and closing it, with or
/// without the Merkle tree.
fn bytes_read_by_reopen(events: u64, tree: bool) -> (u64, usize) {
    let mem = MemStorage::new("reopen");
    let ring = Ring::with_storage(mem.clone())
        .segment_size(64 * 1024)
        .merkle_tree(tree)
        .open()
        .unwrap();
    for i in 0..events {
        ring.push(event(i)).unwrap();
    }
    ring.close().unwrap();
    let segments = mem.list().unwrap().len();
    let faults = Faults::new();
    let ring = Ring::with_storage(FaultyStorage::new(mem, faults.clone()))
        .merkle_tree(tree)
        .open()
        .unwrap();
    assert_eq!(ring.snapshot().head_seq(), events);
    ring.close().unwrap();
    (faults.bytes_read.load(Ordering::SeqCst), segments)
}

#[test]
fn reopening_reads_the_same_few_bytes_whatever_the_log_size() {
    let (small, small_segments) = bytes_read_by_reopen(1_000, false);
    let (large, large_segments) = bytes_read_by_reopen(40_000, false);
    assert!(
        large_segments > 10 * small_segments,
        "{small_segments} vs {large_segments}"
    );
    // Three header pages and at most two index strides of records.
    assert!(small < 64 * 1024, "{small}");
    assert!(large < 64 * 1024, "{large}");
    assert!(large <= small + 16 * 1024, "{small} vs {large}");
}

#[test]
fn the_tree_worker_resumes_from_a_bounded_number_of_bytes() {
    // Besides the ring's own reads: bisecting each stratum for its written prefix (O(log n)
    // entries), the frontier from stored entries (a stratum's newest entry is hashed again
    // from its 256 records, as readers do), and the records of the last incomplete 256-record
    // tile. Bounded whatever the log size.
    let (small, _) = bytes_read_by_reopen(1_000, true);
    let (large, _) = bytes_read_by_reopen(40_000, true);
    let (without, _) = bytes_read_by_reopen(40_000, false);
    // Two tiles of 256 records of `event` (under 600 bytes each), tiles of entries, and the
    // reader's reads a little past them.
    assert!(
        large <= without + 2 * 256 * 600 + 64 * 1024,
        "{without} vs {large}"
    );
    assert!(large <= small + 16 * 1024, "{small} vs {large}");
}

/// Runs `f` on a thread and returns its result; a guard against a hang, not a timing condition:
/// the bound is minutes, where the operation takes milliseconds.
fn returns<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = crossbeam::channel::bounded(1);
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(std::time::Duration::from_secs(300))
        .unwrap_or_else(|_| panic!("{what} did not return"))
}

/// Pushes `N` events (some tracked) into a ring whose next segment cannot be created, while its
/// creation is held back (so that every push returns `Ok` and the events are still queued when
/// the stall begins). Returns the ring, the storage behind it and the tracked receipts.
fn ring_stalled_with_queued_events(
    n: u64,
    name: &str,
) -> (
    std::sync::Arc<Ring>,
    MemStorage,
    Vec<(u64, auditring::PendingReceipt)>,
) {
    let mem = MemStorage::new(name);
    let faults = Faults::new();
    let ring = Ring::with_storage(FaultyStorage::new(mem.clone(), faults.clone()))
        .segment_size(64 * 1024)
        .open()
        .unwrap();
    let (gate, gated) = crossbeam::channel::unbounded::<()>();
    *faults.create_gate.lock().unwrap() = Some(gated);
    faults.disk_full.store(true, Ordering::SeqCst);
    let mut tracked = Vec::new();
    for i in 0..n {
        if i % 97 == 0 {
            tracked.push((i, ring.push_tracked(event(i)).unwrap()));
        } else {
            ring.push(event(i)).unwrap();
        }
    }
    let ring = std::sync::Arc::new(ring);
    // A flush queued behind the events, while the segment's creation is held back: once the
    // creation fails, the flush returns the error at once instead of waiting for space.
    let flushing = {
        let ring = ring.clone();
        std::thread::spawn(move || ring.flush())
    };
    drop(gate);
    let flushed = returns("flush during a stall", move || flushing.join().unwrap());
    match flushed {
        Err(Error::Io { source, context }) => {
            assert_eq!(source.raw_os_error(), Some(28), "{context}");
            assert!(context.contains("creating"), "{context}");
        }
        other => panic!("expected the stall's error from flush, got {other:?}"),
    }
    (ring, mem, tracked)
}

#[test]
fn closing_during_a_stall_hands_back_every_queued_event_in_order() {
    const N: u64 = 2_000;
    let (ring, mem, tracked) = ring_stalled_with_queued_events(N, "stall-close");
    let ring = std::sync::Arc::into_inner(ring).unwrap();
    let err = returns("close during a stall", move || ring.close()).unwrap_err();
    let Error::Unwritten { source, events } = &err else {
        panic!("expected the queued events back, got {err}");
    };
    assert!(matches!(**source, Error::Io { .. }), "{source}");
    assert_eq!(err.unwritten().len(), events.len());
    let snap = Reader::with_storage(mem.clone()).snapshot().unwrap();
    let written = snap.len();
    assert!(written > 0 && !events.is_empty(), "{written} written");
    // Not one lost, not one twice: the log holds a prefix of what was pushed, the error the
    // rest, in push order.
    assert_eq!(written + events.len() as u64, N);
    for (i, r) in snap.iter().enumerate() {
        assert_eq!(
            r.unwrap().details.as_deref(),
            event(i as u64).details_json()
        );
    }
    for (k, e) in events.iter().enumerate() {
        let want = event(written + k as u64);
        assert_eq!(
            (e.kind(), e.actor(), e.details_json()),
            (want.kind(), want.actor(), want.details_json())
        );
        assert!(
            e.timestamp_nanos().is_some(),
            "the time it was pushed is kept"
        );
    }
    // Receipts: issued for what is written, failed with the stall's error for the rest.
    for (i, pending) in tracked {
        match pending.wait() {
            Ok(r) if i < written => assert_eq!(r.seq, i + 1),
            Err(Error::Io { .. }) if i >= written => {}
            other => panic!("event {i} ({written} written): {other:?}"),
        }
    }
    // Once there is space again, pushing them back completes the log.
    let ring = Ring::with_storage(mem.clone())
        .segment_size(64 * 1024)
        .open()
        .unwrap();
    for e in events.iter() {
        ring.push(e.clone()).unwrap();
    }
    ring.close().unwrap();
    assert!(
        auditring::verify_storage(&mem, auditring::VerifyOptions::default())
            .unwrap()
            .is_ok()
    );
    let snap = Reader::with_storage(mem).snapshot().unwrap();
    assert_eq!(snap.len(), N);
    for (i, r) in snap.iter().enumerate() {
        assert_eq!(
            r.unwrap().details.as_deref(),
            event(i as u64).details_json()
        );
    }
}

/// The child's half of the test below: drops a ring during a stall, then prints how many of
/// its events the log holds.
#[test]
fn dropped_during_a_stall_child() {
    if std::env::var_os("AUDITRING_DROP_CHILD").is_none() {
        return;
    }
    let (ring, mem, _) = ring_stalled_with_queued_events(1_000, "stall-drop");
    drop(std::sync::Arc::into_inner(ring).unwrap());
    let written = Reader::with_storage(mem).snapshot().unwrap().len();
    println!("written={written}");
}

#[test]
fn dropping_during_a_stall_writes_the_queued_events_to_stderr_as_append_lines() {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "dropped_during_a_stall_child", "--nocapture"])
        .env("AUDITRING_DROP_CHILD", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let written: u64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("written="))
        .unwrap_or_else(|| panic!("{stdout}"))
        .parse()
        .unwrap();
    assert!(
        stderr.contains("the ring was dropped while it could not write"),
        "{stderr}"
    );
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("auditring-unwritten: "))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(written + lines.len() as u64, 1_000, "{stderr}");
    for (k, v) in lines.iter().enumerate() {
        let want = event(written + k as u64);
        assert_eq!(v["kind"], want.kind());
        assert_eq!(v["actor"], want.actor().unwrap());
        let details: serde_json::Value =
            serde_json::from_str(want.details_json().unwrap()).unwrap();
        assert_eq!(v["details"], details);
        assert!(v["timestamp"].is_i64());
    }
}

#[test]
fn a_segment_removed_renamed_or_replaced_under_the_writer_fails_its_next_sync() {
    type Mischief = fn(&std::path::Path);
    let cases: [(&str, Mischief); 3] = [
        ("removed", |p| std::fs::remove_file(p).unwrap()),
        ("renamed", |p| {
            std::fs::rename(p, p.with_extension("bak")).unwrap();
        }),
        ("replaced", |p| {
            let copy = p.with_extension("copy");
            std::fs::copy(p, &copy).unwrap();
            std::fs::rename(&copy, p).unwrap();
        }),
    ];
    for (what, mischief) in cases {
        for durability in [Durability::Batch, Durability::None] {
            let dir = tempfile::tempdir().unwrap();
            let log = dir.path().join("log");
            let ring = Ring::builder(&log).durability(durability).open().unwrap();
            for i in 0..10 {
                ring.push(event(i)).unwrap();
            }
            ring.flush().unwrap();
            mischief(&log.join("0000000000000001.seg"));
            let _ = ring.push(event(10));
            // The next sync (at the flush under Batch, at the close under None) finds out, and
            // the ring says which file and what happened, instead of issuing receipts.
            let failed = match durability {
                Durability::Batch => ring.flush().and_then(|()| ring.close()),
                _ => ring.close(),
            };
            let err = failed.expect_err(what);
            assert!(matches!(err, Error::Poisoned { .. }), "{what}: {err}");
            let text = err.to_string();
            assert!(
                text.contains("0000000000000001.seg") && text.contains(what),
                "{what}: {text}"
            );
        }
    }
}

/// A segment cut by another process under a live writer (`logrotate copytruncate`). Stored
/// through the mapping, records past the cut raise SIGBUS (the CLI tests in
/// `readers_crash.rs` check what the process says then); written by `pwrite`, they would
/// extend the file instead, with a hole of zeros where the cut records were. So with
/// `pwrite`, the writer checks the length around every batch, and the committer at every sync
/// either way: the ring fails, naming the file, what its length is and what it must be.
#[test]
fn a_segment_cut_under_the_writer_poisons_it_with_the_file_named() {
    for (writes, durability) in [
        (RecordWrites::Buffered, Durability::None),
        (RecordWrites::Buffered, Durability::Batch),
        // Under Batch the next sync finds the cut before any store reaches past it: the
        // records written so far end far below it.
        (RecordWrites::Mapped, Durability::Batch),
    ] {
        let what = format!("{writes:?}, {durability:?}");
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let ring = Ring::builder(&log)
            .durability(durability)
            .record_writes(writes)
            .open()
            .unwrap();
        for i in 0..10 {
            ring.push(event(i)).unwrap();
        }
        ring.flush().unwrap();
        let segment = log.join("0000000000000001.seg");
        let cut = 1 << 20;
        std::fs::OpenOptions::new()
            .write(true)
            .open(&segment)
            .unwrap()
            .set_len(cut)
            .unwrap();
        let _ = ring.push(event(10));
        let err = ring.flush().and_then(|()| ring.close()).expect_err(&what);
        assert!(matches!(err, Error::Poisoned { .. }), "{what}: {err}");
        let text = err.to_string();
        assert!(
            text.contains(&format!(
                "{} is {cut} bytes where it must be {}",
                segment.display(),
                auditring::DEFAULT_SEGMENT_SIZE
            )) && text.contains("truncated by another process"),
            "{what}: {text}"
        );
        // The file was not extended past the cut by the writer's records.
        assert_eq!(std::fs::metadata(&segment).unwrap().len(), cut, "{what}");
    }
}

/// A batch of large events, written by `pwrite`: the sequencer writes what it has gathered
/// every megabyte, within the batch, and every record still reaches the file whole, in order.
/// (The events are queued before the sequencer starts, so that they form one batch.)
#[test]
fn a_batch_of_large_events_is_written_in_pieces_and_reads_back_whole() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let gate = std::sync::Arc::new(std::sync::Barrier::new(2));
    let ring = Ring::builder(&log)
        .record_writes(RecordWrites::Buffered)
        .sequencer_start_gate(gate.clone(), false)
        .open()
        .unwrap();
    let big = |i: u64| {
        Event::new("test.big")
            .with_details(&serde_json::json!({ "i": i, "pad": "y".repeat(200_000) }))
            .unwrap()
    };
    for i in 0..40 {
        ring.push(big(i)).unwrap();
    }
    gate.wait();
    ring.flush().unwrap();
    let snap = ring.snapshot();
    assert_eq!(snap.len(), 40);
    for (i, r) in snap.iter().enumerate() {
        let r = r.unwrap();
        assert_eq!(r.details, big(i as u64).details_json().map(str::to_owned));
    }
    ring.close().unwrap();
    let report = auditring::verify(&log, auditring::VerifyOptions::default()).unwrap();
    assert!(report.is_ok(), "{:?}", report.failure);
    assert_eq!(report.events, 40);
}
