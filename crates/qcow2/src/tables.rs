//! The qcow2 metadata tables: L1 and L2 entries, refcount table entries,
//! and refcount blocks whose entries are 1 to 64 bits wide.
//!
//! Entries are big-endian. Refcounts narrower than a byte are packed with
//! the first entry in the least significant bits of a byte, as qemu packs
//! them (`get_refcount_ro0` .. `ro2` in `block/qcow2-refcount.c`).

use instar_core::bytes::be64;
use instar_core::ImageFile;

/// Bits of an L1 entry that hold the L2 table offset.
pub const L1E_OFFSET_MASK: u64 = 0x00ff_ffff_ffff_fe00;
/// Bits of an L1 entry that must be zero (`L1E_RESERVED_MASK`).
pub const L1E_RESERVED_MASK: u64 = 0x7f00_0000_0000_01ff;
/// Bits of a standard L2 entry that hold the cluster offset.
pub const L2E_OFFSET_MASK: u64 = 0x00ff_ffff_ffff_fe00;
/// Bits of a standard L2 entry that must be zero (`L2E_STD_RESERVED_MASK`).
pub const L2E_STD_RESERVED_MASK: u64 = 0x3f00_0000_0000_01fe;
/// Bits of a refcount table entry that must be zero (`REFT_RESERVED_MASK`).
pub const REFT_RESERVED_MASK: u64 = 0x1ff;
/// Bits of a refcount table entry that hold the refcount block offset.
pub const REFT_OFFSET_MASK: u64 = !REFT_RESERVED_MASK;
/// Bit 63 of L1 and L2 entries: the cluster's refcount is exactly one.
pub const QCOW_OFLAG_COPIED: u64 = 1 << 63;
/// Bit 62 of L2 entries: the cluster is compressed.
pub const QCOW_OFLAG_COMPRESSED: u64 = 1 << 62;
/// Bit 0 of standard L2 entries: the cluster reads as zeros.
pub const QCOW_OFLAG_ZERO: u64 = 1;
/// All 32 "allocated" bits of a subcluster bitmap.
pub const L2_BITMAP_ALL_ALLOC: u64 = 0xffff_ffff;
/// Compressed data is counted in 512-byte sectors.
pub const COMPRESSED_SECTOR_SIZE: u64 = 512;
/// Size of an L1 entry.
pub const L1E_SIZE: u64 = 8;
/// Size of a standard L2 entry.
pub const L2E_SIZE_NORMAL: u64 = 8;
/// Size of an extended L2 entry (entry plus subcluster bitmap).
pub const L2E_SIZE_EXTENDED: u64 = 16;
/// Size of a refcount table entry.
pub const REFTABLE_ENTRY_SIZE: u64 = 8;
/// Subclusters per cluster with extended L2 entries.
pub const SUBCLUSTERS_PER_CLUSTER: u64 = 32;
/// Largest L1 table qemu accepts, in bytes (`QCOW_MAX_L1_SIZE`).
pub const QCOW_MAX_L1_SIZE: u64 = 32 << 20;
/// Largest refcount table qemu accepts, in bytes (`QCOW_MAX_REFTABLE_SIZE`).
pub const QCOW_MAX_REFTABLE_SIZE: u64 = 8 << 20;
/// Highest host offset a cluster may start at (`QCOW_MAX_CLUSTER_OFFSET`).
pub const QCOW_MAX_CLUSTER_OFFSET: u64 = (1 << 56) - 1;

