//! Durability policies and the options of a ring.

use std::time::Duration;

use crate::error::Error;
use crate::format::segment::{
    MAX_SEGMENT_SIZE, MIN_SEGMENT_SIZE, RECORD_HEADER_LEN, data_offset_for,
};

/// When written events are synced to stable storage.
///
/// Whatever the policy, every event is in the page cache (and visible to readers in other
/// processes) as soon as it is sequenced, survives the death of the writing process, and is
/// synced when the ring is closed. The policy decides what survives a power loss *before* the
/// close, and when receipts are issued.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Durability {
    /// Page cache only, until the ring is closed: nothing is synced before. Receipts are issued
    /// as soon as events are sequenced, with `durable: false`. Events survive the death of the
    /// process; a power loss before the close may lose any of them, and may leave a sealed
    /// segment whose records did not reach the disk (verification then names the first missing
    /// record, and the log must be reopened from a copy or have its damaged segments removed).
    #[default]
    None,
    /// A background sync at this interval. Receipts and `flush` wait for the next sync. The
    /// interval must be more than zero and at most [`MAX_SYNC_INTERVAL`] (one day), or
    /// [`RingBuilder::open`](crate::RingBuilder::open) fails with [`Error::Config`].
    Periodic(Duration),
    /// Group commit: every batch the sequencer writes is synced (one `msync` per batch, which
    /// releases every waiter of the batch), overlapping with the sequencing of the next batch.
    Batch,
}

/// Everything [`RingBuilder`](crate::RingBuilder) can set.
#[derive(Clone, Debug)]
pub(crate) struct Options {
    pub(crate) segment_size: u64,
    pub(crate) queue_capacity: usize,
    pub(crate) durability: Durability,
    /// `None`: [`DEFAULT_MAX_EVENT_SIZE`], or less if a segment cannot hold that much.
    pub(crate) max_event_size: Option<usize>,
    pub(crate) max_batch: usize,
    pub(crate) wait_for_lock: bool,
    pub(crate) retention: crate::write::retention::policy::Retention,
    pub(crate) record_writes: crate::write::staging::RecordWrites,
    /// Whether the tree worker keeps the Merkle tree's stored hashes.
    pub(crate) merkle_tree: bool,
    pub(crate) checkpoints: Option<crate::write::checkpoints::Checkpoints>,
    pub(crate) sealing: Option<crate::write::sealing::Sealing>,
}

/// Default segment size: 64 MiB.
pub const DEFAULT_SEGMENT_SIZE: u64 = 64 << 20;
/// Default queue capacity, in events: 16384 slots, 4.5 MiB.
///
/// The queue is allocated, and every slot written, when the ring is opened, whatever the events:
/// a slot holds an encoded event by value (its buffer is allocated separately, by the producer),
/// [`QUEUE_SLOT_BYTES`] bytes on x86-64 and other 64-bit targets.
pub const DEFAULT_QUEUE_CAPACITY: usize = 16 * 1024;
/// Largest queue capacity accepted, in events: 1,048,576 slots, 288 MiB allocated and written
/// at open (see [`QUEUE_SLOT_BYTES`]). A larger queue adds latency, not throughput: the
/// sequencer takes events as fast as it can, and a queue only absorbs bursts.
pub const MAX_QUEUE_CAPACITY: usize = 1 << 20;
/// What one slot of the queue costs, in bytes (64-bit targets), on top of the event's own
/// encoded bytes while it waits: [`DEFAULT_QUEUE_CAPACITY`] slots take 4.5 MiB,
/// [`MAX_QUEUE_CAPACITY`] 288 MiB.
pub const QUEUE_SLOT_BYTES: usize = 288;
/// Largest `max_batch`: the sequencer publishes, and hands receipts on, at least every this
/// many events.
pub const MAX_BATCH: usize = 1 << 20;
/// Longest [`Durability::Periodic`] interval: one day.
pub const MAX_SYNC_INTERVAL: Duration = Duration::from_secs(24 * 60 * 60);
/// Default largest encoded event: 1 MiB.
pub const DEFAULT_MAX_EVENT_SIZE: usize = 1 << 20;

impl Default for Options {
    fn default() -> Options {
        Options {
            segment_size: DEFAULT_SEGMENT_SIZE,
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            durability: Durability::None,
            max_event_size: None,
            max_batch: 4096,
            wait_for_lock: false,
            retention: crate::write::retention::policy::Retention::default(),
            record_writes: crate::write::staging::RecordWrites::default(),
            merkle_tree: true,
            checkpoints: None,
            sealing: None,
        }
    }
}

impl Options {
    /// Bytes of records an empty segment holds.
    fn record_room(&self) -> u64 {
        self.segment_size
            .saturating_sub(data_offset_for(self.segment_size))
    }

    /// The largest event body accepted.
    pub(crate) fn max_event_size(&self) -> usize {
        self.max_event_size.unwrap_or_else(|| {
            let fits = self
                .record_room()
                .saturating_sub(RECORD_HEADER_LEN as u64 + 8);
            DEFAULT_MAX_EVENT_SIZE.min(fits as usize)
        })
    }

