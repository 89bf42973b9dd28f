//! The qcow2 image header (`docs/interop/qcow2.txt`, "Header") and the
//! header extensions that follow it in the first cluster.
//!
//! All numbers are big-endian. A version 2 header is 72 bytes long; a
//! version 3 header is at least 104 bytes and qemu writes 112 (the
//! compression type byte plus padding). Extensions start at
//! `header_length` and run until an end marker, the backing file name, or
//! the end of the first cluster, whichever comes first.
//!
//! [`Header::from_bytes`] reads what qemu's `qcow2_do_open` reads, with the
//! same tolerance: bytes missing at the end of a short file read as zeros.
//! [`Header::to_cluster`] writes the first cluster as qemu's
//! `qcow2_update_header` does.

use crate::error::HeaderError;
use instar_core::bytes::{be32, be64, c_string, padded};

/// `QFI\xfb`, the first four bytes of every qcow2 image.
pub const QCOW_MAGIC: u32 = 0x5146_49fb;
/// Length of the version 2 header.
pub const V2_HEADER_LENGTH: u32 = 72;
/// The smallest `header_length` a version 3 image may declare.
pub const V3_MIN_HEADER_LENGTH: u32 = 104;
/// The version 3 header as qemu writes it: 104 bytes, the compression
/// type byte, and padding to a multiple of 8.
pub const V3_HEADER_LENGTH: u32 = 112;
/// Offset of the compression type byte in a version 3 header.
pub const COMPRESSION_TYPE_OFFSET: u32 = 104;
/// Smallest cluster size: 512 bytes.
pub const MIN_CLUSTER_BITS: u32 = 9;
/// Largest cluster size: 2 MiB.
pub const MAX_CLUSTER_BITS: u32 = 21;
/// qemu's buffer for the backing format name (`bs->backing_format`).
pub const BACKING_FORMAT_MAX: u32 = 16;
/// qemu's buffer for the backing file name (`bs->backing_file`).
pub const BACKING_FILE_MAX: u32 = 1024;

/// End-of-extensions marker.
pub const EXT_MAGIC_END: u32 = 0;
/// Backing file format name.
pub const EXT_MAGIC_BACKING_FORMAT: u32 = 0xe279_2aca;
/// Feature name table.
pub const EXT_MAGIC_FEATURE_TABLE: u32 = 0x6803_f857;
/// Full disk encryption header pointer.
pub const EXT_MAGIC_CRYPTO_HEADER: u32 = 0x0537_be77;
/// Persistent dirty bitmaps.
pub const EXT_MAGIC_BITMAPS: u32 = 0x2385_2875;
/// External data file name.
pub const EXT_MAGIC_DATA_FILE: u32 = 0x4441_5441;

/// Incompatible feature bit 0: the image was not closed cleanly.
pub const INCOMPAT_DIRTY: u64 = 1 << 0;
/// Incompatible feature bit 1: the image is corrupt.
pub const INCOMPAT_CORRUPT: u64 = 1 << 1;
/// Incompatible feature bit 2: guest data lives in an external data file.
pub const INCOMPAT_DATA_FILE: u64 = 1 << 2;
/// Incompatible feature bit 3: the compression type field is not zlib.
pub const INCOMPAT_COMPRESSION: u64 = 1 << 3;
/// Incompatible feature bit 4: L2 entries are 128 bits (subclusters).
pub const INCOMPAT_EXTL2: u64 = 1 << 4;
/// Every incompatible feature qemu knows.
pub const INCOMPAT_MASK: u64 = 0x1f;
/// Compatible feature bit 0: lazy refcounts.
pub const COMPAT_LAZY_REFCOUNTS: u64 = 1 << 0;
/// Autoclear feature bit 0: the bitmaps extension is consistent.
pub const AUTOCLEAR_BITMAPS: u64 = 1 << 0;
/// Autoclear feature bit 1: the external data file is a valid raw image.
pub const AUTOCLEAR_DATA_FILE_RAW: u64 = 1 << 1;

