//! Reading guest data: where each range of the disk lives (qemu's
//! `qcow2_get_host_offset` and `qcow2_co_block_status`) and its bytes
//! (`qcow2_co_preadv_part`, compressed clusters included).
//!
//! L2 tables are read on demand into a small cache of whole tables, the
//! unit qemu's own cache holds by default (`l2-cache-entry-size` is the
//! cluster size); so, as in qemu, one answer never runs past the end of
//! one L2 table. When the L1 table points at L2 tables that lie one after
//! the other in the file (as qemu's preallocation lays them out), a miss
//! reads a run of them at once. Memory is bounded by the cache's size,
//! whatever the header claims.
//!
//! Corrupt metadata met on the way is reported as qemu reports it for an
//! image opened read-only: one `qcow2: Image is corrupt: ...` notice (the
//! later ones suppressed), and `EIO`.

use crate::open::Qcow2Image;
use crate::tables::{
    get_refcount, CompressedDescriptor, L2Format, SubclusterType, L1E_OFFSET_MASK, L2E_OFFSET_MASK,
    REFT_OFFSET_MASK,
};
use instar_core::bytes::be64;
use instar_core::codec::{self, CodecError};
use instar_core::file::eio;
use instar_core::{Diagnostic, Error, ImageFile, Mapping, Status};
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};

/// The most bytes the L2 cache holds (whole tables; at least
/// [`MIN_CACHED_TABLES`] of them whatever the cluster size).
const L2_CACHE_BYTES: u64 = 4 << 20;
/// The fewest L2 tables the cache holds.
const MIN_CACHED_TABLES: u64 = 4;
/// The most bytes of adjacent L2 tables one miss reads at once.
const L2_READAHEAD_BYTES: u64 = 1 << 20;

/// From this table size on, the tables read ahead are read one by one
/// rather than together and copied apart.
const SEPARATE_READ_MIN: u64 = 64 << 10;
/// qemu caps one block status or read step at `INT_MAX` bytes.
const MAX_STEP: u64 = i32::MAX as u64;

/// The mutable state reads keep beside an opened image: caches, and
/// whether a corruption was already reported.
#[derive(Debug, Default)]
pub struct ReadState {
    /// L2 tables by their offset in the image file.
    l2: RefCell<L2Cache>,
    /// The last compressed cluster decoded: its L2 entry and its data.
    compressed: RefCell<Option<(u64, Vec<u8>)>>,
    /// qemu's `signaled_corruption`: later corruption notices are
    /// suppressed.
    signaled: Cell<bool>,
    /// qemu's `metadata_preallocation`, once checked.
    metadata_preallocation: Cell<Option<bool>>,
    /// Notices printed by calls that did not fail, not yet taken.
    pub(crate) printed: RefCell<Vec<Diagnostic>>,
}

/// A bounded cache of whole L2 tables, first in, first out.
#[derive(Debug, Default)]
struct L2Cache {
    tables: HashMap<u64, Vec<u8>>,
    order: VecDeque<u64>,
}

impl L2Cache {
    fn insert(&mut self, offset: u64, table: Vec<u8>, capacity: usize) {
        if self.tables.insert(offset, table).is_none() {
            self.order.push_back(offset);
        }
        while self.order.len() > capacity {
            if let Some(old) = self.order.pop_front() {
                self.tables.remove(&old);
            }
        }
    }
}

/// qemu's `%#` PRIx64: `0x`-prefixed hex, but a bare `0` for zero.
pub(crate) fn c_hex(value: u64) -> String {
    if value == 0 {
        "0".to_string()
    } else {
        format!("{value:#x}")
    }
}

/// Where a range of the disk lives: qemu's `qcow2_get_host_offset`'s
/// answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostRange {
    /// How many bytes from the offset asked about share the answer.
    pub bytes: u64,
    /// The subcluster type of the range.
    pub kind: SubclusterType,
    /// The host offset of the first byte (for types with a host cluster),
    /// the L2 entry (compressed), or 0.
    pub host: u64,
}

impl Qcow2Image {
    fn l2_format(&self) -> L2Format {
        L2Format { extended: self.extended_l2(), data_file: self.has_data_file }
    }

    /// log2 of the entries per L2 table.
    fn l2_bits(&self) -> u32 {
        self.cluster_bits() - if self.extended_l2() { 4 } else { 3 }
    }

    /// log2 of the subcluster size.
    fn subcluster_bits(&self) -> u32 {
        self.cluster_bits() - if self.extended_l2() { 5 } else { 0 }
    }

