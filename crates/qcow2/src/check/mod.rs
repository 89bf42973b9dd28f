//! `check` for qcow2: qemu's consistency check (`qcow2_co_check_locked`,
//! `qcow2_check_refcounts` in `block/qcow2-refcount.c`), read-only.
//!
//! The check opens the image as `qemu-img check` does, reads the snapshot
//! table, then counts every reference the metadata makes to a host cluster
//! (header, L1 and L2 tables, data clusters, snapshot tables, refcount
//! structures, bitmaps) and compares the counts with the refcounts the
//! image records. Every inconsistency is reported with qemu's wording, in
//! qemu's order, and counted as a corruption or a leak exactly as qemu
//! counts it, so that the report, the messages and the exit code match
//! `qemu-img check` on clean and damaged images alike.

mod l1l2;
mod refcount;

use crate::bitmap;
use crate::open::Qcow2Image;
use crate::snapshot;
use crate::tables::{L1E_SIZE, QCOW_MAX_L1_SIZE, REFT_OFFSET_MASK, REFT_RESERVED_MASK};
use instar_core::dialect::QCOW2_CHECK_RESERVED_BITS;
use instar_core::error::strerror;
use instar_core::file::{eio, errno};
use instar_core::{CheckReport, ImageFile, Lines};
use refcount::{LookupError, RecordedRefcounts, RefcountArray};
use rustix::io::Errno;
use std::io;

/// The format name a report carries.
const FORMAT_NAME: &str = "qcow2";

/// Checks `image` (opened for a check, its backing chain opened by the
/// block layer) as `qemu-img check` does: the report holds the counters
/// and the lines qemu prints.
pub fn check(image: &Qcow2Image, lines: Lines) -> CheckReport {
    let mut report = CheckReport::new(image.file.name(), FORMAT_NAME).with_lines(lines);
    Checker::run(image, &mut report);
    report
}

/// The C library's `%#x`: `0x` before the hex digits, except for zero.
fn alt_hex(value: u64) -> String {
    if value == 0 {
        "0".to_string()
    } else {
        format!("{value:#x}")
    }
}

/// A check in progress: the image, the counts computed so far and the
/// report being filled.
struct Checker<'a> {
    file: &'a ImageFile,
    image: &'a Qcow2Image,
    report: &'a mut CheckReport,
    /// The references counted from the metadata (qemu's in-memory refcount
    /// table); its length is qemu's `nb_clusters`.
    refs: RefcountArray,
    /// The refcounts the image records.
    recorded: RecordedRefcounts<'a>,
    /// Whether qemu has already printed its one "Image is corrupt" notice.
    signaled_corruption: bool,
}

/// The outcome of a step: `Err` stops the whole check with that error, as
/// qemu's negative return values do.
type Step = Result<(), io::Error>;

impl<'a> Checker<'a> {
    /// Runs the check (`qcow2_co_check_locked` without repair) and fills
    /// `report`.
    fn run(image: &'a Qcow2Image, report: &'a mut CheckReport) {
        let file = &image.file;
        let cluster_size = image.cluster_size();
        let table = match snapshot::read_for_check(file, cluster_size, image.total_bytes()) {
            Ok(table) => table,
            Err(e) => {
                if let Some(line) = e.reported {
                    report.push_reported(line);
                }
                if let Some(line) = e.plain {
                    report.push_message(line);
                }
                report.check_errors += 1;
                report.failed = Some(strerror(&e.error));
                return;
            }
        };
        let incomplete = snapshot::incomplete_entries(&table, image.header.version);
        for i in &incomplete {
            report.push_message(format!("ERROR snapshot table entry {i} is incomplete"));
        }

        let nb_clusters = file.sector_len().div_ceil(cluster_size);
        if nb_clusters > i32::MAX as u64 {
            report.check_errors += 1;
            report.failed = Some(strerror(&errno(Errno::FBIG)));
            return;
        }
        report.total_clusters = image.total_bytes().div_ceil(cluster_size);
        let order = image.header.refcount_order;
        let Some(refs) = RefcountArray::new(order, nb_clusters) else {
            report.check_errors += 1;
            report.failed = Some(strerror(&errno(Errno::NOMEM)));
            return;
        };
        let recorded = RecordedRefcounts::new(&image.reftable, image.cluster_bits(), order);
        let mut checker =
            Checker { file, image, report, refs, recorded, signaled_corruption: false };
        if let Err(e) = checker.check_refcounts(&table) {
            checker.report.failed = Some(strerror(&e));
            return;
        }
        checker.report.corruptions += incomplete.len() as u64;
    }

    /// `qcow2_check_refcounts` without repair.
    fn check_refcounts(&mut self, table: &snapshot::SnapshotTable) -> Step {
        self.calculate_refcounts(table)?;
        let highest = self.compare_refcounts();
        self.check_oflag_copied()?;
        self.report.image_end_offset = (highest + 1) * self.image.cluster_size();
        Ok(())
    }

