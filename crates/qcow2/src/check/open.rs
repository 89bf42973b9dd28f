//! Opening a qcow2 image the way `qemu-img check` does (`qcow2_do_open`
//! with `BDRV_O_CHECK`, read-only): every header validation qemu performs
//! before it will run a check, with qemu's messages, and the metadata the
//! check then works from. In check mode qemu accepts an image without a
//! refcount table and leaves the snapshot table to the check itself.

use super::file::{be64_table, ImageFile};
use crate::header::unsupported_features;
use crate::header::{
    BitmapsExt, Header, AUTOCLEAR_DATA_FILE_RAW, COMPRESSION_ZLIB, COMPRESSION_ZSTD, CRYPT_AES,
    CRYPT_LUKS, CRYPT_NONE, INCOMPAT_COMPRESSION, INCOMPAT_DATA_FILE, INCOMPAT_MASK,
    QCOW_MAGIC as MAGIC, V3_HEADER_LENGTH,
};
use crate::tables::{validate_table, QCOW_MAX_L1_SIZE, QCOW_MAX_REFTABLE_SIZE};
use instar_core::error::strerror;

/// `QFI\xfb`, the magic at the start of every qcow2 image.
pub const QCOW_MAGIC: u32 = MAGIC;
/// Largest L1 table qemu accepts, in bytes (`QCOW_MAX_L1_SIZE`).
pub const MAX_L1_SIZE: u64 = QCOW_MAX_L1_SIZE;
/// Subclusters per cluster with extended L2 entries.
const EXTL2_SUBCLUSTERS: u32 = 32;
/// The smallest subcluster qemu supports.
const MIN_SUBCLUSTER_SIZE: u32 = 512;
/// Largest bitmap directory (`QCOW2_MAX_BITMAP_DIRECTORY_SIZE`: 1 KiB for
/// each of the 65535 bitmaps qemu supports).
pub const MAX_BITMAP_DIRECTORY_SIZE: u64 = 1024 * 65535;

/// The error qemu's crypto layer gives when an encrypted image is opened
/// without its key, which a plain `check` is never given.
const KEY_SECRET_REQUIRED: &str = "Parameter 'encrypt.key-secret' is required for cipher";

/// qemu's warning for bitmaps in a version 2 image, which cannot tell
/// whether a program without bitmap support changed them.
const BITMAPS_V2_WARNING: &str = "This qcow2 v2 image contains bitmaps, but they may have been \
    modified by a program without persistent bitmap support; so now they must all be considered \
    inconsistent";

/// qemu's warning for bitmaps whose autoclear bit a program lacking bitmap
/// support has cleared.
const BITMAPS_AUTOCLEAR_WARNING: &str = "a program lacking bitmap support modified this file, so \
    all bitmaps are now considered inconsistent";

/// The text qemu prints after either bitmap warning, without a newline.
pub const BITMAPS_LEAK_HINT: &str =
    "Some clusters may be leaked, run 'qemu-img check -r' on the image file to fix.";

/// What a check works from once qemu has opened the image.
#[derive(Debug)]
pub struct Image {
    /// qcow2 version (2 or 3).
    pub version: u32,
    /// log2 of the cluster size.
    pub cluster_bits: u32,
    /// The virtual size in bytes as the header records it.
    pub size: u64,
    /// log2 of the refcount width in bits.
    pub refcount_order: u32,
    /// Offset of the active L1 table.
    pub l1_offset: u64,
    /// The active L1 table as read at open.
    pub l1_table: Vec<u64>,
    /// Offset of the refcount table.
    pub reftable_offset: u64,
    /// The refcount table as read at open.
    pub reftable: Vec<u64>,
    /// Whether L2 entries carry subcluster bitmaps.
    pub extended_l2: bool,
    /// Whether guest data lives in an external data file.
    pub has_data_file: bool,
    /// The LUKS header area (offset, length), when the image has one.
    pub crypto_header: Option<(u64, u64)>,
    /// The bitmaps extension, when qemu honours it.
    pub bitmaps: Option<BitmapsExt>,
    /// The backing file name and its format, when the image has one.
    pub backing: Option<(String, Option<String>)>,
    /// qemu's warning about bitmaps it had to disregard at open.
    pub bitmap_warning: Option<&'static str>,
}

impl Image {
    /// The cluster size in bytes.
    pub fn cluster_size(&self) -> u64 {
        1u64 << self.cluster_bits
    }

