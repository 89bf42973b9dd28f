//! Writing a vmdk image as convert's target, as qemu's `vmdk_pwritev`
//! writes: guest ranges split by extent and grain; a flat extent written
//! in place; a sparse extent's grain allocated the first time it is
//! written, at the extent's `next_cluster_sector` (the file's end when
//! opened, then after each grain), the rest of the new grain written as
//! zeros (or the backing disk's data), then its grain table entry and the
//! redundant table's entry. A compressed (streamOptimized) extent gets a
//! grain marker and the deflated grain, and the next grain starts at the
//! sector after it, so only the last grain's reservation stays whole.
//!
//! The first write after the open gives the image a new random content
//! ID (`vmdk_write_cid`): the descriptor is rewritten with it.
//!
//! Zero writes follow qemu's block layer: the range is cut at grain
//! boundaries (the driver's zero-write alignment); whole grains of an
//! extent with the zeroed-grain feature get the zeroed entry, anything
//! else is written as zeros through the data path.

use crate::descriptor::DESC_SIZE;
use crate::image::{Extent, ExtentKind, Image, SparseExtent};
use crate::stream::GRAIN_MARKER_SIZE;
use crate::tables::GTE_ZEROED;
use instar_core::codec::Compressor;
use instar_core::write::Compression;
use instar_core::{Error, GuestRead, ImageFile, ImageWriter, TargetFile};
use std::io;

/// qemu's `BDRV_SECTOR_SIZE`.
const SECTOR: u64 = 512;

/// qemu's `VMDK_EXTENT_MAX_SECTORS`: no grain is allocated at or past
/// this sector of an extent file.
const EXTENT_MAX_SECTORS: u64 = 1 << 32;

/// The descriptor of a sparse image file starts at its second sector
/// (qemu's `desc_offset` of 0x200).
const SPARSE_DESC_OFFSET: u64 = 0x200;

/// The largest descriptor file qemu rewrites (`VMDK description file too
/// big` past 16 MiB).
const MAX_DESC_FILE: u64 = 16 << 20;

/// qemu's bounce buffer for zero writes a driver refuses
/// (`MAX_WRITE_ZEROES_BOUNCE_BUFFER`, 32768 sectors).
const ZERO_CHUNK: u64 = 32768 * SECTOR;

/// The most of a new grain filled with one write (zeros or the backing
/// disk's data).
const FILL_CHUNK: u64 = 1 << 20;

/// errno values qemu's vmdk write path returns.
const EIO: i32 = 5;
const EINVAL: i32 = 22;
const EFBIG: i32 = 27;
const ENOTSUP: i32 = 95;

fn errno(code: i32) -> Error {
    Error::errno(io::Error::from_raw_os_error(code))
}

/// One extent as the write path keeps it (qemu's `VmdkExtent`).
#[derive(Debug)]
struct WriteExtent {
    /// Index of its file.
    file: usize,
    kind: ExtentKind,
    /// The guest sector after its last one, and its first.
    end_sector: u64,
    first_sector: u64,
    /// Sectors per grain (all its sectors when flat).
    cluster_sectors: u64,
    /// Where its next grain goes, in sectors of its file.
    next_cluster_sector: u64,
}

impl WriteExtent {
    fn from_extent(e: &Extent, file_len: u64) -> Result<WriteExtent, Error> {
        let end = u64::try_from(e.end_sector).map_err(|_| errno(EIO))?;
        let sectors = u64::try_from(e.sectors).map_err(|_| errno(EIO))?;
        let cluster_sectors = e.cluster_sectors.max(1);
        let nb_sectors = file_len.div_ceil(SECTOR);
        Ok(WriteExtent {
            file: e.file,
            kind: e.kind,
            end_sector: end,
            first_sector: end.saturating_sub(sectors),
            cluster_sectors,
            next_cluster_sector: nb_sectors.div_ceil(cluster_sectors) * cluster_sectors,
        })
    }

    fn cluster_bytes(&self) -> u64 {
        self.cluster_sectors * SECTOR
    }

    fn compressed(&self) -> bool {
        matches!(self.kind, ExtentKind::Sparse(s) if s.compressed)
    }

    fn has_zero_grain(&self) -> bool {
        matches!(self.kind, ExtentKind::Sparse(s) if s.has_zero_grain)
    }
}

/// Where a grain is, as `get_cluster_offset` finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Found {
    /// At this byte offset of the extent file.
    At(u64),
    /// A grain table entry of 0.
    Unallocated,
    /// The zeroed-grain entry.
    Zeroed,
    /// No grain table for it (a directory entry of 0).
    NoTable,
}

