//! `instar measure`'s walk over a hostile image: the probe picks the
//! driver, the image opens as `measure` opens it (`OpenFlags::READ`), and
//! the block layer counts what a copy needs (`MeasureSource` for `Chain`)
//! with the smallest, the default and the largest qcow2 cluster, then
//! measures the image for a qcow2, a raw and a LUKS target
//! (`instar_block::measure`). Disks up to 64 MiB (a header may claim any
//! size, and the walk is as long as the disk's table of tables).
//!
//! Invariants asserted: the walk ends; the bytes counted are whole
//! clusters and no more than the disk rounded up to clusters; a qcow2
//! target's required size is at most its fully allocated size, which is
//! the same whatever the source holds; raw measures the disk's length.
#![no_main]

use instar_block::probe::{probe_file, ProbeOrder};
use instar_block::{measure, Chain, MeasureArgs};
use instar_core::{MeasureSource, OpenFlags, QemuDialect, Secrets};
use libfuzzer_sys::fuzz_target;

/// The largest disk one input measures.
const MAX_DISK: u64 = 64 << 20;

/// The LUKS target's secret.
struct OneSecret;

impl Secrets for OneSecret {
    fn has_secret(&self, id: &str) -> bool {
        id == "s0"
    }
}

fuzz_target!(|data: &[u8]| {
    let file = instar_fuzz::image_file("fuzz.img", data);
    let Ok(driver) = probe_file(&file, ProbeOrder::NEWEST) else { return };
    let Ok(format) = driver.format(&file) else { return };
    let image = match format.open(file, OpenFlags::READ) {
        Ok(image) => image,
        Err(e) => {
            let _ = instar_fuzz::render_error(&e);
            return;
        }
    };
    let chain = Chain::new(vec![image]);
    if chain.len() > MAX_DISK {
        return;
    }
    for cluster in [512u64, 65536, 2 << 20] {
        if let Ok(counted) = chain.allocated_bytes(cluster) {
            assert_eq!(counted % cluster, 0, "whole clusters");
            assert!(counted <= chain.len().div_ceil(cluster) * cluster, "within the disk");
        }
    }
    let _ = chain.persistent_bitmaps();
    let dialect = QemuDialect::DEFAULT;
    let qcow2 = MeasureArgs { out_fmt: "qcow2", options: None, size: None, dialect };
    if let Ok(m) = measure(&qcow2, Some(&chain), &OneSecret) {
        assert!(m.required <= m.fully_allocated, "required within fully allocated");
        let empty = MeasureArgs { options: Some("preallocation=full"), ..qcow2 };
        let full = measure(&empty, Some(&chain), &OneSecret).expect("the same source measures");
        assert_eq!(full.fully_allocated, m.fully_allocated);
        assert_eq!(full.required, full.fully_allocated);
    }
    let raw = MeasureArgs { out_fmt: "raw", ..qcow2 };
    if let Ok(m) = measure(&raw, Some(&chain), &OneSecret) {
        assert_eq!(m.required, chain.len());
    }
    let luks = MeasureArgs { out_fmt: "luks", options: Some("key-secret=s0"), ..qcow2 };
    let _ = measure(&luks, Some(&chain), &OneSecret).map_err(|e| e.to_string());
});
