//! The raw format: the image is the guest disk, byte for byte.
//!
//! Creating one is the file protocol's job in qemu (`block/file-posix.c`):
//! the raw driver passes every option down to it (`preallocation`, `nocow`
//! and `extent_size_hint` included), and instar's file layer
//! ([`instar_core::file`]) is that protocol.

use instar_core::file::{FileOptions, NewFile};
use instar_core::opts::{OptDesc, OptType};
use instar_core::{
    CreateRequest, Error, Format, Image, ImageFile, ImageInfo, ImageWriter, Mapping, OpenFlags,
    Status, TargetFile, WriterRequest,
};

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

    /// raw consumes none of the options: the file protocol gets them all.
    fn create(&self, req: &CreateRequest<'_>) -> Result<(), Error> {
        let options = FileOptions::from_options(req.options, &[])?;
        NewFile::create(req.filename, &options)?.keep();
        Ok(())
    }

    fn probe(&self, _head: &[u8], _filename: &str) -> u32 {
        RAW_PROBE_SCORE
    }

    fn open(&self, file: ImageFile, _flags: OpenFlags) -> Result<Box<dyn Image>, Error> {
        Ok(Box::new(RawImage { file }))
    }

    fn measurer(&self) -> Option<instar_core::Measurer> {
        Some(measure)
    }

    fn open_writer(&self, name: &str, _req: WriterRequest) -> Result<Box<dyn ImageWriter>, Error> {
        let file = TargetFile::open(name).map_err(|e| Error::open_errno(name, e))?;
        Ok(Box::new(RawWriter { file }))
    }
}

/// A raw image opened for writing: guest offsets are file offsets.
#[derive(Debug)]
pub struct RawWriter {
    file: TargetFile,
}

impl ImageWriter for RawWriter {
    /// The file's length in whole sectors, as qemu measures it.
    fn len(&self) -> u64 {
        self.file.len().map_or(0, instar_core::bytes::round_up_to_sector)
    }

    /// A regular file reads as zeros where nothing was written
    /// (file-posix's `bdrv_has_zero_init` for a regular file).
    fn has_zero_init(&self) -> bool {
        true
    }

    fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), Error> {
        self.file.write_at(offset, data).map_err(Error::errno)
    }

    fn write_zeroes(&mut self, offset: u64, bytes: u64) -> Result<(), Error> {
        self.file.zero_range(offset, bytes).map_err(Error::errno)
    }

    fn close(self: Box<Self>) -> Result<(), Error> {
        Ok(())
    }
}

/// qemu's `raw_measure`: the source's length, or the size asked for in
/// whole sectors, allocated or not (options are ignored).
fn measure(
    opts: &instar_core::Options,
    source: Option<&dyn instar_core::MeasureSource>,
    _secrets: &dyn instar_core::Secrets,
) -> Result<instar_core::Measurement, Error> {
    let sector = instar_core::bytes::SECTOR_SIZE;
    let required = match source {
        Some(s) => s.length(),
        // C's ROUND_UP in 64 bits: the largest sizes wrap, as in qemu
        // (9223372036854775807 measures 9223372036854775808).
        None => opts.get_number("size").unwrap_or(0).wrapping_add(sector - 1) & !(sector - 1),
    };
    Ok(instar_core::Measurement { required, fully_allocated: required, bitmaps: None })
}

/// An opened raw image: the file itself.
#[derive(Debug)]
pub struct RawImage {
    file: ImageFile,
}

impl Image for RawImage {
    fn info(&self) -> Result<ImageInfo, Error> {
        Ok(ImageInfo::format_node("raw", &self.file, self.virtual_size()))
    }

    /// The file's length in whole sectors, as qemu measures it.
    fn virtual_size(&self) -> u64 {
        self.file.sector_len()
    }

    fn has_block_status(&self) -> bool {
        true
    }

    /// qemu's `raw_co_block_status`: the range is the file's, at the same
    /// offset; the file protocol answers for its holes.
    fn block_status(
        &self,
        _want_zero: bool,
        offset: u64,
        bytes: u64,
    ) -> Result<Mapping<'_>, Error> {
        Ok(Mapping::at(Status::RAW, bytes, &self.file, offset))
    }

    /// The file's bytes (zeros past its end, up to the last sector).
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), Error> {
        self.file.read_at(offset, buf).map_err(Error::errno)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_disk_is_the_file() {
        let image = Raw.open(ImageFile::from_bytes("d.img", vec![1; 1000]), OpenFlags::INFO);
        let info = image.unwrap().info().unwrap();
        assert_eq!((info.format.as_str(), info.virtual_size), ("raw", 1024));
        assert_eq!(info.children[0].info.format, "file");
        assert!(Raw
            .open(ImageFile::from_bytes("e", vec![]), OpenFlags::CHECK)
            .unwrap()
            .check(instar_core::Lines::keep())
            .is_err());
    }
}
