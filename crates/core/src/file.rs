//! The one file layer under every format (qemu's `block/file-posix.c` with
//! the request checks of `block/io.c`): reading an image file as qemu's
//! file protocol presents it to a format driver, and creating the file of
//! a new image with the file protocol's options.
//!
//! Reading ([`ImageFile`]): the length counts in whole sectors, bytes past
//! the end read as zeros, and a request beyond the block layer's limits
//! fails with `EIO`, so a header pointing far away fails as it fails in
//! qemu. The bytes may come from a file or from memory, so parsers and
//! fuzz targets need no files.
//!
//! Creating ([`FileOptions`], [`NewFile`]): qemu's `raw_co_create_opts`
//! reads the protocol's options (`size`, `preallocation`, `nocow`,
//! `extent_size_hint`) from what the format did not consume, and
//! `raw_co_create` opens the file with mode 0644 (under the umask),
//! empties it and sizes it. A [`NewFile`] that is dropped before
//! [`NewFile::keep`] removes the file, but only if this run created it
//! and it is still the same regular file: a failed create never deletes
//! what it did not make (a FIFO, a device node, a symbolic link, a file
//! that was there). A file that was there and that the create emptied is
//! left empty, not half-written. Nothing here waits on a FIFO.

use crate::bytes::{round_up_to_sector, SECTOR_SIZE};
use crate::opts::{OptDesc, Options};
use crate::rawtext;
use crate::Error;
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

/// The furthest byte qemu's block layer addresses (`BDRV_MAX_LENGTH`:
/// `INT64_MAX` aligned down to 1 GiB).
pub const MAX_LENGTH: u64 = (i64::MAX as u64) & !((1 << 30) - 1);

/// The largest single request qemu's block layer accepts
/// (`BDRV_REQUEST_MAX_BYTES`: `INT_MAX` aligned down to a sector).
pub const REQUEST_MAX_BYTES: u64 = (i32::MAX as u64) & !(SECTOR_SIZE - 1);

/// The mode qemu creates image files with (`qemu_create(..., 0644)`),
/// before the umask applies.
pub const CREATE_MODE: u32 = 0o644;

/// The largest extent size hint the file protocol accepts: the kernel's
/// field is 32 bits wide.
pub const MAX_EXTENT_SIZE_HINT: u64 = u32::MAX as u64;

/// qemu writes zeros over the first block of a new sparse file so that
/// later alignment probing finds it allocated (`allocate_first_block`):
/// 4096 bytes (`MAX_BLOCKSIZE`), or one sector for a smaller file.
pub const FIRST_BLOCK_MAX: u64 = 4096;

/// Zeros written per call when preallocating: small enough to stay in the
/// CPU cache, large enough to keep system calls few (measured: 8 MiB
/// chunks made `preallocation=full` 20% slower than qemu-img, 256 KiB
/// chunks 10% faster).
pub const ZERO_CHUNK: usize = 256 << 10;

/// An `io::Error` for `errno`.
pub fn errno(e: rustix::io::Errno) -> io::Error {
    io::Error::from_raw_os_error(e.raw_os_error())
}

/// qemu's `EIO` for a request outside the block layer's limits.
pub fn eio() -> io::Error {
    errno(rustix::io::Errno::IO)
}

/// Files held in memory by name: the other files an in-memory image may
/// name (vmdk extents, a qcow2 data file), for fuzz targets and tests that
/// touch no file system.
pub type MemoryFiles = Arc<BTreeMap<String, Vec<u8>>>;

/// Where an [`ImageFile`]'s bytes are.
#[derive(Debug)]
enum Source {
    Disk(File),
    /// The bytes, and the files beside them ([`ImageFile::open_beside`]).
    Memory(Vec<u8>, MemoryFiles),
}

/// An image file opened read-only, read as qemu's file protocol presents
/// it. instar never opens an image it inspects for writing.
#[derive(Debug)]
pub struct ImageFile {
    name: String,
    source: Source,
    len: u64,
    allocated: u64,
    regular: bool,
    /// The last run of data `SEEK_DATA`/`SEEK_HOLE` found, as start and
    /// end (empty at first): qemu's block-status cache for the file
    /// protocol (`bdrv_bsc_is_data`), which spares a walk over a large
    /// data run two `lseek`s per step.
    known_data: Mutex<(u64, u64)>,
}

