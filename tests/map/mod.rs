//! `map` against qemu-img, one named test per case and version:
//! `map::<group>::case_N_<name>::version_M___X_Y_Z__`.
//!
//! Each test makes the fixtures in a fresh folder, runs qemu-img V and
//! instar speaking as V (`INSTAR_QEMU_VERSION`) on the same command line,
//! and asserts the same stdout, the same stderr (the program named as it
//! was invoked in both) and the same exit code. Around instar's run the
//! checksum of every file in the folder is taken: `map` must change none.
//!
//! - `cli`: every option, its values and its errors (sizes per version,
//!   `--output` early or late, getopt's messages per era, objects,
//!   `--image-opts`, `-U`, the operand count, a missing file).
//! - `raw`: sparse raw files (holes and data at various places, odd
//!   lengths, empty, all data, written zeros), whole and in windows
//!   (`--start-offset`/`--max-length` unaligned, 0, past the end, huge),
//!   human and JSON.
//! - `formats`: images the oracle made and wrote into with qemu-io, of
//!   every format (qcow2 with small clusters, an external data file, an
//!   overlay with a zero and a compressed cluster; vmdk sparse, flat and
//!   split; vpc dynamic and fixed; vhdx), whole and in windows that start
//!   and end inside clusters, human and JSON. Longer chains are the
//!   lived-in `reads` kinds.
//!
//! Whole images of the lived-in corpus are mapped by the lived-in tests.

use crate::util::{instar, qemu_or_skip, Run, Transcript};
use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// A file of `len` bytes at `path`, all hole but for `runs` of data
/// (offset, length), each filled with a non-zero pattern.
fn sparse(path: &Path, len: u64, runs: &[(u64, usize)]) {
    let f = OpenOptions::new().create(true).write(true).truncate(true).open(path).expect("a file");
    f.set_len(len).expect("a length");
    for &(offset, size) in runs {
        let data: Vec<u8> = (0..size).map(|b| (b % 251) as u8 | 1).collect();
        f.write_all_at(&data, offset).expect("data");
    }
}

/// The raw fixtures every case may name.
fn fixtures(dir: &Path) {
    const K: u64 = 1024;
    const M: u64 = 1024 * K;
    let at = |name: &str| dir.join(name);
    // 1 MiB, 64 KiB of data at 192 KiB.
    sparse(&at("r.raw"), M, &[(192 * K, 64 * 1024)]);
    // 3 MiB, four runs of 12 KiB.
    sparse(
        &at("holes.raw"),
        3 * M,
        &[(0, 12288), (320 * K, 12288), (1088 * K, 12288), (2560 * K, 12288)],
    );
    sparse(&at("empty.raw"), 0, &[]);
    // Not a whole number of sectors.
    sparse(&at("odd.raw"), 1000, &[]);
    sparse(&at("tiny.raw"), 3, &[(0, 3)]);
    sparse(&at("full.raw"), 300 * K, &[(0, 300 * 1024)]);
    // Data in the first block only, then a hole to the end.
    sparse(&at("head.raw"), M, &[(0, 700)]);
    // A hole, then one byte of data at the very end.
    sparse(&at("last.raw"), 100_000, &[(99_999, 1)]);
    // Zeros written: data to SEEK_DATA, zeros to the guest.
    let zeros = OpenOptions::new().create(true).write(true).truncate(true).open(at("zeros.raw"));
    zeros.expect("a file").write_all_at(&[0u8; 256 * 1024], 0).expect("zeros");
}

/// A checksum of every file in `dir`, by name.
fn checksums(dir: &Path) -> BTreeMap<String, u64> {
    let mut sums = BTreeMap::new();
    for entry in std::fs::read_dir(dir).expect("the folder").flatten() {
        let sum = crate::util::file_sum(&entry.path());
        sums.insert(entry.file_name().to_string_lossy().into_owned(), sum);
    }
    sums
}

