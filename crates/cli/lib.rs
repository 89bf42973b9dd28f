//! The command line of `instar`, a drop-in replacement for `qemu-img
//! create`, `info` and `check`, in two steps: [`parse`] reads the
//! arguments (with qemu-img's option tables and messages) into a
//! [`Command`] without touching an image (an `--object secret` reads its
//! `file=` as qemu-img does), and [`execute`] runs it: calls
//! the block layer, prints, and picks the exit code. The binary
//! (`main.rs`) only hands its arguments to [`run`]; the fuzz target of the
//! command line calls [`parse`] alone. Every message qemu-img prefixes
//! with `qemu-img` is prefixed with `instar`.

mod compare;
mod convert;
pub mod getopt;
mod map;
mod measure;

use getopt::{own, spec, Getopt, GetoptError, Order, Spec};
use instar_block::{option_help, CreateArgs};
use instar_core::diag::render_all;
use instar_core::dialect::{OPTIONS_REWORK_DEBIAN, OPTIONS_REWORK_UPSTREAM};
use instar_core::object::{Added, Objects};
use instar_core::rawtext;
use instar_core::size::{hex_suffix_warning, read_size, SizeError};
use instar_core::{Lines, QemuDialect, QemuVersion};
use std::io::Write;

/// The program name in messages.
pub const PROG: &str = "instar";

/// The environment variable that picks the qemu-img version to speak like
/// when `--qemu-version` is not given, for scripts that call instar as
/// qemu-img and cannot add an option.
pub const QEMU_VERSION_VAR: &str = "INSTAR_QEMU_VERSION";

/// The largest image size qemu-img accepts on its command line.
pub const MAX_IMAGE_SIZE: u64 = i64::MAX as u64;

/// qemu-img's exit code when a format has no check.
const EXIT_CHECK_NOT_SUPPORTED: u8 = 63;

/// Prints `text` on stdout as the bytes it carries ([`rawtext`]): names
/// that are not UTF-8 come out as they came in, as qemu-img prints them.
pub fn out(text: &str) {
    // Output may go to a closed pipe; there is nothing better to do then.
    let _ = rawtext::write(&mut std::io::stdout().lock(), text);
}

/// Prints `text` on stderr as the bytes it carries.
pub fn err(text: &str) {
    let _ = rawtext::write(&mut std::io::stderr().lock(), text);
}

/// A command's failure: the text for stderr (without trailing newline) and
/// the exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// What goes to stderr, without the final newline.
    pub message: String,
    /// The exit code.
    pub code: u8,
}

impl Failure {
    fn new(message: impl Into<String>) -> Self {
        Failure { message: message.into(), code: 1 }
    }
}

/// How a command's usage errors read in a qemu-img version: the message,
/// then a hint to read the help. Before the option rework
/// ([`OPTIONS_REWORK_DEBIAN`]) the hint names the program literally
/// (`Try 'qemu-img --help' for more information`) and getopt is silent:
/// qemu-img itself names the argument getopt stopped at. From it, the
/// hint names the program as invoked and the command (`Try '<argv0>
/// create --help' for more info`, `for more information` from
/// [`OPTIONS_REWORK_UPSTREAM`]), and getopt prints its own message.
#[derive(Debug, Clone, Copy)]
struct Usage<'a> {
    /// The program as invoked.
    argv0: &'a str,
    /// The command (`create`), or empty for qemu-img's own options.
    cmd: &'a str,
    dialect: QemuDialect,
}

impl Usage<'_> {
    /// Whether this version has the option rework.
    fn reworked(self) -> bool {
        self.dialect.since(OPTIONS_REWORK_DEBIAN)
    }

    /// `qemu-img` or `qemu-img create` as getopt names it.
    fn program(self) -> String {
        if self.cmd.is_empty() {
            self.argv0.to_string()
        } else {
            format!("{} {}", self.argv0, self.cmd)
        }
    }

    fn hint(self) -> String {
        if !self.reworked() {
            return format!("Try '{PROG} --help' for more information");
        }
        let more = if self.dialect.since(OPTIONS_REWORK_UPSTREAM) { "information" } else { "info" };
        format!("Try '{} --help' for more {more}", self.program())
    }

    /// A usage error (qemu-img's `error_exit`): `message` after the
    /// program name, then the hint.
    fn error(self, message: impl std::fmt::Display) -> Failure {
        Failure::new(format!("{PROG}: {message}\n{}", self.hint()))
    }

    /// What getopt's error `e` makes qemu-img print.
    fn getopt(self, e: &GetoptError) -> Failure {
        if self.reworked() {
            return Failure::new(format!("{}: {}\n{}", self.program(), e.report, self.hint()));
        }
        let what = if e.is_missing_value() {
            "missing argument for option"
        } else {
            "unrecognized option"
        };
        self.error(format_args!("{what} '{}'", e.element))
    }

    /// `, not` from [`OPTIONS_REWORK_UPSTREAM`], ` not` before.
    fn not(self) -> &'static str {
        if self.dialect.since(OPTIONS_REWORK_UPSTREAM) {
            ", not"
        } else {
            " not"
        }
    }
}

/// `--output` of info and check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Text for people (the default).
    Human,
    /// qemu's JSON.
    Json,
}

/// What `snapshot` does once the image is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotAction {
    /// `-l` (and no action since the rework): print the table.
    List,
    /// No action before the rework: qemu-img opens the image and prints
    /// nothing.
    Nothing,
    /// `-a`, `-c` or `-d` (the option named): refused, as they write.
    Refused(&'static str),
}

/// How the image is named: `--image-opts` (the operand is an option
/// string) and `-U`/`--force-share`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImageOpts {
    /// `--image-opts`.
    pub image_opts: bool,
    /// `-U`/`--force-share`.
    pub force_share: bool,
}

