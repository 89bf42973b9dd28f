//! The deflate alphabet (RFC 1951, section 3.2.5): how a match length and
//! a distance map to a code plus extra bits, and the fixed Huffman code of
//! block type 1. All tables are computed at compile time from the RFC's
//! rules rather than typed in; the `as` casts in them narrow values that
//! the loops keep below the type's maximum (codes below 30, lengths below
//! 16, distances below 32768), which `const` code cannot check otherwise.
#![allow(clippy::cast_possible_truncation)]

/// Shortest match deflate can express.
pub const MIN_MATCH: usize = 3;
/// Longest match deflate can express.
pub const MAX_MATCH: usize = 258;
/// Number of literal byte values.
pub const LITERALS: usize = 256;
/// The end-of-block symbol of the literal/length alphabet.
pub const END_BLOCK: usize = 256;
/// Number of length codes (257..=285).
pub const LENGTH_CODES: usize = 29;
/// Size of the literal/length alphabet a block's tree covers.
pub const L_CODES: usize = LITERALS + 1 + LENGTH_CODES;
/// Size of the distance alphabet.
pub const D_CODES: usize = 30;
/// Size of the code-length alphabet (the tree that describes the trees).
pub const BL_CODES: usize = 19;
/// Longest code of the literal/length and distance trees.
pub const MAX_BITS: usize = 15;
/// [`MAX_BITS`] as a code length.
pub const MAX_CODE_BITS: u8 = MAX_BITS as u8;
/// Longest code of the code-length tree.
pub const MAX_BL_BITS: u8 = 7;
/// Code-length symbol: repeat the previous length 3-6 times (2 extra bits).
pub const REP_3_6: usize = 16;
/// Code-length symbol: 3-10 zero lengths (3 extra bits).
pub const REPZ_3_10: usize = 17;
/// Code-length symbol: 11-138 zero lengths (7 extra bits).
pub const REPZ_11_138: usize = 18;

/// Extra bits of each length code.
pub const EXTRA_LBITS: [u8; LENGTH_CODES] =
    [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0];
/// Extra bits of each distance code.
pub const EXTRA_DBITS: [u8; D_CODES] = [
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13,
    13,
];
/// Extra bits of each code-length symbol.
pub const EXTRA_BLBITS: [u8; BL_CODES] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 3, 7];
/// The order in which a dynamic block header lists the code-length
/// code's lengths.
pub const BL_ORDER: [u8; BL_CODES] =
    [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];

/// Length code (0-based, add 257 for the symbol) of each `length - 3`.
/// Length 258 has its own code 28, although 227 + 31 would also fit code
/// 27: the table is built code by code and the last entry overwritten.
pub const LENGTH_CODE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut length = 0usize;
    let mut code = 0usize;
    while code < LENGTH_CODES - 1 {
        let mut n = 0;
        while n < (1usize << EXTRA_LBITS[code]) {
            t[length] = code as u8;
            length += 1;
            n += 1;
        }
        code += 1;
    }
    t[255] = (LENGTH_CODES - 1) as u8;
    t
};

/// First `length - 3` of each length code.
pub const BASE_LENGTH: [u16; LENGTH_CODES] = {
    let mut t = [0u16; LENGTH_CODES];
    let mut length = 0u16;
    let mut code = 0;
    while code < LENGTH_CODES - 1 {
        t[code] = length;
        length += 1 << EXTRA_LBITS[code];
        code += 1;
    }
    // Code 28 (length 258) has no extra bits; its base is never used.
    t
};

/// First `distance - 1` of each distance code.
pub const BASE_DIST: [u16; D_CODES] = {
    let mut t = [0u16; D_CODES];
    let mut dist = 0u32;
    let mut code = 0;
    while code < D_CODES {
        t[code] = dist as u16;
        dist += 1 << EXTRA_DBITS[code];
        code += 1;
    }
    t
};

/// Distance code of a `distance - 1` below 256 (entries 0..256) and of
/// `(distance - 1) >> 7` for the rest (entries 256..512): distances above
/// 256 only change code every 128.
const DIST_CODE: [u8; 512] = {
    let mut t = [0u8; 512];
    let mut code = 0;
    while code < D_CODES {
        let base = BASE_DIST[code] as usize;
        let count = 1usize << EXTRA_DBITS[code];
        let mut i = 0;
        while i < count {
            let d = base + i;
            if d < 256 {
                t[d] = code as u8;
            } else {
                t[256 + (d >> 7)] = code as u8;
            }
            i += 1;
        }
        code += 1;
    }
    t
};

