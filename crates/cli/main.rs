//! `instar`: the command line of a drop-in replacement for `qemu-img
//! create`, `info` and `check`.
//!
//! This file only parses arguments (with qemu-img's option tables and
//! messages), calls the block layer, prints, and picks exit codes. Every
//! message qemu-img prefixes with `qemu-img` is prefixed with `instar`.

mod getopt;

use getopt::{parse, spec, Spec};
use instar_block::{option_help, CreateArgs};
use instar_core::diag::render_all;
use instar_core::rawtext;
use instar_core::{info::QemuDialect, size::parse_size, size::SizeError, Lines};
use std::io::Write;
use std::process::ExitCode;

/// The program name in messages.
const PROG: &str = "instar";

/// The qemu-img versions whose `info` output instar can reproduce, newest
/// last; `--qemu-version` picks one by major.minor.
const KNOWN_QEMU_VERSIONS: &[(u64, u64, u64)] = &[(7, 2, 22), (10, 0, 2)];

/// The largest image size qemu-img accepts on its command line.
const MAX_IMAGE_SIZE: u64 = i64::MAX as u64;

/// qemu-img's exit code when a format has no check.
const EXIT_CHECK_NOT_SUPPORTED: u8 = 63;

/// The program as invoked (`argv[0]`), which qemu-img's usage errors name
/// (getopt's messages and the `Try '... --help'` hint).
fn argv0() -> String {
    std::env::args_os().next().map_or_else(|| PROG.to_string(), |a| rawtext::from_os(&a))
}

/// Prints `text` on stdout as the bytes it carries ([`rawtext`]): names
/// that are not UTF-8 come out as they came in, as qemu-img prints them.
fn out(text: &str) {
    // Output may go to a closed pipe; there is nothing better to do then.
    let _ = rawtext::write(&mut std::io::stdout().lock(), text);
}

/// Prints `text` on stderr as the bytes it carries.
fn err(text: &str) {
    let _ = rawtext::write(&mut std::io::stderr().lock(), text);
}

/// A command's failure: the text for stderr (without trailing newline) and
/// the exit code.
struct Failure {
    message: String,
    code: u8,
}

impl Failure {
    fn new(message: impl Into<String>) -> Self {
        Failure { message: message.into(), code: 1 }
    }

    /// A usage error: the message plus the hint to read the command's help.
    fn usage(cmd: &str, message: impl Into<String>) -> Self {
        let try_cmd = if cmd.is_empty() { String::new() } else { format!(" {cmd}") };
        // Like qemu-img, the hint names the program as it was invoked.
        Failure::new(format!("{}\nTry '{}{try_cmd} --help' for more info", message.into(), argv0()))
    }
}

type CmdResult = Result<u8, Failure>;

fn main() -> ExitCode {
    // Arguments are bytes (a file name need not be UTF-8); they are
    // carried losslessly as text.
    let args: Vec<String> = std::env::args_os().skip(1).map(|a| rawtext::from_os(&a)).collect();
    let result = run(&args);
    // Output may go to a closed pipe; there is nothing better to do then.
    let _ = std::io::stdout().flush();
    match result {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            err(&format!("{}\n", f.message));
            ExitCode::from(f.code)
        }
    }
}