    /// The error for corrupt metadata met while reading, with qemu's
    /// notice the first time (qemu's `qcow2_signal_corruption` on an image
    /// opened read-only).
    pub fn corruption(&self, message: &str) -> Error {
        let error = Error::errno(eio());
        if self.reader.signaled.replace(true) {
            return error;
        }
        error.after(vec![Diagnostic::Plain(format!(
            "qcow2: Image is corrupt: {message}; further non-fatal corruption events will be \
             suppressed\n"
        ))])
    }

    /// The file guest data lives in: the external data file, or the image.
    fn data_file(&self) -> Result<&ImageFile, Error> {
        match (&self.data_file, self.has_data_file) {
            (Some(file), _) => Ok(file),
            (None, false) => Ok(&self.file),
            // Opened without I/O: nothing may be read.
            (None, true) => Err(Error::errno(eio())),
        }
    }

    /// Runs `f` on the L2 table at `l2_offset` (cluster-aligned), the one
    /// L1 entry `l1_index` names, reading it (and the adjacent tables the
    /// next L1 entries name) on a miss.
    fn with_l2<R>(
        &self,
        l1_index: usize,
        l2_offset: u64,
        f: impl FnOnce(&[u8]) -> R,
    ) -> Result<R, Error> {
        let cluster = self.cluster_size();
        if let Some(table) = self.reader.l2.borrow().tables.get(&l2_offset) {
            return Ok(f(table));
        }
        let capacity = (L2_CACHE_BYTES / cluster).max(MIN_CACHED_TABLES);
        let most = (L2_READAHEAD_BYTES / cluster).clamp(1, capacity / 2);
        // The run of L1 entries after this one that point at the next
        // clusters of the file, none of them cached yet.
        let mut count = 1u64;
        {
            let cache = self.reader.l2.borrow();
            while count < most {
                let at = usize::try_from(count).ok().and_then(|c| l1_index.checked_add(c));
                let Some(&next) = at.and_then(|i| self.l1_table.get(i)) else { break };
                let expected = l2_offset + count * cluster;
                if next & L1E_OFFSET_MASK != expected || cache.tables.contains_key(&expected) {
                    break;
                }
                count += 1;
            }
        }
        #[allow(clippy::cast_possible_truncation, reason = "at most 2 MiB, a cluster")]
        let step = cluster as usize;
        let mut tables = Vec::new();
        if cluster >= SEPARATE_READ_MIN {
            // Large tables are read each into its own buffer: one read per
            // table costs less than copying them out of a shared one.
            for i in 0..count {
                let mut table = vec![0u8; step];
                self.file.read_at(l2_offset + i * cluster, &mut table).map_err(Error::errno)?;
                tables.push(table);
            }
        } else {
            let mut bytes = vec![0u8; usize::try_from(count * cluster).map_err(|_| eio_error())?];
            self.file.read_at(l2_offset, &mut bytes).map_err(Error::errno)?;
            tables.extend(bytes.chunks_exact(step).map(<[u8]>::to_vec));
        }
        let mut cache = self.reader.l2.borrow_mut();
        for (i, table) in tables.into_iter().enumerate() {
            #[allow(clippy::cast_possible_truncation, reason = "capacity is at most 8192")]
            cache.insert(l2_offset + i as u64 * cluster, table, capacity as usize);
        }
        // At most half the cache was read, so the first table is still in.
        let first = cache.tables.get(&l2_offset).map_or(&[][..], Vec::as_slice);
        Ok(f(first))
    }

