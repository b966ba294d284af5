//! The shipper: copies a log's sealed segments to a prefix of an object store, and says so.
//!
//! # In the store
//!
//! ```text
//! PREFIX/0000000000000001.seg ...   every sealed segment, byte for byte, written create-only
//! PREFIX/<16 hex>.tb                the tree bases of the log (docs/FORMAT.md §15.5), create-only
//! PREFIX/_ship/head.json            {"log_id","last_segment","last_seq","head"}: how far it goes
//! PREFIX/_ship/checkpoint           the latest signed checkpoint shipped (if any)
//! PREFIX/_ship/checkpoints/<size>   every checkpoint shipped, by tree size, create-only
//! ```
//!
//! The segments are the log itself: `PREFIX` reads as a log directory whose last segment is
//! sealed ([`crate::RemoteStorage`]), and verifies as one. Segments never change once sealed,
//! so each is written once, with a put that fails if the object exists; the two mutable
//! objects only move forward, with a conditional put that fails if another writer changed them
//! since they were read (on a store without conditional puts, a filesystem, they are replaced).
//!
//! # A pass
//!
//! Lists the prefix; reads its head, and stops if it names another log; ships, oldest first,
//! every sealed local segment the prefix lacks (a segment found there with another size stops
//! the pass: the store's copy differs); moves the head and the checkpoint forward; and records
//! in the local log's export marker that everything up to the last shipped seq is kept at the
//! URL ([`auditring::Snapshot::mark_exported`]), so that a ring whose retention waits for
//! exports prunes it, its prune records naming the URL. Every step can be cut by a crash: the
//! next pass finds what is there and goes on, uploading nothing twice and skipping nothing.

use std::path::{Path, PathBuf};

use auditring::{Checkpoint, Reader};
use object_store::{PutMode, PutOptions, PutPayload, UpdateVersion};
use serde::{Deserialize, Serialize};

use crate::error::ShipError;
use crate::remote::Remote;

/// The sub-prefix of the shipper's own objects.
pub const STATE_PREFIX: &str = "_ship";
/// The head object, in [`STATE_PREFIX`].
pub const HEAD_OBJECT: &str = "head.json";
/// The latest checkpoint, in [`STATE_PREFIX`].
pub const CHECKPOINT_OBJECT: &str = "checkpoint";
/// Every checkpoint, by tree size, under this sub-prefix of [`STATE_PREFIX`].
pub const CHECKPOINTS_PREFIX: &str = "checkpoints";

/// Times a conditional put is made again after losing a race with another writer.
const RACES: usize = 8;

/// How far the shipped log goes: `_ship/head.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Head {
    /// The log's id (32 hex digits).
    pub log_id: String,
    /// The last segment shipped.
    pub last_segment: u64,
    /// The last seq shipped.
    pub last_seq: u64,
    /// The chain hash at `last_seq` (64 hex digits).
    pub head: String,
}

/// What one pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShipReport {
    /// The objects uploaded, in order: segments and tree bases.
    pub uploaded: Vec<String>,
    /// Bytes uploaded.
    pub bytes: u64,
    /// Sealed segments found in the store already.
    pub already_there: usize,
    /// How far the shipped log goes after the pass, if it holds any segment.
    pub head: Option<Head>,
    /// The tree size of the checkpoint shipped by this pass, if it shipped one.
    pub checkpoint: Option<u64>,
}

/// Ships a log to a prefix of an object store ([`Shipper::ship`], once per pass).
#[derive(Debug)]
pub struct Shipper {
    remote: Remote,
    checkpoint: Option<PathBuf>,
}

impl Shipper {
    /// A shipper to `remote`'s prefix.
    pub fn new(remote: Remote) -> Shipper {
        Shipper {
            remote,
            checkpoint: None,
        }
    }

    /// Also ships the signed checkpoint in `file` (the latest one a ring wrote: its
    /// checkpoint directory's `checkpoint`) at each pass, if it is newer than the store's.
    #[must_use]
    pub fn checkpoint(mut self, file: impl Into<PathBuf>) -> Shipper {
        self.checkpoint = Some(file.into());
        self
    }

    /// The prefix shipped to.
    pub fn remote(&self) -> &Remote {
        &self.remote
    }

