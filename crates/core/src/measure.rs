//! `measure`: how large a file a new image needs (qemu's `bdrv_measure`
//! and `BlockMeasureInfo`). A format that measures ([`crate::Format::measurer`])
//! gets its create options and, when an image is measured rather than a
//! size, the source as a [`MeasureSource`]: the block layer's view of the
//! source disk, which the format asks only what its arithmetic needs.

use crate::Error;

/// What `qemu-img measure` prints (qemu's `BlockMeasureInfo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Measurement {
    /// The file size the new image needs for what the source holds.
    pub required: u64,
    /// The file size with every cluster allocated.
    pub fully_allocated: u64,
    /// The bytes the source's persistent bitmaps would take, when both
    /// the source and the target can hold them.
    pub bitmaps: Option<u64>,
}

/// One persistent dirty bitmap of a source image, as the target's
/// arithmetic sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceBitmap {
    /// The length of its name in bytes.
    pub name_len: u64,
    /// The bytes one bit covers.
    pub granularity: u64,
    /// The disk length it covers (the image's length when it was loaded).
    pub length: u64,
    /// Its name, as convert names a bitmap it cannot copy.
    pub name: String,
    /// Its in-use flag: a bitmap left in use by a process that did not
    /// close the image is inconsistent, and `convert --bitmaps` refuses it.
    pub in_use: bool,
}

/// The disk being measured: an image opened with its backing chain.
pub trait MeasureSource {
    /// The disk's length as qemu's `bdrv_getlength` has it (whole
    /// sectors).
    fn length(&self) -> u64;

    /// Walks the disk's block status over the whole chain (qemu's
    /// `bdrv_block_status_above(bs, NULL, ...)`) and counts the bytes a
    /// copy with `cluster_size` clusters must allocate: every run that is
    /// data and allocated, widened to whole clusters, each cluster once;
    /// zero runs and unallocated runs count nothing.
    fn allocated_bytes(&self, cluster_size: u64) -> Result<u64, Error>;

    /// The source's persistent dirty bitmaps, or `None` when its format
    /// cannot hold persistent bitmaps (qemu's
    /// `bdrv_supports_persistent_dirty_bitmap`).
    fn persistent_bitmaps(&self) -> Option<Vec<SourceBitmap>>;
}

/// The secrets a command line defined (`--object secret`), which a LUKS
/// measurement must find by id as qemu's fake header creation does.
pub trait Secrets {
    /// Whether a secret with this id was defined.
    fn has_secret(&self, id: &str) -> bool;
}
