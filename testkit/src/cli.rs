//! Running the `auditring` binary under test.
//!
//! Only the tests of the package that builds the binary know where it is
//! (`env!("CARGO_BIN_EXE_auditring")`), so they pass the path in:
//!
//! ```text
//! use auditring_testkit::cli::Cli;
//!
//! const AUDITRING: Cli = Cli::new(env!("CARGO_BIN_EXE_auditring"));
//!
//! let out = AUDITRING.run(&["verify", dir, "--json"], "");
//! ```

use std::io::Write;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

/// The binary under test, by its path.
#[derive(Clone, Copy, Debug)]
pub struct Cli {
    path: &'static str,
}

impl Cli {
    /// The binary at `path`.
    pub const fn new(path: &'static str) -> Cli {
        Cli { path }
    }

    /// The path of the binary.
    pub fn path(&self) -> &'static str {
        self.path
    }

    /// A command that runs the binary, with no arguments yet.
    pub fn command(&self) -> Command {
        Command::new(self.path)
    }

    /// Starts `auditring ARGS` with its standard input, output and error piped.
    pub fn spawn(&self, args: &[&str]) -> Child {
        self.command()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Runs `auditring ARGS` with `stdin` as its standard input, and waits for it. A command
    /// that fails before it reads all of its input (a wrong path, a daemon not there) closes
    /// it: the write that then fails is not an error here, the command's exit status and
    /// output say what happened.
    pub fn run(&self, args: &[&str], stdin: &str) -> Output {
        let mut child = self.spawn(args);
        let written = child.stdin.take().unwrap().write_all(stdin.as_bytes());
        if let Err(e) = written {
            assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
        }
        child.wait_with_output().unwrap()
    }

    /// Runs `auditring ARGS` with `stdin` as its standard input, which the command may stop
    /// reading early (a write to it that fails because it did is not an error here). Kills the
    /// command if it has not ended after five minutes: a guard against a hang, not a timing
    /// condition.
    pub fn run_partial_stdin(&self, args: &[&str], stdin: Vec<u8>) -> Output {
        let mut child = self.spawn(args);
        let mut input = child.stdin.take().unwrap();
        let writer = std::thread::spawn(move || {
            let _ = input.write_all(&stdin);
        });
        let pid = child.id() as i32;
        let (done, finished) = crossbeam::channel::bounded::<()>(1);
        let guard = std::thread::spawn(move || {
            if finished.recv_timeout(Duration::from_secs(300)).is_err() {
                // SAFETY: kill(2) on the child's pid, which is not reaped before `done` is sent.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        });
        let out = child.wait_with_output().unwrap();
        let _ = done.send(());
        guard.join().unwrap();
        writer.join().unwrap();
        assert!(
            out.status.code().is_some(),
            "auditring hung and was killed: {out:?}"
        );
        out
    }
}

/// The one JSON object a command printed on stdout.
pub fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not one JSON object ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// The standard output of a command that must have succeeded (its output and error shown if
/// not).
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{:?}: {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// A path as a command-line argument.
pub fn s(p: &std::path::Path) -> &str {
    p.to_str().unwrap()
}
