//! Probing and qemu's other drivers: for every format qemu-img's probe
//! recognises, and every driver qemu-img lists, instar answers as
//! qemu-img does, or refuses the format by name; it never reads such an
//! image as raw.
//!
//! The oracle is the system qemu-img (10.0.2). Each case says what instar
//! must print:
//!
//! - [`Expect::Same`]: exactly what qemu-img prints (program name aside),
//!   with its exit code. Files qemu probes as a format instar implements
//!   (raw included), and files qemu fails to open where the failure is
//!   decided by the header instar reads (a `.dmg` without a UDIF trailer,
//!   `-f vdi` on a file that is not one, a tie qemu settles by its driver
//!   order, ...).
//! - [`Expect::Refused`]: instar's refusal by name (`Could not open
//!   '<file>': Format '<fmt>' is not supported by instar (...)`, exit 1,
//!   nothing on stdout), the documented deviation of docs/compat.md §8.2:
//!   qemu-img reads the image (its `info --output=json` then names the
//!   same format), or fails deeper in it than instar looks.
//!
//! Groups: `probe::sample::*` (an image of each qemu-only format),
//! `probe::edge::*` (crafted files: names, short files, magics with
//! garbage, ties), `probe::named::*` (`-f <fmt>` on files of other
//! formats), `probe::create_driver::*` (`create -f <driver>` and its `-o
//! help`, and `info -f <driver>`, for every driver of `qemu-img --help`).

use crate::util::{as_instar, instar, oracle_or_skip, tempdir, Run, Transcript};
use rstest::rstest;
use std::path::Path;

/// The committed samples (see their README).
const SAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/images/qemu-only");

/// instar's refusal of a format it does not read, after `instar: `.
fn refusal(fmt: &str) -> String {
    format!(
        "Format '{fmt}' is not supported by instar (it supports raw, qcow2, vmdk, vpc and vhdx)"
    )
}

/// Runs `program` through the one harness runner (its own transcript).
fn run(program: &Path, args: &[&str], dir: &Path) -> Run {
    Transcript::default().run(program, args, dir)
}

/// What instar must print for a command.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// What qemu-img prints, exit code included.
    Same,
    /// instar's refusal of this format.
    Refused(&'static str),
}

/// Runs `args` with qemu-img and instar in `dir` and checks instar's
/// answer against `expect`.
fn compare(qemu: &Path, dir: &Path, args: &[&str], expect: Expect) {
    let q = run(qemu, args, dir);
    let i = run(instar(), args, dir);
    let shown =
        format!("instar {}\n  qemu-img printed: {q:?}\n  instar printed:   {i:?}", args.join(" "));
    match expect {
        Expect::Same => {
            similar_asserts::assert_eq!(as_instar(&q.stdout), i.stdout, "stdout of {shown}");
            similar_asserts::assert_eq!(as_instar(&q.stderr), i.stderr, "stderr of {shown}");
            assert_eq!(q.code, i.code, "exit code of {shown}");
        }
        Expect::Refused(fmt) => {
            let file = args.last().expect("a file name");
            let want = format!("instar: Could not open '{file}': {}\n", refusal(fmt));
            assert_eq!(i.stdout, "", "stdout of {shown}");
            similar_asserts::assert_eq!(want, i.stderr, "stderr of {shown}");
            assert_eq!(i.code, Some(1), "exit code of {shown}");
            // When qemu-img reads the image, it reads it as that format.
            if q.code == Some(0) && args.contains(&"--output=json") && args[0] == "info" {
                let needle = format!("\n    \"format\": \"{fmt}\",");
                assert!(q.stdout.contains(&needle), "qemu-img read another format: {shown}");
            }
        }
    }
}