    /// Entries per L2 table.
    pub fn l2_entries(&self) -> u64 {
        self.cluster_size() / self.l2_entry_size()
    }

    /// Bytes per L2 entry: 16 with subcluster bitmaps, else 8.
    pub fn l2_entry_size(&self) -> u64 {
        if self.extended_l2 {
            16
        } else {
            8
        }
    }

    /// Entries in the refcount table.
    pub fn reftable_entries(&self) -> u64 {
        self.reftable.len() as u64
    }
}

/// Opens `file` as qemu's qcow2 driver does before a check (`check` true)
/// or for any other use that reads the image (a backing file), failing
/// with qemu's message. The validations run in qemu's order, so that an
/// image with several faults reports the one qemu reports.
pub fn open(file: &ImageFile, check: bool) -> Result<Image, String> {
    let fixed = file
        .read_vec(0, V3_HEADER_LENGTH as usize)
        .map_err(|e| format!("Could not read qcow2 header: {}", strerror(&e)))?;
    let h = Header::parse_fixed(&fixed).map_err(|e| e.to_string())?;
    let cluster_size = h.cluster_size();
    // Extensions and the backing file name live in the first cluster.
    let first_cluster = file
        .read_vec(0, cluster_size as usize)
        .map_err(|e| format!("Could not read qcow2 header: {}", strerror(&e)))?;

    let compression = h.compression_type;
    if compression != COMPRESSION_ZLIB && compression != COMPRESSION_ZSTD {
        return Err(format!("qcow2: unknown compression type: {compression}"));
    }
    let incompatible = h.incompatible_features;
    if compression == COMPRESSION_ZLIB && incompatible & INCOMPAT_COMPRESSION != 0 {
        return Err("qcow2: Compression type incompatible feature bit must not be set".to_string());
    }
    if compression != COMPRESSION_ZLIB && incompatible & INCOMPAT_COMPRESSION == 0 {
        return Err("qcow2: Compression type incompatible feature bit must be set".to_string());
    }
    if incompatible & !INCOMPAT_MASK != 0 {
        // qemu only wants the feature table here and ignores other errors.
        let (ext, _) = h.scan_extensions(&first_cluster);
        return Err(unsupported_features(
            ext.feature_table.as_deref(),
            incompatible & !INCOMPAT_MASK,
        ));
    }

    let extended_l2 = h.has_subclusters();
    let subclusters = if extended_l2 { EXTL2_SUBCLUSTERS } else { 1 };
    let subcluster_size = (cluster_size as u32) / subclusters;
    if subcluster_size < MIN_SUBCLUSTER_SIZE {
        return Err(format!("Unsupported subcluster size: {subcluster_size}"));
    }
    if h.refcount_order > 6 {
        return Err("Reference count entry width too large; may not exceed 64 bits".to_string());
    }

    let l2_bits = h.cluster_bits - if extended_l2 { 4 } else { 3 };
    if h.refcount_table_clusters == 0 && !check {
        return Err("Image does not contain a reference count table".to_string());
    }
    validate_table(
        h.refcount_table_offset,
        u64::from(h.refcount_table_clusters),
        cluster_size,
        QCOW_MAX_REFTABLE_SIZE,
        cluster_size,
        "Reference count table",
    )?;
    // Outside check mode qemu reads the snapshot table at open; a check
    // reads it itself, so here only its position is validated.
    if !check {
        validate_table(
            h.snapshots_offset,
            u64::from(h.nb_snapshots),
            40,
            40 * 65536,
            cluster_size,
            "Snapshot table",
        )?;
    }
    validate_table(
        h.l1_table_offset,
        u64::from(h.l1_size),
        8,
        MAX_L1_SIZE,
        cluster_size,
        "Active L1 table",
    )?;

    let shift = h.cluster_bits + l2_bits;
    let l1_vm_state_index = h.size.wrapping_add((1u64 << shift) - 1) >> shift;
    if l1_vm_state_index > i32::MAX as u64 {
        return Err("Image is too big".to_string());
    }
    if u64::from(h.l1_size) < l1_vm_state_index {
        return Err("L1 table is too small".to_string());
    }
    let l1_table = if h.l1_size > 0 {
        let raw = file
            .read_vec(h.l1_table_offset, h.l1_size as usize * 8)
            .map_err(|e| format!("Could not read L1 table: {}", strerror(&e)))?;
        be64_table(&raw)
    } else {
        Vec::new()
    };

    if !matches!(h.crypt_method, CRYPT_NONE | CRYPT_AES | CRYPT_LUKS) {
        // qemu prints the field as a signed int.
        return Err(format!("Unsupported encryption method {}", h.crypt_method as i32));
    }

    let reftable_entries = u64::from(h.refcount_table_clusters) << (h.cluster_bits - 3);
    let reftable = if reftable_entries > 0 {
        let raw = file
            .read_vec(h.refcount_table_offset, reftable_entries as usize * 8)
            .map_err(|e| format!("Could not initialize refcount handling: {}", strerror(&e)))?;
        be64_table(&raw)
    } else {
        Vec::new()
    };

    let (ext, ext_error) = h.scan_extensions(&first_cluster);
    if ext.crypto_header.is_some() {
        // qemu opens the LUKS header as soon as it meets its extension,
        // which needs the key.
        return Err(KEY_SECRET_REQUIRED.to_string());
    }
    if let Some(e) = ext_error {
        return Err(e.to_string());
    }

    let has_data_file = incompatible & INCOMPAT_DATA_FILE != 0;
    if has_data_file {
        let Some(name) = &ext.data_file else {
            return Err("'data-file' is required for this image".to_string());
        };
        // qemu opens the external data file by its name as stored, which
        // is relative to the current directory rather than to the image.
        if let Err(e) = std::fs::File::open(name) {
            return Err(format!("Could not open '{name}': {}", strerror(&e)));
        }
    } else if h.autoclear_features & AUTOCLEAR_DATA_FILE_RAW != 0 {
        return Err("data-file-raw requires a data file".to_string());
    }

    if h.crypt_method == CRYPT_AES {
        return Err(KEY_SECRET_REQUIRED.to_string());
    }
    if h.crypt_method != CRYPT_NONE {
        return Err(format!("Missing CRYPTO header for crypt method {}", h.crypt_method));
    }

    let backing = h
        .read_backing_file(&first_cluster)
        .map_err(|e| e.to_string())?
        .map(|name| (name, ext.backing_format.clone()));
    let bitmap_warning = ext.bitmaps_ignored.then_some(if h.version < 3 {
        BITMAPS_V2_WARNING
    } else {
        BITMAPS_AUTOCLEAR_WARNING
    });

    Ok(Image {
        version: h.version,
        cluster_bits: h.cluster_bits,
        size: h.size,
        refcount_order: h.refcount_order,
        l1_offset: h.l1_table_offset,
        l1_table,
        reftable_offset: h.refcount_table_offset,
        reftable,
        extended_l2,
        has_data_file,
        crypto_header: None,
        bitmaps: ext.bitmaps,
        backing,
        bitmap_warning,
    })
}

