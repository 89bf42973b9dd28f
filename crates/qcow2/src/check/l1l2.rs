//! The L1 and L2 tables during a check (`check_refcounts_l1`,
//! `check_refcounts_l2` and `check_oflag_copied`): the entries are
//! validated, the clusters they reference are counted, and the COPIED
//! flags are compared with the recorded refcounts.

use super::{Checker, Step};
use crate::tables::{
    COMPRESSED_SECTOR_SIZE, L1E_OFFSET_MASK, L1E_RESERVED_MASK, L2E_OFFSET_MASK,
    L2E_STD_RESERVED_MASK, L2_BITMAP_ALL_ALLOC, QCOW_OFLAG_COMPRESSED as OFLAG_COMPRESSED,
    QCOW_OFLAG_COPIED as OFLAG_COPIED, QCOW_OFLAG_ZERO as OFLAG_ZERO,
};
use instar_core::bytes::be64;
use instar_core::dialect::QCOW2_CHECK_RESERVED_BITS;
use instar_core::error::strerror;
use instar_core::ImageFile;

/// Bytes of an L1 table read at a time during a check.
const L1_CHUNK: usize = 1 << 20;

/// What an L2 entry describes (`qcow2_get_cluster_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterType {
    /// Not allocated.
    Unallocated,
    /// Reads as zeros, no cluster allocated.
    ZeroPlain,
    /// Reads as zeros, with a cluster allocated.
    ZeroAlloc,
    /// An allocated data cluster.
    Normal,
    /// Compressed data.
    Compressed,
}

/// The type of `entry` in an image with or without subclusters and an
/// external data file.
pub fn cluster_type(entry: u64, extended_l2: bool, has_data_file: bool) -> ClusterType {
    if entry & OFLAG_COMPRESSED != 0 {
        ClusterType::Compressed
    } else if entry & OFLAG_ZERO != 0 && !extended_l2 {
        if entry & L2E_OFFSET_MASK != 0 {
            ClusterType::ZeroAlloc
        } else {
            ClusterType::ZeroPlain
        }
    } else if entry & L2E_OFFSET_MASK == 0 {
        // Offset 0 is a real offset in an external data file, where every
        // cluster has refcount 1 and so carries COPIED.
        if has_data_file && entry & OFLAG_COPIED != 0 {
            ClusterType::Normal
        } else {
            ClusterType::Unallocated
        }
    } else {
        ClusterType::Normal
    }
}

/// Host offset and byte length of a compressed cluster's data
/// (`qcow2_parse_compressed_l2_entry`).
pub fn compressed_extent(entry: u64, cluster_bits: u32) -> (u64, u64) {
    let csize_shift = 62 - (cluster_bits - 8);
    let csize_mask = (1u64 << (cluster_bits - 8)) - 1;
    let offset_mask = (1u64 << csize_shift) - 1;
    let offset = entry & offset_mask;
    let sectors = ((entry >> csize_shift) & csize_mask) + 1;
    (offset, sectors * COMPRESSED_SECTOR_SIZE - (offset & (COMPRESSED_SECTOR_SIZE - 1)))
}

