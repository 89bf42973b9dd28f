//! `convert`: what qemu-img's `img_convert` does once its sources are
//! open: the target's format and options checked in qemu's order, the
//! target created (`bdrv_create`, without `create`'s `Formatting` line)
//! and opened for writing, and the copy (`convert_do_copy`): the sources
//! walked as one disk in the chunks qemu's `convert_iteration_sectors`
//! cuts, each chunk read, split by the sparse rules (`-S`) and written in
//! guest order. qemu-img's writes without `-W` are in guest order too, so
//! the same chunks written through a writer that allocates as qemu's
//! driver does give qemu-img's file, byte for byte.
//!
//! Memory: the chunks in flight (`-m` of them, 2 MiB each by default, at
//! most 32 MiB in all: `copy.rs`), whatever the images' sizes.

mod bitmaps;
mod copy;
mod read;
mod sparse;

use crate::chain::Chain;
use crate::create::PreparedCreate;
use crate::open::Target;
use crate::progress::Progress;
use crate::registry::lookup_create;
pub use copy::Reopen;
use copy::{Blk, Copy};
use instar_core::error::strerror;
use instar_core::opts::FILE_PROTOCOL_OPTS;
use instar_core::{
    dialect, Diagnostic, Error, GuestRead, ImageWriter, OpenFlags, Options, QemuDialect,
    WriterRequest,
};
use read::{Disk, ReadMode};
use sparse::pow2floor;
use std::io;

/// qemu's `BDRV_SECTOR_SIZE`: convert counts in sectors.
pub(super) const SECTOR: u64 = 512;

/// qemu-img's default buffer: 4096 sectors (2 MiB) per data chunk.
const DEFAULT_BUF_SECTORS: u64 = 4096;

/// qemu-img's `MAX_BUF_SECTORS`: the buffer grows to the target's
/// discard alignment, up to 16 MiB.
const MAX_BUF_SECTORS: u64 = 32768;

/// `qemu_progress_init(progress, 1.0)`: convert prints every point.
const PROGRESS_MIN_SKIP: f32 = 1.0;

/// The cache modes qemu's `bdrv_parse_cache_mode` knows.
const CACHE_MODES: &[&str] = &["none", "off", "writeback", "unsafe", "directsync", "writethrough"];

/// The default `-S`: 4 KiB, in sectors.
pub const DEFAULT_MIN_SPARSE: u64 = 8;

/// What convert was asked to do with its target, the sources already
/// open.
#[derive(Debug, Clone, Default)]
pub struct ConvertArgs {
    /// The target file name as given.
    pub target: String,
    /// `-O` (qemu-img's default: raw).
    pub out_fmt: String,
    /// `-o`, the lists given joined by commas.
    pub options: Option<String>,
    /// `-B` (11.1: `-b`).
    pub backing: Option<String>,
    /// `-F`.
    pub backing_fmt: Option<String>,
    /// `-n`: write into the existing target.
    pub no_create: bool,
    /// `--target-is-zero`.
    pub target_is_zero: bool,
    /// `-c`.
    pub compress: bool,
    /// `-S` in sectors: zero runs this long are not written (0: write
    /// everything).
    pub min_sparse: u64,
    /// `--salvage`: read errors become zeros, with a warning.
    pub salvage: bool,
    /// `-q`.
    pub quiet: bool,
    /// `-p` (without `-q`).
    pub progress: bool,
    /// `-m`: how many chunks qemu-img's copy holds at once (its
    /// coroutines); `None` for its default, [`DEFAULT_COROUTINES`].
    pub coroutines: Option<u64>,
    /// `--bitmaps`.
    pub bitmaps: bool,
    /// `--skip-broken-bitmaps`.
    pub skip_broken_bitmaps: bool,
    /// `-t` (qemu-img's default: unsafe).
    pub cache: String,
    /// `-U`: the sources share every permission, so no file lock keeps
    /// the target off a source's file.
    pub force_share: bool,
    /// `--target-image-opts` (with `-n`): the target named by options,
    /// which instar does not read yet; refused where qemu would open it.
    pub target_image_opts: bool,
    /// Whose checks, messages and bytes to follow.
    pub dialect: QemuDialect,
}

/// Where convert's output goes as it is made: progress lines on stdout,
/// warnings on stderr, printed at once as qemu-img prints them.
pub trait ConvertOutput {
    /// Text for stdout (a progress line, or the final newline).
    fn stdout(&mut self, text: &str);
    /// A line for stderr.
    fn stderr(&mut self, line: Diagnostic);
}