/// No encryption.
pub const CRYPT_NONE: u32 = 0;
/// Legacy AES-CBC encryption.
pub const CRYPT_AES: u32 = 1;
/// LUKS encryption.
pub const CRYPT_LUKS: u32 = 2;

/// Compression type 0: deflate (zlib).
pub const COMPRESSION_ZLIB: u8 = 0;
/// Compression type 1: zstd.
pub const COMPRESSION_ZSTD: u8 = 1;

/// Length of one entry of the feature name table.
pub const FEATURE_ENTRY_LENGTH: usize = 48;
/// Length of the name field of a feature name table entry.
pub const FEATURE_NAME_LENGTH: usize = 46;
/// Largest number of bitmaps qemu supports (`QCOW2_MAX_BITMAPS`).
pub const MAX_BITMAPS: u32 = 65535;
/// Largest bitmap directory qemu supports (`QCOW2_MAX_BITMAP_DIRECTORY_SIZE`:
/// 1 KiB for each bitmap it supports).
pub const MAX_BITMAP_DIRECTORY_SIZE: u64 = 1024 * MAX_BITMAPS as u64;

/// Which feature bit field a feature name table entry describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeatureType {
    /// `incompatible_features`.
    Incompatible,
    /// `compatible_features`.
    Compatible,
    /// `autoclear_features`.
    Autoclear,
    /// A type byte qemu does not know.
    Other(u8),
}

impl FeatureType {
    fn from_byte(b: u8) -> Self {
        match b {
            0 => FeatureType::Incompatible,
            1 => FeatureType::Compatible,
            2 => FeatureType::Autoclear,
            other => FeatureType::Other(other),
        }
    }

    fn to_byte(self) -> u8 {
        match self {
            FeatureType::Incompatible => 0,
            FeatureType::Compatible => 1,
            FeatureType::Autoclear => 2,
            FeatureType::Other(b) => b,
        }
    }
}

/// One entry of the feature name table extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureName {
    /// The bit field the feature lives in.
    pub feature_type: FeatureType,
    /// The bit number.
    pub bit: u8,
    /// The name, up to 46 bytes (NUL padded on disk).
    pub name: String,
}

impl FeatureName {
    fn new(feature_type: FeatureType, bit: u8, name: &str) -> Self {
        FeatureName { feature_type, bit, name: name.to_string() }
    }
}

/// The feature name table qemu writes into every version 3 image with
/// clusters larger than 4 KiB, in qemu's order.
pub fn qemu_feature_table() -> Vec<FeatureName> {
    vec![
        FeatureName::new(FeatureType::Incompatible, 0, "dirty bit"),
        FeatureName::new(FeatureType::Incompatible, 1, "corrupt bit"),
        FeatureName::new(FeatureType::Incompatible, 2, "external data file"),
        FeatureName::new(FeatureType::Incompatible, 3, "compression type"),
        FeatureName::new(FeatureType::Incompatible, 4, "extended L2 entries"),
        FeatureName::new(FeatureType::Compatible, 0, "lazy refcounts"),
        FeatureName::new(FeatureType::Autoclear, 0, "bitmaps"),
        FeatureName::new(FeatureType::Autoclear, 1, "raw external data"),
    ]
}

/// The full disk encryption header pointer extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CryptoHeaderExt {
    /// Offset of the LUKS header in the image file.
    pub offset: u64,
    /// Its length.
    pub length: u64,
}

/// The bitmaps extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BitmapsExt {
    /// Number of bitmaps in the directory.
    pub nb_bitmaps: u32,
    /// Reserved, must be zero.
    pub reserved32: u32,
    /// Size of the bitmap directory in bytes.
    pub bitmap_directory_size: u64,
    /// Offset of the bitmap directory.
    pub bitmap_directory_offset: u64,
}

/// An extension qemu does not know, kept as it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownExtension {
    /// Its magic number.
    pub magic: u32,
    /// Its data.
    pub data: Vec<u8>,
}

