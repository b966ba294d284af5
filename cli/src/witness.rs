//! `witness`: cosigns a log's checkpoint only if it extends the last one this witness cosigned
//! for that log (C2SP `tlog-cosignature`), so that a log cannot show two histories.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use auditring::{Checkpoint, ConsistencyProof, cosign, open_note};
use serde_json::json;

use crate::Failure;
use crate::tlog::{read_proof, signing_key, verifier_key};

/// Arguments of `auditring witness`.
#[derive(clap::Args)]
pub struct Args {
    /// The witness's secret key (a file written by `auditring keygen`).
    #[arg(long)]
    key: String,
    /// The witness's state: the last checkpoint it cosigned for each log (created if missing).
    #[arg(long)]
    state: PathBuf,
    /// The log's verifier key: only checkpoints it signed are cosigned.
    #[arg(long)]
    log_key: String,
    /// The new checkpoint, a signed note.
    checkpoint: PathBuf,
    /// The proof (as `auditring prove --old SIZE --size NEW` prints it) that the new tree
    /// extends the last one cosigned; needed unless this is the first checkpoint of the log the
    /// witness sees, or the same size again.
    #[arg(long)]
    proof: Option<PathBuf>,
    /// Print one JSON object instead of the cosigned note.
    #[arg(long)]
    json: bool,
}

/// Why a checkpoint is not cosigned: exit code 1, the log showed a history that does not extend
/// the one this witness saw.
fn refused(message: String) -> Failure {
    Failure { code: 1, message }
}

/// Runs `auditring witness`: checks the new checkpoint against the witness's state, cosigns it,
/// records it, and prints the note with the cosignature added.
pub fn run(args: &Args) -> Result<u8, Failure> {
    let key = signing_key(&args.key)?;
    let log_key = verifier_key(&args.log_key)?;
    let note = std::fs::read_to_string(&args.checkpoint)
        .map_err(|e| Failure::input(format!("reading {}: {e}", args.checkpoint.display())))?;
    let opened = open_note(&note, &[log_key])
        .map_err(|e| Failure::input(format!("{}: {e}", args.checkpoint.display())))?;
    let new = Checkpoint::parse(opened.text())
        .map_err(|e| Failure::input(format!("{}: {e}", args.checkpoint.display())))?;
    std::fs::create_dir_all(&args.state)
        .map_err(|e| Failure::input(format!("creating {}: {e}", args.state.display())))?;
    let state = state_file(&args.state, new.origin());
    let old =
        match std::fs::read_to_string(&state) {
            Ok(body) => Some(Checkpoint::parse(&body).map_err(|e| {
                Failure::input(format!("the witness state {}: {e}", state.display()))
            })?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(Failure::input(format!("reading {}: {e}", state.display())));
            }
        };
    if let Some(old) = &old {
        check_extends(old, &new, args.proof.as_deref())?;
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let line = cosign(opened.text(), &key, now).map_err(|e| Failure::input(e.to_string()))?;
    write_state(&state, opened.text())?;
    let cosigned = format!("{note}{line}");
    if args.json {
        println!(
            "{}",
            json!({
                "origin": new.origin(),
                "size": new.size(),
                "previous_size": old.as_ref().map(Checkpoint::size),
                "timestamp": now,
                "note": cosigned,
            })
        );
    } else {
        print!("{cosigned}");
    }
    Ok(0)
}

/// Checks that `new` extends `old`: the same tree at the same size, or a larger one proved
/// consistent with it.
fn check_extends(old: &Checkpoint, new: &Checkpoint, proof: Option<&Path>) -> Result<(), Failure> {
    let origin = new.origin();
    if new.size() < old.size() {
        return Err(refused(format!(
            "{origin}: this checkpoint is of size {}, smaller than the {} already cosigned: \
             the log rolled back",
            new.size(),
            old.size()
        )));
    }
    if new.size() == old.size() {
        if new.root() != old.root() {
            return Err(refused(format!(
                "{origin}: two different trees of size {} were signed by the log: a split view",
                new.size()
            )));
        }
        return Ok(());
    }
    let Some(proof) = proof else {
        return Err(Failure::input(format!(
            "{origin}: the last checkpoint cosigned is of size {}: give --proof, from \
             `auditring prove LOG --old {} --size {}`",
            old.size(),
            old.size(),
            new.size()
        )));
    };
    let (_, hashes) = read_proof(proof)?;
    let consistency = ConsistencyProof {
        old_size: old.size(),
        new_size: new.size(),
        hashes,
    };
    consistency.verify(&old.root(), &new.root()).map_err(|e| {
        refused(format!(
            "{origin}: the tree of size {} does not extend the tree of size {} already \
             cosigned ({e}): a split view or a rewritten log",
            new.size(),
            old.size()
        ))
    })
}

/// The state file of the log with `origin`: named by the SHA-256 of the origin, which may hold
/// any character.
fn state_file(dir: &Path, origin: &str) -> PathBuf {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(origin.as_bytes());
    let name: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    dir.join(format!("{name}.checkpoint"))
}

/// Replaces the state file atomically with `body`.
fn write_state(path: &Path, body: &str) -> Result<(), Failure> {
    let tmp = path.with_extension("tmp");
    let written = std::fs::File::create(&tmp)
        .and_then(|mut f| {
            f.write_all(body.as_bytes())?;
            f.sync_all()
        })
        .and_then(|()| std::fs::rename(&tmp, path))
        .and_then(|()| std::fs::File::open(path.parent().unwrap_or(Path::new(".")))?.sync_all());
    written.map_err(|e| Failure {
        code: 4,
        message: format!("writing the witness state {}: {e}", path.display()),
    })
}
