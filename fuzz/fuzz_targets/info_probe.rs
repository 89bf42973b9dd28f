//! `instar info` without `-f`: the block layer's probe (every format qemu
//! probes, in qemu's driver order, with qemu's scores) picks the driver,
//! a format only qemu reads gets its header checks or instar's refusal,
//! and an instar format opens as `info` opens it.
#![no_main]

use instar_block::probe::{probe_file, ProbeOrder};
use instar_block::unsupported::Purpose;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let file = instar_fuzz::image_file("fuzz.img", data);
    let Ok(driver) = probe_file(&file, ProbeOrder::NEWEST) else { return };
    for purpose in [Purpose::Info, Purpose::Check] {
        if let Err(e) = driver.format(&file, purpose) {
            let _ = instar_fuzz::render_error(&e);
        }
    }
    match driver.format(&file, Purpose::Info) {
        Ok(format) => instar_fuzz::info(format, "fuzz.img", data),
        Err(e) => {
            let _ = instar_fuzz::render_error(&e);
        }
    }
});
