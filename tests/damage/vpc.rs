//! `instar check` on VHDs. qemu-img has no check for vpc, so there is no
//! reference output: instar's messages follow qemu's style for the other
//! formats (one `ERROR ...` line on stderr per problem, the summary on
//! stdout, exit 2 on corruption) and are listed in `crates/vpc/src/check.rs`.
//! Each damaged image below gets exactly its message; every image qemu-img
//! or instar creates (and qemu-img then writes into) checks clean.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::{Command, Output};

const MIB: u64 = 1 << 20;
const FOOTER: u64 = 512;
const CHECKSUM: u64 = 64;

/// What qemu's checks print on stdout for `n` corruptions.
fn corrupt_summary(n: usize) -> String {
    format!(
        "\n{n} errors were found on the image.\n\
         Data may be corrupted, or further writes to the image may corrupt it.\n"
    )
}

const CLEAN: &str = "No errors were found on the image.\n";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn show(what: &str, dir: &Path, out: Output) -> Run {
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    eprintln!(
        "$ {what}  (in {})\nexit {}\nstdout:\n{}stderr:\n{}",
        dir.display(),
        run.code,
        run.stdout,
        run.stderr
    );
    run
}

fn instar(dir: &Path, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_instar"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run instar");
    show(&format!("instar {}", args.join(" ")), dir, out)
}

fn qemu_img(dir: &Path, args: &[&str]) -> Run {
    let out = Command::new("qemu-img")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run qemu-img (qemu-img 10.0.2 is required)");
    show(&format!("qemu-img {}", args.join(" ")), dir, out)
}

/// Creates `name` in `dir` with qemu-img.
fn qemu_create(dir: &Path, name: &str, opts: &str, size: &str) {
    let mut args = vec!["create", "-q", "-f", "vpc"];
    if !opts.is_empty() {
        args.extend(["-o", opts]);
    }
    args.extend([name, size]);
    assert_eq!(qemu_img(dir, &args).code, 0);
}

/// Writes data into the first two blocks of `name` through qemu-img.
fn qemu_write_two_blocks(dir: &Path, name: &str) {
    let raw = dir.join("data.raw");
    let f = File::create(&raw).unwrap();
    f.write_all_at(&[0xA5; 4096], 0).unwrap();
    f.write_all_at(&[0x5A; 4096], 2 * MIB + 4096).unwrap();
    drop(f);
    // One coroutine, so that the blocks are allocated in order.
    let args = [
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
    ];
    assert_eq!(qemu_img(dir, &args).code, 0);
}

fn len(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

fn read(path: &Path, at: u64, n: usize) -> Vec<u8> {
    let mut b = vec![0u8; n];
    File::open(path).unwrap().read_exact_at(&mut b, at).unwrap();
    b
}

fn patch(path: &Path, at: u64, bytes: &[u8]) {
    std::fs::OpenOptions::new().write(true).open(path).unwrap().write_all_at(bytes, at).unwrap();
}

fn be32(path: &Path, at: u64) -> u32 {
    u32::from_be_bytes(read(path, at, 4).try_into().unwrap())
}

/// The one's complement of the byte sum of the `n`-byte structure at
/// `at`, its 4-byte checksum field at `at + field` counted as zero.
fn vhd_checksum(path: &Path, at: u64, n: usize, field: u64) -> u32 {
    let mut b = read(path, at, n);
    b[field as usize..field as usize + 4].fill(0);
    !b.iter().fold(0u32, |s, &x| s.wrapping_add(u32::from(x)))
}

/// Recomputes the checksum of the footer at `at`.
fn fix_footer(path: &Path, at: u64) {
    let sum = vhd_checksum(path, at, FOOTER as usize, CHECKSUM);
    patch(path, at + CHECKSUM, &sum.to_be_bytes());
}

/// Patches both footers of a dynamic disk alike, checksums fixed.
fn patch_both_footers(path: &Path, field: u64, bytes: &[u8]) {
    let tail = len(path) - FOOTER;
    for at in [0, tail] {
        patch(path, at + field, bytes);
        fix_footer(path, at);
    }
}

fn assert_clean(dir: &Path, args: &[&str]) {
    let r = instar(dir, args);
    assert_eq!((r.code, r.stdout.as_str(), r.stderr.as_str()), (0, CLEAN, ""));
}

/// `instar check -f vpc name` finds exactly `errors`.
fn assert_errors(dir: &Path, name: &str, errors: &[String]) {
    let r = instar(dir, &["check", "-f", "vpc", name]);
    let stderr: String = errors.iter().map(|e| format!("{e}\n")).collect();
    assert_eq!(r.stderr, stderr);
    assert_eq!(r.stdout, corrupt_summary(errors.len()));
    assert_eq!(r.code, 2);
}

/// A 64M dynamic disk made by qemu-img, with data in its first two blocks.
fn written_dynamic(dir: &Path) -> &'static str {
    qemu_create(dir, "d.vhd", "", "64M");
    qemu_write_two_blocks(dir, "d.vhd");
    "d.vhd"
}

