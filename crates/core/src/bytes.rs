//! Big-endian fields in on-disk structures (qcow2 and VHD store their
//! integers big-endian). Callers pass offsets inside the slice: the
//! structures are read into buffers of their full size first.

/// The big-endian `u16` at `at` in `bytes`.
pub fn be16(bytes: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([bytes[at], bytes[at + 1]])
}

/// The big-endian `u32` at `at` in `bytes`.
pub fn be32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// The big-endian `u64` at `at` in `bytes`.
pub fn be64(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    u64::from_be_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_big_endian() {
        let b = [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09];
        assert_eq!(be16(&b, 1), 0x0203);
        assert_eq!(be32(&b, 0), 0x0102_0304);
        assert_eq!(be64(&b, 1), 0x0203_0405_0607_0809);
    }
}
