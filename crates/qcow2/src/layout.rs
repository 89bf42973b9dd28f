//! Where everything goes in a new qcow2 image, computed without touching
//! a file.
//!
//! qemu-img does not lay a new image out from a formula: it writes a
//! minimal image (header, one-cluster refcount table, empty refcount
//! block), opens it, and grows it with its ordinary allocator — the L1
//! table, refcount blocks as they become necessary (sometimes a larger
//! refcount table placed at the next refcount-block boundary), and, for
//! preallocated images, L2 tables and data clusters. The allocator's
//! quirks decide the bytes: freed refcount tables keep their stale
//! contents and get reused, a refcount block can leave a cluster unused
//! behind it, and so on. To write the same bytes, [`plan`] replays those
//! allocation steps with convert's own allocator
//! ([`crate::alloc::Refcounts`]) over an in-memory file ([`SparseFile`])
//! and returns the final picture: which byte ranges the image file holds
//! and what they contain, how long the file is, and which range the file
//! layer preallocates.
//!
//! The arithmetic helpers ([`Geometry`], [`refcount_metadata_size`]) are
//! qemu's formulas, in their own words.

use crate::alloc::{Fail, Refcounts};
use crate::cache::{TableCache, TableFile};
use crate::tables::{
    L1E_OFFSET_MASK, L1E_SIZE, L2E_SIZE_EXTENDED, L2E_SIZE_NORMAL, QCOW_MAX_L1_SIZE,
    QCOW_OFLAG_COPIED, REFTABLE_ENTRY_SIZE, SUBCLUSTERS_PER_CLUSTER,
};
use crate::write::L2_CACHE_ENTRIES;
use instar_core::bytes::put_be64;
pub use instar_core::file::Prealloc;
use instar_core::file::REQUEST_MAX_BYTES;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io;

/// qemu's `INT_MAX`, which bounds table sizes and request lengths.
const INT_MAX: u64 = i32::MAX as u64;

/// The shape of an image's metadata: cluster size, refcount width and L2
/// entry width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// log2 of the cluster size (9..=21).
    pub cluster_bits: u32,
    /// log2 of the refcount width in bits (0..=6).
    pub refcount_order: u32,
    /// Whether L2 entries are extended (128 bits, 32 subclusters).
    pub extended_l2: bool,
}

impl Geometry {
    /// The cluster size in bytes.
    pub fn cluster_size(&self) -> u64 {
        1 << self.cluster_bits
    }

    /// Bytes per L2 entry.
    pub fn l2_entry_size(&self) -> u64 {
        if self.extended_l2 {
            L2E_SIZE_EXTENDED
        } else {
            L2E_SIZE_NORMAL
        }
    }

    /// log2 of the number of entries in an L2 table.
    pub fn l2_bits(&self) -> u32 {
        self.cluster_bits - self.l2_entry_size().trailing_zeros()
    }

    /// Entries per L2 table (one cluster).
    pub fn l2_entries(&self) -> u64 {
        1 << self.l2_bits()
    }

    /// The subcluster size: the cluster size, or 1/32 of it with extended
    /// L2 entries.
    pub fn subcluster_size(&self) -> u64 {
        if self.extended_l2 {
            self.cluster_size() / SUBCLUSTERS_PER_CLUSTER
        } else {
            self.cluster_size()
        }
    }

    /// log2 of the number of refcounts in a refcount block.
    pub fn refcount_block_bits(&self) -> u32 {
        self.cluster_bits + 3 - self.refcount_order
    }

    /// Refcounts per refcount block (one cluster).
    pub fn refcount_block_entries(&self) -> u64 {
        1 << self.refcount_block_bits()
    }

    /// The largest refcount an entry can hold.
    pub fn refcount_max(&self) -> u64 {
        let bits = 1u32 << self.refcount_order;
        if bits >= 64 {
            u64::MAX
        } else {
            (1u64 << bits) - 1
        }
    }

    /// Clusters needed to hold `bytes` (qemu's `size_to_clusters`).
    pub fn size_to_clusters(&self, bytes: u64) -> u64 {
        bytes.div_ceil(self.cluster_size())
    }

    /// L1 entries needed for a virtual disk of `size` bytes (qemu's
    /// `size_to_l1`).
    pub fn size_to_l1(&self, size: u64) -> u64 {
        let shift = self.cluster_bits + self.l2_bits();
        size.div_ceil(1 << shift)
    }
}

