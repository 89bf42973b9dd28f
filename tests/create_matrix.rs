//! The one integration target: instar against real qemu-img.
//!
//! The create matrix runs every row of CREATE_CASES
//! (`crates/matrix/src/cases.rs`) through the surfaces of docs/compat.md §4.2, each
//! (surface, row) its own named test, and the surfaces that depend on the
//! qemu-img version once per version the baselines know:
//!
//! ```text
//! baseline::<row>::<version>     instar (--qemu-version V) and qemu-img V read instar's
//!                                image as V read its own when the baselines were recorded
//! cross_validation::<row>        instar info agrees on instar's and qemu-img's images
//! check_roundtrip::<row>         instar check prints what qemu-img check prints on instar's image
//! bytes::<row>::<version>        instar's file is qemu-img V's file outside the masks
//! info_parity::<row>::<version>  instar info prints what qemu-img V prints
//! oracle::<row>                  two qemu-img runs differ only inside the masks
//! consistency::*                 the table, the version list and testdata/ agree,
//!                                and qemu-img still prints what testdata/ holds
//! ```
//!
//! Beside it, in helper modules, one named test per case as well:
//!
//! ```text
//! cli::*                  command-line parity: same output, exit code and files as qemu-img
//! parity::<format>::*     create, info and check of each format, option by option and
//!                         size by size, against qemu-img: bytes, outputs, allocation
//! damage::<format>::*     check (and info) of damaged images against qemu-img check;
//!                         instar's own check --deep of damaged VHDs
//! probe::*                formats qemu probes and instar does not read, refused by
//!                         name or with qemu's error; drivers qemu cannot create
//! faults::*               creates that fail (no space, EFBIG, no permission, a target
//!                         that is a folder, link, FIFO, device node or file): same
//!                         output, the target as it was; info and check never write
//! ```
//!
//! The matrix names come from the table itself (`instar_matrix::create_cases!`)
//! and the version list (`instar_matrix::known_versions!`), so adding a row
//! or a version adds its tests. `cargo test --test create_matrix -- --list`
//! shows them all. A test whose qemu-img is not installed skips, saying
//! `SKIPPED <test>: <reason>` on stderr; with INSTAR_MATRIX_STRICT=1 it
//! fails instead, as in CI (`tests/util`).

// The workspace's cast and panic lints guard instar's handling of hostile
// images; here the tests craft images from values they choose, and a panic
// is the test failure it should be.
#![allow(
    clippy::cast_possible_truncation,
    clippy::expect_used,
    reason = "tests craft images from values they choose; a panic fails the test"
)]

mod cli;
mod compare;
mod convert;
mod convert_formats;
mod convert_qcow2;
mod damage;
mod faults;
mod hostile;
mod lived_in;
mod map;
mod measure;
mod parity;
mod probe;
mod snapshots;
mod util;

use rstest::{fixture, rstest};
use util::{surfaces, Env};

/// The environment, discovered once for the whole test binary.
#[fixture]
fn env() -> &'static Env {
    util::env()
}

/// One test per version: `$surface("<row>", "<version>")`.
macro_rules! per_version {
    ($surface:ident, $row:ident ; $($version:ident $text:literal;)*) => {
        $(
            #[test]
            fn $version() {
                surfaces::$surface(stringify!($row), $text);
            }
        )*
    };
}

/// A module per row, holding a test per version.
macro_rules! per_row_and_version {
    ($surface:ident ; $($target:ident $row:ident $name:literal $size:literal $options:literal;)*) => {
        $(
            mod $row {
                use super::*;
                instar_matrix::known_versions!(per_version, $surface, $row);
            }
        )*
    };
}

/// A test per row: `$surface("<row>")`.
macro_rules! per_row {
    ($surface:ident ; $($target:ident $row:ident $name:literal $size:literal $options:literal;)*) => {
        $(
            #[test]
            fn $row() {
                surfaces::$surface(stringify!($row));
            }
        )*
    };
}

