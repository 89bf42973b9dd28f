//! What can go wrong creating or opening a vmdk image, each failure with
//! the words qemu-img 10.0.2 prints for it (`block/vmdk.c`).
//!
//! The `Display` text is what qemu-img prints after `qemu-img: <file>: `
//! for create, and after `Could not open '<file>': ` for info and check
//! (that prefix is added by the block layer, as qemu-img adds it).

use instar_core::Error;
use std::io;

/// A failure of the vmdk driver.
#[derive(Debug, thiserror::Error)]
pub enum VmdkError {
    /// `backing_fmt` names another format than vmdk.
    #[error("backing_file must be a vmdk image")]
    BackingFmtNotVmdk,
    /// The image file name is empty.
    #[error("No filename provided")]
    NoFilename,
    /// `backing_file` is set to the empty string.
    #[error("Expected backing file name, got empty string")]
    EmptyBackingName,
    /// An enum option (`adapter_type`, `subformat`, `preallocation`) has a
    /// value qemu does not know.
    #[error("invalid parameter value: {0}")]
    InvalidValue(String),
    /// `compat6=on` together with an explicit `hwversion`.
    #[error("compat6 cannot be enabled with hwversion set")]
    Compat6WithHwversion,
    /// A flat subformat was asked for with a backing file.
    #[error("Flat image can't have backing file")]
    FlatWithBacking,
    /// A flat subformat was asked for with `zeroed_grain=on`.
    #[error("Flat image can't enable zeroed grain")]
    FlatWithZeroedGrain,
    /// The backing file is an image of another format.
    #[error("Invalid backing file format: {0}. Must be vmdk")]
    BackingNotVmdk(String),
    /// The file protocol refused a file's creation or sizing (its own
    /// message and kind).
    #[error("{0}")]
    File(Error),
    /// A file could not be opened (the file protocol's message).
    #[error("Could not open '{0}': {reason}", reason = instar_core::error::strerror(.1))]
    OpenFile(String, #[source] io::Error),
    /// Writing a descriptor file failed.
    #[error("Could not write description: {reason}", reason = instar_core::error::strerror(.0))]
    WriteDescription(#[source] io::Error),
    /// Writing a sparse extent's metadata failed: what was being written
    /// (`failed to write VMDK magic`, `... header`, `... grain directory`,
    /// `... backup grain directory`) and the error, as qemu 10 words it.
    #[error("{0}: {reason}", reason = instar_core::error::strerror(.1))]
    Write(&'static str, #[source] io::Error),
    /// The system could not supply random bytes for the CID.
    #[error("Could not generate a CID: {reason}", reason = instar_core::error::strerror(.0))]
    Random(#[source] io::Error),
    /// The file is shorter than a magic number.
    #[error("File is too small, not a valid image")]
    FileTooSmall,
    /// A descriptor without a readable `createType`.
    #[error("invalid VMDK image descriptor")]
    InvalidDescriptor,
    /// A descriptor whose `createType` qemu does not open from text.
    #[error("Unsupported image type '{0}'")]
    UnsupportedImageType(String),
    /// An extent line qemu cannot use.
    #[error("Invalid extent line: {0}")]
    InvalidExtentLine(String),
    /// A `SPARSE` extent file without a sparse magic.
    #[error("Image not in VMDK format")]
    NotVmdk,
    /// The footer of a stream-optimized image (gd_offset at the end) is not
    /// a footer marker, a header and an end-of-stream marker.
    #[error("Invalid footer")]
    InvalidFooter,
    /// A descriptor offset beyond what the file protocol can address.
    #[error("Could not read from file: Input/output error")]
    ReadDescriptor,
    /// Descriptors that hold descriptors, too deep (qemu recurses without
    /// bound; instar stops).
    #[error("Descriptors nest too deeply")]
    NestingTooDeep,
    /// An seSparse extent qemu refuses (its header checks).
    #[error("{0}")]
    SeSparse(String),
    /// The footer lies before the start of the file.
    #[error("Failed to read footer: Input/output error")]
    FooterUnreadable,
    /// A header version beyond 3.
    #[error("Unsupported VMDK version {0}")]
    UnsupportedVersion(u32),
    /// More than 512 entries per grain table.
    #[error("L2 table size too big")]
    L2TooBig,
    /// Grain tables that cover no sectors.
    #[error("L1 entry size is invalid")]
    L1EntryInvalid,
    /// The file ends before the first grain.
    #[error("File truncated, expecting at least {0} bytes")]
    Truncated(i64),
    /// Grains of more than 1 GiB.
    #[error("Invalid granularity, image may be corrupt")]
    InvalidGranularity,
    /// A grain directory of more than 32 Mi entries.
    #[error("L1 size too big")]
    L1TooBig,
    /// A grain directory beyond what the file protocol can address.
    #[error("Could not read l1 table from extent '{0}': Input/output error")]
    L1Unreadable(String),
    /// A redundant grain directory beyond what the file protocol can
    /// address.
    #[error("Could not read l1 backup table from extent '{0}': Input/output error")]
    L1BackupUnreadable(String),
    /// The image opened, but its size in bytes is not a valid length
    /// (qemu's `bdrv_getlength` failing); carries the file name and the C
    /// library's text for the error qemu derives.
    #[error("Can't get image size '{0}': {1}")]
    ImageSize(String, String),
    /// `info` of a descriptor that lists no extent, where qemu-img aborts
    /// (an assertion in `vmdk_co_get_info`): instar says so instead.
    #[error("Could not get information on '{0}': its vmdk descriptor lists no extent (qemu-img aborts on such an image)")]
    NoExtents(String),
    /// The descriptor has no readable `CID` or `parentCID`: qemu's bare
    /// `EINVAL`, worded by its block layer (`bdrv_open_driver`).
    #[error("Could not open '{0}': Invalid argument")]
    NoCid(String),
    /// `parentFileNameHint` without its closing quote, or too long.
    #[error("Could not open '{0}': Invalid argument")]
    BadParentHint(String),
}

impl VmdkError {
    /// Whether the failure is a refused argument (nothing was written).
    fn is_argument(&self) -> bool {
        matches!(
            self,
            VmdkError::BackingFmtNotVmdk
                | VmdkError::NoFilename
                | VmdkError::EmptyBackingName
                | VmdkError::InvalidValue(_)
                | VmdkError::Compat6WithHwversion
                | VmdkError::FlatWithBacking
                | VmdkError::FlatWithZeroedGrain
                | VmdkError::BackingNotVmdk(_)
        )
    }
}

impl From<VmdkError> for Error {
    fn from(e: VmdkError) -> Error {
        if e.is_argument() {
            return Error::invalid(e.to_string());
        }
        match e {
            VmdkError::Random(source) => Error::io("Could not generate a CID", source),
            e @ (VmdkError::ImageSize(..) | VmdkError::NoExtents(..)) => {
                Error::after_open(e.to_string())
            }
            VmdkError::File(e) => e,
            // qemu's create returns the descriptor write's errno, and its
            // block layer words EFBIG as the image being too large.
            VmdkError::WriteDescription(e) if e.raw_os_error() == Some(EFBIG) => {
                Error::too_large(e)
            }
            other => Error::open(other.to_string()),
        }
    }
}

/// `EFBIG` ("File too large") on Linux.
const EFBIG: i32 = 27;
