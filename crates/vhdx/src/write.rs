//! Writing a VHDX as convert's target, as qemu's `vhdx_co_writev` writes.
//!
//! A payload block not yet present is allocated the first time a write
//! touches it: the file grows to the next MiB boundary plus one block
//! (qemu's truncate, which reads as zeros), the data goes in, and the new
//! BAT entry goes to the file through the log (`vhdx_log_write_and_flush`):
//! a log entry holding the BAT's whole 4 KiB sector is appended to the
//! log, then that sector is written in place. The log keeps every entry
//! written (qemu's read and write positions end up after each entry), so
//! it is part of the file qemu-img leaves.
//!
//! The headers change too: on the first guest write (a new data write
//! GUID), and around each log entry (its log GUID, then none). Their
//! sequence numbers and GUIDs are random or count updates, so only their
//! shape is reproduced. qemu's own BAT in memory is what the writes
//! consult; the file's BAT is what the log entries copy from (5.2.0's
//! log misplaces the rest of a sector whose first entry changes:
//! [`VHDX_LOG_TRAILING_SECTOR_FIX`]).

use crate::bat::{
    BAT_ENTRY_SIZE, BAT_FILE_OFFSET_MASK, BAT_STATE_BIT_MASK, PAYLOAD_BLOCK_FULLY_PRESENT,
    PAYLOAD_BLOCK_NOT_PRESENT, PAYLOAD_BLOCK_UNDEFINED, PAYLOAD_BLOCK_UNMAPPED,
    PAYLOAD_BLOCK_UNMAPPED_V095, PAYLOAD_BLOCK_ZERO,
};
use crate::error::OpenError;
use crate::guid::Guid;
use crate::header::{self, Header, HEADER1_OFFSET, HEADER2_OFFSET, HEADER_SIZE};
use crate::log::{LOG_DESC_SIGNATURE, LOG_DESC_SIZE, LOG_HDR_SIZE, LOG_SECTOR_SIZE};
use instar_core::dialect::VHDX_LOG_TRAILING_SECTOR_FIX;
use instar_core::{Error, ImageFile, ImageWriter, OpenFlags, QemuDialect, TargetFile, WriteLimits};
use std::collections::BTreeMap;
use std::io;

/// qemu's `BDRV_SECTOR_SIZE`: the unit of its sector-based write call.
const SECTOR: u64 = 512;

/// Payload blocks start on 1 MiB boundaries, past the header section.
const MIB: u64 = 1 << 20;

/// The log's 4 KiB sector, as a length.
const LOG_SECTOR: u64 = LOG_SECTOR_SIZE as u64;

/// errno values of qemu's vhdx write path.
const EIO: i32 = 5;
const EFAULT: i32 = 14;
const EINVAL: i32 = 22;
const ENOTSUP: i32 = 95;

fn errno(code: i32) -> Error {
    Error::errno(io::Error::from_raw_os_error(code))
}

/// The log's cursor (`VHDXLogEntries`).
#[derive(Debug, Default, Clone, Copy)]
struct LogCursor {
    offset: u64,
    length: u64,
    read: u64,
    write: u64,
    tail: u64,
    sequence: u64,
}

/// A VHDX opened for writing.
#[derive(Debug)]
pub struct VhdxWriter {
    file: TargetFile,
    dialect: QemuDialect,
    /// Both headers as qemu holds them, and which one is current.
    headers: [Header; 2],
    current: usize,
    /// The GUID each header update writes as FileWriteGuid.
    session_guid: Guid,
    /// `first_visible_write`.
    first_write: bool,
    log: LogCursor,
    /// Where the BAT is, and how many entries qemu holds.
    bat_offset: u64,
    bat_entries: u64,
    /// qemu's in-memory BAT where it differs from, or can no longer be
    /// read back from, the file as opened.
    held: BTreeMap<u64, u64>,
    /// The file's length when opened: the BAT read then saw zeros past it.
    opened_len: u64,
    block_size: u64,
    chunk_ratio_bits: u32,
    logical_sector_size: u32,
    disk_bytes: u64,
}

