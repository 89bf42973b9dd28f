//! Guessing a file's format from its first bytes, as qemu's
//! `find_image_format` and `bdrv_probe_all` (block.c) do.
//!
//! qemu reads the first 512 bytes of the file (`BLOCK_PROBE_BUF_SIZE`; a
//! shorter file reads as if padded with zeros), hands them and the file
//! name to the probe of every driver that has one, and takes the highest
//! score; on a tie the driver met first in its driver list wins. An empty
//! file is raw without probing. instar scores every format qemu probes, the
//! ones it implements and the ones it only recognises, so a file is never
//! read as raw when qemu would read it as something else.
//!
//! The rules and scores, each from the probe function of qemu's driver
//! (read in qemu 7.2's source, checked against qemu-img 7.2.22 and 10.0.2):
//!
//! | format | where | rule | score |
//! |---|---|---|---|
//! | raw | `raw-format.c raw_probe` | anything | 1 |
//! | qcow2 | `qcow2.c qcow2_probe` | `QFI\xfb`, big-endian version >= 2 | 100 |
//! | vmdk | `vmdk.c vmdk_probe` | `KDMV`/`COWD`, or a descriptor whose first line is `version=1..3` | 100 |
//! | vpc | `vpc.c vpc_probe` | `conectix` | 100 |
//! | vhdx | `vhdx.c vhdx_probe` | `vhdxfile` | 100 |
//! | bochs | `bochs.c bochs_probe` | NUL-terminated `Bochs Virtual HD Image` at 0, `Redolog` at 32, `Growing` at 48, little-endian version 0x20000 or 0x10000 at 64 | 100 |
//! | cloop | `cloop.c cloop_probe` | the 84-byte V2.0 shell header (`#!/bin/sh\n#V2.0 Format\nmodprobe cloop ...`) | 2 |
//! | dmg | `dmg.c dmg_probe` | a file name longer than 4 bytes ending in `.dmg` (case matters; the content is not looked at) | 2 |
//! | luks | `crypto.c block_crypto_probe_luks`, `crypto/block-luks.c qcrypto_block_luks_has_format` | `LUKS\xba\xbe`, big-endian 16-bit version 1 at 6 (`instar_luks::is_luks`) | 100 |
//! | parallels | `parallels.c parallels_probe` | `WithoutFreeSpace` or `WithouFreSpacExt`, little-endian version 2 at 16 | 100 |
//! | qcow | `qcow.c qcow_probe` | `QFI\xfb`, big-endian version 1 | 100 |
//! | qed | `qed.c bdrv_qed_probe` | `QED\0` | 100 |
//! | vdi | `vdi.c vdi_probe` | little-endian 0xbeda107f at 0x40 | 100 |
//!
//! The size checks in some of these probes never fail: qemu always passes
//! the whole 512-byte buffer. Ties are possible only between vdi (its magic
//! is at 0x40) and a format whose magic is at 0 (qcow2, vmdk, vpc, vhdx,
//! luks, parallels, qcow, qed), and between cloop and dmg (a cloop file
//! named `.dmg`). Who wins depends on the order qemu registered its
//! drivers, which changed between releases: see [`ProbeOrder`].

use crate::registry::{find_format, Driver};
use crate::unsupported;
use instar_core::bytes::{be32, le32};
use instar_core::dialect::{PROBE_VDI_BEFORE_QCOW2, PROBE_VHDX_VMDK_VPC_BEFORE_VDI};
use instar_core::{ImageFile, QemuDialect};

/// How many bytes of the file qemu hands to the probes (`BLOCK_PROBE_BUF_SIZE`).
pub const PROBE_BUF_SIZE: usize = 512;

/// The score of a probe that is sure.
pub const CERTAIN: u32 = 100;

/// The score of cloop's and dmg's probes, which beat only raw.
pub const WEAK: u32 = 2;