/// What an L2 entry (with its subcluster bitmap) says about one
/// subcluster: qemu's `QCow2SubclusterType`. Without extended L2 entries
/// a cluster is one subcluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubclusterType {
    /// Data at the entry's host offset (`QCOW2_SUBCLUSTER_NORMAL`).
    Normal,
    /// The whole cluster is compressed (`QCOW2_SUBCLUSTER_COMPRESSED`).
    Compressed,
    /// Reads as zeros, no host cluster (`QCOW2_SUBCLUSTER_ZERO_PLAIN`).
    ZeroPlain,
    /// Reads as zeros, a host cluster kept for it
    /// (`QCOW2_SUBCLUSTER_ZERO_ALLOC`).
    ZeroAlloc,
    /// Not allocated here: the backing file's, or zeros
    /// (`QCOW2_SUBCLUSTER_UNALLOCATED_PLAIN`).
    UnallocatedPlain,
    /// Not allocated here, in a cluster that has a host offset for other
    /// subclusters (`QCOW2_SUBCLUSTER_UNALLOCATED_ALLOC`).
    UnallocatedAlloc,
    /// The entry and its bitmap contradict each other
    /// (`QCOW2_SUBCLUSTER_INVALID`).
    Invalid,
}

impl SubclusterType {
    /// Whether the subcluster reads as zeros.
    pub const fn is_zero(self) -> bool {
        matches!(self, SubclusterType::ZeroPlain | SubclusterType::ZeroAlloc)
    }

    /// Whether the subcluster is not this image's (left to the backing
    /// file).
    pub const fn is_unallocated(self) -> bool {
        matches!(self, SubclusterType::UnallocatedPlain | SubclusterType::UnallocatedAlloc)
    }

    /// Whether the entry's host offset is meaningful for the subcluster:
    /// qemu checks and reports it (`NORMAL`, `ZERO_ALLOC`,
    /// `UNALLOCATED_ALLOC`).
    pub const fn has_host_cluster(self) -> bool {
        matches!(
            self,
            SubclusterType::Normal | SubclusterType::ZeroAlloc | SubclusterType::UnallocatedAlloc
        )
    }
}

/// How an L2 table's entries are read: the image properties that change
/// what an entry means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct L2Format {
    /// Entries carry a 64-bit subcluster bitmap (`extended_l2`).
    pub extended: bool,
    /// Guest data lives in an external data file, where host offset 0 is
    /// a real cluster when the entry has `QCOW_OFLAG_COPIED`.
    pub data_file: bool,
}

/// Bit `index` of the allocation half of a subcluster bitmap
/// (`QCOW_OFLAG_SUB_ALLOC`); the zero half is 32 bits higher.
const fn sub_alloc(index: u32) -> u64 {
    1 << index
}

/// The subclusters `from..to` of the allocation half of a bitmap
/// (`QCOW_OFLAG_SUB_ALLOC_RANGE`).
const fn sub_alloc_range(from: u32, to: u32) -> u64 {
    sub_alloc(to) - sub_alloc(from)
}

/// The low 32 bits of a bitmap expression, as qemu's `uint32_t` keeps it.
#[allow(clippy::cast_possible_truncation, reason = "qemu stores the value in a uint32_t")]
const fn low32(value: u64) -> u32 {
    value as u32
}

impl L2Format {
    /// The subcluster type of subcluster `sc` (below 32, or 0 without
    /// extended entries) of the cluster `entry` and `bitmap` describe
    /// (qemu's `qcow2_get_subcluster_type`). An invalid bitmap makes every
    /// subcluster invalid, whichever is asked about.
    pub fn subcluster_type(self, entry: u64, bitmap: u64, sc: u32) -> SubclusterType {
        let sc = sc % 32;
        if entry & QCOW_OFLAG_COMPRESSED != 0 {
            return SubclusterType::Compressed;
        }
        let offset = entry & L2E_OFFSET_MASK;
        if !self.extended {
            return if entry & QCOW_OFLAG_ZERO != 0 {
                if offset != 0 {
                    SubclusterType::ZeroAlloc
                } else {
                    SubclusterType::ZeroPlain
                }
            } else if offset != 0 || (self.data_file && entry & QCOW_OFLAG_COPIED != 0) {
                SubclusterType::Normal
            } else {
                SubclusterType::UnallocatedPlain
            };
        }
        let zero_bit = sub_alloc(sc) << 32;
        if offset != 0 || (self.data_file && entry & QCOW_OFLAG_COPIED != 0) {
            if (bitmap >> 32) & bitmap != 0 {
                SubclusterType::Invalid
            } else if bitmap & zero_bit != 0 {
                SubclusterType::ZeroAlloc
            } else if bitmap & sub_alloc(sc) != 0 {
                SubclusterType::Normal
            } else {
                SubclusterType::UnallocatedAlloc
            }
        } else if bitmap & L2_BITMAP_ALL_ALLOC != 0 {
            SubclusterType::Invalid
        } else if bitmap & zero_bit != 0 {
            SubclusterType::ZeroPlain
        } else {
            SubclusterType::UnallocatedPlain
        }
    }

