//! The metadata log: a circular buffer of 4 KiB sectors after the header
//! section. New images have an empty log (a zero `LogGuid` in the header).
//! A reader must replay a log that holds a valid sequence of entries
//! before it may trust the file; instar opens images read-only, as
//! `qemu-img info` and `check` do, so it only has to find out whether such
//! a sequence exists (qemu's `vhdx_log_search`), and refuses the image if
//! it does, as qemu does. A writer (convert's target) replays it as qemu
//! does when it opens for writing ([`active_sequence`], then
//! `write::replay`).

use crate::error::OpenError;
use crate::guid::Guid;
use crate::header::{self, checksum, Header, CHECKSUM_OFFSET};
use instar_core::bytes::{le32, le64};
use instar_core::ImageFile;

/// Log sectors are 4 KiB.
pub const LOG_SECTOR_SIZE: u32 = 4096;

/// The log's offset and length must be multiples of 1 MiB.
pub const LOG_MIN_SIZE: u64 = 1024 * 1024;

/// `loge` in ASCII: a log entry header.
pub const LOG_SIGNATURE: u32 = u32::from_le_bytes(*b"loge");
/// `desc`: a data descriptor.
pub const LOG_DESC_SIGNATURE: u32 = u32::from_le_bytes(*b"desc");
/// `zero`: a zero descriptor.
pub const LOG_ZERO_SIGNATURE: u32 = u32::from_le_bytes(*b"zero");

/// A data sector's signature (`VHDX_LOG_DATA_SIGNATURE`).
pub const LOG_DATA_SIGNATURE: u32 = u32::from_le_bytes(*b"data");

/// Bytes of a sector a data sector carries itself (the first 8 and the
/// last 4 go in its descriptor).
pub const DATA_SECTOR_PAYLOAD: usize = 4084;

/// Bytes of a log entry header, and of a descriptor.
pub const LOG_HDR_SIZE: usize = 64;
/// See [`LOG_HDR_SIZE`].
pub const LOG_DESC_SIZE: usize = 32;

/// A log entry header, the fields qemu validates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogEntryHeader {
    /// `loge`.
    pub signature: u32,
    /// CRC-32C of the whole entry.
    pub checksum: u32,
    /// Entry length in bytes, a multiple of 4 KiB.
    pub entry_length: u32,
    /// Sequence number, never 0.
    pub sequence_number: u64,
    /// Descriptors in the entry.
    pub descriptor_count: u32,
    /// Must equal the header's `LogGuid`.
    pub log_guid: Guid,
}

impl LogEntryHeader {
    /// Reads a header from its 64 bytes.
    pub fn from_bytes(b: &[u8]) -> LogEntryHeader {
        LogEntryHeader {
            signature: le32(b, 0),
            checksum: le32(b, 4),
            entry_length: le32(b, 8),
            sequence_number: le64(b, 16),
            descriptor_count: le32(b, 24),
            log_guid: Guid::from_bytes(&b[32..]),
        }
    }
}

/// How many times over the search may read the log before instar calls
/// it endless. A log of well-formed entries is read about twice at most
/// (a sequence that wraps, then the sectors after it); qemu's search has
/// no bound at all and loops for ever on some logs (an entry spanning the
/// whole log with a bad checksum brings the search back to where it
/// started).
pub const LOG_SEARCH_MAX_PASSES: u64 = 4;

/// A read position in the circular log (qemu's `VHDXLogEntries`), and
/// the sectors the search may still move over.
#[derive(Debug, Clone, Copy)]
struct LogCursor {
    offset: u64,
    length: u64,
    read: u32,
    write: u32,
    budget: u64,
}

impl LogCursor {
    /// The next sector index, wrapping at the end of the log.
    #[allow(clippy::cast_possible_truncation, reason = "below `length`, a u32 log length")]
    fn inc(&self, idx: u32) -> u32 {
        let next = u64::from(idx) + u64::from(LOG_SECTOR_SIZE);
        if next >= self.length {
            0
        } else {
            next as u32
        }
    }

    /// Moves the read position one sector on, spending one sector of the
    /// search's budget.
    fn advance(&mut self) -> Result<(), OpenError> {
        self.budget = self.budget.checked_sub(1).ok_or(OpenError::EndlessLog)?;
        self.read = self.inc(self.read);
        Ok(())
    }

