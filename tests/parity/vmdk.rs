//! vmdk against qemu-img. For every subformat, size and option value:
//!
//! - instar writes the same files, under the same names, as qemu-img, byte
//!   for byte outside the descriptor's random `CID=` (docs/compat.md §3.4), and
//!   prints the same while doing it;
//! - `qemu-img check` finds instar's image clean (or, where qemu-img cannot
//!   open its own image, fails on instar's the same way), and `qemu-img
//!   info` says the same of both images;
//! - instar's own `info` and `check` print exactly what qemu-img prints on
//!   the same file;
//! - qemu-img can write into instar's image and read the data back;
//! - refused arguments get qemu-img's messages, and instar leaves no file.
//!
//! And for images qemu-img reads but does not write (seSparse, COWD and
//! VMFS extents, hand-written descriptors, randomly damaged files),
//! instar's `info` and `check` end exactly as qemu-img's do.

use super::{info_parity, write_pattern, Pair};
use crate::util::edit::{file_len, read_at, vmdk_move_header_to_footer, write_at};
use crate::util::{create_args, files_in, instar, path_str, tempdir, Sandbox, Transcript};
use instar_matrix::Target;
use rstest::rstest;
use std::path::Path;

/// The image's name in every case.
const IMAGE: &str = "img.vmdk";

/// The subformats qemu-img creates.
const SPARSE: &str = "subformat=monolithicSparse";
const FLAT: &str = "subformat=monolithicFlat";
const SPLIT_SPARSE: &str = "subformat=twoGbMaxExtentSparse";
const SPLIT_FLAT: &str = "subformat=twoGbMaxExtentFlat";
const STREAM: &str = "subformat=streamOptimized";

/// Creates the case with both programs (`pair.create`), which must
/// succeed, and compares everything.
fn compare_created(pair: &Pair, flags: &[&str], options: &str, size: &str) {
    let created = pair.create(flags, options, size);
    pair.s.t.check(created, || "qemu-img refused the case".into());
    pair.same_bytes();
    // qemu-img cannot open every image it creates (size 0: its descriptor
    // type is then refused); instar's image must fare exactly the same.
    let check = ["check", IMAGE];
    let theirs = pair.s.t.run(&pair.s.qemu.path, &check, &pair.theirs());
    let mine = pair.s.t.run(&pair.s.qemu.path, &check, &pair.mine());
    pair.s.t.assert_alike("qemu-img check of qemu-img's image (left) and instar's", &theirs, &mine);
    pair.info_parity(&pair.mine());
    if theirs.ok() {
        pair.qemu_finds_mine_clean();
        pair.same_qemu_info();
        let code = pair.check_parity(&pair.mine());
        pair.s.t.check(code == Some(0), || format!("check exited {code:?}"));
    }
}

/// One create case: both programs create, and every comparison holds.
fn create(options: &str, size: &str) {
    let Some(pair) = Pair::new(Target::Vmdk) else { return };
    compare_created(&pair, &[], options, size);
}

#[rstest]
fn default_subformat(
    #[values("0", "1000", "1k", "1M", "64M", "1G", "100G", "2T", "2199023256064", "4T")] size: &str,
) {
    create("", size);
}

#[rstest]
fn subformats_and_sizes(
    #[values(SPARSE, FLAT, SPLIT_SPARSE, SPLIT_FLAT, STREAM)] subformat: &str,
    #[values("512", "1M", "64M", "1G", "2G", "2147484160", "5368710656")] size: &str,
) {
    create(subformat, size);
}

/// Large sparse images (flat ones would be as large on disk, as holes).
#[rstest]
fn large_sparse(#[values(SPARSE, STREAM, SPLIT_SPARSE)] subformat: &str) {
    create(subformat, "100G");
}

#[test]
fn large_flat() {
    create(FLAT, "2199023256064");
}