/// Where a case's file comes from.
enum Source {
    /// These bytes.
    Bytes(Vec<u8>),
    /// A committed sample.
    Sample(&'static str),
    /// `qemu-img create` with these arguments (the file name last but
    /// the size), then these bytes written at this offset.
    Qemu(&'static [&'static str], Option<(usize, &'static [u8])>),
}

/// One file, and what instar must say of it.
struct Case {
    /// The file's name (probing looks at it).
    file: &'static str,
    source: Source,
    /// `-f` for every command, else probed.
    fmt: Option<&'static str>,
    /// For `info` (human and JSON).
    info: Expect,
    /// For `check` (`None`: not compared, see the case).
    check: Option<Expect>,
}

impl Case {
    fn new(file: &'static str, source: Source, info: Expect) -> Case {
        Case { file, source, fmt: None, info, check: Some(info) }
    }

    fn bytes(file: &'static str, bytes: Vec<u8>, info: Expect) -> Case {
        Case::new(file, Source::Bytes(bytes), info)
    }

    fn named(mut self, fmt: &'static str) -> Case {
        self.fmt = Some(fmt);
        self
    }

    /// Compares `info` only.
    fn info_only(mut self) -> Case {
        self.check = None;
        self
    }

    /// Makes the file in `dir`.
    fn make(&self, qemu: &Path, dir: &Path) {
        let path = dir.join(self.file);
        match &self.source {
            Source::Bytes(b) => std::fs::write(&path, b).unwrap(),
            Source::Sample(name) => {
                std::fs::copy(Path::new(SAMPLES).join(name), &path).unwrap();
            }
            Source::Qemu(args, patch) => {
                let made = run(qemu, args, dir);
                assert_eq!(made.code, Some(0), "qemu-img {args:?} failed: {made:?}");
                if let Some((offset, bytes)) = patch {
                    let mut b = std::fs::read(&path).unwrap();
                    b[*offset..offset + bytes.len()].copy_from_slice(bytes);
                    std::fs::write(&path, b).unwrap();
                }
            }
        }
    }

    /// Runs info (human and JSON) and check, probed or with `-f`.
    fn run(&self) {
        let Some(qemu) = oracle_or_skip() else { return };
        let qemu = &qemu.path;
        let dir = tempdir();
        self.make(qemu, dir.path());
        let f: Vec<&str> = self.fmt.map(|f| vec!["-f", f]).unwrap_or_default();
        let with = |cmd: &[&'static str]| -> Vec<&str> {
            cmd.iter().copied().chain(f.iter().copied()).chain([self.file]).collect()
        };
        compare(qemu, dir.path(), &with(&["info"]), self.info);
        compare(qemu, dir.path(), &with(&["info", "--output=json"]), self.info);
        if let Some(check) = self.check {
            compare(qemu, dir.path(), &with(&["check"]), check);
        }
    }
}

/// `len` bytes, zero but for `parts` (offset, bytes).
fn image(len: usize, parts: &[(usize, &[u8])]) -> Vec<u8> {
    let mut b = vec![0u8; len];
    for (offset, bytes) in parts {
        b[*offset..offset + bytes.len()].copy_from_slice(bytes);
    }
    b
}

/// A file starting with `head` that also carries vdi's signature at 0x40.
fn with_vdi(head: &[u8]) -> Vec<u8> {
    image(4096, &[(0, head), (0x40, &[0x7f, 0x10, 0xda, 0xbe])])
}

const CLOOP: &[u8] =
    b"#!/bin/sh\n#V2.0 Format\nmodprobe cloop file=$0 && mount -r -t iso9660 /dev/cloop $1\n";

/// A cloop script header with this block size and block count.
fn cloop(block_size: u32, n_blocks: u32) -> Vec<u8> {
    image(4096, &[(0, CLOOP), (128, &block_size.to_be_bytes()), (132, &n_blocks.to_be_bytes())])
}

/// A Bochs growing-image header (version 2) with these fields.
fn bochs(version: u32, catalog: u32, extent: u32, disk: u64) -> Vec<u8> {
    image(
        4096,
        &[
            (0, b"Bochs Virtual HD Image"),
            (32, b"Redolog"),
            (48, b"Growing"),
            (64, &version.to_le_bytes()),
            (68, &512u32.to_le_bytes()),
            (72, &catalog.to_le_bytes()),
            (80, &extent.to_le_bytes()),
            (88, &disk.to_le_bytes()),
        ],
    )
}

/// A Parallels header with these geometry fields.
fn parallels(version: u32, tracks: u32, bat_entries: u32) -> Vec<u8> {
    image(
        4096,
        &[
            (0, b"WithoutFreeSpace"),
            (16, &version.to_le_bytes()),
            (28, &tracks.to_le_bytes()),
            (32, &bat_entries.to_le_bytes()),
        ],
    )
}

/// A qcow (v1) header with this size, cluster bits and L2 bits.
fn qcow(version: u32, size: u64, cluster_bits: u8, l2_bits: u8) -> Vec<u8> {
    image(
        4096,
        &[
            (0, b"QFI\xfb"),
            (4, &version.to_be_bytes()),
            (24, &size.to_be_bytes()),
            (32, &[cluster_bits, l2_bits]),
        ],
    )
}

const SAME: Expect = Expect::Same;

/// An image of each format qemu reads and instar does not: qemu-img
/// reads it (probed and with `-f`); instar refuses it by name. (luks,
/// whose header instar reads, answers as qemu-img.)
#[rstest]
#[case::bochs("bochs", Source::Sample("empty.bochs"))]
#[case::cloop("cloop", Source::Sample("simple-pattern.cloop"))]
#[case::dmg("dmg", Source::Sample("zeros.dmg"))]
#[case::luks(
    "luks",
    Source::Qemu(
        &[
            "create", "-q", "--object", "secret,id=sec0,data=instar", "-f", "luks", "-o",
            "key-secret=sec0,iter-time=10", "img.luks", "1M",
        ],
        None,
    )
)]
#[case::parallels("parallels", Source::Qemu(&["create", "-q", "-f", "parallels", "img.parallels", "1M"], None))]
#[case::parallels_first_magic(
    "parallels",
    Source::Qemu(
        &["create", "-q", "-f", "parallels", "img.parallels", "1M"],
        Some((0, b"WithoutFreeSpace"))
    )
)]
#[case::qcow("qcow", Source::Qemu(&["create", "-q", "-f", "qcow", "img.qcow", "1M"], None))]
#[case::qed("qed", Source::Qemu(&["create", "-q", "-f", "qed", "img.qed", "1M"], None))]
#[case::vdi("vdi", Source::Qemu(&["create", "-q", "-f", "vdi", "img.vdi", "1M"], None))]
fn sample(#[case] fmt: &'static str, #[case] source: Source) {
    // The file name matters to dmg's probe: every sample ends in its format.
    let file = match fmt {
        "bochs" => "img.bochs",
        "cloop" => "img.cloop",
        "dmg" => "img.dmg",
        "luks" => "img.luks",
        "parallels" => "img.parallels",
        "qcow" => "img.qcow",
        "qed" => "img.qed",
        _ => "img.vdi",
    };
    // instar reads LUKS headers (and opening one for I/O, check, needs
    // its key before anything else): every command as qemu-img.
    let expect = if fmt == "luks" { SAME } else { Expect::Refused(fmt) };
    let probed = Case { file, source, fmt: None, info: expect, check: Some(expect) };
    probed.run();
    Case { fmt: Some(fmt), ..probed }.run();
}

