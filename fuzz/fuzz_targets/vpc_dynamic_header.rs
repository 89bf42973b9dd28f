//! vpc's dynamic disk header (the 1024-byte `cxsparse` header): its
//! fields written back and read again unchanged, then `vpc_open`'s checks
//! of it (cookie, block size, the BAT's bounds, where blocks end) and
//! instar's structural check, behind a valid dynamic footer whose size is
//! what the header's table covers. The input is the header, then what
//! follows it in the file (the BAT and blocks it points at).
#![no_main]

use instar_vpc::dynamic_header::{DynamicHeader, HEADER_SIZE};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut raw = [0u8; HEADER_SIZE];
    let n = data.len().min(HEADER_SIZE);
    raw[..n].copy_from_slice(&data[..n]);
    let header = DynamicHeader::from_bytes(&raw);
    assert_eq!(DynamicHeader::from_bytes(&header.to_bytes()), header, "fields survive a write");
    let size = u64::from(header.max_table_entries)
        .saturating_mul(u64::from(header.block_size))
        .min(instar_vpc::geometry::MAX_SECTORS * 512);
    let mut bytes = instar_fuzz::vpc_dynamic_footer(size).to_vec();
    bytes.extend_from_slice(data);
    instar_fuzz::vpc_open_and_check(bytes);
});