#[rstest]
fn option_values(
    #[values(SPARSE, FLAT, SPLIT_SPARSE, SPLIT_FLAT, STREAM)] subformat: &str,
    #[values(
        "adapter_type=ide",
        "adapter_type=lsilogic",
        "adapter_type=buslogic",
        "adapter_type=legacyESX",
        "hwversion=4",
        "hwversion=6",
        "hwversion=21",
        "hwversion=undefined",
        "compat6=on",
        "compat6=off",
        "compat6=on,hwversion=undefined",
        "toolsversion=0",
        "toolsversion=10341",
        "toolsversion=a,,b",
        "preallocation=off",
        "preallocation=falloc",
        "preallocation=full",
        "nocow=on",
        "extent_size_hint=1M"
    )]
    option: &str,
) {
    create(&format!("{subformat},{option}"), "3G");
}

/// Grains of zeros, in the subformats that have grains.
#[rstest]
fn zeroed_grain(
    #[values(SPARSE, SPLIT_SPARSE, STREAM)] subformat: &str,
    #[values("zeroed_grain=on", "zeroed_grain=off")] option: &str,
) {
    create(&format!("{subformat},{option}"), "3G");
}

#[test]
fn options_combined() {
    create("adapter_type=lsilogic,hwversion=7,toolsversion=123,zeroed_grain=on", "1G");
}

/// Children of each sparse kind on parents of each kind (a child records
/// the parent's CID), the parent named relative to the child and
/// absolutely.
#[rstest]
fn backing_files(
    #[values(SPARSE, STREAM, SPLIT_SPARSE)] subformat: &str,
    #[values("base.vmdk", "split.vmdk", "flat.vmdk")] parent: &str,
    #[values("relative", "absolute")] naming: &str,
) {
    let Some(pair) = Pair::new(Target::Vmdk) else { return };
    let kind = match parent {
        "base.vmdk" => SPARSE,
        "split.vmdk" => SPLIT_SPARSE,
        _ => FLAT,
    };
    let create = ["create", "-q", "-f", "vmdk", "-o", kind, parent, "3G"];
    pair.s.t.run_ok(&pair.s.qemu.path, &create, &pair.base());
    let (path, size) = match naming {
        "relative" => (format!("../base/{parent}"), "3G"),
        _ => (path_str(&pair.base().join(parent)), "1G"),
    };
    compare_created(&pair, &[], &format!("{subformat},backing_file={path},backing_fmt=vmdk"), size);
}

/// Refused arguments: qemu-img's messages, and no file left by instar
/// (qemu-img leaves one behind for some of them). `-u`: qemu-img's block
/// layer leaves the backing file to vmdk, which reads it to refuse it.
#[rstest]
#[case::adapter_type_scsi("adapter_type=scsi")]
#[case::adapter_type_upper_case("adapter_type=IDE")]
#[case::compat6_hwversion_6("compat6=on,hwversion=6")]
#[case::compat6_hwversion_4("compat6=on,hwversion=4")]
#[case::subformat_foo("subformat=foo")]
#[case::subformat_lower_case("subformat=monolithicsparse")]
#[case::backing_fmt_qcow2("backing_fmt=qcow2")]
#[case::backing_fmt_raw_adapter_scsi("backing_fmt=raw,adapter_type=scsi")]
#[case::flat_with_backing_file("subformat=monolithicFlat,backing_file=x.vmdk,backing_fmt=vmdk")]
#[case::flat_zeroed_grain("subformat=twoGbMaxExtentFlat,zeroed_grain=on")]
#[case::preallocation_foo("preallocation=foo")]
#[case::preallocation_metadata("preallocation=metadata")]
#[case::extent_size_hint_5t("extent_size_hint=5T")]
#[case::backing_file_missing("backing_file=$BASE/missing.vmdk,backing_fmt=vmdk")]
#[case::backing_file_qcow2("backing_file=$BASE/q.qcow2,backing_fmt=vmdk")]
#[case::backing_file_raw("backing_file=$BASE/r.raw,backing_fmt=vmdk")]
#[case::backing_file_not_a_descriptor("backing_file=$BASE/bad.vmdk,backing_fmt=vmdk")]
#[case::backing_file_without_cid("backing_file=$BASE/nocid.vmdk,backing_fmt=vmdk")]
fn refusals(#[case] options: &str) {
    let Some(pair) = Pair::new(Target::Vmdk) else { return };
    let base = pair.base();
    let qemu = |args: &[&str]| pair.s.t.run_ok(&pair.s.qemu.path, args, &base);
    qemu(&["create", "-q", "-f", "qcow2", "q.qcow2", "1M"]);
    qemu(&["create", "-q", "-f", "raw", "r.raw", "1M"]);
    std::fs::write(base.join("bad.vmdk"), "version=1\nnothing here\n").unwrap();
    qemu(&["create", "-q", "-f", "vmdk", "nocid.vmdk", "1M"]);
    let nocid = std::fs::read(base.join("nocid.vmdk")).unwrap();
    let nocid = String::from_utf8_lossy(&nocid).replace("CID=", "XID=");
    std::fs::write(base.join("nocid.vmdk"), nocid).unwrap();
    let options = options.replace("$BASE", &path_str(&base));
    pair.assert_refused(&["-u"], &options, "1M");
}