impl ImageOpts {
    /// The block layer's name for the image `name` (`fmt`: `-f`).
    fn target<'a>(self, name: &'a str, fmt: Option<&'a str>) -> instar_block::Target<'a> {
        instar_block::Target {
            name,
            fmt,
            image_opts: self.image_opts,
            force_share: self.force_share,
        }
    }
}

/// What the arguments ask for, parsed and checked; nothing has been read
/// or written yet.
#[derive(Debug)]
pub enum Command {
    /// Print this text on stdout and exit 0 (`--help`, `--version`).
    Print(String),
    /// `create -o help`: the options of `fmt` (with the file protocol's
    /// when a file name was given).
    OptionHelp {
        /// The format named by `-f`.
        fmt: String,
        /// The first operand, if any.
        filename: Option<String>,
        /// Whose options to list.
        dialect: QemuDialect,
    },
    /// `create`, its positional size already parsed.
    Create {
        /// What the block layer is asked to create.
        args: CreateArgs,
        /// `-q`: no `Formatting` line.
        quiet: bool,
        /// What reading the positional size warned (without the program
        /// name), printed first.
        warnings: Vec<String>,
    },
    /// `info`.
    Info {
        /// The image file name as given.
        filename: String,
        /// `-f`.
        fmt: Option<String>,
        /// `--output`.
        output: Output,
        /// `--backing-chain`: every image of the chain, not just the top.
        chain: bool,
        /// `--image-opts` and `-U`.
        opts: ImageOpts,
        /// `--qemu-version`: whose output to reproduce.
        dialect: QemuDialect,
    },
    /// `snapshot`: the image is opened, then the action runs.
    Snapshot {
        /// The image file name as given.
        filename: String,
        /// `-f`.
        fmt: Option<String>,
        /// What to do once the image is open.
        action: SnapshotAction,
        /// `--image-opts` and `-U`.
        opts: ImageOpts,
        /// `--qemu-version`: whose table to print.
        dialect: QemuDialect,
    },
    /// `check`.
    Check {
        /// The image file name as given.
        filename: String,
        /// `-f`.
        fmt: Option<String>,
        /// `--output`.
        output: Output,
        /// `-q`: no summary on stdout.
        quiet: bool,
        /// `--deep`: instar's own structural check where a format has one.
        deep: bool,
        /// `--image-opts` and `-U`.
        opts: ImageOpts,
        /// `--qemu-version`: whose probe and output to follow.
        dialect: QemuDialect,
    },
    /// `map`.
    Map(map::MapCommand),
    /// `compare`.
    Compare(compare::Compare),
    /// `measure`.
    Measure(Box<measure::MeasureCommand>),
    /// `convert`.
    Convert(Box<convert::ConvertCommand>),
    /// Print `stderr` on stderr and `stdout` on stdout, and exit 0 (a
    /// usage error qemu-img answers with its help).
    Diagnosed {
        /// What goes to stderr.
        stderr: String,
        /// What goes to stdout.
        stdout: String,
    },
}

/// Parses and runs the arguments after the program name; `argv0` is the
/// program as invoked, which usage errors name. The qemu-img version to
/// speak like, when no `--qemu-version` is given, comes from
/// [`QEMU_VERSION_VAR`]. Returns the exit code, or the failure for the
/// caller to print.
pub fn run(argv0: &str, args: &[String]) -> Result<u8, Failure> {
    let version = std::env::var_os(QEMU_VERSION_VAR).map(|v| rawtext::from_os(&v));
    execute(parse_in(argv0, args, version.as_deref())?)
}

/// What an option means to instar, whatever its letter or name in a
/// version's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opt {
    Help,
    Version,
    Trace,
    Quiet,
    Object,
    Format,
    Backing,
    BackingFormat,
    BackingUnsafe,
    Options,
    Output,
    BackingChain,
    ImageOpts,
    ForceShare,
    Cache,
    Repair,
    Limits,
    Deep,
    Strict,
    Progress,
    SecondFormat,
    QemuVersion,
    List,
    Apply,
    CreateSnapshot,
    Delete,
    StartOffset,
    MaxLength,
    Size,
    TargetFormat,
    Snapshot,
    TargetImageOpts,
    Salvage,
    TargetIsZero,
    Bitmaps,
    SkipBrokenBitmaps,
    CopyRange,
    Compress,
    Sparse,
    TargetCache,
    NoCreate,
    Parallel,
    OutOfOrder,
    RateLimit,
}

/// A table of options: getopt's [`Spec`] and what each means, in the
/// order of qemu-img's table (glibc lists ambiguous abbreviations in that
/// order).
type Table = &'static [(Spec, Opt)];

const fn o(short: Option<char>, long: Option<&'static str>, value: bool, opt: Opt) -> (Spec, Opt) {
    (spec(short, long, value), opt)
}

const QEMU_VERSION: (Spec, Opt) = (own("qemu-version", true), Opt::QemuVersion);

fn specs_of(table: Table) -> Vec<Spec> {
    table.iter().map(|t| t.0).collect()
}

/// A command's dialect: its last `--qemu-version` if given, else `env`
/// (the value of [`QEMU_VERSION_VAR`]), else [`QemuDialect::DEFAULT`].
/// Any well-formed version is accepted: it speaks as the range of qemu
/// releases it falls in, and a version newer than every known change
/// speaks as the newest (docs/compat.md §5.6). What is not a version is
/// refused with the place it came from. The option is looked for with
/// the table of the version the environment (or the default) names,
/// past getopt's errors (an error before `--qemu-version` is worded as
/// the version it names).
fn chosen_dialect(
    cmd: &str,
    tables: fn(QemuDialect) -> Table,
    args: &[String],
    env: Option<&str>,
) -> Result<QemuDialect, Failure> {
    let base = env.and_then(QemuVersion::parse).map_or(QemuDialect::DEFAULT, QemuDialect::new);
    let table = tables(base);
    let specs = specs_of(table);
    let mut getopt = Getopt::new(cmd, args, &specs, Order::Permute);
    let mut option = None;
    for (idx, value) in getopt.by_ref().flatten() {
        if table[idx].1 == Opt::QemuVersion {
            option = value;
        }
    }
    let (text, what) = match (option.as_deref(), env) {
        (Some(t), _) => (t, "--qemu-version"),
        (None, Some(t)) => (t, QEMU_VERSION_VAR),
        (None, None) => return Ok(QemuDialect::DEFAULT),
    };
    QemuVersion::parse(text).map(QemuDialect::new).ok_or_else(|| {
        Failure::new(format!(
            "{PROG}: {what} expects a qemu-img version such as 10.0.2, not '{text}'"
        ))
    })
}

