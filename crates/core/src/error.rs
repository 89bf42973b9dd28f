//! The error every format reports to the command line: a kind, which the
//! command line maps to an exit code, and the message qemu-img would print.

use crate::diag::Diagnostic;
use std::fmt;

/// What sort of failure an [`Error`] is; the command line picks exit codes
/// and message prefixes from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// An argument or option value was refused before anything was touched.
    InvalidArgument,
    /// The operation is not supported for this format (qemu's `ENOTSUP`).
    NotSupported,
    /// The image could not be opened or read as the format claims.
    Open,
    /// A system call failed while reading or writing.
    Io,
    /// The image opened, then a later step failed (e.g. qemu-img's `Can't
    /// get image size`); printed as it is, without the `Could not open`
    /// wrapper open failures get.
    AfterOpen,
    /// The file system cannot hold a file that large (qemu's `EFBIG`); the
    /// block layer words the message, naming the format.
    TooLarge,
}

/// A failure with the exact text qemu-img prints for it (without the
/// `qemu-img: <file>: ` prefix, which the command line adds).
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    source: Option<std::io::Error>,
    notes: Vec<Diagnostic>,
}

impl Error {
    /// An argument qemu-img refuses, with qemu-img's message.
    pub fn invalid(message: impl Into<String>) -> Self {
        Error {
            kind: ErrorKind::InvalidArgument,
            message: message.into(),
            source: None,
            notes: Vec::new(),
        }
    }

    /// An operation the format does not support, with qemu-img's message.
    pub fn not_supported(message: impl Into<String>) -> Self {
        Error {
            kind: ErrorKind::NotSupported,
            message: message.into(),
            source: None,
            notes: Vec::new(),
        }
    }

    /// An image that cannot be opened, with qemu-img's message.
    pub fn open(message: impl Into<String>) -> Self {
        Error { kind: ErrorKind::Open, message: message.into(), source: None, notes: Vec::new() }
    }

    /// A failure after the image was opened, printed without the `Could
    /// not open` wrapper.
    pub fn after_open(message: impl Into<String>) -> Self {
        Error {
            kind: ErrorKind::AfterOpen,
            message: message.into(),
            source: None,
            notes: Vec::new(),
        }
    }

    /// A failed system call; `context` is qemu's wording of what was being
    /// done (e.g. `Could not resize file`); the OS error text is appended as
    /// qemu appends `strerror()`.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        let context = context.into();
        let message = format!("{context}: {}", strerror(&source));
        Error { kind: ErrorKind::Io, message, source: Some(source), notes: Vec::new() }
    }

    /// A read of guest data or metadata that failed with an errno, as
    /// qemu's block layer returns `-errno`: the message is the bare
    /// `strerror`, which each command words in (`Could not read file
    /// metadata: ...`, `Error while reading offset ...`). What the driver
    /// printed before failing (qcow2's corruption notice) goes in notes.
    pub fn errno(source: std::io::Error) -> Self {
        let message = strerror(&source);
        Error { kind: ErrorKind::Io, message, source: Some(source), notes: Vec::new() }
    }

    /// The file system refused the size (`EFBIG`). The block layer prints
    /// qemu's `The image size is too large for file format '<fmt>'`.
    pub fn too_large(source: std::io::Error) -> Self {
        let message = strerror(&source);
        Error { kind: ErrorKind::TooLarge, message, source: Some(source), notes: Vec::new() }
    }

    /// Adds lines qemu reports on stderr (each after the program name)
    /// before the failure itself, such as problems found while opening.
    pub fn with_notes(mut self, notes: Vec<String>) -> Self {
        self.notes.extend(notes.into_iter().map(Diagnostic::Reported));
        self
    }

    /// Puts what qemu printed on stderr before the failure (warnings met
    /// while opening) before the notes already there.
    pub fn after(mut self, printed: Vec<Diagnostic>) -> Self {
        self.notes.splice(0..0, printed);
        self
    }

    /// What to print on stderr before the message.
    pub fn notes(&self) -> &[Diagnostic] {
        &self.notes
    }

    /// The same failure with its message reworded (kind, source and notes
    /// kept), e.g. to add the `Could not open` wrapper.
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = message.into();
        self
    }

    /// The failure as qemu-img reports a failed open of `filename`: after
    /// `Could not open '<filename>': `, unless it is not an open failure
    /// (not supported, after open), which qemu-img prints as it is.
    pub fn wrap_open(self, filename: &str) -> Error {
        if matches!(self.kind, ErrorKind::NotSupported | ErrorKind::AfterOpen) {
            self
        } else {
            let message = format!("Could not open '{filename}': {}", self.message);
            self.with_message(message)
        }
    }

    /// qemu's block layer wording of an open that failed with a bare errno
    /// (`bdrv_open_driver`): `Could not open '<filename>': <strerror>`.
    pub fn open_errno(filename: &str, source: std::io::Error) -> Error {
        Error::open(format!("Could not open '{filename}': {}", strerror(&source)))
    }

    /// The errno behind the failure, for a failed system call or read.
    pub fn raw_os_error(&self) -> Option<i32> {
        self.source.as_ref().and_then(std::io::Error::raw_os_error)
    }

    /// What sort of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message as qemu-img prints it.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// The C library's text for an I/O error (`strerror`), without Rust's
/// ` (os error N)` decoration.
pub fn strerror(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_ref().map(|e| e as _)
    }
}
