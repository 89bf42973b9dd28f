//! The qcow2 writer: an image opened for convert's writes, placing every
//! cluster where qemu's driver places it for the same writes in the same
//! order (`block/qcow2-cluster.c`: `qcow2_alloc_host_offset` with
//! `handle_copied` and `handle_alloc`, `l2_allocate`, `calculate_l2_meta`,
//! `perform_cow`, `qcow2_alloc_cluster_link_l2`).
//!
//! A write is cut where qemu cuts it: one run of clusters that are
//! already in place (`QCOW_OFLAG_COPIED`) or one run of new clusters
//! allocated in a row, at most to the end of an L2 table. An L2 table is
//! allocated the first time a write (or a zero write) reaches its range,
//! before the data clusters of that write. The parts of a new cluster (or
//! subcluster, with extended L2 entries) the write does not cover are
//! filled with what the guest saw there before: the backing file's data
//! or zeros. Zero writes are in [`crate::zero`], compressed ones in
//! [`crate::compressed`]; cluster allocation and refcounts in
//! [`crate::alloc`].
//!
//! Memory: the L1 table (bounded at open), the refcount table (bounded at
//! open), and small caches of L2 tables and refcount blocks; a chunk of
//! guest data is written as it comes.

use crate::alloc::{Fail, Refcounts};
use crate::cache::TableCache;
use crate::header::{
    Header, AUTOCLEAR_BITMAPS, AUTOCLEAR_DATA_FILE_RAW, COMPAT_LAZY_REFCOUNTS, COMPRESSION_ZSTD,
    INCOMPAT_CORRUPT, INCOMPAT_DIRTY,
};
use crate::layout::Geometry;
use crate::read::c_hex;
use crate::tables::{
    L2Format, SubclusterType, L1E_OFFSET_MASK, L2E_OFFSET_MASK, QCOW_OFLAG_COMPRESSED,
    QCOW_OFLAG_COPIED, QCOW_OFLAG_ZERO, SUBCLUSTERS_PER_CLUSTER,
};
use instar_core::bytes::{be64, put_be64, SECTOR_SIZE};
use instar_core::codec::Compressor;
use instar_core::file::REQUEST_MAX_BYTES;
use instar_core::write::{Compression, WriteLimits};
use instar_core::{
    Diagnostic, Error, GuestRead, ImageFile, ImageWriter, OpenFlags, TargetFile, WriterRequest,
};
use std::io;

/// How many L2 tables the writer keeps in memory: the ones being filled
/// (guest-order writes fill one table at a time) and a few more.
pub(crate) const L2_CACHE_ENTRIES: usize = 8;

/// The largest request qemu's qcow2 driver hands on in one piece
/// (`qcow2_co_pwritev_part` cuts at `INT_MAX`).
const INT_MAX: u64 = i32::MAX as u64;

/// qemu's cluster types (`QCow2ClusterType`), from an L2 entry alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClusterType {
    Unallocated,
    ZeroPlain,
    ZeroAlloc,
    Normal,
    Compressed,
}

/// One new run of clusters waiting to be entered into its L2 table
/// (qemu's `QCowL2Meta`): guest and host start, length, and the parts
/// of it copied from the old contents (offsets from the first cluster).
#[derive(Debug, Clone, Copy)]
pub(crate) struct L2Meta {
    pub guest: u64,
    pub host: u64,
    pub clusters: u64,
    pub keep_old: bool,
    pub cow_start: (u64, u64),
    pub cow_end: (u64, u64),
}

/// A qcow2 image opened for writing.
pub struct Qcow2Writer {
    pub(crate) file: TargetFile,
    /// The external data file, when the image has one.
    pub(crate) data: Option<TargetFile>,
    pub(crate) data_raw: bool,
    pub(crate) g: Geometry,
    pub(crate) cs: u64,
    pub(crate) version: u32,
    /// The guest size in whole sectors (qemu's `total_sectors` in bytes).
    pub(crate) size: u64,
    pub(crate) refs: Refcounts,
    pub(crate) backing: Option<Box<dyn GuestRead>>,
    compression_type: u8,
    /// Whether the image has lazy refcounts: qemu marks it dirty before
    /// the first new cluster is linked, and clean again at close.
    lazy_refcounts: bool,
    /// Whether the dirty bit is set.
    marked_dirty: bool,
    /// Whether [`ImageWriter::close`] has run (and flushed).
    closed: bool,
    /// Whether the first block status query has looked for metadata
    /// preallocation yet.
    prealloc_checked: bool,
    /// What qemu printed on stderr while requests still succeeded (a
    /// corruption found while freeing), shown before the next failure.
    pending: Vec<Diagnostic>,
    /// qemu made the image unusable after marking it corrupt
    /// (`bs->drv = NULL`): every later request fails, and nothing more is
    /// written, not even the cached tables at close.
    pub(crate) broken: bool,
    /// The persistent bitmaps convert added, newest first (qemu's list
    /// of the node's bitmaps), stored at close ([`crate::bitmap_store`]).
    pub(crate) bitmaps: Vec<instar_core::BitmapCopy>,
    /// The bitmap directory the image held when it was opened (with the
    /// in-use flags set then), and where it is.
    pub(crate) bitmap_dir: Option<crate::bitmap_store::StoredDir>,
}

impl std::fmt::Debug for Qcow2Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Qcow2Writer").field("file", &self.file.name()).finish_non_exhaustive()
    }
}

/// Where the header keeps the incompatible feature bits.
const HEADER_INCOMPATIBLE_FEATURES: u64 = 72;

/// An errno as an error.
pub(crate) fn errno(code: i32) -> Error {
    Error::errno(io::Error::from_raw_os_error(code))
}

/// qemu's `-ENOTSUP`.
pub(crate) const ENOTSUP: i32 = 95;

/// A count of bytes within one request (at most `INT_MAX`) as a `usize`.
#[allow(clippy::cast_possible_truncation, reason = "callers bound it by INT_MAX or a cluster")]
pub(crate) fn small(n: u64) -> usize {
    n as usize
}