/// Reads the arguments after the program name (`argv0`, the program as
/// invoked, is named in usage errors) into the command they ask for, with
/// qemu-img's checks and messages, in qemu-img's order. Reads no image
/// (only the file an `--object secret,file=` names, as qemu-img reads it).
pub fn parse(argv0: &str, args: &[String]) -> Result<Command, Failure> {
    parse_in(argv0, args, None)
}

/// qemu-img's own options, before the command (all versions).
const MAIN_TABLE: Table = &[
    o(Some('h'), Some("help"), false, Opt::Help),
    o(Some('V'), Some("version"), false, Opt::Version),
    o(Some('T'), Some("trace"), true, Opt::Trace),
];

/// [`parse`], with `env_version` (the value of [`QEMU_VERSION_VAR`], if
/// set) as the qemu-img version when no `--qemu-version` is given.
/// qemu-img's own options come first (getopt stops at the command), then
/// the command's.
pub fn parse_in(
    argv0: &str,
    args: &[String],
    env_version: Option<&str>,
) -> Result<Command, Failure> {
    // Before the command there is no --qemu-version: the environment's
    // version (or the default) words these errors.
    let dialect =
        env_version.and_then(QemuVersion::parse).map_or(QemuDialect::DEFAULT, QemuDialect::new);
    let usage = Usage { argv0, cmd: "", dialect };
    if args.is_empty() {
        return Err(usage.error("Not enough arguments"));
    }
    let specs = specs_of(MAIN_TABLE);
    let mut getopt = Getopt::new(argv0, args, &specs, Order::RequireOrder);
    // Each of qemu-img's own options ends the parse.
    if let Some(found) = getopt.next() {
        let (idx, _) = found.map_err(|e| usage.getopt(&e))?;
        match MAIN_TABLE[idx].1 {
            Opt::Version => {
                return Ok(Command::Print(format!(
                    "{PROG} version {} (compatible with qemu-img 5.2 to 11.1)\n",
                    env!("CARGO_PKG_VERSION")
                )))
            }
            Opt::Trace => {
                return Err(Failure::new(format!(
                    "{PROG}: option --trace (-T) is not supported by instar"
                )))
            }
            _ => return Ok(Command::Print(include_str!("help/main.txt").to_string())),
        }
    }
    let operands = getopt.operands();
    let Some(cmd) = operands.first() else {
        // Options and no command: qemu-img exits 0 without a word before
        // the rework, and says so since.
        if usage.reworked() {
            return Err(usage.error("Not enough arguments"));
        }
        return Ok(Command::Print(String::new()));
    };
    let rest = &operands[1..];
    match cmd.as_str() {
        "create" => parse_create(argv0, rest, env_version),
        "info" => parse_info(argv0, rest, env_version),
        "check" => parse_check(argv0, rest, env_version),
        "snapshot" => parse_snapshot(argv0, rest, env_version),
        "map" => map::parse(argv0, rest, env_version),
        "compare" => compare::parse(argv0, rest, env_version),
        "measure" => measure::parse(argv0, rest, env_version),
        "convert" => convert::parse(argv0, rest, env_version),
        "amend" | "bench" | "bitmap" | "commit" | "dd" | "rebase" | "resize" => {
            Err(Failure::new(format!(
                "{PROG}: '{cmd}' is a qemu-img command that instar does not implement \
                 (instar implements create, info, check, snapshot -l, map, compare, measure and convert)"
            )))
        }
        _ => Err(usage.error(format_args!("Command not found: {cmd}"))),
    }
}

/// Runs a parsed command: prints what it prints and returns its exit
/// code, or the failure to print.
pub fn execute(command: Command) -> Result<u8, Failure> {
    match command {
        Command::Print(text) => {
            out(&text);
            Ok(0)
        }
        Command::OptionHelp { fmt, filename, dialect } => {
            let text = option_help(&fmt, filename.as_deref(), dialect)
                .map_err(|e| Failure::new(format!("{PROG}: {e}")))?;
            out(&text);
            Ok(0)
        }
        Command::Create { args, quiet, warnings } => create(&args, quiet, &warnings),
        Command::Info { filename, fmt, output, chain, opts, dialect } => {
            info(opts.target(&filename, fmt.as_deref()), output, chain, dialect)
        }
        Command::Check { filename, fmt, output, quiet, deep, opts, dialect } => {
            check(opts.target(&filename, fmt.as_deref()), output, quiet, deep, dialect)
        }
        Command::Snapshot { filename, fmt, action, opts, dialect } => {
            snapshot(opts.target(&filename, fmt.as_deref()), action, dialect)
        }
        Command::Map(m) => map::execute(&m),
        Command::Compare(c) => Ok(c.run()),
        Command::Measure(m) => measure::execute(&m),
        Command::Convert(c) => convert::execute(&c),
        Command::Diagnosed { stderr, stdout } => {
            err(&stderr);
            out(&stdout);
            Ok(0)
        }
    }
}

/// `-o`/`-f`/... values of an option refused because instar does not
/// implement it.
fn unsupported(cmd: &str, option: &str) -> Failure {
    Failure::new(format!("{PROG}: {cmd}: option {option} is not supported by instar"))
}

/// An info or check failure: what qemu printed while opening, then the
/// error after the program name.
fn open_failure(e: &instar_core::Error) -> Failure {
    let mut message = render_all(e.notes(), PROG);
    message.push_str(&format!("{PROG}: {e}"));
    Failure::new(message)
}

