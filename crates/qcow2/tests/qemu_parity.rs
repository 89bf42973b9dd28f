//! qcow2 create and info against the real qemu-img: every combination is
//! created by qemu-img and by `Qcow2::create`, and the two files must be
//! byte for byte the same (and, for preallocated images, allocated the
//! same); `info` on qemu-img's images must print what `qemu-img info`
//! prints. Skipped, saying so, when `/usr/bin/qemu-img` is not installed.

use instar_core::opts::FILE_PROTOCOL_OPTS;
use instar_core::{CreateRequest, Format, Options, QemuDialect};
use instar_qcow2::Qcow2;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const QEMU_IMG: &str = "/usr/bin/qemu-img";

/// How qemu-img reports `EFBIG` from the qcow2 driver.
const TOO_LARGE: &str =
    "The image size is too large for file format 'qcow2' (try using a larger cluster size)";

fn have_qemu() -> bool {
    if Path::new(QEMU_IMG).exists() {
        true
    } else {
        eprintln!("skipped: {QEMU_IMG} is not installed");
        false
    }
}

/// qemu's size syntax, enough for the sizes used here.
fn parse_size(s: &str) -> u64 {
    let (digits, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = digits.parse().unwrap();
    n << match unit {
        "" => 0,
        "k" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        "E" => 60,
        other => panic!("unit {other}"),
    }
}

fn qemu_create(path: &Path, opts: &str, size: &str) -> std::process::Output {
    let mut cmd = Command::new(QEMU_IMG);
    cmd.args(["create", "-q", "-f", "qcow2"]);
    if !opts.is_empty() {
        cmd.args(["-o", opts]);
    }
    cmd.arg(path).arg(size).output().unwrap()
}

fn instar_create(path: &Path, opts: &str, size: &str) -> Result<(), instar_core::Error> {
    let mut options = Options::new(&[Qcow2.create_opts(), FILE_PROTOCOL_OPTS]);
    if !opts.is_empty() {
        options.parse(opts).unwrap();
    }
    options.set_number("size", parse_size(size));
    let filename = path.to_str().unwrap();
    Qcow2.create(&CreateRequest { filename, options: &options })
}

/// Creates `size` with `opts` both ways and compares; returns a
/// description of the difference, if any.
fn compare(dir: &Path, opts: &str, size: &str) -> Option<String> {
    let q = dir.join("q.qcow2");
    let i = dir.join("i.qcow2");
    let _ = std::fs::remove_file(&q);
    let _ = std::fs::remove_file(&i);
    let out = qemu_create(&q, opts, size);
    let mine = instar_create(&i, opts, size);
    let case = format!("-o '{opts}' {size}");
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let want = stderr.trim_end().splitn(3, ": ").nth(2).unwrap_or("").to_string();
        return match mine {
            Err(e) if e.message() == want => None,
            // The block layer words EFBIG (instar_block does the same).
            Err(e) if e.kind() == instar_core::ErrorKind::TooLarge && want == TOO_LARGE => None,
            Err(e) => Some(format!("{case}: qemu says {want:?}, instar {:?}", e.message())),
            Ok(()) => Some(format!("{case}: qemu refused ({want}), instar created")),
        };
    }
    if let Err(e) = mine {
        return Some(format!("{case}: instar failed: {}", e.message()));
    }
    let (qb, ib) = (std::fs::read(&q).unwrap(), std::fs::read(&i).unwrap());
    if qb != ib {
        let first = qb.iter().zip(&ib).position(|(a, b)| a != b);
        return Some(format!(
            "{case}: bytes differ (lengths {} / {}, first difference at {first:?})",
            qb.len(),
            ib.len()
        ));
    }
    if opts.contains("preallocation") {
        let (qm, im) = (allocation_map(&q), allocation_map(&i));
        if qm != im {
            return Some(format!("{case}: allocated ranges {qm:x?} / {im:x?}"));
        }
        // st_blocks also counts the file system's own extent-tree blocks,
        // which depend on where the blocks physically landed (qemu-img
        // flushes between its many small writes); allow one such block.
        let blocks = |p: &PathBuf| std::fs::metadata(p).unwrap().blocks();
        if blocks(&q).abs_diff(blocks(&i)) > EXTENT_BLOCK_SECTORS {
            return Some(format!("{case}: st_blocks {} / {}", blocks(&q), blocks(&i)));
        }
    }
    None
}

/// One 4 KiB file system block, in the 512-byte units of `st_blocks`.
const EXTENT_BLOCK_SECTORS: u64 = 8;

/// The byte ranges of `path` that hold data (`SEEK_DATA`/`SEEK_HOLE`).
fn allocation_map(path: &Path) -> Vec<(u64, u64)> {
    use rustix::fs::{seek, SeekFrom};
    let file = std::fs::File::open(path).unwrap();
    let len = file.metadata().unwrap().len();
    let mut map = Vec::new();
    let mut at = 0;
    while at < len {
        let Ok(data) = seek(&file, SeekFrom::Data(at)) else { break };
        let hole = seek(&file, SeekFrom::Hole(data)).unwrap();
        map.push((data, hole));
        at = hole;
    }
    map
}

