//! Faults during create, and the read-only guarantee of `info` and
//! `check` (docs/compat.md §8.6): instar against the oracle, one named test
//! per (fault, format).
//!
//! ```text
//! faults::out_of_space::<case>             a create that fills a small tmpfs
//! faults::efbig::<case>                    a create past RLIMIT_FSIZE (EFBIG)
//! faults::read_only_folder::<case>         a create as `nobody` where it may not write
//! faults::special_target::<format>::<kind> a target that is a folder, a symbolic link,
//!                                          a FIFO, a device node or an existing file
//! faults::read_only::<case>                info and check of images on a read-only
//!                                          bind mount; FIFOs and device nodes
//! ```
//!
//! Each create is run by qemu-img and by instar on the same setup, each in
//! its own folder: the output and exit code must be the same, program name
//! aside. Then the folder must hold what the rule says: after a failure,
//! everything as it was before (a file that was there byte for byte, a
//! symbolic link still the same link, a FIFO or device node still there
//! with the same device number, no new file), with one exception: a
//! regular file that was already at the path and that the create had
//! emptied (as qemu empties it, before it knows the create will fail) is
//! left empty rather than half-written. After a success, the same files as
//! qemu-img's, byte for byte outside the masks. What qemu-img itself leaves
//! after a failure (often a partial file) is not asserted: that is the
//! deliberate difference of docs/compat.md §8.1.
//!
//! Tests that mount a tmpfs, make device nodes or run as `nobody` need
//! root; elsewhere they skip, saying so (CI runs as root, so nothing
//! skips there).

use crate::util::{instar, skip, Run, Sandbox, Transcript};
use instar_matrix::Target;
use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

mod read_only;

/// The name every create here makes (vmdk's split extents are named
/// after it: `t-s001.img`, ...).
const IMAGE: &str = "t.img";

/// What a file that was at the path holds before a create.
const PRECIOUS: &[u8] = b"precious data, not an image\n";

/// Whether this process runs as root (`/proc/self` belongs to the
/// effective user).
fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// A sandbox for a test that needs root, or `None` after skipping it.
fn root_sandbox(why: &str) -> Option<Sandbox> {
    let s = Sandbox::new()?;
    if !is_root() {
        skip(&format!("needs root to {why} (CI runs as root)"));
        return None;
    }
    Some(s)
}

/// What is at a path, as the tests compare it before and after.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    /// A regular file and its bytes.
    File(Vec<u8>),
    /// A symbolic link and where it points.
    Link(PathBuf),
    /// A folder and what it holds.
    Dir(BTreeMap<String, Node>),
    /// A FIFO.
    Fifo,
    /// A character device and its device number.
    Char(u64),
    /// A block device and its device number.
    Block(u64),
    /// Anything else (a socket).
    Other,
}

/// What is at `path` (without following a link), if anything.
fn node(path: &Path) -> Option<Node> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    let kind = meta.file_type();
    Some(if kind.is_symlink() {
        Node::Link(std::fs::read_link(path).expect("a link's target"))
    } else if kind.is_dir() {
        Node::Dir(tree(path))
    } else if kind.is_file() {
        Node::File(std::fs::read(path).expect("a file's bytes"))
    } else if kind.is_fifo() {
        Node::Fifo
    } else if kind.is_char_device() {
        Node::Char(meta.rdev())
    } else if kind.is_block_device() {
        Node::Block(meta.rdev())
    } else {
        Node::Other
    })
}

/// What the folder `dir` holds, by name.
fn tree(dir: &Path) -> BTreeMap<String, Node> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let e = e.expect("a folder entry");
            let name = e.file_name().to_string_lossy().into_owned();
            let node = node(&e.path()).expect("an entry just listed");
            (name, node)
        })
        .collect()
}

