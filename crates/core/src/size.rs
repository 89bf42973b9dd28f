//! qemu's size syntax: an integer or decimal fraction, an optional scaling
//! suffix (`B K M G T P E`, either case, powers of 1024), or a hexadecimal
//! integer without fraction or suffix.
//!
//! The parser follows the rules of qemu's `qemu_strtosz()` so that every
//! size qemu-img accepts is accepted here with the same value, and every
//! size it refuses is refused with the same kind of failure (malformed or
//! out of range), because the two get different messages.
//!
//! Those rules changed twice ([`read_size`] picks by dialect): before 6.0
//! qemu read the number with `strtod` ([`SIZE_FIXED_POINT`]), from 6.0 to
//! 8.0 as an integer and a fixed-point fraction that refused any `-`,
//! warning about (then, from 8.0, refusing) a hexadecimal number with a
//! suffix, and from 8.1 with `parse_uint` ([`SIZE_PARSE_UINT`],
//! [`parse_size`]).

use crate::ctext::{decimal, sign, skip_space};
use crate::dialect::{
    HEX_SIZE_SUFFIX_DEPRECATED, HEX_SIZE_SUFFIX_REMOVED, SIZE_FIXED_POINT, SIZE_PARSE_UINT,
};
use crate::QemuDialect;

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

/// A size read as one qemu-img version reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeRead {
    /// The value, or why there is none.
    pub value: Result<u64, SizeError>,
    /// Whether qemu-img warned while reading it
    /// ([`hex_suffix_warning`]), as 6.0 to 7.2 do for a hexadecimal
    /// number with a suffix, whatever the outcome.
    pub warned: bool,
}

/// The warning qemu-img 6.0 to 7.2 print (after the program name) when a
/// size is a hexadecimal number with a suffix ([`HEX_SIZE_SUFFIX_DEPRECATED`]).
pub fn hex_suffix_warning(text: &str) -> String {
    format!("warning: Using a multiplier suffix on hex numbers is deprecated: {text}")
}

/// Reads `text` (default unit: bytes) as qemu-img of `dialect` reads a
/// size.
pub fn read_size(text: &str, dialect: QemuDialect) -> SizeRead {
    if dialect.since(SIZE_PARSE_UINT) {
        SizeRead { value: parse_size(text), warned: false }
    } else if dialect.since(SIZE_FIXED_POINT) {
        let hex_suffix = if dialect.since(HEX_SIZE_SUFFIX_REMOVED) {
            HexSuffix::Refused
        } else if dialect.since(HEX_SIZE_SUFFIX_DEPRECATED) {
            HexSuffix::Warned
        } else {
            HexSuffix::Silent
        };
        parse_size_fixed_point(text.as_bytes(), hex_suffix)
    } else {
        SizeRead { value: parse_size_strtod(text.as_bytes()), warned: false }
    }
}

/// What the fixed-point reader does with a hexadecimal number followed by
/// a suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HexSuffix {
    /// Scales it without a word (no release has this reader so; kept for
    /// completeness of the match).
    Silent,
    /// Scales it and warns (6.0 to 7.2).
    Warned,
    /// Refuses it as malformed (8.0).
    Refused,
}

/// C's `strtoull(s, &end, base)` for base 10 or 16, with qemu's
/// `qemu_strtou64` error rules: `Err(Invalid)` with end 0 when nothing
/// was converted, `Err(OutOfRange)` (end after the digits) on overflow; a
/// leading `-` negates modulo 2^64. Base 16 takes an optional `0x`; a
/// `0x` without hexadecimal digits converts the `0` and ends at the `x`.
fn c_strtou64(s: &[u8], base: u32) -> (Result<u64, SizeError>, usize) {
    let (negative, mut i) = sign(s, skip_space(s, 0));
    let digit = |c: u8| char::from(c).to_digit(base);
    if base == 16
        && s.get(i) == Some(&b'0')
        && matches!(s.get(i + 1), Some(b'x' | b'X'))
        && s.get(i + 2).is_some_and(|&c| digit(c).is_some())
    {
        i += 2;
    }
    let start = i;
    let mut value: u64 = 0;
    let mut overflow = false;
    while let Some(d) = s.get(i).and_then(|&c| digit(c)) {
        match value.checked_mul(u64::from(base)).and_then(|v| v.checked_add(u64::from(d))) {
            Some(v) => value = v,
            None => overflow = true,
        }
        i += 1;
    }
    if i == start {
        return (Err(SizeError::Invalid), 0);
    }
    if overflow {
        return (Err(SizeError::OutOfRange), i);
    }
    (Ok(if negative { value.wrapping_neg() } else { value }), i)
}

