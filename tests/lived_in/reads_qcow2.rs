//! qcow2 images shaped for the read layer (issue 13): the cluster shapes
//! qemu's `qcow2_get_host_offset` tells apart, each made by qemu-io at
//! unaligned offsets so that runs start and end inside clusters and
//! subclusters: subclusters written, zeroed and discarded in part (over a
//! backing file too), both zero-cluster forms, compressed clusters written
//! one by one by qemu-io and partly overwritten, runs crossing many small
//! L2 tables, preallocated metadata with data here and there, and an
//! external raw data file with holes. Every kind is compared on the
//! standard lines (`map` and `compare` against qemu-img's `convert -O raw`
//! among them) and on `map` windows that start and end inside clusters.

use super::Made;
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
        other => panic!("no reads_qcow2 kind {other}"),
    }
}

kinds!(make;
    subclusters_partial, subclusters_over_backing, zero_forms, compressed_by_io,
    runs_across_l2_tables, prealloc_metadata_sparse, data_file_raw_sparse,
);
