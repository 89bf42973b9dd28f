//! Differential tests: instar-deflate against the C zlib that python3
//! links (1.2.13 here), which is the library qemu-img compresses with.
//! Every case compares the whole stream byte for byte, and inflates ours
//! back (flate2) so that a failure also says whether the stream is valid.
//!
//! The inputs are generated here (a seeded generator) or read from the
//! host's files (`/usr/bin/qemu-img`, licence texts) when present; the
//! oracle is `tests/zlib_oracle.py`. Without python3 the tests skip and
//! say so: python3 and its zlib module are outside this project.

use instar_deflate::{compress_into, Params};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

/// zlib versions whose deflate output these tests take as the reference:
/// 1.2.12 changed where blocks end (`sym_buf`), and qemu's bytes were
/// measured identical under 1.2.13, 1.3.1 and 1.3.2.
const REFERENCE_ZLIB: &[&str] = &["1.2.12", "1.2.13", "1.3", "1.3.1", "1.3.2"];

/// A small deterministic generator (xorshift64*), so inputs are the same
/// on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap()
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next().to_le_bytes()[3]).collect()
    }
}

/// Words for text-like inputs.
const WORDS: &[&str] = &[
    "the",
    "cluster",
    "image",
    "qemu",
    "snapshot",
    "of",
    "and",
    "to",
    "a",
    "refcount",
    "table",
    "offset",
    "length",
    "header",
    "is",
    "in",
    "block",
    "data",
    "for",
    "compressed",
    "zero",
    "L2",
];

fn text(rng: &mut Rng, n: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(n + 16);
    while v.len() < n {
        v.extend_from_slice(WORDS[rng.below(WORDS.len())].as_bytes());
        v.push(if rng.below(12) == 0 { b'\n' } else { b' ' });
    }
    v.truncate(n);
    v
}

/// Bytes whose counts follow the Fibonacci numbers, laid out so that
/// three-byte strings rarely repeat: the literal tree's optimal lengths
/// exceed 15 bits and zlib's length-limiting repair runs.
fn fibonacci_literals(rng: &mut Rng) -> Vec<u8> {
    let (mut a, mut b) = (1usize, 1usize);
    let mut v = Vec::new();
    for sym in 0..22u8 {
        v.extend(std::iter::repeat_n(sym, a));
        (a, b) = (b, a + b);
    }
    for i in (1..v.len()).rev() {
        v.swap(i, rng.below(i + 1));
    }
    v
}

/// Bytes drawn with probabilities falling by `ratio` from one value to
/// the next, redrawn whenever the three-byte string they end was seen in
/// the last 256 bytes: with a 512-byte window (distance limit 250) there is
/// nothing to match, so the literal counts keep their skew and the optimal
/// code for the rarest values is longer than 15 bits.
fn unmatchable_geometric(rng: &mut Rng, ratio: f64, n: usize) -> Vec<u8> {
    const SYMBOLS: i32 = 24;
    let cum: Vec<f64> = (0..SYMBOLS)
        .scan(0.0, |acc, k| {
            *acc += ratio.powi(k);
            Some(*acc)
        })
        .collect();
    let total = cum[cum.len() - 1];
    let mut seen = std::collections::HashMap::<[u8; 3], usize>::new();
    let mut v: Vec<u8> = vec![200, 201];
    while v.len() < n {
        let pos = v.len();
        let tail = [v[pos - 2], v[pos - 1]];
        let fresh = |b: u8, seen: &std::collections::HashMap<[u8; 3], usize>| {
            seen.get(&[tail[0], tail[1], b]).is_none_or(|&at| pos - at > 256)
        };
        let mut pick = None;
        for _ in 0..8 {
            let x = (rng.next() >> 11) as f64 / (1u64 << 53) as f64 * total;
            let b = u8::try_from(cum.iter().position(|&c| x < c).unwrap_or(0)).unwrap();
            if fresh(b, &seen) {
                pick = Some(b);
                break;
            }
        }
        let b = pick.or_else(|| (0..=255u8).find(|&b| fresh(b, &seen))).unwrap();
        seen.insert([tail[0], tail[1], b], pos);
        v.push(b);
    }
    v
}

