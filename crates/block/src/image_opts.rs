//! Images named by options instead of a file name (`--image-opts`): the
//! option string read as qemu-img's `source` option list reads it (the
//! first element may omit `file=`), turned into the options dictionary
//! qemu's `bdrv_open` receives, and checked in qemu's order: a driver or a
//! file, the driver, the `file` child, the protocol's unknown options,
//! the format's open, then the format's unknown options.
//!
//! instar serves the options that name the image: `driver`, `file.driver`
//! (`file`), `file.filename`, and `force-share`. An option qemu knows and
//! instar does not apply (a cache mode, a qcow2 cache size, a node name)
//! is refused by name; an option qemu does not know gets qemu's message.

use instar_core::dialect::{NODE_REFERENCE_QUOTED, SHORT_FORM_BOOLEAN_WARNING};
use instar_core::json::qdict_entries;
use instar_core::opts::{parse_bool, split_with_implied, OptElement};
use instar_core::{Diagnostic, Error, Json, QemuDialect};

/// The name the first element of an option string stands for when it
/// has no `=` (qemu-img's `source` list's `implied_opt_name`).
const IMPLIED_NAME: &str = "file";

/// The child that holds the protocol's options.
const FILE_CHILD: &str = "file";

/// The protocol instar serves.
const FILE_PROTOCOL: &str = "file";

/// The option of qemu's block layer that `-U` sets.
pub const FORCE_SHARE: &str = "force-share";

/// Options every node takes (qemu's `bdrv_runtime_opts`, and the child
/// references a format may have), besides those instar applies.
const COMMON_OPTIONS: &[&str] = &[
    "node-name",
    "cache.direct",
    "cache.no-flush",
    "active",
    "read-only",
    "auto-read-only",
    "detect-zeroes",
    "discard",
];

/// The file protocol's own options (qemu's `file-posix` runtime options).
const FILE_OPTIONS: &[&str] =
    &["aio", "aio-max-batch", "locking", "pr-manager", "drop-cache", "x-check-cache-dropped"];

/// Each format's own runtime options: qemu knows them, instar does not
/// apply them. A name ending in `.` stands for every option under it.
fn format_options(format: &str) -> &'static [&'static str] {
    match format {
        "qcow2" => &[
            "backing",
            "backing.",
            "data-file",
            "data-file.",
            "encrypt.",
            "lazy-refcounts",
            "pass-discard-request",
            "pass-discard-snapshot",
            "pass-discard-other",
            "discard-no-unref",
            "overlap-check",
            "overlap-check.",
            "cache-size",
            "l2-cache-size",
            "l2-cache-entry-size",
            "refcount-cache-size",
            "cache-clean-interval",
        ],
        "raw" => &["offset", "size"],
        "luks" => &["key-secret", "header"],
        "vpc" => &["force_size_calc"],
        "vmdk" => &["backing", "backing.", "extents."],
        _ => &[],
    }
}

/// Whether `name` is in `known` (a name ending in `.` matching every
/// option under it).
fn listed(known: &[&str], name: &str) -> bool {
    known.iter().any(|k| if k.ends_with('.') { name.starts_with(k) } else { name == *k })
}

/// The options dictionary of an option string: names in the order qemu
/// inserts them, a repeated name keeping its first place and its last
/// value.
#[derive(Debug, Default, Clone)]
pub struct OptionDict {
    entries: Vec<(String, String)>,
    /// The names whose value was not a string (from JSON): qemu's block
    /// layer reads `driver` and `filename` only as strings.
    typed: Vec<String>,
}

impl OptionDict {
    fn put(&mut self, name: &str, value: &str) {
        match self.entries.iter_mut().find(|(k, _)| k == name) {
            Some(entry) => entry.1 = value.to_string(),
            None => self.entries.push((name.to_string(), value.to_string())),
        }
    }

