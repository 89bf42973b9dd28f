//! The metadata layout of a new sparse extent: where the redundant grain
//! directory, the grain directory, their grain tables and the first grain
//! go (qemu's `vmdk_init_extent`), and the bytes of the directories.
//!
//! The arithmetic is qemu's, including its C types: the grain count, the
//! table count and the table area are 32-bit values that wrap for extents
//! of 256 TiB and more (qemu-img then writes a header that describes no
//! tables at all), and everything else is 64-bit. Keeping the wrap is what
//! makes instar's file equal qemu's at every size qemu accepts.

use crate::sparse_header::{
    SparseHeader, CHECK_BYTES, COMPRESSION_DEFLATE, FLAG_COMPRESS, FLAG_MARKER, FLAG_NL_DETECT,
    FLAG_RGD, FLAG_ZERO_GRAIN,
};
use instar_core::bytes::{le32, le64};

/// Bytes per sector.
pub const SECTOR_SIZE: u64 = 512;
/// Sectors per grain qemu creates (64 KiB grains).
pub const GRANULARITY: u64 = 128;
/// Grain table entries per grain table qemu creates.
pub const GTES_PER_GT: u32 = 512;
/// Bytes of one grain table or directory entry.
pub const ENTRY_SIZE: u64 = 4;
/// Sector of the embedded descriptor in a new sparse extent.
pub const DESC_OFFSET: u64 = 1;
/// Sectors reserved for the embedded descriptor.
pub const DESC_SECTORS: u64 = 20;

/// Where everything goes in a new sparse extent of a given size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SparseLayout {
    /// Sectors the extent holds.
    pub capacity: u64,
    /// Grain tables (32-bit, as qemu counts them).
    pub gt_count: u32,
    /// Sectors per grain table.
    pub gt_sectors: u32,
    /// Sectors per grain directory.
    pub gd_sectors: u32,
    /// Sector of the redundant grain directory (its tables follow it).
    pub rgd_offset: u64,
    /// Sector of the grain directory (its tables follow it).
    pub gd_offset: u64,
    /// Sector of the first grain: the file's length in sectors.
    pub grain_offset: u64,
}

impl SparseLayout {
    /// The layout qemu computes for an extent of `bytes` bytes (a multiple
    /// of 512).
    pub fn new(bytes: u64) -> SparseLayout {
        let capacity = bytes / SECTOR_SIZE;
        // DIV_ROUND_UP in 64 bits, stored in a uint32_t.
        #[allow(clippy::cast_possible_truncation, reason = "qemu's `uint32_t grains`")]
        let grains = (capacity.wrapping_add(GRANULARITY - 1) / GRANULARITY) as u32;
        #[allow(clippy::cast_possible_truncation, reason = "constants: 512 * 4 / 512")]
        let gt_sectors = (u64::from(GTES_PER_GT) * ENTRY_SIZE).div_ceil(SECTOR_SIZE) as u32;
        // uint32_t arithmetic throughout.
        let gt_count = grains.wrapping_add(GTES_PER_GT - 1) / GTES_PER_GT;
        #[allow(clippy::cast_possible_truncation, reason = "a u32 * 4 / 512 fits a u32")]
        let gd_sectors = (u64::from(gt_count) * ENTRY_SIZE).div_ceil(SECTOR_SIZE) as u32;
        let tables = gt_sectors.wrapping_mul(gt_count);
        let rgd_offset = DESC_OFFSET + DESC_SECTORS;
        let gd_offset = rgd_offset + u64::from(gd_sectors) + u64::from(tables);
        let metadata_end = gd_offset + u64::from(gd_sectors) + u64::from(tables);
        let grain_offset = metadata_end.div_ceil(GRANULARITY) * GRANULARITY;
        SparseLayout {
            capacity,
            gt_count,
            gt_sectors,
            gd_sectors,
            rgd_offset,
            gd_offset,
            grain_offset,
        }
    }

    /// The header of the extent; `compress` for stream-optimized, and
    /// `zeroed_grain` for the zeroed-grain feature.
    pub fn header(&self, compress: bool, zeroed_grain: bool) -> SparseHeader {
        let version = if compress {
            3
        } else if zeroed_grain {
            2
        } else {
            1
        };
        let mut flags = FLAG_RGD | FLAG_NL_DETECT;
        if compress {
            flags |= FLAG_COMPRESS | FLAG_MARKER;
        }
        if zeroed_grain {
            flags |= FLAG_ZERO_GRAIN;
        }
        SparseHeader {
            version,
            flags,
            capacity: self.capacity,
            granularity: GRANULARITY,
            desc_offset: DESC_OFFSET,
            desc_size: DESC_SECTORS,
            num_gtes_per_gt: GTES_PER_GT,
            rgd_offset: self.rgd_offset,
            gd_offset: self.gd_offset,
            grain_offset: self.grain_offset,
            filler: 0,
            check_bytes: CHECK_BYTES,
            compress_algorithm: if compress { COMPRESSION_DEFLATE } else { 0 },
        }
    }

