//! `instar check` on damaged images: each case makes a fresh image with
//! qemu-img, damages it byte by byte, and checks that instar reports the
//! damage exactly as `qemu-img check` does on the same file (qcow2, vmdk,
//! vhdx). qemu-img has no check for vpc; there each case asserts the
//! specific message and exit code of instar's own structural check.

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
