//! The one open of a qcow2 image (qemu's `qcow2_do_open`), used by every
//! command. The validations run in qemu's order, so that an image with
//! several faults fails with the message qemu gives; the open flags change
//! what qemu's flags change: a check (`BDRV_O_CHECK`) tolerates a missing
//! refcount table and leaves the snapshot table to the check, and `info`
//! (`BDRV_O_NO_IO`) needs neither the external data file nor an
//! encryption key.

use crate::bitmap::{self, Bitmap};
use crate::error::Qcow2Error;
use crate::header::{
    unsupported_features, BitmapsExt, Extensions, Header, AUTOCLEAR_DATA_FILE_RAW,
    COMPRESSION_ZLIB, COMPRESSION_ZSTD, CRYPT_AES, CRYPT_LUKS, CRYPT_NONE, INCOMPAT_COMPRESSION,
    INCOMPAT_DATA_FILE, INCOMPAT_MASK, V3_HEADER_LENGTH,
};
use crate::snapshot::{self, SnapshotTable};
use crate::tables::{
    read_table, validate_table, L1E_SIZE, QCOW_MAX_L1_SIZE, QCOW_MAX_REFTABLE_SIZE,
    SUBCLUSTERS_PER_CLUSTER,
};
use instar_core::bytes::SECTOR_SIZE;
use instar_core::dialect::{
    FILE_DRIVER_NAMES_THE_FILE, INFO_SKIPS_DATA_FILE, RECORDED_NAMES_LITERAL, ZSTD_BUILT,
};
use instar_core::{Diagnostic, Error, ImageFile, OpenFlags, QemuDialect};

/// The smallest subcluster qemu supports (`1 << MIN_CLUSTER_BITS`).
const MIN_SUBCLUSTER_SIZE: u64 = 512;

/// The error qemu's crypto layer gives when an encrypted image is opened
/// for reading data without its key, which instar is never given.
const KEY_SECRET_REQUIRED: &str = "Parameter 'encrypt.key-secret' is required for cipher";

/// qemu's error when the LUKS header would be read past the length its
/// extension gives it (`qcow2_crypto_hdr_read_func`).
const OUTSIDE_CRYPTO_HEADER: &str = "Request for data outside of extension header";

/// qemu's warning for bitmaps in a version 2 image, which cannot tell
/// whether a program without bitmap support changed them.
const BITMAPS_V2_WARNING: &str = "This qcow2 v2 image contains bitmaps, but they may have been \
    modified by a program without persistent bitmap support; so now they must all be considered \
    inconsistent";

/// qemu's warning for bitmaps whose autoclear bit a program lacking bitmap
/// support has cleared.
const BITMAPS_AUTOCLEAR_WARNING: &str = "a program lacking bitmap support modified this file, so \
    all bitmaps are now considered inconsistent";

/// The text qemu prints after either bitmap warning, without a newline
/// (whatever qemu prints next continues the line).
const BITMAPS_LEAK_HINT: &str =
    "Some clusters may be leaked, run 'qemu-img check -r' on the image file to fix.";

/// A qcow2 image opened as qemu opens it.
#[derive(Debug)]
pub struct Qcow2Image {
    /// The image file.
    pub file: ImageFile,
    /// The header, with its extensions and backing file name.
    pub header: Header,
    /// The active L1 table as read at open.
    pub l1_table: Vec<u64>,
    /// The refcount table as read at open.
    pub reftable: Vec<u64>,
    /// Whether guest data lives in an external data file.
    pub has_data_file: bool,
    /// The external data file, when the open opened it (every open but
    /// `info`'s since qemu's CVE-2024-4467 fix); opened read-only, never
    /// read.
    pub data_file: Option<ImageFile>,
    /// The bitmaps extension, when qemu honours it (its autoclear bit set).
    pub bitmaps_ext: Option<BitmapsExt>,
    /// The bitmap directory loaded at open, when there is one.
    pub bitmaps: Vec<Bitmap>,
    /// The internal snapshots, read at open unless the open is a check's.
    pub snapshots: Option<SnapshotTable>,
    /// qemu's warning about bitmaps it had to disregard at open.
    pub bitmap_warning: Option<&'static str>,
    /// The LUKS header of a LUKS-encrypted image, opened without its key.
    pub luks: Option<instar_luks::Luks>,
    /// The qemu-img whose behaviour `info` and `check` follow.
    pub dialect: QemuDialect,
    /// What reads keep between calls: caches, reported corruption.
    pub reader: crate::read::ReadState,
}

