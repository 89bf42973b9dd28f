//! `CONVERT_CASES`: the one definition of the `qemu-img convert` command
//! lines the differential tests run (docs/compat.md §11.5), built as
//! MEASURE_CASES is ([`measure_cases`](crate::measure_cases)).
//!
//! The table is written once, as the body of [`convert_cases!`](crate::convert_cases).
//! That macro hands the rows to a callback macro: the static
//! [`CONVERT_CASES`] slice (read by the unit tests here and by the
//! harness) and the named tests of `tests/convert/` (one per row, or one
//! per row and version) are made from the same text.
//!
//! A row is `Target ident "case-name" "ARGUMENTS" [RECIPES] RUNS (FLAGS);`:
//!
//! - `Target`: the format of the target the row writes ([`Target`]; `Vhd`
//!   is qemu's `vpc`), or `-` for a row that names a format qemu-img
//!   does not know (`-O foo`) or no target at all. A row that fails sits
//!   under the format its `-O` names, under `Raw` (qemu-img's default)
//!   when it names none.
//! - `case-name` starts with the target's format name (`qcow2-from-raw-gaps`,
//!   `vpc-fixed-from-qcow2-zero`, `raw-err-S-abc`), or with `other-` for
//!   `-`. The identifier is the name in lower case with `-` and `.` as `_`.
//! - `ARGUMENTS`: what follows `convert`, split on whitespace, with the
//!   placeholders `SRC`, `SRC2`, `SRC3` (the files of the row's source
//!   recipes, in order) and `TGT` (the target: `tgt.<ext>`, the name a
//!   pre-made target's recipe gives it). Other names are written as they
//!   are (a backing file a recipe makes beside its source: `chain.qcow2.mid`).
//! - `RECIPES`: the [`ConvertSource`]s made in the row's folder before it
//!   runs: sources, helpers (a backing file to name with `-B`) and, for
//!   `-n` rows, the existing target.
//! - `RUNS`: `all` runs the row under each qemu-img version of
//!   `known_versions!` (rows whose output differs between versions: the
//!   command-line generations, per-version create fields, 5.2.0's lack of
//!   `-F` and zstd, its vhdx writes), `one` under the oracle alone.
//! - `FLAGS`: `zstd`, the row writes zstd clusters (5.2.0 has no zstd:
//!   its refusals are compared; 10.0.13 and 11.1.3 link a libzstd whose
//!   bytes differ from the host's: skipped there, saying why); `fs`, what qemu-img writes or prints
//!   follows the host allocation of a raw source (holes, `-p`), so the
//!   row compares bytes and `qemu-img map`, never allocation; `old`, the
//!   target keeps data of its own after the conversion (`-n` into a larger
//!   target), so it is not compared with the source; `away`, qemu-img never
//!   answers (it opens a looping backing chain without end): after
//!   [`QEMU_RUNS_AWAY_AFTER`] it is stopped, and instar must fail with one
//!   line and leave nothing (docs/compat.md §8).

use crate::cases::Target;
use crate::recipes::{Recipe, Step};

