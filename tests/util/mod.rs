//! Helpers of the create matrix: the environment (instar, the qemu-img
//! binaries found, the baselines), running commands and keeping a
//! transcript of them, and the surfaces themselves ([`surfaces`]).
//!
//! A failing test prints, for every command it ran: the command line, its
//! directory, its exit status, its stdout and its stderr.

pub mod surfaces;

use instar_matrix::baseline::{self, VersionMap, BASELINE_DIR};
use instar_matrix::qemu::{self, version_key, QemuImg};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// When set (to anything but `0`), a qemu-img version that is not
/// installed fails its tests instead of skipping them. CI sets it, so CI
/// cannot pass by skipping.
pub const STRICT_ENV: &str = "INSTAR_MATRIX_STRICT";

/// What every test of the matrix shares, found once per test binary.
pub struct Env {
    /// The baseline folder.
    pub baselines: PathBuf,
    /// Every qemu-img found, oldest first.
    pub qemus: Vec<QemuImg>,
    /// The qemu-img that live comparisons run against: the system's, else
    /// the newest found.
    pub oracle: Option<QemuImg>,
    /// The committed version map.
    pub map: VersionMap,
}

impl Env {
    /// Looks around: finds the qemu-img binaries and reads the version map.
    pub fn discover() -> Env {
        let root = qemu::repo_root();
        let baselines = root.join(BASELINE_DIR);
        let qemus = qemu::discover(&root);
        let oracle = qemu::system().or_else(|| qemus.last().cloned());
        let map = VersionMap::load(&baselines).unwrap_or_default();
        let mut err = std::io::stderr();
        let found: Vec<String> = qemus
            .iter()
            .map(|q| format!("{} ({})", version_key(&q.version), q.path.display()))
            .collect();
        let _ = writeln!(
            err,
            "create_matrix: qemu-img found: {}",
            if found.is_empty() { "none".to_string() } else { found.join(", ") }
        );
        Env { baselines, qemus, oracle, map }
    }

    /// The qemu-img of exactly `version`, if installed.
    pub fn qemu(&self, version: &str) -> Option<&QemuImg> {
        self.qemus.iter().find(|q| version_key(&q.version) == version)
    }

    /// qemu-img `version` for the test `test`, or `None` after skipping
    /// the test (see [`skip`]) because that version is not installed.
    pub fn qemu_or_skip(&self, version: &str, test: &str) -> Option<&QemuImg> {
        let qemu = self.qemu(version);
        if qemu.is_none() {
            skip(
                test,
                &format!("qemu-img {version} is not installed (`make qemu-matrix` unpacks 7.2.22)"),
            );
        }
        qemu
    }

    /// The newest version the baselines know (what instar's `info` prints
    /// by default).
    pub fn newest_known(&self) -> Option<String> {
        self.map.versions().last().map(version_key)
    }
}

/// The `instar` binary under test.
pub fn instar() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_instar"))
}

/// Whether missing qemu-img versions fail rather than skip.
pub fn strict() -> bool {
    std::env::var(STRICT_ENV).is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Skips the calling test for a reason outside the project, saying so on
/// the real stderr (not captured, so it shows in a plain `cargo test`), or
/// fails it when [`STRICT_ENV`] is set. The caller returns right after.
pub fn skip(test: &str, reason: &str) {
    if strict() {
        panic!("{test}: {reason}, and {STRICT_ENV} forbids skipping");
    }
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {reason}");
}

/// One finished command.
#[derive(Debug, Clone)]
pub struct Run {
    /// The program and its arguments.
    pub argv: Vec<String>,
    /// Where it ran.
    pub cwd: PathBuf,
    /// Its exit code (`None`: killed by a signal).
    pub code: Option<i32>,
    /// What it printed on stdout.
    pub stdout: String,
    /// What it printed on stderr.
    pub stderr: String,
}

impl Run {
    /// Whether it exited 0.
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }
}

