//! `CREATE_CASES`: the one definition of the images the differential tests
//! create (docs/compat.md §4.1).
//!
//! The table is written once, as the body of [`create_cases!`](crate::create_cases).
//! That macro hands the rows to a callback macro, which is how both the
//! static [`CREATE_CASES`] slice (read by the baseline generator and the
//! consistency test) and the named tests of `tests/create_matrix.rs` (one
//! per surface and row, which need an identifier per row at compile time)
//! are made from the same text. Adding a row is adding one line.
//!
//! A row is `Target ident "case-name" "SIZE" "OPTIONS";`. The identifier is
//! the test name of the row and must equal [`Case::ident`] (lower case,
//! `<target>_<case>` with `-` as `_`); a unit test holds the two together.

use std::fmt;

/// Calls `$callback! { rows }` with every row of the case table, each row
/// written `Target ident "name" "size" "options";`, followed by any tokens
/// given after the callback's name (`create_cases!(cb, extra tokens)` calls
/// `cb! { extra tokens ; rows }`).
///
/// This macro body is the single definition of CREATE_CASES.
#[macro_export]
macro_rules! create_cases {
    ($callback:ident $(, $($extra:tt)*)?) => {
        $callback! {
            $($($extra)*)? ;
            Qcow2 qcow2_1m_default "1M-default" "1M" "";
            Qcow2 qcow2_64m_default "64M-default" "64M" "";
            Qcow2 qcow2_1g_default "1G-default" "1G" "";
            Qcow2 qcow2_1g_cs_512 "1G-cs-512" "1G" "cluster_size=512";
            Qcow2 qcow2_1g_cs_4k "1G-cs-4k" "1G" "cluster_size=4k";
            Qcow2 qcow2_1g_cs_64k "1G-cs-64k" "1G" "cluster_size=64k";
            Qcow2 qcow2_1g_cs_1m "1G-cs-1M" "1G" "cluster_size=1M";
            Qcow2 qcow2_1g_cs_2m "1G-cs-2M" "1G" "cluster_size=2M";
            Qcow2 qcow2_1g_rb_1 "1G-rb-1" "1G" "refcount_bits=1";
            Qcow2 qcow2_1g_rb_8 "1G-rb-8" "1G" "refcount_bits=8";
            Qcow2 qcow2_1g_rb_64 "1G-rb-64" "1G" "refcount_bits=64";
            Qcow2 qcow2_1g_extended_l2 "1G-extended-l2" "1G" "extended_l2=on,cluster_size=64k";
            Qcow2 qcow2_64m_extended_l2 "64M-extended-l2" "64M" "extended_l2=on,cluster_size=64k";
            Qcow2 qcow2_1g_compat_v2 "1G-compat-v2" "1G" "compat=0.10";
            Qcow2 qcow2_1g_lazy_refcounts "1G-lazy-refcounts" "1G" "lazy_refcounts=on";
            Qcow2 qcow2_1g_zstd "1G-zstd" "1G" "compression_type=zstd";
            Qcow2 qcow2_1m_prealloc_metadata "1M-prealloc-metadata" "1M" "preallocation=metadata";
            Qcow2 qcow2_1m_prealloc_falloc "1M-prealloc-falloc" "1M" "preallocation=falloc";
            Qcow2 qcow2_1m_prealloc_full "1M-prealloc-full" "1M" "preallocation=full";
            Vmdk vmdk_1m_default "1M-default" "1M" "";
            Vmdk vmdk_64m_default "64M-default" "64M" "";
            Vmdk vmdk_1g_default "1G-default" "1G" "";
            Vmdk vmdk_1g_stream_optimized "1G-stream-optimized" "1G" "subformat=streamOptimized";
            Vmdk vmdk_1g_monolithic_sparse "1G-monolithic-sparse" "1G" "subformat=monolithicSparse";
            Vhd vhd_1m_default "1M-default" "1M" "";
            Vhd vhd_64m_default "64M-default" "64M" "";
            Vhd vhd_1g_default "1G-default" "1G" "";
            Vhd vhd_1m_fixed "1M-fixed" "1M" "subformat=fixed";
            Vhd vhd_16m_fixed "16M-fixed" "16M" "subformat=fixed";
            Vhdx vhdx_1m_default "1M-default" "1M" "";
            Vhdx vhdx_64m_default "64M-default" "64M" "";
            Vhdx vhdx_1g_default "1G-default" "1G" "";
            Vhdx vhdx_1g_block_16m "1G-block-16M" "1G" "block_size=16M";
            Vhdx vhdx_1g_block_32m "1G-block-32M" "1G" "block_size=32M";
            Raw raw_1m_default "1M-default" "1M" "";
            Raw raw_1g_default "1G-default" "1G" "";
        }
    };
}

/// Builds [`CREATE_CASES`] from the rows of [`create_cases!`](crate::create_cases).
macro_rules! case_table {
    (; $($target:ident $ident:ident $name:literal $size:literal $options:literal;)*) => {
        /// Every row of the case table, in table order.
        pub static CREATE_CASES: &[Case] = &[
            $(Case {
                target: Target::$target,
                ident: stringify!($ident),
                name: $name,
                size: $size,
                options: $options,
            },)*
        ];
    };
}

create_cases!(case_table);

/// The image kinds of the table. `Vhd` is qemu's `vpc` driver; the table
/// and the baselines call it `vhd`, as users do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    /// A plain disk image, no metadata.
    Raw,
    /// QEMU copy-on-write v2/v3.
    Qcow2,
    /// VMware virtual disk.
    Vmdk,
    /// Microsoft Virtual PC / VHD (qemu's `vpc`).
    Vhd,
    /// Microsoft VHDX.
    Vhdx,
}

