//! `auditring ship`, and the reading commands on a shipped log by its URL: through the
//! filesystem store of `object_store` (`file://`); `ship/tests/s3.rs` covers a real S3 API.

use std::path::Path;

use auditring_testkit::cli::{Cli, s};

const AUDITRING: Cli = Cli::new(env!("CARGO_BIN_EXE_auditring"));

fn lines(from: u64, to: u64) -> String {
    (from..to)
        .map(|i| {
            format!(
                "{{\"kind\":\"ship\",\"actor\":\"u{}\",\"details\":{{\"i\":{i},\"pad\":\"{}\"}}}}\n",
                i % 5,
                "z".repeat(150)
            )
        })
        .collect()
}

/// A log of a few 64 KiB segments in `dir`.
fn log(dir: &Path, from: u64, to: u64) {
    let out = AUDITRING.run(
        &[
            "append",
            s(dir),
            "--segment-size",
            "65536",
            "--durability",
            "none",
        ],
        &lines(from, to),
    );
    assert!(out.status.success(), "{out:?}");
}

fn text(out: &std::process::Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn ship_then_verify_query_and_export_by_url() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    log(&dir, 0, 2000);
    let url = format!("file://{}/store/fleet/host-a", tmp.path().display());
    let out = AUDITRING.run(&["ship", s(&dir), "--to", &url, "--json"], "");
    assert!(out.status.success(), "{out:?}");
    let first: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let uploaded = first["uploaded"].as_array().unwrap().len();
    assert!(uploaded >= 3, "{first}");
    let last_seq = first["head"]["last_seq"].as_u64().unwrap();
    // Again: nothing to upload.
    let out = AUDITRING.run(&["ship", s(&dir), "--to", &url, "--json"], "");
    let again: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(again["uploaded"].as_array().unwrap().len(), 0);
    assert_eq!(again["already_there"], uploaded);

    let out = AUDITRING.run(&["verify", &url, "--json"], "");
    assert!(out.status.success(), "{out:?}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], true);
    assert_eq!(report["last_seq"], last_seq);

    let out = AUDITRING.run(
        &["query", &url, "--actor", "u3", "--limit", "3", "--json"],
        "",
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(text(&out).0.lines().count(), 3);

    let export = tmp.path().join("export");
    let out = AUDITRING.run(
        &["export", &url, "--format", "bundle", "--out", s(&export)],
        "",
    );
    assert!(out.status.success(), "{out:?}");
    let out = AUDITRING.run(&["verify-export", s(&export), "--json"], "");
    assert!(out.status.success(), "{out:?}");
    let verified: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(verified["last_seq"], last_seq);
}

#[test]
fn a_fleet_is_verified_in_one_run_and_an_edited_object_is_named_by_url() {
    let tmp = tempfile::tempdir().unwrap();
    let fleet = format!("file://{}/store/fleet", tmp.path().display());
    for host in ["host-a", "host-b", "host-c"] {
        let dir = tmp.path().join(host);
        log(&dir, 0, 1200);
        let out = AUDITRING.run(&["ship", s(&dir), "--to", &format!("{fleet}/{host}")], "");
        assert!(out.status.success(), "{out:?}");
        assert!(text(&out).0.contains("shipped"), "{out:?}");
    }
    let out = AUDITRING.run(&["verify", &fleet, "--hosts"], "");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        text(&out).0.contains("3 host(s): 3 verified, 0 failed"),
        "{out:?}"
    );

    // A byte of host-b's second segment, edited in the store.
    let object = tmp.path().join("store/fleet/host-b/0000000000000002.seg");
    let mut bytes = std::fs::read(&object).unwrap();
    bytes[9000] ^= 1;
    std::fs::write(&object, bytes).unwrap();
    let out = AUDITRING.run(&["verify", &fleet, "--hosts", "--json"], "");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let hosts: Vec<serde_json::Value> = text(&out)
        .0
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ok: Vec<bool> = hosts.iter().map(|h| h["ok"].as_bool().unwrap()).collect();
    assert_eq!(ok, [true, false, true]);
    assert_eq!(
        hosts[1]["error"]["file"],
        format!("{fleet}/host-b/0000000000000002.seg")
    );
    assert!(hosts[1]["error"]["offset"].as_u64().unwrap() <= 9000);

    // The newest segment of host-c removed from the store: its log no longer reaches what
    // the shipper's head says.
    let c = tmp.path().join("store/fleet/host-c");
    let mut segments: Vec<_> = std::fs::read_dir(&c)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    segments.sort();
    std::fs::remove_file(segments.last().unwrap()).unwrap();
    let out = AUDITRING.run(&["verify", &format!("{fleet}/host-c")], "");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(text(&out).1.contains("removed from its end"), "{out:?}");
}

#[test]
fn mistakes_are_refused_with_the_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    log(&a, 0, 800);
    log(&b, 0, 800);
    let url = format!("file://{}/store/h", tmp.path().display());
    assert!(
        AUDITRING
            .run(&["ship", s(&a), "--to", &url], "")
            .status
            .success()
    );
    // Another log to the same prefix.
    let out = AUDITRING.run(&["ship", s(&b), "--to", &url], "");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        text(&out)
            .1
            .contains("each log ships to a prefix of its own"),
        "{out:?}"
    );
    // A URL no store answers to, and one that is not a URL.
    let out = AUDITRING.run(&["ship", s(&a), "--to", "nosuch://bucket/x"], "");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(text(&out).1.contains("nosuch://bucket/x"), "{out:?}");
    let out = AUDITRING.run(&["ship", s(&a), "--to", "not a url"], "");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    // --hosts needs a URL; --every needs a positive number.
    let out = AUDITRING.run(&["verify", s(&a), "--hosts"], "");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let out = AUDITRING.run(&["ship", s(&a), "--to", &url, "--every", "0"], "");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    // A prefix with no log.
    let empty = format!("file://{}/store/nothing", tmp.path().display());
    let out = AUDITRING.run(&["verify", &empty], "");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

/// `ship --every` outlives a store out of reach: the failed pass is reported, and the next
/// one ships once the store is back.
#[test]
fn ship_every_rides_out_a_store_out_of_reach() {
    use std::io::{BufRead, BufReader};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    log(&dir, 0, 800);
    // A file where the store's directory must go: every put fails.
    let store = tmp.path().join("store");
    std::fs::write(&store, b"in the way").unwrap();
    let url = format!("file://{}/h", store.display());
    let mut child = AUDITRING.spawn(&["ship", s(&dir), "--to", &url, "--every", "0.05"]);
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(
        line.contains("this pass failed, the next one is in"),
        "{line}"
    );
    std::fs::remove_file(&store).unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut shipped = String::new();
    stdout.read_line(&mut shipped).unwrap();
    // SAFETY: kill(2) of our own child, reaped below.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    child.wait().unwrap();
    assert!(shipped.starts_with("shipped "), "{shipped}");
    assert!(!shipped.starts_with("shipped 0 "), "{shipped}");
}
