//! The command line of `instar`, a drop-in replacement for `qemu-img
//! create`, `info` and `check`, in two steps: [`parse`] reads the
//! arguments (with qemu-img's option tables and messages) into a
//! [`Command`] without touching any file, and [`execute`] runs it: calls
//! the block layer, prints, and picks the exit code. The binary
//! (`main.rs`) only hands its arguments to [`run`]; the fuzz target of the
//! command line calls [`parse`] alone. Every message qemu-img prefixes
//! with `qemu-img` is prefixed with `instar`.

pub mod getopt;

use getopt::{spec, Spec};
use instar_block::{option_help, CreateArgs};
use instar_core::diag::render_all;
use instar_core::dialect::{OPTIONS_REWORK_DEBIAN, OPTIONS_REWORK_UPSTREAM};
use instar_core::rawtext;
use instar_core::{size::parse_size, size::SizeError, Lines, QemuDialect, QemuVersion};
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

    /// A usage error: the message plus the hint to read the command's help,
    /// which names the program as it was invoked (`argv0`), as qemu-img's
    /// does.
    fn usage(argv0: &str, cmd: &str, message: impl Into<String>) -> Self {
        let try_cmd = if cmd.is_empty() { String::new() } else { format!(" {cmd}") };
        Failure::new(format!("{}\nTry '{argv0}{try_cmd} --help' for more info", message.into()))
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
    },
    /// `info`.
    Info {
        /// The image file name as given.
        filename: String,
        /// `-f`.
        fmt: Option<String>,
        /// `--output`.
        output: Output,
        /// `--qemu-version`: whose output to reproduce.
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
        /// `--qemu-version`: whose probe and output to follow.
        dialect: QemuDialect,
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

/// A command's dialect: its last `--qemu-version` if given, else `env`
/// (the value of [`QEMU_VERSION_VAR`]), else [`QemuDialect::DEFAULT`].
/// Any well-formed version is accepted: it speaks as the range of qemu
/// releases it falls in, and a version newer than every known change
/// speaks as the newest (docs/compat.md §5.3). What is not a version is
/// refused with the place it came from.
fn chosen_dialect(
    specs: &[Spec],
    opts: &[(usize, Option<String>)],
    env: Option<&str>,
) -> Result<QemuDialect, Failure> {
    let option = opts
        .iter()
        .rev()
        .find(|(idx, _)| specs.get(*idx).is_some_and(|s| s.long == Some("qemu-version")))
        .and_then(|(_, value)| value.as_deref());
    let (text, what) = match (option, env) {
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
/// qemu-img's checks and messages, in qemu-img's order. Reads no file.
pub fn parse(argv0: &str, args: &[String]) -> Result<Command, Failure> {
    parse_in(argv0, args, None)
}

/// [`parse`], with `env_version` (the value of [`QEMU_VERSION_VAR`], if
/// set) as the qemu-img version when no `--qemu-version` is given.
pub fn parse_in(
    argv0: &str,
    args: &[String],
    env_version: Option<&str>,
) -> Result<Command, Failure> {
    let Some(cmd) = args.first() else {
        return Err(Failure::usage(argv0, "", format!("{PROG}: Not enough arguments")));
    };
    let rest = &args[1..];
    match cmd.as_str() {
        "create" => parse_create(argv0, rest, env_version),
        "info" => parse_info(argv0, rest, env_version),
        "check" => parse_check(argv0, rest, env_version),
        "-V" | "--version" => Ok(Command::Print(format!(
            "{PROG} version {} (compatible with qemu-img 5.2 to 11.1)\n",
            env!("CARGO_PKG_VERSION")
        ))),
        "-h" | "--help" => Ok(Command::Print(include_str!("help/main.txt").to_string())),
        "amend" | "bench" | "bitmap" | "commit" | "compare" | "convert" | "dd" | "map"
        | "measure" | "rebase" | "resize" | "snapshot" => Err(Failure::new(format!(
            "{PROG}: '{cmd}' is a qemu-img command that instar does not implement \
             (instar implements create, info and check)"
        ))),
        _ => Err(Failure::usage(argv0, "", format!("{PROG}: Command not found: {cmd}"))),
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
        Command::Create { args, quiet } => create(&args, quiet),
        Command::Info { filename, fmt, output, dialect } => info(&filename, fmt, output, dialect),
        Command::Check { filename, fmt, output, quiet, deep, dialect } => {
            check(&filename, fmt, output, quiet, deep, dialect)
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

/// Prints a block-layer error with the file name prefix qemu-img uses.
fn file_error(filename: &str, e: &instar_core::Error) -> Failure {
    Failure::new(format!("{PROG}: {filename}: {e}"))
}

// create ---------------------------------------------------------------

const CREATE_SPECS: &[Spec] = &[
    spec(Some('h'), Some("help"), false),
    spec(Some('q'), Some("quiet"), false),
    spec(None, Some("object"), true),
    spec(Some('f'), Some("format"), true),
    spec(Some('b'), Some("backing"), true),
    spec(Some('F'), Some("backing-format"), true),
    spec(Some('u'), Some("backing-unsafe"), false),
    spec(Some('o'), Some("options"), true),
    spec(None, Some("qemu-version"), true),
];

fn parse_create(argv0: &str, args: &[String], env: Option<&str>) -> Result<Command, Failure> {
    let prog = format!("{argv0} create");
    let parsed =
        getopt::parse(&prog, args, CREATE_SPECS).map_err(|m| Failure::usage(argv0, "create", m))?;
    let mut a = CreateArgs { fmt: "raw".to_string(), ..CreateArgs::default() };
    let mut quiet = false;
    a.dialect = chosen_dialect(CREATE_SPECS, &parsed.opts, env)?;
    for (idx, value) in parsed.opts {
        let value = value.unwrap_or_default();
        match CREATE_SPECS[idx].long {
            Some("help") => {
                return Ok(Command::Print(include_str!("help/create.txt").to_string()));
            }
            Some("quiet") => quiet = true,
            Some("object") => return Err(unsupported("create", "--object")),
            Some("format") => a.fmt = value,
            Some("backing") => a.backing_file = Some(value),
            Some("backing-format") => a.backing_fmt = Some(value),
            Some("backing-unsafe") => a.no_backing_open = true,
            Some("qemu-version") => {}
            _ => {
                if !instar_core::opts::is_valid_option_list(&value) {
                    return Err(Failure::new(format!("{PROG}: Invalid option list: {value}")));
                }
                a.options = Some(match a.options.take() {
                    Some(old) => format!("{old},{value}"),
                    None => value,
                });
            }
        }
    }
    let mut operands = parsed.operands.into_iter();
    let filename = operands.next();
    if let Some(list) = &a.options {
        if instar_core::opts::has_help_option(list, a.dialect) {
            return Ok(Command::OptionHelp { fmt: a.fmt, filename, dialect: a.dialect });
        }
    }
    let Some(filename) = filename else {
        return Err(Failure::usage(argv0, "create", format!("{PROG}: Expecting image file name")));
    };
    if let Some(text) = operands.next() {
        a.size = Some(parse_image_size(&text, a.dialect)?);
    }
    if let Some(extra) = operands.next() {
        return Err(Failure::usage(
            argv0,
            "create",
            format!("{PROG}: Unexpected argument: {extra}"),
        ));
    }
    a.filename = filename;
    Ok(Command::Create { args: a, quiet })
}

fn create(a: &CreateArgs, quiet: bool) -> Result<u8, Failure> {
    let prepared = a.prepare().map_err(|e| file_error(&a.filename, &e))?;
    if !quiet {
        out(&format!("{}\n", prepared.formatting_line()));
        let _ = std::io::stdout().flush();
    }
    prepared.run().map_err(|e| file_error(&a.filename, &e))?;
    Ok(0)
}

/// The positional size of `create`, with the messages of qemu-img of
/// `dialect` (docs/compat.md §2.6).
fn parse_image_size(text: &str, dialect: QemuDialect) -> Result<u64, Failure> {
    match parse_size(text) {
        Ok(n) if n <= MAX_IMAGE_SIZE => Ok(n),
        Err(SizeError::Invalid) if !dialect.since(OPTIONS_REWORK_DEBIAN) => {
            Err(Failure::new(format!(
            "{PROG}: Invalid image size specified. You may use k, M, G, T, P or E suffixes for\n\
             {PROG}: kilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes."
        )))
        }
        Err(SizeError::Invalid) => {
            let stop = if dialect.since(OPTIONS_REWORK_UPSTREAM) { "" } else { "." };
            Err(Failure::new(format!("{PROG}: Invalid image size specified: '{text}'{stop}")))
        }
        _ => Err(Failure::new(format!(
            "{PROG}: Invalid image size specified. Must be between 0 and {MAX_IMAGE_SIZE}."
        ))),
    }
}

// info and check -------------------------------------------------------

fn parse_output(argv0: &str, cmd: &str, value: &str) -> Result<Output, Failure> {
    match value {
        "human" => Ok(Output::Human),
        "json" => Ok(Output::Json),
        other => Err(Failure::usage(
            argv0,
            cmd,
            format!("{PROG}: --output expects 'human' or 'json' not '{other}'"),
        )),
    }
}

/// The one operand info and check take.
fn one_filename(argv0: &str, cmd: &str, operands: Vec<String>) -> Result<String, Failure> {
    let mut it = operands.into_iter();
    match (it.next(), it.next()) {
        (Some(f), None) => Ok(f),
        _ => Err(Failure::usage(argv0, cmd, format!("{PROG}: Expecting one image file name"))),
    }
}

const INFO_SPECS: &[Spec] = &[
    spec(Some('h'), Some("help"), false),
    spec(Some('f'), Some("format"), true),
    spec(None, Some("output"), true),
    spec(Some('b'), Some("backing-chain"), false),
    spec(None, Some("object"), true),
    spec(None, Some("image-opts"), false),
    spec(Some('U'), Some("force-share"), false),
    spec(None, Some("qemu-version"), true),
];

fn parse_info(argv0: &str, args: &[String], env: Option<&str>) -> Result<Command, Failure> {
    let prog = format!("{argv0} info");
    let parsed =
        getopt::parse(&prog, args, INFO_SPECS).map_err(|m| Failure::usage(argv0, "info", m))?;
    let mut fmt = None;
    let mut output = Output::Human;
    let dialect = chosen_dialect(INFO_SPECS, &parsed.opts, env)?;
    for (idx, value) in parsed.opts {
        let value = value.unwrap_or_default();
        match INFO_SPECS[idx].long {
            Some("help") => return Ok(Command::Print(include_str!("help/info.txt").to_string())),
            Some("format") => fmt = Some(value),
            Some("output") => output = parse_output(argv0, "info", &value)?,
            Some("backing-chain") => return Err(unsupported("info", "--backing-chain")),
            Some("object") => return Err(unsupported("info", "--object")),
            Some("image-opts") => return Err(unsupported("info", "--image-opts")),
            Some("qemu-version") => {}
            // Sharing is irrelevant: instar only reads.
            _ => {}
        }
    }
    let filename = one_filename(argv0, "info", parsed.operands)?;
    Ok(Command::Info { filename, fmt, output, dialect })
}

fn info(
    filename: &str,
    fmt: Option<String>,
    output: Output,
    dialect: QemuDialect,
) -> Result<u8, Failure> {
    let (info, warnings) =
        instar_block::info(filename, fmt.as_deref(), dialect).map_err(|e| open_failure(&e))?;
    err(&render_all(&warnings, PROG));
    match output {
        Output::Json => out(&info.to_json(dialect).to_qemu_pretty()),
        Output::Human => out(&info.to_human(dialect)),
    }
    Ok(0)
}

const CHECK_SPECS: &[Spec] = &[
    spec(Some('h'), Some("help"), false),
    spec(Some('f'), Some("format"), true),
    spec(Some('r'), Some("repair"), true),
    spec(None, Some("output"), true),
    spec(None, Some("object"), true),
    spec(None, Some("image-opts"), false),
    spec(Some('T'), Some("cache"), true),
    spec(Some('q'), Some("quiet"), false),
    spec(Some('U'), Some("force-share"), false),
    spec(None, Some("deep"), false),
    spec(None, Some("qemu-version"), true),
];

/// The cache modes qemu accepts for `-T`; instar reads without a cache
/// policy of its own, so any valid mode behaves the same.
const CACHE_MODES: &[&str] = &["none", "off", "writeback", "unsafe", "directsync", "writethrough"];

fn parse_check(argv0: &str, args: &[String], env: Option<&str>) -> Result<Command, Failure> {
    let prog = format!("{argv0} check");
    let parsed =
        getopt::parse(&prog, args, CHECK_SPECS).map_err(|m| Failure::usage(argv0, "check", m))?;
    let mut fmt = None;
    let mut output = Output::Human;
    let mut quiet = false;
    let mut deep = false;
    let dialect = chosen_dialect(CHECK_SPECS, &parsed.opts, env)?;
    for (idx, value) in parsed.opts {
        let value = value.unwrap_or_default();
        match CHECK_SPECS[idx].long {
            Some("help") => {
                return Ok(Command::Print(include_str!("help/check.txt").to_string()));
            }
            Some("format") => fmt = Some(value),
            Some("repair") => {
                if value != "leaks" && value != "all" {
                    return Err(Failure::usage(
                        argv0,
                        "check",
                        format!("{PROG}: --repair (-r) expects 'leaks' or 'all' not '{value}'"),
                    ));
                }
                return Err(unsupported("check", "--repair"));
            }
            Some("output") => output = parse_output(argv0, "check", &value)?,
            Some("object") => return Err(unsupported("check", "--object")),
            Some("image-opts") => return Err(unsupported("check", "--image-opts")),
            Some("cache") if !CACHE_MODES.contains(&value.as_str()) => {
                return Err(Failure::new(format!("{PROG}: Invalid source cache option: {value}")));
            }
            Some("quiet") => quiet = true,
            Some("deep") => deep = true,
            _ => {}
        }
    }
    let filename = one_filename(argv0, "check", parsed.operands)?;
    Ok(Command::Check { filename, fmt, output, quiet, deep, dialect })
}

fn check(
    filename: &str,
    fmt: Option<String>,
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
    let (target, warnings) = instar_block::open_for_check(filename, fmt.as_deref(), deep, dialect)
        .map_err(not_supported)?;
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
