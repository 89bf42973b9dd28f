//! Persistent dirty bitmaps (`block/qcow2-bitmap.c`): the bitmap directory
//! and bitmap tables qemu loads when it opens an image (for every command:
//! `info` lists the directory), and the clusters the bitmaps own, which a
//! check counts as referenced. The limits are qemu's, defined once here.

use crate::header::{BitmapsExt, MAX_BITMAP_DIRECTORY_SIZE};
use crate::open::Qcow2Image;
use crate::tables::read_table;
use instar_core::bytes::{be16, be32, be64, c_string};
use instar_core::error::strerror;
use instar_core::file::errno;
use instar_core::ImageFile;
use std::collections::HashSet;

/// Size of a directory entry's fixed part (`Qcow2BitmapDirEntry`).
pub const DIR_ENTRY_SIZE: usize = 24;
/// Largest bitmap table, in entries (`BME_MAX_TABLE_SIZE`).
pub const BME_MAX_TABLE_SIZE: u64 = 0x800_0000;
/// Largest bitmap in bytes (`BME_MAX_PHYS_SIZE`).
pub const BME_MAX_PHYS_SIZE: u64 = 0x2000_0000;
/// Coarsest granularity, as log2 of bytes (`BME_MAX_GRANULARITY_BITS`).
pub const BME_MAX_GRANULARITY_BITS: u8 = 31;
/// Finest granularity, as log2 of bytes (`BME_MIN_GRANULARITY_BITS`).
pub const BME_MIN_GRANULARITY_BITS: u8 = 9;
/// Longest bitmap name (`BME_MAX_NAME_SIZE`).
pub const BME_MAX_NAME_SIZE: u16 = 1023;
/// Flag bits qemu does not know (`BME_RESERVED_FLAGS`): all but in use
/// and auto.
pub const BME_RESERVED_FLAGS: u32 = 0xffff_fffc;
/// The bitmap is in use: it may be inconsistent (`BME_FLAG_IN_USE`).
pub const BME_FLAG_IN_USE: u32 = 1 << 0;
/// The bitmap tracks writes automatically (`BME_FLAG_AUTO`).
pub const BME_FLAG_AUTO: u32 = 1 << 1;
/// The only bitmap type: dirty tracking (`BT_DIRTY_TRACKING_BITMAP`).
const BT_DIRTY_TRACKING_BITMAP: u8 = 1;
/// Bitmap table entry bits that must be zero (`BME_TABLE_ENTRY_RESERVED_MASK`).
const BME_TABLE_ENTRY_RESERVED_MASK: u64 = 0xff00_0000_0000_01fe;
/// Bitmap table entry bits holding the data cluster's offset.
const BME_TABLE_ENTRY_OFFSET_MASK: u64 = 0x00ff_ffff_ffff_fe00;
/// A bitmap table entry without a cluster whose bits all read as ones.
const BME_TABLE_ENTRY_FLAG_ALL_ONES: u64 = 1;

/// One bitmap of the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bitmap {
    /// Offset of its bitmap table.
    pub table_offset: u64,
    /// Entries in its bitmap table.
    pub table_size: u32,
    /// Its flags.
    pub flags: u32,
    /// log2 of the bytes one bit covers.
    pub granularity_bits: u8,
    /// Its name.
    pub name: String,
}

/// Whether a bitmap table entry is well formed (`check_table_entry`).
pub fn table_entry_ok(entry: u64, cluster_size: u64) -> bool {
    if entry & BME_TABLE_ENTRY_RESERVED_MASK != 0 {
        return false;
    }
    let offset = entry & BME_TABLE_ENTRY_OFFSET_MASK;
    offset == 0
        || (entry & BME_TABLE_ENTRY_FLAG_ALL_ONES == 0 && offset.is_multiple_of(cluster_size))
}

/// The offset of a bitmap table entry's data cluster (zero for none).
pub fn table_entry_offset(entry: u64) -> u64 {
    entry & BME_TABLE_ENTRY_OFFSET_MASK
}

/// Whether a directory entry satisfies qemu's constraints
/// (`check_dir_entry`); `len` is the image's virtual size.
fn dir_entry_ok(bm: &Bitmap, entry_type: u8, name_size: u16, cluster_size: u64, len: u64) -> bool {
    let bad = bm.table_size == 0
        || bm.table_offset == 0
        || !bm.table_offset.is_multiple_of(cluster_size)
        || u64::from(bm.table_size) > BME_MAX_TABLE_SIZE
        || bm.granularity_bits > BME_MAX_GRANULARITY_BITS
        || bm.granularity_bits < BME_MIN_GRANULARITY_BITS
        || bm.flags & BME_RESERVED_FLAGS != 0
        || name_size > BME_MAX_NAME_SIZE
        || entry_type != BT_DIRTY_TRACKING_BITMAP;
    if bad {
        return false;
    }
    let phys = u64::from(bm.table_size) * cluster_size;
    if phys > BME_MAX_PHYS_SIZE {
        return false;
    }
    bm.flags & BME_FLAG_IN_USE != 0 || len <= (phys * 8) << bm.granularity_bits
}

