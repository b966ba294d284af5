//! The writer lock (whatever happens to the names in the directory), symlinks in a log
//! directory, a fork after opening a ring, and what `demo` may delete.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use auditring::{Error, Event, PushError, Reader, Ring};
use auditring_testkit::cli::Cli;

/// The binary under test.
const AUDITRING: Cli = Cli::new(env!("CARGO_BIN_EXE_auditring"));

fn event(i: u64) -> Event {
    Event::new("test.lock")
        .with_actor("tester")
        .with_details_json(format!("{{\"i\":{i}}}"))
        .unwrap()
}

/// A closed log with `n` events in `dir`.
fn closed_log(dir: &Path, n: u64) {
    let ring = Ring::builder(dir).segment_size(64 << 10).open().unwrap();
    for i in 0..n {
        ring.push(event(i)).unwrap();
    }
    ring.close().unwrap();
}

fn assert_locked(dir: &Path) {
    match Ring::open(dir) {
        Err(Error::Locked { .. }) => {}
        Err(e) => panic!("expected Locked, got {e}"),
        Ok(_) => panic!("a second writer opened {}", dir.display()),
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn verified_events(dir: &Path) -> u64 {
    let report = auditring::verify(dir, auditring::VerifyOptions::default()).unwrap();
    assert!(report.is_ok(), "{:?}", report.failure);
    report.events
}

// ---- item 2: the lock does not depend on the name LOCK ------------------------------------

#[test]
fn removing_replacing_or_renaming_lock_keeps_one_writer() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let ring = Ring::builder(&log).segment_size(64 << 10).open().unwrap();
    ring.push_receipt(event(0)).unwrap();
    let lock = log.join("LOCK");

    fs::remove_file(&lock).unwrap();
    assert_locked(&log);
    fs::write(&lock, "1\n").unwrap();
    assert_locked(&log);
    fs::rename(&lock, log.join("LOCK.old")).unwrap();
    assert_locked(&log);
    fs::remove_file(log.join("LOCK.old")).unwrap();
    // Another process too (exit code 3).
    let out = AUDITRING.run(&["append", log.to_str().unwrap()], "");
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    for i in 1..100 {
        ring.push(event(i)).unwrap();
    }
    ring.close().unwrap();
    assert_eq!(verified_events(&log), 100);
}

#[test]
fn a_renamed_log_directory_stays_locked_and_written() {
    let dir = tempfile::tempdir().unwrap();
    let (log, moved) = (dir.path().join("log"), dir.path().join("moved"));
    let ring = Ring::builder(&log).segment_size(64 << 10).open().unwrap();
    ring.push_receipt(event(0)).unwrap();
    fs::rename(&log, &moved).unwrap();
    assert_locked(&moved);
    // Enough events to rotate into new segments after the rename: they go where the lock is.
    for i in 1..2000 {
        ring.push(event(i)).unwrap();
    }
    ring.close().unwrap();
    assert!(!log.exists(), "the writer recreated its old path");
    assert!(
        names(&moved)
            .iter()
            .filter(|n| std::path::Path::new(n)
                .extension()
                .is_some_and(|e| e == "seg"))
            .count()
            > 1
    );
    assert_eq!(verified_events(&moved), 2000);
}

// ---- item 22: a directory refused as not a log is left as it was --------------------------

#[test]
fn a_directory_refused_as_not_a_log_is_left_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("notes.txt"), "mine").unwrap();
    match Ring::open(dir.path()) {
        Err(Error::NotALog { .. }) => {}
        other => panic!("expected NotALog, got {other:?}"),
    }
    let out = AUDITRING.run(&["append", dir.path().to_str().unwrap()], "");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(names(dir.path()), vec!["notes.txt".to_string()]);
}

// ---- item 3: no symlink is followed in a log directory ------------------------------------

