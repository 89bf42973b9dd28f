//! Cluster allocation and reference counts for the writer (and for
//! create's layout, which runs it over an in-memory file), as qemu's
//! `block/qcow2-refcount.c` does them on an open image: first fit from a
//! free cluster index that starts at 0 on open (`alloc_clusters_noref`),
//! refcount blocks placed so that they can count themselves
//! (`alloc_refcount_block`), with the caller's search restarted when one
//! lands where it meant to allocate (qemu's `-EAGAIN`), a larger
//! refcount table built past everything in use when the table is full
//! (`qcow2_refcount_area`), and compressed payloads packed byte by byte
//! (`qcow2_alloc_bytes`).
//!
//! The refcount table lives in memory (it is at most
//! `QCOW_MAX_REFTABLE_SIZE` entries, checked at open); refcount blocks go
//! through a small [`TableCache`].

use crate::cache::{FlushError, TableCache, TableFile};
use crate::layout::{refcount_metadata_size, Geometry};
use crate::overlap::{Fixed, Metadata, OL_ACTIVE_L2, OL_REFCOUNT_BLOCK};
use crate::tables::{
    get_refcount, set_refcount, QCOW_MAX_CLUSTER_OFFSET, QCOW_MAX_REFTABLE_SIZE,
    REFTABLE_ENTRY_SIZE, REFT_OFFSET_MASK,
};
use instar_core::bytes::{put_be32, put_be64};
use std::io;

/// Where the header keeps the refcount table's offset (8 bytes) and size
/// in clusters (4 bytes): `offsetof(QCowHeader, refcount_table_offset)`.
const HEADER_REFTABLE_FIELDS: u64 = 48;

/// How far past the end of the file the free cluster search goes before
/// giving up. In a consistent image every cluster past the end is free, so
/// the search stops within a few clusters of it; only refcount blocks
/// that count clusters the file does not hold (a damaged image, where
/// qemu's search can run for hours) get this far.
const SEARCH_PAST_END: u64 = 1 << 24;

/// How many refcount blocks the writer keeps in memory.
const REFBLOCK_CACHE_ENTRIES: usize = 16;

/// Why an allocation step did not complete.
#[derive(Debug)]
pub enum Fail {
    /// The file could not be read or written.
    Io(io::Error),
    /// A new refcount block or table was placed: the caller's choice of
    /// clusters may be stale, search again (qemu's `-EAGAIN`).
    Again,
    /// The image would grow past what qcow2 can address (`-EFBIG`).
    TooLarge,
    /// The image's metadata is inconsistent: qemu marks the image corrupt
    /// with this message (`qcow2_signal_corruption`) and fails with
    /// `-EIO`.
    Corrupt(String),
    /// A refcount would overflow or underflow (`-EINVAL`).
    Invalid,
}

/// Which of the two table caches waits for the other before its tables
/// are written ([`Refcounts::set_dependency`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waiting {
    /// The L2 tables wait for the refcount blocks.
    L2,
    /// The refcount blocks wait for the L2 tables.
    Blocks,
}

impl From<io::Error> for Fail {
    fn from(e: io::Error) -> Self {
        Fail::Io(e)
    }
}

impl From<FlushError> for Fail {
    fn from(e: FlushError) -> Self {
        match e {
            FlushError::Io(e) => Fail::Io(e),
            FlushError::Refused(why) => Fail::Corrupt(why),
        }
    }
}

/// qemu's message for a write refused by the overlap check.
pub fn overlap_message(name: &str) -> String {
    format!("Preventing invalid write on metadata (overlaps with {name})")
}

impl Fail {
    /// The errno qemu's write path returns for this failure.
    pub fn into_io(self) -> io::Error {
        match self {
            Fail::Io(e) => e,
            Fail::TooLarge => io::Error::from_raw_os_error(27),
            Fail::Invalid => io::Error::from_raw_os_error(22),
            Fail::Again | Fail::Corrupt(_) => io::Error::from_raw_os_error(5),
        }
    }
}