/// The commands a test ran, in order, for its failure message.
#[derive(Default)]
pub struct Transcript {
    runs: Mutex<Vec<Run>>,
}

impl Transcript {
    /// Runs `program args` in `cwd`, records it, and returns what it did.
    pub fn run(&self, program: &Path, args: &[String], cwd: &Path) -> Run {
        let out = Command::new(program)
            .args(args)
            .current_dir(cwd)
            .env("LC_ALL", "C")
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}\n{}", program.display(), self.dump()));
        let run = Run {
            argv: std::iter::once(program.display().to_string())
                .chain(args.iter().cloned())
                .collect(),
            cwd: cwd.to_path_buf(),
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        self.runs.lock().expect("transcript lock").push(run.clone());
        run
    }

    /// Every recorded command with its directory, exit status and output.
    pub fn dump(&self) -> String {
        let mut s = String::new();
        for (i, r) in self.runs.lock().expect("transcript lock").iter().enumerate() {
            let _ = writeln!(s, "--- command {}: {}", i + 1, shell_words(&r.argv));
            let _ = writeln!(s, "    in: {}", r.cwd.display());
            let _ = writeln!(
                s,
                "    exit status: {}",
                r.code.map_or("killed by a signal".to_string(), |c| c.to_string())
            );
            let _ = writeln!(s, "    stdout:\n{}", indent(&r.stdout));
            let _ = writeln!(s, "    stderr:\n{}", indent(&r.stderr));
        }
        s
    }

    /// Fails the test with `message` and the transcript.
    #[track_caller]
    pub fn fail(&self, message: &str) -> ! {
        panic!("{message}\n\ncommands run:\n{}", self.dump())
    }

    /// Fails unless `expected == actual`; the failure shows a line diff,
    /// then the transcript.
    #[track_caller]
    pub fn assert_same(&self, what: &str, expected: &str, actual: &str) {
        if expected != actual {
            // Printed first: similar-asserts' panic carries the diff.
            eprintln!("commands run:\n{}", self.dump());
            instar_matrix::info_json::assert_same(what, expected, actual);
        }
    }
}

fn indent(text: &str) -> String {
    if text.is_empty() {
        return "        (empty)".to_string();
    }
    text.lines().map(|l| format!("        {l}")).collect::<Vec<_>>().join("\n")
}

/// A command line as one would type it (arguments with spaces quoted).
fn shell_words(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if a.is_empty() || a.contains([' ', '\'', '"']) {
                format!("'{a}'")
            } else {
                a.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// qemu-img's text as instar must print it: qemu-img names itself at the
/// start of its error lines, instar names itself there.
pub fn as_instar(qemu_text: &str) -> String {
    qemu_text
        .split_inclusive('\n')
        .map(|line| match line.strip_prefix("qemu-img: ") {
            Some(rest) => format!("instar: {rest}"),
            None => line.to_string(),
        })
        .collect()
}

/// A path as a UTF-8 string (temporary paths always are).
pub fn path_str(p: &Path) -> String {
    p.to_str().expect("temporary paths are UTF-8").to_string()
}

/// A recorded baseline's argv with `$FILENAME` set to `path`, program
/// name dropped.
pub fn args_for(argv: &[String], path: &str) -> Vec<String> {
    argv.iter().skip(1).map(|a| a.replace(instar_matrix::info_json::FILENAME, path)).collect()
}

/// The baseline that applies to qemu-img `version` (through the version
/// map's profile selection).
pub fn baseline_for(
    env: &Env,
    version: &str,
    case: &instar_matrix::Case,
) -> Result<baseline::Baseline, String> {
    let v = instar_matrix::semver::Version::parse(version).map_err(|e| e.to_string())?;
    let profile =
        baseline::select_profile(&env.map, &v).ok_or("the version map knows no version")?;
    baseline::read_profile_case(&env.baselines, profile, case).map_err(|e| e.to_string())
}
