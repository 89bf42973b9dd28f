//! `info` for VHDX images: what `qemu-img info` reports after opening the
//! image with every check of `vhdx_open`.

use crate::open::{open, OpenFailure, OpenMode};
use instar_core::info::allocated_size;
use instar_core::{ChildInfo, Error, ImageInfo};

/// The program name instar prints where qemu-img prints its own, in lines
/// qemu writes with `error_report`.
pub const PROGRAM_PREFIX: &str = "instar: ";

/// Reports a failed open as qemu does: its `error_report` lines go to
/// stderr as they are found (qemu prints them before the open fails, so
/// they precede the error message), then the error itself is returned.
pub fn report_failure(filename: &str, failure: OpenFailure) -> Error {
    for note in &failure.notes {
        eprintln!("{PROGRAM_PREFIX}{note}");
    }
    failure.error.into_error(filename)
}

/// What `info` reports for the VHDX image at `filename`.
pub fn info(filename: &str) -> Result<ImageInfo, Error> {
    let image = open(filename, OpenMode::Normal).map_err(|f| report_failure(filename, f))?;
    let io = |e: std::io::Error| crate::error::OpenError::Io(e).into_error(filename);
    let meta = std::fs::metadata(filename).map_err(io)?;
    let file = ImageInfo::file_node(filename).map_err(io)?;
    Ok(ImageInfo {
        filename: filename.to_string(),
        format: "vhdx".to_string(),
        dirty_flag: Some(false),
        actual_size: Some(allocated_size(&meta)),
        virtual_size: image.disk_bytes(),
        cluster_size: Some(u64::from(image.block_size)),
        children: vec![ChildInfo { name: "file".to_string(), info: file }],
        ..ImageInfo::default()
    })
}
