//! Lived-in qcow2 (issue 12, items 2 and 6): guest data written by
//! qemu-io, zero, discarded and compressed clusters, every cluster and
//! refcount width, subclusters, feature bits left set by a crash or an
//! edit, header extensions qemu does not know or that are missing, and
//! persistent dirty bitmaps as `qemu-img bitmap` and a running qemu leave
//! them.
//!
//! The images are small (64 MiB virtual unless the kind needs more, a few
//! MiB on disk) and made by the oracle; a crash is qemu-io's `abort`
//! command, which kills qemu-io before it closes the image, as a host
//! crash would.

use super::{compare, qemu_io, Made};
use crate::util::{edit, qemu_or_skip, skip_build_lacks, Sandbox};

const IMAGE: &str = "l.qcow2";
/// The backing file of the kinds that have one.
const BASE: &str = "b.qcow2";

/// Offset of the incompatible feature bits in a version 3 header (the
/// last byte holds bits 0 to 7).
const INCOMPATIBLE_LOW_BYTE: u64 = 79;
/// Offset of the lowest byte of the compatible feature bits.
const COMPATIBLE_LOW_BYTE: u64 = 87;
/// Offset of the lowest byte of the autoclear feature bits.
const AUTOCLEAR_LOW_BYTE: u64 = 95;
/// The dirty bit (incompatible bit 0).
const DIRTY: u8 = 1 << 0;
/// The corrupt bit (incompatible bit 1).
const CORRUPT: u8 = 1 << 1;
/// The bitmaps autoclear bit (bit 0).
const AUTOCLEAR_BITMAPS: u8 = 1 << 0;
/// The feature name table extension.
const EXT_FEATURE_TABLE: u32 = 0x6803_f857;
/// The bitmaps extension.
const EXT_BITMAPS: u32 = 0x2385_2875;
/// The in-use flag of a bitmap directory entry.
const BME_FLAG_IN_USE: u32 = 1 << 0;

/// Runs qemu-io on the image and then kills it with its `abort` command,
/// as a crash would: the image is left as the running qemu had it (dirty,
/// bitmaps in use). qemu-io must die of the signal, not exit.
#[track_caller]
fn qemu_io_crash(s: &Sandbox, commands: &[&str]) {
    let qemu_io = s.qemu.path.with_file_name("qemu-io");
    let mut args = Vec::new();
    for c in commands {
        args.extend(["-c", c]);
    }
    args.extend(["-c", "abort", IMAGE]);
    let run = s.t.run(&qemu_io, &args, s.path());
    s.t.check(run.code.is_none() && !run.timed_out, || "qemu-io abort did not crash".into());
}

/// Sets `mask` in the byte at `offset` of the image.
fn set_bits(s: &Sandbox, offset: u64, mask: u8) {
    let path = s.file(IMAGE);
    let byte = edit::read_at(&path, offset, 1)[0];
    edit::write_at(&path, offset, &[byte | mask]);
}

/// Clears `mask` in the byte at `offset` of the image.
fn clear_bits(s: &Sandbox, offset: u64, mask: u8) {
    let path = s.file(IMAGE);
    let byte = edit::read_at(&path, offset, 1)[0];
    edit::write_at(&path, offset, &[byte & !mask]);
}

/// The header extensions of the image, in order, as (type, data).
fn extensions(s: &Sandbox) -> Vec<(u32, Vec<u8>)> {
    let path = s.file(IMAGE);
    let mut at = u64::from(edit::be32(&path, 100));
    let mut list = Vec::new();
    loop {
        let (kind, len) = (edit::be32(&path, at), edit::be32(&path, at + 4));
        if kind == 0 {
            return list;
        }
        list.push((kind, edit::read_at(&path, at + 8, len as usize)));
        at += 8 + u64::from(len).div_ceil(8) * 8;
    }
}

/// Writes `list` as the image's header extensions (with the end marker),
/// zeroing what the old list held beyond the new one. The backing file
/// name, which follows the extensions, is not moved: only for kinds
/// without one.
fn set_extensions(s: &Sandbox, list: &[(u32, Vec<u8>)]) {
    let path = s.file(IMAGE);
    let start = u64::from(edit::be32(&path, 100));
    let old_len: usize = extensions(s).iter().map(|(_, d)| 8 + d.len().div_ceil(8) * 8).sum();
    let mut bytes = Vec::new();
    for (kind, data) in list {
        bytes.extend(kind.to_be_bytes());
        bytes.extend(u32::try_from(data.len()).expect("small").to_be_bytes());
        bytes.extend(data);
        bytes.resize(bytes.len().div_ceil(8) * 8, 0);
    }
    bytes.extend([0u8; 8]);
    bytes.resize(bytes.len().max(old_len + 8), 0);
    edit::write_at(&path, start, &bytes);
}

