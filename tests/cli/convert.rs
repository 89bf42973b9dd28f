//! `convert`'s command line on every qemu-img version: the option tables,
//! the checks before anything is opened, the refusals before and after
//! the target is created, and what each leaves on disk (docs/compat.md
//! §11.1). Every command line runs in a fresh folder holding the same
//! sources, once with qemu-img V and once with instar speaking as V; both
//! must print the same (program names aside), exit alike and leave the
//! same files, byte for byte.

use super::{assert_same_output, Outcome};
use crate::util::{edit, instar, qemu_if_installed, tempdir, Transcript};
use instar_cli::QEMU_VERSION_VAR;
use instar_matrix::cases::Target;
use instar_matrix::masks;
use instar_matrix::QemuImg;
use rstest::rstest;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// `src.raw`'s length: 4 MiB of data.
const SRC_LEN: usize = 4 << 20;

/// `small.raw`'s length: 1 MiB of zeros, smaller than `src.raw`.
const SMALL_LEN: usize = 1 << 20;

/// The qcow2 bitmaps extension's magic.
const EXT_BITMAPS: u32 = 0x2385_2875;

/// The in-use flag of a bitmap directory entry.
const BME_FLAG_IN_USE: u32 = 1;

/// The sources besides `src.raw`, `small.raw` and `src.qcow2`, which
/// every case has.
#[derive(Debug, Clone, Copy)]
enum Fixture {
    /// Nothing more.
    Plain,
    /// `top.qcow2`, a qcow2 over `src.raw`.
    Overlay,
    /// A folder `dd`.
    Folder,
    /// `b.qcow2` with two persistent bitmaps.
    Bitmap,
    /// `b.qcow2` with two persistent bitmaps, the first left in use.
    BrokenBitmap,
    /// `q.qcow2` with its data in the external file `d.raw`.
    DataFile,
    /// `f.vmdk`, a monolithicFlat vmdk over `f-flat.vmdk`.
    FlatVmdk,
    /// `s.vmdk`, a twoGbMaxExtentSparse vmdk with its extent `s-s001.vmdk`.
    SplitVmdk,
}

/// Puts the sources of `fixture` in `dir`: made with `qemu` once per test
/// binary (under the target's temporary folder) and copied from there,
/// so that each case spends its time on the two converts it compares.
fn make_sources(t: &Transcript, qemu: &QemuImg, dir: &Path, fixture: Fixture) {
    static MADE: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let key = format!("{}-{fixture:?}", qemu.version);
    let made = {
        let mut map = MADE.get_or_init(Mutex::default).lock().expect("the sources' map");
        map.entry(key.clone())
            .or_insert_with(|| {
                let at =
                    Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-convert-sources").join(&key);
                let _ = std::fs::remove_dir_all(&at);
                std::fs::create_dir_all(&at).expect("the sources' folder");
                build_sources(t, qemu, &at, fixture);
                at
            })
            .clone()
    };
    for e in std::fs::read_dir(&made).expect("the made sources") {
        let e = e.expect("a made source");
        if e.path().is_dir() {
            std::fs::create_dir(dir.join(e.file_name())).expect("a folder");
        } else {
            std::fs::copy(e.path(), dir.join(e.file_name())).expect("a copy");
        }
    }
}

/// Makes the sources of `fixture` in `dir` with `qemu`.
fn build_sources(t: &Transcript, qemu: &QemuImg, dir: &Path, fixture: Fixture) {
    #[allow(clippy::cast_possible_truncation, reason = "a byte pattern")]
    let data: Vec<u8> = (0..SRC_LEN).map(|i| (i * 7 + 3) as u8).collect();
    std::fs::write(dir.join("src.raw"), data).expect("src.raw");
    std::fs::write(dir.join("small.raw"), vec![0u8; SMALL_LEN]).expect("small.raw");
    t.run_ok(&qemu.path, &["convert", "-O", "qcow2", "src.raw", "src.qcow2"], dir);
    match fixture {
        Fixture::Plain => {}
        Fixture::Overlay => {
            let args = ["create", "-q", "-f", "qcow2", "-b", "src.raw", "-F", "raw", "top.qcow2"];
            t.run_ok(&qemu.path, &args, dir);
        }
        Fixture::Folder => std::fs::create_dir(dir.join("dd")).expect("dd"),
        Fixture::DataFile => {
            let args = ["create", "-q", "-f", "qcow2", "-o", "data_file=d.raw", "q.qcow2", "1M"];
            t.run_ok(&qemu.path, &args, dir);
        }
        Fixture::FlatVmdk => {
            let args =
                ["create", "-q", "-f", "vmdk", "-o", "subformat=monolithicFlat", "f.vmdk", "1M"];
            t.run_ok(&qemu.path, &args, dir);
        }
        Fixture::SplitVmdk => {
            let args = [
                "create",
                "-q",
                "-f",
                "vmdk",
                "-o",
                "subformat=twoGbMaxExtentSparse",
                "s.vmdk",
                "1M",
            ];
            t.run_ok(&qemu.path, &args, dir);
        }
        Fixture::Bitmap | Fixture::BrokenBitmap => {
            t.run_ok(&qemu.path, &["create", "-q", "-f", "qcow2", "b.qcow2", "1M"], dir);
            t.run_ok(&qemu.path, &["bitmap", "--add", "b.qcow2", "bm0"], dir);
            t.run_ok(&qemu.path, &["bitmap", "--add", "b.qcow2", "bm1"], dir);
            if matches!(fixture, Fixture::BrokenBitmap) {
                mark_first_bitmap_in_use(&dir.join("b.qcow2"));
            }
        }
    }
}

