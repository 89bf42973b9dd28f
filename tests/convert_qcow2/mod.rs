//! `instar convert -O qcow2` against `qemu-img convert -O qcow2` (the
//! qcow2 writer, docs/compat.md §11.2): one named test per case,
//! `convert_qcow2::<case>` (and `convert_qcow2::versions::<case>::<version>`
//! for those run with every qemu-img version).
//!
//! Each case makes its sources in a sandbox (raw files written here,
//! qcow2 images and backing chains with the oracle and qemu-io), then
//! runs the same convert command line with the oracle in `q/` and with
//! instar in `i/` (same relative names, so that names recorded in the
//! images are the same). The exit codes, the outputs and the target files
//! (and an external data file) must be identical byte for byte: no masks.
//! A case with a target made beforehand (`-n`) makes it once with the
//! oracle and copies it to both folders.
//!
//! Compressed cases cover the payloads' placement (packing, straddling,
//! clusters stored plain) and, with instar's deflate and the host's
//! libzstd, their bytes.

use crate::lived_in::qemu_io;
use crate::util::{as_instar, instar, qemu_or_skip, Sandbox};
use std::path::Path;

/// 1 MiB.
const MIB: usize = 1 << 20;

/// A deterministic byte stream (a 64-bit LCG), so that the sources are
/// the same on every run without a random crate.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 =
            self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            *b = (self.next() >> 7) as u8;
        }
    }
}

/// The sources a case converts.
#[derive(Clone, Copy)]
enum Source {
    /// docs: convert-facts §2.3's gaps.raw: 1 MiB of 0x11 with zero runs
    /// of 512 B to 64 KiB, aligned and not.
    Gaps,
    /// `size` MiB of runs of data (a byte repeated, or noise) and zeros of
    /// 512 B to 300 KB, from `seed`.
    Mix(usize, u64),
    /// 200 MiB mostly holes, with data islands every few MiB.
    Sparse200,
    /// 1 MiB of noise, 1 MiB of zeros, 512 KiB + 1000 bytes of noise.
    Noise,
    /// 300 KiB + 1000 bytes (the disk ends inside a cluster and a
    /// sector): 0x33, zeros from 200 KiB on.
    Odd,
    /// `count` clusters of `cluster` bytes: a byte repeated, zeros, or
    /// noise, then 1000 bytes of 0x05 (a partial last cluster).
    Clusters(usize, usize),
    /// A qcow2 image over a qcow2 base (the base has data at 0-3M and
    /// 5-6M; the top data, zero clusters, a partial cluster).
    Top,
    /// [`Source::Top`] with 4 KiB clusters over the same base: a 64 KiB
    /// target cluster is only partly written, the rest copied from the
    /// base.
    Top4k,
    /// A qcow2 image with 4 KiB clusters over a base whose first MiB is
    /// written zeros (data to block status): zero clusters of the top
    /// that leave the rest of a 64 KiB target cluster to the base.
    ZerosOverWrittenZeros,
    /// A qcow2 image with data, zero clusters and a partial zero write.
    Zeros,
    /// The oracle's `convert -c` of `Mix(8, 1)`: compressed clusters and
    /// uncompressed ones among them.
    Compressed,
    /// 1 MiB whose first 32 KiB are 0x77, the rest zeros.
    Head32k,
}