/// Opens `name` as qemu opens convert's qcow2 target (read-write): the
/// checks of a normal open, then what this writer cannot write refused.
pub fn open_writer(name: &str, req: WriterRequest) -> Result<Qcow2Writer, Error> {
    let image_file = ImageFile::open(name).map_err(|e| Error::open_errno(name, e))?;
    let image = crate::open::open(image_file, OpenFlags::READ.in_dialect(req.dialect))?;
    let h: &Header = &image.header;
    if h.incompatible_features & INCOMPAT_CORRUPT != 0 {
        return Err(Error::open("qcow2: Image is corrupt; cannot be opened read/write"));
    }
    if h.incompatible_features & INCOMPAT_DIRTY != 0 {
        return Err(Error::not_supported(
            "instar does not write into a qcow2 image marked dirty (qemu would repair its \
             refcounts first)",
        ));
    }
    if image.bitmap_warning.is_some() {
        return Err(Error::not_supported(
            "instar does not write into a qcow2 image whose bitmaps qemu would drop",
        ));
    }
    if h.autoclear_features & !(AUTOCLEAR_DATA_FILE_RAW | AUTOCLEAR_BITMAPS) != 0 {
        return Err(Error::not_supported(
            "instar does not write into a qcow2 image with autoclear features it must clear",
        ));
    }
    let data = match &image.data_file {
        Some(f) if image.has_data_file => {
            Some(TargetFile::open(f.name()).map_err(|e| Error::open_errno(f.name(), e))?)
        }
        _ => None,
    };
    let g = Geometry {
        cluster_bits: h.cluster_bits,
        refcount_order: h.refcount_order,
        extended_l2: h.has_subclusters(),
    };
    let cs = g.cluster_size();
    let file = TargetFile::open(name).map_err(|e| Error::open_errno(name, e))?;
    let l2 = TableCache::new(small(cs), L2_CACHE_ENTRIES);
    let mut refs = Refcounts::new(g, image.reftable.clone(), h.refcount_table_offset, l2);
    // convert opens its target with BDRV_O_UNMAP whenever it may write
    // zeros (`-S` other than 0): freed clusters are discarded.
    refs.discard = true;
    refs.l1 = image.l1_table.clone();
    refs.l1_offset = h.l1_table_offset;
    if let Some(t) = &image.snapshots {
        refs.fixed.snapshot_table = (t.offset, t.size);
        refs.fixed.inactive_l1 =
            t.snapshots.iter().map(|s| (s.l1_offset, u64::from(s.l1_size))).collect();
    }
    let own_bitmaps = match &image.bitmaps_ext {
        Some(ext) => Some(crate::bitmap_store::OwnBitmaps {
            dir: crate::bitmap_store::StoredDir {
                entries: image.bitmaps.clone(),
                offset: ext.bitmap_directory_offset,
                size: ext.bitmap_directory_size,
            },
            loaded: instar_core::Image::bitmap_copies(&image)?,
        }),
        None => None,
    };
    let mut writer = Qcow2Writer {
        file,
        data,
        data_raw: h.autoclear_features & AUTOCLEAR_DATA_FILE_RAW != 0,
        g,
        cs,
        version: h.version,
        size: image.total_bytes(),
        refs,
        backing: req.backing,
        compression_type: h.compression_type,
        broken: false,
        lazy_refcounts: h.version >= 3 && h.compatible_features & COMPAT_LAZY_REFCOUNTS != 0,
        marked_dirty: false,
        closed: false,
        prealloc_checked: false,
        pending: Vec::new(),
        bitmaps: Vec::new(),
        bitmap_dir: None,
    };
    if let Some(own) = own_bitmaps {
        writer.load_bitmaps(own)?;
    }
    Ok(writer)
}

impl Qcow2Writer {
    /// An allocation failure as the error convert reports: its `strerror`,
    /// after qemu's corruption message when the image was found corrupt.
    pub(crate) fn fail(&mut self, e: Fail) -> Error {
        match e {
            Fail::Corrupt(message) => self.corrupt(&message),
            e => Error::errno(e.into_io()),
        }
    }

    /// Sets or clears incompatible feature bits in the header (qemu's
    /// `qcow2_mark_dirty`, `qcow2_mark_corrupt`, `qcow2_mark_clean`: the
    /// rest of the header qemu rewrites the same as it was).
    fn set_feature_bits(&self, set: u64, clear: u64) -> io::Result<()> {
        let mut field = [0u8; 8];
        self.file.read_at(HEADER_INCOMPATIBLE_FEATURES, &mut field)?;
        let bits = (be64(&field, 0) | set) & !clear;
        put_be64(&mut field, 0, bits);
        self.file.write_at(HEADER_INCOMPATIBLE_FEATURES, &field)
    }

    /// qemu's `qcow2_signal_corruption` for a fatal problem found while
    /// writing: the message on stderr, the corrupt bit set in the header,
    /// the image unusable from then on; the request fails with `EIO`.
    pub(crate) fn corrupt(&mut self, message: &str) -> Error {
        if !self.broken {
            self.pending.push(Diagnostic::Plain(format!(
                "qcow2: Marking image as corrupt: {message}; further corruption events will be \
                 suppressed\n"
            )));
            let mut field = [0u8; 8];
            let marked =
                self.file.read_at(HEADER_INCOMPATIBLE_FEATURES, &mut field).and_then(|()| {
                    let bits = be64(&field, 0) | INCOMPAT_CORRUPT;
                    put_be64(&mut field, 0, bits);
                    self.file.write_at(HEADER_INCOMPATIBLE_FEATURES, &field)
                });
            // qemu goes on if the header cannot be written.
            let _ = marked;
            self.broken = true;
        }
        errno(5)
    }

