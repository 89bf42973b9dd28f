//! Opening a VHD the way qemu's `vpc_open` does, with its checks in its
//! order and its messages, and what the opened image reports to `info`.

use crate::bat::{self, UNALLOCATED};
use crate::dynamic_header::{DynamicHeader, HEADER_SIZE};
use crate::error::VpcError;
use crate::footer::{self, DiskType, Footer, FOOTER_SIZE};
use crate::geometry::{MAX_SECTORS, SECTOR_SIZE};
use crate::read::Blocks;
use instar_core::file::{MAX_LENGTH, REQUEST_MAX_BYTES};
use instar_core::{Error, Image, ImageFile, ImageInfo, Mapping, QemuDialect};
use std::io;

/// The most BAT entries qemu allocates a table for (`INT_MAX / 4`).
pub const MAX_TABLE_ENTRIES: u32 = (i32::MAX / 4) as u32;

/// BAT bytes read at a time while scanning it, so that memory stays
/// bounded whatever the header claims.
const BAT_CHUNK: usize = 1 << 20;

/// The 512-byte footer at `offset` of `file`.
pub fn read_footer(file: &ImageFile, offset: u64) -> io::Result<[u8; FOOTER_SIZE]> {
    let mut raw = [0u8; FOOTER_SIZE];
    file.read_at(offset, &mut raw)?;
    Ok(raw)
}

/// Calls `f(index, entry)` for each of the `entries` BAT entries at
/// `table_offset` of `file`, reading the table a chunk at a time. Entries
/// wholly past the end of the file are not visited (they read as 0);
/// their number is returned.
pub fn scan_bat(
    file: &ImageFile,
    table_offset: u64,
    entries: u64,
    mut f: impl FnMut(u64, u32),
) -> io::Result<u64> {
    let in_file = if table_offset >= file.len() {
        0
    } else {
        entries.min((file.len() - table_offset).div_ceil(bat::ENTRY_SIZE))
    };
    let mut buf = vec![0u8; BAT_CHUNK];
    let per_chunk = (BAT_CHUNK as u64) / bat::ENTRY_SIZE;
    let mut index = 0;
    while index < in_file {
        let count = per_chunk.min(in_file - index);
        #[allow(clippy::cast_possible_truncation, reason = "at most BAT_CHUNK bytes")]
        let bytes = &mut buf[..(count * bat::ENTRY_SIZE) as usize];
        file.read_at(table_offset + index * bat::ENTRY_SIZE, bytes)?;
        for (i, raw) in (index..).zip(bytes.chunks_exact(4)) {
            f(i, bat::entry(raw, 0));
        }
        index += count;
    }
    Ok(entries - in_file)
}

/// Where a disk's data lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// Flat before the footer at the end of the file.
    Fixed,
    /// In blocks located by the BAT.
    Dynamic {
        /// The dynamic disk header.
        header: DynamicHeader,
        /// Where the header is.
        header_offset: u64,
        /// Where the next block would be allocated (qemu's
        /// `free_data_block_offset`).
        free_data_block_offset: u64,
    },
}

/// A VHD opened as qemu opens it.
#[derive(Debug)]
pub struct VpcImage {
    /// The image file.
    pub file: ImageFile,
    /// The footer qemu uses: the one at offset 0 if it has the cookie,
    /// else the one at the end.
    pub footer: Footer,
    /// Where that footer is.
    pub footer_offset: u64,
    /// Where the data lives.
    pub layout: Layout,
    /// The disk's sectors.
    pub total_sectors: u64,
    /// Where a dynamic disk's blocks are (`None` for a fixed layout).
    pub blocks: Option<Blocks>,
}

impl VpcImage {
    /// Opens `file` with the checks of qemu-img of `dialect`, in qemu's
    /// order.
    pub fn open(file: ImageFile, dialect: QemuDialect) -> Result<VpcImage, VpcError> {
        let mut footer_offset = 0;
        let mut raw = read_footer(&file, 0).map_err(VpcError::ReadFooter)?;
        let mut dynamic = true;
        if !footer::has_cookie(&raw) {
            // A fixed disk has its only footer at the end.
            let len = file.sector_len();
            if len < FOOTER_SIZE as u64 {
                return Err(VpcError::FileTooSmall);
            }
            footer_offset = len - FOOTER_SIZE as u64;
            raw = read_footer(&file, footer_offset).map_err(VpcError::Read)?;
            let f = Footer::from_bytes(&raw);
            if !f.has_valid_cookie() || f.disk_type() != Some(DiskType::Fixed) {
                return Err(VpcError::NotVpc);
            }
            dynamic = false;
        }
        let footer = Footer::from_bytes(&raw);
        if footer::computed_checksum(&raw) != footer.checksum {
            return Err(VpcError::FooterChecksum);
        }
        let total_sectors = footer.total_sectors(dialect);
        if total_sectors > MAX_SECTORS {
            return Err(VpcError::OpenTooLarge);
        }
        let layout =
            if dynamic { open_dynamic(&file, &footer, total_sectors)? } else { Layout::Fixed };
        let blocks = Blocks::of(&layout);
        Ok(VpcImage { file, footer, footer_offset, layout, total_sectors, blocks })
    }

