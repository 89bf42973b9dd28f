//! `--bitmaps`: the source's persistent bitmaps added to the target after
//! the copy (qemu-img's `convert_copy_bitmaps`), each with its name,
//! granularity and state, holding the source's bits. The target's driver
//! stores them when it closes.

use super::ConvertFailure;
use instar_core::{Diagnostic, Image, ImageWriter};

/// Adds `source`'s persistent bitmaps to `target` in the order qemu-img
/// walks them: a node lists its bitmaps newest first, and qemu loads a
/// qcow2 image's bitmaps in directory order, so the walk runs backwards
/// through the directory. An inconsistent bitmap is skipped with a
/// warning when `skip_broken`; otherwise it fails the merge of its bits
/// (qemu-img before 6.2, which did not check it before the copy). What
/// was added before a failure (and the bitmap that failed) stays in the
/// target, as in qemu-img's.
pub(super) fn copy_bitmaps(
    source: &dyn Image,
    target: &mut dyn ImageWriter,
    skip_broken: bool,
    output: &mut dyn super::ConvertOutput,
) -> Result<(), ConvertFailure> {
    let bitmaps = source.bitmap_copies().map_err(|e| ConvertFailure::from_error(&e))?;
    for bm in bitmaps.into_iter().rev() {
        let name = bm.name.clone();
        if skip_broken && bm.bits.is_none() {
            output.stderr(Diagnostic::Reported(format!(
                "warning: Skipping inconsistent bitmap '{name}'"
            )));
            continue;
        }
        if bm.bits.is_none() {
            // qemu-img (5.2) adds the target's bitmap, empty and disabled
            // as the inconsistent one was loaded, fails to merge into it,
            // and leaves it there, to be stored at close.
            let empty = instar_core::BitmapCopy { bits: Some(Vec::new()), enabled: false, ..bm };
            add(target, empty)?;
            return Err(ConvertFailure {
                lines: vec![
                    Diagnostic::Reported(format!(
                        "Failed to populate bitmap {name}: Bitmap '{name}' is inconsistent and \
                         cannot be used"
                    )),
                    Diagnostic::Plain(
                        "Try block-dirty-bitmap-remove to delete this bitmap from disk".to_string(),
                    ),
                ],
                code: 1,
            });
        }
        add(target, bm)?;
    }
    Ok(())
}

/// `block-dirty-bitmap-add` of `bm` to `target`, failing with qemu-img's
/// line.
fn add(target: &mut dyn ImageWriter, bm: instar_core::BitmapCopy) -> Result<(), ConvertFailure> {
    let name = bm.name.clone();
    target.add_bitmap(bm).map_err(|e| {
        ConvertFailure::reported(format!("Failed to create bitmap {name}: {}", e.message()))
    })
}
