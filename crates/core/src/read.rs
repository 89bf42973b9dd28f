//! The read layer's vocabulary: what a format driver answers when asked
//! about a range of guest data (qemu's `bdrv_co_block_status` contract),
//! and the status bits qemu's block layer passes around (`BDRV_BLOCK_*`).
//!
//! A driver answers for itself only: its own allocation, where its own
//! data sits in its own files. The block layer (`instar-block`'s chain)
//! adds what qemu's generic code adds: alignment, the protocol layer's
//! holes under `RAW` and `RECURSE` answers, `ALLOCATED`, zeros past the
//! end of a shorter backing file, and the walk down the chain.

use crate::file::ImageFile;
use std::ops::{BitAnd, BitOr, BitOrAssign};

/// qemu's `BDRV_BLOCK_*` bits (`include/block/block-common.h`), with
/// qemu's values so that a status prints as qemu's would.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Status(u32);

impl Status {
    /// No bit: unallocated here, and not known to read as zeros.
    pub const NONE: Status = Status(0);
    /// `BDRV_BLOCK_DATA`: reads come from the file (or a compressed
    /// cluster): the data may be anything.
    pub const DATA: Status = Status(0x01);
    /// `BDRV_BLOCK_ZERO`: the range reads as zeros.
    pub const ZERO: Status = Status(0x02);
    /// `BDRV_BLOCK_OFFSET_VALID`: the range sits uncompressed at a known
    /// offset of one host file ([`Mapping::host`]).
    pub const OFFSET_VALID: Status = Status(0x04);
    /// `BDRV_BLOCK_RAW`: the driver passes the range through to its host
    /// file unchanged; ask the host file (raw format).
    pub const RAW: Status = Status(0x08);
    /// `BDRV_BLOCK_ALLOCATED`: the range is this layer's, not its
    /// backing file's (added by the block layer, never by a driver).
    pub const ALLOCATED: Status = Status(0x10);
    /// `BDRV_BLOCK_EOF`: the range ends at the end of the image (added by
    /// the block layer).
    pub const EOF: Status = Status(0x20);
    /// `BDRV_BLOCK_RECURSE`: data at a host offset whose holes the block
    /// layer may turn into zeros (qcow2 with preallocated metadata).
    pub const RECURSE: Status = Status(0x40);
    /// `BDRV_BLOCK_COMPRESSED`: the range is in a compressed cluster.
    pub const COMPRESSED: Status = Status(0x80);

    /// The bits as qemu's `int` holds them.
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// Whether every bit of `other` is set.
    pub const fn contains(self, other: Status) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether any bit of `other` is set.
    pub const fn intersects(self, other: Status) -> bool {
        self.0 & other.0 != 0
    }

    /// These bits without those of `other`.
    #[must_use]
    pub const fn without(self, other: Status) -> Status {
        Status(self.0 & !other.0)
    }
}

impl BitOr for Status {
    type Output = Status;
    fn bitor(self, rhs: Status) -> Status {
        Status(self.0 | rhs.0)
    }
}

impl BitOrAssign for Status {
    fn bitor_assign(&mut self, rhs: Status) {
        self.0 |= rhs.0;
    }
}

impl BitAnd for Status {
    type Output = Status;
    fn bitand(self, rhs: Status) -> Status {
        Status(self.0 & rhs.0)
    }
}

/// Where a range's data sits in a host file: qemu's `*map` and `*file`.
#[derive(Debug, Clone, Copy)]
pub struct Host<'a> {
    /// The host file (the image's own file, a qcow2 data file, a vmdk
    /// extent): the node qemu's `map` names, and the one whose holes the
    /// block layer asks about.
    pub file: &'a ImageFile,
    /// The offset in that file of the range's first byte.
    pub offset: u64,
}

/// A driver's answer for the range starting at the offset it was asked
/// about: qemu's return value, `*pnum`, `*map` and `*file` of a driver's
/// `bdrv_co_block_status`.
#[derive(Debug, Clone, Copy)]
pub struct Mapping<'a> {
    /// `DATA`, `ZERO`, `OFFSET_VALID`, `RAW`, `RECURSE`, `COMPRESSED` as
    /// the driver sets them (never `ALLOCATED` or `EOF`).
    pub status: Status,
    /// How many bytes from the offset share this answer (`*pnum`): more
    /// than 0, at most the bytes asked for, a multiple of the image's
    /// [`request alignment`](crate::Image::request_alignment) unless it
    /// reaches the end of the image.
    pub bytes: u64,
    /// With `OFFSET_VALID` (and `RAW`): the host file and offset.
    pub host: Option<Host<'a>>,
}

impl<'a> Mapping<'a> {
    /// `bytes` bytes with `status` and nothing in a host file.
    pub const fn unmapped(status: Status, bytes: u64) -> Mapping<'a> {
        Mapping { status, bytes, host: None }
    }

    /// `bytes` bytes with `status | OFFSET_VALID` at `offset` of `file`.
    pub fn at(status: Status, bytes: u64, file: &'a ImageFile, offset: u64) -> Mapping<'a> {
        Mapping { status: status | Status::OFFSET_VALID, bytes, host: Some(Host { file, offset }) }
    }
}
