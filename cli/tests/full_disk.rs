//! `auditring append` when the next segment cannot be created: a full file system, or something
//! else where the file should go. The command must end promptly (exit 4) and say exactly which
//! lines are in the log, so that a script can resume from the right line.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use auditring_testkit::cli::Cli;

/// The binary under test.
const AUDITRING: Cli = Cli::new(env!("CARGO_BIN_EXE_auditring"));

fn lines(from: u64, to: u64) -> String {
    (from..to)
        .map(|i| {
            format!(
                "{{\"kind\":\"k\",\"actor\":\"a\",\"details\":{{\"i\":{i},\"pad\":\"{}\"}}}}\n",
                "x".repeat(100)
            )
        })
        .collect()
}

/// Runs `auditring ARGS` with `stdin`; the command may stop reading early.
fn run(args: &[&str], stdin: String) -> Output {
    AUDITRING.run_partial_stdin(args, stdin.into_bytes())
}

/// The `i` of every record of the log, in seq order.
fn logged(dir: &Path) -> Vec<u64> {
    let snap = auditring::Reader::open(dir).unwrap().snapshot().unwrap();
    snap.iter()
        .map(|r| {
            let d: serde_json::Value =
                serde_json::from_str(r.unwrap().details.as_deref().unwrap()).unwrap();
            d["i"].as_u64().unwrap()
        })
        .collect()
}

/// Checks the failure report of `append` against the log: the lines it says are in the log
/// are, and nothing after; returns the line to resume from.
fn check_report(out: &Output, dir: &Path, before: u64, first_line_i: u64) -> u64 {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    let resume: u64 = stderr
        .split("resume from line ")
        .nth(1)
        .unwrap_or_else(|| panic!("no line to resume from: {stderr}"))
        .trim()
        .parse()
        .unwrap();
    let log = logged(dir);
    let appended = log.len() as u64 - before;
    // Lines are 1-based, and line 1 holds event `first_line_i`.
    assert_eq!(resume, appended + 1, "{stderr}");
    assert_eq!(log, (0..before + appended).collect::<Vec<_>>());
    assert_eq!(first_line_i, before);
    if appended > 0 {
        assert!(
            stderr.contains(&format!("seqs {}..={}", before + 1, before + appended)),
            "{stderr}"
        );
    }
    assert!(
        auditring::verify(dir, auditring::VerifyOptions::default())
            .unwrap()
            .is_ok()
    );
    resume
}

#[test]
fn a_directory_put_where_the_next_segment_goes_ends_append_with_the_exact_lines_written() {
    use std::io::{BufRead, BufReader};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let d = dir.to_str().unwrap();
    let seg = ["--segment-size", "65536"];
    let out = run(&[&["append", d][..], &seg].concat(), lines(0, 10));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A writer runs; once its first events are in (far from the half of the segment where the
    // next one is created ahead of time), a directory takes the next segment's name.
    let mut child = AUDITRING.spawn(&[&["append", d, "--receipts"][..], &seg].concat());
    let mut input = child.stdin.take().unwrap();
    let mut receipts = BufReader::new(child.stdout.take().unwrap());
    input.write_all(lines(10, 20).as_bytes()).unwrap();
    input.flush().unwrap();
    let mut printed = 0u64;
    let mut line = String::new();
    while printed < 10 {
        line.clear();
        assert!(receipts.read_line(&mut line).unwrap() > 0, "no receipt");
        printed += 1;
    }
    std::fs::create_dir(dir.join("0000000000000002.seg")).unwrap();
    let writer = std::thread::spawn(move || {
        // A broken pipe is the command having stopped reading: allowed.
        let _ = input.write_all(lines(20, 2_000).as_bytes());
    });
    let rest: Vec<String> = receipts.lines().map(Result::unwrap).collect();
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is a directory"), "{stderr}");
    // The operator moves the directory away (readers refuse a log holding one), checks the
    // report, and resumes where it said.
    std::fs::remove_dir(dir.join("0000000000000002.seg")).unwrap();
    let resume = check_report(&out, &dir, 10, 10);
    // Every receipt printed is for an event in the log.
    assert_eq!(printed + rest.len() as u64, resume - 1);
    let out = run(
        &[&["append", d][..], &seg].concat(),
        lines(10 + resume - 1, 2_000),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(logged(&dir), (0..2_000).collect::<Vec<_>>());
}

/// A tmpfs of `size` mounted on a new directory, unmounted on drop; `None` where this process
/// may not mount one (not root).
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Tmpfs(dir))
    }

    fn resize(&self, size: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(self.0.path())
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.0.path()).status();
    }
}

#[test]
fn a_full_file_system_ends_append_promptly_with_the_exact_lines_written() {
    for durability in ["none", "batch", "periodic"] {
        for events in [600, 20_000] {
            let Some(fs) = Tmpfs::mount("100k") else {
                eprintln!(
                    "skipped: mounting a tmpfs needs root (the storage-level stall tests run anyway)"
                );
                return;
            };
            let dir = fs.0.path().join("log");
            let d = dir.to_str().unwrap();
            let args = [
                "append",
                d,
                "--segment-size",
                "65536",
                "--durability",
                durability,
            ];
            let out = run(&args, lines(0, events));
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(stderr.contains("No space left on device"), "{stderr}");
            let resume = check_report(&out, &dir, 0, 0);
            // Space comes back; the script resumes from the line it was told.
            fs.resize("16m");
            let out = run(&args, lines(resume - 1, events));
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(
                logged(&dir),
                (0..events).collect::<Vec<_>>(),
                "{durability} {events}"
            );
        }
    }
}
