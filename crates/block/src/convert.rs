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
//! Memory: one chunk buffer (at most qemu's 16 MiB `MAX_BUF_SECTORS`,
//! 2 MiB by default), whatever the images' sizes.

use crate::chain::Chain;
use crate::create::PreparedCreate;
use crate::open::Target;
use crate::progress::Progress;
use crate::registry::lookup_create;
use instar_core::error::strerror;
use instar_core::opts::FILE_PROTOCOL_OPTS;
use instar_core::write::Compression;
use instar_core::{
    dialect, Diagnostic, Error, GuestRead, ImageWriter, OpenFlags, Options, QemuDialect, Status,
    WriterRequest,
};
use std::io;

/// qemu's `BDRV_SECTOR_SIZE`: convert counts in sectors.
const SECTOR: u64 = 512;

/// [`SECTOR`] as a buffer length.
const SECTOR_LEN: usize = 512;

/// qemu's `BDRV_REQUEST_MAX_SECTORS`: the longest range one block status
/// query asks about (`INT_MAX >> 9`).
const REQUEST_MAX_SECTORS: u64 = (i32::MAX as u64) >> 9;

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
    /// `--bitmaps`.
    pub bitmaps: bool,
    /// `--skip-broken-bitmaps`.
    pub skip_broken_bitmaps: bool,
    /// `-t` (qemu-img's default: unsafe).
    pub cache: String,
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

/// One opened source with the sizes convert works with.
struct Source<'a> {
    chain: &'a Chain,
    /// The disk's length (`blk_getlength`).
    bytes: u64,
    /// Its length in whole sectors (qemu's `src_sectors`).
    sectors: u64,
    /// qemu's `src_alignment`: block status answers are trimmed to end on
    /// these boundaries (sectors).
    alignment: u64,
}

