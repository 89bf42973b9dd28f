//! The divergence whitelist of `info --output=json` (docs/compat.md §5.1), applied to
//! both sides before they are compared, and the comparison itself.
//!
//! The whitelist acts on the parsed JSON, by path, and leaves a labelled
//! placeholder where it hides a value (as insta's redactions do) instead of
//! deleting the field: the normalised text still shows that the field was
//! there, so a side that lacks the field, or has it where the other does
//! not, is still caught. Exactly three kinds of value are hidden:
//!
//! - `filename`, when its value is the path the test gave the image, at the
//!   top level, in `children[*].info` at every depth, and in vmdk's
//!   `format-specific.data.extents[*]`: the path depends on the temporary
//!   folder, which differs from run to run. -> [`FILENAME`]
//! - `actual-size`, at any depth: the allocation the host file system
//!   reports depends on that file system (ext4, xfs, tmpfs differ), not on
//!   the image. -> [`ACTUAL_SIZE`]
//! - vmdk `format-specific.data.cid`: a random number drawn per create.
//!   -> [`CID`]
//!
//! Nothing else is touched: not `dirty-flag`, not a file child's
//! `virtual-size`, not vmdk `parent-cid` (docs/compat.md §5.2).
//!
//! The normalised JSON is printed back in qemu's own layout (4-space
//! indent, every `{` and `[` ending its line, keys in the order qemu printed
//! them), so a stored baseline reads like qemu-img's output with three kinds
//! of placeholder in it. The printer is the test side's own, not
//! `instar_core::json`: a bug in instar's printer must not be able to shape
//! the text it is compared against.

use serde_json::{Map, Value};

/// Placeholder for a `filename` that is the test's temporary path.
pub const FILENAME: &str = "$FILENAME";
/// Placeholder for every `actual-size`.
pub const ACTUAL_SIZE: &str = "$ACTUAL_SIZE";
/// Placeholder for vmdk's random content id.
pub const CID: &str = "$CID";

/// Applies the whitelist to the output of `info --output=json` for an image
/// the test created at `temp_path`.
pub fn normalise(value: &mut Value, temp_path: &str) {
    normalise_node(value, temp_path);
    redact_actual_size(value);
}

/// One image node (the top level or a child's `info`): its own filename,
/// its vmdk fields, and its children.
fn normalise_node(node: &mut Value, temp_path: &str) {
    let Some(obj) = node.as_object_mut() else { return };
    redact_path(obj, "filename", temp_path);
    if let Some(fs) = obj.get_mut("format-specific").and_then(Value::as_object_mut) {
        if fs.get("type").and_then(Value::as_str) == Some("vmdk") {
            if let Some(data) = fs.get_mut("data").and_then(Value::as_object_mut) {
                if data.contains_key("cid") {
                    data.insert("cid".to_string(), Value::from(CID));
                }
                if let Some(extents) = data.get_mut("extents").and_then(Value::as_array_mut) {
                    for extent in extents.iter_mut().filter_map(Value::as_object_mut) {
                        redact_path(extent, "filename", temp_path);
                    }
                }
            }
        }
    }
    if let Some(children) = obj.get_mut("children").and_then(Value::as_array_mut) {
        for child in children.iter_mut() {
            if let Some(info) = child.get_mut("info") {
                normalise_node(info, temp_path);
            }
        }
    }
}

/// Replaces `obj[key]` by [`FILENAME`] when it is exactly `temp_path`.
fn redact_path(obj: &mut Map<String, Value>, key: &str, temp_path: &str) {
    if obj.get(key).and_then(Value::as_str) == Some(temp_path) {
        obj.insert(key.to_string(), Value::from(FILENAME));
    }
}

