//! qemu's check that a write does not land on the image's metadata
//! (`qcow2_check_metadata_overlap` with the default `cached` template):
//! the header cluster, the active L1 table, the refcount table, the
//! snapshot table, the snapshots' L1 tables, the active L2 tables and the
//! refcount blocks. A write that would overlap one is refused and the
//! image marked corrupt (`Preventing invalid write on metadata (overlaps
//! with ...)`): only a damaged image gets there.

use crate::tables::{L1E_OFFSET_MASK, L1E_SIZE, REFTABLE_ENTRY_SIZE, REFT_OFFSET_MASK};

/// The kinds of metadata, as qemu's `QCOW2_OL_*` bits.
pub const OL_MAIN_HEADER: u32 = 1 << 0;
/// The active L1 table.
pub const OL_ACTIVE_L1: u32 = 1 << 1;
/// The active L2 tables.
pub const OL_ACTIVE_L2: u32 = 1 << 2;
/// The refcount table.
pub const OL_REFCOUNT_TABLE: u32 = 1 << 3;
/// The refcount blocks.
pub const OL_REFCOUNT_BLOCK: u32 = 1 << 4;
/// The snapshot table.
pub const OL_SNAPSHOT_TABLE: u32 = 1 << 5;
/// The snapshots' L1 tables.
pub const OL_INACTIVE_L1: u32 = 1 << 6;

/// What the check knows besides the L1 and refcount tables: the
/// structures a convert does not move.
#[derive(Debug, Clone, Default)]
pub struct Fixed {
    /// The cluster size.
    pub cluster_size: u64,
    /// The snapshot table's offset and length.
    pub snapshot_table: (u64, u64),
    /// Each snapshot's L1 table: offset and entries.
    pub inactive_l1: Vec<(u64, u64)>,
}

/// The image's metadata as the check sees it at one moment.
pub struct Metadata<'a> {
    /// What does not change.
    pub fixed: &'a Fixed,
    /// The active L1 table and its offset.
    pub l1: &'a [u64],
    /// Where the active L1 table is.
    pub l1_offset: u64,
    /// The refcount table, to its last used entry.
    pub reftable: &'a [u64],
    /// Where the refcount table is, and its length in entries.
    pub reftable_offset: u64,
    /// The refcount table's length in entries.
    pub reftable_len: u64,
}

impl Metadata<'_> {
    /// The name qemu gives the first metadata `[offset, offset + size)`
    /// overlaps, the kinds in `ign` aside; `None` when it overlaps none.
    pub fn overlap(&self, ign: u32, offset: u64, size: u64) -> Option<&'static str> {
        if size == 0 {
            return None;
        }
        let cs = self.fixed.cluster_size;
        let chk = !ign;
        if chk & OL_MAIN_HEADER != 0 && offset < cs {
            return Some("qcow2_header");
        }
        let start = offset & !(cs - 1);
        let end = (offset + size).div_ceil(cs) * cs;
        let hits = |at: u64, len: u64| len > 0 && at < end && start < at.saturating_add(len);
        if chk & OL_ACTIVE_L1 != 0 && hits(self.l1_offset, self.l1.len() as u64 * L1E_SIZE) {
            return Some("active L1 table");
        }
        if chk & OL_REFCOUNT_TABLE != 0
            && hits(self.reftable_offset, self.reftable_len * REFTABLE_ENTRY_SIZE)
        {
            return Some("refcount table");
        }
        let (table, table_size) = self.fixed.snapshot_table;
        if chk & OL_SNAPSHOT_TABLE != 0 && hits(table, table_size) {
            return Some("snapshot table");
        }
        if chk & OL_INACTIVE_L1 != 0
            && self.fixed.inactive_l1.iter().any(|&(at, n)| hits(at, n * L1E_SIZE))
        {
            return Some("inactive L1 table");
        }
        if chk & OL_ACTIVE_L2 != 0
            && self.l1.iter().any(|&e| e & L1E_OFFSET_MASK != 0 && hits(e & L1E_OFFSET_MASK, cs))
        {
            return Some("active L2 table");
        }
        if chk & OL_REFCOUNT_BLOCK != 0
            && self
                .reftable
                .iter()
                .any(|&e| e & REFT_OFFSET_MASK != 0 && hits(e & REFT_OFFSET_MASK, cs))
        {
            return Some("refcount block");
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_on_metadata_are_named_as_qemu_names_them() {
        let fixed = Fixed { cluster_size: 65536, ..Fixed::default() };
        let l1 = [0x8000_0000_0004_0000u64];
        let reftable = [0x20000u64];
        let m = Metadata {
            fixed: &fixed,
            l1: &l1,
            l1_offset: 0x30000,
            reftable: &reftable,
            reftable_offset: 0x10000,
            reftable_len: 8192,
        };
        assert_eq!(m.overlap(0, 512, 1), Some("qcow2_header"));
        assert_eq!(m.overlap(0, 0x10000, 1), Some("refcount table"));
        assert_eq!(m.overlap(0, 0x2fff0, 8), Some("refcount block"));
        assert_eq!(m.overlap(0, 0x30008, 8), Some("active L1 table"));
        assert_eq!(m.overlap(0, 0x40000, 65536), Some("active L2 table"));
        assert_eq!(m.overlap(OL_ACTIVE_L2, 0x40000, 65536), None);
        assert_eq!(m.overlap(0, 0x50000, 65536), None);
    }
}
