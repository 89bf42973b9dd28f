//! convert into vmdk, vpc and vhdx targets: for each case, qemu-img
//! convert and instar's convert write their targets from the same source
//! with the same options, and the two files must be the same outside the
//! masks of docs/compat.md §3 (random ids, timestamps, creator strings).
//! `-n` cases start both runs from one copy of a target qemu-img created,
//! so nothing random differs before the copy. Hostile `-n` targets must
//! fail with qemu-img's message and exit code.
//!
//! instar runs as the binary, speaking as the qemu-img version of the
//! case (`INSTAR_QEMU_VERSION`).

use crate::util::{self, Transcript};
use instar_cli::QEMU_VERSION_VAR;
use instar_matrix::Target;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// A source image, as its bytes: guest data written into a raw file.
#[derive(Debug, Clone, Copy)]
enum Source {
    /// facts §2.3: 1 MiB of 0x11 with zero runs of 512 B @0x1000, 2 KiB
    /// @0x3000, 4 KiB @0x5000.
    Gaps,
    /// 4 MiB: data 0..64 KiB, 4 KiB @192 KiB, 512 B at the end; the rest
    /// a hole.
    Src,
    /// 3 MiB + 1536 B (not a multiple of any grain or block): data in
    /// the first block, a 64 KiB hole, data across the 2 MiB boundary,
    /// and data in the last partial sector run.
    Odd,
    /// 2 MiB + 512 B of zeros (a hole).
    Zero,
    /// 140 MiB with 512 B of data at the start of every MiB: with 1 MiB
    /// blocks, more vhdx log entries than the 1 MiB log holds (it wraps).
    EveryMib,
    /// 2 GiB + 3 MiB: data at the start, across the 2 GiB boundary (where
    /// a twoGbMaxExtent image changes extent) and in the last sector.
    Across2G,
    /// 1000 bytes of data: not even whole sectors (convert rounds the
    /// disk up to 1024 bytes).
    Tiny,
}

impl Source {
    /// Writes the source to `path`: `Gaps` written in full (its zero
    /// runs are data), the others as holes with data runs.
    fn write(self, path: &Path) {
        let (size, runs): (u64, Vec<(u64, u64, u8)>) = match self {
            Source::Gaps => (
                1 << 20,
                vec![
                    (0, 0x1000, 0x11),
                    (0x1200, 0x3000, 0x11),
                    (0x3800, 0x5000, 0x11),
                    (0x6000, 1 << 20, 0x11),
                ],
            ),
            Source::Src => (
                4 << 20,
                vec![
                    (0, 0x10000, 0x5a),
                    (0x30000, 0x31000, 0xa5),
                    ((4 << 20) - 512, 4 << 20, 0x77),
                ],
            ),
            Source::Odd => (
                (3 << 20) + 1536,
                vec![
                    (0, 0x9000, 0x21),
                    (0x19000, 0x20000, 0x22),
                    ((2 << 20) - 0x3000, (2 << 20) + 0x3000, 0x23),
                    ((3 << 20) + 512, (3 << 20) + 1536, 0x24),
                ],
            ),
            Source::Zero => ((2 << 20) + 512, vec![]),
            Source::Across2G => (
                (2 << 30) + (3 << 20),
                vec![
                    (0, 0x8000, 0x31),
                    ((2 << 30) - 0x3000, (2 << 30) + 0x3000, 0x32),
                    ((2 << 30) + (3 << 20) - 512, (2 << 30) + (3 << 20), 0x33),
                ],
            ),
            Source::Tiny => (1000, vec![(0, 1000, 0x44)]),
            Source::EveryMib => {
                (140 << 20, (0..140u64).map(|k| (k << 20, (k << 20) + 512, 0x42)).collect())
            }
        };
        if let Source::Gaps = self {
            let mut data = vec![0u8; size as usize];
            for (start, end, byte) in runs {
                data[start as usize..end as usize].fill(byte);
            }
            std::fs::write(path, data).expect("the source");
            return;
        }
        let file = std::fs::File::create(path).expect("the source");
        file.set_len(size).expect("its size");
        for (start, end, byte) in runs {
            file.write_all_at(&vec![byte; (end - start) as usize], start).expect("its data");
        }
    }
}

