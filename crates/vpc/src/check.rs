//! instar's own structural check of a VHD, run by `instar check --deep`.
//! qemu-img has no check for vpc (it answers `This image format does not
//! support checks`, exit 63, and so does a plain `instar check`); this one
//! goes further, by name only. It checks the structures qemu relies on and
//! reports like qemu's checks of other formats: one `ERROR ...` line on
//! stderr per problem, each counted as a corruption (exit code 2), offsets
//! in hex and counts in decimal.
//!
//! An image qemu cannot even recognise as a VHD (an empty file, no footer
//! cookie at either end) is refused as `info` refuses it. Otherwise every
//! problem is reported, in this order:
//!
//! | message | problem |
//! |---|---|
//! | `ERROR footer at offset 0x0: invalid cookie` | a dynamic disk's first footer is damaged (its copy at the end still identifies the disk, and stands in for it) |
//! | `ERROR footer at offset O: checksum is 0xS, expected 0xC` | the footer's stored checksum is not the one's complement of its byte sum |
//! | `ERROR footer at offset O: disk type is T (name), expected 3 (dynamic)` | the footer at offset 0 names a type without a dynamic header |
//! | `ERROR footer at offset O: disk size N exceeds the maximum of 2190433320960 bytes` | the disk is larger than 2040 GiB (further checks stop) |
//! | `ERROR footer at offset O: disk size N exceeds the D bytes of data before it` | a fixed disk's file is too short for its size |
//! | `ERROR footer copy at offset O: invalid cookie` | a dynamic disk's last 512 bytes are not a footer |
//! | `ERROR footer copy at offset O: differs from the footer at offset 0x0` | the two footers of a dynamic disk disagree |
//! | `ERROR footer at offset O: data offset 0xD points past the end of the file` | the dynamic header is missing (further checks stop) |
//! | `ERROR dynamic header at offset O: invalid cookie` | no `cxsparse` where the footer points (further checks stop) |
//! | `ERROR dynamic header at offset O: checksum is 0xS, expected 0xC` | the header's checksum is wrong |
//! | `ERROR dynamic header at offset O: block size B is not a power of two of at least 512` | unusable block size (BAT checks stop) |
//! | `ERROR dynamic header at offset O: N BAT entries exceed the maximum of 536870911` | a table qemu refuses to load (BAT checks stop) |
//! | `ERROR dynamic header at offset O: BAT has N entries, the disk needs M` | the table does not cover the disk |
//! | `ERROR dynamic header at offset O: BAT offset 0xT is not sector aligned` | misplaced table |
//! | `ERROR BAT at offset 0xT (N bytes) extends past the end of the data area at 0xE` | the table runs into the footer copy or past the file (entry checks stop) |
//! | `ERROR BAT at offset 0xT overlaps the footer at offset 0x0` (or `the dynamic header at offset 0xH`) | the table overlaps other metadata |
//! | `ERROR BAT entry I: block at offset 0xB overlaps the footer at offset 0x0` (or the dynamic header, or the BAT) | a block placed over metadata |
//! | `ERROR BAT entry I: block at offset 0xB extends past the end of the data area at 0xE` | a block running into the footer copy or past the file |
//! | `ERROR BAT entry I: block at offset 0xB overlaps the block of BAT entry J at offset 0xA` | two blocks sharing space |
//!
//! The data area of a dynamic disk ends where its footer copy starts (the
//! last 512 bytes of the file, counted in whole sectors as qemu counts
//! the file); a block of a BAT entry spans its sector bitmap and its data.

use crate::bat::{self, UNALLOCATED};
use crate::dynamic_header::{self, DynamicHeader, HEADER_SIZE};
use crate::error::VpcError;
use crate::footer::{self, DiskType, Footer, FOOTER_SIZE};
use crate::geometry::{MAX_SECTORS, SECTOR_SIZE};
use crate::image::{read_footer, scan_bat, MAX_TABLE_ENTRIES};
use instar_core::file::MAX_LENGTH;
use instar_core::{CheckReport, ImageFile, Lines, QemuDialect};

/// A region of the file holding metadata, for overlap checks.
#[derive(Debug, Clone)]
struct Region {
    start: u64,
    end: u64,
    name: String,
}

impl Region {
    fn overlaps(&self, start: u64, end: u64) -> bool {
        start < self.end && self.start < end
    }
}

/// Collects the problems found.
struct Checker {
    report: CheckReport,
}

impl Checker {
    fn error(&mut self, what: String) {
        self.report.push_message(format!("ERROR {what}"));
        self.report.corruptions += 1;
    }
}