/// Calls `$callback! { rows }` with every row of the convert table, each
/// row written `Target ident "name" "arguments" [recipes] runs (flags);`,
/// after any tokens given after the callback's name (`convert_cases!(cb,
/// extra tokens)` calls `cb! { extra tokens ; rows }`).
///
/// This macro body is the single definition of CONVERT_CASES.
#[macro_export]
macro_rules! convert_cases {
    ($callback:ident $(, $($extra:tt)*)?) => {
        $callback! {
            $($($extra)*)? ;
            Raw raw_from_raw_sparse "raw-from-raw-sparse" "-O raw SRC TGT" [RawSparse] one (fs);
            Qcow2 qcow2_from_raw_sparse "qcow2-from-raw-sparse" "-O qcow2 SRC TGT" [RawSparse] one (fs);
            Qcow2 qcow2_c_from_raw_sparse "qcow2-c-from-raw-sparse" "-O qcow2 -c SRC TGT" [RawSparse] one (fs);
            Vmdk vmdk_from_raw_sparse "vmdk-from-raw-sparse" "-O vmdk SRC TGT" [RawSparse] one (fs);
            Vhd vpc_from_raw_sparse "vpc-from-raw-sparse" "-O vpc SRC TGT" [RawSparse] one (fs);
            Vhdx vhdx_from_raw_sparse "vhdx-from-raw-sparse" "-O vhdx SRC TGT" [RawSparse] one (fs);
            Raw raw_from_raw_gaps "raw-from-raw-gaps" "-O raw SRC TGT" [RawGaps] one (fs);
            Qcow2 qcow2_from_raw_gaps "qcow2-from-raw-gaps" "-O qcow2 SRC TGT" [RawGaps] one (fs);
            Qcow2 qcow2_c_from_raw_gaps "qcow2-c-from-raw-gaps" "-O qcow2 -c SRC TGT" [RawGaps] one (fs);
            Vmdk vmdk_from_raw_gaps "vmdk-from-raw-gaps" "-O vmdk SRC TGT" [RawGaps] all (fs);
            Vhd vpc_from_raw_gaps "vpc-from-raw-gaps" "-O vpc SRC TGT" [RawGaps] all (fs);
            Vhdx vhdx_from_raw_gaps "vhdx-from-raw-gaps" "-O vhdx SRC TGT" [RawGaps] all (fs);
            Raw raw_from_raw_odd "raw-from-raw-odd" "-O raw SRC TGT" [RawOdd] one (fs);
            Qcow2 qcow2_from_raw_odd "qcow2-from-raw-odd" "-O qcow2 SRC TGT" [RawOdd] one (fs);
            Qcow2 qcow2_c_from_raw_odd "qcow2-c-from-raw-odd" "-O qcow2 -c SRC TGT" [RawOdd] one (fs);
            Vmdk vmdk_from_raw_odd "vmdk-from-raw-odd" "-O vmdk SRC TGT" [RawOdd] one (fs);
            Vhd vpc_from_raw_odd "vpc-from-raw-odd" "-O vpc SRC TGT" [RawOdd] one (fs);
            Vhdx vhdx_from_raw_odd "vhdx-from-raw-odd" "-O vhdx SRC TGT" [RawOdd] one (fs);
            Raw raw_from_raw_empty "raw-from-raw-empty" "-O raw SRC TGT" [RawEmpty] one (fs);
            Qcow2 qcow2_from_raw_empty "qcow2-from-raw-empty" "-O qcow2 SRC TGT" [RawEmpty] one (fs);
            Qcow2 qcow2_c_from_raw_empty "qcow2-c-from-raw-empty" "-O qcow2 -c SRC TGT" [RawEmpty] one (fs);
            Vmdk vmdk_from_raw_empty "vmdk-from-raw-empty" "-O vmdk SRC TGT" [RawEmpty] one (fs);
            Vhd vpc_from_raw_empty "vpc-from-raw-empty" "-O vpc SRC TGT" [RawEmpty] one (fs);
            Vhdx vhdx_from_raw_empty "vhdx-from-raw-empty" "-O vhdx SRC TGT" [RawEmpty] one (fs);
            Raw raw_from_raw_noise "raw-from-raw-noise" "-O raw SRC TGT" [RawNoise] one (fs);
            Qcow2 qcow2_from_raw_noise "qcow2-from-raw-noise" "-O qcow2 SRC TGT" [RawNoise] one (fs);
            Qcow2 qcow2_c_from_raw_noise "qcow2-c-from-raw-noise" "-O qcow2 -c SRC TGT" [RawNoise] one (fs);
            Vmdk vmdk_from_raw_noise "vmdk-from-raw-noise" "-O vmdk SRC TGT" [RawNoise] one (fs);
            Vhd vpc_from_raw_noise "vpc-from-raw-noise" "-O vpc SRC TGT" [RawNoise] one (fs);
            Vhdx vhdx_from_raw_noise "vhdx-from-raw-noise" "-O vhdx SRC TGT" [RawNoise] one (fs);
            Raw raw_from_qcow2_plain "raw-from-qcow2-plain" "-O raw SRC TGT" [Qcow2Plain] one ();
            Qcow2 qcow2_from_qcow2_plain "qcow2-from-qcow2-plain" "-O qcow2 SRC TGT" [Qcow2Plain] one ();
            Qcow2 qcow2_c_from_qcow2_plain "qcow2-c-from-qcow2-plain" "-O qcow2 -c SRC TGT" [Qcow2Plain] one ();
            Vmdk vmdk_from_qcow2_plain "vmdk-from-qcow2-plain" "-O vmdk SRC TGT" [Qcow2Plain] one ();
            Vhd vpc_from_qcow2_plain "vpc-from-qcow2-plain" "-O vpc SRC TGT" [Qcow2Plain] one ();
            Vhdx vhdx_from_qcow2_plain "vhdx-from-qcow2-plain" "-O vhdx SRC TGT" [Qcow2Plain] one ();
            Raw raw_from_qcow2_zero "raw-from-qcow2-zero" "-O raw SRC TGT" [Qcow2Zero] one ();
            Qcow2 qcow2_from_qcow2_zero "qcow2-from-qcow2-zero" "-O qcow2 SRC TGT" [Qcow2Zero] one ();
            Qcow2 qcow2_c_from_qcow2_zero "qcow2-c-from-qcow2-zero" "-O qcow2 -c SRC TGT" [Qcow2Zero] one ();
            Vmdk vmdk_from_qcow2_zero "vmdk-from-qcow2-zero" "-O vmdk SRC TGT" [Qcow2Zero] one ();
            Vhd vpc_from_qcow2_zero "vpc-from-qcow2-zero" "-O vpc SRC TGT" [Qcow2Zero] one ();
            Vhdx vhdx_from_qcow2_zero "vhdx-from-qcow2-zero" "-O vhdx SRC TGT" [Qcow2Zero] one ();
            Raw raw_from_qcow2_v2 "raw-from-qcow2-v2" "-O raw SRC TGT" [Qcow2V2] one ();
            Qcow2 qcow2_from_qcow2_v2 "qcow2-from-qcow2-v2" "-O qcow2 SRC TGT" [Qcow2V2] one ();
            Qcow2 qcow2_c_from_qcow2_v2 "qcow2-c-from-qcow2-v2" "-O qcow2 -c SRC TGT" [Qcow2V2] one ();
            Vmdk vmdk_from_qcow2_v2 "vmdk-from-qcow2-v2" "-O vmdk SRC TGT" [Qcow2V2] one ();
            Vhd vpc_from_qcow2_v2 "vpc-from-qcow2-v2" "-O vpc SRC TGT" [Qcow2V2] one ();
            Vhdx vhdx_from_qcow2_v2 "vhdx-from-qcow2-v2" "-O vhdx SRC TGT" [Qcow2V2] one ();
            Raw raw_from_qcow2_cs4k "raw-from-qcow2-cs4k" "-O raw SRC TGT" [Qcow2Cs4k] one ();
            Qcow2 qcow2_from_qcow2_cs4k "qcow2-from-qcow2-cs4k" "-O qcow2 SRC TGT" [Qcow2Cs4k] one ();
            Qcow2 qcow2_c_from_qcow2_cs4k "qcow2-c-from-qcow2-cs4k" "-O qcow2 -c SRC TGT" [Qcow2Cs4k] one ();
            Vmdk vmdk_from_qcow2_cs4k "vmdk-from-qcow2-cs4k" "-O vmdk SRC TGT" [Qcow2Cs4k] one ();
            Vhd vpc_from_qcow2_cs4k "vpc-from-qcow2-cs4k" "-O vpc SRC TGT" [Qcow2Cs4k] one ();
            Vhdx vhdx_from_qcow2_cs4k "vhdx-from-qcow2-cs4k" "-O vhdx SRC TGT" [Qcow2Cs4k] one ();
            Raw raw_from_qcow2_cs2m "raw-from-qcow2-cs2m" "-O raw SRC TGT" [Qcow2Cs2M] one ();
            Qcow2 qcow2_from_qcow2_cs2m "qcow2-from-qcow2-cs2m" "-O qcow2 SRC TGT" [Qcow2Cs2M] one ();
            Qcow2 qcow2_c_from_qcow2_cs2m "qcow2-c-from-qcow2-cs2m" "-O qcow2 -c SRC TGT" [Qcow2Cs2M] one ();
            Vmdk vmdk_from_qcow2_cs2m "vmdk-from-qcow2-cs2m" "-O vmdk SRC TGT" [Qcow2Cs2M] one ();
            Vhd vpc_from_qcow2_cs2m "vpc-from-qcow2-cs2m" "-O vpc SRC TGT" [Qcow2Cs2M] one ();
            Vhdx vhdx_from_qcow2_cs2m "vhdx-from-qcow2-cs2m" "-O vhdx SRC TGT" [Qcow2Cs2M] one ();
            Raw raw_from_qcow2_zlib "raw-from-qcow2-zlib" "-O raw SRC TGT" [Qcow2Zlib] one ();
            Qcow2 qcow2_from_qcow2_zlib "qcow2-from-qcow2-zlib" "-O qcow2 SRC TGT" [Qcow2Zlib] one ();
            Qcow2 qcow2_c_from_qcow2_zlib "qcow2-c-from-qcow2-zlib" "-O qcow2 -c SRC TGT" [Qcow2Zlib] one ();
            Vmdk vmdk_from_qcow2_zlib "vmdk-from-qcow2-zlib" "-O vmdk SRC TGT" [Qcow2Zlib] one ();
            Vhd vpc_from_qcow2_zlib "vpc-from-qcow2-zlib" "-O vpc SRC TGT" [Qcow2Zlib] one ();
            Vhdx vhdx_from_qcow2_zlib "vhdx-from-qcow2-zlib" "-O vhdx SRC TGT" [Qcow2Zlib] one ();
            Raw raw_from_qcow2_zstd "raw-from-qcow2-zstd" "-O raw SRC TGT" [Qcow2Zstd] all ();
            Qcow2 qcow2_from_qcow2_zstd "qcow2-from-qcow2-zstd" "-O qcow2 SRC TGT" [Qcow2Zstd] one ();
            Qcow2 qcow2_c_from_qcow2_zstd "qcow2-c-from-qcow2-zstd" "-O qcow2 -c SRC TGT" [Qcow2Zstd] one ();
            Vmdk vmdk_from_qcow2_zstd "vmdk-from-qcow2-zstd" "-O vmdk SRC TGT" [Qcow2Zstd] one ();
            Vhd vpc_from_qcow2_zstd "vpc-from-qcow2-zstd" "-O vpc SRC TGT" [Qcow2Zstd] one ();
            Vhdx vhdx_from_qcow2_zstd "vhdx-from-qcow2-zstd" "-O vhdx SRC TGT" [Qcow2Zstd] one ();
            Raw raw_from_qcow2_sub "raw-from-qcow2-sub" "-O raw SRC TGT" [Qcow2Sub] one ();
            Qcow2 qcow2_from_qcow2_sub "qcow2-from-qcow2-sub" "-O qcow2 SRC TGT" [Qcow2Sub] one ();
            Qcow2 qcow2_c_from_qcow2_sub "qcow2-c-from-qcow2-sub" "-O qcow2 -c SRC TGT" [Qcow2Sub] one ();
            Vmdk vmdk_from_qcow2_sub "vmdk-from-qcow2-sub" "-O vmdk SRC TGT" [Qcow2Sub] one ();
            Vhd vpc_from_qcow2_sub "vpc-from-qcow2-sub" "-O vpc SRC TGT" [Qcow2Sub] one ();
            Vhdx vhdx_from_qcow2_sub "vhdx-from-qcow2-sub" "-O vhdx SRC TGT" [Qcow2Sub] one ();
            Raw raw_from_qcow2_df "raw-from-qcow2-df" "-O raw SRC TGT" [Qcow2DataFile] one ();
            Qcow2 qcow2_from_qcow2_df "qcow2-from-qcow2-df" "-O qcow2 SRC TGT" [Qcow2DataFile] one ();
            Qcow2 qcow2_c_from_qcow2_df "qcow2-c-from-qcow2-df" "-O qcow2 -c SRC TGT" [Qcow2DataFile] one ();
            Vmdk vmdk_from_qcow2_df "vmdk-from-qcow2-df" "-O vmdk SRC TGT" [Qcow2DataFile] one ();
            Vhd vpc_from_qcow2_df "vpc-from-qcow2-df" "-O vpc SRC TGT" [Qcow2DataFile] one ();
            Vhdx vhdx_from_qcow2_df "vhdx-from-qcow2-df" "-O vhdx SRC TGT" [Qcow2DataFile] one ();
            Raw raw_from_qcow2_chain "raw-from-qcow2-chain" "-O raw SRC TGT" [Qcow2Chain] one ();
            Qcow2 qcow2_from_qcow2_chain "qcow2-from-qcow2-chain" "-O qcow2 SRC TGT" [Qcow2Chain] one ();
            Qcow2 qcow2_c_from_qcow2_chain "qcow2-c-from-qcow2-chain" "-O qcow2 -c SRC TGT" [Qcow2Chain] one ();
            Vmdk vmdk_from_qcow2_chain "vmdk-from-qcow2-chain" "-O vmdk SRC TGT" [Qcow2Chain] one ();
            Vhd vpc_from_qcow2_chain "vpc-from-qcow2-chain" "-O vpc SRC TGT" [Qcow2Chain] one ();
            Vhdx vhdx_from_qcow2_chain "vhdx-from-qcow2-chain" "-O vhdx SRC TGT" [Qcow2Chain] one ();
            Raw raw_from_qcow2_short "raw-from-qcow2-short" "-O raw SRC TGT" [Qcow2Short] one ();
            Qcow2 qcow2_from_qcow2_short "qcow2-from-qcow2-short" "-O qcow2 SRC TGT" [Qcow2Short] one ();
            Qcow2 qcow2_c_from_qcow2_short "qcow2-c-from-qcow2-short" "-O qcow2 -c SRC TGT" [Qcow2Short] one ();
            Vmdk vmdk_from_qcow2_short "vmdk-from-qcow2-short" "-O vmdk SRC TGT" [Qcow2Short] one ();
            Vhd vpc_from_qcow2_short "vpc-from-qcow2-short" "-O vpc SRC TGT" [Qcow2Short] one ();
            Vhdx vhdx_from_qcow2_short "vhdx-from-qcow2-short" "-O vhdx SRC TGT" [Qcow2Short] one ();
            Raw raw_from_vmdk_sparse "raw-from-vmdk-sparse" "-O raw SRC TGT" [VmdkSparse] one ();
            Qcow2 qcow2_from_vmdk_sparse "qcow2-from-vmdk-sparse" "-O qcow2 SRC TGT" [VmdkSparse] one ();
            Qcow2 qcow2_c_from_vmdk_sparse "qcow2-c-from-vmdk-sparse" "-O qcow2 -c SRC TGT" [VmdkSparse] one ();
            Vmdk vmdk_from_vmdk_sparse "vmdk-from-vmdk-sparse" "-O vmdk SRC TGT" [VmdkSparse] one ();
            Vhd vpc_from_vmdk_sparse "vpc-from-vmdk-sparse" "-O vpc SRC TGT" [VmdkSparse] one ();
            Vhdx vhdx_from_vmdk_sparse "vhdx-from-vmdk-sparse" "-O vhdx SRC TGT" [VmdkSparse] one ();
            Raw raw_from_vmdk_stream "raw-from-vmdk-stream" "-O raw SRC TGT" [VmdkStream] one ();
            Qcow2 qcow2_from_vmdk_stream "qcow2-from-vmdk-stream" "-O qcow2 SRC TGT" [VmdkStream] one ();
            Qcow2 qcow2_c_from_vmdk_stream "qcow2-c-from-vmdk-stream" "-O qcow2 -c SRC TGT" [VmdkStream] one ();
            Vmdk vmdk_from_vmdk_stream "vmdk-from-vmdk-stream" "-O vmdk SRC TGT" [VmdkStream] one ();
            Vhd vpc_from_vmdk_stream "vpc-from-vmdk-stream" "-O vpc SRC TGT" [VmdkStream] one ();
            Vhdx vhdx_from_vmdk_stream "vhdx-from-vmdk-stream" "-O vhdx SRC TGT" [VmdkStream] one ();
            Raw raw_from_vmdk_flat "raw-from-vmdk-flat" "-O raw SRC TGT" [VmdkFlat] one ();
            Qcow2 qcow2_from_vmdk_flat "qcow2-from-vmdk-flat" "-O qcow2 SRC TGT" [VmdkFlat] one ();
            Qcow2 qcow2_c_from_vmdk_flat "qcow2-c-from-vmdk-flat" "-O qcow2 -c SRC TGT" [VmdkFlat] one ();
            Vmdk vmdk_from_vmdk_flat "vmdk-from-vmdk-flat" "-O vmdk SRC TGT" [VmdkFlat] one ();
            Vhd vpc_from_vmdk_flat "vpc-from-vmdk-flat" "-O vpc SRC TGT" [VmdkFlat] one ();
            Vhdx vhdx_from_vmdk_flat "vhdx-from-vmdk-flat" "-O vhdx SRC TGT" [VmdkFlat] one ();
            Raw raw_from_vmdk_2gb "raw-from-vmdk-2gb" "-O raw SRC TGT" [Vmdk2Gb] one ();
            Qcow2 qcow2_from_vmdk_2gb "qcow2-from-vmdk-2gb" "-O qcow2 SRC TGT" [Vmdk2Gb] one ();
            Qcow2 qcow2_c_from_vmdk_2gb "qcow2-c-from-vmdk-2gb" "-O qcow2 -c SRC TGT" [Vmdk2Gb] one ();
            Vmdk vmdk_from_vmdk_2gb "vmdk-from-vmdk-2gb" "-O vmdk SRC TGT" [Vmdk2Gb] one ();
            Vhd vpc_from_vmdk_2gb "vpc-from-vmdk-2gb" "-O vpc SRC TGT" [Vmdk2Gb] one ();
            Vhdx vhdx_from_vmdk_2gb "vhdx-from-vmdk-2gb" "-O vhdx SRC TGT" [Vmdk2Gb] one ();
            Raw raw_from_vpc_dyn "raw-from-vpc-dyn" "-O raw SRC TGT" [VpcDynamic] one ();
            Qcow2 qcow2_from_vpc_dyn "qcow2-from-vpc-dyn" "-O qcow2 SRC TGT" [VpcDynamic] one ();
            Qcow2 qcow2_c_from_vpc_dyn "qcow2-c-from-vpc-dyn" "-O qcow2 -c SRC TGT" [VpcDynamic] one ();
            Vmdk vmdk_from_vpc_dyn "vmdk-from-vpc-dyn" "-O vmdk SRC TGT" [VpcDynamic] one ();
            Vhd vpc_from_vpc_dyn "vpc-from-vpc-dyn" "-O vpc SRC TGT" [VpcDynamic] one ();
            Vhdx vhdx_from_vpc_dyn "vhdx-from-vpc-dyn" "-O vhdx SRC TGT" [VpcDynamic] one ();
            Raw raw_from_vpc_fixed "raw-from-vpc-fixed" "-O raw SRC TGT" [VpcFixed] one ();
            Qcow2 qcow2_from_vpc_fixed "qcow2-from-vpc-fixed" "-O qcow2 SRC TGT" [VpcFixed] one ();
            Qcow2 qcow2_c_from_vpc_fixed "qcow2-c-from-vpc-fixed" "-O qcow2 -c SRC TGT" [VpcFixed] one ();
            Vmdk vmdk_from_vpc_fixed "vmdk-from-vpc-fixed" "-O vmdk SRC TGT" [VpcFixed] one ();
            Vhd vpc_from_vpc_fixed "vpc-from-vpc-fixed" "-O vpc SRC TGT" [VpcFixed] one ();
            Vhdx vhdx_from_vpc_fixed "vhdx-from-vpc-fixed" "-O vhdx SRC TGT" [VpcFixed] one ();
            Raw raw_from_vhdx_dyn "raw-from-vhdx-dyn" "-O raw SRC TGT" [VhdxDynamic] one ();
            Qcow2 qcow2_from_vhdx_dyn "qcow2-from-vhdx-dyn" "-O qcow2 SRC TGT" [VhdxDynamic] one ();
            Qcow2 qcow2_c_from_vhdx_dyn "qcow2-c-from-vhdx-dyn" "-O qcow2 -c SRC TGT" [VhdxDynamic] one ();
            Vmdk vmdk_from_vhdx_dyn "vmdk-from-vhdx-dyn" "-O vmdk SRC TGT" [VhdxDynamic] one ();
            Vhd vpc_from_vhdx_dyn "vpc-from-vhdx-dyn" "-O vpc SRC TGT" [VhdxDynamic] one ();
            Vhdx vhdx_from_vhdx_dyn "vhdx-from-vhdx-dyn" "-O vhdx SRC TGT" [VhdxDynamic] one ();
            Raw raw_from_vhdx_fixed "raw-from-vhdx-fixed" "-O raw SRC TGT" [VhdxFixed] one ();
            Raw raw_from_vhdx_blocks "raw-from-vhdx-blocks" "-O raw SRC TGT" [VhdxBlocks] one ();
            Qcow2 qcow2_from_vhdx_blocks "qcow2-from-vhdx-blocks" "-O qcow2 SRC TGT" [VhdxBlocks] one ();
            Qcow2 qcow2_s_2m_from_vhdx_blocks "qcow2-S-2M-from-vhdx-blocks" "-O qcow2 -S 2M SRC TGT" [VhdxBlocks] one ();
            Qcow2 qcow2_s_1_5m_from_vhdx_blocks "qcow2-S-1_5M-from-vhdx-blocks" "-O qcow2 -S 1536k SRC TGT" [VhdxBlocks] one ();
            Qcow2 qcow2_c_from_vhdx_blocks "qcow2-c-from-vhdx-blocks" "-O qcow2 -c SRC TGT" [VhdxBlocks] one ();
            Vhdx vhdx_from_vhdx_blocks "vhdx-from-vhdx-blocks" "-O vhdx -o block_size=1M SRC TGT" [VhdxBlocks] one ();
            Qcow2 qcow2_from_vhdx_fixed "qcow2-from-vhdx-fixed" "-O qcow2 SRC TGT" [VhdxFixed] one ();
            Qcow2 qcow2_c_from_vhdx_fixed "qcow2-c-from-vhdx-fixed" "-O qcow2 -c SRC TGT" [VhdxFixed] one ();
            Vmdk vmdk_from_vhdx_fixed "vmdk-from-vhdx-fixed" "-O vmdk SRC TGT" [VhdxFixed] one ();
            Vhd vpc_from_vhdx_fixed "vpc-from-vhdx-fixed" "-O vpc SRC TGT" [VhdxFixed] one ();
            Vhdx vhdx_from_vhdx_fixed "vhdx-from-vhdx-fixed" "-O vhdx SRC TGT" [VhdxFixed] one ();
            Qcow2 qcow2_compat_0_10_from_raw_gaps "qcow2-compat-0.10-from-raw-gaps" "-O qcow2 -o compat=0.10 SRC TGT" [RawGaps] one ();
            Qcow2 qcow2_cs_512_from_raw_gaps "qcow2-cs-512-from-raw-gaps" "-O qcow2 -o cluster_size=512 SRC TGT" [RawGaps] one ();
            Qcow2 qcow2_cs_4k_from_raw_gaps "qcow2-cs-4k-from-raw-gaps" "-O qcow2 -o cluster_size=4k SRC TGT" [RawGaps] one ();
            Qcow2 qcow2_cs_2m_from_raw_gaps "qcow2-cs-2M-from-raw-gaps" "-O qcow2 -o cluster_size=2M SRC TGT" [RawGaps] one ();
            Qcow2 qcow2_extl2_from_raw_gaps "qcow2-extl2-from-raw-gaps" "-O qcow2 -o extended_l2=on SRC TGT" [RawGaps] one ();
            Qcow2 qcow2_extl2_cs_16k_from_raw_gaps "qcow2-extl2-cs-16k-from-raw-gaps" "-O qcow2 -o extended_l2=on,cluster_size=16k SRC TGT" [RawGaps] one ();
            Qcow2 qcow2_rb_1_from_raw_gaps "qcow2-rb-1-from-raw-gaps" "-O qcow2 -o refcount_bits=1 SRC TGT" [RawGaps] one ();
            Qcow2 qcow2_rb_64_from_raw_gaps "qcow2-rb-64-from-raw-gaps" "-O qcow2 -o refcount_bits=64 SRC TGT" [RawGaps] one ();
            Qcow2 qcow2_lazy_from_raw_gaps "qcow2-lazy-from-raw-gaps" "-O qcow2 -o lazy_refcounts=on SRC TGT" [RawGaps] one ();
            Qcow2 qcow2_prealloc_metadata_from_raw_gaps "qcow2-prealloc-metadata-from-raw-gaps" "-O qcow2 -o preallocation=metadata SRC TGT" [RawGaps] one ();
            Qcow2 qcow2_prealloc_falloc_from_raw_gaps "qcow2-prealloc-falloc-from-raw-gaps" "-O qcow2 -o preallocation=falloc SRC TGT" [RawGaps] one ();
            Qcow2 qcow2_prealloc_full_from_raw_gaps "qcow2-prealloc-full-from-raw-gaps" "-O qcow2 -o preallocation=full SRC TGT" [RawGaps] one ();
            Qcow2 qcow2_data_file_from_raw_gaps "qcow2-data-file-from-raw-gaps" "-O qcow2 -o data_file=tgt.data SRC TGT" [RawGaps] one ();
            Qcow2 qcow2_data_file_raw_from_raw_gaps "qcow2-data-file-raw-from-raw-gaps" "-O qcow2 -o data_file=tgt.data,data_file_raw=on SRC TGT" [RawGaps] all ();
            Qcow2 qcow2_c_zstd_from_raw_gaps "qcow2-c-zstd-from-raw-gaps" "-O qcow2 -c -o compression_type=zstd SRC TGT" [RawGaps] all (zstd);
            Qcow2 qcow2_c_cs_4k_from_raw_gaps "qcow2-c-cs-4k-from-raw-gaps" "-O qcow2 -c -o cluster_size=4k SRC TGT" [RawGaps] one ();
            Qcow2 qcow2_c_s_0_from_raw_gaps "qcow2-c-S-0-from-raw-gaps" "-O qcow2 -c -S 0 SRC TGT" [RawGaps] one ();
            Qcow2 qcow2_c_compat_0_10_from_raw_gaps "qcow2-c-compat-0.10-from-raw-gaps" "-O qcow2 -c -o compat=0.10 SRC TGT" [RawGaps] one ();
            Qcow2 qcow2_c_cs_2m_from_raw_gaps "qcow2-c-cs-2M-from-raw-gaps" "-O qcow2 -c -o cluster_size=2M SRC TGT" [RawGaps] one ();
            Qcow2 qcow2_compat_0_10_from_qcow2_zero "qcow2-compat-0.10-from-qcow2-zero" "-O qcow2 -o compat=0.10 SRC TGT" [Qcow2Zero] one ();
            Qcow2 qcow2_cs_512_from_qcow2_zero "qcow2-cs-512-from-qcow2-zero" "-O qcow2 -o cluster_size=512 SRC TGT" [Qcow2Zero] one ();
            Qcow2 qcow2_cs_4k_from_qcow2_zero "qcow2-cs-4k-from-qcow2-zero" "-O qcow2 -o cluster_size=4k SRC TGT" [Qcow2Zero] one ();
            Qcow2 qcow2_cs_2m_from_qcow2_zero "qcow2-cs-2M-from-qcow2-zero" "-O qcow2 -o cluster_size=2M SRC TGT" [Qcow2Zero] one ();
            Qcow2 qcow2_extl2_from_qcow2_zero "qcow2-extl2-from-qcow2-zero" "-O qcow2 -o extended_l2=on SRC TGT" [Qcow2Zero] one ();
            Qcow2 qcow2_extl2_cs_16k_from_qcow2_zero "qcow2-extl2-cs-16k-from-qcow2-zero" "-O qcow2 -o extended_l2=on,cluster_size=16k SRC TGT" [Qcow2Zero] one ();
            Qcow2 qcow2_rb_1_from_qcow2_zero "qcow2-rb-1-from-qcow2-zero" "-O qcow2 -o refcount_bits=1 SRC TGT" [Qcow2Zero] one ();
            Qcow2 qcow2_rb_64_from_qcow2_zero "qcow2-rb-64-from-qcow2-zero" "-O qcow2 -o refcount_bits=64 SRC TGT" [Qcow2Zero] one ();
            Qcow2 qcow2_lazy_from_qcow2_zero "qcow2-lazy-from-qcow2-zero" "-O qcow2 -o lazy_refcounts=on SRC TGT" [Qcow2Zero] one ();
            Qcow2 qcow2_prealloc_metadata_from_qcow2_zero "qcow2-prealloc-metadata-from-qcow2-zero" "-O qcow2 -o preallocation=metadata SRC TGT" [Qcow2Zero] one ();
            Qcow2 qcow2_prealloc_falloc_from_qcow2_zero "qcow2-prealloc-falloc-from-qcow2-zero" "-O qcow2 -o preallocation=falloc SRC TGT" [Qcow2Zero] one ();
            Qcow2 qcow2_prealloc_full_from_qcow2_zero "qcow2-prealloc-full-from-qcow2-zero" "-O qcow2 -o preallocation=full SRC TGT" [Qcow2Zero] one ();
            Qcow2 qcow2_data_file_from_qcow2_zero "qcow2-data-file-from-qcow2-zero" "-O qcow2 -o data_file=tgt.data SRC TGT" [Qcow2Zero] one ();
            Qcow2 qcow2_data_file_raw_from_qcow2_zero "qcow2-data-file-raw-from-qcow2-zero" "-O qcow2 -o data_file=tgt.data,data_file_raw=on SRC TGT" [Qcow2Zero] one ();
            Qcow2 qcow2_c_zstd_from_qcow2_zero "qcow2-c-zstd-from-qcow2-zero" "-O qcow2 -c -o compression_type=zstd SRC TGT" [Qcow2Zero] one (zstd);
            Qcow2 qcow2_c_cs_4k_from_qcow2_zero "qcow2-c-cs-4k-from-qcow2-zero" "-O qcow2 -c -o cluster_size=4k SRC TGT" [Qcow2Zero] one ();
            Qcow2 qcow2_c_s_0_from_qcow2_zero "qcow2-c-S-0-from-qcow2-zero" "-O qcow2 -c -S 0 SRC TGT" [Qcow2Zero] one ();
            Qcow2 qcow2_c_compat_0_10_from_qcow2_zero "qcow2-c-compat-0.10-from-qcow2-zero" "-O qcow2 -c -o compat=0.10 SRC TGT" [Qcow2Zero] one ();
            Qcow2 qcow2_c_cs_2m_from_qcow2_zero "qcow2-c-cs-2M-from-qcow2-zero" "-O qcow2 -c -o cluster_size=2M SRC TGT" [Qcow2Zero] one ();
            Qcow2 qcow2_c_zstd_from_raw_noise "qcow2-c-zstd-from-raw-noise" "-O qcow2 -c -o compression_type=zstd SRC TGT" [RawNoise] one (zstd fs);
            Qcow2 qcow2_c_zstd_from_qcow2_zlib "qcow2-c-zstd-from-qcow2-zlib" "-O qcow2 -c -o compression_type=zstd SRC TGT" [Qcow2Zlib] one (zstd);
            Qcow2 qcow2_c_cs_512_from_raw_noise "qcow2-c-cs-512-from-raw-noise" "-O qcow2 -c -o cluster_size=512 SRC TGT" [RawNoise] one (fs);
            Vmdk vmdk_stream_from_raw_gaps "vmdk-stream-from-raw-gaps" "-O vmdk -o subformat=streamOptimized SRC TGT" [RawGaps] all (fs);
            Vmdk vmdk_stream_s_0_from_raw_gaps "vmdk-stream-S-0-from-raw-gaps" "-O vmdk -o subformat=streamOptimized -S 0 SRC TGT" [RawGaps] one (fs);
            Vmdk vmdk_flat_from_raw_gaps "vmdk-flat-from-raw-gaps" "-O vmdk -o subformat=monolithicFlat SRC TGT" [RawGaps] all (fs);
            Vmdk vmdk_2gb_sparse_from_raw_gaps "vmdk-2gb-sparse-from-raw-gaps" "-O vmdk -o subformat=twoGbMaxExtentSparse SRC TGT" [RawGaps] one (fs);
            Vmdk vmdk_2gb_flat_from_raw_gaps "vmdk-2gb-flat-from-raw-gaps" "-O vmdk -o subformat=twoGbMaxExtentFlat SRC TGT" [RawGaps] one (fs);
            Vmdk vmdk_c_from_raw_gaps "vmdk-c-from-raw-gaps" "-O vmdk -c SRC TGT" [RawGaps] one (fs);
            Vmdk vmdk_stream_c_from_raw_gaps "vmdk-stream-c-from-raw-gaps" "-O vmdk -c -o subformat=streamOptimized SRC TGT" [RawGaps] one (fs);
            Vmdk vmdk_compat6_from_raw_gaps "vmdk-compat6-from-raw-gaps" "-O vmdk -o compat6=on SRC TGT" [RawGaps] one (fs);
            Vhd vpc_fixed_from_raw_gaps "vpc-fixed-from-raw-gaps" "-O vpc -o subformat=fixed SRC TGT" [RawGaps] all (fs);
            Vhd vpc_force_size_from_raw_gaps "vpc-force-size-from-raw-gaps" "-O vpc -o force_size=on SRC TGT" [RawGaps] one (fs);
            Vhd vpc_fixed_force_size_from_raw_gaps "vpc-fixed-force-size-from-raw-gaps" "-O vpc -o subformat=fixed,force_size=on SRC TGT" [RawGaps] one (fs);
            Vhdx vhdx_fixed_from_raw_gaps "vhdx-fixed-from-raw-gaps" "-O vhdx -o subformat=fixed SRC TGT" [RawGaps] all (fs);
            Vhdx vhdx_block_1m_from_raw_gaps "vhdx-block-1M-from-raw-gaps" "-O vhdx -o block_size=1M SRC TGT" [RawGaps] one (fs);
            Vhdx vhdx_block_8m_from_raw_gaps "vhdx-block-8M-from-raw-gaps" "-O vhdx -o block_size=8M SRC TGT" [RawGaps] one (fs);
            Vmdk vmdk_stream_from_qcow2_zero "vmdk-stream-from-qcow2-zero" "-O vmdk -o subformat=streamOptimized SRC TGT" [Qcow2Zero] one ();
            Vmdk vmdk_stream_s_0_from_qcow2_zero "vmdk-stream-S-0-from-qcow2-zero" "-O vmdk -o subformat=streamOptimized -S 0 SRC TGT" [Qcow2Zero] one ();
            Vmdk vmdk_flat_from_qcow2_zero "vmdk-flat-from-qcow2-zero" "-O vmdk -o subformat=monolithicFlat SRC TGT" [Qcow2Zero] one ();
            Vmdk vmdk_2gb_sparse_from_qcow2_zero "vmdk-2gb-sparse-from-qcow2-zero" "-O vmdk -o subformat=twoGbMaxExtentSparse SRC TGT" [Qcow2Zero] one ();
            Vmdk vmdk_2gb_flat_from_qcow2_zero "vmdk-2gb-flat-from-qcow2-zero" "-O vmdk -o subformat=twoGbMaxExtentFlat SRC TGT" [Qcow2Zero] one ();
            Vmdk vmdk_c_from_qcow2_zero "vmdk-c-from-qcow2-zero" "-O vmdk -c SRC TGT" [Qcow2Zero] one ();
            Vmdk vmdk_stream_c_from_qcow2_zero "vmdk-stream-c-from-qcow2-zero" "-O vmdk -c -o subformat=streamOptimized SRC TGT" [Qcow2Zero] one ();
            Vmdk vmdk_compat6_from_qcow2_zero "vmdk-compat6-from-qcow2-zero" "-O vmdk -o compat6=on SRC TGT" [Qcow2Zero] one ();
            Vhd vpc_fixed_from_qcow2_zero "vpc-fixed-from-qcow2-zero" "-O vpc -o subformat=fixed SRC TGT" [Qcow2Zero] one ();
            Vhd vpc_force_size_from_qcow2_zero "vpc-force-size-from-qcow2-zero" "-O vpc -o force_size=on SRC TGT" [Qcow2Zero] one ();
            Vhd vpc_fixed_force_size_from_qcow2_zero "vpc-fixed-force-size-from-qcow2-zero" "-O vpc -o subformat=fixed,force_size=on SRC TGT" [Qcow2Zero] one ();
            Vhdx vhdx_fixed_from_qcow2_zero "vhdx-fixed-from-qcow2-zero" "-O vhdx -o subformat=fixed SRC TGT" [Qcow2Zero] one ();
            Vhdx vhdx_block_1m_from_qcow2_zero "vhdx-block-1M-from-qcow2-zero" "-O vhdx -o block_size=1M SRC TGT" [Qcow2Zero] one ();
            Vhdx vhdx_block_8m_from_qcow2_zero "vhdx-block-8M-from-qcow2-zero" "-O vhdx -o block_size=8M SRC TGT" [Qcow2Zero] one ();
            Vmdk vmdk_stream_from_raw_noise "vmdk-stream-from-raw-noise" "-O vmdk -o subformat=streamOptimized SRC TGT" [RawNoise] one (fs);
            Vmdk vmdk_stream_from_qcow2_zlib "vmdk-stream-from-qcow2-zlib" "-O vmdk -o subformat=streamOptimized SRC TGT" [Qcow2Zlib] one ();
            Raw raw_s_0_from_raw_gaps "raw-S-0-from-raw-gaps" "-O raw -S 0 SRC TGT" [RawGaps] one (fs);
            Qcow2 qcow2_s_0_from_raw_gaps "qcow2-S-0-from-raw-gaps" "-O qcow2 -S 0 SRC TGT" [RawGaps] one (fs);
            Qcow2 qcow2_cs_4k_s_0_from_raw_gaps "qcow2-cs-4k-S-0-from-raw-gaps" "-O qcow2 -o cluster_size=4k -S 0 SRC TGT" [RawGaps] one (fs);
            Raw raw_s_0_from_qcow2_zero "raw-S-0-from-qcow2-zero" "-O raw -S 0 SRC TGT" [Qcow2Zero] one (fs);
            Qcow2 qcow2_s_0_from_qcow2_zero "qcow2-S-0-from-qcow2-zero" "-O qcow2 -S 0 SRC TGT" [Qcow2Zero] one ();
            Qcow2 qcow2_cs_4k_s_0_from_qcow2_zero "qcow2-cs-4k-S-0-from-qcow2-zero" "-O qcow2 -o cluster_size=4k -S 0 SRC TGT" [Qcow2Zero] one ();
            Raw raw_s_512_from_raw_gaps "raw-S-512-from-raw-gaps" "-O raw -S 512 SRC TGT" [RawGaps] one (fs);
            Qcow2 qcow2_s_512_from_raw_gaps "qcow2-S-512-from-raw-gaps" "-O qcow2 -S 512 SRC TGT" [RawGaps] one (fs);
            Qcow2 qcow2_cs_4k_s_512_from_raw_gaps "qcow2-cs-4k-S-512-from-raw-gaps" "-O qcow2 -o cluster_size=4k -S 512 SRC TGT" [RawGaps] one (fs);
            Raw raw_s_512_from_qcow2_zero "raw-S-512-from-qcow2-zero" "-O raw -S 512 SRC TGT" [Qcow2Zero] one (fs);
            Qcow2 qcow2_s_512_from_qcow2_zero "qcow2-S-512-from-qcow2-zero" "-O qcow2 -S 512 SRC TGT" [Qcow2Zero] one ();
            Qcow2 qcow2_cs_4k_s_512_from_qcow2_zero "qcow2-cs-4k-S-512-from-qcow2-zero" "-O qcow2 -o cluster_size=4k -S 512 SRC TGT" [Qcow2Zero] one ();
            Raw raw_s_1_5k_from_raw_gaps "raw-S-1_5k-from-raw-gaps" "-O raw -S 1.5k SRC TGT" [RawGaps] one (fs);
            Qcow2 qcow2_s_1_5k_from_raw_gaps "qcow2-S-1_5k-from-raw-gaps" "-O qcow2 -S 1.5k SRC TGT" [RawGaps] one (fs);
            Qcow2 qcow2_cs_4k_s_1_5k_from_raw_gaps "qcow2-cs-4k-S-1_5k-from-raw-gaps" "-O qcow2 -o cluster_size=4k -S 1.5k SRC TGT" [RawGaps] one (fs);
            Raw raw_s_1_5k_from_qcow2_zero "raw-S-1_5k-from-qcow2-zero" "-O raw -S 1.5k SRC TGT" [Qcow2Zero] one (fs);
            Qcow2 qcow2_s_1_5k_from_qcow2_zero "qcow2-S-1_5k-from-qcow2-zero" "-O qcow2 -S 1.5k SRC TGT" [Qcow2Zero] one ();
            Qcow2 qcow2_cs_4k_s_1_5k_from_qcow2_zero "qcow2-cs-4k-S-1_5k-from-qcow2-zero" "-O qcow2 -o cluster_size=4k -S 1.5k SRC TGT" [Qcow2Zero] one ();
            Raw raw_s_4k_from_raw_gaps "raw-S-4k-from-raw-gaps" "-O raw -S 4k SRC TGT" [RawGaps] one (fs);
            Qcow2 qcow2_s_4k_from_raw_gaps "qcow2-S-4k-from-raw-gaps" "-O qcow2 -S 4k SRC TGT" [RawGaps] one (fs);
            Qcow2 qcow2_cs_4k_s_4k_from_raw_gaps "qcow2-cs-4k-S-4k-from-raw-gaps" "-O qcow2 -o cluster_size=4k -S 4k SRC TGT" [RawGaps] one (fs);
            Raw raw_s_4k_from_qcow2_zero "raw-S-4k-from-qcow2-zero" "-O raw -S 4k SRC TGT" [Qcow2Zero] one (fs);
            Qcow2 qcow2_s_4k_from_qcow2_zero "qcow2-S-4k-from-qcow2-zero" "-O qcow2 -S 4k SRC TGT" [Qcow2Zero] one ();
            Qcow2 qcow2_cs_4k_s_4k_from_qcow2_zero "qcow2-cs-4k-S-4k-from-qcow2-zero" "-O qcow2 -o cluster_size=4k -S 4k SRC TGT" [Qcow2Zero] one ();
            Raw raw_s_8k_from_raw_gaps "raw-S-8k-from-raw-gaps" "-O raw -S 8k SRC TGT" [RawGaps] one (fs);
            Qcow2 qcow2_s_8k_from_raw_gaps "qcow2-S-8k-from-raw-gaps" "-O qcow2 -S 8k SRC TGT" [RawGaps] one (fs);
            Qcow2 qcow2_cs_4k_s_8k_from_raw_gaps "qcow2-cs-4k-S-8k-from-raw-gaps" "-O qcow2 -o cluster_size=4k -S 8k SRC TGT" [RawGaps] one (fs);
            Raw raw_s_8k_from_qcow2_zero "raw-S-8k-from-qcow2-zero" "-O raw -S 8k SRC TGT" [Qcow2Zero] one (fs);
            Qcow2 qcow2_s_8k_from_qcow2_zero "qcow2-S-8k-from-qcow2-zero" "-O qcow2 -S 8k SRC TGT" [Qcow2Zero] one ();
            Qcow2 qcow2_cs_4k_s_8k_from_qcow2_zero "qcow2-cs-4k-S-8k-from-qcow2-zero" "-O qcow2 -o cluster_size=4k -S 8k SRC TGT" [Qcow2Zero] one ();
            Raw raw_s_64k_from_raw_gaps "raw-S-64k-from-raw-gaps" "-O raw -S 64k SRC TGT" [RawGaps] one (fs);
            Qcow2 qcow2_s_64k_from_raw_gaps "qcow2-S-64k-from-raw-gaps" "-O qcow2 -S 64k SRC TGT" [RawGaps] one (fs);
            Qcow2 qcow2_cs_4k_s_64k_from_raw_gaps "qcow2-cs-4k-S-64k-from-raw-gaps" "-O qcow2 -o cluster_size=4k -S 64k SRC TGT" [RawGaps] one (fs);
            Raw raw_s_64k_from_qcow2_zero "raw-S-64k-from-qcow2-zero" "-O raw -S 64k SRC TGT" [Qcow2Zero] one (fs);
            Qcow2 qcow2_s_64k_from_qcow2_zero "qcow2-S-64k-from-qcow2-zero" "-O qcow2 -S 64k SRC TGT" [Qcow2Zero] one ();
            Qcow2 qcow2_cs_4k_s_64k_from_qcow2_zero "qcow2-cs-4k-S-64k-from-qcow2-zero" "-O qcow2 -o cluster_size=4k -S 64k SRC TGT" [Qcow2Zero] one ();
            Raw raw_s_1m_from_raw_gaps "raw-S-1M-from-raw-gaps" "-O raw -S 1M SRC TGT" [RawGaps] one (fs);
            Qcow2 qcow2_s_1m_from_raw_gaps "qcow2-S-1M-from-raw-gaps" "-O qcow2 -S 1M SRC TGT" [RawGaps] one (fs);
            Qcow2 qcow2_cs_4k_s_1m_from_raw_gaps "qcow2-cs-4k-S-1M-from-raw-gaps" "-O qcow2 -o cluster_size=4k -S 1M SRC TGT" [RawGaps] one (fs);
            Raw raw_s_1m_from_qcow2_zero "raw-S-1M-from-qcow2-zero" "-O raw -S 1M SRC TGT" [Qcow2Zero] one (fs);
            Qcow2 qcow2_s_1m_from_qcow2_zero "qcow2-S-1M-from-qcow2-zero" "-O qcow2 -S 1M SRC TGT" [Qcow2Zero] one ();
            Qcow2 qcow2_cs_4k_s_1m_from_qcow2_zero "qcow2-cs-4k-S-1M-from-qcow2-zero" "-O qcow2 -o cluster_size=4k -S 1M SRC TGT" [Qcow2Zero] one ();
            Qcow2 qcow2_s_4k_from_raw_sparse "qcow2-S-4k-from-raw-sparse" "-O qcow2 -S 4k SRC TGT" [RawSparse] one (fs);
            Qcow2 qcow2_s_0_from_raw_sparse "qcow2-S-0-from-raw-sparse" "-O qcow2 -S 0 SRC TGT" [RawSparse] one (fs);
            Qcow2 qcow2_n_fresh_from_raw_gaps "qcow2-n-fresh-from-raw-gaps" "-n -O qcow2 SRC TGT" [RawGaps, TgtQcow2Fresh] one ();
            Qcow2 qcow2_n_filled_from_raw_gaps "qcow2-n-filled-from-raw-gaps" "-n -O qcow2 SRC TGT" [RawGaps, TgtQcow2Filled] one ();
            Qcow2 qcow2_n_filled_v2_from_raw_gaps "qcow2-n-filled-v2-from-raw-gaps" "-n -O qcow2 SRC TGT" [RawGaps, TgtQcow2V2Filled] one ();
            Qcow2 qcow2_n_filled_from_qcow2_zero "qcow2-n-filled-from-qcow2-zero" "-n -O qcow2 SRC TGT" [Qcow2Zero, TgtQcow2Filled4M] one ();
            Qcow2 qcow2_n_target_is_zero_filled_from_raw_gaps "qcow2-n-target-is-zero-filled-from-raw-gaps" "-n --target-is-zero -O qcow2 SRC TGT" [RawGaps, TgtQcow2Filled] one ();
            Qcow2 qcow2_n_target_is_zero_fresh_from_raw_gaps "qcow2-n-target-is-zero-fresh-from-raw-gaps" "-n --target-is-zero -O qcow2 SRC TGT" [RawGaps, TgtQcow2Fresh] one ();
            Qcow2 qcow2_n_c_fresh_from_raw_gaps "qcow2-n-c-fresh-from-raw-gaps" "-n -c -O qcow2 SRC TGT" [RawGaps, TgtQcow2Fresh] one ();
            Qcow2 qcow2_n_s_0_filled_from_raw_gaps "qcow2-n-S-0-filled-from-raw-gaps" "-n -S 0 -O qcow2 SRC TGT" [RawGaps, TgtQcow2Filled] one ();
            Raw raw_n_filled_from_raw_gaps "raw-n-filled-from-raw-gaps" "-n -O raw SRC TGT" [RawGaps, TgtRawFilled] one (fs);
            Raw raw_n_larger_from_raw_gaps "raw-n-larger-from-raw-gaps" "-n -O raw SRC TGT" [RawGaps, TgtRawFilled2M] one (fs old);
            Raw raw_n_target_is_zero_from_raw_gaps "raw-n-target-is-zero-from-raw-gaps" "-n --target-is-zero -O raw SRC TGT" [RawGaps, TgtRawFilled] one (fs);
            Raw raw_n_s_0_from_raw_gaps "raw-n-S-0-from-raw-gaps" "-n -S 0 -O raw SRC TGT" [RawGaps, TgtRawFilled] one (fs);
            Raw raw_n_from_qcow2_zero "raw-n-from-qcow2-zero" "-n -O raw SRC TGT" [Qcow2Zero, TgtRawFilled4M] one (fs);
            Vmdk vmdk_n_from_raw_gaps "vmdk-n-from-raw-gaps" "-n -O vmdk SRC TGT" [RawGaps, TgtVmdk] all ();
            Vhd vpc_n_from_raw_gaps "vpc-n-from-raw-gaps" "-n -O vpc SRC TGT" [RawGaps, TgtVpc] all (fs old);
            Vhdx vhdx_n_from_raw_gaps "vhdx-n-from-raw-gaps" "-n -O vhdx SRC TGT" [RawGaps, TgtVhdx] all (fs);
            Qcow2 qcow2_n_target_image_opts_from_raw_gaps "qcow2-n-target-image-opts-from-raw-gaps" "-n --target-image-opts SRC driver=qcow2,file.filename=TGT" [RawGaps, TgtQcow2Fresh] all ();
            Qcow2 qcow2_b_from_qcow2_chain "qcow2-B-from-qcow2-chain" "-O qcow2 -B chain.qcow2.mid -F qcow2 SRC TGT" [Qcow2Chain] all ();
            Qcow2 qcow2_b_base_from_qcow2_chain "qcow2-B-base-from-qcow2-chain" "-O qcow2 -B chain.qcow2.base -F qcow2 SRC TGT" [Qcow2Chain] one ();
            Qcow2 qcow2_b_from_qcow2_short "qcow2-B-from-qcow2-short" "-O qcow2 -B short.qcow2.base -F qcow2 SRC TGT" [Qcow2Short] one ();
            Qcow2 qcow2_b_from_raw_gaps "qcow2-B-from-raw-gaps" "-O qcow2 -B base.raw -F raw SRC TGT" [RawGaps, BaseRaw] one (fs);
            Qcow2 qcow2_o_backing_from_qcow2_chain "qcow2-o-backing-from-qcow2-chain" "-O qcow2 -o backing_file=chain.qcow2.mid,backing_fmt=qcow2 SRC TGT" [Qcow2Chain] all ();
            Qcow2 qcow2_b_c_from_qcow2_chain "qcow2-B-c-from-qcow2-chain" "-O qcow2 -c -B chain.qcow2.mid -F qcow2 SRC TGT" [Qcow2Chain] one ();
            Qcow2 qcow2_b_s_0_from_qcow2_chain "qcow2-B-S-0-from-qcow2-chain" "-O qcow2 -S 0 -B chain.qcow2.mid -F qcow2 SRC TGT" [Qcow2Chain] one ();
            Qcow2 qcow2_b_compat_0_10_from_qcow2_chain "qcow2-B-compat-0.10-from-qcow2-chain" "-O qcow2 -o compat=0.10 -B chain.qcow2.mid -F qcow2 SRC TGT" [Qcow2Chain] one ();
            Vmdk vmdk_b_from_vmdk_sparse "vmdk-B-from-vmdk-sparse" "-O vmdk -B sparse.vmdk -F vmdk SRC TGT" [VmdkSparse] all ();
            Qcow2 qcow2_b_upstream_from_qcow2_chain "qcow2-b-upstream-from-qcow2-chain" "-O qcow2 -b chain.qcow2.mid -F qcow2 SRC TGT" [Qcow2Chain] all ();
            Qcow2 qcow2_l_name_from_qcow2_snap "qcow2-l-name-from-qcow2-snap" "-O qcow2 -l snap1 SRC TGT" [Qcow2Snap] one ();
            Qcow2 qcow2_l_id_from_qcow2_snap "qcow2-l-id-from-qcow2-snap" "-O qcow2 -l 2 SRC TGT" [Qcow2Snap] one ();
            Raw raw_l_snapshot_id_from_qcow2_snap "raw-l-snapshot-id-from-qcow2-snap" "-O raw -l snapshot.id=1 SRC TGT" [Qcow2Snap] one ();
            Qcow2 qcow2_l_snapshot_name_from_qcow2_snap "qcow2-l-snapshot-name-from-qcow2-snap" "-O qcow2 -l snapshot.name=snap2 SRC TGT" [Qcow2Snap] one ();
            Qcow2 qcow2_from_qcow2_snap "qcow2-from-qcow2-snap" "-O qcow2 SRC TGT" [Qcow2Snap] one ();
            Raw raw_multi_from_raw_one_raw_odd "raw-multi-from-raw-one-raw-odd" "-O raw SRC SRC2 TGT" [RawOne, RawOdd] one (fs);
            Qcow2 qcow2_multi_from_raw_one_qcow2_plain_vmdk_sparse "qcow2-multi-from-raw-one-qcow2-plain-vmdk-sparse" "-O qcow2 SRC SRC2 SRC3 TGT" [RawOne, Qcow2Plain, VmdkSparse] one ();
            Qcow2 qcow2_c_multi_from_raw_one_raw_odd "qcow2-c-multi-from-raw-one-raw-odd" "-O qcow2 -c SRC SRC2 TGT" [RawOne, RawOdd] one ();
            Qcow2 qcow2_multi_cs_4k_from_raw_odd_twice "qcow2-multi-cs-4k-from-raw-odd-twice" "-O qcow2 -o cluster_size=4k SRC SRC TGT" [RawOdd] one ();
            Qcow2 qcow2_multi_l_id_from_qcow2_snap_twice "qcow2-multi-l-id-from-qcow2-snap-twice" "-O qcow2 -l snapshot.id=1 SRC SRC TGT" [Qcow2Snap] one ();
            Vmdk vmdk_multi_from_qcow2_plain_qcow2_zero "vmdk-multi-from-qcow2-plain-qcow2-zero" "-O vmdk SRC SRC2 TGT" [Qcow2Plain, Qcow2Zero] one ();
            Qcow2 qcow2_bitmaps_from_qcow2_bitmaps "qcow2-bitmaps-from-qcow2-bitmaps" "-O qcow2 --bitmaps SRC TGT" [Qcow2Bitmaps] one ();
            Qcow2 qcow2_bitmaps_skip_broken_from_qcow2_bitmaps "qcow2-bitmaps-skip-broken-from-qcow2-bitmaps" "-O qcow2 --bitmaps --skip-broken-bitmaps SRC TGT" [Qcow2Bitmaps] all ();
            Qcow2 qcow2_bitmaps_cs_4k_from_qcow2_bitmaps "qcow2-bitmaps-cs-4k-from-qcow2-bitmaps" "-O qcow2 -o cluster_size=4k --bitmaps SRC TGT" [Qcow2Bitmaps] one ();
            Qcow2 qcow2_from_qcow2_bitmaps "qcow2-from-qcow2-bitmaps" "-O qcow2 SRC TGT" [Qcow2Bitmaps] one ();
            Qcow2 qcow2_bitmaps_skip_broken_from_qcow2_broken_bitmap "qcow2-bitmaps-skip-broken-from-qcow2-broken-bitmap" "-O qcow2 --bitmaps --skip-broken-bitmaps SRC TGT" [Qcow2BrokenBitmap] all ();
            Qcow2 qcow2_err_bitmaps_broken_from_qcow2_broken_bitmap "qcow2-err-bitmaps-broken-from-qcow2-broken-bitmap" "-O qcow2 --bitmaps SRC TGT" [Qcow2BrokenBitmap] all ();
            Qcow2 qcow2_from_qcow2_broken_bitmap "qcow2-from-qcow2-broken-bitmap" "-O qcow2 SRC TGT" [Qcow2BrokenBitmap] one ();
            Qcow2 qcow2_bitmaps_skip_broken_from_qcow2_broken_bitmaps "qcow2-bitmaps-skip-broken-from-qcow2-broken-bitmaps" "-O qcow2 --bitmaps --skip-broken-bitmaps SRC TGT" [Qcow2BrokenBitmaps] all ();
            Qcow2 qcow2_err_bitmaps_broken_from_qcow2_broken_bitmaps "qcow2-err-bitmaps-broken-from-qcow2-broken-bitmaps" "-O qcow2 --bitmaps SRC TGT" [Qcow2BrokenBitmaps] all ();
            Qcow2 qcow2_bitmaps_from_qcow2_bitmaps_many "qcow2-bitmaps-from-qcow2-bitmaps-many" "-O qcow2 --bitmaps SRC TGT" [Qcow2BitmapsMany] all ();
            Qcow2 qcow2_bitmaps_cs_4k_from_qcow2_bitmaps_many "qcow2-bitmaps-cs-4k-from-qcow2-bitmaps-many" "-O qcow2 -o cluster_size=4k --bitmaps SRC TGT" [Qcow2BitmapsMany] one ();
            Qcow2 qcow2_bitmaps_cs_512_from_qcow2_bitmaps_many "qcow2-bitmaps-cs-512-from-qcow2-bitmaps-many" "-O qcow2 -o cluster_size=512 --bitmaps SRC TGT" [Qcow2BitmapsMany] one ();
            Qcow2 qcow2_bitmaps_cs_2m_from_qcow2_bitmaps_many "qcow2-bitmaps-cs-2M-from-qcow2-bitmaps-many" "-O qcow2 -o cluster_size=2M --bitmaps SRC TGT" [Qcow2BitmapsMany] one ();
            Qcow2 qcow2_bitmaps_c_from_qcow2_bitmaps_many "qcow2-bitmaps-c-from-qcow2-bitmaps-many" "-O qcow2 -c --bitmaps SRC TGT" [Qcow2BitmapsMany] one ();
            Qcow2 qcow2_bitmaps_refcount_bits_1_from_qcow2_bitmaps_many "qcow2-bitmaps-refcount-bits-1-from-qcow2-bitmaps-many" "-O qcow2 -o cluster_size=4k,refcount_bits=1 --bitmaps SRC TGT" [Qcow2BitmapsMany] one ();
            Qcow2 qcow2_bitmaps_b_from_qcow2_bitmaps "qcow2-bitmaps-B-from-qcow2-bitmaps" "-O qcow2 -B base.raw -F raw --bitmaps SRC TGT" [Qcow2Bitmaps, BaseRaw] one ();
            Qcow2 qcow2_bitmaps_b_from_qcow2_bitmaps_many "qcow2-bitmaps-B-from-qcow2-bitmaps-many" "-O qcow2 -B base.raw -F raw --bitmaps SRC TGT" [Qcow2BitmapsMany, BaseRaw] one ();
            Qcow2 qcow2_n_bitmaps_filled_from_qcow2_bitmaps "qcow2-n-bitmaps-filled-from-qcow2-bitmaps" "-n -O qcow2 --bitmaps SRC TGT" [Qcow2Bitmaps, TgtQcow2Filled4M] one ();
            Qcow2 qcow2_bitmaps_skip_broken_from_qcow2_bitmaps_many "qcow2-bitmaps-skip-broken-from-qcow2-bitmaps-many" "-O qcow2 --bitmaps --skip-broken-bitmaps SRC TGT" [Qcow2BitmapsMany] one ();
            Qcow2 qcow2_err_bitmaps_target_v2_from_qcow2_bitmaps "qcow2-err-bitmaps-target-v2-from-qcow2-bitmaps" "-O qcow2 -o compat=0.10 --bitmaps SRC TGT" [Qcow2Bitmaps] all ();
            Vmdk vmdk_err_bitmaps_from_qcow2_bitmaps "vmdk-err-bitmaps-from-qcow2-bitmaps" "-O vmdk --bitmaps SRC TGT" [Qcow2Bitmaps] one ();
            Vhd vpc_err_bitmaps_from_qcow2_bitmaps "vpc-err-bitmaps-from-qcow2-bitmaps" "-O vpc --bitmaps SRC TGT" [Qcow2Bitmaps] one ();
            Vhdx vhdx_err_bitmaps_from_qcow2_bitmaps "vhdx-err-bitmaps-from-qcow2-bitmaps" "-O vhdx --bitmaps SRC TGT" [Qcow2Bitmaps] one ();
            Qcow2 qcow2_n_bitmaps_own_from_qcow2_bitmaps "qcow2-n-bitmaps-own-from-qcow2-bitmaps" "-n -O qcow2 --bitmaps SRC TGT" [Qcow2Bitmaps, TgtQcow2Bitmaps] all ();
            Qcow2 qcow2_n_own_from_qcow2_bitmaps "qcow2-n-own-from-qcow2-bitmaps" "-n -O qcow2 SRC TGT" [Qcow2Bitmaps, TgtQcow2Bitmaps] one ();
            Qcow2 qcow2_n_s_0_own_from_qcow2_bitmaps "qcow2-n-S-0-own-from-qcow2-bitmaps" "-n -S 0 -O qcow2 SRC TGT" [Qcow2Bitmaps, TgtQcow2Bitmaps] one ();
            Qcow2 qcow2_n_bitmaps_skip_broken_own_from_qcow2_broken_bitmap "qcow2-n-bitmaps-skip-broken-own-from-qcow2-broken-bitmap" "-n -O qcow2 --bitmaps --skip-broken-bitmaps SRC TGT" [Qcow2BrokenBitmap, TgtQcow2Bitmaps] one ();
            Qcow2 qcow2_err_n_bitmaps_clash_from_qcow2_bitmaps "qcow2-err-n-bitmaps-clash-from-qcow2-bitmaps" "-n -O qcow2 --bitmaps SRC TGT" [Qcow2Bitmaps, TgtQcow2BitmapClash] all ();
            Raw raw_err_n_bitmaps_from_qcow2_bitmaps "raw-err-n-bitmaps-from-qcow2-bitmaps" "-n -O raw --bitmaps SRC TGT" [Qcow2Bitmaps, TgtRawFilled4M] one (fs);
            Qcow2 qcow2_m_1_from_qcow2_plain "qcow2-m-1-from-qcow2-plain" "-O qcow2 -m 1 SRC TGT" [Qcow2Plain] one ();
            Qcow2 qcow2_m_16_from_qcow2_plain "qcow2-m-16-from-qcow2-plain" "-O qcow2 -m 16 SRC TGT" [Qcow2Plain] one ();
            Qcow2 qcow2_m_hex_from_qcow2_plain "qcow2-m-hex-from-qcow2-plain" "-O qcow2 -m 0x10 SRC TGT" [Qcow2Plain] one ();
            Qcow2 qcow2_t_none_from_qcow2_plain "qcow2-t-none-from-qcow2-plain" "-O qcow2 -t none SRC TGT" [Qcow2Plain] one ();
            Qcow2 qcow2_t_writeback_from_qcow2_plain "qcow2-t-writeback-from-qcow2-plain" "-O qcow2 -t writeback SRC TGT" [Qcow2Plain] one ();
            Qcow2 qcow2_src_cache_none_from_qcow2_plain "qcow2-src-cache-none-from-qcow2-plain" "-O qcow2 -T none SRC TGT" [Qcow2Plain] one ();
            Qcow2 qcow2_src_cache_directsync_from_qcow2_plain "qcow2-src-cache-directsync-from-qcow2-plain" "-O qcow2 -T directsync SRC TGT" [Qcow2Plain] one ();
            Qcow2 qcow2_r_1g_from_qcow2_plain "qcow2-r-1G-from-qcow2-plain" "-O qcow2 -r 1G SRC TGT" [Qcow2Plain] one ();
            Qcow2 qcow2_u_from_qcow2_plain "qcow2-U-from-qcow2-plain" "-O qcow2 -U SRC TGT" [Qcow2Plain] one ();
            Qcow2 qcow2_q_from_qcow2_plain "qcow2-q-from-qcow2-plain" "-O qcow2 -q SRC TGT" [Qcow2Plain] one ();
            Qcow2 qcow2_f_qcow2_from_qcow2_plain "qcow2-f-qcow2-from-qcow2-plain" "-O qcow2 -f qcow2 SRC TGT" [Qcow2Plain] one ();
            Qcow2 qcow2_salvage_from_qcow2_plain "qcow2-salvage-from-qcow2-plain" "-O qcow2 --salvage SRC TGT" [Qcow2Plain] one ();
            Qcow2 qcow2_copy_offload_from_qcow2_plain "qcow2-copy-offload-from-qcow2-plain" "-O qcow2 -C SRC TGT" [Qcow2Plain] one ();
            Raw raw_f_raw_from_raw_gaps "raw-f-raw-from-raw-gaps" "-f raw SRC TGT" [RawGaps] one (fs);
            Raw raw_default_from_qcow2_plain "raw-default-from-qcow2-plain" "SRC TGT" [Qcow2Plain] one ();
            Qcow2 qcow2_image_opts_from_qcow2_plain "qcow2-image-opts-from-qcow2-plain" "--image-opts -O qcow2 driver=qcow2,file.filename=SRC TGT" [Qcow2Plain] one ();
            Qcow2 qcow2_o_size_ignored_from_qcow2_plain "qcow2-o-size-ignored-from-qcow2-plain" "-O qcow2 -o size=64M SRC TGT" [Qcow2Plain] one ();
            Qcow2 qcow2_two_o_from_qcow2_plain "qcow2-two-o-from-qcow2-plain" "-O qcow2 -o cluster_size=4k -o refcount_bits=8 SRC TGT" [Qcow2Plain] one ();
            Raw raw_from_qcow2_truncated "raw-from-qcow2-truncated" "-O raw SRC TGT" [Qcow2Truncated] one ();
            Qcow2 qcow2_p_from_qcow2_p5 "qcow2-p-from-qcow2-p5" "-p -O qcow2 SRC TGT" [Qcow2P5] one ();
            Raw raw_p_from_qcow2_zero "raw-p-from-qcow2-zero" "-p -O raw SRC TGT" [Qcow2Zero] one ();
            Qcow2 qcow2_p_c_from_qcow2_plain "qcow2-p-c-from-qcow2-plain" "-p -c -O qcow2 SRC TGT" [Qcow2Plain] one ();
            Qcow2 qcow2_p_s_0_from_qcow2_zero "qcow2-p-S-0-from-qcow2-zero" "-p -S 0 -O qcow2 SRC TGT" [Qcow2Zero] one ();
            Qcow2 qcow2_p_from_qcow2_empty "qcow2-p-from-qcow2-empty" "-p -O qcow2 SRC TGT" [Qcow2Empty] one ();
            Qcow2 qcow2_p_q_from_qcow2_p5 "qcow2-p-q-from-qcow2-p5" "-p -q -O qcow2 SRC TGT" [Qcow2P5] one ();
            Qcow2 qcow2_p_from_qcow2_chain "qcow2-p-from-qcow2-chain" "-p -O qcow2 SRC TGT" [Qcow2Chain] one ();
            Qcow2 qcow2_p_multi_from_qcow2_plain_qcow2_zero "qcow2-p-multi-from-qcow2-plain-qcow2-zero" "-p -O qcow2 SRC SRC2 TGT" [Qcow2Plain, Qcow2Zero] one ();
            - other_err_no_args "other-err-no-args" "" [] all ();
            Raw raw_err_one_arg "raw-err-one-arg" "SRC" [RawOdd] all ();
            Raw raw_err_unknown_short "raw-err-unknown-short" "-x SRC TGT" [RawOdd] all ();
            Raw raw_err_unknown_long "raw-err-unknown-long" "--foo SRC TGT" [RawOdd] all ();
            Raw raw_err_missing_arg_f "raw-err-missing-arg-f" "SRC TGT -f" [RawOdd] all ();
            Raw raw_err_ambiguous_t "raw-err-ambiguous-t" "--t SRC TGT" [RawOdd] all ();
            Raw raw_err_ambiguous_s "raw-err-ambiguous-s" "--s SRC TGT" [RawOdd] all ();
            Raw raw_err_ambiguous_o "raw-err-ambiguous-o" "--o SRC TGT" [RawOdd] all ();
            Raw raw_err_ambiguous_b "raw-err-ambiguous-b" "--b SRC TGT" [RawOdd] all ();
            Raw raw_err_ambiguous_p "raw-err-ambiguous-p" "--p SRC TGT" [RawOdd] all ();
            Raw raw_err_long_target_format "raw-err-long-target-format" "--target-format qcow2 SRC TGT" [RawOdd] all ();
            Qcow2 qcow2_err_long_compress "qcow2-err-long-compress" "--compress -O qcow2 SRC TGT" [RawOdd] all ();
            Qcow2 qcow2_err_f_without_b "qcow2-err-F-without-B" "-F raw -O qcow2 SRC TGT" [RawOdd] all ();
            Raw raw_help "raw-help" "-h" [] all ();
            Raw raw_help_long "raw-help-long" "--help" [] all ();
            Raw raw_err_c "raw-err-c" "-c SRC TGT" [RawOdd] one ();
            Vhd vpc_err_c "vpc-err-c" "-c -O vpc SRC TGT" [RawOdd] one ();
            Vhdx vhdx_err_c "vhdx-err-c" "-c -O vhdx SRC TGT" [RawOdd] one ();
            Qcow2 qcow2_err_c_prealloc "qcow2-err-c-prealloc" "-c -O qcow2 -o preallocation=metadata SRC TGT" [RawOdd] one ();
            Qcow2 qcow2_err_c_encrypt "qcow2-err-c-encrypt" "-c -O qcow2 -o encrypt.format=luks SRC TGT" [RawOdd] one ();
            Qcow2 qcow2_err_c_c "qcow2-err-c-C" "-c -C -O qcow2 SRC TGT" [RawOdd] one ();
            Raw raw_err_s_c "raw-err-S-C" "-C -S 4k SRC TGT" [RawOdd] one ();
            Raw raw_err_c_salvage "raw-err-C-salvage" "-C --salvage SRC TGT" [RawOdd] one ();
            Raw raw_err_c_s_salvage "raw-err-C-S-salvage" "-C -S 4k --salvage SRC TGT" [RawOdd] one ();
            Qcow2 qcow2_err_c_data_file "qcow2-err-c-data-file" "-c -O qcow2 -o data_file=tgt.data SRC TGT" [RawOdd] one ();
            Qcow2 qcow2_err_c_zstd_compat_0_10 "qcow2-err-c-zstd-compat-0.10" "-c -O qcow2 -o compat=0.10,compression_type=zstd SRC TGT" [RawOdd] all ();
            Qcow2 qcow2_err_cs_3k "qcow2-err-cs-3k" "-O qcow2 -o cluster_size=3k SRC TGT" [RawOdd] all ();
            Qcow2 qcow2_err_compression_type_foo "qcow2-err-compression-type-foo" "-O qcow2 -o compression_type=foo SRC TGT" [RawOdd] one ();
            Qcow2 qcow2_err_skip_broken_without_bitmaps "qcow2-err-skip-broken-without-bitmaps" "--skip-broken-bitmaps -O qcow2 SRC TGT" [Qcow2Bitmaps] all ();
            Raw raw_err_target_image_opts_without_n "raw-err-target-image-opts-without-n" "--target-image-opts SRC TGT" [RawOdd] one ();
            Raw raw_err_n_with_o "raw-err-n-with-o" "-n -o cluster_size=4k SRC TGT" [RawOdd] one ();
            Raw raw_err_n_with_o_help "raw-err-n-with-o-help" "-n -o help SRC TGT" [RawOdd] one ();
            Raw raw_err_target_is_zero_without_n "raw-err-target-is-zero-without-n" "--target-is-zero SRC TGT" [RawOdd] one ();
            Raw raw_err_target_is_zero_o_help "raw-err-target-is-zero-o-help" "--target-is-zero -o help SRC TGT" [RawOdd] one ();
            Raw raw_err_target_image_opts_target_is_zero "raw-err-target-image-opts-target-is-zero" "--target-image-opts --target-is-zero SRC TGT" [RawOdd] one ();
            Qcow2 qcow2_err_target_is_zero_with_backing "qcow2-err-target-is-zero-with-backing" "-n --target-is-zero -O qcow2 -B base.raw -F raw SRC TGT" [RawGaps, BaseRaw, TgtQcow2Fresh] all ();
            Raw raw_err_n_missing_target "raw-err-n-missing-target" "-n SRC TGT" [RawOdd] one ();
            Raw raw_err_n_smaller_target "raw-err-n-smaller-target" "-n SRC TGT" [RawSparse, TgtRawFilled] one (fs);
            Raw raw_err_b_raw_target "raw-err-B-raw-target" "-B base.raw -F raw -O raw SRC TGT" [RawGaps, BaseRaw] all ();
            Vhd vpc_err_b "vpc-err-B" "-B base.raw -F raw -O vpc SRC TGT" [RawGaps, BaseRaw] one ();
            Vhdx vhdx_err_b "vhdx-err-B" "-B base.raw -F raw -O vhdx SRC TGT" [RawGaps, BaseRaw] one ();
            Vmdk vmdk_err_b_raw_backing "vmdk-err-B-raw-backing" "-B base.raw -F raw -O vmdk SRC TGT" [RawGaps, BaseRaw] all ();
            Qcow2 qcow2_err_b_without_f "qcow2-err-B-without-F" "-B base.raw -O qcow2 SRC TGT" [RawGaps, BaseRaw] all ();
            Qcow2 qcow2_err_o_backing_without_fmt "qcow2-err-o-backing-without-fmt" "-o backing_file=base.raw -O qcow2 SRC TGT" [RawGaps, BaseRaw] all ();
            Qcow2 qcow2_err_b_multi_source "qcow2-err-B-multi-source" "-B base.raw -F raw -O qcow2 SRC SRC TGT" [RawGaps, BaseRaw] all ();
            Qcow2 qcow2_err_b_missing_backing "qcow2-err-B-missing-backing" "-B missing.img -F raw -O qcow2 SRC TGT" [RawOdd] all ();
            Raw raw_err_s_511 "raw-err-S-511" "-S 511 SRC TGT" [RawOdd] one ();
            Raw raw_err_s_16m_plus_512 "raw-err-S-16M-plus-512" "-S 16777728 SRC TGT" [RawOdd] one ();
            Raw raw_err_s_32m "raw-err-S-32M" "-S 32M SRC TGT" [RawOdd] one ();
            Raw raw_err_s_abc "raw-err-S-abc" "-S abc SRC TGT" [RawOdd] all ();
            Raw raw_err_s_minus_1 "raw-err-S-minus-1" "-S -1 SRC TGT" [RawOdd] all ();
            Raw raw_err_s_1e3 "raw-err-S-1e3" "-S 1e3 SRC TGT" [RawOdd] all ();
            Raw raw_err_m_0 "raw-err-m-0" "-m 0 SRC TGT" [RawOdd] all ();
            Raw raw_err_m_17 "raw-err-m-17" "-m 17 SRC TGT" [RawOdd] all ();
            Raw raw_err_m_abc "raw-err-m-abc" "-m abc SRC TGT" [RawOdd] all ();
            Raw raw_err_r_abc "raw-err-r-abc" "-r abc SRC TGT" [RawOdd] all ();
            Raw raw_err_r_minus_1 "raw-err-r-minus-1" "-r -1 SRC TGT" [RawOdd] all ();
            Qcow2 qcow2_err_o_trailing_comma "qcow2-err-o-trailing-comma" "-O qcow2 -o cluster_size=4k, SRC TGT" [RawOdd] one ();
            Raw raw_err_o_raw_cluster_size "raw-err-o-raw-cluster-size" "-o cluster_size=4k SRC TGT" [RawOdd] one ();
            Raw raw_o_help "raw-o-help" "-o help" [] one ();
            Raw raw_o_help_question "raw-o-help-question" "-o ?" [] one ();
            Qcow2 qcow2_o_help_with_target "qcow2-o-help-with-target" "-O qcow2 -o help SRC TGT" [RawOdd] one ();
            - other_err_o_help_unknown_format "other-err-o-help-unknown-format" "-O foo -o help SRC TGT" [RawOdd] one ();
            - other_err_o_unknown "other-err-O-unknown" "-O foo SRC TGT" [RawOdd] one ();
            - other_err_p_o_unknown "other-err-p-O-unknown" "-p -O foo SRC TGT" [RawOdd] one ();
            - other_err_src_cache_bad_o_unknown "other-err-src-cache-bad-O-unknown" "-T foo -O foo SRC TGT" [RawOdd] one ();
            - other_err_o_unknown_l "other-err-O-unknown-l" "-O foo -l snap1 SRC TGT" [Qcow2Snap] one ();
            - other_err_o_unknown_b_multi "other-err-O-unknown-B-multi" "-O foo -B x -F raw SRC SRC TGT" [RawOdd] one ();
            Raw raw_err_f_unknown "raw-err-f-unknown" "-f foo SRC TGT" [RawOdd] one ();
            Raw raw_err_f_wrong "raw-err-f-wrong" "-f qcow2 SRC TGT" [RawOdd] one ();
            Raw raw_err_missing_source "raw-err-missing-source" "missing.img TGT" [] one ();
            Raw raw_err_image_opts_and_f "raw-err-image-opts-and-f" "--image-opts -f raw SRC TGT" [RawOdd] one ();
            Raw raw_err_src_cache_bad "raw-err-src-cache-bad" "-T foo SRC TGT" [RawOdd] one ();
            Raw raw_err_t_bad_cache "raw-err-t-bad-cache" "-t foo SRC TGT" [RawOdd] one ();
            Raw raw_err_l_missing_snapshot "raw-err-l-missing-snapshot" "-l nosuch SRC TGT" [Qcow2Snap] one ();
            Raw raw_err_l_raw_source "raw-err-l-raw-source" "-l snap1 SRC TGT" [RawOdd] one ();
            Raw raw_err_l_bad_param "raw-err-l-bad-param" "-l snapshot.foo=x SRC TGT" [Qcow2Snap] one ();
            Raw raw_err_l_multi_source "raw-err-l-multi-source" "-l snap1 SRC SRC TGT" [Qcow2Snap] one ();
            Qcow2 qcow2_err_bitmaps_multi "qcow2-err-bitmaps-multi" "--bitmaps -O qcow2 SRC SRC TGT" [Qcow2Bitmaps] one ();
            Qcow2 qcow2_err_bitmaps_raw_source "qcow2-err-bitmaps-raw-source" "--bitmaps -O qcow2 SRC TGT" [RawOdd] all ();
            Raw raw_err_bitmaps_raw_target "raw-err-bitmaps-raw-target" "--bitmaps -O raw SRC TGT" [Qcow2Bitmaps] one ();
            Raw raw_err_bitmaps_c "raw-err-bitmaps-c" "--bitmaps -c -O raw SRC TGT" [Qcow2Bitmaps] one ();
            Qcow2 qcow2_err_target_is_source "qcow2-err-target-is-source" "-O qcow2 TGT TGT" [TgtQcow2Fresh] all ();
            Raw raw_err_corrupt_compressed_cluster "raw-err-corrupt-compressed-cluster" "-O raw SRC TGT" [Qcow2CorruptCompressed] one ();
            Raw raw_err_truncated_compressed_cluster "raw-err-truncated-compressed-cluster" "-m 1 -O raw SRC TGT" [Qcow2TruncatedCompressed] one ();
            Raw raw_err_chain_loop "raw-err-chain-loop" "-O raw SRC TGT" [Qcow2Loop] one (away);
            Qcow2 qcow2_err_n_c_into_allocated "qcow2-err-n-c-into-allocated" "-n -c -O qcow2 SRC TGT" [RawGaps, TgtQcow2Filled] one ();
            Raw raw_salvage_corrupt_compressed_cluster "raw-salvage-corrupt-compressed-cluster" "--salvage -O raw SRC TGT" [Qcow2CorruptCompressed] one ();
            Raw raw_salvage_q_corrupt_compressed_cluster "raw-salvage-q-corrupt-compressed-cluster" "--salvage -q -O raw SRC TGT" [Qcow2CorruptCompressed] one ();
        }
    };
}