#[test]
fn clean_on_qemu_images() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    for (name, opts, size) in [
        ("d1.vhd", "", "1M"),
        ("d2.vhd", "", "1G"),
        ("d3.vhd", "force_size=on", "100G"),
        ("f1.vhd", "subformat=fixed", "16M"),
        ("f2.vhd", "subformat=fixed,force_size=on", "1G"),
    ] {
        qemu_create(dir, name, opts, size);
        assert_clean(dir, &["check", "-f", "vpc", name]);
    }
    // A dynamic disk probes as vpc without -f.
    assert_clean(dir, &["check", "d1.vhd"]);
    let r = instar(dir, &["check", "--output=json", "d2.vhd"]);
    assert_eq!(r.code, 0);
    assert_eq!(
        r.stdout,
        "{\n    \"check-errors\": 0,\n    \"filename\": \"d2.vhd\",\n    \"format\": \"vpc\"\n}\n"
    );
    // A fixed disk probes as raw, which has no check, as in qemu-img.
    let q = qemu_img(dir, &["check", "f1.vhd"]);
    let i = instar(dir, &["check", "f1.vhd"]);
    assert_eq!((i.code, i.stdout.as_str()), (q.code, q.stdout.as_str()));
    assert_eq!(i.stderr, q.stderr.replace("qemu-img:", "instar:"));
}

#[test]
fn clean_on_instar_images_and_after_qemu_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    for (name, opts) in [("d.vhd", "subformat=dynamic"), ("f.vhd", "subformat=fixed")] {
        let r = instar(dir, &["create", "-q", "-f", "vpc", "-o", opts, name, "64M"]);
        assert_eq!(r.code, 0);
        assert_clean(dir, &["check", "-f", "vpc", name]);
    }
    qemu_write_two_blocks(dir, "d.vhd");
    assert_clean(dir, &["check", "-f", "vpc", "d.vhd"]);
    let name = written_dynamic(dir);
    assert_clean(dir, &["check", "-f", "vpc", name]);
}

#[test]
fn footer_checksum() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let name = written_dynamic(dir);
    let path = dir.join(name);
    let good = be32(&path, CHECKSUM);
    let tail = len(&path) - FOOTER;
    for at in [0, tail] {
        patch(&path, at + CHECKSUM, &0x1234_5678u32.to_be_bytes());
    }
    assert_errors(
        dir,
        name,
        &[format!("ERROR footer at offset 0x0: checksum is 0x12345678, expected {good:#010x}")],
    );
}

#[test]
fn footer_copy_differs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let name = written_dynamic(dir);
    let path = dir.join(name);
    let tail = len(&path) - FOOTER;
    // A different original size in the copy, with a valid checksum.
    patch(&path, tail + 40, &[0xFF; 8]);
    fix_footer(&path, tail);
    assert_errors(
        dir,
        name,
        &[format!("ERROR footer copy at offset {tail:#x}: differs from the footer at offset 0x0")],
    );
}

#[test]
fn footer_copy_lost_to_truncation() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let name = written_dynamic(dir);
    let path = dir.join(name);
    // Cut the footer copy and half of the second block away.
    let cut = len(&path) - FOOTER - MIB;
    File::options().write(true).open(&path).unwrap().set_len(cut).unwrap();
    let copy = cut - FOOTER;
    let second = u64::from(be32(&path, 0x600 + 4)) * 512;
    assert_errors(
        dir,
        name,
        &[
            format!("ERROR footer copy at offset {copy:#x}: invalid cookie"),
            format!(
                "ERROR BAT entry 1: block at offset {second:#x} extends past the end of the data \
             area at {copy:#x}"
            ),
        ],
    );
}

#[test]
fn footer_disk_type() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let name = written_dynamic(dir);
    let path = dir.join(name);
    patch_both_footers(&path, 60, &2u32.to_be_bytes());
    assert_errors(
        dir,
        name,
        &["ERROR footer at offset 0x0: disk type is 2 (fixed), expected 3 (dynamic)".to_string()],
    );
}

#[test]
fn first_footer_cookie() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let name = written_dynamic(dir);
    let path = dir.join(name);
    patch(&path, 0, b"XXXXXXXX");
    // qemu-img cannot open the disk any more; instar's check says why.
    let q = qemu_img(dir, &["info", "-f", "vpc", name]);
    assert_eq!(q.stderr, format!("qemu-img: Could not open '{name}': invalid VPC image\n"));
    assert_errors(dir, name, &["ERROR footer at offset 0x0: invalid cookie".to_string()]);
}

