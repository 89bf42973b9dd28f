//! The copy: qemu-img's `convert_do_copy` for one run. The chunks are
//! cut in guest order as `convert_iteration_sectors` cuts them (on this
//! thread, which also prints the progress as each chunk is taken);
//! worker threads read the data chunks (and compress them for `-c`), as
//! qemu-img's coroutines and its thread pool do, one fewer than the
//! machine has cores, and the writing thread reads the next chunk
//! itself rather than wait for one; the chunks are written
//! strictly in guest order, as qemu-img writes them without `-W`, so the
//! target's allocation follows the same sequence.
//!
//! As many chunks are taken ahead of the writes as qemu-img's copy has
//! coroutines (`-m`, 8 by default): each of them takes the next chunk
//! (and prints the progress) once its write is done, so the chunks taken,
//! and the progress printed, when a write fails are qemu-img's.
//!
//! Memory: at most [`QUEUE_BYTES`] of chunks in flight, whatever the
//! images' sizes.

use super::read::{Disk, ReadMode};
use super::sparse::{is_zero, sparse_runs, Sectors};
use super::{errno_text, ConvertFailure, ConvertOutput, SECTOR};
use crate::chain::Chain;
use crate::progress::Progress;
use instar_core::codec::CompressSession;
use instar_core::error::strerror;
use instar_core::write::Compression;
use instar_core::{Diagnostic, Error, ImageWriter, Status};
use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::sync::{mpsc, Mutex};

/// qemu's `BDRV_REQUEST_MAX_SECTORS`: the longest range one block status
/// query asks about (`INT_MAX >> 9`).
const REQUEST_MAX_SECTORS: u64 = (i32::MAX as u64) >> 9;

/// The most bytes of chunks read ahead of the writes (16 of qemu's
/// 2 MiB chunks: `-m 16`).
const QUEUE_BYTES: u64 = 32 << 20;

/// The most reader threads (qemu-img runs 8 coroutines over a thread pool
/// the size of the machine). There is one fewer than the machine has
/// cores: the writing thread reads too while the chunk it is to write
/// next is not ready, so every core has one thread and none waits on
/// another's wake-up.
const MAX_READERS: usize = 4;

/// Opens the sources again, for a reader thread of its own.
pub type Reopen<'a> = &'a (dyn Fn() -> Result<Vec<Chain>, ConvertFailure> + Sync);

/// qemu-img's `ImgConvertBlockStatus`: what a chunk is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Blk {
    /// Read and written (unless it reads as zeros and may be skipped).
    Data,
    /// Reads as zeros: written as zeros unless the target already is.
    Zero,
    /// Left to the target's backing file: not written.
    BackingFile,
}

/// The copy's settings and state: qemu-img's `ImgConvertState` for one
/// run.
pub(super) struct Copy<'a> {
    pub(super) disk: &'a Disk<'a>,
    pub(super) total_sectors: u64,
    pub(super) status: Blk,
    pub(super) sector_next_status: u64,
    /// The target's backing disk's length in sectors, when known.
    pub(super) target_backing_sectors: Option<u64>,
    pub(super) target_has_backing: bool,
    pub(super) compressed: bool,
    pub(super) compression: Option<Compression>,
    pub(super) min_sparse: u64,
    pub(super) alignment: u64,
    pub(super) buf_sectors: u64,
    pub(super) cluster_sectors: u64,
    pub(super) has_zero_init: bool,
    pub(super) read_mode: ReadMode,
    /// `-m`: the chunks qemu-img holds at once.
    pub(super) coroutines: u64,
}

/// Why the copy stopped: the line qemu-img reports.
type Stop = ConvertFailure;

/// A chunk taken, in guest order.
#[derive(Debug, Clone, Copy)]
struct Chunk {
    sector_num: u64,
    n: u64,
    status: Blk,
    /// Whether its data are read (a data chunk) rather than known.
    read: bool,
}

/// A chunk a reader thread is asked for.
struct Job {
    seq: u64,
    chunk: Chunk,
    buf: Vec<u8>,
}

