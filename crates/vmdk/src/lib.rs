//! The vmdk image format (VMware's virtual disk), as qemu-img 10.0.2
//! creates, describes and checks it (`block/vmdk.c`).
//!
//! A vmdk image is a text descriptor plus extents. qemu-img creates five
//! layouts ([`create::Subformat`]): one sparse file holding its descriptor
//! (monolithicSparse, streamOptimized), or a descriptor file beside one or
//! more flat or sparse extent files of at most 2 GiB. A sparse extent
//! starts with a "KDMV" header ([`sparse_header`]); a grain directory and
//! its grain tables ([`grain`]) map 64 KiB grains to the file.
//!
//! - [`create`]: options checked in qemu's order, layout by arithmetic,
//!   files written with a few large writes (grain tables stay holes).
//! - [`image`]: opening an image (and each extent) with qemu's checks.
//! - [`info`] and [`check`]: what qemu-img reports.
//! - [`descriptor`]: the descriptor text, written and read as qemu does.
//! - [`stream`]: stream-optimized markers and footer.
//! - [`sesparse`]: the headers and entries of ESXi seSparse extents, which
//!   qemu (and instar) open read-only.

#![forbid(unsafe_code)]

pub mod check;
pub mod create;
pub mod descriptor;
pub mod error;
pub mod grain;
pub mod image;
pub mod info;
pub mod read;
pub mod sesparse;
pub mod sparse_header;
pub mod stream;
pub mod tables;
pub mod write;

use instar_core::bytes::be32;
use instar_core::dialect::VMDK_TOOLS_VERSION;
use instar_core::opts::{OptDesc, OptType};
use instar_core::{
    BackingRef, CheckReport, CreateRequest, Error, Format, Image, ImageFile, ImageInfo,
    ImageWriter, Lines, OpenFlags, WriterRequest,
};

/// The vmdk format driver.
#[derive(Debug, Clone, Copy, Default)]
pub struct Vmdk;

/// vmdk's create options in qemu's declared order (`vmdk_create_opts`),
/// with qemu's help texts and printed defaults.
pub const CREATE_OPTS: &[OptDesc] = &[
    OptDesc::new("size", OptType::Size, "Virtual disk size"),
    OptDesc::new(
        "adapter_type",
        OptType::Str,
        "Virtual adapter type, can be one of ide (default), lsilogic, buslogic or legacyESX",
    ),
    OptDesc::new("backing_file", OptType::Str, "File name of a base image"),
    OptDesc::new("backing_fmt", OptType::Str, "Must be 'vmdk' if present"),
    OptDesc::with_default("compat6", OptType::Bool, "VMDK version 6 image", "off"),
    OptDesc::with_default("hwversion", OptType::Str, "VMDK hardware version", "undefined"),
    OptDesc::new("toolsversion", OptType::Str, "VMware guest tools version")
        .since(VMDK_TOOLS_VERSION),
    OptDesc::new(
        "subformat",
        OptType::Str,
        "VMDK flat extent format, can be one of {monolithicSparse (default) | monolithicFlat | \
         twoGbMaxExtentSparse | twoGbMaxExtentFlat | streamOptimized} ",
    ),
    OptDesc::new(
        "zeroed_grain",
        OptType::Bool,
        "Enable efficient zero writes using the zeroed-grain GTE feature",
    ),
];

/// qemu's probe score for a certain match.
const PROBE_CERTAIN: u32 = 100;

