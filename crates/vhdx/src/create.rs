//! Creating a VHDX image as qemu's `vhdx_co_create_opts` and
//! `vhdx_co_create` do: the options are checked and rounded first, the
//! layout follows by arithmetic, then the structures are written.
//!
//! The layout of a new image:
//!
//! ```text
//! 0       file identifier   64K header 1   128K header 2
//! 192K    region table      256K region table copy
//! 1M      log (log_size, left sparse)
//! BAT     rounded up to 1 MiB after the log
//! metadata (1 MiB) right after the BAT
//! data    5 MiB after the end of the BAT (fixed images: the payload)
//! ```

use crate::bat::{
    self, BatGeometry, BAT_ENTRY_SIZE, BLOCK_SIZE_MAX, PAYLOAD_BLOCK_FULLY_PRESENT,
    PAYLOAD_BLOCK_NOT_PRESENT, PAYLOAD_BLOCK_ZERO,
};
use crate::error::CreateError;
use crate::file_identifier;
use crate::guid::{self, Guid};
use crate::header::{
    Header, HEADER1_OFFSET, HEADER2_OFFSET, HEADER_SECTION_END, HEADER_STRUCT_LEN,
};
use crate::metadata::{NewMetadata, METADATA_REGION_LENGTH, SECTOR_SIZE};
use crate::region_table::{self, RegionEntry, REGION_TABLE_OFFSET};
use instar_core::file::{eio, FileOptions, NewFile, REQUEST_MAX_BYTES};
use instar_core::{CreateRequest, Error, Options};
use std::fs::File;
use std::os::unix::fs::FileExt;

const MIB: u64 = 1024 * 1024;
const GIB: u64 = 1024 * MIB;
const TIB: u64 = 1024 * GIB;

/// The largest virtual disk the specification allows.
pub const MAX_IMAGE_SIZE: u64 = 64 * TIB;

/// The log size when none is given.
pub const DEFAULT_LOG_SIZE: u32 = 1024 * 1024;

/// qemu leaves this much room between the BAT and the data area, for the
/// metadata region and its growth.
pub const DATA_GAP_AFTER_BAT: u64 = 5 * MIB;

/// BAT bytes generated and written per call.
const BAT_WRITE_CHUNK: u64 = 4 * MIB;

/// The two subformats qemu creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subformat {
    /// Blocks are allocated as they are written.
    Dynamic,
    /// Every block is allocated at create time.
    Fixed,
}

/// Checked create parameters, rounded as qemu rounds them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreateParams {
    /// Virtual disk size in bytes, a multiple of 512.
    pub size: u64,
    /// Log size in bytes, a multiple of 1 MiB.
    pub log_size: u32,
    /// Payload block size in bytes.
    pub block_size: u32,
    /// Dynamic or fixed.
    pub subformat: Subformat,
    /// Whether new blocks are marked `PAYLOAD_BLOCK_ZERO` (qemu's default).
    pub block_state_zero: bool,
}

/// The block size qemu picks when none is given: larger disks get larger
/// blocks, to keep the BAT small.
pub fn default_block_size(size: u64) -> u32 {
    if size > 32 * TIB {
        64 << 20
    } else if size > 100 * GIB {
        32 << 20
    } else if size > GIB {
        16 << 20
    } else {
        8 << 20
    }
}

/// vhdx's own options, which qemu checks only after it has created the
/// file: they lose to the file protocol's refusals.
fn check_after_file_creation(opts: &Options, size: u64) -> Result<CreateParams, CreateError> {
    let subformat = match opts.get_str("subformat") {
        None | Some("dynamic") => Subformat::Dynamic,
        Some("fixed") => Subformat::Fixed,
        Some(other) => {
            return Err(CreateError::BadSubformat(
                opts.dialect().refused_enum_value("subformat", other),
            ))
        }
    };
    // vhdx_co_create_opts rounds silently: sizes up to a multiple of 1 MiB
    // (in wrapping 64-bit arithmetic), a block size of 0 means automatic,
    // and block sizes above the maximum are capped.
    let log_size = opts.get_number("log_size").map(|v| v.wrapping_add(MIB - 1) & !(MIB - 1));
    let block_size = opts
        .get_number("block_size")
        .map(|v| v.wrapping_add(MIB - 1) & !(MIB - 1))
        .filter(|&v| v != 0)
        .map(|v| v.min(u64::from(BLOCK_SIZE_MAX)));

    if size > MAX_IMAGE_SIZE {
        return Err(CreateError::SizeTooLarge);
    }
    let log_size = match log_size {
        None => DEFAULT_LOG_SIZE,
        Some(v) => u32::try_from(v).map_err(|_| CreateError::LogTooLarge)?,
    };
    if u64::from(log_size) < MIB || !u64::from(log_size).is_multiple_of(MIB) {
        return Err(CreateError::LogNotMultiple);
    }
    // The rounding above leaves a multiple of 1 MiB within the maximum;
    // only the power of two can still be missing.
    let block_size = block_size.unwrap_or_else(|| u64::from(default_block_size(size)));
    if !block_size.is_power_of_two() {
        return Err(CreateError::BlockNotPowerOfTwo);
    }
    let block_state_zero = opts.get_bool("block_state_zero").unwrap_or(true);
    #[allow(clippy::cast_possible_truncation, reason = "at most BLOCK_SIZE_MAX (capped above)")]
    let block_size = block_size as u32;
    Ok(CreateParams { size, log_size, block_size, subformat, block_state_zero })
}

