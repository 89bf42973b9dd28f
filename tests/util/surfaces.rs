//! The test surfaces of docs/compat.md §4.2, one function each, run for one row of
//! CREATE_CASES (named by its test identifier) and, where it applies, one
//! qemu-img version.
//!
//! - [`baseline`]: instar creates as qemu-img V (`--qemu-version V`);
//!   `instar info --qemu-version V --output=json` of the image, and qemu-img
//!   V's when V is installed, equal what V printed for its own image when
//!   the baseline was recorded (whitelist applied). A recorded failure must
//!   be failed the same way. Without V installed the recorded baselines
//!   keep being checked.
//! - [`cross_validation`]: instar and the live qemu-img each create the
//!   case; `instar info --output=json` says the same of both.
//! - [`check_roundtrip`]: `instar check` on instar's image prints what
//!   qemu-img check prints on it (clean, or no check for raw and vpc);
//!   instar's own `check --deep` finds a VHD clean.
//! - [`bytes`]: instar's file (`create --qemu-version V`) is qemu-img V's
//!   file, outside the masks, with the same output and exit code; a
//!   preallocated one is also allocated alike.
//! - [`info_parity`]: on qemu-img V's image, `instar info` (JSON and human,
//!   probed and with `-f`) prints exactly what V prints.

use super::{
    as_instar, env, instar, oracle_or_skip, path_str, qemu_or_skip, tempdir, test_name, Env, Run,
    Transcript,
};
use crate::parity::vpc::assert_deep_clean;
use instar_matrix::baseline;
use instar_matrix::cases::{self, Case, Target};
use instar_matrix::create_baseline::{self, Create};
use instar_matrix::files::allocated;
use instar_matrix::info_json::{self, FILENAME};
use std::path::{Path, PathBuf};

fn case(ident: &str) -> &'static Case {
    cases::by_ident(ident).unwrap_or_else(|| panic!("{ident} is not a row of CREATE_CASES"))
}

/// A recorded baseline's argv with `$FILENAME` set to `path`, program
/// name dropped.
fn args_for(argv: &[String], path: &str) -> Vec<String> {
    argv.iter().skip(1).map(|a| a.replace(FILENAME, path)).collect()
}

/// The baseline that applies to qemu-img `version` (through the version
/// map's profile selection).
fn baseline_for(
    env: &Env,
    version: &str,
    case: &Case,
) -> Result<create_baseline::Baseline, String> {
    baseline::for_version::<Create>(&env.baselines, &env.map, version, case)
}

/// Whitelisted `info --output=json` text, or a failure naming what was not
/// JSON.
fn normalised(t: &Transcript, what: &str, json: &str, path: &str) -> String {
    info_json::normalise_text(json, path)
        .unwrap_or_else(|e| t.fail(&format!("{what} is not JSON ({e}):\n{json}")))
}

/// `args` (a command line starting with its command word) asking instar
/// to speak as qemu-img `version`.
fn as_version(args: &[String], version: &str) -> Vec<String> {
    let mut out = args.to_vec();
    let at = usize::from(!out.is_empty());
    out.splice(at..at, ["--qemu-version".to_string(), version.to_string()]);
    out
}

/// Whether `stderr` is a qemu-img built without zstd refusing a row that
/// asks for it (Debian's 5.2.0): a property of that build, not of qemu 5.2
/// nor of instar, so the row skips for that version, saying so.
fn build_lacks_zstd(case: &Case, version: &str, stderr: &str) -> bool {
    let lacks = case.options.contains("compression_type=zstd")
        && stderr.contains("Invalid parameter 'zstd'");
    if lacks {
        super::skip_build_lacks(&format!(
            "qemu-img {version} was built without zstd (it refuses compression_type=zstd)"
        ));
    }
    lacks
}

