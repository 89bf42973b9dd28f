//! What `info` reports about an opened vmdk image, field for field as
//! qemu-img builds it (`vmdk_get_specific_info`, `vmdk_co_get_info`,
//! `vmdk_co_get_allocated_file_size`, and the block layer's child nodes).

use crate::error::VmdkError;
use crate::image::{Extent, Image};
use instar_core::path;
use instar_core::{ChildInfo, ImageInfo, Json};

/// Bytes per sector.
const SECTOR: i64 = 512;

/// qemu's `vmdk_extents_type_eq`: two extents are alike when both are flat
/// or both sparse with the same compression and grain size.
fn same_type(a: &Extent, b: &Extent) -> bool {
    a.is_flat() == b.is_flat()
        && a.compressed() == b.compressed()
        && (a.is_flat() || a.cluster_sectors == b.cluster_sectors)
}

/// One entry of `format-specific.data.extents` (QAPI `VmdkExtentInfo`).
fn extent_info(img: &Image, e: &Extent) -> Json {
    let mut o = Json::object()
        .with("filename", Json::from(img.files[e.file].file.name()))
        .with(
            "format",
            Json::from(instar_core::rawtext::from_bytes(e.type_name.as_deref().unwrap_or(b""))),
        )
        .with("virtual-size", Json::Int(e.sectors.wrapping_mul(SECTOR)));
    if !e.is_flat() {
        #[allow(clippy::cast_possible_wrap, reason = "qemu's int64_t `cluster_sectors * 512`")]
        let cluster_sectors = e.cluster_sectors as i64;
        o.push("cluster-size", Json::Int(cluster_sectors.wrapping_mul(SECTOR)));
    }
    if e.compressed() {
        o.push("compressed", Json::Bool(true));
    }
    o
}

/// The image's `info`, children included. Fails as qemu's does when the
/// extents add up to no valid length: a negative sector count is returned
/// as if it were an errno (cut to 32 bits, as C passes it), a count too
/// large for bytes as `EFBIG`.
pub fn image_info(img: &Image) -> Result<ImageInfo, VmdkError> {
    let total = img.total_sectors();
    if total < 0 {
        #[allow(clippy::cast_possible_truncation, reason = "C passes the int64_t as an int errno")]
        let errno = total.wrapping_neg() as i32;
        let text = instar_core::error::strerror(&std::io::Error::from_raw_os_error(errno));
        return Err(VmdkError::ImageSize(img.filename.clone(), text));
    }
    if total > i64::MAX / SECTOR {
        return Err(VmdkError::ImageSize(img.filename.clone(), "File too large".to_string()));
    }
    // qemu aborts on an image without extents (an assertion in its
    // get_info); instar fails with a message saying so.
    if img.extents.is_empty() {
        return Err(VmdkError::NoExtents(img.filename.clone()));
    }
    // qemu's get_info fails (and so reports neither cluster size nor dirty
    // flag) when extents differ in kind.
    let first = img.extents.first();
    let info_ok = first.is_some_and(|f| img.extents.iter().all(|e| same_type(f, e)));
    let cluster_size = match first {
        Some(f) if info_ok && !f.is_flat() && f.cluster_sectors != 0 => {
            Some(f.cluster_sectors.wrapping_mul(SECTOR as u64))
        }
        _ => None,
    };
    let create_type = img.create_type.as_deref().unwrap_or(b"");
    let data = Json::object()
        .with("create-type", Json::from(instar_core::rawtext::from_bytes(create_type)))
        .with("cid", Json::UInt(u64::from(img.cid)))
        .with("parent-cid", Json::UInt(u64::from(img.parent_cid)))
        .with("extents", Json::Array(img.extents.iter().map(|e| extent_info(img, e)).collect()));
    // qemu lists children newest first: the last extent file opened, ...,
    // the first, then the image file.
    let children = img
        .files
        .iter()
        .rev()
        .map(|f| ChildInfo { name: f.role.clone(), info: ImageInfo::file_node(&f.file) })
        .collect();
    let (backing, full_backing) = match &img.backing {
        Some(b) => (
            Some(instar_core::rawtext::from_bytes(b)),
            Some(instar_core::rawtext::from_bytes(&path::combine(
                &instar_core::rawtext::to_bytes(&img.filename),
                b,
            ))),
        ),
        None => (None, None),
    };
    Ok(ImageInfo {
        filename: img.filename.clone(),
        format: "vmdk".to_string(),
        dirty_flag: info_ok.then_some(false),
        // The image file plus every extent file that is a node of its own.
        actual_size: Some(img.files.iter().map(|f| f.file.allocated_bytes()).sum()),
        // 0 <= total <= i64::MAX / 512, checked above.
        virtual_size: total.unsigned_abs() * instar_core::bytes::SECTOR_SIZE,
        cluster_size,
        backing_filename_format: backing.as_ref().map(|_| "vmdk".to_string()),
        backing_filename: backing,
        full_backing_filename: full_backing,
        format_specific: Some(("vmdk".to_string(), data)),
        children,
        ..ImageInfo::default()
    })
}