impl Source {
    /// The source's file name, made in the sandbox.
    fn make(self, s: &Sandbox) -> &'static str {
        match self {
            Source::Gaps => {
                let mut b = vec![0x11u8; MIB];
                for (off, len) in [
                    (0x1000, 512),
                    (0x3000, 2048),
                    (0x5000, 4096),
                    (0x8000, 8192),
                    (0xc200, 6144),
                    (0x10000, 0x3e00),
                    (0x20000, 65536),
                    (0x40100, 4096),
                    (0x50000, 0x1200),
                ] {
                    b[off..off + len].fill(0);
                }
                write(s, "gaps.raw", &b);
                "gaps.raw"
            }
            Source::Mix(size, seed) => {
                let b = mix(size * MIB, seed);
                let name = Box::leak(format!("mix{size}_{seed}.raw").into_boxed_str());
                write(s, name, &b);
                name
            }
            Source::Sparse200 => {
                let f = std::fs::File::create(s.file("sparse.raw")).expect("sparse.raw");
                f.set_len(200 * MIB as u64).expect("its size");
                let mut r = Lcg(9);
                let mut off = 0u64;
                while off < 200 * MIB as u64 - MIB as u64 {
                    let mut island = vec![0u8; (r.below(600_000) + 1) as usize];
                    r.fill(&mut island);
                    std::os::unix::fs::FileExt::write_all_at(&f, &island, off).expect("data");
                    off += r.below(7 * MIB as u64) + MIB as u64;
                }
                "sparse.raw"
            }
            Source::Noise => {
                let mut r = Lcg(3);
                let mut b = vec![0u8; 2 * MIB + MIB / 2 + 1000];
                r.fill(&mut b[..MIB]);
                r.fill(&mut b[2 * MIB..]);
                write(s, "noise.raw", &b);
                "noise.raw"
            }
            Source::Head32k => {
                let mut b = vec![0u8; MIB];
                b[..32 * 1024].fill(0x77);
                write(s, "head32k.raw", &b);
                "head32k.raw"
            }
            Source::Odd => {
                let mut b = vec![0x33u8; 300 * 1024 + 1000];
                b[200 * 1024..].fill(0);
                write(s, "odd.raw", &b);
                "odd.raw"
            }
            Source::Clusters(count, cluster) => {
                let mut r = Lcg(5);
                let mut b = vec![0u8; count * cluster + 1000];
                for i in 0..count {
                    let c = &mut b[i * cluster..(i + 1) * cluster];
                    if i % 7 == 3 {
                        // zeros
                    } else if i % 13 == 2 {
                        r.fill(c);
                    } else {
                        c.fill((i % 255 + 1) as u8);
                    }
                }
                b[count * cluster..].fill(5);
                write(s, "clusters.raw", &b);
                "clusters.raw"
            }
            Source::Top => {
                s.qemu_ok(&["create", "-q", "-f", "qcow2", "base.qcow2", "8M"]);
                qemu_io(
                    s,
                    &["-c", "write -P 0x55 0 3M", "-c", "write -P 0x66 5M 1M", "base.qcow2"],
                );
                s.qemu_ok(&[
                    "create",
                    "-q",
                    "-f",
                    "qcow2",
                    "-b",
                    "base.qcow2",
                    "-F",
                    "qcow2",
                    "top.qcow2",
                ]);
                qemu_io(
                    s,
                    &[
                        "-c",
                        "write -P 0x77 1M 64k",
                        "-c",
                        "write -z 2M 128k",
                        "-c",
                        "write -P 0x78 2100k 5k",
                        "-c",
                        "write -z 5M 64k",
                        "-c",
                        "write -P 0x79 7M 300k",
                        "top.qcow2",
                    ],
                );
                "top.qcow2"
            }
            Source::Top4k => {
                s.qemu_ok(&["create", "-q", "-f", "qcow2", "base.qcow2", "8M"]);
                qemu_io(
                    s,
                    &["-c", "write -P 0x55 0 3M", "-c", "write -P 0x66 5M 1M", "base.qcow2"],
                );
                s.qemu_ok(&[
                    "create",
                    "-q",
                    "-f",
                    "qcow2",
                    "-o",
                    "cluster_size=4k",
                    "-b",
                    "base.qcow2",
                    "-F",
                    "qcow2",
                    "top4k.qcow2",
                ]);
                qemu_io(
                    s,
                    &[
                        "-c",
                        "write -P 0x77 4k 8k",
                        "-c",
                        "write -z 100k 4k",
                        "-c",
                        "write -P 0x78 1M 4k",
                        "-c",
                        "write -P 0x79 2100k 20k",
                        "-c",
                        "write -z 5M 12k",
                        "-c",
                        "write -P 0x7a 7M 4k",
                        "top4k.qcow2",
                    ],
                );
                "top4k.qcow2"
            }
            Source::ZerosOverWrittenZeros => {
                s.qemu_ok(&["create", "-q", "-f", "qcow2", "base.qcow2", "2M"]);
                qemu_io(s, &["-c", "write -P 0 0 1M", "-c", "write -P 0x55 1M 1M", "base.qcow2"]);
                s.qemu_ok(&[
                    "create",
                    "-q",
                    "-f",
                    "qcow2",
                    "-o",
                    "cluster_size=4k",
                    "-b",
                    "base.qcow2",
                    "-F",
                    "qcow2",
                    "zt.qcow2",
                ]);
                qemu_io(
                    s,
                    &[
                        "-c",
                        "write -z 0 4k",
                        "-c",
                        "write -P 0x77 200k 4k",
                        "-c",
                        "write -z 1M 4k",
                        "-c",
                        "write -z 1600k 8k",
                        "zt.qcow2",
                    ],
                );
                "zt.qcow2"
            }
            Source::Zeros => {
                s.qemu_ok(&["create", "-q", "-f", "qcow2", "zeros.qcow2", "8M"]);
                qemu_io(
                    s,
                    &[
                        "-c",
                        "write -P 1 0 1M",
                        "-c",
                        "write -z 1M 1M",
                        "-c",
                        "write -P 2 3M 4k",
                        "-c",
                        "write -z 3M 2k",
                        "zeros.qcow2",
                    ],
                );
                "zeros.qcow2"
            }
            Source::Compressed => {
                let src = Source::Mix(8, 1).make(s);
                s.qemu_ok(&["convert", "-c", "-f", "raw", "-O", "qcow2", src, "comp.qcow2"]);
                "comp.qcow2"
            }
        }
    }
}

/// Runs of data and zeros: `size` bytes from `seed`.
fn mix(size: usize, seed: u64) -> Vec<u8> {
    let mut r = Lcg(seed);
    let mut b = vec![0u8; size];
    let lens = [512, 1024, 3072, 4096, 8192, 65536, 131_072, 300_000];
    let mut off = 0;
    while off < size {
        let len = lens[r.below(lens.len() as u64) as usize].min(size - off);
        match r.below(100) {
            0..=44 => b[off..off + len].fill(r.below(255) as u8 + 1),
            45..=59 => r.fill(&mut b[off..off + len]),
            _ => {}
        }
        off += len;
    }
    b
}