    /// qemu's `qcow2_get_host_offset`: the type of the (sub)cluster at
    /// `offset` and how many of the following `bytes` bytes (at most
    /// `INT_MAX`) share it and, where they have host clusters, lie one
    /// after the other in the file; never past the end of an L2 table.
    pub fn host_range(&self, offset: u64, bytes: u64) -> Result<HostRange, Error> {
        let cluster_bits = self.cluster_bits();
        let cluster = self.cluster_size();
        let l2_bits = self.l2_bits();
        let l2_entries = 1u64 << l2_bits;
        let in_cluster = offset & (cluster - 1);
        let l2_index = (offset >> cluster_bits) & (l2_entries - 1);
        let available = (l2_entries - l2_index) << cluster_bits;
        let needed = bytes.min(MAX_STEP).saturating_add(in_cluster).min(available);
        let unallocated = HostRange {
            bytes: needed - in_cluster,
            kind: SubclusterType::UnallocatedPlain,
            host: 0,
        };
        let l1_index = offset >> (cluster_bits + l2_bits);
        let Some(&l1_entry) = usize::try_from(l1_index).ok().and_then(|i| self.l1_table.get(i))
        else {
            return Ok(unallocated);
        };
        let l2_offset = l1_entry & L1E_OFFSET_MASK;
        if l2_offset == 0 {
            return Ok(unallocated);
        }
        if l2_offset & (cluster - 1) != 0 {
            return Err(self.corruption(&format!(
                "L2 table offset {} unaligned (L1 index: {})",
                c_hex(l2_offset),
                c_hex(l1_index)
            )));
        }
        // `l1_index` indexes `l1_table`, a Vec.
        #[allow(clippy::cast_possible_truncation, reason = "checked against the L1 table above")]
        let l1_slot = l1_index as usize;
        let nb_clusters = needed.div_ceil(cluster);
        self.with_l2(l1_slot, l2_offset, |table| {
            self.host_range_in(table, offset, in_cluster, needed, nb_clusters, l2_offset, l2_index)
        })?
    }

    /// [`Qcow2Image::host_range`] once the L2 table is in memory.
    #[allow(clippy::too_many_arguments, reason = "the state of qemu's one function")]
    fn host_range_in(
        &self,
        table: &[u8],
        offset: u64,
        in_cluster: u64,
        needed: u64,
        nb_clusters: u64,
        l2_offset: u64,
        l2_index: u64,
    ) -> Result<HostRange, Error> {
        let format = self.l2_format();
        let entry_size = self.l2_entry_size();
        let entry_at = |i: u64| -> (u64, u64) {
            let at = usize::try_from(i * entry_size).unwrap_or(usize::MAX);
            let bitmap = if format.extended { be64(table, at.saturating_add(8)) } else { 0 };
            (be64(table, at), bitmap)
        };
        let sc_bits = self.subcluster_bits();
        #[allow(clippy::cast_possible_truncation, reason = "below 32: a subcluster index")]
        let sc_index = ((offset & (self.cluster_size() - 1)) >> sc_bits) as u32;
        let (entry, bitmap) = entry_at(l2_index);
        let kind = format.subcluster_type(entry, bitmap, sc_index);
        if self.header.version < 3 && kind.is_zero() {
            return Err(self.corruption(&format!(
                "Zero cluster entry found in pre-v3 image (L2 offset: {}, L2 index: {})",
                c_hex(l2_offset),
                c_hex(l2_index)
            )));
        }
        let mut host = 0;
        match kind {
            SubclusterType::Compressed => {
                if self.has_data_file {
                    return Err(self.corruption(&format!(
                        "Compressed cluster entry found in image with external data file (L2 \
                         offset: {}, L2 index: {})",
                        c_hex(l2_offset),
                        c_hex(l2_index)
                    )));
                }
                host = entry;
            }
            k if k.has_host_cluster() => {
                let host_cluster = entry & L2E_OFFSET_MASK;
                host = host_cluster + in_cluster;
                if host_cluster & (self.cluster_size() - 1) != 0 {
                    return Err(self.corruption(&format!(
                        "Cluster allocation offset {} unaligned (L2 offset: {}, L2 index: {})",
                        c_hex(host_cluster),
                        c_hex(l2_offset),
                        c_hex(l2_index)
                    )));
                }
                if self.has_data_file && host != offset {
                    return Err(self.corruption(&format!(
                        "External data file host cluster offset {} does not match guest cluster \
                         offset: {}, L2 index: {})",
                        c_hex(host_cluster),
                        c_hex(offset - in_cluster),
                        c_hex(l2_index)
                    )));
                }
            }
            _ => {}
        }
        // qemu's `count_contiguous_subclusters`.
        let mut count = 0u64;
        let mut expected_offset = entry & L2E_OFFSET_MASK;
        let check_offset = kind.has_host_cluster();
        let mut previous = entry;
        for i in 0..nb_clusters {
            let first_sc = if i == 0 { sc_index } else { 0 };
            let (e, b) = entry_at(l2_index + i);
            // Standard entries: one with the flags of the entry before it
            // and the next host cluster (or, without a host cluster, the
            // same entry) has its type and continues the run. This skips
            // the full decoding for the long runs a preallocated or
            // sequentially written image is made of.
            if i > 0 && !format.extended && (e & !L2E_OFFSET_MASK) == (previous & !L2E_OFFSET_MASK)
            {
                let continues = if check_offset {
                    e & L2E_OFFSET_MASK == expected_offset + self.cluster_size()
                } else {
                    e == previous
                };
                if continues {
                    expected_offset += if check_offset { self.cluster_size() } else { 0 };
                    count += 1;
                    previous = e;
                    continue;
                }
            }
            previous = e;
            let Some((k, run)) = format.subcluster_run(e, b, first_sc) else {
                return Err(self.corruption(&format!(
                    "Invalid cluster entry found  (L2 offset: {}, L2 index: {})",
                    c_hex(l2_offset),
                    c_hex(l2_index + i)
                )));
            };
            if i == 0 {
                if k == SubclusterType::Compressed {
                    count = u64::from(run);
                    break;
                }
            } else if k != kind {
                break;
            } else if check_offset {
                expected_offset += self.cluster_size();
                if expected_offset != e & L2E_OFFSET_MASK {
                    break;
                }
            }
            count += u64::from(run);
            if first_sc + run < self.subclusters_per_cluster() {
                break;
            }
        }
        let available = ((count + u64::from(sc_index)) << sc_bits).min(needed);
        Ok(HostRange { bytes: available.saturating_sub(in_cluster), kind, host })
    }

