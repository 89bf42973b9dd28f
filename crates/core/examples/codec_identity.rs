//! Checks instar's compressors against images qemu-img wrote: every
//! compressed cluster (qcow2) or grain (streamOptimized vmdk) is
//! decompressed, compressed again with [`Compressor`], and compared with
//! what qemu stored; every cluster qemu stored uncompressed in a `-c`
//! qcow2 must be one the compressor also refuses. Also times the
//! compressor (build with `--release` for figures).
//!
//! ```text
//! cargo run --release -p instar-core --example codec_identity -- qcow2 IMG [--dump FILE]
//! cargo run --release -p instar-core --example codec_identity -- vmdk IMG
//! cargo run --release -p instar-core --example codec_identity -- bench PLAIN [MIB [fresh]]
//! ```
//!
//! `bench` compresses a `--dump` file 64 KiB at a time with qcow2's
//! parameters (its first MIB MiB, default all) and prints the speed;
//! `fresh` makes a new compressor per cluster, as qemu makes a zlib stream
//! per cluster.
//!
//! `--dump FILE` writes the plaintext of the compressed clusters, one
//! after the other, for timing other compressors on the same data.
//! A development tool over trusted images made by qemu-img: a malformed
//! file ends it with a message, not a wrong count.

use instar_core::codec::{inflate, zstd_fill, Compressor};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Reads a big-endian integer of `N` bytes at `at`.
fn be<const N: usize>(b: &[u8], at: usize) -> Result<u64, String> {
    let s = b.get(at..at + N).ok_or_else(|| format!("short read at {at}"))?;
    Ok(s.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
}

/// Reads a little-endian integer of `N` bytes at `at`.
fn le<const N: usize>(b: &[u8], at: usize) -> Result<u64, String> {
    let s = b.get(at..at + N).ok_or_else(|| format!("short read at {at}"))?;
    Ok(s.iter().rev().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
}

fn slice(b: &[u8], at: u64, len: u64) -> Result<&[u8], String> {
    let at = usize::try_from(at).map_err(|e| e.to_string())?;
    let len = usize::try_from(len).map_err(|e| e.to_string())?;
    b.get(at..at.saturating_add(len)).ok_or_else(|| format!("{len} bytes at {at} past the end"))
}

/// Tallies of one run.
#[derive(Default)]
struct Tally {
    same: usize,
    differ: usize,
    first_differ: Option<String>,
    refused_too: usize,
    we_compress: usize,
    bytes: usize,
    time: Duration,
}

impl Tally {
    fn compare(&mut self, what: String, ours: Option<Vec<u8>>, stored: &[u8], exact: bool) {
        let same = match &ours {
            Some(z) if exact => z[..] == *stored,
            Some(z) => stored.len() >= z.len() && stored[..z.len()] == z[..],
            None => false,
        };
        if same {
            self.same += 1;
        } else {
            self.differ += 1;
            self.first_differ.get_or_insert(what);
        }
    }
}

fn qcow2(img: &[u8], dump: Option<&str>) -> Result<Tally, String> {
    if be::<4>(img, 0)? != 0x5146_49fb {
        return Err("not a qcow2 image".into());
    }
    let cluster_bits = u32::try_from(be::<4>(img, 20)?).map_err(|e| e.to_string())?;
    if !(9..=21).contains(&cluster_bits) {
        return Err("bad cluster bits".into());
    }
    let cs = 1u64 << cluster_bits;
    let l1_size = be::<4>(img, 36)?;
    let l1_offset = be::<8>(img, 40)?;
    let version = be::<4>(img, 4)?;
    let header_len = if version >= 3 { be::<4>(img, 100)? } else { 72 };
    let ctype = if header_len > 104 { img.get(104).copied().unwrap_or(0) } else { 0 };
    let (codec, zstd) =
        if ctype == 1 { (Compressor::Qcow2Zstd, true) } else { (Compressor::Qcow2Deflate, false) };
    let cap = usize::try_from(cs - 1).map_err(|e| e.to_string())?;
    let x = 62 - (cluster_bits - 8);
    let mut session = codec.session();
    let mut t = Tally::default();
    let mut dumped = Vec::new();
    let mut plain = vec![0u8; cap + 1];
    let l1 = slice(img, l1_offset, l1_size * 8)?;
    for l1e in l1.chunks_exact(8) {
        let l2_offset = be::<8>(l1e, 0)? & 0x00ff_ffff_ffff_fe00;
        if l2_offset == 0 {
            continue;
        }
        for e in slice(img, l2_offset, cs)?.chunks_exact(8) {
            let e = be::<8>(e, 0)?;
            if e & (1 << 62) != 0 {
                let host = e & ((1u64 << x) - 1);
                let sectors = ((e >> x) & ((1u64 << (cluster_bits - 8)) - 1)) + 1;
                let len = (sectors * 512 - (host & 511)).min(img.len() as u64 - host);
                let stored = slice(img, host, len)?;
                plain.fill(0);
                if zstd {
                    zstd_fill(stored, &mut plain).map_err(|e| format!("{e:?} at {host:#x}"))?;
                } else {
                    inflate(stored, &mut plain, false)
                        .map_err(|e| format!("{e:?} at {host:#x}"))?;
                }
                let start = Instant::now();
                let ours = session.compress(&plain, cap);
                t.time += start.elapsed();
                t.bytes += plain.len();
                t.compare(format!("cluster at {host:#x}"), ours, stored, false);
                if dump.is_some() {
                    dumped.extend_from_slice(&plain);
                }
            } else {
                let host = e & 0x00ff_ffff_ffff_fe00;
                if host != 0 && e & 1 == 0 {
                    // Stored uncompressed: qemu's compression did not fit.
                    let data = slice(img, host, cs)?;
                    match session.compress(data, cap) {
                        None => t.refused_too += 1,
                        Some(_) => t.we_compress += 1,
                    }
                }
            }
        }
    }
    if let Some(path) = dump {
        std::fs::write(path, dumped).map_err(|e| e.to_string())?;
    }
    Ok(t)
}

fn vmdk(img: &[u8]) -> Result<Tally, String> {
    if le::<4>(img, 0)? != 0x564d_444b {
        return Err("not a vmdk sparse extent".into());
    }
    let capacity = le::<8>(img, 12)?;
    let grain_sectors = le::<8>(img, 20)?;
    let overhead = le::<8>(img, 64)?;
    let grain = grain_sectors * 512;
    let cap = usize::try_from(2 * grain).map_err(|e| e.to_string())?;
    let mut plain = vec![0u8; usize::try_from(grain).map_err(|e| e.to_string())?];
    let mut session = Compressor::VmdkDeflate.session();
    let mut t = Tally::default();
    let mut at = overhead * 512;
    loop {
        let lba = le::<8>(img, usize::try_from(at).map_err(|e| e.to_string())?)?;
        let size = le::<4>(img, usize::try_from(at + 8).map_err(|e| e.to_string())?)?;
        if size > 0 {
            let stored = slice(img, at + 12, size)?;
            // The last grain may be short of a whole grain.
            let want = (capacity.saturating_sub(lba) * 512).min(grain);
            let out = &mut plain[..usize::try_from(want).map_err(|e| e.to_string())?];
            let (n, _) = inflate(stored, out, true).map_err(|e| format!("{e:?} at {at:#x}"))?;
            let data = &out[..n];
            let start = Instant::now();
            let ours = session.compress(data, cap);
            t.time += start.elapsed();
            t.bytes += data.len();
            t.compare(format!("grain at {at:#x}"), ours, stored, true);
            at += (12 + size).div_ceil(512) * 512;
        } else {
            let kind = le::<4>(img, usize::try_from(at + 12).map_err(|e| e.to_string())?)?;
            if kind == 0 {
                break; // end of stream
            }
            at += (1 + lba) * 512;
        }
    }
    Ok(t)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(kind), Some(path)) = (args.first(), args.get(1)) else {
        eprintln!("usage: codec_identity qcow2|vmdk IMG [--dump FILE]");
        return ExitCode::from(2);
    };
    let dump =
        args.iter().position(|a| a == "--dump").and_then(|i| args.get(i + 1)).map(String::as_str);
    let img = match std::fs::read(path) {
        Ok(img) => img,
        Err(e) => {
            eprintln!("{path}: {e}");
            return ExitCode::from(2);
        }
    };
    if kind == "bench" {
        let mib: usize = args.get(2).and_then(|m| m.parse().ok()).unwrap_or(usize::MAX);
        let data = &img[..img.len().min(mib.saturating_mul(1 << 20))];
        // `fresh`: a new compressor per cluster, as qemu makes a zlib
        // stream per cluster; else one session for all.
        let fresh = args.get(3).is_some_and(|a| a == "fresh");
        let mut session = Compressor::Qcow2Deflate.session();
        let start = Instant::now();
        let mut out_bytes = 0;
        for cluster in data.chunks(65536) {
            let z = if fresh {
                Compressor::Qcow2Deflate.compress(cluster, 65535)
            } else {
                session.compress(cluster, 65535)
            };
            out_bytes += z.map_or(65536, |z| z.len());
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "instar-deflate: {:.1} MiB in {secs:.3} s = {:.0} MiB/s ({out_bytes} bytes out)",
            data.len() as f64 / 1048576.0,
            data.len() as f64 / 1048576.0 / secs
        );
        return ExitCode::SUCCESS;
    }
    let result = match kind.as_str() {
        "qcow2" => qcow2(&img, dump),
        "vmdk" => vmdk(&img),
        _ => Err(format!("unknown kind {kind}")),
    };
    match result {
        Ok(t) => {
            let secs = t.time.as_secs_f64();
            println!(
                "{path}: {} of {} compressed units identical{}; uncompressed units the compressor also refuses: {} of {}; {:.1} MiB in {secs:.3} s = {:.0} MiB/s",
                t.same,
                t.same + t.differ,
                t.first_differ.map(|w| format!(" (first difference: {w})")).unwrap_or_default(),
                t.refused_too,
                t.refused_too + t.we_compress,
                t.bytes as f64 / 1048576.0,
                t.bytes as f64 / 1048576.0 / secs.max(1e-9),
            );
            if t.differ == 0 && t.we_compress == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("{path}: {e}");
            ExitCode::FAILURE
        }
    }
}
