//! `convert`: qemu-img's `img_convert` command line (its option tables
//! per era, the checks it makes before it opens anything, in its order,
//! with its messages), then the opening of the sources and the block
//! layer's convert ([`instar_block::convert`]), which prints progress and
//! warnings as it goes.

use super::{
    by_era, chosen_dialect, cvtnum, err, make_pending, o, object_option, out, render_lines,
    specs_of, Command, Failure, ImageOpts, Opt, Table, Usage, CACHE_MODES, PROG, QEMU_VERSION,
};
use crate::getopt::{Getopt, Order};
use crate::measure::{parse_snapshot, Snapshot};
use instar_block::convert::{ConvertArgs, ConvertFailure, ConvertOutput, DEFAULT_MIN_SPARSE};
use instar_block::Chain;
use instar_core::diag::render_all;
use instar_core::dialect::{CONVERT_BACKING_FORMAT_OPTION, CONVERT_SKIP_BROKEN_BITMAPS};
use instar_core::object::Objects;
use instar_core::{Diagnostic, OpenFlags, QemuDialect};

/// qemu-img's `MAX_BUF_SECTORS`: `-S` may be at most this many sectors.
const MAX_SPARSE_SECTORS: u64 = 32768;

/// qemu-img's `MAX_COROUTINES`: `-m` is 1 to 16.
const MAX_COROUTINES: i64 = 16;

/// `convert`, its command line read and checked.
#[derive(Debug)]
pub struct ConvertCommand {
    /// The source images, in order.
    pub sources: Vec<String>,
    /// `-f`.
    pub fmt: Option<String>,
    /// `-l`.
    pub snapshot: Option<Snapshot>,
    /// `--image-opts` and `-U` for the sources.
    pub opts: ImageOpts,
    /// What the block layer does with the target.
    pub args: ConvertArgs,
    /// The secrets `--object` made.
    pub objects: Objects,
    /// What reading the sizes warned (without the program name).
    pub warnings: Vec<String>,
}

/// `convert`'s options in 5.2: no `-F`, no `--skip-broken-bitmaps`.
const CONVERT_52: Table = &[
    o(Some('h'), Some("help"), false, Opt::Help),
    o(None, Some("object"), true, Opt::Object),
    o(None, Some("image-opts"), false, Opt::ImageOpts),
    o(Some('U'), Some("force-share"), false, Opt::ForceShare),
    o(None, Some("target-image-opts"), false, Opt::TargetImageOpts),
    o(None, Some("salvage"), false, Opt::Salvage),
    o(None, Some("target-is-zero"), false, Opt::TargetIsZero),
    o(None, Some("bitmaps"), false, Opt::Bitmaps),
    o(Some('f'), None, true, Opt::Format),
    o(Some('O'), None, true, Opt::TargetFormat),
    o(Some('B'), None, true, Opt::Backing),
    o(Some('C'), None, false, Opt::CopyRange),
    o(Some('c'), None, false, Opt::Compress),
    o(Some('o'), None, true, Opt::Options),
    o(Some('l'), None, true, Opt::Snapshot),
    o(Some('S'), None, true, Opt::Sparse),
    o(Some('p'), None, false, Opt::Progress),
    o(Some('t'), None, true, Opt::TargetCache),
    o(Some('T'), None, true, Opt::Cache),
    o(Some('q'), None, false, Opt::Quiet),
    o(Some('n'), None, false, Opt::NoCreate),
    o(Some('m'), None, true, Opt::Parallel),
    o(Some('W'), None, false, Opt::OutOfOrder),
    o(Some('r'), None, true, Opt::RateLimit),
    QEMU_VERSION,
];

/// `convert`'s options in 6.1: `-F` added.
const CONVERT_61: Table = &[
    o(Some('h'), Some("help"), false, Opt::Help),
    o(None, Some("object"), true, Opt::Object),
    o(None, Some("image-opts"), false, Opt::ImageOpts),
    o(Some('U'), Some("force-share"), false, Opt::ForceShare),
    o(None, Some("target-image-opts"), false, Opt::TargetImageOpts),
    o(None, Some("salvage"), false, Opt::Salvage),
    o(None, Some("target-is-zero"), false, Opt::TargetIsZero),
    o(None, Some("bitmaps"), false, Opt::Bitmaps),
    o(Some('f'), None, true, Opt::Format),
    o(Some('O'), None, true, Opt::TargetFormat),
    o(Some('B'), None, true, Opt::Backing),
    o(Some('C'), None, false, Opt::CopyRange),
    o(Some('c'), None, false, Opt::Compress),
    o(Some('F'), None, true, Opt::BackingFormat),
    o(Some('o'), None, true, Opt::Options),
    o(Some('l'), None, true, Opt::Snapshot),
    o(Some('S'), None, true, Opt::Sparse),
    o(Some('p'), None, false, Opt::Progress),
    o(Some('t'), None, true, Opt::TargetCache),
    o(Some('T'), None, true, Opt::Cache),
    o(Some('q'), None, false, Opt::Quiet),
    o(Some('n'), None, false, Opt::NoCreate),
    o(Some('m'), None, true, Opt::Parallel),
    o(Some('W'), None, false, Opt::OutOfOrder),
    o(Some('r'), None, true, Opt::RateLimit),
    QEMU_VERSION,
];

