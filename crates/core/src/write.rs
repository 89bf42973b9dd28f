//! The write side of a format, for `convert`: an image opened for
//! writing answers what qemu-img's convert asks of its target
//! (`bdrv_has_zero_init`, the block limits, `bdrv_get_info`) and takes
//! its writes in guest order ([`ImageWriter`]). Each format's writer
//! reproduces its qemu driver's allocation: where a cluster, a grain or
//! a block lands in the file is decided by the order of the writes, so
//! that the same writes give qemu-img's bytes.
//!
//! [`TargetFile`] is the file layer's writable file: the only way a
//! writer touches the disk.

use crate::codec::Compressor;
use crate::file::errno;
use crate::rawtext;
use crate::Error;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;

/// What a writer's reads of the target's backing file go through: the
/// guest data below the target (qcow2 fills the rest of a cluster it
/// allocates from it, as qemu's copy-on-write does).
pub trait GuestRead {
    /// The backing disk's size in bytes.
    fn guest_len(&self) -> u64;

    /// Fills `buf` with the disk's data at `offset`; past the end, zeros.
    fn read_guest(&self, offset: u64, buf: &mut [u8]) -> Result<(), Error>;

    /// Whether `[offset, offset + bytes)` reads as zeros by the disk's
    /// block status (zero clusters, holes, past its end), as qemu's
    /// `is_zero` asks a target about the disk below it; `None` when the
    /// disk cannot say, and the caller looks at the data instead.
    fn status_is_zero(&self, offset: u64, bytes: u64) -> Result<Option<bool>, Error> {
        let _ = (offset, bytes);
        Ok(None)
    }
}

/// The limits of qemu's `BlockLimits` that convert reads from its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteLimits {
    /// `request_alignment`: 1 for byte-granular drivers, 512 for drivers
    /// that only do whole sectors (vhdx) and for encrypted qcow2.
    pub request_alignment: u64,
    /// `pdiscard_alignment` (qcow2: its cluster size), which raises
    /// convert's buffer.
    pub pdiscard_alignment: u64,
}

impl Default for WriteLimits {
    fn default() -> Self {
        WriteLimits { request_alignment: 1, pdiscard_alignment: 0 }
    }
}

/// How the writer wants whole clusters compressed: the codec and the room
/// the compressed form must fit in (qemu's output buffer). The caller
/// compresses (in parallel) and hands the result to
/// [`ImageWriter::write_compressed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compression {
    /// The codec and its parameters.
    pub codec: Compressor,
    /// The largest compressed length that is kept.
    pub capacity: usize,
    /// The length a shorter last cluster is padded to with zeros before
    /// it is compressed (qcow2 compresses whole clusters; 0: no padding).
    pub pad_to: usize,
}

/// A persistent dirty bitmap as `convert --bitmaps` carries it from its
/// source to its target (qemu's `block-dirty-bitmap-add` of the same
/// name, granularity and state, then a merge of the source's bits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BitmapCopy {
    /// Its name.
    pub name: String,
    /// The bytes one bit covers (a power of two).
    pub granularity: u64,
    /// Whether it records writes (qemu's `auto` flag); a disabled one
    /// stays disabled in the target.
    pub enabled: bool,
    /// Its bits serialized as qemu serializes an `HBitmap`: bit `i` of
    /// the bitmap is bit `i % 8` of byte `i / 8` (little-endian 64-bit
    /// words), as many words as the disk it was loaded with needs. `None`
    /// for an inconsistent bitmap (in use), whose data qemu never loads.
    pub bits: Option<Vec<u8>>,
}

/// An image opened for writing, as convert's target: qemu's driver write
/// path (`bdrv_co_pwritev`, `bdrv_co_pwrite_zeroes`,
/// `bdrv_co_pwritev_compressed`) with the driver's own allocation.
pub trait ImageWriter {
    /// The guest-visible size in bytes.
    fn len(&self) -> u64;

    /// Whether the disk is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// qemu's `bdrv_has_zero_init`: whether a newly created image of this
    /// kind reads as zeros wherever nothing was written.
    fn has_zero_init(&self) -> bool;

    /// The block limits convert reads.
    fn limits(&self) -> WriteLimits {
        WriteLimits::default()
    }

    /// qemu's `bdrv_get_info`: `Some(cluster size)` (0 for a format
    /// without clusters), `None` where the driver's get_info fails.
    fn cluster_size(&self) -> Option<u64> {
        Some(0)
    }

    /// `BlockDriverInfo.needs_compressed_writes`: every write must be a
    /// compressed one (streamOptimized vmdk).
    fn needs_compressed_writes(&self) -> bool {
        false
    }