/// How convert ended when it did not succeed: what it printed last and
/// its exit code (qemu-img exits 0 after a few of its refusals).
#[derive(Debug)]
pub struct ConvertFailure {
    /// The lines for stderr.
    pub lines: Vec<Diagnostic>,
    /// The exit code.
    pub code: u8,
}

impl ConvertFailure {
    fn reported(text: impl Into<String>) -> Self {
        ConvertFailure { lines: vec![Diagnostic::Reported(text.into())], code: 1 }
    }

    fn from_error(e: &Error) -> Self {
        let mut lines = e.notes().to_vec();
        lines.push(Diagnostic::Reported(e.to_string()));
        ConvertFailure { lines, code: 1 }
    }
}

/// Runs `img_convert` from the start of its progress meter to the end:
/// `open_sources` opens the sources in order (and loads a snapshot, if
/// asked), then come the target's checks, its creation and open, the
/// copy, and the final progress.
///
/// `open_sources` is called again by each reader thread of the copy, to
/// read through sources of its own (with an output that prints nothing).
pub fn convert(
    args: &ConvertArgs,
    open_sources: OpenSources<'_>,
    output: &mut dyn ConvertOutput,
) -> Result<(), ConvertFailure> {
    let mut progress = Progress::new(args.progress && !args.quiet, PROGRESS_MIN_SKIP);
    if let Some(line) = progress.print(0.0, 100) {
        output.stdout(&line);
    }
    let reopen = || open_sources(&mut Silent);
    let result = open_sources(output)
        .and_then(|sources| run(args, &sources, output, &mut progress, &reopen));
    if result.is_ok() {
        if let Some(line) = progress.print(100.0, 0) {
            output.stdout(&line);
        }
    }
    if let Some(end) = progress.end() {
        output.stdout(end);
    }
    result
}

/// The target's options as `img_convert` builds them before `bdrv_create`:
/// the format's create options and the file protocol's, `-o`, the size
/// of all sources, `-B` and `-F`.
struct TargetPlan {
    format: &'static dyn instar_core::Format,
    options: Options,
}

fn plan_target(args: &ConvertArgs, total_sectors: u64) -> Result<TargetPlan, ConvertFailure> {
    let format = lookup_create(&args.out_fmt, Some(&args.target), args.dialect)
        .map_err(|e| ConvertFailure::from_error(&e))?;
    crate::protocol::local_path(&args.target).map_err(|e| ConvertFailure::from_error(&e))?;
    let mut options =
        Options::in_dialect(&[format.create_opts(), FILE_PROTOCOL_OPTS], args.dialect);
    if let Some(list) = &args.options {
        options.parse(list).map_err(|e| ConvertFailure::from_error(&e))?;
    }
    options.set_number("size", total_sectors * SECTOR);
    let names: Vec<&str> = options.descs().iter().map(|d| d.name).collect();
    let has = |name: &str| names.contains(&name);
    if let Some(b) = &args.backing {
        if !has("backing_file") {
            return Err(ConvertFailure::reported(format!(
                "Backing file not supported for file format '{}'",
                args.out_fmt
            )));
        }
        options.set("backing_file", b).map_err(|e| ConvertFailure::from_error(&e))?;
    }
    if let Some(f) = &args.backing_fmt {
        if !has("backing_fmt") {
            return Err(ConvertFailure::reported(format!(
                "Backing file format not supported for file format '{}'",
                args.out_fmt
            )));
        }
        options.set("backing_fmt", f).map_err(|e| ConvertFailure::from_error(&e))?;
    }
    Ok(TargetPlan { format, options })
}

/// Opens the sources in order (and loads a snapshot, if asked), printing
/// what opening them prints to the output given.
pub type OpenSources<'a> =
    &'a (dyn Fn(&mut dyn ConvertOutput) -> Result<Vec<Chain>, ConvertFailure> + Sync);

/// An output for reader threads, which print nothing.
struct Silent;

impl ConvertOutput for Silent {
    fn stdout(&mut self, _text: &str) {}
    fn stderr(&mut self, _line: Diagnostic) {}
}

