//! Guest data through backing chains (issue 13): chains three deep of
//! mixed formats with data written by qemu-io at unaligned offsets, zeroed
//! and discarded ranges in the layers above, backing files shorter and
//! longer than their overlays, compressed clusters under an overlay. Every
//! kind is compared on the standard lines (`map` and `compare` against
//! qemu-img's `convert -O raw` among them), and on `map` windows
//! (`--start-offset`, `--max-length`), `compare` of a layer against the one
//! below it (the first offset where they differ) and strict `compare -s`.

use super::Made;
use crate::util::Sandbox;

/// The top of every chain.
const TOP: &str = "top.qcow2";

/// `create -f fmt name size`, over `backing` (of format `bfmt`) if given.
fn create(s: &Sandbox, fmt: &str, name: &str, size: &str, backing: Option<(&str, &str)>) {
    match backing {
        Some((b, bfmt)) => s.qemu_ok(&["create", "-q", "-f", fmt, "-b", b, "-F", bfmt, name, size]),
        None => s.qemu_ok(&["create", "-q", "-f", fmt, name, size]),
    };
}

/// Runs the qemu-io commands `cmds` on `image` (of format `fmt`).
fn io(s: &Sandbox, fmt: &str, image: &str, cmds: &[&str]) {
    super::qemu_io_cmds(s, fmt, image, cmds);
}

/// Data at unaligned offsets and lengths, some crossing cluster, grain and
/// block boundaries (64 KiB, 1 MiB, 2 MiB), for the bottom of a chain.
const BASE_WRITES: [&str; 5] = [
    "write -P 0x11 1000 3000",
    "write -P 0x22 65000 2000",
    "write -P 0x33 1048000 1200",
    "write -P 0x44 2097000 70000",
    "write -P 0x55 3000000 123456",
];

/// Writes over a middle layer: data, zeros over data below, data again.
const MID_WRITES: [&str; 3] =
    ["write -P 0x66 500 700", "write -z 1048576 65536", "write -P 0x77 2100000 5000"];

/// Writes over the top layer: zeros that unmap, a discard, data at the
/// very end.
const TOP_WRITES: [&str; 4] = [
    "write -P 0x88 60000 10000",
    "write -z -u 2097152 65536",
    "discard 0 65536",
    "write -P 0x99 4193000 1304",
];

/// The extra lines every chain kind asks: map windows, and compares of the
/// top against the layer below it, plain and strict.
fn chain_lines(made: Made, below: &str) -> Made {
    let image = made.image.clone();
    let image = image.as_str();
    made.with(&["map", "--start-offset=4096", "--max-length=2097152", image])
        .with(&["map", "--output=json", "--start-offset", "1000", "--max-length", "70000", image])
        .with(&["map", "--output=json", "--start-offset=4194304", image])
        .with(&["compare", image, below])
        .with(&["compare", "-s", image, below])
        .with(&["compare", "-q", below, image])
}

