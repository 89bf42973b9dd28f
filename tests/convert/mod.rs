//! `instar convert` against qemu-img, row by row of CONVERT_CASES
//! (`crates/matrix/src/convert_cases.rs`, docs/compat.md §11.5):
//!
//! ```text
//! convert::<row>                        the row under the oracle (10.0.2)
//! convert::convert_v::<row>::<version>  the row under qemu-img V, instar speaking as V
//! convert::round_trip::<a>_to_<b>       raw -> A -> B -> A by instar keeps the guest data,
//!                                       and instar's B is qemu-img's B outside the masks
//! convert::bad_source::*                hostile and damaged sources: qemu-img's error (or
//!                                       one line where qemu-img never answers), exit 1,
//!                                       no target left, at most 64 MiB of memory
//! convert::checkers::*                  the checks above fail on a damaged target, a
//!                                       wrong exit code, a changed message
//! ```
//!
//! A row runs in two fresh folders, one for each program, where the oracle's
//! qemu-img and qemu-io first make the row's recipes (sources, helpers, the
//! existing target of `-n` rows). Names are relative, so no folder path
//! reaches an output. Then:
//!
//! - stdout, stderr and the exit code are qemu-img's, program name aside
//!   (`qemu-img:`, `qemu-img convert` and `Try 'qemu-img --help'` name
//!   `instar`); where qemu-img printed its help, instar prints its own
//!   (its whole help for qemu-img's whole help, else its convert help);
//! - the files the run made or changed are the same names in both folders
//!   (whether a target exists at all included), each byte-identical outside
//!   the masks of create (the target under its format's masks, extents and
//!   data files whole); after a failure in the middle of the copy, instar
//!   leaves no file it made (docs/compat.md §11.5: qemu-img leaves what it
//!   wrote);
//! - after a success, `instar info --output=json` of instar's target is
//!   `qemu-img info --output=json` of qemu-img's (whitelist of
//!   `info_json`), `qemu-img map --output=json` and `qemu-img check` print
//!   the same for both targets, and where the row keeps the guest data
//!   `qemu-img compare SRC TGT` answers for instar's target as for qemu-img's.

use crate::util::{
    as_instar, instar, oracle_or_skip, qemu_or_skip, shown, skip_build_lacks, tempdir, test_name,
    Run, Transcript,
};
use instar_cli::QEMU_VERSION_VAR;
use instar_matrix::convert_cases::{
    convert_by_ident, ConvertCase, ConvertSource, QEMU_RUNS_AWAY_AFTER,
};
use instar_matrix::info_json;
use instar_matrix::masks::{self, Differences};
use instar_matrix::measure_baseline::as_recorded;
use instar_matrix::qemu::{self, QemuImg};
use instar_matrix::recipes::{self, Recipe as _};
use instar_matrix::Target;
use std::collections::BTreeMap;
use std::path::Path;

mod bad_source;
mod checkers;
mod round_trip;

/// The qemu-img versions that write zstd clusters with a libzstd other
/// than the host's (1.5.7 in their trixie/sid roots; the host and instar
/// have 1.5.4): zstd output depends on the library, not on qemu
/// (convert-facts §2.7), so instar cannot match both.
const OTHER_LIBZSTD: [&str; 2] = ["10.0.13", "11.1.3"];

/// What a folder path in an output reads as.
const DIR: &str = "$DIR";

/// The row whose test identifier is `ident`.
fn case(ident: &str) -> &'static ConvertCase {
    convert_by_ident(ident).unwrap_or_else(|| panic!("{ident} is not a row of CONVERT_CASES"))
}

/// The program on the compared side of a row: instar speaking as a
/// version, or (to test the harness itself) a qemu-img.
#[derive(Clone, Copy)]
pub enum Mine<'a> {
    /// instar, with INSTAR_QEMU_VERSION set to the version.
    Instar,
    /// A qemu-img in instar's place.
    Qemu(&'a QemuImg),
}