/// Crafted files: names, short files, magics followed by garbage, files
/// two probes claim. Probed unless the case names a format.
#[rstest]
// dmg's probe goes by the name: `.dmg` files qemu cannot open as dmg.
#[case::raw_named_dmg(Case::bytes("x.dmg", image(4096, &[(0, b"hello")]), SAME))]
#[case::short_raw_named_dmg(Case::bytes("x.dmg", b"hi".repeat(50), SAME))]
#[case::empty_named_dmg(Case::bytes("x.dmg", Vec::new(), SAME))]
#[case::bare_dot_dmg(Case::bytes(".dmg", b"hello".to_vec(), SAME))]
#[case::upper_case_dmg(Case::bytes("x.DMG", b"hello".to_vec(), SAME))]
#[case::dmg_without_dmg_name(Case::new("zeros.img", Source::Sample("zeros.dmg"), SAME))]
#[case::dmg_trailer_then_garbage(Case::bytes(
    "x.dmg",
    image(2048, &[(1536, b"koly")]),
    Expect::Refused("dmg")
))]
#[case::qcow2_named_dmg(Case::new(
    "x.dmg",
    Source::Qemu(&["create", "-q", "-f", "qcow2", "x.dmg", "1M"], None),
    SAME
))]
#[case::cloop_named_dmg(Case::bytes("x.dmg", cloop(0, 0), SAME))]
#[case::vdi_named_dmg(Case::bytes("x.dmg", with_vdi(b""), SAME))]
// Files shorter than the 512-byte probe buffer, read as zero-padded.
#[case::short_qcow2_magic(Case::bytes("x", b"QFI".to_vec(), SAME))]
#[case::short_qcow(Case::bytes("x", b"QFI\xfb\0\0\0\x01".to_vec(), SAME))]
#[case::short_qed(Case::bytes("x", b"QED\0".to_vec(), SAME))]
#[case::short_vdi(Case::bytes("x", image(68, &[(0x40, &[0x7f, 0x10, 0xda, 0xbe])]), SAME))]
#[case::short_parallels(Case::bytes("x", b"WithoutFreeSpace\x02\0\0\0".to_vec(), SAME))]
#[case::short_luks(Case::bytes("x", b"LUKS\xba\xbe\0\x01".to_vec(), SAME))]
#[case::short_cloop(Case::bytes("x", CLOOP.to_vec(), SAME))]
#[case::one_byte(Case::bytes("x", b"Q".to_vec(), SAME))]
// Near misses: qemu's probe says no, so the file is raw.
#[case::luks_version_2(Case::bytes("x", image(1024, &[(0, b"LUKS\xba\xbe\0\x02")]), SAME))]
#[case::parallels_version_1(Case::bytes("x", parallels(1, 32, 1), SAME))]
#[case::bochs_undoable(Case::bytes("x", {
    let mut b = bochs(0x20000, 1, 4096, 0);
    b[48..56].copy_from_slice(b"Undoable");
    b
}, SAME))]
#[case::cloop_prefix_only(Case::bytes("x", CLOOP[..40].to_vec(), SAME))]
// A magic, then header fields qemu's open rejects.
#[case::bochs_v1_garbage(Case::bytes("x", bochs(0x10000, 0, 0, 0), SAME))]
#[case::bochs_catalog_too_large(Case::bytes("x", bochs(0x20000, 0x10_0001, 4096, 0), SAME))]
#[case::bochs_extent_not_power_of_two(Case::bytes("x", bochs(0x20000, 1, 1000, 0), SAME))]
#[case::bochs_extent_too_large(Case::bytes("x", bochs(0x20000, 1, 16 << 20, 0), SAME))]
#[case::bochs_catalog_too_small(Case::bytes("x", bochs(0x20000, 1, 4096, 1 << 20), SAME))]
#[case::bochs_header_valid(Case::bytes("x", bochs(0x20000, 256, 4096, 1 << 20), Expect::Refused("bochs")))]
#[case::cloop_zero_block_size(Case::bytes("x", cloop(0, 0), SAME))]
#[case::cloop_unaligned_block_size(Case::bytes("x", cloop(1000, 1), SAME))]
#[case::cloop_block_size_too_large(Case::bytes("x", cloop(128 << 20, 1), SAME))]
#[case::cloop_too_many_blocks(Case::bytes("x", cloop(512, u32::MAX), SAME))]
#[case::cloop_too_many_offsets(Case::bytes("x", cloop(512, 1 << 27), SAME))]
#[case::parallels_too_big_cluster(Case::bytes("x", parallels(2, i32::MAX as u32 / 513 + 1, 1), SAME))]
#[case::parallels_catalog_too_large(Case::bytes("x", parallels(2, 32, 1 << 29), SAME))]
#[case::qcow_zero_cluster_bits(Case::bytes("x", qcow(1, 1 << 20, 0, 9), SAME))]
#[case::qcow_bad_l2_bits(Case::bytes("x", qcow(1, 1 << 20, 12, 0), SAME))]
#[case::qcow_tiny_size(Case::bytes("x", qcow(1, 1, 12, 9), SAME))]
#[case::qed_unknown_features(Case::bytes("x", image(4096, &[(0, b"QED\0"), (4, &65536u32.to_le_bytes()), (16, &[0x10])]), SAME))]
#[case::vdi_disk_too_large(Case::bytes("x", image(4096, &[(0x40, &[0x7f, 0x10, 0xda, 0xbe]), (0x170, &[0xff; 8])]), SAME))]
// Two probes at 100: qemu keeps the driver its list names first.
#[case::tie_vdi_qcow2(Case::bytes("x", with_vdi(b"QFI\xfb\0\0\0\x03"), SAME))]
#[case::tie_vdi_qcow(Case::bytes("x", with_vdi(b"QFI\xfb\0\0\0\x01"), SAME))]
#[case::tie_vdi_luks(Case::bytes("x", with_vdi(b"LUKS\xba\xbe\0\x01"), SAME))]
#[case::tie_vdi_parallels(Case::bytes("x", with_vdi(b"WithouFreSpacExt\x02\0\0\0"), SAME))]
#[case::tie_vdi_qed(Case::bytes("x", with_vdi(b"QED\0"), SAME))]
#[case::tie_vdi_vmdk(Case::bytes("x", with_vdi(b"KDMV\x01\0\0\0"), SAME))]
#[case::tie_vdi_vmdk_descriptor(Case::bytes("x", with_vdi(b"version=1\n"), SAME))]
// vpc wins; instar's vpc `check` of a footer qemu's vpc open rejects is a
// separate bug of the vpc crate (it checks instead of failing to open).
#[case::tie_vdi_vpc(Case::bytes("x", with_vdi(b"conectix"), SAME).info_only())]
#[case::tie_vdi_vhdx(Case::bytes("x", with_vdi(b"vhdxfile"), SAME))]
// With -f: header checks of the named driver.
#[case::named_luks_version_2(Case::bytes("x", image(1024, &[(0, b"LUKS\xba\xbe\0\x02")]), SAME).named("luks"))]
#[case::named_parallels_version_1(Case::bytes("x", parallels(1, 32, 1), SAME).named("parallels"))]
#[case::named_qcow_version_7(Case::bytes("x", qcow(7, 1 << 20, 12, 9), SAME).named("qcow"))]
#[case::named_dmg_empty(Case::bytes("x", Vec::new(), SAME).named("dmg"))]
#[case::named_vdi_garbage(Case::bytes("x", image(4096, &[(0x40, b"junk")]), SAME).named("vdi"))]
fn edge(#[case] case: Case) {
    case.run();
}