/// qemu-img writes into instar's images and reads the data back; the
/// images stay clean for both checks and instar's info still matches.
#[rstest]
#[case::default_64m("", "64M")]
#[case::default_3g("", "3G")]
#[case::zeroed_grain("zeroed_grain=on", "64M")]
#[case::split_sparse(SPLIT_SPARSE, "5G")]
#[case::monolithic_flat(FLAT, "64M")]
#[case::split_flat(SPLIT_FLAT, "3G")]
#[case::stream_optimized(STREAM, "64M")]
fn qemu_writes_into_instar_images(#[case] options: &str, #[case] size: &str) {
    let Some(pair) = Pair::new(Target::Vmdk) else { return };
    pair.s.t.run_ok(instar(), &create_args(&["-q"], "vmdk", options, IMAGE, size), &pair.mine());
    let data = pair.s.file("data.raw");
    write_pattern(&data, pair.virtual_size(&pair.mine()));
    // Stream-optimized images take compressed writes only.
    let flags: &[&str] = if options.contains("streamOptimized") { &["-c"] } else { &[] };
    pair.qemu_writes_and_reads_back(&data, flags);
    pair.qemu_finds_mine_clean();
    let code = pair.check_parity(&pair.mine());
    pair.s.t.check(code == Some(0), || format!("check exited {code:?}"));
    pair.info_parity(&pair.mine());
}

/// Two creates draw two CIDs.
#[test]
fn cid_is_random_per_create() {
    let t = Transcript::default();
    let cid = || {
        let dir = tempdir();
        t.run_ok(instar(), &["create", "-q", "-f", "vmdk", IMAGE, "1M"], dir.path());
        let head = read_at(&dir.path().join(IMAGE), 512, 64);
        let text = String::from_utf8_lossy(&head).into_owned();
        text.lines().find_map(|l| l.strip_prefix("CID=").map(str::to_string))
    };
    let (a, b) = (cid(), cid());
    t.check(a.is_some() && a != b, || format!("CIDs {a:?} and {b:?}"));
}

/// A stream-optimized image whose header says "grain directory at the
/// end" and whose footer holds the real header, as VMware writes them:
/// instar's info and check print what qemu-img prints; with its
/// end-of-stream marker broken, both refuse to open it alike.
#[test]
fn footer_of_stream_optimized_images() {
    let Some(s) = Sandbox::new() else { return };
    s.qemu_ok(&["create", "-q", "-f", "vmdk", "-o", STREAM, IMAGE, "64M"]);
    let path = s.file(IMAGE);
    vmdk_move_header_to_footer(&path);
    info_parity(&s, s.path(), IMAGE, "vmdk");
    let code = s.same(&["check", IMAGE]);
    s.t.check(code == Some(0), || format!("check exited {code:?}"));
    write_at(&path, file_len(&path) - 512 + 12, &[1]);
    info_parity(&s, s.path(), IMAGE, "vmdk");
    s.same(&["check", IMAGE]);
}

/// `check` (human and JSON) and `info` (JSON and human) of `name`, with
/// `-f vmdk`: instar prints what qemu-img prints. Returns qemu-img's check
/// exit code.
fn check_and_info_parity(s: &Sandbox, name: &str) -> Option<i32> {
    let code = s.same(&["check", "-f", "vmdk", name]);
    s.same(&["check", "-f", "vmdk", "--output=json", name]);
    s.same(&["info", "-f", "vmdk", "--output=json", name]);
    s.same(&["info", "-f", "vmdk", name]);
    code
}

