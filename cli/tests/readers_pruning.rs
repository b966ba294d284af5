//! Readers against a writer that prunes: the race between listing a log's segments and opening
//! them, through the storage trait (deterministic) and with real processes (a writer pruning
//! continuously while the command-line readers run in a loop).

use std::io::{BufRead, BufReader, Read};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use auditring::storage::{MemStorage, Storage};
use auditring::{Durability, Error, Event, Reader, Reason, Retention, Ring, Unexported};
use auditring_testkit::cli::Cli;
use auditring_testkit::faults::{Faults, FaultyStorage};

/// The binary under test.
const AUDITRING: Cli = Cli::new(env!("CARGO_BIN_EXE_auditring"));

/// A storage over `mem` that removes `victims` just before `name` is opened, as retention in
/// another process can between a reader's listing and its open.
fn remove_on_open(mem: &MemStorage, name: &str, victims: &[&str]) -> FaultyStorage {
    let faults = Faults::new();
    faults.remove_on_open.lock().unwrap().insert(
        name.to_string(),
        victims.iter().map(ToString::to_string).collect(),
    );
    FaultyStorage::new(mem.clone(), faults)
}

fn seg(n: u64) -> String {
    format!("{n:016x}.seg")
}

fn event(i: u64) -> Event {
    Event::new("test.prune")
        .with_actor("reader-test")
        .with_details_json(format!(
            "{{\"i\":{i},\"pad\":\"{}\"}}",
            "x".repeat(100 + (i % 50) as usize)
        ))
        .unwrap()
}

/// A log of `n` 64 KiB segments in memory, closed.
fn segments(n: usize) -> MemStorage {
    let mem = MemStorage::new("pruned-under-reader");
    let ring = Ring::with_storage(mem.clone())
        .segment_size(65536)
        .durability(Durability::None)
        .open()
        .unwrap();
    let mut i = 0;
    while ring.snapshot().segment_count() < n {
        ring.push(event(i)).unwrap();
        i += 1;
    }
    ring.close().unwrap();
    mem
}

fn four_segments() -> MemStorage {
    segments(4)
}

/// More segments than a view keeps open when it is taken (256): the last ones are opened when
/// they are read.
const MANY: u64 = 259;

#[test]
fn a_snapshot_taken_while_the_first_segment_is_pruned_is_taken_again() {
    let mem = four_segments();
    // The view lists segments 1..=4; segment 1 goes before the reader opens it.
    let store = remove_on_open(&mem, &seg(1), &[&seg(1)]);
    let total = Reader::with_storage(mem.clone())
        .snapshot()
        .unwrap()
        .segment_count();
    let snap = Reader::with_storage(store).snapshot().unwrap();
    assert_eq!(snap.segment_count(), total - 1);
    let reference = Reader::with_storage(mem).snapshot().unwrap();
    assert_eq!(snap.first_seq(), reference.first_seq());
    assert!(snap.first_seq() > 1);
    assert_eq!(snap.iter().count() as u64, snap.len());
}

#[test]
fn reading_a_segment_pruned_after_the_snapshot_is_a_retryable_pruned_error() {
    let mem = segments(MANY as usize);
    let reader = Reader::with_storage(mem.clone());
    let snap = reader.snapshot().unwrap();
    let total = snap.segment_count() as u64;
    assert!(total >= MANY);
    // Retention prunes all but the last two segments, after the view was taken: the view
    // still reads the oldest ones (it opened them), not the one it had not opened yet.
    for n in 1..=total - 2 {
        mem.remove(&seg(n)).unwrap();
    }
    assert_eq!(snap.get(1).unwrap().unwrap().seq, 1);
    match snap.segments() {
        Err(Error::Pruned { segment, file }) => {
            assert_eq!(segment, 257);
            assert!(file.ends_with(seg(257)), "{}", file.display());
        }
        other => panic!("expected a pruned error, got {other:?}"),
    }
    // A newer view reads what is left.
    let newer = reader.snapshot().unwrap();
    assert_eq!(newer.segment_count(), 2);
    assert_eq!(newer.iter().flatten().count() as u64, newer.len());
}

#[test]
fn a_segment_removed_from_between_others_is_a_missing_segment_not_a_prune() {
    let mem = segments(MANY as usize);
    let snap = Reader::with_storage(mem.clone()).snapshot().unwrap();
    // Segment 257 goes while the segments before it are still there: nothing prunes that way.
    mem.remove(&seg(257)).unwrap();
    let err = snap.segments().unwrap_err();
    let e = err.integrity().unwrap_or_else(|| panic!("{err}"));
    assert_eq!(e.reason, Reason::MissingSegment(257));
    assert!(e.file.ends_with(seg(257)));
    let err = Reader::with_storage(mem).snapshot().unwrap_err();
    assert_eq!(
        err.integrity().map(|e| e.reason.clone()),
        Some(Reason::MissingSegment(257))
    );
}