    /// Subclusters per cluster: 32 with extended L2 entries, else 1.
    fn subclusters_per_cluster(&self) -> u32 {
        if self.extended_l2() {
            32
        } else {
            1
        }
    }

    /// qemu's `qcow2_co_block_status` for `bytes` bytes at `offset`.
    pub fn block_status_at(&self, offset: u64, bytes: u64) -> Result<Mapping<'_>, Error> {
        if self.reader.metadata_preallocation.get().is_none() {
            // qemu ignores a failure here, once it has printed its notice.
            let found = match self.detect_metadata_preallocation() {
                Ok(found) => found,
                Err(e) => {
                    self.reader.printed.borrow_mut().extend(e.notes().iter().cloned());
                    false
                }
            };
            self.reader.metadata_preallocation.set(Some(found));
        }
        let range = self.host_range(offset, bytes)?;
        let mut status = Status::NONE;
        if range.kind.is_zero() {
            status |= Status::ZERO;
        } else if !range.kind.is_unallocated() {
            status |= Status::DATA;
        }
        if range.kind == SubclusterType::Compressed {
            status |= Status::COMPRESSED;
        }
        let encrypted = self.header.crypt_method != 0;
        if range.kind.has_host_cluster() && !encrypted {
            if status.contains(Status::DATA)
                && self.reader.metadata_preallocation.get() == Some(true)
            {
                status |= Status::RECURSE;
            }
            return Ok(Mapping::at(status, range.bytes, self.data_file()?, range.host));
        }
        Ok(Mapping::unmapped(status, range.bytes))
    }

    /// qemu's `qcow2_detect_metadata_preallocation`: whether the image
    /// file holds markedly more referenced clusters than the host file
    /// system has allocated to it (qemu's threshold: a ninth more, and at
    /// least two), as when `preallocation=metadata` made it.
    pub fn detect_metadata_preallocation(&self) -> Result<bool, Error> {
        let cluster = self.cluster_size();
        let real_clusters = self.file.allocated_bytes() / cluster;
        let threshold = (real_clusters * 10 / 9).max(real_clusters + 2);
        let end_cluster = self.file.sector_len().div_ceil(cluster);
        // Entries per refcount block: cluster bits plus 3, less the order.
        let block_bits = self.cluster_bits() + 3 - self.header.refcount_order.min(6);
        let order = self.header.refcount_order;
        let mut counted = 0u64;
        let mut cluster_index = 0u64;
        while cluster_index < end_cluster && counted < threshold {
            let table_index = cluster_index >> block_bits;
            let block_end = ((table_index + 1) << block_bits).min(end_cluster);
            let offset = usize::try_from(table_index)
                .ok()
                .and_then(|i| self.reftable.get(i))
                .map_or(0, |e| e & REFT_OFFSET_MASK);
            if offset == 0 {
                cluster_index = block_end;
                continue;
            }
            if offset & (cluster - 1) != 0 {
                return Err(self.corruption(&format!(
                    "Refblock offset {} unaligned (reftable index: {})",
                    c_hex(offset),
                    c_hex(table_index)
                )));
            }
            let block = self.file.read_vec(offset, cluster).map_err(Error::errno)?;
            let base = table_index << block_bits;
            while cluster_index < block_end && counted < threshold {
                counted += u64::from(get_refcount(&block, order, cluster_index - base) != 0);
                cluster_index += 1;
            }
        }
        Ok(counted >= threshold)
    }

    /// qemu's `qcow2_co_preadv_part` of this image alone: fills `buf`
    /// with the guest data at `offset`, zeros for ranges the image leaves
    /// unallocated (the block layer reads those from the backing file).
    pub fn read_guest(&self, offset: u64, buf: &mut [u8]) -> Result<(), Error> {
        let mut done = 0usize;
        while done < buf.len() {
            let at = offset + done as u64;
            let rest = buf.len() - done;
            let range = self.host_range(at, rest as u64)?;
            if range.bytes == 0 {
                return Err(Error::errno(eio()));
            }
            #[allow(clippy::cast_possible_truncation, reason = "at most `rest`, a usize")]
            let n = range.bytes.min(rest as u64) as usize;
            let part = &mut buf[done..done + n];
            match range.kind {
                SubclusterType::Compressed => self.read_compressed(range.host, at, part)?,
                SubclusterType::Normal => {
                    self.data_file()?.read_at(range.host, part).map_err(Error::errno)?;
                }
                _ => part.fill(0),
            }
            done += n;
        }
        Ok(())
    }

    /// Reads `buf` at guest `offset` from the compressed cluster `entry`
    /// describes (qemu's `qcow2_co_preadv_compressed`): the whole cluster
    /// is decompressed, the last one kept for the next read.
    fn read_compressed(&self, entry: u64, offset: u64, buf: &mut [u8]) -> Result<(), Error> {
        let cluster = self.cluster_size();
        #[allow(clippy::cast_possible_truncation, reason = "below the cluster size, 2 MiB")]
        let start = (offset & (cluster - 1)) as usize;
        let mut cached = self.reader.compressed.borrow_mut();
        if cached.as_ref().map(|(e, _)| *e) != Some(entry) {
            *cached = None;
            let descriptor = CompressedDescriptor::from_entry(entry, self.cluster_bits());
            let input =
                self.file.read_vec(descriptor.offset, descriptor.len).map_err(Error::errno)?;
            if start == 0 && buf.len() as u64 == cluster {
                // A read of the whole cluster (convert's): decompressed in
                // place, with nothing to keep for a later part.
                return decompress(self.header.compression_type, &input, buf)
                    .map_err(|_| Error::errno(eio()));
            }
            let mut out = vec![0u8; usize::try_from(cluster).map_err(|_| eio_error())?];
            decompress(self.header.compression_type, &input, &mut out)
                .map_err(|_| Error::errno(eio()))?;
            *cached = Some((entry, out));
        }
        let data = cached.as_ref().map_or(&[][..], |(_, d)| d.as_slice());
        let Some(src) = data.get(start..start + buf.len()) else {
            return Err(Error::errno(eio()));
        };
        buf.copy_from_slice(src);
        Ok(())
    }
}

