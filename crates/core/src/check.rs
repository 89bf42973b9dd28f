//! What `check` reports about an image, and the text and exit code
//! qemu-img gives for it (`qemu-img.c`: `collect_image_check`,
//! `dump_human_image_check`, and the exit-code rules of `img_check`).
//!
//! A check's lines on stderr (`ERROR ...`, `Leaked cluster ...`) go where
//! its [`Lines`] say: the command line writes them as they are found, as
//! qemu does, so that a damaged image with millions of problems costs no
//! memory for them; tests keep them in the report.

use crate::json::Json;
use std::fmt;

/// What receives each whole line of a streamed check.
type LineWriter = Box<dyn FnMut(&str)>;

/// Where a check's stderr lines go.
pub struct Lines {
    /// Each line as written, program name and newline included; `None`
    /// keeps the lines instead.
    writer: Option<LineWriter>,
    /// The name lines reported through qemu's error reporter start with
    /// when they are written.
    program: String,
    /// The lines kept (when there is no writer): whether each was
    /// reported through the error reporter, and its text.
    kept: Vec<(bool, String)>,
}

impl Lines {
    /// Lines kept in the report, for [`CheckReport::stderr_text`].
    pub fn keep() -> Lines {
        Lines { writer: None, program: String::new(), kept: Vec::new() }
    }

    /// Lines handed to `writer` as they are found, each whole (with
    /// `program: ` before a reported line, and its newline). The writer
    /// is dropped when the report's lines are closed
    /// ([`CheckReport::close_lines`]) or the report is, so a writer that
    /// buffers flushes then.
    pub fn stream(program: &str, writer: impl FnMut(&str) + 'static) -> Lines {
        Lines { writer: Some(Box::new(writer)), program: program.to_string(), kept: Vec::new() }
    }

    /// One line, `reported` when qemu prints it through its error reporter.
    fn push(&mut self, reported: bool, line: String) {
        match &mut self.writer {
            Some(write) => {
                let prefix = if reported { format!("{}: ", self.program) } else { String::new() };
                write(&format!("{prefix}{line}\n"));
            }
            None => self.kept.push((reported, line)),
        }
    }
}

impl Default for Lines {
    fn default() -> Self {
        Lines::keep()
    }
}

impl fmt::Debug for Lines {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lines")
            .field("streamed", &self.writer.is_some())
            .field("kept", &self.kept)
            .finish()
    }
}

/// The result of a consistency check, with qemu's `ImageCheck` fields.
#[derive(Debug, Default)]
pub struct CheckReport {
    /// The file name as the user gave it.
    pub filename: String,
    /// The format checked.
    pub format: String,
    /// Problems that may corrupt data.
    pub corruptions: u64,
    /// Allocated but unreferenced space.
    pub leaks: u64,
    /// Failures of the check itself (e.g. a read error).
    pub check_errors: u64,
    /// The offset after the last allocated byte of the image, when the
    /// format reports one.
    pub image_end_offset: u64,
    /// Clusters the virtual disk spans.
    pub total_clusters: u64,
    /// Guest clusters that are allocated.
    pub allocated_clusters: u64,
    /// Allocated clusters not contiguous with their predecessor.
    pub fragmented_clusters: u64,
    /// Allocated clusters that are compressed.
    pub compressed_clusters: u64,
    /// Where the lines the check prints on stderr as it goes go.
    lines: Lines,
    /// Set when the check itself stopped with an error (the driver's check
    /// returned `-errno`): the C library's text for that error. qemu-img
    /// then prints no report, only `Check failed: <text>`, and exits 1.
    pub failed: Option<String>,
}

impl CheckReport {
    /// A clean report for `filename` in `format`.
    pub fn new(filename: &str, format: &str) -> Self {
        CheckReport {
            filename: filename.to_string(),
            format: format.to_string(),
            ..Default::default()
        }
    }

    /// The report, its lines sent to `lines`.
    pub fn with_lines(mut self, lines: Lines) -> Self {
        self.lines = lines;
        self
    }

    /// Adds a line the check prints on stderr as it is (qemu's
    /// `fprintf(stderr, ...)`).
    pub fn push_message(&mut self, line: impl Into<String>) {
        self.lines.push(false, line.into());
    }

