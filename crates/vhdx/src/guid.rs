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

    /// A GUID from its text as the specification writes it
    /// (`2DC27766-F623-4200-9D64-115E9BFD4A08`: `Data1-Data2-Data3-Data4`,
    /// Data4 split 2 + 6 bytes). Meant for constants: a malformed text
    /// fails the build.
    #[allow(clippy::cast_possible_truncation, reason = "each field is as many digits as it holds")]
    pub const fn parse(text: &str) -> Guid {
        let b = text.as_bytes();
        assert!(b.len() == 36, "a GUID is 36 characters");
        assert!(b[8] == b'-' && b[13] == b'-' && b[18] == b'-' && b[23] == b'-');
        let data1 = hex(b, 0, 8) as u32;
        let data2 = hex(b, 9, 4) as u16;
        let data3 = hex(b, 14, 4) as u16;
        let mut data4 = [0u8; 8];
        let mut i = 0;
        while i < 8 {
            let at = if i < 2 { 19 + 2 * i } else { 24 + 2 * (i - 2) };
            data4[i] = hex(b, at, 2) as u8;
            i += 1;
        }
        Guid::from_fields(data1, data2, data3, data4)
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
        instar_core::random::uuid_v4().map(Guid)
    }
}

/// Region table entry of the Block Allocation Table.
pub const BAT_REGION: Guid = Guid::parse("2DC27766-F623-4200-9D64-115E9BFD4A08");

/// Region table entry of the metadata region.
pub const METADATA_REGION: Guid = Guid::parse("8B7CA206-4790-4B9A-B8FE-575F050F886E");

/// Metadata item "File Parameters".
pub const FILE_PARAMETERS: Guid = Guid::parse("CAA16737-FA36-4D43-B3B6-33F0AA44E76B");

/// Metadata item "Virtual Disk Size".
pub const VIRTUAL_DISK_SIZE: Guid = Guid::parse("2FA54224-CD1B-4876-B211-5DBED83BF4B8");

/// Metadata item "Page 83 Data".
pub const PAGE_83_DATA: Guid = Guid::parse("BECA12AB-B2E6-4523-93EF-C309E000C746");

/// Metadata item "Logical Sector Size".
pub const LOGICAL_SECTOR_SIZE: Guid = Guid::parse("8141BF1D-A96F-4709-BA47-F233A8FAAB5F");

/// Metadata item "Physical Sector Size".
pub const PHYSICAL_SECTOR_SIZE: Guid = Guid::parse("CDA348C7-445D-4471-9CC9-E9885251C556");

/// Metadata item "Parent Locator" of differencing disks.
pub const PARENT_LOCATOR: Guid = Guid::parse("A8D35F2D-B30B-454D-ABF7-D3D84834AB0C");

/// The value of the `len` hex digits of `b` from `at` (at most 8).
const fn hex(b: &[u8], at: usize, len: usize) -> u64 {
    let mut v = 0u64;
    let mut i = 0;
    while i < len {
        let d = match b[at + i] {
            c @ b'0'..=b'9' => c - b'0',
            c @ b'a'..=b'f' => c - b'a' + 10,
            c @ b'A'..=b'F' => c - b'A' + 10,
            _ => panic!("not a hex digit"),
        };
        v = v << 4 | d as u64;
        i += 1;
    }
    v
}

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
}
