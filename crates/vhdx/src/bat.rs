//! The Block Allocation Table: one 64-bit entry per payload block (state
//! in the low 3 bits, file offset in the upper 44), with a sector bitmap
//! entry after every `chunk_ratio` payload entries. This module holds the
//! table's geometry, the entries of a new image, and qemu's consistency
//! rules for existing entries (`vhdx_check_bat_entries`).

/// Bytes per BAT entry.
pub const BAT_ENTRY_SIZE: u64 = 8;

/// Block state: never written; reads as zeros (or the parent's data).
pub const PAYLOAD_BLOCK_NOT_PRESENT: u64 = 0;
/// Block state: contents undefined; qemu reads zeros.
pub const PAYLOAD_BLOCK_UNDEFINED: u64 = 1;
/// Block state: reads as zeros; qemu's default for new images.
pub const PAYLOAD_BLOCK_ZERO: u64 = 2;
/// Block state: unmapped (trimmed); qemu reads zeros.
pub const PAYLOAD_BLOCK_UNMAPPED: u64 = 3;
/// Block state: unmapped, as drafts of the specification (0.95) spelled
/// it; qemu reads zeros.
pub const PAYLOAD_BLOCK_UNMAPPED_V095: u64 = 5;
/// Block state: the block is allocated at the entry's file offset.
pub const PAYLOAD_BLOCK_FULLY_PRESENT: u64 = 6;
/// Block state: some sectors are the block's, the others its parent's
/// (by the sector bitmap): a differencing image's state, which qemu
/// cannot read.
pub const PAYLOAD_BLOCK_PARTIALLY_PRESENT: u64 = 7;

/// The state bits of an entry.
pub const BAT_STATE_BIT_MASK: u64 = 0x07;
/// The file offset bits of an entry (a multiple of 1 MiB).
pub const BAT_FILE_OFFSET_MASK: u64 = 0xFFFF_FFFF_FFF0_0000;

/// The specification's bound on sectors per block, from which the chunk
/// ratio (payload blocks per sector bitmap block) follows.
pub const MAX_SECTORS_PER_BLOCK: u64 = 1 << 23;

/// Smallest and largest payload block sizes.
pub const BLOCK_SIZE_MIN: u32 = 1024 * 1024;
/// See [`BLOCK_SIZE_MIN`].
pub const BLOCK_SIZE_MAX: u32 = 256 * 1024 * 1024;

/// The shape of a BAT, computed as qemu computes it (in 32-bit unsigned
/// arithmetic where qemu uses it, so that odd sizes give qemu's answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatGeometry {
    /// Payload block size in bytes.
    pub block_size: u32,
    /// Payload blocks per sector bitmap block.
    pub chunk_ratio: u64,
    /// `log2(chunk_ratio)`.
    pub chunk_ratio_bits: u32,
    /// Payload blocks covering the virtual disk.
    pub data_blocks: u32,
    /// Entries in the table, bitmap entries included.
    pub entries: u32,
}

impl BatGeometry {
    /// The geometry for a disk of `virtual_size` bytes, `block_size`-byte
    /// blocks and `logical_sector_size`-byte sectors (qemu's
    /// `vhdx_calc_bat_entries` for a disk without a parent). The block size
    /// must not exceed `MAX_SECTORS_PER_BLOCK` sectors, which every valid
    /// image satisfies.
    pub fn new(virtual_size: u64, block_size: u32, logical_sector_size: u32) -> BatGeometry {
        let chunk_ratio =
            MAX_SECTORS_PER_BLOCK * u64::from(logical_sector_size) / u64::from(block_size.max(1));
        let chunk_ratio_bits = if chunk_ratio == 0 { 64 } else { chunk_ratio.trailing_zeros() };
        // qemu keeps the block count in a uint32_t.
        #[allow(clippy::cast_possible_truncation, reason = "qemu's `uint32_t data_blocks_cnt`")]
        let data_blocks = virtual_size.div_ceil(u64::from(block_size.max(1))) as u32;
        // For an empty disk `data_blocks - 1` wraps, as it does in qemu.
        let bitmaps = data_blocks.wrapping_sub(1).checked_shr(chunk_ratio_bits).unwrap_or(0);
        let entries = data_blocks.wrapping_add(bitmaps);
        BatGeometry { block_size, chunk_ratio, chunk_ratio_bits, data_blocks, entries }
    }