/// Replaces every `actual-size` value, at any depth, by [`ACTUAL_SIZE`].
fn redact_actual_size(value: &mut Value) {
    match value {
        Value::Object(obj) => {
            for (key, item) in obj.iter_mut() {
                if key == "actual-size" {
                    *item = Value::from(ACTUAL_SIZE);
                } else {
                    redact_actual_size(item);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_actual_size),
        _ => {}
    }
}

/// Parses `text` (qemu-img's or instar's `info --output=json`), applies the
/// whitelist for `temp_path`, and prints it back in qemu's layout.
pub fn normalise_text(text: &str, temp_path: &str) -> Result<String, serde_json::Error> {
    let mut value: Value = serde_json::from_str(text)?;
    normalise(&mut value, temp_path);
    Ok(to_qemu_pretty(&value))
}

/// Prints `value` as qemu's `qobject_to_json_pretty` does, followed by the
/// newline qemu-img adds: objects and arrays open on the current line and
/// put each item on its own line, four spaces deeper; an empty one still
/// closes on a line of its own.
pub fn to_qemu_pretty(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value, 0);
    out.push('\n');
    out
}

fn write_value(out: &mut String, value: &Value, depth: usize) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                out.push_str(if i == 0 { "\n" } else { ",\n" });
                indent(out, depth + 1);
                write_value(out, item, depth + 1);
            }
            out.push('\n');
            indent(out, depth);
            out.push(']');
        }
        Value::Object(obj) => {
            out.push('{');
            for (i, (key, item)) in obj.iter().enumerate() {
                out.push_str(if i == 0 { "\n" } else { ",\n" });
                indent(out, depth + 1);
                write_string(out, key);
                out.push_str(": ");
                write_value(out, item, depth + 1);
            }
            out.push('\n');
            indent(out, depth);
            out.push('}');
        }
    }
}

fn indent(out: &mut String, depth: usize) {
    for _ in 0..depth {
        out.push_str("    ");
    }
}

/// A JSON string as qemu quotes it: the usual short escapes, and `\uXXXX`
/// (upper-case hex, surrogate pairs beyond the BMP) for control characters,
/// DEL and everything that is not ASCII.
fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
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