/// qemu's `vmdk_probe`: 100 for a sparse magic (`KDMV` or `COWD`), or for
/// a text whose first line that is neither a comment nor blank is
/// `version=1`, `2` or `3` (LF or CRLF); 0 otherwise.
pub fn probe(buf: &[u8]) -> u32 {
    if buf.len() < 4 {
        return 0;
    }
    let magic = be32(buf, 0);
    if magic == sparse_header::VMDK3_MAGIC || magic == sparse_header::VMDK4_MAGIC {
        return PROBE_CERTAIN;
    }
    let end = buf.len();
    let mut p = 0;
    while p < end {
        match buf[p] {
            b'#' => {
                // A comment line.
                while p < end && buf[p] != b'\n' {
                    p += 1;
                }
                p += 1;
            }
            b' ' => {
                // Blank lines (spaces, optionally CR) may precede `version=`.
                while p < end && buf[p] == b' ' {
                    p += 1;
                }
                if p < end && buf[p] == b'\r' {
                    p += 1;
                }
                if p == end || buf[p] != b'\n' {
                    return 0;
                }
                p += 1;
            }
            _ => {
                let rest = &buf[p..];
                for v in [b'1', b'2', b'3'] {
                    if rest.starts_with(&[b'v', b'e', b'r', b's', b'i', b'o', b'n', b'=', v, b'\n'])
                        || rest.starts_with(&[
                            b'v', b'e', b'r', b's', b'i', b'o', b'n', b'=', v, b'\r', b'\n',
                        ])
                    {
                        return PROBE_CERTAIN;
                    }
                }
                return 0;
            }
        }
    }
    0
}

impl Format for Vmdk {
    fn name(&self) -> &'static str {
        "vmdk"
    }

    fn create_opts(&self) -> &'static [OptDesc] {
        CREATE_OPTS
    }

    fn create(&self, req: &CreateRequest<'_>) -> Result<(), Error> {
        let settings =
            create::Settings::from_options(req.filename, req.options, req.probe, req.dialect)?;
        let cid = create::random_cid()?;
        let files = create::plan(req.filename, &settings, cid);
        create::write(&files, req.options)?;
        Ok(())
    }

    fn probe(&self, head: &[u8], _filename: &str) -> u32 {
        probe(head)
    }

    /// qemu's `vmdk_open`: the image file and every extent file, opened
    /// and checked (without the backing file, which the block layer opens).
    fn open(&self, file: ImageFile, _flags: OpenFlags) -> Result<Box<dyn Image>, Error> {
        Ok(Box::new(image::Image::open(file)?))
    }

    /// qemu's vmdk write path ([`write::VmdkWriter`]).
    fn open_writer(&self, name: &str, req: WriterRequest) -> Result<Box<dyn ImageWriter>, Error> {
        Ok(Box::new(write::VmdkWriter::open(name, req.backing)?))
    }
}

impl Image for image::Image {
    fn info(&self) -> Result<ImageInfo, Error> {
        Ok(info::image_info(self)?)
    }

    fn virtual_size(&self) -> u64 {
        // A negative count cannot pass the open (it fails `info` too).
        #[allow(clippy::cast_sign_loss, reason = "qemu multiplies the int64_t as unsigned")]
        let total = self.total_sectors() as u64;
        total.wrapping_mul(instar_core::bytes::SECTOR_SIZE)
    }

    /// qemu's `bdrv_getlength` of the image: a negative sector count is
    /// returned as if it were an errno, a count too large for bytes is
    /// `EFBIG` (as `info` reports them).
    fn byte_length(&self) -> Result<u64, Error> {
        let total = self.total_sectors();
        if total < 0 {
            #[allow(clippy::cast_possible_truncation, reason = "C passes the int64_t as an int")]
            let errno = total.wrapping_neg() as i32;
            return Err(Error::errno(std::io::Error::from_raw_os_error(errno)));
        }
        if total > i64::MAX / 512 {
            return Err(Error::errno(std::io::Error::from_raw_os_error(27)));
        }
        Ok(self.virtual_size())
    }

    /// The parent named by `parentFileNameHint`, which qemu opens as vmdk.
    fn backing(&self) -> Option<BackingRef> {
        self.backing.as_ref().map(|name| BackingRef {
            name: instar_core::rawtext::from_bytes(name),
            format: Some("vmdk".to_string()),
        })
    }

