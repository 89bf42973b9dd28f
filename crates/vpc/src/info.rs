//! What `info` reports for a VHD: qemu's node for the image (its size from
//! the footer, the block size as cluster size for dynamic disks, no
//! format-specific data) over the file node.

use crate::error::VpcError;
use crate::image::{ImageFile, VpcImage};
use instar_core::info::allocated_size;
use instar_core::{ChildInfo, ImageInfo};

/// The `info` of the VHD at `filename`.
pub fn info(filename: &str) -> Result<ImageInfo, VpcError> {
    let file = ImageFile::open(filename)?;
    let image = VpcImage::open(&file)?;
    let meta = std::fs::metadata(filename).map_err(VpcError::Read)?;
    let file_node = ImageInfo::file_node(filename).map_err(VpcError::Read)?;
    Ok(ImageInfo {
        filename: filename.to_string(),
        format: "vpc".to_string(),
        dirty_flag: Some(false),
        actual_size: Some(allocated_size(&meta)),
        virtual_size: image.virtual_size(),
        cluster_size: image.cluster_size(),
        children: vec![ChildInfo { name: "file".to_string(), info: file_node }],
        ..ImageInfo::default()
    })
}
