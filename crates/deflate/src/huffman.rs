//! Huffman trees built the way zlib builds them (`trees.c`), because the
//! bytes depend on every choice: which of two equal-weight subtrees is
//! taken first, how lengths over the limit are pushed back, and which
//! symbol gets which code.
//!
//! The facts reproduced: a binary min-heap of symbols ordered by
//! frequency, ties broken by the depth of the subtree (the shallower
//! first, a symbol before a deeper node); the two smallest are merged
//! into a new node numbered after the alphabet; the sorted order of
//! removal is kept and gives the lengths from the root down. Lengths over
//! the maximum are clamped, then the count per length is repaired by
//! moving leaves one level down, and the lengths are dealt again in
//! frequency order. Codes are canonical (RFC 1951 3.2.2). A tree with
//! fewer than two used symbols gets dummy symbols of frequency 1 (the
//! lowest unused codes first, then code 0).

use crate::codes::{first_codes, MAX_BITS};

/// Slots of a tree: its symbols plus the internal nodes of a full binary
/// tree over the largest alphabet (literal/length, 286 symbols).
pub const HEAP_SIZE: usize = 2 * crate::codes::L_CODES + 1;

/// What is fixed about one of the three trees.
pub struct TreeKind {
    /// Symbols in the alphabet.
    pub elems: usize,
    /// Longest code allowed.
    pub max_length: u8,
    /// Extra bits sent after each symbol from `extra_base` on.
    pub extra_bits: &'static [u8],
    /// First symbol with an entry in `extra_bits`.
    pub extra_base: usize,
    /// Code lengths of the fixed code, to price the block as fixed.
    pub static_len: Option<&'static [u8]>,
}

/// One tree: the frequencies counted for a block, then the lengths and
/// codes built from them.
pub struct Tree {
    /// Occurrences of each symbol, then of each internal node (a block
    /// holds fewer than 32 Ki symbols: no sum overflows).
    pub freq: [u16; HEAP_SIZE],
    /// Code length of each symbol (0: unused), at most 15.
    pub len: [u8; HEAP_SIZE],
    /// Bit-reversed code of each symbol, ready for the bit writer.
    pub code: [u16; HEAP_SIZE],
    /// Parent node of each node while the tree is built.
    dad: [usize; HEAP_SIZE],
    /// Largest symbol with a code (at least 1 once built: a tree has two
    /// codes at least): the tree is sent up to here.
    pub max_code: usize,
}

impl Tree {
    /// An empty tree.
    pub fn new() -> Box<Self> {
        Box::new(Tree {
            freq: [0; HEAP_SIZE],
            len: [0; HEAP_SIZE],
            code: [0; HEAP_SIZE],
            dad: [0; HEAP_SIZE],
            max_code: 0,
        })
    }
}

/// The running cost estimates of a block, in bits, as zlib keeps them
/// (in an unsigned long, whose wrap-arounds are kept: a dummy symbol is
/// first subtracted, then counted): `opt` for the dynamic trees (tree
/// headers included once the code-length tree is built) and `fixed` for
/// the fixed code.
#[derive(Default)]
pub struct Cost {
    /// Bits of the block with the dynamic trees.
    pub opt: u64,
    /// Bits of the block with the fixed code.
    pub fixed: u64,
}

/// The heap and counters shared by the three trees' building.
pub struct Builder {
    heap: [usize; HEAP_SIZE],
    heap_len: usize,
    heap_max: usize,
    depth: [u8; HEAP_SIZE],
    bl_count: [u16; MAX_BITS + 1],
}

/// Index of the heap's smallest element (the heap is 1-based).
const SMALLEST: usize = 1;

impl Builder {
    /// A builder with an empty heap.
    pub fn new() -> Box<Self> {
        Box::new(Builder {
            heap: [0; HEAP_SIZE],
            heap_len: 0,
            heap_max: HEAP_SIZE,
            depth: [0; HEAP_SIZE],
            bl_count: [0; MAX_BITS + 1],
        })
    }

    /// Whether node `n` sorts before node `m`: lower frequency, or equal
    /// frequency and no deeper.
    #[inline]
    fn smaller(&self, tree: &Tree, n: usize, m: usize) -> bool {
        tree.freq[n] < tree.freq[m]
            || (tree.freq[n] == tree.freq[m] && self.depth[n] <= self.depth[m])
    }

    /// Moves the element at heap position `k` down to its place.
    fn sift_down(&mut self, tree: &Tree, mut k: usize) {
        let v = self.heap[k];
        let mut j = k << 1;
        while j <= self.heap_len {
            if j < self.heap_len && self.smaller(tree, self.heap[j + 1], self.heap[j]) {
                j += 1;
            }
            if self.smaller(tree, v, self.heap[j]) {
                break;
            }
            self.heap[k] = self.heap[j];
            k = j;
            j <<= 1;
        }
        self.heap[k] = v;
    }

    /// Removes and returns the smallest element of the heap.
    fn pop(&mut self, tree: &Tree) -> usize {
        let top = self.heap[SMALLEST];
        self.heap[SMALLEST] = self.heap[self.heap_len];
        self.heap_len -= 1;
        self.sift_down(tree, SMALLEST);
        top
    }