    /// The type of subcluster `from` and how many subclusters from it on,
    /// within the cluster, share it (qemu's
    /// `qcow2_get_subcluster_range_type`; a compressed cluster counts as
    /// whole subclusters). `None` for an invalid entry.
    pub fn subcluster_run(
        self,
        entry: u64,
        bitmap: u64,
        from: u32,
    ) -> Option<(SubclusterType, u32)> {
        let from = from % 32;
        let kind = self.subcluster_type(entry, bitmap, from);
        if kind == SubclusterType::Invalid {
            return None;
        }
        if !self.extended {
            return Some((kind, 1 - from.min(1)));
        }
        let count = match kind {
            SubclusterType::Compressed => 32 - from,
            SubclusterType::Normal => {
                low32(bitmap | sub_alloc_range(0, from)).trailing_ones() - from
            }
            SubclusterType::ZeroPlain | SubclusterType::ZeroAlloc => {
                low32((bitmap | (sub_alloc_range(0, from) << 32)) >> 32).trailing_ones() - from
            }
            SubclusterType::UnallocatedPlain | SubclusterType::UnallocatedAlloc => {
                low32(((bitmap >> 32) | bitmap) & !sub_alloc_range(0, from)).trailing_zeros() - from
            }
            SubclusterType::Invalid => return None,
        };
        Some((kind, count))
    }
}

/// Where a compressed cluster's data sits: qemu's
/// `qcow2_parse_compressed_l2_entry`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompressedDescriptor {
    /// The host offset of the compressed stream.
    pub offset: u64,
    /// How many bytes to read: whole 512-byte sectors counted from the
    /// sector the stream starts in, less the stream's offset into it.
    pub len: u64,
}

impl CompressedDescriptor {
    /// Decodes the compressed L2 entry `entry` of an image with
    /// `cluster_bits` (9 to 21): the offset takes the low
    /// `62 - (cluster_bits - 8)` bits, the sector count less one the bits
    /// above it up to bit 61.
    pub fn from_entry(entry: u64, cluster_bits: u32) -> CompressedDescriptor {
        let size_shift = 62 - (cluster_bits.clamp(9, 21) - 8);
        let size_mask = (1u64 << (cluster_bits.clamp(9, 21) - 8)) - 1;
        let offset = entry & ((1u64 << size_shift) - 1);
        let sectors = ((entry >> size_shift) & size_mask) + 1;
        let len = sectors * COMPRESSED_SECTOR_SIZE - (offset & (COMPRESSED_SECTOR_SIZE - 1));
        CompressedDescriptor { offset, len }
    }
}

/// The refcount at `index` of a refcount block whose entries are
/// `1 << order` bits wide. Out-of-range indexes read as 0.
pub fn get_refcount(block: &[u8], order: u32, index: u64) -> u64 {
    let Ok(index) = usize::try_from(index) else { return 0 };
    match order {
        0..=2 => {
            let bits = 1usize << order;
            let per_byte = 8 / bits;
            let Some(&byte) = block.get(index / per_byte) else { return 0 };
            let shift = (index % per_byte) * bits;
            u64::from(byte >> shift) & ((1u64 << bits) - 1)
        }
        3..=6 => {
            let width = 1usize << (order - 3);
            let at = index * width;
            let Some(bytes) = block.get(at..at + width) else { return 0 };
            bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
        }
        _ => 0,
    }
}

