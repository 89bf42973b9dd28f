//! Damaged and unusual VHDX images: instar's `info` and `check` must end
//! exactly as qemu-img's do on the same file (stdout, stderr with the
//! program name substituted, exit code): `info` JSON and human, `check`
//! human and JSON, with `-f vhdx` and probed. An image that does not open
//! gets qemu-img's notes and error, word for word.
//!
//! Each case starts from an image qemu-img (or instar) creates, changes
//! bytes (and recomputes a checksum where the case needs the structure to
//! stay valid), then asks both. Each case also says what `qemu-img check`
//! makes of it, so that a damage that stops damaging is noticed: clean
//! (exit 0; qemu tolerates or repairs it in memory) or detected (any other
//! exit: corruption, or an image that does not open).

use super::compare_checks;
use crate::util::edit::{read_at, set_file_len, write_at};
use crate::util::{create_args, Sandbox};
use instar_matrix::masks::vhdx_checksum;
use rstest::rstest;
use std::path::Path;

const MIB: u64 = 1 << 20;
/// The image every case checks.
const IMAGE: &str = "img.vhdx";
/// In images qemu-img makes: the log, BAT and metadata regions.
const LOG: u64 = MIB;
const BAT: u64 = 2 * MIB;
const MD: u64 = 3 * MIB;
/// The two headers and the region table.
const H1: u64 = 0x10000;
const H2: u64 = 0x20000;
const RT: u64 = 0x30000;
/// The checksum field of headers, region tables and log entries.
const CHECKSUM_AT: usize = 4;
/// BAT entry state: the block is present at the entry's offset.
const PRESENT: u64 = 6;
/// The parent locator item's GUID A8D35F2D-B30B-454D-ABF7-D3D84834AB0C,
/// as stored.
const PARENT_LOCATOR: [u8; 16] = [
    0x2d, 0x5f, 0xd3, 0xa8, 0x0b, 0xb3, 0x4d, 0x45, 0xab, 0xf7, 0xd3, 0xd8, 0x48, 0x34, 0xab, 0x0c,
];

/// A fixed image with fully present 1 MiB blocks.
const FIXED: &str = "subformat=fixed,block_state_zero=off,block_size=1M";

/// How a case's image is made before it is damaged.
#[derive(Debug, Clone, Copy)]
enum Base {
    /// `qemu-img create -f vhdx` with these `-o` options and size.
    Qemu(&'static str, &'static str),
    /// `instar create -f vhdx` with these `-o` options and size.
    Instar(&'static str, &'static str),
}

/// The default 64 MiB dynamic image of qemu-img, base of most cases.
const DYNAMIC: Base = Base::Qemu("", "64M");

/// What `qemu-img check -f vhdx` makes of the damaged image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Exit 0: nothing to report.
    Clean,
    /// Any other exit: corruption found, or the image does not open.
    Detected,
}
use Expect::{Clean, Detected};

/// A damage done to the image at the path.
type Damage = fn(&Path);

fn poke64(path: &Path, at: u64, v: u64) {
    write_at(path, at, &v.to_le_bytes());
}

fn poke32(path: &Path, at: u64, v: u32) {
    write_at(path, at, &v.to_le_bytes());
}

/// Edits a checksummed block (a header or the region table) and stores a
/// correct checksum again.
fn edit_block(path: &Path, at: u64, len: usize, edit: impl FnOnce(&mut [u8])) {
    let mut b = read_at(path, at, len);
    edit(&mut b);
    let crc = vhdx_checksum(&b, CHECKSUM_AT);
    b[CHECKSUM_AT..CHECKSUM_AT + 4].copy_from_slice(&crc.to_le_bytes());
    write_at(path, at, &b);
}

fn edit_header(path: &Path, at: u64, edit: impl FnOnce(&mut [u8])) {
    edit_block(path, at, 4096, edit);
}

fn edit_rt(path: &Path, edit: impl FnOnce(&mut [u8])) {
    edit_block(path, RT, 65536, edit);
}

/// Writes a log entry (header, `descs`, `data_sectors` zero sectors) at
/// the start of the log, and sets the log GUID in header 2 so that it is
/// current.
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
    let crc = vhdx_checksum(&s, CHECKSUM_AT);
    s[CHECKSUM_AT..CHECKSUM_AT + 4].copy_from_slice(&crc.to_le_bytes());
    if bad_crc {
        s[4] ^= 1;
    }
    write_at(path, LOG, &s);
}

