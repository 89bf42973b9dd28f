//! Recorded baselines: what each qemu-img version prints for each case of
//! the table, stored under `testdata/` (docs/compat.md §7.3), and the profiles that
//! group versions whose baselines agree.
//!
//! Layout, under [`BASELINE_DIR`]:
//!
//! ```text
//! <target>/<version>/<case>.stdout.txt   info --output=json, whitelisted
//! <target>/<version>/<case>.stderr.txt   info's stderr, path -> $FILENAME
//! <target>/<version>/<case>.meta.json    argv, exit codes, create's output, version
//! profiles/<profile>/<target>-<case>.{stdout.txt,stderr.txt,meta.json}
//! version-map.json
//! ```
//!
//! The stored stdout is qemu-img's text after the whitelist of
//! [`info_json`](crate::info_json) (placeholders for the temporary path,
//! `actual-size` and the vmdk CID), so that recording twice, on any host
//! file system, writes the same bytes. Nothing in a baseline depends on the
//! time, the host's paths or the file system.

use crate::cases::{Case, Target, CREATE_CASES};
use crate::info_json::{self, FILENAME};
use crate::qemu::{version_key, QemuImg};
use semver::Version;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the baselines live, relative to the repository root.
pub const BASELINE_DIR: &str = "testdata/expected-outputs/create-info-json";
/// The folder of the profiles, inside [`BASELINE_DIR`].
pub const PROFILES_DIR: &str = "profiles";
/// The version map's file name, inside [`BASELINE_DIR`].
pub const VERSION_MAP: &str = "version-map.json";
/// The program name baselines record in their argv.
pub const QEMU_IMG: &str = "qemu-img";

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

/// One recorded case under one qemu-img version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Baseline {
    /// `info --output=json`'s stdout, whitelisted.
    pub stdout: String,
    /// `info`'s stderr, path as `$FILENAME`.
    pub stderr: String,
    /// Everything else.
    pub meta: Meta,
}

impl Baseline {
    /// The part of the baseline that must be equal for two versions to
    /// share a profile: everything but the recording version's identity.
    fn comparable(&self) -> (String, String, Meta) {
        let mut meta = self.meta.clone();
        meta.qemu_version.clear();
        meta.qemu_version_line.clear();
        (self.stdout.clone(), self.stderr.clone(), meta)
    }

    /// The meta file's text: pretty JSON in field order, one trailing newline.
    pub fn meta_text(&self) -> String {
        let mut text = serde_json::to_string_pretty(&self.meta).expect("meta serialises");
        text.push('\n');
        text
    }

    /// Whether the recorded create succeeded.
    pub fn create_succeeded(&self) -> bool {
        self.meta.create_return_code == 0
    }
}

/// An error while recording, reading or writing baselines.
#[derive(Debug)]
pub enum BaselineError {
    /// A file could not be read or written.
    Io(PathBuf, io::Error),
    /// qemu-img could not be started.
    Spawn(PathBuf, io::Error),
    /// A stored file is not what the generator writes.
    Malformed(PathBuf, String),
    /// qemu-img printed JSON that instar's printer does not reproduce, so
    /// storing it whitelisted would change more than the whitelist.
    Unprintable(String, String),
}

impl std::fmt::Display for BaselineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BaselineError::Io(p, e) => write!(f, "{}: {e}", p.display()),
            BaselineError::Spawn(p, e) => write!(f, "cannot run {}: {e}", p.display()),
            BaselineError::Malformed(p, why) => write!(f, "{}: {why}", p.display()),
            BaselineError::Unprintable(case, why) => {
                write!(f, "{case}: qemu-img's JSON does not survive a re-print: {why}")
            }
        }
    }
}

impl std::error::Error for BaselineError {}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> BaselineError + '_ {
    move |e| BaselineError::Io(path.to_path_buf(), e)
}

/// Replaces every occurrence of the temporary path in `text`.
fn hide_path(text: &str, path: &str) -> String {
    text.replace(path, FILENAME)
}