/// Refcount blocks and table clusters needed to count `clusters` clusters
/// plus themselves (qemu's `qcow2_refcount_metadata_size`), found as the
/// fixed point of "blocks cover data, table and blocks". With
/// `generous_increase` the table gets room for 50% more. Returns the size
/// in bytes of blocks plus table, and the number of blocks.
pub fn refcount_metadata_size(
    clusters: u64,
    cluster_size: u64,
    refcount_order: u32,
    generous_increase: bool,
) -> (u64, u64) {
    let blocks_per_table_cluster = cluster_size / REFTABLE_ENTRY_SIZE;
    let refcounts_per_block = cluster_size * 8 / (1 << refcount_order);
    let mut clusters = clusters;
    let mut generous = generous_increase;
    let (mut table, mut blocks, mut n) = (0u64, 0u64, 0u64);
    loop {
        let last = n;
        blocks = (clusters + table + blocks).div_ceil(refcounts_per_block);
        table = blocks.div_ceil(blocks_per_table_cluster);
        n = clusters + blocks + table;
        if n == last && generous {
            clusters += table.div_ceil(2);
            n = 0;
            generous = false;
        }
        if n == last {
            break;
        }
    }
    ((blocks + table) * cluster_size, blocks)
}

/// How the file layer fills the data area of a preallocated image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FillMode {
    /// `posix_fallocate` the range.
    Allocate,
    /// Write zeros over the range.
    Zeros,
}

/// A range of the image file the file layer preallocates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fill {
    /// How.
    pub mode: FillMode,
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

/// A sparse picture of a file: the byte ranges written, with their final
/// contents, and the file length. Adjacent and overlapping writes merge,
/// so the extents come out as few large writes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SparseFile {
    extents: BTreeMap<u64, Vec<u8>>,
    len: u64,
}

impl SparseFile {
    /// An empty file.
    pub fn new() -> Self {
        SparseFile::default()
    }

    /// The file length.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the file is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Grows the file to `len` without writing (a growing truncate).
    pub fn extend_to(&mut self, len: u64) {
        self.len = self.len.max(len);
    }

    /// Writes `data` at `offset`; later writes win where ranges overlap.
    #[allow(
        clippy::cast_possible_truncation,
        reason = "every span here lies within the merged range, whose bytes are the extents \
                  and `data` already in memory"
    )]
    pub fn write(&mut self, offset: u64, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let end = offset + data.len() as u64;
        let mut touching = Vec::new();
        for (&start, buf) in self.extents.range(..=end).rev() {
            if start + buf.len() as u64 >= offset {
                touching.push(start);
            } else {
                break;
            }
        }
        let new_start = touching.last().map_or(offset, |&s| s.min(offset));
        let mut new_end = end;
        for &s in &touching {
            new_end = new_end.max(s + self.extents[&s].len() as u64);
        }
        // Reuse the first extent's buffer when it starts the merged range,
        // so that appending cluster after cluster stays cheap.
        let mut buf = match touching.last() {
            Some(&s) if s == new_start => self.extents.remove(&s).unwrap_or_default(),
            _ => Vec::new(),
        };
        buf.resize((new_end - new_start) as usize, 0);
        for &s in &touching {
            if let Some(old) = self.extents.remove(&s) {
                let at = (s - new_start) as usize;
                buf[at..at + old.len()].copy_from_slice(&old);
            }
        }
        let at = (offset - new_start) as usize;
        buf[at..at + data.len()].copy_from_slice(data);
        self.extents.insert(new_start, buf);
        self.len = self.len.max(end);
    }

    /// Writes `len` zero bytes at `offset`.
    pub fn write_zeros(&mut self, offset: u64, len: u64) {
        if len > 0 {
            #[allow(
                clippy::cast_possible_truncation,
                reason = "metadata only: a few clusters or one table, which the layout caps at \
                          QCOW_MAX_L1_SIZE or QCOW_MAX_REFTABLE_SIZE entries"
            )]
            let len = len as usize;
            self.write(offset, &vec![0u8; len]);
        }
    }

    /// The written ranges in file order: offset and contents.
    pub fn extents(&self) -> impl Iterator<Item = (u64, &[u8])> {
        self.extents.iter().map(|(&o, b)| (o, b.as_slice()))
    }

    /// Reads `buf.len()` bytes at `offset`; what was never written reads
    /// as zeros.
    #[allow(
        clippy::cast_possible_truncation,
        reason = "every span lies within `buf` or one extent, both in memory"
    )]
    pub fn read(&self, offset: u64, buf: &mut [u8]) {
        buf.fill(0);
        let end = offset + buf.len() as u64;
        // Extents never touch (writes merge them): walk back from `end`
        // until one ends before `offset`.
        for (&start, data) in self.extents.range(..end).rev() {
            let data_end = start + data.len() as u64;
            if data_end <= offset {
                break;
            }
            let (from, to) = (start.max(offset), data_end.min(end));
            buf[(from - offset) as usize..(to - offset) as usize]
                .copy_from_slice(&data[(from - start) as usize..(to - start) as usize]);
        }
    }
}

