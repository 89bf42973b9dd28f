//! Image files as the host stores them: where a sparse file holds data
//! (`SEEK_DATA`/`SEEK_HOLE`), and how much of it is allocated.
//!
//! The comparisons of [`masks`](crate::masks) read only where either file
//! holds data: a hole reads as zeros, so two holes are equal without being
//! read. That is what lets a 2 TiB flat vmdk extent or a 100 GiB fixed VHD,
//! almost all holes, compare in milliseconds. The allocation helpers are
//! what the tests compare for preallocated images, where the layout of the
//! file on the host is part of what must match qemu-img.

use std::fs::File;
use std::io;
use std::ops::Range;
use std::path::Path;

/// The byte ranges of `file` (of length `len`) that hold data, in order.
/// On a file system that cannot tell data from holes, the whole file.
pub fn data_ranges(file: &File, len: u64) -> io::Result<Vec<Range<u64>>> {
    use rustix::fs::{seek, SeekFrom};
    let mut ranges = Vec::new();
    let mut pos = 0;
    while pos < len {
        let start = match seek(file, SeekFrom::Data(pos)) {
            Ok(start) => start,
            // No data after `pos`.
            Err(rustix::io::Errno::NXIO) => break,
            // SEEK_DATA is not supported here: every byte may be data.
            Err(rustix::io::Errno::INVAL) if pos == 0 => {
                return Ok(std::iter::once(0..len).collect())
            }
            Err(e) => return Err(e.into()),
        };
        let end = seek(file, SeekFrom::Hole(start))?.min(len);
        ranges.push(start..end);
        pos = end;
    }
    Ok(ranges)
}

/// The data ranges of the file at `path`.
pub fn data_ranges_of(path: &Path) -> io::Result<Vec<Range<u64>>> {
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    data_ranges(&file, len)
}

/// The union of two sorted range lists, sorted, overlapping and touching
/// ranges merged.
pub fn union(a: &[Range<u64>], b: &[Range<u64>]) -> Vec<Range<u64>> {
    let mut all: Vec<Range<u64>> = a.iter().chain(b).cloned().collect();
    all.sort_by_key(|r| r.start);
    let mut merged: Vec<Range<u64>> = Vec::new();
    for r in all {
        match merged.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => merged.push(r),
        }
    }
    merged
}

/// Bytes the host allocated to the file at `path` (`st_blocks` * 512).
pub fn allocated(path: &Path) -> io::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    Ok(std::fs::metadata(path)?.blocks() * 512)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileExt;

    #[test]
    fn union_merges_overlapping_and_touching_ranges() {
        assert_eq!(union(&[0..10, 20..30], &[5..12, 30..31, 40..41]), [0..12, 20..31, 40..41]);
        assert_eq!(union(&[], &[]), Vec::<Range<u64>>::new());
    }

    #[test]
    fn a_sparse_file_has_data_where_it_was_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sparse");
        let f = File::create(&path).unwrap();
        f.set_len(64 << 20).unwrap();
        f.write_all_at(&[1; 4096], 32 << 20).unwrap();
        let ranges = data_ranges_of(&path).unwrap();
        // The file system may allocate in larger units, never elsewhere.
        assert!(!ranges.is_empty());
        assert!(ranges.iter().all(|r| r.start <= 32 << 20 && r.end >= (32 << 20) + 4096));
        let empty = dir.path().join("empty");
        File::create(&empty).unwrap().set_len(1 << 20).unwrap();
        assert!(data_ranges_of(&empty).unwrap().iter().all(|r| r.is_empty() || r.start == 0));
    }
}
