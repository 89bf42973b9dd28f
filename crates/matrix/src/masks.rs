//! The byte masks of docs/compat.md §3 (§3.2–§3.6): the only places where the file instar writes
//! may differ from the file qemu-img writes for the same case, and the
//! comparison that honours them.
//!
//! - raw, qcow2: no mask. Two qemu-img runs write identical files.
//! - vmdk: the descriptor's `CID=` value, a random 32-bit number written in
//!   lower-case hex without padding, so the text after it shifts when it has
//!   fewer than 8 digits. The descriptor is compared as text with that value
//!   replaced; its zero padding must still fill the same region.
//! - vpc: in each footer (offset 0 of a dynamic disk, and the last 512
//!   bytes), the timestamp (+24, 4 bytes), checksum (+64, 4) and unique id
//!   (+68, 16).
//! - vhdx: the creator string of the file identifier (8..520); in both
//!   headers (0x10000, 0x20000) the checksum (+4, 4), sequence number
//!   (+8, 8), FileWriteGuid (+16, 16) and DataWriteGuid (+32, 16); and the
//!   Page 83 (virtual disk id) metadata item, wherever the metadata table
//!   puts it; in each log entry a written image holds (convert), its
//!   checksum (+4, 4), LogGuid (+32, 16) and the uncleared rest of its
//!   descriptor sectors (docs/compat.md §11.5).
//!
//! Masks are computed from the reference file (qemu-img's). If the other
//! file lays its structures out elsewhere, its random bytes land outside the
//! mask and are reported. Masked fields are still checked for being well
//! formed ([`masked_field_problems`]): a checksum must be right, a CID must
//! look like qemu's.

use crate::cases::Target;
use crate::files;
use std::fmt;
use std::io;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// vpc: size of the footer.
pub const VPC_FOOTER_SIZE: u64 = 512;
/// vpc: the footer's cookie.
pub const VPC_COOKIE: &[u8; 8] = b"conectix";
/// vpc footer field offsets masked for being time- or random-dependent.
pub const VPC_FOOTER_TIMESTAMP: Range<u64> = 24..28;
/// vpc footer checksum (one's complement of the byte sum).
pub const VPC_FOOTER_CHECKSUM: Range<u64> = 64..68;
/// vpc footer unique id.
pub const VPC_FOOTER_UUID: Range<u64> = 68..84;

/// vhdx: the creator string inside the file identifier.
pub const VHDX_CREATOR: Range<u64> = 8..520;
/// vhdx: the two header copies.
pub const VHDX_HEADER_OFFSETS: [u64; 2] = [0x1_0000, 0x2_0000];
/// vhdx: the size of a header (checksummed as a whole).
pub const VHDX_HEADER_SIZE: u64 = 4096;
/// vhdx header checksum.
pub const VHDX_HEADER_CHECKSUM: Range<u64> = 4..8;
/// vhdx header sequence number.
pub const VHDX_HEADER_SEQUENCE: Range<u64> = 8..16;
/// vhdx header FileWriteGuid.
pub const VHDX_HEADER_FILE_WRITE_GUID: Range<u64> = 16..32;
/// vhdx header DataWriteGuid.
pub const VHDX_HEADER_DATA_WRITE_GUID: Range<u64> = 32..48;
/// vhdx header: the log's length (u32 little-endian).
pub const VHDX_HEADER_LOG_LENGTH: usize = 68;
/// vhdx header: the log's offset (u64 little-endian).
pub const VHDX_HEADER_LOG_OFFSET: usize = 72;
/// vhdx: the log's unit, and the alignment of its entries.
pub const VHDX_LOG_SECTOR: u64 = 4096;
/// vhdx: a log entry's header (signature, checksum, length, tail,
/// sequence number, descriptor count, reserved, LogGuid, file offsets).
pub const VHDX_LOG_ENTRY_HEADER: u64 = 64;
/// vhdx log entry: the descriptor count (u32 little-endian).
pub const VHDX_LOG_DESCRIPTOR_COUNT: usize = 24;
/// vhdx: the size of a log descriptor (zero or data).
pub const VHDX_LOG_DESCRIPTOR_SIZE: u64 = 32;
/// vhdx log entry checksum (CRC-32C of the whole entry, so it follows the GUID).
pub const VHDX_LOG_ENTRY_CHECKSUM: Range<u64> = 4..8;
/// vhdx log entry LogGuid, random per log (qemu's vhdx_guid_generate).
pub const VHDX_LOG_ENTRY_GUID: Range<u64> = 32..48;
/// vhdx: a log entry header's signature.
pub const VHDX_LOG_ENTRY_SIGNATURE: &[u8; 4] = b"loge";
/// vhdx: the first region table.
pub const VHDX_REGION_TABLE_OFFSET: u64 = 0x3_0000;
/// vhdx: region table entries start after the 16-byte table header.
pub const VHDX_REGION_ENTRY_START: u64 = 16;
/// vhdx: the size of a region table entry.
pub const VHDX_REGION_ENTRY_SIZE: u64 = 32;
/// vhdx: the metadata region's GUID 8B7CA206-4790-4B9A-B8FE-575F050F886E,
/// as stored (first three fields little-endian).
pub const VHDX_METADATA_REGION_GUID: [u8; 16] =
    guid_bytes(0x8B7C_A206, 0x4790, 0x4B9A, [0xB8, 0xFE, 0x57, 0x5F, 0x05, 0x0F, 0x88, 0x6E]);
/// vhdx: the Page 83 data item's GUID BECA12AB-B2E6-4523-93EF-C309E000C746.
pub const VHDX_PAGE83_GUID: [u8; 16] =
    guid_bytes(0xBECA_12AB, 0xB2E6, 0x4523, [0x93, 0xEF, 0xC3, 0x09, 0xE0, 0x00, 0xC7, 0x46]);
