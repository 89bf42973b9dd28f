//! Which qemu-img instar speaks like: a version, and what that version
//! prints and accepts.
//!
//! qemu-img's output changed over its releases (a message reworded, a
//! field added to `info`, a create option added). Each change is one
//! [`Release`] constant here, the first release that behaves the new way,
//! found in qemu's history and measured on the versions the test matrix
//! runs (docs/compat.md §5.3). A [`QemuDialect`] is a version; asking it
//! about a change compares the version with the change's release, so any
//! version between two known ones gets the behaviour of its range, and a
//! version newer than every change gets the newest behaviour.
//!
//! The versions are Debian's builds, which the matrix runs: Debian's 9.2
//! and 10.0 packages carry qemu-img's option rework as a patch
//! (`qemu-img-options.patch`, from 1:9.2.0+ds-4), which upstream merged
//! in 10.1. instar speaks as Debian's builds do; an upstream 9.2 or 10.0
//! build prints the older messages (docs/compat.md §5.3).

use std::fmt;

/// A qemu release series, `major.minor`: where a behaviour first appears.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Release {
    /// The major version.
    pub major: u32,
    /// The minor version.
    pub minor: u32,
}

impl Release {
    /// The release `major.minor`.
    pub const fn new(major: u32, minor: u32) -> Self {
        Release { major, minor }
    }
}

