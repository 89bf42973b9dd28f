//! instar's VHDX images against qemu-img's: the same bytes outside the
//! fields that are random or name the writer (SPEC section 3), the same
//! `info` output, a clean `qemu-img check`, and data qemu can write into
//! instar's image and read back.
//!
//! qemu-img is the oracle; these tests need it at /usr/bin/qemu-img (or
//! `$QEMU_IMG`) and say so when it is missing.

use instar_core::opts::FILE_PROTOCOL_OPTS;
use instar_core::{CreateRequest, Format, Options, QemuDialect};
use instar_vhdx::header::Header;
use instar_vhdx::Vhdx;
use std::path::{Path, PathBuf};
use std::process::Command;

const K: u64 = 1024;
const M: u64 = 1024 * K;
const G: u64 = 1024 * M;
const T: u64 = 1024 * G;

fn qemu_img() -> Option<PathBuf> {
    let p = std::env::var_os("QEMU_IMG").map(PathBuf::from).unwrap_or("/usr/bin/qemu-img".into());
    if p.exists() {
        Some(p)
    } else {
        eprintln!("qemu-img not found at {}: the oracle is not installed", p.display());
        None
    }
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(qemu: &Path, args: &[&str]) -> Run {
    let out = Command::new(qemu).args(args).output().expect("qemu-img runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn options(list: &str, size: u64) -> Options {
    let mut o = Options::new(&[Vhdx.create_opts(), FILE_PROTOCOL_OPTS]);
    if !list.is_empty() {
        o.parse(list).expect("options parse");
    }
    o.set_number("size", size);
    o
}

fn instar_create(path: &Path, list: &str, size: u64) -> Result<(), instar_core::Error> {
    let o = options(list, size);
    let req = CreateRequest { filename: path.to_str().unwrap(), options: &o };
    Vhdx.create(&req)
}

fn qemu_create(qemu: &Path, path: &Path, list: &str, size: u64) -> Run {
    let size = size.to_string();
    let mut args = vec!["create", "-q", "-f", "vhdx"];
    if !list.is_empty() {
        args.extend(["-o", list]);
    }
    args.extend([path.to_str().unwrap(), size.as_str()]);
    run(qemu, &args)
}

fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// The byte ranges SPEC section 3 masks, for an image laid out as `head`
/// (the first 256 KiB) says.
fn masks(head: &[u8]) -> Vec<(u64, u64)> {
    // Region table entry 1 is the metadata region; page 83 data is the
    // third item, 16 bytes at 64 KiB + 16 into it.
    let metadata = le64(head, 0x30000 + 16 + 32 + 16);
    vec![(8, 520), (0x10004, 0x10030), (0x20004, 0x20030), (metadata + 0x10010, metadata + 0x10020)]
}

/// Compares two images outside the masks; returns the first differences.
fn diff_outside_masks(a: &Path, b: &Path) -> Vec<String> {
    use std::io::Read;
    let la = std::fs::metadata(a).unwrap().len();
    let lb = std::fs::metadata(b).unwrap().len();
    if la != lb {
        return vec![format!("lengths differ: {la} vs {lb}")];
    }
    let mut fa = std::fs::File::open(a).unwrap();
    let mut fb = std::fs::File::open(b).unwrap();
    let mut head = vec![0u8; 0x50000.min(la as usize)];
    std::fs::File::open(b).unwrap().read_exact(&mut head).unwrap();
    let masks = masks(&head);
    let mut diffs = Vec::new();
    let chunk = 4 * M as usize;
    let (mut ba, mut bb) = (vec![0u8; chunk], vec![0u8; chunk]);
    let mut pos = 0u64;
    while pos < la {
        let n = chunk.min((la - pos) as usize);
        fa.read_exact(&mut ba[..n]).unwrap();
        fb.read_exact(&mut bb[..n]).unwrap();
        if ba[..n] != bb[..n] {
            for i in 0..n {
                let at = pos + i as u64;
                if ba[i] != bb[i] && !masks.iter().any(|&(s, e)| at >= s && at < e) {
                    diffs.push(format!("0x{at:x}: {:02x} vs {:02x}", ba[i], bb[i]));
                    if diffs.len() > 8 {
                        return diffs;
                    }
                }
            }
        }
        pos += n as u64;
    }
    diffs
}

/// Both headers carry a correct CRC-32C and consecutive sequence numbers.
fn headers_are_real(path: &Path) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::open(path).unwrap();
    let mut h1 = vec![0u8; 4096];
    let mut h2 = vec![0u8; 4096];
    f.read_exact_at(&mut h1, 0x10000).unwrap();
    f.read_exact_at(&mut h2, 0x20000).unwrap();
    assert!(Header::is_valid_block(&h1), "{}: header 1 invalid", path.display());
    assert!(Header::is_valid_block(&h2), "{}: header 2 invalid", path.display());
    let (a, b) = (Header::from_bytes(&h1), Header::from_bytes(&h2));
    assert_eq!(a.sequence_number + 1, b.sequence_number);
    assert_ne!(a.file_write_guid.0, [0; 16]);
    assert_ne!(a.data_write_guid.0, [0; 16]);
    let mut creator = vec![0u8; 24];
    f.read_exact_at(&mut creator, 8).unwrap();
    assert_eq!(
        &creator,
        &"instar 0.1.0".encode_utf16().flat_map(u16::to_le_bytes).collect::<Vec<_>>()
    );
}

fn blocks(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).unwrap().blocks()
}