/// The table entry a write found (`VmdkMetaData`).
#[derive(Debug, Clone, Copy)]
struct Slot {
    l1_index: u64,
    l2_index: u64,
    l2_offset: u64,
}

/// A vmdk image opened for writing.
pub struct VmdkWriter {
    /// The image's files, as [`Image::files`].
    files: Vec<TargetFile>,
    extents: Vec<WriteExtent>,
    total_sectors: u64,
    /// Where the descriptor is in the image file (0: it is the file).
    desc_offset: u64,
    /// `cid_updated`: the first write has renewed the content ID.
    cid_updated: bool,
    /// The disk below, copied into new grains.
    backing: Option<Box<dyn GuestRead>>,
    /// The extent files' names, as opened (`files[1..]`).
    extent_names: Vec<String>,
}

impl std::fmt::Debug for VmdkWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VmdkWriter").field("extents", &self.extents).finish_non_exhaustive()
    }
}

impl VmdkWriter {
    /// Opens the vmdk image `name` for writing with qemu's open checks
    /// (`vmdk_open` with `BDRV_O_RDWR`); `backing` is the disk below it.
    pub fn open(name: &str, backing: Option<Box<dyn GuestRead>>) -> Result<VmdkWriter, Error> {
        let top = ImageFile::open(name).map_err(|e| Error::open_errno(name, e))?;
        let image = Image::open(top)?;
        for e in &image.extents {
            if let ExtentKind::Sparse(sp) = e.kind {
                // VMware's version 3 adds changed block tracking, which
                // qemu does not keep: it only opens those read-only.
                if sp.version == 3 && !sp.compressed && sp.se.is_none() {
                    return Err(Error::open("VMDK version 3 must be read only"));
                }
            }
        }
        let extent_names = image.files.iter().skip(1).map(|f| f.file.name().to_string()).collect();
        let mut files = Vec::with_capacity(image.files.len());
        for f in &image.files {
            let n = f.file.name();
            files.push(TargetFile::open(n).map_err(|e| Error::open_errno(n, e))?);
        }
        let mut extents = Vec::with_capacity(image.extents.len());
        for e in &image.extents {
            let len = image.files.get(e.file).map_or(0, |f| f.file.len());
            extents.push(WriteExtent::from_extent(e, len)?);
        }
        let total_sectors = u64::try_from(image.total_sectors()).map_err(|_| errno(EIO))?;
        let sparse_top = image.extents.first().is_some_and(|e| e.file == 0 && !e.is_flat())
            && image.files[0].file.read_vec(0, 4).is_ok_and(|m| is_sparse_magic(&m));
        let desc_offset = if sparse_top { SPARSE_DESC_OFFSET } else { 0 };
        Ok(VmdkWriter {
            files,
            extents,
            total_sectors,
            desc_offset,
            cid_updated: false,
            backing,
            extent_names,
        })
    }

    fn file(&self, index: usize) -> Result<&TargetFile, Error> {
        self.files.get(index).ok_or_else(|| errno(EIO))
    }

    /// `find_extent`: the extent holding guest `sector`, searching from
    /// `hint`.
    fn find_extent(&self, sector: u64, hint: usize) -> Option<usize> {
        (hint..self.extents.len()).find(|&i| sector < self.extents[i].end_sector)
    }

    /// Entry `index` of the little-endian 32-bit table at byte `table`
    /// of file `file`.
    fn entry(&self, file: usize, table: u64, index: u64) -> Result<u32, Error> {
        let mut raw = [0u8; 4];
        let at = table.checked_add(index * 4).ok_or_else(|| errno(EINVAL))?;
        self.file(file)?.read_at(at, &mut raw).map_err(Error::errno)?;
        Ok(u32::from_le_bytes(raw))
    }

