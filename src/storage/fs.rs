//! [`FsStorage`]: a log in a directory of preallocated, memory-mapped segment files.
//!
//! **The writer lock** is an exclusive `flock(2)` on the log directory itself (an open
//! descriptor of the directory, `O_DIRECTORY`), held for the writer's life. It belongs to the
//! directory's inode, not to a name: removing, replacing or renaming any file in the directory,
//! or the directory itself, changes nothing about who holds it. The file `LOCK` only carries the
//! holder's process id, written once the directory is known to be a log, for the message another
//! writer gets; nothing relies on it.
//!
//! **Names are resolved against the locked directory.** Once the lock is taken, the storage
//! keeps the directory's descriptor and opens, creates, renames and removes every file relative
//! to it (`openat`, `renameat`, `unlinkat`), so a writer keeps writing into the directory it
//! locked even if that directory is renamed or another one is put at its path.
//!
//! **No symlink is ever followed inside a log directory.** Every file is opened with
//! `O_NOFOLLOW`, for reading and for writing, and created with `O_CREAT | O_EXCL`; an entry with
//! a name the log uses (a segment, a temporary, `LOCK`, `EXPORTED`) that is not a regular file
//! makes [`Storage::list`] fail with [`NotRegular`], which names it. Only the path to the
//! directory itself is resolved as given (it may be a symlink to the real directory; the lock is
//! then on the real one).

use std::ffi::CString;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use memmap2::{Advice, MmapMut, MmapOptions, UncheckedAdvice};

use super::names::LOCK_FILE;
use super::{LockError, LockGuard, SegmentFile, Storage, WritableMap};

/// Longest `LOCK` file read back for the holder's pid (a pid, a newline and some slack).
const LOCK_READ_MAX: usize = 32;

/// A log stored in a directory.
#[derive(Debug, Clone)]
pub struct FsStorage {
    dir: PathBuf,
    /// The directory, opened once when the writer lock is taken (the descriptor the lock is
    /// on). Set at most once; while unset, every operation opens the directory by its path.
    pinned: Arc<OnceLock<Arc<OwnedFd>>>,
}

/// An entry of a log directory that has a name the log uses but is not a regular file (a
/// symlink, a directory, a FIFO, a socket, a device). Returned, inside an [`io::Error`] of kind
/// [`io::ErrorKind::InvalidData`], by [`FsStorage::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotRegular {
    /// The entry's name.
    pub name: String,
    /// What it is instead ("a symlink", "a directory", ...).
    pub kind: &'static str,
}

impl std::fmt::Display for NotRegular {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} is {}, not a regular file (the files of a log are never symlinks or special \
             files; auditring does not follow or open it)",
            self.name, self.kind
        )
    }
}

impl std::error::Error for NotRegular {}

impl FsStorage {
    /// A storage over `dir`. Nothing is created or checked until it is used.
    pub fn new(dir: impl Into<PathBuf>) -> FsStorage {
        FsStorage {
            dir: dir.into(),
            pinned: Arc::new(OnceLock::new()),
        }
    }

    /// The directory's descriptor: the locked one, or the directory opened now by its path.
    fn dir_fd(&self) -> io::Result<Arc<OwnedFd>> {
        match self.pinned.get() {
            Some(fd) => Ok(fd.clone()),
            None => open_dir(&self.dir).map(Arc::new),
        }
    }

