//! `--object`: the QOM objects qemu-img creates from its command line,
//! as far as instar makes them. instar makes `secret` objects (their
//! data given inline, in a file, raw or base64), checked as qemu checks
//! them, in qemu's order; it refuses other object types by name. qemu-img
//! 6.0 and later make each object as the option is met
//! ([`OBJECTS_AT_ONCE`]); before, the option list is read then (its `id`
//! checked) and the objects are made after the file name was checked.

use crate::dialect::{QemuDialect, Release, OBJECTS_AT_ONCE, QAPI_ENUM_NAMES_PARAMETER};

/// The release whose schema no longer has a secret's `loaded` (deprecated
/// in 6.0; `Parameter 'loaded' is unexpected`); 10.0 is the first
/// measured without it, 7.2 the last with it (`Property 'secret.loaded'
/// is not writable`).
const SECRET_LOADED_REMOVED: Release = Release::new(10, 0);
use crate::json::{qdict_entries, Json};
use crate::opts::split_with_implied;
use crate::Error;

/// The name the first element of `--object` stands for without `=`.
const TYPE_KEY: &str = "qom-type";

/// The object types qemu-img can make, per release: what `--object help`
/// lists. 5.2's list.
const CREATABLE_5_2: &[&str] = &[
    "authz-list",
    "authz-list-file",
    "authz-simple",
    "pr-manager-helper",
    "secret",
    "secret_keyring",
    "throttle-group",
    "tls-cipher-suites",
    "tls-creds-anon",
    "tls-creds-psk",
    "tls-creds-x509",
];

/// 7.2's list: `main-loop` and `thread-context` added.
const CREATABLE_7_2: &[&str] = &[
    "authz-list",
    "authz-list-file",
    "authz-simple",
    "main-loop",
    "pr-manager-helper",
    "secret",
    "secret_keyring",
    "thread-context",
    "throttle-group",
    "tls-cipher-suites",
    "tls-creds-anon",
    "tls-creds-psk",
    "tls-creds-x509",
];

/// 10.0's list: `tls-cipher-suites` gone.
const CREATABLE_10_0: &[&str] = &[
    "authz-list",
    "authz-list-file",
    "authz-simple",
    "main-loop",
    "pr-manager-helper",
    "secret",
    "secret_keyring",
    "thread-context",
    "throttle-group",
    "tls-creds-anon",
    "tls-creds-psk",
    "tls-creds-x509",
];

/// Object types qemu's schema (`ObjectType`) knows that qemu-img cannot
/// make (`invalid object type: <t>`): the system emulator's.
const EMULATOR_TYPES: &[&str] = &[
    "acpi-generic-initiator",
    "acpi-generic-port",
    "authz-listfile",
    "authz-pam",
    "can-bus",
    "can-host-socketcan",
    "colo-compare",
    "cryptodev-backend",
    "cryptodev-backend-builtin",
    "cryptodev-backend-lkcf",
    "cryptodev-vhost-user",
    "dbus-vmstate",
    "filter-buffer",
    "filter-dump",
    "filter-mirror",
    "filter-redirector",
    "filter-replay",
    "filter-rewriter",
    "input-barrier",
    "input-linux",
    "iommufd",
    "iothread",
    "memory-backend-epc",
    "memory-backend-file",
    "memory-backend-memfd",
    "memory-backend-ram",
    "memory-backend-shm",
    "pef-guest",
    "rng-builtin",
    "rng-egd",
    "rng-random",
    "sev-guest",
    "sev-snp-guest",
    "s390-pv-guest",
    "x-remote-object",
    "x-vfio-user-server",
];

/// The options of a `secret` in 5.2 (`loaded` went in 6.0).
const SECRET_PROPS_5_2: &[&str] = &["data", "file", "format", "iv", "keyid", "loaded"];

/// The options of a `secret` from 6.0.
const SECRET_PROPS: &[&str] = &["data", "file", "format", "iv", "keyid"];

/// The length of the AES-256 key a secret's `keyid` names.
const KEY_LENGTH: usize = 32;

/// The types `--object help` lists in `dialect`.
fn creatable(dialect: QemuDialect) -> &'static [&'static str] {
    if dialect.since(crate::dialect::Release::new(10, 0)) {
        CREATABLE_10_0
    } else if dialect.since(OBJECTS_AT_ONCE) {
        CREATABLE_7_2
    } else {
        CREATABLE_5_2
    }
}

