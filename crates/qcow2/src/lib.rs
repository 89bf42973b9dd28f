//! The qcow2 image format: create, open, info and check, byte for byte
//! and message for message as qemu-img does them.
//!
//! One file per on-disk structure: [`header`] reads and writes the first
//! cluster, [`tables`] the L1/L2 and refcount entries, [`snapshot`] the
//! internal snapshot table, [`bitmap`] the persistent dirty bitmaps.
//! [`layout`] computes where a new image's metadata goes (by replaying
//! qemu's allocator) and [`create`] validates options and writes it.
//! [`open`] is the one open every command goes through; the opened image
//! answers [`info`] and [`check`] (qemu's consistency check), and
//! [`read`] reads its guest data and answers block status. [`write`]
//! takes convert's writes as qemu's driver does ([`alloc`] allocates
//! clusters and keeps refcounts, [`cache`] holds the tables being
//! filled, [`zero`] and [`compressed`] the other kinds of writes).

pub mod alloc;
pub mod bitmap;
pub mod bitmap_store;
pub mod cache;
pub mod check;
pub mod compressed;
pub mod create;
pub mod error;
pub mod header;
pub mod info;
pub mod layout;
pub mod measure;
pub mod open;
pub mod overlap;
pub mod read;
pub mod snapshot;
pub mod tables;
pub mod write;
pub mod zero;

use instar_core::bytes::be32;
use instar_core::{
    BackingRef, CheckReport, CreateRequest, Diagnostic, Error, Format, Image, ImageFile, ImageInfo,
    Lines, Mapping, OpenFlags, OptDesc,
};

/// The qcow2 format driver.
#[derive(Debug, Clone, Copy, Default)]
pub struct Qcow2;

impl Format for Qcow2 {
    fn name(&self) -> &'static str {
        "qcow2"
    }

    fn create_opts(&self) -> &'static [OptDesc] {
        create::CREATE_OPTS
    }

    fn create(&self, req: &CreateRequest<'_>) -> Result<(), Error> {
        create::create(req)
    }

    fn probe(&self, head: &[u8], _filename: &str) -> u32 {
        probe(head)
    }

    fn open(&self, file: ImageFile, flags: OpenFlags) -> Result<Box<dyn Image>, Error> {
        Ok(Box::new(open::open(file, flags)?))
    }

    fn measurer(&self) -> Option<instar_core::Measurer> {
        Some(measure::measure)
    }

    /// convert's target: [`write::Qcow2Writer`].
    fn open_writer(
        &self,
        name: &str,
        req: instar_core::WriterRequest,
    ) -> Result<Box<dyn instar_core::ImageWriter>, Error> {
        Ok(Box::new(write::open_writer(name, req)?))
    }
}

impl Image for open::Qcow2Image {
    fn info(&self) -> Result<ImageInfo, Error> {
        info::info(self)
    }

    fn virtual_size(&self) -> u64 {
        self.total_bytes()
    }

    /// The backing file name and the format the header records for it.
    fn backing(&self) -> Option<BackingRef> {
        let name = self.header.backing_file.clone()?;
        Some(BackingRef { name, format: self.header.extensions.backing_format.clone() })
    }

    fn warnings(&self) -> Vec<Diagnostic> {
        open::Qcow2Image::warnings(self)
    }

    fn check(&self, lines: Lines) -> Result<CheckReport, Error> {
        Ok(check::check(self, lines))
    }

    fn take_printed(&self) -> Vec<Diagnostic> {
        self.reader.printed.take()
    }

    fn has_block_status(&self) -> bool {
        true
    }

