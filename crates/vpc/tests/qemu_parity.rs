//! The vpc driver against the real qemu-img (on `PATH`, or `$QEMU_IMG`):
//! for every size and option combination, instar's image equals qemu-img's
//! byte for byte outside the masked footer fields (timestamp, checksum,
//! UUID), takes the same space on disk, `qemu-img info` prints the same for
//! both, instar's own `info` prints what qemu-img prints, and qemu-img can
//! write into instar's image and read the data back, after which instar's
//! check still finds it clean.

use instar_core::opts::FILE_PROTOCOL_OPTS;
use instar_core::{CreateRequest, ErrorKind, Format, Options, QemuDialect};
use instar_vpc::Vpc;
use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// The image's name inside each case's directories, so that qemu-img
/// prints the same file name for both images.
const IMAGE: &str = "img.vhd";

/// Bytes of a footer that differ between any two creates: timestamp,
/// checksum and unique id (SPEC section 3).
const FOOTER_MASKS: [(u64, u64); 3] = [(24, 28), (64, 68), (68, 84)];

fn qemu_img() -> String {
    std::env::var("QEMU_IMG").unwrap_or_else(|_| "qemu-img".to_string())
}

fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(qemu_img())
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {} (qemu-img 10.0.2 is required): {e}", qemu_img()))
}