/// The order in which a qemu release asks its drivers, which decides ties.
/// Only the relative order of drivers that can tie matters; the lists
/// were measured with files carrying two magics at once (vdi's at 0x40
/// and another at 0) and a cloop file named `x.dmg`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeOrder {
    /// qemu-img 5.2: qcow, qcow2 and vmdk beat vdi; vdi beats qed, vhdx,
    /// vpc and luks; dmg beats cloop. Debian's 5.2 build has no parallels
    /// driver (`instar_core::dialect::PARALLELS_DRIVER`), so a parallels
    /// image probes as raw; the releases from 6.2 (Debian's first with
    /// the driver) to 7.1 are not measured and take this order too.
    Qemu5_2,
    /// qemu-img 7.2: vdi beats qcow, qcow2, luks, vhdx, vmdk and vpc, and
    /// loses to parallels and qed; dmg beats cloop.
    Qemu7_2,
    /// qemu-img 8.1 and later (measured: 10.0): vdi beats qcow, qcow2 and
    /// luks, and loses to parallels, qed, vhdx, vmdk and vpc; dmg beats
    /// cloop.
    Qemu8_1,
}

impl ProbeOrder {
    /// The order of the default dialect.
    pub const NEWEST: ProbeOrder = ProbeOrder::Qemu8_1;

    /// The order qemu-img of `dialect` asks its drivers in.
    pub fn of(dialect: QemuDialect) -> ProbeOrder {
        if dialect.since(PROBE_VHDX_VMDK_VPC_BEFORE_VDI) {
            ProbeOrder::Qemu8_1
        } else if dialect.since(PROBE_VDI_BEFORE_QCOW2) {
            ProbeOrder::Qemu7_2
        } else {
            ProbeOrder::Qemu5_2
        }
    }

    /// Every format qemu probes, in the order this release asks them.
    pub fn formats(self) -> &'static [&'static str] {
        match self {
            ProbeOrder::Qemu5_2 => &[
                "qcow", "qcow2", "vmdk", "vdi", "qed", "vhdx", "vpc", "luks", "bochs", "dmg",
                "cloop", "raw",
            ],
            ProbeOrder::Qemu7_2 => &[
                "parallels",
                "qed",
                "vdi",
                "qcow",
                "qcow2",
                "luks",
                "vhdx",
                "vmdk",
                "vpc",
                "bochs",
                "dmg",
                "cloop",
                "raw",
            ],
            ProbeOrder::Qemu8_1 => &[
                "parallels",
                "qed",
                "vhdx",
                "vmdk",
                "vpc",
                "vdi",
                "qcow",
                "qcow2",
                "luks",
                "bochs",
                "dmg",
                "cloop",
                "raw",
            ],
        }
    }
}

/// What probing a file found (kept under its old name for callers).
pub type Probed = Driver;

/// The driver qemu picks for `file`, reading its first bytes. An empty
/// file is raw, as in qemu.
pub fn probe_file(file: &ImageFile, order: ProbeOrder) -> std::io::Result<Driver> {
    if file.is_empty() {
        return Ok(Driver::Instar(crate::registry::FORMATS[0]));
    }
    let head = file.read_vec(0, PROBE_BUF_SIZE as u64)?;
    Ok(probe_bytes(&head, file.name(), order))
}

/// The name of the format qemu's probe finds in `file` (`raw` when nothing
/// else matches), for a create that must know another file's format.
pub fn probe_name(file: &ImageFile) -> &'static str {
    probe_file(file, ProbeOrder::NEWEST).map_or("raw", |d| d.name())
}

/// The driver qemu's release `order` picks for a file named `filename`
/// that starts with `head` (padded with zeros to the probe buffer). An
/// empty `head` is an empty file: raw.
pub fn probe_bytes(head: &[u8], filename: &str, order: ProbeOrder) -> Driver {
    let raw = Driver::Instar(crate::registry::FORMATS[0]);
    if head.is_empty() {
        return raw;
    }
    let mut buf = [0u8; PROBE_BUF_SIZE];
    let n = head.len().min(PROBE_BUF_SIZE);
    buf[..n].copy_from_slice(&head[..n]);
    let mut best = raw;
    let mut best_score = 0;
    for name in order.formats() {
        // Every name of the order is one of instar's formats or in qemu's
        // driver table (a unit test holds the two lists together).
        let (driver, score) = match (find_format(name), unsupported::driver(name)) {
            (Some(f), _) => (Driver::Instar(f), f.probe(&buf, filename)),
            (None, Some(d)) => (Driver::QemuOnly(d), score_qemu_only(name, &buf, filename)),
            (None, None) => continue,
        };
        if score > best_score {
            best = driver;
            best_score = score;
        }
    }
    best
}

