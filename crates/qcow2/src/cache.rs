//! The writer's table caches: a few clusters of metadata (L2 tables or
//! refcount blocks) held in memory while they are being filled, as qemu's
//! `Qcow2Cache` holds them. A table leaves the cache (written back if it
//! changed) when a newer one needs its place, and every changed table is
//! written at [`TableCache::flush`]. Only the final bytes matter to the
//! file qemu leaves, so writing a table earlier or later than qemu does
//! changes nothing, as long as its last contents are written; where a
//! write fails, the order qemu keeps between the two caches decides
//! what is left (see [`crate::alloc::Refcounts::l2_depends`]).

use instar_core::TargetFile;
use std::io;

/// `ENOSPC`, the write error a cache flush keeps as its answer.
const ENOSPC: i32 = 28;

/// The file the tables live in: the target file for convert's writer, an
/// in-memory picture for create's layout ([`crate::layout::SparseFile`]),
/// so that both run the same allocator.
pub trait TableFile {
    /// The file's length in bytes.
    fn size(&self) -> io::Result<u64>;
    /// Reads `buf.len()` bytes at `offset`; past the end reads as zeros.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()>;
    /// Writes all of `buf` at `offset`.
    fn write_at(&self, offset: u64, buf: &[u8]) -> io::Result<()>;
    /// Makes `[offset, offset + bytes)` read as zeros (a discard).
    fn zero_range(&self, offset: u64, bytes: u64) -> io::Result<()>;
}

impl TableFile for TargetFile {
    fn size(&self) -> io::Result<u64> {
        TargetFile::len(self)
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        TargetFile::read_at(self, offset, buf)
    }
    fn write_at(&self, offset: u64, buf: &[u8]) -> io::Result<()> {
        TargetFile::write_at(self, offset, buf)
    }
    fn zero_range(&self, offset: u64, bytes: u64) -> io::Result<()> {
        TargetFile::zero_range(self, offset, bytes)
    }
}

/// One cached cluster.
#[derive(Debug)]
struct Entry {
    offset: u64,
    data: Vec<u8>,
    dirty: bool,
    used: u64,
}

/// A bounded cache of whole-cluster tables, keyed by their file offset.
#[derive(Debug)]
pub struct TableCache {
    cluster_size: usize,
    capacity: usize,
    entries: Vec<Entry>,
    tick: u64,
}

impl TableCache {
    /// A cache of at most `capacity` clusters of `cluster_size` bytes.
    pub fn new(cluster_size: usize, capacity: usize) -> TableCache {
        TableCache { cluster_size, capacity: capacity.max(1), entries: Vec::new(), tick: 0 }
    }

    fn position(&self, offset: u64) -> Option<usize> {
        self.entries.iter().position(|e| e.offset == offset)
    }

    /// Makes room for one more entry, writing back the least recently
    /// used one if it changed.
    fn make_room(&mut self, file: &impl TableFile) -> io::Result<()> {
        if self.entries.len() < self.capacity {
            return Ok(());
        }
        let Some((oldest, _)) = self.entries.iter().enumerate().min_by_key(|(_, e)| e.used) else {
            return Ok(());
        };
        let e = self.entries.swap_remove(oldest);
        if e.dirty {
            file.write_at(e.offset, &e.data)?;
        }
        Ok(())
    }

    /// The table at `offset`, read from `file` if it is not cached.
    pub fn get(&mut self, file: &impl TableFile, offset: u64) -> io::Result<&mut Vec<u8>> {
        self.tick += 1;
        let at = match self.position(offset) {
            Some(i) => i,
            None => {
                self.make_room(file)?;
                let mut data = vec![0u8; self.cluster_size];
                file.read_at(offset, &mut data)?;
                self.entries.push(Entry { offset, data, dirty: false, used: 0 });
                self.entries.len() - 1
            }
        };
        let e = &mut self.entries[at];
        e.used = self.tick;
        Ok(&mut e.data)
    }