impl ImageFile {
    /// Opens the file named `name` ([`rawtext`]: any bytes) read-only;
    /// messages name it as given. The open does not block on a FIFO (it
    /// is non-blocking, and the callers refuse what is not a regular
    /// file).
    pub fn open(name: &str) -> io::Result<ImageFile> {
        #[allow(clippy::cast_possible_wrap, reason = "O_NONBLOCK (0o4000) is a C `int` flag")]
        let nonblock = rustix::fs::OFlags::NONBLOCK.bits() as i32;
        let file =
            OpenOptions::new().read(true).custom_flags(nonblock).open(rawtext::to_path(name))?;
        let meta = file.metadata()?;
        Ok(ImageFile {
            name: name.to_string(),
            len: meta.len(),
            allocated: meta.blocks().saturating_mul(SECTOR_SIZE),
            regular: meta.is_file(),
            source: Source::Disk(file),
            known_data: Mutex::new((0, 0)),
        })
    }

    /// An image held in memory under the name `name` (for parsers' tests
    /// and fuzz targets); it has no host allocation, and no other file
    /// beside it.
    pub fn from_bytes(name: &str, bytes: Vec<u8>) -> ImageFile {
        ImageFile::in_memory(name, bytes, MemoryFiles::default())
    }

    /// An image held in memory under the name `name`, with the files it
    /// may name held in memory beside it (`beside`, by the names the
    /// format resolves them to).
    pub fn in_memory(name: &str, bytes: Vec<u8>, beside: MemoryFiles) -> ImageFile {
        ImageFile {
            name: name.to_string(),
            len: bytes.len() as u64,
            allocated: 0,
            regular: true,
            source: Source::Memory(bytes, beside),
            known_data: Mutex::new((0, 0)),
        }
    }

    /// Opens another file this image names (a vmdk extent, a qcow2 data
    /// file), by the name the format resolved: from disk for an image on
    /// disk ([`ImageFile::open`]), from the same set for an image in
    /// memory (`ENOENT` when the set has no file of that name). An image
    /// in memory so never reaches the file system.
    pub fn open_beside(&self, name: &str) -> io::Result<ImageFile> {
        match &self.source {
            Source::Disk(_) => ImageFile::open(name),
            Source::Memory(_, beside) => match beside.get(name) {
                Some(bytes) => Ok(ImageFile::in_memory(name, bytes.clone(), beside.clone())),
                None => Err(errno(rustix::io::Errno::NOENT)),
            },
        }
    }

    /// The name the file was opened by.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether it is a regular file (qemu's `file` driver refuses others).
    pub fn is_regular(&self) -> bool {
        self.regular
    }

    /// The length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the file is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The length as qemu's block layer reports it: whole sectors.
    pub fn sector_len(&self) -> u64 {
        round_up_to_sector(self.len)
    }

    /// Bytes the host file system has allocated to the file
    /// (`st_blocks * 512`, qemu's `raw_get_allocated_file_size`).
    pub fn allocated_bytes(&self) -> u64 {
        self.allocated
    }

    /// The request checks of qemu's block layer (`bdrv_check_request32`):
    /// `EIO` for a request it would refuse.
    pub fn check_request(offset: u64, bytes: u64) -> io::Result<()> {
        if offset > i64::MAX as u64 || bytes > REQUEST_MAX_BYTES || offset > MAX_LENGTH - bytes {
            return Err(eio());
        }
        Ok(())
    }

    /// Fills `buf` from `offset`; what lies past the end reads as zeros.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        ImageFile::check_request(offset, buf.len() as u64)?;
        #[allow(clippy::cast_possible_truncation, reason = "at most `buf.len()`, a usize")]
        let in_file = self.len.saturating_sub(offset).min(buf.len() as u64) as usize;
        match &self.source {
            Source::Disk(file) => file.read_exact_at(&mut buf[..in_file], offset)?,
            Source::Memory(bytes, _) if in_file > 0 => {
                #[allow(
                    clippy::cast_possible_truncation,
                    reason = "`in_file > 0` implies `offset < len`, the length of a Vec"
                )]
                let start = offset as usize;
                buf[..in_file].copy_from_slice(&bytes[start..start + in_file]);
            }
            Source::Memory(..) => {}
        }
        buf[in_file..].fill(0);
        Ok(())
    }

    /// The first offset at or after `pos` where the file holds data
    /// (`SEEK_DATA`), `None` when only a hole follows. A file in memory is
    /// data throughout.
    pub fn seek_data(&self, pos: u64) -> io::Result<Option<u64>> {
        if pos >= self.len {
            return Ok(None);
        }
        match &self.source {
            Source::Disk(file) => match rustix::fs::seek(file, rustix::fs::SeekFrom::Data(pos)) {
                Ok(at) => Ok(Some(at)),
                Err(rustix::io::Errno::NXIO) => Ok(None),
                Err(e) => Err(errno(e)),
            },
            Source::Memory(..) => Ok(Some(pos)),
        }
    }

    /// The first offset at or after `pos` where a hole starts
    /// (`SEEK_HOLE`; the end of the file counts as one).
    pub fn seek_hole(&self, pos: u64) -> io::Result<u64> {
        match &self.source {
            Source::Disk(file) if pos < self.len => {
                rustix::fs::seek(file, rustix::fs::SeekFrom::Hole(pos)).map_err(errno)
            }
            _ => Ok(self.len.max(pos)),
        }
    }

    /// The end of the run of data last found around `pos`
    /// ([`ImageFile::remember_data`]), if `pos` lies inside it.
    pub fn known_data_end(&self, pos: u64) -> Option<u64> {
        let (start, end) = *self.known_data.lock().unwrap_or_else(PoisonError::into_inner);
        (start..end).contains(&pos).then_some(end)
    }

    /// Remembers that `start..end` is data (the last run found wins).
    pub fn remember_data(&self, start: u64, end: u64) {
        *self.known_data.lock().unwrap_or_else(PoisonError::into_inner) = (start, end);
    }

    /// `len` bytes from `offset` in a new buffer (past the end: zeros).
    /// The caller bounds `len` by what the format allows; a request qemu's
    /// block layer refuses fails with `EIO` before any memory is taken.
    pub fn read_vec(&self, offset: u64, len: u64) -> io::Result<Vec<u8>> {
        ImageFile::check_request(offset, len)?;
        // Under 2 GiB after `check_request`.
        let len = usize::try_from(len).map_err(|_| eio())?;
        let mut buf = vec![0u8; len];
        self.read_at(offset, &mut buf)?;
        Ok(buf)
    }
}

