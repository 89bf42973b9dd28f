//! The block allocation table (BAT) of a dynamic VHD: one big-endian 32-bit
//! entry per block of the virtual disk, holding the sector where the
//! block's bitmap starts (its data follows the bitmap), or
//! [`UNALLOCATED`] for a block never written.

use crate::geometry::SECTOR_SIZE;
use instar_core::bytes::be32;

/// Bytes per BAT entry.
pub const ENTRY_SIZE: u64 = 4;

/// The entry of a block that holds no data (reads as zeros).
pub const UNALLOCATED: u32 = 0xFFFF_FFFF;

/// Entries the BAT needs for a disk of `total_sectors` with blocks of
/// `block_size` bytes.
pub fn entries_for(total_sectors: u64, block_size: u32) -> u64 {
    total_sectors.div_ceil(u64::from(block_size) / SECTOR_SIZE)
}

/// Bytes the BAT of `entries` entries occupies: whole sectors.
pub fn table_bytes(entries: u64) -> u64 {
    (entries * ENTRY_SIZE).div_ceil(SECTOR_SIZE) * SECTOR_SIZE
}

/// Bytes of the sector bitmap in front of each block: one bit per sector,
/// in whole sectors.
pub fn bitmap_bytes(block_size: u32) -> u64 {
    (u64::from(block_size) / (8 * SECTOR_SIZE)).div_ceil(SECTOR_SIZE) * SECTOR_SIZE
}

/// An empty table of `entries` entries padded to whole sectors, as qemu
/// writes it: every byte 0xFF, every entry [`UNALLOCATED`].
#[allow(
    clippy::cast_possible_truncation,
    reason = "a new disk's table: at most 2040 GiB / 2 MiB entries of 4 bytes"
)]
pub fn empty_table(entries: u64) -> Vec<u8> {
    vec![0xFF; table_bytes(entries) as usize]
}

/// Decodes entry `index` of a table held in `bytes`.
#[allow(clippy::cast_possible_truncation, reason = "the constant 4")]
pub fn entry(bytes: &[u8], index: usize) -> u32 {
    be32(bytes, index.saturating_mul(ENTRY_SIZE as usize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_for_the_default_block() {
        let block = crate::dynamic_header::DEFAULT_BLOCK_SIZE;
        // 1G rounds to 2097648 sectors: 513 blocks of 2 MiB.
        assert_eq!(entries_for(2_097_648, block), 513);
        assert_eq!(table_bytes(513), 2560);
        assert_eq!(table_bytes(0), 0);
        assert_eq!(bitmap_bytes(block), 512);
        assert_eq!(bitmap_bytes(0x8000_0000), 524_288);
        assert_eq!(bitmap_bytes(512), 0);
    }

    #[test]
    fn empty_table_is_all_unallocated() {
        let t = empty_table(3);
        assert_eq!(t.len(), 512);
        assert_eq!(entry(&t, 2), UNALLOCATED);
    }
}