/// Compares two normalised texts and panics with a readable line diff
/// (similar-asserts) when they differ; `what` names the comparison.
pub fn assert_same(what: &str, expected: &str, actual: &str) {
    similar_asserts::assert_eq!(expected: expected, actual: actual, "{what}");
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATH: &str = "/tmp/.tmpAbC123/1G-default.qcow2";

    /// qemu-img 10.0.2's `info --output=json` for a qcow2 1G image.
    fn qcow2_fixture(path: &str, actual: u64, file_virtual: u64, dirty: bool) -> String {
        format!(
            r#"{{
    "children": [
        {{
            "name": "file",
            "info": {{
                "children": [
                ],
                "virtual-size": {file_virtual},
                "filename": "{path}",
                "format": "file",
                "actual-size": {actual},
                "format-specific": {{
                    "type": "file",
                    "data": {{
                    }}
                }},
                "dirty-flag": false
            }}
        }}
    ],
    "virtual-size": 1073741824,
    "filename": "{path}",
    "cluster-size": 65536,
    "format": "qcow2",
    "actual-size": {actual},
    "format-specific": {{
        "type": "qcow2",
        "data": {{
            "compat": "1.1",
            "compression-type": "zlib",
            "lazy-refcounts": false,
            "refcount-bits": 16,
            "corrupt": false,
            "extended-l2": false
        }}
    }},
    "dirty-flag": {dirty}
}}
"#
        )
    }

    fn vmdk_fixture(path: &str, cid: &str, parent_cid: &str) -> String {
        format!(
            r#"{{
    "virtual-size": 1073741824,
    "filename": "{path}",
    "cluster-size": 65536,
    "format": "vmdk",
    "actual-size": 20480,
    "format-specific": {{
        "type": "vmdk",
        "data": {{
            "cid": {cid},
            "parent-cid": {parent_cid},
            "create-type": "monolithicSparse",
            "extents": [
                {{
                    "virtual-size": 1073741824,
                    "filename": "{path}",
                    "cluster-size": 65536,
                    "format": ""
                }}
            ]
        }}
    }},
    "dirty-flag": false
}}
"#
        )
    }

    #[test]
    fn printer_reproduces_qemu_layout() {
        let text = qcow2_fixture(PATH, 200704, 197120, false);
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(to_qemu_pretty(&value), text);
    }

    #[test]
    fn paths_and_sizes_become_placeholders() {
        let out = normalise_text(&qcow2_fixture(PATH, 200704, 197120, false), PATH).unwrap();
        assert_eq!(out.matches("\"$FILENAME\"").count(), 2);
        assert_eq!(out.matches("\"actual-size\": \"$ACTUAL_SIZE\"").count(), 2);
        assert!(!out.contains(PATH));
        assert!(!out.contains("200704"));
    }

    #[test]
    fn different_paths_and_allocations_compare_equal() {
        let a = normalise_text(&qcow2_fixture(PATH, 200704, 197120, false), PATH).unwrap();
        let other = "/tmp/.tmpXyZ/other.qcow2";
        let b = normalise_text(&qcow2_fixture(other, 4096, 197120, false), other).unwrap();
        assert_same("qcow2 info", &a, &b);
    }

    #[test]
    fn a_filename_that_is_not_the_temp_path_is_kept() {
        let out =
            normalise_text(&qcow2_fixture("/elsewhere/x.qcow2", 1, 197120, false), PATH).unwrap();
        assert!(out.contains("/elsewhere/x.qcow2"));
        assert!(!out.contains(FILENAME));
    }

    #[test]
    #[should_panic(expected = "qcow2 info")]
    fn file_child_virtual_size_is_not_hidden() {
        let a = normalise_text(&qcow2_fixture(PATH, 200704, 197120, false), PATH).unwrap();
        let b = normalise_text(&qcow2_fixture(PATH, 200704, 196624, false), PATH).unwrap();
        assert_same("qcow2 info", &a, &b);
    }

    #[test]
    fn dirty_flag_is_not_hidden() {
        let a = normalise_text(&qcow2_fixture(PATH, 200704, 197120, false), PATH).unwrap();
        let b = normalise_text(&qcow2_fixture(PATH, 200704, 197120, true), PATH).unwrap();
        assert_ne!(a, b);
        assert!(b.contains("\"dirty-flag\": true"));
    }

    #[test]
    fn a_missing_actual_size_is_not_hidden() {
        let a = normalise_text(r#"{"format": "raw", "actual-size": 4096}"#, PATH).unwrap();
        let b = normalise_text(r#"{"format": "raw"}"#, PATH).unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn vmdk_cid_and_extent_filename_are_hidden_but_parent_cid_is_not() {
        let a = normalise_text(&vmdk_fixture(PATH, "2882301714", "4294967295"), PATH).unwrap();
        let b = normalise_text(&vmdk_fixture(PATH, "17", "4294967295"), PATH).unwrap();
        assert_same("vmdk info", &a, &b);
        assert!(a.contains("\"cid\": \"$CID\""));
        assert!(!a.contains(PATH));
        let c = normalise_text(&vmdk_fixture(PATH, "17", "0"), PATH).unwrap();
        assert_ne!(a, c);
    }

    #[test]
    fn cid_outside_vmdk_is_not_hidden() {
        let text = r#"{"format-specific": {"type": "qcow2", "data": {"cid": 5}}}"#;
        let out = normalise_text(text, PATH).unwrap();
        assert!(out.contains("\"cid\": 5"));
    }

    #[test]
    fn strings_are_escaped_like_qemu() {
        let v = Value::from("a\"b\\c\u{e9}\u{1}\u{7f}\u{1F600}/");
        assert_eq!(to_qemu_pretty(&v), "\"a\\\"b\\\\c\\u00E9\\u0001\\u007F\\uD83D\\uDE00/\"\n");
    }

    #[test]
    fn empty_containers_close_on_their_own_line() {
        let v: Value = serde_json::from_str(r#"{"a": [], "b": {}}"#).unwrap();
        assert_eq!(to_qemu_pretty(&v), "{\n    \"a\": [\n    ],\n    \"b\": {\n    }\n}\n");
    }
}