    /// The value of `name` when it is a string.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        if self.typed.iter().any(|t| t == name) {
            return None;
        }
        self.get(name)
    }

    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.entries.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The options under `child.`, without that prefix, in order.
    fn child(&self, child: &str) -> Vec<(&str, &str)> {
        let prefix = format!("{child}.");
        self.entries
            .iter()
            .filter_map(|(k, v)| k.strip_prefix(&prefix).map(|rest| (rest, v.as_str())))
            .collect()
    }
}

/// `optstr` read as qemu-img reads `--image-opts`, with what reading it
/// warned (qemu warns about flags from 6.0). `-U` (`force_share`) adds
/// `force-share=on`, and conflicts with a `force-share` that is not `on`.
pub fn parse(
    optstr: &str,
    force_share: bool,
    dialect: QemuDialect,
) -> Result<(OptionDict, Vec<Diagnostic>), Error> {
    let elements = split_with_implied(optstr, Some(IMPLIED_NAME));
    // qemu takes the first `id` as the list's identifier (checked before
    // anything else) and puts it first in the dictionary; later `id`s are
    // dropped.
    let mut dict = OptionDict::default();
    if let Some(id) = id_of(optstr) {
        if !is_identifier(&id) {
            return Err(Error::invalid(
                "Parameter 'id' expects an identifier\nIdentifiers consist of letters, digits, \
                 '-', '.', '_', starting with a letter.",
            ));
        }
        dict.put("id", &id);
    }
    let mut warnings = Vec::new();
    for OptElement { name, value, flag } in &elements {
        if let Some(typed) = flag {
            if dialect.since(SHORT_FORM_BOOLEAN_WARNING) && name != "help" && name != "?" {
                warnings.push(Diagnostic::Reported(format!(
                    "warning: short-form boolean option '{typed}' deprecated"
                )));
                warnings.push(Diagnostic::Plain(format!("Please use {name}={value} instead\n")));
            }
        }
        if name != "id" {
            dict.put(name, value);
        }
    }
    if force_share {
        if dict.get(FORCE_SHARE).is_some_and(|v| v != "on") {
            return Err(
                Error::invalid("--force-share/-U conflicts with image options").after(warnings)
            );
        }
        dict.put(FORCE_SHARE, "on");
    }
    Ok((dict, warnings))
}

/// The prefix of a file name that is a JSON object of options.
pub const JSON_PREFIX: &str = "json:";

/// The options dictionary of a `json:{...}` file name (without its
/// prefix), flattened as qemu flattens it: a nested object's members
/// under `name.`, an array's items under `name.0`, ...; booleans as `on`
/// and `off`, numbers as their text (a `driver` or `filename` that is
/// not a string is then no name: [`OptionDict::get_str`]).
pub fn from_json(text: &str) -> Result<OptionDict, Error> {
    let value = instar_core::json_read::parse(text).map_err(|_| {
        Error::invalid(
            "Could not parse the JSON options: instar reads only well-formed JSON (its words for \
             what is not differ from qemu's)",
        )
    })?;
    if !matches!(value, Json::Object(_)) {
        return Err(Error::invalid("Invalid JSON object given"));
    }
    let mut dict = OptionDict::default();
    flatten(&mut dict, "", &value);
    Ok(dict)
}

fn flatten(dict: &mut OptionDict, prefix: &str, value: &Json) {
    let leaf = |dict: &mut OptionDict, text: String| dict.put(prefix, &text);
    match value {
        Json::Object(fields) => {
            for (k, v) in fields {
                flatten(dict, &join(prefix, k), v);
            }
        }
        Json::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                flatten(dict, &join(prefix, &i.to_string()), v);
            }
        }
        Json::Str(s) => leaf(dict, s.clone()),
        other => {
            dict.typed.push(prefix.to_string());
            match other {
                Json::Bool(b) => leaf(dict, if *b { "on" } else { "off" }.to_string()),
                Json::Int(n) => leaf(dict, n.to_string()),
                Json::UInt(n) => leaf(dict, n.to_string()),
                _ => leaf(dict, String::new()),
            }
        }
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