/// An ESXi seSparse extent of 32 MiB (4 KiB grains, one 4096-entry table
/// per 16 MiB) with two allocated grains and a zeroed one, and a
/// descriptor naming it; `at` and `value` overwrite one 64-bit value.
fn write_sesparse(dir: &Path, at: usize, value: u64) {
    let capacity = 65536u64;
    let mut b = crate::util::edit::sesparse_extent(capacity);
    b[at..at + 8].copy_from_slice(&value.to_le_bytes());
    std::fs::write(dir.join("se-delta.vmdk"), b).unwrap();
    std::fs::write(
        dir.join("se.vmdk"),
        format!(
            "# Disk DescriptorFile\nversion=1\nCID=fff\nparentCID=ffffffff\n\
             createType=\"seSparse\"\n\n# Extent description\nRW {capacity} SESPARSE \"se-delta.vmdk\"\n"
        ),
    )
    .unwrap();
}

/// seSparse extents, clean and damaged one field at a time: (byte offset
/// of a 64-bit value, the value, qemu-img's check exit code).
#[rstest]
#[case::clean(0, 0xcafe_babe, 0)]
#[case::bad_magic(0, 5, 1)]
#[case::bad_version(8, 2, 1)]
#[case::bad_grain_size(24, 16, 1)]
#[case::bad_table_size(32, 32, 1)]
#[case::flags(40, 2, 1)]
#[case::reserved(64, 9, 1)]
#[case::padding(400, 1, 1)]
#[case::volatile_magic(512, 1, 1)]
#[case::dirty_journal(512 + 24, 1, 1)]
#[case::volatile_padding(512 + 100, 1, 1)]
#[case::directory_entry_invalid(1024 + 8, 0x2000_0000_0000_0000, 1)]
#[case::table_entry_invalid(3 * 512 + 24, 0xf000_0000_0000_0000, 1)]
#[case::table_entry_nonsense(3 * 512 + 24, 7, 1)]
#[case::grain_past_eof(3 * 512 + 32, 0x3000_0000_0000_0100, 1)]
#[case::directory_too_large(17 * 8, 1 << 40, 1)]
fn sesparse_extents(#[case] at: usize, #[case] value: u64, #[case] want: i32) {
    let Some(s) = Sandbox::new() else { return };
    write_sesparse(s.path(), at, value);
    let code = check_and_info_parity(&s, "se.vmdk");
    s.t.check(code == Some(want), || format!("qemu-img check exited {code:?}, not {want}"));
}

/// ESX sparse ("COWD") extents and flat VMFS extents behind a vmfsSparse
/// descriptor, with grain 3 of the COWD extent at sector `grain_entry`.
/// The descriptor's blank line makes qemu read the next extent line twice
/// (its `sscanf` skips the newline), and so does instar.
#[rstest]
#[case::unallocated(0, 0)]
#[case::allocated(38, 0)]
#[case::past_the_end(100_000, 1)]
fn cowd_and_vmfs_extents(#[case] grain_entry: u32, #[case] want: i32) {
    let Some(s) = Sandbox::new() else { return };
    let mut b = vec![0u8; 512 * 53];
    b[..4].copy_from_slice(b"COWD");
    // version, flags, sectors, granularity, directory sector, entries.
    for (i, v) in [1u32, 3, 2048, 16, 4, 1].iter().enumerate() {
        b[4 + i * 4..8 + i * 4].copy_from_slice(&v.to_le_bytes());
    }
    b[4 * 512..4 * 512 + 4].copy_from_slice(&5u32.to_le_bytes());
    b[5 * 512..5 * 512 + 4].copy_from_slice(&37u32.to_le_bytes());
    b[5 * 512 + 12..5 * 512 + 16].copy_from_slice(&grain_entry.to_le_bytes());
    b[37 * 512..38 * 512].fill(0xab);
    std::fs::write(s.file("x-delta.vmdk"), b).unwrap();
    std::fs::write(s.file("x-flat.vmdk"), vec![0u8; 51200]).unwrap();
    std::fs::write(
        s.file("x.vmdk"),
        "# Disk DescriptorFile\nversion=1\nCID=abc\nparentCID=ffffffff\n\
         createType=\"vmfsSparse\"\n\nRW 2048 VMFSSPARSE \"x-delta.vmdk\"\n\
         RW 100 VMFS \"x-flat.vmdk\"\n",
    )
    .unwrap();
    let code = check_and_info_parity(&s, "x.vmdk");
    s.t.check(code == Some(want), || format!("qemu-img check exited {code:?}, not {want}"));
}