/// A case: `source` converted with `args` (`SRC` and `TGT` stand for the
/// two files) by qemu-img `version` and by instar speaking as it, each in
/// its own folder (`q/`, `i/`) so that the names inside the targets
/// (vmdk extent names) are the same; with `pre`, the target is first
/// made by qemu-img with those arguments (`TGT` for its name) and both
/// runs write into copies of it (`-n`).
fn case(version: &str, target: Target, source: Source, pre: Option<&[&str]>, args: &[&str]) {
    damaged_case(version, target, source, pre, |_| {}, args);
}

/// A hostile case must fail in qemu-img, with `message` in its stderr.
fn refused(outcome: Outcome, message: &str) {
    if let Some((code, stderr)) = outcome {
        assert_eq!(code, Some(1), "qemu-img accepted the damaged target: {stderr}");
        assert!(stderr.contains(message), "qemu-img said: {stderr}");
    }
}

/// What qemu-img printed and how it exited, when it ran.
type Outcome = Option<(Option<i32>, String)>;

/// [`case`] with the pre-made files (the target, a backing file) damaged by `damage` (given its path)
/// before both runs write into it.
fn damaged_case(
    version: &str,
    target: Target,
    source: Source,
    pre: Option<&[&str]>,
    damage: impl Fn(&Path),
    args: &[&str],
) -> Outcome {
    let qemu = util::qemu_if_installed(version)?;
    let dir = util::tempdir();
    let t = Transcript::default();
    source.write(&dir.path().join("src.img"));
    let (q_dir, i_dir) = (dir.path().join("q"), dir.path().join("i"));
    let made = dir.path().join("made");
    for d in [&q_dir, &i_dir, &made] {
        std::fs::create_dir(d).expect("a folder");
    }
    if let Some(pre) = pre {
        let create: Vec<String> = pre
            .iter()
            .map(|a| match *a {
                "TGT" => TARGET,
                "SRC" => "../src.img",
                other => other,
            })
            .map(str::to_string)
            .collect();
        t.run_ok(&qemu.path, &create, &made);
        damage(&made.join(TARGET));
        for d in [&q_dir, &i_dir] {
            copy_files(&made, d);
        }
    }
    let args: Vec<&str> = args
        .iter()
        .map(|a| match *a {
            "SRC" => "../src.img",
            "TGT" => TARGET,
            other => other,
        })
        .collect();
    let mut argv = vec!["convert"];
    argv.extend(&args);
    let q = t.run(&qemu.path, &argv, &q_dir);
    let mine = t.run_env(util::instar(), &argv, &i_dir, &[(QEMU_VERSION_VAR, version)]);
    t.assert_same_run("convert", &q, &mine);
    if q.code == Some(0) {
        let names = util::files_in(&q_dir);
        t.assert_same("target files", &names.join(" "), &util::files_in(&i_dir).join(" "));
        for name in names {
            // Extent files have no random field: compared in full.
            let kind = if name == TARGET { target } else { Target::Raw };
            if std::env::var_os("KEEP_CONVERT_CASE").is_some() {
                let _ = std::fs::remove_dir_all("/tmp/fw/kept");
                let _ = std::process::Command::new("cp")
                    .arg("-a")
                    .arg(dir.path())
                    .arg("/tmp/fw/kept")
                    .status();
            }
            t.assert_same_bytes(kind, &q_dir.join(&name), &i_dir.join(&name), &name);
            if name == TARGET {
                t.assert_masked_fields(target, &i_dir.join(&name), "instar's target");
            }
        }
    }
    Some((q.code, q.stderr))
}

/// The target's name in both folders.
const TARGET: &str = "t.img";

