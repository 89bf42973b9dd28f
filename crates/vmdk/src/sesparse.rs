//! The headers of ESXi's seSparse extents (qemu's
//! `VMDKSESparseConstHeader` and `VMDKSESparseVolatileHeader`), which qemu
//! opens read-only after strict checks, and the meaning of their 64-bit
//! grain directory and grain table entries.
//!
//! Both headers are one sector of little-endian 64-bit fields followed by
//! zero padding. The format is not documented; qemu accepts only the one
//! variant it knows (4 KiB grains, 4096-entry tables), and so does instar,
//! with qemu's messages.

use crate::error::VmdkError;
use instar_core::bytes::le64;

/// `magic` of the constant header.
pub const CONST_HEADER_MAGIC: u64 = 0xcafe_babe;
/// `magic` of the volatile header.
pub const VOLATILE_HEADER_MAGIC: u64 = 0xcafe_cafe;
/// The only version qemu opens.
pub const VERSION: u64 = 0x0000_0002_0000_0001;
/// Sectors per grain qemu accepts.
pub const GRAIN_SIZE: u64 = 8;
/// Sectors per grain table qemu accepts.
pub const GRAIN_TABLE_SIZE: u64 = 64;
/// Bytes of each header.
pub const HEADER_SIZE: usize = 512;
/// Bytes of the constant header's fields before its padding.
const CONST_FIELDS: usize = 26 * 8;
/// Bytes of the volatile header's fields before its padding.
const VOLATILE_FIELDS: usize = 4 * 8;

/// The `i`-th little-endian 64-bit field (zero past the end of `b`).
fn u64_at(b: &[u8], i: usize) -> u64 {
    le64(b, i.saturating_mul(8))
}

/// The constant header, the fields qemu uses, in on-disk order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConstHeader {
    /// [`CONST_HEADER_MAGIC`].
    pub magic: u64,
    /// [`VERSION`].
    pub version: u64,
    /// Sectors the extent holds.
    pub capacity: u64,
    /// Sectors per grain.
    pub grain_size: u64,
    /// Sectors per grain table.
    pub grain_table_size: u64,
    /// Must be 0.
    pub flags: u64,
    /// Must be 0.
    pub reserved: [u64; 4],
    /// Sector of the volatile header.
    pub volatile_header_offset: u64,
    /// Sector of the grain directory.
    pub grain_dir_offset: u64,
    /// Sectors of the grain directory.
    pub grain_dir_size: u64,
    /// Sector of the first grain table.
    pub grain_tables_offset: u64,
    /// Sector of the first grain.
    pub grains_offset: u64,
}

impl ConstHeader {
    /// Reads and checks the header as qemu's `check_se_sparse_const_header`
    /// does, in its order and with its messages.
    pub fn parse(b: &[u8]) -> Result<ConstHeader, VmdkError> {
        let h = ConstHeader {
            magic: u64_at(b, 0),
            version: u64_at(b, 1),
            capacity: u64_at(b, 2),
            grain_size: u64_at(b, 3),
            grain_table_size: u64_at(b, 4),
            flags: u64_at(b, 5),
            reserved: [u64_at(b, 6), u64_at(b, 7), u64_at(b, 8), u64_at(b, 9)],
            volatile_header_offset: u64_at(b, 10),
            grain_dir_offset: u64_at(b, 16),
            grain_dir_size: u64_at(b, 17),
            grain_tables_offset: u64_at(b, 18),
            grains_offset: u64_at(b, 24),
        };
        let unsupported = |m: String| Err(VmdkError::SeSparse(m));
        if h.magic != CONST_HEADER_MAGIC {
            return unsupported(format!("Bad const header magic: 0x{:016x}", h.magic));
        }
        if h.version != VERSION {
            return unsupported(format!("Unsupported version: 0x{:016x}", h.version));
        }
        if h.grain_size != GRAIN_SIZE {
            return unsupported(format!("Unsupported grain size: {}", h.grain_size));
        }
        if h.grain_table_size != GRAIN_TABLE_SIZE {
            return unsupported(format!("Unsupported grain table size: {}", h.grain_table_size));
        }
        if h.flags != 0 {
            return unsupported(format!("Unsupported flags: 0x{:016x}", h.flags));
        }
        if h.reserved.iter().any(|&r| r != 0) {
            let [a, b, c, d] = h.reserved;
            return unsupported(format!(
                "Unsupported reserved bits: 0x{a:016x} 0x{b:016x} 0x{c:016x} 0x{d:016x}"
            ));
        }
        if b.get(CONST_FIELDS..HEADER_SIZE).is_some_and(|pad| pad.iter().any(|&x| x != 0)) {
            return unsupported("Unsupported non-zero const header padding".to_string());
        }
        Ok(h)
    }
}

