//! The read layer: an image and its backing chain as one guest-visible
//! disk. This is qemu's generic block status code (`block/io.c`:
//! `bdrv_co_do_block_status`, `bdrv_co_common_block_status_above`) over
//! the drivers' own answers ([`Image::block_status`]), and reads that take
//! each range from the layer that holds it. `map`, `compare`, `measure`
//! and `convert` are built on it; none of them knows a format.

use crate::open::{open, Opened, Target};
use instar_core::file::eio;
use instar_core::{Diagnostic, Error, Host, Image, ImageFile, OpenFlags, Status};

/// The most bytes one read of the chain asks a driver for at once; reads
/// of longer ranges are split (qemu's block layer splits at its own
/// `max_transfer` too).
const READ_CHUNK: u64 = 1 << 30;

/// What the block layer answers for a range of one layer or of the chain:
/// qemu's return value, `*pnum`, `*map` and `*file`.
#[derive(Debug, Clone, Copy)]
pub struct BlockStatus<'a> {
    /// The status bits, `ALLOCATED` and `EOF` included.
    pub status: Status,
    /// How many bytes from the offset share it (0 only at or past the end).
    pub bytes: u64,
    /// With `OFFSET_VALID`: the host file and offset.
    pub host: Option<Host<'a>>,
}

/// An image opened with its backing chain, top first: the disk a guest
/// would see.
pub struct Chain {
    /// The images, the one named first, then its backing file, and so on.
    layers: Vec<Box<dyn Image>>,
    /// Each layer's length as qemu's block layer has it
    /// (`bdrv_getlength`).
    lengths: Vec<u64>,
}

impl Chain {
    /// Opens the image `target` names with its backing chain, as qemu-img
    /// opens the image of a command that reads guest data (`flags`,
    /// usually [`OpenFlags::READ`] in the command's dialect). Returns the
    /// chain, what opening it printed on stderr, and the opened top image.
    pub fn open(
        target: Target<'_>,
        flags: OpenFlags,
    ) -> Result<(Chain, Vec<Diagnostic>, &'static dyn instar_core::Format), Error> {
        let (opened, _path) = open(target, flags, true)?;
        let Opened { format, image, warnings, backing, .. } = opened;
        let mut layers = vec![image];
        layers.extend(backing);
        Ok((Chain::new(layers), warnings, format))
    }

    /// The chain of already opened `layers`, top first.
    pub fn new(layers: Vec<Box<dyn Image>>) -> Chain {
        let lengths = layers.iter().map(|l| l.virtual_size()).collect();
        Chain { layers, lengths }
    }

    /// The guest-visible size (the top image's).
    pub fn len(&self) -> u64 {
        self.lengths.first().copied().unwrap_or(0)
    }

    /// The guest-visible size as qemu's `blk_getlength` reports it: the
    /// top image's [`Image::byte_length`], which may fail.
    pub fn byte_length(&self) -> Result<u64, Error> {
        self.layers.first().map_or(Ok(0), |l| l.byte_length())
    }

    /// Whether the disk is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many layers the chain has (the top image counts as one).
    pub fn depth(&self) -> usize {
        self.layers.len()
    }

    /// The layer at `depth` (0: the top image).
    pub fn layer(&self, depth: usize) -> Option<&dyn Image> {
        self.layers.get(depth).map(AsRef::as_ref)
    }

    /// The top image, to change how it reads ([`Chain::load_snapshot`]).
    pub(crate) fn top_mut(&mut self) -> Option<&mut Box<dyn Image>> {
        self.layers.first_mut()
    }

    /// What the layers printed on stderr while answering block status or
    /// reads that did not fail ([`Image::take_printed`]), top first; a
    /// command prints it after each call that may have printed.
    pub fn take_printed(&self) -> Vec<Diagnostic> {
        self.layers.iter().flat_map(|l| l.take_printed()).collect()
    }

