//! Command-line parsing as GNU `getopt_long` does it, which qemu-img uses,
//! down to the state it leaves behind: options and operands may be mixed
//! (getopt permutes the operands to the end, lazily, as it goes), `--`
//! ends the options, short options cluster (`-qf qcow2`, `-fqcow2`), long
//! options take `=value` or the next argument and may be abbreviated to
//! any unambiguous prefix.
//!
//! [`Getopt`] hands the options out one at a time, so that a command can
//! act on each before getopt looks at the next, as qemu-img does (an
//! invalid `-o` list before an unknown option is reported first). An error
//! carries what glibc prints ([`GetoptError::report`]) and the argument
//! `argv[optind - 1]` names at that moment ([`GetoptError::element`]):
//! qemu-img before its option rework silenced getopt and named that
//! argument itself, which is not always the offending one (an unknown
//! option that is not the last of its cluster leaves `optind` on the
//! argument before it).
//!
//! Arguments are bytes (carried as [`rawtext`] strings): getopt compares
//! and splits them byte by byte.

use instar_core::rawtext;

/// One option a command accepts.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// The short letter, if any.
    pub short: Option<char>,
    /// The long name, if any.
    pub long: Option<&'static str>,
    /// Whether the option takes a value.
    pub takes_value: bool,
    /// An option of instar's own: matched by its exact long name only,
    /// never as an abbreviation, so that every abbreviation means what it
    /// means to qemu-img.
    pub own: bool,
}

/// A qemu-img option.
pub const fn spec(short: Option<char>, long: Option<&'static str>, takes_value: bool) -> Spec {
    Spec { short, long, takes_value, own: false }
}

/// An option of instar's own (long, matched exactly).
pub const fn own(long: &'static str, takes_value: bool) -> Spec {
    Spec { short: None, long: Some(long), takes_value, own: true }
}

/// How getopt treats operands before options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Options may follow operands (the default): operands are permuted
    /// to the end.
    Permute,
    /// The first operand ends the options (a `+` optstring, qemu-img's
    /// own options before the command).
    RequireOrder,
}

/// What getopt found wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A short option that is not in the table (the byte).
    UnknownShort(u8),
    /// A short option without its value at the end of the arguments.
    MissingShortValue(u8),
    /// A long option that matches nothing.
    UnknownLong,
    /// A long option abbreviated to a prefix of several (their names, in
    /// table order).
    Ambiguous(Vec<&'static str>),
    /// A long option without a value given `=value`.
    UnexpectedValue(&'static str),
    /// A long option without its value at the end of the arguments.
    MissingLongValue(&'static str),
}

/// A getopt failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetoptError {
    /// What was wrong.
    pub problem: Problem,
    /// What glibc prints after `<program>: ` (without newline).
    pub report: String,
    /// `argv[optind - 1]` when getopt returned the error, in the
    /// arguments as permuted so far: the argument qemu-img before its
    /// option rework names.
    pub element: String,
}

impl GetoptError {
    /// Whether a silent getopt (an optstring starting with `:`) returns
    /// `:` (a missing value) for this error rather than `?`.
    pub fn is_missing_value(&self) -> bool {
        matches!(self.problem, Problem::MissingShortValue(_) | Problem::MissingLongValue(_))
    }
}

/// One option found: its index in the table and its value.
pub type Found = (usize, Option<String>);

/// getopt's state over one argument vector.
#[derive(Debug)]
pub struct Getopt<'a> {
    /// The arguments as getopt permutes them; `argv[0]` is the program
    /// (or the command) name.
    argv: Vec<String>,
    specs: &'a [Spec],
    order: Order,
    optind: usize,
    /// Inside a cluster of short options: the argument and the byte
    /// offset of the next option letter.
    next: Option<(usize, usize)>,
    first_nonopt: usize,
    last_nonopt: usize,
    done: bool,
}