fn info_text(qemu: &Path, path: &Path, json: bool) -> String {
    let p = path.to_str().unwrap();
    let args: Vec<&str> = if json { vec!["info", "--output=json", p] } else { vec!["info", p] };
    let r = run(qemu, &args);
    assert_eq!(r.code, 0, "qemu-img info {p}: {}", r.stderr);
    r.stdout
}

/// One create case: both tools create, and every comparison holds.
fn compare_case(qemu: &Path, dir: &Path, list: &str, size: u64) {
    let ours = dir.join("instar.vhdx");
    let theirs = dir.join("qemu.vhdx");
    let _ = std::fs::remove_file(&ours);
    let _ = std::fs::remove_file(&theirs);
    let case = format!("size={size} -o '{list}'");
    let r = qemu_create(qemu, &theirs, list, size);
    assert_eq!(r.code, 0, "{case}: qemu-img create failed: {}", r.stderr);
    instar_create(&ours, list, size).unwrap_or_else(|e| panic!("{case}: instar create: {e}"));

    let diffs = diff_outside_masks(&ours, &theirs);
    assert!(diffs.is_empty(), "{case}: bytes differ outside the masks:\n{}", diffs.join("\n"));
    headers_are_real(&ours);
    assert_eq!(blocks(&ours), blocks(&theirs), "{case}: allocation differs");

    // qemu-img reads instar's image exactly as it reads its own.
    let rename = |text: String, from: &Path| text.replace(from.to_str().unwrap(), "$FILE");
    for json in [true, false] {
        let a = rename(info_text(qemu, &ours, json), &ours);
        let b = rename(info_text(qemu, &theirs, json), &theirs);
        assert_eq!(a, b, "{case}: qemu-img info differs (json={json})");
    }
    // instar's info prints what qemu-img prints, on either file.
    for path in [&ours, &theirs] {
        let info = Vhdx.info(path.to_str().unwrap()).unwrap();
        let json = info.to_json(QemuDialect::NEWEST).to_qemu_pretty();
        assert_eq!(json, info_text(qemu, path, true), "{case}: info JSON on {}", path.display());
        let human = info.to_human(QemuDialect::NEWEST);
        assert_eq!(human, info_text(qemu, path, false), "{case}: info human on {}", path.display());
    }
    let c = run(qemu, &["check", ours.to_str().unwrap()]);
    assert_eq!((c.code, c.stdout.as_str()), (0, "No errors were found on the image.\n"), "{case}");
    let report = Vhdx.check(ours.to_str().unwrap()).unwrap();
    assert_eq!(report.exit_code(), 0, "{case}: instar check");
    assert!(report.messages.is_empty());
}