/// The target of a row: `-` is none.
macro_rules! row_target {
    (-) => {
        None
    };
    ($target:ident) => {
        Some(Target::$target)
    };
}

/// Builds [`CONVERT_CASES`] from the rows of [`convert_cases!`](crate::convert_cases).
macro_rules! convert_table {
    (; $($target:tt $ident:ident $name:literal $args:literal [$($recipe:ident),*] $runs:ident ($($flag:ident)*);)*) => {
        /// Every row of the convert table, in table order.
        pub static CONVERT_CASES: &[ConvertCase] = &[
            $(ConvertCase {
                target: row_target!($target),
                ident: stringify!($ident),
                name: $name,
                args: $args,
                recipes: &[$(ConvertSource::$recipe),*],
                all_versions: matches!(stringify!($runs).as_bytes(), b"all"),
                runs: stringify!($runs),
                flags: &[$(stringify!($flag)),*],
            },)*
        ];
    };
}

convert_cases!(convert_table);

/// How long a row flagged `away` gives qemu-img before it counts as never
/// answering.
pub const QEMU_RUNS_AWAY_AFTER: std::time::Duration = std::time::Duration::from_secs(10);

/// The flags a row may carry (see the module's documentation).
pub const FLAGS: [&str; 4] = ["zstd", "fs", "old", "away"];

