//! Opening an image, as qemu's `bdrv_open` does for every command: the
//! file protocol opens the file, the format is the one named or the one
//! probed, the format's one open runs its checks, and, unless the command
//! asks for no backing file, the backing chain is opened after it. Open
//! failures are worded as qemu-img words them (`Could not open '<file>':
//! ...`, `Could not open backing file: ...`).

use crate::image_opts;
use crate::probe::{probe_file, ProbeOrder};
use crate::protocol::local_path;
use crate::registry::{lookup_driver, Driver};
use instar_core::dialect::FILE_DRIVER_NAMES_PATH;
use instar_core::error::strerror;
use instar_core::file::MAX_LENGTH;
use instar_core::path::full_backing_filename;
use instar_core::{
    CheckReport, Diagnostic, Error, Format, Image, ImageFile, ImageInfo, Lines, OpenFlags,
    QemuDialect, SnapshotInfo,
};
use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;

/// The most backing files instar opens below an image. qemu has no bound
/// (a chain that loops hangs it); instar refuses loops outright, and this
/// bounds a chain of distinct files.
pub const MAX_BACKING_CHAIN: usize = 1024;

/// `Could not open '<file>': <why>`: qemu-img's wrapper around every
/// open failure, and the block layer's wording of a bare errno.
fn could_not_open(filename: &str, why: &str) -> Error {
    Error::open(format!("Could not open '{filename}': {why}"))
}

/// The file protocol's open of `path` (a local path): read-only, and only
/// a regular file (qemu's `file` driver refuses anything else).
fn open_file(path: &str, dialect: QemuDialect) -> Result<ImageFile, Error> {
    let file = ImageFile::open(path).map_err(|e| could_not_open(path, &strerror(&e)))?;
    if !file.is_regular() {
        if !dialect.since(FILE_DRIVER_NAMES_PATH) {
            return Err(Error::open(
                "A regular file was expected by the 'file' driver, but something else was given",
            ));
        }
        return Err(Error::open(format!("'file' driver requires '{path}' to be a regular file")));
    }
    Ok(file)
}

/// The driver called `name`, with qemu's `Unknown driver` when there is
/// none. A format only qemu reads is refused after the file is opened, as
/// qemu's own driver would fail then.
fn named_driver(name: &str, dialect: QemuDialect) -> Result<Driver, Error> {
    lookup_driver(name, dialect, || Error::invalid(format!("Unknown driver '{name}'")))
}

/// The format of `file`: the driver named, or the one the probe finds;
/// for a driver only qemu has, its error on this file or instar's refusal.
fn file_format(
    file: &ImageFile,
    named: Option<Driver>,
    flags: OpenFlags,
) -> Result<&'static dyn Format, Error> {
    let driver = match named {
        Some(driver) => driver,
        None => probe_file(file, ProbeOrder::of(flags.dialect))
            .map_err(|e| Error::open(strerror(&e)))?,
    };
    driver.format(file)
}

/// An image opened for a command, with the format that opened it.
pub struct Opened {
    /// The format.
    pub format: &'static dyn Format,
    /// The opened image.
    pub image: Box<dyn Image>,
    /// What opening it (and its backing chain) printed on stderr.
    pub warnings: Vec<Diagnostic>,
    /// Whether the format was probed (no `-f`, no `driver`).
    pub probed: bool,
    /// The backing chain below the image, nearest first, when the open
    /// asked for it (empty otherwise, and for an image without one).
    pub backing: Vec<Box<dyn Image>>,
}