#[test]
fn lock_as_a_symlink_to_a_file_outside_is_refused_and_the_file_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    closed_log(&log, 10);
    let outside = dir.path().join("precious");
    fs::write(&outside, "precious data\n").unwrap();
    fs::remove_file(log.join("LOCK")).unwrap();
    symlink(&outside, log.join("LOCK")).unwrap();
    let e = Ring::open(&log).unwrap_err();
    assert!(
        matches!(e, Error::NotALog { .. }) && e.to_string().contains("LOCK is a symlink"),
        "{e}"
    );
    assert_eq!(fs::read_to_string(&outside).unwrap(), "precious data\n");
    // No input: the command refuses before reading any (a write could meet a closed pipe).
    let out = AUDITRING.run(&["append", log.to_str().unwrap()], "");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(fs::read_to_string(&outside).unwrap(), "precious data\n");
}

#[test]
fn lock_as_a_hard_link_to_a_file_outside_is_not_written_through() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    closed_log(&log, 1);
    let outside = dir.path().join("precious");
    fs::write(&outside, "precious data\n").unwrap();
    fs::remove_file(log.join("LOCK")).unwrap();
    fs::hard_link(&outside, log.join("LOCK")).unwrap();
    closed_log(&log, 1);
    assert_eq!(fs::read_to_string(&outside).unwrap(), "precious data\n");
    assert_eq!(
        fs::read_to_string(log.join("LOCK")).unwrap(),
        format!("{}\n", std::process::id())
    );
}

#[test]
fn a_dangling_lock_symlink_creates_nothing_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    fs::create_dir(&log).unwrap();
    let target = dir.path().join("created-elsewhere");
    symlink(&target, log.join("LOCK")).unwrap();
    let e = Ring::open(&log).unwrap_err();
    assert!(e.to_string().contains("LOCK is a symlink"), "{e}");
    assert!(fs::symlink_metadata(&target).is_err(), "a file was created");
    assert_eq!(names(&log), vec!["LOCK".to_string()]);
}

#[test]
fn a_segment_that_is_a_symlink_is_named_as_one_by_every_reader() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    closed_log(&log, 10);
    let seg = log.join("0000000000000001.seg");
    let copy = dir.path().join("copy.seg");
    fs::rename(&seg, &copy).unwrap();
    symlink(&copy, &seg).unwrap();
    let before = fs::read(&copy).unwrap();
    let expect = "0000000000000001.seg is a symlink";
    let e = auditring::verify(&log, auditring::VerifyOptions::default()).unwrap_err();
    assert!(e.to_string().contains(expect), "{e}");
    let e = Reader::open(&log).and_then(|r| r.snapshot()).unwrap_err();
    assert!(e.to_string().contains(expect), "{e}");
    let e = Ring::open(&log).unwrap_err();
    assert!(e.to_string().contains(expect), "{e}");
    for args in [&["verify"][..], &["stat"], &["segments"]] {
        let mut all = args.to_vec();
        all.push(log.to_str().unwrap());
        let out = AUDITRING.run(&all, "");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(expect), "{args:?}: {err}");
    }
    assert_eq!(fs::read(&copy).unwrap(), before, "the target was written");
    // The independent verifier, written from FORMAT.md §1, says the same.
    let tool = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools/verify_log.py");
    let out = Command::new("python3")
        .arg(tool)
        .arg(&log)
        .output()
        .expect("python3 is required by this test");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(expect), "{err}");
}

#[test]
fn the_next_segment_name_taken_by_a_symlink_writes_nothing_through_it() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    closed_log(&log, 1);
    let outside = dir.path().join("outside");
    fs::write(&outside, "keep").unwrap();
    // The temporary the next segment is created as, and the next segment's own name.
    for name in [".0000000000000002.seg.tmp", "0000000000000002.seg"] {
        symlink(&outside, log.join(name)).unwrap();
        let e = Ring::open(&log).unwrap_err();
        assert!(
            e.to_string().contains(&format!("{name} is a symlink")),
            "{e}"
        );
        fs::remove_file(log.join(name)).unwrap();
    }
    assert_eq!(fs::read_to_string(&outside).unwrap(), "keep");
}

// ---- item 16: a fork after opening a ring --------------------------------------------------