/// One row of the table: a convert command line and what it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvertCase {
    /// The target's format, if the row names one instar writes.
    pub target: Option<Target>,
    /// The row's test identifier (`qcow2_from_raw_gaps`).
    pub ident: &'static str,
    /// The case name, target first (`qcow2-from-raw-gaps`): unique.
    pub name: &'static str,
    /// What follows `convert`, with placeholders, split on whitespace.
    pub args: &'static str,
    /// The recipes made in the row's folder first, in order.
    pub recipes: &'static [ConvertSource],
    /// Whether the row runs under every known qemu-img version.
    pub all_versions: bool,
    /// `all` or `one`, as written.
    pub runs: &'static str,
    /// The row's flags, as written.
    pub flags: &'static [&'static str],
}

impl ConvertCase {
    /// The test identifier the name implies.
    pub fn expected_ident(&self) -> String {
        self.name.to_ascii_lowercase().replace(['-', '.'], "_")
    }

    /// Whether the row carries `flag`.
    pub fn has(&self, flag: &str) -> bool {
        self.flags.contains(&flag)
    }

    /// Whether the row writes zstd clusters.
    pub fn writes_zstd(&self) -> bool {
        self.has("zstd")
    }

    /// The recipes that are sources (what `SRC`, `SRC2`, ... name).
    pub fn sources(&self) -> Vec<ConvertSource> {
        self.recipes.iter().copied().filter(|r| r.role() == Role::Source).collect()
    }