impl Target {
    /// Every target, in table order.
    pub const ALL: [Target; 5] =
        [Target::Qcow2, Target::Vmdk, Target::Vhd, Target::Vhdx, Target::Raw];

    /// The target's name in the table and in baseline paths.
    pub fn name(self) -> &'static str {
        match self {
            Target::Raw => "raw",
            Target::Qcow2 => "qcow2",
            Target::Vmdk => "vmdk",
            Target::Vhd => "vhd",
            Target::Vhdx => "vhdx",
        }
    }

    /// The format name qemu-img and instar take with `-f`.
    pub fn format(self) -> &'static str {
        match self {
            Target::Vhd => "vpc",
            other => other.name(),
        }
    }

    /// The file extension the tests give images of this target.
    pub fn extension(self) -> &'static str {
        match self {
            Target::Raw => "img",
            other => other.name(),
        }
    }

    /// The target called `name` in the table, if any.
    pub fn from_name(name: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|t| t.name() == name)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One row of the table: an image to create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Case {
    /// The image kind.
    pub target: Target,
    /// The row's test identifier (`qcow2_1g_default`).
    pub ident: &'static str,
    /// The case name within its target (`1G-default`).
    pub name: &'static str,
    /// The SIZE argument, in qemu's syntax.
    pub size: &'static str,
    /// The `-o` argument; empty for none.
    pub options: &'static str,
}

impl Case {
    /// The row's unique id across targets: `<target>-<case>`, as profile
    /// file names spell it.
    pub fn id(&self) -> String {
        format!("{}-{}", self.target.name(), self.name)
    }

    /// The test identifier the row's id implies (`qcow2_1g_cs_64k`).
    pub fn expected_ident(&self) -> String {
        self.id().to_ascii_lowercase().replace(['-', '.'], "_")
    }

    /// The image file name the tests and the generator use for the row.
    pub fn file_name(&self) -> String {
        format!("{}.{}", self.name, self.target.extension())
    }

    /// The arguments of `create` after the program name, for an image at
    /// `path`: `create -f <fmt> [-o <options>] <path> <size>`.
    pub fn create_args(&self, path: &str) -> Vec<String> {
        let mut args =
            vec!["create".to_string(), "-f".to_string(), self.target.format().to_string()];
        if !self.options.is_empty() {
            args.push("-o".to_string());
            args.push(self.options.to_string());
        }
        args.push(path.to_string());
        args.push(self.size.to_string());
        args
    }

    /// The row's `preallocation=` mode, if it sets one.
    pub fn preallocation(&self) -> Option<&'static str> {
        self.options.split(',').filter_map(|o| o.strip_prefix("preallocation=")).next_back()
    }

    /// Whether the row preallocates (any mode but `off`), so that the
    /// host allocation of the file is part of what must match qemu-img.
    pub fn is_preallocated(&self) -> bool {
        self.preallocation().is_some_and(|m| m != "off")
    }
}

/// The row whose test identifier is `ident`.
pub fn by_ident(ident: &str) -> Option<&'static Case> {
    CREATE_CASES.iter().find(|c| c.ident == ident)
}

/// The row of `target` named `name`.
pub fn find(target: Target, name: &str) -> Option<&'static Case> {
    CREATE_CASES.iter().find(|c| c.target == target && c.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn identifiers_follow_the_case_ids() {
        for case in CREATE_CASES {
            assert_eq!(case.ident, case.expected_ident(), "row {}", case.id());
        }
    }

    #[test]
    fn ids_and_identifiers_are_unique() {
        let ids: HashSet<_> = CREATE_CASES.iter().map(Case::id).collect();
        let idents: HashSet<_> = CREATE_CASES.iter().map(|c| c.ident).collect();
        assert_eq!(ids.len(), CREATE_CASES.len());
        assert_eq!(idents.len(), CREATE_CASES.len());
    }

    #[test]
    fn the_spine_rows_are_there() {
        let count = |t| CREATE_CASES.iter().filter(|c| c.target == t).count();
        assert_eq!(count(Target::Qcow2), 19);
        assert_eq!(count(Target::Raw), 2);
    }

    #[test]
    fn create_arguments_put_options_before_the_path() {
        let case = find(Target::Qcow2, "1G-cs-4k").unwrap();
        assert_eq!(
            case.create_args("/tmp/x.qcow2"),
            ["create", "-f", "qcow2", "-o", "cluster_size=4k", "/tmp/x.qcow2", "1G"]
        );
        let raw = find(Target::Raw, "1M-default").unwrap();
        assert_eq!(raw.create_args("x"), ["create", "-f", "raw", "x", "1M"]);
    }

    #[test]
    fn vhd_runs_as_vpc() {
        assert_eq!(Target::Vhd.format(), "vpc");
        assert_eq!(Target::Vhd.name(), "vhd");
        assert_eq!(Target::from_name("vhd"), Some(Target::Vhd));
        assert_eq!(Target::from_name("vpc"), None);
    }

    #[test]
    fn preallocation_rows_are_recognised() {
        let full = find(Target::Qcow2, "1M-prealloc-full").unwrap();
        assert_eq!(full.preallocation(), Some("full"));
        assert!(full.is_preallocated());
        assert!(find(Target::Qcow2, "1M-prealloc-metadata").unwrap().is_preallocated());
        assert!(!find(Target::Qcow2, "1G-default").unwrap().is_preallocated());
        assert_eq!(find(Target::Raw, "1G-default").unwrap().preallocation(), None);
    }
}
