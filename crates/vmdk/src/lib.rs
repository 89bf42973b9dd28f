//! The vmdk image format.
