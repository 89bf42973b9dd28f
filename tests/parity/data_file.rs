//! qcow2 with an external data file (`-o data_file=NAME`) against every
//! qemu-img version: both programs create the image in sibling folders
//! (`qemu/`, `instar/`) with the same command line, instar speaking as the
//! version (`INSTAR_QEMU_VERSION`); they must print and exit alike, leave
//! the same files, the same bytes in both the image (outside the qcow2
//! masks of docs/compat.md §3) and the data file (byte for byte), and
//! allocate them alike. A refused create prints qemu-img's words and
//! leaves instar's folder exactly as it was (docs/compat.md §8.1: qemu-img
//! deletes both files, an existing data file included; 5.2 leaves them
//! empty).

use crate::util::{create_args, files_in, instar, path_str, qemu_or_skip, Sandbox};
use instar_matrix::files::{allocated, data_ranges_of};
use instar_matrix::Target;
use rstest::rstest;
use std::collections::BTreeMap;
use std::path::Path;

/// The image's name in both folders.
const IMAGE: &str = "img.qcow2";

/// What both folders hold before the create: a folder `sub/`, a folder
/// `dd/` (a data file name that is a folder), a symbolic link `l.qcow2`
/// to the image (dangling until it is made), a 1 MiB raw backing file
/// `b.raw`, and, when `existing`, a data file `d.raw` of 100000 bytes of
/// a pattern (no zeros).
fn furnish(dir: &Path, existing: bool) {
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::create_dir_all(dir.join("dd")).unwrap();
    std::fs::File::create(dir.join("b.raw")).unwrap().set_len(1 << 20).unwrap();
    std::os::unix::fs::symlink(IMAGE, dir.join("l.qcow2")).unwrap();
    if existing {
        let pattern: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8 + 1).collect();
        std::fs::write(dir.join("d.raw"), pattern).unwrap();
    }
}

/// Every regular file under `dir` (relative name) with its bytes.
fn contents(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).unwrap().flatten() {
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                pending.push(path);
            } else {
                let name = path.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                out.insert(name, std::fs::read(&path).unwrap_or_default());
            }
        }
    }
    out
}

/// Runs the create with qemu-img `version` and instar as `version`, each
/// in its folder; fails unless they print and exit alike. Returns the
/// sandbox and whether qemu-img succeeded, or `None` after a skip.
fn create_both(
    version: &str,
    options: &str,
    size: &str,
    existing: bool,
) -> Option<(Sandbox, bool)> {
    let s = Sandbox::new()?;
    let qemu = qemu_or_skip(version)?;
    let (theirs, mine) = (s.file("qemu"), s.file("instar"));
    furnish(&theirs, existing);
    furnish(&mine, existing);
    let before = contents(&mine);
    let args = create_args(&[], "qcow2", options, IMAGE, size);
    let q = s.t.run(&qemu.path, &args, &theirs);
    let i = s.t.run_env(instar(), &args, &mine, &[("INSTAR_QEMU_VERSION", version)]);
    s.t.assert_same_run(&format!("create as {version}"), &q, &i);
    if !q.ok() {
        let after = contents(&mine);
        s.t.check(after == before, || {
            format!(
                "instar's refused create changed its folder: {:?} became {:?}",
                before.keys().collect::<Vec<_>>(),
                after.keys().collect::<Vec<_>>()
            )
        });
    }
    Some((s, q.ok()))
}

/// Both folders hold the same files, the same bytes (the image outside
/// the qcow2 masks, every other file exactly) and the same allocation
/// (data at the same places; the same space but for one file-system block
/// of extent tree).
fn same_files(s: &Sandbox) {
    let (theirs, mine) = (s.file("qemu"), s.file("instar"));
    let (q, i) = (contents(&theirs), contents(&mine));
    let names = |m: &BTreeMap<String, Vec<u8>>| m.keys().cloned().collect::<Vec<_>>();
    s.t.check(names(&q) == names(&i), || {
        format!("files: qemu-img left {:?}, instar {:?}", names(&q), names(&i))
    });
    for name in q.keys() {
        let target = if name == IMAGE { Target::Qcow2 } else { Target::Raw };
        let (a, b) = (theirs.join(name), mine.join(name));
        s.t.assert_same_bytes(target, &a, &b, &format!("qemu-img's {name} and instar's"));
        let (ra, rb) = (data_ranges_of(&a).unwrap(), data_ranges_of(&b).unwrap());
        s.t.check(ra == rb, || format!("{name}: data ranges {ra:x?} (qemu-img), {rb:x?} (instar)"));
        let (aa, ab) = (allocated(&a).unwrap(), allocated(&b).unwrap());
        s.t.check(aa.abs_diff(ab) <= 4096, || {
            format!("{name}: qemu-img allocated {aa} bytes, instar {ab}")
        });
    }
}

