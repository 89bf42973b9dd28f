//! Reading guest data and block status from a vmdk image, as qemu's
//! `vmdk_co_block_status` and `vmdk_co_preadv` do: find the extent that
//! holds a guest sector, look the offset up in it ([`crate::tables`]),
//! and answer for the rest of that grain (a flat extent is one grain).
//!
//! A grain that is allocated is data in the extent file: at a known
//! offset when uncompressed (a flat extent's range also asks the block
//! layer for the file's holes: qemu's `RECURSE`), compressed otherwise
//! ([`crate::stream::inflate_grain`]). An unallocated grain is the
//! parent's (the block layer reads it), a zeroed grain reads as zeros,
//! and an entry qemu cannot use fails block status with `EIO`.

use crate::image::{Extent, ExtentKind, Image};
use crate::stream::inflate_grain;
use crate::tables::Lookup;
use instar_core::file::eio;
use instar_core::{Error, Mapping, Status};
use std::cell::RefCell;
use std::io;

/// Bytes per sector.
const SECTOR: u64 = 512;

/// The last compressed grain inflated: reads of a grain in pieces
/// inflate it once.
#[derive(Debug, Default)]
pub struct GrainCache(RefCell<Option<(usize, u64, Vec<u8>)>>);

/// `EINVAL`: a grain qemu cannot inflate, or a parent that is not the
/// one the image recorded.
pub const EINVAL: i32 = 22;

/// [`EINVAL`] as an error.
fn einval() -> io::Error {
    io::Error::from_raw_os_error(EINVAL)
}

/// The guest sector an extent starts at (`end_sector - sectors`).
fn first_sector(e: &Extent) -> i64 {
    e.end_sector.wrapping_sub(e.sectors)
}

/// Bytes per grain of an extent (all of a flat extent), as qemu's
/// `uint64_t` product; 0 only where qemu would divide by zero.
fn cluster_bytes(e: &Extent) -> u64 {
    e.cluster_sectors.wrapping_mul(SECTOR)
}

/// qemu's `vmdk_find_offset_in_cluster`: where the guest byte `offset`
/// falls in its grain of `e`.
fn offset_in_cluster(e: &Extent, offset: u64) -> Result<u64, Error> {
    #[allow(clippy::cast_sign_loss, reason = "qemu's uint64_t of the int64_t start")]
    let begin = (first_sector(e) as u64).wrapping_mul(SECTOR);
    let size = cluster_bytes(e);
    if size == 0 {
        return Err(Error::errno(eio()));
    }
    Ok(offset.wrapping_sub(begin) % size)
}

impl Image {
    /// qemu's `find_extent`: the first extent from `from` on that ends
    /// after guest sector `sector`.
    fn find_extent(&self, sector: i64, from: usize) -> Option<usize> {
        (from..self.extents.len()).find(|&i| sector < self.extents[i].end_sector)
    }

    /// The extent holding the guest byte `offset`, searched from `from`.
    fn extent_at(&self, offset: u64, from: usize) -> Result<usize, Error> {
        let sector = i64::try_from(offset >> 9).map_err(|_| Error::errno(eio()))?;
        self.find_extent(sector, from).ok_or_else(|| Error::errno(eio()))
    }

    /// qemu's `get_cluster_offset` (no allocation) of the guest byte
    /// `offset` in extent `e`.
    fn lookup(&self, e: &Extent, offset: u64) -> Lookup {
        match e.kind {
            ExtentKind::Flat { start } => Lookup::At(start),
            ExtentKind::Sparse(sp) => self.tables.lookup(
                &self.files,
                e.file,
                &sp,
                first_sector(e),
                e.cluster_sectors,
                offset,
            ),
        }
    }

    /// qemu's `vmdk_co_block_status` for `bytes` bytes at `offset`.
    pub fn status(&self, offset: u64, bytes: u64) -> Result<Mapping<'_>, Error> {
        let e = &self.extents[self.extent_at(offset, 0)?];
        let found = self.lookup(e, offset);
        let index = offset_in_cluster(e, offset)?;
        let pnum = (cluster_bytes(e) - index).min(bytes);
        Ok(match found {
            Lookup::Error => return Err(Error::errno(eio())),
            Lookup::Unallocated => Mapping::unmapped(Status::NONE, pnum),
            Lookup::Zeroed => Mapping::unmapped(Status::ZERO, pnum),
            Lookup::At(_) if e.compressed() => {
                Mapping::unmapped(Status::DATA | Status::COMPRESSED, pnum)
            }
            Lookup::At(cluster) => {
                let status =
                    if e.is_flat() { Status::DATA | Status::RECURSE } else { Status::DATA };
                let file = &self.files[e.file].file;
                Mapping::at(status, pnum, file, cluster.wrapping_add(index))
            }
        })
    }

    /// qemu's `vmdk_co_preadv` without the parent: `buf` filled from
    /// `offset`, grain by grain; grains that are not allocated (or whose
    /// entry qemu cannot use: qemu's read takes those from the parent
    /// too) read as zeros.
    pub fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), Error> {
        let mut done = 0usize;
        let mut hint = 0usize;
        while done < buf.len() {
            let at = offset + done as u64;
            hint = self.extent_at(at, hint)?;
            let e = &self.extents[hint];
            let found = self.lookup(e, at);
            let index = offset_in_cluster(e, at)?;
            let rest = (buf.len() - done) as u64;
            // At most `rest`, which fits the buffer.
            #[allow(clippy::cast_possible_truncation, reason = "at most the buffer's length")]
            let n = (cluster_bytes(e) - index).min(rest) as usize;
            let part = &mut buf[done..done + n];
            match found {
                Lookup::At(cluster) => self.read_extent(e, cluster, index, part)?,
                Lookup::Unallocated | Lookup::Zeroed | Lookup::Error => part.fill(0),
            }
            done += n;
        }
        Ok(())
    }

    /// qemu's `vmdk_read_extent`: `buf` from byte `index` of the grain at
    /// byte `cluster` of the extent file.
    fn read_extent(
        &self,
        e: &Extent,
        cluster: u64,
        index: u64,
        buf: &mut [u8],
    ) -> Result<(), Error> {
        let file = &self.files[e.file].file;
        let ExtentKind::Sparse(sp) = e.kind else {
            return file.read_at(cluster.wrapping_add(index), buf).map_err(Error::errno);
        };
        if !sp.compressed {
            return file.read_at(cluster.wrapping_add(index), buf).map_err(Error::errno);
        }
        let mut cache = self.grain.0.borrow_mut();
        let hit = matches!(&*cache, Some((f, c, _)) if *f == e.file && *c == cluster);
        if !hit {
            let grain = inflate_grain(file, cluster, e.cluster_sectors, sp.has_marker)
                .map_err(Error::errno)?;
            *cache = Some((e.file, cluster, grain));
        }
        let Some((_, _, grain)) = &*cache else {
            return Err(Error::errno(eio()));
        };
        let end = index.checked_add(buf.len() as u64).ok_or_else(|| Error::errno(einval()))?;
        let range = usize::try_from(index).ok().zip(usize::try_from(end).ok());
        match range.and_then(|(from, to)| grain.get(from..to)) {
            Some(bytes) => buf.copy_from_slice(bytes),
            None => return Err(Error::errno(einval())),
        }
        Ok(())
    }
}
