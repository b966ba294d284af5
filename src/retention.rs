//! Retention: a log that keeps at most so many segments, bytes or days, pruning the oldest
//! sealed segments, and never losing one silently.
//!
//! After every rotation the retention thread looks at the sealed segments, oldest first, and
//! picks those past a limit. What happens to a segment that no export covers yet is the
//! embedder's choice ([`Unexported`]): export it first (as a bundle), remove it anyway, or wait
//! for an export, holding the log at its size meanwhile (the sequencer does not start a new
//! segment, so the queue fills and producers wait).
//!
//! Pruning is audited. The retention thread pushes an `auditring.pruned` record into the chain,
//! naming the seqs removed, the chain hash at their end and the files, waits until that record
//! is synced, and only then removes the files. The log then starts at the next seq, anchored at
//! that hash; verification starts there and requires the record that says why.
//!
//! How far exports reach is kept in the log directory's `EXPORTED` marker: every export of the
//! log that extends the range covered from the log's start, without a gap, advances it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crossbeam::channel::{Receiver, RecvTimeoutError, Sender};
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::event::{Event, now_nanos};
use crate::export::{Encoding, ExportOptions, Selection};
use crate::hash::Hash;
use crate::listing::EXPORTED_FILE;
use crate::producer::{Encoded, Item, encode};
use crate::receipt::Ticket;
use crate::shared::Shared;
use crate::snapshot::{SegmentSummary, Snapshot};
use crate::storage::Storage;

/// The kind of the record that says segments were pruned.
pub const PRUNED_KIND: &str = "auditring.pruned";

/// How much of a log to keep. Limits count sealed segments only: the active one is never
/// pruned. With no limit set (the default), nothing is ever removed.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct Retention {
    /// Keep at most this many sealed segments.
    pub max_segments: Option<usize>,
    /// Keep at most this many bytes of segment files, the active one included.
    pub max_bytes: Option<u64>,
    /// Prune sealed segments whose newest event's origin time is older than this.
    pub max_age: Option<Duration>,
    /// What to do with a segment to prune that no export covers.
    pub unexported: Unexported,
}

impl Retention {
    /// No limits.
    pub fn new() -> Retention {
        Retention::default()
    }

    /// At most `n` sealed segments.
    pub fn max_segments(mut self, n: usize) -> Retention {
        self.max_segments = Some(n);
        self
    }

    /// At most `bytes` of segment files.
    pub fn max_bytes(mut self, bytes: u64) -> Retention {
        self.max_bytes = Some(bytes);
        self
    }

    /// Nothing older than `age`.
    pub fn max_age(mut self, age: Duration) -> Retention {
        self.max_age = Some(age);
        self
    }

    /// What to do with segments no export covers.
    pub fn unexported(mut self, what: Unexported) -> Retention {
        self.unexported = what;
        self
    }

    /// Whether any limit is set.
    pub(crate) fn is_active(&self) -> bool {
        self.max_segments.is_some() || self.max_bytes.is_some() || self.max_age.is_some()
    }
}

/// What to do with a segment past a retention limit that no export covers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unexported {
    /// Keep it until an export covers it, holding the log at its size meanwhile: producers
    /// wait. Nothing is lost. The default.
    #[default]
    Wait,
    /// Export it first, as a bundle in a new directory under this one (named after its seq
    /// range), then prune it.
    ExportTo(PathBuf),
    /// Prune it anyway. The prune record still says which seqs and chain hash were removed.
    Remove,
}

/// How far exports of a log reach: the `EXPORTED` marker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Coverage {
    /// The first seq covered.
    pub(crate) first_seq: u64,
    /// Every seq from `first_seq` to this one is in some export.
    pub(crate) last_seq: u64,
    /// The chain hash at `last_seq`.
    pub(crate) head: Hash,
}

impl Coverage {
    /// The marker of `storage`'s log, if there is a readable one.
    pub(crate) fn read(storage: &dyn Storage) -> Option<Coverage> {
        let bytes = storage.read_small(EXPORTED_FILE).ok()??;
        serde_json::from_slice(&bytes).ok()
    }

