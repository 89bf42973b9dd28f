//! qemu's option lists: the `-o key=value,...` syntax, typed option
//! descriptions, the `Formatting '...'` line and the `-o help` listing.
//!
//! The rules are qemu's (`util/qemu-option.c`): `,,` is an escaped comma, a
//! bare `key` means `key=on` and `nokey` means `key=off`, each value is
//! checked against its type as it is set, a later value for the same key
//! wins, and printing walks the descriptions in their declared order, using
//! the default text for options that were not set.

use crate::ctext::{sign, skip_space};
use crate::dialect::{QemuDialect, Release, HELP_OPTION_WITHOUT_VALUE};
use crate::size::{hex_suffix_warning, read_size, SizeError};

/// The type of an option value, as qemu declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptType {
    /// Free text (`<str>`).
    Str,
    /// `on`/`off` and their synonyms (`<bool (on/off)>`).
    Bool,
    /// An unsigned integer in C syntax (`<num>`).
    Number,
    /// A size with optional suffix (`<size>`).
    Size,
}

impl OptType {
    /// The type's name in `-o help` output.
    fn help_name(self) -> &'static str {
        match self {
            OptType::Str => "str",
            OptType::Bool => "bool (on/off)",
            OptType::Number => "num",
            OptType::Size => "size",
        }
    }
}

/// One option a format (or the file protocol beneath it) accepts.
#[derive(Debug, Clone, Copy)]
pub struct OptDesc {
    /// The option's name, e.g. `cluster_size`.
    pub name: &'static str,
    /// Its type.
    pub ty: OptType,
    /// The help text `-o help` prints.
    pub help: &'static str,
    /// The default qemu prints in the `Formatting` line when unset.
    pub default: Option<&'static str>,
    /// The first qemu release that has the option (`None`: every release
    /// instar speaks for); older dialects refuse it as an unknown one.
    pub since: Option<Release>,
}

impl OptDesc {
    /// A description with no default.
    pub const fn new(name: &'static str, ty: OptType, help: &'static str) -> Self {
        OptDesc { name, ty, help, default: None, since: None }
    }

    /// A description with a default printed when the option is unset.
    pub const fn with_default(
        name: &'static str,
        ty: OptType,
        help: &'static str,
        default: &'static str,
    ) -> Self {
        OptDesc { name, ty, help, default: Some(default), since: None }
    }

    /// The same option, present from qemu `release` on.
    pub const fn since(self, release: Release) -> Self {
        OptDesc { since: Some(release), ..self }
    }

    /// Whether qemu-img of `dialect` has the option.
    pub fn in_dialect(&self, dialect: QemuDialect) -> bool {
        self.since.is_none_or(|r| dialect.since(r))
    }
}

/// The options the file protocol under every format accepts
/// (`block/file-posix.c`), in qemu's order.
pub const FILE_PROTOCOL_OPTS: &[OptDesc] = &[
    OptDesc::new("size", OptType::Size, "Virtual disk size"),
    OptDesc::new("nocow", OptType::Bool, "Turn off copy-on-write (valid only on btrfs)"),
    OptDesc::new(
        "preallocation",
        OptType::Str,
        "Preallocation mode (allowed values: off, falloc, full)",
    ),
    OptDesc::new(
        "extent_size_hint",
        OptType::Size,
        "Extent size hint for the image file, 0 to disable",
    ),
];

/// A value that was set, in its text form and its parsed form.
#[derive(Debug, Clone)]
struct SetOpt {
    name: String,
    text: String,
    value: Value,
}

#[derive(Debug, Clone, Copy)]
enum Value {
    Str,
    Bool(bool),
    Num(u64),
}

/// A set of option values checked against a list of descriptions.
#[derive(Debug, Clone)]
pub struct Options {
    descs: Vec<OptDesc>,
    set: Vec<SetOpt>,
    /// Whose rules values are read by.
    dialect: QemuDialect,
    /// What qemu-img warned while reading values: the option and the
    /// warning (without the program name), in order.
    warnings: Vec<(String, String)>,
}

/// Parses a boolean as qemu's `qapi_bool_parse` does.
pub fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "on" | "yes" | "true" | "y" => Some(true),
        "off" | "no" | "false" | "n" => Some(false),
        _ => None,
    }
}

