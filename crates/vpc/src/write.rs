//! Writing a VHD as convert's target, as qemu's `vpc_co_pwritev` writes.
//!
//! A fixed disk is written in place: guest offset = file offset, the
//! footer untouched. A dynamic disk allocates a block the first time a
//! write touches it, at qemu's `free_data_block_offset` (the end of the
//! allocated blocks), in the order of the writes: the block's sector
//! bitmap (all ones) where the footer was, the footer rewritten after
//! the block, then the block's BAT entry. A write into a block that is
//! not the last one whose bitmap qemu wrote rewrites that bitmap (all
//! ones) first, as `get_image_offset` does on writes. vpc has no zero
//! write of its own: qemu's block layer writes zeros through the same
//! path, so a zero write allocates like a data write.

use crate::bat::{self, UNALLOCATED};
use crate::footer::{DiskType, FOOTER_SIZE};
use crate::geometry::SECTOR_SIZE;
use crate::image::{Layout, VpcImage};
use instar_core::{Error, ImageFile, ImageWriter, QemuDialect, TargetFile};
use std::collections::BTreeMap;
use std::io;

/// The dynamic disk's block state, as `vpc_open` leaves it in
/// `BDRVVPCState`.
#[derive(Debug)]
struct Dynamic {
    /// Where the BAT is.
    table_offset: u64,
    /// The BAT entries qemu may look at: the disk's blocks, at most the
    /// header's `max_table_entries`.
    entries: u64,
    /// Bytes of guest data per block.
    block_size: u64,
    /// Bytes of the sector bitmap in front of each block.
    bitmap_size: u64,
    /// Where the next block goes (`free_data_block_offset`).
    free: u64,
    /// The bitmap last written (`last_bitmap_offset`).
    last_bitmap: Option<u64>,
    /// The file's length when opened: qemu read the BAT then, and what
    /// lay past the end read as zeros.
    opened_len: u64,
    /// Entries as qemu holds them in memory where they differ from, or
    /// may no longer be read back from, the file: those allocated here,
    /// and those a later write of the file covered.
    held: BTreeMap<u64, u32>,
}

/// A VHD opened for writing.
#[derive(Debug)]
pub struct VpcWriter {
    file: TargetFile,
    /// The footer as read at open (qemu's `s->footer`), written after
    /// every new block.
    footer: [u8; FOOTER_SIZE],
    /// The guest size in bytes.
    size: u64,
    /// `None` for a disk whose footer says fixed.
    dynamic: Option<Dynamic>,
}

impl VpcWriter {
    /// Opens the VHD in `name` for writing with the checks of `vpc_open`
    /// (`dialect`'s), as convert opens an existing target.
    pub fn open(name: &str, dialect: QemuDialect) -> Result<VpcWriter, Error> {
        let read = ImageFile::open(name).map_err(|e| Error::open_errno(name, e))?;
        let image = VpcImage::open(read, dialect).map_err(|e| e.into_open_error(name))?;
        let file = TargetFile::open(name).map_err(|e| Error::open_errno(name, e))?;
        // qemu keeps the footer's bytes as read, reserved bytes and all.
        let footer = crate::image::read_footer(&image.file, image.footer_offset)
            .map_err(|e| Error::open_errno(name, e))?;
        let size = image.total_sectors * SECTOR_SIZE;
        let fixed = image.footer.disk_type() == Some(DiskType::Fixed);
        let dynamic = match (&image.layout, fixed) {
            (Layout::Dynamic { header, free_data_block_offset, .. }, false) => {
                let block_size = u64::from(header.block_size);
                Some(Dynamic {
                    table_offset: header.table_offset,
                    entries: u64::from(header.max_table_entries).min(size.div_ceil(block_size)),
                    block_size,
                    bitmap_size: bat::bitmap_bytes(header.block_size),
                    free: *free_data_block_offset,
                    last_bitmap: None,
                    opened_len: image.file.len(),
                    held: BTreeMap::new(),
                })
            }
            // A fixed footer wins whatever the layout (qemu asks the
            // footer's type on every request).
            _ => None,
        };
        Ok(VpcWriter { file, footer, size, dynamic })
    }

    /// Writes `buf` at `offset` of the file, first keeping the BAT
    /// entries it covers as qemu holds them.
    fn put(&mut self, offset: u64, buf: &[u8]) -> Result<(), Error> {
        if let Some(d) = self.dynamic.as_mut() {
            d.hold_covered(&self.file, offset, buf.len() as u64)?;
        }
        self.file.write_at(offset, buf).map_err(Error::errno)
    }

    /// qemu's `vpc_co_pwritev` on a dynamic disk: block by block, each
    /// allocated on first touch.
    fn write_dynamic(&mut self, mut offset: u64, mut data: &[u8]) -> Result<(), Error> {
        while !data.is_empty() {
            let d = self.dynamic.as_ref().ok_or_else(eio)?;
            let (index, within) = (offset / d.block_size, offset % d.block_size);
            #[allow(clippy::cast_possible_truncation, reason = "at most the data's length")]
            let n = (d.block_size - within).min(data.len() as u64) as usize;
            let host = match self.block_of(index)? {
                Some(bitmap) => {
                    self.mark_bitmap(bitmap)?;
                    bitmap
                }
                None => self.allocate(index, offset)?,
            };
            let d = self.dynamic.as_ref().ok_or_else(eio)?;
            let at = host + d.bitmap_size + within;
            self.put(at, &data[..n])?;
            offset += n as u64;
            data = &data[n..];
        }
        Ok(())
    }

