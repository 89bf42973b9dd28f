//! The markers of stream-optimized extents and the footer qemu reads when
//! a header says its grain directory is at the end (`gd_offset` =
//! [`GD_AT_END`](crate::sparse_header::GD_AT_END)).
//!
//! Such a file ends with three sectors: a footer marker, a copy of the
//! header holding the real grain directory offset, and an end-of-stream
//! marker. qemu-img never writes this layout (its stream-optimized images
//! keep the directory offset in the header), but it opens it, and so does
//! instar, with qemu's sanity checks.

use crate::error::VmdkError;
use crate::sparse_header::{SparseHeader, VMDK4_MAGIC};
use instar_core::bytes::{le32, le64};

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
