//! The read-only guarantee: `info` and `check` never open an image, an
//! extent or a backing file for writing. Images of every format (a qcow2
//! with a backing chain, vmdks with extent files) are put on a read-only
//! bind mount, where an open for writing fails with `EROFS`; instar's
//! `info`, `info --output=json`, `check` and `check --output=json` there
//! print what qemu-img prints there and what instar prints on the same
//! files through a writable path, and the files keep their bytes, mtime
//! and ctime. A FIFO, as an image or as a backing file, is refused without
//! waiting for a writer; a device node as qemu's file protocol refuses it.
//! (`core::file`'s `images_are_opened_read_only` is the second proof, with
//! the kernel's own account of the open flags, and needs no root.)

use super::*;

/// A folder bind-mounted read-only for the length of a test.
struct BindMount {
    path: PathBuf,
}

impl BindMount {
    /// Mounts `src` at `dst` (an empty folder) read-only, or returns `None`
    /// after skipping the test when mounting is refused.
    fn read_only(t: &Transcript, src: &Path, dst: &Path) -> Option<BindMount> {
        let r = t.run(Path::new("mount"), &["--bind", &p(src), &p(dst)], src);
        if !r.ok() {
            skip(&format!("cannot bind-mount here: {}", r.stderr.trim()));
            return None;
        }
        let mount = BindMount { path: dst.to_path_buf() };
        t.run_ok(Path::new("mount"), &["-o", "remount,bind,ro", &p(dst)], src);
        Some(mount)
    }
}

impl Drop for BindMount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// A file's bytes, mtime and ctime (seconds and nanoseconds).
type Stamp = (Vec<u8>, (i64, i64), (i64, i64));

/// Each file of `dir` with its [`Stamp`].
fn stamps(dir: &Path) -> BTreeMap<String, Stamp> {
    crate::util::files_in(dir)
        .into_iter()
        .map(|name| {
            let path = dir.join(&name);
            let meta = std::fs::metadata(&path).expect("a file's metadata");
            let bytes = std::fs::read(&path).expect("a file's bytes");
            (name, (bytes, (meta.mtime(), meta.mtime_nsec()), (meta.ctime(), meta.ctime_nsec())))
        })
        .collect()
}

/// The inspecting commands, each run on `image`.
fn commands(image: &str) -> Vec<Vec<&str>> {
    [&["info"][..], &["info", "--output=json"], &["check"], &["check", "--output=json"]]
        .iter()
        .map(|c| c.iter().copied().chain([image]).collect())
        .collect()
}

/// Images made by qemu-img (`setup`: its command lines, words split at
/// spaces), inspected through a read-only bind mount: see the module's
/// text.
fn on_read_only_mount(setup: &[&str], image: &str) {
    let Some(s) = root_sandbox("bind-mount a folder read-only") else { return };
    let (src, ro) = (s.file("src"), s.file("ro"));
    std::fs::create_dir(&src).expect("mkdir");
    std::fs::create_dir(&ro).expect("mkdir");
    for line in setup {
        let args: Vec<&str> = line.split(' ').collect();
        s.t.run_ok(&s.qemu.path, &args, &src);
    }
    let before = stamps(&src);
    let Some(_mount) = BindMount::read_only(&s.t, &src, &ro) else { return };
    let probe = std::fs::OpenOptions::new().write(true).open(ro.join(image));
    s.t.check(probe.is_err(), || "the bind mount is not read-only".into());
    for args in commands(image) {
        let theirs = s.t.run(&s.qemu.path, &args, &ro);
        let mine = s.t.run(instar(), &args, &ro);
        s.t.assert_same_run(&args.join(" "), &theirs, &mine);
        let writable = s.t.run(instar(), &args, &src);
        let what = format!("{} on the read-only mount (left) and writable (right)", args.join(" "));
        s.t.assert_alike(&what, &mine, &writable);
    }
    let after = stamps(&src);
    s.t.check(before == after, || "a file's bytes, mtime or ctime changed".into());
}