/// Every corpus input with its name.
fn corpus() -> Vec<(String, Vec<u8>)> {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let mut c: Vec<(String, Vec<u8>)> = vec![
        ("empty".into(), vec![]),
        ("one".into(), vec![b'x']),
        ("two".into(), b"xy".to_vec()),
        ("three".into(), b"xyz".to_vec()),
        ("abcabc".into(), b"abcabcabcabcabcabcabcabcabcabc".to_vec()),
        ("zeros64k".into(), vec![0; 65536]),
        ("random64k".into(), rng.bytes(65536)),
        ("random1k".into(), rng.bytes(1024)),
        ("text64k".into(), text(&mut rng, 65536)),
        ("text2m".into(), text(&mut rng, 2 << 20)),
        ("fib".into(), fibonacci_literals(&mut rng)),
    ];
    // Repetitive data with periods around the interesting lengths.
    for period in [1usize, 2, 3, 7, 100, 257, 258, 259, 4095, 4097, 30000] {
        let unit = rng.bytes(period);
        let data: Vec<u8> = unit.iter().copied().cycle().take(200_000).collect();
        c.push((format!("period{period}"), data));
    }
    // Mostly zero with random islands (sparse disk-like clusters).
    let mut islands = vec![0u8; 65536];
    for _ in 0..40 {
        let at = rng.below(65000);
        let n = rng.below(500);
        let b = rng.bytes(n);
        islands[at..at + n.min(65536 - at)].copy_from_slice(&b[..n.min(65536 - at)]);
    }
    c.push(("islands".into(), islands));
    // Low-entropy bytes: many literals, so blocks end on a full symbol
    // buffer again and again.
    let skew: Vec<u8> =
        (0..600_000).map(|_| u8::try_from(rng.below(16) * rng.below(16)).unwrap()).collect();
    c.push(("skew600k".into(), skew));
    for (i, r) in [0.5f64, 0.6].into_iter().enumerate() {
        c.push((format!("geometric{i}"), unmatchable_geometric(&mut rng, r, 40_000)));
    }
    // Host files, when present: a binary and licence texts.
    if let Ok(bin) = std::fs::read("/usr/bin/qemu-img") {
        for (i, len) in [512usize, 4096, 65536, 65536, 300_000, 2 << 20].into_iter().enumerate() {
            let at = (i * 377_777) % bin.len().saturating_sub(len).max(1);
            let end = (at + len).min(bin.len());
            c.push((format!("qemu-img@{at}+{len}"), bin[at..end].to_vec()));
        }
    }
    for lic in ["GPL-3", "Apache-2.0", "Artistic"] {
        if let Ok(t) = std::fs::read(Path::new("/usr/share/common-licenses").join(lic)) {
            c.push((format!("licence-{lic}"), t));
        }
    }
    c
}

/// Where the oracle's outputs go.
fn workdir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("instar-deflate-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs the oracle on every `(level, window_bits, mem_level, input)` job,
/// window bits negative for raw; None (with the reason printed) when
/// python3 or a reference zlib is not there.
fn oracle(tag: &str, jobs: &[(i32, i32, i32, &[u8])]) -> Option<Vec<Vec<u8>>> {
    let dir = workdir(tag);
    let mut manifest = String::new();
    for (i, (level, wbits, mem, data)) in jobs.iter().enumerate() {
        let src = dir.join(format!("in{i}"));
        std::fs::write(&src, data).unwrap();
        manifest += &format!(
            "{level} {wbits} {mem} {} {}\n",
            src.display(),
            dir.join(format!("out{i}")).display()
        );
    }
    let list = dir.join("manifest");
    std::fs::write(&list, manifest).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/zlib_oracle.py");
    let run = match Command::new("python3").arg(&script).arg(&list).output() {
        Ok(run) => run,
        Err(e) => {
            eprintln!("SKIP: python3 is not available ({e}); it is the zlib oracle");
            return None;
        }
    };
    assert!(run.status.success(), "oracle failed: {}", String::from_utf8_lossy(&run.stderr));
    let version = String::from_utf8_lossy(&run.stdout).trim().to_string();
    if !REFERENCE_ZLIB.contains(&version.as_str()) {
        eprintln!("SKIP: python3 links zlib {version}, not a reference zlib ({REFERENCE_ZLIB:?})");
        return None;
    }
    let outs = (0..jobs.len())
        .map(|i| {
            let mut v = Vec::new();
            std::fs::File::open(dir.join(format!("out{i}"))).unwrap().read_to_end(&mut v).unwrap();
            v
        })
        .collect();
    let _ = std::fs::remove_dir_all(&dir);
    Some(outs)
}

/// Compresses with room for any output.
fn ours(params: &Params, data: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; data.len() * 2 + 1024];
    let n = compress_into(params, data, &mut out).unwrap();
    out.truncate(n);
    out
}