/// The virtual size in bytes as qemu's block layer keeps it: whole
/// sectors, rounded down.
pub fn total_bytes(image: &Image) -> u64 {
    image.size / 512 * 512
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::{FeatureName, FeatureType};

    #[test]
    fn validate_table_words_like_qemu() {
        assert_eq!(validate_table(0x30000, 1, 8, MAX_L1_SIZE, 65536, "Active L1 table"), Ok(()));
        assert_eq!(
            validate_table(0x30200, 1, 8, MAX_L1_SIZE, 65536, "Active L1 table"),
            Err("Active L1 table offset invalid".to_string())
        );
        assert_eq!(
            validate_table(0x30000, (32 << 20) / 8 + 1, 8, MAX_L1_SIZE, 65536, "Active L1 table"),
            Err("Active L1 table too large".to_string())
        );
        assert_eq!(
            validate_table(0x7fff_ffff_ffff_0000, 0x2000, 8, MAX_L1_SIZE, 65536, "x"),
            Err("x offset invalid".to_string())
        );
    }

    #[test]
    fn unsupported_features_use_the_feature_table() {
        let table = vec![FeatureName {
            feature_type: FeatureType::Incompatible,
            bit: 5,
            name: "shiny".to_string(),
        }];
        assert_eq!(
            unsupported_features(Some(&table), (1 << 5) | (1 << 9)),
            "Unsupported qcow2 feature(s): shiny, Unknown incompatible feature: 200"
        );
        assert_eq!(
            unsupported_features(None, 1 << 40),
            "Unsupported qcow2 feature(s): Unknown incompatible feature: 10000000000"
        );
    }
}
