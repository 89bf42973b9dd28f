//! The qcow2 metadata tables: L1 and L2 entries, refcount table entries,
//! and refcount blocks whose entries are 1 to 64 bits wide.
//!
//! Entries are big-endian. Refcounts narrower than a byte are packed with
//! the first entry in the least significant bits of a byte, as qemu packs
//! them (`get_refcount_ro0` .. `ro2` in `block/qcow2-refcount.c`).

/// Bits of an L1 entry that hold the L2 table offset.
pub const L1E_OFFSET_MASK: u64 = 0x00ff_ffff_ffff_fe00;
/// Bits of a standard L2 entry that hold the cluster offset.
pub const L2E_OFFSET_MASK: u64 = 0x00ff_ffff_ffff_fe00;
/// Bits of a refcount table entry that hold the refcount block offset.
pub const REFT_OFFSET_MASK: u64 = 0xffff_ffff_ffff_fe00;
/// Bit 63 of L1 and L2 entries: the cluster's refcount is exactly one.
pub const QCOW_OFLAG_COPIED: u64 = 1 << 63;
/// Bit 62 of L2 entries: the cluster is compressed.
pub const QCOW_OFLAG_COMPRESSED: u64 = 1 << 62;
/// Bit 0 of standard L2 entries: the cluster reads as zeros.
pub const QCOW_OFLAG_ZERO: u64 = 1;
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
            let mask = (((1u16 << bits) - 1) as u8) << shift;
            *byte = (*byte & !mask) | (((value as u8) << shift) & mask);
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

/// The big-endian 64-bit value at byte `at` of `buf`, 0 past its end.
pub fn read_be64(buf: &[u8], at: usize) -> u64 {
    match buf.get(at..at + 8) {
        Some(b) => u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
        None => 0,
    }
}

/// Stores `value` big-endian at byte `at` of `buf` (ignored past its end).
pub fn write_be64(buf: &mut [u8], at: usize, value: u64) {
    if let Some(b) = buf.get_mut(at..at + 8) {
        b.copy_from_slice(&value.to_be_bytes());
    }
}

/// Decodes a table of big-endian 64-bit entries (L1 or refcount table).
pub fn decode_table(bytes: &[u8]) -> Vec<u64> {
    bytes.chunks_exact(8).map(|c| read_be64(c, 0)).collect()
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