/// `text` with the program named `instar` wherever it names itself: as
/// invoked (`program`, in usage errors; the 11.1.3 wrapper runs the binary
/// under another path ending in `/qemu-img`) or by its short name.
fn named(text: &str, program: &str) -> String {
    let text = text.replace(program, "instar");
    let mut out = String::new();
    for line in text.split_inclusive('\n') {
        let mut rest = line;
        while let Some(at) = rest.find("qemu-img") {
            let before = &rest[..at];
            let start = before.rfind([' ', '\'']).map_or(0, |p| p + 1);
            out.push_str(&before[..start]);
            if !before[start..].is_empty() && !before[start..].ends_with('/') {
                out.push_str(&before[start..]);
            }
            out.push_str("instar");
            rest = &rest[at + "qemu-img".len()..];
        }
        out.push_str(rest);
    }
    out
}

/// Runs `args` with qemu-img `version` and with instar as `version` in a
/// folder holding the fixtures; fails unless they print and exit alike
/// and instar left every file as it was.
fn same(args: &[&str], version: &str) {
    same_after(|_, dir| fixtures(dir), args, version);
}

/// [`same`] in a folder that `setup` filled (with the transcript to run
/// the oracle in).
fn same_after(setup: impl FnOnce(&Transcript, &Path), args: &[&str], version: &str) {
    let Some(qemu) = qemu_or_skip(version) else { return };
    let dir = crate::util::tempdir();
    let t = Transcript::default();
    setup(&t, dir.path());
    let theirs: Run = t.run(&qemu.path, args, dir.path());
    let before = checksums(dir.path());
    let mine = t.run_env(instar(), args, dir.path(), &[("INSTAR_QEMU_VERSION", version)]);
    t.check(checksums(dir.path()) == before, || {
        format!("instar {} changed a file", args.join(" "))
    });
    let what = format!("{} as {version} (qemu-img left, instar right)", args.join(" "));
    let qemu_path = qemu.path.display().to_string();
    let instar_path = instar().display().to_string();
    t.assert_same(&format!("{what}: stdout"), &named(&theirs.stdout, &qemu_path), &mine.stdout);
    t.assert_same(
        &format!("{what}: stderr"),
        &named(&theirs.stderr, &qemu_path),
        &named(&mine.stderr, &instar_path),
    );
    t.check(theirs.code == mine.code, || {
        format!("{what}: exit status {:?} (qemu-img), {:?} (instar)", theirs.code, mine.code)
    });
}

/// The command line: options, values, errors.
mod cli {
    use rstest::rstest;