    /// `get_cluster_offset` without allocating: the grain of the guest
    /// byte `offset` in extent `ei`, and the table slot it found.
    fn lookup(&self, ei: usize, offset: u64) -> Result<(Found, Option<Slot>), Error> {
        let e = &self.extents[ei];
        let sp: SparseExtent = match e.kind {
            ExtentKind::Flat { start } => return Ok((Found::At(start), None)),
            ExtentKind::Sparse(sp) => sp,
        };
        if sp.se.is_some() {
            return Err(errno(ENOTSUP));
        }
        let rel = offset - e.first_sector * SECTOR;
        let l1_index = (rel / SECTOR) / u64::from(sp.l1_entry_sectors.max(1));
        if l1_index >= u64::from(sp.l1_size) {
            return Err(errno(EINVAL));
        }
        let l2_offset = u64::from(self.entry(e.file, sp.l1_offset, l1_index)?);
        if l2_offset == 0 {
            return Ok((Found::NoTable, None));
        }
        let l2_index = ((rel / SECTOR) / e.cluster_sectors) % u64::from(sp.l2_size.max(1));
        let slot = Slot { l1_index, l2_index, l2_offset };
        let sector = self.entry(e.file, l2_offset * SECTOR, l2_index)?;
        let found = match sector {
            GTE_ZEROED if sp.has_zero_grain => Found::Zeroed,
            0 => Found::Unallocated,
            s => Found::At(u64::from(s) * SECTOR),
        };
        Ok((found, Some(slot)))
    }

    /// `get_cluster_offset`'s allocation: a new grain at the extent's
    /// next sector, its other bytes filled (`get_whole_cluster`). `skip`
    /// is the range of the grain the caller writes.
    fn allocate(
        &mut self,
        ei: usize,
        offset: u64,
        skip: (u64, u64),
        zeroed: bool,
    ) -> Result<u64, Error> {
        let e = &mut self.extents[ei];
        if e.next_cluster_sector >= EXTENT_MAX_SECTORS {
            return Err(errno(EINVAL));
        }
        let at = e.next_cluster_sector * SECTOR;
        e.next_cluster_sector += e.cluster_sectors;
        let bytes = e.cluster_bytes();
        // qemu passes the extent-relative offset here and reads the
        // backing disk there.
        let rel = offset - e.first_sector * SECTOR;
        let start = rel / bytes * bytes;
        let file = e.file;
        let (skip_start, skip_end) = skip;
        let from_backing = !zeroed && self.backing.is_some();
        // The grain's two other parts, a bounded piece at a time (a
        // grain may be up to 1 GiB).
        for (part_start, part_end) in [(0, skip_start), (skip_end, bytes)] {
            let mut pos = part_start;
            while pos < part_end {
                let n = (part_end - pos).min(FILL_CHUNK);
                #[allow(clippy::cast_possible_truncation, reason = "at most FILL_CHUNK")]
                let mut piece = vec![0u8; n as usize];
                if let (true, Some(b)) = (from_backing, self.backing.as_ref()) {
                    b.read_guest(start + pos, &mut piece)?;
                }
                self.file(file)?.write_at(at + pos, &piece).map_err(Error::errno)?;
                pos += n;
            }
        }
        Ok(at)
    }

    /// `vmdk_L2update`: the grain table entry and its redundant copy.
    fn update_tables(&self, ei: usize, slot: Slot, value: u32) -> Result<(), Error> {
        let e = &self.extents[ei];
        let f = self.file(e.file)?;
        let raw = value.to_le_bytes();
        f.write_at(slot.l2_offset * SECTOR + slot.l2_index * 4, &raw).map_err(|_| errno(EIO))?;
        if let ExtentKind::Sparse(sp) = e.kind {
            if sp.l1_backup_offset != 0 {
                let backup = u64::from(self.entry(e.file, sp.l1_backup_offset, slot.l1_index)?);
                f.write_at(backup * SECTOR + slot.l2_index * 4, &raw).map_err(|_| errno(EIO))?;
            }
        }
        Ok(())
    }

    /// `vmdk_write_extent`: `data` at `offset_in_cluster` of the grain at
    /// `cluster` (compressed with its marker for a compressed extent).
    fn write_extent(
        &mut self,
        ei: usize,
        cluster: u64,
        offset_in_cluster: u64,
        data: &[u8],
        offset: u64,
    ) -> Result<(), Error> {
        let e = &self.extents[ei];
        let n = data.len() as u64;
        let packed;
        let payload: &[u8] = if e.compressed() {
            let whole = n == e.cluster_bytes() || offset + n == e.end_sector * SECTOR;
            if offset_in_cluster != 0 || n > e.cluster_bytes() || !whole {
                return Err(errno(EINVAL));
            }
            if !matches!(e.kind, ExtentKind::Sparse(s) if s.has_marker) {
                return Err(errno(EINVAL));
            }
            // qemu's buffer is twice the grain; no stream of `n` bytes is
            // longer than zlib's `compressBound(n)`, so the smaller of the
            // two gives the same answer without taking a huge grain's room.
            let bound = n + (n >> 12) + (n >> 14) + (n >> 25) + 13;
            let room = (e.cluster_bytes() * 2).min(bound);
            let capacity = usize::try_from(room).map_err(|_| errno(EINVAL))?;
            let deflated =
                Compressor::VmdkDeflate.compress(data, capacity).ok_or_else(|| errno(EINVAL))?;
            packed = grain_record(offset / SECTOR, &deflated)?;
            &packed
        } else {
            data
        };
        let at = cluster + offset_in_cluster;
        let written = self.file(e.file)?.write_at(at, payload);
        let end_sector = (at + payload.len() as u64).div_ceil(SECTOR);
        let e = &mut self.extents[ei];
        if e.compressed() {
            e.next_cluster_sector = end_sector;
        } else {
            e.next_cluster_sector = e.next_cluster_sector.max(end_sector);
        }
        written.map_err(Error::errno)
    }