    /// One pass over the log in `dir` (see the module docs). The log may be written by a ring
    /// in this process or another meanwhile: the pass reads a snapshot.
    pub fn ship(&self, dir: impl AsRef<Path>) -> Result<ShipReport, ShipError> {
        let dir = dir.as_ref();
        let snapshot = Reader::open(dir)?.snapshot()?;
        let log_id = snapshot.log_id().to_string();
        let state = self.remote.child(STATE_PREFIX);
        let (objects, _) = self.remote.list()?;
        let there: std::collections::HashMap<String, u64> =
            objects.into_iter().map(|(n, m)| (n, m.size)).collect();
        if let Some((bytes, _)) = get(&state, HEAD_OBJECT)? {
            let theirs = parse_head(&state, &bytes)?;
            if theirs.log_id != log_id {
                return Err(ShipError::OtherLog {
                    location: self.remote.url().to_owned(),
                    theirs: theirs.log_id,
                    ours: log_id,
                });
            }
        }
        let sealed: Vec<_> = (snapshot.segments()?.into_iter())
            .filter(|s| s.sealed)
            .collect();
        self.check_no_gap(dir, &there, &sealed)?;

        let mut report = ShipReport::default();
        for base in tree_bases(dir)? {
            if !there.contains_key(&base) {
                let bytes = read_local(&dir.join(&base))?;
                if self.create(&base, bytes.clone(), None)? {
                    report.bytes += bytes.len() as u64;
                    report.uploaded.push(base);
                }
            }
        }
        for s in &sealed {
            let name = file_name(&s.path);
            if let Some(&size) = there.get(&name) {
                self.check_same_size(&name, size, &s.path, s.file_bytes)?;
                report.already_there += 1;
                continue;
            }
            let bytes = read_local(&s.path)?;
            if self.create(&name, bytes.clone(), Some(&s.path))? {
                report.bytes += bytes.len() as u64;
                report.uploaded.push(name);
            } else {
                report.already_there += 1;
            }
        }
        if let Some(last) = sealed.last() {
            let chain = if last.last_seq >= last.first_seq {
                snapshot.get(last.last_seq)?.map(|r| r.chain)
            } else {
                None
            };
            let head = Head {
                log_id,
                last_segment: last.number,
                last_seq: last.last_seq,
                head: chain.map_or_else(|| snapshot.anchor().to_string(), |c| c.to_string()),
            };
            let bytes = serde_json::to_vec(&head).expect("a head serializes");
            let ours = head.log_id.clone();
            advance(&state, HEAD_OBJECT, bytes, head.last_seq, |theirs| {
                let theirs = parse_head(&state, theirs)?;
                if theirs.log_id != ours {
                    return Err(ShipError::OtherLog {
                        location: self.remote.url().to_owned(),
                        theirs: theirs.log_id,
                        ours: ours.clone(),
                    });
                }
                Ok(theirs.last_seq)
            })?;
            if last.last_seq >= snapshot.first_seq() {
                snapshot.mark_exported(snapshot.first_seq(), last.last_seq, self.remote.url())?;
            }
            report.head = Some(head);
        }
        if let Some(file) = &self.checkpoint {
            report.checkpoint = ship_checkpoint(&state, file)?;
        }
        Ok(report)
    }

    /// Fails if shipping `sealed` would leave a gap in the store: segments after the store's
    /// last one that are no longer here.
    fn check_no_gap(
        &self,
        dir: &Path,
        there: &std::collections::HashMap<String, u64>,
        sealed: &[auditring::SegmentSummary],
    ) -> Result<(), ShipError> {
        let mut numbers: Vec<u64> = (there.keys())
            .filter_map(|n| segment_number(n))
            .chain(sealed.iter().map(|s| s.number))
            .collect();
        numbers.sort_unstable();
        numbers.dedup();
        for pair in numbers.windows(2) {
            if pair[1] != pair[0] + 1 {
                return Err(ShipError::Gap {
                    dir: dir.to_path_buf(),
                    location: self.remote.url().to_owned(),
                    first: pair[0] + 1,
                    last: pair[1] - 1,
                });
            }
        }
        Ok(())
    }

    fn check_same_size(
        &self,
        name: &str,
        theirs: u64,
        local: &Path,
        ours: u64,
    ) -> Result<(), ShipError> {
        if theirs == ours {
            return Ok(());
        }
        Err(ShipError::Differs {
            location: self.remote.location(name),
            theirs,
            local: local.to_path_buf(),
            ours,
        })
    }

    /// Writes `bytes` to `name` unless it exists; returns whether it wrote them. One that
    /// exists (written by an earlier pass cut short, or a racing shipper) must be as long.
    fn create(&self, name: &str, bytes: Vec<u8>, local: Option<&Path>) -> Result<bool, ShipError> {
        let len = bytes.len() as u64;
        match put(&self.remote, name, bytes, &PutMode::Create) {
            Ok(()) => Ok(true),
            Err(ShipError::Store {
                source: object_store::Error::AlreadyExists { .. },
                ..
            }) => {
                let path = self.remote.path(name);
                let store = self.remote.store();
                let meta = self
                    .remote
                    .run("reading", &self.remote.location(name), || store.head(&path))?;
                let local = local.map_or_else(|| PathBuf::from(name), Path::to_path_buf);
                self.check_same_size(name, meta.size, &local, len)?;
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }
}

/// Ships the checkpoint in `file` if it is newer than the store's latest; returns its
/// tree size if it did.
fn ship_checkpoint(state: &Remote, file: &Path) -> Result<Option<u64>, ShipError> {
    let bytes = read_local(file)?;
    let size = checkpoint_size(&bytes).map_err(|reason| ShipError::BadHead {
        location: file.display().to_string(),
        reason,
    })?;
    let by_size = state.child(CHECKPOINTS_PREFIX);
    let name = format!("{size:020}");
    // One checkpoint per size: one already there stays.
    match put(&by_size, &name, bytes.clone(), &PutMode::Create) {
        Ok(())
        | Err(ShipError::Store {
            source: object_store::Error::AlreadyExists { .. },
            ..
        }) => {}
        Err(e) => return Err(e),
    }
    let moved = advance(state, CHECKPOINT_OBJECT, bytes, size, |theirs| {
        checkpoint_size(theirs).map_err(|reason| ShipError::BadHead {
            location: state.location(CHECKPOINT_OBJECT),
            reason,
        })
    })?;
    Ok(moved.then_some(size))
}

/// The tree size a signed checkpoint's text states.
fn checkpoint_size(bytes: &[u8]) -> Result<u64, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| e.to_string())?;
    let body = text.find("\n\n").map_or(text, |blank| &text[..=blank]);
    Checkpoint::parse(body)
        .map(|c| c.size())
        .map_err(|e| format!("not a signed checkpoint: {e}"))
}