/// The exit code of a finished process (a signal counts as -1).
fn code(status: std::process::ExitStatus) -> i32 {
    status.code().unwrap_or(-1)
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

/// The three files of one baseline, named `<stem>.{stdout.txt,...}` in `dir`.
fn files(dir: &Path, stem: &str) -> [PathBuf; 3] {
    ["stdout.txt", "stderr.txt", "meta.json"].map(|ext| dir.join(format!("{stem}.{ext}")))
}

/// The paths of the three files of `case` under `version`.
pub fn case_files(root: &Path, case: &Case, version: &str) -> [PathBuf; 3] {
    files(&root.join(case.target.name()).join(version), case.name)
}

/// Writes `text` to `path` unless it already holds exactly that, so a
/// regeneration that changes nothing touches nothing.
fn write_if_changed(path: &Path, text: &str) -> Result<bool, BaselineError> {
    if std::fs::read(path).ok().as_deref() == Some(text.as_bytes()) {
        return Ok(false);
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    std::fs::write(path, text).map_err(io_err(path))?;
    Ok(true)
}

fn write_baseline(dir: &Path, stem: &str, b: &Baseline) -> Result<usize, BaselineError> {
    let [out, err, meta] = files(dir, stem);
    let mut changed = 0;
    for (path, text) in [(out, b.stdout.clone()), (err, b.stderr.clone()), (meta, b.meta_text())] {
        changed += usize::from(write_if_changed(&path, &text)?);
    }
    Ok(changed)
}

fn read_baseline(dir: &Path, stem: &str) -> Result<Baseline, BaselineError> {
    let [out, err, meta] = files(dir, stem);
    let read = |p: &Path| std::fs::read_to_string(p).map_err(io_err(p));
    let meta_text = read(&meta)?;
    let meta: Meta = serde_json::from_str(&meta_text)
        .map_err(|e| BaselineError::Malformed(meta.clone(), e.to_string()))?;
    Ok(Baseline { stdout: read(&out)?, stderr: read(&err)?, meta })
}

/// Removes from `dir` every file not in `keep` (and `dir` itself if it ends
/// up empty); returns how many files went.
fn prune(dir: &Path, keep: &[PathBuf]) -> Result<usize, BaselineError> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(0) };
    let mut removed = 0;
    for entry in entries {
        let path = entry.map_err(io_err(dir))?.path();
        if path.is_file() && !keep.contains(&path) {
            std::fs::remove_file(&path).map_err(io_err(&path))?;
            removed += 1;
        }
    }
    if std::fs::read_dir(dir).map_err(io_err(dir))?.next().is_none() {
        std::fs::remove_dir(dir).map_err(io_err(dir))?;
    }
    Ok(removed)
}

/// Writes the baselines of one version under `root` and removes that
/// version's files that belong to no case; returns the files changed.
pub fn write_version(
    root: &Path,
    version: &str,
    recorded: &[(&Case, Baseline)],
) -> Result<usize, BaselineError> {
    let mut changed = 0;
    let mut keep: BTreeMap<PathBuf, Vec<PathBuf>> = BTreeMap::new();
    for (case, baseline) in recorded {
        let dir = root.join(case.target.name()).join(version);
        changed += write_baseline(&dir, case.name, baseline)?;
        keep.entry(dir.clone()).or_default().extend(case_files(root, case, version));
    }
    for target in Target::ALL {
        let dir = root.join(target.name()).join(version);
        let kept = keep.get(&dir).cloned().unwrap_or_default();
        changed += prune(&dir, &kept)?;
    }
    Ok(changed)
}

/// Every baseline on disk: version -> case id (`<target>-<case>`) -> baseline.
pub type Stored = BTreeMap<Version, BTreeMap<String, Baseline>>;

/// Reads every `<target>/<version>/<case>.*` under `root`. Files whose
/// names do not follow the layout are reported, not skipped.
pub fn load_versions(root: &Path) -> Result<Stored, BaselineError> {
    let mut stored = Stored::new();
    for target in Target::ALL {
        let tdir = root.join(target.name());
        let Ok(versions) = std::fs::read_dir(&tdir) else { continue };
        for vdir in versions {
            let vdir = vdir.map_err(io_err(&tdir))?.path();
            let vname = vdir.file_name().unwrap_or_default().to_string_lossy().into_owned();
            let version = Version::parse(&vname).map_err(|e| {
                BaselineError::Malformed(vdir.clone(), format!("not a version folder: {e}"))
            })?;
            for stem in stems(&vdir)? {
                let b = read_baseline(&vdir, &stem)?;
                stored
                    .entry(version.clone())
                    .or_default()
                    .insert(format!("{}-{stem}", target.name()), b);
            }
        }
    }
    Ok(stored)
}