    /// `vmdk_pwritev`: `data` (or zeros with `zeroed`, nothing written
    /// with `dry_run`) at guest `offset`.
    fn pwritev(
        &mut self,
        mut offset: u64,
        bytes: u64,
        data: Option<&[u8]>,
        zeroed: bool,
        dry_run: bool,
    ) -> Result<(), Error> {
        if offset.div_ceil(SECTOR) > self.total_sectors {
            return Err(errno(EIO));
        }
        let mut left = bytes;
        let mut done = 0u64;
        let mut hint = 0;
        while left > 0 {
            let ei = self.find_extent(offset / SECTOR, hint).ok_or_else(|| errno(EIO))?;
            hint = ei;
            let e = &self.extents[ei];
            if matches!(e.kind, ExtentKind::Sparse(s) if s.se.is_some()) {
                return Err(errno(ENOTSUP));
            }
            let cluster_bytes = e.cluster_bytes();
            let in_cluster = (offset - e.first_sector * SECTOR) % cluster_bytes;
            let mut n = left.min(cluster_bytes - in_cluster);
            let compressed = e.compressed();
            let (found, slot) = self.lookup(ei, offset)?;
            let allocate = !(compressed || zeroed);
            if compressed && matches!(found, Found::At(_)) {
                // qemu refuses to rewrite a grain of a stream.
                return Err(errno(EIO));
            }
            let mut new_allocation = false;
            let cluster = match found {
                Found::At(at) => Some(at),
                Found::Unallocated | Found::Zeroed if allocate || (compressed && !zeroed) => {
                    let skip = if allocate { (in_cluster, in_cluster + n) } else { (0, 0) };
                    new_allocation = true;
                    Some(self.allocate(ei, offset, skip, found == Found::Zeroed)?)
                }
                _ => None,
            };
            if zeroed {
                let e = &self.extents[ei];
                if e.has_zero_grain() && in_cluster == 0 && n >= cluster_bytes {
                    n = cluster_bytes;
                    if !dry_run && found != Found::Zeroed {
                        // A grain with no table: qemu's entry update
                        // would use a slot it never found.
                        let slot = slot.ok_or_else(|| errno(EIO))?;
                        self.update_tables(ei, slot, GTE_ZEROED)?;
                    }
                } else {
                    return Err(errno(ENOTSUP));
                }
            } else {
                // A grain with no table: qemu writes at an offset it never
                // set (`cluster_offset` uninitialised), which its block
                // layer refuses with EINVAL; instar refuses the same way.
                let cluster = cluster.ok_or_else(|| errno(EINVAL))?;
                let data = data.ok_or_else(|| errno(EIO))?;
                #[allow(clippy::cast_possible_truncation, reason = "within the request")]
                let piece = &data[done as usize..(done + n) as usize];
                self.write_extent(ei, cluster, in_cluster, piece, offset)?;
                if new_allocation {
                    let slot = slot.ok_or_else(|| errno(EIO))?;
                    let sector = u32::try_from(cluster / SECTOR).map_err(|_| errno(EIO))?;
                    self.update_tables(ei, slot, sector)?;
                }
            }
            left -= n;
            offset += n;
            done += n;
            if !self.cid_updated {
                self.write_cid(crate::create::random_cid()?)?;
                self.cid_updated = true;
            }
        }
        Ok(())
    }

