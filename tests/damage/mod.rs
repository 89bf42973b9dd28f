//! `instar check` on damaged images: each case makes a fresh image with
//! qemu-img, damages it byte by byte, and checks that instar reports the
//! damage exactly as `qemu-img check` does on the same file (qcow2, vmdk,
//! vhdx). qemu-img has no check for vpc; there each case asserts the
//! specific message and exit code of instar's own structural check.

mod qcow2;
mod vhdx;
mod vmdk;
mod vpc;
