//! vmdk guest data as qemu's driver reads it (issue 13): data written by
//! qemu-io at unaligned offsets into a monolithicSparse image, a split
//! sparse image written across its 2 GiB extent boundary, a
//! streamOptimized image converted from data (its last grain shorter than
//! a grain), zeroed grains, flat extents whose files have holes or end
//! early, and parent links three deep, valid and with a parent written
//! after its child was made (its CID changed: qemu's reads of the child
//! fail). Every kind is compared on the standard lines (`map` and
//! `compare` against qemu-img's `convert -O raw` among them); the chains
//! also on `map` windows and `compare` against the layer below.

use super::{qemu_io, Made};
use crate::util::Sandbox;

/// Data at unaligned offsets and lengths, some crossing grains (64 KiB)
/// and grain tables (32 MiB in a 4 MiB image: none; 1 MiB and 2 MiB
/// boundaries).
const WRITES: [&str; 5] = [
    "write -P 0x11 1000 3000",
    "write -P 0x22 65000 2000",
    "write -P 0x33 1048000 1200",
    "write -P 0x44 2097000 70000",
    "write -P 0x55 3000000 123456",
];

/// Runs the qemu-io commands `cmds` on the vmdk `image`.
fn io(s: &Sandbox, image: &str, cmds: &[&str]) {
    super::qemu_io_cmds(s, "vmdk", image, cmds);
}

/// `create -f vmdk` of `name` with `opts` (`-o`, if not empty) and `size`.
fn create(s: &Sandbox, name: &str, opts: &str, size: &str) {
    if opts.is_empty() {
        s.qemu_ok(&["create", "-q", "-f", "vmdk", name, size]);
    } else {
        s.qemu_ok(&["create", "-q", "-f", "vmdk", "-o", opts, name, size]);
    }
}

/// A vmdk over the vmdk `parent` (its `parentFileNameHint`).
fn child(s: &Sandbox, name: &str, parent: &str) {
    s.qemu_ok(&["create", "-q", "-f", "vmdk", "-b", parent, "-F", "vmdk", name]);
}

/// Map windows and compares of `made` against `below`.
fn chain_lines(made: Made, below: &str) -> Made {
    let image = made.image.clone();
    let image = image.as_str();
    made.with(&["map", "--start-offset=4096", "--max-length=2097152", image])
        .with(&["map", "--output=json", "--start-offset", "1000", "--max-length", "70000", image])
        .with(&["compare", image, below])
        .with(&["compare", "-s", image, below])
}

/// Makes the image of `kind` with the oracle.
fn make(s: &Sandbox, kind: &str) -> Made {
    match kind {
        "sparse_unaligned" => {
            create(s, "d.vmdk", "", "4M");
            io(s, "d.vmdk", &WRITES);
            Made::new("d.vmdk", "vmdk")
        }
        // Extents of 2 GiB: a write over the boundary lands in both.
        "split_sparse_boundary" => {
            create(s, "d.vmdk", "subformat=twoGbMaxExtentSparse", "3G");
            io(s, "d.vmdk", &["write -P 0x66 2147480000 70000", "write -P 0x67 3000 5000"]);
            Made::new("d.vmdk", "vmdk")
        }
        // A disk of 4000256 bytes: its last grain holds 2560 bytes, and
        // qemu writes (and inflates) it short.
        "stream_converted" => {
            s.qemu_ok(&["create", "-q", "-f", "raw", "data.raw", "4000256"]);
            qemu_io(s, &["-f", "raw", "-c", WRITES[0], "-c", WRITES[3], "data.raw"]);
            qemu_io(s, &["-f", "raw", "-c", "write -P 0x77 3997000 3256", "data.raw"]);
            let args = ["convert", "-O", "vmdk", "-o", "subformat=streamOptimized"];
            s.qemu_ok(&[&args[..], &["data.raw", "d.vmdk"]].concat());
            std::fs::remove_file(s.file("data.raw")).unwrap();
            Made::new("d.vmdk", "vmdk")
        }
        // zeroed_grain=on: zeros written over data become zeroed grains.
        "zeroed_grains" => {
            create(s, "d.vmdk", "zeroed_grain=on", "4M");
            io(s, "d.vmdk", &WRITES);
            io(s, "d.vmdk", &["write -z 0 128k", "write -z 3M 64k", "write -z 3801088 65536"]);
            Made::new("d.vmdk", "vmdk")
        }
        // qemu creates the flat file sparse: the block layer finds its
        // holes. A second image's flat file ends inside its last sector.
        "flat_holes" => {
            create(s, "d.vmdk", "subformat=monolithicFlat", "4M");
            io(s, "d.vmdk", &WRITES[..3]);
            Made::new("d.vmdk", "vmdk")
        }
        "flat_short" => {
            create(s, "d.vmdk", "subformat=twoGbMaxExtentFlat", "4M");
            io(s, "d.vmdk", &WRITES);
            let f = std::fs::OpenOptions::new().write(true).open(s.file("d-f001.vmdk")).unwrap();
            f.set_len(3_000_100).unwrap();
            Made::new("d.vmdk", "vmdk")
        }
        // Three deep, each written before the next was made.
        "parents_three_deep" => {
            create(s, "base.vmdk", "", "4M");
            io(s, "base.vmdk", &WRITES);
            child(s, "mid.vmdk", "base.vmdk");
            io(s, "mid.vmdk", &["write -P 0x88 500 700", "write -P 0x89 2100000 5000"]);
            child(s, "top.vmdk", "mid.vmdk");
            io(s, "top.vmdk", &["write -P 0x99 60000 10000", "write -P 0x9a 4193000 1304"]);
            chain_lines(Made::new("top.vmdk", "vmdk"), "mid.vmdk")
        }
        // The parent written after the child was made: its CID changed,
        // and qemu's reads of the child's unallocated grains fail.
        "parent_cid_changed" => {
            create(s, "base.vmdk", "", "4M");
            io(s, "base.vmdk", &WRITES[..2]);
            child(s, "top.vmdk", "base.vmdk");
            io(s, "top.vmdk", &["write -P 0x99 0 512"]);
            io(s, "base.vmdk", &["write -P 0x12 2M 4096"]);
            chain_lines(Made::new("top.vmdk", "vmdk"), "base.vmdk")
        }
        other => panic!("no vmdk reads kind {other}"),
    }
}

kinds!(make;
    sparse_unaligned, split_sparse_boundary, stream_converted, zeroed_grains,
    flat_holes, flat_short, parents_three_deep, parent_cid_changed,
);
