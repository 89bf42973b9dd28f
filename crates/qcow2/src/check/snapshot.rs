//! The internal snapshot table as a check reads it
//! (`qcow2_check_read_snapshot_table` and, read-only,
//! `qcow2_do_read_snapshots`): qemu skips it at open in check mode and
//! reads it here, so a broken table fails the check rather than the open.

use super::file::{be16, be32, be64, c_string, efbig, einval, ImageFile};
use crate::tables::validate_table;
use instar_core::error::strerror;
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

/// One snapshot, as far as a check needs it.
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
    /// Bytes of extra data its entry declares.
    pub extra_data_size: u32,
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

/// Reads the snapshot table the header points at.
pub fn read_table(file: &ImageFile, cluster_size: u64) -> Result<SnapshotTable, TableError> {
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
            error: if too_large { efbig() } else { einval() },
        });
    }
    read_entries(file, offset, count).map_err(|(message, error)| TableError {
        reported: Some(format!("ERROR failed to read the snapshot table: {message}")),
        plain: None,
        error,
    })
}

/// Reads `count` entries from `start` (`qcow2_do_read_snapshots` without
/// repair). The error carries qemu's message and the errno it fails with.
fn read_entries(
    file: &ImageFile,
    start: u64,
    count: u64,
) -> Result<SnapshotTable, (String, io::Error)> {
    let mut table = SnapshotTable { offset: start, size: 0, snapshots: Vec::new() };
    if count == 0 {
        return Ok(table);
    }
    let read = |at: u64, len: u64| {
        file.read_vec(at, len as usize)
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
        let extra_data_size = be32(&h, 36);
        if extra_data_size > MAX_EXTRA_DATA {
            return Err((
                format!(
                    "Too much extra metadata in snapshot table entry {i}\n\
                     You can force-remove this extra metadata with qemu-img check -r all"
                ),
                efbig(),
            ));
        }
        let extra = u64::from(extra_data_size);
        read(offset, extra.min(KNOWN_EXTRA_SIZE))?;
        offset += extra.min(KNOWN_EXTRA_SIZE);
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
                efbig(),
            ));
        }
        table.snapshots.push(Snapshot { id, name, l1_offset, l1_size, extra_data_size });
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
