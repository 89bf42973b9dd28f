//! The dynamic disk header: the 1024-byte structure a dynamic VHD's footer
//! points at, locating the block allocation table and giving the block
//! size.
//!
//! Fields are big-endian, in the order of the VHD specification ("Dynamic
//! Disk Header Format") and of qemu's `VHDDynDiskHeader`. The parent fields
//! matter only to differencing disks, which qemu does not create; they are
//! zero in what instar writes and ignored when read.

use crate::footer::vhd_checksum;
use instar_core::bytes::{be32, be64};

/// Bytes in a dynamic disk header.
pub const HEADER_SIZE: usize = 1024;

/// The header's cookie, its magic.
pub const HEADER_COOKIE: &[u8; 8] = b"cxsparse";

/// The header version, 1.0.
pub const HEADER_VERSION: u32 = 0x0001_0000;

/// The header's data offset: no further structure. The specification says
/// 0xFFFFFFFF, but Microsoft's tools (and qemu) set all 64 bits.
pub const NO_NEXT_OFFSET: u64 = u64::MAX;

/// The block size qemu creates dynamic disks with: 2 MiB.
pub const DEFAULT_BLOCK_SIZE: u32 = 0x0020_0000;

/// Byte offsets of the header fields.
pub mod offset {
    /// `Cookie`.
    pub const COOKIE: usize = 0;
    /// `Data Offset`.
    pub const DATA_OFFSET: usize = 8;
    /// `Table Offset`.
    pub const TABLE_OFFSET: usize = 16;
    /// `Header Version`.
    pub const HEADER_VERSION: usize = 24;
    /// `Max Table Entries`.
    pub const MAX_TABLE_ENTRIES: usize = 28;
    /// `Block Size`.
    pub const BLOCK_SIZE: usize = 32;
    /// `Checksum`.
    pub const CHECKSUM: usize = 36;
}

/// The fields of a dynamic disk header that a disk without a parent uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamicHeader {
    /// `cxsparse` in a valid header.
    pub cookie: [u8; 8],
    /// Offset of a next structure; unused, [`NO_NEXT_OFFSET`].
    pub data_offset: u64,
    /// Offset of the block allocation table.
    pub table_offset: u64,
    /// The header version.
    pub header_version: u32,
    /// Entries in the block allocation table.
    pub max_table_entries: u32,
    /// Bytes of guest data per block (a power of two).
    pub block_size: u32,
    /// The stored checksum.
    pub checksum: u32,
}

/// The checksum a 1024-byte header should carry: that of its bytes with
/// the checksum field taken as zero.
pub fn computed_checksum(raw: &[u8; HEADER_SIZE]) -> u32 {
    let mut copy = *raw;
    copy[offset::CHECKSUM..offset::CHECKSUM + 4].fill(0);
    vhd_checksum(&copy)
}

impl DynamicHeader {
    /// The header qemu writes for a disk of `max_table_entries` blocks of
    /// `block_size` bytes whose table is at `table_offset`.
    pub fn new(table_offset: u64, max_table_entries: u32, block_size: u32) -> DynamicHeader {
        DynamicHeader {
            cookie: *HEADER_COOKIE,
            data_offset: NO_NEXT_OFFSET,
            table_offset,
            header_version: HEADER_VERSION,
            max_table_entries,
            block_size,
            checksum: 0,
        }
    }

    /// Decodes a header; any bytes decode, validity is the caller's call.
    pub fn from_bytes(raw: &[u8; HEADER_SIZE]) -> DynamicHeader {
        let mut cookie = [0u8; 8];
        cookie.copy_from_slice(&raw[..8]);
        DynamicHeader {
            cookie,
            data_offset: be64(raw, offset::DATA_OFFSET),
            table_offset: be64(raw, offset::TABLE_OFFSET),
            header_version: be32(raw, offset::HEADER_VERSION),
            max_table_entries: be32(raw, offset::MAX_TABLE_ENTRIES),
            block_size: be32(raw, offset::BLOCK_SIZE),
            checksum: be32(raw, offset::CHECKSUM),
        }
    }

    /// Encodes the header with the checksum field as stored in `self`.
    pub fn to_bytes(&self) -> [u8; HEADER_SIZE] {
        let mut b = [0u8; HEADER_SIZE];
        b[offset::COOKIE..offset::COOKIE + 8].copy_from_slice(&self.cookie);
        b[offset::DATA_OFFSET..offset::DATA_OFFSET + 8]
            .copy_from_slice(&self.data_offset.to_be_bytes());
        b[offset::TABLE_OFFSET..offset::TABLE_OFFSET + 8]
            .copy_from_slice(&self.table_offset.to_be_bytes());
        b[offset::HEADER_VERSION..offset::HEADER_VERSION + 4]
            .copy_from_slice(&self.header_version.to_be_bytes());
        b[offset::MAX_TABLE_ENTRIES..offset::MAX_TABLE_ENTRIES + 4]
            .copy_from_slice(&self.max_table_entries.to_be_bytes());
        b[offset::BLOCK_SIZE..offset::BLOCK_SIZE + 4]
            .copy_from_slice(&self.block_size.to_be_bytes());
        b[offset::CHECKSUM..offset::CHECKSUM + 4].copy_from_slice(&self.checksum.to_be_bytes());
        b
    }

    /// Encodes the header with its checksum computed, as it is written.
    pub fn to_bytes_with_checksum(&self) -> [u8; HEADER_SIZE] {
        let mut h = self.clone();
        h.checksum = 0;
        h.checksum = vhd_checksum(&h.to_bytes());
        h.to_bytes()
    }

    /// Whether the cookie is `cxsparse`.
    pub fn has_valid_cookie(&self) -> bool {
        &self.cookie == HEADER_COOKIE
    }

    /// Whether the block size is one qemu can use: a power of two of at
    /// least one sector.
    pub fn has_valid_block_size(&self) -> bool {
        self.block_size.is_power_of_two() && self.block_size >= 512
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The header qemu-img 10.0.2 wrote for `create -f vpc x 1G`.
    fn qemu_1g() -> [u8; HEADER_SIZE] {
        let mut b = [0u8; HEADER_SIZE];
        let head: &[u8] = &[
            b'c', b'x', b's', b'p', b'a', b'r', b's', b'e', // cookie
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // data offset
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x06, 0x00, // table offset
            0x00, 0x01, 0x00, 0x00, // header version
            0x00, 0x00, 0x02, 0x01, // max table entries
            0x00, 0x20, 0x00, 0x00, // block size
            0xff, 0xff, 0xf4, 0x74, // checksum
        ];
        b[..head.len()].copy_from_slice(head);
        b
    }

    #[test]
    fn builds_what_qemu_writes() {
        let h = DynamicHeader::new(0x600, 0x201, DEFAULT_BLOCK_SIZE);
        assert_eq!(h.to_bytes_with_checksum(), qemu_1g());
    }

    #[test]
    fn decodes_and_checks() {
        let raw = qemu_1g();
        let h = DynamicHeader::from_bytes(&raw);
        assert!(h.has_valid_cookie());
        assert!(h.has_valid_block_size());
        assert_eq!(h.checksum, computed_checksum(&raw));
        assert_eq!(h.to_bytes(), raw);
        let odd = DynamicHeader { block_size: 3, ..h };
        assert!(!odd.has_valid_block_size());
    }
}
