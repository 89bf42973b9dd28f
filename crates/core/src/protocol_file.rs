//! An image file read the way qemu's file protocol presents it to a format
//! driver: its length counts in whole sectors, bytes past the end of the
//! file read as zeros, and requests beyond the block layer's limits fail
//! with `EIO` (so a header pointing far away fails as it fails in qemu).

use crate::format::SECTOR_SIZE;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// The furthest byte qemu's block layer addresses (`BDRV_MAX_LENGTH`:
/// `INT64_MAX` aligned down to 1 GiB).
pub const MAX_LENGTH: u64 = (i64::MAX as u64) & !((1 << 30) - 1);

/// The largest single request qemu's block layer accepts
/// (`BDRV_REQUEST_MAX_BYTES`: `INT_MAX` aligned down to a sector).
pub const REQUEST_MAX_BYTES: u64 = (i32::MAX as u64) & !(SECTOR_SIZE - 1);

/// An open image file.
#[derive(Debug)]
pub struct ProtocolFile {
    file: File,
    len: u64,
}

/// qemu's `EIO` for a request outside the block layer's limits.
fn eio() -> io::Error {
    io::Error::from_raw_os_error(rustix::io::Errno::IO.raw_os_error())
}

impl ProtocolFile {
    /// Opens `path` read-only.
    pub fn open(path: &str) -> io::Result<ProtocolFile> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        Ok(ProtocolFile { file, len })
    }

    /// The file length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the file is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The length as qemu's block layer reports it: whole sectors.
    pub fn sector_len(&self) -> u64 {
        self.len.div_ceil(SECTOR_SIZE) * SECTOR_SIZE
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
        ProtocolFile::check_request(offset, buf.len() as u64)?;
        let in_file = self.len.saturating_sub(offset).min(buf.len() as u64) as usize;
        self.file.read_exact_at(&mut buf[..in_file], offset)?;
        buf[in_file..].fill(0);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_past_the_end_as_zeros_and_refuses_far_requests() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"abc").unwrap();
        let f = ProtocolFile::open(path.to_str().unwrap()).unwrap();
        assert_eq!((f.len(), f.sector_len()), (3, 512));
        let mut buf = [9u8; 5];
        f.read_at(1, &mut buf).unwrap();
        assert_eq!(&buf, b"bc\0\0\0");
        assert!(f.read_at(MAX_LENGTH, &mut buf).is_err());
        assert!(ProtocolFile::check_request(0, REQUEST_MAX_BYTES + 512).is_err());
    }
}