/// What adding an object asks the command to do.
#[derive(Debug, PartialEq, Eq)]
pub enum Added {
    /// The object was made; carry on.
    Made,
    /// `help` was asked for: print this on stdout and exit 0.
    Help(String),
}

/// The objects a command line made.
#[derive(Debug, Default)]
pub struct Objects {
    /// The ids taken, in order (5.2 takes them as the options are read).
    ids: Vec<String>,
    /// The secrets made: id and value.
    secrets: Vec<(String, Vec<u8>)>,
    /// 5.2: the option lists read, to make after the file name.
    pending: Vec<String>,
}

/// qemu's `id_wellformed`.
fn is_identifier(id: &str) -> bool {
    let mut chars = id.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
}

fn bad_identifier() -> Error {
    Error::invalid(
        "Parameter 'id' expects an identifier\nIdentifiers consist of letters, digits, '-', \
         '.', '_', starting with a letter.",
    )
}

/// An object's option list: its elements in order, the last value of a
/// repeated name winning.
fn elements(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for e in split_with_implied(text, Some(TYPE_KEY)) {
        match out.iter_mut().find(|(k, _)| *k == e.name) {
            Some(entry) => entry.1 = e.value,
            None => out.push((e.name, e.value)),
        }
    }
    out
}

impl crate::measure::Secrets for Objects {
    fn has_secret(&self, id: &str) -> bool {
        self.secrets.iter().any(|(k, _)| k == id)
    }
}

impl Objects {
    /// `--object text` as the option is met. From 6.0 the object is made
    /// now; before, the list is read (its `id` checked and taken) and the
    /// object made by [`Objects::make_pending`].
    pub fn option(&mut self, text: &str, dialect: QemuDialect) -> Result<Added, Error> {
        if dialect.since(OBJECTS_AT_ONCE) {
            return self.make(text, dialect);
        }
        let opts = elements(text);
        if let Some((_, id)) = opts.iter().find(|(k, _)| k == "id") {
            if !is_identifier(id) {
                return Err(bad_identifier());
            }
            if self.ids.contains(id) {
                return Err(Error::invalid(format!("Duplicate ID '{id}' for object")));
            }
            self.ids.push(id.clone());
        }
        self.pending.push(text.to_string());
        Ok(Added::Made)
    }

    /// Before 6.0: makes the objects read so far, in order, after the
    /// file name was checked.
    pub fn make_pending(&mut self, dialect: QemuDialect) -> Result<Added, Error> {
        for text in std::mem::take(&mut self.pending) {
            if let Added::Help(h) = self.make(&text, dialect)? {
                return Ok(Added::Help(h));
            }
        }
        Ok(Added::Made)
    }

    /// Makes the object `text` describes, with qemu's checks in its
    /// order for `dialect`.
    fn make(&mut self, text: &str, dialect: QemuDialect) -> Result<Added, Error> {
        let at_once = dialect.since(OBJECTS_AT_ONCE);
        let opts = elements(text);
        let get = |k: &str| opts.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let qom_type = get(TYPE_KEY);
        if qom_type == Some("help") {
            let mut list = String::from("List of user creatable objects:\n");
            for t in creatable(dialect) {
                list.push_str(&format!("  {t}\n"));
            }
            return Ok(Added::Help(list));
        }
        let asks_help = opts.iter().any(|(k, _)| k == "help" || k == "?");
        let Some(qom_type) = qom_type else {
            return Err(Error::invalid("Parameter 'qom-type' is missing"));
        };
        let known = creatable(dialect).contains(&qom_type) || EMULATOR_TYPES.contains(&qom_type);
        if asks_help && qom_type == "secret" {
            let props = if at_once { SECRET_PROPS } else { SECRET_PROPS_5_2 };
            let mut text = String::from("secret options:\n");
            for p in props {
                let ty = match *p {
                    "format" => "QCryptoSecretFormat",
                    "loaded" => "bool",
                    _ => "string",
                };
                text.push_str(&format!("  {p}=<{ty}>\n"));
            }
            return Ok(Added::Help(text));
        }
        if at_once && !known {
            return Err(Error::invalid(format!(
                "Parameter 'qom-type' does not accept value '{qom_type}'"
            )));
        }
        let Some(id) = get("id") else {
            return Err(Error::invalid("Parameter 'id' is missing"));
        };
        if at_once && !is_identifier(id) {
            return Err(bad_identifier());
        }
        if !creatable(dialect).contains(&qom_type) {
            return Err(Error::invalid(format!("invalid object type: {qom_type}")));
        }
        if qom_type != "secret" || asks_help {
            return Err(Error::not_supported(format!(
                "Object type '{qom_type}' is not supported by instar (it makes secret objects)"
            )));
        }
        let secret = self.secret(&opts, dialect)?;
        if at_once {
            if self.ids.iter().any(|i| i == id) {
                return Err(Error::invalid(format!(
                    "attempt to add duplicate property '{id}' to object (type 'container')"
                )));
            }
            self.ids.push(id.to_string());
        }
        let value = self.load(secret)?;
        self.secrets.push((id.to_string(), value));
        Ok(Added::Made)
    }

