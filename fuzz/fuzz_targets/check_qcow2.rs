//! qcow2's open as `instar check` runs it (`OpenFlags::CHECK`), then qemu's
//! consistency check and its report as printed (human and JSON).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    instar_fuzz::check(&instar_qcow2::Qcow2, "fuzz.qcow2", data);
});