/// What a reader thread gives back.
struct Done {
    seq: u64,
    buf: Vec<u8>,
    /// The chunk compressed, for a compressed write (`None`: it did not
    /// fit, or is not compressed).
    packed: Option<Vec<u8>>,
    /// What `convert_co_write` writes of the chunk: runs of data (`true`)
    /// and of zeros it leaves out, `(data, sectors)` in order (the whole
    /// chunk as data under `-S 0`; one run under `-c`, zeros when it
    /// reads as zeros; the runs [`sparse_runs`] cuts otherwise).
    runs: Vec<(bool, u64)>,
    warnings: Vec<Diagnostic>,
    result: Result<(), ConvertFailure>,
}

/// How a reader thread prepares a chunk besides reading it.
#[derive(Clone, Copy)]
struct Prepare {
    mode: ReadMode,
    /// For `-c`: the codec.
    compression: Option<Compression>,
    /// For `-c` under `-S` (not 0): an all-zero chunk is left out rather
    /// than compressed.
    skip_zero: bool,
    /// For an uncompressed copy under `-S` (not 0): the minimum zero run
    /// and the alignment, to cut the chunk's runs here rather than on
    /// the writing thread.
    sparse: Option<(u64, u64)>,
}

impl Prepare {
    /// Reads `chunk` of `disk` into `buf` and compresses it (through
    /// `session`, the thread's compressor) if asked.
    fn run(
        &self,
        disk: &Disk<'_>,
        session: Option<&mut CompressSession>,
        chunk: Chunk,
        mut buf: Vec<u8>,
        seq: u64,
    ) -> Done {
        let mut warnings = Vec::new();
        #[allow(clippy::cast_possible_truncation, reason = "at most the buffer's length")]
        let len = (chunk.n * SECTOR) as usize;
        buf.resize(len, 0);
        let mut unread = Vec::new();
        let result = disk.read(
            chunk.sector_num,
            &mut buf,
            self.mode,
            &mut warnings,
            self.sparse.map(|_| &mut unread),
        );
        let mut runs = vec![(true, chunk.n)];
        if let (Ok(()), Some((min, alignment))) = (&result, self.sparse) {
            let sectors = Sectors::new(&buf, &unread);
            runs = sparse_runs(&sectors, min, chunk.sector_num, alignment);
            // What is written must hold its zeros.
            for (first, count) in sectors.unread_in_data(&runs) {
                #[allow(clippy::cast_possible_truncation, reason = "within the buffer")]
                buf[(first * SECTOR) as usize..((first + count) * SECTOR) as usize].fill(0);
            }
        }
        let mut packed = None;
        if result.is_ok() && self.skip_zero && is_zero(&buf) {
            runs = vec![(false, chunk.n)];
        } else if let (Ok(()), Some(c), Some(session)) = (&result, self.compression, session) {
            packed = if c.pad_to > buf.len() {
                let mut padded = buf.clone();
                padded.resize(c.pad_to, 0);
                session.compress(&padded, c.capacity)
            } else {
                session.compress(&buf, c.capacity)
            };
        }
        Done { seq, buf, packed, runs, warnings, result }
    }
}