impl Mine<'_> {
    /// Runs `args` in `dir` as qemu-img `version`.
    fn run(self, t: &Transcript, args: &[String], dir: &Path, version: &str) -> Run {
        match self {
            Mine::Instar => t.run_env(instar(), args, dir, &[(QEMU_VERSION_VAR, version)]),
            Mine::Qemu(q) => t.run(&q.path, args, dir),
        }
    }

    /// An output of this side, with the program as invoked and the folder
    /// named as the reference's are.
    fn text(self, text: &str, dir: &Path) -> String {
        match self {
            Mine::Instar => {
                text.replace(&instar().display().to_string(), "instar").replace(&path(dir), DIR)
            }
            Mine::Qemu(q) => qemu_text(text, q, dir),
        }
    }

    /// qemu-img's normalised text as this side must print it.
    fn expects(self, qemu_text: &str) -> String {
        match self {
            Mine::Instar => qemu_as_instar(qemu_text),
            Mine::Qemu(_) => qemu_text.to_string(),
        }
    }
}

/// A path as text.
fn path(p: &Path) -> String {
    p.display().to_string()
}

/// qemu-img's output with the program as invoked named `qemu-img` and
/// the folder as [`DIR`].
fn qemu_text(text: &str, qemu: &QemuImg, dir: &Path) -> String {
    as_recorded(text, &qemu.path, dir).replace("$SOURCES", DIR)
}

/// qemu-img's (normalised) text as instar prints it: instar names itself
/// where qemu-img does, in messages, usage errors and the help hint.
pub fn qemu_as_instar(text: &str) -> String {
    as_instar(text)
        .replace("qemu-img convert", "instar convert")
        .replace("Try 'qemu-img --help'", "Try 'instar --help'")
}

/// Whether qemu-img answered with its help: exit 0 and the whole help of
/// 5.2 to 9.1 (its version line first) or the reworked per-command help.
fn is_qemu_help(run: &Run) -> bool {
    run.ok() && (run.stdout.starts_with("qemu-img version ") || run.stdout.starts_with("Usage:\n"))
}

/// instar's own help where qemu-img printed its help (docs/compat.md
/// §8.5a: qemu's help is qemu's prose): the whole help
/// (`crates/cli/help/main.txt`) where qemu-img printed its whole help (5.2
/// to 7.2, its version line first), the command's (`convert.txt`) where
/// it printed the command's. Read when a row needs it.
fn instar_help(t: &Transcript, qemu_help: &str) -> String {
    let name = if qemu_help.starts_with("qemu-img version ") { "main" } else { "convert" };
    let file = qemu::repo_root().join(format!("crates/cli/help/{name}.txt"));
    std::fs::read_to_string(&file)
        .unwrap_or_else(|e| t.fail(&format!("instar's help {}: {e}", file.display())))
}

/// A folder's files with a checksum each (a file's length and CRC).
fn sums(dir: &Path) -> BTreeMap<String, u64> {
    crate::util::files_in(dir)
        .into_iter()
        .map(|name| {
            let sum = crate::util::file_sum(&dir.join(&name));
            (name, sum)
        })
        .collect()
}

/// The files a run made or changed: not in `before`, or with another sum.
fn touched(before: &BTreeMap<String, u64>, dir: &Path) -> Vec<String> {
    sums(dir).into_iter().filter(|(n, s)| before.get(n) != Some(s)).map(|(n, _)| n).collect()
}

/// Makes the row's recipes in `dir` with the oracle's tools.
fn make_recipes(t: &Transcript, oracle: &QemuImg, recipes: &[ConvertSource], dir: &Path) {
    for recipe in recipes {
        if let Err(e) = recipes::make(oracle, *recipe, dir) {
            t.fail(&format!("making {}: {e}", recipe.name()));
        }
    }
}

