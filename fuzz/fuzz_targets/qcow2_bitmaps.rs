//! qcow2's persistent dirty bitmaps: the bitmap directory
//! (`bitmap_list_load`'s checks, [`parse_directory`]) and each bitmap's
//! table (`bitmap_table_load`, [`load_table`]) and bits (`load_bitmap_data`,
//! [`load_bits`], what `convert --bitmaps` copies: exactly the serialized
//! size, nothing set past the disk). The input is a 17-byte
//! prefix standing for the header extension and the header (`nb_bitmaps`
//! u32, `cluster_bits` u8 clamped to qemu's range, the disk size u64,
//! the directory size u32), then the directory at offset 0 of an
//! in-memory file made of the rest, which also holds the tables the
//! directory points at (`fuzz/seeds.py` relocates them so).
#![no_main]

use instar_qcow2::bitmap::{
    load_bits, load_table, parse_directory, serialized_size, table_entry_offset,
};
use instar_qcow2::header::{MAX_CLUSTER_BITS, MIN_CLUSTER_BITS};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((nb_bitmaps, rest)) = instar_fuzz::take_u32(data) else { return };
    let Some((&bits, rest)) = rest.split_first() else { return };
    let Some((disk_len, rest)) = instar_fuzz::take_u64(rest) else { return };
    let Some((dir_size, rest)) = instar_fuzz::take_u32(rest) else { return };
    let cluster_size = 1u64 << u32::from(bits).clamp(MIN_CLUSTER_BITS, MAX_CLUSTER_BITS);
    let dir = instar_core::bytes::padded(rest, 0, (dir_size as usize).min(rest.len() + 64));
    let Ok(list) = parse_directory(&dir, nb_bitmaps, cluster_size, disk_len) else { return };
    let file = instar_core::ImageFile::from_bytes("fuzz.qcow2", rest.to_vec());
    for bm in &list {
        if let Ok(table) = load_table(&file, bm, cluster_size) {
            for entry in table {
                let _ = table_entry_offset(entry);
            }
        }
        if let Ok(bits) = load_bits(&file, bm, cluster_size, disk_len) {
            let size = serialized_size(disk_len, bm.granularity_bits);
            assert_eq!(bits.len() as u64, size, "the serialized size");
            let nbits = ((disk_len - 1) >> bm.granularity_bits) + 1;
            for bit in nbits..size * 8 {
                let byte = bits[(bit / 8) as usize];
                assert_eq!(byte >> (bit % 8) & 1, 0, "no bit past the disk");
            }
        }
    }
});
