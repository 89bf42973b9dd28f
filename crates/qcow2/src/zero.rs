//! Zero writes into a qcow2 image, as qemu's block layer and driver make
//! them (`bdrv_co_do_pwrite_zeroes`, then `qcow2_co_pwrite_zeroes`,
//! `qcow2_subcluster_zeroize`, `zero_in_l2_slice`,
//! `zero_l2_subclusters`, and for version 2 images
//! `qcow2_cluster_discard`): whole (sub)clusters get the zero flag (and
//! lose their host cluster, which is discarded in the file); a part of a
//! (sub)cluster that is not already zero is written as data, zeros from
//! a buffer, as the block layer's fallback does.

use crate::tables::{L2_BITMAP_ALL_ALLOC, QCOW_OFLAG_ZERO};
use crate::write::{errno, small, ClusterType, Qcow2Writer, ENOTSUP};
use instar_core::Error;

/// qemu's `MAX_BOUNCE_BUFFER`: the longest fallback write of zeros.
const MAX_BOUNCE_BUFFER: u64 = 32768 * 512;

/// The zero half of an extended L2 bitmap (`QCOW_L2_BITMAP_ALL_ZEROES`).
const L2_BITMAP_ALL_ZEROES: u64 = L2_BITMAP_ALL_ALLOC << 32;

/// What the driver's zero write answered.
enum Zeroed {
    Done,
    /// `-ENOTSUP`: the block layer writes zeros as data instead.
    Fallback,
}

impl Qcow2Writer {
    /// `bdrv_co_do_pwrite_zeroes` on this image: the request cut at
    /// subcluster boundaries, each piece zeroed by the driver or, where it
    /// cannot, written as zeros.
    pub(crate) fn zero_request(&mut self, mut offset: u64, mut bytes: u64) -> Result<(), Error> {
        let align = self.g.subcluster_size();
        let mut head = offset % align;
        let tail = (offset + bytes) % align;
        while bytes > 0 {
            let mut num = bytes;
            if head != 0 {
                num = bytes.min(MAX_BOUNCE_BUFFER).min(align - head);
                head = (head + num) % align;
            } else if tail != 0 && num > align {
                num -= tail;
            }
            if let Zeroed::Fallback = self.pwrite_zeroes(offset, num)? {
                // The block layer's own write checks that the driver is
                // still there (a corruption may have removed it).
                self.usable()?;
                num = num.min(MAX_BOUNCE_BUFFER);
                let zeros = vec![0u8; small(num)];
                self.write_data(offset, &zeros)?;
            }
            offset += num;
            bytes -= num;
        }
        Ok(())
    }

    /// `qcow2_co_pwrite_zeroes`.
    fn pwrite_zeroes(&mut self, mut offset: u64, mut bytes: u64) -> Result<Zeroed, Error> {
        let sc = self.g.subcluster_size();
        let head = offset % sc;
        let mut tail = (offset + bytes).div_ceil(sc) * sc - (offset + bytes);
        if offset + bytes == self.size {
            tail = 0;
        }
        if head != 0 || tail != 0 {
            if !(self.reads_zero(offset - head, head)? && self.reads_zero(offset + bytes, tail)?) {
                return Ok(Zeroed::Fallback);
            }
            offset -= head;
            bytes = sc;
            let kind = self.subcluster_kind(offset)?;
            use crate::tables::SubclusterType as S;
            if !matches!(
                kind,
                S::UnallocatedPlain | S::UnallocatedAlloc | S::ZeroPlain | S::ZeroAlloc
            ) {
                return Ok(Zeroed::Fallback);
            }
        }
        self.zeroize(offset, bytes)
    }

    /// The subcluster type at `guest`, without allocating anything.
    fn subcluster_kind(&mut self, guest: u64) -> Result<crate::tables::SubclusterType, Error> {
        let (table, index) = self.find_table(guest);
        let (entry, bitmap) = if table == 0 { (0, 0) } else { self.entry(table, index)? };
        #[allow(clippy::cast_possible_truncation, reason = "masked to below 32")]
        let sc = (((guest & (self.cs - 1)) >> self.sc_bits()) & 31) as u32;
        Ok(self.format().subcluster_type(entry, bitmap, sc))
    }

    /// qemu's `is_zero` on this image: whether `[offset, offset + bytes)`
    /// (clamped to the disk) reads as zeros by its block status: zero or
    /// unallocated subclusters over no backing file, or over what the
    /// backing file's block status calls zeros.
    pub(crate) fn reads_zero(&mut self, offset: u64, bytes: u64) -> Result<bool, Error> {
        let end = (offset + bytes).min(self.size);
        if end > offset {
            self.detect_prealloc();
            if self.broken {
                // The block status query failed.
                return Ok(false);
            }
        }
        let mut at = offset;
        let sc = self.g.subcluster_size();
        while at < end {
            let run = (sc - at % sc).min(end - at);
            use crate::tables::SubclusterType as S;
            match self.subcluster_kind(at)? {
                S::ZeroPlain | S::ZeroAlloc => {}
                S::UnallocatedPlain | S::UnallocatedAlloc => {
                    if let Some(b) = &self.backing {
                        if at < b.guest_len() {
                            let zero = match b.status_is_zero(at, run)? {
                                Some(zero) => zero,
                                None => {
                                    let mut buf = vec![0u8; small(run)];
                                    b.read_guest(at, &mut buf)?;
                                    buf.iter().all(|&x| x == 0)
                                }
                            };
                            if !zero {
                                return Ok(false);
                            }
                        }
                    }
                }
                _ => return Ok(false),
            }
            at += run;
        }
        Ok(true)
    }

