//! `instar check` on damaged qcow2 images, against `qemu-img check`.
//!
//! Every case builds a fresh image with qemu-img in a temporary folder
//! (empty, with guest data written through `qemu-img convert`, compressed,
//! with snapshots or bitmaps), damages its metadata by editing bytes, then
//! runs `qemu-img check` and `instar check`, human and JSON, on the same
//! file. stdout, stderr (qemu-img's program-name prefix read as instar's)
//! and the exit code must be identical, and the exit code must not be 0:
//! each case proves that the damage is detected, and reported as qemu
//! reports it. `check_clean_qcow2` does the same for undamaged images of
//! every kind qemu-img creates, which must check clean.

use super::{assert_clean, assert_detected, compare_checks, qemu_convert, qemu_create};
use crate::util::edit::{write_guest_data, ImageFile};
use crate::util::Sandbox;
use rstest::rstest;

/// The image every case checks, relative to the case's folder so that
/// outputs name it the same way for both programs.
const IMAGE: &str = "img.qcow2";
/// Guest data for images that need allocated clusters: 1 MiB with two
/// runs of non-zero bytes, [0, 128 KiB) and [512 KiB, 576 KiB). With the
/// default 64 KiB clusters, `qemu-img convert` allocates guest clusters 0,
/// 1 and 8 at host clusters 5, 6 and 7.
const DATA_SIZE: usize = 1 << 20;
const DATA_RUNS: [(usize, usize, u8); 2] = [(0, 128 << 10, 0xa5), (512 << 10, 576 << 10, 0x5a)];

/// Header field offsets (`docs/interop/qcow2.txt`).
const HDR_VERSION: u64 = 4;
const HDR_CLUSTER_BITS: u64 = 20;
const HDR_SIZE: u64 = 24;
const HDR_L1_SIZE: u64 = 36;
const HDR_L1_OFFSET: u64 = 40;
const HDR_REFTABLE_OFFSET: u64 = 48;
const HDR_REFTABLE_CLUSTERS: u64 = 56;
const HDR_NB_SNAPSHOTS: u64 = 60;
const HDR_SNAPSHOTS_OFFSET: u64 = 64;
const HDR_CRYPT_METHOD: u64 = 32;
const HDR_INCOMPATIBLE: u64 = 72;
const HDR_COMPATIBLE: u64 = 80;
const HDR_AUTOCLEAR: u64 = 88;
const HDR_REFCOUNT_ORDER: u64 = 96;
/// Entry flags.
const COPIED: u64 = 1 << 63;
const COMPRESSED: u64 = 1 << 62;
const ZERO: u64 = 1;
const OFFSET_MASK: u64 = 0x00ff_ffff_ffff_fe00;
/// Incompatible feature bits.
const INCOMPAT_DIRTY: u64 = 1;
const INCOMPAT_CORRUPT: u64 = 2;
/// Compatible feature bit: lazy refcounts.
const COMPAT_LAZY_REFCOUNTS: u64 = 1;
/// Bytes of a snapshot table entry's fixed part, and the offset of its
/// extra data size.
const SNAPSHOT_EXTRA_SIZE_AT: u64 = 36;
/// The bitmaps header extension's magic.
const EXT_BITMAPS: u32 = 0x2385_2875;

/// Checks the image with both programs, human and JSON, and asserts they
/// agree; returns qemu-img's exit code.
fn checks(s: &Sandbox) -> Option<i32> {
    compare_checks(
        s,
        &[
            &["check", "-f", "qcow2", "--output=human", IMAGE],
            &["check", "-f", "qcow2", "--output=json", IMAGE],
        ],
    )
}

/// A qcow2 image under test, read and edited in place.
struct Image(ImageFile);

impl std::ops::Deref for Image {
    type Target = ImageFile;

    fn deref(&self) -> &ImageFile {
        &self.0
    }
}

impl Image {
    fn cluster_size(&self) -> u64 {
        1 << self.be32(HDR_CLUSTER_BITS)
    }