/// Create runs the writer's allocator over the picture of the new file.
impl TableFile for RefCell<SparseFile> {
    fn size(&self) -> io::Result<u64> {
        Ok(self.borrow().len())
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.borrow().read(offset, buf);
        Ok(())
    }
    fn write_at(&self, offset: u64, buf: &[u8]) -> io::Result<()> {
        self.borrow_mut().write(offset, buf);
        Ok(())
    }
    fn zero_range(&self, offset: u64, bytes: u64) -> io::Result<()> {
        // A discard leaves the length as it is.
        let mut file = self.borrow_mut();
        let end = offset.saturating_add(bytes).min(file.len());
        file.write_zeros(offset, end.saturating_sub(offset));
        Ok(())
    }
}

/// Why an image cannot be laid out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayoutError {
    /// A table would exceed qcow2's limits (qemu's `-EFBIG`).
    TooLarge,
    /// The model reached a state qemu treats as corruption; not expected
    /// for any valid request.
    Internal(String),
}

/// The result of laying out a new image.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The metadata ranges and their contents. The first cluster is
    /// reserved for the header, which the caller writes over it.
    pub file: SparseFile,
    /// The range the file layer preallocates, if any.
    pub fill: Option<Fill>,
    /// Offset of the active L1 table (0 when the image has none).
    pub l1_table_offset: u64,
    /// Entries in the active L1 table.
    pub l1_size: u32,
    /// Offset of the refcount table.
    pub refcount_table_offset: u64,
    /// Clusters of the refcount table.
    pub refcount_table_clusters: u32,
    /// What qemu does to the external data file, for an image with one.
    pub data_file: Option<DataFileLayout>,
}

/// What a new image's external data file receives: guest data lives there
/// at its guest offset, so preallocation maps every cluster to itself and
/// the qcow2 file gets metadata only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DataFileLayout {
    /// Ranges written with zeros, in order: the copy-on-write of the
    /// unwritten tail of the last preallocated cluster (offset, length).
    pub zeros: Vec<(u64, u64)>,
    /// The growing truncate that ends the create, when it grows the file:
    /// the new length and the file protocol's preallocation mode.
    pub grow: Option<(u64, Prealloc)>,
}

impl DataFileLayout {
    /// The file's length once written.
    pub fn len(&self) -> u64 {
        let written = self.zeros.iter().map(|&(at, n)| at + n).max().unwrap_or(0);
        written.max(self.grow.map_or(0, |(len, _)| len))
    }

    /// Whether the file stays empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Lays out a new image of `size` bytes (a multiple of 512) as qemu-img
/// creates it.
pub fn plan(geometry: Geometry, size: u64, prealloc: Prealloc) -> Result<Layout, LayoutError> {
    let mut sim = Sim::new(geometry, None);
    sim.create(size, prealloc)?;
    sim.finish()
}

/// Lays out a new image of `size` bytes whose guest data lives in an
/// external data file, as qemu-img creates it: the same metadata
/// allocations, but data clusters are never allocated in the image (each
/// maps to its own guest offset in the data file, qemu's
/// `do_alloc_cluster_offset`), and the resize and preallocation go to the
/// data file.
pub fn plan_with_data_file(
    geometry: Geometry,
    size: u64,
    prealloc: Prealloc,
) -> Result<Layout, LayoutError> {
    let mut sim = Sim::new(geometry, Some(DataFileLayout::default()));
    sim.create(size, prealloc)?;
    sim.finish()
}

impl From<Fail> for LayoutError {
    fn from(f: Fail) -> Self {
        match f {
            Fail::TooLarge => LayoutError::TooLarge,
            Fail::Again => LayoutError::Internal("allocation did not settle".into()),
            Fail::Corrupt(m) => LayoutError::Internal(m),
            Fail::Invalid => LayoutError::Internal("refcount out of range".into()),
            Fail::Io(e) => LayoutError::Internal(e.to_string()),
        }
    }
}

/// A cluster allocation waiting to be entered into its L2 table (qemu's
/// `QCowL2Meta`, reduced to what preallocation uses).
#[derive(Debug, Clone, Copy)]
struct Mapping {
    /// Guest offset of the first cluster.
    guest: u64,
    /// Host offset of the first cluster.
    host: u64,
    /// Number of clusters.
    clusters: u64,
    /// Tail of the last cluster to fill with zeros: offset from `host` and
    /// length (qemu's copy-on-write of the unwritten end).
    cow_end: (u64, u64),
}

/// A length or count of at most one cluster, as a `usize`.
#[allow(clippy::cast_possible_truncation, reason = "at most 2 MiB (MAX_CLUSTER_BITS)")]
fn within_cluster(n: u64) -> usize {
    n as usize
}

/// The in-memory model of qemu's qcow2 driver state during create: the
/// writer's allocator and table caches over a [`SparseFile`].
struct Sim {
    g: Geometry,
    cs: u64,
    /// The reference counts, the active L1 table and the L2 table cache.
    refs: Refcounts,
    file: RefCell<SparseFile>,
    fill: Option<Fill>,
    /// The external data file, for an image with one.
    data: Option<DataFileLayout>,
}

impl Sim {
    /// The image as `qcow2_co_create` first writes it: header cluster,
    /// a one-cluster refcount table whose first entry points at the empty
    /// refcount block in the third cluster.
    fn new(g: Geometry, data: Option<DataFileLayout>) -> Sim {
        let cs = g.cluster_size();
        let mut table = vec![0u64; within_cluster(cs / REFTABLE_ENTRY_SIZE)];
        table[0] = 2 * cs;
        let mut file = SparseFile::new();
        file.write_zeros(0, 3 * cs);
        file.write(cs, &crate::tables::encode_table(&table));
        let l2 = TableCache::new(within_cluster(cs), L2_CACHE_ENTRIES);
        Sim {
            g,
            cs,
            refs: Refcounts::new(g, table, cs, l2),
            file: RefCell::new(file),
            fill: None,
            data,
        }
    }

