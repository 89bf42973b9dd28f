//! The sliding window and its hash chains: where zlib looks for earlier
//! copies of the bytes at the current position (`fill_window`,
//! `longest_match`, `INSERT_STRING`, `slide_hash` in `deflate.c`).
//!
//! Identity with zlib rests on copying its bookkeeping, not only its
//! intent: the window is twice the history size and is refilled in the
//! same steps (so a slide happens at the same position, and forgets the
//! same chain entries); position 0 of the window is never a match
//! candidate (0 marks an empty chain); the hash of three bytes is rolled
//! `hash_shift` bits at a time; a chain is cut at `MAX_DIST` and after
//! `max_chain` steps (a quarter once the previous match is already
//! `good`); a candidate is tested on its last and first bytes before it is
//! compared; the search stops at `nice` bytes, which is also clamped to
//! the lookahead.

use crate::codes::{MAX_MATCH, MIN_MATCH};

/// Lookahead kept in the window while input remains: a longest match plus
/// the bytes its hash and the next one need.
pub const MIN_LOOKAHEAD: usize = MAX_MATCH + MIN_MATCH + 1;

/// Bytes a hash covers (a match's minimum), as a shift count's unit.
const HASHED_BYTES: u32 = 3;

/// The empty end of a hash chain (window position 0 is never used).
const NIL: u16 = 0;

/// Search limits of a compression level (zlib's `configuration_table`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Shorten the chain search once the previous match is this long.
    pub good: usize,
    /// Lazy levels: no lazy search once a match is this long. Fast
    /// levels: insert every string of a match up to this length.
    pub lazy: usize,
    /// Stop searching once a match is this long.
    pub nice: usize,
    /// Hash chain steps searched at most.
    pub chain: usize,
}

/// The window, the hash chains and the current position in them.
pub struct Matcher {
    /// History size (`1 << window_bits`).
    pub w_size: usize,
    w_mask: usize,
    /// Two histories' worth: input goes in the upper half, slides down.
    pub window: Vec<u8>,
    /// For each position (modulo the history size), the previous
    /// position with the same hash.
    prev: Vec<u16>,
    /// For each hash, the latest position with it.
    head: Vec<u16>,
    hash_mask: usize,
    hash_shift: u32,
    /// The running hash of the bytes at `ins_pos .. +3`.
    ins_h: usize,
    /// Current position in the window.
    pub strstart: usize,
    /// Bytes available from `strstart` on.
    pub lookahead: usize,
    /// Positions before `strstart` whose strings are not yet hashed.
    pub insert: usize,
    /// Input offset where the current block began (zlib keeps a window
    /// position that goes negative once the window slid past it; an input
    /// offset below `slid` says the same).
    pub block_start: usize,
    /// Input bytes slid out of the window: window position + `slid` =
    /// input offset.
    pub slid: usize,
    /// Start of the match found by the last search.
    pub match_start: usize,
    /// How much of the input is in the window.
    pub next_in: usize,
}

impl Matcher {
    /// A matcher with a `1 << window_bits` history and
    /// `1 << hash_bits` hash heads.
    pub fn new(window_bits: u32, hash_bits: u32) -> Self {
        let w_size = 1usize << window_bits;
        let hash_size = 1usize << hash_bits;
        Matcher {
            w_size,
            w_mask: w_size - 1,
            window: vec![0; 2 * w_size],
            prev: vec![0; w_size],
            head: vec![0; hash_size],
            hash_mask: hash_size - 1,
            hash_shift: hash_bits.div_ceil(HASHED_BYTES),
            ins_h: 0,
            strstart: 0,
            lookahead: 0,
            insert: 0,
            block_start: 0,
            slid: 0,
            match_start: 0,
            next_in: 0,
        }
    }

    /// Makes the matcher as new for another input (the window's bytes
    /// included: zlib's fresh window reads as zeros past the data).
    pub fn reset(&mut self) {
        self.window.fill(0);
        self.head.fill(NIL);
        self.ins_h = 0;
        self.strstart = 0;
        self.lookahead = 0;
        self.insert = 0;
        self.block_start = 0;
        self.slid = 0;
        self.match_start = 0;
        self.next_in = 0;
    }

    /// Farthest distance a match may reach: the lookahead kept back from
    /// the history.
    #[inline]
    pub fn max_dist(&self) -> usize {
        self.w_size - MIN_LOOKAHEAD
    }

    /// Rolls the byte `c` into the hash `h`.
    #[inline]
    fn roll(&self, h: usize, c: u8) -> usize {
        ((h << self.hash_shift) ^ usize::from(c)) & self.hash_mask
    }

    /// Hashes the string at `pos` into its chain; returns the chain's
    /// previous head (NIL: none).
    #[inline(always)]
    pub fn insert_string(&mut self, pos: usize) -> usize {
        self.ins_h = self.roll(self.ins_h, self.window[pos + MIN_MATCH - 1]);
        let head = self.head[self.ins_h];
        self.prev[pos & self.w_mask] = head;
        // Positions are below twice the history less the lookahead kept
        // back: they fit a chain entry.
        self.head[self.ins_h] = u16::try_from(pos).unwrap_or(NIL);
        usize::from(head)
    }