    /// The table index of payload block `block` (bitmap entries skipped).
    pub fn index_of_block(&self, block: u32) -> u64 {
        let b = u64::from(block);
        b + b.checked_shr(self.chunk_ratio_bits).unwrap_or(0)
    }

    /// The bytes the table needs, before rounding to its region.
    pub fn table_bytes(&self) -> u64 {
        u64::from(self.entries) * BAT_ENTRY_SIZE
    }
}

/// A region of the file that payload blocks must not overlap: the log,
/// the BAT and the metadata region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

impl Region {
    /// The region of `length` bytes at `start` (the end wraps as qemu's
    /// does for absurd offsets).
    pub fn new(start: u64, length: u64) -> Region {
        Region { start, end: start.wrapping_add(length) }
    }
}

/// qemu's `vhdx_region_check`: the message for the first registered
/// region (newest first) that `[start, start + length)` overlaps, if any.
pub fn region_overlap(regions: &[Region], start: u64, length: u64) -> Option<String> {
    let end = start.wrapping_add(length);
    regions.iter().rev().find(|r| !(start >= r.end || end <= r.start)).map(|r| {
        // qemu prints the other end with "%.0" precision, which prints
        // nothing for zero.
        let other_end = if r.end == 0 { String::new() } else { r.end.to_string() };
        format!("VHDX region {start}-{end} overlaps with region {}-{other_end}", r.start)
    })
}

/// The running state of qemu's `vhdx_check_bat_entries` over the entries
/// of a table, fed one entry at a time so that the table never has to be
/// held in memory whole.
#[derive(Debug)]
pub struct BatChecker<'a> {
    block_size: u32,
    chunk_ratio: u64,
    /// The guest disk size in bytes (`total_sectors * 512`).
    disk_bytes: u64,
    /// The image file length as qemu sees it (rounded up to 512).
    file_size: u64,
    regions: &'a [Region],
    payblocks: u64,
    /// Problems found, counted as qemu counts corruptions.
    pub errors: u64,
    /// qemu's `error_report` lines, without the program name.
    pub messages: Vec<String>,
}

impl<'a> BatChecker<'a> {
    /// A checker for a table of the given geometry.
    pub fn new(
        block_size: u32,
        chunk_ratio: u64,
        disk_bytes: u64,
        file_size: u64,
        regions: &'a [Region],
    ) -> Self {
        BatChecker {
            block_size,
            chunk_ratio,
            disk_bytes,
            file_size,
            regions,
            payblocks: chunk_ratio,
            errors: 0,
            messages: Vec::new(),
        }
    }

    /// Checks entry `i`. Returns `false` once an error is found when
    /// `stop_at_first` (the open-time check), as qemu stops there.
    pub fn visit(&mut self, i: u64, entry: u64, stop_at_first: bool) -> bool {
        if entry & BAT_STATE_BIT_MASK != PAYLOAD_BLOCK_FULLY_PRESENT {
            return true;
        }
        let bs = u64::from(self.block_size);
        let offset = entry & BAT_FILE_OFFSET_MASK;
        // The last block may lie partly past the end of the disk; qemu
        // computes the remainder in unsigned 64-bit arithmetic.
        let remaining = self.disk_bytes.wrapping_sub(i.wrapping_mul(bs));
        let block_length = bs.min(remaining);
        if offset > (i64::MAX as u64).wrapping_sub(bs) {
            self.messages.push(format!("VHDX BAT entry {i} offset overflow."));
            self.errors += 1;
            if stop_at_first {
                return false;
            }
        }
        if offset >= self.file_size {
            self.messages.push(format!(
                "VHDX BAT entry {i} start offset {offset} points after end of file ({}). \
                 Image has probably been truncated.",
                self.file_size
            ));
            self.errors += 1;
            if stop_at_first {
                return false;
            }
        } else if offset.wrapping_add(block_length) > self.file_size {
            self.messages.push(format!(
                "VHDX BAT entry {i} end offset {} points after end of file ({}). \
                 Image has probably been truncated.",
                offset.wrapping_add(block_length).wrapping_sub(1),
                self.file_size
            ));
            self.errors += 1;
            if stop_at_first {
                return false;
            }
        }
        // qemu counts down over fully present entries only; when the count
        // is spent, the entry is taken as a sector bitmap and not checked.
        if self.payblocks > 0 {
            self.payblocks -= 1;
            if let Some(m) = region_overlap(self.regions, offset, bs) {
                self.messages.push(m);
                self.errors += 1;
                if stop_at_first {
                    return false;
                }
            }
        } else {
            self.payblocks = self.chunk_ratio;
        }
        true
    }
}