fn run_ok(dir: &Path, args: &[&str]) -> String {
    let out = run(dir, args);
    assert!(
        out.status.success(),
        "qemu-img {args:?} in {}: {}\nstdout: {}\nstderr: {}",
        dir.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn options(list: &str, size: u64) -> Options {
    let mut o = Options::new(&[Vpc.create_opts(), FILE_PROTOCOL_OPTS]);
    if !list.is_empty() {
        o.parse(list).unwrap();
    }
    o.set_number("size", size);
    o
}

fn instar_create(path: &Path, list: &str, size: u64) -> Result<(), instar_core::Error> {
    let o = options(list, size);
    Vpc.create(&CreateRequest { filename: path.to_str().unwrap(), options: &o })
}

fn qemu_create(dir: &Path, list: &str, size: u64) -> Output {
    let size = size.to_string();
    let mut args = vec!["create", "-q", "-f", "vpc"];
    if !list.is_empty() {
        args.extend(["-o", list]);
    }
    args.extend([IMAGE, size.as_str()]);
    run(dir, &args)
}

/// The data extents of a (sparse) file, from `SEEK_DATA`/`SEEK_HOLE`.
fn data_extents(file: &File) -> Vec<(u64, u64)> {
    use rustix::fs::{seek, SeekFrom};
    let len = file.metadata().unwrap().len();
    let mut extents = Vec::new();
    let mut pos = 0;
    while pos < len {
        let Ok(start) = seek(file, SeekFrom::Data(pos)) else { break };
        let end = seek(file, SeekFrom::Hole(start)).unwrap();
        extents.push((start, end));
        pos = end;
    }
    extents
}

/// Compares two images byte for byte over every extent either holds data
/// in (holes read as zeros), ignoring the footer fields that differ
/// between any two creates. Returns the differing offsets (at most 20).
fn differences(a: &Path, b: &Path, footers: &[u64]) -> Vec<u64> {
    let (fa, fb) = (File::open(a).unwrap(), File::open(b).unwrap());
    let len = fa.metadata().unwrap().len();
    assert_eq!(len, fb.metadata().unwrap().len(), "file lengths of {a:?} and {b:?}");
    let mut extents = data_extents(&fa);
    extents.extend(data_extents(&fb));
    extents.sort_unstable();
    let masked = |off: u64| {
        footers.iter().any(|&f| FOOTER_MASKS.iter().any(|&(s, e)| off >= f + s && off < f + e))
    };
    let mut diffs = Vec::new();
    let mut done = 0;
    let (mut ba, mut bb) = (vec![0u8; MIB as usize], vec![0u8; MIB as usize]);
    for (start, end) in extents {
        let mut pos = start.max(done);
        while pos < end {
            let n = (end - pos).min(MIB) as usize;
            fa.read_exact_at(&mut ba[..n], pos).unwrap();
            fb.read_exact_at(&mut bb[..n], pos).unwrap();
            for i in 0..n {
                let off = pos + i as u64;
                if ba[i] != bb[i] && !masked(off) && diffs.len() < 20 {
                    diffs.push(off);
                }
            }
            pos += n as u64;
        }
        done = done.max(end);
    }
    diffs
}

/// Both info forms of `dir/IMAGE` from qemu-img, with and without `-f`.
fn qemu_infos(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for f in [&["-f", "vpc"][..], &[][..]] {
        for output in ["--output=human", "--output=json"] {
            let mut args = vec!["info", output];
            args.extend_from_slice(f);
            args.push(IMAGE);
            out.push(run_ok(dir, &args));
        }
    }
    out
}

/// Writes a pattern into `dir/IMAGE` through qemu-img (the first and last
/// 64 KiB of the disk and a run in the middle), reads it back through
/// qemu-img, and checks the image with instar afterwards.
fn qemu_writes_and_reads_back(dir: &Path, virtual_size: u64) {
    let raw = dir.join("data.raw");
    let file = File::create(&raw).unwrap();
    file.set_len(virtual_size).unwrap();
    let chunk = (64 * KIB).min(virtual_size) as usize;
    let pattern: Vec<u8> = (0..chunk).map(|i| (i * 7 + 3) as u8).collect();
    for at in [0, virtual_size / 2 / 512 * 512 + 512, virtual_size - chunk as u64] {
        let n = chunk.min((virtual_size - at) as usize);
        file.write_all_at(&pattern[..n], at).unwrap();
    }
    drop(file);
    run_ok(
        dir,
        &["convert", "-n", "--target-is-zero", "-f", "raw", "-O", "vpc", "data.raw", IMAGE],
    );
    let cmp = run_ok(dir, &["compare", "-f", "raw", "-F", "vpc", "data.raw", IMAGE]);
    assert_eq!(cmp, "Images are identical.\n");
    let report = Vpc.check(dir.join(IMAGE).to_str().unwrap()).unwrap();
    assert_eq!(report.messages, Vec::<String>::new(), "check after qemu-img wrote data");
    assert_eq!(report.exit_code(), 0);
}

fn parity(list: &str, size: u64) {
    let tmp = tempfile::tempdir().unwrap();
    let (qdir, idir) = (tmp.path().join("qemu"), tmp.path().join("instar"));
    std::fs::create_dir_all(&qdir).unwrap();
    std::fs::create_dir_all(&idir).unwrap();
    let (qimg, iimg): (PathBuf, PathBuf) = (qdir.join(IMAGE), idir.join(IMAGE));

    let q = qemu_create(&qdir, list, size);
    assert!(q.status.success(), "qemu-img create: {}", String::from_utf8_lossy(&q.stderr));
    instar_create(&iimg, list, size).unwrap();

    // Bytes: the footers are at 0 (dynamic only) and at the end.
    let len = std::fs::metadata(&qimg).unwrap().len();
    let fixed = list.contains("subformat=fixed");
    let footers: Vec<u64> = if fixed { vec![len - 512] } else { vec![0, len - 512] };
    let diffs = differences(&qimg, &iimg, &footers);
    assert!(diffs.is_empty(), "{list:?} {size}: bytes differ at {diffs:?}");
    let (qm, im) = (std::fs::metadata(&qimg).unwrap(), std::fs::metadata(&iimg).unwrap());
    assert_eq!(qm.blocks(), im.blocks(), "allocated blocks");

    // Info: qemu-img says the same of both, and instar says what qemu-img says.
    let qinfo = qemu_infos(&qdir);
    assert_eq!(qinfo, qemu_infos(&idir), "qemu-img info of qemu's and instar's image");
    let info = Vpc.info(iimg.to_str().unwrap()).unwrap();
    let rename = |s: String| s.replace(iimg.to_str().unwrap(), IMAGE);
    assert_eq!(rename(info.to_human(QemuDialect::NEWEST)), qinfo[0]);
    assert_eq!(rename(info.to_json(QemuDialect::NEWEST).to_qemu_pretty()), qinfo[1]);

    // Both images check clean.
    for img in [&qimg, &iimg] {
        let report = Vpc.check(img.to_str().unwrap()).unwrap();
        assert_eq!(report.messages, Vec::<String>::new(), "check of {img:?}");
    }

    if info.virtual_size > 0 {
        qemu_writes_and_reads_back(&idir, info.virtual_size);
    }
}

macro_rules! parity_cases {
    ($($name:ident: $size:expr, $opts:expr;)*) => {
        $(
            #[test]
            fn $name() {
                parity($opts, $size);
            }
        )*
    };
}

parity_cases! {
    // The five vhd rows of SPEC section 4.
    row_1m_default: MIB, "";
    row_64m_default: 64 * MIB, "";
    row_1g_default: GIB, "";
    row_1m_fixed: MIB, "subformat=fixed";
    row_16m_fixed: 16 * MIB, "subformat=fixed";

    dynamic_16m: 16 * MIB, "";
    dynamic_1000m: 1000 * MIB, "";
    dynamic_100g: 100 * GIB, "";
    fixed_64m: 64 * MIB, "subformat=fixed";
    fixed_1000m: 1000 * MIB, "subformat=fixed";
    fixed_1g: GIB, "subformat=fixed";
    fixed_100g: 100 * GIB, "subformat=fixed";

    dynamic_force_1m: MIB, "force_size=on";
    dynamic_force_16m: 16 * MIB, "force_size=on";
    dynamic_force_64m: 64 * MIB, "force_size=on";
    dynamic_force_1000m: 1000 * MIB, "force_size=on";
    dynamic_force_1g: GIB, "force_size=on";
    dynamic_force_100g: 100 * GIB, "force_size=on";
    fixed_force_1m: MIB, "subformat=fixed,force_size=on";
    fixed_force_16m: 16 * MIB, "subformat=fixed,force_size=on";
    fixed_force_64m: 64 * MIB, "subformat=fixed,force_size=on";
    fixed_force_1000m: 1000 * MIB, "subformat=fixed,force_size=on";
    fixed_force_1g: GIB, "subformat=fixed,force_size=on";
    fixed_force_100g: 100 * GIB, "subformat=fixed,force_size=on";

    // Sizes that are not multiples of 512 round up, then to a geometry.
    odd_1000_bytes: 1000, "";
    odd_34000_bytes: 34_000, "";
    odd_34000_bytes_forced: 34_000, "force_size=on";
    odd_fixed_3000_bytes: 3000, "subformat=fixed";
    empty_disk: 0, "";
    // Past the largest geometry the size is kept as given.
    beyond_geometry_200g: 200 * GIB, "";
    largest_2040g: 2040 * GIB, "";
    explicit_dynamic: 64 * MIB, "subformat=dynamic,force_size=off";
    preallocation_ignored: MIB, "subformat=fixed,preallocation=full";
}

/// A refused create: qemu-img's message, and no file left by instar
/// (qemu-img leaves an empty file behind; instar does better).
fn refused(list: &str, size: u64, qemu_message: &str, kind: ErrorKind) {
    let tmp = tempfile::tempdir().unwrap();
    let q = qemu_create(tmp.path(), list, size);
    assert!(!q.status.success());
    let stderr = String::from_utf8_lossy(&q.stderr).to_string();
    assert_eq!(stderr, format!("qemu-img: {IMAGE}: {qemu_message}\n"));
    assert_eq!(std::fs::metadata(tmp.path().join(IMAGE)).map(|m| m.len()).ok(), Some(0));

    let path = tmp.path().join("instar.vhd");
    let err = instar_create(&path, list, size).unwrap_err();
    assert_eq!(err.kind(), kind);
    if kind != ErrorKind::TooLarge {
        // The block layer words EFBIG itself; the rest is instar's text.
        assert_eq!(err.message(), qemu_message);
    }
    assert!(!path.exists(), "instar left {path:?} behind");
}

#[test]
fn too_large_leaves_no_file() {
    let msg = "The image size is too large for file format 'vpc'";
    refused("", 2041 * GIB, msg, ErrorKind::TooLarge);
    refused("force_size=on", 3 << 40, msg, ErrorKind::TooLarge);
    refused("subformat=fixed", 4 << 40, msg, ErrorKind::TooLarge);
}

#[test]
fn bad_subformat_leaves_no_file() {
    for value in ["foo", "Fixed", ""] {
        let msg = format!("Parameter 'subformat' does not accept value '{value}'");
        refused(&format!("subformat={value}"), MIB, &msg, ErrorKind::InvalidArgument);
    }
}

#[test]
fn fixed_images_probe_as_raw_and_dynamic_as_vpc() {
    let tmp = tempfile::tempdir().unwrap();
    for (list, score) in [("subformat=fixed", 0), ("", 100)] {
        let path = tmp.path().join(IMAGE);
        instar_create(&path, list, MIB).unwrap();
        let mut head = vec![0u8; 2048];
        File::open(&path).unwrap().read_exact_at(&mut head, 0).unwrap();
        assert_eq!(Vpc.probe(&head, IMAGE), score, "{list:?}");
    }
}
