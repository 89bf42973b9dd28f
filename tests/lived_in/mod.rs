//! Images that have lived (issue 12): one named test per image kind and
//! qemu-img version, `lived_in::<group>::<kind>::version_N___X_Y_Z__`.
//!
//! Each group module makes its kinds with the oracle (qemu-img, qemu-io,
//! and edits of the bytes where no tool makes the shape) and hands the
//! result to [`compare`]: instar speaking as version V
//! (`INSTAR_QEMU_VERSION`) must print what qemu-img V prints for `info`
//! (human and JSON, probed and with `-f`), `check` (human and JSON),
//! `snapshot -l` for qcow2, `map` (human and JSON) and `compare` (issue
//! 13: the image against qemu-img's `convert -O raw` of it, which proves
//! instar's guest data), and the group's own command lines; stdout,
//! stderr and the exit code alike. Around every instar run, the checksum of
//! every file in the sandbox is taken: a run that changes one fails (the
//! read-only guarantee, shown rather than assumed).

use crate::util::{env, instar, qemu_or_skip, tempdir, Sandbox, Transcript};
use instar_matrix::qemu::QemuImg;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The versions every kind runs on (the `kinds!` test names).
const VERSIONS: [&str; 6] = ["5.2.0", "7.2.18", "7.2.22", "10.0.2", "10.0.13", "11.1.3"];

/// What a kind's recipe made: the image to read and how.
#[derive(Clone)]
pub struct Made {
    /// The image's file name in the sandbox (relative, as a user types it).
    pub image: String,
    /// Its format, for the `-f` runs.
    pub format: &'static str,
    /// Command lines compared besides the standard ones, e.g. `info
    /// --backing-chain IMAGE`, each as qemu-img's arguments.
    pub extra: Vec<Vec<String>>,
}

impl Made {
    /// An image of `format` named `image`, compared on the standard
    /// command lines only.
    pub fn new(image: &str, format: &'static str) -> Made {
        Made { image: image.to_string(), format, extra: Vec::new() }
    }

    /// Adds a command line to compare (qemu-img's arguments).
    pub fn with(mut self, args: &[&str]) -> Made {
        self.extra.push(args.iter().map(|a| (*a).to_string()).collect());
        self
    }
}

/// Runs qemu-io (the oracle's, beside its qemu-img) in the sandbox; it
/// must exit 0. Writes guest data as a VM would.
#[track_caller]
pub fn qemu_io(s: &Sandbox, args: &[&str]) {
    let qemu_io = s.qemu.path.with_file_name("qemu-io");
    s.t.run_ok(&qemu_io, args, s.path());
}

/// Runs the qemu-io commands `cmds` (each one `-c`) on `image` of
/// format `fmt`.
#[track_caller]
pub fn qemu_io_cmds(s: &Sandbox, fmt: &str, image: &str, cmds: &[&str]) {
    let mut args = vec!["-f", fmt];
    for c in cmds {
        args.extend(["-c", c]);
    }
    args.push(image);
    qemu_io(s, &args);
}

/// The standard command lines for an image of `format`.
fn standard(made: &Made) -> Vec<Vec<String>> {
    let image = made.image.as_str();
    let mut lines: Vec<Vec<&str>> = vec![
        vec!["info", image],
        vec!["info", "--output=json", image],
        vec!["info", "-f", made.format, image],
        vec!["info", "-f", made.format, "--output=json", image],
        vec!["check", image],
        vec!["check", "--output=json", image],
        vec!["check", "-f", made.format, image],
    ];
    if made.format == "qcow2" {
        lines.push(vec!["snapshot", "-l", image]);
    }
    lines.into_iter().map(|l| l.into_iter().map(str::to_string).collect()).collect()
}

/// The guest data of `made` as qemu-img (the oracle) reads it: its
/// `convert -O raw` into a folder of its own, outside the sandbox (so the
/// read-only proof need not read it again), or `None` when qemu-img cannot
/// read the image. The folder goes when the returned guard does.
pub fn reference(s: &Sandbox, made: &Made) -> (tempfile::TempDir, Option<PathBuf>) {
    let dir = tempdir();
    let raw = dir.path().join("guest.raw");
    let args = ["convert", "-O", "raw", made.image.as_str(), raw.to_str().expect("a UTF-8 path")];
    let converted = s.qemu(&args).code == Some(0);
    (dir, converted.then_some(raw))
}

/// The read-layer lines for `made`: `map` human (probed) and JSON (with
/// `-f`), and `compare` of the image against `reference` (its guest data
/// as qemu-img reads it), or against itself when qemu-img could not read
/// it (the failure is then what is compared).
pub fn reading(made: &Made, reference: Option<&Path>) -> Vec<Vec<String>> {
    let image = made.image.as_str();
    let other = reference.map_or(image, |r| r.to_str().expect("a UTF-8 path"));
    let lines: Vec<Vec<&str>> = vec![
        vec!["map", image],
        vec!["map", "-f", made.format, "--output=json", image],
        vec!["compare", image, other],
    ];
    lines.into_iter().map(|l| l.into_iter().map(str::to_string).collect()).collect()
}

