//! The two VHDX headers (64 KiB and 128 KiB into the file). Each is a
//! 4 KiB block whose CRC-32C covers the whole block; the valid header with
//! the higher sequence number is the active one.

use crate::guid::Guid;
use instar_core::bytes::{le16, le32, le64};

/// The first header.
pub const HEADER1_OFFSET: u64 = 64 * 1024;

/// The second header.
pub const HEADER2_OFFSET: u64 = 128 * 1024;

/// The block the header checksum covers.
pub const HEADER_SIZE: usize = 4096;

/// The bytes of the header structure itself; qemu writes only these.
pub const HEADER_STRUCT_LEN: usize = 80;

/// `head` in ASCII.
pub const HEADER_SIGNATURE: u32 = u32::from_le_bytes(*b"head");

/// The only header version there is.
pub const HEADER_VERSION: u16 = 1;

/// The only log version there is.
pub const LOG_VERSION: u16 = 0;

/// Where the header section ends and the log starts in new images.
pub const HEADER_SECTION_END: u64 = 1024 * 1024;

/// Where the checksum field sits in headers, region tables and log entries.
pub const CHECKSUM_OFFSET: usize = 4;

/// The CRC-32C of `buf` with its checksum field taken as zero, as the
/// specification computes every VHDX checksum.
pub fn checksum(buf: &[u8], crc_offset: usize) -> u32 {
    let crc = crc32c::crc32c(&buf[..crc_offset]);
    let crc = crc32c::crc32c_append(crc, &[0u8; 4]);
    crc32c::crc32c_append(crc, &buf[crc_offset + 4..])
}

/// Whether the checksum stored at `crc_offset` matches the contents.
pub fn checksum_is_valid(buf: &[u8], crc_offset: usize) -> bool {
    let stored = le32(buf, crc_offset);
    stored == checksum(buf, crc_offset)
}

/// Stores the checksum of `buf` into its checksum field.
pub fn update_checksum(buf: &mut [u8], crc_offset: usize) {
    let crc = checksum(buf, crc_offset);
    buf[crc_offset..crc_offset + 4].copy_from_slice(&crc.to_le_bytes());
}

/// A VHDX header, fields in on-disk order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// `head`.
    pub signature: u32,
    /// CRC-32C over the 4 KiB block.
    pub checksum: u32,
    /// The header with the higher number is current.
    pub sequence_number: u64,
    /// Changed before the first write to the file in a session.
    pub file_write_guid: Guid,
    /// Changed before the first write of guest-visible data.
    pub data_write_guid: Guid,
    /// Zero when the log holds nothing to replay.
    pub log_guid: Guid,
    /// The log format version (0).
    pub log_version: u16,
    /// The file format version (1).
    pub version: u16,
    /// Bytes in the log, a multiple of 1 MiB.
    pub log_length: u32,
    /// Where the log starts, a multiple of 1 MiB.
    pub log_offset: u64,
}

impl Header {
    /// The header of a new image, as qemu's `vhdx_create_new_headers`
    /// fills it (without the checksum, which [`Header::to_bytes`] adds).
    pub fn new(sequence_number: u64, file_write: Guid, data_write: Guid, log_length: u32) -> Self {
        Header {
            signature: HEADER_SIGNATURE,
            checksum: 0,
            sequence_number,
            file_write_guid: file_write,
            data_write_guid: data_write,
            log_guid: Guid::ZERO,
            log_version: LOG_VERSION,
            version: HEADER_VERSION,
            log_length,
            log_offset: HEADER_SECTION_END,
        }
    }

    /// Reads the header fields from a 4 KiB block (the checksum is read,
    /// not checked; see [`Header::is_valid_block`]).
    pub fn from_bytes(b: &[u8]) -> Header {
        Header {
            signature: le32(b, 0),
            checksum: le32(b, 4),
            sequence_number: le64(b, 8),
            file_write_guid: Guid::from_bytes(&b[16..]),
            data_write_guid: Guid::from_bytes(&b[32..]),
            log_guid: Guid::from_bytes(&b[48..]),
            log_version: le16(b, 64),
            version: le16(b, 66),
            log_length: le32(b, 68),
            log_offset: le64(b, 72),
        }
    }

