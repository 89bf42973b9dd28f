//! Lived-in qcow2 with an external data file (issue 12, item 3): the data
//! file present, raw, written to, missing, named relatively from a
//! subfolder, absolutely, naming a folder or a protocol, under a backing
//! file, and images whose data file extension or feature bits are damaged.
//!
//! `info` opens the data file only in qemu-img before the CVE-2024-4467
//! fix (5.2 here), `check` and `snapshot -l` always: the kinds whose data
//! file cannot be opened show both sides of that rule.

use super::{qemu_io, Made};
use crate::util::edit::ImageFile;
use crate::util::{path_str, Sandbox};

const IMAGE: &str = "l.qcow2";

/// The image's header: the data file extension is the first, at 0x70
/// (magic, then its length at 0x74, then the name at 0x78).
const EXT_LENGTH: u64 = 0x74;
/// The extension's magic.
const EXT_MAGIC: u64 = 0x70;
/// The low byte of the incompatible features (bit 2: external data file).
const INCOMPATIBLE_LOW: u64 = 0x4f;
/// The low byte of the autoclear features (bit 1: raw external data).
const AUTOCLEAR_LOW: u64 = 0x5f;

/// Makes the image of `kind` with the oracle.
fn make(s: &Sandbox, kind: &str) -> Made {
    let create = |options: &str| {
        s.qemu_ok(&["create", "-q", "-f", "qcow2", "-o", options, IMAGE, "4M"]);
    };
    let image = ImageFile { path: s.file(IMAGE) };
    match kind {
        "present" => create("data_file=d.raw"),
        "raw" => create("data_file=d.raw,data_file_raw=on"),
        "written" => {
            create("data_file=d.raw,preallocation=metadata");
            qemu_io(s, &["-c", "write -P 0x5a 0 1M", "-c", "write -z 2M 64k", IMAGE]);
            return Made::new(IMAGE, "qcow2").with(&["info", "-U", IMAGE]);
        }
        "missing" => {
            create("data_file=d.raw");
            std::fs::remove_file(s.file("d.raw")).unwrap();
            return Made::new(IMAGE, "qcow2").with(&["info", "-U", IMAGE]);
        }
        "in_subfolder" => {
            std::fs::create_dir(s.file("sub")).unwrap();
            create("data_file=sub/d.raw");
        }
        "image_in_subfolder" => {
            // The recorded name is relative to the current folder, not to
            // the image's: `d.raw` moved beside `sub/i.qcow2` is not found
            // from the sandbox.
            std::fs::create_dir(s.file("sub")).unwrap();
            s.qemu_ok(&[
                "create",
                "-q",
                "-f",
                "qcow2",
                "-o",
                "data_file=d.raw",
                "sub/i.qcow2",
                "4M",
            ]);
            std::fs::rename(s.file("d.raw"), s.file("sub/d.raw")).unwrap();
            return Made::new("sub/i.qcow2", "qcow2");
        }
        "absolute" => create(&format!("data_file={}", path_str(&s.file("d.raw")))),
        "a_folder" => {
            create("data_file=dd");
            std::fs::remove_file(s.file("dd")).unwrap();
            std::fs::create_dir(s.file("dd")).unwrap();
        }
        "protocol_name" => {
            // Recorded as given: before the CVE-2024-4467 fix qemu read the
            // prefix (and opened d.raw), since then it is part of the name.
            create("data_file=d.raw");
            s.qemu_ok(&["amend", "-o", "data_file=file:d.raw", IMAGE]);
        }
        "backing" => {
            s.qemu_ok(&["create", "-q", "-f", "raw", "b.raw", "4M"]);
            create("data_file=d.raw,backing_file=b.raw,backing_fmt=raw");
            qemu_io(s, &["-c", "write -P 7 64k 64k", IMAGE]);
            return Made::new(IMAGE, "qcow2").with(&["info", "-U", IMAGE]);
        }
        "extension_too_long" => {
            create("data_file=d.raw");
            image.set_be32(EXT_LENGTH, 0x0001_0000);
        }
        "empty_name" => {
            // A name of no bytes, the end of the extensions right after.
            create("data_file=d.raw");
            image.set_be32(EXT_LENGTH, 0);
            image.write(EXT_LENGTH + 4, &[0; 8]);
        }
        "no_extension" => {
            // The feature bit without the name.
            create("data_file=d.raw");
            image.set_be32(EXT_MAGIC, 0x1234_5678);
        }
        "raw_bit_without_data_file" => {
            s.qemu_ok(&["create", "-q", "-f", "qcow2", IMAGE, "4M"]);
            image.write(AUTOCLEAR_LOW, &[0x02]);
        }
        "bit_cleared" => {
            // The name without the feature bit: an ordinary image that
            // carries a stray extension.
            create("data_file=d.raw");
            image.write(INCOMPATIBLE_LOW, &[0x00]);
        }
        other => panic!("no image kind {other}"),
    }
    Made::new(IMAGE, "qcow2")
}

kinds!(make;
    present,
    raw,
    written,
    missing,
    in_subfolder,
    image_in_subfolder,
    absolute,
    a_folder,
    protocol_name,
    backing,
    extension_too_long,
    empty_name,
    no_extension,
    raw_bit_without_data_file,
    bit_cleared,
);