/// Copies every file of `from` into `to`.
fn copy_files(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("a folder") {
        let entry = entry.expect("an entry");
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
    }
}

/// The default dialect's qemu-img.
const V10: &str = "10.0.2";

macro_rules! cases {
    ($($name:ident: $version:expr, $target:ident, $source:ident, $pre:expr, [$($arg:literal),*];)*) => {
        $(
            #[test]
            fn $name() {
                case($version, Target::$target, Source::$source, $pre, &[$($arg),*]);
            }
        )*
    };
}

mod vpc {
    use super::*;
    cases! {
        dynamic_gaps: V10, Vhd, Gaps, None, ["-f", "raw", "-O", "vpc", "SRC", "TGT"];
        dynamic_src: V10, Vhd, Src, None, ["-f", "raw", "-O", "vpc", "SRC", "TGT"];
        dynamic_odd: V10, Vhd, Odd, None, ["-f", "raw", "-O", "vpc", "SRC", "TGT"];
        dynamic_odd_s0: V10, Vhd, Odd, None, ["-f", "raw", "-O", "vpc", "-S", "0", "SRC", "TGT"];
        dynamic_gaps_s64k: V10, Vhd, Gaps, None, ["-f", "raw", "-O", "vpc", "-S", "64k", "SRC", "TGT"];
        dynamic_zero: V10, Vhd, Zero, None, ["-f", "raw", "-O", "vpc", "SRC", "TGT"];
        fixed_odd: V10, Vhd, Odd, None, ["-f", "raw", "-O", "vpc", "-o", "subformat=fixed", "SRC", "TGT"];
        fixed_gaps_s0: V10, Vhd, Gaps, None, ["-f", "raw", "-O", "vpc", "-o", "subformat=fixed", "-S", "0", "SRC", "TGT"];
        dynamic_n: V10, Vhd, Odd, Some(&["create", "-f", "vpc", "TGT", "8M"]), ["-n", "-f", "raw", "-O", "vpc", "SRC", "TGT"];
        fixed_n: V10, Vhd, Src, Some(&["create", "-f", "vpc", "-o", "subformat=fixed", "TGT", "8M"]), ["-n", "-f", "raw", "-O", "vpc", "SRC", "TGT"];
        dynamic_src_5_2: "5.2.0", Vhd, Src, None, ["-f", "raw", "-O", "vpc", "SRC", "TGT"];
        dynamic_src_11_1: "11.1.3", Vhd, Src, None, ["-f", "raw", "-O", "vpc", "SRC", "TGT"];
    }
}

