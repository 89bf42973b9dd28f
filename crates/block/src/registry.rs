//! The formats instar knows, by their command-line names, and the drivers
//! only qemu has ([`crate::unsupported`]), looked up the way each qemu-img
//! command looks a name up.

use crate::unsupported::{self, QemuDriver};
use instar_core::{Error, ErrorKind, Format, ImageFile, QemuDialect};

/// Every format, in the order probing tries them.
pub static FORMATS: &[&dyn Format] = &[
    &instar_raw::Raw,
    &instar_qcow2::Qcow2,
    &instar_vmdk::Vmdk,
    &instar_vpc::Vpc,
    &instar_vhdx::Vhdx,
    &instar_luks::LuksFormat,
];

/// The format called `name` on the command line.
pub fn find_format(name: &str) -> Option<&'static dyn Format> {
    FORMATS.iter().copied().find(|f| f.name() == name)
}

/// A driver qemu-img has, named with `-f` or found by probing.
#[derive(Clone, Copy)]
pub enum Driver {
    /// A format instar implements.
    Instar(&'static dyn Format),
    /// A driver only qemu implements.
    QemuOnly(&'static QemuDriver),
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Driver::Instar(_) => write!(f, "Instar({})", self.name()),
            Driver::QemuOnly(_) => write!(f, "QemuOnly({})", self.name()),
        }
    }
}

impl Driver {
    /// The driver's name.
    pub fn name(&self) -> &'static str {
        match self {
            Driver::Instar(f) => f.name(),
            Driver::QemuOnly(d) => d.name,
        }
    }

    /// The format that opens the image in `file`, or, for a driver only
    /// qemu has, the error qemu's driver reports on this file when instar
    /// can know it from the file's header, else instar's refusal by name.
    pub fn format(self, file: &ImageFile) -> Result<&'static dyn Format, Error> {
        match self {
            Driver::Instar(f) => Ok(f),
            Driver::QemuOnly(d) => Err(unsupported::open_error(d, file)),
        }
    }
}

/// The driver `-f name` names for `info` and `check`, or the error to
/// give: `unknown` when qemu has no such driver, instar's refusal at once
/// for a driver that is not an image format (qemu's protocols and filters
/// do not read a local image file). A driver the build of `dialect` lacks
/// is unknown.
pub fn lookup_driver(
    name: &str,
    dialect: QemuDialect,
    unknown: impl FnOnce() -> Error,
) -> Result<Driver, Error> {
    if let Some(f) = find_format(name) {
        return Ok(Driver::Instar(f));
    }
    match unsupported::driver_in(name, dialect) {
        Some(d) if d.kind == unsupported::Kind::Format => Ok(Driver::QemuOnly(d)),
        Some(_) => Err(Error::invalid(unsupported::not_supported(name))),
        None => Err(unknown()),
    }
}

/// The format called `name`, or the error to give: instar's refusal for a
/// driver only qemu implements, else `unknown` (qemu's wording for a name
/// it does not know, which differs between commands). `open` and `create`
/// use the finer [`lookup_driver`] and [`lookup_create`].
pub fn lookup(name: &str, unknown: impl FnOnce() -> Error) -> Result<&'static dyn Format, Error> {
    if let Some(f) = find_format(name) {
        return Ok(f);
    }
    if unsupported::driver(name).is_some() {
        return Err(Error::invalid(unsupported::not_supported(name)));
    }
    Err(unknown())
}

/// qemu's `block_driver_can_compress`: whether the format's driver takes
/// compressed writes (`bdrv_co_pwritev_compressed`).
pub fn can_compress(name: &str) -> bool {
    matches!(name, "qcow2" | "vmdk" | "qcow")
}