impl Qcow2Image {
    /// The cluster size in bytes.
    pub fn cluster_size(&self) -> u64 {
        self.header.cluster_size()
    }

    /// log2 of the cluster size.
    pub fn cluster_bits(&self) -> u32 {
        self.header.cluster_bits
    }

    /// Whether L2 entries carry subcluster bitmaps.
    pub fn extended_l2(&self) -> bool {
        self.header.has_subclusters()
    }

    /// Bytes per L2 entry: 16 with subcluster bitmaps, else 8.
    pub fn l2_entry_size(&self) -> u64 {
        if self.extended_l2() {
            16
        } else {
            8
        }
    }

    /// Entries per L2 table.
    pub fn l2_entries(&self) -> u64 {
        self.cluster_size() / self.l2_entry_size()
    }

    /// The virtual size as qemu's block layer keeps it: whole sectors,
    /// rounded down (`total_sectors`).
    pub fn total_bytes(&self) -> u64 {
        self.header.size / SECTOR_SIZE * SECTOR_SIZE
    }

    /// What opening the image printed on stderr.
    pub fn warnings(&self) -> Vec<Diagnostic> {
        warnings(self.bitmap_warning)
    }
}

/// qemu's warning when the image has a bitmaps extension that it ignores
/// (its autoclear bit is clear).
fn bitmap_warning(h: &Header, ext: &Extensions) -> Option<&'static str> {
    ext.bitmaps_ignored.then_some(if h.version < 3 {
        BITMAPS_V2_WARNING
    } else {
        BITMAPS_AUTOCLEAR_WARNING
    })
}

/// What qemu prints on stderr for `bitmap_warning`: the warning, then a
/// hint without a newline (what follows continues its line).
fn warnings(bitmap_warning: Option<&'static str>) -> Vec<Diagnostic> {
    match bitmap_warning {
        Some(warning) => vec![
            Diagnostic::Reported(format!("warning: {warning}")),
            Diagnostic::Plain(BITMAPS_LEAK_HINT.to_string()),
        ],
        None => Vec::new(),
    }
}

/// Opens the image in `file` as `qcow2_do_open` does under `flags`. A
/// failure carries what qemu printed before it (the warning about ignored
/// bitmaps, printed as their extension is read).
pub fn open(file: ImageFile, flags: OpenFlags) -> Result<Qcow2Image, Error> {
    let mut printed = Vec::new();
    open_printing(file, flags, &mut printed).map_err(|e| Error::from(e).after(printed))
}