/// Sets the in-use flag of the first bitmap of the qcow2 at `path`, as a
/// qemu that died with the bitmap loaded leaves it.
fn mark_first_bitmap_in_use(path: &Path) {
    let mut at = u64::from(edit::be32(path, 100));
    loop {
        let (magic, len) = (edit::be32(path, at), edit::be32(path, at + 4));
        assert_ne!(magic, 0, "no bitmaps extension");
        if magic == EXT_BITMAPS {
            let flags_at = edit::be64(path, at + 8 + 16) + 12;
            let flags = edit::be32(path, flags_at);
            edit::write_at(path, flags_at, &(flags | BME_FLAG_IN_USE).to_be_bytes());
            return;
        }
        at += 8 + u64::from(len).div_ceil(8) * 8;
    }
}

/// Runs `program convert args` in a copy of `sources`.
fn run_convert(
    t: &Transcript,
    sources: &Path,
    program: &Path,
    args: &[&str],
    vars: &[(&str, &str)],
) -> Outcome {
    let dir = tempdir();
    for e in std::fs::read_dir(sources).expect("the sources") {
        let e = e.expect("a source");
        if e.path().is_dir() {
            std::fs::create_dir(dir.path().join(e.file_name())).expect("a folder");
        } else {
            std::fs::copy(e.path(), dir.path().join(e.file_name())).expect("a copy");
        }
    }
    let argv: Vec<&str> = std::iter::once("convert").chain(args.iter().copied()).collect();
    let run = t.run_env(program, &argv, dir.path(), vars);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir.path())
        .expect("the run's folder")
        .map(|e| {
            let path = e.expect("a folder entry").path();
            let name = path.file_name().unwrap_or_default().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap_or_default())
        })
        .collect();
    files.sort();
    Outcome { run, program: program.display().to_string(), files }
}