/// C's `strtod` in the C locale, as qemu's `qemu_strtod_finite` wraps it:
/// the value and the end of the number, `Err(Invalid)` (end 0) when
/// nothing converts or the value is not finite, `Err(OutOfRange)` (end
/// after the number) when it overflows or underflows (glibc's `ERANGE`).
/// Decimal digits, a fraction and an exponent, `0x` hexadecimal with a
/// fraction and a binary exponent, `inf` and `nan` are read.
fn c_strtod_finite(s: &[u8]) -> (Result<f64, SizeError>, usize) {
    let (negative, start) = sign(s, skip_space(s, 0));
    let lower = |i: usize| s.get(i).map(u8::to_ascii_lowercase);
    let word = |i: usize, w: &[u8]| (0..w.len()).all(|k| lower(i + k) == Some(w[k]));
    if word(start, b"inf") || word(start, b"nan") {
        return (Err(SizeError::Invalid), 0);
    }
    let hex_digit = |i: usize| s.get(i).is_some_and(u8::is_ascii_hexdigit);
    let is_hex = s.get(start) == Some(&b'0')
        && matches!(s.get(start + 1), Some(b'x' | b'X'))
        && (hex_digit(start + 2) || (s.get(start + 2) == Some(&b'.') && hex_digit(start + 3)));
    let (magnitude, end) = if is_hex { hex_float(s, start + 2) } else { decimal_float(s, start) };
    let Some(magnitude) = magnitude else { return (Err(SizeError::Invalid), 0) };
    let value = if negative { -magnitude.0 } else { magnitude.0 };
    if magnitude.1 {
        return (Err(SizeError::OutOfRange), end);
    }
    (Ok(value), end)
}

/// A decimal floating-point number at `i`: `(value, out of range)` and
/// the end, or `None` without digits.
fn decimal_float(s: &[u8], start: usize) -> (Option<(f64, bool)>, usize) {
    let digits_from = |mut i: usize| {
        while s.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        i
    };
    let int_end = digits_from(start);
    let mut end = int_end;
    let mut digits = int_end - start;
    if s.get(end) == Some(&b'.') {
        let frac_end = digits_from(end + 1);
        digits += frac_end - end - 1;
        end = frac_end;
    }
    if digits == 0 {
        return (None, 0);
    }
    let mantissa_end = end;
    if matches!(s.get(end), Some(b'e' | b'E')) {
        let (_, exp_digits) = sign(s, end + 1);
        let exp_end = digits_from(exp_digits);
        if exp_end > exp_digits {
            end = exp_end;
        }
    }
    let text = String::from_utf8_lossy(&s[start..end]);
    let value: f64 = text.parse().unwrap_or(0.0);
    let nonzero = s[start..mantissa_end].iter().any(|&c| matches!(c, b'1'..=b'9'));
    // glibc reports ERANGE on overflow and on an underflow to zero or
    // to a subnormal value.
    let out_of_range = value.is_infinite() || (nonzero && value.abs() < f64::MIN_POSITIVE);
    (Some((value, out_of_range)), end)
}