impl fmt::Display for Release {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// `info` prints the block graph: `children` in JSON, `Child node` blocks
/// in human output (commit c04d0ab0, "qemu-img: Let info print block
/// graph", 8.0.0).
pub const INFO_BLOCK_GRAPH: Release = Release::new(8, 0);

/// qemu-img's option rework as Debian's packages carry it
/// (`qemu-img-options.patch`, Michael Tokarev's series of 2024-09, from
/// 9.2.0+ds-4 and in every 10.0). Before it, qemu-img's getopt was
/// silent and qemu-img named the offending argument itself
/// (`unrecognized option '<argument>'`, `missing argument for option
/// '<argument>'`), every usage error ended in `Try 'qemu-img --help' for
/// more information`, `create` knew only `--help` and `--object` as long
/// options, `info` had no `-b`, `--output` was checked after the file
/// name (`--output must be used with human or json as argument.`) and
/// `-r` said `Unknown option value for -r (expecting 'leaks' or 'all')`.
/// With it, getopt prints its own messages, usage errors end in `Try
/// '<program> <command> --help' for more info`, every option has a long
/// name, and `create` names a refused size in one line, `Invalid image
/// size specified: '<text>'.`, instead of two lines listing the suffixes.
pub const OPTIONS_REWORK_DEBIAN: Release = Release::new(9, 2);

/// The rework as upstream merged it (Kevin Wolf's block pull request of
/// 2025-07-15, last commit d7bd47bf, "qemu-img: extend cvtnum() and use it
/// in more places", 10.1.0): usage errors end in `for more information`,
/// `--output` and `-r` say `..., not '<value>'`, the one-line size error
/// has no final full stop, and the option tables changed again (`create
/// -B`, `info -t`/`--cache` and `--limits`, no `info -b`, other orders).
pub const OPTIONS_REWORK_UPSTREAM: Release = Release::new(10, 1);

/// Sizes are read as integers with an optional decimal fraction in 64.64
/// fixed point, no longer through `strtod` (commits cf923b78, "utils:
/// Improve qemu_strtosz() to have 64 bits of precision", and 7625a1ed,
/// "utils: Use fixed-point arithmetic in qemu_strtosz", 6.0.0). Before,
/// `1e3`, `0x1.8k` and `-0` were sizes and a negative size was out of
/// range; since, exponents, hexadecimal fractions and any `-` make the
/// text malformed.
pub const SIZE_FIXED_POINT: Release = Release::new(6, 0);

/// A hexadecimal size with a suffix (`0x10k`) is accepted with a warning,
/// `Using a multiplier suffix on hex numbers is deprecated: <text>`
/// (commit f174cd33, "utils: Deprecate hex-with-suffix sizes", 6.0.0).
/// Before, it was accepted silently.
pub const HEX_SIZE_SUFFIX_DEPRECATED: Release = Release::new(6, 0);

/// A hexadecimal size with a suffix is malformed (commit 8b902e3d, "util:
/// remove support for hex numbers with a scaling suffix", 8.0.0).
pub const HEX_SIZE_SUFFIX_REMOVED: Release = Release::new(8, 0);

/// Sizes are read with `parse_uint`: a negative integer is out of range
/// again (`-1`, `-0`: `Must be between ...`) while a negative number with
/// a suffix stays malformed, and a fraction may lack its integer part
/// (`.5k`) (Eric Blake's pull request pull-nbd-2023-06-01: commits
/// b87ac966, "cutils: Use parse_uint in qemu_strtosz for negative
/// rejection", and 42cc08d1, "cutils: Improve qemu_strtosz handling of
/// fractions", 8.1.0; no release has one without the other).
pub const SIZE_PARSE_UINT: Release = Release::new(8, 1);

/// An option list asks for help only with an element that is exactly
/// `help` or `?` (commit afd73625, "qemu-option: move help handling to
/// get_opt_name_value", 6.0.0). Before, any element *named* help or `?`
/// did: `help=on`, `help=off`, `nohelp`, `?=1`.
pub const HELP_OPTION_WITHOUT_VALUE: Release = Release::new(6, 0);

/// `--object` is created as soon as getopt returns it (commit 99b1e646,
/// "qemu-img: Use user_creatable_process_cmdline() for --object",
/// 6.0.0). Before, objects were only parsed then and created after the
/// file name was checked (`create`: after `-o help` and the missing file
/// name; `info`: after `--output`; `check`: after `--output`, before
/// `-T`).
pub const OBJECTS_AT_ONCE: Release = Release::new(6, 0);

/// `compare` exits 1, not 2, when an `--object` cannot be made (commit
/// "qemu-img: compare: refresh options/--help", upstream's option rework,
/// 10.1.0: the object goes through `user_creatable_process_cmdline`, which
/// exits 1). Until then compare exited 2 when the object met by getopt
/// was refused (from [`OBJECTS_AT_ONCE`]: any failure to make it; before:
/// a failure to read it, such as a duplicate id; the objects made after
/// the file names failed with 1). Debian's rework
/// ([`OPTIONS_REWORK_DEBIAN`]) keeps the 2 (measured: 10.0.2).
pub const COMPARE_OBJECT_EXITS_ONE: Release = Release::new(10, 1);

/// An option list element written as a bare flag (`force-share`,
/// `noforce-share`) is warned about: `short-form boolean option '<x>'
/// deprecated` and `Please use <name>=on instead` (commit ccd3b3b8,
/// "qemu-option: warn for short-form boolean options", 6.0.0).
pub const SHORT_FORM_BOOLEAN_WARNING: Release = Release::new(6, 0);

/// A node reference that names nothing quotes the name and spells
/// `node-name` with a dash: `Cannot find device='x' nor node-name='x'`
/// (5.2: `Cannot find device=x nor node_name=x`). 7.2 is the first
/// release measured with it.
pub const NODE_REFERENCE_QUOTED: Release = Release::new(7, 2);

/// The file protocol names the path it refuses to open as not a regular
/// file: `'file' driver requires '<path>' to be a regular file` (5.2: `A
/// regular file was expected by the 'file' driver, but something else
/// was given`). 7.2 is the first release measured with it.
pub const FILE_DRIVER_NAMES_PATH: Release = Release::new(7, 2);

/// A QAPI enum that refuses a value names the parameter: `Parameter
/// 'version' does not accept value '0.42'` (commit ea29331b, "qapi:
/// Improve input_type_enum()'s error message", 6.2.0). Before, the
/// message was `Invalid parameter '0.42'`.
pub const QAPI_ENUM_NAMES_PARAMETER: Release = Release::new(6, 2);

/// vmdk's create takes `toolsversion` and writes `ddb.toolsVersion` into
/// every descriptor (commit f3d43dfd, "vmdk: allow specification of tools
/// version", 6.2.0).
pub const VMDK_TOOLS_VERSION: Release = Release::new(6, 2);

/// The probe asks qcow2, vmdk and qcow before vdi no more: vdi wins a tie
/// with those, and parallels and qed win one with vdi. Where between 5.2
/// and 7.2 the order changed is not in qemu's history (it follows from the
/// link order of the drivers); 7.2 is the first release measured with it.
pub const PROBE_VDI_BEFORE_QCOW2: Release = Release::new(7, 2);

/// The probe asks vhdx, vmdk and vpc before vdi: qemu commit 11cea42e
/// ("block: add configure options for excluding vmdk, vhdx and vpc",
/// merged for 8.1) moved their sources after vdi's in the build.
pub const PROBE_VHDX_VMDK_VPC_BEFORE_VDI: Release = Release::new(8, 1);

/// The snapshot table (`info`'s `Snapshot list:` and `snapshot -l`) gives
/// the VM SIZE column eight characters and the TAG column sixteen, where
/// it gave seven and seventeen (Kevin Wolf, "block: Fix VM size column
/// width in bdrv_snapshot_dump()", qemu-block 2021-02-02, fixing commit
/// b39847a5; 6.0.0). A name longer than the column, or a size such as
/// `4.24 MiB`, moves the rest of the row by one.
pub const SNAPSHOT_VM_SIZE_COLUMN: Release = Release::new(6, 0);

/// The snapshot table's columns are `%-7s %-16s %8s %19s %15s %10s` for
/// the header and the rows, the headings `VM_SIZE` and `VM_CLOCK`, the
/// clock's hours four digits wide (`0000:00:00.000`), and a missing
/// instruction count `--` (commit 52df1a5b61, "qemu-img: Fix Column Width
/// and Improve Formatting in snapshot list", Abhiram Tilak, 9.0.0).
pub const SNAPSHOT_TABLE_WIDTHS: Release = Release::new(9, 0);

/// qcow2 reports its dirty bit to the block layer, so `info` of an image
/// left dirty (lazy refcounts, not cleanly closed) prints `cleanly shut
/// down: no` and `"dirty-flag": true` (commit 38b44096, "qcow2: set
/// bdi->is_dirty", 6.1.0). Before, qcow2's `get_info` left the field at
/// zero and every qcow2 image read as clean.
pub const QCOW2_REPORTS_DIRTY: Release = Release::new(6, 1);

/// `qemu-img check` of a qcow2 reports reserved bits set in L1 entries,
/// standard L2 entries and refcount table entries (`ERROR found L1 entry
/// with reserved bits set`, `... l2 entry ...`, `ERROR refcount table
/// entry N has reserved bits set`): Vladimir Sementsov-Ogievskiy's
/// `qcow2-refcount` reserved-bit checks, 6.1.0. Before, the entries went
/// unremarked, and a refcount table entry with its low bits set was
/// reported as a refcount block not cluster aligned (measured: 5.2.0
/// prints neither check, 7.2 both).
pub const QCOW2_CHECK_RESERVED_BITS: Release = Release::new(6, 1);

/// A change that first shipped in a release series and was also carried
/// back to the stable releases of older series: a stable release is in
/// when its series has a backport and its micro version is at least the
/// backport's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backported {
    /// The first release series with the change from its `.0`.
    pub release: Release,
    /// The first stable version of each older series that has it.
    pub backports: &'static [QemuVersion],
}

