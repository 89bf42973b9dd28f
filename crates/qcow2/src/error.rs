//! The qcow2 driver's errors, each carrying the text qemu-img prints for
//! the same failure, and their conversion into [`instar_core::Error`].

use thiserror::Error;

/// `EFBIG`, "File too large", on Linux.
pub(crate) const EFBIG: i32 = 27;

/// Why a qcow2 header (and its extensions) could not be read, worded as
/// qemu's `qcow2_do_open` words it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HeaderError {
    /// The magic is not `QFI\xfb`.
    #[error("Image is not in qcow2 format")]
    NotQcow2,
    /// A version other than 2 or 3.
    #[error("Unsupported qcow2 version {0}")]
    UnsupportedVersion(u32),
    /// `cluster_bits` outside 9..=21.
    #[error("Unsupported cluster size: 2^{0}")]
    UnsupportedClusterSize(u32),
    /// A version 3 header shorter than the 104 mandatory bytes.
    #[error("qcow2 header too short")]
    HeaderTooShort,
    /// `header_length` larger than a cluster.
    #[error("qcow2 header exceeds cluster size")]
    HeaderExceedsCluster,
    /// `backing_file_offset` beyond the first cluster.
    #[error("Invalid backing file offset")]
    InvalidBackingFileOffset,
    /// A header extension running past the end of the extension area.
    #[error("Header extension too large")]
    ExtensionTooLarge,
    /// A backing format name that does not fit qemu's 16-byte buffer.
    #[error("ERROR: ext_backing_format: len={0} too large (>=16)")]
    BackingFormatTooLong(u32),
    /// A crypto header extension in an image not encrypted with LUKS.
    #[error("CRYPTO header extension only expected with LUKS encryption method")]
    UnexpectedCryptoHeader,
    /// A crypto header extension of the wrong length.
    #[error("CRYPTO header extension size {0}, but expected size 16")]
    CryptoHeaderSize(u32),
    /// A crypto header that does not start on a cluster boundary.
    #[error("Encryption header offset '{0}' is not a multiple of cluster size '{1}'")]
    CryptoHeaderOffset(u64, u64),
    /// A bitmaps extension with a reserved field set.
    #[error("bitmaps_ext: Reserved field is not zero: Success")]
    BitmapsReserved,
    /// A bitmaps extension of the wrong length.
    #[error("bitmaps_ext: Invalid extension length: Success")]
    BitmapsLength,
    /// More bitmaps than qemu supports.
    #[error("bitmaps_ext: Image has {0} bitmaps, exceeding the QEMU supported maximum of 65535")]
    TooManyBitmaps(u32),
    /// A bitmaps extension announcing no bitmap.
    #[error("found bitmaps extension with zero bitmaps")]
    ZeroBitmaps,
    /// A bitmap directory not aligned to a cluster.
    #[error("bitmaps_ext: invalid bitmap directory offset")]
    BitmapDirectoryOffset,
    /// A bitmap directory larger than qemu accepts.
    #[error(
        "bitmaps_ext: bitmap directory size ({0}) exceeds the maximum supported size ({max})",
        max = crate::header::MAX_BITMAP_DIRECTORY_SIZE
    )]
    BitmapDirectorySize(u64),
    /// A backing file name longer than qemu accepts.
    #[error("Backing file name too long")]
    BackingNameTooLong,
}

/// A failure of `create`, `info` or the layout computation.
#[derive(Debug, Error)]
pub enum Qcow2Error {
    /// An option value qemu refuses, with qemu's message.
    #[error("{0}")]
    InvalidOption(String),
    /// An option qemu knows but instar does not implement.
    #[error("Option '{0}' is not supported by instar")]
    Unsupported(&'static str),
    /// The image would need metadata larger than qcow2 allows (qemu's
    /// `-EFBIG`, which the block layer reports in these words).
    #[error(
        "The image size is too large for file format 'qcow2' (try using a larger cluster size)"
    )]
    TooLarge,
    /// The virtual size is refused by qemu's generic truncate checks.
    #[error("Could not resize image: {0}")]
    Resize(String),
    /// The header or its extensions are malformed.
    #[error("{0}")]
    Header(#[from] HeaderError),
    /// The image is structurally unusable (qemu's open-time checks).
    #[error("{0}")]
    Corrupt(String),
    /// A system call failed; the string is qemu's wording of the step.
    #[error("{0}")]
    Io(String, #[source] std::io::Error),
}

impl From<Qcow2Error> for instar_core::Error {
    fn from(e: Qcow2Error) -> Self {
        match e {
            Qcow2Error::Io(context, source) => instar_core::Error::io(context, source),
            Qcow2Error::Unsupported(_) => instar_core::Error::not_supported(e.to_string()),
            // The block layer words EFBIG for every format.
            Qcow2Error::TooLarge => {
                instar_core::Error::too_large(std::io::Error::from_raw_os_error(EFBIG))
            }
            Qcow2Error::Header(_) | Qcow2Error::Corrupt(_) => {
                instar_core::Error::open(e.to_string())
            }
            other => instar_core::Error::invalid(other.to_string()),
        }
    }
}