    /// `vmdk_write_cid`: the descriptor rewritten with `CID=<cid>` and
    /// what followed `parentCID` before.
    fn write_cid(&self, cid: u32) -> Result<(), Error> {
        let f = self.file(0)?;
        let size = if self.desc_offset == 0 {
            // `bdrv_getlength`: the file's length in whole sectors.
            let len = f.len().map_err(Error::errno)?.div_ceil(SECTOR) * SECTOR;
            if len > MAX_DESC_FILE {
                return Err(errno(EFBIG));
            }
            len
        } else {
            DESC_SIZE as u64
        };
        #[allow(clippy::cast_possible_truncation, reason = "at most 16 MiB")]
        let mut desc = vec![0u8; size as usize];
        f.read_at(self.desc_offset, &mut desc).map_err(Error::errno)?;
        rewrite_cid(&mut desc, cid).ok_or_else(|| errno(EINVAL))?;
        f.write_at(self.desc_offset, &desc).map_err(Error::errno)
    }

    /// One piece of qemu's zero write: the driver's zeroed grains when
    /// every grain of it can be one, else zeros through the data path.
    fn zero_piece(&mut self, offset: u64, bytes: u64) -> Result<(), Error> {
        let zeroed = self
            .pwritev(offset, bytes, None, true, true)
            .and_then(|()| self.pwritev(offset, bytes, None, true, false));
        match zeroed {
            Err(e) if e.raw_os_error() == Some(ENOTSUP) => {}
            other => return other,
        }
        let end = offset + bytes;
        let mut at = offset;
        #[allow(clippy::cast_possible_truncation, reason = "ZERO_CHUNK is 16 MiB")]
        let zeros = vec![0u8; bytes.min(ZERO_CHUNK) as usize];
        while at < end {
            let n = (end - at).min(ZERO_CHUNK);
            #[allow(clippy::cast_possible_truncation, reason = "at most ZERO_CHUNK")]
            self.pwritev(at, n, Some(&zeros[..n as usize]), false, false)?;
            at += n;
        }
        Ok(())
    }

    /// `pwrite_zeroes_alignment` (`vmdk_refresh_limits`): the largest
    /// grain of a sparse extent, at least 1.
    fn zero_alignment(&self) -> u64 {
        self.extents
            .iter()
            .filter(|e| !matches!(e.kind, ExtentKind::Flat { .. }))
            .map(WriteExtent::cluster_bytes)
            .max()
            .unwrap_or(1)
            .max(1)
    }
}

/// Whether `magic` starts a sparse extent (`KDMV` or `COWD`).
fn is_sparse_magic(magic: &[u8]) -> bool {
    magic == b"KDMV" || magic == b"COWD"
}

/// A compressed grain as qemu writes it: the marker (guest sector, then
/// the deflated length) and the deflated bytes.
fn grain_record(lba: u64, deflated: &[u8]) -> Result<Vec<u8>, Error> {
    let size = u32::try_from(deflated.len()).map_err(|_| errno(EINVAL))?;
    let mut out = Vec::with_capacity(GRAIN_MARKER_SIZE + deflated.len());
    out.extend_from_slice(&lba.to_le_bytes());
    out.extend_from_slice(&size.to_le_bytes());
    out.extend_from_slice(deflated);
    Ok(out)
}

/// The C string at the start of `buf` (up to its first NUL).
fn c_len(buf: &[u8]) -> usize {
    buf.iter().position(|&b| b == 0).unwrap_or(buf.len())
}

/// `vmdk_write_cid`'s text edit of the descriptor buffer `desc`: its last
/// byte made NUL; the text from `parentCID` saved; the hex CID and a
/// newline written after the first `CID` and its following byte; the
/// saved text appended. Bytes past the new text's end stay as they were.
/// `None` when the text has no `parentCID`.
pub fn rewrite_cid(desc: &mut [u8], cid: u32) -> Option<()> {
    let size = desc.len();
    if size == 0 {
        return None;
    }
    desc[size - 1] = 0;
    let text = c_len(desc);
    let parent = crate::descriptor::find(&desc[..text], b"parentCID")?;
    let saved = desc[parent..text].to_vec();
    let Some(name) = crate::descriptor::find(&desc[..text], b"CID") else { return Some(()) };
    // `p_name += sizeof("CID")`: past the name and one more byte.
    let p = name + 4;
    if p < size {
        let value = format!("{cid:x}\n");
        let room = size - p - 1;
        let n = value.len().min(room);
        desc[p..p + n].copy_from_slice(&value.as_bytes()[..n]);
        desc[p + n] = 0;
    }
    let len = c_len(desc);
    if len < size {
        let room = size - len - 1;
        let n = saved.len().min(room);
        desc[len..len + n].copy_from_slice(&saved[..n]);
        desc[len + n] = 0;
    }
    Some(())
}

