//! What can go wrong creating or opening a VHDX image, and the exact text
//! qemu-img prints for each failure.

use instar_core::error::strerror;
use instar_core::Error;

/// A refused or failed `create`.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    /// `subformat` is neither `dynamic` nor `fixed`; carries the message
    /// (worded by version: `QemuDialect::refused_enum_value`).
    #[error("{0}")]
    BadSubformat(String),
    /// More than the specification's 64 TiB.
    #[error("Image size too large; max of 64TB")]
    SizeTooLarge,
    /// A log of 4 GiB or more.
    #[error("Log size must be smaller than 4 GB")]
    LogTooLarge,
    /// A log size of zero after rounding.
    #[error("Log size must be a multiple of 1 MB")]
    LogNotMultiple,
    /// A block size that is not a power of two.
    #[error("Block size must be a power of two")]
    BlockNotPowerOfTwo,
    /// A write or resize failed; `what` is qemu's wording of the step.
    #[error("{what}: {}", strerror(.source))]
    Write {
        /// The step that failed.
        what: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl From<CreateError> for Error {
    fn from(e: CreateError) -> Error {
        match e {
            // qemu-img words a file too large for the file system itself,
            // naming the format; the block layer does the same for us.
            CreateError::Write { source, .. }
                if source.raw_os_error() == Some(rustix::io::Errno::FBIG.raw_os_error()) =>
            {
                Error::too_large(source)
            }
            CreateError::Write { what, source } => Error::io(what, source),
            other => Error::invalid(other.to_string()),
        }
    }
}

/// Why an image could not be opened, as qemu's `vhdx_open` fails.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The image breaks a rule of the format (qemu's `-EINVAL`).
    #[error("Invalid argument")]
    Invalid,
    /// The image needs a feature qemu lacks (qemu's `-ENOTSUP`).
    #[error("Operation not supported")]
    NotSupported,
    /// Neither header is valid.
    #[error("No valid VHDX header found")]
    NoValidHeader,
    /// The log holds entries that must be replayed, which a read-only
    /// open cannot do.
    #[error("log needs replay")]
    NeedsReplay,
    /// The log search would not end (qemu-img loops for ever on such a
    /// log; instar stops, see `log::LOG_SEARCH_MAX_PASSES`).
    #[error("The VHDX log search does not end (an entry or sequence wraps around the whole log)")]
    EndlessLog,
    /// A failure with an errno of its own.
    #[error("errno {}", .0.raw_os_error())]
    Errno(rustix::io::Errno),
    /// A read failed.
    #[error("{}", strerror(.0))]
    Io(#[from] std::io::Error),
}

impl OpenError {
    /// The error as qemu's block layer reports it for `filename` (before
    /// qemu-img's own `Could not open '<file>': `): the driver's message,
    /// or the block layer's wording of a bare errno.
    pub fn into_error(self, filename: &str) -> Error {
        let message = match self {
            OpenError::NoValidHeader => "No valid VHDX header found".to_string(),
            // qemu appends a hint naming qemu-img, which can replay the
            // log; instar cannot (it opens images read-only), so the hint
            // keeps pointing at qemu-img.
            OpenError::NeedsReplay => format!(
                "VHDX image file '{filename}' opened read-only, but contains a log that needs \
                 to be replayed\nTo replay the log, run:\nqemu-img check -r all '{filename}'"
            ),
            OpenError::Errno(e) => format!(
                "Could not open '{filename}': {}",
                strerror(&std::io::Error::from_raw_os_error(e.raw_os_error()))
            ),
            OpenError::Io(e) => format!("Could not open '{filename}': {}", strerror(&e)),
            other => format!("Could not open '{filename}': {other}"),
        };
        Error::open(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_match_qemu() {
        assert_eq!(
            OpenError::Invalid.into_error("a.vhdx").wrap_open("a.vhdx").to_string(),
            "Could not open 'a.vhdx': Could not open 'a.vhdx': Invalid argument"
        );
        assert_eq!(
            OpenError::NotSupported.into_error("a").to_string(),
            "Could not open 'a': Operation not supported"
        );
        assert_eq!(
            OpenError::NoValidHeader.into_error("a").to_string(),
            "No valid VHDX header found"
        );
        assert_eq!(
            OpenError::Errno(rustix::io::Errno::IO).into_error("a").to_string(),
            "Could not open 'a': Input/output error"
        );
        assert_eq!(
            Error::from(CreateError::BlockNotPowerOfTwo).to_string(),
            "Block size must be a power of two"
        );
    }
}
