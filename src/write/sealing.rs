//! Forward-secure sealing on the write side: when the sequencer seals an epoch, and what it
//! hands the committer so that the next epoch's key replaces this one's on disk.
//!
//! The sequencer seals (writes an `auditring.sealed` record, FORMAT.md §16) when records
//! written since the last seal reach [`Sealing::every_events`], when [`Sealing::every`] has
//! passed since it (even while the queue is idle), at close, and at open if the state file says
//! records after its last seal are not sealed. Right after computing a seal's MAC it evolves
//! the key in memory, erasing the old one, and tells the committer; the committer syncs the
//! log through the seal record and only then replaces the state file with the next epoch's
//! key. So a crash leaves either the seal and the old key (the next ring seals again with the
//! same epoch: two seals of one epoch, both valid) or no seal and the old key: the epochs in a
//! log never skip one.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::format::event::Event;
use crate::format::hash::Hash;
use crate::format::seal::{SEALED_KIND, SealDetails};
use crate::seal::epoch::{EpochKey, MAX_EPOCHS};
use crate::seal::state::SealState;
use crate::write::item::{Encoded, encode};

/// The longest time between seals accepted.
const MAX_SEAL_INTERVAL: Duration = Duration::from_secs(24 * 60 * 60);

/// The default time between seals.
pub const DEFAULT_SEAL_INTERVAL: Duration = Duration::from_secs(60);

/// How a ring seals its log ([`RingBuilder::sealing`](crate::RingBuilder::sealing)): forward-
/// secure sealing, in the manner of journald's, without its truncate-and-append flaw (a
/// verifier reports every record after the last seal as unsealed, never as sealed).
///
/// The ring is given a state file made from a [`SealKey`](crate::SealKey) that the auditor keeps
/// offline. Every epoch it writes a seal record into the chain (an HMAC over the chain hash
/// before it, with the epoch's key), then evolves the key one way and replaces the state file,
/// so that whoever takes the host later holds only the current epoch's key: they can forge
/// seals for the epoch the ring is in and later ones, never for the epochs already sealed.
/// [`VerifyOptions::seal_key`](crate::VerifyOptions::seal_key) checks every seal against the
/// initial key. `docs/SECURITY.md` says what each attacker can and cannot do.
///
/// ```
/// use std::time::Duration;
/// use auditring::{Ring, SealKey, Sealing};
///
/// # let dir = tempfile::tempdir().unwrap();
/// # let (key_path, state_path) = (dir.path().join("seal.key"), dir.path().join("seal.state"));
/// let key = SealKey::generate()?;
/// key.write_new(&key_path)?; // for the auditor: move it off this host
/// key.write_state(&state_path)?; // for the ring
/// let ring = Ring::builder(dir.path().join("audit"))
///     .sealing(Sealing::new(&state_path).every(Duration::from_secs(60)))
///     .open()?;
/// # ring.close()?;
/// # Ok::<(), auditring::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Sealing {
    state: PathBuf,
    every_events: Option<u64>,
    every: Option<Duration>,
}

impl Sealing {
    /// Seals with the state file at `state` (made by [`SealKey::write_state`](crate::SealKey::write_state)),
    /// every [`DEFAULT_SEAL_INTERVAL`] and at close. The file is replaced at every seal; the
    /// first ring to seal with it binds it to its log.
    #[must_use]
    pub fn new(state: impl Into<PathBuf>) -> Sealing {
        Sealing {
            state: state.into(),
            every_events: None,
            every: Some(DEFAULT_SEAL_INTERVAL),
        }
    }

    /// Also seals once this many records were written since the last seal.
    #[must_use]
    pub fn every_events(mut self, events: u64) -> Sealing {
        self.every_events = Some(events);
        self
    }

    /// Seals this long after the last seal if records were written since (the default is
    /// [`DEFAULT_SEAL_INTERVAL`]).
    #[must_use]
    pub fn every(mut self, interval: Duration) -> Sealing {
        self.every = Some(interval);
        self
    }

    /// Seals by count and at close only, never by time.
    #[must_use]
    pub fn not_by_time(mut self) -> Sealing {
        self.every = None;
        self
    }

    /// The state file.
    pub fn state_path(&self) -> &Path {
        &self.state
    }

    pub(crate) fn validate(&self) -> Result<(), Error> {
        if self.every_events == Some(0) {
            return Err(Error::Config("sealing every 0 events".into()));
        }
        if self.every == Some(Duration::ZERO) {
            return Err(Error::Config("sealing every 0 seconds".into()));
        }
        if let Some(d) = self.every.filter(|&d| d > MAX_SEAL_INTERVAL) {
            return Err(Error::Config(format!(
                "sealing every {d:?}: at most {MAX_SEAL_INTERVAL:?}"
            )));
        }
        Ok(())
    }

