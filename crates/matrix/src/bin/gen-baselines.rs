//! `gen-baselines`: records what every qemu-img the host offers prints for
//! every case of CREATE_CASES, under `testdata/` (docs/compat.md §7.3), then rebuilds
//! the profiles and `version-map.json` from all version folders on disk.
//!
//! Versions not installed here keep the folders they have, so a machine
//! with only one qemu-img does not erase the others' baselines. Running it
//! twice changes nothing: files are written only when their text changes.
//!
//! Usage: `gen-baselines [--out DIR] [--check]`. `--check` records into a
//! scratch copy and exits 1 if anything would change.
#![allow(clippy::expect_used, reason = "a tool for developers: a panic names what failed")]

use instar_matrix::baseline::{self, BASELINE_DIR};
use instar_matrix::qemu::{self, version_key};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn usage() -> ExitCode {
    eprintln!("usage: gen-baselines [--out DIR] [--check]");
    ExitCode::from(2)
}

/// Copies the tree `from` into `to` (for `--check`).
fn copy_tree(from: &Path, to: &Path) -> Result<(), Box<dyn std::error::Error>> {
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

fn run(out: &Path) -> Result<usize, Box<dyn std::error::Error>> {
    let root = qemu::repo_root();
    let found = qemu::discover(&root);
    if found.is_empty() {
        return Err("no qemu-img found (install qemu-utils, run `make qemu-matrix`, or set INSTAR_QEMU_IMG)".into());
    }
    let mut changed = 0;
    for q in &found {
        let version = version_key(&q.version);
        eprintln!(
            "recording {} cases with qemu-img {version} ({})",
            instar_matrix::CREATE_CASES.len(),
            q.path.display()
        );
        let recorded = baseline::record_all(q)?;
        let pairs: Vec<_> = recorded.iter().map(|(c, b)| (*c, b.clone())).collect();
        changed += baseline::write_version(out, &version, &pairs)?;
    }
    changed += baseline::write_profiles(out)?;
    let problems = baseline::consistency_problems(out, instar_matrix::CREATE_CASES);
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

fn main() -> ExitCode {
    let mut out: Option<PathBuf> = None;
    let mut check = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--out" => match args.next() {
                Some(dir) => out = Some(PathBuf::from(dir)),
                None => return usage(),
            },
            "--check" => check = true,
            _ => return usage(),
        }
    }
    let committed = out.unwrap_or_else(|| qemu::repo_root().join(BASELINE_DIR));
    let scratch = tempfile::tempdir().expect("a temporary folder");
    let target = if check {
        if committed.exists() {
            if let Err(e) = copy_tree(&committed, scratch.path()) {
                eprintln!("gen-baselines: copying {}: {e}", committed.display());
                return ExitCode::FAILURE;
            }
        }
        scratch.path().to_path_buf()
    } else {
        committed.clone()
    };
    match run(&target) {
        Ok(0) => {
            println!("baselines up to date in {}", committed.display());
            ExitCode::SUCCESS
        }
        Ok(n) if check => {
            println!("{n} baseline files would change in {}", committed.display());
            ExitCode::FAILURE
        }
        Ok(n) => {
            println!("{n} baseline files written or removed in {}", committed.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gen-baselines: {e}");
            ExitCode::FAILURE
        }
    }
}