/// vhdx: metadata table entries start after the 32-byte table header.
pub const VHDX_METADATA_ENTRY_START: u64 = 32;
/// vhdx: the size of a metadata table entry.
pub const VHDX_METADATA_ENTRY_SIZE: u64 = 32;
/// vhdx: the most entries a metadata table may hold.
pub const VHDX_METADATA_MAX_ENTRIES: u64 = 2047;

/// vmdk: the sparse extent header's magic.
pub const VMDK_MAGIC: &[u8; 4] = b"KDMV";
/// vmdk: the start of a stand-alone descriptor file.
pub const VMDK_DESCRIPTOR_START: &[u8] = b"# Disk DescriptorFile";
/// vmdk: sector size, the unit of the header's descriptor offset and size.
pub const VMDK_SECTOR: u64 = 512;
/// vmdk: the header's descriptorOffset field (u64 little-endian, sectors).
pub const VMDK_DESC_OFFSET_FIELD: usize = 28;
/// vmdk: the header's descriptorSize field (u64 little-endian, sectors).
pub const VMDK_DESC_SIZE_FIELD: usize = 36;
/// The placeholder a CID value becomes in a compared descriptor.
pub const CID_PLACEHOLDER: &str = "$CID";

/// A GUID as stored on disk by Microsoft formats.
const fn guid_bytes(d1: u32, d2: u16, d3: u16, d4: [u8; 8]) -> [u8; 16] {
    let a = d1.to_le_bytes();
    let b = d2.to_le_bytes();
    let c = d3.to_le_bytes();
    [
        a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d4[0], d4[1], d4[2], d4[3], d4[4], d4[5],
        d4[6], d4[7],
    ]
}

/// Where two files of a target may differ.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Masks {
    /// Byte ranges ignored outright.
    pub ignored: Vec<Range<u64>>,
    /// A text region (vmdk descriptor) compared after its CID value is
    /// replaced; ignored by the byte comparison.
    pub descriptor: Option<Range<u64>>,
}

impl Masks {
    /// Whether the mask makes the whole of a `len`-byte reference a
    /// descriptor: a stand-alone vmdk descriptor file, compared as text
    /// only, whose length follows its CID's.
    fn whole_file_descriptor(&self, len: u64) -> bool {
        self.descriptor == Some(0..len)
    }

    /// Whether `offset` is covered by a mask.
    pub fn covers(&self, offset: u64) -> bool {
        self.ignored.iter().any(|r| r.contains(&offset))
            || self.descriptor.as_ref().is_some_and(|r| r.contains(&offset))
    }
}

/// A file that is too short or malformed for its masks to be found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaskError(pub String);

impl fmt::Display for MaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for MaskError {}

/// Reads `len` bytes at `offset` of an image held in memory.
fn slice_at(image: &[u8], offset: u64, len: u64) -> Result<&[u8], MaskError> {
    let start =
        usize::try_from(offset).map_err(|_| MaskError(format!("offset {offset} out of reach")))?;
    let end = start.saturating_add(usize::try_from(len).unwrap_or(usize::MAX));
    image
        .get(start..end)
        .ok_or_else(|| MaskError(format!("the file ends before {len} bytes at offset {offset:#x}")))
}

/// Random access to an image: `read(offset, len)` returns exactly `len`
/// bytes or an error. Lets the masks be found in memory (unit tests) and in
/// files (the tests) by the same code.
pub trait ImageSource {
    /// The image's length in bytes.
    fn len(&self) -> u64;
    /// Whether the image is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// `len` bytes at `offset`.
    fn read(&self, offset: u64, len: u64) -> Result<Vec<u8>, MaskError>;
}

impl ImageSource for [u8] {
    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }
    fn read(&self, offset: u64, len: u64) -> Result<Vec<u8>, MaskError> {
        slice_at(self, offset, len).map(<[u8]>::to_vec)
    }
}

/// An image file opened for [`ImageSource`] reads.
pub struct FileSource {
    path: std::path::PathBuf,
    file: std::fs::File,
    len: u64,
}

impl FileSource {
    /// Opens `path`.
    pub fn open(path: &Path) -> io::Result<FileSource> {
        let file = std::fs::File::open(path)?;
        let len = file.metadata()?.len();
        Ok(FileSource { path: path.to_path_buf(), file, len })
    }
}

impl ImageSource for FileSource {
    fn len(&self) -> u64 {
        self.len
    }
    fn read(&self, offset: u64, len: u64) -> Result<Vec<u8>, MaskError> {
        if offset.checked_add(len).is_none_or(|end| end > self.len) || len > MAX_METADATA_READ {
            return Err(MaskError(format!(
                "the file ends before {len} bytes at offset {offset:#x}"
            )));
        }
        let mut buf = vec![0u8; len as usize];
        self.file
            .read_exact_at(&mut buf, offset)
            .map_err(|e| MaskError(format!("{}: {e}", self.path.display())))?;
        Ok(buf)
    }
}

/// The most a mask lookup reads at once (a vmdk descriptor, a vhdx table).
const MAX_METADATA_READ: u64 = 64 * 1024 * 1024;