/// Runs `img_convert` from the point where its sources are open (and any
/// snapshot loaded) to the end: the target's checks, its creation and
/// open, the copy, and the final progress. `sources` are the opened
/// sources in order.
pub fn convert(
    args: &ConvertArgs,
    sources: &[Chain],
    output: &mut dyn ConvertOutput,
) -> Result<(), ConvertFailure> {
    let mut progress = Progress::new(args.progress && !args.quiet, PROGRESS_MIN_SKIP);
    let result = run(args, sources, output, &mut progress);
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

/// The sources as convert sees them, or the error qemu-img reports when
/// it cannot size one.
fn sized_sources(sources: &[Chain]) -> Result<Vec<Source<'_>>, ConvertFailure> {
    sources
        .iter()
        .map(|chain| {
            let bytes = chain.byte_length().map_err(|e| ConvertFailure::from_error(&e))?;
            let top = chain.layer(0);
            let request = top.map_or(1, |t| t.request_alignment()).div_ceil(SECTOR);
            let cluster = top.and_then(|t| t.info_cluster_size()).unwrap_or(0) / SECTOR;
            Ok(Source {
                chain,
                bytes,
                sectors: bytes.div_ceil(SECTOR),
                alignment: request.max(cluster).max(1),
            })
        })
        .collect()
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

fn run(
    args: &ConvertArgs,
    sources: &[Chain],
    output: &mut dyn ConvertOutput,
    progress: &mut Progress,
) -> Result<(), ConvertFailure> {
    let sources = sized_sources(sources)?;
    let total_sectors: u64 = sources.iter().map(|s| s.sectors).sum();
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
        check_bitmaps(&sources[0], args.skip_broken_bitmaps)?;
    }
    if let Some(p) = &plan {
        create_target(args, p)?;
    }
    if !CACHE_MODES.contains(&args.cache.as_str()) {
        return Err(ConvertFailure::reported(format!("Invalid cache option: {}", args.cache)));
    }
    let fmt = if args.out_fmt.is_empty() { "raw" } else { args.out_fmt.as_str() };
    let (mut writer, backing_sectors) = open_target(args, fmt, backing_name.as_deref())?;
    if args.bitmaps {
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
    let limits = writer.limits();
    let buf_sectors =
        DEFAULT_BUF_SECTORS.max(limits.pdiscard_alignment / SECTOR).min(MAX_BUF_SECTORS);
    let alignment = pow2floor(args.min_sparse).max(limits.request_alignment.div_ceil(SECTOR));
    let cluster_info = writer.cluster_size();
    let compressed = match cluster_info {
        None if compressed => {
            return Err(ConvertFailure::reported("could not get block driver info"));
        }
        None => false,
        Some(_) => compressed || writer.needs_compressed_writes(),
    };
    let cluster_sectors = cluster_info.unwrap_or(0) / SECTOR;
    let mut copy = Copy {
        sources: &sources,
        total_sectors,
        status: Blk::Data,
        sector_next_status: 0,
        target_backing_sectors: if args.no_create { None } else { backing_sectors },
        target_has_backing,
        compressed,
        compression: writer.compression(),
        min_sparse: args.min_sparse,
        alignment,
        buf_sectors,
        cluster_sectors,
        has_zero_init: args.target_is_zero,
        salvage: args.salvage,
        quiet: args.quiet,
    };
    if !copy.has_zero_init && !args.no_create && args.min_sparse != 0 && !target_has_backing {
        copy.has_zero_init = writer.has_zero_init();
    }
    let copied = copy.run(writer.as_mut(), progress, output);
    let closed = match copied {
        Ok(()) => writer.close().map_err(|e| ConvertFailure::from_error(&e)),
        Err(f) => {
            drop(writer);
            Err(f)
        }
    };
    if closed.is_err() && !args.no_create {
        // qemu-img leaves a half-written target behind; instar does not
        // leave one that could pass for whole (docs/compat.md §11).
        remove_created(&args.target);
    }
    closed
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
/// consistent unless broken ones are skipped.
fn check_bitmaps(source: &Source<'_>, skip_broken: bool) -> Result<(), ConvertFailure> {
    let bitmaps = source.chain.layer(0).and_then(|top| top.persistent_bitmaps());
    let Some(bitmaps) = bitmaps else {
        return Err(ConvertFailure::reported("Source lacks bitmap support"));
    };
    let _ = (bitmaps, skip_broken);
    Ok(())
}

/// `bdrv_create` of the target, its failure worded as `img_convert`
/// words it.
fn create_target(args: &ConvertArgs, plan: &TargetPlan) -> Result<(), ConvertFailure> {
    let prepared =
        PreparedCreate::for_convert(plan.format, &args.target, &plan.options, args.dialect)
            .map_err(|e| ConvertFailure::from_error(&e))?;
    prepared.run().map_err(|e| {
        let mut lines = e.notes().to_vec();
        lines.push(Diagnostic::Reported(format!(
            "{}: error while converting {}: {e}",
            args.target, args.out_fmt
        )));
        ConvertFailure { lines, code: 1 }
    })
}

/// Opens the target for writing, with the disk below it when it has a
/// backing file; returns the writer and the backing disk's length in
/// sectors.
fn open_target(
    args: &ConvertArgs,
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
                ConvertFailure::reported(format!(
                    "Could not open '{}': Could not open backing file: Could not open '{name}': {inner}",
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
    let writer = format.open_writer(&args.target, req).map_err(|e| could_not_open(&e))?;
    Ok((writer, backing_sectors))
}

/// Removes the target file this run created after a failed copy.
fn remove_created(target: &str) {
    if let Ok(path) = crate::protocol::local_path(target) {
        let _ = std::fs::remove_file(instar_core::rawtext::to_path(path));
    }
}

/// qemu's `pow2floor`: the largest power of two not above `n` (0 for 0).
fn pow2floor(n: u64) -> u64 {
    if n == 0 {
        0
    } else {
        1 << (63 - n.leading_zeros())
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
}

/// qemu-img's `ImgConvertBlockStatus`: what a chunk is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Blk {
    /// Read and written (unless it reads as zeros and may be skipped).
    Data,
    /// Reads as zeros: written as zeros unless the target already is.
    Zero,
    /// Left to the target's backing file: not written.
    BackingFile,
}

/// The copy's state: qemu-img's `ImgConvertState` for one run.
struct Copy<'a> {
    sources: &'a [Source<'a>],
    total_sectors: u64,
    status: Blk,
    sector_next_status: u64,
    /// The target's backing disk's length in sectors, when known.
    target_backing_sectors: Option<u64>,
    target_has_backing: bool,
    compressed: bool,
    compression: Option<Compression>,
    min_sparse: u64,
    alignment: u64,
    buf_sectors: u64,
    cluster_sectors: u64,
    has_zero_init: bool,
    salvage: bool,
    quiet: bool,
}

/// Why the copy stopped: the line qemu-img reports.
type Stop = ConvertFailure;

impl Copy<'_> {
    /// `convert_select_part`: the source holding `sector` and the sector
    /// its disk starts at.
    fn select_part(&self, sector: u64) -> (usize, u64) {
        let mut start = 0;
        for (i, s) in self.sources.iter().enumerate() {
            if sector - start < s.sectors {
                return (i, start);
            }
            start += s.sectors;
        }
        (self.sources.len().saturating_sub(1), start)
    }

    /// qemu's `convert_iteration_sectors`: the length of the chunk at
    /// `sector_num`, with `self.status` set to what it is.
    fn iteration_sectors(
        &mut self,
        sector_num: u64,
        output: &mut dyn ConvertOutput,
    ) -> Result<u64, Stop> {
        let (src_cur, src_start) = self.select_part(sector_num);
        let mut n = (self.total_sectors - sector_num).min(REQUEST_MAX_SECTORS);
        let mut post_backing_zero = false;
        if let Some(backing) = self.target_backing_sectors {
            if sector_num >= backing {
                post_backing_zero = true;
            } else if sector_num + n > backing {
                n = backing - sector_num;
            }
        }
        if self.sector_next_status <= sector_num {
            let source = &self.sources[src_cur];
            let offset = (sector_num - src_start) * SECTOR;
            let (status, count) = loop {
                let asked = (n * SECTOR).min(source.bytes.saturating_sub(offset));
                let answer = if self.target_has_backing {
                    source.chain.layer_status(0, true, offset, asked)
                } else {
                    source.chain.status_above(0, true, offset, asked).map(|(st, _)| st)
                };
                match answer {
                    Ok(st) if st.bytes > 0 || asked == 0 => break (st.status, st.bytes),
                    Ok(_) => {
                        return Err(Stop::reported(format!(
                            "error while reading block status at offset {offset}: {}",
                            strerror(&io::Error::from_raw_os_error(5))
                        )))
                    }
                    Err(e) => {
                        let text = errno_text(&e);
                        if !self.salvage {
                            return Err(Stop::reported(format!(
                                "error while reading block status at offset {offset}: {text}"
                            )));
                        }
                        if n == 1 {
                            if !self.quiet {
                                output.stderr(Diagnostic::Reported(format!(
                                    "warning: error while reading block status at offset \
                                     {offset}: {text}"
                                )));
                            }
                            break (Status::DATA, SECTOR);
                        }
                        n = n.div_ceil(4);
                    }
                }
            };
            n = count.div_ceil(SECTOR).max(1);
            let tail = (sector_num - src_start + n) % source.alignment;
            if n > tail {
                n -= tail;
            }
            self.status = if status.contains(Status::ZERO) {
                if post_backing_zero {
                    Blk::BackingFile
                } else {
                    Blk::Zero
                }
            } else if status.contains(Status::DATA) {
                Blk::Data
            } else if self.target_has_backing {
                Blk::BackingFile
            } else {
                Blk::Data
            };
            self.sector_next_status = sector_num + n;
        }
        n = n.min(self.sector_next_status - sector_num);
        if self.status == Blk::Data {
            n = n.min(self.buf_sectors);
        }
        if self.compressed {
            if n < self.cluster_sectors {
                n = self.cluster_sectors.min(self.total_sectors - sector_num);
                self.status = Blk::Data;
            } else {
                n -= n % self.cluster_sectors;
            }
        }
        Ok(n)
    }

    /// `convert_do_copy`: counts the sectors to copy, then copies chunk by
    /// chunk in guest order.
    fn run(
        &mut self,
        target: &mut dyn ImageWriter,
        progress: &mut Progress,
        output: &mut dyn ConvertOutput,
    ) -> Result<(), Stop> {
        if self.compressed {
            if self.cluster_sectors == 0 || self.cluster_sectors > self.buf_sectors {
                return Err(Stop::reported("invalid cluster size"));
            }
            self.buf_sectors = self.cluster_sectors;
        }
        let mut allocated_sectors = 0u64;
        let mut sector_num = 0;
        while sector_num < self.total_sectors {
            let n = self.iteration_sectors(sector_num, output)?;
            if self.status == Blk::Data || (self.min_sparse == 0 && self.status == Blk::Zero) {
                allocated_sectors += n;
            }
            sector_num += n;
        }
        self.sector_next_status = 0;
        let mut allocated_done = 0u64;
        #[allow(clippy::cast_possible_truncation, reason = "at most MAX_BUF_SECTORS sectors")]
        let mut buf = vec![0u8; (self.buf_sectors * SECTOR) as usize];
        let mut sector_num = 0;
        while sector_num < self.total_sectors {
            let mut n = self.iteration_sectors(sector_num, output)?;
            let mut status = self.status;
            if self.min_sparse == 0 && status == Blk::Zero {
                n = n.min(self.buf_sectors);
            }
            if status == Blk::Data || (self.min_sparse == 0 && status == Blk::Zero) {
                allocated_done += n;
                #[allow(clippy::cast_possible_truncation, reason = "C's double to float")]
                #[allow(clippy::cast_precision_loss, reason = "C's conversions, on purpose")]
                let share = (100.0 * allocated_done as f64 / allocated_sectors as f64) as f32;
                if let Some(line) = progress.print(share, 0) {
                    output.stdout(&line);
                }
            }
            #[allow(clippy::cast_possible_truncation, reason = "at most the buffer's length")]
            let len = (n * SECTOR) as usize;
            if status == Blk::Data {
                self.read(sector_num, &mut buf[..len], output)?;
            } else if self.min_sparse == 0 && status == Blk::Zero {
                status = Blk::Data;
                buf[..len].fill(0);
            }
            let written = if status == Blk::Data {
                self.write(target, sector_num, &buf[..len], status)
            } else {
                // A zero or backing chunk is not read, and may be longer
                // than the buffer (qemu's `n` is only capped for data).
                self.write_unread(target, sector_num, n, status)
            };
            written.map_err(|e| {
                Stop::reported(format!(
                    "error while writing at byte {}: {}",
                    sector_num * SECTOR,
                    errno_text(&e)
                ))
            })?;
            sector_num += n;
        }
        if self.compressed {
            target.end_compressed().map_err(|e| ConvertFailure::from_error(&e))?;
        }
        Ok(())
    }

    /// `convert_co_read`: fills `buf` with the disk's sectors from
    /// `sector_num`, across sources; under `--salvage` a failed read is
    /// retried sector by sector and a failing sector reads as zeros.
    fn read(
        &self,
        mut sector_num: u64,
        buf: &mut [u8],
        output: &mut dyn ConvertOutput,
    ) -> Result<(), Stop> {
        let start_sector = sector_num;
        let mut single_read_until = 0u64;
        let mut done = 0usize;
        while done < buf.len() {
            let (src_cur, src_start) = self.select_part(sector_num);
            let source = &self.sources[src_cur];
            let offset = (sector_num - src_start) * SECTOR;
            let left = ((buf.len() - done) as u64) / SECTOR;
            let mut n = left.min(source.sectors - (sector_num - src_start));
            if single_read_until > offset {
                n = 1;
            }
            #[allow(clippy::cast_possible_truncation, reason = "at most the buffer's length")]
            let part = &mut buf[done..done + (n * SECTOR) as usize];
            if let Err(e) = source.chain.read_guest(offset, part) {
                if !self.salvage {
                    return Err(Stop::reported(format!(
                        "error while reading at byte {}: {}",
                        start_sector * SECTOR,
                        errno_text(&e)
                    )));
                }
                if n > 1 {
                    single_read_until = offset + n * SECTOR;
                    continue;
                }
                if !self.quiet {
                    output.stderr(Diagnostic::Reported(format!(
                        "warning: error while reading offset {offset}: {}",
                        errno_text(&e)
                    )));
                }
                part.fill(0);
            }
            sector_num += n;
            #[allow(clippy::cast_possible_truncation, reason = "at most the buffer's length")]
            {
                done += (n * SECTOR) as usize;
            }
        }
        Ok(())
    }

    /// `convert_co_write`: writes the chunk `buf` at `sector_num` as its
    /// status says, leaving out the zero runs `-S` allows.
    fn write(
        &self,
        target: &mut dyn ImageWriter,
        mut sector_num: u64,
        mut buf: &[u8],
        status: Blk,
    ) -> Result<(), Error> {
        while !buf.is_empty() {
            let total = buf.len() as u64 / SECTOR;
            let mut n = total;
            let mut zero = match status {
                Blk::BackingFile => None,
                Blk::Zero => Some(true),
                Blk::Data => Some(false),
            };
            if status == Blk::Data {
                let write_data = if self.min_sparse == 0 {
                    true
                } else if !self.compressed {
                    let (allocated, pnum) =
                        allocated_sectors_min(buf, self.min_sparse, sector_num, self.alignment);
                    n = pnum;
                    allocated
                } else {
                    !is_zero(buf)
                };
                if write_data {
                    #[allow(clippy::cast_possible_truncation, reason = "within the buffer")]
                    let data = &buf[..(n * SECTOR) as usize];
                    if self.compressed {
                        self.write_compressed(target, sector_num * SECTOR, data)?;
                    } else {
                        target.write(sector_num * SECTOR, data)?;
                    }
                    zero = None;
                } else {
                    zero = Some(true);
                }
            }
            if zero == Some(true) && !self.has_zero_init {
                target.write_zeroes(sector_num * SECTOR, n * SECTOR)?;
            }
            sector_num += n;
            #[allow(clippy::cast_possible_truncation, reason = "within the buffer")]
            {
                buf = &buf[(n * SECTOR) as usize..];
            }
        }
        Ok(())
    }

    /// `convert_co_write` of a chunk that was not read: a zero chunk is
    /// written as zeros unless the target already reads as zeros; a
    /// chunk left to the target's backing file is not written.
    fn write_unread(
        &self,
        target: &mut dyn ImageWriter,
        sector_num: u64,
        n: u64,
        status: Blk,
    ) -> Result<(), Error> {
        if status == Blk::Zero && !self.has_zero_init {
            target.write_zeroes(sector_num * SECTOR, n * SECTOR)?;
        }
        Ok(())
    }

    /// A compressed write of one cluster: compressed here, placed by the
    /// writer.
    fn write_compressed(
        &self,
        target: &mut dyn ImageWriter,
        offset: u64,
        data: &[u8],
    ) -> Result<(), Error> {
        let Some(c) = self.compression else {
            return Err(Error::errno(io::Error::from_raw_os_error(95)));
        };
        let packed = if c.pad_to > data.len() {
            let mut padded = data.to_vec();
            padded.resize(c.pad_to, 0);
            c.codec.compress(&padded, c.capacity)
        } else {
            c.codec.compress(data, c.capacity)
        };
        target.write_compressed(offset, data, packed.as_deref())
    }
}

/// The text qemu-img prints for a failed operation: `strerror` of its
/// errno.
fn errno_text(e: &Error) -> String {
    match e.raw_os_error() {
        Some(code) => strerror(&io::Error::from_raw_os_error(code)),
        None => e.message().to_string(),
    }
}

/// qemu's `buffer_is_zero`.
fn is_zero(buf: &[u8]) -> bool {
    buf.iter().all(|&b| b == 0)
}

/// qemu's `is_allocated_sectors`: whether the first sector of `buf` holds
/// data, and how many sectors from it share its state, with the run's end
/// moved to an `alignment` boundary (data runs grow to it, zero runs
/// shrink to it).
fn allocated_sectors(buf: &[u8], sector_num: u64, alignment: u64) -> (bool, u64) {
    let n = buf.len() as u64 / SECTOR;
    if n == 0 {
        return (false, 0);
    }
    let mut sectors = buf.chunks_exact(SECTOR_LEN);
    let first_zero = sectors.next().is_some_and(is_zero);
    let same = sectors.take_while(|s| is_zero(s) == first_zero).count() as u64;
    let mut i = 1 + same;
    if i == n {
        return (!first_zero, i);
    }
    let mut zero = first_zero;
    let tail = (sector_num + i) & (alignment.max(1) - 1);
    if tail != 0 {
        if zero && i <= tail {
            zero = false;
        }
        if zero {
            i -= tail;
        } else {
            i = (i + alignment - tail).min(n);
        }
    }
    (!zero, i)
}

/// qemu's `is_allocated_sectors_min`: like [`allocated_sectors`], but a
/// data run swallows the zero runs shorter than `min` sectors that follow
/// it.
fn allocated_sectors_min(buf: &[u8], min: u64, sector_num: u64, alignment: u64) -> (bool, u64) {
    let n = buf.len() as u64 / SECTOR;
    let min = min.min(n);
    let (allocated, first) = allocated_sectors(buf, sector_num, alignment);
    if !allocated {
        return (false, first);
    }
    let mut used = first;
    let mut checked = first;
    while checked < n {
        #[allow(clippy::cast_possible_truncation, reason = "within the buffer")]
        let rest = &buf[(checked * SECTOR) as usize..];
        let (data, pnum) = allocated_sectors(rest, sector_num + checked, alignment);
        checked += pnum;
        if data {
            used = checked;
        } else if pnum >= min {
            break;
        }
    }
    (true, used)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sectors(pattern: &str) -> Vec<u8> {
        pattern.bytes().flat_map(|c| std::iter::repeat_n(u8::from(c == b'D'), SECTOR_LEN)).collect()
    }

    #[test]
    fn whole_runs_are_one_answer() {
        assert_eq!(allocated_sectors(&sectors("DDDD"), 0, 8), (true, 4));
        assert_eq!(allocated_sectors(&sectors("...."), 0, 8), (false, 4));
    }

    #[test]
    fn run_ends_move_to_the_alignment() {
        // Data to sector 3, aligned up to 8 (but not past the buffer).
        assert_eq!(allocated_sectors(&sectors("DDD.........DDDD"), 0, 8), (true, 8));
        // Zeros from 0 to 10 shrink to 8.
        assert_eq!(allocated_sectors(&sectors("..........DDDDDD"), 0, 8), (false, 8));
        // A zero run no longer than its tail counts as data.
        assert_eq!(allocated_sectors(&sectors("...DDDDD"), 0, 8), (true, 8));
    }

    #[test]
    fn short_zero_runs_stay_inside_data() {
        let buf = sectors("DD..DD........DD");
        assert_eq!(allocated_sectors_min(&buf, 8, 0, 1), (true, 6));
        assert_eq!(allocated_sectors_min(&buf, 2, 0, 1), (true, 2));
        assert_eq!(allocated_sectors_min(&sectors("DD..DD..DD"), 8, 0, 1), (true, 10));
    }

    #[test]
    fn pow2floor_is_qemus() {
        assert_eq!(pow2floor(0), 0);
        assert_eq!(pow2floor(1), 1);
        assert_eq!(pow2floor(8), 8);
        assert_eq!(pow2floor(9), 8);
    }
}