fn write(s: &Sandbox, name: &str, bytes: &[u8]) {
    std::fs::write(s.file(name), bytes).expect("a source");
}

/// A backing file for `-B`: `Short` is 2 MiB of 0x99, `Patches` 3 MiB of
/// 4 KiB blocks, half of them a byte repeated.
#[derive(Clone, Copy)]
enum Backing {
    Short,
    Patches,
}

impl Backing {
    fn make(self, s: &Sandbox) -> &'static str {
        match self {
            Backing::Short => {
                write(s, "short.raw", &vec![0x99u8; 2 * MIB]);
                "short.raw"
            }
            Backing::Patches => {
                let mut r = Lcg(11);
                let mut b = vec![0u8; 3 * MIB];
                for block in b.chunks_mut(4096) {
                    if r.below(2) == 0 {
                        block.fill(r.below(256) as u8);
                    }
                }
                write(s, "patches.raw", &b);
                "patches.raw"
            }
        }
    }
}

/// What a case runs.
struct Case {
    source: Source,
    /// The convert arguments between `convert` and the source; `{B}` is
    /// the backing file made for the case.
    args: &'static [&'static str],
    backing: Option<Backing>,
    /// For `-n`: the oracle's commands making `target.qcow2` in `q/`
    /// (each a qemu-img or qemu-io argument list, qemu-io ones starting
    /// with `io`).
    target: &'static [&'static [&'static str]],
    /// Bytes written over the target made for `-n` (a damaged target).
    patch: &'static [(u64, &'static [u8])],
}

const fn case(source: Source, args: &'static [&'static str]) -> Case {
    Case { source, args, backing: None, target: &[], patch: &[] }
}

const fn with_backing(source: Source, backing: Backing, args: &'static [&'static str]) -> Case {
    Case { source, args, backing: Some(backing), target: &[], patch: &[] }
}

const fn into(
    source: Source,
    target: &'static [&'static [&'static str]],
    args: &'static [&'static str],
) -> Case {
    Case { source, args, backing: None, target, patch: &[] }
}

/// `-n` into `target` damaged by `patch`: the open refuses it, or the
/// copy finds the damage, marks the image corrupt and stops, as qemu's.
const fn damaged(
    source: Source,
    target: &'static [&'static [&'static str]],
    patch: &'static [(u64, &'static [u8])],
) -> Case {
    Case { source, args: &["-n", "-f", "raw", "-O", "qcow2"], backing: None, target, patch }
}

/// [`damaged`] with other convert arguments.
const fn damaged_with(
    source: Source,
    target: &'static [&'static [&'static str]],
    patch: &'static [(u64, &'static [u8])],
    args: &'static [&'static str],
) -> Case {
    Case { source, args, backing: None, target, patch }
}

/// The first L2 entry of a one-L2 target pointed at an unaligned offset.
const DATA_OFFSET_PATCH: &[(u64, &[u8])] = &[(0x40000, &[0x80, 0, 0, 0, 0, 5, 2, 0])];

/// An empty 1 MiB target with 512-byte clusters and 64-bit refcounts:
/// a refcount block counts 32 KiB, so a copy soon needs the second one.
const TINY_CLUSTERS: &[&[&str]] = &[&[
    "create",
    "-q",
    "-f",
    "qcow2",
    "-o",
    "cluster_size=512,refcount_bits=64",
    "target.qcow2",
    "1M",
]];

/// [`TINY_CLUSTERS`] with lazy refcounts.
const TINY_CLUSTERS_LAZY: &[&[&str]] = &[&[
    "create",
    "-q",
    "-f",
    "qcow2",
    "-o",
    "cluster_size=512,refcount_bits=64,lazy_refcounts=on",
    "target.qcow2",
    "1M",
]];

/// [`TINY_CLUSTERS`]' second refcount table entry pointed 17 TiB into
/// the file: the block reads as zeros (past the end) and cannot be
/// written (ext4 refuses offsets past 16 TiB with `EFBIG`), so the first
/// L2 table placed after clusters it counts were allocated fails, and
/// so do the close's cache flushes.
const FAR_REFBLOCK_PATCH: &[(u64, &[u8])] = &[(520, &[0, 0, 0x11, 0, 0, 0, 0, 0])];

/// Runs `case`: the oracle in `q/`, instar in `i/`, then compares.
fn run(case: &Case) {
    run_as(case, None);
}