    /// `qcow2_subcluster_zeroize`: `offset` and the end are subcluster
    /// aligned (or the end is the disk's).
    fn zeroize(&mut self, mut offset: u64, bytes: u64) -> Result<Zeroed, Error> {
        let mut end = offset + bytes;
        if self.data_raw {
            if let Some(d) = &self.data {
                d.zero_range(offset, bytes).map_err(Error::errno)?;
            }
        }
        if self.version < 3 {
            if self.backing.is_some() {
                return Ok(Zeroed::Fallback);
            }
            self.discard(offset, bytes)?;
            return Ok(Zeroed::Done);
        }
        let cs = self.cs;
        let head = end.min(offset.div_ceil(cs) * cs) - offset;
        offset += head;
        let tail = if end >= self.size { 0 } else { end - offset.max(end & !(cs - 1)) };
        end -= tail;
        let sc = self.g.subcluster_size();
        if head > 0 && !self.zero_subclusters(offset - head, head.div_ceil(sc))? {
            return Ok(Zeroed::Fallback);
        }
        let mut clusters = self.g.size_to_clusters(end - offset);
        while clusters > 0 {
            let cleared = self.zero_in_table(offset, clusters)?;
            clusters -= cleared;
            offset += cleared * cs;
        }
        if tail > 0 && !self.zero_subclusters(end, tail.div_ceil(sc))? {
            return Ok(Zeroed::Fallback);
        }
        Ok(Zeroed::Done)
    }

    /// `zero_l2_subclusters`: `n` subclusters from `offset` (within one
    /// cluster) get their zero bits. `false` for a compressed cluster.
    fn zero_subclusters(&mut self, offset: u64, n: u64) -> Result<bool, Error> {
        let (table, index) = self.cluster_table(offset)?;
        let (entry, bitmap) = self.entry(table, index)?;
        match self.cluster_type(entry) {
            ClusterType::Compressed => return Ok(false),
            ClusterType::Normal | ClusterType::Unallocated => {}
            _ => return Err(errno(5)),
        }
        let first = ((offset & (self.cs - 1)) >> self.sc_bits()) & 31;
        let range = ((1u64 << (first + n)) - 1) & !((1u64 << first) - 1);
        let new = (bitmap | (range << 32)) & !range;
        if new != bitmap {
            self.set_entry(table, index, entry, Some(new))?;
        }
        Ok(true)
    }

    /// `zero_in_l2_slice` with `BDRV_REQ_MAY_UNMAP`: up to `n` whole
    /// clusters from `offset`, to the end of their L2 table; returns how
    /// many it covered.
    fn zero_in_table(&mut self, offset: u64, n: u64) -> Result<u64, Error> {
        let (table, index) = self.cluster_table(offset)?;
        let n = n.min(self.g.l2_entries() - index);
        for i in 0..n {
            let (old, old_bitmap) = self.entry(table, index + i)?;
            let kind = self.cluster_type(old);
            let unmap = matches!(
                kind,
                ClusterType::Compressed | ClusterType::Normal | ClusterType::ZeroAlloc
            );
            let mut new = if unmap { 0 } else { old };
            let new_bitmap = if self.g.extended_l2 {
                L2_BITMAP_ALL_ZEROES
            } else {
                new |= QCOW_OFLAG_ZERO;
                0
            };
            if old == new && old_bitmap == new_bitmap {
                continue;
            }
            self.set_entry(table, index + i, new, Some(new_bitmap))?;
            if unmap {
                self.free_any_cluster(old, true);
            }
        }
        Ok(n)
    }

    /// `qcow2_cluster_discard` (not a full discard), what a version 2
    /// image does for zeros: allocated clusters become unallocated.
    fn discard(&mut self, mut offset: u64, bytes: u64) -> Result<(), Error> {
        let mut clusters = self.g.size_to_clusters(bytes);
        while clusters > 0 {
            let (table, index) = self.cluster_table(offset)?;
            let n = clusters.min(self.g.l2_entries() - index);
            for i in 0..n {
                let (old, _) = self.entry(table, index + i)?;
                let kind = self.cluster_type(old);
                let allocated = matches!(
                    kind,
                    ClusterType::Compressed | ClusterType::Normal | ClusterType::ZeroAlloc
                );
                if !(self.backing.is_some() || allocated) || old == 0 {
                    continue;
                }
                self.set_entry(table, index + i, 0, Some(0))?;
                self.free_any_cluster(old, true);
            }
            clusters -= n;
            offset += n * self.cs;
        }
        Ok(())
    }
}

/// qemu's `-ENOTSUP` as an error, for writes this image cannot take.
pub(crate) fn not_supported() -> Error {
    errno(ENOTSUP)
}
