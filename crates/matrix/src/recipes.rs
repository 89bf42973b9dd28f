//! Source recipes: how the differential tables ([`measure_cases`](crate::measure_cases),
//! [`convert_cases`](crate::convert_cases)) make the images their rows
//! read, as a list of [`Step`]s run in a scratch folder with relative
//! names by the oracle's qemu-img and qemu-io (the matrix versions come
//! without qemu-io) or written directly (raw files whose host allocation
//! a row depends on: written whole, or truncated to holes).
//!
//! One runner ([`make`]) serves every table: a table's recipe type says
//! its name and its steps ([`Recipe`]).

use crate::baseline::{code, io_err, BaselineError};
use crate::cases::{self, Case, Target};
use crate::qemu::QemuImg;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// One step of a source recipe, run in the sources folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// `qemu-img ARGS` (the oracle's).
    Img(&'static [&'static str]),
    /// The `create` of a CREATE_CASES row (`<case>.<ext>`).
    Create(Target, &'static str),
    /// `qemu-io -f FORMAT -c CMD ... FILE` (the oracle's).
    Io {
        /// The image format.
        format: &'static str,
        /// The image.
        file: &'static str,
        /// The qemu-io commands, in order.
        commands: &'static [&'static str],
    },
    /// A file of this length: a hole (`truncate`).
    Truncate(&'static str, u64),
    /// A file of this length written end to end with one byte value.
    Fill(&'static str, u64, u8),
    /// A file of `len` bytes written end to end with `fill`, then the
    /// `(offset, length, byte)` runs written over it (zero runs that are
    /// data to the host: a raw file's sparse detection reads them).
    Written {
        /// The file.
        file: &'static str,
        /// Its length.
        len: u64,
        /// The byte everywhere outside the runs.
        fill: u8,
        /// `(offset, length, byte)` runs written over the fill.
        runs: &'static [(u64, u64, u8)],
    },
    /// A file of this length written end to end with bytes that do not
    /// compress (a fixed pseudo-random sequence from the seed).
    Noise(&'static str, u64, u32),
    /// These bytes written at this offset of an existing file (damage).
    Poke(&'static str, u64, &'static [u8]),
    /// An existing file cut (or extended) to this length.
    Cut(&'static str, u64),
}

/// A table's source recipe: a name for messages and the steps.
pub trait Recipe: Copy + std::fmt::Debug {
    /// The recipe's name, as meta files and failure messages give it.
    fn name(self) -> String {
        format!("{self:?}")
    }
    /// The steps that make the source, in order.
    fn steps(self) -> &'static [Step];
}

/// The qemu-io beside the oracle's qemu-img.
pub fn qemu_io_for(oracle: &QemuImg) -> PathBuf {
    oracle.path.with_file_name("qemu-io")
}

/// The CREATE_CASES row of `target` named `name` (a recipe's step).
pub fn created(target: Target, name: &str) -> &'static Case {
    cases::find(target, name)
        .unwrap_or_else(|| panic!("{target}/{name} is not a row of CREATE_CASES"))
}

/// Runs `program args` in `dir` with `LC_ALL=C`; a failure to start is an
/// error, not an exit code.
fn run(program: &Path, args: &[&str], dir: &Path) -> Result<Output, BaselineError> {
    Command::new(program)
        .args(args)
        .current_dir(dir)
        .env("LC_ALL", "C")
        .output()
        .map_err(|e| BaselineError::Spawn(program.to_path_buf(), e))
}

/// The noise byte sequence of [`Step::Noise`]: a 32-bit xorshift from
/// `seed` (never zero), one byte of each state.
pub fn noise(len: usize, seed: u32) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state.to_le_bytes()[0]
        })
        .collect()
}

/// A recipe length as a buffer length.
fn buffer_len(len: u64) -> usize {
    usize::try_from(len).expect("a recipe's length fits")
}

/// Runs one step of `recipe` in `dir`; it must succeed.
fn run_step<R: Recipe>(
    oracle: &QemuImg,
    recipe: R,
    step: &Step,
    dir: &Path,
) -> Result<(), BaselineError> {
    let out = match step {
        Step::Img(args) => run(&oracle.path, args, dir)?,
        Step::Create(target, name) => {
            let case = created(*target, name);
            let args = case.create_args(&case.file_name());
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            run(&oracle.path, &args, dir)?
        }
        Step::Io { format, file, commands } => {
            let mut args = vec!["-f", format];
            for c in *commands {
                args.extend(["-c", c]);
            }
            args.push(file);
            run(&qemu_io_for(oracle), &args, dir)?
        }
        _ => return write_step(step, dir),
    };
    if !out.status.success() {
        return Err(BaselineError::Source(
            recipe.name(),
            format!(
                "{step:?} exited {}: {}",
                code(out.status),
                String::from_utf8_lossy(&out.stderr)
            ),
        ));
    }
    Ok(())
}

/// Runs a step that writes a file directly.
fn write_step(step: &Step, dir: &Path) -> Result<(), BaselineError> {
    let at = |file: &str| dir.join(file);
    match *step {
        Step::Truncate(file, len) => {
            let path = at(file);
            let f = std::fs::File::create(&path).map_err(io_err(&path))?;
            f.set_len(len).map_err(io_err(&path))
        }
        Step::Fill(file, len, byte) => {
            let path = at(file);
            std::fs::write(&path, vec![byte; buffer_len(len)]).map_err(io_err(&path))
        }
        Step::Written { file, len, fill, runs } => {
            let path = at(file);
            let mut bytes = vec![fill; buffer_len(len)];
            for &(offset, run_len, byte) in runs {
                let start = buffer_len(offset);
                bytes[start..start + buffer_len(run_len)].fill(byte);
            }
            std::fs::write(&path, bytes).map_err(io_err(&path))
        }
        Step::Noise(file, len, seed) => {
            let path = at(file);
            std::fs::write(&path, noise(buffer_len(len), seed)).map_err(io_err(&path))
        }
        Step::Poke(file, offset, bytes) => {
            let path = at(file);
            let f = std::fs::OpenOptions::new().write(true).open(&path).map_err(io_err(&path))?;
            f.write_all_at(bytes, offset).map_err(io_err(&path))
        }
        Step::Cut(file, len) => {
            let path = at(file);
            let f = std::fs::OpenOptions::new().write(true).open(&path).map_err(io_err(&path))?;
            f.set_len(len).map_err(io_err(&path))
        }
        Step::Img(_) | Step::Create(..) | Step::Io { .. } => unreachable!("run by run_step"),
    }
}

/// Makes `recipe`'s source in `dir` with the oracle's tools.
pub fn make<R: Recipe>(oracle: &QemuImg, recipe: R, dir: &Path) -> Result<(), BaselineError> {
    for step in recipe.steps() {
        run_step(oracle, recipe, step, dir)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_is_fixed_and_does_not_repeat_bytes() {
        let a = noise(4096, 7);
        assert_eq!(a, noise(4096, 7));
        assert_ne!(a, noise(4096, 8));
        let distinct: std::collections::HashSet<u8> = a.iter().copied().collect();
        assert!(distinct.len() > 200, "{} distinct bytes", distinct.len());
    }
}