/// A module per surface, expanded over the table by `$expand`.
macro_rules! surface_modules {
    ($expand:ident: $($surface:ident),*) => {
        $(
            mod $surface {
                use super::*;
                instar_matrix::create_cases!($expand, $surface);
            }
        )*
    };
}

surface_modules!(per_row_and_version: baseline, bytes, info_parity);
surface_modules!(per_row: cross_validation, check_roundtrip, oracle);

/// One test per version: `$check("<version>")`.
macro_rules! per_version_only {
    ($check:path ; $($version:ident $text:literal;)*) => {
        $(
            #[test]
            fn $version() {
                $check($text);
            }
        )*
    };
}

/// The table, the version list and the files under testdata/ agree, and
/// the baselines are still what the installed qemu-img versions print.
mod consistency {
    use super::*;

    mod baselines_are_current {
        use super::*;
        instar_matrix::known_versions!(per_version_only, surfaces::baselines_are_current);
    }

    use instar_matrix::baseline::{consistency_problems, select_profile};
    use instar_matrix::create_baseline::Create;
    use instar_matrix::semver::Version;
    use instar_matrix::{CREATE_CASES, KNOWN_VERSIONS};

    /// Every row has baselines for every version of the map, every stored
    /// baseline has a row, and profiles/ and version-map.json are what the
    /// generator makes of the version folders.
    #[rstest]
    fn baselines_match_the_table(env: &Env) {
        let problems = consistency_problems::<Create>(&env.baselines, CREATE_CASES);
        assert!(
            problems.is_empty(),
            "CREATE_CASES and {} disagree (run `make baselines`):\n{}",
            env.baselines.display(),
            problems.join("\n")
        );
    }

    /// The versions that get named tests are the versions recorded.
    #[rstest]
    fn known_versions_match_the_version_map(env: &Env) {
        let recorded: Vec<String> =
            env.map.versions().iter().map(instar_matrix::qemu::version_key).collect();
        assert_eq!(
            recorded, KNOWN_VERSIONS,
            "instar_matrix::known_versions! and version-map.json disagree"
        );
    }

    /// The oracle every live comparison runs against is the version instar
    /// speaks as by default.
    #[test]
    fn the_oracle_is_the_default_dialect() {
        let default = instar_core::QemuDialect::DEFAULT.version().to_string();
        assert_eq!(instar_matrix::qemu::oracle_version(), default);
        assert!(KNOWN_VERSIONS.contains(&default.as_str()));
    }

    /// The pull-request workflow runs every known version but the
    /// oracle's in a job of its own (`.github/workflows/ci.yml`, the
    /// `versions` matrix): a version added to the baselines and not to the
    /// workflow would go untested in pull requests.
    #[test]
    fn ci_fans_out_every_version() {
        let root = instar_matrix::qemu::repo_root();
        let workflow = std::fs::read_to_string(root.join(".github/workflows/ci.yml"))
            .expect("the workflow is readable");
        let line = workflow
            .lines()
            .find(|l| l.trim_start().starts_with("version: ["))
            .expect("the workflow has a version matrix");
        let listed: Vec<String> = line
            .split(['[', ']', ',', '"'])
            .map(str::trim)
            .filter(|p| p.chars().next().is_some_and(|c| c.is_ascii_digit()))
            .map(String::from)
            .collect();
        let oracle = instar_matrix::qemu::oracle_version();
        let want: Vec<String> =
            KNOWN_VERSIONS.iter().filter(|v| **v != oracle).map(|v| v.to_string()).collect();
        assert_eq!(listed, want, "the workflow's version matrix is not the version map's");
    }

    /// Each known version selects the profile it was recorded into.
    mod each_version_selects_its_own_profile {
        use super::*;
        instar_matrix::known_versions!(per_version_only, selects_its_own_profile);
    }

    fn selects_its_own_profile(version: &str) {
        let env = util::env();
        let got = select_profile(&env.map, &Version::parse(version).unwrap());
        assert_eq!(got, env.map.version_to_profile.get(version).map(String::as_str));
    }
}