/// Reads and checks the bitmap directory of `image` (`bitmap_list_load`),
/// failing with qemu's message. The directory is at most
/// [`MAX_BITMAP_DIRECTORY_SIZE`] bytes, so memory stays bounded.
pub fn load_directory(image: &Qcow2Image, ext: &BitmapsExt) -> Result<Vec<Bitmap>, String> {
    if ext.bitmap_directory_size == 0 {
        return Err("Requested bitmap directory size is zero".to_string());
    }
    if ext.bitmap_directory_size > MAX_BITMAP_DIRECTORY_SIZE {
        return Err("Requested bitmap directory size is too big".to_string());
    }
    let dir = image
        .file
        .read_vec(ext.bitmap_directory_offset, ext.bitmap_directory_size)
        .map_err(|e| format!("Failed to read bitmap directory: {}", strerror(&e)))?;
    parse_directory(&dir, ext.nb_bitmaps, image.cluster_size(), image.total_bytes())
}

/// Parses and checks the bitmap directory `dir` (the bytes the extension
/// points at) of an image with `cluster_size` and a disk of `len` bytes,
/// which should hold `nb_bitmaps` entries: the part of `bitmap_list_load`
/// after the read, failing with qemu's message.
pub fn parse_directory(
    dir: &[u8],
    nb_bitmaps: u32,
    cluster_size: u64,
    len: u64,
) -> Result<Vec<Bitmap>, String> {
    let broken = || "Broken bitmap directory".to_string();
    let mut list = Vec::new();
    let mut at = 0usize;
    while at < dir.len() {
        if at + DIR_ENTRY_SIZE > dir.len() {
            return Err(broken());
        }
        if list.len() as u64 + 1 > u64::from(nb_bitmaps) {
            return Err("More bitmaps found than specified in header extension".to_string());
        }
        let name_size = be16(dir, at + 18);
        let extra = be32(dir, at + 20);
        let entry_len = dir_entry_size(u64::from(name_size), u64::from(extra));
        let next = at as u64 + entry_len;
        if next > dir.len() as u64 {
            return Err(broken());
        }
        if extra != 0 {
            return Err("Bitmap extra data is not supported".to_string());
        }
        let name_at = at + DIR_ENTRY_SIZE;
        let name = c_string(&dir[name_at..name_at + usize::from(name_size)]);
        let bm = Bitmap {
            table_offset: be64(dir, at),
            table_size: be32(dir, at + 8),
            flags: be32(dir, at + 12),
            granularity_bits: dir[at + 17],
            name,
        };
        if !dir_entry_ok(&bm, dir[at + 16], name_size, cluster_size, len) {
            return Err(format!("Bitmap '{}' doesn't satisfy the constraints", bm.name));
        }
        list.push(bm);
        #[allow(clippy::cast_possible_truncation, reason = "at most `dir.len()`, checked above")]
        let next = next as usize;
        at = next;
    }
    if list.len() as u64 != u64::from(nb_bitmaps) {
        return Err("Less bitmaps found than specified in header extension".to_string());
    }
    if at != dir.len() {
        return Err(broken());
    }
    Ok(list)
}

/// Appends `bm`'s directory entry to `dir` as qemu's `bitmap_list_store`
/// writes it: the fixed part, the name, zeros to the next 8 bytes (no
/// extra data). The name is at most [`BME_MAX_NAME_SIZE`] bytes (the
/// caller checked).
pub fn push_dir_entry(dir: &mut Vec<u8>, bm: &Bitmap) {
    let name = bm.name.as_bytes();
    dir.extend_from_slice(&bm.table_offset.to_be_bytes());
    dir.extend_from_slice(&bm.table_size.to_be_bytes());
    dir.extend_from_slice(&bm.flags.to_be_bytes());
    dir.push(BT_DIRTY_TRACKING_BITMAP);
    dir.push(bm.granularity_bits);
    #[allow(clippy::cast_possible_truncation, reason = "at most BME_MAX_NAME_SIZE")]
    dir.extend_from_slice(&(name.len() as u16).to_be_bytes());
    dir.extend_from_slice(&0u32.to_be_bytes());
    dir.extend_from_slice(name);
    dir.resize(dir.len().div_ceil(8) * 8, 0);
}