    /// The cluster size qemu reports: the block size, unless the footer
    /// says the disk is fixed (qemu asks the footer, not the layout).
    pub fn cluster_size(&self) -> Option<u64> {
        match &self.layout {
            Layout::Dynamic { header, .. } if self.footer.disk_type() != Some(DiskType::Fixed) => {
                Some(u64::from(header.block_size))
            }
            _ => None,
        }
    }
}

/// The dynamic part of `vpc_open`: the header, the BAT's bounds, and where
/// the allocated blocks end.
fn open_dynamic(file: &ImageFile, footer: &Footer, total_sectors: u64) -> Result<Layout, VpcError> {
    let header_offset = footer.data_offset;
    let mut raw = [0u8; HEADER_SIZE];
    file.read_at(header_offset, &mut raw).map_err(|_| VpcError::ReadHeader)?;
    let header = DynamicHeader::from_bytes(&raw);
    if !header.has_valid_cookie() {
        return Err(VpcError::HeaderCookie);
    }
    if !header.has_valid_block_size() {
        return Err(VpcError::BlockSize(header.block_size));
    }
    let block_size = u64::from(header.block_size);
    if total_sectors * SECTOR_SIZE / block_size > u64::from(u32::MAX) {
        return Err(VpcError::TooManyBlocks);
    }
    // qemu holds the entry count in a C int: a count past INT_MAX turns
    // negative, and its product with the block size wraps as unsigned.
    #[allow(clippy::cast_possible_wrap, reason = "qemu's `int max_table_entries`")]
    let signed_entries = header.max_table_entries as i32;
    #[allow(clippy::cast_sign_loss, reason = "qemu's `(uint64_t)` of that int sign-extends")]
    let covered = (i64::from(signed_entries) as u64).wrapping_mul(block_size);
    if covered < total_sectors * SECTOR_SIZE {
        return Err(VpcError::PageTableTooSmall);
    }
    if header.max_table_entries > MAX_TABLE_ENTRIES {
        return Err(VpcError::PageTableTooLarge(signed_entries));
    }
    let entries = u64::from(header.max_table_entries);
    let table_bytes = entries * bat::ENTRY_SIZE;
    let table_offset = header.table_offset;
    if table_offset > MAX_LENGTH
        || table_bytes > MAX_LENGTH - table_offset
        || table_bytes > REQUEST_MAX_BYTES
    {
        return Err(VpcError::ReadPagetable);
    }
    let block_span = bat::bitmap_bytes(header.block_size) + block_size;
    let mut free = (table_offset + table_bytes).div_ceil(SECTOR_SIZE) * SECTOR_SIZE;
    let past_end = scan_bat(file, table_offset, entries, |_, entry| {
        if entry != UNALLOCATED {
            free = free.max(u64::from(entry) * SECTOR_SIZE + block_span);
        }
    })
    .map_err(|_| VpcError::ReadPagetable)?;
    if past_end > 0 {
        // Entries past the end of the file read as 0: a block at sector 0.
        free = free.max(block_span);
    }
    if free > file.sector_len() {
        return Err(VpcError::Truncated);
    }
    Ok(Layout::Dynamic { header, header_offset, free_data_block_offset: free })
}

/// What `info` reports for a VHD: qemu's node for the image (its size from
/// the footer, the block size as cluster size for dynamic disks, no
/// format-specific data) over the file node.
impl Image for VpcImage {
    fn info(&self) -> Result<ImageInfo, Error> {
        Ok(ImageInfo {
            cluster_size: self.cluster_size(),
            ..ImageInfo::format_node("vpc", &self.file, self.virtual_size())
        })
    }

    fn virtual_size(&self) -> u64 {
        self.total_sectors * SECTOR_SIZE
    }

    /// qemu's `vpc_co_get_info`: the block size, 0 for a fixed disk.
    fn info_cluster_size(&self) -> Result<Option<u64>, Error> {
        Ok(Some(self.cluster_size().unwrap_or(0)))
    }

    fn has_block_status(&self) -> bool {
        true
    }

    /// qemu's `vpc_co_block_status` ([`VpcImage::status`]).
    fn block_status(
        &self,
        _want_zero: bool,
        offset: u64,
        bytes: u64,
    ) -> Result<Mapping<'_>, Error> {
        self.status(offset, bytes)
    }

    /// qemu's `vpc_co_preadv` ([`VpcImage::read`]).
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), Error> {
        self.read(offset, buf)
    }
}
