//! The vhdx image format (placeholder until its implementation lands).

use instar_core::{CreateRequest, Error, Format, ImageInfo, OptDesc};

/// The vhdx format driver.
#[derive(Debug, Clone, Copy, Default)]
pub struct Vhdx;

impl Format for Vhdx {
    fn name(&self) -> &'static str {
        "vhdx"
    }

    fn create_opts(&self) -> &'static [OptDesc] {
        &[]
    }

    fn create(&self, _req: &CreateRequest<'_>) -> Result<(), Error> {
        Err(Error::not_supported("Format driver 'vhdx' does not support image creation"))
    }

    fn info(&self, filename: &str) -> Result<ImageInfo, Error> {
        Err(Error::open(format!("Could not open '{filename}': Image is not in vhdx format")))
    }
}