/// The bytes of a directory entry named `name_len` bytes long
/// and `extra` bytes of extra data (`calc_dir_entry_size`): the fixed
/// part and both, to the next 8 bytes.
pub fn dir_entry_size(name_len: u64, extra: u64) -> u64 {
    (DIR_ENTRY_SIZE as u64)
        .saturating_add(name_len)
        .saturating_add(extra)
        .div_ceil(8)
        .saturating_mul(8)
}

/// A bitmap table entry pointing at the data cluster at `offset`.
pub fn table_entry(offset: u64) -> u64 {
    offset & BME_TABLE_ENTRY_OFFSET_MASK
}

/// Reads a bitmap's table (`bitmap_table_load`, at most
/// [`BME_MAX_TABLE_SIZE`] entries as the directory checked); fails with
/// `EINVAL` when an entry is malformed, as qemu does, or with the read
/// error.
pub fn load_table(
    file: &ImageFile,
    bm: &Bitmap,
    cluster_size: u64,
) -> Result<Vec<u64>, std::io::Error> {
    let table = read_table(file, bm.table_offset, u64::from(bm.table_size))?;
    if table.iter().any(|&e| !table_entry_ok(e, cluster_size)) {
        return Err(errno(rustix::io::Errno::INVAL));
    }
    Ok(table)
}

/// The bytes a bitmap of a disk of `len` bytes at `2^granularity_bits`
/// bytes per bit takes serialized: whole 64-bit words of bits
/// (`bdrv_dirty_bitmap_serialization_size`).
pub fn serialized_size(len: u64, granularity_bits: u8) -> u64 {
    if len == 0 {
        return 0;
    }
    ((len - 1) >> granularity_bits >> 6).saturating_add(1) * 8
}

/// The bits of bitmap `bm` of an image with `cluster_size` and a disk of
/// `len` bytes, serialized (bit `i` in byte `i / 8`), as qemu's
/// `load_bitmap_data` fills the bitmap: a table entry without a cluster
/// reads as zeros, or as ones with the all-ones flag; a data cluster is
/// taken as it is. Bits past the end of the disk are cleared.
///
/// Memory: the table is checked first to hold exactly the clusters the
/// bits need, and a directory entry that passed [`parse_directory`] is
/// at most [`BME_MAX_PHYS_SIZE`] bytes of clusters, so the buffer is
/// bounded by that.
pub fn load_bits(
    file: &ImageFile,
    bm: &Bitmap,
    cluster_size: u64,
    len: u64,
) -> Result<Vec<u8>, std::io::Error> {
    let size = serialized_size(len, bm.granularity_bits);
    let clusters = size.div_ceil(cluster_size);
    if len == 0
        || clusters != u64::from(bm.table_size)
        || clusters > BME_MAX_TABLE_SIZE
        || size > BME_MAX_PHYS_SIZE
    {
        return Err(errno(rustix::io::Errno::INVAL));
    }
    let table = load_table(file, bm, cluster_size)?;
    #[allow(clippy::cast_possible_truncation, reason = "at most BME_MAX_PHYS_SIZE, checked above")]
    let mut bits = vec![0u8; size as usize];
    #[allow(clippy::cast_possible_truncation, reason = "at most 2 MiB (MAX_CLUSTER_BITS)")]
    let cs = cluster_size as usize;
    for (chunk, &entry) in bits.chunks_mut(cs).zip(&table) {
        let at = table_entry_offset(entry);
        if at != 0 {
            file.read_at(at, chunk)?;
        } else if entry & BME_TABLE_ENTRY_FLAG_ALL_ONES != 0 {
            chunk.fill(0xff);
        }
    }
    clear_past_end(&mut bits, ((len - 1) >> bm.granularity_bits) + 1);
    Ok(bits)
}

/// Clears the bits from bit `nbits` on: the rest of the last word, which
/// covers no part of the disk.
fn clear_past_end(bits: &mut [u8], nbits: u64) {
    let first = nbits / 8;
    #[allow(clippy::cast_possible_truncation, reason = "under 8")]
    let keep = (nbits % 8) as u32;
    let Ok(mut i) = usize::try_from(first) else { return };
    if keep != 0 {
        if let Some(b) = bits.get_mut(i) {
            *b &= (1u8 << keep) - 1;
        }
        i += 1;
    }
    if let Some(rest) = bits.get_mut(i..) {
        rest.fill(0);
    }
}

