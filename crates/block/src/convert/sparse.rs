//! qemu-img's sparse detection for `-S`: which sectors of a chunk read as
//! zeros, in runs whose ends fall on the alignment convert keeps.

use super::SECTOR;

/// [`SECTOR`] as a buffer length.
const SECTOR_LEN: usize = 512;

/// qemu's `buffer_is_zero`.
pub(super) use instar_core::bytes::is_zero;

/// qemu's `is_allocated_sectors`: whether the first sector of `buf` holds
/// data, and how many sectors from it share its state, with the run's end
/// moved to an `alignment` boundary (data runs grow to it, zero runs
/// shrink to it).
fn allocated_sectors(buf: &[u8], sector_num: u64, alignment: u64) -> (bool, u64) {
    let n = buf.len() as u64 / SECTOR;
    if n == 0 {
        return (false, 0);
    }
    let mut sectors = buf.chunks_exact(SECTOR_LEN);
    let first_zero = sectors.next().is_some_and(is_zero);
    let same = sectors.take_while(|s| is_zero(s) == first_zero).count() as u64;
    let mut i = 1 + same;
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

/// qemu's `is_allocated_sectors_min`: like [`allocated_sectors`], but a
/// data run swallows the zero runs shorter than `min` sectors that follow
/// it.
pub(super) fn allocated_sectors_min(
    buf: &[u8],
    min: u64,
    sector_num: u64,
    alignment: u64,
) -> (bool, u64) {
    let n = buf.len() as u64 / SECTOR;
    let min = min.min(n);
    let (allocated, first) = allocated_sectors(buf, sector_num, alignment);
    if !allocated {
        return (false, first);
    }
    let mut used = first;
    let mut checked = first;
    while checked < n {
        #[allow(clippy::cast_possible_truncation, reason = "within the buffer")]
        let rest = &buf[(checked * SECTOR) as usize..];
        let (data, pnum) = allocated_sectors(rest, sector_num + checked, alignment);
        checked += pnum;
        if data {
            used = checked;
        } else if pnum >= min {
            break;
        }
    }
    (true, used)
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

    fn sectors(pattern: &str) -> Vec<u8> {
        pattern.bytes().flat_map(|c| std::iter::repeat_n(u8::from(c == b'D'), SECTOR_LEN)).collect()
    }

    #[test]
    fn whole_runs_are_one_answer() {
        assert_eq!(allocated_sectors(&sectors("DDDD"), 0, 8), (true, 4));
        assert_eq!(allocated_sectors(&sectors("...."), 0, 8), (false, 4));
    }

    #[test]
    fn run_ends_move_to_the_alignment() {
        // Data to sector 3, aligned up to 8 (but not past the buffer).
        assert_eq!(allocated_sectors(&sectors("DDD.........DDDD"), 0, 8), (true, 8));
        // Zeros from 0 to 10 shrink to 8.
        assert_eq!(allocated_sectors(&sectors("..........DDDDDD"), 0, 8), (false, 8));
        // A zero run no longer than its tail counts as data.
        assert_eq!(allocated_sectors(&sectors("...DDDDD"), 0, 8), (true, 8));
    }

    #[test]
    fn short_zero_runs_stay_inside_data() {
        let buf = sectors("DD..DD........DD");
        assert_eq!(allocated_sectors_min(&buf, 8, 0, 1), (true, 6));
        assert_eq!(allocated_sectors_min(&buf, 2, 0, 1), (true, 2));
        assert_eq!(allocated_sectors_min(&sectors("DD..DD..DD"), 8, 0, 1), (true, 10));
    }

    #[test]
    fn pow2floor_is_qemus() {
        assert_eq!(pow2floor(0), 0);
        assert_eq!(pow2floor(1), 1);
        assert_eq!(pow2floor(8), 8);
        assert_eq!(pow2floor(9), 8);
    }
}