fn type_name(t: u32) -> &'static str {
    match DiskType::from_u32(t) {
        Some(DiskType::Fixed) => "fixed",
        Some(DiskType::Dynamic) => "dynamic",
        Some(DiskType::Differencing) => "differencing",
        None => "unknown",
    }
}

/// Checks the VHD in `file`.
pub fn check(file: &ImageFile, lines: Lines) -> Result<CheckReport, VpcError> {
    if file.is_empty() {
        return Err(VpcError::FileTooSmall);
    }
    let mut c = Checker { report: CheckReport::new(file.name(), "vpc").with_lines(lines) };
    let head_raw = read_footer(file, 0).map_err(VpcError::ReadFooter)?;
    let tail_offset = file.sector_len() - FOOTER_SIZE as u64;
    let tail_raw = read_footer(file, tail_offset).map_err(VpcError::Read)?;
    let head = Footer::from_bytes(&head_raw);
    let tail = Footer::from_bytes(&tail_raw);
    let tail_dynamic = matches!(tail.disk_type(), Some(DiskType::Dynamic | DiskType::Differencing));

    if head.has_valid_cookie() {
        let Some(total_sectors) = check_footer(&mut c, &head_raw, 0, true) else {
            return Ok(c.report);
        };
        check_footer_copy(&mut c, &head_raw, &tail_raw, tail_offset);
        check_dynamic(&mut c, file, (&head, 0), total_sectors, tail_offset)?;
    } else if tail.has_valid_cookie() && tail.disk_type() == Some(DiskType::Fixed) {
        check_footer(&mut c, &tail_raw, tail_offset, false);
    } else if tail.has_valid_cookie() && tail_dynamic {
        // The copy identifies a dynamic disk whose first footer is gone;
        // check the rest against the copy.
        c.error("footer at offset 0x0: invalid cookie".to_string());
        let Some(total_sectors) = check_footer(&mut c, &tail_raw, tail_offset, true) else {
            return Ok(c.report);
        };
        check_dynamic(&mut c, file, (&tail, tail_offset), total_sectors, tail_offset)?;
    } else {
        return Err(VpcError::NotVpc);
    }
    Ok(c.report)
}

/// Checks one footer: checksum, type, size. Returns the disk's sectors, or
/// `None` when the size makes further checks meaningless.
fn check_footer(
    c: &mut Checker,
    raw: &[u8; FOOTER_SIZE],
    offset: u64,
    dynamic: bool,
) -> Option<u64> {
    let f = Footer::from_bytes(raw);
    let expected = footer::computed_checksum(raw);
    if f.checksum != expected {
        c.error(format!(
            "footer at offset {offset:#x}: checksum is {:#010x}, expected {expected:#010x}",
            f.checksum
        ));
    }
    if dynamic && !matches!(f.disk_type(), Some(DiskType::Dynamic | DiskType::Differencing)) {
        c.error(format!(
            "footer at offset {offset:#x}: disk type is {} ({}), expected 3 (dynamic)",
            f.disk_type,
            type_name(f.disk_type)
        ));
    }
    // The deep check is instar's own and has no qemu version to follow:
    // it sizes the disk as the newest qemu-img does.
    let total_sectors = f.total_sectors(QemuDialect::DEFAULT);
    let size = total_sectors * SECTOR_SIZE;
    if total_sectors > MAX_SECTORS {
        c.error(format!(
            "footer at offset {offset:#x}: disk size {size} exceeds the maximum of {} bytes",
            MAX_SECTORS * SECTOR_SIZE
        ));
        return None;
    }
    if !dynamic && size > offset {
        c.error(format!(
            "footer at offset {offset:#x}: disk size {size} exceeds the {offset} bytes of data \
             before it"
        ));
    }
    Some(total_sectors)
}

/// Checks that a dynamic disk's last 512 bytes repeat its first footer.
fn check_footer_copy(
    c: &mut Checker,
    head: &[u8; FOOTER_SIZE],
    tail: &[u8; FOOTER_SIZE],
    tail_offset: u64,
) {
    if !footer::has_cookie(tail) {
        c.error(format!("footer copy at offset {tail_offset:#x}: invalid cookie"));
    } else if head != tail {
        c.error(format!(
            "footer copy at offset {tail_offset:#x}: differs from the footer at offset 0x0"
        ));
    }
}

