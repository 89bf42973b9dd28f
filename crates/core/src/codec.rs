//! Decompression of the compressed clusters and grains images carry
//! (qcow2's deflate and zstd clusters, vmdk's streamOptimized grains),
//! with the rules qemu's drivers apply to what comes out: the output
//! buffer's size is the cluster or grain size, never a number from the
//! file, so a stream that claims to inflate to more cannot take more
//! memory.
//!
//! Deflate is `flate2` on its `zlib-rs` backend: memory-safe Rust with
//! zlib-ng's speed. Zstd is libzstd (the `zstd` crate), the library qemu
//! itself decodes with: the pure-Rust decoder ran at under a third of its
//! speed on real clusters (the measurements that chose both are in
//! `docs/compat.md`, section 9.1).

use flate2::{Decompress, FlushDecompress, Status};

/// Why a stream did not decompress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodecError {
    /// The stream is not valid (qemu: `-EIO`).
    Corrupt,
    /// The stream ended before the output was full.
    Short,
}

/// Inflates the deflate stream in `input` into `out`, as zlib's
/// `inflate(Z_FINISH)` does: `zlib_header` is whether the stream has a
/// zlib header and trailer (vmdk's grains) or is bare deflate (qcow2's
/// clusters, `windowBits` -12). Returns how many bytes it produced and
/// whether the stream ended (`Z_STREAM_END`); producing `out.len()` bytes
/// with input left over is `Z_BUF_ERROR`'s case, which qemu's qcow2
/// accepts.
pub fn inflate(
    input: &[u8],
    out: &mut [u8],
    zlib_header: bool,
) -> Result<(usize, bool), CodecError> {
    let mut stream = Decompress::new(zlib_header);
    let status = stream.decompress(input, out, FlushDecompress::Finish);
    let produced = usize::try_from(stream.total_out()).map_err(|_| CodecError::Corrupt)?;
    match status {
        Ok(Status::StreamEnd) => Ok((produced, true)),
        Ok(Status::Ok | Status::BufError) => Ok((produced, false)),
        Err(_) => Err(CodecError::Corrupt),
    }
}

/// Decodes the zstd frames in `input` into `out` until it is full, as
/// qemu's `qcow2_zstd_decompress` does: frame after frame (input left
/// once `out` is full is ignored, the stream's length being known to a
/// sector only), failing on a decoder error, on a step that makes no
/// progress, and when the frame that fills `out` has more to give.
pub fn zstd_fill(input: &[u8], out: &mut [u8]) -> Result<(), CodecError> {
    use zstd::stream::raw::{Decoder, InBuffer, Operation, OutBuffer};
    let mut decoder = Decoder::new().map_err(|_| CodecError::Corrupt)?;
    let mut input = InBuffer::around(input);
    let mut output = OutBuffer::around(out);
    // What the last step returned: 0 once a frame is decoded and flushed.
    let mut hint = 0usize;
    while output.pos() < output.capacity() {
        let (in_before, out_before) = (input.pos(), output.pos());
        hint = decoder.run(&mut input, &mut output).map_err(|_| CodecError::Corrupt)?;
        if input.pos() <= in_before && output.pos() <= out_before {
            return Err(CodecError::Short);
        }
    }
    if hint > 0 {
        return Err(CodecError::Corrupt);
    }
    Ok(())
}

/// Zeros fed at once by [`inflate_zero_padded`].
const ZERO_CHUNK: [u8; 4096] = [0u8; 4096];