/// `convert`'s options from 6.2 to the rework: `--skip-broken-bitmaps`
/// added.
const CONVERT_OLD: Table = &[
    o(Some('h'), Some("help"), false, Opt::Help),
    o(None, Some("object"), true, Opt::Object),
    o(None, Some("image-opts"), false, Opt::ImageOpts),
    o(Some('U'), Some("force-share"), false, Opt::ForceShare),
    o(None, Some("target-image-opts"), false, Opt::TargetImageOpts),
    o(None, Some("salvage"), false, Opt::Salvage),
    o(None, Some("target-is-zero"), false, Opt::TargetIsZero),
    o(None, Some("bitmaps"), false, Opt::Bitmaps),
    o(None, Some("skip-broken-bitmaps"), false, Opt::SkipBrokenBitmaps),
    o(Some('f'), None, true, Opt::Format),
    o(Some('O'), None, true, Opt::TargetFormat),
    o(Some('B'), None, true, Opt::Backing),
    o(Some('C'), None, false, Opt::CopyRange),
    o(Some('c'), None, false, Opt::Compress),
    o(Some('F'), None, true, Opt::BackingFormat),
    o(Some('o'), None, true, Opt::Options),
    o(Some('l'), None, true, Opt::Snapshot),
    o(Some('S'), None, true, Opt::Sparse),
    o(Some('p'), None, false, Opt::Progress),
    o(Some('t'), None, true, Opt::TargetCache),
    o(Some('T'), None, true, Opt::Cache),
    o(Some('q'), None, false, Opt::Quiet),
    o(Some('n'), None, false, Opt::NoCreate),
    o(Some('m'), None, true, Opt::Parallel),
    o(Some('W'), None, false, Opt::OutOfOrder),
    o(Some('r'), None, true, Opt::RateLimit),
    QEMU_VERSION,
];

/// `convert`'s options in Debian's rework (measured: the order glibc
/// lists them in for an ambiguous `--`). The help also shows
/// `--target-format`, `--compress`, `--no-create` and `--progress`, which
/// this table lacks: qemu-img refuses them, and so does instar.
const CONVERT_DEBIAN: Table = &[
    o(Some('h'), Some("help"), false, Opt::Help),
    o(Some('q'), Some("quiet"), false, Opt::Quiet),
    o(None, Some("object"), true, Opt::Object),
    o(None, Some("image-opts"), false, Opt::ImageOpts),
    o(None, Some("source-image-opts"), false, Opt::ImageOpts),
    o(Some('f'), Some("source-format"), true, Opt::Format),
    o(Some('T'), Some("source-cache"), true, Opt::Cache),
    o(Some('l'), Some("snapshot"), true, Opt::Snapshot),
    o(Some('S'), Some("sparse-size"), true, Opt::Sparse),
    o(Some('O'), Some("output-format"), true, Opt::TargetFormat),
    o(Some('o'), Some("options"), true, Opt::Options),
    o(Some('t'), Some("output-cache"), true, Opt::TargetCache),
    o(Some('B'), Some("backing"), true, Opt::Backing),
    o(Some('F'), Some("backing-format"), true, Opt::BackingFormat),
    o(Some('U'), Some("force-share"), false, Opt::ForceShare),
    o(None, Some("target-image-opts"), false, Opt::TargetImageOpts),
    o(None, Some("salvage"), false, Opt::Salvage),
    o(None, Some("target-is-zero"), false, Opt::TargetIsZero),
    o(None, Some("bitmaps"), false, Opt::Bitmaps),
    o(None, Some("skip-broken-bitmaps"), false, Opt::SkipBrokenBitmaps),
    o(Some('r'), Some("rate"), true, Opt::RateLimit),
    o(Some('m'), Some("parallel"), true, Opt::Parallel),
    o(Some('W'), Some("oob-writes"), false, Opt::OutOfOrder),
    o(Some('C'), Some("copy-range-offloading"), false, Opt::CopyRange),
    o(Some('c'), None, false, Opt::Compress),
    o(Some('n'), None, false, Opt::NoCreate),
    o(Some('p'), None, false, Opt::Progress),
    QEMU_VERSION,
];

