//! `instar compare` against `qemu-img compare` (issue 13): one named test
//! per case and qemu-img version, `compare::<case>::version_N___X_Y_Z__`.
//!
//! Each case makes its images in a sandbox with the oracle (qemu-img 10.0.2
//! and qemu-io, or plain file writes for raw images), then runs the same
//! `compare` command line with qemu-img V and with instar speaking as V:
//! stdout, stderr and the exit code must be the same, the program name
//! aside (usage errors name the program as invoked). The images are
//! checksummed around instar's run: compare never writes.

use crate::lived_in::qemu_io;
use crate::util::{instar, qemu_or_skip, Run, Sandbox};
use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;

/// 1 MiB.
const MIB: u64 = 1 << 20;

/// A raw image `name` of `size` bytes (a sparse file), with `writes` (an
/// offset and the bytes there) in it.
fn raw(s: &Sandbox, name: &str, size: u64, writes: &[(u64, &[u8])]) {
    let file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(s.file(name))
        .expect("a raw image");
    file.set_len(size).expect("its size");
    for (offset, bytes) in writes {
        file.write_all_at(bytes, *offset).expect("its data");
    }
}

/// 70000 bytes of `x` at offset 0: data over a sector and a 64 KiB
/// cluster boundary.
const HEAD: (u64, &[u8]) = (0, &[b'x'; 70_000]);

/// `qemu-img convert -O fmt [options] src dst` with the oracle.
fn convert(s: &Sandbox, fmt: &str, options: &[&str], src: &str, dst: &str) {
    let mut args = vec!["convert", "-O", fmt];
    args.extend_from_slice(options);
    args.extend_from_slice(&[src, dst]);
    s.qemu_ok(&args);
}

/// The text with the program name as instar prints it: a usage error names
/// the program as invoked (a path to qemu-img, or to instar), everything
/// else `qemu-img:` where instar says `instar:`.
fn named(text: &str, program: &str) -> String {
    let text = text.replace(program, "instar");
    let mut out = String::new();
    let mut rest = text.as_str();
    while let Some(at) = rest.find("qemu-img") {
        let before = &rest[..at];
        // A path ending in `/qemu-img` (a wrapper may run the binary
        // under another path than the one it was called by).
        let start = before.rfind(|c: char| c.is_whitespace() || c == '\'').map_or(0, |p| p + 1);
        out.push_str(if before[start..].is_empty() || before[start..].ends_with('/') {
            &before[..start]
        } else {
            before
        });
        out.push_str("instar");
        rest = &rest[at + "qemu-img".len()..];
    }
    out.push_str(rest);
    out
}

/// A checksum of every file in the sandbox.
fn checksums(s: &Sandbox) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(s.path())
        .expect("the sandbox")
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|k| k.is_file()))
        .map(|e| {
            let bytes = std::fs::read(e.path()).unwrap_or_default();
            (e.file_name().to_string_lossy().into_owned(), bytes)
        })
        .collect();
    files.sort();
    files
}

/// Runs `compare args` with qemu-img `version` and instar as `version` in
/// the sandbox; fails unless they print and exit alike and instar left
/// every file as it was.
fn same(s: &Sandbox, version: &str, args: &[&str]) {
    let Some(qemu) = qemu_or_skip(version) else { return };
    let mut argv = vec!["compare"];
    argv.extend_from_slice(args);
    let theirs = s.t.run(&qemu.path, &argv, s.path());
    let before = checksums(s);
    let mine = s.t.run_env(instar(), &argv, s.path(), &[("INSTAR_QEMU_VERSION", version)]);
    s.t.check(checksums(s) == before, || format!("instar {} changed a file", argv.join(" ")));
    let what = format!("{} as {version} (qemu-img left, instar right)", argv.join(" "));
    let text =
        |run: &Run, program: &str| (named(&run.stdout, program), named(&run.stderr, program));
    let (their_out, their_err) = text(&theirs, &qemu.path.display().to_string());
    let (my_out, my_err) = text(&mine, &instar().display().to_string());
    s.t.assert_same(&format!("{what}: stdout"), &their_out, &my_out);
    s.t.assert_same(&format!("{what}: stderr"), &their_err, &my_err);
    s.t.check(theirs.code == mine.code, || {
        format!("{what}: exit codes differ: {:?} and {:?}", theirs.code, mine.code)
    });
}

