//! Forward-secure sealing from the command line, as an operator and an auditor use it:
//! `seal-keygen`, `append --seal-state`, `verify --seal-key [--expect-epoch]`
//! (`docs/SECURITY.md`, "Sealed epochs").

use std::path::Path;

use auditring_testkit::cli::{Cli, json, ok, s};
use auditring_testkit::rechain::{find, rechain_with};

/// The binary under test.
const AUDITRING: Cli = Cli::new(env!("CARGO_BIN_EXE_auditring"));

fn lines(from: u64, n: u64) -> String {
    (from..from + n)
        .map(|i| format!("{{\"kind\":\"cli.seal\",\"details\":{{\"i\":{i}}}}}\n"))
        .collect()
}

#[test]
fn an_operator_seals_with_append_and_an_auditor_checks_the_seals() {
    use std::os::unix::fs::PermissionsExt as _;
    let tmp = tempfile::tempdir().unwrap();
    let (key, state, log) = (
        tmp.path().join("audit.sealkey"),
        tmp.path().join("audit.seal"),
        tmp.path().join("log"),
    );
    ok(&AUDITRING.run(&["seal-keygen", "--key", s(&key), "--state", s(&state)], ""));
    for f in [&key, &state] {
        let mode = std::fs::metadata(f).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{}", f.display());
    }
    let key_text = std::fs::read_to_string(&key).unwrap();
    // Never replaced: exit 5, both files as they were.
    let again = AUDITRING.run(
        &[
            "seal-keygen",
            "--key",
            s(&key),
            "--state",
            s(&tmp.path().join("new.seal")),
        ],
        "",
    );
    assert_eq!(again.status.code(), Some(5), "{again:?}");
    assert_eq!(std::fs::read_to_string(&key).unwrap(), key_text);
    assert!(!tmp.path().join("new.seal").exists());

    for (from, n) in [(0, 250), (250, 30)] {
        ok(&AUDITRING.run(
            &[
                "append",
                s(&log),
                "--seal-state",
                s(&state),
                "--seal-every",
                "100",
            ],
            &lines(from, n),
        ));
    }
    let report = json(&AUDITRING.run(&["verify", s(&log), "--seal-key", s(&key), "--json"], ""));
    assert_eq!(report["ok"], true, "{report}");
    let seals = &report["seals"];
    let last_epoch = seals["last_epoch"].as_u64().unwrap();
    assert!(last_epoch >= 3, "{report}");
    assert_eq!(seals["first_epoch"], 0);
    assert_eq!(seals["unsealed"], 0);
    assert_eq!(seals["sealed_through"], report["last_seq"]);
    let text = ok(&AUDITRING.run(&["verify", s(&log), "--seal-key", s(&key)], ""));
    assert!(
        text.contains(&format!("sealed through seq {}", report["last_seq"])),
        "{text}"
    );
    assert!(text.contains("0 record(s) after it not sealed"), "{text}");
    // Without --seal-key, no seal report.
    let plain = json(&AUDITRING.run(&["verify", s(&log), "--json"], ""));
    assert_eq!(plain["seals"], serde_json::Value::Null);

    // The auditor knows the last epoch: a later check that finds less fails with exit 1.
    let expect = (last_epoch + 1).to_string();
    let out = AUDITRING.run(
        &[
            "verify",
            s(&log),
            "--seal-key",
            s(&key),
            "--expect-epoch",
            &expect,
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("its last seal is for epoch"));

    // A rewrite with fresh hashes passes the chain, fails the seals: exit 1, located.
    let mut files: std::collections::BTreeMap<String, Vec<u8>> = std::fs::read_dir(&log)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| Path::new(n).extension().is_some_and(|e| e == "seg"))
        .map(|n| (n.clone(), std::fs::read(log.join(&n)).unwrap()))
        .collect();
    rechain_with(&mut files, |_, _, body| {
        if let Some(at) = find(body, b"\"i\":42}") {
            body[at + 5] = b'3';
        }
    });
    for (n, b) in &files {
        std::fs::write(log.join(n), b).unwrap();
    }
    for e in std::fs::read_dir(&log).unwrap() {
        let n = e.unwrap().file_name().into_string().unwrap();
        if n.contains(".t") {
            std::fs::remove_file(log.join(n)).unwrap();
        }
    }
    ok(&AUDITRING.run(&["verify", s(&log)], ""));
    let out = AUDITRING.run(&["verify", s(&log), "--seal-key", s(&key), "--json"], "");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let report = json(&out);
    let reason = report["error"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("does not verify with that epoch's key"),
        "{report}"
    );
    assert!(report["error"]["seq"].as_u64().unwrap() > 43);

    // Usage errors: exit 2.
    let bad = tmp.path().join("bad.sealkey");
    std::fs::write(&bad, "not a key\n").unwrap();
    for args in [
        vec!["verify", s(&log), "--seal-key", s(&bad)],
        vec![
            "verify",
            s(&log),
            "--seal-key",
            s(&tmp.path().join("missing")),
        ],
        vec!["verify", s(&log), "--expect-epoch", "1"],
        vec![
            "append",
            s(&log),
            "--seal-state",
            s(&tmp.path().join("missing")),
        ],
    ] {
        let out = AUDITRING.run(&args, "");
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
    }
}
