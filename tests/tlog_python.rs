//! `tools/tlog.py`, an independent implementation of signed notes, checkpoints, cosignatures
//! and RFC 9162 Merkle proofs written from the public specifications: its own tests pass, it
//! opens what the crate signs and verifies the proofs the crate makes (`docs/FORMAT.md` §15.3,
//! §15.4), and the crate verifies what it signs.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use auditring::{
    Checkpoint, Checkpoints, Event, Hash, Reader, Ring, SignatureType, SignedCheckpoint,
    SigningKey, Snapshot, cosign, open_note, verify_cosignatures,
};
use auditring_testkit::python::{python, tool};
use serde_json::{Value, json};

/// Reads one job (JSON) on stdin, does it with `tlog` (imported from the directory given as
/// the first argument) and prints what it found (JSON). A verification that fails is reported
/// as the exception's class and message, for the test to assert on.
const DRIVER: &str = r#"
import json
import sys

sys.path.insert(0, sys.argv[1])
import tlog


def attempt(check, *args):
    try:
        check(*args)
        return None
    except tlog.TlogError as e:
        return "%s: %s" % (type(e).__name__, e)


def flipped(hashes, i):
    out = list(hashes)
    out[i] = bytes([out[i][0] ^ 1]) + out[i][1:]
    return out


job = json.load(sys.stdin)
out = {"checkpoints": [], "proofs": []}
roots = {}
for note in job["notes"]:
    checkpoint, signed_by = tlog.open_checkpoint(note, [job["log_key"]], job["origin"])
    roots[checkpoint.size] = checkpoint.root_hash
    out["checkpoints"].append(
        {
            "origin": checkpoint.origin,
            "size": checkpoint.size,
            "root": checkpoint.root_hash.hex(),
            "extensions": list(checkpoint.extensions),
            "signed_by": signed_by,
        }
    )

# Proofs as `auditring prove` prints them (FORMAT.md section 15.3), checked against the roots of
# the checkpoints opened above, not against the roots the proofs carry.
for proof in job["proofs"]:
    hashes = [bytes.fromhex(h) for h in proof["hashes"]]
    if proof["type"] == "inclusion":
        size = proof["tree_size"]

        def check(hs, leaf=proof["leaf"], size=size, seq=proof["seq"]):
            leaf_hash = tlog.leaf_hash(bytes.fromhex(leaf))
            tlog.verify_inclusion(leaf_hash, seq - 1, size, hs, roots[size])

        other = attempt(lambda: check(hashes, leaf=proof["other_leaf"]))
    else:

        def check(hs, old=proof["old_size"], new=proof["new_size"]):
            tlog.verify_consistency(old, new, roots[old], roots[new], hs)

        other = None
    out["proofs"].append(
        {
            "ok": attempt(check, hashes),
            "tampered": [attempt(check, flipped(hashes, i)) for i in range(len(hashes))],
            "other_leaf": other,
        }
    )

out["cosignatures"] = [
    list(c) for c in tlog.verify_cosignatures(job["cosigned"], [job["witness_key"]], 1)
]
out["miscosigned"] = attempt(tlog.verify_cosignatures, job["miscosigned"], [job["witness_key"]], 1)
log_seed, witness_seed = bytes.fromhex(job["log_seed"]), bytes.fromhex(job["witness_seed"])
out["signature_line"] = tlog.signature_line(job["log_name"], log_seed, job["body"])
out["cosignature_line"] = tlog.cosignature_line(
    job["witness_name"], witness_seed, job["body"], job["timestamp"]
)
out["other_cosignature_line"] = tlog.cosignature_line(
    job["witness_name"], witness_seed, job["other_body"], job["timestamp"]
)
print(json.dumps(out))
"#;

/// Runs [`DRIVER`] on `job`.
fn run_driver(job: &Value) -> Value {
    let mut child = Command::new(python())
        .arg("-c")
        .arg(DRIVER)
        .arg(tool("tlog.py").parent().unwrap())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(job.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the tlog.py driver failed: {stderr}");
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("the driver printed no JSON ({e}): {stderr}"))
}

/// `python3 -m unittest tools/test_tlog.py`, from the repository root, passes.
#[test]
fn tlog_py_unit_tests_pass() {
    let out = Command::new(python())
        .args(["-m", "unittest", "tools/test_tlog.py"])
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "tools/test_tlog.py failed:\n{stderr}");
    let ran: u64 = stderr
        .lines()
        .find_map(|l| l.strip_prefix("Ran "))
        .and_then(|l| l.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no test count in:\n{stderr}"));
    assert!(ran >= 40, "only {ran} tests ran:\n{stderr}");
    assert!(stderr.lines().any(|l| l == "OK"), "{stderr}");
}

