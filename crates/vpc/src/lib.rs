//! The vpc image format.