mod vmdk {
    use super::*;
    cases! {
        sparse_gaps: V10, Vmdk, Gaps, None, ["-f", "raw", "-O", "vmdk", "SRC", "TGT"];
        sparse_src: V10, Vmdk, Src, None, ["-f", "raw", "-O", "vmdk", "SRC", "TGT"];
        sparse_odd: V10, Vmdk, Odd, None, ["-f", "raw", "-O", "vmdk", "SRC", "TGT"];
        sparse_odd_s0: V10, Vmdk, Odd, None, ["-f", "raw", "-O", "vmdk", "-S", "0", "SRC", "TGT"];
        sparse_gaps_s64k: V10, Vmdk, Gaps, None, ["-f", "raw", "-O", "vmdk", "-S", "64k", "SRC", "TGT"];
        sparse_zero: V10, Vmdk, Zero, None, ["-f", "raw", "-O", "vmdk", "SRC", "TGT"];
        sparse_odd_c: V10, Vmdk, Odd, None, ["-f", "raw", "-O", "vmdk", "-c", "SRC", "TGT"];
        sparse_n: V10, Vmdk, Odd, Some(&["create", "-f", "vmdk", "TGT", "8M"]), ["-n", "-f", "raw", "-O", "vmdk", "SRC", "TGT"];
        sparse_n_zeroed_grain: V10, Vmdk, Odd, Some(&["create", "-f", "vmdk", "-o", "zeroed_grain=on", "TGT", "8M"]), ["-n", "-f", "raw", "-O", "vmdk", "SRC", "TGT"];
        flat_odd: V10, Vmdk, Odd, None, ["-f", "raw", "-O", "vmdk", "-o", "subformat=monolithicFlat", "SRC", "TGT"];
        flat_n: V10, Vmdk, Src, Some(&["create", "-f", "vmdk", "-o", "subformat=monolithicFlat", "TGT", "8M"]), ["-n", "-f", "raw", "-O", "vmdk", "SRC", "TGT"];
        two_gb_sparse_odd: V10, Vmdk, Odd, None, ["-f", "raw", "-O", "vmdk", "-o", "subformat=twoGbMaxExtentSparse", "SRC", "TGT"];
        two_gb_flat_odd: V10, Vmdk, Odd, None, ["-f", "raw", "-O", "vmdk", "-o", "subformat=twoGbMaxExtentFlat", "SRC", "TGT"];
        stream_gaps: V10, Vmdk, Gaps, None, ["-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", "SRC", "TGT"];
        stream_src: V10, Vmdk, Src, None, ["-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", "SRC", "TGT"];
        stream_odd: V10, Vmdk, Odd, None, ["-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", "SRC", "TGT"];
        stream_odd_s0: V10, Vmdk, Odd, None, ["-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", "-S", "0", "SRC", "TGT"];
        sparse_src_5_2: "5.2.0", Vmdk, Src, None, ["-f", "raw", "-O", "vmdk", "SRC", "TGT"];
        sparse_src_11_1: "11.1.3", Vmdk, Src, None, ["-f", "raw", "-O", "vmdk", "SRC", "TGT"];
        stream_src_5_2: "5.2.0", Vmdk, Src, None, ["-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", "SRC", "TGT"];
    }
}

mod vhdx {
    use super::*;
    cases! {
        dynamic_gaps: V10, Vhdx, Gaps, None, ["-f", "raw", "-O", "vhdx", "SRC", "TGT"];
        dynamic_src: V10, Vhdx, Src, None, ["-f", "raw", "-O", "vhdx", "SRC", "TGT"];
        dynamic_odd: V10, Vhdx, Odd, None, ["-f", "raw", "-O", "vhdx", "SRC", "TGT"];
        dynamic_odd_s0: V10, Vhdx, Odd, None, ["-f", "raw", "-O", "vhdx", "-S", "0", "SRC", "TGT"];
        dynamic_gaps_s64k: V10, Vhdx, Gaps, None, ["-f", "raw", "-O", "vhdx", "-S", "64k", "SRC", "TGT"];
        dynamic_zero: V10, Vhdx, Zero, None, ["-f", "raw", "-O", "vhdx", "SRC", "TGT"];
        dynamic_small_blocks: V10, Vhdx, Odd, None, ["-f", "raw", "-O", "vhdx", "-o", "block_size=1M", "SRC", "TGT"];
        fixed_odd: V10, Vhdx, Odd, None, ["-f", "raw", "-O", "vhdx", "-o", "subformat=fixed", "SRC", "TGT"];
        dynamic_n: V10, Vhdx, Odd, Some(&["create", "-f", "vhdx", "TGT", "8M"]), ["-n", "-f", "raw", "-O", "vhdx", "SRC", "TGT"];
        dynamic_n_block_state_zero_off: V10, Vhdx, Odd, Some(&["create", "-f", "vhdx", "-o", "block_state_zero=off", "TGT", "8M"]), ["-n", "-f", "raw", "-O", "vhdx", "SRC", "TGT"];
        fixed_n: V10, Vhdx, Src, Some(&["create", "-f", "vhdx", "-o", "subformat=fixed", "TGT", "8M"]), ["-n", "-f", "raw", "-O", "vhdx", "SRC", "TGT"];
        dynamic_gaps_5_2: "5.2.0", Vhdx, Gaps, None, ["-f", "raw", "-O", "vhdx", "SRC", "TGT"];
        dynamic_small_blocks_5_2: "5.2.0", Vhdx, Odd, None, ["-f", "raw", "-O", "vhdx", "-o", "block_size=1M", "SRC", "TGT"];
        dynamic_gaps_7_2_18: "7.2.18", Vhdx, Gaps, None, ["-f", "raw", "-O", "vhdx", "SRC", "TGT"];
        dynamic_gaps_11_1: "11.1.3", Vhdx, Gaps, None, ["-f", "raw", "-O", "vhdx", "SRC", "TGT"];
    }
}