fn run(
    args: &ConvertArgs,
    chains: &[Chain],
    output: &mut dyn ConvertOutput,
    progress: &mut Progress,
    reopen: Reopen<'_>,
) -> Result<(), ConvertFailure> {
    let disk = Disk::of(chains)?;
    let sources = &disk.sources;
    let total_sectors = disk.sectors();
    let plan = if args.no_create { None } else { Some(plan_target(args, total_sectors)?) };
    let backing_param = plan.as_ref().and_then(|p| p.options.get_str("backing_file"));
    let backing_name = backing_param.map(str::to_string).or_else(|| args.backing.clone());
    let target_has_backing = backing_name.is_some();
    if args.target_is_zero && target_has_backing {
        // qemu-img reports this and exits 0 (its `ret` is still 0).
        return Err(ConvertFailure {
            code: 0,
            ..ConvertFailure::reported(
                "Cannot use --target-is-zero when the destination image has a backing file",
            )
        });
    }
    if sources.len() > 1 && target_has_backing {
        return Err(ConvertFailure::reported(
            "Having a backing file for the target makes no sense when concatenating multiple \
             input images",
        ));
    }
    if let Some(p) = &plan {
        if backing_param.is_some() && p.options.get_str("backing_fmt").is_none() {
            if args.dialect.since(dialect::CONVERT_BACKING_FORMAT_REQUIRED) {
                return Err(ConvertFailure::reported(
                    "Use of backing file requires explicit backing format",
                ));
            }
            output.stderr(Diagnostic::Reported(
                "warning: Deprecated use of backing file without explicit backing format"
                    .to_string(),
            ));
        }
    }
    if args.compress {
        if let Some(p) = &plan {
            check_compression(p)?;
        }
    }
    if args.bitmaps {
        if sources.len() > 1 {
            return Err(ConvertFailure::reported(
                "Copying bitmaps only possible with single source",
            ));
        }
        check_bitmaps(&sources[0], args.skip_broken_bitmaps, args.dialect)?;
    }
    let path = crate::protocol::local_path(&args.target).ok();
    let existed =
        path.is_some_and(|p| std::fs::symlink_metadata(instar_core::rawtext::to_path(p)).is_ok());
    let locked = locked_files(args, chains);
    if let Some(p) = &plan {
        if let Some(kind) = write_lock(&locked, &args.target) {
            let prefix = format!("{}: error while converting {}: ", args.target, args.out_fmt);
            return Err(write_lock_refusal(&prefix, kind, &args.target));
        }
        // Where qemu-img takes no lock (5.2, `-U`) it writes an image
        // over a file it is still reading, and what it copies depends on
        // how its reads and writes interleave; instar refuses
        // (docs/compat.md §8.5a). A raw target puts each guest range
        // where it is read from before it is written, so the order does
        // not matter there, and it goes ahead.
        let rewrites = args.out_fmt != "raw";
        if rewrites && write_lock(&source_files(chains, true), &args.target).is_some() {
            return Err(ConvertFailure::reported(format!(
                "{}: converting into a file the sources read is not supported by instar \
                 (what qemu-img copies there depends on how its reads and writes interleave)",
                args.target
            )));
        }
        create_target(args, p)?;
    }
    if !CACHE_MODES.contains(&args.cache.as_str()) {
        return Err(ConvertFailure::reported(format!("Invalid cache option: {}", args.cache)));
    }
    // `--target-image-opts`: qemu-img opens the target from its option
    // string (with `-O` as its format: the two are exclusive there, as for
    // a source); the same open, read-only, finds the format and the file
    // the writer then opens.
    let mut target_file = args.target.clone();
    let mut fmt = if args.out_fmt.is_empty() { "raw" } else { args.out_fmt.as_str() };
    if args.target_image_opts {
        if !args.out_fmt.is_empty() {
            return Err(ConvertFailure::reported(
                "--image-opts and --format are mutually exclusive",
            ));
        }
        let named = Target { name: &args.target, fmt: None, image_opts: true, force_share: false };
        let flags = OpenFlags::READ.in_dialect(args.dialect);
        let (opened, path) =
            crate::open::open(named, flags, false).map_err(|e| ConvertFailure::from_error(&e))?;
        fmt = opened.format.name();
        target_file = path;
    }
    // The open of an existing target asks for writes, not resizes.
    if args.no_create && write_lock(&locked, &args.target) == Some("write") {
        let prefix = format!("Could not open '{}': ", args.target);
        return Err(write_lock_refusal(&prefix, "write", &args.target));
    }
    let (mut writer, backing_sectors) =
        open_target(args, &target_file, fmt, backing_name.as_deref())?;
    if args.bitmaps && !writer.supports_bitmaps() {
        return Err(ConvertFailure::reported(format!(
            "Format driver '{fmt}' does not support bitmaps"
        )));
    }
    let compressed = args.compress;
    if compressed && writer.compression().is_none() {
        return Err(ConvertFailure::reported("Compression not supported for this file format"));
    }
    if args.no_create && writer.len().div_ceil(SECTOR) < total_sectors {
        return Err(ConvertFailure::reported("output file is smaller than input file"));
    }
    let settings = CopySettings {
        compress: args.compress,
        min_sparse: args.min_sparse,
        salvage: args.salvage,
        quiet: args.quiet,
        target_is_zero: args.target_is_zero,
        target_is_new: !args.no_create,
        target_backing_sectors: if args.no_create { None } else { backing_sectors },
        target_has_backing,
        coroutines: args.coroutines,
    };
    let others = writer.other_files();
    let planned = plan_copy(&disk, writer.as_ref(), &settings);
    let began = planned.is_ok();
    let copied = planned.and_then(|mut copy| copy.run(writer.as_mut(), progress, output, reopen));
    // The bitmaps come after a whole copy; the target is closed (storing
    // those added) whether or not they all could be.
    let bitmapped = match (&copied, sources[0].chain.layer(0)) {
        (Ok(()), Some(top)) if args.bitmaps => {
            bitmaps::copy_bitmaps(top, writer.as_mut(), args.skip_broken_bitmaps, output)
        }
        _ => Ok(()),
    };
    let (copied, bitmapped) = if began && args.dialect.since(dialect::CONVERT_FLUSHES_TARGET) {
        after_flush(flush_target(writer.as_mut()), copied, bitmapped)
    } else {
        (copied, bitmapped)
    };
    // The block layer's close flushes the target before the driver's
    // close (which a corruption found then leaves out).
    let reports = args.dialect.since(dialect::CLOSE_REPORTS_FAILED_FLUSH);
    let closed = match copied {
        Ok(()) => {
            for line in close_flush(writer.as_mut(), &args.target, reports) {
                output.stderr(line);
            }
            writer.close_reporting().map_err(|e| ConvertFailure::from_error(&e)).map(|lines| {
                for line in lines {
                    output.stderr(line);
                }
            })
        }
        Err(mut f) => {
            // qemu-img closes its target after a failed copy too; what
            // that close could not write follows the copy's failure.
            f.lines.extend(close_flush(writer.as_mut(), &args.target, reports));
            f.lines.extend(writer.close_after_failure());
            Err(f)
        }
    };
    if let (Err(_), false, Some(path)) = (&closed, args.no_create, path) {
        // qemu-img leaves a half-written target behind; instar does not
        // leave one that could pass for whole (docs/compat.md §8.7).
        undo_create(path, existed, &others);
    }
    // A bitmap qemu-img could not copy fails convert after the close,
    // the target kept (its data is whole).
    bitmapped.and(closed)
}