    /// Reports the frees that failed since the last look, as qemu's
    /// `qcow2_free_clusters` does (a corruption first, if that was why).
    pub(crate) fn report_failed_frees(&mut self) {
        for e in std::mem::take(&mut self.refs.signaled) {
            if let Fail::Corrupt(message) = e {
                self.corrupt(&message);
            }
        }
        for e in std::mem::take(&mut self.refs.failed_frees) {
            let text = match e {
                Fail::Corrupt(message) => {
                    self.corrupt(&message);
                    instar_core::error::strerror(&io::Error::from_raw_os_error(5))
                }
                e => instar_core::error::strerror(&e.into_io()),
            };
            self.pending.push(Diagnostic::Plain(format!("qcow2_free_clusters failed: {text}\n")));
        }
    }

    /// The answer to a request: a failure comes after what qemu printed
    /// on the way.
    fn answer(&mut self, result: Result<(), Error>) -> Result<(), Error> {
        self.report_failed_frees();
        match result {
            Ok(()) => Ok(()),
            Err(e) => Err(e.after(std::mem::take(&mut self.pending))),
        }
    }

    /// What qemu's first block status query on the image does before
    /// anything else (`qcow2_detect_metadata_preallocation`): it reads the
    /// refcounts of the file's clusters, which is where a damaged refcount
    /// structure is first found. Its answer only changes what the block
    /// status says about data clusters whose host clusters are holes,
    /// which no decision of the writer depends on; the scan is kept for
    /// its side effect. (qemu stops counting at 10/9 of the clusters the
    /// file system has allocated; instar reads them all.)
    pub(crate) fn detect_prealloc(&mut self) {
        if self.prealloc_checked {
            return;
        }
        self.prealloc_checked = true;
        let Ok(len) = self.file.len() else { return };
        for i in 0..self.g.size_to_clusters(len) {
            match self.refs.get(&self.file, i) {
                Ok(_) => {}
                Err(Fail::Corrupt(m)) => {
                    self.corrupt(&m);
                    return;
                }
                Err(_) => return,
            }
        }
    }

    /// Fails every request once the image is unusable (`-ENOMEDIUM`).
    pub(crate) fn usable(&self) -> Result<(), Error> {
        if self.broken {
            Err(errno(instar_core::write::UNUSABLE_ERRNO))
        } else {
            Ok(())
        }
    }

    /// The L2 entry layout.
    pub(crate) fn format(&self) -> L2Format {
        L2Format { extended: self.g.extended_l2, data_file: self.data.is_some() }
    }

    /// The file guest data goes to: the data file, or the image.
    pub(crate) fn data_target(&self) -> &TargetFile {
        self.data.as_ref().unwrap_or(&self.file)
    }

    /// log2 of the subcluster size.
    pub(crate) fn sc_bits(&self) -> u32 {
        self.g.subcluster_size().trailing_zeros()
    }

    /// qemu's `qcow2_get_cluster_type`.
    pub(crate) fn cluster_type(&self, entry: u64) -> ClusterType {
        if entry & QCOW_OFLAG_COMPRESSED != 0 {
            ClusterType::Compressed
        } else if entry & QCOW_OFLAG_ZERO != 0 && !self.g.extended_l2 {
            if entry & L2E_OFFSET_MASK != 0 {
                ClusterType::ZeroAlloc
            } else {
                ClusterType::ZeroPlain
            }
        } else if entry & L2E_OFFSET_MASK == 0 {
            if self.data.is_some() && entry & QCOW_OFLAG_COPIED != 0 {
                ClusterType::Normal
            } else {
                ClusterType::Unallocated
            }
        } else {
            ClusterType::Normal
        }
    }

    /// qemu's `cluster_needs_new_alloc`.
    fn needs_new_alloc(&self, entry: u64) -> bool {
        match self.cluster_type(entry) {
            ClusterType::Normal | ClusterType::ZeroAlloc => entry & QCOW_OFLAG_COPIED == 0,
            _ => true,
        }
    }

    /// The L2 entry and bitmap (0 without extended entries) at `index` of
    /// the table at `table`.
    pub(crate) fn entry(&mut self, table: u64, index: u64) -> Result<(u64, u64), Error> {
        let esize = self.g.l2_entry_size();
        let data = self.refs.l2.get(&self.file, table).map_err(Error::errno)?;
        let at = small(index * esize);
        let bitmap = if esize == 16 { be64(data, at + 8) } else { 0 };
        Ok((be64(data, at), bitmap))
    }

    /// Sets the L2 entry (and bitmap) at `index` of the table at `table`.
    pub(crate) fn set_entry(
        &mut self,
        table: u64,
        index: u64,
        entry: u64,
        bitmap: Option<u64>,
    ) -> Result<(), Error> {
        let esize = self.g.l2_entry_size();
        let data = self.refs.l2.get(&self.file, table).map_err(Error::errno)?;
        let at = small(index * esize);
        put_be64(data, at, entry);
        if let (Some(b), 16) = (bitmap, esize) {
            put_be64(data, at + 8, b);
        }
        self.refs.l2.mark_dirty(table);
        Ok(())
    }

    /// The L2 table covering `guest` without allocating one: its offset
    /// (0 if none) and the entry index.
    pub(crate) fn find_table(&self, guest: u64) -> (u64, u64) {
        let l1_index = guest >> (self.g.l2_bits() + self.g.cluster_bits);
        let l2 = usize::try_from(l1_index)
            .ok()
            .and_then(|i| self.refs.l1.get(i))
            .map_or(0, |e| e & L1E_OFFSET_MASK);
        (l2, (guest >> self.g.cluster_bits) & (self.g.l2_entries() - 1))
    }

    /// The L2 table covering `guest`, allocated (or copied, if shared
    /// with a snapshot) first if needed; its offset and the entry index
    /// (qemu's `get_cluster_table`).
    pub(crate) fn cluster_table(&mut self, guest: u64) -> Result<(u64, u64), Error> {
        let l1_index = guest >> (self.g.l2_bits() + self.g.cluster_bits);
        // Writes stay within the disk, whose L1 table the open checked is
        // large enough; qemu would grow the table here.
        let Some(slot) = usize::try_from(l1_index).ok().filter(|&i| i < self.refs.l1.len()) else {
            return Err(errno(27));
        };
        let old = self.refs.l1[slot];
        let old_offset = old & L1E_OFFSET_MASK;
        if old_offset & (self.cs - 1) != 0 {
            return Err(self.corrupt(&format!(
                "L2 table offset {} unaligned (L1 index: {})",
                c_hex(old_offset),
                c_hex(l1_index)
            )));
        }
        if old & QCOW_OFLAG_COPIED == 0 {
            self.l2_allocate(slot, old_offset)?;
            if old_offset != 0 {
                self.refs.free(&self.file, old_offset, self.cs, false);
                self.report_failed_frees();
            }
        }
        let table = self.refs.l1[slot] & L1E_OFFSET_MASK;
        Ok((table, (guest >> self.g.cluster_bits) & (self.g.l2_entries() - 1)))
    }

