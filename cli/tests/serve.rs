//! `auditring serve` and `append --socket`: many processes append through one daemon into one
//! gapless chain; a client killed mid-batch loses nothing it was told was durable; a daemon
//! killed with SIGKILL recovers like any writer, and its socket is taken over by the next.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStderr};

use auditring::{Reader, VerifyOptions, verify};
use auditring_testkit::cli::{Cli, s};

const AUDITRING: Cli = Cli::new(env!("CARGO_BIN_EXE_auditring"));

/// Starts `auditring serve DIR --socket SOCKET ARGS` and returns once it listens (it says so
/// on stderr, after the socket is in place).
fn serve(dir: &Path, socket: &Path, args: &[&str]) -> (Child, BufReader<ChildStderr>) {
    let mut all = vec!["serve", s(dir), "--socket", s(socket)];
    all.extend_from_slice(args);
    let mut child = AUDITRING.spawn(&all);
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(line.contains("serving"), "{line}");
    (child, stderr)
}

/// Sends SIGTERM to the daemon and checks it stops cleanly.
fn stop(mut daemon: Child, mut stderr: BufReader<ChildStderr>) {
    // SAFETY: plain system call on a child process's pid.
    assert_eq!(unsafe { libc::kill(daemon.id() as i32, libc::SIGTERM) }, 0);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    assert!(daemon.wait().unwrap().success(), "{rest}");
    assert!(rest.contains("stopped"), "{rest}");
}

fn lines(process: u64, from: u64, to: u64) -> String {
    (from..to)
        .map(|i| format!("{{\"kind\":\"p\",\"actor\":\"p{process}\",\"details\":{{\"i\":{i}}}}}\n"))
        .collect()
}

/// 16 processes × 10,000 events through one daemon: all there, once, each process's in order,
/// and the log verifies.
#[test]
fn sixteen_processes_append_through_one_daemon() {
    const PROCESSES: u64 = 16;
    const EACH: u64 = 10_000;
    let tmp = tempfile::tempdir().unwrap();
    let (dir, socket) = (tmp.path().join("log"), tmp.path().join("audit.sock"));
    let (daemon, stderr) = serve(&dir, &socket, &["--durability", "none"]);
    let clients: Vec<_> = (0..PROCESSES)
        .map(|p| {
            let socket = socket.clone();
            std::thread::spawn(move || {
                AUDITRING.run(&["append", "--socket", s(&socket)], &lines(p, 0, EACH))
            })
        })
        .collect();
    for c in clients {
        let out = c.join().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    stop(daemon, stderr);
    assert!(!socket.exists(), "the daemon removes its socket");
    let report = verify(&dir, VerifyOptions::default()).unwrap();
    assert!(report.is_ok(), "{:?}", report.failure);
    assert_eq!(report.events, PROCESSES * EACH);
    let snap = Reader::open(&dir).unwrap().snapshot().unwrap();
    let mut next = vec![0u64; PROCESSES as usize];
    for r in snap.iter() {
        let r = r.unwrap();
        let p: usize = r.actor.as_deref().unwrap()[1..].parse().unwrap();
        let d: serde_json::Value = serde_json::from_str(r.details.as_deref().unwrap()).unwrap();
        assert_eq!(d["i"], next[p], "process {p}: out of order or duplicated");
        next[p] += 1;
    }
    assert!(next.iter().all(|&n| n == EACH));
}

/// A client that printed receipts (durable: the daemon syncs per batch) and was then killed
/// mid-batch: every event it had a receipt for is in the log, with that seq and chain hash.
/// Then the daemon is killed with SIGKILL: the log reopens, recovered like any writer's, with
/// every receipted event; and a new daemon takes over the socket the dead one left.
#[test]
fn kills_of_a_client_and_of_the_daemon_lose_nothing_acknowledged() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, socket) = (tmp.path().join("log"), tmp.path().join("audit.sock"));
    let (mut daemon, _stderr) = serve(&dir, &socket, &["--durability", "batch"]);

    let mut client = AUDITRING.spawn(&["append", "--socket", s(&socket), "--receipts"]);
    let mut input = client.stdin.take().unwrap();
    let mut receipts = BufReader::new(client.stdout.take().unwrap());
    // Lines go in as the receipts come out: 500 receipted, then more lines, then the kill.
    let mut acknowledged = Vec::new();
    for i in 0..500 {
        input.write_all(lines(0, i, i + 1).as_bytes()).unwrap();
        input.flush().unwrap();
        let mut line = String::new();
        receipts.read_line(&mut line).unwrap();
        let (seq, chain) = line.trim().split_once(' ').unwrap();
        acknowledged.push((seq.parse::<u64>().unwrap(), chain.to_owned()));
    }
    input.write_all(lines(0, 500, 600).as_bytes()).unwrap();
    client.kill().unwrap();
    client.wait().unwrap();

    // SAFETY: plain system call on a child process's pid.
    assert_eq!(unsafe { libc::kill(daemon.id() as i32, libc::SIGKILL) }, 0);
    daemon.wait().unwrap();
    assert!(socket.exists(), "a killed daemon leaves its socket");

    // The next daemon recovers the log as any writer does, and takes over the stale socket.
    let (daemon, stderr) = serve(&dir, &socket, &[]);
    let out = AUDITRING.run(
        &["append", "--socket", s(&socket), "--receipts"],
        &lines(1, 0, 1),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stop(daemon, stderr);

    let report = verify(&dir, VerifyOptions::default()).unwrap();
    assert!(report.is_ok(), "{:?}", report.failure);
    let snap = Reader::open(&dir).unwrap().snapshot().unwrap();
    assert!(snap.head_seq() > 500);
    for (seq, chain) in &acknowledged {
        let r = snap.get(*seq).unwrap().unwrap();
        assert_eq!(&r.chain.to_string(), chain, "seq {seq}");
    }
}

/// A line the daemon refuses (an event larger than its log takes) fails the command with exit
/// code 2 and the daemon's reason; a socket where no daemon listens fails it with a clear
/// message.
#[test]
fn refusals_and_a_missing_daemon_are_clear_failures() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, socket) = (tmp.path().join("log"), tmp.path().join("audit.sock"));
    let out = AUDITRING.run(&["append", "--socket", s(&socket)], &lines(0, 0, 1));
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("audit.sock"), "{err}");

    let (daemon, stderr) = serve(&dir, &socket, &[]);
    // Over the daemon's largest event (1 MiB by default), under twice it.
    let large = format!(
        "{{\"kind\":\"big\",\"details\":\"{}\"}}\n",
        "x".repeat(3 << 19)
    );
    let out = AUDITRING.run(
        &["append", "--socket", s(&socket)],
        &(lines(0, 0, 3) + &large),
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refused"), "{err}");
    stop(daemon, stderr);
    assert_eq!(verify(&dir, VerifyOptions::default()).unwrap().events, 3);
}