/// The block layer's flush of the target as it closes it (`bdrv_close`
/// before the driver's close): what the driver printed on the way (a
/// corruption found writing its tables, which leaves qemu no driver to
/// close), then, from [`dialect::CLOSE_REPORTS_FAILED_FLUSH`] (`reports`),
/// its failure named after the target. An image made unusable has no
/// driver left in qemu, whose close then flushes nothing (instar's writer
/// answers `ENOMEDIUM`).
fn close_flush(target: &mut dyn ImageWriter, name: &str, reports: bool) -> Vec<Diagnostic> {
    let Some(e) = target.flush().err() else {
        return Vec::new();
    };
    let mut lines = e.notes().to_vec();
    if reports && e.raw_os_error() != Some(instar_core::write::UNUSABLE_ERRNO) {
        lines.push(Diagnostic::Reported(format!(
            "Failed flush for '{}' during close: {}",
            crate::protocol::local_path(name).unwrap_or(name),
            errno_text(&e)
        )));
    }
    lines
}

/// `img_convert`'s flush of the target once the copy has begun (qemu-img
/// from [`dialect::CONVERT_FLUSHES_TARGET`]): what the driver printed on
/// the way (a corruption found writing its tables), then the failure.
fn flush_target(target: &mut dyn ImageWriter) -> Result<(), ConvertFailure> {
    target.flush().map_err(|e| {
        let mut lines = e.notes().to_vec();
        lines.push(Diagnostic::Reported(format!(
            "Failed to flush target image: {}",
            errno_text(&e)
        )));
        ConvertFailure { lines, code: 1 }
    })
}

