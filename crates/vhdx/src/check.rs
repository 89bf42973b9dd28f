//! `check` for VHDX images, as qemu's `vhdx_co_check`: the image must pass
//! every open-time check (headers, log, region table, metadata); then each
//! fully present BAT entry must lie inside the file and clear of the log,
//! BAT and metadata regions. Each bad entry counts as a corruption, with
//! qemu's message on stderr.

use crate::info::report_failure;
use crate::open::{open, OpenFailure, OpenMode};
use instar_core::{CheckReport, Error};

/// The consistency check of the VHDX image at `filename`.
pub fn check(filename: &str) -> Result<CheckReport, Error> {
    let image = open(filename, OpenMode::Check).map_err(|f| report_failure(filename, f))?;
    let checker = image
        .check_bat(false)
        .map_err(|error| report_failure(filename, OpenFailure { notes: Vec::new(), error }))?;
    let mut report = CheckReport::new(filename, "vhdx");
    report.corruptions = checker.errors;
    // qemu reports each finding with error_report, after the program name.
    for m in &checker.messages {
        report.push_reported(m.clone());
    }
    Ok(report)
}
