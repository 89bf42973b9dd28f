//! `measure`: qemu-img's `img_measure` command line (its option tables
//! per era, its checks in its order, its messages), then the block
//! layer's measurement ([`instar_block::measure`]) of a size or of an
//! opened image, printed as qemu-img prints a `BlockMeasureInfo`.

use super::{
    by_era, chosen_dialect, cvtnum, err, make_pending, o, object_option, open_failure, out,
    parse_output, parse_output_late, render_lines, specs_of, Command, Failure, ImageOpts, Opt,
    Output, Table, Usage, PROG, QEMU_VERSION,
};
use crate::getopt::{Getopt, Order};
use instar_block::{Chain, MeasureArgs, MeasureError};
use instar_core::diag::render_all;
use instar_core::object::Objects;
use instar_core::opts::{OptDesc, OptType, Options};
use instar_core::{Measurement, OpenFlags, QemuDialect, SnapshotRef};

/// The prefix that makes `-l` an option list (`SNAPSHOT_OPT_BASE`).
const SNAPSHOT_OPT_BASE: &str = "snapshot.";

/// The options of an `-l snapshot.id=...,snapshot.name=...` list
/// (`internal_snapshot_opts`).
const SNAPSHOT_OPTS: &[OptDesc] = &[
    OptDesc::new("snapshot.id", OptType::Str, "Enable internal snapshot by id"),
    OptDesc::new("snapshot.name", OptType::Str, "Enable internal snapshot by name"),
];

/// `-l`: a snapshot named by ID or name, or by an option list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Snapshot {
    /// `-l X`.
    IdOrName(String),
    /// `-l snapshot.id=I,snapshot.name=N`.
    Exact {
        /// `snapshot.id`.
        id: Option<String>,
        /// `snapshot.name`.
        name: Option<String>,
    },
}

impl Snapshot {
    pub(crate) fn as_ref(&self) -> SnapshotRef<'_> {
        match self {
            Snapshot::IdOrName(x) => SnapshotRef::IdOrName(x),
            Snapshot::Exact { id, name } => {
                SnapshotRef::Exact { id: id.as_deref(), name: name.as_deref() }
            }
        }
    }
}

/// `measure`, its command line read.
#[derive(Debug)]
pub struct MeasureCommand {
    /// The source image, if one is measured.
    pub filename: Option<String>,
    /// `-f`.
    pub fmt: Option<String>,
    /// `-l`.
    pub snapshot: Option<Snapshot>,
    /// `-O` (raw when not given).
    pub out_fmt: String,
    /// `-o`, the lists given joined by commas.
    pub options: Option<String>,
    /// `--size`.
    pub size: Option<u64>,
    /// `--output`.
    pub output: Output,
    /// `--image-opts` and `-U`.
    pub opts: ImageOpts,
    /// The secrets `--object` made.
    pub objects: Objects,
    /// What reading the sizes warned (without the program name).
    pub warnings: Vec<String>,
    /// `--qemu-version`: whose messages.
    pub dialect: QemuDialect,
}

/// `measure`'s options before the rework: `-f`, `-O`, `-o`, `-l` and
/// `-U` short only, `--size` long only.
const MEASURE_OLD: Table = &[
    o(Some('h'), Some("help"), false, Opt::Help),
    o(None, Some("image-opts"), false, Opt::ImageOpts),
    o(None, Some("object"), true, Opt::Object),
    o(None, Some("output"), true, Opt::Output),
    o(None, Some("size"), true, Opt::Size),
    o(Some('U'), Some("force-share"), false, Opt::ForceShare),
    o(Some('f'), None, true, Opt::Format),
    o(Some('O'), None, true, Opt::TargetFormat),
    o(Some('o'), None, true, Opt::Options),
    o(Some('l'), None, true, Opt::Snapshot),
    QEMU_VERSION,
];

/// `measure`'s options in Debian's rework: long names for `-f`, `-O`,
/// `-o` and `-l`, still no `-s` (measured: the order glibc lists them in
/// for an ambiguous `--o`, `--f` and `--s`).
const MEASURE_DEBIAN: Table = &[
    o(Some('h'), Some("help"), false, Opt::Help),
    o(Some('f'), Some("format"), true, Opt::Format),
    o(None, Some("image-opts"), false, Opt::ImageOpts),
    o(Some('l'), Some("snapshot"), true, Opt::Snapshot),
    o(Some('O'), Some("target-format"), true, Opt::TargetFormat),
    o(Some('o'), Some("options"), true, Opt::Options),
    o(None, Some("object"), true, Opt::Object),
    o(None, Some("output"), true, Opt::Output),
    o(None, Some("size"), true, Opt::Size),
    o(Some('U'), Some("force-share"), false, Opt::ForceShare),
    QEMU_VERSION,
];