/// Where a failed flush goes: its lines come after those of the failure
/// before it (the copy's, else the bitmaps'), which stays convert's
/// answer; with no failure before, the flush's fails convert, and the
/// target is then treated as after a failed copy.
fn after_flush(
    flushed: Result<(), ConvertFailure>,
    copied: Result<(), ConvertFailure>,
    bitmapped: Result<(), ConvertFailure>,
) -> (Result<(), ConvertFailure>, Result<(), ConvertFailure>) {
    let Err(flush) = flushed else { return (copied, bitmapped) };
    match (copied, bitmapped) {
        (Err(mut failure), bitmapped) => {
            failure.lines.extend(flush.lines);
            (Err(failure), bitmapped)
        }
        (Ok(()), Err(mut failure)) => {
            failure.lines.extend(flush.lines);
            (Ok(()), Err(failure))
        }
        (Ok(()), Ok(())) => (Err(flush), Ok(())),
    }
}

/// What the copy needs to know besides its source and target.
#[derive(Debug, Clone, Copy, Default)]
pub struct CopySettings {
    /// `-c`.
    pub compress: bool,
    /// `-S` in sectors.
    pub min_sparse: u64,
    /// `--salvage`.
    pub salvage: bool,
    /// `-q`.
    pub quiet: bool,
    /// `--target-is-zero`.
    pub target_is_zero: bool,
    /// Whether convert created the target (no `-n`).
    pub target_is_new: bool,
    /// The target's backing disk's length in sectors, when it has one
    /// and convert created the target.
    pub target_backing_sectors: Option<u64>,
    /// Whether the target has a backing file.
    pub target_has_backing: bool,
    /// `-m` ([`ConvertArgs::coroutines`]).
    pub coroutines: Option<u64>,
}

/// qemu-img's `num_coroutines` without `-m`.
pub const DEFAULT_COROUTINES: u64 = 8;

/// Copies the disk `sources` show into `target` as `convert_do_copy`
/// does (progress lines through `output` when `progress` is on); reader
/// threads read through sources `reopen` opens for each.
pub fn copy(
    sources: &[Chain],
    target: &mut dyn ImageWriter,
    settings: &CopySettings,
    progress: bool,
    output: &mut dyn ConvertOutput,
    reopen: Reopen<'_>,
) -> Result<(), ConvertFailure> {
    let disk = Disk::of(sources)?;
    let mut meter = Progress::new(progress, PROGRESS_MIN_SKIP);
    copy_into(&disk, target, settings, &mut meter, output, reopen)
}

/// The copy of `disk` into `target` with the settings convert read from
/// the target (its limits, cluster size, compression, zero init).
fn copy_into(
    disk: &Disk<'_>,
    target: &mut dyn ImageWriter,
    settings: &CopySettings,
    progress: &mut Progress,
    output: &mut dyn ConvertOutput,
    reopen: Reopen<'_>,
) -> Result<(), ConvertFailure> {
    plan_copy(disk, target, settings)?.run(target, progress, output, reopen)
}

/// What `img_convert` reads from the target before `convert_do_copy`
/// (its limits, cluster size, compression, zero init), and its refusal
/// when the driver cannot say its cluster size under `-c`.
fn plan_copy<'d>(
    disk: &'d Disk<'d>,
    target: &dyn ImageWriter,
    settings: &CopySettings,
) -> Result<Copy<'d>, ConvertFailure> {
    let limits = target.limits();
    let buf_sectors =
        DEFAULT_BUF_SECTORS.max(limits.pdiscard_alignment / SECTOR).min(MAX_BUF_SECTORS);
    let alignment = pow2floor(settings.min_sparse).max(limits.request_alignment.div_ceil(SECTOR));
    let cluster_info = target.cluster_size();
    let compressed = match cluster_info {
        None if settings.compress => {
            return Err(ConvertFailure::reported("could not get block driver info"));
        }
        None => false,
        Some(_) => settings.compress || target.needs_compressed_writes(),
    };
    let mut copy = Copy {
        disk,
        total_sectors: disk.sectors(),
        status: Blk::Data,
        sector_next_status: 0,
        target_backing_sectors: settings.target_backing_sectors,
        target_has_backing: settings.target_has_backing,
        compressed,
        compression: target.compression(),
        min_sparse: settings.min_sparse,
        alignment,
        buf_sectors,
        cluster_sectors: cluster_info.unwrap_or(0) / SECTOR,
        has_zero_init: settings.target_is_zero,
        read_mode: ReadMode { salvage: settings.salvage, quiet: settings.quiet },
        coroutines: settings.coroutines.unwrap_or(DEFAULT_COROUTINES).max(1),
    };
    if !copy.has_zero_init
        && settings.target_is_new
        && settings.min_sparse != 0
        && !settings.target_has_backing
    {
        copy.has_zero_init = target.has_zero_init();
    }
    Ok(copy)
}

