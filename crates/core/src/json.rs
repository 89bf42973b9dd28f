//! An ordered JSON value and qemu's pretty printer for it.
//!
//! qemu-img prints JSON with its own writer (`qobject/json-writer.c`): keys
//! in insertion order, four spaces of indent, every `{` and `[` ends its
//! line (an empty container too: `{` newline, indent, `}`), `": "` between
//! key and value, and every character outside printable ASCII escaped as
//! `\uXXXX` with upper-case hex. This module reproduces that text exactly.

/// A JSON value whose objects keep their keys in insertion order.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A signed integer.
    Int(i64),
    /// An unsigned integer (qemu prints `uint64` fields such as sizes).
    UInt(u64),
    /// A string.
    Str(String),
    /// An array.
    Array(Vec<Json>),
    /// An object, keys in the order qemu prints them.
    Object(Vec<(String, Json)>),
}

impl Json {
    /// An empty object.
    pub fn object() -> Self {
        Json::Object(Vec::new())
    }

    /// Appends `key: value` to an object (no-op on other values).
    pub fn push(&mut self, key: &str, value: Json) {
        if let Json::Object(fields) = self {
            fields.push((key.to_string(), value));
        }
    }

    /// Builder form of [`Json::push`].
    pub fn with(mut self, key: &str, value: Json) -> Self {
        self.push(key, value);
        self
    }

    /// The value under `key` of an object.
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(fields) => fields.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The value as qemu's pretty printer writes it, with one trailing
    /// newline as qemu-img prints it.
    pub fn to_qemu_pretty(&self) -> String {
        let mut out = String::new();
        write_value(&mut out, self, 0);
        out.push('\n');
        out
    }
}

impl From<&str> for Json {
    fn from(s: &str) -> Self {
        Json::Str(s.to_string())
    }
}

impl From<String> for Json {
    fn from(s: String) -> Self {
        Json::Str(s)
    }
}

impl From<bool> for Json {
    fn from(b: bool) -> Self {
        Json::Bool(b)
    }
}

impl From<u64> for Json {
    fn from(n: u64) -> Self {
        Json::UInt(n)
    }
}

impl From<i64> for Json {
    fn from(n: i64) -> Self {
        Json::Int(n)
    }
}

fn indent(out: &mut String, level: usize) {
    for _ in 0..level {
        out.push_str("    ");
    }
}

fn write_value(out: &mut String, v: &Json, level: usize) {
    match v {
        Json::Null => out.push_str("null"),
        Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Json::Int(n) => out.push_str(&n.to_string()),
        Json::UInt(n) => out.push_str(&n.to_string()),
        Json::Str(s) => write_str(out, s),
        Json::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push('\n');
                indent(out, level + 1);
                write_value(out, item, level + 1);
            }
            out.push('\n');
            indent(out, level);
            out.push(']');
        }
        Json::Object(fields) => {
            out.push('{');
            for (i, (k, item)) in qdict_order(fields).into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push('\n');
                indent(out, level + 1);
                write_str(out, k);
                out.push_str(": ");
                write_value(out, item, level + 1);
            }
            out.push('\n');
            indent(out, level);
            out.push('}');
        }
    }
}

/// The number of hash buckets in qemu's `QDict` (`QDICT_BUCKET_MAX`).
const QDICT_BUCKET_MAX: u32 = 512;

/// The hash qemu's `QDict` files keys under (`tdb_hash` in `qobject/qdict.c`).
fn qdict_hash(key: &str) -> u32 {
    // C: `unsigned value = 0x238F13AF * strlen(key)`, a size_t product
    // stored in 32 bits; truncating the length first gives the same bits.
    #[allow(clippy::cast_possible_truncation, reason = "qemu truncates to `unsigned int`")]
    let mut value = 0x238F_13AFu32.wrapping_mul(key.len() as u32);
    for (i, &c) in key.as_bytes().iter().enumerate() {
        value = value.wrapping_add(u32::from(c) << ((i * 5) % 24));
    }
    1_103_515_243u32.wrapping_mul(value).wrapping_add(12345)
}

/// The fields in the order qemu's printer meets them. qemu-img builds its
/// JSON as a `QDict`, a hash table that iterates bucket by bucket and, in a
/// bucket, from the newest key to the oldest; that is why `virtual-size`
/// comes before `filename`. Objects here hold fields in the order qemu's
/// visitors insert them, so the same walk gives the same text.
fn qdict_order(fields: &[(String, Json)]) -> Vec<&(String, Json)> {
    let mut order: Vec<(u32, usize, &(String, Json))> = fields
        .iter()
        .enumerate()
        .map(|(i, f)| (qdict_hash(&f.0) % QDICT_BUCKET_MAX, i, f))
        .collect();
    order.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    order.into_iter().map(|(_, _, f)| f).collect()
}

