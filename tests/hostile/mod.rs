//! The hostile-input regression corpus: every finding of a hostile-input
//! campaign or of the fuzzers, kept as a case under `testdata/hostile/`
//! (`<name>.case`, beside the minimised inputs it names), run here by
//! one test that names each case that fails.
//!
//! A case file is `key: value` lines (`#` starts a comment line):
//!
//! ```text
//! # What the input is, and what went wrong before.
//! input: vhdx-log-spans-whole-log.vhdx   a file of testdata/hostile/, copied in
//! input: fifo f.img                      or a FIFO, a folder (dir NAME), a
//!                                        character device (chardev NAME MAJOR MINOR)
//! run: info vhdx-log-spans-whole-log.vhdx    instar's arguments (split on spaces)
//! exit: 1
//! stderr: instar: Could not open '...': ...  one line each, all of them, or
//! stderr-lines: 3145738                      for outputs too long to list: the
//! stderr-first: ERROR ...                    count, the first and the last line
//! stderr-last: ERROR ...
//! stdout: ...                                (optional) one line each
//! qemu: same                                 qemu-img 10.0.2 prints the same and
//!                                            exits alike (checked when installed);
//!                                            or `hangs`, `runs-away`, `aborts`, `differs`,
//!                                            followed by why, for docs/compat.md §8
//! ```
//!
//! Values may spell any byte as `\xNN`. instar runs with its address space
//! limited to [`MEMORY_LIMIT`] and its processor time to [`CPU_LIMIT`]
//! (through `prlimit`), and killed after [`TIME_LIMIT`]: running out of
//! any fails the case. Afterwards every
//! input is as it was (same type, same bytes, same device), and `info` or
//! `check` left no new file.

use crate::util::{instar, oracle_or_skip, shown, skip, tempdir, unescape, Run, Transcript};
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The address space instar may use on any case: qemu-img itself needs
/// under 64 MiB of memory on every input of the corpus it can handle.
const MEMORY_LIMIT: u64 = 64 << 20;

/// The processor time instar may use on any case, which catches a loop
/// that never ends: these inputs are small (the largest case, 3 million
/// lines of `check` errors, needs about 10 s in a debug build).
const CPU_LIMIT: u64 = 30;

/// How long instar may take on any case in wall time, which catches a
/// wait that never ends (a FIFO opened for reading). Looser than
/// [`CPU_LIMIT`]: the suite runs its tests side by side on two cores, and
/// on a loaded machine the largest case took 36 s of wall time for 10 s
/// of processor time.
const TIME_LIMIT: Duration = Duration::from_secs(120);

/// How long qemu-img may take where the case says it answers as instar.
const QEMU_TIME_LIMIT: Duration = Duration::from_secs(60);

/// Where the corpus is.
const CORPUS: &str = "testdata/hostile";

/// One input of a case, made in the case's folder.
#[derive(Debug)]
enum Input {
    /// A file of the corpus, copied in under its name.
    File(String),
    /// A FIFO of this name.
    Fifo(String),
    /// An empty folder of this name.
    Dir(String),
    /// A character device of this name, major and minor.
    CharDev(String, u32, u32),
}

impl Input {
    fn name(&self) -> &str {
        match self {
            Input::File(n) | Input::Fifo(n) | Input::Dir(n) | Input::CharDev(n, ..) => n,
        }
    }
}

/// What the case expects of qemu-img.
#[derive(Debug, PartialEq)]
enum Qemu {
    /// The same output and exit code as instar's (program name aside).
    Same,
    /// Something else, said in the case (a deliberate difference).
    Other(String),
}

/// A parsed case file.
#[derive(Debug)]
struct Case {
    inputs: Vec<Input>,
    args: Vec<OsString>,
    exit: i32,
    stderr: Vec<String>,
    stderr_count: Option<(usize, String, String)>,
    stdout: Option<Vec<String>>,
    qemu: Qemu,
}

/// The text an expected line stands for, as the harness shows output.
fn expected(value: &str) -> String {
    shown(&unescape(value))
}

