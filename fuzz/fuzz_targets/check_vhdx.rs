//! vhdx's open as `instar check` runs it (`OpenFlags::CHECK`), then qemu's
//! consistency check and its report as printed (human and JSON). The
//! first header's and region table's checksums are written after mutation
//! (`instar_fuzz::vhdx_sealed`) so that mutations reach the metadata.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    instar_fuzz::check_of(&instar_vhdx::Vhdx, instar_fuzz::vhdx_sealed("fuzz.vhdx", data));
});
