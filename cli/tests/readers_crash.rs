//! Readers of a log that a crash or another process left in an unusual state: a segment whose
//! sealing was interrupted.

use auditring_testkit::cli::{Cli, json};
use auditring_testkit::slots::{data_offset, edit_slot, segment};

/// The binary under test.
const AUDITRING: Cli = Cli::new(env!("CARGO_BIN_EXE_auditring"));

/// A closed log of `n` 64 KiB segments, written by the command-line tool.
fn log_of_segments(dir: &std::path::Path, n: u64) {
    let line = "{\"kind\":\"test.crash\",\"actor\":\"alice\",\"details\":{\"pad\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}}\n";
    let dir_arg = dir.to_str().unwrap();
    while !segment(dir, n).exists() {
        let out = AUDITRING.run(
            &["append", dir_arg, "--segment-size", "65536"],
            &line.repeat(200),
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Segment `n`'s newest slot as a crash leaves it when the writer moved on to segment `n + 1`
/// before anything of `n` was committed: only its activation slot (no record committed, not
/// sealed), its records past it.
fn only_the_activation_slot(data_offset: u64) -> impl Fn(&mut [u8]) {
    move |slot| {
        let first = u64::from_le_bytes(slot[8..16].try_into().unwrap());
        slot[16..24].copy_from_slice(&data_offset.to_le_bytes());
        slot[24..32].copy_from_slice(&(first - 1).to_le_bytes());
        slot[32..36].fill(0);
        let anchor = slot[40..72].to_vec();
        slot[72..104].copy_from_slice(&anchor);
    }
}

#[test]
fn segments_does_not_call_sealed_a_segment_whose_slot_is_only_its_activation_slot() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    log_of_segments(&log, 3);
    let offset = data_offset(&log, 2);
    edit_slot(&log, 2, only_the_activation_slot(offset));
    let log_arg = log.to_str().unwrap();

    let out = AUDITRING.run(&["segments", log_arg, "--json"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json(&out);
    let segs = v.as_array().unwrap();
    assert!(segs.len() >= 3);
    assert_eq!(segs[0]["sealed"], true);
    assert_eq!(segs[1]["sealed"], false, "{v}");
    // Its records are all there, read past the activation slot.
    assert!(segs[1]["events"].as_u64().unwrap() > 0);
    let last = segs.len() - 1;
    assert_eq!(segs[last]["sealed"], false);

    let out = AUDITRING.run(&["segments", log_arg], "");
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].ends_with("sealed"), "{text}");
    assert!(
        lines[1].ends_with("unsealed (a crash interrupted its sealing)"),
        "{text}"
    );
    assert!(lines[last].ends_with("active"), "{text}");

    // A writer reopening the log seals it.
    let out = AUDITRING.run(&["append", log_arg], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json(&AUDITRING.run(&["segments", log_arg, "--json"], ""));
    assert_eq!(v[1]["sealed"], true, "{v}");
}

/// How a writer whose segment was cut under it ended.
enum Cut {
    /// The writer found the cut (its records go in with `pwrite`, which past the end of a cut
    /// file extends it again, with a hole, so it checks the length after each write and at
    /// each sync): it failed with exit code 4, naming the file and the length it found.
    Reported,
    /// A store through the mapping, in the part of the file that was cut, killed it with
    /// `SIGBUS`, and the handler named the file.
    Sigbus,
}

/// Runs `append` into `log` (1 MiB segments), feeds it 20 events, waits until a reader sees
/// them, cuts segment 1 to `cut` bytes, and feeds it until it stops. Checks that it says which
/// file was cut, that another process did it, and that reopening recovers the log; returns how
/// it ended.
fn cut_under_a_live_writer(log: &std::path::Path, cut: u64) -> Cut {
    use std::io::{Read, Write};
    use std::os::unix::process::ExitStatusExt;
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    let mut child = AUDITRING
        .command()
        .arg("append")
        .arg(log)
        .args(["--segment-size", "1048576"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let line = "{\"kind\":\"test.cut\",\"details\":{\"pad\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}}\n";
    stdin.write_all(line.repeat(20).as_bytes()).unwrap();
    stdin.flush().unwrap();
    // A hang guard only.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let seen = auditring::Reader::open(log)
            .and_then(|r| r.snapshot())
            .map_or(0, |s| s.len());
        if seen >= 20 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the writer never wrote 20 events"
        );
        std::thread::yield_now();
    }
    std::fs::OpenOptions::new()
        .write(true)
        .open(segment(log, 1))
        .unwrap()
        .set_len(cut)
        .unwrap();
    // Enough events to write past the cut; the pipe breaks when the writer stops.
    for _ in 0..200 {
        if stdin.write_all(line.repeat(100).as_bytes()).is_err() {
            break;
        }
    }
    drop(stdin);
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    let path = segment(log, 1).display().to_string();
    let ended = if status.signal() == Some(libc::SIGBUS) {
        assert!(
            stderr.contains("auditring: SIGBUS at byte ")
                && stderr.contains(&format!(
                    " of {path}: the file was truncated by another process"
                )),
            "{stderr}"
        );
        Cut::Sigbus
    } else {
        assert_eq!(status.code(), Some(4), "{status}: {stderr}");
        // The length found is the cut's, or, when a write past the cut extended the file
        // again, the end of that write: never the segment's own length.
        let found: u64 = stderr
            .split_once(&format!("{path} is "))
            .and_then(|(_, rest)| rest.split_once(" bytes where it must be 1048576"))
            .and_then(|(n, _)| n.parse().ok())
            .unwrap_or_else(|| panic!("no length of {path} in: {stderr}"));
        assert!((cut..1_048_576).contains(&found), "{found}: {stderr}");
        assert!(
            stderr.contains("the file was truncated by another process"),
            "{stderr}"
        );
        // It does not claim that lines it pushed are in the log: the cut took them.
        assert!(
            stderr.contains("the log cannot be read back to tell which lines"),
            "{stderr}"
        );
        Cut::Reported
    };
    assert!(
        stderr.contains("the log can be recovered by reopening it"),
        "{stderr}"
    );
    ended
}

#[test]
fn a_writer_whose_segment_is_cut_past_its_commits_says_so_and_the_log_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    // Past the commit slots and the index, which are stored through the mapping: only the
    // records' `pwrite` meets the cut, and the length checks around it find it.
    assert!(matches!(
        cut_under_a_live_writer(&log, 512 * 1024),
        Cut::Reported
    ));
    let log_arg = log.to_str().unwrap();
    // Reopening gives the file its length back and recovers what was committed before.
    let out = AUDITRING.run(&["append", log_arg], "{\"kind\":\"after\"}\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = AUDITRING.run(&["verify", log_arg, "--json"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let v = json(&out);
    assert!(v["events"].as_u64().unwrap() >= 21, "{v}");
    assert_eq!(
        std::fs::metadata(segment(&log, 1)).unwrap().len(),
        1_048_576
    );
}

#[test]
fn a_writer_whose_segment_is_cut_to_nothing_says_so_and_reopening_names_the_cut() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    // Whichever comes first: a commit slot stored through the mapping, or a `pwrite`. A
    // `pwrite` that lands after the cut extends the file again with zeros where the header
    // was, so the file is then either empty or has no magic: lost either way, and named.
    let _ = cut_under_a_live_writer(&log, 0);
    let log_arg = log.to_str().unwrap();
    for args in [&["append", log_arg][..], &["verify", log_arg][..]] {
        let out = AUDITRING.run(args, "");
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        let text = String::from_utf8_lossy(if args[0] == "verify" {
            &out.stdout
        } else {
            &out.stderr
        })
        .into_owned();
        assert!(
            text.contains(&segment(&log, 1).display().to_string())
                && (text.contains("truncated header: the file is 0 bytes")
                    || text.contains("at byte 0: bad magic: not an auditring segment")),
            "{text}"
        );
    }
}