/// Stores `value` at `index` of a refcount block of `1 << order`-bit
/// entries; bits of `value` beyond the width are dropped.
pub fn set_refcount(block: &mut [u8], order: u32, index: u64, value: u64) {
    let Ok(index) = usize::try_from(index) else { return };
    match order {
        0..=2 => {
            let bits = 1usize << order;
            let per_byte = 8 / bits;
            let Some(byte) = block.get_mut(index / per_byte) else { return };
            let shift = (index % per_byte) * bits;
            #[allow(
                clippy::cast_possible_truncation,
                reason = "`bits` <= 4, so the mask fits a byte; `value` is cut to `bits` bits, \
                          as the doc says (qemu's setter asserts that it fits)"
            )]
            let (mask, low) = ((((1u16 << bits) - 1) as u8) << shift, value as u8);
            *byte = (*byte & !mask) | ((low << shift) & mask);
        }
        3..=6 => {
            let width = 1usize << (order - 3);
            let at = index * width;
            let Some(bytes) = block.get_mut(at..at + width) else { return };
            let be = value.to_be_bytes();
            bytes.copy_from_slice(&be[8 - width..]);
        }
        _ => {}
    }
}

/// Bytes read at a time while loading a table, so that the bytes and the
/// decoded entries are never both held whole.
const TABLE_CHUNK: usize = 1 << 20;

/// Reads a table of `entries` big-endian 64-bit entries at `offset` (an L1
/// or refcount table, a bitmap table). The caller bounds `entries` by the
/// format's limit for the table; the request checks are the file's.
pub fn read_table(file: &ImageFile, offset: u64, entries: u64) -> std::io::Result<Vec<u64>> {
    let bytes = entries.saturating_mul(8);
    ImageFile::check_request(offset, bytes)?;
    // `check_request` bounds `bytes` to under 2 GiB.
    let len = usize::try_from(bytes).map_err(|_| instar_core::file::eio())?;
    let mut table = Vec::with_capacity(len / 8);
    let mut buf = vec![0u8; TABLE_CHUNK.min(len)];
    let mut done = 0u64;
    while done < bytes {
        #[allow(clippy::cast_possible_truncation, reason = "at most TABLE_CHUNK, a usize")]
        let n = (bytes - done).min(TABLE_CHUNK as u64) as usize;
        file.read_at(offset + done, &mut buf[..n])?;
        table.extend(buf[..n].chunks_exact(8).map(|c| be64(c, 0)));
        done += n as u64;
    }
    Ok(table)
}

/// Encodes a table of 64-bit entries big-endian.
pub fn encode_table(entries: &[u64]) -> Vec<u8> {
    entries.iter().flat_map(|e| e.to_be_bytes()).collect()
}