const BLOCK_SIZES: [u64; 9] = [M, 2 * M, 4 * M, 8 * M, 16 * M, 32 * M, 64 * M, 128 * M, 256 * M];
const LOG_SIZES: [&str; 3] = ["1M", "1536K", "4M"];

fn sweep(size: u64, fixed_too: bool) {
    let Some(qemu) = qemu_img() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut subformats = vec!["dynamic"];
    if fixed_too {
        subformats.push("fixed");
    }
    for sub in &subformats {
        compare_case(&qemu, dir.path(), &format!("subformat={sub}"), size);
        for bs in BLOCK_SIZES {
            for log in LOG_SIZES {
                let list = format!("subformat={sub},block_size={bs},log_size={log}");
                compare_case(&qemu, dir.path(), &list, size);
            }
        }
    }
}

#[test]
fn sweep_1m() {
    sweep(M, true);
}

#[test]
fn sweep_64m() {
    sweep(64 * M, true);
}

#[test]
fn sweep_1g() {
    sweep(G, false);
}

#[test]
fn sweep_100g() {
    sweep(100 * G, false);
}

#[test]
fn sweep_2t() {
    sweep(2 * T, false);
}

/// The five vhdx rows of SPEC section 4.
#[test]
fn spec_rows() {
    let Some(qemu) = qemu_img() else { return };
    let dir = tempfile::tempdir().unwrap();
    for (size, list) in
        [(M, ""), (64 * M, ""), (G, ""), (G, "block_size=16M"), (G, "block_size=32M")]
    {
        compare_case(&qemu, dir.path(), list, size);
    }
}

/// Odd corners of qemu's arithmetic and rounding.
#[test]
fn odd_sizes_and_options() {
    let Some(qemu) = qemu_img() else { return };
    let dir = tempfile::tempdir().unwrap();
    for (size, list) in [
        (0, ""),
        (1, ""),
        (1000, "subformat=fixed"),
        (G + 512, ""),
        (33 * T, ""),
        (64 * T, ""),
        (G, "block_state_zero=off"),
        (64 * M, "subformat=fixed,block_state_zero=off"),
        (64 * M, "subformat=fixed,block_state_zero=off,block_size=1M"),
        (G, "block_size=1"),
        (G, "block_size=1.5M"),
        (G, "block_size=512M"),
        (G, "block_size=0"),
        (G, "log_size=100"),
        (G, "log_size=3M"),
        (G, "preallocation=full"),
        (G, "preallocation=falloc,nocow=on,extent_size_hint=1M"),
    ] {
        compare_case(&qemu, dir.path(), list, size);
    }
}

/// The largest BAT qemu makes: 64 TiB in 1 MiB blocks (512 MiB of
/// entries, with sector bitmap entries interleaved).
#[test]
fn largest_bat() {
    let Some(qemu) = qemu_img() else { return };
    let dir = tempfile::tempdir().unwrap();
    compare_case(&qemu, dir.path(), "block_size=1M", 64 * T);
}