    /// A new L2 table for L1 entry `slot`, a copy of the old one at
    /// `old_offset` if any (qemu's `l2_allocate`).
    fn l2_allocate(&mut self, slot: usize, old_offset: u64) -> Result<(), Error> {
        let new = self.refs.alloc(&self.file, self.cs).map_err(|e| self.fail(e))?;
        if new == 0 {
            return Err(self.corrupt("Preventing invalid allocation of L2 table at offset 0"));
        }
        // The L2 table will point at counted clusters: counts first.
        self.refs.flush_blocks(&self.file).map_err(|e| self.fail(e))?;
        let old = if old_offset != 0 {
            Some(self.refs.l2.get(&self.file, old_offset).map_err(Error::errno)?.clone())
        } else {
            None
        };
        let table = self.refs.l2.get_empty(&self.file, new).map_err(Error::errno)?;
        if let Some(old) = old {
            table.copy_from_slice(&old);
        }
        // qemu writes the new table at once, and with it every table
        // still changed in its cache: a table is on disk once the writes
        // have moved on to the next one's range.
        self.refs.flush_l2(&self.file).map_err(|e| self.fail(e))?;
        self.refs.l1[slot] = new | QCOW_OFLAG_COPIED;
        let at = self.refs.l1_offset + slot as u64 * 8;
        if let Some(name) = self.refs.metadata().overlap(crate::overlap::OL_ACTIVE_L1, at, 8) {
            return Err(self.corrupt(&crate::alloc::overlap_message(name)));
        }
        let mut entry = [0u8; 8];
        put_be64(&mut entry, 0, self.refs.l1[slot]);
        self.file.write_at(self.refs.l1_offset + slot as u64 * 8, &entry).map_err(Error::errno)?;
        Ok(())
    }

    /// Clusters from `guest` one step may cover: to the end of the
    /// request, the L2 table, and qemu's request limit.
    fn step_clusters(&self, guest: u64, bytes: u64) -> u64 {
        let in_cluster = guest & (self.cs - 1);
        let index = (guest >> self.g.cluster_bits) & (self.g.l2_entries() - 1);
        self.g
            .size_to_clusters(in_cluster + bytes)
            .min(self.g.l2_entries() - index)
            .min(REQUEST_MAX_BYTES >> self.g.cluster_bits)
    }

    /// qemu's `count_single_write_clusters`.
    fn count_single_write(
        &mut self,
        table: u64,
        index: u64,
        n: u64,
        new_alloc: bool,
    ) -> Result<u64, Error> {
        let (first, _) = self.entry(table, index)?;
        let mut expected = first & L2E_OFFSET_MASK;
        let mut i = 0;
        while i < n {
            let (e, _) = self.entry(table, index + i)?;
            if self.needs_new_alloc(e) != new_alloc {
                break;
            }
            if !new_alloc {
                if expected != e & L2E_OFFSET_MASK {
                    break;
                }
                expected += self.cs;
            }
            i += 1;
        }
        Ok(i)
    }

    /// `handle_copied`: the run of clusters at `guest` that can be written
    /// in place. `Some(meta or none)` when it made progress.
    fn handle_copied(
        &mut self,
        guest: u64,
        host: &mut Option<u64>,
        bytes: &mut u64,
        metas: &mut Vec<L2Meta>,
    ) -> Result<bool, Error> {
        let n = self.step_clusters(guest, *bytes);
        let (table, index) = self.cluster_table(guest)?;
        let (entry, _) = self.entry(table, index)?;
        let cluster_offset = entry & L2E_OFFSET_MASK;
        if self.needs_new_alloc(entry) {
            return Ok(false);
        }
        if cluster_offset & (self.cs - 1) != 0 {
            let what = if entry & QCOW_OFLAG_ZERO != 0 { "Preallocated zero" } else { "Data" };
            return Err(self.corrupt(&format!(
                "{what} cluster offset {} unaligned (guest offset: {})",
                c_hex(cluster_offset),
                c_hex(guest)
            )));
        }
        let in_cluster = guest & (self.cs - 1);
        if let Some(h) = *host {
            if cluster_offset != h - in_cluster {
                *bytes = 0;
                return Ok(false);
            }
        }
        let keep = self.count_single_write(table, index, n, false)?;
        *bytes = (*bytes).min(keep * self.cs - in_cluster);
        if let Some(m) = self.calculate_l2_meta(cluster_offset, guest, *bytes, table, true)? {
            metas.push(m);
        }
        *host = Some(cluster_offset + in_cluster);
        Ok(true)
    }

    /// `handle_alloc`: new clusters for the run at `guest`, contiguous
    /// with `host` when a run was already found.
    fn handle_alloc(
        &mut self,
        guest: u64,
        host: &mut Option<u64>,
        bytes: &mut u64,
        metas: &mut Vec<L2Meta>,
    ) -> Result<bool, Error> {
        let n = self.step_clusters(guest, *bytes);
        let (table, index) = self.cluster_table(guest)?;
        let mut n = self.count_single_write(table, index, n, true)?;
        let cs = self.cs;
        let in_cluster = guest & (cs - 1);
        let alloc = if self.data.is_some() {
            guest & !(cs - 1)
        } else {
            match *host {
                None => self.refs.alloc(&self.file, n * cs).map_err(|e| self.fail(e))?,
                Some(h) => {
                    let at = h & !(cs - 1);
                    n = self.refs.alloc_at(&self.file, at, n).map_err(|e| self.fail(e))?;
                    at
                }
            }
        };
        if n == 0 {
            *bytes = 0;
            return Ok(false);
        }
        let requested = *bytes + in_cluster;
        let nb_bytes = requested.min(n * cs);
        *host = Some(alloc + in_cluster);
        *bytes = (*bytes).min(nb_bytes - in_cluster);
        if let Some(m) = self.calculate_l2_meta(alloc, guest, *bytes, table, false)? {
            metas.push(m);
        }
        Ok(true)
    }

