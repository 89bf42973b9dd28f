//! What qemu prints on stderr while it works, before a command's result:
//! warnings met while opening an image, lines reported before a failure.
//! qemu prints some through its error reporter (`error_report`,
//! `warn_report`: the program name and `: ` first) and some as they are
//! (`error_printf`, `fprintf`), not always ending in a newline; the text
//! that follows then continues the same line.

/// One piece of stderr text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Diagnostic {
    /// A line through qemu's error reporter: printed after the program
    /// name and `: `, with a newline.
    Reported(String),
    /// Text printed as it is, newlines included (or not).
    Plain(String),
}

impl Diagnostic {
    /// The text on stderr, `program` being the name errors are reported
    /// under.
    pub fn render(&self, program: &str) -> String {
        match self {
            Diagnostic::Reported(line) => format!("{program}: {line}\n"),
            Diagnostic::Plain(text) => text.clone(),
        }
    }
}

/// All of `diagnostics` as stderr text.
pub fn render_all(diagnostics: &[Diagnostic], program: &str) -> String {
    diagnostics.iter().map(|d| d.render(program)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reported_lines_name_the_program_plain_text_does_not() {
        let d = [
            Diagnostic::Reported("warning: x".to_string()),
            Diagnostic::Plain("no newline".to_string()),
        ];
        assert_eq!(render_all(&d, "instar"), "instar: warning: x\nno newline");
    }
}
