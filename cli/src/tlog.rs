//! `keygen`, `prove` and `check-proof`: keys for signed checkpoints, and the Merkle proofs of
//! a log (`docs/FORMAT.md` §15), made and checked.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use auditring::{
    Checkpoint, ConsistencyProof, Hash, InclusionProof, SigningKey, VerifierKey, open_note,
};
use serde_json::{Value, json};

use crate::{Failure, dir_arg};

/// Arguments of `auditring keygen`.
#[derive(clap::Args)]
pub struct KeygenArgs {
    /// The key's name: what checkpoints and verifiers call it (no space, no `+`), such as
    /// `audit.example.com/payments`.
    name: String,
    /// Where to write the secret key (created with mode 0600; never replaced).
    #[arg(long)]
    out: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// Runs `auditring keygen`: writes the secret key to a new file, prints the verifier key.
pub fn keygen(args: &KeygenArgs) -> Result<u8, Failure> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let key = SigningKey::generate(&args.name).map_err(|e| Failure::input(e.to_string()))?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&args.out)
        .map_err(|e| {
            let code = if e.kind() == std::io::ErrorKind::AlreadyExists {
                5
            } else {
                4
            };
            Failure {
                code,
                message: format!("creating {}: {e}", args.out.display()),
            }
        })?;
    let secret = key.expose_secret();
    file.write_all(format!("{}\n", &*secret).as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| Failure {
            code: 4,
            message: format!("writing {}: {e}", args.out.display()),
        })?;
    let verifier = key.verifier();
    if args.json {
        println!(
            "{}",
            json!({"name": args.name, "secret_key_file": args.out, "verifier_key": verifier.to_string()})
        );
    } else {
        println!("{verifier}");
    }
    Ok(0)
}

/// Reads a key argument: the key itself, or the path of a file holding it (on its first line).
fn key_text(arg: &str) -> Result<String, Failure> {
    let path = Path::new(arg);
    if arg.contains('+') && !path.exists() {
        return Ok(arg.to_owned());
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::input(format!("reading the key {arg}: {e}")))?;
    Ok(text.lines().next().unwrap_or("").trim().to_owned())
}

/// A verifier key argument.
pub fn verifier_key(arg: &str) -> Result<VerifierKey, Failure> {
    key_text(arg)?
        .parse()
        .map_err(|e| Failure::input(format!("the key {arg}: {e}")))
}

/// A signing key argument (a file, normally: the secret does not belong on a command line).
pub fn signing_key(arg: &str) -> Result<SigningKey, Failure> {
    key_text(arg)?
        .parse()
        .map_err(|e| Failure::input(format!("the key in {arg}: {e}")))
}

/// The checkpoints in a file: one signed note, or a history (`checkpoints.jsonl`) of them, one
/// JSON object per line with the note in `"note"`.
pub fn checkpoint_notes(path: &Path) -> Result<Vec<String>, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::input(format!("reading {}: {e}", path.display())))?;
    if !text.starts_with('{') {
        return Ok(vec![text]);
    }
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, line)| {
            serde_json::from_str::<Value>(line)
                .ok()
                .and_then(|v| v["note"].as_str().map(str::to_owned))
                .ok_or_else(|| {
                    Failure::input(format!(
                        "{} line {}: not a checkpoint history line ({{\"size\":..,\"note\":..}})",
                        path.display(),
                        i + 1
                    ))
                })
        })
        .collect()
}

/// The checkpoints a verification is given and the keys it trusts (`verify`,
/// `verify-export`).
#[derive(clap::Args)]
pub struct TrustArgs {
    /// Also prove consistency with signed checkpoints kept elsewhere: a file holding one (as a
    /// ring writes `checkpoint`), or a history of them (`checkpoints.jsonl`). Repeatable. A cut
    /// or a rewrite of what they cover fails, saying where.
    #[arg(long, requires = "key")]
    checkpoint: Vec<PathBuf>,
    /// A key whose signatures on checkpoints are trusted: the verifier key `auditring keygen`
    /// printed, or a file holding it. Repeatable.
    #[arg(long)]
    key: Vec<String>,
    /// The origin the checkpoints must name (default: `auditring/` and the log id).
    #[arg(long)]
    origin: Option<String>,
    /// A witness whose cosignatures on checkpoints are trusted (its verifier key, or a file
    /// holding it). Repeatable.
    #[arg(long, requires = "quorum")]
    witness: Vec<String>,
    /// Require every checkpoint to be cosigned by this many distinct witnesses of --witness.
    #[arg(long, requires = "key")]
    quorum: Option<usize>,
}

