//! Damaged and unusual VHDX images: instar's `info` and `check` must end
//! exactly as qemu-img's do on the same file. For an image that opens,
//! the outputs are compared; for one that does not, qemu-img's stderr must
//! be instar's notes and error, with the program name substituted.
//!
//! Each case starts from an image qemu-img creates, changes bytes (and
//! recomputes a checksum where the case needs the structure to stay
//! valid), then asks both.

use instar_core::{Format, QemuDialect};
use instar_vhdx::header::{update_checksum, CHECKSUM_OFFSET};
use instar_vhdx::open::{open, OpenMode};
use instar_vhdx::Vhdx;
use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const MIB: u64 = 1 << 20;
/// In a default 64 MiB image: the log, BAT and metadata regions.
const LOG: u64 = MIB;
const BAT: u64 = 2 * MIB;
const MD: u64 = 3 * MIB;
const H1: u64 = 0x10000;
const H2: u64 = 0x20000;
const RT: u64 = 0x30000;
const PRESENT: u64 = 6;

fn qemu_img() -> Option<PathBuf> {
    let p = std::env::var_os("QEMU_IMG").map(PathBuf::from).unwrap_or("/usr/bin/qemu-img".into());
    if p.exists() {
        Some(p)
    } else {
        eprintln!("skipped: qemu-img is not installed at {}", p.display());
        None
    }
}

