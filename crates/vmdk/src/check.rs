//! `check` for vmdk, with qemu's semantics (`vmdk_co_check`).
//!
//! Opening the image already checks its structure: headers, the
//! stream-optimized footer and end-of-stream marker, grain and directory
//! sizes, the file holding its metadata, every extent file (see
//! [`crate::image`]). The check then walks the guest disk grain by grain,
//! in every extent, and looks each grain up through the grain directory
//! and its grain table: a lookup outside the directory, or a grain (or a
//! flat extent) starting at or after the end of its file, is corruption.
//! Like qemu, the walk stops at the first problem, prints one `ERROR` line
//! and fails the check (qemu-img then prints `Check failed: <errno text>`
//! and exits 1; it never reports a count of vmdk corruptions).
//!
//! Unlike qemu, which looks up every grain of the disk one by one (minutes
//! for a 100 TiB image), instar skips whole grain tables that are
//! unallocated, lie in holes of the file, or point at no grain past the end
//! of the file; the first problem found, and so the output, is the same.

use crate::grain::{entry, entry64};
use crate::image::{Extent, ExtentKind, Image, NodeFile, SparseExtent};
use crate::sesparse::{self, DirEntry, GrainEntry};

/// `EINVAL`.
pub const EINVAL: i32 = 22;
/// `EPERM`: what qemu's check returns after a failed lookup (its
/// `VMDK_ERROR` is -1, which qemu-img prints as an errno).
pub const EPERM: i32 = 1;

/// Data segments kept for hole detection; beyond this the file is treated
/// as all data (correct, only slower).
const MAX_SEGMENTS: usize = 1 << 20;

/// How a check ended.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CheckOutcome {
    /// Lines printed on stderr before the result.
    pub messages: Vec<String>,
    /// The errno the check failed with (qemu-img prints `Check failed:
    /// strerror(errno)` and exits 1), `None` for a clean image.
    pub failed: Option<i32>,
}

impl CheckOutcome {
    fn fail(message: String, errno: i32) -> CheckOutcome {
        CheckOutcome { messages: vec![message], failed: Some(errno) }
    }
}

/// The byte ranges of a file that hold data (`SEEK_DATA`/`SEEK_HOLE`), or
/// `None` when the file system cannot tell.
fn data_segments(f: &NodeFile) -> Option<Vec<(u64, u64)>> {
    let mut out = Vec::new();
    let mut pos = 0u64;
    while pos < f.file.len() {
        let Some(start) = f.file.seek_data(pos).ok()? else {
            break;
        };
        let end = f.file.seek_hole(start).ok()?;
        if end <= start || out.len() >= MAX_SEGMENTS {
            return None;
        }
        out.push((start, end));
        pos = end;
    }
    Some(out)
}

/// Reads of one extent file, skipping ranges that are holes.
struct Reader<'a> {
    file: &'a NodeFile,
    segments: Option<Vec<(u64, u64)>>,
}

impl<'a> Reader<'a> {
    fn new(file: &'a NodeFile) -> Reader<'a> {
        Reader { file, segments: data_segments(file) }
    }

    /// Whether `[offset, offset + len)` holds only zeros because the file
    /// has no data there.
    fn is_hole(&self, offset: u64, len: u64) -> bool {
        if offset >= self.file.file.len() {
            return true;
        }
        let Some(segs) = &self.segments else { return false };
        let end = offset.saturating_add(len);
        // The first segment ending after `offset`.
        let i = segs.partition_point(|&(_, e)| e <= offset);
        segs.get(i).is_none_or(|&(s, _)| s >= end)
    }

    fn read(&self, offset: u64, len: usize) -> Option<Vec<u8>> {
        if self.is_hole(offset, len as u64) {
            None
        } else {
            Some(self.file.read(offset, len))
        }
    }
}

/// What a lookup finds for one grain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Grain {
    /// Not allocated (or reading as zeros).
    Unallocated,
    /// Allocated at this byte offset of the extent file.
    At(u64),
    /// An entry qemu cannot interpret (qemu's `VMDK_ERROR`).
    Invalid,
}

