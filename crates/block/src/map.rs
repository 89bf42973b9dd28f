//! `qemu-img map`: the allocation of a disk, range by range, as qemu-img's
//! `img_map` prints it.
//!
//! The walk asks the chain for the block status of the rest of the disk
//! at each step; a range no layer marks as data or zeros is looked up in
//! the layer below (qemu-img's `get_block_status`), and the answer
//! becomes one [`Entry`]: where it was found (`depth`), whether it is the
//! chain's at all (`present`), data, zeros, compressed, and where it sits
//! in which host file. Consecutive entries that say the same, at
//! consecutive host offsets, are one (qemu-img's `entry_mergeable`).
//! Entries are printed as soon as the next one cannot join them, so the
//! output streams and the memory used does not grow with the disk.
//!
//! The human form lists the data ranges only, in `%#-16x` columns, and
//! refuses a data range without a host offset (`File contains external,
//! encrypted or compressed clusters.`); it treats every range that is not
//! plain data as zeros for the joining. The JSON form lists every range;
//! its keys depend on the qemu-img version ([`MAP_PRESENT`],
//! [`MAP_COMPRESSED`]).

use crate::chain::Chain;
use instar_core::dialect::{MAP_COMPRESSED, MAP_PRESENT};
use instar_core::file::eio;
use instar_core::{rawtext, Error, QemuDialect, Status};
use std::fmt;
use std::io::{self, Write};

/// The width of each number column of the human form (`%-16`).
const COLUMN: usize = 16;

/// The most a length or offset on qemu-img's command line may be (its
/// `int64_t`).
const MAX_OFFSET: u64 = i64::MAX as u64;

/// How `map` prints (`--output`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapFormat {
    /// Columns of the data ranges, for people (the default).
    Human,
    /// Every range as a JSON object, one per line, in one array.
    Json,
}

/// What `map` is asked for, the command line read.
#[derive(Debug, Clone, Copy)]
pub struct MapRequest {
    /// `--start-offset`: the guest offset the walk starts at (at most
    /// `i64::MAX`, as qemu-img's command line reads it).
    pub start: u64,
    /// `--max-length`: how many bytes from `start` at most (at most
    /// `i64::MAX`); `None` walks to the end of the disk.
    pub max_length: Option<u64>,
    /// `--output`.
    pub format: MapFormat,
    /// Which qemu-img's keys to print.
    pub dialect: QemuDialect,
}

/// Why a map stopped early (what it printed until then stays printed).
#[derive(Debug)]
pub enum MapError {
    /// The human form met a data range with no host offset (qemu-img's
    /// `File contains external, encrypted or compressed clusters.`).
    Unmappable,
    /// The block status of a range failed (qemu-img's `Could not read
    /// file metadata: <strerror>`), after what the driver printed.
    Metadata(Error),
    /// The output could not be written.
    Write(io::Error),
}

impl From<io::Error> for MapError {
    fn from(e: io::Error) -> Self {
        MapError::Write(e)
    }
}

impl fmt::Display for MapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MapError::Unmappable => {
                f.write_str("File contains external, encrypted or compressed clusters.")
            }
            MapError::Metadata(e) => write!(f, "Could not read file metadata: {e}"),
            MapError::Write(e) => write!(f, "{e}"),
        }
    }
}

/// One range of the map: qemu-img's `MapEntry`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry<'a> {
    /// The guest offset of its first byte.
    start: u64,
    /// How many bytes it covers.
    length: u64,
    /// Which layer holds it (0: the image itself).
    depth: usize,
    /// Some layer of the chain holds it (`BDRV_BLOCK_ALLOCATED`).
    present: bool,
    /// It reads as zeros.
    zero: bool,
    /// It is data.
    data: bool,
    /// It is in compressed clusters.
    compressed: bool,
    /// It sits uncompressed at `offset` of a host file.
    has_offset: bool,
    /// The host offset (meaningful with `has_offset`).
    offset: u64,
    /// The host file's name (with `has_offset` and a known file).
    filename: Option<&'a str>,
}

