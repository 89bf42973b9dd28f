//! `instar check` on VHDs, clean and damaged.
//!
//! qemu-img has no check for vpc. Plain `instar check` must answer exactly
//! as `qemu-img check` does on the same file (`This image format does not
//! support checks`, exit 63, human and JSON; or qemu-img's open error, exit
//! 1, for a disk qemu-img cannot open), damaged or not: a script written
//! for qemu-img sees no difference. instar's own structural check is asked
//! for by name, `check --deep`: its messages follow qemu's style for the
//! other formats (one `ERROR ...` line on stderr per problem, the summary
//! on stdout, exit 2 on corruption) and are listed in
//! `crates/vpc/src/check.rs`. Each damaged disk below gets exactly its
//! messages from `--deep`; every disk qemu-img or instar creates (and
//! qemu-img then writes into) is clean for `--deep`.
//!
//! Each case runs in both modes: `mode_1_DEEP` (instar's own check) and
//! `mode_2_PLAIN` (plain `check`, human, JSON and probed, against
//! qemu-img).

use super::qemu_create;
use crate::parity::vpc::assert_deep_clean;
use crate::util::edit::{be32, file_len, read_at, set_file_len, write_at};
use crate::util::{create_args, Sandbox};
use instar_matrix::masks::{vhd_checksum, vpc_checksum};
use rstest::rstest;
use std::fs::File;
use std::os::unix::fs::FileExt;

const MIB: u64 = 1 << 20;
const FOOTER: u64 = 512;
/// The footer's checksum field.
const CHECKSUM: u64 = 64;
/// The dynamic header: where it is, how long, and its checksum field.
const DYN_HEADER: u64 = 512;
const DYN_HEADER_LEN: usize = 1024;
const DYN_CHECKSUM: u64 = 36;
/// Where qemu-img puts the BAT of a dynamic disk.
const BAT: u64 = 0x600;

/// What qemu's checks print on stdout for `n` corruptions.
fn corrupt_summary(n: usize) -> String {
    format!(
        "\n{n} errors were found on the image.\n\
         Data may be corrupted, or further writes to the image may corrupt it.\n"
    )
}

/// Which check a case runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// instar's own structural check, `check --deep`.
    Deep,
    /// Plain `check`, which must be qemu-img's.
    Plain,
}

const DEEP: Mode = Mode::Deep;
const PLAIN: Mode = Mode::Plain;

/// Plain `check` of `name`, human and JSON with `-f vpc`, and probed:
/// instar prints what qemu-img prints. Returns qemu-img's exit code.
fn plain_checks(s: &Sandbox, name: &str) -> Option<i32> {
    super::compare_checks(
        s,
        &[
            &["check", "-f", "vpc", name],
            &["check", "-f", "vpc", "--output=json", name],
            &["check", name],
        ],
    )
}

/// `instar check --deep -f vpc name` finds exactly `errors`.
fn assert_errors(s: &Sandbox, name: &str, errors: &[String]) {
    let r = s.instar(&["check", "--deep", "-f", "vpc", name]);
    let stderr: String = errors.iter().map(|e| format!("{e}\n")).collect();
    s.t.assert_same("check --deep stderr", &stderr, &r.stderr);
    s.t.assert_same("check --deep stdout", &corrupt_summary(errors.len()), &r.stdout);
    s.t.check(r.code == Some(2), || format!("check --deep exited {:?}, not 2", r.code));
}

/// Writes data into the first two blocks of `name` through qemu-img.
fn qemu_write_two_blocks(s: &Sandbox, name: &str) {
    let f = File::create(s.file("data.raw")).unwrap();
    f.write_all_at(&[0xA5; 4096], 0).unwrap();
    f.write_all_at(&[0x5A; 4096], 2 * MIB + 4096).unwrap();
    drop(f);
    // One coroutine, so that the blocks are allocated in order.
    s.qemu_ok(&[
        "convert",
        "-m",
        "1",
        "-n",
        "--target-is-zero",
        "-f",
        "raw",
        "-O",
        "vpc",
        "data.raw",
        name,
    ]);
}

/// Recomputes the checksum of the footer at `at`.
fn fix_footer(s: &Sandbox, name: &str, at: u64) {
    let path = s.file(name);
    let sum = vpc_checksum(&read_at(&path, at, FOOTER as usize));
    write_at(&path, at + CHECKSUM, &sum.to_be_bytes());
}

/// The checksum the dynamic header should carry.
fn expected_header_checksum(s: &Sandbox, name: &str) -> u32 {
    let header = read_at(&s.file(name), DYN_HEADER, DYN_HEADER_LEN);
    vhd_checksum(&header, DYN_CHECKSUM as usize)
}