/// The overlap check's view of the metadata: the refcount table is
/// searched for blocks up to its last used entry, as qemu's.
fn view<'a>(
    fixed: &'a Fixed,
    l1: &'a [u64],
    l1_offset: u64,
    table: &'a [u64],
    table_offset: u64,
    max_table_index: usize,
) -> Metadata<'a> {
    let used = (max_table_index + 1).min(table.len());
    Metadata {
        fixed,
        l1,
        l1_offset,
        reftable: &table[..used],
        reftable_offset: table_offset,
        reftable_len: table.len() as u64,
    }
}

/// A cluster index or table index as a `usize` for indexing the
/// in-memory refcount table (whose length is bounded at open).
fn slot(i: u64) -> Option<usize> {
    usize::try_from(i).ok()
}

/// The reference counts of an open image and its free-space search.
#[derive(Debug)]
pub struct Refcounts {
    g: Geometry,
    cs: u64,
    /// The refcount table, as in the file (entries with their reserved
    /// bits).
    table: Vec<u64>,
    table_offset: u64,
    max_table_index: usize,
    /// qemu's `free_cluster_index`: where the next search starts.
    free_cluster_index: u64,
    /// qemu's `free_byte_offset`: where the next compressed payload goes
    /// (0: start a new cluster).
    free_byte_offset: u64,
    blocks: TableCache,
    /// The L2 table cache. The writer fills it; it lives here because
    /// placing a new refcount block writes the changed L2 tables first, as
    /// qemu's does (what a write that fails later leaves in the file
    /// depends on it).
    pub l2: TableCache,
    /// The active L1 table (the writer keeps it here, where the overlap
    /// check of every table write can see it).
    pub l1: Vec<u64>,
    /// Where the active L1 table is.
    pub l1_offset: u64,
    /// The metadata a convert does not move, for the overlap check.
    pub fixed: Fixed,
    /// Whether clusters freed by a discard request are discarded in the
    /// file (the image was opened with `BDRV_O_UNMAP`).
    pub discard: bool,
    /// Frees that failed since the writer last looked (qemu prints
    /// `qcow2_free_clusters failed` and carries on).
    pub failed_frees: Vec<Fail>,
    /// Whether the changed L2 tables must wait for the refcount blocks:
    /// set when new clusters are linked while refcounts are kept exact
    /// and when a compressed payload is placed (qemu's
    /// `qcow2_cache_set_dependency` in `qcow2_alloc_cluster_link_l2` and
    /// `qcow2_alloc_bytes`), cleared once the blocks were written for
    /// them.
    pub l2_depends: bool,
    /// Whether the changed refcount blocks must wait for the L2 tables:
    /// set when a refcount is decreased (qemu's `update_refcount`), so
    /// that no table names a cluster counted free on disk.
    pub blocks_depend: bool,
    /// Corruption found while writing one cache for the other's sake
    /// where qemu does not look at the answer (`qcow2_cache_set_dependency`
    /// called without checking it): the writer still signals it.
    pub signaled: Vec<Fail>,
}

impl Refcounts {
    /// The refcount state of an image opened with the refcount table
    /// `table` read from `table_offset`.
    pub fn new(g: Geometry, table: Vec<u64>, table_offset: u64, l2: TableCache) -> Refcounts {
        let fixed = Fixed { cluster_size: g.cluster_size(), ..Fixed::default() };
        let cs = g.cluster_size();
        let max_table_index = table.iter().rposition(|&e| e & REFT_OFFSET_MASK != 0).unwrap_or(0);
        #[allow(clippy::cast_possible_truncation, reason = "at most 2 MiB (MAX_CLUSTER_BITS)")]
        let blocks = TableCache::new(cs as usize, REFBLOCK_CACHE_ENTRIES);
        Refcounts {
            g,
            cs,
            table,
            table_offset,
            max_table_index,
            free_cluster_index: 0,
            free_byte_offset: 0,
            blocks,
            l2,
            l1: Vec::new(),
            l1_offset: 0,
            fixed,
            discard: false,
            failed_frees: Vec::new(),
            l2_depends: false,
            blocks_depend: false,
            signaled: Vec::new(),
        }
    }

