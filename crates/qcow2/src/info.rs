//! `info` for qcow2: opens the image read-only as `qemu-img info` does
//! (`qcow2_do_open` with `BDRV_O_NO_IO | BDRV_O_NO_BACKING`), refusing
//! what qemu refuses with qemu's messages and in qemu's order, then
//! reports what `bdrv_query_image_info` and `qcow2_get_specific_info`
//! report.

use crate::error::{HeaderError, Qcow2Error};
use crate::header::{
    Header, AUTOCLEAR_DATA_FILE_RAW, COMPAT_LAZY_REFCOUNTS, COMPRESSION_ZLIB, COMPRESSION_ZSTD,
    CRYPT_AES, CRYPT_LUKS, CRYPT_NONE, INCOMPAT_COMPRESSION, INCOMPAT_CORRUPT, INCOMPAT_DATA_FILE,
    INCOMPAT_DIRTY, INCOMPAT_MASK, V3_HEADER_LENGTH,
};
use crate::tables::{QCOW_MAX_L1_SIZE, QCOW_MAX_REFTABLE_SIZE, SUBCLUSTERS_PER_CLUSTER};
use instar_core::info::allocated_size;
use instar_core::{ChildInfo, Error, ImageInfo, Json};
use std::fs::File;
use std::os::unix::fs::FileExt;

/// Size of one snapshot table header (`QCowSnapshotHeader`).
const SNAPSHOT_HEADER_SIZE: u64 = 40;
/// Most snapshots qemu accepts (`QCOW_MAX_SNAPSHOTS`).
const MAX_SNAPSHOTS: u64 = 65536;

/// Bitmap directory entry flag: the bitmap is in use (inconsistent).
const BME_FLAG_IN_USE: u32 = 1 << 0;
/// Bitmap directory entry flag: the bitmap tracks writes automatically.
const BME_FLAG_AUTO: u32 = 1 << 1;
/// Bitmap directory entry flag: extra data may be ignored.
const BME_FLAG_EXTRA_DATA_COMPATIBLE: u32 = 1 << 2;
/// Largest bitmap table, in entries (`BME_MAX_TABLE_SIZE`).
const BME_MAX_TABLE_SIZE: u64 = 0x800_0000;
/// Largest bitmap, in bytes of bitmap data (`BME_MAX_PHYS_SIZE`).
const BME_MAX_PHYS_SIZE: u64 = 0x2000_0000;
/// Granularity limits, log2 bytes (`BME_MIN/MAX_GRANULARITY_BITS`).
const BME_GRANULARITY_BITS: std::ops::RangeInclusive<u8> = 9..=31;
/// Longest bitmap name (`BME_MAX_NAME_SIZE`).
const BME_MAX_NAME_SIZE: u16 = 1023;
/// The only bitmap type: dirty tracking.
const BT_DIRTY_TRACKING_BITMAP: u8 = 1;
/// Size of the fixed part of a bitmap directory entry.
const BITMAP_DIR_ENTRY_SIZE: usize = 24;

/// One persistent dirty bitmap as `info` lists it (`Qcow2BitmapInfo`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BitmapInfo {
    /// The bitmap's name.
    pub name: String,
    /// Bytes of guest data per bit.
    pub granularity: u64,
    /// Directory entry flags.
    pub flags: u32,
}

/// What `info` learned from opening an image.
#[derive(Debug, Clone)]
pub struct OpenedImage {
    /// The header with its extensions and backing file name.
    pub header: Header,
    /// Whether an external data file holds the guest data.
    pub has_data_file: bool,
    /// The persistent dirty bitmaps, when the image has a bitmaps
    /// extension qemu honours.
    pub bitmaps: Option<Vec<BitmapInfo>>,
}