    /// The compression the format writes (`block_driver_can_compress`),
    /// `None` when it cannot.
    fn compression(&self) -> Option<Compression> {
        None
    }

    /// Writes `data` at guest `offset` (`offset + data.len()` within the
    /// disk).
    fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), Error>;

    /// qemu's `bdrv_co_pwrite_zeroes` with `BDRV_REQ_MAY_UNMAP`: the range
    /// reads as zeros afterwards.
    fn write_zeroes(&mut self, offset: u64, bytes: u64) -> Result<(), Error>;

    /// A compressed write of the whole cluster `data` at guest `offset`:
    /// `packed` is `data` compressed by [`ImageWriter::compression`]'s
    /// codec, or `None` when it did not fit (qemu then writes the cluster
    /// uncompressed).
    fn write_compressed(
        &mut self,
        _offset: u64,
        _data: &[u8],
        _packed: Option<&[u8]>,
    ) -> Result<(), Error> {
        Err(Error::errno(io::Error::from_raw_os_error(95)))
    }

    /// The lines the driver printed while answering requests that
    /// succeeded (qemu's drivers print as they go: qcow2's corruption
    /// notice, a free that failed), in order, each once. A failed request
    /// carries its lines in its error instead.
    fn take_printed(&mut self) -> Vec<crate::Diagnostic> {
        Vec::new()
    }

    /// The compressed write of nothing that convert makes at the end
    /// (`blk_pwrite_compressed(target, 0, 0)`): the format trims its file
    /// to whole sectors.
    fn end_compressed(&mut self) -> Result<(), Error> {
        Ok(())
    }

    /// The files the image writes besides the one it was opened from
    /// (vmdk's extents, a qcow2 data file), by the names it opened them
    /// under: what a failed convert removes with the target.
    fn other_files(&self) -> Vec<String> {
        Vec::new()
    }

    /// Whether the image can hold persistent dirty bitmaps (qemu's
    /// `bdrv_supports_persistent_dirty_bitmap`).
    fn supports_bitmaps(&self) -> bool {
        false
    }

    /// Adds a persistent bitmap holding `bitmap`'s bits, which the image
    /// stores at close (qemu's `block-dirty-bitmap-add` with
    /// `persistent`, then `block-dirty-bitmap-merge`). Fails with qemu's
    /// words when the image refuses the bitmap (a name already there).
    /// Only called when [`ImageWriter::supports_bitmaps`] says so.
    fn add_bitmap(&mut self, bitmap: BitmapCopy) -> Result<(), Error> {
        let _ = bitmap;
        Err(Error::errno(io::Error::from_raw_os_error(95)))
    }

    /// qemu's `blk_flush` of the image, which convert makes after its copy
    /// from qemu-img 11.1
    /// ([`crate::dialect::CONVERT_FLUSHES_TARGET`]): the format
    /// writes what it holds in memory that qemu's driver writes on a
    /// flush, or fails as qemu's would (an image made unusable answers
    /// `ENOMEDIUM`). The image stays open. By default there is nothing to
    /// write: the writers write through to their file, whose own flush
    /// (`fdatasync`) changes nothing qemu-img's output shows.
    fn flush(&mut self) -> Result<(), Error> {
        Ok(())
    }

    /// Writes what the writer still holds (tables, counts, headers) and
    /// closes the image, as qemu's close flushes its caches.
    fn close(self: Box<Self>) -> Result<(), Error>;

    /// Closes the image after a copy that failed, as qemu-img's close of
    /// its target then does: what the writer holds is written where it
    /// can be, and the lines qemu's close prints about what could not be
    /// are returned (they follow the copy's own failure). By default the
    /// writer is dropped and there is nothing to say.
    fn close_after_failure(self: Box<Self>) -> Vec<crate::Diagnostic> {
        Vec::new()
    }

    /// [`ImageWriter::close`] after a whole copy, as qemu-img closes its
    /// target then: what the driver's close reports without failing
    /// (qcow2's caches it could not write) is returned, to be printed
    /// with the copy still a success. By default a failed close fails.
    fn close_reporting(self: Box<Self>) -> Result<Vec<crate::Diagnostic>, Error> {
        self.close().map(|()| Vec::new())
    }
}

/// What a writer made unusable (qcow2 after it signaled a corruption)
/// answers every request with, as qemu's block backend does once its
/// node has no driver: `ENOMEDIUM`.
pub const UNUSABLE_ERRNO: i32 = rustix::io::Errno::NOMEDIUM.raw_os_error();