fn u32_le(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_le(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

fn shift(r: &Range<u64>, by: u64) -> Range<u64> {
    r.start + by..r.end + by
}
/// The masks of a `target` image, found in its own metadata.
pub fn masks_for<S: ImageSource + ?Sized>(target: Target, image: &S) -> Result<Masks, MaskError> {
    match target {
        Target::Raw | Target::Qcow2 => Ok(Masks::default()),
        Target::Vhd => vpc_masks(image),
        Target::Vhdx => vhdx_masks(image),
        Target::Vmdk => vmdk_masks(image),
    }
}

/// The offsets of a vpc image's footers: the last 512 bytes, and offset 0
/// when a copy of the footer starts the file (dynamic disks; a fixed disk
/// starts with data, which must then match in full).
fn vpc_footers<S: ImageSource + ?Sized>(image: &S) -> Result<Vec<u64>, MaskError> {
    let len = image.len();
    if len < VPC_FOOTER_SIZE {
        return Err(MaskError("too short for a vpc footer".to_string()));
    }
    let end = len - VPC_FOOTER_SIZE;
    if image.read(end, 8)? != VPC_COOKIE {
        return Err(MaskError("no vpc footer in the last 512 bytes".to_string()));
    }
    let mut footers = vec![end];
    if end != 0 && image.read(0, 8)? == VPC_COOKIE {
        footers.insert(0, 0);
    }
    Ok(footers)
}

fn vpc_masks<S: ImageSource + ?Sized>(image: &S) -> Result<Masks, MaskError> {
    let fields = [VPC_FOOTER_TIMESTAMP, VPC_FOOTER_CHECKSUM, VPC_FOOTER_UUID];
    let ignored = vpc_footers(image)?
        .into_iter()
        .flat_map(|at| fields.iter().map(move |r| shift(r, at)))
        .collect();
    Ok(Masks { ignored, descriptor: None })
}

fn vhdx_masks<S: ImageSource + ?Sized>(image: &S) -> Result<Masks, MaskError> {
    let mut ignored = vec![VHDX_CREATOR];
    for h in VHDX_HEADER_OFFSETS {
        for field in [
            VHDX_HEADER_CHECKSUM,
            VHDX_HEADER_SEQUENCE,
            VHDX_HEADER_FILE_WRITE_GUID,
            VHDX_HEADER_DATA_WRITE_GUID,
        ] {
            ignored.push(shift(&field, h));
        }
    }
    ignored.push(vhdx_page83(image)?);
    for entry in vhdx_log_entries(image)? {
        ignored.push(shift(&VHDX_LOG_ENTRY_CHECKSUM, entry));
        ignored.push(shift(&VHDX_LOG_ENTRY_GUID, entry));
        ignored.push(vhdx_log_descriptor_tail(image, entry)?);
    }
    Ok(Masks { ignored, descriptor: None })
}

/// The bytes of a log entry's descriptor sectors after its last
/// descriptor: qemu allocates the entry's buffer without clearing it
/// (qemu_blockalign in vhdx_log_write) and writes only the header and the
/// descriptors there, so the rest holds whatever that memory held before
/// (measured: guest data of earlier writes, different run to run).
fn vhdx_log_descriptor_tail<S: ImageSource + ?Sized>(
    image: &S,
    entry: u64,
) -> Result<Range<u64>, MaskError> {
    let head = image.read(entry, VHDX_LOG_ENTRY_HEADER)?;
    let descriptors = u64::from(u32_le(&head, VHDX_LOG_DESCRIPTOR_COUNT));
    let used =
        VHDX_LOG_ENTRY_HEADER.saturating_add(descriptors.saturating_mul(VHDX_LOG_DESCRIPTOR_SIZE));
    let sectors_end = used.div_ceil(VHDX_LOG_SECTOR).saturating_mul(VHDX_LOG_SECTOR);
    Ok(entry.saturating_add(used)..entry.saturating_add(sectors_end))
}

/// Where the log entries of a vhdx image start: every 4 KiB log sector
/// (of the log the first header names) that starts with `loge`. qemu's
/// create writes no entry; its writes after an open (convert's copy) log
/// the metadata they change, each entry under a LogGuid drawn at random,
/// and the log wraps around, so entries are found sector by sector.
fn vhdx_log_entries<S: ImageSource + ?Sized>(image: &S) -> Result<Vec<u64>, MaskError> {
    let header = image.read(VHDX_HEADER_OFFSETS[0], VHDX_HEADER_SIZE)?;
    let length = u64::from(u32_le(&header, VHDX_HEADER_LOG_LENGTH));
    let start = u64_le(&header, VHDX_HEADER_LOG_OFFSET);
    let end = start.saturating_add(length).min(image.len());
    let mut entries = Vec::new();
    let mut at = start;
    while at < end {
        let n = (end - at).min(CHUNK);
        let chunk = image.read(at, n)?;
        for (i, sector) in chunk.chunks(VHDX_LOG_SECTOR as usize).enumerate() {
            if sector.starts_with(VHDX_LOG_ENTRY_SIGNATURE) {
                entries.push(at + i as u64 * VHDX_LOG_SECTOR);
            }
        }
        at += n;
    }
    Ok(entries)
}

/// Where the Page 83 item's bytes are: region table -> metadata region ->
/// metadata table entry -> item.
fn vhdx_page83<S: ImageSource + ?Sized>(image: &S) -> Result<Range<u64>, MaskError> {
    let table = image.read(VHDX_REGION_TABLE_OFFSET, VHDX_TABLE_SIZE)?;
    if &table[..4] != b"regi" {
        return Err(MaskError("no vhdx region table at 0x30000".to_string()));
    }
    let count = u64::from(u32_le(&table, 8));
    let metadata = (0..count)
        .map(|i| (VHDX_REGION_ENTRY_START + i * VHDX_REGION_ENTRY_SIZE) as usize)
        .take_while(|&at| at + 32 <= table.len())
        .find(|&at| table[at..at + 16] == VHDX_METADATA_REGION_GUID)
        .map(|at| u64_le(&table, at + 16))
        .ok_or_else(|| MaskError("the vhdx region table has no metadata region".to_string()))?;
    let mtable = image.read(metadata, VHDX_TABLE_SIZE)?;
    if &mtable[..8] != b"metadata" {
        return Err(MaskError(format!("no vhdx metadata table at {metadata:#x}")));
    }
    let entries =
        u64::from(u16::from_le_bytes([mtable[10], mtable[11]])).min(VHDX_METADATA_MAX_ENTRIES);
    for i in 0..entries {
        let at = (VHDX_METADATA_ENTRY_START + i * VHDX_METADATA_ENTRY_SIZE) as usize;
        let Some(entry) = mtable.get(at..at + 32) else { break };
        if entry[..16] == VHDX_PAGE83_GUID {
            let offset = metadata + u64::from(u32_le(entry, 16));
            let length = u64::from(u32_le(entry, 20));
            return Ok(offset..offset + length);
        }
    }
    Err(MaskError("the vhdx metadata table has no Page 83 item".to_string()))
}

/// vhdx: the region and metadata tables are 64 KiB each.
const VHDX_TABLE_SIZE: u64 = 64 * 1024;

fn vmdk_masks<S: ImageSource + ?Sized>(image: &S) -> Result<Masks, MaskError> {
    let start = image.read(0, VMDK_DESCRIPTOR_START.len().min(image.len() as usize) as u64)?;
    if start.starts_with(VMDK_MAGIC) {
        let header = image.read(0, VMDK_SECTOR)?;
        let offset = u64_le(&header, VMDK_DESC_OFFSET_FIELD).saturating_mul(VMDK_SECTOR);
        let size = u64_le(&header, VMDK_DESC_SIZE_FIELD).saturating_mul(VMDK_SECTOR);
        if offset == 0 || size == 0 {
            return Err(MaskError("the vmdk header names no embedded descriptor".to_string()));
        }
        return Ok(Masks {
            ignored: Vec::new(),
            descriptor: Some(offset..offset.saturating_add(size)),
        });
    }
    if start == VMDK_DESCRIPTOR_START {
        return Ok(Masks { ignored: Vec::new(), descriptor: Some(0..image.len()) });
    }
    Err(MaskError("neither a vmdk sparse header nor a descriptor file".to_string()))
}

/// The most bytes of an older, longer text that a CID rewrite leaves
/// after the new text's NUL: qemu's `vmdk_write_cid` writes the new CID
/// (1 to 8 hex digits, random) over the old one in place, so when it is
/// shorter, up to 7 bytes of the old text's end stay behind the NUL.
pub const CID_REWRITE_LEFTOVER: usize = 7;

/// A descriptor region as compared: its text (up to the first NUL) with
/// the CID value replaced, and whether what follows the text is what
/// qemu may leave there: zeros, or, right after the NUL, at most
/// [`CID_REWRITE_LEFTOVER`] bytes repeating the text's own last bytes
/// (the end of the text before a CID rewrite shortened it) and then
/// zeros.
pub fn normalise_descriptor(region: &[u8]) -> (String, bool) {
    let text_len = region.iter().position(|&b| b == 0).unwrap_or(region.len());
    let text = String::from_utf8_lossy(&region[..text_len]);
    let lines: Vec<String> = text
        .split('\n')
        .map(|line| {
            if line.starts_with("CID=") {
                format!("CID={CID_PLACEHOLDER}")
            } else {
                line.to_string()
            }
        })
        .collect();
    (lines.join("\n"), padded_after_cid_rewrite(&region[..text_len], &region[text_len..]))
}

/// Whether `after` (from the NUL ending `text` on) is zeros, or the NUL,
/// a repeat of the last bytes of `text` no longer than
/// [`CID_REWRITE_LEFTOVER`], and zeros.
fn padded_after_cid_rewrite(text: &[u8], after: &[u8]) -> bool {
    let rest = after.get(1..).unwrap_or_default();
    let left = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
    let zeros = rest[left..].iter().all(|&b| b == 0);
    zeros && left <= CID_REWRITE_LEFTOVER && text.ends_with(&rest[..left])
}

/// The CID values of a descriptor region.
pub fn descriptor_cids(region: &[u8]) -> Vec<String> {
    let text_len = region.iter().position(|&b| b == 0).unwrap_or(region.len());
    String::from_utf8_lossy(&region[..text_len])
        .lines()
        .filter_map(|l| l.strip_prefix("CID=").map(str::to_string))
        .collect()
}

/// Whether `value` is written as qemu writes a CID: `%x` of a 32-bit
/// number, lower case, no zero padding.
pub fn cid_is_well_formed(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 8
        && value.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && (value == "0" || !value.starts_with('0'))
}

/// How two files differ outside the masks.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Differences {
    /// The two lengths, when they differ.
    pub lengths: Option<(u64, u64)>,
    /// The first differing bytes: (offset, reference byte, other byte).
    pub bytes: Vec<(u64, u8, u8)>,
    /// How many bytes differ in all (outside the masks).
    pub count: u64,
    /// The two normalised descriptors, when they differ.
    pub descriptor: Option<(String, String)>,
}

/// How many differing bytes a report lists.
const SHOWN_BYTES: usize = 32;

impl Differences {
    /// Whether nothing differs.
    pub fn is_empty(&self) -> bool {
        self.lengths.is_none() && self.count == 0 && self.descriptor.is_none()
    }
}

impl fmt::Display for Differences {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some((a, b)) = self.lengths {
            writeln!(f, "lengths differ: reference {a} bytes, other {b} bytes")?;
        }
        if self.count > 0 {
            writeln!(
                f,
                "{} bytes differ outside the masks (offset: reference other, as cmp -l):",
                self.count
            )?;
            for (off, a, b) in &self.bytes {
                writeln!(f, "  {off:#010x}: {a:02x} {b:02x}")?;
            }
            if self.count > self.bytes.len() as u64 {
                writeln!(f, "  ...")?;
            }
        }
        if let Some((a, b)) = &self.descriptor {
            writeln!(f, "descriptors differ:\n--- reference\n{a}\n--- other\n{b}")?;
        }
        Ok(())
    }
}