    /// The metadata as the overlap check sees it now.
    pub fn metadata(&self) -> Metadata<'_> {
        view(
            &self.fixed,
            &self.l1,
            self.l1_offset,
            &self.table,
            self.table_offset,
            self.max_table_index,
        )
    }

    /// Writes the refcount blocks still held in memory, each unless it
    /// would overlap other metadata.
    pub fn flush_blocks(&mut self, file: &impl TableFile) -> Result<(), Fail> {
        if self.blocks_depend && self.blocks.has_dirty() {
            self.flush_cache(file, OL_ACTIVE_L2)?;
            self.blocks_depend = false;
        }
        self.flush_cache(file, OL_REFCOUNT_BLOCK)
    }

    /// qemu's `qcow2_cache_set_dependency`: the `waiting` cache's changed
    /// tables are to wait for the other cache; what the other cache waited
    /// for is written first. qemu ignores the answer: a table that cannot
    /// be written leaves the dependency unset (a corruption found on the
    /// way is still signaled). The L2 tables wait when new clusters are
    /// linked with exact refcounts and when a compressed payload is
    /// placed; the refcount blocks wait once a refcount is decreased.
    pub fn set_dependency(&mut self, file: &impl TableFile, waiting: Waiting) {
        let (other_waits, other) = match waiting {
            Waiting::L2 => (self.blocks_depend, OL_ACTIVE_L2),
            Waiting::Blocks => (self.l2_depends, OL_REFCOUNT_BLOCK),
        };
        if other_waits {
            if let Err(e) = self.flush_cache(file, other) {
                self.note_ignored(e);
                return;
            }
        }
        self.l2_depends = waiting == Waiting::L2;
        self.blocks_depend = waiting == Waiting::Blocks;
    }

    /// A failure qemu does not look at: only a corruption shows (its
    /// message, and the image marked).
    fn note_ignored(&mut self, e: Fail) {
        if matches!(e, Fail::Corrupt(_)) {
            self.signaled.push(e);
        }
    }

    /// Writes the L2 tables still held in memory, each unless it would
    /// overlap other metadata; first the refcount blocks, when changed
    /// tables wait for them ([`Refcounts::l2_depends`], qemu's cache
    /// dependency): a block that cannot be written keeps the tables
    /// unwritten, and its error is the answer.
    pub fn flush_l2(&mut self, file: &impl TableFile) -> Result<(), Fail> {
        if self.l2_depends && self.l2.has_dirty() {
            self.flush_blocks(file)?;
            self.l2_depends = false;
        }
        self.flush_cache(file, OL_ACTIVE_L2)
    }

    /// Writes the changed tables of one cache: `kind` is what they are
    /// to the overlap check (`OL_ACTIVE_L2` for the L2 cache,
    /// `OL_REFCOUNT_BLOCK` for the refcount block cache), which may then
    /// refuse any that overlap other metadata.
    fn flush_cache(&mut self, file: &impl TableFile, kind: u32) -> Result<(), Fail> {
        let m = view(
            &self.fixed,
            &self.l1,
            self.l1_offset,
            &self.table,
            self.table_offset,
            self.max_table_index,
        );
        let cs = self.cs;
        let cache = if kind == OL_ACTIVE_L2 { &mut self.l2 } else { &mut self.blocks };
        Ok(cache.flush(file, |off| m.overlap(kind, off, cs).map(overlap_message))?)
    }

    /// Writes the L2 tables, then the refcount blocks, still held in
    /// memory (qemu's flush order).
    pub fn flush(&mut self, file: &impl TableFile) -> Result<(), Fail> {
        let (l2, blocks) = self.flush_caches(file);
        l2.and(blocks)
    }

    /// [`Refcounts::flush`] with each cache's own answer, as qemu's close
    /// reports them (`qcow2_inactivate`).
    pub fn flush_caches(&mut self, file: &impl TableFile) -> (Result<(), Fail>, Result<(), Fail>) {
        let l2 = self.flush_l2(file);
        (l2, self.flush_blocks(file))
    }

    /// Where the refcount table is, and its length in entries.
    pub fn table_location(&self) -> (u64, usize) {
        (self.table_offset, self.table.len())
    }

    /// The refcount block offset for refcount table index `ti`, 0 if none.
    fn block_offset(&self, ti: u64) -> Result<u64, Fail> {
        let Some(&entry) = slot(ti).and_then(|i| self.table.get(i)) else { return Ok(0) };
        let off = entry & REFT_OFFSET_MASK;
        if off & (self.cs - 1) != 0 {
            return Err(Fail::Corrupt(format!(
                "Refblock offset {} unaligned (reftable index: {})",
                crate::read::c_hex(off),
                crate::read::c_hex(ti)
            )));
        }
        Ok(off)
    }

    /// The refcount of cluster `index` (qemu's `qcow2_get_refcount`).
    pub fn get(&mut self, file: &impl TableFile, index: u64) -> Result<u64, Fail> {
        let block = self.block_offset(index >> self.g.refcount_block_bits())?;
        if block == 0 {
            return Ok(0);
        }
        let data = self.blocks.get(file, block)?;
        Ok(get_refcount(data, self.g.refcount_order, index & (self.g.refcount_block_entries() - 1)))
    }

    /// Finds `size` bytes of free clusters in a row from the free cluster
    /// index on, without counting them (qemu's `alloc_clusters_noref`).
    pub fn alloc_noref(&mut self, file: &impl TableFile, size: u64, max: u64) -> Result<u64, Fail> {
        let n = self.g.size_to_clusters(size);
        let limit = self.g.size_to_clusters(file.size()?) + n + SEARCH_PAST_END;
        'retry: loop {
            for _ in 0..n {
                let idx = self.free_cluster_index;
                if idx > limit {
                    return Err(Fail::TooLarge);
                }
                self.free_cluster_index += 1;
                if self.get(file, idx)? != 0 {
                    continue 'retry;
                }
            }
            break;
        }
        if self.free_cluster_index > 0 && self.free_cluster_index - 1 > (max >> self.g.cluster_bits)
        {
            return Err(Fail::TooLarge);
        }
        Ok((self.free_cluster_index - n) << self.g.cluster_bits)
    }

    /// Allocates `size` bytes of clusters and counts them (qemu's
    /// `qcow2_alloc_clusters`).
    pub fn alloc(&mut self, file: &impl TableFile, size: u64) -> Result<u64, Fail> {
        loop {
            let offset = self.alloc_noref(file, size, QCOW_MAX_CLUSTER_OFFSET)?;
            match self.update(file, offset, size, 1, false, false) {
                Ok(()) => return Ok(offset),
                Err(Fail::Again) => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Counts up to `n` free clusters in a row exactly at `offset`;
    /// returns how many were free (qemu's `qcow2_alloc_clusters_at`).
    pub fn alloc_at(&mut self, file: &impl TableFile, offset: u64, n: u64) -> Result<u64, Fail> {
        if n == 0 {
            return Ok(0);
        }
        loop {
            let first = offset >> self.g.cluster_bits;
            let mut i = 0;
            while i < n {
                if self.get(file, first + i)? != 0 {
                    break;
                }
                i += 1;
            }
            match self.update(file, offset, i << self.g.cluster_bits, 1, false, false) {
                Ok(()) => return Ok(i),
                Err(Fail::Again) => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Drops a reference on the clusters of `[offset, offset + size)`
    /// (qemu's `qcow2_free_clusters`); with `request`, a cluster that
    /// becomes free is discarded in the file when the image allows it.
    /// qemu only reports a failure here and goes on: the failure is kept
    /// in [`Refcounts::failed_frees`] for the writer to report.
    pub fn free(&mut self, file: &impl TableFile, offset: u64, size: u64, request: bool) {
        if let Err(e) = self.update(file, offset, size, 1, true, request) {
            self.failed_frees.push(e);
        }
    }

    /// `size` bytes (at most a cluster) for a compressed payload, right
    /// after the previous one, straddling into the next cluster only when
    /// that is the adjacent free one (qemu's `qcow2_alloc_bytes`).
    pub fn alloc_bytes(&mut self, file: &impl TableFile, size: u64) -> Result<u64, Fail> {
        let cs = self.cs;
        let mut offset = self.free_byte_offset;
        if offset != 0 && self.get(file, offset >> self.g.cluster_bits)? == self.g.refcount_max() {
            offset = 0;
        }
        let mut free_in_cluster = cs - (offset & (cs - 1));
        loop {
            if offset == 0 || free_in_cluster < size {
                // qemu caps compressed offsets at `cluster_offset_mask`.
                let mask = (1u64 << (62 - (self.g.cluster_bits - 8))) - 1;
                let new = self.alloc_noref(file, cs, mask.min(QCOW_MAX_CLUSTER_OFFSET))?;
                if new == 0 {
                    return Err(Fail::Corrupt(
                        "Preventing invalid allocation of compressed cluster at offset 0".into(),
                    ));
                }
                if offset == 0 || offset.div_ceil(cs) * cs != new {
                    offset = new;
                    free_in_cluster = cs;
                } else {
                    free_in_cluster += cs;
                }
            }
            match self.update(file, offset, size, 1, false, false) {
                Ok(()) => break,
                Err(Fail::Again) => offset = 0,
                Err(e) => return Err(e),
            }
        }
        self.free_byte_offset = offset + size;
        if self.free_byte_offset & (cs - 1) == 0 {
            self.free_byte_offset = 0;
        }
        // The L2 table about to name the payload waits for its count,
        // whether or not refcounts are lazy (qemu sets the dependency
        // here unconditionally).
        self.set_dependency(file, Waiting::L2);
        Ok(offset)
    }

    /// Adds `addend` to (or with `decrease` takes it from) the refcount of
    /// every cluster `[offset, offset + length)` touches, creating refcount
    /// blocks as needed; on failure the changes made are undone (qemu's
    /// `update_refcount`). `request`: a freed cluster is discarded in the
    /// file if the image allows discards.
    pub fn update(
        &mut self,
        file: &impl TableFile,
        offset: u64,
        length: u64,
        addend: u64,
        decrease: bool,
        request: bool,
    ) -> Result<(), Fail> {
        if length == 0 {
            return Ok(());
        }
        if decrease {
            self.set_dependency(file, Waiting::Blocks);
        }
        let cs = self.cs;
        let start = offset & !(cs - 1);
        let last = (offset + length - 1) & !(cs - 1);
        let mut cluster_offset = start;
        let mut current: Option<(u64, u64)> = None;
        let mut result = Ok(());
        while cluster_offset <= last {
            let idx = cluster_offset >> self.g.cluster_bits;
            let ti = idx >> self.g.refcount_block_bits();
            let block = match current {
                Some((t, b)) if t == ti => b,
                _ => match self.alloc_refcount_block(file, idx) {
                    Ok(b) => {
                        current = Some((ti, b));
                        b
                    }
                    Err(e) => {
                        if matches!(e, Fail::Again) {
                            self.free_cluster_index =
                                self.free_cluster_index.min(start >> self.g.cluster_bits);
                        }
                        result = Err(e);
                        break;
                    }
                },
            };
            let order = self.g.refcount_order;
            let bi = idx & (self.g.refcount_block_entries() - 1);
            let max = self.g.refcount_max();
            let data = match self.blocks.get(file, block) {
                Ok(d) => d,
                Err(e) => {
                    result = Err(e.into());
                    break;
                }
            };
            let old = get_refcount(data, order, bi);
            let new = if decrease { old.checked_sub(addend) } else { old.checked_add(addend) };
            let Some(new) = new.filter(|&v| v <= max) else {
                result = Err(Fail::Invalid);
                break;
            };
            set_refcount(data, order, bi, new);
            self.blocks.mark_dirty(block);
            if new == 0 && idx < self.free_cluster_index {
                self.free_cluster_index = idx;
            }
            if new == 0 {
                // qemu drops a cached refcount block at the offset the
                // update started from once its cluster is free.
                self.blocks.discard(offset);
                if request && self.discard {
                    if let Err(e) = file.zero_range(cluster_offset, cs) {
                        result = Err(e.into());
                        break;
                    }
                }
            }
            cluster_offset += cs;
        }
        if result.is_err() && cluster_offset > offset {
            let _ = self.update(file, offset, cluster_offset - offset, addend, !decrease, false);
        }
        result
    }

    /// The refcount block covering cluster `index`, created if missing
    /// (qemu's `alloc_refcount_block`). Creating one answers
    /// [`Fail::Again`]: it may sit where the caller meant to allocate.
    fn alloc_refcount_block(&mut self, file: &impl TableFile, index: u64) -> Result<u64, Fail> {
        let rb_bits = self.g.refcount_block_bits();
        let ti = index >> rb_bits;
        let existing = self.block_offset(ti)?;
        if existing != 0 {
            return Ok(existing);
        }
        // The refcount table is about to change: L2 tables first.
        self.flush_l2(file)?;
        let cs = self.cs;
        let new_block = self.alloc_noref(file, cs, i64::MAX as u64)?;
        if new_block == 0 {
            return Err(Fail::Corrupt(
                "Preventing invalid allocation of refcount block at offset 0".into(),
            ));
        }
        let block_shift = self.g.cluster_bits + rb_bits;
        if new_block >> block_shift == (index << self.g.cluster_bits) >> block_shift {
            // The block counts itself.
            let bi = (new_block >> self.g.cluster_bits) & (self.g.refcount_block_entries() - 1);
            let data = self.blocks.get_empty(file, new_block)?;
            set_refcount(data, self.g.refcount_order, bi, 1);
        } else {
            // Counted by another block (at most two levels deep).
            self.update(file, new_block, cs, 1, false, false)?;
            self.blocks.get_empty(file, new_block)?;
        }
        self.flush_blocks(file)?;

        if let Some(i) = slot(ti).filter(|&i| i < self.table.len()) {
            let mut entry = [0u8; 8];
            put_be64(&mut entry, 0, new_block);
            file.write_at(self.table_offset + ti * REFTABLE_ENTRY_SIZE, &entry)?;
            self.table[i] = new_block;
            self.max_table_index = self.max_table_index.max(i);
            return Err(Fail::Again);
        }

        // The table is full: new self-describing refcount structures go
        // at the next refcount block boundary past everything in use.
        let entries = self.g.refcount_block_entries();
        let blocks_used = (index + 1).max((new_block >> self.g.cluster_bits) + 1).div_ceil(entries);
        let meta_offset = blocks_used * entries * cs;
        self.refcount_area(file, meta_offset, 0, false, Some((ti, new_block)))?;
        Err(Fail::Again)
    }

    /// Builds, at `start_offset` (past everything in use), a refcount
    /// table with room to grow and the refcount blocks that count it, the
    /// clusters before it and `additional` more; switches the image to it
    /// and frees the old table (qemu's `qcow2_refcount_area`). Returns the
    /// offset past the new structures.
    pub fn refcount_area(
        &mut self,
        file: &impl TableFile,
        start_offset: u64,
        additional: u64,
        exact_size: bool,
        new_refblock: Option<(u64, u64)>,
    ) -> Result<u64, Fail> {
        let cs = self.cs;
        let entries = self.g.refcount_block_entries();
        let (_, total_blocks) = refcount_metadata_size(
            start_offset / cs + additional,
            cs,
            self.g.refcount_order,
            !exact_size,
        );
        // qemu compares a count of blocks with a size in bytes here.
        if total_blocks > QCOW_MAX_REFTABLE_SIZE {
            return Err(Fail::TooLarge);
        }
        let area_index = (start_offset / cs) / entries;
        let per_cluster = cs / REFTABLE_ENTRY_SIZE;
        let table_size =
            if exact_size { total_blocks } else { total_blocks + total_blocks.div_ceil(2) }
                .div_ceil(per_cluster)
                * per_cluster;
        if table_size > QCOW_MAX_REFTABLE_SIZE {
            return Err(Fail::TooLarge);
        }
        let table_clusters = table_size * REFTABLE_ENTRY_SIZE / cs;
        // Both below QCOW_MAX_REFTABLE_SIZE (8 Mi), checked above.
        let len = slot(table_size).ok_or(Fail::TooLarge)?;
        let mut new_table = vec![0u64; len];
        let keep = if len > self.max_table_index { self.max_table_index + 1 } else { len };
        let keep = keep.min(self.table.len());
        new_table[..keep].copy_from_slice(&self.table[..keep]);
        if let Some((index, offset)) = new_refblock {
            let i = slot(index).filter(|_| index < total_blocks);
            let Some(i) = i else { return Err(Fail::TooLarge) };
            new_table[i] = offset;
        }
        let total = slot(total_blocks).ok_or(Fail::TooLarge)?;
        let area = slot(area_index).ok_or(Fail::TooLarge)?;
        let missing = (area..total).filter(|&i| new_table[i] == 0).count() as u64;
        let table_offset = start_offset + missing * cs;
        let end_offset = table_offset + table_clusters * cs;

        let mut block_offset = start_offset;
        #[allow(clippy::needless_range_loop, reason = "the index is also a block number")]
        for i in area..total {
            let block = if new_table[i] == 0 {
                self.blocks.get_empty(file, block_offset)?;
                new_table[i] = block_offset;
                block_offset += cs;
                new_table[i]
            } else {
                new_table[i] & REFT_OFFSET_MASK
            };
            let first_covered = i as u64 * entries * cs;
            if first_covered < end_offset {
                let from = if first_covered < start_offset {
                    (start_offset - first_covered) / cs
                } else {
                    0
                };
                let to = ((end_offset - first_covered) / cs).min(entries);
                let order = self.g.refcount_order;
                let data = self.blocks.get(file, block)?;
                for j in from..to {
                    set_refcount(data, order, j, 1);
                }
                self.blocks.mark_dirty(block);
            }
            // Blocks fill one by one: write each before the next may
            // push it out of the cache.
            self.flush_blocks(file)?;
        }

        let bytes = crate::tables::encode_table(&new_table);
        file.write_at(table_offset, &bytes)?;
        let mut fields = [0u8; 12];
        put_be64(&mut fields, 0, table_offset);
        #[allow(clippy::cast_possible_truncation, reason = "table_size is capped above")]
        put_be32(&mut fields, 8, table_clusters as u32);
        file.write_at(HEADER_REFTABLE_FIELDS, &fields)?;

        let old_offset = self.table_offset;
        let old_bytes = self.table.len() as u64 * REFTABLE_ENTRY_SIZE;
        self.table = new_table;
        self.table_offset = table_offset;
        self.max_table_index =
            self.table.iter().rposition(|&e| e & REFT_OFFSET_MASK != 0).unwrap_or(0);
        self.free(file, old_offset, old_bytes, false);
        Ok(end_offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use instar_core::TargetFile;

    /// A fresh image as qemu creates it (header, table, one block), in a
    /// temporary file.
    fn fresh(
        cluster_bits: u32,
        refcount_order: u32,
    ) -> (tempfile::TempPath, TargetFile, Refcounts) {
        let g = Geometry { cluster_bits, refcount_order, extended_l2: false };
        let cs = g.cluster_size();
        let path = tempfile::NamedTempFile::new().unwrap().into_temp_path();
        let file = TargetFile::open(path.to_str().unwrap()).unwrap();
        let len = usize::try_from(cs).unwrap();
        let mut table = vec![0u64; len / 8];
        table[0] = 2 * cs;
        let mut refs = Refcounts::new(g, table, cs, TableCache::new(len, 1));
        // Header, table and block, counted as create counts them.
        refs.alloc(&file, 3 * cs).unwrap();
        (path, file, refs)
    }

    #[test]
    fn first_fit_from_the_free_index() {
        let (_p, file, mut refs) = fresh(16, 4);
        assert_eq!(refs.alloc(&file, 65536).unwrap(), 0x30000);
        assert_eq!(refs.alloc(&file, 2 * 65536).unwrap(), 0x40000);
        refs.free(&file, 0x30000, 65536, false);
        // A freed cluster moves the search back.
        assert_eq!(refs.alloc(&file, 65536).unwrap(), 0x30000);
        assert_eq!(refs.alloc_at(&file, 0x60000, 3).unwrap(), 3);
        assert_eq!(refs.alloc_at(&file, 0x50000, 3).unwrap(), 0);
    }

    #[test]
    fn refcount_blocks_count_themselves() {
        // 512-byte clusters, 16-bit refcounts: a block counts 256 clusters.
        let (_p, file, mut refs) = fresh(9, 4);
        for i in 3..256u64 {
            assert_eq!(refs.alloc(&file, 512).unwrap(), i * 512);
        }
        // Cluster 256 needs the second block: the search has moved on, so
        // the block lands at 257 (counting itself) and the retried
        // allocation gets 256.
        assert_eq!(refs.alloc(&file, 512).unwrap(), 256 * 512);
        assert_eq!(refs.table[1], 257 * 512);
        assert_eq!(refs.get(&file, 257).unwrap(), 1);
        assert_eq!(refs.alloc(&file, 512).unwrap(), 258 * 512);
    }

    #[test]
    fn a_full_table_grows_past_everything() {
        // 512-byte clusters, 64-bit refcounts: 64 clusters per block, 64
        // blocks per table cluster; the table is full past 4096 clusters.
        let (_p, file, mut refs) = fresh(9, 6);
        let (mut n, mut last) = (0, 0);
        while refs.table_offset == 512 {
            last = refs.alloc(&file, 512).unwrap();
            n += 1;
            assert!(n < 5000, "the table never grew");
        }
        // It grew when cluster 4096 needed the 65th block: clusters 0-4095
        // hold the header, the table, 63 blocks and 4031 data clusters.
        // The new structures start at the next block boundary past it
        // (cluster 4160), blocks first, then the table.
        assert_eq!(n, 4096 - 2 - 63);
        assert!(refs.table.len() > 64);
        assert!(refs.table_offset > 4160 * 512);
        // The old table's cluster was freed, and the allocation that made
        // the table grow, retried, took it.
        assert_eq!(last, 512);
        assert_eq!(refs.get(&file, 1).unwrap(), 1);
    }

    #[test]
    fn compressed_payloads_pack_and_straddle() {
        let (_p, file, mut refs) = fresh(16, 4);
        assert_eq!(refs.alloc_bytes(&file, 40000).unwrap(), 0x30000);
        // Straddles into the adjacent cluster: both count it.
        assert_eq!(refs.alloc_bytes(&file, 40000).unwrap(), 0x30000 + 40000);
        assert_eq!((refs.get(&file, 3).unwrap(), refs.get(&file, 4).unwrap()), (2, 1));
        // A cluster taken in between makes the next payload start afresh.
        assert_eq!(refs.alloc(&file, 65536).unwrap(), 0x50000);
        assert_eq!(refs.alloc_bytes(&file, 60000).unwrap(), 0x60000);
    }
}