    fn refcount_order(&self) -> u32 {
        if self.be32(HDR_VERSION) == 2 {
            4
        } else {
            self.be32(HDR_REFCOUNT_ORDER)
        }
    }

    fn l1_offset(&self) -> u64 {
        self.be64(HDR_L1_OFFSET)
    }

    fn reftable_offset(&self) -> u64 {
        self.be64(HDR_REFTABLE_OFFSET)
    }

    /// The offset of the first L2 table.
    fn l2_offset(&self) -> u64 {
        self.be64(self.l1_offset()) & OFFSET_MASK
    }

    /// Where entry `i` of the first L2 table is stored.
    fn l2_entry_at(&self, i: u64) -> u64 {
        self.l2_offset() + i * 8
    }

    /// Entry `i` of the first L2 table.
    fn l2_entry(&self, i: u64) -> u64 {
        self.be64(self.l2_entry_at(i))
    }

    /// The host cluster index of the data behind entry `i` of the first
    /// L2 table.
    fn data_cluster(&self, i: u64) -> u64 {
        (self.l2_entry(i) & OFFSET_MASK) / self.cluster_size()
    }

    /// Sets the recorded refcount of host cluster `index`, whatever the
    /// refcount width; a refcount block must already cover the cluster.
    fn set_refcount(&self, index: u64, value: u64) {
        let order = self.refcount_order();
        let bits = 1u64 << order;
        let block_bits = u64::from(self.be32(HDR_CLUSTER_BITS)) + 3 - u64::from(order);
        let slot = index & ((1 << block_bits) - 1);
        let block = self.be64(self.reftable_offset() + (index >> block_bits) * 8) & !0x1ff;
        assert_ne!(block, 0, "no refcount block covers cluster {index}");
        if bits >= 8 {
            let width = bits / 8;
            let bytes = value.to_be_bytes();
            self.write(block + slot * width, &bytes[8 - width as usize..]);
        } else {
            let at = block + slot * bits / 8;
            let shift = (slot * bits) % 8;
            let mask = ((1u8 << bits) - 1) << shift;
            let old = self.read(at, 1)[0];
            self.write(at, &[(old & !mask) | (((value as u8) << shift) & mask)]);
        }
    }

    /// Grows the file by `n` clusters; returns the index of the first.
    fn append_clusters(&self, n: u64) -> u64 {
        let cs = self.cluster_size();
        let first = self.len().div_ceil(cs);
        self.set_len((first + n) * cs);
        first
    }

    /// Offset of the first snapshot table entry.
    fn snapshot_table(&self) -> u64 {
        assert!(self.be32(HDR_NB_SNAPSHOTS) > 0, "the image has no snapshot");
        self.be64(HDR_SNAPSHOTS_OFFSET)
    }

    /// Offset of the bitmaps extension's data in the header.
    fn bitmaps_extension(&self) -> u64 {
        let mut at = if self.be32(HDR_VERSION) == 2 { 72 } else { u64::from(self.be32(100)) };
        loop {
            let (magic, len) = (self.be32(at), u64::from(self.be32(at + 4)));
            assert_ne!(magic, 0, "the image has no bitmaps extension");
            if magic == EXT_BITMAPS {
                return at + 8;
            }
            at += 8 + len.div_ceil(8) * 8;
        }
    }

    /// Offset of the first bitmap's table (from the bitmap directory).
    fn first_bitmap_table(&self) -> u64 {
        let dir = self.be64(self.bitmaps_extension() + 16);
        self.be64(dir)
    }
}