/// qemu's check that a table fits its limit and starts on a cluster
/// boundary (`qcow2_validate_table`).
pub fn validate_table(
    offset: u64,
    entries: u64,
    entry_len: u64,
    max_bytes: u64,
    cluster_size: u64,
    name: &str,
) -> Result<(), String> {
    if entries > max_bytes / entry_len {
        return Err(format!("{name} too large"));
    }
    // qemu works in int64_t, so the table must end below INT64_MAX.
    let limit = (i64::MAX as u64).wrapping_sub(entries.wrapping_mul(entry_len));
    if limit < offset || offset & (cluster_size - 1) != 0 {
        return Err(format!("{name} offset invalid"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn narrow_refcounts_pack_low_bits_first() {
        let mut b = [0u8; 2];
        set_refcount(&mut b, 0, 0, 1);
        set_refcount(&mut b, 0, 3, 1);
        set_refcount(&mut b, 0, 9, 1);
        assert_eq!(b, [0b0000_1001, 0b0000_0010]);
        assert_eq!(get_refcount(&b, 0, 3), 1);
        assert_eq!(get_refcount(&b, 0, 4), 0);
        let mut b = [0u8; 1];
        set_refcount(&mut b, 1, 1, 3);
        set_refcount(&mut b, 2, 1, 0xf);
        assert_eq!(b, [0xfc]);
        assert_eq!(get_refcount(&b, 1, 1), 3);
    }

    #[test]
    fn tables_are_read_in_chunks_and_past_the_end_as_zeros() {
        let mut bytes = vec![0u8; TABLE_CHUNK + 16];
        bytes[7] = 1;
        bytes[TABLE_CHUNK + 15] = 2;
        let file = ImageFile::from_bytes("t", bytes);
        let entries = (TABLE_CHUNK as u64 + 16) / 8 + 1;
        let table = read_table(&file, 0, entries).unwrap();
        assert_eq!(table.len() as u64, entries);
        let n = table.len();
        assert_eq!((table[0], table[n - 2], table[n - 1]), (1, 2, 0));
        assert!(read_table(&file, instar_core::file::MAX_LENGTH, 1).is_err());
    }

    #[test]
    fn l2_entries_classify_as_qemu_does() {
        use SubclusterType::*;
        let plain = L2Format { extended: false, data_file: false };
        assert_eq!(plain.subcluster_type(0, 0, 0), UnallocatedPlain);
        assert_eq!(plain.subcluster_type(1, 0, 0), ZeroPlain);
        assert_eq!(plain.subcluster_type(0x5_0000 | 1, 0, 0), ZeroAlloc);
        assert_eq!(plain.subcluster_type(0x5_0000, 0, 0), Normal);
        assert_eq!(plain.subcluster_type(QCOW_OFLAG_COMPRESSED, 0, 0), Compressed);
        // Offset 0 is a cluster of an external data file when COPIED.
        let data_file = L2Format { extended: false, data_file: true };
        assert_eq!(data_file.subcluster_type(QCOW_OFLAG_COPIED, 0, 0), Normal);
        assert_eq!(plain.subcluster_type(QCOW_OFLAG_COPIED, 0, 0), UnallocatedPlain);
        let ext = L2Format { extended: true, data_file: false };
        // Allocated 0-2, zero 3-4, unallocated after.
        let bitmap = (0b11_000 << 32) | 0b111;
        assert_eq!(ext.subcluster_run(0x5_0000, bitmap, 1), Some((Normal, 2)));
        assert_eq!(ext.subcluster_run(0x5_0000, bitmap, 3), Some((ZeroAlloc, 2)));
        assert_eq!(ext.subcluster_run(0x5_0000, bitmap, 5), Some((UnallocatedAlloc, 27)));
        assert_eq!(ext.subcluster_run(0, 0b11 << 32, 0), Some((ZeroPlain, 2)));
        assert_eq!(ext.subcluster_run(0, 0, 7), Some((UnallocatedPlain, 25)));
        // Bits both allocated and zero, or allocated without a cluster.
        assert_eq!(ext.subcluster_run(0x5_0000, (1 << 32) | 1, 9), None);
        assert_eq!(ext.subcluster_run(0, 1, 0), None);
        assert_eq!(ext.subcluster_run(QCOW_OFLAG_COMPRESSED, 0, 4), Some((Compressed, 28)));
    }

    #[test]
    fn compressed_descriptors_count_sectors_from_the_first() {
        // 64 KiB clusters: offset in bits 0-53, sectors less one above.
        let d = CompressedDescriptor::from_entry(QCOW_OFLAG_COMPRESSED | (2 << 54) | 0x5_0100, 16);
        assert_eq!(d, CompressedDescriptor { offset: 0x5_0100, len: 3 * 512 - 0x100 });
        // 512-byte clusters leave one size bit (bit 61).
        let d = CompressedDescriptor::from_entry((1 << 61) | 0x200, 9);
        assert_eq!(d, CompressedDescriptor { offset: 0x200, len: 1024 });
    }

    #[test]
    fn wide_refcounts_are_big_endian() {
        let mut b = [0u8; 16];
        set_refcount(&mut b, 4, 1, 0x0102);
        set_refcount(&mut b, 6, 1, 0x0a0b_0c0d_0e0f_1011);
        assert_eq!(&b[2..4], &[1, 2]);
        assert_eq!(&b[8..16], &[0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11]);
        assert_eq!(get_refcount(&b, 4, 1), 0x0102);
        assert_eq!(get_refcount(&b, 5, 0), 0x0000_0102);
        assert_eq!(get_refcount(&b, 3, 100), 0);
    }
}
