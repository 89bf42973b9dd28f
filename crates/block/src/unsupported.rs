//! qemu's block drivers, the ones instar implements and the ones it does
//! not, and what instar says about the latter.
//!
//! [`QEMU_DRIVERS`] is every driver `qemu-img --help` lists under
//! `Supported formats:` (the same 42 in qemu-img 7.2.22 and 10.0.2). For
//! each: what kind of driver it is, whether `qemu-img create` can make it,
//! whether Debian builds it as a loadable module, and its probe score.
//!
//! What instar prints for a driver it does not implement:
//!
//! - `create -f D` (and `-o help`) when qemu cannot create D either:
//!   qemu-img's own `Format driver 'D' does not support image creation`.
//! - `create -f D` when qemu can: instar's refusal by name
//!   ([`not_supported`]), a documented deviation.
//! - `info`/`check` of an image of format D (named with `-f` or probed):
//!   the error qemu's driver gives when instar can know it from the
//!   header alone ([`open_error`]: the file is not a D image at all, or a
//!   header field qemu rejects before reading anything else), else the
//!   refusal by name. qemu-img would read the image; instar says plainly
//!   that it does not, rather than reading it as raw.
//! - `-f D` naming a protocol or filter: the refusal by name.

use crate::probe;
use instar_core::bytes::{be32, be64, le32, le64};
use instar_core::dialect::{
    Release, COPY_BEFORE_WRITE_FILTER, PARALLELS_DRIVER, PREALLOCATE_FILTER, SNAPSHOT_ACCESS_FILTER,
};
use instar_core::{Error, ImageFile, QemuDialect};

/// What sort of driver a qemu driver is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An image format (qemu's `is_format`): reads an image from a file.
    Format,
    /// A protocol (qemu's `protocol_name`): where bytes come from.
    Protocol,
    /// A driver layered over other nodes (qemu's filters, quorum,
    /// snapshot-access): no image of its own.
    Filter,
}

/// One of qemu's block drivers.
#[derive(Debug)]
pub struct QemuDriver {
    /// The name `-f` takes.
    pub name: &'static str,
    /// Format, protocol or filter.
    pub kind: Kind,
    /// Whether qemu-img can create it (the driver has create options);
    /// qemu refuses the others with `Format driver '<name>' does not
    /// support image creation`.
    pub creates: bool,
    /// The Debian module that holds it, when it is not built in (its
    /// messages then depend on whether `qemu-block-extra` is installed).
    pub module: Option<&'static str>,
    /// The score of its probe when the probe matches (see
    /// [`crate::probe`]), `None` for drivers qemu never probes.
    pub probe: Option<u32>,
}

const fn d(
    name: &'static str,
    kind: Kind,
    creates: bool,
    module: Option<&'static str>,
    probe: Option<u32>,
) -> QemuDriver {
    QemuDriver { name, kind, creates, module, probe }
}

use Kind::{Filter, Format as Fmt, Protocol};
const C: bool = true;
const NO: bool = false;
const CERTAIN: Option<u32> = Some(probe::CERTAIN);
const WEAK: Option<u32> = Some(probe::WEAK);

/// Every driver of qemu-img 7.2.22 and 10.0.2 (`qemu-img --help`), in the
/// order it lists them.
pub static QEMU_DRIVERS: &[QemuDriver] = &[
    d("blkdebug", Filter, NO, None, None),
    d("blklogwrites", Filter, NO, None, None),
    d("blkverify", Filter, NO, None, None),
    d("bochs", Fmt, NO, None, CERTAIN),
    d("cloop", Fmt, NO, None, WEAK),
    d("compress", Filter, NO, None, None),
    d("copy-before-write", Filter, NO, None, None),
    d("copy-on-read", Filter, NO, None, None),
    d("dmg", Fmt, NO, None, WEAK),
    d("file", Protocol, C, None, None),
    d("ftp", Protocol, NO, Some("curl"), None),
    d("ftps", Protocol, NO, Some("curl"), None),
    d("gluster", Protocol, C, Some("gluster"), None),
    d("host_cdrom", Protocol, C, None, None),
    d("host_device", Protocol, C, None, None),
    d("http", Protocol, NO, Some("curl"), None),
    d("https", Protocol, NO, Some("curl"), None),
    d("iscsi", Protocol, C, Some("iscsi"), None),
    d("iser", Protocol, C, Some("iscsi"), None),
    d("luks", Fmt, C, None, CERTAIN),
    d("nbd", Protocol, C, None, None),
    d("nfs", Protocol, C, Some("nfs"), None),
    d("null-aio", Protocol, NO, None, None),
    d("null-co", Protocol, NO, None, None),
    d("nvme", Protocol, C, None, None),
    d("parallels", Fmt, C, None, CERTAIN),
    d("preallocate", Filter, NO, None, None),
    d("qcow", Fmt, C, None, CERTAIN),
    d("qcow2", Fmt, C, None, CERTAIN),
    d("qed", Fmt, C, None, CERTAIN),
    d("quorum", Filter, NO, None, None),
    d("raw", Fmt, C, None, Some(1)),
    d("rbd", Protocol, C, Some("rbd"), None),
    d("replication", Filter, NO, None, None),
    d("snapshot-access", Filter, NO, None, None),
    d("ssh", Protocol, C, Some("ssh"), None),
    d("throttle", Filter, NO, None, None),
    d("vdi", Fmt, C, None, CERTAIN),
    d("vhdx", Fmt, C, None, CERTAIN),
    d("vmdk", Fmt, C, None, CERTAIN),
    d("vpc", Fmt, C, None, CERTAIN),
    d("vvfat", Protocol, NO, None, None),
];

