//! The header of a hosted sparse extent (VMware's "KDMV" header, qemu's
//! `VMDK4Header`), and the older "COWD" header of ESX sparse extents
//! (qemu's `VMDK3Header`), which qemu still opens.
//!
//! Both sit at offset 0 of their file: a 4-byte big-endian magic, then
//! little-endian fields, packed.

use instar_core::bytes::{le16, le32, le64, padded};

/// `KDMV` read as a big-endian number (qemu's `VMDK4_MAGIC`).
pub const VMDK4_MAGIC: u32 = 0x4b44_4d56;
/// `COWD` read as a big-endian number (qemu's `VMDK3_MAGIC`).
pub const VMDK3_MAGIC: u32 = 0x434f_5744;

/// Newlines are checked for corruption by text-mode transfers.
pub const FLAG_NL_DETECT: u32 = 1 << 0;
/// A redundant grain directory is present (`rgd_offset` is valid).
pub const FLAG_RGD: u32 = 1 << 1;
/// Grain table entries may be 1, meaning "reads as zeros".
pub const FLAG_ZERO_GRAIN: u32 = 1 << 2;
/// Grains are compressed.
pub const FLAG_COMPRESS: u32 = 1 << 16;
/// Grains and metadata are preceded by markers (stream-optimized).
pub const FLAG_MARKER: u32 = 1 << 17;

/// `compressAlgorithm` value for deflate.
pub const COMPRESSION_DEFLATE: u16 = 1;

/// `gd_offset` value meaning "read the header from the footer".
pub const GD_AT_END: u64 = u64::MAX;

/// The bytes qemu writes to detect newline translation: `\n \r\n`.
pub const CHECK_BYTES: [u8; 4] = [0x0a, 0x20, 0x0d, 0x0a];

/// The size of the magic plus [`SparseHeader`] on disk.
pub const SPARSE_HEADER_SIZE: usize = 4 + SparseHeader::SIZE;

/// The fields after the magic of a hosted sparse extent, in on-disk order
/// (qemu's `VMDK4Header`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SparseHeader {
    /// Format version: 1, 2 with zeroed grains, 3 for stream-optimized.
    pub version: u32,
    /// `FLAG_*` bits.
    pub flags: u32,
    /// Sectors the extent holds.
    pub capacity: u64,
    /// Sectors per grain.
    pub granularity: u64,
    /// Sector of the embedded descriptor (0: none).
    pub desc_offset: u64,
    /// Sectors reserved for the embedded descriptor.
    pub desc_size: u64,
    /// Entries per grain table.
    pub num_gtes_per_gt: u32,
    /// Sector of the redundant grain directory.
    pub rgd_offset: u64,
    /// Sector of the grain directory, or [`GD_AT_END`].
    pub gd_offset: u64,
    /// Sector of the first grain: everything before it is metadata.
    pub grain_offset: u64,
    /// One unused byte.
    pub filler: u8,
    /// [`CHECK_BYTES`].
    pub check_bytes: [u8; 4],
    /// 0 or [`COMPRESSION_DEFLATE`].
    pub compress_algorithm: u16,
}

impl SparseHeader {
    /// The packed size of the fields after the magic.
    pub const SIZE: usize = 75;

    /// Reads the fields from the `SIZE` bytes that follow the magic.
    /// Missing bytes read as zeros, as qemu's reads past the end do.
    pub fn from_bytes(b: &[u8]) -> SparseHeader {
        let buf = padded(b, 0, Self::SIZE);
        let u32_at = |o: usize| le32(&buf, o);
        let u64_at = |o: usize| le64(&buf, o);
        SparseHeader {
            version: u32_at(0),
            flags: u32_at(4),
            capacity: u64_at(8),
            granularity: u64_at(16),
            desc_offset: u64_at(24),
            desc_size: u64_at(32),
            num_gtes_per_gt: u32_at(40),
            rgd_offset: u64_at(44),
            gd_offset: u64_at(52),
            grain_offset: u64_at(60),
            filler: buf[68],
            check_bytes: [buf[69], buf[70], buf[71], buf[72]],
            compress_algorithm: le16(&buf, 73),
        }
    }

