//! Reading the files of an export safely: how much of each is read at most, and how they are
//! opened (never through a symbolic link, never blocking on a FIFO).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// The longest line of a JSONL export, its line feed included (`docs/FORMAT.md` §13.5): an
/// export does not write a longer one, and a verifier reads no more of a line than this.
pub const MAX_LINE_BYTES: u64 = 64 << 20;
/// The longest record of a bundle, header and padding included (`docs/FORMAT.md` §13.5): an
/// export does not write a longer one, and a verifier reads no more of a record than this.
pub const MAX_RECORD_BYTES: u64 = 64 << 20;
/// The largest `manifest.json` (`docs/FORMAT.md` §13.5): one written is far smaller, and a
/// larger one is damaged, not read.
pub const MAX_MANIFEST_BYTES: u64 = 64 << 10;
/// Opens a file of an export for reading, without following a symbolic link and without
/// blocking (on a FIFO). Returns it with its size if it is a regular file, or what it is
/// instead ("a symbolic link", "a FIFO", ...), which is not read.
pub(crate) fn open_regular(path: &Path) -> io::Result<Result<(File, u64), &'static str>> {
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Ok(Err("a symbolic link")),
        Err(e) if e.raw_os_error() == Some(libc::ENXIO) => return Ok(Err("a socket")),
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    let t = meta.file_type();
    Ok(if t.is_file() {
        Ok((file, meta.len()))
    } else if t.is_dir() {
        Err("a directory")
    } else if t.is_fifo() {
        Err("a FIFO")
    } else if t.is_socket() {
        Err("a socket")
    } else if t.is_char_device() || t.is_block_device() {
        Err("a device")
    } else {
        Err("something else")
    })
}