/// Checks the volatile header as qemu's `check_se_sparse_volatile_header`
/// does.
pub fn check_volatile_header(b: &[u8]) -> Result<(), VmdkError> {
    let magic = u64_at(b, 0);
    if magic != VOLATILE_HEADER_MAGIC {
        return Err(VmdkError::SeSparse(format!("Bad volatile header magic: 0x{magic:016x}")));
    }
    if u64_at(b, 3) != 0 {
        return Err(VmdkError::SeSparse(
            "Image is dirty, Replaying journal not supported".to_string(),
        ));
    }
    if b.get(VOLATILE_FIELDS..HEADER_SIZE).is_some_and(|pad| pad.iter().any(|&x| x != 0)) {
        return Err(VmdkError::SeSparse(
            "Unsupported non-zero volatile header padding".to_string(),
        ));
    }
    Ok(())
}

/// What a grain directory entry says: no table, a table (its index), or
/// a value qemu refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirEntry {
    /// No grain table.
    None,
    /// The index of the grain table among the tables.
    Table(u64),
    /// Not an entry qemu understands.
    Invalid,
}

/// Reads a grain directory entry (top 32 bits `0x10000000` for a table).
pub fn dir_entry(v: u64) -> DirEntry {
    if v == 0 {
        DirEntry::None
    } else if v & 0xffff_ffff_0000_0000 != 0x1000_0000_0000_0000 {
        DirEntry::Invalid
    } else {
        DirEntry::Table(v & 0xffff_ffff)
    }
}

/// What a grain table entry says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrainEntry {
    /// Unallocated (reads from the parent).
    None,
    /// Unmapped or zero: reads as zeros.
    Zero,
    /// Allocated: the grain's index among the grains.
    Grain(u64),
    /// Not an entry qemu understands.
    Invalid,
}

/// Reads a grain table entry: the top nibble is the type; an allocated
/// grain's index is split across the other bits.
pub fn grain_entry(v: u64) -> GrainEntry {
    match v >> 60 {
        0 if v == 0 => GrainEntry::None,
        0 => GrainEntry::Invalid,
        1 | 2 => GrainEntry::Zero,
        3 => GrainEntry::Grain(
            ((v & 0x0fff_0000_0000_0000) >> 48) | ((v & 0x0000_ffff_ffff_ffff) << 12),
        ),
        _ => GrainEntry::Invalid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(fields: &[(usize, u64)]) -> Vec<u8> {
        let mut b = vec![0u8; HEADER_SIZE];
        for &(i, v) in fields {
            b[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
        }
        b
    }

    #[test]
    fn const_header_checks_in_qemu_order() {
        let good = [(0, CONST_HEADER_MAGIC), (1, VERSION), (3, 8), (4, 64)];
        assert!(ConstHeader::parse(&header(&good)).is_ok());
        let msg = |f: &[(usize, u64)]| ConstHeader::parse(&header(f)).unwrap_err().to_string();
        assert_eq!(msg(&[(0, 0x1_4457_4f43)]), "Bad const header magic: 0x0000000144574f43");
        assert_eq!(
            msg(&[(0, CONST_HEADER_MAGIC), (1, 2)]),
            "Unsupported version: 0x0000000000000002"
        );
        assert_eq!(msg(&[good[0], good[1], (3, 16)]), "Unsupported grain size: 16");
        let mut b = header(&good);
        b[300] = 1;
        assert_eq!(
            ConstHeader::parse(&b).unwrap_err().to_string(),
            "Unsupported non-zero const header padding"
        );
    }

    #[test]
    fn entries() {
        assert_eq!(dir_entry(0), DirEntry::None);
        assert_eq!(dir_entry(0x1000_0000_0000_0005), DirEntry::Table(5));
        assert_eq!(dir_entry(0x2000_0000_0000_0005), DirEntry::Invalid);
        assert_eq!(grain_entry(0), GrainEntry::None);
        assert_eq!(grain_entry(7), GrainEntry::Invalid);
        assert_eq!(grain_entry(0x2000_0000_0000_0000), GrainEntry::Zero);
        assert_eq!(grain_entry(0x3001_0000_0000_0002), GrainEntry::Grain(0x2001));
        assert_eq!(grain_entry(0xf000_0000_0000_0000), GrainEntry::Invalid);
        assert!(check_volatile_header(&header(&[(0, VOLATILE_HEADER_MAGIC)])).is_ok());
        assert_eq!(
            check_volatile_header(&header(&[(0, VOLATILE_HEADER_MAGIC), (3, 1)]))
                .unwrap_err()
                .to_string(),
            "Image is dirty, Replaying journal not supported"
        );
    }
}
