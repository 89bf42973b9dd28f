//! The region table (192 KiB into the file, with a copy at 256 KiB): a
//! 64 KiB block with a CRC-32C, listing where the BAT and the metadata
//! region live.

use crate::guid::Guid;
use crate::header::{update_checksum, CHECKSUM_OFFSET};
use instar_core::bytes::{le32, le64};

/// The region table qemu reads.
pub const REGION_TABLE_OFFSET: u64 = 192 * 1024;

/// The second copy, which qemu writes but never reads.
pub const REGION_TABLE2_OFFSET: u64 = 256 * 1024;

/// The block the region table checksum covers.
pub const REGION_TABLE_SIZE: usize = 64 * 1024;

/// `regi` in ASCII.
pub const REGION_SIGNATURE: u32 = u32::from_le_bytes(*b"regi");

/// The specification's limit on entries.
pub const MAX_ENTRIES: u32 = 2047;

/// Bytes of the table header.
pub const TABLE_HEADER_LEN: usize = 16;

/// Bytes of one entry.
pub const ENTRY_LEN: usize = 32;

/// Entry flag: a reader must understand this region to open the file.
pub const REGION_ENTRY_REQUIRED: u32 = 0x01;

/// One region: a GUID naming it, and where it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegionEntry {
    /// What the region is.
    pub guid: Guid,
    /// Where it starts, a multiple of 1 MiB.
    pub file_offset: u64,
    /// Its length in bytes, a multiple of 1 MiB.
    pub length: u32,
    /// Flags ([`REGION_ENTRY_REQUIRED`]).
    pub data_bits: u32,
}

impl RegionEntry {
    fn from_bytes(b: &[u8]) -> RegionEntry {
        RegionEntry {
            guid: Guid::from_bytes(b),
            file_offset: le64(b, 16),
            length: le32(b, 24),
            data_bits: le32(b, 28),
        }
    }

    fn write(&self, b: &mut [u8]) {
        b[0..16].copy_from_slice(&self.guid.0);
        b[16..24].copy_from_slice(&self.file_offset.to_le_bytes());
        b[24..28].copy_from_slice(&self.length.to_le_bytes());
        b[28..32].copy_from_slice(&self.data_bits.to_le_bytes());
    }
}

/// The table header fields, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegionTableHeader {
    /// `regi`.
    pub signature: u32,
    /// CRC-32C over the 64 KiB block.
    pub checksum: u32,
    /// Entries that follow.
    pub entry_count: u32,
}

impl RegionTableHeader {
    /// Reads the table header from the start of the block.
    pub fn from_bytes(b: &[u8]) -> RegionTableHeader {
        RegionTableHeader { signature: le32(b, 0), checksum: le32(b, 4), entry_count: le32(b, 8) }
    }
}

/// The `i`-th entry of a table block (the caller bounds `i` by the entry
/// count, which is at most [`MAX_ENTRIES`], so it stays inside the block).
pub fn entry(block: &[u8], i: usize) -> RegionEntry {
    RegionEntry::from_bytes(&block[TABLE_HEADER_LEN + i * ENTRY_LEN..])
}

/// A 64 KiB region table block listing `entries`, checksum included.
pub fn to_bytes(entries: &[RegionEntry]) -> Vec<u8> {
    let mut b = vec![0u8; REGION_TABLE_SIZE];
    b[0..4].copy_from_slice(&REGION_SIGNATURE.to_le_bytes());
    #[allow(
        clippy::cast_possible_truncation,
        reason = "more entries than the 64 KiB block holds fail the slicing below"
    )]
    let count = entries.len() as u32;
    b[8..12].copy_from_slice(&count.to_le_bytes());
    for (i, e) in entries.iter().enumerate() {
        let at = TABLE_HEADER_LEN + i * ENTRY_LEN;
        e.write(&mut b[at..at + ENTRY_LEN]);
    }
    update_checksum(&mut b, CHECKSUM_OFFSET);
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guid::{BAT_REGION, METADATA_REGION};
    use crate::header::checksum_is_valid;

    #[test]
    fn table_round_trips() {
        let bat =
            RegionEntry { guid: BAT_REGION, file_offset: 2 << 20, length: 1 << 20, data_bits: 0 };
        let md = RegionEntry { guid: METADATA_REGION, file_offset: 3 << 20, ..bat };
        let b = to_bytes(&[bat, md]);
        assert_eq!(&b[0..4], b"regi");
        assert_eq!(&b[8..12], &[2, 0, 0, 0]); // EntryCount
        assert_eq!(&b[16..32], &BAT_REGION.0);
        assert_eq!(&b[32..40], &(2u64 << 20).to_le_bytes()); // FileOffset
        assert_eq!(&b[40..44], &(1u32 << 20).to_le_bytes()); // Length
        assert!(checksum_is_valid(&b, 4));
        let h = RegionTableHeader::from_bytes(&b);
        assert_eq!(h.entry_count, 2);
        assert_eq!(entry(&b, 0), bat);
        assert_eq!(entry(&b, 1), md);
    }
}
