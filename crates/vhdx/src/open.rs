//! Opening an existing image read-only, with every check qemu's
//! `vhdx_open` makes (headers, log, region table, metadata, BAT), in
//! qemu's order so that a damaged image fails with qemu's message.

use crate::bat::{self, BatChecker, BatGeometry, Region, BAT_ENTRY_SIZE};
use crate::error::OpenError;
use crate::file_identifier::FILE_SIGNATURE;
use crate::guid;
use crate::header::{choose_current, Header, HEADER1_OFFSET, HEADER2_OFFSET, HEADER_SIZE};
use crate::log;
use crate::metadata::{
    self, MetadataEntry, MetadataTableHeader, METADATA_ENTRY_LEN, METADATA_TABLE_SIZE,
    META_FLAGS_IS_REQUIRED, PARAMS_HAS_PARENT,
};
use crate::region_table::{
    self, RegionEntry, RegionTableHeader, MAX_ENTRIES, REGION_ENTRY_REQUIRED, REGION_SIGNATURE,
    REGION_TABLE_OFFSET, REGION_TABLE_SIZE,
};
use instar_core::bytes::le64;
use instar_core::table::TableWindow;
use instar_core::{CheckReport, Error, ImageFile, ImageInfo, Lines, OpenFlags};

/// BAT entries read per chunk while walking the table.
const BAT_CHUNK_ENTRIES: u64 = 64 * 1024;

/// A failed open: qemu's `error_report` lines printed before the failure
/// (without the program name), and the failure.
#[derive(Debug)]
pub struct OpenFailure {
    /// Lines printed on stderr before the error.
    pub notes: Vec<String>,
    /// The failure.
    pub error: OpenError,
}

impl From<OpenError> for OpenFailure {
    fn from(error: OpenError) -> Self {
        OpenFailure { notes: Vec::new(), error }
    }
}

impl From<std::io::Error> for OpenFailure {
    fn from(e: std::io::Error) -> Self {
        OpenError::Io(e).into()
    }
}

/// An image that opened: what `info` and `check` need.
#[derive(Debug)]
pub struct VhdxImage {
    /// The file.
    pub file: ImageFile,
    /// The current header.
    pub header: Header,
    /// Regions payload blocks must not overlap, in registration order
    /// (the log, then the region table's entries).
    pub regions: Vec<Region>,
    /// The BAT's region.
    pub bat_region: RegionEntry,
    /// The payload block size.
    pub block_size: u32,
    /// The logical sector size (512 or 4096).
    pub logical_sector_size: u32,
    /// The virtual disk size as stored.
    pub virtual_disk_size: u64,
    /// The BAT's shape.
    pub geometry: BatGeometry,
    /// The BAT's entries, read on demand by guest reads.
    pub bat: TableWindow,
}

impl VhdxImage {
    /// The guest-visible size as qemu computes it: the stored size in
    /// logical sectors, counted as 512-byte sectors.
    pub fn disk_bytes(&self) -> u64 {
        let bits = self.logical_sector_size.trailing_zeros();
        (self.virtual_disk_size >> bits).wrapping_mul(512)
    }

    /// Walks the BAT entries with qemu's checks; with `stop_at_first`, as
    /// a normal open does, stops at the first problem.
    pub fn check_bat(&self, stop_at_first: bool) -> Result<BatChecker<'_>, OpenError> {
        let mut checker = BatChecker::new(
            self.block_size,
            self.geometry.chunk_ratio,
            self.disk_bytes(),
            self.file.sector_len(),
            &self.regions,
        );
        let start = self.bat_region.file_offset;
        let entries = u64::from(self.geometry.entries);
        // Entries past the end of the file read as zero, which no check
        // looks at: only the part inside the file needs reading.
        let in_file = self.file.len().saturating_sub(start).div_ceil(BAT_ENTRY_SIZE);
        let total = entries.min(in_file);
        #[allow(
            clippy::cast_possible_truncation,
            reason = "at most BAT_CHUNK_ENTRIES (64 Ki) entries"
        )]
        let bytes_of = |n: u64| (n * BAT_ENTRY_SIZE) as usize;
        let mut buf = vec![0u8; bytes_of(BAT_CHUNK_ENTRIES.min(total.max(1)))];
        let mut i = 0;
        while i < total {
            let n = BAT_CHUNK_ENTRIES.min(total - i);
            let chunk = &mut buf[..bytes_of(n)];
            self.file.read_at(start + i * BAT_ENTRY_SIZE, chunk)?;
            for (k, e) in chunk.chunks_exact(bytes_of(1)).enumerate() {
                let entry = le64(e, 0);
                if !checker.visit(i + k as u64, entry, stop_at_first) {
                    return Ok(checker);
                }
            }
            i += n;
        }
        Ok(checker)
    }
}

