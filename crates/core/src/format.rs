//! What a format driver is to the block layer: a name, create options, a
//! create, a probe and one open ([`Format`]); and what an opened image
//! answers ([`Image`]). This is qemu's split between a `BlockDriver` and
//! the state its `bdrv_open` leaves behind: every command that reads an
//! image (`info`, `check`, and those to come) opens it through the same
//! [`Format::open`], so the checks an open makes are made in one place.

use crate::bytes::round_up_to_sector;
use crate::check::{CheckReport, Lines};
use crate::diag::Diagnostic;
use crate::dialect::QemuDialect;
use crate::file::ImageFile;
use crate::info::ImageInfo;
use crate::measure::{MeasureSource, Measurement, Secrets, SourceBitmap};
use crate::opts::{OptDesc, Options};
use crate::read::{Mapping, Status};
use crate::write::{GuestRead, ImageWriter};
use crate::Error;

/// The block layer's probe, for a format whose create must know the
/// format of another file (vmdk's backing file): the name of the format
/// qemu's probe finds in the file (`raw` when nothing else matches).
pub type Probe = fn(&ImageFile) -> &'static str;

/// What `create` is asked to make: the file name as given and the checked
/// option values (the format's own options and the file protocol's, `size`
/// and any backing file already filled in by the block layer).
#[derive(Debug)]
pub struct CreateRequest<'a> {
    /// The image file name as the user gave it.
    pub filename: &'a str,
    /// The option values.
    pub options: &'a Options,
    /// The block layer's probe.
    pub probe: Probe,
    /// Whose qemu-img's image to write, where versions differ.
    pub dialect: QemuDialect,
}

impl CreateRequest<'_> {
    /// The virtual size rounded up to whole sectors, as every qemu driver
    /// reads it (`ROUND_UP(size, BDRV_SECTOR_SIZE)`).
    pub fn size_in_sectors_bytes(&self) -> u64 {
        round_up_to_sector(self.options.get_number("size").unwrap_or(0))
    }
}

/// How an image is opened: the open flags of qemu's that change what a
/// driver's open checks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpenFlags {
    /// `BDRV_O_CHECK`: opened for `check`, which relaxes the open checks
    /// whose faults the check itself reports.
    pub check: bool,
    /// `BDRV_O_NO_IO`: no guest data will be read (`info`), so neither an
    /// external data file nor an encryption key is needed.
    pub no_io: bool,
    /// Which qemu-img's probe and open checks to follow.
    pub dialect: QemuDialect,
}

impl OpenFlags {
    /// `qemu-img info`'s open.
    pub const INFO: OpenFlags =
        OpenFlags { check: false, no_io: true, dialect: QemuDialect::DEFAULT };
    /// `qemu-img check`'s open (backing files inherit it).
    pub const CHECK: OpenFlags =
        OpenFlags { check: true, no_io: false, dialect: QemuDialect::DEFAULT };
    /// The open of a command that reads guest data (`map`, `compare`):
    /// qemu-img's flags 0, with I/O (a data file and an encryption key are
    /// needed) and the backing chain.
    pub const READ: OpenFlags =
        OpenFlags { check: false, no_io: false, dialect: QemuDialect::DEFAULT };

    /// The same open, as qemu-img of `dialect` does it.
    pub const fn in_dialect(self, dialect: QemuDialect) -> Self {
        OpenFlags { dialect, ..self }
    }
}

/// A backing file an image names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackingRef {
    /// The name as recorded in the image (relative names are relative to
    /// the image's directory).
    pub name: String,
    /// The format recorded with it, if any (the block layer probes
    /// otherwise).
    pub format: Option<String>,
}

/// qemu's `bdrv_measure` of a format: the file size a new image made with
/// `opts` (its create options and the file protocol's, the size among
/// them) needs, for `source` when an image is measured; `secrets` are
/// the command line's. Errors carry qemu's text.
pub type Measurer = fn(
    opts: &Options,
    source: Option<&dyn MeasureSource>,
    secrets: &dyn Secrets,
) -> Result<Measurement, Error>;

/// An internal snapshot named on the command line (`-l`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotRef<'a> {
    /// A plain `-l X`: the snapshot whose ID is X, else the one named X.
    IdOrName(&'a str),
    /// `-l snapshot.id=I,snapshot.name=N`: the one matching every part
    /// given.
    Exact {
        /// `snapshot.id`.
        id: Option<&'a str>,
        /// `snapshot.name`.
        name: Option<&'a str>,
    },
}

