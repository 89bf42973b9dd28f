//! vhdx's region table (`vhdx_open_region_tables`): the 64 KiB table at
//! its place in an in-memory file, its entries registered against overlap
//! with the log's region and each other, the BAT and metadata regions
//! found; then the metadata the table points at. The input is the table
//! block; the target writes its CRC-32C, so that mutations reach past the
//! checksum (a wrong checksum is one comparison, covered by the open
//! targets).
#![no_main]

use instar_vhdx::bat::Region;
use instar_vhdx::header::{update_checksum, CHECKSUM_OFFSET, HEADER_SECTION_END};
use instar_vhdx::open::{open_region_table, parse_metadata};
use instar_vhdx::region_table::{REGION_TABLE_OFFSET, REGION_TABLE_SIZE};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut block = instar_core::bytes::padded(data, 0, REGION_TABLE_SIZE);
    update_checksum(&mut block, CHECKSUM_OFFSET);
    let mut bytes = vec![0u8; REGION_TABLE_OFFSET as usize];
    bytes.extend_from_slice(&block);
    let file = instar_core::ImageFile::from_bytes("fuzz.vhdx", bytes);
    // A new image's log: 1 MiB at 1 MiB.
    let mut regions = vec![Region::new(HEADER_SECTION_END, HEADER_SECTION_END)];
    match open_region_table(&file, &mut regions) {
        Ok((_bat, metadata)) => {
            let _ = parse_metadata(&file, &metadata);
        }
        Err(failure) => {
            let _ = instar_fuzz::render_error(&failure.into_error("fuzz.vhdx"));
        }
    }
});