/// Creates accepted by every version: both files the same.
#[rstest]
#[case::off("data_file=d.raw", "1M", false)]
#[case::off_empty("data_file=d.raw", "0", false)]
#[case::off_odd_size("data_file=d.raw", "1000", false)]
#[case::off_large("data_file=d.raw", "100G", false)]
#[case::metadata("data_file=d.raw,preallocation=metadata", "64M", false)]
#[case::metadata_odd_size("data_file=d.raw,preallocation=metadata", "1000", false)]
#[case::falloc_4k_clusters("data_file=d.raw,preallocation=falloc,cluster_size=4k", "5M", false)]
#[case::full_extended_l2("data_file=d.raw,preallocation=full,extended_l2=on", "3000", false)]
#[case::full("data_file=d.raw,preallocation=full", "3M", false)]
#[case::raw("data_file=d.raw,data_file_raw=on", "1M", false)]
#[case::raw_full("data_file=d.raw,data_file_raw=on,preallocation=full", "1M", false)]
#[case::raw_falloc_512(
    "data_file=d.raw,data_file_raw=on,preallocation=falloc,cluster_size=512",
    "1M",
    false
)]
#[case::refcount_1_clusters_512(
    "data_file=d.raw,refcount_bits=1,cluster_size=512,preallocation=metadata",
    "2M",
    false
)]
#[case::clusters_2m("data_file=d.raw,cluster_size=2M,preallocation=metadata", "5M", false)]
#[case::backing("data_file=d.raw,backing_file=b.raw,backing_fmt=raw", "1M", false)]
#[case::backing_extended_l2_metadata(
    "data_file=d.raw,backing_file=b.raw,backing_fmt=raw,extended_l2=on,preallocation=metadata",
    "1M",
    false
)]
#[case::in_subfolder("data_file=sub/d.raw", "1M", false)]
#[case::file_prefix("data_file=file:d.raw", "1M", false)]
#[case::lazy_refcounts("data_file=d.raw,lazy_refcounts=on,compat=1.1", "1M", false)]
#[case::nocow("data_file=d.raw,nocow=on,preallocation=metadata", "1M", false)]
#[case::existing("data_file=d.raw", "1M", true)]
#[case::existing_full("data_file=d.raw,preallocation=full", "70k", true)]
fn create(
    #[case] options: &str,
    #[case] size: &str,
    #[case] existing: bool,
    #[values("5.2.0", "7.2.18", "7.2.22", "10.0.2", "10.0.13", "11.1.3")] version: &str,
) {
    let Some((s, created)) = create_both(version, options, size, existing) else { return };
    s.t.check(created, || "qemu-img refused the case".into());
    same_files(&s);
}

/// An empty image preallocated: qemu-img 5.2's `preallocate_co` resizes
/// the data file by an uninitialised length (its `cur_bytes`, set only in
/// a loop that an empty image never enters), so the data file's length is
/// whatever the stack held; 7.2 and later leave it empty, as instar does
/// for every version. The image itself is the same.
#[rstest]
#[case::metadata("data_file=d.raw,preallocation=metadata")]
#[case::full("data_file=d.raw,preallocation=full")]
fn preallocated_empty(
    #[case] options: &str,
    #[values("5.2.0", "7.2.18", "7.2.22", "10.0.2", "10.0.13", "11.1.3")] version: &str,
) {
    let Some((s, created)) = create_both(version, options, "0", false) else { return };
    s.t.check(created, || "qemu-img refused the case".into());
    if version != "5.2.0" {
        same_files(&s);
        return;
    }
    let (theirs, mine) = (s.file("qemu"), s.file("instar"));
    let what = "qemu-img's image and instar's";
    s.t.assert_same_bytes(Target::Qcow2, &theirs.join(IMAGE), &mine.join(IMAGE), what);
    let len = std::fs::metadata(mine.join("d.raw")).unwrap().len();
    s.t.check(len == 0, || format!("instar's data file has {len} bytes"));
}

/// An absolute data file name is recorded as given: both programs create
/// it at the same place in turn, and the images (which name it) are the
/// same bytes.
#[rstest]
fn absolute_name(
    #[values("5.2.0", "7.2.18", "7.2.22", "10.0.2", "10.0.13", "11.1.3")] version: &str,
) {
    let Some(s) = Sandbox::new() else { return };
    let Some(qemu) = qemu_or_skip(version) else { return };
    let (theirs, mine, shared) = (s.file("qemu"), s.file("instar"), s.file("abs"));
    for dir in [&theirs, &mine, &shared] {
        std::fs::create_dir(dir).unwrap();
    }
    let options = format!("data_file={}", path_str(&shared.join("d.raw")));
    let args = create_args(&[], "qcow2", &options, IMAGE, "1M");
    let q = s.t.run(&qemu.path, &args, &theirs);
    std::fs::rename(shared.join("d.raw"), theirs.join("d.raw")).unwrap();
    let i = s.t.run_env(instar(), &args, &mine, &[("INSTAR_QEMU_VERSION", version)]);
    std::fs::rename(shared.join("d.raw"), mine.join("d.raw")).unwrap();
    s.t.assert_same_run(&format!("create as {version}"), &q, &i);
    s.t.check(files_in(&shared).is_empty(), || "a data file was left behind".into());
    same_files(&s);
}