/// Descriptors qemu reads in surprising ways: keys found anywhere, values
/// running over newlines, extent lines it skips or refuses. Each names the
/// 4 KiB file `f.raw`; `$HEAD` stands for the usual first two lines.
#[rstest]
#[case::flat("$HEADCID=1\nparentCID=2\ncreateType=\"monolithicFlat\"\nRW 8 FLAT \"f.raw\" 0\n")]
#[case::no_cid_but_xid(
    "$HEADXID=1\nparentCID=2\ncreateType=\"monolithicFlat\"\nRW 8 FLAT \"f.raw\" 0\n"
)]
#[case::no_cids("$HEADcreateType=\"monolithicFlat\"\nRW 8 FLAT \"f.raw\" 0\n")]
#[case::odd_cids_offset_4(
    "$HEADCID=-1\nparentCID=0x10\ncreateType=\"twoGbMaxExtentFlat\"\nRW 8 FLAT \"f.raw\" 4\n"
)]
#[case::flat_without_offset(
    "$HEADCID=1\nparentCID=2\ncreateType=\"monolithicFlat\"\nRW 8 FLAT \"f.raw\"\n"
)]
#[case::flat_negative_offset(
    "$HEADCID=1\nparentCID=2\ncreateType=\"monolithicFlat\"\nRW 8 FLAT \"f.raw\" -1\n"
)]
#[case::extent_kinds("$HEADCID=1\nparentCID=2\ncreateType=\"monolithicFlat\"\nRDONLY 8 FLAT \"f.raw\" 0\nRW 8 ZERO \"f.raw\"\nRW 0 FLAT \"f.raw\" 0\nRW 8 VMFS \"f.raw\"\n")]
#[case::vmfs_with_offset(
    "$HEADCID=1\nparentCID=2\ncreateType=\"monolithicFlat\"\nRW 8 VMFS \"f.raw\" 3\n"
)]
#[case::sparse_extent_of_raw(
    "$HEADCID=1\nparentCID=2\ncreateType=\"monolithicFlat\"\nRW 8 SPARSE \"f.raw\"\n"
)]
#[case::missing_extent(
    "$HEADCID=1\nparentCID=2\ncreateType=\"monolithicFlat\"\nRW 8 FLAT \"missing.raw\" 0\n"
)]
#[case::parent_hint_over_two_lines("$HEADCID=1\nparentCID=2\ncreateType=\"vmfs\"\nparentFileNameHint=\"a\nb\"\nRW 8 FLAT \"f.raw\" 0\n")]
#[case::parent_hint_empty("$HEADCID=1\nparentCID=2\ncreateType=\"vmfs\"\nparentFileNameHint=\"\"\nRW 8 FLAT \"f.raw\" 0\n")]
#[case::parent_hint_absolute("$HEADCID=1\nparentCID=2\ncreateType=\"vmfs\"\nparentFileNameHint=\"/abs/b.vmdk\"\nRW 8 FLAT \"f.raw\" 0\n")]
#[case::parent_hint_unterminated("$HEADCID=1\nparentCID=2\ncreateType=\"vmfs\"\nparentFileNameHint=\"unterminated\nRW 8 FLAT \"f.raw\" 0\n")]
#[case::sparse_type_without_extents("$HEADCID=1\nparentCID=2\ncreateType=\"monolithicSparse\"\n")]
#[case::long_create_type("$HEADCID=1\nparentCID=2\ncreateType=\"$LONG\"\n")]
#[case::sesparse_extent_of_raw(
    "$HEADCID=1\nparentCID=2\ncreateType=\"seSparse\"\nRW 8 SESPARSE \"f.raw\"\n"
)]
#[case::cids_after_extents(
    "version=1\ncreateType=\"monolithicFlat\"\nRW 8 FLAT \"f.raw\" 0\nCID=7\nparentCID=ffffffff\n"
)]
fn descriptor_corner_cases(#[case] descriptor: &str) {
    let Some(s) = Sandbox::new() else { return };
    std::fs::write(s.file("f.raw"), vec![0u8; 4096]).unwrap();
    let text = descriptor
        .replace("$HEAD", "# Disk DescriptorFile\nversion=1\n")
        .replace("$LONG", &"x".repeat(200));
    std::fs::write(s.file("d.vmdk"), text).unwrap();
    check_and_info_parity(&s, "d.vmdk");
}

