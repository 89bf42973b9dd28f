//! Shared machinery of instar, independent of any one image format: the
//! file layer under every format ([`file`]), fields of on-disk structures
//! ([`bytes`]), qemu's size syntax, qemu's option lists (`-o
//! key=value,...`), the model of what `info` and `check` report and the
//! exact text qemu-img prints for them, and the [`Format`] and [`Image`]
//! traits each image format implements.

pub mod bytes;
pub mod check;
pub mod codec;
pub mod ctext;
pub mod diag;
pub mod dialect;
pub mod error;
pub mod file;
pub mod format;
pub mod human;
pub mod info;
pub mod json;
pub mod json_read;
pub mod measure;
pub mod object;
pub mod opts;
pub mod path;
pub mod random;
pub mod rawtext;
pub mod read;
pub mod size;
pub mod table;
pub mod write;

pub use check::{CheckReport, Lines};
pub use diag::Diagnostic;
pub use dialect::{Backported, QemuDialect, QemuVersion, Release};
pub use error::{Error, ErrorKind};
pub use file::ImageFile;
pub use format::{
    BackingRef, CreateRequest, Format, Image, Measurer, OpenFlags, SnapshotRef, WriterRequest,
};
pub use info::{ChildInfo, ImageInfo, SnapshotInfo};
pub use json::Json;
pub use measure::{MeasureSource, Measurement, Secrets, SourceBitmap};
pub use opts::{OptDesc, OptType, Options};
pub use read::{Host, Mapping, Status};
pub use write::{BitmapCopy, GuestRead, ImageWriter, TargetFile, WriteLimits};
