//! qemu-img's sparse detection for `-S`: which sectors of a chunk read as
//! zeros, in runs whose ends fall on the alignment convert keeps.

use super::SECTOR;

/// [`SECTOR`] as a buffer length.
const SECTOR_LEN: usize = 512;

/// qemu's `buffer_is_zero`.
pub(super) use instar_core::bytes::is_zero;

/// The sectors of one data chunk as `-S` sees them: the buffer read, and
/// the runs of sectors the read left unread because the source knows
/// they read as zeros (`(first, count)`, relative to the chunk, in order;
/// their bytes in the buffer are stale: [`Sectors::unread_in_data`] names
/// those a write will carry).
pub(super) struct Sectors<'a> {
    buf: &'a [u8],
    unread: &'a [(u64, u64)],
}

impl<'a> Sectors<'a> {
    /// The chunk in `buf`, with `unread` sectors known to be zeros.
    pub(super) fn new(buf: &'a [u8], unread: &'a [(u64, u64)]) -> Sectors<'a> {
        Sectors { buf, unread }
    }

    /// How many whole sectors the chunk has.
    fn len(&self) -> u64 {
        self.buf.len() as u64 / SECTOR
    }

    /// The end of the unread run holding sector `i`, if one does.
    fn unread_end(&self, i: u64) -> Option<u64> {
        let after = self.unread.partition_point(|&(first, _)| first <= i);
        let &(first, count) = self.unread.get(after.checked_sub(1)?)?;
        (i < first + count).then_some(first + count)
    }

    /// How many sectors from `i` (before `end`) read as zeros (`zero`) or
    /// hold data (not `zero`), without scanning what is known.
    fn run(&self, i: u64, end: u64, zero: bool) -> u64 {
        let mut j = i;
        while j < end {
            if let Some(e) = self.unread_end(j) {
                if !zero {
                    break;
                }
                j = e.min(end);
                continue;
            }
            #[allow(clippy::cast_possible_truncation, reason = "within the buffer")]
            let at = (j * SECTOR) as usize;
            if is_zero(&self.buf[at..at + SECTOR_LEN]) != zero {
                break;
            }
            j += 1;
        }
        j - i
    }

    /// Whether sector `i` reads as zeros.
    fn is_zero_sector(&self, i: u64) -> bool {
        self.run(i, i + 1, true) == 1
    }

    /// The unread sectors that `runs` write as data: the parts of `buf`
    /// to fill with zeros before the writes (a short zero run a data run
    /// swallowed, or the alignment's growth).
    pub(super) fn unread_in_data(&self, runs: &[(bool, u64)]) -> Vec<(u64, u64)> {
        let mut fill = Vec::new();
        let mut at = 0;
        for &(data, n) in runs {
            if data {
                for &(first, count) in self.unread {
                    let lo = first.max(at);
                    let hi = (first + count).min(at + n);
                    if lo < hi {
                        fill.push((lo, hi - lo));
                    }
                }
            }
            at += n;
        }
        fill
    }
}

/// qemu's `is_allocated_sectors` over the sectors of `s` from `from`:
/// whether sector `from` holds data, and how many sectors from it share
/// its state, with the run's end moved to an `alignment` boundary (data
/// runs grow to it, zero runs shrink to it). `sector_num` is the disk
/// sector of `from`.
fn allocated_sectors(s: &Sectors<'_>, from: u64, sector_num: u64, alignment: u64) -> (bool, u64) {
    let n = s.len() - from;
    if n == 0 {
        return (false, 0);
    }
    let first_zero = s.is_zero_sector(from);
    let mut i = s.run(from, s.len(), first_zero);
    if i == n {
        return (!first_zero, i);
    }
    let mut zero = first_zero;
    let tail = (sector_num + i) & (alignment.max(1) - 1);
    if tail != 0 {
        if zero && i <= tail {
            zero = false;
        }
        if zero {
            i -= tail;
        } else {
            i = (i + alignment - tail).min(n);
        }
    }
    (!zero, i)
}

/// qemu's `is_allocated_sectors_min` over the sectors of `s` from
/// `from`: like [`allocated_sectors`], but a data run swallows the zero
/// runs shorter than `min` sectors that follow it.
fn allocated_sectors_min(
    s: &Sectors<'_>,
    from: u64,
    min: u64,
    sector_num: u64,
    alignment: u64,
) -> (bool, u64) {
    let n = s.len() - from;
    let min = min.min(n);
    let (allocated, first) = allocated_sectors(s, from, sector_num, alignment);
    if !allocated {
        return (false, first);
    }
    let mut used = first;
    let mut checked = first;
    while checked < n {
        let (data, pnum) = allocated_sectors(s, from + checked, sector_num + checked, alignment);
        checked += pnum;
        if data {
            used = checked;
        } else if pnum >= min {
            break;
        }
    }
    (true, used)
}