/// An image format: what qemu calls a block driver.
pub trait Format: Sync {
    /// The format's name on the command line (`qcow2`, `vpc`, ...).
    fn name(&self) -> &'static str;

    /// The format's own create options, in qemu's declared order (the file
    /// protocol's options are appended by the caller).
    fn create_opts(&self) -> &'static [OptDesc];

    /// Validates the request completely, then writes the image. A refused
    /// request leaves existing files as they were, and a failure while
    /// writing removes the files this create made.
    fn create(&self, req: &CreateRequest<'_>) -> Result<(), Error>;

    /// Whether instar creates images of this format; a format it only
    /// reads refuses `create` (and `-o help`) by name.
    fn creates(&self) -> bool {
        true
    }

    /// How sure the format is that `head` (the first bytes of `filename`,
    /// up to 512) is one of its images: qemu's probe score, 0 for no.
    fn probe(&self, _head: &[u8], _filename: &str) -> u32 {
        0
    }

    /// Opens the image in `file` with every check qemu's open of this
    /// format makes under `flags`, in qemu's order. Errors carry qemu's
    /// text without the `Could not open '<file>': ` the block layer adds.
    fn open(&self, file: ImageFile, flags: OpenFlags) -> Result<Box<dyn Image>, Error>;

    /// Whether the format has a structural check of instar's own
    /// ([`Format::deep_check`]).
    fn has_deep_check(&self) -> bool {
        false
    }

    /// instar's own structural check of the image in `file`, for formats
    /// qemu-img cannot check (`instar check --deep`), its lines sent to
    /// `lines`. Only called when [`Format::has_deep_check`] says so.
    fn deep_check(&self, _file: ImageFile, _lines: Lines) -> Result<CheckReport, Error> {
        Err(Error::not_supported("This image format does not support checks"))
    }

    /// The format's measure (qemu's driver's `bdrv_measure`), if it has
    /// one.
    fn measurer(&self) -> Option<Measurer> {
        None
    }

    /// Opens the image in the file `name` for writing, as convert opens
    /// its target (qemu's `BDRV_O_RDWR`): a writer that allocates as this
    /// format's qemu driver does. `req` brings the dialect and the
    /// target's backing disk.
    fn open_writer(&self, name: &str, req: WriterRequest) -> Result<Box<dyn ImageWriter>, Error> {
        let _ = (name, req);
        Err(Error::not_supported(format!(
            "Format driver '{}' does not support writing",
            self.name()
        )))
    }
}

/// What opening an image for writing needs besides its file name.
pub struct WriterRequest {
    /// Whose qemu-img's writes to reproduce, where versions differ.
    pub dialect: QemuDialect,
    /// The disk below the target, when it has a backing file.
    pub backing: Option<Box<dyn GuestRead>>,
}

/// An opened image: what the commands ask of it.
pub trait Image {
    /// What `info` reports for the image.
    fn info(&self) -> Result<ImageInfo, Error>;

    /// The guest-visible size in bytes.
    fn virtual_size(&self) -> u64;

    /// The guest-visible size as qemu's block layer reports it
    /// (`bdrv_getlength`), which fails where the driver's sector count is
    /// not a valid length (negative, or more bytes than an `int64_t`
    /// holds): `map` then prints `Failed to get size for '<file>'`.
    fn byte_length(&self) -> Result<u64, Error> {
        Ok(self.virtual_size())
    }

    /// The backing file the image names, if any.
    fn backing(&self) -> Option<BackingRef> {
        None
    }

    /// What opening the image printed on stderr (qemu's warnings about
    /// what it met), printed before any command's output.
    fn warnings(&self) -> Vec<Diagnostic> {
        Vec::new()
    }

    /// What the driver printed on stderr while answering block status or
    /// reads that did not fail (qemu prints some notices and carries on:
    /// qcow2's corruption notice from its metadata preallocation check),
    /// taken once: a command prints it when it is taken.
    fn take_printed(&self) -> Vec<Diagnostic> {
        Vec::new()
    }

    /// Whether the driver answers block status itself (qemu's driver has
    /// `bdrv_co_block_status`). The block layer reports every range of a
    /// driver without one as data of this layer, at no host offset.
    fn has_block_status(&self) -> bool {
        false
    }

