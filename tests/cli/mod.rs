//! Command-line parity: for the same arguments, `instar` prints what the
//! oracle (qemu-img 10.0.2) prints (program name aside), exits with the
//! same code, and leaves the same files, accepted and refused arguments
//! alike.
//!
//! The one deliberate difference: when a create fails after qemu-img has
//! already created the file, qemu-img leaves it behind (empty); instar
//! validates first and leaves nothing. Those cases say so and assert it.
//!
//! The command line changed between qemu-img releases (usage errors,
//! option tables, size syntax, option lists; docs/compat.md §5.6): the
//! cases that print differently in some version run once per version
//! ([`by_version`]), qemu-img V against instar with
//! `INSTAR_QEMU_VERSION=V`.

mod convert;

use crate::util::{
    instar, oracle_or_skip, qemu_if_installed, shown, tempdir, unescape, Run, Sandbox, Transcript,
};
use instar_cli::QEMU_VERSION_VAR;
use instar_matrix::QemuImg;
use rstest::rstest;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStringExt;
use std::path::Path;

/// What one run printed and left behind.
struct Outcome {
    run: Run,
    /// The program run, as invoked.
    program: String,
    /// The files of the run's folder afterwards, with their bytes.
    files: Vec<(String, Vec<u8>)>,
}