/// A small deterministic generator for the random damage below.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
}

/// Makes the image of `layout` in the sandbox with qemu-img.
fn random_damage_base(s: &Sandbox, layout: &str) {
    if ["sparse", "stream", "zeroed"].contains(&layout) {
        write_pattern(&s.file("data.raw"), 4 << 20);
    }
    let args: &[&str] = match layout {
        "sparse" => &["convert", "-O", "vmdk", "data.raw", IMAGE],
        "stream" => &["convert", "-c", "-O", "vmdk", "-o", STREAM, "data.raw", IMAGE],
        "split" => &["create", "-f", "vmdk", "-o", SPLIT_SPARSE, IMAGE, "3G"],
        "flat" => &["create", "-f", "vmdk", "-o", FLAT, IMAGE, "1M"],
        "zeroed" => &["convert", "-O", "vmdk", "-o", "zeroed_grain=on", "data.raw", IMAGE],
        other => panic!("no layout {other}"),
    };
    s.qemu_ok(args);
    let _ = std::fs::remove_file(s.file("data.raw"));
}

/// Random damage (bytes of headers, descriptors, directories and tables
/// overwritten, files cut short) to an image of each layout, 30 rounds
/// each, each round its own seed: instar's info and check print what
/// qemu-img prints (both read as UTF-8, a byte that is not read as U+FFFD
/// on either side).
#[rstest]
fn random_damage(
    #[values("sparse", "stream", "split", "flat", "zeroed")] layout: &str,
    #[values(
        0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24,
        25, 26, 27, 28, 29
    )]
    round: u64,
) {
    let Some(s) = Sandbox::new() else { return };
    random_damage_base(&s, layout);
    let layout_no =
        ["sparse", "stream", "split", "flat", "zeroed"].iter().position(|l| *l == layout);
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15 ^ ((layout_no.unwrap() as u64) << 32) ^ round);
    rng.next();
    let files = files_in(s.path());
    let victim = s.file(&files[rng.below(files.len() as u64) as usize]);
    let mut b = std::fs::read(&victim).unwrap();
    for _ in 0..1 + rng.below(3) {
        let len = b.len() as u64;
        match rng.below(10) {
            0..=4 if len > 0 => {
                // Mostly the header, descriptor and directories.
                let limit = [80, 1024, 12_000, len][rng.below(4) as usize].min(len);
                b[rng.below(limit) as usize] = rng.next() as u8;
            }
            5..=6 if len >= 80 => {
                let at = rng.below(76) as usize;
                b[at..at + 4].copy_from_slice(&(rng.next() as u32).to_le_bytes());
            }
            7 => b.truncate(rng.below(len + 1) as usize),
            _ => {
                let text = String::from_utf8_lossy(&b).into_owned();
                if text.len() == b.len() {
                    let (from, to) = [
                        ("SPARSE", "FLAT"),
                        ("\" 0", "\" 9"),
                        ("RW ", "RW 9"),
                        ("CID=", "CID=-"),
                        ("\n\n", "\n"),
                        ("createType", "createTyp"),
                    ][rng.below(6) as usize];
                    b = text.replacen(from, to, 1).into_bytes();
                }
            }
        }
    }
    std::fs::write(&victim, &b).unwrap();
    check_and_info_parity(&s, IMAGE);
}
