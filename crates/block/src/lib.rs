//! instar's block layer: what qemu does for every format before and after
//! the format's own code runs.
//!
//! It knows the registered formats ([`registry`]), guesses a file's format
//! from its first bytes ([`probe`]), turns a `create` command into checked
//! options, a `Formatting '...'` line and a call to the format
//! ([`create`], after qemu's `bdrv_img_create`), and opens images for
//! `info` and `check` ([`open`]). It knows nothing of the command line.

pub mod chain;
pub mod compare;
pub mod convert;
pub mod create;
pub mod image_opts;
pub mod map;
pub mod measure;
pub mod open;
pub mod probe;
mod progress;
pub mod protocol;
pub mod registry;
pub mod unsupported;

pub use chain::{BlockStatus, Chain};
pub use compare::{compare, compare_opened, CompareArgs, Comparison};
pub use convert::{convert, ConvertArgs, ConvertFailure, ConvertOutput};
pub use create::{option_help, CreateArgs, PreparedCreate};
pub use map::{write_map, MapError, MapFormat, MapRequest};
pub use measure::{measure, MeasureArgs, MeasureError};
pub use open::{
    check, info, info_chain, open, open_for_check, snapshots, CheckTarget, Opened, Target,
};
pub use registry::find_format;