/// `-c`'s checks against the target's options and driver.
fn check_compression(plan: &TargetPlan) -> Result<(), ConvertFailure> {
    if !crate::registry::can_compress(plan.format.name()) {
        return Err(ConvertFailure::reported("Compression not supported for this file format"));
    }
    let encrypted = plan.options.get_bool("encryption").unwrap_or(false)
        || plan.options.get_str("encrypt.format").is_some();
    if encrypted {
        return Err(ConvertFailure::reported(
            "Compression and encryption not supported at the same time",
        ));
    }
    if plan.options.get_str("preallocation").is_some_and(|p| p != "off") {
        return Err(ConvertFailure::reported(
            "Compression and preallocation not supported at the same time",
        ));
    }
    Ok(())
}

/// `convert_check_bitmaps`: the source must hold persistent bitmaps, each
/// consistent unless broken ones are skipped. Before 6.2 qemu-img checked
/// only the support here; an inconsistent bitmap failed later, when the
/// bitmaps were copied into the target.
fn check_bitmaps(
    source: &read::Source<'_>,
    skip_broken: bool,
    dialect: QemuDialect,
) -> Result<(), ConvertFailure> {
    let bitmaps = source.chain.layer(0).and_then(|top| top.persistent_bitmaps());
    let Some(bitmaps) = bitmaps else {
        return Err(ConvertFailure::reported("Source lacks bitmap support"));
    };
    if skip_broken || !dialect.since(dialect::CONVERT_SKIP_BROKEN_BITMAPS) {
        return Ok(());
    }
    // qemu walks the node's bitmaps newest first: the directory backwards.
    match bitmaps.iter().rev().find(|b| b.in_use) {
        Some(broken) => Err(ConvertFailure {
            lines: vec![
                Diagnostic::Reported(format!("Cannot copy inconsistent bitmap '{}'", broken.name)),
                // qemu's words: the tool it names is qemu-img's.
                Diagnostic::Plain(
                    "Try --skip-broken-bitmaps, or use 'qemu-img bitmap --remove' to delete it\n"
                        .to_string(),
                ),
            ],
            code: 1,
        }),
        None => Ok(()),
    }
}

/// The files the sources hold locked, each with the permission a writer
/// cannot get (`write`, or `resize` where writes are shared), as qemu's
/// file locks have them. Since 6.1 the sources share neither with
/// anyone. Before, qemu-img asked its sources to share writes: a raw
/// layer passed that on (no lock), and a format driver kept writers off
/// the files holding its metadata but only resizes off its data-only
/// files (a vmdk's flat extents, a qcow2's external data file). `-U`
/// shares everything.
fn locked_files(args: &ConvertArgs, chains: &[Chain]) -> Vec<(String, &'static str)> {
    if args.force_share {
        return Vec::new();
    }
    source_files(chains, args.dialect.since(dialect::CONVERT_SOURCE_UNSHARES_WRITE))
}

/// Every file the sources' chains read (their images, extents and data
/// files), each with the lock [`locked_files`] gives it when the sources
/// share nothing (`unshared`) or share writes.
fn source_files(chains: &[Chain], unshared: bool) -> Vec<(String, &'static str)> {
    let mut files = Vec::new();
    for chain in chains {
        for depth in 0..chain.depth() {
            let Some(info) = chain.layer(depth).and_then(|l| l.info().ok()) else { continue };
            if info.format == "raw" && !unshared {
                continue;
            }
            let data_only = data_only_files(&info);
            let data_kind = if unshared { "write" } else { "resize" };
            // Info may leave the data file out of its children: name it
            // here, ahead of the children's entries.
            files.extend(data_only.iter().map(|f| (f.to_string(), data_kind)));
            let mut nodes = vec![&info];
            while let Some(node) = nodes.pop() {
                let kind =
                    if data_only.contains(&node.filename.as_str()) { data_kind } else { "write" };
                files.push((node.filename.clone(), kind));
                nodes.extend(node.children.iter().map(|c| &c.info));
            }
        }
    }
    files
}