    /// Reads the state file and checks it against the log the ring opened: its log id, and
    /// where the log's head is.
    pub(crate) fn start(&self, log_id: [u8; 16], head_seq: u64) -> Result<Sealer, Error> {
        let state = SealState::read(&self.state)?;
        let path = self.state.display();
        if let Some(id) = state.log
            && id != log_id
        {
            return Err(Error::Sealing(format!(
                "the sealing state {path} belongs to log {}, not to this log ({})",
                crate::format::log_id::LogId(id),
                crate::format::log_id::LogId(log_id)
            )));
        }
        if state.key.epoch >= MAX_EPOCHS {
            return Err(Error::Sealing(format!(
                "the sealing state {path} is at epoch {}, the last one: make a new sealing key",
                state.key.epoch
            )));
        }
        if state.sealed_seq > head_seq {
            return Err(Error::Sealing(format!(
                "the sealing state {path} says seq {} was sealed, but the log ends at seq \
                 {head_seq}: it is not this log's state, or the log lost records",
                state.sealed_seq
            )));
        }
        Ok(Sealer {
            path: Arc::from(self.state.as_path()),
            log_id,
            key: state.key,
            sealed_seq: state.sealed_seq,
            every_events: self.every_events,
            every: self.every,
            last: Instant::now(),
        })
    }
}

/// The sequencer's side of sealing.
pub(crate) struct Sealer {
    path: Arc<Path>,
    log_id: [u8; 16],
    /// The key of the epoch the next seal is for; evolved as soon as a seal's MAC is computed.
    key: EpochKey,
    /// Seq of the last seal written (or, before any, the state file's): records after it are
    /// unsealed.
    sealed_seq: u64,
    every_events: Option<u64>,
    every: Option<Duration>,
    /// When the last seal was written (or the ring opened).
    last: Instant,
}

/// A seal the sequencer wrote, for the committer: once the log is synced through it, the state
/// file is replaced with `next`.
pub(crate) struct SealWritten {
    pub(crate) path: Arc<Path>,
    pub(crate) next: SealState,
}

impl Sealer {
    /// Whether records after the last seal call for a seal now: `closing` (or opening) seals
    /// whatever is unsealed; otherwise only at the count or the time.
    pub(crate) fn due(&self, head_seq: u64, closing: bool) -> bool {
        let unsealed = head_seq - self.sealed_seq;
        // A key evolved to the last epoch seals no more (see `MAX_EPOCHS`).
        unsealed > 0
            && self.key.epoch < MAX_EPOCHS
            && (closing
                || self.every_events.is_some_and(|n| unsealed >= n)
                || self.every.is_some_and(|d| self.last.elapsed() >= d))
    }

    /// The head seq at which a seal is due by count (`u64::MAX` if none): the sequencer ends
    /// its batch there.
    pub(crate) fn due_at_seq(&self) -> u64 {
        self.every_events
            .map_or(u64::MAX, |n| self.sealed_seq.saturating_add(n))
    }

    /// How long the sequencer may stay idle before a seal is due by time, if records are
    /// unsealed.
    pub(crate) fn idle_limit(&self, head_seq: u64) -> Option<Duration> {
        if head_seq == self.sealed_seq {
            return None;
        }
        self.every.map(|d| {
            d.saturating_sub(self.last.elapsed())
                .max(Duration::from_millis(1))
        })
    }

    /// The seal record for seq `seq`, whose chain hash before it is `prev`.
    pub(crate) fn record(&self, seq: u64, prev: &Hash) -> Result<Encoded, Error> {
        let details = SealDetails {
            epoch: self.key.epoch,
            mac: self.key.mac(&self.log_id, seq, prev),
        };
        let json = serde_json::to_string(&details).expect("seal details serialize");
        Ok(encode(&Event::system(SEALED_KIND, json), usize::MAX)?)
    }

    /// The seal record at `seq` was written: the key evolves (the old one is erased), and the
    /// committer is handed the state to persist once the record is durable.
    pub(crate) fn written(&mut self, seq: u64) -> SealWritten {
        self.key.evolve();
        self.sealed_seq = seq;
        self.last = Instant::now();
        SealWritten {
            path: self.path.clone(),
            next: SealState {
                log: Some(self.log_id),
                sealed_seq: seq,
                key: self.key.duplicate(),
            },
        }
    }
}