/// `convert`'s options in upstream's rework: `-b` for the backing file
/// (`-B` still accepted), long names for every option.
const CONVERT_UPSTREAM: Table = &[
    o(Some('h'), Some("help"), false, Opt::Help),
    o(Some('f'), Some("source-format"), true, Opt::Format),
    o(None, Some("image-opts"), false, Opt::ImageOpts),
    o(Some('T'), Some("source-cache"), true, Opt::Cache),
    o(Some('l'), Some("snapshot"), true, Opt::Snapshot),
    o(None, Some("bitmaps"), false, Opt::Bitmaps),
    o(None, Some("skip-broken-bitmaps"), false, Opt::SkipBrokenBitmaps),
    o(None, Some("salvage"), false, Opt::Salvage),
    o(Some('O'), Some("target-format"), true, Opt::TargetFormat),
    o(None, Some("target-image-opts"), false, Opt::TargetImageOpts),
    o(Some('o'), Some("target-format-options"), true, Opt::Options),
    o(Some('t'), Some("target-cache"), true, Opt::TargetCache),
    o(Some('b'), Some("backing"), true, Opt::Backing),
    o(Some('F'), Some("backing-format"), true, Opt::BackingFormat),
    o(Some('S'), Some("sparse-size"), true, Opt::Sparse),
    o(Some('n'), Some("no-create"), false, Opt::NoCreate),
    o(None, Some("target-is-zero"), false, Opt::TargetIsZero),
    o(Some('U'), Some("force-share"), false, Opt::ForceShare),
    o(Some('r'), Some("rate-limit"), true, Opt::RateLimit),
    o(Some('m'), Some("parallel"), true, Opt::Parallel),
    o(Some('W'), Some("oob-writes"), false, Opt::OutOfOrder),
    o(Some('C'), Some("copy-range-offloading"), false, Opt::CopyRange),
    o(Some('p'), Some("progress"), false, Opt::Progress),
    o(Some('q'), Some("quiet"), false, Opt::Quiet),
    o(None, Some("object"), true, Opt::Object),
    o(Some('B'), None, true, Opt::Backing),
    o(Some('c'), None, false, Opt::Compress),
    QEMU_VERSION,
];

fn convert_table(dialect: QemuDialect) -> Table {
    let old = if !dialect.since(CONVERT_BACKING_FORMAT_OPTION) {
        CONVERT_52
    } else if !dialect.since(CONVERT_SKIP_BROKEN_BITMAPS) {
        CONVERT_61
    } else {
        CONVERT_OLD
    };
    by_era(dialect, old, CONVERT_DEBIAN, CONVERT_UPSTREAM)
}

/// A number of `-m` or `-r` that qemu-img refused, worded per era.
fn bad_coroutines(usage: Usage<'_>, value: &str, parsed: bool) -> Failure {
    let text = if !usage.reworked() {
        format!("Invalid number of coroutines. Allowed number of coroutines is between 1 and {MAX_COROUTINES}")
    } else if parsed {
        format!("Invalid number of coroutines specified. Must be between 1 and {MAX_COROUTINES}.")
    } else {
        let stop = if usage.dialect.since(instar_core::dialect::OPTIONS_REWORK_UPSTREAM) {
            ""
        } else {
            "."
        };
        format!("Invalid number of coroutines specified: '{value}'{stop}")
    };
    Failure::new(format!("{PROG}: {text}"))
}

/// C's `strtol(text, &end, 0)` over the whole text: decimal, `0x` hex or
/// `0` octal, with a sign.
fn strtol_whole(text: &str) -> Option<i64> {
    let t = text.trim_start();
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (radix, digits) = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        (16, h)
    } else if t.len() > 1 && t.starts_with('0') {
        (8, &t[1..])
    } else {
        (10, t)
    };
    let v = i64::from_str_radix(digits, radix).ok()?;
    Some(if neg { -v } else { v })
}

