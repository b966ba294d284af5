//! Separate processes: one chain across writers, the lock, and crashes.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::thread;

use auditring::{Hash, Reader, Ring};
use auditring_testkit::cli::Cli;
use auditring_testkit::splitmix::Rng;

/// The binary under test.
const AUDITRING: Cli = Cli::new(env!("CARGO_BIN_EXE_auditring"));

fn append(dir: &std::path::Path, extra: &[&str]) -> Command {
    let mut c = AUDITRING.command();
    c.arg("append").arg(dir).args(extra);
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

fn line(writer: usize, i: usize) -> String {
    format!(
        "{{\"kind\":\"test.write\",\"actor\":\"writer-{writer}\",\"details\":{{\"writer\":{writer},\"i\":{i}}}}}\n"
    )
}

#[test]
fn eight_processes_twenty_events_each_make_one_chain() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    const WRITERS: usize = 8;
    let children: Vec<Child> = (0..WRITERS)
        .map(|w| {
            let mut child = append(&log, &["--wait", "--segment-size", "65536"])
                .spawn()
                .unwrap();
            let mut stdin = child.stdin.take().unwrap();
            // Each writer feeds its lines from its own thread, all at once.
            thread::spawn(move || {
                for i in 0..20 {
                    stdin.write_all(line(w, i).as_bytes()).unwrap();
                }
            });
            child
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "append failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let verify = AUDITRING
        .command()
        .arg("verify")
        .arg(&log)
        .arg("--json")
        .output()
        .unwrap();
    assert_eq!(
        verify.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
    let v: serde_json::Value = serde_json::from_slice(&verify.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["events"], 20 * WRITERS as u64);
    assert_eq!(v["first_seq"], 1);
    assert_eq!(v["last_seq"], 20 * WRITERS as u64);
    // Each writer's events are all there, in its own order.
    let snap = Reader::open(&log).unwrap().snapshot().unwrap();
    let mut next = [0u64; WRITERS];
    for r in snap.iter() {
        let r = r.unwrap();
        let d: serde_json::Value = serde_json::from_str(r.details.as_deref().unwrap()).unwrap();
        let w = d["writer"].as_u64().unwrap() as usize;
        assert_eq!(d["i"].as_u64().unwrap(), next[w]);
        next[w] += 1;
    }
    assert_eq!(next, [20; WRITERS]);
}

#[test]
fn a_second_writer_is_refused_with_the_holders_pid_and_gets_the_lock_once_released() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    // The first writer holds the lock while it waits for input.
    let mut first = append(&log, &["--receipts"]).spawn().unwrap();
    let mut stdin = first.stdin.take().unwrap();
    let mut receipts = BufReader::new(first.stdout.take().unwrap());
    stdin.write_all(line(0, 0).as_bytes()).unwrap();
    stdin.flush().unwrap();
    let mut receipt = String::new();
    receipts.read_line(&mut receipt).unwrap();
    assert!(receipt.starts_with("1 "), "{receipt}");

    // Readers need no lock: verify and read while the writer holds it.
    let verify = AUDITRING
        .command()
        .arg("verify")
        .arg(&log)
        .arg("--json")
        .output()
        .unwrap();
    assert_eq!(verify.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&verify.stdout).unwrap();
    assert_eq!(v["events"], 1);
    assert_eq!(Reader::open(&log).unwrap().snapshot().unwrap().len(), 1);

    let mut second = append(&log, &[]).spawn().unwrap();
    // It may be gone already, refused, before it reads a byte: a broken pipe is fine here.
    let _ = second
        .stdin
        .take()
        .unwrap()
        .write_all(line(1, 0).as_bytes());
    let out = second.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&log.display().to_string()), "{err}");
    assert!(err.contains(&format!("pid {}", first.id())), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");

    // A waiting writer gets in once the first one is done.
    let mut third = append(&log, &["--wait"]).spawn().unwrap();
    let mut third_in = third.stdin.take().unwrap();
    third_in.write_all(line(2, 0).as_bytes()).unwrap();
    drop(third_in);
    drop(stdin);
    assert!(first.wait().unwrap().success());
    assert!(third.wait().unwrap().success());
    let snap = Reader::open(&log).unwrap().snapshot().unwrap();
    assert_eq!(snap.len(), 2);
}

#[test]
fn a_writer_that_fails_midway_keeps_what_it_wrote_and_releases_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let mut child = append(&log, &[]).spawn().unwrap();
    {
        let mut stdin = child.stdin.take().unwrap();
        for i in 0..5 {
            stdin.write_all(line(0, i).as_bytes()).unwrap();
        }
        stdin.write_all(b"{\"kind\": \"broken\"\n").unwrap();
        stdin.write_all(line(0, 99).as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 6"), "{err}");

    // No --wait: the lock must be free.
    let ring = Ring::open(&log).expect("the failed writer released the lock");
    let snap = ring.snapshot();
    assert_eq!(
        snap.len(),
        5,
        "what was written before the bad line stays, nothing after"
    );
    ring.close().unwrap();
    assert!(
        auditring::verify(&log, auditring::VerifyOptions::default())
            .unwrap()
            .is_ok()
    );
}

/// Feeds events to an `append --durability batch --receipts` child, kills it with SIGKILL after
/// `kill_after` receipts, and checks every receipt against the reopened log.
fn kill_during_load(kill_after: usize, segment_size: &str) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let mut child = append(
        &log,
        &[
            "--durability",
            "batch",
            "--receipts",
            "--segment-size",
            segment_size,
        ],
    )
    .spawn()
    .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let feeder = thread::spawn(move || {
        let mut i = 0;
        // Until the child dies and the pipe breaks.
        while stdin.write_all(line(0, i).as_bytes()).is_ok() {
            i += 1;
        }
    });
    let mut receipts = Vec::new();
    for l in BufReader::new(child.stdout.take().unwrap()).lines() {
        let l = l.unwrap();
        let (seq, hash) = l.split_once(' ').unwrap();
        receipts.push((seq.parse::<u64>().unwrap(), Hash::from_hex(hash).unwrap()));
        if receipts.len() == kill_after {
            child.kill().unwrap(); // SIGKILL
            break;
        }
    }
    child.wait().unwrap();
    feeder.join().unwrap();
    assert_eq!(receipts.len(), kill_after);

    let report = auditring::verify(&log, auditring::VerifyOptions::default()).unwrap();
    assert!(report.is_ok(), "{:?}", report.failure);
    let ring = Ring::open(&log).unwrap();
    let snap = ring.snapshot();
    for (i, (seq, chain)) in receipts.iter().enumerate() {
        assert_eq!(
            *seq,
            i as u64 + 1,
            "receipts come in seq order without gaps"
        );
        let r = snap
            .get(*seq)
            .unwrap()
            .expect("a receipted event is present");
        assert_eq!(r.chain, *chain, "seq {seq}");
    }
    assert!(snap.head_seq() >= receipts.len() as u64);
    // The chain goes on from where it was.
    let next = ring
        .push_receipt(auditring::Event::new("after.crash"))
        .unwrap();
    assert_eq!(next.seq, snap.head_seq() + 1);
    ring.close().unwrap();
    assert!(
        auditring::verify(&log, auditring::VerifyOptions::default())
            .unwrap()
            .is_ok()
    );
}

#[test]
fn sigkill_during_a_group_commit_load_loses_no_receipted_event() {
    kill_during_load(3_000, "65536");
    kill_during_load(20_000, "1048576");
}

/// Starts `append --receipts --json` on `log`, feeds it events until it dies, reads `kill_after`
/// receipts and kills it with SIGKILL (at once, maybe during its recovery, if 0). Returns the
/// receipts read, `(seq, chain)`.
fn append_and_kill(
    log: &std::path::Path,
    durability: &str,
    round: usize,
    kill_after: u64,
) -> Vec<(u64, Hash)> {
    let mut child = append(
        log,
        &[
            "--durability",
            durability,
            "--receipts",
            "--json",
            "--segment-size",
            "65536",
        ],
    )
    .spawn()
    .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let feeder = thread::spawn(move || {
        let mut i = 0;
        // Until the child dies and the pipe breaks.
        while stdin.write_all(line(round, i).as_bytes()).is_ok() {
            i += 1;
        }
    });
    let mut receipts = Vec::new();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    while (receipts.len() as u64) < kill_after {
        let mut l = String::new();
        if out.read_line(&mut l).unwrap() == 0 {
            let status = child.wait().unwrap();
            let mut err = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
            panic!("round {round}: the writer stopped early ({status}): {err}");
        }
        let r: serde_json::Value = serde_json::from_str(&l).unwrap();
        receipts.push((
            r["seq"].as_u64().unwrap(),
            Hash::from_hex(r["head_hash"].as_str().unwrap()).unwrap(),
        ));
    }
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "round {round}: the writer was killed: {status}"
    );
    feeder.join().unwrap();
    receipts
}

