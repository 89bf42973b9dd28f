//! Reading JSON text into a [`Json`] value, for the `json:{...}` file
//! names qemu's block layer accepts (an image, or a backing file an image
//! records). Well-formed JSON only (RFC 8259, and qemu's single-quoted
//! strings); nesting is bounded so hostile text cannot exhaust the stack.
//! instar words a malformed text in its own words: qemu's lexer reports
//! it differently from release to release.

use crate::json::Json;

/// The deepest nesting read (qemu's parser allows 1024; no real file
/// name nests more than a few levels).
pub const MAX_DEPTH: usize = 64;

/// Why a text is not JSON instar reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError;

/// The JSON value `text` holds, with nothing but white space after it.
pub fn parse(text: &str) -> Result<Json, JsonError> {
    let mut r = Reader { s: text.as_bytes(), at: 0 };
    let v = r.value(0)?;
    r.space();
    if r.at != r.s.len() {
        return Err(JsonError);
    }
    Ok(v)
}

struct Reader<'a> {
    s: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.at).copied()
    }

    fn space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.space();
        if self.peek() == Some(c) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: usize) -> Result<Json, JsonError> {
        if depth > MAX_DEPTH {
            return Err(JsonError);
        }
        self.space();
        match self.peek().ok_or(JsonError)? {
            b'{' => {
                self.at += 1;
                let mut fields: Vec<(String, Json)> = Vec::new();
                if self.eat(b'}') {
                    return Ok(Json::Object(fields));
                }
                loop {
                    self.space();
                    let key = self.string()?;
                    if !self.eat(b':') {
                        return Err(JsonError);
                    }
                    let v = self.value(depth + 1)?;
                    // A repeated key keeps its place and takes the last
                    // value, as a QDict does.
                    match fields.iter_mut().find(|(k, _)| *k == key) {
                        Some(f) => f.1 = v,
                        None => fields.push((key, v)),
                    }
                    if self.eat(b'}') {
                        return Ok(Json::Object(fields));
                    }
                    if !self.eat(b',') {
                        return Err(JsonError);
                    }
                }
            }
            b'[' => {
                self.at += 1;
                let mut items = Vec::new();
                if self.eat(b']') {
                    return Ok(Json::Array(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    if self.eat(b']') {
                        return Ok(Json::Array(items));
                    }
                    if !self.eat(b',') {
                        return Err(JsonError);
                    }
                }
            }
            b'"' | b'\'' => self.string().map(Json::Str),
            b't' => self.word("true", Json::Bool(true)),
            b'f' => self.word("false", Json::Bool(false)),
            b'n' => self.word("null", Json::Null),
            _ => self.number(),
        }
    }

    fn word(&mut self, w: &str, v: Json) -> Result<Json, JsonError> {
        if self.s[self.at..].starts_with(w.as_bytes()) {
            self.at += w.len();
            Ok(v)
        } else {
            Err(JsonError)
        }
    }

    fn number(&mut self) -> Result<Json, JsonError> {
        let start = self.at;
        while matches!(self.peek(), Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')) {
            self.at += 1;
        }
        let text = std::str::from_utf8(&self.s[start..self.at]).map_err(|_| JsonError)?;
        if let Ok(n) = text.parse::<i64>() {
            return Ok(Json::Int(n));
        }
        if let Ok(n) = text.parse::<u64>() {
            return Ok(Json::UInt(n));
        }
        // Other numbers (fractions, exponents) are kept as their text.
        match text.parse::<f64>() {
            Ok(_) => Ok(Json::Str(text.to_string())),
            Err(_) => Err(JsonError),
        }
    }

    /// A string in `"` or `'` quotes, with JSON's escapes.
    fn string(&mut self) -> Result<String, JsonError> {
        let quote = self.peek().filter(|q| *q == b'"' || *q == b'\'').ok_or(JsonError)?;
        self.at += 1;
        let mut out: Vec<u8> = Vec::new();
        loop {
            let c = self.peek().ok_or(JsonError)?;
            self.at += 1;
            match c {
                _ if c == quote => break,
                b'\\' => {
                    let e = self.peek().ok_or(JsonError)?;
                    self.at += 1;
                    let ch = match e {
                        b'"' => '"',
                        b'\'' => '\'',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let hex = self.s.get(self.at..self.at + 4).ok_or(JsonError)?;
                            let hex = std::str::from_utf8(hex).map_err(|_| JsonError)?;
                            let cp = u32::from_str_radix(hex, 16).map_err(|_| JsonError)?;
                            self.at += 4;
                            char::from_u32(cp).ok_or(JsonError)?
                        }
                        _ => return Err(JsonError),
                    };
                    let mut buf = [0; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                }
                c if c < 0x20 => return Err(JsonError),
                c => out.push(c),
            }
        }
        Ok(crate::rawtext::from_bytes(&out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_nest_and_keep_their_order() {
        let v = parse(r#" {"driver":"qcow2","file":{"filename":"a b","n":-5},"x":[true,null]} "#)
            .unwrap();
        let want = Json::object()
            .with("driver", Json::from("qcow2"))
            .with(
                "file",
                Json::object().with("filename", Json::from("a b")).with("n", Json::Int(-5)),
            )
            .with("x", Json::Array(vec![Json::Bool(true), Json::Null]));
        assert_eq!(v, want);
        assert_eq!(
            parse(r#"{'a':"\u00e9\n"}"#).unwrap(),
            Json::object().with("a", Json::from("é\n"))
        );
    }

    #[test]
    fn malformed_text_and_deep_nesting_are_refused() {
        for bad in ["{bad", "[1,]", "{\"a\" 1}", "\"\\x\"", "{} x", "", "nul"] {
            assert_eq!(parse(bad), Err(JsonError), "{bad}");
        }
        let deep = "[".repeat(MAX_DEPTH + 2) + &"]".repeat(MAX_DEPTH + 2);
        assert_eq!(parse(&deep), Err(JsonError));
        let fine = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert!(parse(&fine).is_ok());
    }
}