/// The offset of the image's bitmap directory.
fn bitmap_directory(s: &Sandbox) -> u64 {
    let (_, data) = extensions(s).into_iter().find(|(k, _)| *k == EXT_BITMAPS).expect("bitmaps");
    u64::from_be_bytes(data[16..24].try_into().expect("8 bytes"))
}

/// The offset of the first bitmap's table.
fn first_bitmap_table(s: &Sandbox) -> u64 {
    edit::be64(&s.file(IMAGE), bitmap_directory(s))
}

/// Marks the first bitmap of the directory in use, as a qemu that crashed
/// while the bitmap was loaded leaves it.
fn mark_first_bitmap_in_use(s: &Sandbox) {
    let flags_at = bitmap_directory(s) + 12;
    let path = s.file(IMAGE);
    let flags = edit::be32(&path, flags_at);
    edit::write_at(&path, flags_at, &(flags | BME_FLAG_IN_USE).to_be_bytes());
}

/// Creates the image with `options` (none when empty) and `size`.
fn create(s: &Sandbox, options: &str, size: &str) {
    if options.is_empty() {
        s.qemu_ok(&["create", "-q", "-f", "qcow2", IMAGE, size]);
    } else {
        s.qemu_ok(&["create", "-q", "-f", "qcow2", "-o", options, IMAGE, size]);
    }
}

/// Creates a backing file of `size` full of data and the image on top of
/// it with `options`.
fn create_over_base(s: &Sandbox, options: &str, size: &str) {
    s.qemu_ok(&["create", "-q", "-f", "qcow2", BASE, size]);
    qemu_io(s, &["-c", &format!("write -P 0x9 0 {size}"), BASE]);
    let mut o = format!("backing_file={BASE},backing_fmt=qcow2");
    if !options.is_empty() {
        o = format!("{o},{options}");
    }
    s.qemu_ok(&["create", "-q", "-f", "qcow2", "-o", &o, IMAGE, size]);
}

/// Runs `qemu-img bitmap` with `args` on the image.
fn qemu_bitmap(s: &Sandbox, args: &[&str]) {
    let mut all = vec!["bitmap"];
    all.extend(args);
    s.qemu_ok(&all);
}

/// The image, compared on the standard command lines.
fn image() -> Made {
    Made::new(IMAGE, "qcow2")
}

/// The image with bitmaps, also compared on `info -U` (a shared open).
fn shared() -> Made {
    image().with(&["info", "-U", "--output=json", IMAGE])
}