    /// qemu's `bdrv_co_do_block_status` of the layer at `depth`: the
    /// driver's answer for `bytes` bytes at `offset`, aligned to what the
    /// driver answers in, with the protocol layer's holes looked up where
    /// the driver passes the range through (`RAW`) or asks for it
    /// (`RECURSE`), `ALLOCATED` for a range the layer holds, `ZERO` for one
    /// it leaves to a backing file it lacks or that is shorter than
    /// `offset`, and `EOF` for a range that ends the layer.
    pub fn layer_status(
        &self,
        depth: usize,
        want_zero: bool,
        offset: u64,
        bytes: u64,
    ) -> Result<BlockStatus<'_>, Error> {
        let (Some(image), Some(&total)) = (self.layers.get(depth), self.lengths.get(depth)) else {
            return Err(Error::errno(eio()));
        };
        if offset >= total {
            return Ok(BlockStatus { status: Status::EOF, bytes: 0, host: None });
        }
        if bytes == 0 {
            return Ok(BlockStatus { status: Status::NONE, bytes: 0, host: None });
        }
        let bytes = bytes.min(total - offset);
        let eof = |st: BlockStatus<'_>| -> bool { offset + st.bytes == total };
        if !image.has_block_status() {
            // A driver without block status: all data of this layer.
            let mut status = Status::DATA | Status::ALLOCATED;
            if offset + bytes == total {
                status |= Status::EOF;
            }
            return Ok(BlockStatus { status, bytes, host: None });
        }
        let align = image.request_alignment().max(1);
        let aligned_offset = offset - offset % align;
        let aligned_end = (offset + bytes).div_ceil(align).saturating_mul(align);
        let mapping =
            image.block_status(want_zero, aligned_offset, aligned_end - aligned_offset)?;
        let skew = offset - aligned_offset;
        if mapping.bytes <= skew {
            // qemu asserts this never happens; a driver that answered
            // nothing would loop its caller forever.
            return Err(Error::errno(eio()));
        }
        let pnum = (mapping.bytes - skew).min(bytes);
        let host = mapping.host.map(|h| Host { file: h.file, offset: h.offset + skew });
        let mut st = BlockStatus { status: mapping.status, bytes: pnum, host };
        if st.status.contains(Status::RAW) {
            let Some(host) = st.host else {
                return Err(Error::errno(eio()));
            };
            let mut inner = file_status(host.file, want_zero, host.offset, pnum)?;
            if offset + inner.bytes == total {
                inner.status |= Status::EOF;
            }
            return Ok(inner);
        }
        if st.status.intersects(Status::DATA | Status::ZERO) {
            st.status |= Status::ALLOCATED;
        } else if image.supports_backing() {
            match self.lengths.get(depth + 1) {
                None => st.status |= Status::ZERO,
                Some(&below) if want_zero && offset >= below => st.status |= Status::ZERO,
                Some(_) => {}
            }
        }
        if want_zero
            && st.status.contains(Status::RECURSE | Status::DATA | Status::OFFSET_VALID)
            && !st.status.contains(Status::ZERO)
        {
            if let Some(host) = st.host {
                // Extra information only: qemu ignores a failure here.
                if let Ok(inner) = file_status(host.file, want_zero, host.offset, st.bytes) {
                    if inner.status.contains(Status::EOF)
                        && (inner.bytes == 0 || inner.status.contains(Status::ZERO))
                    {
                        // A format may read past the end of its file:
                        // that reads as zeros.
                        st.status |= Status::ZERO;
                    } else {
                        st.bytes = inner.bytes;
                        st.status |= inner.status & Status::ZERO;
                    }
                }
            }
            st.status = st.status.without(Status::RECURSE);
        }
        if eof(st) {
            st.status |= Status::EOF;
        }
        Ok(st)
    }

    /// qemu's `bdrv_co_common_block_status_above` from the layer at
    /// `depth` down to the bottom of the chain: the status of the first
    /// layer that holds the range (a layer shorter than the offset holds
    /// it as zeros), and the depth below `depth` it was found at (1: the
    /// layer itself), as qemu's `*depth` counts.
    pub fn status_above(
        &self,
        depth: usize,
        want_zero: bool,
        offset: u64,
        bytes: u64,
    ) -> Result<(BlockStatus<'_>, usize), Error> {
        let first = self.layer_status(depth, want_zero, offset, bytes)?;
        let mut found = 1;
        if first.bytes == 0
            || first.status.contains(Status::ALLOCATED)
            || depth + 1 >= self.layers.len()
        {
            return Ok((first, found));
        }
        let eof = first.status.contains(Status::EOF).then_some(offset + first.bytes);
        let mut bytes = first.bytes;
        let mut st = first;
        for below in depth + 1..self.layers.len() {
            st = self.layer_status(below, want_zero, offset, bytes)?;
            found += 1;
            if st.bytes == 0 {
                // The layers above left the range to this one, which
                // ends before it: the zeros past its end are its own.
                st = BlockStatus { status: Status::ZERO | Status::ALLOCATED, bytes, host: None };
                break;
            }
            if st.status.contains(Status::ALLOCATED) {
                st.status = st.status.without(Status::EOF);
                break;
            }
            bytes = st.bytes;
        }
        if Some(offset + st.bytes) == eof {
            st.status |= Status::EOF;
        }
        Ok((st, found))
    }

    /// Fills `buf` with the guest data at `offset` (`offset + buf.len()`
    /// within the disk), each range read from the layer that holds it;
    /// zeros where no layer does, or where a backing file is shorter.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), Error> {
        let end = offset.checked_add(buf.len() as u64).ok_or_else(|| Error::errno(eio()))?;
        if end > self.len() {
            return Err(Error::errno(eio()));
        }
        self.read_layer(0, offset, buf)
    }

    /// [`Image::zero_run`] of the disk: whether the `bytes` bytes at
    /// `offset` begin with a run the top image knows reads as zeros
    /// without a read, and how long the answer holds. Only a top image
    /// that reads everything itself (no backing files) can tell; past the
    /// disk's end, nothing is known.
    pub fn zero_run(&self, offset: u64, bytes: u64) -> (bool, u64) {
        let inside = self.len().saturating_sub(offset).min(bytes);
        match self.layers.first() {
            Some(top) if inside > 0 && (self.layers.len() == 1 || !top.supports_backing()) => {
                let (zero, run) = top.zero_run(offset, inside);
                (zero, run.clamp(1, inside))
            }
            _ => (false, bytes),
        }
    }

    /// Reads `buf` at `offset` of the layer at `depth` and, for what it
    /// leaves unallocated, of the layers below.
    fn read_layer(&self, depth: usize, offset: u64, buf: &mut [u8]) -> Result<(), Error> {
        let Some(image) = self.layers.get(depth) else {
            buf.fill(0);
            return Ok(());
        };
        let below = self.lengths.get(depth + 1).copied();
        let mut done = 0usize;
        while done < buf.len() {
            let at = offset + done as u64;
            let rest = (buf.len() - done) as u64;
            let want = rest.min(READ_CHUNK);
            let (bytes, from_below) = match below {
                Some(_) if image.supports_backing() => {
                    let st = self.layer_status(depth, false, at, want)?;
                    if st.bytes == 0 {
                        return Err(Error::errno(eio()));
                    }
                    (st.bytes, !st.status.contains(Status::ALLOCATED))
                }
                _ => (want, false),
            };
            // `bytes <= want <= rest`, which fits the buffer.
            #[allow(clippy::cast_possible_truncation, reason = "at most the buffer's length")]
            let part = &mut buf[done..done + bytes as usize];
            if from_below {
                if let Some(backing) = self.layers.get(depth + 1) {
                    image.check_backing_read(backing.as_ref())?;
                }
                let below_len = below.unwrap_or(0);
                let inside = below_len.saturating_sub(at).min(bytes);
                #[allow(clippy::cast_possible_truncation, reason = "at most `bytes`")]
                let (head, tail) = part.split_at_mut(inside as usize);
                self.read_layer(depth + 1, at, head)?;
                tail.fill(0);
            } else {
                image.read_at(at, part)?;
            }
            #[allow(clippy::cast_possible_truncation, reason = "at most the buffer's length")]
            {
                done += bytes as usize;
            }
        }
        Ok(())
    }
}

