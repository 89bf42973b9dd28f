//! A block: the symbols the matcher chose since the last block, their
//! counts, and the choice zlib makes when the block ends (`_tr_flush_block`)
//! among a stored, a fixed-code and a dynamic-code block, then the block's
//! bits.
//!
//! The choice compares zlib's own cost estimates, in bytes rounded up
//! with the 3 header bits: fixed wins over dynamic when it is no larger;
//! stored wins when its length plus 4 (the LEN and NLEN fields) is no
//! larger than that, and only if the block's bytes are still in the
//! window (a block that began before the window last slid cannot be
//! stored).

use crate::bits::BitWriter;
use crate::codes::{
    dist_code, BASE_DIST, BASE_LENGTH, BL_CODES, BL_ORDER, D_CODES, END_BLOCK, EXTRA_BLBITS,
    EXTRA_DBITS, EXTRA_LBITS, LENGTH_CODE, LITERALS, L_CODES, MAX_BL_BITS, MAX_CODE_BITS,
    MIN_MATCH, REPZ_11_138, REPZ_3_10, REP_3_6, STATIC_DTREE_LEN, STATIC_LTREE_CODE,
    STATIC_LTREE_LEN,
};
use crate::huffman::{Builder, Cost, Tree, TreeKind};

/// Block type field: stored.
const STORED_BLOCK: usize = 0;
/// Block type field: fixed Huffman codes.
const STATIC_TREES: usize = 1;
/// Block type field: dynamic Huffman codes.
const DYN_TREES: usize = 2;

/// Fixed distance code lengths, to price a block as fixed.
static STATIC_DTREE_LENS: [u8; D_CODES] = [STATIC_DTREE_LEN; D_CODES];

/// The literal/length tree.
static L_KIND: TreeKind = TreeKind {
    elems: L_CODES,
    max_length: MAX_CODE_BITS,
    extra_bits: &EXTRA_LBITS,
    extra_base: LITERALS + 1,
    static_len: Some(&STATIC_LTREE_LEN),
};
/// The distance tree.
static D_KIND: TreeKind = TreeKind {
    elems: D_CODES,
    max_length: MAX_CODE_BITS,
    extra_bits: &EXTRA_DBITS,
    extra_base: 0,
    static_len: Some(&STATIC_DTREE_LENS),
};
/// The code-length tree.
static BL_KIND: TreeKind = TreeKind {
    elems: BL_CODES,
    max_length: MAX_BL_BITS,
    extra_bits: &EXTRA_BLBITS,
    extra_base: 0,
    static_len: None,
};

/// One symbol, as zlib's `sym_buf` holds it: a distance (0 for a
/// literal) and a byte (the literal, or the match length minus 3).
#[derive(Clone, Copy)]
struct Symbol {
    dist: u16,
    lc: u8,
}

/// The block being gathered.
pub struct Block {
    syms: Vec<Symbol>,
    /// Symbols that end a block (zlib 1.2.12+: `lit_bufsize - 1`).
    capacity: usize,
    ltree: Box<Tree>,
    dtree: Box<Tree>,
    bltree: Box<Tree>,
    builder: Box<Builder>,
}

impl Block {
    /// A block that ends after `capacity` symbols.
    pub fn new(capacity: usize) -> Self {
        let mut block = Block {
            syms: Vec::with_capacity(capacity),
            capacity,
            ltree: Tree::new(),
            dtree: Tree::new(),
            bltree: Tree::new(),
            builder: Builder::new(),
        };
        block.reset();
        block
    }

    /// Empties the block (zlib's `init_block`).
    pub fn reset(&mut self) {
        self.syms.clear();
        self.ltree.freq[..L_CODES].fill(0);
        self.dtree.freq[..D_CODES].fill(0);
        self.bltree.freq[..BL_CODES].fill(0);
        self.ltree.freq[END_BLOCK] = 1;
    }

    /// Records a literal byte; true when the block is full.
    #[inline]
    pub fn literal(&mut self, byte: u8) -> bool {
        self.syms.push(Symbol { dist: 0, lc: byte });
        self.ltree.freq[usize::from(byte)] += 1;
        self.syms.len() == self.capacity
    }