/// Makes the image of `kind` with the oracle.
fn make(s: &Sandbox, kind: &str) -> Made {
    match kind {
        // Guest data.
        "written" => {
            create(s, "", "64M");
            qemu_io(s, &["-c", "write -P 0x5a 0 1M", "-c", "write 3M 64k", IMAGE]);
            image().with(&["info", "-U", IMAGE])
        }
        "fragmented" => {
            // Interleaved writes in no order: host clusters out of guest
            // order, partial clusters, several patterns.
            create(s, "", "64M");
            qemu_io(
                s,
                &[
                    "-c",
                    "write -P 1 4M 64k",
                    "-c",
                    "write -P 2 0 64k",
                    "-c",
                    "write -P 3 8M 192k",
                    "-c",
                    "write -P 4 64k 64k",
                    "-c",
                    "write -P 5 4160k 4k",
                    "-c",
                    "write -P 6 20M 1M",
                    "-c",
                    "write -P 7 128k 100k",
                    "-c",
                    "write -P 8 63M 1M",
                    IMAGE,
                ],
            );
            image()
        }
        "past_first_l2" => {
            // 4 KiB clusters: one L2 table maps 2 MiB, so these writes
            // reach many.
            create(s, "cluster_size=4096", "64M");
            qemu_io(
                s,
                &[
                    "-c",
                    "write -P 1 0 8k",
                    "-c",
                    "write -P 2 3M 8k",
                    "-c",
                    "write -P 3 33M 4k",
                    "-c",
                    "write -P 4 63M 1M",
                    IMAGE,
                ],
            );
            image()
        }
        "second_l2_sparse" => {
            // 64 KiB clusters: one L2 table maps 512 MiB; a 1 GiB disk
            // written at both ends needs two.
            create(s, "", "1G");
            qemu_io(s, &["-c", "write -P 1 0 128k", "-c", "write -P 2 700M 64k", IMAGE]);
            image()
        }
        "zero_clusters" => {
            create(s, "", "64M");
            qemu_io(s, &["-c", "write -P 1 0 2M", "-c", "write -z 512k 1M", IMAGE]);
            image()
        }
        "zero_unmapped" => {
            create(s, "", "64M");
            qemu_io(
                s,
                &[
                    "-c",
                    "write -P 1 0 4M",
                    "-c",
                    "write -z -u 1M 1M",
                    "-c",
                    "write -z 3M 64k",
                    IMAGE,
                ],
            );
            image()
        }
        "zero_over_backing" => {
            // Over a backing file zeros must be explicit: zero clusters
            // with (no -u) and without (-u) their host cluster.
            create_over_base(s, "", "8M");
            qemu_io(
                s,
                &[
                    "-c",
                    "write -z 0 1M",
                    "-c",
                    "write -z -u 2M 1M",
                    "-c",
                    "write -P 3 4M 1M",
                    "-c",
                    "write -z 4M 512k",
                    "-c",
                    "write -z -u 4608k 256k",
                    IMAGE,
                ],
            );
            image()
        }
        "discarded" => {
            create(s, "", "64M");
            qemu_io(
                s,
                &["-c", "write -P 1 0 4M", "-c", "discard 1M 1M", "-c", "discard 3M 64k", IMAGE],
            );
            image()
        }
        "discarded_over_backing" => {
            create_over_base(s, "", "8M");
            qemu_io(
                s,
                &["-c", "write -P 1 0 4M", "-c", "discard 1M 1M", "-c", "discard 6M 1M", IMAGE],
            );
            image()
        }
        // Compressed clusters.
        "compressed" => {
            create(s, "", "64M");
            qemu_io(s, &["-c", "write -P 7 0 4M", IMAGE]);
            s.qemu_ok(&["convert", "-c", "-O", "qcow2", IMAGE, "c.qcow2"]);
            Made::new("c.qcow2", "qcow2")
        }
        "compressed_mixed" => {
            // qemu-io's `write -c` compresses; plain writes beside and
            // over compressed clusters.
            create(s, "", "64M");
            qemu_io(
                s,
                &[
                    "-c",
                    "write -P 1 0 1M",
                    "-c",
                    "write -c -P 2 1M 256k",
                    "-c",
                    "write -P 3 2M 64k",
                    "-c",
                    "write -c 3M 64k",
                    "-c",
                    "write -P 4 1088k 64k",
                    IMAGE,
                ],
            );
            image()
        }
        "compressed_rewritten" => {
            create(s, "", "16M");
            qemu_io(s, &["-c", "write -P 7 0 8M", IMAGE]);
            s.qemu_ok(&["convert", "-c", "-O", "qcow2", IMAGE, "c.qcow2"]);
            std::fs::rename(s.file("c.qcow2"), s.file(IMAGE)).expect("rename");
            qemu_io(
                s,
                &[
                    "-c",
                    "write -P 1 1M 64k",
                    "-c",
                    "discard 2M 128k",
                    "-c",
                    "write -z 5M 64k",
                    IMAGE,
                ],
            );
            image()
        }
        "compressed_zstd" => {
            create(s, "", "16M");
            qemu_io(s, &["-c", "write -P 7 0 4M", IMAGE]);
            s.qemu_ok(&[
                "convert",
                "-c",
                "-O",
                "qcow2",
                "-o",
                "compression_type=zstd",
                IMAGE,
                "c.qcow2",
            ]);
            Made::new("c.qcow2", "qcow2")
        }
        "compressed_zstd_bitmaps" => {
            create(s, "compression_type=zstd", "16M");
            qemu_bitmap(s, &["--add", IMAGE, "a"]);
            qemu_io(s, &["-c", "write -P 1 0 1M", "-c", "write -c -P 2 2M 512k", IMAGE]);
            shared()
        }
        "compressed_cluster_512" => {
            // The compressed sector count field is narrowest here.
            create(s, "", "8M");
            qemu_io(s, &["-c", "write -P 7 0 2M", "-c", "write 3M 100k", IMAGE]);
            s.qemu_ok(&[
                "convert",
                "-c",
                "-O",
                "qcow2",
                "-o",
                "cluster_size=512",
                IMAGE,
                "c.qcow2",
            ]);
            Made::new("c.qcow2", "qcow2")
        }
        "compressed_cluster_2m" => {
            create(s, "", "16M");
            qemu_io(s, &["-c", "write -P 7 0 6M", "-c", "write 9M 100k", IMAGE]);
            s.qemu_ok(&["convert", "-c", "-O", "qcow2", "-o", "cluster_size=2M", IMAGE, "c.qcow2"]);
            Made::new("c.qcow2", "qcow2")
        }
        "compressed_extended_l2" => {
            create(s, "", "8M");
            qemu_io(s, &["-c", "write -P 7 0 2M", IMAGE]);
            s.qemu_ok(&["convert", "-c", "-O", "qcow2", "-o", "extended_l2=on", IMAGE, "c.qcow2"]);
            std::fs::rename(s.file("c.qcow2"), s.file(IMAGE)).expect("rename");
            qemu_io(s, &["-c", "write -P 1 64k 4k", "-c", "write -z 128k 2k", IMAGE]);
            image()
        }
        "compressed_snapshot" => {
            // Compressed clusters shared with a snapshot (refcount 2 on
            // sectors several clusters share), then partly overwritten.
            create(s, "", "8M");
            qemu_io(s, &["-c", "write -P 7 0 2M", IMAGE]);
            s.qemu_ok(&["convert", "-c", "-O", "qcow2", IMAGE, "c.qcow2"]);
            std::fs::rename(s.file("c.qcow2"), s.file(IMAGE)).expect("rename");
            s.qemu_ok(&["snapshot", "-c", "s", IMAGE]);
            qemu_io(s, &["-c", "write -P 1 64k 64k", "-c", "discard 512k 128k", IMAGE]);
            image()
        }
        "compressed_v2" => {
            create(s, "", "8M");
            qemu_io(s, &["-c", "write -P 7 0 2M", IMAGE]);
            s.qemu_ok(&["convert", "-c", "-O", "qcow2", "-o", "compat=0.10", IMAGE, "c.qcow2"]);
            Made::new("c.qcow2", "qcow2")
        }
        // Image options, with data.
        "compat_v2" => {
            // Version 2 has no zero clusters: `write -z` writes zeros.
            create(s, "compat=0.10", "64M");
            qemu_io(
                s,
                &["-c", "write -P 1 0 1M", "-c", "write -z 2M 1M", "-c", "write -c 4M 64k", IMAGE],
            );
            image()
        }
        "refcount_bits_1" => {
            create(s, "refcount_bits=1", "64M");
            qemu_io(s, &["-c", "write -P 1 0 1M", "-c", "write 9M 64k", IMAGE]);
            image()
        }
        "refcount_bits_16" => {
            // Refcounts of 2 once a snapshot shares the clusters.
            create(s, "refcount_bits=16", "64M");
            qemu_io(s, &["-c", "write -P 1 0 1M", IMAGE]);
            s.qemu_ok(&["snapshot", "-c", "s", IMAGE]);
            qemu_io(s, &["-c", "write -P 2 512k 64k", IMAGE]);
            image()
        }
        "refcount_bits_64" => {
            create(s, "refcount_bits=64", "64M");
            qemu_io(s, &["-c", "write -P 1 0 1M", "-c", "write 9M 64k", IMAGE]);
            image()
        }
        "cluster_512" => {
            create(s, "cluster_size=512", "16M");
            qemu_io(s, &["-c", "write -P 1 0 100k", "-c", "write 5M 3k", IMAGE]);
            image()
        }
        "cluster_2m" => {
            create(s, "cluster_size=2M", "64M");
            qemu_io(s, &["-c", "write -P 1 0 100k", "-c", "write 9M 3M", IMAGE]);
            image()
        }
        "prealloc_metadata_written" => {
            create(s, "preallocation=metadata", "16M");
            qemu_io(
                s,
                &["-c", "write -P 1 0 1M", "-c", "write -z 2M 64k", "-c", "discard 4M 64k", IMAGE],
            );
            image()
        }
        "prealloc_falloc_written" => {
            create(s, "preallocation=falloc", "8M");
            qemu_io(s, &["-c", "write -P 1 64k 64k", "-c", "write -z -u 1M 1M", IMAGE]);
            image()
        }
        "extended_l2" => {
            // 32 subclusters of 2 KiB: partial clusters, zero subclusters.
            create(s, "extended_l2=on", "64M");
            qemu_io(
                s,
                &[
                    "-c",
                    "write -P 1 0 4k",
                    "-c",
                    "write -P 2 70k 2k",
                    "-c",
                    "write -z 128k 8k",
                    "-c",
                    "write -z -u 256k 64k",
                    "-c",
                    "write -P 3 1M 64k",
                    "-c",
                    "write -z 1M 4k",
                    IMAGE,
                ],
            );
            image()
        }
        "extended_l2_over_backing" => {
            create_over_base(s, "extended_l2=on", "4M");
            qemu_io(
                s,
                &[
                    "-c",
                    "write -P 1 0 4k",
                    "-c",
                    "write -z 64k 8k",
                    "-c",
                    "write -z -u 128k 64k",
                    "-c",
                    "discard 1M 32k",
                    IMAGE,
                ],
            );
            image()
        }
        // Feature bits and header extensions.
        "lazy_dirty" => {
            // The dirty bit set by an edit after clean writes: refcounts
            // are right, but the image reads as not cleanly shut down.
            create(s, "lazy_refcounts=on", "64M");
            qemu_io(s, &["-c", "write -P 1 0 1M", IMAGE]);
            set_bits(s, INCOMPATIBLE_LOW_BYTE, DIRTY);
            image()
        }
        "lazy_crashed" => {
            // A crash with lazy refcounts: dirty, refcounts never written.
            create(s, "lazy_refcounts=on", "64M");
            qemu_io_crash(s, &["write -P 1 0 1M", "write 5M 64k"]);
            image()
        }
        "corrupt_bit" => {
            create(s, "", "64M");
            qemu_io(s, &["-c", "write -P 1 0 1M", IMAGE]);
            set_bits(s, INCOMPATIBLE_LOW_BYTE, CORRUPT);
            image()
        }
        "autoclear_unknown" => {
            create(s, "", "64M");
            qemu_io(s, &["-c", "write -P 1 0 1M", IMAGE]);
            set_bits(s, AUTOCLEAR_LOW_BYTE, 0x24);
            image()
        }
        "compatible_unknown" => {
            create(s, "", "64M");
            qemu_io(s, &["-c", "write -P 1 0 1M", IMAGE]);
            set_bits(s, COMPATIBLE_LOW_BYTE, 0x84);
            image()
        }
        "extension_unknown" => {
            create(s, "", "64M");
            qemu_io(s, &["-c", "write -P 1 0 1M", IMAGE]);
            let mut list = extensions(s);
            list.insert(0, (0x1234_5678, b"lived-in extension".to_vec()));
            list.push((0x0bad_cafe, Vec::new()));
            set_extensions(s, &list);
            image()
        }
        "feature_table_missing" => {
            create(s, "", "64M");
            qemu_io(s, &["-c", "write -P 1 0 1M", IMAGE]);
            let list: Vec<_> =
                extensions(s).into_iter().filter(|(k, _)| *k != EXT_FEATURE_TABLE).collect();
            set_extensions(s, &list);
            image()
        }
        "feature_table_missing_incompatible" => {
            // An incompatible bit qemu does not know, and no table naming
            // it: every command refuses the image.
            create(s, "", "64M");
            qemu_io(s, &["-c", "write -P 1 0 1M", IMAGE]);
            let list: Vec<_> =
                extensions(s).into_iter().filter(|(k, _)| *k != EXT_FEATURE_TABLE).collect();
            set_extensions(s, &list);
            set_bits(s, INCOMPATIBLE_LOW_BYTE - 1, 0x80);
            image()
        }
        "data_file" => {
            create(s, "data_file=l.raw", "64M");
            qemu_io(
                s,
                &["-c", "write -P 1 0 1M", "-c", "write -z 2M 1M", "-c", "discard 512k 64k", IMAGE],
            );
            image()
        }
        "data_file_missing" => {
            create(s, "data_file=l.raw", "64M");
            qemu_io(s, &["-c", "write -P 1 0 1M", IMAGE]);
            std::fs::remove_file(s.file("l.raw")).expect("remove the data file");
            image()
        }
        "data_file_raw" => {
            create(s, "data_file=l.raw,data_file_raw=on", "64M");
            qemu_io(s, &["-c", "write -P 1 0 1M", IMAGE]);
            image()
        }
        // Persistent dirty bitmaps.
        "bitmap" => {
            create(s, "", "64M");
            qemu_bitmap(s, &["--add", IMAGE, "b0"]);
            image()
        }
        "bitmap_granularities" => {
            create(s, "", "64M");
            for (g, name) in [("512", "fine"), ("64k", "mid"), ("2M", "coarse"), ("2G", "huge")] {
                qemu_bitmap(s, &["--add", "-g", g, IMAGE, name]);
            }
            qemu_io(s, &["-c", "write -P 1 0 3M", IMAGE]);
            shared()
        }
        "bitmap_disabled_enabled" => {
            create(s, "", "64M");
            qemu_bitmap(s, &["--add", "--disable", IMAGE, "off"]);
            qemu_bitmap(s, &["--add", IMAGE, "on"]);
            qemu_bitmap(s, &["--add", IMAGE, "x"]);
            qemu_bitmap(s, &["--disable", IMAGE, "x"]);
            qemu_bitmap(s, &["--enable", IMAGE, "off"]);
            qemu_io(s, &["-c", "write -P 1 1M 1M", IMAGE]);
            shared()
        }
        "bitmap_merged_cleared" => {
            // Bitmaps with set bits (table clusters allocated), merged
            // from this image and another, one cleared, one removed.
            s.qemu_ok(&["create", "-q", "-f", "qcow2", "o.qcow2", "64M"]);
            s.qemu_ok(&["bitmap", "--add", "o.qcow2", "x"]);
            qemu_io(s, &["-c", "write 0 1M", "o.qcow2"]);
            create(s, "", "64M");
            qemu_bitmap(s, &["--add", "-g", "4k", IMAGE, "a"]);
            qemu_bitmap(s, &["--add", IMAGE, "gone"]);
            qemu_bitmap(s, &["--add", "--disable", IMAGE, "d"]);
            qemu_io(s, &["-c", "write -P 1 0 1M", "-c", "write 40M 64k", IMAGE]);
            qemu_bitmap(s, &["--add", "--disable", IMAGE, "m"]);
            qemu_bitmap(s, &["--merge", "a", IMAGE, "m"]);
            qemu_bitmap(s, &["--merge", "x", "-b", "o.qcow2", "-F", "qcow2", IMAGE, "m"]);
            qemu_bitmap(s, &["--merge", "m", IMAGE, "d"]);
            qemu_bitmap(s, &["--clear", IMAGE, "a"]);
            qemu_bitmap(s, &["--remove", IMAGE, "gone"]);
            shared()
        }
        "bitmap_in_use_crashed" => {
            // qemu-io crashed with the bitmaps loaded: both left in use.
            create(s, "", "64M");
            qemu_bitmap(s, &["--add", IMAGE, "a"]);
            qemu_io(s, &["-c", "write -P 1 0 1M", IMAGE]);
            qemu_bitmap(s, &["--add", "--disable", IMAGE, "b"]);
            qemu_io_crash(s, &["write 2M 1M"]);
            shared()
        }
        "bitmap_in_use_edited" => {
            // The in-use flag set by an edit on a disabled bitmap (auto
            // off) with data.
            create(s, "", "64M");
            qemu_bitmap(s, &["--add", "--disable", IMAGE, "a"]);
            qemu_bitmap(s, &["--add", IMAGE, "b"]);
            qemu_io(s, &["-c", "write -P 1 0 1M", IMAGE]);
            qemu_bitmap(s, &["--merge", "b", IMAGE, "a"]);
            mark_first_bitmap_in_use(s);
            shared()
        }
        "bitmap_lazy_crashed" => {
            create(s, "lazy_refcounts=on", "64M");
            qemu_bitmap(s, &["--add", IMAGE, "a"]);
            qemu_io_crash(s, &["write -P 1 0 1M"]);
            shared()
        }
        "bitmap_snapshots" => {
            create(s, "", "64M");
            qemu_bitmap(s, &["--add", IMAGE, "a"]);
            qemu_io(s, &["-c", "write -P 1 0 1M", IMAGE]);
            s.qemu_ok(&["snapshot", "-c", "s1", IMAGE]);
            qemu_bitmap(s, &["--add", "-g", "1M", IMAGE, "b"]);
            qemu_io(s, &["-c", "write -P 2 0 64k", IMAGE]);
            s.qemu_ok(&["snapshot", "-c", "s2", IMAGE]);
            shared()
        }
        "bitmap_autoclear_cleared" => {
            // A program without bitmap support opened the image: the
            // autoclear bit is clear and qemu disregards the bitmaps.
            create(s, "", "64M");
            qemu_bitmap(s, &["--add", IMAGE, "a"]);
            qemu_io(s, &["-c", "write -P 1 0 1M", IMAGE]);
            clear_bits(s, AUTOCLEAR_LOW_BYTE, AUTOCLEAR_BITMAPS);
            image()
        }
        "bitmap_compressed" => {
            create(s, "", "16M");
            qemu_io(s, &["-c", "write -P 7 0 4M", IMAGE]);
            s.qemu_ok(&["convert", "-c", "-O", "qcow2", IMAGE, "c.qcow2"]);
            std::fs::rename(s.file("c.qcow2"), s.file(IMAGE)).expect("rename");
            qemu_bitmap(s, &["--add", IMAGE, "a"]);
            qemu_io(s, &["-c", "write -P 1 1M 64k", "-c", "write -c -P 2 8M 128k", IMAGE]);
            shared()
        }
        "bitmaps_many" => {
            create(s, "", "64M");
            for i in 0..12 {
                let g = (512u64 << i).to_string();
                qemu_bitmap(
                    s,
                    &["--add", "-g", &g, IMAGE, &format!("bitmap {i} with a longer name")],
                );
            }
            qemu_io(s, &["-c", "write -P 1 0 4M", IMAGE]);
            shared()
        }
        "bitmap_resized" => {
            create(s, "", "16M");
            qemu_bitmap(s, &["--add", IMAGE, "a"]);
            qemu_io(s, &["-c", "write -P 1 0 1M", IMAGE]);
            s.qemu_ok(&["resize", "-q", IMAGE, "48M"]);
            qemu_io(s, &["-c", "write -P 2 40M 1M", IMAGE]);
            s.qemu_ok(&["resize", "-q", "--shrink", IMAGE, "44M"]);
            shared()
        }
        "bitmap_names" => {
            // Names JSON must escape, non-ASCII, control bytes, the
            // longest name qemu allows.
            create(s, "", "64M");
            let long = "n".repeat(1023);
            for name in
                ["\"quoted\"", "back\\slash", "tab\there", "ünïcödé ☃", "ctl\u{1}\u{7f}", &long]
            {
                qemu_bitmap(s, &["--add", IMAGE, name]);
            }
            shared()
        }
        "bitmap_name_not_utf8" => {
            // Bytes that are not UTF-8 written into a name by an edit:
            // raw in the human output, replaced in JSON.
            create(s, "", "64M");
            qemu_bitmap(s, &["--add", IMAGE, "abc"]);
            let name_at = bitmap_directory(s) + 24;
            edit::write_at(&s.file(IMAGE), name_at, b"\xff\xc3");
            shared()
        }
        "bitmap_table_all_ones" => {
            // A bitmap table entry "all ones, no cluster" (qemu never
            // writes one; an edit): the cluster it pointed to leaks.
            create(s, "", "64M");
            qemu_bitmap(s, &["--add", "-g", "4k", IMAGE, "a"]);
            qemu_io(s, &["-c", "write 0 1M", IMAGE]);
            let table = first_bitmap_table(s);
            edit::write_at(&s.file(IMAGE), table, &1u64.to_be_bytes());
            shared()
        }
        "bitmap_in_use_bad_table" => {
            // An in-use bitmap is not loaded at open, but the check reads
            // its table: a reserved bit set fails the check.
            create(s, "", "64M");
            qemu_bitmap(s, &["--add", "-g", "4k", IMAGE, "a"]);
            qemu_io(s, &["-c", "write 0 1M", IMAGE]);
            mark_first_bitmap_in_use(s);
            let table = first_bitmap_table(s);
            let entry = edit::be64(&s.file(IMAGE), table);
            edit::write_at(&s.file(IMAGE), table, &(entry | 2).to_be_bytes());
            shared()
        }
        // What other commands leave behind.
        "snapshots_written" => {
            create(s, "", "64M");
            qemu_io(s, &["-c", "write -P 1 0 1M", IMAGE]);
            s.qemu_ok(&["snapshot", "-c", "s1", IMAGE]);
            qemu_io(s, &["-c", "write -P 2 512k 1M", IMAGE]);
            s.qemu_ok(&["snapshot", "-c", "s2", IMAGE]);
            qemu_io(s, &["-c", "write -z 0 64k", "-c", "discard 3M 1M", IMAGE]);
            image()
        }
        "snapshot_deleted_applied" => {
            create(s, "", "64M");
            qemu_io(s, &["-c", "write -P 1 0 1M", IMAGE]);
            s.qemu_ok(&["snapshot", "-c", "s1", IMAGE]);
            qemu_io(s, &["-c", "write -P 2 0 1M", IMAGE]);
            s.qemu_ok(&["snapshot", "-c", "s2", IMAGE]);
            s.qemu_ok(&["snapshot", "-d", "s1", IMAGE]);
            s.qemu_ok(&["snapshot", "-a", "s2", IMAGE]);
            image()
        }
        "amended_to_v2" => {
            create(s, "", "64M");
            qemu_io(s, &["-c", "write -P 1 0 1M", "-c", "write -z 2M 1M", IMAGE]);
            s.qemu_ok(&["amend", "-o", "compat=0.10", IMAGE]);
            image()
        }
        "amended_refcount_bits" => {
            create(s, "", "64M");
            qemu_io(s, &["-c", "write -P 1 0 1M", IMAGE]);
            s.qemu_ok(&["snapshot", "-c", "s", IMAGE]);
            s.qemu_ok(&["amend", "-o", "refcount_bits=64", IMAGE]);
            qemu_io(s, &["-c", "write -P 2 0 64k", IMAGE]);
            image()
        }
        "grown" => {
            // Grown to 8 GiB: a larger L1 table elsewhere, the old one
            // freed.
            create(s, "", "64M");
            qemu_io(s, &["-c", "write -P 1 0 1M", IMAGE]);
            s.qemu_ok(&["resize", "-q", IMAGE, "8G"]);
            qemu_io(s, &["-c", "write -P 2 7G 1M", IMAGE]);
            image()
        }
        "rebased" => {
            s.qemu_ok(&["create", "-q", "-f", "qcow2", "n.qcow2", "8M"]);
            qemu_io(s, &["-c", "write -P 8 0 2M", "n.qcow2"]);
            create_over_base(s, "", "8M");
            qemu_io(s, &["-c", "write -P 1 1M 1M", IMAGE]);
            s.qemu_ok(&["rebase", "-q", "-b", "n.qcow2", "-F", "qcow2", IMAGE]);
            image()
        }
        "committed" => {
            // An overlay committed into its backing file, which is then
            // the image.
            s.qemu_ok(&["create", "-q", "-f", "qcow2", BASE, "16M"]);
            qemu_io(s, &["-c", "write -P 9 0 8M", BASE]);
            s.qemu_ok(&[
                "create", "-q", "-f", "qcow2", "-b", BASE, "-F", "qcow2", "o.qcow2", "16M",
            ]);
            qemu_io(s, &["-c", "write -P 1 1M 2M", "-c", "write -z 6M 1M", "o.qcow2"]);
            s.qemu_ok(&["commit", "-q", "o.qcow2"]);
            Made::new(BASE, "qcow2").with(&["info", "o.qcow2"]).with(&["check", "o.qcow2"])
        }
        other => panic!("no image kind {other}"),
    }
}

