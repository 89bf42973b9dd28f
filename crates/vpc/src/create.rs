//! Creating a VHD as `qemu-img create -f vpc` does (`vpc_co_create_opts`
//! and `vpc_co_create`): the options are checked and the layout computed
//! before the file is touched, then the image is written in one go.
//!
//! A dynamic disk is, from offset 0: the footer, the dynamic disk header
//! (1024 bytes), the BAT (every entry unallocated, padded to whole sectors)
//! and a copy of the footer. A fixed disk is a sparse file of the disk's
//! size followed by the footer, with its first block written as qemu's file
//! protocol writes it.

use crate::bat;
use crate::dynamic_header::{DynamicHeader, DEFAULT_BLOCK_SIZE, HEADER_SIZE};
use crate::error::VpcError;
use crate::footer::{self, DiskType, Footer, FOOTER_SIZE};
use crate::geometry::{self, Geometry, SECTOR_SIZE};
use instar_core::file::{FileOptions, NewFile, Prealloc};
use instar_core::{CreateRequest, Error, Options, QemuDialect};

/// Offset of the dynamic disk header: right after the first footer.
pub const HEADER_OFFSET: u64 = FOOTER_SIZE as u64;

/// Offset of the BAT: right after the dynamic disk header.
pub const TABLE_OFFSET: u64 = HEADER_OFFSET + HEADER_SIZE as u64;

/// The two kinds of disk qemu creates (`subformat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subformat {
    /// Blocks allocated on demand (the default).
    Dynamic,
    /// All data preallocated (sparsely) before the footer.
    Fixed,
}

impl Subformat {
    /// Parses `subformat` as qemu's QAPI enum does: exact names only,
    /// refused in the words of `dialect`.
    pub fn parse(text: Option<&str>, dialect: QemuDialect) -> Result<Subformat, VpcError> {
        match text {
            None | Some("dynamic") => Ok(Subformat::Dynamic),
            Some("fixed") => Ok(Subformat::Fixed),
            Some(other) => {
                Err(VpcError::BadSubformat(dialect.refused_enum_value("subformat", other)))
            }
        }
    }

    fn disk_type(self) -> DiskType {
        match self {
            Subformat::Dynamic => DiskType::Dynamic,
            Subformat::Fixed => DiskType::Fixed,
        }
    }
}

/// Everything a new image's bytes depend on, apart from the time and the
/// UUID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreatePlan {
    /// Dynamic or fixed.
    pub subformat: Subformat,
    /// Whether the size field is authoritative (`force_size=on`).
    pub force_size: bool,
    /// The geometry the footer records.
    pub geometry: Geometry,
    /// The disk size in bytes, as the footer records it.
    pub size: u64,
    /// The disk's sectors.
    pub total_sectors: u64,
}

impl CreatePlan {
    /// Checks vpc's options and computes the disk size, with qemu's
    /// messages in qemu's order: `subformat`, then the size.
    pub fn from_options(opts: &Options) -> Result<CreatePlan, Error> {
        Self::vpc_options(opts).map_err(VpcError::into_create_error)
    }

    fn vpc_options(opts: &Options) -> Result<CreatePlan, VpcError> {
        let subformat = Subformat::parse(opts.get_str("subformat"), opts.dialect())?;
        let force_size = opts.get_bool("force_size").unwrap_or(false);
        let requested = opts.get_number("size").unwrap_or(0);
        let mut size =
            requested.checked_next_multiple_of(SECTOR_SIZE).ok_or(VpcError::DiskTooLarge)?;
        // Rounded once while the options are read...
        if !force_size {
            let first =
                geometry::rounded_image_size(size, false).map_err(|_| VpcError::DiskTooLarge)?;
            size = first.total_sectors * SECTOR_SIZE;
        }
        // ...and once more while the image is made, whose geometry is the
        // one written.
        let again =
            geometry::rounded_image_size(size, force_size).map_err(|_| VpcError::DiskTooLarge)?;
        if size != again.total_sectors * SECTOR_SIZE {
            return Err(VpcError::NotChsRepresentable(again.total_sectors * SECTOR_SIZE));
        }
        Ok(CreatePlan {
            subformat,
            force_size,
            geometry: again.geometry,
            size,
            total_sectors: again.total_sectors,
        })
    }

    /// The footer, stamped with `timestamp` (seconds since 2000) and
    /// `unique_id`, checksum computed.
    pub fn footer(&self, timestamp: u32, unique_id: [u8; 16]) -> [u8; FOOTER_SIZE] {
        let creator_app =
            if self.force_size { footer::CREATOR_APP_SIZE } else { footer::CREATOR_APP_CHS };
        let data_offset = match self.subformat {
            Subformat::Dynamic => HEADER_OFFSET,
            Subformat::Fixed => footer::NO_DATA_OFFSET,
        };
        Footer {
            cookie: *footer::FOOTER_COOKIE,
            features: footer::FEATURES_RESERVED,
            format_version: footer::FILE_FORMAT_VERSION,
            data_offset,
            timestamp,
            creator_app: *creator_app,
            creator_version_major: footer::CREATOR_VERSION_MAJOR,
            creator_version_minor: footer::CREATOR_VERSION_MINOR,
            creator_host_os: *footer::CREATOR_HOST_OS,
            original_size: self.size,
            current_size: self.size,
            geometry: self.geometry,
            disk_type: self.subformat.disk_type().to_u32(),
            checksum: 0,
            unique_id,
            saved_state: 0,
        }
        .to_bytes_with_checksum()
    }