impl Entry<'_> {
    /// The entry the walk starts from: nothing yet at `start`.
    fn empty(start: u64) -> Self {
        Entry {
            start,
            length: 0,
            depth: 0,
            present: false,
            zero: false,
            data: false,
            compressed: false,
            has_offset: false,
            offset: 0,
            filename: None,
        }
    }

    /// Whether `next` continues this entry (qemu-img's `entry_mergeable`):
    /// the same answer, the same host file, the host offsets following
    /// on. An empty entry (the start of the walk) continues into nothing.
    fn joins(&self, next: &Entry<'_>) -> bool {
        if self.length == 0 {
            return false;
        }
        let same = self.zero == next.zero
            && self.data == next.data
            && self.compressed == next.compressed
            && self.depth == next.depth
            && self.present == next.present
            && self.filename == next.filename
            && self.has_offset == next.has_offset;
        same && (!self.has_offset || self.offset.checked_add(self.length) == Some(next.offset))
    }
}

/// A number as C's `%#x` prints it: `0x` before it, except for zero.
struct CHex(u64);

impl fmt::Display for CHex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            f.pad("0")
        } else {
            // Left-aligned in the width asked for, as `%#-16x`.
            let width = f.width().unwrap_or(0);
            write!(f, "{:<#width$x}", self.0)
        }
    }
}

/// Writes the map of `chain` as `request` asks into `out`: the header,
/// the entries as they are found, the closing line. Stops at the first
/// failure, what was written until then kept.
pub fn write_map(
    chain: &Chain,
    request: &MapRequest,
    out: &mut impl Write,
) -> Result<(), MapError> {
    let printer = Printer { format: request.format, dialect: request.dialect };
    printer.header(out)?;
    let end = walk_end(chain.len(), request.start, request.max_length);
    let mut curr = Entry::empty(request.start);
    // `curr.start + curr.length` stays within `end`, which is at most the
    // disk's length: no overflow.
    while curr.start + curr.length < end {
        let offset = curr.start + curr.length;
        let mut next = entry_at(chain, offset, end - offset)?;
        if curr.joins(&next) {
            curr.length += next.length;
            continue;
        }
        if curr.length > 0 {
            printer.entry(out, &curr, Some(&mut next))?;
        }
        curr = next;
    }
    printer.entry(out, &curr, None)?;
    printer.footer(out)?;
    Ok(())
}

/// Where the walk ends: the disk's end, or `start + max_length` when that
/// is before it. qemu-img adds the two as signed 64-bit numbers; a sum
/// past `i64::MAX` wraps negative there, and the walk does not start.
fn walk_end(len: u64, start: u64, max_length: Option<u64>) -> u64 {
    match max_length {
        None => len,
        Some(max) => match start.checked_add(max) {
            Some(end) if end <= MAX_OFFSET => end.min(len),
            _ => 0,
        },
    }
}

/// The entry for the range at `offset` (at most `bytes` long): the
/// status of the first layer that marks it as data or zeros, looking
/// further down the chain while none does (qemu-img's `get_block_status`).
fn entry_at(chain: &Chain, offset: u64, bytes: u64) -> Result<Entry<'_>, MapError> {
    let mut depth = 0;
    let mut bytes = bytes;
    let found = loop {
        let st = chain.layer_status(depth, true, offset, bytes).map_err(MapError::Metadata)?;
        if st.bytes == 0 {
            // qemu asserts that a layer asked about a range inside it
            // answers for some of it; a walk that got nothing would not
            // advance.
            return Err(MapError::Metadata(Error::errno(eio())));
        }
        bytes = st.bytes;
        if st.status.intersects(Status::DATA | Status::ZERO) {
            break st;
        }
        if depth + 1 >= chain.depth() {
            // No layer holds it: nothing is known of the range.
            break crate::chain::BlockStatus { status: Status::NONE, bytes, host: None };
        }
        depth += 1;
    };
    let status = found.status;
    let has_offset = status.contains(Status::OFFSET_VALID);
    Ok(Entry {
        start: offset,
        length: bytes,
        depth,
        present: status.contains(Status::ALLOCATED),
        zero: status.contains(Status::ZERO),
        data: status.contains(Status::DATA),
        compressed: status.contains(Status::COMPRESSED),
        has_offset,
        offset: found.host.map_or(0, |h| h.offset),
        filename: found.host.filter(|_| has_offset).map(|h| h.file.name()),
    })
}

