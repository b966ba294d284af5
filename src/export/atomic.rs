//! Publishing a directory atomically: a reader sees the old one, or the whole new one, never a
//! half-written one.
//!
//! The directory is built under a temporary name next to its destination (so on the same file
//! system), every file and the directory itself are synced, and then it is renamed into place
//! with `renameat2`: `RENAME_NOREPLACE` refuses an existing destination, `RENAME_EXCHANGE`
//! swaps with it in one step when replacing is allowed. The parent directory is synced last.
//!
//! **Temporaries of dead processes.** The temporary name is `.NAME.tmp-PID-N` (`NAME` the
//! destination's name, `PID` the process's id, `N` a number). The process holds an exclusive
//! `flock` on the temporary directory for as long as it works in it, and the kernel drops that
//! lock when the process dies, however it dies (`SIGKILL` included). So before it creates its
//! own, an export removes the temporaries beside it that were left by a process that died:
//! those whose name is exactly of that form, that are directories (not symbolic links), whose
//! lock it can take, whose `PID` is not a live process (a live one may have created its
//! directory and not locked it yet), and that hold nothing but the files an export writes. It
//! removes those files through the locked directory's descriptor, then the empty directory;
//! anything else it leaves alone. A temporary whose `PID` was reused by another live process
//! is removed by a later export, once that one has exited.

use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// A directory under construction, removed on drop unless published.
pub(crate) struct StagedDir {
    /// The temporary directory.
    pub(crate) path: PathBuf,
    /// Where it goes.
    dest: PathBuf,
    published: bool,
    /// The temporary directory, open and exclusively `flock`ed for as long as this lives: what
    /// tells another export that it is in use (see the module's docs).
    _lock: File,
}

/// Why publishing failed.
pub(crate) enum PublishError {
    /// The destination exists and replacing it was not allowed.
    Exists,
    /// The file system said no.
    Io(io::Error),
}

impl StagedDir {
    /// Creates an empty temporary directory next to `dest`, and locks it; first removes the
    /// temporaries beside it that dead processes left, if they hold nothing but `files`.
    pub(crate) fn new(dest: &Path, files: &[&str]) -> io::Result<StagedDir> {
        let parent = parent_of(dest);
        remove_abandoned(parent, files);
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
        let locked = open_dir(&path).and_then(|d| match try_lock(&d) {
            Ok(true) => Ok(d),
            Ok(false) => Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "a new temporary directory is locked by another process",
            )),
            Err(e) => Err(e),
        });
        match locked {
            Ok(lock) => Ok(StagedDir {
                path,
                dest: dest.to_path_buf(),
                published: false,
                _lock: lock,
            }),
            Err(e) => {
                let _ = fs::remove_dir_all(&path);
                Err(e)
            }
        }
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

/// The pid in a temporary's name `.NAME.tmp-PID-N`, if `name` is exactly of that form.
fn temporary_pid(name: &str) -> Option<libc::pid_t> {
    let rest = name.strip_prefix('.')?;
    let at = rest.rfind(".tmp-").filter(|&at| at > 0)?;
    let (pid, n) = rest[at + ".tmp-".len()..].split_once('-')?;
    let digits = |s: &str| !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(pid) || !digits(n) {
        return None;
    }
    pid.parse().ok().filter(|&p| p > 0)
}

