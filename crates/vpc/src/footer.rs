//! The hard disk footer: the 512-byte structure every VHD ends with (and a
//! dynamic VHD also starts with), naming the disk's size, geometry and type.
//!
//! Fields are big-endian, in the order of the VHD specification ("Hard Disk
//! Footer Format") and of qemu's `VHDFooter`.

use crate::geometry::Geometry;
use instar_core::bytes::{be16, be32, be64};
use instar_core::dialect::VPC_CURRENT_SIZE_BY_DEFAULT;
use instar_core::QemuDialect;

/// Bytes in a footer.
pub const FOOTER_SIZE: usize = 512;

/// The footer's cookie, its magic.
pub const FOOTER_COOKIE: &[u8; 8] = b"conectix";

/// The features field qemu writes: bit 1, "reserved", always set.
pub const FEATURES_RESERVED: u32 = 0x0000_0002;

/// The file format version, 1.0.
pub const FILE_FORMAT_VERSION: u32 = 0x0001_0000;

/// The data offset of a fixed disk: there is no further structure.
pub const NO_DATA_OFFSET: u64 = u64::MAX;

/// Seconds from the Unix epoch to the VHD epoch, 2000-01-01 00:00:00 UTC.
pub const VHD_EPOCH: u64 = 946_684_800;

/// The creator application qemu writes when the size follows the geometry.
pub const CREATOR_APP_CHS: &[u8; 4] = b"qemu";

/// The creator application qemu writes for `force_size=on`: the size field
/// is the size.
pub const CREATOR_APP_SIZE: &[u8; 4] = b"qem2";

/// The creator application Microsoft Virtual PC writes; it sizes disks by
/// their geometry.
pub const CREATOR_APP_VIRTUAL_PC: &[u8; 4] = b"vpc ";

/// The creators qemu before 10.0 knew to write an authoritative size
/// field: qemu with `force_size` (`qem2`), Hyper-V (`win `), Disk2vhd
/// (`d2v `), XenConverter (`CTXS`) and XenServer (`tap` and a NUL).
pub const CREATORS_SIZED_BY_FIELD: [[u8; 4]; 5] =
    [*b"qem2", *b"win ", *b"d2v ", *b"CTXS", *b"tap\0"];

/// The creator version qemu writes: that of Virtual PC 2007, 5.3.
pub const CREATOR_VERSION_MAJOR: u16 = 0x0005;

/// See [`CREATOR_VERSION_MAJOR`].
pub const CREATOR_VERSION_MINOR: u16 = 0x0003;

/// The creator host OS qemu writes: Windows.
pub const CREATOR_HOST_OS: &[u8; 4] = b"Wi2k";

/// Byte offsets of the footer fields.
pub mod offset {
    /// `Cookie`.
    pub const COOKIE: usize = 0;
    /// `Features`.
    pub const FEATURES: usize = 8;
    /// `File Format Version`.
    pub const FORMAT_VERSION: usize = 12;
    /// `Data Offset`.
    pub const DATA_OFFSET: usize = 16;
    /// `Time Stamp`.
    pub const TIMESTAMP: usize = 24;
    /// `Creator Application`.
    pub const CREATOR_APP: usize = 28;
    /// `Creator Version` (major, minor).
    pub const CREATOR_VERSION: usize = 32;
    /// `Creator Host OS`.
    pub const CREATOR_HOST_OS: usize = 36;
    /// `Original Size`.
    pub const ORIGINAL_SIZE: usize = 40;
    /// `Current Size`.
    pub const CURRENT_SIZE: usize = 48;
    /// `Disk Geometry`: cylinders (2 bytes), heads, sectors per track.
    pub const DISK_GEOMETRY: usize = 56;
    /// `Disk Type`.
    pub const DISK_TYPE: usize = 60;
    /// `Checksum`.
    pub const CHECKSUM: usize = 64;
    /// `Unique Id`.
    pub const UNIQUE_ID: usize = 68;
    /// `Saved State`.
    pub const SAVED_STATE: usize = 84;
}

/// The disk types of the specification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskType {
    /// The data is stored flat before the footer.
    Fixed,
    /// The data is stored in blocks allocated on demand.
    Dynamic,
    /// A dynamic disk over a parent disk.
    Differencing,
}

