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
}
