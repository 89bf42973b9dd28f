//! qcow2's internal snapshot table (`qcow2_do_read_snapshots`), read as
//! `check` reads it (`read_for_check`: the pointer at header offset 60,
//! qemu's bounds, entry by entry) and as an open reads it (`read_table`
//! after `validate_position`). The input is an image's start: a header
//! whose cluster size (clamped to qemu's range) aligns the table, and the
//! table wherever the header points (`fuzz/seeds.py` moves it to 512).
//! Every entry read is then listed as `info` and `snapshot -l` list it:
//! its JSON and its table row in each era of qemu's table (local dates,
//! byte-counted column widths, clocks and counts past `i64::MAX`).
#![no_main]

use instar_core::bytes::{be32, be64, padded};
use instar_core::info::snapshot_table;
use instar_core::{QemuDialect, QemuVersion};
use instar_qcow2::header::{Header, MAX_CLUSTER_BITS, MIN_CLUSTER_BITS};
use instar_qcow2::snapshot;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let head = padded(data, 0, 32);
    let cluster_bits = be32(&head, 20).clamp(MIN_CLUSTER_BITS, MAX_CLUSTER_BITS);
    let disk_size = be64(&head, 24);
    let file = instar_core::ImageFile::from_bytes("fuzz.qcow2", data.to_vec());
    match snapshot::read_for_check(&file, 1 << cluster_bits, disk_size) {
        Ok(table) => {
            let _ = snapshot::incomplete_entries(&table, 3);
            list(&table);
        }
        Err(e) => {
            let _ = (e.reported, e.plain, e.error.to_string());
        }
    }
    if let Ok(h) = Header::parse_fixed(data) {
        if snapshot::validate_position(&h, h.cluster_size()).is_ok() {
            if let Ok(table) = snapshot::read_table(&file, &h) {
                list(&table);
            }
        }
    }
});

/// The table as `snapshot -l` prints it in each era and as `info`'s JSON.
fn list(table: &snapshot::SnapshotTable) {
    let infos: Vec<_> = table.snapshots.iter().map(snapshot::Snapshot::info).collect();
    for (major, minor) in [(5, 2), (7, 2), (10, 0)] {
        let dialect = QemuDialect::new(QemuVersion::new(major, minor, 0));
        let _ = snapshot_table(&infos, dialect);
    }
    for sn in &infos {
        let _ = sn.to_json().to_qemu_pretty();
    }
}