    /// A secret's options, checked as qemu sets them: the format's value,
    /// then the options a secret does not have (from 6.0 the schema's
    /// words, before them qemu's property setters', in `QDict` order).
    fn secret<'a>(
        &self,
        opts: &'a [(String, String)],
        dialect: QemuDialect,
    ) -> Result<Secret<'a>, Error> {
        let at_once = dialect.since(OBJECTS_AT_ONCE);
        // 6.0 to 9.2 take `loaded` in the schema and then refuse to set
        // it; 10.0 no longer knows it.
        let loaded_in_schema = at_once && !dialect.since(SECRET_LOADED_REMOVED);
        let props = if !at_once || loaded_in_schema { SECRET_PROPS_5_2 } else { SECRET_PROPS };
        let rest: Vec<(String, Json)> = opts
            .iter()
            .filter(|(k, _)| k != TYPE_KEY && k != "id")
            .map(|(k, v)| (k.clone(), Json::Str(v.clone())))
            .collect();
        let ordered = Json::Object(rest);
        let entries = qdict_entries(&ordered);
        let bad_format = |v: &str| {
            if dialect.since(QAPI_ENUM_NAMES_PARAMETER) || at_once {
                Error::invalid(format!("Parameter 'format' does not accept value '{v}'"))
            } else {
                Error::invalid(format!("Invalid parameter '{v}'"))
            }
        };
        let mut secret = Secret::default();
        if at_once {
            if let Some((_, v)) = opts.iter().find(|(k, _)| k == "format") {
                if v != "raw" && v != "base64" {
                    return Err(bad_format(v));
                }
            }
            if let Some((k, _)) = entries.iter().find(|(k, _)| !props.contains(k)) {
                return Err(Error::invalid(format!("Parameter '{k}' is unexpected")));
            }
            if entries.iter().any(|(k, _)| *k == "loaded") {
                return Err(Error::invalid("Property 'secret.loaded' is not writable"));
            }
        } else {
            let mut so_far = Secret::default();
            for (k, v) in &entries {
                let v = match v {
                    Json::Str(s) => s.as_str(),
                    _ => "",
                };
                if !props.contains(k) {
                    return Err(Error::invalid(format!("Property 'secret.{k}' not found")));
                }
                if *k == "format" && v != "raw" && v != "base64" {
                    return Err(bad_format(v));
                }
                // 5.2 sets the options in QDict order, and `loaded=on`
                // loads the secret from those set before it.
                match *k {
                    "data" => so_far.data = Some(v),
                    "file" => so_far.file = Some(v),
                    "format" => so_far.base64 = v == "base64",
                    "keyid" => so_far.keyid = Some(v),
                    "loaded" if crate::opts::parse_bool(v) == Some(true) => {
                        self.load(so_far)?;
                    }
                    _ => {}
                }
            }
        }
        for (k, v) in opts {
            match k.as_str() {
                "data" => secret.data = Some(v),
                "file" => secret.file = Some(v),
                "format" => secret.base64 = v == "base64",
                "keyid" => secret.keyid = Some(v),
                _ => {}
            }
        }
        Ok(secret)
    }

    /// A secret's value, loaded as qemu's `secret` completes: one source,
    /// read, decoded.
    fn load(&self, secret: Secret<'_>) -> Result<Vec<u8>, Error> {
        let raw = match (secret.data, secret.file) {
            (Some(_), Some(_)) => {
                return Err(Error::invalid("'file' and 'data' are mutually exclusive"))
            }
            (Some(d), None) => crate::rawtext::to_bytes(d).into_owned(),
            (None, Some(f)) => std::fs::read(&*crate::rawtext::to_os(f)).map_err(|e| {
                let how =
                    if e.raw_os_error() == Some(21) { "Error reading" } else { "Failed to open" };
                Error::invalid(format!(
                    "Unable to read {f}: {how} file \u{201c}{f}\u{201d}: {}",
                    crate::error::strerror(&e)
                ))
            })?,
            (None, None) => return Err(Error::invalid("Either 'file' or 'data' must be provided")),
        };
        let value = if secret.base64 { decode_base64(&raw)? } else { raw };
        if let Some(keyid) = secret.keyid {
            let Some((_, key)) = self.secrets.iter().find(|(id, _)| id == keyid) else {
                return Err(Error::invalid(format!("No secret with id '{keyid}'")));
            };
            if key.len() != KEY_LENGTH {
                return Err(Error::invalid("Key should be 32 bytes in length"));
            }
            return Err(Error::not_supported(
                "Secrets encrypted with 'keyid' are not supported by instar",
            ));
        }
        Ok(value)
    }
}

