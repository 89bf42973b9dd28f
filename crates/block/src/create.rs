//! Creating an image: qemu's `bdrv_img_create`, the part of `qemu-img
//! create` that every format shares. It checks the options, settles the
//! size (given, or taken from the backing file), words the `Formatting`
//! line, and hands the checked options to the format.

use crate::open::size_and_format;
use crate::protocol::local_path;
use crate::registry::lookup_create;
use instar_core::opts::{print_help, FILE_PROTOCOL_OPTS};
use instar_core::path::full_backing_filename;
use instar_core::{CreateRequest, Error, ErrorKind, Format, Options, QemuDialect};

/// What the user asked `create` for, before any checking.
#[derive(Debug, Clone, Default)]
pub struct CreateArgs {
    /// The image file name as given.
    pub filename: String,
    /// The format name (`-f`, default `raw`).
    pub fmt: String,
    /// The backing file (`-b`).
    pub backing_file: Option<String>,
    /// The backing file's format (`-F`).
    pub backing_fmt: Option<String>,
    /// Every `-o` argument joined with commas.
    pub options: Option<String>,
    /// The positional size, already parsed.
    pub size: Option<u64>,
    /// `-u`: do not open the backing file.
    pub no_backing_open: bool,
    /// Which qemu-img's options, checks and image to follow.
    pub dialect: QemuDialect,
}

/// A create that passed every check the block layer makes: the format, the
/// options it will get, and the `Formatting` line to print.
pub struct PreparedCreate {
    format: &'static dyn Format,
    filename: String,
    /// The local file the name stands for (without a `file:` prefix).
    path: String,
    options: Options,
    dialect: QemuDialect,
    /// Warnings qemu-img prints when the format reads its options again
    /// (see [`PreparedCreate::rereading_warnings`]).
    rereading: Vec<String>,
}

/// `-o help` for `fmt`: the format's options, and the file protocol's too
/// when a file name was given (qemu's `print_block_option_help`).
pub fn option_help(
    fmt: &str,
    filename: Option<&str>,
    dialect: QemuDialect,
) -> Result<String, Error> {
    let format = lookup_create(fmt, None, dialect)?;
    if let Some(name) = filename {
        local_path(name)?;
    }
    Ok(match filename {
        Some(_) => {
            let opts = Options::in_dialect(&[format.create_opts(), FILE_PROTOCOL_OPTS], dialect);
            print_help("Supported options:", opts.descs())
        }
        None => {
            let opts = Options::in_dialect(&[format.create_opts()], dialect);
            let mut text = print_help(&format!("Supported {fmt} options:"), opts.descs());
            text.push_str(
                "\nThe protocol level may support further options.\n\
                 Specify the target filename to include those options.\n",
            );
            text
        }
    })
}

/// qemu's "no size given" marker (`-1` as an unsigned size).
const NO_SIZE: u64 = u64::MAX;

impl CreateArgs {
    /// Runs every check qemu's block layer makes before the format is
    /// called, in qemu's order.
    pub fn prepare(&self) -> Result<PreparedCreate, Error> {
        let format = lookup_create(&self.fmt, Some(&self.filename), self.dialect)?;
        let path = local_path(&self.filename)?.to_string();
        let mut options =
            Options::in_dialect(&[format.create_opts(), FILE_PROTOCOL_OPTS], self.dialect);
        if let Some(list) = &self.options {
            options.parse(list).map_err(|e| e.with_notes(warning_texts(&options)))?;
        }
        let img_size = self.size.unwrap_or(NO_SIZE);
        if !options.is_set("size") {
            options.set_number("size", img_size);
        } else if img_size != NO_SIZE {
            return Err(Error::invalid("The image size must be specified only once"));
        }
        let names: Vec<&str> = options.descs().iter().map(|d| d.name).collect();
        let has_opt = |name: &str| names.contains(&name);
        if let Some(b) = &self.backing_file {
            if !has_opt("backing_file") {
                return Err(Error::invalid(format!(
                    "Backing file not supported for file format '{}'",
                    self.fmt
                )));
            }
            options.set("backing_file", b)?;
        }
        if let Some(f) = &self.backing_fmt {
            if !has_opt("backing_fmt") {
                return Err(Error::invalid(format!(
                    "Backing file format not supported for file format '{}'",
                    self.fmt
                )));
            }
            options.set("backing_fmt", f)?;
        }
        let backing_file = options.get_str("backing_file").map(str::to_string);
        if let Some(b) = &backing_file {
            if *b == self.filename {
                return Err(Error::invalid(
                    "Error: Trying to create an image with the same filename as the backing file",
                ));
            }
            if b.is_empty() {
                return Err(Error::invalid("Expected backing file name, got empty string"));
            }
        }
        let backing_fmt = options.get_str("backing_fmt").map(str::to_string);
        let mut size = options.get_number("size").unwrap_or(NO_SIZE);
        match &backing_file {
            Some(b) if !self.no_backing_open => {
                // `b` is not empty (refused above), so it has a full name.
                let full = full_backing_filename(&self.filename, b).unwrap_or_default();
                let (backing_size, detected) =
                    size_and_format(&full, backing_fmt.as_deref(), self.dialect).map_err(|e| {
                        Error::invalid(format!("{e}\nCould not open backing image."))
                    })?;
                if backing_fmt.is_none() {
                    return Err(Error::invalid(format!(
                        "Backing file specified without backing format\nDetected format of {detected}."
                    )));
                }
                if size == NO_SIZE {
                    size = backing_size;
                    options.set_number("size", size);
                }
            }
            Some(_) if backing_fmt.is_none() => {
                return Err(Error::invalid("Backing file specified without backing format"));
            }
            _ => {}
        }
        if size == NO_SIZE {
            return Err(Error::invalid("Image creation needs a size parameter"));
        }
        // qemu-img 6.0 to 7.2 warn about a hexadecimal size with a suffix
        // each time it is read: once above, once more when the format (or
        // the file protocol under it) reads its options again; vmdk reads
        // its size only once (measured on 7.2.22).
        let rereading = options
            .warnings()
            .iter()
            .filter(|(name, _)| !(format.name() == "vmdk" && name == "size"))
            .map(|(_, text)| text.clone())
            .collect();
        Ok(PreparedCreate {
            format,
            filename: self.filename.clone(),
            path,
            options,
            dialect: self.dialect,
            rereading,
        })
    }
}