/// Patches both footers of a dynamic disk alike, checksums fixed.
fn patch_both_footers(s: &Sandbox, name: &str, field: u64, bytes: &[u8]) {
    let tail = file_len(&s.file(name)) - FOOTER;
    for at in [0, tail] {
        write_at(&s.file(name), at + field, bytes);
        fix_footer(s, name, at);
    }
}

/// A 64M dynamic disk made by qemu-img, with data in its first two blocks.
fn written_dynamic(s: &Sandbox) -> &'static str {
    qemu_create(s, "vpc", "", "d.vhd", "64M");
    qemu_write_two_blocks(s, "d.vhd");
    "d.vhd"
}

/// A clean disk.
#[derive(Debug, Clone, Copy)]
enum Disk {
    /// Created by qemu-img with these `-o` options and size.
    Qemu(&'static str, &'static str),
    /// [`written_dynamic`]: created and written into by qemu-img.
    QemuWritten,
    /// Created by instar, 64M, of this subformat.
    Instar(&'static str),
    /// A dynamic 64M disk created by instar, written into by qemu-img.
    InstarWritten,
}

impl Disk {
    /// Makes the disk; returns its name and whether it is dynamic.
    fn build(self, s: &Sandbox) -> (&'static str, bool) {
        let name = |fixed: bool| if fixed { ("f.vhd", false) } else { ("d.vhd", true) };
        match self {
            Disk::Qemu(options, size) => {
                let disk = name(options.contains("subformat=fixed"));
                qemu_create(s, "vpc", options, disk.0, size);
                disk
            }
            Disk::QemuWritten => (written_dynamic(s), true),
            Disk::Instar(subformat) => {
                let disk = name(subformat == "fixed");
                let options = format!("subformat={subformat}");
                s.instar_ok(&create_args(&["-q"], "vpc", &options, disk.0, "64M"));
                disk
            }
            Disk::InstarWritten => {
                Disk::Instar("dynamic").build(s);
                qemu_write_two_blocks(s, "d.vhd");
                ("d.vhd", true)
            }
        }
    }
}

#[rstest]
#[case::qemu_dynamic_1m(Disk::Qemu("", "1M"))]
#[case::qemu_dynamic_1g(Disk::Qemu("", "1G"))]
#[case::qemu_dynamic_100g_forced(Disk::Qemu("force_size=on", "100G"))]
#[case::qemu_fixed_16m(Disk::Qemu("subformat=fixed", "16M"))]
#[case::qemu_fixed_1g_forced(Disk::Qemu("subformat=fixed,force_size=on", "1G"))]
#[case::qemu_dynamic_written(Disk::QemuWritten)]
#[case::instar_dynamic_64m(Disk::Instar("dynamic"))]
#[case::instar_fixed_64m(Disk::Instar("fixed"))]
#[case::instar_dynamic_written(Disk::InstarWritten)]
fn clean(#[case] disk: Disk, #[values(DEEP, PLAIN)] mode: Mode) {
    let Some(s) = Sandbox::new() else { return };
    let (name, dynamic) = disk.build(&s);
    match mode {
        Mode::Deep => assert_deep_clean(&s.t, s.path(), name, dynamic),
        Mode::Plain => {
            // A fixed disk probes as raw, which has no check either.
            let code = plain_checks(&s, name);
            s.t.check(code == Some(63), || format!("qemu-img check exited {code:?}, not 63"));
        }
    }
}

/// A damage: edits the disk it makes and returns its name and the errors
/// `check --deep` must report.
type Damage = fn(&Sandbox) -> (&'static str, Vec<String>);

fn footer_checksum(s: &Sandbox) -> (&'static str, Vec<String>) {
    let name = written_dynamic(s);
    let path = s.file(name);
    let good = be32(&path, CHECKSUM);
    let tail = file_len(&path) - FOOTER;
    for at in [0, tail] {
        write_at(&path, at + CHECKSUM, &0x1234_5678u32.to_be_bytes());
    }
    (
        name,
        vec![format!("ERROR footer at offset 0x0: checksum is 0x12345678, expected {good:#010x}")],
    )
}

fn footer_copy_differs(s: &Sandbox) -> (&'static str, Vec<String>) {
    let name = written_dynamic(s);
    let tail = file_len(&s.file(name)) - FOOTER;
    // A different original size in the copy, with a valid checksum.
    write_at(&s.file(name), tail + 40, &[0xFF; 8]);
    fix_footer(s, name, tail);
    (
        name,
        vec![format!(
            "ERROR footer copy at offset {tail:#x}: differs from the footer at offset 0x0"
        )],
    )
}

fn footer_copy_lost_to_truncation(s: &Sandbox) -> (&'static str, Vec<String>) {
    let name = written_dynamic(s);
    let path = s.file(name);
    // Cut the footer copy and half of the second block away.
    let cut = file_len(&path) - FOOTER - MIB;
    set_file_len(&path, cut);
    let copy = cut - FOOTER;
    let second = u64::from(be32(&path, BAT + 4)) * 512;
    (
        name,
        vec![
            format!("ERROR footer copy at offset {copy:#x}: invalid cookie"),
            format!(
                "ERROR BAT entry 1: block at offset {second:#x} extends past the end of the data \
                 area at {copy:#x}"
            ),
        ],
    )
}

fn footer_disk_type(s: &Sandbox) -> (&'static str, Vec<String>) {
    let name = written_dynamic(s);
    patch_both_footers(s, name, 60, &2u32.to_be_bytes());
    (name, vec!["ERROR footer at offset 0x0: disk type is 2 (fixed), expected 3 (dynamic)".into()])
}

fn first_footer_cookie(s: &Sandbox) -> (&'static str, Vec<String>) {
    let name = written_dynamic(s);
    write_at(&s.file(name), 0, b"XXXXXXXX");
    // qemu-img cannot open the disk any more; instar's deep check says why.
    let q = s.qemu(&["info", "-f", "vpc", name]);
    s.t.assert_same(
        "qemu-img info stderr",
        &format!("qemu-img: Could not open '{name}': invalid VPC image\n"),
        &q.stderr,
    );
    (name, vec!["ERROR footer at offset 0x0: invalid cookie".into()])
}

fn dynamic_header_cookie(s: &Sandbox) -> (&'static str, Vec<String>) {
    let name = written_dynamic(s);
    write_at(&s.file(name), DYN_HEADER, b"cxspars\0");
    (name, vec!["ERROR dynamic header at offset 0x200: invalid cookie".into()])
}

fn dynamic_header_checksum(s: &Sandbox) -> (&'static str, Vec<String>) {
    let name = written_dynamic(s);
    let path = s.file(name);
    // A byte of the reserved field, which qemu never reads.
    write_at(&path, DYN_HEADER + 60, &[1]);
    let stored = be32(&path, DYN_HEADER + DYN_CHECKSUM);
    let expected = expected_header_checksum(s, name);
    (
        name,
        vec![format!(
            "ERROR dynamic header at offset 0x200: checksum is {stored:#010x}, expected \
             {expected:#010x}"
        )],
    )
}

fn dynamic_header_bat_too_small(s: &Sandbox) -> (&'static str, Vec<String>) {
    let name = written_dynamic(s);
    let path = s.file(name);
    write_at(&path, DYN_HEADER + 28, &2u32.to_be_bytes());
    let sum = expected_header_checksum(s, name);
    write_at(&path, DYN_HEADER + DYN_CHECKSUM, &sum.to_be_bytes());
    (
        name,
        vec!["ERROR dynamic header at offset 0x200: BAT has 2 entries, the disk needs 33".into()],
    )
}

/// More BAT entries than qemu allocates a table for: qemu-img cannot open
/// the disk (`Max Table Entries too large (1073741825)`), and plain
/// `check` says so as qemu-img does.
fn dynamic_header_bat_too_large(s: &Sandbox) -> (&'static str, Vec<String>) {
    let name = written_dynamic(s);
    let path = s.file(name);
    write_at(&path, DYN_HEADER + 28, &1_073_741_825u32.to_be_bytes());
    let sum = expected_header_checksum(s, name);
    write_at(&path, DYN_HEADER + DYN_CHECKSUM, &sum.to_be_bytes());
    let q = s.qemu(&["check", "-f", "vpc", name]);
    s.t.assert_same(
        "qemu-img check stderr",
        &format!("qemu-img: Could not open '{name}': Max Table Entries too large (1073741825)\n"),
        &q.stderr,
    );
    (
        name,
        vec!["ERROR dynamic header at offset 0x200: 1073741825 BAT entries exceed the maximum of \
              536870911"
            .into()],
    )
}

fn bat_entry_past_the_end(s: &Sandbox) -> (&'static str, Vec<String>) {
    let name = written_dynamic(s);
    let path = s.file(name);
    let copy = file_len(&path) - FOOTER;
    write_at(&path, BAT + 4 * 5, &0x0010_0000u32.to_be_bytes());
    (
        name,
        vec![format!(
            "ERROR BAT entry 5: block at offset 0x20000000 extends past the end of the data area \
             at {copy:#x}"
        )],
    )
}

fn bat_entries_overlap(s: &Sandbox) -> (&'static str, Vec<String>) {
    let name = written_dynamic(s);
    let path = s.file(name);
    let first = be32(&path, BAT);
    // The second block's entry points half a block into the first one.
    write_at(&path, BAT + 4, &(first + 2048).to_be_bytes());
    let a = u64::from(first) * 512;
    let b = a + 2048 * 512;
    (
        name,
        vec![format!(
            "ERROR BAT entry 1: block at offset {b:#x} overlaps the block of BAT entry 0 at \
             offset {a:#x}"
        )],
    )
}

fn bat_entry_over_metadata(s: &Sandbox) -> (&'static str, Vec<String>) {
    qemu_create(s, "vpc", "", "d.vhd", "64M");
    let path = s.file("d.vhd");
    // Give the disk room for one block, then point entry 0 at the header.
    let copy = 0x800 + 2 * MIB + 512;
    let footer = read_at(&path, 0, FOOTER as usize);
    set_file_len(&path, copy);
    write_at(&path, copy, &footer);
    write_at(&path, BAT, &1u32.to_be_bytes());
    (
        "d.vhd",
        vec![
            "ERROR BAT entry 0: block at offset 0x200 overlaps the dynamic header at offset 0x200"
                .into(),
            "ERROR BAT entry 0: block at offset 0x200 overlaps the BAT at offset 0x600".into(),
        ],
    )
}

fn fixed_disk_truncated(s: &Sandbox) -> (&'static str, Vec<String>) {
    qemu_create(s, "vpc", "subformat=fixed", "f.vhd", "16M");
    let path = s.file("f.vhd");
    let footer_at = file_len(&path) - FOOTER;
    let footer = read_at(&path, footer_at, FOOTER as usize);
    // Lose the last MiB of data; the footer stays at the end.
    let data = footer_at - MIB;
    set_file_len(&path, data);
    write_at(&path, data, &footer);
    (
        "f.vhd",
        vec![format!(
            "ERROR footer at offset {data:#x}: disk size 16781312 exceeds the {data} bytes of \
             data before it"
        )],
    )
}

#[rstest]
#[case::footer_checksum(footer_checksum as Damage)]
#[case::footer_copy_differs(footer_copy_differs as Damage)]
#[case::footer_copy_lost_to_truncation(footer_copy_lost_to_truncation as Damage)]
#[case::footer_disk_type(footer_disk_type as Damage)]
#[case::first_footer_cookie(first_footer_cookie as Damage)]
#[case::dynamic_header_cookie(dynamic_header_cookie as Damage)]
#[case::dynamic_header_checksum(dynamic_header_checksum as Damage)]
#[case::dynamic_header_bat_too_small(dynamic_header_bat_too_small as Damage)]
#[case::dynamic_header_bat_too_large(dynamic_header_bat_too_large as Damage)]
#[case::bat_entry_past_the_end(bat_entry_past_the_end as Damage)]
#[case::bat_entries_overlap(bat_entries_overlap as Damage)]
#[case::bat_entry_over_metadata(bat_entry_over_metadata as Damage)]
#[case::fixed_disk_truncated(fixed_disk_truncated as Damage)]
fn damaged(#[case] damage: Damage, #[values(DEEP, PLAIN)] mode: Mode) {
    let Some(s) = Sandbox::new() else { return };
    let (name, errors) = damage(&s);
    match mode {
        Mode::Deep => assert_errors(&s, name, &errors),
        Mode::Plain => {
            plain_checks(&s, name);
        }
    }
}

/// Files that are no VHD: instar refuses them as qemu-img does, with plain
/// `check` and with `check --deep` alike (the deep check opens the disk
/// as qemu does before it looks further).
#[rstest]
#[case::bytes("x.img", &[7u8; 4096])]
#[case::empty("empty.img", b"")]
fn not_a_vhd(#[case] name: &str, #[case] bytes: &[u8], #[values(DEEP, PLAIN)] mode: Mode) {
    let Some(s) = Sandbox::new() else { return };
    std::fs::write(s.file(name), bytes).unwrap();
    let theirs = s.qemu(&["check", "-f", "vpc", name]);
    s.t.check(theirs.code == Some(1), || format!("qemu-img check exited {:?}", theirs.code));
    let deep = ["check", "--deep", "-f", "vpc", name];
    let plain = ["check", "-f", "vpc", name];
    let mine = s.instar(if mode == Mode::Deep { &deep[..] } else { &plain[..] });
    s.t.assert_same_run("check", &theirs, &mine);
}
