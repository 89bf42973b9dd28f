//! Looking a guest offset up in a sparse extent's grain directory and
//! grain tables, as qemu's `get_cluster_offset` does for a read (no
//! allocation): the answer is a grain in the extent file, a grain that
//! reads as zeros, no grain (the parent's data), or an entry qemu cannot
//! use.
//!
//! qemu reads the whole grain directory at open and keeps 16 grain tables
//! in a cache. instar reads the directory in blocks as lookups need them
//! and keeps directory blocks and tables in one small cache: the memory
//! taken is bounded by the cache, never by a size from the file, and what
//! is read is what qemu reads (past the end of the file: zeros).

use crate::image::{NodeFile, SparseExtent};
use crate::sesparse::{self, DirEntry, GrainEntry};
use std::cell::RefCell;

/// Bytes of grain directory read at once.
const DIRECTORY_BLOCK: u64 = 4096;

/// Directory blocks and grain tables kept (the largest table, seSparse's,
/// is 32 KiB: at most 2 MiB in all).
const CACHE_ENTRIES: usize = 64;

/// qemu's `VMDK_GTE_ZEROED`: a grain table entry for a grain that reads
/// as zeros (with the zeroed-grain feature).
pub const GTE_ZEROED: u32 = 1;

/// What the lookup of one guest offset finds (qemu's `VMDK_OK`,
/// `VMDK_UNALLOC`, `VMDK_ZEROED`, `VMDK_ERROR`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// A grain at this byte offset of the extent file (for a flat extent,
    /// the extent's start).
    At(u64),
    /// No grain: the parent's data, or zeros.
    Unallocated,
    /// A grain that reads as zeros.
    Zeroed,
    /// An entry qemu cannot use, or an index past the grain directory.
    Error,
}

/// One cached block of a file.
#[derive(Debug)]
struct Cached {
    file: usize,
    offset: u64,
    bytes: Vec<u8>,
    used: u64,
}

/// The cache of directory blocks and grain tables of an image's files.
#[derive(Debug, Default)]
pub struct TableCache {
    blocks: RefCell<(Vec<Cached>, u64)>,
}

impl TableCache {
    /// The little-endian entry of `size` bytes (4 or 8) at byte `at` of
    /// the block of `len` bytes at `offset` of `files[file]`; entries past
    /// the end of the file are 0.
    fn entry(
        &self,
        files: &[NodeFile],
        file: usize,
        offset: u64,
        len: u64,
        at: u64,
        size: u64,
    ) -> u64 {
        let mut guard = self.blocks.borrow_mut();
        let (blocks, clock) = &mut *guard;
        *clock += 1;
        let now = *clock;
        let index = match blocks
            .iter()
            .position(|b| b.file == file && b.offset == offset && b.bytes.len() as u64 == len)
        {
            Some(i) => i,
            None => {
                let Some(f) = files.get(file) else { return 0 };
                // `len` is at most 32 KiB (a table) or `DIRECTORY_BLOCK`.
                #[allow(clippy::cast_possible_truncation, reason = "at most 32 KiB")]
                let bytes = f.read(offset, len as usize);
                let cached = Cached { file, offset, bytes, used: now };
                if blocks.len() < CACHE_ENTRIES {
                    blocks.push(cached);
                    blocks.len() - 1
                } else {
                    let lru =
                        blocks.iter().enumerate().min_by_key(|(_, b)| b.used).map_or(0, |(i, _)| i);
                    blocks[lru] = cached;
                    lru
                }
            }
        };
        let block = &mut blocks[index];
        block.used = now;
        let Ok(start) = usize::try_from(at) else { return 0 };
        #[allow(clippy::cast_possible_truncation, reason = "4 or 8")]
        let size = size as usize;
        match block.bytes.get(start..start.saturating_add(size)) {
            Some(b) if size == 8 => {
                u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
            }
            Some(b) if size == 4 => u64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            _ => 0,
        }
    }