/// [`TrustArgs`], read: the notes and the keys.
pub struct Trust {
    pub notes: Vec<String>,
    pub keys: Vec<VerifierKey>,
    pub origin: Option<String>,
    pub witnesses: Vec<VerifierKey>,
    pub quorum: Option<usize>,
}

impl TrustArgs {
    /// Reads the checkpoint files and the keys.
    pub fn read(&self) -> Result<Trust, Failure> {
        let mut notes = Vec::new();
        for path in &self.checkpoint {
            notes.extend(checkpoint_notes(path)?);
        }
        Ok(Trust {
            notes,
            keys: self
                .key
                .iter()
                .map(|k| verifier_key(k))
                .collect::<Result<_, _>>()?,
            origin: self.origin.clone(),
            witnesses: (self.witness.iter().map(|k| verifier_key(k))).collect::<Result<_, _>>()?,
            quorum: self.quorum,
        })
    }
}

/// Gives a [`Trust`] to verification options that take checkpoints and keys the same way
/// (`auditring::VerifyOptions`, `auditring::VerifyExportOptions`).
macro_rules! with_trust {
    ($options:expr, $trust:expr) => {{
        let (mut options, trust) = ($options, $trust);
        for note in trust.notes {
            options = options.checkpoint(note);
        }
        for key in trust.keys {
            options = options.trusted_key(key);
        }
        if let Some(origin) = trust.origin {
            options = options.origin(origin);
        }
        for w in trust.witnesses {
            options = options.witness(w);
        }
        if let Some(k) = trust.quorum {
            options = options.quorum(k);
        }
        options
    }};
}
pub(crate) use with_trust;

/// Arguments of `auditring prove`.
#[derive(clap::Args)]
pub struct ProveArgs {
    /// The log directory.
    #[arg(value_parser = dir_arg)]
    dir: PathBuf,
    /// Prove that the record with this seq is in the tree.
    #[arg(long, conflicts_with = "old")]
    seq: Option<u64>,
    /// Prove that the tree of this size is a prefix of the larger one.
    #[arg(long, required_unless_present = "seq")]
    old: Option<u64>,
    /// The size of the tree to prove against (default: every record in the log), such as a
    /// checkpoint's.
    #[arg(long)]
    size: Option<u64>,
}

/// Runs `auditring prove`: prints the proof as one JSON object (`docs/FORMAT.md` §15.3).
pub fn prove(args: &ProveArgs) -> Result<u8, Failure> {
    let reader = auditring::Reader::open(&args.dir)?;
    let snap = reader.snapshot()?;
    let size = args.size.unwrap_or_else(|| snap.head_seq());
    let out = match (args.seq, args.old) {
        (Some(seq), _) => {
            let proof = snap.inclusion_proof(seq, size)?;
            let record = snap
                .get(seq)?
                .ok_or_else(|| Failure::input(format!("no record with seq {seq} in the log")))?;
            json!({
                "type": "inclusion",
                "log_id": snap.log_id().to_string(),
                "seq": seq,
                "tree_size": size,
                "leaf": record.leaf.to_hex(),
                "root": snap.root_at(size)?.to_hex(),
                "hashes": hexes(&proof.hashes),
            })
        }
        (None, Some(old)) => {
            let proof = snap.consistency_proof(old, size)?;
            json!({
                "type": "consistency",
                "log_id": snap.log_id().to_string(),
                "old_size": old,
                "new_size": size,
                "old_root": snap.root_at(old)?.to_hex(),
                "new_root": snap.root_at(size)?.to_hex(),
                "hashes": hexes(&proof.hashes),
            })
        }
        (None, None) => return Err(Failure::input("give --seq or --old")),
    };
    println!("{out}");
    Ok(0)
}

