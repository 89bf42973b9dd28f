//! vpc's checks: the ordinary one (after `check`'s open, qemu has none:
//! "This image format does not support checks") and instar's own
//! structural check, `check --deep` (`Format::deep_check`), which reads
//! images qemu cannot open.
#![no_main]

use instar_core::Format;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    instar_fuzz::check(&instar_vpc::Vpc, "fuzz.vpc", data);
    let file = instar_fuzz::image_file("fuzz.vpc", data);
    assert!(instar_vpc::Vpc.has_deep_check(), "vpc has a deep check");
    match instar_vpc::Vpc.deep_check(file, instar_fuzz::discarded_lines()) {
        Ok(report) => instar_fuzz::render_report(&report),
        Err(e) => {
            let _ = instar_fuzz::render_error(&e);
        }
    }
});