/// Compares two in-memory images of `target` outside the masks found in
/// `reference`.
pub fn compare_bytes(
    target: Target,
    reference: &[u8],
    other: &[u8],
) -> Result<Differences, MaskError> {
    let masks = masks_for(target, reference)?;
    let mut diff = Differences::default();
    let whole = masks.whole_file_descriptor(reference.len() as u64);
    if reference.len() != other.len() && !whole {
        diff.lengths = Some((reference.len() as u64, other.len() as u64));
    }
    compare_chunk(&masks, 0, reference, other, &mut diff);
    compare_descriptors(&masks, reference, other, &mut diff);
    Ok(diff)
}

/// Counts the bytes of two aligned chunks that differ outside the masks.
fn compare_chunk(masks: &Masks, base: u64, a: &[u8], b: &[u8], diff: &mut Differences) {
    let n = a.len().min(b.len());
    if a[..n] == b[..n] {
        return;
    }
    for i in 0..n {
        if a[i] != b[i] && !masks.covers(base + i as u64) {
            diff.count += 1;
            if diff.bytes.len() < SHOWN_BYTES {
                diff.bytes.push((base + i as u64, a[i], b[i]));
            }
        }
    }
}

/// Compares the descriptor regions as normalised text.
fn compare_descriptors<A, B>(masks: &Masks, reference: &A, other: &B, diff: &mut Differences)
where
    A: ImageSource + ?Sized,
    B: ImageSource + ?Sized,
{
    let Some(range) = &masks.descriptor else { return };
    // A stand-alone descriptor is each file whole, whatever its length.
    let other_range = match masks.whole_file_descriptor(reference.len()) {
        true => 0..other.len(),
        false => range.clone(),
    };
    let region = |r: &Range<u64>, s: &dyn Fn(u64, u64) -> Result<Vec<u8>, MaskError>| {
        s(r.start, r.end - r.start).map(|r| normalise_descriptor(&r)).unwrap_or_default()
    };
    let (a, a_padded) = region(range, &|o, l| reference.read(o, l));
    let (b, b_padded) = region(&other_range, &|o, l| other.read(o, l));
    if a != b || a_padded != b_padded {
        let pad = |ok: bool| if ok { "" } else { "\n(non-zero bytes after the text)" };
        diff.descriptor = Some((format!("{a}{}", pad(a_padded)), format!("{b}{}", pad(b_padded))));
    }
}

