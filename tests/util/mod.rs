//! The one harness of the integration tests: the environment (instar, the
//! qemu-img binaries found, the baselines), the one skip policy, the one
//! program runner with its transcript, and the helpers every test group
//! shares ([`edit`] for bytes of image files, [`surfaces`] for the create
//! matrix).
//!
//! - **Discovery.** Every qemu-img comes from `instar_matrix::qemu::discover`
//!   (the system's, `.qemu-matrix/*`, `INSTAR_QEMU_IMG`), once per test
//!   binary ([`env`]). A test that compares against one version asks for
//!   it by version ([`qemu_or_skip`]); a test that needs "the" qemu-img asks
//!   for the oracle ([`oracle_or_skip`]), the version instar prints like by
//!   default (10.0.2, the system's).
//! - **Skipping.** A test that needs a qemu-img that is not installed
//!   (or, in `faults`, root: to mount a tmpfs, make device nodes, run as
//!   `nobody`) prints `SKIPPED <test path>: <reason>` on the real stderr
//!   and returns; with `INSTAR_MATRIX_STRICT=1` it fails instead
//!   ([`skip`]). One exception to strictness: a version `make qemu-matrix`
//!   recorded as no longer offered by Debian (`.qemu-matrix/unavailable`)
//!   skips with the reason recorded, strict or not, since a change in
//!   Debian's archive is outside the project. Nothing else skips.
//! - **Running.** Every program runs through [`Transcript::run`] (assert_cmd,
//!   `LC_ALL=C`, a timeout for hangs), which records it. A failing test
//!   prints, for every command it ran: the command line, its directory,
//!   its exit status, its stdout and its stderr.

pub mod edit;
pub mod surfaces;

use instar_cli::QEMU_VERSION_VAR;
use instar_matrix::baseline::VersionMap;
use instar_matrix::create_baseline::BASELINE_DIR;
use instar_matrix::masks;
use instar_matrix::qemu::{self, version_key, QemuImg};
use instar_matrix::Target;
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// When set (to anything but `0`), a test that needs a qemu-img version
/// that is not installed fails instead of skipping. CI sets it, so CI
/// cannot pass by skipping.
pub const STRICT_ENV: &str = "INSTAR_MATRIX_STRICT";

/// Lines of a stream a failure message shows (a hostile image may make a
/// program print millions).
const DUMP_MAX_LINES: usize = 200;

/// How long one program may run before it counts as hung and is killed.
const TIMEOUT: Duration = Duration::from_secs(600);

/// What every test shares, found once per test binary.
pub struct Env {
    /// The baseline folder.
    pub baselines: PathBuf,
    /// Every qemu-img found, oldest first.
    pub qemus: Vec<QemuImg>,
    /// The committed version map.
    pub map: VersionMap,
    /// The versions Debian no longer offers, with the reason `make
    /// qemu-matrix` recorded ([`qemu::unavailable`]).
    pub unavailable: BTreeMap<String, String>,
}

impl Env {
    /// Looks around: finds the qemu-img binaries and reads the version map.
    fn discover() -> Env {
        let root = qemu::repo_root();
        let baselines = root.join(BASELINE_DIR);
        let qemus = qemu::discover(&root);
        let map = VersionMap::load(&baselines).unwrap_or_default();
        let unavailable = qemu::unavailable(&root);
        let found: Vec<String> = qemus
            .iter()
            .map(|q| format!("{} ({})", version_key(&q.version), q.path.display()))
            .collect();
        let _ = writeln!(
            std::io::stderr(),
            "create_matrix: qemu-img found: {}",
            if found.is_empty() { "none".to_string() } else { found.join(", ") }
        );
        for (version, reason) in &unavailable {
            let _ = writeln!(
                std::io::stderr(),
                "create_matrix: qemu-img {version} unavailable: {reason}"
            );
        }
        Env { baselines, qemus, map, unavailable }
    }

    /// The qemu-img of exactly `version`, if installed.
    pub fn qemu(&self, version: &str) -> Option<&QemuImg> {
        self.qemus.iter().find(|q| version_key(&q.version) == version)
    }
}

/// The environment, discovered on first use.
pub fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(Env::discover)
}

/// The path of the running test (`damage::qcow2::check_damage_qcow2::case_01_leaked_cluster`):
/// libtest runs each test on a thread named after it.
pub fn test_name() -> String {
    std::thread::current().name().unwrap_or("<unnamed test>").to_string()
}

