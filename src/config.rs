//! Durability policies and the options of a ring.

use std::time::Duration;

use crate::error::Error;
use crate::segment::{MAX_SEGMENT_SIZE, MIN_SEGMENT_SIZE, RECORD_HEADER_LEN, data_offset_for};

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
    /// A background sync at this interval. Receipts and `flush` wait for the next sync.
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
    pub(crate) retention: crate::retention::Retention,
}

/// Default segment size: 64 MiB.
pub const DEFAULT_SEGMENT_SIZE: u64 = 64 << 20;
/// Default queue capacity, in events.
pub const DEFAULT_QUEUE_CAPACITY: usize = 16 * 1024;
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
            retention: crate::retention::Retention::default(),
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

    /// Checks that the options can work together.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        if self.segment_size < MIN_SEGMENT_SIZE
            || self.segment_size > MAX_SEGMENT_SIZE
            || !self.segment_size.is_multiple_of(4096)
        {
            return Err(Error::Config(format!(
                "segment size {} must be a multiple of 4096 between {} and {}",
                self.segment_size, MIN_SEGMENT_SIZE, MAX_SEGMENT_SIZE
            )));
        }
        let room = self.record_room();
        let max = self.max_event_size();
        let largest = (max + RECORD_HEADER_LEN + 7) as u64;
        if max < 64 || largest > room {
            return Err(Error::Config(format!(
                "maximum event size {} must be at least 64 and fit in an empty segment \
                 ({} bytes of records in a {}-byte segment)",
                max, room, self.segment_size
            )));
        }
        if max > u32::MAX as usize {
            return Err(Error::Config("maximum event size exceeds 4 GiB".into()));
        }
        if self.queue_capacity == 0 || self.queue_capacity > 1 << 24 {
            return Err(Error::Config(format!(
                "queue capacity {} must be between 1 and {}",
                self.queue_capacity,
                1 << 24
            )));
        }
        if let Durability::Periodic(d) = self.durability
            && d.is_zero()
        {
            return Err(Error::Config("the periodic sync interval is zero".into()));
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
            o.max_event_size = Some(1 << 20)
        });
        bad(|o| o.queue_capacity = 0);
        bad(|o| o.durability = Durability::Periodic(Duration::ZERO));
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
