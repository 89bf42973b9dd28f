//! Reading and editing image files in place, byte by byte: how the damage
//! tests damage, and how the parity tests look inside what they compare.
//! Each helper panics on an I/O error: a test that cannot edit its own
//! scratch file has nothing to say.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// `len` bytes of `path` from `offset`, zeros past the end.
pub fn read_at(path: &Path, offset: u64, len: usize) -> Vec<u8> {
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut buf = vec![0u8; len];
    let mut n = 0;
    while n < len {
        match f.read_at(&mut buf[n..], offset + n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) => panic!("{}: {e}", path.display()),
        }
    }
    buf
}

/// Overwrites `bytes` of `path` at `offset`.
pub fn write_at(path: &Path, offset: u64, bytes: &[u8]) {
    let f = OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(bytes, offset).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// The length of `path`.
pub fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).len()
}

/// Truncates or extends `path` to `len`.
pub fn set_file_len(path: &Path, len: u64) {
    OpenOptions::new().write(true).open(path).unwrap().set_len(len).unwrap();
}

/// The big-endian u32 at `offset`.
pub fn be32(path: &Path, offset: u64) -> u32 {
    u32::from_be_bytes(read_at(path, offset, 4).try_into().unwrap())
}

/// The big-endian u64 at `offset`.
pub fn be64(path: &Path, offset: u64) -> u64 {
    u64::from_be_bytes(read_at(path, offset, 8).try_into().unwrap())
}

/// The little-endian u32 at `offset`.
pub fn le32(path: &Path, offset: u64) -> u32 {
    u32::from_le_bytes(read_at(path, offset, 4).try_into().unwrap())
}

/// The little-endian u64 at `offset`.
pub fn le64(path: &Path, offset: u64) -> u64 {
    u64::from_le_bytes(read_at(path, offset, 8).try_into().unwrap())
}

/// Guest data for images built with `qemu-img convert`: `size` bytes,
/// zero except for `runs` of (start, end, byte).
pub fn write_guest_data(path: &Path, size: usize, runs: &[(usize, usize, u8)]) {
    let mut data = vec![0u8; size];
    for &(start, end, byte) in runs {
        data[start..end].fill(byte);
    }
    std::fs::write(path, data).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// A stream-optimized vmdk as VMware writes them and qemu reads them (qemu
/// never writes this layout): the header at the start says "grain
/// directory at the end", and a footer marker, a copy of the header with
/// the real directory, and an end-of-stream marker follow the data.
pub fn vmdk_move_header_to_footer(path: &Path) {
    /// The header's grain directory offset field (u64, sectors).
    const GD_OFFSET: usize = 56;
    const SECTOR: usize = 512;
    let mut b = std::fs::read(path).unwrap();
    let header = b[..SECTOR].to_vec();
    b[GD_OFFSET..GD_OFFSET + 8].copy_from_slice(&u64::MAX.to_le_bytes());
    let mut footer_marker = vec![0u8; SECTOR];
    footer_marker[0..8].copy_from_slice(&1u64.to_le_bytes()); // one sector follows
    footer_marker[12..16].copy_from_slice(&3u32.to_le_bytes()); // type: footer
    b.extend_from_slice(&footer_marker);
    b.extend_from_slice(&header);
    b.extend_from_slice(&[0u8; SECTOR]); // end of stream
    std::fs::write(path, b).unwrap();
}

/// An image file under test, read and edited in place; the damage tests
/// wrap it with what they know of their format.
pub struct ImageFile {
    /// Where it is.
    pub path: PathBuf,
}

impl ImageFile {
    /// `name` beside the image (an extent, a backing file).
    pub fn sibling(&self, name: &str) -> PathBuf {
        self.path.with_file_name(name)
    }

    /// `len` bytes from `offset`, zeros past the end.
    pub fn read(&self, offset: u64, len: usize) -> Vec<u8> {
        read_at(&self.path, offset, len)
    }

    /// Overwrites `bytes` at `offset`.
    pub fn write(&self, offset: u64, bytes: &[u8]) {
        write_at(&self.path, offset, bytes);
    }

    /// The file's length.
    pub fn len(&self) -> u64 {
        file_len(&self.path)
    }

    /// Truncates or extends the file.
    pub fn set_len(&self, len: u64) {
        set_file_len(&self.path, len);
    }

    /// The big-endian u32 at `offset`.
    pub fn be32(&self, offset: u64) -> u32 {
        be32(&self.path, offset)
    }

    /// The big-endian u64 at `offset`.
    pub fn be64(&self, offset: u64) -> u64 {
        be64(&self.path, offset)
    }

    /// The little-endian u32 at `offset`.
    pub fn le32(&self, offset: u64) -> u32 {
        le32(&self.path, offset)
    }

    /// The little-endian u64 at `offset`.
    pub fn le64(&self, offset: u64) -> u64 {
        le64(&self.path, offset)
    }

    /// Writes `value` big-endian at `offset`.
    pub fn set_be32(&self, offset: u64, value: u32) {
        self.write(offset, &value.to_be_bytes());
    }

    /// Writes `value` big-endian at `offset`.
    pub fn set_be64(&self, offset: u64, value: u64) {
        self.write(offset, &value.to_be_bytes());
    }

    /// Writes `value` little-endian at `offset`.
    pub fn set_le32(&self, offset: u64, value: u32) {
        self.write(offset, &value.to_le_bytes());
    }

    /// Writes `value` little-endian at `offset`.
    pub fn set_le64(&self, offset: u64, value: u64) {
        self.write(offset, &value.to_le_bytes());
    }
}

/// An ESXi seSparse extent of `capacity` sectors (4 KiB grains, one
/// 4096-entry grain table, so at most 16 MiB), with two allocated grains
/// of 0x5a bytes and a zeroed one: a constant header (magic, version,
/// capacity, grain and table sizes), the volatile header at sector 1, the
/// directory at 2 (one sector), the table at 3, the grains at 67.
pub fn sesparse_extent(capacity: u64) -> Vec<u8> {
    let put = |b: &mut Vec<u8>, at: usize, v: u64| b[at..at + 8].copy_from_slice(&v.to_le_bytes());
    let mut b = vec![0u8; 512 * (67 + 16)];
    for (i, v) in [
        (0, 0xcafe_babe),
        (1, 0x0000_0002_0000_0001),
        (2, capacity),
        (3, 8),
        (4, 64),
        (10, 1),
        (11, 1),
        (16, 2),
        (17, 1),
        (18, 3),
        (19, 64),
        (24, 67),
        (25, 16),
    ] {
        put(&mut b, i * 8, v);
    }
    put(&mut b, 512, 0xcafe_cafe);
    put(&mut b, 1024, 0x1000_0000_0000_0000);
    put(&mut b, 3 * 512, 0x3000_0000_0000_0000); // grain 0
    put(&mut b, 3 * 512 + 8, 0x2000_0000_0000_0000); // zeroed
    put(&mut b, 3 * 512 + 16, 0x3001_0000_0000_0000); // grain 1
    b[67 * 512..69 * 512 + 4096].fill(0x5a);
    b
}