/// `measure`'s options in upstream's rework: convert's names as second
/// names, and `-s`.
const MEASURE_UPSTREAM: Table = &[
    o(Some('h'), Some("help"), false, Opt::Help),
    o(Some('f'), Some("source-format"), true, Opt::Format),
    o(Some('f'), Some("format"), true, Opt::Format),
    o(None, Some("image-opts"), false, Opt::ImageOpts),
    o(None, Some("source-image-opts"), false, Opt::ImageOpts),
    o(Some('l'), Some("snapshot"), true, Opt::Snapshot),
    o(Some('O'), Some("target-format"), true, Opt::TargetFormat),
    o(Some('o'), Some("target-format-options"), true, Opt::Options),
    o(Some('o'), Some("options"), true, Opt::Options),
    o(Some('U'), Some("force-share"), false, Opt::ForceShare),
    o(None, Some("output"), true, Opt::Output),
    o(None, Some("object"), true, Opt::Object),
    o(Some('s'), Some("size"), true, Opt::Size),
    QEMU_VERSION,
];

fn measure_table(dialect: QemuDialect) -> Table {
    by_era(dialect, MEASURE_OLD, MEASURE_DEBIAN, MEASURE_UPSTREAM)
}

/// `-l`'s value: an option list when it starts with `snapshot.`, with
/// qemu's two messages for one it cannot parse.
pub(crate) fn parse_snapshot(value: &str) -> Result<Snapshot, Failure> {
    if !value.starts_with(SNAPSHOT_OPT_BASE) {
        return Ok(Snapshot::IdOrName(value.to_string()));
    }
    let mut opts = Options::new(&[SNAPSHOT_OPTS]);
    opts.parse(value).map_err(|e| {
        Failure::new(format!("{PROG}: {e}\n{PROG}: Failed in parsing snapshot param '{value}'"))
    })?;
    Ok(Snapshot::Exact {
        id: opts.get_str("snapshot.id").map(str::to_string),
        name: opts.get_str("snapshot.name").map(str::to_string),
    })
}

/// Reads `measure`'s arguments as qemu-img's `img_measure` does: each
/// option checked as it comes (the option list, `-l`, `--output`,
/// `--size`, the objects from 6.0), then the file name and the size
/// against each other.
pub(crate) fn parse(argv0: &str, args: &[String], env: Option<&str>) -> Result<Command, Failure> {
    let dialect = chosen_dialect("measure", measure_table, args, env)?;
    let usage = Usage { argv0, cmd: "measure", dialect };
    let table = measure_table(dialect);
    let specs = specs_of(table);
    let mut warnings = Vec::new();
    let after = |warnings: &[String], f: Failure| Failure {
        message: format!("{}{}", render_lines(warnings), f.message),
        ..f
    };
    let mut m = MeasureCommand {
        filename: None,
        fmt: None,
        snapshot: None,
        out_fmt: "raw".to_string(),
        options: None,
        size: None,
        output: Output::Human,
        opts: ImageOpts::default(),
        objects: Objects::default(),
        warnings: Vec::new(),
        dialect,
    };
    let help = || include_str!("help/measure.txt").to_string();
    let mut getopt = Getopt::new("measure", args, &specs, Order::Permute);
    for found in getopt.by_ref() {
        let (idx, value) = match found {
            Ok(f) => f,
            // Before the rework, a getopt error is a request for help:
            // glibc's message, then the help, and success.
            Err(e) if !usage.reworked() => {
                return Ok(Command::Diagnosed {
                    stderr: format!("{}measure: {}\n", render_lines(&warnings), e.report),
                    stdout: help(),
                })
            }
            Err(e) => return Err(after(&warnings, usage.getopt(&e))),
        };
        let value = value.unwrap_or_default();
        match table[idx].1 {
            Opt::Help => {
                err(&render_lines(&warnings));
                return Ok(Command::Print(help()));
            }
            Opt::Format => m.fmt = Some(value),
            Opt::TargetFormat => m.out_fmt = value,
            Opt::Options => {
                if !instar_core::opts::is_valid_option_list(&value) {
                    let f = Failure::new(format!("{PROG}: Invalid option list: {value}"));
                    return Err(after(&warnings, f));
                }
                m.options = Some(match m.options.take() {
                    Some(old) => format!("{old},{value}"),
                    None => value,
                });
            }
            Opt::Snapshot => {
                m.snapshot = Some(parse_snapshot(&value).map_err(|f| after(&warnings, f))?);
            }
            Opt::ForceShare => m.opts.force_share = true,
            Opt::Object => {
                let made = object_option(&mut m.objects, &value, dialect);
                if let Some(help) = made.map_err(|f| after(&warnings, f))? {
                    return Ok(Command::Print(help));
                }
            }
            Opt::ImageOpts => m.opts.image_opts = true,
            Opt::Output if usage.reworked() => {
                m.output = parse_output(usage, &value).map_err(|f| after(&warnings, f))?;
            }
            // Before the rework measure checks `--output` as it meets it,
            // with the words other commands use after the file name.
            Opt::Output => {
                m.output = parse_output_late(&value).map_err(|f| after(&warnings, f))?;
            }
            // cvtnum's failure already carries the warnings before it.
            Opt::Size => m.size = Some(cvtnum("image size", &value, dialect, &mut warnings)?),
            _ => {}
        }
    }
    // Before 6.0 the objects are made after the options.
    if let Some(help) = make_pending(&mut m.objects, dialect).map_err(|f| after(&warnings, f))? {
        return Ok(Command::Print(format!("{}{help}", render_lines(&warnings))));
    }
    let plain = |text: &str| after(&warnings, Failure::new(format!("{PROG}: {text}")));
    let operands = getopt.operands();
    if operands.len() > 1 {
        return Err(plain("At most one filename argument is allowed."));
    }
    m.filename = operands.first().cloned();
    let has_file = m.filename.is_some();
    if !has_file && (m.opts.image_opts || m.fmt.is_some() || m.snapshot.is_some()) {
        return Err(plain("--image-opts, -f, and -l require a filename argument."));
    }
    if has_file && m.size.is_some() {
        return Err(plain("--size N cannot be used together with a filename."));
    }
    if !has_file && m.size.is_none() {
        return Err(plain("Either --size N or one filename must be specified."));
    }
    m.warnings = warnings;
    Ok(Command::Measure(Box::new(m)))
}