#[test]
fn dynamic_header_cookie() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let name = written_dynamic(dir);
    patch(&dir.join(name), 512, b"cxspars\0");
    assert_errors(dir, name, &["ERROR dynamic header at offset 0x200: invalid cookie".to_string()]);
}

#[test]
fn dynamic_header_checksum() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let name = written_dynamic(dir);
    let path = dir.join(name);
    // A byte of the reserved field, which qemu never reads.
    patch(&path, 512 + 60, &[1]);
    let stored = be32(&path, 512 + 36);
    let expected = vhd_checksum(&path, 512, 1024, 36);
    assert_errors(dir, name, &[format!(
        "ERROR dynamic header at offset 0x200: checksum is {stored:#010x}, expected {expected:#010x}"
    )]);
}

#[test]
fn dynamic_header_bat_too_small() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let name = written_dynamic(dir);
    let path = dir.join(name);
    patch(&path, 512 + 28, &2u32.to_be_bytes());
    let sum = vhd_checksum(&path, 512, 1024, 36);
    patch(&path, 512 + 36, &sum.to_be_bytes());
    assert_errors(
        dir,
        name,
        &["ERROR dynamic header at offset 0x200: BAT has 2 entries, the disk needs 33".to_string()],
    );
}

#[test]
fn bat_entry_past_the_end() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let name = written_dynamic(dir);
    let path = dir.join(name);
    let copy = len(&path) - FOOTER;
    patch(&path, 0x600 + 4 * 5, &0x0010_0000u32.to_be_bytes());
    assert_errors(
        dir,
        name,
        &[format!(
        "ERROR BAT entry 5: block at offset 0x20000000 extends past the end of the data area at \
         {copy:#x}"
    )],
    );
}

#[test]
fn bat_entries_overlap() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let name = written_dynamic(dir);
    let path = dir.join(name);
    let first = be32(&path, 0x600);
    // The second block's entry points half a block into the first one.
    patch(&path, 0x604, &(first + 2048).to_be_bytes());
    let a = u64::from(first) * 512;
    let b = a + 2048 * 512;
    assert_errors(
        dir,
        name,
        &[format!(
        "ERROR BAT entry 1: block at offset {b:#x} overlaps the block of BAT entry 0 at offset \
         {a:#x}"
    )],
    );
}

#[test]
fn bat_entry_over_metadata() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    qemu_create(dir, "d.vhd", "", "64M");
    let path = dir.join("d.vhd");
    // Give the disk room for one block, then point entry 0 at the header.
    let copy = 0x800 + 2 * MIB + 512;
    let footer = read(&path, 0, FOOTER as usize);
    File::options().write(true).open(&path).unwrap().set_len(copy).unwrap();
    patch(&path, copy, &footer);
    patch(&path, 0x600, &1u32.to_be_bytes());
    assert_errors(
        dir,
        "d.vhd",
        &[
            "ERROR BAT entry 0: block at offset 0x200 overlaps the dynamic header at offset 0x200"
                .to_string(),
            "ERROR BAT entry 0: block at offset 0x200 overlaps the BAT at offset 0x600".to_string(),
        ],
    );
}

#[test]
fn fixed_disk_truncated() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    qemu_create(dir, "f.vhd", "subformat=fixed", "16M");
    let path = dir.join("f.vhd");
    let footer_at = len(&path) - FOOTER;
    let footer = read(&path, footer_at, FOOTER as usize);
    // Lose the last MiB of data; the footer stays at the end.
    let data = footer_at - MIB;
    File::options().write(true).open(&path).unwrap().set_len(data).unwrap();
    patch(&path, data, &footer);
    assert_errors(
        dir,
        "f.vhd",
        &[format!(
        "ERROR footer at offset {data:#x}: disk size 16781312 exceeds the {data} bytes of data \
         before it"
    )],
    );
}

#[test]
fn not_a_vhd_is_refused_as_qemu_img_refuses_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("x.img"), vec![7u8; 4096]).unwrap();
    std::fs::write(dir.join("empty.img"), b"").unwrap();
    for name in ["x.img", "empty.img"] {
        let q = qemu_img(dir, &["check", "-f", "vpc", name]);
        let i = instar(dir, &["check", "-f", "vpc", name]);
        assert_eq!((i.code, i.stdout.as_str()), (q.code, q.stdout.as_str()));
        assert_eq!(i.stderr, q.stderr.replace("qemu-img:", "instar:"));
        assert_eq!(i.code, 1);
    }
}