fn inflate(stream: &[u8], zlib_header: bool, expect_len: usize) -> Vec<u8> {
    let mut d = flate2::Decompress::new(zlib_header);
    let mut out = Vec::with_capacity(expect_len + 1);
    d.decompress_vec(stream, &mut out, flate2::FlushDecompress::Finish).unwrap();
    out
}

/// Compares every corpus input under each parameter set; panics with the
/// list of differing cases.
fn check(tag: &str, sets: &[(i32, i32, i32)], max_len: usize) {
    let corpus: Vec<_> = corpus().into_iter().filter(|(_, d)| d.len() <= max_len).collect();
    let mut jobs = Vec::new();
    for &(level, wbits, mem) in sets {
        for (_, data) in &corpus {
            jobs.push((level, wbits, mem, data.as_slice()));
        }
    }
    let Some(expected) = oracle(tag, &jobs) else { return };
    let mut bad = Vec::new();
    for (i, (level, wbits, mem, data)) in jobs.iter().enumerate() {
        let name = &corpus[i % corpus.len()].0;
        let wb = u8::try_from(wbits.unsigned_abs()).unwrap();
        let params = Params::new(*level, wb, u8::try_from(*mem).unwrap(), *wbits > 0).unwrap();
        let got = ours(&params, data);
        assert_eq!(
            inflate(&got, *wbits > 0, data.len()),
            *data,
            "{name} {level}/{wbits}/{mem}: does not round-trip"
        );
        if got != expected[i] {
            let at = got.iter().zip(&expected[i]).position(|(a, b)| a != b);
            bad.push(format!("{name} level {level} wbits {wbits} mem {mem}: {} vs zlib {} bytes, first difference at {at:?}", got.len(), expected[i].len()));
        }
    }
    eprintln!("{tag}: {} streams compared, {} differ", jobs.len(), bad.len());
    assert!(
        bad.is_empty(),
        "{} of {} streams differ from zlib:\n{}",
        bad.len(),
        jobs.len(),
        bad.join("\n")
    );
}

#[test]
fn qcow2_parameters_match_zlib() {
    check("qcow2", &[(-1, -12, 9)], usize::MAX);
}

#[test]
fn vmdk_parameters_match_zlib() {
    check("vmdk", &[(-1, 15, 8)], usize::MAX);
}

#[test]
fn every_level_matches_zlib() {
    let sets: Vec<_> = (1..=9).flat_map(|l| [(l, -12, 9), (l, 15, 8)]).collect();
    check("levels", &sets, 300_000);
}

#[test]
fn every_window_and_memory_level_matches_zlib() {
    let mut sets: Vec<_> = (9..=15).map(|w| (6, -w, 9)).collect();
    sets.extend((1..=9).map(|m| (6, -12, m)));
    sets.extend([(6, 9, 1), (1, -9, 1), (9, -15, 9), (4, 13, 5), (3, 10, 2)]);
    check("windows", &sets, 70_000);
}