/// `info` (`BDRV_O_NO_IO`) no longer opens a qcow2 image's external data
/// file, so that it can inspect an untrusted image without touching the
/// files it names (commit bd385a5298d7, "qcow2: Don't open data_file with
/// BDRV_O_NO_IO", CVE-2024-4467: 9.1.0, and the stable releases 9.0.2,
/// 8.2.6 and 7.2.13). Before it, `info` of an image whose data file is
/// missing fails as `check` does.
pub const INFO_SKIPS_DATA_FILE: Backported = Backported {
    release: Release::new(9, 1),
    backports: &[QemuVersion::new(9, 0, 2), QemuVersion::new(8, 2, 6), QemuVersion::new(7, 2, 13)],
};

/// The file names an image records for its other files (a qcow2 data
/// file) are taken literally: a `file:` or `nbd:` prefix is part of the
/// name, not a protocol (commit 7ead94699861, "block: Parse filenames
/// only when explicitly requested", part of the same CVE-2024-4467 fix
/// and carried back with it).
pub const RECORDED_NAMES_LITERAL: Backported = INFO_SKIPS_DATA_FILE;

/// vhdx's log entry for a BAT entry that starts a 4 KiB sector takes the
/// rest of that sector from the file after the entry (Lukas Tschoke's
/// commit 8af037fe4cfe, "block/vhdx: fix dynamic VHDX BAT corruption",
/// 8.0.0, carried back to 7.2.2). Before it, the rest came from the
/// sector's start, so the sector's other entries moved up one place in
/// the file: measured, 5.2.0's `convert -O vhdx` of a 1 MiB disk leaves
/// BAT entry 1 at `2` (the first entry's old state) where 7.2.18 and
/// later leave `0`.
pub const VHDX_LOG_TRAILING_SECTOR_FIX: Backported =
    Backported { release: Release::new(8, 0), backports: &[QemuVersion::new(7, 2, 2)] };