#[test]
fn verify_walks_again_when_the_first_segment_goes_before_it_is_opened() {
    let mem = four_segments();
    let total = auditring::verify_storage(&mem, auditring::VerifyOptions::default())
        .unwrap()
        .segments;
    let store = remove_on_open(&mem, &seg(1), &[&seg(1)]);
    let report = auditring::verify_storage(&store, auditring::VerifyOptions::default()).unwrap();
    // The walk went on from segment 2; no prune record justifies the start, so this removal
    // (by hand, not by retention) is a failure, reported as such.
    assert_eq!(report.segments, total - 1);
    let failure = report.failure.expect("an unjustified start");
    assert!(
        matches!(failure.reason, Reason::Unpruned { .. }),
        "{failure}"
    );
}

/// A storage over `mem` whose next `times` listings still show `stale`, gone already: what
/// a listing taken while retention removes files can show (the entries are read one batch at
/// a time, and a file removed between two batches may have been read in the first).
fn stale_listings(mem: &MemStorage, stale: &str, times: usize) -> FaultyStorage {
    let faults = Faults::new();
    let mut listings = faults.stale_listings.lock().unwrap();
    listings.extend(std::iter::repeat_n(vec![stale.to_string()], times));
    drop(listings);
    FaultyStorage::new(mem.clone(), faults)
}

#[test]
fn a_listing_that_caught_a_prune_half_way_is_a_prune_however_often_it_recurs() {
    let mem = segments(6);
    // Retention removed segments 1 to 3, oldest first; the listings the readers take next
    // still show segment 2 (read before its removal) and not segment 3 (read after).
    for n in 1..=3 {
        mem.remove(&seg(n)).unwrap();
    }
    let reference = Reader::with_storage(mem.clone()).snapshot().unwrap();
    // Twice: the listing taken to judge the gap may be as stale as the one that showed it.
    let snap = Reader::with_storage(stale_listings(&mem, &seg(2), 2))
        .snapshot()
        .unwrap();
    assert_eq!(snap.first_seq(), reference.first_seq());
    assert_eq!(snap.segment_count(), reference.segment_count());
    // Verification walks again, and judges the start (no prune record justifies this one, as
    // the removals were by hand): not a missing segment, not a file that came back.
    let report = auditring::verify_storage(
        &stale_listings(&mem, &seg(2), 2),
        auditring::VerifyOptions::default(),
    )
    .unwrap();
    let failure = report.failure.expect("an unjustified start");
    assert!(
        matches!(failure.reason, Reason::Unpruned { .. }),
        "{failure}"
    );
    // A segment gone from between others still is one, however stale the listings.
    mem.remove(&seg(5)).unwrap();
    let err = Reader::with_storage(stale_listings(&mem, &seg(2), 2))
        .snapshot()
        .unwrap_err();
    assert_eq!(
        err.integrity().map(|e| e.reason.clone()),
        Some(Reason::MissingSegment(5)),
        "{err}"
    );
}

#[test]
fn a_listing_that_missed_a_segment_created_meanwhile_is_taken_again() {
    let mem = segments(6);
    let reference = Reader::with_storage(mem.clone()).snapshot().unwrap();
    let hiding = |times| {
        let faults = Faults::new();
        faults
            .hidden_in_listings
            .lock()
            .unwrap()
            .extend(std::iter::repeat_n(vec![seg(3)], times));
        FaultyStorage::new(mem.clone(), faults)
    };
    // Segment 3 is there, but the first two listings missed it (created while they were
    // taken): not a missing segment.
    let snap = Reader::with_storage(hiding(2)).snapshot().unwrap();
    assert_eq!(snap.segment_count(), reference.segment_count());
    assert_eq!(snap.head(), reference.head());
    let report =
        auditring::verify_storage(&hiding(2), auditring::VerifyOptions::default()).unwrap();
    assert!(report.is_ok(), "{:?}", report.failure);
    assert_eq!(report.segments, reference.segment_count() as u64);
}

/// Kills a child process if the test fails before it is done with it (SIGKILL to a child
/// that is already gone, and not yet reaped, does nothing).
struct KillOnDrop(libc::pid_t);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if thread::panicking() {
            // SAFETY: plain kill(2) of our own child, not reaped while the test panics.
            unsafe { libc::kill(self.0, libc::SIGKILL) };
        }
    }
}

/// The seqs a follower printed, and the ranges it said it missed, in order.
#[derive(Default)]
struct Followed {
    seqs: Vec<u64>,
    missed: Vec<(u64, u64)>,
}