/// The entries of an object in the order qemu walks them (see
/// [`qdict_order`]); empty for other values.
pub fn qdict_entries(v: &Json) -> Vec<(&str, &Json)> {
    match v {
        Json::Object(fields) => {
            qdict_order(fields).into_iter().map(|(k, v)| (k.as_str(), v)).collect()
        }
        _ => Vec::new(),
    }
}

/// Writes a quoted string with qemu's escapes (`quoted_str`): the bytes
/// the text carries ([`crate::rawtext`]) are read as modified UTF-8 (`\xC0\x80`
/// is U+0000), and every sequence that is not a valid character (bad
/// bytes, surrogates, noncharacters, overlong forms) becomes U+FFFD.
fn write_str(out: &mut String, s: &str) {
    out.push('"');
    let bytes = crate::rawtext::to_bytes(s);
    let mut rest: &[u8] = &bytes;
    while !rest.is_empty() {
        let (cp, used) = mod_utf8_codepoint(rest);
        rest = rest.get(used..).unwrap_or_default();
        match cp.map_or('\u{FFFD}', |c| char::from_u32(c).unwrap_or('\u{FFFD}')) {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (' '..'\u{7f}').contains(&c) => out.push(c),
            c => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04X}"));
                }
            }
        }
    }
    out.push('"');
}

/// The smallest code point each length of a multi-byte sequence may
/// encode (anything below is an overlong form).
const MIN_CODE_POINT: [u32; 5] = [0x80, 0x800, 0x1_0000, 0x20_0000, 0x400_0000];

/// Decodes the sequence at the start of `s` (non-empty) as qemu's
/// `mod_utf8_codepoint` does: the code point, or `None` for an invalid
/// sequence, and how many bytes it spans (a missing continuation byte
/// ends the sequence before it).
fn mod_utf8_codepoint(s: &[u8]) -> (Option<u32>, usize) {
    let Some(&lead) = s.first() else { return (None, 0) };
    if lead < 0x80 {
        return (Some(u32::from(lead)), 1);
    }
    if lead >= 0xFE || lead & 0x40 == 0 {
        // Impossible bytes, or a continuation byte without a lead.
        return (None, 1);
    }
    let ones = lead.leading_ones(); // 2..=6
    let len = usize::from(u8::try_from(ones).unwrap_or(6));
    let mut cp = u32::from(lead) & (0x7F >> ones);
    for i in 1..len {
        match s.get(i) {
            Some(&b) if b & 0xC0 == 0x80 => cp = (cp << 6) | u32::from(b & 0x3F),
            _ => return (None, i),
        }
    }
    let valid = cp <= 0x10_FFFF
        && !(0xFDD0..=0xFDEF).contains(&cp)
        && cp & 0xFFFE != 0xFFFE
        && !(0xD800..=0xDFFF).contains(&cp)
        && (MIN_CODE_POINT.get(len - 2).is_some_and(|&min| cp >= min) || (cp == 0 && len == 2));
    (valid.then_some(cp), len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_like_qemu() {
        // Keys in hash order: name (39), children (206), virtual-size (309),
        // data (505).
        let v = Json::object()
            .with("data", Json::Array(vec![Json::Bool(true), Json::Int(-1)]))
            .with("virtual-size", Json::UInt(1024))
            .with("children", Json::Array(vec![]))
            .with("name", Json::from("caf\u{e9} \"q\"\n"));
        let want = "{\n    \"name\": \"caf\\u00E9 \\\"q\\\"\\n\",\n    \
                    \"children\": [\n    ],\n    \"virtual-size\": 1024,\n    \
                    \"data\": [\n        true,\n        -1\n    ]\n}\n";
        assert_eq!(v.to_qemu_pretty(), want);
    }

    #[test]
    fn escapes_astral_as_surrogates() {
        let mut out = String::new();
        write_str(&mut out, "\u{1F600}\u{7f}");
        assert_eq!(out, "\"\\uD83D\\uDE00\\u007F\"");
    }

    #[test]
    fn replaces_what_is_not_utf8_as_qemu_does() {
        // Measured with qemu-img 10.0.2 on a backing file of this name.
        let name = crate::rawtext::from_bytes(
            b"b\xffx\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xc0\x80\xed\xa0\x80z.img",
        );
        let mut out = String::new();
        write_str(&mut out, &name);
        assert_eq!(out, "\"b\\uFFFDx\\u00E9\\u20AC\\uD83D\\uDE00\\u0000\\uFFFDz.img\"");
        let mut out = String::new();
        // Noncharacters and a truncated sequence.
        write_str(&mut out, &crate::rawtext::from_bytes(b"\xef\xb7\x90\xef\xbf\xbe\xe2\x82"));
        assert_eq!(out, "\"\\uFFFD\\uFFFD\\uFFFD\"");
    }
}