/// Whether a missing qemu-img fails rather than skips.
pub fn strict() -> bool {
    std::env::var(STRICT_ENV).is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Skips the running test for a reason outside the project, saying
/// `SKIPPED <test path>: <reason>` on the real stderr (not captured, so it
/// shows in a plain `cargo test`, and `make test` counts these lines), or
/// fails it when [`STRICT_ENV`] is set. The caller returns right after.
pub fn skip(reason: &str) {
    if strict() {
        panic!("{}: {reason}, and {STRICT_ENV} forbids skipping", test_name());
    }
    say_skipped(reason);
}

/// Skips the running test whether [`STRICT_ENV`] is set or not: only for
/// a qemu-img version Debian no longer offers, or a feature a qemu-img
/// build lacks.
fn say_skipped(reason: &str) {
    let test = test_name();
    // One write of the whole line: stderr is unbuffered, and `writeln!`
    // would write the pieces separately, between other tests' output.
    let line = format!("SKIPPED {test}: {reason}\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// Skips the running test because the qemu-img build it needs lacks a
/// feature it was built without (Debian's 5.2.0 has no zstd): a property
/// of that binary, outside the project, so it skips even when
/// [`STRICT_ENV`] is set. The caller returns right after.
pub fn skip_build_lacks(reason: &str) {
    say_skipped(reason);
}

/// qemu-img `version`, or `None` after skipping the running test (see
/// [`skip`]) because that version is not installed.
pub fn qemu_or_skip(version: &str) -> Option<&'static QemuImg> {
    let found = env().qemu(version);
    if found.is_none() {
        skip_missing(version, "is not installed (`make qemu-matrix` unpacks it)");
    }
    found
}

/// Skips the running test because qemu-img `version` is missing: with the
/// reason `make qemu-matrix` recorded when Debian no longer offers it
/// (even under [`STRICT_ENV`]), else as [`skip`] does.
fn skip_missing(version: &str, why: &str) {
    match env().unavailable.get(version) {
        Some(reason) => say_skipped(&format!("qemu-img {version} is unavailable: {reason}")),
        None => skip(&format!("qemu-img {version} {why}")),
    }
}

/// qemu-img `version` for a test that runs every version it can: a
/// version of the version list (`instar_matrix::KNOWN_VERSIONS`) as
/// [`qemu_or_skip`] finds it (strict mode fails without it); any other
/// version when installed (`INSTAR_QEMU_IMG`, `.qemu-matrix/`), else
/// `None` after a skip that strict mode allows, since nothing installs it.
pub fn qemu_if_installed(version: &str) -> Option<&'static QemuImg> {
    if instar_matrix::KNOWN_VERSIONS.contains(&version) {
        return qemu_or_skip(version);
    }
    let found = env().qemu(version);
    if found.is_none() {
        skip_build_lacks(&format!(
            "qemu-img {version} is not installed (not in known_versions!, so not required; \
             INSTAR_QEMU_IMG can name it)"
        ));
    }
    found
}

/// The oracle ([`qemu::oracle_version`]), or `None` after skipping the
/// running test because it is not installed.
pub fn oracle_or_skip() -> Option<&'static QemuImg> {
    let version = qemu::oracle_version();
    let found = env().qemu(version);
    if found.is_none() {
        skip_missing(
            version,
            "(the oracle) is not installed (Debian bookworm-backports' qemu-utils)",
        );
    }
    found
}

/// The `instar` binary under test.
pub fn instar() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| match std::env::var_os(INSTAR_BIN_ENV) {
        Some(path) => PathBuf::from(path),
        None => assert_cmd::cargo::cargo_bin!("instar").to_path_buf(),
    })
}

/// When set, the instar binary the tests run instead of this build's (to
/// show that a test fails on an older build).
pub const INSTAR_BIN_ENV: &str = "INSTAR_TEST_BIN";

/// A fresh temporary folder.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("instar-test-").tempdir().expect("a temporary folder")
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
    /// Whether it was killed for running longer than its time limit.
    pub timed_out: bool,
    /// Its time limit.
    pub limit: Duration,
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

    /// Its exit status as a failure message says it.
    fn status(&self) -> String {
        match self.code {
            Some(c) => c.to_string(),
            None if self.timed_out => format!("killed after {}s (hung?)", self.limit.as_secs()),
            None => "killed by a signal".to_string(),
        }
    }
}