/// One test per case and version: `cases! { name(s) { setup } => [args]; }`
/// makes `fn name` over the six versions; `setup` runs in the sandbox `s`.
macro_rules! cases {
    ($($name:ident($s:ident) $setup:block => [$($arg:expr),* $(,)?];)*) => {
        $(
            #[rstest::rstest]
            fn $name(
                #[values("5.2.0", "7.2.18", "7.2.22", "10.0.2", "10.0.13", "11.1.3")]
                version: &str,
            ) {
                let Some($s) = Sandbox::new() else { return };
                let () = $setup;
                same(&$s, version, &[$($arg),*]);
            }
        )*
    };
}

// Raw images: the verdicts, the offsets, the tails.
cases! {
    identical(s) {
        raw(&s, "a.raw", MIB, &[HEAD]);
        raw(&s, "b.raw", MIB, &[HEAD]);
    } => ["a.raw", "b.raw"];
    identical_written_zeros_and_holes(s) {
        raw(&s, "a.raw", MIB, &[HEAD]);
        raw(&s, "b.raw", MIB, &[HEAD, (200_000, &[0; 300_000])]);
    } => ["a.raw", "b.raw"];
    mismatch_first_byte(s) {
        raw(&s, "a.raw", MIB, &[HEAD]);
        raw(&s, "b.raw", MIB, &[HEAD, (0, b"y")]);
    } => ["a.raw", "b.raw"];
    mismatch_mid_sector(s) {
        raw(&s, "a.raw", MIB, &[HEAD]);
        raw(&s, "b.raw", MIB, &[HEAD, (1000, b"y")]);
    } => ["a.raw", "b.raw"];
    mismatch_in_a_hole(s) {
        raw(&s, "a.raw", MIB, &[HEAD]);
        raw(&s, "b.raw", MIB, &[HEAD, (300_001, b"y")]);
    } => ["a.raw", "b.raw"];
    mismatch_in_a_hole_of_the_first(s) {
        raw(&s, "a.raw", MIB, &[HEAD]);
        raw(&s, "b.raw", MIB, &[HEAD, (300_001, b"y")]);
    } => ["b.raw", "a.raw"];
    mismatch_last_byte(s) {
        raw(&s, "a.raw", MIB, &[HEAD]);
        raw(&s, "b.raw", MIB, &[HEAD, (MIB - 1, b"y")]);
    } => ["a.raw", "b.raw"];
    mismatch_last_cluster(s) {
        raw(&s, "a.raw", MIB, &[HEAD, (MIB - 65_536, &[b'a'; 65_536])]);
        raw(&s, "b.raw", MIB, &[HEAD, (MIB - 65_536, &[b'b'; 65_536])]);
    } => ["a.raw", "b.raw"];
    mismatch_past_the_first_buffer(s) {
        raw(&s, "a.raw", 8 * MIB, &[(0, &[b'x'; 5 << 20])]);
        raw(&s, "b.raw", 8 * MIB, &[(0, &[b'x'; 5 << 20]), ((4 << 20) + 777, b"y")]);
    } => ["a.raw", "b.raw"];
    size_not_a_sector_multiple(s) {
        raw(&s, "a.raw", 1000, &[(0, &[b'x'; 700])]);
        raw(&s, "b.raw", 1000, &[(0, &[b'x'; 700]), (999, b"q")]);
    } => ["a.raw", "b.raw"];
    empty_images(s) {
        raw(&s, "a.raw", 0, &[]);
        raw(&s, "b.raw", 0, &[]);
    } => ["a.raw", "b.raw"];
    empty_against_data(s) {
        raw(&s, "a.raw", 0, &[]);
        raw(&s, "b.raw", MIB, &[HEAD]);
    } => ["a.raw", "b.raw"];
    larger_second_zero_tail(s) {
        raw(&s, "a.raw", MIB, &[HEAD]);
        raw(&s, "b.raw", 2 * MIB, &[HEAD]);
    } => ["a.raw", "b.raw"];
    larger_first_zero_tail(s) {
        raw(&s, "a.raw", 2 * MIB, &[HEAD, (MIB + 4096, &[0; 4096])]);
        raw(&s, "b.raw", MIB, &[HEAD]);
    } => ["a.raw", "b.raw"];
    larger_first_data_tail(s) {
        raw(&s, "a.raw", 2 * MIB, &[HEAD, (2 * MIB - 3, b"z")]);
        raw(&s, "b.raw", MIB, &[HEAD]);
    } => ["a.raw", "b.raw"];
    larger_second_data_tail(s) {
        raw(&s, "a.raw", MIB, &[HEAD]);
        raw(&s, "b.raw", 3 * MIB + 512, &[HEAD, (MIB + 1300, b"z")]);
    } => ["a.raw", "b.raw"];
    tail_mismatch_quiet(s) {
        raw(&s, "a.raw", MIB, &[HEAD]);
        raw(&s, "b.raw", 2 * MIB, &[HEAD, (MIB + 1300, b"z")]);
    } => ["-q", "a.raw", "b.raw"];
    strict_identical(s) {
        raw(&s, "a.raw", MIB, &[HEAD]);
        raw(&s, "b.raw", MIB, &[HEAD]);
    } => ["-s", "a.raw", "b.raw"];
    strict_size_mismatch(s) {
        raw(&s, "a.raw", MIB, &[HEAD]);
        raw(&s, "b.raw", 2 * MIB, &[HEAD]);
    } => ["-s", "a.raw", "b.raw"];
    strict_hole_against_written_zeros(s) {
        raw(&s, "a.raw", MIB, &[HEAD]);
        raw(&s, "b.raw", MIB, &[HEAD, (200_704, &[0; 300_000])]);
    } => ["-s", "a.raw", "b.raw"];
    strict_mismatch_quiet(s) {
        raw(&s, "a.raw", MIB, &[HEAD]);
        raw(&s, "b.raw", 2 * MIB, &[HEAD]);
    } => ["-s", "-q", "a.raw", "b.raw"];
    quiet_identical(s) {
        raw(&s, "a.raw", MIB, &[HEAD]);
        raw(&s, "b.raw", MIB, &[HEAD]);
    } => ["-q", "a.raw", "b.raw"];
    quiet_mismatch(s) {
        raw(&s, "a.raw", MIB, &[HEAD]);
        raw(&s, "b.raw", MIB, &[HEAD, (1000, b"y")]);
    } => ["-q", "a.raw", "b.raw"];
    progress_identical(s) {
        raw(&s, "a.raw", 16 * MIB, &[(0, &[b'x'; 5 << 20])]);
        raw(&s, "b.raw", 16 * MIB, &[(0, &[b'x'; 5 << 20])]);
    } => ["-p", "a.raw", "b.raw"];
    progress_size_mismatch(s) {
        raw(&s, "a.raw", 16 * MIB, &[(0, &[b'x'; 5 << 20]), (9 * MIB, b"9")]);
        raw(&s, "b.raw", 7 * MIB, &[(0, &[b'x'; 5 << 20])]);
    } => ["-p", "a.raw", "b.raw"];
    progress_mismatch(s) {
        raw(&s, "a.raw", 16 * MIB, &[(0, &[b'x'; 5 << 20])]);
        raw(&s, "b.raw", 16 * MIB, &[(0, &[b'x'; 5 << 20]), (3 * MIB, b"y")]);
    } => ["-p", "a.raw", "b.raw"];
    progress_quiet(s) {
        raw(&s, "a.raw", MIB, &[HEAD]);
        raw(&s, "b.raw", MIB, &[HEAD]);
    } => ["-p", "-q", "a.raw", "b.raw"];
    progress_open_failure(s) {
        raw(&s, "a.raw", MIB, &[HEAD]);
    } => ["-p", "a.raw", "missing.raw"];
    with_formats(s) {
        raw(&s, "a.raw", MIB, &[HEAD]);
        raw(&s, "b.raw", MIB, &[HEAD]);
    } => ["-f", "raw", "-F", "raw", "a.raw", "b.raw"];
    image_opts(s) {
        raw(&s, "a.raw", MIB, &[HEAD]);
        raw(&s, "b.raw", MIB, &[HEAD, (5000, b"y")]);
    } => ["--image-opts", "driver=raw,file.filename=a.raw", "driver=raw,file.driver=file,file.filename=b.raw"];
    force_share_and_cache(s) {
        raw(&s, "a.raw", MIB, &[HEAD]);
        raw(&s, "b.raw", MIB, &[HEAD]);
    } => ["-U", "-T", "writeback", "a.raw", "b.raw"];
}