/// The header extensions, in the order qemu writes them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extensions {
    /// Backing file format name (`0xe2792aca`).
    pub backing_format: Option<String>,
    /// External data file name (`0x44415441`).
    pub data_file: Option<String>,
    /// Full disk encryption header pointer (`0x0537be77`).
    pub crypto_header: Option<CryptoHeaderExt>,
    /// Feature name table (`0x6803f857`).
    pub feature_table: Option<Vec<FeatureName>>,
    /// Bitmaps extension (`0x23852875`), present only when qemu would use
    /// it (the `bitmaps` autoclear bit is set).
    pub bitmaps: Option<BitmapsExt>,
    /// Whether a bitmaps extension was present but ignored because the
    /// autoclear bit was clear (qemu warns about such images).
    pub bitmaps_ignored: bool,
    /// Extensions qemu does not know, in the order they were found.
    pub unknown: Vec<UnknownExtension>,
}

/// The qcow2 header: fixed fields in on-disk order, named as in
/// `docs/interop/qcow2.txt`, plus the extensions and backing file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// `QFI\xfb`.
    pub magic: u32,
    /// 2 or 3.
    pub version: u32,
    /// Offset of the backing file name, 0 for none.
    pub backing_file_offset: u64,
    /// Length of the backing file name.
    pub backing_file_size: u32,
    /// log2 of the cluster size.
    pub cluster_bits: u32,
    /// Virtual disk size in bytes.
    pub size: u64,
    /// Encryption method (0 none, 1 AES, 2 LUKS).
    pub crypt_method: u32,
    /// Number of entries in the active L1 table.
    pub l1_size: u32,
    /// Offset of the active L1 table.
    pub l1_table_offset: u64,
    /// Offset of the refcount table.
    pub refcount_table_offset: u64,
    /// Number of clusters the refcount table occupies.
    pub refcount_table_clusters: u32,
    /// Number of internal snapshots.
    pub nb_snapshots: u32,
    /// Offset of the snapshot table.
    pub snapshots_offset: u64,
    /// Incompatible feature bits (version 3; 0 for version 2).
    pub incompatible_features: u64,
    /// Compatible feature bits (version 3; 0 for version 2).
    pub compatible_features: u64,
    /// Autoclear feature bits (version 3; 0 for version 2).
    pub autoclear_features: u64,
    /// log2 of the refcount width in bits (version 3; 4 for version 2).
    pub refcount_order: u32,
    /// Length of the header structure (version 3; 72 for version 2).
    pub header_length: u32,
    /// Compression type (0 zlib, 1 zstd; 0 when the header is too short
    /// to hold the field).
    pub compression_type: u8,
    /// The header extensions.
    pub extensions: Extensions,
    /// The backing file name, read as qemu reads it (up to the first NUL).
    pub backing_file: Option<String>,
}

impl Header {
    /// The cluster size in bytes.
    pub fn cluster_size(&self) -> u64 {
        1u64 << self.cluster_bits
    }

    /// The refcount width in bits.
    pub fn refcount_bits(&self) -> u64 {
        1u64 << self.refcount_order.min(6)
    }

    /// Whether L2 entries are extended (subclusters).
    pub fn has_subclusters(&self) -> bool {
        self.incompatible_features & INCOMPAT_EXTL2 != 0
    }

    /// The end of the area where extensions may live: the backing file
    /// name if there is one, the end of the first cluster otherwise.
    pub fn extensions_end(&self) -> u64 {
        if self.backing_file_offset != 0 {
            self.backing_file_offset
        } else {
            self.cluster_size()
        }
    }

