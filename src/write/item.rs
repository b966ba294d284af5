//! What travels through the queue from producers (and the retention worker) to the sequencer:
//! encoded events, flush markers and prune records.

use serde::Serialize;

use crate::format::event::{Event, EventError, now_nanos, set_details};
use crate::format::event_ref::EventRef;
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
    pub(crate) fn as_slice(&self) -> &[u8] {
        match self {
            Body::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Body::Heap(b) => b,
        }
    }

    /// `len` bytes to write into: the inline bytes if they fit (their length set to `len`), a
    /// new zeroed heap buffer otherwise.
    fn prepare(&mut self, len: usize) -> &mut [u8] {
        if len <= INLINE_BODY {
            if !matches!(self, Body::Inline { .. }) {
                *self = Body::Inline {
                    len: 0,
                    bytes: [0; INLINE_BODY],
                };
            }
            let Body::Inline { len: n, bytes } = self else {
                unreachable!("made inline above")
            };
            // At most `INLINE_BODY`.
            *n = len as u16;
            &mut bytes[..len]
        } else {
            *self = Body::Heap(vec![0; len].into_boxed_slice());
            let Body::Heap(b) = self else {
                unreachable!("made a heap body above")
            };
            b
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

impl Encoded {
    /// An empty inline event, to encode into in place ([`encode_into`], [`encode_ref_into`]):
    /// the producer builds the queue item once and moves it into the slot once, instead of
    /// moving the 232-byte body from the encoder into the item and then into the slot.
    pub(crate) fn blank() -> Encoded {
        Encoded {
            leaf: Hash::ZERO,
            body: Body::Inline {
                len: 0,
                bytes: [0; INLINE_BODY],
            },
            ticket: None,
        }
    }
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
    let mut out = Encoded::blank();
    encode_into(event, max_body, &mut out)?;
    Ok(out)
}

/// [`encode`], into `out` (its ticket left as it is).
pub(crate) fn encode_into(
    event: &Event,
    max_body: usize,
    out: &mut Encoded,
) -> Result<(), EventError> {
    let len = event.check(max_body)?;
    let default_time = match event.timestamp_nanos() {
        Some(_) => 0,
        None => now_nanos(),
    };
    event.encode_into(default_time, out.body.prepare(len));
    out.leaf = leaf_hash(out.body.as_slice());
    Ok(())
}

/// [`encode_ref_into`] a new [`Encoded`] (for the tests).
#[cfg(test)]
pub(crate) fn encode_ref<D: Serialize + ?Sized>(
    event: &EventRef<'_, D>,
    max_body: usize,
) -> Result<Encoded, EventError> {
    let mut out = Encoded::blank();
    encode_ref_into(event, max_body, &mut out)?;
    Ok(out)
}

/// Encodes a borrowed `event` into `out` (its ticket left as it is) and hashes its body: the
/// envelope is written straight into `out`'s inline body, the details serialized into it in
/// place, so that an event that fits allocates nothing. One that does not fit is encoded again
/// on the heap, its details serialized at most up to `max_body`.
pub(crate) fn encode_ref_into<D: Serialize + ?Sized>(
    event: &EventRef<'_, D>,
    max_body: usize,
    out: &mut Encoded,
) -> Result<(), EventError> {
    let head = event.head();
    head.check()?;
    let head_len = head.len();
    let too_large = |len| EventError::TooLarge { len, max: max_body };
    if head_len > max_body {
        return Err(too_large(head_len));
    }
    let default_time = match event.timestamp_nanos() {
        Some(_) => 0,
        None => now_nanos(),
    };
    let inline = match &mut out.body {
        Body::Inline { len, bytes } => {
            let written = encode_inline(event, default_time, max_body.min(INLINE_BODY), bytes)?;
            if let Some(n) = written {
                // At most `INLINE_BODY`.
                *len = n as u16;
            }
            written.is_some()
        }
        Body::Heap(_) => false,
    };
    if !inline {
        let mut heap = Bounded {
            bytes: vec![0; head_len],
            limit: max_body,
            overflow: false,
        };
        head.write(default_time, &mut heap.bytes);
        if let Some(details) = event.details() {
            match serde_json::to_writer(&mut heap, details) {
                Ok(()) => {}
                Err(_) if heap.overflow => {
                    // Counted, not kept: the details alone may be far beyond the limit.
                    let mut count = Count(0);
                    serde_json::to_writer(&mut count, details).map_err(EventError::Details)?;
                    return Err(too_large(head_len + count.0));
                }
                Err(e) => return Err(EventError::Details(e)),
            }
            let len = heap.bytes.len() - head_len;
            set_details(&mut heap.bytes, len);
        }
        out.body = Body::Heap(heap.bytes.into_boxed_slice());
    }
    out.leaf = leaf_hash(out.body.as_slice());
    Ok(())
}

/// Encodes `event` into `bytes`, an inline body, using at most `limit` bytes of it (at most
/// [`INLINE_BODY`]); returns the body's length, or `None` if it does not fit (`bytes` then
/// holds a partial encoding, to be discarded).
fn encode_inline<D: Serialize + ?Sized>(
    event: &EventRef<'_, D>,
    default_time: i64,
    limit: usize,
    bytes: &mut [u8; INLINE_BODY],
) -> Result<Option<usize>, EventError> {
    debug_assert!(limit <= INLINE_BODY);
    let head = event.head();
    let head_len = head.len();
    if head_len > limit {
        return Ok(None);
    }
    head.write(default_time, bytes);
    let mut len = head_len;
    if let Some(details) = event.details() {
        let mut out = Slice {
            bytes: &mut bytes[head_len..limit],
            at: 0,
            overflow: false,
        };
        match serde_json::to_writer(&mut out, details) {
            Ok(()) => {}
            Err(_) if out.overflow => return Ok(None),
            Err(e) => return Err(EventError::Details(e)),
        }
        let written = out.at;
        set_details(bytes, written);
        len += written;
    }
    Ok(Some(len))
}

/// A writer into a fixed slice that fails, and says so, when the slice is full.
struct Slice<'a> {
    bytes: &'a mut [u8],
    at: usize,
    overflow: bool,
}

impl std::io::Write for Slice<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let end = self.at + buf.len();
        if end > self.bytes.len() {
            self.overflow = true;
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        self.bytes[self.at..end].copy_from_slice(buf);
        self.at = end;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A writer into a `Vec` that fails, and says so, past `limit` bytes in all.
struct Bounded {
    bytes: Vec<u8>,
    limit: usize,
    overflow: bool,
}

impl std::io::Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.bytes.len() + buf.len() > self.limit {
            self.overflow = true;
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A writer that counts the bytes written to it.
struct Count(usize);

impl std::io::Write for Count {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
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

#[cfg(test)]
mod tests {
    use serde_json::value::RawValue;

    use super::*;
    use crate::format::event::RESERVED_KIND_PREFIX;

    /// Encodes both ways at the fixed time 7 (when the event has no timestamp, the push's
    /// time is used, which differs between two pushes; so every event here sets it).
    fn both<D: Serialize + ?Sized>(owned: &Event, borrowed: &EventRef<'_, D>, max: usize) {
        let a = encode(owned, max).unwrap();
        let b = encode_ref(borrowed, max).unwrap();
        assert_eq!(a.body.as_slice(), b.body.as_slice(), "{owned:?}");
        assert_eq!(a.leaf, b.leaf);
        assert_eq!(
            matches!(b.body, Body::Inline { .. }),
            a.body.as_slice().len() <= INLINE_BODY,
            "inline exactly when it fits"
        );
    }

    #[derive(Serialize)]
    struct Details<'a> {
        plan: u64,
        note: &'a str,
    }

    #[test]
    fn a_borrowed_event_encodes_exactly_as_the_owned_one() {
        let details = Details {
            plan: 42,
            note: "a \"quoted\" note\n",
        };
        let owned = Event::new("plan.applied").with_timestamp_nanos(7);
        let borrowed = EventRef::new("plan.applied").with_timestamp_nanos(7);
        both(&owned, &borrowed, 1 << 20);
        let owned = owned.with_actor("alice").with_trace_id("");
        let borrowed = borrowed.with_actor("alice").with_trace_id("");
        both(&owned, &borrowed, 1 << 20);
        both(
            &owned.clone().with_details(&details).unwrap(),
            &borrowed.with_details(&details),
            1 << 20,
        );
        let raw = RawValue::from_string("{ \"kept\" : [1, 2] }".to_string()).unwrap();
        both(
            &owned.clone().with_details_raw(raw.clone()),
            &borrowed.with_details(&*raw),
            1 << 20,
        );
        // Every size around the inline limit: the details run past it by 0, 1, 2... bytes.
        for n in 150..260 {
            let note = "x".repeat(n);
            let d = Details {
                plan: 1,
                note: &note,
            };
            both(
                &owned.clone().with_details(&d).unwrap(),
                &borrowed.with_details(&d),
                1 << 20,
            );
        }
    }

    #[test]
    fn a_borrowed_event_is_checked_as_the_owned_one() {
        let at = |e: EventRef<'_>, max| encode_ref(&e, max).err().map(|e| e.to_string());
        assert_eq!(
            at(EventRef::new(""), 100),
            Some(EventError::EmptyKind.to_string())
        );
        let reserved = format!("{RESERVED_KIND_PREFIX}x");
        assert!(matches!(
            encode_ref(&EventRef::new(&reserved), 100),
            Err(EventError::ReservedKind(_))
        ));
        let long = "a".repeat(70_000);
        assert!(matches!(
            encode_ref(&EventRef::new("k").with_actor(&long), 1 << 20),
            Err(EventError::FieldTooLong { field: "actor", .. })
        ));
        // Too large: inline-sized and heap-sized, the length reported exactly as for `Event`.
        for (n, max) in [(30, 40), (300, 200), (5000, 1000)] {
            let note = "y".repeat(n);
            let d = Details {
                plan: 1,
                note: &note,
            };
            let owned = Event::new("k").with_details(&d).unwrap();
            let a = encode(&owned, max).err().unwrap().to_string();
            let b = encode_ref(&EventRef::new("k").with_details(&d), max)
                .err()
                .unwrap()
                .to_string();
            assert_eq!(a, b, "{n} bytes of note, at most {max}");
        }
    }

    #[test]
    fn details_that_fail_to_serialize_are_an_error_not_a_panic() {
        // A map with non-string keys is not JSON.
        let mut map = std::collections::BTreeMap::new();
        map.insert((1, 2), 3);
        // A short kind takes the inline path, a kind longer than a slot the heap path.
        let long_kind = "k".repeat(INLINE_BODY);
        for kind in ["k", &long_kind[..]] {
            assert!(matches!(
                encode_ref(&EventRef::new(kind).with_details(&map), 1 << 20),
                Err(EventError::Details(_))
            ));
        }
    }
}
