//! `instar check` on damaged vmdk images, against `qemu-img check`.
//!
//! Every case builds a fresh image with qemu-img in a temporary folder
//! (empty, or with guest data written through `qemu-img convert`, in the
//! subformat the case needs), damages it by editing bytes, truncating or
//! removing files, then runs `qemu-img check` and `instar check`, human and
//! JSON, on the same file. stdout, stderr (qemu-img's program-name prefix
//! read as instar's) and the exit code must be identical, and the exit
//! code must not be 0: each case proves that the damage is detected, and
//! reported as qemu reports it.
//!
//! qemu's vmdk check stops at its first finding: either the image does not
//! open (`Could not open ...`), or the walk over the guest disk finds a
//! grain it cannot look up or one that starts past the end of its file
//! (`ERROR: ...`, then `Check failed: <errno text>`); both exit 1.
//! `check_clean_vmdk` checks that every layout qemu-img creates, with and
//! without data, checks clean in both.

use super::{assert_clean, assert_detected, compare_checks, qemu_convert, qemu_create};
use crate::util::edit::{set_file_len, vmdk_move_header_to_footer, write_guest_data, ImageFile};
use crate::util::Sandbox;
use rstest::rstest;

/// The image every case checks, relative to the case's folder so that
/// outputs name it the same way for both programs.
const IMAGE: &str = "img.vmdk";
/// Guest data of images with data: 4 MiB with runs of non-zero bytes in
/// grains 0, 1, 8 and 63 (64 KiB grains).
const DATA_SIZE: usize = 4 << 20;
const DATA_RUNS: [(usize, usize, u8); 3] =
    [(0, 128 << 10, 0xa5), (512 << 10, 576 << 10, 0x5a), ((4 << 20) - 4096, 4 << 20, 0x33)];

/// Sparse header field offsets (qemu's `VMDK4Header`, after the magic).
const HDR_VERSION: u64 = 4;
const HDR_CAPACITY: u64 = 12;
const HDR_GRANULARITY: u64 = 20;
const HDR_NUM_GTES: u64 = 44;
const HDR_GD_OFFSET: u64 = 56;
const HDR_GRAIN_OFFSET: u64 = 64;
/// Bytes per sector.
const SECTOR: u64 = 512;

/// Checks the image with both programs, human and JSON, with and without
/// `-f vmdk`, and asserts they agree; returns qemu-img's exit code.
fn checks(s: &Sandbox) -> Option<i32> {
    compare_checks(
        s,
        &[
            &["check", "-f", "vmdk", "--output=human", IMAGE],
            &["check", "-f", "vmdk", "--output=json", IMAGE],
            &["check", IMAGE],
        ],
    )
}

/// A vmdk image under test (its descriptor or sparse file), edited in
/// place.
struct Image(ImageFile);

impl std::ops::Deref for Image {
    type Target = ImageFile;

    fn deref(&self) -> &ImageFile {
        &self.0
    }
}

impl Image {
    /// Where entry `i` of the first grain table is stored.
    fn gt_entry_at(&self, i: u64) -> u64 {
        let gd = self.le64(HDR_GD_OFFSET) * SECTOR;
        u64::from(self.le32(gd)) * SECTOR + i * 4
    }

    /// Rewrites the descriptor text of a descriptor file.
    fn edit_descriptor(&self, edit: impl Fn(String) -> String) {
        let text = std::fs::read_to_string(&self.path).unwrap();
        std::fs::write(&self.path, edit(text)).unwrap();
    }

    /// Rewrites the descriptor embedded in a sparse file (same length).
    fn edit_embedded_descriptor(&self, edit: impl Fn(String) -> String) {
        let raw = self.read(SECTOR, 20 * SECTOR as usize);
        let n = raw.iter().position(|&b| b == 0).unwrap();
        let text = edit(String::from_utf8(raw[..n].to_vec()).unwrap());
        let mut bytes = text.into_bytes();
        assert!(bytes.len() <= 20 * SECTOR as usize);
        bytes.resize(20 * SECTOR as usize, 0);
        self.write(SECTOR, &bytes);
    }
}

