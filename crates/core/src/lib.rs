//! Shared machinery of instar, independent of any one image format:
//! qemu's size syntax, qemu's option lists (`-o key=value,...`), the model of
//! what `info` and `check` report and the exact text qemu-img prints for
//! them, and the [`Format`] trait each image format implements.

pub mod bytes;
pub mod check;
pub mod error;
pub mod format;
pub mod human;
pub mod info;
pub mod json;
pub mod opts;
pub mod protocol_file;
pub mod size;

pub use check::CheckReport;
pub use error::{Error, ErrorKind};
pub use format::{CreateRequest, Format};
pub use info::{ChildInfo, ImageInfo, QemuDialect};
pub use json::Json;
pub use opts::{OptDesc, OptType, Options};
