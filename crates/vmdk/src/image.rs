//! Opening a vmdk image the way qemu's `vmdk_open` does: a sparse file
//! that is its own only extent, or a text descriptor listing extent files
//! (flat or sparse), each opened and checked; then the parent's name and
//! the content IDs read from the descriptor.
//!
//! The result says what `info` reports and what `check` walks. Grain
//! tables are not loaded here; [`crate::check`] reads them as it goes.
//! Every read is bounded by the file it reads, and reads past the end of a
//! file give zeros, as qemu's do.

use crate::descriptor::{self, DESC_SIZE, MAX_DESC_READ};
use crate::error::VmdkError;
use crate::sesparse;
use crate::sparse_header::{
    CowdHeader, SparseHeader, FLAG_MARKER, FLAG_RGD, FLAG_ZERO_GRAIN, GD_AT_END, VMDK3_MAGIC,
    VMDK4_MAGIC,
};
use crate::stream::{self, FOOTER_SIZE};
use instar_core::bytes::be32;
use instar_core::{path, ImageFile};

/// Bytes per sector.
const SECTOR: u64 = instar_core::bytes::SECTOR_SIZE;

/// The largest grain qemu accepts, in sectors (1 GiB).
const MAX_CLUSTER_SECTORS: u64 = 0x20_0000;

/// The largest grain directory qemu accepts, in entries.
const MAX_L1_SIZE: u32 = 32 * 1024 * 1024;

/// The most entries a grain table may have.
const MAX_GTES_PER_GT: u32 = 512;

/// The embedded descriptor of a sparse image is always read here, whatever
/// its header says (qemu's `desc_offset = 0x200`).
const SPARSE_DESC_OFFSET: u64 = 0x200;

/// How deep descriptors may nest (a sparse extent of capacity 0 holding a
/// descriptor of its own); qemu has no limit and would recurse forever.
const MAX_NESTING: usize = 8;

/// The `createType`s qemu opens from a text descriptor.
const DESCRIPTOR_TYPES: [&[u8]; 6] = [
    b"monolithicFlat",
    b"vmfs",
    b"vmfsSparse",
    b"seSparse",
    b"twoGbMaxExtentSparse",
    b"twoGbMaxExtentFlat",
];

/// The extent types qemu opens from an extent line.
const EXTENT_TYPES: [&[u8]; 5] = [b"FLAT", b"SPARSE", b"VMFS", b"VMFSSPARSE", b"SESPARSE"];

/// One file of an image (the image file itself, or an extent file) and
/// its place under the image node.
#[derive(Debug)]
pub struct NodeFile {
    /// The file, named as qemu names it: the image name as given, or the
    /// extent name from the descriptor joined to the descriptor's
    /// directory.
    pub file: ImageFile,
    /// Its role under the image node: `file` for the image file,
    /// `extents.N` for extent files (N counts the extents before it).
    pub role: String,
}

impl NodeFile {
    /// Opens the extent file `name`, which the image file `top` names, as
    /// qemu's file protocol does (an image in memory finds its extents
    /// beside it: [`ImageFile::open_beside`]).
    fn open(top: &ImageFile, name: &[u8], role: String) -> Result<NodeFile, VmdkError> {
        let name = instar_core::rawtext::from_bytes(name);
        let file = top.open_beside(&name).map_err(|e| VmdkError::OpenFile(name.clone(), e))?;
        Ok(NodeFile { file, role })
    }

    /// `len` bytes at `offset`, zeros where the file ends. The caller
    /// bounds `len`. A read qemu would refuse (beyond its largest offset)
    /// or that fails also gives zeros: the structural checks then report
    /// what is missing.
    pub fn read(&self, offset: u64, len: usize) -> Vec<u8> {
        self.file.read_vec(offset, len as u64).unwrap_or_else(|_| vec![0u8; len])
    }
}

/// Where the grain tables and grains of an seSparse extent start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeSparseAreas {
    /// Sector of the first grain table.
    pub l2_tables_offset: u64,
    /// Sector of the first grain.
    pub clusters_offset: u64,
}