/// A one-line summary of a folder's content, for failure messages.
fn summary(tree: &BTreeMap<String, Node>) -> String {
    tree.iter()
        .map(|(name, n)| match n {
            Node::File(b) => format!("{name} ({} bytes)", b.len()),
            other => format!("{name} ({other:?})"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs `program args` in `cwd` with a file size limit of `limit` bytes
/// (`RLIMIT_FSIZE`) and `SIGXFSZ` ignored, as `trap '' XFSZ` leaves it for
/// the program: a write or resize past the limit fails with `EFBIG`
/// instead of killing the program.
fn run_limited(t: &Transcript, program: &Path, args: &[&str], cwd: &Path, limit: u64) -> Run {
    let script = "trap '' XFSZ; exec prlimit --fsize=\"$0\" -- \"$@\"";
    let limit = limit.to_string();
    let program = program.display().to_string();
    let mut argv = vec!["-c", script, &limit, &program];
    argv.extend(args);
    t.run(Path::new("/bin/sh"), &argv, cwd)
}

/// Runs `program args` in `cwd` as the user `nobody` (group `nogroup`, no
/// other groups).
fn run_as_nobody(t: &Transcript, program: &Path, args: &[&str], cwd: &Path) -> Run {
    let program = program.display().to_string();
    let mut argv = vec!["--reuid=nobody", "--regid=nogroup", "--clear-groups", &program];
    argv.extend(args);
    t.run(Path::new("setpriv"), &argv, cwd)
}

/// The size of a memory page, tmpfs's unit of space.
fn page_size() -> u64 {
    static PAGE: OnceLock<u64> = OnceLock::new();
    *PAGE.get_or_init(|| {
        let out = std::process::Command::new("getconf").arg("PAGESIZE").output();
        let text = out.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
        text.ok().and_then(|t| t.parse().ok()).unwrap_or(4096)
    })
}

/// A tmpfs mounted for the length of a test, unmounted (lazily, so that
/// nothing keeps it busy) when dropped.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `pages` pages at `path` (an empty folder), or
    /// returns `None` after skipping the test when mounting is refused.
    fn mount(t: &Transcript, path: &Path, pages: u64) -> Option<Tmpfs> {
        let size = format!("size={}", pages * page_size());
        let r = t.run(Path::new("mount"), &["-t", "tmpfs", "-o", &size, "tmpfs", &p(path)], path);
        if !r.ok() {
            skip(&format!("cannot mount a tmpfs here: {}", r.stderr.trim()));
            return None;
        }
        Some(Tmpfs { path: path.to_path_buf() })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// A path as an argument.
fn p(path: &Path) -> String {
    path.to_str().expect("temporary paths are UTF-8").to_string()
}

/// What one program did in its own folder.
struct Outcome {
    run: Run,
    /// The folder's content before the run.
    before: BTreeMap<String, Node>,
    /// The folder's content after it.
    after: BTreeMap<String, Node>,
    /// The inode of the file at [`IMAGE`] before and after, if one was there.
    inodes: (Option<u64>, Option<u64>),
}

/// The inode of what is at `path`, if anything.
fn inode(path: &Path) -> Option<u64> {
    std::fs::symlink_metadata(path).ok().map(|m| m.ino())
}

/// Runs the create `run` for qemu-img and for instar, each in a folder of
/// its own under the sandbox (`qemu-img/`, `instar/`) that `setup`
/// prepared; returns qemu-img's outcome, then instar's.
fn both(
    s: &Sandbox,
    setup: &dyn Fn(&Path) -> Option<Vec<Tmpfs>>,
    run: &dyn Fn(&Path, &Path) -> Run,
) -> Option<(Outcome, Outcome)> {
    let mut outcomes = Vec::new();
    for (who, program) in [("qemu-img", s.qemu.path.as_path()), ("instar", instar())] {
        let dir = s.file(who);
        std::fs::create_dir(&dir).expect("a folder for the run");
        let mounts = setup(&dir)?;
        let before = tree(&dir);
        let ino_before = inode(&dir.join(IMAGE));
        let r = run(program, &dir);
        let after = tree(&dir);
        let ino_after = inode(&dir.join(IMAGE));
        drop(mounts);
        outcomes.push(Outcome { run: r, before, after, inodes: (ino_before, ino_after) });
    }
    let mine = outcomes.pop()?;
    let theirs = outcomes.pop()?;
    Some((theirs, mine))
}

/// The failure rule for instar's outcome of a failed create: the folder
/// as it was, except that a regular file the create emptied (one that was
/// at [`IMAGE`]) is the same file, left empty.
fn assert_left_as_before(t: &Transcript, mine: &Outcome) {
    t.check(!mine.run.ok(), || "the create was expected to fail".into());
    let mut expected = mine.before.clone();
    if let Some(Node::File(bytes)) = expected.get_mut(IMAGE) {
        if matches!(mine.after.get(IMAGE), Some(Node::File(b)) if b.is_empty()) {
            bytes.clear();
            t.check(mine.inodes.0 == mine.inodes.1, || "the file at the path was replaced".into());
        }
    }
    t.check(mine.after == expected, || {
        format!(
            "instar left the folder changed:\nbefore: {}\nafter:  {}",
            summary(&mine.before),
            summary(&mine.after)
        )
    });
}

/// Fails unless qemu-img and instar printed the same (program name
/// aside; `file:` before the name in qemu-img's messages when `via_file`)
/// and exited alike.
fn assert_same_output(t: &Transcript, theirs: &Run, mine: &Run, via_file: bool) {
    let mut theirs = theirs.clone();
    if via_file {
        theirs.stderr = theirs.stderr.replace(&format!("file:{IMAGE}"), IMAGE);
    }
    t.assert_same_run("create", &theirs, mine);
}

/// Out of space: a tmpfs of `free + 1` pages, one of them taken by a
/// filler file, so that `free` pages are left for the create (`existing`:
/// with a one-page file at the path, which the create empties first, so
/// that `free` pages are left then too). instar and qemu-img print the
/// same and exit alike; instar leaves nothing (qemu-img leaves what it had
/// written, or an empty file), or the file that was there, emptied, as
/// qemu-img's order empties it before it runs out of space (the old bytes
/// cannot be had back without writing the new image elsewhere first,
/// which would need twice the space and a new inode).
fn out_of_space(free: u64, existing: bool, args: &[&str]) {
    let Some(s) = root_sandbox("mount a tmpfs") else { return };
    let page = usize::try_from(page_size()).expect("a page size");
    let setup = |dir: &Path| {
        let mount = Tmpfs::mount(&s.t, dir, free + 1)?;
        std::fs::write(dir.join("filler"), vec![1u8; page]).expect("the filler");
        if existing {
            std::fs::write(dir.join(IMAGE), PRECIOUS).expect("the file already there");
        }
        Some(vec![mount])
    };
    let run = |program: &Path, dir: &Path| s.t.run(program, args, dir);
    let Some((theirs, mine)) = both(&s, &setup, &run) else { return };
    assert_same_output(&s.t, &theirs.run, &mine.run, false);
    assert_left_as_before(&s.t, &mine);
}

/// `create -q -f <args...> t.img <size>`.
macro_rules! create {
    ($($arg:expr),* ; $size:expr) => {
        &["create", "-q", $($arg,)* IMAGE, $size]
    };
}

mod out_of_space {
    use super::*;

    /// A 4 MiB image on a 1 MiB file system, `free` pages left, the file at
    /// the path already there or not.
    #[rstest::rstest]
    #[case::raw_full(255, false, create!("-f", "raw", "-o", "preallocation=full"; "4M"))]
    #[case::raw_falloc(255, false, create!("-f", "raw", "-o", "preallocation=falloc"; "4M"))]
    #[case::raw_full_existing(255, true, create!("-f", "raw", "-o", "preallocation=full"; "4M"))]
    #[case::qcow2_full(255, false, create!("-f", "qcow2", "-o", "preallocation=full"; "4M"))]
    #[case::qcow2_falloc(255, false, create!("-f", "qcow2", "-o", "preallocation=falloc"; "4M"))]
    #[case::qcow2_full_existing(255, true, create!("-f", "qcow2", "-o", "preallocation=full"; "4M"))]
    #[case::qcow2_header(0, false, create!("-f", "qcow2"; "1M"))]
    // One page: the header fits, the grain directory does not.
    #[case::vmdk_grain_directory(1, false, create!("-f", "vmdk"; "1M"))]
    #[case::vmdk_grain_directory_existing(1, true, create!("-f", "vmdk"; "1M"))]
    #[case::vmdk_flat_descriptor(0, false, create!("-f", "vmdk", "-o", "subformat=monolithicFlat"; "1M"))]
    #[case::vmdk_split_flat_descriptor(0, false, create!("-f", "vmdk", "-o", "subformat=twoGbMaxExtentFlat"; "5G"))]
    // Ten pages: the descriptor file takes one, each 2 GiB sparse extent
    // three (its header, grain directory and backup), so the last of four
    // extents fails on its first write, after three were made. (qemu-img
    // goes on after a failed extent and aborts on a second failure, so the
    // failing one is the last.)
    #[case::vmdk_split_sparse_last_extent(10, false, create!("-f", "vmdk", "-o", "subformat=twoGbMaxExtentSparse"; "8G"))]
    #[case::vmdk_split_sparse_existing(10, true, create!("-f", "vmdk", "-o", "subformat=twoGbMaxExtentSparse"; "8G"))]
    #[case::vpc_header(0, false, create!("-f", "vpc"; "1M"))]
    // 2040 GiB: a 4 MiB block allocation table.
    #[case::vpc_bat(255, false, create!("-f", "vpc"; "2040G"))]
    #[case::vpc_bat_existing(255, true, create!("-f", "vpc"; "2040G"))]
    #[case::vhdx_signature(0, false, create!("-f", "vhdx"; "1M"))]
    #[case::vhdx_fixed_bat(255, false, create!("-f", "vhdx", "-o", "subformat=fixed"; "4M"))]
    #[case::vhdx_fixed_existing(255, true, create!("-f", "vhdx", "-o", "subformat=fixed"; "4M"))]
    fn create(#[case] free: u64, #[case] existing: bool, #[case] args: &[&str]) {
        out_of_space(free, existing, args);
    }
}

/// EFBIG: the create runs with a file size limit of `limit` bytes. instar
/// and qemu-img print the same and exit alike (qemu's block layer words
/// EFBIG as `The image size is too large for file format ...` when the
/// format returns it; qemu's vmdk does not return an extent's failure, so
/// the file protocol's words stand there); instar leaves the folder as it
/// was, or the file that was there emptied.
fn efbig(limit: u64, existing: bool, args: &[&str]) {
    let Some(s) = Sandbox::new() else { return };
    let setup = |dir: &Path| {
        if existing {
            std::fs::write(dir.join(IMAGE), PRECIOUS).expect("the file already there");
        }
        Some(Vec::new())
    };
    let run = |program: &Path, dir: &Path| run_limited(&s.t, program, args, dir, limit);
    let Some((theirs, mine)) = both(&s, &setup, &run) else { return };
    assert_same_output(&s.t, &theirs.run, &mine.run, false);
    assert_left_as_before(&s.t, &mine);
}

mod efbig {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[rstest::rstest]
    #[case::raw(MIB, false, create!("-f", "raw"; "4G"))]
    #[case::raw_existing(MIB, true, create!("-f", "raw"; "4G"))]
    #[case::raw_falloc(MIB, false, create!("-f", "raw", "-o", "preallocation=falloc"; "4G"))]
    #[case::raw_full(MIB, false, create!("-f", "raw", "-o", "preallocation=full"; "4G"))]
    #[case::qcow2_full(MIB, false, create!("-f", "qcow2", "-o", "preallocation=full"; "4G"))]
    #[case::qcow2_falloc(MIB, false, create!("-f", "qcow2", "-o", "preallocation=falloc"; "4G"))]
    #[case::qcow2_metadata(MIB, false, create!("-f", "qcow2", "-o", "preallocation=metadata"; "4G"))]
    #[case::qcow2_metadata_existing(MIB, true, create!("-f", "qcow2", "-o", "preallocation=metadata"; "4G"))]
    // 1 KiB: the header fits, its first cluster does not.
    #[case::qcow2_header(1024, false, create!("-f", "qcow2"; "1M"))]
    // A 1 TiB sparse extent is sized to 128 MiB before its grain
    // directories are written.
    #[case::vmdk_sparse(MIB, false, create!("-f", "vmdk"; "1T"))]
    #[case::vmdk_sparse_existing(MIB, true, create!("-f", "vmdk"; "1T"))]
    #[case::vmdk_stream(MIB, false, create!("-f", "vmdk", "-o", "subformat=streamOptimized"; "1T"))]
    #[case::vmdk_flat(MIB, false, create!("-f", "vmdk", "-o", "subformat=monolithicFlat"; "4G"))]
    // One flat extent past the limit (two would abort qemu-img).
    #[case::vmdk_split_flat(MIB, false, create!("-f", "vmdk", "-o", "subformat=twoGbMaxExtentFlat"; "1536K"))]
    #[case::vpc_dynamic(1024, false, create!("-f", "vpc"; "1M"))]
    #[case::vpc_fixed(MIB, false, create!("-f", "vpc", "-o", "subformat=fixed"; "4G"))]
    #[case::vpc_fixed_existing(MIB, true, create!("-f", "vpc", "-o", "subformat=fixed"; "4G"))]
    #[case::vhdx(MIB, false, create!("-f", "vhdx"; "4G"))]
    #[case::vhdx_fixed(MIB, false, create!("-f", "vhdx", "-o", "subformat=fixed"; "4G"))]
    fn create(#[case] limit: u64, #[case] existing: bool, #[case] args: &[&str]) {
        efbig(limit, existing, args);
    }
}

/// A create run as `nobody` in a folder of mode 0555 (`setup` may first
/// put files there, owned by `nobody`). instar and qemu-img print the same
/// and exit alike (`Permission denied`), and instar leaves the folder as it
/// was: no file, and a file that was there untouched (qemu-img empties a
/// vmdk descriptor it may write before it finds it may not make the
/// extents).
fn read_only_folder(setup: &dyn Fn(&Path), args: &[&str]) {
    let Some(s) = root_sandbox("run as nobody") else { return };
    // nobody must reach the folders and run instar: a copy of it in the
    // sandbox (the build folder may be closed to others).
    let open = std::fs::Permissions::from_mode(0o755);
    std::fs::set_permissions(s.path(), open.clone()).expect("chmod the sandbox");
    let bin = s.file("bin-instar");
    std::fs::copy(instar(), &bin).expect("a copy of instar");
    std::fs::set_permissions(&bin, open).expect("chmod instar");
    let prepare = |dir: &Path| {
        setup(dir);
        for name in crate::util::files_in(dir) {
            std::os::unix::fs::lchown(dir.join(name), Some(65534), Some(65534)).expect("chown");
        }
        let closed = std::fs::Permissions::from_mode(0o555);
        std::fs::set_permissions(dir, closed).expect("chmod the folder");
        Some(Vec::new())
    };
    let run = |program: &Path, dir: &Path| {
        let program = if program == instar() { bin.as_path() } else { program };
        run_as_nobody(&s.t, program, args, dir)
    };
    let Some((theirs, mine)) = both(&s, &prepare, &run) else { return };
    for who in ["qemu-img", "instar"] {
        let writable = std::fs::Permissions::from_mode(0o755);
        std::fs::set_permissions(s.file(who), writable).expect("chmod back");
    }
    assert_same_output(&s.t, &theirs.run, &mine.run, false);
    s.t.check(mine.run.stderr.contains("Permission denied"), || {
        "not refused for permission".into()
    });
    s.t.check(mine.after == mine.before, || {
        format!(
            "instar changed the folder:\nbefore: {}\nafter:  {}",
            summary(&mine.before),
            summary(&mine.after)
        )
    });
}

/// Nothing in the folder.
fn empty(_: &Path) {}

/// A file at the path, writable by its owner.
fn existing(dir: &Path) {
    std::fs::write(dir.join(IMAGE), PRECIOUS).expect("the file already there");
}

/// A file at the path that its owner may only read.
fn read_only_file(dir: &Path) {
    existing(dir);
    let ro = std::fs::Permissions::from_mode(0o444);
    std::fs::set_permissions(dir.join(IMAGE), ro).expect("chmod the file");
}

mod read_only_folder {
    use super::*;

    #[rstest::rstest]
    #[case::raw(empty, create!("-f", "raw"; "1M"))]
    #[case::qcow2(empty, create!("-f", "qcow2"; "1M"))]
    #[case::vmdk(empty, create!("-f", "vmdk"; "1M"))]
    #[case::vmdk_split(empty, create!("-f", "vmdk", "-o", "subformat=twoGbMaxExtentSparse"; "3G"))]
    #[case::vpc(empty, create!("-f", "vpc"; "1M"))]
    #[case::vhdx(empty, create!("-f", "vhdx"; "1M"))]
    // The descriptor may be written, its extents may not be made: qemu-img
    // writes into the descriptor, then fails; instar finds the failure
    // first and leaves the descriptor as it was.
    #[case::vmdk_split_existing_descriptor(existing, create!("-f", "vmdk", "-o", "subformat=twoGbMaxExtentSparse"; "3G"))]
    #[case::vmdk_flat_existing_descriptor(existing, create!("-f", "vmdk", "-o", "subformat=monolithicFlat"; "1M"))]
    #[case::raw_read_only_file(read_only_file, create!("-f", "raw"; "1M"))]
    #[case::qcow2_read_only_file(read_only_file, create!("-f", "qcow2"; "1M"))]
    #[case::qcow2_read_only_file_refused_option(read_only_file, create!("-f", "qcow2", "-o", "cluster_size=3"; "1M"))]
    fn create(#[case] setup: fn(&Path), #[case] args: &[&str]) {
        read_only_folder(&setup, args);
    }
}

/// How a format is created in the special-target tests: its `-f` and
/// `-o`, the target of its masks, and an option it refuses only after
/// qemu-img has created the file.
struct Format {
    flags: &'static [&'static str],
    target: Target,
    refused: &'static str,
}

const RAW: Format =
    Format { flags: &["-f", "raw"], target: Target::Raw, refused: "preallocation=metadata" };
const QCOW2: Format =
    Format { flags: &["-f", "qcow2"], target: Target::Qcow2, refused: "cluster_size=3" };
const VMDK: Format =
    Format { flags: &["-f", "vmdk"], target: Target::Vmdk, refused: "preallocation=metadata" };
const VMDK_SPLIT: Format = Format {
    flags: &["-f", "vmdk", "-o", "subformat=twoGbMaxExtentSparse"],
    target: Target::Vmdk,
    refused: "preallocation=metadata",
};
const VPC: Format = Format { flags: &["-f", "vpc"], target: Target::Vhd, refused: "subformat=foo" };
const VHDX: Format =
    Format { flags: &["-f", "vhdx"], target: Target::Vhdx, refused: "block_size=3M" };

/// What is at the path before the create.
#[derive(Clone, Copy, Debug)]
enum Kind {
    /// A folder.
    Directory,
    /// A symbolic link to a regular file: qemu-img writes through it.
    SymlinkToFile,
    /// A symbolic link to nothing: qemu-img creates its target.
    DanglingSymlink,
    /// A symbolic link to a folder.
    SymlinkToDir,
    /// A FIFO (qemu-img opens it read-write, which does not wait).
    Fifo,
    /// A copy of /dev/null (character device 1:3).
    DevNull,
    /// A copy of /dev/full (character device 1:7).
    DevFull,
    /// A regular file: overwritten by a create that succeeds.
    ExistingFile,
}

impl Kind {
    /// Makes the thing at `dir/IMAGE`.
    fn make(self, t: &Transcript, dir: &Path) {
        let at = dir.join(IMAGE);
        match self {
            Kind::Directory => std::fs::create_dir(&at).expect("mkdir"),
            Kind::SymlinkToFile => {
                std::fs::write(dir.join("f.img"), PRECIOUS).expect("the link's target");
                std::os::unix::fs::symlink("f.img", &at).expect("symlink");
            }
            Kind::DanglingSymlink => std::os::unix::fs::symlink("none.img", &at).expect("symlink"),
            Kind::SymlinkToDir => {
                std::fs::create_dir(dir.join("d")).expect("mkdir");
                std::os::unix::fs::symlink("d", &at).expect("symlink");
            }
            Kind::Fifo => {
                t.run_ok(Path::new("mkfifo"), &[IMAGE], dir);
            }
            Kind::DevNull | Kind::DevFull => {
                let minor = if matches!(self, Kind::DevNull) { "3" } else { "7" };
                t.run_ok(Path::new("mknod"), &[IMAGE, "c", "1", minor], dir);
            }
            Kind::ExistingFile => std::fs::write(&at, PRECIOUS).expect("the file already there"),
        }
    }

    /// Whether making it needs root.
    fn needs_root(self) -> bool {
        matches!(self, Kind::DevNull | Kind::DevFull)
    }
}

/// A create of `format` (with `extra` options, and `size`) onto a path
/// where `kind` is. instar prints what qemu-img prints and exits alike;
/// for a device node, what qemu-img prints for `file:<name>` (instar serves
/// qemu's file protocol only; qemu picks its host_device protocol for a
/// device node and writes the image onto the device). After a failure,
/// instar leaves the folder as it was (the node or link still there, the
/// same); after a success, the same files as qemu-img, byte for byte
/// outside the masks.
fn special_target(format: &Format, kind: Kind, extra: &str, size: &str) {
    let s = if kind.needs_root() { root_sandbox("make device nodes") } else { Sandbox::new() };
    let Some(s) = s else { return };
    let mut args = vec!["create", "-q"];
    args.extend(format.flags);
    if !extra.is_empty() {
        args.extend(["-o", extra]);
    }
    let setup = |dir: &Path| {
        kind.make(&s.t, dir);
        Some(Vec::new())
    };
    let via_file = kind.needs_root();
    let file_name = format!("file:{IMAGE}");
    let run = |program: &Path, dir: &Path| {
        let name = if via_file && program != instar() { file_name.as_str() } else { IMAGE };
        let mut argv = args.clone();
        argv.extend([name, size]);
        s.t.run_for(program, &argv, dir, NO_WAIT)
    };
    let Some((theirs, mine)) = both(&s, &setup, &run) else { return };
    assert_same_output(&s.t, &theirs.run, &mine.run, via_file);
    if mine.run.ok() {
        same_files(&s, format.target);
    } else {
        assert_left_as_before(&s.t, &mine);
        // Nothing was emptied: the rule's exception is for write failures.
        s.t.check(mine.after == mine.before, || "instar emptied the file at the path".into());
    }
}

/// Fails unless `qemu-img/` and `instar/` hold the same files: links to
/// the same places, images alike outside the masks of `target` (other
/// files, extents, byte for byte).
fn same_files(s: &Sandbox, target: Target) {
    let (q, i) = (s.file("qemu-img"), s.file("instar"));
    let (theirs, mine) = (tree(&q), tree(&i));
    let names = |t: &BTreeMap<String, Node>| t.keys().cloned().collect::<Vec<_>>();
    s.t.check(names(&theirs) == names(&mine), || {
        format!("files: qemu-img {}, instar {}", summary(&theirs), summary(&mine))
    });
    for (name, node) in &theirs {
        match (node, &mine[name]) {
            (Node::File(_), Node::File(_)) => {
                // The image is the file the name leads to; extents are raw.
                let is_image =
                    name.ends_with(".img") && !name.contains("-s0") && !name.contains("-f0");
                let t = if is_image { target } else { Target::Raw };
                s.t.assert_same_bytes(t, &q.join(name), &i.join(name), name);
            }
            (a, b) => s.t.check(a == b, || format!("{name}: qemu-img {a:?}, instar {b:?}")),
        }
    }
}

/// One module per format, one test per kind of target:
/// `special_target::<format>::<kind>`.
macro_rules! special_targets {
    ($($module:ident: $format:expr, $size:literal;)*) => {
        $(
            mod $module {
                use super::*;

                #[test]
                fn directory() {
                    special_target(&$format, Kind::Directory, "", $size);
                }

                #[test]
                fn symlink_to_file() {
                    special_target(&$format, Kind::SymlinkToFile, "", $size);
                }

                #[test]
                fn dangling_symlink() {
                    special_target(&$format, Kind::DanglingSymlink, "", $size);
                }

                /// qemu-img creates the link's target, then fails; instar
                /// leaves the link dangling, as it was.
                #[test]
                fn dangling_symlink_refused() {
                    special_target(&$format, Kind::DanglingSymlink, $format.refused, $size);
                }

                #[test]
                fn symlink_to_dir() {
                    special_target(&$format, Kind::SymlinkToDir, "", $size);
                }

                #[test]
                fn fifo() {
                    special_target(&$format, Kind::Fifo, "", $size);
                }

                /// A refusal found before the file is touched must not
                /// wait on the FIFO either.
                #[test]
                fn fifo_refused() {
                    special_target(&$format, Kind::Fifo, $format.refused, $size);
                }

                #[test]
                fn dev_null() {
                    special_target(&$format, Kind::DevNull, "", $size);
                }

                #[test]
                fn dev_full() {
                    special_target(&$format, Kind::DevFull, "", $size);
                }

                #[test]
                fn dev_null_refused() {
                    special_target(&$format, Kind::DevNull, $format.refused, $size);
                }

                /// The size whose truncate fails (`Could not resize file:
                /// Invalid argument`): a failed create must not remove the
                /// node (instar once did).
                #[test]
                fn dev_null_huge() {
                    special_target(&$format, Kind::DevNull, "", "9223372036854775807");
                }

                #[test]
                fn existing_file() {
                    special_target(&$format, Kind::ExistingFile, "", $size);
                }

                #[test]
                fn existing_file_refused() {
                    special_target(&$format, Kind::ExistingFile, $format.refused, $size);
                }
            }
        )*
    };
}

mod special_target {
    use super::*;

    special_targets! {
        raw: RAW, "1M";
        qcow2: QCOW2, "1M";
        vmdk: VMDK, "1M";
        vmdk_split: VMDK_SPLIT, "3G";
        vpc: VPC, "1M";
        vhdx: VHDX, "1M";
    }
}

/// How long a command on a FIFO (or anything else here) may take before it
/// counts as waiting on it.
const NO_WAIT: Duration = Duration::from_secs(20);
