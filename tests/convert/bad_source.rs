//! Bad sources: every image file of the hostile corpus (`testdata/hostile`,
//! see `tests/hostile`), a qcow2 whose compressed cluster is garbage, one
//! cut inside a compressed payload, and a backing chain that loops,
//! converted by instar to qcow2 and to raw. instar must not panic or run
//! away: where it fails it exits 1 with qemu-img's error (one line where
//! qemu-img never answers or aborts), leaves no target, and it never needs more
//! than [`MAX_RSS_KIB`] of memory. Each conversion runs with `-m 1`, where
//! qemu-img's messages come in a fixed order and instar's must be the
//! same, and with the default 8 coroutines, where qemu-img reports the
//! read errors in the order they happen (it varies): there each of
//! instar's lines must be one of qemu-img's.

use super::{make_recipes, qemu_as_instar};
use crate::util::{instar, oracle_or_skip, tempdir, Run, Transcript};
use instar_matrix::ConvertSource;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The most memory (maximum resident set, KiB) instar may use on a bad
/// source: qemu-img needs less on every input it answers.
const MAX_RSS_KIB: u64 = 64 * 1024;

/// How long instar may take on one input (a debug build, a busy host).
const TIME_LIMIT: Duration = Duration::from_secs(120);

/// How long qemu-img may take before it counts as never answering (it
/// opens a looping chain without end).
const QEMU_TIME_LIMIT: Duration = Duration::from_secs(10);

/// GNU time, which reports the maximum resident set of what it runs.
const TIME: &str = "/usr/bin/time";

/// Where the corpus is.
const CORPUS: &str = "testdata/hostile";