/// qemu's bounce buffer for a zero write the driver cannot make itself
/// (`MAX_WRITE_ZEROES_BOUNCE_BUFFER`, 32768 sectors): the most zeros held
/// at once.
pub const ZERO_CHUNK: u64 = 32768 * 512;

/// The block layer's zero write for a driver without one
/// (`bdrv_co_do_pwrite_zeroes` falling back to writes): zeros through
/// `write`, one bounce buffer at a time.
pub fn zeros_through_writes(
    mut offset: u64,
    bytes: u64,
    mut write: impl FnMut(u64, &[u8]) -> Result<(), Error>,
) -> Result<(), Error> {
    let end = offset.saturating_add(bytes);
    #[allow(clippy::cast_possible_truncation, reason = "ZERO_CHUNK is 16 MiB")]
    let zeros = vec![0u8; bytes.min(ZERO_CHUNK) as usize];
    while offset < end {
        #[allow(clippy::cast_possible_truncation, reason = "at most ZERO_CHUNK")]
        let n = (end - offset).min(ZERO_CHUNK) as usize;
        write(offset, &zeros[..n])?;
        offset += n as u64;
    }
    Ok(())
}

/// A file opened for reading and writing: the file protocol under a
/// target image. Only regular files.
#[derive(Debug)]
pub struct TargetFile {
    file: File,
    name: String,
}

impl TargetFile {
    /// Opens the existing regular file `name` (any bytes, as given) for
    /// reading and writing, as qemu's file protocol opens a node with
    /// `O_RDWR`.
    pub fn open(name: &str) -> io::Result<TargetFile> {
        let file = OpenOptions::new().read(true).write(true).open(rawtext::to_path(name))?;
        if !file.metadata()?.is_file() {
            return Err(io::Error::from_raw_os_error(rustix::io::Errno::INVAL.raw_os_error()));
        }
        Ok(TargetFile { file, name: name.to_string() })
    }

    /// The file name as given.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The file's length in bytes.
    pub fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    /// Whether the file is empty.
    pub fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Reads `buf.len()` bytes at `offset`; what lies past the end of the
    /// file reads as zeros.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let mut done = 0;
        while done < buf.len() {
            let n = self.file.read_at(&mut buf[done..], offset + done as u64)?;
            if n == 0 {
                buf[done..].fill(0);
                break;
            }
            done += n;
        }
        Ok(())
    }

    /// Writes all of `buf` at `offset`.
    pub fn write_at(&self, offset: u64, buf: &[u8]) -> io::Result<()> {
        self.file.write_all_at(buf, offset)
    }

    /// Sets the file's length (qemu's truncate: a longer file reads as
    /// zeros past the old end).
    pub fn set_len(&self, length: u64) -> io::Result<()> {
        self.file.set_len(length)
    }

    /// Makes `[offset, offset + bytes)` read as zeros, giving the space
    /// back where the file system can (file-posix's discard, then its
    /// write of zeros where punching fails).
    pub fn zero_range(&self, offset: u64, bytes: u64) -> io::Result<()> {
        use rustix::fs::FallocateFlags;
        if bytes == 0 {
            return Ok(());
        }
        let flags = FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE;
        match rustix::fs::fallocate(&self.file, flags, offset, bytes) {
            Ok(()) => Ok(()),
            Err(_) => {
                let end =
                    offset.checked_add(bytes).ok_or_else(|| errno(rustix::io::Errno::INVAL))?;
                let len = self.len()?;
                crate::file::write_zeros(&self.file, offset, end.min(len))?;
                if end > len {
                    self.file.set_len(end)?;
                }
                Ok(())
            }
        }
    }

    /// Makes `[offset, offset + bytes)` read as zeros the way file-posix's
    /// `write_zeroes` with `BDRV_REQ_NO_FALLBACK` does (`fallocate` with
    /// `FALLOC_FL_ZERO_RANGE`, which extends a shorter file): `false`
    /// when the file system cannot, and nothing was done.
    pub fn zero_fill(&self, offset: u64, bytes: u64) -> io::Result<bool> {
        use rustix::fs::FallocateFlags;
        if bytes == 0 {
            return Ok(true);
        }
        match rustix::fs::fallocate(&self.file, FallocateFlags::ZERO_RANGE, offset, bytes) {
            Ok(()) => Ok(true),
            Err(rustix::io::Errno::OPNOTSUPP | rustix::io::Errno::NOSYS) => Ok(false),
            Err(e) => Err(errno(e)),
        }
    }

    /// Flushes the file's data to the disk.
    pub fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }
}