/// A qcow2 image created with `data_file_raw=on` gets at least
/// `preallocation=metadata`, so that its L2 tables map every cluster to
/// the same offset of the raw data file (commit 484108293d94, "qcow2:
/// Force preallocation with data-file-raw", 6.0); before it the tables
/// started empty.
pub const DATA_FILE_RAW_PREALLOCATES: Release = Release::new(6, 0);

/// qcow2's create option `keep_data_file`: the external data file named
/// must exist and is used as it is, neither created nor emptied (commit
/// "qcow2: Add keep_data_file command-line option", Hanna Czenczek,
/// 2025-05, released in 10.1; Debian's 10.0.13 lacks it, 11.1.3 has it).
pub const KEEP_DATA_FILE: Release = Release::new(10, 1);

/// A qcow2 create that fails after making its files deletes them, the
/// image and the external data file (commit "block: qcow2: remove the
/// created file on initialization error", Maxim Levitsky, 2020-12, 6.0);
/// before it they stayed, empty or half-written. instar never leaves them
/// (docs/compat.md §8.1), but the deletion prints a line when both names
/// are one file (docs/compat.md §5.9).
pub const QCOW2_CREATE_FAILURE_DELETES: Release = Release::new(6, 0);

/// qemu's file protocol refuses what is not a regular file with `'file'
/// driver requires '<name>' to be a regular file` (commit "block: remove
/// support for using "file" driver with block/char devices", 6.0); before
/// it, `A regular file was expected by the 'file' driver, but something
/// else was given`.
pub const FILE_DRIVER_NAMES_THE_FILE: Release = Release::new(6, 0);

/// A VHD's size field is authoritative unless Virtual PC (`vpc `) or an
/// old qemu (`qemu`) wrote it (Vitaly Kuznetsov, "vpc: Read images
/// exported from Azure correctly", Kevin Wolf's block pull request of
/// 2025-02-10, 10.0.0). Before, only the creators qemu knew to size by the
/// footer did so (`win `, `qem2`, `d2v `, `CTXS`, `tap\0`) and every other
/// creator (`vs  `, Azure's `wa\0\0`, anything unknown) was sized by its
/// CHS geometry.
pub const VPC_CURRENT_SIZE_BY_DEFAULT: Release = Release::new(10, 0);

/// Debian builds qemu's parallels driver (Debian's qemu 1:6.2+dfsg-2,
/// "Enable parallels block image format", Debian bug #1003162). Before,
/// Debian's qemu-img had no such driver: `-f parallels` was an `Unknown
/// driver` and a parallels image probed as raw.
pub const PARALLELS_DRIVER: Release = Release::new(6, 2);

/// The `preallocate` filter driver exists (the preallocate filter of
/// qemu 6.0's release notes). Measured: `Unknown driver 'preallocate'` in
/// 5.2.0, a driver in 7.2.x.
pub const PREALLOCATE_FILTER: Release = Release::new(6, 0);