/// [`inflate`] of `input` followed by `zeros` zero bytes, without holding
/// the zeros: what a driver inflates when its stream runs past the end of
/// the file (qemu reads zeros there). The zeros are fed only while the
/// stream still wants input, so a count taken from a file costs time in
/// proportion to the output, never memory.
pub fn inflate_zero_padded(
    input: &[u8],
    zeros: u64,
    out: &mut [u8],
    zlib_header: bool,
) -> Result<(usize, bool), CodecError> {
    let mut stream = Decompress::new(zlib_header);
    let total_out =
        |s: &Decompress| usize::try_from(s.total_out()).map_err(|_| CodecError::Corrupt);
    let mut pos = 0usize;
    let mut zeros_left = zeros;
    loop {
        let rest = input.get(pos..).unwrap_or_default();
        let (chunk, from_input) = if rest.is_empty() {
            // At most the chunk's length.
            #[allow(clippy::cast_possible_truncation, reason = "at most 4096")]
            let n = zeros_left.min(ZERO_CHUNK.len() as u64) as usize;
            (&ZERO_CHUNK[..n], false)
        } else {
            (rest, true)
        };
        let last =
            (from_input && zeros_left == 0) || (!from_input && zeros_left == chunk.len() as u64);
        let flush = if last { FlushDecompress::Finish } else { FlushDecompress::None };
        let (in_before, out_before) = (stream.total_in(), stream.total_out());
        let done = total_out(&stream)?;
        match stream.decompress(chunk, out.get_mut(done..).unwrap_or_default(), flush) {
            Ok(Status::StreamEnd) => return Ok((total_out(&stream)?, true)),
            Err(_) => return Err(CodecError::Corrupt),
            Ok(Status::Ok | Status::BufError) => {}
        }
        let taken = stream.total_in() - in_before;
        if taken == 0 && stream.total_out() == out_before {
            // No room left, or nothing left to feed: zlib's `Z_BUF_ERROR`.
            return Ok((total_out(&stream)?, false));
        }
        if from_input {
            // At most the rest of the input.
            #[allow(clippy::cast_possible_truncation, reason = "at most `input.len()`")]
            {
                pos += taken as usize;
            }
        } else {
            zeros_left -= taken;
        }
    }
}

/// The compressed cluster and grain formats qemu writes, each with
/// qemu's own parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compressor {
    /// A qcow2 deflate cluster (compression type 0): raw deflate,
    /// `deflateInit2(-1, Z_DEFLATED, -12, 9, Z_DEFAULT_STRATEGY)`, one
    /// `deflate(Z_FINISH)` (qemu's `qcow2_zlib_compress`).
    Qcow2Deflate,
    /// A qcow2 zstd cluster (compression type 1): a fresh context with
    /// default parameters (level 3), one `ZSTD_compressStream2(..,
    /// ZSTD_e_end)` (qemu's `qcow2_zstd_compress`).
    Qcow2Zstd,
    /// A streamOptimized vmdk grain: zlib's `compress()` (level 6, zlib
    /// wrapper, 32 KiB window, memLevel 8).
    VmdkDeflate,
}

impl Compressor {
    /// Compresses `input` as qemu does with an output buffer of `cap`
    /// bytes (qcow2: `cluster_size - 1`; vmdk: twice the grain). None when
    /// the stream does not fit, which qemu answers by writing the cluster
    /// uncompressed (qcow2): for deflate, zlib not reaching
    /// `Z_STREAM_END` (a raw stream that fills `cap` exactly does not
    /// count as finished); for zstd, any non-zero return of the single
    /// call (qemu tells `-ENOMEM` from `-EIO` by the size of that return,
    /// but with `ZSTD_e_end` a non-zero return only comes with a full
    /// buffer, the `-ENOMEM` case).
    pub fn compress(&self, input: &[u8], cap: usize) -> Option<Vec<u8>> {
        self.session().compress(input, cap)
    }

    /// A compressor whose tables are kept from one call to the next (the
    /// output is the same as [`Compressor::compress`]'s).
    pub fn session(&self) -> CompressSession {
        let deflater = match self {
            Compressor::Qcow2Deflate => {
                Some(instar_deflate::Deflater::new(instar_deflate::Params::QCOW2))
            }
            Compressor::VmdkDeflate => {
                Some(instar_deflate::Deflater::new(instar_deflate::Params::VMDK))
            }
            Compressor::Qcow2Zstd => None,
        };
        CompressSession { deflater }
    }
}

/// A [`Compressor`] ready for many clusters (one per thread).
pub struct CompressSession {
    /// The deflate state; None for zstd, whose context qemu creates
    /// fresh for every cluster (kept fresh here too, so that no state can
    /// carry over).
    deflater: Option<instar_deflate::Deflater>,
}

impl CompressSession {
    /// [`Compressor::compress`] with this session's tables.
    pub fn compress(&mut self, input: &[u8], cap: usize) -> Option<Vec<u8>> {
        let mut out = vec![0u8; cap];
        let len = match &mut self.deflater {
            Some(deflater) => deflater.compress_into(input, &mut out)?,
            None => zstd_compress(input, &mut out)?,
        };
        out.truncate(len);
        Some(out)
    }
}

