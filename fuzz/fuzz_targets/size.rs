//! qemu's size syntax (`qemu_strtosz`: integers, decimal fractions,
//! suffixes, hexadecimal) as `create`'s size and size options read it.
//! A size that parses prints (in decimal) as text that parses to the same
//! size, and `size_to_str` renders it.
#![no_main]

use instar_core::size::parse_size;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = instar_core::rawtext::from_bytes(data);
    if let Ok(n) = parse_size(&text) {
        assert_eq!(parse_size(&n.to_string()), Ok(n), "{text:?}");
        let _ = instar_core::human::size_to_str(n);
    }
});