    /// Reads the fixed header fields and applies qemu's first checks
    /// (magic, version, cluster size, header length, backing file offset),
    /// without reading extensions. Missing bytes read as zeros.
    pub fn parse_fixed(bytes: &[u8]) -> Result<Header, HeaderError> {
        let b = padded(bytes, 0, V3_HEADER_LENGTH as usize);
        let mut h = Header {
            magic: be32(&b, 0),
            version: be32(&b, 4),
            backing_file_offset: be64(&b, 8),
            backing_file_size: be32(&b, 16),
            cluster_bits: be32(&b, 20),
            size: be64(&b, 24),
            crypt_method: be32(&b, 32),
            l1_size: be32(&b, 36),
            l1_table_offset: be64(&b, 40),
            refcount_table_offset: be64(&b, 48),
            refcount_table_clusters: be32(&b, 56),
            nb_snapshots: be32(&b, 60),
            snapshots_offset: be64(&b, 64),
            incompatible_features: 0,
            compatible_features: 0,
            autoclear_features: 0,
            refcount_order: 4,
            header_length: V2_HEADER_LENGTH,
            compression_type: COMPRESSION_ZLIB,
            extensions: Extensions::default(),
            backing_file: None,
        };
        if h.magic != QCOW_MAGIC {
            return Err(HeaderError::NotQcow2);
        }
        if !(2..=3).contains(&h.version) {
            return Err(HeaderError::UnsupportedVersion(h.version));
        }
        if !(MIN_CLUSTER_BITS..=MAX_CLUSTER_BITS).contains(&h.cluster_bits) {
            return Err(HeaderError::UnsupportedClusterSize(h.cluster_bits));
        }
        if h.version == 3 {
            h.incompatible_features = be64(&b, 72);
            h.compatible_features = be64(&b, 80);
            h.autoclear_features = be64(&b, 88);
            h.refcount_order = be32(&b, 96);
            h.header_length = be32(&b, 100);
            if h.header_length < V3_MIN_HEADER_LENGTH {
                return Err(HeaderError::HeaderTooShort);
            }
        }
        if u64::from(h.header_length) > h.cluster_size() {
            return Err(HeaderError::HeaderExceedsCluster);
        }
        if h.backing_file_offset > h.cluster_size() {
            return Err(HeaderError::InvalidBackingFileOffset);
        }
        if h.header_length > COMPRESSION_TYPE_OFFSET {
            h.compression_type = b[COMPRESSION_TYPE_OFFSET as usize];
        }
        Ok(h)
    }

    /// Reads the whole header: the fixed fields, the extensions and the
    /// backing file name, from the start of the image (normally its first
    /// cluster; shorter input reads as if padded with zeros).
    pub fn from_bytes(bytes: &[u8]) -> Result<Header, HeaderError> {
        let mut h = Header::parse_fixed(bytes)?;
        let (ext, err) = h.scan_extensions(bytes);
        h.extensions = ext;
        if let Some(e) = err {
            return Err(e);
        }
        h.backing_file = h.read_backing_file(bytes)?;
        Ok(h)
    }