    /// qemu's `vhdx_log_peek_hdr`: the entry header at the read position.
    fn peek_hdr(&self, file: &ImageFile) -> Result<LogEntryHeader, OpenError> {
        if !self.read.is_multiple_of(LOG_SECTOR_SIZE) {
            return Err(OpenError::Errno(rustix::io::Errno::FAULT));
        }
        let mut read = self.read;
        if u64::from(read) + LOG_HDR_SIZE as u64 > self.length {
            read = 0;
        }
        if read == self.write {
            return Err(OpenError::Invalid);
        }
        let mut b = [0u8; LOG_HDR_SIZE];
        file.read_at(self.offset.wrapping_add(u64::from(read)), &mut b)?;
        Ok(LogEntryHeader::from_bytes(&b))
    }

    /// qemu's `vhdx_log_read_sectors` for one sector: reads it and moves
    /// on, unless the log is empty at this point.
    fn read_sector(&mut self, file: &ImageFile, buf: &mut [u8]) -> Result<bool, OpenError> {
        if self.read == self.write {
            return Ok(false);
        }
        file.read_at(self.offset.wrapping_add(u64::from(self.read)), buf)?;
        self.advance()?;
        Ok(true)
    }
}

/// qemu's `vhdx_log_hdr_is_valid`.
fn hdr_is_valid(log: &LogCursor, hdr: &LogEntryHeader, log_guid: &Guid) -> bool {
    hdr.signature == LOG_SIGNATURE
        && log.length >= u64::from(hdr.entry_length)
        && hdr.entry_length.is_multiple_of(LOG_SECTOR_SIZE)
        && hdr.sequence_number != 0
        && hdr.log_guid == *log_guid
        && u64::from(hdr.descriptor_count) * LOG_DESC_SIZE as u64 <= u64::from(hdr.entry_length)
}

/// qemu's `vhdx_compute_desc_sectors`: sectors holding the header and the
/// descriptors (in 32-bit arithmetic, as qemu's).
fn desc_sectors(desc_count: u32) -> u32 {
    let n = desc_count.wrapping_add(2);
    n / 128 + u32::from(!n.is_multiple_of(128))
}

/// qemu's `vhdx_log_desc_is_valid`, on a descriptor's 32 bytes.
fn desc_is_valid(d: &[u8], hdr: &LogEntryHeader) -> bool {
    let signature = le32(d, 0);
    let length = le64(d, 8);
    let file_offset = le64(d, 16);
    let sequence = le64(d, 24);
    if sequence != hdr.sequence_number || !file_offset.is_multiple_of(u64::from(LOG_SECTOR_SIZE)) {
        return false;
    }
    if signature == LOG_ZERO_SIGNATURE {
        length.is_multiple_of(u64::from(LOG_SECTOR_SIZE))
    } else {
        signature == LOG_DESC_SIGNATURE
    }
}

/// qemu's `vhdx_validate_log_entry`: whether a valid entry starts at the
/// cursor (continuing sequence `seq` when it is not 0). Moves the cursor
/// past what it read, exactly as qemu moves it.
fn validate_entry(
    file: &ImageFile,
    log: &mut LogCursor,
    seq: u64,
    log_guid: &Guid,
) -> Result<Option<LogEntryHeader>, OpenError> {
    let hdr = log.peek_hdr(file)?;
    // In 64-bit arithmetic that wraps, as qemu's: no entry has sequence 0.
    if !hdr_is_valid(log, &hdr, log_guid) || (seq > 0 && hdr.sequence_number != seq.wrapping_add(1))
    {
        log.advance()?;
        return Ok(None);
    }
    let n_desc = desc_sectors(hdr.descriptor_count);
    let total_sectors = hdr.entry_length / LOG_SECTOR_SIZE;

    // vhdx_log_read_desc: peek and validate again, then read the
    // descriptor sectors, checking every descriptor. The checksum runs
    // over them with the entry's checksum field taken as zero.
    let hdr = log.peek_hdr(file)?;
    if !hdr_is_valid(log, &hdr, log_guid) {
        return Err(OpenError::Invalid);
    }
    let mut sector = vec![0u8; LOG_SECTOR_SIZE as usize];
    let mut crc: Option<u32> = None;
    let mut stored_checksum = 0;
    let mut remaining_desc = u64::from(hdr.descriptor_count);
    for s in 0..n_desc {
        if !log.read_sector(file, &mut sector)? {
            return Err(OpenError::Invalid);
        }
        let first = if s == 0 {
            stored_checksum = le32(&sector, CHECKSUM_OFFSET);
            // The checksum of the first sector treats its field as zero.
            let c = checksum(&sector, CHECKSUM_OFFSET);
            crc = Some(c);
            LOG_HDR_SIZE
        } else {
            crc = Some(crc32c::crc32c_append(crc.unwrap_or(0), &sector));
            0
        };
        let mut at = first;
        while remaining_desc > 0 && at + LOG_DESC_SIZE <= sector.len() {
            if !desc_is_valid(&sector[at..at + LOG_DESC_SIZE], &hdr) {
                return Err(OpenError::Invalid);
            }
            remaining_desc -= 1;
            at += LOG_DESC_SIZE;
        }
    }
    let mut crc = crc.unwrap_or(0);
    if total_sectors > n_desc {
        for _ in 0..total_sectors - n_desc {
            if !log.read_sector(file, &mut sector)? {
                return Ok(None);
            }
            crc = crc32c::crc32c_append(crc, &sector);
        }
    }
    if crc != stored_checksum {
        return Ok(None);
    }
    Ok(Some(hdr))
}