impl VhdxWriter {
    /// Opens the VHDX `name` for writing with `vhdx_open`'s checks.
    pub fn open(name: &str, dialect: QemuDialect) -> Result<VhdxWriter, Error> {
        let flags = OpenFlags::READ.in_dialect(dialect);
        let read = ImageFile::open(name).map_err(|e| Error::open_errno(name, e))?;
        let mut writer = VhdxWriter {
            file: TargetFile::open(name).map_err(|e| Error::open_errno(name, e))?,
            dialect,
            headers: [Header::from_bytes(&[0; HEADER_SIZE]); 2],
            current: 0,
            // qemu draws it before it reads the headers, and uses it for
            // every header update, the log replay's included.
            session_guid: Guid::random().map_err(Error::errno)?,
            first_write: true,
            log: LogCursor::default(),
            bat_offset: 0,
            bat_entries: 0,
            held: BTreeMap::new(),
            opened_len: 0,
            block_size: 0,
            chunk_ratio_bits: 0,
            logical_sector_size: 0,
            disk_bytes: 0,
        };
        let image = match crate::open::open(read, flags) {
            Err(f) if matches!(f.error, OpenError::NeedsReplay) => {
                // Opened for writing, qemu replays the log (before it
                // reads the region tables), then opens on.
                writer.read_headers()?;
                writer.replay(name).map_err(|e| e.into_error(name))?;
                let again = ImageFile::open(name).map_err(|e| Error::open_errno(name, e))?;
                crate::open::open(again, flags).map_err(|f| f.into_error(name))?
            }
            other => other.map_err(|f| f.into_error(name))?,
        };
        writer.read_headers()?;
        writer.log.offset = image.header.log_offset;
        writer.log.length = u64::from(image.header.log_length);
        writer.bat_offset = image.bat_region.file_offset;
        writer.bat_entries = u64::from(image.geometry.entries);
        writer.opened_len = image.file.len();
        writer.block_size = u64::from(image.block_size);
        writer.chunk_ratio_bits = image.geometry.chunk_ratio_bits;
        writer.logical_sector_size = image.logical_sector_size;
        writer.disk_bytes = image.disk_bytes();
        Ok(writer)
    }

    /// Both headers from the file, and which is current.
    fn read_headers(&mut self) -> Result<(), Error> {
        let mut h = [vec![0u8; HEADER_SIZE], vec![0u8; HEADER_SIZE]];
        self.file.read_at(HEADER1_OFFSET, &mut h[0]).map_err(Error::errno)?;
        self.file.read_at(HEADER2_OFFSET, &mut h[1]).map_err(Error::errno)?;
        let (current, _) = header::choose_current(&h[0], &h[1]).ok_or_else(|| errno(EINVAL))?;
        self.headers = [Header::from_bytes(&h[0]), Header::from_bytes(&h[1])];
        self.current = current;
        Ok(())
    }