impl Checker<'_> {
    /// The entries of one L2 table, as a count for indexing tables in
    /// memory.
    #[allow(
        clippy::cast_possible_truncation,
        reason = "a cluster (at most 2 MiB, checked at open) / 8 or 16"
    )]
    fn l2_entries(&self) -> usize {
        self.image.l2_entries() as usize
    }

    /// Reads the L2 table at `offset`: one cluster of entries.
    fn read_l2(&self, offset: u64) -> Result<Vec<u8>, std::io::Error> {
        self.file.read_vec(offset, self.image.cluster_size())
    }

    /// Entry `i` of an L2 table and its subcluster bitmap (zero without
    /// extended L2 entries).
    fn l2_entry(&self, table: &[u8], i: usize) -> (u64, u64) {
        if self.image.extended_l2() {
            (be64(table, i * 16), be64(table, i * 16 + 8))
        } else {
            (be64(table, i * 8), 0)
        }
    }

    /// Counts an L1 table of `entries` entries at `offset`, its L2 tables
    /// and their clusters (`check_refcounts_l1`). `active` also gathers the
    /// allocation statistics.
    pub(super) fn check_refcounts_l1(&mut self, offset: u64, entries: u64, active: bool) -> Step {
        if entries == 0 {
            return Ok(());
        }
        self.inc_refcounts(offset, entries * 8)?;
        let cluster_size = self.image.cluster_size();
        if active {
            // qemu reads the active table again; it is the one the open
            // read, at the same offset and length, so instar walks that.
            let image = self.image;
            for &entry in &image.l1_table {
                self.check_l1_entry(entry, cluster_size, active)?;
            }
            return Ok(());
        }
        // qemu reads a snapshot's whole table at once; instar reads it a
        // chunk at a time (a second whole table beside the active one
        // would double the largest allocation of the check), after
        // making the request checks qemu's single read makes.
        let bytes = entries * 8;
        if let Err(e) = ImageFile::check_request(offset, bytes) {
            return self.l1_read_error(e);
        }
        // Bytes still to read, as a chunk length (at most L1_CHUNK).
        let chunk_len = |left: u64| usize::try_from(left).map_or(L1_CHUNK, |l| l.min(L1_CHUNK));
        let mut raw = vec![0u8; chunk_len(bytes)];
        let mut done = 0;
        while done < bytes {
            let n = chunk_len(bytes - done);
            let chunk = &mut raw[..n];
            if let Err(e) = self.file.read_at(offset + done, chunk) {
                return self.l1_read_error(e);
            }
            done += n as u64;
            for i in 0..n / 8 {
                let entry = be64(&raw, i * 8);
                self.check_l1_entry(entry, cluster_size, active)?;
            }
        }
        Ok(())
    }

    /// qemu's report of a failed read of an L1 table.
    fn l1_read_error(&mut self, e: std::io::Error) -> Step {
        self.report.push_message("ERROR: I/O error in check_refcounts_l1");
        self.report.check_errors += 1;
        Err(e)
    }

    /// One entry of an L1 table: its L2 table and what that references.
    fn check_l1_entry(&mut self, entry: u64, cluster_size: u64, active: bool) -> Step {
        if entry == 0 {
            return Ok(());
        }
        if entry & L1E_RESERVED_MASK != 0 && self.image.dialect.since(QCOW2_CHECK_RESERVED_BITS) {
            self.report
                .push_message(format!("ERROR found L1 entry with reserved bits set: {entry:x}"));
            self.report.corruptions += 1;
        }
        let l2_offset = entry & L1E_OFFSET_MASK;
        self.inc_refcounts(l2_offset, cluster_size)?;
        if l2_offset & (cluster_size - 1) != 0 {
            self.report.push_message(format!(
                "ERROR l2_offset={l2_offset:x}: Table is not cluster aligned; L1 entry corrupted"
            ));
            self.report.corruptions += 1;
        }
        self.check_refcounts_l2(l2_offset, active)
    }

    /// Validates the L2 table at `l2_offset` and counts the clusters it
    /// references (`check_refcounts_l2`).
    fn check_refcounts_l2(&mut self, l2_offset: u64, active: bool) -> Step {
        let table = match self.read_l2(l2_offset) {
            Ok(table) => table,
            Err(e) => {
                self.report.push_message("ERROR: I/O error in check_refcounts_l2");
                self.report.check_errors += 1;
                return Err(e);
            }
        };
        let cluster_size = self.image.cluster_size();
        let extended = self.image.extended_l2();
        let data_file = self.image.has_data_file;
        let mut next_contiguous: u64 = 0;
        for i in 0..self.l2_entries() {
            let (entry, bitmap) = self.l2_entry(&table, i);
            let kind = cluster_type(entry, extended, data_file);
            if kind != ClusterType::Compressed
                && entry & L2E_STD_RESERVED_MASK != 0
                && self.image.dialect.since(QCOW2_CHECK_RESERVED_BITS)
            {
                self.report.push_message(format!(
                    "ERROR found l2 entry with reserved bits set: {entry:x}"
                ));
                self.report.corruptions += 1;
            }
            match kind {
                ClusterType::Compressed => {
                    let (coffset, csize) = compressed_extent(entry, self.image.cluster_bits());
                    let mut entry = entry;
                    if entry & OFLAG_COPIED != 0 {
                        self.report.push_message(format!(
                            "ERROR: coffset=0x{coffset:x}: copied flag must never be set for \
                             compressed clusters"
                        ));
                        entry &= !OFLAG_COPIED;
                        self.report.corruptions += 1;
                    }
                    if data_file {
                        self.report.push_message(format!(
                            "ERROR compressed cluster {i} with data file, entry=0x{entry:x}"
                        ));
                        self.report.corruptions += 1;
                        continue;
                    }
                    if bitmap != 0 {
                        self.report.push_message(format!(
                            "ERROR compressed cluster {i} with non-zero subcluster allocation \
                             bitmap, entry=0x{entry:x}"
                        ));
                        self.report.corruptions += 1;
                        continue;
                    }
                    self.inc_refcounts(coffset, csize)?;
                    if active {
                        // Compressed clusters count as fragmented: they
                        // share sectors with their neighbours.
                        self.report.allocated_clusters += 1;
                        self.report.compressed_clusters += 1;
                        self.report.fragmented_clusters += 1;
                    }
                }
                ClusterType::ZeroAlloc | ClusterType::Normal => {
                    let offset = entry & L2E_OFFSET_MASK;
                    if (bitmap >> 32) & bitmap != 0 {
                        self.report.corruptions += 1;
                        self.report.push_message(format!(
                            "ERROR offset={offset:x}: Allocated cluster has corrupted subcluster \
                             allocation bitmap"
                        ));
                    }
                    if offset & (cluster_size - 1) != 0 {
                        self.report.corruptions += 1;
                        let contains_data = if extended {
                            bitmap & L2_BITMAP_ALL_ALLOC != 0
                        } else {
                            entry & OFLAG_ZERO == 0
                        };
                        let what = if contains_data { "Data" } else { "Preallocated" };
                        self.report.push_message(format!(
                            "ERROR offset={offset:x}: {what} cluster is not properly aligned; L2 \
                             entry corrupted."
                        ));
                    }
                    if active {
                        self.report.allocated_clusters += 1;
                        if next_contiguous != 0 && offset != next_contiguous {
                            self.report.fragmented_clusters += 1;
                        }
                        next_contiguous = offset + cluster_size;
                    }
                    if !data_file {
                        self.inc_refcounts(offset, cluster_size)?;
                    }
                }
                ClusterType::ZeroPlain => {}
                ClusterType::Unallocated => {
                    if bitmap & L2_BITMAP_ALL_ALLOC != 0 {
                        self.report.corruptions += 1;
                        self.report.push_message(
                            "ERROR: Unallocated cluster has non-zero subcluster allocation map",
                        );
                    }
                }
            }
        }
        Ok(())
    }

    /// Checks that COPIED is set exactly on the active L1 and L2 entries
    /// whose cluster has refcount 1 (`check_oflag_copied`). Unreadable
    /// refcounts are skipped silently: the comparison already reported them.
    pub(super) fn check_oflag_copied(&mut self) -> Step {
        let extended = self.image.extended_l2();
        let data_file = self.image.has_data_file;
        let bits = self.image.cluster_bits();
        for i in 0..self.image.l1_table.len() {
            let l1_entry = self.image.l1_table[i];
            let l2_offset = l1_entry & L1E_OFFSET_MASK;
            if l2_offset == 0 {
                continue;
            }
            let Ok(refcount) = self.recorded_refcount(l2_offset >> bits) else {
                continue;
            };
            if (refcount == 1) != (l1_entry & OFLAG_COPIED != 0) {
                self.report.corruptions += 1;
                self.report.push_message(format!(
                    "ERROR OFLAG_COPIED L2 cluster: l1_index={i} l1_entry={l1_entry:x} \
                     refcount={refcount}"
                ));
            }
            let table = match self.read_l2(l2_offset) {
                Ok(table) => table,
                Err(e) => {
                    self.report
                        .push_message(format!("ERROR: Could not read L2 table: {}", strerror(&e)));
                    self.report.check_errors += 1;
                    return Err(e);
                }
            };
            for j in 0..self.l2_entries() {
                let (entry, _) = self.l2_entry(&table, j);
                let kind = cluster_type(entry, extended, data_file);
                if kind != ClusterType::Normal && kind != ClusterType::ZeroAlloc {
                    continue;
                }
                let refcount = if data_file {
                    1
                } else {
                    match self.recorded_refcount((entry & L2E_OFFSET_MASK) >> bits) {
                        Ok(count) => count,
                        Err(_) => continue,
                    }
                };
                if (refcount == 1) != (entry & OFLAG_COPIED != 0) {
                    self.report.corruptions += 1;
                    self.report.push_message(format!(
                        "ERROR OFLAG_COPIED data cluster: l2_entry={entry:x} refcount={refcount}"
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_types_follow_qemu() {
        assert_eq!(cluster_type(0, false, false), ClusterType::Unallocated);
        assert_eq!(cluster_type(1, false, false), ClusterType::ZeroPlain);
        assert_eq!(cluster_type(0x5_0001, false, false), ClusterType::ZeroAlloc);
        assert_eq!(cluster_type(0x8000_0000_0005_0000, false, false), ClusterType::Normal);
        // With subclusters the zero flag is a reserved bit, not a type.
        assert_eq!(cluster_type(1, true, false), ClusterType::Unallocated);
        assert_eq!(cluster_type(OFLAG_COPIED, false, true), ClusterType::Normal);
        assert_eq!(cluster_type(OFLAG_COMPRESSED | 0x1234, false, false), ClusterType::Compressed);
    }

    #[test]
    fn compressed_extent_counts_sectors() {
        // 64 KiB clusters: csize_shift 54; two sectors at offset 0x50200.
        let entry = OFLAG_COMPRESSED | (1u64 << 54) | 0x50200;
        assert_eq!(compressed_extent(entry, 16), (0x50200, 1024));
        // Data starting mid-sector loses the part before it.
        let entry = OFLAG_COMPRESSED | 0x50210;
        assert_eq!(compressed_extent(entry, 16), (0x50210, 512 - 0x10));
    }
}