/// The file protocol's block status (qemu's `file-posix`
/// `raw_co_block_status` under `bdrv_co_do_block_status`) of `bytes`
/// bytes at `offset` of `file`: data up to the next hole, zeros up to the
/// next data, zeros for a trailing hole, all at their own offset; `EOF`
/// at the end of the file (whole sectors, as qemu's length).
pub fn file_status(
    file: &ImageFile,
    want_zero: bool,
    offset: u64,
    bytes: u64,
) -> Result<BlockStatus<'_>, Error> {
    let total = file.sector_len();
    if offset >= total {
        return Ok(BlockStatus { status: Status::EOF, bytes: 0, host: None });
    }
    if bytes == 0 {
        return Ok(BlockStatus { status: Status::NONE, bytes: 0, host: None });
    }
    let bytes = bytes.min(total - offset);
    let (status, pnum) = if want_zero {
        match file.known_data_end(offset) {
            // Inside the run of data found last: no need to ask again.
            Some(end) => (Status::DATA, end - offset),
            None => seek_status(file, offset, bytes),
        }
    } else {
        (Status::DATA, bytes)
    };
    let pnum = pnum.min(bytes);
    let mut status = status | Status::OFFSET_VALID | Status::ALLOCATED;
    if offset + pnum == total {
        status |= Status::EOF;
    }
    Ok(BlockStatus { status, bytes: pnum, host: Some(Host { file, offset }) })
}