/// The hexadecimal floating-point number after `0x` at `i`: `(value, out
/// of range)` and the end. The caller saw a hexadecimal digit.
fn hex_float(s: &[u8], mut i: usize) -> (Option<(f64, bool)>, usize) {
    // The significant bits, kept to 64 with a sticky bit for the rest.
    let mut mantissa: u64 = 0;
    let mut exponent: i64 = 0;
    let mut sticky = false;
    let mut seen_point = false;
    loop {
        match s.get(i) {
            Some(&c) if c.is_ascii_hexdigit() => {
                let d = u64::from(char::from(c).to_digit(16).unwrap_or(0));
                if mantissa >> 60 == 0 {
                    mantissa = mantissa << 4 | d;
                    if seen_point {
                        exponent -= 4;
                    }
                } else {
                    sticky |= d != 0;
                    if !seen_point {
                        exponent += 4;
                    }
                }
            }
            Some(b'.') if !seen_point => seen_point = true,
            _ => break,
        }
        i += 1;
    }
    if matches!(s.get(i), Some(b'p' | b'P')) {
        let (negative, digits) = sign(s, i + 1);
        let (e, end, _) = decimal(s, digits);
        if end > digits {
            let e = i64::try_from(e).unwrap_or(i64::MAX / 2).min(100_000);
            exponent = exponent.saturating_add(if negative { -e } else { e });
            i = end;
        }
    }
    let mantissa = mantissa | u64::from(sticky);
    #[allow(clippy::cast_precision_loss, reason = "rounds to the nearest double, as strtod does")]
    let m = mantissa as f64;
    let e = i32::try_from(exponent.clamp(-5000, 5000)).unwrap_or(0);
    let value = m * 2f64.powi(e.clamp(-1000, 1000)) * 2f64.powi(e - e.clamp(-1000, 1000));
    let out_of_range = value.is_infinite() || (mantissa != 0 && value < f64::MIN_POSITIVE);
    (Some((value, out_of_range)), i)
}

/// The multiplier of a suffix letter as a `double`, as qemu 5.2 computes
/// with it.
fn suffix_multiplier_f64(c: u8) -> Option<f64> {
    #[allow(clippy::cast_precision_loss, reason = "powers of two are exact doubles")]
    suffix_multiplier(c).map(|m| m as f64)
}

/// qemu 5.2's `do_strtosz`: `strtod`, an optional suffix, and the product
/// in floating point.
fn parse_size_strtod(s: &[u8]) -> Result<u64, SizeError> {
    let (number, mut end) = c_strtod_finite(s);
    let result = match number {
        Err(e) => Err(e),
        Ok(val) => {
            let mul_required = val.fract() != 0.0;
            let mul = match s.get(end).and_then(|&c| suffix_multiplier_f64(c)) {
                Some(m) => {
                    end += 1;
                    m
                }
                None => 1.0,
            };
            // The largest double below 2^64.
            let limit = 18_446_744_073_709_549_568.0;
            if mul == 1.0 && mul_required {
                Err(SizeError::Invalid)
            } else if val * mul > limit || val < 0.0 {
                Err(SizeError::OutOfRange)
            } else {
                #[allow(
                    clippy::cast_possible_truncation,
                    clippy::cast_sign_loss,
                    reason = "0 <= val * mul < 2^64: the cast drops the fraction as C's does"
                )]
                let n = (val * mul) as u64;
                Ok(n)
            }
        }
    };
    if end < s.len() {
        return Err(SizeError::Invalid);
    }
    result
}

/// qemu 6.0 to 8.0's `do_strtosz`: a decimal integer (no `-` anywhere in
/// it), then a hexadecimal integer if it was `0x`, or a decimal fraction
/// read by `strtod` that must not hold an exponent; an optional suffix;
/// the value in 64.64 fixed point, rounded half up.
fn parse_size_fixed_point(s: &[u8], hex_suffix: HexSuffix) -> SizeRead {
    let mut warned = false;
    let (value, end) = fixed_point(s, hex_suffix, &mut warned);
    let value = if end < s.len() { Err(SizeError::Invalid) } else { value };
    SizeRead { value, warned }
}

