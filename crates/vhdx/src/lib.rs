//! The vhdx image format.
