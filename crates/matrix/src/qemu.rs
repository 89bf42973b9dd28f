//! Finding the qemu-img binaries the host offers, and knowing their
//! versions.
//!
//! Three places are searched, in this order: the system's qemu-img
//! (`/usr/bin/qemu-img`, else the first `qemu-img` on `PATH`), every
//! `.qemu-matrix/*/usr/bin/qemu-img` under the repository (what
//! `make qemu-matrix` unpacks, ignored by git), and the paths listed in the
//! environment variable [`QEMU_IMG_ENV`] (colon-separated; a folder there
//! stands for the qemu-img inside it). Each binary's version is read from
//! its own `--version`, never guessed from its path. When two binaries
//! report the same version the first one found is kept. [`discover`] is
//! the one search every test and the baseline generator use.
//!
//! A version the baselines hold that Debian no longer offers is listed by
//! `make qemu-matrix` in `.qemu-matrix/unavailable` ([`unavailable`]): its
//! live tests skip with that reason, even in CI.

use semver::Version;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The environment variable naming extra qemu-img binaries or folders.
pub const QEMU_IMG_ENV: &str = "INSTAR_QEMU_IMG";

/// The folder of the repository where `make qemu-matrix` unpacks older
/// qemu-img releases, one sub-folder per version.
pub const MATRIX_DIR: &str = ".qemu-matrix";

/// The file in [`MATRIX_DIR`] where `make qemu-matrix` (`.ci/qemu-matrix.py`)
/// lists the versions the committed baselines hold that Debian's archive no
/// longer offers: one `<version>\t<reason>` line each, `#` comments.
pub const UNAVAILABLE_FILE: &str = "unavailable";

/// Calls `$callback! { rows }` with one row `ident "version";` per qemu-img
/// version the committed baselines cover (tokens given after the callback's
/// name come first, then `;`).
///
/// This is the one list of versions that get their own named tests; a test
/// checks it against `version-map.json`.
#[macro_export]
macro_rules! known_versions {
    ($callback:ident $(, $($extra:tt)*)?) => {
        $callback! {
            $($($extra)*)? ;
            v5_2_0 "5.2.0";
            v7_2_18 "7.2.18";
            v7_2_22 "7.2.22";
            v10_0_2 "10.0.2";
            v10_0_13 "10.0.13";
            v11_1_3 "11.1.3";
        }
    };
}

macro_rules! version_list {
    (; $($ident:ident $version:literal;)*) => {
        /// The qemu-img versions the committed baselines cover, oldest first.
        pub static KNOWN_VERSIONS: &[&str] = &[$($version),*];
    };
}

known_versions!(version_list);

/// One qemu-img binary and the version it reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QemuImg {
    /// Where the binary is.
    pub path: PathBuf,
    /// The version from `--version`.
    pub version: Version,
    /// The first line of `--version` (`qemu-img version 10.0.2 (Debian ...)`).
    pub version_line: String,
}

/// Reads the version out of the first line of `qemu-img --version`
/// (`qemu-img version 10.0.2 (Debian 1:10.0.2+ds-2)`); a two-part version
/// (`8.2`) gets patch 0.
pub fn parse_version_line(line: &str) -> Option<Version> {
    let rest = line.trim().strip_prefix("qemu-img version ")?;
    let word = rest.split_whitespace().next()?;
    let numbers: Vec<u64> = word.split('.').map(|p| p.parse().ok()).collect::<Option<_>>()?;
    match numbers[..] {
        [major, minor] => Some(Version::new(major, minor, 0)),
        [major, minor, patch] => Some(Version::new(major, minor, patch)),
        _ => None,
    }
}

/// Runs `path --version` and reads its version; `None` when the binary
/// does not run or does not look like qemu-img.
pub fn probe(path: &Path) -> Option<QemuImg> {
    let out = Command::new(path).arg("--version").output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().next()?.trim().to_string();
    let version = parse_version_line(&line)?;
    Some(QemuImg { path: path.to_path_buf(), version, version_line: line })
}

/// The system's qemu-img: `/usr/bin/qemu-img`, else `qemu-img` on `PATH`.
fn system_candidate() -> Option<PathBuf> {
    let usr = PathBuf::from("/usr/bin/qemu-img");
    if usr.is_file() {
        return Some(usr);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join("qemu-img")).find(|p| p.is_file())
}

/// The qemu-img wrappers under `<repo>/.qemu-matrix/*/` (not in the
/// `.stage-*` folders `make qemu-matrix` builds a copy in).
fn matrix_candidates(repo_root: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(repo_root.join(MATRIX_DIR)) else { return Vec::new() };
    let mut found: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.path().join("usr/bin/qemu-img"))
        .filter(|p| p.is_file())
        .collect();
    found.sort();
    found
}