/// The case names of the baseline files in `dir` (each file's name less
/// its `.stdout.txt`/`.stderr.txt`/`.meta.json`).
fn stems(dir: &Path) -> Result<Vec<String>, BaselineError> {
    let mut stems = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
        let path = entry.map_err(io_err(dir))?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy().into_owned();
        let stem = [".stdout.txt", ".stderr.txt", ".meta.json"]
            .iter()
            .find_map(|ext| name.strip_suffix(ext));
        match stem {
            Some(s) => stems.push(s.to_string()),
            None => return Err(BaselineError::Malformed(path, "not a baseline file".to_string())),
        }
    }
    stems.sort();
    stems.dedup();
    Ok(stems)
}

/// `version-map.json`: which profile holds each version's baselines.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct VersionMap {
    /// Profile name -> the version it was recorded with (its first).
    pub profiles: BTreeMap<String, String>,
    /// Version -> the profile holding its baselines.
    pub version_to_profile: BTreeMap<String, String>,
}

impl VersionMap {
    /// The map's file text: versions in version order (not text order:
    /// 10.0.2 after 7.2.22), one trailing newline.
    pub fn to_text(&self) -> String {
        let by_version = |map: &BTreeMap<String, String>, key_is_version: bool| {
            let mut items: Vec<(&String, &String)> = map.iter().collect();
            items.sort_by_key(|(k, v)| Version::parse(if key_is_version { k } else { v }).ok());
            let mut obj = serde_json::Map::new();
            for (k, v) in items {
                obj.insert(k.clone(), serde_json::Value::from(v.as_str()));
            }
            serde_json::Value::Object(obj)
        };
        let mut top = serde_json::Map::new();
        top.insert("profiles".into(), by_version(&self.profiles, false));
        top.insert("version_to_profile".into(), by_version(&self.version_to_profile, true));
        let mut text =
            serde_json::to_string_pretty(&serde_json::Value::Object(top)).expect("map serialises");
        text.push('\n');
        text
    }

    /// Reads the map from `root`.
    pub fn load(root: &Path) -> Result<VersionMap, BaselineError> {
        let path = root.join(VERSION_MAP);
        let text = std::fs::read_to_string(&path).map_err(io_err(&path))?;
        serde_json::from_str(&text).map_err(|e| BaselineError::Malformed(path, e.to_string()))
    }

    /// The versions the map knows, oldest first.
    pub fn versions(&self) -> Vec<Version> {
        let mut v: Vec<Version> =
            self.version_to_profile.keys().filter_map(|k| Version::parse(k).ok()).collect();
        v.sort();
        v
    }
}

/// The name of the profile first recorded with `v`: `profile-7-2-22`.
pub fn profile_name(v: &Version) -> String {
    format!("profile-{}-{}-{}", v.major, v.minor, v.patch)
}

/// Groups versions into profiles: oldest first, a version joins the first
/// profile whose baselines equal its own in every file (the stored files
/// are already whitelisted), else it starts a profile named after itself.
/// Returns the map and each profile's baselines.
pub fn build_profiles(
    stored: &Stored,
) -> (VersionMap, BTreeMap<String, BTreeMap<String, Baseline>>) {
    let mut map = VersionMap::default();
    let mut profiles: BTreeMap<String, BTreeMap<String, Baseline>> = BTreeMap::new();
    let comparable = |set: &BTreeMap<String, Baseline>| -> Vec<(String, (String, String, Meta))> {
        set.iter().map(|(k, b)| (k.clone(), b.comparable())).collect()
    };
    for (version, set) in stored {
        let key = version_key(version);
        let mine = comparable(set);
        let joined =
            profiles.iter().find(|(_, p)| comparable(p) == mine).map(|(name, _)| name.clone());
        let name = match joined {
            Some(name) => name,
            None => {
                let name = profile_name(version);
                map.profiles.insert(name.clone(), key.clone());
                profiles.insert(name.clone(), set.clone());
                name
            }
        };
        map.version_to_profile.insert(key, name);
    }
    (map, profiles)
}

