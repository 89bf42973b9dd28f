//! The checks of the convert rows can fail: each test breaks one thing in
//! a run that passes (two qemu-img runs of a row) and shows that the
//! check that owns it reports it.

use super::{
    assert_same_files, assert_same_output, case, make_twins, sums, touched, Mine, Outcome,
};
use crate::util::{oracle_or_skip, tempdir, Transcript};
use instar_matrix::ConvertCase;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

/// Runs `row` with the oracle in two folders (the second playing instar)
/// and hands both to `then`.
fn with_two_runs(row: &str, then: &dyn Fn(&Transcript, &ConvertCase, &mut Outcome)) {
    let Some(oracle) = oracle_or_skip() else { return };
    let case = case(row);
    let t = Transcript::default();
    let (qd, md) = (tempdir(), tempdir());
    make_twins(&t, oracle, case.recipes, qd.path(), md.path());
    let args = case.convert_args();
    let qb = sums(qd.path());
    let theirs = t.run(&oracle.path, &args, qd.path());
    let theirs_touched = touched(&qb, qd.path());
    let mb = sums(md.path());
    let mine = t.run(&oracle.path, &args, md.path());
    let mut out = Outcome {
        touched: (theirs_touched, touched(&mb, md.path())),
        theirs,
        mine,
        theirs_dir: qd.path(),
        mine_dir: md.path(),
    };
    then(&t, case, &mut out);
}

/// Whether `check` fails.
fn fails(check: impl FnOnce()) -> bool {
    catch_unwind(AssertUnwindSafe(check)).is_err()
}

/// Flips the byte at `offset` of `file`.
fn flip(file: &Path, offset: u64) {
    let byte = crate::util::edit::read_at(file, offset, 1)[0];
    crate::util::edit::write_at(file, offset, &[byte ^ 0xff]);
}

#[test]
fn a_changed_target_byte_is_caught() {
    with_two_runs("qcow2_from_raw_gaps", &|t, case, out| {
        let oracle = oracle_or_skip().expect("installed");
        let mine = Mine::Qemu(oracle);
        assert_same_files(t, case, mine, out);
        // A byte of the first data cluster (0x50000), then of the header.
        for offset in [0x5_0010, 0x30] {
            let target = out.mine_dir.join(case.target_file());
            flip(&target, offset);
            assert!(
                fails(|| assert_same_files(t, case, mine, out)),
                "a flipped byte at {offset:#x} went unnoticed"
            );
            flip(&target, offset);
            assert_same_files(t, case, mine, out);
        }
    });
}

#[test]
fn a_changed_byte_outside_the_vmdk_masks_is_caught() {
    with_two_runs("vmdk_from_raw_gaps", &|t, case, out| {
        let oracle = oracle_or_skip().expect("installed");
        let mine = Mine::Qemu(oracle);
        // The two runs' CIDs differ: the masks hide exactly that.
        assert_same_files(t, case, mine, out);
        let target = out.mine_dir.join(case.target_file());
        flip(&target, 0x1_0000 + 5);
        assert!(fails(|| assert_same_files(t, case, mine, out)), "a grain byte went unnoticed");
    });
}

#[test]
fn an_extent_byte_is_caught() {
    with_two_runs("vmdk_flat_from_qcow2_zero", &|t, case, out| {
        let oracle = oracle_or_skip().expect("installed");
        let mine = Mine::Qemu(oracle);
        assert_same_files(t, case, mine, out);
        flip(&out.mine_dir.join("tgt-flat.vmdk"), 100);
        assert!(fails(|| assert_same_files(t, case, mine, out)), "an extent byte went unnoticed");
    });
}

#[test]
fn a_wrong_exit_code_is_caught() {
    with_two_runs("qcow2_from_qcow2_plain", &|t, _case, out| {
        let oracle = oracle_or_skip().expect("installed");
        let mine = Mine::Qemu(oracle);
        assert_same_output(t, "as run", oracle, mine, out);
        out.mine.code = Some(1);
        assert!(fails(|| assert_same_output(t, "exit 1", oracle, mine, out)));
        out.mine.code = Some(0);
        out.mine.stderr.push_str("qemu-img: a warning\n");
        assert!(fails(|| assert_same_output(t, "one line more", oracle, mine, out)));
    });
}

#[test]
fn a_missing_or_extra_file_is_caught() {
    with_two_runs("qcow2_data_file_from_raw_gaps", &|t, case, out| {
        let oracle = oracle_or_skip().expect("installed");
        let mine = Mine::Qemu(oracle);
        assert_same_files(t, case, mine, out);
        out.touched.1.retain(|f| f != "tgt.data");
        assert!(fails(|| assert_same_files(t, case, mine, out)), "a missing data file");
        out.touched.1.push("tgt.data".into());
        out.touched.1.push("stray".into());
        assert!(fails(|| assert_same_files(t, case, mine, out)), "a stray file");
    });
}

/// A failure in the middle of the copy: qemu-img leaves its target,
/// instar must leave nothing; a target left behind is caught.
#[test]
fn a_target_left_after_a_read_error_is_caught() {
    with_two_runs("raw_err_corrupt_compressed_cluster", &|t, case, out| {
        assert!(!out.theirs.ok(), "the corrupt source converts: {}", out.theirs.stderr);
        assert!(!out.touched.1.is_empty(), "qemu-img left no target");
        assert!(
            fails(|| assert_same_files(t, case, Mine::Instar, out)),
            "instar's target left behind went unnoticed"
        );
        out.touched.1.clear();
        assert_same_files(t, case, Mine::Instar, out);
    });
}