/// How a case's image is made before it is damaged.
#[derive(Debug, Clone, Copy)]
enum Base {
    /// `qemu-img create` with these `-o` options and size.
    Empty(&'static str, &'static str),
    /// `qemu-img convert` of the guest data, with these `-o` options.
    Data(&'static str),
    /// A stream-optimized image with data whose header sends readers to a
    /// footer, as VMware writes them (qemu-img reads but never writes it).
    Footer,
    /// A monolithicSparse image whose backing file is `base.vmdk`.
    Child,
}

impl Base {
    /// Makes the image in the sandbox.
    fn build(self, s: &Sandbox) -> Image {
        match self {
            Base::Empty(options, size) => {
                qemu_create(s, "vmdk", options, IMAGE, size);
            }
            Base::Data(options) => {
                write_guest_data(&s.file("data.raw"), DATA_SIZE, &DATA_RUNS);
                // A stream-optimized image holds compressed grains only.
                let flags: &[&str] =
                    if options.contains("streamOptimized") { &["-c"] } else { &[] };
                qemu_convert(s, "vmdk", flags, options, "data.raw", IMAGE);
            }
            Base::Footer => {
                Base::Data("subformat=streamOptimized").build(s);
                vmdk_move_header_to_footer(&s.file(IMAGE));
            }
            Base::Child => {
                s.qemu_ok(&["create", "-q", "-f", "vmdk", "base.vmdk", "4M"]);
                s.qemu_ok(&["create", "-q", "-f", "vmdk", "-b", "base.vmdk", "-F", "vmdk", IMAGE]);
            }
        }
        Image(ImageFile { path: s.file(IMAGE) })
    }
}

type Damage = fn(&Image);

/// An unallocated grain's entry pointing past the end of the file.
fn grain_past_eof(img: &Image) {
    img.set_le32(img.gt_entry_at(5), (img.len() / SECTOR + 100) as u32);
}

/// An allocated grain's entry pointing exactly at the end of the file.
fn grain_at_eof(img: &Image) {
    img.set_le32(img.gt_entry_at(0), (img.len() / SECTOR) as u32);
}

/// The file cut inside the last grain: its entry now points past the end.
fn last_grain_cut_off(img: &Image) {
    img.set_len(img.len() - 64 * 1024);
}

/// The file cut inside its metadata.
fn truncated_metadata(img: &Image) {
    img.set_len(img.le64(HDR_GRAIN_OFFSET) * SECTOR - SECTOR);
}

/// A flat extent emptied.
fn flat_extent_emptied(img: &Image) {
    set_file_len(&img.sibling("img-flat.vmdk"), 0);
}

/// The second flat extent of a split image emptied: found at its first
/// sector.
fn second_flat_extent_emptied(img: &Image) {
    set_file_len(&img.sibling("img-f002.vmdk"), 0);
}

/// A sparse extent of a split image missing.
fn sparse_extent_missing(img: &Image) {
    std::fs::remove_file(img.sibling("img-s002.vmdk")).unwrap();
}

/// A grain past the end of the second sparse extent of a split image.
fn grain_past_eof_in_second_extent(img: &Image) {
    let ext = Image(ImageFile { path: img.sibling("img-s002.vmdk") });
    grain_past_eof(&ext);
}

/// A header version qemu does not know.
fn unknown_version(img: &Image) {
    img.set_le32(HDR_VERSION, 4);
}

/// More grain table entries than qemu accepts.
fn grain_table_too_big(img: &Image) {
    img.set_le32(HDR_NUM_GTES, 1024);
}

/// Grains of no sectors.
fn granularity_zero(img: &Image) {
    img.set_le64(HDR_GRANULARITY, 0);
}

/// Grains of 2 GiB.
fn granularity_too_big(img: &Image) {
    img.set_le64(HDR_GRANULARITY, 0x40_0000);
}

/// A capacity whose grain directory size wraps to one entry: the walk
/// reaches sectors no directory entry covers.
fn capacity_beyond_directory(img: &Image) {
    img.set_le64(HDR_CAPACITY, (1u64 << 48) + 65536);
}

/// The footer's end-of-stream marker damaged.
fn end_of_stream_marker_damaged(img: &Image) {
    img.write(img.len() - SECTOR + 12, &[1]);
}

/// The footer marker's type damaged.
fn footer_marker_damaged(img: &Image) {
    img.write(img.len() - 3 * SECTOR + 12, &[2]);
}

/// The footer's copy of the header has a version qemu does not know
/// (the header at the start of the file is left intact).
fn footer_header_unknown_version(img: &Image) {
    let at = img.len() - 2 * SECTOR + HDR_VERSION;
    img.set_le32(at, 4);
}

/// A descriptor whose type qemu does not open from text.
fn descriptor_unknown_type(img: &Image) {
    img.edit_descriptor(|t| t.replace("monolithicFlat", "monolithicFoo"));
}

/// A flat extent line without its offset.
fn descriptor_extent_line_broken(img: &Image) {
    img.edit_descriptor(|t| t.replace("\" 0\n", "\"\n"));
}

/// A descriptor without `CID=` lines at all.
fn descriptor_without_cids(img: &Image) {
    img.edit_embedded_descriptor(|t| t.replace("CID=", "XID="));
}

/// The backing file removed.
fn backing_file_missing(img: &Image) {
    std::fs::remove_file(img.sibling("base.vmdk")).unwrap();
}

/// The backing file replaced by a file that is not a vmdk image.
fn backing_file_not_vmdk(img: &Image) {
    std::fs::write(img.sibling("base.vmdk"), vec![0u8; 4096]).unwrap();
}

#[rstest]
#[case::grain_past_eof(Base::Data(""), grain_past_eof as Damage)]
#[case::grain_at_eof(Base::Data(""), grain_at_eof as Damage)]
#[case::last_grain_cut_off(Base::Data(""), last_grain_cut_off as Damage)]
#[case::grain_past_eof_zeroed_grain(Base::Data("zeroed_grain=on"), grain_past_eof as Damage)]
#[case::grain_past_eof_empty(Base::Empty("", "1G"), grain_past_eof as Damage)]
#[case::grain_past_eof_stream_optimized(Base::Data("subformat=streamOptimized"), grain_past_eof as Damage)]
#[case::truncated_metadata(Base::Data(""), truncated_metadata as Damage)]
#[case::flat_extent_emptied(Base::Data("subformat=monolithicFlat"), flat_extent_emptied as Damage)]
#[case::second_flat_extent_emptied(Base::Empty("subformat=twoGbMaxExtentFlat", "3G"), second_flat_extent_emptied as Damage)]
#[case::sparse_extent_missing(Base::Empty("subformat=twoGbMaxExtentSparse", "5G"), sparse_extent_missing as Damage)]
#[case::grain_past_eof_in_second_extent(Base::Empty("subformat=twoGbMaxExtentSparse", "5G"), grain_past_eof_in_second_extent as Damage)]
#[case::unknown_version(Base::Data(""), unknown_version as Damage)]
#[case::grain_table_too_big(Base::Data(""), grain_table_too_big as Damage)]
#[case::granularity_zero(Base::Data(""), granularity_zero as Damage)]
#[case::granularity_too_big(Base::Data(""), granularity_too_big as Damage)]
#[case::capacity_beyond_directory(Base::Data(""), capacity_beyond_directory as Damage)]
#[case::end_of_stream_marker_damaged(Base::Footer, end_of_stream_marker_damaged as Damage)]
#[case::footer_marker_damaged(Base::Footer, footer_marker_damaged as Damage)]
#[case::footer_header_unknown_version(Base::Footer, footer_header_unknown_version as Damage)]
#[case::descriptor_unknown_type(Base::Empty("subformat=monolithicFlat", "1M"), descriptor_unknown_type as Damage)]
#[case::descriptor_extent_line_broken(Base::Empty("subformat=monolithicFlat", "1M"), descriptor_extent_line_broken as Damage)]
#[case::descriptor_without_cids(Base::Data(""), descriptor_without_cids as Damage)]
#[case::backing_file_missing(Base::Child, backing_file_missing as Damage)]
#[case::backing_file_not_vmdk(Base::Child, backing_file_not_vmdk as Damage)]
fn check_damage_vmdk(#[case] base: Base, #[case] damage: Damage) {
    let Some(s) = Sandbox::new() else { return };
    let img = base.build(&s);
    assert_clean(&s, checks(&s));
    damage(&img);
    assert_detected(&s, checks(&s));
}

#[rstest]
#[case::default_1m(Base::Empty("", "1M"))]
#[case::default_64m(Base::Empty("", "64M"))]
#[case::default_1g(Base::Empty("", "1G"))]
#[case::stream_optimized_1g(Base::Empty("subformat=streamOptimized", "1G"))]
#[case::monolithic_flat(Base::Empty("subformat=monolithicFlat", "1G"))]
#[case::split_sparse(Base::Empty("subformat=twoGbMaxExtentSparse", "5G"))]
#[case::split_flat(Base::Empty("subformat=twoGbMaxExtentFlat", "5G"))]
#[case::zeroed_grain(Base::Empty("zeroed_grain=on", "1G"))]
#[case::large_virtual_size(Base::Empty("", "100G"))]
#[case::guest_data(Base::Data(""))]
#[case::guest_data_stream_optimized(Base::Data("subformat=streamOptimized"))]
#[case::guest_data_split_sparse(Base::Data("subformat=twoGbMaxExtentSparse"))]
#[case::guest_data_flat(Base::Data("subformat=monolithicFlat"))]
#[case::footer(Base::Footer)]
#[case::child(Base::Child)]
fn check_clean_vmdk(#[case] base: Base) {
    let Some(s) = Sandbox::new() else { return };
    base.build(&s);
    assert_clean(&s, checks(&s));
}