/// `-n` into damaged targets: qemu-img's error and exit code, whatever
/// the file says.
mod hostile {
    use super::*;
    use crate::util::edit::ImageFile;

    #[test]
    fn vmdk_grain_directory_past_the_end() {
        // The sparse header's gdOffset (u64 at 56, sectors) far past the
        // end: every directory entry reads as 0.
        let damage = |p: &Path| ImageFile { path: p.to_path_buf() }.set_le64(56, 0x10_0000);
        refused(
            damaged_case(
                V10,
                Target::Vmdk,
                Source::Gaps,
                Some(&["create", "-f", "vmdk", "TGT", "8M"]),
                damage,
                &["-n", "-f", "raw", "-O", "vmdk", "SRC", "TGT"],
            ),
            "error while writing at byte 0: Invalid argument",
        );
    }

    #[test]
    fn vpc_bat_entry_past_the_end() {
        // BAT[0] (big-endian u32 at 1536) names a block far past the end.
        let damage = |p: &Path| ImageFile { path: p.to_path_buf() }.set_be32(1536, 0x10_0000);
        refused(
            damaged_case(
                V10,
                Target::Vhd,
                Source::Gaps,
                Some(&["create", "-f", "vpc", "TGT", "8M"]),
                damage,
                &["-n", "-f", "raw", "-O", "vpc", "SRC", "TGT"],
            ),
            "free_data_block_offset points after the end of file",
        );
    }

    #[test]
    fn vhdx_bat_entry_past_the_end() {
        // BAT[0] says fully present at 64 MiB, past the 8 MiB file.
        let damage =
            |p: &Path| ImageFile { path: p.to_path_buf() }.set_le64(0x20_0000, (64 << 20) | 6);
        refused(
            damaged_case(
                V10,
                Target::Vhdx,
                Source::Gaps,
                Some(&["create", "-f", "vhdx", "TGT", "8M"]),
                damage,
                &["-n", "-f", "raw", "-O", "vhdx", "SRC", "TGT"],
            ),
            "points after end of file",
        );
    }

    #[test]
    fn vhdx_bat_entry_in_the_headers() {
        // BAT[0] fully present at offset 0: the block would overlap the
        // headers, the log, the BAT and the metadata, and the open's BAT
        // check says so.
        let damage = |p: &Path| ImageFile { path: p.to_path_buf() }.set_le64(0x20_0000, 6);
        refused(
            damaged_case(
                V10,
                Target::Vhdx,
                Source::Gaps,
                Some(&["create", "-f", "vhdx", "TGT", "8M"]),
                damage,
                &["-n", "-f", "raw", "-O", "vhdx", "SRC", "TGT"],
            ),
            "VHDX region 0-8388608 overlaps with region",
        );
    }

    /// A vhdx written by qemu-img convert, its headers made to name the
    /// first log entry's GUID (so the log needs replaying) and its first
    /// BAT entry cleared (so that only the replay brings it back).
    fn vhdx_log_to_replay(p: &Path) {
        let img = ImageFile { path: p.to_path_buf() };
        let guid = img.read(0x10_0000 + 32, 16);
        for h in [0x1_0000u64, 0x2_0000] {
            img.write(h + 48, &guid);
            img.write(h + 4, &[0; 4]);
            let crc = crc32c::crc32c(&img.read(h, 4096));
            img.set_le32(h + 4, crc);
        }
        img.set_le64(0x20_0000, 2);
    }

