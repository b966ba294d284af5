//! Signed checkpoints of a ring's Merkle tree: when the ring signs them, with which keys, and
//! where they go.
//!
//! The tree worker ([`crate::write::tree`]) signs a checkpoint every so many events, every so
//! often, at every sealed segment and at close, always at a size whose records are committed,
//! and hands it to every sink: a directory outside the log, or a callback. A sink that fails
//! does not stop the ring: the failure is kept, the next checkpoints are tried, and
//! [`Ring::close`](crate::Ring::close) returns the first failure.

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::checkpoint::{Checkpoint, SigningKey, sign_note};
use crate::error::Error;
use crate::format::hash::Hash;
use crate::format::log_id::{LogId, default_origin};

/// A checkpoint as the ring signed it: the tree head, and the signed note that carries it (the
/// C2SP `tlog-checkpoint` body, a blank line, one signature line per key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedCheckpoint {
    checkpoint: Checkpoint,
    note: String,
}

impl SignedCheckpoint {
    /// The tree head: origin, size, root.
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    /// The signed note, as a verifier or a witness reads it.
    pub fn note(&self) -> &str {
        &self.note
    }
}

/// What a callback sink is given: every checkpoint, in order of size.
pub type CheckpointCallback = dyn Fn(&SignedCheckpoint) -> Result<(), String> + Send + Sync;

/// Where checkpoints go.
#[derive(Clone)]
enum Sink {
    /// `checkpoint` (the latest, replaced atomically) and `checkpoints.jsonl` (every one, a
    /// JSON line each) in a directory.
    Dir(PathBuf),
    Callback(Arc<CheckpointCallback>),
}

impl fmt::Debug for Sink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Sink::Dir(dir) => f.debug_tuple("Dir").field(dir).finish(),
            Sink::Callback(_) => f.write_str("Callback"),
        }
    }
}

/// The file of the latest checkpoint in a directory sink.
pub const LATEST_CHECKPOINT_FILE: &str = "checkpoint";

/// The file of every checkpoint in a directory sink: one JSON object per line,
/// `{"size":n,"note":"<the signed note>"}`, in the order they were signed.
pub const CHECKPOINT_HISTORY_FILE: &str = "checkpoints.jsonl";

/// How a ring signs checkpoints of its Merkle tree
/// ([`RingBuilder::checkpoints`](crate::RingBuilder::checkpoints)).
///
/// ```
/// use std::time::Duration;
/// use auditring::{Checkpoints, SigningKey};
///
/// let key = SigningKey::generate("audit.example/payments")?;
/// let checkpoints = Checkpoints::new(key)
///     .every_events(1_000_000)
///     .every(Duration::from_secs(1))
///     .to_dir("/var/lib/audit-checkpoints");
/// # let _ = checkpoints;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct Checkpoints {
    keys: Vec<Arc<SigningKey>>,
    origin: Option<String>,
    every_events: Option<u64>,
    every: Option<Duration>,
    sinks: Vec<Sink>,
}

impl Checkpoints {
    /// Checkpoints signed with `key` (an Ed25519 note key, [`SigningKey::generate`]), at every
    /// sealed segment and at close, and nowhere to go until a sink is added.
    pub fn new(key: SigningKey) -> Checkpoints {
        Checkpoints {
            keys: vec![Arc::new(key)],
            origin: None,
            every_events: None,
            every: None,
            sinks: Vec::new(),
        }
    }

    /// Signs with `key` too: to rotate keys, sign with the old and the new one for as long as
    /// verifiers may trust only the old one (any trusted key's signature suffices).
    pub fn also_signed_by(mut self, key: SigningKey) -> Checkpoints {
        self.keys.push(Arc::new(key));
        self
    }

    /// The checkpoints' origin line, which names the log (default: `auditring/` and the log
    /// id). Verifiers compare it with the origin they expect.
    pub fn origin(mut self, origin: impl Into<String>) -> Checkpoints {
        self.origin = Some(origin.into());
        self
    }

    /// A checkpoint every `n` events, at sizes that are multiples of `n` (once committed).
    pub fn every_events(mut self, n: u64) -> Checkpoints {
        self.every_events = Some(n);
        self
    }

    /// A checkpoint at most `interval` after the last one, if the log grew since.
    pub fn every(mut self, interval: Duration) -> Checkpoints {
        self.every = Some(interval);
        self
    }