    /// Records a match of `length` (3..=258) at `distance` (1..=32506,
    /// the farthest a 32 KiB window allows); true when the block is full.
    #[inline]
    pub fn matched(&mut self, distance: usize, length: usize) -> bool {
        let lc = u8::try_from(length - MIN_MATCH).unwrap_or(u8::MAX);
        let dist = u16::try_from(distance).unwrap_or(u16::MAX);
        self.syms.push(Symbol { dist, lc });
        self.ltree.freq[usize::from(LENGTH_CODE[usize::from(lc)]) + LITERALS + 1] += 1;
        self.dtree.freq[usize::from(dist_code(dist - 1))] += 1;
        self.syms.len() == self.capacity
    }

    /// Ends the block: writes it as stored (when `raw`, its input bytes,
    /// is given and storing is cheapest), fixed or dynamic, the final bit
    /// set when `last`, then empties it.
    pub fn flush(
        &mut self,
        out: &mut BitWriter<'_>,
        raw: Option<&[u8]>,
        stored_len: usize,
        last: bool,
    ) {
        let mut cost = Cost::default();
        self.builder.build(&mut self.ltree, &L_KIND, &mut cost);
        self.builder.build(&mut self.dtree, &D_KIND, &mut cost);
        let max_blindex = self.build_bl_tree(&mut cost);

        let mut opt_lenb = cost.opt.wrapping_add(3 + 7) >> 3;
        let static_lenb = cost.fixed.wrapping_add(3 + 7) >> 3;
        if static_lenb <= opt_lenb {
            opt_lenb = static_lenb;
        }
        let last_bit = usize::from(last);
        match raw {
            Some(bytes) if (stored_len as u64) + 4 <= opt_lenb => {
                stored_block(out, bytes, last);
            }
            _ if static_lenb == opt_lenb => {
                out.put_bits((STATIC_TREES << 1) + last_bit, 3);
                self.send_symbols(out, &FixedCode);
            }
            _ => {
                out.put_bits((DYN_TREES << 1) + last_bit, 3);
                self.send_all_trees(out, max_blindex + 1);
                self.send_symbols(out, &DynamicCode { ltree: &self.ltree, dtree: &self.dtree });
            }
        }
        self.reset();
        if last {
            out.align();
        }
    }

    /// Counts the code-length symbols that would describe both trees,
    /// builds their tree and returns the index in [`BL_ORDER`] of the last
    /// length to send (3 at least).
    fn build_bl_tree(&mut self, cost: &mut Cost) -> usize {
        scan_tree(&mut self.bltree, &self.ltree);
        scan_tree(&mut self.bltree, &self.dtree);
        self.builder.build(&mut self.bltree, &BL_KIND, cost);
        let mut max_blindex = BL_CODES - 1;
        while max_blindex >= 3 && self.bltree.len[usize::from(BL_ORDER[max_blindex])] == 0 {
            max_blindex -= 1;
        }
        // Three bits per code-length length, plus HLIT, HDIST and HCLEN.
        cost.opt = cost.opt.wrapping_add(3 * (max_blindex as u64 + 1) + 5 + 5 + 4);
        max_blindex
    }

    /// Writes a dynamic block's header: the counts, the code-length
    /// code, then both trees.
    fn send_all_trees(&self, out: &mut BitWriter<'_>, blcodes: usize) {
        out.put_bits(self.ltree.max_code + 1 - 257, 5);
        out.put_bits(self.dtree.max_code, 5);
        out.put_bits(blcodes - 4, 4);
        for &sym in &BL_ORDER[..blcodes] {
            out.put_bits(usize::from(self.bltree.len[usize::from(sym)]), 3);
        }
        send_tree(out, &self.bltree, &self.ltree);
        send_tree(out, &self.bltree, &self.dtree);
    }

    /// Writes the block's symbols, then the end of block, with `code`.
    fn send_symbols(&self, out: &mut BitWriter<'_>, code: &impl Code) {
        for sym in &self.syms {
            let lc = usize::from(sym.lc);
            if sym.dist == 0 {
                code.literal(out, lc);
                continue;
            }
            let lcode = usize::from(LENGTH_CODE[lc]);
            code.literal(out, lcode + LITERALS + 1);
            let extra = EXTRA_LBITS[lcode];
            if extra != 0 {
                out.put_bits(lc - usize::from(BASE_LENGTH[lcode]), usize::from(extra));
            }
            let d = sym.dist - 1;
            let dcode = dist_code(d);
            code.distance(out, usize::from(dcode));
            let extra = EXTRA_DBITS[usize::from(dcode)];
            if extra != 0 {
                out.put_bits(usize::from(d - BASE_DIST[usize::from(dcode)]), usize::from(extra));
            }
        }
        code.literal(out, END_BLOCK);
    }
}