    /// Records that seqs `from..=to` (ending at `head`) were exported, if that extends the
    /// coverage from the log's first seq `log_first` without a gap.
    pub(crate) fn extend(
        storage: &dyn Storage,
        log_first: u64,
        from: u64,
        to: u64,
        head: Hash,
    ) -> std::io::Result<()> {
        let new = match Coverage::read(storage) {
            Some(c) if c.last_seq >= to => return Ok(()),
            Some(c) if from <= c.last_seq + 1 => Coverage {
                first_seq: c.first_seq,
                last_seq: to,
                head,
            },
            _ if from <= log_first => Coverage {
                first_seq: from,
                last_seq: to,
                head,
            },
            _ => return Ok(()),
        };
        let bytes = serde_json::to_vec(&new).expect("coverage serializes");
        storage.write_small(EXPORTED_FILE, &bytes)
    }

    /// Whether seqs `from..=to` are all covered.
    fn covers(&self, from: u64, to: u64) -> bool {
        self.first_seq <= from && to <= self.last_seq
    }
}

/// A prune record on its way to the sequencer, with what it changes in the published view.
pub(crate) struct Prune {
    /// The `auditring.pruned` record.
    pub(crate) record: Encoded,
    /// Segments numbered up to this one leave the view.
    pub(crate) last_segment: u64,
    /// The log's new first seq, and the chain hash before it.
    pub(crate) first_seq: u64,
    pub(crate) anchor: Hash,
}

/// The details of a prune record, exactly as `docs/FORMAT.md` §14.1 specifies them: a JSON
/// object of these six members, each present once, no other member.
///
/// Invariants of a parsed one ([`PruneDetails::from_record`]): `1 <= first_seq`,
/// `first_seq <= last_seq + 1` (the pruned segments may hold no record), and `last_seq` is below
/// the seq of the prune record itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PruneDetails {
    /// First and last seq removed.
    pub(crate) first_seq: u64,
    pub(crate) last_seq: u64,
    /// Chain hash of `last_seq`: the anchor the log now starts from (64 lowercase hex digits).
    pub(crate) head: Hash,
    /// The files removed.
    pub(crate) segments: Vec<String>,
    /// Which limit: `"max_segments"`, `"max_bytes"` or `"max_age"` (any string is read).
    pub(crate) reason: String,
    /// Where the records were exported first, if the ring exported them; always written, as
    /// `null` when not.
    #[serde(deserialize_with = "string_or_null")]
    pub(crate) exported_to: Option<String>,
}

/// A member that must be there, as a string or `null` (serde would take a missing one as
/// `None`).
fn string_or_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Option::<String>::deserialize(d)
}

impl PruneDetails {
    /// What the prune record with this `body`, at `seq`, says; or why it says nothing: not a
    /// prune record, or details that are not those of FORMAT.md §14.1. The one reading of prune
    /// records (verification follows it; `tools/verify_log.py` reads them the same way).
    pub(crate) fn from_record(body: &[u8], seq: u64) -> Result<PruneDetails, String> {
        let envelope = crate::event::decode_body(body).map_err(|e| e.to_string())?;
        if envelope.kind != PRUNED_KIND {
            return Err(format!("a record of kind {:?}", envelope.kind));
        }
        let text = envelope.details.ok_or("no details")?;
        // An object (serde would take an array of the members in order too).
        if !text
            .trim_start_matches([' ', '\t', '\n', '\r'])
            .starts_with('{')
        {
            return Err("the details are not a JSON object".into());
        }
        let d: PruneDetails = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if d.first_seq == 0 {
            return Err("first_seq is 0".into());
        }
        if d.last_seq.checked_add(1).is_some_and(|n| d.first_seq > n) {
            return Err(format!(
                "first_seq {} is past last_seq {} + 1",
                d.first_seq, d.last_seq
            ));
        }
        if d.last_seq >= seq {
            return Err(format!(
                "last_seq {} is not before the prune record's own seq {seq}",
                d.last_seq
            ));
        }
        Ok(d)
    }
}

/// How often the retention thread looks again when no rotation woke it (to see exports made by
/// others, and segments growing old).
const RECHECK: Duration = Duration::from_millis(500);

