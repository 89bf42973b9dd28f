//! `instar check` on damaged images: each case makes a fresh image with
//! qemu-img, damages it byte by byte, and checks that instar reports the
//! damage exactly as `qemu-img check` does on the same file (qcow2, vmdk,
//! vhdx). qemu-img has no check for vpc; there each case asserts the
//! specific message and exit code of instar's own structural check.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::Command;

mod qcow2;
mod vhdx;
mod vmdk;
mod vpc;

/// The reference implementation, as found on `PATH`.
pub const QEMU_IMG: &str = "qemu-img";

/// One run of a program.
#[derive(Debug, PartialEq, Eq)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `program` with `args` in `dir`.
pub fn run(program: &str, args: &[&str], dir: &Path) -> Run {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs qemu-img to build an image; the step must succeed.
pub fn qemu_img(dir: &Path, args: &[&str]) {
    let r = run(QEMU_IMG, args, dir);
    assert_eq!(r.code, 0, "qemu-img {args:?} failed: {}{}", r.stdout, r.stderr);
}

/// qemu-img's stderr as instar prints it: the program name that prefixes
/// qemu's error reports becomes `instar`. Text that merely mentions
/// qemu-img (`Use qemu-img amend ...`) is left alone.
pub fn as_instar(stderr: &str) -> String {
    stderr
        .split_inclusive('\n')
        .map(|line| match line.strip_prefix("qemu-img: ") {
            Some(rest) => format!("instar: {rest}"),
            None => line.to_string(),
        })
        .collect()
}

/// Runs `args` with qemu-img and with instar in `dir` and asserts that
/// stdout, stderr (program name mapped) and exit code agree; returns
/// qemu-img's exit code.
pub fn assert_same_check(dir: &Path, args: &[&str]) -> i32 {
    let want = run(QEMU_IMG, args, dir);
    let got = run(env!("CARGO_BIN_EXE_instar"), args, dir);
    let context = format!(
        "{args:?}\n--- qemu-img (exit {}):\n{}{}--- instar (exit {}):\n{}{}",
        want.code, want.stdout, want.stderr, got.code, got.stdout, got.stderr
    );
    similar_asserts::assert_eq!(got.stdout, want.stdout, "stdout differs: {context}");
    similar_asserts::assert_eq!(got.stderr, as_instar(&want.stderr), "stderr differs: {context}");
    assert_eq!(got.code, want.code, "exit code differs: {context}");
    want.code
}

/// `len` bytes of `path` from `offset`, zeros past the end.
pub fn read_at(path: &Path, offset: u64, len: usize) -> Vec<u8> {
    let f = std::fs::File::open(path).unwrap();
    let mut buf = vec![0u8; len];
    let n = f.read_at(&mut buf, offset).unwrap();
    buf.truncate(n);
    buf.resize(len, 0);
    buf
}

/// Overwrites `bytes` of `path` at `offset`: the damage.
pub fn write_at(path: &Path, offset: u64, bytes: &[u8]) {
    let f = OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(bytes, offset).unwrap();
}

/// The length of `path`.
pub fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

/// Truncates or extends `path` to `len`.
pub fn set_file_len(path: &Path, len: u64) {
    OpenOptions::new().write(true).open(path).unwrap().set_len(len).unwrap();
}

/// `qemu-img create -q -f <fmt> [-o <options>] <image> <size>` in `dir`.
pub fn qemu_create(dir: &Path, fmt: &str, options: &str, image: &str, size: &str) {
    let mut args = vec!["create", "-q", "-f", fmt];
    if !options.is_empty() {
        args.extend(["-o", options]);
    }
    args.extend([image, size]);
    qemu_img(dir, &args);
}

/// `qemu-img convert -f raw -O <fmt> [<flags>] [-o <options>] <raw> <image>`
/// in `dir`: an image holding guest data.
pub fn qemu_convert(dir: &Path, fmt: &str, flags: &[&str], options: &str, raw: &str, image: &str) {
    let mut args = vec!["convert", "-f", "raw", "-O", fmt];
    args.extend(flags);
    if !options.is_empty() {
        args.extend(["-o", options]);
    }
    args.extend([raw, image]);
    qemu_img(dir, &args);
}