/// The preallocation modes qemu knows (`PreallocMode`); the file protocol
/// implements `off`, `falloc` and `full`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prealloc {
    /// Sparse: only the first block is written.
    Off,
    /// Metadata only; a format's mode, refused by the file protocol.
    Metadata,
    /// `posix_fallocate()` the whole file.
    Falloc,
    /// Write zeros over the whole file.
    Full,
}

impl Prealloc {
    /// Parses a mode name as qemu's `qapi_enum_parse` does, with qemu's
    /// message for an unknown one; no value means `off`.
    pub fn parse(text: Option<&str>) -> Result<Prealloc, Error> {
        match text {
            None => Ok(Prealloc::Off),
            Some(name) => Prealloc::from_name(name)
                .ok_or_else(|| Error::invalid(format!("invalid parameter value: {name}"))),
        }
    }

    /// The mode called `name`, if qemu knows one by that name.
    pub fn from_name(name: &str) -> Option<Prealloc> {
        match name {
            "off" => Some(Prealloc::Off),
            "metadata" => Some(Prealloc::Metadata),
            "falloc" => Some(Prealloc::Falloc),
            "full" => Some(Prealloc::Full),
            _ => None,
        }
    }

    /// The mode's name.
    pub fn name(self) -> &'static str {
        match self {
            Prealloc::Off => "off",
            Prealloc::Metadata => "metadata",
            Prealloc::Falloc => "falloc",
            Prealloc::Full => "full",
        }
    }
}

/// The file protocol's create options, as `raw_co_create_opts` reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileOptions {
    /// The file's length: the `size` option rounded up to whole sectors,
    /// or 0 when the format consumed `size` (it writes its own layout).
    pub size: u64,
    /// How the file's space is allocated.
    pub prealloc: Prealloc,
    /// Whether to ask the file system not to copy on write (btrfs).
    pub nocow: bool,
    /// The extent size hint, when given.
    pub extent_size_hint: Option<u64>,
}

impl FileOptions {
    /// The protocol's view of `opts`: qemu's formats consume their own
    /// options (`consumed`: every option of theirs, `size` included), and
    /// the file protocol reads what is left. Parse errors come here, as
    /// in qemu before any file is touched.
    pub fn from_options(opts: &Options, consumed: &[OptDesc]) -> Result<FileOptions, Error> {
        let left = |name: &str| !consumed.iter().any(|d| d.name == name);
        // qemu computes ROUND_UP in int64_t; past INT64_MAX the value wraps
        // and the resize then fails with EINVAL, as here.
        let size = if left("size") {
            opts.get_number("size").unwrap_or(0).div_ceil(SECTOR_SIZE).wrapping_mul(SECTOR_SIZE)
        } else {
            0
        };
        let prealloc = if left("preallocation") {
            Prealloc::parse(opts.get_str("preallocation"))?
        } else {
            Prealloc::Off
        };
        let extent_size_hint =
            if left("extent_size_hint") { opts.get_number("extent_size_hint") } else { None };
        let nocow = left("nocow") && opts.get_bool("nocow") == Some(true);
        Ok(FileOptions { size, prealloc, nocow, extent_size_hint })
    }

