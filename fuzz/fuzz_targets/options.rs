//! `-o` option lists (`qemu_opts_parse`: `key=value,...`, `,,` escapes,
//! `help`), parsed against each format's create options merged with the
//! file protocol's (`Options::parse`, qemu's typed checks), printed as the
//! `Formatting` line prints them, and read back by the checks that need
//! no file: the file protocol's (`FileOptions::from_options`), qcow2's and
//! vpc's option validation.
#![no_main]

use instar_block::registry::FORMATS;
use instar_core::file::FileOptions;
use instar_core::opts::{self, Options, FILE_PROTOCOL_OPTS};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let list = instar_core::rawtext::from_bytes(data);
    let valid = opts::is_valid_option_list(&list);
    let _ = opts::split_option_list(&list);
    let _ = opts::has_help_option(&list, instar_core::QemuDialect::DEFAULT);
    if !valid {
        return;
    }
    for format in FORMATS {
        let mut options = Options::new(&[format.create_opts(), FILE_PROTOCOL_OPTS]);
        if let Err(e) = options.parse(&list) {
            let _ = e.to_string();
            continue;
        }
        let _ = options.print();
        let _ = FileOptions::from_options(&options, format.create_opts());
        match format.name() {
            "qcow2" => {
                let _ = instar_qcow2::create::validate(&options);
            }
            "vpc" => {
                let _ = instar_vpc::create::CreatePlan::from_options(&options);
            }
            _ => {}
        }
    }
});