    /// qemu's `qcow2_co_block_status`.
    fn block_status(
        &self,
        _want_zero: bool,
        offset: u64,
        bytes: u64,
    ) -> Result<Mapping<'_>, Error> {
        self.block_status_at(offset, bytes)
    }

    /// qemu's `qcow2_co_get_info`: the cluster size.
    fn info_cluster_size(&self) -> Result<Option<u64>, Error> {
        Ok(Some(self.cluster_size()))
    }

    /// qemu sets the crypto sector size as the alignment of an encrypted
    /// image (which instar cannot open to read), and 1 otherwise.
    fn request_alignment(&self) -> u64 {
        1
    }

    fn supports_backing(&self) -> bool {
        true
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), Error> {
        self.read_guest(offset, buf)
    }

    fn loads_snapshots(&self) -> bool {
        true
    }

    fn load_snapshot(&mut self, which: instar_core::SnapshotRef<'_>) -> Result<(), Error> {
        match which {
            instar_core::SnapshotRef::IdOrName(x) => self.load_snapshot_by_id_or_name(x),
            instar_core::SnapshotRef::Exact { id, name } => self.load_snapshot_exact(id, name),
        }
    }

    /// The bitmaps loaded at open; a version 2 image holds none qemu
    /// trusts.
    fn persistent_bitmaps(&self) -> Option<Vec<instar_core::SourceBitmap>> {
        (self.header.version >= 3).then(|| {
            self.bitmaps
                .iter()
                .map(|b| instar_core::SourceBitmap {
                    name_len: b.name.len() as u64,
                    granularity: 1u64 << b.granularity_bits,
                    length: self.virtual_size(),
                    name: b.name.clone(),
                    in_use: b.flags & bitmap::BME_FLAG_IN_USE != 0,
                })
                .collect()
        })
    }

    /// Each bitmap of the directory with its bits (none for one in use),
    /// read as qemu loads them at open.
    fn bitmap_copies(&self) -> Result<Vec<instar_core::BitmapCopy>, Error> {
        if self.header.version < 3 {
            return Ok(Vec::new());
        }
        let len = self.total_bytes();
        let cs = self.cluster_size();
        self.bitmaps
            .iter()
            .map(|b| {
                let in_use = b.flags & bitmap::BME_FLAG_IN_USE != 0;
                let bits = if in_use {
                    None
                } else {
                    Some(bitmap::load_bits(&self.file, b, cs, len).map_err(Error::errno)?)
                };
                Ok(instar_core::BitmapCopy {
                    name: b.name.clone(),
                    granularity: 1u64 << b.granularity_bits,
                    // qemu loads an inconsistent bitmap disabled.
                    enabled: b.flags & bitmap::BME_FLAG_AUTO != 0 && !in_use,
                    bits,
                })
            })
            .collect()
    }
}

/// How many bytes qemu reads to probe a format (`BLOCK_PROBE_BUF_SIZE`);
/// a shorter file reads as if padded with zeros.
pub const PROBE_BUF_SIZE: usize = 512;

/// qemu's `qcow2_probe`: 100 for the qcow2 magic with a version of at
/// least 2, 0 otherwise. `head` is the start of the file; qemu pads a
/// short file with zeros to its 512-byte probe buffer, so any non-empty
/// head is long enough to hold a header.
pub fn probe(head: &[u8]) -> u32 {
    if head.is_empty() {
        return 0;
    }
    let mut buf = [0u8; 8];
    let n = head.len().min(8);
    buf[..n].copy_from_slice(&head[..n]);
    let magic = be32(&buf, 0);
    let version = be32(&buf, 4);
    if magic == header::QCOW_MAGIC && version >= 2 {
        100
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_matches_qcow2_probe() {
        assert_eq!(probe(b"QFI\xfb\0\0\0\x03"), 100);
        assert_eq!(probe(b"QFI\xfb\0\0\0\x02rest"), 100);
        assert_eq!(probe(b"QFI\xfb\0\0\0\x01"), 0);
        assert_eq!(probe(b"QFI\xfb"), 0);
        assert_eq!(probe(b"QFI"), 0);
        assert_eq!(probe(b""), 0);
        assert_eq!(probe(&[0u8; 512]), 0);
    }
}