    fn create(&mut self, size: u64, prealloc: Prealloc) -> Result<(), LayoutError> {
        // The header, refcount table and refcount block take clusters 0-2.
        if self.refs.alloc(&self.file, 3 * self.cs)? != 0 {
            return Err(LayoutError::Internal(
                "first cluster in empty image is already in use".into(),
            ));
        }
        // qcow2_co_truncate from 0 to `size`.
        let l1_entries = self.g.size_to_l1(size);
        self.grow_l1_table(l1_entries, true)?;
        match (prealloc, self.data.as_mut()) {
            // The data file is resized to the virtual size.
            (Prealloc::Off, Some(data)) => {
                if size > 0 {
                    data.grow = Some((size, Prealloc::Off));
                }
            }
            (Prealloc::Off, None) => {}
            (Prealloc::Metadata, _) => self.preallocate(0, size, Prealloc::Off)?,
            // With a data file, preallocation maps the metadata and hands
            // the mode to the data file's resize.
            (Prealloc::Falloc | Prealloc::Full, Some(_)) => self.preallocate(0, size, prealloc)?,
            (Prealloc::Falloc | Prealloc::Full, None) => self.preallocate_data(size, prealloc)?,
        }
        Ok(())
    }

    /// The final picture: the tables still in memory written over the
    /// ranges qemu wrote.
    fn finish(mut self) -> Result<Layout, LayoutError> {
        self.refs.flush(&self.file)?;
        let file = self.file.get_mut();
        if !self.refs.l1.is_empty() {
            file.write(self.refs.l1_offset, &crate::tables::encode_table(&self.refs.l1));
        }
        // The header fields are 32-bit; both tables are capped far below
        // (QCOW_MAX_REFTABLE_SIZE, QCOW_MAX_L1_SIZE: `Fail::TooLarge`).
        let (table_offset, table_entries) = self.refs.table_location();
        #[allow(clippy::cast_possible_truncation, reason = "the tables are capped, see above")]
        let (table_clusters, l1_size) = (
            (table_entries as u64 * REFTABLE_ENTRY_SIZE / self.cs) as u32,
            self.refs.l1.len() as u32,
        );
        Ok(Layout {
            file: self.file.into_inner(),
            fill: self.fill,
            l1_table_offset: self.refs.l1_offset,
            l1_size,
            refcount_table_offset: table_offset,
            refcount_table_clusters: table_clusters,
            data_file: self.data,
        })
    }

    /// The index of the last cluster with a nonzero refcount within the
    /// first `size` bytes (qemu's `qcow2_get_last_cluster`).
    fn last_cluster(&mut self, size: u64) -> Result<Option<u64>, LayoutError> {
        for i in (0..self.g.size_to_clusters(size)).rev() {
            if self.refs.get(&self.file, i)? > 0 {
                return Ok(Some(i));
            }
        }
        Ok(None)
    }

    // ---- L1 and L2 tables (block/qcow2-cluster.c) ----