    #[rstest]
    #[case::human(&["map", "r.raw"])]
    #[case::json(&["map", "--output=json", "r.raw"])]
    #[case::json_separate(&["map", "--output", "json", "r.raw"])]
    #[case::human_named(&["map", "--output=human", "r.raw"])]
    #[case::output_twice(&["map", "--output=json", "--output=human", "r.raw"])]
    #[case::output_bad(&["map", "--output=xml", "r.raw"])]
    #[case::output_bad_no_file(&["map", "--output=xml"])]
    #[case::output_bad_missing_file(&["map", "--output=xml", "nofile.raw"])]
    #[case::output_abbreviated(&["map", "--outp=json", "r.raw"])]
    #[case::output_ambiguous(&["map", "--o=json", "r.raw"])]
    #[case::output_missing_value(&["map", "r.raw", "--output"])]
    #[case::format_raw(&["map", "-f", "raw", "r.raw"])]
    #[case::format_long(&["map", "--format=raw", "--output=json", "r.raw"])]
    #[case::format_qcow2(&["map", "-f", "qcow2", "r.raw"])]
    #[case::format_unknown(&["map", "-f", "bogus", "r.raw"])]
    #[case::format_missing_value(&["map", "-f"])]
    #[case::no_file(&["map"])]
    #[case::two_files(&["map", "r.raw", "holes.raw"])]
    #[case::missing_file(&["map", "nofile.raw"])]
    #[case::missing_file_json(&["map", "--output=json", "nofile.raw"])]
    #[case::folder(&["map", "."])]
    #[case::after_double_dash(&["map", "--", "r.raw"])]
    #[case::options_after_file(&["map", "r.raw", "--output=json", "-s", "4k"])]
    #[case::force_share(&["map", "-U", "r.raw"])]
    #[case::force_share_long(&["map", "--force-share", "--output=json", "r.raw"])]
    #[case::image_opts(&["map", "--image-opts", "driver=raw,file.filename=r.raw"])]
    #[case::image_opts_json(&["map", "--output=json", "--image-opts", "driver=raw,file.driver=file,file.filename=holes.raw"])]
    #[case::image_opts_plain_name(&["map", "--image-opts", "r.raw"])]
    #[case::image_opts_with_format(&["map", "-f", "raw", "--image-opts", "driver=raw,file.filename=r.raw"])]
    #[case::image_opts_value(&["map", "--image-opts=1", "r.raw"])]
    #[case::file_protocol(&["map", "file:r.raw"])]
    #[case::json_name(&["map", r#"json:{"file":{"driver":"file","filename":"r.raw"}}"#])]
    #[case::dot_slash(&["map", "./r.raw"])]
    #[case::object_secret(&["map", "--object", "secret,id=s0,data=x", "r.raw"])]
    #[case::object_bad_type(&["map", "--object", "foo", "r.raw"])]
    #[case::object_no_id(&["map", "--object", "secret,data=x", "r.raw"])]
    #[case::object_help(&["map", "--object", "help"])]
    #[case::object_secret_help(&["map", "--object", "secret,help"])]
    #[case::unknown_short(&["map", "-x", "r.raw"])]
    #[case::unknown_in_cluster(&["map", "-Ux", "r.raw"])]
    #[case::unknown_long(&["map", "--bogus", "r.raw"])]
    #[case::empty_long_name(&["map", "--=x", "r.raw"])]
    #[case::flag_with_value(&["map", "--force-share=yes", "r.raw"])]
    #[case::start_k(&["map", "-s", "1k", "r.raw"])]
    #[case::start_long(&["map", "--start-offset=192k", "--output=json", "r.raw"])]
    #[case::start_abbreviated(&["map", "--start=200k", "r.raw"])]
    #[case::start_hex(&["map", "-s", "0x10", "--output=json", "r.raw"])]
    #[case::start_fraction(&["map", "-s", "1.5k", "--output=json", "r.raw"])]
    #[case::start_twice(&["map", "-s", "1k", "-s", "2k", "--output=json", "r.raw"])]
    #[case::start_word(&["map", "-s", "foo", "r.raw"])]
    #[case::start_negative(&["map", "-s", "-1", "r.raw"])]
    #[case::start_negative_k(&["map", "-s", "-1k", "r.raw"])]
    #[case::start_exponent(&["map", "-s", "1e3", "--output=json", "r.raw"])]
    #[case::start_hex_suffix(&["map", "-s", "0x10k", "--output=json", "r.raw"])]
    #[case::start_hex_suffix_no_file(&["map", "-s", "0x10k"])]
    #[case::start_hex_suffix_then_bad_output(&["map", "-s", "0x10k", "--output=xml", "r.raw"])]
    #[case::start_hex_suffix_then_unknown(&["map", "-s", "0x10k", "-x", "r.raw"])]
    #[case::two_hex_suffixes(&["map", "-s", "0x10k", "-l", "0x1k", "r.raw"])]
    #[case::start_too_big(&["map", "-s", "99E", "r.raw"])]
    #[case::start_8e(&["map", "-s", "8E", "r.raw"])]
    #[case::start_max(&["map", "-s", "9223372036854775807", "--output=json", "r.raw"])]
    #[case::start_missing_value(&["map", "r.raw", "-s"])]
    #[case::length_k(&["map", "-l", "200k", "r.raw"])]
    #[case::length_long(&["map", "--max-length=1", "--output=json", "r.raw"])]
    #[case::length_abbreviated(&["map", "--max=256k", "r.raw"])]
    #[case::length_zero(&["map", "-l", "0", "--output=json", "r.raw"])]
    #[case::length_word(&["map", "-l", "foo", "r.raw"])]
    #[case::length_negative(&["map", "-l", "-1", "r.raw"])]
    #[case::length_max(&["map", "-l", "9223372036854775807", "--output=json", "r.raw"])]
    #[case::length_missing_value(&["map", "r.raw", "--max-length"])]
    #[case::window_overflows(&["map", "-s", "4611686018427387904", "-l", "4611686018427387904", "--output=json", "r.raw"])]
    #[case::window_wraps(&["map", "-s", "1", "-l", "9223372036854775807", "--output=json", "r.raw"])]
    #[case::help(&["map", "--help=x", "r.raw"])]
    fn case(
        #[case] args: &[&str],
        #[values("5.2.0", "7.2.18", "7.2.22", "10.0.2", "10.0.13", "11.1.3")] version: &str,
    ) {
        super::same(args, version);
    }
}