/// Prints a block-layer error with the file name prefix qemu-img uses,
/// after what qemu printed before it (a qcow2 create's cleanup).
fn file_error(filename: &str, e: &instar_core::Error) -> Failure {
    let mut message = render_all(e.notes(), PROG);
    message.push_str(&format!("{PROG}: {filename}: {e}"));
    Failure::new(message)
}

// create ---------------------------------------------------------------

/// `create`'s options before the rework: `--help` and `--object` are its
/// only long options.
const CREATE_OLD: Table = &[
    o(Some('h'), Some("help"), false, Opt::Help),
    o(None, Some("object"), true, Opt::Object),
    o(Some('F'), None, true, Opt::BackingFormat),
    o(Some('b'), None, true, Opt::Backing),
    o(Some('f'), None, true, Opt::Format),
    o(Some('o'), None, true, Opt::Options),
    o(Some('q'), None, false, Opt::Quiet),
    o(Some('u'), None, false, Opt::BackingUnsafe),
    QEMU_VERSION,
];

/// `create`'s options in Debian's rework.
const CREATE_DEBIAN: Table = &[
    o(Some('h'), Some("help"), false, Opt::Help),
    o(Some('q'), Some("quiet"), false, Opt::Quiet),
    o(None, Some("object"), true, Opt::Object),
    o(Some('f'), Some("format"), true, Opt::Format),
    o(Some('b'), Some("backing"), true, Opt::Backing),
    o(Some('F'), Some("backing-format"), true, Opt::BackingFormat),
    o(Some('u'), Some("backing-unsafe"), false, Opt::BackingUnsafe),
    o(Some('o'), Some("options"), true, Opt::Options),
    QEMU_VERSION,
];

/// `create`'s options in upstream's rework: `-B` for the backing format
/// (`-F` still works).
const CREATE_UPSTREAM: Table = &[
    o(Some('h'), Some("help"), false, Opt::Help),
    o(Some('f'), Some("format"), true, Opt::Format),
    o(Some('o'), Some("options"), true, Opt::Options),
    o(Some('b'), Some("backing"), true, Opt::Backing),
    o(Some('B'), Some("backing-format"), true, Opt::BackingFormat),
    o(Some('u'), Some("backing-unsafe"), false, Opt::BackingUnsafe),
    o(Some('q'), Some("quiet"), false, Opt::Quiet),
    o(None, Some("object"), true, Opt::Object),
    o(Some('F'), None, true, Opt::BackingFormat),
    QEMU_VERSION,
];

/// The option table of `dialect`'s command line: before the rework,
/// Debian's rework, upstream's.
fn by_era(dialect: QemuDialect, old: Table, debian: Table, upstream: Table) -> Table {
    if dialect.since(OPTIONS_REWORK_UPSTREAM) {
        upstream
    } else if dialect.since(OPTIONS_REWORK_DEBIAN) {
        debian
    } else {
        old
    }
}

fn create_table(dialect: QemuDialect) -> Table {
    by_era(dialect, CREATE_OLD, CREATE_DEBIAN, CREATE_UPSTREAM)
}

fn parse_create(argv0: &str, args: &[String], env: Option<&str>) -> Result<Command, Failure> {
    let dialect = chosen_dialect("create", create_table, args, env)?;
    let usage = Usage { argv0, cmd: "create", dialect };
    let table = create_table(dialect);
    let specs = specs_of(table);
    let mut a = CreateArgs { fmt: "raw".to_string(), dialect, ..CreateArgs::default() };
    let mut quiet = false;
    let mut objects = Objects::default();
    let mut getopt = Getopt::new("create", args, &specs, Order::Permute);
    for found in getopt.by_ref() {
        let (idx, value) = found.map_err(|e| usage.getopt(&e))?;
        let value = value.unwrap_or_default();
        match table[idx].1 {
            Opt::Help => return Ok(Command::Print(include_str!("help/create.txt").to_string())),
            Opt::Quiet => quiet = true,
            Opt::Object => {
                if let Some(help) = object_option(&mut objects, &value, dialect)? {
                    return Ok(Command::Print(help));
                }
            }
            Opt::Format => a.fmt = value,
            Opt::Backing => a.backing_file = Some(value),
            Opt::BackingFormat => a.backing_fmt = Some(value),
            Opt::BackingUnsafe => a.no_backing_open = true,
            Opt::Options => {
                if !instar_core::opts::is_valid_option_list(&value) {
                    return Err(Failure::new(format!("{PROG}: Invalid option list: {value}")));
                }
                a.options = Some(match a.options.take() {
                    Some(old) => format!("{old},{value}"),
                    None => value,
                });
            }
            _ => {}
        }
    }
    let mut operands = getopt.operands().to_vec().into_iter();
    let filename = operands.next();
    if let Some(list) = &a.options {
        if instar_core::opts::has_help_option(list, dialect) {
            return Ok(Command::OptionHelp { fmt: a.fmt, filename, dialect });
        }
    }
    let Some(filename) = filename else {
        return Err(usage.error("Expecting image file name"));
    };
    // Before 6.0 objects were created here, after the file name check.
    if let Some(help) = make_pending(&mut objects, dialect)? {
        return Ok(Command::Print(help));
    }
    let mut warnings = Vec::new();
    if let Some(text) = operands.next() {
        a.size = Some(parse_image_size(&text, dialect, &mut warnings)?);
    }
    if let Some(extra) = operands.next() {
        return Err(usage.error(format_args!("Unexpected argument: {extra}")));
    }
    a.filename = filename;
    Ok(Command::Create { args: a, quiet, warnings })
}