    /// Counts one more reference to every cluster that the `size` bytes at
    /// `offset` touch (`qcow2_inc_refcounts_imrt`). qemu computes in
    /// `int64_t`, so the same wrapping arithmetic is used here.
    #[allow(
        clippy::cast_possible_wrap,
        reason = "qemu's `int64_t offset, size` and `bdrv_getlength`'s int64_t: an offset or \
                  size of 2^63 or more reads negative, as in C; the cluster size is at most 2 MiB"
    )]
    fn inc_refcounts(&mut self, offset: u64, size: u64) -> Step {
        let (signed_offset, signed_size) = (offset as i64, size as i64);
        if signed_size <= 0 {
            return Ok(());
        }
        let cluster_size = self.image.cluster_size();
        let file_len = self.file.sector_len() as i64;
        // The last cluster may be partly past the end of the file, but no
        // reference may reach a whole cluster beyond it.
        if signed_offset.wrapping_add(signed_size).wrapping_sub(file_len) >= cluster_size as i64 {
            self.report.push_message(format!(
                "ERROR: counting reference for region exceeding the end of the file by one \
                 cluster or more: offset {offset:#x} size {size:#x}"
            ));
            self.report.corruptions += 1;
            return Ok(());
        }
        let mask = !(cluster_size - 1);
        let start = offset & mask;
        let last = offset.wrapping_add(size).wrapping_sub(1) & mask;
        let bits = self.image.cluster_bits();
        // Past the end of the file by less than a cluster: at most one
        // cluster beyond the array qemu starts with.
        let limit = self.file.sector_len().div_ceil(cluster_size) + 1;
        let mut cluster_offset = start;
        while cluster_offset <= last {
            let k = cluster_offset >> bits;
            if k >= self.refs.len() && (k >= limit || !self.refs.grow_to(k + 1)) {
                self.report.check_errors += 1;
                return Err(errno(Errno::NOMEM));
            }
            let count = self.refs.get(k);
            if count == self.refs.max() {
                self.report
                    .push_message(format!("ERROR: overflow cluster offset={cluster_offset:#x}"));
                self.report.push_message(
                    "Use qemu-img amend to increase the refcount entry width or qemu-img convert \
                     to create a clean copy if the image cannot be opened for writing",
                );
                self.report.corruptions += 1;
            } else {
                self.refs.set(k, count + 1);
            }
            match cluster_offset.checked_add(cluster_size) {
                Some(next) => cluster_offset = next,
                None => break,
            }
        }
        Ok(())
    }

    /// The refcount the image records for cluster `index`; an error when
    /// it cannot be read, after qemu's one-time corruption notice for an
    /// unaligned refcount block.
    fn recorded_refcount(&mut self, index: u64) -> Result<u64, io::Error> {
        match self.recorded.get(self.file, index) {
            Ok(count) => Ok(count),
            Err(LookupError::Io(e)) => Err(e),
            Err(LookupError::Unaligned { offset, index }) => {
                if !self.signaled_corruption {
                    self.report.push_message(format!(
                        "qcow2: Image is corrupt: Refblock offset {} unaligned (reftable index: {}); \
                         further non-fatal corruption events will be suppressed",
                        alt_hex(offset),
                        alt_hex(index)
                    ));
                    self.signaled_corruption = true;
                }
                Err(eio())
            }
        }
    }

    /// Builds the reference counts from all metadata (`calculate_refcounts`).
    fn calculate_refcounts(&mut self, table: &snapshot::SnapshotTable) -> Step {
        let cluster_size = self.image.cluster_size();
        // The header.
        self.inc_refcounts(0, cluster_size)?;
        // The active L1 table and everything it reaches.
        let l1_offset = self.image.header.l1_table_offset;
        self.check_refcounts_l1(l1_offset, self.image.l1_table.len() as u64, true)?;
        // Snapshots.
        if self.image.has_data_file && !table.snapshots.is_empty() {
            self.report.push_message(format!(
                "ERROR {} snapshots in image with data file",
                table.snapshots.len()
            ));
            self.report.corruptions += 1;
        }
        for sn in &table.snapshots {
            if sn.l1_offset & (cluster_size - 1) != 0 {
                self.report.push_message(format!(
                    "ERROR snapshot {} ({}) l1_offset={}: L1 table is not cluster aligned; \
                     snapshot table entry corrupted",
                    sn.id,
                    sn.name,
                    alt_hex(sn.l1_offset)
                ));
                self.report.corruptions += 1;
                continue;
            }
            if u64::from(sn.l1_size) > QCOW_MAX_L1_SIZE / L1E_SIZE {
                self.report.push_message(format!(
                    "ERROR snapshot {} ({}) l1_size={}: L1 table is too large; snapshot table \
                     entry corrupted",
                    sn.id,
                    sn.name,
                    alt_hex(u64::from(sn.l1_size))
                ));
                self.report.corruptions += 1;
                continue;
            }
            self.check_refcounts_l1(sn.l1_offset, u64::from(sn.l1_size), false)?;
        }
        self.inc_refcounts(table.offset, table.size)?;
        // The refcount table.
        let reftable_bytes = self.image.reftable.len() as u64 * 8;
        self.inc_refcounts(self.image.header.refcount_table_offset, reftable_bytes)?;
        // qemu counts a LUKS header here; an image with one does not open
        // for a check without its key, so instar never gets this far.
        self.count_bitmaps()?;
        self.check_refblocks()
    }

    /// Counts the bitmap directory, bitmap tables and bitmap data
    /// (`qcow2_check_bitmaps_refcounts`).
    fn count_bitmaps(&mut self) -> Step {
        let Some(ext) = self.image.bitmaps_ext else {
            return Ok(());
        };
        self.inc_refcounts(ext.bitmap_directory_offset, ext.bitmap_directory_size)?;
        // The directory loaded at open, which qemu's check loads again
        // with the same result.
        let list = &self.image.bitmaps;
        let cluster_size = self.image.cluster_size();
        for bm in list {
            self.inc_refcounts(bm.table_offset, u64::from(bm.table_size) * 8)?;
            let entries = match bitmap::load_table(self.file, bm, cluster_size) {
                Ok(entries) => entries,
                Err(e) => {
                    self.report.corruptions += 1;
                    return Err(e);
                }
            };
            for entry in entries {
                if !bitmap::table_entry_ok(entry, cluster_size) {
                    self.report.corruptions += 1;
                    continue;
                }
                let offset = bitmap::table_entry_offset(entry);
                if offset != 0 {
                    self.inc_refcounts(offset, cluster_size)?;
                }
            }
        }
        Ok(())
    }

    /// Checks the refcount table's entries and counts the refcount blocks
    /// (`check_refblocks`).
    fn check_refblocks(&mut self) -> Step {
        let cluster_size = self.image.cluster_size();
        for i in 0..self.image.reftable.len() {
            let entry = self.image.reftable[i];
            let checks_reserved = self.image.dialect.since(QCOW2_CHECK_RESERVED_BITS);
            // Before the reserved-bit check, the entry's low bits made the
            // block unaligned instead.
            let offset = if checks_reserved { entry & REFT_OFFSET_MASK } else { entry };
            let cluster = offset >> self.image.cluster_bits();
            if entry & REFT_RESERVED_MASK != 0 && checks_reserved {
                self.report
                    .push_message(format!("ERROR refcount table entry {i} has reserved bits set"));
                self.report.corruptions += 1;
                continue;
            }
            if offset & (cluster_size - 1) != 0 {
                self.report.push_message(format!(
                    "ERROR refcount block {i} is not cluster aligned; refcount table entry corrupted"
                ));
                self.report.corruptions += 1;
                continue;
            }
            if cluster >= self.refs.len() {
                self.report.corruptions += 1;
                self.report.push_message(format!("ERROR refcount block {i} is outside image"));
                continue;
            }
            if offset != 0 {
                self.inc_refcounts(offset, cluster_size)?;
                let count = self.refs.get(cluster);
                if count != 1 {
                    self.report.push_message(format!("ERROR refcount block {i} refcount={count}"));
                    self.report.corruptions += 1;
                }
            }
        }
        Ok(())
    }

    /// Compares the counted references with the recorded refcounts
    /// (`compare_refcounts`); returns the highest cluster in use.
    fn compare_refcounts(&mut self) -> u64 {
        let mut highest = 0;
        for i in 0..self.refs.len() {
            let recorded = match self.recorded_refcount(i) {
                Ok(count) => count,
                Err(e) => {
                    self.report.push_message(format!(
                        "Can't get refcount for cluster {i}: {}",
                        strerror(&e)
                    ));
                    self.report.check_errors += 1;
                    continue;
                }
            };
            let counted = self.refs.get(i);
            if recorded > 0 || counted > 0 {
                highest = i;
            }
            if recorded != counted {
                let kind = if recorded < counted { "ERROR" } else { "Leaked" };
                self.report.push_message(format!(
                    "{kind} cluster {i} refcount={recorded} reference={counted}"
                ));
                if recorded < counted {
                    self.report.corruptions += 1;
                } else {
                    self.report.leaks += 1;
                }
            }
        }
        highest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alt_hex_prints_zero_bare() {
        assert_eq!(alt_hex(0), "0");
        assert_eq!(alt_hex(0x10200), "0x10200");
    }
}