    /// qemu's replay of the log at an open for writing (`vhdx_parse_log`,
    /// `vhdx_log_flush`): the active sequence's sectors written home
    /// (data sectors rebuilt from their descriptors, zero descriptors as
    /// zeros), the file grown to the last entry's `LastFileOffset` where
    /// that is not a whole MiB, the headers updated (the first guest
    /// write's update among them), the log marked empty. Later log
    /// entries continue the replayed sequence's numbers.
    fn replay(&mut self, name: &str) -> Result<(), OpenError> {
        let h = self.headers[self.current];
        let read = ImageFile::open(name)?;
        let Some(seq) = crate::log::active_sequence(&read, &h)? else { return Ok(()) };
        let (offset, length) = (h.log_offset, u64::from(h.log_length));
        let invalid = || OpenError::Invalid;
        self.visible_write().map_err(|_| invalid())?;
        let mut pos = u64::from(seq.read);
        let end = u64::from(seq.write);
        let next = |p: u64| if p + LOG_SECTOR >= length { 0 } else { p + LOG_SECTOR };
        let mut sector = vec![0u8; LOG_SECTOR_SIZE as usize];
        for _ in 0..seq.count {
            if pos + LOG_HDR_SIZE as u64 > length {
                pos = 0;
            }
            if pos == end {
                return Err(invalid());
            }
            let mut head = [0u8; LOG_HDR_SIZE];
            self.file.read_at(offset + pos, &mut head)?;
            let file_length = self.file.len()?;
            let flushed = u64::from_le_bytes(head[48..56].try_into().map_err(|_| invalid())?);
            let last = u64::from_le_bytes(head[56..64].try_into().map_err(|_| invalid())?);
            if flushed > file_length {
                return Err(invalid());
            }
            let entry = crate::log::LogEntryHeader::from_bytes(&head);
            let n_desc = crate::log::descriptor_sectors(entry.descriptor_count);
            // The descriptor sectors, bounded by the log's length.
            let mut descs = Vec::new();
            for _ in 0..n_desc {
                if pos == end {
                    return Err(invalid());
                }
                self.file.read_at(offset + pos, &mut sector)?;
                descs.extend_from_slice(&sector);
                pos = next(pos);
            }
            let count = usize::try_from(entry.descriptor_count).map_err(|_| invalid())?;
            for i in 0..count {
                let at = LOG_HDR_SIZE + i * LOG_DESC_SIZE;
                let d = descs.get(at..at + LOG_DESC_SIZE).ok_or_else(invalid)?;
                let signature = u32::from_le_bytes(d[0..4].try_into().map_err(|_| invalid())?);
                let home = u64::from_le_bytes(d[16..24].try_into().map_err(|_| invalid())?);
                let dseq = u64::from_le_bytes(d[24..32].try_into().map_err(|_| invalid())?);
                if signature == LOG_DESC_SIGNATURE {
                    if pos == end {
                        return Err(invalid());
                    }
                    self.file.read_at(offset + pos, &mut sector)?;
                    pos = next(pos);
                    let high = u32::from_le_bytes(sector[4..8].try_into().map_err(|_| invalid())?);
                    let low = u32::from_le_bytes(sector[4092..].try_into().map_err(|_| invalid())?);
                    if (u64::from(high) << 32 | u64::from(low)) != dseq {
                        return Err(invalid());
                    }
                    self.file.write_at(home, &crate::log::rebuild_sector(d, &sector))?;
                } else {
                    let zero_length =
                        u64::from_le_bytes(d[8..16].try_into().map_err(|_| invalid())?);
                    // qemu writes the zeros a sector at a time wherever the
                    // descriptor says; instar refuses a range past what the
                    // file is or the entry says it grows to, which qemu
                    // would take hours or days to fill.
                    let limit = file_length.max(last);
                    if home.checked_add(zero_length).is_none_or(|e| e > limit) {
                        return Err(invalid());
                    }
                    let zeros = vec![0u8; LOG_SECTOR_SIZE as usize];
                    for k in 0..zero_length / LOG_SECTOR {
                        self.file.write_at(home + k * LOG_SECTOR, &zeros)?;
                    }
                }
            }
            if file_length < last && last % MIB != 0 {
                let grown = last.div_ceil(MIB).checked_mul(MIB).ok_or_else(invalid)?;
                if grown > i64::MAX as u64 {
                    return Err(invalid());
                }
                self.file.set_len(grown)?;
            }
        }
        self.update_headers(false, Some(Guid::ZERO)).map_err(|_| invalid())?;
        self.log.sequence = seq.first_sequence.wrapping_add(1);
        Ok(())
    }

    /// BAT entry `index` as qemu holds it.
    fn bat(&self, index: u64) -> Result<u64, Error> {
        if let Some(&v) = self.held.get(&index) {
            return Ok(v);
        }
        if index >= self.bat_entries {
            return Ok(0);
        }
        let at = self.bat_offset + index * BAT_ENTRY_SIZE;
        let mut raw = [0u8; 8];
        self.file.read_at(at, &mut raw).map_err(Error::errno)?;
        for (i, b) in raw.iter_mut().enumerate() {
            if at + i as u64 >= self.opened_len {
                *b = 0;
            }
        }
        Ok(u64::from_le_bytes(raw))
    }

    /// Writes `buf` at `offset` of the file, first keeping the BAT entries
    /// it covers as qemu holds them (it read the BAT once, at open).
    fn put(&mut self, offset: u64, buf: &[u8]) -> Result<(), Error> {
        let table_end = self.bat_offset + self.bat_entries * BAT_ENTRY_SIZE;
        let end = offset.saturating_add(buf.len() as u64);
        if end > self.bat_offset && offset < table_end {
            let first = offset.saturating_sub(self.bat_offset) / BAT_ENTRY_SIZE;
            let last = (end.min(table_end) - self.bat_offset).div_ceil(BAT_ENTRY_SIZE);
            for index in first..last {
                if !self.held.contains_key(&index) {
                    let value = self.bat(index)?;
                    self.held.insert(index, value);
                }
            }
        }
        self.file.write_at(offset, buf).map_err(Error::errno)
    }

