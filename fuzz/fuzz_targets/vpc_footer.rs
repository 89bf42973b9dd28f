//! vpc's footer (the 512-byte hard disk footer): its fields, checksum,
//! disk type and size rules, written back and read again unchanged; then
//! `vpc_open` of it as a fixed disk (the footer alone, at the end) and as
//! a dynamic one (at offset 0, the rest of the input after it), each with
//! the checksum as given and with the checksum made right.
#![no_main]

use instar_core::{QemuDialect, QemuVersion};
use instar_vpc::footer::{computed_checksum, Footer, FOOTER_SIZE};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut raw = [0u8; FOOTER_SIZE];
    let n = data.len().min(FOOTER_SIZE);
    raw[..n].copy_from_slice(&data[..n]);
    let footer = Footer::from_bytes(&raw);
    for dialect in [QemuDialect::DEFAULT, QemuDialect::new(QemuVersion::new(7, 2, 0))] {
        let _ = (footer.total_sectors(dialect), footer.size_follows_geometry(dialect));
    }
    let _ = footer.disk_type();
    assert_eq!(Footer::from_bytes(&footer.to_bytes()), footer, "fields survive a write");
    let fixed = footer.to_bytes_with_checksum();
    assert_eq!(computed_checksum(&fixed), Footer::from_bytes(&fixed).checksum);
    let rest = data.get(FOOTER_SIZE..).unwrap_or_default();
    for head in [raw, fixed] {
        instar_fuzz::vpc_open_and_check(head.to_vec());
        let mut dynamic = head.to_vec();
        dynamic.extend_from_slice(rest);
        instar_fuzz::vpc_open_and_check(dynamic);
    }
});