/// The commands a test ran, in order, for its failure message.
#[derive(Default)]
pub struct Transcript {
    runs: Mutex<Vec<Run>>,
}

impl Transcript {
    /// Runs `program args` in `cwd` (with `LC_ALL=C`, killed after a
    /// timeout), records it, and returns what it did, its output read as
    /// UTF-8 with every other byte shown as `\xNN` ([`shown`]), so that
    /// outputs that differ in such bytes compare different.
    pub fn run<S: AsRef<OsStr>>(&self, program: &Path, args: &[S], cwd: &Path) -> Run {
        self.run_for(program, args, cwd, TIMEOUT)
    }

    /// [`Transcript::run`] with the time limit `limit`.
    pub fn run_for<S: AsRef<OsStr>>(
        &self,
        program: &Path,
        args: &[S],
        cwd: &Path,
        limit: Duration,
    ) -> Run {
        self.run_in_env(program, args, cwd, limit, &[])
    }

    /// [`Transcript::run`] with `vars` set in the environment (the one
    /// place a test may set [`QEMU_VERSION_VAR`]: it is removed from every
    /// other run, so the developer's environment cannot steer a test).
    pub fn run_env<S: AsRef<OsStr>>(
        &self,
        program: &Path,
        args: &[S],
        cwd: &Path,
        vars: &[(&str, &str)],
    ) -> Run {
        self.run_in_env(program, args, cwd, TIMEOUT, vars)
    }

    fn run_in_env<S: AsRef<OsStr>>(
        &self,
        program: &Path,
        args: &[S],
        cwd: &Path,
        limit: Duration,
        vars: &[(&str, &str)],
    ) -> Run {
        let started = Instant::now();
        let out = assert_cmd::Command::new(program)
            .args(args)
            .current_dir(cwd)
            .env("LC_ALL", "C")
            .env_remove(QEMU_VERSION_VAR)
            .envs(vars.iter().copied())
            .timeout(limit)
            .output()
            .unwrap_or_else(|e| self.fail(&format!("cannot run {}: {e}", program.display())));
        let run = Run {
            argv: vars
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .chain(std::iter::once(program.display().to_string()))
                .chain(args.iter().map(|a| shown(a.as_ref().as_encoded_bytes())))
                .collect(),
            cwd: cwd.to_path_buf(),
            code: out.status.code(),
            timed_out: out.status.code().is_none() && started.elapsed() >= limit,
            limit,
            stdout: shown(&out.stdout),
            stderr: shown(&out.stderr),
        };
        self.runs.lock().expect("transcript lock").push(run.clone());
        run
    }

    /// Runs `program args` in `cwd`, which must exit 0 (a step that
    /// builds what the test needs).
    #[track_caller]
    pub fn run_ok<S: AsRef<OsStr>>(&self, program: &Path, args: &[S], cwd: &Path) -> Run {
        let run = self.run(program, args, cwd);
        if !run.ok() {
            self.fail(&format!("{} exited {}", shell_words(&run.argv), run.status()));
        }
        run
    }