/// The format `create -f name` makes, or qemu-img's error for it.
///
/// A driver qemu has but cannot create gets qemu's `Format driver '<name>'
/// does not support image creation`; one qemu creates and instar does not
/// gets instar's refusal by name; an unknown name, qemu's `Unknown file
/// format`. `protocol_of` is the image file name when the caller is
/// `create` itself: qemu's `bdrv_img_create` looks up the file name's
/// protocol between finding the driver and asking it to create, so an
/// unknown protocol is reported first. `-o help` (qemu-img's
/// `print_block_option_help`) asks the driver first and passes `None`. A
/// driver the build of `dialect` lacks is an unknown format.
pub fn lookup_create(
    name: &str,
    protocol_of: Option<&str>,
    dialect: QemuDialect,
) -> Result<&'static dyn Format, Error> {
    if let Some(f) = find_format(name).filter(|f| f.creates()) {
        return Ok(f);
    }
    let Some(d) = unsupported::driver_in(name, dialect) else {
        return Err(Error::invalid(format!("Unknown file format '{name}'")));
    };
    if d.creates {
        return Err(Error::invalid(unsupported::not_supported(name)));
    }
    if let Some(filename) = protocol_of {
        match crate::protocol::local_path(filename) {
            // A protocol qemu knows and instar does not serve is found by
            // qemu all the same; only an unknown one fails first.
            Err(e) if e.kind() != ErrorKind::NotSupported => return Err(e),
            _ => {}
        }
    }
    Err(Error::invalid(unsupported::cannot_create(name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create_error(name: &str, file: Option<&str>) -> String {
        lookup_create(name, file, QemuDialect::DEFAULT)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn create_lookups_word_errors_like_qemu() {
        assert_eq!(
            create_error("bochs", Some("x")),
            "Format driver 'bochs' does not support image creation"
        );
        assert_eq!(
            create_error("bochs", Some("nbd:foo")),
            "Format driver 'bochs' does not support image creation"
        );
        assert_eq!(create_error("bochs", Some("a:b")), "Unknown protocol 'a'");
        assert_eq!(
            create_error("bochs", None),
            "Format driver 'bochs' does not support image creation"
        );
        assert!(create_error("vdi", Some("x")).contains("not supported by instar"));
        assert_eq!(create_error("foo", Some("x")), "Unknown file format 'foo'");
        assert!(lookup_create("qcow2", Some("x"), QemuDialect::DEFAULT).is_ok());
    }

    #[test]
    fn open_lookups_defer_formats_and_refuse_the_rest() {
        let unknown = || Error::invalid("unknown");
        assert!(matches!(
            lookup_driver("raw", QemuDialect::DEFAULT, unknown),
            Ok(Driver::Instar(_))
        ));
        assert!(matches!(
            lookup_driver("bochs", QemuDialect::DEFAULT, unknown),
            Ok(Driver::QemuOnly(_))
        ));
        assert!(lookup_driver("nbd", QemuDialect::DEFAULT, unknown)
            .unwrap_err()
            .message()
            .contains("instar"));
        assert_eq!(
            lookup_driver("foo", QemuDialect::DEFAULT, unknown).unwrap_err().message(),
            "unknown"
        );
    }

    #[test]
    fn drivers_an_old_build_lacks_are_unknown_there() {
        use instar_core::QemuVersion;
        let v5_2 = QemuDialect::new(QemuVersion::new(5, 2, 0));
        let v7_2 = QemuDialect::new(QemuVersion::new(7, 2, 0));
        let unknown = || Error::invalid("unknown");
        for name in ["parallels", "preallocate", "copy-before-write", "snapshot-access"] {
            assert_eq!(lookup_driver(name, v5_2, unknown).unwrap_err().message(), "unknown");
            assert_eq!(
                lookup_create(name, Some("x"), v5_2)
                    .err()
                    .map(|e| e.message().to_string())
                    .unwrap_or_default(),
                format!("Unknown file format '{name}'")
            );
            assert_ne!(
                lookup_driver(name, v7_2, unknown).err().map(|e| e.message().to_string()),
                Some("unknown".into())
            );
        }
        assert!(matches!(lookup_driver("parallels", v7_2, unknown), Ok(Driver::QemuOnly(_))));
    }
}