/// How a case's image is made before it is damaged.
#[derive(Debug, Clone, Copy)]
enum Base {
    /// `qemu-img create` with these `-o` options and size.
    Empty(&'static str, &'static str),
    /// `qemu-img convert` of the guest data, with these `-o` options.
    Data(&'static str),
    /// As `Data`, compressed (`-c`).
    Compressed,
    /// As `Data`, then two internal snapshots (`qemu-img snapshot -c`).
    Snapshots,
    /// As `Data`, then a persistent bitmap (`qemu-img bitmap --add`).
    Bitmap,
}

impl Base {
    /// Makes the image in the sandbox.
    fn build(self, s: &Sandbox) -> Image {
        match self {
            Base::Empty(options, size) => {
                qemu_create(s, "qcow2", options, IMAGE, size);
            }
            Base::Data(options) => {
                write_guest_data(&s.file("data.raw"), DATA_SIZE, &DATA_RUNS);
                qemu_convert(s, "qcow2", &[], options, "data.raw", IMAGE);
            }
            Base::Compressed => {
                write_guest_data(&s.file("data.raw"), DATA_SIZE, &DATA_RUNS);
                qemu_convert(s, "qcow2", &["-c"], "", "data.raw", IMAGE);
            }
            Base::Snapshots => {
                Base::Data("").build(s);
                s.qemu_ok(&["snapshot", "-c", "first", IMAGE]);
                s.qemu_ok(&["snapshot", "-c", "second", IMAGE]);
            }
            Base::Bitmap => {
                Base::Data("").build(s);
                s.qemu_ok(&["bitmap", "--add", IMAGE, "bm0"]);
            }
        }
        Image(ImageFile { path: s.file(IMAGE) })
    }
}

/// A damage done to an image.
type Damage = fn(&Image);

fn leaked_cluster(img: &Image) {
    let c = img.append_clusters(1);
    img.set_refcount(c, 1);
}

fn refcount_too_low(img: &Image) {
    img.set_refcount(img.data_cluster(0), 0);
}

fn refcount_too_high(img: &Image) {
    img.set_refcount(img.data_cluster(0), 2);
}

fn l2_entry_past_eof(img: &Image) {
    img.set_be64(img.l2_entry_at(2), COPIED | (100 * img.cluster_size()));
}

fn two_l2_entries_one_cluster(img: &Image) {
    img.set_be64(img.l2_entry_at(1), img.l2_entry(0));
}

fn misaligned_l2_entry(img: &Image) {
    img.set_be64(img.l2_entry_at(1), img.l2_entry(1) + 0x200);
}

fn misaligned_preallocated_zero_entry(img: &Image) {
    img.set_be64(img.l2_entry_at(1), (img.l2_entry(1) + 0x200) | ZERO);
}

fn misaligned_l1_entry(img: &Image) {
    let at = img.l1_offset();
    img.set_be64(at, img.be64(at) + 0x200);
}

fn reftable_entry_past_eof(img: &Image) {
    img.set_be64(img.reftable_offset() + 8, 256 * img.cluster_size());
}

fn reftable_entry_misaligned(img: &Image) {
    let at = img.reftable_offset();
    img.set_be64(at, img.be64(at) + 0x200);
}

fn reftable_entry_reserved_bits(img: &Image) {
    let at = img.reftable_offset();
    img.set_be64(at, img.be64(at) | 1);
}

fn refblock_overlaps_l1(img: &Image) {
    img.set_be64(img.reftable_offset(), img.l1_offset());
}

fn reftable_emptied(img: &Image) {
    img.set_be64(img.reftable_offset(), 0);
}

fn l1_entry_reserved_bits(img: &Image) {
    let at = img.l1_offset();
    img.set_be64(at, img.be64(at) | 1 << 60);
}

fn l2_entry_reserved_bits(img: &Image) {
    img.set_be64(img.l2_entry_at(0), img.l2_entry(0) | 1 << 58);
}

fn l1_entry_without_copied(img: &Image) {
    let at = img.l1_offset();
    img.set_be64(at, img.be64(at) & !COPIED);
}

fn l2_entry_without_copied(img: &Image) {
    img.set_be64(img.l2_entry_at(0), img.l2_entry(0) & !COPIED);
}

fn l1_entry_past_eof(img: &Image) {
    img.set_be64(img.l1_offset(), COPIED | (50 * img.cluster_size()));
}

fn l2_table_refcount_two(img: &Image) {
    img.set_refcount(img.l2_offset() / img.cluster_size(), 2);
}

fn header_refcount_zero(img: &Image) {
    img.set_refcount(0, 0);
}

fn compressed_entry_with_copied(img: &Image) {
    img.set_be64(img.l2_entry_at(1), img.l2_entry(1) | COPIED);
}

fn compressed_entry_past_eof(img: &Image) {
    img.set_be64(img.l2_entry_at(1), COMPRESSED | (200 * img.cluster_size()));
}

fn refcount_overflow(img: &Image) {
    // With 1-bit refcounts a second reference cannot be counted.
    two_l2_entries_one_cluster(img);
}

fn truncated_file(img: &Image) {
    img.set_len(img.len() / 2 + 1000);
}

fn dirty_lazy_refcounts(img: &Image) {
    // What a crash with lazy refcounts leaves: the dirty bit set and
    // refcounts not yet written for newly allocated clusters.
    img.set_be64(HDR_INCOMPATIBLE, img.be64(HDR_INCOMPATIBLE) | INCOMPAT_DIRTY);
    img.set_be64(HDR_COMPATIBLE, img.be64(HDR_COMPATIBLE) | COMPAT_LAZY_REFCOUNTS);
    for i in [0, 1, 8] {
        img.set_refcount(img.data_cluster(i), 0);
    }
}

fn corrupt_bit_and_leak(img: &Image) {
    img.set_be64(HDR_INCOMPATIBLE, img.be64(HDR_INCOMPATIBLE) | INCOMPAT_CORRUPT);
    leaked_cluster(img);
}

fn extended_l2_bad_bitmap(img: &Image) {
    // Allocated and zero bits set for the same subcluster.
    img.set_be64(img.l2_offset() + 8, 0x0000_0001_0000_0001);
}

fn extended_l2_unallocated_with_bitmap(img: &Image) {
    img.set_be64(img.l2_offset() + 3 * 16 + 8, 1);
}

fn snapshot_l1_misaligned(img: &Image) {
    let at = img.snapshot_table();
    img.set_be64(at, img.be64(at) + 0x200);
}

fn snapshot_l1_past_eof(img: &Image) {
    img.set_be64(img.snapshot_table(), 0x700_0000);
}

fn snapshot_entry_incomplete(img: &Image) {
    // One more snapshot than the table holds: the zeros after the last
    // entry read as an entry without the extra data version 3 requires.
    img.set_be32(HDR_NB_SNAPSHOTS, img.be32(HDR_NB_SNAPSHOTS) + 1);
}

fn snapshot_extra_data_too_large(img: &Image) {
    img.set_be32(img.snapshot_table() + SNAPSHOT_EXTRA_SIZE_AT, 5000);
}

fn snapshot_table_misaligned(img: &Image) {
    img.set_be64(HDR_SNAPSHOTS_OFFSET, img.be64(HDR_SNAPSHOTS_OFFSET) + 8);
}

fn snapshot_table_too_many(img: &Image) {
    img.set_be32(HDR_NB_SNAPSHOTS, 70_000);
}

fn bitmap_data_past_eof(img: &Image) {
    img.set_be64(img.first_bitmap_table(), 0x700_0000);
}

fn l1_table_misaligned_in_header(img: &Image) {
    img.set_be64(HDR_L1_OFFSET, img.l1_offset() + 0x200);
}

fn l1_table_too_small(img: &Image) {
    img.set_be64(HDR_SIZE, 1 << 40);
}

fn reftable_too_large(img: &Image) {
    img.set_be32(HDR_REFTABLE_CLUSTERS, 100_000);
}

fn unknown_incompatible_feature(img: &Image) {
    img.set_be64(HDR_INCOMPATIBLE, 1 << 20);
}

fn l1_size_zero(img: &Image) {
    img.set_be32(HDR_L1_SIZE, 0);
}

#[rstest]
#[case::leaked_cluster(Base::Data(""), leaked_cluster as Damage)]
#[case::refcount_too_low(Base::Data(""), refcount_too_low as Damage)]
#[case::refcount_too_high(Base::Data(""), refcount_too_high as Damage)]
#[case::l2_entry_past_eof(Base::Data(""), l2_entry_past_eof as Damage)]
#[case::two_l2_entries_one_cluster(Base::Data(""), two_l2_entries_one_cluster as Damage)]
#[case::misaligned_l2_entry(Base::Data(""), misaligned_l2_entry as Damage)]
#[case::misaligned_l1_entry(Base::Data(""), misaligned_l1_entry as Damage)]
#[case::reftable_entry_past_eof(Base::Data(""), reftable_entry_past_eof as Damage)]
#[case::reftable_entry_misaligned(Base::Data(""), reftable_entry_misaligned as Damage)]
#[case::refblock_overlaps_l1(Base::Data(""), refblock_overlaps_l1 as Damage)]
#[case::misaligned_preallocated_zero_entry(Base::Data(""), misaligned_preallocated_zero_entry as Damage)]
#[case::reftable_entry_reserved_bits(Base::Data(""), reftable_entry_reserved_bits as Damage)]
#[case::reftable_emptied(Base::Data(""), reftable_emptied as Damage)]
#[case::l1_entry_reserved_bits(Base::Data(""), l1_entry_reserved_bits as Damage)]
#[case::l2_entry_reserved_bits(Base::Data(""), l2_entry_reserved_bits as Damage)]
#[case::l1_entry_without_copied(Base::Data(""), l1_entry_without_copied as Damage)]
#[case::l2_entry_without_copied(Base::Data(""), l2_entry_without_copied as Damage)]
#[case::l1_entry_past_eof(Base::Data(""), l1_entry_past_eof as Damage)]
#[case::l2_table_refcount_two(Base::Data(""), l2_table_refcount_two as Damage)]
#[case::header_refcount_zero(Base::Data(""), header_refcount_zero as Damage)]
#[case::truncated_file(Base::Data(""), truncated_file as Damage)]
#[case::dirty_lazy_refcounts(Base::Data(""), dirty_lazy_refcounts as Damage)]
#[case::corrupt_bit_and_leak(Base::Data(""), corrupt_bit_and_leak as Damage)]
#[case::compressed_entry_with_copied(Base::Compressed, compressed_entry_with_copied as Damage)]
#[case::compressed_entry_past_eof(Base::Compressed, compressed_entry_past_eof as Damage)]
#[case::refcount_overflow_1bit(Base::Data("refcount_bits=1"), refcount_overflow as Damage)]
#[case::leaked_cluster_8bit(Base::Data("refcount_bits=8"), leaked_cluster as Damage)]
#[case::refcount_too_low_64bit(Base::Data("refcount_bits=64"), refcount_too_low as Damage)]
#[case::leaked_cluster_512b(Base::Data("cluster_size=512"), leaked_cluster as Damage)]
#[case::two_l2_entries_one_cluster_2m(Base::Data("cluster_size=2M"), two_l2_entries_one_cluster as Damage)]
#[case::refcount_too_low_compat_v2(Base::Data("compat=0.10"), refcount_too_low as Damage)]
#[case::extended_l2_bad_bitmap(Base::Data("extended_l2=on"), extended_l2_bad_bitmap as Damage)]
#[case::extended_l2_unallocated_with_bitmap(Base::Data("extended_l2=on"), extended_l2_unallocated_with_bitmap as Damage)]
#[case::misaligned_l2_entry_extended_l2(Base::Data("extended_l2=on"), misaligned_l2_entry as Damage)]
#[case::preallocated_metadata_past_eof(Base::Empty("preallocation=metadata", "1M"), l2_entry_past_eof as Damage)]
#[case::snapshot_l1_misaligned(Base::Snapshots, snapshot_l1_misaligned as Damage)]
#[case::snapshot_l1_past_eof(Base::Snapshots, snapshot_l1_past_eof as Damage)]
#[case::snapshot_entry_incomplete(Base::Snapshots, snapshot_entry_incomplete as Damage)]
#[case::snapshot_extra_data_too_large(Base::Snapshots, snapshot_extra_data_too_large as Damage)]
#[case::snapshot_table_misaligned(Base::Snapshots, snapshot_table_misaligned as Damage)]
#[case::snapshot_table_too_many(Base::Snapshots, snapshot_table_too_many as Damage)]
#[case::bitmap_data_past_eof(Base::Bitmap, bitmap_data_past_eof as Damage)]
#[case::header_l1_table_misaligned(Base::Data(""), l1_table_misaligned_in_header as Damage)]
#[case::header_l1_table_too_small(Base::Data(""), l1_table_too_small as Damage)]
#[case::header_reftable_too_large(Base::Data(""), reftable_too_large as Damage)]
#[case::header_unknown_incompatible_feature(Base::Data(""), unknown_incompatible_feature as Damage)]
#[case::header_l1_size_zero(Base::Data(""), l1_size_zero as Damage)]
fn check_damage_qcow2(#[case] base: Base, #[case] damage: Damage) {
    let Some(s) = Sandbox::new() else { return };
    let img = base.build(&s);
    assert_clean(&s, checks(&s));
    damage(&img);
    assert_detected(&s, checks(&s));
}

fn crypt_method_invalid(img: &Image) {
    img.set_be32(HDR_CRYPT_METHOD, 0xffff_fffe);
}

fn crypt_method_aes(img: &Image) {
    img.set_be32(HDR_CRYPT_METHOD, 1);
}

fn virtual_size_wraps(img: &Image) {
    img.set_be64(HDR_SIZE, u64::MAX);
}

/// The bitmap directory's size, at `size`.
fn bitmap_directory_size(img: &Image, size: u64) {
    img.set_be64(img.bitmaps_extension() + 8, size);
}

/// One byte over qemu's cap (`1024 * 65535`), still under `64 << 20`.
fn bitmap_directory_over_cap(img: &Image) {
    bitmap_directory_size(img, 1024 * 65535 + 1);
}

/// `64 << 20`: over qemu's cap.
fn bitmap_directory_64m(img: &Image) {
    bitmap_directory_size(img, 64 << 20);
}

/// The autoclear bit that vouches for the bitmaps, cleared (as a program
/// without bitmap support leaves it): qemu warns while opening.
fn bitmaps_autoclear_cleared(img: &Image) {
    img.set_be64(HDR_AUTOCLEAR, img.be64(HDR_AUTOCLEAR) & !1);
}

/// As `bitmaps_autoclear_cleared`, and the open then fails later.
fn bitmaps_autoclear_cleared_then_fails(img: &Image) {
    img.set_be64(HDR_AUTOCLEAR, 2);
}

/// As `bitmaps_autoclear_cleared`, and an unknown incompatible feature.
fn bitmaps_autoclear_cleared_unknown_feature(img: &Image) {
    img.set_be64(HDR_AUTOCLEAR, 0);
    img.set_be64(HDR_INCOMPATIBLE, 1 << 56);
}

/// Damages `info` and `check` open the same way: both must print what
/// qemu-img prints (human and JSON, probed and with `-f`). Before instar
/// had one qcow2 open, info and check each had their own, and these cases
/// caught where they had drifted from qemu and from each other.
#[rstest]
#[case::crypt_method_invalid(Base::Data(""), crypt_method_invalid as Damage)]
#[case::crypt_method_aes(Base::Data(""), crypt_method_aes as Damage)]
#[case::virtual_size_wraps(Base::Data(""), virtual_size_wraps as Damage)]
#[case::bitmap_directory_over_cap(Base::Bitmap, bitmap_directory_over_cap as Damage)]
#[case::bitmap_directory_64m(Base::Bitmap, bitmap_directory_64m as Damage)]
#[case::bitmaps_autoclear_cleared(Base::Bitmap, bitmaps_autoclear_cleared as Damage)]
#[case::bitmaps_autoclear_cleared_then_fails(Base::Bitmap, bitmaps_autoclear_cleared_then_fails as Damage)]
#[case::bitmaps_autoclear_cleared_unknown_feature(Base::Bitmap, bitmaps_autoclear_cleared_unknown_feature as Damage)]
fn open_damage_qcow2(#[case] base: Base, #[case] damage: Damage) {
    let Some(s) = Sandbox::new() else { return };
    let img = base.build(&s);
    damage(&img);
    compare_checks(
        &s,
        &[
            &["info", IMAGE],
            &["info", "--output=json", IMAGE],
            &["info", "-f", "qcow2", IMAGE],
            &["check", IMAGE],
            &["check", "-f", "qcow2", "--output=json", IMAGE],
        ],
    );
}

#[rstest]
#[case::default_1m(Base::Empty("", "1M"))]
#[case::default_64m(Base::Empty("", "64M"))]
#[case::default_1g(Base::Empty("", "1G"))]
#[case::cluster_512(Base::Empty("cluster_size=512", "1G"))]
#[case::cluster_4k(Base::Empty("cluster_size=4k", "1G"))]
#[case::cluster_1m(Base::Empty("cluster_size=1M", "1G"))]
#[case::cluster_2m(Base::Empty("cluster_size=2M", "1G"))]
#[case::refcount_bits_1(Base::Empty("refcount_bits=1", "1G"))]
#[case::refcount_bits_8(Base::Empty("refcount_bits=8", "1G"))]
#[case::refcount_bits_64(Base::Empty("refcount_bits=64", "1G"))]
#[case::extended_l2(Base::Empty("extended_l2=on,cluster_size=64k", "1G"))]
#[case::compat_v2(Base::Empty("compat=0.10", "1G"))]
#[case::lazy_refcounts(Base::Empty("lazy_refcounts=on", "1G"))]
#[case::zstd(Base::Empty("compression_type=zstd", "1G"))]
#[case::prealloc_metadata(Base::Empty("preallocation=metadata", "1M"))]
#[case::prealloc_falloc(Base::Empty("preallocation=falloc", "1M"))]
#[case::prealloc_full(Base::Empty("preallocation=full", "1M"))]
#[case::prealloc_metadata_512(Base::Empty("preallocation=metadata,cluster_size=512", "16M"))]
#[case::huge_virtual_size(Base::Empty("", "100T"))]
#[case::odd_virtual_size(Base::Empty("", "1000000"))]
#[case::guest_data(Base::Data(""))]
#[case::guest_data_refcount_bits_1(Base::Data("refcount_bits=1"))]
#[case::guest_data_extended_l2(Base::Data("extended_l2=on"))]
#[case::guest_data_cluster_512(Base::Data("cluster_size=512"))]
#[case::compressed(Base::Compressed)]
#[case::snapshots(Base::Snapshots)]
#[case::bitmap(Base::Bitmap)]
fn check_clean_qcow2(#[case] base: Base) {
    let Some(s) = Sandbox::new() else { return };
    base.build(&s);
    assert_clean(&s, checks(&s));
}

#[test]
fn check_clean_qcow2_with_backing_file() {
    let Some(s) = Sandbox::new() else { return };
    Base::Data("").build(&s);
    std::fs::rename(s.file(IMAGE), s.file("base.qcow2")).unwrap();
    s.qemu_ok(&["create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", IMAGE]);
    assert_clean(&s, checks(&s));
    // Without its backing file the image cannot be opened.
    std::fs::remove_file(s.file("base.qcow2")).unwrap();
    let code = checks(&s);
    s.t.check(code == Some(1), || format!("qemu-img check exited {code:?}, not 1"));
}