/// Runs `case` with qemu-img `version` (the oracle when `None`) and
/// instar speaking as that version; sources and `-n` targets are made by
/// the oracle either way.
fn run_as(case: &Case, version: Option<&str>) {
    let Some(s) = Sandbox::new() else { return };
    let qemu = match version {
        Some(v) => match qemu_or_skip(v) {
            Some(q) => q,
            None => return,
        },
        None => s.qemu,
    };
    let src = format!("../{}", case.source.make(&s));
    let backing = case.backing.map(|b| format!("../{}", b.make(&s)));
    let (q, i) = (s.file("q"), s.file("i"));
    std::fs::create_dir_all(&q).expect("q/");
    std::fs::create_dir_all(&i).expect("i/");
    for cmd in case.target {
        if cmd[0] == "io" {
            let io = s.qemu.path.with_file_name("qemu-io");
            s.t.run_ok(&io, &cmd[1..], &q);
        } else {
            s.t.run_ok(&s.qemu.path, cmd, &q);
        }
    }
    if !case.patch.is_empty() {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(q.join("target.qcow2"))
            .expect("the target");
        for (at, bytes) in case.patch {
            std::os::unix::fs::FileExt::write_all_at(&f, bytes, *at).expect("a patch");
        }
    }
    if !case.target.is_empty() {
        for name in ["target.qcow2", "target.data"] {
            if q.join(name).exists() {
                std::fs::copy(q.join(name), i.join(name)).expect("a copy");
            }
        }
    }
    let mut args = vec!["convert".to_string()];
    for a in case.args {
        let b = backing.as_deref().unwrap_or("");
        args.push(a.replace("{B}", b));
    }
    args.push(src);
    args.push("target.qcow2".to_string());
    let theirs = s.t.run(&qemu.path, &args, &q);
    let mine = match version {
        Some(v) => s.t.run_env(instar(), &args, &i, &[("INSTAR_QEMU_VERSION", v)]),
        None => s.t.run(instar(), &args, &i),
    };
    s.t.check(theirs.code == mine.code, || {
        format!("exit codes differ: qemu-img {:?}, instar {:?}", theirs.code, mine.code)
    });
    s.t.assert_same("stdout", &theirs.stdout, &mine.stdout);
    s.t.assert_same("stderr", &as_instar(&theirs.stderr), &mine.stderr);
    for name in ["target.qcow2", "target.data"] {
        same_file(&s, &q.join(name), &i.join(name));
    }
}

/// Fails unless the two files are both absent or identical; names the
/// first differing offset.
fn same_file(s: &Sandbox, theirs: &Path, mine: &Path) {
    let (a, b) = (std::fs::read(theirs).ok(), std::fs::read(mine).ok());
    match (a, b) {
        (None, None) => {}
        (Some(a), Some(b)) => {
            let first = a.iter().zip(&b).position(|(x, y)| x != y);
            s.t.check(a.len() == b.len() && first.is_none(), || {
                format!(
                    "{} differs: lengths {} and {}, first difference at {:?}",
                    theirs.display(),
                    a.len(),
                    b.len(),
                    first.map(|o| format!("{o:#x}"))
                )
            });
        }
        (a, b) => s.t.fail(&format!(
            "{}: qemu-img made it: {}, instar: {}",
            theirs.display(),
            a.is_some(),
            b.is_some()
        )),
    }
}

macro_rules! cases {
    ($($name:ident: $case:expr;)*) => {
        $(
            #[test]
            fn $name() {
                run(&$case);
            }
        )*
    };
}

/// An empty target of 8 MiB.
const FRESH8: &[&[&str]] = &[&["create", "-q", "-f", "qcow2", "target.qcow2", "8M"]];
/// An 8 MiB target full of 0xaa.
const FULL8: &[&[&str]] = &[
    &["create", "-q", "-f", "qcow2", "target.qcow2", "8M"],
    &["io", "-c", "write -P 0xaa 0 8M", "target.qcow2"],
];
/// A 1 MiB target full of 0xaa.
const FULL1: &[&[&str]] = &[
    &["create", "-q", "-f", "qcow2", "target.qcow2", "1M"],
    &["io", "-c", "write -P 0xaa 0 1M", "target.qcow2"],
];

