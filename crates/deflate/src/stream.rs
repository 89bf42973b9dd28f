//! The stream driver: the two parsing loops of zlib (`deflate_fast` for
//! levels 1-3, `deflate_slow` with lazy matching for 4-9), where blocks
//! end, and the zlib wrapper (RFC 1950) around the deflate data.
//!
//! A block ends when its symbol buffer is full (`lit_bufsize - 1`
//! symbols since zlib 1.2.12) and at the end of the input; the block
//! covers the window bytes from where the previous one ended.

use crate::bits::BitWriter;
use crate::block::Block;
use crate::codes::MIN_MATCH;
use crate::matcher::{Limits, Matcher, MIN_LOOKAHEAD};

/// A match of the minimum length farther than this is not worth its
/// distance code (lazy levels only).
const TOO_FAR: usize = 4096;

/// Which of zlib's parsing loops a level uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parse {
    /// Take the first match found; insert the strings of short matches.
    Greedy,
    /// Look one byte ahead for a longer match before taking one.
    Lazy,
}

/// zlib's `configuration_table` for levels 1 to 9 (index 0 unused:
/// level 0 stores without compressing, which this crate does not do).
pub const LEVELS: [(Parse, Limits); 10] = {
    const fn l(
        parse: Parse,
        good: usize,
        lazy: usize,
        nice: usize,
        chain: usize,
    ) -> (Parse, Limits) {
        (parse, Limits { good, lazy, nice, chain })
    }
    [
        l(Parse::Greedy, 0, 0, 0, 0),
        l(Parse::Greedy, 4, 4, 8, 4),
        l(Parse::Greedy, 4, 5, 16, 8),
        l(Parse::Greedy, 4, 6, 32, 32),
        l(Parse::Lazy, 4, 4, 16, 16),
        l(Parse::Lazy, 8, 16, 32, 32),
        l(Parse::Lazy, 8, 16, 128, 128),
        l(Parse::Lazy, 8, 32, 128, 256),
        l(Parse::Lazy, 32, 128, 258, 1024),
        l(Parse::Lazy, 32, 258, 258, 4096),
    ]
};

/// Ends the current block at `strstart` (zlib's `FLUSH_BLOCK_ONLY`): its
/// bytes are offered for a stored block while the window still holds
/// them all.
fn flush_block(m: &mut Matcher, block: &mut Block, out: &mut BitWriter<'_>, last: bool) {
    let end = m.slid + m.strstart;
    let raw = match m.block_start.checked_sub(m.slid) {
        Some(start) => m.window.get(start..m.strstart),
        None => None,
    };
    block.flush(out, raw, end - m.block_start, last);
    m.block_start = end;
}

/// Compresses all of `input` with lazy matching. False when the output
/// ran out of room (zlib stops there too).
pub fn deflate_lazy(
    m: &mut Matcher,
    block: &mut Block,
    out: &mut BitWriter<'_>,
    input: &[u8],
    lim: &Limits,
) -> bool {
    let mut match_length = MIN_MATCH - 1;
    let mut match_available = false;
    loop {
        if m.lookahead < MIN_LOOKAHEAD {
            m.fill(input);
            if m.lookahead == 0 {
                break;
            }
        }
        let hash_head = if m.lookahead >= MIN_MATCH { m.insert_string(m.strstart) } else { 0 };
        let prev_length = match_length;
        let prev_match = m.match_start;
        match_length = MIN_MATCH - 1;
        if hash_head != 0 && prev_length < lim.lazy && m.strstart - hash_head <= m.max_dist() {
            match_length = m.longest_match(hash_head, prev_length, lim);
            if match_length == MIN_MATCH && m.strstart - m.match_start > TOO_FAR {
                match_length = MIN_MATCH - 1;
            }
        }
        if prev_length >= MIN_MATCH && match_length <= prev_length {
            // The match at the previous byte is the better one: emit it and
            // hash the strings it covers, as far as three bytes remain.
            let max_insert = m.strstart + m.lookahead - MIN_MATCH;
            let full = block.matched(m.strstart - 1 - prev_match, prev_length);
            m.lookahead -= prev_length - 1;
            for _ in 0..prev_length - 2 {
                m.strstart += 1;
                if m.strstart <= max_insert {
                    m.insert_string(m.strstart);
                }
            }
            match_available = false;
            match_length = MIN_MATCH - 1;
            m.strstart += 1;
            if full {
                flush_block(m, block, out, false);
                if out.overflowed() {
                    return false;
                }
            }
        } else if match_available {
            // No better match here: the previous byte goes out alone.
            let full = block.literal(m.window[m.strstart - 1]);
            if full {
                flush_block(m, block, out, false);
            }
            m.strstart += 1;
            m.lookahead -= 1;
            if out.overflowed() {
                return false;
            }
        } else {
            match_available = true;
            m.strstart += 1;
            m.lookahead -= 1;
        }
    }
    if match_available {
        block.literal(m.window[m.strstart - 1]);
    }
    m.insert = m.strstart.min(MIN_MATCH - 1);
    flush_block(m, block, out, true);
    !out.overflowed()
}