/// qemu's `vhdx_open` up to the point where the image is usable. A check
/// (`BDRV_O_CHECK`) skips the BAT checks of a normal open, because the
/// check makes them itself.
pub fn open(file: ImageFile, flags: OpenFlags) -> Result<VhdxImage, OpenFailure> {
    let mut signature = [0u8; 8];
    file.read_at(0, &mut signature)?;
    if &signature != FILE_SIGNATURE {
        return Err(OpenError::Invalid.into());
    }

    let mut h1 = vec![0u8; HEADER_SIZE];
    let mut h2 = vec![0u8; HEADER_SIZE];
    file.read_at(HEADER1_OFFSET, &mut h1)?;
    file.read_at(HEADER2_OFFSET, &mut h2)?;
    let (_, header) = choose_current(&h1, &h2).ok_or(OpenError::NoValidHeader)?;
    let mut regions = vec![Region::new(header.log_offset, u64::from(header.log_length))];

    if log::needs_replay(&file, &header)? {
        return Err(OpenError::NeedsReplay.into());
    }

    let (bat_region, md_region) = open_region_table(&file, &mut regions)?;
    let md = parse_metadata(&file, &md_region)?;

    let geometry = BatGeometry::new(md.virtual_disk_size, md.block_size, md.logical_sector_size);
    if u64::from(geometry.entries) > u64::from(bat_region.length) / BAT_ENTRY_SIZE {
        return Err(OpenError::Invalid.into());
    }
    // qemu reads the whole BAT region in one request.
    ImageFile::check_request(bat_region.file_offset, u64::from(bat_region.length))?;

    let image = VhdxImage {
        file,
        header,
        regions,
        bat_region,
        block_size: md.block_size,
        logical_sector_size: md.logical_sector_size,
        virtual_disk_size: md.virtual_disk_size,
        geometry,
        bat: TableWindow::new(bat_region.file_offset, BAT_ENTRY_SIZE, u64::from(geometry.entries)),
    };
    if !flags.check {
        let checker = image.check_bat(true)?;
        if checker.errors > 0 {
            return Err(OpenFailure { notes: checker.messages, error: OpenError::Invalid });
        }
    }
    Ok(image)
}

/// qemu's `vhdx_open_region_tables`: the region table of `file` read and
/// checked, and its BAT and metadata regions, each registered in `regions`
/// against overlap with what came before (the log's region, at open).
pub fn open_region_table(
    file: &ImageFile,
    regions: &mut Vec<Region>,
) -> Result<(RegionEntry, RegionEntry), OpenFailure> {
    let mut block = vec![0u8; REGION_TABLE_SIZE];
    file.read_at(REGION_TABLE_OFFSET, &mut block)?;
    if !crate::header::checksum_is_valid(&block, crate::header::CHECKSUM_OFFSET) {
        return Err(OpenError::Invalid.into());
    }
    let th = RegionTableHeader::from_bytes(&block);
    if th.signature != REGION_SIGNATURE || th.entry_count > MAX_ENTRIES {
        return Err(OpenError::Invalid.into());
    }
    let mut bat = None;
    let mut md = None;
    for i in 0..th.entry_count as usize {
        let e = region_table::entry(&block, i);
        if let Some(note) = bat::region_overlap(regions, e.file_offset, u64::from(e.length)) {
            return Err(OpenFailure { notes: vec![note], error: OpenError::Invalid });
        }
        regions.push(Region::new(e.file_offset, u64::from(e.length)));
        if e.guid == guid::BAT_REGION {
            if bat.replace(e).is_some() {
                return Err(OpenError::Invalid.into());
            }
        } else if e.guid == guid::METADATA_REGION {
            if md.replace(e).is_some() {
                return Err(OpenError::Invalid.into());
            }
        } else if e.data_bits & REGION_ENTRY_REQUIRED != 0 {
            return Err(OpenError::NotSupported.into());
        }
    }
    match (bat, md) {
        (Some(b), Some(m)) => Ok((b, m)),
        _ => Err(OpenError::Invalid.into()),
    }
}

/// What the metadata items say.
#[derive(Debug, Clone, Copy)]
pub struct ParsedMetadata {
    /// The payload block size.
    pub block_size: u32,
    /// The virtual disk size as stored.
    pub virtual_disk_size: u64,
    /// The logical sector size.
    pub logical_sector_size: u32,
}

/// The five required items, and the parent locator qemu cannot use.
const KNOWN_ITEMS: [guid::Guid; 6] = [
    guid::FILE_PARAMETERS,
    guid::VIRTUAL_DISK_SIZE,
    guid::PAGE_83_DATA,
    guid::LOGICAL_SECTOR_SIZE,
    guid::PHYSICAL_SECTOR_SIZE,
    guid::PARENT_LOCATOR,
];