    /// Restarts the running hash at `pos` (after a match whose strings
    /// were not all inserted).
    pub fn rehash(&mut self, pos: usize) {
        self.ins_h = usize::from(self.window[pos]);
        self.ins_h = self.roll(self.ins_h, self.window[pos + 1]);
    }

    /// Tops the lookahead up from `input` (zlib's `fill_window`): slides
    /// the window down by a history once the position is within
    /// `MIN_LOOKAHEAD` of its end, then reads as much as fits, and hashes
    /// the strings `insert` left behind.
    pub fn fill(&mut self, input: &[u8]) {
        let wsize = self.w_size;
        loop {
            let mut more = self.window.len() - self.lookahead - self.strstart;
            if self.strstart >= wsize + self.max_dist() {
                let live = wsize - more;
                self.window.copy_within(wsize..wsize + live, 0);
                self.match_start = self.match_start.wrapping_sub(wsize);
                self.strstart -= wsize;
                self.slid += wsize;
                if self.insert > self.strstart {
                    self.insert = self.strstart;
                }
                self.slide_hash();
                more += wsize;
            }
            let rest = input.get(self.next_in..).unwrap_or_default();
            if rest.is_empty() {
                break;
            }
            let n = rest.len().min(more);
            let at = self.strstart + self.lookahead;
            self.window[at..at + n].copy_from_slice(&rest[..n]);
            self.next_in += n;
            self.lookahead += n;

            if self.lookahead + self.insert >= MIN_MATCH {
                let mut s = self.strstart - self.insert;
                self.rehash(s);
                while self.insert > 0 {
                    self.insert_string(s);
                    s += 1;
                    self.insert -= 1;
                    if self.lookahead + self.insert < MIN_MATCH {
                        break;
                    }
                }
            }
            if self.lookahead >= MIN_LOOKAHEAD || self.next_in >= input.len() {
                break;
            }
        }
        // zlib zeroes the bytes a comparison may read past the data
        // (`WIN_INIT`, a longest match's worth) the first time the data
        // reaches them; this window was zeroed whole at the start, so those
        // bytes read the same: zero, or data that was there before.
    }

    /// Moves every chain entry down by a history, forgetting those that
    /// fall off.
    fn slide_hash(&mut self) {
        // A history is at most 1 << 15: it fits a chain entry. Entries
        // below it become NIL, which is what saturating at 0 gives.
        let wsize = u16::try_from(self.w_size).unwrap_or(u16::MAX);
        // Two plain loops (not one chained iterator) so that each compiles
        // to vector instructions.
        for v in self.head.iter_mut() {
            *v = v.saturating_sub(wsize);
        }
        for v in self.prev.iter_mut() {
            *v = v.saturating_sub(wsize);
        }
    }

    /// Searches the chain from `cur_match` for a string longer than
    /// `prev_length` at the current position; returns its length (never
    /// more than the lookahead) and sets `match_start`. Returns
    /// `prev_length` (clamped) when nothing longer is found.
    pub fn longest_match(
        &mut self,
        mut cur_match: usize,
        prev_length: usize,
        limits: &Limits,
    ) -> usize {
        let mut chain = limits.chain;
        let strstart = self.strstart;
        let mut best_len = prev_length;
        let nice = limits.nice.min(self.lookahead);
        let limit = strstart.saturating_sub(self.max_dist());
        if prev_length >= limits.good {
            chain >>= 2;
        }
        let window = &self.window[..];
        // One byte past a longest match: the quick test reads the byte
        // after the best length so far (below MAX_MATCH on entry).
        let Some(scan) = window.get(strstart..=strstart + MAX_MATCH) else {
            return prev_length.min(self.lookahead);
        };
        let mut scan_end1 = scan[best_len - 1];
        let mut scan_end = scan[best_len];
        let mut match_start = self.match_start;
        loop {
            let cand = &window[cur_match..=cur_match + MAX_MATCH];
            if cand[best_len] == scan_end
                && cand[best_len - 1] == scan_end1
                && cand[0] == scan[0]
                && cand[1] == scan[1]
            {
                let len = common_prefix(&scan[..MAX_MATCH], &cand[..MAX_MATCH]);
                if len > best_len {
                    match_start = cur_match;
                    best_len = len;
                    if len >= nice {
                        break;
                    }
                    scan_end1 = scan[best_len - 1];
                    scan_end = scan[best_len];
                }
            }
            cur_match = usize::from(self.prev[cur_match & self.w_mask]);
            chain -= 1;
            if cur_match <= limit || chain == 0 {
                break;
            }
        }
        self.match_start = match_start;
        best_len.min(self.lookahead)
    }
}

/// Length of the common prefix of `a` and `b` (both `MAX_MATCH` long),
/// compared eight bytes at a time.
#[inline]
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let mut len = 0;
    for (x, y) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        let x = u64::from_le_bytes(x.try_into().unwrap_or([0; 8]));
        let y = u64::from_le_bytes(y.try_into().unwrap_or([0; 8]));
        let diff = x ^ y;
        if diff != 0 {
            return len + (diff.trailing_zeros() / 8) as usize;
        }
        len += 8;
    }
    for (x, y) in a[len..].iter().zip(&b[len..]) {
        if x != y {
            break;
        }
        len += 1;
    }
    len
}
