//! qcow2 images shaped for the read layer (issue 13): the cluster shapes
//! qemu's `qcow2_get_host_offset` tells apart, each made by qemu-io at
//! unaligned offsets so that runs start and end inside clusters and
//! subclusters: subclusters written, zeroed and discarded in part (over a
//! backing file too), both zero-cluster forms, compressed clusters written
//! one by one by qemu-io and partly overwritten, runs crossing many small
//! L2 tables, preallocated metadata with data here and there, and an
//! external raw data file with holes; and damaged images (L1 and L2
//! entries past the end of the file, unaligned, with reserved bits set,
//! a refcount table entry with reserved bits, files cut short inside the
//! data and inside an L2 table, compressed clusters cut short or
//! overwritten). Every kind is compared on the
//! standard lines (`map` and `compare` against qemu-img's `convert -O raw`
//! among them) and on `map` windows that start and end inside clusters.

use super::Made;
use crate::util::edit::{be64, file_len, set_file_len, write_at};
use crate::util::Sandbox;

/// The image every kind makes.
const IMAGE: &str = "r.qcow2";

/// `create -q -f qcow2 [-o opts] [-b backing -F fmt] IMAGE size`.
fn create(s: &Sandbox, opts: &str, backing: Option<(&str, &str)>, size: &str) {
    let mut args = vec!["create", "-q", "-f", "qcow2"];
    if !opts.is_empty() {
        args.extend(["-o", opts]);
    }
    if let Some((b, fmt)) = backing {
        args.extend(["-b", b, "-F", fmt]);
    }
    args.extend([IMAGE, size]);
    s.qemu_ok(&args);
}

/// Runs the qemu-io commands `cmds` on `image` (of format `fmt`).
fn io(s: &Sandbox, fmt: &str, image: &str, cmds: &[&str]) {
    super::qemu_io_cmds(s, fmt, image, cmds);
}

/// The header's `l1_table_offset` (big-endian, as every field).
const L1_TABLE_OFFSET: u64 = 40;
/// The header's `refcount_table_offset`.
const REFCOUNT_TABLE_OFFSET: u64 = 48;
/// An L1 or L2 entry's flag: the cluster's refcount is exactly one.
const COPIED: u64 = 1 << 63;
/// An L2 entry's flag: the cluster is compressed.
const COMPRESSED: u64 = 1 << 62;
/// The host offset bits of an L1 entry and of a standard L2 entry.
const OFFSET_MASK: u64 = 0x00ff_ffff_ffff_fe00;
/// The host offset bits of a compressed L2 entry with 64 KiB clusters
/// (`62 - (cluster_bits - 8)` bits).
const COMPRESSED_OFFSET_MASK: u64 = (1 << 54) - 1;

/// Where the L1 table of [`IMAGE`] starts.
fn l1_offset(s: &Sandbox) -> u64 {
    be64(&s.file(IMAGE), L1_TABLE_OFFSET)
}

/// Where the first L2 table of [`IMAGE`] starts.
fn l2_offset(s: &Sandbox) -> u64 {
    be64(&s.file(IMAGE), l1_offset(s)) & OFFSET_MASK
}

/// Entry `index` of the first L2 table.
fn l2_entry(s: &Sandbox, index: u64) -> u64 {
    be64(&s.file(IMAGE), l2_offset(s) + 8 * index)
}

/// Sets entry `index` of the first L2 table.
fn set_l2(s: &Sandbox, index: u64, entry: u64) {
    write_at(&s.file(IMAGE), l2_offset(s) + 8 * index, &entry.to_be_bytes());
}

/// Sets entry `index` of the L1 table.
fn set_l1(s: &Sandbox, index: u64, entry: u64) {
    write_at(&s.file(IMAGE), l1_offset(s) + 8 * index, &entry.to_be_bytes());
}

/// A 1 MiB image with data in its first clusters, then `damage` done.
fn damaged(s: &Sandbox, damage: impl Fn(&Sandbox)) -> Made {
    create(s, "", None, "1M");
    io(s, "qcow2", IMAGE, &["write -P 0x81 0 200k", "write -P 0x82 700k 100k"]);
    damage(s);
    Made::new(IMAGE, "qcow2")
}