/// Makes the row's recipes in `first`, then the same files in `second`,
/// not made again: a made image carries random ids and times that reach
/// the guest view or a converted file (a fixed vpc's guest view ends with
/// its footer; a vmdk overlay records its parent's random CID), and its
/// host layout (holes, unwritten extents) steers qemu's block status and
/// so `-p`. Sources and helpers are hard links (the same inode: the same
/// bytes and layout; the harness takes each folder's sums right before
/// its own run, so a run that writes a source is seen); a pre-made
/// target (`tgt.*`), which the run writes, is copied range of data by
/// range of data.
pub fn make_twins(
    t: &Transcript,
    oracle: &QemuImg,
    recipes: &[ConvertSource],
    first: &Path,
    second: &Path,
) {
    make_recipes(t, oracle, recipes, first);
    for name in crate::util::files_in(first) {
        let (from, to) = (first.join(&name), second.join(&name));
        let made = match name.starts_with("tgt.") {
            true => copy_layout(&from, &to),
            false => std::fs::hard_link(&from, &to),
        };
        if let Err(e) = made {
            t.fail(&format!("copying {}: {e}", from.display()));
        }
    }
}

/// Copies `from` to `to` range by range of data, leaving holes as holes.
fn copy_layout(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt as _;
    let source = std::fs::File::open(from)?;
    let len = source.metadata()?.len();
    let target = std::fs::File::create(to)?;
    let mut buf = Vec::new();
    for range in instar_matrix::files::data_ranges(&source, len)? {
        let mut pos = range.start;
        while pos < range.end {
            let n = usize::try_from((range.end - pos).min(1 << 20)).expect("at most 1 MiB");
            buf.resize(n, 0);
            source.read_exact_at(&mut buf, pos)?;
            target.write_all_at(&buf, pos)?;
            pos += n as u64;
        }
    }
    target.set_len(len)
}

/// Whether a failed run stopped in the middle of the copy, after the
/// target was created (qemu-img's `error while reading` / `writing`).
fn failed_mid_copy(run: &Run) -> bool {
    !run.ok()
        && (run.stderr.contains("error while reading")
            || run.stderr.contains("error while writing"))
}

/// The two runs of a row, and where each ran.
pub struct Outcome<'a> {
    /// qemu-img's run, in `theirs_dir`.
    pub theirs: Run,
    /// The compared side's run, in `mine_dir`.
    pub mine: Run,
    /// qemu-img's folder.
    pub theirs_dir: &'a Path,
    /// The compared side's folder.
    pub mine_dir: &'a Path,
    /// The files each run made or changed.
    pub touched: (Vec<String>, Vec<String>),
}

/// Fails unless the compared side printed what qemu-img printed (program
/// and folder aside; its own help where qemu-img printed its help) and
/// exited alike.
pub fn assert_same_output(t: &Transcript, what: &str, qemu: &QemuImg, mine: Mine, out: &Outcome) {
    let theirs_text = |s: &str| mine.expects(&qemu_text(s, qemu, out.theirs_dir));
    let want_stdout = match (mine, is_qemu_help(&out.theirs)) {
        (Mine::Instar, true) => instar_help(t, &out.theirs.stdout),
        _ => theirs_text(&out.theirs.stdout),
    };
    t.assert_same(
        &format!("{what}: stdout (qemu-img left, instar right)"),
        &want_stdout,
        &mine.text(&out.mine.stdout, out.mine_dir),
    );
    t.assert_same(
        &format!("{what}: stderr (qemu-img left, instar right)"),
        &theirs_text(&out.theirs.stderr),
        &mine.text(&out.mine.stderr, out.mine_dir),
    );
    t.check(out.theirs.code == out.mine.code, || {
        format!("{what}: qemu-img exited {:?}, instar {:?}", out.theirs.code, out.mine.code)
    });
}

/// The masks a file of the row is compared under: the target's format
/// for the target, none (every byte) for extents, data files and the rest.
fn file_target(case: &ConvertCase, name: &str) -> Target {
    if name == case.target_file() {
        case.target.unwrap_or(Target::Raw)
    } else {
        Target::Raw
    }
}