/// The driver qemu-img calls `name`.
pub fn driver(name: &str) -> Option<&'static QemuDriver> {
    QEMU_DRIVERS.iter().find(|d| d.name == name)
}

/// Drivers of [`QEMU_DRIVERS`] that older qemu-img builds lack, with the
/// first release whose (Debian) build has them; every other driver is in
/// every release instar speaks for.
const FIRST_BUILT: &[(&str, Release)] = &[
    ("copy-before-write", COPY_BEFORE_WRITE_FILTER),
    ("parallels", PARALLELS_DRIVER),
    ("preallocate", PREALLOCATE_FILTER),
    ("snapshot-access", SNAPSHOT_ACCESS_FILTER),
];

/// The driver called `name` in qemu-img of `dialect`: `None` when that
/// build has no such driver (qemu then says `Unknown driver`).
pub fn driver_in(name: &str, dialect: QemuDialect) -> Option<&'static QemuDriver> {
    let built = FIRST_BUILT.iter().find(|(n, _)| *n == name).is_none_or(|(_, r)| dialect.since(*r));
    driver(name).filter(|_| built)
}

/// The message for a driver instar does not implement.
pub fn not_supported(fmt: &str) -> String {
    format!(
        "Format '{fmt}' is not supported by instar (it supports raw, qcow2, vmdk, vpc and vhdx)"
    )
}

/// qemu's message for `create -f <fmt>` when the driver cannot create
/// images (block.c `bdrv_img_create`, qemu-img.c `print_block_option_help`).
pub fn cannot_create(fmt: &str) -> String {
    format!("Format driver '{fmt}' does not support image creation")
}

/// How much of the head of a file the header checks read: the largest
/// header they look into.
const HEAD_LEN: usize = 1024;

/// What opening `path` with qemu's driver `d` reports: qemu's own error
/// when instar can know it from the header ([`header_error`]), else
/// instar's refusal by name. Either way the image is not read.
pub fn open_error(d: &QemuDriver, file: &ImageFile) -> Error {
    let refusal = || Error::invalid(not_supported(d.name));
    if d.kind != Kind::Format {
        return refusal();
    }
    let read = || -> std::io::Result<(Vec<u8>, Vec<u8>)> {
        Ok((file.read_vec(0, HEAD_LEN as u64)?, dmg_trailer_window(file)?))
    };
    match read() {
        Ok((head, tail)) => match header_error(d.name, &head, &tail, file.len()) {
            Some(message) => Error::open(message),
            None => refusal(),
        },
        Err(e) => Error::open(instar_core::error::strerror(&e)),
    }
}

/// The bytes where qemu's dmg driver looks for the `koly` magic of the
/// UDIF trailer (`dmg_find_koly_offset`): the last 515 bytes of the file
/// as qemu sizes it (rounded up to 512, the rounding read as zeros), or
/// the whole of a smaller one.
fn dmg_trailer_window(file: &ImageFile) -> std::io::Result<Vec<u8>> {
    let length = file.sector_len();
    let offset = if length > 511 + 512 { length - 511 - 512 } else { 0 };
    file.read_vec(offset, length.min(515))
}

