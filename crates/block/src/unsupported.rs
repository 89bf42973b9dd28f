//! qemu's other image formats: the ones qemu-img reads or creates that
//! instar does not. Naming them lets instar refuse clearly instead of
//! giving a wrong answer (an unrecognised image would otherwise probe as
//! raw, and `-f vdi` would read as an unknown format).

/// Formats qemu-img knows that instar does not implement.
pub const QEMU_ONLY_FORMATS: &[&str] = &[
    "blkdebug",
    "bochs",
    "cloop",
    "copy-before-write",
    "dmg",
    "luks",
    "parallels",
    "qcow",
    "qed",
    "quorum",
    "replication",
    "snapshot-access",
    "vdi",
    "vvfat",
];

/// The format of an image instar cannot read, recognised by the magic
/// qemu's probe for it looks for.
pub fn recognise(head: &[u8], filename: &str) -> Option<&'static str> {
    let at = |offset: usize, magic: &[u8]| head.get(offset..offset + magic.len()) == Some(magic);
    if at(0, b"QFI\xfb") && at(4, &[0, 0, 0, 1]) {
        Some("qcow")
    } else if at(0, b"QED\0") {
        Some("qed")
    } else if at(0x40, &[0x7f, 0x10, 0xda, 0xbe]) {
        Some("vdi")
    } else if at(0, b"WithoutFreeSpace") || at(0, b"WithouFreSpacExt") {
        Some("parallels")
    } else if at(0, b"Bochs Virtual HD Image") {
        Some("bochs")
    } else if at(0, b"LUKS\xba\xbe") {
        Some("luks")
    } else if at(0, b"#!/bin/sh\n#V2.0 Format\nmodprobe cloop file=$0") {
        Some("cloop")
    } else if filename.ends_with(".dmg") && head.len() >= 512 {
        // qemu's dmg probe goes by the name; the trailer at the end says
        // more, but a `.dmg` that is not raw is the common case.
        None
    } else {
        None
    }
}

/// The message for a format instar does not implement.
pub fn not_supported(fmt: &str) -> String {
    format!(
        "Format '{fmt}' is not supported by instar (it supports raw, qcow2, vmdk, vpc and vhdx)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_qemu_only_formats() {
        let mut vdi = vec![0u8; 512];
        vdi[0x40..0x44].copy_from_slice(&[0x7f, 0x10, 0xda, 0xbe]);
        assert_eq!(recognise(&vdi, "a"), Some("vdi"));
        assert_eq!(recognise(b"QFI\xfb\0\0\0\x01rest", "a"), Some("qcow"));
        assert_eq!(recognise(b"QFI\xfb\0\0\0\x03rest", "a"), None);
        assert_eq!(recognise(b"plain data", "a"), None);
    }
}