/// Parses an unsigned number in C syntax (decimal, `0x` hex, `0` octal), as
/// qemu's `qemu_strtou64(..., 0)` does: it is `strtoull`, so a leading `-`
/// negates the value modulo 2^64 (`-1` is `UINT64_MAX`), and a magnitude
/// beyond 64 bits is out of range.
fn parse_number(text: &str) -> Result<u64, SizeError> {
    let bytes = text.as_bytes();
    let (negative, at) = sign(bytes, skip_space(bytes, 0));
    // Space and sign are ASCII, so `at` is a character boundary.
    let t = &text[at..];
    let (digits, radix) = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        (h, 16)
    } else if t.len() > 1 && t.starts_with('0') {
        (&t[1..], 8)
    } else {
        (t, 10)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return Err(SizeError::Invalid);
    }
    let v = u64::from_str_radix(digits, radix).map_err(|_| SizeError::OutOfRange)?;
    Ok(if negative { v.wrapping_neg() } else { v })
}

/// Whether `list` is acceptable to qemu-img as one `-o` argument: not empty,
/// not starting with a comma, and not ending in an unescaped comma.
pub fn is_valid_option_list(list: &str) -> bool {
    if list.is_empty() || list.starts_with(',') {
        return false;
    }
    let trailing = list.len() - list.trim_end_matches(',').len();
    trailing.is_multiple_of(2)
}

/// The elements of an option list as typed, split as qemu splits them: a
/// name runs to `=` or `,`; a value runs to a `,` that is not doubled
/// (`,,` is a literal comma). `None`: no `=`, a flag.
fn elements(list: &str) -> Vec<(&str, Option<String>)> {
    let mut out = Vec::new();
    let bytes = list.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && bytes[i] != b'=' && bytes[i] != b',' {
            i += 1;
        }
        let name = &list[start..i];
        if i >= bytes.len() || bytes[i] == b',' {
            out.push((name, None));
            i += 1;
            continue;
        }
        i += 1; // '='
        let mut value = String::new();
        while i < bytes.len() {
            if bytes[i] == b',' {
                if bytes.get(i + 1) == Some(&b',') {
                    value.push(',');
                    i += 2;
                    continue;
                }
                break;
            }
            let ch = list[i..].chars().next().unwrap_or(' ');
            value.push(ch);
            i += ch.len_utf8();
        }
        i += 1; // ','
        out.push((name, Some(value)));
    }
    out
}

/// Splits an option list into `(name, value)` pairs with qemu's escapes:
/// `,,` is a literal comma; a name without `=` is a flag (`x` is `x=on`,
/// `nox` is `x=off`).
pub fn split_option_list(list: &str) -> Vec<(String, String)> {
    elements(list)
        .into_iter()
        .map(|(name, value)| match value {
            Some(v) => (name.to_string(), v),
            None => match name.strip_prefix("no") {
                Some(rest) => (rest.to_string(), "off".to_string()),
                None => (name.to_string(), "on".to_string()),
            },
        })
        .collect()
}

/// One element of an option list as qemu's `get_opt_name_value` reads it
/// for a list with an implied first name (`--image-opts`, `--object`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptElement {
    /// The option's name (without a `no` prefix of a flag).
    pub name: String,
    /// Its value (`on` or `off` for a flag).
    pub value: String,
    /// For a flag (a name without `=`), how it was written: `x` or `nox`,
    /// which qemu warns about from 6.0.
    pub flag: Option<String>,
}

/// Splits an option list as qemu's `opts_do_parse` does when its first
/// element may omit its name: a first element without `=` (before any
/// `,`) is the value of `implied`, read with `,,` escapes; any later
/// element without `=` is a flag (`x` is `x=on`, `nox` is `x=off`).
pub fn split_with_implied(list: &str, implied: Option<&str>) -> Vec<OptElement> {
    let mut out = Vec::new();
    let mut rest = list;
    let mut first = implied;
    while !rest.is_empty() {
        let name_end = rest.find(['=', ',']).unwrap_or(rest.len());
        let has_value = rest[name_end..].starts_with('=');
        if !has_value {
            if let Some(name) = first.take() {
                let (value, after) = read_value(rest);
                out.push(OptElement { name: name.to_string(), value, flag: None });
                rest = after;
                continue;
            }
            let typed = &rest[..name_end];
            let (name, value) = match typed.strip_prefix("no") {
                Some(n) => (n, "off"),
                None => (typed, "on"),
            };
            out.push(OptElement {
                name: name.to_string(),
                value: value.to_string(),
                flag: Some(typed.to_string()),
            });
            rest = rest[name_end..].strip_prefix(',').unwrap_or(&rest[name_end..]);
            continue;
        }
        first = None;
        let name = rest[..name_end].to_string();
        let (value, after) = read_value(&rest[name_end + 1..]);
        out.push(OptElement { name, value, flag: None });
        rest = after;
    }
    out
}

