//! qcow2's header: the fixed fields with qemu's first checks, the header
//! extensions (`qcow2_read_extensions`: backing format, feature table,
//! crypto header, bitmaps, data file, unknown ones kept), the backing file
//! name, and the unsupported-features message built from the feature
//! table. The input is the image's first cluster.
#![no_main]

use instar_qcow2::header::{unsupported_features, Header};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(h) = Header::parse_fixed(data) else { return };
    let (ext, error) = h.scan_extensions(data);
    if let Some(e) = error {
        let _ = e.to_string();
    }
    let _ = unsupported_features(ext.feature_table.as_deref(), h.incompatible_features);
    let _ = h.read_backing_file(data);
    match Header::from_bytes(data) {
        Ok(full) => {
            assert_eq!(full.size, h.size, "the fixed fields do not depend on the extensions");
            let _ = full.to_bytes();
            let _ = full.to_cluster();
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
