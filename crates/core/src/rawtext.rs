//! Text that may hold any bytes: file names, backing names and other
//! strings from the command line or from an image.
//!
//! On Linux a file name is bytes, not UTF-8, and qemu-img passes such
//! bytes through untouched: it opens the file by them, stores them in a
//! header and prints them as they are (its JSON writer replaces what is
//! not UTF-8). instar carries these names in ordinary `String`s so that
//! every parser and message can treat them as text, with a lossless
//! escape for what is not UTF-8: each byte of an invalid sequence becomes
//! one character of a reserved private-use block (U+10FF80 + byte -
//! 0x80). Text from outside enters through [`from_bytes`] or
//! [`from_os`], leaves through [`to_bytes`], [`to_path`] or [`write`],
//! and so comes out as the bytes it came in as.
//!
//! A genuine character of the reserved block (as valid UTF-8 in a name)
//! is escaped byte by byte too, so the mapping stays one to one.

use std::borrow::Cow;
use std::ffi::{OsStr, OsString};
use std::io::{self, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

/// The first character of the escape block: byte `b` (0x80..=0xFF) is
/// carried as `ESCAPE_BASE + b`.
const ESCAPE_BASE: u32 = 0x10_FF00;

/// The character carrying the non-ASCII byte `b`.
fn escape(b: u8) -> char {
    // Within U+10FF80..=U+10FFFF, all valid scalar values.
    char::from_u32(ESCAPE_BASE + u32::from(b)).unwrap_or(char::REPLACEMENT_CHARACTER)
}

/// The byte an escape character carries, if `c` is one.
fn escaped_byte(c: char) -> Option<u8> {
    let v = u32::from(c);
    if v >= ESCAPE_BASE + 0x80 {
        u8::try_from(v - ESCAPE_BASE).ok()
    } else {
        None
    }
}

/// Text carrying `bytes` exactly.
pub fn from_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if escaped_byte(c).is_some() {
                let mut buf = [0u8; 4];
                out.extend(c.encode_utf8(&mut buf).bytes().map(escape));
            } else {
                out.push(c);
            }
        }
        out.extend(chunk.invalid().iter().copied().map(escape));
    }
    out
}

/// Text carrying an operating-system string (a command-line argument).
pub fn from_os(s: &OsStr) -> String {
    from_bytes(s.as_bytes())
}

/// The bytes `text` carries.
pub fn to_bytes(text: &str) -> Cow<'_, [u8]> {
    if !text.chars().any(|c| escaped_byte(c).is_some()) {
        return Cow::Borrowed(text.as_bytes());
    }
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        match escaped_byte(c) {
            Some(b) => out.push(b),
            None => out.extend_from_slice(c.encode_utf8(&mut [0u8; 4]).as_bytes()),
        }
    }
    Cow::Owned(out)
}

/// The path `text` names.
pub fn to_path(text: &str) -> PathBuf {
    PathBuf::from(OsString::from_vec(to_bytes(text).into_owned()))
}

/// The path `text` names, as an `OsStr` borrowed when it can be.
pub fn to_os(text: &str) -> Cow<'_, OsStr> {
    match to_bytes(text) {
        Cow::Borrowed(b) => Cow::Borrowed(OsStr::from_bytes(b)),
        Cow::Owned(v) => Cow::Owned(OsString::from_vec(v)),
    }
}

/// Writes the bytes `text` carries to `w` (stdout or stderr), as qemu-img
/// prints a name: unchanged.
pub fn write(w: &mut impl Write, text: &str) -> io::Result<()> {
    w.write_all(&to_bytes(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_any_bytes() {
        let cases: [&[u8]; 6] = [
            b"plain.img",
            b"caf\xc3\xa9",
            b"b\xffx\xc0\x80\xed\xa0\x80z",
            b"\xf4\x8f\xbe\x80 reserved block as UTF-8",
            b"\xf4\x8f\xbe",
            b"\x80\x80\xfe",
        ];
        for bytes in cases {
            let text = from_bytes(bytes);
            assert_eq!(to_bytes(&text).as_ref(), bytes, "{bytes:?}");
        }
        for b in 0..=255u8 {
            let text = from_bytes(&[b, b'/', b]);
            assert_eq!(to_bytes(&text).as_ref(), [b, b'/', b]);
        }
    }

    #[test]
    fn ascii_structure_is_kept() {
        // Parsers split on ASCII (',' '=' '/' ':'); escapes never produce it.
        let text = from_bytes(b"a\xff,b=\xfe/c");
        assert_eq!(text.split(',').count(), 2);
        assert!(text.contains("b="));
        assert_eq!(to_bytes(&text).as_ref(), b"a\xff,b=\xfe/c");
    }

    #[test]
    fn utf8_is_borrowed_unchanged() {
        assert!(matches!(to_bytes("caf\u{e9}"), Cow::Borrowed(_)));
        assert_eq!(from_bytes("caf\u{e9}".as_bytes()), "caf\u{e9}");
    }
}