/// Writes `profiles/` and `version-map.json` for what is on disk, removing
/// profile files that no longer belong; returns the files changed.
pub fn write_profiles(root: &Path) -> Result<usize, BaselineError> {
    let stored = load_versions(root)?;
    let (map, profiles) = build_profiles(&stored);
    let pdir = root.join(PROFILES_DIR);
    let mut changed = 0;
    let mut keep_dirs = Vec::new();
    for (name, set) in &profiles {
        let dir = pdir.join(name);
        let mut keep = Vec::new();
        for (id, b) in set {
            changed += write_baseline(&dir, id, b)?;
            keep.extend(files(&dir, id));
        }
        changed += prune(&dir, &keep)?;
        keep_dirs.push(dir);
    }
    if let Ok(entries) = std::fs::read_dir(&pdir) {
        for entry in entries {
            let dir = entry.map_err(io_err(&pdir))?.path();
            if dir.is_dir() && !keep_dirs.contains(&dir) {
                changed += prune(&dir, &[])?;
            }
        }
    }
    changed += usize::from(write_if_changed(&root.join(VERSION_MAP), &map.to_text())?);
    Ok(changed)
}

/// Every way the table, the version list and the files on disk disagree,
/// one line each; empty when they agree. Checked: each version of the map
/// has the three files of every case of the table; every stored file
/// belongs to a case of the table and a version of the map; `profiles/`
/// and `version-map.json` are what the generator would write for the
/// version folders; and no other file lies anywhere under `root`.
pub fn consistency_problems(root: &Path, cases: &[Case]) -> Vec<String> {
    let mut problems = Vec::new();
    let map = match VersionMap::load(root) {
        Ok(m) => m,
        Err(e) => return vec![format!("no usable version map: {e}")],
    };
    let stored = match load_versions(root) {
        Ok(s) => s,
        Err(e) => return vec![format!("unreadable baselines: {e}")],
    };
    for version in map.versions() {
        let key = version_key(&version);
        for case in cases {
            for file in case_files(root, case, &key) {
                if !file.is_file() {
                    problems.push(format!("case {} has no baseline {}", case.id(), file.display()));
                }
            }
        }
    }
    for (version, set) in &stored {
        let key = version_key(version);
        if !map.version_to_profile.contains_key(&key) {
            problems.push(format!("baselines of version {key} are missing from {VERSION_MAP}"));
        }
        for (id, b) in set {
            if !cases.iter().any(|c| c.id() == *id) {
                problems.push(format!("baseline {id} under {key} belongs to no case of the table"));
            }
            if b.meta.qemu_version != key || format!("{}-{}", b.meta.target, b.meta.case) != *id {
                problems.push(format!(
                    "baseline {id} under {key} records {}-{} {}",
                    b.meta.target, b.meta.case, b.meta.qemu_version
                ));
            }
        }
    }
    let (want_map, want_profiles) = build_profiles(&stored);
    if want_map != map {
        problems.push(format!(
            "{VERSION_MAP} is stale: the version folders give\n{}",
            want_map.to_text()
        ));
    }
    let pdir = root.join(PROFILES_DIR);
    let mut expected: BTreeSet<PathBuf> = BTreeSet::from([root.join(VERSION_MAP)]);
    for version in map.versions() {
        for case in cases {
            expected.extend(case_files(root, case, &version_key(&version)));
        }
    }
    for (name, set) in &want_profiles {
        for (id, b) in set {
            expected.extend(files(&pdir.join(name), id));
            match read_baseline(&pdir.join(name), id) {
                Ok(on_disk) if on_disk == *b => {}
                Ok(_) => problems
                    .push(format!("profile {name} file {id} differs from its version folder")),
                Err(e) => problems.push(format!("profile {name} lacks {id}: {e}")),
            }
        }
    }
    for entry in walkdir::WalkDir::new(root).sort_by_file_name() {
        match entry {
            Ok(e) if e.file_type().is_dir() => {}
            Ok(e) if !expected.contains(e.path()) => problems
                .push(format!("{} belongs to no case, version or profile", e.path().display())),
            Ok(_) => {}
            Err(e) => problems.push(format!("cannot walk {}: {e}", root.display())),
        }
    }
    problems
}

/// The profile whose baselines apply to a qemu-img `host` version (docs/compat.md
/// §7.4): the exact version, else the highest known version <= host of the
/// same major.minor, else the highest known <= host, else the lowest known.
/// `None` when the map knows no version.
pub fn select_profile<'m>(map: &'m VersionMap, host: &Version) -> Option<&'m str> {
    let known = map.versions();
    let pick = known
        .iter()
        .find(|v| *v == host)
        .or_else(|| {
            known
                .iter()
                .filter(|v| v.major == host.major && v.minor == host.minor && *v <= host)
                .max()
        })
        .or_else(|| known.iter().filter(|v| *v <= host).max())
        .or_else(|| known.first())?;
    map.version_to_profile.get(&version_key(pick)).map(String::as_str)
}

