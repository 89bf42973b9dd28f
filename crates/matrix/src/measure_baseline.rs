//! measure's baselines: what each qemu-img version prints for each row of
//! MEASURE_CASES ([`measure_cases`](crate::measure_cases)), stored in the
//! shared layout of [`baseline`](crate::baseline) under [`MEASURE_DIR`]
//! (docs/compat.md §9.6), and the source images the rows measure.
//!
//! The sources are made once, by the oracle's qemu-img and qemu-io (the
//! matrix versions come without qemu-io), in one scratch folder; every
//! row of every version then runs in that folder with relative file
//! names, so no temporary path reaches an output. The generator and the
//! tests make them with the same code ([`make_sources`]).
//!
//! What a baseline stores is qemu-img's output with two replacements
//! ([`as_recorded`]): the program as invoked is `qemu-img` (the reworked
//! command lines of 10.0 and later name `argv[0]` in usage errors; a
//! binary runs with `argv[0]` set to `qemu-img`, a wrapper script under
//! `.qemu-matrix/` passes its own path, which is replaced), and the
//! scratch folder, should it ever show, is [`SOURCES`].

use crate::baseline::{code, Baseline, BaselineError, Kind, QEMU_IMG};
use crate::measure_cases::{MeasureCase, MeasureTarget, Source, MEASURE_CASES};
use crate::qemu::{version_key, QemuImg};
pub use crate::recipes::qemu_io_for;
use crate::recipes::{self, Recipe as _};
use serde::{Deserialize, Serialize};
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Command, Output};

/// Where measure's baselines live, relative to the repository root.
pub const MEASURE_DIR: &str = "testdata/expected-outputs/measure";

/// What a stored output says instead of the sources folder's path.
pub const SOURCES: &str = "$SOURCES";

/// What qemu-img 7.2.18 sometimes prints, and nothing else, when the PBKDF
/// benchmark of a LUKS header (`-O luks`, `encrypt.format=luks`) could
/// not time itself: the host was busy, not a property of the row.
pub const PBKDF_FLAKE: &str = "qemu-img: Unable to get accurate CPU usage\n";

/// How many times a run that printed only [`PBKDF_FLAKE`] is tried.
const PBKDF_TRIES: usize = 10;

/// What a measure baseline records besides the two output texts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeasureMeta {
    /// The row's target (`qcow2`, `raw`, `luks`, `other`).
    pub target: String,
    /// The row's case name (`qcow2-size-1G`).
    pub case: String,
    /// The qemu-img version that recorded this baseline (`10.0.2`).
    pub qemu_version: String,
    /// The first line of that qemu-img's `--version`.
    pub qemu_version_line: String,
    /// The command, `qemu-img` first.
    pub argv: Vec<String>,
    /// Its exit code.
    pub return_code: i32,
    /// The source recipe of the image the command measures, if any.
    pub source: Option<String>,
}

/// One recorded row of MEASURE_CASES under one qemu-img version.
pub type MeasureBaseline = Baseline<MeasureMeta>;

/// MEASURE_CASES as the baseline store sees it: rows under their target's
/// folder and, in profiles, under their case names, which carry the
/// target already.
#[derive(Debug, Clone, Copy)]
pub struct Measure;

impl Kind for Measure {
    type Row = MeasureCase;
    type Meta = MeasureMeta;
    const DIR: &'static str = MEASURE_DIR;

    fn folders() -> Vec<&'static str> {
        MeasureTarget::ALL.iter().map(|t| t.name()).collect()
    }

    fn folder(row: &MeasureCase) -> &'static str {
        row.target.name()
    }

    fn stem(row: &MeasureCase) -> &'static str {
        row.name
    }

    fn profile_stem(_folder: &str, stem: &str) -> String {
        stem.to_string()
    }

    fn meta_version(meta: &MeasureMeta) -> &str {
        &meta.qemu_version
    }

    fn meta_row(meta: &MeasureMeta) -> (String, String) {
        (meta.target.clone(), meta.case.clone())
    }

    fn anonymous(meta: &MeasureMeta) -> MeasureMeta {
        let mut meta = meta.clone();
        meta.qemu_version.clear();
        meta.qemu_version_line.clear();
        meta
    }
}