    fn grow_l1_table(&mut self, min_size: u64, exact_size: bool) -> Result<(), LayoutError> {
        let old_size = self.refs.l1.len() as u64;
        if min_size <= old_size {
            return Ok(());
        }
        if min_size > INT_MAX / L1E_SIZE {
            return Err(LayoutError::TooLarge);
        }
        let new_size = if exact_size {
            min_size
        } else {
            let mut n = old_size.max(1);
            while min_size > n {
                n = (n * 3).div_ceil(2);
            }
            n
        };
        if new_size > QCOW_MAX_L1_SIZE / L1E_SIZE {
            return Err(LayoutError::TooLarge);
        }
        let bytes = new_size * L1E_SIZE;
        let offset = self.refs.alloc(&self.file, bytes)?;
        self.file.get_mut().write_zeros(offset, bytes);
        let old_offset = self.refs.l1_offset;
        #[allow(clippy::cast_possible_truncation, reason = "capped by QCOW_MAX_L1_SIZE above")]
        let new_len = new_size as usize;
        self.refs.l1.resize(new_len, 0);
        self.refs.l1_offset = offset;
        // qemu ignores a failure to free.
        self.refs.free(&self.file, old_offset, old_size * L1E_SIZE, false);
        Ok(())
    }

    /// The L2 table covering `guest`, allocated if missing; returns its
    /// offset and the entry index (qemu's `get_cluster_table`).
    fn cluster_table(&mut self, guest: u64) -> Result<(u64, u64), LayoutError> {
        let l1_index = guest >> (self.g.l2_bits() + self.g.cluster_bits);
        if l1_index >= self.refs.l1.len() as u64 {
            self.grow_l1_table(l1_index + 1, false)?;
        }
        #[allow(clippy::cast_possible_truncation, reason = "below `self.l1.len()` (grown above)")]
        let slot = l1_index as usize;
        if self.refs.l1[slot] & QCOW_OFLAG_COPIED == 0 {
            let l2 = self.refs.alloc(&self.file, self.cs)?;
            if l2 == 0 {
                return Err(LayoutError::Internal("L2 table at offset 0".into()));
            }
            self.refs.l2.get_empty(&self.file, l2).map_err(Fail::Io)?;
            // qemu writes a new L2 table at once (`l2_allocate`).
            self.refs.flush_l2(&self.file)?;
            self.refs.l1[slot] = l2 | QCOW_OFLAG_COPIED;
        }
        let index = (guest >> self.g.cluster_bits) & (self.g.l2_entries() - 1);
        Ok((self.refs.l1[slot] & L1E_OFFSET_MASK, index))
    }

