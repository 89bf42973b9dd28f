//! qemu's size syntax: an integer or decimal fraction, an optional scaling
//! suffix (`B K M G T P E`, either case, powers of 1024), or a hexadecimal
//! integer without fraction or suffix.
//!
//! The parser follows the rules of qemu's `qemu_strtosz()` so that every
//! size qemu-img accepts is accepted here with the same value, and every
//! size it refuses is refused with the same kind of failure (malformed or
//! out of range), because the two get different messages.

use crate::ctext::{decimal, sign, skip_space};

/// Why a size string was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeError {
    /// The text is not a size at all (qemu: `EINVAL`).
    Invalid,
    /// The text is a size, but it does not fit in 64 bits or is negative
    /// (qemu: `ERANGE`).
    OutOfRange,
}

/// The multiplier a suffix letter stands for, or `None` when the character
/// is not a suffix.
fn suffix_multiplier(c: u8) -> Option<u64> {
    let shift = match c.to_ascii_uppercase() {
        b'B' => 0,
        b'K' => 10,
        b'M' => 20,
        b'G' => 30,
        b'T' => 40,
        b'P' => 50,
        b'E' => 60,
        _ => return None,
    };
    Some(1u64 << shift)
}

/// Parses a decimal unsigned integer the way qemu's `parse_uint()` does:
/// white space, an optional sign, digits. Returns the value and the index
/// after the digits; a minus sign or overflow is `OutOfRange` (with the end
/// index still reported so trailing text can turn it into `Invalid`).
fn parse_uint(s: &[u8]) -> (Result<u64, SizeError>, usize) {
    let (negative, digits) = sign(s, skip_space(s, 0));
    let (value, i, overflow) = decimal(s, digits);
    if i == digits {
        return (Err(SizeError::Invalid), 0);
    }
    if negative || overflow {
        return (Err(SizeError::OutOfRange), i);
    }
    (Ok(value), i)
}

/// Parses the longest prefix of `s` that C's `strtod` would read as a
/// finite decimal number without exponent. Returns the value and the
/// number of bytes consumed, or `None` when nothing could be read.
fn parse_fraction(s: &[u8]) -> Option<(f64, usize)> {
    let num_start = skip_space(s, 0);
    let (_, mut i) = sign(s, num_start);
    let mut saw_digit = false;
    while i < s.len() && s[i].is_ascii_digit() {
        i += 1;
        saw_digit = true;
    }
    if s.get(i) == Some(&b'.') {
        i += 1;
        while i < s.len() && s[i].is_ascii_digit() {
            i += 1;
            saw_digit = true;
        }
    }
    if !saw_digit {
        return None;
    }
    let text = std::str::from_utf8(&s[num_start..i]).ok()?;
    let text = text.trim_start_matches('+');
    let text = text.strip_suffix('.').unwrap_or(text);
    let value: f64 = text.parse().ok()?;
    Some((value, i))
}