/// qemu's `bdrv_open` of the local file `path` as `fmt` (or probed):
/// errors as the block layer words them, without qemu-img's prefix.
fn open_node(path: &str, fmt: Option<&str>, flags: OpenFlags) -> Result<Opened, Error> {
    // qemu looks the driver up before the file protocol opens the file.
    let named = fmt.map(|f| named_driver(f, flags.dialect)).transpose()?;
    let file = open_file(path, flags.dialect)?;
    let format = file_format(&file, named, flags)?;
    let image = format.open(file, flags)?;
    let warnings = image.warnings();
    // After the driver's open, the block layer refuses a disk larger than
    // it addresses (`bdrv_refresh_total_sectors`).
    if image.virtual_size() > MAX_LENGTH {
        let e = Error::open("Could not refresh total sector count: File too large");
        return Err(e.after(warnings));
    }
    Ok(Opened { format, image, warnings, probed: fmt.is_none(), backing: Vec::new() })
}

/// The image a command names, as its command line gave it.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The file name, or with `image_opts` the option string.
    pub name: &'a str,
    /// `-f`.
    pub fmt: Option<&'a str>,
    /// `--image-opts`: `name` is an option string ([`image_opts`]).
    pub image_opts: bool,
    /// `-U`/`--force-share` (instar never locks; it matters only where
    /// image options contradict it).
    pub force_share: bool,
}

impl<'a> Target<'a> {
    /// The file `name`, as `fmt` or probed.
    pub fn file(name: &'a str, fmt: Option<&'a str>) -> Self {
        Target { name, fmt, image_opts: false, force_share: false }
    }
}

/// Opens the image `target` names as qemu-img's `img_open` does, with
/// `flags`: failures get qemu-img's `Could not open '<name>': ` prefix.
/// Returns the opened image and the path of its host file (what its
/// backing file names are relative to). With `backing`, the backing
/// chain is opened too and kept in [`Opened::backing`].
pub fn open(
    target: Target<'_>,
    flags: OpenFlags,
    backing: bool,
) -> Result<(Opened, String), Error> {
    let (mut opened, path) = if target.image_opts {
        open_by_options(target, flags)?
    } else if let Some(json) = target.name.strip_prefix(image_opts::JSON_PREFIX) {
        open_json(Some(target.name), json, target.fmt, flags)?
    } else {
        let filename = target.name;
        let path = local_path(filename).map_err(|e| could_not_open(filename, e.message()))?;
        let opened = open_node(path, target.fmt, flags).map_err(|e| e.wrap_open(filename))?;
        (opened, path.to_string())
    };
    if backing {
        let image = opened.image.as_ref();
        opened.backing = open_backing_chain(&path, image, flags, &mut opened.warnings)
            .map_err(|e| e.wrap_open(target.name).after(opened.warnings.clone()))?;
    }
    Ok((opened, path))
}

/// qemu-img's `img_open_opts`: the option string read ([`image_opts`]),
/// then qemu's `bdrv_open` of the options dictionary, in its order: the
/// checks before the file, the host file, the protocol's options, the
/// format (named or probed) and its open, the format's options.
fn open_by_options(target: Target<'_>, flags: OpenFlags) -> Result<(Opened, String), Error> {
    let optstr = target.name;
    if target.fmt.is_some() {
        return Err(Error::invalid("--image-opts and --format are mutually exclusive"));
    }
    let (dict, warnings) = image_opts::parse(optstr, target.force_share, flags.dialect)?;
    open_dict(Some(optstr), &dict, warnings, flags)
}

/// The image a `json:{...}` name describes (`json`: the text after the
/// prefix), as `fmt` when `-f` (or a recorded backing format) names one:
/// the options of [`open_by_options`], read from JSON. Failures name
/// `outer` (qemu-img's wrapper of the image a command names; a backing
/// file's failures are not wrapped so).
fn open_json(
    outer: Option<&str>,
    json: &str,
    fmt: Option<&str>,
    flags: OpenFlags,
) -> Result<(Opened, String), Error> {
    let wrap = |e: Error| match outer {
        Some(name) => e.wrap_open(name),
        None => e,
    };
    let mut dict = image_opts::from_json(json).map_err(wrap)?;
    if let Some(fmt) = fmt {
        dict.set_driver(fmt);
    }
    open_dict(outer, &dict, Vec::new(), flags)
}

