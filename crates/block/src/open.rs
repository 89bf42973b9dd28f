//! Opening an image for `info` and `check`: picking the format (named or
//! probed) and wording failures as qemu-img does.

use crate::probe::probe_file;
use crate::protocol::local_path;
use crate::registry::lookup_driver;
use crate::unsupported::Purpose;
use instar_core::{CheckReport, Error, Format, ImageInfo};

/// `Could not open '<file>': <why>`, qemu-img's wrapper around every open
/// failure.
fn could_not_open(filename: &str, why: &str) -> Error {
    Error::open(format!("Could not open '{filename}': {why}"))
}

/// The format of `filename` (`fmt` when given, else probed) and the local
/// path the name stands for.
fn select<'a>(
    filename: &'a str,
    fmt: Option<&str>,
    purpose: Purpose,
) -> Result<(&'static dyn Format, &'a str), Error> {
    let path = local_path(filename).map_err(|e| could_not_open(filename, e.message()))?;
    // qemu looks the driver up before the file protocol opens the file.
    let named = match fmt {
        Some(name) => Some(
            lookup_driver(name, || Error::invalid(format!("Unknown driver '{name}'")))
                .map_err(|e| could_not_open(filename, e.message()))?,
        ),
        None => None,
    };
    match std::fs::File::open(path).and_then(|f| f.metadata()) {
        Err(e) => {
            let inner = format!("Could not open '{path}': {}", instar_core::error::strerror(&e));
            return Err(could_not_open(filename, &inner));
        }
        Ok(meta) if !meta.is_file() => {
            let inner = format!("'file' driver requires '{path}' to be a regular file");
            return Err(could_not_open(filename, &inner));
        }
        Ok(_) => {}
    }
    let driver = match named {
        Some(d) => d,
        None => probe_file(path)
            .map_err(|e| could_not_open(filename, &instar_core::error::strerror(&e)))?,
    };
    let format = driver.open(path, purpose).map_err(|e| could_not_open(filename, e.message()))?;
    Ok((format, path))
}

/// What `info` reports for `filename`, opened as `fmt` or probed.
pub fn info(filename: &str, fmt: Option<&str>) -> Result<ImageInfo, Error> {
    let (format, path) = select(filename, fmt, Purpose::Info)?;
    format.info(path).map_err(|e| e.wrap_open(path))
}

/// The consistency check of `filename`, opened as `fmt` or probed.
pub fn check(filename: &str, fmt: Option<&str>) -> Result<CheckReport, Error> {
    let (format, path) = select(filename, fmt, Purpose::Check)?;
    format.check(path).map_err(|e| e.wrap_open(path))
}

/// The virtual size of `filename` opened as `fmt` (or probed), and the
/// format's name: what creating an image over a backing file needs.
pub fn size_and_format(filename: &str, fmt: Option<&str>) -> Result<(u64, &'static str), Error> {
    // The backing file's open errors are worded without the outer prefix.
    let filename = local_path(filename)?;
    if let Err(e) = std::fs::File::open(filename) {
        return Err(could_not_open(filename, &instar_core::error::strerror(&e)));
    }
    let driver = match fmt {
        Some(name) => lookup_driver(name, || Error::open(format!("Unknown driver '{name}'")))?,
        None => probe_file(filename)
            .map_err(|e| could_not_open(filename, &instar_core::error::strerror(&e)))?,
    };
    let format = driver.open(filename, Purpose::Info)?;
    let info = format.info(filename)?;
    Ok((info.virtual_size, format.name()))
}