fn create(a: &CreateArgs, quiet: bool, warnings: &[String]) -> Result<u8, Failure> {
    let mut printed = render_lines(warnings);
    let prepared = a.prepare().map_err(|e| {
        printed.push_str(&render_all(e.notes(), PROG));
        printed.push_str(&format!("{PROG}: {}: {e}", a.filename));
        Failure::new(std::mem::take(&mut printed))
    })?;
    printed.push_str(&render_lines(&prepared.warnings()));
    err(&printed);
    if !quiet {
        out(&format!("{}\n", prepared.formatting_line()));
        let _ = std::io::stdout().flush();
    }
    err(&render_lines(prepared.rereading_warnings()));
    prepared.run().map_err(|e| file_error(&a.filename, &e))?;
    Ok(0)
}

/// Lines qemu reports (warnings), each after the program name.
fn render_lines(lines: &[String]) -> String {
    lines.iter().map(|l| format!("{PROG}: {l}\n")).collect()
}

/// The positional size of `create`, read and refused as qemu-img of
/// `dialect` does (docs/compat.md §2.6); what reading it warned is added
/// to `warnings` (and comes first in the failure).
fn parse_image_size(
    text: &str,
    dialect: QemuDialect,
    warnings: &mut Vec<String>,
) -> Result<u64, Failure> {
    cvtnum("image size", text, dialect, warnings)
}

/// qemu-img's `cvtnum`: a size on the command line (`what`, e.g. `image
/// size`, `start offset`, names it in the messages), at most
/// [`MAX_IMAGE_SIZE`], read and refused as qemu-img of `dialect` does;
/// what reading it warned is added to `warnings` (and comes first in the
/// failure).
fn cvtnum(
    what: &str,
    text: &str,
    dialect: QemuDialect,
    warnings: &mut Vec<String>,
) -> Result<u64, Failure> {
    let read = read_size(text, dialect);
    if read.warned {
        warnings.push(hex_suffix_warning(text));
    }
    let message = match read.value {
        Ok(n) if n <= MAX_IMAGE_SIZE => return Ok(n),
        Err(SizeError::Invalid) if !dialect.since(OPTIONS_REWORK_DEBIAN) => format!(
            "{PROG}: Invalid {what} specified. You may use k, M, G, T, P or E suffixes for\n\
             {PROG}: kilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes."
        ),
        Err(SizeError::Invalid) => {
            let stop = if dialect.since(OPTIONS_REWORK_UPSTREAM) { "" } else { "." };
            format!("{PROG}: Invalid {what} specified: '{text}'{stop}")
        }
        _ => format!("{PROG}: Invalid {what} specified. Must be between 0 and {MAX_IMAGE_SIZE}."),
    };
    Err(Failure::new(format!("{}{message}", render_lines(warnings))))
}

// info and check -------------------------------------------------------

/// `--output`'s value as the reworked command lines check it, while
/// parsing the options.
fn parse_output(usage: Usage<'_>, value: &str) -> Result<Output, Failure> {
    match value {
        "human" => Ok(Output::Human),
        "json" => Ok(Output::Json),
        other => Err(usage
            .error(format_args!("--output expects 'human' or 'json'{} '{other}'", usage.not()))),
    }
}

/// `--output`'s value as qemu-img before the rework checks it, after the
/// file name: no hint follows.
fn parse_output_late(value: &str) -> Result<Output, Failure> {
    match value {
        "human" => Ok(Output::Human),
        "json" => Ok(Output::Json),
        _ => Err(Failure::new(format!(
            "{PROG}: --output must be used with human or json as argument."
        ))),
    }
}

/// The one operand info and check take.
fn one_filename(usage: Usage<'_>, operands: &[String]) -> Result<String, Failure> {
    match operands {
        [f] => Ok(f.clone()),
        _ => Err(usage.error("Expecting one image file name")),
    }
}

/// The cache modes qemu accepts for `-T` (and `info -t`); instar reads
/// without a cache policy of its own, so any valid mode behaves the same.
const CACHE_MODES: &[&str] = &["none", "off", "writeback", "unsafe", "directsync", "writethrough"];

/// `info`'s options before the rework (no `-b`).
const INFO_OLD: Table = &[
    o(Some('h'), Some("help"), false, Opt::Help),
    o(Some('f'), Some("format"), true, Opt::Format),
    o(None, Some("output"), true, Opt::Output),
    o(None, Some("backing-chain"), false, Opt::BackingChain),
    o(None, Some("object"), true, Opt::Object),
    o(None, Some("image-opts"), false, Opt::ImageOpts),
    o(Some('U'), Some("force-share"), false, Opt::ForceShare),
    QEMU_VERSION,
];

/// `info`'s options in Debian's rework (`-b`).
const INFO_DEBIAN: Table = &[
    o(Some('h'), Some("help"), false, Opt::Help),
    o(Some('f'), Some("format"), true, Opt::Format),
    o(None, Some("output"), true, Opt::Output),
    o(Some('b'), Some("backing-chain"), false, Opt::BackingChain),
    o(None, Some("object"), true, Opt::Object),
    o(None, Some("image-opts"), false, Opt::ImageOpts),
    o(Some('U'), Some("force-share"), false, Opt::ForceShare),
    QEMU_VERSION,
];

/// `info`'s options in upstream's rework: `-t`/`--cache` and `--limits`,
/// no `-b`.
const INFO_UPSTREAM: Table = &[
    o(Some('h'), Some("help"), false, Opt::Help),
    o(Some('f'), Some("format"), true, Opt::Format),
    o(None, Some("image-opts"), false, Opt::ImageOpts),
    o(None, Some("backing-chain"), false, Opt::BackingChain),
    o(Some('t'), Some("cache"), true, Opt::Cache),
    o(Some('U'), Some("force-share"), false, Opt::ForceShare),
    o(None, Some("limits"), false, Opt::Limits),
    o(None, Some("output"), true, Opt::Output),
    o(None, Some("object"), true, Opt::Object),
    QEMU_VERSION,
];

fn info_table(dialect: QemuDialect) -> Table {
    by_era(dialect, INFO_OLD, INFO_DEBIAN, INFO_UPSTREAM)
}

