//! Compressed writes into a qcow2 image (`qcow2_co_pwritev_compressed_task`
//! and `qcow2_alloc_compressed_cluster_offset`): one whole cluster per
//! write, its compressed form packed right after the previous payload
//! ([`crate::alloc::Refcounts::alloc_bytes`]), the L2 entry flagged
//! compressed with the number of 512-byte sectors the payload spans, less
//! one, above the host offset. A cluster that did not compress into less
//! than a cluster is written as a normal data cluster. At the end the file
//! is trimmed to whole sectors (the compressed write of nothing).

use crate::alloc::Fail;
use crate::tables::{COMPRESSED_SECTOR_SIZE, L2E_OFFSET_MASK, QCOW_OFLAG_COMPRESSED};
use crate::write::{errno, Qcow2Writer, SECTOR};
use instar_core::Error;

impl Qcow2Writer {
    /// The compressed write of the cluster `data` at guest `offset`;
    /// `packed` is its compressed form, `None` when it did not fit.
    pub(crate) fn compressed_cluster(
        &mut self,
        offset: u64,
        data: &[u8],
        packed: Option<&[u8]>,
    ) -> Result<(), Error> {
        if self.data.is_some() {
            return Err(crate::zero::not_supported());
        }
        // Whole clusters only, but for the disk's last one
        // (`qcow2_co_pwritev_compressed_part`): a short last cluster of a
        // smaller source written into a larger `-n` target is refused.
        let len = data.len() as u64;
        if offset & (self.cs - 1) != 0 || (len & (self.cs - 1) != 0 && offset + len != self.size) {
            return Err(errno(22));
        }
        let Some(packed) = packed else {
            return self.write_data(offset, data);
        };
        let len = packed.len() as u64;
        if len == 0 || len > self.cs {
            return Err(errno(22));
        }
        let (table, index) = self.cluster_table(offset)?;
        let (entry, _) = self.entry(table, index)?;
        if entry & L2E_OFFSET_MASK != 0 {
            // Compression never overwrites a cluster.
            return Err(errno(5));
        }
        let host = self.refs.alloc_bytes(&self.file, len).map_err(|e| self.fail(e))?;
        let sectors = (host + len - 1) / COMPRESSED_SECTOR_SIZE - host / COMPRESSED_SECTOR_SIZE;
        let csize_shift = 62 - (self.g.cluster_bits - 8);
        let entry = host | QCOW_OFLAG_COMPRESSED | (sectors << csize_shift);
        self.set_entry(table, index, entry, Some(0))?;
        self.check_data_write(host, len)?;
        self.file.write_at(host, packed).map_err(Error::errno)
    }

    /// The compressed write of nothing at the end of convert: the file's
    /// length rounded up to whole sectors. The tables qemu has written by
    /// then are written first, so that the length is the same; one that
    /// cannot be written is left for the close to report, as qemu's
    /// rounding writes no table and so cannot fail on one.
    pub(crate) fn trim_to_sectors(&mut self) -> Result<(), Error> {
        if self.data.is_some() {
            return Err(crate::zero::not_supported());
        }
        match self.refs.flush(&self.file) {
            Ok(()) | Err(Fail::Io(_)) => {}
            Err(e) => return Err(self.fail(e)),
        }
        let len = self.file.len().map_err(Error::errno)?;
        self.file.set_len(len.div_ceil(SECTOR) * SECTOR).map_err(Error::errno)
    }
}
