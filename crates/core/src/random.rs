//! Random values a new image needs (vmdk's CID, VHD's UUID, VHDX's GUIDs
//! and sequence number), drawn from the operating system as qemu draws
//! them (`g_random_int`, `qemu_uuid_generate`).

use std::io;

/// Fills `buf` with random bytes from the operating system.
pub fn fill(buf: &mut [u8]) -> io::Result<()> {
    getrandom::fill(buf).map_err(|e| match e.raw_os_error() {
        Some(code) => io::Error::from_raw_os_error(code),
        None => io::Error::other(e.to_string()),
    })
}

/// A random 32-bit value (`g_random_int`).
pub fn u32() -> io::Result<u32> {
    let mut b = [0u8; 4];
    fill(&mut b)?;
    Ok(u32::from_le_bytes(b))
}

/// A random version 4 UUID in its 16 bytes (`qemu_uuid_generate`, RFC
/// 4122: version 4 in the high nibble of byte 6, variant 10b in the top
/// bits of byte 8).
pub fn uuid_v4() -> io::Result<[u8; 16]> {
    let mut id = [0u8; 16];
    fill(&mut id)?;
    id[6] = (id[6] & 0x0f) | 0x40;
    id[8] = (id[8] & 0x3f) | 0x80;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_version_4_and_differ() {
        let (a, b) = (uuid_v4().unwrap(), uuid_v4().unwrap());
        assert_ne!(a, b);
        assert_eq!((a[6] >> 4, a[8] >> 6), (4, 0b10));
        assert_ne!(u32().unwrap(), u32().unwrap());
    }
}