/// What wakes the retention thread.
pub(crate) enum Wake {
    /// The sequencer started a new segment.
    Rotated,
    /// [`Ring::apply_retention`](crate::Ring::apply_retention): prune what is due now, and say
    /// what was done.
    Now(Sender<Result<RetentionPass, Error>>),
}

/// What one look of the retention thread did.
enum Look {
    /// Pruned these segments, holding these seqs.
    Pruned {
        segments: usize,
        seqs: Option<(u64, u64)>,
    },
    /// Segments past a limit wait for an export.
    Held,
    /// Nothing is past a limit.
    Done,
}

/// What one retention pass ([`Ring::apply_retention`](crate::Ring::apply_retention)) did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetentionPass {
    /// Segments pruned.
    pub pruned_segments: usize,
    /// The seqs they held, if they held any.
    pub pruned_seqs: Option<(u64, u64)>,
    /// Whether segments past a limit are left, waiting for an export
    /// ([`Unexported::Wait`]); the log is held at its size meanwhile.
    pub held: bool,
}

/// The retention thread.
pub(crate) struct Worker {
    pub(crate) shared: Arc<Shared>,
    pub(crate) policy: Retention,
    /// Rotations and requests; disconnected when the ring closes.
    pub(crate) wake: Receiver<Wake>,
}

impl Worker {
    /// Runs until the ring closes. A failure stalls nothing: it is kept for
    /// [`Ring::retention_error`](crate::Ring::retention_error) and retried at the next look.
    pub(crate) fn run(self) -> Result<(), Error> {
        let mut asked = Vec::new();
        loop {
            if self.shared.queue.is_closed() {
                return Ok(());
            }
            let pass = self.pass();
            match &pass {
                Ok(_) => self.shared.set_retention_error(None),
                Err(_) if self.shared.queue.is_closed() => {}
                Err(e) => self.shared.set_retention_error(Some(e.clone())),
            }
            for reply in asked.drain(..) {
                let _: Result<(), _> = Sender::send(&reply, pass.clone());
            }
            match self.wake.recv_timeout(RECHECK) {
                Ok(Wake::Now(reply)) => asked.push(reply),
                Ok(Wake::Rotated) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            }
            // Everything waiting is answered by one pass.
            for wake in self.wake.try_iter() {
                if let Wake::Now(reply) = wake {
                    asked.push(reply);
                }
            }
        }
    }

    /// Prunes until nothing more is due, or what is due waits for an export.
    fn pass(&self) -> Result<RetentionPass, Error> {
        let mut pass = RetentionPass::default();
        loop {
            match self.look()? {
                Look::Pruned { segments, seqs } => {
                    pass.pruned_segments += segments;
                    if let Some((first, last)) = seqs {
                        let from = pass.pruned_seqs.map_or(first, |p| p.0);
                        pass.pruned_seqs = Some((from, last));
                    }
                }
                Look::Held => {
                    pass.held = true;
                    return Ok(pass);
                }
                Look::Done => return Ok(pass),
            }
        }
    }

    /// Prunes what the policy says, if it can.
    fn look(&self) -> Result<Look, Error> {
        let snapshot = Snapshot::new(self.shared.published.load_full());
        let segments = snapshot.segments()?;
        let (victims, reason) = self.victims(&snapshot, &segments)?;
        if victims.is_empty() {
            self.shared.set_retention_blocked(false);
            return Ok(Look::Done);
        }
        let (first, last) = (victims[0].first_seq, victims[victims.len() - 1].last_seq);
        let mut exported_to = None;
        let prunable = match &self.policy.unexported {
            Unexported::Remove => victims.len(),
            Unexported::ExportTo(dir) => {
                let storage = &*self.shared.storage;
                let covered = Coverage::read(storage).is_some_and(|c| c.covers(first, last));
                if !covered {
                    std::fs::create_dir_all(dir)
                        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
                    let out = dir.join(format!("{first:020}-{last:020}"));
                    let options = ExportOptions {
                        selection: Selection::Seqs {
                            from: Some(first),
                            to: Some(last),
                        },
                        encoding: Some(Encoding::Bundle),
                        force: true,
                    };
                    snapshot.export(&out, &options)?;
                    exported_to = Some(out.display().to_string());
                }
                victims.len()
            }
            Unexported::Wait => {
                let coverage = Coverage::read(&*self.shared.storage);
                victims
                    .iter()
                    .take_while(|v| coverage.is_some_and(|c| c.covers(v.first_seq, v.last_seq)))
                    .count()
            }
        };
        // Held only while nothing can be pruned. A prune record must reach the queue, which a
        // held sequencer lets fill up.
        self.shared.set_retention_blocked(prunable == 0);
        if prunable == 0 {
            return Ok(Look::Held);
        }
        let victims = &victims[..prunable];
        self.prune(&snapshot, victims, reason, exported_to)?;
        let (first, last) = (victims[0].first_seq, victims[prunable - 1].last_seq);
        Ok(Look::Pruned {
            segments: prunable,
            seqs: (last >= first).then_some((first, last)),
        })
    }