    /// A new table at `offset`: zeros, marked changed, whatever the file
    /// holds there (qemu's `qcow2_cache_get_empty` and `memset`).
    pub fn get_empty(&mut self, file: &impl TableFile, offset: u64) -> io::Result<&mut Vec<u8>> {
        self.tick += 1;
        let at = match self.position(offset) {
            Some(i) => i,
            None => {
                self.make_room(file)?;
                self.entries.push(Entry {
                    offset,
                    data: vec![0u8; self.cluster_size],
                    dirty: true,
                    used: 0,
                });
                self.entries.len() - 1
            }
        };
        let e = &mut self.entries[at];
        e.data.fill(0);
        e.dirty = true;
        e.used = self.tick;
        Ok(&mut e.data)
    }

    /// Marks the cached table at `offset` as changed.
    pub fn mark_dirty(&mut self, offset: u64) {
        if let Some(i) = self.position(offset) {
            self.entries[i].dirty = true;
        }
    }

    /// Forgets the table at `offset` without writing it (its cluster was
    /// freed).
    pub fn discard(&mut self, offset: u64) {
        if let Some(i) = self.position(offset) {
            self.entries.swap_remove(i);
        }
    }

    /// Whether a table held here changed since it was last written.
    pub fn has_dirty(&self) -> bool {
        self.entries.iter().any(|e| e.dirty)
    }

    /// Writes every changed table to `file`, except those `refuse`
    /// names a reason for. A table refused or failing to write stays
    /// changed and the others are still written, as qemu's cache flush
    /// goes on past a failed entry (`qcow2_cache_write`); the answer is
    /// the first refusal, else the last write error (`ENOSPC` once met
    /// stays the answer).
    pub fn flush(
        &mut self,
        file: &impl TableFile,
        refuse: impl Fn(u64) -> Option<String>,
    ) -> Result<(), FlushError> {
        let mut refused = None;
        let mut failed: Option<io::Error> = None;
        for e in &mut self.entries {
            if e.dirty {
                if let Some(why) = refuse(e.offset) {
                    refused.get_or_insert(FlushError::Refused(why));
                    continue;
                }
                match file.write_at(e.offset, &e.data) {
                    Ok(()) => e.dirty = false,
                    Err(err) => {
                        if failed.as_ref().and_then(io::Error::raw_os_error) != Some(ENOSPC) {
                            failed = Some(err);
                        }
                    }
                }
            }
        }
        match (refused, failed) {
            (Some(r), _) => Err(r),
            (None, Some(err)) => Err(FlushError::Io(err)),
            (None, None) => Ok(()),
        }
    }
}

/// Why a cache flush failed.
#[derive(Debug)]
pub enum FlushError {
    /// The file could not be written.
    Io(io::Error),
    /// A table would have been written over other metadata.
    Refused(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_table_pushed_out_is_written_and_read_back() {
        let path = tempfile::NamedTempFile::new().unwrap().into_temp_path();
        let file = TargetFile::open(path.to_str().unwrap()).unwrap();
        let mut cache = TableCache::new(512, 2);
        cache.get_empty(&file, 0).unwrap()[0] = 1;
        cache.get_empty(&file, 512).unwrap()[0] = 2;
        // A third table pushes out the least recently used one (at 0),
        // which is written.
        cache.get_empty(&file, 1024).unwrap()[0] = 3;
        let mut byte = [0u8; 1];
        file.read_at(0, &mut byte).unwrap();
        assert_eq!(byte[0], 1);
        assert_eq!(cache.get(&file, 0).unwrap()[0], 1);
        // A refused table stays unwritten and changed; the others are
        // written.
        let refused = cache.flush(&file, |off| (off == 1024).then(|| "no".to_string()));
        assert!(matches!(refused, Err(FlushError::Refused(_))));
        file.read_at(1024, &mut byte).unwrap();
        assert_eq!(byte[0], 0);
        assert!(cache.flush(&file, |_| None).is_ok());
        file.read_at(1024, &mut byte).unwrap();
        assert_eq!(byte[0], 3);
    }
}
