//! Injected I/O faults: the k-th write, msync, fsync, zeroing, creation, removal or small-file
//! replacement fails, once or from then on, with ENOSPC or EIO, for every k a small workload
//! reaches, under every durability policy. Whatever fails:
//!
//! * a failed write or sync is reported (by `open`, a push, a flush, a receipt or `close`), and
//!   a failed sync of an open ring poisons it: every later push, flush and close fails;
//! * no receipt says durable for an event a crash right after the fault would lose;
//! * the storage reopens cleanly afterwards, after a process death or a power loss, with every
//!   event that was durable, and verifies.
//!
//! With `FAULTS_TRACE` set in the environment, each run is named on stderr as it starts.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use auditring::storage::{FsStorage, MemStorage, PageFate, Storage};
use auditring::{
    Durability, Error, Event, ExportOptions, PendingReceipt, PushError, Reader, Receipt, Ring,
};
use auditring_testkit::intercept::{Hooks, Intercept, Kind};
use auditring_testkit::splitmix::Rng;

const SEGMENT: u64 = 64 * 1024;
const ENOSPC: i32 = 28;
const EIO: i32 = 5;

/// Events each faulted run pushes (into a third segment).
const PUSHES: u64 = 200;

/// Event number `i` (seq `i + 1`).
fn event(i: u64) -> Event {
    let pad = Rng(i).next() % 500;
    Event::new("fault.event")
        .with_actor(format!("actor-{}", i % 3))
        .with_details(&serde_json::json!({ "i": i, "pad": "f".repeat(pad as usize) }))
        .unwrap()
}

/// A log that a crash interrupted, so that reopening it has work to do: records past the last
/// commit to keep, a torn tail to zero, a segment created ahead of time to remove. Returns it
/// and the number of events it holds.
fn crashed_base() -> (MemStorage, u64) {
    let mem = MemStorage::new("base");
    let ring = Ring::with_storage(mem.clone())
        .segment_size(SEGMENT)
        .open()
        .unwrap();
    let mut i = 0;
    // Into the second segment, past its half (the same number of events every time)...
    let past_half = |ring: &Ring| {
        let segments = ring.snapshot().segments().unwrap();
        segments.len() == 2 && segments[1].record_bytes > SEGMENT * 6 / 10
    };
    while !past_half(&ring) {
        ring.push(event(i)).unwrap();
        ring.flush().unwrap();
        i += 1;
    }
    // ...where the third is created ahead of time.
    while mem.list().unwrap().len() < 3 {
        std::thread::yield_now();
    }
    // Nothing was synced (`Durability::None`): the process dies, and the power goes while the
    // last page written was being written back.
    let last = mem.dirty_pages().pop().expect("unsynced pages");
    let image = mem.crash_image_with(|p| {
        if *p == last {
            PageFate::Torn(50)
        } else {
            PageFate::Kept
        }
    });
    ring.close().unwrap();
    let n = Reader::with_storage(image.clone())
        .snapshot()
        .unwrap()
        .head_seq();
    assert!(n > 0 && n < i, "{n} of {i}");
    (image, n)
}

/// A copy of a storage's live bytes, all durable.
fn copy(mem: &MemStorage) -> MemStorage {
    mem.crash_image_with(|_| PageFate::Kept)
}

/// Whether `name` is a tree chunk's (`docs/FORMAT.md` §15.2), or the temporary of one.
fn is_tree_chunk(name: &str) -> bool {
    let name = name.trim_start_matches('.').trim_end_matches(".tmp");
    let b = name.as_bytes();
    b.len() == 19 && &b[16..18] == b".t" && b[18].is_ascii_digit()
}

fn is_sync_kind(kind: Kind) -> bool {
    matches!(kind, Kind::Write | Kind::Msync | Kind::Fsync | Kind::Zero)
}

/// How a fault is injected.
#[derive(Clone, Copy, Debug)]
struct Fault {
    kind: Kind,
    /// The `k`-th operation of `kind` fails (counting from 1)...
    k: u64,
    /// ...and every later one too.
    persistent: bool,
    errno: i32,
}

/// What one faulted run saw.
#[derive(Default)]
struct Seen {
    /// Operations made to fail.
    injected: u64,
    /// Every error the ring returned.
    errors: Vec<Error>,
    /// Whether `open` failed.
    open_failed: bool,
    /// Whether the ring was found poisoned (and every later call failed).
    poisoned: bool,
    /// Receipts that said durable (and, after a successful close, every receipt).
    durable: Vec<Receipt>,
    /// Events pushed successfully.
    pushed: u64,
}