    /// The magic and the fields, as written at offset 0 of the extent.
    pub fn to_bytes(&self) -> [u8; SPARSE_HEADER_SIZE] {
        let mut b = [0u8; SPARSE_HEADER_SIZE];
        b[0..4].copy_from_slice(&VMDK4_MAGIC.to_be_bytes());
        b[4..8].copy_from_slice(&self.version.to_le_bytes());
        b[8..12].copy_from_slice(&self.flags.to_le_bytes());
        b[12..20].copy_from_slice(&self.capacity.to_le_bytes());
        b[20..28].copy_from_slice(&self.granularity.to_le_bytes());
        b[28..36].copy_from_slice(&self.desc_offset.to_le_bytes());
        b[36..44].copy_from_slice(&self.desc_size.to_le_bytes());
        b[44..48].copy_from_slice(&self.num_gtes_per_gt.to_le_bytes());
        b[48..56].copy_from_slice(&self.rgd_offset.to_le_bytes());
        b[56..64].copy_from_slice(&self.gd_offset.to_le_bytes());
        b[64..72].copy_from_slice(&self.grain_offset.to_le_bytes());
        b[72] = self.filler;
        b[73..77].copy_from_slice(&self.check_bytes);
        b[77..79].copy_from_slice(&self.compress_algorithm.to_le_bytes());
        b
    }

    /// Whether grains are deflate-compressed (qemu's test for
    /// stream-optimized extents).
    pub fn compressed(&self) -> bool {
        self.compress_algorithm == COMPRESSION_DEFLATE
    }
}

/// The fields after the magic of an ESX sparse extent (qemu's
/// `VMDK3Header`), all 32-bit little-endian.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CowdHeader {
    /// Format version.
    pub version: u32,
    /// Flags.
    pub flags: u32,
    /// Sectors the extent holds.
    pub disk_sectors: u32,
    /// Sectors per grain.
    pub granularity: u32,
    /// Sector of the grain directory.
    pub l1dir_offset: u32,
    /// Entries in the grain directory.
    pub l1dir_size: u32,
}

impl CowdHeader {
    /// Bytes of the fields qemu reads after the magic (ten 32-bit fields).
    pub const SIZE: usize = 40;

    /// Grain table entries of a COWD extent (fixed by the format).
    pub const GT_ENTRIES: u32 = 4096;

    /// Reads the fields from the bytes that follow the magic; missing bytes
    /// read as zeros.
    pub fn from_bytes(b: &[u8]) -> CowdHeader {
        let u32_at = |o: usize| le32(b, o);
        CowdHeader {
            version: u32_at(0),
            flags: u32_at(4),
            disk_sectors: u32_at(8),
            granularity: u32_at(12),
            l1dir_offset: u32_at(16),
            l1dir_size: u32_at(20),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first 79 bytes qemu-img 10.0.2 writes for a 1 GiB image.
    fn qemu_1g_header() -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(b"KDMV"); // magic
        b.extend_from_slice(&1u32.to_le_bytes()); // version
        b.extend_from_slice(&3u32.to_le_bytes()); // flags: NL_DETECT | RGD
        b.extend_from_slice(&0x20_0000u64.to_le_bytes()); // capacity (sectors)
        b.extend_from_slice(&128u64.to_le_bytes()); // granularity
        b.extend_from_slice(&1u64.to_le_bytes()); // desc_offset
        b.extend_from_slice(&20u64.to_le_bytes()); // desc_size
        b.extend_from_slice(&512u32.to_le_bytes()); // num_gtes_per_gt
        b.extend_from_slice(&21u64.to_le_bytes()); // rgd_offset
        b.extend_from_slice(&150u64.to_le_bytes()); // gd_offset
        b.extend_from_slice(&384u64.to_le_bytes()); // grain_offset
        b.push(0); // filler
        b.extend_from_slice(&[0x0a, 0x20, 0x0d, 0x0a]); // check_bytes
        b.extend_from_slice(&0u16.to_le_bytes()); // compressAlgorithm
        b
    }

    #[test]
    fn round_trips_qemu_bytes() {
        let bytes = qemu_1g_header();
        assert_eq!(bytes.len(), SPARSE_HEADER_SIZE);
        let h = SparseHeader::from_bytes(&bytes[4..]);
        assert_eq!(h.capacity, 0x20_0000);
        assert_eq!(h.gd_offset, 150);
        assert_eq!(h.check_bytes, CHECK_BYTES);
        assert!(!h.compressed());
        assert_eq!(h.to_bytes().to_vec(), bytes);
    }

    #[test]
    fn short_input_reads_as_zeros() {
        let h = SparseHeader::from_bytes(&[1, 0, 0, 0]);
        assert_eq!(h.version, 1);
        assert_eq!(h.capacity, 0);
        let c = CowdHeader::from_bytes(&[0, 0, 0, 0, 2, 0]);
        assert_eq!(c.flags, 2);
        assert_eq!(c.l1dir_size, 0);
    }
}