/// One `ZSTD_compressStream2(.., ZSTD_e_end)` call with a fresh default
/// context into `out`; the length written, or None unless it returned 0
/// (the frame complete).
fn zstd_compress(input: &[u8], out: &mut [u8]) -> Option<usize> {
    use zstd::zstd_safe::{zstd_sys::ZSTD_EndDirective, CCtx, InBuffer, OutBuffer};
    let mut cctx = CCtx::try_create()?;
    let mut output = OutBuffer::around(out);
    let mut input = InBuffer::around(input);
    match cctx.compress_stream2(&mut output, &mut input, ZSTD_EndDirective::ZSTD_e_end) {
        Ok(0) => Some(output.pos()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bare deflate stream of "aaaa": one fixed-Huffman block.
    fn deflate_aaaa() -> Vec<u8> {
        let mut c = flate2::Compress::new(flate2::Compression::default(), false);
        let mut out = vec![0u8; 64];
        c.compress(b"aaaa", &mut out, flate2::FlushCompress::Finish).unwrap();
        out.truncate(usize::try_from(c.total_out()).unwrap());
        out
    }

    #[test]
    fn inflates_exactly_into_the_buffer() {
        let z = deflate_aaaa();
        let mut out = [0u8; 4];
        assert_eq!(inflate(&z, &mut out, false), Ok((4, true)));
        assert_eq!(&out, b"aaaa");
        // A smaller buffer fills and stops, the stream not ended.
        let mut small = [0u8; 2];
        assert_eq!(inflate(&z, &mut small, false), Ok((2, false)));
        // A larger one is short of data.
        let mut large = [0u8; 8];
        assert_eq!(inflate(&z, &mut large, false), Ok((4, true)));
        // Garbage is refused.
        assert_eq!(inflate(&[0xff; 8], &mut large, false), Err(CodecError::Corrupt));
    }

    #[test]
    fn zstd_fills_exactly_like_qemu() {
        let frame = |data: &[u8]| zstd::bulk::compress(data, 3).unwrap();
        let mut out = [0u8; 8];
        // One frame of exactly the output's size, with sector padding.
        let mut z = frame(b"abcdefgh");
        z.extend_from_slice(&[0; 100]);
        assert_eq!(zstd_fill(&z, &mut out), Ok(()));
        assert_eq!(&out, b"abcdefgh");
        // Two frames that fill it together.
        let mut z = frame(b"abcd");
        z.extend(frame(b"efgh"));
        assert_eq!(zstd_fill(&z, &mut out), Ok(()));
        assert_eq!(&out, b"abcdefgh");
        // A frame with more than fits: the cluster was damaged.
        assert!(zstd_fill(&frame(b"abcdefghij"), &mut out).is_err());
        // Too little, then padding that is no frame.
        let mut z = frame(b"abc");
        z.extend_from_slice(&[0; 16]);
        assert!(zstd_fill(&z, &mut out).is_err());
        // Too little and nothing after it: no progress.
        assert_eq!(zstd_fill(&frame(b"abc"), &mut out), Err(CodecError::Short));
        assert!(zstd_fill(&[0xff; 32], &mut out).is_err());
    }

    /// A zlib stream of `data`.
    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut c = flate2::Compress::new(flate2::Compression::default(), true);
        let mut out = vec![0u8; data.len() + 64];
        c.compress(data, &mut out, flate2::FlushCompress::Finish).unwrap();
        out.truncate(usize::try_from(c.total_out()).unwrap());
        out
    }

    #[test]
    fn zero_padding_feeds_a_stream_cut_short() {
        let data: Vec<u8> = (0..5000u32).map(|i| (i % 7) as u8).collect();
        let z = zlib(&data);
        let mut out = vec![0u8; 5000];
        assert_eq!(inflate_zero_padded(&z, 0, &mut out, true), Ok((5000, true)));
        assert_eq!(out, data);
        // Exactly full: the trailer still ends the stream.
        assert_eq!(inflate_zero_padded(&z, 1 << 40, &mut out, true), Ok((5000, true)));
        // One byte of room too few: not ended, whatever follows.
        let mut small = vec![0u8; 4999];
        assert_eq!(inflate_zero_padded(&z, 1 << 40, &mut small, true), Ok((4999, false)));
        // The stream cut: zeros do not complete a deflate stream here.
        let cut = &z[..z.len() - 6];
        assert!(!matches!(inflate_zero_padded(cut, 0, &mut out, true), Ok((_, true))));
        assert!(!matches!(inflate_zero_padded(cut, 1 << 20, &mut out, true), Ok((_, true))));
        // A stored block of three zero bytes, cut before them: the
        // padding supplies them, then the (never zero) adler32 is missing
        // (3 zeros more) or wrong (7 zeros more).
        let stored = [0x78, 0x01, 0x01, 0x03, 0x00, 0xfc, 0xff];
        let mut o = [0xaau8; 3];
        assert_eq!(inflate_zero_padded(&stored, 3, &mut o, true), Ok((3, false)));
        assert_eq!(o, [0, 0, 0]);
        assert_eq!(inflate_zero_padded(&stored, 7, &mut o, true), Err(CodecError::Corrupt));
        let whole = [0x78, 0x01, 0x01, 0x03, 0x00, 0xfc, 0xff, 0, 0, 0, 0x00, 0x03, 0x00, 0x01];
        assert_eq!(inflate_zero_padded(&whole, 0, &mut o, true), Ok((3, true)));
        assert_eq!(inflate_zero_padded(&whole[..7], 3, &mut o, true), Ok((3, false)));
    }

    /// Compressible and incompressible clusters.
    fn clusters() -> (Vec<u8>, Vec<u8>) {
        let text: Vec<u8> = b"qemu-img convert -c writes compressed clusters\n"
            .iter()
            .copied()
            .cycle()
            .take(65536)
            .collect();
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let noise: Vec<u8> = (0..65536)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x.to_le_bytes()[0]
            })
            .collect();
        (text, noise)
    }

    #[test]
    fn compressed_clusters_decode_back_and_noise_does_not_fit() {
        let (text, noise) = clusters();
        let cap = 65535;
        let z = Compressor::Qcow2Deflate.compress(&text, cap).unwrap();
        let mut out = vec![0u8; 65536];
        assert_eq!(inflate(&z, &mut out, false), Ok((65536, true)));
        assert_eq!(out, text);
        let z = Compressor::VmdkDeflate.compress(&text, 2 * 65536).unwrap();
        assert_eq!(inflate(&z, &mut out, true), Ok((65536, true)));
        assert_eq!(out, text);
        let z = Compressor::Qcow2Zstd.compress(&text, cap).unwrap();
        // qemu's frame: magic, then a header with the content size.
        assert_eq!(z[..4], [0x28, 0xb5, 0x2f, 0xfd]);
        out.fill(0);
        assert_eq!(zstd_fill(&z, &mut out), Ok(()));
        assert_eq!(out, text);
        for c in [Compressor::Qcow2Deflate, Compressor::Qcow2Zstd] {
            assert_eq!(c.compress(&noise, cap), None, "{c:?}");
        }
        // The vmdk grain buffer is twice the grain: noise fits.
        assert!(Compressor::VmdkDeflate.compress(&noise, 2 * 65536).is_some());
        // A session gives the same bytes call after call.
        let mut session = Compressor::Qcow2Deflate.session();
        let once = Compressor::Qcow2Deflate.compress(&text, cap);
        assert_eq!(session.compress(&noise, cap), None);
        assert_eq!(session.compress(&text, cap), once);
        assert_eq!(session.compress(&text, cap), once);
    }

    const QCOW2_AAA: &[u8] = &[75, 76, 132, 129, 164, 100, 8, 2, 0];
    const VMDK_AAA: &[u8] = &[120, 156, 75, 76, 132, 129, 164, 100, 8, 2, 0, 65, 4, 6, 220];

    /// The deflate bytes of a small input, as zlib 1.2.13 writes them
    /// with qemu's parameters (python3: `zlib.compressobj(-1,
    /// zlib.DEFLATED, -12, 9)` and `zlib.compress`).
    #[test]
    fn deflate_bytes_are_zlibs() {
        let z = Compressor::Qcow2Deflate.compress(b"aaaaaaaaaabcabcabc", 100).unwrap();
        assert_eq!(z, QCOW2_AAA);
        let z = Compressor::VmdkDeflate.compress(b"aaaaaaaaaabcabcabc", 100).unwrap();
        assert_eq!(z, VMDK_AAA);
    }
}
