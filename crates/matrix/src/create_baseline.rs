//! create's baselines: what each qemu-img version's `info --output=json`
//! prints for the image its `create` made of each row of CREATE_CASES,
//! stored in the shared layout of [`baseline`](crate::baseline) under
//! [`BASELINE_DIR`] (docs/compat.md §7.3).
//!
//! The stored stdout is qemu-img's text after the whitelist of
//! [`info_json`](crate::info_json) (placeholders for the temporary path,
//! `actual-size` and the vmdk CID), so that recording twice, on any host
//! file system, writes the same bytes.

use crate::baseline::{self, code, io_err, BaselineError, Kind, QEMU_IMG};
use crate::cases::{Case, Target, CREATE_CASES};
use crate::info_json::{self, FILENAME};
use crate::qemu::{version_key, QemuImg};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

/// Where create's baselines live, relative to the repository root.
pub const BASELINE_DIR: &str = "testdata/expected-outputs/create-info-json";

/// What a baseline records besides the two output texts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    /// The table target (`qcow2`, `vhd`, ...).
    pub target: String,
    /// The case name within the target (`1G-default`).
    pub case: String,
    /// The qemu-img version that recorded this baseline (`10.0.2`).
    pub qemu_version: String,
    /// The first line of that qemu-img's `--version`.
    pub qemu_version_line: String,
    /// The create command, program name first, image path as `$FILENAME`.
    pub create_argv: Vec<String>,
    /// The create command's exit code.
    pub create_return_code: i32,
    /// What create printed on stdout (path as `$FILENAME`).
    pub create_stdout: String,
    /// What create printed on stderr (path as `$FILENAME`).
    pub create_stderr: String,
    /// The info command, or empty when create failed and info did not run.
    pub info_argv: Vec<String>,
    /// The info command's exit code; `None` when it did not run.
    pub info_return_code: Option<i32>,
}

/// One recorded row of CREATE_CASES under one qemu-img version.
pub type Baseline = baseline::Baseline<Meta>;

/// CREATE_CASES as the baseline store sees it: rows under their target's
/// folder, named `<target>-<case>` in profiles (case names repeat across
/// targets: `1M-default` exists for five).
#[derive(Debug, Clone, Copy)]
pub struct Create;

impl Kind for Create {
    type Row = Case;
    type Meta = Meta;
    const DIR: &'static str = BASELINE_DIR;

    fn folders() -> Vec<&'static str> {
        Target::ALL.iter().map(|t| t.name()).collect()
    }

    fn folder(row: &Case) -> &'static str {
        row.target.name()
    }

    fn stem(row: &Case) -> &'static str {
        row.name
    }

    fn profile_stem(folder: &str, stem: &str) -> String {
        format!("{folder}-{stem}")
    }

    fn meta_version(meta: &Meta) -> &str {
        &meta.qemu_version
    }

    fn meta_row(meta: &Meta) -> (String, String) {
        (meta.target.clone(), meta.case.clone())
    }

    fn anonymous(meta: &Meta) -> Meta {
        let mut meta = meta.clone();
        meta.qemu_version.clear();
        meta.qemu_version_line.clear();
        meta
    }
}

impl Baseline {
    /// Whether the recorded create succeeded.
    pub fn create_succeeded(&self) -> bool {
        self.meta.create_return_code == 0
    }
}

/// Replaces every occurrence of the temporary path in `text`.
fn hide_path(text: &str, path: &str) -> String {
    text.replace(path, FILENAME)
}

/// The arguments of the info command the baselines record.
pub fn info_args(case: &Case, path: &str) -> Vec<String> {
    ["info", "--output=json", "-f", case.target.format(), path]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// Runs `case` through `qemu` in `workdir`: create, then (if that worked)
/// `info --output=json`, and returns what a baseline stores.
pub fn record(qemu: &QemuImg, case: &Case, workdir: &Path) -> Result<Baseline, BaselineError> {
    let image = workdir.join(case.file_name());
    let path = image.to_str().expect("temporary paths are UTF-8").to_string();
    let argv = |args: Vec<String>| {
        std::iter::once(QEMU_IMG.to_string())
            .chain(args.iter().map(|a| hide_path(a, &path)))
            .collect()
    };
    let spawn = |args: &[String]| {
        Command::new(&qemu.path)
            .args(args)
            .output()
            .map_err(|e| BaselineError::Spawn(qemu.path.clone(), e))
    };

    let create_args = case.create_args(&path);
    let created = spawn(&create_args)?;
    let mut meta = Meta {
        target: case.target.name().to_string(),
        case: case.name.to_string(),
        qemu_version: version_key(&qemu.version),
        qemu_version_line: qemu.version_line.clone(),
        create_argv: argv(create_args),
        create_return_code: code(created.status),
        create_stdout: hide_path(&String::from_utf8_lossy(&created.stdout), &path),
        create_stderr: hide_path(&String::from_utf8_lossy(&created.stderr), &path),
        info_argv: Vec::new(),
        info_return_code: None,
    };
    if !created.status.success() {
        return Ok(Baseline { stdout: String::new(), stderr: String::new(), meta });
    }

    let args = info_args(case, &path);
    let info = spawn(&args)?;
    meta.info_argv = argv(args);
    meta.info_return_code = Some(code(info.status));
    let raw = String::from_utf8_lossy(&info.stdout).into_owned();
    let stdout = match serde_json::from_str::<serde_json::Value>(&raw) {
        Ok(value) => {
            let reprinted = info_json::to_qemu_pretty(&value);
            if reprinted != raw {
                return Err(BaselineError::Unprintable(
                    case.id(),
                    format!("{raw:?} vs {reprinted:?}"),
                ));
            }
            info_json::normalise_text(&raw, &path).expect("parsed once already")
        }
        // Not JSON (info failed): stored as printed, path hidden.
        Err(_) => hide_path(&raw, &path),
    };
    let stderr = hide_path(&String::from_utf8_lossy(&info.stderr), &path);
    Ok(Baseline { stdout, stderr, meta })
}

/// Records every case of the table under `qemu`.
pub fn record_all(qemu: &QemuImg) -> Result<Vec<(&'static Case, Baseline)>, BaselineError> {
    let dir = tempfile::tempdir().map_err(io_err(Path::new("temporary folder")))?;
    CREATE_CASES.iter().map(|case| Ok((case, record(qemu, case, dir.path())?))).collect()
}

/// A one-paragraph account of a stored baseline, for failure messages.
pub fn describe(b: &Baseline) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "recorded by {} ({})", b.meta.qemu_version, b.meta.qemu_version_line);
    let _ = writeln!(s, "create: {:?} -> exit {}", b.meta.create_argv, b.meta.create_return_code);
    let _ = writeln!(s, "info: {:?} -> exit {:?}", b.meta.info_argv, b.meta.info_return_code);
    s
}
