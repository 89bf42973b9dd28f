//! `MEASURE_CASES`: the one definition of the `qemu-img measure` command
//! lines the differential tests run (docs/compat.md §9.6), beside
//! CREATE_CASES ([`cases`](crate::cases)) and built the same way.
//!
//! The table is written once, as the body of [`measure_cases!`](crate::measure_cases).
//! That macro hands the rows to a callback macro: the static
//! [`MEASURE_CASES`] slice (read by the baseline generator and the
//! consistency test) and the named tests of `tests/measure/` (one per row,
//! which need an identifier per row at compile time) are made from the
//! same text.
//!
//! A row is `Target ident "case-name" "ARGUMENTS" SOURCE;`:
//!
//! - `Target`: the output format, qemu-img's `-O` ([`MeasureTarget`]).
//!   A row that fails goes under the format its `-O` names, under `Raw`
//!   (qemu-img's default) when it names none, and under `Other` when it
//!   names a format qemu-img cannot measure or does not know.
//! - `case-name` starts with the target's name (`qcow2-size-1G`,
//!   `raw-from-qcow2-data`, `luks-err-no-secret`): the profile folders
//!   hold every target's rows side by side under their case names, so a
//!   name must never be reused across targets. The identifier is the name
//!   in lower case with `-` and `.` as `_`; unit tests hold both rules.
//! - `ARGUMENTS`: what follows `measure`, split on whitespace (no quoting;
//!   an empty value is written `--size=`). File names are relative: every
//!   row runs in the folder where the sources were made.
//! - `SOURCE`: `-` for none, else the [`Source`] recipe that makes the
//!   image (and its backing file) the arguments name; `create` for none
//!   on the qcow2 `--size` rows whose image `create` also makes (size a
//!   multiple of 512, at most 64 MiB: [`MeasureCase::create_equivalent`]),
//!   which the agreement test creates with `preallocation=full` to check
//!   the fully allocated size against the file's length. A unit test
//!   holds the mark to the rule.

use crate::cases::Target;
use crate::recipes::Recipe;
pub use crate::recipes::{created, Step};
use std::fmt;