    /// `vhdx_update_header`: the other header becomes current, one
    /// sequence number on, written over its 4 KiB as read.
    fn update_header(&mut self, new_data_guid: bool, log_guid: Option<Guid>) -> Result<(), Error> {
        let next = 1 - self.current;
        let seq = self.headers[self.current].sequence_number.wrapping_add(1);
        let mut h = self.headers[next];
        h.sequence_number = seq;
        h.file_write_guid = self.session_guid;
        if new_data_guid {
            h.data_write_guid = Guid::random().map_err(Error::errno)?;
        }
        if let Some(g) = log_guid {
            h.log_guid = g;
        }
        let at = if next == 0 { HEADER1_OFFSET } else { HEADER2_OFFSET };
        let mut block = vec![0u8; HEADER_SIZE];
        self.file.read_at(at, &mut block).map_err(Error::errno)?;
        let fields = h.to_bytes();
        block[..header::HEADER_STRUCT_LEN].copy_from_slice(&fields[..header::HEADER_STRUCT_LEN]);
        header::update_checksum(&mut block, header::CHECKSUM_OFFSET);
        self.put(at, &block)?;
        self.headers[next] = h;
        self.current = next;
        Ok(())
    }

    /// `vhdx_update_headers`: both, one after the other.
    fn update_headers(&mut self, new_data_guid: bool, log_guid: Option<Guid>) -> Result<(), Error> {
        self.update_header(new_data_guid, log_guid)?;
        self.update_header(new_data_guid, log_guid)
    }

    /// `vhdx_user_visible_write`.
    fn visible_write(&mut self) -> Result<(), Error> {
        if self.first_write {
            self.first_write = false;
            self.update_headers(true, None)?;
        }
        Ok(())
    }

    /// `vhdx_allocate_block`: the file grown to the next MiB plus a block;
    /// returns where the block starts.
    fn allocate_block(&mut self) -> Result<u64, Error> {
        let len = self.file.len().map_err(Error::errno)?;
        let at = len.div_ceil(MIB).checked_mul(MIB).ok_or_else(|| errno(EINVAL))?;
        let end = at.checked_add(self.block_size).ok_or_else(|| errno(EINVAL))?;
        if end > i64::MAX as u64 {
            return Err(errno(EINVAL));
        }
        self.file.set_len(end).map_err(Error::errno)?;
        Ok(at)
    }

    /// `vhdx_log_write_and_flush` of `data` (a BAT entry) at `offset`:
    /// one log entry appended, then the sector it carries written home,
    /// then the log marked empty in the headers.
    fn log_write_and_flush(&mut self, data: &[u8; 8], offset: u64) -> Result<(), Error> {
        if self.headers[self.current].log_guid != Guid::ZERO {
            // qemu flushes its log after every entry: one left over means
            // a log it did not write.
            return Err(errno(ENOTSUP));
        }
        if (data.len() as u64) > u64::from(self.headers[self.current].log_length) {
            return Err(errno(EINVAL));
        }
        let guid = Guid::random().map_err(Error::errno)?;
        self.update_headers(false, Some(guid))?;
        if self.log.sequence == 0 {
            self.log.sequence = 1;
        }
        let sector_offset = offset % LOG_SECTOR;
        let home = offset - sector_offset;
        #[allow(clippy::cast_possible_truncation, reason = "within a 4 KiB sector")]
        let at = sector_offset as usize;
        let mut merged = vec![0u8; LOG_SECTOR_SIZE as usize];
        if at != 0 {
            // The entry inside the sector: the sector as the file has it,
            // the entry put in.
            self.file.read_at(home, &mut merged).map_err(Error::errno)?;
            merged[at..at + data.len()].copy_from_slice(data);
        } else {
            // The entry first: the rest of the sector from the file after
            // it, or, before qemu's fix, from the sector's start.
            let from = if self.dialect.has(VHDX_LOG_TRAILING_SECTOR_FIX) {
                home + data.len() as u64
            } else {
                home
            };
            self.file.read_at(from, &mut merged[data.len()..]).map_err(Error::errno)?;
            merged[..data.len()].copy_from_slice(data);
        }
        let file_length = self.file.len().map_err(Error::errno)?;
        let entry = crate::log::data_entry(
            self.log.tail,
            self.log.sequence,
            &guid,
            &merged,
            home,
            file_length,
        );
        // vhdx_log_write_sectors: sector by sector, refusing to fill the
        // log up to its read position.
        let mut write = self.log.write;
        for sector in entry.chunks(LOG_SECTOR_SIZE as usize) {
            let at = self.log.offset + write;
            write += LOG_SECTOR;
            if write >= self.log.length {
                write = 0;
            }
            if write == self.log.read {
                return Err(errno(EINVAL));
            }
            self.put(at, sector)?;
            self.log.write = write;
        }
        self.log.sequence += 1;
        self.log.tail = self.log.write;
        // The flush replays the entry just written: its sector goes home,
        // and the log reads up to where it was written.
        self.put(home, &merged)?;
        self.log.read = self.log.write;
        self.update_headers(false, Some(Guid::ZERO))
    }