/// The error qemu's driver `name` gives opening a file whose first bytes
/// are `head` (at least [`HEAD_LEN`], zero-padded as qemu reads past the
/// end of a file), whose dmg trailer window is `tail` and whose length is
/// `len`; `None` when its header checks pass and qemu would go on reading
/// (and perhaps open the image).
///
/// Each driver's checks are those its open function (qemu 7.2's source,
/// confirmed on qemu-img 7.2.22 and 10.0.2) makes before it reads more
/// than its header, in its order, with its words.
pub fn header_error(name: &str, head: &[u8], tail: &[u8], len: u64) -> Option<String> {
    match name {
        "bochs" => bochs(head),
        "cloop" => cloop(head),
        "dmg" => dmg(tail, len),
        "parallels" => parallels(head),
        "qcow" => qcow(head),
        "qed" => qed(head),
        "vdi" => vdi(head),
        _ => None,
    }
}

/// block/bochs.c `bochs_open`: the whole header is checked before the
/// catalog is used.
fn bochs(h: &[u8]) -> Option<String> {
    if !probe::is_bochs(h) {
        return Some("Image not in Bochs format".into());
    }
    let v1 = le32(h, 64) == probe::BOCHS_VERSIONS[1];
    // The v1 header lacks a reserved word before the disk size.
    let disk = if v1 { le64(h, 84) } else { le64(h, 88) };
    let total_sectors = disk / 512;
    let catalog = le32(h, 72);
    if catalog > 0x10_0000 {
        return Some("Catalog size is too large".into());
    }
    let extent = le32(h, 80);
    if extent < 512 {
        return Some("Extent size must be at least 512".into());
    }
    if !extent.is_power_of_two() {
        return Some(format!("Extent size {extent} is not a power of two"));
    }
    if extent > 0x80_0000 {
        return Some(format!("Extent size {extent} is too large"));
    }
    if u64::from(catalog) < total_sectors.div_ceil(u64::from(extent / 512)) {
        return Some("Catalog size is too small for this disk size".into());
    }
    None
}

/// block/cloop.c `cloop_open`: block size and block count (big-endian at
/// 128 and 132). The script header is not checked on open.
fn cloop(h: &[u8]) -> Option<String> {
    const MAX_BLOCK_SIZE: u32 = 64 << 20;
    let block_size = be32(h, 128);
    if !block_size.is_multiple_of(512) {
        return Some(format!("block_size {block_size} must be a multiple of 512"));
    }
    if block_size == 0 {
        return Some("block_size cannot be zero".into());
    }
    if block_size > MAX_BLOCK_SIZE {
        return Some(format!(
            "block_size {block_size} must be {} MB or less",
            MAX_BLOCK_SIZE >> 20
        ));
    }
    let n_blocks = be32(h, 132);
    let max_blocks = (u32::MAX - 1) / 8;
    if n_blocks > max_blocks {
        return Some(format!("n_blocks {n_blocks} must be {max_blocks} or less"));
    }
    // qemu keeps the table size in 32 bits: 2^32 wraps to 0.
    #[allow(clippy::cast_possible_truncation, reason = "qemu's uint32_t offsets_size")]
    let offsets_size = ((u64::from(n_blocks) + 1) * 8) as u32;
    if offsets_size > 512 << 20 {
        return Some("image requires too many offsets, try increasing block size".into());
    }
    None
}

/// block/dmg.c `dmg_find_koly_offset`: the file's size and the `koly`
/// magic that starts the UDIF trailer.
fn dmg(window: &[u8], len: u64) -> Option<String> {
    if len == 0 {
        // qemu sizes files in whole sectors: only an empty one is short.
        return Some("dmg file must be at least 512 bytes long".into());
    }
    if window.windows(4).any(|w| w == b"koly") {
        None
    } else {
        Some("Could not locate UDIF trailer in dmg file".into())
    }
}

/// block/parallels.c `parallels_open`: version, magic, then the geometry
/// and table size fields.
fn parallels(h: &[u8]) -> Option<String> {
    if !probe::is_parallels(h) {
        return Some("Image not in Parallels format".into());
    }
    let tracks = le32(h, 28);
    if tracks == 0 {
        return Some("Invalid image: Zero sectors per track".into());
    }
    if tracks > i32::MAX as u32 / 513 {
        return Some("Invalid image: Too big cluster".into());
    }
    if le32(h, 32) > i32::MAX as u32 / 4 {
        return Some("Catalog too large".into());
    }
    None
}

