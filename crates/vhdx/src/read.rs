//! Reading a VHDX's guest data as qemu's `vhdx_co_readv` does.
//!
//! qemu's vhdx driver has no block status of its own (the block layer
//! reports every range as data, at no host offset) and no backing files
//! (it refuses a differencing image at open), so reading is all there is:
//! each payload block's BAT state says whether it reads as zeros (not
//! present, undefined, zero, unmapped in either spelling) or from the file
//! (fully present); any other state (partially present, which only a
//! differencing image may use, and the unassigned 4) fails the read with
//! `EIO`. qemu's driver reads whole 512-byte sectors, so the block layer
//! hands it a request widened to sectors.

use crate::bat::{
    BAT_FILE_OFFSET_MASK, BAT_STATE_BIT_MASK, PAYLOAD_BLOCK_FULLY_PRESENT,
    PAYLOAD_BLOCK_NOT_PRESENT, PAYLOAD_BLOCK_UNDEFINED, PAYLOAD_BLOCK_UNMAPPED,
    PAYLOAD_BLOCK_UNMAPPED_V095, PAYLOAD_BLOCK_ZERO,
};
use crate::metadata::SECTOR_SIZE;
use crate::open::VhdxImage;
use instar_core::bytes::le64;
use instar_core::file::eio;
use instar_core::Error;

/// The unit qemu's driver reads in (it has only the sector interface):
/// the block layer's `request_alignment` for vhdx.
pub const REQUEST_ALIGNMENT: u64 = SECTOR_SIZE as u64;

/// How a payload block reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Payload {
    /// As zeros.
    Zeros,
    /// From the file: the entry's file offset (0 for none).
    InFile(u64),
}

impl VhdxImage {
    /// How payload block `block` reads, from its BAT entry; `EIO` for a
    /// state qemu cannot read or a block past the table (only a disk
    /// whose block count overflows qemu's 32-bit count has one).
    fn payload(&self, block: u64) -> Result<Payload, Error> {
        let block = u32::try_from(block).map_err(|_| Error::errno(eio()))?;
        let index = self.geometry.index_of_block(block);
        let entry = self.bat.entry(&self.file, index, |raw| le64(raw, 0)).map_err(Error::errno)?;
        match entry.map(|e| (e & BAT_STATE_BIT_MASK, e & BAT_FILE_OFFSET_MASK)) {
            Some((
                PAYLOAD_BLOCK_NOT_PRESENT
                | PAYLOAD_BLOCK_UNDEFINED
                | PAYLOAD_BLOCK_ZERO
                | PAYLOAD_BLOCK_UNMAPPED
                | PAYLOAD_BLOCK_UNMAPPED_V095,
                _,
            )) => Ok(Payload::Zeros),
            Some((PAYLOAD_BLOCK_FULLY_PRESENT, offset)) => Ok(Payload::InFile(offset)),
            _ => Err(Error::errno(eio())),
        }
    }

    /// Whether the guest data at `offset` begin with blocks that read as
    /// zeros (absent, zero, unmapped), and for how many of the `bytes`
    /// bytes: the blocks from `offset` in the same state, the walk bounded
    /// by `bytes`. A block whose entry cannot be read counts as read
    /// (its read gives the error).
    pub fn zero_run(&self, offset: u64, bytes: u64) -> (bool, u64) {
        let block_size = u64::from(self.block_size);
        let zeros = |at: u64| matches!(self.payload(at / block_size), Ok(Payload::Zeros));
        let first = zeros(offset);
        let mut run = block_size - offset % block_size;
        while run < bytes && zeros(offset + run) == first {
            run += block_size;
        }
        (first, run.min(bytes))
    }