/// The image files the corpus's cases name (`input: FILE`).
fn corpus_inputs() -> Vec<PathBuf> {
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(CORPUS)
        .expect("the corpus folder")
        .map(|e| e.expect("a folder entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "case"))
        .flat_map(|case| {
            let text = std::fs::read_to_string(&case).expect("a case file");
            text.lines()
                .filter_map(|l| l.strip_prefix("input: "))
                .filter(|v| !v.contains(' '))
                .map(|v| Path::new(CORPUS).join(v.trim()))
                .collect::<Vec<_>>()
        })
        .collect();
    inputs.sort();
    inputs.dedup();
    inputs
}

/// Runs instar's `convert -O <format> <input> <target>` in `dir` under
/// GNU time; returns the run and the maximum resident set in KiB.
fn run_instar(t: &Transcript, dir: &Path, args: &[String]) -> (Run, Option<u64>) {
    let report = tempdir();
    let rss_file = report.path().join("rss");
    let mut argv = vec!["-f".to_string(), "%M".to_string(), "-o".to_string()];
    argv.push(rss_file.display().to_string());
    argv.push(instar().display().to_string());
    argv.extend(args.iter().cloned());
    let run = t.run_for(Path::new(TIME), &argv, dir, TIME_LIMIT);
    let rss = std::fs::read_to_string(&rss_file)
        .ok()
        .and_then(|s| s.lines().last().and_then(|l| l.trim().parse().ok()));
    (run, rss)
}

/// Converts `input` (made in a fresh folder by `prepare`) with instar to
/// each target format and checks the module's rules.
fn check_source(what: &str, input: &str, prepare: &dyn Fn(&Path)) {
    let t = Transcript::default();
    // Once qemu-img has not answered on this input, it is not asked again.
    let mut qemu_answers = true;
    for (format, serial) in [("raw", true), ("raw", false), ("qcow2", true), ("qcow2", false)] {
        let target = format!("t.{format}");
        let mut args: Vec<&str> = vec!["convert", "-O", format, input, &target];
        if serial {
            args.splice(1..1, ["-m", "1"]);
        }
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let format = if serial { format!("{format} -m 1") } else { format.to_string() };
        let dir = tempdir();
        prepare(dir.path());
        let before = crate::util::files_in(dir.path());
        let (mine, rss) = run_instar(&t, dir.path(), &args);
        t.check(!mine.timed_out, || format!("{what} -O {format}: instar ran away"));
        t.check(matches!(mine.code, Some(0 | 1)), || {
            format!("{what} -O {format}: instar exited {:?} (a panic is 101)", mine.code)
        });
        t.check(!mine.stderr.contains("panicked"), || format!("{what}: instar panicked"));
        if let Some(kib) = rss {
            t.check(kib <= MAX_RSS_KIB, || {
                format!("{what} -O {format}: instar used {kib} KiB (at most {MAX_RSS_KIB})")
            });
        }
        let qdir = tempdir();
        prepare(qdir.path());
        let theirs = oracle_or_skip()
            .filter(|_| qemu_answers)
            .map(|q| t.run_for(&q.path, &args, qdir.path(), QEMU_TIME_LIMIT))
            // A run stopped or killed by a signal (qemu-img's assertions
            // abort) is no answer to match (docs/compat.md §8).
            .filter(|r| !r.timed_out && r.code.is_some());
        qemu_answers = theirs.is_some();
        match &theirs {
            Some(theirs) => {
                let named = |s: &str| s.replace(&instar().display().to_string(), "instar");
                let want = qemu_as_instar(&theirs.stderr);
                let got = named(&mine.stderr);
                if serial {
                    t.assert_same(
                        &format!("{what} -O {format}: stderr (qemu-img left, instar right)"),
                        &want,
                        &got,
                    );
                } else {
                    // qemu-img's coroutines report their read errors in
                    // the order they fail, which varies run to run.
                    t.check(got.lines().all(|l| want.lines().any(|w| w == l)), || {
                        format!("{what} -O {format}: instar's lines are not qemu-img's")
                    });
                }
                t.check(theirs.code == mine.code, || {
                    format!(
                        "{what} -O {format}: qemu-img exited {:?}, instar {:?}",
                        theirs.code, mine.code
                    )
                });
            }
            None => t.check(mine.code == Some(1) && mine.stderr.lines().count() == 1, || {
                format!(
                    "{what} -O {format}: qemu-img never answers or aborts; instar must fail with one line"
                )
            }),
        }
        if mine.code == Some(1) {
            let after = crate::util::files_in(dir.path());
            t.check(after == before, || {
                format!("{what} -O {format}: instar failed and left files: {after:?} (before {before:?})")
            });
        }
    }
}

/// Every image of the hostile corpus; the failures reported together.
#[test]
fn hostile_corpus() {
    if !Path::new(TIME).exists() {
        crate::util::skip("GNU time (/usr/bin/time) is not installed: no memory measure");
        return;
    }
    let inputs = corpus_inputs();
    assert!(!inputs.is_empty(), "no image in {CORPUS}");
    let label = |input: &PathBuf| input.display().to_string();
    crate::util::check_each("convert of the hostile corpus", &inputs, label, |input| {
        let name = input.file_name().expect("a file name").to_string_lossy().into_owned();
        let copy = |dir: &Path| {
            std::fs::copy(input, dir.join(&name)).expect("a copy of the input");
        };
        check_source(&name, &name, &copy);
    });
}

/// A source made by a recipe of CONVERT_CASES.
fn recipe_source(recipe: ConvertSource) {
    let Some(oracle) = oracle_or_skip() else { return };
    if !Path::new(TIME).exists() {
        crate::util::skip("GNU time (/usr/bin/time) is not installed: no memory measure");
        return;
    }
    let t = Transcript::default();
    let make = |dir: &Path| make_recipes(&t, oracle, &[recipe], dir);
    check_source(&format!("{recipe:?}"), recipe.file_name(), &make);
}

#[test]
fn corrupt_compressed_cluster() {
    recipe_source(ConvertSource::Qcow2CorruptCompressed);
}

#[test]
fn truncated_compressed_cluster() {
    recipe_source(ConvertSource::Qcow2TruncatedCompressed);
}

#[test]
fn backing_chain_loop() {
    recipe_source(ConvertSource::Qcow2Loop);
}

#[test]
fn truncated_data() {
    recipe_source(ConvertSource::Qcow2Truncated);
}