/// Reads grain table entries of one extent.
fn grain(sp: &SparseExtent, cluster_sectors: u64, table: &[u8], index: u64) -> Grain {
    match sp.se {
        None => {
            let v = entry(table, index);
            if v == 0 || (sp.has_zero_grain && v == 1) {
                Grain::Unallocated
            } else {
                Grain::At(u64::from(v) << 9)
            }
        }
        Some(areas) => match sesparse::grain_entry(entry64(table, index)) {
            GrainEntry::None | GrainEntry::Zero => Grain::Unallocated,
            GrainEntry::Invalid => Grain::Invalid,
            GrainEntry::Grain(i) => Grain::At(
                areas.clusters_offset.wrapping_add(i.wrapping_mul(cluster_sectors)).wrapping_shl(9),
            ),
        },
    }
}

/// The grain table behind grain directory entry `q`: `Ok(None)` when
/// there is none, `Err(())` for an entry qemu cannot interpret.
fn table_sector(sp: &SparseExtent, l1: &[u8], q: u32) -> Result<Option<u32>, ()> {
    let sector = match sp.se {
        None => u64::from(entry(l1, u64::from(q))),
        Some(areas) => match sesparse::dir_entry(entry64(l1, u64::from(q))) {
            DirEntry::None => 0,
            DirEntry::Invalid => return Err(()),
            DirEntry::Table(i) => {
                let table_sectors = u64::from(sp.l2_size) * sp.entry_size() / 512;
                let s = areas.l2_tables_offset.wrapping_add(i.wrapping_mul(table_sectors));
                if s > u64::from(u32::MAX) {
                    return Err(());
                }
                s
            }
        },
    };
    #[allow(
        clippy::cast_possible_truncation,
        reason = "qemu's `unsigned int l2_offset`; a seSparse sector over u32::MAX failed above"
    )]
    let sector = sector as u32;
    Ok((sector != 0).then_some(sector))
}

/// A grain table, reduced to what the walk needs.
struct Table {
    sector: u32,
    bytes: Vec<u8>,
    /// Whether any entry is invalid or points at or past the end of file.
    any_bad: bool,
}

fn is_bad(g: Grain, extent_len: u64) -> bool {
    match g {
        Grain::Unallocated => false,
        Grain::At(offset) => offset >= extent_len,
        Grain::Invalid => true,
    }
}

/// The sector of the disk's `sector` inside the extent that starts at
/// `first`, as qemu's `get_cluster_offset` computes it: the int64_t
/// `sector_num << 9` taken as a uint64_t offset, less the extent's start.
fn extent_sector(sector: i64, first: i64) -> u64 {
    #[allow(clippy::cast_sign_loss, reason = "qemu passes the int64_t offset as uint64_t")]
    let offset = sector.wrapping_sub(first) as u64;
    offset.wrapping_mul(512) >> 9
}