    #[test]
    fn vhdx_log_replayed_on_open() {
        // qemu replays the log when it opens the target for writing, then
        // writes on (instar before this refused the image).
        damaged_case(
            V10,
            Target::Vhdx,
            Source::Odd,
            Some(&["convert", "-f", "raw", "-O", "vhdx", "-o", "block_size=1M", "SRC", "TGT"]),
            vhdx_log_to_replay,
            &["-n", "-f", "raw", "-O", "vhdx", "SRC", "TGT"],
        );
    }

    #[test]
    fn vmdk_grain_table_entry_into_the_header() {
        // The first grain table's first entry names sector 1 (the
        // descriptor): qemu writes the guest data there.
        let damage = |p: &Path| {
            let img = ImageFile { path: p.to_path_buf() };
            let gt = img.le32(26 * 512) as u64 * 512;
            img.set_le32(gt, 1);
        };
        damaged_case(
            V10,
            Target::Vmdk,
            Source::Src,
            Some(&["create", "-f", "vmdk", "TGT", "8M"]),
            damage,
            &["-n", "-f", "raw", "-O", "vmdk", "SRC", "TGT"],
        );
    }
}

/// Cases beyond the plain copy: other sources, backing files, `-c`, and
/// `-n` into a stream.
mod more {
    use super::*;
    cases! {
        // A streamOptimized source read back and written as a stream.
        vmdk_stream_to_stream: V10, Vmdk, Src, Some(&["convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", "SRC", "base.vmdk"]), ["-f", "vmdk", "-O", "vmdk", "-o", "subformat=streamOptimized", "base.vmdk", "TGT"];
        vmdk_stream_to_sparse: V10, Vmdk, Odd, Some(&["convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", "SRC", "base.vmdk"]), ["-f", "vmdk", "-O", "vmdk", "base.vmdk", "TGT"];
        // New grains are filled from the backing disk around the data.
        vmdk_backing: V10, Vmdk, Odd, Some(&["convert", "-f", "raw", "-O", "vmdk", "SRC", "base.vmdk"]), ["-f", "raw", "-O", "vmdk", "-B", "base.vmdk", "-F", "vmdk", "SRC", "TGT"];
        // 5.2.0 has no -F: without it, it warns and copies on.
        vmdk_backing_5_2: "5.2.0", Vmdk, Odd, Some(&["convert", "-f", "raw", "-O", "vmdk", "SRC", "base.vmdk"]), ["-f", "raw", "-O", "vmdk", "-B", "base.vmdk", "SRC", "TGT"];
        vmdk_stream_c: V10, Vmdk, Odd, None, ["-f", "raw", "-O", "vmdk", "-c", "-o", "subformat=streamOptimized", "SRC", "TGT"];
        vmdk_flat_c: V10, Vmdk, Odd, None, ["-f", "raw", "-O", "vmdk", "-c", "-o", "subformat=monolithicFlat", "SRC", "TGT"];
        vmdk_stream_n: V10, Vmdk, Odd, Some(&["create", "-f", "vmdk", "-o", "subformat=streamOptimized", "TGT", "8M"]), ["-n", "-f", "raw", "-O", "vmdk", "SRC", "TGT"];
        vmdk_two_gb_sparse_n: V10, Vmdk, Src, Some(&["create", "-f", "vmdk", "-o", "subformat=twoGbMaxExtentSparse", "TGT", "8M"]), ["-n", "-f", "raw", "-O", "vmdk", "SRC", "TGT"];
        vmdk_sparse_src_7_2_22: "7.2.22", Vmdk, Src, None, ["-f", "raw", "-O", "vmdk", "SRC", "TGT"];
        vmdk_sparse_src_10_0_13: "10.0.13", Vmdk, Src, None, ["-f", "raw", "-O", "vmdk", "SRC", "TGT"];
        vpc_dynamic_odd_7_2_22: "7.2.22", Vhd, Odd, None, ["-f", "raw", "-O", "vpc", "SRC", "TGT"];
        vpc_dynamic_odd_10_0_13: "10.0.13", Vhd, Odd, None, ["-f", "raw", "-O", "vpc", "SRC", "TGT"];
        vhdx_small_blocks_7_2_22: "7.2.22", Vhdx, Odd, None, ["-f", "raw", "-O", "vhdx", "-o", "block_size=1M", "SRC", "TGT"];
        vhdx_small_blocks_10_0_13: "10.0.13", Vhdx, Odd, None, ["-f", "raw", "-O", "vhdx", "-o", "block_size=1M", "SRC", "TGT"];
        vhdx_small_blocks_11_1: "11.1.3", Vhdx, Odd, None, ["-f", "raw", "-O", "vhdx", "-o", "block_size=1M", "SRC", "TGT"];
        vhdx_log_wraps: V10, Vhdx, EveryMib, None, ["-f", "raw", "-O", "vhdx", "-o", "block_size=1M", "SRC", "TGT"];
        vhdx_log_wraps_5_2: "5.2.0", Vhdx, EveryMib, None, ["-f", "raw", "-O", "vhdx", "-o", "block_size=1M", "SRC", "TGT"];
        vpc_many_blocks: V10, Vhd, EveryMib, None, ["-f", "raw", "-O", "vpc", "SRC", "TGT"];
        vmdk_many_grains_n_zeroed: V10, Vmdk, EveryMib, Some(&["create", "-f", "vmdk", "-o", "zeroed_grain=on", "TGT", "140M"]), ["-n", "-f", "raw", "-O", "vmdk", "SRC", "TGT"];
        vmdk_two_gb_sparse_across: V10, Vmdk, Across2G, None, ["-f", "raw", "-O", "vmdk", "-o", "subformat=twoGbMaxExtentSparse", "SRC", "TGT"];
        vmdk_two_gb_flat_across: V10, Vmdk, Across2G, None, ["-f", "raw", "-O", "vmdk", "-o", "subformat=twoGbMaxExtentFlat", "SRC", "TGT"];
        // Into files already written: the vhdx log starts again at its
        // start, over the entries there; allocated blocks are rewritten
        // in place.
        vhdx_n_into_written: V10, Vhdx, Odd, Some(&["convert", "-f", "raw", "-O", "vhdx", "-o", "block_size=1M", "SRC", "TGT"]), ["-n", "-f", "raw", "-O", "vhdx", "SRC", "TGT"];
        vmdk_n_into_written: V10, Vmdk, Odd, Some(&["convert", "-f", "raw", "-O", "vmdk", "SRC", "TGT"]), ["-n", "-f", "raw", "-O", "vmdk", "SRC", "TGT"];
        vpc_n_into_written: V10, Vhd, Odd, Some(&["convert", "-f", "raw", "-O", "vpc", "SRC", "TGT"]), ["-n", "-f", "raw", "-O", "vpc", "SRC", "TGT"];
        vmdk_tiny: V10, Vmdk, Tiny, None, ["-f", "raw", "-O", "vmdk", "SRC", "TGT"];
        vmdk_stream_tiny: V10, Vmdk, Tiny, None, ["-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", "SRC", "TGT"];
        vpc_tiny: V10, Vhd, Tiny, None, ["-f", "raw", "-O", "vpc", "SRC", "TGT"];
        vpc_fixed_tiny: V10, Vhd, Tiny, None, ["-f", "raw", "-O", "vpc", "-o", "subformat=fixed", "SRC", "TGT"];
        vhdx_tiny: V10, Vhdx, Tiny, None, ["-f", "raw", "-O", "vhdx", "SRC", "TGT"];
        vpc_c_refused: V10, Vhd, Odd, None, ["-f", "raw", "-O", "vpc", "-c", "SRC", "TGT"];
        vhdx_n_smaller: V10, Vhdx, Src, Some(&["create", "-f", "vhdx", "TGT", "1M"]), ["-n", "-f", "raw", "-O", "vhdx", "SRC", "TGT"];
    }
}