// Failures: open, formats, arguments.
cases! {
    missing_first(s) {
        raw(&s, "b.raw", MIB, &[HEAD]);
    } => ["missing.raw", "b.raw"];
    missing_second(s) {
        raw(&s, "a.raw", MIB, &[HEAD]);
    } => ["a.raw", "missing.raw"];
    missing_both(s) {} => ["one.raw", "two.raw"];
    wrong_first_format(s) {
        raw(&s, "a.raw", MIB, &[HEAD]);
        raw(&s, "b.raw", MIB, &[HEAD]);
    } => ["-f", "qcow2", "a.raw", "b.raw"];
    unknown_second_format(s) {
        raw(&s, "a.raw", MIB, &[HEAD]);
        raw(&s, "b.raw", MIB, &[HEAD]);
    } => ["-F", "foo", "a.raw", "b.raw"];
    image_opts_with_format(s) {
        raw(&s, "a.raw", MIB, &[HEAD]);
    } => ["--image-opts", "-f", "raw", "driver=raw,file.filename=a.raw", "a.raw"];
    image_opts_with_second_format(s) {
        raw(&s, "a.raw", MIB, &[HEAD]);
    } => ["--image-opts", "-F", "raw", "driver=raw,file.filename=a.raw", "a.raw"];
    invalid_cache(s) {
        raw(&s, "a.raw", MIB, &[HEAD]);
    } => ["-T", "bad", "a.raw", "a.raw"];
    one_file_name(s) {
        raw(&s, "a.raw", MIB, &[HEAD]);
    } => ["a.raw"];
    three_file_names(s) {
        raw(&s, "a.raw", MIB, &[HEAD]);
    } => ["a.raw", "a.raw", "a.raw"];
    unknown_option(s) {} => ["-Z", "a.raw", "b.raw"];
    missing_option_value(s) {} => ["a.raw", "b.raw", "-f"];
    ambiguous_long_option(s) {} => ["--=x", "a.raw", "b.raw"];
    long_names(s) {
        raw(&s, "a.raw", MIB, &[HEAD]);
        raw(&s, "b.raw", MIB, &[HEAD]);
    } => ["--a-format", "raw", "--b-format=raw", "--strict", "--quiet", "a.raw", "b.raw"];
    left_and_right_format(s) {
        raw(&s, "a.raw", MIB, &[HEAD]);
        raw(&s, "b.raw", MIB, &[HEAD]);
    } => ["--left-format", "qcow2", "--right-format", "raw", "a.raw", "b.raw"];
    abbreviated_strict(s) {
        raw(&s, "a.raw", MIB, &[HEAD]);
        raw(&s, "b.raw", 2 * MIB, &[HEAD]);
    } => ["--str", "a.raw", "b.raw"];
    bad_object(s) {
        raw(&s, "a.raw", MIB, &[HEAD]);
    } => ["--object", "foo", "a.raw", "a.raw"];
    bad_object_and_one_file(s) {
        raw(&s, "a.raw", MIB, &[HEAD]);
    } => ["--object", "foo", "a.raw"];
    duplicate_object_id(s) {
        raw(&s, "a.raw", MIB, &[HEAD]);
    } => ["--object", "secret,id=x,data=1", "--object", "secret,id=x,data=2", "a.raw", "a.raw"];
    object_made_late_fails(s) {
        raw(&s, "a.raw", MIB, &[HEAD]);
    } => ["--object", "secret,id=x", "a.raw", "a.raw"];
    secret_object(s) {
        raw(&s, "a.raw", MIB, &[HEAD]);
    } => ["--object", "secret,id=s0,data=x", "a.raw", "a.raw"];
}