impl OptionDict {
    /// Sets `driver` (`-f` given with a `json:` name wins over the name's
    /// own).
    pub fn set_driver(&mut self, driver: &str) {
        self.typed.retain(|t| t != "driver");
        self.put("driver", driver);
    }
}

/// The first `id` of an option string, found as qemu's `opts_parse_id`
/// finds it (every element read as `name=value` or a flag).
fn id_of(optstr: &str) -> Option<String> {
    split_with_implied(optstr, None).into_iter().find(|e| e.name == "id").map(|e| e.value)
}

/// qemu's `id_wellformed`: a letter, then letters, digits, `-`, `.`, `_`.
fn is_identifier(id: &str) -> bool {
    let mut chars = id.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
}

/// What the options ask the block layer to open, once checked up to the
/// file: the format named (if any) and the host file's path.
#[derive(Debug)]
pub struct OptionsOpen<'a> {
    /// `driver`, when given.
    pub driver: Option<&'a str>,
    /// `file.filename`.
    pub path: &'a str,
}

/// How a node reference that names nothing is refused.
fn no_such_node(name: &str, dialect: QemuDialect) -> Error {
    if dialect.since(NODE_REFERENCE_QUOTED) {
        Error::invalid(format!("Cannot find device='{name}' nor node-name='{name}'"))
    } else {
        Error::invalid(format!("Cannot find device={name} nor node_name={name}"))
    }
}

/// The checks qemu's `bdrv_open` makes of the options before it opens the
/// host file, in its order. `lookup` finds a driver by name: `Ok(true)`
/// for a format instar reads, `Ok(false)` for a format only qemu reads,
/// or the error for any other name.
pub fn before_file<'a>(
    dict: &'a OptionDict,
    dialect: QemuDialect,
    lookup: impl Fn(&str) -> Result<bool, Error>,
) -> Result<OptionsOpen<'a>, Error> {
    let driver = dict.get_str("driver");
    let file_ref = dict.get_str(FILE_CHILD);
    let file_opts = dict.child(FILE_CHILD);
    if driver.is_none() && file_ref.is_none() && file_opts.is_empty() {
        return Err(Error::invalid("Must specify either driver or file"));
    }
    if let Some(name) = driver {
        lookup(name)?;
    }
    if let Some(name) = file_ref {
        if !file_opts.is_empty() {
            return Err(Error::invalid(
                "Cannot reference an existing block device with additional options or a new \
                 filename",
            ));
        }
        return Err(no_such_node(name, dialect));
    }
    let must_have_file = || Error::invalid("A block device must be specified for \"file\"");
    if file_opts.is_empty() {
        return Err(must_have_file());
    }
    // The child's own `bdrv_fill_options`: a driver named, or the file
    // protocol for a file name.
    let protocol = match (dict.get_str("file.driver"), dict.get_str("file.filename")) {
        (Some(p), _) => p,
        (None, Some(_)) => FILE_PROTOCOL,
        (None, None) => return Err(Error::invalid("Must specify either driver or file")),
    };
    if protocol != FILE_PROTOCOL {
        // A format as the child would need a file of its own.
        lookup(protocol)?;
        return Err(must_have_file());
    }
    let Some(path) = dict.get_str("file.filename") else {
        return Err(Error::invalid("The 'file' block driver requires a file name"));
    };
    Ok(OptionsOpen { driver, path })
}

/// The first option qemu's node would not take, in the order its
/// `QDict` is walked.
fn first_unknown<'a>(
    names: impl Iterator<Item = &'a str>,
    known: impl Fn(&str) -> bool,
) -> Option<String> {
    let unknown: Vec<(String, Json)> =
        names.filter(|n| !known(n)).map(|n| (n.to_string(), Json::Null)).collect();
    let object = Json::Object(unknown);
    qdict_entries(&object).first().map(|(k, _)| k.to_string())
}