/// block/qcow.c `qcow_open`: magic, version (with a hint towards qcow2),
/// size, cluster and L2 table sizes.
fn qcow(h: &[u8]) -> Option<String> {
    if &h[..4] != probe::QCOW_MAGIC {
        return Some("Image not in qcow format".into());
    }
    let version = be32(h, 4);
    if version != 1 {
        let hint =
            if version == 2 || version == 3 { "\nTry the 'qcow2' driver instead." } else { "" };
        return Some(format!("qcow (v1) does not support qcow version {version}{hint}"));
    }
    if be64(h, 24) <= 1 {
        return Some("Image size is too small (must be at least 2 bytes)".into());
    }
    let cluster_bits = h[32];
    if !(9..=16).contains(&cluster_bits) {
        return Some("Cluster size must be between 512 and 64k".into());
    }
    let l2_bits = h[33];
    if !(9 - 3..=16 - 3).contains(&l2_bits) {
        return Some("L2 table size must be between 512 and 64k".into());
    }
    None
}

/// block/qed.c `bdrv_qed_do_open`: magic, feature bits, cluster size.
fn qed(h: &[u8]) -> Option<String> {
    const KNOWN_FEATURES: u64 = 0x1 | 0x2 | 0x4;
    if &h[..4] != probe::QED_MAGIC {
        return Some("Image not in QED format".into());
    }
    let unknown = le64(h, 16) & !KNOWN_FEATURES;
    if unknown != 0 {
        return Some(format!("Unsupported QED features: {unknown:x}"));
    }
    let cluster_size = le32(h, 4);
    if !(4096..=64 << 20).contains(&cluster_size) || !cluster_size.is_power_of_two() {
        return Some("QED cluster size is invalid".into());
    }
    None
}

