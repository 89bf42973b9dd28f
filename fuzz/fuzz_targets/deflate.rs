//! instar-deflate, the compressor that writes zlib's bytes for `convert
//! -c`: any parameters, any input. The input's first four bytes pick the
//! level, window bits, memory level and wrapper; the rest is compressed.
//! The stream must inflate back to the input (instar's inflater, as a
//! reader of the image would), must fit in twice the input plus 1 KiB,
//! must be refused by a buffer one byte too small (raw: the stream's own
//! length), and a reused compressor must give a fresh one's bytes.
#![no_main]

use instar_core::codec::inflate;
use instar_deflate::{compress_into, Deflater, Params};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&[level, wbits, mem, flags], input)) = data.split_first_chunk::<4>() else {
        return;
    };
    let level = if level % 10 == 0 { -1 } else { i32::from(level % 10) };
    let zlib = flags & 1 != 0;
    let params = Params::new(level, 9 + wbits % 7, 1 + mem % 9, zlib).unwrap();

    let mut out = vec![0u8; input.len() * 2 + 1024];
    let n = compress_into(&params, input, &mut out).expect("fits in twice the input");
    let stream = &out[..n];

    let mut back = vec![0u8; input.len() + 1];
    assert_eq!(inflate(stream, &mut back, zlib), Ok((input.len(), true)));
    assert_eq!(&back[..input.len()], input);

    // The bound: a raw stream must be shorter than the buffer, a wrapped
    // one no longer.
    let tight = if zlib { n - 1 } else { n };
    assert_eq!(compress_into(&params, input, &mut vec![0u8; tight]), None);

    // A compressor used before gives the same bytes as a fresh one.
    let mut reused = Deflater::new(params);
    let mut scratch = vec![0u8; 64 + input.len() / 2];
    let _ = reused.compress_into(input.get(input.len() / 3..).unwrap_or_default(), &mut scratch);
    let mut again = vec![0u8; n + 1];
    assert_eq!(reused.compress_into(input, &mut again), Some(n));
    assert_eq!(&again[..n], stream);
});