    /// Opens `name` in the directory with `flags` (plus `O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK`),
    /// and checks that what was opened is a regular file. `O_NONBLOCK` keeps a FIFO put in
    /// place of a file from blocking the open; it changes nothing for a regular file.
    fn open_at(dir: &OwnedFd, name: &str, flags: libc::c_int) -> io::Result<File> {
        let c = c_name(name)?;
        // SAFETY: `c` is a NUL-terminated string that outlives the call; `dir` is an open
        // descriptor. The mode is read only with O_CREAT.
        let fd = unsafe {
            libc::openat(
                dir.as_raw_fd(),
                c.as_ptr(),
                flags | libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK,
                0o644 as libc::c_uint,
            )
        };
        if fd < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ELOOP) {
                return Err(not_regular(name, "a symlink"));
            }
            return Err(e);
        }
        // SAFETY: `fd` was just returned by `openat` and is owned by nobody else.
        let file = unsafe { File::from_raw_fd(fd) };
        let kind = kind_of_mode(std::os::unix::fs::MetadataExt::mode(&file.metadata()?));
        if kind != REGULAR {
            return Err(not_regular(name, kind));
        }
        Ok(file)
    }

    /// Makes the directory's entries durable (after a create, rename or remove).
    fn sync_dir(dir: &OwnedFd) -> io::Result<()> {
        // SAFETY: plain system call on an open descriptor.
        if unsafe { libc::fsync(dir.as_raw_fd()) } == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// The process id recorded in `LOCK`, if it names a live process.
    fn recorded_holder(dir: &OwnedFd) -> Option<u32> {
        let file = Self::open_at(dir, LOCK_FILE, libc::O_RDONLY).ok()?;
        let mut buf = [0u8; LOCK_READ_MAX];
        let n = file.read_at(&mut buf, 0).ok()?;
        let pid: u32 = std::str::from_utf8(&buf[..n]).ok()?.trim().parse().ok()?;
        let id = libc::pid_t::try_from(pid).ok().filter(|&p| p > 0)?;
        // SAFETY: signal 0 only checks that the process exists; nothing is sent.
        let alive = unsafe { libc::kill(id, 0) } == 0
            || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
        alive.then_some(pid)
    }
}

/// Opens the directory at `path` (following a symlink there: the path is the operator's) for
/// `*at` calls and `flock`.
fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL byte in the path"))?;
    // SAFETY: `c` is NUL-terminated and outlives the call.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by `open` and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A file name as a C string; names are plain (no separator), as [`Storage`] requires.
fn c_name(name: &str) -> io::Result<CString> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name:?} is not a plain file name"),
        ));
    }
    CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL byte in a file name"))
}

fn not_regular(name: &str, kind: &'static str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        NotRegular {
            name: name.to_string(),
            kind,
        },
    )
}

/// The kind of a file of mode `mode` (`st_mode`), for messages: "a regular file", ...
fn kind_of_mode(mode: libc::mode_t) -> &'static str {
    match mode & libc::S_IFMT {
        libc::S_IFREG => REGULAR,
        libc::S_IFLNK => "a symlink",
        libc::S_IFDIR => "a directory",
        libc::S_IFIFO => "a FIFO",
        libc::S_IFSOCK => "a socket",
        libc::S_IFBLK | libc::S_IFCHR => "a device",
        _ => "not a regular file",
    }
}

/// As [`kind_of_mode`], for a directory entry's `d_type` (not `DT_UNKNOWN`).
fn kind_of_dtype(t: u8) -> &'static str {
    match t {
        libc::DT_REG => REGULAR,
        libc::DT_LNK => "a symlink",
        libc::DT_DIR => "a directory",
        libc::DT_FIFO => "a FIFO",
        libc::DT_SOCK => "a socket",
        libc::DT_BLK | libc::DT_CHR => "a device",
        _ => "not a regular file",
    }
}

/// What [`kind_of_mode`] says of a regular file.
const REGULAR: &str = "a regular file";