/// qemu's `bdrv_open` of an options dictionary (from `--image-opts` or a
/// `json:` name, `name` as the user or the image gave it), what reading
/// the options printed coming first.
fn open_dict(
    outer: Option<&str>,
    dict: &image_opts::OptionDict,
    warnings: Vec<Diagnostic>,
    flags: OpenFlags,
) -> Result<(Opened, String), Error> {
    let named_as = |e: Error| match outer {
        Some(name) => e.wrap_open(name),
        None => e,
    };
    let wrap = |e: Error| named_as(e).after(warnings.clone());
    let lookup = |name: &str| {
        lookup_driver(name, flags.dialect, || Error::invalid(format!("Unknown driver '{name}'")))
            .map(|d| matches!(d, Driver::Instar(_)))
    };
    let named = image_opts::before_file(dict, flags.dialect, lookup).map_err(wrap)?;
    let driver = named.driver.map(|d| named_driver(d, flags.dialect)).transpose().map_err(wrap)?;
    let file = open_file(named.path, flags.dialect).map_err(wrap)?;
    image_opts::check_file_options(dict).map_err(wrap)?;
    let format = file_format(&file, driver, flags).map_err(wrap)?;
    if !flags.no_io {
        image_opts::refuse_key(dict).map_err(wrap)?;
    }
    let image = format.open(file, flags).map_err(wrap)?;
    let mut printed = warnings.clone();
    printed.extend(image.warnings());
    let fail = |e: Error| named_as(e).after(printed.clone());
    image_opts::check_format_options(dict, format.name()).map_err(fail)?;
    if image.virtual_size() > MAX_LENGTH {
        return Err(fail(Error::open("Could not refresh total sector count: File too large")));
    }
    let opened = Opened {
        format,
        image,
        warnings: printed,
        probed: named.driver.is_none(),
        backing: Vec::new(),
    };
    Ok((opened, named.path.to_string()))
}

/// Opens the backing files below `image` (at `path`) as qemu's
/// `bdrv_open_backing_file` does: each with the format recorded for it or
/// probed, and the parent's flags; a failure is wrapped in `Could not open
/// backing file: ` once per level, as qemu's nested opens word it. A
/// chain that comes back to a file already opened is refused (qemu would
/// recurse until it runs out of stack).
fn open_backing_chain(
    path: &str,
    image: &dyn Image,
    flags: OpenFlags,
    warnings: &mut Vec<Diagnostic>,
) -> Result<Vec<Box<dyn Image>>, Error> {
    let mut chain = Vec::new();
    let mut seen = Vec::new();
    if let Ok(meta) = std::fs::metadata(path) {
        seen.push((meta.dev(), meta.ino()));
    }
    let mut parent_path = path.to_string();
    let mut next = image.backing().filter(|b| !b.name.is_empty());
    let mut depth = 0;
    while let Some(backing) = next {
        depth += 1;
        let wrap = |mut e: Error| {
            for _ in 0..depth {
                let message = format!("Could not open backing file: {}", e.message());
                e = e.with_message(message);
            }
            e
        };
        let Some(child_path) = full_backing_filename(&parent_path, &backing.name) else {
            break;
        };
        if let Ok(meta) = std::fs::metadata(&child_path) {
            let id = (meta.dev(), meta.ino());
            if seen.contains(&id) || depth > MAX_BACKING_CHAIN {
                return Err(wrap(Error::open(format!(
                    "Backing file '{}' creates an infinite loop.",
                    backing.name
                ))));
            }
            seen.push(id);
        }
        let fmt = backing.format.as_deref();
        let (child, path) = match child_path.strip_prefix(image_opts::JSON_PREFIX) {
            // A backing file named by options is named by its host file
            // from then on (qemu's refreshed file name).
            Some(json) => open_json(None, json, fmt, flags).map_err(wrap)?,
            None => (open_node(&child_path, fmt, flags).map_err(wrap)?, child_path),
        };
        warnings.extend(child.warnings);
        next = child.image.backing().filter(|b| !b.name.is_empty());
        chain.push(child.image);
        parent_path = path;
    }
    Ok(chain)
}