/// Calls `$callback! { rows }` with every row of the measure table, each
/// row written `Target ident "name" "arguments" source;`, after any tokens
/// given after the callback's name (`measure_cases!(cb, extra tokens)`
/// calls `cb! { extra tokens ; rows }`).
///
/// This macro body is the single definition of MEASURE_CASES.
#[macro_export]
macro_rules! measure_cases {
    ($callback:ident $(, $($extra:tt)*)?) => {
        $callback! {
            $($($extra)*)? ;
            Qcow2 qcow2_size_0 "qcow2-size-0" "-O qcow2 --size 0" -;
            Qcow2 qcow2_size_1b "qcow2-size-1b" "-O qcow2 --size 1" -;
            Qcow2 qcow2_size_511b "qcow2-size-511b" "-O qcow2 --size 511" -;
            Qcow2 qcow2_size_512b "qcow2-size-512b" "-O qcow2 --size 512" create;
            Qcow2 qcow2_size_513b "qcow2-size-513b" "-O qcow2 --size 513" -;
            Qcow2 qcow2_size_64k_minus_1 "qcow2-size-64k-minus-1" "-O qcow2 --size 65535" -;
            Qcow2 qcow2_size_64k "qcow2-size-64k" "-O qcow2 --size 64k" create;
            Qcow2 qcow2_size_64k_plus_1 "qcow2-size-64k-plus-1" "-O qcow2 --size 65537" -;
            Qcow2 qcow2_size_1000000b "qcow2-size-1000000b" "-O qcow2 --size 1000000" -;
            Qcow2 qcow2_size_1m "qcow2-size-1M" "-O qcow2 --size 1M" create;
            Qcow2 qcow2_size_64m "qcow2-size-64M" "-O qcow2 --size 64M" create;
            Qcow2 qcow2_size_1g "qcow2-size-1G" "-O qcow2 --size 1G" -;
            Qcow2 qcow2_size_1_5g "qcow2-size-1.5G" "-O qcow2 --size 1.5G" -;
            Qcow2 qcow2_size_1t "qcow2-size-1T" "-O qcow2 --size 1T" -;
            Qcow2 qcow2_size_16t "qcow2-size-16T" "-O qcow2 --size 16T" -;
            Qcow2 qcow2_size_256t "qcow2-size-256T" "-O qcow2 --size 256T" -;
            Qcow2 qcow2_size_1p "qcow2-size-1P" "-O qcow2 --size 1P" -;
            Qcow2 qcow2_size_2p_max "qcow2-size-2P-max" "-O qcow2 --size 2251799813685248" -;
            Qcow2 qcow2_err_size_2p_plus_1_too_large "qcow2-err-size-2P-plus-1-too-large" "-O qcow2 --size 2251799813685249" -;
            Qcow2 qcow2_err_size_int64max_too_large "qcow2-err-size-int64max-too-large" "-O qcow2 --size 9223372036854775807" -;
            Qcow2 qcow2_1g_cs_512 "qcow2-1G-cs-512" "-O qcow2 -o cluster_size=512 --size 1G" -;
            Qcow2 qcow2_1g_cs_1k "qcow2-1G-cs-1k" "-O qcow2 -o cluster_size=1k --size 1G" -;
            Qcow2 qcow2_1g_cs_2k "qcow2-1G-cs-2k" "-O qcow2 -o cluster_size=2k --size 1G" -;
            Qcow2 qcow2_1g_cs_4k "qcow2-1G-cs-4k" "-O qcow2 -o cluster_size=4k --size 1G" -;
            Qcow2 qcow2_1g_cs_8k "qcow2-1G-cs-8k" "-O qcow2 -o cluster_size=8k --size 1G" -;
            Qcow2 qcow2_1g_cs_16k "qcow2-1G-cs-16k" "-O qcow2 -o cluster_size=16k --size 1G" -;
            Qcow2 qcow2_1g_cs_32k "qcow2-1G-cs-32k" "-O qcow2 -o cluster_size=32k --size 1G" -;
            Qcow2 qcow2_1g_cs_64k "qcow2-1G-cs-64k" "-O qcow2 -o cluster_size=64k --size 1G" -;
            Qcow2 qcow2_1g_cs_128k "qcow2-1G-cs-128k" "-O qcow2 -o cluster_size=128k --size 1G" -;
            Qcow2 qcow2_1g_cs_256k "qcow2-1G-cs-256k" "-O qcow2 -o cluster_size=256k --size 1G" -;
            Qcow2 qcow2_1g_cs_512k "qcow2-1G-cs-512k" "-O qcow2 -o cluster_size=512k --size 1G" -;
            Qcow2 qcow2_1g_cs_1m "qcow2-1G-cs-1M" "-O qcow2 -o cluster_size=1M --size 1G" -;
            Qcow2 qcow2_1g_cs_2m "qcow2-1G-cs-2M" "-O qcow2 -o cluster_size=2M --size 1G" -;
            Qcow2 qcow2_1g_rb_1 "qcow2-1G-rb-1" "-O qcow2 -o refcount_bits=1 --size 1G" -;
            Qcow2 qcow2_1g_rb_2 "qcow2-1G-rb-2" "-O qcow2 -o refcount_bits=2 --size 1G" -;
            Qcow2 qcow2_1g_rb_4 "qcow2-1G-rb-4" "-O qcow2 -o refcount_bits=4 --size 1G" -;
            Qcow2 qcow2_1g_rb_8 "qcow2-1G-rb-8" "-O qcow2 -o refcount_bits=8 --size 1G" -;
            Qcow2 qcow2_1g_rb_16 "qcow2-1G-rb-16" "-O qcow2 -o refcount_bits=16 --size 1G" -;
            Qcow2 qcow2_1g_rb_32 "qcow2-1G-rb-32" "-O qcow2 -o refcount_bits=32 --size 1G" -;
            Qcow2 qcow2_1g_rb_64 "qcow2-1G-rb-64" "-O qcow2 -o refcount_bits=64 --size 1G" -;
            Qcow2 qcow2_1g_extl2_cs_16k "qcow2-1G-extl2-cs-16k" "-O qcow2 -o extended_l2=on,cluster_size=16k --size 1G" -;
            Qcow2 qcow2_1g_extl2_cs_32k "qcow2-1G-extl2-cs-32k" "-O qcow2 -o extended_l2=on,cluster_size=32k --size 1G" -;
            Qcow2 qcow2_1g_extl2_cs_64k "qcow2-1G-extl2-cs-64k" "-O qcow2 -o extended_l2=on,cluster_size=64k --size 1G" -;
            Qcow2 qcow2_1g_extl2_cs_512k "qcow2-1G-extl2-cs-512k" "-O qcow2 -o extended_l2=on,cluster_size=512k --size 1G" -;
            Qcow2 qcow2_1g_extl2_cs_2m "qcow2-1G-extl2-cs-2M" "-O qcow2 -o extended_l2=on,cluster_size=2M --size 1G" -;
            Qcow2 qcow2_1g_compat_0_10 "qcow2-1G-compat-0.10" "-O qcow2 -o compat=0.10 --size 1G" -;
            Qcow2 qcow2_1g_compat_1_1 "qcow2-1G-compat-1.1" "-O qcow2 -o compat=1.1 --size 1G" -;
            Qcow2 qcow2_1g_prealloc_off "qcow2-1G-prealloc-off" "-O qcow2 -o preallocation=off --size 1G" -;
            Qcow2 qcow2_1m_prealloc_off "qcow2-1M-prealloc-off" "-O qcow2 -o preallocation=off --size 1M" create;
            Qcow2 qcow2_1g_prealloc_metadata "qcow2-1G-prealloc-metadata" "-O qcow2 -o preallocation=metadata --size 1G" -;
            Qcow2 qcow2_1m_prealloc_metadata "qcow2-1M-prealloc-metadata" "-O qcow2 -o preallocation=metadata --size 1M" create;
            Qcow2 qcow2_1g_prealloc_falloc "qcow2-1G-prealloc-falloc" "-O qcow2 -o preallocation=falloc --size 1G" -;
            Qcow2 qcow2_1m_prealloc_falloc "qcow2-1M-prealloc-falloc" "-O qcow2 -o preallocation=falloc --size 1M" create;
            Qcow2 qcow2_1g_prealloc_full "qcow2-1G-prealloc-full" "-O qcow2 -o preallocation=full --size 1G" -;
            Qcow2 qcow2_1m_prealloc_full "qcow2-1M-prealloc-full" "-O qcow2 -o preallocation=full --size 1M" create;
            Qcow2 qcow2_1g_lazy_refcounts "qcow2-1G-lazy-refcounts" "-O qcow2 -o lazy_refcounts=on --size 1G" -;
            Qcow2 qcow2_1g_compression_type "qcow2-1G-compression-type" "-O qcow2 -o compression_type=zstd --size 1G" -;
            Qcow2 qcow2_1g_data_file "qcow2-1G-data-file" "-O qcow2 -o data_file=d.raw --size 1G" -;
            Qcow2 qcow2_1g_data_file_raw "qcow2-1G-data-file-raw" "-O qcow2 -o data_file=d.raw,data_file_raw=on --size 1G" -;
            Qcow2 qcow2_1g_backing_file "qcow2-1G-backing-file" "-O qcow2 -o backing_file=b.qcow2,backing_fmt=qcow2 --size 1G" -;
            Qcow2 qcow2_1g_encrypt_format_aes "qcow2-1G-encrypt-format-aes" "-O qcow2 -o encrypt.format=aes --size 1G" -;
            Qcow2 qcow2_1g_nocow "qcow2-1G-nocow" "-O qcow2 -o nocow=on --size 1G" -;
            Qcow2 qcow2_size_0_cs_512 "qcow2-size-0-cs-512" "-O qcow2 -o cluster_size=512 --size 0" -;
            Qcow2 qcow2_size_1b_cs_512 "qcow2-size-1b-cs-512" "-O qcow2 -o cluster_size=512 --size 1" -;
            Qcow2 qcow2_size_513b_cs_512 "qcow2-size-513b-cs-512" "-O qcow2 -o cluster_size=512 --size 513" -;
            Qcow2 qcow2_size_1m_cs_512 "qcow2-size-1M-cs-512" "-O qcow2 -o cluster_size=512 --size 1M" create;
            Qcow2 qcow2_size_128g_cs_512_max "qcow2-size-128G-cs-512-max" "-O qcow2 -o cluster_size=512 --size 128G" -;
            Qcow2 qcow2_size_1p_cs_2m "qcow2-size-1P-cs-2M" "-O qcow2 -o cluster_size=2M --size 1P" -;
            Qcow2 qcow2_size_1t_rb_64 "qcow2-size-1T-rb-64" "-O qcow2 -o refcount_bits=64 --size 1T" -;
            Qcow2 qcow2_size_1t_rb_1 "qcow2-size-1T-rb-1" "-O qcow2 -o refcount_bits=1 --size 1T" -;
            Qcow2 qcow2_size_1t_extl2 "qcow2-size-1T-extl2" "-O qcow2 -o extended_l2=on --size 1T" -;
            Qcow2 qcow2_size_1t_prealloc_full "qcow2-size-1T-prealloc-full" "-O qcow2 -o preallocation=full --size 1T" -;
            Qcow2 qcow2_size_64m_extl2_rb_64 "qcow2-size-64M-extl2-rb-64" "-O qcow2 -o extended_l2=on,refcount_bits=64 --size 64M" create;
            Qcow2 qcow2_size_1g_compat_0_10_cs_4k "qcow2-size-1G-compat-0.10-cs-4k" "-O qcow2 -o compat=0.10,cluster_size=4k --size 1G" -;
            Qcow2 qcow2_size_1g_multi_o "qcow2-size-1G-multi-o" "-O qcow2 -o cluster_size=4k -o refcount_bits=8 --size 1G" -;
            Qcow2 qcow2_err_128g_plus_64k_cs_512_too_large "qcow2-err-128G-plus-64k-cs-512-too-large" "-O qcow2 -o cluster_size=512 --size 137438953984" -;
            Raw raw_size_0 "raw-size-0" "--size 0" -;
            Raw raw_size_1b "raw-size-1b" "--size 1" -;
            Raw raw_size_511b "raw-size-511b" "--size 511" -;
            Raw raw_size_512b "raw-size-512b" "--size 512" -;
            Raw raw_size_513b "raw-size-513b" "--size 513" -;
            Raw raw_size_1000000b "raw-size-1000000b" "--size 1000000" -;
            Raw raw_size_1m "raw-size-1M" "--size 1M" -;
            Raw raw_size_1g "raw-size-1G" "--size 1G" -;
            Raw raw_size_1t "raw-size-1T" "--size 1T" -;
            Raw raw_size_1p "raw-size-1P" "--size 1P" -;
            Raw raw_size_8e_minus_512 "raw-size-8E-minus-512" "--size 9223372036854775296" -;
            Raw raw_size_1g_explicit_o "raw-size-1G-explicit-O" "-O raw --size 1G" -;
            Raw raw_size_1g_prealloc_full "raw-size-1G-prealloc-full" "-O raw -o preallocation=full --size 1G" -;
            Raw raw_size_1g_prealloc_bogus_ignored "raw-size-1G-prealloc-bogus-ignored" "-O raw -o preallocation=xx --size 1G" -;
            Luks luks_size_1g "luks-size-1G" "--object secret,id=s0,data=pw -O luks -o key-secret=s0,iter-time=10 --size 1G" -;
            Luks luks_size_0 "luks-size-0" "--object secret,id=s0,data=pw -O luks -o key-secret=s0,iter-time=10 --size 0" -;
            Luks luks_size_1000b "luks-size-1000b" "--object secret,id=s0,data=pw -O luks -o key-secret=s0,iter-time=10 --size 1000" -;
            Luks luks_size_1m "luks-size-1M" "--object secret,id=s0,data=pw -O luks -o key-secret=s0,iter-time=10 --size 1M" -;
            Luks luks_size_1g_aes_128 "luks-size-1G-aes-128" "--object secret,id=s0,data=pw -O luks -o key-secret=s0,iter-time=10,cipher-alg=aes-128 --size 1G" -;
            Luks luks_size_1g_aes_192 "luks-size-1G-aes-192" "--object secret,id=s0,data=pw -O luks -o key-secret=s0,iter-time=10,cipher-alg=aes-192 --size 1G" -;
            Luks luks_size_1g_cbc "luks-size-1G-cbc" "--object secret,id=s0,data=pw -O luks -o key-secret=s0,iter-time=10,cipher-mode=cbc,ivgen-alg=essiv,ivgen-hash-alg=sha256 --size 1G" -;
            Luks luks_size_1g_sha512 "luks-size-1G-sha512" "--object secret,id=s0,data=pw -O luks -o key-secret=s0,iter-time=10,hash-alg=sha512 --size 1G" -;
            Luks luks_size_1g_prealloc_full "luks-size-1G-prealloc-full" "--object secret,id=s0,data=pw -O luks -o key-secret=s0,iter-time=10,preallocation=full --size 1G" -;
            Qcow2 qcow2_size_1g_luks "qcow2-size-1G-luks" "--object secret,id=s0,data=pw -O qcow2 -o encrypt.format=luks,encrypt.key-secret=s0,encrypt.iter-time=10 --size 1G" -;
            Qcow2 qcow2_size_1g_luks_cs_512 "qcow2-size-1G-luks-cs-512" "--object secret,id=s0,data=pw -O qcow2 -o encrypt.format=luks,cluster_size=512,encrypt.key-secret=s0,encrypt.iter-time=10 --size 1G" -;
            Qcow2 qcow2_size_1g_luks_cs_2m "qcow2-size-1G-luks-cs-2M" "--object secret,id=s0,data=pw -O qcow2 -o encrypt.format=luks,cluster_size=2M,encrypt.key-secret=s0,encrypt.iter-time=10 --size 1G" -;
            Qcow2 qcow2_size_1g_luks_aes_128 "qcow2-size-1G-luks-aes-128" "--object secret,id=s0,data=pw -O qcow2 -o encrypt.format=luks,encrypt.cipher-alg=aes-128,encrypt.key-secret=s0,encrypt.iter-time=10 --size 1G" -;
            Luks luks_err_no_secret "luks-err-no-secret" "-O luks --size 1G" -;
            Qcow2 qcow2_err_luks_no_secret "qcow2-err-luks-no-secret" "-O qcow2 -o encrypt.format=luks --size 1G" -;
            Qcow2 qcow2_json_size_1g "qcow2-json-size-1G" "--output=json -O qcow2 --size 1G" -;
            Qcow2 qcow2_human_explicit_size_1g "qcow2-human-explicit-size-1G" "--output human -O qcow2 --size 1G" -;
            Qcow2 qcow2_json_size_0 "qcow2-json-size-0" "--output=json -O qcow2 --size 0" -;
            Raw raw_json_size_1g "raw-json-size-1G" "--output=json --size 1G" -;
            Raw raw_human_explicit_size_1g "raw-human-explicit-size-1G" "--output human --size 1G" -;
            Qcow2 qcow2_json_size_1g_extl2 "qcow2-json-size-1G-extl2" "--output=json -O qcow2 -o extended_l2=on --size 1G" -;
            Qcow2 qcow2_json_size_1p "qcow2-json-size-1P" "--output=json -O qcow2 --size 1P" -;
            Raw raw_err_neither "raw-err-neither" "" -;
            Raw raw_err_f_without_file "raw-err-f-without-file" "-f raw --size 1G" -;
            Raw raw_err_l_without_file "raw-err-l-without-file" "-l s --size 1G" -;
            Raw raw_err_image_opts_without_file "raw-err-image-opts-without-file" "--image-opts --size 1G" -;
            Raw raw_err_size_garbage "raw-err-size-garbage" "--size abc" -;
            Raw raw_err_size_empty "raw-err-size-empty" "--size=" -;
            Raw raw_err_size_negative "raw-err-size-negative" "--size -1" -;
            Raw raw_err_size_9e "raw-err-size-9E" "--size 9E" -;
            Raw raw_err_size_8e "raw-err-size-8E" "--size 8E" -;
            Raw raw_err_size_1e3 "raw-err-size-1e3" "--size 1e3" -;
            Raw raw_err_output_xml "raw-err-output-xml" "--output xml --size 1G" -;
            Raw raw_err_output_json_case "raw-err-output-JSON-case" "--output JSON --size 1G" -;
            Other other_err_unknown_o "other-err-unknown-O" "-O foo --size 1G" -;
            Other other_err_o_vmdk_no_measure "other-err-O-vmdk-no-measure" "-O vmdk --size 1G" -;
            Other other_err_o_vpc_no_measure "other-err-O-vpc-no-measure" "-O vpc --size 1G" -;
            Other other_err_o_vhdx_no_measure "other-err-O-vhdx-no-measure" "-O vhdx --size 1G" -;
            Other other_err_o_qcow_no_measure "other-err-O-qcow-no-measure" "-O qcow --size 1G" -;
            Other other_err_o_qed_no_measure "other-err-O-qed-no-measure" "-O qed --size 1G" -;
            Other other_err_o_vdi_no_measure "other-err-O-vdi-no-measure" "-O vdi --size 1G" -;
            Other other_err_o_bochs_no_create "other-err-O-bochs-no-create" "-O bochs --size 1G" -;
            Other other_err_o_dmg_no_create "other-err-O-dmg-no-create" "-O dmg --size 1G" -;
            Qcow2 qcow2_err_o_unknown_param "qcow2-err-o-unknown-param" "-O qcow2 -o foo=bar --size 1G" -;
            Qcow2 qcow2_err_o_help "qcow2-err-o-help" "-O qcow2 -o help --size 1G" -;
            Raw raw_err_o_raw_cluster_size "raw-err-o-raw-cluster-size" "-o cluster_size=4k --size 1G" -;
            Qcow2 qcow2_err_cs_1000 "qcow2-err-cs-1000" "-O qcow2 -o cluster_size=1000 --size 1G" -;
            Qcow2 qcow2_err_cs_256 "qcow2-err-cs-256" "-O qcow2 -o cluster_size=256 --size 1G" -;
            Qcow2 qcow2_err_cs_4m "qcow2-err-cs-4M" "-O qcow2 -o cluster_size=4M --size 1G" -;
            Qcow2 qcow2_err_cs_abc "qcow2-err-cs-abc" "-O qcow2 -o cluster_size=abc --size 1G" -;
            Qcow2 qcow2_err_extl2_cs_4k "qcow2-err-extl2-cs-4k" "-O qcow2 -o extended_l2=on,cluster_size=4k --size 1G" -;
            Qcow2 qcow2_err_extl2_bad_bool "qcow2-err-extl2-bad-bool" "-O qcow2 -o extended_l2=maybe --size 1G" -;
            Qcow2 qcow2_err_compat_v3 "qcow2-err-compat-v3" "-O qcow2 -o compat=v3 --size 1G" -;
            Qcow2 qcow2_err_rb_3 "qcow2-err-rb-3" "-O qcow2 -o refcount_bits=3 --size 1G" -;
            Qcow2 qcow2_err_rb_128 "qcow2-err-rb-128" "-O qcow2 -o refcount_bits=128 --size 1G" -;
            Qcow2 qcow2_err_compat_0_10_rb_8 "qcow2-err-compat-0.10-rb-8" "-O qcow2 -o compat=0.10,refcount_bits=8 --size 1G" -;
            Qcow2 qcow2_err_prealloc_bogus "qcow2-err-prealloc-bogus" "-O qcow2 -o preallocation=xx --size 1G" -;
            Raw raw_err_o_size_only "raw-err-o-size-only" "-o size=1G" -;
            Raw raw_err_unknown_option_x "raw-err-unknown-option-x" "-x --size 1G" -;
            Raw raw_err_missing_arg_size "raw-err-missing-arg-size" "--size" -;
            Raw raw_short_s_option "raw-short-s-option" "-s 1G" -;
            Raw raw_help "raw-help" "--help" -;
            Raw raw_help_short_after_size "raw-help-short-after-size" "--size 1G -h" -;
            Qcow2 qcow2_from_qcow2_1m_default "qcow2-from-qcow2-1M-default" "-O qcow2 1M-default.qcow2" Qcow2Empty1M;
            Raw raw_from_qcow2_1m_default "raw-from-qcow2-1M-default" "-O raw 1M-default.qcow2" Qcow2Empty1M;
            Qcow2 qcow2_from_qcow2_64m_default "qcow2-from-qcow2-64M-default" "-O qcow2 64M-default.qcow2" Qcow2Empty64M;
            Raw raw_from_qcow2_64m_default "raw-from-qcow2-64M-default" "64M-default.qcow2" Qcow2Empty64M;
            Qcow2 qcow2_from_qcow2_1g_default "qcow2-from-qcow2-1G-default" "-O qcow2 1G-default.qcow2" Qcow2Empty1G;
            Raw raw_from_qcow2_1g_default "raw-from-qcow2-1G-default" "-O raw 1G-default.qcow2" Qcow2Empty1G;
            Qcow2 qcow2_from_qcow2_1g_cs_512 "qcow2-from-qcow2-1G-cs-512" "-O qcow2 1G-cs-512.qcow2" Qcow2Cs512;
            Raw raw_from_qcow2_1g_cs_512 "raw-from-qcow2-1G-cs-512" "-O raw 1G-cs-512.qcow2" Qcow2Cs512;
            Qcow2 qcow2_from_qcow2_1g_cs_4k "qcow2-from-qcow2-1G-cs-4k" "-O qcow2 1G-cs-4k.qcow2" Qcow2Cs4k;
            Qcow2 qcow2_from_qcow2_1g_cs_2m "qcow2-from-qcow2-1G-cs-2M" "-O qcow2 1G-cs-2M.qcow2" Qcow2Cs2M;
            Raw raw_from_qcow2_1g_cs_2m "raw-from-qcow2-1G-cs-2M" "-O raw 1G-cs-2M.qcow2" Qcow2Cs2M;
            Qcow2 qcow2_from_qcow2_1g_rb_1 "qcow2-from-qcow2-1G-rb-1" "-O qcow2 1G-rb-1.qcow2" Qcow2Rb1;
            Qcow2 qcow2_from_qcow2_1g_rb_64 "qcow2-from-qcow2-1G-rb-64" "-O qcow2 1G-rb-64.qcow2" Qcow2Rb64;
            Qcow2 qcow2_from_qcow2_1g_extended_l2 "qcow2-from-qcow2-1G-extended-l2" "-O qcow2 1G-extended-l2.qcow2" Qcow2ExtL2;
            Qcow2 qcow2_from_qcow2_1g_compat_v2 "qcow2-from-qcow2-1G-compat-v2" "-O qcow2 1G-compat-v2.qcow2" Qcow2V2;
            Raw raw_from_qcow2_1g_compat_v2 "raw-from-qcow2-1G-compat-v2" "-O raw 1G-compat-v2.qcow2" Qcow2V2;
            Qcow2 qcow2_from_qcow2_1m_prealloc_metadata "qcow2-from-qcow2-1M-prealloc-metadata" "-O qcow2 1M-prealloc-metadata.qcow2" Qcow2PreallocMetadata;
            Raw raw_from_qcow2_1m_prealloc_metadata "raw-from-qcow2-1M-prealloc-metadata" "-O raw 1M-prealloc-metadata.qcow2" Qcow2PreallocMetadata;
            Qcow2 qcow2_from_qcow2_1m_prealloc_full "qcow2-from-qcow2-1M-prealloc-full" "-O qcow2 1M-prealloc-full.qcow2" Qcow2PreallocFull;
            Raw raw_from_qcow2_1m_prealloc_full "raw-from-qcow2-1M-prealloc-full" "-O raw 1M-prealloc-full.qcow2" Qcow2PreallocFull;
            Qcow2 qcow2_from_qcow2_1p_empty "qcow2-from-qcow2-1P-empty" "-O qcow2 1P.qcow2" Qcow2Empty1P;
            Qcow2 qcow2_from_qcow2_1p_empty_cs_512 "qcow2-from-qcow2-1P-empty-cs-512" "-O qcow2 -o cluster_size=512 1P.qcow2" Qcow2Empty1P;
            Raw raw_from_qcow2_1p_empty "raw-from-qcow2-1P-empty" "-O raw 1P.qcow2" Qcow2Empty1P;
            Qcow2 qcow2_from_qcow2_data "qcow2-from-qcow2-data" "-O qcow2 data.qcow2" Qcow2Data;
            Qcow2 qcow2_from_qcow2_data_cs_512 "qcow2-from-qcow2-data-cs-512" "-O qcow2 -o cluster_size=512 data.qcow2" Qcow2Data;
            Qcow2 qcow2_from_qcow2_data_cs_4k "qcow2-from-qcow2-data-cs-4k" "-O qcow2 -o cluster_size=4k data.qcow2" Qcow2Data;
            Qcow2 qcow2_from_qcow2_data_cs_2m "qcow2-from-qcow2-data-cs-2M" "-O qcow2 -o cluster_size=2M data.qcow2" Qcow2Data;
            Qcow2 qcow2_from_qcow2_data_extl2 "qcow2-from-qcow2-data-extl2" "-O qcow2 -o extended_l2=on data.qcow2" Qcow2Data;
            Qcow2 qcow2_from_qcow2_data_rb_64 "qcow2-from-qcow2-data-rb-64" "-O qcow2 -o refcount_bits=64 data.qcow2" Qcow2Data;
            Qcow2 qcow2_from_qcow2_data_compat_0_10 "qcow2-from-qcow2-data-compat-0.10" "-O qcow2 -o compat=0.10 data.qcow2" Qcow2Data;
            Qcow2 qcow2_from_qcow2_data_prealloc_metadata "qcow2-from-qcow2-data-prealloc-metadata" "-O qcow2 -o preallocation=metadata data.qcow2" Qcow2Data;
            Qcow2 qcow2_from_qcow2_data_prealloc_full "qcow2-from-qcow2-data-prealloc-full" "-O qcow2 -o preallocation=full data.qcow2" Qcow2Data;
            Qcow2 qcow2_from_qcow2_data_backing_file_opt "qcow2-from-qcow2-data-backing-file-opt" "-O qcow2 -o backing_file=elsewhere.qcow2,backing_fmt=qcow2 data.qcow2" Qcow2Data;
            Qcow2 qcow2_from_qcow2_data_size_opt_ignored "qcow2-from-qcow2-data-size-opt-ignored" "-O qcow2 -o size=1G data.qcow2" Qcow2Data;
            Qcow2 qcow2_from_qcow2_data_luks "qcow2-from-qcow2-data-luks" "--object secret,id=s0,data=pw -O qcow2 -o encrypt.format=luks,encrypt.key-secret=s0,encrypt.iter-time=10 data.qcow2" Qcow2Data;
            Raw raw_from_qcow2_data "raw-from-qcow2-data" "-O raw data.qcow2" Qcow2Data;
            Raw raw_from_qcow2_data_as_raw "raw-from-qcow2-data-as-raw" "-f raw data.qcow2" Qcow2Data;
            Luks luks_from_qcow2_data "luks-from-qcow2-data" "--object secret,id=s0,data=pw -O luks -o key-secret=s0,iter-time=10 data.qcow2" Qcow2Data;
            Qcow2 qcow2_json_from_qcow2_data "qcow2-json-from-qcow2-data" "--output=json -O qcow2 data.qcow2" Qcow2Data;
            Qcow2 qcow2_from_qcow2_data_format "qcow2-from-qcow2-data-format" "-f qcow2 -O qcow2 data.qcow2" Qcow2Data;
            Qcow2 qcow2_from_qcow2_data_force_share "qcow2-from-qcow2-data-force-share" "-U -O qcow2 data.qcow2" Qcow2Data;
            Qcow2 qcow2_from_qcow2_data_image_opts "qcow2-from-qcow2-data-image-opts" "--image-opts -O qcow2 driver=qcow2,file.filename=data.qcow2" Qcow2Data;
            Qcow2 qcow2_from_qcow2_zeros "qcow2-from-qcow2-zeros" "-O qcow2 zeros.qcow2" Qcow2Zeros;
            Qcow2 qcow2_from_qcow2_zeros_cs_2m "qcow2-from-qcow2-zeros-cs-2M" "-O qcow2 -o cluster_size=2M zeros.qcow2" Qcow2Zeros;
            Qcow2 qcow2_from_qcow2_overlay "qcow2-from-qcow2-overlay" "-O qcow2 overlay.qcow2" Qcow2Overlay;
            Qcow2 qcow2_from_qcow2_overlay_cs_512 "qcow2-from-qcow2-overlay-cs-512" "-O qcow2 -o cluster_size=512 overlay.qcow2" Qcow2Overlay;
            Raw raw_from_qcow2_overlay "raw-from-qcow2-overlay" "-O raw overlay.qcow2" Qcow2Overlay;
            Qcow2 qcow2_from_qcow2_compressed "qcow2-from-qcow2-compressed" "-O qcow2 compressed.qcow2" Qcow2Compressed;
            Qcow2 qcow2_from_qcow2_compressed_cs_512 "qcow2-from-qcow2-compressed-cs-512" "-O qcow2 -o cluster_size=512 compressed.qcow2" Qcow2Compressed;
            Qcow2 qcow2_from_qcow2_cs_4k_data "qcow2-from-qcow2-cs-4k-data" "-O qcow2 cs-4k-data.qcow2" Qcow2Cs4kData;
            Qcow2 qcow2_from_qcow2_cs_4k_data_cs_4k "qcow2-from-qcow2-cs-4k-data-cs-4k" "-O qcow2 -o cluster_size=4k cs-4k-data.qcow2" Qcow2Cs4kData;
            Qcow2 qcow2_from_qcow2_subclusters "qcow2-from-qcow2-subclusters" "-O qcow2 subclusters.qcow2" Qcow2Subclusters;
            Qcow2 qcow2_from_qcow2_subclusters_cs_16k "qcow2-from-qcow2-subclusters-cs-16k" "-O qcow2 -o cluster_size=16k subclusters.qcow2" Qcow2Subclusters;
            Qcow2 qcow2_from_qcow2_bitmaps "qcow2-from-qcow2-bitmaps" "-O qcow2 bitmaps.qcow2" Qcow2Bitmaps;
            Qcow2 qcow2_from_qcow2_bitmaps_cs_512 "qcow2-from-qcow2-bitmaps-cs-512" "-O qcow2 -o cluster_size=512 bitmaps.qcow2" Qcow2Bitmaps;
            Qcow2 qcow2_from_qcow2_bitmaps_cs_2m "qcow2-from-qcow2-bitmaps-cs-2M" "-O qcow2 -o cluster_size=2M bitmaps.qcow2" Qcow2Bitmaps;
            Qcow2 qcow2_from_qcow2_bitmaps_target_v2 "qcow2-from-qcow2-bitmaps-target-v2" "-O qcow2 -o compat=0.10 bitmaps.qcow2" Qcow2Bitmaps;
            Qcow2 qcow2_json_from_qcow2_bitmaps "qcow2-json-from-qcow2-bitmaps" "--output=json -O qcow2 bitmaps.qcow2" Qcow2Bitmaps;
            Raw raw_from_qcow2_bitmaps "raw-from-qcow2-bitmaps" "-O raw bitmaps.qcow2" Qcow2Bitmaps;
            Qcow2 qcow2_from_qcow2_v2_data "qcow2-from-qcow2-v2-data" "-O qcow2 v2-data.qcow2" Qcow2V2Data;
            Qcow2 qcow2_from_qcow2_snapshot "qcow2-from-qcow2-snapshot" "-O qcow2 snapshot.qcow2" Qcow2Snapshot;
            Qcow2 qcow2_from_qcow2_snapshot_l_name "qcow2-from-qcow2-snapshot-l-name" "-O qcow2 -l snap1 snapshot.qcow2" Qcow2Snapshot;
            Qcow2 qcow2_from_qcow2_snapshot_l_id "qcow2-from-qcow2-snapshot-l-id" "-O qcow2 -l 1 snapshot.qcow2" Qcow2Snapshot;
            Qcow2 qcow2_from_qcow2_snapshot_l_opts_name "qcow2-from-qcow2-snapshot-l-opts-name" "-O qcow2 -l snapshot.name=snap1 snapshot.qcow2" Qcow2Snapshot;
            Qcow2 qcow2_from_qcow2_snapshot_l_opts_id "qcow2-from-qcow2-snapshot-l-opts-id" "-O qcow2 -l snapshot.id=1 snapshot.qcow2" Qcow2Snapshot;
            Raw raw_from_qcow2_snapshot_l_name "raw-from-qcow2-snapshot-l-name" "-O raw -l snap1 snapshot.qcow2" Qcow2Snapshot;
            Raw raw_err_snapshot_missing "raw-err-snapshot-missing" "-l nope snapshot.qcow2" Qcow2Snapshot;
            Qcow2 qcow2_err_snapshot_missing_id "qcow2-err-snapshot-missing-id" "-O qcow2 -l snapshot.id=7 snapshot.qcow2" Qcow2Snapshot;
            Raw raw_err_snapshot_bad_param "raw-err-snapshot-bad-param" "-l snapshot.foo=1 snapshot.qcow2" Qcow2Snapshot;
            Raw raw_err_snapshot_on_raw "raw-err-snapshot-on-raw" "-l s full-1M.raw" RawFull1M;
            Qcow2 qcow2_from_vmdk_64m_default "qcow2-from-vmdk-64M-default" "-O qcow2 64M-default.vmdk" VmdkSparse64M;
            Raw raw_from_vmdk_64m_default "raw-from-vmdk-64M-default" "-O raw 64M-default.vmdk" VmdkSparse64M;
            Qcow2 qcow2_from_vmdk_1g_stream_optimized "qcow2-from-vmdk-1G-stream-optimized" "-O qcow2 1G-stream-optimized.vmdk" VmdkStream1G;
            Raw raw_from_vmdk_1g_stream_optimized "raw-from-vmdk-1G-stream-optimized" "-O raw 1G-stream-optimized.vmdk" VmdkStream1G;
            Qcow2 qcow2_from_vmdk_1g_monolithic_sparse "qcow2-from-vmdk-1G-monolithic-sparse" "-O qcow2 1G-monolithic-sparse.vmdk" VmdkMonolithic1G;
            Raw raw_from_vmdk_1g_monolithic_sparse "raw-from-vmdk-1G-monolithic-sparse" "-O raw 1G-monolithic-sparse.vmdk" VmdkMonolithic1G;
            Qcow2 qcow2_from_vmdk_data "qcow2-from-vmdk-data" "-O qcow2 data.vmdk" VmdkData;
            Qcow2 qcow2_from_vmdk_data_cs_2m "qcow2-from-vmdk-data-cs-2M" "-O qcow2 -o cluster_size=2M data.vmdk" VmdkData;
            Qcow2 qcow2_from_vhd_64m_default "qcow2-from-vhd-64M-default" "-O qcow2 64M-default.vhd" VpcDynamic64M;
            Raw raw_from_vhd_64m_default "raw-from-vhd-64M-default" "-O raw 64M-default.vhd" VpcDynamic64M;
            Raw raw_from_vhd_16m_fixed "raw-from-vhd-16M-fixed" "-O raw 16M-fixed.vhd" VpcFixed16M;
            Qcow2 qcow2_from_vhdx_64m_default "qcow2-from-vhdx-64M-default" "-O qcow2 64M-default.vhdx" Vhdx64M;
            Raw raw_from_vhdx_64m_default "raw-from-vhdx-64M-default" "-O raw 64M-default.vhdx" Vhdx64M;
            Qcow2 qcow2_from_vhdx_1g_block_16m "qcow2-from-vhdx-1G-block-16M" "-O qcow2 1G-block-16M.vhdx" VhdxBlock16M;
            Raw raw_from_vhdx_1g_block_16m "raw-from-vhdx-1G-block-16M" "-O raw 1G-block-16M.vhdx" VhdxBlock16M;
            Raw raw_from_raw_1g_default "raw-from-raw-1G-default" "-O raw 1G-default.img" RawCreated1G;
            Qcow2 qcow2_from_raw_full_1m "qcow2-from-raw-full-1M" "-O qcow2 full-1M.raw" RawFull1M;
            Qcow2 qcow2_from_raw_full_1m_cs_512 "qcow2-from-raw-full-1M-cs-512" "-O qcow2 -o cluster_size=512 full-1M.raw" RawFull1M;
            Raw raw_from_raw_full_1m "raw-from-raw-full-1M" "-O raw full-1M.raw" RawFull1M;
            Qcow2 qcow2_json_from_raw_full_1m "qcow2-json-from-raw-full-1M" "--output=json -O qcow2 full-1M.raw" RawFull1M;
            Luks luks_from_raw_full_1m "luks-from-raw-full-1M" "--object secret,id=s0,data=pw -O luks -o key-secret=s0,iter-time=10 full-1M.raw" RawFull1M;
            Qcow2 qcow2_from_raw_hole_1000b "qcow2-from-raw-hole-1000b" "-O qcow2 hole-1000.raw" RawHole1000;
            Raw raw_from_raw_hole_1000b "raw-from-raw-hole-1000b" "-O raw hole-1000.raw" RawHole1000;
            Qcow2 qcow2_from_raw_empty "qcow2-from-raw-empty" "-O qcow2 empty.raw" RawEmpty;
            Raw raw_from_raw_empty "raw-from-raw-empty" "-O raw empty.raw" RawEmpty;
            Raw raw_from_raw_odd_1000000b "raw-from-raw-odd-1000000b" "-O raw odd-1000000.raw" RawOdd;
            Qcow2 qcow2_from_raw_odd_1000000b "qcow2-from-raw-odd-1000000b" "-O qcow2 odd-1000000.raw" RawOdd;
            Raw raw_err_size_and_file "raw-err-size-and-file" "--size 1G data.qcow2" Qcow2Data;
            Raw raw_err_two_files "raw-err-two-files" "data.qcow2 data.qcow2" Qcow2Data;
            Raw raw_err_file_missing "raw-err-file-missing" "missing.qcow2" -;
            Raw raw_err_f_qcow2_on_raw "raw-err-f-qcow2-on-raw" "-f qcow2 full-1M.raw" RawFull1M;
            Raw raw_err_image_opts_and_format "raw-err-image-opts-and-format" "--image-opts -f qcow2 driver=qcow2,file.filename=data.qcow2" Qcow2Data;
            Other other_err_o_foo_on_image "other-err-O-foo-on-image" "-O foo data.qcow2" Qcow2Data;
            Other other_err_o_foo_missing_file "other-err-O-foo-missing-file" "-O foo missing.qcow2" -;
            Other other_err_o_vmdk_from_image "other-err-O-vmdk-from-image" "-O vmdk data.qcow2" Qcow2Data;
            Qcow2 qcow2_err_prealloc_bogus_from_image "qcow2-err-prealloc-bogus-from-image" "-O qcow2 -o preallocation=xx data.qcow2" Qcow2Data;
        }
    };
}