    /// Fills `buf` with the guest data at `offset`, block by block.
    ///
    /// A fully present block whose entry has file offset 0 is read as
    /// qemu reads it: qemu skips adding the offset within the block when
    /// the block's offset is 0, so each request's part in that block reads
    /// the file from its start. Where that part starts depends on the
    /// request (widened to sectors, as the block layer widens it), so this
    /// is the one case where the data depends on how the caller splits
    /// its reads; it is qemu's answer for every split.
    pub fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), Error> {
        let block_size = u64::from(self.block_size);
        let request_start = offset - offset % REQUEST_ALIGNMENT;
        let mut done = 0;
        while done < buf.len() {
            let at = offset.checked_add(done as u64).ok_or_else(|| Error::errno(eio()))?;
            let in_block = at % block_size;
            let n = (block_size - in_block).min((buf.len() - done) as u64);
            #[allow(clippy::cast_possible_truncation, reason = "at most the buffer's length")]
            let part = &mut buf[done..done + n as usize];
            match self.payload(at / block_size)? {
                Payload::Zeros => part.fill(0),
                Payload::InFile(0) => {
                    let part_start = request_start.max(at - in_block);
                    self.file.read_at(at - part_start, part).map_err(Error::errno)?;
                }
                Payload::InFile(block_offset) => {
                    // The open bounded fully present offsets below
                    // `i64::MAX - block_size`.
                    let host =
                        block_offset.checked_add(in_block).ok_or_else(|| Error::errno(eio()))?;
                    self.file.read_at(host, part).map_err(Error::errno)?;
                }
            }
            done += part.len();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bat::{PAYLOAD_BLOCK_PARTIALLY_PRESENT, PAYLOAD_BLOCK_UNMAPPED};
    use crate::create::create;
    use instar_core::opts::FILE_PROTOCOL_OPTS;
    use instar_core::{CreateRequest, ImageFile, OpenFlags, Options};

    const MIB: u64 = 1 << 20;
    /// [`MIB`] as a length.
    const MIB_LEN: usize = 1 << 20;

    /// A new dynamic 8 MiB image with 1 MiB blocks, as instar (and qemu)
    /// create it, with block `data_block` fully present at the end of the
    /// file (every byte 0x5A), and where its BAT is.
    fn image_with_data(data_block: usize) -> (Vec<u8>, usize) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.vhdx");
        let name = path.to_str().unwrap();
        let mut o = Options::new(&[crate::CREATE_OPTS, FILE_PROTOCOL_OPTS]);
        o.parse("block_size=1M").unwrap();
        o.set_number("size", 8 * MIB);
        let req = CreateRequest {
            filename: name,
            options: &o,
            probe: |_| "raw",
            dialect: Default::default(),
        };
        create(&req).unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        let data_at = bytes.len() as u64;
        assert_eq!(data_at % MIB, 0);
        bytes.extend(std::iter::repeat_n(0x5A, 1 << 20));
        let bat = usize::try_from(open(bytes.clone()).bat_region.file_offset).unwrap();
        set(&mut bytes, bat, data_block, data_at | PAYLOAD_BLOCK_FULLY_PRESENT);
        (bytes, bat)
    }

    /// Sets the BAT entry of payload block `block` (below the chunk
    /// ratio, so its index) to `entry`.
    fn set(bytes: &mut [u8], bat: usize, block: usize, entry: u64) {
        let at = bat + 8 * block;
        bytes[at..at + 8].copy_from_slice(&entry.to_le_bytes());
    }

    fn open(bytes: Vec<u8>) -> VhdxImage {
        let flags = OpenFlags { check: false, no_io: false, ..OpenFlags::INFO };
        crate::open::open(ImageFile::from_bytes("t", bytes), flags).unwrap()
    }

    #[test]
    fn block_states_read_as_qemu_reads_them() {
        let (mut bytes, bat) = image_with_data(2);
        for (block, state) in [
            (0, PAYLOAD_BLOCK_NOT_PRESENT),
            (1, PAYLOAD_BLOCK_UNDEFINED),
            (3, PAYLOAD_BLOCK_UNMAPPED),
            (4, PAYLOAD_BLOCK_UNMAPPED_V095),
            (5, 4),
            (6, PAYLOAD_BLOCK_PARTIALLY_PRESENT),
        ] {
            // The offset of a state without data is ignored.
            set(&mut bytes, bat, block, (9 * MIB) | state);
        }
        let image = open(bytes);
        let mut buf = vec![0xEE; 3 * MIB_LEN];
        image.read(100, &mut buf).unwrap();
        let (zeros, data) = buf.split_at(2 * MIB_LEN - 100);
        assert!(zeros.iter().all(|&b| b == 0));
        assert!(data[..MIB_LEN].iter().all(|&b| b == 0x5A));
        assert!(data[MIB_LEN..].iter().all(|&b| b == 0));
        for block in [5, 6] {
            let err = image.read(block * MIB + 4096, &mut [0; 512]).unwrap_err();
            assert_eq!(err.raw_os_error(), Some(5), "block {block}");
        }
        // A read that reaches a block qemu cannot read fails whole.
        assert!(image.read(5 * MIB - 512, &mut [0; 1024]).is_err());
    }

    #[test]
    fn a_present_block_at_offset_0_reads_the_file_from_its_start() {
        let (mut bytes, bat) = image_with_data(2);
        set(&mut bytes, bat, 0, PAYLOAD_BLOCK_FULLY_PRESENT);
        let file_start = bytes[..2048].to_vec();
        let image = open(bytes);
        let mut buf = [0; 16];
        // qemu-io's `read -v 0 16`, `read -v 520 16` and `read -v 1040 16`
        // on such an image print the file's bytes at 0, 8 and 16: each
        // request, widened to sectors, reads the file from its start.
        for (guest, file) in [(0, 0), (520, 8), (1040, 16)] {
            image.read(guest, &mut buf).unwrap();
            assert_eq!(&buf, &file_start[file..file + 16], "guest offset {guest}");
        }
    }
}
