//! vhdx's open as `instar info` runs it (`OpenFlags::INFO`), on an image
//! in memory (with any files it names beside it: `instar_fuzz::split_files`),
//! then `info` rendered in JSON and text for each qemu version.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    instar_fuzz::info(&instar_vhdx::Vhdx, "fuzz.vhdx", data);
});