    /// qemu's `calculate_l2_meta`: the clusters of the write and the parts
    /// of them to copy; `None` when clusters kept in place need neither a
    /// copy nor a new entry.
    fn calculate_l2_meta(
        &mut self,
        host: u64,
        guest: u64,
        bytes: u64,
        table: u64,
        keep_old: bool,
    ) -> Result<Option<L2Meta>, Error> {
        let cs = self.cs;
        let fmt = self.format();
        let sc_bits = self.sc_bits();
        let sc_size = 1u64 << sc_bits;
        let index = (guest >> self.g.cluster_bits) & (self.g.l2_entries() - 1);
        let cow_start_to = guest & (cs - 1);
        let cow_end_from = cow_start_to + bytes;
        let clusters = self.g.size_to_clusters(cow_end_from);
        let sc_of = |off: u64| -> u32 {
            #[allow(clippy::cast_possible_truncation, reason = "masked to below 32")]
            let sc = ((off & (cs - 1)) >> sc_bits) as u32;
            sc
        };
        let mut skip_cow = keep_old;
        for i in 0..clusters {
            let (entry, bitmap) = self.entry(table, index + i)?;
            let kind = if skip_cow {
                let from = cow_start_to.max(i * cs);
                let to = cow_end_from.min((i + 1) * cs);
                let first = sc_of(from);
                let last = sc_of(to - 1);
                match fmt.subcluster_run(entry, bitmap, first) {
                    Some((kind, count)) => {
                        if kind != SubclusterType::Normal || first + count <= last {
                            skip_cow = false;
                        }
                        kind
                    }
                    None => SubclusterType::Invalid,
                }
            } else {
                fmt.subcluster_type(entry, bitmap, 0)
            };
            if kind == SubclusterType::Invalid {
                let (l2, _) = self.find_table(guest);
                let at = index + i;
                return Err(self.corrupt(&format!(
                    "Invalid cluster entry found (L2 offset: {}, L2 index: {})",
                    c_hex(l2),
                    c_hex(at)
                )));
            }
        }
        if skip_cow {
            return Ok(None);
        }
        let (entry, bitmap) = self.entry(table, index)?;
        let sc = sc_of(guest);
        let alloc_bitmap = bitmap & 0xffff_ffff;
        let cow_start_from = match (keep_old, fmt.subcluster_type(entry, bitmap, sc)) {
            (false, SubclusterType::Compressed) => 0,
            (
                false,
                SubclusterType::Normal
                | SubclusterType::ZeroAlloc
                | SubclusterType::UnallocatedAlloc,
            ) => {
                if self.g.extended_l2 {
                    u64::from(sc.min(alloc_bitmap.trailing_zeros().min(32))) << sc_bits
                } else {
                    0
                }
            }
            (false, SubclusterType::ZeroPlain | SubclusterType::UnallocatedPlain) => {
                u64::from(sc) << sc_bits
            }
            (true, SubclusterType::Normal) => cow_start_to,
            (true, SubclusterType::ZeroAlloc | SubclusterType::UnallocatedAlloc) => {
                u64::from(sc) << sc_bits
            }
            _ => return Err(errno(5)),
        };
        let last_index = index + clusters - 1;
        let (entry, bitmap) = self.entry(table, last_index)?;
        let sc = sc_of(guest + bytes - 1);
        let alloc_bitmap = bitmap & 0xffff_ffff;
        let cow_end_to = match (keep_old, fmt.subcluster_type(entry, bitmap, sc)) {
            (false, SubclusterType::Compressed) => cow_end_from.div_ceil(cs) * cs,
            (
                false,
                SubclusterType::Normal
                | SubclusterType::ZeroAlloc
                | SubclusterType::UnallocatedAlloc,
            ) => {
                let mut to = cow_end_from.div_ceil(cs) * cs;
                if self.g.extended_l2 {
                    #[allow(clippy::cast_possible_truncation, reason = "the low 32 bits")]
                    let lz = (alloc_bitmap as u32).leading_zeros();
                    to -=
                        (SUBCLUSTERS_PER_CLUSTER - u64::from(sc) - 1).min(u64::from(lz)) << sc_bits;
                }
                to
            }
            (false, SubclusterType::ZeroPlain | SubclusterType::UnallocatedPlain) => {
                cow_end_from.div_ceil(sc_size) * sc_size
            }
            (true, SubclusterType::Normal) => cow_end_from,
            (true, SubclusterType::ZeroAlloc | SubclusterType::UnallocatedAlloc) => {
                cow_end_from.div_ceil(sc_size) * sc_size
            }
            _ => return Err(errno(5)),
        };
        Ok(Some(L2Meta {
            guest: guest & !(cs - 1),
            host,
            clusters,
            keep_old,
            cow_start: (cow_start_from, cow_start_to - cow_start_from),
            cow_end: (cow_end_from, cow_end_to - cow_end_from),
        }))
    }