/// How two files of the row differ outside their masks (`None`: equal).
pub fn file_differences(target: Target, reference: &Path, other: &Path) -> Option<String> {
    let len = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
    if len(reference) == 0 || len(other) == 0 {
        let (a, b) = (len(reference), len(other));
        return (a != b).then(|| format!("lengths differ: reference {a} bytes, other {b} bytes"));
    }
    // A reference whose masks cannot be found (a partial file) is compared whole.
    let diff = masks::compare_files(target, reference, other)
        .or_else(|_| masks::compare_files(Target::Raw, reference, other))
        .unwrap_or_else(|e| Differences { lengths: Some((0, 0)), ..into_diff(&e.to_string()) });
    (!diff.is_empty()).then(|| diff.to_string())
}

/// A comparison that could not run, as a difference.
fn into_diff(why: &str) -> Differences {
    Differences { descriptor: Some((why.to_string(), String::new())), ..Differences::default() }
}

/// Fails unless the two runs made or changed the same files, each the
/// same outside its masks; after a failure in the middle of the copy into
/// a target the run created, the compared side must have left nothing.
pub fn assert_same_files(t: &Transcript, case: &ConvertCase, mine: Mine, out: &Outcome) {
    let (theirs_files, mine_files) = &out.touched;
    if matches!(mine, Mine::Instar) && failed_mid_copy(&out.theirs) && !case.uses_existing_target()
    {
        t.check(mine_files.is_empty(), || {
            format!(
                "qemu-img failed in the middle of the copy and left {theirs_files:?}; \
                 instar must remove what it made, and left {mine_files:?}"
            )
        });
        return;
    }
    t.check(theirs_files == mine_files, || {
        format!("files made or changed: qemu-img {theirs_files:?}, instar {mine_files:?}")
    });
    for name in theirs_files {
        let target = file_target(case, name);
        let (a, b) = (out.theirs_dir.join(name), out.mine_dir.join(name));
        if let Some(diff) = file_differences(target, &a, &b) {
            t.fail(&format!("{name}: qemu-img's file (reference) and instar's differ:\n{diff}"));
        }
    }
}

/// After a success: info, map, check and compare agree on the two targets.
fn assert_same_target(
    t: &Transcript,
    case: &ConvertCase,
    version: &str,
    qemu: &QemuImg,
    mine: Mine,
    out: &Outcome,
) {
    let oracle = oracle_or_skip().expect("the oracle made the recipes");
    let tgt = case.target_file();
    let (qd, md) = (out.theirs_dir, out.mine_dir);
    if !qd.join(&tgt).exists() {
        return;
    }
    let info = ["info".to_string(), "--output=json".to_string(), tgt.clone()];
    let theirs = t.run(&qemu.path, &info, qd);
    let ours = mine.run(t, &info, md, version);
    let normal = |run: &Run| {
        info_json::normalise_text(&run.stdout, "")
            .unwrap_or_else(|e| format!("not JSON ({e}):\n{}", run.stdout))
    };
    t.assert_same(
        &format!("info --output=json {tgt}: qemu-img {version} on its target (left), instar on its own (right)"),
        &normal(&theirs),
        &normal(&ours),
    );
    let mut probes = vec![vec!["map".to_string(), "--output=json".to_string(), tgt.clone()]];
    if matches!(case.target, Some(Target::Qcow2 | Target::Vmdk | Target::Vhdx)) {
        probes.push(vec!["check".to_string(), tgt.clone()]);
    }
    let sources = case.sources();
    if case.keeps_data() {
        if let Some(src) = sources.first() {
            probes.push(vec!["compare".to_string(), src.file_name().to_string(), tgt.clone()]);
        }
    }
    for args in probes {
        let theirs = t.run(&oracle.path, &args, qd);
        let ours = t.run(&oracle.path, &args, md);
        let what =
            format!("qemu-img {} on qemu-img's target (left) and instar's (right)", args.join(" "));
        t.assert_same(&format!("{what}: stdout"), &theirs.stdout, &ours.stdout);
        t.assert_same(&format!("{what}: stderr"), &theirs.stderr, &ours.stderr);
        t.check(theirs.code == ours.code, || {
            format!("{what}: exit {:?} and {:?}", theirs.code, ours.code)
        });
    }
    if let Some(target @ (Target::Vmdk | Target::Vhd | Target::Vhdx)) = case.target {
        if !case.uses("subformat=monolithicFlat") && !case.uses("subformat=twoGbMaxExtentFlat") {
            t.assert_masked_fields(target, &md.join(&tgt), "instar's target");
        }
    }
}

