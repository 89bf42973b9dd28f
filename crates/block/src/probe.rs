//! Guessing a file's format from its first bytes, as qemu's
//! `bdrv_probe_all` does: every format scores the head of the file, the
//! highest score wins, raw (score 1) being the fallback.

use crate::registry::FORMATS;
use instar_core::Format;
use std::io::Read;

/// How many bytes of the file qemu hands to the probes (`BLOCK_PROBE_BUF_SIZE`).
pub const PROBE_BUF_SIZE: usize = 512;

/// What probing a file found.
pub enum Probed {
    /// A format instar implements (raw when nothing else matches).
    Known(&'static dyn Format),
    /// An image of a format qemu reads and instar does not.
    QemuOnly(&'static str),
}

/// The format whose probe scores `filename` highest. An empty file is raw.
/// A file shorter than the probe buffer is read as if zero-filled to its
/// size, as qemu's block layer reads past the end of a file.
pub fn probe_file(filename: &str) -> std::io::Result<Probed> {
    let mut head = Vec::with_capacity(PROBE_BUF_SIZE);
    std::fs::File::open(filename)?.take(PROBE_BUF_SIZE as u64).read_to_end(&mut head)?;
    if head.is_empty() {
        return Ok(Probed::Known(FORMATS[0]));
    }
    head.resize(PROBE_BUF_SIZE, 0);
    let best = probe_bytes(&head, filename);
    if best.name() == "raw" {
        if let Some(other) = crate::unsupported::recognise(&head, filename) {
            return Ok(Probed::QemuOnly(other));
        }
    }
    Ok(Probed::Known(best))
}

/// The name of the format qemu's probe finds in `file` (`raw` when nothing
/// else matches), for a create that must know another file's format.
pub fn probe_name(file: &instar_core::ImageFile) -> &'static str {
    match probe_file(file.name()) {
        Ok(Probed::Known(f)) => f.name(),
        Ok(Probed::QemuOnly(name)) => name,
        Err(_) => "raw",
    }
}

/// The format whose probe scores `head` highest (the first one on a tie).
pub fn probe_bytes(head: &[u8], filename: &str) -> &'static dyn Format {
    let mut best: &'static dyn Format = FORMATS[0];
    let mut best_score = 0;
    if head.is_empty() {
        return best;
    }
    for f in FORMATS {
        let score = f.probe(head, filename);
        if score > best_score {
            best = *f;
            best_score = score;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_bytes_are_raw() {
        assert_eq!(probe_bytes(b"hello", "x").name(), "raw");
        assert_eq!(probe_bytes(b"", "x").name(), "raw");
    }
}
