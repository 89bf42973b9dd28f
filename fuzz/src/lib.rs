//! What instar's fuzz targets share: in-memory images through the one
//! file layer (`ImageFile::in_memory`, with the files an image names held
//! beside it), and the work every open and check target does with what it
//! opened, asserting the invariants that are real: rendering `info` and
//! `check` never panics, and errors render as the command line renders
//! them.
//!
//! A target never touches the file system: an image in memory opens only
//! the files held beside it.

use instar_core::diag::render_all;
use instar_core::file::MemoryFiles;
use instar_core::{Error, Format, ImageFile, OpenFlags, QemuDialect, QemuVersion, Status};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The disk a command that reads guest data (`map`, `compare`, `measure`)
/// sees in `data`: the probe picks the driver, the image opens as those
/// commands open it (`OpenFlags::READ`), alone. `None` when the probe or
/// the open refuses it (the error rendered as the command line would).
pub fn read_chain(data: &[u8]) -> Option<instar_block::Chain> {
    use instar_block::probe::{probe_file, ProbeOrder};
    let file = image_file("fuzz.img", data);
    let driver = probe_file(&file, ProbeOrder::NEWEST).ok()?;
    let format = driver.format(&file).ok()?;
    match format.open(file, OpenFlags::READ) {
        Ok(image) => Some(instar_block::Chain::new(vec![image])),
        Err(e) => {
            let _ = render_error(&e);
            None
        }
    }
}

/// The program name the targets render messages with.
pub const PROG: &str = "instar";

/// What starts each file beside the image in a multi-file input. An input
/// that starts with it is a list of files, each the marker, its name up
/// to a newline, its length (big-endian `u32`, cut to what is there) and
/// its bytes, followed by the image itself (the rest); any other input is
/// the image alone. The image comes last so that no byte of it is
/// scanned: a scan over a multi-MiB image would slow every run.
/// `fuzz/seeds.py` writes the same.
pub const FILE_MARKER: &[u8] = b"\xfe\xfdinstar-fuzz-file:";

/// The longest name of a file beside the image.
const MAX_NAME: usize = 512;

/// Splits `data` into the image's bytes and the files beside it by name
/// (see [`FILE_MARKER`]).
pub fn split_files(data: &[u8]) -> (Vec<u8>, MemoryFiles) {
    let mut beside = BTreeMap::new();
    let mut rest = data;
    while let Some(after) = rest.strip_prefix(FILE_MARKER) {
        let head = &after[..after.len().min(MAX_NAME + 1)];
        let Some(end) = head.iter().position(|&b| b == b'\n') else { break };
        let name = instar_core::rawtext::from_bytes(&after[..end]);
        let Some((len, bytes)) = take_u32(&after[end + 1..]) else { break };
        let len = (len as usize).min(bytes.len());
        beside.entry(name).or_insert_with(|| bytes[..len].to_vec());
        rest = &bytes[len..];
    }
    (rest.to_vec(), Arc::new(beside))
}

/// The image in `data` (with any files beside it), in memory under `name`.
pub fn image_file(name: &str, data: &[u8]) -> ImageFile {
    let (top, beside) = split_files(data);
    ImageFile::in_memory(name, top, beside)
}

/// Renders an error as the command line does (what was printed before
/// it, then the message), which must not panic.
pub fn render_error(e: &Error) -> String {
    let mut text = render_all(e.notes(), PROG);
    text.push_str(&format!("{PROG}: {e}"));
    text
}

/// The dialects `info` renders for.
const DIALECTS: [QemuDialect; 3] = [
    QemuDialect::DEFAULT,
    QemuDialect::new(QemuVersion::new(7, 2, 0)),
    QemuDialect::new(QemuVersion::new(5, 2, 0)),
];

/// What `instar info` does after its open: the image's info in JSON and
/// human text, for each qemu version instar reproduces, and the warnings.
pub fn exercise_info(image: &dyn instar_core::Image) {
    let _ = image.virtual_size();
    let _ = image.backing();
    let _ = render_all(&image.warnings(), PROG);
    match image.info() {
        Ok(info) => {
            for dialect in DIALECTS {
                let json = info.to_json(dialect).to_qemu_pretty();
                assert!(json.starts_with('{'), "info JSON is an object");
                let human = info.to_human(dialect);
                assert!(human.starts_with("image: "), "human info starts with the image");
            }
        }
        Err(e) => {
            let _ = render_error(&e);
        }
    }
}

/// `info`'s open of the image in `data` as `format`, then what `info`
/// prints of it.
pub fn info(format: &dyn Format, name: &str, data: &[u8]) {
    info_of(format, image_file(name, data));
}