/// A baseline of a profile, read from disk.
pub fn read_profile_case(
    root: &Path,
    profile: &str,
    case: &Case,
) -> Result<Baseline, BaselineError> {
    read_baseline(&root.join(PROFILES_DIR).join(profile), &case.id())
}

/// A baseline of a version folder, read from disk.
pub fn read_version_case(
    root: &Path,
    version: &str,
    case: &Case,
) -> Result<Baseline, BaselineError> {
    read_baseline(&root.join(case.target.name()).join(version), case.name)
}

/// A one-paragraph account of a stored baseline, for failure messages.
pub fn describe(b: &Baseline) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "recorded by {} ({})", b.meta.qemu_version, b.meta.qemu_version_line);
    let _ = writeln!(s, "create: {:?} -> exit {}", b.meta.create_argv, b.meta.create_return_code);
    let _ = writeln!(s, "info: {:?} -> exit {:?}", b.meta.info_argv, b.meta.info_return_code);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(versions: &[&str]) -> VersionMap {
        let mut m = VersionMap::default();
        for v in versions {
            let name = profile_name(&Version::parse(v).unwrap());
            m.profiles.insert(name.clone(), v.to_string());
            m.version_to_profile.insert(v.to_string(), name);
        }
        m
    }

    fn pick(m: &VersionMap, host: &str) -> Option<String> {
        select_profile(m, &Version::parse(host).unwrap()).map(str::to_string)
    }

    #[test]
    fn selection_takes_the_exact_version() {
        let m = map(&["7.2.22", "8.2.0", "10.0.2"]);
        assert_eq!(pick(&m, "8.2.0").as_deref(), Some("profile-8-2-0"));
    }

    #[test]
    fn selection_prefers_the_same_major_minor() {
        let m = map(&["7.2.22", "8.0.0", "8.2.1", "8.2.5"]);
        assert_eq!(pick(&m, "8.2.3").as_deref(), Some("profile-8-2-1"));
        assert_eq!(pick(&m, "8.2.9").as_deref(), Some("profile-8-2-5"));
    }

    #[test]
    fn selection_takes_the_highest_below() {
        let m = map(&["7.2.22", "10.0.2"]);
        assert_eq!(pick(&m, "9.1.0").as_deref(), Some("profile-7-2-22"));
        assert_eq!(pick(&m, "11.0.0").as_deref(), Some("profile-10-0-2"));
        // 10.0.1 has no same-major.minor version at or below it.
        assert_eq!(pick(&m, "10.0.1").as_deref(), Some("profile-7-2-22"));
    }

    #[test]
    fn selection_falls_back_to_the_lowest_for_older_hosts() {
        let m = map(&["7.2.22", "10.0.2"]);
        assert_eq!(pick(&m, "6.0.0").as_deref(), Some("profile-7-2-22"));
    }

    #[test]
    fn selection_on_an_empty_map_finds_nothing() {
        assert_eq!(pick(&VersionMap::default(), "10.0.2"), None);
    }

    #[test]
    fn selection_follows_shared_profiles() {
        let mut m = map(&["7.2.22"]);
        m.version_to_profile.insert("7.2.23".into(), "profile-7-2-22".into());
        assert_eq!(pick(&m, "7.2.23").as_deref(), Some("profile-7-2-22"));
    }

    fn baseline(version: &str, stdout: &str) -> Baseline {
        Baseline {
            stdout: stdout.to_string(),
            stderr: String::new(),
            meta: Meta {
                target: "raw".into(),
                case: "1M-default".into(),
                qemu_version: version.into(),
                qemu_version_line: format!("qemu-img version {version}"),
                create_argv: vec!["qemu-img".into()],
                create_return_code: 0,
                create_stdout: String::new(),
                create_stderr: String::new(),
                info_argv: vec![],
                info_return_code: Some(0),
            },
        }
    }

    fn stored(items: &[(&str, &str)]) -> Stored {
        items
            .iter()
            .map(|(v, out)| {
                let set = BTreeMap::from([("raw-1M-default".to_string(), baseline(v, out))]);
                (Version::parse(v).unwrap(), set)
            })
            .collect()
    }

    #[test]
    fn equal_versions_share_the_profile_of_the_first() {
        let (m, profiles) =
            build_profiles(&stored(&[("10.0.2", "a"), ("7.2.22", "b"), ("8.0.0", "a")]));
        assert_eq!(m.profiles.len(), 2);
        assert_eq!(m.version_to_profile["7.2.22"], "profile-7-2-22");
        assert_eq!(m.version_to_profile["8.0.0"], "profile-8-0-0");
        assert_eq!(m.version_to_profile["10.0.2"], "profile-8-0-0");
        assert_eq!(profiles["profile-8-0-0"]["raw-1M-default"].meta.qemu_version, "8.0.0");
    }

    /// A baseline folder with `versions` recorded for `cases`, written as
    /// the generator writes it.
    fn write_tree(root: &Path, cases: &[Case], versions: &[&str]) {
        for v in versions {
            let recorded: Vec<(&Case, Baseline)> = cases
                .iter()
                .map(|c| {
                    let mut b = baseline(v, "{}\n");
                    b.meta.target = c.target.name().into();
                    b.meta.case = c.name.into();
                    (c, b)
                })
                .collect();
            write_version(root, v, &recorded).unwrap();
        }
        write_profiles(root).unwrap();
    }

    fn two_raw_cases() -> Vec<Case> {
        CREATE_CASES.iter().filter(|c| c.target == Target::Raw).copied().collect()
    }

    #[test]
    fn a_consistent_tree_has_no_problems_and_rewrites_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let cases = two_raw_cases();
        write_tree(dir.path(), &cases, &["7.2.22", "10.0.2"]);
        assert_eq!(consistency_problems(dir.path(), &cases), Vec::<String>::new());
        assert_eq!(write_profiles(dir.path()).unwrap(), 0);
        let map = VersionMap::load(dir.path()).unwrap();
        assert_eq!(map.profiles.len(), 1, "equal baselines share one profile");
        assert_eq!(map.version_to_profile["10.0.2"], "profile-7-2-22");
    }

    #[test]
    fn a_case_without_baselines_is_a_problem() {
        let dir = tempfile::tempdir().unwrap();
        let cases = two_raw_cases();
        write_tree(dir.path(), &cases[..1], &["10.0.2"]);
        let problems = consistency_problems(dir.path(), &cases);
        assert_eq!(problems.len(), 3, "{problems:#?}");
        assert!(problems.iter().all(|p| p.contains("raw-1G-default has no baseline")));
    }

    #[test]
    fn a_baseline_without_a_case_is_a_problem() {
        let dir = tempfile::tempdir().unwrap();
        let cases = two_raw_cases();
        write_tree(dir.path(), &cases, &["10.0.2"]);
        let problems = consistency_problems(dir.path(), &cases[..1]);
        assert!(
            problems.iter().any(|p| p.contains("raw-1G-default under 10.0.2 belongs to no case")),
            "{problems:#?}"
        );
    }

    #[test]
    fn a_stray_file_is_a_problem() {
        let dir = tempfile::tempdir().unwrap();
        let cases = two_raw_cases();
        write_tree(dir.path(), &cases, &["10.0.2"]);
        std::fs::write(dir.path().join("raw/10.0.2/notes.md"), "x").unwrap();
        assert!(!consistency_problems(dir.path(), &cases).is_empty());
    }

    #[test]
    fn a_stale_profile_is_a_problem() {
        let dir = tempfile::tempdir().unwrap();
        let cases = two_raw_cases();
        write_tree(dir.path(), &cases, &["10.0.2"]);
        std::fs::write(dir.path().join("raw/10.0.2/1M-default.stdout.txt"), "{\n    \"x\": 1\n}\n")
            .unwrap();
        let problems = consistency_problems(dir.path(), &cases);
        assert!(
            problems.iter().any(|p| p.contains("differs from its version folder")),
            "{problems:#?}"
        );
    }

    #[test]
    fn version_map_text_is_in_version_order() {
        let (m, _) = build_profiles(&stored(&[("10.0.2", "a"), ("7.2.22", "b")]));
        let text = m.to_text();
        assert!(text.find("7.2.22").unwrap() < text.find("10.0.2").unwrap());
        let back: VersionMap = serde_json::from_str(&text).unwrap();
        assert_eq!(back, m);
    }
}