/// Runs the row as qemu-img `version` and as `mine`, each in a folder of
/// its own, and checks everything the module's documentation lists.
pub fn run_row(case: &ConvertCase, version: &str, mine: Mine) {
    let Some(oracle) = oracle_or_skip() else { return };
    let Some(qemu) = qemu_or_skip(version) else { return };
    if case.writes_zstd() && matches!(mine, Mine::Instar) && OTHER_LIBZSTD.contains(&version) {
        skip_build_lacks(&format!(
            "qemu-img {version} links libzstd 1.5.7, instar the host's 1.5.4: \
             zstd clusters differ by library (docs/compat.md §11.5)"
        ));
        return;
    }
    if case.has("away") && matches!(mine, Mine::Qemu(_)) {
        // qemu-img against itself would wait for two runs that never end.
        return;
    }
    let t = Transcript::default();
    let (qd, md) = (tempdir(), tempdir());
    make_twins(&t, oracle, case.recipes, qd.path(), md.path());
    let args = case.convert_args();
    let qb = sums(qd.path());
    let theirs = match case.has("away") {
        true => t.run_for(&qemu.path, &args, qd.path(), QEMU_RUNS_AWAY_AFTER),
        false => t.run(&qemu.path, &args, qd.path()),
    };
    let theirs_touched = touched(&qb, qd.path());
    let mb = sums(md.path());
    let ours = mine.run(&t, &args, md.path(), version);
    if theirs.timed_out {
        let left = touched(&mb, md.path());
        t.check(ours.code == Some(1) && ours.stderr.lines().count() == 1 && left.is_empty(), || {
            format!("qemu-img never answers {}; instar must fail with one line and leave nothing (left {left:?})", case.name)
        });
        return;
    }
    let out = Outcome {
        touched: (theirs_touched, touched(&mb, md.path())),
        theirs,
        mine: ours,
        theirs_dir: qd.path(),
        mine_dir: md.path(),
    };
    let what = format!("{} as qemu-img {version}", case.name);
    assert_same_output(&t, &what, qemu, mine, &out);
    assert_same_files(&t, case, mine, &out);
    if out.theirs.ok() {
        assert_same_target(&t, case, version, qemu, mine, &out);
    }
}

/// The row under the oracle, instar speaking as the oracle.
pub fn row(ident: &str) {
    run_row(case(ident), qemu::oracle_version(), Mine::Instar);
}

/// The row under qemu-img `version`, instar speaking as `version`.
pub fn row_version(ident: &str, version: &str) {
    run_row(case(ident), version, Mine::Instar);
}

/// One test per version: `row_version("<row>", "<version>")`.
macro_rules! convert_per_version {
    ($row:ident ; $($version:ident $text:literal;)*) => {
        $(
            #[test]
            fn $version() {
                crate::convert::row_version(stringify!($row), $text);
            }
        )*
    };
}

/// A row's tests: one under the oracle (`one`), or a module with one per
/// version (`all`); the other macro of the pair makes nothing.
macro_rules! convert_one {
    (one $row:ident) => {
        #[test]
        fn $row() {
            crate::convert::row(stringify!($row));
        }
    };
    (all $row:ident) => {};
}

/// See [`convert_one`].
macro_rules! convert_all {
    (all $row:ident) => {
        mod $row {
            instar_matrix::known_versions!(convert_per_version, $row);
        }
    };
    (one $row:ident) => {};
}