/// Installs `fault` on `hooks`; returns the counter of injected failures.
fn install(hooks: &Hooks, fault: Fault) -> Arc<AtomicU64> {
    let injected = Arc::new(AtomicU64::new(0));
    let seen = AtomicU64::new(0);
    let count = injected.clone();
    hooks.set(move |kind, name| {
        // The records' files only: the Merkle tree's chunks are a cache whose failures the
        // ring tolerates (`tests/merkle_tree.rs`), written by a thread of its own, at times
        // that would make the `k`-th operation a different one from run to run.
        if kind != fault.kind || is_tree_chunk(name) {
            return Ok(());
        }
        let n = seen.fetch_add(1, Ordering::SeqCst) + 1;
        if n == fault.k || (fault.persistent && n > fault.k) {
            count.fetch_add(1, Ordering::SeqCst);
            return Err(io::Error::from_raw_os_error(fault.errno));
        }
        Ok(())
    });
    injected
}

/// Opens the log in `storage` (behind `hooks`), pushes `PUSHES` events after `first` in groups,
/// each followed by a flush, exports once if `export` is set, and closes; stops pushing at the
/// first error. Checks that a poisoned ring stays poisoned.
///
/// Without `flushes`, only pushes. (A flush during a stall returns its error at once, even one
/// queued behind the event that waits for a new segment.)
fn workload(
    storage: impl Storage,
    durability: Durability,
    first: u64,
    export: Option<&std::path::Path>,
    flushes: bool,
    rng: &mut Rng,
) -> Seen {
    let mut seen = Seen::default();
    let ring = match Ring::with_storage(storage)
        .segment_size(SEGMENT)
        .durability(durability)
        .open()
    {
        Ok(r) => r,
        Err(e) => {
            seen.open_failed = true;
            seen.errors.push(e);
            return seen;
        }
    };
    let mut pending: Vec<PendingReceipt> = Vec::new();
    let mut i = 0;
    'work: while i < PUSHES {
        let group = 1 + rng.below(8);
        for _ in 0..group {
            match ring.push_tracked(event(first + i)) {
                Ok(p) => pending.push(p),
                Err(e) => {
                    seen.errors.push(Error::from(e));
                    break 'work;
                }
            }
            i += 1;
        }
        if flushes && let Err(e) = ring.flush() {
            seen.errors.push(e);
            break;
        }
        if let Some(dir) = export
            && i >= PUSHES / 2
            && !dir.exists()
        {
            // The marker of what exports cover is replaced best effort: a failure there does
            // not fail the export.
            ring.snapshot()
                .export(dir, ExportOptions::default())
                .unwrap();
        }
    }
    seen.pushed = i;
    if matches!(seen.errors.first(), Some(Error::Poisoned { .. })) {
        seen.poisoned = true;
        match ring.push(event(first + i)) {
            Err(PushError::Failed {
                source: Error::Poisoned { .. },
                ..
            }) => {}
            other => panic!("a poisoned ring took a push: {other:?}"),
        }
        assert!(matches!(ring.flush(), Err(Error::Poisoned { .. })));
    }
    let closed = ring.close();
    if seen.poisoned {
        assert!(matches!(closed, Err(Error::Poisoned { .. })), "{closed:?}");
    }
    // A sync that fails at close (the only ones under `Durability::None`) poisons it too.
    seen.poisoned |= matches!(closed, Err(Error::Poisoned { .. }));
    // Every receipt is complete once the ring is closed.
    let mut all = Vec::new();
    for p in pending {
        match p.wait() {
            Ok(r) => all.push(r),
            Err(e) => seen.errors.push(e),
        }
    }
    for (n, r) in all.iter().enumerate() {
        assert_eq!(
            r.seq,
            first + n as u64 + 1,
            "receipts in order, without gaps"
        );
    }
    if let Err(Error::Unwritten { events, .. }) = &closed {
        // Closed during a stall: every event pushed is either written (its receipt says so) or
        // handed back, in push order, after the written ones.
        assert_eq!(all.len() + events.len(), seen.pushed as usize, "{closed:?}");
        for (k, e) in events.iter().enumerate() {
            let want = event(first + (all.len() + k) as u64);
            assert_eq!(e.details_json(), want.details_json());
        }
    }
    match closed {
        // A successful close makes everything durable, whatever the policy.
        Ok(()) => seen.durable = all,
        Err(e) => {
            seen.durable = all.into_iter().filter(|r| r.durable).collect();
            seen.errors.push(e);
        }
    }
    seen
}