    /// The 4 KiB block with the checksum computed over it.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = vec![0u8; HEADER_SIZE];
        b[0..4].copy_from_slice(&self.signature.to_le_bytes());
        b[8..16].copy_from_slice(&self.sequence_number.to_le_bytes());
        b[16..32].copy_from_slice(&self.file_write_guid.0);
        b[32..48].copy_from_slice(&self.data_write_guid.0);
        b[48..64].copy_from_slice(&self.log_guid.0);
        b[64..66].copy_from_slice(&self.log_version.to_le_bytes());
        b[66..68].copy_from_slice(&self.version.to_le_bytes());
        b[68..72].copy_from_slice(&self.log_length.to_le_bytes());
        b[72..80].copy_from_slice(&self.log_offset.to_le_bytes());
        update_checksum(&mut b, CHECKSUM_OFFSET);
        b
    }

    /// Whether a 4 KiB block holds a header qemu accepts: its checksum
    /// matches, the signature is `head` and the version is 1.
    pub fn is_valid_block(b: &[u8]) -> bool {
        if !checksum_is_valid(b, CHECKSUM_OFFSET) {
            return false;
        }
        let h = Header::from_bytes(b);
        h.signature == HEADER_SIGNATURE && h.version == HEADER_VERSION
    }
}

/// Which header is current, given each block, following qemu's
/// `vhdx_parse_header`: a single valid header wins; of two, the higher
/// sequence number; equal numbers only when the headers are identical
/// (as Disk2VHD writes them). `None` when no header qualifies.
pub fn choose_current(h1: &[u8], h2: &[u8]) -> Option<(usize, Header)> {
    let v1 = Header::is_valid_block(h1);
    let v2 = Header::is_valid_block(h2);
    let a = Header::from_bytes(h1);
    let b = Header::from_bytes(h2);
    match (v1, v2) {
        (true, false) => Some((0, a)),
        (false, true) => Some((1, b)),
        (false, false) => None,
        (true, true) => {
            if a.sequence_number > b.sequence_number {
                Some((0, a))
            } else if b.sequence_number > a.sequence_number {
                Some((1, b))
            } else if h1[..HEADER_STRUCT_LEN] == h2[..HEADER_STRUCT_LEN] {
                Some((0, a))
            } else {
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Header {
        Header::new(7, Guid([1; 16]), Guid([2; 16]), 1 << 20)
    }

    #[test]
    fn layout_matches_the_specification() {
        let b = sample().to_bytes();
        assert_eq!(b.len(), HEADER_SIZE);
        assert_eq!(&b[0..4], b"head"); // Signature
        assert_eq!(&b[8..16], &7u64.to_le_bytes()); // SequenceNumber
        assert_eq!(&b[16..32], &[1; 16]); // FileWriteGuid
        assert_eq!(&b[32..48], &[2; 16]); // DataWriteGuid
        assert_eq!(&b[48..64], &[0; 16]); // LogGuid
        assert_eq!(&b[64..68], &[0, 0, 1, 0]); // LogVersion 0, Version 1
        assert_eq!(&b[68..72], &(1u32 << 20).to_le_bytes()); // LogLength
        assert_eq!(&b[72..80], &(1u64 << 20).to_le_bytes()); // LogOffset
        assert!(b[80..].iter().all(|&x| x == 0));
        assert!(Header::is_valid_block(&b));
        assert_eq!(Header::from_bytes(&b).sequence_number, 7);
    }

    #[test]
    fn checksum_is_crc32c_with_field_zeroed() {
        // The CRC-32C check value of "123456789" is 0xE3069283.
        let mut buf = b"1234\0\0\0\0".to_vec();
        let expected = crc32c::crc32c(&buf);
        buf[4] = 0xff;
        assert_eq!(checksum(&buf, 4), expected);
        assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
    }

    #[test]
    fn current_header_follows_qemu() {
        let a = sample().to_bytes();
        let mut h = sample();
        h.sequence_number = 8;
        let b = h.to_bytes();
        assert_eq!(choose_current(&a, &b).unwrap().0, 1);
        assert_eq!(choose_current(&b, &a).unwrap().0, 0);
        assert_eq!(choose_current(&a, &a).unwrap().0, 0);
        let mut bad = b.clone();
        bad[100] = 1;
        assert_eq!(choose_current(&a, &bad).unwrap().0, 0);
        assert!(choose_current(&bad, &bad).is_none());
        let mut other = sample();
        other.log_length = 2 << 20;
        assert!(choose_current(&a, &other.to_bytes()).is_none());
    }
}