impl<'a> Getopt<'a> {
    /// getopt over `argv0` (`argv[0]`) and `args`.
    pub fn new(argv0: &str, args: &[String], specs: &'a [Spec], order: Order) -> Self {
        let mut argv = Vec::with_capacity(args.len() + 1);
        argv.push(argv0.to_string());
        argv.extend(args.iter().cloned());
        Getopt {
            argv,
            specs,
            order,
            optind: 1,
            next: None,
            first_nonopt: 1,
            last_nonopt: 1,
            done: false,
        }
    }

    /// The operands: after [`Getopt::next`] returned `None`, the
    /// arguments from `optind` on, in the order getopt left them.
    pub fn operands(&self) -> &[String] {
        self.argv.get(self.optind..).unwrap_or_default()
    }

    fn bytes(&self, i: usize) -> Vec<u8> {
        rawtext::to_bytes(&self.argv[i]).into_owned()
    }

    fn is_nonoption(&self, i: usize) -> bool {
        let b = self.bytes(i);
        b.first() != Some(&b'-') || b.len() == 1
    }

    /// glibc's `exchange`: moves the options just processed before the
    /// operands skipped before them, keeping the order within each.
    fn exchange(&mut self) {
        let (bottom, middle, top) = (self.first_nonopt, self.last_nonopt, self.optind);
        self.argv[bottom..top].rotate_left(middle - bottom);
        self.first_nonopt += self.optind - self.last_nonopt;
        self.last_nonopt = self.optind;
    }

    fn error(&self, problem: Problem, report: String) -> GetoptError {
        let element = self.argv.get(self.optind.wrapping_sub(1)).cloned().unwrap_or_default();
        GetoptError { problem, report, element }
    }

    /// The next option, an error, or `None` at the end of the options
    /// (then [`Getopt::operands`] are the operands). After an error the
    /// caller stops, as qemu-img does.
    fn step(&mut self) -> Option<Result<Found, GetoptError>> {
        if self.done {
            return None;
        }
        let argc = self.argv.len();
        let (elem, pos) = match self.next {
            Some(at) if at.1 < self.bytes(at.0).len() => at,
            _ => {
                if self.last_nonopt > self.optind {
                    self.last_nonopt = self.optind;
                }
                if self.first_nonopt > self.optind {
                    self.first_nonopt = self.optind;
                }
                if self.order == Order::Permute {
                    if self.first_nonopt != self.last_nonopt && self.last_nonopt != self.optind {
                        self.exchange();
                    } else if self.last_nonopt != self.optind {
                        self.first_nonopt = self.optind;
                    }
                    while self.optind < argc && self.is_nonoption(self.optind) {
                        self.optind += 1;
                    }
                    self.last_nonopt = self.optind;
                }
                if self.optind != argc && self.argv[self.optind] == "--" {
                    self.optind += 1;
                    if self.first_nonopt != self.last_nonopt && self.last_nonopt != self.optind {
                        self.exchange();
                    } else if self.first_nonopt == self.last_nonopt {
                        self.first_nonopt = self.optind;
                    }
                    self.last_nonopt = argc;
                    self.optind = argc;
                }
                if self.optind == argc {
                    if self.first_nonopt != self.last_nonopt {
                        self.optind = self.first_nonopt;
                    }
                    self.done = true;
                    return None;
                }
                if self.is_nonoption(self.optind) {
                    // Only under RequireOrder: the first operand ends the
                    // options.
                    self.done = true;
                    return None;
                }
                if self.bytes(self.optind).get(1) == Some(&b'-') {
                    return Some(self.long_option());
                }
                (self.optind, 1)
            }
        };
        Some(self.short_option(elem, pos))
    }

    fn short_option(&mut self, elem: usize, pos: usize) -> Result<Found, GetoptError> {
        let bytes = self.bytes(elem);
        let c = bytes[pos];
        let rest = pos + 1;
        self.next = Some((elem, rest));
        if rest >= bytes.len() {
            self.optind += 1;
        }
        let found =
            self.specs.iter().position(|s| s.short.is_some_and(|l| u32::from(l) == u32::from(c)));
        let Some(idx) = found else {
            let shown = rawtext::from_bytes(&[c]);
            return Err(
                self.error(Problem::UnknownShort(c), format!("invalid option -- '{shown}'"))
            );
        };
        if !self.specs[idx].takes_value {
            return Ok((idx, None));
        }
        self.next = None;
        if rest < bytes.len() {
            self.optind += 1;
            return Ok((idx, Some(rawtext::from_bytes(&bytes[rest..]))));
        }
        if self.optind == self.argv.len() {
            let shown = rawtext::from_bytes(&[c]);
            return Err(self.error(
                Problem::MissingShortValue(c),
                format!("option requires an argument -- '{shown}'"),
            ));
        }
        self.optind += 1;
        Ok((idx, Some(self.argv[self.optind - 1].clone())))
    }