/// `info -f <fmt>` and `check -f <fmt>` on a file of another format:
/// qemu's driver refuses it by its header, and instar says the same.
#[rstest]
fn named(
    #[values("bochs", "cloop", "dmg", "luks", "parallels", "qcow", "qed", "vdi")] fmt: &'static str,
    #[values("zeros", "empty", "tiny", "qcow2")] file: &'static str,
) {
    let source = match file {
        "zeros" => Source::Bytes(vec![0; 1 << 20]),
        "empty" => Source::Bytes(Vec::new()),
        "tiny" => Source::Bytes(b"QFI".to_vec()),
        _ => Source::Qemu(&["create", "-q", "-f", "qcow2", "qcow2", "1M"], None),
    };
    Case::new(file, source, SAME).named(fmt).run();
}

/// What qemu-img says to `create -f <driver>`.
#[derive(Debug, Clone, Copy)]
enum Creates {
    /// `Format driver '<d>' does not support image creation`.
    Never,
    /// The same, in a qemu-img with the driver's module installed;
    /// without it, qemu-img cannot load the driver (Debian's
    /// `qemu-block-extra`), and instar still answers as a full qemu-img.
    NeverModule,
    /// qemu-img creates it; instar refuses it by name.
    Yes,
}

/// `create -f <d> -o help`, `create -f <d> -o help x`, `create -f <d> x
/// 1M`, for every driver qemu-img lists that instar does not implement;
/// and `info -f <d>` for those that are not image formats.
#[rstest]
#[case::blkdebug("blkdebug", Creates::Never)]
#[case::blklogwrites("blklogwrites", Creates::Never)]
#[case::blkverify("blkverify", Creates::Never)]
#[case::bochs("bochs", Creates::Never)]
#[case::cloop("cloop", Creates::Never)]
#[case::compress("compress", Creates::Never)]
#[case::copy_before_write("copy-before-write", Creates::Never)]
#[case::copy_on_read("copy-on-read", Creates::Never)]
#[case::dmg("dmg", Creates::Never)]
#[case::file("file", Creates::Yes)]
#[case::ftp("ftp", Creates::NeverModule)]
#[case::ftps("ftps", Creates::NeverModule)]
#[case::gluster("gluster", Creates::Yes)]
#[case::host_cdrom("host_cdrom", Creates::Yes)]
#[case::host_device("host_device", Creates::Yes)]
#[case::http("http", Creates::NeverModule)]
#[case::https("https", Creates::NeverModule)]
#[case::iscsi("iscsi", Creates::Yes)]
#[case::iser("iser", Creates::Yes)]
#[case::luks("luks", Creates::Yes)]
#[case::nbd("nbd", Creates::Yes)]
#[case::nfs("nfs", Creates::Yes)]
#[case::null_aio("null-aio", Creates::Never)]
#[case::null_co("null-co", Creates::Never)]
#[case::nvme("nvme", Creates::Yes)]
#[case::parallels("parallels", Creates::Yes)]
#[case::preallocate("preallocate", Creates::Never)]
#[case::qcow("qcow", Creates::Yes)]
#[case::qed("qed", Creates::Yes)]
#[case::quorum("quorum", Creates::Never)]
#[case::rbd("rbd", Creates::Yes)]
#[case::replication("replication", Creates::Never)]
#[case::snapshot_access("snapshot-access", Creates::Never)]
#[case::ssh("ssh", Creates::Yes)]
#[case::throttle("throttle", Creates::Never)]
#[case::vdi("vdi", Creates::Yes)]
#[case::vvfat("vvfat", Creates::Never)]
fn create_driver(#[case] driver: &str, #[case] creates: Creates) {
    let Some(qemu) = oracle_or_skip() else { return };
    let qemu = &qemu.path;
    let formats = ["bochs", "cloop", "dmg", "luks", "parallels", "qcow", "qed", "vdi"];
    let runs: [(&[&str], &str); 3] = [
        (&["create", "-f", driver, "-o", "help"], ""),
        (&["create", "-f", driver, "-o", "help", "x"], ""),
        (&["create", "-f", driver, "x", "1M"], "x: "),
    ];
    for (args, prefix) in runs {
        let (qemu_dir, instar_dir) = (tempdir(), tempdir());
        let q = run(qemu, args, qemu_dir.path());
        let i = run(instar(), args, instar_dir.path());
        let shown = format!("{args:?}\n  qemu-img printed: {q:?}\n  instar printed:   {i:?}");
        assert!(!instar_dir.path().join("x").exists(), "instar's create left a file: {shown}");
        assert_eq!(i.stdout, "", "stdout of {shown}");
        assert_eq!(i.code, Some(1), "exit code of {shown}");
        let module_missing = q.stderr.contains("module");
        let want = match creates {
            Creates::Never => as_instar(&q.stderr),
            Creates::NeverModule if !module_missing => as_instar(&q.stderr),
            Creates::NeverModule => {
                assert_eq!(q.code, Some(1), "exit code of {shown}");
                format!(
                    "instar: {prefix}Format driver '{driver}' does not support image creation\n"
                )
            }
            Creates::Yes => format!("instar: {prefix}{}\n", refusal(driver)),
        };
        similar_asserts::assert_eq!(want, i.stderr, "stderr of {shown}");
        if let Creates::Never = creates {
            assert_eq!(q.code, i.code, "exit code of {shown}");
            assert_eq!(q.stdout, "", "stdout of {shown}");
        }
    }
    // Drivers that are not image formats: `-f` names them, instar refuses.
    if !formats.contains(&driver) {
        let dir = tempdir();
        std::fs::write(dir.path().join("r.img"), vec![0u8; 1 << 20]).unwrap();
        let args = ["info", "-f", driver, "r.img"];
        let i = run(instar(), &args, dir.path());
        let want = format!("instar: Could not open 'r.img': {}\n", refusal(driver));
        assert_eq!((i.stdout.as_str(), i.stderr.as_str(), i.code), ("", want.as_str(), Some(1)));
    }
}

/// `create -f <driver qemu cannot create>` looks the file name's protocol
/// up first, as qemu-img's `bdrv_img_create` does; `-o help` does not.
#[rstest]
#[case::known_protocol(&["create", "-f", "bochs", "nbd:localhost:1", "1M"])]
#[case::unknown_protocol(&["create", "-f", "bochs", "a:b", "1M"])]
#[case::help_unknown_protocol(&["create", "-f", "bochs", "-o", "help", "a:b"])]
#[case::no_size(&["create", "-f", "cloop", "x"])]
#[case::bad_option(&["create", "-f", "dmg", "-o", "foo=bar", "x", "1M"])]
#[case::backing(&["create", "-f", "vvfat", "-b", "base", "x", "1M"])]
fn create_driver_order(#[case] args: &[&str]) {
    let Some(qemu) = oracle_or_skip() else { return };
    let dir = tempdir();
    compare(&qemu.path, dir.path(), args, Expect::Same);
}