    /// `raw_co_create`'s checks of its options, made before the file is
    /// opened.
    fn validate(&self) -> Result<(), Error> {
        if self.extent_size_hint.unwrap_or(0) > MAX_EXTENT_SIZE_HINT {
            return Err(Error::invalid("Extent size hint is too large"));
        }
        Ok(())
    }

    /// Runs a format's own checks of its options, which qemu makes only
    /// after it has created the file: when they fail, a failure to create
    /// the file at `path` is the error qemu reports, and instar finds it
    /// without touching anything ([`FileOptions::check`]).
    pub fn after_creating<T, E: Into<Error>>(
        &self,
        path: &str,
        checks: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, Error> {
        checks().map_err(|e| self.check(path).err().unwrap_or_else(|| e.into()))
    }

    /// Fails as creating the file at `path` would, without changing
    /// anything: qemu creates the image file before a format checks its
    /// own options, so these failures are the ones it reports first, and
    /// instar reports them without touching an existing file. (qemu would
    /// have emptied it; instar leaves it as it was.) What is not a regular
    /// file (a FIFO, a device node) fails as qemu's emptying of it fails.
    pub fn check(&self, path: &str) -> Result<(), Error> {
        self.validate()?;
        let (file, created) = open_new(path).map_err(|e| create_error(path, e))?;
        match created {
            Some(made) => remove_if_ours(&made, &file),
            None => refuse_special(&file)?,
        }
        refused_growth(self.size, self.prealloc).map_or(Ok(()), Err)
    }
}

/// What the file protocol's truncate of an empty file refuses before it
/// touches the file (`handle_aiocb_truncate`, which takes the length as
/// an `int64_t`: past `INT64_MAX` it is negative, so a file of any length
/// would be "shrunk").
fn refused_growth(length: u64, prealloc: Prealloc) -> Option<Error> {
    let negative = length > i64::MAX as u64;
    match prealloc {
        Prealloc::Off if negative => {
            Some(Error::io("Could not resize file", errno(rustix::io::Errno::INVAL)))
        }
        Prealloc::Off => None,
        _ if negative => Some(Error::invalid("Cannot use preallocation for shrinking files")),
        Prealloc::Metadata => Some(unsupported_prealloc(prealloc)),
        Prealloc::Falloc | Prealloc::Full => None,
    }
}

/// `Could not create '<path>': <strerror>`, qemu's `qemu_create` error.
fn create_error(path: &str, e: io::Error) -> Error {
    Error::io(format!("Could not create '{path}'"), e)
}

/// The file protocol's refusal of a mode it does not implement.
fn unsupported_prealloc(mode: Prealloc) -> Error {
    Error::invalid(format!("Unsupported preallocation mode: {}", mode.name()))
}

/// Opens `path` for reading and writing as qemu's `qemu_create` does
/// (`O_RDWR | O_CREAT`, mode 0644; a FIFO opens without waiting for a
/// reader), and tells which file this call created, if it created one:
/// `path` itself, or the file a dangling symbolic link at `path` points
/// to (`O_CREAT` follows the link and creates its target; the link is
/// not this run's to remove).
fn open_new(path: &str) -> io::Result<(File, Option<PathBuf>)> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).mode(CREATE_MODE);
    let path = rawtext::to_path(path);
    match options.clone().create_new(true).open(&path) {
        Ok(file) => return Ok((file, Some(path))),
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
        Err(_) => {}
    }
    match options.open(&path) {
        Ok(file) => Ok((file, None)),
        // Something is at `path`, yet opening it finds nothing: a dangling
        // symbolic link. The open creates where it points, through the
        // link as qemu's open does (so the kernel's rules for following
        // links apply alike); the file made is the one at its end.
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let target = link_target(&path)?;
            let file = options.create(true).open(&path)?;
            let made = match (std::fs::symlink_metadata(&target), file.metadata()) {
                (Ok(on_disk), Ok(open))
                    if on_disk.dev() == open.dev() && on_disk.ino() == open.ino() =>
                {
                    Some(target)
                }
                _ => None,
            };
            Ok((file, made))
        }
        Err(e) => Err(e),
    }
}

/// Where the chain of symbolic links that starts at `path` ends (a path
/// that is not a link, or does not exist); `ELOOP` after 40 links, as the
/// kernel counts.
fn link_target(path: &Path) -> io::Result<PathBuf> {
    let mut at = path.to_path_buf();
    for _ in 0..40 {
        match std::fs::symlink_metadata(&at) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let to = std::fs::read_link(&at)?;
                // Relative to the link's folder; an absolute target
                // replaces the whole path.
                at = at.parent().map_or_else(|| to.clone(), |dir| dir.join(&to));
            }
            _ => return Ok(at),
        }
    }
    Err(errno(rustix::io::Errno::LOOP))
}

