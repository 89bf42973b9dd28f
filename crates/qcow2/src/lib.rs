//! The qcow2 image format (placeholder until its implementation lands).

use instar_core::{CreateRequest, Error, Format, ImageInfo, OptDesc};

/// The qcow2 format driver.
#[derive(Debug, Clone, Copy, Default)]
pub struct Qcow2;

impl Format for Qcow2 {
    fn name(&self) -> &'static str {
        "qcow2"
    }

    fn create_opts(&self) -> &'static [OptDesc] {
        &[]
    }

    fn create(&self, _req: &CreateRequest<'_>) -> Result<(), Error> {
        Err(Error::not_supported("Format driver 'qcow2' does not support image creation"))
    }

    fn info(&self, filename: &str) -> Result<ImageInfo, Error> {
        Err(Error::open(format!("Could not open '{filename}': Image is not in qcow2 format")))
    }
}