/// qemu-img V's and instar's (as V) outcomes of `convert args` over the
/// same sources, or `None` after a skip.
fn both(
    version: &str,
    fixture: Fixture,
    args: &[&str],
) -> Option<(Transcript, Outcome, Outcome, Vec<String>)> {
    let qemu = qemu_if_installed(version)?;
    let t = Transcript::default();
    let sources = tempdir();
    make_sources(&t, qemu, sources.path(), fixture);
    let theirs = run_convert(&t, sources.path(), &qemu.path, args, &[]);
    let mine = run_convert(&t, sources.path(), instar(), args, &[(QEMU_VERSION_VAR, version)]);
    let mut names: Vec<String> = std::fs::read_dir(sources.path())
        .expect("the sources")
        .map(|e| e.expect("a source").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    Some((t, theirs, mine, names))
}

/// Whether qemu-img's copy failed halfway (after it created the target).
fn failed_halfway(outcome: &Outcome) -> bool {
    let stderr = &outcome.run.stderr;
    outcome.run.code != Some(0)
        && (stderr.contains("error while writing at byte")
            || stderr.contains("error while reading at byte"))
}

/// Fails unless both printed the same, exited alike and left the same
/// files with the same bytes.
fn assert_same_convert(version: &str, fixture: Fixture, args: &[&str]) {
    let Some((t, theirs, mine, sources)) = both(version, fixture, args) else { return };
    assert_same_output(&t, &theirs, &mine);
    if failed_halfway(&theirs) {
        // qemu-img leaves what it wrote; instar removes the files the
        // convert made (docs/compat.md §8.7): only the sources remain.
        t.check(mine.names() == sources, || {
            format!(
                "files left after a failed copy: instar {:?}, sources {sources:?}",
                mine.names()
            )
        });
        return;
    }
    t.check(theirs.names() == mine.names(), || {
        format!("files left: qemu-img {:?}, instar {:?}", theirs.names(), mine.names())
    });
    let target = target_format(args);
    for (q, i) in theirs.files.iter().zip(&mine.files) {
        // The target file of a format with random or time-based fields
        // (vmdk's CID, vpc's timestamp and UUID, vhdx's GUIDs) is compared
        // outside the masks `create` has; every other file whole.
        let same = q.1 == i.1
            || (q.0 == args.last().copied().unwrap_or_default()
                && target.is_some_and(|f| {
                    masks::compare_bytes(f, &q.1, &i.1).is_ok_and(|d| d.is_empty())
                }));
        t.check(same, || format!("{} differs", q.0));
    }
}

/// The target format `-O` names, as the masks know it.
fn target_format(args: &[&str]) -> Option<Target> {
    let at = args.iter().position(|a| *a == "-O")?;
    match *args.get(at + 1)? {
        "vpc" => Some(Target::Vhd),
        name => Target::from_name(name),
    }
}

/// The survey's command lines (option tables, value checks, the order of
/// the checks, -o help, -n, -l, backing files, -c, --bitmaps) and the
/// write locks, backing-file and --target-image-opts orders, once per
/// version. None needs a qcow2, vmdk, vpc or vhdx writer. A rate limit
/// converts `small.raw`: its zeros are not written, so the throttle
/// (qemu-img's `-r 1k` takes over an hour for `src.raw`) does not wait.
#[rstest]
#[case::nothing(Fixture::Plain, &[])]
#[case::src_raw(Fixture::Plain, &["src.raw"])]
#[case::src_raw_tt_f(Fixture::Plain, &["src.raw", "T", "-f"])]
#[case::src_raw_tt_oo(Fixture::Plain, &["src.raw", "T", "-O"])]
#[case::ss(Fixture::Plain, &["-S"])]
#[case::foo_src_raw_tt(Fixture::Plain, &["--foo", "src.raw", "T"])]
#[case::t_src_raw_tt(Fixture::Plain, &["--t", "src.raw", "T"])]
#[case::ta_src_raw_tt(Fixture::Plain, &["--ta", "src.raw", "T"])]
#[case::target_src_raw_tt(Fixture::Plain, &["--target", "src.raw", "T"])]
#[case::target_i_src_raw_tt(Fixture::Plain, &["--target-i", "src.raw", "T"])]
#[case::s_src_raw_tt(Fixture::Plain, &["--s", "src.raw", "T"])]
#[case::sa_src_raw_tt(Fixture::Plain, &["--sa", "src.raw", "T"])]
#[case::sk_src_raw_tt(Fixture::Plain, &["--sk", "src.raw", "T"])]
#[case::b_src_raw_tt(Fixture::Plain, &["--b", "src.raw", "T"])]
#[case::bi_src_raw_tt(Fixture::Plain, &["--bi", "src.raw", "T"])]
#[case::i_src_raw_tt(Fixture::Plain, &["--i", "src.raw", "T"])]
#[case::im_src_raw_tt(Fixture::Plain, &["--im", "src.raw", "T"])]
#[case::o_src_raw_tt(Fixture::Plain, &["--o", "src.raw", "T"])]
#[case::obj_x_src_raw_tt(Fixture::Plain, &["--obj", "x", "src.raw", "T"])]
#[case::f_src_raw_tt(Fixture::Plain, &["--f", "src.raw", "T"])]
#[case::fo_src_raw_tt(Fixture::Plain, &["--fo", "src.raw", "T"])]
#[case::c_src_raw_tt(Fixture::Plain, &["--c", "src.raw", "T"])]
#[case::co_src_raw_tt(Fixture::Plain, &["--co", "src.raw", "T"])]
#[case::p_src_raw_tt(Fixture::Plain, &["--p", "src.raw", "T"])]
#[case::q_src_raw_tt(Fixture::Plain, &["--q", "src.raw", "T"])]
#[case::n_src_raw_tt(Fixture::Plain, &["--n", "src.raw", "T"])]
#[case::m_2_src_raw_tt(Fixture::Plain, &["--m", "2", "src.raw", "T"])]
#[case::r_1mm_small_raw_tt(Fixture::Plain, &["--r", "1M", "small.raw", "T"])]
#[case::ww_src_raw_tt(Fixture::Plain, &["--W", "src.raw", "T"])]
#[case::uu_src_raw_tt(Fixture::Plain, &["--U", "src.raw", "T"])]
#[case::so_raw_src_raw_tt(Fixture::Plain, &["--so", "raw", "src.raw", "T"])]
#[case::source_format_raw_src_raw_tt(Fixture::Plain, &["--source-format", "raw", "src.raw", "T"])]
#[case::target_options_cluster_size_4k_oo_qcow2_src_raw_tt(Fixture::Plain, &["--target-options", "cluster_size=4k", "-O", "qcow2", "src.raw", "T"])]
#[case::compress_oo_qcow2_src_raw_tt(Fixture::Plain, &["--compress", "-O", "qcow2", "src.raw", "T"])]
#[case::sparse_size_8k_src_raw_tt(Fixture::Plain, &["--sparse-size", "8k", "src.raw", "T"])]
#[case::parallel_2_src_raw_tt(Fixture::Plain, &["--parallel", "2", "src.raw", "T"])]
#[case::oob_writes_src_raw_tt(Fixture::Plain, &["--oob-writes", "src.raw", "T"])]
#[case::rate_1mm_small_raw_tt(Fixture::Plain, &["--rate", "1M", "small.raw", "T"])]
#[case::no_create_src_raw_small_raw(Fixture::Plain, &["--no-create", "src.raw", "small.raw"])]
#[case::progress_src_raw_tt(Fixture::Plain, &["--progress", "src.raw", "T"])]
#[case::quiet_src_raw_tt(Fixture::Plain, &["--quiet", "src.raw", "T"])]
#[case::force_share_src_raw_tt(Fixture::Plain, &["--force-share", "src.raw", "T"])]
#[case::copy_range_offloading_src_raw_tt(Fixture::Plain, &["--copy-range-offloading", "src.raw", "T"])]
#[case::source_snapshot_x_src_qcow2_tt(Fixture::Plain, &["--source-snapshot", "x", "src.qcow2", "T"])]
#[case::snapshot_x_src_qcow2_tt(Fixture::Plain, &["--snapshot", "x", "src.qcow2", "T"])]
#[case::source_cache_none_src_raw_tt(Fixture::Plain, &["--source-cache", "none", "src.raw", "T"])]
#[case::target_cache_none_src_raw_tt(Fixture::Plain, &["--target-cache", "none", "src.raw", "T"])]
#[case::source_image_opts_driver_raw_file_filename_src_raw_tt(Fixture::Plain, &["--source-image-opts", "driver=raw,file.filename=src.raw", "T"])]
#[case::image_opts_driver_raw_file_filename_src_raw_tt(Fixture::Plain, &["--image-opts", "driver=raw,file.filename=src.raw", "T"])]
#[case::c_src_raw_tt_2(Fixture::Plain, &["-c", "src.raw", "T"])]
#[case::c_oo_vpc_src_raw_tt(Fixture::Plain, &["-c", "-O", "vpc", "src.raw", "T"])]
#[case::c_oo_vhdx_src_raw_tt(Fixture::Plain, &["-c", "-O", "vhdx", "src.raw", "T"])]
#[case::c_oo_qcow2_o_preallocation_metadata_src_raw_tt(Fixture::Plain, &["-c", "-O", "qcow2", "-o", "preallocation=metadata", "src.raw", "T"])]
#[case::c_oo_qcow2_o_encrypt_format_luks_src_raw_tt(Fixture::Plain, &["-c", "-O", "qcow2", "-o", "encrypt.format=luks", "src.raw", "T"])]
#[case::c_oo_qcow2_o_encryption_on_src_raw_tt(Fixture::Plain, &["-c", "-O", "qcow2", "-o", "encryption=on", "src.raw", "T"])]
#[case::c_cc_oo_qcow2_src_raw_tt(Fixture::Plain, &["-c", "-C", "-O", "qcow2", "src.raw", "T"])]
#[case::cc_ss_4k_src_raw_tt(Fixture::Plain, &["-C", "-S", "4k", "src.raw", "T"])]
#[case::cc_salvage_src_raw_tt(Fixture::Plain, &["-C", "--salvage", "src.raw", "T"])]
#[case::cc_src_raw_tt(Fixture::Plain, &["-C", "src.raw", "T"])]
#[case::skip_broken_bitmaps_c_cc_src_raw_tt(Fixture::Plain, &["--skip-broken-bitmaps", "-c", "-C", "src.raw", "T"])]
#[case::c_cc_ss_4k_src_raw_tt(Fixture::Plain, &["-c", "-C", "-S", "4k", "src.raw", "T"])]
#[case::target_image_opts_src_raw_tt(Fixture::Plain, &["--target-image-opts", "src.raw", "T"])]
#[case::target_image_opts_o_x_y_src_raw_tt(Fixture::Plain, &["--target-image-opts", "-o", "x=y", "src.raw", "T"])]
#[case::n_o_cluster_size_4k_src_raw_small_raw(Fixture::Plain, &["-n", "-o", "cluster_size=4k", "src.raw", "small.raw"])]
#[case::n_o_help_src_raw_small_raw(Fixture::Plain, &["-n", "-o", "help", "src.raw", "small.raw"])]
#[case::n_src_raw_tt_2(Fixture::Plain, &["-n", "src.raw", "T"])]
#[case::n_src_raw_small_raw(Fixture::Plain, &["-n", "src.raw", "small.raw"])]
#[case::n_oo_raw_src_raw_small_raw(Fixture::Plain, &["-n", "-O", "raw", "src.raw", "small.raw"])]
#[case::n_f_raw_oo_raw_small_raw_src_raw(Fixture::Plain, &["-n", "-f", "raw", "-O", "raw", "small.raw", "src.raw"])]
#[case::target_is_zero_src_raw_tt(Fixture::Plain, &["--target-is-zero", "src.raw", "T"])]
#[case::target_is_zero_n_oo_qcow2_bb_src_raw_ff_raw_small_raw_src_qcow2(Fixture::Plain, &["--target-is-zero", "-n", "-O", "qcow2", "-B", "src.raw", "-F", "raw", "small.raw", "src.qcow2"])]
#[case::target_is_zero_n_oo_raw_small_raw_src_raw(Fixture::Plain, &["--target-is-zero", "-n", "-O", "raw", "small.raw", "src.raw"])]
#[case::n_target_is_zero_c_src_raw_tt(Fixture::Plain, &["-n", "--target-is-zero", "-c", "src.raw", "T"])]
#[case::n_ss_0_oo_raw_small_raw_src_raw(Fixture::Plain, &["-n", "-S", "0", "-O", "raw", "small.raw", "src.raw"])]
#[case::bb_src_raw_src_raw_tt(Fixture::Plain, &["-B", "src.raw", "src.raw", "T"])]
#[case::bb_src_raw_oo_raw_src_raw_tt(Fixture::Plain, &["-B", "src.raw", "-O", "raw", "src.raw", "T"])]
#[case::bb_src_raw_ff_raw_oo_vmdk_src_raw_tt(Fixture::Plain, &["-B", "src.raw", "-F", "raw", "-O", "vmdk", "src.raw", "T"])]
#[case::bb_src_raw_ff_raw_oo_vpc_src_raw_tt(Fixture::Plain, &["-B", "src.raw", "-F", "raw", "-O", "vpc", "src.raw", "T"])]
#[case::bb_src_raw_ff_raw_oo_vhdx_src_raw_tt(Fixture::Plain, &["-B", "src.raw", "-F", "raw", "-O", "vhdx", "src.raw", "T"])]
#[case::bb_missing_img_ff_raw_oo_qcow2_src_raw_tt(Fixture::Plain, &["-B", "missing.img", "-F", "raw", "-O", "qcow2", "src.raw", "T"])]
#[case::bb_src_raw_ff_raw_oo_qcow2_src_raw_small_raw_tt(Fixture::Plain, &["-B", "src.raw", "-F", "raw", "-O", "qcow2", "src.raw", "small.raw", "T"])]
#[case::ff_raw_oo_qcow2_src_raw_tt(Fixture::Plain, &["-F", "raw", "-O", "qcow2", "src.raw", "T"])]
#[case::ss_0_src_raw_tt(Fixture::Plain, &["-S", "0", "src.raw", "T"])]
#[case::ss_512_src_raw_tt(Fixture::Plain, &["-S", "512", "src.raw", "T"])]
#[case::ss_511_src_raw_tt(Fixture::Plain, &["-S", "511", "src.raw", "T"])]
#[case::ss_1k_src_raw_tt(Fixture::Plain, &["-S", "1k", "src.raw", "T"])]
#[case::ss_4k_src_raw_tt(Fixture::Plain, &["-S", "4k", "src.raw", "T"])]
#[case::ss_16mm_src_raw_tt(Fixture::Plain, &["-S", "16M", "src.raw", "T"])]
#[case::ss_16777728_src_raw_tt(Fixture::Plain, &["-S", "16777728", "src.raw", "T"])]
#[case::ss_32mm_src_raw_tt(Fixture::Plain, &["-S", "32M", "src.raw", "T"])]
#[case::ss_1_src_raw_tt(Fixture::Plain, &["-S", "-1", "src.raw", "T"])]
#[case::ss_abc_src_raw_tt(Fixture::Plain, &["-S", "abc", "src.raw", "T"])]
#[case::ss_1e3_src_raw_tt(Fixture::Plain, &["-S", "1e3", "src.raw", "T"])]
#[case::ss_1_5k_src_raw_tt(Fixture::Plain, &["-S", "1.5k", "src.raw", "T"])]
#[case::ss_empty_src_raw_tt(Fixture::Plain, &["-S", "", "src.raw", "T"])]
#[case::m_0_src_raw_tt(Fixture::Plain, &["-m", "0", "src.raw", "T"])]
#[case::m_1_src_raw_tt(Fixture::Plain, &["-m", "1", "src.raw", "T"])]
#[case::m_16_src_raw_tt(Fixture::Plain, &["-m", "16", "src.raw", "T"])]
#[case::m_17_src_raw_tt(Fixture::Plain, &["-m", "17", "src.raw", "T"])]
#[case::m_abc_src_raw_tt(Fixture::Plain, &["-m", "abc", "src.raw", "T"])]
#[case::m_0x10_src_raw_tt(Fixture::Plain, &["-m", "0x10", "src.raw", "T"])]
#[case::m_1_ww_src_raw_tt(Fixture::Plain, &["-m", "1", "-W", "src.raw", "T"])]
#[case::ww_src_raw_tt_2(Fixture::Plain, &["-W", "src.raw", "T"])]
#[case::r_0_src_raw_tt(Fixture::Plain, &["-r", "0", "src.raw", "T"])]
#[case::r_abc_src_raw_tt(Fixture::Plain, &["-r", "abc", "src.raw", "T"])]
#[case::r_1k_small_raw_tt(Fixture::Plain, &["-r", "1k", "small.raw", "T"])]
#[case::r_1_src_raw_tt(Fixture::Plain, &["-r", "-1", "src.raw", "T"])]
#[case::skip_broken_bitmaps_src_qcow2_tt(Fixture::Plain, &["--skip-broken-bitmaps", "src.qcow2", "T"])]
#[case::bitmaps_oo_raw_src_qcow2_tt(Fixture::Plain, &["--bitmaps", "-O", "raw", "src.qcow2", "T"])]
#[case::bitmaps_oo_qcow2_src_raw_tt(Fixture::Plain, &["--bitmaps", "-O", "qcow2", "src.raw", "T"])]
#[case::bitmaps_oo_qcow2_src_qcow2_src_qcow2_tt(Fixture::Plain, &["--bitmaps", "-O", "qcow2", "src.qcow2", "src.qcow2", "T"])]
#[case::l_snap_src_qcow2_tt(Fixture::Plain, &["-l", "snap", "src.qcow2", "T"])]
#[case::l_snapshot_name_x_src_qcow2_tt(Fixture::Plain, &["-l", "snapshot.name=x", "src.qcow2", "T"])]
#[case::l_snapshot_id_1_src_qcow2_tt(Fixture::Plain, &["-l", "snapshot.id=1", "src.qcow2", "T"])]
#[case::l_snapshot_foo_x_src_qcow2_tt(Fixture::Plain, &["-l", "snapshot.foo=x", "src.qcow2", "T"])]
#[case::l_snapshot_name_x_snapshot_id_2_src_qcow2_tt(Fixture::Plain, &["-l", "snapshot.name=x,snapshot.id=2", "src.qcow2", "T"])]
#[case::l_snap_src_qcow2_src_qcow2_tt(Fixture::Plain, &["-l", "snap", "src.qcow2", "src.qcow2", "T"])]
#[case::l_snapshot_name_x_src_qcow2_src_qcow2_tt(Fixture::Plain, &["-l", "snapshot.name=x", "src.qcow2", "src.qcow2", "T"])]
#[case::l_snap_src_raw_tt(Fixture::Plain, &["-l", "snap", "src.raw", "T"])]
#[case::src_raw_small_raw_tt(Fixture::Plain, &["src.raw", "small.raw", "T"])]
#[case::o_help(Fixture::Plain, &["-o", "help"])]
#[case::o_help_oo_qcow2(Fixture::Plain, &["-o", "help", "-O", "qcow2"])]
#[case::o_help_src_raw_tt(Fixture::Plain, &["-o", "help", "src.raw", "T"])]
#[case::oo_qcow2_o_help_src_raw_tt(Fixture::Plain, &["-O", "qcow2", "-o", "help", "src.raw", "T"])]
#[case::oo_qcow2_o_q_src_raw_tt(Fixture::Plain, &["-O", "qcow2", "-o", "?", "src.raw", "T"])]
#[case::oo_foo_o_help_src_raw_tt(Fixture::Plain, &["-O", "foo", "-o", "help", "src.raw", "T"])]
#[case::target_image_opts_n_o_help_src_raw_tt(Fixture::Plain, &["--target-image-opts", "-n", "-o", "help", "src.raw", "T"])]
#[case::oo_foo_src_raw_tt(Fixture::Plain, &["-O", "foo", "src.raw", "T"])]
#[case::f_foo_src_raw_tt(Fixture::Plain, &["-f", "foo", "src.raw", "T"])]
#[case::missing_img_tt(Fixture::Plain, &["missing.img", "T"])]
#[case::oo_qcow2_missing_img_tt(Fixture::Plain, &["-O", "qcow2", "missing.img", "T"])]
#[case::t_foo_src_raw_tt(Fixture::Plain, &["-t", "foo", "src.raw", "T"])]
#[case::tt_foo_src_raw_tt(Fixture::Plain, &["-T", "foo", "src.raw", "T"])]
#[case::tt_foo_missing_img_tt(Fixture::Plain, &["-T", "foo", "missing.img", "T"])]
#[case::t_none_src_raw_tt(Fixture::Plain, &["-t", "none", "src.raw", "T"])]
#[case::o_cluster_size_4k_src_raw_tt(Fixture::Plain, &["-o", "cluster_size=4k", "src.raw", "T"])]
#[case::oo_qcow2_o_foo_bar_src_raw_tt(Fixture::Plain, &["-O", "qcow2", "-o", "foo=bar", "src.raw", "T"])]
#[case::oo_qcow2_o_cluster_size_3k_src_raw_tt(Fixture::Plain, &["-O", "qcow2", "-o", "cluster_size=3k", "src.raw", "T"])]
#[case::oo_qcow2_o_cluster_size_4k_src_raw_tt(Fixture::Plain, &["-O", "qcow2", "-o", "cluster_size=4k,", "src.raw", "T"])]
#[case::salvage_src_raw_tt(Fixture::Plain, &["--salvage", "src.raw", "T"])]
#[case::q_oo_foo_src_raw_tt(Fixture::Plain, &["-q", "-O", "foo", "src.raw", "T"])]
#[case::p_oo_foo_src_raw_tt(Fixture::Plain, &["-p", "-O", "foo", "src.raw", "T"])]
#[case::image_opts_f_raw_src_raw_tt(Fixture::Plain, &["--image-opts", "-f", "raw", "src.raw", "T"])]
#[case::f_qcow2_src_raw_tt(Fixture::Plain, &["-f", "qcow2", "src.raw", "T"])]
#[case::c_oo_qcow2_o_compression_type_foo_src_raw_tt(Fixture::Plain, &["-c", "-O", "qcow2", "-o", "compression_type=foo", "src.raw", "T"])]
#[case::c_oo_qcow2_o_compat_0_10_compression_type_zstd_src_raw_tt(Fixture::Plain, &["-c", "-O", "qcow2", "-o", "compat=0.10,compression_type=zstd", "src.raw", "T"])]
#[case::oo_raw_src_raw_src_raw(Fixture::Plain, &["-O", "raw", "src.raw", "src.raw"])]
#[case::uu_oo_raw_src_raw_src_raw(Fixture::Plain, &["-U", "-O", "raw", "src.raw", "src.raw"])]
#[case::oo_raw_src_raw_small_raw_src_raw(Fixture::Plain, &["-O", "raw", "src.raw", "small.raw", "src.raw"])]
#[case::n_oo_raw_small_raw_small_raw(Fixture::Plain, &["-n", "-O", "raw", "small.raw", "small.raw"])]
#[case::n_uu_small_raw_small_raw(Fixture::Plain, &["-n", "-U", "small.raw", "small.raw"])]
#[case::oo_raw_src_qcow2_src_qcow2(Fixture::Plain, &["-O", "raw", "src.qcow2", "src.qcow2"])]
#[case::oo_raw_src_raw_src_raw_2(Fixture::Plain, &["-O", "raw", "src.raw", "./src.raw"])]
#[case::oo_qcow2_bb_src_raw_ff_raw_src_raw_src_raw(Fixture::Plain, &["-O", "qcow2", "-B", "src.raw", "-F", "raw", "src.raw", "src.raw"])]
#[case::oo_raw_top_qcow2_src_raw(Fixture::Overlay, &["-O", "raw", "top.qcow2", "src.raw"])]
#[case::n_oo_raw_top_qcow2_src_raw(Fixture::Overlay, &["-n", "-O", "raw", "top.qcow2", "src.raw"])]
#[case::uu_oo_raw_top_qcow2_src_raw(Fixture::Overlay, &["-U", "-O", "raw", "top.qcow2", "src.raw"])]
#[case::n_uu_oo_raw_top_qcow2_small_raw(Fixture::Overlay, &["-n", "-U", "-O", "raw", "top.qcow2", "small.raw"])]
#[case::bb_src_raw_ff_qcow2_oo_qcow2_small_raw_tt(Fixture::Plain, &["-B", "src.raw", "-F", "qcow2", "-O", "qcow2", "small.raw", "T"])]
#[case::bb_nodir_x_ff_raw_oo_qcow2_small_raw_tt(Fixture::Plain, &["-B", "nodir/x", "-F", "raw", "-O", "qcow2", "small.raw", "T"])]
#[case::bb_dd_ff_raw_oo_qcow2_small_raw_tt(Fixture::Folder, &["-B", "dd", "-F", "raw", "-O", "qcow2", "small.raw", "T"])]
#[case::bb_src_raw_ff_vmdk_oo_qcow2_small_raw_tt(Fixture::Plain, &["-B", "src.raw", "-F", "vmdk", "-O", "qcow2", "small.raw", "T"])]
#[case::bitmaps_oo_raw_b_qcow2_tt(Fixture::BrokenBitmap, &["--bitmaps", "-O", "raw", "b.qcow2", "T"])]
#[case::bitmaps_skip_broken_bitmaps_oo_raw_b_qcow2_tt(Fixture::BrokenBitmap, &["--bitmaps", "--skip-broken-bitmaps", "-O", "raw", "b.qcow2", "T"])]
#[case::c_bitmaps_oo_raw_b_qcow2_tt(Fixture::BrokenBitmap, &["-c", "--bitmaps", "-O", "raw", "b.qcow2", "T"])]
#[case::bitmaps_oo_raw_b_qcow2_tt_2(Fixture::Bitmap, &["--bitmaps", "-O", "raw", "b.qcow2", "T"])]
#[case::target_image_opts_n_missing_img_tt(Fixture::Plain, &["--target-image-opts", "-n", "missing.img", "T"])]
#[case::target_image_opts_n_t_foo_src_raw_tt(Fixture::Plain, &["--target-image-opts", "-n", "-t", "foo", "src.raw", "T"])]
#[case::target_image_opts_n(Fixture::Plain, &["--target-image-opts", "-n"])]
#[case::target_image_opts_n_tt_foo_src_raw_tt(Fixture::Plain, &["--target-image-opts", "-n", "-T", "foo", "src.raw", "T"])]
#[case::target_image_opts_n_l_snap_src_qcow2_tt(Fixture::Plain, &["--target-image-opts", "-n", "-l", "snap", "src.qcow2", "T"])]
#[case::target_image_opts_n_bitmaps_src_raw_tt(Fixture::Plain, &["--target-image-opts", "-n", "--bitmaps", "src.raw", "T"])]
#[case::target_image_opts_n_p_oo_foo_src_raw_tt(Fixture::Plain, &["--target-image-opts", "-n", "-p", "-O", "foo", "src.raw", "T"])]
#[case::lock_data_file(Fixture::DataFile, &["-O", "raw", "q.qcow2", "d.raw"])]
#[case::lock_data_file_n(Fixture::DataFile, &["-n", "-O", "raw", "q.qcow2", "d.raw"])]
#[case::lock_sparse_extent(Fixture::SplitVmdk, &["-O", "raw", "s.vmdk", "s-s001.vmdk"])]
#[case::lock_flat_extent(Fixture::FlatVmdk, &["-O", "raw", "f.vmdk", "f-flat.vmdk"])]
#[case::lock_flat_extent_n(Fixture::FlatVmdk, &["-n", "-O", "raw", "f.vmdk", "f-flat.vmdk"])]
#[case::lock_flat_extent_u(Fixture::FlatVmdk, &["-U", "-O", "raw", "f.vmdk", "f-flat.vmdk"])]
#[case::target_image_opts_n_src_raw_tt(Fixture::Plain, &["--target-image-opts", "-n", "src.raw", "T"])]
#[case::target_image_opts_n_src_raw_small_raw(Fixture::Plain, &["--target-image-opts", "-n", "src.raw", "driver=raw,file.filename=small.raw"])]
fn convert_by_version(
    #[case] fixture: Fixture,
    #[case] args: &[&str],
    #[values("5.2.0", "7.2.18", "7.2.22", "10.0.2", "10.0.13", "11.1.3")] version: &str,
) {
    assert_same_convert(version, fixture, args);
}

/// The survey's command lines that write a qcow2, vmdk or vpc target (or
/// read one back with `-n`): they pass once those writers land.
#[rstest]
#[case::target_format_qcow2_src_raw_tt(Fixture::Plain, &["--target-format", "qcow2", "src.raw", "T"])]
#[case::target_format_options_cluster_size_4k_oo_qcow2_src_raw_tt(Fixture::Plain, &["--target-format-options", "cluster_size=4k", "-O", "qcow2", "src.raw", "T"])]
#[case::backing_src_raw_ff_raw_oo_qcow2_src_raw_tt(Fixture::Plain, &["--backing", "src.raw", "-F", "raw", "-O", "qcow2", "src.raw", "T"])]
#[case::backing_format_raw_bb_src_raw_oo_qcow2_src_raw_tt(Fixture::Plain, &["--backing-format", "raw", "-B", "src.raw", "-O", "qcow2", "src.raw", "T"])]
#[case::b_src_raw_ff_raw_oo_qcow2_src_raw_tt(Fixture::Plain, &["-b", "src.raw", "-F", "raw", "-O", "qcow2", "src.raw", "T"])]
#[case::c_oo_vmdk_src_raw_tt(Fixture::Plain, &["-c", "-O", "vmdk", "src.raw", "T"])]
#[case::c_oo_qcow2_o_preallocation_off_src_raw_tt(Fixture::Plain, &["-c", "-O", "qcow2", "-o", "preallocation=off", "src.raw", "T"])]
#[case::n_oo_qcow2_small_raw_src_qcow2(Fixture::Plain, &["-n", "-O", "qcow2", "small.raw", "src.qcow2"])]
#[case::n_oo_qcow2_src_raw_src_qcow2(Fixture::Plain, &["-n", "-O", "qcow2", "src.raw", "src.qcow2"])]
#[case::bb_src_raw_oo_qcow2_src_raw_tt(Fixture::Plain, &["-B", "src.raw", "-O", "qcow2", "src.raw", "T"])]
#[case::bb_src_raw_ff_raw_oo_qcow2_src_raw_tt(Fixture::Plain, &["-B", "src.raw", "-F", "raw", "-O", "qcow2", "src.raw", "T"])]
#[case::o_backing_file_src_raw_oo_qcow2_src_raw_tt(Fixture::Plain, &["-o", "backing_file=src.raw", "-O", "qcow2", "src.raw", "T"])]
#[case::o_backing_file_src_raw_backing_fmt_raw_oo_qcow2_src_raw_tt(Fixture::Plain, &["-o", "backing_file=src.raw,backing_fmt=raw", "-O", "qcow2", "src.raw", "T"])]
#[case::bitmaps_oo_qcow2_src_qcow2_tt(Fixture::Plain, &["--bitmaps", "-O", "qcow2", "src.qcow2", "T"])]
#[case::bitmaps_oo_vmdk_src_qcow2_tt(Fixture::Plain, &["--bitmaps", "-O", "vmdk", "src.qcow2", "T"])]
#[case::oo_qcow2_src_raw_small_raw_tt(Fixture::Plain, &["-O", "qcow2", "src.raw", "small.raw", "T"])]
#[case::oo_qcow2_o_size_1mm_src_raw_tt(Fixture::Plain, &["-O", "qcow2", "-o", "size=1M", "src.raw", "T"])]
#[case::oo_vpc_o_subformat_fixed_src_raw_tt(Fixture::Plain, &["-O", "vpc", "-o", "subformat=fixed", "src.raw", "T"])]
#[case::oo_vmdk_o_subformat_streamooptimized_src_raw_tt(Fixture::Plain, &["-O", "vmdk", "-o", "subformat=streamOptimized", "src.raw", "T"])]
#[case::oo_qcow2_o_compression_type_zstd_src_raw_tt(Fixture::Plain, &["-O", "qcow2", "-o", "compression_type=zstd", "src.raw", "T"])]
#[case::c_oo_qcow2_o_compression_type_zstd_src_raw_tt(Fixture::Plain, &["-c", "-O", "qcow2", "-o", "compression_type=zstd", "src.raw", "T"])]
#[case::c_oo_qcow2_o_data_file_dd_src_raw_tt(Fixture::Plain, &["-c", "-O", "qcow2", "-o", "data_file=D", "src.raw", "T"])]
#[case::broken_bitmaps_oo_qcow2_b_qcow2_tt(Fixture::BrokenBitmap, &["--bitmaps", "-O", "qcow2", "b.qcow2", "T"])]
fn convert_into_new_formats_by_version(
    #[case] fixture: Fixture,
    #[case] args: &[&str],
    #[values("5.2.0", "7.2.18", "7.2.22", "10.0.2", "10.0.13", "11.1.3")] version: &str,
) {
    assert_same_convert(version, fixture, args);
}

/// An image written over the raw source it reads: qemu-img 6.1 and later
/// refuse for the lock, and instar as they do; qemu-img 5.2 goes ahead
/// (what it copies depends on how its reads and writes interleave), and
/// instar refuses, the source left as it was (docs/compat.md §8.5a).
#[rstest]
fn convert_image_over_its_source(
    #[values("5.2.0", "7.2.18", "7.2.22", "10.0.2", "10.0.13", "11.1.3")] version: &str,
) {
    let args = ["-O", "qcow2", "src.raw", "src.raw"];
    if version != "5.2.0" {
        assert_same_convert(version, Fixture::Plain, &args);
        return;
    }
    let Some(qemu) = qemu_if_installed(version) else { return };
    let t = Transcript::default();
    let sources = tempdir();
    make_sources(&t, qemu, sources.path(), Fixture::Plain);
    let before = std::fs::read(sources.path().join("src.raw")).expect("the source");
    let mine = run_convert(&t, sources.path(), instar(), &args, &[(QEMU_VERSION_VAR, version)]);
    t.check(mine.run.code == Some(1), || format!("exited {:?}, not 1", mine.run.code));
    t.check(mine.run.stderr.contains("not supported by instar"), || {
        format!("not refused by name: {:?}", mine.run.stderr)
    });
    let after = mine.files.iter().find(|f| f.0 == "src.raw").map(|f| f.1.clone());
    t.check(after == Some(before), || "the source changed".to_string());
}

/// What instar does differently on purpose (docs/compat.md §8.5a): its
/// own help; formats and protocols it does not write, refused by name,
/// exit 1, no target left; an
/// image written over a file the sources read (where qemu-img takes no
/// lock: 5.2, `-U`), refused, the source left as it was.
#[rstest]
#[case::h(&["-h"])]
#[case::h_src_raw_tt(&["--h", "src.raw", "T"])]
#[case::c_oo_qcow_src_raw_tt(&["-c", "-O", "qcow", "src.raw", "T"])]
#[case::oo_nbd_src_raw_tt(&["-O", "nbd", "src.raw", "T"])]
#[case::oo_host_device_src_raw_tt(&["-O", "host_device", "src.raw", "T"])]
#[case::oo_file_src_raw_tt(&["-O", "file", "src.raw", "T"])]
#[case::oo_qcow2_src_raw_nbd_localhost_1(&["-O", "qcow2", "src.raw", "nbd:localhost:1"])]
#[case::uu_oo_qcow2_src_raw_src_raw(&["-U", "-O", "qcow2", "src.raw", "src.raw"])]
fn convert_deliberate_differences(
    #[case] args: &[&str],
    #[values("5.2.0", "7.2.18", "7.2.22", "10.0.2", "10.0.13", "11.1.3")] version: &str,
) {
    let Some(qemu) = qemu_if_installed(version) else { return };
    let t = Transcript::default();
    let sources = tempdir();
    make_sources(&t, qemu, sources.path(), Fixture::Plain);
    let before: Vec<String> = crate::util::files_in(sources.path());
    let mine = run_convert(&t, sources.path(), instar(), args, &[(QEMU_VERSION_VAR, version)]);
    if args.iter().any(|a| a.starts_with("-h") || a.starts_with("--h")) {
        t.check(mine.run.code == Some(0), || format!("help exited {:?}", mine.run.code));
        t.check(mine.run.stdout.contains("Usage: instar"), || "not instar's help".into());
    } else {
        t.check(mine.run.code == Some(1), || format!("exited {:?}, not 1", mine.run.code));
        t.check(mine.run.stderr.contains("not supported by instar"), || {
            format!("not refused by name: {:?}", mine.run.stderr)
        });
    }
    t.check(mine.names() == before, || format!("left {:?}", mine.names()));
}
