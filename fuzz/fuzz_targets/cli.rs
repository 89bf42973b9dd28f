//! The command line: arbitrary byte arguments (the input split at NUL
//! bytes, as the kernel hands argv over), carried as text losslessly
//! (`rawtext`: the round trip is asserted) and parsed as `instar` parses
//! them (`instar_cli::parse`: getopt with qemu-img's tables, sizes,
//! option lists, `--output`, `--qemu-version`, dispatch). Nothing runs:
//! a create goes only as far as the block layer's checks with `-u`
//! forced (`CreateArgs::prepare`, which then opens no backing file) and
//! its `Formatting` line; `-o help` renders its text.
#![no_main]

use instar_cli::{parse, Command};
use instar_core::rawtext;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let args: Vec<String> = data
        .split(|&b| b == 0)
        .map(|arg| {
            let text = rawtext::from_bytes(arg);
            assert_eq!(rawtext::to_bytes(&text).as_ref(), arg, "arguments are carried losslessly");
            text
        })
        .collect();
    match parse("instar", &args) {
        Ok(Command::Create { mut args, .. }) => {
            // Never open a backing file: the target reads no file.
            args.no_backing_open = true;
            match args.prepare() {
                Ok(prepared) => {
                    let _ = prepared.formatting_line();
                }
                Err(e) => {
                    let _ = e.to_string();
                }
            }
        }
        Ok(Command::OptionHelp { fmt, filename, dialect }) => {
            let _ = instar_block::option_help(&fmt, filename.as_deref(), dialect);
        }
        Ok(_) => {}
        Err(failure) => {
            assert_ne!(failure.code, 0, "a failure exits non-zero");
            assert!(!failure.message.is_empty(), "a failure says why");
        }
    }
});