/// Makes `source` in `dir` with the oracle's tools.
pub fn make_source(oracle: &QemuImg, source: Source, dir: &Path) -> Result<(), BaselineError> {
    recipes::make(oracle, source, dir)
}

/// Makes every source of the table in `dir` with the oracle's tools.
pub fn make_sources(oracle: &QemuImg, dir: &Path) -> Result<(), BaselineError> {
    Source::ALL.iter().try_for_each(|s| make_source(oracle, *s, dir))
}

/// `text` as a baseline stores it: `program` (the qemu-img as invoked)
/// named `qemu-img`, the sources folder `dir` named [`SOURCES`].
pub fn as_recorded(text: &str, program: &Path, dir: &Path) -> String {
    let program = program.display().to_string();
    let dir = dir.display().to_string();
    text.replace(&program, QEMU_IMG).replace(&dir, SOURCES)
}

/// Runs `args` (after the program name) with `qemu` in `dir`, `argv[0]`
/// set to `qemu-img` (a wrapper script passes its own path instead:
/// [`as_recorded`] names it).
pub fn run_qemu_img(qemu: &QemuImg, args: &[String], dir: &Path) -> Result<Output, BaselineError> {
    Command::new(&qemu.path)
        .arg0(QEMU_IMG)
        .args(args)
        .current_dir(dir)
        .env("LC_ALL", "C")
        .output()
        .map_err(|e| BaselineError::Spawn(qemu.path.clone(), e))
}

/// Runs `case` with `qemu` in `dir`, where the sources are, and returns
/// what a baseline stores.
pub fn record(
    qemu: &QemuImg,
    case: &MeasureCase,
    dir: &Path,
) -> Result<MeasureBaseline, BaselineError> {
    let args = case.measure_args();
    let mut out = run_qemu_img(qemu, &args, dir)?;
    // The one retry: qemu-img 7.2.18's PBKDF benchmark (LUKS rows) fails
    // now and then when the host is busy. Only a run that printed exactly
    // that and nothing else is tried again; any other output is recorded.
    let mut tries = 1;
    while out.stderr == PBKDF_FLAKE.as_bytes() && out.stdout.is_empty() && tries < PBKDF_TRIES {
        out = run_qemu_img(qemu, &args, dir)?;
        tries += 1;
    }
    let text = |bytes: &[u8]| as_recorded(&String::from_utf8_lossy(bytes), &qemu.path, dir);
    let meta = MeasureMeta {
        target: case.target.name().to_string(),
        case: case.name.to_string(),
        qemu_version: version_key(&qemu.version),
        qemu_version_line: qemu.version_line.clone(),
        argv: std::iter::once(QEMU_IMG.to_string()).chain(args).collect(),
        return_code: code(out.status),
        source: case.source.map(Source::name),
    };
    Ok(Baseline { stdout: text(&out.stdout), stderr: text(&out.stderr), meta })
}

/// Records every row of the table with `qemu`, in `dir` where
/// [`make_sources`] made the sources.
pub fn record_all(
    qemu: &QemuImg,
    dir: &Path,
) -> Result<Vec<(&'static MeasureCase, MeasureBaseline)>, BaselineError> {
    MEASURE_CASES.iter().map(|case| Ok((case, record(qemu, case, dir)?))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_text_names_the_program_and_hides_the_folder() {
        let text = "/opt/q/usr/bin/qemu-img measure: invalid option -- 'x'\n\
                    Try '/opt/q/usr/bin/qemu-img measure --help' for more info\n\
                    qemu-img: Could not open '/tmp/s1/x': No such file or directory\n";
        let got = as_recorded(text, Path::new("/opt/q/usr/bin/qemu-img"), Path::new("/tmp/s1"));
        assert_eq!(
            got,
            "qemu-img measure: invalid option -- 'x'\n\
             Try 'qemu-img measure --help' for more info\n\
             qemu-img: Could not open '$SOURCES/x': No such file or directory\n"
        );
    }

    #[test]
    fn profile_files_carry_the_case_name_alone() {
        let case = crate::measure_cases::measure_by_ident("luks_size_1g").unwrap();
        assert_eq!(Measure::id(case), "luks-size-1G");
        assert_eq!(Measure::folder(case), "luks");
    }
}