fn parse_info(argv0: &str, args: &[String], env: Option<&str>) -> Result<Command, Failure> {
    let dialect = chosen_dialect("info", info_table, args, env)?;
    let usage = Usage { argv0, cmd: "info", dialect };
    let table = info_table(dialect);
    let specs = specs_of(table);
    let mut fmt = None;
    let mut output = Output::Human;
    let mut late_output = None;
    let mut cache = None;
    let (mut chain, mut limits) = (false, false);
    let mut objects = Objects::default();
    let mut opts = ImageOpts::default();
    let mut getopt = Getopt::new("info", args, &specs, Order::Permute);
    for found in getopt.by_ref() {
        let (idx, value) = found.map_err(|e| usage.getopt(&e))?;
        let value = value.unwrap_or_default();
        match table[idx].1 {
            Opt::Help => return Ok(Command::Print(include_str!("help/info.txt").to_string())),
            Opt::Format => fmt = Some(value),
            Opt::Output if usage.reworked() => output = parse_output(usage, &value)?,
            Opt::Output => late_output = Some(value),
            Opt::BackingChain => chain = true,
            Opt::Object => {
                if let Some(help) = object_option(&mut objects, &value, dialect)? {
                    return Ok(Command::Print(help));
                }
            }
            Opt::ImageOpts => opts.image_opts = true,
            Opt::Cache => cache = Some(value),
            Opt::Limits => limits = true,
            Opt::ForceShare => opts.force_share = true,
            _ => {}
        }
    }
    let filename = one_filename(usage, getopt.operands())?;
    let late = AfterFilename { output: late_output, objects, cache, cache_word: "cache", dialect };
    match late.check()? {
        Late::Help(help) => return Ok(Command::Print(help)),
        Late::Output(Some(given)) => output = given,
        Late::Output(None) => {}
    }
    // Refused where qemu-img would start to use them.
    if limits {
        return Err(unsupported("info", "--limits"));
    }
    Ok(Command::Info { filename, fmt, output, chain, opts, dialect })
}

/// What `info` and `check` look at only after the file name, in
/// qemu-img's order: an `--output` met before the rework, the objects
/// read before 6.0, then the cache mode.
struct AfterFilename {
    /// `--output`'s value, when it is read late.
    output: Option<String>,
    /// The objects, some perhaps still to make.
    objects: Objects,
    /// `-T`'s value.
    cache: Option<String>,
    /// How the command's message names the cache (`Invalid <word> option`).
    cache_word: &'static str,
    /// Whose order.
    dialect: QemuDialect,
}

/// What the checks after the file name found.
enum Late {
    /// The late `--output`, if one was given.
    Output(Option<Output>),
    /// An object asked for help: print it and exit 0.
    Help(String),
}

impl AfterFilename {
    /// The late `--output` or an object's help, or the command's failure.
    fn check(mut self) -> Result<Late, Failure> {
        let output = self.output.map(|value| parse_output_late(&value)).transpose()?;
        if let Some(help) = make_pending(&mut self.objects, self.dialect)? {
            return Ok(Late::Help(help));
        }
        if let Some(mode) = self.cache.filter(|m| !CACHE_MODES.contains(&m.as_str())) {
            return Err(Failure::new(format!(
                "{PROG}: Invalid {} option: {mode}",
                self.cache_word
            )));
        }
        Ok(Late::Output(output))
    }
}

/// `--object text` as it is met: its help text if it asks for help, or
/// qemu's failure.
fn object_option(
    objects: &mut Objects,
    text: &str,
    dialect: QemuDialect,
) -> Result<Option<String>, Failure> {
    match objects.option(text, dialect) {
        Ok(Added::Made) => Ok(None),
        Ok(Added::Help(help)) => Ok(Some(help)),
        Err(e) => Err(Failure::new(format!("{PROG}: {e}"))),
    }
}

/// Before 6.0, the objects read are made after the file name is checked.
fn make_pending(objects: &mut Objects, dialect: QemuDialect) -> Result<Option<String>, Failure> {
    match objects.make_pending(dialect) {
        Ok(Added::Made) => Ok(None),
        Ok(Added::Help(help)) => Ok(Some(help)),
        Err(e) => Err(Failure::new(format!("{PROG}: {e}"))),
    }
}

fn info(
    target: instar_block::Target<'_>,
    output: Output,
    chain: bool,
    dialect: QemuDialect,
) -> Result<u8, Failure> {
    if !chain {
        let (info, warnings) = instar_block::info(target, dialect).map_err(|e| open_failure(&e))?;
        err(&render_all(&warnings, PROG));
        match output {
            Output::Json => out(&info.to_json(dialect).to_qemu_pretty()),
            Output::Human => out(&info.to_human(dialect)),
        }
        return Ok(0);
    }
    let (images, warnings) =
        instar_block::info_chain(target, dialect).map_err(|e| open_failure(&e))?;
    err(&render_all(&warnings, PROG));
    match output {
        // A chain is a JSON array, even of one image.
        Output::Json => {
            let list = images.iter().map(|i| i.to_json(dialect)).collect();
            out(&instar_core::Json::Array(list).to_qemu_pretty());
        }
        // Images one after another, a blank line between two.
        Output::Human => {
            let blocks: Vec<String> = images.iter().map(|i| i.to_human(dialect)).collect();
            out(&blocks.join("\n"));
        }
    }
    Ok(0)
}

/// `check`'s options before the rework (`-T` and `-q` without long
/// names).
const CHECK_OLD: Table = &[
    o(Some('h'), Some("help"), false, Opt::Help),
    o(Some('f'), Some("format"), true, Opt::Format),
    o(Some('r'), Some("repair"), true, Opt::Repair),
    o(None, Some("output"), true, Opt::Output),
    o(None, Some("object"), true, Opt::Object),
    o(None, Some("image-opts"), false, Opt::ImageOpts),
    o(Some('U'), Some("force-share"), false, Opt::ForceShare),
    o(Some('T'), None, true, Opt::Cache),
    o(Some('q'), None, false, Opt::Quiet),
    (own("deep", false), Opt::Deep),
    QEMU_VERSION,
];