/// The backup job's filter is a driver `-f` can name, `copy-before-write`
/// (renamed from `backup-top`, which `-f` could not name, for qemu 6.2).
/// Measured: `Unknown driver` in 5.2.0, a driver in 7.2.x.
pub const COPY_BEFORE_WRITE_FILTER: Release = Release::new(6, 2);

/// The `snapshot-access` filter driver exists (the image fleecing work of
/// qemu 7.1). Measured: `Unknown driver` in 5.2.0, a driver in 7.2.x.
pub const SNAPSHOT_ACCESS_FILTER: Release = Release::new(7, 1);

/// The LUKS header is checked before its names are read (Daniel P.
/// Berrangé's series "crypto: improve robustness of LUKS metadata
/// validation", 2022-09, 7.2.0): the cipher name, cipher mode and hash
/// spec must end in a NUL within their 32 bytes, the payload must not
/// start inside the first 4 KiB, the master key iterations must not be
/// zero, every key slot has exactly 4000 stripes (`Keyslot N is corrupted
/// (stripes S != 4000)`, where only zero was refused), an active slot a
/// non-zero iteration count, and no slot starts inside the first 4 KiB.
/// Before, a name without its NUL ran on into the next header field.
pub const LUKS_STRICT_HEADER: Release = Release::new(7, 2);

/// The LUKS open quotes the names it refuses (`Hash algorithm 'sha257'
/// not supported`, `Unexpected cipher mode string format 'xts'`; commit
/// "crypto: quote algorithm names in error messages" of the same series,
/// 7.2.0). Before, the names stood bare.
pub const LUKS_QUOTED_NAMES: Release = Release::new(7, 2);

/// `info` of a LUKS image reports `detached-header` (Hyman Huang,
/// "crypto: Introduce 'detached-header' field in QCryptoBlockInfoLUKS",
/// 2024-01, 9.0.0).
pub const LUKS_DETACHED_HEADER: Release = Release::new(9, 0);

/// Two LUKS key slots overlap by `ranges_overlap()` in 64 bits, where a
/// slot of length zero ends just before it starts (Yao Xingtao,
/// "crypto/block-luks: make range overlap check more readable", 2024-07,
/// 9.1.0). Before, the test was `start1 + len1 > start2 && start2 + len2 >
/// start1` in 32 bits.
pub const LUKS_RANGES_OVERLAP: Release = Release::new(9, 1);

/// The SM3 hash is a QAPI `QCryptoHashAlgo` (`sm3`, "since 9.2.0" in
/// qapi/crypto.json): a LUKS header may name it.
pub const HASH_SM3: Release = Release::new(9, 2);

/// `map --output=json` says whether each range is allocated anywhere in
/// the chain, `"present": true|false` after `"depth"` (Eric Blake's commit
/// 8417e137, "qemu-img: Make unallocated part of backing chain obvious in
/// map", 6.1.0). Measured: absent in 5.2.0, present in 7.2.18.
pub const MAP_PRESENT: Release = Release::new(6, 1);

/// `map --output=json` says whether each range sits in compressed
/// clusters, `"compressed": true|false` after `"data"` (Andrey
/// Drobyshev's commit 52b10c9c, "qemu-img: map: report compressed data
/// blocks", 8.2.0). Measured: absent in 7.2.22, present in 10.0.2.
pub const MAP_COMPRESSED: Release = Release::new(8, 2);

/// `convert` refuses a backing file for the target without its format
/// (`Use of backing file requires explicit backing format`) where it
/// warned that this was deprecated (Eric Blake's commit 497a30db,
/// "qemu-img: Require -F with -b backing image", 6.1.0). Measured: the
/// warning in 5.2.0, the refusal in 7.2.18.
pub const CONVERT_BACKING_FORMAT_REQUIRED: Release = Release::new(6, 1);

/// `convert -F`, the backing file's format on the command line (Eric
/// Blake's commit 1899bf47, "qemu-img: Add -F shorthand to convert",
/// 6.1.0). Measured: `unrecognized option '-F'` in 5.2.0, accepted in
/// 7.2.18.
pub const CONVERT_BACKING_FORMAT_OPTION: Release = Release::new(6, 1);

