//! The VHDX image format (Hyper-V virtual hard disk v2), as qemu's
//! `block/vhdx.c` creates, opens and checks it.
//!
//! One module per on-disk structure ([`file_identifier`], [`header`],
//! [`region_table`], [`log`], [`metadata`], [`bat`], with [`guid`] for the
//! GUIDs they use), [`create`], and the one [`open`], whose image answers
//! `info` and `check`.

pub mod bat;
pub mod create;
pub mod error;
pub mod file_identifier;
pub mod guid;
pub mod header;
pub mod log;
pub mod metadata;
pub mod open;
pub mod read;
pub mod region_table;
pub mod write;

use instar_core::opts::{OptDesc, OptType};
use instar_core::{
    CreateRequest, Error, Format, Image, ImageFile, ImageWriter, OpenFlags, WriterRequest,
};

/// The vhdx format driver.
#[derive(Debug, Clone, Copy, Default)]
pub struct Vhdx;

/// vhdx's create options, in qemu's declared order (`vhdx_create_opts`),
/// with qemu's help texts and printed defaults.
pub const CREATE_OPTS: &[OptDesc] = &[
    OptDesc::new("size", OptType::Size, "Virtual disk size; max of 64TB."),
    OptDesc::with_default("log_size", OptType::Size, "Log size; min 1MB.", "1048576"),
    OptDesc::with_default(
        "block_size",
        OptType::Size,
        "Block Size; min 1MB, max 256MB. 0 means auto-calculate based on image size.",
        "0",
    ),
    OptDesc::new(
        "subformat",
        OptType::Str,
        "VHDX format type, can be either 'dynamic' or 'fixed'. Default is 'dynamic'.",
    ),
    OptDesc::new(
        "block_state_zero",
        OptType::Bool,
        "Force use of payload blocks of type 'ZERO'. Non-standard, but default.  Do not set \
         to 'off' when using 'qemu-img convert' with subformat=dynamic.",
    ),
];

impl Format for Vhdx {
    fn name(&self) -> &'static str {
        "vhdx"
    }

    fn create_opts(&self) -> &'static [OptDesc] {
        CREATE_OPTS
    }

    fn create(&self, req: &CreateRequest<'_>) -> Result<(), Error> {
        create::create(req)
    }

    fn probe(&self, head: &[u8], _filename: &str) -> u32 {
        if file_identifier::has_signature(head) {
            file_identifier::PROBE_SCORE
        } else {
            0
        }
    }

    fn open(&self, file: ImageFile, flags: OpenFlags) -> Result<Box<dyn Image>, Error> {
        let name = file.name().to_string();
        let image = open::open(file, flags).map_err(|f| f.into_error(&name))?;
        Ok(Box::new(image))
    }

    /// qemu's vhdx write path ([`write::VhdxWriter`]).
    fn open_writer(&self, name: &str, req: WriterRequest) -> Result<Box<dyn ImageWriter>, Error> {
        Ok(Box::new(write::VhdxWriter::open(name, req.dialect)?))
    }
}