#[test]
fn sigkill_at_random_receipts_under_every_policy_loses_no_receipted_event() {
    let mut rng = Rng(0x5191_c111);
    let mut kills = 0;
    let mut checked = 0;
    let mut receipted = 0;
    for durability in ["none", "periodic", "batch"] {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        // Every receipt of every round so far: each writer recovers what the previous one left,
        // and must keep all of it.
        let mut all: Vec<(u64, Hash)> = Vec::new();
        for round in 0..18 {
            // Now and then at once (during recovery, or before any event); otherwise after up
            // to 600 receipts (several 64 KiB segments).
            let kill_after = if rng.below(6) == 0 {
                0
            } else {
                1 + rng.below(600)
            };
            let receipts = append_and_kill(&log, durability, round, kill_after);
            kills += 1;
            // A receipt is printed once its event is sequenced (`none`) or synced: in order,
            // continuing the log.
            for (k, (seq, _)) in receipts.iter().enumerate() {
                let expected = all.last().map_or(1, |l| l.0 + 1) + k as u64;
                assert!(
                    *seq >= expected,
                    "{durability} round {round}: receipt {seq} after {expected}"
                );
            }
            all.extend(receipts);
            if !log.join("0000000000000001.seg").exists() {
                continue; // killed before it created the log
            }
            let report = auditring::verify(&log, auditring::VerifyOptions::default()).unwrap();
            assert!(
                report.is_ok(),
                "{durability} round {round}: {:?}",
                report.failure
            );
            let snap = Reader::open(&log).unwrap().snapshot().unwrap();
            for (seq, chain) in &all {
                let r = snap
                    .get(*seq)
                    .unwrap()
                    .unwrap_or_else(|| panic!("{durability} round {round}: seq {seq} lost"));
                assert_eq!(r.chain, *chain, "{durability} round {round}: seq {seq}");
                checked += 1;
            }
        }
        // A writer that closes cleanly after all that, and the log still verifies.
        let ring = Ring::open(&log).unwrap();
        let head = ring.snapshot().head_seq();
        assert!(head >= all.last().map_or(0, |l| l.0));
        ring.close().unwrap();
        let report = auditring::verify(&log, auditring::VerifyOptions::default()).unwrap();
        assert!(report.is_ok(), "{durability}: {:?}", report.failure);
        assert_eq!(report.last_seq, head);
        receipted += all.len();
    }
    println!(
        "processes: {kills} writers killed with SIGKILL, {receipted} receipts read from them, \
         {checked} checks of a receipt against a reopened log, 0 lost"
    );
    assert!(kills >= 50);
}

/// Found by the test above: a writer killed while it created the first segment of a new log
/// left `.0000000000000001.seg.tmp`, and every later writer failed to create the segment
/// ("File exists").
#[test]
fn a_log_whose_first_segment_creation_was_interrupted_opens() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    std::fs::create_dir(&log).unwrap();
    let tmp = log.join(".0000000000000001.seg.tmp");
    std::fs::write(&tmp, vec![0u8; 4096]).unwrap();
    let ring = Ring::open(&log).expect("the leftover of an interrupted creation is removed");
    assert!(ring.recovery().created);
    assert_eq!(
        ring.recovery().removed,
        vec![".0000000000000001.seg.tmp".to_string()]
    );
    assert!(!tmp.exists());
    ring.push_receipt(auditring::Event::new("after.crash"))
        .unwrap();
    ring.close().unwrap();
    assert!(
        auditring::verify(&log, auditring::VerifyOptions::default())
            .unwrap()
            .is_ok()
    );
}