/// `convert --skip-broken-bitmaps` (Eric Blake's commit 955171e4,
/// "qemu-img: Add --skip-broken-bitmaps for 'convert --bitmaps'",
/// 6.2.0), and with it the refusal of an inconsistent (in-use) source
/// bitmap before the target is created. Measured: unknown to 5.2.0, known
/// to 7.2.18.
pub const CONVERT_SKIP_BROKEN_BITMAPS: Release = Release::new(6, 2);

/// The qemu-img builds measured from this release on have zstd (qcow2's
/// `compression_type=zstd`, qemu's `CONFIG_ZSTD`); Debian's 5.2.0 build
/// lacks it: its create refuses the value (`Invalid parameter 'zstd'`)
/// and its open refuses an image of that type (`qcow2: unknown compression
/// type: 1`). A build property rather than a change of qemu's (zstd came
/// in 5.1), kept as the releases measured show it: absent in 5.2.0,
/// present in 7.2.18 and every later build.
pub const ZSTD_BUILT: Release = Release::new(6, 0);

/// `convert` opens its sources without sharing the write permission
/// (Kevin Wolf, "qemu-img convert: Unshare write permission for source",
/// block pull request of 2021-04-30, 6.1.0), so a raw source's file locks
/// out a target on the same file (`Failed to get "write" lock`). Before,
/// only the files under a format driver's metadata were locked: 5.2.0
/// measured overwrites a raw source named as the target, and refuses a
/// qcow2 one. `-U` shares everything in all versions.
pub const CONVERT_SOURCE_UNSHARES_WRITE: Release = Release::new(6, 1);

/// `convert` flushes its target once the copy has begun (`blk_flush` after
/// `convert_do_copy` and the bitmap copy, whether they succeeded or not)
/// and reports a failed flush as `Failed to flush target image:
/// <strerror>`, failing convert with it when nothing failed before. A
/// qcow2 target made unusable by a corruption found while writing answers
/// `No medium found`. Measured: the string and the calls are absent from
/// Debian's 10.0.13 and present in 11.1.3 (its `img_convert`
/// disassembled: the flush follows every exit of the copy, the invalid
/// cluster size, the block status scan, the compressed end and the bitmap
/// copy, not the refusals before it). The upstream commit could not be
/// fetched here, so the release that brought it (10.1, 10.2, 11.0 or 11.1)
/// is not known; the first release measured with it is named.
pub const CONVERT_FLUSHES_TARGET: Release = Release::new(11, 1);

/// The block layer's close flushes a node first and reports a failure
/// (`Failed flush for 'NAME' during close: <strerror>`), before the
/// driver's own close reports its caches: seen after a failed convert
/// into a qcow2 target whose refcount block cannot be written. The
/// message is in 11.1.3's qemu-img and not in 10.0.13's; as with
/// [`CONVERT_FLUSHES_TARGET`], the release between that brought it is
/// not known, and the first release measured with it is named.
pub const CLOSE_REPORTS_FAILED_FLUSH: Release = Release::new(11, 1);

/// A qemu-img version, `major.minor.micro`, as `qemu-img --version` names
/// it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QemuVersion {
    /// The major version.
    pub major: u32,
    /// The minor version.
    pub minor: u32,
    /// The micro (patch) version.
    pub micro: u32,
}

impl QemuVersion {
    /// `major.minor.micro`.
    pub const fn new(major: u32, minor: u32, micro: u32) -> Self {
        QemuVersion { major, minor, micro }
    }

    /// Reads `X.Y.Z` or `X.Y` (micro 0): decimal numbers, nothing else.
    pub fn parse(text: &str) -> Option<QemuVersion> {
        let mut numbers = [0u32; 3];
        let mut count = 0;
        for part in text.split('.') {
            let slot = numbers.get_mut(count)?;
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            *slot = part.parse().ok()?;
            count += 1;
        }
        (count >= 2).then(|| QemuVersion::new(numbers[0], numbers[1], numbers[2]))
    }

    /// The release series the version belongs to.
    pub const fn release(self) -> Release {
        Release::new(self.major, self.minor)
    }
}

impl fmt::Display for QemuVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.micro)
    }
}