impl DiskType {
    /// The value stored in the footer.
    pub fn to_u32(self) -> u32 {
        match self {
            DiskType::Fixed => 2,
            DiskType::Dynamic => 3,
            DiskType::Differencing => 4,
        }
    }

    /// The type a stored value names, if any.
    pub fn from_u32(v: u32) -> Option<DiskType> {
        match v {
            2 => Some(DiskType::Fixed),
            3 => Some(DiskType::Dynamic),
            4 => Some(DiskType::Differencing),
            _ => None,
        }
    }
}

/// A hard disk footer, field by field (the reserved tail is always zero
/// when written and ignored when read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Footer {
    /// `conectix` in a valid footer.
    pub cookie: [u8; 8],
    /// Feature bits.
    pub features: u32,
    /// The file format version.
    pub format_version: u32,
    /// Offset of the dynamic disk header, or [`NO_DATA_OFFSET`].
    pub data_offset: u64,
    /// Creation time, seconds since 2000-01-01 00:00:00 UTC.
    pub timestamp: u32,
    /// The application that created the image (`qemu`, `qem2`, `vpc `...).
    pub creator_app: [u8; 4],
    /// The creator's major version.
    pub creator_version_major: u16,
    /// The creator's minor version.
    pub creator_version_minor: u16,
    /// The creator's host OS.
    pub creator_host_os: [u8; 4],
    /// The size at creation, in bytes.
    pub original_size: u64,
    /// The current size, in bytes.
    pub current_size: u64,
    /// The CHS geometry.
    pub geometry: Geometry,
    /// The disk type as stored (see [`DiskType`]).
    pub disk_type: u32,
    /// The stored checksum.
    pub checksum: u32,
    /// The disk's unique id (a UUID).
    pub unique_id: [u8; 16],
    /// Whether the disk is in a saved state.
    pub saved_state: u8,
}

/// The one's complement of the byte sum of `bytes`: the checksum of both
/// the footer and the dynamic disk header, computed with the checksum
/// field zeroed.
pub fn vhd_checksum(bytes: &[u8]) -> u32 {
    !bytes.iter().fold(0u32, |sum, &b| sum.wrapping_add(u32::from(b)))
}

/// The checksum a 512-byte footer should carry: that of its bytes with the
/// checksum field taken as zero.
pub fn computed_checksum(raw: &[u8; FOOTER_SIZE]) -> u32 {
    let mut copy = *raw;
    copy[offset::CHECKSUM..offset::CHECKSUM + 4].fill(0);
    vhd_checksum(&copy)
}

/// Whether `raw` starts with the footer cookie.
pub fn has_cookie(raw: &[u8]) -> bool {
    raw.len() >= FOOTER_COOKIE.len() && &raw[..FOOTER_COOKIE.len()] == FOOTER_COOKIE
}

fn array<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&b[at..at + N]);
    a
}

impl Footer {
    /// Decodes a footer; any bytes decode, validity is the caller's call.
    pub fn from_bytes(raw: &[u8; FOOTER_SIZE]) -> Footer {
        let g = offset::DISK_GEOMETRY;
        Footer {
            cookie: array(raw, offset::COOKIE),
            features: be32(raw, offset::FEATURES),
            format_version: be32(raw, offset::FORMAT_VERSION),
            data_offset: be64(raw, offset::DATA_OFFSET),
            timestamp: be32(raw, offset::TIMESTAMP),
            creator_app: array(raw, offset::CREATOR_APP),
            creator_version_major: be16(raw, offset::CREATOR_VERSION),
            creator_version_minor: be16(raw, offset::CREATOR_VERSION + 2),
            creator_host_os: array(raw, offset::CREATOR_HOST_OS),
            original_size: be64(raw, offset::ORIGINAL_SIZE),
            current_size: be64(raw, offset::CURRENT_SIZE),
            geometry: Geometry {
                cylinders: be16(raw, g),
                heads: raw[g + 2],
                sectors_per_track: raw[g + 3],
            },
            disk_type: be32(raw, offset::DISK_TYPE),
            checksum: be32(raw, offset::CHECKSUM),
            unique_id: array(raw, offset::UNIQUE_ID),
            saved_state: raw[offset::SAVED_STATE],
        }
    }