/// Walks one sparse extent from `sector` (qemu's loop, one run of grains
/// under one directory entry at a time). Returns the sector where the walk
/// leaves the extent, or the failure.
fn walk_sparse(
    e: &Extent,
    sp: &SparseExtent,
    reader: &Reader<'_>,
    mut sector: i64,
    total: i64,
) -> Result<i64, CheckOutcome> {
    let lookup_failed = |s: i64| {
        CheckOutcome::fail(format!("ERROR: could not get cluster_offset for sector {s}"), EPERM)
    };
    let extent_len = reader.file.file.sector_len();
    #[allow(
        clippy::cast_possible_wrap,
        reason = "a sparse extent's grain, at most 0x200000 sectors (checked at open)"
    )]
    let cs = e.cluster_sectors as i64;
    let l1es = u64::from(sp.l1_entry_sectors);
    #[allow(clippy::cast_possible_truncation, reason = "an entry is 4 or 8 bytes")]
    let table_bytes = sp.l2_size as usize * sp.entry_size() as usize;
    // The grain directory, as far as the file holds it.
    let l1_bytes = u64::from(sp.l1_size) * sp.entry_size();
    #[allow(
        clippy::cast_possible_truncation,
        reason = "at most 32 Mi entries of 4 or 8 bytes (`L1 size too big` at open)"
    )]
    let l1_len = l1_bytes.min(reader.file.file.len().saturating_sub(sp.l1_offset)) as usize;
    let l1 = reader.file.read(sp.l1_offset, l1_len);
    let mut table: Option<Table> = None;
    let first = e.end_sector.wrapping_sub(e.sectors);
    while sector < total && sector < e.end_sector {
        let rel = extent_sector(sector, first);
        let q = rel / l1es;
        #[allow(clippy::cast_possible_truncation, reason = "qemu's `unsigned int l1_index`")]
        let l1_index = q as u32;
        if l1_index >= sp.l1_size {
            return Err(lookup_failed(sector));
        }
        // Grains of this run share the directory entry `q`; the run ends
        // where the next entry starts, at the extent's end, or at the disk's.
        let run_end = (u128::from(q) + 1) * u128::from(l1es);
        let grain_sectors = u128::from(e.cluster_sectors);
        #[allow(
            clippy::cast_sign_loss,
            reason = "both positive: `sector` is below both ends (the loop's condition)"
        )]
        let (left_in_extent, left_in_disk) =
            ((e.end_sector - sector) as u128, (total - sector) as u128);
        let to_next_entry = (run_end - u128::from(rel)).div_ceil(grain_sectors);
        let to_extent_end = left_in_extent.div_ceil(grain_sectors);
        let to_total = left_in_disk.div_ceil(grain_sectors);
        #[allow(clippy::cast_possible_truncation, reason = "at most `total - sector`, an i64")]
        let run = to_next_entry.min(to_extent_end).min(to_total) as i64;
        let Ok(table_at) = table_sector(sp, &l1, l1_index) else {
            return Err(lookup_failed(sector));
        };
        if let Some(at) = table_at {
            let t = match table.take() {
                Some(t) if t.sector == at => table.insert(t),
                _ => {
                    // A table in a hole of the file is all zeros: no grains.
                    let bytes = reader.read(u64::from(at) * 512, table_bytes).unwrap_or_default();
                    let any_bad = !bytes.is_empty()
                        && (0..u64::from(sp.l2_size))
                            .any(|i| is_bad(grain(sp, e.cluster_sectors, &bytes, i), extent_len));
                    table.insert(Table { sector: at, bytes, any_bad })
                }
            };
            if t.any_bad {
                for j in 0..run {
                    let s = sector + j * cs;
                    let rel = extent_sector(s, first);
                    let index = (rel / e.cluster_sectors) % u64::from(sp.l2_size);
                    match grain(sp, e.cluster_sectors, &t.bytes, index) {
                        Grain::Invalid => return Err(lookup_failed(s)),
                        Grain::At(offset) if offset >= extent_len => {
                            return Err(CheckOutcome::fail(
                                format!("ERROR: cluster offset for sector {s} points after EOF"),
                                EINVAL,
                            ))
                        }
                        _ => {}
                    }
                }
            }
        }
        sector += run * cs;
    }
    Ok(sector)
}