    /// Adds a line the check prints through qemu's error reporter, which
    /// prefixes the program name (`error_report`). A hint that qemu prints
    /// after such a line without a prefix may follow after a newline.
    pub fn push_reported(&mut self, line: impl Into<String>) {
        self.lines.push(true, line.into());
    }

    /// Ends the streaming of lines: the writer is dropped (a buffered one
    /// flushes), and later lines are kept.
    pub fn close_lines(&mut self) {
        self.lines.writer = None;
    }

    /// The lines kept so far (none when they are streamed), without the
    /// program name.
    pub fn messages(&self) -> impl Iterator<Item = &str> {
        self.lines.kept.iter().map(|(_, line)| line.as_str())
    }

    /// Everything `check` prints on stderr for this report that was not
    /// streamed, `program` being the name errors are reported under: the
    /// check's kept lines, then `Check failed` when the check could not
    /// complete.
    pub fn stderr_text(&self, program: &str) -> String {
        let mut out = String::new();
        for (reported, line) in &self.lines.kept {
            if *reported {
                out.push_str(program);
                out.push_str(": ");
            }
            out.push_str(line);
            out.push('\n');
        }
        match &self.failed {
            Some(why) => out.push_str(&format!("{program}: Check failed: {why}\n")),
            None if self.check_errors > 0 => out.push_str(&format!("{program}: Check failed\n")),
            None => {}
        }
        out
    }

    /// What `check` prints on stdout (without `-q`): the report as human
    /// text or as JSON, or nothing when the check could not complete.
    pub fn stdout_text(&self, json: bool) -> String {
        if self.failed.is_some() {
            String::new()
        } else if json {
            self.to_json().to_qemu_pretty()
        } else {
            self.to_human()
        }
    }

    /// qemu-img's exit code for this report: 1 when the check itself
    /// failed, 2 on corruption, 3 on leaks only, 0 when clean.
    pub fn exit_code(&self) -> u8 {
        if self.failed.is_some() || self.check_errors > 0 {
            1
        } else if self.corruptions > 0 {
            2
        } else if self.leaks > 0 {
            3
        } else {
            0
        }
    }

    /// The report as `qemu-img check --output=json` prints it: optional
    /// counters appear only when non-zero.
    pub fn to_json(&self) -> Json {
        let mut o = Json::object();
        o.push("filename", Json::from(self.filename.as_str()));
        o.push("format", Json::from(self.format.as_str()));
        o.push("check-errors", Json::UInt(self.check_errors));
        let optional = [
            ("image-end-offset", self.image_end_offset),
            ("corruptions", self.corruptions),
            ("leaks", self.leaks),
            ("total-clusters", self.total_clusters),
            ("allocated-clusters", self.allocated_clusters),
            ("fragmented-clusters", self.fragmented_clusters),
            ("compressed-clusters", self.compressed_clusters),
        ];
        for (key, value) in optional {
            if value != 0 {
                o.push(key, Json::UInt(value));
            }
        }
        o
    }