/// Sparse raw files, whole and in windows.
mod raw {
    use rstest::rstest;

    #[rstest]
    #[case::data_in_middle(&["r.raw"])]
    #[case::runs(&["holes.raw"])]
    #[case::empty(&["empty.raw"])]
    #[case::odd_length(&["odd.raw"])]
    #[case::three_bytes(&["tiny.raw"])]
    #[case::all_data(&["full.raw"])]
    #[case::data_then_hole(&["head.raw"])]
    #[case::hole_then_last_byte(&["last.raw"])]
    #[case::written_zeros(&["zeros.raw"])]
    #[case::window_unaligned(&["-s", "4097", "-l", "70000", "holes.raw"])]
    #[case::window_in_data(&["-s", "1000", "-l", "1000", "full.raw"])]
    #[case::window_across_data(&["-s", "300k", "-l", "100k", "holes.raw"])]
    #[case::window_to_end(&["-s", "2M", "holes.raw"])]
    #[case::window_past_end(&["-s", "4M", "holes.raw"])]
    #[case::window_at_end(&["-s", "3M", "holes.raw"])]
    #[case::window_inside_last_sector(&["-s", "999", "odd.raw"])]
    #[case::window_past_odd_end(&["-s", "1001", "odd.raw"])]
    #[case::window_on_last_byte(&["-s", "99999", "last.raw"])]
    #[case::window_longer_than_disk(&["-s", "1", "-l", "1G", "head.raw"])]
    #[case::window_empty_disk(&["-s", "0", "-l", "0", "empty.raw"])]
    fn case(
        #[case] args: &[&str],
        #[values("human", "json")] output: &str,
        #[values("5.2.0", "7.2.18", "7.2.22", "10.0.2", "10.0.13", "11.1.3")] version: &str,
    ) {
        let output = format!("--output={output}");
        let mut line = vec!["map", output.as_str()];
        line.extend(args);
        super::same(&line, version);
    }
}

/// Images of every format, made by the oracle, mapped whole and in
/// windows.
mod formats {
    use crate::util::{oracle_or_skip, Transcript};
    use rstest::rstest;
    use std::path::Path;

    /// Runs the oracle's qemu-img (`qemu-io` when `args` starts with
    /// `io`) in `dir`; it must succeed.
    fn oracle(t: &Transcript, dir: &Path, args: &[&str]) {
        let Some(qemu) = oracle_or_skip() else { return };
        match args.split_first() {
            Some((&"io", rest)) => {
                t.run_ok(&qemu.path.with_file_name("qemu-io"), rest, dir);
            }
            _ => {
                t.run_ok(&qemu.path, args, dir);
            }
        }
    }