/// Reads `convert`'s arguments as qemu-img's `img_convert` does: each
/// option checked as it comes, then the combinations, in its order.
pub(crate) fn parse(argv0: &str, args: &[String], env: Option<&str>) -> Result<Command, Failure> {
    let dialect = chosen_dialect("convert", convert_table, args, env)?;
    let usage = Usage { argv0, cmd: "convert", dialect };
    let table = convert_table(dialect);
    let specs = specs_of(table);
    let mut warnings = Vec::new();
    let after = |warnings: &[String], f: Failure| Failure {
        message: format!("{}{}", render_lines(warnings), f.message),
        ..f
    };
    let mut a = ConvertArgs {
        min_sparse: DEFAULT_MIN_SPARSE,
        cache: "unsafe".to_string(),
        dialect,
        ..ConvertArgs::default()
    };
    let mut fmt = None;
    let mut out_fmt = None;
    let mut snapshot = None;
    let mut opts = ImageOpts::default();
    let mut objects = Objects::default();
    let mut src_cache = "writeback".to_string();
    let mut explicit_sparse = false;
    let mut copy_range = false;
    let mut target_image_opts = false;
    let mut getopt = Getopt::new("convert", args, &specs, Order::Permute);
    for found in getopt.by_ref() {
        let (idx, value) = found.map_err(|e| after(&warnings, usage.getopt(&e)))?;
        let value = value.unwrap_or_default();
        match table[idx].1 {
            Opt::Help if usage.reworked() => {
                err(&render_lines(&warnings));
                return Ok(Command::Print(include_str!("help/convert.txt").to_string()));
            }
            Opt::Help => {
                err(&render_lines(&warnings));
                return Ok(Command::Print(include_str!("help/main.txt").to_string()));
            }
            Opt::Format => fmt = Some(value),
            Opt::TargetFormat => out_fmt = Some(value),
            Opt::Backing => a.backing = Some(value),
            Opt::BackingFormat => a.backing_fmt = Some(value),
            Opt::Compress => a.compress = true,
            Opt::CopyRange => copy_range = true,
            Opt::Options => {
                if !instar_core::opts::is_valid_option_list(&value) {
                    let f = Failure::new(format!("{PROG}: Invalid option list: {value}"));
                    return Err(after(&warnings, f));
                }
                a.options = Some(match a.options.take() {
                    Some(old) => format!("{old},{value}"),
                    None => value,
                });
            }
            Opt::Snapshot => {
                snapshot = Some(parse_snapshot(&value).map_err(|f| after(&warnings, f))?);
            }
            Opt::Sparse => {
                let what = "buffer size for sparse output";
                let bytes = cvtnum(what, &value, dialect, &mut warnings)?;
                if bytes % 512 != 0 || bytes / 512 > MAX_SPARSE_SECTORS {
                    let f = Failure::new(format!(
                        "{PROG}: Invalid buffer size for sparse output specified. Valid sizes \
                         are multiples of 512 up to 16777216. Select 0 to disable sparse \
                         detection (fully allocates output)."
                    ));
                    return Err(after(&warnings, f));
                }
                a.min_sparse = bytes / 512;
                explicit_sparse = true;
            }
            Opt::Progress => a.progress = true,
            Opt::TargetCache => a.cache = value,
            Opt::Cache => src_cache = value,
            Opt::Quiet => a.quiet = true,
            Opt::NoCreate => a.no_create = true,
            Opt::Parallel => match strtol_whole(&value) {
                Some(n) if (1..=MAX_COROUTINES).contains(&n) => {
                    a.coroutines = u64::try_from(n).ok();
                }
                parsed => {
                    return Err(after(&warnings, bad_coroutines(usage, &value, parsed.is_some())))
                }
            },
            Opt::ForceShare => opts.force_share = true,
            Opt::RateLimit => {
                cvtnum("rate limit", &value, dialect, &mut warnings)?;
            }
            Opt::Object => {
                let made = object_option(&mut objects, &value, dialect);
                if let Some(help) = made.map_err(|f| after(&warnings, f))? {
                    return Ok(Command::Print(help));
                }
            }
            Opt::ImageOpts => opts.image_opts = true,
            Opt::TargetImageOpts => target_image_opts = true,
            Opt::Salvage => a.salvage = true,
            Opt::TargetIsZero => a.target_is_zero = true,
            Opt::Bitmaps => a.bitmaps = true,
            Opt::SkipBrokenBitmaps => a.skip_broken_bitmaps = true,
            _ => {}
        }
    }
    if let Some(help) = make_pending(&mut objects, dialect).map_err(|f| after(&warnings, f))? {
        return Ok(Command::Print(format!("{}{help}", render_lines(&warnings))));
    }
    let plain = |text: &str| after(&warnings, Failure::new(format!("{PROG}: {text}")));
    if out_fmt.is_none() && !target_image_opts {
        out_fmt = Some("raw".to_string());
    }
    if a.skip_broken_bitmaps && !a.bitmaps {
        return Err(plain("Use of --skip-broken-bitmaps requires --bitmaps"));
    }
    if copy_range && a.compress {
        return Err(plain("Cannot enable copy offloading when -c is used"));
    }
    if copy_range && explicit_sparse {
        return Err(plain("Cannot enable copy offloading when -S is used"));
    }
    if copy_range && a.salvage {
        return Err(plain("Cannot use copy offloading in salvaging mode"));
    }
    if target_image_opts && !a.no_create {
        return Err(plain("--target-image-opts requires use of -n flag"));
    }
    if a.no_create && a.options.is_some() {
        return Err(plain("-o has no effect when skipping image creation"));
    }
    if a.target_is_zero && !a.no_create {
        return Err(plain("--target-is-zero requires use of -n flag"));
    }
    let operands = getopt.operands();
    if let Some(list) = &a.options {
        if instar_core::opts::has_help_option(list, dialect) {
            return match out_fmt {
                Some(fmt) => Ok(Command::OptionHelp {
                    fmt,
                    filename: (operands.len() >= 2).then(|| operands[operands.len() - 1].clone()),
                    dialect,
                }),
                None => Err(plain("Option help requires a format be specified")),
            };
        }
    }
    let Some((target, sources)) = operands.split_last().filter(|(_, s)| !s.is_empty()) else {
        return Err(plain("Must specify image file name"));
    };
    if !CACHE_MODES.contains(&src_cache.as_str()) {
        return Err(plain(&format!("Invalid source cache option: {src_cache}")));
    }
    a.target = target.clone();
    a.out_fmt = out_fmt.unwrap_or_default();
    a.force_share = opts.force_share;
    a.target_image_opts = target_image_opts;
    Ok(Command::Convert(Box::new(ConvertCommand {
        sources: sources.to_vec(),
        fmt,
        snapshot,
        opts,
        args: a,
        objects,
        warnings,
    })))
}