/// Whether a process with id `pid` exists (one we may not signal exists too).
fn alive(pid: libc::pid_t) -> bool {
    // SAFETY: signal 0 sends nothing; it only checks that the process exists.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Opens a directory for reading, not following a symbolic link.
fn open_dir(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// Takes an exclusive `flock` on `file` without waiting: `false` when another holds one.
fn try_lock(file: &File) -> io::Result<bool> {
    // SAFETY: flock on a descriptor that `file` owns for the duration of the call.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(e)
    }
}

/// Removes the temporaries in `parent` that dead processes left (see the module's docs), if
/// they hold nothing but regular files named in `files`. Best effort: returns how many it
/// removed; what it cannot remove, it leaves.
pub(crate) fn remove_abandoned(parent: &Path, files: &[&str]) -> usize {
    let Ok(entries) = fs::read_dir(parent) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(temporary_pid) else {
            continue;
        };
        if pid == std::process::id() as libc::pid_t || alive(pid) {
            continue;
        }
        let path = entry.path();
        // Not a directory, or a symbolic link: not ours.
        let Ok(dir) = open_dir(&path) else { continue };
        if !try_lock(&dir).unwrap_or(false) {
            continue;
        }
        // Listed and emptied through the locked descriptor, so that what is removed is in the
        // directory that was checked, whatever is renamed meanwhile.
        let here = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
        let Ok(inside) = fs::read_dir(&here) else {
            continue;
        };
        let mut names = Vec::new();
        let mut ours = true;
        for e in inside {
            let Ok(e) = e else {
                ours = false;
                break;
            };
            let n = e.file_name();
            match n.to_str().and_then(|n| files.iter().find(|f| **f == n)) {
                Some(f) if e.file_type().is_ok_and(|t| t.is_file()) => names.push(*f),
                _ => {
                    ours = false;
                    break;
                }
            }
        }
        if !ours {
            continue;
        }
        for f in names {
            let Ok(c) = CString::new(f) else { continue };
            // SAFETY: a descriptor `dir` owns and a NUL-terminated name that outlives the call.
            unsafe { libc::unlinkat(dir.as_raw_fd(), c.as_ptr(), 0) };
        }
        if fs::remove_dir(&path).is_ok() {
            removed += 1;
        }
    }
    removed
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
        let staged = StagedDir::new(&dest, &["a"]).unwrap();
        fs::write(staged.path.join("a"), "1").unwrap();
        assert!(staged.publish(false).is_ok());
        assert_eq!(fs::read_to_string(dest.join("a")).unwrap(), "1");

        let staged = StagedDir::new(&dest, &["a"]).unwrap();
        fs::write(staged.path.join("a"), "2").unwrap();
        let tmp = staged.path.clone();
        assert!(matches!(staged.publish(false), Err(PublishError::Exists)));
        assert!(!tmp.exists(), "a refused directory is removed");
        assert_eq!(fs::read_to_string(dest.join("a")).unwrap(), "1");

        let staged = StagedDir::new(&dest, &["a"]).unwrap();
        fs::write(staged.path.join("a"), "3").unwrap();
        assert!(staged.publish(true).is_ok());
        assert_eq!(fs::read_to_string(dest.join("a")).unwrap(), "3");
        assert_eq!(
            fs::read_dir(root.path()).unwrap().count(),
            1,
            "no leftovers"
        );
    }

    /// Only the temporaries of dead processes are removed: not one whose lock is held, not one
    /// whose pid is alive, not one holding another file, not a symbolic link, not a name of
    /// another form.
    #[test]
    fn removes_only_the_abandoned_temporaries() {
        let root = tempfile::tempdir().unwrap();
        let files = ["manifest.json", "events.jsonl"];
        // A pid that was a process and is no longer one.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let live = std::os::unix::process::parent_id();
        let make = |name: &str, inside: &[&str]| {
            let p = root.path().join(name);
            fs::create_dir(&p).unwrap();
            for f in inside {
                fs::write(p.join(f), "x").unwrap();
            }
            p
        };
        let abandoned = make(&format!(".out.tmp-{dead}-1"), &files);
        let empty = make(&format!(".other.tmp-{dead}-2"), &[]);
        let locked = make(&format!(".out.tmp-{dead}-3"), &files);
        let lock = open_dir(&locked).unwrap();
        assert!(try_lock(&lock).unwrap());
        let alive = make(&format!(".out.tmp-{live}-4"), &files);
        let foreign = make(&format!(".out.tmp-{dead}-5"), &["manifest.json", "notes"]);
        let odd = make(&format!(".out.tmp-{dead}x-6"), &files);
        let bare = make(&format!("out.tmp-{dead}-7"), &files);
        let target = make("target", &files);
        std::os::unix::fs::symlink(&target, root.path().join(format!(".out.tmp-{dead}-8")))
            .unwrap();

        assert_eq!(remove_abandoned(root.path(), &files), 2);
        assert!(!abandoned.exists() && !empty.exists());
        for kept in [&locked, &alive, &foreign, &odd, &bare] {
            assert!(kept.join("manifest.json").exists(), "{}", kept.display());
        }
        assert!(target.join("manifest.json").exists());
        drop(lock);
        assert_eq!(remove_abandoned(root.path(), &files), 1);
        assert!(!locked.exists());
    }
}