/// `EIO` as an instar error.
fn eio_error() -> Error {
    Error::errno(eio())
}

/// qemu's `qcow2_co_decompress`: the stream in `input` must fill `out`,
/// one cluster, exactly (`qcow2_zlib_decompress`,
/// `qcow2_zstd_decompress`).
pub fn decompress(compression_type: u8, input: &[u8], out: &mut [u8]) -> Result<(), CodecError> {
    match compression_type {
        crate::header::COMPRESSION_ZLIB => {
            // Z_STREAM_END or Z_BUF_ERROR with the output full: the input
            // is known to a sector only, so some may be left over.
            let (produced, _) = codec::inflate(input, out, false)?;
            if produced == out.len() {
                Ok(())
            } else {
                Err(CodecError::Short)
            }
        }
        crate::header::COMPRESSION_ZSTD => codec::zstd_fill(input, out),
        _ => Err(CodecError::Corrupt),
    }
}

/// Why a snapshot's L1 table could not be switched to, and whether qemu's
/// lookup by ID then tries by name (`-ENOENT` and `-EINVAL`).
struct SnapshotLoadError {
    message: String,
    retry_by_name: bool,
}

impl Qcow2Image {
    /// Makes reads see the image as internal snapshot `id_or_name` saved
    /// it: qemu's `bdrv_snapshot_load_tmp_by_id_or_name`, which looks for
    /// the ID first and then for the name. Only the L1 table changes; the
    /// disk keeps the image's size, as in qemu.
    pub fn load_snapshot_by_id_or_name(&mut self, id_or_name: &str) -> Result<(), Error> {
        let by_id = self.load_snapshot(Some(id_or_name), None);
        let result = match by_id {
            Err(e) if e.retry_by_name => self.load_snapshot(None, Some(id_or_name)),
            other => other,
        };
        result.map_err(|e| Error::invalid(e.message))
    }