/// A checksum of every file under `dir` (its contents and length), by
/// path.
fn checksums(dir: &Path) -> BTreeMap<PathBuf, u64> {
    let mut sums = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(kind) = entry.file_type() else { continue };
            if kind.is_dir() {
                pending.push(path);
            } else if kind.is_file() {
                let sum = crate::util::file_sum(&path);
                sums.insert(path, sum);
            }
        }
    }
    sums
}

/// Makes the image with `make`, then compares instar as `version` with
/// qemu-img `version` on every command line, each instar run proven
/// read-only by the checksums of the sandbox's files.
pub fn compare(make: fn(&Sandbox, &str) -> Made, kind: &str, version: &str) {
    let Some(s) = Sandbox::new() else { return };
    let Some(qemu) = qemu_or_skip(version) else { return };
    let made = make(&s, kind);
    compare_made(&s, qemu, &made, version);
}

/// A kind made once and copied into the sandbox of each version's test,
/// until every installed version has had its copy.
struct Cached {
    /// Where it was made (the folder goes with the entry).
    maker: Sandbox,
    made: Made,
    copies_left: usize,
}

/// The kinds made once, by group and kind.
type Cache = Mutex<HashMap<String, Arc<Mutex<Option<Cached>>>>>;

/// As [`compare`], for kinds whose making is slow (qemu-img times its
/// LUKS key derivation for a second or more per create): the first test
/// of a kind makes it, and each version's test gets a copy of the folder
/// (regular files, folders and symbolic links; the kinds using this make
/// no sparse or preallocated files, so a plain copy reads the same).
pub fn compare_cached(group: &str, make: fn(&Sandbox, &str) -> Made, kind: &str, version: &str) {
    static CACHE: std::sync::OnceLock<Cache> = std::sync::OnceLock::new();
    let Some(s) = Sandbox::new() else { return };
    let Some(qemu) = qemu_or_skip(version) else { return };
    let entry = {
        let mut cache = CACHE.get_or_init(Cache::default).lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(cache.entry(format!("{group}/{kind}")).or_default())
    };
    let made = {
        let mut slot = entry.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            let maker = Sandbox::new().expect("the oracle is installed");
            let made = make(&maker, kind);
            let copies_left = VERSIONS.iter().filter(|v| env().qemu(v).is_some()).count();
            *slot = Some(Cached { maker, made, copies_left });
        }
        let cached = slot.as_mut().expect("made above");
        copy_folder(cached.maker.path(), s.path());
        let made = cached.made.clone();
        cached.copies_left = cached.copies_left.saturating_sub(1);
        if cached.copies_left == 0 {
            // The last installed version's copy: the folder goes.
            *slot = None;
        }
        made
    };
    compare_made(&s, qemu, &made, version);
}

/// Copies the contents of folder `from` into folder `to`.
fn copy_folder(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("the made folder").flatten() {
        let (path, target) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type().expect("a file type");
        if kind.is_dir() {
            std::fs::create_dir(&target).expect("a folder");
            copy_folder(&path, &target);
        } else if kind.is_symlink() {
            let link = std::fs::read_link(&path).expect("a link");
            std::os::unix::fs::symlink(link, &target).expect("a link");
        } else {
            std::fs::copy(&path, &target).expect("a copy");
        }
    }
}

/// Compares instar as `version` with `qemu` on every command line of
/// `made`, in the sandbox `s`.
fn compare_made(s: &Sandbox, qemu: &QemuImg, made: &Made, version: &str) {
    let t: &Transcript = &s.t;
    let (_guard, guest) = reference(s, made);
    let mut lines = standard(made);
    lines.extend(reading(made, guest.as_deref()));
    lines.extend(made.extra.iter().cloned());
    // The DATE column of a snapshot list is local time: one zone for both.
    let zone = ("TZ", "UTC");
    for args in &lines {
        let theirs = t.run_env(&qemu.path, args, s.path(), &[zone]);
        let before = checksums(s.path());
        let mine = t.run_env(instar(), args, s.path(), &[zone, ("INSTAR_QEMU_VERSION", version)]);
        let what = format!("{} as {version}", args.join(" "));
        t.check(checksums(s.path()) == before, || format!("instar {what} changed a file"));
        t.assert_same_run(&what, &theirs, &mine);
    }
}

/// One test per kind and version: `kinds!(make_fn; kind, ...)` in a group
/// module, where `make_fn(&Sandbox, "kind") -> Made` makes the image;
/// `kinds!(cached "group", make_fn; ...)` makes each kind once for all
/// versions ([`compare_cached`]).
macro_rules! kinds {
    (cached $group:literal, $make:path; $($kind:ident),* $(,)?) => {
        $(
            #[rstest::rstest]
            fn $kind(
                #[values("5.2.0", "7.2.18", "7.2.22", "10.0.2", "10.0.13", "11.1.3")] version: &str,
            ) {
                $crate::lived_in::compare_cached($group, $make, stringify!($kind), version);
            }
        )*
    };
    ($make:path; $($kind:ident),* $(,)?) => {
        $(
            #[rstest::rstest]
            fn $kind(
                #[values("5.2.0", "7.2.18", "7.2.22", "10.0.2", "10.0.13", "11.1.3")] version: &str,
            ) {
                $crate::lived_in::compare($make, stringify!($kind), version);
            }
        )*
    };
}

mod chains;
mod data_file;
mod luks;
mod qcow2;
mod reads;
mod reads_qcow2;
mod reads_vhd;
mod reads_vmdk;
mod writers;