/// [`open`], setting `printed` to what qemu has printed on stderr so far.
fn open_printing(
    file: ImageFile,
    flags: OpenFlags,
    printed: &mut Vec<Diagnostic>,
) -> Result<Qcow2Image, Qcow2Error> {
    let read_error = |e| Qcow2Error::Io("Could not read qcow2 header".into(), e);
    let fixed = file.read_vec(0, u64::from(V3_HEADER_LENGTH)).map_err(read_error)?;
    let mut h = Header::parse_fixed(&fixed)?;
    let cluster_size = h.cluster_size();
    // Extensions and the backing file name live in the first cluster (at
    // most 2 MiB, as `parse_fixed` checked).
    let first_cluster = file.read_vec(0, cluster_size).map_err(read_error)?;

    let compression = h.compression_type;
    let zstd = compression == COMPRESSION_ZSTD && flags.dialect.since(ZSTD_BUILT);
    if compression != COMPRESSION_ZLIB && !zstd {
        return Err(corrupt(format!("qcow2: unknown compression type: {compression}")));
    }
    let incompatible = h.incompatible_features;
    if compression == COMPRESSION_ZLIB && incompatible & INCOMPAT_COMPRESSION != 0 {
        return Err(corrupt("qcow2: Compression type incompatible feature bit must not be set"));
    }
    if compression != COMPRESSION_ZLIB && incompatible & INCOMPAT_COMPRESSION == 0 {
        return Err(corrupt("qcow2: Compression type incompatible feature bit must be set"));
    }
    if incompatible & !INCOMPAT_MASK != 0 {
        // qemu only wants the feature table here and ignores other errors
        // (but not the warning about ignored bitmaps).
        let (ext, _) = h.scan_extensions(&first_cluster);
        *printed = warnings(bitmap_warning(&h, &ext));
        return Err(corrupt(unsupported_features(
            ext.feature_table.as_deref(),
            incompatible & !INCOMPAT_MASK,
        )));
    }

    let subclusters = if h.has_subclusters() { SUBCLUSTERS_PER_CLUSTER } else { 1 };
    let subcluster_size = cluster_size / subclusters;
    if subcluster_size < MIN_SUBCLUSTER_SIZE {
        return Err(corrupt(format!("Unsupported subcluster size: {subcluster_size}")));
    }
    if h.refcount_order > 6 {
        return Err(corrupt("Reference count entry width too large; may not exceed 64 bits"));
    }

    if h.refcount_table_clusters == 0 && !flags.check {
        return Err(corrupt("Image does not contain a reference count table"));
    }
    validate_table(
        h.refcount_table_offset,
        u64::from(h.refcount_table_clusters),
        cluster_size,
        QCOW_MAX_REFTABLE_SIZE,
        cluster_size,
        "Reference count table",
    )
    .map_err(Qcow2Error::Corrupt)?;
    // A normal open reads the snapshot table below and checks its position
    // here; a check reads it itself, so that a broken table fails the check
    // rather than the open.
    if !flags.check {
        snapshot::validate_position(&h, cluster_size).map_err(Qcow2Error::Corrupt)?;
    }
    validate_table(
        h.l1_table_offset,
        u64::from(h.l1_size),
        L1E_SIZE,
        QCOW_MAX_L1_SIZE,
        cluster_size,
        "Active L1 table",
    )
    .map_err(Qcow2Error::Corrupt)?;

    // qemu's `size_to_l1` adds in unsigned 64 bits, wrapping for sizes
    // near 2^64 exactly as qemu's does.
    let l2_bits = h.cluster_bits - if h.has_subclusters() { 4 } else { 3 };
    let shift = h.cluster_bits + l2_bits;
    let l1_vm_state_index = h.size.wrapping_add((1u64 << shift) - 1) >> shift;
    if l1_vm_state_index > i32::MAX as u64 {
        return Err(corrupt("Image is too big"));
    }
    if u64::from(h.l1_size) < l1_vm_state_index {
        return Err(corrupt("L1 table is too small"));
    }
    let l1_table = read_table(&file, h.l1_table_offset, u64::from(h.l1_size))
        .map_err(|e| Qcow2Error::Io("Could not read L1 table".into(), e))?;

    if !matches!(h.crypt_method, CRYPT_NONE | CRYPT_AES | CRYPT_LUKS) {
        // qemu prints the field as a C int.
        #[allow(clippy::cast_possible_wrap, reason = "qemu prints the uint32_t field with %d")]
        let method = h.crypt_method as i32;
        return Err(corrupt(format!("Unsupported encryption method {method}")));
    }

    // The refcount table: `refcount_table_clusters` clusters of 8-byte
    // entries, bounded by the validation above.
    let reftable_entries = u64::from(h.refcount_table_clusters) << (h.cluster_bits - 3);
    let reftable = read_table(&file, h.refcount_table_offset, reftable_entries)
        .map_err(|e| Qcow2Error::Io("Could not initialize refcount handling".into(), e))?;

    let (ext, ext_error) = h.scan_extensions(&first_cluster);
    // qemu warns about ignored bitmaps as it meets their extension, so
    // every failure from here on comes after the warning.
    let bitmap_warning = bitmap_warning(&h, &ext);
    *printed = warnings(bitmap_warning);
    // qemu opens the LUKS header as soon as it meets its extension: to
    // read data it needs the key, which instar is never given; `info`
    // reads and checks the header alone.
    let luks = match &ext.crypto_header {
        Some(_) if !flags.no_io => return Err(corrupt(KEY_SECRET_REQUIRED)),
        Some(c) => Some(open_luks(&file, c, flags)?),
        None => None,
    };
    if let Some(e) = ext_error {
        return Err(e.into());
    }

    let has_data_file = incompatible & INCOMPAT_DATA_FILE != 0;
    // `info` (BDRV_O_NO_IO) does not open the external data file, so that
    // an untrusted image cannot make it touch other files; qemu-img before
    // that fix (INFO_SKIPS_DATA_FILE) opened it for `info` too.
    let open_data_file = !flags.no_io || !flags.dialect.has(INFO_SKIPS_DATA_FILE);
    let mut data_file = None;
    if open_data_file {
        if has_data_file {
            let Some(name) = &ext.data_file else {
                return Err(corrupt("'data-file' is required for this image"));
            };
            data_file = Some(open_data_file_named(&file, name, flags)?);
        } else if h.autoclear_features & AUTOCLEAR_DATA_FILE_RAW != 0 {
            return Err(corrupt("data-file-raw requires a data file"));
        }
    }

    if h.crypt_method == CRYPT_AES && !flags.no_io {
        return Err(corrupt(KEY_SECRET_REQUIRED));
    }
    if h.crypt_method == CRYPT_LUKS && luks.is_none() {
        return Err(corrupt(format!("Missing CRYPTO header for crypt method {}", h.crypt_method)));
    }

    h.backing_file = h.read_backing_file(&first_cluster)?;
    let bitmaps_ext = ext.bitmaps;
    h.extensions = ext;

    let snapshots = if flags.check {
        None
    } else {
        Some(snapshot::read_table(&file, &h).map_err(Qcow2Error::Corrupt)?)
    };

    let mut image = Qcow2Image {
        file,
        header: h,
        l1_table,
        reftable,
        has_data_file,
        data_file,
        bitmaps_ext,
        bitmaps: Vec::new(),
        snapshots,
        bitmap_warning,
        luks,
        dialect: flags.dialect,
        reader: crate::read::ReadState::default(),
    };
    if let Some(ext) = &image.bitmaps_ext {
        image.bitmaps = bitmap::load_all(&image, ext).map_err(Qcow2Error::Corrupt)?;
    }
    Ok(image)
}

