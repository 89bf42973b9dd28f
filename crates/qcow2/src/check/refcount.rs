//! Reference counts during a check: the counts the check computes from the
//! image's metadata (qemu's "in-memory refcount table"), and the counts the
//! image records in its refcount table and blocks.

use crate::tables::{get_refcount, REFT_OFFSET_MASK};
use instar_core::ImageFile;
use std::collections::HashMap;
use std::io;

/// Refcount blocks kept in memory at once; reads past this start afresh.
const BLOCK_CACHE_MAX: usize = 64;

/// Storage wide enough for the image's refcount width, so that the array
/// takes no more memory than qemu's.
#[derive(Debug)]
enum Store {
    Narrow(Vec<u16>),
    Wide(Vec<u64>),
}

/// The reference counts a check computes, one per host cluster, saturating
/// at the largest count the image's refcount width can record.
#[derive(Debug)]
pub struct RefcountArray {
    store: Store,
    max: u64,
}

impl RefcountArray {
    /// An array of `len` zero counts for refcounts of `1 << order` bits;
    /// `None` when the memory cannot be had (qemu's `ENOMEM`).
    pub fn new(order: u32, len: u64) -> Option<Self> {
        let bits = 1u32 << order;
        let max = if bits >= 64 { u64::MAX } else { (1u64 << bits) - 1 };
        let store = if bits <= 16 { Store::Narrow(Vec::new()) } else { Store::Wide(Vec::new()) };
        let mut array = RefcountArray { store, max };
        array.grow_to(len).then_some(array)
    }

    /// The number of clusters the array covers.
    pub fn len(&self) -> u64 {
        match &self.store {
            Store::Narrow(v) => v.len() as u64,
            Store::Wide(v) => v.len() as u64,
        }
    }

    /// Extends the array with zeros to cover `len` clusters; false when
    /// the memory cannot be had.
    pub fn grow_to(&mut self, len: u64) -> bool {
        let Ok(len) = usize::try_from(len) else {
            return false;
        };
        match &mut self.store {
            Store::Narrow(v) => grow(v, len),
            Store::Wide(v) => grow(v, len),
        }
    }

    /// The largest count an entry can hold (`refcount_max`).
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The count of cluster `k` (zero past the end).
    pub fn get(&self, k: u64) -> u64 {
        match &self.store {
            Store::Narrow(v) => as_index(k).and_then(|k| v.get(k)).map_or(0, |&c| u64::from(c)),
            Store::Wide(v) => as_index(k).and_then(|k| v.get(k)).copied().unwrap_or(0),
        }
    }

    /// Sets the count of cluster `k`, which must be inside the array, to
    /// `value`, which must be at most [`RefcountArray::max`].
    #[allow(
        clippy::cast_possible_truncation,
        reason = "`k` indexes the array; `value` <= max, which fits the narrow store \
                  (refcount_bits <= 16)"
    )]
    pub fn set(&mut self, k: u64, value: u64) {
        match &mut self.store {
            Store::Narrow(v) => v[k as usize] = value as u16,
            Store::Wide(v) => v[k as usize] = value,
        }
    }
}

/// `k` as an index into memory; `None` where no array could reach it.
fn as_index(k: u64) -> Option<usize> {
    usize::try_from(k).ok()
}

/// Extends `v` with zeros to `len` entries, reserving the memory first so
/// that a failure is reported rather than fatal.
fn grow<T: Copy + Default>(v: &mut Vec<T>, len: usize) -> bool {
    if len <= v.len() {
        return true;
    }
    if v.try_reserve_exact(len - v.len()).is_err() {
        return false;
    }
    v.resize(len, T::default());
    true
}

/// Why a recorded refcount could not be read.
#[derive(Debug)]
pub enum LookupError {
    /// The refcount table points at an offset inside a cluster; qemu
    /// reports the image as corrupt and fails the read with `EIO`.
    Unaligned {
        /// The refcount block offset found in the table.
        offset: u64,
        /// The refcount table index holding it.
        index: u64,
    },
    /// Reading the refcount block failed.
    Io(io::Error),
}

/// The counts the image records: its refcount table, and refcount blocks
/// read from the file as they are needed.
#[derive(Debug)]
pub struct RecordedRefcounts<'a> {
    table: &'a [u64],
    cluster_bits: u32,
    order: u32,
    block_bits: u32,
    /// The refcount block read last, by offset.
    last: Option<(u64, Vec<u8>)>,
    /// Other refcount blocks already read, by offset.
    cache: HashMap<u64, Vec<u8>>,
}

impl<'a> RecordedRefcounts<'a> {
    /// The refcounts described by `table` (the refcount table's entries)
    /// for an image of `1 << cluster_bits` byte clusters and refcounts of
    /// `1 << order` bits.
    pub fn new(table: &'a [u64], cluster_bits: u32, order: u32) -> Self {
        // A refcount block holds cluster_size * 8 / refcount_bits entries.
        let block_bits = cluster_bits + 3 - order;
        RecordedRefcounts {
            table,
            cluster_bits,
            order,
            block_bits,
            last: None,
            cache: HashMap::new(),
        }
    }

    /// The recorded refcount of cluster `index` (`qcow2_get_refcount`):
    /// zero when no refcount block covers it.
    pub fn get(&mut self, file: &ImageFile, index: u64) -> Result<u64, LookupError> {
        let table_index = index >> self.block_bits;
        let Some(&entry) = as_index(table_index).and_then(|i| self.table.get(i)) else {
            return Ok(0);
        };
        let block = entry & REFT_OFFSET_MASK;
        if block == 0 {
            return Ok(0);
        }
        let cluster_size = 1u64 << self.cluster_bits;
        if block & (cluster_size - 1) != 0 {
            return Err(LookupError::Unaligned { offset: block, index: table_index });
        }
        let slot = index & ((1u64 << self.block_bits) - 1);
        if let Some((offset, bytes)) = &self.last {
            if *offset == block {
                return Ok(get_refcount(bytes, self.order, slot));
            }
        }
        // Lookups mostly walk the clusters in order, so the block in use
        // is kept apart from the others.
        let bytes = match self.cache.remove(&block) {
            Some(bytes) => bytes,
            None => file.read_vec(block, cluster_size).map_err(LookupError::Io)?,
        };
        if let Some((offset, old)) = self.last.take() {
            if self.cache.len() >= BLOCK_CACHE_MAX {
                self.cache.clear();
            }
            self.cache.insert(offset, old);
        }
        let count = get_refcount(&bytes, self.order, slot);
        self.last = Some((block, bytes));
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_saturation_limit_follows_width() {
        assert_eq!(RefcountArray::new(0, 1).map(|a| a.max()), Some(1));
        assert_eq!(RefcountArray::new(4, 1).map(|a| a.max()), Some(0xffff));
        assert_eq!(RefcountArray::new(6, 1).map(|a| a.max()), Some(u64::MAX));
        let mut a = RefcountArray::new(5, 2).unwrap();
        assert!(a.grow_to(4));
        a.set(3, 7);
        assert_eq!((a.len(), a.get(3), a.get(9)), (4, 7, 0));
    }
}
