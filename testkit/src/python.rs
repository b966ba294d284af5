//! Running the independent verifiers in `tools/` (Python, standard library only) and reading
//! what they, or the `auditring` binary, print: one JSON object and an exit code.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

use serde_json::Value;

/// The path of `tools/NAME` (`verify_log.py`, `verify_export.py`).
pub fn tool(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tools")
        .join(name)
}

/// The Python interpreter `python3` runs (resolved once, to skip launcher scripts such as pyenv
/// shims on every run). Fails the test, loudly, when there is no `python3`.
pub fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let out = std::process::Command::new("python3")
            .args(["-c", "import sys; print(sys.executable)"])
            .output();
        match out {
            Ok(o) if o.status.success() => {
                let exe = String::from_utf8_lossy(&o.stdout).trim().to_owned();
                if exe.is_empty() {
                    PathBuf::from("python3")
                } else {
                    PathBuf::from(exe)
                }
            }
            Ok(o) => panic!(
                "python3 is required by this test (to run the verifiers in tools/) but `python3 \
                 -c ...` failed: {}",
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => panic!(
                "python3 is required by this test (to run the verifiers in tools/) but could not \
                 be started: {e}. Install Python 3 and make sure `python3` is on PATH."
            ),
        }
    })
}

/// `python3 tools/NAME DIR EXTRA..`: the verifier `name` on `dir`; it always prints one JSON
/// object.
pub fn run_tool(name: &str, dir: &Path, extra: &[&str]) -> Report {
    let out = std::process::Command::new(python())
        .arg(tool(name))
        .arg(dir)
        .args(extra)
        .output()
        .unwrap_or_else(|e| panic!("running python3 tools/{name}: {e}"));
    Report::read(name, &out, true)
}

/// What one verifier said.
pub struct Report {
    /// Its exit code.
    pub code: i32,
    /// The JSON object it printed (`Value::Null` when none was required and none came).
    pub json: Value,
    /// Everything it printed.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
}

impl Report {
    /// Reads `out` of the verifier `what`; with `json_required`, fails the test unless stdout is
    /// one JSON object.
    pub fn read(what: &str, out: &Output, json_required: bool) -> Report {
        let code = out
            .status
            .code()
            .unwrap_or_else(|| panic!("{what} was killed: {:?}", out.status));
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let json = match serde_json::from_str::<Value>(stdout.trim()) {
            Ok(v) => v,
            Err(_) if !json_required => Value::Null,
            Err(e) => panic!(
                "{what} did not print one JSON object ({e}); exit {code}\nstdout: \
                 {stdout}\nstderr: {stderr}"
            ),
        };
        Report {
            code,
            json,
            stdout,
            stderr,
        }
    }

    /// The exit code and everything printed, for failure messages.
    pub fn describe(&self) -> String {
        format!(
            "exit {}\nstdout: {}\nstderr: {}",
            self.code, self.stdout, self.stderr
        )
    }

    /// `(seq, file, offset)` of the reported failure.
    pub fn error_at(&self) -> (Value, Value, Value) {
        let e = &self.json["error"];
        assert!(e.is_object(), "no error reported: {}", self.describe());
        (e["seq"].clone(), e["file"].clone(), e["offset"].clone())
    }
}
