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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grain::SparseLayout;
    use crate::stream::Marker;
    use instar_core::file::MemoryFiles;
    use instar_core::ImageFile;

    const GRAIN: usize = 65536;

    /// A zlib stream of `data` in stored blocks (no compression needed to
    /// test the reading).
    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut z = vec![0x78, 0x01];
        let chunks: Vec<&[u8]> = data.chunks(65535).collect();
        for (i, c) in chunks.iter().enumerate() {
            z.push(u8::from(i + 1 == chunks.len()));
            let len = u16::try_from(c.len()).unwrap();
            z.extend_from_slice(&len.to_le_bytes());
            z.extend_from_slice(&(!len).to_le_bytes());
            z.extend_from_slice(c);
        }
        let (mut a, mut b) = (1u32, 0u32);
        for &x in data {
            a = (a + u32::from(x)) % 65521;
            b = (b + a) % 65521;
        }
        z.extend_from_slice(&((b << 16) | a).to_be_bytes());
        z
    }

    /// A monolithicSparse (or, `compress`, streamOptimized) image of 1 MiB
    /// with the grain directory and its one table laid out as qemu lays
    /// them out; `grains` are (grain index, grain table entry, bytes at
    /// that entry's sector).
    fn sparse(compress: bool, zeroed: bool, grains: &[(usize, u32, Vec<u8>)]) -> Vec<u8> {
        let l = SparseLayout::new(1 << 20);
        let mut b = vec![0u8; usize::try_from(l.file_len()).unwrap()];
        b[..79].copy_from_slice(&l.header(compress, zeroed).to_bytes());
        let desc = b"# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\n";
        b[512..512 + desc.len()].copy_from_slice(desc);
        let gd = usize::try_from(l.gd_offset).unwrap() * 512;
        let directory = l.directory(l.gd_offset);
        b[gd..gd + directory.len()].copy_from_slice(&directory);
        let table = usize::try_from(crate::grain::entry(&directory, 0)).unwrap() * 512;
        for (index, entry, bytes) in grains {
            let at = table + index * 4;
            b[at..at + 4].copy_from_slice(&entry.to_le_bytes());
            let sector = usize::try_from(*entry).unwrap() * 512;
            if b.len() < sector + bytes.len() {
                b.resize(sector + bytes.len(), 0);
            }
            b[sector..sector + bytes.len()].copy_from_slice(bytes);
        }
        b
    }

    fn open(bytes: Vec<u8>) -> Image {
        Image::open(ImageFile::from_bytes("t.vmdk", bytes)).unwrap()
    }

    fn errno(e: &Error) -> Option<i32> {
        e.raw_os_error()
    }

    #[test]
    fn sparse_grains_answer_for_the_rest_of_their_grain() {
        let data: Vec<u8> = (0..GRAIN).map(|i| u8::try_from(i % 251).unwrap()).collect();
        let img = open(sparse(false, true, &[(1, 128, data.clone()), (3, 1, Vec::new())]));
        // Grain 0: unallocated, from 1000 to the grain's end.
        let m = img.status(1000, 1 << 20).unwrap();
        assert_eq!((m.status, m.bytes), (Status::NONE, GRAIN as u64 - 1000));
        // Grain 1: data at sector 128 of the image file itself.
        let m = img.status(GRAIN as u64 + 512, 100).unwrap();
        assert_eq!((m.status, m.bytes), (Status::DATA | Status::OFFSET_VALID, 100));
        let host = m.host.unwrap();
        assert_eq!((host.file.name(), host.offset), ("t.vmdk", 128 * 512 + 512));
        // Grain 3: a zeroed grain.
        assert_eq!(img.status(3 * GRAIN as u64, 1 << 20).unwrap().status, Status::ZERO);
        // Reads across grains: zeros, the grain, zeros.
        let mut buf = vec![0xffu8; 3 * GRAIN];
        img.read(GRAIN as u64 / 2, &mut buf).unwrap();
        assert!(buf[..GRAIN / 2].iter().all(|&x| x == 0));
        assert_eq!(&buf[GRAIN / 2..GRAIN / 2 + GRAIN], &data[..]);
        assert!(buf[GRAIN / 2 + GRAIN..].iter().all(|&x| x == 0));
    }

    #[test]
    fn entries_qemu_cannot_use_fail_block_status_with_eio() {
        let mut img = open(sparse(false, false, &[]));
        if let ExtentKind::Sparse(sp) = &mut img.extents[0].kind {
            // A directory too short for the extent.
            sp.l1_size = 0;
        }
        assert_eq!(errno(&img.status(0, 512).unwrap_err()), Some(5));
        // qemu's read takes such a grain from the parent (zeros here).
        let mut buf = [1u8; 512];
        img.read(0, &mut buf).unwrap();
        assert_eq!(buf, [0u8; 512]);
    }

    #[test]
    fn lengths_qemu_cannot_report_fail_as_its_getlength() {
        use instar_core::Image as _;
        let mut img = open(sparse(false, false, &[]));
        assert_eq!(img.byte_length().unwrap(), 1 << 20);
        img.extents[0].end_sector = i64::MAX / 512 + 1;
        assert_eq!(img.byte_length().unwrap_err().raw_os_error(), Some(27));
        img.extents[0].end_sector = -5;
        assert_eq!(img.byte_length().unwrap_err().raw_os_error(), Some(5));
    }

    /// A grain marker for grain `lba` and its stream.
    fn marked(lba: u64, stream: &[u8], size: u32) -> Vec<u8> {
        let mut g = Marker { val: lba, size, kind: 0 }.to_bytes()[..12].to_vec();
        g.extend_from_slice(stream);
        g
    }

    #[test]
    fn compressed_grains_inflate_as_qemu_uncompresses() {
        let data: Vec<u8> = (0..GRAIN).map(|i| u8::try_from(i % 13).unwrap()).collect();
        let z = zlib(&data);
        let size = u32::try_from(z.len()).unwrap();
        let short = zlib(&data[..1000]);
        let short_size = u32::try_from(short.len()).unwrap();
        let bad = {
            let mut b = z.clone();
            let last = b.len() - 1;
            b[last] ^= 1;
            b
        };
        let grains = [
            (0, 128, marked(0, &z, size)),
            (1, 400, marked(128, &short, short_size)),
            (2, 600, marked(256, &z, 0)),
            (3, 800, marked(384, &z, 3 << 16)),
            (4, 1000, marked(512, &bad, size)),
            (5, 1200, marked(640, &z, size - 1)),
            (6, 1400, marked(768, &z, size + 100)),
        ];
        let img = open(sparse(true, false, &grains));
        let m = img.status(0, 1 << 20).unwrap();
        assert_eq!((m.status, m.bytes), (Status::DATA | Status::COMPRESSED, GRAIN as u64));
        assert!(m.host.is_none());
        let mut buf = vec![0u8; GRAIN];
        img.read(0, &mut buf).unwrap();
        assert_eq!(buf, data);
        // A grain that inflates to 1000 bytes: reads within it only.
        let mut head = [0u8; 1000];
        img.read(GRAIN as u64, &mut head).unwrap();
        assert_eq!(&head[..], &data[..1000]);
        let read = |at: usize, len: usize| {
            let mut b = vec![0u8; len];
            img.read((at * GRAIN) as u64, &mut b).map(|()| b).map_err(|e| errno(&e))
        };
        assert_eq!(read(1, 1001), Err(Some(EINVAL)));
        assert_eq!(read(1, 1000).unwrap(), &data[..1000]);
        // Length 0, longer than two grains, a bad checksum, the stream
        // cut short by its length: EINVAL. Trailing bytes are ignored.
        for grain in [2, 3, 4, 5] {
            assert_eq!(read(grain, 512), Err(Some(EINVAL)), "grain {grain}");
        }
        assert_eq!(read(6, GRAIN).unwrap(), data);
    }

    #[test]
    fn flat_extents_are_their_files_and_ask_for_holes() {
        let desc = "# Disk DescriptorFile\nversion=1\nCID=1\nparentCID=ffffffff\n\
                    createType=\"monolithicFlat\"\nRW 8 FLAT \"a.bin\" 0\nRW 8 FLAT \"b.bin\" 2\n";
        let mut beside = std::collections::BTreeMap::new();
        beside.insert("a.bin".to_string(), vec![0xaau8; 4096]);
        beside.insert("b.bin".to_string(), vec![0xbbu8; 2048]);
        let file =
            ImageFile::in_memory("d.vmdk", desc.as_bytes().to_vec(), MemoryFiles::new(beside));
        let img = Image::open(file).unwrap();
        let m = img.status(100, 1 << 20).unwrap();
        let flat = Status::DATA | Status::RECURSE | Status::OFFSET_VALID;
        assert_eq!((m.status, m.bytes), (flat, 4096 - 100));
        assert_eq!(m.host.map(|h| (h.file.name(), h.offset)), Some(("a.bin", 100)));
        let m = img.status(4096 + 512, 1 << 20).unwrap();
        assert_eq!(m.bytes, 3584);
        assert_eq!(m.host.map(|h| (h.file.name(), h.offset)), Some(("b.bin", 1536)));
        // b.bin ends 1 KiB into its extent: the rest reads as zeros.
        let mut buf = vec![0u8; 8192];
        img.read(0, &mut buf).unwrap();
        assert!(buf[..4096].iter().all(|&x| x == 0xaa));
        assert!(buf[4096..4096 + 1024].iter().all(|&x| x == 0xbb));
        assert!(buf[4096 + 1024..].iter().all(|&x| x == 0));
    }
}
