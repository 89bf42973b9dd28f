//! qemu's progress meter (`util/qemu-progress.c`) as `compare` and
//! `convert` print it with `-p`: a percentage in C's `float`, printed as
//! `    (%3.2f/100%)\r` whenever it moved by more than the command's
//! minimum step, or reached 0 or 100, and a newline at the end.

/// The meter of one run.
#[derive(Debug)]
pub(crate) struct Progress {
    enabled: bool,
    current: f32,
    last_print: f32,
    /// The command's `min_skip` (`qemu_progress_init(progress, min_skip)`).
    min_skip: f32,
}

impl Progress {
    /// A meter that prints when `enabled` (`-p` without `-q`), moving in
    /// steps of more than `min_skip` points.
    pub(crate) fn new(enabled: bool, min_skip: f32) -> Progress {
        Progress { enabled, current: 0.0, last_print: 0.0, min_skip }
    }

    /// `qemu_progress_print(delta, max)`: with `max` 0 the meter is set to
    /// `delta`, else it moves by `delta` percent of `max`. Returns the
    /// line to print, if one is due.
    pub(crate) fn print(&mut self, delta: f32, max: u8) -> Option<String> {
        let current = if max == 0 { delta } else { self.current + delta / 100.0 * f32::from(max) };
        let current = current.min(100.0);
        self.current = current;
        #[allow(clippy::float_cmp, reason = "qemu compares the floats exactly")]
        let due = current > self.last_print + self.min_skip
            || current < self.last_print - self.min_skip
            || current == 100.0
            || current == 0.0;
        if !due {
            return None;
        }
        self.last_print = current;
        self.enabled.then(|| format!("    ({:.2}/100%)\r", f64::from(current)))
    }

    /// `qemu_progress_end`: the newline after the last line.
    pub(crate) fn end(&self) -> Option<&'static str> {
        self.enabled.then_some("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_when_moved_past_the_step_and_at_the_ends() {
        let mut p = Progress::new(true, 2.0);
        let mut out = String::new();
        for (delta, max) in [(0.0, 100), (1.0, 100), (2.0, 100), (97.0, 100)] {
            out.extend(p.print(delta, max));
        }
        out.extend(p.end());
        assert_eq!(out, "    (0.00/100%)\r    (3.00/100%)\r    (100.00/100%)\r\n");
    }

    #[test]
    fn set_values_repeat_at_100() {
        let mut p = Progress::new(true, 1.0);
        let out: String =
            [0.0, 0.5, 50.0, 100.0, 100.0].into_iter().filter_map(|v| p.print(v, 0)).collect();
        assert_eq!(
            out,
            "    (0.00/100%)\r    (50.00/100%)\r    (100.00/100%)\r    (100.00/100%)\r"
        );
    }

    #[test]
    fn a_disabled_meter_prints_nothing() {
        let mut p = Progress::new(false, 1.0);
        assert_eq!(p.print(0.0, 100), None);
        assert_eq!(p.end(), None);
    }
}