fn parse_case(text: &str, path: &Path) -> Case {
    let bad = |line: &str, why: &str| -> ! { panic!("{}: {why}: {line:?}", path.display()) };
    let mut inputs = Vec::new();
    let (mut args, mut exit, mut qemu) = (None, None, None);
    let (mut stderr, mut stdout) = (Vec::new(), None::<Vec<String>>);
    let (mut count, mut first, mut last) = (None, None, None);
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let Some((key, value)) = line.split_once(": ").or_else(|| {
            // A key with an empty value (an empty line of output).
            line.strip_suffix(':').map(|k| (k, ""))
        }) else {
            bad(line, "not `key: value`")
        };
        match key {
            "input" => {
                let words: Vec<&str> = value.split_whitespace().collect();
                inputs.push(match words.as_slice() {
                    [file] => Input::File((*file).to_string()),
                    ["fifo", name] => Input::Fifo((*name).to_string()),
                    ["dir", name] => Input::Dir((*name).to_string()),
                    ["chardev", name, major, minor] => Input::CharDev(
                        (*name).to_string(),
                        major.parse().unwrap_or_else(|_| bad(line, "major")),
                        minor.parse().unwrap_or_else(|_| bad(line, "minor")),
                    ),
                    _ => bad(line, "unknown input"),
                });
            }
            "run" => {
                args = Some(
                    value.split(' ').map(|a| OsString::from_vec(unescape(a))).collect::<Vec<_>>(),
                );
            }
            "exit" => exit = Some(value.parse().unwrap_or_else(|_| bad(line, "exit code"))),
            "stderr" => stderr.push(expected(value)),
            "stdout" => stdout.get_or_insert_with(Vec::new).push(expected(value)),
            "stderr-lines" => count = Some(value.parse().unwrap_or_else(|_| bad(line, "count"))),
            "stderr-first" => first = Some(expected(value)),
            "stderr-last" => last = Some(expected(value)),
            "qemu" => {
                qemu = Some(if value == "same" { Qemu::Same } else { Qemu::Other(value.into()) });
            }
            _ => bad(line, "unknown key"),
        }
    }
    let stderr_count = match (count, first, last) {
        (Some(n), Some(f), Some(l)) => Some((n, f, l)),
        (None, None, None) => None,
        _ => bad("stderr-lines", "needs stderr-first and stderr-last"),
    };
    Case {
        inputs,
        args: args.unwrap_or_else(|| bad("run", "missing")),
        exit: exit.unwrap_or_else(|| bad("exit", "missing")),
        stderr,
        stderr_count,
        stdout,
        qemu: qemu.unwrap_or_else(|| bad("qemu", "missing: say what qemu-img does")),
    }
}

/// An input's state: its type, and its bytes or device number.
fn state(path: &Path) -> Option<(String, Vec<u8>, u64)> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    let kind = meta.file_type();
    let bytes = if kind.is_file() { std::fs::read(path).ok()? } else { Vec::new() };
    Some((format!("{kind:?}"), bytes, meta.rdev()))
}

/// Makes the inputs in `dir`; `false` (after saying why) when this
/// machine cannot (a device node needs root).
fn make_inputs(case: &Case, dir: &Path) -> bool {
    for input in &case.inputs {
        let at = dir.join(input.name());
        match input {
            Input::File(name) => {
                std::fs::copy(Path::new(CORPUS).join(name), &at)
                    .unwrap_or_else(|e| panic!("{CORPUS}/{name}: {e}"));
            }
            Input::Fifo(_) => {
                assert!(node(&["mkfifo", "-m", "644"], &at, &[]), "mkfifo {}", at.display());
            }
            Input::Dir(_) => std::fs::create_dir(&at).expect("a folder"),
            Input::CharDev(_, major, minor) => {
                let numbers = ["c".to_string(), major.to_string(), minor.to_string()];
                if !node(&["mknod", "-m", "644"], &at, &numbers) {
                    skip("making a device node needs root (CAP_MKNOD)");
                    return false;
                }
            }
        }
    }
    true
}