    /// The driver's `bdrv_co_block_status` for `bytes` bytes at `offset`
    /// (both within the image and multiples of
    /// [`Image::request_alignment`], except at the end of the image;
    /// `bytes` > 0): this image's own answer, never its backing file's.
    /// `want_zero` is qemu's flag: the caller wants `ZERO` and host offsets
    /// precisely rather than long ranges. Only called when
    /// [`Image::has_block_status`] says so.
    fn block_status(
        &self,
        _want_zero: bool,
        _offset: u64,
        bytes: u64,
    ) -> Result<Mapping<'_>, Error> {
        Ok(Mapping::unmapped(Status::DATA, bytes))
    }

    /// qemu's `bdrv_get_info` cluster size: `Some(0)` for a format
    /// without clusters, `None` where the driver's get_info fails; an
    /// error where qemu aborts (instar says why instead).
    fn info_cluster_size(&self) -> Result<Option<u64>, Error> {
        Ok(Some(0))
    }

    /// qemu's `bs->bl.request_alignment` for this image: the unit its
    /// block status answers in (1 for most formats).
    fn request_alignment(&self) -> u64 {
        1
    }

    /// Whether the driver has backing files at all (qemu's
    /// `supports_backing`): a range it leaves unallocated reads from the
    /// backing file, or as zeros when there is none.
    fn supports_backing(&self) -> bool {
        false
    }

    /// Fills `buf` with the guest data at `offset` that this image holds
    /// (`offset + buf.len()` within the image). Ranges its block status
    /// leaves unallocated read as zeros: the block layer reads those from
    /// the backing file itself. Failures are [`Error::errno`] (with what
    /// the driver printed as notes), as qemu's `-errno`.
    fn read_at(&self, _offset: u64, _buf: &mut [u8]) -> Result<(), Error> {
        Err(Error::errno(std::io::Error::from_raw_os_error(95)))
    }

    /// Whether the `bytes` bytes at `offset` (within the image, `bytes` >
    /// 0) begin with a run that reads as zeros without touching the file,
    /// and how long the answer holds (at most `bytes`): `(true, n)` for
    /// `n` bytes the driver knows unallocated, `(false, n)` for `n` bytes
    /// it would read (or cannot tell about). This is a reader's shortcut,
    /// not block status: vhdx has no block status (every range is data to
    /// qemu), yet its reads of absent blocks are zeros that a copy need
    /// neither fill nor scan.
    fn zero_run(&self, _offset: u64, bytes: u64) -> (bool, u64) {
        (false, bytes)
    }

    /// Whether the format can show the image as an internal snapshot
    /// saved it (qemu's driver has `bdrv_snapshot_load_tmp`).
    fn loads_snapshots(&self) -> bool {
        false
    }

    /// Makes reads see the image as internal snapshot `which` saved it
    /// (qemu's `bdrv_snapshot_load_tmp` and
    /// `bdrv_snapshot_load_tmp_by_id_or_name`), for `measure -l`,
    /// `convert -l` and their kin; the disk keeps its size. Errors carry
    /// qemu's text. Only called when [`Image::loads_snapshots`] says so.
    fn load_snapshot(&mut self, _which: SnapshotRef<'_>) -> Result<(), Error> {
        Err(Error::errno(std::io::Error::from_raw_os_error(95)))
    }

    /// The image's persistent dirty bitmaps, or `None` when the image
    /// cannot hold any (qemu's `bdrv_supports_persistent_dirty_bitmap`).
    fn persistent_bitmaps(&self) -> Option<Vec<SourceBitmap>> {
        None
    }

    /// The image's persistent bitmaps with their bits, in the order the
    /// image keeps them (its bitmap directory), for `convert --bitmaps`;
    /// an empty list for a format without them. Errors carry qemu's text.
    fn bitmap_copies(&self) -> Result<Vec<crate::write::BitmapCopy>, Error> {
        Ok(Vec::new())
    }

    /// The image itself, for a driver that must know what its backing
    /// file is (vmdk compares its parent's content ID): `None` for a
    /// driver that does not look.
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        None
    }

    /// Called by the block layer before it reads a range this image
    /// leaves to `backing`, its backing file: a driver that reads its
    /// backing file itself and checks it first fails here as its read
    /// would (qemu's vmdk fails with `EINVAL` when the parent's content ID
    /// is not the one the image recorded).
    fn check_backing_read(&self, _backing: &dyn Image) -> Result<(), Error> {
        Ok(())
    }

    /// qemu's consistency check of the image, as `qemu-img check` runs it,
    /// its lines sent to `lines` as they are found.
    fn check(&self, _lines: Lines) -> Result<CheckReport, Error> {
        Err(Error::not_supported("This image format does not support checks"))
    }
}