    /// Writes every checkpoint into `dir` (which must be outside the log, and is created if
    /// missing): `checkpoint` holds the latest, replaced atomically, and `checkpoints.jsonl`
    /// gets a line for each.
    pub fn to_dir(mut self, dir: impl Into<PathBuf>) -> Checkpoints {
        self.sinks.push(Sink::Dir(dir.into()));
        self
    }

    /// Calls `callback` with every checkpoint, from the ring's tree thread; an `Err` (or a
    /// panic) is kept as that checkpoint's failure.
    pub fn to_callback(
        mut self,
        callback: impl Fn(&SignedCheckpoint) -> Result<(), String> + Send + Sync + 'static,
    ) -> Checkpoints {
        self.sinks.push(Sink::Callback(Arc::new(callback)));
        self
    }

    /// Checks what the ring needs before opening: a sink, intervals that are not zero.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        if self.sinks.is_empty() {
            return Err(Error::Config(
                "checkpoints need somewhere to go: add `to_dir` or `to_callback`".into(),
            ));
        }
        if self.every_events == Some(0) {
            return Err(Error::Config("checkpoints every 0 events".into()));
        }
        if self.every == Some(Duration::ZERO) {
            return Err(Error::Config("checkpoints every 0 seconds".into()));
        }
        if let Some(origin) = &self.origin {
            Checkpoint::new(origin, 0, Hash::ZERO)
                .map_err(|e| Error::Config(format!("checkpoint origin {origin:?}: {e}")))?;
        }
        Ok(())
    }

    /// The origin of the checkpoints of the log `log_id`.
    pub(crate) fn origin_for(&self, log_id: LogId) -> String {
        self.origin
            .clone()
            .unwrap_or_else(|| default_origin(log_id))
    }

    pub(crate) fn every_events_n(&self) -> Option<u64> {
        self.every_events
    }

    pub(crate) fn interval(&self) -> Option<Duration> {
        self.every
    }

    /// Signs the tree head `(size, root)` of the log with origin `origin`.
    pub(crate) fn sign(
        &self,
        origin: &str,
        size: u64,
        root: Hash,
    ) -> Result<SignedCheckpoint, Error> {
        let checkpoint = Checkpoint::new(origin, size, root)
            .map_err(|e| Error::Config(format!("checkpoint of size {size}: {e}")))?;
        let keys: Vec<&SigningKey> = self.keys.iter().map(|k| &**k).collect();
        let note = sign_note(&checkpoint.to_body(), &keys)
            .map_err(|e| Error::Config(format!("signing the checkpoint of size {size}: {e}")))?;
        Ok(SignedCheckpoint { checkpoint, note })
    }

    /// Hands `signed` to every sink; returns the first failure.
    pub(crate) fn deliver(&self, signed: &SignedCheckpoint) -> Result<(), Error> {
        let mut result = Ok(());
        for sink in &self.sinks {
            let delivered = match sink {
                Sink::Dir(dir) => write_to_dir(dir, signed).map_err(|e| {
                    Error::io(
                        format!(
                            "writing the checkpoint of size {} to {}",
                            signed.checkpoint.size(),
                            dir.display()
                        ),
                        e,
                    )
                }),
                Sink::Callback(callback) => {
                    let called =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| callback(signed)));
                    let failure = match called {
                        Ok(Ok(())) => None,
                        Ok(Err(e)) => Some(e),
                        Err(_) => Some("the callback panicked".to_owned()),
                    };
                    failure.map_or(Ok(()), |e| {
                        Err(Error::Config(format!(
                            "the checkpoint callback failed on the checkpoint of size {}: {e}",
                            signed.checkpoint.size()
                        )))
                    })
                }
            };
            result = result.and(delivered);
        }
        result
    }
}

/// Writes `signed` into `dir`: appends its line to the history, then replaces the latest.
fn write_to_dir(dir: &Path, signed: &SignedCheckpoint) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let line = serde_json::json!({
        "size": signed.checkpoint.size(),
        "note": signed.note,
    });
    let mut history = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(CHECKPOINT_HISTORY_FILE))?;
    history.write_all(format!("{line}\n").as_bytes())?;
    history.sync_data()?;
    let tmp = dir.join(format!(".{LATEST_CHECKPOINT_FILE}.tmp"));
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(signed.note.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&tmp, dir.join(LATEST_CHECKPOINT_FILE))?;
    std::fs::File::open(dir)?.sync_all()
}
