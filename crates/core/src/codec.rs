//! Decompression of the compressed clusters and grains images carry
//! (qcow2's deflate and zstd clusters, vmdk's streamOptimized grains),
//! with the rules qemu's drivers apply to what comes out: the output
//! buffer's size is the cluster or grain size, never a number from the
//! file, so a stream that claims to inflate to more cannot take more
//! memory.
//!
//! Deflate is `flate2` on its `zlib-rs` backend: memory-safe Rust with
//! zlib-ng's speed (the measurements that chose it are in
//! `docs/compat.md`, the read layer's section).

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
}