fn descriptor(sig: &[u8; 4], length: u64, offset: u64, seq: u64) -> [u8; 32] {
    let mut d = [0u8; 32];
    d[0..4].copy_from_slice(sig);
    d[8..16].copy_from_slice(&length.to_le_bytes());
    d[16..24].copy_from_slice(&offset.to_le_bytes());
    d[24..32].copy_from_slice(&seq.to_le_bytes());
    d
}

fn both_header_checksums(p: &Path) {
    write_at(p, H1 + 100, &[1]);
    write_at(p, H2 + 100, &[1]);
}

fn both_header_signatures(p: &Path) {
    edit_header(p, H1, |b| b[0..4].copy_from_slice(b"HEAD"));
    edit_header(p, H2, |b| b[0..4].copy_from_slice(b"HEAD"));
}

fn equal_sequence_numbers(p: &Path) {
    let seq = read_at(p, H2 + 8, 8);
    edit_header(p, H1, |b| b[8..16].copy_from_slice(&seq));
}

fn log_guid_odd_length(p: &Path) {
    edit_header(p, H2, |b| {
        b[48..64].fill(0x11);
        b[68..72].copy_from_slice(&1000u32.to_le_bytes());
    });
}

fn duplicate_bat_region(p: &Path) {
    edit_rt(p, |b| {
        let bat_guid: [u8; 16] = b[16..32].try_into().unwrap();
        b[48..64].copy_from_slice(&bat_guid);
        b[64..72].copy_from_slice(&(4 * MIB).to_le_bytes());
    });
}

/// A third region with an unknown GUID, `required` or not.
fn unknown_region(p: &Path, required: bool) {
    edit_rt(p, |b| {
        b[8] = 3;
        b[80..96].fill(0x44);
        b[96..104].copy_from_slice(&(7 * MIB).to_le_bytes());
        b[104..108].copy_from_slice(&(MIB as u32).to_le_bytes());
        b[108] = u8::from(required);
    });
}

/// The BAT region moved to 32 MiB, `len` bytes long.
fn bat_region_at_32m(p: &Path, len: u32) {
    edit_rt(p, |b| {
        b[32..40].copy_from_slice(&(32 * MIB).to_le_bytes());
        b[40..44].copy_from_slice(&len.to_le_bytes());
    });
}

/// A sixth metadata item with an unknown GUID, `required` or not.
fn unknown_item(p: &Path, required: bool) {
    write_at(p, MD + 10, &6u16.to_le_bytes());
    let mut e = [0x55u8; 32];
    e[16..32].copy_from_slice(&[
        0x30,
        0,
        1,
        0,
        4,
        0,
        0,
        0,
        u8::from(required) * 4,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
    ]);
    write_at(p, MD + 32 * 6, &e);
}

fn parent_locator(p: &Path) {
    write_at(p, MD + 10, &6u16.to_le_bytes());
    write_at(p, MD + 32 * 6, &PARENT_LOCATOR);
    write_at(p, MD + 32 * 6 + 16, &[0x30, 0, 1, 0, 4, 0, 0, 0]);
}

fn bat_entries_twice_the_same(p: &Path) {
    set_file_len(p, 24 * MIB);
    poke64(p, BAT, (8 * MIB) | PRESENT);
    poke64(p, BAT + 8, (8 * MIB) | PRESENT);
}

fn bat_entry_low_bits(p: &Path) {
    set_file_len(p, 32 * MIB);
    poke64(p, BAT, (8 * MIB) | 0x1230 | PRESENT);
}

fn many_bat_entries_past_end(p: &Path) {
    for i in 0..8 {
        poke64(p, BAT + 8 * i, ((i + 1) << 28) | PRESENT);
    }
}

fn fixed_truncated(p: &Path) {
    let len = std::fs::metadata(p).unwrap().len();
    set_file_len(p, len - 5 * MIB - 100);
}