/// Whether the log described by `header` holds a valid sequence of
/// entries that would have to be replayed (qemu's `vhdx_parse_log` up to
/// the point where a read-only open refuses the image). Errors are the
/// ones qemu fails the open with, and [`OpenError::EndlessLog`] where
/// qemu's search would not end: the search reads at most
/// [`LOG_SEARCH_MAX_PASSES`] times the log's length.
pub fn needs_replay(file: &ImageFile, header: &Header) -> Result<bool, OpenError> {
    let offset = header.log_offset;
    if offset < LOG_MIN_SIZE || !offset.is_multiple_of(LOG_MIN_SIZE) {
        return Err(OpenError::Invalid);
    }
    if header.log_version != 0 {
        return Err(OpenError::Invalid);
    }
    if header.log_guid == Guid::ZERO || header.log_length == 0 {
        return Ok(false);
    }
    if !u64::from(header.log_length).is_multiple_of(LOG_MIN_SIZE) {
        return Err(OpenError::Invalid);
    }
    // vhdx_log_search: walk the whole buffer, taken as full, from 0.
    let length = u64::from(header.log_length);
    let sectors = length / u64::from(LOG_SECTOR_SIZE);
    let budget = sectors.saturating_mul(LOG_SEARCH_MAX_PASSES);
    let log = LogCursor { offset, length, read: 0, write: header.log_length, budget };
    search(file, log, &header.log_guid)
}

/// qemu's `vhdx_log_search` from `log`'s position, within its budget:
/// whether a valid sequence exists.
fn search(file: &ImageFile, mut log: LogCursor, log_guid: &Guid) -> Result<bool, OpenError> {
    let mut found = false;
    loop {
        let tail = log.read;
        if validate_entry(file, &mut log, 0, log_guid)?.is_some() {
            // qemu follows the sequence from the entry just found, then
            // scans on for a better candidate; any valid sequence at all
            // means a replay, but the scan must run to its end because a
            // malformed entry further on fails the open instead.
            found = true;
            let mut seq = 0;
            while let Some(h) = validate_entry(file, &mut log, seq, log_guid)? {
                seq = h.sequence_number;
            }
        }
        if log.read < tail {
            return Ok(found);
        }
        if log.read == tail {
            // Back where this pass started, having read the whole log:
            // qemu would read it again, the same way, for ever.
            return Err(OpenError::EndlessLog);
        }
    }
}

