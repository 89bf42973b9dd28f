//! Command-line parity: for the same arguments, `instar` prints what
//! qemu-img 10.0.2 prints (program name aside), exits with the same code,
//! and leaves the same files, accepted and refused arguments alike.
//!
//! The one deliberate difference: when a create fails after qemu-img has
//! already created the file, qemu-img leaves it behind (empty); instar
//! validates first and leaves nothing. Those cases say so and assert it.

use rstest::rstest;
use std::path::Path;
use std::process::Command;

/// The qemu-img these cases were measured on.
const QEMU_IMG: &str = "/usr/bin/qemu-img";

/// What one run printed and left behind.
#[derive(Debug, PartialEq)]
struct Outcome {
    stdout: String,
    stderr: String,
    code: Option<i32>,
    files: Vec<(String, Vec<u8>)>,
}

/// Runs `setup` (qemu-img arguments, creating fixtures) then `args` with
/// `program`, in a fresh directory.
fn run(program: &str, setup: &[&[&str]], args: &[&str]) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    for s in setup {
        let st = Command::new(QEMU_IMG).args(*s).current_dir(dir.path()).output().unwrap();
        assert!(st.status.success(), "setup {s:?} failed: {st:?}");
    }
    let out = Command::new(program).args(args).current_dir(dir.path()).output().unwrap();
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| (name_of(&p), std::fs::read(&p).unwrap()))
        .collect();
    files.sort();
    // Usage errors name the program as invoked (argv[0]); everything else
    // names it by its short name.
    let name = |bytes: &[u8]| {
        String::from_utf8_lossy(bytes).replace(program, "instar").replace("qemu-img", "instar")
    };
    Outcome { stdout: name(&out.stdout), stderr: name(&out.stderr), code: out.status.code(), files }
}

