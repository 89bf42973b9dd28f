//! `qemu-img compare`: whether two images show a guest the same data
//! (qemu-img.c's `img_compare`, with its `compare_buffers`,
//! `check_empty_sectors` and `find_nonzero`).
//!
//! Both images are opened with their backing chains. The walk asks each
//! chain for the block status of the range ahead and moves by the shorter
//! answer: ranges both chains know to read as zeros are skipped unread;
//! ranges both hold are read and compared; a range only one holds must
//! read as zeros. The larger image's tail past the smaller one's end must
//! read as zeros too. qemu reports a mismatch at the start of the 512-byte
//! sector (counted from the start of the range being compared) where the
//! first differing byte lies, and so does this walk; it compares whole
//! buffers at once and looks for that byte only once they differ.
//!
//! Memory: two buffers of qemu's chunk size ([`IO_BUF_SIZE`]), whatever
//! the images' sizes.

use crate::chain::Chain;
use crate::open::Target;
use crate::progress::Progress;
use instar_core::{Diagnostic, Error, OpenFlags, QemuDialect, Status};

/// qemu-img's `IO_BUF_SIZE`: the most bytes compared per read.
pub const IO_BUF_SIZE: u64 = 2 << 20;

/// qemu's `BDRV_SECTOR_SIZE`: the unit a mismatch is reported in.
const SECTOR: u64 = 512;

/// qemu-img's `qemu_progress_init(progress, 2.0)`: a progress line is
/// printed once the percentage moved by more than this.
const PROGRESS_MIN_SKIP: f32 = 2.0;

/// Exit code: the images differ (or strict mode found them unequal).
pub const EXIT_DIFFERENT: u8 = 1;
/// Exit code: an image could not be opened or the cache mode is invalid.
pub const EXIT_OPEN: u8 = 2;
/// Exit code: a block status query failed.
pub const EXIT_STATUS: u8 = 3;
/// Exit code: reading guest data failed.
pub const EXIT_READ: u8 = 4;

/// What `qemu-img compare` was asked to do.
#[derive(Debug, Clone, Copy)]
pub struct CompareArgs<'a> {
    /// The first image (`FILENAME1`, `-f`).
    pub first: Target<'a>,
    /// The second image (`FILENAME2`, `-F`).
    pub second: Target<'a>,
    /// `-s`: images of different sizes, or with a different block status
    /// anywhere, are different.
    pub strict: bool,
    /// `-q`: nothing on stdout.
    pub quiet: bool,
    /// `-p` (ignored with `-q`): qemu's progress lines on stdout.
    pub progress: bool,
    /// Whose open rules to follow.
    pub dialect: QemuDialect,
}

/// What a compare printed and how it ended.
#[derive(Debug, Default)]
pub struct Comparison {
    /// Everything for stdout, in order (the verdict lines, and with `-p`
    /// the progress lines and the final newline).
    pub stdout: String,
    /// What goes to stderr, in order: warnings met while opening, then the
    /// error that ended the compare, if any.
    pub stderr: Vec<Diagnostic>,
    /// The exit code: 0 identical, 1 different, 2 open, 3 block status,
    /// 4 read failures.
    pub code: u8,
}

/// The share of `total` that `chunk` bytes are, as qemu-img's compare
/// computes it: `((float) chunk / total) * 100`.
#[allow(clippy::cast_precision_loss, reason = "C's conversions to float, on purpose")]
fn share(chunk: u64, total: u64) -> f32 {
    (chunk as f32) / (total as f32) * 100.0
}

/// One side of the compare: the chain and the name qemu-img's messages
/// give it.
struct Side<'a> {
    chain: &'a Chain,
    name: &'a str,
}

/// Why the walk stopped early: a verdict printed on stdout (exit 1), or
/// an error for stderr with its exit code.
enum Stop {
    Different(String),
    Failed(Error, u8),
}

