//! vmdk's open as a command that reads guest data (`map`, `compare`),
//! with its extent files beside it, then block status over the disk and
//! reads of what it answers: grain directories and tables, compressed
//! grains and their markers, flat extents.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    instar_fuzz::read_of(&instar_vmdk::Vmdk, instar_fuzz::image_file("fuzz.vmdk", data));
});