/// Checks an opened image.
pub fn check(img: &Image) -> CheckOutcome {
    let total = img.total_sectors();
    let mut sector = 0i64;
    let mut ext = 0usize;
    while sector < total {
        while ext < img.extents.len() && sector >= img.extents[ext].end_sector {
            ext += 1;
        }
        let Some(e) = img.extents.get(ext) else {
            return CheckOutcome::fail(
                format!("ERROR: could not find extent for sector {sector}"),
                EINVAL,
            );
        };
        let file = &img.files[e.file];
        match &e.kind {
            ExtentKind::Flat { start } => {
                if *start >= file.file.sector_len() {
                    return CheckOutcome::fail(
                        format!("ERROR: cluster offset for sector {sector} points after EOF"),
                        EINVAL,
                    );
                }
                // A flat extent is one cluster; qemu steps over it whole.
                if e.cluster_sectors == 0 {
                    break;
                }
                // A flat extent's `cluster_sectors` is its int64_t sector
                // count stored as qemu's uint64_t; this reads it back.
                #[allow(clippy::cast_possible_wrap, reason = "qemu's `int64_t sector_num` sum")]
                let step = e.cluster_sectors as i64;
                sector = sector.saturating_add(step);
            }
            ExtentKind::Sparse(sp) => {
                if e.cluster_sectors == 0 {
                    break;
                }
                match walk_sparse(e, sp, &Reader::new(file), sector, total) {
                    Ok(next) => sector = next,
                    Err(outcome) => return outcome,
                }
            }
        }
    }
    CheckOutcome::default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::SeSparseAreas;

    fn sparse(se: Option<SeSparseAreas>, zero_grain: bool) -> SparseExtent {
        SparseExtent {
            l1_offset: 0,
            l1_backup_offset: 0,
            l1_size: 4,
            l2_size: 512,
            l1_entry_sectors: 512 * 128,
            has_zero_grain: zero_grain,
            compressed: false,
            has_marker: false,
            version: 1,
            se,
        }
    }

    fn le32s(v: &[u32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    #[test]
    fn hosted_sparse_entries() {
        let table = le32s(&[0, 1, 384]);
        let sp = sparse(None, false);
        assert_eq!(grain(&sp, 128, &table, 0), Grain::Unallocated);
        assert_eq!(grain(&sp, 128, &table, 1), Grain::At(512));
        assert_eq!(grain(&sp, 128, &table, 2), Grain::At(384 * 512));
        assert_eq!(grain(&sp, 128, &table, 3), Grain::Unallocated, "past the table's bytes");
        // With the zeroed-grain feature, 1 means "zeros", not sector 1.
        assert_eq!(grain(&sparse(None, true), 128, &table, 1), Grain::Unallocated);
        assert!(is_bad(Grain::At(384 * 512), 384 * 512));
        assert!(!is_bad(Grain::At(384 * 512 - 1), 384 * 512));
        assert_eq!(table_sector(&sp, &le32s(&[0, 22]), 0), Ok(None));
        assert_eq!(table_sector(&sp, &le32s(&[0, 22]), 1), Ok(Some(22)));
    }

    #[test]
    fn sesparse_entries() {
        let mut sp =
            sparse(Some(SeSparseAreas { l2_tables_offset: 3, clusters_offset: 67 }), false);
        sp.l2_size = 4096;
        let dir: Vec<u8> = [0x1000_0000_0000_0002u64, 0x2000_0000_0000_0000, 0x1000_0000_ffff_ffff]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        // Table 2 of 64 sectors each, after sector 3.
        assert_eq!(table_sector(&sp, &dir, 0), Ok(Some(3 + 2 * 64)));
        assert_eq!(table_sector(&sp, &dir, 1), Err(()));
        assert_eq!(table_sector(&sp, &dir, 2), Err(()), "beyond 32-bit sectors");
        let table: Vec<u8> =
            [0x3001_0000_0000_0000u64, 0x1000_0000_0000_0000, 0xf000_0000_0000_0000]
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect();
        assert_eq!(grain(&sp, 8, &table, 0), Grain::At((67 + 8) * 512));
        assert_eq!(grain(&sp, 8, &table, 1), Grain::Unallocated);
        assert_eq!(grain(&sp, 8, &table, 2), Grain::Invalid);
    }
}