    fn long_option(&mut self) -> Result<Found, GetoptError> {
        let bytes = self.bytes(self.optind);
        let body = &bytes[2..];
        let name_len = body.iter().position(|&b| b == b'=').unwrap_or(body.len());
        let name = &body[..name_len];
        let shown = rawtext::from_bytes(body);
        self.next = None;
        let exact = self.specs.iter().position(|s| s.long.is_some_and(|l| l.as_bytes() == name));
        let idx = match exact {
            Some(i) => i,
            None => {
                let matches: Vec<usize> = (0..self.specs.len())
                    .filter(|&i| {
                        let s = self.specs[i];
                        !s.own && s.long.is_some_and(|l| l.as_bytes().starts_with(name))
                    })
                    .collect();
                let Some(&first) = matches.first() else {
                    self.optind += 1;
                    return Err(self
                        .error(Problem::UnknownLong, format!("unrecognized option '--{shown}'")));
                };
                // glibc counts a second match as ambiguous only when it is
                // a different option (another value or argument rule).
                let same = |i: usize| {
                    let (a, b) = (self.specs[i], self.specs[first]);
                    a.takes_value == b.takes_value
                        && match (a.short, b.short) {
                            (Some(x), Some(y)) => x == y,
                            _ => i == first,
                        }
                };
                let ambiguous: Vec<usize> =
                    matches.iter().copied().filter(|&i| i == first || !same(i)).collect();
                if ambiguous.len() > 1 {
                    let names: Vec<&'static str> =
                        ambiguous.iter().map(|&i| self.specs[i].long.unwrap_or_default()).collect();
                    let listed: Vec<String> = names.iter().map(|n| format!("'--{n}'")).collect();
                    self.optind += 1;
                    return Err(self.error(
                        Problem::Ambiguous(names),
                        format!(
                            "option '--{shown}' is ambiguous; possibilities: {}",
                            listed.join(" ")
                        ),
                    ));
                }
                first
            }
        };
        self.optind += 1;
        let s = self.specs[idx];
        let long = s.long.unwrap_or_default();
        if name_len < body.len() {
            if s.takes_value {
                return Ok((idx, Some(rawtext::from_bytes(&body[name_len + 1..]))));
            }
            return Err(self.error(
                Problem::UnexpectedValue(long),
                format!("option '--{long}' doesn't allow an argument"),
            ));
        }
        if !s.takes_value {
            return Ok((idx, None));
        }
        if self.optind < self.argv.len() {
            self.optind += 1;
            return Ok((idx, Some(self.argv[self.optind - 1].clone())));
        }
        Err(self.error(
            Problem::MissingLongValue(long),
            format!("option '--{long}' requires an argument"),
        ))
    }
}

