//! `instar measure` against qemu-img, row by row of MEASURE_CASES
//! (`crates/matrix/src/measure_cases.rs`, docs/compat.md §9.6):
//!
//! ```text
//! measure_baseline::<row>::<version>   instar as qemu-img V prints what V printed when
//!                                      the baselines were recorded, exit code included
//! measure_live::<row>                  instar prints what the installed oracle prints
//! measure_agreement::<row>             for the rows marked `create`: instar's and
//!                                      qemu-img's `create -o ...,preallocation=full`
//!                                      make a file as long as instar's fully allocated size
//! measure_consistency::*               the table, the version list and
//!                                      testdata/expected-outputs/measure agree
//! ```
//!
//! The source images are made once per test binary by the oracle's
//! qemu-img and qemu-io ([`sources`]) and shared by every row and version:
//! measure only reads them. Rows without a source run in a folder of
//! their own. Outputs compare program name aside: qemu-img's `qemu-img: `
//! and `qemu-img measure` (the usage errors of 10.0 and later, which name
//! the program as invoked) are instar's `instar: ` and `<instar> measure`.

use crate::util::{
    as_instar, instar, oracle_or_skip, qemu_or_skip, tempdir, test_name, Run, Transcript,
};
use instar_cli::QEMU_VERSION_VAR;
use instar_matrix::baseline::{self, VersionMap};
use instar_matrix::measure_baseline::{as_recorded, make_sources, Measure, MEASURE_DIR, SOURCES};
use instar_matrix::measure_cases::{measure_by_ident, MeasureCase};
use instar_matrix::{qemu, MEASURE_CASES};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The row whose test identifier is `ident`.
fn case(ident: &str) -> &'static MeasureCase {
    measure_by_ident(ident).unwrap_or_else(|| panic!("{ident} is not a row of MEASURE_CASES"))
}

/// The measure baselines' folder.
fn root() -> PathBuf {
    qemu::repo_root().join(MEASURE_DIR)
}

/// The measure baselines' version map, read once.
fn version_map() -> &'static VersionMap {
    static MAP: OnceLock<VersionMap> = OnceLock::new();
    MAP.get_or_init(|| VersionMap::load(&root()).unwrap_or_default())
}

/// The folder where the oracle made every source of the table, once per
/// test binary, or `None` after skipping when the oracle is not installed.
///
/// It lies under cargo's scratch folder for integration tests, one folder
/// per test process (a static is never dropped, so a temporary folder
/// would outlive every run); folders of processes that have ended are
/// removed when the next one makes its own.
fn sources() -> Option<&'static Path> {
    static SOURCES_DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let oracle = oracle_or_skip()?;
    let made = SOURCES_DIR.get_or_init(|| {
        let parent = Path::new(env!("CARGO_TARGET_TMPDIR")).join("measure-sources");
        remove_stale(&parent);
        let dir = parent.join(std::process::id().to_string());
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        make_sources(oracle, &dir).map_err(|e| e.to_string())?;
        Ok(dir)
    });
    match made {
        Ok(dir) => Some(dir.as_path()),
        Err(e) => panic!("{}: making the measure sources: {e}", test_name()),
    }
}