/// Reads and checks the bitmap directory as qemu's `bitmap_list_load`
/// does when the image is opened.
fn read_bitmap_directory(
    file: &File,
    h: &Header,
    nb_bitmaps: u32,
    offset: u64,
    size: u64,
) -> Result<Vec<BitmapInfo>, Qcow2Error> {
    let corrupt = |m: &str| Qcow2Error::Corrupt(m.to_string());
    if size == 0 {
        return Err(corrupt("Requested bitmap directory size is zero"));
    }
    let dir = read_padded(file, offset, size as usize)
        .map_err(|e| Qcow2Error::Io("Failed to read bitmap directory".into(), e))?;
    let mut list = Vec::new();
    let mut at = 0usize;
    while at < dir.len() {
        if at + BITMAP_DIR_ENTRY_SIZE > dir.len() {
            return Err(corrupt("Broken bitmap directory"));
        }
        if list.len() as u32 >= nb_bitmaps {
            return Err(corrupt("More bitmaps found than specified in header extension"));
        }
        let e = &dir[at..];
        let table_offset = u64::from_be_bytes(e[0..8].try_into().unwrap_or_default());
        let table_size = u32::from_be_bytes(e[8..12].try_into().unwrap_or_default());
        let flags = u32::from_be_bytes(e[12..16].try_into().unwrap_or_default());
        let kind = e[16];
        let granularity_bits = e[17];
        let name_size = u16::from_be_bytes([e[18], e[19]]);
        let extra = u32::from_be_bytes(e[20..24].try_into().unwrap_or_default());
        let entry_len =
            (BITMAP_DIR_ENTRY_SIZE + extra as usize + usize::from(name_size)).div_ceil(8) * 8;
        if at + entry_len > dir.len() {
            return Err(corrupt("Broken bitmap directory"));
        }
        let name_at = BITMAP_DIR_ENTRY_SIZE + extra as usize;
        let name = String::from_utf8_lossy(&e[name_at..name_at + usize::from(name_size)]);
        if extra != 0 {
            return Err(corrupt("Bitmap extra data is not supported"));
        }
        let cs = h.cluster_size();
        let reserved = !(BME_FLAG_IN_USE | BME_FLAG_AUTO | BME_FLAG_EXTRA_DATA_COMPATIBLE);
        let phys = u64::from(table_size) * cs;
        let covered = (u128::from(phys) * 8) << granularity_bits.min(64);
        let bad = table_size == 0
            || table_offset == 0
            || table_offset % cs != 0
            || u64::from(table_size) > BME_MAX_TABLE_SIZE
            || !BME_GRANULARITY_BITS.contains(&granularity_bits)
            || flags & reserved != 0
            || name_size > BME_MAX_NAME_SIZE
            || kind != BT_DIRTY_TRACKING_BITMAP
            || phys > BME_MAX_PHYS_SIZE
            || u128::from(h.size / 512 * 512) > covered;
        if bad {
            return Err(Qcow2Error::Corrupt(format!(
                "Bitmap '{name}' doesn't satisfy the constraints"
            )));
        }
        list.push(BitmapInfo {
            name: name.into_owned(),
            granularity: 1u64 << granularity_bits,
            flags,
        });
        at += entry_len;
    }
    if list.len() as u32 != nb_bitmaps {
        return Err(corrupt("Less bitmaps found than specified in header extension"));
    }
    Ok(list)
}