impl CreateParams {
    /// Checks vhdx's options in qemu's order: the subformat, the size, the
    /// log size and the block size. Nothing is touched on the file system.
    pub fn from_request(req: &CreateRequest<'_>) -> Result<CreateParams, CreateError> {
        check_after_file_creation(req.options, req.size_in_sectors_bytes())
    }
}

/// Where everything goes in a new image: pure arithmetic on the
/// parameters (qemu's `vhdx_create_new_region_table` and
/// `vhdx_create_bat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// The BAT's shape.
    pub geometry: BatGeometry,
    /// Where the BAT starts: after the log, on a 1 MiB boundary.
    pub bat_offset: u64,
    /// The BAT region's length, whole MiB.
    pub bat_length: u32,
    /// Where the metadata region starts: right after the BAT.
    pub metadata_offset: u64,
    /// Where payload data starts.
    pub data_offset: u64,
    /// The file length.
    pub file_length: u64,
    /// The state of every payload entry.
    pub block_state: u64,
    /// Whether the BAT is written (a dynamic image without zero blocks
    /// needs an all-zero BAT, which the sparse file already is).
    pub write_bat: bool,
}

impl Layout {
    /// The layout for `p`.
    pub fn new(p: &CreateParams) -> Layout {
        let geometry = BatGeometry::new(p.size, p.block_size, SECTOR_SIZE);
        #[allow(
            clippy::cast_possible_truncation,
            reason = "under 1 GiB: at most 64 Mi blocks (64 TiB in blocks of 1 MiB or more) and \
                      their bitmap entries, 8 bytes each"
        )]
        let bat_length = geometry.table_bytes().next_multiple_of(MIB) as u32;
        let bat_offset = (HEADER_SECTION_END + u64::from(p.log_size)).next_multiple_of(MIB);
        let metadata_offset = (bat_offset + u64::from(bat_length)).next_multiple_of(MIB);
        let data_offset = bat_offset + u64::from(bat_length) + DATA_GAP_AFTER_BAT;
        let fixed = p.subformat == Subformat::Fixed;
        let file_length = if fixed { data_offset + p.size } else { data_offset };
        let block_state = if p.block_state_zero {
            PAYLOAD_BLOCK_ZERO
        } else if fixed {
            PAYLOAD_BLOCK_FULLY_PRESENT
        } else {
            PAYLOAD_BLOCK_NOT_PRESENT
        };
        Layout {
            geometry,
            bat_offset,
            bat_length,
            metadata_offset,
            data_offset,
            file_length,
            block_state,
            write_bat: fixed || p.block_state_zero,
        }
    }

    /// The two region table entries, BAT first.
    pub fn regions(&self) -> [RegionEntry; 2] {
        [
            RegionEntry {
                guid: guid::BAT_REGION,
                file_offset: self.bat_offset,
                length: self.bat_length,
                data_bits: 0,
            },
            RegionEntry {
                guid: guid::METADATA_REGION,
                file_offset: self.metadata_offset,
                length: METADATA_REGION_LENGTH,
                data_bits: 0,
            },
        ]
    }

    /// The BAT bytes in `[from, from + len)` of the table.
    #[allow(
        clippy::cast_possible_truncation,
        reason = "`len` is at most the BAT's length, a u32; an offset into `out` is below it; \
                  a block number is below `data_blocks`, a u32"
    )]
    pub fn bat_bytes(&self, from: u64, len: u64) -> Vec<u8> {
        let mut out = vec![0u8; len as usize];
        if self.block_state == PAYLOAD_BLOCK_NOT_PRESENT {
            return out;
        }
        let first = from / BAT_ENTRY_SIZE;
        let last = (from + len) / BAT_ENTRY_SIZE;
        // Block b sits at index b + b / chunk_ratio; the block below starts
        // at or before `first`, so every block before it lies before the
        // range and the walk can start there.
        let g = &self.geometry;
        let first_block = first - first.checked_shr(g.chunk_ratio_bits).unwrap_or(0);
        for block in first_block..u64::from(g.data_blocks) {
            let idx = g.index_of_block(block as u32);
            if idx >= last {
                break;
            }
            if idx < first {
                continue;
            }
            let entry =
                bat::new_entry(self.block_state, self.data_offset, block as u32, g.block_size);
            let at = (idx * BAT_ENTRY_SIZE - from) as usize;
            out[at..at + 8].copy_from_slice(&entry.to_le_bytes());
        }
        out
    }
}

