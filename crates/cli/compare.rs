//! `compare`'s command line: qemu-img's option tables per era, its usage
//! errors and the checks it makes before opening the images, in its order
//! (getopt, `Expecting two image file names`, objects before 6.0, the
//! cache mode), then the block layer's compare ([`instar_block::compare`]).

use super::{
    by_era, chosen_dialect, make_pending, o, object_option, specs_of, Failure, Opt, Table, Usage,
    CACHE_MODES, PROG, QEMU_VERSION,
};
use crate::getopt::{Getopt, Order};
use instar_block::compare::{CompareArgs, EXIT_OPEN};
use instar_block::Target;
use instar_core::diag::render_all;
use instar_core::dialect::COMPARE_OBJECT_EXITS_ONE;
use instar_core::object::Objects;
use instar_core::QemuDialect;

/// `compare`'s options before the rework: `--help`, `--object`,
/// `--image-opts` and `--force-share` its only long options.
const COMPARE_OLD: Table = &[
    o(Some('h'), Some("help"), false, Opt::Help),
    o(None, Some("object"), true, Opt::Object),
    o(None, Some("image-opts"), false, Opt::ImageOpts),
    o(Some('U'), Some("force-share"), false, Opt::ForceShare),
    o(Some('f'), None, true, Opt::Format),
    o(Some('F'), None, true, Opt::SecondFormat),
    o(Some('T'), None, true, Opt::Cache),
    o(Some('p'), None, false, Opt::Progress),
    o(Some('q'), None, false, Opt::Quiet),
    o(Some('s'), None, false, Opt::Strict),
    QEMU_VERSION,
];

/// `compare`'s options in Debian's rework (measured: the order glibc lists
/// them in for an ambiguous `--`), with `--left-format` and
/// `--right-format` as second names of `-f` and `-F`.
const COMPARE_DEBIAN: Table = &[
    o(Some('h'), Some("help"), false, Opt::Help),
    o(Some('q'), Some("quiet"), false, Opt::Quiet),
    o(None, Some("object"), true, Opt::Object),
    o(Some('T'), Some("cache"), true, Opt::Cache),
    o(None, Some("image-opts"), false, Opt::ImageOpts),
    o(Some('f'), Some("a-format"), true, Opt::Format),
    o(Some('f'), Some("left-format"), true, Opt::Format),
    o(Some('F'), Some("b-format"), true, Opt::SecondFormat),
    o(Some('F'), Some("right-format"), true, Opt::SecondFormat),
    o(Some('U'), Some("force-share"), false, Opt::ForceShare),
    o(Some('s'), Some("strict"), false, Opt::Strict),
    o(Some('p'), Some("progress"), false, Opt::Progress),
    QEMU_VERSION,
];

/// `compare`'s options in upstream's rework: no `--left-format` or
/// `--right-format`, another order.
const COMPARE_UPSTREAM: Table = &[
    o(Some('h'), Some("help"), false, Opt::Help),
    o(Some('f'), Some("a-format"), true, Opt::Format),
    o(Some('F'), Some("b-format"), true, Opt::SecondFormat),
    o(None, Some("image-opts"), false, Opt::ImageOpts),
    o(Some('s'), Some("strict"), false, Opt::Strict),
    o(Some('T'), Some("cache"), true, Opt::Cache),
    o(Some('U'), Some("force-share"), false, Opt::ForceShare),
    o(Some('p'), Some("progress"), false, Opt::Progress),
    o(Some('q'), Some("quiet"), false, Opt::Quiet),
    o(None, Some("object"), true, Opt::Object),
    QEMU_VERSION,
];

fn compare_table(dialect: QemuDialect) -> Table {
    by_era(dialect, COMPARE_OLD, COMPARE_DEBIAN, COMPARE_UPSTREAM)
}