/// Checks the dynamic disk header and the BAT, as located by the footer
/// `f` at `footer_offset`. `data_end` is where the footer copy starts.
fn check_dynamic(
    c: &mut Checker,
    file: &ImageFile,
    (f, footer_offset): (&Footer, u64),
    total_sectors: u64,
    data_end: u64,
) -> Result<(), VpcError> {
    let header_offset = f.data_offset;
    if header_offset > MAX_LENGTH || header_offset + HEADER_SIZE as u64 > file.len() {
        c.error(format!(
            "footer at offset {footer_offset:#x}: data offset {header_offset:#x} points past the \
             end of the file"
        ));
        return Ok(());
    }
    let mut raw = [0u8; HEADER_SIZE];
    file.read_at(header_offset, &mut raw).map_err(VpcError::Read)?;
    let h = DynamicHeader::from_bytes(&raw);
    let at = format!("dynamic header at offset {header_offset:#x}");
    if !h.has_valid_cookie() {
        c.error(format!("{at}: invalid cookie"));
        return Ok(());
    }
    let expected = dynamic_header::computed_checksum(&raw);
    if h.checksum != expected {
        c.error(format!("{at}: checksum is {:#010x}, expected {expected:#010x}", h.checksum));
    }
    if !h.has_valid_block_size() {
        c.error(format!("{at}: block size {} is not a power of two of at least 512", h.block_size));
        return Ok(());
    }
    if h.max_table_entries > MAX_TABLE_ENTRIES {
        c.error(format!(
            "{at}: {} BAT entries exceed the maximum of {MAX_TABLE_ENTRIES}",
            h.max_table_entries
        ));
        return Ok(());
    }
    let entries = u64::from(h.max_table_entries);
    let needed = bat::entries_for(total_sectors, h.block_size);
    if entries < needed {
        c.error(format!("{at}: BAT has {entries} entries, the disk needs {needed}"));
    }
    let table_offset = h.table_offset;
    if !table_offset.is_multiple_of(SECTOR_SIZE) {
        c.error(format!("{at}: BAT offset {table_offset:#x} is not sector aligned"));
    }
    let table_bytes = bat::table_bytes(entries);
    let table_end = table_offset.saturating_add(table_bytes);
    if table_end > data_end {
        c.error(format!(
            "BAT at offset {table_offset:#x} ({table_bytes} bytes) extends past the end of the \
             data area at {data_end:#x}"
        ));
        return Ok(());
    }
    let footer_region =
        Region { start: 0, end: FOOTER_SIZE as u64, name: "the footer at offset 0x0".to_string() };
    let header_region = Region {
        start: header_offset,
        end: header_offset + HEADER_SIZE as u64,
        name: format!("the dynamic header at offset {header_offset:#x}"),
    };
    for region in [&footer_region, &header_region] {
        if region.overlaps(table_offset, table_end) {
            c.error(format!("BAT at offset {table_offset:#x} overlaps {}", region.name));
        }
    }
    let table_region = Region {
        start: table_offset,
        end: table_end,
        name: format!("the BAT at offset {table_offset:#x}"),
    };
    let metadata = [footer_region, header_region, table_region];
    check_blocks(c, file, &h, &metadata, data_end)
}

/// Checks where the BAT's allocated blocks lie: clear of the metadata,
/// before the footer copy, and clear of each other.
fn check_blocks(
    c: &mut Checker,
    file: &ImageFile,
    h: &DynamicHeader,
    metadata: &[Region],
    data_end: u64,
) -> Result<(), VpcError> {
    let span = bat::bitmap_bytes(h.block_size) + u64::from(h.block_size);
    // (first sector, entry index) of every allocated block; the table lies
    // inside the file, so this is bounded by the file's size.
    let mut blocks: Vec<(u32, u32)> = Vec::new();
    scan_bat(file, h.table_offset, u64::from(h.max_table_entries), |index, entry| {
        if entry != UNALLOCATED {
            #[allow(clippy::cast_possible_truncation, reason = "below max_table_entries, a u32")]
            let index = index as u32;
            blocks.push((entry, index));
        }
    })
    .map_err(VpcError::Read)?;
    for &(sector, index) in &blocks {
        let start = u64::from(sector) * SECTOR_SIZE;
        let end = start + span;
        let at = format!("BAT entry {index}: block at offset {start:#x}");
        for region in metadata.iter().filter(|r| r.overlaps(start, end)) {
            c.error(format!("{at} overlaps {}", region.name));
        }
        if end > data_end {
            c.error(format!("{at} extends past the end of the data area at {data_end:#x}"));
        }
    }
    // Every block spans the same length, so after sorting by position a
    // block can only collide with the one just before it.
    blocks.sort_unstable();
    for pair in blocks.windows(2) {
        let (prev_sector, prev_index) = pair[0];
        let (sector, index) = pair[1];
        let prev_start = u64::from(prev_sector) * SECTOR_SIZE;
        let start = u64::from(sector) * SECTOR_SIZE;
        if start < prev_start + span {
            c.error(format!(
                "BAT entry {index}: block at offset {start:#x} overlaps the block of BAT entry \
                 {prev_index} at offset {prev_start:#x}"
            ));
        }
    }
    Ok(())
}