/// What a qemu-img version prints and accepts: the version, asked about
/// each change by [`QemuDialect::since`] or the named questions below.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QemuDialect {
    version: QemuVersion,
}

impl QemuDialect {
    /// The dialect instar speaks unless told otherwise: qemu-img 10.0.2's,
    /// the version the README names (Debian 12's bookworm-backports).
    pub const DEFAULT: QemuDialect = QemuDialect::new(QemuVersion::new(10, 0, 2));

    /// The dialect of qemu-img `version`.
    pub const fn new(version: QemuVersion) -> Self {
        QemuDialect { version }
    }

    /// The version this dialect is of.
    pub const fn version(self) -> QemuVersion {
        self.version
    }

    /// Whether this version behaves as `release` and later ones do.
    pub fn since(self, release: Release) -> bool {
        self.version.release() >= release
    }

    /// Whether this version has `change`, from its release series on or
    /// through a backport to its own series.
    pub fn has(self, change: Backported) -> bool {
        let v = self.version;
        self.since(change.release)
            || change.backports.iter().any(|b| b.release() == v.release() && v.micro >= b.micro)
    }

    /// Whether `info` prints the block graph ([`INFO_BLOCK_GRAPH`]).
    pub fn info_children(self) -> bool {
        self.since(INFO_BLOCK_GRAPH)
    }

    /// What a QAPI enum says when it refuses `value` for `parameter`
    /// ([`QAPI_ENUM_NAMES_PARAMETER`]).
    pub fn refused_enum_value(self, parameter: &str, value: &str) -> String {
        if self.since(QAPI_ENUM_NAMES_PARAMETER) {
            format!("Parameter '{parameter}' does not accept value '{value}'")
        } else {
            format!("Invalid parameter '{value}'")
        }
    }
}

impl Default for QemuDialect {
    fn default() -> Self {
        QemuDialect::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backported_changes_follow_their_stable_releases() {
        let has = |a, b, c| QemuDialect::new(QemuVersion::new(a, b, c)).has(INFO_SKIPS_DATA_FILE);
        assert!(!has(5, 2, 0));
        assert!(!has(7, 2, 12));
        assert!(has(7, 2, 13));
        assert!(has(7, 2, 18));
        assert!(!has(8, 0, 5));
        assert!(!has(8, 2, 5));
        assert!(has(8, 2, 6));
        assert!(!has(9, 0, 1));
        assert!(has(9, 0, 2));
        assert!(has(9, 1, 0));
        assert!(has(11, 1, 3));
    }

    #[test]
    fn versions_parse_strictly() {
        assert_eq!(QemuVersion::parse("10.0.2"), Some(QemuVersion::new(10, 0, 2)));
        assert_eq!(QemuVersion::parse("9.2"), Some(QemuVersion::new(9, 2, 0)));
        for bad in
            ["", "10", "10.", "10.0.", ".1.2", "1.2.3.4", "a.b.c", "1.-2.3", "+1.2.3", "1. 2.3"]
        {
            assert_eq!(QemuVersion::parse(bad), None, "{bad:?}");
        }
        assert_eq!(QemuVersion::parse("99999999999.0.0"), None);
    }

    #[test]
    fn a_dialect_takes_the_range_its_version_falls_in() {
        let d =
            |text| QemuDialect::new(QemuVersion::parse(text).unwrap_or(QemuVersion::new(0, 0, 0)));
        assert!(!d("7.2.22").info_children());
        assert!(d("8.0.0").info_children());
        assert!(d("12.0.0").info_children());
        assert!(!d("7.99.0").since(INFO_BLOCK_GRAPH));
        assert!(QemuDialect::DEFAULT.since(OPTIONS_REWORK_DEBIAN));
        assert!(!QemuDialect::DEFAULT.since(OPTIONS_REWORK_UPSTREAM));
        assert!(!d("6.1.0").since(VMDK_TOOLS_VERSION));
        assert!(d("6.2.0").since(VMDK_TOOLS_VERSION));
        assert!(!d("5.2.0").since(QCOW2_REPORTS_DIRTY));
        assert!(d("6.1.0").since(QCOW2_REPORTS_DIRTY));
    }
}
