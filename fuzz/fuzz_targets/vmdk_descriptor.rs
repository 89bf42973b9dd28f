//! vmdk's text descriptor: the parsers qemu's `vmdk_open` uses on it
//! (`createType` by `vmdk_parse_description`, the CIDs, the parent's
//! name, each extent line as `sscanf` reads it), then the open of the
//! descriptor as an image, its extents from the files beside it in the
//! input (`instar_fuzz::split_files`; missing ones fail as qemu's open
//! of a missing file does).
#![no_main]

use instar_vmdk::descriptor;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (text, _) = instar_fuzz::split_files(data);
    let _ = descriptor::parse_description(&text, b"createType");
    let _ = descriptor::read_cid(&text, false);
    let _ = descriptor::read_cid(&text, true);
    let _ = descriptor::parent_hint(&text);
    let mut sectors = 0;
    for (rest, line) in descriptor::lines(&text) {
        assert!(rest.starts_with(line), "a line is the start of the rest");
        sectors = descriptor::scan_extent(rest, sectors).sectors;
    }
    instar_fuzz::info(&instar_vmdk::Vmdk, "fuzz.vmdk", data);
});