/// The entry of payload block `block` in a new image, as qemu's
/// `vhdx_create_bat` fills it: fully present blocks point at their place in
/// the data area (rounded up to 1 MiB), zero and absent blocks carry no
/// offset (the field is reserved for them).
pub fn new_entry(state: u64, data_offset: u64, block: u32, block_size: u32) -> u64 {
    if state == PAYLOAD_BLOCK_FULLY_PRESENT {
        let offset = data_offset + u64::from(block) * u64::from(block_size);
        (offset.next_multiple_of(1 << 20) & BAT_FILE_OFFSET_MASK) | state
    } else {
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn geometry_matches_qemu() {
        let g = BatGeometry::new(1 << 30, 8 << 20, 512);
        assert_eq!((g.chunk_ratio, g.data_blocks, g.entries), (512, 128, 128));
        // 64 TiB in 1 MiB blocks: one bitmap entry per 4096 payload blocks.
        let g = BatGeometry::new(64 << 40, 1 << 20, 512);
        assert_eq!(g.chunk_ratio, 4096);
        assert_eq!(g.entries, (1 << 26) + (1 << 14) - 1);
        assert_eq!(g.index_of_block(4096), 4097);
        // An empty disk: qemu's unsigned wrap gives 8388607 entries.
        let g = BatGeometry::new(0, 8 << 20, 512);
        assert_eq!(g.entries, 8_388_607);
    }

    #[test]
    fn fixed_entries_point_into_the_data_area() {
        let full = PAYLOAD_BLOCK_FULLY_PRESENT;
        assert_eq!(new_entry(full, 8 * MIB, 0, 1 << 20), (8 * MIB) | 6);
        assert_eq!(new_entry(full, 8 * MIB, 3, 1 << 20), (11 * MIB) | 6);
        assert_eq!(new_entry(PAYLOAD_BLOCK_ZERO, 8 * MIB, 3, 1 << 20), 2);
    }

    #[test]
    fn checker_words_findings_as_qemu() {
        let regions = [Region::new(MIB, MIB), Region::new(2 * MIB, MIB), Region::new(3 * MIB, MIB)];
        let mut c = BatChecker::new(8 << 20, 512, 64 * MIB, 8 * MIB, &regions);
        assert!(c.visit(0, 2, true));
        assert!(!c.visit(0, (1 << 40) | 6, true));
        assert_eq!(
            c.messages[0],
            "VHDX BAT entry 0 start offset 1099511627776 points after end of file (8388608). \
             Image has probably been truncated."
        );
        let mut c = BatChecker::new(8 << 20, 512, 64 * MIB, 8 * MIB, &regions);
        assert!(c.visit(1, (3 * MIB) | 6, false));
        assert_eq!(c.errors, 2);
        assert_eq!(
            c.messages,
            vec![
                "VHDX BAT entry 1 end offset 11534335 points after end of file (8388608). \
                 Image has probably been truncated."
                    .to_string(),
                "VHDX region 3145728-11534336 overlaps with region 3145728-4194304".to_string(),
            ]
        );
    }
}
