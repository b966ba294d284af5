//! Many writers into one log: 16 writers of 100 events each (short-lived processes: a cron
//! job, a command-line call), then of 10,000 each, events of about 200 bytes, under group
//! commit (`--durability batch`, the command-line default), four ways, interleaved run by run
//! (the order rotates) so that the machine's drift touches them all alike:
//!
//! * `daemon`: 16 processes `auditring append --socket`, into one `auditring serve`;
//! * `turns`: 16 processes `auditring append --wait`, each taking the writer lock in turn
//!   (what many short-lived processes do without a daemon);
//! * `clients`: 16 threads of one process, each with its own `DaemonClient` connection to the
//!   same daemon (the protocol's cost without starting processes);
//! * `in-process`: 16 producer threads of one ring (what the daemon's ring itself does).
//!
//! Each writer's events and the final wait for durability are timed, from the moment all
//! writers start to the moment the last one is done; the daemon is started before the clock.
//! Ratios are medians of per-run ratios.
//!
//! ```text
//! cargo bench -p auditring-cli --bench daemon
//! cargo bench -p auditring-cli --bench daemon -- --runs 3 --events 1000,100000
//! ```

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use auditring::{DaemonClient, Durability, Event, Ring};
use auditring_bench::load::median;

/// The binary under test.
const AUDITRING: &str = env!("CARGO_BIN_EXE_auditring");

/// Writers, each a process or a thread.
const WRITERS: usize = 16;

/// The ways of writing, as the table names them.
const DESIGNS: [&str; 4] = ["daemon", "turns", "clients", "in-process"];

/// Event `i` of writer `w`, as a JSON line for `append` (about 200 bytes).
fn line(w: usize, i: u64) -> String {
    format!(
        "{{\"kind\":\"bench.daemon\",\"actor\":\"writer-{w}\",\"trace_id\":\"{i:032x}\",\
         \"details\":{{\"writer\":{w},\"i\":{i},\"pad\":\"{}\"}}}}\n",
        "x".repeat(64)
    )
}

/// The same event, for the in-process writers.
fn event(w: usize, i: u64) -> Event {
    Event::new("bench.daemon")
        .with_actor(format!("writer-{w}"))
        .with_trace_id(format!("{i:032x}"))
        .with_details_json(format!(
            "{{\"writer\":{w},\"i\":{i},\"pad\":\"{}\"}}",
            "x".repeat(64)
        ))
        .expect("a valid event")
}

/// A directory for the logs, emptied first.
fn scratch() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("daemon-bench");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the scratch directory");
    dir
}

/// Writes each writer's input file once.
fn inputs(dir: &Path, events: u64) -> Vec<PathBuf> {
    (0..WRITERS)
        .map(|w| {
            let path = dir.join(format!("writer-{w}.jsonl"));
            let mut f = std::io::BufWriter::new(File::create(&path).expect("create an input"));
            for i in 0..events {
                f.write_all(line(w, i).as_bytes()).expect("write an input");
            }
            f.flush().expect("write an input");
            path
        })
        .collect()
}

/// A running `auditring serve`, stopped on drop.
struct Served {
    child: Child,
    socket: PathBuf,
}