/// qemu-img's two ways of printing a measurement; `bitmaps` first in
/// JSON, where qemu's dictionary order puts it.
fn render(m: &Measurement, output: Output) -> String {
    match output {
        Output::Human => {
            let mut text = format!(
                "required size: {}\nfully allocated size: {}\n",
                m.required, m.fully_allocated
            );
            if let Some(b) = m.bitmaps {
                text.push_str(&format!("bitmaps size: {b}\n"));
            }
            text
        }
        Output::Json => {
            let mut text = String::from("{\n");
            if let Some(b) = m.bitmaps {
                text.push_str(&format!("    \"bitmaps\": {b},\n"));
            }
            text.push_str(&format!(
                "    \"required\": {},\n    \"fully-allocated\": {}\n}}\n",
                m.required, m.fully_allocated
            ));
            text
        }
    }
}

/// Opens the source (if any) as qemu-img's measure does (flags 0, its
/// backing chain with it), shows it as the snapshot asked for, and
/// prints the measurement.
pub(crate) fn execute(m: &MeasureCommand) -> Result<u8, Failure> {
    err(&render_lines(&m.warnings));
    let mut chain = None;
    if let Some(filename) = &m.filename {
        let target = m.opts.target(filename, m.fmt.as_deref());
        let flags = OpenFlags::READ.in_dialect(m.dialect);
        let (mut opened, warnings, format) =
            Chain::open(target, flags).map_err(|e| open_failure(&e))?;
        err(&render_all(&warnings, PROG));
        if let Some(snapshot) = &m.snapshot {
            opened
                .load_snapshot(format.name(), snapshot.as_ref())
                .map_err(|e| Failure::new(format!("{PROG}: Failed to load snapshot: {e}")))?;
        }
        chain = Some(opened);
    }
    let args = MeasureArgs {
        out_fmt: &m.out_fmt,
        options: m.options.as_deref(),
        size: m.size,
        dialect: m.dialect,
    };
    let result = instar_block::measure(&args, chain.as_ref(), &m.objects);
    if let Some(c) = &chain {
        err(&render_all(&c.take_printed(), PROG));
    }
    let measured = result.map_err(|e| {
        let mut message = match &e {
            MeasureError::Format(x) | MeasureError::Options(x, _) | MeasureError::Measure(x) => {
                render_all(x.notes(), PROG)
            }
        };
        message.push_str(&format!("{PROG}: {e}"));
        if let MeasureError::Options(_, fmt) = &e {
            message.push_str(&format!("\n{PROG}: Invalid options for file format '{fmt}'"));
        }
        Failure::new(message)
    })?;
    out(&render(&measured, m.output));
    Ok(0)
}