    /// Makes reads see the image as the internal snapshot with `id`
    /// and/or `name` saved it (qemu's `bdrv_snapshot_load_tmp`).
    pub fn load_snapshot_exact(
        &mut self,
        id: Option<&str>,
        name: Option<&str>,
    ) -> Result<(), Error> {
        if id.is_none() && name.is_none() {
            return Err(Error::invalid("snapshot_id and name are both NULL"));
        }
        self.load_snapshot(id, name).map_err(|e| Error::invalid(e.message))
    }

    /// qemu's `qcow2_snapshot_load_tmp`: the snapshot with `id` and/or
    /// `name` (both must match when both are given), its L1 table
    /// validated and read in place of the active one.
    fn load_snapshot(
        &mut self,
        id: Option<&str>,
        name: Option<&str>,
    ) -> Result<(), SnapshotLoadError> {
        let not_found =
            || SnapshotLoadError { message: "Can't find snapshot".into(), retry_by_name: true };
        let snapshots = self.snapshots.as_ref().map_or(&[][..], |t| t.snapshots.as_slice());
        let found = snapshots.iter().find(|s| match (id, name) {
            (Some(id), Some(name)) => s.id == id && s.name == name,
            (Some(id), None) => s.id == id,
            (None, Some(name)) => s.name == name,
            (None, None) => false,
        });
        let Some(snapshot) = found else { return Err(not_found()) };
        let (l1_offset, l1_size) = (snapshot.l1_offset, u64::from(snapshot.l1_size));
        crate::tables::validate_table(
            l1_offset,
            l1_size,
            crate::tables::L1E_SIZE,
            crate::tables::QCOW_MAX_L1_SIZE,
            self.cluster_size(),
            "Snapshot L1 table",
        )
        .map_err(|message| SnapshotLoadError {
            // qemu's -EINVAL (a bad offset) retries by name, -EFBIG not.
            retry_by_name: message.ends_with("offset invalid"),
            message,
        })?;
        let table = crate::tables::read_table(&self.file, l1_offset, l1_size).map_err(|_| {
            SnapshotLoadError {
                message: "Failed to read l1 table for snapshot".into(),
                retry_by_name: false,
            }
        })?;
        self.l1_table = table;
        *self.reader.l2.borrow_mut() = L2Cache::default();
        *self.reader.compressed.borrow_mut() = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tables::{QCOW_OFLAG_COMPRESSED, QCOW_OFLAG_COPIED, QCOW_OFLAG_ZERO};
    use instar_core::{Format, Image, OpenFlags};

    const CLUSTER: u64 = 0x1_0000;
    const REFTABLE: u64 = 0x1_0000;
    const REFBLOCK: u64 = 0x2_0000;
    const L1: u64 = 0x3_0000;
    const L2: u64 = 0x4_0000;
    const DATA: u64 = 0x5_0000;

    /// A v3 image of 64 KiB clusters and `size` bytes, one L2 table whose
    /// entries (index, entry, bitmap) are given, `clusters` clusters long,
    /// every cluster referenced once.
    fn image(size: u64, extended: bool, l2: &[(u64, u64, u64)], clusters: u64) -> Vec<u8> {
        let mut d = vec![0u8; usize::try_from(clusters * CLUSTER).unwrap()];
        let put = |d: &mut Vec<u8>, at: u64, v: &[u8]| {
            let at = usize::try_from(at).unwrap();
            d[at..at + v.len()].copy_from_slice(v);
        };
        put(&mut d, 0, b"QFI\xfb"); // magic
        put(&mut d, 4, &3u32.to_be_bytes()); // version
        put(&mut d, 20, &16u32.to_be_bytes()); // cluster_bits
        put(&mut d, 24, &size.to_be_bytes()); // size
        put(&mut d, 36, &1u32.to_be_bytes()); // l1_size
        put(&mut d, 40, &L1.to_be_bytes()); // l1_table_offset
        put(&mut d, 48, &REFTABLE.to_be_bytes()); // refcount_table_offset
        put(&mut d, 56, &1u32.to_be_bytes()); // refcount_table_clusters
        let incompat: u64 = if extended { 1 << 4 } else { 0 };
        put(&mut d, 72, &incompat.to_be_bytes()); // incompatible_features
        put(&mut d, 96, &4u32.to_be_bytes()); // refcount_order
        put(&mut d, 100, &112u32.to_be_bytes()); // header_length
        put(&mut d, REFTABLE, &REFBLOCK.to_be_bytes());
        for i in 0..clusters {
            put(&mut d, REFBLOCK + 2 * i, &1u16.to_be_bytes());
        }
        put(&mut d, L1, &(L2 | QCOW_OFLAG_COPIED).to_be_bytes());
        let entry_size = if extended { 16 } else { 8 };
        for &(index, entry, bitmap) in l2 {
            put(&mut d, L2 + index * entry_size, &entry.to_be_bytes());
            if extended {
                put(&mut d, L2 + index * entry_size + 8, &bitmap.to_be_bytes());
            }
        }
        d
    }

    fn open(bytes: Vec<u8>) -> Box<dyn Image> {
        crate::Qcow2.open(ImageFile::from_bytes("t.qcow2", bytes), OpenFlags::READ).unwrap()
    }

    #[test]
    fn block_status_follows_the_l2_entries() {
        let data = DATA | QCOW_OFLAG_COPIED;
        let mut bytes = image(
            16 * CLUSTER,
            false,
            &[
                (0, data),
                (1, data + CLUSTER),
                (2, QCOW_OFLAG_ZERO),
                (4, (data + 3 * CLUSTER) | 1),
                (5, data + 2 * CLUSTER),
                (6, data + 4 * CLUSTER),
            ]
            .map(|(i, e)| (i, e, 0)),
            9,
        );
        bytes[usize::try_from(DATA + 5).unwrap()] = 0xab;
        let img = open(bytes);
        // In memory nothing is allocated, which reads as preallocated
        // metadata: data is RECURSE.
        let st = img.block_status(true, 0, 16 * CLUSTER).unwrap();
        assert!(st.status.contains(Status::RECURSE));
        let st = Mapping { status: st.status.without(Status::RECURSE), ..st };
        // Two contiguous data clusters, at the host offset.
        assert_eq!(st.status, Status::DATA | Status::OFFSET_VALID);
        assert_eq!((st.bytes, st.host.unwrap().offset), (2 * CLUSTER, DATA));
        // An unaligned start keeps its offset into the cluster.
        let st = img.block_status(true, CLUSTER + 7, 16 * CLUSTER).unwrap();
        assert_eq!((st.bytes, st.host.unwrap().offset), (CLUSTER - 7, DATA + CLUSTER + 7));
        let st = img.block_status(true, 2 * CLUSTER, 16 * CLUSTER).unwrap();
        assert_eq!((st.status, st.bytes), (Status::ZERO, CLUSTER));
        let st = img.block_status(true, 3 * CLUSTER, 16 * CLUSTER).unwrap();
        assert_eq!((st.status, st.bytes), (Status::NONE, CLUSTER));
        let st = img.block_status(true, 4 * CLUSTER, 16 * CLUSTER).unwrap();
        assert_eq!(st.status, Status::ZERO | Status::OFFSET_VALID);
        // Data clusters that do not follow each other in the file are
        // separate runs.
        let st = img.block_status(true, 5 * CLUSTER, 16 * CLUSTER).unwrap();
        assert_eq!((st.bytes, st.host.unwrap().offset), (CLUSTER, DATA + 2 * CLUSTER));
        let mut buf = vec![1u8; usize::try_from(3 * CLUSTER).unwrap()];
        img.read_at(CLUSTER, &mut buf).unwrap();
        assert!(buf.iter().all(|&b| b == 0));
        img.read_at(0, &mut buf[..8]).unwrap();
        assert_eq!(&buf[..8], &[0, 0, 0, 0, 0, 0xab, 0, 0]);
    }

    #[test]
    fn subclusters_answer_by_bitmap() {
        // Subclusters 0-3 allocated, 4-5 zero, the rest unallocated.
        let bitmap = 0b11_0000u64 << 32 | 0b1111;
        let bytes = image(4 * CLUSTER, true, &[(0, DATA | QCOW_OFLAG_COPIED, bitmap)], 6);
        let img = open(bytes);
        let sc = CLUSTER / 32;
        let st = img.block_status(true, 0, CLUSTER).unwrap();
        let status = st.status.without(Status::RECURSE);
        assert_eq!((status, st.bytes), (Status::DATA | Status::OFFSET_VALID, 4 * sc));
        let st = img.block_status(true, 4 * sc + 1, CLUSTER).unwrap();
        assert_eq!((st.status, st.bytes), (Status::ZERO | Status::OFFSET_VALID, 2 * sc - 1));
        let st = img.block_status(true, 6 * sc, CLUSTER).unwrap();
        assert_eq!((st.status, st.bytes), (Status::OFFSET_VALID, 26 * sc));
        // A bitmap both allocated and zero is corrupt: qemu's notice once.
        let bytes = image(4 * CLUSTER, true, &[(1, DATA | QCOW_OFLAG_COPIED, 1 << 32 | 1)], 6);
        let img = open(bytes);
        let e = img.block_status(true, 0, 4 * CLUSTER).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(5));
        assert_eq!(
            instar_core::diag::render_all(e.notes(), "q"),
            "qcow2: Image is corrupt: Invalid cluster entry found  (L2 offset: 0x40000, L2 \
             index: 0x1); further non-fatal corruption events will be suppressed\n"
        );
        let e = img.block_status(true, CLUSTER, CLUSTER).unwrap_err();
        assert!(e.notes().is_empty());
    }