/// The rows run under the oracle alone.
macro_rules! convert_rows_one {
    (; $($target:tt $row:ident $name:literal $args:literal [$($r:ident),*] $runs:ident ($($f:ident)*);)*) => {
        $(convert_one!($runs $row);)*
    };
}

/// The rows run under every version.
macro_rules! convert_rows_all {
    (; $($target:tt $row:ident $name:literal $args:literal [$($r:ident),*] $runs:ident ($($f:ident)*);)*) => {
        $(convert_all!($runs $row);)*
    };
}

instar_matrix::convert_cases!(convert_rows_one);

mod convert_v {
    instar_matrix::convert_cases!(convert_rows_all);
}

/// The harness holds for qemu-img against itself: rows of each kind
/// (success into each format, `-n`, an error, progress, several sources)
/// pass with the oracle in instar's place, so a failure under instar is
/// instar's. Two runs of qemu-img write the same bytes outside the masks.
#[test]
fn qemu_img_passes_against_itself() {
    let Some(oracle) = oracle_or_skip() else { return };
    for ident in [
        "qcow2_from_raw_gaps",
        "qcow2_c_from_qcow2_plain",
        "raw_from_qcow2_chain",
        "vmdk_from_raw_gaps",
        "vmdk_from_qcow2_zlib",
        "vpc_from_qcow2_zero",
        "vhdx_from_vmdk_sparse",
        "vmdk_flat_from_qcow2_zero",
        "vmdk_2gb_sparse_from_qcow2_zero",
        "qcow2_data_file_from_raw_gaps",
        "qcow2_n_filled_from_raw_gaps",
        "vhdx_n_from_raw_gaps",
        "qcow2_p_from_qcow2_p5",
        "qcow2_multi_from_raw_one_qcow2_plain_vmdk_sparse",
        "qcow2_b_from_qcow2_chain",
        "raw_err_unknown_short",
        "qcow2_err_b_missing_backing",
        "raw_err_corrupt_compressed_cluster",
        "qcow2_err_bitmaps_broken_from_qcow2_broken_bitmap",
        "qcow2_bitmaps_skip_broken_from_qcow2_broken_bitmap",
    ] {
        eprintln!("{}: {ident}", test_name());
        run_row(case(ident), qemu::oracle_version(), Mine::Qemu(oracle));
    }
}

/// The text rules: qemu-img's names become instar's, other mentions stay.
#[test]
fn qemu_text_becomes_instar_text() {
    let text = "qemu-img convert: invalid option -- 'x'\n\
                Try 'qemu-img convert --help' for more info\n\
                qemu-img: unrecognized option '-x'\nTry 'qemu-img --help' for more information\n\
                Try --skip-broken-bitmaps, or use 'qemu-img bitmap --remove' to delete it\n";
    assert_eq!(
        qemu_as_instar(text),
        "instar convert: invalid option -- 'x'\n\
         Try 'instar convert --help' for more info\n\
         instar: unrecognized option '-x'\nTry 'instar --help' for more information\n\
         Try --skip-broken-bitmaps, or use 'qemu-img bitmap --remove' to delete it\n"
    );
    assert_eq!(shown(b"a\rb"), "a\rb");
}

/// Every row of the table with the oracle in instar's place (under the
/// oracle's version), the failures reported together: the recipes make
/// what the rows need and two runs of qemu-img agree outside the masks.
/// Slow (the whole table once more), so run on demand:
/// `cargo test --test create_matrix convert::whole_table_against_itself -- --ignored`.
#[test]
#[ignore = "the harness's own check over the whole table; minutes"]
fn whole_table_against_itself() {
    let Some(oracle) = oracle_or_skip() else { return };
    let label = |case: &ConvertCase| case.name.to_string();
    crate::util::check_each(
        "convert rows, qemu-img as instar",
        instar_matrix::CONVERT_CASES,
        label,
        |case| {
            run_row(case, qemu::oracle_version(), Mine::Qemu(oracle));
        },
    );
}