/// Runs `qemu-img compare` as `args` asks: opens both images (each with
/// its chain, as qemu-img does, in order: a failure to open the second is
/// reported after the first's warnings) and compares them.
pub fn compare(args: &CompareArgs<'_>) -> Comparison {
    let mut result = Comparison::default();
    let mut progress = Progress::new(args.progress && !args.quiet, PROGRESS_MIN_SKIP);
    let flags = OpenFlags::READ.in_dialect(args.dialect);
    let opened = Chain::open(args.first, flags).and_then(|(first, warnings, _)| {
        result.stderr.extend(warnings);
        let (second, warnings, _) = Chain::open(args.second, flags)?;
        result.stderr.extend(warnings);
        Ok((first, second))
    });
    match opened {
        Ok((first, second)) => {
            let a = Side { chain: &first, name: args.first.name };
            let b = Side { chain: &second, name: args.second.name };
            let mode = Mode { strict: args.strict, quiet: args.quiet };
            result.code = walk(&a, &b, mode, &mut progress, &mut result.stdout, &mut result.stderr);
        }
        Err(e) => {
            push_error(&mut result.stderr, e);
            result.code = EXIT_OPEN;
        }
    }
    result.stdout.extend(progress.end());
    result
}

/// Compares two chains already opened (`names`: how messages call them)
/// as `compare` does once its opens succeeded, without progress: the
/// walk alone, for callers that open images themselves (fuzz targets).
pub fn compare_opened(
    first: &Chain,
    second: &Chain,
    names: (&str, &str),
    strict: bool,
) -> Comparison {
    let mut result = Comparison::default();
    let mut progress = Progress::new(false, PROGRESS_MIN_SKIP);
    let a = Side { chain: first, name: names.0 };
    let b = Side { chain: second, name: names.1 };
    let mode = Mode { strict, quiet: false };
    result.code = walk(&a, &b, mode, &mut progress, &mut result.stdout, &mut result.stderr);
    result
}

/// `-s` and `-q`: what the walk checks and whether it speaks.
#[derive(Debug, Clone, Copy)]
struct Mode {
    strict: bool,
    quiet: bool,
}

/// The failure `e` on stderr: what was printed before it, then its text.
fn push_error(stderr: &mut Vec<Diagnostic>, e: Error) {
    stderr.extend(e.notes().iter().cloned());
    stderr.push(Diagnostic::Reported(e.to_string()));
}

/// Compares the opened chains `a` and `b`; returns the exit code, with
/// what was printed added to `stdout` and `stderr`.
fn walk(
    a: &Side<'_>,
    b: &Side<'_>,
    mode: Mode,
    progress: &mut Progress,
    stdout: &mut String,
    stderr: &mut Vec<Diagnostic>,
) -> u8 {
    let say = |stdout: &mut String, line: &str| {
        if !mode.quiet {
            stdout.push_str(line);
            stdout.push('\n');
        }
    };
    let (len_a, len_b) = (a.chain.len(), b.chain.len());
    let total = len_a.max(len_b);
    stdout.extend(progress.print(0.0, 100));
    if mode.strict && len_a != len_b {
        say(stdout, "Strict mode: Image size mismatch!");
        return EXIT_DIFFERENT;
    }
    // The two buffers of qemu-img's loop, made once: the chunk never
    // exceeds them.
    let cap = usize::try_from(IO_BUF_SIZE.min(total)).unwrap_or(0);
    let mut store_a = AlignedBuffer::new(cap);
    let mut store_b = AlignedBuffer::new(cap);
    let (buf_a, buf_b) = (store_a.as_mut(), store_b.as_mut());
    let outcome =
        common(a, b, mode.strict, total, progress, stdout, buf_a, buf_b).and_then(|offset| {
            if len_a == len_b {
                return Ok(());
            }
            say(stdout, "Warning: Image size mismatch!");
            let over = if len_a > len_b { a } else { b };
            tail(over, offset, total, progress, stdout, buf_a)
        });
    // What the drivers printed on calls that did not fail (qcow2's
    // corruption notice) came before anything that ends the walk.
    stderr.extend(a.chain.take_printed());
    stderr.extend(b.chain.take_printed());
    match outcome {
        Ok(()) => {
            say(stdout, "Images are identical.");
            0
        }
        Err(Stop::Different(line)) => {
            say(stdout, &line);
            EXIT_DIFFERENT
        }
        Err(Stop::Failed(e, code)) => {
            push_error(stderr, e);
            code
        }
    }
}