/// The binaries named by a [`QEMU_IMG_ENV`] value: each entry is a binary,
/// or a folder holding `qemu-img`, `bin/qemu-img` or `usr/bin/qemu-img`.
pub fn env_candidates(value: &str) -> Vec<PathBuf> {
    value
        .split(':')
        .filter(|s| !s.is_empty())
        .filter_map(|entry| {
            let p = PathBuf::from(entry);
            if p.is_dir() {
                ["qemu-img", "bin/qemu-img", "usr/bin/qemu-img"]
                    .iter()
                    .map(|rel| p.join(rel))
                    .find(|c| c.is_file())
            } else {
                Some(p)
            }
        })
        .collect()
}

/// Every qemu-img the host offers, one per version, oldest first.
pub fn discover(repo_root: &Path) -> Vec<QemuImg> {
    let mut candidates: Vec<PathBuf> = system_candidate().into_iter().collect();
    candidates.extend(matrix_candidates(repo_root));
    if let Ok(value) = std::env::var(QEMU_IMG_ENV) {
        candidates.extend(env_candidates(&value));
    }
    let mut found: Vec<QemuImg> = Vec::new();
    for candidate in candidates {
        if let Some(q) = probe(&candidate) {
            if !found.iter().any(|f| f.version == q.version) {
                found.push(q);
            }
        }
    }
    found.sort_by(|a, b| a.version.cmp(&b.version));
    found
}

/// Reads an [`UNAVAILABLE_FILE`]: {version: why it is not installed}.
pub fn parse_unavailable(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.split_once('\t'))
        .map(|(version, reason)| (version.trim().to_string(), reason.trim().to_string()))
        .collect()
}

/// The versions `make qemu-matrix` found no longer offered by Debian, with
/// the reason it gave (empty when it found none, or did not run).
pub fn unavailable(repo_root: &Path) -> BTreeMap<String, String> {
    std::fs::read_to_string(repo_root.join(MATRIX_DIR).join(UNAVAILABLE_FILE))
        .map(|text| parse_unavailable(&text))
        .unwrap_or_default()
}

/// The version of the oracle: the qemu-img that every live comparison
/// (as opposed to one per version) runs against. It is the version instar
/// speaks as by default (`QemuDialect::DEFAULT`), and the system's
/// qemu-img (10.0.2, from bookworm-backports) on the machines the project
/// runs on. Found by [`discover`] like every other version.
pub const ORACLE_VERSION: &str = "10.0.2";

/// [`ORACLE_VERSION`].
pub fn oracle_version() -> &'static str {
    ORACLE_VERSION
}

/// The root of the repository this crate was built from.
pub fn repo_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = here.join("../..");
    root.canonicalize().unwrap_or(root)
}

/// A version as baseline folders and `version-map.json` spell it.
pub fn version_key(v: &Version) -> String {
    format!("{}.{}.{}", v.major, v.minor, v.patch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_debian_version_lines() {
        assert_eq!(
            parse_version_line("qemu-img version 10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)"),
            Some(Version::new(10, 0, 2))
        );
        assert_eq!(
            parse_version_line("qemu-img version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)"),
            Some(Version::new(7, 2, 22))
        );
        assert_eq!(parse_version_line("qemu-img version 8.2"), Some(Version::new(8, 2, 0)));
    }

    #[test]
    fn rejects_other_programs() {
        assert_eq!(parse_version_line("instar 0.1.0"), None);
        assert_eq!(parse_version_line("qemu-img version x.y"), None);
        assert_eq!(parse_version_line(""), None);
    }

    #[test]
    fn known_versions_are_sorted_and_parse() {
        let parsed: Vec<Version> =
            KNOWN_VERSIONS.iter().map(|v| Version::parse(v).unwrap()).collect();
        let mut sorted = parsed.clone();
        sorted.sort();
        assert_eq!(parsed, sorted);
        for (v, text) in parsed.iter().zip(KNOWN_VERSIONS) {
            assert_eq!(&version_key(v), text);
        }
    }

    #[test]
    fn reads_the_unavailable_file() {
        let text = "# Written by .ci/qemu-matrix.py: ...\n11.1.3\tDebian no longer offers qemu-img 11.1.3 (checked 2027-03-01)\n\nnonsense\n";
        let found = parse_unavailable(text);
        assert_eq!(found.len(), 1);
        assert_eq!(found["11.1.3"], "Debian no longer offers qemu-img 11.1.3 (checked 2027-03-01)");
        assert!(unavailable(Path::new("/nonexistent")).is_empty());
    }

    #[test]
    fn env_entries_may_be_folders_or_binaries() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("usr/bin")).unwrap();
        std::fs::write(dir.path().join("usr/bin/qemu-img"), b"").unwrap();
        let value = format!("{}::/opt/q/qemu-img", dir.path().display());
        assert_eq!(
            env_candidates(&value),
            [dir.path().join("usr/bin/qemu-img"), PathBuf::from("/opt/q/qemu-img")]
        );
    }
}
