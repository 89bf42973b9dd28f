//! A window onto a table of fixed-size entries in an image file (a vpc or
//! vhdx BAT): the entries a read asks for, read from the file a chunk at a
//! time and kept until a read asks for another chunk. Memory stays one
//! chunk whatever size the table claims, and sequential walks (block
//! status over a disk, a read of a long range) read each chunk once.

use crate::file::{eio, ImageFile};
use std::io;
use std::sync::{Mutex, PoisonError};

/// Bytes of the table read at a time.
const CHUNK_BYTES: u64 = 64 << 10;

/// The entries of one table: where it is, how wide an entry is, how many
/// there are, and the chunk last read.
#[derive(Debug)]
pub struct TableWindow {
    /// Where the table starts in the file.
    offset: u64,
    /// Bytes per entry (1 to 8).
    entry_size: u64,
    /// Entries in the table.
    entries: u64,
    /// The index of the first entry held, and the bytes of the entries
    /// held from it.
    held: Mutex<(u64, Vec<u8>)>,
}

impl TableWindow {
    /// The table of `entries` entries of `entry_size` bytes (1 to 8) at
    /// `offset` of its file.
    pub fn new(offset: u64, entry_size: u64, entries: u64) -> TableWindow {
        TableWindow {
            offset,
            entry_size: entry_size.clamp(1, 8),
            entries,
            held: Mutex::new((0, Vec::new())),
        }
    }

    /// How many entries the table has.
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// The bytes of entry `index` (`entry_size` of them), read from `file`
    /// (the table's part past the end of the file reads as zeros, as
    /// qemu's reads past the end do), handed to `decode`. `None` for an
    /// index past the table; `EIO` for a table no read can reach.
    pub fn entry<T>(
        &self,
        file: &ImageFile,
        index: u64,
        decode: impl FnOnce(&[u8]) -> T,
    ) -> io::Result<Option<T>> {
        if index >= self.entries {
            return Ok(None);
        }
        let per_chunk = CHUNK_BYTES / self.entry_size;
        let first = index - index % per_chunk;
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let in_chunk = |held: &(u64, Vec<u8>)| {
            held.0 == first && (index - first + 1) * self.entry_size <= held.1.len() as u64
        };
        if !in_chunk(&held) {
            let count = per_chunk.min(self.entries - first);
            let at = first
                .checked_mul(self.entry_size)
                .and_then(|b| b.checked_add(self.offset))
                .ok_or_else(eio)?;
            // At most CHUNK_BYTES.
            let bytes = file.read_vec(at, count * self.entry_size)?;
            *held = (first, bytes);
        }
        #[allow(clippy::cast_possible_truncation, reason = "within a chunk of CHUNK_BYTES")]
        let start = ((index - first) * self.entry_size) as usize;
        #[allow(clippy::cast_possible_truncation, reason = "at most 8")]
        let width = self.entry_size as usize;
        Ok(held.1.get(start..start + width).map(decode))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_entries_across_chunks_and_past_the_file() {
        // A table of 20000 big-endian u32 at offset 512, the file ending
        // inside entry 19000.
        let mut bytes = vec![0u8; 512];
        for i in 0..19_000u32 {
            bytes.extend_from_slice(&i.to_be_bytes());
        }
        bytes.truncate(bytes.len() - 2);
        let file = ImageFile::from_bytes("t", bytes);
        let table = TableWindow::new(512, 4, 20_000);
        let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        assert_eq!(table.entry(&file, 0, be).unwrap(), Some(0));
        assert_eq!(table.entry(&file, 16_384, be).unwrap(), Some(16_384));
        assert_eq!(table.entry(&file, 5, be).unwrap(), Some(5));
        // The last entry in the file lost its low bytes: zeros.
        assert_eq!(table.entry(&file, 18_999, be).unwrap(), Some(18_999 & !0xFFFF));
        assert_eq!(table.entry(&file, 19_999, be).unwrap(), Some(0));
        assert_eq!(table.entry(&file, 20_000, be).unwrap(), None);
        // A table past what a read may reach.
        let far = TableWindow::new(u64::MAX - 4, 4, 10);
        assert!(far.entry(&file, 9, be).is_err());
    }
}