fn name_of(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

fn compare(setup: &[&[&str]], args: &[&str]) -> (Outcome, Outcome) {
    let qemu = run(QEMU_IMG, setup, args);
    let instar = run(env!("CARGO_BIN_EXE_instar"), setup, args);
    (qemu, instar)
}

fn assert_same(setup: &[&[&str]], args: &[&str]) {
    let (qemu, instar) = compare(setup, args);
    similar_asserts::assert_eq!(qemu.stdout, instar.stdout, "stdout of {args:?}");
    similar_asserts::assert_eq!(qemu.stderr, instar.stderr, "stderr of {args:?}");
    assert_eq!(qemu.code, instar.code, "exit code of {args:?}");
    let names = |o: &Outcome| o.files.iter().map(|f| f.0.clone()).collect::<Vec<_>>();
    assert_eq!(names(&qemu), names(&instar), "files left by {args:?}");
    for (q, i) in qemu.files.iter().zip(&instar.files) {
        assert!(q.1 == i.1, "{} differs after {args:?}", q.0);
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
fn cli_parity(#[case] args: &[&str]) {
    assert_same(&[], args);
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

/// Creates that qemu-img fails only after making the file: it leaves an
/// empty file behind, instar leaves none. Everything printed is the same.
#[rstest]
#[case::raw_metadata(&["create", "-o", "preallocation=metadata", "t.raw", "1M"])]
#[case::raw_efbig(&["create", "t.raw", "1.5E"])]
#[case::raw_resize_overflow(&["create", "t.raw", "9223372036854775807"])]
fn failed_create_leaves_nothing(#[case] args: &[&str]) {
    let (qemu, instar) = compare(&[], args);
    similar_asserts::assert_eq!(qemu.stdout, instar.stdout);
    similar_asserts::assert_eq!(qemu.stderr, instar.stderr);
    assert_eq!(qemu.code, instar.code);
    assert_ne!(instar.code, Some(0), "{args:?} must fail");
    assert!(instar.files.is_empty(), "instar left {:?}", instar.files);
    assert!(
        qemu.files.iter().all(|f| f.1.is_empty()),
        "qemu-img is expected to leave at most an empty file"
    );
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
    let dir = tempfile::tempdir().unwrap();
    let made = Command::new(QEMU_IMG)
        .args(["create", "-q", "-f", fmt, "img", "1M"])
        .current_dir(dir.path())
        .status()
        .unwrap();
    assert!(made.success());
    let want = format!("Format '{fmt}' is not supported by instar");
    for args in [vec!["info", "img"], vec!["check", "img"], vec!["info", "-f", fmt, "img"]] {
        let out = Command::new(env!("CARGO_BIN_EXE_instar"))
            .args(&args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?} printed an answer");
        assert!(stderr.contains(&want), "{args:?}: {stderr}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_instar"))
        .args(["create", "-f", fmt, "new", "1M"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&want));
    assert!(!dir.path().join("new").exists(), "a refused create left a file");
}

/// `--qemu-version` picks what a qemu-img version prints; a version instar
/// has no profile for, or text that is not a version, is refused clearly.
#[rstest]
#[case::malformed("abc", Some("expects a version such as 10.0.2, not 'abc'"))]
#[case::two_parts("10.0", Some("expects a version such as 10.0.2, not '10.0'"))]
#[case::unknown("9.1.0", Some("qemu-img 9.1.0 is not a version instar knows"))]
#[case::same_minor("7.2.5", None)]
#[case::exact("10.0.2", None)]
fn qemu_version_option(#[case] version: &str, #[case] error: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let made = Command::new(QEMU_IMG)
        .args(["create", "-q", "r.raw", "1M"])
        .current_dir(dir.path())
        .status()
        .unwrap();
    assert!(made.success());
    let out = Command::new(env!("CARGO_BIN_EXE_instar"))
        .args(["info", "--qemu-version", version, "--output=json", "r.raw"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    match error {
        Some(text) => {
            assert_eq!(out.status.code(), Some(1), "{stderr}");
            assert!(stdout.is_empty());
            assert!(stderr.contains(text), "{stderr}");
        }
        None => {
            assert_eq!(out.status.code(), Some(0), "{stderr}");
            // 7.2 prints no children array; 8.0 and later do.
            assert_eq!(stdout.contains("\"children\""), version.starts_with("10."));
        }
    }
}

/// A create that is refused for its options leaves a file that was already
/// at the path as it was (qemu-img truncates or deletes it for some
/// formats): validation comes before the file system is touched.
#[rstest]
#[case::raw(&["create", "-o", "preallocation=bogus", "img", "1M"])]
#[case::qcow2(&["create", "-f", "qcow2", "-o", "compat=0.42", "img", "1M"])]
#[case::qcow2_cluster(&["create", "-f", "qcow2", "-o", "cluster_size=4M", "img", "1M"])]
#[case::vmdk(&["create", "-f", "vmdk", "-o", "adapter_type=scsi", "img", "1M"])]
#[case::vpc(&["create", "-f", "vpc", "-o", "subformat=bogus", "img", "1M"])]
#[case::vhdx(&["create", "-f", "vhdx", "-o", "block_size=3M", "img", "1M"])]
fn refused_create_keeps_existing_file(#[case] args: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("img");
    std::fs::write(&path, b"precious data").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_instar"))
        .args(args)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{args:?} must be refused");
    assert_eq!(std::fs::read(&path).unwrap(), b"precious data", "{args:?} touched the file");
}

/// qemu-img lists a qcow2 image's internal snapshots; instar does not read
/// them yet, so it refuses `info` on such an image rather than print an
/// answer without them. `check` still works.
#[test]
fn qcow2_with_snapshots_is_refused_by_info() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["create", "-q", "-f", "qcow2", "s.qcow2", "1M"][..],
        &["snapshot", "-c", "one", "s.qcow2"],
    ] {
        let st = Command::new(QEMU_IMG).args(args).current_dir(dir.path()).status().unwrap();
        assert!(st.success());
    }
    let info = Command::new(env!("CARGO_BIN_EXE_instar"))
        .args(["info", "s.qcow2"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(info.status.code(), Some(1));
    assert!(info.stdout.is_empty());
    assert!(String::from_utf8_lossy(&info.stderr).contains("internal snapshots are not supported"));
    // check reads snapshots, and agrees with qemu-img on the same file.
    assert_eq!(crate::damage::assert_same_check(dir.path(), &["check", "s.qcow2"]), 0);
}