    /// Entries of a dynamic disk's BAT.
    pub fn table_entries(&self) -> u64 {
        bat::entries_for(self.total_sectors, DEFAULT_BLOCK_SIZE)
    }

    /// The length of the new file.
    pub fn file_length(&self) -> u64 {
        match self.subformat {
            Subformat::Dynamic => {
                TABLE_OFFSET + bat::table_bytes(self.table_entries()) + FOOTER_SIZE as u64
            }
            Subformat::Fixed => self.size + FOOTER_SIZE as u64,
        }
    }

    /// The whole of a dynamic disk: footer, header, BAT, footer copy.
    pub fn dynamic_image(&self, footer: &[u8; FOOTER_SIZE]) -> Vec<u8> {
        let entries = self.table_entries();
        #[allow(
            clippy::cast_possible_truncation,
            reason = "at most 2040 GiB / 2 MiB entries: the count fits the field"
        )]
        let header = DynamicHeader::new(TABLE_OFFSET, entries as u32, DEFAULT_BLOCK_SIZE);
        // A hint only.
        let mut image = Vec::with_capacity(usize::try_from(self.file_length()).unwrap_or(0));
        image.extend_from_slice(footer);
        image.extend_from_slice(&header.to_bytes_with_checksum());
        image.extend_from_slice(&bat::empty_table(entries));
        image.extend_from_slice(footer);
        image
    }
}

/// Seconds since the VHD epoch, as the 32-bit field holds them.
fn vhd_timestamp() -> u32 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    #[allow(clippy::cast_possible_truncation, reason = "qemu stores the time_t in a uint32_t")]
    let stamp = now.wrapping_sub(footer::VHD_EPOCH) as u32;
    stamp
}

/// Creates the image `req` asks for. qemu creates the file (through the
/// file protocol, with the options vpc does not consume) before vpc looks
/// at its own options, so the file protocol's refusals come first; instar
/// finds them without touching an existing file. The protocol creates the
/// file empty (the size belongs to vpc), so a preallocation mode it knows
/// has nothing to act on.
pub fn create(req: &CreateRequest<'_>) -> Result<(), Error> {
    let file_options = FileOptions::from_options(req.options, crate::CREATE_OPTS)?;
    let plan =
        file_options.after_creating(req.filename, || CreatePlan::from_options(req.options))?;
    let footer = plan.footer(
        vhd_timestamp(),
        instar_core::random::uuid_v4().map_err(|e| VpcError::Random(e).into_create_error())?,
    );
    let file = NewFile::create(req.filename, &file_options)?;
    match plan.subformat {
        Subformat::Dynamic => file
            .write_all_at(&plan.dynamic_image(&footer), 0)
            .map_err(|e| VpcError::WriteDynamic(e).into_create_error())?,
        Subformat::Fixed => {
            file.grow(plan.file_length(), Prealloc::Off)?;
            file.write_all_at(&footer, plan.size)
                .map_err(|e| VpcError::WriteFooter(e).into_create_error())?;
        }
    }
    file.keep();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use instar_core::opts::FILE_PROTOCOL_OPTS;

    const MIB: u64 = 1 << 20;
    const GIB: u64 = 1 << 30;

    fn plan(list: &str, size: u64) -> Result<CreatePlan, Error> {
        let mut o = Options::new(&[crate::CREATE_OPTS, FILE_PROTOCOL_OPTS]);
        o.parse(list)?;
        o.set_number("size", size);
        CreatePlan::from_options(&o)
    }

    fn message(list: &str, size: u64) -> String {
        plan(list, size).unwrap_err().to_string()
    }

    #[test]
    fn dynamic_1g_is_laid_out_as_qemu_does() {
        let p = plan("", GIB).unwrap();
        assert_eq!(p.size, 1_073_995_776);
        assert_eq!(p.table_entries(), 513);
        assert_eq!(p.file_length(), 4608);
        let image = p.dynamic_image(&p.footer(0, [0; 16]));
        assert_eq!(image.len(), 4608);
        assert_eq!(&image[..512], &image[4096..]);
        assert_eq!(&image[512..520], b"cxsparse");
        assert!(image[1536..4096].iter().all(|&b| b == 0xFF));
    }

    #[test]
    fn fixed_and_forced_sizes() {
        let p = plan("subformat=fixed", MIB).unwrap();
        assert_eq!(p.file_length(), 1_079_808);
        let p = plan("force_size=on", 1000).unwrap();
        assert_eq!((p.size, p.geometry), (1024, Geometry::MAX));
        let f = Footer::from_bytes(&p.footer(1, [0; 16]));
        assert_eq!(&f.creator_app, b"qem2");
        assert_eq!(f.data_offset, 512);
        let p = plan("subformat=fixed,force_size=on", MIB).unwrap();
        let f = Footer::from_bytes(&p.footer(1, [0; 16]));
        assert_eq!(f.data_offset, u64::MAX);
        assert_eq!(f.disk_type(), Some(DiskType::Fixed));
        assert_eq!(p.file_length(), MIB + 512);
    }

    #[test]
    fn refusals_carry_qemu_text() {
        assert_eq!(
            message("subformat=Fixed", MIB),
            "Parameter 'subformat' does not accept value 'Fixed'"
        );
        assert_eq!(message("subformat=", MIB), "Parameter 'subformat' does not accept value ''");
        let too_large = plan("", 2041 * GIB).unwrap_err();
        assert_eq!(too_large.kind(), instar_core::ErrorKind::TooLarge);
        assert_eq!(
            plan("force_size=on", 3 << 40).unwrap_err().kind(),
            instar_core::ErrorKind::TooLarge
        );
    }
}