/// Surface 1, for qemu-img `version`.
pub fn baseline(ident: &str, version: &str) {
    let case = case(ident);
    let env = env();
    let recorded = baseline_for(env, version, case)
        .unwrap_or_else(|e| panic!("no recorded baseline for qemu-img {version}: {e}"));
    if build_lacks_zstd(case, version, &recorded.meta.create_stderr) {
        return;
    }
    let t = Transcript::default();
    let dir = tempdir();
    let image = dir.path().join(case.file_name());
    let path = path_str(&image);

    let created = t.run(instar(), &as_version(&case.create_args(&path), version), dir.path());
    if created.code != Some(recorded.meta.create_return_code) {
        t.fail(&format!(
            "instar create exited {:?}; qemu-img {version} exited {} for this case",
            created.code, recorded.meta.create_return_code
        ));
    }
    let hide = |s: &str| s.replace(&path, FILENAME);
    if !recorded.create_succeeded() {
        t.assert_same(
            "create stderr",
            &as_instar(&recorded.meta.create_stderr),
            &hide(&created.stderr),
        );
        t.assert_same(
            "create stdout",
            &as_instar(&recorded.meta.create_stdout),
            &hide(&created.stdout),
        );
        if image.exists() {
            t.fail("a failed create left a file behind");
        }
        return;
    }

    // instar's own reading, which needs no qemu-img: the baselines keep
    // being checked when a version can no longer be installed.
    let info_args = args_for(&recorded.meta.info_argv, &path);
    let mine = t.run(instar(), &as_version(&info_args, version), dir.path());
    if mine.code != recorded.meta.info_return_code {
        t.fail(&format!(
            "instar info --qemu-version {version} exited {:?}; qemu-img {version} {:?}",
            mine.code, recorded.meta.info_return_code
        ));
    }
    t.assert_same("instar info stderr", &as_instar(&recorded.stderr), &hide(&mine.stderr));
    let actual = normalised(&t, "instar info", &mine.stdout, &path);
    t.assert_same(
        &format!("info --output=json: recorded baseline of qemu-img {version} (left) vs instar info --qemu-version {version} of instar's image (right)"),
        &recorded.stdout,
        &actual,
    );

    // qemu-img's reading of instar's image, where it is installed (the
    // info_parity surface skips, saying so, where it is not).
    let Some(qemu) = env.qemu(version) else { return };
    let info = t.run(&qemu.path, &info_args, dir.path());
    if info.code != recorded.meta.info_return_code {
        t.fail(&format!(
            "qemu-img {version} info exited {:?} on instar's image; {:?} on its own",
            info.code, recorded.meta.info_return_code
        ));
    }
    t.assert_same("info stderr", &recorded.stderr, &hide(&info.stderr));
    let actual = normalised(&t, "qemu-img info", &info.stdout, &path);
    t.assert_same(
        &format!("qemu-img {version} info --output=json: recorded baseline (left) vs instar's image (right)"),
        &recorded.stdout,
        &actual,
    );
}

/// A row created by two programs, each in a folder of its own under the
/// same file name (vmdk descriptors name their file).
struct Twins {
    dirs: [tempfile::TempDir; 2],
    paths: [PathBuf; 2],
    runs: [Run; 2],
}

/// Creates the row with `programs[0]` and with `programs[1]`.
fn create_twice(t: &Transcript, case: &Case, programs: [&Path; 2]) -> Twins {
    create_twice_as(t, case, programs, None)
}

/// [`create_twice`], instar (`programs[0]`) speaking as qemu-img `version`
/// when given.
fn create_twice_as(
    t: &Transcript,
    case: &Case,
    programs: [&Path; 2],
    version: Option<&str>,
) -> Twins {
    let dirs = [tempdir(), tempdir()];
    let paths = [0, 1].map(|i| dirs[i].path().join(case.file_name()));
    let runs = [0, 1].map(|i| {
        let args = case.create_args(&path_str(&paths[i]));
        let args = match version {
            Some(v) if i == 0 => as_version(&args, v),
            _ => args,
        };
        t.run(programs[i], &args, dirs[i].path())
    });
    t.check(runs[0].code == runs[1].code, || {
        format!("create exit codes differ: {:?}, {:?}", runs[0].code, runs[1].code)
    });
    Twins { dirs, paths, runs }
}