impl Outcome {
    /// Its stdout or stderr, the program named `instar` wherever it names
    /// itself: usage errors name it as invoked (argv[0]), everything else
    /// by its short name. A wrapper may run qemu-img under another path
    /// (the unpacked 11.1.3 runs through its own loader, which passes the
    /// binary's path inside the tree): any path ending in `/qemu-img` is
    /// the program too.
    fn named(&self, text: &str) -> String {
        let text = text.replace(&self.program, "instar");
        let mut out = String::new();
        let mut rest = text.as_str();
        while let Some(at) = rest.find("qemu-img") {
            let before = &rest[..at];
            let start = before.rfind(|c: char| c.is_whitespace() || c == '\'').map_or(0, |p| p + 1);
            let path = &before[start..];
            out.push_str(if path.is_empty() || path.ends_with('/') {
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

    fn names(&self) -> Vec<&str> {
        self.files.iter().map(|f| f.0.as_str()).collect()
    }
}

/// Runs `setup` (qemu-img arguments, creating fixtures) then `args` with
/// `program`, in a fresh folder.
fn run<S: AsRef<OsStr>>(
    t: &Transcript,
    qemu: &QemuImg,
    program: &Path,
    setup: &[&[S]],
    args: &[S],
) -> Outcome {
    run_env(t, qemu, program, setup, args, &[])
}

/// [`run`] with `vars` in the program's environment.
fn run_env<S: AsRef<OsStr>>(
    t: &Transcript,
    qemu: &QemuImg,
    program: &Path,
    setup: &[&[S]],
    args: &[S],
    vars: &[(&str, &str)],
) -> Outcome {
    let dir = tempdir();
    for s in setup {
        t.run_ok(&qemu.path, s, dir.path());
    }
    let run = t.run_env(program, args, dir.path(), vars);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir.path())
        .expect("the run's folder")
        .map(|e| {
            let path = e.expect("a folder entry").path();
            let name = shown(path.file_name().unwrap_or_default().as_encoded_bytes());
            (name, std::fs::read(&path).unwrap_or_default())
        })
        .collect();
    files.sort();
    Outcome { run, program: program.display().to_string(), files }
}

/// qemu-img's and instar's outcomes of `setup` then `args`, or `None`
/// after skipping when the oracle is not installed.
fn compare<S: AsRef<OsStr>>(setup: &[&[S]], args: &[S]) -> Option<(Transcript, Outcome, Outcome)> {
    let qemu = oracle_or_skip()?;
    let t = Transcript::default();
    let theirs = run(&t, qemu, &qemu.path, setup, args);
    let mine = run(&t, qemu, instar(), setup, args);
    Some((t, theirs, mine))
}

/// Fails unless both printed the same, program names aside, and exited
/// alike.
fn assert_same_output(t: &Transcript, theirs: &Outcome, mine: &Outcome) {
    for (what, a, b) in [
        ("stdout", &theirs.run.stdout, &mine.run.stdout),
        ("stderr", &theirs.run.stderr, &mine.run.stderr),
    ] {
        t.assert_same(
            &format!("{what} (qemu-img left, instar right)"),
            &theirs.named(a),
            &mine.named(b),
        );
    }
    t.check(theirs.run.code == mine.run.code, || {
        format!("exit codes differ: qemu-img {:?}, instar {:?}", theirs.run.code, mine.run.code)
    });
}

/// Fails unless both printed the same, exited alike and left the same
/// files, byte for byte.
fn assert_same<S: AsRef<OsStr>>(setup: &[&[S]], args: &[S]) {
    let Some((t, theirs, mine)) = compare(setup, args) else { return };
    assert_same_output(&t, &theirs, &mine);
    t.check(theirs.names() == mine.names(), || {
        format!("files left: qemu-img {:?}, instar {:?}", theirs.names(), mine.names())
    });
    for (q, i) in theirs.files.iter().zip(&mine.files) {
        t.check(q.1 == i.1, || format!("{} differs", q.0));
    }
}

#[rstest]
#[case::size_word(&["create", "t.raw", "foobar"])]
#[case::size_negative(&["create", "t.raw", "--", "-1k"])]
#[case::size_negative_zero(&["create", "t.raw", "--", "-0"])]
#[case::size_fraction(&["create", "t.raw", "1.5G"])]
#[case::size_fraction_rounds(&["create", "t.raw", "1.6k"])]
#[case::size_fraction_no_suffix(&["create", "t.raw", "1.5"])]
#[case::size_too_big(&["create", "t.raw", "99999E"])]
#[case::size_16e(&["create", "t.raw", "16E"])]
#[case::size_bad_suffix(&["create", "t.raw", "1x"])]
#[case::size_kb(&["create", "t.raw", "1KB"])]
#[case::size_bytes_suffix(&["create", "t.raw", "1b"])]
#[case::size_hex(&["create", "t.raw", "0x10"])]
#[case::size_hex_suffix(&["create", "t.raw", "0x1k"])]
#[case::size_exponent(&["create", "t.raw", "1e3"])]
#[case::size_zero(&["create", "t.raw", "0"])]
#[case::size_unaligned(&["create", "t.raw", "1000"])]
#[case::no_size(&["create", "t.raw"])]
#[case::no_file(&["create"])]
#[case::extra(&["create", "t.raw", "1G", "extra"])]
#[case::bad_short(&["create", "-x", "t.raw", "1G"])]
#[case::bad_long(&["create", "--foo", "t.raw", "1G"])]
#[case::ambiguous_long(&["create", "--o", "x"])]
#[case::missing_arg(&["create", "-b"])]
#[case::unknown_format(&["create", "-f", "foo", "t.raw", "1G"])]
#[case::option_eats_filename(&["create", "-o", "t.raw", "1G"])]
#[case::quiet(&["create", "-q", "t.raw", "1M"])]
#[case::options_after_operands(&["create", "t.raw", "1M", "-q"])]
#[case::size_twice(&["create", "-o", "size=1M", "t.raw", "1M"])]
#[case::size_option(&["create", "-o", "size=1M", "t.raw"])]
#[case::size_option_bad(&["create", "-o", "size=foo", "t.raw"])]
#[case::size_option_range(&["create", "-o", "size=16E", "t.raw"])]
#[case::empty_list_element(&["create", "-o", ",size=1M", "t.raw"])]
#[case::trailing_comma(&["create", "-o", "size=1M,", "t.raw"])]
#[case::unknown_option(&["create", "-o", "foo=bar", "t.raw", "1M"])]
#[case::raw_backing(&["create", "-b", "x", "t.raw", "1M"])]
#[case::raw_backing_fmt(&["create", "-F", "raw", "t.raw", "1M"])]
#[case::raw_full(&["create", "-o", "preallocation=full", "t.raw", "1000"])]
#[case::raw_falloc(&["create", "-o", "preallocation=falloc", "t.raw", "1M"])]
#[case::raw_off(&["create", "-o", "preallocation=off", "t.raw", "1M"])]
#[case::raw_bad_prealloc(&["create", "-o", "preallocation=bogus", "t.raw", "1M"])]
#[case::protocol_option_order(&["create", "-o", "preallocation=off,nocow=on,extent_size_hint=0", "t.raw", "1M"])]
#[case::raw_hints(&["create", "-o", "nocow=on,extent_size_hint=1M", "t.raw", "1M"])]
#[case::raw_hint_too_large(&["create", "-o", "extent_size_hint=5T", "t.raw", "1M"])]
#[case::raw_help(&["create", "-f", "raw", "-o", "help"])]
#[case::raw_help_with_file(&["create", "-f", "raw", "-o", "help", "t.raw"])]
#[case::help_unknown_format(&["create", "-f", "foo", "-o", "help"])]
#[case::info_no_file(&["info"])]
#[case::info_two_files(&["info", "a", "b"])]
#[case::info_bad_output(&["info", "--output=xml", "x"])]
#[case::info_missing(&["info", "nonexist"])]
#[case::info_ambiguous(&["info", "--o=json", "x"])]
#[case::check_no_file(&["check"])]
#[case::check_missing(&["check", "nonexist"])]
#[case::check_bad_repair(&["check", "--re", "x"])]
#[case::check_bad_cache(&["check", "-T", "foo", "x"])]
#[case::check_bad_short(&["check", "-u", "x"])]
#[case::unknown_protocol(&["create", "a:b.raw", "1M"])]
#[case::file_protocol(&["create", "file:c.raw", "1M"])]
#[case::colon_after_slash(&["create", "./a:b.raw", "1M"])]
#[case::help_unknown_protocol(&["create", "-f", "raw", "-o", "help", "a:b"])]
#[case::info_unknown_protocol(&["info", "a:b"])]
#[case::info_file_protocol_missing(&["info", "file:nonexist"])]
#[case::flag_option(&["create", "-o", "nocow", "r.raw", "1M"])]
#[case::negated_flag(&["create", "-o", "nonocow", "r.raw", "1M"])]
#[case::later_size_wins(&["create", "-o", "size=1M,size=2M", "r.raw"])]
#[case::escaped_comma(&["create", "-o", "preallocation=full,,x", "r.raw", "1M"])]
#[case::empty_value(&["create", "-o", "preallocation=", "r.raw", "1M"])]
#[case::empty_name(&["create", "-o", "=x", "r.raw", "1M"])]
#[case::help_with_value(&["create", "-o", "help=on", "r.raw", "1M"])]
#[case::help_after_escape(&["create", "-o", "a=b,,help", "r.raw", "1M"])]
#[case::hex_size_option(&["create", "-o", "size=0x100000", "r.raw"])]
#[case::long_options(&["create", "--format=raw", "--quiet", "--options=size=1M", "r.raw"])]
#[case::question_help(&["create", "-o", "?", "r.raw"])]
#[case::info_unknown_driver_missing_file(&["info", "-f", "foo", "x"])]
#[case::check_unknown_driver_missing_file(&["check", "-f", "foo", "x"])]
#[case::no_command(&[])]
#[case::unknown_command(&["frob"])]
#[case::qcow2_refcount_bits_negative(&["create", "-f", "qcow2", "-o", "refcount_bits=-1", "t.qcow2", "1G"])]
#[case::qcow2_refcount_bits_minus_zero(&["create", "-f", "qcow2", "-o", "refcount_bits=-0", "t.qcow2", "1M"])]
#[case::qcow2_refcount_bits_huge_negative(&["create", "-f", "qcow2", "-o", "refcount_bits=-99999999999999999999", "t.qcow2", "1M"])]
#[case::qcow2_size_8e(&["create", "-f", "qcow2", "-o", "size=8E", "t.qcow2"])]
#[case::qcow2_size_9e(&["create", "-f", "qcow2", "-o", "size=9E", "t.qcow2"])]
#[case::qcow2_cluster_size_negative(&["create", "-f", "qcow2", "-o", "cluster_size=-1", "t.qcow2", "1M"])]
#[case::qcow2_hint_too_large(&["create", "-f", "qcow2", "-o", "extent_size_hint=5T", "t.qcow2", "1G"])]
#[case::qcow2_hint_too_large_before_cluster_size(&["create", "-f", "qcow2", "-o", "extent_size_hint=5T,cluster_size=3", "t.qcow2", "1G"])]
#[case::vmdk_hint_too_large(&["create", "-f", "vmdk", "-o", "extent_size_hint=5T", "t.vmdk", "1G"])]
#[case::vmdk_hint_too_large_before_backing(&["create", "-f", "vmdk", "-o", "extent_size_hint=5T,backing_file=none.vmdk", "t.vmdk", "1G"])]
#[case::vmdk_missing_dir(&["create", "-f", "vmdk", "no/t.vmdk", "1G"])]
#[case::vmdk_missing_dir_before_backing(&["create", "-f", "vmdk", "-b", "none.vmdk", "no/t.vmdk", "1G"])]
#[case::vmdk_metadata_before_backing(&["create", "-f", "vmdk", "-o", "preallocation=metadata,backing_file=none.vmdk", "t.vmdk", "1G"])]
#[case::vpc_missing_dir(&["create", "-f", "vpc", "no/t.vhd", "1M"])]
#[case::qcow2_missing_dir(&["create", "-f", "qcow2", "no/t.qcow2", "1M"])]
#[case::raw_missing_dir(&["create", "no/t.raw", "1M"])]
#[case::vpc_hint_too_large(&["create", "-f", "vpc", "-o", "extent_size_hint=5T", "t.vhd", "1G"])]
#[case::vhdx_hint_too_large(&["create", "-f", "vhdx", "-o", "extent_size_hint=5T", "t.vhdx", "1G"])]
#[case::vpc_bad_prealloc_before_subformat(&["create", "-f", "vpc", "-o", "subformat=foo,preallocation=bogus", "t.vhd", "1M"])]
#[case::vpc_missing_dir_before_subformat(&["create", "-f", "vpc", "-o", "subformat=foo", "no/t.vhd", "1M"])]
#[case::vhdx_bad_prealloc_before_block_size(&["create", "-f", "vhdx", "-o", "preallocation=x,block_size=3M", "t.vhdx", "1G"])]
#[case::vhdx_missing_dir_before_block_size(&["create", "-f", "vhdx", "-o", "block_size=3M", "no/t.vhdx", "1G"])]
#[case::info_qemu_only_format_missing_file(&["info", "-f", "vdi", "nonexist"])]
#[case::qcow2_data_file(&["create", "-f", "qcow2", "-o", "data_file=d.raw", "t.qcow2", "1M"])]
#[case::qcow2_data_file_raw(&["create", "-f", "qcow2", "-o", "data_file=d.raw,data_file_raw=on", "t.qcow2", "1M"])]
#[case::qcow2_data_file_compat_v2(&["create", "-f", "qcow2", "-o", "data_file=d.raw,compat=0.10", "t.qcow2", "1M"])]
#[case::qcow2_data_file_raw_alone(&["create", "-f", "qcow2", "-o", "data_file_raw=on", "t.qcow2", "1M"])]
#[case::qcow2_data_file_raw_backing(&["create", "-u", "-f", "qcow2", "-o", "data_file=d.raw,data_file_raw=on,backing_file=b.raw,backing_fmt=raw", "t.qcow2", "1M"])]
#[case::qcow2_data_file_empty_name(&["create", "-f", "qcow2", "-o", "data_file=", "t.qcow2", "1M"])]
#[case::qcow2_data_file_missing_dir(&["create", "-f", "qcow2", "-o", "data_file=no/d.raw", "t.qcow2", "1M"])]
#[case::qcow2_data_file_unknown_protocol(&["create", "-f", "qcow2", "-o", "data_file=a:d.raw", "t.qcow2", "1M"])]
#[case::qcow2_data_file_missing_dir_before_image_dir(&["create", "-f", "qcow2", "-o", "data_file=no/d.raw", "no/t.qcow2", "1M"])]
#[case::qcow2_data_file_missing_dir_before_compat(&["create", "-f", "qcow2", "-o", "data_file=no/d.raw,compat=0.42", "t.qcow2", "1M"])]
#[case::check_qemu_only_format_missing_file(&["check", "-f", "qcow", "nonexist"])]
fn cli_parity(#[case] args: &[&str]) {
    assert_same(&[], args);
}

/// The qemu-img versions [`by_version`] compares with: every Debian build
/// the matrix knows how to unpack. The versions of the version list
/// (`known_versions!`) must be here ([`by_version_covers_the_known_versions`]);
/// keep the `#[values]` of [`by_version`] the same list.
const CLI_VERSIONS: &[&str] = &["5.2.0", "7.2.18", "7.2.22", "10.0.2", "10.0.13", "11.1.3"];

#[test]
fn by_version_covers_the_known_versions() {
    for v in instar_matrix::KNOWN_VERSIONS {
        assert!(CLI_VERSIONS.contains(v), "{v} is in known_versions! but not in CLI_VERSIONS");
    }
}

/// Command lines that some qemu-img version prints differently, once per
/// version: qemu-img V and instar with `INSTAR_QEMU_VERSION=V` print the
/// same (program names aside) and exit alike; when qemu-img succeeds they
/// leave files of the same names, when it fails instar leaves none.
/// Arguments may carry `\xNN` escapes for bytes that are not UTF-8.
#[rstest]
// Sizes: strtod before 6.0, fixed point 6.0-8.0, parse_uint from 8.1; the
// one-line message from the rework.
#[case::size_word(&["create", "t.raw", "foobar"])]
#[case::size_negative(&["create", "t.raw", "--", "-1k"])]
#[case::size_negative_one(&["create", "t.raw", "--", "-1"])]
#[case::size_negative_zero(&["create", "t.raw", "--", "-0"])]
#[case::size_negative_zero_k(&["create", "t.raw", "--", "-0k"])]
#[case::size_negative_byte(&["create", "t.raw", "--", "-1b"])]
#[case::size_fraction_no_suffix(&["create", "t.raw", "1.5"])]
#[case::size_fraction_only(&["create", "t.raw", ".5k"])]
#[case::size_fraction_rounds_to_one(&["create", "t.raw", "1.99999999999999999999k"])]
#[case::size_bad_suffix(&["create", "t.raw", "1x"])]
#[case::size_kb(&["create", "t.raw", "1KB"])]
#[case::size_hex_suffix(&["create", "t.raw", "0x1k"])]
#[case::size_hex_suffix_16(&["create", "t.raw", "0x10k"])]
#[case::size_hex_fraction(&["create", "t.raw", "0x1.8k"])]
#[case::size_hex_exponent(&["create", "t.raw", "0x1p3"])]
#[case::size_hex_max(&["create", "t.raw", "0x7fffffffffffffff"])]
#[case::size_exponent(&["create", "t.raw", "1e3"])]
#[case::size_exponent_suffix(&["create", "t.raw", "1.5e1k"])]
#[case::size_exponent_overflow(&["create", "t.raw", "1e400"])]
#[case::size_exponent_underflow(&["create", "t.raw", "1e-400"])]
#[case::size_infinity(&["create", "t.raw", "inf"])]
#[case::size_dash(&["create", "t.raw", "--", "-"])]
#[case::size_trailing_space(&["create", "t.raw", "1k "])]
#[case::size_2_63_minus_1(&["create", "t.raw", "9223372036854775807"])]
#[case::size_rounding(&["create", "t.raw", "7.9999999E"])]
#[case::size_not_utf8(&["create", "t.raw", r"1\xff"])]
// Sizes in -o (the same reader; hex with a suffix warned twice 6.0-7.2).
#[case::option_size_negative(&["create", "-o", "size=-1", "t.raw"])]
#[case::option_size_negative_zero(&["create", "-o", "size=-0", "t.raw"])]
#[case::option_size_negative_k(&["create", "-o", "size=-1k", "t.raw"])]
#[case::option_size_exponent(&["create", "-o", "size=1e3", "t.raw"])]
#[case::option_size_exponent_overflow(&["create", "-o", "size=1e400", "t.raw"])]
#[case::option_size_hex_suffix(&["create", "-o", "size=0x1k", "t.raw"])]
#[case::option_size_hex_exponent(&["create", "-o", "size=0x1p3", "t.raw"])]
#[case::qcow2_cluster_size_negative(&["create", "-f", "qcow2", "-o", "cluster_size=-1", "t.qcow2", "1M"])]
#[case::qcow2_cluster_size_negative_zero(&["create", "-f", "qcow2", "-o", "cluster_size=-0", "t.qcow2", "1M"])]
#[case::qcow2_cluster_size_hex_suffix(&["create", "-f", "qcow2", "-o", "cluster_size=0x10k", "t.qcow2", "1M"])]
#[case::qcow2_two_hex_sizes(&["create", "-f", "qcow2", "-o", "size=0x1M,cluster_size=0x1k", "t.qcow2"])]
#[case::vmdk_hex_size(&["create", "-f", "vmdk", "-o", "size=0x1M", "t.vmdk"])]
// -o help with a value (help before 6.0).
#[case::help_with_value(&["create", "-o", "help=on", "r.raw", "1M"])]
#[case::help_off(&["create", "-o", "help=off", "r.raw", "1M"])]
#[case::help_negated(&["create", "-o", "nohelp", "r.raw", "1M"])]
#[case::help_question_with_value(&["create", "-o", "?=1", "r.raw", "1M"])]
#[case::help_with_value_no_file(&["create", "-o", "help=on"])]
#[case::help_with_value_after_size(&["create", "-o", "size=1M,help=on", "r.raw"])]
#[case::qcow2_help_with_value(&["create", "-f", "qcow2", "-o", "help=on", "t.qcow2"])]
// QAPI enums (the parameter named from 6.2).
#[case::qcow2_compat(&["create", "-f", "qcow2", "-o", "compat=0.42", "t.qcow2", "1M"])]
#[case::qcow2_preallocation(&["create", "-f", "qcow2", "-o", "preallocation=x", "t.qcow2", "1M"])]
#[case::qcow2_compression(&["create", "-f", "qcow2", "-o", "compression_type=foo", "t.qcow2", "1M"])]
#[case::qcow2_backing_fmt(&["create", "-f", "qcow2", "-b", "t0", "-F", "foo", "-u", "t.qcow2", "1M"])]
#[case::vpc_subformat(&["create", "-f", "vpc", "-o", "subformat=bogus", "t.vhd", "1M"])]
#[case::vhdx_subformat(&["create", "-f", "vhdx", "-o", "subformat=bogus", "t.vhdx", "1M"])]
// create's usage errors, getopt's messages or argv[optind - 1].
#[case::no_file(&["create"])]
#[case::extra(&["create", "t.raw", "1G", "extra"])]
#[case::bad_short(&["create", "-x", "t.raw", "1G"])]
#[case::bad_long(&["create", "--foo", "t.raw", "1G"])]
#[case::missing_arg(&["create", "-b"])]
#[case::missing_arg_at_end(&["create", "t.raw", "-f"])]
#[case::cluster_unknown_first(&["create", "-xq", "t.raw", "1M"])]
#[case::cluster_unknown_after_operand(&["create", "t.raw", "-xq", "1M"])]
#[case::cluster_unknown_last(&["create", "-qx", "t.raw", "1M"])]
#[case::cluster_missing_value(&["create", "-qb"])]
#[case::cluster_unknown_after_permutation(&["create", "a", "-q", "b", "-xq"])]
#[case::unknown_after_operands(&["create", "t.raw", "1M", "-q", "-x"])]
#[case::long_with_value(&["create", "--help=x"])]
#[case::long_missing_value(&["create", "--object"])]
#[case::long_options(&["create", "--format=raw", "--quiet", "--options=size=1M", "r.raw"])]
#[case::abbreviated_backing(&["create", "--b", "x"])]
#[case::abbreviated_backing_format(&["create", "--backing-f", "raw", "t.raw", "1M"])]
#[case::abbreviated_format(&["create", "--for", "raw", "t.raw", "1M"])]
#[case::abbreviated_options(&["create", "--opt", "size=1M", "t.raw"])]
#[case::empty_long_name(&["create", "--=x"])]
#[case::getopt_before_option_list(&["create", "-x", "-o", ","])]
#[case::getopt_before_help(&["create", "-x", "-h"])]
#[case::backing_format_b(&["create", "-B", "raw", "t.raw", "1M"])]
// info's.
#[case::info_no_file(&["info"])]
#[case::info_two_files(&["info", "a", "b"])]
#[case::info_bad_output(&["info", "--output=xml", "x"])]
#[case::info_bad_output_no_file(&["info", "--output=xml"])]
#[case::info_bad_output_two_files(&["info", "--output=xml", "a", "b"])]
#[case::info_output_missing(&["info", "--output"])]
#[case::info_ambiguous(&["info", "--o=json", "x"])]
#[case::info_abbreviated_output(&["info", "--ou=xml", "a"])]
#[case::info_abbreviated_format(&["info", "--f", "raw", "a"])]
#[case::info_cluster_unknown_first(&["info", "-xU", "t"])]
#[case::info_cluster_unknown_last(&["info", "t", "--output", "json", "-Ux"])]
#[case::info_output_eats_help(&["info", "--output", "--help"])]
#[case::info_cache(&["info", "-t", "foo", "x"])]
#[case::info_cache_no_file(&["info", "-t", "foo"])]
#[case::info_abbreviated_cache(&["info", "--c", "none", "a"])]
#[case::info_limits_no_file(&["info", "--limits"])]
#[case::info_image_opts_no_file(&["info", "--image-opts"])]
#[case::info_image_opts_bad_output(&["info", "--image-opts", "--output=xml", "y"])]
#[case::info_backing_chain_no_file(&["info", "--backing-chain"])]
// --backing-chain, --image-opts and -U (docs/compat.md §5.11).
#[case::info_backing_chain_missing(&["info", "--backing-chain", "x"])]
#[case::info_backing_chain_b(&["info", "-b", "x"])]
#[case::info_force_share(&["info", "-U", "x"])]
#[case::info_force_share_long(&["info", "--force-share", "x"])]
#[case::info_image_opts_and_format(&["info", "-f", "qcow2", "--image-opts", "driver=qcow2"])]
#[case::info_image_opts_no_driver(&["info", "--image-opts", "foo=bar"])]
#[case::info_image_opts_implied_file(&["info", "--image-opts", "x"])]
#[case::info_image_opts_missing(&["info", "--image-opts", "driver=qcow2,file.filename=x"])]
#[case::info_image_opts_bad_id(&["info", "--image-opts", "file.filename=x,id=9"])]
#[case::info_image_opts_flag(&["info", "--image-opts", "file.filename=x,force-share"])]
#[case::info_image_opts_share_conflict(&["info", "-U", "--image-opts", "file.filename=x,force-share=off"])]
#[case::info_image_opts_unknown_driver(&["info", "--image-opts", "driver=nope,file.filename=x"])]
#[case::check_force_share(&["check", "-U", "x"])]
#[case::check_image_opts_and_format(&["check", "-f", "raw", "--image-opts", "driver=raw"])]
#[case::check_image_opts_missing(&["check", "--image-opts", "driver=raw,file.filename=x"])]
#[case::check_image_opts_no_file(&["check", "--image-opts", "driver=raw"])]
#[case::snapshot_force_share_long(&["snapshot", "--force-share", "-l", "x"])]
// --object: secrets made, other types refused, as each version does it
// (at once from 6.0, after the file name before).
#[case::object_create(&["create", "--object", "x"])]
#[case::object_create_help(&["create", "--object", "x", "-o", "help"])]
#[case::object_create_abbreviated(&["create", "--o", "x", "-f", "raw", "o.raw", "1M"])]
#[case::object_create_secret(&["create", "--object", "secret,id=s,data=x", "-f", "raw", "o.raw", "1M"])]
#[case::object_info_late_output(&["info", "--object", "x", "--output=xml", "y"])]
#[case::object_check_before_cache(&["check", "--object", "x", "-T", "foo", "y"])]
#[case::object_secret_then_missing_image(&["info", "--object", "secret,id=s,data=x", "y"])]
#[case::object_secret_base64(&["info", "--object", "secret,id=s,data=eA==,format=base64", "y"])]
#[case::object_secret_bad_base64(&["info", "--object", "secret,id=s,data=!!,format=base64", "y"])]
#[case::object_secret_no_file(&["info", "--object", "secret,id=s,file=nofile", "y"])]
#[case::object_secret_file_and_data(&["check", "--object", "secret,id=s,data=x,file=f", "y"])]
#[case::object_secret_no_value(&["check", "--object", "secret,id=s", "y"])]
#[case::object_secret_bad_format(&["info", "--object", "secret,id=s,data=x,format=hex", "y"])]
#[case::object_secret_unknown_property(&["info", "--object", "secret,id=s,foo=1", "y"])]
#[case::object_secret_no_id(&["info", "--object", "secret,data=x", "y"])]
#[case::object_secret_bad_id(&["info", "--object", "secret,id=9s,data=x", "y"])]
#[case::object_secret_no_key(&["info", "--object", "secret,id=s,data=x,keyid=k", "y"])]
#[case::object_duplicate_id(&["info", "--object", "secret,id=s,data=x", "--object", "secret,id=s,data=y", "y"])]
#[case::object_no_type(&["info", "--object", "id=x", "y"])]
#[case::object_unknown_type(&["info", "--object", "foo,id=x", "y"])]
#[case::object_emulator_type(&["snapshot", "-l", "--object", "iothread,id=t", "y"])]
#[case::object_secret_loaded(&["info", "--object", "secret,id=s,data=x,loaded=on", "y"])]
#[case::object_secret_loaded_off(&["info", "--object", "secret,id=s,data=x,loaded=off", "y"])]
#[case::object_help(&["info", "--object", "help", "y"])]
#[case::object_help_no_file(&["info", "--object", "help"])]
#[case::object_secret_help(&["check", "--object", "secret,help", "y"])]
#[case::snapshot_image_opts_missing(&["snapshot", "-l", "--image-opts", "file.filename=x"])]
#[case::snapshot_image_opts_conflict(&["snapshot", "-l", "-U", "--image-opts", "file.filename=x,force-share=no"])]
#[case::info_long_option_not_utf8(&["info", r"--out\xff=json", "x"])]
#[case::info_output_not_utf8(&["info", r"--output=\xff", "x"])]
// check's.
#[case::check_no_file(&["check"])]
#[case::check_bad_repair(&["check", "--re", "x"])]
#[case::check_bad_repair_short(&["check", "-r", "x"])]
#[case::check_bad_repair_before_output(&["check", "-r", "x", "--output=xml"])]
#[case::check_repair_no_file(&["check", "-r", "leaks"])]
#[case::check_repair_missing(&["check", "-r"])]
#[case::check_bad_short(&["check", "-u", "x"])]
#[case::check_bad_cache_no_file(&["check", "-T", "foo"])]
#[case::check_bad_output_before_cache(&["check", "--output=xml", "-T", "foo", "x"])]
#[case::check_bad_output_no_file(&["check", "--output=xml"])]
#[case::check_abbreviated_quiet(&["check", "--q", "a"])]
#[case::check_abbreviated_cache(&["check", "--c", "foo", "a"])]
#[case::check_cluster_cache(&["check", "-Tfoo", "--output=xml"])]
// qemu-img's own options and commands.
#[case::no_command(&[])]
#[case::unknown_command(&["frob"])]
#[case::command_not_utf8(&[r"cr\xff"])]
#[case::main_bad_short(&["-x"])]
#[case::main_bad_long(&["--frob"])]
#[case::main_missing_value(&["-T"])]
#[case::main_long_with_value(&["--help=x"])]
#[case::main_only_end(&["--"])]
#[case::main_end_then_command(&["--", "create"])]
#[case::main_dash_command(&["-", "create"])]
// snapshot: -f and the long names from the rework, --apply without a value
// in Debian's, listing by default from the rework; the image is opened
// before any action.
#[case::snapshot_no_file(&["snapshot"])]
#[case::snapshot_two_files(&["snapshot", "-l", "a", "b"])]
#[case::snapshot_list_twice(&["snapshot", "-l", "-l", "x"])]
#[case::snapshot_list_and_apply(&["snapshot", "-l", "-a", "s", "x"])]
#[case::snapshot_format(&["snapshot", "-f", "qcow2", "-l", "x"])]
#[case::snapshot_output(&["snapshot", "--output=json", "-l", "x"])]
#[case::snapshot_list_long(&["snapshot", "--list", "x"])]
#[case::snapshot_apply_long_value(&["snapshot", "--apply=s", "x"])]
#[case::snapshot_create_missing_file(&["snapshot", "-c", "s", "x"])]
#[case::snapshot_missing_value(&["snapshot", "-a"])]
#[case::snapshot_unknown_option(&["snapshot", "-x", "x"])]
#[case::snapshot_ambiguous(&["snapshot", "--f=qcow2", "x"])]
#[case::snapshot_no_action(&["snapshot", "x"])]
#[case::snapshot_force_share_quiet(&["snapshot", "-U", "-q", "-l", "x"])]
fn by_version(
    #[case] args: &[&str],
    #[values("5.2.0", "7.2.18", "7.2.22", "10.0.2", "10.0.13", "11.1.3")] version: &str,
) {
    let Some(qemu) = qemu_if_installed(version) else { return };
    let args = os_args(args);
    let t = Transcript::default();
    let none: &[&[OsString]] = &[];
    let theirs = run(&t, qemu, &qemu.path, none, &args);
    let mine = run_env(&t, qemu, instar(), none, &args, &[(QEMU_VERSION_VAR, version)]);
    assert_same_output(&t, &theirs, &mine);
    if theirs.run.ok() {
        t.check(theirs.names() == mine.names(), || {
            format!("files left: qemu-img {:?}, instar {:?}", theirs.names(), mine.names())
        });
    } else {
        t.check(mine.files.is_empty(), || format!("instar left {:?}", mine.names()));
    }
}

#[rstest]
#[case::info_human(&["info", "r.raw"])]
#[case::info_json(&["info", "--output=json", "r.raw"])]
#[case::info_json_space(&["info", "--output", "json", "r.raw"])]
#[case::info_as_qcow2(&["info", "-f", "qcow2", "r.raw"])]
#[case::info_unknown_driver(&["info", "-f", "foo", "r.raw"])]
#[case::info_file_protocol(&["info", "file:r.raw"])]
#[case::check_raw(&["check", "r.raw"])]
#[case::check_raw_json(&["check", "--output=json", "r.raw"])]
fn raw_image_parity(#[case] args: &[&str]) {
    assert_same(&[&["create", "-q", "r.raw", "1000"]], args);
}

/// Arguments with bytes that are not UTF-8, written with `\xNN` escapes.
fn os_args(args: &[&str]) -> Vec<OsString> {
    args.iter().map(|a| OsString::from_vec(unescape(a))).collect()
}

/// Arguments that are not UTF-8 (a Linux file name is bytes): file names,
/// backing names, format names, option lists and option names. instar
/// opens, stores and prints them as qemu-img does, byte for byte (its
/// JSON replaces what is not UTF-8 as qemu's writer does).
#[rstest]
#[case::create_raw(&[], &[r"create", r"r\xff.raw", r"1M"])]
#[case::create_qcow2_backing(&[BASE], &[r"create", r"-f", r"qcow2", r"-b", BASE_NAME, r"-F", r"raw", r"t\xfe.qcow2"])]
#[case::info_backing(&[BASE, OVERLAY], &[r"info", r"t\xfe.qcow2"])]
#[case::info_backing_json(&[BASE, OVERLAY], &[r"info", r"--output=json", r"t\xfe.qcow2"])]
#[case::check_backing(&[BASE, OVERLAY], &[r"check", r"t\xfe.qcow2"])]
#[case::check_backing_json(&[BASE, OVERLAY], &[r"check", r"--output=json", r"t\xfe.qcow2"])]
#[case::info_missing(&[], &[r"info", r"no\xff"])]
#[case::info_missing_json_format(&[], &[r"info", r"--output=json", r"-f", r"qcow2", r"no\xff"])]
#[case::unknown_format(&[], &[r"create", r"-f", r"q\xff", r"x", r"1M"])]
#[case::option_value(&[], &[r"create", r"-f", r"qcow2", r"-o", r"cluster_size=\xff", r"y", r"1M"])]
#[case::option_name(&[], &[r"create", r"-f", r"qcow2", r"-o", r"foo\xff=1", r"y", r"1M"])]
#[case::size(&[], &[r"create", r"-f", r"qcow2", r"\xff", r"1\xff"])]
#[case::vmdk_flat_create(&[], FLAT_VMDK)]
#[case::vmdk_flat_check(&[FLAT_VMDK], &[r"check", r"f\xfe.vmdk"])]
#[case::vmdk_missing_parent(&[], &[r"create", r"-f", r"vmdk", r"-b", r"v\xff.vmdk", r"w\xfe.vmdk"])]
#[case::command(&[], &[r"cr\xff"])]
#[case::long_option(&[], &[r"info", r"--out\xff=json", r"x"])]
#[case::output_value(&[], &[r"info", r"--output=\xff", r"x"])]
fn non_utf8_arguments(#[case] setup: &[&[&str]], #[case] args: &[&str]) {
    let setup: Vec<Vec<OsString>> = setup.iter().map(|s| os_args(s)).collect();
    let setup: Vec<&[OsString]> = setup.iter().map(Vec::as_slice).collect();
    let Some((t, theirs, mine)) = compare(&setup, &os_args(args)) else { return };
    assert_same_output(&t, &theirs, &mine);
    t.check(theirs.names() == mine.names(), || {
        format!("files left: qemu-img {:?}, instar {:?}", theirs.names(), mine.names())
    });
    // A vmdk descriptor holds a random CID; every other file is compared.
    for (q, i) in theirs.files.iter().zip(&mine.files) {
        t.check(q.0.ends_with(".vmdk") || q.1 == i.1, || format!("{} differs", q.0));
    }
}

/// A vmdk with flat extents whose name is not UTF-8.
const FLAT_VMDK: &[&str] = &[
    r"create",
    r"-q",
    r"-f",
    r"vmdk",
    r"-o",
    r"subformat=twoGbMaxExtentFlat",
    r"f\xfe.vmdk",
    r"1M",
];

/// A base image whose name is not UTF-8, and an overlay on it.
const BASE_NAME: &str =
    r"b\xffx\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xc0\x80\xed\xa0\x80\xef\xb7\x90z.img";
const BASE: &[&str] = &[r"create", r"-q", BASE_NAME, r"1M"];
const OVERLAY: &[&str] =
    &[r"create", r"-q", r"-f", r"qcow2", r"-b", BASE_NAME, r"-F", r"raw", r"t\xfe.qcow2"];

/// Creates that qemu-img fails only after making the file: it leaves an
/// empty file behind, instar leaves none. Everything printed is the same.
#[rstest]
#[case::raw_metadata(&["create", "-o", "preallocation=metadata", "t.raw", "1M"])]
#[case::raw_efbig(&["create", "t.raw", "1.5E"])]
#[case::raw_resize_overflow(&["create", "t.raw", "9223372036854775807"])]
#[case::raw_size_8e(&["create", "-o", "size=8E", "t.raw"])]
#[case::raw_size_9e_full(&["create", "-o", "size=9E,preallocation=full", "t.raw"])]
#[case::raw_size_9e_metadata(&["create", "-o", "size=9E,preallocation=metadata", "t.raw"])]
#[case::vpc_size_8e(&["create", "-f", "vpc", "-o", "size=8E", "t.vhd"])]
#[case::vpc_metadata(&["create", "-f", "vpc", "-o", "preallocation=metadata", "t.vhd", "1M"])]
#[case::vhdx_size_8e(&["create", "-f", "vhdx", "-o", "size=8E", "t.vhdx"])]
#[case::vmdk_metadata(&["create", "-f", "vmdk", "-o", "preallocation=metadata", "t.vmdk", "1M"])]
#[case::vhdx_metadata_before_block_size(&["create", "-f", "vhdx", "-o", "preallocation=metadata,block_size=3M", "t.vhdx", "1G"])]
fn failed_create_leaves_nothing(#[case] args: &[&str]) {
    let Some((t, theirs, mine)) = compare(&[], args) else { return };
    assert_same_output(&t, &theirs, &mine);
    t.check(!mine.run.ok(), || format!("{args:?} must fail"));
    t.check(mine.files.is_empty(), || format!("instar left {:?}", mine.names()));
    t.check(theirs.files.iter().all(|f| f.1.is_empty()), || {
        "qemu-img is expected to leave at most an empty file".into()
    });
}

/// Creates where qemu-img leaves a file that is not empty, or one with a
/// random field: the output must be the same, and instar leaves nothing
/// where qemu-img failed.
#[rstest]
// A 2 GiB BAT (256 MiB blocks on an empty disk): qemu-img fails writing
// it in one request and leaves the sized file.
#[case::vhdx_bat_over_one_request(&["create", "-f", "vhdx", "-o", "block_size=256M", "t.vhdx", "0"])]
// qemu-img's vmdk accepts 2^63 bytes and writes a 64 KiB file.
#[case::vmdk_size_8e(&["create", "-f", "vmdk", "-o", "size=8E", "t.vmdk"])]
fn create_output_parity(#[case] args: &[&str]) {
    let Some((t, theirs, mine)) = compare(&[], args) else { return };
    assert_same_output(&t, &theirs, &mine);
    if mine.run.ok() {
        t.check(theirs.names() == mine.names(), || "not the same files".into());
    } else {
        t.check(mine.files.is_empty(), || format!("instar left {:?}", mine.names()));
    }
}

/// New image files have qemu's mode (0644 under the caller's umask), for
/// every format: under `umask 002` they are not group-writable.
#[rstest]
#[case::raw("raw")]
#[case::qcow2("qcow2")]
#[case::vmdk("vmdk")]
#[case::vpc("vpc")]
#[case::vhdx("vhdx")]
fn created_file_mode_follows_qemu(#[case] fmt: &str) {
    use std::os::unix::fs::PermissionsExt;
    let Some(s) = Sandbox::new() else { return };
    let mode = |program: &Path, name: &str| {
        let script = format!("umask 002; exec \"$0\" create -q -f {fmt} {name} 1M");
        s.t.run_ok(
            Path::new("/bin/sh"),
            &["-c", &script, &program.display().to_string()],
            s.path(),
        );
        std::fs::metadata(s.file(name)).map_or(0, |m| m.permissions().mode() & 0o777)
    };
    let theirs = mode(&s.qemu.path, "q.img");
    let mine = mode(instar(), "i.img");
    s.t.check(theirs == 0o644, || format!("qemu-img made mode {theirs:o}"));
    s.t.check(mine == theirs, || format!("instar made mode {mine:o}, qemu-img {theirs:o}"));
}

/// Images of formats qemu-img reads and instar does not: instar refuses
/// them by name (exit 1, nothing on stdout) instead of probing them as raw
/// and printing a wrong answer, and refuses to create them.
#[rstest]
#[case::vdi("vdi")]
#[case::qed("qed")]
#[case::qcow("qcow")]
#[case::parallels("parallels")]
fn qemu_only_formats_are_refused(#[case] fmt: &str) {
    let Some(s) = Sandbox::new() else { return };
    s.qemu_ok(&["create", "-q", "-f", fmt, "img", "1M"]);
    let want = format!("Format '{fmt}' is not supported by instar");
    for args in [&["info", "img"][..], &["check", "img"], &["info", "-f", fmt, "img"]] {
        let r = s.instar(args);
        s.t.check(r.code == Some(1), || format!("{args:?} exited {:?}, not 1", r.code));
        s.t.check(r.stdout.is_empty(), || format!("{args:?} printed an answer"));
        s.t.check(r.stderr.contains(&want), || format!("{args:?} does not say {want:?}"));
    }
    let r = s.instar(&["create", "-f", fmt, "new", "1M"]);
    s.t.check(r.code == Some(1) && r.stderr.contains(&want), || "create was not refused".into());
    s.t.check(!s.file("new").exists(), || "a refused create left a file".into());
}

/// `--qemu-version` picks what a qemu-img version prints: any well-formed
/// version, inside a known range or past the newest (docs/compat.md §5.3);
/// text that is not a version is refused clearly.
#[rstest]
#[case::malformed("abc", Some("expects a qemu-img version such as 10.0.2, not 'abc'"))]
#[case::one_part("10", Some("expects a qemu-img version such as 10.0.2, not '10'"))]
#[case::four_parts("10.0.2.1", Some("not '10.0.2.1'"))]
#[case::empty_part("10..2", Some("not '10..2'"))]
#[case::two_parts("10.0", None)]
#[case::oldest("5.2.0", None)]
#[case::before_the_graph("7.2.5", None)]
#[case::the_graph("8.0.0", None)]
#[case::between_measured("8.2.0", None)]
#[case::between_measured_9("9.2.0", None)]
#[case::exact("10.0.2", None)]
#[case::past_the_newest("12.0.0", None)]
fn qemu_version_option(#[case] version: &str, #[case] error: Option<&str>) {
    let t = Transcript::default();
    let dir = tempdir();
    t.run_ok(instar(), &["create", "-q", "r.raw", "1M"], dir.path());
    let by_option =
        t.run(instar(), &["info", "--qemu-version", version, "--output=json", "r.raw"], dir.path());
    let by_env = t.run_env(
        instar(),
        &["info", "--output=json", "r.raw"],
        dir.path(),
        &[("INSTAR_QEMU_VERSION", version)],
    );
    for (r, how) in [(&by_option, "--qemu-version"), (&by_env, "INSTAR_QEMU_VERSION")] {
        match error {
            Some(text) => {
                t.check(r.code == Some(1), || format!("{how}: exited {:?}, not 1", r.code));
                t.check(r.stdout.is_empty(), || format!("{how}: printed an answer"));
                t.check(r.stderr.contains(text), || format!("{how}: does not say {text:?}"));
                t.check(r.stderr.contains(how), || format!("{how}: does not name {how}"));
            }
            None => {
                t.check(r.ok(), || format!("{how}: exited {:?}", r.code));
                // Before 8.0 no children array; 8.0 and later print it.
                let major: u32 =
                    version.split('.').next().and_then(|m| m.parse().ok()).unwrap_or(0);
                let children = r.stdout.contains("\"children\"");
                t.check(children == (major >= 8), || format!("{how}: children array or not"));
            }
        }
    }
}

/// The option wins over the environment, and the environment over the
/// default; every command reads both.
#[test]
fn qemu_version_option_beats_the_environment() {
    let t = Transcript::default();
    let dir = tempdir();
    let old = [("INSTAR_QEMU_VERSION", "7.2.0")];
    let refused = |r: &Run, two_lines: bool| {
        r.code == Some(1) && r.stderr.contains("You may use k, M, G, T, P or E") == two_lines
    };
    let r = t.run_env(instar(), &["create", "x.raw", "1kilobyte"], dir.path(), &old);
    t.check(refused(&r, true), || "create did not speak 7.2 from the environment".into());
    let args = ["create", "--qemu-version", "10.0.2", "x.raw", "1kilobyte"];
    let r = t.run_env(instar(), &args, dir.path(), &old);
    t.check(refused(&r, false), || "create's --qemu-version did not win".into());
    let r = t.run(instar(), &["create", "x.raw", "1kilobyte"], dir.path());
    t.check(refused(&r, false), || "the default dialect is not 10.0's".into());
    t.run_ok(instar(), &["create", "-q", "r.raw", "1M"], dir.path());
    let r = t.run_env(instar(), &["info", "--output=json", "r.raw"], dir.path(), &old);
    t.check(r.ok() && !r.stdout.contains("children"), || "info ignored the environment".into());
    let r = t.run_env(instar(), &["check", "r.raw"], dir.path(), &[("INSTAR_QEMU_VERSION", "x")]);
    t.check(r.code == Some(1) && r.stderr.contains("INSTAR_QEMU_VERSION expects"), || {
        "check took a malformed INSTAR_QEMU_VERSION".into()
    });
    let r = t.run_env(
        instar(),
        &["check", "--qemu-version", "10.0.2", "r.raw"],
        dir.path(),
        &[("INSTAR_QEMU_VERSION", "x")],
    );
    t.check(r.code == Some(63), || {
        "check's --qemu-version did not win over the environment".into()
    });
}

/// `--qemu-version` words every error of its command line, one met
/// before it included.
#[test]
fn qemu_version_option_words_earlier_errors() {
    let t = Transcript::default();
    let dir = tempdir();
    let r = t.run(instar(), &["create", "-x", "t.raw", "--qemu-version", "7.2.0"], dir.path());
    t.assert_same(
        "stderr",
        "instar: unrecognized option '-x'\nTry 'instar --help' for more information\n",
        &r.stderr,
    );
    let r = t.run(instar(), &["info", "--qemu-version=11.1.3", "--output=xml", "x"], dir.path());
    let hint = format!("Try '{} info --help' for more information\n", instar().display());
    t.assert_same(
        "stderr",
        &format!("instar: --output expects 'human' or 'json', not 'xml'\n{hint}"),
        &r.stderr,
    );
}

/// A create that is refused for its options leaves a file that was already
/// at the path as it was (qemu-img truncates or deletes it for some
/// formats): validation comes before the file system is touched.
#[rstest]
#[case::raw(&["create", "-o", "preallocation=bogus", "img", "1M"])]
#[case::raw_metadata(&["create", "-o", "preallocation=metadata", "img", "1M"])]
#[case::raw_size_past_2_63(&["create", "-o", "size=9E", "img"])]
#[case::vpc_metadata(&["create", "-f", "vpc", "-o", "preallocation=metadata", "img", "1M"])]
#[case::vmdk_hint(&["create", "-f", "vmdk", "-o", "extent_size_hint=5T", "img", "1M"])]
#[case::qcow2(&["create", "-f", "qcow2", "-o", "compat=0.42", "img", "1M"])]
#[case::qcow2_cluster(&["create", "-f", "qcow2", "-o", "cluster_size=4M", "img", "1M"])]
#[case::vmdk(&["create", "-f", "vmdk", "-o", "adapter_type=scsi", "img", "1M"])]
#[case::vpc(&["create", "-f", "vpc", "-o", "subformat=bogus", "img", "1M"])]
#[case::vhdx(&["create", "-f", "vhdx", "-o", "block_size=3M", "img", "1M"])]
fn refused_create_keeps_existing_file(#[case] args: &[&str]) {
    let t = Transcript::default();
    let dir = tempdir();
    let path = dir.path().join("img");
    std::fs::write(&path, b"precious data").unwrap();
    let r = t.run(instar(), args, dir.path());
    t.check(r.code == Some(1), || format!("{args:?} must be refused"));
    let left = std::fs::read(&path).unwrap_or_default();
    t.check(left == b"precious data", || format!("{args:?} touched the file"));
}

/// A qcow2 image with an internal snapshot: `info` lists it as qemu-img
/// does (the snapshot group, tests/snapshots/, covers every version and
/// kind), and `check` agrees with qemu-img on the same file.
#[test]
fn qcow2_with_snapshots_is_listed_by_info() {
    let Some(s) = Sandbox::new() else { return };
    s.qemu_ok(&["create", "-q", "-f", "qcow2", "s.qcow2", "1M"]);
    s.qemu_ok(&["snapshot", "-c", "one", "s.qcow2"]);
    let code = s.same(&["info", "s.qcow2"]);
    s.t.check(code == Some(0), || format!("info exited {code:?}"));
    let code = s.same(&["check", "s.qcow2"]);
    s.t.check(code == Some(0), || format!("check exited {code:?}"));
}

/// A backing chain that comes back to a file already in it: qemu-img's
/// check never returns (it is not run here); instar refuses the loop, one
/// `Could not open backing file:` per level, in the words of qemu-img's
/// `info --backing-chain`.
#[rstest]
#[case::self_loop(1)]
#[case::two_images(2)]
fn backing_chain_loop_is_an_error(#[case] levels: usize) {
    let Some(s) = Sandbox::new() else { return };
    s.qemu_ok(&["create", "-q", "-f", "qcow2", "a.qcow2", "1M"]);
    let parent = if levels == 1 {
        "a.qcow2"
    } else {
        s.qemu_ok(&["create", "-q", "-f", "qcow2", "-b", "a.qcow2", "-F", "qcow2", "b.qcow2"]);
        "b.qcow2"
    };
    s.qemu_ok(&["rebase", "-u", "-b", parent, "-F", "qcow2", "a.qcow2"]);
    let r = s.instar(&["check", "a.qcow2"]);
    let want = format!(
        "instar: Could not open 'a.qcow2': {}Backing file 'a.qcow2' creates an infinite loop.\n",
        "Could not open backing file: ".repeat(levels)
    );
    s.t.check(r.code == Some(1) && r.stdout.is_empty(), || format!("exited {:?}", r.code));
    s.t.assert_same("stderr", &want, &r.stderr);
}

/// What qemu-img would apply and instar does not is refused by name, exit
/// 1, after every check qemu-img makes first (docs/compat.md §5.11): an
/// image option qemu knows, an object type other than `secret`.
#[rstest]
#[case::image_option(
    &["info", "--image-opts", "driver=qcow2,file.filename=x.qcow2,l2-cache-size=1M"],
    "instar: Could not open 'driver=qcow2,file.filename=x.qcow2,l2-cache-size=1M': The image \
     option 'l2-cache-size' is not supported by instar (it applies driver, file.driver, \
     file.filename and force-share)\n"
)]
#[case::protocol_option(
    &["check", "--image-opts", "file.filename=x.qcow2,file.locking=off"],
    "instar: Could not open 'file.filename=x.qcow2,file.locking=off': The image option \
     'file.locking' is not supported by instar (it applies driver, file.driver, file.filename \
     and force-share)\n"
)]
#[case::object_type(
    &["info", "--object", "throttle-group,id=t", "x.qcow2"],
    "instar: Object type 'throttle-group' is not supported by instar (it makes secret objects)\n"
)]
fn refused_by_name(#[case] args: &[&str], #[case] want: &str) {
    let Some(s) = Sandbox::new() else { return };
    s.qemu_ok(&["create", "-q", "-f", "qcow2", "x.qcow2", "1M"]);
    let r = s.instar(args);
    s.t.check(r.code == Some(1) && r.stdout.is_empty(), || format!("exited {:?}", r.code));
    s.t.assert_same("stderr", want, &r.stderr);
}
