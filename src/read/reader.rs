//! Read-only access to a log, from any process, without the writer lock.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::Error;
use crate::read::published::{Published, SegmentEntry, SegmentInfo};
use crate::read::recovery::examine;
use crate::read::snapshot::Snapshot;
use crate::storage::listing::PRUNE_RETRIES;
use crate::storage::{FsStorage, Storage};

/// Opens a log for reading while a writer (in this process or another) may be appending.
///
/// A [`Reader::snapshot`] sees every record committed or written so far that continues the
/// chain: it examines the end of the log as recovery does, but changes nothing.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// # let ring = auditring::Ring::open(dir.path())?;
/// # ring.push(auditring::Event::new("login")).unwrap();
/// # ring.close()?;
/// let reader = auditring::Reader::open(dir.path())?;
/// let snap = reader.snapshot()?;
/// assert_eq!(snap.len(), 1);
/// # Ok::<(), auditring::Error>(())
/// ```
#[derive(Clone)]
pub struct Reader {
    storage: Arc<dyn Storage>,
}

impl Reader {
    /// A reader of the log in `dir`, which must exist and hold a log.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Reader, Error> {
        let dir = dir.into();
        check_dir(&dir)?;
        Ok(Reader {
            storage: Arc::new(FsStorage::new(dir)),
        })
    }

    /// A reader of a log in a custom storage.
    pub fn with_storage(storage: impl Storage) -> Reader {
        Reader {
            storage: Arc::new(storage),
        }
    }

    /// The storage this reader reads.
    pub fn storage(&self) -> &dyn Storage {
        &*self.storage
    }

    /// A consistent view of the log as it is now.
    ///
    /// A writer that prunes may remove segments while the view is being taken: the view is then
    /// taken again (a bounded number of times, see `crate::storage::listing`). The view keeps its oldest
    /// 256 segment files open, so that pruning cannot take them away from it; a later one that
    /// retention removes before it is read is [`Error::Pruned`], and a newer view is the
    /// answer.
    pub fn snapshot(&self) -> Result<Snapshot, Error> {
        let mut attempt = 0;
        loop {
            match self.try_snapshot() {
                Err(Error::Pruned { .. }) if attempt < PRUNE_RETRIES => attempt += 1,
                other => return other,
            }
        }
    }

    /// One attempt of [`Reader::snapshot`].
    fn try_snapshot(&self) -> Result<Snapshot, Error> {
        let storage = &*self.storage;
        let examined = examine(storage, false)?.ok_or_else(|| Error::NotALog {
            dir: storage.location().to_path_buf(),
            reason: "it holds no segment files".into(),
        })?;
        let mut segments = examined.sealed;
        let (mut head_seq, mut head, mut active_end) =
            (examined.sealed_next_seq - 1, examined.sealed_head, 0);
        let last = examined.live.len().saturating_sub(1);
        for (k, live) in examined.live.into_iter().enumerate() {
            let info = SegmentInfo {
                first_seq: live.first_seq,
                anchor: live.anchor,
                data_offset: live.header.prefix.data_offset,
                end: (k != last).then_some((live.last_seq, live.end)),
            };
            (head_seq, head, active_end) = (live.last_seq, live.head, live.end);
            let entry = SegmentEntry::known(live.number, live.name, Some(live.file), info);
            // Only a segment whose sealing a crash interrupted is live and not the last.
            let sealed = live.slot.is_some_and(|s| s.sealed);
            segments.push(Arc::new(if sealed {
                entry
            } else {
                entry.with_unsealed_slot()
            }));
        }
        // Retention removes the oldest segments first: open them now, right after listing
        // them, so that this view can read them however far pruning goes meanwhile. Later ones
        // are opened when read, so that a long log does not cost a descriptor per file.
        for entry in segments.iter().take(KEPT_OPEN) {
            entry.keep_open(storage)?;
        }
        Ok(Snapshot::new(Arc::new(Published {
            storage: self.storage.clone(),
            segments: segments.into(),
            first_seq: examined.first_seq,
            anchor: examined.anchor,
            head_seq,
            head,
            active_end,
            log_id: examined.log_id,
        })))
    }
}

/// How many of its oldest segment files a reader's view opens when it is taken.
const KEPT_OPEN: usize = 256;

/// Fails unless `dir` is an existing directory.
pub(crate) fn check_dir(dir: &Path) -> Result<(), Error> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(Error::NotALog {
            dir: dir.to_path_buf(),
            reason: "it is not a directory".into(),
        }),
        Err(e) => Err(Error::io(format!("opening {}", dir.display()), e)),
    }
}

impl fmt::Debug for Reader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reader")
            .field("location", &self.storage.location())
            .finish()
    }
}
