//! vpc's open as `instar map` and `instar compare` run it, then the read
//! layer over the image (`instar_fuzz::read_of`): block status walked over
//! the disk, and guest data read at every range and at offsets spread over
//! the disk, each answer checked against the bytes it names.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    instar_fuzz::read_of(&instar_vpc::Vpc, instar_fuzz::image_file("fuzz.vpc", data));
});