/// Runs `command at rest` (mkfifo, mknod): whether it succeeded.
fn node(command: &[&str], at: &Path, rest: &[String]) -> bool {
    std::process::Command::new(command[0])
        .args(&command[1..])
        .arg(at)
        .args(rest)
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs instar on the case in a fresh folder, within the limits.
fn run_instar(t: &Transcript, case: &Case, dir: &Path) -> Run {
    let mut args: Vec<OsString> = vec![
        format!("--as={MEMORY_LIMIT}").into(),
        format!("--cpu={CPU_LIMIT}").into(),
        "--".into(),
        instar().as_os_str().to_owned(),
    ];
    args.extend(case.args.iter().cloned());
    t.run_for(Path::new("prlimit"), &args, dir, TIME_LIMIT)
}

/// Every case of the corpus, each run on its own; the failures are
/// reported together, each with its case's name and transcript. (The
/// corpus is read when the test runs, so a new case needs no rebuild.)
#[test]
fn corpus() {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(CORPUS)
        .expect("the corpus folder")
        .map(|e| e.expect("a folder entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "case"))
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no case in {CORPUS}");
    crate::util::check_each("hostile corpus", &cases, |p| p.display().to_string(), |p| run_case(p));
}

/// Runs the case in `path`, panicking (with the transcript) on failure.
fn run_case(path: &Path) {
    let text = std::fs::read_to_string(path).expect("a case file");
    let case = parse_case(&text, path);
    let t = Transcript::default();
    let dir = tempdir();
    if !make_inputs(&case, dir.path()) {
        return;
    }
    let before: Vec<_> = case.inputs.iter().map(|i| state(&dir.path().join(i.name()))).collect();
    let files_before = crate::util::files_in(dir.path());

    let run = run_instar(&t, &case, dir.path());
    t.check(run.code == Some(case.exit), || {
        format!("instar exited {:?}, the case expects {}", run.code, case.exit)
    });
    let lines: Vec<&str> = run.stderr.lines().collect();
    match &case.stderr_count {
        Some((n, first, last)) => {
            t.check(lines.len() == *n, || format!("{} stderr lines, expected {n}", lines.len()));
            t.check(lines.first() == Some(&first.as_str()), || "first stderr line".into());
            t.check(lines.last() == Some(&last.as_str()), || "last stderr line".into());
        }
        None => t.assert_same("stderr (case left, instar right)", &case.stderr.join("\n"), {
            run.stderr.strip_suffix('\n').unwrap_or(&run.stderr)
        }),
    }
    if let Some(stdout) = &case.stdout {
        t.assert_same("stdout (case left, instar right)", &stdout.join("\n"), {
            run.stdout.strip_suffix('\n').unwrap_or(&run.stdout)
        });
    }
    for (input, was) in case.inputs.iter().zip(&before) {
        let now = state(&dir.path().join(input.name()));
        t.check(&now == was, || format!("input {} changed", input.name()));
    }
    let reads_only = matches!(case.args.first().and_then(|a| a.to_str()), Some("info" | "check"));
    if reads_only {
        let files_after = crate::util::files_in(dir.path());
        t.check(files_after == files_before, || format!("files now: {files_after:?}"));
    }

    if case.qemu == Qemu::Same {
        let Some(qemu) = oracle_or_skip() else { return };
        let qdir = tempdir();
        make_inputs(&case, qdir.path());
        let theirs = t.run_for(&qemu.path, &case.args, qdir.path(), QEMU_TIME_LIMIT);
        let named = |text: &str| text.replace("qemu-img", "instar");
        t.assert_same("stderr (qemu-img left, instar right)", &named(&theirs.stderr), &run.stderr);
        t.assert_same("stdout (qemu-img left, instar right)", &named(&theirs.stdout), &run.stdout);
        t.check(theirs.code == run.code, || {
            format!("exit codes differ: qemu-img {:?}, instar {:?}", theirs.code, run.code)
        });
    }
}