/// Calls `f` until it does not fail with `EINTR`.
fn retry(mut f: impl FnMut() -> libc::c_int) -> io::Result<()> {
    loop {
        if f() == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

fn unlink_at(dir: &OwnedFd, name: &str) -> io::Result<()> {
    let c = c_name(name)?;
    // SAFETY: `c` is NUL-terminated and outlives the call; `dir` is open.
    retry(|| unsafe { libc::unlinkat(dir.as_raw_fd(), c.as_ptr(), 0) })
}

fn rename_at(dir: &OwnedFd, from: &str, to: &str) -> io::Result<()> {
    let (a, b) = (c_name(from)?, c_name(to)?);
    let fd = dir.as_raw_fd();
    // SAFETY: both names are NUL-terminated and outlive the call; `dir` is open. `renameat`
    // replaces an entry named `to` itself, never what a symlink there points to.
    retry(|| unsafe { libc::renameat(fd, a.as_ptr(), fd, b.as_ptr()) })
}

/// What `name` in `dir` is, without following a symlink; `None` if there is nothing by that
/// name.
fn stat_at(dir: &OwnedFd, name: &str) -> io::Result<Option<libc::stat>> {
    let c = c_name(name)?;
    // SAFETY: an all-zero `stat` is a valid value of this plain C struct.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is written by the call; `c` is NUL-terminated; `dir` is open.
    let rc = unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            c.as_ptr(),
            &raw mut st,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if rc == 0 {
        return Ok(Some(st));
    }
    let e = io::Error::last_os_error();
    if e.kind() == io::ErrorKind::NotFound {
        Ok(None)
    } else {
        Err(e)
    }
}

/// The entries of the directory behind `dir` (without `.` and `..`), with their kinds (see
/// [`kind_of_mode`]), not following symlinks.
fn read_dir_at(dir: &OwnedFd) -> io::Result<Vec<(String, &'static str)>> {
    // A descriptor of its own (a `dup` would share the reading position with other listings).
    // SAFETY: "." is a NUL-terminated literal; `dir` is open.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            c".".as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is an open directory descriptor owned by nobody else; on success the stream
    // owns it and `closedir` closes it, on failure it is still ours to close.
    let stream = unsafe { libc::fdopendir(fd) };
    if stream.is_null() {
        let e = io::Error::last_os_error();
        // SAFETY: `fd` is still ours (see above).
        unsafe { libc::close(fd) };
        return Err(e);
    }
    struct Stream(*mut libc::DIR);
    impl Drop for Stream {
        fn drop(&mut self) {
            // SAFETY: the stream was opened by `fdopendir` and is closed once, here.
            unsafe { libc::closedir(self.0) };
        }
    }
    let stream = Stream(stream);
    let mut out = Vec::new();
    loop {
        // SAFETY: errno is thread-local; clearing it tells end of stream from failure.
        unsafe { *libc::__errno_location() = 0 };
        // SAFETY: the stream is open and used by this thread only.
        let entry = unsafe { libc::readdir64(stream.0) };
        if entry.is_null() {
            let e = io::Error::last_os_error();
            if e.raw_os_error().unwrap_or(0) != 0 {
                return Err(e);
            }
            break;
        }
        // SAFETY: `readdir64` returned a valid entry whose `d_name` is NUL-terminated; it stays
        // valid until the next call on the stream.
        let (name, d_type) = unsafe {
            let e = &*entry;
            let name = std::ffi::CStr::from_ptr(e.d_name.as_ptr());
            (name.to_string_lossy().into_owned(), e.d_type)
        };
        if name == "." || name == ".." {
            continue;
        }
        let file_type = match d_type {
            libc::DT_UNKNOWN => {
                // Some file systems do not fill in the type: ask, without following a symlink.
                let c = c_name(&name)?;
                // SAFETY: `st` is written by the call; `c` is NUL-terminated; `fd` is open.
                let st = unsafe {
                    let mut st: libc::stat = std::mem::zeroed();
                    if libc::fstatat(fd, c.as_ptr(), &raw mut st, libc::AT_SYMLINK_NOFOLLOW) != 0 {
                        let e = io::Error::last_os_error();
                        if e.kind() == io::ErrorKind::NotFound {
                            continue;
                        }
                        return Err(e);
                    }
                    st
                };
                kind_of_mode(st.st_mode)
            }
            t => kind_of_dtype(t),
        };
        out.push((name, file_type));
    }
    Ok(out)
}

impl Storage for FsStorage {
    fn location(&self) -> &Path {
        &self.dir
    }

    fn list(&self) -> io::Result<Vec<String>> {
        let dir = self.dir_fd()?;
        let mut names = Vec::new();
        for (name, kind) in read_dir_at(&dir)? {
            if kind == REGULAR {
                names.push(name);
            } else if crate::storage::names::is_log_name(&name) {
                return Err(not_regular(&name, kind));
            }
        }
        Ok(names)
    }

    fn create(&self, name: &str, len: u64, prefix: &[u8]) -> io::Result<Arc<dyn SegmentFile>> {
        let dir = self.dir_fd()?;
        let tmp = format!(".{name}.tmp");
        let build = || -> io::Result<File> {
            let file = Self::open_at(&dir, &tmp, libc::O_RDWR | libc::O_CREAT | libc::O_EXCL)?;
            allocate(&file, len)?;
            file.write_all_at(prefix, 0)?;
            file.sync_all()?;
            Ok(file)
        };
        let file = match build() {
            Ok(file) => file,
            Err(e) => {
                // Removes the entry, never what it may point to.
                let _ = unlink_at(&dir, &tmp);
                return Err(e);
            }
        };
        if let Some(st) = stat_at(&dir, name)? {
            let _ = unlink_at(&dir, &tmp);
            let what = match st.st_mode & libc::S_IFMT {
                libc::S_IFDIR => "a directory",
                libc::S_IFLNK => "a symbolic link",
                libc::S_IFREG => "a file this writer did not create",
                _ => "a special file",
            };
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "{} already exists and is {what}: the next segment cannot be created \
                     until it is moved away",
                    self.dir.join(name).display()
                ),
            ));
        }
        rename_at(&dir, &tmp, name)?;
        Self::sync_dir(&dir)?;
        Ok(Arc::new(FsFile {
            file,
            dir,
            name: name.to_owned(),
            path: self.dir.join(name),
        }))
    }

    fn open(&self, name: &str, write: bool) -> io::Result<Arc<dyn SegmentFile>> {
        let dir = self.dir_fd()?;
        let access = if write { libc::O_RDWR } else { libc::O_RDONLY };
        let file = Self::open_at(&dir, name, access)?;
        Ok(Arc::new(FsFile {
            file,
            dir,
            name: name.to_owned(),
            path: self.dir.join(name),
        }))
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        let dir = self.dir_fd()?;
        unlink_at(&dir, name)?;
        Self::sync_dir(&dir)
    }

    fn write_small(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        // Unique per process and call: two threads may replace the same file at once.
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = format!(".{name}.tmp-{}-{n}", std::process::id());
        let dir = self.dir_fd()?;
        let written = (|| {
            let mut f = Self::open_at(&dir, &tmp, libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL)?;
            f.write_all(bytes)?;
            f.sync_all()?;
            // Replaces whatever entry is named `name` (a symlink itself, not its target).
            rename_at(&dir, &tmp, name)?;
            Self::sync_dir(&dir)
        })();
        if written.is_err() {
            let _ = unlink_at(&dir, &tmp);
        }
        written
    }

    fn read_small(&self, name: &str) -> io::Result<Option<Vec<u8>>> {
        /// Markers are a few hundred bytes; anything much larger is not one.
        const MAX: u64 = 1 << 20;
        let dir = self.dir_fd()?;
        let file = match Self::open_at(&dir, name, libc::O_RDONLY) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut bytes = Vec::new();
        io::Read::read_to_end(&mut io::Read::take(&file, MAX + 1), &mut bytes)?;
        if bytes.len() as u64 > MAX {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{name} is larger than {MAX} bytes: not a marker of this log"),
            ));
        }
        Ok(Some(bytes))
    }

    fn lock(&self, wait: bool) -> Result<LockGuard, LockError> {
        // A descriptor of its own: a lock is per open file description, so two rings of this
        // process on the same directory exclude each other as two processes do.
        let dir = open_dir(&self.dir).map_err(LockError::Io)?;
        let op = libc::LOCK_EX | if wait { 0 } else { libc::LOCK_NB };
        // SAFETY: plain system call on an open descriptor.
        match retry(|| unsafe { libc::flock(dir.as_raw_fd(), op) }) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EWOULDBLOCK) => {
                return Err(LockError::Held {
                    pid: Self::recorded_holder(&dir),
                });
            }
            Err(e) => return Err(LockError::Io(e)),
        }
        crate::sys::fork::watch();
        let dir = Arc::new(dir);
        let held = HeldLock {
            dir: dir.clone(),
            generation: crate::sys::fork::generation(),
        };
        if let Err(dir) = self.pinned.set(dir) {
            // Locked before, by path: the path must still lead to the directory pinned then.
            let pinned = self.pinned.get().map(|p| identity(p));
            if pinned.is_some() && pinned != Some(identity(&dir)) {
                return Err(LockError::Io(io::Error::other(format!(
                    "{} is no longer the directory this storage locked before",
                    self.dir.display()
                ))));
            }
        }
        Ok(LockGuard::new(Box::new(held)))
    }

    fn record_holder(&self) -> io::Result<()> {
        let dir = self.dir_fd()?;
        // A new file every time, never one written in place: an existing `LOCK` may be a hard
        // link to a file elsewhere. The lock is held, so no other writer races for the name.
        match unlink_at(&dir, LOCK_FILE) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL;
        let file = Self::open_at(&dir, LOCK_FILE, flags)?;
        file.write_all_at(format!("{}\n", std::process::id()).as_bytes(), 0)
    }
}