/// qemu's `vhdx_parse_metadata`: the metadata table of the region
/// `region` of `file` and the items it requires, read and checked.
pub fn parse_metadata(file: &ImageFile, region: &RegionEntry) -> Result<ParsedMetadata, OpenError> {
    let mut table = vec![0u8; METADATA_TABLE_SIZE];
    file.read_at(region.file_offset, &mut table)?;
    let th = MetadataTableHeader::from_bytes(&table);
    if !th.signature_ok {
        return Err(OpenError::Invalid);
    }
    let count = usize::from(th.entry_count);
    if count * METADATA_ENTRY_LEN > METADATA_TABLE_SIZE - METADATA_ENTRY_LEN {
        return Err(OpenError::Invalid);
    }
    let mut found: [Option<MetadataEntry>; 6] = [None; 6];
    for i in 0..count {
        let e = MetadataEntry::from_bytes(&table[METADATA_ENTRY_LEN * (i + 1)..]);
        let known = KNOWN_ITEMS.iter().position(|g| *g == e.item_id);
        match known {
            // Each item may appear once.
            Some(k) if found[k].replace(e).is_some() => return Err(OpenError::Invalid),
            Some(_) => {}
            None if e.data_bits & META_FLAGS_IS_REQUIRED != 0 => {
                return Err(OpenError::NotSupported)
            }
            None => {}
        }
    }
    // All five required items, and no parent locator.
    let [Some(params), Some(size), Some(_page83), Some(lss), Some(pss), None] = found else {
        return Err(OpenError::NotSupported);
    };
    let item = |e: &MetadataEntry, len: usize| -> Result<Vec<u8>, OpenError> {
        let mut b = vec![0u8; len];
        file.read_at(region.file_offset.wrapping_add(u64::from(e.offset)), &mut b)?;
        Ok(b)
    };
    let p = item(&params, 8)?;
    let block_size = metadata::item_u32(&p);
    let data_bits = metadata::item_u32(&p[4..]);
    if data_bits & PARAMS_HAS_PARENT != 0 {
        return Err(OpenError::Invalid);
    }
    let virtual_disk_size = metadata::item_u64(&item(&size, 8)?);
    let logical_sector_size = metadata::item_u32(&item(&lss, 4)?);
    let _physical_sector_size = metadata::item_u32(&item(&pss, 4)?);

    if !(bat::BLOCK_SIZE_MIN..=bat::BLOCK_SIZE_MAX).contains(&block_size) {
        return Err(OpenError::Invalid);
    }
    // qemu reads only 512-byte sectors (4096 is valid VHDX, but refused).
    if logical_sector_size != metadata::SECTOR_SIZE {
        return Err(OpenError::NotSupported);
    }
    let sectors_per_block = block_size / logical_sector_size;
    let chunk_ratio =
        bat::MAX_SECTORS_PER_BLOCK * u64::from(logical_sector_size) / u64::from(block_size);
    if !sectors_per_block.is_power_of_two()
        || !chunk_ratio.is_power_of_two()
        || !block_size.is_power_of_two()
    {
        return Err(OpenError::Invalid);
    }
    Ok(ParsedMetadata { block_size, virtual_disk_size, logical_sector_size })
}

impl OpenFailure {
    /// The failure as qemu's block layer reports it for the file `name`:
    /// the `error_report` lines printed while opening travel with the
    /// error as notes, which the command line prints first.
    pub fn into_error(self, name: &str) -> Error {
        self.error.into_error(name).with_notes(self.notes)
    }
}

impl instar_core::Image for VhdxImage {
    /// What `qemu-img info` reports after opening the image with every
    /// check of `vhdx_open`.
    fn info(&self) -> Result<ImageInfo, Error> {
        Ok(ImageInfo {
            cluster_size: Some(u64::from(self.block_size)),
            ..ImageInfo::format_node("vhdx", &self.file, self.disk_bytes())
        })
    }

    fn virtual_size(&self) -> u64 {
        self.disk_bytes()
    }

    /// qemu's `vhdx_co_get_info`: the block size.
    fn info_cluster_size(&self) -> Result<Option<u64>, Error> {
        Ok(Some(u64::from(self.block_size)))
    }

    /// qemu's vhdx driver reads whole sectors only.
    fn request_alignment(&self) -> u64 {
        crate::read::REQUEST_ALIGNMENT
    }

    /// qemu's `vhdx_co_readv` ([`VhdxImage::read`]).
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), Error> {
        self.read(offset, buf)
    }

    /// The run of absent (or present) payload blocks from `offset`
    /// ([`VhdxImage::zero_run`]).
    fn zero_run(&self, offset: u64, bytes: u64) -> (bool, u64) {
        self.zero_run(offset, bytes)
    }

    /// qemu's `vhdx_co_check`: each fully present BAT entry must lie
    /// inside the file and clear of the log, BAT and metadata regions.
    /// Each bad entry counts as a corruption, with qemu's message.
    fn check(&self, lines: Lines) -> Result<CheckReport, Error> {
        let name = self.file.name();
        let checker = self
            .check_bat(false)
            .map_err(|error| OpenFailure { notes: Vec::new(), error }.into_error(name))?;
        let mut report = CheckReport::new(name, "vhdx").with_lines(lines);
        report.corruptions = checker.errors;
        // qemu reports each finding with error_report, after the program
        // name.
        for m in &checker.messages {
            report.push_reported(m.clone());
        }
        Ok(report)
    }
}
