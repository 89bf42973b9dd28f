//! The vpc format: Microsoft's Virtual Hard Disk (VHD), as qemu's
//! `block/vpc.c` creates and opens it.
//!
//! A VHD ends with a 512-byte footer ([`footer`]) naming its size, CHS
//! geometry ([`geometry`]) and type. A fixed disk is the guest data followed
//! by the footer; a dynamic disk starts with a copy of the footer, then a
//! dynamic disk header ([`dynamic_header`]) locating a block allocation
//! table ([`bat`]) whose blocks are appended as the guest writes.
//!
//! [`create`] writes what `qemu-img create -f vpc` writes, [`image`] opens
//! as qemu opens (for `info` and every other command), and [`check`]
//! verifies the structures, which qemu-img itself does not do for this
//! format: a plain `check` answers as qemu-img does, and the structural
//! check runs only when asked for by name (`instar check --deep`).

pub mod bat;
pub mod check;
pub mod create;
pub mod dynamic_header;
pub mod error;
pub mod footer;
pub mod geometry;
pub mod image;
pub mod read;
pub mod write;

use instar_core::opts::{OptDesc, OptType};
use instar_core::{
    CheckReport, CreateRequest, Error, Format, Image, ImageFile, ImageWriter, Lines, OpenFlags,
    WriterRequest,
};

/// The vpc format driver.
#[derive(Debug, Clone, Copy, Default)]
pub struct Vpc;

/// vpc's create options, in qemu's declared order (`vpc_create_opts`),
/// with qemu's help texts (the subformat text ends in a space, as qemu's
/// does). None has a default in the `Formatting` line.
pub const CREATE_OPTS: &[OptDesc] = &[
    OptDesc::new("size", OptType::Size, "Virtual disk size"),
    OptDesc::new(
        "subformat",
        OptType::Str,
        "Type of virtual hard disk format. Supported formats are {dynamic (default) | fixed} ",
    ),
    OptDesc::new(
        "force_size",
        OptType::Bool,
        "Force disk size calculation to use the actual size specified, rather than using the \
         nearest CHS-based calculation",
    ),
];

/// qemu's probe score for a file starting with the footer cookie.
const PROBE_SCORE: u32 = 100;

impl Format for Vpc {
    fn name(&self) -> &'static str {
        "vpc"
    }

    fn create_opts(&self) -> &'static [OptDesc] {
        CREATE_OPTS
    }

    fn create(&self, req: &CreateRequest<'_>) -> Result<(), Error> {
        create::create(req)
    }

    /// Only a dynamic disk starts with the cookie; a fixed disk's first
    /// bytes are guest data, so it probes as raw, as in qemu.
    fn probe(&self, head: &[u8], _filename: &str) -> u32 {
        if footer::has_cookie(head) {
            PROBE_SCORE
        } else {
            0
        }
    }

    /// qemu's `vpc_open`; the image has no check of qemu's (the trait's
    /// default answers as qemu-img does).
    fn open(&self, file: ImageFile, flags: OpenFlags) -> Result<Box<dyn Image>, Error> {
        let name = file.name().to_string();
        let image =
            image::VpcImage::open(file, flags.dialect).map_err(|e| e.into_open_error(&name))?;
        Ok(Box::new(image))
    }

    fn has_deep_check(&self) -> bool {
        true
    }

    /// instar's structural check ([`check`]).
    fn deep_check(&self, file: ImageFile, lines: Lines) -> Result<CheckReport, Error> {
        check::check(&file, lines).map_err(|e| e.into_open_error(file.name()))
    }

    /// qemu's vpc write path ([`write::VpcWriter`]).
    fn open_writer(&self, name: &str, req: WriterRequest) -> Result<Box<dyn ImageWriter>, Error> {
        Ok(Box::new(write::VpcWriter::open(name, req.dialect)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_the_cookie_only() {
        assert_eq!(Vpc.probe(b"conectix\0\0\0\x02", "x"), 100);
        assert_eq!(Vpc.probe(b"conecti", "x"), 0);
        assert_eq!(Vpc.probe(&[0u8; 512], "x"), 0);
    }

    #[test]
    fn help_lists_qemu_texts() {
        let help = instar_core::opts::print_help("Supported vpc options:", CREATE_OPTS);
        assert_eq!(
            help,
            "Supported vpc options:\n  force_size=<bool (on/off)> - Force disk size calculation \
             to use the actual size specified, rather than using the nearest CHS-based \
             calculation\n  size=<size>            - Virtual disk size\n  subformat=<str>        \
             - Type of virtual hard disk format. Supported formats are {dynamic (default) | \
             fixed} \n"
        );
    }
}