    #[test]
    fn compressed_clusters_inflate_to_exactly_a_cluster() {
        let cluster = vec![7u8; usize::try_from(CLUSTER).unwrap()];
        let mut c = flate2::Compress::new(flate2::Compression::default(), false);
        let mut z = vec![0u8; 4096];
        c.compress(&cluster, &mut z, flate2::FlushCompress::Finish).unwrap();
        z.truncate(usize::try_from(c.total_out()).unwrap());
        let sectors = z.len().div_ceil(512) as u64;
        let at = DATA + 0x200;
        let entry = QCOW_OFLAG_COMPRESSED | ((sectors - 1) << 54) | at;
        let mut bytes = image(2 * CLUSTER, false, &[(0, entry, 0)], 6);
        let start = usize::try_from(at).unwrap();
        bytes[start..start + z.len()].copy_from_slice(&z);
        let img = open(bytes.clone());
        let st = img.block_status(true, 0, 2 * CLUSTER).unwrap();
        assert_eq!((st.status, st.bytes), (Status::DATA | Status::COMPRESSED, CLUSTER));
        let mut buf = [0u8; 16];
        img.read_at(100, &mut buf).unwrap();
        assert_eq!(buf, [7; 16]);
        // A stream cut short does not fill the cluster: EIO, no notice.
        bytes[start + 2..start + z.len()].fill(0xff);
        let e = open(bytes).read_at(0, &mut buf).unwrap_err();
        assert_eq!((e.raw_os_error(), e.notes().len()), (Some(5), 0));
    }

