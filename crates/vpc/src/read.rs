//! Reading a VHD's guest data and answering block status as qemu's
//! `vpc_co_preadv` and `vpc_co_block_status` do.
//!
//! What decides is the footer's disk type, not where the footer was found:
//! a disk whose footer says fixed reads straight from the file at the
//! guest offset, whatever else the file holds. Any other disk reads
//! through the BAT: a block's data follows its sector bitmap, and qemu
//! never reads the bitmap (a block is all data or, unallocated, all
//! zeros), nor a differencing disk's parent (qemu's vpc has no backing
//! files: what the child leaves unallocated reads as zeros).

use crate::bat::{self, UNALLOCATED};
use crate::footer::DiskType;
use crate::geometry::SECTOR_SIZE;
use crate::image::{Layout, VpcImage};
use instar_core::file::eio;
use instar_core::table::TableWindow;
use instar_core::{Error, Mapping, Status};

/// Where the blocks of a dynamic disk are: the BAT and the block shape.
#[derive(Debug)]
pub struct Blocks {
    /// The BAT, entries read on demand (the open made sure that the table
    /// and every block it points at lie within the file).
    table: TableWindow,
    /// Bytes of guest data per block.
    block_size: u64,
    /// Bytes of the sector bitmap in front of each block's data.
    bitmap_size: u64,
}

impl Blocks {
    /// The blocks of a disk opened with `layout`; `None` for a disk with
    /// no BAT (a fixed layout).
    pub fn of(layout: &Layout) -> Option<Blocks> {
        match layout {
            Layout::Fixed => None,
            Layout::Dynamic { header, .. } => Some(Blocks {
                table: TableWindow::new(
                    header.table_offset,
                    bat::ENTRY_SIZE,
                    u64::from(header.max_table_entries),
                ),
                block_size: u64::from(header.block_size),
                bitmap_size: bat::bitmap_bytes(header.block_size),
            }),
        }
    }

    /// qemu's `get_image_offset` for reads: where the byte at guest
    /// `offset` is in the file, `None` when its block is unallocated (an
    /// entry of [`UNALLOCATED`], or past the BAT's entries).
    fn host_offset(&self, image: &VpcImage, offset: u64) -> Result<Option<u64>, Error> {
        let index = offset / self.block_size;
        let entry =
            self.table.entry(&image.file, index, |raw| bat::entry(raw, 0)).map_err(Error::errno)?;
        Ok(match entry {
            None | Some(UNALLOCATED) => None,
            // At most 2 TiB + 2 GiB + 2 GiB: no overflow.
            Some(sector) => {
                Some(u64::from(sector) * SECTOR_SIZE + self.bitmap_size + offset % self.block_size)
            }
        })
    }

    /// The bytes from `offset` to the end of its block.
    fn rest_of_block(&self, offset: u64) -> u64 {
        self.block_size - offset % self.block_size
    }
}

impl VpcImage {
    /// Whether qemu reads the disk as fixed: its footer says so.
    fn reads_as_fixed(&self) -> bool {
        self.footer.disk_type() == Some(DiskType::Fixed)
    }