    /// Entry `index` of the grain directory of `sp` in `files[file]`.
    fn directory_entry(
        &self,
        files: &[NodeFile],
        file: usize,
        sp: &SparseExtent,
        index: u32,
    ) -> u64 {
        let size = sp.entry_size();
        let byte = u64::from(index) * size;
        let block = byte / DIRECTORY_BLOCK * DIRECTORY_BLOCK;
        // The directory is `l1_size` entries; qemu reads no further.
        let len = (u64::from(sp.l1_size) * size - block).min(DIRECTORY_BLOCK);
        let Some(at) = sp.l1_offset.checked_add(block) else { return 0 };
        self.entry(files, file, at, len, byte - block, size)
    }

    /// qemu's `get_cluster_offset` without allocation, for the byte
    /// `offset` of the guest disk in the sparse extent `sp` of
    /// `files[file]` that starts at guest sector `first` and has
    /// `cluster_sectors` sectors per grain.
    pub fn lookup(
        &self,
        files: &[NodeFile],
        file: usize,
        sp: &SparseExtent,
        first: i64,
        cluster_sectors: u64,
        offset: u64,
    ) -> Lookup {
        #[allow(
            clippy::cast_sign_loss,
            reason = "qemu subtracts the int64_t start from a uint64_t"
        )]
        let offset = offset.wrapping_sub((first as u64).wrapping_mul(512));
        let sector = offset >> 9;
        if sp.l1_entry_sectors == 0 || cluster_sectors == 0 || sp.l2_size == 0 {
            // Refused at open; qemu would divide by zero.
            return Lookup::Error;
        }
        #[allow(clippy::cast_possible_truncation, reason = "qemu's `unsigned int l1_index`")]
        let l1_index = (sector / u64::from(sp.l1_entry_sectors)) as u32;
        if l1_index >= sp.l1_size {
            return Lookup::Error;
        }
        let table_bytes = u64::from(sp.l2_size) * sp.entry_size();
        let dir = self.directory_entry(files, file, sp, l1_index);
        let l2_offset: u32 = match sp.se {
            None => {
                #[allow(clippy::cast_possible_truncation, reason = "a 32-bit entry")]
                let v = dir as u32;
                v
            }
            Some(areas) => match sesparse::dir_entry(dir) {
                DirEntry::None => 0,
                DirEntry::Invalid => return Lookup::Error,
                DirEntry::Table(i) => {
                    let at = areas.l2_tables_offset.wrapping_add(i.wrapping_mul(table_bytes) / 512);
                    match u32::try_from(at) {
                        Ok(at) => at,
                        Err(_) => return Lookup::Error,
                    }
                }
            },
        };
        if l2_offset == 0 {
            return Lookup::Unallocated;
        }
        #[allow(
            clippy::cast_possible_truncation,
            reason = "qemu's `unsigned int l2_index`, below l2_size"
        )]
        let l2_index = ((sector / cluster_sectors) % u64::from(sp.l2_size)) as u32;
        let size = sp.entry_size();
        let raw = self.entry(
            files,
            file,
            u64::from(l2_offset) * 512,
            table_bytes,
            u64::from(l2_index) * size,
            size,
        );
        match sp.se {
            None => {
                #[allow(clippy::cast_possible_truncation, reason = "a 32-bit entry")]
                let v = raw as u32;
                if sp.has_zero_grain && v == GTE_ZEROED {
                    Lookup::Zeroed
                } else if v == 0 {
                    Lookup::Unallocated
                } else {
                    Lookup::At(u64::from(v) << 9)
                }
            }
            Some(areas) => match sesparse::grain_entry(raw) {
                GrainEntry::None => Lookup::Unallocated,
                GrainEntry::Zero => Lookup::Zeroed,
                GrainEntry::Invalid => Lookup::Error,
                GrainEntry::Grain(i) => Lookup::At(
                    areas
                        .clusters_offset
                        .wrapping_add(i.wrapping_mul(cluster_sectors))
                        .wrapping_shl(9),
                ),
            },
        }
    }
}