/// The output bound against the C library's one-shot call
/// (`tests/zlib_bound_oracle.py`, ctypes): buffers one byte either side of
/// each stream's length, and qemu's cluster buffer for clusters that do
/// and do not compress. Skips (and says so) without python3 or libz.so.1.
#[test]
fn output_bound_matches_c_zlib() {
    let mut rng = Rng(11);
    let inputs = [text(&mut rng, 65536), rng.bytes(65536), vec![0; 65536], rng.bytes(40), vec![]];
    let sets = [(-1i32, -12i32, 9i32), (-1, 15, 8), (1, -9, 1)];
    let mut jobs = Vec::new();
    for &(level, wbits, mem) in &sets {
        let params = Params::new(
            level,
            u8::try_from(wbits.unsigned_abs()).unwrap(),
            u8::try_from(mem).unwrap(),
            wbits > 0,
        )
        .unwrap();
        for data in &inputs {
            let n = ours(&params, data).len();
            for cap in [n.saturating_sub(1), n, n + 1, 65535, 0] {
                jobs.push((level, wbits, mem, cap, data.as_slice(), params));
            }
        }
    }
    let dir = workdir("bound");
    let mut manifest = String::new();
    for (i, (level, wbits, mem, cap, data, _)) in jobs.iter().enumerate() {
        let src = dir.join(format!("in{i}"));
        std::fs::write(&src, data).unwrap();
        manifest += &format!(
            "{level} {wbits} {mem} {cap} {} {}\n",
            src.display(),
            dir.join(format!("out{i}")).display()
        );
    }
    std::fs::write(dir.join("manifest"), manifest).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/zlib_bound_oracle.py");
    let run = match Command::new("python3").arg(&script).arg(dir.join("manifest")).output() {
        Ok(run) => run,
        Err(e) => {
            eprintln!("SKIP: python3 is not available ({e}); it runs the zlib oracle");
            return;
        }
    };
    if !run.status.success() {
        eprintln!("SKIP: the C zlib could not be called: {}", String::from_utf8_lossy(&run.stderr));
        return;
    }
    let stdout = String::from_utf8_lossy(&run.stdout);
    let mut lines = stdout.lines();
    let version = lines.next().unwrap_or_default();
    if !REFERENCE_ZLIB.contains(&version) {
        eprintln!("SKIP: libz.so.1 is zlib {version}, not a reference zlib ({REFERENCE_ZLIB:?})");
        return;
    }
    let (mut fits, mut refused) = (0, 0);
    for (i, line) in lines.enumerate() {
        let (level, wbits, mem, cap, data, params) = jobs[i];
        let mut out = vec![0u8; cap];
        let got = compress_into(&params, data, &mut out);
        let what =
            format!("{} bytes, level {level} wbits {wbits} mem {mem}, cap {cap}", data.len());
        match line.strip_prefix("end ") {
            Some(n) => {
                let n: usize = n.parse().unwrap();
                assert_eq!(got, Some(n), "{what}: zlib finished");
                assert_eq!(
                    out[..n],
                    std::fs::read(dir.join(format!("out{i}"))).unwrap()[..],
                    "{what}"
                );
                fits += 1;
            }
            None => {
                assert_eq!(got, None, "{what}: zlib did not finish ({line})");
                refused += 1;
            }
        }
    }
    assert_eq!(fits + refused, jobs.len());
    eprintln!("bound: {} calls, {fits} finished, {refused} did not, all as zlib", jobs.len());
    let _ = std::fs::remove_dir_all(&dir);
}

/// The output bound: qemu gives zlib `cluster_size - 1` bytes and stores a
/// cluster uncompressed unless zlib finishes within them.
#[test]
fn output_bound_is_zlibs() {
    let mut rng = Rng(7);
    let random = rng.bytes(65536);
    let mut out = vec![0u8; 65535];
    assert_eq!(compress_into(&Params::QCOW2, &random, &mut out), None, "random data does not fit");

    let text = text(&mut rng, 65536);
    let full = ours(&Params::QCOW2, &text);
    let n = full.len();
    // A raw stream must be strictly shorter than the buffer.
    assert_eq!(compress_into(&Params::QCOW2, &text, &mut vec![0; n]), None);
    let mut out = vec![0; n + 1];
    assert_eq!(compress_into(&Params::QCOW2, &text, &mut out), Some(n));
    assert_eq!(out[..n], full[..]);
    // A wrapped one, trailer included, may fill it.
    let full = ours(&Params::VMDK, &text);
    let n = full.len();
    assert_eq!(compress_into(&Params::VMDK, &text, &mut vec![0; n - 1]), None);
    let mut out = vec![0; n];
    assert_eq!(compress_into(&Params::VMDK, &text, &mut out), Some(n));
    assert_eq!(out, full);
    assert_eq!(compress_into(&Params::VMDK, b"", &mut [0u8; 3]), None);
    assert_eq!(compress_into(&Params::QCOW2, b"", &mut []), None);
}
