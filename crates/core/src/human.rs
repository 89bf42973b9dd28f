//! The human-readable numbers qemu-img prints: sizes such as `196 KiB`
//! (qemu's `size_to_str`) and C's `%g` formatting they are built on.

/// Formats `v` as C's `printf("%.*g", precision, v)` does.
pub fn format_g(v: f64, precision: usize) -> String {
    if v == 0.0 {
        return "0".to_string();
    }
    if !v.is_finite() {
        return v.to_string();
    }
    let p = precision.max(1);
    // The decimal exponent after rounding to `p` significant digits.
    let e_form = format!("{:.*e}", p - 1, v);
    let (mantissa, exp) = e_form.split_once('e').unwrap_or((&e_form, "0"));
    let x: i32 = exp.parse().unwrap_or(0);
    // C's precision is an `int`; callers pass small constants.
    let p_signed = i64::try_from(p).unwrap_or(i64::MAX);
    if x < -4 || i64::from(x) >= p_signed {
        let m = strip_zeros(mantissa);
        let sign = if x < 0 { '-' } else { '+' };
        format!("{m}e{sign}{:02}", x.abs())
    } else {
        // x < p here, so at least 0 decimals.
        let decimals = usize::try_from((p_signed - 1).saturating_sub(i64::from(x))).unwrap_or(0);
        strip_zeros(&format!("{v:.decimals$}"))
    }
}

fn strip_zeros(s: &str) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s.to_string()
    }
}

/// A byte count as qemu's `size_to_str` prints it: three significant
/// digits and a binary unit, moving to the next unit from 1000 of the
/// current one (so 1000 KiB prints as `0.977 MiB`).
pub fn size_to_str(val: u64) -> String {
    const SUFFIXES: [&str; 7] = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
    // frexp(val / (1000/1024)): the binary exponent of val * 1.024.
    let scaled = val as f64 / (1000.0 / 1024.0);
    #[allow(
        clippy::cast_possible_truncation,
        reason = "the log2 of at most 1.024 * 2^64 is at most 65; frexp's exponent is an `int`"
    )]
    let exp = if scaled == 0.0 { 0 } else { scaled.log2().floor() as i32 + 1 };
    #[allow(clippy::cast_sign_loss, reason = "clamped to 0..=6")]
    let i = ((exp - 1) / 10).clamp(0, 6) as usize;
    let div = (1u64 << (i * 10)) as f64;
    format!("{} {}B", format_g(val as f64 / div, 3), SUFFIXES[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g_format_matches_c() {
        assert_eq!(format_g(196.0, 3), "196");
        assert_eq!(format_g(1.5, 3), "1.5");
        assert_eq!(format_g(0.9765625, 3), "0.977");
        assert_eq!(format_g(1000.0, 3), "1e+03");
        assert_eq!(format_g(12.345, 3), "12.3");
        assert_eq!(format_g(0.0001234, 3), "0.000123");
    }

    #[test]
    fn sizes_match_qemu() {
        assert_eq!(size_to_str(0), "0 B");
        assert_eq!(size_to_str(200_704), "196 KiB");
        assert_eq!(size_to_str(197_120), "192 KiB");
        assert_eq!(size_to_str(1 << 30), "1 GiB");
        assert_eq!(size_to_str(4096), "4 KiB");
        assert_eq!(size_to_str(1000 * 1024), "0.977 MiB");
        assert_eq!(size_to_str(1_610_612_736), "1.5 GiB");
        assert_eq!(size_to_str(999), "999 B");
    }
}