/// A value up to the first `,` that is not doubled (`,,` is a comma), and
/// what follows that `,`.
fn read_value(text: &str) -> (String, &str) {
    let mut value = String::new();
    let mut rest = text;
    loop {
        match rest.find(',') {
            None => {
                value.push_str(rest);
                return (value, "");
            }
            Some(i) if rest[i + 1..].starts_with(',') => {
                value.push_str(&rest[..=i]);
                rest = &rest[i + 2..];
            }
            Some(i) => {
                value.push_str(&rest[..i]);
                return (value, &rest[i + 1..]);
            }
        }
    }
}

/// Whether an option list asks for help, as qemu-img of `dialect` reads
/// it: from 6.0 an element that is exactly `help` or `?`; before, any
/// element named so, with a value or as `no...` (`help=on`, `nohelp`)
/// ([`HELP_OPTION_WITHOUT_VALUE`]).
pub fn has_help_option(list: &str, dialect: QemuDialect) -> bool {
    let any_value = !dialect.since(HELP_OPTION_WITHOUT_VALUE);
    elements(list).into_iter().any(|(typed, value)| {
        let has_value = value.is_some();
        let name =
            if has_value || !any_value { typed } else { typed.strip_prefix("no").unwrap_or(typed) };
        (name == "help" || name == "?") && (any_value || !has_value)
    })
}

impl Options {
    /// An empty set over `descs`, which are appended in order; a later
    /// list's description of a name already present is dropped, as qemu's
    /// `qemu_opts_append` drops it.
    pub fn new(lists: &[&[OptDesc]]) -> Self {
        Options::in_dialect(lists, QemuDialect::DEFAULT)
    }

    /// An empty set over the options of `lists` that qemu-img of `dialect`
    /// has ([`OptDesc::since`]).
    pub fn in_dialect(lists: &[&[OptDesc]], dialect: QemuDialect) -> Self {
        let mut descs: Vec<OptDesc> = Vec::new();
        for list in lists {
            for d in list.iter().filter(|d| d.in_dialect(dialect)) {
                if !descs.iter().any(|e| e.name == d.name) {
                    descs.push(*d);
                }
            }
        }
        Options { descs, set: Vec::new(), dialect, warnings: Vec::new() }
    }

    /// What qemu-img warned while values were read (size values that
    /// 6.0 to 7.2 warn about): the option and the warning, without the
    /// program name, in order.
    pub fn warnings(&self) -> &[(String, String)] {
        &self.warnings
    }

    /// Whose rules the values are read by.
    pub fn dialect(&self) -> QemuDialect {
        self.dialect
    }

    /// The descriptions, in declared order.
    pub fn descs(&self) -> &[OptDesc] {
        &self.descs
    }

    /// Sets one option from its text, checking it against its type with
    /// qemu's messages.
    pub fn set(&mut self, name: &str, text: &str) -> Result<(), crate::Error> {
        let desc = self
            .descs
            .iter()
            .find(|d| d.name == name)
            .ok_or_else(|| crate::Error::invalid(format!("Invalid parameter '{name}'")))?;
        let value = match desc.ty {
            OptType::Str => Value::Str,
            OptType::Bool => Value::Bool(parse_bool(text).ok_or_else(|| {
                crate::Error::invalid(format!("Parameter '{name}' expects 'on' or 'off'"))
            })?),
            OptType::Number => match parse_number(text) {
                Ok(n) => Value::Num(n),
                Err(SizeError::Invalid) => {
                    return Err(crate::Error::invalid(format!(
                        "Parameter '{name}' expects a number"
                    )))
                }
                Err(SizeError::OutOfRange) => {
                    return Err(crate::Error::invalid(format!(
                        "Value '{text}' is too large for parameter '{name}'"
                    )))
                }
            },
            OptType::Size => match self.read_size(name, text) {
                Ok(n) => Value::Num(n),
                Err(SizeError::Invalid) => {
                    return Err(crate::Error::invalid(format!(
                        "Parameter '{name}' expects a non-negative number below 2^64\n\
                         Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-\n\
                         and exabytes, respectively."
                    )))
                }
                Err(SizeError::OutOfRange) => {
                    return Err(crate::Error::invalid(format!(
                        "Value '{text}' is out of range for parameter '{name}'"
                    )))
                }
            },
        };
        self.set.push(SetOpt { name: name.to_string(), text: text.to_string(), value });
        Ok(())
    }