impl ImageWriter for VmdkWriter {
    fn len(&self) -> u64 {
        self.total_sectors * SECTOR
    }

    /// `vmdk_has_zero_init`: a flat extent is its file, and a regular file
    /// reads as zeros; a sparse extent's unallocated grains read as zeros.
    fn has_zero_init(&self) -> bool {
        true
    }

    /// `vmdk_co_get_info`: the grain size (0 when the first extent is
    /// flat), and no answer when the extents differ in kind.
    fn cluster_size(&self) -> Option<u64> {
        let first = self.extents.first()?;
        let flat = |e: &WriteExtent| matches!(e.kind, ExtentKind::Flat { .. });
        let same = |e: &WriteExtent| {
            flat(e) == flat(first)
                && e.compressed() == first.compressed()
                && (flat(e) || e.cluster_sectors == first.cluster_sectors)
        };
        if !self.extents.iter().all(same) {
            return None;
        }
        Some(if flat(first) { 0 } else { first.cluster_bytes() })
    }

    fn needs_compressed_writes(&self) -> bool {
        self.extents.first().is_some_and(WriteExtent::compressed)
    }

    /// vmdk has a compressed write (`bdrv_co_pwritev_compressed`): zlib's
    /// `compress()` into twice the grain.
    fn compression(&self) -> Option<Compression> {
        let grain = self.extents.first().map_or(0, WriteExtent::cluster_bytes);
        let capacity = usize::try_from(grain * 2).ok()?;
        Some(Compression { codec: Compressor::VmdkDeflate, capacity, pad_to: 0 })
    }

    fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), Error> {
        self.pwritev(offset, data.len() as u64, Some(data), false, false)
    }

    /// `bdrv_co_do_pwrite_zeroes` over `vmdk_co_pwrite_zeroes`: the head
    /// up to a grain boundary, the whole grains, the tail, each tried as
    /// zeroed grains first.
    fn write_zeroes(&mut self, mut offset: u64, mut bytes: u64) -> Result<(), Error> {
        let alignment = self.zero_alignment();
        let mut head = offset % alignment;
        let tail = (offset + bytes) % alignment;
        while bytes > 0 {
            let mut num = bytes;
            if head != 0 {
                num = bytes.min(alignment - head);
                head = (head + num) % alignment;
            } else if tail != 0 && num > alignment {
                num -= tail;
            }
            self.zero_piece(offset, num)?;
            offset += num;
            bytes -= num;
        }
        Ok(())
    }

    /// `vmdk_co_pwritev_compressed`: the grain compressed on a compressed
    /// extent, written as it is on any other.
    fn write_compressed(
        &mut self,
        offset: u64,
        data: &[u8],
        _packed: Option<&[u8]>,
    ) -> Result<(), Error> {
        self.write(offset, data)
    }

    /// The compressed write of nothing: every extent file's length rounded
    /// up to whole sectors.
    fn end_compressed(&mut self) -> Result<(), Error> {
        for e in &self.extents {
            let f = self.file(e.file)?;
            let len = f.len().map_err(Error::errno)?;
            let rounded = len.div_ceil(SECTOR) * SECTOR;
            if rounded != len {
                f.set_len(rounded).map_err(Error::errno)?;
            }
        }
        Ok(())
    }

    /// The extent files beside the descriptor.
    fn other_files(&self) -> Vec<String> {
        self.extent_names.clone()
    }

    fn close(self: Box<Self>) -> Result<(), Error> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cid_rewrite_keeps_the_rest_and_leaves_old_bytes() {
        let mut d = b"# x\nCID=12345678\nparentCID=ffffffff\ncreateType=\"a\"\n\0\0\0".to_vec();
        rewrite_cid(&mut d, 0xabc).unwrap();
        assert_eq!(
            &d[..],
            &b"# x\nCID=abc\nparentCID=ffffffff\ncreateType=\"a\"\n\0\"a\"\n\0\0\0"[..]
        );
        let mut none = b"CID=1\n\0".to_vec();
        assert!(rewrite_cid(&mut none, 1).is_none());
    }

    #[test]
    fn grain_record_is_marker_then_data() {
        let r = grain_record(0x80, b"xy").unwrap();
        assert_eq!(r, [0x80, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, b'x', b'y']);
    }
}
