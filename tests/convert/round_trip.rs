//! Round trips: for every ordered pair (A, B) of the five formats, a raw
//! source with data, written zeros, holes and a size that is no cluster
//! multiple goes raw -> A -> B -> A through instar, and comes back with
//! the same guest data (`qemu-img compare`); on the way, instar's B is
//! qemu-img's B (from the same A file) outside the masks.

use super::file_differences;
use crate::util::{instar, oracle_or_skip, tempdir, Transcript};
use instar_matrix::recipes::{Recipe, Step};
use instar_matrix::Target;

/// The round trips' source: 1 MiB and 1 KiB of holes, data and zeros.
#[derive(Debug, Clone, Copy)]
struct Varied;

/// The source's length: 512-byte sectors, no cluster or block multiple.
const VARIED_LEN: u64 = (1 << 20) + 1024;

impl Recipe for Varied {
    fn steps(self) -> &'static [Step] {
        &[
            Step::Truncate("rt.raw", VARIED_LEN),
            Step::Io {
                format: "raw",
                file: "rt.raw",
                commands: &[
                    "write -P 0x11 0 96k",
                    "write -P 0 32k 8k",
                    "write -P 0x22 300k 3k",
                    "write -P 0 512k 64k",
                    "write -P 0x33 700k 4k",
                    "write -P 0x44 1048576 1024",
                ],
            },
        ]
    }
}

/// `raw -> a -> b -> a`; see the module's documentation.
fn round_trip(a: Target, b: Target) {
    let Some(oracle) = oracle_or_skip() else { return };
    let t = Transcript::default();
    let dir = tempdir();
    let root = dir.path();
    if let Err(e) = instar_matrix::recipes::make(oracle, Varied, root) {
        t.fail(&format!("making the source: {e}"));
    }
    let (fa, fb) = (a.format(), b.format());
    let a_file = format!("a.{}", a.extension());
    let b_file = format!("b.{}", b.extension());
    t.run_ok(instar(), &["convert", "-f", "raw", "-O", fa, "rt.raw", &a_file], root);
    let from_a = format!("../{a_file}");
    for who in ["qemu", "instar"] {
        std::fs::create_dir(root.join(who)).expect("a folder");
    }
    let args = ["convert", "-f", fa, "-O", fb, from_a.as_str(), b_file.as_str()];
    t.run_ok(&oracle.path, &args, &root.join("qemu"));
    t.run_ok(instar(), &args, &root.join("instar"));
    let mine = root.join("instar");
    for name in crate::util::files_in(&root.join("qemu")) {
        let target = if name == b_file { b } else { Target::Raw };
        if let Some(diff) =
            file_differences(target, &root.join("qemu").join(&name), &mine.join(&name))
        {
            t.fail(&format!(
                "{name}: qemu-img's {fa} -> {fb} (reference) and instar's differ:\n{diff}"
            ));
        }
    }
    let back = format!("back.{}", a.extension());
    t.run_ok(instar(), &["convert", "-f", fb, "-O", fa, &b_file, &back], &mine);
    let compared =
        t.run(&oracle.path, &["compare", "-f", "raw", "-F", fa, "../rt.raw", &back], &mine);
    t.check(compared.ok(), || {
        format!("raw -> {fa} -> {fb} -> {fa} by instar changed the guest data: {}", compared.stdout)
    });
}

/// One test per ordered pair of formats.
macro_rules! round_trips {
    ($($name:ident: $a:ident -> $b:ident;)*) => {
        $(
            #[test]
            fn $name() {
                round_trip(Target::$a, Target::$b);
            }
        )*
    };
}

round_trips! {
    raw_to_raw: Raw -> Raw;
    raw_to_qcow2: Raw -> Qcow2;
    raw_to_vmdk: Raw -> Vmdk;
    raw_to_vpc: Raw -> Vhd;
    raw_to_vhdx: Raw -> Vhdx;
    qcow2_to_raw: Qcow2 -> Raw;
    qcow2_to_qcow2: Qcow2 -> Qcow2;
    qcow2_to_vmdk: Qcow2 -> Vmdk;
    qcow2_to_vpc: Qcow2 -> Vhd;
    qcow2_to_vhdx: Qcow2 -> Vhdx;
    vmdk_to_raw: Vmdk -> Raw;
    vmdk_to_qcow2: Vmdk -> Qcow2;
    vmdk_to_vmdk: Vmdk -> Vmdk;
    vmdk_to_vpc: Vmdk -> Vhd;
    vmdk_to_vhdx: Vmdk -> Vhdx;
    vpc_to_raw: Vhd -> Raw;
    vpc_to_qcow2: Vhd -> Qcow2;
    vpc_to_vmdk: Vhd -> Vmdk;
    vpc_to_vpc: Vhd -> Vhd;
    vpc_to_vhdx: Vhd -> Vhdx;
    vhdx_to_raw: Vhdx -> Raw;
    vhdx_to_qcow2: Vhdx -> Qcow2;
    vhdx_to_vmdk: Vhdx -> Vmdk;
    vhdx_to_vpc: Vhdx -> Vhd;
    vhdx_to_vhdx: Vhdx -> Vhdx;
}