/// Refused creates: qemu-img's message, and no file left behind.
#[test]
fn refusals_match_qemu_and_leave_nothing() {
    let Some(qemu) = qemu_img() else { return };
    let dir = tempfile::tempdir().unwrap();
    for (size, list) in [
        (G, "block_size=3M"),
        (G, "block_size=100M"),
        (G, "log_size=0"),
        (G, "log_size=4G"),
        (G, "log_size=5G,block_size=3M"),
        (G, "subformat=foo"),
        (G, "subformat=Fixed"),
        (G, "subformat=differencing"),
        (64 * T + 512, ""),
        (65 * T, "log_size=0"),
        (G, "preallocation=metadata"),
        (G, "preallocation=bogus"),
        (G, "extent_size_hint=5T"),
        (G, "subformat=foo,preallocation=metadata"),
    ] {
        let ours = dir.path().join("instar.vhdx");
        let theirs = dir.path().join("qemu.vhdx");
        let r = qemu_create(&qemu, &theirs, list, size);
        assert_eq!(r.code, 1, "{list}: qemu-img accepted it");
        let expected = r.stderr.trim_end().rsplit(": ").next().unwrap().to_string();
        let got = instar_create(&ours, list, size).expect_err(list).to_string();
        assert!(
            r.stderr.trim_end().ends_with(&format!("{}: {got}", theirs.display())),
            "{list}: qemu-img said {:?}, instar {got:?} (last part {expected:?})",
            r.stderr
        );
        assert!(!ours.exists(), "{list}: instar left a file behind");
        let _ = std::fs::remove_file(&theirs);
    }
    // A fixed image larger than the file system allows (16 TiB on ext4):
    // qemu-img reports EFBIG in its own words, which the block layer
    // produces from this error kind.
    let ours = dir.path().join("instar.vhdx");
    let theirs = dir.path().join("qemu.vhdx");
    let r = qemu_create(&qemu, &theirs, "subformat=fixed", 20 * T);
    if r.stderr.contains("The image size is too large for file format 'vhdx'") {
        let e = instar_create(&ours, "subformat=fixed", 20 * T).unwrap_err();
        assert_eq!(e.kind(), instar_core::ErrorKind::TooLarge, "{e}");
        assert!(!ours.exists(), "instar left a file behind");
    }
    // A file that cannot be created wins over bad options, as in qemu.
    let missing = dir.path().join("no/such/dir/x.vhdx");
    let r = qemu_create(&qemu, &missing, "subformat=foo", G);
    let got = instar_create(&missing, "subformat=foo", G).unwrap_err().to_string();
    assert!(r.stderr.trim_end().ends_with(&got), "{:?} vs {got:?}", r.stderr);
}

/// qemu can write into instar's dynamic image, and reads back what it
/// wrote.
#[test]
fn qemu_writes_and_reads_back() {
    let Some(qemu) = qemu_img() else { return };
    let dir = tempfile::tempdir().unwrap();
    for (size, list) in [
        (64 * M, ""),
        (64 * M, "block_size=1M,log_size=1536K"),
        (64 * M, "block_state_zero=off"),
        (3 * M + 512, "block_size=2M"),
    ] {
        let raw = dir.path().join("data.raw");
        let back = dir.path().join("back.raw");
        let img = dir.path().join("instar.vhdx");
        let _ = std::fs::remove_file(&img);
        // A pattern with holes, so zero blocks and data blocks both occur.
        let mut data = vec![0u8; size as usize];
        for (i, chunk) in data.chunks_mut(4096).enumerate() {
            if i % 3 != 1 {
                let v = (i as u32).wrapping_mul(2_654_435_761);
                chunk
                    .iter_mut()
                    .enumerate()
                    .for_each(|(j, b)| *b = (v >> (j % 4 * 8)) as u8 ^ j as u8);
            }
        }
        std::fs::write(&raw, &data).unwrap();
        instar_create(&img, list, size).unwrap();
        let p = |x: &PathBuf| x.to_str().unwrap().to_string();
        let w = run(&qemu, &["convert", "-n", "-f", "raw", "-O", "vhdx", &p(&raw), &p(&img)]);
        assert_eq!(w.code, 0, "{list}: convert into instar's image: {}", w.stderr);
        let c = run(&qemu, &["check", &p(&img)]);
        assert_eq!(c.code, 0, "{list}: check after write: {}{}", c.stdout, c.stderr);
        let r = run(&qemu, &["convert", "-f", "vhdx", "-O", "raw", &p(&img), &p(&back)]);
        assert_eq!(r.code, 0, "{list}: convert back: {}", r.stderr);
        assert!(std::fs::read(&back).unwrap() == data, "{list}: data read back differs");
        // instar reads the image qemu wrote to.
        let report = Vhdx.check(&p(&img)).unwrap();
        assert_eq!(report.exit_code(), 0);
        let info = Vhdx.info(&p(&img)).unwrap();
        assert_eq!(
            info.to_json(QemuDialect::NEWEST).to_qemu_pretty(),
            info_text(&qemu, &img, true)
        );
    }
}