/// Whether the names `a` and `b` stand for the same file, or will once
/// `a` is created: the same inode when both exist; else the same folder
/// and name once the folders are resolved and symbolic links at the end
/// followed (a dangling link to `a` is `a`).
pub fn same_file(a: &str, b: &str) -> bool {
    let (a, b) = (rawtext::to_path(a), rawtext::to_path(b));
    if let (Ok(x), Ok(y)) = (std::fs::metadata(&a), std::fs::metadata(&b)) {
        return x.dev() == y.dev() && x.ino() == y.ino();
    }
    let resolved = |p: &Path| -> Option<PathBuf> {
        let end = link_target(p).ok()?;
        let name = end.file_name()?.to_owned();
        let folder = match end.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        };
        Some(std::fs::canonicalize(folder).ok()?.join(name))
    };
    matches!((resolved(&a), resolved(&b)), (Some(x), Some(y)) if x == y)
}

/// Removes `path` if it is still the regular file `file` is open on.
fn remove_if_ours(path: &Path, file: &File) {
    let (Ok(on_disk), Ok(open)) = (std::fs::symlink_metadata(path), file.metadata()) else {
        return;
    };
    if on_disk.is_file() && on_disk.dev() == open.dev() && on_disk.ino() == open.ino() {
        let _ = std::fs::remove_file(path);
    }
}

/// qemu's `raw_co_create` empties the file it opened before anything
/// else; for what is not a regular file (a FIFO, a device node) that
/// `ftruncate` fails with `EINVAL`, which the kernel returns without
/// touching it. This is that failure, found the same way, for a file
/// instar leaves alone otherwise.
fn refuse_special(file: &File) -> Result<(), Error> {
    let regular = file.metadata().map_err(|e| Error::io("Could not stat file", e))?.is_file();
    if regular {
        Ok(())
    } else {
        file.set_len(0).map_err(resize_error)
    }
}

/// A file being created for a new image. Dropping it before [`keep`]
/// undoes what this run did to the path: the file this run created is
/// removed (and nothing else: never a file that was there before, never
/// what is not a regular file, never a symbolic link); a regular file
/// that was there and that this run emptied (as qemu empties it) is left
/// empty, not half-written.
///
/// [`keep`]: NewFile::keep
#[derive(Debug)]
pub struct NewFile {
    file: File,
    /// The file this run created, when it created one.
    created: Option<PathBuf>,
    /// Whether this run emptied a file that was already there.
    emptied: bool,
    kept: bool,
}

impl NewFile {
    /// Creates the file at `path` as qemu's `raw_co_create` does: the
    /// options are checked, the file is opened (created with mode 0644),
    /// marked no-copy-on-write if asked, emptied, and sized with its
    /// preallocation.
    pub fn create(path: &str, opts: &FileOptions) -> Result<NewFile, Error> {
        opts.validate()?;
        if let Some(refusal) = refused_growth(opts.size, opts.prealloc) {
            // The final truncate would refuse the file: fail as qemu does
            // (a file that cannot be created is reported first), touching
            // nothing.
            opts.check(path)?;
            return Err(refusal);
        }
        let (file, created) = open_new(path).map_err(|e| create_error(path, e))?;
        let mut new = NewFile { file, created, emptied: false, kept: false };
        if opts.nocow {
            // An optimisation only (btrfs): qemu ignores failures.
            let _ = set_nocow(&new.file);
        }
        if new.created.is_none() {
            // An existing file is emptied first (a new one already is); a
            // FIFO or a device node fails here, untouched.
            new.file.set_len(0).map_err(resize_error)?;
            new.emptied = true;
        }
        // qemu also sets an extent size hint (1 MiB by default) through
        // FS_IOC_FSSETXATTR; that needs an ioctl rustix does not wrap
        // safely, and it changes nothing on ext4. instar leaves it unset.
        new.grow(opts.size, opts.prealloc)?;
        Ok(new)
    }

