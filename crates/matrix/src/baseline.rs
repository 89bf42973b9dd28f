//! Recorded baselines: what each qemu-img version prints for each row of a
//! case table, stored under `testdata/` (docs/compat.md §7.3), and the
//! profiles that group versions whose baselines agree.
//!
//! One store serves every table: create's ([`create_baseline`](crate::create_baseline),
//! CREATE_CASES) and measure's ([`measure_baseline`](crate::measure_baseline),
//! MEASURE_CASES). A table says how its rows and its meta files are named
//! by implementing [`Kind`]; writing, reading, pruning, the profiles, the
//! version map, the consistency check and the profile selection are the
//! same code for both. Layout, under the table's [`Kind::DIR`]:
//!
//! ```text
//! <target>/<version>/<case>.stdout.txt   what qemu-img printed (as the table stores it)
//! <target>/<version>/<case>.stderr.txt
//! <target>/<version>/<case>.meta.json    the table's meta: argv, exit codes, version, ...
//! profiles/<profile>/<row id>.{stdout.txt,stderr.txt,meta.json}
//! version-map.json
//! ```
//!
//! Nothing in a baseline depends on the time, the host's paths or the file
//! system: recording twice writes the same bytes.

use semver::Version;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// The folder of the profiles, inside a table's baseline folder.
pub const PROFILES_DIR: &str = "profiles";
/// The version map's file name, inside a table's baseline folder.
pub const VERSION_MAP: &str = "version-map.json";
/// The program name baselines record in their argv and outputs.
pub const QEMU_IMG: &str = "qemu-img";

/// A case table with recorded baselines: how the store names its rows and
/// reads its meta files.
pub trait Kind {
    /// One row of the table.
    type Row: 'static;
    /// What a baseline records besides the two output texts.
    type Meta: Clone + PartialEq + Eq + fmt::Debug + Serialize + DeserializeOwned;
    /// Where the baselines live, relative to the repository root.
    const DIR: &'static str;
    /// Every target folder a row may be stored in.
    fn folders() -> Vec<&'static str>;
    /// The target folder of `row`.
    fn folder(row: &Self::Row) -> &'static str;
    /// The file stem of `row` inside its `<target>/<version>/` folder.
    fn stem(row: &Self::Row) -> &'static str;
    /// The file stem, in a profile folder (flat: every target's rows side
    /// by side), of the row stored as `<folder>/<version>/<stem>`. It must
    /// differ for any two rows of the table.
    fn profile_stem(folder: &str, stem: &str) -> String;
    /// The qemu-img version a meta says recorded it (`10.0.2`).
    fn meta_version(meta: &Self::Meta) -> &str;
    /// The target folder and stem a meta says it was recorded for.
    fn meta_row(meta: &Self::Meta) -> (String, String);
    /// `meta` without the recording version's identity: what must be
    /// equal for two versions to share a profile.
    fn anonymous(meta: &Self::Meta) -> Self::Meta;

    /// The row's unique id across targets: its [`Kind::profile_stem`].
    fn id(row: &Self::Row) -> String {
        Self::profile_stem(Self::folder(row), Self::stem(row))
    }
}

/// One recorded row under one qemu-img version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Baseline<M> {
    /// What qemu-img printed on stdout, as the table stores it.
    pub stdout: String,
    /// What qemu-img printed on stderr, as the table stores it.
    pub stderr: String,
    /// Everything else.
    pub meta: M,
}

impl<M: Serialize> Baseline<M> {
    /// The meta file's text: pretty JSON in field order, one trailing newline.
    pub fn meta_text(&self) -> String {
        let mut text = serde_json::to_string_pretty(&self.meta).expect("meta serialises");
        text.push('\n');
        text
    }
}

/// The part of `b` that must be equal for two versions to share a profile.
fn comparable<K: Kind>(b: &Baseline<K::Meta>) -> Baseline<K::Meta> {
    Baseline { stdout: b.stdout.clone(), stderr: b.stderr.clone(), meta: K::anonymous(&b.meta) }
}