/// The source of a row: `-` and `create` are none, anything else names a
/// [`Source`].
macro_rules! row_source {
    (-) => {
        None
    };
    (create) => {
        None
    };
    ($source:ident) => {
        Some(Source::$source)
    };
}

/// Whether a row's source is the `create` mark.
macro_rules! row_agrees {
    (create) => {
        true
    };
    ($source:tt) => {
        false
    };
}

/// Builds [`MEASURE_CASES`] from the rows of [`measure_cases!`](crate::measure_cases).
macro_rules! measure_table {
    (; $($target:ident $ident:ident $name:literal $args:literal $source:tt;)*) => {
        /// Every row of the measure table, in table order.
        pub static MEASURE_CASES: &[MeasureCase] = &[
            $(MeasureCase {
                target: MeasureTarget::$target,
                ident: stringify!($ident),
                name: $name,
                args: $args,
                source: row_source!($source),
                agrees_with_create: row_agrees!($source),
            },)*
        ];
    };
}

measure_cases!(measure_table);

/// The output formats of the table: what `-O` asks qemu-img to measure for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MeasureTarget {
    /// qcow2 (`-O qcow2`).
    Qcow2,
    /// raw, qemu-img's default output format.
    Raw,
    /// A LUKS volume (`-O luks`).
    Luks,
    /// A format qemu-img cannot measure (vmdk, vpc, ...), cannot create
    /// (bochs, dmg) or does not know (`foo`): errors only.
    Other,
}