fn parse_head(state: &Remote, bytes: &[u8]) -> Result<Head, ShipError> {
    serde_json::from_slice(bytes).map_err(|e| ShipError::BadHead {
        location: state.location(HEAD_OBJECT),
        reason: e.to_string(),
    })
}

/// The object `name` and its version, if it exists.
pub(crate) fn get(
    remote: &Remote,
    name: &str,
) -> Result<Option<(bytes::Bytes, UpdateVersion)>, ShipError> {
    let path = remote.path(name);
    let store = remote.store();
    let got = remote.run("reading", &remote.location(name), || async {
        let got = store.get(&path).await?;
        let version = UpdateVersion {
            e_tag: got.meta.e_tag.clone(),
            version: got.meta.version.clone(),
        };
        Ok((got.bytes().await?, version))
    });
    match got {
        Ok(got) => Ok(Some(got)),
        Err(ShipError::Store {
            source: object_store::Error::NotFound { .. },
            ..
        }) => Ok(None),
        Err(e) => Err(e),
    }
}

fn put(remote: &Remote, name: &str, bytes: Vec<u8>, mode: &PutMode) -> Result<(), ShipError> {
    let path = remote.path(name);
    let store = remote.store();
    let payload = PutPayload::from(bytes);
    remote
        .run("writing", &remote.location(name), || {
            let options = PutOptions {
                mode: mode.clone(),
                ..PutOptions::default()
            };
            store.put_opts(&path, payload.clone(), options)
        })
        .map(|_| ())
}

/// Replaces the mutable object `name` with `bytes`, ranked `ours`, unless the object there
/// ranks as high (`rank` of its bytes): with a conditional put, made again if another writer
/// changed the object meanwhile, so that no writer replaces a newer state with an older one.
/// A store without conditional puts (a filesystem) has the object replaced. Returns whether
/// it was.
fn advance(
    remote: &Remote,
    name: &str,
    bytes: Vec<u8>,
    ours: u64,
    rank: impl Fn(&[u8]) -> Result<u64, ShipError>,
) -> Result<bool, ShipError> {
    for _ in 0..RACES {
        let current = get(remote, name)?;
        let mode = match current {
            Some((theirs, _)) if rank(&theirs)? >= ours => return Ok(false),
            Some((_, version)) => PutMode::Update(version),
            None => PutMode::Create,
        };
        match put(remote, name, bytes.clone(), &mode) {
            Ok(()) => return Ok(true),
            Err(ShipError::Store {
                source: object_store::Error::NotImplemented,
                ..
            }) => {
                put(remote, name, bytes, &PutMode::Overwrite)?;
                return Ok(true);
            }
            // Another writer changed it since it was read: look again.
            Err(ShipError::Store {
                source:
                    object_store::Error::Precondition { .. } | object_store::Error::AlreadyExists { .. },
                ..
            }) => {}
            Err(e) => return Err(e),
        }
    }
    Err(ShipError::BadHead {
        location: remote.location(name),
        reason: format!("another writer changed it {RACES} times in a row while this one tried"),
    })
}

fn read_local(path: &Path) -> Result<Vec<u8>, ShipError> {
    std::fs::read(path).map_err(|source| ShipError::Local {
        path: path.to_path_buf(),
        source,
    })
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The number of a segment file's name (`<16 hex digits>.seg`).
pub(crate) fn segment_number(name: &str) -> Option<u64> {
    let hex = name.strip_suffix(".seg")?;
    (hex.len() == 16
        && hex
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()))
    .then(|| u64::from_str_radix(hex, 16).ok())
    .flatten()
    .filter(|&n| n > 0)
}

/// The tree bases in `dir` (`<16 hex digits>.tb`).
fn tree_bases(dir: &Path) -> Result<Vec<String>, ShipError> {
    let entries = std::fs::read_dir(dir).map_err(|source| ShipError::Local {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut bases: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            n.strip_suffix(".tb")
                .is_some_and(|hex| hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        })
        .collect();
    bases.sort();
    Ok(bases)
}