/// Removes the source folders under `parent` whose process has ended.
fn remove_stale(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let alive =
            name.parse::<u32>().is_ok_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
        if !alive {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Where `case` runs: the sources folder for a row with a source, else a
/// fresh empty folder (kept alive by the returned guard); `None` after
/// skipping when the sources cannot be made.
fn workdir(case: &MeasureCase) -> Option<(PathBuf, Option<tempfile::TempDir>)> {
    if case.source.is_some() {
        return sources().map(|dir| (dir.to_path_buf(), None));
    }
    let dir = tempdir();
    Some((dir.path().to_path_buf(), Some(dir)))
}

/// A stored (or live, [`as_recorded`]) qemu-img text as
/// instar prints it: the program named `instar` where qemu-img names
/// itself, in messages and in the usage errors of 10.0 and later.
fn as_instar_measure(recorded: &str) -> String {
    as_instar(recorded).replace("qemu-img measure", "instar measure")
}

/// instar's text with its path (the usage errors name the program as
/// invoked) as `instar` and the working folder as [`SOURCES`].
fn instar_text(text: &str, dir: &Path) -> String {
    text.replace(&instar().display().to_string(), "instar")
        .replace(&dir.display().to_string(), SOURCES)
}

/// instar's own help for `measure`, which it prints wherever qemu-img
/// prints its help (docs/compat.md §8.5a, §10.1: qemu-img's help is
/// qemu's prose, with the build's format list, and not instar's to copy).
const INSTAR_HELP: &str = include_str!("../../crates/cli/help/measure.txt");

/// Whether qemu-img answered with its help: exit 0 and, on stdout, the
/// whole help of 5.2 to 9.1 (its version line first) or the reworked
/// per-command help (its usage first).
fn is_qemu_help(stdout: &str, code: i32) -> bool {
    code == 0 && (stdout.starts_with("qemu-img version ") || stdout.starts_with("Usage:\n"))
}

/// Fails unless instar's run printed `stdout` and `stderr` (qemu-img's,
/// as stored) and exited with `code`; where qemu-img printed its help,
/// instar must print its own.
fn assert_prints(
    t: &Transcript,
    what: &str,
    stdout: &str,
    stderr: &str,
    code: i32,
    mine: &Run,
    dir: &Path,
) {
    let want = if is_qemu_help(stdout, code) {
        INSTAR_HELP.to_string()
    } else {
        as_instar_measure(stdout)
    };
    t.assert_same(
        &format!("{what}: stdout (qemu-img left, or instar's help where qemu-img printed its own; instar right)"),
        &want,
        &instar_text(&mine.stdout, dir),
    );
    t.assert_same(
        &format!("{what}: stderr (qemu-img left, instar right)"),
        &as_instar_measure(stderr),
        &instar_text(&mine.stderr, dir),
    );
    t.check(mine.code == Some(code), || {
        format!("{what}: qemu-img exited {code}, instar {:?}", mine.code)
    });
}

/// instar as qemu-img `version` prints, for the row, what `version`
/// printed when the baselines were recorded, and exits alike.
pub fn baseline(ident: &str, version: &str) {
    let case = case(ident);
    let recorded = baseline::for_version::<Measure>(&root(), version_map(), version, case)
        .unwrap_or_else(|e| panic!("no recorded measure baseline for qemu-img {version}: {e}"));
    let Some((dir, _guard)) = workdir(case) else { return };
    let t = Transcript::default();
    let mine = t.run_env(instar(), &case.measure_args(), &dir, &[(QEMU_VERSION_VAR, version)]);
    assert_prints(
        &t,
        &format!("{} as {version}: recorded baseline vs instar", case.name),
        &recorded.stdout,
        &recorded.stderr,
        recorded.meta.return_code,
        &mine,
        &dir,
    );
}

/// instar prints, for the row, what the installed oracle prints now.
pub fn live(ident: &str) {
    let case = case(ident);
    let Some(qemu) = oracle_or_skip() else { return };
    let Some((dir, _guard)) = workdir(case) else { return };
    let t = Transcript::default();
    let args = case.measure_args();
    let theirs = t.run(&qemu.path, &args, &dir);
    let mine = t.run(instar(), &args, &dir);
    let stored = |text: &str| as_recorded(text, &qemu.path, &dir);
    let code = theirs.code.unwrap_or_else(|| t.fail("qemu-img was killed"));
    assert_prints(
        &t,
        &format!("{}: qemu-img {} vs instar", case.name, qemu::oracle_version()),
        &stored(&theirs.stdout),
        &stored(&theirs.stderr),
        code,
        &mine,
        &dir,
    );
}

/// The `fully allocated size` of a human measure output.
fn fully_allocated(t: &Transcript, stdout: &str) -> u64 {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("fully allocated size: "))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| t.fail(&format!("no fully allocated size in {stdout:?}")))
}