/// What `info` reports for the image `target` names, opened as qemu-img
/// of `dialect` does, without its backing file (qemu-img info opens with
/// `BDRV_O_NO_BACKING`), and what opening it printed on stderr.
pub fn info(
    target: Target<'_>,
    dialect: QemuDialect,
) -> Result<(ImageInfo, Vec<Diagnostic>), Error> {
    let (opened, _) = open(target, OpenFlags::INFO.in_dialect(dialect), false)?;
    match opened.image.info() {
        Ok(info) => Ok((info, opened.warnings)),
        Err(e) => Err(e.wrap_open(target.name).after(opened.warnings)),
    }
}

/// What `info --backing-chain` reports: one [`ImageInfo`] per image,
/// from the one `target` names down the chain, and what
/// the opens printed on stderr. As qemu-img's `collect_image_info_list`,
/// every image is opened on its own as [`info`] opens one (without its
/// backing file), and the next is the one its `full-backing-filename`
/// names, as the `backing-filename-format` it records or probed. A name
/// met a second time, compared as text, is a loop; a chain whose names
/// grow without repeating (`./a` backed by `./b` backed by `./a`) ends
/// where the name grows too long to open, as it does in qemu. Nothing is
/// returned unless every image opened, as qemu-img prints nothing then.
/// Image options and `-f` apply to the first image only.
pub fn info_chain(
    target: Target<'_>,
    dialect: QemuDialect,
) -> Result<(Vec<ImageInfo>, Vec<Diagnostic>), Error> {
    let mut chain: Vec<ImageInfo> = Vec::new();
    let mut warnings = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut next = Some((target.name.to_string(), target.fmt.map(str::to_string)));
    let mut image_opts = target.image_opts;
    while let Some((name, format)) = next.take() {
        if !seen.insert(name.clone()) {
            let e = Error::open(format!("Backing file '{name}' creates an infinite loop."));
            return Err(e.after(warnings));
        }
        let this = Target { name: &name, fmt: format.as_deref(), image_opts, ..target };
        let (info, printed) = info(this, dialect).map_err(|e| e.after(warnings.clone()))?;
        image_opts = false;
        warnings.extend(printed);
        next = match (&info.full_backing_filename, &info.backing_filename) {
            (Some(full), _) => Some((full.clone(), info.backing_filename_format.clone())),
            (None, Some(backing)) => {
                let e = Error::open(format!(
                    "Could not determine absolute backing filename, but backing filename \
                     '{backing}' present"
                ));
                return Err(e.after(warnings));
            }
            (None, None) => None,
        };
        chain.push(info);
    }
    Ok((chain, warnings))
}

/// The internal snapshots of the image `target` names, for `snapshot`, opened as
/// qemu-img's `img_snapshot` opens it (with its backing chain), and what
/// opening it printed on stderr. A format without internal snapshots has
/// none. `writable` is the open of an action that writes (`-a`, `-c`,
/// `-d`, and no action before the rework): qemu opens the image
/// read-write then, and warns that a probed raw image has block 0
/// restricted. instar never writes.
pub fn snapshots(
    target: Target<'_>,
    writable: bool,
    dialect: QemuDialect,
) -> Result<(Vec<SnapshotInfo>, Vec<Diagnostic>), Error> {
    let flags = OpenFlags { check: false, no_io: false, dialect };
    let (mut opened, path) = open(target, flags, true)?;
    // qemu names the node's file name; for a name given as it is, the
    // name as given.
    let filename = if target.image_opts { path.as_str() } else { target.name };
    if writable && opened.probed && opened.format.name() == "raw" {
        opened.warnings.push(Diagnostic::Plain(format!(
            "WARNING: Image format was not specified for '{filename}' and probing guessed raw.\n         \
             Automatically detecting the format is dangerous for raw images, write operations \
             on block 0 will be restricted.\n         \
             Specify the 'raw' format explicitly to remove the restrictions.\n"
        )));
    }
    match opened.image.info() {
        Ok(info) => Ok((info.snapshots.unwrap_or_default(), opened.warnings)),
        Err(e) => Err(e.wrap_open(target.name).after(opened.warnings)),
    }
}