/// A parsed `compare`: what to open and how to compare.
#[derive(Debug)]
pub struct Compare {
    /// `FILENAME1`.
    first: String,
    /// `FILENAME2`.
    second: String,
    /// `-f`.
    fmt1: Option<String>,
    /// `-F`.
    fmt2: Option<String>,
    /// `-T`, checked only once the progress has started.
    cache: Option<String>,
    /// `--image-opts`.
    image_opts: bool,
    /// `-U`.
    force_share: bool,
    /// `-s`.
    strict: bool,
    /// `-q`.
    quiet: bool,
    /// `-p`.
    progress: bool,
    /// Whose messages and open rules.
    dialect: QemuDialect,
}

/// The exit code of an `--object` refused as getopt returns it (from 6.0
/// when it cannot be made, before 6.0 when it cannot be read, e.g. a
/// duplicate id). Before 6.0 an object read is made after the file names,
/// and a failure then exits 1.
fn object_exit(dialect: QemuDialect) -> u8 {
    if dialect.since(COMPARE_OBJECT_EXITS_ONE) {
        1
    } else {
        2
    }
}

/// Reads `compare`'s arguments (after the command name) as qemu-img of
/// the chosen version does.
pub(crate) fn parse(
    argv0: &str,
    args: &[String],
    env: Option<&str>,
) -> Result<super::Command, Failure> {
    let dialect = chosen_dialect("compare", compare_table, args, env)?;
    let usage = Usage { argv0, cmd: "compare", dialect };
    let table = compare_table(dialect);
    let specs = specs_of(table);
    let mut c = Compare {
        first: String::new(),
        second: String::new(),
        fmt1: None,
        fmt2: None,
        cache: None,
        image_opts: false,
        force_share: false,
        strict: false,
        quiet: false,
        progress: false,
        dialect,
    };
    let mut objects = Objects::default();
    let mut getopt = Getopt::new("compare", args, &specs, Order::Permute);
    for found in getopt.by_ref() {
        let (idx, value) = found.map_err(|e| usage.getopt(&e))?;
        let value = value.unwrap_or_default();
        match table[idx].1 {
            Opt::Help => {
                return Ok(super::Command::Print(include_str!("help/compare.txt").to_string()))
            }
            Opt::Format => c.fmt1 = Some(value),
            Opt::SecondFormat => c.fmt2 = Some(value),
            Opt::Cache => c.cache = Some(value),
            Opt::Progress => c.progress = true,
            Opt::Quiet => c.quiet = true,
            Opt::Strict => c.strict = true,
            Opt::ForceShare => c.force_share = true,
            Opt::ImageOpts => c.image_opts = true,
            Opt::Object => match object_option(&mut objects, &value, dialect) {
                Ok(Some(help)) => return Ok(super::Command::Print(help)),
                Ok(None) => {}
                Err(mut failure) => {
                    failure.code = object_exit(dialect);
                    return Err(failure);
                }
            },
            _ => {}
        }
    }
    let [first, second] = getopt.operands() else {
        return Err(usage.error("Expecting two image file names"));
    };
    c.first = first.clone();
    c.second = second.clone();
    // Before 6.0 the objects are made now, after the file names.
    if let Some(help) = make_pending(&mut objects, dialect)? {
        return Ok(super::Command::Print(help));
    }
    Ok(super::Command::Compare(c))
}

impl Compare {
    /// Runs the compare: prints what qemu-img prints and returns its exit
    /// code.
    pub fn run(&self) -> u8 {
        // qemu-img starts its progress (whose end prints a newline) before
        // it checks the cache mode.
        if let Some(mode) = self.cache.as_deref().filter(|m| !CACHE_MODES.contains(m)) {
            if self.progress && !self.quiet {
                super::out("\n");
            }
            super::err(&format!("{PROG}: Invalid source cache option: {mode}\n"));
            return EXIT_OPEN;
        }
        let target = |name, fmt| Target {
            name,
            fmt,
            image_opts: self.image_opts,
            force_share: self.force_share,
        };
        let args = CompareArgs {
            first: target(&self.first, self.fmt1.as_deref()),
            second: target(&self.second, self.fmt2.as_deref()),
            strict: self.strict,
            quiet: self.quiet,
            progress: self.progress,
            dialect: self.dialect,
        };
        let result = instar_block::compare(&args);
        super::out(&result.stdout);
        super::err(&render_all(&result.stderr, PROG));
        result.code
    }
}