impl MeasureTarget {
    /// Every target, in table order.
    pub const ALL: [MeasureTarget; 4] =
        [MeasureTarget::Qcow2, MeasureTarget::Raw, MeasureTarget::Luks, MeasureTarget::Other];

    /// The target's name: its baseline folder and its rows' name prefix.
    pub fn name(self) -> &'static str {
        match self {
            MeasureTarget::Qcow2 => "qcow2",
            MeasureTarget::Raw => "raw",
            MeasureTarget::Luks => "luks",
            MeasureTarget::Other => "other",
        }
    }
}

impl fmt::Display for MeasureTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One row of the table: a measure command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MeasureCase {
    /// The output format.
    pub target: MeasureTarget,
    /// The row's test identifier (`qcow2_size_1g`).
    pub ident: &'static str,
    /// The case name, target first (`qcow2-size-1G`): unique in the table.
    pub name: &'static str,
    /// What follows `measure` on the command line, split on whitespace.
    pub args: &'static str,
    /// The image the arguments name, when there is one to make.
    pub source: Option<Source>,
    /// Whether the row is marked `create`: the agreement test creates its
    /// image ([`MeasureCase::create_equivalent`]).
    pub agrees_with_create: bool,
}

impl MeasureCase {
    /// The test identifier the name implies (`qcow2_size_1_5g`).
    pub fn expected_ident(&self) -> String {
        self.name.to_ascii_lowercase().replace(['-', '.'], "_")
    }

