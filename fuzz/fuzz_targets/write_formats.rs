//! The vmdk, vpc and vhdx writers (`convert`'s targets) over a hostile
//! existing image, as `convert -n` meets it (`instar_fuzz::write_of`): the
//! first byte picks the format, the rest is the file, opened for writing
//! and given data, zero and compressed writes spread over the disk.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    instar_fuzz::write_of(data);
});
