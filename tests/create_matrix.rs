//! The create matrix: instar against real qemu-img, for every row of
//! CREATE_CASES (`crates/matrix/src/cases.rs`) and every qemu-img version
//! the host offers.
//!
//! Each (surface, row) is its own named test, and the surfaces that depend
//! on the qemu-img version get one test per version the baselines know:
//!
//! ```text
//! baseline::<row>::<version>     qemu-img V reads instar's image as it read its own
//! cross_validation::<row>        instar info agrees on instar's and qemu-img's images
//! check_roundtrip::<row>         instar check finds instar's image clean, as qemu-img does
//! bytes::<row>                   instar's file is qemu-img's file outside the masks
//! info_parity::<row>::<version>  instar info prints what qemu-img V prints
//! oracle::<row>                  two qemu-img runs differ only inside the masks
//! consistency::*                 the table, the version list and testdata/ agree,
//!                                and qemu-img still prints what testdata/ holds
//! ```
//!
//! The names come from the table itself (`instar_matrix::create_cases!`)
//! and the version list (`instar_matrix::known_versions!`), so adding a row
//! or a version adds its tests. `cargo test --test create_matrix -- --list`
//! shows them all. A version that is not installed skips, saying so on
//! stderr (`make qemu-matrix` installs 7.2.22); with INSTAR_MATRIX_STRICT=1
//! it fails instead, as in CI.

mod cli;
mod damage;
mod probe;
mod util;

use rstest::{fixture, rstest};
use util::{surfaces, Env};

/// The environment, discovered once for the whole test binary.
#[fixture]
#[once]
fn env() -> Env {
    Env::discover()
}

/// One test per version: `$surface(env, "<row>", "<version>")`.
macro_rules! per_version {
    ($surface:ident, $row:ident ; $($version:ident $text:literal;)*) => {
        $(
            #[rstest]
            fn $version(env: &Env) {
                surfaces::$surface(env, stringify!($row), $text);
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

/// A test per row: `$surface(env, "<row>")`.
macro_rules! per_row {
    ($surface:ident ; $($target:ident $row:ident $name:literal $size:literal $options:literal;)*) => {
        $(
            #[rstest]
            fn $row(env: &Env) {
                surfaces::$surface(env, stringify!($row));
            }
        )*
    };
}

mod baseline {
    use super::*;
    instar_matrix::create_cases!(per_row_and_version, baseline);
}

mod cross_validation {
    use super::*;
    instar_matrix::create_cases!(per_row, cross_validation);
}

mod check_roundtrip {
    use super::*;
    instar_matrix::create_cases!(per_row, check_roundtrip);
}

mod bytes {
    use super::*;
    instar_matrix::create_cases!(per_row, bytes);
}

mod info_parity {
    use super::*;
    instar_matrix::create_cases!(per_row_and_version, info_parity);
}

mod oracle {
    use super::*;
    instar_matrix::create_cases!(per_row, oracle);
}

/// One test per version: `$check(env, "<version>")`.
macro_rules! per_version_only {
    ($check:ident ; $($version:ident $text:literal;)*) => {
        $(
            #[rstest]
            fn $version(env: &Env) {
                surfaces::$check(env, $text);
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
        instar_matrix::known_versions!(per_version_only, baselines_are_current);
    }

    use instar_matrix::baseline::{consistency_problems, select_profile};
    use instar_matrix::semver::Version;
    use instar_matrix::{CREATE_CASES, KNOWN_VERSIONS};

    /// Every row has baselines for every version of the map, every stored
    /// baseline has a row, and profiles/ and version-map.json are what the
    /// generator makes of the version folders.
    #[rstest]
    fn baselines_match_the_table(env: &Env) {
        let problems = consistency_problems(&env.baselines, CREATE_CASES);
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

    /// Each known version selects the profile it was recorded into.
    #[rstest]
    fn each_version_selects_its_own_profile(env: &Env) {
        for v in KNOWN_VERSIONS {
            let got = select_profile(&env.map, &Version::parse(v).unwrap());
            assert_eq!(got, env.map.version_to_profile.get(*v).map(String::as_str), "version {v}");
        }
    }
}