/// getopt's successive answers: each option found or the error, until the
/// end of the options.
impl Iterator for Getopt<'_> {
    type Item = Result<Found, GetoptError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.step()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPECS: &[Spec] = &[
        spec(Some('f'), Some("format"), true),
        spec(Some('q'), Some("quiet"), false),
        spec(None, Some("object"), true),
        spec(None, Some("output"), true),
        own("qemu-version", true),
    ];

    fn strings(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    /// Every option found, and the operands; or the first error.
    fn parse(args: &[&str]) -> Result<(Vec<Found>, Vec<String>), GetoptError> {
        let args = strings(args);
        let mut g = Getopt::new("create", &args, SPECS, Order::Permute);
        let mut found = Vec::new();
        for r in g.by_ref() {
            found.push(r?);
        }
        Ok((found, g.operands().to_vec()))
    }

    #[test]
    fn permutes_and_clusters() {
        let (found, operands) =
            parse(&["a", "-qfqcow2", "b", "--form", "raw", "--", "-x"]).unwrap();
        assert_eq!(operands, strings(&["a", "b", "-x"]));
        assert_eq!(found.len(), 3);
        assert_eq!(found[1], (0, Some("qcow2".to_string())));
        assert_eq!(found[2], (0, Some("raw".to_string())));
    }

    #[test]
    fn errors_use_glibc_wording() {
        let e = |a: &[&str]| parse(a).unwrap_err().report;
        assert_eq!(e(&["-x"]), "invalid option -- 'x'");
        assert_eq!(e(&["-f"]), "option requires an argument -- 'f'");
        assert_eq!(e(&["--foo"]), "unrecognized option '--foo'");
        assert_eq!(e(&["--format"]), "option '--format' requires an argument");
        assert_eq!(e(&["--quiet=1"]), "option '--quiet' doesn't allow an argument");
        assert_eq!(e(&["--o"]), "option '--o' is ambiguous; possibilities: '--object' '--output'");
        // An empty name is a prefix of every qemu-img option.
        assert_eq!(
            e(&["--=x"]),
            "option '--=x' is ambiguous; possibilities: '--format' '--quiet' '--object' '--output'"
        );
    }

    #[test]
    fn own_options_match_exactly_and_never_as_abbreviations() {
        assert_eq!(parse(&["--q"]).unwrap().0, vec![(1, None)]);
        assert_eq!(parse(&["--qemu-version=9.2"]).unwrap().0, vec![(4, Some("9.2".into()))]);
        assert_eq!(parse(&["--qemu-v", "1"]).unwrap_err().problem, Problem::UnknownLong);
    }

    /// The argument qemu-img before the rework names: `argv[optind - 1]`
    /// as glibc leaves it (measured with qemu-img 7.2.22).
    #[test]
    fn the_element_follows_optind() {
        let el = |a: &[&str]| parse(a).unwrap_err().element;
        assert_eq!(el(&["-x", "t", "1M"]), "-x");
        // Not the last letter of its cluster: optind is still on the
        // argument before.
        assert_eq!(el(&["-xq", "t", "1M"]), "create");
        assert_eq!(el(&["t", "-xq", "1M"]), "t");
        assert_eq!(el(&["-qx", "t"]), "-qx");
        assert_eq!(el(&["-qf"]), "-qf");
        // After a permutation the operands moved behind the options.
        assert_eq!(el(&["a", "-q", "b", "-xq"]), "b");
        assert_eq!(el(&["--o=json", "x"]), "--o=json");
        assert_eq!(el(&["--object"]), "--object");
        assert!(parse(&["--object"]).unwrap_err().is_missing_value());
        assert!(!parse(&["--quiet=1"]).unwrap_err().is_missing_value());
    }

    #[test]
    fn require_order_stops_at_the_first_operand() {
        let args = strings(&["-q", "create", "-f", "x"]);
        let mut g = Getopt::new("instar", &args, SPECS, Order::RequireOrder);
        assert_eq!(g.next(), Some(Ok((1, None))));
        assert_eq!(g.next(), None);
        assert_eq!(g.operands(), strings(&["create", "-f", "x"]).as_slice());
    }

    #[test]
    fn bytes_that_are_not_utf8() {
        let bad = rawtext::from_bytes(b"-\xff");
        let args = vec![bad];
        let mut g = Getopt::new("create", &args, SPECS, Order::Permute);
        let e = g.next().unwrap().unwrap_err();
        assert_eq!(e.problem, Problem::UnknownShort(0xff));
        assert_eq!(rawtext::to_bytes(&e.report).as_ref(), b"invalid option -- '\xff'");
        let long = rawtext::from_bytes(b"--out\xff=json");
        let args = vec![long];
        let mut g = Getopt::new("info", &args, SPECS, Order::Permute);
        let e = g.next().unwrap().unwrap_err();
        assert_eq!(rawtext::to_bytes(&e.report).as_ref(), b"unrecognized option '--out\xff=json'");
    }
}
