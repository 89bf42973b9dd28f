//! The disk geometry (cylinders, heads, sectors per track) a VHD footer
//! records, and the way qemu rounds a requested size up to one.
//!
//! Virtual PC sizes a disk by its CHS geometry rather than by the size
//! field, so qemu (`block/vpc.c`: `calculate_geometry`,
//! `calculate_rounded_image_size`) grows the requested sector count one
//! sector at a time until the geometry the VHD specification's algorithm
//! derives from it covers the request. The largest geometry,
//! 65535 x 16 x 255, is a marker meaning "the size field is the size": it is
//! used for `force_size=on` and for sizes no geometry reaches.

/// The sector size of a VHD.
pub const SECTOR_SIZE: u64 = 512;

/// The most cylinders a geometry can name.
pub const MAX_CYLINDERS: u16 = 65535;

/// The most heads a geometry can name.
pub const MAX_HEADS: u8 = 16;

/// The most sectors per track a geometry can name.
pub const MAX_SECTORS_PER_TRACK: u8 = 255;

/// Sectors of the largest geometry (`VHD_MAX_GEOMETRY`, about 127.5 GiB).
pub const MAX_GEOMETRY_SECTORS: u64 =
    MAX_CYLINDERS as u64 * MAX_HEADS as u64 * MAX_SECTORS_PER_TRACK as u64;

/// The largest disk qemu accepts, in sectors (`VHD_MAX_SECTORS`, 2040 GiB).
pub const MAX_SECTORS: u64 = 0xff00_0000;

/// From this many sectors on, the specification's algorithm jumps straight
/// to 255 sectors per track and 16 heads.
const LARGE_DISK_SECTORS: u64 = 65535 * 16 * 63;

/// A cylinder/head/sector geometry as the footer stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Geometry {
    /// Cylinders.
    pub cylinders: u16,
    /// Heads per cylinder.
    pub heads: u8,
    /// Sectors per track.
    pub sectors_per_track: u8,
}

impl Geometry {
    /// The largest geometry, which marks the size field as authoritative.
    pub const MAX: Geometry = Geometry {
        cylinders: MAX_CYLINDERS,
        heads: MAX_HEADS,
        sectors_per_track: MAX_SECTORS_PER_TRACK,
    };

    /// The sectors the geometry spans.
    pub fn sectors(self) -> u64 {
        u64::from(self.cylinders) * u64::from(self.heads) * u64::from(self.sectors_per_track)
    }

    /// The geometry the VHD specification derives from `total_sectors`
    /// (capped at the largest geometry). It may span fewer sectors than
    /// asked for: the remainder is rounded away.
    #[allow(
        clippy::cast_possible_truncation,
        reason = "cylinders <= 65535, heads <= 16, sectors per track <= 255 on every branch"
    )]
    pub fn for_sectors(total_sectors: u64) -> Geometry {
        let total = total_sectors.min(MAX_GEOMETRY_SECTORS);
        let (spt, heads, cyls_times_heads) = if total >= LARGE_DISK_SECTORS {
            (255, 16, total / 255)
        } else {
            let mut spt = 17;
            let mut cth = total / spt;
            let mut heads = cth.div_ceil(1024).max(4);
            if cth >= heads * 1024 || heads > 16 {
                spt = 31;
                heads = 16;
                cth = total / spt;
            }
            if cth >= heads * 1024 {
                spt = 63;
                heads = 16;
                cth = total / spt;
            }
            (spt, heads, cth)
        };
        // Every branch bounds the cylinder count by 65535, so these
        // conversions cannot lose bits.
        Geometry {
            cylinders: (cyls_times_heads / heads) as u16,
            heads: heads as u8,
            sectors_per_track: spt as u8,
        }
    }
}

/// The size qemu gives a new image: the geometry the footer records and
/// the disk's sector count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoundedSize {
    /// The geometry for the footer.
    pub geometry: Geometry,
    /// The disk's sectors.
    pub total_sectors: u64,
}

