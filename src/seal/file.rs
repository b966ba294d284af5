//! Key and state files: small, secret, read with a bound and created readable by their owner
//! only.

use std::fmt;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use crate::error::Error;

/// Reads a key or state file: a regular file of at most 4 KiB.
pub(crate) fn read_small(path: &Path) -> Result<String, Error> {
    use std::io::Read as _;
    let fail = |e: &dyn fmt::Display| Error::Sealing(format!("reading {}: {e}", path.display()));
    let file = std::fs::File::open(path).map_err(|e| fail(&e))?;
    let meta = file.metadata().map_err(|e| fail(&e))?;
    if !meta.is_file() {
        return Err(fail(&"not a regular file"));
    }
    let mut text = String::new();
    file.take(4097)
        .read_to_string(&mut text)
        .map_err(|e| fail(&e))?;
    if text.len() > 4096 {
        return Err(fail(&"larger than a key or state file can be (4 KiB)"));
    }
    Ok(text)
}

/// Creates `path` with `bytes`, mode 0600, never replacing a file, and syncs it.
pub(crate) fn write_new_file(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let fail = |e: std::io::Error| Error::Sealing(format!("creating {}: {e}", path.display()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(fail)?;
    file.write_all(bytes).map_err(fail)?;
    file.sync_all().map_err(fail)
}
