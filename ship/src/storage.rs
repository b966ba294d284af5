//! A shipped log, read where it is: an [`auditring::storage::Storage`] over a prefix of an
//! object store, so that `verify`, snapshots, queries and exports run on it unchanged and name
//! its objects by URL (`s3://bucket/host-a/0000000000000003.seg at byte 4096`).
//!
//! Read-only: creating, writing, removing and locking fail with `Unsupported`. The objects'
//! sizes come from one listing; a file is read through a window of [`WINDOW`] bytes fetched
//! with one ranged request, so that a walk from the first record to the last makes one request
//! per window and holds one window per file it reads.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use auditring::storage::{LockError, LockGuard, SegmentFile, Storage, WritableMap};
use bytes::Bytes;
use object_store::path::Path as ObjectPath;

use crate::error::ShipError;
use crate::remote::Remote;

/// Bytes fetched per ranged request.
pub const WINDOW: u64 = 8 << 20;

/// A shipped log in its store, read-only.
#[derive(Debug)]
pub struct RemoteStorage {
    remote: Remote,
    /// The prefix's URL, as a path: what messages show.
    location: PathBuf,
    /// The objects' sizes at the last listing.
    sizes: Mutex<std::collections::HashMap<String, u64>>,
}

impl RemoteStorage {
    /// The log shipped to `remote`'s prefix.
    pub fn new(remote: Remote) -> RemoteStorage {
        RemoteStorage {
            location: PathBuf::from(remote.url()),
            remote,
            sizes: Mutex::default(),
        }
    }
}

/// `e` as an I/O error; a missing object as `NotFound`, which readers take for a file gone.
fn to_io(e: ShipError) -> io::Error {
    match &e {
        ShipError::Store {
            source: object_store::Error::NotFound { .. },
            ..
        } => io::Error::new(io::ErrorKind::NotFound, e),
        ShipError::Timeout { .. } => io::Error::new(io::ErrorKind::TimedOut, e),
        _ => io::Error::other(e),
    }
}

fn read_only() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        "a shipped log is read-only: it is written by `auditring ship`",
    )
}

impl Storage for RemoteStorage {
    fn location(&self) -> &Path {
        &self.location
    }

    fn list(&self) -> io::Result<Vec<String>> {
        let (objects, _) = self.remote.list().map_err(to_io)?;
        let mut sizes = self.sizes.lock().unwrap_or_else(PoisonError::into_inner);
        sizes.clear();
        sizes.extend(objects.iter().map(|(n, m)| (n.clone(), m.size)));
        Ok(objects.into_iter().map(|(n, _)| n).collect())
    }

    fn create(&self, _: &str, _: u64, _: &[u8]) -> io::Result<Arc<dyn SegmentFile>> {
        Err(read_only())
    }

    fn open(&self, name: &str, write: bool) -> io::Result<Arc<dyn SegmentFile>> {
        if write {
            return Err(read_only());
        }
        let path = self.remote.path(name);
        let location = self.remote.location(name);
        let known = (self.sizes.lock().unwrap_or_else(PoisonError::into_inner))
            .get(name)
            .copied();
        let size = if let Some(size) = known {
            size
        } else {
            let store = self.remote.store();
            self.remote
                .run("reading", &location, || store.head(&path))
                .map_err(to_io)?
                .size
        };
        Ok(Arc::new(RemoteFile {
            remote: self.remote.clone(),
            path,
            location,
            size,
            window: Mutex::new(None),
        }))
    }

    fn remove(&self, _: &str) -> io::Result<()> {
        Err(read_only())
    }

    fn write_small(&self, _: &str, _: &[u8]) -> io::Result<()> {
        Err(read_only())
    }

    fn read_small(&self, name: &str) -> io::Result<Option<Vec<u8>>> {
        let got = crate::shipper::get(&self.remote, name).map_err(to_io)?;
        Ok(got.map(|(bytes, _)| bytes.to_vec()))
    }

    fn lock(&self, _: bool) -> Result<LockGuard, LockError> {
        Err(LockError::Io(read_only()))
    }
}

/// One object of a shipped log.
struct RemoteFile {
    remote: Remote,
    path: ObjectPath,
    location: String,
    /// Its size when the log was listed (objects are never changed by the shipper).
    size: u64,
    /// The bytes last fetched, and where they start.
    window: Mutex<Option<(u64, Bytes)>>,
}

impl std::fmt::Debug for RemoteFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteFile")
            .field("location", &self.location)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl SegmentFile for RemoteFile {
    fn size(&self) -> io::Result<u64> {
        Ok(self.size)
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        if offset >= self.size || buf.is_empty() {
            return Ok(0);
        }
        let mut window = self.window.lock().unwrap_or_else(PoisonError::into_inner);
        let covers = |w: &Option<(u64, Bytes)>| {
            w.as_ref()
                .is_some_and(|(at, b)| *at <= offset && offset < at + b.len() as u64)
        };
        if !covers(&window) {
            let end = (offset + WINDOW.max(buf.len() as u64)).min(self.size);
            let store = self.remote.store();
            let bytes = self
                .remote
                .run("reading", &self.location, || {
                    store.get_range(&self.path, offset..end)
                })
                .map_err(to_io)?;
            if bytes.len() as u64 != end - offset {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "{}: asked for bytes {offset}..{end}, got {}: the object changed \
                         since it was listed",
                        self.location,
                        bytes.len()
                    ),
                ));
            }
            *window = Some((offset, bytes));
        }
        let (at, bytes) = window.as_ref().expect("just fetched");
        let from = (offset - at) as usize;
        let n = buf.len().min(bytes.len() - from);
        buf[..n].copy_from_slice(&bytes[from..from + n]);
        Ok(n)
    }

    fn write_at(&self, _: &[u8], _: u64) -> io::Result<()> {
        Err(read_only())
    }

    fn zero_range(&self, _: u64, _: u64) -> io::Result<()> {
        Err(read_only())
    }

    fn sync_all(&self) -> io::Result<()> {
        Ok(())
    }

    fn map_writable(&self) -> io::Result<Box<dyn WritableMap>> {
        Err(read_only())
    }
}
