//! `map`: qemu-img's `img_map` command line (its option tables per era,
//! its checks in its order, its messages), then the map itself, which the
//! block layer walks and prints ([`instar_block::map`]).

use super::{
    by_era, chosen_dialect, cvtnum, err, make_pending, o, object_option, one_filename,
    open_failure, parse_output, parse_output_late, render_lines, specs_of, Command, Failure,
    ImageOpts, Opt, Output, Table, Usage, PROG, QEMU_VERSION,
};
use crate::getopt::{Getopt, Order};
use instar_block::{write_map, Chain, MapError, MapFormat, MapRequest};
use instar_core::diag::render_all;
use instar_core::object::Objects;
use instar_core::{OpenFlags, QemuDialect};
use std::io::Write;

/// How much of the map is gathered before it is written out: the entries
/// of a fragmented image are many and short.
const OUTPUT_BUFFER: usize = 64 * 1024;

/// `map`, its command line read.
#[derive(Debug)]
pub struct MapCommand {
    /// The image file name as given.
    pub filename: String,
    /// `-f`.
    pub fmt: Option<String>,
    /// `--output`.
    pub output: Output,
    /// `--start-offset`.
    pub start: u64,
    /// `--max-length`.
    pub max_length: Option<u64>,
    /// `--image-opts` and `-U`.
    pub opts: ImageOpts,
    /// What reading the sizes warned (without the program name), printed
    /// first.
    pub warnings: Vec<String>,
    /// `--qemu-version`: whose keys and messages.
    pub dialect: QemuDialect,
}

/// `map`'s options before the rework and in Debian's (the same table:
/// Debian's patch kept it, and only the messages changed).
const MAP_OLD: Table = &[
    o(Some('h'), Some("help"), false, Opt::Help),
    o(Some('f'), Some("format"), true, Opt::Format),
    o(None, Some("output"), true, Opt::Output),
    o(None, Some("object"), true, Opt::Object),
    o(None, Some("image-opts"), false, Opt::ImageOpts),
    o(Some('U'), Some("force-share"), false, Opt::ForceShare),
    o(Some('s'), Some("start-offset"), true, Opt::StartOffset),
    o(Some('l'), Some("max-length"), true, Opt::MaxLength),
    QEMU_VERSION,
];

/// `map`'s options in upstream's rework: the same options, in another
/// order (which glibc's ambiguity messages show).
const MAP_UPSTREAM: Table = &[
    o(Some('h'), Some("help"), false, Opt::Help),
    o(Some('f'), Some("format"), true, Opt::Format),
    o(None, Some("image-opts"), false, Opt::ImageOpts),
    o(Some('s'), Some("start-offset"), true, Opt::StartOffset),
    o(Some('l'), Some("max-length"), true, Opt::MaxLength),
    o(Some('U'), Some("force-share"), false, Opt::ForceShare),
    o(None, Some("output"), true, Opt::Output),
    o(None, Some("object"), true, Opt::Object),
    QEMU_VERSION,
];

fn map_table(dialect: QemuDialect) -> Table {
    by_era(dialect, MAP_OLD, MAP_OLD, MAP_UPSTREAM)
}

/// Reads `map`'s arguments as qemu-img's `img_map` does: the options in
/// order (sizes and, since the rework, `--output` checked as they come),
/// the one file name, then, before the rework, `--output` and the
/// objects. Warnings of the sizes read come before any later failure.
pub(crate) fn parse(argv0: &str, args: &[String], env: Option<&str>) -> Result<Command, Failure> {
    let dialect = chosen_dialect("map", map_table, args, env)?;
    let usage = Usage { argv0, cmd: "map", dialect };
    let table = map_table(dialect);
    let specs = specs_of(table);
    let mut warnings = Vec::new();
    let after = |warnings: &[String], f: Failure| Failure {
        message: format!("{}{}", render_lines(warnings), f.message),
        ..f
    };
    let mut fmt = None;
    let mut output = Output::Human;
    let mut late_output = None;
    let mut start = 0;
    let mut max_length = None;
    let mut objects = Objects::default();
    let mut opts = ImageOpts::default();
    let mut getopt = Getopt::new("map", args, &specs, Order::Permute);
    for found in getopt.by_ref() {
        let (idx, value) = found.map_err(|e| after(&warnings, usage.getopt(&e)))?;
        let value = value.unwrap_or_default();
        match table[idx].1 {
            Opt::Help => return Ok(Command::Print(include_str!("help/map.txt").to_string())),
            Opt::Format => fmt = Some(value),
            Opt::ForceShare => opts.force_share = true,
            Opt::Output if usage.reworked() => {
                output = parse_output(usage, &value).map_err(|f| after(&warnings, f))?;
            }
            Opt::Output => late_output = Some(value),
            // cvtnum's failure already carries the warnings before it.
            Opt::StartOffset => start = cvtnum("start offset", &value, dialect, &mut warnings)?,
            Opt::MaxLength => {
                max_length = Some(cvtnum("max length", &value, dialect, &mut warnings)?);
            }
            Opt::Object => {
                let made = object_option(&mut objects, &value, dialect);
                if let Some(help) = made.map_err(|f| after(&warnings, f))? {
                    return Ok(Command::Print(help));
                }
            }
            Opt::ImageOpts => opts.image_opts = true,
            _ => {}
        }
    }
    let filename = one_filename(usage, getopt.operands()).map_err(|f| after(&warnings, f))?;
    if let Some(value) = late_output {
        output = parse_output_late(&value).map_err(|f| after(&warnings, f))?;
    }
    // Before 6.0 the objects are made here, after the file name.
    if let Some(help) = make_pending(&mut objects, dialect).map_err(|f| after(&warnings, f))? {
        return Ok(Command::Print(format!("{}{help}", render_lines(&warnings))));
    }
    Ok(Command::Map(MapCommand {
        filename,
        fmt,
        output,
        start,
        max_length,
        opts,
        warnings,
        dialect,
    }))
}

/// Opens the image with its backing chain as qemu-img's map does (flags
/// 0), then writes the map to stdout as it is found.
pub(crate) fn execute(m: &MapCommand) -> Result<u8, Failure> {
    err(&render_lines(&m.warnings));
    let target = m.opts.target(&m.filename, m.fmt.as_deref());
    let flags = OpenFlags::READ.in_dialect(m.dialect);
    let (chain, warnings, _format) = Chain::open(target, flags).map_err(|e| open_failure(&e))?;
    err(&render_all(&warnings, PROG));
    let format = match m.output {
        Output::Human => MapFormat::Human,
        Output::Json => MapFormat::Json,
    };
    let request =
        MapRequest { start: m.start, max_length: m.max_length, format, dialect: m.dialect };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(OUTPUT_BUFFER, stdout.lock());
    let result = write_map(&chain, &request, &mut out);
    // What was found before a failure is printed, as qemu-img prints it
    // as it goes.
    let flushed = out.flush();
    match result {
        Ok(()) if flushed.is_ok() => Ok(0),
        // Output that cannot be written: there is no one to tell.
        Ok(()) | Err(MapError::Write(_)) => Ok(1),
        Err(MapError::Metadata(e)) => {
            let mut message = render_all(e.notes(), PROG);
            message.push_str(&format!("{PROG}: {}", MapError::Metadata(e)));
            Err(Failure::new(message))
        }
        Err(e @ MapError::Unmappable) => Err(Failure::new(format!("{PROG}: {e}"))),
    }
}
