//! `instar info` without `-f`: the block layer's probe (every format qemu
//! probes, in qemu's driver order, with qemu's scores) picks the driver,
//! a format only qemu reads gets its header checks or instar's refusal,
//! and an instar format opens as `info` opens it.
#![no_main]

use instar_block::probe::{probe_file, ProbeOrder};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let file = instar_fuzz::image_file("fuzz.img", data);
    // Every release's driver order decides ties alike safely; the newest
    // order's pick is opened.
    for order in [ProbeOrder::Qemu5_2, ProbeOrder::Qemu7_2] {
        let _ = probe_file(&file, order);
    }
    let Ok(driver) = probe_file(&file, ProbeOrder::NEWEST) else { return };
    match driver.format(&file) {
        Ok(format) => instar_fuzz::info(format, "fuzz.img", data),
        Err(e) => {
            let _ = instar_fuzz::render_error(&e);
        }
    }
});