    /// Encodes the footer with the checksum field as stored in `self`.
    pub fn to_bytes(&self) -> [u8; FOOTER_SIZE] {
        let mut b = [0u8; FOOTER_SIZE];
        let g = offset::DISK_GEOMETRY;
        b[offset::COOKIE..offset::COOKIE + 8].copy_from_slice(&self.cookie);
        b[offset::FEATURES..offset::FEATURES + 4].copy_from_slice(&self.features.to_be_bytes());
        b[offset::FORMAT_VERSION..offset::FORMAT_VERSION + 4]
            .copy_from_slice(&self.format_version.to_be_bytes());
        b[offset::DATA_OFFSET..offset::DATA_OFFSET + 8]
            .copy_from_slice(&self.data_offset.to_be_bytes());
        b[offset::TIMESTAMP..offset::TIMESTAMP + 4].copy_from_slice(&self.timestamp.to_be_bytes());
        b[offset::CREATOR_APP..offset::CREATOR_APP + 4].copy_from_slice(&self.creator_app);
        b[offset::CREATOR_VERSION..offset::CREATOR_VERSION + 2]
            .copy_from_slice(&self.creator_version_major.to_be_bytes());
        b[offset::CREATOR_VERSION + 2..offset::CREATOR_VERSION + 4]
            .copy_from_slice(&self.creator_version_minor.to_be_bytes());
        b[offset::CREATOR_HOST_OS..offset::CREATOR_HOST_OS + 4]
            .copy_from_slice(&self.creator_host_os);
        b[offset::ORIGINAL_SIZE..offset::ORIGINAL_SIZE + 8]
            .copy_from_slice(&self.original_size.to_be_bytes());
        b[offset::CURRENT_SIZE..offset::CURRENT_SIZE + 8]
            .copy_from_slice(&self.current_size.to_be_bytes());
        b[g..g + 2].copy_from_slice(&self.geometry.cylinders.to_be_bytes());
        b[g + 2] = self.geometry.heads;
        b[g + 3] = self.geometry.sectors_per_track;
        b[offset::DISK_TYPE..offset::DISK_TYPE + 4].copy_from_slice(&self.disk_type.to_be_bytes());
        b[offset::CHECKSUM..offset::CHECKSUM + 4].copy_from_slice(&self.checksum.to_be_bytes());
        b[offset::UNIQUE_ID..offset::UNIQUE_ID + 16].copy_from_slice(&self.unique_id);
        b[offset::SAVED_STATE] = self.saved_state;
        b
    }

    /// Encodes the footer with its checksum computed, as it is written.
    pub fn to_bytes_with_checksum(&self) -> [u8; FOOTER_SIZE] {
        let mut f = self.clone();
        f.checksum = 0;
        f.checksum = vhd_checksum(&f.to_bytes());
        f.to_bytes()
    }

    /// Whether the cookie is `conectix`.
    pub fn has_valid_cookie(&self) -> bool {
        &self.cookie == FOOTER_COOKIE
    }

    /// The disk type, if the stored value names one.
    pub fn disk_type(&self) -> Option<DiskType> {
        DiskType::from_u32(self.disk_type)
    }

    /// Whether qemu-img of `dialect` sizes the disk by its geometry rather
    /// than by the size field (qemu's `vpc_ignore_current_size`). Since
    /// 10.0 only Virtual PC (`vpc `) and qemu without `force_size`
    /// (`qemu`) are sized by geometry; before, every creator but the five
    /// qemu knew to write an authoritative size field was.
    pub fn size_follows_geometry(&self, dialect: QemuDialect) -> bool {
        if dialect.since(VPC_CURRENT_SIZE_BY_DEFAULT) {
            &self.creator_app == CREATOR_APP_VIRTUAL_PC || &self.creator_app == CREATOR_APP_CHS
        } else {
            !CREATORS_SIZED_BY_FIELD.contains(&self.creator_app)
        }
    }