    /// qemu's `qcow2_alloc_host_offset`: where the first part of the
    /// write at `offset` goes, how long that part is, and the new
    /// mappings it needs.
    fn alloc_host_offset(
        &mut self,
        offset: u64,
        bytes: u64,
        metas: &mut Vec<L2Meta>,
    ) -> Result<(u64, u64), Error> {
        let mut start = offset;
        let mut remaining = bytes;
        let mut cluster_offset: Option<u64> = None;
        let mut host: Option<u64> = None;
        let mut cur = 0u64;
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
            if self.handle_copied(start, &mut cluster_offset, &mut cur, metas)? {
                continue;
            }
            if cur == 0 {
                break;
            }
            if !self.handle_alloc(start, &mut cluster_offset, &mut cur, metas)? {
                break;
            }
        }
        let host = host.ok_or_else(|| errno(5))?;
        Ok((host, bytes - remaining))
    }

    /// Reads the guest data at `guest` as the image maps it now (the
    /// source of a copy-on-write): host data, zeros, or the backing disk.
    pub(crate) fn read_own(&mut self, guest: u64, buf: &mut [u8]) -> Result<(), Error> {
        let fmt = self.format();
        let sc_size = self.g.subcluster_size();
        let mut done = 0usize;
        while done < buf.len() {
            let at = guest + done as u64;
            let run = small((sc_size - (at & (sc_size - 1))).min((buf.len() - done) as u64));
            let part = &mut buf[done..done + run];
            let (table, index) = self.find_table(at);
            let (entry, bitmap) = if table == 0 { (0, 0) } else { self.entry(table, index)? };
            #[allow(clippy::cast_possible_truncation, reason = "masked to below 32")]
            let sc = (((at & (self.cs - 1)) >> self.sc_bits()) & 31) as u32;
            match fmt.subcluster_type(entry, bitmap, sc) {
                SubclusterType::Normal => {
                    let host = (entry & L2E_OFFSET_MASK) + (at & (self.cs - 1));
                    self.data_target().read_at(host, part).map_err(Error::errno)?;
                }
                SubclusterType::ZeroPlain | SubclusterType::ZeroAlloc => part.fill(0),
                SubclusterType::UnallocatedPlain | SubclusterType::UnallocatedAlloc => {
                    match &self.backing {
                        Some(b) => b.read_guest(at, part)?,
                        None => part.fill(0),
                    }
                }
                SubclusterType::Compressed => {
                    // The whole cluster, decompressed (its stream is at
                    // most two clusters long, as the entry's field allows).
                    let d =
                        crate::tables::CompressedDescriptor::from_entry(entry, self.g.cluster_bits);
                    let mut input = vec![0u8; small(d.len)];
                    self.file.read_at(d.offset, &mut input).map_err(Error::errno)?;
                    let mut cluster = vec![0u8; small(self.cs)];
                    crate::read::decompress(self.compression_type, &input, &mut cluster)
                        .map_err(|_| errno(5))?;
                    let from = small(at & (self.cs - 1));
                    part.copy_from_slice(&cluster[from..from + run]);
                }
                SubclusterType::Invalid => return Err(errno(5)),
            }
            done += run;
        }
        Ok(())
    }

    /// Enters a new run into its L2 table, freeing what it replaces
    /// (qemu's `qcow2_alloc_cluster_link_l2` after its copy-on-write).
    fn link_l2(&mut self, m: &L2Meta) -> Result<(), Error> {
        if self.lazy_refcounts && !self.marked_dirty {
            self.set_feature_bits(INCOMPAT_DIRTY, 0).map_err(Error::errno)?;
            self.marked_dirty = true;
        }
        if !self.marked_dirty {
            self.refs.set_dependency(&self.file, crate::alloc::Waiting::L2);
        }
        let (table, index) = self.cluster_table(m.guest)?;
        let cs = self.cs;
        let mut old = Vec::new();
        for i in 0..m.clusters {
            let (entry, bitmap) = self.entry(table, index + i)?;
            if entry != 0 {
                old.push(entry);
            }
            let new = (m.host + i * cs) | QCOW_OFLAG_COPIED;
            let new_bitmap = if self.g.extended_l2 {
                let from = m.cow_start.0.max(i * cs);
                let to = (m.cow_end.0 + m.cow_end.1).min((i + 1) * cs);
                let first = (from - i * cs) >> self.sc_bits();
                let last = (to - 1 - i * cs) >> self.sc_bits();
                let range = ((1u64 << (last + 1)) - 1) & !((1u64 << first) - 1);
                Some((bitmap | range) & !(range << 32))
            } else {
                None
            };
            self.set_entry(table, index + i, new, new_bitmap)?;
        }
        if !m.keep_old {
            for entry in old {
                self.free_any_cluster(entry, false);
            }
        }
        Ok(())
    }

    /// Drops the reference an L2 entry held (qemu's
    /// `qcow2_free_any_cluster`); `request`: a discard request, passed on
    /// to the file.
    pub(crate) fn free_any_cluster(&mut self, entry: u64, request: bool) {
        let kind = self.cluster_type(entry);
        if let Some(data) = &self.data {
            if request && matches!(kind, ClusterType::Normal | ClusterType::ZeroAlloc) {
                let _ = data.zero_range(entry & L2E_OFFSET_MASK, self.cs);
            }
            return;
        }
        match kind {
            ClusterType::Compressed => {
                let d = crate::tables::CompressedDescriptor::from_entry(entry, self.g.cluster_bits);
                self.refs.free(&self.file, d.offset, d.len, request);
            }
            ClusterType::Normal | ClusterType::ZeroAlloc => {
                let off = entry & L2E_OFFSET_MASK;
                if off & (self.cs - 1) == 0 {
                    self.refs.free(&self.file, off, self.cs, request);
                }
            }
            ClusterType::ZeroPlain | ClusterType::Unallocated => {}
        }
        self.report_failed_frees();
    }

    /// qemu's `qcow2_co_pwritev_part`: the write cut into the pieces its
    /// allocation allows, each written with its copy-on-write parts and
    /// then entered into the L2 tables.
    ///
    /// qemu hands each piece to a task of its own once it is allocated and
    /// goes on allocating the next; the tasks link their clusters (and
    /// free what they replace) when their data is written, which is after
    /// the whole request is allocated. So the allocation of every piece
    /// comes first here too: a cluster freed by the first piece is not
    /// reused by the second.
    pub(crate) fn write_data(&mut self, offset: u64, data: &[u8]) -> Result<(), Error> {
        let mut pieces = Vec::new();
        let mut at = offset;
        let mut left = data.len() as u64;
        let mut stopped = None;
        while left > 0 {
            let mut metas = Vec::new();
            let placed = self
                .alloc_host_offset(at, left.min(INT_MAX), &mut metas)
                .and_then(|(host, cur)| self.check_data_write(host, cur).map(|()| (host, cur)));
            let (host, cur) = match placed {
                Ok(placed) => placed,
                Err(e) => {
                    // qemu gives back what it allocated for this piece
                    // (`qcow2_alloc_cluster_abort`: also the L2 ranges
                    // placed before an allocation that failed) and lets
                    // the pieces already under way finish.
                    self.abort_allocations(&metas);
                    stopped = Some(e);
                    break;
                }
            };
            // `handle_alloc_space` asks whether the copied parts read as
            // zeros (`is_zero_cow`): then the whole new range is zeroed
            // in the file instead of the zeros being copied. A part past
            // the end of the disk never counts as zeros there (its block
            // status ends short): qemu copies it from the backing file.
            let mut zero_cow = Vec::with_capacity(metas.len());
            for m in &metas {
                let has_cow = m.cow_start.1 > 0 || m.cow_end.1 > 0;
                let inside = [m.cow_start, m.cow_end]
                    .iter()
                    .all(|&(from, len)| len == 0 || m.guest + from + len <= self.size);
                let zero = has_cow
                    && inside
                    && self.reads_zero(m.guest + m.cow_start.0, m.cow_start.1)?
                    && self.reads_zero(m.guest + m.cow_end.0, m.cow_end.1)?;
                zero_cow.push(zero);
            }
            pieces.push((at, host, cur, metas, zero_cow));
            at += cur;
            left -= cur;
        }
        for (at, host, cur, metas, zero_cow) in pieces {
            // Every copy reads the old mapping, before anything changes.
            let mut copies = Vec::new();
            for (m, zero) in metas.iter().zip(zero_cow) {
                if zero {
                    let start = m.host + m.cow_start.0;
                    let bytes = m.cow_end.0 + m.cow_end.1 - m.cow_start.0;
                    self.check_data_write(start, bytes)?;
                    match self.data_target().zero_fill(start, bytes) {
                        Ok(true) => continue,
                        // Not supported here: the zeros are copied.
                        Ok(false) => {}
                        Err(e) => return Err(Error::errno(e)),
                    }
                }
                for (from, len) in [m.cow_start, m.cow_end] {
                    if len > 0 {
                        let mut buf = vec![0u8; small(len)];
                        self.read_own(m.guest + from, &mut buf)?;
                        copies.push((m.host + from, buf));
                    }
                }
            }
            let start = small(at - offset);
            let part = &data[start..start + small(cur)];
            self.data_target().write_at(host, part).map_err(Error::errno)?;
            for (to, buf) in &copies {
                self.check_data_write(*to, buf.len() as u64)?;
                self.data_target().write_at(*to, buf).map_err(Error::errno)?;
            }
            for m in metas.iter().rev() {
                self.link_l2(m)?;
            }
        }
        stopped.map_or(Ok(()), Err)
    }

    /// `qcow2_inactivate`'s cache flushes: each cache that cannot be
    /// written is reported with its `strerror` (`Failed to flush the L2
    /// table cache: File too large`), the image marked clean only when
    /// both were. A table refused as overlapping metadata fails as the
    /// writer's other flushes do (the block layer's flush before the
    /// close has met it first).
    fn flush_reporting(&mut self) -> Result<Vec<Diagnostic>, Error> {
        let (l2, blocks) = self.refs.flush_caches(&self.file);
        let mut lines = Vec::new();
        for (cache, result) in [("L2 table", l2), ("refcount block", blocks)] {
            match result {
                Ok(()) => {}
                Err(Fail::Io(e)) => lines.push(Diagnostic::Reported(format!(
                    "Failed to flush the {cache} cache: {}",
                    instar_core::error::strerror(&e)
                ))),
                Err(e) => return Err(self.fail(e)),
            }
        }
        if lines.is_empty() {
            self.mark_clean()?;
        }
        Ok(lines)
    }

    /// The close after a failed copy, or of a writer dropped unclosed
    /// (`qcow2_inactivate` as qemu's close runs it then): the bitmaps,
    /// then the caches ([`Qcow2Writer::flush_reporting`]), nothing once
    /// the image was made unusable; the lines of the caches it could not
    /// write. Closes the writer for good.
    fn close_quietly(&mut self) -> Vec<Diagnostic> {
        let mut lines = Vec::new();
        let _ = self.inactivate(&mut lines);
        lines
    }

    /// qemu's close of the image (`qcow2_inactivate`), once: what requests
    /// printed, then the bitmaps and the caches, with a line for each
    /// cache it could not write, all into `lines`; nothing more once the
    /// image was made unusable. Fails where storing the bitmaps or a
    /// refused table does.
    fn inactivate(&mut self, lines: &mut Vec<Diagnostic>) -> Result<(), Error> {
        lines.extend(self.take_printed());
        if self.broken || self.closed {
            return Ok(());
        }
        self.closed = true;
        self.store_bitmaps()?;
        lines.extend(self.flush_reporting()?);
        Ok(())
    }

    /// qemu's `qcow2_alloc_cluster_abort` for the ranges of a write that
    /// did not happen: their new clusters are freed (not discarded), in
    /// the image file only.
    fn abort_allocations(&mut self, metas: &[L2Meta]) {
        for m in metas.iter().filter(|m| !m.keep_old) {
            let bytes = m.clusters * self.cs;
            if self.data.is_none() {
                self.refs.free(&self.file, m.host, bytes, false);
            }
        }
        self.report_failed_frees();
    }

    /// qemu's `qcow2_mark_clean` at close, after the tables are written.
    fn mark_clean(&mut self) -> Result<(), Error> {
        if self.marked_dirty {
            self.set_feature_bits(0, INCOMPAT_DIRTY).map_err(Error::errno)?;
            self.marked_dirty = false;
        }
        Ok(())
    }

    /// Writes the tables held in memory: L2 tables, then refcount blocks
    /// (qemu's cache flush order).
    pub(crate) fn write_tables(&mut self) -> Result<(), Error> {
        self.refs.flush(&self.file).map_err(|e| self.fail(e))
    }

    /// qemu's `qcow2_pre_write_overlap_check` for a write of guest data
    /// (or a copy) at `host`: refused, and the image marked corrupt, if
    /// it would land on metadata. Data in an external data file is not
    /// checked.
    pub(crate) fn check_data_write(&mut self, host: u64, len: u64) -> Result<(), Error> {
        if self.data.is_some() {
            return Ok(());
        }
        match self.refs.metadata().overlap(0, host, len) {
            Some(name) => Err(self.corrupt(&crate::alloc::overlap_message(name))),
            None => Ok(()),
        }
    }
}