/// An error while recording, reading or writing baselines.
#[derive(Debug)]
pub enum BaselineError {
    /// A file could not be read or written.
    Io(PathBuf, io::Error),
    /// qemu-img (or a tool making a source image) could not be started.
    Spawn(PathBuf, io::Error),
    /// A stored file is not what the generator writes.
    Malformed(PathBuf, String),
    /// qemu-img printed JSON that instar's printer does not reproduce, so
    /// storing it whitelisted would change more than the whitelist.
    Unprintable(String, String),
    /// A step making a source image failed.
    Source(String, String),
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
            BaselineError::Source(source, why) => write!(f, "making source {source}: {why}"),
        }
    }
}

impl std::error::Error for BaselineError {}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> BaselineError + '_ {
    move |e| BaselineError::Io(path.to_path_buf(), e)
}

/// The exit code of a finished process (a signal counts as -1).
pub(crate) fn code(status: std::process::ExitStatus) -> i32 {
    status.code().unwrap_or(-1)
}

/// The three files of one baseline, named `<stem>.{stdout.txt,...}` in `dir`.
fn files(dir: &Path, stem: &str) -> [PathBuf; 3] {
    ["stdout.txt", "stderr.txt", "meta.json"].map(|ext| dir.join(format!("{stem}.{ext}")))
}

