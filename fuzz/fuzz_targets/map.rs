//! `instar map`'s walk over a hostile image: the probe picks the driver,
//! the image opens as `map` opens it (`OpenFlags::READ`), and the block
//! layer walks its block status (`instar_block::write_map`) in both forms
//! and two dialects, from a start offset the input picks (its last 8
//! bytes, little-endian; the image is the rest, with any files beside it
//! as `instar_fuzz::split_files` reads them).
//!
//! Invariants asserted: the walk ends (every answer advances it), and the
//! JSON entries tile the window exactly, each starting where the last
//! ended, the last ending at the window's end.
#![no_main]

use instar_block::{write_map, MapFormat, MapRequest};
use instar_core::{QemuDialect, QemuVersion};
use libfuzzer_sys::fuzz_target;

/// The most guest bytes one input maps: a header may claim any size, and
/// a walk over exabytes of tiny clusters would only be slow.
const WINDOW: u64 = 8 << 20;

/// The start and length of each JSON entry, in order.
fn ranges(json: &str) -> Vec<(u64, u64)> {
    let number = |line: &str, key: &str| -> u64 {
        let at = line.find(key).expect("the key") + key.len();
        let digits: String = line[at..].chars().take_while(char::is_ascii_digit).collect();
        digits.parse().expect("a number")
    };
    json.lines().map(|l| (number(l, "\"start\": "), number(l, "\"length\": "))).collect()
}

fuzz_target!(|data: &[u8]| {
    let Some(split) = data.len().checked_sub(8) else { return };
    let (image, tail) = data.split_at(split);
    let start = u64::from_le_bytes(tail.try_into().expect("8 bytes"));
    let Some(chain) = instar_fuzz::read_chain(image) else { return };
    // Anywhere in the disk, or just past it.
    let start = start % chain.len().saturating_add(2);
    let end = chain.len().min(start.saturating_add(WINDOW)).max(start);
    for dialect in [QemuDialect::DEFAULT, QemuDialect::new(QemuVersion::new(5, 2, 0))] {
        for format in [MapFormat::Human, MapFormat::Json] {
            let request = MapRequest { start, max_length: Some(WINDOW), format, dialect };
            let mut out = Vec::new();
            match write_map(&chain, &request, &mut out) {
                Ok(()) if format == MapFormat::Json => {
                    let text = String::from_utf8(out).expect("JSON is text");
                    let found = ranges(&text);
                    let mut at = start;
                    for &(s, len) in &found {
                        assert_eq!(s, at, "entries follow on");
                        at = s + len;
                    }
                    assert_eq!(at, end, "the entries cover the window");
                }
                Ok(()) => {}
                Err(e) => {
                    let _ = e.to_string();
                }
            }
        }
    }
});