fn hexes(hashes: &[Hash]) -> Vec<String> {
    hashes.iter().map(Hash::to_hex).collect()
}

/// The inclusion proof of `seq` in the tree of `size`, as `auditring prove --seq` prints it,
/// and the leaf of another record (which the proof must not prove).
fn inclusion(snap: &Snapshot, seq: u64, size: u64) -> Value {
    let proof = snap.inclusion_proof(seq, size).unwrap();
    let leaf = snap.get(seq).unwrap().unwrap().leaf;
    let other = snap
        .get(if seq == 1 { 2 } else { seq - 1 })
        .unwrap()
        .unwrap()
        .leaf;
    json!({
        "type": "inclusion",
        "log_id": snap.log_id().to_string(),
        "seq": seq,
        "tree_size": size,
        "leaf": leaf.to_hex(),
        "root": snap.root_at(size).unwrap().to_hex(),
        "hashes": hexes(&proof.hashes),
        "other_leaf": other.to_hex(),
    })
}

/// The consistency proof from `old` to `new`, as `auditring prove --old` prints it.
fn consistency(snap: &Snapshot, old: u64, new: u64) -> Value {
    let proof = snap.consistency_proof(old, new).unwrap();
    json!({
        "type": "consistency",
        "log_id": snap.log_id().to_string(),
        "old_size": old,
        "new_size": new,
        "old_root": snap.root_at(old).unwrap().to_hex(),
        "new_root": snap.root_at(new).unwrap().to_hex(),
        "hashes": hexes(&proof.hashes),
    })
}

const LOG_NAME: &str = "audit.example/log";
const LOG_SEED: [u8; 32] = [0x11; 32];
const WITNESS_NAME: &str = "witness.example/w1";
const WITNESS_SEED: [u8; 32] = [0x22; 32];
const TIMESTAMP: u64 = 1_700_000_000;

fn seed_hex(seed: &[u8; 32]) -> String {
    seed.iter().map(|b| format!("{b:02x}")).collect()
}