cases! {
    // Cluster sizes.
    gaps_cluster_512: case(Source::Gaps, &["-f", "raw", "-O", "qcow2", "-o", "cluster_size=512"]);
    gaps_cluster_4k: case(Source::Gaps, &["-f", "raw", "-O", "qcow2", "-o", "cluster_size=4k"]);
    gaps_cluster_64k: case(Source::Gaps, &["-f", "raw", "-O", "qcow2"]);
    gaps_cluster_2m: case(Source::Gaps, &["-f", "raw", "-O", "qcow2", "-o", "cluster_size=2M"]);
    mix_cluster_512: case(Source::Mix(8, 1), &["-f", "raw", "-O", "qcow2", "-o", "cluster_size=512"]);
    mix_cluster_4k: case(Source::Mix(8, 1), &["-f", "raw", "-O", "qcow2", "-o", "cluster_size=4k"]);
    mix_cluster_64k: case(Source::Mix(8, 1), &["-f", "raw", "-O", "qcow2"]);
    mix_cluster_2m: case(Source::Mix(8, 1), &["-f", "raw", "-O", "qcow2", "-o", "cluster_size=2M"]);
    // Refcount widths; sizes that need more refcount blocks and a larger
    // refcount table (512-byte clusters with 64-bit refcounts: a block
    // counts 64 clusters, the first table 4096).
    mix_refcount_1: case(Source::Mix(8, 1), &["-f", "raw", "-O", "qcow2", "-o", "refcount_bits=1,cluster_size=4k"]);
    mix_refcount_64: case(Source::Mix(8, 1), &["-f", "raw", "-O", "qcow2", "-o", "refcount_bits=64,cluster_size=4k"]);
    table_growth_512_64: case(Source::Mix(8, 2), &["-f", "raw", "-O", "qcow2", "-o", "cluster_size=512,refcount_bits=64"]);
    table_growth_4k_64: case(Source::Mix(40, 2), &["-f", "raw", "-O", "qcow2", "-o", "cluster_size=4k,refcount_bits=64"]);
    many_blocks_512: case(Source::Mix(40, 2), &["-f", "raw", "-O", "qcow2", "-o", "cluster_size=512"]);
    sparse_200m_4k: case(Source::Sparse200, &["-f", "raw", "-O", "qcow2", "-o", "cluster_size=4k"]);
    sparse_200m_64k: case(Source::Sparse200, &["-f", "raw", "-O", "qcow2"]);
    // Header options.
    mix_compat_010: case(Source::Mix(8, 1), &["-f", "raw", "-O", "qcow2", "-o", "compat=0.10"]);
    mix_extended_l2: case(Source::Mix(8, 1), &["-f", "raw", "-O", "qcow2", "-o", "extended_l2=on"]);
    gaps_extended_l2_16k: case(Source::Gaps, &["-f", "raw", "-O", "qcow2", "-o", "extended_l2=on,cluster_size=16k"]);
    mix_lazy_refcounts: case(Source::Mix(8, 1), &["-f", "raw", "-O", "qcow2", "-o", "lazy_refcounts=on,refcount_bits=1"]);
    mix_prealloc_metadata: case(Source::Mix(8, 1), &["-f", "raw", "-O", "qcow2", "-o", "preallocation=metadata"]);
    mix_prealloc_falloc: case(Source::Mix(8, 1), &["-f", "raw", "-O", "qcow2", "-o", "preallocation=falloc"]);
    mix_data_file: case(Source::Mix(8, 1), &["-f", "raw", "-O", "qcow2", "-o", "data_file=target.data"]);
    mix_data_file_raw: case(Source::Mix(8, 1), &["-f", "raw", "-O", "qcow2", "-o", "data_file=target.data,data_file_raw=on"]);
    // -S.
    gaps_sparse_0: case(Source::Gaps, &["-f", "raw", "-O", "qcow2", "-S", "0"]);
    gaps_sparse_512: case(Source::Gaps, &["-f", "raw", "-O", "qcow2", "-S", "512"]);
    gaps_sparse_4k_cluster_4k: case(Source::Gaps, &["-f", "raw", "-O", "qcow2", "-S", "4k", "-o", "cluster_size=4k"]);
    mix_sparse_64k_cluster_4k: case(Source::Mix(8, 1), &["-f", "raw", "-O", "qcow2", "-S", "64k", "-o", "cluster_size=4k"]);
    mix_sparse_512_cluster_4k: case(Source::Mix(8, 1), &["-f", "raw", "-O", "qcow2", "-S", "512", "-o", "cluster_size=4k"]);
    // qcow2 sources.
    from_backed_top: case(Source::Top, &["-f", "qcow2", "-O", "qcow2"]);
    from_zero_clusters: case(Source::Zeros, &["-f", "qcow2", "-O", "qcow2"]);
    from_compressed: case(Source::Compressed, &["-f", "qcow2", "-O", "qcow2"]);
    // -B: the target has a backing file; copy-on-write fills clusters
    // from it, zeros become zero clusters.
    top_over_base: case(Source::Top, &["-f", "qcow2", "-O", "qcow2", "-B", "../base.qcow2", "-F", "qcow2"]);
    top_over_base_4k: case(Source::Top, &["-f", "qcow2", "-O", "qcow2", "-B", "../base.qcow2", "-F", "qcow2", "-o", "cluster_size=4k"]);
    top_over_base_extended_l2: case(Source::Top, &["-f", "qcow2", "-O", "qcow2", "-B", "../base.qcow2", "-F", "qcow2", "-o", "extended_l2=on"]);
    top_over_base_v2: case(Source::Top, &["-f", "qcow2", "-O", "qcow2", "-B", "../base.qcow2", "-F", "qcow2", "-o", "compat=0.10"]);
    top4k_over_base: case(Source::Top4k, &["-f", "qcow2", "-O", "qcow2", "-B", "../base.qcow2", "-F", "qcow2"]);
    top4k_over_base_extended_l2: case(Source::Top4k, &["-f", "qcow2", "-O", "qcow2", "-B", "../base.qcow2", "-F", "qcow2", "-o", "extended_l2=on"]);
    top4k_over_base_v2: case(Source::Top4k, &["-f", "qcow2", "-O", "qcow2", "-B", "../base.qcow2", "-F", "qcow2", "-o", "compat=0.10"]);
    zeros_over_written_zeros: case(Source::ZerosOverWrittenZeros, &["-f", "qcow2", "-O", "qcow2", "-B", "../base.qcow2", "-F", "qcow2"]);
    zeros_over_written_zeros_extended_l2: case(Source::ZerosOverWrittenZeros, &["-f", "qcow2", "-O", "qcow2", "-B", "../base.qcow2", "-F", "qcow2", "-o", "extended_l2=on,cluster_size=128k"]);
    mix_over_short_backing: with_backing(Source::Mix(8, 1), Backing::Short, &["-f", "raw", "-O", "qcow2", "-B", "{B}", "-F", "raw"]);
    gaps_over_short_backing: with_backing(Source::Gaps, Backing::Short, &["-f", "raw", "-O", "qcow2", "-B", "{B}", "-F", "raw"]);
    gaps_over_short_backing_v2: with_backing(Source::Gaps, Backing::Short, &["-f", "raw", "-O", "qcow2", "-B", "{B}", "-F", "raw", "-o", "compat=0.10"]);
    gaps_over_short_backing_extended_l2: with_backing(Source::Gaps, Backing::Short, &["-f", "raw", "-O", "qcow2", "-B", "{B}", "-F", "raw", "-o", "extended_l2=on"]);
    mix_over_patches_sparse_64k: with_backing(Source::Mix(8, 1), Backing::Patches, &["-f", "raw", "-O", "qcow2", "-B", "{B}", "-F", "raw", "-S", "64k"]);
    gaps_over_patches_sparse_512: with_backing(Source::Gaps, Backing::Patches, &["-f", "raw", "-O", "qcow2", "-B", "{B}", "-F", "raw", "-S", "512"]);
    odd_over_patches: with_backing(Source::Odd, Backing::Patches, &["-f", "raw", "-O", "qcow2", "-B", "{B}", "-F", "raw"]);
    odd_over_patches_extended_l2: with_backing(Source::Odd, Backing::Patches, &["-f", "raw", "-O", "qcow2", "-B", "{B}", "-F", "raw", "-o", "extended_l2=on"]);
    odd_over_patches_v2: with_backing(Source::Odd, Backing::Patches, &["-f", "raw", "-O", "qcow2", "-B", "{B}", "-F", "raw", "-o", "compat=0.10"]);
    odd_compressed: case(Source::Odd, &["-c", "-f", "raw", "-O", "qcow2"]);
    // -n into existing targets.
    into_fresh: into(Source::Mix(8, 1), FRESH8, &["-n", "-f", "raw", "-O", "qcow2"]);
    into_full: into(Source::Mix(8, 1), FULL8, &["-n", "-f", "raw", "-O", "qcow2"]);
    into_full_gaps: into(Source::Gaps, FULL1, &["-n", "-f", "raw", "-O", "qcow2"]);
    into_full_target_is_zero: into(Source::Mix(8, 1), FULL8, &["-n", "--target-is-zero", "-f", "raw", "-O", "qcow2"]);
    into_full_v2: into(Source::Mix(8, 1), &[
        &["create", "-q", "-f", "qcow2", "-o", "compat=0.10", "target.qcow2", "8M"],
        &["io", "-c", "write -P 0xaa 0 8M", "target.qcow2"],
    ], &["-n", "-f", "raw", "-O", "qcow2"]);
    into_full_extended_l2_gaps: into(Source::Gaps, &[
        &["create", "-q", "-f", "qcow2", "-o", "extended_l2=on", "target.qcow2", "1M"],
        &["io", "-c", "write -P 0xaa 0 1M", "target.qcow2"],
    ], &["-n", "-f", "raw", "-O", "qcow2"]);
    odd_into_full_extended_l2: into(Source::Odd, &[
        &["create", "-q", "-f", "qcow2", "-o", "extended_l2=on", "target.qcow2", "301K"],
        &["io", "-c", "write -P 0xaa 0 301K", "target.qcow2"],
    ], &["-n", "-f", "raw", "-O", "qcow2"]);
    into_fresh_extended_l2_gaps: into(Source::Gaps, &[
        &["create", "-q", "-f", "qcow2", "-o", "extended_l2=on", "target.qcow2", "1M"],
    ], &["-n", "-f", "raw", "-O", "qcow2"]);
    into_prealloc_metadata: into(Source::Mix(8, 1), &[
        &["create", "-q", "-f", "qcow2", "-o", "preallocation=metadata", "target.qcow2", "8M"],
    ], &["-n", "-f", "raw", "-O", "qcow2"]);
    into_prealloc_falloc_4k: into(Source::Mix(8, 1), &[
        &["create", "-q", "-f", "qcow2", "-o", "preallocation=falloc,cluster_size=4k", "target.qcow2", "8M"],
    ], &["-n", "-f", "raw", "-O", "qcow2"]);
    into_compressed: into(Source::Mix(8, 1), &[
        &["convert", "-q", "-c", "-f", "raw", "-O", "qcow2", "../mix8_1.raw", "target.qcow2"],
    ], &["-n", "-f", "raw", "-O", "qcow2"]);
    into_snapshotted: into(Source::Mix(8, 1), &[
        &["create", "-q", "-f", "qcow2", "target.qcow2", "8M"],
        &["io", "-c", "write -P 0xaa 0 8M", "target.qcow2"],
        &["snapshot", "-c", "s1", "target.qcow2"],
    ], &["-n", "-f", "raw", "-O", "qcow2"]);
    into_data_file_full: into(Source::Mix(8, 1), &[
        &["create", "-q", "-f", "qcow2", "-o", "data_file=target.data", "target.qcow2", "8M"],
        &["io", "-c", "write -P 0xaa 0 8M", "target.qcow2"],
    ], &["-n", "-f", "raw", "-O", "qcow2"]);
    into_data_file_raw_full: into(Source::Mix(8, 1), &[
        &["create", "-q", "-f", "qcow2", "-o", "data_file=target.data,data_file_raw=on", "target.qcow2", "8M"],
        &["io", "-c", "write -P 0xaa 0 8M", "target.qcow2"],
    ], &["-n", "-f", "raw", "-O", "qcow2"]);
    // -c: payloads packed byte by byte, straddling clusters; clusters that
    // do not compress written plain; the file trimmed to whole sectors.
    compressed_64k: case(Source::Clusters(160, 65536), &["-c", "-f", "raw", "-O", "qcow2"]);
    compressed_64k_sparse_0: case(Source::Clusters(160, 65536), &["-c", "-S", "0", "-f", "raw", "-O", "qcow2"]);
    compressed_64k_extended_l2: case(Source::Clusters(160, 65536), &["-c", "-f", "raw", "-O", "qcow2", "-o", "extended_l2=on"]);
    compressed_64k_v2: case(Source::Clusters(160, 65536), &["-c", "-f", "raw", "-O", "qcow2", "-o", "compat=0.10"]);
    compressed_into_larger: into(Source::Clusters(160, 65536), &[
        &["create", "-q", "-f", "qcow2", "target.qcow2", "11M"],
    ], &["-n", "-c", "-f", "raw", "-O", "qcow2"]);
    compressed_into_full: into(Source::Clusters(160, 65536), &[
        &["create", "-q", "-f", "qcow2", "target.qcow2", "11M"],
        &["io", "-c", "write -P 0xaa 0 11M", "target.qcow2"],
    ], &["-n", "-c", "-f", "raw", "-O", "qcow2"]);
    compressed_2m: case(Source::Clusters(6, 2 << 20), &["-c", "-f", "raw", "-O", "qcow2", "-o", "cluster_size=2M"]);
    compressed_over_backing: with_backing(Source::Clusters(160, 65536), Backing::Patches, &["-c", "-f", "raw", "-O", "qcow2", "-B", "{B}", "-F", "raw"]);
    mix_prealloc_full: case(Source::Mix(8, 1), &["-f", "raw", "-O", "qcow2", "-o", "preallocation=full"]);
    compressed_mix: case(Source::Mix(8, 1), &["-c", "-f", "raw", "-O", "qcow2"]);
    compressed_mix_4k: case(Source::Mix(40, 2), &["-c", "-f", "raw", "-O", "qcow2", "-o", "cluster_size=4k"]);
    compressed_mix_512: case(Source::Mix(8, 1), &["-c", "-f", "raw", "-O", "qcow2", "-o", "cluster_size=512"]);
    compressed_mix_zstd: case(Source::Mix(8, 1), &["-c", "-f", "raw", "-O", "qcow2", "-o", "compression_type=zstd"]);
    compressed_mix_into_full: into(Source::Mix(8, 1), FULL8, &["-n", "-c", "-f", "raw", "-O", "qcow2"]);
    compressed_noise: case(Source::Noise, &["-c", "-f", "raw", "-O", "qcow2"]);
    compressed_noise_sparse_0: case(Source::Noise, &["-c", "-S", "0", "-f", "raw", "-O", "qcow2"]);
}

