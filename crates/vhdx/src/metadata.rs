//! The metadata region: a 64 KiB table of items (header and 32-byte
//! entries), then the items themselves. A virtual disk needs five: file
//! parameters (block size, fixed or not), virtual disk size, page 83 data
//! (the disk's identity), and the logical and physical sector sizes.

use crate::guid::{self, Guid};
use instar_core::bytes::{le16, le32, le64};

/// `metadata` in ASCII.
pub const METADATA_SIGNATURE: &[u8; 8] = b"metadata";

/// The table: a 32-byte header plus up to 2047 entries of 32 bytes.
pub const METADATA_TABLE_SIZE: usize = 64 * 1024;

/// Bytes of the table header and of each entry.
pub const METADATA_ENTRY_LEN: usize = 32;

/// Where items start, relative to the region.
pub const ITEMS_OFFSET: u32 = 64 * 1024;

/// The metadata region's length in new images ("more than enough").
pub const METADATA_REGION_LENGTH: u32 = 1024 * 1024;

/// Entry flag: a user item.
pub const META_FLAGS_IS_USER: u32 = 0x01;
/// Entry flag: describes the virtual disk rather than the file.
pub const META_FLAGS_IS_VIRTUAL_DISK: u32 = 0x02;
/// Entry flag: a reader must understand the item to open the file.
pub const META_FLAGS_IS_REQUIRED: u32 = 0x04;

/// File parameter flag: blocks stay allocated (a fixed image).
pub const PARAMS_LEAVE_BLOCKS_ALLOCATED: u32 = 0x01;
/// File parameter flag: a differencing image with a parent.
pub const PARAMS_HAS_PARENT: u32 = 0x02;

/// The sector size qemu gives new images (logical and physical).
pub const SECTOR_SIZE: u32 = 512;

/// The byte sizes of the five items qemu writes, in its order.
const ITEM_LENGTHS: [u32; 5] = [8, 8, 16, 4, 4];

/// One table entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetadataEntry {
    /// Which item.
    pub item_id: Guid,
    /// Where its data is, relative to the region (at least 64 KiB).
    pub offset: u32,
    /// Its length.
    pub length: u32,
    /// Flags (`META_FLAGS_*`).
    pub data_bits: u32,
}

impl MetadataEntry {
    /// Reads an entry from 32 bytes.
    pub fn from_bytes(b: &[u8]) -> MetadataEntry {
        MetadataEntry {
            item_id: Guid::from_bytes(b),
            offset: le32(b, 16),
            length: le32(b, 20),
            data_bits: le32(b, 24),
        }
    }
}

/// The table header fields that matter: the signature and entry count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetadataTableHeader {
    /// Whether the first 8 bytes read `metadata`.
    pub signature_ok: bool,
    /// Entries that follow.
    pub entry_count: u16,
}

impl MetadataTableHeader {
    /// Reads the header from the start of the table.
    pub fn from_bytes(b: &[u8]) -> MetadataTableHeader {
        MetadataTableHeader {
            signature_ok: &b[..8] == METADATA_SIGNATURE,
            entry_count: le16(b, 10),
        }
    }
}

/// What the items of a new image say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewMetadata {
    /// Payload block size.
    pub block_size: u32,
    /// Whether the image is fixed.
    pub fixed: bool,
    /// Virtual disk size in bytes.
    pub virtual_size: u64,
    /// The page 83 identity of the disk.
    pub page83: Guid,
}