/// Parses `text` as qemu parses a size with the default unit of bytes.
/// The whole string must be consumed.
pub fn parse_size(text: &str) -> Result<u64, SizeError> {
    let s = text.as_bytes();
    let (int_part, mut end) = parse_uint(s);
    let mut fraction_bits: u64 = 0;
    let mut value: u64;
    match int_part {
        Err(SizeError::OutOfRange) => {
            // qemu stops here; text left after the digits makes it malformed.
            return Err(if end < s.len() { SizeError::Invalid } else { SizeError::OutOfRange });
        }
        Ok(0) if matches!(s.get(end), Some(b'x' | b'X')) => {
            // Hexadecimal: no fraction and no suffix allowed.
            let start = skip_space(s, 0);
            let hex = &s[start + 2..];
            let n = hex.iter().take_while(|c| c.is_ascii_hexdigit()).count();
            if n == 0 {
                return Err(SizeError::Invalid);
            }
            let digits = std::str::from_utf8(&hex[..n]).map_err(|_| SizeError::Invalid)?;
            let v = u64::from_str_radix(digits, 16).map_err(|_| SizeError::OutOfRange)?;
            end = start + 2 + n;
            if end < s.len() && (s[end] == b'.' || suffix_multiplier(s[end]).is_some()) {
                return Err(SizeError::Invalid);
            }
            if end != s.len() {
                return Err(SizeError::Invalid);
            }
            return Ok(v);
        }
        r => {
            let looks_fractional = s.get(end) == Some(&b'.') || (r.is_err() && text.contains('.'));
            if looks_fractional {
                let (frac, f) = if r.is_ok() && !s.get(end + 1).is_some_and(u8::is_ascii_digit) {
                    (0.0, end + 1)
                } else {
                    // strtod would read 'e' as an exponent; qemu wants it as
                    // the exabyte suffix, so the number stops there.
                    let rest = &s[end..];
                    let cut =
                        rest.iter().position(|&c| c == b'e' || c == b'E').unwrap_or(rest.len());
                    let (v, used) = parse_fraction(&rest[..cut]).ok_or(SizeError::Invalid)?;
                    (v, end + used)
                };
                if s[..f].contains(&b'-') {
                    return Err(SizeError::Invalid);
                }
                // 64.64 fixed point, as qemu computes it.
                let scaled = frac * 18_446_744_073_709_551_616.0;
                #[allow(
                    clippy::cast_possible_truncation,
                    clippy::cast_sign_loss,
                    reason = "0 <= scaled (a `-` was refused above); under 2^64 the cast \
                              drops the fraction as qemu's `(uint64_t)` cast does"
                )]
                let bits =
                    if scaled >= 18_446_744_073_709_551_616.0 { u64::MAX } else { scaled as u64 };
                fraction_bits = bits;
                if fraction_bits == 0 && frac != 0.0 {
                    fraction_bits = 1;
                }
                end = f;
            }
            value = match r {
                Ok(v) => v,
                // ".5k" has no integer part: the fraction is all there is.
                Err(_) if looks_fractional => 0,
                Err(e) => return Err(e),
            };
        }
    }
    let mul = match s.get(end).and_then(|&c| suffix_multiplier(c)) {
        Some(m) => {
            end += 1;
            m
        }
        None => 1,
    };
    if mul == 1 {
        if fraction_bits != 0 {
            return Err(SizeError::Invalid);
        }
    } else {
        let whole = u128::from(value) * u128::from(mul);
        let frac = u128::from(fraction_bits) * u128::from(mul);
        // Round half up, as qemu does.
        let total = whole + (frac >> 64) + ((frac >> 63) & 1);
        let Ok(total) = u64::try_from(total) else {
            return if end == s.len() {
                Err(SizeError::OutOfRange)
            } else {
                Err(SizeError::Invalid)
            };
        };
        value = total;
    }
    if end != s.len() {
        return Err(SizeError::Invalid);
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_what_qemu_accepts() {
        for (text, want) in [
            ("0", 0),
            ("1k", 1024),
            ("1K", 1024),
            ("1b", 1),
            ("1B", 1),
            ("1.5G", 1_610_612_736),
            ("1.6k", 1638),
            ("1.k", 1024),
            (".5k", 512),
            (" 1k", 1024),
            ("0x10", 16),
            ("010", 10),
            ("1e", 1 << 60),
            ("1.5E", 1_729_382_256_910_270_464),
            ("1.0000000000000000001k", 1024),
            ("64M", 64 << 20),
        ] {
            assert_eq!(parse_size(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn refuses_what_qemu_refuses() {
        for (text, want) in [
            ("foobar", SizeError::Invalid),
            ("1x", SizeError::Invalid),
            ("1.5", SizeError::Invalid),
            ("1KB", SizeError::Invalid),
            ("1e3", SizeError::Invalid),
            ("0x1k", SizeError::Invalid),
            ("0x", SizeError::Invalid),
            ("0.5b", SizeError::Invalid),
            ("0.00001", SizeError::Invalid),
            ("-1k", SizeError::Invalid),
            ("", SizeError::Invalid),
            ("-0", SizeError::OutOfRange),
            ("16E", SizeError::OutOfRange),
            ("18446744073709551616", SizeError::OutOfRange),
        ] {
            assert_eq!(parse_size(text), Err(want), "{text}");
        }
    }
}