/// The most a streamed comparison reads of each file at once.
const CHUNK: u64 = 1024 * 1024;

/// An error of [`compare_files`].
#[derive(Debug)]
pub enum CompareError {
    /// A file could not be read.
    Io(std::path::PathBuf, io::Error),
    /// The reference's masks could not be found.
    Mask(MaskError),
}

impl fmt::Display for CompareError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompareError::Io(p, e) => write!(f, "{}: {e}", p.display()),
            CompareError::Mask(e) => write!(f, "masks of the reference: {e}"),
        }
    }
}

impl std::error::Error for CompareError {}

/// Compares two image files of `target` outside the masks found in
/// `reference`. Only the ranges where either file holds data are read (a
/// hole reads as zeros in both), in chunks of 1 MiB.
pub fn compare_files(
    target: Target,
    reference: &Path,
    other: &Path,
) -> Result<Differences, CompareError> {
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |e| CompareError::Io(p, e)
    };
    let src_a = FileSource::open(reference).map_err(io(reference))?;
    let src_b = FileSource::open(other).map_err(io(other))?;
    let masks = masks_for(target, &src_a).map_err(CompareError::Mask)?;
    let mut diff = Differences::default();
    if src_a.len != src_b.len && !masks.whole_file_descriptor(src_a.len) {
        diff.lengths = Some((src_a.len, src_b.len));
    }
    let common = src_a.len.min(src_b.len);
    let ranges = files::union(
        &files::data_ranges(&src_a.file, src_a.len).map_err(io(reference))?,
        &files::data_ranges(&src_b.file, src_b.len).map_err(io(other))?,
    );
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for range in ranges {
        let mut pos = range.start;
        let end = range.end.min(common);
        while pos < end {
            let n = (end - pos).min(CHUNK) as usize;
            a.resize(n, 0);
            b.resize(n, 0);
            src_a.file.read_exact_at(&mut a, pos).map_err(io(reference))?;
            src_b.file.read_exact_at(&mut b, pos).map_err(io(other))?;
            compare_chunk(&masks, pos, &a, &b, &mut diff);
            pos += n as u64;
        }
    }
    compare_descriptors(&masks, &src_a, &src_b, &mut diff);
    Ok(diff)
}

/// What is wrong with the masked fields of an image: a masked field may
/// hold any value qemu could have written, but it must be one qemu could
/// have written (a right checksum, a CID in qemu's form).
pub fn masked_field_problems<S: ImageSource + ?Sized>(target: Target, image: &S) -> Vec<String> {
    let masks = match masks_for(target, image) {
        Ok(m) => m,
        Err(e) => return vec![e.0],
    };
    let mut problems = Vec::new();
    let mut check = |what: Result<Option<String>, MaskError>| match what {
        Ok(Some(p)) => problems.push(p),
        Ok(None) => {}
        Err(e) => problems.push(e.0),
    };
    match target {
        Target::Raw | Target::Qcow2 => {}
        Target::Vhd => {
            for at in vpc_footers(image).unwrap_or_default() {
                check(image.read(at, VPC_FOOTER_SIZE).map(|footer| {
                    let stored = u32::from_be_bytes(footer[64..68].try_into().expect("4 bytes"));
                    let want = vpc_checksum(&footer);
                    (stored != want).then(|| {
                        format!(
                            "vpc footer at {at:#x}: checksum {stored:#010x}, expected {want:#010x}"
                        )
                    })
                }));
            }
        }
        Target::Vhdx => {
            for h in VHDX_HEADER_OFFSETS {
                check(image.read(h, VHDX_HEADER_SIZE).map(|header| {
                    let field = VHDX_HEADER_CHECKSUM.start as usize;
                    let stored = u32_le(&header, field);
                    let want = vhdx_checksum(&header, field);
                    (stored != want).then(|| {
                        format!(
                            "vhdx header at {h:#x}: checksum {stored:#010x}, expected {want:#010x}"
                        )
                    })
                }));
            }
            for at in vhdx_log_entries(image).unwrap_or_default() {
                check(image.read(at, VHDX_LOG_ENTRY_HEADER).and_then(|head| {
                    let size = u64::from(u32_le(&head, 8)).min(MAX_METADATA_READ);
                    image.read(at, size).map(|entry| {
                        let field = VHDX_LOG_ENTRY_CHECKSUM.start as usize;
                        let stored = u32_le(&entry, field);
                        let want = vhdx_checksum(&entry, field);
                        (stored != want).then(|| {
                            format!("vhdx log entry at {at:#x}: checksum {stored:#010x}, expected {want:#010x}")
                        })
                    })
                }));
            }
        }
        Target::Vmdk => {
            if let Some(range) = &masks.descriptor {
                check(image.read(range.start, range.end - range.start).map(|region| {
                    let cids = descriptor_cids(&region);
                    (cids.len() != 1 || !cid_is_well_formed(&cids[0])).then(|| {
                        format!(
                            "vmdk descriptor CID lines {cids:?}: want one, written as %x of a u32"
                        )
                    })
                }));
            }
        }
    }
    problems
}