    /// The arguments after the program name: `measure` and the row's.
    pub fn measure_args(&self) -> Vec<String> {
        std::iter::once("measure").chain(self.args.split_whitespace()).map(String::from).collect()
    }

    /// Whether the row measures a `--size` alone, with no source image.
    pub fn is_size_only(&self) -> bool {
        self.source.is_none() && self.args.split_whitespace().any(|a| a == "--size")
    }

    /// The `-o` options (empty for none) and the size of the `create -f
    /// qcow2` that makes the image a qcow2 `--size` row measures: rows of
    /// the form `-O qcow2 [-o OPTIONS] --size SIZE` whose size `create`
    /// takes (a multiple of 512) and whose image is small enough to write
    /// preallocated in a test (at most 64 MiB). Not size 0: qemu-img's own
    /// create of an empty qcow2 gives its L1 table a cluster that measure
    /// does not count (10.0.2: a 262144-byte file, `fully allocated size:
    /// 196608`; 2048 and 1536 with 512-byte clusters), so the two agree
    /// only from the first byte of guest data.
    pub fn create_equivalent(&self) -> Option<(&'static str, &'static str)> {
        if self.target != MeasureTarget::Qcow2 || self.source.is_some() {
            return None;
        }
        let words: Vec<&'static str> = self.args.split_whitespace().collect();
        let (options, size) = match words[..] {
            ["-O", "qcow2", "--size", size] => ("", size),
            ["-O", "qcow2", "-o", options, "--size", size] => (options, size),
            _ => return None,
        };
        let bytes = plain_size(size)?;
        (bytes > 0 && bytes % 512 == 0 && bytes <= MAX_AGREEMENT_SIZE).then_some((options, size))
    }

