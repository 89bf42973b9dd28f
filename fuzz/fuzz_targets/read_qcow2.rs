//! qcow2's open as a reading command runs it (`OpenFlags::READ`), on an
//! image in memory (with any data file beside it), then block status over
//! the whole disk and its guest data read range by range into a bounded
//! buffer (`instar_fuzz::read_of`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    instar_fuzz::read_of(&instar_qcow2::Qcow2, instar_fuzz::image_file("fuzz.qcow2", data));
});