#[rstest::rstest]
#[case::raw(&["create -q -f raw i.img 1M"])]
#[case::qcow2(&["create -q -f qcow2 i.img 1M"])]
#[case::qcow2_backing_chain(&[
    "create -q -f raw base.raw 1M",
    "create -q -f qcow2 -b base.raw -F raw mid.qcow2",
    "create -q -f qcow2 -b mid.qcow2 -F qcow2 i.img",
])]
#[case::vmdk(&["create -q -f vmdk i.img 1M"])]
#[case::vmdk_sparse_extents(&["create -q -f vmdk -o subformat=twoGbMaxExtentSparse i.img 3G"])]
#[case::vmdk_flat_extent(&["create -q -f vmdk -o subformat=monolithicFlat i.img 1M"])]
#[case::vmdk_backing(&[
    "create -q -f vmdk base.vmdk 1M",
    "create -q -f vmdk -b base.vmdk -F vmdk i.img",
])]
#[case::vmdk_stream(&["create -q -f vmdk -o subformat=streamOptimized i.img 1M"])]
#[case::vpc(&["create -q -f vpc i.img 1M"])]
#[case::vpc_fixed(&["create -q -f vpc -o subformat=fixed i.img 1M"])]
#[case::vhdx(&["create -q -f vhdx i.img 1M"])]
#[case::vhdx_fixed(&["create -q -f vhdx -o subformat=fixed i.img 1M"])]
fn images(#[case] setup: &[&str]) {
    on_read_only_mount(setup, "i.img");
}

/// `info` and `check` of a FIFO: refused at once with qemu's words for
/// what the file protocol does not open (`'file' driver requires ... to be
/// a regular file`), without waiting for a writer, and the FIFO is left
/// as it was. (qemu-img opens it blocking and waits forever, so it is not
/// run.)
#[test]
fn fifo() {
    let t = Transcript::default();
    let dir = crate::util::tempdir();
    t.run_ok(Path::new("mkfifo"), &["f"], dir.path());
    for args in commands("f") {
        let r = t.run_for(instar(), &args, dir.path(), NO_WAIT);
        let want = "instar: Could not open 'f': 'file' driver requires 'f' to be a regular file\n";
        t.check(r.code == Some(1) && r.stdout.is_empty(), || {
            format!("{args:?}: exit {:?}", r.code)
        });
        t.assert_same(&args.join(" "), want, &r.stderr);
    }
    t.check(node(&dir.path().join("f")) == Some(Node::Fifo), || "the FIFO changed".into());
}

/// `check` of a qcow2 whose backing file is a FIFO: the backing chain is
/// opened as the image is, without waiting (qemu-img waits forever).
#[test]
fn fifo_backing_file() {
    let Some(s) = Sandbox::new() else { return };
    s.t.run_ok(Path::new("mkfifo"), &["base.raw"], s.path());
    s.qemu_ok(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        "-u",
        "-b",
        "base.raw",
        "-F",
        "raw",
        "top.qcow2",
        "1M",
    ]);
    for args in [&["check", "top.qcow2"][..], &["check", "--output=json", "top.qcow2"]] {
        let r = s.t.run_for(instar(), args, s.path(), NO_WAIT);
        let want = "instar: Could not open 'top.qcow2': Could not open backing file: \
                    'file' driver requires 'base.raw' to be a regular file\n";
        s.t.check(r.code == Some(1), || format!("{args:?}: exit {:?}", r.code));
        s.t.assert_same(&args.join(" "), want, &r.stderr);
    }
    s.t.check(node(&s.file("base.raw")) == Some(Node::Fifo), || "the FIFO changed".into());
}

/// `info` and `check` of copies of /dev/null and /dev/full: what qemu-img
/// prints for them through its file protocol (`file:<name>`; without the
/// prefix qemu-img reads the device through its host_device protocol),
/// and the nodes stay as they were.
#[rstest::rstest]
#[case::dev_null("3")]
#[case::dev_full("7")]
fn device_node(#[case] minor: &str) {
    let Some(s) = root_sandbox("make device nodes") else { return };
    s.t.run_ok(Path::new("mknod"), &["n", "c", "1", minor], s.path());
    let before = node(&s.file("n"));
    for args in commands("n") {
        let mut theirs_args = args.clone();
        *theirs_args.last_mut().expect("the image") = "file:n";
        let mut theirs = s.qemu(&theirs_args);
        theirs.stderr = theirs.stderr.replace("'file:n'", "'n'");
        let mine = s.t.run_for(instar(), &args, s.path(), NO_WAIT);
        s.t.assert_same_run(&args.join(" "), &theirs, &mine);
    }
    s.t.check(node(&s.file("n")) == before, || "the device node changed".into());
}