/// The random parts of a new image.
#[derive(Debug, Clone, Copy)]
struct Identity {
    sequence_number: u64,
    file_write: Guid,
    data_write: Guid,
    page83: Guid,
}

impl Identity {
    fn random() -> std::io::Result<Identity> {
        // qemu starts from a random 32-bit value (g_random_int).
        Ok(Identity {
            sequence_number: u64::from(instar_core::random::u32()?),
            file_write: Guid::random()?,
            data_write: Guid::random()?,
            page83: Guid::random()?,
        })
    }
}

/// Creates the image `req` asks for. qemu creates the file (through the
/// file protocol, with the options vhdx does not consume) before vhdx
/// looks at its own options, so the file protocol's refusals come first;
/// instar finds them without touching an existing file.
pub fn create(req: &CreateRequest<'_>) -> Result<(), Error> {
    let file_options = FileOptions::from_options(req.options, crate::CREATE_OPTS)?;
    let params = file_options.after_creating(req.filename, || CreateParams::from_request(req))?;
    let layout = Layout::new(&params);
    let identity = Identity::random()
        .map_err(|source| CreateError::Write { what: "Could not generate GUIDs", source })?;
    let file = NewFile::create(req.filename, &file_options)?;
    write_image(file.file(), &params, &layout, &identity)?;
    file.keep();
    Ok(())
}