    /// The target's file name: `tgt.<ext>` of the target format (`tgt.img`
    /// for raw and for rows without a target).
    pub fn target_file(&self) -> String {
        format!("tgt.{}", self.target.unwrap_or(Target::Raw).extension())
    }

    /// The words of the arguments, placeholders as written.
    fn words(&self) -> impl Iterator<Item = &'static str> {
        self.args.split_whitespace()
    }

    /// The arguments after the program name: `convert` and the row's,
    /// placeholders replaced by file names.
    pub fn convert_args(&self) -> Vec<String> {
        let sources = self.sources();
        let target = self.target_file();
        let file = |i: usize| sources.get(i).map_or("", |s| s.file_name()).to_string();
        let resolve = |word: &str| -> String {
            let mut out = word.to_string();
            // Longest first: SRC2 before SRC.
            for (holder, value) in
                [("SRC3", file(2)), ("SRC2", file(1)), ("SRC", file(0)), ("TGT", target.clone())]
            {
                out = out.replace(holder, &value);
            }
            out
        };
        std::iter::once("convert".to_string()).chain(self.words().map(resolve)).collect()
    }

    /// Whether the arguments carry `option` as a word of their own.
    pub fn uses(&self, option: &str) -> bool {
        self.words().any(|w| w == option)
    }

    /// Whether the row is named for an error (`-err-`): qemu-img refuses it.
    pub fn is_error_row(&self) -> bool {
        self.name.contains("-err-")
    }

    /// Whether the target exists before the row runs (`-n`).
    pub fn uses_existing_target(&self) -> bool {
        self.uses("-n")
    }

    /// Whether a successful run leaves a target whose guest data are the
    /// source's: one source named once, its current state (no `-l`), and
    /// a target whose old data the conversion overwrites (not
    /// `--target-is-zero`, not a row flagged `old`).
    pub fn keeps_data(&self) -> bool {
        let named = self.words().filter(|w| w.contains("SRC")).count();
        self.sources().len() == 1
            && named == 1
            && !self.uses("-l")
            && !self.uses("--target-is-zero")
            && !self.has("old")
    }

    /// The value of `-O`, if the row gives one (the last, as getopt keeps).
    pub fn output_format(&self) -> Option<&'static str> {
        let words: Vec<&'static str> = self.words().collect();
        words.windows(2).filter(|w| w[0] == "-O").map(|w| w[1]).next_back()
    }
}