/// Surface 2: instar's and live qemu-img's images, as `instar info` sees them.
pub fn cross_validation(ident: &str) {
    let case = case(ident);
    let Some(qemu) = oracle_or_skip() else { return };
    let t = Transcript::default();
    let twins = create_twice(&t, case, [instar(), &qemu.path]);
    let [mine, theirs] = &twins.dirs;
    let [pa, pb] = twins.paths.each_ref().map(|p| path_str(p));
    let [ca, cb] = &twins.runs;
    if !cb.ok() {
        t.assert_same(
            "create stderr",
            &as_instar(&cb.stderr.replace(&pb, FILENAME)),
            &ca.stderr.replace(&pa, FILENAME),
        );
        return;
    }
    let info = |p: &str, dir: &Path| {
        t.run_ok(instar(), &["info", "--output=json", "-f", case.target.format(), p], dir)
    };
    let ia = info(&pa, mine.path());
    let ib = info(&pb, theirs.path());
    let na = normalised(&t, "instar info of instar's image", &ia.stdout, &pa);
    let nb = normalised(&t, "instar info of qemu-img's image", &ib.stdout, &pb);
    t.assert_same(
        "instar info --output=json: qemu-img's image (left) vs instar's image (right)",
        &nb,
        &na,
    );
}

/// The exit code of `qemu-img check` on a fresh image of `target`: 0
/// (clean), or 63 where qemu-img has no check for the format (raw, vpc).
fn clean_check_code(target: Target) -> i32 {
    match target {
        Target::Raw | Target::Vhd => 63,
        Target::Qcow2 | Target::Vmdk | Target::Vhdx => 0,
    }
}

/// Surface 3: `instar check` on instar's image prints what `qemu-img
/// check` prints on it, human and JSON; for a VHD, instar's own
/// `check --deep` finds it clean.
pub fn check_roundtrip(ident: &str) {
    let case = case(ident);
    let Some(qemu) = oracle_or_skip() else { return };
    let t = Transcript::default();
    let dir = tempdir();
    let image = dir.path().join(case.file_name());
    let path = path_str(&image);
    t.run_ok(instar(), &case.create_args(&path), dir.path());
    for output in ["human", "json"] {
        let output = format!("--output={output}");
        let args = ["check", &output, "-f", case.target.format(), &path];
        let code = t.same(qemu, &args, dir.path());
        let want = clean_check_code(case.target);
        t.check(code == Some(want), || {
            format!("qemu-img check exited {code:?} on instar's image, not {want}")
        });
        if case.target == Target::Vhd {
            let dynamic = !case.options.contains("subformat=fixed");
            assert_deep_clean(&t, dir.path(), &path, dynamic);
        }
    }
}

/// Surface 4, for qemu-img `version`: instar's file is qemu-img V's file
/// outside the masks, made with the same output and exit code.
pub fn bytes(ident: &str, version: &str) {
    let case = case(ident);
    let Some(qemu) = qemu_or_skip(version) else { return };
    let t = Transcript::default();
    if case.options.contains("compression_type=zstd") {
        // Ask the build first: its refusal is not instar's to match.
        let dir = tempdir();
        let probe = t.run(&qemu.path, &case.create_args("zstd-probe.qcow2"), dir.path());
        if build_lacks_zstd(case, version, &probe.stderr) {
            return;
        }
    }
    let twins = create_twice_as(&t, case, [instar(), &qemu.path], Some(version));
    let [a, b] = &twins.paths;
    let [mine, theirs] = &twins.runs;
    let [pa, pb] = twins.paths.each_ref().map(|p| path_str(p));
    for (what, m, q) in
        [("stdout", &mine.stdout, &theirs.stdout), ("stderr", &mine.stderr, &theirs.stderr)]
    {
        t.assert_same(
            &format!("create {what}: qemu-img {version} (left) vs instar --qemu-version {version} (right)"),
            &as_instar(&q.replace(&pb, FILENAME)),
            &m.replace(&pa, FILENAME),
        );
    }
    if !theirs.ok() {
        t.check(!a.exists(), || "instar's failed create left a file behind".into());
        return;
    }
    t.assert_same_bytes(case.target, b, a, "qemu-img's image and instar's");
    t.assert_masked_fields(case.target, a, "instar's image");
    if case.is_preallocated() {
        let (mine, theirs) = (allocated(a).unwrap_or(0), allocated(b).unwrap_or(0));
        t.check(mine == theirs, || {
            format!("preallocated images are allocated differently: instar {mine} bytes, qemu-img {theirs} bytes")
        });
    }
}