    /// Walks the extensions as qemu's `qcow2_read_extensions` does,
    /// returning what was read before the first error, and that error.
    pub fn scan_extensions(&self, bytes: &[u8]) -> (Extensions, Option<HeaderError>) {
        let mut ext = Extensions::default();
        let end = self.extensions_end();
        let mut offset = u64::from(self.header_length);
        while offset < end {
            let head = padded(bytes, offset, 8);
            let magic = be32(&head, 0);
            let len = be32(&head, 4);
            offset += 8;
            if offset > end || u64::from(len) > end - offset {
                return (ext, Some(HeaderError::ExtensionTooLarge));
            }
            // `len` is bounded by the first cluster (at most 2 MiB) here.
            let data = padded(bytes, offset, len as usize);
            match magic {
                EXT_MAGIC_END => return (ext, None),
                EXT_MAGIC_BACKING_FORMAT => {
                    if len >= BACKING_FORMAT_MAX {
                        return (ext, Some(HeaderError::BackingFormatTooLong(len)));
                    }
                    ext.backing_format = Some(c_string(&data));
                }
                EXT_MAGIC_FEATURE_TABLE => {
                    let table = data
                        .chunks_exact(FEATURE_ENTRY_LENGTH)
                        .map(|e| FeatureName {
                            feature_type: FeatureType::from_byte(e[0]),
                            bit: e[1],
                            name: c_string(&e[2..]),
                        })
                        .collect();
                    ext.feature_table = Some(table);
                }
                EXT_MAGIC_CRYPTO_HEADER => {
                    if self.crypt_method != CRYPT_LUKS {
                        return (ext, Some(HeaderError::UnexpectedCryptoHeader));
                    }
                    if len != 16 {
                        return (ext, Some(HeaderError::CryptoHeaderSize(len)));
                    }
                    let c = CryptoHeaderExt { offset: be64(&data, 0), length: be64(&data, 8) };
                    if !c.offset.is_multiple_of(self.cluster_size()) {
                        return (
                            ext,
                            Some(HeaderError::CryptoHeaderOffset(c.offset, self.cluster_size())),
                        );
                    }
                    ext.crypto_header = Some(c);
                }
                EXT_MAGIC_BITMAPS => {
                    if len != 24 {
                        return (ext, Some(HeaderError::BitmapsLength));
                    }
                    if self.autoclear_features & AUTOCLEAR_BITMAPS == 0 {
                        ext.bitmaps_ignored = true;
                    } else {
                        let bm = BitmapsExt {
                            nb_bitmaps: be32(&data, 0),
                            reserved32: be32(&data, 4),
                            bitmap_directory_size: be64(&data, 8),
                            bitmap_directory_offset: be64(&data, 16),
                        };
                        if bm.reserved32 != 0 {
                            return (ext, Some(HeaderError::BitmapsReserved));
                        }
                        if bm.nb_bitmaps > MAX_BITMAPS {
                            return (ext, Some(HeaderError::TooManyBitmaps(bm.nb_bitmaps)));
                        }
                        if bm.nb_bitmaps == 0 {
                            return (ext, Some(HeaderError::ZeroBitmaps));
                        }
                        if !bm.bitmap_directory_offset.is_multiple_of(self.cluster_size()) {
                            return (ext, Some(HeaderError::BitmapDirectoryOffset));
                        }
                        if bm.bitmap_directory_size > MAX_BITMAP_DIRECTORY_SIZE {
                            return (
                                ext,
                                Some(HeaderError::BitmapDirectorySize(bm.bitmap_directory_size)),
                            );
                        }
                        ext.bitmaps = Some(bm);
                    }
                }
                EXT_MAGIC_DATA_FILE => ext.data_file = Some(c_string(&data)),
                _ => ext.unknown.push(UnknownExtension { magic, data }),
            }
            offset += (u64::from(len) + 7) & !7;
        }
        (ext, None)
    }

    /// Reads the backing file name as qemu does, refusing names longer
    /// than qemu's buffer or the rest of the first cluster.
    pub fn read_backing_file(&self, bytes: &[u8]) -> Result<Option<String>, HeaderError> {
        if self.backing_file_offset == 0 {
            return Ok(None);
        }
        let len = u64::from(self.backing_file_size);
        let room =
            (BACKING_FILE_MAX as u64 - 1).min(self.cluster_size() - self.backing_file_offset);
        if len > room || len >= u64::from(BACKING_FILE_MAX) {
            return Err(HeaderError::BackingNameTooLong);
        }
        #[allow(clippy::cast_possible_truncation, reason = "under BACKING_FILE_MAX, checked above")]
        let len = len as usize;
        Ok(Some(c_string(&padded(bytes, self.backing_file_offset, len))))
    }