/// A block's pair of codes.
trait Code {
    /// Writes literal/length symbol `s`.
    fn literal(&self, out: &mut BitWriter<'_>, s: usize);
    /// Writes distance symbol `s`.
    fn distance(&self, out: &mut BitWriter<'_>, s: usize);
}

/// The fixed codes of block type 1.
struct FixedCode;

impl Code for FixedCode {
    #[inline]
    fn literal(&self, out: &mut BitWriter<'_>, s: usize) {
        out.put_bits(usize::from(STATIC_LTREE_CODE[s]), usize::from(STATIC_LTREE_LEN[s]));
    }
    #[inline]
    fn distance(&self, out: &mut BitWriter<'_>, s: usize) {
        let len = usize::from(STATIC_DTREE_LEN);
        let code = u16::try_from(s).unwrap_or(0);
        out.put_bits(usize::from(crate::codes::bit_reverse(code, len)), len);
    }
}

/// The block's own trees (type 2).
struct DynamicCode<'a> {
    ltree: &'a Tree,
    dtree: &'a Tree,
}

impl Code for DynamicCode<'_> {
    #[inline]
    fn literal(&self, out: &mut BitWriter<'_>, s: usize) {
        out.put_bits(usize::from(self.ltree.code[s]), usize::from(self.ltree.len[s]));
    }
    #[inline]
    fn distance(&self, out: &mut BitWriter<'_>, s: usize) {
        out.put_bits(usize::from(self.dtree.code[s]), usize::from(self.dtree.len[s]));
    }
}

/// Writes `bytes` as a stored block.
pub fn stored_block(out: &mut BitWriter<'_>, bytes: &[u8], last: bool) {
    out.put_bits((STORED_BLOCK << 1) + usize::from(last), 3);
    out.align();
    // LEN and NLEN are 16 bits; zlib never stores more than the window
    // (at most 64 KiB - 1 bytes of it, the lookahead kept back).
    let [l0, l1, ..] = bytes.len().to_le_bytes();
    out.put_bytes(&[l0, l1, !l0, !l1]);
    out.put_bytes(bytes);
}

/// The run-length grouping of a tree's code lengths, as deflate sends it:
/// runs of a length are cut into a first plain length and repeats of 3-6,
/// runs of zeros into 3-10 or 11-138; shorter runs go out plain. `emit`
/// receives each code-length symbol with its extra-bit value.
fn for_each_length_symbol(tree: &Tree, mut emit: impl FnMut(usize, usize)) {
    let max_code = tree.max_code;
    // Past the last code, a guard that equals no length.
    let len_at = |n: usize| -> Option<u8> { (n <= max_code).then(|| tree.len[n]) };
    let mut prevlen: Option<u8> = None;
    let mut nextlen = len_at(0);
    let mut count = 0usize;
    let (mut max_count, mut min_count) = if nextlen == Some(0) { (138, 3) } else { (7, 4) };
    for n in 0..=max_code {
        let curlen = nextlen;
        nextlen = len_at(n + 1);
        count += 1;
        if count < max_count && curlen == nextlen {
            continue;
        }
        let cur = usize::from(curlen.unwrap_or(0));
        if count < min_count {
            for _ in 0..count {
                emit(cur, 0);
            }
        } else if cur != 0 {
            if curlen != prevlen {
                emit(cur, 0);
                count -= 1;
            }
            emit(REP_3_6, count - 3);
        } else if count <= 10 {
            emit(REPZ_3_10, count - 3);
        } else {
            emit(REPZ_11_138, count - 11);
        }
        count = 0;
        prevlen = curlen;
        (max_count, min_count) = if nextlen == Some(0) {
            (138, 3)
        } else if curlen == nextlen {
            (6, 3)
        } else {
            (7, 4)
        };
    }
}

/// Counts in `bl` the code-length symbols that describe `tree`.
fn scan_tree(bl: &mut Tree, tree: &Tree) {
    for_each_length_symbol(tree, |sym, _| bl.freq[sym] += 1);
}

/// Writes the code-length symbols that describe `tree` with `bl`'s code.
fn send_tree(out: &mut BitWriter<'_>, bl: &Tree, tree: &Tree) {
    for_each_length_symbol(tree, |sym, extra| {
        out.put_bits(usize::from(bl.code[sym]), usize::from(bl.len[sym]));
        match sym {
            REP_3_6 => out.put_bits(extra, 2),
            REPZ_3_10 => out.put_bits(extra, 3),
            REPZ_11_138 => out.put_bits(extra, 7),
            _ => {}
        }
    });
}