/// The files of an image that hold only guest data, as its info names
/// them: a qcow2's `data-file`, a vmdk's flat extents.
fn data_only_files(info: &instar_core::ImageInfo) -> Vec<&str> {
    let Some((_, data)) = &info.format_specific else { return Vec::new() };
    let mut files: Vec<&str> = Vec::new();
    if let Some(instar_core::Json::Str(name)) = data.get("data-file") {
        files.push(name);
    }
    if let Some(instar_core::Json::Array(extents)) = data.get("extents") {
        for e in extents {
            let flat = matches!(e.get("format"), Some(instar_core::Json::Str(f)) if f == "FLAT" || f == "VMFS");
            if let (true, Some(instar_core::Json::Str(name))) = (flat, e.get("filename")) {
                files.push(name);
            }
        }
    }
    files
}

/// The permission a source's lock denies a writer of the target, if any.
fn write_lock(locked: &[(String, &'static str)], target: &str) -> Option<&'static str> {
    let path = crate::protocol::local_path(target).ok()?;
    locked.iter().find(|(f, _)| instar_core::file::same_file(f, path)).map(|(_, kind)| *kind)
}

/// The refusal of a target whose file a source holds locked: qemu's
/// file protocol cannot take the write permission, and says which image
/// another process (here: this one) may be using.
fn write_lock_refusal(prefix: &str, kind: &str, target: &str) -> ConvertFailure {
    ConvertFailure::reported(format!(
        "{prefix}Failed to get \"{kind}\" lock\nIs another process using the image [{target}]?"
    ))
}

/// `bdrv_create` of the target, its failure worded as `img_convert`
/// words it.
fn create_target(args: &ConvertArgs, plan: &TargetPlan) -> Result<(), ConvertFailure> {
    let prepared =
        PreparedCreate::for_convert(plan.format, &args.target, &plan.options, args.dialect)
            .map_err(|e| ConvertFailure::from_error(&e))?;
    prepared.run().map_err(|e| {
        if plan.format.name() == "qcow2"
            && !args.dialect.since(dialect::QCOW2_CREATE_FAILURE_DELETES)
        {
            leave_empty_files(args, plan);
        }
        let mut lines = e.notes().to_vec();
        lines.push(Diagnostic::Reported(format!(
            "{}: error while converting {}: {e}",
            args.target, args.out_fmt
        )));
        ConvertFailure { lines, code: 1 }
    })
}

/// What a refused qcow2 create left before 6.0: qemu's qcow2 driver
/// creates the image file (and its data file) through the file protocol
/// before it checks its own options, and did not remove them when a
/// check failed, so convert (which, unlike `create`, leaves what qemu-img
/// leaves before the copy: docs/compat.md §8.7) leaves them empty. A
/// file the protocol could not create stays uncreated.
fn leave_empty_files(args: &ConvertArgs, plan: &TargetPlan) {
    let Ok(path) = crate::protocol::local_path(&args.target) else { return };
    let data = plan.options.get_str("data_file").map(str::to_string);
    for name in std::iter::once(path.to_string()).chain(data) {
        let _ = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(instar_core::rawtext::to_path(&name));
    }
}

/// Opens the target for writing, with the disk below it when it has a
/// backing file; returns the writer and the backing disk's length in
/// sectors.
fn open_target(
    args: &ConvertArgs,
    file: &str,
    fmt: &str,
    backing: Option<&str>,
) -> Result<(Box<dyn ImageWriter>, Option<u64>), ConvertFailure> {
    let could_not_open = |e: &Error| {
        let mut lines = e.notes().to_vec();
        lines.push(Diagnostic::Reported(format!("Could not open '{}': {e}", args.target)));
        ConvertFailure { lines, code: 1 }
    };
    let format = crate::registry::find_format(fmt)
        .ok_or_else(|| ConvertFailure::reported(format!("Unknown driver '{fmt}'")))?;
    let mut below = None;
    if let Some(name) = backing {
        let full = instar_core::path::full_backing_filename(&args.target, name)
            .unwrap_or_else(|| name.to_string());
        let flags = OpenFlags::READ.in_dialect(args.dialect);
        let (chain, _, _) = Chain::open(Target::file(&full, args.backing_fmt.as_deref()), flags)
            .map_err(|e| {
                let inner = e.to_string();
                let inner = inner
                    .strip_prefix(&format!("Could not open '{full}': "))
                    .map(str::to_string)
                    .unwrap_or(inner);
                // qemu drops the backing image's own `Could not open` and
                // keeps the protocol's (which names the file).
                ConvertFailure::reported(format!(
                    "Could not open '{}': Could not open backing file: {inner}",
                    args.target
                ))
            })?;
        below = Some(chain);
    }
    let backing_sectors = below.as_ref().map(|c| c.len().div_ceil(SECTOR));
    let req = WriterRequest {
        dialect: args.dialect,
        backing: below.map(|c| Box::new(c) as Box<dyn GuestRead>),
    };
    let writer = format.open_writer(file, req).map_err(|e| could_not_open(&e))?;
    Ok((writer, backing_sectors))
}

/// Undoes the create of a target whose copy failed: the file at `path`
/// is removed if this run made it, or left empty if it was there before
/// (its old bytes went when create emptied it, as qemu empties it); the
/// image's other files (`others`, made by the create) are removed.
fn undo_create(path: &str, existed: bool, others: &[String]) {
    let target = instar_core::rawtext::to_path(path);
    if existed {
        if let Ok(f) = std::fs::OpenOptions::new().write(true).open(&target) {
            let _ = f.set_len(0);
        }
    } else {
        let _ = std::fs::remove_file(&target);
    }
    for other in others {
        let _ = std::fs::remove_file(instar_core::rawtext::to_path(other));
    }
}

impl GuestRead for Chain {
    fn guest_len(&self) -> u64 {
        self.len()
    }

    fn read_guest(&self, offset: u64, buf: &mut [u8]) -> Result<(), Error> {
        let len = self.len();
        let inside = len.saturating_sub(offset).min(buf.len() as u64);
        #[allow(clippy::cast_possible_truncation, reason = "at most the buffer's length")]
        let (head, tail) = buf.split_at_mut(inside as usize);
        if !head.is_empty() {
            self.read_at(offset, head)?;
        }
        tail.fill(0);
        Ok(())
    }

    /// `bdrv_co_block_status_above` over the chain, run by run, while the
    /// answer is zero; past the end of the disk, zeros.
    fn status_is_zero(&self, offset: u64, bytes: u64) -> Result<Option<bool>, Error> {
        let end = offset.saturating_add(bytes).min(self.len());
        let mut at = offset;
        while at < end {
            let (st, _) = self.status_above(0, true, at, end - at)?;
            if st.bytes == 0 {
                break;
            }
            if !st.status.contains(instar_core::Status::ZERO) {
                return Ok(Some(false));
            }
            at += st.bytes;
        }
        Ok(Some(true))
    }
}
/// The text qemu-img prints for a failed operation: `strerror` of its
/// errno.
pub(super) fn errno_text(e: &Error) -> String {
    match e.raw_os_error() {
        Some(code) => strerror(&io::Error::from_raw_os_error(code)),
        None => e.message().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(line: &str) -> Result<(), ConvertFailure> {
        Err(ConvertFailure::reported(line))
    }

    fn lines(r: &Result<(), ConvertFailure>) -> Vec<Diagnostic> {
        r.as_ref().err().map(|f| f.lines.clone()).unwrap_or_default()
    }

    fn reported(text: &str) -> Diagnostic {
        Diagnostic::Reported(text.to_string())
    }

    /// qemu-img 11.1 prints a failed flush after the copy's or the
    /// bitmaps' failure, which stays convert's answer; alone, the flush's
    /// failure fails convert.
    #[test]
    fn a_failed_flush_follows_the_failure_before_it() {
        let (c, b) = after_flush(failure("flush"), failure("copy"), Ok(()));
        assert_eq!(lines(&c), [reported("copy"), reported("flush")]);
        assert!(b.is_ok());
        let (c, b) = after_flush(failure("flush"), Ok(()), failure("bitmap"));
        assert!(c.is_ok());
        assert_eq!(lines(&b), [reported("bitmap"), reported("flush")]);
        let (c, b) = after_flush(failure("flush"), Ok(()), Ok(()));
        assert_eq!(lines(&c), [reported("flush")]);
        assert!(b.is_ok());
        let (c, b) = after_flush(Ok(()), failure("copy"), Ok(()));
        assert_eq!(lines(&c), [reported("copy")]);
        assert!(b.is_ok());
    }
}