    /// The value of `-O`, if the row gives one (the last, as getopt keeps).
    pub fn output_format(&self) -> Option<&'static str> {
        let words: Vec<&'static str> = self.args.split_whitespace().collect();
        words.windows(2).filter(|w| w[0] == "-O").map(|w| w[1]).next_back()
    }
}

/// The largest image the agreement test writes preallocated, per row.
pub const MAX_AGREEMENT_SIZE: u64 = 64 << 20;

/// A size written as digits and at most one binary suffix (`64k`, `1M`),
/// in bytes; `None` for anything else (fractions, `1e3`, overflow).
fn plain_size(text: &str) -> Option<u64> {
    let digits = text.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let shift = match &text[digits.len()..] {
        "" => 0,
        "k" | "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        "P" => 50,
        _ => return None,
    };
    digits.parse::<u64>().ok()?.checked_mul(1 << shift)
}

/// The row whose test identifier is `ident`.
pub fn measure_by_ident(ident: &str) -> Option<&'static MeasureCase> {
    MEASURE_CASES.iter().find(|c| c.ident == ident)
}

/// A source image: made by a recipe of qemu-img, qemu-io and truncate
/// steps ([`Source::steps`]), in a scratch folder, with relative names.
/// Every source is made only of things whose measure does not depend on
/// the host file system: qcow2, vmdk and vpc metadata, data written whole
/// (whole clusters, a raw file written end to end), raw files truncated to
/// holes. Not here: fallocated or partly written raw files, fixed VHDs
/// and vpc data blocks (their data follows a 512-byte sector bitmap, so
/// what the host reports as data depends on its block size).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    /// CREATE_CASES qcow2 `1M-default`.
    Qcow2Empty1M,
    /// CREATE_CASES qcow2 `64M-default`.
    Qcow2Empty64M,
    /// CREATE_CASES qcow2 `1G-default`.
    Qcow2Empty1G,
    /// CREATE_CASES qcow2 `1G-cs-512`.
    Qcow2Cs512,
    /// CREATE_CASES qcow2 `1G-cs-4k`.
    Qcow2Cs4k,
    /// CREATE_CASES qcow2 `1G-cs-2M`.
    Qcow2Cs2M,
    /// CREATE_CASES qcow2 `1G-rb-1`.
    Qcow2Rb1,
    /// CREATE_CASES qcow2 `1G-rb-64`.
    Qcow2Rb64,
    /// CREATE_CASES qcow2 `1G-extended-l2`.
    Qcow2ExtL2,
    /// CREATE_CASES qcow2 `1G-compat-v2`.
    Qcow2V2,
    /// CREATE_CASES qcow2 `1M-prealloc-metadata`: clusters allocated over
    /// holes of the file, which read as zeros.
    Qcow2PreallocMetadata,
    /// CREATE_CASES qcow2 `1M-prealloc-full`: zeros written, data.
    Qcow2PreallocFull,
    /// CREATE_CASES vmdk `64M-default` (monolithicSparse).
    VmdkSparse64M,
    /// CREATE_CASES vmdk `1G-stream-optimized`.
    VmdkStream1G,
    /// CREATE_CASES vmdk `1G-monolithic-sparse`.
    VmdkMonolithic1G,
    /// CREATE_CASES vhd `64M-default` (dynamic).
    VpcDynamic64M,
    /// CREATE_CASES vhd `16M-fixed`: measured as `-O raw` only (its
    /// length; `-O qcow2` would count what the host reports as data).
    VpcFixed16M,
    /// CREATE_CASES vhdx `64M-default`.
    Vhdx64M,
    /// CREATE_CASES vhdx `1G-block-16M`.
    VhdxBlock16M,
    /// CREATE_CASES raw `1G-default`: measured as `-O raw` only (qemu-img
    /// create writes its first block).
    RawCreated1G,
    /// An empty 1 PiB qcow2, larger than `--size` could ask for with
    /// small clusters: the size limit is not applied to sources.
    Qcow2Empty1P,
    /// A 10 MiB qcow2 with three 64 KiB data clusters (at 0, 1M and 8M).
    Qcow2Data,
    /// A 10 MiB qcow2 with 8 MiB of data, 1 MiB of it then written as
    /// zero clusters.
    Qcow2Zeros,
    /// A qcow2 over a qcow2 backing file: backing data, data of its own,
    /// and zero clusters over backing data.
    Qcow2Overlay,
    /// Compressed clusters (`convert -c` of data).
    Qcow2Compressed,
    /// 4 KiB clusters, two of them data.
    Qcow2Cs4kData,
    /// Extended L2 entries, two 2 KiB subclusters written.
    Qcow2Subclusters,
    /// Data and two persistent bitmaps (64 KiB and 512-byte granularity,
    /// one with a long name).
    Qcow2Bitmaps,
    /// A compat=0.10 qcow2 with data (no bitmaps possible).
    Qcow2V2Data,
    /// Data, an internal snapshot `snap1` (id 1), then more data.
    Qcow2Snapshot,
    /// A monolithicSparse vmdk with two whole grains written.
    VmdkData,
    /// A 1 MiB raw file written end to end.
    RawFull1M,
    /// A raw file of 1 000 000 bytes (not a multiple of 512) written end to end.
    RawOdd,
    /// A raw file truncated to 1000 bytes: one hole.
    RawHole1000,
    /// An empty raw file.
    RawEmpty,
}

