//! The image file as qemu's block layer shows it to the qcow2 driver during
//! a check: its length counted in whole sectors, reads past the end that
//! return zeros, and requests beyond qemu's largest offset that fail with
//! `EIO` (`block/io.c`: `bdrv_check_qiov_request`, `bdrv_aligned_preadv`).

pub use instar_core::bytes::{be16, be32, be64};
use instar_core::format::SECTOR_SIZE;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// qemu's largest request end (`BDRV_MAX_LENGTH`): `INT64_MAX` rounded down
/// to a multiple of 1 GiB.
pub const MAX_LENGTH: u64 = (i64::MAX as u64) & !((1u64 << 30) - 1);

/// The `EIO` error qemu's block layer returns for an impossible request.
pub fn eio() -> io::Error {
    io::Error::from(rustix::io::Errno::IO)
}

/// The `ENOMEM` error qemu returns when a table cannot be allocated.
pub fn enomem() -> io::Error {
    io::Error::from(rustix::io::Errno::NOMEM)
}

/// The `EFBIG` error qemu returns for a table that is too large.
pub fn efbig() -> io::Error {
    io::Error::from(rustix::io::Errno::FBIG)
}

/// The `EINVAL` error qemu returns for an invalid table.
pub fn einval() -> io::Error {
    io::Error::from(rustix::io::Errno::INVAL)
}

/// An image file opened for reading.
#[derive(Debug)]
pub struct ImageFile {
    file: File,
    real_len: u64,
    len: u64,
}

impl ImageFile {
    /// Opens `path` read-only.
    pub fn open(path: &str) -> io::Result<Self> {
        let file = File::open(path)?;
        let real_len = file.metadata()?.len();
        // The file protocol reports its length in whole sectors.
        let len = real_len.div_ceil(SECTOR_SIZE).saturating_mul(SECTOR_SIZE);
        Ok(ImageFile { file, real_len, len })
    }

    /// The file's length as qemu sees it: rounded up to whole sectors.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Fills `buf` from `offset`. Bytes past the end of the file read as
    /// zeros; a request beyond [`MAX_LENGTH`] fails with `EIO`.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let bytes = buf.len() as u64;
        if bytes > MAX_LENGTH || offset > MAX_LENGTH || offset > MAX_LENGTH - bytes {
            return Err(eio());
        }
        let mut done = 0usize;
        while done < buf.len() {
            let at = offset + done as u64;
            if at >= self.real_len {
                break;
            }
            let n = self.file.read_at(&mut buf[done..], at)?;
            if n == 0 {
                break;
            }
            done += n;
        }
        buf[done..].fill(0);
        Ok(())
    }

    /// Reads `len` bytes from `offset` into a new buffer.
    pub fn read_vec(&self, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; len];
        self.read_at(offset, &mut buf)?;
        Ok(buf)
    }
}

/// A table of big-endian `u64` entries.
pub fn be64_table(bytes: &[u8]) -> Vec<u64> {
    bytes.chunks_exact(8).map(|c| be64(c, 0)).collect()
}

/// A C string: the bytes up to the first NUL, invalid UTF-8 replaced.
pub fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}