/// The score qemu's probe of a format instar does not implement gives
/// `buf` (the 512-byte probe buffer) of a file named `filename`.
pub fn score_qemu_only(name: &str, buf: &[u8], filename: &str) -> u32 {
    let hit = match name {
        "bochs" => is_bochs(buf),
        "cloop" => return if is_cloop(buf) { WEAK } else { 0 },
        "dmg" => return if is_dmg_name(filename) { WEAK } else { 0 },
        "parallels" => is_parallels(buf),
        "qcow" => is_qcow(buf),
        "qed" => is_qed(buf),
        "vdi" => is_vdi(buf),
        _ => false,
    };
    if hit {
        CERTAIN
    } else {
        0
    }
}

/// Whether `buf` holds `bytes` at `offset`.
fn has(buf: &[u8], offset: usize, bytes: &[u8]) -> bool {
    buf.get(offset..offset + bytes.len()) == Some(bytes)
}

/// Whether `buf` holds the C string `text` (with its terminating NUL) at
/// `offset`: what `strcmp` on a fixed-size header field tests.
fn has_cstr(buf: &[u8], offset: usize, text: &str) -> bool {
    has(buf, offset, text.as_bytes()) && buf.get(offset + text.len()) == Some(&0)
}

/// The magic, type and subtype strings of a Bochs growing redolog.
pub const BOCHS_MAGIC: &str = "Bochs Virtual HD Image";
/// The type field of a Bochs image.
pub const BOCHS_TYPE: &str = "Redolog";
/// The subtype field of the only Bochs image qemu reads.
pub const BOCHS_SUBTYPE: &str = "Growing";
/// The Bochs header versions qemu reads (2 and 1).
pub const BOCHS_VERSIONS: [u32; 2] = [0x0002_0000, 0x0001_0000];

/// qemu's bochs probe (and the first check of its open).
pub fn is_bochs(buf: &[u8]) -> bool {
    has_cstr(buf, 0, BOCHS_MAGIC)
        && has_cstr(buf, 32, BOCHS_TYPE)
        && has_cstr(buf, 48, BOCHS_SUBTYPE)
        && BOCHS_VERSIONS.contains(&le32(buf, 64))
}

/// The first bytes of a cloop V2.0 image: a shell script that mounts it.
pub const CLOOP_MAGIC: &[u8] =
    b"#!/bin/sh\n#V2.0 Format\nmodprobe cloop file=$0 && mount -r -t iso9660 /dev/cloop $1\n";

/// qemu's cloop probe.
pub fn is_cloop(buf: &[u8]) -> bool {
    has(buf, 0, CLOOP_MAGIC)
}

/// qemu's dmg probe: the name alone (more than 4 bytes, ending `.dmg`).
pub fn is_dmg_name(filename: &str) -> bool {
    filename.len() > 4 && filename.ends_with(".dmg")
}

/// The two Parallels magics (the second marks images over 4 GiB sectors).
pub const PARALLELS_MAGICS: [&[u8]; 2] = [b"WithoutFreeSpace", b"WithouFreSpacExt"];

/// qemu's parallels probe: a magic and version 2.
pub fn is_parallels(buf: &[u8]) -> bool {
    PARALLELS_MAGICS.iter().any(|m| has(buf, 0, m)) && le32(buf, 16) == 2
}

/// The magic qcow and qcow2 share.
pub const QCOW_MAGIC: &[u8] = b"QFI\xfb";

/// qemu's qcow probe: the magic and version 1 (2 and up are qcow2).
pub fn is_qcow(buf: &[u8]) -> bool {
    has(buf, 0, QCOW_MAGIC) && be32(buf, 4) == 1
}