/// The paths of the three files of `row` under `version`.
pub fn case_files<K: Kind>(root: &Path, row: &K::Row, version: &str) -> [PathBuf; 3] {
    files(&root.join(K::folder(row)).join(version), K::stem(row))
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

fn write_baseline<M: Serialize>(
    dir: &Path,
    stem: &str,
    b: &Baseline<M>,
) -> Result<usize, BaselineError> {
    let [out, err, meta] = files(dir, stem);
    let mut changed = 0;
    for (path, text) in [(out, b.stdout.clone()), (err, b.stderr.clone()), (meta, b.meta_text())] {
        changed += usize::from(write_if_changed(&path, &text)?);
    }
    Ok(changed)
}

fn read_baseline<M: DeserializeOwned>(
    dir: &Path,
    stem: &str,
) -> Result<Baseline<M>, BaselineError> {
    let [out, err, meta] = files(dir, stem);
    let read = |p: &Path| std::fs::read_to_string(p).map_err(io_err(p));
    let meta_text = read(&meta)?;
    let meta: M = serde_json::from_str(&meta_text)
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
/// version's files that belong to no row; returns the files changed.
pub fn write_version<K: Kind>(
    root: &Path,
    version: &str,
    recorded: &[(&K::Row, Baseline<K::Meta>)],
) -> Result<usize, BaselineError> {
    let mut changed = 0;
    let mut keep: BTreeMap<PathBuf, Vec<PathBuf>> = BTreeMap::new();
    for (row, baseline) in recorded {
        let dir = root.join(K::folder(row)).join(version);
        changed += write_baseline(&dir, K::stem(row), baseline)?;
        keep.entry(dir.clone()).or_default().extend(case_files::<K>(root, row, version));
    }
    for folder in K::folders() {
        let dir = root.join(folder).join(version);
        let kept = keep.get(&dir).cloned().unwrap_or_default();
        changed += prune(&dir, &kept)?;
    }
    Ok(changed)
}

/// Every baseline on disk: version -> row id ([`Kind::profile_stem`]) -> baseline.
pub type Stored<M> = BTreeMap<Version, BTreeMap<String, Baseline<M>>>;

/// Reads every `<target>/<version>/<case>.*` under `root`. Files whose
/// names do not follow the layout are reported, not skipped.
pub fn load_versions<K: Kind>(root: &Path) -> Result<Stored<K::Meta>, BaselineError> {
    let mut stored = Stored::new();
    for folder in K::folders() {
        let tdir = root.join(folder);
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
                    .insert(K::profile_stem(folder, &stem), b);
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

/// Each profile's baselines: profile name -> row id -> baseline.
pub type Profiles<M> = BTreeMap<String, BTreeMap<String, Baseline<M>>>;

/// Groups versions into profiles: oldest first, a version joins the first
/// profile whose baselines equal its own in every file (the recording
/// version's identity aside), else it starts a profile named after itself.
/// Returns the map and each profile's baselines.
pub fn build_profiles<K: Kind>(stored: &Stored<K::Meta>) -> (VersionMap, Profiles<K::Meta>) {
    let mut map = VersionMap::default();
    let mut profiles: Profiles<K::Meta> = BTreeMap::new();
    let comparable_set = |set: &BTreeMap<String, Baseline<K::Meta>>| {
        set.iter().map(|(k, b)| (k.clone(), comparable::<K>(b))).collect::<Vec<_>>()
    };
    for (version, set) in stored {
        let key = crate::qemu::version_key(version);
        let mine = comparable_set(set);
        let joined =
            profiles.iter().find(|(_, p)| comparable_set(p) == mine).map(|(name, _)| name.clone());
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
pub fn write_profiles<K: Kind>(root: &Path) -> Result<usize, BaselineError> {
    let stored = load_versions::<K>(root)?;
    let (map, profiles) = build_profiles::<K>(&stored);
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
/// has the three files of every row of the table; every stored file
/// belongs to a row of the table and a version of the map; `profiles/`
/// and `version-map.json` are what the generator would write for the
/// version folders; and no other file lies anywhere under `root`.
pub fn consistency_problems<K: Kind>(root: &Path, rows: &[K::Row]) -> Vec<String> {
    let mut problems = Vec::new();
    let map = match VersionMap::load(root) {
        Ok(m) => m,
        Err(e) => return vec![format!("no usable version map: {e}")],
    };
    let stored = match load_versions::<K>(root) {
        Ok(s) => s,
        Err(e) => return vec![format!("unreadable baselines: {e}")],
    };
    let ids: BTreeSet<String> = rows.iter().map(K::id).collect();
    for version in map.versions() {
        let key = crate::qemu::version_key(&version);
        for row in rows {
            for file in case_files::<K>(root, row, &key) {
                if !file.is_file() {
                    problems.push(format!(
                        "case {} has no baseline {}",
                        K::id(row),
                        file.display()
                    ));
                }
            }
        }
    }
    for (version, set) in &stored {
        let key = crate::qemu::version_key(version);
        if !map.version_to_profile.contains_key(&key) {
            problems.push(format!("baselines of version {key} are missing from {VERSION_MAP}"));
        }
        for (id, b) in set {
            if !ids.contains(id) {
                problems.push(format!("baseline {id} under {key} belongs to no case of the table"));
            }
            let (folder, stem) = K::meta_row(&b.meta);
            let recorded_as = K::profile_stem(&folder, &stem);
            if K::meta_version(&b.meta) != key || recorded_as != *id {
                problems.push(format!(
                    "baseline {id} under {key} records {recorded_as} {}",
                    K::meta_version(&b.meta)
                ));
            }
        }
    }
    let (want_map, want_profiles) = build_profiles::<K>(&stored);
    if want_map != map {
        problems.push(format!(
            "{VERSION_MAP} is stale: the version folders give\n{}",
            want_map.to_text()
        ));
    }
    let pdir = root.join(PROFILES_DIR);
    let mut expected: BTreeSet<PathBuf> = BTreeSet::from([root.join(VERSION_MAP)]);
    for version in map.versions() {
        for row in rows {
            expected.extend(case_files::<K>(root, row, &crate::qemu::version_key(&version)));
        }
    }
    for (name, set) in &want_profiles {
        for (id, b) in set {
            expected.extend(files(&pdir.join(name), id));
            match read_baseline::<K::Meta>(&pdir.join(name), id) {
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
    map.version_to_profile.get(&crate::qemu::version_key(pick)).map(String::as_str)
}

/// A baseline of a profile, read from disk.
pub fn read_profile_case<K: Kind>(
    root: &Path,
    profile: &str,
    row: &K::Row,
) -> Result<Baseline<K::Meta>, BaselineError> {
    read_baseline(&root.join(PROFILES_DIR).join(profile), &K::id(row))
}

/// A baseline of a version folder, read from disk.
pub fn read_version_case<K: Kind>(
    root: &Path,
    version: &str,
    row: &K::Row,
) -> Result<Baseline<K::Meta>, BaselineError> {
    read_baseline(&root.join(K::folder(row)).join(version), K::stem(row))
}

/// The baseline that applies to qemu-img `version` through the version
/// map's profile selection, read from the profile folder.
pub fn for_version<K: Kind>(
    root: &Path,
    map: &VersionMap,
    version: &str,
    row: &K::Row,
) -> Result<Baseline<K::Meta>, String> {
    let v = Version::parse(version).map_err(|e| e.to_string())?;
    let profile = select_profile(map, &v).ok_or("the version map knows no version")?;
    read_profile_case::<K>(root, profile, row).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cases::{Case, Target, CREATE_CASES};
    use crate::create_baseline::{Create, Meta};

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

    fn baseline(version: &str, stdout: &str) -> Baseline<Meta> {
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

    fn stored(items: &[(&str, &str)]) -> Stored<Meta> {
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
            build_profiles::<Create>(&stored(&[("10.0.2", "a"), ("7.2.22", "b"), ("8.0.0", "a")]));
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
            let recorded: Vec<(&Case, Baseline<Meta>)> = cases
                .iter()
                .map(|c| {
                    let mut b = baseline(v, "{}\n");
                    b.meta.target = c.target.name().into();
                    b.meta.case = c.name.into();
                    (c, b)
                })
                .collect();
            write_version::<Create>(root, v, &recorded).unwrap();
        }
        write_profiles::<Create>(root).unwrap();
    }

    fn two_raw_cases() -> Vec<Case> {
        CREATE_CASES.iter().filter(|c| c.target == Target::Raw).copied().collect()
    }

    #[test]
    fn a_consistent_tree_has_no_problems_and_rewrites_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let cases = two_raw_cases();
        write_tree(dir.path(), &cases, &["7.2.22", "10.0.2"]);
        assert_eq!(consistency_problems::<Create>(dir.path(), &cases), Vec::<String>::new());
        assert_eq!(write_profiles::<Create>(dir.path()).unwrap(), 0);
        let map = VersionMap::load(dir.path()).unwrap();
        assert_eq!(map.profiles.len(), 1, "equal baselines share one profile");
        assert_eq!(map.version_to_profile["10.0.2"], "profile-7-2-22");
    }

    #[test]
    fn a_case_without_baselines_is_a_problem() {
        let dir = tempfile::tempdir().unwrap();
        let cases = two_raw_cases();
        write_tree(dir.path(), &cases[..1], &["10.0.2"]);
        let problems = consistency_problems::<Create>(dir.path(), &cases);
        assert_eq!(problems.len(), 3, "{problems:#?}");
        assert!(problems.iter().all(|p| p.contains("raw-1G-default has no baseline")));
    }

    #[test]
    fn a_baseline_without_a_case_is_a_problem() {
        let dir = tempfile::tempdir().unwrap();
        let cases = two_raw_cases();
        write_tree(dir.path(), &cases, &["10.0.2"]);
        let problems = consistency_problems::<Create>(dir.path(), &cases[..1]);
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
        assert!(!consistency_problems::<Create>(dir.path(), &cases).is_empty());
    }

    #[test]
    fn a_stale_profile_is_a_problem() {
        let dir = tempfile::tempdir().unwrap();
        let cases = two_raw_cases();
        write_tree(dir.path(), &cases, &["10.0.2"]);
        std::fs::write(dir.path().join("raw/10.0.2/1M-default.stdout.txt"), "{\n    \"x\": 1\n}\n")
            .unwrap();
        let problems = consistency_problems::<Create>(dir.path(), &cases);
        assert!(
            problems.iter().any(|p| p.contains("differs from its version folder")),
            "{problems:#?}"
        );
    }

    #[test]
    fn version_map_text_is_in_version_order() {
        let (m, _) = build_profiles::<Create>(&stored(&[("10.0.2", "a"), ("7.2.22", "b")]));
        let text = m.to_text();
        assert!(text.find("7.2.22").unwrap() < text.find("10.0.2").unwrap());
        let back: VersionMap = serde_json::from_str(&text).unwrap();
        assert_eq!(back, m);
    }
}
