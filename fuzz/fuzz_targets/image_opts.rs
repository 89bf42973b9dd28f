//! `--image-opts` option strings (the first element may omit `file=`,
//! `,,` escapes, flags, `id`) read into qemu's options dictionary and
//! checked as `bdrv_open` checks it before and after the host file opens
//! (no file is opened), the same for `json:{...}` names (the JSON reader); and `--object` option lists made as objects in
//! each command-line era (secrets inline only: a `file=` object is not
//! made, so the target reads no file).
#![no_main]

use instar_block::image_opts;
use instar_block::registry::{lookup_driver, Driver, FORMATS};
use instar_core::error::Error;
use instar_core::object::Objects;
use instar_core::{QemuDialect, QemuVersion};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = instar_core::rawtext::from_bytes(data);
    let eras = [QemuVersion::new(5, 2, 0), QemuVersion::new(7, 2, 22), QemuVersion::new(10, 0, 2)];
    for version in eras {
        let dialect = QemuDialect::new(version);
        for force_share in [false, true] {
            let Ok((dict, _)) = image_opts::parse(&text, force_share, dialect) else {
                continue;
            };
            let lookup = |name: &str| {
                lookup_driver(name, dialect, || Error::invalid(format!("Unknown driver '{name}'")))
                    .map(|d| matches!(d, Driver::Instar(_)))
            };
            let _ = image_opts::before_file(&dict, dialect, lookup);
            let _ = image_opts::check_file_options(&dict);
            for format in FORMATS {
                let _ = image_opts::check_format_options(&dict, format.name());
            }
        }
        if let Some(json) = text.strip_prefix(image_opts::JSON_PREFIX) {
            if let Ok(dict) = image_opts::from_json(json) {
                let _ = image_opts::check_file_options(&dict);
            }
        }
        if !text.contains("file") {
            let mut objects = Objects::default();
            for list in text.split('\n') {
                let _ = objects.option(list, dialect);
            }
            let _ = objects.make_pending(dialect);
        }
    }
});