fn run(args: &[String]) -> CmdResult {
    let Some(cmd) = args.first() else {
        return Err(Failure::usage("", format!("{PROG}: Not enough arguments")));
    };
    let rest = &args[1..];
    match cmd.as_str() {
        "create" => create(rest),
        "info" => info(rest),
        "check" => check(rest),
        "-V" | "--version" => {
            out(&format!(
                "{PROG} version {} (compatible with qemu-img 7.2 and 10.0)\n",
                env!("CARGO_PKG_VERSION")
            ));
            Ok(0)
        }
        "-h" | "--help" => {
            out(include_str!("help/main.txt"));
            Ok(0)
        }
        "amend" | "bench" | "bitmap" | "commit" | "compare" | "convert" | "dd" | "map"
        | "measure" | "rebase" | "resize" | "snapshot" => Err(Failure::new(format!(
            "{PROG}: '{cmd}' is a qemu-img command that instar does not implement \
             (instar implements create, info and check)"
        ))),
        _ => Err(Failure::usage("", format!("{PROG}: Command not found: {cmd}"))),
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
];

fn create(args: &[String]) -> CmdResult {
    let prog = format!("{} create", argv0());
    let parsed = parse(&prog, args, CREATE_SPECS).map_err(|m| Failure::usage("create", m))?;
    let mut a = CreateArgs { fmt: "raw".to_string(), ..CreateArgs::default() };
    let mut quiet = false;
    for (idx, value) in parsed.opts {
        let value = value.unwrap_or_default();
        match CREATE_SPECS[idx].long {
            Some("help") => {
                out(include_str!("help/create.txt"));
                return Ok(0);
            }
            Some("quiet") => quiet = true,
            Some("object") => return Err(unsupported("create", "--object")),
            Some("format") => a.fmt = value,
            Some("backing") => a.backing_file = Some(value),
            Some("backing-format") => a.backing_fmt = Some(value),
            Some("backing-unsafe") => a.no_backing_open = true,
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
        if instar_core::opts::has_help_option(list) {
            let text = option_help(&a.fmt, filename.as_deref())
                .map_err(|e| Failure::new(format!("{PROG}: {e}")))?;
            out(&text);
            return Ok(0);
        }
    }
    let Some(filename) = filename else {
        return Err(Failure::usage("create", format!("{PROG}: Expecting image file name")));
    };
    if let Some(text) = operands.next() {
        a.size = Some(parse_image_size(&text)?);
    }
    if let Some(extra) = operands.next() {
        return Err(Failure::usage("create", format!("{PROG}: Unexpected argument: {extra}")));
    }
    a.filename = filename;
    let prepared = a.prepare().map_err(|e| file_error(&a.filename, &e))?;
    if !quiet {
        out(&format!("{}\n", prepared.formatting_line()));
        let _ = std::io::stdout().flush();
    }
    prepared.run().map_err(|e| file_error(&a.filename, &e))?;
    Ok(0)
}

/// The positional size of `create`, with qemu-img's `cvtnum` messages.
fn parse_image_size(text: &str) -> Result<u64, Failure> {
    match parse_size(text) {
        Ok(n) if n <= MAX_IMAGE_SIZE => Ok(n),
        Err(SizeError::Invalid) => {
            Err(Failure::new(format!("{PROG}: Invalid image size specified: '{text}'.")))
        }
        _ => Err(Failure::new(format!(
            "{PROG}: Invalid image size specified. Must be between 0 and {MAX_IMAGE_SIZE}."
        ))),
    }
}

// info and check -------------------------------------------------------

/// `--output` of info and check.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Output {
    Human,
    Json,
}

fn parse_output(cmd: &str, value: &str) -> Result<Output, Failure> {
    match value {
        "human" => Ok(Output::Human),
        "json" => Ok(Output::Json),
        other => Err(Failure::usage(
            cmd,
            format!("{PROG}: --output expects 'human' or 'json' not '{other}'"),
        )),
    }
}

/// The one operand info and check take.
fn one_filename(cmd: &str, operands: Vec<String>) -> Result<String, Failure> {
    let mut it = operands.into_iter();
    match (it.next(), it.next()) {
        (Some(f), None) => Ok(f),
        _ => Err(Failure::usage(cmd, format!("{PROG}: Expecting one image file name"))),
    }
}

/// The dialect of `--qemu-version X.Y.Z`: the known version with the same
/// major.minor.
fn dialect_for(text: &str) -> Result<QemuDialect, Failure> {
    let parts: Vec<&str> = text.split('.').collect();
    let nums: Option<Vec<u64>> = if parts.len() == 3 {
        parts.iter().map(|p| p.parse::<u64>().ok().filter(|_| !p.is_empty())).collect()
    } else {
        None
    };
    let Some(v) = nums else {
        return Err(Failure::new(format!(
            "{PROG}: --qemu-version expects a version such as 10.0.2, not '{text}'"
        )));
    };
    let known = KNOWN_QEMU_VERSIONS.iter().find(|k| k.0 == v[0] && k.1 == v[1]);
    match known {
        Some(&(major, minor, patch)) => Ok(QemuDialect::for_version(major, minor, patch)),
        None => {
            let list: Vec<String> =
                KNOWN_QEMU_VERSIONS.iter().map(|k| format!("{}.{}.{}", k.0, k.1, k.2)).collect();
            Err(Failure::new(format!(
                "{PROG}: qemu-img {text} is not a version instar knows the output of \
                 (known: {})",
                list.join(", ")
            )))
        }
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

fn info(args: &[String]) -> CmdResult {
    let prog = format!("{} info", argv0());
    let parsed = parse(&prog, args, INFO_SPECS).map_err(|m| Failure::usage("info", m))?;
    let mut fmt = None;
    let mut output = Output::Human;
    let mut dialect = QemuDialect::NEWEST;
    for (idx, value) in parsed.opts {
        let value = value.unwrap_or_default();
        match INFO_SPECS[idx].long {
            Some("help") => {
                out(include_str!("help/info.txt"));
                return Ok(0);
            }
            Some("format") => fmt = Some(value),
            Some("output") => output = parse_output("info", &value)?,
            Some("backing-chain") => return Err(unsupported("info", "--backing-chain")),
            Some("object") => return Err(unsupported("info", "--object")),
            Some("image-opts") => return Err(unsupported("info", "--image-opts")),
            Some("qemu-version") => dialect = dialect_for(&value)?,
            // Sharing is irrelevant: instar only reads.
            _ => {}
        }
    }
    let filename = one_filename("info", parsed.operands)?;
    let (info, warnings) =
        instar_block::info(&filename, fmt.as_deref()).map_err(|e| open_failure(&e))?;
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
];

/// The cache modes qemu accepts for `-T`; instar reads without a cache
/// policy of its own, so any valid mode behaves the same.
const CACHE_MODES: &[&str] = &["none", "off", "writeback", "unsafe", "directsync", "writethrough"];

fn check(args: &[String]) -> CmdResult {
    let prog = format!("{} check", argv0());
    let parsed = parse(&prog, args, CHECK_SPECS).map_err(|m| Failure::usage("check", m))?;
    let mut fmt = None;
    let mut output = Output::Human;
    let mut quiet = false;
    let mut deep = false;
    for (idx, value) in parsed.opts {
        let value = value.unwrap_or_default();
        match CHECK_SPECS[idx].long {
            Some("help") => {
                out(include_str!("help/check.txt"));
                return Ok(0);
            }
            Some("format") => fmt = Some(value),
            Some("repair") => {
                if value != "leaks" && value != "all" {
                    return Err(Failure::usage(
                        "check",
                        format!("{PROG}: --repair (-r) expects 'leaks' or 'all' not '{value}'"),
                    ));
                }
                return Err(unsupported("check", "--repair"));
            }
            Some("output") => output = parse_output("check", &value)?,
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
    let filename = one_filename("check", parsed.operands)?;
    let not_supported = |e: instar_core::Error| {
        let mut failure = open_failure(&e);
        if e.kind() == instar_core::ErrorKind::NotSupported {
            failure.code = EXIT_CHECK_NOT_SUPPORTED;
        }
        failure
    };
    let (target, warnings) =
        instar_block::open_for_check(&filename, fmt.as_deref(), deep).map_err(not_supported)?;
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