/// A directory's device and inode numbers (`None` if they cannot be read).
fn identity(dir: &OwnedFd) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let file = File::from(dir.try_clone().ok()?);
    file.metadata().ok().map(|m| (m.dev(), m.ino()))
}

/// The locked directory. Unlocks explicitly when dropped: closing our descriptor is not enough
/// while a child process started by another thread still holds a copy of it (between its `fork`
/// and its `exec`), and the lock must be free the moment a ring is closed. Except in a process
/// forked after the lock was taken: the lock belongs to the open file description, which the
/// child shares with its parent, so unlocking it there would release the parent's lock.
struct HeldLock {
    dir: Arc<OwnedFd>,
    /// [`crate::sys::fork::generation`] when the lock was taken.
    generation: u64,
}

impl Drop for HeldLock {
    fn drop(&mut self) {
        if crate::sys::fork::generation() == self.generation {
            // SAFETY: plain system call on an open descriptor.
            let _ = retry(|| unsafe { libc::flock(self.dir.as_raw_fd(), libc::LOCK_UN) });
        }
    }
}

/// Allocates `len` bytes of blocks for `file`, so that a full disk fails the segment's creation
/// (the ring stalls) rather than a later write through the mapping (a SIGBUS).
///
/// On most file systems the blocks are *unwritten* extents: their first write-back also
/// rewrites the file's extent metadata. Writing zeros over them here instead would make that
/// happen at creation, but it cost about a third of the throughput of `auditring demo`
/// (2.1-3.0 M events/s with `fallocate` alone against 1.3-2.7 M, five interleaved runs each, on
/// the reference machine), and it did not prevent the one loss seen (see `docs/FORMAT.md` §8,
/// *What the file system must guarantee*), so it is not done.
fn allocate(file: &File, len: u64) -> io::Result<()> {
    let n = libc::off_t::try_from(len)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "segment too large"))?;
    // SAFETY: `file` is an open descriptor for the duration of the call; the call has no memory
    // arguments.
    let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, n) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(rc))
    }
}

