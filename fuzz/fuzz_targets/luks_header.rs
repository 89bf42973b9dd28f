//! The LUKS header: the partition header and its key slots read from the
//! input, checked and parsed as each qemu release that changed the rules
//! does (5.2, 7.2, 9.0, 9.1, 9.2), attached and detached, the `info` of
//! what opens rendered; then the input as a luks volume opened as `info`
//! opens it.
#![no_main]

use instar_core::{QemuDialect, QemuVersion};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for (major, minor) in [(5, 2), (7, 2), (9, 0), (9, 1), (9, 2), (10, 0)] {
        let dialect = QemuDialect::new(QemuVersion::new(major, minor, 0));
        for detached in [false, true] {
            match instar_luks::open::open(data, dialect, detached) {
                Ok(luks) => {
                    let _ = luks.info(dialect).to_qemu_pretty();
                }
                Err(e) => {
                    let _ = e.to_string();
                }
            }
        }
    }
    instar_fuzz::info(&instar_luks::LuksFormat, "fuzz.luks", data);
});