/// Runs `child` in a forked child process and returns its exit code (`_exit`, so nothing of the
/// test harness runs in the child). A panic in the child is exit code 101.
fn in_child(child: impl FnOnce() -> i32) -> i32 {
    // SAFETY: the child only runs `child` and `_exit`s; the test harness's state is not used
    // there. glibc's allocator stays usable in a child of a multithreaded parent.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(child)).unwrap_or(101);
        // SAFETY: ends the child without running the parent's exit handlers.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waits for the child just forked; `status` is written by the call.
    let rc = unsafe { libc::waitpid(pid, &raw mut status, 0) };
    assert_eq!(rc, pid);
    assert!(libc::WIFEXITED(status), "the child died: status {status}");
    libc::WEXITSTATUS(status)
}

fn forked(e: &Error) -> bool {
    matches!(e, Error::Forked { pid } if *pid == std::process::id())
}

#[test]
fn a_forked_child_can_neither_write_nor_release_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let ring = Ring::builder(&log).segment_size(64 << 10).open().unwrap();
    for i in 0..100 {
        ring.push_receipt(event(i)).unwrap();
    }
    let producer = ring.producer();
    let mut ring = Some(ring);
    let code = in_child(|| {
        let owned = ring.take().unwrap();
        let ring = &owned;
        let parent = std::os::unix::process::parent_id();
        let is_forked = |e: &Error| matches!(e, Error::Forked { pid } if *pid == parent);
        let failed = |r: Result<(), PushError>| match r {
            Err(PushError::Failed { source, event }) => {
                is_forked(&source) && event.kind() == "test.lock"
            }
            _ => false,
        };
        if !failed(ring.push(event(1000))) {
            return 2;
        }
        if !failed(ring.try_push(event(1001))) {
            return 3;
        }
        if !failed(producer.push(event(1002))) {
            return 4;
        }
        if !ring.push_receipt(event(1003)).is_err_and(|e| is_forked(&e)) {
            return 5;
        }
        if !ring.flush().is_err_and(|e| is_forked(&e)) {
            return 6;
        }
        if !ring.apply_retention().is_err_and(|e| is_forked(&e)) {
            return 7;
        }
        // Reading still works: the log as it was at the fork.
        if ring.snapshot().head_seq() != 100 {
            return 8;
        }
        drop(producer);
        if !owned.close().is_err_and(|e| is_forked(&e)) {
            return 9;
        }
        0
    });
    assert_eq!(code, 0, "the child's check number {code} failed");
    let ring = ring.unwrap();
    // A child that only drops its copy.
    let code = in_child(|| {
        let copy = ring.producer();
        drop(copy);
        0
    });
    assert_eq!(code, 0);
    // The parent still holds the lock, and its chain goes on alone.
    assert_locked(&log);
    let mut last = None;
    for i in 100..2000 {
        last = Some(ring.push_receipt(event(i)).unwrap());
    }
    ring.close().unwrap();
    assert_eq!(verified_events(&log), 2000);
    let snap = Reader::open(&log).unwrap().snapshot().unwrap();
    assert_eq!(snap.head(), last.unwrap().chain);
    assert!(!forked(&Error::Closed));
}

#[test]
fn a_forked_child_that_drops_the_ring_leaves_the_parent_locked() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let ring = Ring::open(&log).unwrap();
    ring.push_receipt(event(0)).unwrap();
    // The whole ring dropped in the child: no panic, no unlock, no join.
    let mut ring = Some(ring);
    let code = in_child(|| {
        drop(ring.take());
        0
    });
    assert_eq!(code, 0);
    assert_locked(&log);
    let ring = ring.unwrap();
    ring.push_receipt(event(1)).unwrap();
    ring.close().unwrap();
    assert_eq!(verified_events(&log), 2);
}