/// `info`'s open of `file` as `format`, then what `info` prints of it.
pub fn info_of(format: &dyn Format, file: ImageFile) {
    match format.open(file, OpenFlags::INFO) {
        Ok(image) => exercise_info(image.as_ref()),
        Err(e) => {
            let _ = render_error(&e);
        }
    }
}

/// `check`'s open of the image in `data` as `format`, its check, and the
/// report as `instar check` prints it (human and JSON).
pub fn check(format: &dyn Format, name: &str, data: &[u8]) {
    check_of(format, image_file(name, data));
}

/// `check`'s open of `file` as `format`, its check, and the report as
/// printed.
pub fn check_of(format: &dyn Format, file: ImageFile) {
    let image = match format.open(file, OpenFlags::CHECK) {
        Ok(image) => image,
        Err(e) => {
            let _ = render_error(&e);
            return;
        }
    };
    let _ = render_all(&image.warnings(), PROG);
    match image.check(discarded_lines()) {
        Ok(report) => render_report(&report),
        Err(e) => {
            let _ = render_error(&e);
        }
    }
}

/// Lines of a check written as `instar check` writes them, and dropped:
/// the streaming path, with memory bounded as the command line's.
pub fn discarded_lines() -> instar_core::Lines {
    instar_core::Lines::stream(PROG, |line| assert!(line.ends_with('\n'), "a whole line"))
}

/// A check report as `instar check` prints it.
pub fn render_report(report: &instar_core::CheckReport) {
    let _ = report.stderr_text(PROG);
    let json = report.stdout_text(true);
    assert!(
        json.starts_with('{') || report.failed.is_some(),
        "check JSON is an object unless the check failed"
    );
    let _ = report.stdout_text(false);
    let _ = report.exit_code();
}

/// Reads a big-endian `u32` from the front of `data`, if it has 4 bytes,
/// and the rest.
pub fn take_u32(data: &[u8]) -> Option<(u32, &[u8])> {
    let (head, rest) = data.split_first_chunk::<4>()?;
    Some((u32::from_be_bytes(*head), rest))
}

/// Reads a big-endian `u64` from the front of `data`, if it has 8 bytes,
/// and the rest.
pub fn take_u64(data: &[u8]) -> Option<(u64, &[u8])> {
    let (head, rest) = data.split_first_chunk::<8>()?;
    Some((u64::from_be_bytes(*head), rest))
}

/// The footer of a dynamic VHD of `current_size` bytes whose dynamic
/// header is at 512, checksummed, as the vpc structure targets put before
/// the structure they fuzz.
pub fn vpc_dynamic_footer(current_size: u64) -> [u8; instar_vpc::footer::FOOTER_SIZE] {
    use instar_vpc::footer::{self, DiskType, Footer};
    let mut f = Footer::from_bytes(&[0u8; footer::FOOTER_SIZE]);
    f.cookie = *footer::FOOTER_COOKIE;
    f.features = footer::FEATURES_RESERVED;
    f.format_version = footer::FILE_FORMAT_VERSION;
    f.data_offset = 512;
    // qemu takes the size field of this creator as it is.
    f.creator_app = *footer::CREATOR_APP_SIZE;
    f.original_size = current_size;
    f.current_size = current_size;
    f.geometry = instar_vpc::geometry::Geometry::for_sectors(current_size / 512);
    f.disk_type = DiskType::Dynamic.to_u32();
    f.to_bytes_with_checksum()
}