/// Distance code of `dist` = distance - 1 (below 32768).
#[inline]
pub fn dist_code(dist: u16) -> u8 {
    let index = if dist < 256 { usize::from(dist) } else { 256 + usize::from((dist >> 7) & 0xff) };
    DIST_CODE[index]
}

/// Reverses the low `len` bits of `code`: deflate sends Huffman codes
/// most significant bit first inside an LSB-first bit stream.
pub const fn bit_reverse(code: u16, len: usize) -> u16 {
    let mut res = 0u16;
    let mut c = code;
    let mut i = 0;
    while i < len {
        res = (res << 1) | (c & 1);
        c >>= 1;
        i += 1;
    }
    res
}

/// Bit length of each literal/length symbol in the fixed code (RFC 1951
/// 3.2.6), symbols 286 and 287 included (they take part in assigning the
/// codes).
pub const STATIC_LTREE_LEN: [u8; L_CODES + 2] = {
    let mut t = [0u8; L_CODES + 2];
    let mut n = 0;
    while n < L_CODES + 2 {
        t[n] = if n <= 143 {
            8
        } else if n <= 255 {
            9
        } else if n <= 279 {
            7
        } else {
            8
        };
        n += 1;
    }
    t
};

/// Bit-reversed fixed codes of the literal/length symbols.
pub const STATIC_LTREE_CODE: [u16; L_CODES + 2] = {
    let mut count = [0u16; MAX_BITS + 1];
    let mut n = 0;
    while n < L_CODES + 2 {
        count[STATIC_LTREE_LEN[n] as usize] += 1;
        n += 1;
    }
    let next = first_codes(&count);
    let mut next = next;
    let mut t = [0u16; L_CODES + 2];
    let mut n = 0;
    while n < L_CODES + 2 {
        let len = STATIC_LTREE_LEN[n];
        t[n] = bit_reverse(next[len as usize], len as usize);
        next[len as usize] += 1;
        n += 1;
    }
    t
};

/// Bit length of every distance code in the fixed code.
pub const STATIC_DTREE_LEN: u8 = 5;

/// First code of each bit length for a canonical Huffman code with
/// `count[len]` codes of each length (RFC 1951 3.2.2, step 2).
pub const fn first_codes(count: &[u16; MAX_BITS + 1]) -> [u16; MAX_BITS + 1] {
    let mut next = [0u16; MAX_BITS + 1];
    let mut code = 0u32;
    let mut bits = 1;
    while bits <= MAX_BITS {
        code = (code + count[bits - 1] as u32) << 1;
        next[bits] = (code & 0xffff) as u16;
        bits += 1;
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_and_distance_codes_follow_rfc1951() {
        // Lengths 3..=10 are codes 257..=264, 11-12 is 265, 258 is 285.
        assert_eq!(LENGTH_CODE[0], 0);
        assert_eq!(LENGTH_CODE[7], 7);
        assert_eq!(LENGTH_CODE[8], 8);
        assert_eq!(LENGTH_CODE[9], 8);
        assert_eq!(LENGTH_CODE[254], 27);
        assert_eq!(LENGTH_CODE[255], 28);
        assert_eq!(BASE_LENGTH[27], 224);
        assert_eq!(dist_code(0), 0);
        assert_eq!(dist_code(4), 4);
        assert_eq!(dist_code(256), 16);
        assert_eq!(dist_code(32767), 29);
        for d in 0..32768u16 {
            let c = usize::from(dist_code(d));
            assert!(
                BASE_DIST[c] <= d && u32::from(d) < u32::from(BASE_DIST[c]) + (1 << EXTRA_DBITS[c])
            );
        }
        assert_eq!(BASE_DIST[29], 24576);
        // Fixed code: literal 0 is 00110000 (reversed 00001100).
        assert_eq!(STATIC_LTREE_CODE[0], 0x0c);
        assert_eq!(STATIC_LTREE_LEN[END_BLOCK], 7);
        assert_eq!(STATIC_LTREE_CODE[END_BLOCK], 0);
    }
}