/// After the host file opened: the protocol's options qemu does not know
/// are refused (`Block protocol 'file' doesn't support the option`), then
/// the checks of the value instar applies, then the options qemu knows
/// and instar does not apply.
pub fn check_file_options(dict: &OptionDict) -> Result<(), Error> {
    let opts = dict.child(FILE_CHILD);
    let applied = |n: &str| n == "driver" || n == "filename" || n == FORCE_SHARE;
    let known = |n: &str| applied(n) || listed(COMMON_OPTIONS, n) || listed(FILE_OPTIONS, n);
    if let Some(name) = first_unknown(opts.iter().map(|(k, _)| *k), known) {
        return Err(Error::invalid(format!(
            "Block protocol '{FILE_PROTOCOL}' doesn't support the option '{name}'"
        )));
    }
    check_values(&opts)?;
    refuse_unapplied(opts.iter().map(|(k, _)| *k), applied, "file.")
}

/// After the format's open: the format's options qemu does not know are
/// refused (`Block format '<f>' does not support the option`), then the
/// values and the options instar does not apply.
pub fn check_format_options(dict: &OptionDict, format: &str) -> Result<(), Error> {
    let top: Vec<(&str, &str)> = dict
        .entries
        .iter()
        .filter(|(k, _)| k != FILE_CHILD && !k.starts_with("file."))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let applied = |n: &str| n == "driver" || n == FORCE_SHARE;
    let own = format_options(format);
    let known = |n: &str| applied(n) || listed(COMMON_OPTIONS, n) || listed(own, n);
    if let Some(name) = first_unknown(top.iter().map(|(k, _)| *k), known) {
        return Err(Error::invalid(format!(
            "Block format '{format}' does not support the option '{name}'"
        )));
    }
    check_values(&top)?;
    refuse_unapplied(top.iter().map(|(k, _)| *k), applied, "")
}

/// The options that hand an encrypted image its key (`key-secret` of a
/// LUKS volume, `encrypt.key-secret` of a qcow2).
const KEY_OPTIONS: &[&str] = &["key-secret", "encrypt.key-secret"];

/// Before the format's open with I/O: instar reads no encrypted guest
/// data, so a key given for it is refused by name here rather than met by
/// the open's `Parameter 'key-secret' is required` as if none was given.
pub fn refuse_key(dict: &OptionDict) -> Result<(), Error> {
    match dict.entries.iter().find(|(k, _)| KEY_OPTIONS.contains(&k.as_str())) {
        Some((name, _)) => Err(Error::invalid(format!(
            "The image option '{name}' is not supported by instar (it does not decrypt guest \
             data)"
        ))),
        None => Ok(()),
    }
}

/// qemu's check of `force-share`'s value (a boolean option).
fn check_values(opts: &[(&str, &str)]) -> Result<(), Error> {
    for (name, value) in opts {
        if *name == FORCE_SHARE && parse_bool(value).is_none() {
            return Err(Error::invalid(format!("Parameter '{name}' expects 'on' or 'off'")));
        }
    }
    Ok(())
}