/// A 1 MiB image with a compressed cluster at 64 KiB between data, then
/// `damage` done at the host offset of its compressed bytes.
fn compressed_damaged(s: &Sandbox, damage: impl Fn(&Sandbox, u64)) -> Made {
    create(s, "", None, "1M");
    io(
        s,
        "qcow2",
        IMAGE,
        &["write -P 0x91 0 64k", "write -c -P 0x92 64k 64k", "write -P 0x93 128k 64k"],
    );
    let entry = l2_entry(s, 1);
    assert!(entry & COMPRESSED != 0, "qemu-io wrote the cluster compressed");
    damage(s, entry & COMPRESSED_OFFSET_MASK);
    Made::new(IMAGE, "qcow2")
}

/// Map windows that start and end inside clusters and subclusters.
fn windows(made: Made) -> Made {
    made.with(&["map", "--output=json", "--start-offset=5000", "--max-length=200000", IMAGE])
        .with(&["map", "--start-offset=1048577", "--max-length=1000000", IMAGE])
}

/// Makes the image of `kind` with the oracle.
fn make(s: &Sandbox, kind: &str) -> Made {
    match kind {
        // Subclusters (64 KiB clusters, 2 KiB subclusters) written, zeroed
        // with and without unmapping, and discarded, at unaligned places.
        "subclusters_partial" => {
            create(s, "extended_l2=on", None, "4M");
            io(
                s,
                "qcow2",
                IMAGE,
                &[
                    "write -P 0x11 1000 3000",
                    "write -P 0x12 10240 2048",
                    "write -P 0x13 65000 9000",
                    "write -z 20480 4096",
                    "write -z -u 131072 8192",
                    "write -P 0x14 1048000 70000",
                    "discard 1050624 4096",
                    "write -z 2097152 2048",
                    "write -P 0x15 4190000 4304",
                ],
            );
            windows(Made::new(IMAGE, "qcow2"))
        }
        // The same over a backing file full of data: unallocated
        // subclusters of allocated clusters read the backing file.
        "subclusters_over_backing" => {
            s.qemu_ok(&["create", "-q", "-f", "qcow2", "base.qcow2", "4M"]);
            io(s, "qcow2", "base.qcow2", &["write -P 0x21 0 4M"]);
            create(s, "extended_l2=on", Some(("base.qcow2", "qcow2")), "4M");
            io(
                s,
                "qcow2",
                IMAGE,
                &[
                    "write -P 0x22 3000 1000",
                    "write -z 8192 2048",
                    "write -z -u 65536 4096",
                    "write -P 0x23 70000 100",
                    "discard 1048576 65536",
                    "write -P 0x24 2000000 300000",
                ],
            );
            windows(Made::new(IMAGE, "qcow2"))
        }
        // Both zero forms: zeros over allocated clusters keep them
        // (ZERO_ALLOC), unmapped zeros and zeros over nothing do not
        // (ZERO_PLAIN).
        "zero_forms" => {
            create(s, "", None, "4M");
            io(
                s,
                "qcow2",
                IMAGE,
                &[
                    "write -P 0x31 0 1M",
                    "write -z 65536 131072",
                    "write -z -u 327680 65536",
                    "write -z 2097152 65536",
                    "write -P 0x32 2200000 5000",
                ],
            );
            windows(Made::new(IMAGE, "qcow2"))
        }
        // Compressed clusters written one by one by qemu-io, between plain
        // data, one of them partly overwritten (no longer compressed).
        "compressed_by_io" => {
            create(s, "", None, "4M");
            io(
                s,
                "qcow2",
                IMAGE,
                &[
                    "write -c -P 0x41 0 64k",
                    "write -c -P 0x42 64k 64k",
                    "write -P 0x43 131072 1000",
                    "write -c -P 0x44 1M 64k",
                    "write -P 0x45 1049000 200",
                    "write -c -P 0x46 3M 64k",
                ],
            );
            windows(Made::new(IMAGE, "qcow2"))
        }
        // 512-byte clusters: an L2 table covers 32 KiB, so data runs cross
        // many tables.
        "runs_across_l2_tables" => {
            create(s, "cluster_size=512", None, "2M");
            io(
                s,
                "qcow2",
                IMAGE,
                &[
                    "write -P 0x51 1000 200000",
                    "write -z 50000 40000",
                    "write -P 0x52 1048000 100000",
                ],
            );
            windows(Made::new(IMAGE, "qcow2"))
        }
        // Preallocated metadata with 4 KiB clusters: every cluster is data
        // at a host offset whose holes read as zeros.
        "prealloc_metadata_sparse" => {
            create(s, "preallocation=metadata,cluster_size=4k", None, "4M");
            io(
                s,
                "qcow2",
                IMAGE,
                &[
                    "write -P 0x61 5000 3000",
                    "write -P 0x62 1048000 70000",
                    "write -z 2097152 8192",
                ],
            );
            windows(Made::new(IMAGE, "qcow2"))
        }
        // An external raw data file with holes: the map names the data
        // file, whose holes read as zeros.
        "data_file_raw_sparse" => {
            create(s, "data_file=r.data,data_file_raw=on", None, "4M");
            io(
                s,
                "qcow2",
                IMAGE,
                &[
                    "write -P 0x71 1000 3000",
                    "write -z 65536 65536",
                    "write -P 0x72 1048576 65536",
                    "write -P 0x73 3000000 100",
                ],
            );
            windows(Made::new(IMAGE, "qcow2"))
        }
        // Damaged tables and clusters, each after qemu-io wrote data:
        // qemu's answer (data from past the end of the file, a corruption
        // notice and EIO, an inflate failure) is what instar must give.
        "l2_entry_past_eof" => damaged(s, |s| set_l2(s, 1, COPIED | (1 << 40))),
        "l2_entry_unaligned" => damaged(s, |s| {
            let entry = l2_entry(s, 1);
            set_l2(s, 1, entry + 512);
        }),
        "l1_entry_past_eof" => damaged(s, |s| set_l1(s, 0, COPIED | (1 << 40))),
        "l1_entry_unaligned" => damaged(s, |s| {
            let entry = be64(&s.file(IMAGE), l1_offset(s));
            set_l1(s, 0, entry + 512);
        }),
        // Reserved bits set in an L1 entry and in a refcount table entry:
        // `check` reports them from 6.1 (QCOW2_CHECK_RESERVED_BITS).
        "l1_entry_reserved_bits" => damaged(s, |s| {
            let entry = be64(&s.file(IMAGE), l1_offset(s));
            set_l1(s, 0, entry | 2);
        }),
        "reftable_entry_reserved_bits" => damaged(s, |s| {
            let reftable = be64(&s.file(IMAGE), REFCOUNT_TABLE_OFFSET);
            let entry = be64(&s.file(IMAGE), reftable);
            write_at(&s.file(IMAGE), reftable, &(entry | 2).to_be_bytes());
        }),
        "truncated_in_data" => damaged(s, |s| {
            let len = file_len(&s.file(IMAGE));
            set_file_len(&s.file(IMAGE), len - 100_000);
        }),
        "truncated_in_l2" => damaged(s, |s| {
            let l2 = l2_offset(s);
            set_file_len(&s.file(IMAGE), l2 + 1000);
        }),
        // A compressed cluster whose deflate stream is cut short (zeros
        // after its first bytes: it inflates to less than a cluster), and
        // one overwritten with bytes that are no deflate stream at all.
        "compressed_cut_short" => compressed_damaged(s, |s, at| {
            write_at(&s.file(IMAGE), at + 8, &[0; 200]);
        }),
        "compressed_garbage" => compressed_damaged(s, |s, at| {
            write_at(&s.file(IMAGE), at, &[0xa5; 64]);
        }),
        other => panic!("no reads_qcow2 kind {other}"),
    }
}

kinds!(make;
    subclusters_partial, subclusters_over_backing, zero_forms, compressed_by_io,
    runs_across_l2_tables, prealloc_metadata_sparse, data_file_raw_sparse,
    l2_entry_past_eof, l2_entry_unaligned, l1_entry_past_eof, l1_entry_unaligned,
    l1_entry_reserved_bits, reftable_entry_reserved_bits,
    truncated_in_data, truncated_in_l2, compressed_cut_short, compressed_garbage,
);
