//! qcow2 against qemu-img: every combination of size, cluster size,
//! refcount width, compatibility level, feature and preallocation is
//! created by both; the command prints the same, and the two files are
//! byte for byte the same (and, when `preallocation` is given, allocated
//! the same); refused combinations are refused with qemu-img's words and
//! leave nothing. `info` on qemu-img's images prints what `qemu-img info`
//! prints.

use super::Pair;
use crate::util::{create_args, path_str, Sandbox};
use instar_matrix::Target;
use rstest::rstest;

/// Creates `size` with `-o options` with both programs and compares the
/// outputs, the files, and (when `options` names a preallocation mode) the
/// allocation.
fn create(options: &str, size: &str) {
    let Some(pair) = Pair::new(Target::Qcow2) else { return };
    if !pair.create(&[], options, size) {
        return;
    }
    pair.same_bytes();
    if options.contains("preallocation") {
        pair.same_allocation();
    }
}

#[rstest]
fn sizes_and_cluster_sizes(
    #[values(
        "",
        "cluster_size=512",
        "cluster_size=1k",
        "cluster_size=2k",
        "cluster_size=4k",
        "cluster_size=8k",
        "cluster_size=16k",
        "cluster_size=32k",
        "cluster_size=64k",
        "cluster_size=128k",
        "cluster_size=256k",
        "cluster_size=512k",
        "cluster_size=1M",
        "cluster_size=2M"
    )]
    cluster_size: &str,
    #[values("0", "1", "1000", "1M", "64M", "1G", "100G", "1T", "16T")] size: &str,
) {
    create(cluster_size, size);
}

#[rstest]
fn refcount_widths(
    #[values(
        "refcount_bits=1",
        "refcount_bits=2",
        "refcount_bits=4",
        "refcount_bits=8",
        "refcount_bits=16",
        "refcount_bits=32",
        "refcount_bits=64"
    )]
    refcount_bits: &str,
    #[values("cluster_size=512", "cluster_size=4k", "cluster_size=64k", "cluster_size=2M")]
    cluster_size: &str,
    #[values("0", "1M", "1G", "1T")] size: &str,
) {
    create(&format!("{refcount_bits},{cluster_size}"), size);
}

/// The refcount table itself has to grow.
#[test]
fn refcount_table_grows() {
    create("refcount_bits=64,cluster_size=512", "4G");
}

#[rstest]
fn features_and_compat_levels(
    #[values(
        "compat=0.10",
        "compat=1.1",
        "compat=v2",
        "compat=v3",
        "lazy_refcounts=on",
        "compression_type=zstd",
        "extended_l2=on",
        "extended_l2=on,cluster_size=16k",
        "extended_l2=on,cluster_size=2M",
        "compat=0.10,cluster_size=512",
        "lazy_refcounts=on,compression_type=zstd,extended_l2=on",
        "encryption=off"
    )]
    options: &str,
    #[values("0", "1M", "64M", "1G", "1T")] size: &str,
) {
    create(options, size);
}

#[rstest]
fn preallocation(
    #[values(
        "preallocation=off",
        "preallocation=metadata",
        "preallocation=falloc",
        "preallocation=full"
    )]
    mode: &str,
    #[values(
        "",
        ",cluster_size=512",
        ",cluster_size=2M",
        ",extended_l2=on",
        ",refcount_bits=1",
        ",compat=0.10",
        ",lazy_refcounts=on"
    )]
    extra: &str,
    #[values("0", "1000", "1M", "64M")] size: &str,
) {
    create(&format!("{mode}{extra}"), size);
}

/// A 1 MiB raw backing file, named by its absolute path.
fn with_backing_file(options: &str, size: &str) {
    let Some(pair) = Pair::new(Target::Qcow2) else { return };
    let base = pair.base().join("base.raw");
    std::fs::write(&base, vec![0u8; 1 << 20]).unwrap();
    let options = format!("backing_file={},backing_fmt=raw{options}", path_str(&base));
    if pair.create(&[], &options, size) {
        pair.same_bytes();
    }
}

