//! The retention thread: after every rotation, and every little while, it looks at the sealed
//! segments and prunes those past a limit (see the module above for the protocol).

use std::sync::Arc;
use std::time::Duration;

use crossbeam::channel::{Receiver, RecvTimeoutError, Sender};

use crate::error::Error;
use crate::export::{Encoding, ExportOptions, Selection};
use crate::format::event::{Event, now_nanos};
use crate::format::prune::{PRUNED_KIND, PruneDetails};
use crate::read::snapshot::{SegmentSummary, Snapshot};
use crate::storage::exported::Coverage;
use crate::storage::tree::remove_chunks_before;
use crate::storage::tree_base::{base_start, remove_bases_except, write_base};
use crate::write::item::{Item, Prune, encode};
use crate::write::receipt::Ticket;
use crate::write::retention::policy::{Retention, Unexported};
use crate::write::shared::Shared;

/// How often the retention thread looks again when no rotation woke it (to see exports made by
/// others, and segments growing old).
const RECHECK: Duration = Duration::from_millis(500);

/// The most segments one prune record names. A retention thread that fell behind (held by an
/// export, or by the Merkle tree's worker on a busy machine) prunes its backlog with several
/// records: one that named them all could be larger than a segment, which no segment can hold.
/// At this bound a record is a few KiB, far below the smallest segment's data region.
const MAX_SEGMENTS_PER_PRUNE: usize = 256;

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
    /// Whether the ring keeps the Merkle tree: then a prune keeps the tree base the pruned
    /// log's tree needs (`crate::storage::tree_base`).
    pub(crate) tree: bool,
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
                    let options = ExportOptions::new()
                        .selection(Selection::Seqs {
                            from: Some(first),
                            to: Some(last),
                        })
                        .encoding(Encoding::Bundle)
                        .force(true);
                    snapshot.export(&out, options)?;
                    exported_to = Some(out.display().to_string());
                }
                victims.len()
            }
            Unexported::Wait => {
                let coverage = Coverage::read(&*self.shared.storage);
                let covered = victims
                    .iter()
                    .take_while(|v| {
                        coverage
                            .as_ref()
                            .is_some_and(|c| c.covers(v.first_seq, v.last_seq))
                    })
                    .count();
                // The prune record names where the records went, if the marker says.
                if covered > 0 {
                    exported_to = coverage
                        .as_ref()
                        .and_then(|c| c.kept_at(first, victims[covered - 1].last_seq))
                        .map(str::to_owned);
                }
                covered
            }
        };
        // Held only while nothing can be pruned. A prune record must reach the queue, which a
        // held sequencer lets fill up.
        self.shared.set_retention_blocked(prunable == 0);
        if prunable == 0 {
            return Ok(Look::Held);
        }
        let victims = &victims[..prunable];
        // The Merkle tree is built from the records: none goes before the tree worker has it.
        self.shared.wait_for_tree(victims[prunable - 1].last_seq);
        self.prune(&snapshot, victims, reason, exported_to)?;
        let (first, last) = (victims[0].first_seq, victims[prunable - 1].last_seq);
        Ok(Look::Pruned {
            segments: prunable,
            seqs: (last >= first).then_some((first, last)),
        })
    }

    /// The oldest sealed segments past a limit (at most [`MAX_SEGMENTS_PER_PRUNE`]), and the
    /// first limit they are past.
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
            if out.len() == MAX_SEGMENTS_PER_PRUNE {
                break;
            }
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
        // The tree bases first, one for each segment boundary the removals may stop at: they
        // are read from the records about to go. They are worth a prune only as a shortcut:
        // one that cannot be had (its leaves went in an earlier prune without one, the disk is
        // full) is not written, and proofs that need it say so; the prune goes on, since it is
        // what frees the space.
        if self.tree {
            for v in victims {
                let pruned = v.last_seq;
                if let Ok(leaves) = snapshot.leaf_hashes(base_start(pruned), pruned) {
                    let _ = write_base(&*self.shared.storage, pruned, &leaves);
                }
            }
        }
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
        receipt.wait()?;
        // The Merkle tree's stored hashes that no proof of the records kept needs go too, and
        // the tree bases of older starts, but the one readers of the previous view may use.
        let storage = &*self.shared.storage;
        remove_chunks_before(storage, last + 1)
            .map_err(|e| Error::io(self.location("removing tree chunks of"), e))?;
        remove_bases_except(storage, &[last, snapshot.first_seq() - 1])
            .map_err(|e| Error::io(self.location("removing tree bases of"), e))?;
        Ok(())
    }

    /// `doing` and the log's location, for an error's context.
    fn location(&self, doing: &str) -> String {
        format!("{doing} {}", self.shared.storage.location().display())
    }
}
