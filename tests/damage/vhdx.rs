//! Damaged VHDX images: `instar check` must report exactly what
//! `qemu-img check` reports (stdout, stderr with the program name
//! substituted, exit code), and neither may call the image clean.
//!
//! Each test creates a clean image with qemu-img, damages one structure,
//! and runs both tools on the same file, in human and JSON output.
//! `vhdx_clean_images_check_clean` shows that undamaged images, qemu-img's
//! and instar's, check clean with both.

use super::as_instar;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const MIB: u64 = 1 << 20;

/// Where the BAT of a default 64 MiB image starts (after a 1 MiB log).
const BAT_OFFSET: u64 = 2 * MIB;
/// Where its metadata region starts (after a 1 MiB BAT).
const METADATA_OFFSET: u64 = 3 * MIB;
/// BAT entry state: the block is present at the entry's offset.
const FULLY_PRESENT: u64 = 6;

fn qemu_img() -> Option<PathBuf> {
    let p = std::env::var_os("QEMU_IMG").map(PathBuf::from).unwrap_or("/usr/bin/qemu-img".into());
    if p.exists() {
        Some(p)
    } else {
        eprintln!("skipped: qemu-img is not installed at {}", p.display());
        None
    }
}

struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(program: &Path, args: &[&str], dir: &Path) -> Outcome {
    let out = Command::new(program).args(args).current_dir(dir).output().expect("runs");
    Outcome {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A clean image made by qemu-img, in a fresh directory; `None` when
/// qemu-img is not installed.
fn clean_image(args: &[&str]) -> Option<(tempfile::TempDir, PathBuf)> {
    let qemu = qemu_img()?;
    let dir = tempfile::tempdir().unwrap();
    let mut create = vec!["create", "-q", "-f", "vhdx"];
    create.extend_from_slice(args);
    let r = run(&qemu, &create, dir.path());
    assert_eq!(r.code, 0, "qemu-img create {args:?}: {}", r.stderr);
    let path = dir.path().join(args[args.len() - 2]);
    Some((dir, path))
}

fn poke(path: &Path, offset: u64, bytes: &[u8]) {
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(bytes, offset).unwrap();
}

/// Runs `check` with both tools on the image and compares them; returns
/// instar's exit codes.
fn check_both(dir: &Path, name: &str) -> Vec<i32> {
    let Some(qemu) = qemu_img() else { return Vec::new() };
    let instar = Path::new(env!("CARGO_BIN_EXE_instar"));
    let mut codes = Vec::new();
    for output in ["--output=human", "--output=json"] {
        let args = ["check", output, name];
        let theirs = run(&qemu, &args, dir);
        let ours = run(instar, &args, dir);
        let ctx = format!(
            "check {output} {name}\n--- qemu-img ({}):\n{}{}--- instar ({}):\n{}{}",
            theirs.code, theirs.stdout, theirs.stderr, ours.code, ours.stdout, ours.stderr
        );
        assert_eq!(ours.stdout, theirs.stdout, "stdout differs: {ctx}");
        assert_eq!(ours.stderr, as_instar(&theirs.stderr), "stderr differs: {ctx}");
        assert_eq!(ours.code, theirs.code, "exit code differs: {ctx}");
        codes.push(ours.code);
    }
    codes
}

/// Runs `check` with both tools on the damaged image, compares them, and
/// requires that the damage was noticed.
fn assert_check_matches_qemu(dir: &Path, name: &str) {
    for code in check_both(dir, name) {
        assert_ne!(code, 0, "the damage to {name} went unnoticed");
    }
}

/// Undamaged images check clean with both tools: qemu-img's, and
/// instar's own (dynamic and fixed).
#[test]
fn vhdx_clean_images_check_clean() {
    let Some((dir, _)) = clean_image(&["q.vhdx", "64M"]) else { return };
    let instar = Path::new(env!("CARGO_BIN_EXE_instar"));
    for (opts, name) in [("subformat=dynamic", "i.vhdx"), ("subformat=fixed", "f.vhdx")] {
        let r = run(instar, &["create", "-q", "-f", "vhdx", "-o", opts, name, "64M"], dir.path());
        assert_eq!(r.code, 0, "instar create: {}", r.stderr);
    }
    for name in ["q.vhdx", "i.vhdx", "f.vhdx"] {
        assert_eq!(check_both(dir.path(), name), vec![0, 0], "{name}");
    }
}

/// A BAT entry marks block 0 present far beyond the end of the file
/// (a truncated image): one corruption, exit 2.
#[test]
fn vhdx_bat_entry_past_end_of_file() {
    let Some((dir, path)) = clean_image(&["d.vhdx", "64M"]) else { return };
    poke(&path, BAT_OFFSET, &((1u64 << 40) | FULLY_PRESENT).to_le_bytes());
    assert_check_matches_qemu(dir.path(), "d.vhdx");
}

/// A BAT entry puts block 1 on top of the metadata region, and its end
/// past the end of the file: two corruptions, exit 2.
#[test]
fn vhdx_bat_entry_overlaps_metadata() {
    let Some((dir, path)) = clean_image(&["d.vhdx", "64M"]) else { return };
    poke(&path, BAT_OFFSET + 8, &(METADATA_OFFSET | FULLY_PRESENT).to_le_bytes());
    assert_check_matches_qemu(dir.path(), "d.vhdx");
}

/// A BAT entry whose offset overflows: corruptions, exit 2.
#[test]
fn vhdx_bat_entry_offset_overflow() {
    let Some((dir, path)) = clean_image(&["d.vhdx", "64M"]) else { return };
    poke(&path, BAT_OFFSET, &(0xFFFF_FFFF_FFF0_0000u64 | FULLY_PRESENT).to_le_bytes());
    assert_check_matches_qemu(dir.path(), "d.vhdx");
}

/// A fixed image cut short: the blocks past the new end are reported,
/// the last one as partly missing.
#[test]
fn vhdx_fixed_image_truncated() {
    let opts = "subformat=fixed,block_state_zero=off,block_size=1M";
    let Some((dir, path)) = clean_image(&["-o", opts, "f.vhdx", "16M"]) else { return };
    let len = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len - 5 * MIB - 100)
        .unwrap();
    assert_check_matches_qemu(dir.path(), "f.vhdx");
}

/// Both headers fail their CRC-32C: the image does not open, exit 1.
#[test]
fn vhdx_both_headers_corrupt() {
    let Some((dir, path)) = clean_image(&["d.vhdx", "64M"]) else { return };
    poke(&path, 0x10000 + 100, &[1]);
    poke(&path, 0x20000 + 100, &[1]);
    assert_check_matches_qemu(dir.path(), "d.vhdx");
}

/// The region table fails its CRC-32C (qemu does not fall back to the
/// copy): the image does not open, exit 1.
#[test]
fn vhdx_region_table_corrupt() {
    let Some((dir, path)) = clean_image(&["d.vhdx", "64M"]) else { return };
    poke(&path, 0x30000 + 100, &[1]);
    assert_check_matches_qemu(dir.path(), "d.vhdx");
}

/// The metadata table loses its signature: the image does not open.
#[test]
fn vhdx_metadata_signature_damaged() {
    let Some((dir, path)) = clean_image(&["d.vhdx", "64M"]) else { return };
    poke(&path, METADATA_OFFSET, b"METADATA");
    assert_check_matches_qemu(dir.path(), "d.vhdx");
}

/// A required metadata item is missing (the entry count drops to 4): qemu
/// refuses the image as unsupported.
#[test]
fn vhdx_required_metadata_item_missing() {
    let Some((dir, path)) = clean_image(&["d.vhdx", "64M"]) else { return };
    poke(&path, METADATA_OFFSET + 10, &4u16.to_le_bytes());
    assert_check_matches_qemu(dir.path(), "d.vhdx");
}

/// The block size item says 3 MiB, not a power of two.
#[test]
fn vhdx_block_size_not_power_of_two() {
    let Some((dir, path)) = clean_image(&["d.vhdx", "64M"]) else { return };
    poke(&path, METADATA_OFFSET + 0x10000, &(3 * MIB as u32).to_le_bytes());
    assert_check_matches_qemu(dir.path(), "d.vhdx");
}