/// Makes the chain of `kind` with the oracle.
fn make(s: &Sandbox, kind: &str) -> Made {
    match kind {
        // qcow2 over qcow2 over each format qcow2 can be backed by.
        "over_raw" | "over_vpc" | "over_vhdx" | "over_vmdk" | "over_qcow2" => {
            let fmt = kind.trim_start_matches("over_");
            let base = format!("base.{fmt}");
            create(s, fmt, &base, "4M", None);
            io(s, fmt, &base, &BASE_WRITES);
            create(s, "qcow2", "mid.qcow2", "4M", Some((&base, fmt)));
            io(s, "qcow2", "mid.qcow2", &MID_WRITES);
            create(s, "qcow2", TOP, "4M", Some(("mid.qcow2", "qcow2")));
            io(s, "qcow2", TOP, &TOP_WRITES);
            chain_lines(Made::new(TOP, "qcow2"), "mid.qcow2")
        }
        // vmdk is backed only by vmdk: qcow2 over vmdk over vmdk.
        "over_vmdk_vmdk" => {
            create(s, "vmdk", "base.vmdk", "4M", None);
            io(s, "vmdk", "base.vmdk", &BASE_WRITES);
            create(s, "vmdk", "mid.vmdk", "4M", Some(("base.vmdk", "vmdk")));
            io(s, "vmdk", "mid.vmdk", &MID_WRITES[..1]);
            create(s, "qcow2", TOP, "4M", Some(("mid.vmdk", "vmdk")));
            io(s, "qcow2", TOP, &TOP_WRITES);
            chain_lines(Made::new(TOP, "qcow2"), "mid.vmdk")
        }
        // A backing file half the size of its overlay: past its end the
        // overlay reads zeros it does not hold.
        "backing_shorter" => {
            create(s, "qcow2", "base.qcow2", "2M", None);
            io(s, "qcow2", "base.qcow2", &BASE_WRITES[..3]);
            create(s, "qcow2", TOP, "4M", Some(("base.qcow2", "qcow2")));
            io(s, "qcow2", TOP, &["write -P 0x99 1000000 100000", "write -P 0x98 3000000 4096"]);
            chain_lines(Made::new(TOP, "qcow2"), "base.qcow2")
        }
        // The same with a raw backing file whose last sector is partial.
        "backing_shorter_raw" => {
            s.qemu_ok(&["create", "-q", "-f", "raw", "base.raw", "1000000"]);
            io(s, "raw", "base.raw", &BASE_WRITES[..2]);
            create(s, "qcow2", TOP, "4M", Some(("base.raw", "raw")));
            io(s, "qcow2", TOP, &["write -P 0x99 900000 100000"]);
            chain_lines(Made::new(TOP, "qcow2"), "base.raw")
        }
        // A backing file longer than its overlay.
        "backing_longer" => {
            create(s, "qcow2", "base.qcow2", "8M", None);
            io(s, "qcow2", "base.qcow2", &["write -P 0x11 4000000 300000", "write -P 0x12 0 512"]);
            create(s, "qcow2", TOP, "4M", Some(("base.qcow2", "qcow2")));
            io(s, "qcow2", TOP, &["write -P 0x99 4190000 4304"]);
            chain_lines(Made::new(TOP, "qcow2"), "base.qcow2")
        }
        // An overlay over an image with compressed clusters.
        "over_compressed" => {
            create(s, "raw", "data.raw", "4M", None);
            io(s, "raw", "data.raw", &BASE_WRITES);
            s.qemu_ok(&["convert", "-c", "-O", "qcow2", "data.raw", "base.qcow2"]);
            create(s, "qcow2", TOP, "4M", Some(("base.qcow2", "qcow2")));
            io(s, "qcow2", TOP, &MID_WRITES);
            chain_lines(Made::new(TOP, "qcow2"), "base.qcow2")
        }
        // An overlay whose every cluster is its own: the backing file is
        // never read.
        "fully_allocated_top" => {
            create(s, "raw", "base.raw", "1M", None);
            io(s, "raw", "base.raw", &["write -P 0x11 0 1M"]);
            create(s, "qcow2", TOP, "1M", Some(("base.raw", "raw")));
            io(s, "qcow2", TOP, &["write -P 0x22 0 1M"]);
            chain_lines(Made::new(TOP, "qcow2"), "base.raw")
        }
        // A raw image with holes and data at unaligned places, and a last
        // sector it holds only part of.
        "raw_sparse" => {
            s.qemu_ok(&["create", "-q", "-f", "raw", "disk.raw", "4000000"]);
            io(s, "raw", "disk.raw", &BASE_WRITES[..4]);
            s.qemu_ok(&["create", "-q", "-f", "raw", "other.raw", "4000000"]);
            io(s, "raw", "other.raw", &BASE_WRITES[..3]);
            chain_lines(Made::new("disk.raw", "raw"), "other.raw")
        }
        other => panic!("no reads kind {other}"),
    }
}

kinds!(make;
    over_raw, over_vpc, over_vhdx, over_vmdk, over_qcow2, over_vmdk_vmdk,
    backing_shorter, backing_shorter_raw, backing_longer, over_compressed,
    fully_allocated_top, raw_sparse,
);