    /// Checks every option and that they can work together. Each error names the builder's
    /// setting and its allowed range.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        if self.segment_size < MIN_SEGMENT_SIZE
            || self.segment_size > MAX_SEGMENT_SIZE
            || !self.segment_size.is_multiple_of(4096)
        {
            return Err(Error::Config(format!(
                "segment_size {} must be a multiple of 4096 between {} and {}",
                self.segment_size, MIN_SEGMENT_SIZE, MAX_SEGMENT_SIZE
            )));
        }
        let room = self.record_room();
        let max = self.max_event_size();
        let largest = (max as u64).saturating_add(RECORD_HEADER_LEN as u64 + 7);
        if max < 64 || largest > room || max > u32::MAX as usize {
            return Err(Error::Config(format!(
                "max_event_size {} must be between 64 and {} (the largest record must fit in \
                 an empty segment: {} bytes of records in a {}-byte segment)",
                max,
                room.saturating_sub(RECORD_HEADER_LEN as u64 + 7)
                    .min(u64::from(u32::MAX)),
                room,
                self.segment_size
            )));
        }
        if self.queue_capacity == 0 || self.queue_capacity > MAX_QUEUE_CAPACITY {
            return Err(Error::Config(format!(
                "queue_capacity {} must be between 1 and {MAX_QUEUE_CAPACITY} events (each \
                 slot takes {QUEUE_SLOT_BYTES} bytes, allocated at open)",
                self.queue_capacity
            )));
        }
        if self.max_batch == 0 || self.max_batch > MAX_BATCH {
            return Err(Error::Config(format!(
                "max_batch {} must be between 1 and {MAX_BATCH} events",
                self.max_batch
            )));
        }
        if let Durability::Periodic(d) = self.durability
            && (d.is_zero() || d > MAX_SYNC_INTERVAL)
        {
            return Err(Error::Config(format!(
                "durability Periodic({d:?}): the sync interval must be more than zero and at \
                 most {MAX_SYNC_INTERVAL:?}"
            )));
        }
        if let Some(checkpoints) = &self.checkpoints {
            if !self.merkle_tree {
                return Err(Error::Config(
                    "checkpoints sign the Merkle tree, which `merkle_tree(false)` turned off"
                        .into(),
                ));
            }
            checkpoints.validate()?;
        }
        if let Some(sealing) = &self.sealing {
            sealing.validate()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_limits_are_checked() {
        Options::default().validate().unwrap();
        let bad = |f: fn(&mut Options)| {
            let mut o = Options::default();
            f(&mut o);
            o.validate().unwrap_err()
        };
        bad(|o| o.segment_size = 1000);
        bad(|o| o.segment_size = MIN_SEGMENT_SIZE + 1);
        bad(|o| {
            o.segment_size = MIN_SEGMENT_SIZE;
            o.max_event_size = Some(1 << 20);
        });
        bad(|o| o.queue_capacity = 0);
        bad(|o| o.durability = Durability::Periodic(Duration::ZERO));
        // Issue 12, items 17 and 18: every size and duration is bounded, and the error names
        // the setting.
        let named = |f: fn(&mut Options), setting: &str| {
            let mut o = Options::default();
            f(&mut o);
            match o.validate() {
                Err(Error::Config(m)) => assert!(m.contains(setting), "{m}"),
                other => panic!("{setting}: {other:?}"),
            }
        };
        named(
            |o| o.queue_capacity = MAX_QUEUE_CAPACITY + 1,
            "queue_capacity",
        );
        named(|o| o.queue_capacity = 1 << 24, "queue_capacity");
        named(|o| o.max_batch = 0, "max_batch");
        named(|o| o.max_batch = usize::MAX, "max_batch");
        named(|o| o.max_event_size = Some(usize::MAX), "max_event_size");
        named(|o| o.segment_size = u64::MAX, "segment_size");
        named(
            |o| o.durability = Durability::Periodic(Duration::MAX),
            "Periodic",
        );
        named(
            |o| o.durability = Durability::Periodic(MAX_SYNC_INTERVAL + Duration::from_nanos(1)),
            "Periodic",
        );
        let mut largest = Options {
            queue_capacity: MAX_QUEUE_CAPACITY,
            max_batch: MAX_BATCH,
            durability: Durability::Periodic(MAX_SYNC_INTERVAL),
            ..Options::default()
        };
        largest.validate().unwrap();
        largest.max_batch = 1;
        largest.queue_capacity = 1;
        largest.validate().unwrap();
        let mut small = Options {
            segment_size: MIN_SEGMENT_SIZE,
            ..Options::default()
        };
        small.validate().unwrap();
        assert!(small.max_event_size() < 64 * 1024);
        small.max_event_size = Some(4096);
        small.validate().unwrap();
        small.max_event_size = Some(32);
        small.validate().unwrap_err();
    }
}