/// Writes zeros over `[offset, offset + len)`, 64 KiB at a time.
fn write_zeros(file: &File, offset: u64, len: u64) -> io::Result<()> {
    static ZEROS: [u8; 1 << 16] = [0; 1 << 16];
    let end = offset
        .checked_add(len)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "range too large"))?;
    let mut at = offset;
    while at < end {
        let n = (end - at).min(ZEROS.len() as u64) as usize;
        file.write_all_at(&ZEROS[..n], at)?;
        at += n as u64;
    }
    Ok(())
}

#[derive(Debug)]
struct FsFile {
    file: File,
    /// The directory it was opened in, and its name there (see
    /// `SegmentFile::check_in_place`); the path, for messages.
    dir: Arc<OwnedFd>,
    name: String,
    path: PathBuf,
}

impl SegmentFile for FsFile {
    fn size(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.file.read_at(buf, offset)
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.file.write_all_at(buf, offset)
    }

    fn zero_range(&self, offset: u64, len: u64) -> io::Result<()> {
        // Written, not `FALLOC_FL_ZERO_RANGE`: that would turn blocks written before back into
        // unwritten extents, whose conversion at the next write-back can fail on its own (see
        // `allocate`). Only torn tails and unused index entries are zeroed, so this is small.
        write_zeros(&self.file, offset, len)
    }

