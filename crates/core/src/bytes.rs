//! Fields of on-disk structures: big-endian (qcow2, VHD) and little-endian
//! (vmdk, vhdx) integers, C strings, and slices read as qemu reads a file,
//! with whatever lies past the end reading as zeros.
//!
//! Every reader here is total: an offset at or past the end of the slice
//! reads zeros instead of panicking, so a parser fed a short or hostile
//! buffer gets the answer qemu gets from a short file (qemu's block layer
//! zero-fills reads past the end of a file), never a panic. The writers
//! ignore what does not fit, for the same reason.

/// The sector size every format rounds sizes up to (`BDRV_SECTOR_SIZE`).
pub const SECTOR_SIZE: u64 = 512;

/// `N` bytes of `bytes` from `at`, zeros where the slice ends.
fn array<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    // The usual case, a field wholly inside the slice, as one load (the
    // general copy below is a call to memcpy per field: a tenth of a
    // walk over large L2 tables).
    if let Some(whole) = at.checked_add(N).and_then(|end| bytes.get(at..end)) {
        if let Ok(out) = <[u8; N]>::try_from(whole) {
            return out;
        }
    }
    let mut out = [0u8; N];
    if let Some(rest) = bytes.get(at..) {
        let n = rest.len().min(N);
        out[..n].copy_from_slice(&rest[..n]);
    }
    out
}

/// The big-endian `u16` at `at`.
pub fn be16(bytes: &[u8], at: usize) -> u16 {
    u16::from_be_bytes(array(bytes, at))
}

/// The big-endian `u32` at `at`.
pub fn be32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(array(bytes, at))
}

/// The big-endian `u64` at `at`.
pub fn be64(bytes: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(array(bytes, at))
}

/// The little-endian `u16` at `at`.
pub fn le16(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(array(bytes, at))
}

/// The little-endian `u32` at `at`.
pub fn le32(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(array(bytes, at))
}

/// The little-endian `u64` at `at`.
pub fn le64(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(array(bytes, at))
}

/// Stores `value` at `at`; bytes that would fall past the end are dropped.
fn put(buf: &mut [u8], at: usize, value: &[u8]) {
    if let Some(rest) = buf.get_mut(at..) {
        let n = rest.len().min(value.len());
        rest[..n].copy_from_slice(&value[..n]);
    }
}

/// Stores `value` big-endian at `at`.
pub fn put_be16(buf: &mut [u8], at: usize, value: u16) {
    put(buf, at, &value.to_be_bytes());
}

/// Stores `value` big-endian at `at`.
pub fn put_be32(buf: &mut [u8], at: usize, value: u32) {
    put(buf, at, &value.to_be_bytes());
}

/// Stores `value` big-endian at `at`.
pub fn put_be64(buf: &mut [u8], at: usize, value: u64) {
    put(buf, at, &value.to_be_bytes());
}

/// Stores `value` little-endian at `at`.
pub fn put_le16(buf: &mut [u8], at: usize, value: u16) {
    put(buf, at, &value.to_le_bytes());
}

/// Stores `value` little-endian at `at`.
pub fn put_le32(buf: &mut [u8], at: usize, value: u32) {
    put(buf, at, &value.to_le_bytes());
}

/// Stores `value` little-endian at `at`.
pub fn put_le64(buf: &mut [u8], at: usize, value: u64) {
    put(buf, at, &value.to_le_bytes());
}

/// `len` bytes of `bytes` from `at`, zeros where the slice ends (as qemu
/// reads past the end of a file). `at` is a file offset, so it may exceed
/// what `usize` holds on small hosts.
pub fn padded(bytes: &[u8], at: u64, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    if let Some(rest) = usize::try_from(at).ok().and_then(|start| bytes.get(start..)) {
        let n = rest.len().min(len);
        out[..n].copy_from_slice(&rest[..n]);
    }
    out
}

/// A byte string as C code sees it once read into a buffer: up to the
/// first NUL, carried losslessly ([`crate::rawtext`]).
pub fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    crate::rawtext::from_bytes(bytes.get(..end).unwrap_or_default())
}

