//! `instar check` on damaged images: each case makes a fresh image with
//! qemu-img (the oracle), damages it byte by byte, and checks that instar
//! reports the damage exactly as `qemu-img check` does on the same file
//! (qcow2, vmdk, vhdx; for vhdx `info` too). qemu-img has no check for vpc:
//! there plain `check` must say so as qemu-img does, and instar's own
//! structural check, `check --deep`, must report each damage with its
//! specific message and exit code.

use crate::util::{create_args, Run, Sandbox};

mod qcow2;
mod vhdx;
mod vmdk;
mod vpc;

/// `qemu-img create -q -f <fmt> [-o <options>] <image> <size>` in the
/// sandbox; it must succeed.
pub fn qemu_create(s: &Sandbox, fmt: &str, options: &str, image: &str, size: &str) -> Run {
    s.qemu_ok(&create_args(&["-q"], fmt, options, image, size))
}

/// `qemu-img convert -f raw -O <fmt> [<flags>] [-o <options>] <raw> <image>`
/// in the sandbox: an image holding guest data. It must succeed.
pub fn qemu_convert(
    s: &Sandbox,
    fmt: &str,
    flags: &[&str],
    options: &str,
    raw: &str,
    image: &str,
) -> Run {
    let mut args = vec!["convert", "-f", "raw", "-O", fmt];
    args.extend(flags);
    if !options.is_empty() {
        args.extend(["-o", options]);
    }
    args.extend([raw, image]);
    s.qemu_ok(&args)
}

/// Runs each of `checks` with qemu-img and instar on the sandbox's image,
/// fails unless each pair agrees, and returns qemu-img's exit code of the
/// last.
pub fn compare_checks(s: &Sandbox, checks: &[&[&str]]) -> Option<i32> {
    let mut code = None;
    for args in checks {
        code = s.same(args);
    }
    code
}

/// Fails unless the image checked clean (`code` 0) before the damage.
pub fn assert_clean(s: &Sandbox, code: Option<i32>) {
    s.t.check(code == Some(0), || format!("the image must check clean, qemu-img exited {code:?}"));
}

/// Fails unless the damage was detected (`code` not 0).
pub fn assert_detected(s: &Sandbox, code: Option<i32>) {
    s.t.check(code != Some(0), || "qemu-img check found nothing: the damage does no damage".into());
}