/// A proof file as `prove` prints it: the JSON object, and its `hashes`.
pub fn read_proof(path: &Path) -> Result<(Value, Vec<Hash>), Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::input(format!("reading {}: {e}", path.display())))?;
    let proof: Value = serde_json::from_str(&text)
        .map_err(|e| Failure::input(format!("{}: {e}", path.display())))?;
    let bad = |what: &str| Failure::input(format!("{}: {what}", path.display()));
    let hashes = proof["hashes"]
        .as_array()
        .ok_or_else(|| bad("no \"hashes\" array"))?
        .iter()
        .map(|h| h.as_str().and_then(|h| Hash::from_hex(h).ok()))
        .collect::<Option<Vec<Hash>>>()
        .ok_or_else(|| bad("a hash that is not 64 hex digits"))?;
    Ok((proof, hashes))
}

fn hexes(hashes: &[Hash]) -> Vec<String> {
    hashes.iter().map(Hash::to_hex).collect()
}

/// Arguments of `auditring check-proof`.
#[derive(clap::Args)]
pub struct CheckProofArgs {
    /// The proof, as `auditring prove` prints it.
    proof: PathBuf,
    /// A signed checkpoint whose root the proof must lead to (its size must be the proof's
    /// tree size). For a consistency proof, give the older checkpoint first and the newer
    /// second.
    #[arg(long, required = true)]
    checkpoint: Vec<PathBuf>,
    /// A key whose signature on the checkpoints is trusted: the verifier key, or a file
    /// holding it. Repeatable.
    #[arg(long, required = true)]
    key: Vec<String>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// Runs `auditring check-proof`: exit 0 when the proof leads to the checkpoints' roots, 1 when
/// it does not, 2 when the input cannot be used.
pub fn check_proof(args: &CheckProofArgs) -> Result<u8, Failure> {
    let keys = args
        .key
        .iter()
        .map(|k| verifier_key(k))
        .collect::<Result<Vec<_>, _>>()?;
    let checkpoints = args
        .checkpoint
        .iter()
        .map(|path| {
            let note = std::fs::read_to_string(path)
                .map_err(|e| Failure::input(format!("reading {}: {e}", path.display())))?;
            let opened = open_note(&note, &keys)
                .map_err(|e| Failure::input(format!("{}: {e}", path.display())))?;
            Checkpoint::parse(opened.text())
                .map_err(|e| Failure::input(format!("{}: {e}", path.display())))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let (proof, hashes) = read_proof(&args.proof)?;
    let bad = |what: &str| Failure::input(format!("{}: {what}", args.proof.display()));
    let number = |key: &str| {
        proof[key]
            .as_u64()
            .ok_or_else(|| bad(&format!("no integer \"{key}\"")))
    };
    let size_of = |c: &Checkpoint, want: u64| {
        if c.size() == want {
            Ok(c.root())
        } else {
            Err(Failure::input(format!(
                "the checkpoint is of size {}, the proof of size {want}",
                c.size()
            )))
        }
    };
    let (kind, checked) = match proof["type"].as_str() {
        Some("inclusion") => {
            let seq = number("seq")?;
            let size = number("tree_size")?;
            let leaf = proof["leaf"]
                .as_str()
                .and_then(|h| Hash::from_hex(h).ok())
                .ok_or_else(|| bad("no \"leaf\" hash"))?;
            let root = size_of(&checkpoints[0], size)?;
            let proof = InclusionProof {
                index: seq.checked_sub(1).ok_or_else(|| bad("seq 0"))?,
                size,
                hashes,
            };
            ("inclusion", proof.verify(&leaf, &root))
        }
        Some("consistency") => {
            let (old, new) = (number("old_size")?, number("new_size")?);
            let [first, second] = &checkpoints[..] else {
                return Err(Failure::input(
                    "a consistency proof is checked against two checkpoints: the older, then the newer",
                ));
            };
            let proof = ConsistencyProof {
                old_size: old,
                new_size: new,
                hashes,
            };
            (
                "consistency",
                proof.verify(&size_of(first, old)?, &size_of(second, new)?),
            )
        }
        _ => return Err(bad("\"type\" is neither \"inclusion\" nor \"consistency\"")),
    };
    let ok = checked.is_ok();
    if args.json {
        println!(
            "{}",
            json!({"ok": ok, "type": kind, "error": checked.as_ref().err().map(ToString::to_string)})
        );
    } else {
        match &checked {
            Ok(()) => println!("ok: the {kind} proof leads to the checkpoint's root"),
            Err(e) => println!("FAILED: {e}"),
        }
    }
    Ok(u8::from(!ok))
}
