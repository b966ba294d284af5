//! What travels through the queue from producers (and the retention worker) to the sequencer:
//! encoded events, flush markers and prune records.

use crate::format::event::{Event, EventError, now_nanos};
use crate::format::hash::{Hash, leaf_hash};
use crate::write::receipt::Completion;

/// Bodies up to this many bytes travel inside the queue slot itself: no allocation, and no free
/// on the sequencer's core of memory allocated on the producer's.
pub(crate) const INLINE_BODY: usize = 232;

/// An encoded body, inline or on the heap.
// Inline on purpose: the point is that typical events travel in the queue slot without an
// allocation.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Body {
    Inline { len: u16, bytes: [u8; INLINE_BODY] },
    Heap(Box<[u8]>),
}

impl Body {
    /// A zeroed body of `len` bytes.
    fn zeroed(len: usize) -> Body {
        if len <= INLINE_BODY {
            Body::Inline {
                len: len as u16,
                bytes: [0; INLINE_BODY],
            }
        } else {
            Body::Heap(vec![0; len].into_boxed_slice())
        }
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        match self {
            Body::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Body::Heap(b) => b,
        }
    }

    fn as_mut_slice(&mut self) -> &mut [u8] {
        match self {
            Body::Inline { len, bytes } => &mut bytes[..usize::from(*len)],
            Body::Heap(b) => b,
        }
    }
}

/// An event ready for the sequencer: its body and leaf hash.
pub(crate) struct Encoded {
    pub(crate) leaf: Hash,
    pub(crate) body: Body,
    /// Completed with the event's receipt, for tracked pushes.
    pub(crate) ticket: Option<Completion>,
}

/// What travels through the queue.
#[allow(clippy::large_enum_variant)] // see `Body`
pub(crate) enum Item {
    /// An event to sequence.
    Event(Encoded),
    /// A flush marker: completed once everything queued before it is sequenced (and durable
    /// under the policy).
    Flush(Option<Completion>),
    /// A prune record, and the segments it removes: from the published view at once, from the
    /// storage once the record is synced, whatever the policy.
    Prune(Box<Prune>),
}

/// Encodes `event` and hashes its body.
pub(crate) fn encode(event: &Event, max_body: usize) -> Result<Encoded, EventError> {
    let len = event.check(max_body)?;
    let default_time = match event.timestamp_nanos() {
        Some(_) => 0,
        None => now_nanos(),
    };
    let mut body = Body::zeroed(len);
    event.encode_into(default_time, body.as_mut_slice());
    Ok(Encoded {
        leaf: leaf_hash(body.as_slice()),
        body,
        ticket: None,
    })
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