    /// Opens the existing file at `path` for writing, as qemu's file
    /// protocol opens a node (`O_RDWR`, no `O_CREAT`, nothing emptied): a
    /// file a format uses as it is (qcow2's `keep_data_file`). Dropping
    /// it never removes or empties it.
    pub fn open_existing(path: &str) -> Result<NewFile, Error> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(rawtext::to_path(path))
            .map_err(|e| Error::io(format!("Could not open '{path}'"), e))?;
        let regular = file.metadata().map_err(|e| Error::io("Could not stat file", e))?.is_file();
        if !regular {
            return Err(Error::open(format!(
                "'file' driver requires '{path}' to be a regular file"
            )));
        }
        Ok(NewFile { file, created: None, emptied: false, kept: false })
    }

    /// The open file.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Writes all of `buf` at `offset`.
    pub fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.file.write_all_at(buf, offset)
    }

    /// Grows the file (empty, or for `off` any shorter file) to `length`
    /// as the file protocol's truncate does (`handle_aiocb_truncate`),
    /// with its messages.
    pub fn grow(&self, length: u64, prealloc: Prealloc) -> Result<(), Error> {
        if let Some(e) = refused_growth(length, prealloc) {
            return Err(e);
        }
        match prealloc {
            // The file is empty: growing it to 0 changes nothing.
            Prealloc::Off if length == 0 => {}
            Prealloc::Off => {
                // The first block is written only into a file that was
                // empty (qemu's alignment-probing hint).
                let was_empty = self.file.metadata().is_ok_and(|m| m.len() == 0);
                self.file.set_len(length).map_err(resize_error)?;
                if was_empty {
                    self.write_first_block(length);
                }
            }
            Prealloc::Falloc => {
                if length > 0 {
                    allocate(&self.file, 0, length)
                        .map_err(|e| grow_error("Could not preallocate new data", e))?;
                    self.write_first_block(length);
                }
            }
            Prealloc::Full => {
                self.file.set_len(length).map_err(resize_error)?;
                write_zeros(&self.file, 0, length)
                    .map_err(|e| grow_error("Could not write zeros for preallocation", e))?;
                self.file.sync_all().map_err(|e| grow_error("Could not flush file to disk", e))?;
            }
            // Refused by `refused_growth` above.
            Prealloc::Metadata => {}
        }
        Ok(())
    }

    /// qemu's `allocate_first_block`: zeros over the first 4 KiB (one
    /// sector of a smaller file), an allocation hint whose failure is
    /// ignored.
    fn write_first_block(&self, length: u64) {
        let n = if length < FIRST_BLOCK_MAX { SECTOR_SIZE } else { FIRST_BLOCK_MAX };
        #[allow(clippy::cast_possible_truncation, reason = "constants: 512 or 4096")]
        let _ = self.file.write_all_at(&[0u8; FIRST_BLOCK_MAX as usize][..n as usize], 0);
    }

    /// The create succeeded: the file stays.
    pub fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for NewFile {
    fn drop(&mut self) {
        if self.kept {
            return;
        }
        match &self.created {
            Some(made) => remove_if_ours(made, &self.file),
            // Its old bytes went when it was emptied; what this run wrote
            // since goes too (through the open file: the same regular file).
            None if self.emptied => {
                let _ = self.file.set_len(0);
            }
            None => {}
        }
    }
}

/// Asks the file system not to copy-on-write the file (btrfs).
fn set_nocow(file: &File) -> io::Result<()> {
    use rustix::fs::{ioctl_getflags, ioctl_setflags, IFlags};
    let flags = ioctl_getflags(file)?;
    ioctl_setflags(file, flags | IFlags::NOCOW)?;
    Ok(())
}

/// qemu reports a file too large for the file system as the format being
/// unable to hold the size; other failures as a failed resize.
fn resize_error(e: io::Error) -> Error {
    grow_error("Could not resize file", e)
}

/// A failure of the file protocol's truncate (`handle_aiocb_truncate`),
/// whose errno qemu's create returns: `EFBIG` (a file larger than the file
/// system or `RLIMIT_FSIZE` allows) becomes the block layer's `The image
/// size is too large for file format ...`; anything else is `context`
/// with the error's text.
fn grow_error(context: &str, e: io::Error) -> Error {
    if e.raw_os_error() == Some(rustix::io::Errno::FBIG.raw_os_error()) {
        Error::too_large(e)
    } else {
        Error::io(context, e)
    }
}

/// Writes zeros over `[start, end)` of `file`, so that the file system
/// allocates and writes every block.
pub fn write_zeros(file: &File, start: u64, end: u64) -> io::Result<()> {
    let zeros = vec![0u8; ZERO_CHUNK];
    let mut at = start;
    while at < end {
        #[allow(clippy::cast_possible_truncation, reason = "at most `ZERO_CHUNK`, a usize")]
        let n = (end - at).min(ZERO_CHUNK as u64) as usize;
        file.write_all_at(&zeros[..n], at)?;
        at += n as u64;
    }
    Ok(())
}

