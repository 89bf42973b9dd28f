//! The internal snapshot table (`block/qcow2-snapshot.c`): read at open
//! (`qcow2_read_snapshots`), except by a check, which reads it itself
//! (`qcow2_check_read_snapshot_table`) so that a broken table fails the
//! check rather than the open. Both read the entries the same way
//! (`qcow2_do_read_snapshots` without repair).

use crate::header::Header;
use crate::tables::validate_table;
use instar_core::bytes::{be16, be32, be64, c_string};
use instar_core::error::strerror;
use instar_core::file::errno;
use instar_core::{ImageFile, SnapshotInfo};
use rustix::io::Errno;
use std::io;

/// Offset of `nb_snapshots` in the header, followed by `snapshots_offset`.
const NB_SNAPSHOTS_OFFSET: u64 = 60;
/// Most snapshots an image may hold (`QCOW_MAX_SNAPSHOTS`).
const MAX_SNAPSHOTS: u64 = 65536;
/// Size of a snapshot table entry's fixed part (`QCowSnapshotHeader`).
const ENTRY_HEADER_SIZE: u64 = 40;
/// Size of the extra data qemu knows (`QCowSnapshotExtraData`).
const KNOWN_EXTRA_SIZE: u64 = 24;
/// Extra data every version 3 entry needs (the large VM state size and
/// the disk size).
const V3_MIN_EXTRA_SIZE: u32 = 16;
/// Most extra data qemu accepts per entry (`QCOW_MAX_SNAPSHOT_EXTRA_DATA`).
const MAX_EXTRA_DATA: u32 = 1024;
/// Largest snapshot table qemu accepts (`QCOW_MAX_SNAPSHOTS_SIZE`).
const MAX_TABLE_SIZE: u64 = 1024 * MAX_SNAPSHOTS;

/// One snapshot table entry (`QCowSnapshot`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The snapshot's ID string.
    pub id: String,
    /// The snapshot's name.
    pub name: String,
    /// Offset of its L1 table.
    pub l1_offset: u64,
    /// Entries in its L1 table.
    pub l1_size: u32,
    /// Bytes of VM state saved with it (the 64-bit field of the extra
    /// data when present, else the 32-bit one).
    pub vm_state_size: u64,
    /// When it was taken: seconds since the epoch.
    pub date_sec: u32,
    /// ... and nanoseconds.
    pub date_nsec: u32,
    /// The guest clock then, in nanoseconds.
    pub vm_clock_nsec: u64,
    /// The disk size then (the image's size when the entry has none).
    pub disk_size: u64,
    /// The instruction count then (`u64::MAX` when the entry has none).
    pub icount: u64,
    /// Bytes of extra data its entry declares.
    pub extra_data_size: u32,
}

impl Snapshot {
    /// The snapshot as `info` and `snapshot -l` list it
    /// (`qcow2_snapshot_list`): no instruction count when the entry has
    /// none.
    pub fn info(&self) -> SnapshotInfo {
        SnapshotInfo {
            id: self.id.clone(),
            name: self.name.clone(),
            vm_state_size: self.vm_state_size,
            date_sec: self.date_sec,
            date_nsec: self.date_nsec,
            vm_clock_nsec: self.vm_clock_nsec,
            icount: (self.icount != u64::MAX).then_some(self.icount),
        }
    }
}

/// The snapshot table a check found.
#[derive(Debug, Default)]
pub struct SnapshotTable {
    /// Offset of the table.
    pub offset: u64,
    /// Bytes the table spans.
    pub size: u64,
    /// Its entries.
    pub snapshots: Vec<Snapshot>,
}

/// Why reading the snapshot table stopped the check.
#[derive(Debug)]
pub struct TableError {
    /// The error qemu-img reports (with any hint after a newline).
    pub reported: Option<String>,
    /// A plain line printed after the reported one.
    pub plain: Option<String>,
    /// The error the check fails with.
    pub error: io::Error,
}

/// qemu's check of the table's position made at a normal open, before
/// the table is read.
pub fn validate_position(h: &Header, cluster_size: u64) -> Result<(), String> {
    validate_table(
        h.snapshots_offset,
        u64::from(h.nb_snapshots),
        ENTRY_HEADER_SIZE,
        ENTRY_HEADER_SIZE * MAX_SNAPSHOTS,
        cluster_size,
        "Snapshot table",
    )
}

/// Reads the table the header points at, as a normal open does; the
/// error is qemu's message (with its hint after a newline).
pub fn read_table(file: &ImageFile, h: &Header) -> Result<SnapshotTable, String> {
    let disk_size = h.size / instar_core::bytes::SECTOR_SIZE * instar_core::bytes::SECTOR_SIZE;
    read_entries(file, h.snapshots_offset, u64::from(h.nb_snapshots), disk_size)
        .map_err(|(message, _)| message)
}