/// Refused creates: qemu-img's words and exit code, and instar's folder
/// as it was (an existing data file `d.raw` kept).
#[rstest]
#[case::compat_v2("data_file=d.raw,compat=0.10", "1M")]
#[case::raw_with_backing(
    "data_file=d.raw,data_file_raw=on,backing_file=b.raw,backing_fmt=raw",
    "1M"
)]
#[case::raw_without_data_file("data_file_raw=on", "1M")]
#[case::a_folder("data_file=dd", "1M")]
#[case::no_such_folder("data_file=nodir/d.raw", "1M")]
#[case::empty_name("data_file=", "1M")]
#[case::unknown_protocol("data_file=a:b.raw", "1M")]
#[case::compat_unknown("data_file=d.raw,compat=0.42", "1M")]
#[case::cluster_size_3000("data_file=d.raw,cluster_size=3000", "1M")]
#[case::backing_and_preallocation(
    "data_file=d.raw,backing_file=b.raw,backing_fmt=raw,preallocation=metadata",
    "1M"
)]
#[case::too_large("data_file=d.raw,cluster_size=512", "16T")]
#[case::folder_and_compat_v2("data_file=dd,compat=0.10", "1M")]
#[case::the_image_itself("data_file=img.qcow2", "1M")]
#[case::the_image_itself_dotted_compat_v2("data_file=./img.qcow2,compat=0.10", "1M")]
#[case::the_image_itself_too_large("data_file=img.qcow2,cluster_size=512", "16T")]
#[case::the_image_itself_unknown_compat("data_file=img.qcow2,compat=0.42", "1M")]
#[case::the_image_through_a_link("data_file=l.qcow2", "1M")]
fn refused(
    #[case] options: &str,
    #[case] size: &str,
    #[values("5.2.0", "7.2.18", "7.2.22", "10.0.2", "10.0.13", "11.1.3")] version: &str,
) {
    let Some((s, created)) = create_both(version, options, size, true) else { return };
    s.t.check(!created, || "qemu-img accepted the case".into());
}

/// `keep_data_file=on` (10.1 and later; an unknown option before): the
/// existing data file is used as it is, neither created nor emptied; only
/// the unwritten tail of the last cluster is written (zeros) and a shorter
/// file grows. Its refusals leave it untouched.
#[rstest]
#[case::metadata("data_file=d.raw,keep_data_file=on,preallocation=metadata", "1M", true)]
#[case::raw("data_file=d.raw,keep_data_file=on,data_file_raw=on", "1M", true)]
#[case::odd_size("data_file=d.raw,keep_data_file=on,preallocation=metadata", "1000", true)]
#[case::shorter_disk("data_file=d.raw,keep_data_file=on,preallocation=metadata", "64k", true)]
#[case::off_explicitly("data_file=d.raw,keep_data_file=off", "1M", true)]
#[case::without_preallocation("data_file=d.raw,keep_data_file=on", "1M", false)]
#[case::without_data_file("keep_data_file=on", "1M", false)]
#[case::full("data_file=d.raw,keep_data_file=on,preallocation=full", "1M", false)]
#[case::missing("data_file=x.raw,keep_data_file=on,preallocation=metadata", "1M", false)]
#[case::a_folder("data_file=dd,keep_data_file=on,preallocation=metadata", "1M", false)]
#[case::missing_and_compat("data_file=x.raw,keep_data_file=on,compat=0.42", "1M", false)]
#[case::compat_v2(
    "data_file=d.raw,keep_data_file=on,preallocation=metadata,compat=0.10",
    "1M",
    false
)]
#[case::the_image_itself(
    "data_file=img.qcow2,keep_data_file=on,preallocation=metadata",
    "1M",
    false
)]
fn keep_data_file(
    #[case] options: &str,
    #[case] size: &str,
    #[case] accepted_since_10_1: bool,
    #[values("5.2.0", "7.2.18", "7.2.22", "10.0.2", "10.0.13", "11.1.3")] version: &str,
) {
    let Some((s, created)) = create_both(version, options, size, true) else { return };
    let has_option = !matches!(version, "5.2.0" | "7.2.18" | "7.2.22" | "10.0.2" | "10.0.13");
    s.t.check(created == (accepted_since_10_1 && has_option), || {
        format!("qemu-img {version} created: {created}")
    });
    if created {
        same_files(&s);
    }
}
