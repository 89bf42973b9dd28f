//! The raw format: the image is the guest disk, byte for byte.
//!
//! Creating one is the file protocol's job in qemu (`block/file-posix.c`):
//! the format itself only has a `size` option, while `preallocation`,
//! `nocow` and `extent_size_hint` come from the protocol layer. This crate
//! also holds those protocol behaviours ([`file`]), because every format
//! that writes a file inherits them.

pub mod file;

use instar_core::info::allocated_size;
use instar_core::opts::{OptDesc, OptType};
use instar_core::{ChildInfo, CreateRequest, Error, Format, ImageInfo};

/// The raw format driver.
#[derive(Debug, Clone, Copy, Default)]
pub struct Raw;

/// raw's own create options (`raw_create_opts`).
const RAW_CREATE_OPTS: &[OptDesc] = &[OptDesc::new("size", OptType::Size, "Virtual disk size")];

/// qemu's probe score for raw: the lowest, so any real format wins.
const RAW_PROBE_SCORE: u32 = 1;

impl Format for Raw {
    fn name(&self) -> &'static str {
        "raw"
    }

    fn create_opts(&self) -> &'static [OptDesc] {
        RAW_CREATE_OPTS
    }

    fn create(&self, req: &CreateRequest<'_>) -> Result<(), Error> {
        let plan = file::FilePlan::from_options(req.options)?;
        plan.create(req.filename)
    }

    fn probe(&self, _head: &[u8], _filename: &str) -> u32 {
        RAW_PROBE_SCORE
    }

    fn info(&self, filename: &str) -> Result<ImageInfo, Error> {
        let meta = std::fs::metadata(filename).map_err(|e| file::open_error(filename, &e))?;
        let file = ImageInfo::file_node(filename).map_err(|e| file::open_error(filename, &e))?;
        Ok(ImageInfo {
            filename: filename.to_string(),
            format: "raw".to_string(),
            dirty_flag: Some(false),
            actual_size: Some(allocated_size(&meta)),
            // qemu measures block devices in whole sectors.
            virtual_size: meta.len().div_ceil(512) * 512,
            children: vec![ChildInfo { name: "file".to_string(), info: file }],
            ..ImageInfo::default()
        })
    }
}
