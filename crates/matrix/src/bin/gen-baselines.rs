//! `gen-baselines`: records what every qemu-img the host offers prints for
//! every row of the case tables under `testdata/` (docs/compat.md §7.3,
//! §9.6): create's (CREATE_CASES, `info --output=json` of each created
//! image) and measure's (MEASURE_CASES, over source images the oracle
//! makes once), then rebuilds each table's profiles and `version-map.json`
//! from all version folders on disk.
//!
//! Versions not installed here keep the folders they have, so a machine
//! with only one qemu-img does not erase the others' baselines. Running it
//! twice changes nothing: files are written only when their text changes.
//!
//! Usage: `gen-baselines [--out DIR] [--table create|measure] [--check]`.
//! `--out` is the folder holding the tables' folders (default
//! `testdata/expected-outputs`); `--table` records one table only;
//! `--check` records into a scratch copy and exits 1 if anything would
//! change.
#![allow(clippy::expect_used, reason = "a tool for developers: a panic names what failed")]

use instar_matrix::baseline::{self, Kind};
use instar_matrix::create_baseline::{self, Create};
use instar_matrix::measure_baseline::{self, Measure};
use instar_matrix::qemu::{self, version_key, QemuImg};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

type Error = Box<dyn std::error::Error>;

fn usage() -> ExitCode {
    eprintln!("usage: gen-baselines [--out DIR] [--table create|measure] [--check]");
    ExitCode::from(2)
}

/// The tables this program records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Table {
    Create,
    Measure,
}

impl Table {
    const ALL: [Table; 2] = [Table::Create, Table::Measure];

    fn name(self) -> &'static str {
        match self {
            Table::Create => "create",
            Table::Measure => "measure",
        }
    }

    /// The table's folder, relative to the repository root.
    fn dir(self) -> &'static str {
        match self {
            Table::Create => Create::DIR,
            Table::Measure => Measure::DIR,
        }
    }
}

/// Copies the tree `from` into `to` (for `--check`).
fn copy_tree(from: &Path, to: &Path) -> Result<(), Error> {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry?;
        let dest = to.join(entry.path().strip_prefix(from)?);
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&dest)?;
        } else {
            std::fs::copy(entry.path(), dest)?;
        }
    }
    Ok(())
}

/// A table's recording of every row under one qemu-img.
type Recorded<K> = Vec<(&'static <K as Kind>::Row, baseline::Baseline<<K as Kind>::Meta>)>;

/// Records `rows` with every qemu-img `found` (`record` runs them all
/// under one), writes each version's folder under `out`, rebuilds the
/// profiles and fails on any inconsistency with the table; returns the
/// files changed.
fn record_versions<K: Kind>(
    name: &str,
    found: &[QemuImg],
    out: &Path,
    rows: &'static [K::Row],
    record: impl Fn(&QemuImg) -> Result<Recorded<K>, baseline::BaselineError>,
) -> Result<usize, Error> {
    let mut changed = 0;
    for q in found {
        let version = version_key(&q.version);
        eprintln!(
            "{name}: recording {} cases with qemu-img {version} ({})",
            rows.len(),
            q.path.display()
        );
        let recorded = record(q)?;
        let pairs: Vec<_> = recorded.iter().map(|(c, b)| (*c, b.clone())).collect();
        changed += baseline::write_version::<K>(out, &version, &pairs)?;
    }
    changed += baseline::write_profiles::<K>(out)?;
    let problems = baseline::consistency_problems::<K>(out, rows);
    for p in &problems {
        eprintln!("inconsistent: {p}");
    }
    if !problems.is_empty() {
        return Err(format!(
            "{} inconsistencies between the table and {}",
            problems.len(),
            out.display()
        )
        .into());
    }
    Ok(changed)
}

fn record_create(found: &[QemuImg], out: &Path) -> Result<usize, Error> {
    record_versions::<Create>("create", found, out, instar_matrix::CREATE_CASES, |q| {
        create_baseline::record_all(q)
    })
}

fn record_measure(found: &[QemuImg], out: &Path) -> Result<usize, Error> {
    let oracle = found.iter().find(|q| version_key(&q.version) == qemu::oracle_version()).ok_or(
        "measure's sources are made by the oracle, qemu-img 10.0.2, which is not installed",
    )?;
    let sources = tempfile::tempdir()?;
    eprintln!("measure: making the source images with {}", oracle.path.display());
    measure_baseline::make_sources(oracle, sources.path())?;
    record_versions::<Measure>("measure", found, out, instar_matrix::MEASURE_CASES, |q| {
        measure_baseline::record_all(q, sources.path())
    })
}

fn run(table: Table, out: &Path) -> Result<usize, Error> {
    let found = qemu::discover(&qemu::repo_root());
    if found.is_empty() {
        return Err("no qemu-img found (install qemu-utils, run `make qemu-matrix`, or set INSTAR_QEMU_IMG)".into());
    }
    match table {
        Table::Create => record_create(&found, out),
        Table::Measure => record_measure(&found, out),
    }
}

/// Records `table` into `committed`, or into a scratch copy of it with
/// `check`; returns the files that changed (or would).
fn one(table: Table, committed: &Path, check: bool) -> Result<usize, Error> {
    let scratch = tempfile::tempdir()?;
    let target = if check {
        if committed.exists() {
            copy_tree(committed, scratch.path())
                .map_err(|e| format!("copying {}: {e}", committed.display()))?;
        }
        scratch.path().to_path_buf()
    } else {
        committed.to_path_buf()
    };
    run(table, &target)
}

fn main() -> ExitCode {
    let mut out: Option<PathBuf> = None;
    let mut tables: Vec<Table> = Table::ALL.to_vec();
    let mut check = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--out" => match args.next() {
                Some(dir) => out = Some(PathBuf::from(dir)),
                None => return usage(),
            },
            "--table" => {
                match args.next().and_then(|n| Table::ALL.into_iter().find(|t| t.name() == n)) {
                    Some(t) => tables = vec![t],
                    None => return usage(),
                }
            }
            "--check" => check = true,
            _ => return usage(),
        }
    }
    let mut failed = false;
    for table in tables {
        let default = qemu::repo_root().join(table.dir());
        let committed = match &out {
            Some(dir) => dir.join(default.file_name().expect("a table folder has a name")),
            None => default,
        };
        match one(table, &committed, check) {
            Ok(0) => println!("{}: baselines up to date in {}", table.name(), committed.display()),
            Ok(n) if check => {
                println!(
                    "{}: {n} baseline files would change in {}",
                    table.name(),
                    committed.display()
                );
                failed = true;
            }
            Ok(n) => println!(
                "{}: {n} baseline files written or removed in {}",
                table.name(),
                committed.display()
            ),
            Err(e) => {
                eprintln!("gen-baselines: {}: {e}", table.name());
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
