//! The vmdk image format (placeholder until its implementation lands).

use instar_core::{CreateRequest, Error, Format, ImageInfo, OptDesc};

/// The vmdk format driver.
#[derive(Debug, Clone, Copy, Default)]
pub struct Vmdk;

impl Format for Vmdk {
    fn name(&self) -> &'static str {
        "vmdk"
    }

    fn create_opts(&self) -> &'static [OptDesc] {
        &[]
    }

    fn create(&self, _req: &CreateRequest<'_>) -> Result<(), Error> {
        Err(Error::not_supported("Format driver 'vmdk' does not support image creation"))
    }

    fn info(&self, filename: &str) -> Result<ImageInfo, Error> {
        Err(Error::open(format!("Could not open '{filename}': Image is not in vmdk format")))
    }
}
