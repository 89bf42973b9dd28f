//! The GUIDs of the VHDX format: Microsoft's layout (a little-endian `u32`,
//! two little-endian `u16` and eight bytes), the well-known identifiers of
//! regions and metadata items, and fresh random GUIDs for new images.

/// A GUID in its on-disk byte order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Guid(pub [u8; 16]);

impl Guid {
    /// The all-zero GUID: "no log" in a header's `LogGuid`.
    pub const ZERO: Guid = Guid([0; 16]);

    /// A GUID from the fields it is written with in the specification
    /// (`Data1-Data2-Data3-Data4`), laid out as they are stored on disk.
    pub const fn from_fields(data1: u32, data2: u16, data3: u16, data4: [u8; 8]) -> Guid {
        let a = data1.to_le_bytes();
        let b = data2.to_le_bytes();
        let c = data3.to_le_bytes();
        Guid([
            a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], data4[0], data4[1], data4[2], data4[3],
            data4[4], data4[5], data4[6], data4[7],
        ])
    }

    /// The 16 bytes at the start of `bytes`.
    pub fn from_bytes(bytes: &[u8]) -> Guid {
        let mut g = [0u8; 16];
        g.copy_from_slice(&bytes[..16]);
        Guid(g)
    }

    /// A fresh random GUID: a version 4 UUID as qemu generates them
    /// (`qemu_uuid_generate`), stored byte for byte.
    pub fn random() -> std::io::Result<Guid> {
        let mut g = [0u8; 16];
        fill_random(&mut g)?;
        // RFC 4122: version 4 in the high nibble of byte 6, variant 10b in
        // the top bits of byte 8.
        g[6] = (g[6] & 0x0f) | 0x40;
        g[8] = (g[8] & 0x3f) | 0x80;
        Ok(Guid(g))
    }
}

/// Fills `buf` with random bytes from the operating system.
pub fn fill_random(buf: &mut [u8]) -> std::io::Result<()> {
    getrandom::fill(buf).map_err(|e| match e.raw_os_error() {
        Some(code) => std::io::Error::from_raw_os_error(code),
        None => std::io::Error::other(format!("{e}")),
    })
}

/// Region table entry of the Block Allocation Table
/// (`2DC27766-F623-4200-9D64-115E9BFD4A08`).
pub const BAT_REGION: Guid = Guid::from_fields(
    0x2dc2_7766,
    0xf623,
    0x4200,
    [0x9d, 0x64, 0x11, 0x5e, 0x9b, 0xfd, 0x4a, 0x08],
);

/// Region table entry of the metadata region
/// (`8B7CA206-4790-4B9A-B8FE-575F050F886E`).
pub const METADATA_REGION: Guid = Guid::from_fields(
    0x8b7c_a206,
    0x4790,
    0x4b9a,
    [0xb8, 0xfe, 0x57, 0x5f, 0x05, 0x0f, 0x88, 0x6e],
);

/// Metadata item "File Parameters" (`CAA16737-FA36-4D43-B3B6-33F0AA44E76B`).
pub const FILE_PARAMETERS: Guid = Guid::from_fields(
    0xcaa1_6737,
    0xfa36,
    0x4d43,
    [0xb3, 0xb6, 0x33, 0xf0, 0xaa, 0x44, 0xe7, 0x6b],
);

/// Metadata item "Virtual Disk Size" (`2FA54224-CD1B-4876-B211-5DBED83BF4B8`).
pub const VIRTUAL_DISK_SIZE: Guid = Guid::from_fields(
    0x2fa5_4224,
    0xcd1b,
    0x4876,
    [0xb2, 0x11, 0x5d, 0xbe, 0xd8, 0x3b, 0xf4, 0xb8],
);

/// Metadata item "Page 83 Data" (`BECA12AB-B2E6-4523-93EF-C309E000C746`).
pub const PAGE_83_DATA: Guid = Guid::from_fields(
    0xbeca_12ab,
    0xb2e6,
    0x4523,
    [0x93, 0xef, 0xc3, 0x09, 0xe0, 0x00, 0xc7, 0x46],
);

/// Metadata item "Logical Sector Size" (`8141BF1D-A96F-4709-BA47-F233A8FAAB5F`).
pub const LOGICAL_SECTOR_SIZE: Guid = Guid::from_fields(
    0x8141_bf1d,
    0xa96f,
    0x4709,
    [0xba, 0x47, 0xf2, 0x33, 0xa8, 0xfa, 0xab, 0x5f],
);

/// Metadata item "Physical Sector Size" (`CDA348C7-445D-4471-9CC9-E9885251C556`).
pub const PHYSICAL_SECTOR_SIZE: Guid = Guid::from_fields(
    0xcda3_48c7,
    0x445d,
    0x4471,
    [0x9c, 0xc9, 0xe9, 0x88, 0x52, 0x51, 0xc5, 0x56],
);

/// Metadata item "Parent Locator" of differencing disks
/// (`A8D35F2D-B30B-454D-ABF7-D3D84834AB0C`).
pub const PARENT_LOCATOR: Guid = Guid::from_fields(
    0xa8d3_5f2d,
    0xb30b,
    0x454d,
    [0xab, 0xf7, 0xd3, 0xd8, 0x48, 0x34, 0xab, 0x0c],
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_stored_little_endian() {
        assert_eq!(
            BAT_REGION.0,
            [
                0x66, 0x77, 0xc2, 0x2d, // Data1 0x2DC27766
                0x23, 0xf6, // Data2 0xF623
                0x00, 0x42, // Data3 0x4200
                0x9d, 0x64, 0x11, 0x5e, 0x9b, 0xfd, 0x4a, 0x08, // Data4
            ]
        );
    }

    #[test]
    fn random_guids_are_version_4() {
        let a = Guid::random().unwrap();
        let b = Guid::random().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.0[6] >> 4, 4);
        assert_eq!(a.0[8] >> 6, 0b10);
    }
}