/// Surface 5, for qemu-img `version`: instar's `info` on qemu-img's image.
pub fn info_parity(ident: &str, version: &str) {
    let case = case(ident);
    let Some(qemu) = qemu_or_skip(version) else { return };
    let t = Transcript::default();
    let dir = tempdir();
    let image = dir.path().join(case.file_name());
    let path = path_str(&image);
    let created = t.run(&qemu.path, &case.create_args(&path), dir.path());
    if !created.ok() {
        // Nothing to read; the baseline surface covers failed creates.
        build_lacks_zstd(case, version, &created.stderr);
        return;
    }
    // The default dialect is the oracle's, the newest version instar
    // knows; the others are asked for by --qemu-version.
    let mut dialects = vec![Some(version.to_string())];
    if instar_matrix::qemu::oracle_version() == version {
        dialects.push(None);
    }
    for output in ["json", "human"] {
        for with_format in [false, true] {
            let mut tail = vec![format!("--output={output}")];
            if with_format {
                tail.extend(["-f".to_string(), case.target.format().to_string()]);
            }
            tail.push(path.clone());
            let theirs =
                t.run(&qemu.path, &[vec!["info".to_string()], tail.clone()].concat(), dir.path());
            for dialect in &dialects {
                let mut args = vec!["info".to_string()];
                if let Some(v) = dialect {
                    args.extend(["--qemu-version".to_string(), v.clone()]);
                }
                args.extend(tail.iter().cloned());
                let mine = t.run(instar(), &args, dir.path());
                let what =
                    format!("info {} (qemu-img {version} left, instar right)", args[1..].join(" "));
                if mine.code != theirs.code {
                    t.fail(&format!(
                        "{what}: instar exited {:?}, qemu-img {:?}",
                        mine.code, theirs.code
                    ));
                }
                t.assert_same(&format!("{what}: stdout"), &theirs.stdout, &mine.stdout);
                t.assert_same(&format!("{what}: stderr"), &as_instar(&theirs.stderr), &mine.stderr);
            }
        }
    }
}

/// Not a surface but a check of the oracle: qemu-img `version`, recording
/// every row again now, writes what the committed baselines hold (its
/// `--version` line aside, which names the build). A stale baseline would
/// otherwise be blamed on instar by the baseline surface.
pub fn baselines_are_current(version: &str) {
    let env = env();
    let test = test_name();
    let Some(qemu) = qemu_or_skip(version) else { return };
    let dir = tempdir();
    let mut stale = Vec::new();
    for case in instar_matrix::CREATE_CASES {
        let fresh = create_baseline::record(qemu, case, dir.path())
            .unwrap_or_else(|e| panic!("{test}: recording {}: {e}", case.id()));
        match baseline::read_version_case::<Create>(&env.baselines, version, case) {
            Ok(stored) => {
                let mut fresh = fresh;
                fresh.meta.qemu_version_line = stored.meta.qemu_version_line.clone();
                if fresh != stored {
                    stale.push(format!(
                        "{}:\n--- committed\n{}{}\n--- recorded now\n{}{}",
                        case.id(),
                        stored.stdout,
                        stored.meta_text(),
                        fresh.stdout,
                        fresh.meta_text()
                    ));
                }
            }
            Err(e) => stale.push(format!("{}: {e}", case.id())),
        }
    }
    assert!(
        stale.is_empty(),
        "{test}: qemu-img {version} no longer prints what the baselines hold (run `make baselines`):\n{}",
        stale.join("\n")
    );
}

/// Not a surface but a check of the masks: two runs of the live qemu-img
/// for the row differ only inside the masks, and qemu-img's own masked
/// fields pass [`masks::masked_field_problems`]. If this fails, the masks
/// (not instar) are wrong, and the bytes surface would blame instar.
pub fn oracle(ident: &str) {
    let case = case(ident);
    let Some(qemu) = oracle_or_skip() else { return };
    let t = Transcript::default();
    let twins = create_twice(&t, case, [&qemu.path, &qemu.path]);
    if !twins.runs[0].ok() {
        return;
    }
    let [a, b] = &twins.paths;
    t.assert_same_bytes(case.target, a, b, "two qemu-img images");
    for p in [a, b] {
        t.assert_masked_fields(case.target, p, "qemu-img's own image");
    }
}