/// The requested size is beyond 2040 GiB, the most a VHD holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLarge;

/// qemu's `calculate_rounded_image_size`: the geometry and sector count
/// for `size` bytes (already a multiple of 512). Without `force_size` the
/// size is grown until a geometry covers it; with it (or when no geometry
/// can), the largest geometry is recorded and the size is kept.
pub fn rounded_image_size(size: u64, force_size: bool) -> Result<RoundedSize, TooLarge> {
    let mut geometry = Geometry::default();
    if force_size {
        geometry = Geometry::MAX;
    } else {
        let wanted = MAX_GEOMETRY_SECTORS.min(size / SECTOR_SIZE);
        let mut i = 0;
        while wanted > geometry.sectors() {
            geometry = Geometry::for_sectors(wanted + i);
            i += 1;
        }
    }
    let total_sectors = if geometry.sectors() == MAX_GEOMETRY_SECTORS {
        let sectors = size / SECTOR_SIZE;
        if sectors > MAX_SECTORS {
            return Err(TooLarge);
        }
        sectors
    } else {
        geometry.sectors()
    };
    Ok(RoundedSize { geometry, total_sectors })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;
    const GIB: u64 = 1 << 30;

    fn rounded(size: u64) -> u64 {
        rounded_image_size(size, false).unwrap().total_sectors * SECTOR_SIZE
    }

    #[test]
    fn sizes_round_up_as_qemu_measured() {
        assert_eq!(rounded(GIB), 1_073_995_776);
        assert_eq!(rounded(64 * MIB), 67_125_248);
        assert_eq!(rounded(MIB), 1_079_296);
        assert_eq!(rounded(16 * MIB), 16_781_312);
        assert_eq!(rounded(34_816), 34_816);
        assert_eq!(rounded(0), 0);
    }

    #[test]
    fn geometries_follow_the_specification() {
        let g = rounded_image_size(GIB, false).unwrap().geometry;
        assert_eq!(g, Geometry { cylinders: 2081, heads: 16, sectors_per_track: 63 });
        let g = rounded_image_size(64 * MIB, false).unwrap().geometry;
        assert_eq!(g, Geometry { cylinders: 964, heads: 8, sectors_per_track: 17 });
    }

    #[test]
    fn force_size_keeps_the_size_and_marks_the_geometry() {
        let r = rounded_image_size(1024, true).unwrap();
        assert_eq!(r, RoundedSize { geometry: Geometry::MAX, total_sectors: 2 });
    }

    #[test]
    fn sizes_past_the_largest_geometry_are_kept() {
        let r = rounded_image_size(200 * GIB, false).unwrap();
        assert_eq!(r.geometry, Geometry::MAX);
        assert_eq!(r.total_sectors * SECTOR_SIZE, 200 * GIB);
    }

    #[test]
    fn the_limit_is_2040_gib() {
        assert!(rounded_image_size(2040 * GIB, false).is_ok());
        assert_eq!(rounded_image_size(2041 * GIB, false), Err(TooLarge));
        assert_eq!(rounded_image_size(2041 * GIB, true), Err(TooLarge));
        assert!(rounded_image_size(2040 * GIB, true).is_ok());
    }

    #[test]
    fn rounding_is_stable() {
        // qemu rounds once when parsing options and again when creating;
        // the second pass keeps the first one's result. (Verified for every
        // sector count up to the largest geometry when this was written;
        // the sample keeps the test fast.)
        let mut sectors = 1;
        while sectors < MAX_GEOMETRY_SECTORS + 10_000 {
            let first = rounded_image_size(sectors * SECTOR_SIZE, false).unwrap();
            let again = rounded_image_size(first.total_sectors * SECTOR_SIZE, false).unwrap();
            assert_eq!(first, again, "sectors {sectors}");
            sectors += 1 + sectors / 997;
        }
    }
}