/// The row whose test identifier is `ident`.
pub fn convert_by_ident(ident: &str) -> Option<&'static ConvertCase> {
    CONVERT_CASES.iter().find(|c| c.ident == ident)
}

/// What a recipe makes for a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// An image the row converts (`SRC`, `SRC2`, ...).
    Source,
    /// A file the row names by itself (a backing file for `-B`).
    Helper,
    /// The existing target of a `-n` row (`TGT`).
    Target,
}

/// The images a row's folder holds before it runs. Each is made by the
/// oracle's qemu-img and qemu-io or written directly ([`Step`]), with
/// relative names; data patterns are fixed, so every run makes the same
/// guest data (vmdk CIDs, vpc timestamps and vhdx GUIDs vary as in any
/// create: a row reads them, never compares them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConvertSource {
    /// A 4 MiB raw file of holes with data at 0 (64 KiB), 192 KiB (4 KiB)
    /// and in its last 512 bytes: sparse to the host.
    RawSparse,
    /// 1 MiB of 0x11 written whole, with zero runs of 512 B to 64 KiB at
    /// aligned and unaligned offsets (the facts survey's gaps.raw).
    RawGaps,
    /// 1000 bytes written (not a multiple of 512).
    RawOdd,
    /// An empty file.
    RawEmpty,
    /// 256 KiB: 128 KiB that does not compress, then 0x44.
    RawNoise,
    /// 1 MiB of 0x5a written whole.
    RawOne,
    /// qcow2 4 MiB: data clusters, a partial cluster, unallocated ranges.
    Qcow2Plain,
    /// qcow2 v3 4 MiB: zero clusters over data and over nothing, and an
    /// allocated cluster of zeros.
    Qcow2Zero,
    /// qcow2 compat=0.10 with data and zeroed data.
    Qcow2V2,
    /// qcow2 with 4 KiB clusters, data in three L2 tables' ranges.
    Qcow2Cs4k,
    /// qcow2 with 2 MiB clusters.
    Qcow2Cs2M,
    /// Compressed zlib clusters (and uncompressed ones that did not shrink).
    Qcow2Zlib,
    /// Compressed zstd clusters.
    Qcow2Zstd,
    /// Extended L2 entries: partial subclusters, zero subclusters.
    Qcow2Sub,
    /// Guest data in an external data file.
    Qcow2DataFile,
    /// A chain of three: top over mid over base, zero clusters over
    /// backing data.
    Qcow2Chain,
    /// 1 MiB over a 512 KiB backing file.
    Qcow2Short,
    /// Two internal snapshots (`snap1`, `snap2`) and data after each.
    Qcow2Snap,
    /// Data and two persistent bitmaps.
    Qcow2Bitmaps,
    /// A 1 GiB disk with five bitmaps: granularities 512 bytes (four
    /// 64 KiB clusters of bits, one all zeros), 64 KiB, 2 MiB and 4 KiB,
    /// dirtied by writes across the disk; one disabled with bits, one
    /// disabled and empty, one added after the writes (empty, enabled).
    Qcow2BitmapsMany,
    /// Data and two persistent bitmaps, the first (`bm1`) marked in use
    /// (inconsistent, as after a crash), the second (`good`) whole.
    Qcow2BrokenBitmap,
    /// Three bitmaps, the first (`bm1`) and the last (`bm3`) marked in
    /// use, `good` between them whole: the order qemu-img walks them in.
    Qcow2BrokenBitmaps,
    /// 5 MiB of data (three 2 MiB copy chunks: `-p` steps).
    Qcow2P5,
    /// An empty qcow2.
    Qcow2Empty,
    /// A qcow2 cut short inside its data (reads past the end are zeros).
    Qcow2Truncated,
    /// A compressed cluster whose payload is garbage.
    Qcow2CorruptCompressed,
    /// A compressed qcow2 cut inside its first payload.
    Qcow2TruncatedCompressed,
    /// Two qcow2 files, each the other's backing file.
    Qcow2Loop,
    /// vmdk monolithicSparse with data.
    VmdkSparse,
    /// vmdk streamOptimized (made by converting a written raw file).
    VmdkStream,
    /// vmdk monolithicFlat with data.
    VmdkFlat,
    /// vmdk twoGbMaxExtentSparse with data.
    Vmdk2Gb,
    /// vpc dynamic with data.
    VpcDynamic,
    /// vpc fixed with data.
    VpcFixed,
    /// vhdx dynamic with data.
    VhdxDynamic,
    /// vhdx fixed with data.
    VhdxFixed,
    /// vhdx dynamic with 1 MiB blocks, some absent between data blocks
    /// (they read as zeros unread; `-S` larger than a block writes them).
    VhdxBlocks,
    /// A 1 MiB raw backing file for `-B base.raw`.
    BaseRaw,
    /// `-n` target: 1 MiB raw of 0x77.
    TgtRawFilled,
    /// `-n` target: 2 MiB raw of 0x77 (larger than the source).
    TgtRawFilled2M,
    /// `-n` target: 4 MiB raw of 0x77.
    TgtRawFilled4M,
    /// `-n` target: an empty 1 MiB qcow2.
    TgtQcow2Fresh,
    /// `-n` target: a 1 MiB qcow2 full of 0x77.
    TgtQcow2Filled,
    /// `-n` target: a 4 MiB qcow2 full of 0x77.
    TgtQcow2Filled4M,
    /// `-n` target: a compat=0.10 1 MiB qcow2 full of 0x77.
    TgtQcow2V2Filled,
    /// `-n` target: a 4 MiB qcow2 full of 0x77 with bitmaps of its own:
    /// `tb1` (enabled, dirtied by a write after it was added) and `tb2`
    /// (512-byte granularity, disabled).
    TgtQcow2Bitmaps,
    /// `-n` target: the same with `tb1` and a bitmap `bm2`, the name of
    /// one of [`ConvertSource::Qcow2Bitmaps`]'s.
    TgtQcow2BitmapClash,
    /// `-n` target: an empty 1 MiB vmdk.
    TgtVmdk,
    /// `-n` target: an empty vpc of 1 MiB (a little larger by its geometry).
    TgtVpc,
    /// `-n` target: an empty 1 MiB vhdx.
    TgtVhdx,
}