/// `check`'s options in Debian's rework.
const CHECK_DEBIAN: Table = &[
    o(Some('h'), Some("help"), false, Opt::Help),
    o(Some('q'), Some("quiet"), false, Opt::Quiet),
    o(Some('f'), Some("format"), true, Opt::Format),
    o(Some('T'), Some("cache"), true, Opt::Cache),
    o(Some('r'), Some("repair"), true, Opt::Repair),
    o(None, Some("output"), true, Opt::Output),
    o(None, Some("object"), true, Opt::Object),
    o(None, Some("image-opts"), false, Opt::ImageOpts),
    o(Some('U'), Some("force-share"), false, Opt::ForceShare),
    (own("deep", false), Opt::Deep),
    QEMU_VERSION,
];

/// `check`'s options in upstream's rework.
const CHECK_UPSTREAM: Table = &[
    o(Some('h'), Some("help"), false, Opt::Help),
    o(Some('f'), Some("format"), true, Opt::Format),
    o(None, Some("image-opts"), false, Opt::ImageOpts),
    o(Some('T'), Some("cache"), true, Opt::Cache),
    o(Some('r'), Some("repair"), true, Opt::Repair),
    o(Some('U'), Some("force-share"), false, Opt::ForceShare),
    o(None, Some("output"), true, Opt::Output),
    o(Some('q'), Some("quiet"), false, Opt::Quiet),
    o(None, Some("object"), true, Opt::Object),
    (own("deep", false), Opt::Deep),
    QEMU_VERSION,
];

fn check_table(dialect: QemuDialect) -> Table {
    by_era(dialect, CHECK_OLD, CHECK_DEBIAN, CHECK_UPSTREAM)
}

fn parse_check(argv0: &str, args: &[String], env: Option<&str>) -> Result<Command, Failure> {
    let dialect = chosen_dialect("check", check_table, args, env)?;
    let usage = Usage { argv0, cmd: "check", dialect };
    let table = check_table(dialect);
    let specs = specs_of(table);
    let mut fmt = None;
    let mut output = Output::Human;
    let mut late_output = None;
    let mut cache = None;
    let (mut quiet, mut deep, mut repair) = (false, false, false);
    let mut objects = Objects::default();
    let mut opts = ImageOpts::default();
    let mut getopt = Getopt::new("check", args, &specs, Order::Permute);
    for found in getopt.by_ref() {
        let (idx, value) = found.map_err(|e| usage.getopt(&e))?;
        let value = value.unwrap_or_default();
        match table[idx].1 {
            Opt::Help => return Ok(Command::Print(include_str!("help/check.txt").to_string())),
            Opt::Format => fmt = Some(value),
            Opt::Repair if value == "leaks" || value == "all" => repair = true,
            Opt::Repair if usage.reworked() => {
                return Err(usage.error(format_args!(
                    "--repair (-r) expects 'leaks' or 'all'{} '{value}'",
                    usage.not()
                )))
            }
            Opt::Repair => {
                return Err(usage.error(format_args!(
                    "Unknown option value for -r (expecting 'leaks' or 'all'): {value}"
                )))
            }
            Opt::Output if usage.reworked() => output = parse_output(usage, &value)?,
            Opt::Output => late_output = Some(value),
            Opt::Object => {
                if let Some(help) = object_option(&mut objects, &value, dialect)? {
                    return Ok(Command::Print(help));
                }
            }
            Opt::ImageOpts => opts.image_opts = true,
            Opt::ForceShare => opts.force_share = true,
            Opt::Cache => cache = Some(value),
            Opt::Quiet => quiet = true,
            Opt::Deep => deep = true,
            _ => {}
        }
    }
    let filename = one_filename(usage, getopt.operands())?;
    let late =
        AfterFilename { output: late_output, objects, cache, cache_word: "source cache", dialect };
    match late.check()? {
        Late::Help(help) => return Ok(Command::Print(help)),
        Late::Output(Some(given)) => output = given,
        Late::Output(None) => {}
    }
    // Refused where qemu-img would start to use it.
    if repair {
        return Err(unsupported("check", "--repair"));
    }
    Ok(Command::Check { filename, fmt, output, quiet, deep, opts, dialect })
}

fn check(
    target: instar_block::Target<'_>,
    output: Output,
    quiet: bool,
    deep: bool,
    dialect: QemuDialect,
) -> Result<u8, Failure> {
    let not_supported = |e: instar_core::Error| {
        let mut failure = open_failure(&e);
        if e.kind() == instar_core::ErrorKind::NotSupported {
            failure.code = EXIT_CHECK_NOT_SUPPORTED;
        }
        failure
    };
    let (target, warnings) =
        instar_block::open_for_check(target, deep, dialect).map_err(not_supported)?;
    // What opening printed comes first; the check's lines then go to
    // stderr as they are found (as qemu-img prints them, and without
    // holding them), its verdict after them, the summary to stdout.
    err(&render_all(&warnings, PROG));
    let mut stderr = std::io::BufWriter::new(std::io::stderr());
    let lines = Lines::stream(PROG, move |line| {
        let _ = rawtext::write(&mut stderr, line);
    });
    let report = target.run(lines).map_err(not_supported)?;
    err(&report.stderr_text(PROG));
    if !quiet {
        out(&report.stdout_text(output == Output::Json));
    }
    Ok(report.exit_code())
}

// snapshot -------------------------------------------------------------

/// `snapshot`'s options before the rework: no `-f`, and `--help`,
/// `--object`, `--image-opts` and `--force-share` the only long options.
const SNAPSHOT_OLD: Table = &[
    o(Some('h'), Some("help"), false, Opt::Help),
    o(None, Some("object"), true, Opt::Object),
    o(None, Some("image-opts"), false, Opt::ImageOpts),
    o(Some('U'), Some("force-share"), false, Opt::ForceShare),
    o(Some('l'), None, false, Opt::List),
    o(Some('a'), None, true, Opt::Apply),
    o(Some('c'), None, true, Opt::CreateSnapshot),
    o(Some('d'), None, true, Opt::Delete),
    o(Some('q'), None, false, Opt::Quiet),
    QEMU_VERSION,
];