    /// The file name of the image `kind` names.
    fn image_of(kind: &str) -> &'static str {
        match kind {
            "chain" => "top.qcow2",
            k if k.starts_with("vmdk") => "t.vmdk",
            k if k.starts_with("vpc") => "t.vpc",
            "vhdx" => "t.vhdx",
            _ => "t.qcow2",
        }
    }

    /// Makes the image `kind` names in `dir` ([`image_of`]).
    fn make(t: &Transcript, dir: &Path, kind: &str) {
        let run = |args: &[&str]| oracle(t, dir, args);
        let two_writes = |fmt: &str, image: &str| {
            run(&["io", "-f", fmt, "-c", "write -P 5 1000k 70k", "-c", "write -P 6 3M 4k", image]);
        };
        match kind {
            // Data in both layers, a zero cluster, a compressed cluster,
            // ranges no layer holds.
            "chain" => {
                run(&["create", "-q", "-f", "qcow2", "base.qcow2", "1M"]);
                run(&["io", "-c", "write -P 1 0 64k", "-c", "write -P 2 512k 64k", "base.qcow2"]);
                run(&[
                    "create",
                    "-q",
                    "-f",
                    "qcow2",
                    "-b",
                    "base.qcow2",
                    "-F",
                    "qcow2",
                    "top.qcow2",
                ]);
                let writes = ["write -P 3 32k 64k", "write -z 600k 40k", "write -c -P 4 768k 64k"];
                run(&["io", "-c", writes[0], "-c", writes[1], "-c", writes[2], "top.qcow2"]);
            }
            // The data in another file, named in the map.
            "data_file" => {
                run(&["create", "-q", "-f", "qcow2", "-o", "data_file=d.raw", "t.qcow2", "4M"]);
                two_writes("qcow2", "t.qcow2");
            }
            "qcow2_small_clusters" => {
                run(&["create", "-q", "-f", "qcow2", "-o", "cluster_size=4k", "t.qcow2", "4M"]);
                two_writes("qcow2", "t.qcow2");
            }
            "vmdk" => {
                run(&["create", "-q", "-f", "vmdk", "t.vmdk", "4M"]);
                two_writes("vmdk", "t.vmdk");
            }
            "vmdk_flat" => {
                run(&[
                    "create",
                    "-q",
                    "-f",
                    "vmdk",
                    "-o",
                    "subformat=monolithicFlat",
                    "t.vmdk",
                    "4M",
                ]);
                two_writes("vmdk", "t.vmdk");
            }
            "vmdk_split" => {
                let o = "subformat=twoGbMaxExtentSparse";
                run(&["create", "-q", "-f", "vmdk", "-o", o, "t.vmdk", "4M"]);
                two_writes("vmdk", "t.vmdk");
            }
            "vpc" => {
                run(&["create", "-q", "-f", "vpc", "t.vpc", "4M"]);
                two_writes("vpc", "t.vpc");
            }
            "vpc_fixed" => {
                run(&["create", "-q", "-f", "vpc", "-o", "subformat=fixed", "t.vpc", "4M"]);
                two_writes("vpc", "t.vpc");
            }
            "vhdx" => {
                run(&["create", "-q", "-f", "vhdx", "t.vhdx", "4M"]);
                two_writes("vhdx", "t.vhdx");
            }
            other => panic!("no image kind {other}"),
        }
    }

    #[rstest]
    fn case(
        #[values(
            "chain",
            "data_file",
            "qcow2_small_clusters",
            "vmdk",
            "vmdk_flat",
            "vmdk_split",
            "vpc",
            "vpc_fixed",
            "vhdx"
        )]
        kind: &str,
        #[values("", "-s 1000 -l 100000", "-s 65537 -l 3M")] window: &str,
        #[values("human", "json")] output: &str,
        #[values("5.2.0", "7.2.18", "7.2.22", "10.0.2", "10.0.13", "11.1.3")] version: &str,
    ) {
        let output = format!("--output={output}");
        let mut args = vec!["map", output.as_str()];
        args.extend(window.split_whitespace());
        args.push(image_of(kind));
        super::same_after(|t, dir| make(t, dir, kind), &args, version);
    }
}