    /// Every recorded command with its directory, exit status and output.
    pub fn dump(&self) -> String {
        let mut s = String::new();
        for (i, r) in self.runs.lock().expect("transcript lock").iter().enumerate() {
            let _ = writeln!(s, "--- command {}: {}", i + 1, shell_words(&r.argv));
            let _ = writeln!(s, "    in: {}", r.cwd.display());
            let _ = writeln!(s, "    exit status: {}", r.status());
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

    /// Fails with `message` unless `condition` holds.
    #[track_caller]
    pub fn check(&self, condition: bool, message: impl FnOnce() -> String) {
        if !condition {
            self.fail(&message());
        }
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

    /// Fails unless instar's run (`mine`) printed what qemu-img's run
    /// (`theirs`) printed, program name aside, and exited the same way.
    #[track_caller]
    pub fn assert_same_run(&self, what: &str, theirs: &Run, mine: &Run) {
        self.compare_runs(
            &format!("{what} (qemu-img left, instar right)"),
            theirs,
            mine,
            as_instar,
        );
    }

    /// Fails unless two runs of the same program printed the same and
    /// exited the same way.
    #[track_caller]
    pub fn assert_alike(&self, what: &str, left: &Run, right: &Run) {
        self.compare_runs(what, left, right, str::to_string);
    }

    /// Compares stdout exactly, stderr after `map_stderr` of the left's.
    #[track_caller]
    fn compare_runs(&self, what: &str, left: &Run, right: &Run, map_stderr: fn(&str) -> String) {
        self.assert_same(&format!("{what}: stdout"), &left.stdout, &right.stdout);
        self.assert_same(&format!("{what}: stderr"), &map_stderr(&left.stderr), &right.stderr);
        if left.code != right.code {
            self.fail(&format!(
                "{what}: exit status {} (left), {} (right)",
                left.status(),
                right.status()
            ));
        }
    }

    /// Fails unless `other` is the same file as `reference` outside the
    /// masks of `target` (docs/compat.md §3); `what` names the two.
    #[track_caller]
    pub fn assert_same_bytes(&self, target: Target, reference: &Path, other: &Path, what: &str) {
        let diff = masks::compare_files(target, reference, other)
            .unwrap_or_else(|e| self.fail(&format!("cannot compare {what}: {e}")));
        self.check(diff.is_empty(), || format!("{what} differ outside the masks:\n{diff}"));
    }

    /// Fails unless the masked fields of the `target` image at `path` hold
    /// values qemu could have written (a right checksum, a CID in qemu's
    /// form); `whose` names the image.
    #[track_caller]
    pub fn assert_masked_fields(&self, target: Target, path: &Path, whose: &str) {
        let source = masks::FileSource::open(path)
            .unwrap_or_else(|e| self.fail(&format!("cannot open {whose}: {e}")));
        let problems = masks::masked_field_problems(target, &source);
        self.check(problems.is_empty(), || {
            format!("the masked fields of {whose} are malformed:\n{}", problems.join("\n"))
        });
    }

    /// Runs `args` with `qemu` and with instar in `cwd`, fails unless they
    /// print and exit alike ([`assert_same_run`](Self::assert_same_run)),
    /// and returns the exit code.
    #[track_caller]
    pub fn same<S: AsRef<OsStr>>(&self, qemu: &QemuImg, args: &[S], cwd: &Path) -> Option<i32> {
        let theirs = self.run(&qemu.path, args, cwd);
        let mine = self.run(instar(), args, cwd);
        let what = args.iter().map(|a| a.as_ref().to_string_lossy()).collect::<Vec<_>>().join(" ");
        self.assert_same_run(&what, &theirs, &mine);
        theirs.code
    }
}

fn indent(text: &str) -> String {
    if text.is_empty() {
        return "        (empty)".to_string();
    }
    let total = text.lines().count();
    let mut out: Vec<String> =
        text.lines().take(DUMP_MAX_LINES).map(|l| format!("        {l}")).collect();
    if total > DUMP_MAX_LINES {
        out.push(format!("        ... ({} more lines)", total - DUMP_MAX_LINES));
    }
    out.join("\n")
}

/// A command line as one would type it (arguments with spaces quoted).
fn shell_words(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if a.is_empty() || a.contains([' ', '\'', '"', '\n']) {
                format!("{a:?}")
            } else {
                a.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A test's scratch folder, its transcript, and the oracle: what a test
/// comparing instar with "the" qemu-img works in.
pub struct Sandbox {
    /// Every command the test ran.
    pub t: Transcript,
    /// The oracle.
    pub qemu: &'static QemuImg,
    /// The scratch folder, removed when the test ends.
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    /// A fresh sandbox, or `None` after skipping the running test when the
    /// oracle is not installed.
    pub fn new() -> Option<Sandbox> {
        let qemu = oracle_or_skip()?;
        Some(Sandbox { t: Transcript::default(), qemu, dir: tempdir() })
    }

    /// The scratch folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `name` inside the scratch folder.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs qemu-img in the scratch folder.
    pub fn qemu<S: AsRef<OsStr>>(&self, args: &[S]) -> Run {
        self.t.run(&self.qemu.path, args, self.path())
    }

    /// Runs qemu-img in the scratch folder; it must exit 0.
    #[track_caller]
    pub fn qemu_ok<S: AsRef<OsStr>>(&self, args: &[S]) -> Run {
        self.t.run_ok(&self.qemu.path, args, self.path())
    }

    /// Runs instar in the scratch folder.
    pub fn instar<S: AsRef<OsStr>>(&self, args: &[S]) -> Run {
        self.t.run(instar(), args, self.path())
    }

    /// Runs instar in the scratch folder; it must exit 0.
    #[track_caller]
    pub fn instar_ok<S: AsRef<OsStr>>(&self, args: &[S]) -> Run {
        self.t.run_ok(instar(), args, self.path())
    }

    /// Runs `args` with qemu-img and instar in the scratch folder, fails
    /// unless they agree, and returns the exit code.
    #[track_caller]
    pub fn same<S: AsRef<OsStr>>(&self, args: &[S]) -> Option<i32> {
        self.t.same(self.qemu, args, self.path())
    }
}

/// qemu-img's text as instar must print it: qemu-img names itself (`qemu-img:
/// `) where its error reporter starts a message, at the start of a line or
/// after text qemu printed without a newline (a hint); instar names itself
/// there. Text that merely mentions qemu-img (`Use qemu-img amend ...`,
/// `run 'qemu-img check -r'`) is left alone.
pub fn as_instar(qemu_text: &str) -> String {
    qemu_text.replace("qemu-img: ", "instar: ")
}

/// `create [flags] -f <format> [-o <options>] <image> <size>`: a create
/// command line, `-o` left out when there are no options.
pub fn create_args<'a>(
    flags: &[&'a str],
    format: &'a str,
    options: &'a str,
    image: &'a str,
    size: &'a str,
) -> Vec<&'a str> {
    let mut args = vec!["create"];
    args.extend(flags);
    args.extend(["-f", format]);
    if !options.is_empty() {
        args.extend(["-o", options]);
    }
    args.extend([image, size]);
    args
}

/// A path as a UTF-8 string (temporary paths always are).
pub fn path_str(p: &Path) -> String {
    p.to_str().expect("temporary paths are UTF-8").to_string()
}

/// `bytes` as text: UTF-8 as it is, every byte of an invalid sequence as
/// `\xNN`, so that no two outputs that differ read the same.
pub fn shown(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02X}"));
        }
    }
    out
}

/// The bytes `text` spells, each `\xNN` one byte.
pub fn unescape(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = text.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        let hex = tail.strip_prefix(b"x").and_then(|h| h.get(..2));
        match hex.and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok()) {
            Some(byte) if b == b'\\' => {
                out.push(byte);
                rest = &tail[3..];
            }
            _ => {
                out.push(b);
                rest = tail;
            }
        }
    }
    out
}