/// What a sparse extent needs for lookups (qemu's `VmdkExtent` fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SparseExtent {
    /// Byte offset of the grain directory.
    pub l1_offset: u64,
    /// Byte offset of the redundant grain directory (0: none).
    pub l1_backup_offset: u64,
    /// Entries in the grain directory.
    pub l1_size: u32,
    /// Entries in each grain table.
    pub l2_size: u32,
    /// Sectors one grain directory entry covers.
    pub l1_entry_sectors: u32,
    /// Grain table entries equal to 1 read as zeros.
    pub has_zero_grain: bool,
    /// Grains are deflate-compressed.
    pub compressed: bool,
    /// Grains carry markers.
    pub has_marker: bool,
    /// Header version.
    pub version: u32,
    /// For seSparse extents (64-bit entries), where tables and grains are.
    pub se: Option<SeSparseAreas>,
}

impl SparseExtent {
    /// Bytes per grain directory or grain table entry.
    pub fn entry_size(&self) -> u64 {
        if self.se.is_some() {
            8
        } else {
            4
        }
    }
}

/// How an extent maps guest sectors to its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtentKind {
    /// Guest data at a fixed byte offset of the file.
    Flat {
        /// Byte offset of the extent's first sector in its file.
        start: u64,
    },
    /// Guest data in grains found through a grain directory and tables.
    Sparse(SparseExtent),
}

/// One extent of an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extent {
    /// Index of its file in [`Image::files`].
    pub file: usize,
    /// How it maps sectors.
    pub kind: ExtentKind,
    /// The type from its extent line (`SPARSE`, `FLAT`, ...); `None` for
    /// the sparse file that is the image itself.
    pub type_name: Option<Vec<u8>>,
    /// Sectors it holds.
    pub sectors: i64,
    /// The guest sector after its last one.
    pub end_sector: i64,
    /// Sectors per grain (all its sectors for a flat extent).
    pub cluster_sectors: u64,
}

impl Extent {
    /// Whether the extent is flat.
    pub fn is_flat(&self) -> bool {
        matches!(self.kind, ExtentKind::Flat { .. })
    }

    /// Whether the extent's grains are compressed.
    pub fn compressed(&self) -> bool {
        matches!(self.kind, ExtentKind::Sparse(s) if s.compressed)
    }
}

/// An opened vmdk image.
#[derive(Debug)]
pub struct Image {
    /// The image file name as given.
    pub filename: String,
    /// `files[0]` is the image file; the others are extent files in the
    /// order they were opened (qemu's `extents.N` children).
    pub files: Vec<NodeFile>,
    /// The extents in guest order.
    pub extents: Vec<Extent>,
    /// `createType` (qemu's `create_type`), `None` when qemu leaves it
    /// unset (an ESX sparse file).
    pub create_type: Option<Vec<u8>>,
    /// The content ID.
    pub cid: u32,
    /// The parent's content ID.
    pub parent_cid: u32,
    /// `parentFileNameHint`, when present and not empty.
    pub backing: Option<Vec<u8>>,
    /// Grain directory blocks and grain tables read so far (reads only).
    pub tables: crate::tables::TableCache,
    /// The last compressed grain inflated (reads only).
    pub grain: crate::read::GrainCache,
}