    #[test]
    fn unaligned_l2_offsets_are_corrupt_and_worded_like_qemu() {
        let mut bytes = image(2 * CLUSTER, false, &[], 6);
        let l1 = usize::try_from(L1).unwrap();
        bytes[l1..l1 + 8].copy_from_slice(&(L2 | 0x200).to_be_bytes());
        let e = open(bytes).block_status(true, 0, CLUSTER).unwrap_err();
        assert_eq!(
            instar_core::diag::render_all(e.notes(), "q"),
            "qcow2: Image is corrupt: L2 table offset 0x40200 unaligned (L1 index: 0); further \
             non-fatal corruption events will be suppressed\n"
        );
    }

    #[test]
    fn metadata_preallocation_needs_more_references_than_allocation() {
        // In memory nothing is allocated: every referenced cluster counts.
        let img = open(image(2 * CLUSTER, false, &[(0, DATA | QCOW_OFLAG_COPIED, 0)], 6));
        let st = img.block_status(true, 0, CLUSTER).unwrap();
        assert!(st.status.contains(Status::RECURSE));
        // One referenced cluster is below the threshold of two more than
        // none.
        let mut bytes = image(2 * CLUSTER, false, &[(0, DATA | QCOW_OFLAG_COPIED, 0)], 6);
        let refs = usize::try_from(REFBLOCK).unwrap() + 2;
        bytes[refs..refs + 10].fill(0);
        let img = open(bytes);
        let st = img.block_status(true, 0, CLUSTER).unwrap();
        assert!(!st.status.contains(Status::RECURSE));
    }

    #[test]
    fn c_hex_prints_zero_bare() {
        assert_eq!((c_hex(0), c_hex(0x10)), ("0".to_string(), "0x10".to_string()));
    }
}