/// Reads `len` bytes at `offset`, past the end of the file as zeros (as
/// qemu's file driver does).
fn read_padded(file: &File, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    let mut done = 0;
    while done < len {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(buf)
}

/// Opens the image in `file` as `qemu-img info` does.
pub fn open(file: &File) -> Result<OpenedImage, Qcow2Error> {
    let read_error = |e| Qcow2Error::Io("Could not read qcow2 header".into(), e);
    let fixed = read_padded(file, 0, V3_HEADER_LENGTH as usize).map_err(read_error)?;
    let mut h = Header::parse_fixed(&fixed)?;
    let cs = h.cluster_size();
    let first = read_padded(file, 0, cs as usize).map_err(read_error)?;

    let incompatible = h.incompatible_features;
    match h.compression_type {
        COMPRESSION_ZLIB if incompatible & INCOMPAT_COMPRESSION != 0 => {
            return Err(Qcow2Error::Corrupt(
                "qcow2: Compression type incompatible feature bit must not be set".into(),
            ))
        }
        COMPRESSION_ZLIB => {}
        COMPRESSION_ZSTD if incompatible & INCOMPAT_COMPRESSION == 0 => {
            return Err(Qcow2Error::Corrupt(
                "qcow2: Compression type incompatible feature bit must be set".into(),
            ))
        }
        COMPRESSION_ZSTD => {}
        other => {
            return Err(Qcow2Error::Corrupt(format!("qcow2: unknown compression type: {other}")))
        }
    }
    if incompatible & !INCOMPAT_MASK != 0 {
        let (ext, _) = h.scan_extensions(&first);
        return Err(Qcow2Error::Corrupt(crate::header::unsupported_features(
            ext.feature_table.as_deref(),
            incompatible & !INCOMPAT_MASK,
        )));
    }
    let subclusters = if h.has_subclusters() { SUBCLUSTERS_PER_CLUSTER } else { 1 };
    if cs / subclusters < 512 {
        return Err(Qcow2Error::Corrupt(format!(
            "Unsupported subcluster size: {}",
            cs / subclusters
        )));
    }
    if h.refcount_order > 6 {
        return Err(Qcow2Error::Corrupt(
            "Reference count entry width too large; may not exceed 64 bits".into(),
        ));
    }
    if h.refcount_table_clusters == 0 {
        return Err(Qcow2Error::Corrupt("Image does not contain a reference count table".into()));
    }
    crate::tables::validate_table(
        h.refcount_table_offset,
        u64::from(h.refcount_table_clusters),
        cs,
        QCOW_MAX_REFTABLE_SIZE,
        cs,
        "Reference count table",
    )
    .map_err(Qcow2Error::Corrupt)?;
    crate::tables::validate_table(
        h.snapshots_offset,
        u64::from(h.nb_snapshots),
        SNAPSHOT_HEADER_SIZE,
        SNAPSHOT_HEADER_SIZE * MAX_SNAPSHOTS,
        cs,
        "Snapshot table",
    )
    .map_err(Qcow2Error::Corrupt)?;
    crate::tables::validate_table(
        h.l1_table_offset,
        u64::from(h.l1_size),
        8,
        QCOW_MAX_L1_SIZE,
        cs,
        "Active L1 table",
    )
    .map_err(Qcow2Error::Corrupt)?;
    let l2_bits = h.cluster_bits - if h.has_subclusters() { 4 } else { 3 };
    let shift = h.cluster_bits + l2_bits;
    let l1_needed = ((u128::from(h.size) + (1u128 << shift) - 1) >> shift) as u64;
    if l1_needed > i32::MAX as u64 {
        return Err(Qcow2Error::Corrupt("Image is too big".into()));
    }
    if u64::from(h.l1_size) < l1_needed {
        return Err(Qcow2Error::Corrupt("L1 table is too small".into()));
    }
    if !matches!(h.crypt_method, CRYPT_NONE | CRYPT_AES | CRYPT_LUKS) {
        return Err(Qcow2Error::Corrupt(format!(
            "Unsupported encryption method {}",
            h.crypt_method
        )));
    }

    let (ext, ext_error) = h.scan_extensions(&first);
    if let Some(e) = ext_error {
        return Err(e.into());
    }
    h.extensions = ext;
    // `qemu-img info` does not open the external data file (so that an
    // untrusted image cannot make it touch other files), which also skips
    // the checks that go with opening it.
    let has_data_file = incompatible & INCOMPAT_DATA_FILE != 0;
    if h.crypt_method == CRYPT_LUKS {
        // Reporting a LUKS header needs the whole LUKS parser, which
        // instar does not have.
        return Err(Qcow2Error::Corrupt(
            "LUKS-encrypted qcow2 images are not supported by instar".into(),
        ));
    }
    h.backing_file = h.read_backing_file(&first).map_err(|e: HeaderError| Qcow2Error::from(e))?;
    let bitmaps = match h.extensions.bitmaps {
        Some(bm) => Some(read_bitmap_directory(
            file,
            &h,
            bm.nb_bitmaps,
            bm.bitmap_directory_offset,
            bm.bitmap_directory_size,
        )?),
        None => None,
    };
    Ok(OpenedImage { header: h, has_data_file, bitmaps })
}

/// Whether `path` names a protocol (`proto:...` before any `/`).
fn has_protocol(path: &str) -> bool {
    path.find([':', '/']).is_some_and(|i| path.as_bytes()[i] == b':')
}

/// The backing file name resolved as qemu resolves it for display
/// (`bdrv_get_full_backing_filename`): absolute names and names with a
/// protocol stay; others are taken relative to the image's directory.
pub fn full_backing_filename(image: &str, backing: &str) -> Option<String> {
    if backing.is_empty() {
        return None;
    }
    if has_protocol(backing) || backing.starts_with('/') {
        return Some(backing.to_string());
    }
    // path_combine(image, ""): everything up to the last '/', after any
    // protocol prefix.
    let after_protocol = if has_protocol(image) { image.find(':').map_or(0, |i| i + 1) } else { 0 };
    let dir_end = image.rfind('/').map_or(0, |i| i + 1).max(after_protocol);
    Some(format!("{}{backing}", &image[..dir_end]))
}

/// The qcow2 part of `format-specific` (`ImageInfoSpecificQCow2`), fields
/// in schema order.
pub fn specific_info(h: &Header, has_data_file: bool, bitmaps: Option<&[BitmapInfo]>) -> Json {
    let mut data = Json::object();
    if h.version == 2 {
        data.push("compat", Json::from("0.10"));
        data.push("refcount-bits", Json::UInt(h.refcount_bits()));
        if h.crypt_method == CRYPT_AES {
            data.push("encrypt", Json::object().with("format", Json::from("aes")));
        }
        data.push("compression-type", Json::from(compression_name(h.compression_type)));
        return data;
    }
    data.push("compat", Json::from("1.1"));
    if let Some(df) = &h.extensions.data_file {
        data.push("data-file", Json::from(df.as_str()));
    }
    if has_data_file {
        data.push("data-file-raw", Json::Bool(h.autoclear_features & AUTOCLEAR_DATA_FILE_RAW != 0));
    }
    data.push("extended-l2", Json::Bool(h.has_subclusters()));
    data.push("lazy-refcounts", Json::Bool(h.compatible_features & COMPAT_LAZY_REFCOUNTS != 0));
    data.push("corrupt", Json::Bool(h.incompatible_features & INCOMPAT_CORRUPT != 0));
    data.push("refcount-bits", Json::UInt(h.refcount_bits()));
    if h.crypt_method == CRYPT_AES {
        data.push("encrypt", Json::object().with("format", Json::from("aes")));
    }
    if let Some(list) = bitmaps {
        let items = list
            .iter()
            .map(|b| {
                let mut flags = Vec::new();
                if b.flags & BME_FLAG_IN_USE != 0 {
                    flags.push(Json::from("in-use"));
                }
                if b.flags & BME_FLAG_AUTO != 0 {
                    flags.push(Json::from("auto"));
                }
                Json::object()
                    .with("name", Json::from(b.name.as_str()))
                    .with("granularity", Json::UInt(b.granularity))
                    .with("flags", Json::Array(flags))
            })
            .collect();
        data.push("bitmaps", Json::Array(items));
    }
    data.push("compression-type", Json::from(compression_name(h.compression_type)));
    data
}

fn compression_name(t: u8) -> &'static str {
    if t == COMPRESSION_ZSTD {
        "zstd"
    } else {
        "zlib"
    }
}