/// Where the kernel copies pages fastest: buffers that start on a page
/// boundary (qemu's `blk_blockalign` aligns its buffers too). Measured:
/// a heap buffer 16 bytes past a page boundary makes `pread` of cached
/// data markedly slower.
const BUFFER_ALIGN: usize = 4096;

/// A zeroed buffer of `len` bytes starting on a [`BUFFER_ALIGN`]
/// boundary, carved out of a slightly larger allocation.
struct AlignedBuffer {
    store: Vec<u8>,
    start: usize,
    len: usize,
}

impl AlignedBuffer {
    fn new(len: usize) -> AlignedBuffer {
        let store = vec![0u8; len + BUFFER_ALIGN];
        let start = store.as_ptr().align_offset(BUFFER_ALIGN).min(BUFFER_ALIGN);
        AlignedBuffer { store, start, len }
    }

    fn as_mut(&mut self) -> &mut [u8] {
        &mut self.store[self.start..self.start + self.len]
    }
}

/// `bdrv_block_status_above` of `side` from `offset` to its end, or qemu's
/// failure for it.
fn status_of(side: &Side<'_>, offset: u64) -> Result<(Status, u64), Stop> {
    let bytes = side.chain.len() - offset;
    let failed = |printed: Vec<Diagnostic>| {
        let message = format!("Sector allocation test failed for {}", side.name);
        Stop::Failed(Error::after_open(message).after(printed), EXIT_STATUS)
    };
    match side.chain.status_above(0, true, offset, bytes) {
        Ok((st, _)) if st.bytes > 0 => Ok((st.status, st.bytes)),
        // qemu asserts a status of at least one byte inside the image;
        // a chain that answered none would loop this walk forever.
        Ok(_) => Err(failed(Vec::new())),
        // What the driver printed (qcow2's corruption notice) comes first.
        Err(e) => Err(failed(e.notes().to_vec())),
    }
}

/// Reads `buf.len()` bytes at `offset` of `side`, or qemu-img's failure.
fn read(side: &Side<'_>, offset: u64, buf: &mut [u8]) -> Result<(), Stop> {
    side.chain.read_at(offset, buf).map_err(|e| {
        let message = format!("Error while reading offset {offset} of {}: {e}", side.name);
        let notes = e.notes().to_vec();
        Stop::Failed(Error::after_open(message).after(notes), EXIT_READ)
    })
}

/// The range both images have: qemu-img's main loop. Returns the offset
/// it stopped at (the smaller size).
#[allow(clippy::too_many_arguments, reason = "the loop's state, as qemu-img keeps it")]
fn common(
    a: &Side<'_>,
    b: &Side<'_>,
    strict: bool,
    total: u64,
    progress: &mut Progress,
    stdout: &mut String,
    buf_a: &mut [u8],
    buf_b: &mut [u8],
) -> Result<u64, Stop> {
    let end = a.chain.len().min(b.chain.len());
    let mut offset = 0;
    while offset < end {
        let (status_a, pnum_a) = status_of(a, offset)?;
        let (status_b, pnum_b) = status_of(b, offset)?;
        let allocated_a = status_a.contains(Status::ALLOCATED);
        let allocated_b = status_b.contains(Status::ALLOCATED);
        let mut chunk = pnum_a.min(pnum_b);
        if strict && status_a != status_b {
            return Err(Stop::Different(format!(
                "Strict mode: Offset {offset} block status mismatch!"
            )));
        }
        if status_a.contains(Status::ZERO) && status_b.contains(Status::ZERO) {
            // Both read as zeros: nothing to read.
        } else if allocated_a == allocated_b {
            if allocated_a {
                chunk = chunk.min(IO_BUF_SIZE);
                let n = buffer_len(chunk);
                compare_chunk(a, b, offset, &mut buf_a[..n], &mut buf_b[..n])?;
            }
        } else {
            chunk = chunk.min(IO_BUF_SIZE);
            let holder = if allocated_a { a } else { b };
            check_empty(holder, offset, chunk, buf_a)?;
        }
        offset += chunk;
        stdout.extend(progress.print(share(chunk, total), 100));
    }
    Ok(offset)
}

