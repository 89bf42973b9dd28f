//! vhdx's open as `instar map` and `instar compare` run it, then the read
//! layer over the image (`instar_fuzz::read_of`): guest data read at
//! offsets spread over the disk, through every BAT state. The first
//! header's and region table's checksums are written after mutation
//! (`instar_fuzz::vhdx_sealed`) so that mutations reach the BAT.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    instar_fuzz::read_of(&instar_vhdx::Vhdx, instar_fuzz::vhdx_sealed("fuzz.vhdx", data));
});