fn run_matrix(cases: &[(String, &str)]) {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let failures: Vec<String> =
        cases.iter().filter_map(|(o, s)| compare(dir.path(), o, s)).collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn sizes_and_cluster_sizes() {
    let sizes = ["0", "1", "1000", "1M", "64M", "1G", "100G", "1T", "16T"];
    let mut cases = Vec::new();
    for cs in
        ["", "512", "1k", "2k", "4k", "8k", "16k", "32k", "64k", "128k", "256k", "512k", "1M", "2M"]
    {
        for s in sizes {
            let o = if cs.is_empty() { String::new() } else { format!("cluster_size={cs}") };
            cases.push((o, s));
        }
    }
    run_matrix(&cases);
}

#[test]
fn refcount_widths() {
    let mut cases = Vec::new();
    for rb in [1, 2, 4, 8, 16, 32, 64] {
        for cs in ["512", "4k", "64k", "2M"] {
            for s in ["0", "1M", "1G", "1T"] {
                cases.push((format!("refcount_bits={rb},cluster_size={cs}"), s));
            }
        }
    }
    // The refcount table itself has to grow.
    cases.push(("refcount_bits=64,cluster_size=512".to_string(), "4G"));
    run_matrix(&cases);
}

#[test]
fn features_and_compat_levels() {
    let mut cases = Vec::new();
    for o in [
        "compat=0.10",
        "compat=1.1",
        "compat=v2",
        "compat=v3",
        "lazy_refcounts=on",
        "compression_type=zstd",
        "extended_l2=on",
        "extended_l2=on,cluster_size=16k",
        "extended_l2=on,cluster_size=2M",
        "compat=0.10,cluster_size=512",
        "lazy_refcounts=on,compression_type=zstd,extended_l2=on",
        "encryption=off",
    ] {
        for s in ["0", "1M", "64M", "1G", "1T"] {
            cases.push((o.to_string(), s));
        }
    }
    run_matrix(&cases);
}

#[test]
fn preallocation() {
    let mut cases = Vec::new();
    for p in ["off", "metadata", "falloc", "full"] {
        for o in [
            "",
            ",cluster_size=512",
            ",cluster_size=2M",
            ",extended_l2=on",
            ",refcount_bits=1",
            ",compat=0.10",
            ",lazy_refcounts=on",
        ] {
            for s in ["0", "1000", "1M", "64M"] {
                cases.push((format!("preallocation={p}{o}"), s));
            }
        }
    }
    run_matrix(&cases);
}

#[test]
fn backing_files() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base.raw");
    std::fs::write(&base, vec![0u8; 1 << 20]).unwrap();
    let b = base.to_str().unwrap();
    let mut cases = Vec::new();
    for extra in ["", ",compat=0.10", ",cluster_size=512", ",cluster_size=4k", ",lazy_refcounts=on"]
    {
        cases.push((format!("backing_file={b},backing_fmt=raw{extra}"), "1G"));
        cases.push((format!("backing_file={b},backing_fmt=raw{extra}"), "1M"));
    }
    for p in ["metadata", "falloc", "full"] {
        cases.push((
            format!("backing_file={b},backing_fmt=raw,extended_l2=on,preallocation={p}"),
            "1M",
        ));
    }
    let failures: Vec<String> =
        cases.iter().filter_map(|(o, s)| compare(dir.path(), o, s)).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn refusals() {
    let mut cases = Vec::new();
    for o in [
        "cluster_size=256",
        "cluster_size=4M",
        "cluster_size=3000",
        "compat=0.42",
        "refcount_bits=3",
        "refcount_bits=128",
        "refcount_bits=8,compat=0.10",
        "lazy_refcounts=on,compat=0.10",
        "compression_type=zstd,compat=0.10",
        "compression_type=foo",
        "extended_l2=on,cluster_size=4k",
        "extended_l2=on,compat=0.10",
        "preallocation=x",
        "preallocation=x,cluster_size=256",
        "backing_fmt=raw",
        "data_file_raw=on",
        "cluster_size=512",
        "cluster_size=4k",
    ] {
        cases.push((o.to_string(), if o.starts_with("cluster_size=") { "16T" } else { "1G" }));
    }
    cases.push((String::new(), "1E"));
    run_matrix(&cases);
}

/// `info` of images qemu-img made, rendered as JSON and as text, equals
/// `qemu-img info`.
#[test]
fn info_matches_qemu_img() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base.raw");
    std::fs::write(&base, vec![0u8; 1 << 20]).unwrap();
    let b = base.to_str().unwrap().to_string();
    let images: Vec<(String, &str)> = vec![
        (String::new(), "1G"),
        ("compat=0.10".into(), "1G"),
        ("lazy_refcounts=on".into(), "64M"),
        ("extended_l2=on".into(), "1G"),
        ("compression_type=zstd".into(), "1G"),
        ("refcount_bits=1,cluster_size=512".into(), "1G"),
        ("preallocation=metadata".into(), "1M"),
        (format!("backing_file={b},backing_fmt=raw"), "1M"),
        (format!("backing_file={b},backing_fmt=raw,compat=0.10"), "1M"),
        ("backing_file=base.raw,backing_fmt=raw".into(), "1M"),
    ];
    let mut failures = Vec::new();
    for (n, (o, s)) in images.iter().enumerate() {
        let path = dir.path().join(format!("img{n}.qcow2"));
        let mut cmd = Command::new(QEMU_IMG);
        cmd.args(["create", "-q", "-f", "qcow2", "-u"]);
        if !o.is_empty() {
            cmd.args(["-o", o]);
        }
        assert!(cmd.arg(&path).arg(s).status().unwrap().success());
        let p = path.to_str().unwrap();
        let info = Qcow2.info(p).unwrap();
        for (flag, mine) in [
            ("--output=json", info.to_json(QemuDialect::NEWEST).to_qemu_pretty()),
            ("--output=human", info.to_human(QemuDialect::NEWEST)),
        ] {
            let out =
                Command::new(QEMU_IMG).args(["info", "-f", "qcow2", flag, p]).output().unwrap();
            let want = String::from_utf8(out.stdout).unwrap();
            if want != mine {
                failures.push(format!("{o} {s} {flag}:\nqemu:\n{want}\ninstar:\n{mine}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