    /// The report as human `qemu-img check` prints it on stdout.
    pub fn to_human(&self) -> String {
        let mut out = String::new();
        if self.corruptions == 0 && self.leaks == 0 && self.check_errors == 0 {
            out.push_str("No errors were found on the image.\n");
        } else {
            if self.corruptions > 0 {
                out.push_str(&format!(
                    "\n{} errors were found on the image.\n\
                     Data may be corrupted, or further writes to the image may corrupt it.\n",
                    self.corruptions
                ));
            }
            if self.leaks > 0 {
                out.push_str(&format!(
                    "\n{} leaked clusters were found on the image.\n\
                     This means waste of disk space, but no harm to data.\n",
                    self.leaks
                ));
            }
            if self.check_errors > 0 {
                out.push_str(&format!(
                    "\n{} internal errors have occurred during the check.\n",
                    self.check_errors
                ));
            }
        }
        if self.total_clusters != 0 && self.allocated_clusters != 0 {
            let alloc = self.allocated_clusters as f64;
            out.push_str(&format!(
                "{}/{} = {:.2}% allocated, {:.2}% fragmented, {:.2}% compressed clusters\n",
                self.allocated_clusters,
                self.total_clusters,
                alloc * 100.0 / self.total_clusters as f64,
                self.fragmented_clusters as f64 * 100.0 / alloc,
                self.compressed_clusters as f64 * 100.0 / alloc,
            ));
        }
        if self.image_end_offset != 0 {
            out.push_str(&format!("Image end offset: {}\n", self.image_end_offset));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_qcow2_report_matches_qemu() {
        let mut r = CheckReport::new("a.qcow2", "qcow2");
        r.image_end_offset = 262_144;
        r.total_clusters = 16_384;
        assert_eq!(r.to_human(), "No errors were found on the image.\nImage end offset: 262144\n");
        assert_eq!(
            r.to_json().to_qemu_pretty(),
            "{\n    \"image-end-offset\": 262144,\n    \"total-clusters\": 16384,\n    \
             \"check-errors\": 0,\n    \"filename\": \"a.qcow2\",\n    \"format\": \"qcow2\"\n}\n"
        );
        assert_eq!(r.exit_code(), 0);
    }

    #[test]
    fn leaks_and_corruptions_set_exit_codes() {
        let mut r = CheckReport::new("a", "qcow2");
        r.leaks = 1;
        assert_eq!(r.exit_code(), 3);
        assert!(r.to_human().contains("\n1 leaked clusters were found on the image.\n"));
        r.corruptions = 2;
        assert_eq!(r.exit_code(), 2);
    }

    #[test]
    fn fragmented_report_keys_follow_qdict_order() {
        // Measured on qemu-img 10.0.2 (an L2 entry pointing past the end of
        // the file).
        let mut r = CheckReport::new("past.qcow2", "qcow2");
        r.image_end_offset = 458_752;
        r.total_clusters = 16;
        r.corruptions = 2;
        r.allocated_clusters = 3;
        r.fragmented_clusters = 1;
        assert_eq!(
            r.to_json().to_qemu_pretty(),
            "{\n    \"image-end-offset\": 458752,\n    \"total-clusters\": 16,\n    \
             \"corruptions\": 2,\n    \"check-errors\": 0,\n    \"allocated-clusters\": 3,\n    \
             \"filename\": \"past.qcow2\",\n    \"format\": \"qcow2\",\n    \
             \"fragmented-clusters\": 1\n}\n"
        );
        assert_eq!(
            r.to_human(),
            "\n2 errors were found on the image.\n\
             Data may be corrupted, or further writes to the image may corrupt it.\n\
             3/16 = 18.75% allocated, 33.33% fragmented, 0.00% compressed clusters\n\
             Image end offset: 458752\n"
        );
    }

    #[test]
    fn stderr_prefixes_reported_lines_and_failure() {
        let mut r = CheckReport::new("a", "qcow2");
        r.push_message("ERROR cluster 5 refcount=0 reference=1");
        r.push_reported("ERROR snapshot table offset invalid");
        r.failed = Some("Invalid argument".to_string());
        assert_eq!(
            r.stderr_text("instar"),
            "ERROR cluster 5 refcount=0 reference=1\n\
             instar: ERROR snapshot table offset invalid\n\
             instar: Check failed: Invalid argument\n"
        );
        assert_eq!(r.stdout_text(false), "");
        assert_eq!(r.exit_code(), 1);
        r.failed = None;
        r.check_errors = 1;
        assert!(r.stderr_text("instar").ends_with("instar: Check failed\n"));
        assert!(r.stdout_text(false).contains("1 internal errors have occurred"));
    }

    #[test]
    fn streamed_lines_are_written_at_once_and_not_kept() {
        use std::cell::RefCell;
        use std::rc::Rc;
        let written = Rc::new(RefCell::new(String::new()));
        let sink = Rc::clone(&written);
        let mut r = CheckReport::new("a", "qcow2")
            .with_lines(Lines::stream("instar", move |l| sink.borrow_mut().push_str(l)));
        r.push_message("ERROR one");
        assert_eq!(*written.borrow(), "ERROR one\n");
        r.push_reported("ERROR two");
        assert_eq!(*written.borrow(), "ERROR one\ninstar: ERROR two\n");
        r.failed = Some("Invalid argument".to_string());
        assert_eq!(r.messages().count(), 0);
        assert_eq!(r.stderr_text("instar"), "instar: Check failed: Invalid argument\n");
    }
}