/// What `qemu-img info` reports for the qcow2 image `filename`.
pub fn info(filename: &str) -> Result<ImageInfo, Error> {
    let open_error = |e: std::io::Error| {
        Error::open(format!("Could not open '{filename}': {}", instar_core::error::strerror(&e)))
    };
    let file = File::open(filename).map_err(open_error)?;
    let image = open(&file).map_err(|e| e.into_open_error(filename))?;
    let meta = file.metadata().map_err(open_error)?;
    let h = &image.header;
    if h.nb_snapshots > 0 {
        // qemu-img lists internal snapshots, which instar does not read
        // yet; printing the rest would be a wrong answer.
        return Err(Error::after_open(format!(
            "Could not open '{filename}': images with internal snapshots are not supported by \
             instar info yet ({} snapshots)",
            h.nb_snapshots
        )));
    }

    let child = ImageInfo::file_node(filename).map_err(open_error)?;

    let backing = h.backing_file.as_deref().filter(|b| !b.is_empty());
    Ok(ImageInfo {
        filename: filename.to_string(),
        format: "qcow2".to_string(),
        dirty_flag: Some(h.incompatible_features & INCOMPAT_DIRTY != 0),
        actual_size: Some(allocated_size(&meta)),
        virtual_size: h.size / 512 * 512,
        cluster_size: Some(h.cluster_size()),
        encrypted: (h.crypt_method != CRYPT_NONE).then_some(true),
        compressed: None,
        backing_filename: backing.map(str::to_string),
        full_backing_filename: backing.and_then(|b| full_backing_filename(filename, b)),
        backing_filename_format: backing
            .and(h.extensions.backing_format.clone())
            .filter(|f| !f.is_empty()),
        format_specific: Some((
            "qcow2".to_string(),
            specific_info(h, image.has_data_file, image.bitmaps.as_deref()),
        )),
        children: vec![ChildInfo { name: "file".to_string(), info: child }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backing_names_resolve_like_qemu() {
        assert_eq!(full_backing_filename("b.qcow2", "base.raw").as_deref(), Some("base.raw"));
        assert_eq!(
            full_backing_filename("/tmp/q/b.qcow2", "base.raw").as_deref(),
            Some("/tmp/q/base.raw")
        );
        assert_eq!(
            full_backing_filename("sub/x.qcow2", "../base.raw").as_deref(),
            Some("sub/../base.raw")
        );
        assert_eq!(full_backing_filename("sub/x.qcow2", "/abs").as_deref(), Some("/abs"));
        assert_eq!(
            full_backing_filename("sub/x.qcow2", "nbd:host:10809").as_deref(),
            Some("nbd:host:10809")
        );
        assert_eq!(full_backing_filename("x", "").as_deref(), None);
    }
}
