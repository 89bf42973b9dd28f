//! The markers of stream-optimized extents and the footer qemu reads when
//! a header says its grain directory is at the end (`gd_offset` =
//! [`GD_AT_END`](crate::sparse_header::GD_AT_END)).
//!
//! Such a file ends with three sectors: a footer marker, a copy of the
//! header holding the real grain directory offset, and an end-of-stream
//! marker. qemu-img never writes this layout (its stream-optimized images
//! keep the directory offset in the header), but it opens it, and so does
//! instar, with qemu's sanity checks.
//!
//! Each grain of a compressed extent is a zlib stream; with markers, it
//! follows a 12-byte grain marker (the grain's guest sector and the
//! stream's length). [`inflate_grain`] reads one as qemu's
//! `vmdk_read_extent` does.

use crate::error::VmdkError;
use crate::sparse_header::{SparseHeader, VMDK4_MAGIC};
use instar_core::bytes::{le32, le64};
use instar_core::codec::inflate_zero_padded;
use instar_core::ImageFile;
use std::io;

/// Marker type: end of stream.
pub const MARKER_END_OF_STREAM: u32 = 0;
/// Marker type: a grain table follows.
pub const MARKER_GRAIN_TABLE: u32 = 1;
/// Marker type: a grain directory follows.
pub const MARKER_GRAIN_DIRECTORY: u32 = 2;
/// Marker type: the footer follows.
pub const MARKER_FOOTER: u32 = 3;

/// Bytes of one marker sector.
pub const MARKER_SIZE: usize = 512;

/// Bytes of the footer block: footer marker, header copy, end-of-stream
/// marker, one sector each.
pub const FOOTER_SIZE: usize = 3 * MARKER_SIZE;

/// A metadata marker: `val` (sectors of metadata, or a grain's LBA),
/// `size` (0 for metadata markers) and `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marker {
    /// Sectors of metadata that follow, or 0.
    pub val: u64,
    /// Compressed bytes that follow (0 for a metadata marker).
    pub size: u32,
    /// `MARKER_*`.
    pub kind: u32,
}

impl Marker {
    /// Reads the first 16 bytes of a marker sector.
    pub fn from_bytes(b: &[u8]) -> Marker {
        Marker { val: le64(b, 0), size: le32(b, 8), kind: le32(b, 12) }
    }

    /// The marker sector: the fields, then zeros.
    pub fn to_bytes(&self) -> [u8; MARKER_SIZE] {
        let mut b = [0u8; MARKER_SIZE];
        b[0..8].copy_from_slice(&self.val.to_le_bytes());
        b[8..12].copy_from_slice(&self.size.to_le_bytes());
        b[12..16].copy_from_slice(&self.kind.to_le_bytes());
        b
    }
}

/// The header held in a footer block, after qemu's sanity checks: the
/// header magic, a footer marker of size 0 before it, and an end-of-stream
/// marker (value and size 0) after it.
pub fn parse_footer(block: &[u8]) -> Result<SparseHeader, VmdkError> {
    let at = |o: usize| block.get(o..).unwrap_or(&[]);
    let footer = Marker::from_bytes(at(0));
    let magic = at(MARKER_SIZE).get(..4).map(|m| u32::from_be_bytes([m[0], m[1], m[2], m[3]]));
    let eos = Marker::from_bytes(at(2 * MARKER_SIZE));
    if magic != Some(VMDK4_MAGIC)
        || footer.size != 0
        || footer.kind != MARKER_FOOTER
        || eos.val != 0
        || eos.size != 0
        || eos.kind != MARKER_END_OF_STREAM
    {
        return Err(VmdkError::InvalidFooter);
    }
    Ok(SparseHeader::from_bytes(at(MARKER_SIZE + 4)))
}

/// Bytes of a grain marker before the compressed data: the grain's
/// guest sector (8 bytes) and the data's length (4).
pub const GRAIN_MARKER_SIZE: usize = 12;

/// `EINVAL`: what qemu's read returns for a grain it cannot inflate.
fn einval() -> io::Error {
    io::Error::from_raw_os_error(22)
}

