//! Format parity: `instar create`, `info` and `check` of each format
//! against the oracle, option by option and size by size, one named test
//! per case (`parity::<format>::<group>::<case>`).
//!
//! A create case runs the same `create` command line with qemu-img and
//! with instar, each in its own folder (`qemu/` and `instar/`, siblings,
//! so that relative backing file names resolve alike) under the same image
//! name, so that every output names the image alike ([`Pair`]). Then,
//! depending on what the format's old tests proved, it compares: the
//! command's stdout, stderr and exit code (always); the files left
//! (always; a refused create leaves none from instar, which validates
//! before it touches the file system); the bytes of every file outside the
//! masks of docs/compat.md §3; the host allocation; what qemu-img's `info` says of
//! both images; what `instar info` and `instar check` print against
//! qemu-img on the same file; and that qemu-img can write into instar's
//! image and read the data back.
//!
//! Everything runs through the `instar` binary: the tests know nothing of
//! the format crates' APIs.

pub mod data_file;
pub mod qcow2;
pub mod vhdx;
pub mod vmdk;
pub mod vpc;

use crate::util::{create_args, files_in, instar, path_str, Sandbox};
use instar_matrix::files::{allocated, data_ranges_of};
use instar_matrix::info_json;
use instar_matrix::Target;
use std::path::{Path, PathBuf};

/// What `check` prints on a clean image.
pub const CLEAN: &str = "No errors were found on the image.\n";

/// One create case run by both programs, and the comparisons of what they
/// made.
pub struct Pair {
    /// The transcript, the oracle, and the root folder.
    pub s: Sandbox,
    /// The format.
    pub target: Target,
    /// The image's file name in both folders.
    pub image: String,
}

impl Pair {
    /// A pair of empty folders for `target`, or `None` after skipping
    /// the running test when the oracle is not installed.
    pub fn new(target: Target) -> Option<Pair> {
        let s = Sandbox::new()?;
        for dir in ["qemu", "instar", "base"] {
            std::fs::create_dir(s.file(dir)).expect("a scratch folder");
        }
        Some(Pair { s, target, image: format!("img.{}", target.extension()) })
    }

    /// qemu-img's folder.
    pub fn theirs(&self) -> PathBuf {
        self.s.file("qemu")
    }

    /// instar's folder.
    pub fn mine(&self) -> PathBuf {
        self.s.file("instar")
    }

    /// The folder for files both images refer to (backing files), beside
    /// the other two: `../base/<name>` from either.
    pub fn base(&self) -> PathBuf {
        self.s.file("base")
    }