/// Runs `check` on every item, each on its own (a panic fails the item,
/// not the run), and fails once at the end naming every item that failed
/// (`what`: the run, for the summary on stderr; `label`: an item's name)
/// with its message.
pub fn check_each<T>(what: &str, items: &[T], label: impl Fn(&T) -> String, check: impl Fn(&T)) {
    let failures: Vec<String> = items
        .iter()
        .filter_map(|item| {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(item)));
            outcome.err().map(|e| {
                let why = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| (*s).to_string()))
                    .unwrap_or_default();
                format!("=== {} ===\n{why}", label(item))
            })
        })
        .collect();
    eprintln!("{what}: {} checked, {} failed", items.len(), failures.len());
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The names of the files in `dir`, sorted (shown as [`shown`] does).
pub fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| shown(e.expect("a folder entry").file_name().as_encoded_bytes()))
        .collect();
    names.sort();
    names
}

/// A checksum of the file at `path` (its length and the CRC-32C of its
/// contents; an unreadable file sums as empty), for showing that a run
/// left a file as it was. CRC-32C because the sandboxes hold images of
/// tens of MiB, summed before and after every run: the crate is built
/// optimised even in test builds (`Cargo.toml`), where a hash compiled
/// without optimisation made these sums most of a lived-in test's time.
pub fn file_sum(path: &Path) -> u64 {
    let data = std::fs::read(path).unwrap_or_default();
    ((data.len() as u64) << 32) | u64::from(crc32c::crc32c(&data))
}

/// The sum a read-only proof rests on sees one byte changed, and a file
/// grown by a zero byte.
#[test]
fn file_sum_sees_a_changed_byte_and_a_longer_file() {
    let dir = tempdir();
    let path = dir.path().join("f");
    std::fs::write(&path, vec![7u8; 1 << 20]).expect("write");
    let before = file_sum(&path);
    let mut data = vec![7u8; 1 << 20];
    data[12345] = 8;
    std::fs::write(&path, &data).expect("write");
    assert_ne!(file_sum(&path), before);
    data[12345] = 7;
    std::fs::write(&path, &data).expect("write");
    assert_eq!(file_sum(&path), before);
    data.push(0);
    std::fs::write(&path, &data).expect("write");
    assert_ne!(file_sum(&path), before);
}