/// Three 64 KiB data clusters of the 10 MiB sources.
const THREE_CLUSTERS: &[&str] =
    &["write -P 0xaa 0 64k", "write -P 0xbb 1M 64k", "write -P 0xcc 8M 64k"];

impl Source {
    /// Every source, in declaration order.
    pub const ALL: [Source; 35] = [
        Source::Qcow2Empty1M,
        Source::Qcow2Empty64M,
        Source::Qcow2Empty1G,
        Source::Qcow2Cs512,
        Source::Qcow2Cs4k,
        Source::Qcow2Cs2M,
        Source::Qcow2Rb1,
        Source::Qcow2Rb64,
        Source::Qcow2ExtL2,
        Source::Qcow2V2,
        Source::Qcow2PreallocMetadata,
        Source::Qcow2PreallocFull,
        Source::VmdkSparse64M,
        Source::VmdkStream1G,
        Source::VmdkMonolithic1G,
        Source::VpcDynamic64M,
        Source::VpcFixed16M,
        Source::Vhdx64M,
        Source::VhdxBlock16M,
        Source::RawCreated1G,
        Source::Qcow2Empty1P,
        Source::Qcow2Data,
        Source::Qcow2Zeros,
        Source::Qcow2Overlay,
        Source::Qcow2Compressed,
        Source::Qcow2Cs4kData,
        Source::Qcow2Subclusters,
        Source::Qcow2Bitmaps,
        Source::Qcow2V2Data,
        Source::Qcow2Snapshot,
        Source::VmdkData,
        Source::RawFull1M,
        Source::RawOdd,
        Source::RawHole1000,
        Source::RawEmpty,
    ];

    /// The file the rows name (a backing file, if any, is made beside it).
    pub fn file_name(self) -> String {
        match self.steps().first() {
            Some(Step::Create(target, name)) => created(*target, name).file_name(),
            _ => self.own_file().to_string(),
        }
    }

    /// The file of a source that is not a CREATE_CASES row.
    fn own_file(self) -> &'static str {
        match self {
            Source::Qcow2Empty1P => "1P.qcow2",
            Source::Qcow2Data => "data.qcow2",
            Source::Qcow2Zeros => "zeros.qcow2",
            Source::Qcow2Overlay => "overlay.qcow2",
            Source::Qcow2Compressed => "compressed.qcow2",
            Source::Qcow2Cs4kData => "cs-4k-data.qcow2",
            Source::Qcow2Subclusters => "subclusters.qcow2",
            Source::Qcow2Bitmaps => "bitmaps.qcow2",
            Source::Qcow2V2Data => "v2-data.qcow2",
            Source::Qcow2Snapshot => "snapshot.qcow2",
            Source::VmdkData => "data.vmdk",
            Source::RawFull1M => "full-1M.raw",
            Source::RawOdd => "odd-1000000.raw",
            Source::RawHole1000 => "hole-1000.raw",
            Source::RawEmpty => "empty.raw",
            _ => "",
        }
    }
}