    /// vmdk answers block status itself (`vmdk_co_block_status`).
    fn has_block_status(&self) -> bool {
        true
    }

    /// qemu's `vmdk_co_block_status`: the grain's state, at its offset in
    /// the extent file when uncompressed, for the rest of the grain.
    fn block_status(
        &self,
        _want_zero: bool,
        offset: u64,
        bytes: u64,
    ) -> Result<instar_core::Mapping<'_>, Error> {
        self.status(offset, bytes)
    }

    /// qemu's `vmdk_co_get_info`: the first extent's grain size (0 for a
    /// flat one); it fails when the extents are not all of one kind.
    fn info_cluster_size(&self) -> Option<u64> {
        let first = self.extents.first()?;
        let same = |e: &image::Extent| {
            e.is_flat() == first.is_flat()
                && e.compressed() == first.compressed()
                && (e.is_flat() || e.cluster_sectors == first.cluster_sectors)
        };
        if !self.extents.iter().all(same) {
            return None;
        }
        Some(if first.is_flat() { 0 } else { first.cluster_sectors.saturating_mul(512) })
    }

    /// vmdk reads at any byte (its driver has `bdrv_co_preadv`).
    fn request_alignment(&self) -> u64 {
        1
    }

    /// A vmdk image may have a parent (`parentFileNameHint`).
    fn supports_backing(&self) -> bool {
        true
    }

    /// qemu's `vmdk_co_preadv` of what this image holds.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), Error> {
        self.read(offset, buf)
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }

    /// qemu's `vmdk_is_cid_valid`, which its read asks before reading a
    /// grain from the parent: the parent must be a vmdk image whose
    /// content ID is the `parentCID` this image recorded (a write to the
    /// parent changes its CID); otherwise the read fails with `EINVAL`.
    fn check_backing_read(&self, backing: &dyn Image) -> Result<(), Error> {
        let parent = backing.as_any().and_then(|a| a.downcast_ref::<image::Image>());
        match parent {
            Some(p) if p.cid == self.parent_cid => Ok(()),
            _ => Err(Error::errno(std::io::Error::from_raw_os_error(read::EINVAL))),
        }
    }

    /// qemu-img's check: the image walked grain by grain.
    fn check(&self, lines: Lines) -> Result<CheckReport, Error> {
        let outcome = check::check(self);
        let mut report = CheckReport::new(&self.filename, "vmdk").with_lines(lines);
        for line in outcome.messages {
            report.push_message(line);
        }
        report.failed = outcome
            .failed
            .map(|errno| instar_core::error::strerror(&std::io::Error::from_raw_os_error(errno)));
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_like_qemu() {
        assert_eq!(probe(b"KDMV\x01\0\0\0"), 100);
        assert_eq!(probe(b"COWD"), 100);
        assert_eq!(probe(b"KDM"), 0);
        assert_eq!(probe(b"# Disk DescriptorFile\nversion=1\nCID=1\n"), 100);
        assert_eq!(probe(b"#x\r\n  \r\nversion=3\r\n"), 100);
        assert_eq!(probe(b"version=4\n"), 0);
        assert_eq!(probe(b"  x\nversion=1\n"), 0);
        assert_eq!(probe(b"# only a comment"), 0);
        assert_eq!(probe(b"QFI\xfb\0\0\0\x03"), 0);
    }

    #[test]
    fn help_texts_match_qemu() {
        let help = instar_core::opts::print_help("Supported vmdk options:", CREATE_OPTS);
        assert!(help.contains("  compat6=<bool (on/off)> - VMDK version 6 image\n"));
        assert!(help.contains(
            "  subformat=<str>        - VMDK flat extent format, can be one of {monolithicSparse \
             (default) | monolithicFlat | twoGbMaxExtentSparse | twoGbMaxExtentFlat | \
             streamOptimized} \n"
        ));
    }
}