/// The vpc footer checksum: the one's complement of the sum of the footer's
/// bytes, the checksum field counted as zero.
pub fn vpc_checksum(footer: &[u8]) -> u32 {
    vhd_checksum(footer, VPC_FOOTER_CHECKSUM.start as usize)
}

/// A VHD checksum (footer, dynamic header): the one's complement of the
/// sum of the structure's bytes, its 4-byte checksum field at `field`
/// counted as zero.
pub fn vhd_checksum(structure: &[u8], field: usize) -> u32 {
    let sum = structure
        .iter()
        .enumerate()
        .filter(|(i, _)| !(field..field + 4).contains(i))
        .fold(0u32, |acc, (_, &b)| acc.wrapping_add(u32::from(b)));
    !sum
}

/// A VHDX checksum (headers, region tables, log entries): the CRC-32C of
/// the structure, its 4-byte checksum field at `field` counted as zero.
pub fn vhdx_checksum(structure: &[u8], field: usize) -> u32 {
    let crc = crc32c::crc32c(&structure[..field]);
    let crc = crc32c::crc32c_append(crc, &[0u8; 4]);
    crc32c::crc32c_append(crc, &structure[field + 4..])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A vpc footer with a right checksum: cookie, disk type at +60 (BE),
    /// timestamp, uuid.
    fn vpc_footer(disk_type: u32, timestamp: u32, uuid: u8) -> Vec<u8> {
        let mut f = vec![0u8; 512];
        f[..8].copy_from_slice(VPC_COOKIE); // cookie
        f[8..12].copy_from_slice(&2u32.to_be_bytes()); // features
        f[12..16].copy_from_slice(&0x0001_0000u32.to_be_bytes()); // format version
        f[24..28].copy_from_slice(&timestamp.to_be_bytes()); // timestamp
        f[60..64].copy_from_slice(&disk_type.to_be_bytes()); // disk type
        f[68..84].fill(uuid); // unique id
        let sum: u32 = f.iter().map(|&b| u32::from(b)).fold(0, u32::wrapping_add);
        f[64..68].copy_from_slice(&(!sum).to_be_bytes()); // checksum
        f
    }

    /// A dynamic vpc image: footer, 1 KiB of header/BAT, footer.
    fn vpc_dynamic(timestamp: u32, uuid: u8) -> Vec<u8> {
        let footer = vpc_footer(3, timestamp, uuid);
        let mut img = footer.clone();
        img.extend(std::iter::repeat_n(0xAB, 1024));
        img.extend(footer);
        img
    }

    #[test]
    fn vpc_masks_cover_both_footers_of_a_dynamic_disk() {
        let a = vpc_dynamic(100, 1);
        let b = vpc_dynamic(200, 2);
        assert!(compare_bytes(Target::Vhd, &a, &b).unwrap().is_empty());
        assert!(masked_field_problems(Target::Vhd, &b[..]).is_empty());
    }

    #[test]
    fn vpc_catches_a_byte_outside_the_masks() {
        let a = vpc_dynamic(100, 1);
        let mut b = vpc_dynamic(200, 2);
        b[60 + 3] = 2; // disk type of the first footer: fixed instead of dynamic
        let d = compare_bytes(Target::Vhd, &a, &b).unwrap();
        assert_eq!(d.bytes, [(63, 3, 2)]);
        b = vpc_dynamic(200, 2);
        b[700] = 0; // the header/BAT area
        assert_eq!(compare_bytes(Target::Vhd, &a, &b).unwrap().count, 1);
    }

    #[test]
    fn vpc_fixed_disk_has_no_footer_at_zero() {
        let mut a = vec![0u8; 2048];
        a.extend(vpc_footer(2, 1, 1));
        let mut b = a.clone();
        b[24] = 9; // would be the timestamp of a footer at 0, but here it is data
        assert_eq!(compare_bytes(Target::Vhd, &a, &b).unwrap().count, 1);
    }

    #[test]
    fn vpc_wrong_checksum_is_a_problem() {
        let mut b = vpc_dynamic(200, 2);
        b[64] ^= 1;
        assert_eq!(masked_field_problems(Target::Vhd, &b[..]).len(), 1);
    }

    #[test]
    fn checksums_ignore_their_own_field() {
        let footer = vpc_footer(2, 7, 9);
        let stored = u32::from_be_bytes(footer[64..68].try_into().unwrap());
        assert_eq!(vpc_checksum(&footer), stored);
        assert_eq!(vhd_checksum(&footer, 64), stored);
        // The CRC-32C of a block whose checksum field is zero.
        let mut block = vec![0x5au8; 4096];
        block[4..8].fill(0);
        let crc = crc32c::crc32c(&block);
        block[4..8].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(vhdx_checksum(&block, 4), crc);
    }

    /// A vhdx image prefix: file identifier with creator, two headers with
    /// right checksums, a region table naming the metadata region at
    /// 0x100000, a metadata table whose Page 83 item is at +0x10000.
    fn vhdx(creator: u8, seed: u8) -> Vec<u8> {
        let mut img = vec![0u8; 0x12_0000];
        img[..8].copy_from_slice(b"vhdxfile");
        img[8..40].fill(creator);
        for (i, h) in VHDX_HEADER_OFFSETS.iter().enumerate() {
            let h = *h as usize;
            img[h..h + 4].copy_from_slice(b"head");
            img[h + 8..h + 16].copy_from_slice(&(u64::from(seed) + i as u64).to_le_bytes()); // sequence
            img[h + 16..h + 48].fill(seed); // write guids
            img[h + 64..h + 66].copy_from_slice(&0u16.to_le_bytes()); // log version
            img[h + 66..h + 68].copy_from_slice(&1u16.to_le_bytes()); // version
            let crc = crc32c::crc32c(&img[h..h + 4096]);
            img[h + 4..h + 8].copy_from_slice(&crc.to_le_bytes());
        }
        let rt = VHDX_REGION_TABLE_OFFSET as usize;
        img[rt..rt + 4].copy_from_slice(b"regi");
        img[rt + 8..rt + 12].copy_from_slice(&1u32.to_le_bytes()); // entry count
        img[rt + 16..rt + 32].copy_from_slice(&VHDX_METADATA_REGION_GUID);
        img[rt + 32..rt + 40].copy_from_slice(&0x10_0000u64.to_le_bytes()); // file offset
        img[rt + 40..rt + 44].copy_from_slice(&0x10_0000u32.to_le_bytes()); // length
        let md = 0x10_0000usize;
        img[md..md + 8].copy_from_slice(b"metadata");
        img[md + 10..md + 12].copy_from_slice(&1u16.to_le_bytes()); // entry count
        img[md + 32..md + 48].copy_from_slice(&VHDX_PAGE83_GUID);
        img[md + 48..md + 52].copy_from_slice(&0x1_0000u32.to_le_bytes()); // item offset
        img[md + 52..md + 56].copy_from_slice(&16u32.to_le_bytes()); // item length
        img[md + 0x1_0000..md + 0x1_0010].fill(seed); // the virtual disk id
        img
    }

    #[test]
    fn vhdx_masks_cover_creator_headers_and_disk_id() {
        let a = vhdx(b'q', 1);
        let b = vhdx(b'i', 7);
        let d = compare_bytes(Target::Vhdx, &a, &b).unwrap();
        assert!(d.is_empty(), "{d}");
        assert!(masked_field_problems(Target::Vhdx, &b[..]).is_empty());
    }

    /// `vhdx(creator, seed)` with a 64 KiB log at 0x80000 holding one
    /// 8 KiB entry whose LogGuid is `seed`.
    fn vhdx_with_log(creator: u8, seed: u8) -> Vec<u8> {
        let mut img = vhdx(creator, seed);
        for h in VHDX_HEADER_OFFSETS {
            let h = h as usize;
            img[h + 68..h + 72].copy_from_slice(&0x1_0000u32.to_le_bytes()); // log length
            img[h + 72..h + 80].copy_from_slice(&0x8_0000u64.to_le_bytes()); // log offset
            img[h + 4..h + 8].fill(0);
            let crc = crc32c::crc32c(&img[h..h + 4096]);
            img[h + 4..h + 8].copy_from_slice(&crc.to_le_bytes());
        }
        let e = 0x8_0000usize;
        img[e..e + 4].copy_from_slice(b"loge");
        img[e + 8..e + 12].copy_from_slice(&8192u32.to_le_bytes()); // entry length
        img[e + 16..e + 24].copy_from_slice(&1u64.to_le_bytes()); // sequence
        img[e + 32..e + 48].fill(seed); // log guid
        img[e + 4096..e + 4100].copy_from_slice(b"data");
        let crc = crc32c::crc32c(&img[e..e + 8192]);
        img[e + 4..e + 8].copy_from_slice(&crc.to_le_bytes());
        img
    }

    #[test]
    fn vhdx_log_entries_mask_their_guid_and_checksum_only() {
        let a = vhdx_with_log(b'q', 1);
        let b = vhdx_with_log(b'i', 7);
        let d = compare_bytes(Target::Vhdx, &a, &b).unwrap();
        assert!(d.is_empty(), "{d}");
        assert!(masked_field_problems(Target::Vhdx, &b[..]).is_empty());
        let mut seq = b.clone();
        seq[0x8_0010] = 2; // the entry's sequence number
        assert!(!compare_bytes(Target::Vhdx, &a, &seq).unwrap().is_empty());
        let mut sum = b.clone();
        sum[0x8_0004] ^= 1;
        assert!(!masked_field_problems(Target::Vhdx, &sum[..]).is_empty());
    }

    #[test]
    fn vhdx_catches_a_byte_outside_the_masks() {
        let a = vhdx(b'q', 1);
        for offset in [0x1_0000 + 48, 0x2_0000 + 66, 0x10_0000 + 0x1_0010, 4] {
            let mut b = vhdx(b'i', 7);
            b[offset] ^= 0x55;
            let d = compare_bytes(Target::Vhdx, &a, &b).unwrap();
            assert_eq!(d.count, 1, "offset {offset:#x}: {d}");
        }
    }

    #[test]
    fn vhdx_wrong_header_checksum_is_a_problem() {
        let mut b = vhdx(b'i', 7);
        b[0x2_0000 + 100] = 1;
        assert_eq!(masked_field_problems(Target::Vhdx, &b[..]).len(), 1);
    }

    /// A monolithicSparse vmdk prefix: header naming a descriptor of one
    /// sector at sector 1.
    fn vmdk(cid: &str, tail: u8) -> Vec<u8> {
        let mut img = vec![0u8; 2048];
        img[..4].copy_from_slice(VMDK_MAGIC);
        img[4..8].copy_from_slice(&1u32.to_le_bytes()); // version
        img[28..36].copy_from_slice(&1u64.to_le_bytes()); // descriptor offset (sectors)
        img[36..44].copy_from_slice(&1u64.to_le_bytes()); // descriptor size (sectors)
        let text = format!("# Disk DescriptorFile\nversion=1\nCID={cid}\nparentCID=ffffffff\ncreateType=\"monolithicSparse\"\n");
        img[512..512 + text.len()].copy_from_slice(text.as_bytes());
        img[1500] = tail;
        img
    }

    /// A stand-alone descriptor file (monolithicFlat, twoGbMax*).
    fn vmdk_descriptor_file(cid: &str, extent: &str) -> Vec<u8> {
        format!(
            "# Disk DescriptorFile\nversion=1\nCID={cid}\nparentCID=ffffffff\n\
             createType=\"monolithicFlat\"\n\nRW 2048 FLAT \"{extent}\" 0\n"
        )
        .into_bytes()
    }

    #[test]
    fn a_descriptor_file_may_change_length_with_its_cid_only() {
        let a = vmdk_descriptor_file("5e1c77a3", "img-flat.vmdk");
        let b = vmdk_descriptor_file("e1c77a3", "img-flat.vmdk");
        assert!(compare_bytes(Target::Vmdk, &a, &b).unwrap().is_empty());
        assert!(compare_bytes(Target::Vmdk, &b, &a).unwrap().is_empty());
        let longer = vmdk_descriptor_file("5e1c77a3", "img-flat.vmdkx");
        let diff = compare_bytes(Target::Vmdk, &a, &longer).unwrap();
        assert!(diff.descriptor.is_some(), "{diff}");
        let mut tail = a.clone();
        tail.extend_from_slice(b"RW 8 ZERO\n");
        assert!(!compare_bytes(Target::Vmdk, &a, &tail).unwrap().is_empty());
    }

    #[test]
    fn a_shorter_rewritten_cid_may_leave_the_old_text_end_behind() {
        // qemu's CID rewrite on the first write: "5e1c77a3" -> "3f0" over
        // a 512-byte descriptor file leaves the old text's last 4 bytes
        // after the new text's NUL.
        let mut region = vmdk_descriptor_file("3f0", "img-flat.vmdk");
        region.push(0);
        region.extend_from_slice(b"k\" 0\n"[..].get(1..).unwrap());
        region.resize(512, 0);
        let (_, padded) = normalise_descriptor(&region);
        assert!(padded);
        let mut other_bytes = region.clone();
        let nul = other_bytes.iter().position(|&b| b == 0).unwrap();
        other_bytes[nul + 1] = b'x';
        assert!(!normalise_descriptor(&other_bytes).1, "not the text's own end");
        let mut too_long = vmdk_descriptor_file("3f0", "img-flat.vmdk");
        too_long.push(0);
        too_long.extend_from_slice(b"vmdk\" 0\n");
        too_long.resize(512, 0);
        assert!(!normalise_descriptor(&too_long).1, "more than 7 bytes");
    }

    #[test]
    fn vmdk_cid_may_differ_in_value_and_length() {
        let a = vmdk("5e1c77a3", 1);
        let b = vmdk("3f0", 1);
        let d = compare_bytes(Target::Vmdk, &a, &b).unwrap();
        assert!(d.is_empty(), "{d}");
        assert!(masked_field_problems(Target::Vmdk, &b[..]).is_empty());
    }

    #[test]
    fn vmdk_catches_a_change_outside_the_cid() {
        let a = vmdk("5e1c77a3", 1);
        let mut b = vmdk("3f0", 1);
        let at = 512 + b"# Disk DescriptorFile\nversion=".len();
        b[at] = b'3';
        assert!(compare_bytes(Target::Vmdk, &a, &b).unwrap().descriptor.is_some());
        let c = vmdk("3f0", 2);
        assert_eq!(compare_bytes(Target::Vmdk, &a, &c).unwrap().count, 1);
        let mut e = vmdk("3f0", 1);
        e[1000] = b'x'; // garbage in the descriptor's padding
        assert!(compare_bytes(Target::Vmdk, &a, &e).unwrap().descriptor.is_some());
    }

    #[test]
    fn cid_form_follows_qemu() {
        assert!(cid_is_well_formed("fffffffe"));
        assert!(cid_is_well_formed("0"));
        assert!(cid_is_well_formed("1a"));
        assert!(!cid_is_well_formed("01a"));
        assert!(!cid_is_well_formed("1A"));
        assert!(!cid_is_well_formed("123456789"));
        assert!(!cid_is_well_formed(""));
        assert!(!masked_field_problems(Target::Vmdk, &vmdk("00ab", 1)[..]).is_empty());
    }

    #[test]
    fn raw_and_qcow2_have_no_mask() {
        let a = vec![0u8; 1024];
        let mut b = a.clone();
        b[0] = 1;
        assert_eq!(compare_bytes(Target::Qcow2, &a, &b).unwrap().count, 1);
        assert_eq!(compare_bytes(Target::Raw, &a, &b).unwrap().count, 1);
        let short = vec![0u8; 512];
        assert_eq!(compare_bytes(Target::Raw, &a, &short).unwrap().lengths, Some((1024, 512)));
    }

    #[test]
    fn files_compare_like_memory() {
        let dir = tempfile::tempdir().unwrap();
        let (pa, pb) = (dir.path().join("a"), dir.path().join("b"));
        let chunk = CHUNK as usize;
        let mut a = vec![0u8; 3 * chunk + 100];
        a[chunk + 5] = 1;
        std::fs::write(&pa, &a).unwrap();
        std::fs::write(&pb, &a).unwrap();
        assert!(compare_files(Target::Raw, &pa, &pb).unwrap().is_empty());
        a[2 * chunk + 7] = 9;
        std::fs::write(&pb, &a).unwrap();
        assert_eq!(compare_files(Target::Raw, &pa, &pb).unwrap().bytes, [(2 * CHUNK + 7, 0, 9)]);
        let v = vmdk("abc", 1);
        let w = vmdk("12345678", 1);
        std::fs::write(&pa, &v).unwrap();
        std::fs::write(&pb, &w).unwrap();
        assert!(compare_files(Target::Vmdk, &pa, &pb).unwrap().is_empty());
    }
}