    /// A size value as this version reads it; a warning it prints is
    /// kept ([`Options::warnings`]).
    fn read_size(&mut self, name: &str, text: &str) -> Result<u64, SizeError> {
        let read = read_size(text, self.dialect);
        if read.warned {
            self.warnings.push((name.to_string(), hex_suffix_warning(text)));
        }
        read.value
    }

    /// Sets a number (or size) option from a value, as qemu's
    /// `qemu_opt_set_number` does.
    pub fn set_number(&mut self, name: &str, n: u64) {
        self.set.push(SetOpt { name: name.to_string(), text: n.to_string(), value: Value::Num(n) });
    }

    /// Parses a whole option list (qemu's `qemu_opts_do_parse`), stopping at
    /// the first bad element.
    pub fn parse(&mut self, list: &str) -> Result<(), crate::Error> {
        for (name, value) in split_option_list(list) {
            self.set(&name, &value)?;
        }
        Ok(())
    }

    fn last(&self, name: &str) -> Option<&SetOpt> {
        self.set.iter().rev().find(|o| o.name == name)
    }

    /// Whether the option was set (a default does not count).
    pub fn is_set(&self, name: &str) -> bool {
        self.last(name).is_some()
    }

    /// The text of the option as given, if set.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.last(name).map(|o| o.text.as_str())
    }

    /// A boolean option, if set.
    pub fn get_bool(&self, name: &str) -> Option<bool> {
        match self.last(name)?.value {
            Value::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// A number or size option, if set.
    pub fn get_number(&self, name: &str) -> Option<u64> {
        match self.last(name)?.value {
            Value::Num(n) => Some(n),
            _ => None,
        }
    }

    /// Removes every value of `name`, as qemu's `qemu_opt_unset` (used when
    /// a value has been consumed).
    pub fn unset(&mut self, name: &str) {
        self.set.retain(|o| o.name != name);
    }

    /// The options as qemu's `qemu_opts_print(opts, " ")` prints them: each
    /// description in order, with the value set or its default; numbers
    /// that were set print as their parsed value in C's `%" PRId64 "`, so
    /// values from 2^63 on print negative (`size=8E` prints
    /// `size=-9223372036854775808`, `refcount_bits=-1` prints `-1`);
    /// strings print with commas doubled.
    pub fn print(&self) -> String {
        let mut parts = Vec::new();
        for d in &self.descs {
            let set = self.last(d.name);
            let Some(text) = set.map(|o| o.text.as_str()).or(d.default) else {
                continue;
            };
            let shown = match (d.ty, set.map(|o| o.value)) {
                (OptType::Str, _) => text.replace(',', ",,"),
                // qemu prints the unsigned value as a signed one on purpose
                // of its own (`PRId64`): the cast keeps that reading.
                #[allow(clippy::cast_possible_wrap, reason = "qemu prints a uint64_t with PRId64")]
                (OptType::Number | OptType::Size, Some(Value::Num(n))) => (n as i64).to_string(),
                _ => text.to_string(),
            };
            parts.push(format!("{}={}", d.name, shown));
        }
        parts.join(" ")
    }
}

/// The `-o help` listing of `descs` (qemu's `qemu_opts_print_help`): sorted
/// by name, `  name=<type>` padded to 24 columns, then ` - help`. `caption`
/// is the first line.
pub fn print_help(caption: &str, descs: &[OptDesc]) -> String {
    let mut sorted: Vec<&OptDesc> = descs.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(b.name));
    let mut out = format!("{caption}\n");
    for d in sorted {
        let head = format!("  {}=<{}>", d.name, d.ty.help_name());
        if d.help.is_empty() {
            out.push_str(&head);
        } else {
            out.push_str(&format!("{head:<24} - {}", d.help));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DESCS: &[OptDesc] = &[
        OptDesc::with_default("cluster_size", OptType::Size, "qcow2 cluster size", "65536"),
        OptDesc::new("size", OptType::Size, "Virtual disk size"),
        OptDesc::new("backing_file", OptType::Str, "File name of a base image"),
        OptDesc::with_default("lazy_refcounts", OptType::Bool, "Postpone", "off"),
        OptDesc::with_default("refcount_bits", OptType::Number, "Width", "16"),
    ];

    #[test]
    fn later_values_win_and_print_in_declared_order() {
        let mut o = Options::new(&[DESCS]);
        o.parse("cluster_size=512,lazy_refcounts=yes").unwrap();
        o.parse("cluster_size=1k,backing_file=a,,b").unwrap();
        o.set_number("size", 1 << 20);
        assert_eq!(
            o.print(),
            "cluster_size=1024 size=1048576 backing_file=a,,b lazy_refcounts=yes refcount_bits=16"
        );
        assert_eq!(o.get_str("backing_file"), Some("a,b"));
        assert_eq!(o.get_bool("lazy_refcounts"), Some(true));
    }

    #[test]
    fn type_errors_carry_qemu_messages() {
        let mut o = Options::new(&[DESCS]);
        let msg = |o: &mut Options, l: &str| o.parse(l).unwrap_err().to_string();
        assert_eq!(msg(&mut o, "foo=bar"), "Invalid parameter 'foo'");
        assert_eq!(msg(&mut o, "refcount_bits=x"), "Parameter 'refcount_bits' expects a number");
        assert_eq!(
            msg(&mut o, "refcount_bits=99999999999999999999"),
            "Value '99999999999999999999' is too large for parameter 'refcount_bits'"
        );
        assert_eq!(
            msg(&mut o, "lazy_refcounts=maybe"),
            "Parameter 'lazy_refcounts' expects 'on' or 'off'"
        );
        assert!(msg(&mut o, "cluster_size=64k,,x").starts_with("Parameter 'cluster_size' expects"));
        assert_eq!(msg(&mut o, "size=16E"), "Value '16E' is out of range for parameter 'size'");
        assert_eq!(
            msg(&mut o, "refcount_bits=-99999999999999999999"),
            "Value '-99999999999999999999' is too large for parameter 'refcount_bits'"
        );
    }

    #[test]
    fn numbers_wrap_like_strtoull_and_print_signed() {
        // Measured on qemu-img 10.0.2: `-o refcount_bits=-1` prints
        // `refcount_bits=-1`, `-o size=8E` prints `size=-9223372036854775808`.
        let mut o = Options::new(&[DESCS]);
        o.parse("refcount_bits=-1,size=8E,cluster_size=9E").unwrap();
        assert_eq!(o.get_number("refcount_bits"), Some(u64::MAX));
        assert_eq!(
            o.print(),
            "cluster_size=-8070450532247928832 size=-9223372036854775808 lazy_refcounts=off \
             refcount_bits=-1"
        );
        o.parse("refcount_bits=-0").unwrap();
        assert_eq!(o.get_number("refcount_bits"), Some(0));
    }

    #[test]
    fn flags_and_list_validity() {
        assert_eq!(
            split_option_list("lazy_refcounts,nofoo"),
            vec![
                ("lazy_refcounts".to_string(), "on".to_string()),
                ("foo".to_string(), "off".to_string())
            ]
        );
        let new = QemuDialect::DEFAULT;
        let old = QemuDialect::new(crate::QemuVersion::new(5, 2, 0));
        for (list, now, before) in [
            ("size=1M,help", true, true),
            ("?", true, true),
            ("help,,x", true, true),
            ("help=on", false, true),
            ("help=off", false, true),
            ("nohelp", false, true),
            ("?=1", false, true),
            ("a=help", false, false),
            ("a=b,,help", false, false),
            ("a=b,help", true, true),
            ("xhelp", false, false),
        ] {
            assert_eq!(has_help_option(list, new), now, "{list}");
            assert_eq!(has_help_option(list, old), before, "{list} (5.2)");
        }
        assert!(!is_valid_option_list(",a=b"));
        assert!(!is_valid_option_list("a=b,"));
        assert!(is_valid_option_list("a=b,,"));
        assert!(!is_valid_option_list(""));
    }

    #[test]
    fn help_is_sorted_and_padded() {
        let h = print_help("Supported x options:", DESCS);
        assert!(h.starts_with("Supported x options:\n  backing_file=<str>     - File name"));
        assert!(h.contains("  lazy_refcounts=<bool (on/off)> - Postpone\n"));
    }

    #[test]
    fn implied_names_and_flags_split_like_qemu() {
        let e = split_with_implied("a.img,,x,driver=q,,c,ro,nofs,k=", Some("file"));
        let got: Vec<(&str, &str, Option<&str>)> =
            e.iter().map(|e| (e.name.as_str(), e.value.as_str(), e.flag.as_deref())).collect();
        assert_eq!(
            got,
            vec![
                ("file", "a.img,x", None),
                ("driver", "q,c", None),
                ("ro", "on", Some("ro")),
                ("fs", "off", Some("nofs")),
                ("k", "", None),
            ]
        );
        assert_eq!(split_with_implied(",driver=q", Some("file"))[0].value, "");
        assert!(split_with_implied("", Some("file")).is_empty());
        assert_eq!(split_with_implied("x", None)[0].flag.as_deref(), Some("x"));
    }
}
