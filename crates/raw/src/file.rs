//! The file protocol under every image (qemu's `block/file-posix.c`): its
//! create options, the way it sizes and preallocates a new file, and its
//! error texts.

use instar_core::format::{remove_partial, SECTOR_SIZE};
use instar_core::{Error, Options};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;

/// How the file's space is allocated at create time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prealloc {
    /// Sparse: only the first block is written (see [`FIRST_BLOCK_MAX`]).
    Off,
    /// `fallocate()` the whole file.
    Falloc,
    /// Write zeros over the whole file.
    Full,
}

/// qemu writes zeros over the first block of a new sparse file so that
/// later alignment probing finds it allocated (`allocate_first_block`):
/// 4096 bytes, or one sector when the file is smaller than that.
pub const FIRST_BLOCK_MAX: u64 = 4096;

/// The largest extent size hint qemu accepts (it is a 32-bit field).
const MAX_EXTENT_SIZE_HINT: u64 = u32::MAX as u64;

/// `Could not open '<file>': <strerror>`, the file protocol's open error.
pub fn open_error(filename: &str, e: &std::io::Error) -> Error {
    Error::open(format!("Could not open '{filename}': {}", instar_core::error::strerror(e)))
}

impl Prealloc {
    /// Parses a preallocation mode for the file protocol, which knows
    /// `off`, `falloc` and `full` (`metadata` is a mode of formats only).
    pub fn parse_for_file(text: Option<&str>) -> Result<Prealloc, Error> {
        match text {
            None | Some("off") => Ok(Prealloc::Off),
            Some("falloc") => Ok(Prealloc::Falloc),
            Some("full") => Ok(Prealloc::Full),
            Some("metadata") => Err(Error::invalid("Unsupported preallocation mode: metadata")),
            Some(other) => Err(Error::invalid(format!("invalid parameter value: {other}"))),
        }
    }
}

/// A checked plan for a new raw file: its length and preallocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FilePlan {
    /// The file length: the size rounded up to whole sectors.
    pub length: u64,
    /// How to allocate it.
    pub prealloc: Prealloc,
}

impl FilePlan {
    /// Checks the protocol options the way qemu's `raw_co_create_opts`
    /// does, before anything is written.
    pub fn from_options(opts: &Options) -> Result<FilePlan, Error> {
        let size = opts.get_number("size").unwrap_or(0);
        let prealloc = Prealloc::parse_for_file(opts.get_str("preallocation"))?;
        if opts.get_number("extent_size_hint").unwrap_or(0) > MAX_EXTENT_SIZE_HINT {
            return Err(Error::invalid("Extent size hint is too large"));
        }
        // The rounding wraps past i64::MAX exactly where qemu's does, so the
        // resize then fails with the same EINVAL.
        let length = size.div_ceil(SECTOR_SIZE).wrapping_mul(SECTOR_SIZE);
        Ok(FilePlan { length, prealloc })
    }

    /// Creates (or truncates) the file and sizes it. On failure the file is
    /// removed.
    pub fn create(&self, filename: &str) -> Result<(), Error> {
        let file = create_file(filename)?;
        let result = self.fill(&file);
        if result.is_err() {
            drop(file);
            remove_partial(std::path::Path::new(filename));
        }
        result
    }

    fn fill(&self, file: &File) -> Result<(), Error> {
        grow(file, self.length, self.prealloc)
    }
}

/// Opens `filename` for a new image: created if missing, emptied if not.
pub fn create_file(filename: &str) -> Result<File, Error> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(filename)
        .map_err(|e| Error::io(format!("Could not create '{filename}'"), e))
}

/// Grows an empty file to `length` the way qemu's file protocol does for
/// `prealloc`.
pub fn grow(file: &File, length: u64, prealloc: Prealloc) -> Result<(), Error> {
    if length > i64::MAX as u64 {
        return Err(Error::io(
            "Could not resize file",
            std::io::Error::from_raw_os_error(rustix::io::Errno::INVAL.raw_os_error()),
        ));
    }
    match prealloc {
        Prealloc::Off => {
            file.set_len(length).map_err(resize_error)?;
            if length > 0 {
                let n = if length < FIRST_BLOCK_MAX { SECTOR_SIZE } else { FIRST_BLOCK_MAX };
                file.write_all_at(&vec![0u8; n as usize], 0).map_err(resize_error)?;
            }
        }
        Prealloc::Falloc => {
            if length > 0 {
                rustix::fs::fallocate(file, rustix::fs::FallocateFlags::empty(), 0, length)
                    .map_err(|e| {
                        Error::io(
                            "Could not preallocate new data",
                            std::io::Error::from_raw_os_error(e.raw_os_error()),
                        )
                    })?;
            }
        }
        Prealloc::Full => {
            file.set_len(length).map_err(resize_error)?;
            write_zeros(file, 0, length)?;
            file.sync_all().map_err(|e| Error::io("Could not flush file", e))?;
        }
    }
    Ok(())
}

/// Writes zeros over `[start, end)`, so that the file system allocates it.
pub fn write_zeros(file: &File, start: u64, end: u64) -> Result<(), Error> {
    instar_core::format::write_zeros(file, start, end)
        .map_err(|e| Error::io("Could not write zeros", e))
}

/// qemu reports a file too large for the file system as the format being
/// unable to hold the size; other failures as a failed resize.
fn resize_error(e: std::io::Error) -> Error {
    if e.raw_os_error() == Some(rustix::io::Errno::FBIG.raw_os_error()) {
        Error::too_large(e)
    } else {
        Error::io("Could not resize file", e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use instar_core::opts::FILE_PROTOCOL_OPTS;

    fn plan(list: &str) -> Result<FilePlan, Error> {
        let mut o = Options::new(&[FILE_PROTOCOL_OPTS]);
        o.parse(list)?;
        FilePlan::from_options(&o)
    }

    #[test]
    fn sizes_round_up_to_sectors() {
        assert_eq!(plan("size=1000").unwrap().length, 1024);
        assert_eq!(plan("size=0").unwrap().length, 0);
    }

    #[test]
    fn refuses_bad_modes_with_qemu_text() {
        assert_eq!(
            plan("size=1M,preallocation=metadata").unwrap_err().to_string(),
            "Unsupported preallocation mode: metadata"
        );
        assert_eq!(
            plan("size=1M,preallocation=bogus").unwrap_err().to_string(),
            "invalid parameter value: bogus"
        );
        assert_eq!(
            plan("size=1M,extent_size_hint=5T").unwrap_err().to_string(),
            "Extent size hint is too large"
        );
    }

    #[test]
    fn sparse_file_gets_first_block_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.raw");
        let p = path.to_str().unwrap();
        plan("size=1000").unwrap().create(p).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 1024);
    }
}