impl Copy<'_> {
    /// qemu's `convert_iteration_sectors`: the length of the chunk at
    /// `sector_num`, with `self.status` set to what it is.
    fn iteration_sectors(
        &mut self,
        sector_num: u64,
        output: &mut dyn ConvertOutput,
    ) -> Result<u64, Stop> {
        let (src_cur, src_start) = self.disk.select_part(sector_num);
        let mut n = (self.total_sectors - sector_num).min(REQUEST_MAX_SECTORS);
        let mut post_backing_zero = false;
        if let Some(backing) = self.target_backing_sectors {
            if sector_num >= backing {
                post_backing_zero = true;
            } else if sector_num + n > backing {
                n = backing - sector_num;
            }
        }
        if self.sector_next_status <= sector_num {
            let Some(source) = self.disk.sources.get(src_cur) else {
                return Err(Stop::reported("no source"));
            };
            let offset = (sector_num - src_start) * SECTOR;
            let (status, count) = loop {
                let asked = (n * SECTOR).min(source.bytes.saturating_sub(offset));
                let answer = if self.target_has_backing {
                    source.chain.layer_status(0, true, offset, asked)
                } else {
                    source.chain.status_above(0, true, offset, asked).map(|(st, _)| st)
                };
                // What the drivers printed as they answered (qcow2's
                // corruption notice) comes first.
                for line in source.chain.take_printed() {
                    output.stderr(line);
                }
                match answer {
                    Ok(st) if st.bytes > 0 || asked == 0 => break (st.status, st.bytes),
                    Ok(_) => {
                        return Err(Stop::reported(format!(
                            "error while reading block status at offset {offset}: {}",
                            strerror(&io::Error::from_raw_os_error(5))
                        )))
                    }
                    Err(e) => {
                        let text = errno_text(&e);
                        for line in e.notes() {
                            output.stderr(line.clone());
                        }
                        if !self.read_mode.salvage {
                            return Err(Stop::reported(format!(
                                "error while reading block status at offset {offset}: {text}"
                            )));
                        }
                        if n == 1 {
                            if !self.read_mode.quiet {
                                output.stderr(Diagnostic::Reported(format!(
                                    "warning: error while reading block status at offset \
                                     {offset}: {text}"
                                )));
                            }
                            break (Status::DATA, SECTOR);
                        }
                        n = n.div_ceil(4);
                    }
                }
            };
            n = count.div_ceil(SECTOR).max(1);
            let tail = (sector_num - src_start + n) % source.alignment;
            if n > tail {
                n -= tail;
            }
            self.status = if status.contains(Status::ZERO) {
                if post_backing_zero {
                    Blk::BackingFile
                } else {
                    Blk::Zero
                }
            } else if status.contains(Status::DATA) {
                Blk::Data
            } else if self.target_has_backing {
                Blk::BackingFile
            } else {
                Blk::Data
            };
            self.sector_next_status = sector_num + n;
        }
        n = n.min(self.sector_next_status - sector_num);
        if self.status == Blk::Data {
            n = n.min(self.buf_sectors);
        }
        if self.compressed {
            if n < self.cluster_sectors {
                n = self.cluster_sectors.min(self.total_sectors - sector_num);
                self.status = Blk::Data;
            } else {
                n -= n % self.cluster_sectors;
            }
        }
        Ok(n)
    }

    /// `convert_do_copy`: counts the sectors to copy, then copies chunk by
    /// chunk in guest order, the data read by reader threads that open
    /// the sources again through `reopen`.
    pub(super) fn run(
        &mut self,
        target: &mut dyn ImageWriter,
        progress: &mut Progress,
        output: &mut dyn ConvertOutput,
        reopen: Reopen<'_>,
    ) -> Result<(), Stop> {
        if self.compressed {
            if self.cluster_sectors == 0 || self.cluster_sectors > self.buf_sectors {
                return Err(Stop::reported("invalid cluster size"));
            }
            self.buf_sectors = self.cluster_sectors;
        }
        let mut allocated_sectors = 0u64;
        let mut sector_num = 0;
        while sector_num < self.total_sectors {
            let n = self.iteration_sectors(sector_num, output)?;
            if self.status == Blk::Data || (self.min_sparse == 0 && self.status == Blk::Zero) {
                allocated_sectors += n;
            }
            sector_num += n;
        }
        if allocated_sectors == 0 && self.min_sparse != 0 {
            // Nothing to read: no reader needed.
            return self.copy_with(target, progress, output, allocated_sectors, None);
        }
        let prepare = Prepare {
            mode: self.read_mode,
            compression: self.compression.filter(|_| self.compressed),
            skip_zero: self.compressed && self.min_sparse != 0,
            sparse: (!self.compressed && self.min_sparse != 0)
                .then_some((self.min_sparse, self.alignment)),
        };
        let readers = std::thread::available_parallelism()
            .map_or(1, usize::from)
            .saturating_sub(1)
            .clamp(1, MAX_READERS);
        let (job_tx, job_rx) = mpsc::channel::<Job>();
        let job_rx = Mutex::new(job_rx);
        let (done_tx, done_rx) = mpsc::channel::<Done>();
        // The writing thread's reads go through sources of their own, as
        // each reader's do (the block status walk keeps its own); when
        // they cannot be opened, the readers report why.
        let own = reopen().ok();
        let own_disk = own.as_ref().and_then(|c| Disk::of(c).ok());
        std::thread::scope(|scope| {
            for _ in 0..readers {
                let done_tx = done_tx.clone();
                let job_rx = &job_rx;
                scope.spawn(move || reader(reopen, prepare, job_rx, &done_tx));
            }
            drop(done_tx);
            let steal = own_disk.as_ref().map(|disk| Steal {
                disk,
                jobs: &job_rx,
                prepare,
                session: prepare.compression.map(|c| c.codec.session()),
            });
            let pool = Pool { jobs: job_tx, done: done_rx, steal };
            self.copy_with(target, progress, output, allocated_sectors, Some(pool))
        })
    }

    /// The second pass of `convert_do_copy`: takes the chunks in order,
    /// prints the progress as each is taken, has the data chunks read by
    /// `pool` and writes every chunk in order.
    fn copy_with(
        &mut self,
        target: &mut dyn ImageWriter,
        progress: &mut Progress,
        output: &mut dyn ConvertOutput,
        allocated_sectors: u64,
        mut pool: Option<Pool<'_>>,
    ) -> Result<(), Stop> {
        self.sector_next_status = 0;
        let chunk_bytes = self.buf_sectors * SECTOR;
        #[allow(clippy::cast_possible_truncation, reason = "a small count")]
        let depth = self.coroutines.min((QUEUE_BYTES / chunk_bytes.max(1)).max(1)) as usize;
        let mut queue: VecDeque<(u64, Chunk)> = VecDeque::new();
        let mut arrived: BTreeMap<u64, Done> = BTreeMap::new();
        let mut spare: Vec<Vec<u8>> = Vec::new();
        let mut allocated_done = 0u64;
        let mut sector_num = 0;
        let mut seq = 0u64;
        loop {
            while queue.len() < depth && sector_num < self.total_sectors {
                let mut n = self.iteration_sectors(sector_num, output)?;
                let status = self.status;
                if self.min_sparse == 0 && status == Blk::Zero {
                    n = n.min(self.buf_sectors);
                }
                if status == Blk::Data || (self.min_sparse == 0 && status == Blk::Zero) {
                    allocated_done += n;
                    #[allow(clippy::cast_possible_truncation, reason = "C's double to float")]
                    #[allow(clippy::cast_precision_loss, reason = "C's conversions, on purpose")]
                    let share = (100.0 * allocated_done as f64 / allocated_sectors as f64) as f32;
                    if let Some(line) = progress.print(share, 0) {
                        output.stdout(&line);
                    }
                }
                let chunk = Chunk { sector_num, n, status, read: status == Blk::Data };
                if chunk.read {
                    let buf = spare.pop().unwrap_or_default();
                    let sent =
                        pool.as_ref().is_some_and(|p| p.jobs.send(Job { seq, chunk, buf }).is_ok());
                    if !sent {
                        return Err(Stop::reported("error while reading: no reader"));
                    }
                }
                queue.push_back((seq, chunk));
                seq += 1;
                sector_num += n;
            }
            let Some((front, chunk)) = queue.pop_front() else {
                break;
            };
            let mut done = None;
            if chunk.read {
                while !arrived.contains_key(&front) {
                    // Rather than wait, read the next chunk no reader has
                    // taken (often this one): written right after, it is
                    // still in this core's cache.
                    if let Some(p) = pool.as_mut() {
                        if let Ok(d) = p.done.try_recv() {
                            arrived.insert(d.seq, d);
                            continue;
                        }
                        if let Some(d) = p.steal.as_mut().and_then(Steal::read_next) {
                            arrived.insert(d.seq, d);
                            continue;
                        }
                    }
                    let got = pool.as_ref().and_then(|p| p.done.recv().ok());
                    let Some(d) = got else {
                        return Err(Stop::reported("error while reading: reader stopped"));
                    };
                    arrived.insert(d.seq, d);
                }
                let d = arrived.remove(&front);
                if let Some(d) = &d {
                    for w in &d.warnings {
                        output.stderr(w.clone());
                    }
                    if let Err(f) = &d.result {
                        return Err(ConvertFailure { lines: f.lines.clone(), code: f.code });
                    }
                }
                done = d;
            }
            let written = self.write_chunk(target, chunk, done.as_ref());
            if written.is_ok() {
                for line in target.take_printed() {
                    output.stderr(line);
                }
            }
            if let Some(d) = done {
                spare.push(d.buf);
            }
            written.map_err(|e| {
                // What the driver printed first (qcow2's corruption
                // message), then convert's line.
                let mut failure = Stop::reported(format!(
                    "error while writing at byte {}: {}",
                    chunk.sector_num * SECTOR,
                    errno_text(&e)
                ));
                failure.lines.splice(0..0, e.notes().iter().cloned());
                failure
            })?;
        }
        if self.compressed {
            target.end_compressed().map_err(|e| ConvertFailure::from_error(&e))?;
            for line in target.take_printed() {
                output.stderr(line);
            }
        }
        Ok(())
    }

    /// Writes one chunk: read data from `done`, zeros written as data under
    /// `-S 0`, or no data.
    fn write_chunk(
        &self,
        target: &mut dyn ImageWriter,
        chunk: Chunk,
        done: Option<&Done>,
    ) -> Result<(), Error> {
        match done {
            Some(d) => self.write(
                target,
                chunk.sector_num,
                chunk.n,
                Some(&d.buf),
                d.packed.as_deref(),
                Blk::Data,
                &d.runs,
            ),
            None if self.min_sparse == 0 && chunk.status == Blk::Zero => {
                #[allow(clippy::cast_possible_truncation, reason = "at most buf_sectors sectors")]
                let data = vec![0u8; (chunk.n * SECTOR) as usize];
                let packed = match self.compression.filter(|_| self.compressed) {
                    Some(c) => {
                        let mut padded = data.clone();
                        padded.resize(c.pad_to.max(data.len()), 0);
                        c.codec.compress(&padded, c.capacity)
                    }
                    None => None,
                };
                self.write(
                    target,
                    chunk.sector_num,
                    chunk.n,
                    Some(&data),
                    packed.as_deref(),
                    Blk::Data,
                    &[(true, chunk.n)],
                )
            }
            None => self.write(target, chunk.sector_num, chunk.n, None, None, chunk.status, &[]),
        }
    }

    /// `convert_co_write`: writes the chunk of `n` sectors at `sector_num`
    /// as its status says (`data`: its bytes, for a data chunk, written
    /// run by run as `runs`, cut by the reader, says).
    #[allow(clippy::too_many_arguments, reason = "convert_co_write's inputs")]
    fn write(
        &self,
        target: &mut dyn ImageWriter,
        sector_num: u64,
        n: u64,
        data: Option<&[u8]>,
        packed: Option<&[u8]>,
        status: Blk,
        runs: &[(bool, u64)],
    ) -> Result<(), Error> {
        let Some(buf) = data.filter(|_| status == Blk::Data) else {
            if status == Blk::Zero && !self.has_zero_init {
                target.write_zeroes(sector_num * SECTOR, n * SECTOR)?;
            }
            return Ok(());
        };
        let mut at = sector_num;
        let mut rest = buf;
        for &(write_data, k) in runs {
            #[allow(clippy::cast_possible_truncation, reason = "within the buffer")]
            let (head, tail) = rest.split_at(((k * SECTOR) as usize).min(rest.len()));
            if write_data {
                if self.compressed {
                    target.write_compressed(at * SECTOR, head, packed)?;
                } else {
                    target.write(at * SECTOR, head)?;
                }
            } else if !self.has_zero_init {
                target.write_zeroes(at * SECTOR, k * SECTOR)?;
            }
            at += k;
            rest = tail;
        }
        Ok(())
    }
}