    /// Enters a preallocated mapping into its L2 table, after filling the
    /// unwritten tail of its last cluster with zeros (qemu's
    /// `qcow2_alloc_cluster_link_l2` with `perform_cow`).
    fn link_l2(&mut self, m: Mapping) -> Result<(), LayoutError> {
        let (tail_at, tail_len) = m.cow_end;
        match self.data.as_mut() {
            Some(data) if tail_len > 0 => data.zeros.push((m.host + tail_at, tail_len)),
            Some(_) => {}
            None => self.file.get_mut().write_zeros(m.host + tail_at, tail_len),
        }
        let (l2, index) = self.cluster_table(m.guest)?;
        let entry_size = self.g.l2_entry_size();
        let table = self.refs.l2.get(&self.file, l2).map_err(Fail::Io)?;
        for i in 0..m.clusters {
            #[allow(
                clippy::cast_possible_truncation,
                reason = "an offset inside one L2 table, a cluster of at most 2 MiB"
            )]
            let at = ((index + i) * entry_size) as usize;
            put_be64(table, at, (m.host + (i << self.g.cluster_bits)) | QCOW_OFLAG_COPIED);
        }
        self.refs.l2.mark_dirty(l2);
        Ok(())
    }

    /// Maps as much of `[offset, offset + bytes)` as one contiguous host
    /// run allows (qemu's `qcow2_alloc_host_offset` for unallocated
    /// clusters). Returns the host offset, the bytes mapped, and the
    /// mappings to link, newest first.
    fn alloc_host_offset(
        &mut self,
        offset: u64,
        bytes: u64,
    ) -> Result<(u64, u64, Vec<Mapping>), LayoutError> {
        let mut start = offset;
        let mut remaining = bytes;
        let mut cluster_offset: Option<u64> = None;
        let mut host: Option<u64> = None;
        let mut cur = 0u64;
        let mut mappings = Vec::new();
        loop {
            if host.is_none() {
                host = cluster_offset;
            }
            start += cur;
            remaining -= cur;
            if let Some(c) = cluster_offset.as_mut() {
                *c += cur;
            }
            if remaining == 0 {
                break;
            }
            cur = remaining;
            // handle_copied: nothing is allocated yet, but looking up the
            // L2 table allocates it.
            self.cluster_table(start)?;
            // handle_alloc
            match self.handle_alloc(start, &mut cluster_offset, &mut cur)? {
                Some(m) => mappings.insert(0, m),
                None => break,
            }
        }
        let host = host.ok_or(LayoutError::Internal("no cluster allocated".into()))?;
        Ok((host, bytes - remaining, mappings))
    }

    fn handle_alloc(
        &mut self,
        guest: u64,
        cluster_offset: &mut Option<u64>,
        bytes: &mut u64,
    ) -> Result<Option<Mapping>, LayoutError> {
        let cs = self.cs;
        let in_cluster = guest & (cs - 1);
        let (_, index) = self.cluster_table(guest)?;
        let nb = self
            .g
            .size_to_clusters(in_cluster + *bytes)
            .min(self.g.l2_entries() - index)
            .min(REQUEST_MAX_BYTES >> self.g.cluster_bits);
        let (alloc_offset, nb) = match *cluster_offset {
            // The data file holds each cluster at its guest offset.
            _ if self.data.is_some() => (guest & !(cs - 1), nb),
            None => (self.refs.alloc(&self.file, nb * cs)?, nb),
            Some(c) => {
                let at = c & !(cs - 1);
                (at, self.refs.alloc_at(&self.file, at, nb)?)
            }
        };
        if nb == 0 {
            *bytes = 0;
            return Ok(None);
        }
        let requested = *bytes + in_cluster;
        let avail = nb * cs;
        let nb_bytes = requested.min(avail);
        *cluster_offset = Some(alloc_offset + in_cluster);
        *bytes = (*bytes).min(nb_bytes - in_cluster);

        // calculate_l2_meta for unallocated clusters: the tail of the last
        // cluster up to the next subcluster boundary is copied (zeros).
        let cow_end_from = in_cluster + *bytes;
        let sub = self.g.subcluster_size();
        let cow_end_to = cow_end_from.div_ceil(sub) * sub;
        Ok(Some(Mapping {
            guest: guest & !(cs - 1),
            host: alloc_offset,
            clusters: self.g.size_to_clusters(cow_end_from),
            cow_end: (cow_end_from, cow_end_to - cow_end_from),
        }))
    }

    /// `preallocation=metadata` (qemu's `preallocate_co`), and any mode
    /// with a data file: `mode` is what the data file's final resize
    /// gets (`metadata` is `off` there).
    fn preallocate(
        &mut self,
        mut offset: u64,
        new_length: u64,
        mode: Prealloc,
    ) -> Result<(), LayoutError> {
        let mut bytes = new_length - offset;
        let mut host = 0u64;
        let mut cur = 0u64;
        let chunk = INT_MAX & !(self.cs - 1);
        while bytes > 0 {
            let (h, done, mappings) = self.alloc_host_offset(offset, bytes.min(chunk))?;
            host = h;
            cur = done;
            for m in mappings {
                self.link_l2(m)?;
            }
            bytes -= cur;
            offset += cur;
        }
        match self.data.as_mut() {
            Some(data) => {
                let data_length = data.len().div_ceil(512) * 512;
                if host + cur > data_length {
                    data.grow = Some((host + cur, mode));
                }
            }
            None => {
                let file = self.file.get_mut();
                let file_length = file.len().div_ceil(512) * 512;
                if host + cur > file_length {
                    file.extend_to(host + cur);
                }
            }
        }
        Ok(())
    }

    /// `preallocation=falloc|full`: refcount structures for everything
    /// first, then the data area right after them, then the L2 tables.
    fn preallocate_data(&mut self, size: u64, mode: Prealloc) -> Result<(), LayoutError> {
        let cs = self.cs;
        let length = self.file.get_mut().len().div_ceil(512) * 512;
        let old_file_size = match self.last_cluster(length)? {
            Some(last) => (last + 1) * cs,
            None => length.div_ceil(cs) * cs,
        };
        let data_clusters = size.div_ceil(cs);
        let l2_tables = data_clusters.div_ceil(cs / self.g.l2_entry_size()) + 1;
        let start = self.refs.refcount_area(
            &self.file,
            old_file_size,
            data_clusters + l2_tables,
            true,
            None,
        )?;
        if self.refs.alloc_at(&self.file, start, data_clusters)? != data_clusters {
            return Err(LayoutError::Internal("data area not free".into()));
        }
        let new_file_size = start + data_clusters * cs;
        let file = self.file.get_mut();
        let current = file.len();
        if new_file_size > current {
            let fill_mode =
                if mode == Prealloc::Full { FillMode::Zeros } else { FillMode::Allocate };
            self.fill = Some(Fill { mode: fill_mode, start: current, end: new_file_size });
            file.extend_to(new_file_size);
        }
        let mut host = start;
        let mut guest = 0u64;
        let mut left = data_clusters;
        while left > 0 {
            let index = (guest >> self.g.cluster_bits) & (self.g.l2_entries() - 1);
            let n = left.min(self.g.l2_entries() - index);
            self.link_l2(Mapping { guest, host, clusters: n, cow_end: (0, 0) })?;
            guest += n * cs;
            host += n * cs;
            left -= n;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geo(cluster_bits: u32, refcount_order: u32) -> Geometry {
        Geometry { cluster_bits, refcount_order, extended_l2: false }
    }

    fn layout(cluster_bits: u32, refcount_order: u32, size: u64) -> Layout {
        plan(geo(cluster_bits, refcount_order), size, Prealloc::Off).unwrap()
    }

    #[test]
    fn l1_sizes() {
        assert_eq!(geo(16, 4).size_to_l1(1 << 30), 2);
        assert_eq!(geo(16, 4).size_to_l1(0), 0);
        assert_eq!(geo(16, 4).size_to_l1(512), 1);
        assert_eq!(geo(9, 4).size_to_l1(1 << 30), 32768);
        let ext = Geometry { cluster_bits: 16, refcount_order: 4, extended_l2: true };
        assert_eq!(ext.size_to_l1(1 << 30), 4);
        assert_eq!(ext.l2_entries(), 4096);
        assert_eq!(ext.subcluster_size(), 2048);
    }

    #[test]
    fn refcount_metadata_matches_qemu() {
        // One 64 KiB refblock with 16-bit entries covers 32768 clusters.
        assert_eq!(refcount_metadata_size(4, 65536, 4, false), (2 * 65536, 1));
        assert_eq!(refcount_metadata_size(40000, 65536, 4, false), (3 * 65536, 2));
        assert_eq!(refcount_metadata_size(100, 512, 6, true), (3 * 512, 2));
    }

    // File lengths measured with qemu-img 10.0.2 `create -f qcow2`.
    #[test]
    fn default_layouts_match_qemu() {
        let l = layout(16, 4, 1 << 30);
        assert_eq!(l.file.len(), 196_624);
        assert_eq!((l.l1_table_offset, l.l1_size), (0x30000, 2));
        assert_eq!((l.refcount_table_offset, l.refcount_table_clusters), (0x10000, 1));
        assert_eq!(layout(16, 4, 0).file.len(), 196_608);
        assert_eq!(layout(16, 4, 1 << 20).file.len(), 196_616);
        assert_eq!(layout(16, 4, 100 << 30).file.len(), 198_208);
        assert_eq!(layout(16, 4, 1 << 40).file.len(), 212_992);
        assert_eq!(layout(16, 4, 16 << 40).file.len(), 458_752);
    }

    #[test]
    fn small_clusters_need_more_refcount_blocks() {
        // 512-byte clusters: the 256 KiB L1 table spills into two more
        // refcount blocks, placed after it (qemu: 264704 bytes).
        let l = layout(9, 4, 1 << 30);
        assert_eq!(l.file.len(), 264_704);
        assert_eq!(l.l1_table_offset, 0x600);
        let ext: Vec<_> = l.file.extents().collect();
        assert_eq!(ext.len(), 1);
        let table = &ext[0].1[0x200..0x218];
        assert_eq!(instar_core::bytes::be64_table(table), vec![0x400, 0x40600, 0x40800]);
        assert_eq!(layout(10, 4, 1 << 30).file.len(), 68_608);
        assert_eq!(layout(11, 4, 1 << 30).file.len(), 22_528);
        assert_eq!(layout(12, 4, 1 << 30).file.len(), 16_384);
        assert_eq!(layout(21, 4, 1 << 30).file.len(), 6_291_464);
    }

    #[test]
    fn refcount_widths_and_extended_l2_match_qemu() {
        // 1-bit refcounts: one 512-byte block counts 4096 clusters; 64-bit:
        // only 64, so the L1 table needs eight more blocks.
        assert_eq!(layout(9, 0, 1 << 30).file.len(), 263_680);
        assert_eq!(layout(9, 6, 1 << 30).file.len(), 267_776);
        assert_eq!(layout(16, 0, 1 << 30).file.len(), 196_624);
        assert_eq!(layout(16, 6, 1 << 30).file.len(), 196_624);
        assert_eq!(layout(12, 3, 1 << 30).file.len(), 16_384);
        // Extended L2 entries halve what an L2 table maps.
        let ext = |cluster_bits| Geometry { cluster_bits, refcount_order: 4, extended_l2: true };
        assert_eq!(plan(ext(16), 1 << 30, Prealloc::Off).unwrap().file.len(), 196_640);
        assert_eq!(plan(ext(14), 1 << 30, Prealloc::Off).unwrap().file.len(), 49_664);
    }

    #[test]
    fn refcount_table_growth_matches_qemu() {
        // 512-byte clusters with 64-bit refcounts, 100 GiB: the 25 MiB L1
        // table outgrows the one-cluster refcount table, which moves to
        // 0x1909c00 (qemu: 26642944 bytes).
        let l = layout(9, 6, 100 << 30);
        assert_eq!(l.file.len(), 26_642_944);
        assert_eq!(l.refcount_table_offset, 0x1909c00);
    }

    #[test]
    fn too_large_images_are_refused() {
        assert_eq!(plan(geo(9, 4), 16 << 40, Prealloc::Off).unwrap_err(), LayoutError::TooLarge);
        assert_eq!(plan(geo(16, 4), 1 << 60, Prealloc::Off).unwrap_err(), LayoutError::TooLarge);
        assert!(plan(geo(21, 4), 1 << 60, Prealloc::Off).is_ok());
    }

    #[test]
    fn preallocated_layouts_match_qemu() {
        let m = plan(geo(16, 4), 1 << 20, Prealloc::Metadata).unwrap();
        assert_eq!(m.file.len(), 1_376_256);
        assert_eq!(m.fill, None);
        let f = plan(geo(16, 4), 1 << 20, Prealloc::Falloc).unwrap();
        assert_eq!(f.file.len(), 1_376_256);
        assert_eq!(f.refcount_table_offset, 0x40000);
        assert_eq!(f.fill, Some(Fill { mode: FillMode::Allocate, start: 0x50000, end: 0x150000 }));
        // Unaligned size: the last data cluster's tail is written.
        assert_eq!(plan(geo(16, 4), 1024, Prealloc::Metadata).unwrap().file.len(), 393_216);
        assert_eq!(plan(geo(16, 4), 0, Prealloc::Falloc).unwrap().file.len(), 262_144);
    }

    #[test]
    fn sparse_file_merges_writes() {
        let mut f = SparseFile::new();
        f.write(10, &[1, 2]);
        f.write(0, &[9]);
        f.write(12, &[3]);
        f.write(1, &[8; 9]);
        let ext: Vec<_> = f.extents().map(|(o, b)| (o, b.to_vec())).collect();
        assert_eq!(ext, vec![(0, vec![9, 8, 8, 8, 8, 8, 8, 8, 8, 8, 1, 2, 3])]);
        f.write(100, &[7]);
        f.extend_to(50);
        assert_eq!(f.len(), 101);
        assert_eq!(f.extents().count(), 2);
    }

    // Measured with qemu-img 10.0.2 `create -f qcow2 -o data_file=d.raw`:
    // the image file's length, and the data file's length and writes.
    #[test]
    fn data_file_layouts_match_qemu() {
        let off = plan_with_data_file(geo(16, 4), 1 << 20, Prealloc::Off).unwrap();
        assert_eq!(off.file.len(), 196_616);
        let data = off.data_file.unwrap();
        assert_eq!((data.zeros.clone(), data.grow), (vec![], Some((1 << 20, Prealloc::Off))));
        let meta = plan_with_data_file(geo(16, 4), 1 << 20, Prealloc::Metadata).unwrap();
        assert_eq!(meta.file.len(), 327_680);
        assert_eq!(meta.data_file.unwrap().grow, Some((1 << 20, Prealloc::Off)));
        let full = plan_with_data_file(geo(16, 4), 1 << 20, Prealloc::Full).unwrap();
        assert_eq!(full.file.len(), 327_680);
        assert_eq!(full.fill, None);
        assert_eq!(full.data_file.unwrap().grow, Some((1 << 20, Prealloc::Full)));
        // 1000 bytes are 1024: the rest of the cluster is copied (zeros)
        // into the data file, which needs no resize after that.
        let tail = plan_with_data_file(geo(16, 4), 1024, Prealloc::Falloc).unwrap();
        let data = tail.data_file.unwrap();
        assert_eq!(
            (data.zeros.clone(), data.grow, data.len()),
            (vec![(1024, 64_512)], None, 65_536)
        );
        let ext = Geometry { cluster_bits: 16, refcount_order: 4, extended_l2: true };
        let sub = plan_with_data_file(ext, 1024, Prealloc::Metadata).unwrap();
        assert_eq!(sub.data_file.unwrap().len(), 2048);
        let empty = plan_with_data_file(geo(16, 4), 0, Prealloc::Metadata).unwrap();
        assert!(empty.data_file.unwrap().is_empty());
        assert!(plan(geo(16, 4), 1 << 20, Prealloc::Off).unwrap().data_file.is_none());
    }
}
