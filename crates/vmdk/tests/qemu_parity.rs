//! The vmdk driver against the real qemu-img 10.0.2 (on `PATH`, or
//! `$QEMU_IMG`). For every subformat, size and option value:
//!
//! - instar writes the same files, under the same names, as qemu-img, byte
//!   for byte outside the descriptor's random `CID=` (SPEC section 3);
//! - `qemu-img check` finds instar's image clean, and `qemu-img info`
//!   prints the same for both images (CID and disk usage aside);
//! - instar's own `info` (JSON and human) prints exactly what qemu-img
//!   prints on the same file, and instar's check agrees with qemu-img's;
//! - qemu-img can write into instar's image and read the data back;
//! - refused arguments get qemu-img's messages, and instar leaves no file.

use instar_core::opts::FILE_PROTOCOL_OPTS;
use instar_core::{CreateRequest, Format, Options, QemuDialect};
use instar_vmdk::Vmdk;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
const TIB: u64 = 1 << 40;

/// The image's name inside each case's directories, so that qemu-img
/// prints the same names for both images.
const IMAGE: &str = "img.vmdk";

/// Where the embedded descriptor of a sparse file starts, and how much
/// room it has (qemu-img writes it with zeros after it).
const DESC_AT: usize = 512;
const DESC_ROOM: usize = 20 * 512;

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

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn run_ok(dir: &Path, args: &[&str]) -> String {
    let out = run(dir, args);
    assert!(
        out.status.success(),
        "qemu-img {args:?} in {}: {}\nstdout: {}\nstderr: {}",
        dir.display(),
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn options(list: &str, size: u64) -> Options {
    let mut o = Options::new(&[Vmdk.create_opts(), FILE_PROTOCOL_OPTS]);
    if !list.is_empty() {
        o.parse(list).unwrap();
    }
    o.set_number("size", size);
    o
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("temp paths are UTF-8")
}

/// Creates `dir/img.vmdk` with instar.
fn instar_create(dir: &Path, list: &str, size: u64) -> Result<(), instar_core::Error> {
    let path = dir.join(IMAGE);
    let opts = options(list, size);
    Vmdk.create(&CreateRequest { filename: path_str(&path), options: &opts })
}

/// Creates `dir/img.vmdk` with qemu-img.
fn qemu_create(dir: &Path, list: &str, size: u64) -> Output {
    let size = size.to_string();
    let mut args = vec!["create", "-q", "-f", "vmdk"];
    if !list.is_empty() {
        args.extend(["-o", list]);
    }
    args.extend([IMAGE, size.as_str()]);
    run(dir, &args)
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

/// Replaces the value of the first `CID=` line by `*`, after checking it is
/// written as qemu writes it: lowercase hex without leading zeros.
fn mask_cid(desc: &[u8]) -> Vec<u8> {
    let at = desc.windows(5).position(|w| w == b"\nCID=").expect("a CID line") + 5;
    let len = desc[at..].iter().position(|&b| b == b'\n').expect("CID line ends");
    let cid = &desc[at..at + len];
    assert!(
        !cid.is_empty()
            && cid.iter().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
            && (cid == b"0" || cid[0] != b'0'),
        "CID written as qemu writes it: {}",
        text(cid)
    );
    let mut out = desc[..at].to_vec();
    out.push(b'*');
    out.extend_from_slice(&desc[at + len..]);
    out
}

/// The byte ranges of a file holding data (so that multi-GiB images with
/// holes compare in milliseconds).
fn data_ranges(f: &File, len: u64) -> Vec<(u64, u64)> {
    use rustix::fs::{seek, SeekFrom};
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < len {
        let Ok(start) = seek(f, SeekFrom::Data(pos)) else { break };
        let end = seek(f, SeekFrom::Hole(start)).unwrap();
        out.push((start, end));
        pos = end;
    }
    out
}

/// Compares two files from `from` on, reading only where either has data.
fn same_tail(a: &Path, b: &Path, from: u64) -> Result<(), String> {
    let (fa, fb) = (File::open(a).unwrap(), File::open(b).unwrap());
    let (la, lb) = (fa.metadata().unwrap().len(), fb.metadata().unwrap().len());
    if la != lb {
        return Err(format!("{}: length {la} vs {lb}", a.display()));
    }
    let mut ranges = data_ranges(&fa, la);
    ranges.extend(data_ranges(&fb, lb));
    for (start, end) in ranges {
        let start = start.max(from);
        let mut pos = start;
        while pos < end {
            let n = (end - pos).min(8 * MIB) as usize;
            let (mut ba, mut bb) = (vec![0u8; n], vec![0u8; n]);
            fa.read_exact_at(&mut ba, pos).unwrap();
            fb.read_exact_at(&mut bb, pos).unwrap();
            if ba != bb {
                let i = ba.iter().zip(&bb).position(|(x, y)| x != y).unwrap();
                return Err(format!(
                    "{}: first difference at byte {}",
                    a.display(),
                    pos + i as u64
                ));
            }
            pos += n as u64;
        }
    }
    Ok(())
}

/// Compares qemu-img's file `q` with instar's file `i`, outside the CID.
fn same_file(q: &Path, i: &Path) -> Result<(), String> {
    let head = |p: &Path| {
        let f = File::open(p).unwrap();
        let n = f.metadata().unwrap().len().min((DESC_AT + DESC_ROOM) as u64) as usize;
        let mut b = vec![0u8; n];
        f.read_exact_at(&mut b, 0).unwrap();
        b
    };
    let (hq, hi) = (head(q), head(i));
    if hq.starts_with(b"# Disk DescriptorFile") {
        // A descriptor file: all text.
        let (tq, ti) = (std::fs::read(q).unwrap(), std::fs::read(i).unwrap());
        return if mask_cid(&tq) == mask_cid(&ti) {
            Ok(())
        } else {
            Err(format!("descriptor differs:\n{}\n---\n{}", text(&tq), text(&ti)))
        };
    }
    let embedded = hq.len() == DESC_AT + DESC_ROOM && hq[DESC_AT..].starts_with(b"# Disk");
    if embedded {
        if hq[..DESC_AT] != hi[..DESC_AT] {
            return Err(format!("{}: header differs", i.display()));
        }
        // The descriptor, masked, with the zeros after it.
        let desc = |h: &[u8]| {
            let d = &h[DESC_AT..];
            let n = d.iter().position(|&b| b == 0).unwrap_or(d.len());
            assert!(d[n..].iter().all(|&b| b == 0), "zeros after the descriptor");
            mask_cid(&d[..n])
        };
        if desc(&hq) != desc(&hi) {
            return Err(format!(
                "embedded descriptor differs:\n{}\n---\n{}",
                text(&desc(&hq)),
                text(&desc(&hi))
            ));
        }
        return same_tail(q, i, (DESC_AT + DESC_ROOM) as u64);
    }
    same_tail(q, i, 0)
}

/// `qemu-img info` with the CID and disk usage masked (SPEC section 6).
fn masked_info(dir: &Path, json: bool) -> String {
    let out = if json {
        run_ok(dir, &["info", "--output=json", IMAGE])
    } else {
        run_ok(dir, &["info", IMAGE])
    };
    out.lines()
        .map(|l| {
            let t = l.trim_start();
            let keep = &l[..l.len() - t.len()];
            for key in ["\"cid\": ", "\"actual-size\": ", "cid: ", "disk size: "] {
                if t.starts_with(key) {
                    let comma = if t.ends_with(',') { "," } else { "" };
                    return format!("{keep}{key}*{comma}");
                }
            }
            l.to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// instar's `info` on `dir/img.vmdk`, JSON and human, equals qemu-img's.
fn info_parity(dir: &Path) -> Result<(), String> {
    let path = dir.join(IMAGE);
    let p = path_str(&path);
    let info = Vmdk.info(p).map_err(|e| format!("instar info {p}: {e}"))?;
    let json = info.to_json(QemuDialect::NEWEST).to_qemu_pretty();
    let want = run_ok(dir, &["info", "--output=json", p]);
    if json != want {
        return Err(format!("info JSON of {p}:\n{json}\n--- qemu-img:\n{want}"));
    }
    let human = info.to_human(QemuDialect::NEWEST);
    let want = run_ok(dir, &["info", p]);
    if human != want {
        return Err(format!("human info of {p}:\n{human}\n--- qemu-img:\n{want}"));
    }
    Ok(())
}

/// Creates the case with both programs and compares everything.
fn compare_case(list: &str, size: u64) -> Result<(), String> {
    let q = tempfile::tempdir().unwrap();
    let i = tempfile::tempdir().unwrap();
    let out = qemu_create(q.path(), list, size);
    if !out.status.success() {
        return Err(format!("qemu-img refused -o {list} {size}: {}", text(&out.stderr)));
    }
    instar_create(i.path(), list, size).map_err(|e| format!("instar refused: {e}"))?;
    let names = files_in(q.path());
    if names != files_in(i.path()) {
        return Err(format!("files {names:?} vs {:?}", files_in(i.path())));
    }
    for n in &names {
        same_file(&q.path().join(n), &i.path().join(n))?;
    }
    // qemu-img cannot open every image it creates (size 0: its descriptor
    // type is then refused); instar's image must fare exactly the same.
    let (cq, ci) = (run(q.path(), &["check", IMAGE]), run(i.path(), &["check", IMAGE]));
    if (cq.status.code(), &cq.stdout, &cq.stderr) != (ci.status.code(), &ci.stdout, &ci.stderr) {
        return Err(format!(
            "qemu-img check: {} on qemu-img's image, {} on instar's",
            text(&cq.stderr),
            text(&ci.stderr)
        ));
    }
    let path = i.path().join(IMAGE);
    let p = path_str(&path);
    if !cq.status.success() {
        let want = text(&run(i.path(), &["info", p]).stderr);
        let got = Vmdk.info(p).err().map(|e| format!("qemu-img: {}\n", e.wrap_open(p)));
        return match got {
            Some(got) if got == want => Ok(()),
            got => Err(format!("instar info: {got:?}, qemu-img: {want:?}")),
        };
    }
    if text(&ci.stdout) != "No errors were found on the image.\n" {
        return Err(format!("qemu-img check on instar's image: {}", text(&ci.stdout)));
    }
    for json in [true, false] {
        let (a, b) = (masked_info(q.path(), json), masked_info(i.path(), json));
        if a != b {
            return Err(format!("qemu-img info differs:\n{a}\n--- instar's image:\n{b}"));
        }
    }
    info_parity(i.path())?;
    let report = Vmdk.check(p).map_err(|e| e.to_string())?;
    if report.exit_code() != 0 || !report.messages.is_empty() {
        return Err(format!("instar check on its image: {report:?}"));
    }
    Ok(())
}

fn run_cases(cases: &[(String, u64)]) {
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|(list, size)| {
            compare_case(list, *size).err().map(|e| format!("-o '{list}' size {size}: {e}"))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

const SUBFORMATS: [&str; 5] = [
    "monolithicSparse",
    "monolithicFlat",
    "twoGbMaxExtentSparse",
    "twoGbMaxExtentFlat",
    "streamOptimized",
];

#[test]
fn default_subformat_sizes() {
    let sizes = [0, 1000, KIB, MIB, 64 * MIB, GIB, 100 * GIB, 2 * TIB, 2 * TIB + 512, 4 * TIB];
    run_cases(&sizes.iter().map(|&s| (String::new(), s)).collect::<Vec<_>>());
}

#[test]
fn every_subformat_and_size() {
    let mut cases = Vec::new();
    for sf in SUBFORMATS {
        for size in [512, MIB, 64 * MIB, GIB, 2 * GIB, 2 * GIB + 512, 5 * GIB + 3 * 512] {
            cases.push((format!("subformat={sf}"), size));
        }
    }
    // Large sparse images (flat ones would be as large on disk, as holes).
    for sf in ["monolithicSparse", "streamOptimized", "twoGbMaxExtentSparse"] {
        cases.push((format!("subformat={sf}"), 100 * GIB));
    }
    cases.push(("subformat=monolithicFlat".to_string(), 2 * TIB + 512));
    run_cases(&cases);
}

#[test]
fn every_option_value() {
    let mut cases = Vec::new();
    for sf in SUBFORMATS {
        for opt in [
            "adapter_type=ide",
            "adapter_type=lsilogic",
            "adapter_type=buslogic",
            "adapter_type=legacyESX",
            "hwversion=4",
            "hwversion=6",
            "hwversion=21",
            "hwversion=undefined",
            "compat6=on",
            "compat6=off",
            "compat6=on,hwversion=undefined",
            "toolsversion=0",
            "toolsversion=10341",
            "toolsversion=a,,b",
            "preallocation=off",
            "preallocation=falloc",
            "preallocation=full",
            "nocow=on",
            "extent_size_hint=1M",
        ] {
            cases.push((format!("subformat={sf},{opt}"), 3 * GIB));
        }
        if !sf.contains("Flat") {
            cases.push((format!("subformat={sf},zeroed_grain=on"), 3 * GIB));
            cases.push((format!("subformat={sf},zeroed_grain=off"), 3 * GIB));
        }
    }
    cases.push(("adapter_type=lsilogic,hwversion=7,toolsversion=123,zeroed_grain=on".into(), GIB));
    run_cases(&cases);
}

#[test]
fn backing_files() {
    let base = tempfile::tempdir().unwrap();
    // Parents of each sparse kind; a child records the parent's CID.
    for (name, sf) in [
        ("base.vmdk", "monolithicSparse"),
        ("split.vmdk", "twoGbMaxExtentSparse"),
        ("flat.vmdk", "monolithicFlat"),
    ] {
        let size = (3 * GIB).to_string();
        run_ok(
            base.path(),
            &["create", "-q", "-f", "vmdk", "-o", &format!("subformat={sf}"), name, &size],
        );
    }
    let dir = path_str(base.path()).to_string();
    let mut cases = Vec::new();
    for sf in ["monolithicSparse", "streamOptimized", "twoGbMaxExtentSparse"] {
        for parent in ["base.vmdk", "split.vmdk", "flat.vmdk"] {
            // Relative to the new image, and absolute.
            let rel = format!("../{}/{parent}", base.path().file_name().unwrap().to_str().unwrap());
            cases.push((format!("subformat={sf},backing_file={rel},backing_fmt=vmdk"), 3 * GIB));
            cases.push((
                format!("subformat={sf},backing_file={dir}/{parent},backing_fmt=vmdk"),
                GIB,
            ));
        }
    }
    run_cases(&cases);
}

/// Refused arguments: qemu-img's message, and no file left by instar
/// (qemu-img leaves one behind for some of them).
#[test]
fn refusals_match_qemu() {
    let base = tempfile::tempdir().unwrap();
    let b = path_str(base.path()).to_string();
    run_ok(base.path(), &["create", "-q", "-f", "qcow2", "q.qcow2", "1M"]);
    run_ok(base.path(), &["create", "-q", "-f", "raw", "r.raw", "1M"]);
    std::fs::write(base.path().join("bad.vmdk"), "version=1\nnothing here\n").unwrap();
    run_ok(base.path(), &["create", "-q", "-f", "vmdk", "nocid.vmdk", "1M"]);
    let nocid = std::fs::read(base.path().join("nocid.vmdk")).unwrap();
    let nocid: Vec<u8> = text(&nocid).replace("CID=", "XID=").into_bytes();
    std::fs::write(base.path().join("nocid.vmdk"), nocid).unwrap();
    let cases = [
        "adapter_type=scsi".to_string(),
        "adapter_type=IDE".to_string(),
        "compat6=on,hwversion=6".to_string(),
        "compat6=on,hwversion=4".to_string(),
        "subformat=foo".to_string(),
        "subformat=monolithicsparse".to_string(),
        "backing_fmt=qcow2".to_string(),
        "backing_fmt=raw,adapter_type=scsi".to_string(),
        "subformat=monolithicFlat,backing_file=x.vmdk,backing_fmt=vmdk".to_string(),
        "subformat=twoGbMaxExtentFlat,zeroed_grain=on".to_string(),
        "preallocation=foo".to_string(),
        "preallocation=metadata".to_string(),
        "extent_size_hint=5T".to_string(),
        format!("backing_file={b}/missing.vmdk,backing_fmt=vmdk"),
        format!("backing_file={b}/q.qcow2,backing_fmt=vmdk"),
        format!("backing_file={b}/r.raw,backing_fmt=vmdk"),
        format!("backing_file={b}/bad.vmdk,backing_fmt=vmdk"),
        format!("backing_file={b}/nocid.vmdk,backing_fmt=vmdk"),
    ];
    let mut failures = Vec::new();
    for list in &cases {
        let q = tempfile::tempdir().unwrap();
        let i = tempfile::tempdir().unwrap();
        // `-u`: qemu-img's block layer leaves the backing file to vmdk, as
        // instar's block layer leaves it when it calls the format.
        let out = run(q.path(), &["create", "-q", "-u", "-f", "vmdk", "-o", list, IMAGE, "1M"]);
        let want = text(&out.stderr);
        let got = match instar_create(i.path(), list, MIB) {
            Ok(()) => "accepted".to_string(),
            Err(e) => format!("qemu-img: {IMAGE}: {e}\n"),
        };
        if out.status.code() != Some(1) || got != want {
            failures.push(format!(
                "-o {list}: qemu-img {:?} {want:?}, instar {got:?}",
                out.status.code()
            ));
        }
        if !files_in(i.path()).is_empty() {
            failures.push(format!("-o {list}: instar left {:?}", files_in(i.path())));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn write_pattern(path: &Path, size: u64) {
    let f = File::create(path).unwrap();
    f.set_len(size).unwrap();
    // Data in a few grains, one of them the last, and a partial grain.
    let mut seed = 0x1234_5678u32;
    for at in [0, 3 * 65536 + 512, size / 2, size - 65536] {
        let block: Vec<u8> = (0..65536)
            .map(|_| {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (seed >> 16) as u8
            })
            .collect();
        f.write_all_at(&block[..(size - at).min(65536) as usize], at).unwrap();
    }
}

/// qemu-img writes into instar's images and reads the data back; the
/// images stay clean for both checks and instar's info still matches.
#[test]
fn qemu_writes_into_instar_images() {
    let mut failures = Vec::new();
    for (list, size) in [
        ("", 64 * MIB),
        ("", 3 * GIB),
        ("zeroed_grain=on", 64 * MIB),
        ("subformat=twoGbMaxExtentSparse", 5 * GIB),
        ("subformat=monolithicFlat", 64 * MIB),
        ("subformat=twoGbMaxExtentFlat", 3 * GIB),
        ("subformat=streamOptimized", 64 * MIB),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        instar_create(d, list, size).unwrap();
        write_pattern(&d.join("data.raw"), size);
        let mut convert = vec!["convert", "-n", "-O", "vmdk"];
        if list.contains("streamOptimized") {
            // Stream-optimized images take compressed writes only.
            convert.push("-c");
        }
        convert.extend(["data.raw", IMAGE]);
        run_ok(d, &convert);
        run_ok(d, &["convert", "-O", "raw", IMAGE, "out.raw"]);
        if let Err(e) = same_tail(&d.join("data.raw"), &d.join("out.raw"), 0) {
            failures.push(format!("-o '{list}': data read back differs: {e}"));
        }
        let check = run(d, &["check", IMAGE]);
        if check.status.code() != Some(0) {
            failures.push(format!("-o '{list}': qemu-img check: {}", text(&check.stderr)));
        }
        let report = Vmdk.check(path_str(&d.join(IMAGE))).unwrap();
        if report.exit_code() != 0 {
            failures.push(format!("-o '{list}': instar check: {report:?}"));
        }
        if let Err(e) = info_parity(d) {
            failures.push(format!("-o '{list}': {e}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Two creates draw two CIDs.
#[test]
fn cid_is_random_per_create() {
    let cid = |d: &Path| {
        instar_create(d, "", MIB).unwrap();
        let b = std::fs::read(d.join(IMAGE)).unwrap();
        let t = text(&b[DESC_AT..DESC_AT + 64]);
        t.lines().find_map(|l| l.strip_prefix("CID=").map(str::to_string)).unwrap()
    };
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    assert_ne!(cid(a.path()), cid(b.path()));
}

/// Builds a stream-optimized image whose header says "grain directory at
/// the end" and whose footer holds the real header, as VMware writes them
/// (qemu-img never writes this layout, but reads it).
fn footer_image(dir: &Path) -> PathBuf {
    run_ok(dir, &["create", "-q", "-f", "vmdk", "-o", "subformat=streamOptimized", IMAGE, "64M"]);
    let path = dir.join(IMAGE);
    let mut b = std::fs::read(&path).unwrap();
    let header: Vec<u8> = b[..512].to_vec();
    b[56..64].copy_from_slice(&u64::MAX.to_le_bytes());
    let mut footer = vec![0u8; 512];
    footer[0..8].copy_from_slice(&1u64.to_le_bytes());
    footer[12..16].copy_from_slice(&3u32.to_le_bytes());
    b.extend_from_slice(&footer);
    b.extend_from_slice(&header);
    b.extend_from_slice(&[0u8; 512]);
    std::fs::write(&path, b).unwrap();
    path
}

#[test]
fn footer_of_stream_optimized_images() {
    let dir = tempfile::tempdir().unwrap();
    let path = footer_image(dir.path());
    info_parity(dir.path()).unwrap();
    let p = path_str(&path);
    let want = run(dir.path(), &["check", p]);
    let got = Vmdk.check(p).unwrap();
    assert_eq!((want.status.code(), text(&want.stdout)), (Some(0), got.stdout_text(false)));
    // A broken end-of-stream marker: both refuse to open it.
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    let len = f.metadata().unwrap().len();
    f.write_all_at(&[1], len - 512 + 12).unwrap();
    let want = run(dir.path(), &["info", p]);
    let got = Vmdk.info(p).unwrap_err();
    assert_eq!(text(&want.stderr), format!("qemu-img: {}\n", got.wrap_open(p)));
}

/// instar's check of `dir/name` prints what qemu-img's does (stdout,
/// stderr, exit code), human and JSON; instar's info (or its failure)
/// matches qemu-img's too. Returns qemu-img's check exit code.
fn check_and_info_parity(dir: &Path, name: &str) -> Result<i32, String> {
    let path = dir.join(name);
    let p = path_str(&path);
    let mut code = 0;
    for json in [false, true] {
        let args: &[&str] = if json {
            &["check", "-f", "vmdk", "--output=json", p]
        } else {
            &["check", "-f", "vmdk", p]
        };
        let want = run(dir, args);
        let (stdout, stderr, got_code) = match Vmdk.check(p) {
            Ok(r) => (r.stdout_text(json), r.stderr_text("qemu-img"), r.exit_code()),
            Err(e) => (String::new(), format!("qemu-img: {}\n", e.wrap_open(p)), 1),
        };
        let want_code = want.status.code().unwrap_or(-1);
        if (stdout.as_str(), stderr.as_str(), got_code)
            != (text(&want.stdout).as_str(), text(&want.stderr).as_str(), want_code)
        {
            return Err(format!(
                "check {p} (json: {json}): qemu-img exit {want_code}\n{}{}--- instar exit {got_code}\n{stdout}{stderr}",
                text(&want.stdout),
                text(&want.stderr)
            ));
        }
        code = want_code;
    }
    let want = run(dir, &["info", "-f", "vmdk", "--output=json", p]);
    match Vmdk.info(p) {
        Ok(info) => {
            let json = info.to_json(QemuDialect::NEWEST).to_qemu_pretty();
            if json != text(&want.stdout) {
                return Err(format!("info {p}:\n{json}--- qemu-img:\n{}", text(&want.stdout)));
            }
            let human = info.to_human(QemuDialect::NEWEST);
            let want = text(&run(dir, &["info", "-f", "vmdk", p]).stdout);
            if human != want {
                return Err(format!("human info {p}:\n{human}--- qemu-img:\n{want}"));
            }
        }
        Err(e) => {
            let got = format!("qemu-img: {}\n", e.wrap_open(p));
            if got != text(&want.stderr) {
                return Err(format!("info {p}: instar {got:?}, qemu-img {:?}", text(&want.stderr)));
            }
        }
    }
    Ok(code)
}

/// An ESXi seSparse extent of 32 MiB (4 KiB grains, one 4096-entry table
/// per 16 MiB) with two allocated grains and a zeroed one; `damage` edits
/// the bytes before they are written.
fn write_sesparse(dir: &Path, damage: impl Fn(&mut Vec<u8>)) {
    let put = |b: &mut Vec<u8>, at: usize, v: u64| b[at..at + 8].copy_from_slice(&v.to_le_bytes());
    let capacity = 65536u64;
    let mut b = vec![0u8; 512 * (67 + 16)];
    // Constant header: magic, version, capacity, grain and table sizes,
    // volatile header at sector 1, directory at 2 (one sector), tables at
    // 3, grains at 67.
    for (i, v) in [
        (0, 0xcafe_babe),
        (1, 0x0000_0002_0000_0001),
        (2, capacity),
        (3, 8),
        (4, 64),
        (10, 1),
        (11, 1),
        (16, 2),
        (17, 1),
        (18, 3),
        (19, 64),
        (24, 67),
        (25, 16),
    ] {
        put(&mut b, i * 8, v);
    }
    put(&mut b, 512, 0xcafe_cafe);
    put(&mut b, 1024, 0x1000_0000_0000_0000);
    put(&mut b, 3 * 512, 0x3000_0000_0000_0000); // grain 0
    put(&mut b, 3 * 512 + 8, 0x2000_0000_0000_0000); // zeroed
    put(&mut b, 3 * 512 + 16, 0x3001_0000_0000_0000); // grain 1
    b[67 * 512..69 * 512 + 4096].fill(0x5a);
    damage(&mut b);
    std::fs::write(dir.join("se-delta.vmdk"), b).unwrap();
    std::fs::write(
        dir.join("se.vmdk"),
        format!(
            "# Disk DescriptorFile\nversion=1\nCID=fff\nparentCID=ffffffff\n\
             createType=\"seSparse\"\n\n# Extent description\nRW {capacity} SESPARSE \"se-delta.vmdk\"\n"
        ),
    )
    .unwrap();
}

#[test]
fn sesparse_extents() {
    // (case, byte offset of a 64-bit value to overwrite, value, qemu-img's
    // check exit code)
    let cases: [(&str, usize, u64, i32); 16] = [
        ("clean", 0, 0xcafe_babe, 0),
        ("bad magic", 0, 5, 1),
        ("bad version", 8, 2, 1),
        ("bad grain size", 24, 16, 1),
        ("bad table size", 32, 32, 1),
        ("flags", 40, 2, 1),
        ("reserved", 64, 9, 1),
        ("padding", 400, 1, 1),
        ("volatile magic", 512, 1, 1),
        ("dirty journal", 512 + 24, 1, 1),
        ("volatile padding", 512 + 100, 1, 1),
        ("directory entry invalid", 1024 + 8, 0x2000_0000_0000_0000, 1),
        ("table entry invalid", 3 * 512 + 24, 0xf000_0000_0000_0000, 1),
        ("table entry nonsense", 3 * 512 + 24, 7, 1),
        ("grain past eof", 3 * 512 + 32, 0x3000_0000_0000_0100, 1),
        ("directory too large", 17 * 8, 1 << 40, 1),
    ];
    let mut failures = Vec::new();
    for (name, at, value, want) in cases {
        let dir = tempfile::tempdir().unwrap();
        write_sesparse(dir.path(), |b| b[at..at + 8].copy_from_slice(&value.to_le_bytes()));
        match check_and_info_parity(dir.path(), "se.vmdk") {
            Ok(code) if code == want => {}
            Ok(code) => {
                failures.push(format!("{name}: qemu-img check exit {code}, expected {want}"))
            }
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// ESX sparse ("COWD") extents and flat VMFS extents behind a vmfsSparse
/// descriptor. The descriptor's blank line makes qemu read the next
/// extent line twice (its `sscanf` skips the newline), and so does instar.
#[test]
fn cowd_and_vmfs_extents() {
    let write = |dir: &Path, grain_entry: u32| {
        let mut b = vec![0u8; 512 * 53];
        b[..4].copy_from_slice(b"COWD");
        // version, flags, sectors, granularity, directory sector, entries.
        for (i, v) in [1u32, 3, 2048, 16, 4, 1].iter().enumerate() {
            b[4 + i * 4..8 + i * 4].copy_from_slice(&v.to_le_bytes());
        }
        b[4 * 512..4 * 512 + 4].copy_from_slice(&5u32.to_le_bytes());
        b[5 * 512..5 * 512 + 4].copy_from_slice(&37u32.to_le_bytes());
        b[5 * 512 + 12..5 * 512 + 16].copy_from_slice(&grain_entry.to_le_bytes());
        b[37 * 512..38 * 512].fill(0xab);
        std::fs::write(dir.join("x-delta.vmdk"), b).unwrap();
        std::fs::write(dir.join("x-flat.vmdk"), vec![0u8; 51200]).unwrap();
        std::fs::write(
            dir.join("x.vmdk"),
            "# Disk DescriptorFile\nversion=1\nCID=abc\nparentCID=ffffffff\n\
             createType=\"vmfsSparse\"\n\nRW 2048 VMFSSPARSE \"x-delta.vmdk\"\n\
             RW 100 VMFS \"x-flat.vmdk\"\n",
        )
        .unwrap();
    };
    for (entry, want) in [(0, 0), (38, 0), (100_000, 1)] {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), entry);
        assert_eq!(check_and_info_parity(dir.path(), "x.vmdk"), Ok(want), "grain entry {entry}");
    }
}

/// Descriptors qemu reads in surprising ways: keys found anywhere, values
/// running over newlines, extent lines it skips or refuses.
#[test]
fn descriptor_corner_cases() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f.raw"), vec![0u8; 4096]).unwrap();
    let head = "# Disk DescriptorFile\nversion=1\n";
    let cases = [
        format!("{head}CID=1\nparentCID=2\ncreateType=\"monolithicFlat\"\nRW 8 FLAT \"f.raw\" 0\n"),
        format!("{head}XID=1\nparentCID=2\ncreateType=\"monolithicFlat\"\nRW 8 FLAT \"f.raw\" 0\n"),
        format!("{head}createType=\"monolithicFlat\"\nRW 8 FLAT \"f.raw\" 0\n"),
        format!("{head}CID=-1\nparentCID=0x10\ncreateType=\"twoGbMaxExtentFlat\"\nRW 8 FLAT \"f.raw\" 4\n"),
        format!("{head}CID=1\nparentCID=2\ncreateType=\"monolithicFlat\"\nRW 8 FLAT \"f.raw\"\n"),
        format!("{head}CID=1\nparentCID=2\ncreateType=\"monolithicFlat\"\nRW 8 FLAT \"f.raw\" -1\n"),
        format!("{head}CID=1\nparentCID=2\ncreateType=\"monolithicFlat\"\nRDONLY 8 FLAT \"f.raw\" 0\nRW 8 ZERO \"f.raw\"\nRW 0 FLAT \"f.raw\" 0\nRW 8 VMFS \"f.raw\"\n"),
        format!("{head}CID=1\nparentCID=2\ncreateType=\"monolithicFlat\"\nRW 8 VMFS \"f.raw\" 3\n"),
        format!("{head}CID=1\nparentCID=2\ncreateType=\"monolithicFlat\"\nRW 8 SPARSE \"f.raw\"\n"),
        format!("{head}CID=1\nparentCID=2\ncreateType=\"monolithicFlat\"\nRW 8 FLAT \"missing.raw\" 0\n"),
        format!("{head}CID=1\nparentCID=2\ncreateType=\"vmfs\"\nparentFileNameHint=\"a\nb\"\nRW 8 FLAT \"f.raw\" 0\n"),
        format!("{head}CID=1\nparentCID=2\ncreateType=\"vmfs\"\nparentFileNameHint=\"\"\nRW 8 FLAT \"f.raw\" 0\n"),
        format!("{head}CID=1\nparentCID=2\ncreateType=\"vmfs\"\nparentFileNameHint=\"/abs/b.vmdk\"\nRW 8 FLAT \"f.raw\" 0\n"),
        format!("{head}CID=1\nparentCID=2\ncreateType=\"vmfs\"\nparentFileNameHint=\"unterminated\nRW 8 FLAT \"f.raw\" 0\n"),
        format!("{head}CID=1\nparentCID=2\ncreateType=\"monolithicSparse\"\n"),
        format!("{head}CID=1\nparentCID=2\ncreateType=\"{}\"\n", "x".repeat(200)),
        format!("{head}CID=1\nparentCID=2\ncreateType=\"seSparse\"\nRW 8 SESPARSE \"f.raw\"\n"),
        "version=1\ncreateType=\"monolithicFlat\"\nRW 8 FLAT \"f.raw\" 0\nCID=7\nparentCID=ffffffff\n".to_string(),
    ];
    let mut failures = Vec::new();
    for (i, desc) in cases.iter().enumerate() {
        std::fs::write(dir.path().join("d.vmdk"), desc).unwrap();
        if let Err(e) = check_and_info_parity(dir.path(), "d.vmdk") {
            failures.push(format!("case {i}:\n{desc}\n{e}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// A small deterministic generator for the random damage below.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
}

/// Random damage (bytes of headers, descriptors, directories and tables
/// overwritten, files cut short) to images of every layout: instar's info
/// and check print what qemu-img prints, every time. Cases whose text
/// qemu-img prints with bytes that are not UTF-8 are skipped (instar's
/// messages are Rust strings), and so are cases qemu-img crashes on.
#[test]
fn random_damage_matches_qemu() {
    let bases = tempfile::tempdir().unwrap();
    let data = bases.path().join("data.raw");
    write_pattern(&data, 4 * MIB);
    let layouts: [(&str, &[&str]); 5] = [
        ("sparse", &["convert", "-O", "vmdk", "../data.raw", IMAGE]),
        (
            "stream",
            &[
                "convert",
                "-c",
                "-O",
                "vmdk",
                "-o",
                "subformat=streamOptimized",
                "../data.raw",
                IMAGE,
            ],
        ),
        ("split", &["create", "-f", "vmdk", "-o", "subformat=twoGbMaxExtentSparse", IMAGE, "3G"]),
        ("flat", &["create", "-f", "vmdk", "-o", "subformat=monolithicFlat", IMAGE, "1M"]),
        ("zeroed", &["convert", "-O", "vmdk", "-o", "zeroed_grain=on", "../data.raw", IMAGE]),
    ];
    for (name, args) in layouts {
        let d = bases.path().join(name);
        std::fs::create_dir(&d).unwrap();
        run_ok(&d, args);
    }
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut failures = Vec::new();
    let mut compared = 0;
    for round in 0..150 {
        let (name, _) = layouts[rng.below(layouts.len() as u64) as usize];
        let dir = tempfile::tempdir().unwrap();
        let files = files_in(&bases.path().join(name));
        for f in &files {
            std::fs::copy(bases.path().join(name).join(f), dir.path().join(f)).unwrap();
        }
        let victim = dir.path().join(&files[rng.below(files.len() as u64) as usize]);
        let mut b = std::fs::read(&victim).unwrap();
        for _ in 0..1 + rng.below(3) {
            let len = b.len() as u64;
            match rng.below(10) {
                0..=4 if len > 0 => {
                    // Mostly the header, descriptor and directories.
                    let limit = [80, 1024, 12_000, len][rng.below(4) as usize].min(len);
                    b[rng.below(limit) as usize] = rng.next() as u8;
                }
                5..=6 if len >= 80 => {
                    let at = rng.below(76) as usize;
                    b[at..at + 4].copy_from_slice(&(rng.next() as u32).to_le_bytes());
                }
                7 => b.truncate(rng.below(len + 1) as usize),
                _ => {
                    let text = String::from_utf8_lossy(&b).into_owned();
                    if text.len() == b.len() {
                        let (from, to) = [
                            ("SPARSE", "FLAT"),
                            ("\" 0", "\" 9"),
                            ("RW ", "RW 9"),
                            ("CID=", "CID=-"),
                            ("\n\n", "\n"),
                            ("createType", "createTyp"),
                        ][rng.below(6) as usize];
                        b = text.replacen(from, to, 1).into_bytes();
                    }
                }
            }
        }
        std::fs::write(&victim, &b).unwrap();
        let q = run(dir.path(), &["info", "-f", "vmdk", "--output=json", IMAGE]);
        let q2 = run(dir.path(), &["check", "-f", "vmdk", IMAGE]);
        if std::str::from_utf8(&q.stderr).is_err()
            || std::str::from_utf8(&q2.stderr).is_err()
            || q.status.code().is_none()
            || q2.status.code().is_none()
        {
            continue;
        }
        compared += 1;
        if let Err(e) = check_and_info_parity(dir.path(), IMAGE) {
            failures.push(format!("round {round} ({name}, {}): {e}", victim.display()));
        }
    }
    assert!(compared > 100, "only {compared} rounds compared");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