kinds!(make;
    written, fragmented, past_first_l2, second_l2_sparse, zero_clusters, zero_unmapped,
    zero_over_backing, discarded, discarded_over_backing,
    compressed, compressed_mixed, compressed_rewritten, compressed_cluster_512,
    compressed_cluster_2m, compressed_extended_l2, compressed_snapshot, compressed_v2,
    compat_v2, refcount_bits_1, refcount_bits_16, refcount_bits_64, cluster_512, cluster_2m,
    prealloc_metadata_written, prealloc_falloc_written, extended_l2, extended_l2_over_backing,
    lazy_dirty, lazy_crashed, corrupt_bit, autoclear_unknown, compatible_unknown,
    extension_unknown, feature_table_missing, feature_table_missing_incompatible,
    data_file, data_file_missing, data_file_raw,
    bitmap, bitmap_granularities, bitmap_disabled_enabled, bitmap_merged_cleared,
    bitmap_in_use_crashed, bitmap_in_use_edited, bitmap_lazy_crashed, bitmap_snapshots,
    bitmap_autoclear_cleared, bitmap_compressed, bitmaps_many, bitmap_resized, bitmap_names,
    bitmap_name_not_utf8,    bitmap_table_all_ones, bitmap_in_use_bad_table,
    snapshots_written, snapshot_deleted_applied, amended_to_v2, amended_refcount_bits, grown,
    rebased, committed,
);