    /// The disk's sectors as qemu opens it: the geometry's for creators
    /// that size by geometry (unless the geometry is the largest, the
    /// marker of an authoritative size field), the size field's otherwise.
    pub fn total_sectors(&self, dialect: QemuDialect) -> u64 {
        let chs = self.geometry.sectors();
        if self.size_follows_geometry(dialect) && chs != crate::geometry::MAX_GEOMETRY_SECTORS {
            chs
        } else {
            self.current_size / crate::geometry::SECTOR_SIZE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The footer qemu-img 10.0.2 wrote for `create -f vpc x 1G`.
    fn qemu_1g() -> [u8; FOOTER_SIZE] {
        let mut b = [0u8; FOOTER_SIZE];
        let head: &[u8] = &[
            b'c', b'o', b'n', b'e', b'c', b't', b'i', b'x', // cookie
            0x00, 0x00, 0x00, 0x02, // features
            0x00, 0x01, 0x00, 0x00, // format version
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, // data offset
            0x32, 0x99, 0x96, 0x96, // timestamp
            b'q', b'e', b'm', b'u', // creator app
            0x00, 0x05, 0x00, 0x03, // creator version
            b'W', b'i', b'2', b'k', // creator host OS
            0x00, 0x00, 0x00, 0x00, 0x40, 0x03, 0xe0, 0x00, // original size
            0x00, 0x00, 0x00, 0x00, 0x40, 0x03, 0xe0, 0x00, // current size
            0x08, 0x21, 0x10, 0x3f, // geometry 2081/16/63
            0x00, 0x00, 0x00, 0x03, // disk type
            0xff, 0xff, 0xec, 0x86, // checksum
            0x18, 0x57, 0xac, 0x82, 0x70, 0xef, 0x40, 0xcb, // unique id
            0xa3, 0x85, 0xaa, 0x8b, 0x8d, 0x60, 0x3b, 0xb6, //
            0x00, // saved state
        ];
        b[..head.len()].copy_from_slice(head);
        b
    }

    #[test]
    fn decodes_and_reencodes_qemu_footer() {
        let raw = qemu_1g();
        let f = Footer::from_bytes(&raw);
        assert!(f.has_valid_cookie());
        assert_eq!(f.disk_type(), Some(DiskType::Dynamic));
        assert_eq!(f.current_size, 1_073_995_776);
        assert_eq!(f.geometry, Geometry { cylinders: 2081, heads: 16, sectors_per_track: 63 });
        assert_eq!(f.to_bytes(), raw);
        assert_eq!(computed_checksum(&raw), f.checksum);
        assert_eq!(f.to_bytes_with_checksum(), raw);
        assert_eq!(f.total_sectors(QemuDialect::DEFAULT) * 512, 1_073_995_776);
    }

    #[test]
    fn creator_decides_between_geometry_and_size() {
        let new = QemuDialect::DEFAULT;
        let mut f = Footer::from_bytes(&qemu_1g());
        f.current_size = 1 << 30;
        assert_eq!(f.total_sectors(new), 2_097_648);
        f.creator_app = *CREATOR_APP_SIZE;
        assert_eq!(f.total_sectors(new), 2_097_152);
        f.creator_app = *b"vpc ";
        f.geometry = Geometry::MAX;
        assert_eq!(f.total_sectors(new), 2_097_152);
    }

    #[test]
    fn unknown_creators_follow_the_geometry_before_10_0() {
        use instar_core::dialect::QemuVersion;
        let old = QemuDialect::new(QemuVersion::new(7, 2, 22));
        let new = QemuDialect::new(QemuVersion::new(10, 0, 0));
        let mut f = Footer::from_bytes(&qemu_1g());
        f.current_size = 1 << 30;
        // Visual Studio's and Azure's creators, and one nobody knows.
        for app in [*b"vs  ", *b"wa\0\0", *b"xyz "] {
            f.creator_app = app;
            assert_eq!(f.total_sectors(old), 2_097_648, "{app:?}");
            assert_eq!(f.total_sectors(new), 2_097_152, "{app:?}");
        }
        for app in CREATORS_SIZED_BY_FIELD {
            f.creator_app = app;
            assert_eq!(f.total_sectors(old), 2_097_152, "{app:?}");
            assert_eq!(f.total_sectors(new), 2_097_152, "{app:?}");
        }
        for app in [*CREATOR_APP_VIRTUAL_PC, *CREATOR_APP_CHS] {
            f.creator_app = app;
            assert_eq!(f.total_sectors(old), 2_097_648, "{app:?}");
            assert_eq!(f.total_sectors(new), 2_097_648, "{app:?}");
        }
    }
}