    /// The oldest sealed segments past a limit, and the first limit they are past.
    fn victims(
        &self,
        snapshot: &Snapshot,
        segments: &[SegmentSummary],
    ) -> Result<(Vec<SegmentSummary>, &'static str), Error> {
        let sealed: Vec<&SegmentSummary> = segments.iter().filter(|s| s.sealed).collect();
        let mut total: u64 = segments.iter().map(|s| s.file_bytes).sum();
        let max_age = self
            .policy
            .max_age
            .map(|a| i64::try_from(a.as_nanos()).unwrap_or(i64::MAX));
        let now = now_nanos();
        let mut out = Vec::new();
        let mut reason = "";
        for (i, s) in sealed.iter().enumerate() {
            let too_many = self
                .policy
                .max_segments
                .is_some_and(|m| sealed.len() - i > m);
            let too_big = self.policy.max_bytes.is_some_and(|m| total > m);
            let too_old = match max_age {
                Some(age) if s.last_seq >= s.first_seq => snapshot
                    .get(s.last_seq)?
                    .is_some_and(|r| now.saturating_sub(r.timestamp) > age),
                // A sealed segment without records is as old as the next one.
                Some(_) => i + 1 < sealed.len(),
                None => false,
            };
            let why = if too_many {
                "max_segments"
            } else if too_big {
                "max_bytes"
            } else if too_old {
                "max_age"
            } else {
                break;
            };
            if reason.is_empty() {
                reason = why;
            }
            total -= s.file_bytes;
            out.push((*s).clone());
        }
        Ok((out, reason))
    }

    /// Writes the prune record, and waits until it is synced and the files are removed.
    fn prune(
        &self,
        snapshot: &Snapshot,
        victims: &[SegmentSummary],
        reason: &str,
        exported_to: Option<String>,
    ) -> Result<(), Error> {
        let first = victims[0].first_seq;
        let last = victims[victims.len() - 1].last_seq;
        let head = if last < first {
            snapshot.anchor()
        } else {
            snapshot.get(last)?.map(|r| r.chain).ok_or(Error::Closed)?
        };
        let details = PruneDetails {
            first_seq: first,
            last_seq: last,
            head,
            segments: victims
                .iter()
                .filter_map(|v| v.path.file_name().map(|n| n.to_string_lossy().into_owned()))
                .collect(),
            reason: reason.to_owned(),
            exported_to,
        };
        let event = Event::system(
            PRUNED_KIND,
            serde_json::to_string(&details).expect("prune details serialize"),
        );
        let mut record = encode(&event, usize::MAX)?;
        let (receipt, completion) = Ticket::new();
        record.ticket = Some(completion);
        let last_segment = victims[victims.len() - 1].number;
        // Readers holding older snapshots keep reading the pruned files through open handles.
        snapshot.pin_files(last_segment)?;
        let prune = Prune {
            record,
            last_segment,
            first_seq: last + 1,
            anchor: head,
        };
        self.shared
            .queue
            .push(Item::Prune(Box::new(prune)), || false)
            .map_err(|_| Error::Closed)?;
        receipt.wait().map(drop)
    }
}