/// The crate writes a log with checkpoints; `tools/tlog.py` opens every note with the verifier
/// key string (same origin, size and root), verifies the crate's inclusion and consistency
/// proofs against the checkpoints' roots (and refuses each with one hash changed, and each
/// inclusion proof for another record), and verifies the crate's cosignature. The other way
/// round, what `tlog.py` signs with the same keys is what the crate signs, byte for byte, and the
/// crate verifies it; a cosignature of another checkpoint fails in both.
#[test]
fn tlog_py_and_the_crate_verify_each_other() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let log_key = SigningKey::from_seed(LOG_NAME, SignatureType::Ed25519, &LOG_SEED).unwrap();
    let witness =
        SigningKey::from_seed(WITNESS_NAME, SignatureType::Ed25519, &WITNESS_SEED).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let collect = seen.clone();
    let ring = Ring::builder(&dir)
        .checkpoints(
            Checkpoints::new(
                SigningKey::from_seed(LOG_NAME, SignatureType::Ed25519, &LOG_SEED).unwrap(),
            )
            .every_events(300)
            .to_callback(move |c| {
                collect.lock().unwrap().push(c.clone());
                Ok(())
            }),
        )
        .open()
        .unwrap();
    for i in 0..2_000 {
        ring.push(
            Event::new("tlog.test")
                .with_details_json(format!("{{\"i\":{i}}}"))
                .unwrap(),
        )
        .unwrap();
    }
    ring.close().unwrap();
    let signed: Vec<SignedCheckpoint> = seen.lock().unwrap().clone();
    assert!(signed.len() >= 5, "{} checkpoints", signed.len());
    let sizes: Vec<u64> = signed.iter().map(|c| c.checkpoint().size()).collect();
    assert!(sizes.windows(2).all(|w| w[0] < w[1]), "{sizes:?}");
    let snap = Reader::open(&dir).unwrap().snapshot().unwrap();
    let origin = format!("auditring/{}", snap.log_id());
    let last = signed.last().unwrap();
    let last_size = last.checkpoint().size();
    assert_eq!(last_size, 2_000);

    let mut proofs = Vec::new();
    for &n in &sizes {
        for seq in [1, n / 2 + 1, n] {
            proofs.push(inclusion(&snap, seq, n));
        }
    }
    for w in sizes.windows(2) {
        proofs.push(consistency(&snap, w[0], w[1]));
    }
    proofs.push(consistency(&snap, sizes[0], last_size));
    proofs.push(consistency(&snap, last_size, last_size));

    let body = last.checkpoint().to_body();
    let other_body = Checkpoint::new(&origin, last_size - 1, snap.root_at(last_size - 1).unwrap())
        .unwrap()
        .to_body();
    let crate_cosignature = cosign(&body, &witness, TIMESTAMP).unwrap();
    let job = json!({
        "notes": signed.iter().map(SignedCheckpoint::note).collect::<Vec<_>>(),
        "log_key": log_key.verifier().to_string(),
        "origin": origin,
        "proofs": proofs,
        "cosigned": format!("{}{crate_cosignature}", last.note()),
        "miscosigned": format!("{}{}", last.note(), cosign(&other_body, &witness, TIMESTAMP).unwrap()),
        "witness_key": witness.verifier().cosigner().to_string(),
        "log_name": LOG_NAME,
        "log_seed": seed_hex(&LOG_SEED),
        "witness_name": WITNESS_NAME,
        "witness_seed": seed_hex(&WITNESS_SEED),
        "body": body,
        "other_body": other_body,
        "timestamp": TIMESTAMP,
    });
    let out = run_driver(&job);

    // Every note opens, with what the crate signed.
    let opened = out["checkpoints"].as_array().unwrap();
    assert_eq!(opened.len(), signed.len());
    for (py, c) in opened.iter().zip(&signed) {
        let c = c.checkpoint();
        assert_eq!(py["origin"], c.origin());
        assert_eq!(py["origin"], origin.as_str());
        assert_eq!(py["size"], c.size());
        assert_eq!(py["root"], c.root().to_hex());
        assert_eq!(c.root(), snap.root_at(c.size()).unwrap());
        assert_eq!(py["extensions"], json!([]));
        assert_eq!(py["signed_by"], json!([LOG_NAME]));
    }

    // Every proof verifies against the checkpoints' roots; none with a hash changed, and no
    // inclusion proof for another record.
    let results = out["proofs"].as_array().unwrap();
    assert_eq!(results.len(), proofs.len());
    let mut tampered = 0;
    for (result, proof) in results.iter().zip(&proofs) {
        assert_eq!(result["ok"], Value::Null, "{proof}: {result}");
        let error = if proof["type"] == "inclusion" {
            let other = result["other_leaf"].as_str().unwrap_or_default();
            assert!(
                other.starts_with("InclusionProofError"),
                "{proof}: {result}"
            );
            "InclusionProofError"
        } else {
            "ConsistencyProofError"
        };
        let changed = result["tampered"].as_array().unwrap();
        assert_eq!(changed.len(), proof["hashes"].as_array().unwrap().len());
        for r in changed {
            assert!(
                r.as_str().is_some_and(|r| r.starts_with(error)),
                "{proof}: {result}"
            );
        }
        tampered += changed.len();
    }
    assert!(tampered > 50, "{tampered} tampered proofs");

    // The crate's cosignature verifies in Python; one of another checkpoint does not.
    assert_eq!(
        out["cosignatures"],
        json!([[WITNESS_NAME, witness.verifier().cosigner().id(), TIMESTAMP]])
    );
    let miscosigned = out["miscosigned"].as_str().unwrap_or_default();
    assert!(
        miscosigned.starts_with("InvalidSignatureError"),
        "{miscosigned}"
    );

    // What Python signs with the same keys is what the crate signs (Ed25519 is deterministic),
    // and the crate verifies it.
    let py_signature = out["signature_line"].as_str().unwrap();
    let py_note = format!("{body}\n{py_signature}");
    assert_eq!(py_note, last.note());
    let opened = open_note(&py_note, &[log_key.verifier()]).unwrap();
    assert_eq!(opened.verified()[0].name(), LOG_NAME);
    let py_cosignature = out["cosignature_line"].as_str().unwrap();
    assert_eq!(py_cosignature, crate_cosignature);
    let cosigned = open_note(
        &format!("{}{py_cosignature}", last.note()),
        &[log_key.verifier()],
    )
    .unwrap();
    let found = verify_cosignatures(&cosigned, &[witness.verifier()], 1).unwrap();
    assert_eq!(
        (found[0].name(), found[0].timestamp()),
        (WITNESS_NAME, TIMESTAMP)
    );
    let other = out["other_cosignature_line"].as_str().unwrap();
    let miscosigned = open_note(&format!("{}{other}", last.note()), &[log_key.verifier()]).unwrap();
    assert!(verify_cosignatures(&miscosigned, &[witness.verifier()], 1).is_err());
}