    /// The fixed header fields as written on disk: 72 bytes for version 2,
    /// 112 for version 3 (with the compression type byte at 104).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(V3_HEADER_LENGTH as usize);
        b.extend_from_slice(&self.magic.to_be_bytes());
        b.extend_from_slice(&self.version.to_be_bytes());
        b.extend_from_slice(&self.backing_file_offset.to_be_bytes());
        b.extend_from_slice(&self.backing_file_size.to_be_bytes());
        b.extend_from_slice(&self.cluster_bits.to_be_bytes());
        b.extend_from_slice(&self.size.to_be_bytes());
        b.extend_from_slice(&self.crypt_method.to_be_bytes());
        b.extend_from_slice(&self.l1_size.to_be_bytes());
        b.extend_from_slice(&self.l1_table_offset.to_be_bytes());
        b.extend_from_slice(&self.refcount_table_offset.to_be_bytes());
        b.extend_from_slice(&self.refcount_table_clusters.to_be_bytes());
        b.extend_from_slice(&self.nb_snapshots.to_be_bytes());
        b.extend_from_slice(&self.snapshots_offset.to_be_bytes());
        if self.version >= 3 {
            b.extend_from_slice(&self.incompatible_features.to_be_bytes());
            b.extend_from_slice(&self.compatible_features.to_be_bytes());
            b.extend_from_slice(&self.autoclear_features.to_be_bytes());
            b.extend_from_slice(&self.refcount_order.to_be_bytes());
            b.extend_from_slice(&self.header_length.to_be_bytes());
            b.push(self.compression_type);
            b.resize(V3_HEADER_LENGTH as usize, 0);
        }
        b
    }

    /// The whole first cluster as qemu's `qcow2_update_header` writes it:
    /// the fixed header, then the extensions (backing format, data file,
    /// crypto header, feature table, bitmaps, unknown ones), the end
    /// marker, and the backing file name right after it. The backing file
    /// offset and size fields are set from `backing_file`. Returns `None`
    /// when it does not fit in one cluster (qemu's `-ENOSPC`).
    pub fn to_cluster(&self) -> Option<Vec<u8>> {
        let cs = usize::try_from(self.cluster_size()).ok()?;
        let mut h = self.clone();
        h.backing_file_offset = 0;
        h.backing_file_size = 0;
        let mut out = h.to_bytes();
        let ext = &self.extensions;
        if let Some(f) = &ext.backing_format {
            push_extension(&mut out, EXT_MAGIC_BACKING_FORMAT, &instar_core::rawtext::to_bytes(f))?;
        }
        if let Some(d) = &ext.data_file {
            push_extension(&mut out, EXT_MAGIC_DATA_FILE, &instar_core::rawtext::to_bytes(d))?;
        }
        if let Some(c) = &ext.crypto_header {
            let mut data = c.offset.to_be_bytes().to_vec();
            data.extend_from_slice(&c.length.to_be_bytes());
            push_extension(&mut out, EXT_MAGIC_CRYPTO_HEADER, &data)?;
        }
        if let Some(table) = &ext.feature_table {
            let mut data = Vec::with_capacity(table.len() * FEATURE_ENTRY_LENGTH);
            for f in table {
                let mut entry = [0u8; FEATURE_ENTRY_LENGTH];
                entry[0] = f.feature_type.to_byte();
                entry[1] = f.bit;
                let name = f.name.as_bytes();
                let n = name.len().min(FEATURE_NAME_LENGTH);
                entry[2..2 + n].copy_from_slice(&name[..n]);
                data.extend_from_slice(&entry);
            }
            push_extension(&mut out, EXT_MAGIC_FEATURE_TABLE, &data)?;
        }
        if let Some(bm) = &ext.bitmaps {
            let mut data = bm.nb_bitmaps.to_be_bytes().to_vec();
            data.extend_from_slice(&bm.reserved32.to_be_bytes());
            data.extend_from_slice(&bm.bitmap_directory_size.to_be_bytes());
            data.extend_from_slice(&bm.bitmap_directory_offset.to_be_bytes());
            push_extension(&mut out, EXT_MAGIC_BITMAPS, &data)?;
        }
        for u in &ext.unknown {
            push_extension(&mut out, u.magic, &u.data)?;
        }
        push_extension(&mut out, EXT_MAGIC_END, &[])?;
        if out.len() > cs {
            return None;
        }
        if let Some(name) = &self.backing_file {
            let name = instar_core::rawtext::to_bytes(name);
            if cs - out.len() < name.len() {
                return None;
            }
            let offset = out.len() as u64;
            let len = u32::try_from(name.len()).ok()?;
            out[8..16].copy_from_slice(&offset.to_be_bytes());
            out[16..20].copy_from_slice(&len.to_be_bytes());
            out.extend_from_slice(&name);
        }
        out.resize(cs, 0);
        Some(out)
    }
}

