//! vpc's block allocation table: scanned in chunks (`scan_bat`), then
//! `vpc_open`'s walk of it (where allocated blocks end, blocks past the
//! end of the file) and instar's structural check of every block it
//! points at. The input is the table's entry count (u32) and block size
//! (log2, u8, clamped to 9..=31), then the table, which a valid footer and
//! dynamic header put at offset 1536, and the blocks after it.
#![no_main]

use instar_vpc::dynamic_header::DynamicHeader;
use libfuzzer_sys::fuzz_target;

/// Where the targets put the table: after the footer and the header.
const TABLE_OFFSET: u64 = 1536;

fuzz_target!(|data: &[u8]| {
    let Some((entries, rest)) = instar_fuzz::take_u32(data) else { return };
    let Some((&bits, table)) = rest.split_first() else { return };
    let block_size = 1u32 << u32::from(bits).clamp(9, 31);
    let file = instar_core::ImageFile::from_bytes("fuzz.vpc", table.to_vec());
    let mut seen = 0u64;
    let past_end = instar_vpc::image::scan_bat(&file, 0, u64::from(entries), |i, _| {
        assert_eq!(i, seen, "entries come in order");
        seen += 1;
    });
    if let Ok(past_end) = past_end {
        assert_eq!(seen + past_end, u64::from(entries), "every entry is seen or past the end");
    }
    let size =
        (u64::from(entries) * u64::from(block_size)).min(instar_vpc::geometry::MAX_SECTORS * 512);
    let mut bytes = instar_fuzz::vpc_dynamic_footer(size).to_vec();
    bytes.extend_from_slice(
        &DynamicHeader::new(TABLE_OFFSET, entries, block_size).to_bytes_with_checksum(),
    );
    bytes.extend_from_slice(table);
    instar_fuzz::vpc_open_and_check(bytes);
});