fn run(qemu: &Path, args: &[&str], dir: &Path) -> (i32, String, String) {
    let out = Command::new(qemu).args(args).current_dir(dir).output().expect("qemu-img runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn read(path: &Path, at: u64, len: usize) -> Vec<u8> {
    let mut b = vec![0u8; len];
    let f = std::fs::File::open(path).unwrap();
    let n = f.read_at(&mut b, at).unwrap_or(0);
    b[n..].fill(0);
    b
}

fn poke(path: &Path, at: u64, bytes: &[u8]) {
    OpenOptions::new().write(true).open(path).unwrap().write_all_at(bytes, at).unwrap();
}

fn poke64(path: &Path, at: u64, v: u64) {
    poke(path, at, &v.to_le_bytes());
}

fn poke32(path: &Path, at: u64, v: u32) {
    poke(path, at, &v.to_le_bytes());
}

fn truncate(path: &Path, len: u64) {
    OpenOptions::new().write(true).open(path).unwrap().set_len(len).unwrap();
}

/// Edits a checksummed block (a header or the region table) and stores a
/// correct checksum again.
fn edit_block(path: &Path, at: u64, len: usize, edit: impl FnOnce(&mut [u8])) {
    let mut b = read(path, at, len);
    edit(&mut b);
    update_checksum(&mut b, CHECKSUM_OFFSET);
    poke(path, at, &b);
}

fn edit_header(path: &Path, at: u64, edit: impl FnOnce(&mut [u8])) {
    edit_block(path, at, 4096, edit);
}

fn edit_rt(path: &Path, edit: impl FnOnce(&mut [u8])) {
    edit_block(path, RT, 65536, edit);
}

/// Writes a one-sector log entry (header and one zero descriptor, or what
/// `descs` gives) at the start of the log, and sets the log GUID in
/// header 2 so that it is current.
fn log_entry(path: &Path, descs: &[[u8; 32]], data_sectors: usize, bad_crc: bool) {
    let guid = [0x22u8; 16];
    edit_header(path, H2, |b| b[48..64].copy_from_slice(&guid));
    let mut s = vec![0u8; 4096 * (1 + data_sectors)];
    let len = s.len() as u32;
    s[0..4].copy_from_slice(b"loge");
    s[8..12].copy_from_slice(&len.to_le_bytes());
    s[16..24].copy_from_slice(&5u64.to_le_bytes());
    s[24..28].copy_from_slice(&(descs.len() as u32).to_le_bytes());
    s[32..48].copy_from_slice(&guid);
    s[48..56].copy_from_slice(&(8 * MIB).to_le_bytes());
    s[56..64].copy_from_slice(&(8 * MIB).to_le_bytes());
    for (i, d) in descs.iter().enumerate() {
        s[64 + 32 * i..96 + 32 * i].copy_from_slice(d);
    }
    update_checksum(&mut s, CHECKSUM_OFFSET);
    if bad_crc {
        s[4] ^= 1;
    }
    poke(path, LOG, &s);
}

fn descriptor(sig: &[u8; 4], length: u64, offset: u64, seq: u64) -> [u8; 32] {
    let mut d = [0u8; 32];
    d[0..4].copy_from_slice(sig);
    d[8..16].copy_from_slice(&length.to_le_bytes());
    d[16..24].copy_from_slice(&offset.to_le_bytes());
    d[24..32].copy_from_slice(&seq.to_le_bytes());
    d
}

/// The text qemu-img would print on stderr for instar's failed open.
fn failure_text(path: &str, mode: OpenMode) -> Option<String> {
    let f = open(path, mode).err()?;
    let mut s = String::new();
    for n in &f.notes {
        s.push_str(&format!("qemu-img: {n}\n"));
    }
    s.push_str(&format!("qemu-img: {}\n", f.error.into_error(path)));
    Some(s)
}

/// Compares `info` (JSON and human) and `check` (human and JSON).
fn compare(qemu: &Path, dir: &Path, name: &str, case: &str) {
    let path = dir.join(name);
    let p = path.to_str().unwrap();
    for json in [true, false] {
        let args: &[&str] = if json {
            &["info", "-f", "vhdx", "--output=json", p]
        } else {
            &["info", "-f", "vhdx", p]
        };
        let (code, stdout, stderr) = run(qemu, args, dir);
        match failure_text(p, OpenMode::Normal) {
            Some(text) => {
                assert_eq!(code, 1, "{case}: qemu-img info opened it: {stdout}");
                assert_eq!(text, stderr, "{case}: info failure differs");
            }
            None => {
                assert_eq!(code, 0, "{case}: qemu-img info failed: {stderr}");
                let info = Vhdx.info(p).unwrap();
                let ours = if json {
                    info.to_json(QemuDialect::NEWEST).to_qemu_pretty()
                } else {
                    info.to_human(QemuDialect::NEWEST)
                };
                assert_eq!(ours, stdout, "{case}: info differs (json={json})");
            }
        }
    }
    for json in [false, true] {
        let args: &[&str] = if json {
            &["check", "-f", "vhdx", "--output=json", p]
        } else {
            &["check", "-f", "vhdx", p]
        };
        let (code, stdout, stderr) = run(qemu, args, dir);
        match failure_text(p, OpenMode::Check) {
            Some(text) => {
                assert_eq!((code, stdout.as_str()), (1, ""), "{case}: qemu-img check opened it");
                assert_eq!(text, stderr, "{case}: check failure differs");
            }
            None => {
                let r = Vhdx.check(p).unwrap();
                let ours = if json { r.to_json().to_qemu_pretty() } else { r.to_human() };
                let messages = r.stderr_text("qemu-img");
                assert_eq!(code, r.exit_code(), "{case}: check exit code ({stderr})");
                assert_eq!(ours, stdout, "{case}: check output (json={json})");
                assert_eq!(messages, stderr, "{case}: check messages");
            }
        }
    }
}

type Damage = fn(&Path);

/// A case on its own image: a name, the image, and the damage.
type ImageCase = (&'static str, PathBuf, Box<dyn Fn(&Path)>);

/// The cases on a default 64 MiB dynamic image made by qemu-img.
const CASES: &[(&str, Damage)] = &[
    ("clean", |_| {}),
    // File identifier and headers.
    ("signature", |p| poke(p, 0, b"VHDX")),
    ("header 1 checksum", |p| poke(p, H1 + 100, &[1])),
    ("both header checksums", |p| {
        poke(p, H1 + 100, &[1]);
        poke(p, H2 + 100, &[1]);
    }),
    ("header 2 signature", |p| edit_header(p, H2, |b| b[0..4].copy_from_slice(b"HEAD"))),
    ("both header signatures", |p| {
        edit_header(p, H1, |b| b[0..4].copy_from_slice(b"HEAD"));
        edit_header(p, H2, |b| b[0..4].copy_from_slice(b"HEAD"));
    }),
    ("header version 2", |p| edit_header(p, H2, |b| b[66] = 2)),
    ("equal sequence numbers", |p| {
        let seq = read(p, H2 + 8, 8);
        edit_header(p, H1, |b| b[8..16].copy_from_slice(&seq));
    }),
    ("identical headers", |p| poke(p, H1, &read(p, H2, 4096))),
    ("log offset unaligned", |p| {
        edit_header(p, H2, |b| b[72..80].copy_from_slice(&0x18_0000u64.to_le_bytes()))
    }),
    ("log offset zero", |p| edit_header(p, H2, |b| b[72..80].fill(0))),
    ("log version 1", |p| edit_header(p, H2, |b| b[64] = 1)),
    ("log guid, empty log", |p| edit_header(p, H2, |b| b[48..64].fill(0x11))),
    ("log guid, odd length", |p| {
        edit_header(p, H2, |b| {
            b[48..64].fill(0x11);
            b[68..72].copy_from_slice(&1000u32.to_le_bytes());
        })
    }),
    ("log overlaps BAT", |p| {
        edit_header(p, H2, |b| b[68..72].copy_from_slice(&(2 * MIB as u32).to_le_bytes()))
    }),
    // Logs.
    ("log to replay", |p| log_entry(p, &[descriptor(b"zero", 4096, 5 * MIB, 5)], 0, false)),
    ("log with data sector", |p| log_entry(p, &[descriptor(b"desc", 0, 5 * MIB, 5)], 1, false)),
    ("log bad checksum", |p| log_entry(p, &[descriptor(b"zero", 4096, 5 * MIB, 5)], 0, true)),
    ("log bad descriptor", |p| log_entry(p, &[descriptor(b"junk", 0, 0, 5)], 0, false)),
    ("log descriptor sequence", |p| {
        log_entry(p, &[descriptor(b"zero", 4096, 5 * MIB, 6)], 0, false)
    }),
    // Region table.
    ("region table checksum", |p| poke(p, RT + 100, &[1])),
    ("region table copy checksum", |p| poke(p, RT + 0x10000 + 100, &[1])),
    ("region table signature", |p| edit_rt(p, |b| b[0..4].copy_from_slice(b"REGI"))),
    ("region table 2048 entries", |p| {
        edit_rt(p, |b| b[8..12].copy_from_slice(&2048u32.to_le_bytes()))
    }),
    ("region table 1 entry", |p| edit_rt(p, |b| b[8] = 1)),
    ("regions overlap", |p| edit_rt(p, |b| b[64..72].copy_from_slice(&0x28_0000u64.to_le_bytes()))),
    ("BAT region on the log", |p| edit_rt(p, |b| b[32..40].copy_from_slice(&LOG.to_le_bytes()))),
    ("duplicate BAT region", |p| {
        edit_rt(p, |b| {
            let bat_guid: [u8; 16] = b[16..32].try_into().unwrap();
            b[48..64].copy_from_slice(&bat_guid);
            b[64..72].copy_from_slice(&(4 * MIB).to_le_bytes());
        })
    }),
    ("unknown required region", |p| {
        edit_rt(p, |b| {
            b[8] = 3;
            b[80..96].fill(0x44);
            b[96..104].copy_from_slice(&(7 * MIB).to_le_bytes());
            b[104..108].copy_from_slice(&(MIB as u32).to_le_bytes());
            b[108] = 1;
        })
    }),
    ("unknown optional region", |p| {
        edit_rt(p, |b| {
            b[8] = 3;
            b[80..96].fill(0x44);
            b[96..104].copy_from_slice(&(7 * MIB).to_le_bytes());
            b[104..108].copy_from_slice(&(MIB as u32).to_le_bytes());
        })
    }),
    ("BAT region too small", |p| edit_rt(p, |b| b[40..44].copy_from_slice(&64u32.to_le_bytes()))),
    ("BAT region largest read", |p| {
        edit_rt(p, |b| {
            b[32..40].copy_from_slice(&(32 * MIB).to_le_bytes());
            b[40..44].copy_from_slice(&0x7ff0_0000u32.to_le_bytes());
        })
    }),
    ("BAT region beyond one read", |p| {
        edit_rt(p, |b| {
            b[32..40].copy_from_slice(&(32 * MIB).to_le_bytes());
            b[40..44].copy_from_slice(&0x8000_0000u32.to_le_bytes());
        })
    }),
    ("BAT region past 2^63", |p| {
        edit_rt(p, |b| b[32..40].copy_from_slice(&(1u64 << 63).to_le_bytes()))
    }),
    ("metadata past end of file", |p| {
        edit_rt(p, |b| b[64..72].copy_from_slice(&(256 * MIB).to_le_bytes()))
    }),
    ("metadata past 2^63", |p| {
        edit_rt(p, |b| b[64..72].copy_from_slice(&(1u64 << 63).to_le_bytes()))
    }),
    // Metadata.
    ("metadata signature", |p| poke(p, MD, b"METADATA")),
    ("metadata 2047 entries", |p| poke(p, MD + 10, &2047u16.to_le_bytes())),
    ("metadata 2048 entries", |p| poke(p, MD + 10, &2048u16.to_le_bytes())),
    ("metadata item missing", |p| poke(p, MD + 10, &4u16.to_le_bytes())),
    ("metadata item twice", |p| poke(p, MD + 64, &read(p, MD + 32, 16))),
    ("unknown required item", |p| {
        poke(p, MD + 10, &6u16.to_le_bytes());
        let mut e = [0x55u8; 32];
        e[16..32].copy_from_slice(&[0x30, 0, 1, 0, 4, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0]);
        poke(p, MD + 32 * 6, &e);
    }),
    ("unknown optional item", |p| {
        poke(p, MD + 10, &6u16.to_le_bytes());
        let mut e = [0x55u8; 32];
        e[16..32].copy_from_slice(&[0x30, 0, 1, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        poke(p, MD + 32 * 6, &e);
    }),
    ("parent locator", |p| {
        poke(p, MD + 10, &6u16.to_le_bytes());
        let id = instar_vhdx::guid::PARENT_LOCATOR.0;
        poke(p, MD + 32 * 6, &id);
        poke(p, MD + 32 * 6 + 16, &[0x30, 0, 1, 0, 4, 0, 0, 0]);
    }),
    ("has parent", |p| poke32(p, MD + 0x10004, 2)),
    ("block size 512K", |p| poke32(p, MD + 0x10000, 0x8_0000)),
    ("block size 512M", |p| poke32(p, MD + 0x10000, 0x2000_0000)),
    ("block size 3M", |p| poke32(p, MD + 0x10000, 3 << 20)),
    ("logical sector 4096", |p| poke32(p, MD + 0x10020, 4096)),
    ("logical sector 1024", |p| poke32(p, MD + 0x10020, 1024)),
    ("physical sector 1000", |p| poke32(p, MD + 0x10024, 1000)),
    ("disk size 1 PiB", |p| poke64(p, MD + 0x10008, 1 << 50)),
    ("disk size 1000", |p| poke64(p, MD + 0x10008, 1000)),
    ("disk size 0", |p| poke64(p, MD + 0x10008, 0)),
    ("item offset far", |p| poke32(p, MD + 64 + 16, 0xffff_fff0)),
    // BAT entries.
    ("BAT entry past end", |p| poke64(p, BAT, (1 << 40) | PRESENT)),
    ("BAT entry overflow", |p| poke64(p, BAT, 0xffff_ffff_fff0_0000 | PRESENT)),
    ("BAT entry on the log", |p| poke64(p, BAT, LOG | PRESENT)),
    ("BAT entry on the BAT", |p| poke64(p, BAT + 8, BAT | PRESENT)),
    ("BAT entry on the headers", |p| poke64(p, BAT + 8, PRESENT)),
    ("BAT entry on metadata", |p| poke64(p, BAT + 8, MD | PRESENT)),
    ("BAT entry partly missing", |p| poke64(p, BAT + 8, (7 * MIB) | PRESENT)),
    ("BAT entries twice the same", |p| {
        truncate(p, 24 * MIB);
        poke64(p, BAT, (8 * MIB) | PRESENT);
        poke64(p, BAT + 8, (8 * MIB) | PRESENT);
    }),
    ("BAT entry state 7", |p| poke64(p, BAT, (8 * MIB) | 7)),
    ("BAT entry low bits", |p| {
        truncate(p, 32 * MIB);
        poke64(p, BAT, (8 * MIB) | 0x1230 | PRESENT);
    }),
    ("many BAT entries past end", |p| {
        for i in 0..8 {
            poke64(p, BAT + 8 * i, ((i + 1) << 28) | PRESENT);
        }
    }),
    // The file.
    ("empty file", |p| truncate(p, 0)),
    ("five bytes", |p| truncate(p, 5)),
    ("cut in header 2", |p| truncate(p, 70_000)),
    ("cut at metadata", |p| truncate(p, MD)),
    ("cut in metadata items", |p| truncate(p, MD + 0x10000 + 20)),
    ("cut after metadata", |p| truncate(p, MD + 0x10000 + 100)),
    ("odd length", |p| truncate(p, 8 * MIB + 100)),
];

#[test]
fn damaged_dynamic_images() {
    let Some(qemu) = qemu_img() else { return };
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base.vhdx");
    let (code, _, err) =
        run(&qemu, &["create", "-q", "-f", "vhdx", "base.vhdx", "64M"], dir.path());
    assert_eq!(code, 0, "{err}");
    for (case, damage) in CASES {
        let img = dir.path().join("img.vhdx");
        std::fs::copy(&base, &img).unwrap();
        damage(&img);
        compare(&qemu, dir.path(), "img.vhdx", case);
    }
}

/// Fixed images with fully present blocks, and a large image with sector
/// bitmap entries in its BAT.
#[test]
fn damaged_fixed_and_large_images() {
    let Some(qemu) = qemu_img() else { return };
    let dir = tempfile::tempdir().unwrap();
    let make = |name: &str, opts: &str, size: &str| {
        let (code, _, err) =
            run(&qemu, &["create", "-q", "-f", "vhdx", "-o", opts, name, size], dir.path());
        assert_eq!(code, 0, "{err}");
        dir.path().join(name)
    };
    let fixed = "subformat=fixed,block_state_zero=off,block_size=1M";
    let cases: Vec<ImageCase> = vec![
        ("fixed clean", make("a.vhdx", fixed, "16M"), Box::new(|_| {})),
        (
            "fixed cut short",
            make("b.vhdx", fixed, "16M"),
            Box::new(|p| truncate(p, 18 * MIB + 100)),
        ),
        (
            "fixed last block partly missing",
            make("c.vhdx", "subformat=fixed,block_state_zero=off", "9M"),
            Box::new(|p| truncate(p, 8 * MIB + 0x88_0000)),
        ),
        (
            "fixed block on metadata",
            make("d.vhdx", fixed, "16M"),
            Box::new(|p| poke64(p, BAT + 24, MD | PRESENT)),
        ),
        ("large clean", make("e.vhdx", "block_size=1M", "8G"), Box::new(|_| {})),
        (
            "bitmap entry on the log",
            make("f.vhdx", "block_size=1M", "8G"),
            Box::new(|p| poke64(p, BAT + 8 * 4096, LOG | PRESENT)),
        ),
        // In a fully present table qemu takes every 4097th present entry
        // as a sector bitmap and does not check it.
        ("fixed 8G clean", make("g.vhdx", fixed, "8G"), Box::new(|_| {})),
        (
            "present entry counted as bitmap",
            make("h.vhdx", fixed, "8G"),
            Box::new(|p| poke64(p, BAT + 8 * 4097, MD | PRESENT)),
        ),
        (
            "present entry before the bitmap",
            make("i.vhdx", fixed, "8G"),
            Box::new(|p| poke64(p, BAT + 8 * 4095, MD | PRESENT)),
        ),
    ];
    for (case, path, damage) in cases {
        damage(&path);
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        compare(&qemu, dir.path(), &name, case);
    }
}