/// `snapshot`'s options in Debian's rework: `-f`, and long names whose
/// `--apply`, `--create` and `--delete` take no value (the patch's table
/// says `no_argument` for them; `--apply=x` is a getopt error).
const SNAPSHOT_DEBIAN: Table = &[
    o(Some('h'), Some("help"), false, Opt::Help),
    o(Some('q'), Some("quiet"), false, Opt::Quiet),
    o(None, Some("object"), true, Opt::Object),
    o(Some('f'), Some("format"), true, Opt::Format),
    o(None, Some("image-opts"), false, Opt::ImageOpts),
    o(Some('U'), Some("force-share"), false, Opt::ForceShare),
    o(Some('l'), Some("list"), false, Opt::List),
    o(None, Some("apply"), false, Opt::Apply),
    o(None, Some("create"), false, Opt::CreateSnapshot),
    o(None, Some("delete"), false, Opt::Delete),
    o(Some('a'), None, true, Opt::Apply),
    o(Some('c'), None, true, Opt::CreateSnapshot),
    o(Some('d'), None, true, Opt::Delete),
    QEMU_VERSION,
];

/// `snapshot`'s options in upstream's rework: the long actions take their
/// snapshot name.
const SNAPSHOT_UPSTREAM: Table = &[
    o(Some('h'), Some("help"), false, Opt::Help),
    o(Some('q'), Some("quiet"), false, Opt::Quiet),
    o(None, Some("object"), true, Opt::Object),
    o(Some('f'), Some("format"), true, Opt::Format),
    o(None, Some("image-opts"), false, Opt::ImageOpts),
    o(Some('U'), Some("force-share"), false, Opt::ForceShare),
    o(Some('l'), Some("list"), false, Opt::List),
    o(Some('a'), Some("apply"), true, Opt::Apply),
    o(Some('c'), Some("create"), true, Opt::CreateSnapshot),
    o(Some('d'), Some("delete"), true, Opt::Delete),
    QEMU_VERSION,
];

fn snapshot_table(dialect: QemuDialect) -> Table {
    by_era(dialect, SNAPSHOT_OLD, SNAPSHOT_DEBIAN, SNAPSHOT_UPSTREAM)
}

/// `snapshot`: qemu-img's `img_snapshot` with its one action each (`Cannot
/// mix`), the one file name, then the action once the image is open.
/// instar lists (`-l`); it refuses to apply, create or delete a snapshot,
/// which would write.
fn parse_snapshot(argv0: &str, args: &[String], env: Option<&str>) -> Result<Command, Failure> {
    let dialect = chosen_dialect("snapshot", snapshot_table, args, env)?;
    let usage = Usage { argv0, cmd: "snapshot", dialect };
    let table = snapshot_table(dialect);
    let specs = specs_of(table);
    let mut fmt = None;
    let mut action = None;
    let mut objects = Objects::default();
    let mut opts = ImageOpts::default();
    let mut getopt = Getopt::new("snapshot", args, &specs, Order::Permute);
    for found in getopt.by_ref() {
        let (idx, value) = found.map_err(|e| usage.getopt(&e))?;
        match table[idx].1 {
            Opt::Help => return Ok(Command::Print(include_str!("help/snapshot.txt").to_string())),
            Opt::Format => fmt = value,
            what @ (Opt::List | Opt::Apply | Opt::CreateSnapshot | Opt::Delete) => {
                if action.is_some() {
                    return Err(usage.error("Cannot mix '-l', '-a', '-c', '-d'"));
                }
                action = Some(what);
            }
            Opt::Object => {
                let text = value.unwrap_or_default();
                if let Some(help) = object_option(&mut objects, &text, dialect)? {
                    return Ok(Command::Print(help));
                }
            }
            Opt::ImageOpts => opts.image_opts = true,
            Opt::ForceShare => opts.force_share = true,
            // -q changes nothing a list prints.
            _ => {}
        }
    }
    let filename = one_filename(usage, getopt.operands())?;
    if let Some(help) = make_pending(&mut objects, dialect)? {
        return Ok(Command::Print(help));
    }
    let action = match action {
        Some(Opt::List) => SnapshotAction::List,
        Some(Opt::Apply) => SnapshotAction::Refused("-a"),
        Some(Opt::CreateSnapshot) => SnapshotAction::Refused("-c"),
        Some(_) => SnapshotAction::Refused("-d"),
        // Since the rework listing is the default; before it, qemu-img
        // opens the image and does nothing.
        None if usage.reworked() => SnapshotAction::List,
        None => SnapshotAction::Nothing,
    };
    Ok(Command::Snapshot { filename, fmt, action, opts, dialect })
}

/// Opens the image as qemu-img does (so a missing or broken image fails
/// in qemu's words whatever the action), then lists, or refuses an action
/// that would write.
fn snapshot(
    target: instar_block::Target<'_>,
    action: SnapshotAction,
    dialect: QemuDialect,
) -> Result<u8, Failure> {
    // qemu opens the image read-write for any action but a list.
    let writable = action != SnapshotAction::List;
    let (snapshots, warnings) =
        instar_block::snapshots(target, writable, dialect).map_err(|e| open_failure(&e))?;
    err(&render_all(&warnings, PROG));
    match action {
        SnapshotAction::List => out(&instar_core::info::snapshot_table(&snapshots, dialect)),
        SnapshotAction::Nothing => {}
        SnapshotAction::Refused(option) => {
            return Err(Failure::new(format!(
                "{PROG}: snapshot {option}: applying, creating and deleting snapshots is not \
                 supported by instar (it only reads images); use qemu-img"
            )))
        }
    }
    Ok(0)
}