/// Compresses all of `input` taking each match as found. False when the
/// output ran out of room.
pub fn deflate_greedy(
    m: &mut Matcher,
    block: &mut Block,
    out: &mut BitWriter<'_>,
    input: &[u8],
    lim: &Limits,
) -> bool {
    // Kept across positions, as zlib does: a position without a chain
    // keeps the (short) length of the last search.
    let mut match_length = 0usize;
    loop {
        if m.lookahead < MIN_LOOKAHEAD {
            m.fill(input);
            if m.lookahead == 0 {
                break;
            }
        }
        let hash_head = if m.lookahead >= MIN_MATCH { m.insert_string(m.strstart) } else { 0 };
        if hash_head != 0 && m.strstart - hash_head <= m.max_dist() {
            match_length = m.longest_match(hash_head, MIN_MATCH - 1, lim);
        }
        let full;
        if match_length >= MIN_MATCH {
            full = block.matched(m.strstart - m.match_start, match_length);
            m.lookahead -= match_length;
            if match_length <= lim.lazy && m.lookahead >= MIN_MATCH {
                for _ in 0..match_length - 1 {
                    m.strstart += 1;
                    m.insert_string(m.strstart);
                }
                m.strstart += 1;
            } else {
                m.strstart += match_length;
                m.rehash(m.strstart);
            }
            match_length = 0;
        } else {
            full = block.literal(m.window[m.strstart]);
            m.lookahead -= 1;
            m.strstart += 1;
        }
        if full {
            flush_block(m, block, out, false);
            if out.overflowed() {
                return false;
            }
        }
    }
    m.insert = m.strstart.min(MIN_MATCH - 1);
    flush_block(m, block, out, true);
    !out.overflowed()
}

/// The two bytes of a zlib header (RFC 1950): method 8 with the window
/// size, zlib's level hint, and the check bits (zlib adds
/// `31 - header % 31`, so a value that already divides by 31 gets 31 more;
/// the same rule is kept).
pub fn zlib_header(window_bits: u8, level: u8) -> [u8; 2] {
    const Z_DEFLATED: u16 = 8;
    let level_flags: u16 = match level {
        0 | 1 => 0,
        2..=5 => 1,
        6 => 2,
        _ => 3,
    };
    let mut header = (Z_DEFLATED + ((u16::from(window_bits) - 8) << 4)) << 8;
    header |= level_flags << 6;
    header += 31 - (header % 31);
    header.to_be_bytes()
}

/// Adler-32 of `data` (RFC 1950, section 8.2).
pub fn adler32(data: &[u8]) -> u32 {
    /// The Adler-32 modulus.
    const BASE: u32 = 65521;
    /// Bytes summed before the sums could overflow 32 bits.
    const NMAX: usize = 5552;
    let (mut a, mut b) = (1u32, 0u32);
    for chunk in data.chunks(NMAX) {
        for &byte in chunk {
            a += u32::from(byte);
            b += a;
        }
        a %= BASE;
        b %= BASE;
    }
    (b << 16) | a
}