    /// Bytes of one grain directory.
    #[allow(clippy::cast_possible_truncation, reason = "the constant 512")]
    pub fn directory_len(&self) -> usize {
        self.gd_sectors as usize * SECTOR_SIZE as usize
    }

    /// The grain directory at sector `at` ([`Self::rgd_offset`] or
    /// [`Self::gd_offset`]): entry `i` points at the `i`-th of the tables
    /// that follow it (32-bit sector numbers, which wrap as qemu's do).
    pub fn directory(&self, at: u64) -> Vec<u8> {
        let mut buf = vec![0u8; self.directory_len()];
        #[allow(clippy::cast_possible_truncation, reason = "qemu's `uint32_t` sector numbers")]
        let mut table = (at + u64::from(self.gd_sectors)) as u32;
        #[allow(clippy::cast_possible_truncation, reason = "the constant 4")]
        let entry_size = ENTRY_SIZE as usize;
        for entry in buf.chunks_exact_mut(entry_size).take(self.gt_count as usize) {
            entry.copy_from_slice(&table.to_le_bytes());
            table = table.wrapping_add(self.gt_sectors);
        }
        buf
    }

    /// The length of the new extent file in bytes.
    pub fn file_len(&self) -> u64 {
        self.grain_offset * SECTOR_SIZE
    }
}

/// The `index`-th 32-bit little-endian entry of a table held in `bytes`;
/// entries beyond the bytes read as 0 (qemu reads past the end of a file
/// as zeros).
pub fn entry(bytes: &[u8], index: u64) -> u32 {
    let start = index.saturating_mul(ENTRY_SIZE);
    match usize::try_from(start) {
        Ok(s) if s.saturating_add(4) <= bytes.len() => le32(bytes, s),
        _ => 0,
    }
}

/// The `index`-th 64-bit little-endian entry of a table held in `bytes`
/// (seSparse tables); entries beyond the bytes read as 0.
pub fn entry64(bytes: &[u8], index: u64) -> u64 {
    let start = index.saturating_mul(8);
    match usize::try_from(start) {
        Ok(s) if s.saturating_add(8) <= bytes.len() => le64(bytes, s),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K: u64 = 1024;
    const M: u64 = 1024 * K;
    const G: u64 = 1024 * M;
    const T: u64 = 1024 * G;

    #[test]
    fn one_gib_matches_qemu() {
        let l = SparseLayout::new(G);
        assert_eq!(l.capacity, 0x20_0000);
        assert_eq!(l.gt_count, 32);
        assert_eq!(l.gd_sectors, 1);
        assert_eq!(l.rgd_offset, 21);
        assert_eq!(l.gd_offset, 150);
        assert_eq!(l.grain_offset, 384);
        assert_eq!(l.file_len(), 196_608);
    }

    #[test]
    fn file_lengths_measured_on_qemu_10_0_2() {
        // qemu-img create -f vmdk x SIZE; stat -c %s x
        for (size, len) in [
            (0, 65_536),
            (1024, 65_536),
            (M, 65_536),
            (5 * G, 720_896),
            (2 * T, 269_025_280),
            (2 * T + 512, 269_025_280),
            (4 * T, 537_985_024),
            (16 * T, 2_151_743_488),
            (100 * T, 13_448_052_736),
            // 2^32 grains: the 32-bit grain count wraps to 0.
            (256 * T, 65_536),
            (1024 * T, 65_536),
            // ROUND_UP(INT64_MAX, 512) as qemu passes it on.
            (1 << 63, 65_536),
        ] {
            assert_eq!(SparseLayout::new(size).file_len(), len, "size {size}");
        }
    }

    #[test]
    fn directories_point_at_their_tables() {
        let l = SparseLayout::new(64 * M);
        // 1024 grains, 2 tables of 4 sectors, 1 directory sector.
        assert_eq!((l.gt_count, l.gd_sectors, l.gd_offset), (2, 1, 30));
        let rgd = l.directory(l.rgd_offset);
        assert_eq!(rgd.len(), 512);
        assert_eq!(entry(&rgd, 0), 22);
        assert_eq!(entry(&rgd, 1), 26);
        assert_eq!(entry(&rgd, 2), 0);
        let gd = l.directory(l.gd_offset);
        assert_eq!(entry(&gd, 0), 31);
        assert_eq!(entry(&gd, 1), 35);
        assert_eq!(entry(&gd, 1 << 40), 0);
    }

    #[test]
    fn header_versions_and_flags() {
        let l = SparseLayout::new(M);
        assert_eq!((l.header(false, false).version, l.header(false, false).flags), (1, 3));
        assert_eq!((l.header(false, true).version, l.header(false, true).flags), (2, 7));
        let s = l.header(true, false);
        assert_eq!((s.version, s.flags, s.compress_algorithm), (3, 0x3_0003, 1));
    }
}