/// A secret's options.
#[derive(Debug, Default, Clone, Copy)]
struct Secret<'a> {
    data: Option<&'a str>,
    file: Option<&'a str>,
    base64: bool,
    keyid: Option<&'a str>,
}

/// Base64 as qemu's `qbase64_decode` takes it: only the alphabet, `=`
/// and nothing else.
fn decode_base64(text: &[u8]) -> Result<Vec<u8>, Error> {
    let invalid = || Error::invalid("Base64 data contains invalid characters");
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let mut out = Vec::with_capacity(text.len() / 4 * 3 + 3);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &c in text {
        if c == b'=' {
            continue;
        }
        let v = value(c).ok_or_else(invalid)?;
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::QemuVersion;

    fn v(major: u32, minor: u32) -> QemuDialect {
        QemuDialect::new(QemuVersion::new(major, minor, 0))
    }

    fn add(texts: &[&str], d: QemuDialect) -> String {
        let mut o = Objects::default();
        for t in texts {
            let r = o.option(t, d).and_then(|a| match a {
                Added::Made if !d.since(OBJECTS_AT_ONCE) => o.make_pending(d),
                a => Ok(a),
            });
            match r {
                Ok(Added::Made) => {}
                Ok(Added::Help(h)) => return h,
                Err(e) => return e.to_string(),
            }
        }
        "ok".into()
    }

    #[test]
    fn secrets_are_checked_in_qemus_order() {
        let new = v(10, 0);
        assert_eq!(add(&["secret,id=s,data=x"], new), "ok");
        assert_eq!(add(&["secret,id=s,data=eA==,format=base64"], new), "ok");
        assert_eq!(
            add(&["secret,id=s,data=!!,format=base64"], new),
            "Base64 data contains invalid characters"
        );
        assert_eq!(add(&["foo,id=x"], new), "Parameter 'qom-type' does not accept value 'foo'");
        assert_eq!(add(&["foo,id=x"], v(5, 2)), "invalid object type: foo");
        assert_eq!(add(&["iothread,id=t"], new), "invalid object type: iothread");
        assert_eq!(add(&["secret,data=x"], new), "Parameter 'id' is missing");
        assert_eq!(add(&["secret,id=s,foo=1"], new), "Parameter 'foo' is unexpected");
        assert_eq!(add(&["secret,id=s,foo=1"], v(5, 2)), "Property 'secret.foo' not found");
        assert_eq!(add(&["secret,id=s"], new), "Either 'file' or 'data' must be provided");
        assert_eq!(add(&["id=x"], new), "Parameter 'qom-type' is missing");
        assert_eq!(add(&["secret,id=s,data=x,format=hex"], v(5, 2)), "Invalid parameter 'hex'");
        assert_eq!(
            add(&["secret,id=s,data=x", "secret,id=s,data=y"], new),
            "attempt to add duplicate property 's' to object (type 'container')"
        );
        assert_eq!(
            add(&["secret,id=s,data=x", "secret,id=s,data=y"], v(5, 2)),
            "Duplicate ID 's' for object"
        );
        assert_eq!(add(&["secret,id=s,data=x,keyid=k"], new), "No secret with id 'k'");
        assert!(add(&["help"], new).starts_with("List of user creatable objects:\n  authz-list\n"));
        assert!(add(&["secret,help"], v(5, 2)).ends_with("  loaded=<bool>\n"));
        assert!(add(&["throttle-group,id=t"], new).contains("not supported by instar"));
    }

    #[test]
    fn base64_decodes() {
        assert_eq!(decode_base64(b"aGVsbG8=").unwrap(), b"hello");
        assert!(decode_base64(b"a b").is_err());
    }
}
