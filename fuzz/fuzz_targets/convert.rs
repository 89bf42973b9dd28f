//! `instar convert`'s copy over a hostile source: the probe picks the
//! driver, the image opens as convert opens its sources
//! (`OpenFlags::READ`), and the block layer's copy
//! (`instar_block::convert::copy`: the chunks, the sparse split, the
//! reader threads, the ordered writes) copies it into a target that
//! keeps only what it was asked to write, with the default `-S`, with
//! `-S 0`, and compressed. Disks up to 64 MiB.
//!
//! Invariants asserted: the copy ends; every write lies within the disk
//! and comes after the one before it (guest order); a copy that succeeds
//! covers the whole disk with `-S 0`; compressed writes are whole
//! clusters but for the last.
#![no_main]

use instar_block::convert::{copy, ConvertFailure, ConvertOutput, CopySettings};
use instar_core::codec::Compressor;
use instar_core::write::Compression;
use instar_core::{Diagnostic, Error, ImageWriter};
use libfuzzer_sys::fuzz_target;

/// The largest disk one input copies.
const MAX_DISK: u64 = 64 << 20;

/// The target's cluster size when it compresses.
const CLUSTER: u64 = 65536;

/// A target that checks the order of what it is asked to write.
struct Target {
    len: u64,
    /// The end of the last write.
    end: u64,
    /// Bytes written as data or zeros.
    covered: u64,
    compress: bool,
}

impl Target {
    fn take(&mut self, offset: u64, bytes: u64) {
        assert!(offset >= self.end, "writes in guest order");
        assert!(offset + bytes <= self.len, "writes within the disk");
        self.end = offset + bytes;
        self.covered += bytes;
    }
}

impl ImageWriter for Target {
    fn len(&self) -> u64 {
        self.len
    }

    fn has_zero_init(&self) -> bool {
        true
    }

    fn cluster_size(&self) -> Option<u64> {
        Some(if self.compress { CLUSTER } else { 0 })
    }

    fn compression(&self) -> Option<Compression> {
        self.compress.then_some(Compression {
            codec: Compressor::Qcow2Deflate,
            capacity: 65535,
            pad_to: 65536,
        })
    }

    fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), Error> {
        self.take(offset, data.len() as u64);
        Ok(())
    }

    fn write_zeroes(&mut self, offset: u64, bytes: u64) -> Result<(), Error> {
        self.take(offset, bytes);
        Ok(())
    }

    fn write_compressed(
        &mut self,
        offset: u64,
        data: &[u8],
        _packed: Option<&[u8]>,
    ) -> Result<(), Error> {
        let whole = data.len() as u64 == CLUSTER || offset + data.len() as u64 == self.len;
        assert!(whole, "whole clusters");
        self.take(offset, data.len() as u64);
        Ok(())
    }

    fn close(self: Box<Self>) -> Result<(), Error> {
        Ok(())
    }
}

/// Output that is rendered and dropped.
struct Quiet;

impl ConvertOutput for Quiet {
    fn stdout(&mut self, _text: &str) {}
    fn stderr(&mut self, line: Diagnostic) {
        let _ = line.render(instar_fuzz::PROG);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some(chain) = instar_fuzz::read_chain(data) else { return };
    let len = chain.len().div_ceil(512) * 512;
    if len > MAX_DISK {
        return;
    }
    let reopen = || {
        instar_fuzz::read_chain(data)
            .map(|c| vec![c])
            .ok_or_else(|| ConvertFailure { lines: Vec::new(), code: 1 })
    };
    let sources = [chain];
    for (min_sparse, compress) in [(8, false), (0, false), (8, true)] {
        let settings = CopySettings { min_sparse, compress, target_is_new: true, ..Default::default() };
        let mut target = Target { len, end: 0, covered: 0, compress };
        let result = copy(&sources, &mut target, &settings, true, &mut Quiet, &reopen);
        if result.is_ok() && min_sparse == 0 && !compress {
            assert_eq!(target.covered, len, "-S 0 writes the whole disk");
        }
    }
});