/// Reopens `storage` without faults and checks it: it opens and verifies, holds a prefix of
/// the events pushed (`first` of them before the run), with every event in `durable`.
/// Returns false if it may not open and did not (a power loss under `Durability::None`).
fn check_reopens(storage: impl Storage, first: u64, seen: &Seen, strict: bool, what: &str) -> bool {
    let storage: Arc<dyn Storage> = Arc::new(storage);
    let ring = match Ring::with_storage(storage.clone()).open() {
        Ok(r) => r,
        Err(e) => {
            assert!(!strict, "{what}: reopening failed: {e}");
            return false;
        }
    };
    if !strict {
        // A power loss under `Durability::None` may keep a sealed slot written in the page
        // cache and lose or tear the records it seals (FORMAT.md §8): readers do not re-hash
        // sealed records, and verification is what names the damage. So the log must either
        // fail verification or read back exactly.
        let report = auditring::verify_storage(&storage, auditring::VerifyOptions::default());
        if report.is_err() || report.is_ok_and(|r| r.failure.is_some()) {
            return false;
        }
    }
    let snap = ring.snapshot();
    let head = snap.head_seq();
    assert!(
        head >= first,
        "{what}: events of before the run lost: {head}"
    );
    assert!(head <= first + seen.pushed, "{what}: {head} events");
    for r in &seen.durable {
        let got = snap.get(r.seq).ok().flatten();
        let got = got.unwrap_or_else(|| {
            panic!(
                "{what}: seq {} was reported durable and is lost (the log ends at {head})",
                r.seq
            )
        });
        assert_eq!(got.chain, r.chain, "{what}: seq {}", r.seq);
    }
    let mut n = 0;
    for r in snap.iter() {
        let r = match r {
            Ok(r) => r,
            Err(e) => {
                assert!(!strict, "{what}: reading: {e}");
                return false;
            }
        };
        n += 1;
        assert_eq!(r.seq, n, "{what}: a gap");
        assert_eq!(
            r.details.as_deref(),
            event(n - 1).details_json(),
            "{what}: seq {n} is not the event pushed"
        );
    }
    assert_eq!(n, head, "{what}");
    ring.close()
        .unwrap_or_else(|e| panic!("{what}: closing: {e}"));
    let report = auditring::verify_storage(&storage, auditring::VerifyOptions::default()).unwrap();
    if let Some(f) = &report.failure {
        assert!(!strict, "{what}: does not verify: {f}");
        return false;
    }
    assert_eq!(report.events, head, "{what}");
    true
}

#[derive(Default)]
struct Totals {
    runs: u64,
    /// Runs in which at least one operation was made to fail.
    faulted: u64,
    faults: u64,
    reported: u64,
    poisoned: u64,
    open_failed: u64,
    images: u64,
    none_refused: u64,
    durable_checked: u64,
}

/// Every fault of every kind, for every k up to what a dry run reaches (and one more), on the
/// crashed base log in memory.
fn in_memory(durability: Durability, totals: &mut Totals) {
    let (base, first) = crashed_base();
    let export_root = tempfile::tempdir().unwrap();
    // A dry run: how many operations of each kind the workload makes.
    let hooks = Hooks::new();
    let dry = workload(
        Intercept::new(copy(&base), hooks.clone()),
        durability,
        first,
        Some(&export_root.path().join("dry")),
        true,
        &mut Rng(7),
    );
    assert!(dry.errors.is_empty(), "{:?}", dry.errors);
    if std::env::var_os("FAULTS_TRACE").is_some() {
        let calls: Vec<_> = Kind::ALL.iter().map(|&k| (k, hooks.calls(k))).collect();
        eprintln!("{durability:?}: {} pushed, {calls:?}", dry.pushed);
    }
    for kind in Kind::ALL {
        let reached = hooks.calls(kind);
        assert!(
            reached > 0 || kind == Kind::Create && durability == Durability::None,
            "{durability:?}: the workload makes no {kind:?}"
        );
        for k in 1..=reached + 1 {
            for (persistent, errno) in [(false, EIO), (false, ENOSPC), (true, EIO), (true, ENOSPC)]
            {
                let fault = Fault {
                    kind,
                    k,
                    persistent,
                    errno,
                };
                let what = format!("{durability:?}, {fault:?}");
                if std::env::var_os("FAULTS_TRACE").is_some() {
                    eprintln!("{what}");
                }
                let mem = copy(&base);
                let hooks = Hooks::new();
                let injected = install(&hooks, fault);
                let export = (kind == Kind::WriteSmall)
                    .then(|| export_root.path().join(format!("{k}-{persistent}-{errno}")));
                let mut seen = workload(
                    Intercept::new(mem.clone(), hooks.clone()),
                    durability,
                    first,
                    export.as_deref(),
                    true,
                    &mut Rng(7),
                );
                hooks.clear();
                seen.injected = injected.load(Ordering::SeqCst);
                totals.runs += 1;
                totals.faults += seen.injected;
                totals.faulted += u64::from(seen.injected > 0);
                totals.poisoned += u64::from(seen.poisoned);
                totals.open_failed += u64::from(seen.open_failed);
                totals.durable_checked += seen.durable.len() as u64;
                if seen.injected > 0 && !seen.errors.is_empty() {
                    totals.reported += 1;
                    let text = io::Error::from_raw_os_error(errno).to_string();
                    assert!(
                        seen.errors.iter().any(|e| e.to_string().contains(&text)),
                        "{what}: no error names the fault: {:?}",
                        seen.errors
                    );
                }
                if is_sync_kind(kind) && seen.injected > 0 {
                    assert!(
                        !seen.errors.is_empty(),
                        "{what}: the failure went unreported"
                    );
                    assert!(
                        seen.poisoned || seen.open_failed,
                        "{what}: a failed write or sync did not poison the ring: {:?}",
                        seen.errors
                    );
                }
                // A process death right after, and power losses.
                let strict = durability != Durability::None || seen.errors.is_empty();
                check_reopens(
                    copy(&mem),
                    first,
                    &seen,
                    true,
                    &format!("{what}, process death"),
                );
                let images = [
                    ("every unsynced page lost", mem.crash_image()),
                    (
                        "random page fates",
                        mem.crash_image_seeded(k ^ u64::from(persistent)),
                    ),
                ];
                for (fates, image) in images {
                    let ok =
                        check_reopens(image, first, &seen, strict, &format!("{what}, {fates}"));
                    totals.none_refused += u64::from(!ok);
                }
                totals.images += 3;
            }
        }
    }
}