/// The zero runs of [`ConvertSource::RawGaps`] (and the inputs of the
/// compressed and stream sources): 512 B to 64 KiB, aligned and not.
const GAPS: &[(u64, u64, u8)] = &[
    (0x1000, 0x200, 0),
    (0x3000, 0x800, 0),
    (0x5000, 0x1000, 0),
    (0x8000, 0x2000, 0),
    (0xc200, 0x1800, 0),
    (0x1_0000, 0x3e00, 0),
    (0x2_0000, 0x1_0000, 0),
    (0x4_0100, 0x1000, 0),
    (0x5_0000, 0x1200, 0),
];

/// 1 MiB.
const MIB: u64 = 1 << 20;

/// Where [`ConvertSource::Qcow2BrokenBitmap`]'s first bitmap keeps its
/// flags: qemu-img puts the bitmap directory of that recipe at 0xa0000
/// (measured with 10.0.2; the recipe's `qemu-img info` shows `in-use`).
const BROKEN_BITMAP_FLAGS: u64 = 0xa_000c;

/// Where [`ConvertSource::Qcow2BrokenBitmaps`]'s first and last bitmaps
/// keep their flags: that recipe's bitmap directory is at 0xc0000, its
/// entries 32 bytes apart (measured with 10.0.2).
const BROKEN_BITMAPS_FLAGS: [u64; 2] = [0xc_000c, 0xc_004c];

/// What the compressed sources hold: 0x11 with zero runs, a cluster of
/// another byte, and a tail that does not compress (written as plain
/// clusters by a compressing convert).
const COMPRESSED_INPUT: &[&str] =
    &["write -P 0x11 0 256k", "write -P 0 256k 64k", "write -P 0x22 512k 64k"];

/// The data of the small vmdk, vpc and vhdx sources.
const SMALL_DATA: &[&str] =
    &["write -P 0xaa 0 64k", "write -P 0xbb 1049088 4k", "write -P 0 2M 64k"];

impl ConvertSource {
    /// The file the rows name.
    pub fn file_name(self) -> &'static str {
        use ConvertSource as S;
        match self {
            S::RawSparse => "sparse.raw",
            S::RawGaps => "gaps.raw",
            S::RawOdd => "odd.raw",
            S::RawEmpty => "empty.raw",
            S::RawNoise => "noise.raw",
            S::RawOne => "one.raw",
            S::Qcow2Plain => "plain.qcow2",
            S::Qcow2Zero => "zc.qcow2",
            S::Qcow2V2 => "v2.qcow2",
            S::Qcow2Cs4k => "cs4k.qcow2",
            S::Qcow2Cs2M => "cs2m.qcow2",
            S::Qcow2Zlib => "zlib.qcow2",
            S::Qcow2Zstd => "zstd.qcow2",
            S::Qcow2Sub => "sub.qcow2",
            S::Qcow2DataFile => "df.qcow2",
            S::Qcow2Chain => "chain.qcow2",
            S::Qcow2Short => "short.qcow2",
            S::Qcow2Snap => "snap.qcow2",
            S::Qcow2Bitmaps => "bm.qcow2",
            S::Qcow2BitmapsMany => "bms.qcow2",
            S::Qcow2BrokenBitmap => "broken.qcow2",
            S::Qcow2BrokenBitmaps => "broken2.qcow2",
            S::Qcow2P5 => "p5.qcow2",
            S::Qcow2Empty => "empty.qcow2",
            S::Qcow2Truncated => "cut.qcow2",
            S::Qcow2CorruptCompressed => "badz.qcow2",
            S::Qcow2TruncatedCompressed => "cutz.qcow2",
            S::Qcow2Loop => "loop.qcow2",
            S::VmdkSparse => "sparse.vmdk",
            S::VmdkStream => "stream.vmdk",
            S::VmdkFlat => "flat.vmdk",
            S::Vmdk2Gb => "twogb.vmdk",
            S::VpcDynamic => "dyn.vhd",
            S::VpcFixed => "fixed.vhd",
            S::VhdxDynamic => "dyn.vhdx",
            S::VhdxFixed => "fixed.vhdx",
            S::VhdxBlocks => "blocks.vhdx",
            S::BaseRaw => "base.raw",
            S::TgtRawFilled | S::TgtRawFilled2M | S::TgtRawFilled4M => "tgt.img",
            S::TgtQcow2Fresh
            | S::TgtQcow2Filled
            | S::TgtQcow2Filled4M
            | S::TgtQcow2V2Filled
            | S::TgtQcow2Bitmaps
            | S::TgtQcow2BitmapClash => "tgt.qcow2",
            S::TgtVmdk => "tgt.vmdk",
            S::TgtVpc => "tgt.vhd",
            S::TgtVhdx => "tgt.vhdx",
        }
    }

    /// What the recipe is to a row.
    pub fn role(self) -> Role {
        match self {
            ConvertSource::BaseRaw => Role::Helper,
            s if s.file_name().starts_with("tgt.") => Role::Target,
            _ => Role::Source,
        }
    }

    /// Every recipe, in declaration order.
    pub const ALL: [ConvertSource; 50] = {
        use ConvertSource as S;
        [
            S::RawSparse,
            S::RawGaps,
            S::RawOdd,
            S::RawEmpty,
            S::RawNoise,
            S::RawOne,
            S::Qcow2Plain,
            S::Qcow2Zero,
            S::Qcow2V2,
            S::Qcow2Cs4k,
            S::Qcow2Cs2M,
            S::Qcow2Zlib,
            S::Qcow2Zstd,
            S::Qcow2Sub,
            S::Qcow2DataFile,
            S::Qcow2Chain,
            S::Qcow2Short,
            S::Qcow2Snap,
            S::Qcow2Bitmaps,
            S::Qcow2BitmapsMany,
            S::Qcow2BrokenBitmap,
            S::Qcow2BrokenBitmaps,
            S::Qcow2P5,
            S::Qcow2Empty,
            S::Qcow2Truncated,
            S::Qcow2CorruptCompressed,
            S::Qcow2TruncatedCompressed,
            S::Qcow2Loop,
            S::VmdkSparse,
            S::VmdkStream,
            S::VmdkFlat,
            S::Vmdk2Gb,
            S::VpcDynamic,
            S::VpcFixed,
            S::VhdxDynamic,
            S::VhdxFixed,
            S::VhdxBlocks,
            S::BaseRaw,
            S::TgtRawFilled,
            S::TgtRawFilled2M,
            S::TgtRawFilled4M,
            S::TgtQcow2Fresh,
            S::TgtQcow2Filled,
            S::TgtQcow2Filled4M,
            S::TgtQcow2V2Filled,
            S::TgtQcow2Bitmaps,
            S::TgtQcow2BitmapClash,
            S::TgtVmdk,
            S::TgtVpc,
            S::TgtVhdx,
        ]
    };
}