/// A table of big-endian `u64` entries (qcow2's L1 and refcount tables);
/// a trailing partial entry is ignored.
pub fn be64_table(bytes: &[u8]) -> Vec<u64> {
    bytes.chunks_exact(8).map(|c| be64(c, 0)).collect()
}

/// `n` rounded up to whole sectors (`ROUND_UP(n, BDRV_SECTOR_SIZE)`),
/// saturating at `u64::MAX` where qemu's would overflow.
pub fn round_up_to_sector(n: u64) -> u64 {
    n.div_ceil(SECTOR_SIZE).saturating_mul(SECTOR_SIZE)
}

/// Whether every byte of `buf` is zero (qemu's `buffer_is_zero`): eight
/// words at a time, so that a chunk of megabytes is scanned at memory
/// speed.
pub fn is_zero(buf: &[u8]) -> bool {
    const BLOCK: usize = 64;
    let mut blocks = buf.chunks_exact(BLOCK);
    for block in blocks.by_ref() {
        let mut acc = 0u64;
        for word in block.chunks_exact(8) {
            let mut w = [0u8; 8];
            w.copy_from_slice(word);
            acc |= u64::from_ne_bytes(w);
        }
        if acc != 0 {
            return false;
        }
    }
    blocks.remainder().iter().all(|&b| b == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_buffers_are_found_whatever_their_length() {
        for len in [0usize, 1, 63, 64, 65, 4096, 4099] {
            let mut buf = vec![0u8; len];
            assert!(is_zero(&buf));
            if len > 0 {
                buf[len - 1] = 1;
                assert!(!is_zero(&buf), "{len}");
                buf[len - 1] = 0;
                buf[len / 2] = 0x80;
                assert!(!is_zero(&buf), "{len}");
            }
        }
    }

    #[test]
    fn reads_both_byte_orders() {
        let b = [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09];
        assert_eq!(be16(&b, 1), 0x0203);
        assert_eq!(be32(&b, 0), 0x0102_0304);
        assert_eq!(be64(&b, 1), 0x0203_0405_0607_0809);
        assert_eq!(le16(&b, 1), 0x0302);
        assert_eq!(le32(&b, 0), 0x0403_0201);
        assert_eq!(le64(&b, 1), 0x0908_0706_0504_0302);
    }

    #[test]
    fn short_input_reads_as_zeros_never_panics() {
        let b = [0xff, 0xee];
        assert_eq!(be32(&b, 0), 0xffee_0000);
        assert_eq!(le32(&b, 1), 0xee);
        assert_eq!(be64(&b, 2), 0);
        assert_eq!(le64(&b, usize::MAX), 0);
        assert_eq!(padded(&b, 1, 3), vec![0xee, 0, 0]);
        assert_eq!(padded(&b, u64::MAX, 2), vec![0, 0]);
    }

    #[test]
    fn writers_drop_what_does_not_fit() {
        let mut b = [0u8; 6];
        put_be32(&mut b, 0, 0x0102_0304);
        put_le16(&mut b, 4, 0x0605);
        assert_eq!(b, [1, 2, 3, 4, 5, 6]);
        put_be64(&mut b, 4, u64::MAX);
        assert_eq!(b, [1, 2, 3, 4, 0xff, 0xff]);
        put_le64(&mut b, 9, 1);
        put_le32(&mut b, 0, 0x0a0b_0c0d);
        put_be16(&mut b, 0, 0x0102);
        put_le64(&mut b, 0, 0);
        assert_eq!(b, [0; 6]);
    }

    #[test]
    fn c_strings_stop_at_nul() {
        assert_eq!(c_string(b"raw\0xyz"), "raw");
        assert_eq!(c_string(b"abc"), "abc");
        // Bytes that are not UTF-8 are kept (rawtext), not replaced.
        assert_eq!(crate::rawtext::to_bytes(&c_string(b"\xff\0")).as_ref(), b"\xff");
    }

    #[test]
    fn tables_and_sectors() {
        assert_eq!(be64_table(&[0, 0, 0, 0, 0, 0, 0, 1, 9]), vec![1]);
        assert_eq!(round_up_to_sector(1000), 1024);
        assert_eq!(round_up_to_sector(0), 0);
        assert_eq!(round_up_to_sector(u64::MAX), u64::MAX);
    }
}