/// The zstd kinds: qemu-img builds without zstd (Debian's 5.2.0) cannot
/// open these images at all, a property of the build, so those versions
/// skip, after a create with `compression_type=zstd` shows the lack.
fn compare_zstd(kind: &str, version: &str) {
    let Some(qemu) = qemu_or_skip(version) else { return };
    let dir = crate::util::tempdir();
    let t = crate::util::Transcript::default();
    let args = ["create", "-q", "-f", "qcow2", "-o", "compression_type=zstd", "z.qcow2", "1M"];
    let probe = t.run(&qemu.path, &args, dir.path());
    if probe.stderr.contains("Invalid parameter 'zstd'") {
        skip_build_lacks(&format!(
            "qemu-img {version} was built without zstd (it refuses compression_type=zstd)"
        ));
        return;
    }
    compare(make, kind, version);
}

/// zstd-compressed clusters from `convert -c`.
#[rstest::rstest]
fn compressed_zstd(
    #[values("5.2.0", "7.2.18", "7.2.22", "10.0.2", "10.0.13", "11.1.3")] version: &str,
) {
    compare_zstd("compressed_zstd", version);
}

/// A zstd image with a bitmap and compressed and plain clusters written
/// by qemu-io.
#[rstest::rstest]
fn compressed_zstd_bitmaps(
    #[values("5.2.0", "7.2.18", "7.2.22", "10.0.2", "10.0.13", "11.1.3")] version: &str,
) {
    compare_zstd("compressed_zstd_bitmaps", version);
}