    /// `vhdx_co_writev` of whole sectors.
    fn writev(&mut self, mut offset: u64, mut data: &[u8]) -> Result<(), Error> {
        self.visible_write()?;
        if self.logical_sector_size as u64 != SECTOR {
            // qemu counts the block layer's 512-byte sectors as logical
            // sectors; instar writes only the 512-byte kind it creates.
            return Err(errno(ENOTSUP));
        }
        while !data.is_empty() {
            let block = offset / self.block_size;
            let index = block + block.checked_shr(self.chunk_ratio_bits).unwrap_or(0);
            let within = offset % self.block_size;
            #[allow(clippy::cast_possible_truncation, reason = "at most the data's length")]
            let n = (self.block_size - within).min(data.len() as u64) as usize;
            let entry = self.bat(index)?;
            let state = entry & BAT_STATE_BIT_MASK;
            let mut new_entry = None;
            let host = match state {
                PAYLOAD_BLOCK_ZERO
                | PAYLOAD_BLOCK_NOT_PRESENT
                | PAYLOAD_BLOCK_UNMAPPED
                | PAYLOAD_BLOCK_UNMAPPED_V095
                | PAYLOAD_BLOCK_UNDEFINED => {
                    let at = self.allocate_block()?;
                    let value = at | PAYLOAD_BLOCK_FULLY_PRESENT;
                    self.held.insert(index, value);
                    new_entry = Some(value);
                    at + within
                }
                PAYLOAD_BLOCK_FULLY_PRESENT => (entry & BAT_FILE_OFFSET_MASK) + within,
                _ => return Err(errno(EIO)),
            };
            if host < MIB {
                if new_entry.is_some() {
                    self.held.insert(index, entry);
                }
                return Err(errno(EFAULT));
            }
            if let Err(e) = self.put(host, &data[..n]) {
                if new_entry.is_some() {
                    self.held.insert(index, entry);
                }
                return Err(e);
            }
            if let Some(value) = new_entry {
                let at = self.bat_offset + index * BAT_ENTRY_SIZE;
                self.log_write_and_flush(&value.to_le_bytes(), at)?;
            }
            offset += n as u64;
            data = &data[n..];
        }
        Ok(())
    }
}

impl ImageWriter for VhdxWriter {
    fn len(&self) -> u64 {
        self.disk_bytes
    }

    /// `vhdx_has_zero_init`: a dynamic image reads zeros where nothing was
    /// written; a fixed one (first entry present) is its file, a regular
    /// file: zeros too.
    fn has_zero_init(&self) -> bool {
        true
    }

    /// vhdx writes whole sectors only (`bdrv_co_writev`).
    fn limits(&self) -> WriteLimits {
        WriteLimits { request_alignment: SECTOR, pdiscard_alignment: 0 }
    }

    /// `vhdx_co_get_info`: the block size.
    fn cluster_size(&self) -> Option<u64> {
        Some(self.block_size)
    }

    fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), Error> {
        self.writev(offset, data)
    }

    /// The block layer's zero write for a driver without one: zeros
    /// through the write path, a bounce buffer at a time.
    fn write_zeroes(&mut self, offset: u64, bytes: u64) -> Result<(), Error> {
        instar_core::write::zeros_through_writes(offset, bytes, |at, zeros| self.writev(at, zeros))
    }

    fn close(self: Box<Self>) -> Result<(), Error> {
        Ok(())
    }
}