/// A log entry of one data sector, as `vhdx_log_write` makes it for a
/// write within one 4 KiB sector: `tail` and `seq` from the log's cursor,
/// `sector` the sector's new bytes, `home` where it goes, `file_length`
/// the file's length then. The entry header and
/// its descriptor in the first 4 KiB, the data sector in the second; the
/// checksum over both.
pub fn data_entry(
    tail: u64,
    seq: u64,
    guid: &Guid,
    sector: &[u8],
    home: u64,
    file_length: u64,
) -> Vec<u8> {
    let total = 2 * LOG_SECTOR_SIZE as usize;
    let mut e = vec![0u8; total];
    #[allow(clippy::cast_possible_truncation, reason = "qemu's uint32_t tail")]
    let tail = tail as u32;
    e[0..4].copy_from_slice(&LOG_SIGNATURE.to_le_bytes());
    e[8..12].copy_from_slice(&(LOG_SECTOR_SIZE * 2).to_le_bytes());
    e[12..16].copy_from_slice(&tail.to_le_bytes());
    e[16..24].copy_from_slice(&seq.to_le_bytes());
    e[24..28].copy_from_slice(&1u32.to_le_bytes());
    e[32..48].copy_from_slice(&guid.0);
    e[48..56].copy_from_slice(&file_length.to_le_bytes());
    e[56..64].copy_from_slice(&file_length.to_le_bytes());
    let d = LOG_HDR_SIZE;
    e[d..d + 4].copy_from_slice(&LOG_DESC_SIGNATURE.to_le_bytes());
    e[d + 4..d + 8].copy_from_slice(&sector[4092..4096]);
    e[d + 8..d + 16].copy_from_slice(&sector[..8]);
    e[d + 16..d + 24].copy_from_slice(&home.to_le_bytes());
    e[d + 24..d + LOG_DESC_SIZE].copy_from_slice(&seq.to_le_bytes());
    let s = LOG_SECTOR_SIZE as usize;
    #[allow(clippy::cast_possible_truncation, reason = "the high and low halves")]
    let (high, low) = ((seq >> 32) as u32, seq as u32);
    e[s..s + 4].copy_from_slice(&LOG_DATA_SIGNATURE.to_le_bytes());
    e[s + 4..s + 8].copy_from_slice(&high.to_le_bytes());
    e[s + 8..s + 8 + DATA_SECTOR_PAYLOAD].copy_from_slice(&sector[8..8 + DATA_SECTOR_PAYLOAD]);
    e[total - 4..].copy_from_slice(&low.to_le_bytes());
    header::update_checksum(&mut e, header::CHECKSUM_OFFSET);
    e
}

/// The 4 KiB sector a data descriptor `desc` (32 bytes) and its data
/// sector `data` carry (`vhdx_log_flush_desc`): the first 8 bytes from the
/// descriptor, 4084 from the data sector, the last 4 from the descriptor.
pub fn rebuild_sector(desc: &[u8], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; LOG_SECTOR_SIZE as usize];
    out[..8].copy_from_slice(&desc[8..16]);
    out[8..8 + DATA_SECTOR_PAYLOAD].copy_from_slice(&data[8..8 + DATA_SECTOR_PAYLOAD]);
    out[8 + DATA_SECTOR_PAYLOAD..].copy_from_slice(&desc[4..8]);
    out
}

/// The active sequence qemu's `vhdx_log_search` chooses: where its first
/// entry starts and where its last one ends in the log, its entries, and
/// its first entry's sequence number (the one candidates are ranked by).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sequence {
    /// Log position of the first entry.
    pub read: u32,
    /// Log position after the last entry.
    pub write: u32,
    /// Entries in the sequence.
    pub count: u64,
    /// The first entry's sequence number.
    pub first_sequence: u64,
}

/// The sequence a replay of the log described by `header` flushes
/// (qemu's `vhdx_log_search`), `None` when the log is empty or holds no
/// valid sequence; errors as [`needs_replay`]'s.
pub fn active_sequence(file: &ImageFile, header: &Header) -> Result<Option<Sequence>, OpenError> {
    if !needs_replay(file, header)? {
        return Ok(None);
    }
    let length = u64::from(header.log_length);
    let sectors = length / u64::from(LOG_SECTOR_SIZE);
    let budget = sectors.saturating_mul(LOG_SEARCH_MAX_PASSES);
    let mut log =
        LogCursor { offset: header.log_offset, length, read: 0, write: header.log_length, budget };
    let guid = header.log_guid;
    let mut candidate: Option<Sequence> = None;
    loop {
        let tail = log.read;
        if let Some(first) = validate_entry(file, &mut log, 0, &guid)? {
            let mut current = Sequence {
                read: tail,
                write: log.read,
                count: 1,
                first_sequence: first.sequence_number,
            };
            // qemu's inner loop starts again from sequence 0: the second
            // entry may have any number.
            let mut seq = 0;
            while let Some(h) = validate_entry(file, &mut log, seq, &guid)? {
                current.write = log.read;
                current.count += 1;
                seq = h.sequence_number;
            }
            if candidate.is_none_or(|c| current.first_sequence > c.first_sequence) {
                candidate = Some(current);
            }
        }
        if log.read < tail {
            return Ok(candidate);
        }
        if log.read == tail {
            return Err(OpenError::EndlessLog);
        }
    }
}