/// `base.raw`: 4 MiB with data at the start, in the middle and in the
/// last 4 KiB, the source the other formats are converted from.
fn base(s: &Sandbox) {
    raw(
        s,
        "base.raw",
        4 * MIB,
        &[HEAD, (MIB + 512, &[b'm'; 3000]), (4 * MIB - 4096, &[b'e'; 4096])],
    );
}

// Other formats: the same data in each (converted by the oracle), chains.
cases! {
    qcow2_against_raw(s) {
        base(&s);
        convert(&s, "qcow2", &[], "base.raw", "a.qcow2");
    } => ["a.qcow2", "base.raw"];
    raw_against_qcow2_strict(s) {
        base(&s);
        convert(&s, "qcow2", &[], "base.raw", "a.qcow2");
    } => ["-s", "base.raw", "a.qcow2"];
    qcow2_against_qcow2_last_cluster(s) {
        base(&s);
        convert(&s, "qcow2", &[], "base.raw", "a.qcow2");
        convert(&s, "qcow2", &[], "base.raw", "b.qcow2");
        qemu_io(&s, &["-f", "qcow2", "-c", "write -P 0x61 4190208 1", "b.qcow2"]);
    } => ["a.qcow2", "b.qcow2"];
    qcow2_compressed_against_raw(s) {
        base(&s);
        convert(&s, "qcow2", &["-c"], "base.raw", "a.qcow2");
    } => ["a.qcow2", "base.raw"];
    qcow2_zero_clusters_against_raw(s) {
        base(&s);
        convert(&s, "qcow2", &[], "base.raw", "a.qcow2");
        qemu_io(&s, &["-f", "qcow2", "-c", "write -z 0 65536", "a.qcow2"]);
    } => ["a.qcow2", "base.raw"];
    vmdk_against_vhdx(s) {
        base(&s);
        convert(&s, "vmdk", &[], "base.raw", "a.vmdk");
        convert(&s, "vhdx", &[], "base.raw", "b.vhdx");
    } => ["a.vmdk", "b.vhdx"];
    vmdk_against_vhdx_strict(s) {
        base(&s);
        convert(&s, "vmdk", &[], "base.raw", "a.vmdk");
        convert(&s, "vhdx", &[], "base.raw", "b.vhdx");
    } => ["-s", "a.vmdk", "b.vhdx"];
    vpc_against_qcow2(s) {
        base(&s);
        convert(&s, "vpc", &[], "base.raw", "a.vpc");
        convert(&s, "qcow2", &[], "base.raw", "b.qcow2");
    } => ["a.vpc", "b.qcow2"];
    vpc_against_raw_size_mismatch(s) {
        base(&s);
        convert(&s, "vpc", &[], "base.raw", "a.vpc");
    } => ["-f", "vpc", "a.vpc", "base.raw"];
    overlay_against_flattened(s) {
        base(&s);
        s.qemu_ok(&["create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", "over.qcow2"]);
        qemu_io(&s, &["-f", "qcow2", "-c", "write -P 0x6f 65536 4096", "over.qcow2"]);
        convert(&s, "raw", &[], "over.qcow2", "flat.raw");
    } => ["over.qcow2", "flat.raw"];
    overlay_against_its_base(s) {
        base(&s);
        s.qemu_ok(&["create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", "over.qcow2"]);
        qemu_io(&s, &["-f", "qcow2", "-c", "write -P 0x6f 65536 4096", "over.qcow2"]);
    } => ["over.qcow2", "base.raw"];
    overlay_larger_than_its_base(s) {
        base(&s);
        s.qemu_ok(&["create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", "over.qcow2", "8M"]);
        convert(&s, "raw", &[], "over.qcow2", "flat.raw");
    } => ["-s", "over.qcow2", "flat.raw"];
    unchanged_overlay_against_its_base(s) {
        base(&s);
        s.qemu_ok(&["create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", "over.qcow2"]);
    } => ["over.qcow2", "base.raw"];
}