    /// The format's name for `-f`.
    pub fn format(&self) -> &'static str {
        self.target.format()
    }

    /// Runs `create [flags] -f <fmt> [-o options] <image> <size>` with both
    /// programs, each in its folder; fails unless they print and exit
    /// alike and leave the same file names (nothing from instar when the
    /// create is refused). Returns whether the create succeeded.
    pub fn create(&self, flags: &[&str], options: &str, size: &str) -> bool {
        let args = create_args(flags, self.format(), options, &self.image, size);
        let theirs = self.s.t.run(&self.s.qemu.path, &args, &self.theirs());
        let mine = self.s.t.run(instar(), &args, &self.mine());
        self.s.t.assert_same_run("create", &theirs, &mine);
        let (q, i) = (files_in(&self.theirs()), files_in(&self.mine()));
        if !theirs.ok() {
            self.s.t.check(i.is_empty(), || format!("instar's refused create left {i:?}"));
            return false;
        }
        self.s.t.check(q == i, || format!("files: qemu-img made {q:?}, instar {i:?}"));
        true
    }

    /// Runs the create with both programs ([`create`](Self::create)),
    /// which both must refuse alike.
    pub fn assert_refused(&self, flags: &[&str], options: &str, size: &str) {
        let created = self.create(flags, options, size);
        self.s.t.check(!created, || "qemu-img accepted the case".into());
    }

    /// Every file in both folders is the same outside the masks: the image
    /// with its format's masks, other files (vmdk extents) byte for byte.
    pub fn same_bytes(&self) {
        for name in files_in(&self.theirs()) {
            let target = if name == self.image { self.target } else { Target::Raw };
            let (q, i) = (self.theirs().join(&name), self.mine().join(&name));
            self.s.t.assert_same_bytes(target, &q, &i, &format!("qemu-img's {name} and instar's"));
            if name == self.image {
                self.s.t.assert_masked_fields(target, &i, "instar's image");
            }
        }
    }

    /// Every file takes the same space on the host in both folders.
    pub fn same_blocks(&self) {
        for name in files_in(&self.theirs()) {
            let q = allocated(&self.theirs().join(&name)).expect("qemu-img's file");
            let i = allocated(&self.mine().join(&name)).expect("instar's file");
            self.s.t.check(q == i, || {
                format!("{name} allocates {q} bytes from qemu-img, {i} from instar")
            });
        }
    }

    /// The image holds data at the same places in both folders, and takes
    /// the same space but for one file-system block: `st_blocks` also
    /// counts the file system's own extent-tree blocks, which depend on
    /// where the blocks physically landed (qemu-img flushes between its
    /// many small writes).
    pub fn same_allocation(&self) {
        /// One 4 KiB file system block.
        const EXTENT_BLOCK: u64 = 4096;
        let (q, i) = (self.theirs().join(&self.image), self.mine().join(&self.image));
        let (qm, im) = (data_ranges_of(&q).unwrap(), data_ranges_of(&i).unwrap());
        self.s.t.check(qm == im, || format!("data ranges: qemu-img {qm:x?}, instar {im:x?}"));
        let (qa, ia) = (allocated(&q).unwrap(), allocated(&i).unwrap());
        self.s.t.check(qa.abs_diff(ia) <= EXTENT_BLOCK, || {
            format!("allocated: qemu-img {qa} bytes, instar {ia} bytes")
        });
    }

    /// qemu-img's `info --output=json` says the same of both images, after
    /// the whitelist (path, actual size, vmdk CID).
    pub fn same_qemu_info(&self) {
        let args = ["info", "--output=json", &self.image];
        let q = self.s.t.run_ok(&self.s.qemu.path, &args, &self.theirs());
        let i = self.s.t.run_ok(&self.s.qemu.path, &args, &self.mine());
        let normal = |text: &str| {
            info_json::normalise_text(text, &self.image)
                .unwrap_or_else(|e| self.s.t.fail(&format!("qemu-img info is not JSON: {e}")))
        };
        self.s.t.assert_same(
            "qemu-img info --output=json: qemu-img's image (left), instar's (right)",
            &normal(&q.stdout),
            &normal(&i.stdout),
        );
    }

    /// `instar info` prints what qemu-img prints on the image in `dir`:
    /// JSON and human, with `-f` and probed.
    pub fn info_parity(&self, dir: &Path) {
        info_parity(&self.s, dir, &self.image, self.format());
    }

    /// `instar check` prints what qemu-img prints on the image in `dir`,
    /// human and JSON; returns qemu-img's exit code.
    pub fn check_parity(&self, dir: &Path) -> Option<i32> {
        let mut code = None;
        for output in ["--output=human", "--output=json"] {
            code = self.s.t.same(
                self.s.qemu,
                &["check", "-f", self.format(), output, &self.image],
                dir,
            );
        }
        code
    }

    /// `qemu-img check` finds instar's image clean.
    pub fn qemu_finds_mine_clean(&self) {
        let r = self.s.t.run(&self.s.qemu.path, &["check", &self.image], &self.mine());
        self.s.t.check(r.ok() && r.stdout == CLEAN, || "qemu-img check on instar's image".into());
    }

    /// The virtual size qemu-img reads from the image in `dir`.
    pub fn virtual_size(&self, dir: &Path) -> u64 {
        let args = ["info", "--output=json", "-f", self.format(), &self.image];
        let r = self.s.t.run_ok(&self.s.qemu.path, &args, dir);
        let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("qemu-img info JSON");
        v["virtual-size"].as_u64().expect("a virtual size")
    }

    /// qemu-img writes `data` (a raw file of the image's virtual size)
    /// into instar's image with `convert -n [flags]`, and reads the same
    /// data back (`convert -O raw`, compared byte for byte).
    pub fn qemu_writes_and_reads_back(&self, data: &Path, flags: &[&str]) {
        let (raw, back) = (path_str(data), path_str(&self.s.file("back.raw")));
        let mut convert = vec!["convert", "-n"];
        convert.extend(flags);
        convert.extend(["-f", "raw", "-O", self.format(), &raw, &self.image]);
        self.s.t.run_ok(&self.s.qemu.path, &convert, &self.mine());
        let convert_back = ["convert", "-f", self.format(), "-O", "raw", &self.image, &back];
        self.s.t.run_ok(&self.s.qemu.path, &convert_back, &self.mine());
        let what = "the data qemu-img wrote into instar's image and read back";
        self.s.t.assert_same_bytes(Target::Raw, data, &self.s.file("back.raw"), what);
    }
}

/// `instar info` prints what qemu-img prints on `image` in `dir`: JSON and
/// human, with `-f <format>` and probed.
pub fn info_parity(s: &Sandbox, dir: &Path, image: &str, format: &str) {
    for args in [
        &["info", "--output=json", "-f", format, image][..],
        &["info", "-f", format, image],
        &["info", "--output=json", image],
        &["info", image],
    ] {
        s.t.same(s.qemu, args, dir);
    }
}

/// A raw file of `size` bytes holding a pattern (the first and last 64 KiB
/// of the disk, a run in the middle, and a partial block), holes
/// elsewhere: guest data for [`Pair::qemu_writes_and_reads_back`].
pub fn write_pattern(path: &Path, size: u64) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::create(path).unwrap();
    f.set_len(size).unwrap();
    let mut seed = 0x1234_5678u32;
    for at in [0, 3 * 65536 + 512, size / 2 / 512 * 512, size.saturating_sub(65536)] {
        let block: Vec<u8> = (0..65536)
            .map(|_| {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (seed >> 16) as u8
            })
            .collect();
        let n = (size.saturating_sub(at)).min(65536) as usize;
        f.write_all_at(&block[..n], at).unwrap();
    }
}