/// The reader threads' two queues, as the writing thread holds them.
struct Pool<'p> {
    jobs: mpsc::Sender<Job>,
    done: mpsc::Receiver<Done>,
    /// The writing thread's own reads, when its sources opened.
    steal: Option<Steal<'p>>,
}

/// What the writing thread reads chunks with while it would wait: its
/// own sources and compressor, and the readers' queue it takes from.
struct Steal<'p> {
    disk: &'p Disk<'p>,
    jobs: &'p Mutex<mpsc::Receiver<Job>>,
    prepare: Prepare,
    session: Option<CompressSession>,
}

impl Steal<'_> {
    /// Reads (and compresses) the next chunk no reader has taken, if
    /// there is one and the queue is free.
    fn read_next(&mut self) -> Option<Done> {
        let job = self.jobs.try_lock().ok().and_then(|rx| rx.try_recv().ok())?;
        Some(self.prepare.run(self.disk, self.session.as_mut(), job.chunk, job.buf, job.seq))
    }
}

/// A reader thread: opens the sources for itself, then reads (and
/// compresses) the chunks it is given until the queue closes.
fn reader(
    reopen: Reopen<'_>,
    prepare: Prepare,
    jobs: &Mutex<mpsc::Receiver<Job>>,
    done: &mpsc::Sender<Done>,
) {
    let mut session = prepare.compression.map(|c| c.codec.session());
    let chains = reopen();
    let disk = chains
        .as_ref()
        .map_err(|f| ConvertFailure { lines: f.lines.clone(), code: f.code })
        .and_then(|c| Disk::of(c));
    loop {
        let job = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        let result = match &disk {
            Ok(disk) => prepare.run(disk, session.as_mut(), job.chunk, job.buf, job.seq),
            Err(f) => Done {
                seq: job.seq,
                buf: job.buf,
                packed: None,
                runs: Vec::new(),
                warnings: Vec::new(),
                result: Err(ConvertFailure { lines: f.lines.clone(), code: f.code }),
            },
        };
        if done.send(result).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use instar_core::{Image, ImageInfo};

    /// A disk of data sectors (0x11) whose `zeros` range of sectors is
    /// known to read as zeros, as vhdx's absent blocks are.
    struct Blocks {
        sectors: u64,
        zeros: std::ops::Range<u64>,
    }

    impl Image for Blocks {
        fn info(&self) -> Result<ImageInfo, Error> {
            Err(Error::invalid("not needed"))
        }

        fn virtual_size(&self) -> u64 {
            self.sectors * SECTOR
        }

        fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), Error> {
            for (i, sector) in (offset / SECTOR..).zip(buf.chunks_mut(SECTOR_BYTES)) {
                sector.fill(if self.zeros.contains(&i) { 0 } else { 0x11 });
            }
            Ok(())
        }

        fn zero_run(&self, offset: u64, bytes: u64) -> (bool, u64) {
            let (at, end) = (offset / SECTOR, (offset + bytes) / SECTOR);
            let zero = self.zeros.contains(&at);
            let until = if zero {
                self.zeros.end
            } else if at < self.zeros.start {
                self.zeros.start
            } else {
                end
            };
            (zero, (until.min(end) - at) * SECTOR)
        }
    }

    const SECTOR_BYTES: usize = 512;

    #[test]
    fn unread_zeros_a_data_run_swallows_are_filled() {
        // Sectors 4..8 are known zeros: shorter than `-S` (8 sectors), so
        // the data run swallows them and they are written; the reused
        // buffer's stale bytes there must become zeros.
        let chains = [Chain::new(vec![Box::new(Blocks { sectors: 16, zeros: 4..8 })])];
        let disk = Disk::of(&chains).unwrap();
        let prepare = Prepare {
            mode: ReadMode { salvage: false, quiet: false },
            compression: None,
            skip_zero: false,
            sparse: Some((8, 1)),
        };
        let chunk = Chunk { sector_num: 0, n: 16, status: Blk::Data, read: true };
        let done = prepare.run(&disk, None, chunk, vec![0xEE; 16 * SECTOR_BYTES], 0);
        assert!(done.result.is_ok());
        assert_eq!(done.runs, vec![(true, 16)]);
        assert!(done.buf[..4 * SECTOR_BYTES].iter().all(|&b| b == 0x11));
        assert!(done.buf[4 * SECTOR_BYTES..8 * SECTOR_BYTES].iter().all(|&b| b == 0));
        // A long known-zero run is a zero run, left unread.
        let chains = [Chain::new(vec![Box::new(Blocks { sectors: 32, zeros: 4..28 })])];
        let disk = Disk::of(&chains).unwrap();
        let chunk = Chunk { sector_num: 0, n: 32, status: Blk::Data, read: true };
        let done = prepare.run(&disk, None, chunk, vec![0xEE; 32 * SECTOR_BYTES], 0);
        assert_eq!(done.runs, vec![(true, 4), (false, 24), (true, 4)]);
        assert!(done.buf[4 * SECTOR_BYTES..28 * SECTOR_BYTES].iter().all(|&b| b == 0xEE));
    }
}