/// The file protocol's answer at `offset` from `SEEK_DATA` and
/// `SEEK_HOLE` (`find_allocation`), remembering a run of data found.
fn seek_status(file: &ImageFile, offset: u64, bytes: u64) -> (Status, u64) {
    match file.seek_data(offset) {
        // A trailing hole (also the tail of the last sector).
        Ok(None) => (Status::ZERO, bytes),
        Ok(Some(data)) if data > offset => (Status::ZERO, data - offset),
        Ok(Some(_)) => match file.seek_hole(offset) {
            Ok(hole) if hole > offset => {
                file.remember_data(offset, hole);
                (Status::DATA, hole - offset)
            }
            // No information: qemu pretends there is no hole.
            _ => (Status::DATA, bytes),
        },
        Err(_) => (Status::DATA, bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use instar_core::{ImageInfo, Mapping};

    /// A layer answering from a list of ranges: `(start, len, status)`,
    /// data at the same offset of its file, and reading its own ranges as
    /// the byte `fill`.
    struct Layer {
        size: u64,
        ranges: Vec<(u64, u64, Status)>,
        file: ImageFile,
        fill: u8,
    }

    impl Layer {
        fn boxed(size: u64, ranges: &[(u64, u64, Status)], fill: u8) -> Box<dyn Image> {
            let file = ImageFile::from_bytes("layer", vec![fill; 512]);
            Box::new(Layer { size, ranges: ranges.to_vec(), file, fill })
        }
    }

    impl Image for Layer {
        fn info(&self) -> Result<ImageInfo, Error> {
            Err(Error::errno(eio()))
        }
        fn virtual_size(&self) -> u64 {
            self.size
        }
        fn has_block_status(&self) -> bool {
            true
        }
        fn supports_backing(&self) -> bool {
            true
        }
        fn block_status(&self, _: bool, offset: u64, bytes: u64) -> Result<Mapping<'_>, Error> {
            for &(start, len, status) in &self.ranges {
                if (start..start + len).contains(&offset) {
                    let n = (start + len - offset).min(bytes);
                    return Ok(if status.contains(Status::OFFSET_VALID) {
                        Mapping::at(status, n, &self.file, offset)
                    } else {
                        Mapping::unmapped(status, n)
                    });
                }
            }
            let next = self.ranges.iter().map(|r| r.0).filter(|&s| s > offset).min();
            let n = next.map_or(bytes, |s| (s - offset).min(bytes));
            Ok(Mapping::unmapped(Status::NONE, n))
        }
        fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), Error> {
            for (i, b) in buf.iter_mut().enumerate() {
                let at = offset + i as u64;
                let mine = self
                    .ranges
                    .iter()
                    .any(|&(s, l, st)| (s..s + l).contains(&at) && st.contains(Status::DATA));
                *b = if mine { self.fill } else { 0 };
            }
            Ok(())
        }
    }

    const D: Status = Status::DATA;

    #[test]
    fn a_layer_adds_allocated_eof_and_zero_without_backing() {
        let chain = Chain::new(vec![Layer::boxed(4096, &[(0, 1024, D)], 1)]);
        let st = chain.layer_status(0, true, 0, 4096).unwrap();
        assert_eq!((st.status, st.bytes), (D | Status::ALLOCATED, 1024));
        // Unallocated with no backing file: zeros, not allocated, the end.
        let st = chain.layer_status(0, true, 1024, 4096).unwrap();
        assert_eq!((st.status, st.bytes), (Status::ZERO | Status::EOF, 3072));
        let st = chain.layer_status(0, true, 4096, 1).unwrap();
        assert_eq!((st.status, st.bytes), (Status::EOF, 0));
    }

    #[test]
    fn past_a_shorter_backing_file_reads_zeros_of_the_lower_layer() {
        let top = Layer::boxed(4096, &[(0, 512, D)], 1);
        let base = Layer::boxed(2048, &[(0, 2048, D)], 2);
        let chain = Chain::new(vec![top, base]);
        // Unallocated above the backing file's end: ZERO at this layer.
        let st = chain.layer_status(0, true, 2048, 2048).unwrap();
        assert_eq!(st.status, Status::ZERO | Status::EOF);
        // Without want_zero, it is left to the layer below, which ends.
        let st = chain.layer_status(0, false, 2048, 2048).unwrap();
        assert_eq!(st.status, Status::EOF);
        let (st, depth) = chain.status_above(0, false, 2048, 2048).unwrap();
        assert_eq!(
            (st.status, st.bytes, depth),
            (Status::ZERO | Status::ALLOCATED | Status::EOF, 2048, 2)
        );
        let (st, depth) = chain.status_above(0, true, 512, 4096).unwrap();
        assert_eq!((st.status, st.bytes, depth), (D | Status::ALLOCATED, 1536, 2));
        let mut buf = vec![9u8; 4096];
        chain.read_at(0, &mut buf).unwrap();
        assert!(buf[..512].iter().all(|&b| b == 1));
        assert!(buf[512..2048].iter().all(|&b| b == 2));
        assert!(buf[2048..].iter().all(|&b| b == 0));
        assert!(chain.read_at(4000, &mut buf).is_err());
    }

    #[test]
    fn recurse_turns_data_past_the_host_file_into_zeros() {
        let r = D | Status::RECURSE | Status::OFFSET_VALID;
        let chain = Chain::new(vec![Layer::boxed(4096, &[(0, 4096, r)], 1)]);
        // The host file holds 512 bytes: data there (its end), zeros after.
        let st = chain.layer_status(0, true, 0, 4096).unwrap();
        assert_eq!(
            (st.status.without(Status::OFFSET_VALID), st.bytes),
            (D | Status::ALLOCATED, 512)
        );
        let st = chain.layer_status(0, true, 1024, 1024).unwrap();
        assert!(st.status.contains(Status::ZERO | D | Status::ALLOCATED));
        assert!(!st.status.contains(Status::RECURSE));
    }

    #[test]
    fn raw_answers_come_from_the_file() {
        let file = ImageFile::from_bytes("f", vec![0; 1000]);
        let st = file_status(&file, true, 0, 4096).unwrap();
        // 1000 bytes are two sectors to qemu: data up to the file's end,
        // then the rest of the sector as a trailing hole (as qemu-img map
        // shows a 1000-byte raw file).
        assert_eq!(st.bytes, 1000);
        assert!(st.status.contains(D | Status::OFFSET_VALID));
        assert!(!st.status.contains(Status::EOF));
        let st = file_status(&file, true, 1000, 4096).unwrap();
        assert_eq!(
            (st.status.without(Status::OFFSET_VALID), st.bytes),
            (Status::ZERO | Status::ALLOCATED | Status::EOF, 24)
        );
        assert_eq!(file_status(&file, true, 1024, 1).unwrap().status, Status::EOF);
    }

    /// A run of data found once answers later questions inside it
    /// without asking the file again, and no question outside it.
    #[test]
    fn a_run_of_data_found_is_remembered_only_for_itself() {
        let path = std::env::temp_dir().join(format!("instar-bsc-{}", std::process::id()));
        let disk = std::fs::File::create(&path).unwrap();
        std::os::unix::fs::FileExt::write_all_at(&disk, &[1; 1 << 20], 0).unwrap();
        disk.set_len(4 << 20).unwrap();
        let file = ImageFile::open(path.to_str().unwrap()).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(file.known_data_end(0), None);
        let first = file_status(&file, true, 0, 4 << 20).unwrap();
        assert_eq!((first.status.contains(D), first.bytes), (true, 1 << 20));
        assert_eq!(file.known_data_end(4096), Some(1 << 20));
        let inside = file_status(&file, true, 4096, 4 << 20).unwrap();
        assert_eq!((inside.status.contains(D), inside.bytes), (true, (1 << 20) - 4096));
        assert_eq!(file.known_data_end(1 << 20), None);
        let hole = file_status(&file, true, 1 << 20, 4 << 20).unwrap();
        assert!(hole.status.contains(Status::ZERO) && !hole.status.contains(D));
    }
}