/// Loads every bitmap as qemu does when it opens the image
/// (`qcow2_load_dirty_bitmaps`), failing with qemu's message; returns the
/// directory.
pub fn load_all(image: &Qcow2Image, ext: &BitmapsExt) -> Result<Vec<Bitmap>, String> {
    let list = load_directory(image, ext)?;
    let cluster_size = image.cluster_size();
    let len = image.total_bytes();
    let file = &image.file;
    let mut names = HashSet::new();
    for bm in &list {
        if !names.insert(bm.name.clone()) {
            if bm.flags & BME_FLAG_IN_USE != 0 {
                // An in-use bitmap whose name is already loaded is skipped.
                continue;
            }
            return Err(format!("Bitmap already exists: {}", bm.name));
        }
        if bm.flags & BME_FLAG_IN_USE != 0 {
            continue;
        }
        load_table(file, bm, cluster_size).map_err(|e| {
            format!(
                "Could not read bitmap_table table from image for bitmap '{}': {}",
                bm.name,
                strerror(&e)
            )
        })?;
        // The table must hold exactly the clusters the serialized bitmap
        // (64-bit words of bits) needs.
        let clusters = serialized_size(len, bm.granularity_bits).div_ceil(cluster_size);
        if clusters != u64::from(bm.table_size) || clusters > BME_MAX_TABLE_SIZE {
            return Err(format!(
                "Could not read bitmap '{}' from image: Invalid argument",
                bm.name
            ));
        }
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bitmap(table_size: u32, flags: u32, granularity_bits: u8) -> Bitmap {
        Bitmap { table_offset: 0x30000, table_size, flags, granularity_bits, name: "b".into() }
    }

    #[test]
    fn table_entries_follow_qemu_rules() {
        assert!(table_entry_ok(0, 65536));
        assert!(table_entry_ok(1, 65536)); // all ones, no cluster
        assert!(table_entry_ok(0x50000, 65536));
        assert!(!table_entry_ok(0x50001, 65536)); // all-ones flag with a cluster
        assert!(!table_entry_ok(0x50200, 65536)); // not cluster aligned
        assert!(!table_entry_ok(0x2, 65536)); // reserved bit
        assert_eq!(table_entry_offset(0x8000_0000_0005_0000), 0x5_0000);
    }

    #[test]
    fn directory_entries_round_trip() {
        let bm = Bitmap {
            table_offset: 0x5_0000,
            table_size: 1,
            flags: BME_FLAG_AUTO,
            granularity_bits: 16,
            name: "bm1".into(),
        };
        let mut dir = Vec::new();
        push_dir_entry(&mut dir, &bm);
        assert_eq!(dir.len() as u64, dir_entry_size(3, 0));
        assert_eq!(dir.len(), 32);
        let back = parse_directory(&dir, 1, 65536, 1 << 20).unwrap();
        assert_eq!(back, vec![bm]);
    }

    #[test]
    fn serialized_bits_are_whole_words() {
        assert_eq!(serialized_size(0, 16), 0);
        assert_eq!(serialized_size(1, 16), 8);
        assert_eq!(serialized_size(64 << 16, 16), 8);
        assert_eq!(serialized_size((64 << 16) + 1, 16), 16);
        assert_eq!(serialized_size(4 << 20, 9), 1024);
    }

    #[test]
    fn bits_past_the_disk_are_cleared() {
        let mut bits = vec![0xffu8; 16];
        clear_past_end(&mut bits, 12);
        assert_eq!(bits[..3], [0xff, 0x0f, 0]);
        assert!(bits[2..].iter().all(|&b| b == 0));
        let mut bits = vec![0xffu8; 8];
        clear_past_end(&mut bits, 64);
        assert!(bits.iter().all(|&b| b == 0xff));
    }

    #[test]
    fn directory_entries_must_cover_the_disk() {
        // One 64 KiB table cluster holds 512 Ki bits: 32 GiB at 64 KiB
        // granularity, 256 MiB at 512 bytes.
        let len = 1 << 30;
        assert!(dir_entry_ok(&bitmap(1, 0, 16), 1, 2, 65536, len));
        assert!(!dir_entry_ok(&bitmap(1, 0, 9), 1, 2, 65536, len));
        // An in-use bitmap may be too small (not saved after a resize).
        assert!(dir_entry_ok(&bitmap(1, BME_FLAG_IN_USE, 9), 1, 2, 65536, len));
        assert!(!dir_entry_ok(&bitmap(1, 0, 16), 2, 2, 65536, len)); // unknown type
        assert!(!dir_entry_ok(&bitmap(1, 4, 16), 1, 2, 65536, len)); // reserved flag
        assert!(!dir_entry_ok(&bitmap(0, 0, 16), 1, 2, 65536, len));
        assert!(!dir_entry_ok(&bitmap(1, 0, 32), 1, 2, 65536, len));
    }
}