/// Faults on a real directory: every write, msync, fsync and creation of a small workload on
/// a new log, failing once with EIO or for good with ENOSPC; then the directory reopens, as a
/// process death leaves it.
fn on_disk(totals: &mut Totals) {
    let kinds = [Kind::Write, Kind::Msync, Kind::Fsync, Kind::Create];
    let dry_dir = tempfile::tempdir().unwrap();
    let hooks = Hooks::new();
    let dry = workload(
        Intercept::new(FsStorage::new(dry_dir.path()), hooks.clone()),
        Durability::Batch,
        0,
        None,
        true,
        &mut Rng(11),
    );
    assert!(dry.errors.is_empty(), "{:?}", dry.errors);
    for kind in kinds {
        let reached = hooks.calls(kind);
        assert!(reached > 0, "no {kind:?} on disk");
        for k in 1..=reached {
            for (persistent, errno) in [(false, EIO), (true, ENOSPC)] {
                let fault = Fault {
                    kind,
                    k,
                    persistent,
                    errno,
                };
                let what = format!("on disk, {fault:?}");
                let dir = tempfile::tempdir().unwrap();
                let hooks = Hooks::new();
                let injected = install(&hooks, fault);
                let mut seen = workload(
                    Intercept::new(FsStorage::new(dir.path()), hooks.clone()),
                    Durability::Batch,
                    0,
                    None,
                    true,
                    &mut Rng(11),
                );
                seen.injected = injected.load(Ordering::SeqCst);
                totals.runs += 1;
                totals.faults += seen.injected;
                totals.faulted += u64::from(seen.injected > 0);
                totals.poisoned += u64::from(seen.poisoned);
                totals.open_failed += u64::from(seen.open_failed);
                totals.durable_checked += seen.durable.len() as u64;
                if seen.injected > 0 && !seen.errors.is_empty() {
                    totals.reported += 1;
                }
                if is_sync_kind(kind) && seen.injected > 0 {
                    assert!(
                        !seen.errors.is_empty(),
                        "{what}: the failure went unreported"
                    );
                    assert!(
                        seen.poisoned || seen.open_failed,
                        "{what}: {:?}",
                        seen.errors
                    );
                }
                if dir.path().join("0000000000000001.seg").exists() {
                    check_reopens(FsStorage::new(dir.path()), 0, &seen, true, &what);
                    totals.images += 1;
                }
            }
        }
    }
}

#[test]
fn every_injected_fault_is_reported_and_loses_nothing_acknowledged() {
    let start = Instant::now();
    let mut totals = Totals::default();
    for durability in [
        Durability::Batch,
        // A period that never elapses: syncs at flushes, full segments and close.
        Durability::Periodic(Duration::from_secs(3600)),
        Durability::None,
    ] {
        in_memory(durability, &mut totals);
    }
    on_disk(&mut totals);
    println!(
        "faults: {} runs, {} with a fault, {} failing operations injected, {} runs reported them (poisoned: {}, open \
         refused: {}), {} reopened images checked ({} power losses under None refused, \
         allowed), {} durable receipts checked, 0 acknowledged events lost, in {:.1?}",
        totals.runs,
        totals.faulted,
        totals.faults,
        totals.reported,
        totals.poisoned,
        totals.open_failed,
        totals.images,
        totals.none_refused,
        totals.durable_checked,
        start.elapsed()
    );
    assert!(totals.faulted > 500, "{}", totals.faulted);
}