/// An opened VHD's `info`, then instar's structural check of the same
/// bytes (`check --deep`), as `instar` runs them.
pub fn vpc_open_and_check(bytes: Vec<u8>) {
    // Opened as before 10.0 too: the size comes from another field there
    // for most creators.
    let before_10 = ImageFile::from_bytes("fuzz.vpc", bytes.clone());
    let file = ImageFile::from_bytes("fuzz.vpc", bytes);
    match instar_vpc::check::check(&file, discarded_lines()) {
        Ok(report) => render_report(&report),
        Err(e) => {
            let _ = render_error(&e.into_open_error("fuzz.vpc"));
        }
    }
    for (file, dialect) in [(file, QemuDialect::DEFAULT), (before_10, DIALECTS[1])] {
        match instar_vpc::image::VpcImage::open(file, dialect) {
            Ok(image) => exercise_info(&image),
            Err(e) => {
                let _ = render_error(&e.into_open_error("fuzz.vpc"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_split_at_the_marker() {
        let mut data = FILE_MARKER.to_vec();
        data.extend_from_slice(b"a.vmdk\n\0\0\0\x03AAA");
        data.extend_from_slice(FILE_MARKER);
        data.extend_from_slice(b"b\n\0\0\0\x09BB");
        let (top, beside) = split_files(&data);
        assert_eq!(top, b"");
        assert_eq!(beside.get("a.vmdk").unwrap(), b"AAA");
        assert_eq!(beside.get("b").unwrap(), b"BB");
        let (top, beside) = split_files(b"image");
        assert_eq!((top.as_slice(), beside.len()), (b"image".as_slice(), 0));
    }
}

/// The vhdx image in `data` (with any files beside it), in memory under
/// `name`, with the CRC-32C of its first header and first region table
/// written over what the input holds. Without this, almost every mutation
/// of a whole image fails a checksum and the open stops there (the first
/// campaign's vhdx targets reached a third of the coverage of the others).
/// The second header and region table keep the input's checksums, so
/// that a wrong checksum, and the choice between the copies, stay covered.
pub fn vhdx_sealed(name: &str, data: &[u8]) -> ImageFile {
    use instar_vhdx::header::{update_checksum, CHECKSUM_OFFSET, HEADER1_OFFSET, HEADER_SIZE};
    use instar_vhdx::region_table::{REGION_TABLE_OFFSET, REGION_TABLE_SIZE};
    let (mut top, beside) = split_files(data);
    for (offset, len) in [(HEADER1_OFFSET, HEADER_SIZE), (REGION_TABLE_OFFSET, REGION_TABLE_SIZE)] {
        let start = offset as usize;
        if let Some(block) = top.get_mut(start..start + len) {
            update_checksum(block, CHECKSUM_OFFSET);
        }
    }
    ImageFile::in_memory(name, top, beside)
}

/// The most block status answers a read walk goes through: a hostile
/// header may claim a disk of exabytes, answered a table entry at a time.
const READ_STEPS: usize = 4096;

/// The most guest bytes a read walk reads at once.
const READ_WINDOW: usize = 64 << 10;

/// The most guest bytes a read walk reads in all, per input.
const READ_TOTAL: u64 = 16 << 20;

/// How many offsets spread over the disk a read walk reads at, whatever
/// the block status said.
const READ_SAMPLES: u64 = 64;

/// The open of `file` as `format` for a command that reads guest data
/// (`map`, `compare`: `OpenFlags::READ`), then a walk over its disk as
/// those commands make one. Range after range: the driver's own answer
/// (inside what was asked, never `ALLOCATED` or `EOF`, a host offset
/// exactly with `OFFSET_VALID`), the block layer's answer for both
/// `want_zero` values, what reading printed, and the range's first bytes,
/// which read as zeros where the answer said zero and as the host file's
/// bytes where it mapped data there. Then reads at offsets spread over
/// the disk, unaligned too, where what the driver knows reads as zeros
/// unread ([`instar_block::Chain::zero_run`]) reads as zeros. Errors
/// render as the command line's; memory and time are bounded by the
/// constants above, not by the header.
pub fn read_of(format: &dyn Format, file: ImageFile) {
    let image = match format.open(file, OpenFlags::READ) {
        Ok(image) => image,
        Err(e) => {
            let _ = render_error(&e);
            return;
        }
    };
    let _ = render_all(&image.warnings(), PROG);
    let align = image.request_alignment().max(1);
    let has_status = image.has_block_status();
    let chain = instar_block::Chain::new(vec![image]);
    let len = chain.len();
    let mut buf = vec![0u8; READ_WINDOW];
    let mut host_bytes = vec![0u8; READ_WINDOW];
    let (mut offset, mut read_left) = (0u64, READ_TOTAL);
    for step in 0..READ_STEPS {
        if offset >= len {
            break;
        }
        let asked = len - offset;
        if has_status && offset % align == 0 {
            if let Some(layer) = chain.layer(0) {
                match layer.block_status(step % 2 == 0, offset, asked) {
                    Ok(m) => {
                        assert!(m.bytes > 0 && m.bytes <= asked, "pnum within the request");
                        assert!(!m.status.intersects(Status::ALLOCATED | Status::EOF));
                        assert_eq!(m.host.is_some(), m.status.contains(Status::OFFSET_VALID));
                    }
                    Err(e) => {
                        let _ = render_error(&e);
                    }
                }
            }
        }
        if let Ok(quick) = chain.layer_status(0, false, offset, asked) {
            assert!(quick.bytes > 0 && quick.bytes <= asked, "pnum within the request");
        }
        let st = match chain.layer_status(0, true, offset, asked) {
            Ok(st) => st,
            Err(e) => {
                let _ = render_error(&e);
                return;
            }
        };
        assert!(st.bytes > 0 && st.bytes <= asked, "the block layer's pnum within the request");
        let _ = render_all(&chain.take_printed(), PROG);
        let n = st.bytes.min(read_left).min(READ_WINDOW as u64) as usize;
        read_left -= n as u64;
        let part = &mut buf[..n];
        match chain.read_at(offset, part) {
            Ok(()) if st.status.contains(Status::ZERO) => {
                assert!(part.iter().all(|&b| b == 0), "a range of zeros reads as zeros");
            }
            Ok(()) => {
                if let Some(host) = st.host.filter(|_| st.status.contains(Status::DATA)) {
                    let theirs = &mut host_bytes[..n];
                    if host.file.read_at(host.offset, theirs).is_ok() {
                        assert_eq!(part, theirs, "a mapped range reads as its host bytes");
                    }
                }
            }
            Err(e) => {
                let _ = render_error(&e);
            }
        }
        offset += st.bytes;
    }
    for i in 0..READ_SAMPLES {
        // Spread over the disk, each a few bytes off a sector boundary.
        let at = (len / READ_SAMPLES).saturating_mul(i).saturating_add(i * 7);
        if at >= len {
            break;
        }
        let n = (len - at).min(READ_WINDOW as u64) as usize;
        if let Err(e) = chain.read_at(at, &mut buf[..n]) {
            let _ = render_error(&e);
        }
        // What the driver says reads as zeros unread does.
        let (zero, run) = chain.zero_run(at, (len - at).min(READ_WINDOW as u64));
        assert!(run > 0 && run <= (len - at), "a zero run within the request");
        if zero {
            let part = &mut buf[..run as usize];
            if chain.read_at(at, part).is_ok() {
                assert!(part.iter().all(|&b| b == 0), "a known zero run reads as zeros");
            }
        }
    }
    let _ = render_all(&chain.take_printed(), PROG);
}

/// The writers' share of a hostile image: the first byte picks vmdk, vpc
/// or vhdx, the rest is written to a scratch file, which is opened for
/// writing (`Format::open_writer`, qemu's `BDRV_O_RDWR` open) and given,
/// at four offsets spread over the disk, a 64 KiB data write and a zero
/// write of the same range, then one compressed write where the writer
/// compresses, and closed. The writers work on files, so this target
/// does too: one scratch file per process, removed after each input. A
/// vmdk must be a sparse file (`KDMV` or `COWD`): a descriptor would name
/// extent files that the writer opens for writing.
pub fn write_of(data: &[u8]) {
    let Some((&pick, image)) = data.split_first() else { return };
    let formats: [&dyn Format; 3] = [&instar_vmdk::Vmdk, &instar_vpc::Vpc, &instar_vhdx::Vhdx];
    let format = formats[usize::from(pick) % formats.len()];
    if format.name() == "vmdk" && !(image.starts_with(b"KDMV") || image.starts_with(b"COWD")) {
        return;
    }
    let path = std::env::temp_dir().join(format!("instar-fuzz-write-{}", std::process::id()));
    if std::fs::write(&path, image).is_err() {
        return;
    }
    let name = path.to_string_lossy().into_owned();
    let req = instar_core::WriterRequest { dialect: instar_core::QemuDialect::DEFAULT, backing: None };
    if let Ok(mut writer) = format.open_writer(&name, req) {
        const CHUNK: u64 = 64 * 1024;
        let data = vec![0x5au8; CHUNK as usize];
        let len = writer.len();
        for i in 0..4 {
            let at = (len / 4 * i) & !511;
            let n = (len - at).min(CHUNK);
            if n == 0 {
                continue;
            }
            #[allow(clippy::cast_possible_truncation, reason = "at most CHUNK")]
            let _ = writer.write(at, &data[..n as usize]);
            let _ = writer.write_zeroes(at, n);
        }
        if let (Some(c), Some(cluster)) = (writer.compression(), writer.cluster_size()) {
            if cluster > 0 && cluster <= CHUNK && cluster <= len {
                #[allow(clippy::cast_possible_truncation, reason = "at most CHUNK")]
                let grain = &data[..cluster as usize];
                let packed = c.codec.compress(grain, c.capacity);
                let _ = writer.write_compressed(len - len % cluster - cluster, grain, packed.as_deref());
            }
            let _ = writer.end_compressed();
        }
        let _ = writer.close();
    }
    let _ = std::fs::remove_file(&path);
}