impl Served {
    /// Starts a daemon on `log` and waits until it says it listens.
    fn start(log: &Path, socket: &Path) -> Served {
        let mut child = Command::new(AUDITRING)
            .arg("serve")
            .arg(log)
            .arg("--socket")
            .arg(socket)
            .args(["--durability", "batch"])
            .stderr(Stdio::piped())
            .spawn()
            .expect("start auditring serve");
        let mut stderr = BufReader::new(child.stderr.take().expect("piped"));
        let mut first = String::new();
        stderr
            .read_line(&mut first)
            .expect("read the daemon's first line");
        assert!(first.contains("serving"), "the daemon said: {first}");
        // The rest of what it says goes nowhere, without ever filling the pipe.
        std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
        Served {
            child,
            socket: socket.to_path_buf(),
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        // SAFETY: kill(2) of our own child, which is reaped below.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let status = self.child.wait().expect("wait for the daemon");
        assert!(status.success(), "the daemon ended with {status}");
    }
}

/// Runs `auditring append ARGS` once per input, all at once; the time until the last is done.
fn processes(args: &[&str], inputs: &[PathBuf]) -> Duration {
    let start = Instant::now();
    let children: Vec<Child> = inputs
        .iter()
        .map(|input| {
            Command::new(AUDITRING)
                .arg("append")
                .args(args)
                .stdin(File::open(input).expect("open an input"))
                .stdout(Stdio::null())
                .spawn()
                .expect("start auditring append")
        })
        .collect();
    for mut c in children {
        let status = c.wait().expect("wait for append");
        assert!(status.success(), "append ended with {status}");
    }
    start.elapsed()
}

/// Runs `write(w)` on 16 threads started together; the time until the last is done.
fn threads(write: impl Fn(usize) + Send + Sync + 'static) -> Duration {
    let write = Arc::new(write);
    let barrier = Arc::new(Barrier::new(WRITERS + 1));
    let handles: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (write, barrier) = (write.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                write(w);
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    for h in handles {
        h.join().expect("a writer panicked");
    }
    start.elapsed()
}

/// One run of `design`: its duration, and the events the log holds after it.
fn run(design: &str, dir: &Path, inputs: &[PathBuf], events: u64) -> (Duration, u64) {
    let log = dir.join(format!("{design}-log"));
    let _ = std::fs::remove_dir_all(&log);
    let socket = dir.join("audit.sock");
    let took = match design {
        "daemon" => {
            let served = Served::start(&log, &socket);
            let socket = served.socket.to_str().expect("a UTF-8 path").to_owned();
            processes(&["--socket", &socket], inputs)
        }
        "turns" => {
            let log = log.to_str().expect("a UTF-8 path");
            processes(&[log, "--wait", "--durability", "batch"], inputs)
        }
        "clients" => {
            let served = Served::start(&log, &socket);
            let socket = served.socket.clone();
            threads(move |w| {
                let mut c = DaemonClient::connect(&socket).expect("connect");
                for i in 0..events {
                    c.record(&event(w, i)).expect("record");
                }
                c.flush().expect("flush");
            })
        }
        "in-process" => {
            let ring = Arc::new(
                Ring::builder(&log)
                    .durability(Durability::Batch)
                    .open()
                    .expect("open the ring"),
            );
            let writers = ring.clone();
            let took = threads(move |w| {
                let p = writers.producer();
                for i in 0..events {
                    p.push(event(w, i)).expect("push");
                }
                p.flush().expect("flush");
            });
            Arc::into_inner(ring)
                .expect("the writers are done")
                .close()
                .expect("close");
            took
        }
        other => panic!("unknown design {other}"),
    };
    let report = auditring::verify(&log, auditring::VerifyOptions::default()).expect("verify");
    assert!(report.is_ok(), "{design}: {:?}", report.failure);
    (took, report.events)
}

fn main() {
    let mut runs = 5;
    let mut sizes: Vec<u64> = vec![100, 10_000];
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--runs" => runs = args.next().and_then(|v| v.parse().ok()).expect("--runs N"),
            "--events" => {
                sizes = args
                    .next()
                    .and_then(|v| v.split(',').map(|n| n.parse().ok()).collect())
                    .expect("--events N[,N...]");
            }
            // What cargo bench passes to every harness.
            "--bench" => {}
            other => panic!("unknown argument {other}: --runs N, --events N[,N...]"),
        }
    }
    for events in sizes {
        scenario(runs, events);
    }
}

/// Every design `runs` times with writers of `events` events each; prints the table.
fn scenario(runs: usize, events: u64) {
    let dir = scratch();
    let inputs = inputs(&dir, events);
    let total = events * WRITERS as u64;
    // rates[design][run], events per second.
    let mut rates = vec![Vec::new(); DESIGNS.len()];
    for r in 0..runs {
        for k in 0..DESIGNS.len() {
            let d = (r + k) % DESIGNS.len();
            let (took, held) = run(DESIGNS[d], &dir, &inputs, events);
            assert_eq!(held, total, "{}: every event in the log", DESIGNS[d]);
            let rate = total as f64 / took.as_secs_f64();
            eprintln!("run {r}: {:<11} {:>12.0} events/s", DESIGNS[d], rate);
            rates[d].push(rate);
        }
    }
    println!("\n{WRITERS} writers x {events} events, --durability batch, median of {runs} runs\n");
    println!("{:<11} {:>12}  daemon is", "design", "events/s");
    for (d, name) in DESIGNS.iter().enumerate() {
        let ratio = median(
            rates[0]
                .iter()
                .zip(&rates[d])
                .map(|(ours, theirs)| ours / theirs)
                .collect(),
        );
        println!("{name:<11} {:>12.0}  {ratio:.2}x", median(rates[d].clone()));
    }
}