impl Image {
    /// Opens the image in `top` as qemu opens a vmdk image (without its
    /// backing file).
    pub fn open(top: ImageFile) -> Result<Image, VmdkError> {
        let filename = top.name().to_string();
        let mut img = Image {
            filename: filename.clone(),
            files: vec![NodeFile { file: top, role: "file".to_string() }],
            extents: Vec::new(),
            create_type: None,
            cid: 0,
            parent_cid: 0,
            backing: None,
            tables: crate::tables::TableCache::default(),
            grain: crate::read::GrainCache::default(),
        };
        let buf = img.read_desc(0, 0)?;
        let magic = be32(&buf, 0);
        let desc_offset = if magic == VMDK3_MAGIC || magic == VMDK4_MAGIC {
            img.open_sparse(0, &buf, 0)?;
            SPARSE_DESC_OFFSET
        } else {
            img.open_descriptor(&buf, 0)?;
            0
        };

        // qemu reads the descriptor area three times: for the parent's name
        // (all 20 sectors) and for each CID (the last byte cut off).
        let desc = img.files[0].read(desc_offset, DESC_SIZE);
        let hint = descriptor::parent_hint(&desc)
            .map_err(|()| VmdkError::BadParentHint(filename.clone()))?;
        img.backing = hint.filter(|h| !h.is_empty());
        let cid_area = &desc[..DESC_SIZE - 1];
        img.cid = descriptor::read_cid(cid_area, false)
            .ok_or_else(|| VmdkError::NoCid(filename.clone()))?;
        img.parent_cid = descriptor::read_cid(cid_area, true)
            .ok_or_else(|| VmdkError::NoCid(filename.clone()))?;
        Ok(img)
    }

    /// The guest size in sectors.
    pub fn total_sectors(&self) -> i64 {
        self.extents.last().map_or(0, |e| e.end_sector)
    }

    /// qemu's `vmdk_read_desc`: the text at `offset` of a file, at most
    /// 1 MiB - 1 bytes, read as a C string (at least 4 bytes long).
    fn read_desc(&self, file: usize, offset: u64) -> Result<Vec<u8>, VmdkError> {
        let f = &self.files[file];
        let size = f.file.sector_len();
        if size < 4 {
            return Err(VmdkError::FileTooSmall);
        }
        let size = size.min(MAX_DESC_READ) as usize;
        Ok(f.read(offset, size))
    }

