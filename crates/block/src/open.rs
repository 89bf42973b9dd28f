//! Opening an image, as qemu's `bdrv_open` does for every command: the
//! file protocol opens the file, the format is the one named or the one
//! probed, the format's one open runs its checks, and, unless the command
//! asks for no backing file, the backing chain is opened after it. Open
//! failures are worded as qemu-img words them (`Could not open '<file>':
//! ...`, `Could not open backing file: ...`).

use crate::probe::{probe_file, ProbeOrder};
use crate::protocol::local_path;
use crate::registry::{lookup_driver, Driver};
use instar_core::error::strerror;
use instar_core::file::MAX_LENGTH;
use instar_core::path::full_backing_filename;
use instar_core::{
    CheckReport, Diagnostic, Error, Format, Image, ImageFile, ImageInfo, Lines, OpenFlags,
    QemuDialect, SnapshotInfo,
};
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
fn open_file(path: &str) -> Result<ImageFile, Error> {
    let file = ImageFile::open(path).map_err(|e| could_not_open(path, &strerror(&e)))?;
    if !file.is_regular() {
        return Err(Error::open(format!("'file' driver requires '{path}' to be a regular file")));
    }
    Ok(file)
}

/// The driver called `name`, with qemu's `Unknown driver` when there is
/// none. A format only qemu reads is refused after the file is opened, as
/// qemu's own driver would fail then.
fn named_driver(name: &str) -> Result<Driver, Error> {
    lookup_driver(name, || Error::invalid(format!("Unknown driver '{name}'")))
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
}

/// qemu's `bdrv_open` of the local file `path` as `fmt` (or probed):
/// errors as the block layer words them, without qemu-img's prefix.
fn open_node(path: &str, fmt: Option<&str>, flags: OpenFlags) -> Result<Opened, Error> {
    // qemu looks the driver up before the file protocol opens the file.
    let named = fmt.map(named_driver).transpose()?;
    let file = open_file(path)?;
    let format = file_format(&file, named, flags)?;
    let image = format.open(file, flags)?;
    let warnings = image.warnings();
    // After the driver's open, the block layer refuses a disk larger than
    // it addresses (`bdrv_refresh_total_sectors`).
    if image.virtual_size() > MAX_LENGTH {
        let e = Error::open("Could not refresh total sector count: File too large");
        return Err(e.after(warnings));
    }
    Ok(Opened { format, image, warnings })
}

/// Opens `filename` (as the user gave it) as `fmt`, or probed, with
/// `flags`, as qemu-img opens the image a command names: failures get
/// qemu-img's `Could not open '<file>': ` prefix. With `backing`, the
/// backing chain is opened too (and then dropped: only its open errors
/// matter to the commands so far).
pub fn open(
    filename: &str,
    fmt: Option<&str>,
    flags: OpenFlags,
    backing: bool,
) -> Result<Opened, Error> {
    let path = local_path(filename).map_err(|e| could_not_open(filename, e.message()))?;
    let mut opened = open_node(path, fmt, flags).map_err(|e| e.wrap_open(filename))?;
    if backing {
        let image = opened.image.as_ref();
        open_backing_chain(path, image, flags, &mut opened.warnings)
            .map_err(|e| e.wrap_open(filename).after(opened.warnings.clone()))?;
    }
    Ok(opened)
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
) -> Result<(), Error> {
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
        let child = open_node(&child_path, backing.format.as_deref(), flags).map_err(wrap)?;
        warnings.extend(child.warnings);
        next = child.image.backing().filter(|b| !b.name.is_empty());
        parent_path = child_path;
    }
    Ok(())
}

/// What `info` reports for `filename`, opened as `fmt` or probed as
/// qemu-img of `dialect` does, without its backing file (qemu-img info
/// opens with `BDRV_O_NO_BACKING`), and what opening it printed on stderr.
pub fn info(
    filename: &str,
    fmt: Option<&str>,
    dialect: QemuDialect,
) -> Result<(ImageInfo, Vec<Diagnostic>), Error> {
    let opened = open(filename, fmt, OpenFlags::INFO.in_dialect(dialect), false)?;
    match opened.image.info() {
        Ok(info) => Ok((info, opened.warnings)),
        Err(e) => Err(e.wrap_open(filename).after(opened.warnings)),
    }
}

/// The internal snapshots of `filename` for `snapshot`, opened as
/// qemu-img's `img_snapshot` opens it (with its backing chain), and what
/// opening it printed on stderr. A format without internal snapshots has
/// none. `writable` is the open of an action that writes (`-a`, `-c`,
/// `-d`, and no action before the rework): qemu opens the image
/// read-write then, and warns that a probed raw image has block 0
/// restricted. instar never writes.
pub fn snapshots(
    filename: &str,
    fmt: Option<&str>,
    writable: bool,
    dialect: QemuDialect,
) -> Result<(Vec<SnapshotInfo>, Vec<Diagnostic>), Error> {
    let flags = OpenFlags { check: false, no_io: false, dialect };
    let mut opened = open(filename, fmt, flags, true)?;
    if writable && fmt.is_none() && opened.format.name() == "raw" {
        opened.warnings.push(Diagnostic::Plain(format!(
            "WARNING: Image format was not specified for '{filename}' and probing guessed raw.\n         \
             Automatically detecting the format is dangerous for raw images, write operations \
             on block 0 will be restricted.\n         \
             Specify the 'raw' format explicitly to remove the restrictions.\n"
        )));
    }
    match opened.image.info() {
        Ok(info) => Ok((info.snapshots.unwrap_or_default(), opened.warnings)),
        Err(e) => Err(e.wrap_open(filename).after(opened.warnings)),
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
    filename: &str,
    fmt: Option<&str>,
    deep: bool,
    dialect: QemuDialect,
) -> Result<(CheckTarget, Vec<Diagnostic>), Error> {
    let target = |what| CheckTarget { filename: filename.to_string(), what };
    let flags = OpenFlags::CHECK.in_dialect(dialect);
    if deep {
        let path = local_path(filename).map_err(|e| could_not_open(filename, e.message()))?;
        let named = fmt.map(named_driver).transpose().map_err(|e| e.wrap_open(filename))?;
        let file = open_file(path).map_err(|e| e.wrap_open(filename))?;
        let format = file_format(&file, named, flags).map_err(|e| e.wrap_open(filename))?;
        if format.has_deep_check() {
            return Ok((target(CheckKind::Deep(format, file)), Vec::new()));
        }
    }
    let opened = open(filename, fmt, flags, true)?;
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
        report.close_lines();
        Ok(report)
    }
}

/// The consistency check of `filename` as `qemu-img check` runs it
/// ([`open_for_check`], then [`CheckTarget::run`]), its lines kept in the
/// report, and what opening printed on stderr.
pub fn check(
    filename: &str,
    fmt: Option<&str>,
    deep: bool,
    dialect: QemuDialect,
) -> Result<(CheckReport, Vec<Diagnostic>), Error> {
    let (target, warnings) = open_for_check(filename, fmt, deep, dialect)?;
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
