//! `info` for qcow2: what `bdrv_query_image_info` and
//! `qcow2_get_specific_info` report for an image opened as `qemu-img info`
//! opens it (`qcow2_do_open` with `BDRV_O_NO_IO | BDRV_O_NO_BACKING`).

use crate::bitmap::{Bitmap, BME_FLAG_AUTO, BME_FLAG_IN_USE};
use crate::header::{
    Header, AUTOCLEAR_DATA_FILE_RAW, COMPAT_LAZY_REFCOUNTS, COMPRESSION_ZSTD, CRYPT_AES,
    CRYPT_NONE, INCOMPAT_CORRUPT, INCOMPAT_DIRTY,
};
use crate::open::Qcow2Image;
use instar_core::dialect::QCOW2_REPORTS_DIRTY;
use instar_core::path::full_backing_filename;
use instar_core::{Error, ImageFile, ImageInfo, Json, QemuDialect};
use instar_luks::Luks;

/// The qcow2 part of `format-specific` (`ImageInfoSpecificQCow2`), fields
/// in schema order.
pub fn specific_info(
    h: &Header,
    has_data_file: bool,
    bitmaps: Option<&[Bitmap]>,
    luks: Option<&Luks>,
    dialect: QemuDialect,
) -> Json {
    let mut data = Json::object();
    if h.version == 2 {
        data.push("compat", Json::from("0.10"));
        data.push("refcount-bits", Json::UInt(h.refcount_bits()));
        if let Some(encrypt) = encrypt_info(h, luks, dialect) {
            data.push("encrypt", encrypt);
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
    if let Some(encrypt) = encrypt_info(h, luks, dialect) {
        data.push("encrypt", encrypt);
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
                    .with("granularity", Json::UInt(1u64 << b.granularity_bits))
                    .with("flags", Json::Array(flags))
            })
            .collect();
        data.push("bitmaps", Json::Array(items));
    }
    data.push("compression-type", Json::from(compression_name(h.compression_type)));
    data
}

/// The `encrypt` member (`ImageInfoSpecificQCow2Encryption`): the format,
/// and for LUKS the header's `QCryptoBlockInfoLUKS` fields beside it.
fn encrypt_info(h: &Header, luks: Option<&Luks>, dialect: QemuDialect) -> Option<Json> {
    if let Some(l) = luks {
        let mut o = Json::object().with("format", Json::from("luks"));
        l.push_info(&mut o, dialect);
        return Some(o);
    }
    (h.crypt_method == CRYPT_AES).then(|| Json::object().with("format", Json::from("aes")))
}

fn compression_name(t: u8) -> &'static str {
    if t == COMPRESSION_ZSTD {
        "zstd"
    } else {
        "zlib"
    }
}

/// What `qemu-img info` reports for an opened qcow2 image.
pub fn info(image: &Qcow2Image) -> Result<ImageInfo, Error> {
    let filename = image.file.name();
    let h = &image.header;
    let snapshots = image
        .snapshots
        .as_ref()
        .filter(|t| !t.snapshots.is_empty())
        .map(|t| t.snapshots.iter().map(crate::snapshot::Snapshot::info).collect());
    let backing = h.backing_file.as_deref().filter(|b| !b.is_empty());
    let bitmaps = image.bitmaps_ext.is_some().then_some(image.bitmaps.as_slice());
    // qemu counts the allocation of every child holding the image's data
    // or metadata: with the data file opened (info before qemu's
    // CVE-2024-4467 fix), its blocks too.
    let actual_size = image
        .file
        .allocated_bytes()
        .saturating_add(image.data_file.as_ref().map_or(0, ImageFile::allocated_bytes));
    Ok(ImageInfo {
        actual_size: Some(actual_size),
        // Before qcow2 reported its dirty bit, the block layer's zeroed
        // default said clean.
        dirty_flag: Some(
            image.dialect.since(QCOW2_REPORTS_DIRTY)
                && h.incompatible_features & INCOMPAT_DIRTY != 0,
        ),
        cluster_size: Some(h.cluster_size()),
        encrypted: (h.crypt_method != CRYPT_NONE).then_some(true),
        backing_filename: backing.map(str::to_string),
        full_backing_filename: backing.and_then(|b| full_backing_filename(filename, b)),
        backing_filename_format: backing
            .and(h.extensions.backing_format.clone())
            .filter(|f| !f.is_empty()),
        snapshots,
        format_specific: Some((
            "qcow2".to_string(),
            specific_info(h, image.has_data_file, bitmaps, image.luks.as_ref(), image.dialect),
        )),
        ..ImageInfo::format_node("qcow2", &image.file, image.total_bytes())
    })
}