impl NewMetadata {
    /// The 64 KiB table as qemu's `vhdx_create_new_metadata` writes it:
    /// five required entries whose items follow one another from 64 KiB.
    pub fn table_bytes(&self) -> Vec<u8> {
        let mut b = vec![0u8; METADATA_TABLE_SIZE];
        b[0..8].copy_from_slice(METADATA_SIGNATURE);
        #[allow(clippy::cast_possible_truncation, reason = "five entries")]
        let count = ITEM_LENGTHS.len() as u16;
        b[10..12].copy_from_slice(&count.to_le_bytes());
        let ids = [
            (guid::FILE_PARAMETERS, META_FLAGS_IS_REQUIRED),
            (guid::VIRTUAL_DISK_SIZE, META_FLAGS_IS_REQUIRED | META_FLAGS_IS_VIRTUAL_DISK),
            (guid::PAGE_83_DATA, META_FLAGS_IS_REQUIRED | META_FLAGS_IS_VIRTUAL_DISK),
            (guid::LOGICAL_SECTOR_SIZE, META_FLAGS_IS_REQUIRED | META_FLAGS_IS_VIRTUAL_DISK),
            (guid::PHYSICAL_SECTOR_SIZE, META_FLAGS_IS_REQUIRED | META_FLAGS_IS_VIRTUAL_DISK),
        ];
        let mut offset = ITEMS_OFFSET;
        for (i, ((id, flags), len)) in ids.iter().zip(ITEM_LENGTHS).enumerate() {
            let at = METADATA_ENTRY_LEN * (i + 1);
            b[at..at + 16].copy_from_slice(&id.0);
            b[at + 16..at + 20].copy_from_slice(&offset.to_le_bytes());
            b[at + 20..at + 24].copy_from_slice(&len.to_le_bytes());
            b[at + 24..at + 28].copy_from_slice(&flags.to_le_bytes());
            offset += len;
        }
        b
    }

    /// The items, back to back, as written at 64 KiB into the region.
    pub fn items_bytes(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(40);
        b.extend_from_slice(&self.block_size.to_le_bytes());
        let bits = if self.fixed { PARAMS_LEAVE_BLOCKS_ALLOCATED } else { 0 };
        b.extend_from_slice(&bits.to_le_bytes());
        b.extend_from_slice(&self.virtual_size.to_le_bytes());
        b.extend_from_slice(&self.page83.0);
        b.extend_from_slice(&SECTOR_SIZE.to_le_bytes());
        b.extend_from_slice(&SECTOR_SIZE.to_le_bytes());
        b
    }
}

/// Reads a little-endian `u32` item value.
pub fn item_u32(b: &[u8]) -> u32 {
    le32(b, 0)
}

/// Reads a little-endian `u64` item value.
pub fn item_u64(b: &[u8]) -> u64 {
    le64(b, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_table_lists_five_required_items() {
        let m = NewMetadata {
            block_size: 8 << 20,
            fixed: true,
            virtual_size: 1 << 30,
            page83: Guid([9; 16]),
        };
        let t = m.table_bytes();
        assert_eq!(&t[0..8], b"metadata");
        assert_eq!(MetadataTableHeader::from_bytes(&t).entry_count, 5);
        let e = |i: usize| MetadataEntry::from_bytes(&t[32 * (i + 1)..]);
        assert_eq!(e(0).item_id, guid::FILE_PARAMETERS);
        assert_eq!((e(0).offset, e(0).length, e(0).data_bits), (0x10000, 8, 4));
        assert_eq!((e(1).offset, e(1).length, e(1).data_bits), (0x10008, 8, 6));
        assert_eq!((e(2).offset, e(2).length, e(2).data_bits), (0x10010, 16, 6));
        assert_eq!((e(3).offset, e(3).length, e(3).data_bits), (0x10020, 4, 6));
        assert_eq!((e(4).offset, e(4).length, e(4).data_bits), (0x10024, 4, 6));
        let items = m.items_bytes();
        assert_eq!(items.len(), 40);
        assert_eq!(item_u32(&items[0..]), 8 << 20); // BlockSize
        assert_eq!(item_u32(&items[4..]), PARAMS_LEAVE_BLOCKS_ALLOCATED);
        assert_eq!(item_u64(&items[8..]), 1 << 30); // VirtualDiskSize
        assert_eq!(&items[16..32], &[9; 16]); // Page83Data
        assert_eq!(item_u32(&items[32..]), 512); // LogicalSectorSize
        assert_eq!(item_u32(&items[36..]), 512); // PhysicalSectorSize
    }
}