/// Writes every structure. The writes cover exactly what qemu writes, so
/// that the file system allocates the same blocks; the rest stays sparse.
fn write_image(
    file: &File,
    p: &CreateParams,
    layout: &Layout,
    id: &Identity,
) -> Result<(), CreateError> {
    let write = |what: &'static str, buf: &[u8], at: u64| {
        file.write_all_at(buf, at).map_err(|source| CreateError::Write { what, source })
    };
    file.set_len(layout.file_length)
        .map_err(|source| CreateError::Write { what: "Could not resize image", source })?;

    let creator = file_identifier::instar_creator();
    write("Failed to write file signature", &file_identifier::to_bytes(&creator), 0)?;

    let mut header = Header::new(id.sequence_number, id.file_write, id.data_write, p.log_size);
    write(
        "Failed to write image headers",
        &header.to_bytes()[..HEADER_STRUCT_LEN],
        HEADER1_OFFSET,
    )?;
    header.sequence_number += 1;
    write(
        "Failed to write image headers",
        &header.to_bytes()[..HEADER_STRUCT_LEN],
        HEADER2_OFFSET,
    )?;

    let md = NewMetadata {
        block_size: p.block_size,
        fixed: p.subformat == Subformat::Fixed,
        virtual_size: p.size,
        page83: id.page83,
    };
    let mut md_bytes = md.table_bytes();
    md_bytes.extend_from_slice(&md.items_bytes());

    if layout.write_bat {
        let total = u64::from(layout.bat_length);
        // qemu writes the BAT in one request, which its block layer
        // refuses past `BDRV_REQUEST_MAX_BYTES` (a 2 GiB BAT: 256 MiB
        // blocks on an empty disk, whose entry count wraps).
        if total > REQUEST_MAX_BYTES {
            return Err(CreateError::Write { what: "Failed to write the BAT", source: eio() });
        }
        let mut pos = 0;
        while pos < total {
            let n = BAT_WRITE_CHUNK.min(total - pos);
            write("Failed to write the BAT", &layout.bat_bytes(pos, n), layout.bat_offset + pos)?;
            pos += n;
        }
    }
    // qemu writes the region tables once the BAT is written.
    let table = region_table::to_bytes(&layout.regions());
    let mut tables = table.clone();
    tables.extend_from_slice(&table);
    write("Failed to write region tables", &tables, REGION_TABLE_OFFSET)?;
    write("Failed to initialize metadata", &md_bytes, layout.metadata_offset)?;
    // qemu flushes the image when it closes it, so the file system has
    // allocated every block (and any extent tree block) by the time it
    // exits; flushing too makes `stat` report the same allocation.
    file.sync_data().map_err(|source| CreateError::Write { what: "Could not flush image", source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use instar_core::opts::FILE_PROTOCOL_OPTS;

    /// vhdx never probes a backing file.
    fn probe(_: &instar_core::ImageFile) -> &'static str {
        "raw"
    }

    fn params(list: &str, size: u64) -> Result<CreateParams, CreateError> {
        let mut o = Options::new(&[crate::CREATE_OPTS, FILE_PROTOCOL_OPTS]);
        o.parse(list).unwrap();
        o.set_number("size", size);
        let req = CreateRequest {
            filename: "/tmp/instar-vhdx-unit.vhdx",
            options: &o,
            probe,
            dialect: Default::default(),
        };
        CreateParams::from_request(&req)
    }

    fn err(list: &str, size: u64) -> String {
        params(list, size).unwrap_err().to_string()
    }

    #[test]
    fn defaults_follow_the_size() {
        assert_eq!(params("", GIB).unwrap().block_size, 8 << 20);
        assert_eq!(params("", GIB + 512).unwrap().block_size, 16 << 20);
        assert_eq!(params("", 100 * GIB).unwrap().block_size, 16 << 20);
        assert_eq!(params("", 2 * TIB).unwrap().block_size, 32 << 20);
        assert_eq!(params("", 33 * TIB).unwrap().block_size, 64 << 20);
        let p = params("", 1000).unwrap();
        assert_eq!((p.size, p.log_size, p.block_state_zero), (1024, 1 << 20, true));
    }

    #[test]
    fn sizes_round_as_qemu_rounds_them() {
        assert_eq!(params("log_size=1536K", GIB).unwrap().log_size, 2 << 20);
        assert_eq!(params("log_size=100", GIB).unwrap().log_size, 1 << 20);
        assert_eq!(params("block_size=1", GIB).unwrap().block_size, 1 << 20);
        assert_eq!(params("block_size=1.5M", GIB).unwrap().block_size, 2 << 20);
        assert_eq!(params("block_size=512M", GIB).unwrap().block_size, 256 << 20);
        assert_eq!(params("block_size=0", 2 * GIB).unwrap().block_size, 16 << 20);
    }

    #[test]
    fn refusals_carry_qemu_messages() {
        assert_eq!(err("block_size=3M", GIB), "Block size must be a power of two");
        assert_eq!(err("log_size=0", GIB), "Log size must be a multiple of 1 MB");
        assert_eq!(err("log_size=4G", GIB), "Log size must be smaller than 4 GB");
        assert_eq!(err("", 64 * TIB + 512), "Image size too large; max of 64TB");
        assert_eq!(
            err("subformat=Fixed", GIB),
            "Parameter 'subformat' does not accept value 'Fixed'"
        );
        // qemu checks the size before the log, the log before the block.
        assert_eq!(err("log_size=0,block_size=3M", 65 * TIB), "Image size too large; max of 64TB");
        assert_eq!(err("log_size=0,block_size=3M", GIB), "Log size must be a multiple of 1 MB");
        assert_eq!(
            err("subformat=x,log_size=0", GIB),
            "Parameter 'subformat' does not accept value 'x'"
        );
    }

    #[test]
    fn layout_matches_qemu() {
        let l = Layout::new(&params("", GIB).unwrap());
        assert_eq!((l.bat_offset, l.bat_length, l.metadata_offset), (2 * MIB, 1 << 20, 3 * MIB));
        assert_eq!((l.data_offset, l.file_length), (8 * MIB, 8 * MIB));
        let l = Layout::new(&params("subformat=fixed,log_size=3M", 64 * MIB).unwrap());
        assert_eq!((l.bat_offset, l.file_length), (4 * MIB, 10 * MIB + 64 * MIB));
        // An empty disk still gets qemu's 64 MiB BAT.
        let l = Layout::new(&params("", 0).unwrap());
        assert_eq!(l.bat_length, 64 << 20);
    }

    #[test]
    fn bat_bytes_place_entries_around_bitmaps() {
        let l = Layout::new(
            &params("subformat=fixed,block_state_zero=off,block_size=1M", 8 * GIB).unwrap(),
        );
        let all = l.bat_bytes(0, u64::from(l.bat_length));
        let entry = |i: usize| u64::from_le_bytes(all[i * 8..i * 8 + 8].try_into().unwrap());
        assert_eq!(entry(0), l.data_offset | 6);
        assert_eq!(entry(4095), (l.data_offset + 4095 * MIB) | 6);
        assert_eq!(entry(4096), 0); // sector bitmap entry
        assert_eq!(entry(4097), (l.data_offset + 4096 * MIB) | 6);
        // Any split into chunks gives the same bytes.
        let mut pieces = l.bat_bytes(0, 32_760);
        pieces.extend(l.bat_bytes(32_760, u64::from(l.bat_length) - 32_760));
        assert_eq!(pieces, all);
    }
}
