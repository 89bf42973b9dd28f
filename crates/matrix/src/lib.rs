//! The machinery of instar's differential tests against qemu-img: the case
//! tables of create ([`cases`]) and measure ([`measure_cases`]), finding
//! qemu-img binaries and their versions ([`qemu`]), the info-JSON
//! whitelist ([`info_json`]), the byte masks of images ([`masks`]) and the
//! sparse-aware file reading they rest on ([`files`]), and the recorded
//! baselines with their profiles: one store ([`baseline`]) for both
//! tables' recordings ([`create_baseline`], [`measure_baseline`]). `tests/create_matrix.rs` and the `gen-baselines`
//! program are built on it; nothing in it knows instar's own code, so the
//! oracle cannot share instar's mistakes.
//!
//! The workspace's lints against panics and lossy casts guard instar's
//! handling of hostile images; this crate handles only the files its own
//! tests make, where a panic is the test failure it should be.
#![allow(
    clippy::expect_used,
    clippy::cast_possible_truncation,
    reason = "test machinery over files the tests make: a panic fails the test"
)]

pub mod baseline;
pub mod cases;
pub mod convert_cases;
pub mod create_baseline;
pub mod files;
pub mod info_json;
pub mod masks;
pub mod measure_baseline;
pub mod measure_cases;
pub mod qemu;
pub mod recipes;

pub use cases::{Case, Target, CREATE_CASES};
pub use convert_cases::{ConvertCase, ConvertSource, CONVERT_CASES};
pub use measure_cases::{MeasureCase, MeasureTarget, Source, MEASURE_CASES};
pub use qemu::{QemuImg, KNOWN_VERSIONS};
pub use semver;
