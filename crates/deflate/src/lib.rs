//! A deflate compressor that writes, byte for byte, what zlib 1.2.13's
//! `deflate()` writes for the same parameters, in safe Rust.
//!
//! qemu compresses qcow2 clusters and streamOptimized vmdk grains with
//! the system zlib, and instar must write the same files; other Rust
//! deflaters (zlib-rs, miniz_oxide) choose different matches and blocks,
//! and flate2's API cannot ask for zlib's `memLevel` 9. So this crate
//! follows zlib's algorithm where its choices show in the output: the
//! window and hash chains (`matcher`), the lazy and greedy parses and
//! where blocks end (`stream`), the symbol buffer and the choice of block
//! type (`block`), the Huffman trees (`huffman`), the alphabet (`codes`)
//! and the bit packing (`bits`).
//!
//! Scope: one-shot compression of a whole buffer, as `deflate(Z_FINISH)`
//! called once (qemu's qcow2 path) or `compress()` (its vmdk path), with
//! the default strategy, levels 1 to 9, window bits 9 to 15, memory
//! levels 1 to 9, raw or zlib-wrapped. Level 0 (stored blocks only,
//! shaped by the caller's buffer sizes) and the gzip wrapper are not
//! implemented. Memory is bounded by the parameters (at most a 64 KiB
//! window, 64 Ki hash heads, 32 Ki symbols), never by the input.

mod bits;
mod block;
mod codes;
mod huffman;
mod matcher;
mod stream;

use bits::BitWriter;
use block::Block;
use matcher::Matcher;
use stream::{Parse, LEVELS};

/// zlib's `Z_DEFAULT_COMPRESSION`, which means level 6.
pub const DEFAULT_LEVEL: i32 = -1;
/// The level `DEFAULT_LEVEL` stands for.
const DEFAULT_LEVEL_IS: u8 = 6;
/// Bytes of the zlib wrapper's trailer (the Adler-32 of the input).
const TRAILER_LEN: usize = 4;

/// Why parameters were refused (the cases `deflateInit2` refuses, plus
/// level 0, which this crate does not implement).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamError {
    /// The level is not -1 or 1 to 9.
    Level,
    /// The window bits are not 9 to 15 (8 is taken as 9 with the zlib
    /// wrapper, as zlib does).
    WindowBits,
    /// The memory level is not 1 to 9.
    MemLevel,
}

/// Compression parameters, as given to zlib's `deflateInit2` with
/// `Z_DEFLATED` and `Z_DEFAULT_STRATEGY`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    level: u8,
    window_bits: u8,
    mem_level: u8,
    zlib_header: bool,
}

impl Params {
    /// qemu's qcow2 deflate clusters: level -1 (6), window bits -12 (raw
    /// deflate, 4 KiB window), memLevel 9.
    pub const QCOW2: Params =
        Params { level: 6, window_bits: 12, mem_level: 9, zlib_header: false };
    /// qemu's streamOptimized vmdk grains, zlib's `compress()`: level 6,
    /// zlib wrapper, 32 KiB window, memLevel 8.
    pub const VMDK: Params = Params { level: 6, window_bits: 15, mem_level: 8, zlib_header: true };

    /// Parameters as `deflateInit2(level, Z_DEFLATED, ±window_bits,
    /// mem_level, Z_DEFAULT_STRATEGY)` takes them (`zlib_header`: the sign
    /// of the window bits).
    pub fn new(
        level: i32,
        window_bits: u8,
        mem_level: u8,
        zlib_header: bool,
    ) -> Result<Params, ParamError> {
        let level = match level {
            DEFAULT_LEVEL => DEFAULT_LEVEL_IS,
            1..=9 => u8::try_from(level).map_err(|_| ParamError::Level)?,
            _ => return Err(ParamError::Level),
        };
        let window_bits = match window_bits {
            // zlib's "256-byte window bug" work-around, zlib wrapper only.
            8 if zlib_header => 9,
            9..=15 => window_bits,
            _ => return Err(ParamError::WindowBits),
        };
        if !(1..=9).contains(&mem_level) {
            return Err(ParamError::MemLevel);
        }
        Ok(Params { level, window_bits, mem_level, zlib_header })
    }

    /// The compression level, 1 to 9.
    pub fn level(&self) -> u8 {
        self.level
    }

    /// Log2 of the history size.
    pub fn window_bits(&self) -> u8 {
        self.window_bits
    }

    /// zlib's memory level: the hash has `mem_level + 7` bits and a block
    /// ends after `(1 << (mem_level + 6)) - 1` symbols.
    pub fn mem_level(&self) -> u8 {
        self.mem_level
    }

    /// Whether the stream has the zlib header and Adler-32 trailer.
    pub fn zlib_header(&self) -> bool {
        self.zlib_header
    }
}

/// A compressor whose tables are kept from one input to the next (each
/// input is still compressed as by a fresh zlib stream).
pub struct Deflater {
    params: Params,
    matcher: Matcher,
    block: Block,
}

impl Deflater {
    /// A compressor for `params`.
    pub fn new(params: Params) -> Self {
        let hash_bits = u32::from(params.mem_level) + 7;
        let lit_bufsize = 1usize << (params.mem_level + 6);
        Deflater {
            params,
            matcher: Matcher::new(u32::from(params.window_bits), hash_bits),
            // zlib 1.2.12 and later end a block one symbol short of the
            // buffer (`sym_end = (lit_bufsize - 1) * 3` bytes).
            block: Block::new(lit_bufsize - 1),
        }
    }

    /// Compresses `input` into `out` as one `deflate(Z_FINISH)` call with
    /// `out.len()` bytes of room would; returns the stream's length, or
    /// None when zlib would not have finished (`Z_OK` or `Z_BUF_ERROR`
    /// rather than `Z_STREAM_END`): a raw stream must be shorter than
    /// `out` (zlib reports one that fills it exactly as unfinished), a
    /// wrapped one, trailer included, no longer. The bytes of `out` past
    /// the returned length, or all of them on None, are unspecified.
    pub fn compress_into(&mut self, input: &[u8], out: &mut [u8]) -> Option<usize> {
        let room = if self.params.zlib_header {
            out.len().checked_sub(TRAILER_LEN)?
        } else {
            out.len().checked_sub(1)?
        };
        let mut w = BitWriter::new(&mut out[..room]);
        if self.params.zlib_header {
            w.put_bytes(&stream::zlib_header(self.params.window_bits, self.params.level));
        }
        self.matcher.reset();
        self.block.reset();
        let (parse, limits) = LEVELS[usize::from(self.params.level)];
        let done = match parse {
            Parse::Lazy => {
                stream::deflate_lazy(&mut self.matcher, &mut self.block, &mut w, input, &limits)
            }
            Parse::Greedy => {
                stream::deflate_greedy(&mut self.matcher, &mut self.block, &mut w, input, &limits)
            }
        };
        if !done || w.overflowed() {
            return None;
        }
        let len = w.len();
        if !self.params.zlib_header {
            return Some(len);
        }
        let trailer = stream::adler32(input).to_be_bytes();
        out.get_mut(len..len + TRAILER_LEN)?.copy_from_slice(&trailer);
        Some(len + TRAILER_LEN)
    }
}

/// Compresses `input` into `out` with `params`: [`Deflater::compress_into`]
/// on a fresh compressor.
pub fn compress_into(params: &Params, input: &[u8], out: &mut [u8]) -> Option<usize> {
    Deflater::new(*params).compress_into(input, out)
}
