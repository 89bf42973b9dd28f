//! `info` for VHDX images: what `qemu-img info` reports after opening the
//! image with every check of `vhdx_open`.

use crate::open::{open, OpenFailure, OpenMode};
use instar_core::info::allocated_size;
use instar_core::{ChildInfo, Error, ImageInfo};

/// A failed open as qemu reports it: the `error_report` lines it prints
/// while opening (before the open fails) travel with the error as notes,
/// which the command line prints first.
pub fn report_failure(filename: &str, failure: OpenFailure) -> Error {
    failure.error.into_error(filename).with_notes(failure.notes)
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
