//! Readers of a log that a crash or another process left in an unusual state: a segment whose
//! sealing was interrupted.

mod common;
#[path = "common/slots.rs"]
mod slots;

use common::run;
use slots::{data_offset, edit_slot, segment};

/// A closed log of `n` 64 KiB segments, written by the command-line tool.
fn log_of_segments(dir: &std::path::Path, n: u64) {
    let line = "{\"kind\":\"test.crash\",\"actor\":\"alice\",\"details\":{\"pad\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}}\n";
    let dir_arg = dir.to_str().unwrap();
    while !segment(dir, n).exists() {
        let out = run(
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

    let out = run(&["segments", log_arg, "--json"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = common::json(&out);
    let segs = v.as_array().unwrap();
    assert!(segs.len() >= 3);
    assert_eq!(segs[0]["sealed"], true);
    assert_eq!(segs[1]["sealed"], false, "{v}");
    // Its records are all there, read past the activation slot.
    assert!(segs[1]["events"].as_u64().unwrap() > 0);
    let last = segs.len() - 1;
    assert_eq!(segs[last]["sealed"], false);

    let out = run(&["segments", log_arg], "");
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].ends_with("sealed"), "{text}");
    assert!(
        lines[1].ends_with("unsealed (a crash interrupted its sealing)"),
        "{text}"
    );
    assert!(lines[last].ends_with("active"), "{text}");

    // A writer reopening the log seals it.
    let out = run(&["append", log_arg], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = common::json(&run(&["segments", log_arg, "--json"], ""));
    assert_eq!(v[1]["sealed"], true, "{v}");
}
