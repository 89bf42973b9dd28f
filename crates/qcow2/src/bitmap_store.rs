//! The persistent bitmaps a writer stores at close (`convert --bitmaps`),
//! as qemu's `qcow2_store_persistent_dirty_bitmaps` stores the bitmaps
//! convert added: bitmap by bitmap, the data clusters that hold a set bit
//! (one allocation each, in bitmap order; a cluster of zeros gets no
//! cluster and a table entry of 0), then the bitmap's table; then the
//! bitmap directory; then the caches are flushed and the header rewritten
//! with the bitmaps extension and its autoclear bit. Every cluster comes
//! from the writer's allocator ([`crate::alloc`]), so the bitmaps land
//! where qemu's land after the same copy.
//!
//! Memory: the bits of each bitmap (what the source held, bounded where
//! it was read) and one cluster at a time.

use crate::bitmap::{
    dir_entry_size, push_dir_entry, serialized_size, table_entry, table_entry_offset, Bitmap,
    BME_FLAG_AUTO, BME_FLAG_IN_USE, BME_MAX_PHYS_SIZE, BME_MAX_TABLE_SIZE,
};
use crate::header::{qemu_feature_table, BitmapsExt, Header, AUTOCLEAR_BITMAPS};
use crate::tables::encode_table;
use crate::write::{errno, small, Qcow2Writer};
use instar_core::{BitmapCopy, Error};

/// qemu's `EINVAL`.
const EINVAL: i32 = 22;

/// The cluster size up to which qemu leaves the feature name table out of
/// the header (it would leave too little room for a backing file name).
const FEATURE_TABLE_MIN_CLUSTER: u64 = 4096;

/// The bitmaps an image held when it was opened for writing: its
/// directory (as [`crate::bitmap::load_all`] checked it) and each
/// bitmap's bits as loaded.
#[derive(Debug)]
pub struct OwnBitmaps {
    /// The directory, its entries in directory order.
    pub dir: StoredDir,
    /// The bitmaps with their bits, in directory order (no bits: in use).
    pub loaded: Vec<BitmapCopy>,
}

/// The bitmap directory in the image while the writer has it open.
#[derive(Debug)]
pub struct StoredDir {
    /// Its entries, in directory order, flags as last written.
    pub entries: Vec<Bitmap>,
    /// Where it is.
    pub offset: u64,
    /// Its length in bytes.
    pub size: u64,
}

impl Qcow2Writer {
    /// What qemu's `qcow2_load_dirty_bitmaps` does when it opens an image
    /// for writing: every bitmap becomes one of the node's (newest first,
    /// so the last in the directory leads), and each consistent one is
    /// marked in use in the directory, rewritten where it is, and the
    /// header rewritten with it (`update_ext_header_and_dir_in_place`).
    pub(crate) fn load_bitmaps(&mut self, own: OwnBitmaps) -> Result<(), Error> {
        let OwnBitmaps { mut dir, loaded } = own;
        let mut needs_update = false;
        for e in &mut dir.entries {
            if e.flags & BME_FLAG_IN_USE == 0 {
                e.flags |= BME_FLAG_IN_USE;
                needs_update = true;
            }
        }
        for bm in loaded {
            self.bitmaps.insert(0, bm);
        }
        if needs_update {
            let mut bytes = Vec::new();
            for e in &dir.entries {
                push_dir_entry(&mut bytes, e);
            }
            if bytes.len() as u64 != dir.size {
                return Err(errno(EINVAL));
            }
            self.file.write_at(dir.offset, &bytes).map_err(Error::errno)?;
            let ext = BitmapsExt {
                nb_bitmaps: u32::try_from(dir.entries.len()).map_err(|_| errno(EINVAL))?,
                reserved32: 0,
                bitmap_directory_size: dir.size,
                bitmap_directory_offset: dir.offset,
            };
            self.rewrite_header(ext)?;
        }
        self.bitmap_dir = Some(dir);
        Ok(())
    }

