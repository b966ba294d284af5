//! The preparer thread: creates the next segment before the sequencer needs it, and faults the
//! active one in ahead of the sequencer's writes, so the sequencer never waits on a file
//! creation or takes a page fault.
//!
//! Creating a segment means allocating its blocks (`fallocate`), writing its prefix and syncing
//! it; prefaulting means `MADV_POPULATE_WRITE` on the next range. Under
//! `RecordWrites::Buffered` (the default) only the prefix is faulted in: records reach the file
//! by `pwrite`, and no page of the data region is ever mapped in (see
//! `crate::write::staging`); the rest of this paragraph is about `RecordWrites::Mapped`. Behind the sequencer, it
//! releases the pages of the records written ([`RELEASE_STEP`] at a time, `MADV_DONTNEED`),
//! so that the process's memory holds the window being written, not the whole segment: the
//! pages stay in the page cache, dirty until synced or written back. Measured on the reference
//! machine, a first write to an unfaulted page costs more than the whole chain step of the
//! records it holds (see PERFORMANCE.md), so this work must stay off the sequencer's thread.

use std::sync::Arc;

use crossbeam::channel::{Receiver, Sender};

use crate::error::Error;
use crate::read::recovery::create_segment;
use crate::storage::Storage;
use crate::storage::mapped::MappedSegment;
use crate::write::staging::RecordWrites;

/// How far ahead of the write position the active segment is faulted in.
pub(crate) const PREFAULT_AHEAD: u64 = 16 << 20;

/// How many bytes of written records the sequencer lets accumulate before it asks for their
/// pages to be released.
pub(crate) const RELEASE_STEP: u64 = 4 << 20;

/// Requests to the preparer.
pub(crate) enum PrepMsg {
    /// Create segment `number` and send it back.
    Create { number: u64 },
    /// Fault in `[from, to)` of a segment.
    Prefault {
        seg: Arc<MappedSegment>,
        from: u64,
        to: u64,
    },
    /// `[from, to)` of a segment is written: let its pages leave the process's memory.
    Release {
        seg: Arc<MappedSegment>,
        from: u64,
        to: u64,
    },
}

/// Runs until the request channel closes.
// The preparer thread's body: it owns its handles for as long as it runs.
#[allow(clippy::needless_pass_by_value)]
pub(crate) fn run(
    storage: Arc<dyn Storage>,
    segment_size: u64,
    log_id: [u8; 16],
    requests: Receiver<PrepMsg>,
    ready: Sender<Result<Arc<MappedSegment>, Error>>,
    record_writes: RecordWrites,
) {
    // Under `RecordWrites::Buffered` the records go in with `pwrite`, and only the prefix
    // (header and index) is ever stored through the mapping.
    let data_ahead = match record_writes {
        RecordWrites::Mapped => PREFAULT_AHEAD,
        RecordWrites::Buffered => 0,
    };
    for msg in requests {
        match msg {
            PrepMsg::Create { number } => {
                let seg = create_segment(&*storage, number, segment_size, log_id);
                if let Ok(seg) = &seg {
                    // A hint: a failure only means the sequencer takes the faults itself.
                    let _ = seg.prefault(0, seg.prefix.data_offset + data_ahead);
                }
                if ready.send(seg).is_err() {
                    return;
                }
            }
            PrepMsg::Prefault { seg, from, to } => {
                let _ = seg.prefault(from, to.saturating_sub(from));
            }
            PrepMsg::Release { seg, from, to } => {
                // A hint too: a failure only means the pages stay mapped until the segment is.
                let _ = seg.release(from, to.saturating_sub(from));
            }
        }
    }
}