/// Cases run with every qemu-img version (the placement is the same in
/// all of them, convert-facts §2.4; the damaged targets show what changed
/// after a corruption stop): `<case>::version_N___X_Y_Z__`.
macro_rules! every_version {
    ($($name:ident: $case:expr;)*) => {
        $(
            #[rstest::rstest]
            fn $name(
                #[values("5.2.0", "7.2.18", "7.2.22", "10.0.2", "10.0.13", "11.1.3")]
                version: &str,
            ) {
                run_as(&$case, Some(version));
            }
        )*
    };
}

mod versions {
    use super::*;

    every_version! {
        mix_cluster_4k: case(Source::Mix(8, 1), &["-f", "raw", "-O", "qcow2", "-o", "cluster_size=4k"]);
        gaps_extended_l2_16k: case(Source::Gaps, &["-f", "raw", "-O", "qcow2", "-o", "extended_l2=on,cluster_size=16k"]);
        table_growth_512_64: case(Source::Mix(8, 2), &["-f", "raw", "-O", "qcow2", "-o", "cluster_size=512,refcount_bits=64"]);
        compressed_mix_4k: case(Source::Mix(8, 1), &["-c", "-f", "raw", "-O", "qcow2", "-o", "cluster_size=4k"]);
        into_full_gaps: into(Source::Gaps, FULL1, &["-n", "-f", "raw", "-O", "qcow2"]);
        into_compressed: into(Source::Mix(8, 1), &[
            &["convert", "-q", "-c", "-f", "raw", "-O", "qcow2", "../mix8_1.raw", "target.qcow2"],
        ], &["-n", "-f", "raw", "-O", "qcow2"]);
        // Damaged -n targets under every version: an open that refuses
        // them, or a copy that marks the image corrupt and stops, after
        // which qemu-img from 11.1 fails to flush the target
        // (`Failed to flush target image: No medium found`). Header at 0,
        // refcount table at 0x10000, refcount block at 0x20000, L1 at
        // 0x30000, L2 at 0x40000, data from 0x50000.
        damaged_reftable_offset: damaged(Source::Gaps, FULL1, &[(48, &[0, 0, 0, 0, 0, 1, 2, 0])]);
        damaged_l1_size: damaged(Source::Gaps, FULL1, &[(36, &[0x7f, 0xff, 0xff, 0xff])]);
        damaged_refblock_offset: damaged(Source::Gaps, FULL1, &[(0x10000, &[0, 0, 0, 0, 0, 2, 2, 0])]);
        damaged_no_refblock: damaged(Source::Mix(8, 1), FULL8, &[(0x10000, &[0; 8])]);
        damaged_l2_offset: damaged(Source::Gaps, FULL1, &[(0x30000, &[0x80, 0, 0, 0, 0, 4, 2, 0])]);
        damaged_data_offset: damaged(Source::Gaps, FULL1, &[(0x40000, &[0x80, 0, 0, 0, 0, 5, 2, 0])]);
        // A data cluster on the refcount table, met after new clusters were
        // linked (lazy refcounts: the image was marked dirty by then).
        damaged_later_on_reftable: damaged(Source::Mix(8, 1), &[
            &["create", "-q", "-f", "qcow2", "-o", "cluster_size=4k", "target.qcow2", "8M"],
            &["io", "-c", "write -P 0xaa 6M 4k", "target.qcow2"],
        ], &[(0x4000, &[0x80, 0, 0, 0, 0, 0, 0x10, 0])]);
        damaged_later_on_reftable_lazy: damaged(Source::Mix(8, 1), &[
            &["create", "-q", "-f", "qcow2", "-o", "cluster_size=4k,lazy_refcounts=on", "target.qcow2", "8M"],
            &["io", "-c", "write -P 0xaa 6M 4k", "target.qcow2"],
        ], &[(0x4000, &[0x80, 0, 0, 0, 0, 0, 0x10, 0])]);
        damaged_data_on_l1: damaged(Source::Gaps, FULL1, &[(0x40000, &[0x80, 0, 0, 0, 0, 3, 0, 0])]);
        damaged_data_on_header: damaged(Source::Gaps, FULL1, &[(0x40008, &[0x80, 0, 0, 0, 0, 0, 0, 0])]);
        // The progress when the first write fails: qemu-img has taken
        // (and printed) as many chunks as it has coroutines (`-m`), 8
        // clusters of 16 with `-c`, 2 chunks of 4 with `-m 2`.
        damaged_progress_c: damaged_with(Source::Gaps, FULL1, DATA_OFFSET_PATCH, &["-n", "-p", "-c", "-f", "raw", "-O", "qcow2"]);
        damaged_progress_c_m3: damaged_with(Source::Gaps, FULL1, DATA_OFFSET_PATCH, &["-n", "-p", "-c", "-m", "3", "-f", "raw", "-O", "qcow2"]);
        damaged_progress_m2: damaged_with(Source::Mix(8, 1), FULL8, &[(0x40000, &[0x80, 0, 0, 0, 0, 5, 2, 0])], &["-n", "-p", "-m", "2", "-f", "raw", "-O", "qcow2"]);
        // A refcount block that cannot be written: the write whose next
        // L2 table fails gives back every cluster it had placed, and
        // the close reports the caches it could not flush (the L2 one
        // too when changed tables wait for the blocks).
        damaged_far_refblock_gaps: damaged(Source::Gaps, TINY_CLUSTERS, FAR_REFBLOCK_PATCH);
        damaged_far_refblock_odd: damaged(Source::Odd, TINY_CLUSTERS, FAR_REFBLOCK_PATCH);
        damaged_far_refblock_one_table: damaged(Source::Clusters(64, 512), TINY_CLUSTERS, FAR_REFBLOCK_PATCH);
        // The copy itself needs no new table (`--target-is-zero`: the
        // zeros are not written), so it succeeds and only the close
        // fails: its lines come with exit 0 (from 11.1 the flush after
        // the copy fails first, and convert with it).
        // Lazy refcounts: once the image is marked dirty, a flush
        // (11.1's after the copy, and the close's first) leaves the
        // refcount blocks for the driver's close.
        damaged_far_refblock_lazy_c: damaged_with(Source::Gaps, TINY_CLUSTERS_LAZY, FAR_REFBLOCK_PATCH, &["-n", "-c", "-f", "raw", "-O", "qcow2"]);
        damaged_far_refblock_close_only: damaged_with(Source::Head32k, TINY_CLUSTERS, FAR_REFBLOCK_PATCH, &["-n", "--target-is-zero", "-f", "raw", "-O", "qcow2"]);
        // The L2 table on other metadata (the refcount block, the
        // refcount table, the L1 table): read as entries, and refused as
        // overlapping metadata when the cache writes it back.
        damaged_l2_on_refblock: damaged(Source::Gaps, FULL1, &[(0x30000, &[0x80, 0, 0, 0, 0, 2, 0, 0])]);
        damaged_l2_on_refblock_zero: damaged_with(Source::Head32k, FULL1, &[(0x30000, &[0x80, 0, 0, 0, 0, 2, 0, 0])], &["-n", "--target-is-zero", "-f", "raw", "-O", "qcow2"]);
        damaged_l2_on_reftable: damaged(Source::Head32k, FULL1, &[(0x30000, &[0x80, 0, 0, 0, 0, 1, 0, 0])]);
        damaged_l2_on_l1: damaged(Source::Head32k, FULL1, &[(0x30000, &[0x80, 0, 0, 0, 0, 3, 0, 0])]);
    }
}