    /// qemu's `bdrv_set_dirty` after a write request of `bytes` at
    /// `offset`: every enabled bitmap of the node records it.
    pub(crate) fn mark_bitmaps_dirty(&mut self, offset: u64, bytes: u64) {
        if bytes == 0 {
            return;
        }
        for bm in &mut self.bitmaps {
            if !bm.enabled {
                continue;
            }
            let Some(bits) = bm.bits.as_mut() else { continue };
            let g = u64::from(bm.granularity.trailing_zeros());
            let first = offset >> g;
            let last = (offset.saturating_add(bytes) - 1) >> g;
            for bit in first..=last {
                let Some(b) = usize::try_from(bit / 8).ok().and_then(|i| bits.get_mut(i)) else {
                    break;
                };
                *b |= 1 << (bit % 8);
            }
        }
    }

    /// qemu's `block-dirty-bitmap-add` of a persistent bitmap, then the
    /// merge of its bits: refused when the node has a bitmap of that name
    /// (its own ones too, consistent or not). qemu keeps a node's bitmaps
    /// newest first.
    pub(crate) fn take_bitmap(&mut self, bitmap: BitmapCopy) -> Result<(), Error> {
        if self.bitmaps.iter().any(|b| b.name == bitmap.name) {
            return Err(Error::invalid(format!("Bitmap already exists: {}", bitmap.name)));
        }
        self.bitmaps.insert(0, bitmap);
        Ok(())
    }

    /// qemu's `qcow2_store_persistent_dirty_bitmaps` at close: the
    /// directory's own bitmaps first (each stored anew, its old clusters
    /// dropped once the new directory is in place), then the added ones;
    /// an inconsistent bitmap keeps its entry as it is.
    pub(crate) fn store_bitmaps(&mut self) -> Result<(), Error> {
        let bitmaps = std::mem::take(&mut self.bitmaps);
        if bitmaps.iter().all(|b| b.bits.is_none()) {
            return Ok(());
        }
        let old = self.bitmap_dir.take();
        let (mut entries, old_dir) = match old {
            Some(d) => (d.entries, Some((d.offset, d.size))),
            None => (Vec::new(), None),
        };
        let mut sources: Vec<Option<&BitmapCopy>> = vec![None; entries.len()];
        let mut drop_tables = Vec::new();
        for bm in &bitmaps {
            if bm.bits.is_none() {
                continue;
            }
            let flags = if bm.enabled { BME_FLAG_AUTO } else { 0 };
            let granularity_bits =
                u8::try_from(bm.granularity.trailing_zeros()).map_err(|_| errno(EINVAL))?;
            match entries.iter().position(|e| e.name == bm.name) {
                Some(i) => {
                    let e = &mut entries[i];
                    drop_tables.push((e.table_offset, e.table_size));
                    e.table_offset = 0;
                    e.table_size = 0;
                    e.flags = flags;
                    e.granularity_bits = granularity_bits;
                    sources[i] = Some(bm);
                }
                None => {
                    entries.push(Bitmap {
                        table_offset: 0,
                        table_size: 0,
                        flags,
                        granularity_bits,
                        name: bm.name.clone(),
                    });
                    sources.push(Some(bm));
                }
            }
        }
        for (e, bm) in entries.iter_mut().zip(&sources) {
            if let Some(bm) = bm {
                let (offset, size) = self.store_one(bm)?;
                e.table_offset = offset;
                e.table_size = size;
            }
        }
        let mut dir = Vec::new();
        for e in &entries {
            push_dir_entry(&mut dir, e);
        }
        debug_assert_eq!(
            dir.len() as u64,
            entries.iter().map(|e| dir_entry_size(e.name.len() as u64, 0)).sum::<u64>()
        );
        let dir_offset = self.refs.alloc(&self.file, dir.len() as u64).map_err(|e| self.fail(e))?;
        self.file.write_at(dir_offset, &dir).map_err(Error::errno)?;
        self.write_tables()?;
        let ext = BitmapsExt {
            nb_bitmaps: u32::try_from(entries.len()).map_err(|_| errno(EINVAL))?,
            reserved32: 0,
            bitmap_directory_size: dir.len() as u64,
            bitmap_directory_offset: dir_offset,
        };
        self.rewrite_header(ext)?;
        if let Some((offset, size)) = old_dir {
            self.refs.free(&self.file, offset, size, false);
        }
        for (offset, size) in drop_tables {
            self.free_bitmap_clusters(offset, size)?;
        }
        self.report_failed_frees();
        Ok(())
    }