/// The warnings `options` collected, as texts.
fn warning_texts(options: &Options) -> Vec<String> {
    options.warnings().iter().map(|(_, text)| text.clone()).collect()
}

impl PreparedCreate {
    /// The create `img_convert` runs (`bdrv_create`): `options` already
    /// parsed and completed by convert, no `Formatting` line, the backing
    /// file not opened.
    pub(crate) fn for_convert(
        format: &'static dyn Format,
        filename: &str,
        options: &Options,
        dialect: QemuDialect,
    ) -> Result<PreparedCreate, Error> {
        Ok(PreparedCreate {
            format,
            filename: filename.to_string(),
            path: local_path(filename)?.to_string(),
            options: options.clone(),
            dialect,
            rereading: Vec::new(),
        })
    }

    /// What qemu-img warned while it read the options (without the
    /// program name), printed before the `Formatting` line.
    pub fn warnings(&self) -> Vec<String> {
        warning_texts(&self.options)
    }

    /// What qemu-img warns again when the format reads its options, just
    /// before it creates the image (qemu-img 6.0 to 7.2, a hexadecimal size
    /// with a suffix). Where the format then refuses an option it reads
    /// before such a size, qemu-img stops before the second warning;
    /// instar prints it anyway (docs/compat.md §2.6).
    pub fn rereading_warnings(&self) -> &[String] {
        &self.rereading
    }

    /// The line qemu-img prints before formatting (without newline).
    pub fn formatting_line(&self) -> String {
        format!(
            "Formatting '{}', fmt={} {}",
            self.filename,
            self.format.name(),
            self.options.print()
        )
    }

    /// Lets the format check its options and write the image.
    pub fn run(&self) -> Result<(), Error> {
        let req = CreateRequest {
            filename: &self.path,
            options: &self.options,
            probe: crate::probe::probe_name,
            dialect: self.dialect,
        };
        self.format.create(&req).map_err(|e| {
            if e.kind() == ErrorKind::TooLarge {
                // qemu words EFBIG itself, hinting at the cluster size for
                // formats that have one.
                let hint = if self.options.descs().iter().any(|d| d.name == "cluster_size") {
                    " (try using a larger cluster size)"
                } else {
                    ""
                };
                Error::invalid(format!(
                    "The image size is too large for file format '{}'{hint}",
                    self.format.name()
                ))
            } else {
                e
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(fmt: &str, opts: Option<&str>, size: Option<u64>) -> CreateArgs {
        CreateArgs {
            filename: "t.img".into(),
            fmt: fmt.into(),
            options: opts.map(Into::into),
            size,
            ..CreateArgs::default()
        }
    }

    fn err(a: CreateArgs) -> String {
        a.prepare().err().map(|e| e.to_string()).unwrap_or_default()
    }

    #[test]
    fn raw_line_matches_qemu() {
        let p = args("raw", Some("preallocation=full"), Some(1 << 20)).prepare().unwrap();
        assert_eq!(
            p.formatting_line(),
            "Formatting 't.img', fmt=raw size=1048576 preallocation=full"
        );
    }

    #[test]
    fn size_rules_match_qemu() {
        assert_eq!(err(args("raw", None, None)), "Image creation needs a size parameter");
        assert_eq!(
            err(args("raw", Some("size=1M"), Some(1))),
            "The image size must be specified only once"
        );
        assert_eq!(err(args("foo", None, Some(1))), "Unknown file format 'foo'");
        let mut a = args("raw", None, Some(1));
        a.backing_file = Some("x".into());
        assert_eq!(err(a), "Backing file not supported for file format 'raw'");
    }
}