#[test]
fn a_receipt_pending_at_the_fork_fails_in_the_child_and_arrives_in_the_parent() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    // The sequencer waits at the gate: the event is still queued when the process forks.
    let gate = std::sync::Arc::new(std::sync::Barrier::new(2));
    let ring = Ring::builder(&log)
        .sequencer_start_gate(gate.clone(), false)
        .open()
        .unwrap();
    let pending = ring.push_tracked(event(0)).unwrap();
    let mut pending = Some(pending);
    let code = in_child(|| {
        // A hang would be a death by SIGALRM, which the parent reports.
        // SAFETY: plain system call.
        unsafe { libc::alarm(60) };
        let parent = std::os::unix::process::parent_id();
        match pending.take().unwrap().wait() {
            Err(Error::Forked { pid }) if pid == parent => 0,
            _ => 2,
        }
    });
    assert_eq!(code, 0);
    gate.wait();
    let receipt = pending.unwrap().wait().unwrap();
    assert_eq!(receipt.seq, 1);
    ring.close().unwrap();
    assert_eq!(verified_events(&log), 1);
}

// ---- item 1: demo deletes only what it made ------------------------------------------------

fn demo(dir: &Path, extra: &[&str]) -> std::process::Output {
    demo_in(None, dir, extra)
}

fn demo_in(cwd: Option<&Path>, dir: &Path, extra: &[&str]) -> std::process::Output {
    let mut c = AUDITRING.command();
    c.args(["demo", "--events", "2000", "--dir"])
        .arg(dir)
        .args(extra)
        .stdin(Stdio::null());
    if let Some(cwd) = cwd {
        c.current_dir(cwd);
    }
    c.output().unwrap()
}

fn code(out: &std::process::Output) -> Option<i32> {
    out.status.code()
}

#[test]
fn demo_refuses_a_log_in_use_with_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let ring = Ring::open(&log).unwrap();
    ring.push_receipt(event(0)).unwrap();
    let out = demo(&log, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(code(&out), Some(3), "{err}");
    assert!(err.contains("in use by a writer"), "{err}");
    ring.push_receipt(event(1)).unwrap();
    ring.close().unwrap();
    assert_eq!(verified_events(&log), 2);
}

#[test]
fn demo_refuses_any_other_log_or_directory_with_exit_5() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    closed_log(&log, 5);
    let before = names(&log);
    let out = demo(&log, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(code(&out), Some(5), "{err}");
    assert!(err.contains("remove it yourself"), "{err}");
    assert_eq!(names(&log), before);
    assert_eq!(verified_events(&log), 5);

    // From inside a log: `--dir .`.
    let out = demo_in(Some(&log), Path::new("."), &[]);
    assert_eq!(code(&out), Some(5));
    assert_eq!(verified_events(&log), 5);

    // A directory of other files, and a file.
    let other = dir.path().join("other");
    fs::create_dir(&other).unwrap();
    fs::write(other.join("notes.txt"), "mine").unwrap();
    assert_eq!(code(&demo(&other, &[])), Some(5));
    assert_eq!(fs::read_to_string(other.join("notes.txt")).unwrap(), "mine");
    assert_eq!(code(&demo(&other.join("notes.txt"), &[])), Some(5));
}

#[test]
fn demo_reuses_its_own_log_and_an_empty_directory() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    fs::create_dir(&empty).unwrap();
    let out = demo(&empty, &[]);
    assert_eq!(
        code(&out),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = demo(&empty, &[]);
    assert_eq!(
        code(&out),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(verified_events(&empty), 2000);
}

#[test]
fn demo_compare_keeps_a_baselines_directory_it_did_not_make() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("d");
    let baselines: PathBuf = dir.path().join("d.baselines");
    fs::create_dir(&baselines).unwrap();
    fs::write(baselines.join("locked.jsonl"), "someone else's").unwrap();
    let out = demo(&log, &["--compare"]);
    assert_eq!(
        code(&out),
        Some(5),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        fs::read_to_string(baselines.join("locked.jsonl")).unwrap(),
        "someone else's"
    );
    assert!(!log.exists(), "demo wrote before refusing");
    fs::remove_dir_all(&baselines).unwrap();
    let out = demo(&log, &["--compare"]);
    assert_eq!(
        code(&out),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!baselines.exists());
}