/// qemu's `vhdx_compute_desc_sectors`, for the replay.
pub fn descriptor_sectors(desc_count: u32) -> u32 {
    desc_sectors(desc_count)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 1 MiB log at offset 0 of an in-memory file whose first sector is
    /// `first`, the rest zeros, searched with `budget`.
    fn search_log(first: &[u8], budget: u64) -> Result<bool, OpenError> {
        let mut bytes = vec![0u8; 1 << 20];
        bytes[..first.len()].copy_from_slice(first);
        let file = ImageFile::from_bytes("log", bytes);
        let log = LogCursor { offset: 0, length: 1 << 20, read: 0, write: 1 << 20, budget };
        search(&file, log, &Guid([1; 16]))
    }

    /// An entry header with a bad checksum spanning `length` bytes.
    fn entry(length: u32) -> Vec<u8> {
        let mut e = vec![0u8; LOG_HDR_SIZE];
        e[0..4].copy_from_slice(b"loge");
        e[4..8].copy_from_slice(&0xdead_beef_u32.to_le_bytes());
        e[8..12].copy_from_slice(&length.to_le_bytes());
        e[16..24].copy_from_slice(&1u64.to_le_bytes());
        e[32..48].copy_from_slice(&[1; 16]);
        e
    }

    #[test]
    fn search_ends_on_an_entry_spanning_the_whole_log() {
        // qemu-img loops for ever here.
        assert!(matches!(search_log(&entry(1 << 20), 1 << 20), Err(OpenError::EndlessLog)));
        // One sector shorter, the search wraps past its start and ends.
        assert!(!search_log(&entry((1 << 20) - 4096), 1 << 20).unwrap());
        // An empty log is one pass of 256 sectors.
        assert!(!search_log(&[], 256).unwrap());
    }

    #[test]
    fn search_stops_when_its_budget_is_spent() {
        assert!(matches!(search_log(&[], 255), Err(OpenError::EndlessLog)));
    }

    #[test]
    fn descriptor_sectors_count_the_header() {
        assert_eq!(desc_sectors(0), 1);
        assert_eq!(desc_sectors(126), 1);
        assert_eq!(desc_sectors(127), 2);
        assert_eq!(desc_sectors(254), 2);
    }

    #[test]
    fn descriptors_are_checked_as_qemu_checks_them() {
        let hdr = LogEntryHeader {
            signature: LOG_SIGNATURE,
            checksum: 0,
            entry_length: 8192,
            sequence_number: 5,
            descriptor_count: 1,
            log_guid: Guid([1; 16]),
        };
        let mut d = [0u8; 32];
        d[0..4].copy_from_slice(b"zero");
        d[8..16].copy_from_slice(&4096u64.to_le_bytes()); // ZeroLength
        d[16..24].copy_from_slice(&8192u64.to_le_bytes()); // FileOffset
        d[24..32].copy_from_slice(&5u64.to_le_bytes()); // SequenceNumber
        assert!(desc_is_valid(&d, &hdr));
        d[8] = 1;
        assert!(!desc_is_valid(&d, &hdr));
        d[0..4].copy_from_slice(b"desc");
        assert!(desc_is_valid(&d, &hdr));
        d[24] = 6;
        assert!(!desc_is_valid(&d, &hdr));
    }

    #[test]
    fn a_log_entry_is_header_descriptor_and_data_sector() {
        let mut sector = vec![0u8; 4096];
        sector[..8].copy_from_slice(&0x80_0006u64.to_le_bytes());
        sector[4092..].copy_from_slice(b"TAIL");
        let e = data_entry(8192, 2, &Guid([7; 16]), &sector, 0x20_0000, 0x100_0000);
        assert_eq!(&e[0..4], b"loge");
        assert_eq!(u32::from_le_bytes(e[8..12].try_into().unwrap()), 8192);
        assert_eq!(u32::from_le_bytes(e[12..16].try_into().unwrap()), 8192);
        assert_eq!(u64::from_le_bytes(e[16..24].try_into().unwrap()), 2);
        assert_eq!(&e[64..68], b"desc");
        assert_eq!(&e[68..72], b"TAIL");
        assert_eq!(u64::from_le_bytes(e[72..80].try_into().unwrap()), 0x80_0006);
        assert_eq!(u64::from_le_bytes(e[80..88].try_into().unwrap()), 0x20_0000);
        assert_eq!(&e[4096..4100], b"data");
        assert_eq!(u32::from_le_bytes(e[8188..8192].try_into().unwrap()), 2);
        assert!(header::checksum_is_valid(&e, 4));
    }

    #[test]
    fn a_data_sector_is_rebuilt_from_its_descriptor() {
        let mut sector = vec![3u8; 4096];
        sector[..8].copy_from_slice(b"LEADING!");
        sector[4092..].copy_from_slice(b"TAIL");
        let e = data_entry(0, 1, &Guid([7; 16]), &sector, 0x20_0000, 0x100_0000);
        assert_eq!(rebuild_sector(&e[64..96], &e[4096..]), sector);
    }
}