/// An image opened for `check`, ready to run it ([`open_for_check`]).
pub struct CheckTarget {
    /// The name the user gave, for the error wrapper.
    filename: String,
    /// What runs.
    what: CheckKind,
}

/// The check a [`CheckTarget`] runs.
enum CheckKind {
    /// qemu's check of the opened image.
    Image(Box<dyn Image>),
    /// instar's structural check (`--deep`) of the file, as this format.
    Deep(&'static dyn Format, ImageFile),
}

/// Opens `filename` for `qemu-img check` as qemu-img of `dialect` does:
/// as `fmt` or probed, with its backing chain; with `deep`, just the file
/// where the format has a structural check of instar's own. Returns what
/// opening printed on stderr beside it, which qemu prints before the
/// check's own lines.
pub fn open_for_check(
    image: Target<'_>,
    deep: bool,
    dialect: QemuDialect,
) -> Result<(CheckTarget, Vec<Diagnostic>), Error> {
    let (filename, fmt) = (image.name, image.fmt);
    let target = |what| CheckTarget { filename: filename.to_string(), what };
    let flags = OpenFlags::CHECK.in_dialect(dialect);
    if deep && !image.image_opts {
        let path = local_path(filename).map_err(|e| could_not_open(filename, e.message()))?;
        let named =
            fmt.map(|f| named_driver(f, dialect)).transpose().map_err(|e| e.wrap_open(filename))?;
        let file = open_file(path, dialect).map_err(|e| e.wrap_open(filename))?;
        let format = file_format(&file, named, flags).map_err(|e| e.wrap_open(filename))?;
        if format.has_deep_check() {
            return Ok((target(CheckKind::Deep(format, file)), Vec::new()));
        }
    }
    let (opened, _) = open(image, flags, true)?;
    Ok((target(CheckKind::Image(opened.image)), opened.warnings))
}

impl CheckTarget {
    /// Runs the check, its lines sent to `lines` as they are found; they
    /// are closed (flushed) before it returns.
    pub fn run(self, lines: Lines) -> Result<CheckReport, Error> {
        let mut report = match self.what {
            CheckKind::Image(image) => image.check(lines),
            CheckKind::Deep(format, file) => format.deep_check(file, lines),
        }
        .map_err(|e| e.wrap_open(&self.filename))?;
        // qemu-img reports the image by the name its command line gave
        // (`file:a.qcow2`, or the option string of `--image-opts`).
        report.filename = self.filename;
        report.close_lines();
        Ok(report)
    }
}

/// The consistency check of `filename` as `qemu-img check` runs it
/// ([`open_for_check`], then [`CheckTarget::run`]), its lines kept in the
/// report, and what opening printed on stderr.
pub fn check(
    image: Target<'_>,
    deep: bool,
    dialect: QemuDialect,
) -> Result<(CheckReport, Vec<Diagnostic>), Error> {
    let (target, warnings) = open_for_check(image, deep, dialect)?;
    match target.run(Lines::keep()) {
        Ok(report) => Ok((report, warnings)),
        Err(e) => Err(e.after(warnings)),
    }
}

/// The virtual size of `filename` opened as `fmt` (or probed) as qemu-img
/// of `dialect` does, and the format's name: what creating an image over a
/// backing file needs. Its errors are the block layer's, without
/// qemu-img's prefix.
pub fn size_and_format(
    filename: &str,
    fmt: Option<&str>,
    dialect: QemuDialect,
) -> Result<(u64, &'static str), Error> {
    let path = local_path(filename)?;
    let opened = open_node(path, fmt, OpenFlags::INFO.in_dialect(dialect))?;
    Ok((opened.image.virtual_size(), opened.format.name()))
}
