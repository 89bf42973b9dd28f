//! vhdx's open as `instar info` runs it (`OpenFlags::INFO`), on an image
//! in memory (with any files it names beside it: `instar_fuzz::split_files`),
//! then `info` rendered in JSON and text for each qemu version. The first
//! header's and region table's checksums are written after mutation
//! (`instar_fuzz::vhdx_sealed`) so that mutations reach the metadata.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    instar_fuzz::info_of(&instar_vhdx::Vhdx, instar_fuzz::vhdx_sealed("fuzz.vhdx", data));
});