/// Every file a step makes is the recipe's file, or starts with its stem
/// (its backing files, data file, extents, the input it was converted
/// from), so that the recipes of one row never touch each other's files.
impl Recipe for ConvertSource {
    fn steps(self) -> &'static [Step] {
        use ConvertSource as S;
        use Step::{Cut, Fill, Img, Io, Noise, Poke, Truncate, Written};
        match self {
            S::RawSparse => &[
                Truncate("sparse.raw", 4 * MIB),
                Io {
                    format: "raw",
                    file: "sparse.raw",
                    commands: &[
                        "write -P 0x11 0 64k",
                        "write -P 0x22 192k 4k",
                        "write -P 0x33 4193792 512",
                    ],
                },
            ],
            S::RawGaps => &[Written { file: "gaps.raw", len: MIB, fill: 0x11, runs: GAPS }],
            S::RawOdd => &[Fill("odd.raw", 1000, 0x5a)],
            S::RawEmpty => &[Truncate("empty.raw", 0)],
            S::RawNoise => &[
                Noise("noise.raw", 256 << 10, 7),
                Io { format: "raw", file: "noise.raw", commands: &["write -P 0x44 128k 128k"] },
            ],
            S::RawOne => &[Fill("one.raw", MIB, 0x5a)],
            S::Qcow2Plain => &[
                Img(&["create", "-q", "-f", "qcow2", "plain.qcow2", "4M"]),
                Io {
                    format: "qcow2",
                    file: "plain.qcow2",
                    commands: &[
                        "write -P 0xaa 0 64k",
                        "write -P 0xbb 1M 128k",
                        "write -P 0xcc 3146240 1k",
                    ],
                },
            ],
            S::Qcow2Zero => &[
                Img(&["create", "-q", "-f", "qcow2", "zc.qcow2", "4M"]),
                Io {
                    format: "qcow2",
                    file: "zc.qcow2",
                    commands: &[
                        "write -P 0xaa 0 1M",
                        "write -z 256k 128k",
                        "write -P 0 512k 64k",
                        "write -P 0xee 2M 64k",
                        "write -z 3M 64k",
                    ],
                },
            ],
            S::Qcow2V2 => &[
                Img(&["create", "-q", "-f", "qcow2", "-o", "compat=0.10", "v2.qcow2", "4M"]),
                Io {
                    format: "qcow2",
                    file: "v2.qcow2",
                    commands: &["write -P 0xaa 0 1M", "write -z 256k 128k", "write -P 0xbb 2M 64k"],
                },
            ],
            S::Qcow2Cs4k => &[
                Img(&["create", "-q", "-f", "qcow2", "-o", "cluster_size=4k", "cs4k.qcow2", "8M"]),
                Io {
                    format: "qcow2",
                    file: "cs4k.qcow2",
                    commands: &[
                        "write -P 0xaa 0 12k",
                        "write -z 4k 4k",
                        "write -P 0xbb 2101248 4k",
                        "write -P 0xcc 6M 8k",
                    ],
                },
            ],
            S::Qcow2Cs2M => &[
                Img(&["create", "-q", "-f", "qcow2", "-o", "cluster_size=2M", "cs2m.qcow2", "8M"]),
                Io {
                    format: "qcow2",
                    file: "cs2m.qcow2",
                    commands: &["write -P 0xaa 0 64k", "write -P 0xbb 4259840 4k"],
                },
            ],
            S::Qcow2Zlib => &[
                Noise("zlib.qcow2.in", MIB, 11),
                Io { format: "raw", file: "zlib.qcow2.in", commands: COMPRESSED_INPUT },
                Img(&["convert", "-c", "-f", "raw", "-O", "qcow2", "zlib.qcow2.in", "zlib.qcow2"]),
            ],
            S::Qcow2Zstd => &[
                Noise("zstd.qcow2.in", MIB, 11),
                Io { format: "raw", file: "zstd.qcow2.in", commands: COMPRESSED_INPUT },
                Img(&[
                    "convert",
                    "-c",
                    "-f",
                    "raw",
                    "-O",
                    "qcow2",
                    "-o",
                    "compression_type=zstd",
                    "zstd.qcow2.in",
                    "zstd.qcow2",
                ]),
            ],
            S::Qcow2Sub => &[
                Img(&["create", "-q", "-f", "qcow2", "-o", "extended_l2=on", "sub.qcow2", "4M"]),
                Io {
                    format: "qcow2",
                    file: "sub.qcow2",
                    commands: &[
                        "write -P 0xaa 0 2k",
                        "write -P 0xbb 71680 4k",
                        "write -z 1M 64k",
                        "write -P 0xcc 2M 64k",
                        "write -z 2105344 2k",
                    ],
                },
            ],
            S::Qcow2DataFile => &[
                Img(&[
                    "create",
                    "-q",
                    "-f",
                    "qcow2",
                    "-o",
                    "data_file=df.qcow2.data",
                    "df.qcow2",
                    "4M",
                ]),
                Io {
                    format: "qcow2",
                    file: "df.qcow2",
                    commands: &["write -P 0xaa 0 64k", "write -P 0xbb 1M 64k"],
                },
            ],
            S::Qcow2Chain => &[
                Img(&["create", "-q", "-f", "qcow2", "chain.qcow2.base", "4M"]),
                Io { format: "qcow2", file: "chain.qcow2.base", commands: &["write -P 0x11 0 2M"] },
                Img(&[
                    "create",
                    "-q",
                    "-f",
                    "qcow2",
                    "-b",
                    "chain.qcow2.base",
                    "-F",
                    "qcow2",
                    "chain.qcow2.mid",
                ]),
                Io {
                    format: "qcow2",
                    file: "chain.qcow2.mid",
                    commands: &["write -P 0x22 1M 512k", "write -z 64k 64k"],
                },
                Img(&[
                    "create",
                    "-q",
                    "-f",
                    "qcow2",
                    "-b",
                    "chain.qcow2.mid",
                    "-F",
                    "qcow2",
                    "chain.qcow2",
                ]),
                Io {
                    format: "qcow2",
                    file: "chain.qcow2",
                    commands: &["write -P 0x33 1536k 128k", "write -z 1M 64k"],
                },
            ],
            S::Qcow2Short => &[
                Img(&["create", "-q", "-f", "qcow2", "short.qcow2.base", "512k"]),
                Io {
                    format: "qcow2",
                    file: "short.qcow2.base",
                    commands: &["write -P 0x11 0 512k"],
                },
                Img(&[
                    "create",
                    "-q",
                    "-f",
                    "qcow2",
                    "-b",
                    "short.qcow2.base",
                    "-F",
                    "qcow2",
                    "short.qcow2",
                    "1M",
                ]),
                Io { format: "qcow2", file: "short.qcow2", commands: &["write -P 0x22 256k 64k"] },
            ],
            S::Qcow2Snap => &[
                Img(&["create", "-q", "-f", "qcow2", "snap.qcow2", "4M"]),
                Io { format: "qcow2", file: "snap.qcow2", commands: &["write -P 0xaa 0 1M"] },
                Img(&["snapshot", "-c", "snap1", "snap.qcow2"]),
                Io { format: "qcow2", file: "snap.qcow2", commands: &["write -P 0xbb 512k 1M"] },
                Img(&["snapshot", "-c", "snap2", "snap.qcow2"]),
                Io { format: "qcow2", file: "snap.qcow2", commands: &["write -P 0xcc 2M 64k"] },
            ],
            S::Qcow2Bitmaps => &[
                Img(&["create", "-q", "-f", "qcow2", "bm.qcow2", "4M"]),
                Io {
                    format: "qcow2",
                    file: "bm.qcow2",
                    commands: &["write -P 0xaa 0 64k", "write -P 0xbb 1M 64k"],
                },
                Img(&["bitmap", "--add", "-g", "64k", "bm.qcow2", "bm1"]),
                Img(&["bitmap", "--add", "-g", "512", "--disable", "bm.qcow2", "bm2"]),
            ],
            S::Qcow2BitmapsMany => &[
                Img(&["create", "-q", "-f", "qcow2", "bms.qcow2", "1G"]),
                Img(&["bitmap", "--add", "-g", "512", "bms.qcow2", "fine"]),
                Img(&["bitmap", "--add", "-g", "64k", "bms.qcow2", "mid"]),
                Img(&["bitmap", "--add", "-g", "2M", "bms.qcow2", "coarse"]),
                Img(&["bitmap", "--add", "-g", "4k", "--disable", "bms.qcow2", "off"]),
                Io {
                    format: "qcow2",
                    file: "bms.qcow2",
                    commands: &[
                        "write -P 0x11 0 64k",
                        "write -P 0x22 100M 4k",
                        "write -P 0x33 600M 1M",
                        "write -P 0x44 1073741312 512",
                    ],
                },
                Img(&["bitmap", "--disable", "bms.qcow2", "mid"]),
                Img(&["bitmap", "--add", "-g", "64k", "bms.qcow2", "late"]),
            ],
            S::Qcow2BrokenBitmap => &[
                Img(&["create", "-q", "-f", "qcow2", "broken.qcow2", "4M"]),
                Io { format: "qcow2", file: "broken.qcow2", commands: &["write -P 0xaa 0 64k"] },
                Img(&["bitmap", "--add", "-g", "64k", "broken.qcow2", "bm1"]),
                Img(&["bitmap", "--add", "-g", "64k", "broken.qcow2", "good"]),
                // bm1's flags (its directory entry at 0xa0000 + 12): in use
                // and auto, as qemu leaves a bitmap it did not close.
                Poke("broken.qcow2", BROKEN_BITMAP_FLAGS, &[0, 0, 0, 3]),
            ],
            S::Qcow2BrokenBitmaps => &[
                Img(&["create", "-q", "-f", "qcow2", "broken2.qcow2", "4M"]),
                Io { format: "qcow2", file: "broken2.qcow2", commands: &["write -P 0xaa 0 64k"] },
                Img(&["bitmap", "--add", "-g", "64k", "broken2.qcow2", "bm1"]),
                Img(&["bitmap", "--add", "-g", "64k", "broken2.qcow2", "good"]),
                Img(&["bitmap", "--add", "-g", "64k", "broken2.qcow2", "bm3"]),
                Poke("broken2.qcow2", BROKEN_BITMAPS_FLAGS[0], &[0, 0, 0, 3]),
                Poke("broken2.qcow2", BROKEN_BITMAPS_FLAGS[1], &[0, 0, 0, 3]),
            ],
            S::Qcow2P5 => &[
                Img(&["create", "-q", "-f", "qcow2", "p5.qcow2", "5M"]),
                Io { format: "qcow2", file: "p5.qcow2", commands: &["write -P 0x5a 0 5M"] },
            ],
            S::Qcow2Empty => &[Img(&["create", "-q", "-f", "qcow2", "empty.qcow2", "1M"])],
            S::Qcow2Truncated => &[
                Img(&["create", "-q", "-f", "qcow2", "cut.qcow2", "1M"]),
                Io { format: "qcow2", file: "cut.qcow2", commands: &["write -P 0xaa 0 256k"] },
                // The header, tables and the first data cluster and a half.
                Cut("cut.qcow2", 0x5_8000),
            ],
            S::Qcow2CorruptCompressed => &[
                Written { file: "badz.qcow2.in", len: MIB, fill: 0x11, runs: GAPS },
                Img(&["convert", "-c", "-f", "raw", "-O", "qcow2", "badz.qcow2.in", "badz.qcow2"]),
                // The first payload starts at 0x50000 (after header,
                // refcount table and block, L1 and L2): garbage there.
                Poke("badz.qcow2", 0x5_0000, &[0xff; 16]),
            ],
            S::Qcow2TruncatedCompressed => &[
                Written { file: "cutz.qcow2.in", len: MIB, fill: 0x11, runs: GAPS },
                Img(&["convert", "-c", "-f", "raw", "-O", "qcow2", "cutz.qcow2.in", "cutz.qcow2"]),
                Cut("cutz.qcow2", 0x5_0010),
            ],
            S::Qcow2Loop => &[
                Img(&["create", "-q", "-f", "qcow2", "loop.qcow2.b", "1M"]),
                Img(&[
                    "create",
                    "-q",
                    "-f",
                    "qcow2",
                    "-b",
                    "loop.qcow2.b",
                    "-F",
                    "qcow2",
                    "loop.qcow2",
                ]),
                Img(&["rebase", "-u", "-b", "loop.qcow2", "-F", "qcow2", "loop.qcow2.b"]),
            ],
            S::VmdkSparse => &[
                Img(&["create", "-q", "-f", "vmdk", "sparse.vmdk", "4M"]),
                Io { format: "vmdk", file: "sparse.vmdk", commands: SMALL_DATA },
            ],
            S::VmdkStream => &[
                Written { file: "stream.vmdk.in", len: MIB, fill: 0x11, runs: GAPS },
                Img(&[
                    "convert",
                    "-f",
                    "raw",
                    "-O",
                    "vmdk",
                    "-o",
                    "subformat=streamOptimized",
                    "stream.vmdk.in",
                    "stream.vmdk",
                ]),
            ],
            S::VmdkFlat => &[
                Img(&[
                    "create",
                    "-q",
                    "-f",
                    "vmdk",
                    "-o",
                    "subformat=monolithicFlat",
                    "flat.vmdk",
                    "4M",
                ]),
                Io { format: "vmdk", file: "flat.vmdk", commands: SMALL_DATA },
            ],
            S::Vmdk2Gb => &[
                Img(&[
                    "create",
                    "-q",
                    "-f",
                    "vmdk",
                    "-o",
                    "subformat=twoGbMaxExtentSparse",
                    "twogb.vmdk",
                    "4M",
                ]),
                Io { format: "vmdk", file: "twogb.vmdk", commands: SMALL_DATA },
            ],
            S::VpcDynamic => &[
                Img(&["create", "-q", "-f", "vpc", "dyn.vhd", "4M"]),
                Io { format: "vpc", file: "dyn.vhd", commands: SMALL_DATA },
            ],
            S::VpcFixed => &[
                Img(&["create", "-q", "-f", "vpc", "-o", "subformat=fixed", "fixed.vhd", "4M"]),
                Io { format: "vpc", file: "fixed.vhd", commands: SMALL_DATA },
            ],
            S::VhdxDynamic => &[
                Img(&["create", "-q", "-f", "vhdx", "dyn.vhdx", "4M"]),
                Io { format: "vhdx", file: "dyn.vhdx", commands: SMALL_DATA },
            ],
            S::VhdxFixed => &[
                Img(&["create", "-q", "-f", "vhdx", "-o", "subformat=fixed", "fixed.vhdx", "4M"]),
                Io { format: "vhdx", file: "fixed.vhdx", commands: SMALL_DATA },
            ],
            S::VhdxBlocks => &[
                Img(&["create", "-q", "-f", "vhdx", "-o", "block_size=1M", "blocks.vhdx", "8M"]),
                Io {
                    format: "vhdx",
                    file: "blocks.vhdx",
                    commands: &[
                        "write -P 0x11 0 768k",
                        "write -P 0x22 2M 1M",
                        "write -P 0x33 7M 4k",
                    ],
                },
            ],
            S::BaseRaw => &[Fill("base.raw", MIB, 0x11)],
            S::TgtRawFilled => &[Fill("tgt.img", MIB, 0x77)],
            S::TgtRawFilled2M => &[Fill("tgt.img", 2 * MIB, 0x77)],
            S::TgtRawFilled4M => &[Fill("tgt.img", 4 * MIB, 0x77)],
            S::TgtQcow2Fresh => &[Img(&["create", "-q", "-f", "qcow2", "tgt.qcow2", "1M"])],
            S::TgtQcow2Filled => &[
                Img(&["create", "-q", "-f", "qcow2", "tgt.qcow2", "1M"]),
                Io { format: "qcow2", file: "tgt.qcow2", commands: &["write -P 0x77 0 1M"] },
            ],
            S::TgtQcow2Filled4M => &[
                Img(&["create", "-q", "-f", "qcow2", "tgt.qcow2", "4M"]),
                Io { format: "qcow2", file: "tgt.qcow2", commands: &["write -P 0x77 0 4M"] },
            ],
            S::TgtQcow2Bitmaps => &[
                Img(&["create", "-q", "-f", "qcow2", "tgt.qcow2", "4M"]),
                Io { format: "qcow2", file: "tgt.qcow2", commands: &["write -P 0x77 0 4M"] },
                Img(&["bitmap", "--add", "-g", "64k", "tgt.qcow2", "tb1"]),
                Img(&["bitmap", "--add", "-g", "512", "--disable", "tgt.qcow2", "tb2"]),
                Io { format: "qcow2", file: "tgt.qcow2", commands: &["write -P 0x78 3M 64k"] },
            ],
            S::TgtQcow2BitmapClash => &[
                Img(&["create", "-q", "-f", "qcow2", "tgt.qcow2", "4M"]),
                Io { format: "qcow2", file: "tgt.qcow2", commands: &["write -P 0x77 0 4M"] },
                Img(&["bitmap", "--add", "-g", "64k", "tgt.qcow2", "tb1"]),
                Img(&["bitmap", "--add", "tgt.qcow2", "bm2"]),
                Io { format: "qcow2", file: "tgt.qcow2", commands: &["write -P 0x78 3M 64k"] },
            ],
            S::TgtQcow2V2Filled => &[
                Img(&["create", "-q", "-f", "qcow2", "-o", "compat=0.10", "tgt.qcow2", "1M"]),
                Io { format: "qcow2", file: "tgt.qcow2", commands: &["write -P 0x77 0 1M"] },
            ],
            S::TgtVmdk => &[Img(&["create", "-q", "-f", "vmdk", "tgt.vmdk", "1M"])],
            S::TgtVpc => &[Img(&["create", "-q", "-f", "vpc", "tgt.vhd", "1M"])],
            S::TgtVhdx => &[Img(&["create", "-q", "-f", "vhdx", "tgt.vhdx", "1M"])],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn identifiers_follow_the_names() {
        for case in CONVERT_CASES {
            assert_eq!(case.ident, case.expected_ident(), "row {}", case.name);
        }
    }

    #[test]
    fn names_and_identifiers_are_unique() {
        let names: HashSet<_> = CONVERT_CASES.iter().map(|c| c.name).collect();
        let idents: HashSet<_> = CONVERT_CASES.iter().map(|c| c.ident).collect();
        assert_eq!(names.len(), CONVERT_CASES.len());
        assert_eq!(idents.len(), CONVERT_CASES.len());
    }

    /// A name starts with its target's format name, `other-` without one.
    #[test]
    fn names_start_with_their_target() {
        for case in CONVERT_CASES {
            let prefix = format!("{}-", case.target.map_or("other", Target::format));
            assert!(case.name.starts_with(&prefix), "row {} is not named {prefix}...", case.name);
        }
    }

    /// A row sits under the format its `-O` names (raw when none); `-`
    /// only for a format qemu-img does not know, or no target.
    #[test]
    fn targets_follow_the_output_format() {
        for case in CONVERT_CASES {
            let named = case.output_format().unwrap_or("raw");
            let want = Target::ALL.into_iter().find(|t| t.format() == named);
            // --target-image-opts names the target's driver in its own words.
            if !case.uses("--target-image-opts") && (case.target.is_some() || case.uses("TGT")) {
                assert_eq!(case.target, want, "row {}", case.name);
            }
        }
    }

    #[test]
    fn the_table_is_large_and_spread() {
        assert!(CONVERT_CASES.len() >= 250, "{} rows", CONVERT_CASES.len());
        for target in Target::ALL {
            assert!(CONVERT_CASES.iter().any(|c| c.target == Some(target)), "no {target} row");
        }
        for recipe in ConvertSource::ALL {
            assert!(
                CONVERT_CASES.iter().any(|c| c.recipes.contains(&recipe)),
                "no row uses {recipe:?}"
            );
        }
        let versioned = CONVERT_CASES.iter().filter(|c| c.all_versions).count();
        assert!((30..=120).contains(&versioned), "{versioned} rows run under every version");
    }

    #[test]
    fn runs_and_flags_are_known() {
        for case in CONVERT_CASES {
            assert!(matches!(case.runs, "all" | "one"), "row {}: runs {}", case.name, case.runs);
            for flag in case.flags {
                assert!(FLAGS.contains(flag), "row {}: unknown flag {flag}", case.name);
            }
            let asks = case.args.contains("compression_type=zstd") && case.uses("-c");
            assert_eq!(
                case.writes_zstd(),
                asks && !case.is_error_row(),
                "row {}: the zstd flag marks the rows that write zstd clusters",
                case.name
            );
        }
    }

    /// Every placeholder has a recipe behind it, every source recipe is
    /// named, a `-n` row has its target made, and no other row has one.
    #[test]
    fn placeholders_match_the_recipes() {
        for case in CONVERT_CASES {
            let sources = case.sources().len();
            for (holder, needs) in [("SRC", 1), ("SRC2", 2), ("SRC3", 3)] {
                if case.uses(holder) || case.args.contains(&format!("={holder}")) {
                    assert!(sources >= needs, "row {} names {holder}", case.name);
                }
            }
            let named = ["SRC", "SRC2", "SRC3"]
                .iter()
                .filter(|h| case.args.split([' ', '=']).any(|w| w == **h))
                .count();
            assert_eq!(named, sources, "row {}: sources and placeholders", case.name);
            let pre_made: Vec<_> =
                case.recipes.iter().filter(|r| r.role() == Role::Target).collect();
            if case.uses_existing_target() && !case.is_error_row() {
                assert_eq!(pre_made.len(), 1, "row {} uses -n", case.name);
                assert_eq!(pre_made[0].file_name(), case.target_file(), "row {}", case.name);
            }
        }
    }

    #[test]
    fn arguments_resolve_the_placeholders() {
        let case = convert_by_ident("qcow2_multi_from_raw_one_qcow2_plain_vmdk_sparse").unwrap();
        assert_eq!(
            case.convert_args(),
            ["convert", "-O", "qcow2", "one.raw", "plain.qcow2", "sparse.vmdk", "tgt.qcow2"]
        );
        let case = convert_by_ident("qcow2_n_target_image_opts_from_raw_gaps").unwrap();
        assert_eq!(case.convert_args().last().unwrap(), "driver=qcow2,file.filename=tgt.qcow2");
        assert!(convert_by_ident("qcow2_from_raw_gaps").unwrap().keeps_data());
        assert!(!convert_by_ident("qcow2_l_name_from_qcow2_snap").unwrap().keeps_data());
        assert!(!convert_by_ident("raw_n_larger_from_raw_gaps").unwrap().keeps_data());
        assert_eq!(convert_by_ident("other_err_no_args").unwrap().convert_args(), ["convert"]);
    }

    #[test]
    fn every_recipe_is_listed_once() {
        let unique: HashSet<_> = ConvertSource::ALL.iter().collect();
        assert_eq!(unique.len(), ConvertSource::ALL.len());
        let sources: Vec<_> =
            ConvertSource::ALL.iter().filter(|r| r.role() == Role::Source).collect();
        let files: HashSet<_> = sources.iter().map(|r| r.file_name()).collect();
        assert_eq!(files.len(), sources.len(), "two sources share a file");
    }
}