/// The compressed grain at byte `at` of `file`, inflated as qemu's
/// `vmdk_read_extent` does: qemu reads two grains' worth of bytes there
/// (a grain marker and data that did not compress may be longer than a
/// grain), takes the length from the marker (`has_marker`) or the whole
/// first grain, and inflates one zlib stream into a grain-sized buffer.
/// A length of 0 or beyond what it read, a stream that is invalid, does
/// not end, or would inflate to more than a grain, is `EINVAL`; a read
/// the block layer refuses is `EIO`. The result may be shorter than a
/// grain: reads past its end are the caller's `EINVAL`.
///
/// Only the bytes the file holds are read into memory: the rest of what
/// qemu reads (zeros past the end of the file) is fed to the inflater
/// without being held.
pub fn inflate_grain(
    file: &ImageFile,
    at: u64,
    cluster_sectors: u64,
    has_marker: bool,
) -> io::Result<Vec<u8>> {
    // qemu's `int` sizes: a grain is at most 1 GiB (checked at open), so
    // `cluster_bytes` fits; twice the largest grain does not, and qemu's
    // allocation of the negative size aborts.
    let cluster_bytes = cluster_sectors.saturating_mul(512);
    let buf_bytes = cluster_bytes.saturating_mul(2);
    if buf_bytes > i32::MAX as u64 {
        return Err(io::Error::from_raw_os_error(12));
    }
    ImageFile::check_request(at, buf_bytes)?;
    let (start, data_len) = if has_marker {
        let mut marker = [0u8; GRAIN_MARKER_SIZE];
        file.read_at(at, &mut marker)?;
        (GRAIN_MARKER_SIZE as u64, u64::from(le32(&marker, 8)))
    } else {
        (0, cluster_bytes)
    };
    if data_len == 0 || data_len > buf_bytes {
        return Err(einval());
    }
    // The stream's bytes the file holds; zeros follow (qemu's read of the
    // file past its end; qemu's last 12 bytes of a stream as long as its
    // buffer are beyond the buffer, and read as zeros here).
    let from = at + start;
    let in_file = file.len().saturating_sub(from).min(data_len);
    let mut input = vec![0u8; usize::try_from(in_file).map_err(|_| einval())?];
    file.read_at(from, &mut input)?;
    let mut out = vec![0u8; usize::try_from(cluster_bytes).map_err(|_| einval())?];
    match inflate_zero_padded(&input, data_len - in_file, &mut out, true) {
        Ok((produced, true)) => {
            out.truncate(produced);
            Ok(out)
        }
        _ => Err(einval()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grain::SparseLayout;

    fn footer_block(header: &SparseHeader) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&Marker { val: 1, size: 0, kind: MARKER_FOOTER }.to_bytes());
        let mut h = header.to_bytes().to_vec();
        h.resize(MARKER_SIZE, 0);
        b.extend_from_slice(&h);
        b.extend_from_slice(&Marker { val: 0, size: 0, kind: MARKER_END_OF_STREAM }.to_bytes());
        b
    }

    #[test]
    fn accepts_a_well_formed_footer() {
        let mut h = SparseLayout::new(1 << 20).header(true, false);
        h.gd_offset = 77;
        let block = footer_block(&h);
        assert_eq!(block.len(), FOOTER_SIZE);
        assert_eq!(parse_footer(&block).unwrap(), h);
    }

    #[test]
    fn refuses_broken_markers() {
        let h = SparseLayout::new(1 << 20).header(true, false);
        for (offset, byte) in
            [(12, 2u8), (8, 1), (512, 0), (1024, 1), (1024 + 8, 1), (1024 + 12, 1)]
        {
            let mut block = footer_block(&h);
            block[offset] = byte;
            assert!(matches!(parse_footer(&block), Err(VmdkError::InvalidFooter)), "{offset}");
        }
        assert!(matches!(parse_footer(&[]), Err(VmdkError::InvalidFooter)));
    }
}
