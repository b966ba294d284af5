//! Publishing a directory atomically: a reader sees the old one, or the whole new one, never a
//! half-written one.
//!
//! The directory is built under a temporary name next to its destination (so on the same file
//! system), every file and the directory itself are synced, and then it is renamed into place
//! with `renameat2`: `RENAME_NOREPLACE` refuses an existing destination, `RENAME_EXCHANGE`
//! swaps with it in one step when replacing is allowed. The parent directory is synced last.

use std::ffi::CString;
use std::fs::{self, File};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// A directory under construction, removed on drop unless published.
pub(crate) struct StagedDir {
    /// The temporary directory.
    pub(crate) path: PathBuf,
    /// Where it goes.
    dest: PathBuf,
    published: bool,
}

/// Why publishing failed.
pub(crate) enum PublishError {
    /// The destination exists and replacing it was not allowed.
    Exists,
    /// The file system said no.
    Io(io::Error),
}

impl StagedDir {
    /// Creates an empty temporary directory next to `dest`.
    pub(crate) fn new(dest: &Path) -> io::Result<StagedDir> {
        let parent = parent_of(dest);
        let name = dest
            .file_name()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = parent.join(format!(
            ".{}.tmp-{}-{nanos}",
            name.to_string_lossy(),
            std::process::id()
        ));
        fs::create_dir(&path)?;
        Ok(StagedDir {
            path,
            dest: dest.to_path_buf(),
            published: false,
        })
    }

    /// Syncs the directory and renames it to its destination; replaces an existing destination
    /// only if `replace`.
    pub(crate) fn publish(mut self, replace: bool) -> Result<(), PublishError> {
        File::open(&self.path)
            .and_then(|d| d.sync_all())
            .map_err(PublishError::Io)?;
        let exists = self.dest.exists();
        if exists && !replace {
            return Err(PublishError::Exists);
        }
        let flags = if exists {
            libc::RENAME_EXCHANGE
        } else {
            libc::RENAME_NOREPLACE
        };
        match rename2(&self.path, &self.dest, flags) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => return Err(PublishError::Exists),
            Err(e) => return Err(PublishError::Io(e)),
        }
        self.published = true;
        if exists {
            // What was there now has the temporary name.
            let old_is_dir = fs::symlink_metadata(&self.path).is_ok_and(|m| m.is_dir());
            let removed = if old_is_dir {
                fs::remove_dir_all(&self.path)
            } else {
                fs::remove_file(&self.path)
            };
            removed.map_err(PublishError::Io)?;
        }
        File::open(parent_of(&self.dest))
            .and_then(|d| d.sync_all())
            .map_err(PublishError::Io)
    }
}

impl Drop for StagedDir {
    fn drop(&mut self) {
        if !self.published {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn rename2(from: &Path, to: &Path, flags: libc::c_uint) -> io::Result<()> {
    let c = |p: &Path| {
        CString::new(p.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path with a NUL byte"))
    };
    let (from, to) = (c(from)?, c(to)?);
    // SAFETY: both pointers are to NUL-terminated strings that outlive the call.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            flags,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publishes_refuses_and_replaces() {
        let root = tempfile::tempdir().unwrap();
        let dest = root.path().join("out");
        let staged = StagedDir::new(&dest).unwrap();
        fs::write(staged.path.join("a"), "1").unwrap();
        assert!(staged.publish(false).is_ok());
        assert_eq!(fs::read_to_string(dest.join("a")).unwrap(), "1");

        let staged = StagedDir::new(&dest).unwrap();
        fs::write(staged.path.join("a"), "2").unwrap();
        let tmp = staged.path.clone();
        assert!(matches!(staged.publish(false), Err(PublishError::Exists)));
        assert!(!tmp.exists(), "a refused directory is removed");
        assert_eq!(fs::read_to_string(dest.join("a")).unwrap(), "1");

        let staged = StagedDir::new(&dest).unwrap();
        fs::write(staged.path.join("a"), "3").unwrap();
        assert!(staged.publish(true).is_ok());
        assert_eq!(fs::read_to_string(dest.join("a")).unwrap(), "3");
        assert_eq!(
            fs::read_dir(root.path()).unwrap().count(),
            1,
            "no leftovers"
        );
    }
}
