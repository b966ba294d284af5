//! `seal-keygen`: the keys of forward-secure sealing.

use std::path::PathBuf;

use serde_json::json;

use crate::Failure;

/// Arguments of `auditring seal-keygen`.
#[derive(clap::Args)]
pub struct SealKeygenArgs {
    /// Where to write the initial sealing key, for the auditor (mode 0600; never replaced).
    /// Move it off the host: whoever holds it can forge every seal.
    #[arg(long)]
    key: PathBuf,
    /// Where to write the ring's state file (mode 0600; never replaced), which `append
    /// --seal-state` and `Sealing::new` are given. The ring replaces it at every seal.
    #[arg(long)]
    state: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// Runs `auditring seal-keygen`: a new random key, written twice.
pub fn keygen(args: &SealKeygenArgs) -> Result<u8, Failure> {
    let key = auditring::SealKey::generate()?;
    let exists = |path: &PathBuf| Failure {
        code: 5,
        message: format!("{} already exists: it is never replaced", path.display()),
    };
    for path in [&args.key, &args.state] {
        if std::fs::symlink_metadata(path).is_ok() {
            return Err(exists(path));
        }
    }
    key.write_new(&args.key)?;
    if let Err(e) = key.write_state(&args.state) {
        // Neither file, rather than a key without its state.
        let _ = std::fs::remove_file(&args.key);
        return Err(e.into());
    }
    if args.json {
        println!(
            "{}",
            json!({"key_file": args.key, "state_file": args.state})
        );
    } else {
        println!(
            "sealing key: {} (keep it off this host; verify --seal-key reads it)\nring state: {} (append --seal-state, Sealing::new)",
            args.key.display(),
            args.state.display()
        );
    }
    Ok(0)
}

/// Reads a sealing key file argument.
pub fn read_key(path: &std::path::Path) -> Result<auditring::SealKey, Failure> {
    auditring::SealKey::read(path).map_err(|e| Failure::input(e.to_string()))
}