    /// Appends an extent after the last one (qemu's `vmdk_add_extent`).
    fn add_extent(
        &mut self,
        file: usize,
        kind: ExtentKind,
        sectors: i64,
        cluster_sectors: u64,
        l1_size: u32,
    ) -> Result<(), VmdkError> {
        if cluster_sectors > MAX_CLUSTER_SECTORS {
            return Err(VmdkError::InvalidGranularity);
        }
        if l1_size > MAX_L1_SIZE {
            return Err(VmdkError::L1TooBig);
        }
        let start = self.total_sectors();
        #[allow(
            clippy::cast_sign_loss,
            reason = "qemu stores a flat extent's int64_t sectors in `uint64_t cluster_sectors`"
        )]
        let cluster_sectors =
            if matches!(kind, ExtentKind::Flat { .. }) { sectors as u64 } else { cluster_sectors };
        self.extents.push(Extent {
            file,
            kind,
            type_name: None,
            sectors,
            end_sector: start.wrapping_add(sectors),
            cluster_sectors,
        });
        Ok(())
    }

    /// Checks that a grain directory can be read where it is said to be
    /// (qemu's `vmdk_init_tables`: reads that the block layer refuses).
    fn check_table_offsets(&self, file: usize, e: &SparseExtent) -> Result<(), VmdkError> {
        #[allow(
            clippy::cast_possible_wrap,
            reason = "at most 32 Mi entries of 8 bytes (`L1 size too big` in add_extent)"
        )]
        let bytes = (u64::from(e.l1_size) * e.entry_size()) as i64;
        let readable =
            |offset: u64| i64::try_from(offset).is_ok_and(|o| o.checked_add(bytes).is_some());
        if !readable(e.l1_offset) {
            return Err(VmdkError::L1Unreadable(self.files[file].file.name().to_string()));
        }
        if e.l1_backup_offset != 0 && !readable(e.l1_backup_offset) {
            return Err(VmdkError::L1BackupUnreadable(self.files[file].file.name().to_string()));
        }
        Ok(())
    }

    /// Opens the sparse extent in `files[file]`, whose first bytes are `buf`.
    fn open_sparse(&mut self, file: usize, buf: &[u8], depth: usize) -> Result<(), VmdkError> {
        let magic = be32(buf, 0);
        match magic {
            VMDK3_MAGIC => self.open_cowd(file),
            VMDK4_MAGIC => self.open_vmdk4(file, depth),
            _ => Err(VmdkError::NotVmdk),
        }
    }

    /// An ESX sparse extent (qemu's `vmdk_open_vmfs_sparse`).
    fn open_cowd(&mut self, file: usize) -> Result<(), VmdkError> {
        let h = CowdHeader::from_bytes(&self.files[file].read(4, CowdHeader::SIZE));
        let l1_entry_sectors = CowdHeader::GT_ENTRIES.wrapping_mul(h.granularity);
        if l1_entry_sectors == 0 {
            // qemu would divide by zero on the first lookup.
            return Err(VmdkError::InvalidGranularity);
        }
        let sparse = SparseExtent {
            l1_offset: u64::from(h.l1dir_offset) << 9,
            l1_backup_offset: 0,
            l1_size: h.l1dir_size,
            l2_size: CowdHeader::GT_ENTRIES,
            l1_entry_sectors,
            has_zero_grain: false,
            compressed: false,
            has_marker: false,
            version: 0,
            se: None,
        };
        self.add_extent(
            file,
            ExtentKind::Sparse(sparse),
            i64::from(h.disk_sectors),
            u64::from(h.granularity),
            h.l1dir_size,
        )?;
        self.check_table_offsets(file, &sparse)
    }

    /// A hosted sparse extent (qemu's `vmdk_open_vmdk4`).
    fn open_vmdk4(&mut self, file: usize, depth: usize) -> Result<(), VmdkError> {
        let f = &self.files[file];
        let mut header = SparseHeader::from_bytes(&f.read(4, SparseHeader::SIZE));
        if header.capacity == 0 && header.desc_offset != 0 {
            // An extent that is only a descriptor.
            let offset = header.desc_offset.wrapping_shl(9);
            if i64::try_from(offset).is_err() {
                return Err(VmdkError::ReadDescriptor);
            }
            let buf = self.read_desc(file, offset)?;
            return self.open_descriptor(&buf, depth + 1);
        }
        if self.create_type.is_none() {
            self.create_type = Some(b"monolithicSparse".to_vec());
        }
        if header.gd_offset == GD_AT_END {
            // The footer sits 1536 bytes before the end of the image file
            // (qemu measures the image file, not this extent's file).
            let end = self.files[0].file.sector_len();
            let Some(at) = end.checked_sub(FOOTER_SIZE as u64) else {
                return Err(VmdkError::FooterUnreadable);
            };
            header = stream::parse_footer(&self.files[file].read(at, FOOTER_SIZE))?;
        }
        let compressed = header.compressed();
        if header.version > 3 {
            return Err(VmdkError::UnsupportedVersion(header.version));
        }
        // Version 3 without compression is refused only for writing; info
        // and check open read-only.
        if header.num_gtes_per_gt > MAX_GTES_PER_GT {
            return Err(VmdkError::L2TooBig);
        }
        #[allow(clippy::cast_possible_truncation, reason = "qemu's `uint32_t l1_entry_sectors`")]
        let l1_entry_sectors =
            u64::from(header.num_gtes_per_gt).wrapping_mul(header.granularity) as u32;
        if l1_entry_sectors == 0 {
            return Err(VmdkError::L1EntryInvalid);
        }
        let l1es = u64::from(l1_entry_sectors);
        #[allow(clippy::cast_possible_truncation, reason = "qemu's `uint32_t l1_size`")]
        let l1_size = (header.capacity.wrapping_add(l1es - 1) / l1es) as u32;
        let l1_backup_offset =
            if header.flags & FLAG_RGD != 0 { header.rgd_offset.wrapping_shl(9) } else { 0 };
        let f = &self.files[file];
        if f.file.sector_len() / SECTOR < header.grain_offset {
            #[allow(
                clippy::cast_possible_wrap,
                reason = "qemu prints `(int64_t)(grain_offset * 512)`"
            )]
            let bytes = header.grain_offset.wrapping_mul(SECTOR) as i64;
            return Err(VmdkError::Truncated(bytes));
        }
        let sparse = SparseExtent {
            l1_offset: header.gd_offset.wrapping_shl(9),
            l1_backup_offset,
            l1_size,
            l2_size: header.num_gtes_per_gt,
            l1_entry_sectors,
            has_zero_grain: header.flags & FLAG_ZERO_GRAIN != 0,
            compressed,
            has_marker: header.flags & FLAG_MARKER != 0,
            version: header.version,
            se: None,
        };
        #[allow(clippy::cast_possible_wrap, reason = "qemu's `int64_t sectors` parameter")]
        let sectors = header.capacity as i64;
        self.add_extent(file, ExtentKind::Sparse(sparse), sectors, header.granularity, l1_size)?;
        if compressed {
            self.create_type = Some(b"streamOptimized".to_vec());
        }
        self.check_table_offsets(file, &sparse)
    }

    /// An ESXi seSparse extent (qemu's `vmdk_open_se_sparse`).
    fn open_se_sparse(&mut self, file: usize) -> Result<(), VmdkError> {
        let f = &self.files[file];
        let h = sesparse::ConstHeader::parse(&f.read(0, sesparse::HEADER_SIZE))?;
        let at = h.volatile_header_offset.wrapping_mul(SECTOR);
        if i64::try_from(at).is_err() {
            return Err(VmdkError::SeSparse(format!(
                "Could not read volatile header from file '{}': Input/output error",
                f.file.name()
            )));
        }
        sesparse::check_volatile_header(&f.read(at, sesparse::HEADER_SIZE))?;
        #[allow(clippy::cast_possible_truncation, reason = "4096: the table size was checked")]
        let l2_size = (h.grain_table_size * SECTOR / 8) as u32;
        #[allow(clippy::cast_possible_truncation, reason = "qemu's `uint32_t l1_size` parameter")]
        let l1_size = (h.grain_dir_size.wrapping_mul(SECTOR) / 8) as u32;
        #[allow(
            clippy::cast_possible_truncation,
            reason = "8: the grain size was checked; qemu's `uint32_t l1_entry_sectors`"
        )]
        let grain_size = h.grain_size as u32;
        let sparse = SparseExtent {
            l1_offset: h.grain_dir_offset.wrapping_mul(SECTOR),
            l1_backup_offset: 0,
            l1_size,
            l2_size,
            l1_entry_sectors: l2_size.wrapping_mul(grain_size),
            has_zero_grain: false,
            compressed: false,
            has_marker: false,
            version: 0,
            se: Some(SeSparseAreas {
                l2_tables_offset: h.grain_tables_offset,
                clusters_offset: h.grains_offset,
            }),
        };
        #[allow(clippy::cast_possible_wrap, reason = "qemu's `int64_t sectors` parameter")]
        let sectors = h.capacity as i64;
        self.add_extent(file, ExtentKind::Sparse(sparse), sectors, h.grain_size, l1_size)?;
        self.check_table_offsets(file, &sparse)
    }

    /// A text descriptor (qemu's `vmdk_open_desc_file`).
    fn open_descriptor(&mut self, buf: &[u8], depth: usize) -> Result<(), VmdkError> {
        if depth > MAX_NESTING {
            return Err(VmdkError::NestingTooDeep);
        }
        let ct = descriptor::parse_description(buf, b"createType")
            .ok_or(VmdkError::InvalidDescriptor)?;
        if !DESCRIPTOR_TYPES.contains(&ct.as_slice()) {
            return Err(VmdkError::UnsupportedImageType(instar_core::rawtext::from_bytes(&ct)));
        }
        self.create_type = Some(ct);
        self.parse_extents(buf, depth)
    }

    /// The extent lines of a descriptor (qemu's `vmdk_parse_extents`).
    fn parse_extents(&mut self, buf: &[u8], depth: usize) -> Result<(), VmdkError> {
        // `sectors` keeps its value from line to line, as qemu's does.
        let mut sectors = 0i64;
        for (rest, line) in descriptor::lines(buf) {
            let s = descriptor::scan_extent(rest, sectors);
            sectors = s.sectors;
            if s.matches < 4 || s.access != b"RW" {
                continue;
            }
            let kind = s.kind.as_slice();
            let mut flat_offset = s.flat_offset;
            let valid = match kind {
                b"FLAT" => s.matches == 5 && flat_offset >= 0,
                b"VMFS" => {
                    flat_offset = 0;
                    s.matches == 4
                }
                _ => s.matches == 4,
            };
            if !valid {
                return Err(VmdkError::InvalidExtentLine(instar_core::rawtext::from_bytes(line)));
            }
            if sectors <= 0 || !EXTENT_TYPES.contains(&kind) {
                continue;
            }
            let path = path::combine(&instar_core::rawtext::to_bytes(&self.filename), &s.file_name);
            let role = format!("extents.{}", self.extents.len());
            let file = NodeFile::open(&self.files[0].file, &path, role)?;
            self.files.push(file);
            let index = self.files.len() - 1;
            match kind {
                b"FLAT" | b"VMFS" => {
                    #[allow(
                        clippy::cast_sign_loss,
                        reason = "qemu's `flat_offset << 9`, same bits"
                    )]
                    let start = (flat_offset as u64).wrapping_shl(9);
                    self.add_extent(index, ExtentKind::Flat { start }, sectors, 0, 0)?;
                }
                b"SPARSE" | b"VMFSSPARSE" => {
                    let head = self.read_desc(index, 0)?;
                    self.open_sparse(index, &head, depth)?;
                }
                _ => self.open_se_sparse(index)?,
            }
            if let Some(last) = self.extents.last_mut() {
                last.type_name = Some(kind.to_vec());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grain::SparseLayout;

    fn write(dir: &std::path::Path, name: &str, bytes: &[u8]) -> String {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p.to_str().unwrap().to_string()
    }

    fn sparse_image(size: u64, desc: &str) -> Vec<u8> {
        let l = SparseLayout::new(size);
        let mut b = vec![0u8; usize::try_from(l.file_len()).unwrap()];
        b[..79].copy_from_slice(&l.header(false, false).to_bytes());
        b[512..512 + desc.len()].copy_from_slice(desc.as_bytes());
        b
    }

    #[test]
    fn opens_a_monolithic_sparse_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = write(dir.path(), "a.vmdk", &sparse_image(1 << 20, "CID=1a\nparentCID=ffffffff\n"));
        let img = Image::open(ImageFile::open(&f).unwrap()).unwrap();
        assert_eq!((img.cid, img.parent_cid), (0x1a, 0xffff_ffff));
        assert_eq!(img.create_type.as_deref(), Some(&b"monolithicSparse"[..]));
        assert_eq!(img.total_sectors(), 2048);
        assert_eq!(img.extents[0].cluster_sectors, 128);
        assert!(img.backing.is_none());
    }

    #[test]
    fn refuses_what_qemu_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let msg = |bytes: &[u8]| {
            let f = write(dir.path(), "x.vmdk", bytes);
            Image::open(ImageFile::open(&f).unwrap()).unwrap_err().to_string()
        };
        assert_eq!(msg(b""), "File is too small, not a valid image");
        assert_eq!(msg(b"hello"), "invalid VMDK image descriptor");
        assert_eq!(
            msg(b"createType=\"monolithicSparse\""),
            "Unsupported image type 'monolithicSparse'"
        );
        assert_eq!(
            msg(b"createType=\"monolithicFlat\"\nRW 8 FLAT \"f\"\n"),
            "Invalid extent line: RW 8 FLAT \"f\""
        );
        let mut img = sparse_image(1 << 20, "CID=1\nparentCID=2\n");
        img[4] = 4;
        assert_eq!(msg(&img), "Unsupported VMDK version 4");
        let mut img = sparse_image(1 << 20, "CID=1\nparentCID=2\n");
        img.truncate(4096);
        assert_eq!(msg(&img), "File truncated, expecting at least 65536 bytes");
        let f = dir.path().join("x.vmdk");
        let name = f.to_str().unwrap();
        assert_eq!(
            msg(&sparse_image(1 << 20, "nothing")),
            format!("Could not open '{name}': Invalid argument")
        );
    }
}