/// block/vdi.c `vdi_open`: the disk size comes first, then signature and
/// version.
fn vdi(h: &[u8]) -> Option<String> {
    // The block map of the largest image must stay below 2 GiB.
    const MAX_BLOCKS: u64 = (i32::MAX as u64 + 1 - 512) / 4;
    const MAX_DISK_SIZE: u64 = MAX_BLOCKS * (1 << 20);
    let disk_size = le64(h, 0x170);
    if disk_size > MAX_DISK_SIZE {
        return Some(format!(
            "Unsupported VDI image size (size is 0x{disk_size:x}, max supported is 0x{MAX_DISK_SIZE:x})"
        ));
    }
    let signature = le32(h, 0x40);
    if signature != probe::VDI_SIGNATURE {
        return Some(format!("Image not in VDI format (bad signature {signature:08x})"));
    }
    let version = le32(h, 0x44);
    if version != 0x0001_0001 {
        return Some(format!(
            "unsupported VDI image (version {}.{})",
            version >> 16,
            version & 0xffff
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(name: &str, head: &[u8]) -> Option<String> {
        let mut h = head.to_vec();
        h.resize(HEAD_LEN, 0);
        header_error(name, &h, &[], 4096)
    }

    #[test]
    fn the_table_holds_every_driver_of_qemu_img_help_once() {
        let help = "blkdebug blklogwrites blkverify bochs cloop compress copy-before-write \
            copy-on-read dmg file ftp ftps gluster host_cdrom host_device http https iscsi iser \
            luks nbd nfs null-aio null-co nvme parallels preallocate qcow qcow2 qed quorum raw \
            rbd replication snapshot-access ssh throttle vdi vhdx vmdk vpc vvfat";
        let names: Vec<&str> = QEMU_DRIVERS.iter().map(|d| d.name).collect();
        assert_eq!(names, help.split_whitespace().collect::<Vec<_>>());
        for f in crate::registry::FORMATS {
            let d = driver(f.name()).expect("instar's formats are qemu drivers");
            assert!(d.creates && d.kind == Kind::Format && d.probe.is_some());
        }
    }

    #[test]
    fn the_probing_formats_are_the_ones_with_a_probe_score() {
        let mut probed: Vec<&str> =
            QEMU_DRIVERS.iter().filter(|d| d.probe.is_some()).map(|d| d.name).collect();
        let mut order = probe::ProbeOrder::NEWEST.formats().to_vec();
        probed.sort_unstable();
        order.sort_unstable();
        assert_eq!(probed, order);
    }

    #[test]
    fn non_formats_are_refused_by_name() {
        let file = ImageFile::from_bytes("x", Vec::new());
        let e = open_error(driver("nbd").unwrap(), &file);
        assert_eq!(e.message(), not_supported("nbd"));
    }

    #[test]
    fn wrong_magics_get_qemu_s_words() {
        assert_eq!(err("bochs", b"x").unwrap(), "Image not in Bochs format");
        assert_eq!(err("cloop", b"x").unwrap(), "block_size cannot be zero");
        assert_eq!(err("parallels", b"x").unwrap(), "Image not in Parallels format");
        assert_eq!(err("qcow", b"x").unwrap(), "Image not in qcow format");
        assert_eq!(err("qed", b"x").unwrap(), "Image not in QED format");
        assert_eq!(err("vdi", b"x").unwrap(), "Image not in VDI format (bad signature 00000000)");
        assert_eq!(
            err("qcow", b"QFI\xfb\0\0\0\x03").unwrap(),
            "qcow (v1) does not support qcow version 3\nTry the 'qcow2' driver instead."
        );
        assert_eq!(
            err("qcow", b"QFI\xfb\0\0\0\x07").unwrap(),
            "qcow (v1) does not support qcow version 7"
        );
    }

    #[test]
    fn dmg_needs_a_koly_near_the_end() {
        assert_eq!(dmg(&[], 0).unwrap(), "dmg file must be at least 512 bytes long");
        assert_eq!(dmg(&[0; 515], 600).unwrap(), "Could not locate UDIF trailer in dmg file");
        let mut w = vec![0u8; 515];
        w[511..515].copy_from_slice(b"koly");
        assert_eq!(dmg(&w, 600), None);
    }

    #[test]
    fn cloop_checks_sizes_in_order() {
        let mut h = vec![0u8; HEAD_LEN];
        let mut set = |bs: u32, n: u32| {
            h[128..132].copy_from_slice(&bs.to_be_bytes());
            h[132..136].copy_from_slice(&n.to_be_bytes());
            cloop(&h)
        };
        assert_eq!(set(1000, 0).unwrap(), "block_size 1000 must be a multiple of 512");
        assert_eq!(set(128 << 20, 0).unwrap(), "block_size 134217728 must be 64 MB or less");
        assert_eq!(set(512, u32::MAX).unwrap(), "n_blocks 4294967295 must be 536870911 or less");
        assert_eq!(
            set(512, 1 << 27).unwrap(),
            "image requires too many offsets, try increasing block size"
        );
        // (n + 1) * 8 == 2^32 wraps to an empty table in qemu.
        assert_eq!(set(512, 536_870_911), None);
        assert_eq!(set(512, 1), None);
    }

    #[test]
    fn vdi_checks_the_disk_size_before_the_signature() {
        let mut h = vec![0u8; HEAD_LEN];
        h[0x170..0x178].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(
            vdi(&h).unwrap(),
            "Unsupported VDI image size (size is 0xffffffffffffffff, max supported is 0x1fffff8000000)"
        );
        h[0x170..0x178].fill(0);
        h[0x40..0x44].copy_from_slice(&probe::VDI_SIGNATURE.to_le_bytes());
        assert_eq!(vdi(&h).unwrap(), "unsupported VDI image (version 0.0)");
    }

    #[test]
    fn bochs_checks_the_catalog_and_extents() {
        let mut h = vec![0u8; HEAD_LEN];
        h[..22].copy_from_slice(probe::BOCHS_MAGIC.as_bytes());
        h[32..39].copy_from_slice(b"Redolog");
        h[48..55].copy_from_slice(b"Growing");
        h[64..68].copy_from_slice(&0x20000u32.to_le_bytes());
        let mut with = |catalog: u32, extent: u32, disk: u64| {
            h[72..76].copy_from_slice(&catalog.to_le_bytes());
            h[80..84].copy_from_slice(&extent.to_le_bytes());
            h[88..96].copy_from_slice(&disk.to_le_bytes());
            bochs(&h)
        };
        assert_eq!(with(0x10_0001, 512, 0).unwrap(), "Catalog size is too large");
        assert_eq!(with(1, 0, 0).unwrap(), "Extent size must be at least 512");
        assert_eq!(with(1, 1000, 0).unwrap(), "Extent size 1000 is not a power of two");
        assert_eq!(with(1, 16 << 20, 0).unwrap(), "Extent size 16777216 is too large");
        assert_eq!(with(1, 4096, 1 << 20).unwrap(), "Catalog size is too small for this disk size");
        assert_eq!(with(256, 4096, 1 << 20), None);
    }
}