/// Reads the snapshot table the header points at, as a check does.
pub fn read_for_check(
    file: &ImageFile,
    cluster_size: u64,
    disk_size: u64,
) -> Result<SnapshotTable, TableError> {
    let mut pointer = [0u8; 12];
    // The header is always readable: reads past the end give zeros.
    file.read_at(NB_SNAPSHOTS_OFFSET, &mut pointer).map_err(|e| TableError {
        reported: None,
        plain: Some(format!(
            "ERROR failed to read the snapshot table pointer from the image header: {}",
            strerror(&e)
        )),
        error: e,
    })?;
    let count = u64::from(be32(&pointer, 0));
    let offset = be64(&pointer, 4);
    if let Err(message) = validate_table(
        offset,
        count,
        ENTRY_HEADER_SIZE,
        ENTRY_HEADER_SIZE * MAX_SNAPSHOTS,
        cluster_size,
        "snapshot table",
    ) {
        let too_large = message.ends_with("too large");
        let plain = (count > MAX_SNAPSHOTS).then(|| {
            format!(
                "You can force-remove all {} overhanging snapshots with qemu-img check -r all",
                count - MAX_SNAPSHOTS
            )
        });
        return Err(TableError {
            reported: Some(format!("ERROR {message}")),
            plain,
            error: errno(if too_large { Errno::FBIG } else { Errno::INVAL }),
        });
    }
    read_entries(file, offset, count, disk_size).map_err(|(message, error)| TableError {
        reported: Some(format!("ERROR failed to read the snapshot table: {message}")),
        plain: None,
        error,
    })
}

/// Reads `count` entries from `start` (`qcow2_do_read_snapshots` without
/// repair) of an image of `disk_size` bytes. The error carries qemu's
/// message and the errno it fails with. Memory stays bounded by qemu's
/// limits: each entry's variable parts are at most 64 KiB each and 1 KiB
/// of extra data, and the table at most 64 MiB.
fn read_entries(
    file: &ImageFile,
    start: u64,
    count: u64,
    disk_size: u64,
) -> Result<SnapshotTable, (String, io::Error)> {
    let mut table = SnapshotTable { offset: start, size: 0, snapshots: Vec::new() };
    if count == 0 {
        return Ok(table);
    }
    let read = |at: u64, len: u64| {
        file.read_vec(at, len)
            .map_err(|e| (format!("Failed to read snapshot table: {}", strerror(&e)), e))
    };
    let mut offset = start;
    let mut table_length: u64 = 0;
    for i in 0..count {
        table_length = table_length.div_ceil(8) * 8;
        offset = offset.div_ceil(8) * 8;
        let h = read(offset, ENTRY_HEADER_SIZE)?;
        offset += ENTRY_HEADER_SIZE;
        let l1_offset = be64(&h, 0);
        let l1_size = be32(&h, 8);
        let id_size = u64::from(be16(&h, 12));
        let name_size = u64::from(be16(&h, 14));
        let date_sec = be32(&h, 16);
        let date_nsec = be32(&h, 20);
        let vm_clock_nsec = be64(&h, 24);
        let vm_state_size_32 = be32(&h, 32);
        let extra_data_size = be32(&h, 36);
        if extra_data_size > MAX_EXTRA_DATA {
            return Err((
                format!(
                    "Too much extra metadata in snapshot table entry {i}\n\
                     You can force-remove this extra metadata with qemu-img check -r all"
                ),
                errno(Errno::FBIG),
            ));
        }
        let extra = u64::from(extra_data_size);
        let known = read(offset, extra.min(KNOWN_EXTRA_SIZE))?;
        offset += extra.min(KNOWN_EXTRA_SIZE);
        // Each field of the extra data counts only when the entry holds
        // all of it.
        let vm_state_size = if extra >= 8 { be64(&known, 0) } else { u64::from(vm_state_size_32) };
        let entry_disk_size = if extra >= 16 { be64(&known, 8) } else { disk_size };
        let icount = if extra >= 24 { be64(&known, 16) } else { u64::MAX };
        if extra > KNOWN_EXTRA_SIZE {
            read(offset, extra - KNOWN_EXTRA_SIZE)?;
            offset += extra - KNOWN_EXTRA_SIZE;
        }
        let id = c_string(&read(offset, id_size)?);
        offset += id_size;
        let name = c_string(&read(offset, name_size)?);
        offset += name_size;
        table_length += ENTRY_HEADER_SIZE + extra + id_size + name_size;
        if table_length > MAX_TABLE_SIZE || offset - start > i32::MAX as u64 {
            return Err((
                format!(
                    "Snapshot table is too big\n\
                     You can force-remove all {} overhanging snapshots with qemu-img check -r all",
                    count - i
                ),
                errno(Errno::FBIG),
            ));
        }
        table.snapshots.push(Snapshot {
            id,
            name,
            l1_offset,
            l1_size,
            vm_state_size,
            date_sec,
            date_nsec,
            vm_clock_nsec,
            disk_size: entry_disk_size,
            icount,
            extra_data_size,
        });
    }
    table.size = offset - start;
    Ok(table)
}

/// The indices of version 3 entries whose extra data is too short to hold
/// the fields version 3 requires.
pub fn incomplete_entries(table: &SnapshotTable, version: u32) -> Vec<usize> {
    if version < 3 {
        return Vec::new();
    }
    table
        .snapshots
        .iter()
        .enumerate()
        .filter(|(_, s)| s.extra_data_size < V3_MIN_EXTRA_SIZE)
        .map(|(i, _)| i)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(extra_data_size: u32) -> Snapshot {
        Snapshot {
            id: "1".into(),
            name: "s".into(),
            l1_offset: 0x50000,
            l1_size: 1,
            vm_state_size: 0,
            date_sec: 0,
            date_nsec: 0,
            vm_clock_nsec: 0,
            disk_size: 0,
            icount: u64::MAX,
            extra_data_size,
        }
    }

    #[test]
    fn version_3_entries_need_sixteen_bytes_of_extra_data() {
        let table = SnapshotTable {
            offset: 0x60000,
            size: 120,
            snapshots: vec![snapshot(16), snapshot(8), snapshot(0), snapshot(24)],
        };
        assert_eq!(incomplete_entries(&table, 3), vec![1, 2]);
        assert!(incomplete_entries(&table, 2).is_empty());
    }
}