/// The body of [`parse_size_fixed_point`]: the value and where qemu's end
/// pointer stopped (text after it makes the size malformed).
fn fixed_point(
    s: &[u8],
    hex_suffix: HexSuffix,
    warned: &mut bool,
) -> (Result<u64, SizeError>, usize) {
    let (int_part, mut end) = c_strtou64(s, 10);
    let mut val = match int_part {
        Ok(v) => v,
        Err(e) => return (Err(e), end),
    };
    if s[..end].contains(&b'-') {
        return (Err(SizeError::Invalid), 0);
    }
    let mut hex = false;
    let mut valf: u64 = 0;
    if val == 0 && matches!(s.get(end), Some(b'x' | b'X')) {
        let (hex_part, hex_end) = c_strtou64(s, 16);
        end = hex_end;
        val = match hex_part {
            Ok(v) => v,
            Err(e) => return (Err(e), end),
        };
        let suffixed = s.get(end).is_some_and(|&c| suffix_multiplier(c).is_some());
        if s.get(end) == Some(&b'.') || (hex_suffix == HexSuffix::Refused && suffixed) {
            return (Err(SizeError::Invalid), 0);
        }
        hex = true;
    } else if s.get(end) == Some(&b'.') {
        let f = end;
        let (fraction, used) = c_strtod_finite(&s[f..]);
        match fraction {
            Err(SizeError::OutOfRange) => end = f + used + 1,
            Err(SizeError::Invalid) => end = f + 1,
            Ok(_) if s[f..f + used].iter().any(|c| matches!(c, b'e' | b'E')) => {
                return (Err(SizeError::Invalid), 0);
            }
            Ok(fraction) => {
                end = f + used;
                // C's (uint64_t) conversion as gcc emits it on x86-64: a
                // value of 2^64 (a fraction that rounded up to 1) gives 0.
                let scaled = fraction * 18_446_744_073_709_551_616.0;
                #[allow(
                    clippy::cast_possible_truncation,
                    clippy::cast_sign_loss,
                    reason = "0 <= scaled < 2^64 here: the cast drops the fraction as C's does"
                )]
                let bits = if scaled < 18_446_744_073_709_551_616.0 { scaled as u64 } else { 0 };
                valf = bits;
            }
        }
    }
    let mul = match s.get(end).and_then(|&c| suffix_multiplier(c)) {
        Some(m) => {
            if hex {
                *warned = hex_suffix == HexSuffix::Warned;
            }
            end += 1;
            m
        }
        None => 1,
    };
    if mul == 1 {
        if valf != 0 {
            return (Err(SizeError::Invalid), 0);
        }
        return (Ok(val), end);
    }
    let whole = u128::from(val) * u128::from(mul);
    let frac = u128::from(valf) * u128::from(mul);
    let low = frac & u128::from(u64::MAX);
    let total = whole + (frac >> 64) + (low >> 63);
    match u64::try_from(total) {
        Ok(v) => (Ok(v), end),
        Err(_) => (Err(SizeError::OutOfRange), end),
    }
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

    fn read_in(text: &str, version: &str) -> SizeRead {
        let v = crate::QemuVersion::parse(version).unwrap_or(crate::QemuVersion::new(0, 0, 0));
        read_size(text, QemuDialect::new(v))
    }

    /// Measured with qemu-img 5.2.0, 7.2.22 and 10.0.2 (`create t.raw --
    /// <size>`): the value, or the kind of refusal.
    #[test]
    fn each_era_reads_as_its_qemu_img() {
        use SizeError::{Invalid as I, OutOfRange as R};
        type Read = Result<u64, SizeError>;
        let cases: &[(&str, Read, Read, Read)] = &[
            // text, 5.2, 7.2, 10.0
            ("-0", Ok(0), Err(I), Err(R)),
            ("-1", Err(R), Err(I), Err(R)),
            ("-1k", Err(R), Err(I), Err(I)),
            ("-0k", Ok(0), Err(I), Err(I)),
            ("1e3", Ok(1000), Err(I), Err(I)),
            ("1E3", Ok(1000), Err(I), Err(I)),
            ("4.5e2", Ok(450), Err(I), Err(I)),
            ("1.5e1k", Ok(15360), Err(I), Err(I)),
            ("1e3k", Ok(1_024_000), Err(I), Err(I)),
            ("0x1.8k", Ok(1536), Err(I), Err(I)),
            ("0x10k", Ok(16384), Ok(16384), Err(I)),
            ("0x1p3", Ok(8), Err(I), Err(I)),
            ("0x10", Ok(16), Ok(16), Ok(16)),
            ("1e", Ok(1 << 60), Ok(1 << 60), Ok(1 << 60)),
            ("1.5", Err(I), Err(I), Err(I)),
            ("1.5k", Ok(1536), Ok(1536), Ok(1536)),
            (" 1k", Ok(1024), Ok(1024), Ok(1024)),
            ("+1k", Ok(1024), Ok(1024), Ok(1024)),
            ("-", Err(I), Err(I), Err(I)),
            ("1e400", Err(R), Err(I), Err(I)),
            ("1e-400", Err(R), Err(I), Err(I)),
            ("0.5b", Err(I), Err(I), Err(I)),
            ("9223372036854775807", Ok(1 << 63), Ok(i64::MAX as u64), Ok(i64::MAX as u64)),
            ("18446744073709551616", Err(R), Err(R), Err(R)),
            ("16E", Err(R), Err(R), Err(R)),
            (
                "7.9999999E",
                Ok(9_223_371_921_562_625_024),
                Ok(9_223_371_921_562_625_408),
                Ok(9_223_371_921_562_625_408),
            ),
            ("inf", Err(I), Err(I), Err(I)),
            ("nan", Err(I), Err(I), Err(I)),
            ("0x", Err(I), Err(I), Err(I)),
            ("0xk", Err(I), Err(I), Err(I)),
            ("1kk", Err(I), Err(I), Err(I)),
            (".5k", Ok(512), Err(I), Ok(512)),
            ("1.k", Ok(1024), Ok(1024), Ok(1024)),
            ("00x10", Err(I), Err(I), Err(I)),
            ("0x-1", Err(I), Err(I), Err(I)),
            ("-1b", Err(R), Err(I), Err(I)),
            ("0x8000000000000000", Ok(1 << 63), Ok(1 << 63), Ok(1 << 63)),
            ("1.0000000000000000001k", Ok(1024), Ok(1024), Ok(1024)),
            ("1.99999999999999999999k", Ok(2048), Ok(1024), Ok(2048)),
            ("1k ", Err(I), Err(I), Err(I)),
            ("- 1", Err(I), Err(I), Err(I)),
            ("", Err(I), Err(I), Err(I)),
        ];
        for (text, old, mid, new) in cases {
            assert_eq!(read_in(text, "5.2.0").value, *old, "5.2: {text:?}");
            assert_eq!(read_in(text, "7.2.22").value, *mid, "7.2: {text:?}");
            assert_eq!(read_in(text, "10.0.2").value, *new, "10.0: {text:?}");
        }
    }

    #[test]
    fn hex_with_a_suffix_warns_from_6_0_to_7_2() {
        assert!(read_in("0x10k", "6.0.0").warned);
        assert!(read_in("0x10k", "7.2.22").warned);
        // The warning comes before the text is found malformed.
        let r = read_in("0x1p3", "7.2.22");
        assert!(r.warned && r.value == Err(SizeError::Invalid));
        assert!(!read_in("0x10k", "5.2.0").warned);
        assert_eq!(
            read_in("0x10k", "8.0.0"),
            SizeRead { value: Err(SizeError::Invalid), warned: false }
        );
        assert!(!read_in("0x10", "7.2.22").warned);
        assert_eq!(
            hex_suffix_warning("0x1k"),
            "warning: Using a multiplier suffix on hex numbers is deprecated: 0x1k"
        );
    }
}