/// `posix_fallocate` of `[start, end)`: the file system allocates the
/// range, or, where it cannot, zeros are written.
pub fn allocate(file: &File, start: u64, end: u64) -> io::Result<()> {
    let flags = rustix::fs::FallocateFlags::empty();
    match rustix::fs::fallocate(file, flags, start, end - start) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::OPNOTSUPP) => write_zeros(file, start, end),
        Err(e) => Err(errno(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::opts::FILE_PROTOCOL_OPTS;

    fn options(list: &str, consumed: &[OptDesc]) -> Result<FileOptions, Error> {
        let mut o = Options::new(&[FILE_PROTOCOL_OPTS]);
        o.parse(list)?;
        FileOptions::from_options(&o, consumed)
    }

    #[test]
    fn same_file_sees_through_names_and_links() {
        let dir = tempfile::tempdir().unwrap();
        let at = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
        let (image, dotted, link) = (at("i.qcow2"), at("./i.qcow2"), at("l.qcow2"));
        std::os::unix::fs::symlink("i.qcow2", &link).unwrap();
        // Before the image exists: by folder and name, the link followed.
        assert!(same_file(&image, &dotted));
        assert!(same_file(&image, &link));
        assert!(!same_file(&image, &at("d.raw")));
        std::fs::write(&image, b"x").unwrap();
        std::fs::write(at("d.raw"), b"x").unwrap();
        // Once it exists: by inode.
        assert!(same_file(&image, &link));
        assert!(!same_file(&image, &at("d.raw")));
        // A file kept as it is: opened, never emptied, never removed.
        drop(NewFile::open_existing(&at("d.raw")).unwrap());
        assert_eq!(std::fs::read(at("d.raw")).unwrap(), b"x");
        let missing = NewFile::open_existing(&at("none")).unwrap_err().to_string();
        assert!(missing.ends_with("none': No such file or directory"), "{missing}");
    }

    #[test]
    fn reads_past_the_end_as_zeros_and_refuses_far_requests() {
        let f = ImageFile::from_bytes("mem", b"abc".to_vec());
        assert_eq!((f.len(), f.sector_len(), f.name()), (3, 512, "mem"));
        let mut buf = [9u8; 5];
        f.read_at(1, &mut buf).unwrap();
        assert_eq!(&buf, b"bc\0\0\0");
        assert_eq!(f.read_vec(u64::from(u32::MAX), 2).unwrap(), vec![0, 0]);
        assert!(f.read_at(MAX_LENGTH, &mut buf).is_err());
        assert!(ImageFile::check_request(0, REQUEST_MAX_BYTES + 512).is_err());
        assert!(ImageFile::check_request(u64::MAX, 1).is_err());
    }

    #[test]
    fn an_image_in_memory_opens_only_the_files_beside_it() {
        let beside: MemoryFiles = Arc::new(BTreeMap::from([("x".to_string(), b"xy".to_vec())]));
        let top = ImageFile::in_memory("top", Vec::new(), beside);
        assert_eq!(top.open_beside("x").unwrap().read_vec(0, 3).unwrap(), b"xy\0");
        let missing = top.open_beside("/etc/passwd").unwrap_err();
        assert_eq!(missing.raw_os_error(), Some(rustix::io::Errno::NOENT.raw_os_error()));
        assert!(ImageFile::from_bytes("m", Vec::new()).open_beside("x").is_err());
    }

    #[test]
    fn reads_a_file_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"hello").unwrap();
        let f = ImageFile::open(path.to_str().unwrap()).unwrap();
        assert!(f.is_regular());
        assert_eq!(f.read_vec(3, 4).unwrap(), b"lo\0\0");
    }

    #[test]
    fn protocol_options_come_from_what_the_format_left() {
        let own = &[OptDesc::new("size", crate::OptType::Size, "")];
        let o = options("size=1000,preallocation=full,nocow=on", &[]).unwrap();
        assert_eq!((o.size, o.prealloc, o.nocow), (1024, Prealloc::Full, true));
        assert_eq!(options("size=1000", own).unwrap().size, 0);
        assert_eq!(
            options("preallocation=bogus", &[]).unwrap_err().to_string(),
            "invalid parameter value: bogus"
        );
        let big = options("extent_size_hint=5T", own).unwrap();
        assert_eq!(big.validate().unwrap_err().to_string(), "Extent size hint is too large");
    }

    #[test]
    fn creates_with_qemu_mode_and_sizes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.raw");
        let p = path.to_str().unwrap();
        let o = options("size=1000", &[]).unwrap();
        NewFile::create(p, &o).unwrap().keep();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.len(), 1024);
        // 0644 under the process umask: never group- or other-writable.
        assert_eq!(meta.mode() & 0o133, 0);
    }

    #[test]
    fn a_failed_create_removes_only_what_it_created() {
        let dir = tempfile::tempdir().unwrap();
        let made = dir.path().join("new");
        let p = made.to_str().unwrap();
        let meta = options("preallocation=metadata,size=1M", &[]).unwrap();
        assert_eq!(
            NewFile::create(p, &meta).unwrap_err().to_string(),
            "Unsupported preallocation mode: metadata"
        );
        assert!(!made.exists());
        let old = dir.path().join("old");
        std::fs::write(&old, b"data").unwrap();
        assert!(NewFile::create(old.to_str().unwrap(), &meta).is_err());
        assert!(old.exists(), "a file this run did not create stays");
    }

    #[test]
    fn check_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x");
        let o = options("size=1M", &[]).unwrap();
        o.check(path.to_str().unwrap()).unwrap();
        assert!(!path.exists());
        std::fs::write(&path, b"keep").unwrap();
        o.check(path.to_str().unwrap()).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"keep");
        let missing = dir.path().join("no/x");
        assert!(o
            .check(missing.to_str().unwrap())
            .unwrap_err()
            .to_string()
            .starts_with("Could not create '"));
    }

    /// A FIFO in `dir` called `name` (`mknod`, as `mkfifo` makes one).
    fn fifo(dir: &Path, name: &str) -> PathBuf {
        let cwd = rustix::fs::CWD;
        let path = dir.join(name);
        let mode = rustix::fs::Mode::from_raw_mode(0o644);
        rustix::fs::mknodat(cwd, &path, rustix::fs::FileType::Fifo, mode, 0).unwrap();
        path
    }

    /// The open flags the kernel holds for `fd` (`/proc/self/fdinfo`).
    fn open_flags(fd: std::os::fd::BorrowedFd<'_>) -> u32 {
        use std::os::fd::AsRawFd;
        let info =
            std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd())).unwrap();
        let flags = info.lines().find_map(|l| l.strip_prefix("flags:")).unwrap();
        u32::from_str_radix(flags.trim(), 8).unwrap()
    }

    /// The read-only guarantee: an image is opened for reading only, by
    /// the kernel's own account of the open file, and without waiting on
    /// a FIFO.
    #[test]
    fn images_are_opened_read_only() {
        use std::os::fd::AsFd;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("img");
        std::fs::write(&path, b"data").unwrap();
        for path in [path, fifo(dir.path(), "fifo")] {
            let f = ImageFile::open(path.to_str().unwrap()).unwrap();
            let Source::Disk(file) = &f.source else { panic!("a file on disk") };
            let flags = open_flags(file.as_fd());
            let accmode = rustix::fs::OFlags::ACCMODE.bits();
            assert_eq!(flags & accmode, rustix::fs::OFlags::RDONLY.bits(), "{flags:o}");
            assert_ne!(flags & rustix::fs::OFlags::NONBLOCK.bits(), 0, "{flags:o}");
        }
    }

    #[test]
    fn special_files_are_refused_untouched_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let path = fifo(dir.path(), "fifo");
        let p = path.to_str().unwrap();
        let plain = options("size=1M", &[]).unwrap();
        let refused = options("size=1M,preallocation=metadata", &[]).unwrap();
        assert_eq!(
            plain.check(p).unwrap_err().to_string(),
            "Could not resize file: Invalid argument"
        );
        assert_eq!(
            NewFile::create(p, &refused).unwrap_err().to_string(),
            "Could not resize file: Invalid argument"
        );
        assert_eq!(
            NewFile::create(p, &plain).unwrap_err().to_string(),
            "Could not resize file: Invalid argument"
        );
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert!(std::os::unix::fs::FileTypeExt::is_fifo(&meta.file_type()));
    }

    #[test]
    fn a_dangling_link_is_followed_and_only_its_target_removed() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink("sub/target", &link).unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let target = dir.path().join("sub/target");
        let p = link.to_str().unwrap();
        // A check and a failed create leave the link dangling, as it was.
        let refused = options("size=1M,preallocation=metadata", &[]).unwrap();
        options("size=1M", &[]).unwrap().check(p).unwrap();
        assert!(NewFile::create(p, &refused).is_err());
        drop(NewFile::create(p, &options("size=1M", &[]).unwrap()).unwrap());
        assert!(!target.exists(), "a failed create made the link's target");
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        // A create that succeeds writes through the link.
        NewFile::create(p, &options("size=1000", &[]).unwrap()).unwrap().keep();
        assert_eq!(std::fs::metadata(&target).unwrap().len(), 1024);
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    }

    #[test]
    fn a_failed_create_leaves_an_existing_file_empty_not_half_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old");
        std::fs::write(&path, b"old data").unwrap();
        let new =
            NewFile::create(path.to_str().unwrap(), &options("size=1M", &[]).unwrap()).unwrap();
        new.write_all_at(b"half an image", 0).unwrap();
        drop(new);
        assert_eq!(std::fs::read(&path).unwrap(), b"", "emptied as qemu empties it, no more");
    }
}
