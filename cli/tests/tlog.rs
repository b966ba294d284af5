//! Keys, proofs, checkpoints and witnesses from the command line, as an operator and an
//! auditor use them: `keygen`, `append --checkpoint-key`, `prove`, `check-proof`,
//! `verify --checkpoint`, `witness` and `verify --witness --quorum` (`docs/SECURITY.md`).

use std::path::Path;

use auditring_testkit::cli::{Cli, json, ok, s};

/// The binary under test.
const AUDITRING: Cli = Cli::new(env!("CARGO_BIN_EXE_auditring"));

/// `n` lines of events for `append`.
fn lines(from: u64, n: u64) -> String {
    (from..from + n)
        .map(|i| format!("{{\"kind\":\"cli.tlog\",\"details\":{{\"i\":{i}}}}}\n"))
        .collect()
}

/// A key pair made by `keygen` in `dir`: (secret key file, verifier key file).
fn keygen(dir: &Path, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let secret = dir.join(format!("{}.key", name.replace('/', "_")));
    let public = dir.join(format!("{}.pub", name.replace('/', "_")));
    let out = ok(&AUDITRING.run(&["keygen", name, "--out", s(&secret)], ""));
    std::fs::write(&public, &out).unwrap();
    (secret, public)
}

#[test]
fn keygen_writes_a_private_key_and_never_replaces_one() {
    use std::os::unix::fs::PermissionsExt as _;
    let tmp = tempfile::tempdir().unwrap();
    let (secret, public) = keygen(tmp.path(), "audit.example/log");
    let mode = std::fs::metadata(&secret).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let text = std::fs::read_to_string(&secret).unwrap();
    assert!(text.starts_with("PRIVATE+KEY+audit.example/log+"), "{text}");
    let verifier = std::fs::read_to_string(&public).unwrap();
    assert!(verifier.starts_with("audit.example/log+"), "{verifier}");
    assert!(!verifier.contains("PRIVATE"));
    // An existing file is never replaced: exit 5.
    let out = AUDITRING.run(&["keygen", "other", "--out", s(&secret)], "");
    assert_eq!(out.status.code(), Some(5), "{out:?}");
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), text);
    // A name the spec forbids: exit 2.
    let out = AUDITRING.run(
        &["keygen", "a+b", "--out", s(&tmp.path().join("x.key"))],
        "",
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

#[test]
fn checkpoints_written_by_append_prove_the_log_and_its_records() {
    let tmp = tempfile::tempdir().unwrap();
    let (log, cps) = (tmp.path().join("log"), tmp.path().join("cps"));
    let (secret, public) = keygen(tmp.path(), "audit.example/log");
    let append = |from, n| {
        ok(&AUDITRING.run(
            &[
                "append",
                s(&log),
                "--segment-size",
                "65536",
                "--checkpoint-key",
                s(&secret),
                "--checkpoint-dir",
                s(&cps),
                "--checkpoint-every",
                "500",
            ],
            &lines(from, n),
        ));
    };
    append(0, 1_200);
    let first = std::fs::read_to_string(cps.join("checkpoint")).unwrap();
    assert!(first.contains("\n1200\n"), "{first}");
    std::fs::write(tmp.path().join("cp1200"), &first).unwrap();
    append(1_200, 800);
    let latest = cps.join("checkpoint");
    let history = cps.join("checkpoints.jsonl");

    let v = json(&AUDITRING.run(
        &[
            "verify",
            s(&log),
            "--checkpoint",
            s(&history),
            "--key",
            s(&public),
            "--json",
        ],
        "",
    ));
    assert_eq!(v["ok"], true, "{v}");
    let sizes: Vec<u64> = v["checkpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["size"].as_u64().unwrap())
        .collect();
    for n in [500, 1_000, 1_200, 1_500, 2_000] {
        assert!(sizes.contains(&n), "{n}: {sizes:?}");
    }

    // An inclusion proof, checked without the log.
    let proof = tmp.path().join("proof.json");
    std::fs::write(
        &proof,
        ok(&AUDITRING.run(&["prove", s(&log), "--seq", "777"], "")),
    )
    .unwrap();
    let check = |proof: &Path, cps: &[&Path]| {
        let mut args = vec!["check-proof", s(proof), "--key", s(&public)];
        for cp in cps {
            args.extend(["--checkpoint", s(cp)]);
        }
        AUDITRING.run(&args, "")
    };
    ok(&check(&proof, &[&latest]));
    // Tampered: exit 1.
    let mut p: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&proof).unwrap()).unwrap();
    p["seq"] = 778.into();
    let bad = tmp.path().join("bad.json");
    std::fs::write(&bad, p.to_string()).unwrap();
    assert_eq!(check(&bad, &[&latest]).status.code(), Some(1));

    // A consistency proof from the checkpoint of 1200 to the latest.
    let cproof = tmp.path().join("consistency.json");
    std::fs::write(
        &cproof,
        ok(&AUDITRING.run(&["prove", s(&log), "--old", "1200"], "")),
    )
    .unwrap();
    let old = tmp.path().join("cp1200");
    ok(&check(&cproof, &[&old, &latest]));
    // In the wrong order the sizes do not match: unusable input, exit 2.
    assert_eq!(check(&cproof, &[&latest, &old]).status.code(), Some(2));

    // The log cut at a record boundary: the chain alone passes, the checkpoint does not.
    let cut = tmp.path().join("cut");
    auditring_testkit::slots::copy_dir(&log, &cut);
    let newest = std::fs::read_dir(&cut)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| Path::new(n).extension().is_some_and(|e| e == "seg"))
        .max()
        .unwrap();
    std::fs::remove_file(cut.join(newest)).unwrap();
    ok(&AUDITRING.run(&["verify", s(&cut)], ""));
    let out = AUDITRING.run(
        &[
            "verify",
            s(&cut),
            "--checkpoint",
            s(&latest),
            "--key",
            s(&public),
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("were cut"), "{text}");
    // Another key's checkpoint is not evidence: exit 2.
    let (_, other) = keygen(tmp.path(), "someone.else/log");
    let out = AUDITRING.run(
        &[
            "verify",
            s(&log),
            "--checkpoint",
            s(&latest),
            "--key",
            s(&other),
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

#[test]
fn a_witness_cosigns_only_one_history() {
    let tmp = tempfile::tempdir().unwrap();
    let (log, cps) = (tmp.path().join("log"), tmp.path().join("cps"));
    let (secret, public) = keygen(tmp.path(), "audit.example/log");
    let (wkey, wpub) = keygen(tmp.path(), "witness.example/w1");
    let state = tmp.path().join("witness-state");
    let append = |log: &Path, cps: &Path, from, n| {
        ok(&AUDITRING.run(
            &[
                "append",
                s(log),
                "--checkpoint-key",
                s(&secret),
                "--checkpoint-dir",
                s(cps),
            ],
            &lines(from, n),
        ));
        std::fs::read_to_string(cps.join("checkpoint")).unwrap()
    };
    let witness = |cp: &str, proof: Option<&Path>| {
        let file = tmp.path().join("to-witness");
        std::fs::write(&file, cp).unwrap();
        let mut args = vec![
            "witness",
            "--key",
            s(&wkey),
            "--state",
            s(&state),
            "--log-key",
            s(&public),
            s(&file),
        ];
        if let Some(p) = proof {
            args.extend(["--proof", s(p)]);
        }
        AUDITRING.run(&args.iter().map(|a| &**a).collect::<Vec<_>>(), "")
    };
    // The first checkpoint the witness sees is cosigned as it is.
    let cp1 = append(&log, &cps, 0, 100);
    let cosigned1 = ok(&witness(&cp1, None));
    assert!(cosigned1.starts_with(&cp1));
    assert_eq!(cosigned1.lines().count(), cp1.lines().count() + 1);

    // A fork: the same log key signs another history (the host was taken), copied before the
    // log grew, with other events.
    let (fork, fork_cps) = (tmp.path().join("fork"), tmp.path().join("fork-cps"));
    auditring_testkit::slots::copy_dir(&log, &fork);
    let cp2 = append(&log, &cps, 100, 50);
    let forked = append(&fork, &fork_cps, 5_000, 50);
    let proof = |log: &Path| {
        let p = tmp.path().join(format!(
            "proof-{}",
            log.file_name().unwrap().to_str().unwrap()
        ));
        std::fs::write(
            &p,
            ok(&AUDITRING.run(&["prove", s(log), "--old", "100"], "")),
        )
        .unwrap();
        p
    };
    // The honest extension is cosigned, with its proof; the fork cannot be.
    let cosigned2 = ok(&witness(&cp2, Some(&proof(&log))));
    let out = witness(&forked, Some(&proof(&fork)));
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("split view"), "{err}");
    // Nor is a rollback, nor a tree of the same size with another root, nor growth without a
    // proof.
    assert_eq!(witness(&cp1, None).status.code(), Some(1));
    assert_eq!(witness(&forked, None).status.code(), Some(1));
    let cp3 = append(&log, &cps, 150, 10);
    assert_eq!(witness(&cp3, None).status.code(), Some(2));

    // A verifier that requires the witness accepts the honest log, and refuses the fork's
    // checkpoint: no witness cosigned it.
    let with_witness = |log: &Path, cp: &str| {
        let file = tmp.path().join("cp-to-check");
        std::fs::write(&file, cp).unwrap();
        AUDITRING.run(
            &[
                "verify",
                s(log),
                "--checkpoint",
                s(&file),
                "--key",
                s(&public),
                "--witness",
                s(&wpub),
                "--quorum",
                "1",
            ],
            "",
        )
    };
    ok(&with_witness(&log, &cosigned2));
    let out = with_witness(&fork, &forked);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    // Without the witness, the fork's own checkpoint proves it consistent with itself: the
    // split view that only a witness catches.
    ok(&AUDITRING.run(
        &[
            "verify",
            s(&fork),
            "--checkpoint",
            s(&fork_cps.join("checkpoint")),
            "--key",
            s(&public),
        ],
        "",
    ));
}

#[test]
fn an_export_tied_to_a_checkpoint_is_proved_against_it_without_the_log() {
    let tmp = tempfile::tempdir().unwrap();
    let (log, cps) = (tmp.path().join("log"), tmp.path().join("cps"));
    let (secret, public) = keygen(tmp.path(), "audit.example/log");
    ok(&AUDITRING.run(
        &[
            "append",
            s(&log),
            "--checkpoint-key",
            s(&secret),
            "--checkpoint-dir",
            s(&cps),
            "--checkpoint-every",
            "100",
        ],
        &lines(0, 1_000),
    ));
    let latest = cps.join("checkpoint");
    let out = tmp.path().join("q2");
    ok(&AUDITRING.run(
        &[
            "export",
            s(&log),
            "--format",
            "bundle",
            "--from",
            "201",
            "--to",
            "600",
            "--out",
            s(&out),
            "--checkpoint",
            s(&latest),
        ],
        "",
    ));
    assert!(out.join("tree.json").is_file());
    // With the key only, the checkpoint the export carries; with a history, each one the
    // export can reach (sizes 200 to 600, and the one it carries a proof to).
    let v = json(&AUDITRING.run(
        &["verify-export", s(&out), "--key", s(&public), "--json"],
        "",
    ));
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["checkpoints"][0]["size"], 1_000);
    let cp300 = tmp.path().join("cp300");
    let history = std::fs::read_to_string(cps.join("checkpoints.jsonl")).unwrap();
    let line = history
        .lines()
        .find(|l| l.contains("\"size\":300"))
        .unwrap();
    let note: serde_json::Value = serde_json::from_str(line).unwrap();
    std::fs::write(&cp300, note["note"].as_str().unwrap()).unwrap();
    let text = ok(&AUDITRING.run(
        &[
            "verify-export",
            s(&out),
            "--key",
            s(&public),
            "--checkpoint",
            s(&cp300),
        ],
        "",
    ));
    assert!(
        text.contains("consistent with 1 checkpoint(s), the largest of size 300"),
        "{text}"
    );
    // The tree file tampered with: exit 1, located at the export's first seq.
    let tree = std::fs::read_to_string(out.join("tree.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&tree).unwrap();
    let hash = v["prefix"][0].as_str().unwrap();
    let other = format!(
        "{}{}",
        &hash[..63],
        if hash.ends_with('a') { "b" } else { "a" }
    );
    std::fs::write(out.join("tree.json"), tree.replace(hash, &other)).unwrap();
    let bad = AUDITRING.run(
        &["verify-export", s(&out), "--key", s(&public), "--json"],
        "",
    );
    assert_eq!(bad.status.code(), Some(1), "{bad:?}");
    assert_eq!(json(&bad)["error"]["seq"], 201);
    // Without a key it is an export like any other; a checkpoint without a key is a usage error.
    ok(&AUDITRING.run(&["verify-export", s(&out)], ""));
    let usage = AUDITRING.run(&["verify-export", s(&out), "--checkpoint", s(&cp300)], "");
    assert_eq!(usage.status.code(), Some(2), "{usage:?}");
}