/// Prints as the block layer's convert goes: stdout and stderr at once,
/// as qemu-img flushes them.
struct Printer;

impl ConvertOutput for Printer {
    fn stdout(&mut self, text: &str) {
        out(text);
    }

    fn stderr(&mut self, line: Diagnostic) {
        err(&line.render(PROG));
    }
}

/// Opens the sources as qemu-img's convert does (in order, each with its
/// backing chain), shows the first as the snapshot asked for, and runs
/// the block layer's convert.
pub(crate) fn execute(c: &ConvertCommand) -> Result<u8, Failure> {
    err(&render_lines(&c.warnings));
    let mut printer = Printer;
    let open = |output: &mut dyn ConvertOutput| -> Result<Vec<Chain>, ConvertFailure> {
        let flags = OpenFlags::READ.in_dialect(c.args.dialect);
        let mut chains = Vec::with_capacity(c.sources.len());
        let mut first_format = None;
        for name in &c.sources {
            let target = c.opts.target(name, c.fmt.as_deref());
            let (chain, warnings, format) = Chain::open(target, flags).map_err(|e| {
                let mut lines = e.notes().to_vec();
                lines.push(Diagnostic::Reported(e.to_string()));
                ConvertFailure { lines, code: 1 }
            })?;
            for w in warnings {
                output.stderr(w);
            }
            first_format.get_or_insert(format.name());
            chains.push(chain);
        }
        if let Some(snapshot) = &c.snapshot {
            if chains.len() > 1 && matches!(snapshot, Snapshot::IdOrName(_)) {
                return Err(ConvertFailure {
                    lines: vec![Diagnostic::Reported(
                        "No support for concatenating multiple snapshot".to_string(),
                    )],
                    code: 1,
                });
            }
            let format = first_format.unwrap_or_default();
            chains[0].load_snapshot(format, snapshot.as_ref()).map_err(|e| ConvertFailure {
                lines: vec![Diagnostic::Reported(format!("Failed to load snapshot: {e}"))],
                code: 1,
            })?;
        }
        Ok(chains)
    };
    match instar_block::convert::convert(&c.args, &open, &mut printer) {
        Ok(()) => Ok(0),
        Err(f) => {
            let text = render_all(&f.lines, PROG);
            err(&text);
            Ok(f.code)
        }
    }
}
