//! `measure`: what qemu-img's `img_measure` does once the source (if any)
//! is open: the output format looked up as qemu looks it up, its create
//! options parsed, the size asked for put among them, and the format's
//! own measurement ([`Format::measure`]) over the source disk, which this
//! module answers for ([`MeasureSource`] for [`Chain`]).

use crate::chain::Chain;
use crate::registry::find_format;
use crate::unsupported;
use instar_core::opts::FILE_PROTOCOL_OPTS;
use instar_core::{
    Error, Format, MeasureSource, Measurement, Options, QemuDialect, Secrets, SnapshotRef,
    SourceBitmap, Status,
};
use std::fmt;

/// Why a measurement failed, as qemu-img words it.
#[derive(Debug)]
pub enum MeasureError {
    /// The output format is unknown, cannot be created, or does not
    /// measure: one line.
    Format(Error),
    /// The `-o` list does not fit the output format's options: qemu's
    /// message, then `Invalid options for file format '<fmt>'`.
    Options(Error, String),
    /// The format's measurement failed.
    Measure(Error),
}

impl fmt::Display for MeasureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MeasureError::Format(e) | MeasureError::Options(e, _) | MeasureError::Measure(e) => {
                write!(f, "{e}")
            }
        }
    }
}

/// What is measured for which output format.
#[derive(Debug, Clone, Copy)]
pub struct MeasureArgs<'a> {
    /// `-O` (qemu-img's default: raw).
    pub out_fmt: &'a str,
    /// `-o`, the lists given joined by commas.
    pub options: Option<&'a str>,
    /// `--size`, which wins over any `size` in `-o`.
    pub size: Option<u64>,
    /// Whose formats and options.
    pub dialect: QemuDialect,
}

/// The output format `name`, as `img_measure` finds it: unknown, a
/// driver without create options, or a driver; `Ok(None)` for a driver
/// only qemu has, which measures nothing either way.
fn output_format(name: &str, dialect: QemuDialect) -> Result<Option<&'static dyn Format>, Error> {
    if let Some(f) = find_format(name) {
        return Ok(Some(f));
    }
    match unsupported::driver_in(name, dialect) {
        None => Err(Error::invalid(format!("Unknown file format '{name}'"))),
        Some(d) if !d.creates => Err(Error::invalid(unsupported::cannot_create(name))),
        Some(_) => Ok(None),
    }
}

fn cannot_measure(name: &str) -> Error {
    Error::not_supported(format!("Block driver '{name}' does not support size measurement"))
}

/// Measures a new image of `args.out_fmt` for `source` (an opened disk)
/// or for `args.size`, with qemu-img's checks in its order; `secrets`
/// are the command line's `--object secret`s.
pub fn measure(
    args: &MeasureArgs<'_>,
    source: Option<&Chain>,
    secrets: &dyn Secrets,
) -> Result<Measurement, MeasureError> {
    let format = output_format(args.out_fmt, args.dialect).map_err(MeasureError::Format)?;
    let Some(format) = format else {
        // A driver only qemu has: its create options are not known here,
        // so only the file protocol's can be checked before qemu's
        // refusal; anything else is refused by name.
        let mut opts = Options::in_dialect(&[FILE_PROTOCOL_OPTS], args.dialect);
        if let Some(list) = args.options {
            if opts.parse(list).is_err() {
                return Err(MeasureError::Format(Error::not_supported(
                    unsupported::not_supported(args.out_fmt),
                )));
            }
        }
        return Err(MeasureError::Format(cannot_measure(args.out_fmt)));
    };
    let mut opts = Options::in_dialect(&[format.create_opts(), FILE_PROTOCOL_OPTS], args.dialect);
    if let Some(list) = args.options {
        opts.parse(list).map_err(|e| MeasureError::Options(e, args.out_fmt.to_string()))?;
    }
    if let Some(size) = args.size {
        opts.set_number("size", size);
    }
    if !format.measures() {
        return Err(MeasureError::Format(cannot_measure(args.out_fmt)));
    }
    let source = source.map(|c| c as &dyn MeasureSource);
    format.measure(&opts, source, secrets).map_err(MeasureError::Measure)
}

impl Chain {
    /// Shows the top image as internal snapshot `which` saved it
    /// (qemu's `bdrv_snapshot_load_tmp` on the image a command reads);
    /// `format` is the top image's format, which qemu names when it
    /// cannot.
    pub fn load_snapshot(&mut self, format: &str, which: SnapshotRef<'_>) -> Result<(), Error> {
        if which == (SnapshotRef::Exact { id: None, name: None }) {
            return Err(Error::invalid("snapshot_id and name are both NULL"));
        }
        let top = self.top_mut().ok_or_else(|| Error::invalid("Device has no medium"))?;
        if !top.loads_snapshots() {
            return Err(Error::not_supported(format!(
                "Block format '{format}' used by device '' does not support temporarily loading \
                 internal snapshots"
            )));
        }
        top.load_snapshot(which)
    }
}

impl MeasureSource for Chain {
    fn length(&self) -> u64 {
        self.len()
    }

    fn allocated_bytes(&self, cluster_size: u64) -> Result<u64, Error> {
        let len = self.len();
        let mut counted = 0u64;
        let mut offset = 0u64;
        while offset < len {
            let (st, _) = self.status_above(0, true, offset, len - offset).map_err(|e| {
                let message = format!("Unable to get block status: {e}");
                e.with_message(message)
            })?;
            // A driver that answers nothing for a range inside the disk
            // would loop forever; qemu's block layer cannot.
            if st.bytes == 0 {
                return Err(Error::errno(instar_core::file::eio()));
            }
            let mut step = st.bytes;
            if st.status.contains(Status::ZERO) {
                // Zeros need no cluster.
            } else if st.status.contains(Status::DATA | Status::ALLOCATED) {
                // Up to the end of the cluster the run ends in, counted
                // from the start of the cluster it begins in: the next
                // run starts on a cluster boundary, so no cluster counts
                // twice.
                let end = offset.saturating_add(step).div_ceil(cluster_size) * cluster_size;
                step = end - offset;
                counted = counted.saturating_add(offset % cluster_size + step);
            }
            offset = offset.saturating_add(step);
        }
        Ok(counted)
    }

    fn persistent_bitmaps(&self) -> Option<Vec<SourceBitmap>> {
        self.layer(0).and_then(|top| top.persistent_bitmaps())
    }
}
