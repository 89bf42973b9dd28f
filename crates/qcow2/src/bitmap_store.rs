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
    dir_entry_size, push_dir_entry, serialized_size, table_entry, Bitmap, BME_FLAG_AUTO,
    BME_MAX_PHYS_SIZE, BME_MAX_TABLE_SIZE,
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

impl Qcow2Writer {
    /// qemu's `block-dirty-bitmap-add` of a persistent bitmap, then the
    /// merge of its bits: refused when the name is taken. qemu keeps a
    /// node's bitmaps newest first, and stores them in that order.
    pub(crate) fn take_bitmap(&mut self, bitmap: BitmapCopy) -> Result<(), Error> {
        if self.bitmaps.iter().any(|b| b.name == bitmap.name) {
            return Err(Error::invalid(format!("Bitmap already exists: {}", bitmap.name)));
        }
        self.bitmaps.insert(0, bitmap);
        Ok(())
    }

    /// Stores the bitmaps added since the image was opened, then flushes
    /// the caches and rewrites the header (qemu's
    /// `qcow2_store_persistent_dirty_bitmaps` on an image that held none).
    pub(crate) fn store_bitmaps(&mut self) -> Result<(), Error> {
        if self.bitmaps.is_empty() {
            return Ok(());
        }
        let bitmaps = std::mem::take(&mut self.bitmaps);
        let mut dir_entries = Vec::with_capacity(bitmaps.len());
        for bm in &bitmaps {
            dir_entries.push(self.store_one(bm)?);
        }
        let mut dir = Vec::new();
        for e in &dir_entries {
            push_dir_entry(&mut dir, e);
        }
        debug_assert_eq!(
            dir.len() as u64,
            dir_entries.iter().map(|e| dir_entry_size(e.name.len() as u64)).sum::<u64>()
        );
        let dir_offset = self.refs.alloc(&self.file, dir.len() as u64).map_err(|e| self.fail(e))?;
        self.file.write_at(dir_offset, &dir).map_err(Error::errno)?;
        self.flush()?;
        let ext = BitmapsExt {
            nb_bitmaps: u32::try_from(dir_entries.len()).map_err(|_| errno(EINVAL))?,
            reserved32: 0,
            bitmap_directory_size: dir.len() as u64,
            bitmap_directory_offset: dir_offset,
        };
        self.rewrite_header(ext)
    }

    /// Writes one bitmap's data clusters and table (qemu's `store_bitmap`
    /// and `store_bitmap_data`); returns its directory entry.
    fn store_one(&mut self, bm: &BitmapCopy) -> Result<Bitmap, Error> {
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
        Ok(Bitmap {
            table_offset,
            table_size: u32::try_from(tb_size).map_err(|_| errno(EINVAL))?,
            flags: if bm.enabled { BME_FLAG_AUTO } else { 0 },
            granularity_bits,
            name: bm.name.clone(),
        })
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