/// Opens the external data file the image names, read-only, as qemu's
/// file protocol opens it, to fail as qemu fails; nothing is read from it.
/// qemu opens it by the name as recorded, which is relative to the
/// current directory (not to the image's). Since the CVE-2024-4467 fix
/// the name is a plain file name; before it a protocol prefix was read
/// (`file:` stripped, others refused as for an image name).
fn open_data_file_named(
    image: &ImageFile,
    recorded: &str,
    flags: OpenFlags,
) -> Result<ImageFile, Qcow2Error> {
    let name = if flags.dialect.has(RECORDED_NAMES_LITERAL) {
        recorded
    } else {
        instar_core::path::local_path(recorded).map_err(|e| corrupt(e.message()))?
    };
    if name.is_empty() {
        return Err(corrupt("The 'file' block driver requires a file name"));
    }
    let data = image.open_beside(name).map_err(|e| {
        corrupt(format!("Could not open '{name}': {}", instar_core::error::strerror(&e)))
    })?;
    if !data.is_regular() {
        return Err(corrupt(if flags.dialect.since(FILE_DRIVER_NAMES_THE_FILE) {
            format!("'file' driver requires '{name}' to be a regular file")
        } else {
            "A regular file was expected by the 'file' driver, but something else was given"
                .to_string()
        }));
    }
    Ok(data)
}

/// Reads the LUKS header the crypto header extension `c` points at and
/// opens it as qemu's crypto layer does without a key
/// (`qcow2_crypto_hdr_read_func`, then `qcrypto_block_open`).
fn open_luks(
    file: &ImageFile,
    c: &crate::header::CryptoHeaderExt,
    flags: OpenFlags,
) -> Result<instar_luks::Luks, Qcow2Error> {
    let len = instar_luks::phdr::HEADER_SIZE as u64;
    if len > c.length {
        return Err(corrupt(OUTSIDE_CRYPTO_HEADER));
    }
    let bytes = file
        .read_vec(c.offset, len)
        .map_err(|e| Qcow2Error::Io("Could not read encryption header".into(), e))?;
    instar_luks::open::open(&bytes, flags.dialect, false)
        .map_err(|e| Qcow2Error::Corrupt(e.to_string()))
}

/// A failed open check, with qemu's message.
fn corrupt(message: impl Into<String>) -> Qcow2Error {
    Qcow2Error::Corrupt(message.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::{FeatureName, FeatureType};

    #[test]
    fn validate_table_words_like_qemu() {
        let max = QCOW_MAX_L1_SIZE;
        assert_eq!(validate_table(0x30000, 1, 8, max, 65536, "Active L1 table"), Ok(()));
        assert_eq!(
            validate_table(0x30200, 1, 8, max, 65536, "Active L1 table"),
            Err("Active L1 table offset invalid".to_string())
        );
        assert_eq!(
            validate_table(0x30000, (32 << 20) / 8 + 1, 8, max, 65536, "Active L1 table"),
            Err("Active L1 table too large".to_string())
        );
        assert_eq!(
            validate_table(0x7fff_ffff_ffff_0000, 0x2000, 8, max, 65536, "x"),
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