/// Every file a step makes is the source's file, its backing file, or
/// starts with the source's file name, so that two recipes never touch
/// each other's files.
impl Recipe for Source {
    fn steps(self) -> &'static [Step] {
        use Step::{Create, Fill, Img, Io, Truncate};
        match self {
            Source::Qcow2Empty1M => &[Create(Target::Qcow2, "1M-default")],
            Source::Qcow2Empty64M => &[Create(Target::Qcow2, "64M-default")],
            Source::Qcow2Empty1G => &[Create(Target::Qcow2, "1G-default")],
            Source::Qcow2Cs512 => &[Create(Target::Qcow2, "1G-cs-512")],
            Source::Qcow2Cs4k => &[Create(Target::Qcow2, "1G-cs-4k")],
            Source::Qcow2Cs2M => &[Create(Target::Qcow2, "1G-cs-2M")],
            Source::Qcow2Rb1 => &[Create(Target::Qcow2, "1G-rb-1")],
            Source::Qcow2Rb64 => &[Create(Target::Qcow2, "1G-rb-64")],
            Source::Qcow2ExtL2 => &[Create(Target::Qcow2, "1G-extended-l2")],
            Source::Qcow2V2 => &[Create(Target::Qcow2, "1G-compat-v2")],
            Source::Qcow2PreallocMetadata => &[Create(Target::Qcow2, "1M-prealloc-metadata")],
            Source::Qcow2PreallocFull => &[Create(Target::Qcow2, "1M-prealloc-full")],
            Source::VmdkSparse64M => &[Create(Target::Vmdk, "64M-default")],
            Source::VmdkStream1G => &[Create(Target::Vmdk, "1G-stream-optimized")],
            Source::VmdkMonolithic1G => &[Create(Target::Vmdk, "1G-monolithic-sparse")],
            Source::VpcDynamic64M => &[Create(Target::Vhd, "64M-default")],
            Source::VpcFixed16M => &[Create(Target::Vhd, "16M-fixed")],
            Source::Vhdx64M => &[Create(Target::Vhdx, "64M-default")],
            Source::VhdxBlock16M => &[Create(Target::Vhdx, "1G-block-16M")],
            Source::RawCreated1G => &[Create(Target::Raw, "1G-default")],
            Source::Qcow2Empty1P => &[Img(&["create", "-f", "qcow2", "1P.qcow2", "1P"])],
            Source::Qcow2Data => &[
                Img(&["create", "-f", "qcow2", "data.qcow2", "10M"]),
                Io { format: "qcow2", file: "data.qcow2", commands: THREE_CLUSTERS },
            ],
            Source::Qcow2Zeros => &[
                Img(&["create", "-f", "qcow2", "zeros.qcow2", "10M"]),
                Io {
                    format: "qcow2",
                    file: "zeros.qcow2",
                    commands: &["write -P 0xaa 0 8M", "write -z 5M 1M"],
                },
            ],
            Source::Qcow2Overlay => &[
                Img(&["create", "-f", "qcow2", "overlay.qcow2.base", "10M"]),
                Io {
                    format: "qcow2",
                    file: "overlay.qcow2.base",
                    commands: &["write -P 0xaa 0 4M"],
                },
                Img(&[
                    "create",
                    "-f",
                    "qcow2",
                    "-b",
                    "overlay.qcow2.base",
                    "-F",
                    "qcow2",
                    "overlay.qcow2",
                ]),
                Io {
                    format: "qcow2",
                    file: "overlay.qcow2",
                    commands: &["write -z 1M 1M", "write -P 0xdd 6M 128k"],
                },
            ],
            Source::Qcow2Compressed => &[
                Img(&["create", "-f", "qcow2", "compressed.qcow2.in", "10M"]),
                Io { format: "qcow2", file: "compressed.qcow2.in", commands: THREE_CLUSTERS },
                Img(&[
                    "convert",
                    "-c",
                    "-f",
                    "qcow2",
                    "-O",
                    "qcow2",
                    "compressed.qcow2.in",
                    "compressed.qcow2",
                ]),
            ],
            Source::Qcow2Cs4kData => &[
                Img(&["create", "-f", "qcow2", "-o", "cluster_size=4k", "cs-4k-data.qcow2", "10M"]),
                Io {
                    format: "qcow2",
                    file: "cs-4k-data.qcow2",
                    commands: &["write -P 0xaa 0 4k", "write -P 0xbb 1M 4k"],
                },
            ],
            Source::Qcow2Subclusters => &[
                Img(&["create", "-f", "qcow2", "-o", "extended_l2=on", "subclusters.qcow2", "10M"]),
                Io {
                    format: "qcow2",
                    file: "subclusters.qcow2",
                    commands: &["write -P 0xaa 0 2k", "write -P 0xbb 4M 2k"],
                },
            ],
            Source::Qcow2Bitmaps => &[
                Img(&["create", "-f", "qcow2", "bitmaps.qcow2", "10M"]),
                Io { format: "qcow2", file: "bitmaps.qcow2", commands: THREE_CLUSTERS },
                Img(&["bitmap", "--add", "-g", "64k", "bitmaps.qcow2", "bm1"]),
                Img(&[
                    "bitmap",
                    "--add",
                    "-g",
                    "512",
                    "bitmaps.qcow2",
                    "a-bitmap-name-of-fifty-seven-characters-to-round-up-8-xx",
                ]),
            ],
            Source::Qcow2V2Data => &[
                Img(&["create", "-f", "qcow2", "-o", "compat=0.10", "v2-data.qcow2", "10M"]),
                Io { format: "qcow2", file: "v2-data.qcow2", commands: THREE_CLUSTERS },
            ],
            Source::Qcow2Snapshot => &[
                Img(&["create", "-f", "qcow2", "snapshot.qcow2", "10M"]),
                Io { format: "qcow2", file: "snapshot.qcow2", commands: &["write -P 0xaa 0 1M"] },
                Img(&["snapshot", "-c", "snap1", "snapshot.qcow2"]),
                Io { format: "qcow2", file: "snapshot.qcow2", commands: &["write -P 0xbb 2M 2M"] },
            ],
            Source::VmdkData => &[
                Img(&["create", "-f", "vmdk", "data.vmdk", "64M"]),
                Io {
                    format: "vmdk",
                    file: "data.vmdk",
                    commands: &["write -P 0xaa 0 64k", "write -P 0xbb 32M 128k"],
                },
            ],
            Source::RawFull1M => &[Fill("full-1M.raw", 1 << 20, 0x5a)],
            Source::RawOdd => &[Fill("odd-1000000.raw", 1_000_000, 0x5a)],
            Source::RawHole1000 => &[Truncate("hole-1000.raw", 1000)],
            Source::RawEmpty => &[Truncate("empty.raw", 0)],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn identifiers_follow_the_names() {
        for case in MEASURE_CASES {
            assert_eq!(case.ident, case.expected_ident(), "row {}", case.name);
        }
    }

    #[test]
    fn names_and_identifiers_are_unique() {
        let names: HashSet<_> = MEASURE_CASES.iter().map(|c| c.name).collect();
        let idents: HashSet<_> = MEASURE_CASES.iter().map(|c| c.ident).collect();
        assert_eq!(names.len(), MEASURE_CASES.len());
        assert_eq!(idents.len(), MEASURE_CASES.len());
    }

    /// The collision this layout exists to prevent: two targets' rows
    /// under one name in a flat profile folder.
    #[test]
    fn names_start_with_their_target() {
        for case in MEASURE_CASES {
            let prefix = format!("{}-", case.target.name());
            assert!(case.name.starts_with(&prefix), "row {} is not named {prefix}...", case.name);
        }
    }

    /// A row sits under the format its `-O` names (raw when none), or
    /// under `other` for a format qemu-img does not measure.
    #[test]
    fn targets_follow_the_output_format() {
        for case in MEASURE_CASES {
            let want = match case.output_format().unwrap_or("raw") {
                "qcow2" => MeasureTarget::Qcow2,
                "raw" => MeasureTarget::Raw,
                "luks" => MeasureTarget::Luks,
                _ => MeasureTarget::Other,
            };
            assert_eq!(case.target, want, "row {}", case.name);
        }
    }

    #[test]
    fn the_table_is_large_and_spread() {
        assert!(MEASURE_CASES.len() >= 150, "{} rows", MEASURE_CASES.len());
        for target in MeasureTarget::ALL {
            assert!(MEASURE_CASES.iter().any(|c| c.target == target), "no {target} row");
        }
        for source in Source::ALL {
            assert!(
                MEASURE_CASES.iter().any(|c| c.source == Some(source)),
                "no row measures {source:?}"
            );
        }
    }

    /// A row with a source names the source's file; a row without one
    /// names no file a recipe makes.
    #[test]
    fn rows_name_their_source() {
        let files: Vec<String> = Source::ALL.iter().map(|s| s.file_name()).collect();
        for case in MEASURE_CASES {
            let mentions = |f: &str| {
                case.args.split_whitespace().any(|w| w == f || w.ends_with(&format!("={f}")))
            };
            match case.source {
                Some(s) => {
                    assert!(mentions(&s.file_name()), "row {} lacks {}", case.name, s.file_name());
                }
                None => {
                    assert!(!files.iter().any(|f| mentions(f)), "row {} names a source", case.name);
                }
            }
        }
    }

    #[test]
    fn every_source_is_listed_and_has_a_file() {
        let unique: HashSet<String> = Source::ALL.iter().map(|s| s.file_name()).collect();
        assert_eq!(unique.len(), Source::ALL.len());
        assert!(Source::ALL.iter().all(|s| !s.file_name().is_empty()));
    }

    /// The `create` mark is the rule of [`MeasureCase::create_equivalent`].
    #[test]
    fn create_marks_follow_the_rule() {
        for case in MEASURE_CASES {
            assert_eq!(
                case.agrees_with_create,
                case.create_equivalent().is_some(),
                "row {} (mark `create` exactly the rows the rule picks)",
                case.name
            );
        }
        assert_eq!(
            measure_by_ident("qcow2_size_64m_extl2_rb_64").unwrap().create_equivalent(),
            Some(("extended_l2=on,refcount_bits=64", "64M"))
        );
        assert_eq!(plain_size("64k"), Some(65536));
        assert_eq!(plain_size("1.5G"), None);
        assert_eq!(plain_size("16E"), None);
    }

    #[test]
    fn arguments_split_on_whitespace() {
        let case = measure_by_ident("qcow2_size_1g_multi_o").unwrap();
        assert_eq!(
            case.measure_args(),
            [
                "measure",
                "-O",
                "qcow2",
                "-o",
                "cluster_size=4k",
                "-o",
                "refcount_bits=8",
                "--size",
                "1G"
            ]
        );
        assert!(case.is_size_only());
        assert_eq!(measure_by_ident("raw_err_neither").unwrap().measure_args(), ["measure"]);
        assert!(!measure_by_ident("qcow2_from_qcow2_data").unwrap().is_size_only());
    }
}