impl ImageWriter for Qcow2Writer {
    fn len(&self) -> u64 {
        self.size
    }

    /// qemu's `qcow2_has_zero_init`: a new image reads as zeros; a
    /// preallocated one (L1[0] set) as its data file does, and a regular
    /// file does (encrypted images are not opened for writing).
    fn has_zero_init(&self) -> bool {
        true
    }

    /// Byte-granular requests; discards in whole clusters.
    fn limits(&self) -> WriteLimits {
        WriteLimits { request_alignment: 1, pdiscard_alignment: self.cs }
    }

    fn cluster_size(&self) -> Option<u64> {
        Some(self.cs)
    }

    /// Whole clusters compressed with the header's codec into at most a
    /// cluster less one byte (`qcow2_co_pwritev_compressed_task`).
    fn compression(&self) -> Option<Compression> {
        let codec = if self.compression_type == COMPRESSION_ZSTD {
            Compressor::Qcow2Zstd
        } else {
            Compressor::Qcow2Deflate
        };
        Some(Compression { codec, capacity: small(self.cs - 1), pad_to: small(self.cs) })
    }

    fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), Error> {
        self.mark_bitmaps_dirty(offset, data.len() as u64);
        let r = self.usable().and_then(|()| self.write_data(offset, data));
        self.answer(r)
    }

    fn take_printed(&mut self) -> Vec<Diagnostic> {
        self.report_failed_frees();
        std::mem::take(&mut self.pending)
    }

    fn write_zeroes(&mut self, offset: u64, bytes: u64) -> Result<(), Error> {
        self.mark_bitmaps_dirty(offset, bytes);
        let r = self.usable().and_then(|()| self.zero_request(offset, bytes));
        self.answer(r)
    }

    fn write_compressed(
        &mut self,
        offset: u64,
        data: &[u8],
        packed: Option<&[u8]>,
    ) -> Result<(), Error> {
        self.mark_bitmaps_dirty(offset, data.len() as u64);
        let r = self.usable().and_then(|()| self.compressed_cluster(offset, data, packed));
        self.answer(r)
    }

    fn end_compressed(&mut self) -> Result<(), Error> {
        let r = self.usable().and_then(|()| self.trim_to_sectors());
        self.answer(r)
    }

    /// The external data file, when the image has one.
    fn other_files(&self) -> Vec<String> {
        self.data.iter().map(|d| d.name().to_string()).collect()
    }

    /// A version 3 image can (the autoclear bits keep bitmaps honest).
    fn supports_bitmaps(&self) -> bool {
        self.version >= 3
    }

    fn add_bitmap(&mut self, bitmap: instar_core::BitmapCopy) -> Result<(), Error> {
        self.take_bitmap(bitmap)
    }

    /// qemu's `qcow2_co_flush_to_os` under `blk_flush`: the tables held in
    /// memory are written (they are written again, unchanged, at close),
    /// the L2 tables first and the refcount blocks only while refcounts
    /// are kept exact (`qcow2_write_caches`: an image marked dirty for lazy
    /// refcounts leaves them for its close). An image made unusable by a
    /// corruption has no driver left in qemu, and its block backend
    /// answers `ENOMEDIUM`.
    fn flush(&mut self) -> Result<(), Error> {
        self.usable()?;
        let mut result = self.refs.flush_l2(&self.file);
        if result.is_ok() && !self.marked_dirty {
            result = self.refs.flush_blocks(&self.file);
        }
        let result = result.map_err(|e| self.fail(e));
        self.answer(result)
    }

    /// The bitmaps first (qemu's `qcow2_inactivate` stores them before it
    /// flushes the caches), then the tables, then the clean mark.
    fn close(mut self: Box<Self>) -> Result<(), Error> {
        if self.broken {
            return Ok(());
        }
        self.closed = true;
        self.store_bitmaps()?;
        self.write_tables()?;
        self.mark_clean()
    }

    /// `qcow2_inactivate` after a failed copy: the bitmaps, then the
    /// caches ([`Qcow2Writer::flush_reporting`]). A table refused as
    /// overlapping metadata was already found by the block layer's flush
    /// before it ([`ImageWriter::flush`], which signals the corruption):
    /// qemu then has no driver left to close.
    fn close_after_failure(mut self: Box<Self>) -> Vec<Diagnostic> {
        self.close_quietly()
    }

    /// [`ImageWriter::close`] with the caches' write failures reported
    /// rather than failing the close, as qemu-img's close of its target
    /// after a whole copy prints them and leaves the exit code alone.
    fn close_reporting(mut self: Box<Self>) -> Result<Vec<Diagnostic>, Error> {
        let mut lines = Vec::new();
        self.inactivate(&mut lines)?;
        Ok(lines)
    }
}

/// A writer dropped without [`ImageWriter::close`] or
/// [`ImageWriter::close_after_failure`] (a command that stopped early)
/// still stores its bitmaps and writes the tables it holds: qemu-img
/// closes its target after a failed copy too, and qcow2's close stores
/// the bitmaps and flushes its caches (what a `-n` target keeps depends
/// on it). Nothing is written once the image was
/// made unusable.
impl Drop for Qcow2Writer {
    fn drop(&mut self) {
        self.close_quietly();
    }
}

/// The sector size as qemu rounds the file's length.
pub(crate) const SECTOR: u64 = SECTOR_SIZE;
