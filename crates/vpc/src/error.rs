//! What can go wrong creating or opening a VHD, each with qemu's words.

use instar_core::Error;
use std::io;

/// A failure of the vpc driver. The `Display` text is what qemu-img prints
/// after `qemu-img: <file>: ` (for create) or `Could not open '<file>': `
/// (for info and check; see [`VpcError::into_open_error`]).
#[derive(Debug, thiserror::Error)]
pub enum VpcError {
    /// `subformat` names no VHD type qemu knows; carries the message
    /// (worded by version: `QemuDialect::refused_enum_value`).
    #[error("{0}")]
    BadSubformat(String),
    /// The size is beyond 2040 GiB (qemu's `EFBIG`; the block layer words
    /// the message qemu-img prints).
    #[error("Disk size is too large, max size is 2040 GiB")]
    DiskTooLarge,
    /// The rounded size has no geometry (qemu's second rounding disagreed
    /// with its first); carries the size qemu suggests.
    #[error(
        "The requested image size cannot be represented in CHS geometry\n\
         Try size={0} or force-size=on (the latter makes the image incompatible with Virtual PC)"
    )]
    NotChsRepresentable(u64),
    /// Writing the metadata of a dynamic disk failed.
    #[error("Unable to create or write VHD header")]
    WriteDynamic(#[source] io::Error),
    /// Writing the footer of a fixed disk failed.
    #[error("Unable to write VHD header")]
    WriteFooter(#[source] io::Error),
    /// The system could not supply random bytes for the disk's UUID.
    #[error("Could not generate a UUID")]
    Random(#[source] io::Error),
    /// Reading the first footer failed.
    #[error("Unable to read VHD header")]
    ReadFooter(#[source] io::Error),
    /// The file cannot hold even a footer.
    #[error("File too small for a VHD header")]
    FileTooSmall,
    /// Neither end of the file holds a footer qemu accepts.
    #[error("invalid VPC image")]
    NotVpc,
    /// The footer's checksum is wrong.
    #[error("Incorrect header checksum")]
    FooterChecksum,
    /// The footer's size is beyond 2040 GiB (qemu's bare `EFBIG`).
    #[error("File too large")]
    OpenTooLarge,
    /// The dynamic disk header could not be read.
    #[error("Error reading dynamic VHD header")]
    ReadHeader,
    /// The dynamic disk header's cookie is wrong.
    #[error("Invalid header magic")]
    HeaderCookie,
    /// The block size is not a power of two of at least 512.
    #[error("Invalid block size {0}")]
    BlockSize(u32),
    /// The disk has more blocks than 32-bit entries can count.
    #[error("Too many blocks")]
    TooManyBlocks,
    /// The BAT has fewer entries than the disk has blocks.
    #[error("Page table too small")]
    PageTableTooSmall,
    /// The BAT is larger than qemu allocates (printed as a signed number).
    #[error("Max Table Entries too large ({0})")]
    PageTableTooLarge(i32),
    /// The BAT could not be read.
    #[error("Error reading pagetable")]
    ReadPagetable,
    /// Allocated blocks end past the end of the file.
    #[error(
        "block-vpc: free_data_block_offset points after the end of file. \
         The image has been truncated."
    )]
    Truncated,
    /// A read failed.
    #[error("Could not read image")]
    Read(#[source] io::Error),
}

impl VpcError {
    /// The error as the command line reports it for a create.
    pub fn into_create_error(self) -> Error {
        let efbig = rustix::io::Errno::FBIG.raw_os_error();
        match self {
            // qemu's create returns the write's errno, and its block layer
            // words EFBIG (past the file system's or `RLIMIT_FSIZE`'s
            // limit) as the image being too large, whatever was written.
            VpcError::WriteDynamic(e) | VpcError::WriteFooter(e)
                if e.raw_os_error() == Some(efbig) =>
            {
                Error::too_large(e)
            }
            VpcError::DiskTooLarge => Error::too_large(io::Error::from_raw_os_error(
                rustix::io::Errno::FBIG.raw_os_error(),
            )),
            VpcError::WriteFooter(e) => Error::io("Unable to write VHD header", e),
            VpcError::Random(e) => Error::io("Could not generate a UUID", e),
            other => Error::invalid(other.to_string()),
        }
    }

    /// The error as qemu's block layer reports a failed open of
    /// `filename`: the driver's message, or, for the failures qemu's
    /// driver returns as a bare errno, the block layer's `Could not open
    /// '<file>': <strerror>`.
    pub fn into_open_error(self, filename: &str) -> Error {
        match self {
            VpcError::Read(e) => Error::open_errno(filename, e),
            VpcError::OpenTooLarge => Error::open_errno(
                filename,
                io::Error::from_raw_os_error(rustix::io::Errno::FBIG.raw_os_error()),
            ),
            other => Error::open(other.to_string()),
        }
    }
}