/// instar's refusal of an option qemu would apply and instar does not.
fn refuse_unapplied<'a>(
    mut names: impl Iterator<Item = &'a str>,
    applied: impl Fn(&str) -> bool,
    prefix: &str,
) -> Result<(), Error> {
    match names.find(|n| !applied(n)) {
        Some(name) => Err(Error::invalid(format!(
            "The image option '{prefix}{name}' is not supported by instar (it applies driver, \
             file.driver, file.filename and force-share)"
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use instar_core::QemuVersion;

    fn dict(s: &str) -> OptionDict {
        parse(s, false, QemuDialect::DEFAULT).unwrap().0
    }

    fn lookup(name: &str) -> Result<bool, Error> {
        match name {
            "qcow2" | "raw" => Ok(true),
            _ => Err(Error::invalid(format!("Unknown driver '{name}'"))),
        }
    }

    fn before(s: &str) -> String {
        let d = dict(s);
        match before_file(&d, QemuDialect::DEFAULT, lookup) {
            Ok(o) => format!("{:?} {}", o.driver, o.path),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_key_is_refused_by_name() {
        let refused = |s: &str| refuse_key(&dict(s)).err().map(|e| e.to_string());
        assert_eq!(
            refused("driver=luks,key-secret=s0,file.filename=v.luks").as_deref(),
            Some("The image option 'key-secret' is not supported by instar (it does not decrypt guest data)")
        );
        assert!(refused("driver=qcow2,encrypt.key-secret=s0,file.filename=e").is_some());
        assert_eq!(refused("driver=qcow2,file.filename=e"), None);
    }

    #[test]
    fn the_options_name_the_image_as_qemu_reads_them() {
        assert_eq!(before("driver=qcow2,file.filename=a"), "Some(\"qcow2\") a");
        assert_eq!(before("file.filename=a,,b"), "None a,b");
        assert_eq!(before("foo=bar"), "Must specify either driver or file");
        assert_eq!(before(""), "Must specify either driver or file");
        assert_eq!(before("a.img"), "Cannot find device='a.img' nor node-name='a.img'");
        assert_eq!(before("driver=nope,file=x"), "Unknown driver 'nope'");
        assert_eq!(before("driver=qcow2"), "A block device must be specified for \"file\"");
        assert_eq!(
            before("driver=qcow2,file.driver=file"),
            "The 'file' block driver requires a file name"
        );
        assert_eq!(
            before("driver=qcow2,file.driver=qcow2,file.filename=a"),
            "A block device must be specified for \"file\""
        );
        let old = QemuDialect::new(QemuVersion::new(5, 2, 0));
        let d = dict(",driver=qcow2");
        let e = before_file(&d, old, lookup).unwrap_err();
        assert_eq!(e.to_string(), "Cannot find device= nor node_name=");
    }

    #[test]
    fn unknown_options_are_named_in_qdict_order() {
        let d = dict("driver=qcow2,file.filename=a,foo=bar,zzz=1,abc=2");
        assert_eq!(
            check_format_options(&d, "qcow2").unwrap_err().to_string(),
            "Block format 'qcow2' does not support the option 'zzz'"
        );
        let d = dict("driver=qcow2,file.filename=a,file.foo=1");
        assert_eq!(
            check_file_options(&d).unwrap_err().to_string(),
            "Block protocol 'file' doesn't support the option 'foo'"
        );
        let d = dict("driver=qcow2,file.filename=a,l2-cache-size=1M");
        assert!(check_format_options(&d, "qcow2").unwrap_err().to_string().contains("instar"));
        let d = dict("driver=qcow2,file.filename=a,force-share=maybe");
        assert_eq!(
            check_format_options(&d, "qcow2").unwrap_err().to_string(),
            "Parameter 'force-share' expects 'on' or 'off'"
        );
    }

    #[test]
    fn ids_and_force_share_are_checked_first() {
        let e = parse("file.filename=a,id=9x", false, QemuDialect::DEFAULT).unwrap_err();
        assert!(e.to_string().starts_with("Parameter 'id' expects an identifier"));
        let e = parse("file.filename=a,force-share=off", true, QemuDialect::DEFAULT).unwrap_err();
        assert_eq!(e.to_string(), "--force-share/-U conflicts with image options");
        let (_, warned) =
            parse("file.filename=a,force-share", false, QemuDialect::DEFAULT).unwrap();
        assert_eq!(warned.len(), 2);
        let old = QemuDialect::new(QemuVersion::new(5, 2, 0));
        assert!(parse("file.filename=a,force-share", false, old).unwrap().1.is_empty());
    }
}