/// Appends one extension: magic, length, data padded to 8 bytes; `None`
/// when the length does not fit its 32-bit field.
fn push_extension(out: &mut Vec<u8>, magic: u32, data: &[u8]) -> Option<()> {
    out.extend_from_slice(&magic.to_be_bytes());
    out.extend_from_slice(&u32::try_from(data.len()).ok()?.to_be_bytes());
    out.extend_from_slice(data);
    out.resize(out.len() + (8 - data.len() % 8) % 8, 0);
    Some(())
}

/// qemu's message for incompatible features it does not know
/// (`report_unsupported_feature`), naming them from the image's feature
/// table where it can.
pub fn unsupported_features(table: Option<&[FeatureName]>, mut mask: u64) -> String {
    let mut names: Vec<String> = Vec::new();
    for entry in table.unwrap_or_default() {
        // qemu stops at the first entry with an empty name.
        if entry.name.is_empty() {
            break;
        }
        let bit = u32::from(entry.bit);
        if entry.feature_type == FeatureType::Incompatible && bit < 64 && mask & (1u64 << bit) != 0
        {
            // qemu keeps a feature name in 46 bytes.
            names.push(entry.name.chars().take(46).collect());
            mask &= !(1u64 << bit);
        }
    }
    if mask != 0 {
        names.push(format!("Unknown incompatible feature: {mask:x}"));
    }
    format!("Unsupported qcow2 feature(s): {}", names.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first 112 bytes of `qemu-img create -f qcow2 x.qcow2 1G`
    /// (qemu-img 10.0.2), one field per line.
    fn qemu_1g_default_fixed() -> Vec<u8> {
        let fields: &[&[u8]] = &[
            &[0x51, 0x46, 0x49, 0xfb],    // magic
            &[0, 0, 0, 3],                // version
            &[0, 0, 0, 0, 0, 0, 0, 0],    // backing_file_offset
            &[0, 0, 0, 0],                // backing_file_size
            &[0, 0, 0, 16],               // cluster_bits
            &[0, 0, 0, 0, 0x40, 0, 0, 0], // size: 1 GiB
            &[0, 0, 0, 0],                // crypt_method
            &[0, 0, 0, 2],                // l1_size
            &[0, 0, 0, 0, 0, 3, 0, 0],    // l1_table_offset
            &[0, 0, 0, 0, 0, 1, 0, 0],    // refcount_table_offset
            &[0, 0, 0, 1],                // refcount_table_clusters
            &[0, 0, 0, 0],                // nb_snapshots
            &[0, 0, 0, 0, 0, 0, 0, 0],    // snapshots_offset
            &[0, 0, 0, 0, 0, 0, 0, 0],    // incompatible_features
            &[0, 0, 0, 0, 0, 0, 0, 0],    // compatible_features
            &[0, 0, 0, 0, 0, 0, 0, 0],    // autoclear_features
            &[0, 0, 0, 4],                // refcount_order
            &[0, 0, 0, 0x70],             // header_length: 112
            &[0],                         // compression_type
            &[0, 0, 0, 0, 0, 0, 0],       // padding
        ];
        fields.concat()
    }

    #[test]
    fn fixed_header_round_trips() {
        let bytes = qemu_1g_default_fixed();
        let h = Header::from_bytes(&bytes).unwrap();
        assert_eq!(h.version, 3);
        assert_eq!(h.cluster_size(), 65536);
        assert_eq!(h.size, 1 << 30);
        assert_eq!(h.l1_size, 2);
        assert_eq!(h.l1_table_offset, 0x30000);
        assert_eq!(h.refcount_table_offset, 0x10000);
        assert_eq!(h.refcount_bits(), 16);
        assert_eq!(h.header_length, 112);
        assert_eq!(h.to_bytes(), bytes);
        assert_eq!(h.extensions, Extensions::default());
        assert_eq!(h.backing_file, None);
    }

    #[test]
    fn first_cluster_round_trips_with_extensions() {
        let mut h = Header::from_bytes(&qemu_1g_default_fixed()).unwrap();
        h.extensions.backing_format = Some("raw".into());
        h.extensions.feature_table = Some(qemu_feature_table());
        h.backing_file = Some("base.raw".into());
        let c = h.to_cluster().unwrap();
        assert_eq!(c.len(), 65536);
        // Backing format extension right after the header: magic, length
        // 3, "raw" padded to 8.
        assert_eq!(
            &c[112..128],
            &[0xe2, 0x79, 0x2a, 0xca, 0, 0, 0, 3, b'r', b'a', b'w', 0, 0, 0, 0, 0]
        );
        // Then the feature table: 8 entries of 48 bytes.
        assert_eq!(&c[128..136], &[0x68, 0x03, 0xf8, 0x57, 0, 0, 0x01, 0x80]);
        assert_eq!(&c[136..147], b"\0\0dirty bit");
        // End marker at 128 + 8 + 384 = 520, backing name at 528.
        assert_eq!(&c[520..528], &[0u8; 8]);
        assert_eq!(&c[528..536], b"base.raw");
        assert_eq!(&c[8..20], &[0, 0, 0, 0, 0, 0, 0x02, 0x10, 0, 0, 0, 8]);
        let back = Header::from_bytes(&c).unwrap();
        assert_eq!(back.backing_file.as_deref(), Some("base.raw"));
        assert_eq!(back.backing_file_offset, 528);
        assert_eq!(back.extensions.backing_format.as_deref(), Some("raw"));
        assert_eq!(back.extensions.feature_table, Some(qemu_feature_table()));
        assert_eq!(back.to_cluster().unwrap(), c);
    }

    #[test]
    fn version_2_header_is_72_bytes() {
        let mut bytes = qemu_1g_default_fixed();
        bytes[7] = 2;
        let h = Header::from_bytes(&bytes[..72]).unwrap();
        assert_eq!(h.header_length, 72);
        assert_eq!(h.refcount_order, 4);
        assert_eq!(h.to_bytes(), bytes[..72].to_vec());
    }

    #[test]
    fn refuses_what_qemu_refuses() {
        let mut good = qemu_1g_default_fixed();
        good.resize(512, 0);
        let with = |at: usize, v: &[u8]| {
            let mut b = good.clone();
            b[at..at + v.len()].copy_from_slice(v);
            Header::from_bytes(&b).unwrap_err().to_string()
        };
        assert_eq!(with(0, b"QFI\0"), "Image is not in qcow2 format");
        assert_eq!(with(4, &[0, 0, 0, 4]), "Unsupported qcow2 version 4");
        assert_eq!(with(20, &[0, 0, 0, 8]), "Unsupported cluster size: 2^8");
        assert_eq!(with(100, &[0, 0, 0, 100]), "qcow2 header too short");
        assert_eq!(with(8, &[0, 0, 0, 0, 0, 2, 0, 0]), "Invalid backing file offset");
        assert_eq!(
            with(112, &[0xe2, 0x79, 0x2a, 0xca, 0, 0, 0, 16]),
            "ERROR: ext_backing_format: len=16 too large (>=16)"
        );
        assert_eq!(with(112, &[0, 0, 0, 1, 0, 1, 0, 0]), "Header extension too large");
        assert_eq!(Header::from_bytes(&[]).unwrap_err(), HeaderError::NotQcow2);
    }
}