/// The QED magic.
pub const QED_MAGIC: &[u8] = b"QED\0";

/// qemu's qed probe.
pub fn is_qed(buf: &[u8]) -> bool {
    has(buf, 0, QED_MAGIC)
}

/// The VDI signature, little-endian at 0x40.
pub const VDI_SIGNATURE: u32 = 0xbeda_107f;

/// qemu's vdi probe.
pub fn is_vdi(buf: &[u8]) -> bool {
    le32(buf, 0x40) == VDI_SIGNATURE
}

#[cfg(test)]
mod tests {
    use super::*;
    use instar_core::QemuVersion;

    fn name(head: &[u8], filename: &str, order: ProbeOrder) -> &'static str {
        probe_bytes(head, filename, order).name()
    }

    fn newest(head: &[u8], filename: &str) -> &'static str {
        name(head, filename, ProbeOrder::NEWEST)
    }

    /// `head` with the vdi signature added at 0x40.
    fn with_vdi(head: &[u8]) -> Vec<u8> {
        let mut b = head.to_vec();
        b.resize(512, 0);
        b[0x40..0x44].copy_from_slice(&VDI_SIGNATURE.to_le_bytes());
        b
    }

    fn bochs(version: u32, subtype: &str) -> Vec<u8> {
        let mut b = vec![0u8; 512];
        b[..BOCHS_MAGIC.len()].copy_from_slice(BOCHS_MAGIC.as_bytes());
        b[32..32 + BOCHS_TYPE.len()].copy_from_slice(BOCHS_TYPE.as_bytes());
        b[48..48 + subtype.len()].copy_from_slice(subtype.as_bytes());
        b[64..68].copy_from_slice(&version.to_le_bytes());
        b
    }

    #[test]
    fn unknown_bytes_and_empty_files_are_raw() {
        assert_eq!(newest(b"hello", "x"), "raw");
        assert_eq!(newest(b"", "x"), "raw");
        // An empty file is raw even when named .dmg: qemu does not probe it.
        assert_eq!(newest(b"", "x.dmg"), "raw");
    }

    #[test]
    fn qcow_and_qcow2_split_by_version() {
        assert_eq!(newest(b"QFI\xfb\0\0\0\x01", "x"), "qcow");
        assert_eq!(newest(b"QFI\xfb\0\0\0\x02", "x"), "qcow2");
        assert_eq!(newest(b"QFI\xfb\0\0\0\x03", "x"), "qcow2");
        assert_eq!(newest(b"QFI\xfb\0\0\0\0", "x"), "raw");
        assert_eq!(newest(b"QFI", "x"), "raw");
    }

    #[test]
    fn bochs_needs_every_field() {
        assert_eq!(newest(&bochs(0x20000, "Growing"), "x"), "bochs");
        assert_eq!(newest(&bochs(0x10000, "Growing"), "x"), "bochs");
        assert_eq!(newest(&bochs(0x30000, "Growing"), "x"), "raw");
        assert_eq!(newest(&bochs(0x20000, "Undoable"), "x"), "raw");
        // strcmp: the field must end right after the text.
        let mut longer = bochs(0x20000, "Growing");
        longer[55] = b'X';
        assert_eq!(newest(&longer, "x"), "raw");
    }

    #[test]
    fn cloop_needs_the_whole_script_header() {
        assert_eq!(newest(CLOOP_MAGIC, "x"), "cloop");
        assert_eq!(newest(&CLOOP_MAGIC[..40], "x"), "raw");
    }

    #[test]
    fn dmg_goes_by_the_name_only() {
        assert_eq!(newest(b"hello", "x.dmg"), "dmg");
        assert_eq!(newest(b"hello", "dir/x.dmg"), "dmg");
        assert_eq!(newest(b"hello", ".dmg"), "raw");
        assert_eq!(newest(b"hello", "x.DMG"), "raw");
        // A real format beats the name.
        assert_eq!(newest(b"QFI\xfb\0\0\0\x03", "x.dmg"), "qcow2");
        assert_eq!(newest(&with_vdi(b""), "x.dmg"), "vdi");
    }

    #[test]
    fn luks_parallels_qed_and_vdi() {
        assert_eq!(newest(b"LUKS\xba\xbe\0\x01", "x"), "luks");
        assert_eq!(newest(b"LUKS\xba\xbe\0\x02", "x"), "raw");
        assert_eq!(newest(b"WithoutFreeSpace\x02\0\0\0", "x"), "parallels");
        assert_eq!(newest(b"WithouFreSpacExt\x02\0\0\0", "x"), "parallels");
        assert_eq!(newest(b"WithoutFreeSpace\x01\0\0\0", "x"), "raw");
        assert_eq!(newest(b"QED\0", "x"), "qed");
        assert_eq!(newest(&with_vdi(b""), "x"), "vdi");
    }

    #[test]
    fn ties_follow_each_release_s_driver_order() {
        let (v8, v7, v5) = (ProbeOrder::Qemu8_1, ProbeOrder::Qemu7_2, ProbeOrder::Qemu5_2);
        // The head at offset 0, and who wins in 8.1+, 7.2 and 5.2 (measured
        // with qemu-img 10.0.2, 7.2.18 and 5.2.0).
        let cases: &[(&[u8], [&str; 3])] = &[
            (b"QFI\xfb\0\0\0\x03", ["vdi", "vdi", "qcow2"]),
            (b"QFI\xfb\0\0\0\x01", ["vdi", "vdi", "qcow"]),
            (b"LUKS\xba\xbe\0\x01", ["vdi", "vdi", "vdi"]),
            (b"WithoutFreeSpace\x02\0\0\0", ["parallels", "parallels", "vdi"]),
            (b"QED\0", ["qed", "qed", "vdi"]),
            (b"KDMV\x01\0\0\0", ["vmdk", "vdi", "vmdk"]),
            (b"version=1\n", ["vmdk", "vdi", "vmdk"]),
            (b"conectix", ["vpc", "vdi", "vdi"]),
            (b"vhdxfile", ["vhdx", "vdi", "vdi"]),
        ];
        for (head, winners) in cases {
            for (order, winner) in [v8, v7, v5].into_iter().zip(winners) {
                assert_eq!(name(&with_vdi(head), "x", order), *winner, "{head:?} in {order:?}");
            }
        }
        for order in [v8, v7, v5] {
            assert_eq!(name(CLOOP_MAGIC, "x.dmg", order), "dmg");
        }
        // Debian's 5.2 has no parallels driver: its images are raw there
        // (measured on qemu's sample image parallels-v2).
        assert_eq!(name(b"WithoutFreeSpace\x02\0\0\0", "x", v5), "raw");
        assert_eq!(name(b"WithoutFreeSpace\x02\0\0\0", "x", v7), "parallels");
    }

    #[test]
    fn each_dialect_takes_the_order_of_its_range() {
        let of = |major, minor| ProbeOrder::of(QemuDialect::new(QemuVersion::new(major, minor, 0)));
        assert_eq!(of(5, 2), ProbeOrder::Qemu5_2);
        assert_eq!(of(7, 1), ProbeOrder::Qemu5_2);
        assert_eq!(of(7, 2), ProbeOrder::Qemu7_2);
        assert_eq!(of(8, 0), ProbeOrder::Qemu7_2);
        assert_eq!(of(8, 1), ProbeOrder::Qemu8_1);
        assert_eq!(of(12, 0), ProbeOrder::Qemu8_1);
        assert_eq!(ProbeOrder::of(QemuDialect::DEFAULT), ProbeOrder::NEWEST);
    }

    #[test]
    fn every_order_lists_every_probing_format_once() {
        for order in [ProbeOrder::Qemu5_2, ProbeOrder::Qemu7_2, ProbeOrder::Qemu8_1] {
            let mut names = order.formats().to_vec();
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), order.formats().len());
            // 5.2 lacks parallels.
            assert_eq!(names.len(), if order == ProbeOrder::Qemu5_2 { 12 } else { 13 });
        }
    }
}
