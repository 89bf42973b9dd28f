//! qcow2's internal snapshot table (`qcow2_do_read_snapshots`), read as
//! `check` reads it (`read_for_check`: the pointer at header offset 60,
//! qemu's bounds, entry by entry) and as an open reads it (`read_table`
//! after `validate_position`). The input is an image's start: a header
//! whose cluster size (clamped to qemu's range) aligns the table, and the
//! table wherever the header points (`fuzz/seeds.py` moves it to 512).
#![no_main]

use instar_core::bytes::{be32, be64, padded};
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
        }
        Err(e) => {
            let _ = (e.reported, e.plain, e.error.to_string());
        }
    }
    if let Ok(h) = Header::parse_fixed(data) {
        if snapshot::validate_position(&h, h.cluster_size()).is_ok() {
            let _ = snapshot::read_table(&file, &h);
        }
    }
});
