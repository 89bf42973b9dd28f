//! Command-line parsing with the rules of GNU `getopt_long`, which qemu-img
//! uses: options and operands may be mixed (operands are collected in
//! order), `--` ends the options, short options cluster (`-qf qcow2`,
//! `-fqcow2`), long options take `=value` or the next argument and may be
//! abbreviated to any unambiguous prefix. Errors carry glibc's wording so
//! that instar's messages are qemu-img's.

/// One option a command accepts.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// The short letter, if any.
    pub short: Option<char>,
    /// The long name, if any.
    pub long: Option<&'static str>,
    /// Whether the option takes a value.
    pub takes_value: bool,
}

/// Shorthand for a [`Spec`].
pub const fn spec(short: Option<char>, long: Option<&'static str>, takes_value: bool) -> Spec {
    Spec { short, long, takes_value }
}

/// The result of parsing: options in the order given (index into the spec
/// list and value), and the operands.
#[derive(Debug, Default)]
pub struct Parsed {
    /// `(spec index, value)` for every option met.
    pub opts: Vec<(usize, Option<String>)>,
    /// The operands, in order.
    pub operands: Vec<String>,
}

/// Parses `args` against `specs`. `prog` names the program in messages
/// (e.g. `instar create`).
pub fn parse(prog: &str, args: &[String], specs: &[Spec]) -> Result<Parsed, String> {
    let mut out = Parsed::default();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        if arg == "--" {
            out.operands.extend(args[i..].iter().cloned());
            break;
        }
        if let Some(body) = arg.strip_prefix("--") {
            let (name, inline) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (body, None),
            };
            let idx = find_long(prog, arg, name, specs)?;
            let s = specs[idx];
            let long = s.long.unwrap_or_default();
            let value = if s.takes_value {
                match inline {
                    Some(v) => Some(v),
                    None if i < args.len() => {
                        i += 1;
                        Some(args[i - 1].clone())
                    }
                    None => return Err(format!("{prog}: option '--{long}' requires an argument")),
                }
            } else if inline.is_some() {
                return Err(format!("{prog}: option '--{long}' doesn't allow an argument"));
            } else {
                None
            };
            out.opts.push((idx, value));
            continue;
        }
        if arg.len() > 1 && arg.starts_with('-') {
            let chars: Vec<char> = arg[1..].chars().collect();
            let mut k = 0;
            while k < chars.len() {
                let c = chars[k];
                k += 1;
                let idx = specs
                    .iter()
                    .position(|s| s.short == Some(c))
                    .ok_or_else(|| format!("{prog}: invalid option -- '{c}'"))?;
                if specs[idx].takes_value {
                    let value = if k < chars.len() {
                        chars[k..].iter().collect()
                    } else if i < args.len() {
                        i += 1;
                        args[i - 1].clone()
                    } else {
                        return Err(format!("{prog}: option requires an argument -- '{c}'"));
                    };
                    out.opts.push((idx, Some(value)));
                    break;
                }
                out.opts.push((idx, None));
            }
            continue;
        }
        out.operands.push(arg.clone());
    }
    Ok(out)
}

/// The spec a long option names: an exact match, else the only spec whose
/// name starts with it.
fn find_long(prog: &str, arg: &str, name: &str, specs: &[Spec]) -> Result<usize, String> {
    // glibc names the option as typed, value included, when it is unknown
    // or ambiguous.
    if let Some(i) = specs.iter().position(|s| s.long == Some(name)) {
        return Ok(i);
    }
    let matches: Vec<usize> = (0..specs.len())
        .filter(|&i| !name.is_empty() && specs[i].long.is_some_and(|l| l.starts_with(name)))
        .collect();
    match matches.as_slice() {
        [one] => Ok(*one),
        [] => Err(format!("{prog}: unrecognized option '{arg}'")),
        many => {
            let names: Vec<String> = many
                .iter()
                .map(|&i| format!("'--{}'", specs[i].long.unwrap_or_default()))
                .collect();
            Err(format!("{prog}: option '{arg}' is ambiguous; possibilities: {}", names.join(" ")))
        }
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
    ];

    fn strings(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn permutes_and_clusters() {
        let p = parse("p", &strings(&["a", "-qfqcow2", "b", "--form", "raw", "--", "-x"]), SPECS)
            .unwrap();
        assert_eq!(p.operands, strings(&["a", "b", "-x"]));
        assert_eq!(p.opts.len(), 3);
        assert_eq!(p.opts[1], (0, Some("qcow2".to_string())));
        assert_eq!(p.opts[2], (0, Some("raw".to_string())));
    }

    #[test]
    fn errors_use_glibc_wording() {
        let e = |a: &[&str]| parse("p", &strings(a), SPECS).unwrap_err();
        assert_eq!(e(&["-x"]), "p: invalid option -- 'x'");
        assert_eq!(e(&["-f"]), "p: option requires an argument -- 'f'");
        assert_eq!(e(&["--foo"]), "p: unrecognized option '--foo'");
        assert_eq!(e(&["--format"]), "p: option '--format' requires an argument");
        assert_eq!(e(&["--quiet=1"]), "p: option '--quiet' doesn't allow an argument");
        assert_eq!(
            e(&["--o"]),
            "p: option '--o' is ambiguous; possibilities: '--object' '--output'"
        );
    }
}