    /// Where block `index`'s bitmap is, `None` when it is unallocated
    /// (or past the BAT's entries).
    fn block_of(&self, index: u64) -> Result<Option<u64>, Error> {
        let d = self.dynamic.as_ref().ok_or_else(eio)?;
        match d.entry(&self.file, index)? {
            None | Some(UNALLOCATED) => Ok(None),
            Some(sector) => Ok(Some(u64::from(sector) * SECTOR_SIZE)),
        }
    }

    /// `get_image_offset`'s bitmap write: all ones, unless this bitmap
    /// was the last one written.
    fn mark_bitmap(&mut self, bitmap: u64) -> Result<(), Error> {
        let d = self.dynamic.as_mut().ok_or_else(eio)?;
        if d.last_bitmap == Some(bitmap) {
            return Ok(());
        }
        d.last_bitmap = Some(bitmap);
        let ones = ones(d.bitmap_size)?;
        self.put(bitmap, &ones)
    }

    /// qemu's `alloc_block`: the block at the end, its bitmap, the footer
    /// after it, its BAT entry. Returns where the bitmap is.
    fn allocate(&mut self, index: u64, offset: u64) -> Result<u64, Error> {
        if offset > self.size {
            return Err(Error::errno(io::Error::from_raw_os_error(22)));
        }
        let d = self.dynamic.as_ref().ok_or_else(eio)?;
        if index >= d.entries {
            // qemu's pagetable has max_table_entries entries and the open
            // made them cover the disk: a write past them cannot happen.
            return Err(eio());
        }
        let bitmap = d.free;
        let sector = u32::try_from(bitmap / SECTOR_SIZE)
            .map_err(|_| Error::errno(io::Error::from_raw_os_error(27)))?;
        let next = bitmap
            .checked_add(d.block_size + d.bitmap_size)
            .ok_or_else(|| Error::errno(io::Error::from_raw_os_error(27)))?;
        let entry_at = d.table_offset + index * bat::ENTRY_SIZE;
        let ones = ones(d.bitmap_size)?;
        if let Some(d) = self.dynamic.as_mut() {
            d.held.insert(index, sector);
        }
        self.put(bitmap, &ones)?;
        if let Some(d) = self.dynamic.as_mut() {
            d.free = next;
        }
        let footer = self.footer;
        self.put(next, &footer)?;
        self.put(entry_at, &sector.to_be_bytes())?;
        Ok(bitmap)
    }
}

impl Dynamic {
    /// Entry `index` as qemu's in-memory BAT holds it; `None` past the
    /// BAT's entries.
    fn entry(&self, file: &TargetFile, index: u64) -> Result<Option<u32>, Error> {
        if index >= self.entries {
            return Ok(None);
        }
        if let Some(&held) = self.held.get(&index) {
            return Ok(Some(held));
        }
        Ok(Some(self.entry_as_opened(file, index)?))
    }

    /// Entry `index` as the file held it when opened (bytes past the end
    /// then read as zeros).
    fn entry_as_opened(&self, file: &TargetFile, index: u64) -> Result<u32, Error> {
        let at = self.table_offset + index * bat::ENTRY_SIZE;
        let mut raw = [0u8; 4];
        file.read_at(at, &mut raw).map_err(Error::errno)?;
        for (i, b) in raw.iter_mut().enumerate() {
            if at + i as u64 >= self.opened_len {
                *b = 0;
            }
        }
        Ok(u32::from_be_bytes(raw))
    }

    /// Before `bytes` at `offset` of the file are overwritten: keeps the
    /// BAT entries in that range as they were, since qemu read them at
    /// open and does not read them again.
    fn hold_covered(&mut self, file: &TargetFile, offset: u64, bytes: u64) -> Result<(), Error> {
        let table_end = self.table_offset + self.entries * bat::ENTRY_SIZE;
        let end = offset.saturating_add(bytes);
        if end <= self.table_offset || offset >= table_end {
            return Ok(());
        }
        let first = offset.max(self.table_offset).saturating_sub(self.table_offset) / 4;
        let last = (end.min(table_end) - self.table_offset).div_ceil(bat::ENTRY_SIZE);
        for index in first..last {
            if !self.held.contains_key(&index) {
                let value = self.entry_as_opened(file, index)?;
                self.held.insert(index, value);
            }
        }
        Ok(())
    }
}

/// A bitmap of `bytes` bytes, all ones.
fn ones(bytes: u64) -> Result<Vec<u8>, Error> {
    let len = usize::try_from(bytes).map_err(|_| eio())?;
    Ok(vec![0xFF; len])
}

fn eio() -> Error {
    Error::errno(instar_core::file::eio())
}

impl ImageWriter for VpcWriter {
    fn len(&self) -> u64 {
        self.size
    }

    /// `vpc_has_zero_init`: a dynamic disk reads zeros where nothing was
    /// allocated; a fixed one is its file (a regular file: zeros).
    fn has_zero_init(&self) -> bool {
        true
    }

    /// `vpc_co_get_info`: the block size, 0 for a fixed disk.
    fn cluster_size(&self) -> Option<u64> {
        Some(self.dynamic.as_ref().map_or(0, |d| d.block_size))
    }

    fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), Error> {
        if self.dynamic.is_some() {
            self.write_dynamic(offset, data)
        } else {
            self.file.write_at(offset, data).map_err(Error::errno)
        }
    }

    /// The block layer's zero write for a driver without one: zeros
    /// written through `vpc_co_pwritev`, a bounce buffer at a time.
    fn write_zeroes(&mut self, offset: u64, bytes: u64) -> Result<(), Error> {
        instar_core::write::zeros_through_writes(offset, bytes, |at, zeros| self.write(at, zeros))
    }

    fn close(self: Box<Self>) -> Result<(), Error> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_chunk_is_qemus_bounce_buffer() {
        assert_eq!(instar_core::write::ZERO_CHUNK, 16 << 20);
    }
}