/// Compares the chunk at `offset` of both sides (`buf_a.len()` bytes) as
/// qemu-img does: the first image's chunk read whole, then the second's
/// (so a failure of the first wins), then compared (a failure wins over a
/// difference). Measured: reading in smaller pieces to keep them in the
/// CPU's cache for the comparison saved no time (the copy out of the page
/// cache is the cost), so the reads stay whole.
fn compare_chunk(
    a: &Side<'_>,
    b: &Side<'_>,
    offset: u64,
    buf_a: &mut [u8],
    buf_b: &mut [u8],
) -> Result<(), Stop> {
    read(a, offset, buf_a)?;
    read(b, offset, buf_b)?;
    match first_difference(buf_a, buf_b) {
        Some(at) => Err(Stop::Different(mismatch(offset, at))),
        None => Ok(()),
    }
}

/// The larger image past the smaller one's end: what it holds there must
/// read as zeros.
fn tail(
    over: &Side<'_>,
    mut offset: u64,
    total: u64,
    progress: &mut Progress,
    stdout: &mut String,
    buf: &mut [u8],
) -> Result<(), Stop> {
    while offset < total {
        let (status, mut chunk) = status_of(over, offset)?;
        if status.contains(Status::ALLOCATED) && !status.contains(Status::ZERO) {
            chunk = chunk.min(IO_BUF_SIZE);
            check_empty(over, offset, chunk, buf)?;
        }
        offset += chunk;
        stdout.extend(progress.print(share(chunk, total), 100));
    }
    Ok(())
}

/// qemu-img's `check_empty_sectors`: the `chunk` bytes at `offset` of
/// `side` must all be zeros.
fn check_empty(side: &Side<'_>, offset: u64, chunk: u64, buf: &mut [u8]) -> Result<(), Stop> {
    let n = buffer_len(chunk);
    let data = &mut buf[..n];
    read(side, offset, data)?;
    match data.iter().position(|&byte| byte != 0) {
        Some(at) => Err(Stop::Different(mismatch(offset, at))),
        None => Ok(()),
    }
}

/// The buffer length of a chunk already capped at [`IO_BUF_SIZE`].
fn buffer_len(chunk: u64) -> usize {
    // At most IO_BUF_SIZE, which fits any usize instar builds for.
    usize::try_from(chunk.min(IO_BUF_SIZE)).unwrap_or(0)
}

/// The index of the first byte where `a` and `b` differ, if any: a whole
/// slice comparison first (the common case, equal data, stays fast), the
/// search only when they differ.
fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    if a == b {
        return None;
    }
    // Find the differing 4 KiB block first, then the byte in it.
    const BLOCK: usize = 4096;
    let block = a.chunks(BLOCK).zip(b.chunks(BLOCK)).position(|(x, y)| x != y)?;
    let start = block * BLOCK;
    let at = a[start..].iter().zip(&b[start..]).position(|(x, y)| x != y)?;
    Some(start + at)
}

/// qemu's `Content mismatch` line for a first difference `at` bytes into
/// the range compared from `offset`: qemu compares (and looks for
/// non-zero bytes) sector by sector from the start of the range, and
/// names the sector's start.
fn mismatch(offset: u64, at: usize) -> String {
    let at = at as u64;
    let sector = at - at % SECTOR;
    format!("Content mismatch at offset {}!", offset + sector)
}

#[cfg(test)]
mod tests {
    use super::*;
    use instar_core::{Image, ImageInfo};

    /// An image in memory that fails reads touching `fails_at`.
    struct Fake {
        data: Vec<u8>,
        fails_at: Option<u64>,
    }

    impl Image for Fake {
        fn info(&self) -> Result<ImageInfo, Error> {
            Err(Error::invalid("not needed"))
        }

        fn virtual_size(&self) -> u64 {
            self.data.len() as u64
        }

        fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), Error> {
            let end = offset + buf.len() as u64;
            if self.fails_at.is_some_and(|at| (offset..end).contains(&at)) {
                return Err(Error::errno(std::io::Error::from_raw_os_error(5)));
            }
            let start = usize::try_from(offset).unwrap_or(usize::MAX);
            buf.copy_from_slice(&self.data[start..start + buf.len()]);
            Ok(())
        }
    }

    fn chain(data: Vec<u8>, fails_at: Option<u64>) -> Chain {
        Chain::new(vec![Box::new(Fake { data, fails_at })])
    }

    /// The exit code, stdout and stderr of comparing `a` with `b`.
    fn run(a: &Chain, b: &Chain, strict: bool) -> (u8, String, Vec<Diagnostic>) {
        let result = compare_opened(a, b, ("a", "b"), strict);
        (result.code, result.stdout, result.stderr)
    }

    const SIZE: usize = 3 << 20;

    #[test]
    fn verdicts_and_first_offsets() {
        let data = vec![7u8; SIZE];
        let mut other = data.clone();
        assert_eq!(
            run(&chain(data.clone(), None), &chain(other.clone(), None), false).1,
            "Images are identical.\n"
        );
        other[(2 << 20) + 700_001] = 0;
        let (code, out, _) = run(&chain(data.clone(), None), &chain(other, None), false);
        assert_eq!((code, out.as_str()), (1, "Content mismatch at offset 2797056!\n"));
        let (code, out, _) = run(&chain(data.clone(), None), &chain(vec![7; 1000], None), true);
        assert_eq!((code, out.as_str()), (1, "Strict mode: Image size mismatch!\n"));
        let (code, out, _) = run(&chain(vec![7; 1000], None), &chain(data, None), false);
        assert_eq!(
            (code, out.as_str()),
            (1, "Warning: Image size mismatch!\nContent mismatch at offset 1000!\n")
        );
    }

    /// qemu reads a chunk of the first image whole, then of the second:
    /// the first image's failure is reported even when the second's
    /// comes earlier in the chunk, and a failure wins over a difference
    /// found before it.
    #[test]
    fn failures_come_in_qemus_order() {
        let data = vec![7u8; SIZE];
        let late = Some(1_900_000);
        let early = Some(1000);
        let message = |e: &[Diagnostic]| match e.last() {
            Some(Diagnostic::Reported(text)) => text.clone(),
            other => format!("{other:?}"),
        };
        let (code, _, err) = run(&chain(data.clone(), late), &chain(data.clone(), early), false);
        assert_eq!(code, 4);
        assert_eq!(message(&err), "Error while reading offset 0 of a: Input/output error");
        let mut other = data.clone();
        other[5] = 1;
        let (code, out, err) = run(&chain(data.clone(), None), &chain(other, late), false);
        assert_eq!((code, out.as_str()), (4, ""));
        assert_eq!(message(&err), "Error while reading offset 0 of b: Input/output error");
        let (code, _, err) = run(&chain(data.clone(), None), &chain(data, Some(2 << 20)), false);
        assert_eq!(code, 4);
        assert_eq!(message(&err), "Error while reading offset 2097152 of b: Input/output error");
    }

    #[test]
    fn a_mismatch_is_named_by_its_sector_within_the_range() {
        assert_eq!(mismatch(0, 0), "Content mismatch at offset 0!");
        assert_eq!(mismatch(0, 511), "Content mismatch at offset 0!");
        assert_eq!(mismatch(0, 512), "Content mismatch at offset 512!");
        assert_eq!(mismatch(1000, 1023), "Content mismatch at offset 1512!");
    }

    #[test]
    fn the_first_difference_is_the_first_differing_byte() {
        let a = vec![0u8; 10_000];
        let mut b = a.clone();
        assert_eq!(first_difference(&a, &b), None);
        b[9999] = 1;
        assert_eq!(first_difference(&a, &b), Some(9999));
        b[4096] = 1;
        assert_eq!(first_difference(&a, &b), Some(4096));
        b[0] = 1;
        assert_eq!(first_difference(&a, &b), Some(0));
    }
}
