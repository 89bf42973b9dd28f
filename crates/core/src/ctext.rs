//! Numbers in text as C's library reads them (`isspace`, the sign and the
//! digits of `strtoull`, `strtol` and `sscanf`): qemu parses sizes, option
//! values and vmdk descriptors with these functions, and instar reads them
//! the same way, in one place.

/// C's `isspace` in the C locale.
pub fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// The index of the first byte at or after `i` that is not white space.
pub fn skip_space(s: &[u8], mut i: usize) -> usize {
    while i < s.len() && is_space(s[i]) {
        i += 1;
    }
    i
}

/// An optional `+` or `-` at `i`: whether it was a minus, and the index
/// after it.
pub fn sign(s: &[u8], i: usize) -> (bool, usize) {
    match s.get(i) {
        Some(b'-') => (true, i + 1),
        Some(b'+') => (false, i + 1),
        _ => (false, i),
    }
}

/// The decimal digits at `i`: their value (saturating at `u64::MAX`),
/// the index after them, and whether the value saturated. No digit gives
/// an end equal to `i`.
pub fn decimal(s: &[u8], mut i: usize) -> (u64, usize, bool) {
    let mut value: u64 = 0;
    let mut overflow = false;
    while i < s.len() && s[i].is_ascii_digit() {
        match value.checked_mul(10).and_then(|v| v.checked_add(u64::from(s[i] - b'0'))) {
            Some(v) => value = v,
            None => {
                overflow = true;
                value = u64::MAX;
            }
        }
        i += 1;
    }
    (value, i, overflow)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_like_c() {
        let s = b" \t-12x";
        let i = skip_space(s, 0);
        assert_eq!(i, 2);
        assert_eq!(sign(s, i), (true, 3));
        assert_eq!(decimal(s, 3), (12, 5, false));
        assert_eq!(decimal(b"99999999999999999999", 0), (u64::MAX, 20, true));
        assert_eq!(decimal(b"x", 0), (0, 0, false));
        assert_eq!(sign(b"+1", 0), (false, 1));
        assert!(is_space(0x0b) && !is_space(b'x'));
    }
}