/// Prints entries in one form, with one version's keys.
struct Printer {
    format: MapFormat,
    dialect: QemuDialect,
}

impl Printer {
    /// What comes before the first entry.
    fn header(&self, out: &mut impl Write) -> io::Result<()> {
        match self.format {
            MapFormat::Human => {
                writeln!(
                    out,
                    "{:<COLUMN$}{:<COLUMN$}{:<COLUMN$}File",
                    "Offset", "Length", "Mapped to"
                )
            }
            MapFormat::Json => out.write_all(b"["),
        }
    }

    /// What comes after the last entry.
    fn footer(&self, out: &mut impl Write) -> io::Result<()> {
        match self.format {
            MapFormat::Human => Ok(()),
            MapFormat::Json => out.write_all(b"]\n"),
        }
    }

    /// Prints `e`, followed by `next` (`None`: `e` is the last).
    /// The human form prints data ranges only, and from then on counts
    /// `next` as zeros unless it is plain data, so that the ranges it
    /// does not print join (qemu-img's `dump_map_entry`).
    fn entry(
        &self,
        out: &mut impl Write,
        e: &Entry<'_>,
        next: Option<&mut Entry<'_>>,
    ) -> Result<(), MapError> {
        match self.format {
            MapFormat::Human => {
                if e.data && !e.has_offset {
                    return Err(MapError::Unmappable);
                }
                if e.data && !e.zero {
                    let mapped = if e.has_offset { e.offset } else { 0 };
                    write!(
                        out,
                        "{:<COLUMN$}{:<COLUMN$}{:<COLUMN$}",
                        CHex(e.start),
                        CHex(e.length),
                        CHex(mapped)
                    )?;
                    rawtext::write(out, e.filename.unwrap_or(""))?;
                    out.write_all(b"\n")?;
                }
                if let Some(next) = next {
                    if !next.data || next.zero {
                        next.data = false;
                        next.zero = true;
                    }
                }
            }
            MapFormat::Json => {
                write!(
                    out,
                    "{{ \"start\": {}, \"length\": {}, \"depth\": {}",
                    e.start, e.length, e.depth
                )?;
                if self.dialect.since(MAP_PRESENT) {
                    write!(out, ", \"present\": {}", e.present)?;
                }
                write!(out, ", \"zero\": {}, \"data\": {}", e.zero, e.data)?;
                if self.dialect.since(MAP_COMPRESSED) {
                    write!(out, ", \"compressed\": {}", e.compressed)?;
                }
                if e.has_offset {
                    write!(out, ", \"offset\": {}", e.offset)?;
                }
                out.write_all(b"}")?;
                if next.is_some() {
                    out.write_all(b",\n")?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_columns_print_as_c_does() {
        assert_eq!(format!("{:<16}|", CHex(0)), "0               |");
        assert_eq!(format!("{:<16}|", CHex(0x30000)), "0x30000         |");
        assert_eq!(format!("{:<16}|", CHex(u64::MAX)), "0xffffffffffffffff|");
    }

    #[test]
    fn the_walk_ends_where_qemu_img_ends_it() {
        assert_eq!(walk_end(1 << 20, 0, None), 1 << 20);
        assert_eq!(walk_end(1 << 20, 100, Some(1)), 101);
        assert_eq!(walk_end(1 << 20, 100, Some(1 << 30)), 1 << 20);
        // The signed sum wraps negative in qemu-img: no range is looked at.
        assert_eq!(walk_end(1 << 20, 1 << 62, Some(1 << 62)), 0);
        assert_eq!(walk_end(1 << 20, MAX_OFFSET, Some(MAX_OFFSET)), 0);
    }

    #[test]
    fn entries_join_only_when_everything_follows_on() {
        let a =
            Entry { length: 512, has_offset: true, offset: 4096, data: true, ..Entry::empty(0) };
        let b = Entry { start: 512, offset: 4608, ..a };
        assert!(a.joins(&b));
        assert!(!a.joins(&Entry { offset: 8192, ..b }));
        assert!(!a.joins(&Entry { depth: 1, ..b }));
        assert!(!a.joins(&Entry { filename: Some("x"), ..b }));
        assert!(!Entry::empty(0).joins(&b));
    }
}