#[rstest]
fn backing_files(
    #[values("", ",compat=0.10", ",cluster_size=512", ",cluster_size=4k", ",lazy_refcounts=on")]
    extra: &str,
    #[values("1G", "1M")] size: &str,
) {
    with_backing_file(extra, size);
}

#[rstest]
fn backing_files_preallocated(
    #[values(
        ",extended_l2=on,preallocation=metadata",
        ",extended_l2=on,preallocation=falloc",
        ",extended_l2=on,preallocation=full"
    )]
    extra: &str,
) {
    with_backing_file(extra, "1M");
}

/// Refused options: qemu-img's words, and no file from instar.
#[rstest]
#[case::cluster_size_256("cluster_size=256", "1G")]
#[case::cluster_size_4m("cluster_size=4M", "1G")]
#[case::cluster_size_3000("cluster_size=3000", "1G")]
#[case::compat_0_42("compat=0.42", "1G")]
#[case::refcount_bits_3("refcount_bits=3", "1G")]
#[case::refcount_bits_128("refcount_bits=128", "1G")]
#[case::refcount_bits_8_compat_v2("refcount_bits=8,compat=0.10", "1G")]
#[case::lazy_refcounts_compat_v2("lazy_refcounts=on,compat=0.10", "1G")]
#[case::zstd_compat_v2("compression_type=zstd,compat=0.10", "1G")]
#[case::compression_type_foo("compression_type=foo", "1G")]
#[case::extended_l2_4k_clusters("extended_l2=on,cluster_size=4k", "1G")]
#[case::extended_l2_compat_v2("extended_l2=on,compat=0.10", "1G")]
#[case::preallocation_x("preallocation=x", "1G")]
#[case::preallocation_x_cluster_size_256("preallocation=x,cluster_size=256", "1G")]
#[case::backing_fmt_without_file("backing_fmt=raw", "1G")]
#[case::data_file_raw("data_file_raw=on", "1G")]
#[case::too_large_for_512_clusters("cluster_size=512", "16T")]
#[case::too_large_for_4k_clusters("cluster_size=4k", "16T")]
#[case::too_large("", "1E")]
fn refusals(#[case] options: &str, #[case] size: &str) {
    if let Some(pair) = Pair::new(Target::Qcow2) {
        pair.assert_refused(&[], options, size);
    }
}

/// `instar info` (JSON and human) on an image qemu-img made (`create -u`)
/// prints exactly what `qemu-img info` prints.
#[rstest]
#[case::default("", "1G")]
#[case::compat_v2("compat=0.10", "1G")]
#[case::lazy_refcounts("lazy_refcounts=on", "64M")]
#[case::extended_l2("extended_l2=on", "1G")]
#[case::zstd("compression_type=zstd", "1G")]
#[case::refcount_bits_1_cluster_512("refcount_bits=1,cluster_size=512", "1G")]
#[case::prealloc_metadata("preallocation=metadata", "1M")]
#[case::backing_absolute("backing_file=$BASE,backing_fmt=raw", "1M")]
#[case::backing_absolute_compat_v2("backing_file=$BASE,backing_fmt=raw,compat=0.10", "1M")]
#[case::backing_relative("backing_file=base.raw,backing_fmt=raw", "1M")]
fn info(#[case] options: &str, #[case] size: &str) {
    let Some(s) = Sandbox::new() else { return };
    let base = s.file("base.raw");
    std::fs::write(&base, vec![0u8; 1 << 20]).unwrap();
    let image = path_str(&s.file("img.qcow2"));
    let options = options.replace("$BASE", &path_str(&base));
    s.qemu_ok(&create_args(&["-q", "-u"], "qcow2", &options, &image, size));
    for output in ["--output=json", "--output=human"] {
        s.same(&["info", "-f", "qcow2", output, &image]);
    }
}
