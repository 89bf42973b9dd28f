//! vhdx's metadata region (`vhdx_parse_metadata`): the table (signature,
//! entry count, the five required items once each, no parent locator,
//! unknown required items refused) and the items it points at, read
//! relative to the region; then the BAT's shape computed from them as the
//! open does. The input is the region, at offset 0 of an in-memory file.
#![no_main]

use instar_vhdx::bat::BatGeometry;
use instar_vhdx::guid;
use instar_vhdx::open::parse_metadata;
use instar_vhdx::region_table::RegionEntry;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let file = instar_core::ImageFile::from_bytes("fuzz.vhdx", data.to_vec());
    let region = RegionEntry {
        guid: guid::METADATA_REGION,
        file_offset: 0,
        length: u32::try_from(data.len()).unwrap_or(u32::MAX),
        data_bits: 1,
    };
    match parse_metadata(&file, &region) {
        Ok(md) => {
            let g = BatGeometry::new(md.virtual_disk_size, md.block_size, md.logical_sector_size);
            let _ = g.table_bytes();
            let _ = g.index_of_block(g.data_blocks);
        }
        Err(e) => {
            let _ = instar_fuzz::render_error(&e.into_error("fuzz.vhdx"));
        }
    }
});