    /// Builds `tree`'s lengths and codes from its frequencies, adding the
    /// block's cost with this tree to `cost`.
    pub fn build(&mut self, tree: &mut Tree, kind: &TreeKind, cost: &mut Cost) {
        self.heap_len = 0;
        self.heap_max = HEAP_SIZE;
        // The largest used symbol; None while there is none.
        let mut max_code: Option<usize> = None;
        for n in 0..kind.elems {
            if tree.freq[n] == 0 {
                tree.len[n] = 0;
            } else {
                self.heap_len += 1;
                self.heap[self.heap_len] = n;
                max_code = Some(n);
                self.depth[n] = 0;
            }
        }
        // Deflate needs two codes at least, even for one used symbol (an
        // inflater may refuse a tree of one code): add dummies, the symbol
        // after the largest used one while that is below 2, else symbol 0.
        while self.heap_len < 2 {
            let next = max_code.map_or(0, |m| m + 1);
            let node = if next <= 2 {
                max_code = Some(next);
                next
            } else {
                0
            };
            self.heap_len += 1;
            self.heap[self.heap_len] = node;
            tree.freq[node] = 1;
            self.depth[node] = 0;
            cost.opt = cost.opt.wrapping_sub(1);
            if let Some(stat) = kind.static_len {
                cost.fixed = cost.fixed.wrapping_sub(u64::from(stat[node]));
            }
        }
        tree.max_code = max_code.unwrap_or(0);

        for k in (1..=self.heap_len / 2).rev() {
            self.sift_down(tree, k);
        }

        // Merge the two smallest into a new node until one is left; the
        // removed nodes are kept at the heap's end, largest first.
        let mut node = kind.elems;
        loop {
            let n = self.pop(tree);
            let m = self.heap[SMALLEST];
            self.heap_max -= 1;
            self.heap[self.heap_max] = n;
            self.heap_max -= 1;
            self.heap[self.heap_max] = m;
            tree.freq[node] = tree.freq[n].wrapping_add(tree.freq[m]);
            self.depth[node] = self.depth[n].max(self.depth[m]).wrapping_add(1);
            tree.dad[n] = node;
            tree.dad[m] = node;
            self.heap[SMALLEST] = node;
            node += 1;
            self.sift_down(tree, SMALLEST);
            if self.heap_len < 2 {
                break;
            }
        }
        self.heap_max -= 1;
        self.heap[self.heap_max] = self.heap[SMALLEST];

        self.lengths(tree, kind, cost);
        self.codes(tree);
    }

    /// Sets the code lengths from the built tree, limited to
    /// `kind.max_length`, and counts the block's cost.
    fn lengths(&mut self, tree: &mut Tree, kind: &TreeKind, cost: &mut Cost) {
        let max_code = tree.max_code;
        let max_length = kind.max_length;
        self.bl_count = [0; MAX_BITS + 1];
        let mut overflow = 0i32;

        // The nodes from heap_max on are sorted by decreasing distance from
        // the leaves: the root first, so a parent has its length before its
        // children.
        tree.len[self.heap[self.heap_max]] = 0;
        for h in self.heap_max + 1..HEAP_SIZE {
            let n = self.heap[h];
            let mut bits = tree.len[tree.dad[n]] + 1;
            if bits > max_length {
                bits = max_length;
                overflow += 1;
            }
            tree.len[n] = bits;
            if n > max_code {
                continue; // an internal node
            }
            self.bl_count[usize::from(bits)] += 1;
            let xbits = match n.checked_sub(kind.extra_base) {
                Some(i) => u64::from(kind.extra_bits[i]),
                None => 0,
            };
            let f = u64::from(tree.freq[n]);
            cost.opt = cost.opt.wrapping_add(f * (u64::from(bits) + xbits));
            if let Some(stat) = kind.static_len {
                cost.fixed = cost.fixed.wrapping_add(f * (u64::from(stat[n]) + xbits));
            }
        }
        if overflow == 0 {
            return;
        }

        // Repair the counts: each step takes a leaf at the deepest length
        // below the maximum one level down, with an overflowed leaf as its
        // new sibling.
        let max = usize::from(max_length);
        loop {
            let mut bits = max - 1;
            while self.bl_count[bits] == 0 {
                bits -= 1;
            }
            self.bl_count[bits] -= 1;
            self.bl_count[bits + 1] += 2;
            self.bl_count[max] -= 1;
            overflow -= 2;
            if overflow <= 0 {
                break;
            }
        }
        // Deal the lengths again, longest to the least frequent symbols
        // (the heap order from its end).
        let mut h = HEAP_SIZE;
        for bits in (1..=max_length).rev() {
            let mut n = self.bl_count[usize::from(bits)];
            while n != 0 {
                h -= 1;
                let m = self.heap[h];
                if m > max_code {
                    continue;
                }
                if tree.len[m] != bits {
                    let f = u64::from(tree.freq[m]);
                    let grow = u64::from(bits).wrapping_sub(u64::from(tree.len[m]));
                    cost.opt = cost.opt.wrapping_add(grow.wrapping_mul(f));
                    tree.len[m] = bits;
                }
                n -= 1;
            }
        }
    }

    /// Assigns the canonical codes for the lengths just set.
    fn codes(&mut self, tree: &mut Tree) {
        let mut next = first_codes(&self.bl_count);
        for n in 0..=tree.max_code {
            let len = usize::from(tree.len[n]);
            if len == 0 {
                continue;
            }
            tree.code[n] = crate::codes::bit_reverse(next[len], len);
            next[len] = next[len].wrapping_add(1);
        }
    }
}