#[test]
fn readers_in_other_processes_never_lose_the_race_with_a_pruning_writer() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let ring = Arc::new(
        Ring::builder(&log)
            .segment_size(65536)
            .durability(Durability::None)
            .retention(
                Retention::new()
                    .max_segments(3)
                    .unexported(Unexported::Remove),
            )
            .open()
            .unwrap(),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (ring, stop) = (ring.clone(), stop.clone());
        thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                ring.push(event(i)).unwrap();
                i += 1;
                // Flushes keep the queue from filling, so that the retention thread's prune
                // records get into it: pruning keeps up with the writer.
                if i % 64 == 0 {
                    ring.flush().unwrap();
                }
            }
        })
    };
    // A hang guard only: the writer fills a segment in milliseconds.
    let deadline = Instant::now() + Duration::from_secs(120);
    while ring.snapshot().first_seq() == 1 {
        assert!(Instant::now() < deadline, "retention never pruned");
        thread::yield_now();
    }

    // A follower, from the start: it falls behind pruning as soon as it is slower than the
    // writer, and must say what it missed.
    let mut follower = AUDITRING
        .command()
        .args(["tail", "-n", "0", "--follow", "--json"])
        .arg(&log)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _guard = KillOnDrop(follower.id() as libc::pid_t);
    let followed = Arc::new(Mutex::new(Followed::default()));
    let follower_out = {
        let stdout = follower.stdout.take().unwrap();
        let followed = followed.clone();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let v: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
                let mut f = followed.lock().unwrap();
                if let Some(m) = v.get("missed") {
                    let first = m["first_seq"].as_u64().unwrap();
                    let last = m["last_seq"].as_u64().unwrap();
                    assert_eq!(m["reason"], "pruned before they could be read");
                    f.missed.push((first, last));
                    f.seqs.extend(first..=last);
                } else {
                    let seq = v["seq"].as_u64();
                    f.seqs
                        .push(seq.unwrap_or_else(|| panic!("the follower printed {v}")));
                }
            }
        })
    };
    let first_at_start = ring.snapshot().first_seq();

    let out = dir.path().join("export");
    let out = out.to_str().unwrap();
    let log_arg = log.to_str().unwrap();
    let commands: [&[&str]; 8] = [
        &["verify", log_arg],
        &["verify", log_arg, "--json"],
        &["stat", log_arg],
        &["segments", log_arg, "--json"],
        &["query", log_arg, "--kind", "test.prune"],
        &["query", log_arg, "--limit", "5"],
        &["tail", log_arg, "-n", "2000"],
        &[
            "export", log_arg, "--format", "jsonl", "--out", out, "--force",
        ],
    ];
    let mut runs = 0;
    for _ in 0..25 {
        for args in commands {
            let o = AUDITRING.command().args(args).output().unwrap();
            assert!(
                o.status.success(),
                "`auditring {}` failed under pruning with {:?}: {}",
                args.join(" "),
                o.status.code(),
                String::from_utf8_lossy(&o.stderr)
            );
            runs += 1;
        }
    }
    // A follower that falls behind pruning: stopped while the writer prunes past what it has
    // read, then let go on.
    let pid = follower.id() as libc::pid_t;
    // SAFETY: plain kill(2) of our own child, which has not been reaped.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0);
    let stopped_at = ring.snapshot().head_seq();
    while ring.snapshot().first_seq() <= stopped_at + 1 {
        assert!(Instant::now() < deadline, "retention stopped pruning");
        thread::yield_now();
    }
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGCONT) }, 0);
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    assert!(
        ring.snapshot().first_seq() > first_at_start,
        "nothing was pruned during {runs} reader runs"
    );
    // Closing writes what is still queued (prune records too): the head the follower must reach.
    Arc::try_unwrap(ring).unwrap().close().unwrap();
    let head = Reader::open(&log).unwrap().snapshot().unwrap().head_seq();
    // The follower reaches the head (hang guard only), then stops when its output closes.
    while followed.lock().unwrap().seqs.last() != Some(&head) {
        if Instant::now() > deadline {
            let f = followed.lock().unwrap();
            let n = f.seqs.len();
            panic!(
                "the follower never reached {head}: {:?} missed {:?}",
                &f.seqs[n.saturating_sub(5)..],
                f.missed
            );
        }
        if let Some(status) = follower.try_wait().unwrap() {
            let mut stderr = String::new();
            follower
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut stderr)
                .unwrap();
            panic!("the follower died ({status}): {stderr}");
        }
        thread::yield_now();
    }
    follower.kill().unwrap();
    let stderr = follower.wait_with_output().unwrap().stderr;
    follower_out.join().unwrap();
    let f = followed.lock().unwrap();
    // Every seq from the first followed to the head, once: printed, or said to be missed.
    assert!(!f.missed.is_empty(), "the follower missed nothing");
    let first = f.seqs[0];
    if let Some(k) = (0..f.seqs.len()).find(|&k| f.seqs[k] != first + k as u64) {
        panic!(
            "the follower skipped or repeated: {:?} at {k}, missed {:?}",
            &f.seqs[k.saturating_sub(3)..(k + 3).min(f.seqs.len())],
            f.missed
        );
    }
    assert_eq!(f.seqs.last(), Some(&head));
    let stderr = String::from_utf8_lossy(&stderr);
    for (a, b) in &f.missed {
        assert!(
            stderr.contains(&format!(
                "seqs {a}..={b} were pruned before they could be read"
            )),
            "{stderr}"
        );
    }
    drop(f);
    let o = AUDITRING
        .command()
        .args(["verify", log_arg])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
}