#[rstest]
#[case::clean(DYNAMIC, Clean, |_: &Path| {})]
#[case::clean_instar_dynamic(Base::Instar("subformat=dynamic", "64M"), Clean, |_: &Path| {})]
#[case::clean_instar_fixed(Base::Instar("subformat=fixed", "64M"), Clean, |_: &Path| {})]
// File identifier and headers.
#[case::signature(DYNAMIC, Detected, |p: &Path| write_at(p, 0, b"VHDX"))]
#[case::header_1_checksum(DYNAMIC, Clean, |p: &Path| write_at(p, H1 + 100, &[1]))]
#[case::both_header_checksums(DYNAMIC, Detected, both_header_checksums)]
#[case::header_2_signature(DYNAMIC, Clean, |p: &Path| edit_header(p, H2, |b| b[0..4].copy_from_slice(b"HEAD")))]
#[case::both_header_signatures(DYNAMIC, Detected, both_header_signatures)]
#[case::header_version_2(DYNAMIC, Clean, |p: &Path| edit_header(p, H2, |b| b[66] = 2))]
#[case::equal_sequence_numbers(DYNAMIC, Clean, equal_sequence_numbers)]
#[case::identical_headers(DYNAMIC, Clean, |p: &Path| write_at(p, H1, &read_at(p, H2, 4096)))]
#[case::log_offset_unaligned(DYNAMIC, Detected, |p: &Path| edit_header(p, H2, |b| b[72..80].copy_from_slice(&0x18_0000u64.to_le_bytes())))]
#[case::log_offset_zero(DYNAMIC, Detected, |p: &Path| edit_header(p, H2, |b| b[72..80].fill(0)))]
#[case::log_version_1(DYNAMIC, Detected, |p: &Path| edit_header(p, H2, |b| b[64] = 1))]
#[case::log_guid_empty_log(DYNAMIC, Clean, |p: &Path| edit_header(p, H2, |b| b[48..64].fill(0x11)))]
#[case::log_guid_odd_length(DYNAMIC, Detected, log_guid_odd_length)]
#[case::log_overlaps_bat(DYNAMIC, Detected, |p: &Path| edit_header(p, H2, |b| b[68..72].copy_from_slice(&(2 * MIB as u32).to_le_bytes())))]
// Logs.
#[case::log_to_replay(DYNAMIC, Detected, |p: &Path| log_entry(p, &[descriptor(b"zero", 4096, 5 * MIB, 5)], 0, false))]
#[case::log_with_data_sector(DYNAMIC, Detected, |p: &Path| log_entry(p, &[descriptor(b"desc", 0, 5 * MIB, 5)], 1, false))]
#[case::log_bad_checksum(DYNAMIC, Clean, |p: &Path| log_entry(p, &[descriptor(b"zero", 4096, 5 * MIB, 5)], 0, true))]
#[case::log_bad_descriptor(DYNAMIC, Detected, |p: &Path| log_entry(p, &[descriptor(b"junk", 0, 0, 5)], 0, false))]
#[case::log_descriptor_sequence(DYNAMIC, Detected, |p: &Path| log_entry(p, &[descriptor(b"zero", 4096, 5 * MIB, 6)], 0, false))]
// Region table.
#[case::region_table_checksum(DYNAMIC, Detected, |p: &Path| write_at(p, RT + 100, &[1]))]
#[case::region_table_copy_checksum(DYNAMIC, Clean, |p: &Path| write_at(p, RT + 0x10000 + 100, &[1]))]
#[case::region_table_signature(DYNAMIC, Detected, |p: &Path| edit_rt(p, |b| b[0..4].copy_from_slice(b"REGI")))]
#[case::region_table_2048_entries(DYNAMIC, Detected, |p: &Path| edit_rt(p, |b| b[8..12].copy_from_slice(&2048u32.to_le_bytes())))]
#[case::region_table_1_entry(DYNAMIC, Detected, |p: &Path| edit_rt(p, |b| b[8] = 1))]
#[case::regions_overlap(DYNAMIC, Detected, |p: &Path| edit_rt(p, |b| b[64..72].copy_from_slice(&0x28_0000u64.to_le_bytes())))]
#[case::bat_region_on_the_log(DYNAMIC, Detected, |p: &Path| edit_rt(p, |b| b[32..40].copy_from_slice(&LOG.to_le_bytes())))]
#[case::duplicate_bat_region(DYNAMIC, Detected, duplicate_bat_region)]
#[case::unknown_required_region(DYNAMIC, Detected, |p: &Path| unknown_region(p, true))]
#[case::unknown_optional_region(DYNAMIC, Clean, |p: &Path| unknown_region(p, false))]
#[case::bat_region_too_small(DYNAMIC, Clean, |p: &Path| edit_rt(p, |b| b[40..44].copy_from_slice(&64u32.to_le_bytes())))]
#[case::bat_region_largest_read(DYNAMIC, Clean, |p: &Path| bat_region_at_32m(p, 0x7ff0_0000))]
#[case::bat_region_beyond_one_read(DYNAMIC, Detected, |p: &Path| bat_region_at_32m(p, 0x8000_0000))]
#[case::bat_region_past_2_63(DYNAMIC, Detected, |p: &Path| edit_rt(p, |b| b[32..40].copy_from_slice(&(1u64 << 63).to_le_bytes())))]
#[case::metadata_past_end_of_file(DYNAMIC, Detected, |p: &Path| edit_rt(p, |b| b[64..72].copy_from_slice(&(256 * MIB).to_le_bytes())))]
#[case::metadata_past_2_63(DYNAMIC, Detected, |p: &Path| edit_rt(p, |b| b[64..72].copy_from_slice(&(1u64 << 63).to_le_bytes())))]
// Metadata.
#[case::metadata_signature(DYNAMIC, Detected, |p: &Path| write_at(p, MD, b"METADATA"))]
#[case::metadata_2047_entries(DYNAMIC, Clean, |p: &Path| write_at(p, MD + 10, &2047u16.to_le_bytes()))]
#[case::metadata_2048_entries(DYNAMIC, Detected, |p: &Path| write_at(p, MD + 10, &2048u16.to_le_bytes()))]
#[case::metadata_item_missing(DYNAMIC, Detected, |p: &Path| write_at(p, MD + 10, &4u16.to_le_bytes()))]
#[case::metadata_item_twice(DYNAMIC, Detected, |p: &Path| write_at(p, MD + 64, &read_at(p, MD + 32, 16)))]
#[case::unknown_required_item(DYNAMIC, Detected, |p: &Path| unknown_item(p, true))]
#[case::unknown_optional_item(DYNAMIC, Clean, |p: &Path| unknown_item(p, false))]
#[case::parent_locator(DYNAMIC, Detected, parent_locator)]
#[case::has_parent(DYNAMIC, Detected, |p: &Path| poke32(p, MD + 0x10004, 2))]
#[case::block_size_512k(DYNAMIC, Detected, |p: &Path| poke32(p, MD + 0x10000, 0x8_0000))]
#[case::block_size_512m(DYNAMIC, Detected, |p: &Path| poke32(p, MD + 0x10000, 0x2000_0000))]
#[case::block_size_3m(DYNAMIC, Detected, |p: &Path| poke32(p, MD + 0x10000, 3 << 20))]
#[case::logical_sector_4096(DYNAMIC, Detected, |p: &Path| poke32(p, MD + 0x10020, 4096))]
#[case::logical_sector_1024(DYNAMIC, Detected, |p: &Path| poke32(p, MD + 0x10020, 1024))]
#[case::physical_sector_1000(DYNAMIC, Clean, |p: &Path| poke32(p, MD + 0x10024, 1000))]
#[case::disk_size_1_pib(DYNAMIC, Detected, |p: &Path| poke64(p, MD + 0x10008, 1 << 50))]
#[case::disk_size_1000(DYNAMIC, Clean, |p: &Path| poke64(p, MD + 0x10008, 1000))]
#[case::disk_size_0(DYNAMIC, Detected, |p: &Path| poke64(p, MD + 0x10008, 0))]
#[case::item_offset_far(DYNAMIC, Detected, |p: &Path| poke32(p, MD + 64 + 16, 0xffff_fff0))]
// BAT entries.
#[case::bat_entry_past_end(DYNAMIC, Detected, |p: &Path| poke64(p, BAT, (1 << 40) | PRESENT))]
#[case::bat_entry_overflow(DYNAMIC, Detected, |p: &Path| poke64(p, BAT, 0xffff_ffff_fff0_0000 | PRESENT))]
#[case::bat_entry_on_the_log(DYNAMIC, Detected, |p: &Path| poke64(p, BAT, LOG | PRESENT))]
#[case::bat_entry_on_the_bat(DYNAMIC, Detected, |p: &Path| poke64(p, BAT + 8, BAT | PRESENT))]
#[case::bat_entry_on_the_headers(DYNAMIC, Detected, |p: &Path| poke64(p, BAT + 8, PRESENT))]
#[case::bat_entry_on_metadata(DYNAMIC, Detected, |p: &Path| poke64(p, BAT + 8, MD | PRESENT))]
#[case::bat_entry_partly_missing(DYNAMIC, Detected, |p: &Path| poke64(p, BAT + 8, (7 * MIB) | PRESENT))]
#[case::bat_entries_twice_the_same(DYNAMIC, Clean, bat_entries_twice_the_same)]
#[case::bat_entry_state_7(DYNAMIC, Clean, |p: &Path| poke64(p, BAT, (8 * MIB) | 7))]
#[case::bat_entry_low_bits(DYNAMIC, Clean, bat_entry_low_bits)]
#[case::many_bat_entries_past_end(DYNAMIC, Detected, many_bat_entries_past_end)]
// The file.
#[case::empty_file(DYNAMIC, Detected, |p: &Path| set_file_len(p, 0))]
#[case::five_bytes(DYNAMIC, Detected, |p: &Path| set_file_len(p, 5))]
#[case::cut_in_header_2(DYNAMIC, Detected, |p: &Path| set_file_len(p, 70_000))]
#[case::cut_at_metadata(DYNAMIC, Detected, |p: &Path| set_file_len(p, MD))]
#[case::cut_in_metadata_items(DYNAMIC, Detected, |p: &Path| set_file_len(p, MD + 0x10000 + 20))]
#[case::cut_after_metadata(DYNAMIC, Clean, |p: &Path| set_file_len(p, MD + 0x10000 + 100))]
#[case::odd_length(DYNAMIC, Clean, |p: &Path| set_file_len(p, 8 * MIB + 100))]
// Fixed images with fully present blocks, and large images with sector
// bitmap entries in their BAT.
#[case::fixed_clean(Base::Qemu(FIXED, "16M"), Clean, |_: &Path| {})]
#[case::fixed_cut_short(Base::Qemu(FIXED, "16M"), Detected, |p: &Path| set_file_len(p, 18 * MIB + 100))]
#[case::fixed_truncated(Base::Qemu(FIXED, "16M"), Detected, fixed_truncated)]
#[case::fixed_last_block_partly_missing(Base::Qemu("subformat=fixed,block_state_zero=off", "9M"), Detected, |p: &Path| set_file_len(p, 8 * MIB + 0x88_0000))]
#[case::fixed_block_on_metadata(Base::Qemu(FIXED, "16M"), Detected, |p: &Path| poke64(p, BAT + 24, MD | PRESENT))]
#[case::large_clean(Base::Qemu("block_size=1M", "8G"), Clean, |_: &Path| {})]
#[case::bitmap_entry_on_the_log(Base::Qemu("block_size=1M", "8G"), Detected, |p: &Path| poke64(p, BAT + 8 * 4096, LOG | PRESENT))]
// In a fully present table qemu takes every 4097th present entry as a
// sector bitmap and does not check it.
#[case::fixed_8g_clean(Base::Qemu(FIXED, "8G"), Clean, |_: &Path| {})]
#[case::present_entry_counted_as_bitmap(Base::Qemu(FIXED, "8G"), Clean, |p: &Path| poke64(p, BAT + 8 * 4097, MD | PRESENT))]
#[case::present_entry_before_the_bitmap(Base::Qemu(FIXED, "8G"), Detected, |p: &Path| poke64(p, BAT + 8 * 4095, MD | PRESENT))]
fn damaged_vhdx(#[case] base: Base, #[case] expect: Expect, #[case] damage: Damage) {
    let Some(s) = Sandbox::new() else { return };
    let (options, size) = match base {
        Base::Qemu(o, size) | Base::Instar(o, size) => (o, size),
    };
    let create = create_args(&["-q"], "vhdx", options, IMAGE, size);
    match base {
        Base::Qemu(..) => s.qemu_ok(&create),
        Base::Instar(..) => s.instar_ok(&create),
    };
    damage(&s.file(IMAGE));
    let code = compare_checks(
        &s,
        &[
            &["info", "-f", "vhdx", "--output=json", IMAGE],
            &["info", "-f", "vhdx", IMAGE],
            &["check", "--output=human", IMAGE],
            &["check", "--output=json", IMAGE],
            &["check", "-f", "vhdx", "--output=json", IMAGE],
            &["check", "-f", "vhdx", "--output=human", IMAGE],
        ],
    );
    let got = if code == Some(0) { Clean } else { Detected };
    s.t.check(got == expect, || {
        format!("qemu-img check exited {code:?}: the image is {got:?}, the case says {expect:?}")
    });
}