/// For a row marked `create`: instar's measure of the row, then instar's
/// and qemu-img's `create -f qcow2 -o <options>,preallocation=full` of the
/// same size: both files are exactly as long as the fully allocated size.
pub fn agreement(ident: &str) {
    let case = case(ident);
    let (options, size) = case
        .create_equivalent()
        .unwrap_or_else(|| panic!("row {} is not one create makes", case.name));
    let Some(qemu) = qemu_or_skip(qemu::oracle_version()) else { return };
    let dir = tempdir();
    let t = Transcript::default();
    let measured = t.run_ok(instar(), &case.measure_args(), dir.path());
    let want = fully_allocated(&t, &measured.stdout);
    let options = if options.is_empty() {
        "preallocation=full".to_string()
    } else {
        format!("{options},preallocation=full")
    };
    for (who, program) in [("instar", instar()), ("qemu-img", qemu.path.as_path())] {
        let file = format!("{who}.qcow2");
        t.run_ok(program, &["create", "-f", "qcow2", "-o", &options, &file, size], dir.path());
        let len = std::fs::metadata(dir.path().join(&file)).expect("the created image").len();
        t.check(len == want, || {
            format!("{who}'s create -o {options} of {size} is {len} bytes; instar measure says fully allocated {want}")
        });
    }
}

/// One test per version: `$check("<row>", "<version>")`.
macro_rules! measure_per_version {
    ($check:path, $row:ident ; $($version:ident $text:literal;)*) => {
        $(
            #[test]
            fn $version() {
                $check(stringify!($row), $text);
            }
        )*
    };
}

/// A module per row, holding a test per version.
macro_rules! measure_per_row_and_version {
    ($check:path ; $($target:ident $row:ident $name:literal $args:literal $source:tt;)*) => {
        $(
            mod $row {
                instar_matrix::known_versions!(measure_per_version, $check, $row);
            }
        )*
    };
}

/// A test per row: `$check("<row>")`.
macro_rules! measure_per_row {
    ($check:path ; $($target:ident $row:ident $name:literal $args:literal $source:tt;)*) => {
        $(
            #[test]
            fn $row() {
                $check(stringify!($row));
            }
        )*
    };
}

/// A test for a row marked `create`, nothing for the others.
macro_rules! agreement_test {
    ($row:ident create) => {
        #[test]
        fn $row() {
            crate::measure::agreement(stringify!($row));
        }
    };
    ($row:ident $source:tt) => {};
}

/// A test per row marked `create`.
macro_rules! measure_agreement_rows {
    (; $($target:ident $row:ident $name:literal $args:literal $source:tt;)*) => {
        $(agreement_test!($row $source);)*
    };
}

mod measure_baseline {
    instar_matrix::measure_cases!(measure_per_row_and_version, crate::measure::baseline);
}

mod measure_live {
    instar_matrix::measure_cases!(measure_per_row, crate::measure::live);
}

mod measure_agreement {
    instar_matrix::measure_cases!(measure_agreement_rows);
}

/// The table, the version list and the files under
/// testdata/expected-outputs/measure agree.
mod measure_consistency {
    use super::*;

    /// Every row has baselines for every version of the map, every stored
    /// baseline has a row, and profiles/ and version-map.json are what the
    /// generator makes of the version folders.
    #[test]
    fn baselines_match_the_table() {
        let problems = baseline::consistency_problems::<Measure>(&root(), MEASURE_CASES);
        assert!(
            problems.is_empty(),
            "MEASURE_CASES and {} disagree (run `make baselines`):\n{}",
            root().display(),
            problems.join("\n")
        );
    }

    /// The versions that get named tests are the versions recorded.
    #[test]
    fn known_versions_match_the_version_map() {
        let recorded: Vec<String> =
            version_map().versions().iter().map(instar_matrix::qemu::version_key).collect();
        assert_eq!(
            recorded,
            instar_matrix::KNOWN_VERSIONS,
            "instar_matrix::known_versions! and the measure version-map.json disagree"
        );
    }
}

/// The help rule is narrow: a measurement, an error, or help with a
/// failing exit code is not qemu-img's help.
#[test]
fn only_qemu_help_is_taken_for_help() {
    assert!(is_qemu_help("qemu-img version 7.2.22 (Debian)\n...", 0));
    assert!(is_qemu_help("Usage:\n  qemu-img measure ...", 0));
    assert!(!is_qemu_help("required size: 1\nfully allocated size: 1\n", 0));
    assert!(!is_qemu_help("Usage:\n  qemu-img measure ...", 1));
    assert!(!is_qemu_help("", 0));
}