    /// qemu's `vpc_co_block_status` for `bytes` bytes at `offset`: a fixed
    /// disk is data at the same offset of the file (and the block layer
    /// looks at the file's holes); an allocated block is data up to the
    /// end of the block at most (its successor need not follow it); a run
    /// of unallocated blocks reads as zeros.
    pub fn status(&self, offset: u64, bytes: u64) -> Result<Mapping<'_>, Error> {
        let blocks = match (&self.blocks, self.reads_as_fixed()) {
            (Some(blocks), false) => blocks,
            _ => {
                let status = Status::DATA | Status::RECURSE;
                return Ok(Mapping::at(status, bytes, &self.file, offset));
            }
        };
        if let Some(host) = blocks.host_offset(self, offset)? {
            let n = blocks.rest_of_block(offset).min(bytes);
            return Ok(Mapping::at(Status::DATA, n, &self.file, host));
        }
        let mut done = 0;
        loop {
            let at = offset + done;
            done += blocks.rest_of_block(at).min(bytes - done);
            if done == bytes || blocks.host_offset(self, offset + done)?.is_some() {
                return Ok(Mapping::unmapped(Status::ZERO, done));
            }
        }
    }

    /// qemu's `vpc_co_preadv`: `buf` filled with the guest data at
    /// `offset`, block by block (zeros for an unallocated block).
    pub fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), Error> {
        let blocks = match (&self.blocks, self.reads_as_fixed()) {
            (Some(blocks), false) => blocks,
            _ => return self.file.read_at(offset, buf).map_err(Error::errno),
        };
        let mut done = 0;
        while done < buf.len() {
            let at = offset.checked_add(done as u64).ok_or_else(|| Error::errno(eio()))?;
            let n = blocks.rest_of_block(at).min((buf.len() - done) as u64);
            #[allow(clippy::cast_possible_truncation, reason = "at most the buffer's length")]
            let part = &mut buf[done..done + n as usize];
            match blocks.host_offset(self, at)? {
                Some(host) => self.file.read_at(host, part).map_err(Error::errno)?,
                None => part.fill(0),
            }
            done += part.len();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::create::{CreatePlan, TABLE_OFFSET};
    use crate::footer::{self, DiskType, Footer, FOOTER_SIZE};
    use crate::image::VpcImage;
    use instar_core::opts::FILE_PROTOCOL_OPTS;
    use instar_core::{ImageFile, Options, QemuDialect, Status};

    const BLOCK: u64 = 2 << 20;
    const DISK: u64 = 64 << 20;

    /// A new dynamic disk of 64 MiB as qemu-img creates it.
    fn dynamic_disk() -> Vec<u8> {
        let mut o = Options::new(&[crate::CREATE_OPTS, FILE_PROTOCOL_OPTS]);
        o.set_number("size", DISK);
        let plan = CreatePlan::from_options(&o).unwrap();
        plan.dynamic_image(&plan.footer(0, [0; 16]))
    }

    /// Sets BAT entry `index` of `disk` to `sector`.
    fn set_entry(disk: &mut [u8], index: usize, sector: u32) {
        let at = usize::try_from(TABLE_OFFSET).unwrap() + 4 * index;
        disk[at..at + 4].copy_from_slice(&sector.to_be_bytes());
    }

    /// `dynamic_disk` with block 1 allocated (its bitmap, then 0x11
    /// throughout) after the BAT; returns it and where the data is.
    fn disk_with_block_1() -> (Vec<u8>, u64) {
        let mut bytes = dynamic_disk();
        let footer = bytes.split_off(bytes.len() - FOOTER_SIZE);
        let sector = u32::try_from(bytes.len() / 512).unwrap();
        bytes.extend(std::iter::repeat_n(0xFF, 512));
        bytes.extend(std::iter::repeat_n(0x11, 2 << 20));
        bytes.extend(footer);
        set_entry(&mut bytes, 1, sector);
        (bytes, u64::from(sector) * 512 + 512)
    }

    fn open(bytes: Vec<u8>) -> VpcImage {
        VpcImage::open(ImageFile::from_bytes("d", bytes), QemuDialect::DEFAULT).unwrap()
    }

    #[test]
    fn reads_allocated_blocks_and_zeros_elsewhere() {
        let (bytes, data_at) = disk_with_block_1();
        let image = open(bytes);
        let mut buf = vec![0xAA; 4096];
        image.read(BLOCK - 1000, &mut buf).unwrap();
        assert!(buf[..1000].iter().all(|&b| b == 0));
        assert!(buf[1000..].iter().all(|&b| b == 0x11));

        let st = image.status(0, DISK).unwrap();
        assert_eq!((st.status, st.bytes), (Status::ZERO, BLOCK));
        // An allocated block answers up to its end only.
        let st = image.status(BLOCK + 512, DISK - BLOCK - 512).unwrap();
        assert_eq!((st.status, st.bytes), (Status::DATA | Status::OFFSET_VALID, BLOCK - 512));
        assert_eq!(st.host.unwrap().offset, data_at + 512);
        // Unallocated blocks run together to the end of the request.
        let st = image.status(2 * BLOCK + 7, DISK - 2 * BLOCK - 7).unwrap();
        assert_eq!((st.status, st.bytes), (Status::ZERO, DISK - 2 * BLOCK - 7));
    }

    #[test]
    fn a_footer_saying_fixed_reads_the_file_as_the_disk() {
        // A dynamic layout whose footers say fixed: qemu opens it as
        // dynamic (the cookie is at 0) but reads as fixed.
        let (mut bytes, _) = disk_with_block_1();
        let len = bytes.len();
        for at in [0, len - FOOTER_SIZE] {
            let raw: [u8; FOOTER_SIZE] = bytes[at..at + FOOTER_SIZE].try_into().unwrap();
            let mut f = Footer::from_bytes(&raw);
            f.disk_type = DiskType::Fixed.to_u32();
            bytes[at..at + FOOTER_SIZE].copy_from_slice(&f.to_bytes_with_checksum());
        }
        let image = open(bytes.clone());
        let mut buf = vec![0; 16];
        image.read(0, &mut buf).unwrap();
        assert_eq!(&buf[..8], footer::FOOTER_COOKIE);
        let st = image.status(4096, 100).unwrap();
        let want = Status::DATA | Status::RECURSE | Status::OFFSET_VALID;
        assert_eq!((st.status, st.bytes, st.host.unwrap().offset), (want, 100, 4096));
    }
}
