//! Reading a segment's header page from its file.

use std::io;

use crate::format::segment::{
    HEADER_LEN, HeaderError, Prefix, SLOT_LEN, SLOT_OFFSETS, Slot, SlotState,
};
use crate::storage::SegmentFile;

/// Where a header error is located in the file: the second commit slot for two slots of the
/// same generation (`docs/FORMAT.md` §9 step 2), the start of the file for the others.
pub(crate) fn header_error_offset(e: &HeaderError) -> u64 {
    match e {
        HeaderError::SameGeneration { .. } => SLOT_OFFSETS[1],
        _ => 0,
    }
}

/// A segment's header page, decoded.
#[derive(Clone, Debug)]
pub(crate) struct SegmentHeader {
    /// The static prefix.
    pub(crate) prefix: Prefix,
    /// Both commit slots.
    pub(crate) slots: [SlotState; 2],
    /// The file's length when the header was read.
    pub(crate) file_len: u64,
    /// The raw header page.
    pub(crate) page: Vec<u8>,
}

/// Why a header could not be read.
#[derive(Debug)]
pub(crate) enum ReadHeaderError {
    /// The file could not be read.
    Io(io::Error),
    /// The header is unusable.
    Header(HeaderError),
}

impl SegmentHeader {
    /// Reads and decodes the header page of `file`, for a reader or writer that goes by its
    /// current slot: two Valid slots of the same generation, of which neither is current, are
    /// an error ([`HeaderError::SameGeneration`]).
    pub(crate) fn read(file: &dyn SegmentFile) -> Result<SegmentHeader, ReadHeaderError> {
        let header = Self::read_raw(file)?;
        if let Some(generation) = header.same_generation() {
            return Err(ReadHeaderError::Header(HeaderError::SameGeneration {
                generation,
            }));
        }
        Ok(header)
    }

    /// Reads and decodes the header page of `file` as it is, for verification, which checks
    /// the slots in the order of `docs/FORMAT.md` §9 (see [`SegmentHeader::same_generation`]).
    /// A slot that does not check out is read again a few times: a live writer in another
    /// process may be in the middle of writing it (it never leaves two slots of one
    /// generation: generation `g` is only ever written at position `g % 2`).
    pub(crate) fn read_raw(file: &dyn SegmentFile) -> Result<SegmentHeader, ReadHeaderError> {
        let mut header = Self::read_once(file)?;
        for _ in 0..3 {
            if !header.slots.contains(&SlotState::Torn) {
                break;
            }
            std::thread::yield_now();
            header = Self::read_once(file)?;
        }
        Ok(header)
    }

    fn read_once(file: &dyn SegmentFile) -> Result<SegmentHeader, ReadHeaderError> {
        let file_len = file.size().map_err(ReadHeaderError::Io)?;
        if file_len < HEADER_LEN {
            return Err(ReadHeaderError::Header(HeaderError::Truncated {
                len: file_len,
            }));
        }
        let mut page = vec![0u8; HEADER_LEN as usize];
        file.read_exact_at(&mut page, 0)
            .map_err(ReadHeaderError::Io)?;
        let prefix = Prefix::decode(&page).map_err(ReadHeaderError::Header)?;
        let digest = prefix.digest();
        let slot = |i: usize| {
            let at = SLOT_OFFSETS[i] as usize;
            Slot::decode(&page[at..at + SLOT_LEN], &digest)
        };
        Ok(SegmentHeader {
            prefix,
            slots: [slot(0), slot(1)],
            file_len,
            page,
        })
    }

    /// The generation of both slots, if both are Valid with the same one.
    pub(crate) fn same_generation(&self) -> Option<u64> {
        match self.slots {
            [SlotState::Valid(a), SlotState::Valid(b)] if a.generation == b.generation => {
                Some(a.generation)
            }
            _ => None,
        }
    }

    /// The valid slot with the highest generation: the segment's current state.
    pub(crate) fn newest(&self) -> Option<Slot> {
        self.valid().max_by_key(|s| s.generation)
    }

    /// The other valid slot, if both are valid.
    pub(crate) fn older(&self) -> Option<Slot> {
        let newest = self.newest()?;
        self.valid().find(|s| s.generation < newest.generation)
    }

    fn valid(&self) -> impl Iterator<Item = Slot> + '_ {
        self.slots.iter().filter_map(|s| match s {
            SlotState::Valid(slot) => Some(*slot),
            _ => None,
        })
    }
}