/// The walk `convert_co_write` makes over a data chunk at disk sector
/// `sector_num` under `-S min` (not 0): the runs it writes as data
/// (`true`) or leaves as zeros (`false`), `(data, sectors)` in order,
/// each cut by [`allocated_sectors_min`]. Run in the reader threads, so
/// the writing thread only writes.
pub(super) fn sparse_runs(
    s: &Sectors<'_>,
    min: u64,
    sector_num: u64,
    alignment: u64,
) -> Vec<(bool, u64)> {
    let mut runs = Vec::new();
    let mut from = 0;
    while from < s.len() {
        let (data, n) = allocated_sectors_min(s, from, min, sector_num + from, alignment);
        if n == 0 {
            break;
        }
        runs.push((data, n));
        from += n;
    }
    runs
}

/// qemu's `pow2floor`: the largest power of two not above `n` (0 for 0).
pub(super) fn pow2floor(n: u64) -> u64 {
    if n == 0 {
        0
    } else {
        1 << (63 - n.leading_zeros())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A chunk from a pattern: `D` a data sector, `.` a zero sector, `u`
    /// a sector left unread (its stale bytes are data, so a scan that
    /// looked at them would see data).
    fn chunk(pattern: &str) -> (Vec<u8>, Vec<(u64, u64)>) {
        let buf = pattern
            .bytes()
            .flat_map(|c| std::iter::repeat_n(u8::from(c != b'.'), SECTOR_LEN))
            .collect();
        let mut unread: Vec<(u64, u64)> = Vec::new();
        for (i, c) in (0u64..).zip(pattern.bytes()) {
            if c != b'u' {
                continue;
            }
            match unread.last_mut() {
                Some((first, count)) if *first + *count == i => *count += 1,
                _ => unread.push((i, 1)),
            }
        }
        (buf, unread)
    }

    fn alloc(pattern: &str, alignment: u64) -> (bool, u64) {
        let (buf, unread) = chunk(pattern);
        allocated_sectors(&Sectors::new(&buf, &unread), 0, 0, alignment)
    }

    fn alloc_min(pattern: &str, min: u64) -> (bool, u64) {
        let (buf, unread) = chunk(pattern);
        allocated_sectors_min(&Sectors::new(&buf, &unread), 0, min, 0, 1)
    }

    #[test]
    fn whole_runs_are_one_answer() {
        assert_eq!(alloc("DDDD", 8), (true, 4));
        assert_eq!(alloc("....", 8), (false, 4));
    }

    #[test]
    fn run_ends_move_to_the_alignment() {
        // Data to sector 3, aligned up to 8 (but not past the buffer).
        assert_eq!(alloc("DDD.........DDDD", 8), (true, 8));
        // Zeros from 0 to 10 shrink to 8.
        assert_eq!(alloc("..........DDDDDD", 8), (false, 8));
        // A zero run no longer than its tail counts as data.
        assert_eq!(alloc("...DDDDD", 8), (true, 8));
    }

    #[test]
    fn short_zero_runs_stay_inside_data() {
        assert_eq!(alloc_min("DD..DD........DD", 8), (true, 6));
        assert_eq!(alloc_min("DD..DD........DD", 2), (true, 2));
        assert_eq!(alloc_min("DD..DD..DD", 8), (true, 10));
    }

    #[test]
    fn unread_sectors_are_zeros_to_the_scan() {
        // The same answers as for zero sectors read, whatever the stale
        // bytes hold.
        for (read, unread) in
            [("..........DDDDDD", "..uuuuuu..DDDDDD"), ("DD..DD..DD", "DDuuDDu.DD")]
        {
            assert_eq!(alloc(read, 8), alloc(unread, 8), "{unread}");
            assert_eq!(alloc_min(read, 8), alloc_min(unread, 8), "{unread}");
            let (a, none) = chunk(read);
            let (b, known) = chunk(unread);
            assert_eq!(
                sparse_runs(&Sectors::new(&a, &none), 4, 3, 8),
                sparse_runs(&Sectors::new(&b, &known), 4, 3, 8),
                "{unread}"
            );
        }
    }

    #[test]
    fn runs_cover_the_chunk_and_name_unread_data() {
        let (buf, unread) = chunk("DDuuDDuuuuuuuuuuDD");
        let s = Sectors::new(&buf, &unread);
        let runs = sparse_runs(&s, 4, 0, 1);
        assert_eq!(runs, vec![(true, 6), (false, 10), (true, 2)]);
        // The swallowed short run must be filled before the write.
        assert_eq!(s.unread_in_data(&runs), vec![(2, 2)]);
    }

    #[test]
    fn pow2floor_is_qemus() {
        assert_eq!(pow2floor(0), 0);
        assert_eq!(pow2floor(1), 1);
        assert_eq!(pow2floor(8), 8);
        assert_eq!(pow2floor(9), 8);
    }
}