    /// qemu's `free_bitmap_clusters`: each data cluster of the table at
    /// `offset` (`size` entries) freed and discarded in the file (qemu's
    /// `QCOW2_DISCARD_ALWAYS`), then the table itself.
    fn free_bitmap_clusters(&mut self, offset: u64, size: u32) -> Result<(), Error> {
        let cs = self.cs;
        let mut raw = vec![0u8; small(u64::from(size) * 8)];
        self.file.read_at(offset, &mut raw).map_err(Error::errno)?;
        let discard = std::mem::replace(&mut self.refs.discard, true);
        for entry in raw.chunks_exact(8).map(|c| instar_core::bytes::be64(c, 0)) {
            let at = table_entry_offset(entry);
            if at != 0 {
                self.refs.free(&self.file, at, cs, true);
            }
        }
        self.refs.discard = discard;
        self.refs.free(&self.file, offset, u64::from(size) * 8, false);
        Ok(())
    }

    /// Writes one bitmap's data clusters and table (qemu's `store_bitmap`
    /// and `store_bitmap_data`); returns where the table is and its
    /// entries.
    fn store_one(&mut self, bm: &BitmapCopy) -> Result<(u64, u32), Error> {
        let cs = self.cs;
        let granularity_bits =
            u8::try_from(bm.granularity.trailing_zeros()).map_err(|_| errno(EINVAL))?;
        let size = serialized_size(self.size, granularity_bits);
        let tb_size = size.div_ceil(cs);
        if tb_size > BME_MAX_TABLE_SIZE || tb_size * cs > BME_MAX_PHYS_SIZE {
            return Err(Error::invalid(format!("Bitmap '{}' is too big", bm.name)));
        }
        let source: &[u8] = bm.bits.as_deref().unwrap_or(&[]);
        let source = &source[..source.len().min(small(size))];
        let mut table = vec![0u64; small(tb_size)];
        let mut cluster = vec![0u8; small(cs)];
        for (c, slot) in table.iter_mut().enumerate() {
            // The target's bits are the source's, then zeros (a larger
            // `-n` target); a cluster without a set bit is not stored.
            let start = (c as u64 * cs).min(source.len() as u64);
            let end = ((c as u64 + 1) * cs).min(source.len() as u64);
            let part = &source[small(start)..small(end)];
            if part.iter().all(|&b| b == 0) {
                continue;
            }
            let at = self.refs.alloc(&self.file, cs).map_err(|e| self.fail(e))?;
            cluster.fill(0);
            cluster[..part.len()].copy_from_slice(part);
            self.file.write_at(at, &cluster).map_err(Error::errno)?;
            *slot = table_entry(at);
        }
        let bytes = tb_size * 8;
        let table_offset = self.refs.alloc(&self.file, bytes).map_err(|e| self.fail(e))?;
        self.file.write_at(table_offset, &encode_table(&table)).map_err(Error::errno)?;
        Ok((table_offset, u32::try_from(tb_size).map_err(|_| errno(EINVAL))?))
    }

    /// qemu's `qcow2_update_header` after the bitmaps were stored: the
    /// header as it is in the file, with the bitmaps extension and its
    /// autoclear bit, rewritten as one cluster.
    fn rewrite_header(&mut self, ext: BitmapsExt) -> Result<(), Error> {
        let mut first = vec![0u8; small(self.cs)];
        self.file.read_at(0, &mut first).map_err(Error::errno)?;
        let mut h = Header::from_bytes(&first).map_err(|_| errno(EINVAL))?;
        h.autoclear_features |= AUTOCLEAR_BITMAPS;
        h.extensions.bitmaps = Some(ext);
        h.extensions.bitmaps_ignored = false;
        h.extensions.feature_table =
            (h.version >= 3 && self.cs > FEATURE_TABLE_MIN_CLUSTER).then(qemu_feature_table);
        let cluster = h.to_cluster().ok_or_else(|| errno(28))?;
        self.file.write_at(0, &cluster).map_err(Error::errno)
    }
}