    fn sync_all(&self) -> io::Result<()> {
        // The length never changes after creation: the data, and what is needed to read it.
        self.file.sync_data()
    }

    fn check_in_place(&self) -> io::Result<()> {
        use std::os::unix::fs::MetadataExt;
        let open = self.file.metadata()?;
        let gone = |what: &str| {
            Err(io::Error::other(format!(
                "{} was {what} by another process while this writer held it open: the events \
                 it holds are no longer in the log",
                self.path.display()
            )))
        };
        // Relative to the directory it was opened in: a log directory renamed as a whole is
        // still the same log (see the lock).
        match stat_at(&self.dir, &self.name)? {
            Some(st) if (st.st_dev, st.st_ino) == (open.dev(), open.ino()) => Ok(()),
            Some(_) => gone("replaced"),
            None if open.nlink() == 0 => gone("removed"),
            None => gone("renamed"),
        }
    }

    fn map_writable(&self) -> io::Result<Box<dyn WritableMap>> {
        let len = usize::try_from(self.size()?)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file too large to map"))?;
        // SAFETY: the map is of a segment file that only this process writes while it holds the
        // writer lock; the ring never reads or writes past `len`, and checks that the file is at
        // least as long as its header claims before mapping it. Another process truncating the
        // file behind the lock's back is outside what the crate defends against.
        let mut map = unsafe { MmapOptions::new().len(len).map_mut(&self.file)? };
        let ptr = map.as_mut_ptr();
        Ok(Box::new(FsMap { map, ptr }))
    }
}

#[derive(Debug)]
struct FsMap {
    map: MmapMut,
    /// `map.as_mut_ptr()`, taken once so that writes need no `&mut`.
    ptr: *mut u8,
}

// SAFETY: the mapping is plain shared memory; `FsMap` hands out only the raw pointer, and the
// ring orders every access to the bytes behind it (see `crate::map`).
unsafe impl Send for FsMap {}
// SAFETY: as above.
unsafe impl Sync for FsMap {}

// SAFETY: `MmapMut` owns a mapping of `len()` bytes that stays at the same address until it is
// dropped; it is a `MAP_SHARED` mapping of the file, so `pread` sees what is stored through it.
unsafe impl WritableMap for FsMap {
    fn as_ptr(&self) -> *mut u8 {
        self.ptr
    }

    fn size(&self) -> usize {
        self.map.len()
    }

    fn sync(&self, offset: usize, len: usize) -> io::Result<()> {
        self.map.flush_range(offset, len)
    }

    fn prefault(&self, offset: usize, len: usize) -> io::Result<()> {
        match self.map.advise_range(Advice::PopulateWrite, offset, len) {
            // Kernels before 5.14 do not know MADV_POPULATE_WRITE: then pages fault on first use.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(()),
            other => other,
        }
    }

    fn release(&self, offset: usize, len: usize) -> io::Result<()> {
        // SAFETY: MADV_DONTNEED on a MAP_SHARED file mapping only unmaps the pages: the next
        // access reads them back from the file (page cache), and a dirty page stays dirty in
        // the page cache, so msync and writeback still see it (madvise(2)). No reference into
        // the range is held: the ring writes there no more.
        unsafe {
            self.map
                .unchecked_advise_range(UncheckedAdvice::DontNeed, offset, len)
        }
    }
}
